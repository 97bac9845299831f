"""The sync log: one row per attempt, kept for ``retention_days`` (DynamoDB TTL).

Keys: ``record = <flow>#<source id>`` and ``at`` (ISO time + a short unique suffix), so a
record's history is one query; the ``by-outcome`` index lists rows by outcome and time. A row's
message (a reason may quote the record) is stored with personal data masked (``erpsync.masking``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from erpsync.masking import mask
from erpsync.state import dynamo

OUTCOMES = ("synced", "skipped", "filtered", "failed", "retrying")


@dataclass
class LogRow:
    flow: str
    source_system: str
    source_id: str
    outcome: str
    target_system: str = ""
    target_id: str = ""
    attempt: int = 1
    duration_ms: int = 0
    error_type: str = ""
    message: str = ""
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds"))

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {self.outcome!r}; expected one of {OUTCOMES}")


class SyncLog:
    def __init__(self, table: str, retention_days: int = 30) -> None:
        self.table = table
        self.retention_days = retention_days

    def write(self, row: LogRow) -> None:
        dynamo.client().put_item(TableName=self.table, Item=dynamo.to_item(self._item(row)))

    def write_many(self, rows: list[LogRow]) -> None:
        """Write rows 25 a request (a batch of records settled together)."""
        dynamo.batch_put(self.table, [self._item(r) for r in rows])

    def _item(self, row: LogRow) -> dict[str, Any]:
        item = asdict(row)
        item["message"] = mask(row.message)
        item["record"] = f"{row.flow}#{row.source_id}"
        item["at"] = f"{row.at}#{uuid.uuid4().hex[:6]}"
        item["expires_at"] = int(time.time()) + self.retention_days * 86400
        return item

    def history(self, flow: str, source_id: str) -> list[dict[str, Any]]:
        """Every row of one record, oldest first."""
        return self._query(
            KeyConditionExpression="#r = :r",
            ExpressionAttributeNames={"#r": "record"},
            ExpressionAttributeValues=dynamo.to_item({":r": f"{flow}#{source_id}"}),
        )

    def by_outcome(self, outcome: str, since: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """Rows with ``outcome``, newest first, optionally since an ISO time."""
        expr, values = "outcome = :o", {":o": outcome}
        if since:
            expr += " AND #a >= :s"
            values[":s"] = since
        return self._query(
            IndexName="by-outcome",
            KeyConditionExpression=expr,
            ExpressionAttributeValues=dynamo.to_item(values),
            ScanIndexForward=False,
            Limit=limit,
            **({"ExpressionAttributeNames": {"#a": "at"}} if since else {}),
        )[:limit]

    def since(
        self, outcome: str, since: str, attributes: Sequence[str] = ("flow", "record", "error_type")
    ) -> Iterator[dict[str, Any]]:
        """Every row with ``outcome`` at or after the ISO time ``since``, oldest first, with only
        ``attributes`` (page by page through the ``by-outcome`` index: counting a day costs its reads,
        not its memory)."""
        names = {f"#{i}": a for i, a in enumerate(attributes)}
        kwargs: dict[str, Any] = {
            "IndexName": "by-outcome",
            "KeyConditionExpression": "outcome = :o AND #at >= :s",
            "ExpressionAttributeNames": {"#at": "at", **names},
            "ExpressionAttributeValues": dynamo.to_item({":o": outcome, ":s": since}),
            "ProjectionExpression": ", ".join(names),
        }
        while True:
            res = dynamo.client().query(TableName=self.table, **kwargs)
            for item in res.get("Items", []):
                yield dynamo.from_item(item)
            if "LastEvaluatedKey" not in res:
                return
            kwargs["ExclusiveStartKey"] = res["LastEvaluatedKey"]

    def recent(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest rows of every outcome (for `erpsync log`)."""
        rows: list[dict[str, Any]] = []
        for outcome in OUTCOMES:
            rows += self.by_outcome(outcome, limit=limit)
        rows.sort(key=lambda r: r["at"], reverse=True)
        return rows[:limit]

    def _query(self, **kwargs: Any) -> list[dict[str, Any]]:
        return dynamo.query(self.table, **kwargs)
