"""A Shopify refund rings the credit-memos flow at once: ``refunds/create`` (the refund's REST
resource, signed) becomes one ``creditmemo`` notice of the refund's id on the credit-memos queue;
a forged one is refused with 401 and enqueues nothing; the same delivery twice is enqueued once.
The sim sends the webhook, signed, when a refund is made with ``refundCreate``, to the addresses
subscribed to ``REFUNDS_CREATE``; the notice it makes is a refund the credit-memos flow syncs.

Shopify's recorded refund (``tests/fixtures/shopify/rest-2026-07-refund.json``, the body a
``refunds/create`` webhook carries) is the payload parsed and sent through the ingress."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest

from erpsync.flows.catalog import FLOWS
from erpsync.model import ChangeNotice
from erpsync.runtime import ingress
from erpsync.systems.plugin import BadWebhook
from erpsync.systems.shopify import webhooks
from sandbox.sims import shopify as sim
from tests.integration.test_payments_flow import v
from tests.integration.test_shopify_refunds import RefundShop
from tests.integration.test_shopify_sim import Inbox

FIXTURES = Path(__file__).parent.parent / "fixtures" / "shopify"
RECORDED = json.dumps(json.loads((FIXTURES / "rest-2026-07-refund.json").read_text())["refund"]).encode()
SECRET = "shpss_client_secret"
D = Decimal


def headers(
    body: bytes, secret: str = SECRET, webhook_id: str = "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
) -> dict[str, str]:
    return {
        "X-Shopify-Topic": "refunds/create",
        "X-Shopify-Hmac-Sha256": webhooks.sign(secret, body),
        "X-Shopify-Shop-Domain": "shop.myshopify.com",
        "X-Shopify-API-Version": "2025-01",
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Triggered-At": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def lower(given: dict[str, str]) -> dict[str, str]:
    return {k.lower(): val for k, val in given.items()}


def test_shopifys_recorded_refund_becomes_a_credit_memo_notice_of_the_refund() -> None:
    [notice] = webhooks.receive(SECRET, RECORDED, lower(headers(RECORDED)))
    assert notice == {
        "source": "shopify",
        "entity": "creditmemo",
        "id": "509562969",  # the refund, not its order (450789469)
        "event_id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        "occurred_at": datetime(2025, 7, 2, 11, 38, 15, tzinfo=timezone(timedelta(hours=-5))),
        "version": None,  # a refund has no updated_at: the flow's binding settles a repeat
    }
    ChangeNotice(**notice)  # what the worker reads it as


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda r: r.pop("id"), "the refunds/create body has no numeric 'id'"),
        (lambda r: r.update(id="gid://shopify/Refund/509562969"), "no numeric 'id'"),
        (lambda r: r.update(created_at="yesterday"), "'created_at' is not a time: 'yesterday'"),
    ],
)
def test_a_malformed_refund_body_is_refused_naming_what_is_wrong(change: Any, named: str) -> None:
    body = json.loads(RECORDED)
    change(body)
    raw = json.dumps(body).encode()
    with pytest.raises(BadWebhook, match=named) as refused:
        webhooks.receive(SECRET, raw, lower(headers(raw)))
    assert refused.value.status == 400


@pytest.fixture
def env(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The ingress of a stack whose store is Shopify (its connection id ``shopify``)."""
    monkeypatch.setenv("BINDINGS_TABLE", aws["tables"]["BindingsTable"])
    monkeypatch.setenv("STORE_SYSTEM", "shopify")
    for flow in FLOWS:
        monkeypatch.setenv(f"{flow.name.upper().replace('-', '_')}_QUEUE_URL", aws["queues"][f"{flow.logical_id}Queue"])
    ingress._stored.clear()
    return aws


def deliver(body: bytes, given: dict[str, str]) -> dict[str, Any]:
    event = {
        "httpMethod": "POST",
        "path": "/webhooks/shopify",
        "pathParameters": {"source": "shopify"},
        "headers": given,
        "body": body.decode(),
        "isBase64Encoded": False,
    }
    return ingress.handle(event, secrets=lambda: {"shopify": SECRET})


def queued(aws: dict[str, Any]) -> dict[str, int]:
    sqs = boto3.client("sqs")
    out = {}
    for flow in FLOWS:
        url = aws["queues"][f"{flow.logical_id}Queue"]
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        out[flow.name] = int(attrs["Attributes"]["ApproximateNumberOfMessages"])
    return {k: n for k, n in out.items() if n}


def test_a_refund_webhook_is_enqueued_once_for_the_credit_memos_flow_and_a_forged_one_not_at_all(
    env: dict[str, Any],
) -> None:
    forged = deliver(RECORDED, headers(RECORDED, secret="not-the-apps-secret"))
    assert forged["statusCode"] == 401 and "signature does not match" in forged["body"]
    tampered = RECORDED.replace(b'"209.00"', b'"2090.00"')
    assert deliver(tampered, headers(RECORDED))["statusCode"] == 401  # signed for another body
    unsigned = {k: val for k, val in headers(RECORDED).items() if k != "X-Shopify-Hmac-Sha256"}
    assert deliver(RECORDED, unsigned)["statusCode"] == 401
    assert queued(env) == {}

    first = deliver(RECORDED, headers(RECORDED))
    again = deliver(RECORDED, headers(RECORDED))  # Shopify's retry: the same X-Shopify-Webhook-Id

    assert first["statusCode"] == 202 and json.loads(first["body"]) == {"accepted": 1, "duplicates": 0}
    assert again["statusCode"] == 202 and json.loads(again["body"]) == {"accepted": 0, "duplicates": 1}
    assert queued(env) == {"credit-memos": 1}
    url = env["queues"]["CreditMemosQueue"]
    [message] = boto3.client("sqs").receive_message(QueueUrl=url)["Messages"]
    body = json.loads(message["Body"])
    assert (body["source"], body["entity"], body["id"]) == ("shopify", "creditmemo", "509562969")


@pytest.fixture
def shop(bindings_table: str) -> RefundShop:
    return RefundShop(bindings_table)


@pytest.fixture
def inbox() -> Any:
    box = Inbox()
    box.server.start()
    yield box
    box.server.stop()


def test_the_sim_sends_refunds_create_signed_and_its_notice_syncs_the_refund(shop: RefundShop, inbox: Inbox) -> None:
    shop.merchant.subscribe(inbox.url, ("REFUNDS_CREATE",))
    placed = shop.paid_order()  # 97.43: 2 x 24-MB01, WS12-M-Orange, 10 off, 10 shipping, 8.25% tax
    refund = shop.merchant.refund(placed["legacyResourceId"], [("24-MB01", 1)], shipping=D("10.00"))
    assert shop.shttp.post("/_sim/webhooks/flush").json()["flushed"]

    [(body, given)] = inbox.received  # the order's own changes went to no one: not subscribed
    assert given["x-shopify-topic"] == "refunds/create"
    assert given["x-shopify-hmac-sha256"] == webhooks.sign(sim.CLIENT_SECRET, body)
    sent = json.loads(body)
    assert set(sent) == set(json.loads(RECORDED))  # the keys of Shopify's recorded refund
    [fields] = webhooks.receive(sim.CLIENT_SECRET, body, given)
    assert (fields["entity"], fields["id"]) == ("creditmemo", refund["legacyResourceId"])

    result = shop.credit_memos.sync(ChangeNotice(**fields))

    assert result.outcome == "synced", result.message
    [cm] = shop.erp_credit_memos()
    assert D(str(v(cm["Amount"]))) == D(refund["totalRefundedSet"]["shopMoney"]["amount"]) == D("43.03")
    assert v(cm["ExternalRef"]) == refund["legacyResourceId"]
    again = shop.credit_memos.sync(ChangeNotice(**fields))  # a redelivery that slipped past the ingress
    assert again.outcome == "skipped" and len(shop.erp_credit_memos()) == 1
