"""Order to cash on the local stack with SAP Business One as the ERP, for both stores: Magento -> B1
and Shopify -> B1 (``LocalStack(store=..., erp="sap_b1")`` with ``local_settings(store, "sap_b1")``,
what ``erpsync local up --erp sap_b1`` starts). Each store order becomes one B1 order carrying the
store's number in ``NumAtCard``, to the cent; the B1 clerk delivers it through the Service Layer
with a tracking number and the shipments flow brings that number back to the store; the clerk
invoices the delivery and, in Magento, the invoices flow makes the invoice with the e-mail to the
customer and completes the order. Shopify has no invoices: its invoice target marks an order paid
only on an invoice paid in full, so an open B1 invoice is filtered. Every flow run again writes
nothing. Payments into B1 are not part of this story yet.

The Service Layer sends no webhooks; a B1 installation can push its changes in a body erpsync
defines (``systems/sap_b1/webhooks.py``): a delivery pushed to the stack's webhook address reaches
the store with no poll at all, and the same push delivered twice is one notice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from erpsync.systems.signing import sign
from sandbox.local.stack import LocalStack
from sandbox.sap_b1_clerk import SapB1Clerk
from tests.support.pair_story import Store, drain, running_stack

pytestmark = pytest.mark.e2e
D = Decimal
ORDERS = 3


@pytest.fixture(scope="module", params=["magento", "shopify"])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    yield from running_stack(request.param, "sap_b1", tmp_path_factory.mktemp("stack") / "local.json")


@pytest.fixture(scope="module")
def clerk(stack: LocalStack) -> Iterator[SapB1Clerk]:
    with httpx.Client(base_url=stack.credentials["sap_b1"]["base_url"], timeout=30) as http:
        yield SapB1Clerk(http)


def b1_orders(clerk: SapB1Clerk) -> dict[str, list[dict[str, Any]]]:
    """Every B1 sales order by its ``NumAtCard`` (the store's number)."""
    rows = clerk.request("GET", "Orders", params={"$select": "DocEntry,NumAtCard,DocTotal,Cancelled", "$top": 500})
    found: dict[str, list[dict[str, Any]]] = {}
    for row in rows["value"]:
        found.setdefault(str(row["NumAtCard"]), []).append(row)
    return found


def test_order_to_cash_reaches_the_store_once_and_a_second_run_changes_nothing(
    stack: LocalStack, clerk: SapB1Clerk
) -> None:
    store = Store(stack)
    orders = [store.place(n) for n in range(ORDERS)]
    assert drain("orders").count("synced") == ORDERS

    booked = b1_orders(clerk)
    assert {o["number"] for o in orders} <= set(booked)
    for o in orders:
        [doc] = booked[o["number"]]
        assert D(str(doc["DocTotal"])) == o["total"], o["number"]
        o["b1"] = doc["DocEntry"]

    deliveries = {o["number"]: clerk.deliver(o["b1"], f"1ZB1E2E{i:04d}") for i, o in enumerate(orders)}
    assert drain("shipments").count("synced") == ORDERS
    for i, o in enumerate(orders):
        assert store.tracking(o) == [f"1ZB1E2E{i:04d}"], o["number"]

    for o in orders:
        clerk.invoice(deliveries[o["number"]]["DocEntry"])
    outcomes = drain("invoices")
    if stack.store == "magento":
        assert outcomes.count("synced") == ORDERS, outcomes
        for o in orders:
            [invoice] = store.magento("/invoices", o)
            assert invoice["email_sent"] == 1 and D(str(invoice["grand_total"])) == o["total"], o["number"]
            assert store.admin is not None
            assert store.admin.call("GET", f"/orders/{o['ref']}")["state"] == "complete", o["number"]
    else:  # an open B1 invoice marks nothing paid in Shopify
        assert outcomes.count("filtered") == ORDERS and "synced" not in outcomes, outcomes
        assert [store.financial_status(o) for o in orders] == ["PAID", "PENDING", "PAID"]

    shipped = {o["number"]: store.tracking(o) for o in orders}
    for flow in ("orders", "shipments", "invoices"):
        assert "synced" not in drain(flow), flow
    assert {o["number"]: len(b1_orders(clerk)[o["number"]]) for o in orders} == {o["number"]: 1 for o in orders}
    assert {o["number"]: store.tracking(o) for o in orders} == shipped
    if stack.store == "magento":
        assert all(len(store.magento("/invoices", o)) == 1 for o in orders)


def test_a_delivery_pushed_by_b1_reaches_the_store_without_a_poll_and_a_second_push_is_a_duplicate(
    stack: LocalStack, clerk: SapB1Clerk
) -> None:
    from erpsync.runtime.lambda_app import build

    store = Store(stack)
    order = store.place(90)
    assert drain("orders").count("synced") == 1
    [doc] = b1_orders(clerk)[order["number"]]
    delivery = clerk.deliver(doc["DocEntry"], "1ZB1PUSH0001")
    body = json.dumps(
        {"events": [{"object": "15", "key": str(delivery["DocEntry"]), "action": "A", "at": delivery_time()}]}
    ).encode()
    url = stack.info["webhook_urls"]["sap_b1"]
    headers = {"Content-Type": "application/json", **sign(stack.webhook_secrets["sap_b1"], body)}
    first = httpx.post(url, content=body, headers=headers, timeout=30)
    assert (first.status_code, first.json()) == (202, {"accepted": 1, "duplicates": 0}), first.text
    again = httpx.post(url, content=body, headers=headers, timeout=30)
    assert (again.status_code, again.json()) == (202, {"accepted": 0, "duplicates": 1}), again.text

    outcomes = [o.outcome for o in build("shipments").drain()]  # the queue only: no poll ran
    assert outcomes == ["synced"], outcomes
    assert store.tracking(order) == ["1ZB1PUSH0001"]

    unsigned = httpx.post(url, content=body, headers={"Content-Type": "application/json"}, timeout=30)
    assert unsigned.status_code == 401 and "x-erpsync-signature" in unsigned.json()["message"]


def delivery_time() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="seconds")
