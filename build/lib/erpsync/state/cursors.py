"""Poll cursors: the source's time up to which every change has been enqueued.

Keyed by ``<flow>#<source connection>``; a cursor written before connections existed
(``<flow>`` alone) is read as the starting point of the first poll after the upgrade.
"""

from __future__ import annotations

from datetime import UTC, datetime

from erpsync.state import dynamo


class Cursors:
    def __init__(self, table: str) -> None:
        self.table = table

    def _read(self, key: str) -> datetime | None:
        res = dynamo.client().get_item(
            TableName=self.table, Key=dynamo.to_item({"pk": f"cursor#{key}", "sk": "-"}), ConsistentRead=True
        )
        if "Item" not in res:
            return None
        return datetime.fromisoformat(dynamo.from_item(res["Item"])["value"])

    def get(self, key: str, legacy: str | None = None) -> datetime | None:
        """The cursor of ``key``; when it has none yet, the legacy key's (migration)."""
        found = self._read(key)
        if found is None and legacy and legacy != key:
            found = self._read(legacy)
        return found

    def set(self, key: str, value: datetime) -> None:
        """Move the cursor forward (never back: a slow poll cannot rewind a faster one)."""
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        iso = value.astimezone(UTC).isoformat()
        try:
            dynamo.client().put_item(
                TableName=self.table,
                Item=dynamo.to_item({"pk": f"cursor#{key}", "sk": "-", "value": iso}),
                ConditionExpression="attribute_not_exists(#v) OR #v < :v",
                ExpressionAttributeNames={"#v": "value"},
                ExpressionAttributeValues=dynamo.to_item({":v": iso}),
            )
        except dynamo.client().exceptions.ConditionalCheckFailedException:
            pass
