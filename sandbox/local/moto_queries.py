"""moto's Query made to read one partition, as DynamoDB does, instead of the whole table.

moto 5.2.5's ``Table.query`` on a table's own key (no index) walks every item of the table and keeps
those with the asked partition key. The local stack keeps the rate limiter's seats, the leases and
the bindings in tables that grow with every record synced, and takes a seat with a Query: after a
few thousand orders each seat query took about 100 ms instead of 25 (DynamoDB requests are served
one at a time, so every other call waited too), and the throughput benchmark measured moto, not
erpsync (bench section 2 fell from 0.84 to 0.69 of the ERP's ceiling after the previous section's
orders). Here such a query sees only its partition's items; the rest of moto's query (sort, start
key, limits, filters) is unchanged. Index queries and scans still read the whole table, as they
must.
"""

from __future__ import annotations

import inspect
from typing import Any


def patch() -> None:
    """Make moto's main-table Query read only the asked partition (idempotent, process-wide)."""
    from moto.dynamodb.models.table import Table

    if getattr(Table.query, "_partition_patched", False):
        return
    original = Table.query
    signature = inspect.signature(original)

    def query(self: Any, *args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(self, *args, **kwargs)
        hash_key = bound.arguments.get("hash_key")
        if bound.arguments.get("index_name") or hash_key is None:
            return original(self, *args, **kwargs)
        partition = self.items.get(hash_key)
        if partition is None:
            rows: list[Any] = []
        elif self.range_key_attr is not None:
            rows = list(partition.values())
        else:
            rows = [partition]
        # moto's query picks its candidates with ``self.all_items()``; DynamoDB requests run one at
        # a time (``SerialDynamoDB``), so the instance override lives for this call alone
        self.all_items = lambda: rows
        try:
            return original(self, *args, **kwargs)
        finally:
            del self.all_items

    query._partition_patched = True  # type: ignore[attr-defined]
    Table.query = query  # type: ignore[method-assign]
