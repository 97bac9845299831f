"""moto's server with DynamoDB's atomicity: ``python -m sandbox.local.moto_server -H HOST -p PORT``.

moto evaluates a ``ConditionExpression`` and applies the write as separate steps with no lock, so
two concurrent conditional writes to one item can both succeed. Real DynamoDB never lets that
happen, and erpsync's guards (leases, the rate limiter's versioned updates, webhook dedup) rely on
it. ``SerialDynamoDB`` runs one DynamoDB request at a time; SQS and the rest stay concurrent (an
SQS long poll must not hold up a table write).
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class SerialDynamoDB:
    """WSGI middleware: DynamoDB requests (``X-Amz-Target: DynamoDB_...``) one at a time."""

    def __init__(self, app: Wsgi) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB"):
            return self.app(environ, start_response)
        with self.lock:
            return list(self.app(environ, start_response))


def make(host: str, port: int) -> BaseWSGIServer:
    """A threaded werkzeug server with every moto backend behind ``SerialDynamoDB``."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

    from sandbox.local import moto_queries, moto_transactions

    moto_transactions.patch()  # transactions back up what they touch, not the whole table (memory stays flat)
    moto_queries.patch()  # a query reads its partition, not the whole table (time stays flat)
    app = SerialDynamoDB(DomainDispatcherApplication(create_backend_app))
    return make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("-H", "--host", default="127.0.0.1")
    p.add_argument("-p", "--port", type=int, default=5000)
    args = p.parse_args(argv)
    make(args.host, args.port).serve_forever()


if __name__ == "__main__":
    main()
