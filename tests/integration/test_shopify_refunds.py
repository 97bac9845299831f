"""Shopify refunds -> Acumatica credit memos, as Magento's credit memos go (flows/credit_memos.py):
a refund made with ``refundCreate`` (lines, shipping, a refund transaction) becomes one Acumatica
credit memo of the money given back, to the cent, released and paid out by a refund, once.

Shopify's own recorded refunds (``tests/fixtures/shopify/rest-2026-07-refund.json`` and the legacy
``refund.json``) are replayed into the sim through its control API with their recorded amounts and
read back through the Admin GraphQL API: the mapping gives their money to the cent.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from erpsync.errors import RetryableError
from erpsync.flows.credit_memos import CreditMemoRules
from erpsync.model import ChangeNotice
from erpsync.systems.shopify.mapping import refund_from_shopify
from sandbox.shopify_merchant import Cart
from tests.integration.test_catalog_flows import BEGINNING
from tests.integration.test_payments_flow import v
from tests.integration.test_shopify_flows import ShopifyShop

FIXTURES = Path(__file__).parent.parent / "fixtures" / "shopify"
ACU = "/entity/Default/24.200.001/"
D = Decimal


class RefundShop(ShopifyShop):
    """``ShopifyShop`` with the credit-memos flow."""

    def __init__(self, table: str) -> None:
        super().__init__(table)
        self.settings.credit_memos.adjustment_item = "ADJUST"
        self.ahttp.post("/_sim/seed", json={"stock_items": [{"InventoryID": "ADJUST", "Description": "Adjustment"}]})
        self.credit_memos = CreditMemoRules(self._ctx("credit-memos", "creditmemo", {}))

    def paid_order(self, cart: Cart | None = None) -> dict[str, Any]:
        placed = self.place(cart)
        assert self.sync(self.orders, placed["legacyResourceId"]).outcome == "synced"
        assert self.sync(self.payments, placed["legacyResourceId"]).outcome == "synced"
        return placed

    def erp_credit_memos(self) -> list[dict[str, Any]]:
        rows = self.ahttp.get(ACU + "SalesInvoice", params={"$filter": "Type eq 'Credit Memo'", "$expand": "Details"})
        return list(rows.json())

    def erp_refunds(self) -> list[dict[str, Any]]:
        rows = self.ahttp.get(ACU + "Payment", params={"$filter": "Type eq 'Refund'", "$expand": "DocumentsToApply"})
        return list(rows.json())

    def polled(self) -> list[ChangeNotice]:
        port = self.shopify.port("creditmemo", "source")
        return [n for page in port.changes(BEGINNING) for n in page.notices]


@pytest.fixture
def shop(bindings_table: str) -> RefundShop:
    return RefundShop(bindings_table)


def test_a_partial_refund_lands_once_as_a_credit_memo_of_the_money_given_back(shop: RefundShop) -> None:
    placed = shop.paid_order()  # 2 x 24-MB01 at 34, WS12-M-Orange 22, 10 off, 10 shipping, 8.25% tax: 97.43
    refund = shop.merchant.refund(placed["legacyResourceId"], [("24-MB01", 1)], shipping=D("10.00"))
    money = D(refund["totalRefundedSet"]["shopMoney"]["amount"])
    # one of two bags: half of (68 less the line's 7.56 of the 10 off), half of the line's 5.61 tax, the shipping
    assert money == D("30.22") + D("2.81") + D("10.00"), money
    [notice] = shop.polled()
    assert notice.id == refund["legacyResourceId"]
    result = shop.credit_memos.sync(notice)
    assert result.outcome == "synced", result.message
    [cm] = shop.erp_credit_memos()
    assert D(str(v(cm["Amount"]))) == money
    assert D(str(v(cm["FreightPrice"]))) == D("10.00")
    assert v(cm["ExternalRef"]) == refund["legacyResourceId"] and v(cm["CustomerOrder"]) == placed["name"]
    lines = {v(d["InventoryID"]): d for d in cm["Details"]}
    assert sorted(lines) == ["24-MB01"] and D(str(v(lines["24-MB01"]["Qty"]))) == 1
    assert v(cm["Status"]) == "Closed"  # released and paid out
    [erp_refund] = shop.erp_refunds()
    assert D(str(v(erp_refund["PaymentAmount"]))) == money and v(erp_refund["PaymentMethod"]) == "CREDITCARD"
    again = shop.credit_memos.sync(notice)
    assert again.outcome == "skipped"
    assert len(shop.erp_credit_memos()) == 1 and len(shop.erp_refunds()) == 1


def test_a_refund_of_less_money_than_the_goods_carries_the_difference_as_an_adjustment(shop: RefundShop) -> None:
    placed = shop.paid_order(Cart([("24-MB01", 2)], tax_rate=D("0.0825")))  # 68 + 5.61 tax
    refund = shop.merchant.refund(placed["legacyResourceId"], [("24-MB01", 2)], amount=D("60.00"))
    memo = shop.shopify.port("creditmemo", "source").get(refund["legacyResourceId"])
    assert (memo.grand_total, memo.tax_total, memo.adjustment) == (D("60.00"), D("5.61"), D("-13.61"))
    assert memo.computed_total() == D("60.00")
    result = shop.credit_memos.sync(ChangeNotice(source="shopify", entity="creditmemo", id=memo.source_id))
    assert result.outcome == "synced", result.message
    [cm] = shop.erp_credit_memos()
    assert D(str(v(cm["Amount"]))) == D("60.00")
    lines = {v(d["InventoryID"]): D(str(v(d["Amount"]))) for d in cm["Details"]}
    assert lines["ADJUST"] == D("-13.61")


def test_the_recorded_refund_maps_to_the_cent(shop: RefundShop) -> None:
    """Shopify's sample (two iPods of 199.00 given back at 195.66 and 195.67 with 3.98 tax each,
    209.00 refunded), replayed into the sim with its recorded amounts, read back through GraphQL."""
    recorded = json.loads((FIXTURES / "rest-2026-07-refund.json").read_text())["refund"]
    shop.shttp.post(
        "/_sim/seed",
        json={
            "products": [
                {
                    "title": "IPod Nano - 8gb",
                    "variants": [{"sku": s, "price": "199.00"} for s in ("IPOD2008BLACK", "IPOD2008GREEN")],
                }
            ]
        },
    )
    placed = shop.merchant.place("bob.norman@mail.example.com", Cart([("IPOD2008BLACK", 1), ("IPOD2008GREEN", 1)]))
    answer = shop.shttp.post("/_sim/seed", json={"refunds": [{"order": placed["id"], "refund": recorded}]}).json()
    refund_id = answer["refunds"][0]["id"].rsplit("/", 1)[1]
    memo = shop.shopify.port("creditmemo", "source").get(refund_id)
    assert [(ln.sku, ln.qty, ln.unit_price, ln.discount, ln.amount, ln.tax) for ln in memo.lines] == [
        ("IPOD2008BLACK", 1, D("199.00"), D("3.34"), D("195.66"), D("3.98")),
        ("IPOD2008GREEN", 1, D("199.00"), D("3.33"), D("195.67"), D("3.98")),
    ]
    assert (memo.tax_total, memo.shipping, memo.grand_total) == (D("7.96"), D("0.00"), D("209.00"))
    assert memo.adjustment == D("209.00") - D("399.29")  # the sample gives back less money than the goods
    assert memo.computed_total() == memo.grand_total == D("209.00")
    assert (memo.payment_method, memo.online, memo.order_number) == ("bogus", True, placed["name"])
    assert memo.email == "bob.norman@mail.example.com"

    legacy = json.loads((FIXTURES / "refund.json").read_text())["refund"]
    second = shop.merchant.place("bob.norman@mail.example.com", Cart([("IPOD2008BLACK", 1), ("IPOD2008GREEN", 1)]))
    answer = shop.shttp.post("/_sim/seed", json={"refunds": [{"order": second["id"], "refund": legacy}]}).json()
    old = shop.shopify.port("creditmemo", "source").get(answer["refunds"][0]["id"].rsplit("/", 1)[1])
    assert [ln.amount for ln in old.lines] == [D("199.00"), D("199.00")]
    assert (old.tax_total, old.grand_total, old.adjustment) == (D("7.96"), D("209.00"), D("-196.96"))


def test_a_pending_refund_waits_and_a_refund_line_without_a_sku_fails_naming_it() -> None:
    bag = {
        "shopMoney": {"amount": "10.00", "currencyCode": "USD"},
        "presentmentMoney": {"amount": "10.00", "currencyCode": "USD"},
    }
    node: dict[str, Any] = {
        "id": "gid://shopify/Refund/9007199254741001",
        "order": {
            "id": "gid://shopify/Order/9007199254740999",
            "name": "#1009",
            "email": "a@example.com",
            "currencyCode": "USD",
        },
        "refundLineItems": {
            "nodes": [
                {
                    "quantity": 1,
                    "priceSet": bag,
                    "subtotalSet": bag,
                    "totalTaxSet": None,
                    "lineItem": {"id": "gid://shopify/LineItem/1", "sku": "", "name": "Gift wrap"},
                }
            ]
        },
        "transactions": {
            "nodes": [
                {
                    "id": "gid://shopify/OrderTransaction/5",
                    "kind": "REFUND",
                    "status": "PENDING",
                    "gateway": "shopify_payments",
                    "amountSet": bag,
                }
            ]
        },
    }
    with pytest.raises(RetryableError, match="PENDING"):
        refund_from_shopify(node)
    node["transactions"]["nodes"][0]["status"] = "SUCCESS"
    with pytest.raises(
        Exception,
        match=r"#1009: refund 9007199254741001 of refundLineItems\[0\]\.lineItem\.sku is missing \(line 'Gift wrap'\)",
    ):
        refund_from_shopify(node)


def test_the_sim_refuses_a_refund_of_more_than_was_bought_or_paid(shop: RefundShop) -> None:
    placed = shop.paid_order(Cart([("24-MB01", 1)]))
    with pytest.raises(RuntimeError, match="cannot refund more items"):
        shop.merchant.refund(placed["legacyResourceId"], [("24-MB01", 2)])
    with pytest.raises(RuntimeError, match="greater than the refundable amount"):
        shop.merchant.refund(placed["legacyResourceId"], [("24-MB01", 1)], amount=D("999.00"))
    assert shop.merchant.order(placed["legacyResourceId"])["displayFinancialStatus"] == "PAID"
    shop.merchant.refund(placed["legacyResourceId"], [("24-MB01", 1)])
    assert shop.merchant.order(placed["legacyResourceId"])["displayFinancialStatus"] == "REFUNDED"


def test_the_poll_finds_every_refund_of_an_order_with_many(shop: RefundShop) -> None:
    placed = shop.paid_order(Cart([("24-MB01", 7)]))
    made = [shop.merchant.refund(placed["legacyResourceId"], [("24-MB01", 1)]) for _ in range(6)]
    assert sorted(n.id for n in shop.polled()) == sorted(r["legacyResourceId"] for r in made)
    operations = [q["operation"] for q in shop.shttp.get("/_sim/costs").json()["queries"]]
    assert operations.count("AllRefunds") == 1  # the page row showed five: the order's refunds read whole
