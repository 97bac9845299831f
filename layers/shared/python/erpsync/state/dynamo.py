"""A thin, typed wrapper over the DynamoDB client: plain dicts in, plain dicts out."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

_ser = TypeSerializer()
_de = TypeDeserializer()


@lru_cache(maxsize=1)
def client() -> Any:
    """One DynamoDB client per process (honours AWS_ENDPOINT_URL for the local stack)."""
    import boto3

    return boto3.client("dynamodb")


def query(table: str, **kwargs: Any) -> list[dict[str, Any]]:
    """Every item a DynamoDB query returns, page after page, as plain dicts; with ``Limit``, it stops
    after the page that reached that many."""
    rows: list[dict[str, Any]] = []
    while True:
        res = client().query(TableName=table, **kwargs)
        rows += [from_item(i) for i in res.get("Items", [])]
        if "LastEvaluatedKey" not in res or ("Limit" in kwargs and len(rows) >= kwargs["Limit"]):
            return rows
        kwargs["ExclusiveStartKey"] = res["LastEvaluatedKey"]


def batch_get(table: str, keys: list[dict[str, Any]], **options: Any) -> list[dict[str, Any]]:
    """The items of ``keys`` that exist, as plain dicts (100 keys a request, unprocessed ones asked
    again); ``options``: ``ConsistentRead``, ``ProjectionExpression``..."""
    rows: list[dict[str, Any]] = []
    for i in range(0, len(keys), 100):
        request: dict[str, Any] = {table: {"Keys": [to_item(k) for k in keys[i : i + 100]], **options}}
        while request:
            res = client().batch_get_item(RequestItems=request)
            rows += [from_item(item) for item in res.get("Responses", {}).get(table, [])]
            request = res.get("UnprocessedKeys") or {}
    return rows


def batch_put(table: str, items: list[dict[str, Any]]) -> None:
    """Put plain-dict items, 25 a request (unprocessed ones sent again)."""
    for i in range(0, len(items), 25):
        request: dict[str, Any] = {table: [{"PutRequest": {"Item": to_item(x)}} for x in items[i : i + 25]]}
        while request:
            res = client().batch_write_item(RequestItems=request)
            request = res.get("UnprocessedItems") or {}


def to_item(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(_plain(v)) for k, v in data.items() if v is not None}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _unplain(_de.deserialize(v)) for k, v in item.items()}


def _plain(v: Any) -> Any:
    if isinstance(v, float):
        return Decimal(str(v))
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items() if x is not None}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    return v


def _unplain(v: Any) -> Any:
    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    if isinstance(v, dict):
        return {k: _unplain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_unplain(x) for x in v]
    return v
