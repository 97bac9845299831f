"""Order to cash on the local stack with QuickBooks Online as the ERP, for both stores:
Magento -> QuickBooks and Shopify -> QuickBooks (``LocalStack(store=..., erp="quickbooks")``, what
``erpsync local up --store ... --erp quickbooks`` starts). Paid orders become sales receipts,
unpaid ones invoices that their payments close, each once and to the cent; an invoice the
bookkeeper gets paid in QuickBooks marks its store order paid (Magento: invoiced with capture;
Shopify: ``orderMarkAsPaid``), once; every flow run again writes nothing. QuickBooks' own
webhooks (CloudEvents, signed) reach the stack's API.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from erpsync.systems.quickbooks.client import QuickBooksClient
from sandbox.local.stack import LocalStack
from sandbox.shopify_merchant import Cart, ShopifyMerchant
from sandbox.sims import magento_orders as mo
from sandbox.story import MagentoAdmin
from tests.support.pair_story import running_stack
from tests.support.patient import patient_http

pytestmark = pytest.mark.e2e
D = Decimal


@pytest.fixture(scope="module", params=["magento", "shopify"])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    yield from running_stack(request.param, "quickbooks", tmp_path_factory.mktemp("stack") / "local.json")


def drain(flow: str) -> list[str]:
    from erpsync.runtime.lambda_app import build

    rt = build(flow)
    rt.poll()
    return [o.outcome for o in rt.drain()]


def books(stack: LocalStack) -> QuickBooksClient:
    """The bookkeeper's view of the books (patient: the company's 10 requests a second are shared
    with the workers)."""
    creds = stack.credentials["quickbooks"]
    return QuickBooksClient(creds["base_url"], creds["realm_id"], lambda: creds["access_token"], http=patient_http())


def place(stack: LocalStack, n: int, *, paid: bool) -> tuple[str, Decimal]:
    """An order in the store (number, total): two lines, a discount, shipping and tax."""
    if stack.store == "shopify":
        with httpx.Client(base_url=stack.sim_urls["shopify"], timeout=30) as http:
            merchant = ShopifyMerchant(http, stack.credentials["shopify"]["access_token"])
            cart = Cart(
                [("24-MB01", 1), ("24-WG084", 2)],
                discount=D("3.00"),
                shipping=D("5.00"),
                tax_rate=D("0.0825"),
                paid=paid,
                gateway="shopify_payments" if paid else "manual",
            )
            placed = merchant.place(f"buyer{n}@example.com", cart)
        return placed["name"], D(placed["totalPriceSet"]["shopMoney"]["amount"])
    catalog = mo.sample_catalog()
    customer = mo.sample_customer(f"buyer{n}@example.com")
    order = mo.build_order(
        catalog,
        [mo.CartLine("24-MB01", 1), mo.CartLine("24-WG084", 2)],
        customer=customer,
        coupon=mo.Coupon("TENOFF", "percent", "10"),
        shipping_amount=5,
        tax_rate="8.25",
        payment_method="braintree" if paid else "checkmo",
        captured=paid,
    )
    [saved] = httpx.post(f"{stack.sim_urls['magento']}/_sim/seed", json={"orders": [order]}, timeout=30).json()[
        "orders"
    ]
    return str(saved["increment_id"]), D(str(order["base_grand_total"]))


def docs(stack: LocalStack, kind: str) -> dict[str, dict[str, Any]]:
    rows = books(stack).query(f"select * from {kind}").get(kind) or []
    return {str(r.get("DocNumber") or r["Id"]): r for r in rows}


def test_orders_become_receipts_and_invoices_once_to_the_cent_and_payments_close_the_invoices(
    stack: LocalStack,
) -> None:
    orders = [place(stack, n, paid=n % 2 == 0) for n in range(4)]
    assert drain("orders").count("synced") == 4
    receipts, invoices = docs(stack, "SalesReceipt"), docs(stack, "Invoice")
    for n, (number, total) in enumerate(orders):
        doc = receipts.get(number) if n % 2 == 0 else invoices.get(number)
        assert doc is not None, (number, sorted(receipts), sorted(invoices))
        assert D(str(doc["TotalAmt"])) == total, number
    assert len(receipts) == 2 and len(invoices) == 2
    outcomes = drain("payments")
    assert outcomes.count("synced") == 2, outcomes  # the receipts are their own payments
    assert docs(stack, "Payment") == {}
    for flow in ("orders", "payments"):
        assert "synced" not in drain(flow), flow


def paid_in_store(stack: LocalStack, number: str) -> bool:
    """Whether the store holds order ``number`` paid in full (Magento: paid its total; Shopify: PAID)."""
    if stack.store == "shopify":
        with httpx.Client(base_url=stack.sim_urls["shopify"], timeout=30) as http:
            merchant = ShopifyMerchant(http, stack.credentials["shopify"]["access_token"])
            rows = merchant.graphql("{ orders(first: 50) { nodes { name displayFinancialStatus } } }")
        return any(r["name"] == number and r["displayFinancialStatus"] == "PAID" for r in rows["orders"]["nodes"])
    admin = MagentoAdmin(**stack.credentials["magento"])
    try:
        [order] = admin.search("/orders", "increment_id", number)
    finally:
        admin.close()
    return D(str(order.get("total_paid") or 0)) == D(str(order["grand_total"]))


def test_invoices_the_bookkeeper_gets_paid_mark_the_store_orders_paid_once(stack: LocalStack) -> None:
    client = books(stack)
    unpaid = [inv for inv in docs(stack, "Invoice").values() if D(str(inv["Balance"])) > 0]
    assert len(unpaid) == 2 and not any(paid_in_store(stack, inv["DocNumber"]) for inv in unpaid)
    for inv in unpaid:  # the bookkeeper receives each payment in QuickBooks
        line = {"Amount": inv["TotalAmt"], "LinkedTxn": [{"TxnId": inv["Id"], "TxnType": "Invoice"}]}
        client.post("/payment", {"CustomerRef": inv["CustomerRef"], "TotalAmt": inv["TotalAmt"], "Line": [line]})
    outcomes = drain("invoices")
    assert outcomes.count("synced") == 2, outcomes
    assert all(paid_in_store(stack, inv["DocNumber"]) for inv in unpaid)
    assert "synced" not in drain("invoices")


def test_quickbooks_webhooks_reach_the_stack(stack: LocalStack) -> None:
    sim = stack.sim_urls["quickbooks"]
    assert httpx.post(f"{sim}/_sim/webhooks/flush", timeout=60).json()["flushed"]
    deliveries = httpx.get(f"{sim}/_sim/webhooks").json()["deliveries"]
    assert deliveries and {d["status"] for d in deliveries} == {202}
