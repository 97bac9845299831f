"""The benchmarks' moto: ``sandbox.local.moto_server`` with moto's TransactWriteItems made cheap.

moto 5.2.5's ``DynamoDBBackend.transact_write_items`` backs up the whole table (a ``deepcopy``, once
per item of the transaction) before applying a transaction, so that it can roll back; the copies are
not freed. With every binding written in a transaction, the bench's moto grew by some 10 MB per
transaction once the bindings table held a few thousand items, took hundreds of milliseconds per
transaction (DynamoDB requests are served one at a time), and was killed for lack of memory halfway
through ``make bench``. Here the backup is of the items the transaction touches only, and the
rollback puts those back: what a failed transaction leaves is unchanged.

``python -m bench.moto_server -H HOST -p PORT``; :func:`cheap_transactions` makes a ``LocalStack``
started inside it run this module instead of ``sandbox.local.moto_server``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from sandbox.local.moto_transactions import patch


@contextlib.contextmanager
def cheap_transactions() -> Iterator[None]:
    """While active, a ``LocalStack(moto_process=True)`` starts ``python -m bench.moto_server``
    (this module) where it would start ``python -m sandbox.local.moto_server``."""
    from sandbox.local import aws

    real = aws.subprocess

    class _Subprocess:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        @staticmethod
        def Popen(cmd: list[str], *args: Any, **kwargs: Any) -> Any:
            cmd = ["bench.moto_server" if part == "sandbox.local.moto_server" else part for part in cmd]
            return real.Popen(cmd, *args, **kwargs)

    aws.subprocess = _Subprocess()  # type: ignore[assignment]
    try:
        yield
    finally:
        aws.subprocess = real


def main(argv: list[str] | None = None) -> None:
    patch()
    from sandbox.local.moto_server import main as serve

    serve(argv)


if __name__ == "__main__":
    main()
