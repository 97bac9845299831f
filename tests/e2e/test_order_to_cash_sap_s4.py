"""Order to cash on the local stack with SAP S/4HANA as the ERP, for both stores: Magento -> S/4 and
Shopify -> S/4 (``LocalStack(store=..., erp="sap_s4")`` with ``local_settings(store, "sap_s4")``, what
``erpsync local up --erp sap_s4`` starts). Each store order becomes one ``A_SalesOrder`` carrying
the store's number in ``PurchaseOrderByCustomer``, its net value to the cent (SAP determines tax
itself: the store's total less its tax); the shipping clerk delivers it through
``API_OUTBOUND_DELIVERY_SRV`` (bill of lading, goods issue) and the shipments flow brings the
tracking number back to the store; the billing clerk bills the delivery (the sim's VF01 door) and,
in Magento, the invoices flow makes the invoice with the e-mail to the customer and completes the
order. Shopify has no invoices: an uncleared S/4 billing document marks nothing paid. Every flow
run again writes nothing. Payments into S/4HANA are not served (FI clearing).

Both stores book on the generic sold-to ``WEBSHOP`` (``sold_to`` ``generic``, the local default);
the third stack runs Shopify -> S/4 with ``sold_to`` ``customer``: each buyer becomes one business
partner (``API_BUSINESS_PARTNER``) with the customer role and the sales area, found by e-mail, and
their orders are booked on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from sandbox.local.stack import LocalStack
from sandbox.sap_s4_clerk import SapS4Clerk
from sandbox.sims.sap_s4 import PARTNERS, SALES
from tests.support.pair_story import Store, drain, running_stack

pytestmark = pytest.mark.e2e
D = Decimal
ORDERS = 3


@pytest.fixture(
    scope="module",
    params=[("magento", "generic"), ("shopify", "generic"), ("shopify", "customer")],
    ids=["magento", "shopify", "shopify-business-partners"],
)
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    store, sold_to = request.param
    state = tmp_path_factory.mktemp("stack") / "local.json"
    yield from running_stack(store, "sap_s4", state, {"sold_to": sold_to})


@pytest.fixture(scope="module")
def clerk(stack: LocalStack) -> Iterator[SapS4Clerk]:
    with httpx.Client(base_url=stack.sim_urls["sap_s4"], timeout=30) as http:
        yield SapS4Clerk(http)


def sales_orders(clerk: SapS4Clerk) -> dict[str, list[dict[str, Any]]]:
    """Every S/4 sales order by its ``PurchaseOrderByCustomer`` (the store's number)."""
    rows = clerk.request("GET", SALES, "A_SalesOrder", params={"$top": "500"})["results"]
    found: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        found.setdefault(str(row["PurchaseOrderByCustomer"]), []).append(row)
    return found


def sold_to(stack: LocalStack) -> str:
    return str(stack.settings["connections"]["sap_s4"]["settings"].get("sold_to", "generic"))


def customers_by_email(clerk: SapS4Clerk) -> dict[str, str]:
    """Every business partner's e-mail -> its ``Customer``."""
    expand = {"$expand": "to_BusinessPartnerAddress/to_EmailAddress"}
    rows = clerk.request("GET", PARTNERS, "A_BusinessPartner", params=expand)["results"]
    return {
        str(m["EmailAddress"]): str(p["Customer"])
        for p in rows
        for a in p["to_BusinessPartnerAddress"]["results"]
        for m in a["to_EmailAddress"]["results"]
    }


def test_order_to_cash_reaches_the_store_once_and_a_second_run_changes_nothing(
    stack: LocalStack, clerk: SapS4Clerk
) -> None:
    store = Store(stack)
    orders = [store.place(n) for n in range(ORDERS)]
    assert drain("orders").count("synced") == ORDERS

    booked = sales_orders(clerk)
    assert sorted(booked) == sorted(o["number"] for o in orders)
    for o in orders:
        [doc] = booked[o["number"]]
        assert o["tax"] > 0 and D(doc["TotalNetAmount"]) == o["total"] - o["tax"], o["number"]
        o["so"], o["sold_to"] = doc["SalesOrder"], doc["SoldToParty"]
    if sold_to(stack) == "generic":
        assert {o["sold_to"] for o in orders} == {"WEBSHOP"}
    else:  # each buyer (buyer<n>@example.com) one business partner, their order booked on it
        partners = customers_by_email(clerk)
        assert [o["sold_to"] for o in orders] == [partners[f"buyer{n}@example.com"] for n in range(ORDERS)]
        assert len(partners) == ORDERS

    deliveries = {o["number"]: clerk.deliver(o["so"], f"1ZS4E2E{i:04d}") for i, o in enumerate(orders)}
    assert all(d["OverallGoodsMovementStatus"] == "C" for d in deliveries.values())
    assert drain("shipments").count("synced") == ORDERS
    for i, o in enumerate(orders):
        assert store.tracking(o) == [f"1ZS4E2E{i:04d}"], o["number"]

    for o in orders:
        clerk.bill(deliveries[o["number"]]["DeliveryDocument"])
    outcomes = drain("invoices")
    if stack.store == "magento":
        assert outcomes.count("synced") == ORDERS, outcomes
        for o in orders:
            [invoice] = store.magento("/invoices", o)
            assert invoice["email_sent"] == 1, o["number"]
            assert store.admin is not None
            assert store.admin.call("GET", f"/orders/{o['ref']}")["state"] == "complete", o["number"]
    else:  # an uncleared S/4 billing document marks nothing paid in Shopify
        assert "synced" not in outcomes, outcomes
        assert [store.financial_status(o) for o in orders] == ["PAID", "PENDING", "PAID"]

    shipped = {o["number"]: store.tracking(o) for o in orders}
    for flow in ("orders", "shipments", "invoices"):
        assert "synced" not in drain(flow), flow
    assert {k: len(v) for k, v in sales_orders(clerk).items()} == {o["number"]: 1 for o in orders}
    assert {o["number"]: store.tracking(o) for o in orders} == shipped
    if stack.store == "magento":
        assert all(len(store.magento("/invoices", o)) == 1 for o in orders)
    if sold_to(stack) == "customer":
        assert len(customers_by_email(clerk)) == ORDERS  # no second partner for anyone
