"""moto's TransactWriteItems made cheap: a backup of the items a transaction touches, not the table.

moto 5.2.5's ``DynamoDBBackend.transact_write_items`` backs up the whole table (a ``deepcopy``, once
per item of the transaction) before applying a transaction, so that it can roll back, and the copies
are not freed. With every binding pair written in a transaction, a long local run (the chaos run,
the benchmarks) grew moto by some 10 MB per transaction and ran the machine out of memory. Here the
backup is of the items the transaction touches only, and the rollback puts those back: what a failed
transaction leaves is unchanged (``tests/integration/test_bench_moto.py``).
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any


def patch() -> None:
    """Replace moto's whole-table transaction backup by a backup of the touched items."""
    import moto.dynamodb.models as models

    if getattr(models.DynamoDBBackend.transact_write_items, "_bench_patched", False):
        return
    original = models.DynamoDBBackend.transact_write_items
    real_copy = models.copy

    class _NoTableCopy:
        """``copy`` for moto's models module: a Table is not deep-copied (the original's backup)."""

        def __getattr__(self, name: str) -> Any:
            return getattr(real_copy, name)

        @staticmethod
        def deepcopy(value: Any, memo: Any = None) -> Any:
            if isinstance(value, models.Table):
                return value
            return real_copy.deepcopy(value, memo)

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        backups: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
        for item in transact_items:
            _, op = next(iter(item.items()))
            name = op.get("TableName")
            if not name or name not in self.tables:
                continue
            table = self.tables[name]
            if "Key" in op:
                key = dict(op["Key"])
            else:
                attrs = op.get("Item") or {}
                key = {table.hash_key_attr: attrs.get(table.hash_key_attr)}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs.get(table.range_key_attr)
            if any(v is None for v in key.values()):
                continue
            try:
                current = self.get_item(name, key)
            except Exception:  # noqa: S112 (a key moto cannot read: the transaction will refuse it)
                continue
            backups.append((name, key, copy.deepcopy(current.to_json()["Attributes"]) if current else None))
        try:
            original(self, transact_items)
        except Exception:
            for name, key, old in reversed(backups):
                if old is None:
                    with contextlib.suppress(Exception):
                        self.delete_item(name, key)
                else:
                    self.put_item(name, old)
            raise

    transact_write_items._bench_patched = True  # type: ignore[attr-defined]
    models.copy = _NoTableCopy()  # type: ignore[assignment]
    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
