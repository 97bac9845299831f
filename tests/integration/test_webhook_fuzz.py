"""Hostile input at the webhook API: whatever arrives, the answer is never a 5xx, and nothing
is enqueued unless the request is signed and well formed."""

from __future__ import annotations

import base64
import json
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from erpsync.flows.catalog import FLOWS
from erpsync.runtime import ingress
from erpsync.systems.magento.webhooks import sign

SECRETS = {"magento": "m-secret", "acumatica": "a-secret"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
magento_like = st.fixed_dictionaries(
    {"eventName": st.sampled_from(["observer.sales_order_save_after", "x", ""]) | st.text(max_size=30)},
    optional={"data": st.dictionaries(st.sampled_from(["order", "x"]), json_values, max_size=2) | json_values},
)
acumatica_like = st.fixed_dictionaries(
    {},
    optional={
        "Query": json_values,
        "Id": json_values,
        "Inserted": st.lists(st.dictionaries(st.sampled_from(["ShipmentNbr", "ReferenceNbr", "Type"]), json_values)),
        "TimeStamp": st.integers() | json_values,
    },
)


def event(source: str, body: bytes, headers: dict[str, str], b64: bool = False) -> dict[str, Any]:
    return {
        "httpMethod": "POST",
        "path": f"/webhooks/{source}",
        "pathParameters": {"source": source},
        "headers": headers,
        "body": base64.b64encode(body).decode() if b64 else body.decode("utf-8", "surrogateescape"),
        "isBase64Encoded": b64,
    }


def queued(aws: dict[str, Any]) -> int:
    sqs = boto3.client("sqs")
    total = 0
    for name in (f"{flow.logical_id}Queue" for flow in FLOWS):
        attrs = sqs.get_queue_attributes(QueueUrl=aws["queues"][name], AttributeNames=["ApproximateNumberOfMessages"])
        total += int(attrs["Attributes"]["ApproximateNumberOfMessages"])
    return total


@pytest.fixture
def env(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("BINDINGS_TABLE", aws["tables"]["BindingsTable"])
    for flow in FLOWS:  # every flow's queue, as QUEUE_URL_PREFIX gives it in Lambda
        monkeypatch.setenv(f"{flow.name.upper().replace('-', '_')}_QUEUE_URL", aws["queues"][f"{flow.logical_id}Queue"])
    return aws


def handle(source: str, body: bytes, headers: dict[str, str], b64: bool = False) -> dict[str, Any]:
    return ingress.handle(event(source, body, headers, b64), secrets=lambda: SECRETS)


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(body=st.binary(max_size=300), source=st.sampled_from(["magento", "acumatica", "shopify", ""]))
def test_random_bytes_never_5xx_never_enqueue(env: dict[str, Any], body: bytes, source: str) -> None:
    r = handle(source, body, {"X-Erpsync-Token": "a-secret"}, b64=True)
    assert 400 <= r["statusCode"] < 500
    assert "message" in json.loads(r["body"])
    assert queued(env) == 0


@FUZZ
@given(body=magento_like)
def test_signed_but_malformed_magento_bodies_get_4xx(env: dict[str, Any], body: dict[str, Any]) -> None:
    raw = json.dumps(body).encode()
    r = handle("magento", raw, sign("m-secret", raw))
    assert r["statusCode"] in (202, 400), r
    if r["statusCode"] == 400:
        assert json.loads(r["body"])["message"]


@FUZZ
@given(body=acumatica_like)
def test_acumatica_shaped_bodies_get_2xx_or_4xx(env: dict[str, Any], body: dict[str, Any]) -> None:
    r = handle("acumatica", json.dumps(body).encode(), {"x-erpsync-token": "a-secret"})
    assert r["statusCode"] in (202, 400), r


def test_unsigned_forged_replayed_and_oversized_requests_are_refused(env: dict[str, Any]) -> None:
    body = b'{"eventName": "observer.sales_order_save_after", "data": {"order": {"entity_id": 5}}}'
    assert handle("magento", body, {})["statusCode"] == 401
    assert handle("magento", body, sign("wrong", body))["statusCode"] == 401
    assert handle("magento", body, sign("m-secret", body, timestamp=1))["statusCode"] == 401
    big = b'{"x": "' + b"a" * 300_000 + b'"}'
    r = handle("magento", big, sign("m-secret", big))
    assert r["statusCode"] == 413 and "limit" in json.loads(r["body"])["message"]
    assert handle("acumatica", b"{}", {"x-erpsync-token": "nope"})["statusCode"] == 401
    assert queued(env) == 0


def test_a_webhook_delivered_twice_is_enqueued_once(env: dict[str, Any]) -> None:
    body = json.dumps(
        {
            "specversion": "1.0",
            "id": "evt-9",
            "type": "com.adobe.commerce.observer.sales_order_save_after",
            "data": {"value": {"entity_id": 9}},
        }
    ).encode()
    first = handle("magento", body, sign("m-secret", body))
    again = handle("magento", body, sign("m-secret", body))
    assert json.loads(first["body"]) == {"accepted": 1, "duplicates": 0}
    assert json.loads(again["body"]) == {"accepted": 0, "duplicates": 1}
    assert queued(env) == 2  # the orders and the payments flows (a store order's save rings both)


def count(aws: dict[str, Any], name: str) -> int:
    attrs = boto3.client("sqs").get_queue_attributes(
        QueueUrl=aws["queues"][name], AttributeNames=["ApproximateNumberOfMessages"]
    )
    return int(attrs["Attributes"]["ApproximateNumberOfMessages"])


def test_customer_webhooks_ring_the_customers_flows_of_each_side(env: dict[str, Any]) -> None:
    from pathlib import Path

    sample = Path(__file__).parents[2] / "events" / "webhooks" / "magento_customer_saved.json"
    body = sample.read_bytes()
    r = handle("magento", body, sign(SECRETS["magento"], body))
    assert r["statusCode"] == 202, r["body"]
    assert count(env, "CustomersQueue") == 1 and count(env, "OrdersQueue") == 0
    push = json.dumps(
        {"Query": "Customers", "Id": "p-1", "CompanyId": "Company", "Inserted": [{"CustomerID": "C000123"}]}
    ).encode()
    r = handle("acumatica", push, {"X-Erpsync-Token": SECRETS["acumatica"]})
    assert r["statusCode"] == 202, r["body"]
    assert count(env, "ErpCustomersQueue") == 1
    msg = boto3.client("sqs").receive_message(QueueUrl=env["queues"]["ErpCustomersQueue"])["Messages"][0]
    assert json.loads(msg["Body"])["source"] == "acumatica" and json.loads(msg["Body"])["entity"] == "customer"


def test_an_unknown_connection_is_404_naming_the_known_ones(env: dict[str, Any]) -> None:
    r = handle("shopify", b"{}", {})
    assert r["statusCode"] == 404 and "magento" in r["body"] and "acumatica" in r["body"]


def test_an_order_webhook_rings_the_orders_and_the_payments_flows_once_each(env: dict[str, Any]) -> None:
    body = json.dumps(
        {"eventName": "observer.sales_order_save_after", "data": {"order": {"entity_id": 12, "increment_id": "12"}}}
    ).encode()
    headers = {**sign("m-secret", body), "x-erpsync-event-id": "evt-12"}
    first = handle("magento", body, headers)
    again = handle("magento", body, headers)
    assert json.loads(first["body"]) == {"accepted": 1, "duplicates": 0}  # one notice, two flows
    assert json.loads(again["body"]) == {"accepted": 0, "duplicates": 1}
    assert count(env, "OrdersQueue") == 1 and count(env, "PaymentsQueue") == 1
    [message] = boto3.client("sqs").receive_message(QueueUrl=env["queues"]["PaymentsQueue"])["Messages"]
    notice = json.loads(message["Body"])
    assert (notice["entity"], notice["id"], notice["source"]) == ("payment", "12", "magento")
