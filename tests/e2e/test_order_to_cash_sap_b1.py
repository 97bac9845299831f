"""Order to cash on the local stack with SAP Business One as the ERP, for both stores: Magento -> B1
and Shopify -> B1 (``LocalStack(store=..., erp="sap_b1")`` with ``local_settings(store, "sap_b1")``,
what ``erpsync local up --erp sap_b1`` starts). Each store order becomes one B1 order carrying the
store's number in ``NumAtCard``, to the cent; the B1 clerk delivers it through the Service Layer
with a tracking number and the shipments flow brings that number back to the store; the clerk
invoices the delivery and, in Magento, the invoices flow makes the invoice with the e-mail to the
customer and completes the order. Shopify has no invoices: its invoice target marks an order paid
only on an invoice paid in full, so an open B1 invoice is filtered. Every flow run again writes
nothing. Payments into B1 are not part of this story yet.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from sandbox.local.stack import LocalStack, default_seed, local_settings
from sandbox.sap_b1_clerk import SapB1Clerk
from sandbox.shopify_merchant import Cart, ShopifyMerchant
from sandbox.sims import magento_orders as mo
from sandbox.story import MagentoAdmin

pytestmark = pytest.mark.e2e
D = Decimal
ORDERS = 3


@pytest.fixture(scope="module", params=["magento", "shopify"])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    from cli.target import use_local

    state = tmp_path_factory.mktemp("stack") / "local.json"
    with LocalStack(
        store=request.param,
        erp="sap_b1",
        state_file=state,
        run_pollers=False,
        run_schedules=False,
        seed=default_seed(),
        settings=local_settings(request.param, "sap_b1"),
    ) as s:
        use_local(state)
        yield s


@pytest.fixture(scope="module")
def clerk(stack: LocalStack) -> Iterator[SapB1Clerk]:
    with httpx.Client(base_url=stack.credentials["sap_b1"]["base_url"], timeout=30) as http:
        yield SapB1Clerk(http)


def drain(flow: str) -> list[str]:
    from erpsync.runtime.lambda_app import build

    rt = build(flow)
    rt.poll()
    return [o.outcome for o in rt.drain()]


class Store:
    """The stack's store through its own API: places orders, reads their shipments and invoices."""

    def __init__(self, stack: LocalStack) -> None:
        self.kind, self.url = stack.store, stack.sim_urls[stack.store]
        self.token = stack.credentials["shopify"]["access_token"] if self.kind == "shopify" else ""
        self.admin = MagentoAdmin(**stack.credentials["magento"]) if self.kind == "magento" else None

    def merchant(self, http: httpx.Client) -> ShopifyMerchant:
        return ShopifyMerchant(http, self.token)

    def place(self, n: int) -> dict[str, Any]:
        """An order (``number``, ``total``, ``ref``: the store's id): two lines, a discount, shipping, tax."""
        if self.kind == "shopify":
            cart = Cart(
                [("24-MB01", 1), ("24-WG084", 2)],
                discount=D("3.00"),
                shipping=D("5.00"),
                tax_rate=D("0.0825"),
                paid=n % 2 == 0,
                gateway="shopify_payments" if n % 2 == 0 else "manual",
            )
            with httpx.Client(base_url=self.url, timeout=30) as http:
                placed = self.merchant(http).place(f"buyer{n}@example.com", cart)
            return {
                "number": placed["name"],
                "total": D(placed["totalPriceSet"]["shopMoney"]["amount"]),
                "ref": placed["id"],
            }
        order = mo.build_order(
            mo.sample_catalog(),
            [mo.CartLine("24-MB01", 1), mo.CartLine("24-WG084", 2)],
            customer=mo.sample_customer(f"buyer{n}@example.com"),
            coupon=mo.Coupon("TENOFF", "percent", "10"),
            shipping_amount=5,
            tax_rate="8.25",
            payment_method="braintree" if n % 2 == 0 else "checkmo",
            captured=n % 2 == 0,
        )
        [saved] = httpx.post(f"{self.url}/_sim/seed", json={"orders": [order]}, timeout=30).json()["orders"]
        return {
            "number": str(saved["increment_id"]),
            "total": D(str(order["base_grand_total"])),
            "ref": str(saved["entity_id"]),
        }

    def tracking(self, order: dict[str, Any]) -> list[str]:
        if self.kind == "shopify":
            with httpx.Client(base_url=self.url, timeout=30) as http:
                found = self.merchant(http).order(order["ref"])
            return [t["number"] for f in found["fulfillments"] for t in f["trackingInfo"]]
        assert self.admin is not None
        rows = self.admin.search("/shipments", "order_id", order["ref"])
        return [t["track_number"] for s in rows for t in s.get("tracks") or []]

    def magento(self, path: str, order: dict[str, Any]) -> list[dict[str, Any]]:
        assert self.admin is not None
        return self.admin.search(path, "order_id", order["ref"])

    def financial_status(self, order: dict[str, Any]) -> str:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            return str(
                self.merchant(http).graphql(
                    "query($id: ID!) { order(id: $id) { displayFinancialStatus } }", {"id": order["ref"]}
                )["order"]["displayFinancialStatus"]
            )


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
    assert sorted(booked) == sorted(o["number"] for o in orders)
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
    assert {k: len(v) for k, v in b1_orders(clerk).items()} == {o["number"]: 1 for o in orders}
    assert {o["number"]: store.tracking(o) for o in orders} == shipped
    if stack.store == "magento":
        assert all(len(store.magento("/invoices", o)) == 1 for o in orders)
