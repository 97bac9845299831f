"""Poll cursors: the source's time up to which every change has been enqueued."""

from __future__ import annotations

from datetime import UTC, datetime

from erpsync.state import dynamo


class Cursors:
    def __init__(self, table: str) -> None:
        self.table = table

    def get(self, flow: str) -> datetime | None:
        res = dynamo.client().get_item(
            TableName=self.table, Key=dynamo.to_item({"pk": f"cursor#{flow}", "sk": "-"}), ConsistentRead=True
        )
        if "Item" not in res:
            return None
        return datetime.fromisoformat(dynamo.from_item(res["Item"])["value"])

    def set(self, flow: str, value: datetime) -> None:
        """Move the cursor forward (never back: a slow poll cannot rewind a faster one)."""
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        iso = value.astimezone(UTC).isoformat()
        try:
            dynamo.client().put_item(
                TableName=self.table,
                Item=dynamo.to_item({"pk": f"cursor#{flow}", "sk": "-", "value": iso}),
                ConditionExpression="attribute_not_exists(#v) OR #v < :v",
                ExpressionAttributeNames={"#v": "value"},
                ExpressionAttributeValues=dynamo.to_item({":v": iso}),
            )
        except dynamo.client().exceptions.ConditionalCheckFailedException:
            pass
