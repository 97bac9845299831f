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
