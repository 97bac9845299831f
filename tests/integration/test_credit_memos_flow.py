"""Credit memos, Magento -> Acumatica, on both sims in-process and the bindings in moto: a refund
made in Magento (online through the invoice, or offline on the order; items, shipping and
adjustments) becomes one Acumatica credit memo of the refunded amount, released and paid out by a
refund, never two.

The orders come from the sims' order builder over the sample catalog (as in test_payments_flow);
the refund bodies follow Magento's ``POST /V1/invoice/{id}/refund`` and ``POST /V1/order/{id}/refund``
(sales-data-creditmemo-creation-arguments-interface of the 2.4.8 schema); the refund payment
follows the Postman collection's Payment shape, of type Refund.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from erpsync.errors import MappingMissing, RetryableError
from erpsync.flows.credit_memos import CreditMemoRules
from erpsync.model import ChangeNotice
from erpsync.settings import Settings
from tests.contract.test_acumatica_openapi import assert_holds
from tests.integration.test_payments_flow import Shop, v
from tests.support.magento_schema import validate_answer, validate_request

D = Decimal
ACU = "/entity/Default/24.200.001/"


class RefundShop(Shop):
    """``Shop`` with the credit-memos flow: an order paid by an invoice that captured it."""

    def __init__(self, table: str, settings: Settings | None = None) -> None:
        super().__init__(table, settings or Settings(tax_id="STORETAX", credit_memos={"adjustment_item": "ADJUST"}))
        self.ahttp.post("/_sim/seed", json={"stock_items": [{"InventoryID": "ADJUST", "Description": "Adjustment"}]})
        self.credit_memos = CreditMemoRules(self._ctx("credit-memos", "creditmemo", {}))

    def paid_order(self, method: str = "braintree") -> tuple[dict[str, Any], str]:
        """An order placed, sent to Acumatica, invoiced with capture in Magento and paid there."""
        order = self.place(method=method, captured=False)
        invoice_id = self.magento.client.post(f"/V1/order/{order['entity_id']}/invoice", {"capture": True})
        order = dict(self.mhttp_get(f"/V1/orders/{order['entity_id']}"))
        assert self.sync(self.orders, order).outcome == "synced"
        assert self.sync(self.payments, order).outcome == "synced"
        return order, str(invoice_id)

    def refund(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        validate_request("POST", path.replace("/V1", "/V1", 1), body)
        memo_id = self.magento.client.post(path, body)
        memo = dict(self.mhttp_get(f"/V1/creditmemo/{memo_id}"))
        validate_answer("GET", "/V1/creditmemo/{id}", memo)
        return memo

    def sync_memo(self, memo: dict[str, Any]) -> Any:
        return self.credit_memos.sync(ChangeNotice(source="magento", entity="creditmemo", id=str(memo["entity_id"])))

    def erp_credit_memos(self) -> list[dict[str, Any]]:
        rows = self.ahttp.get(ACU + "SalesInvoice", params={"$filter": "Type eq 'Credit Memo'", "$expand": "Details"})
        return list(rows.json())

    def erp_refunds(self) -> list[dict[str, Any]]:
        rows = self.ahttp.get(ACU + "Payment", params={"$filter": "Type eq 'Refund'", "$expand": "DocumentsToApply"})
        return list(rows.json())


@pytest.fixture
def shop(bindings_table: str) -> RefundShop:
    return RefundShop(bindings_table)


def test_a_partial_online_refund_lands_once_as_a_credit_memo_of_the_refunded_amount(shop: RefundShop) -> None:
    order, invoice_id = shop.paid_order()
    line = next(it for it in order["items"] if it.get("parent_item_id") is None)
    shipping = D(str(order["shipping_amount"]))
    memo = shop.refund(
        f"/V1/invoice/{invoice_id}/refund",
        {
            "items": [{"order_item_id": line["item_id"], "qty": 1}],
            "isOnline": True,
            "arguments": {"shipping_amount": float(shipping), "adjustment_positive": 2, "adjustment_negative": 0.5},
        },
    )
    refunded = D(str(memo["base_grand_total"]))
    assert D(0) < refunded < D(str(order["grand_total"])) and memo["transaction_id"]

    result = shop.sync_memo(memo)
    assert result.outcome == "synced", result.message
    [cm] = shop.erp_credit_memos()
    assert_holds("SalesInvoice", cm)
    assert D(str(v(cm["Amount"]))) == refunded  # to the cent, shipping and adjustments included
    assert D(str(v(cm["FreightPrice"]))) == shipping
    assert v(cm["ExternalRef"]) == memo["increment_id"] and v(cm["CustomerOrder"]) == order["increment_id"]
    assert v(cm["Status"]) == "Closed" and D(str(v(cm["Balance"]))) == 0  # released and paid out
    lines = {v(d["InventoryID"]): d for d in cm["Details"]}
    assert D(str(v(lines[line["sku"]]["Qty"]))) == 1
    assert D(str(v(lines["ADJUST"]["Amount"]))) == D("1.5")  # refund 2.00, fee 0.50
    [refund] = shop.erp_refunds()
    assert_holds("Payment", refund)
    assert D(str(v(refund["PaymentAmount"]))) == refunded
    assert v(refund["PaymentRef"]) == memo["transaction_id"]  # the gateway's refund
    assert v(refund["ExternalRef"]) == memo["increment_id"] and v(refund["Status"]) == "Closed"
    assert v(refund["PaymentMethod"]) == "CREDITCARD"
    [applied] = refund["DocumentsToApply"]
    assert v(applied["ReferenceNbr"]) == v(cm["ReferenceNbr"])

    before = shop.writes()
    again = shop.sync_memo(memo)
    assert again.outcome == "skipped" and shop.writes() == before
    assert len(shop.erp_credit_memos()) == 1 and len(shop.erp_refunds()) == 1


def test_an_offline_refund_of_everything_left_closes_the_order_and_adds_up(shop: RefundShop) -> None:
    order, _ = shop.paid_order(method="checkmo")
    memo = shop.refund(f"/V1/order/{order['entity_id']}/refund", {"notify": False})
    assert not memo.get("transaction_id")
    assert D(str(memo["grand_total"])) == D(str(order["grand_total"]))
    assert shop.mhttp_get(f"/V1/orders/{order['entity_id']}")["state"] == "closed"
    assert shop.sync_memo(memo).outcome == "synced"
    [cm] = shop.erp_credit_memos()
    assert D(str(v(cm["Amount"]))) == D(str(order["grand_total"]))
    [refund] = shop.erp_refunds()
    assert v(refund["PaymentRef"]) == memo["increment_id"] and v(refund["PaymentMethod"]) == "CHECK"


def test_a_lost_answer_on_the_credit_memo_or_the_refund_never_credits_twice(shop: RefundShop) -> None:
    _, invoice_id = shop.paid_order()
    memo = shop.refund(f"/V1/invoice/{invoice_id}/refund", {"isOnline": True, "arguments": {"shipping_amount": 0}})
    shop.ahttp.post("/_sim/faults", json={"lost_response_rate": 1.0, "seed": 3})
    with pytest.raises(RetryableError):  # the credit memo was made; its answer was lost
        shop.sync_memo(memo)
    shop.ahttp.delete("/_sim/faults")
    assert len(shop.erp_credit_memos()) == 1
    assert shop.sync_memo(memo).outcome == "synced"
    [cm] = shop.erp_credit_memos()
    assert v(cm["Status"]) == "Closed"
    assert len(shop.erp_refunds()) == 1

    # the refund's answer lost: the retry finds it by the credit memo number and releases it
    _, invoice2 = shop.paid_order()
    memo2 = shop.refund(f"/V1/invoice/{invoice2}/refund", {"isOnline": True, "arguments": {"shipping_amount": 0}})
    real_refund = shop.credit_memos.ctx.target_port.refund

    def lost(memo_: Any, draft: Any) -> Any:
        real_refund(memo_, draft)
        raise RetryableError("acumatica answered nothing (504)", error_type="timeout", system="acumatica")

    shop.credit_memos.ctx.target_port.refund = lost  # type: ignore[method-assign]
    with pytest.raises(RetryableError):
        shop.sync_memo(memo2)
    shop.credit_memos.ctx.target_port.refund = real_refund  # type: ignore[method-assign]
    assert shop.sync_memo(memo2).outcome == "synced"
    refunds = [r for r in shop.erp_refunds() if v(r["ExternalRef"]) == memo2["increment_id"]]
    assert len(refunds) == 1 and v(refunds[0]["Status"]) == "Closed"


def test_a_credit_memo_waits_for_its_order_and_one_of_an_order_left_out_is_filtered(shop: RefundShop) -> None:
    order = shop.place(method="braintree", captured=False)
    invoice_id = shop.magento.client.post(f"/V1/order/{order['entity_id']}/invoice", {"capture": True})
    memo = shop.refund(f"/V1/invoice/{invoice_id}/refund", {"isOnline": True})
    result = shop.sync_memo(memo)
    assert result.outcome == "filtered" and "never reached" in result.message
    assert shop.erp_credit_memos() == []


def test_an_adjustment_without_an_adjustment_item_fails_naming_the_setting(bindings_table: str) -> None:
    shop = RefundShop(bindings_table, Settings(tax_id="STORETAX"))
    _, invoice_id = shop.paid_order()
    memo = shop.refund(
        f"/V1/invoice/{invoice_id}/refund",
        {"isOnline": True, "arguments": {"shipping_amount": 0, "adjustment_positive": 3}},
    )
    with pytest.raises(MappingMissing, match=r"credit_memos\.adjustment_item"):
        shop.sync_memo(memo)
    assert shop.erp_credit_memos() == []


def test_the_magento_sim_refuses_more_than_was_paid_and_more_items_than_were_invoiced(shop: RefundShop) -> None:
    order, invoice_id = shop.paid_order()
    line = next(it for it in order["items"] if it.get("parent_item_id") is None)
    too_many = shop.mhttp.post(
        f"/rest/default/V1/invoice/{invoice_id}/refund",
        json={"items": [{"order_item_id": line["item_id"], "qty": float(line["qty_ordered"]) + 1}]},
        headers={"Authorization": f"Bearer {shop.magento.client.token()}"},
    )
    assert too_many.status_code == 400 and "unrefunded quantity" in too_many.json()["message"]
    too_much = shop.mhttp.post(
        f"/rest/default/V1/order/{order['entity_id']}/refund",
        json={"arguments": {"adjustment_positive": 10_000}},
        headers={"Authorization": f"Bearer {shop.magento.client.token()}"},
    )
    assert too_much.status_code == 400 and "most money available to refund" in too_much.json()["message"]


@pytest.mark.parametrize("refund_qty", [1, 2])
def test_a_refund_of_discounted_taxed_lines_adds_up_to_the_cent(shop: RefundShop, refund_qty: int) -> None:
    """A percent coupon applied to shipping too and 8.25% tax, thirds that do not divide evenly:
    the ERP credit memo holds exactly what Magento refunded."""
    from sandbox.sims import magento_orders as mo

    built = mo.build_order(
        shop.catalog,
        [mo.CartLine("24-MB01", 3), mo.CartLine("24-MB04", 1)],
        customer=shop.customer,
        payment_method="braintree",
        coupon=mo.Coupon("THIRD", "percent", "33.33", apply_to_shipping=True),
        tax_rate="8.25",
        shipping_amount="7.77",
    )
    [saved] = shop.mhttp.post("/_sim/seed", json={"orders": [built]}).json()["orders"]
    oid = saved["entity_id"]
    invoice_id = shop.magento.client.post(f"/V1/order/{oid}/invoice", {"capture": True})
    order = dict(shop.mhttp_get(f"/V1/orders/{oid}"))
    assert shop.sync(shop.orders, order).outcome == "synced"
    assert shop.sync(shop.payments, order).outcome == "synced"
    line = next(it for it in order["items"] if it["sku"] == "24-MB01")
    memo = shop.refund(
        f"/V1/invoice/{invoice_id}/refund",
        {"items": [{"order_item_id": line["item_id"], "qty": refund_qty}], "isOnline": True},
    )
    result = shop.sync_memo(memo)
    assert result.outcome == "synced", result.message
    [cm] = shop.erp_credit_memos()
    assert D(str(v(cm["Amount"]))) == D(str(memo["base_grand_total"]))
    assert D(str(v(cm["TaxTotal"]))) == D(str(memo["base_tax_amount"]))


def test_a_credit_memo_costs_two_magento_reads_and_four_acumatica_writes(shop: RefundShop) -> None:
    """The happy path asks nothing it knows: the customer and the sales order come from the
    bindings, a released credit memo is not read back; lookups happen only after a lost answer.
    (An action is a long-running operation: its POST answers 202 and its status is read once.)"""
    _, invoice_id = shop.paid_order()
    memo = shop.refund(f"/V1/invoice/{invoice_id}/refund", {"isOnline": True})
    shop.mhttp.delete("/_sim/requests")
    shop.ahttp.delete("/_sim/requests")
    assert shop.sync_memo(memo).outcome == "synced"
    magento = [f"{r['method']} {r['path']}" for r in shop.mhttp.get("/_sim/requests").json()["requests"]]
    acumatica = [
        f"{r['method']} {r['path'].split('24.200.001/')[-1].split('/status/')[0]}"
        for r in shop.ahttp.get("/_sim/requests").json()["requests"]
        if "/auth/" not in r["path"]
    ]
    assert [m.split("/V1/")[-1].split("/")[0] for m in magento] == ["creditmemo", "orders"], magento
    assert acumatica == [
        "PUT SalesInvoice",
        "POST SalesInvoice/ReleaseSalesInvoice",
        "GET SalesInvoice/ReleaseSalesInvoice",
        "PUT Payment",
        "POST Payment/ReleasePayment",
        "GET Payment/ReleasePayment",
    ], acumatica


def test_a_refund_that_carries_the_order_number_is_not_counted_as_a_payment_of_the_order(shop: RefundShop) -> None:
    """Magento numbers orders and credit memos alike (000000001 both): the refund of credit memo
    000000001 carries that number too, and the payments flow, looking for what an order has already
    paid after a lost answer, must not take it for a payment of order 000000001."""
    order, invoice_id = shop.paid_order()
    memo = shop.refund(f"/V1/invoice/{invoice_id}/refund", {"isOnline": True})
    assert memo["increment_id"] == order["increment_id"]  # the collision this guards against
    assert shop.sync_memo(memo).outcome == "synced"
    customer = v(shop.sales_order(order["increment_id"])["CustomerID"])
    paid = shop.acumatica.port("payment", "target").of_order(order["increment_id"], customer)
    assert [(p.doc_type, p.amount) for p in paid] == [("Payment", D(str(order["base_total_paid"])))]
