"""Store refunds -> QuickBooks Online through the credit-memos flow, on the sims in-process and the
bindings in moto: a refund of an order booked as a sales receipt becomes a refund receipt (the money
paid back from the deposit account, Undeposited Funds by default), of one booked as an invoice a
credit memo (the customer's credit); the refunded items at their unit price, the shipping on the
shipping item, the adjustment on ``credit_memos.adjustment_item``, the tax as
``TxnTaxDetail.TotalTax``, to the cent with the store's refund; each once, a lost answer included.

The Magento refunds follow ``POST /V1/invoice/{id}/refund`` and ``POST /V1/order/{id}/refund``
(sales-data-creditmemo-creation-arguments-interface of the official 2.4.8 schema,
tests/fixtures/magento/admin-schema-2.4.8.yaml), each body checked against it as in
test_credit_memos_flow; the Shopify one is ``refundCreate`` through the Shopify sim. Every QuickBooks
document is checked against Intuit's XSDs.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from starlette.testclient import TestClient

from erpsync.errors import RetryableError, ValidationFailed
from erpsync.flows.credit_memos import CreditMemoRules
from erpsync.model import ChangeNotice
from erpsync.settings import Settings
from sandbox.shopify_merchant import Cart
from sandbox.sims import quickbooks as qbo_sim
from tests.integration.test_quickbooks_estimates import V3, H, Twice, answer_lost
from tests.integration.test_quickbooks_flows import Books
from tests.support.magento_schema import validate_answer, validate_request
from tests.support.qbo_schema import validate_response

D = Decimal
SETTINGS = {"tax_id": "STORETAX", "default_ship_via": "GROUND", "credit_memos": {"adjustment_item": "ADJUST"}}


class Refunds(Twice):
    """Magento, QuickBooks (with an adjustment item) and the orders, payments and credit-memos flows."""

    def __init__(self, table: str, documents: str = "auto") -> None:
        super().__init__(table, documents, Settings.model_validate(SETTINGS))
        seeded = self.qhttp.post(
            "/_sim/seed", json={"items": [{"Name": "Refund adjustment", "Sku": "ADJUST", "Type": "Service"}]}
        )
        self.adjust = seeded.json()["items"][0]["Id"]
        self.credit_memos = CreditMemoRules(self._ctx("credit-memos", "creditmemo", {}))

    def booked(self, *, paid: bool) -> tuple[dict[str, Any], str]:
        """An order sent to QuickBooks after Magento captured it (a sales receipt), or before (an invoice
        its payment then pays), and the Magento invoice that captured it."""
        order = self.pending_order("braintree" if paid else "checkmo")
        if not paid:
            assert self.run(self.orders, order).target_id == f"Invoice/{order['increment_id']}"
        invoice = str(self.store.client.post(f"/V1/order/{order['entity_id']}/invoice", {"capture": True}))
        order = self.read(order)
        if paid:
            assert self.run(self.orders, order).target_id == f"SalesReceipt/{order['increment_id']}"
        else:
            assert self.run(self.payments, order).outcome == "synced"
        return order, invoice

    def refund(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        validate_request("POST", path, body)
        memo_id = self.store.client.post(path, body)
        memo = dict(self.store.client.get(f"/V1/creditmemo/{memo_id}"))
        validate_answer("GET", "/V1/creditmemo/{id}", memo)
        return memo

    def sync_memo(self, memo: dict[str, Any]) -> Any:
        return self.credit_memos.sync(ChangeNotice(source="magento", entity="creditmemo", id=str(memo["entity_id"])))

    def account(self, name: str) -> str:
        rows = self.qclient.query(f"select * from Account where Name = '{name}'")["Account"]
        return str(rows[0]["Id"])


@pytest.fixture
def refunds(bindings_table: str) -> Refunds:
    return Refunds(bindings_table)


def item_lines(doc: dict[str, Any]) -> dict[str, tuple[D, D, D]]:
    """Item id -> (quantity, unit price, amount) of a document's sales item lines."""
    return {
        ln["SalesItemLineDetail"]["ItemRef"]["value"]: (
            D(str(ln["SalesItemLineDetail"]["Qty"])),
            D(str(ln["SalesItemLineDetail"]["UnitPrice"])),
            D(str(ln["Amount"])),
        )
        for ln in doc["Line"]
        if ln["DetailType"] == "SalesItemLineDetail"
    }


def test_a_refund_of_a_sales_receipt_order_is_one_refund_receipt_to_the_cent(refunds: Refunds) -> None:
    b = refunds
    order, invoice = b.booked(paid=True)
    line = next(it for it in order["items"] if it["sku"] == "24-MB01")
    memo = b.refund(
        f"/V1/invoice/{invoice}/refund",
        {
            "items": [{"order_item_id": line["item_id"], "qty": 1}],
            "isOnline": True,
            "arguments": {"shipping_amount": 10, "adjustment_positive": 2, "adjustment_negative": 0.5},
        },
    )
    b.qhttp.delete("/_sim/requests")
    result = b.sync_memo(memo)
    assert result.outcome == "synced", result.message
    assert b.requests() == [("POST", "batch"), ("POST", "refundreceipt")]  # document, items, account: one batch
    number = f"R{memo['increment_id']}"
    assert (
        result.target_id == number
        and f"refund receipt {number} paid {memo['base_grand_total']:.2f} back" in result.message
    )
    receipt = b.one("RefundReceipt", number)
    assert D(str(receipt["TotalAmt"])) == D(str(memo["base_grand_total"]))  # to the cent, everything included
    assert D(str(receipt["TxnTaxDetail"]["TotalTax"])) == D(str(memo["base_tax_amount"]))
    assert receipt["DepositToAccountRef"] == {"value": b.account("Undeposited Funds")}
    assert receipt["CustomerRef"] == b.one("SalesReceipt", order["increment_id"])["CustomerRef"]
    by_item, ids = item_lines(receipt), b.quickbooks.port("order", "target").item_ids
    assert by_item[ids["24-MB01"]] == (D(1), D(str(line["price"])), D(str(line["price"])))  # one bag at its price
    assert by_item[b.adjust] == (D(1), D("1.5"), D("1.5"))  # refund 2.00, fee 0.50
    assert by_item[ids["Shipping"]] == (D(1), D(10), D(10))
    assert len(by_item) == 3
    [discount] = [ln for ln in receipt["Line"] if ln["DetailType"] == "DiscountLineDetail"]
    assert D(str(discount["Amount"])) == D(str(memo["base_discount_amount"])).copy_abs()

    b.qhttp.delete("/_sim/requests")
    again = b.sync_memo(memo)
    assert again.outcome == "skipped" and b.requests() == []
    assert len(b.documents("RefundReceipt")) == 1 and b.documents("CreditMemo") == []


def test_a_lost_answer_on_a_refund_receipt_makes_no_second_one(refunds: Refunds) -> None:
    b = refunds
    _, invoice = b.booked(paid=True)
    memo = b.refund(f"/V1/invoice/{invoice}/refund", {"isOnline": True, "arguments": {"shipping_amount": 0}})
    with answer_lost(b.qhttp, "POST", "/refundreceipt") as lost, pytest.raises(RetryableError, match="timed out"):
        b.sync_memo(memo)
    assert lost and len(b.documents("RefundReceipt")) == 1
    result = b.sync_memo(memo)
    assert result.outcome == "synced" and result.message.startswith("found quickbooks credit memo"), result.message
    [receipt] = b.documents("RefundReceipt")
    assert D(str(receipt["TotalAmt"])) == D(str(memo["base_grand_total"]))


def test_a_refund_of_a_paid_invoice_order_is_one_credit_memo_kept_as_the_customers_credit(refunds: Refunds) -> None:
    b = refunds
    order, _ = b.booked(paid=False)
    memo = b.refund(f"/V1/order/{order['entity_id']}/refund", {"notify": False})  # offline, everything
    assert D(str(memo["base_grand_total"])) == D(str(order["base_grand_total"]))
    number = f"R{memo['increment_id']}"
    with answer_lost(b.qhttp, "POST", "/creditmemo") as lost, pytest.raises(RetryableError):
        b.sync_memo(memo)
    assert lost and len(b.documents("CreditMemo")) == 1
    result = b.sync_memo(memo)
    assert result.outcome == "synced" and result.message.startswith("found quickbooks credit memo"), result.message
    assert (
        f"kept as the customer's credit ({memo['base_grand_total']:.2f} left on credit memo {number})" in result.message
    )
    credit = b.one("CreditMemo", number)
    invoice = b.one("Invoice", order["increment_id"])
    assert D(str(credit["TotalAmt"])) == D(str(credit["RemainingCredit"])) == D(str(invoice["TotalAmt"]))
    assert D(str(credit["TxnTaxDetail"]["TotalTax"])) == D(str(memo["base_tax_amount"]))
    assert "DepositToAccountRef" not in credit and credit["CustomerRef"] == invoice["CustomerRef"]
    assert item_lines(credit) == item_lines(invoice)  # every line, the shipping, at the prices charged
    assert D(str(invoice["Balance"])) == 0  # paid by the store's capture: the credit stays the customer's
    assert b.sync_memo(memo).outcome == "skipped"
    assert len(b.documents("CreditMemo")) == 1 and b.documents("RefundReceipt") == []


def test_a_shopify_refund_of_a_paid_order_is_a_refund_receipt(bindings_table: str) -> None:
    b = Books(bindings_table, "shopify")
    memos = CreditMemoRules(b._ctx("credit-memos", "creditmemo", {}))
    placed = b.merchant.place(
        "roni_cost@example.com", Cart([("24-MB01", 2)], shipping=D("7.50"), tax_rate=D("0.06"), paid=True)
    )
    oid = placed["legacyResourceId"]
    assert b.sync(b.orders, oid).target_id == f"SalesReceipt/{placed['name']}"
    refund = b.merchant.refund(oid, [("24-MB01", 1)], shipping=D("7.50"))
    refunded = D(refund["totalRefundedSet"]["shopMoney"]["amount"])
    rid = refund["legacyResourceId"]
    result = b.sync(memos, rid)
    assert result.outcome == "synced", result.message
    [receipt] = b.documents("RefundReceipt")
    assert receipt["DocNumber"] == f"R{rid}" and D(str(receipt["TotalAmt"])) == refunded  # to the cent
    assert D(0) < refunded < D(placed["totalPriceSet"]["shopMoney"]["amount"])


def test_a_refund_waits_for_its_order_and_one_of_an_order_never_sent_is_left_out(bindings_table: str) -> None:
    b = Refunds(bindings_table, documents="estimate")
    never = b.pending_order("braintree")
    invoice = str(b.store.client.post(f"/V1/order/{never['entity_id']}/invoice", {"capture": True}))
    memo = b.refund(f"/V1/invoice/{invoice}/refund", {"isOnline": True})
    left = b.sync_memo(memo)
    assert left.outcome == "filtered"
    assert left.message == f"magento order {never['increment_id']} never reached quickbooks: nothing to credit"

    quoted = b.pending_order("braintree")
    assert b.run(b.orders, quoted).target_id == f"Estimate/{quoted['increment_id']}"
    invoice = str(b.store.client.post(f"/V1/order/{quoted['entity_id']}/invoice", {"capture": True}))
    memo = b.refund(f"/V1/invoice/{invoice}/refund", {"isOnline": True, "arguments": {"shipping_amount": 0}})
    with pytest.raises(RetryableError, match="its credit memo waits for the document that books it") as waits:
        b.sync_memo(memo)
    assert waits.value.error_type == "waiting_for_order"
    assert b.documents("CreditMemo") == [] and b.documents("RefundReceipt") == []


def test_a_refund_bigger_than_the_document_or_of_a_voided_one_fails_naming_both(refunds: Refunds) -> None:
    b = refunds
    order, invoice = b.booked(paid=True)
    receipt = b.one("SalesReceipt", order["increment_id"])
    kept = [ln for ln in receipt["Line"] if ln["DetailType"] == "SalesItemLineDetail"][:1]
    edited = b.qclient.post(  # the bookkeeper took lines off the sales receipt in QuickBooks
        "/salesreceipt", {"Id": receipt["Id"], "SyncToken": receipt["SyncToken"], "sparse": True, "Line": kept}
    )["SalesReceipt"]
    memo = b.refund(f"/V1/invoice/{invoice}/refund", {"isOnline": True})
    with pytest.raises(ValidationFailed) as bigger:
        b.sync_memo(memo)
    assert str(bigger.value) == (
        f"refund {memo['increment_id']} of {D(str(memo['base_grand_total'])):.2f} is more than SalesReceipt "
        f"{order['increment_id']} ({D(str(edited['TotalAmt'])):.2f})"
    )
    b.qclient.post(
        "/salesreceipt", {"Id": edited["Id"], "SyncToken": edited["SyncToken"], "sparse": True}, operation="void"
    )
    with pytest.raises(ValidationFailed, match=f"SalesReceipt {order['increment_id']} is voided in QuickBooks"):
        b.sync_memo(memo)
    assert b.documents("RefundReceipt") == []


def test_the_sim_keeps_a_credit_memos_remaining_credit_and_wants_a_refund_receipts_account() -> None:
    qbo = TestClient(qbo_sim.create_app(), base_url="http://qbo")
    seeded = qbo.post(
        "/_sim/seed",
        json={
            "items": [{"Name": "24-MB01", "Sku": "24-MB01"}],
            "customers": [{"DisplayName": "Amy", "PrimaryEmailAddr": {"Address": "amy@example.com"}}],
        },
    ).json()
    line = {
        "DetailType": "SalesItemLineDetail",
        "Amount": 34.0,
        "SalesItemLineDetail": {"ItemRef": {"value": seeded["items"][0]["Id"]}, "Qty": 1, "UnitPrice": 34.0},
    }
    body = {"CustomerRef": {"value": seeded["customers"][0]["Id"]}, "Line": [line], "TxnTaxDetail": {"TotalTax": 2.81}}

    def call(path: str, json: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        r = qbo.post(f"{V3}{path}", headers=H, json=json)
        validate_response(r.json())
        return r.status_code, r.json()

    status, credit = call("/creditmemo", body)
    assert status == 200 and credit["CreditMemo"]["RemainingCredit"] == credit["CreditMemo"]["TotalAmt"] == 36.81
    status, missing = call("/refundreceipt", body)
    error = missing["Fault"]["Error"][0]
    assert status == 400 and (error["code"], error["element"]) == ("2020", "DepositToAccountRef")
    status, unknown = call("/refundreceipt", {**body, "DepositToAccountRef": {"value": "999"}})
    assert status == 400 and "Account 999" in unknown["Fault"]["Error"][0]["Detail"]
    status, receipt = call("/refundreceipt", {**body, "DepositToAccountRef": {"value": "101"}})
    assert status == 200 and receipt["RefundReceipt"]["Balance"] == 0 and receipt["RefundReceipt"]["TotalAmt"] == 36.81
