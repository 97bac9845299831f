"""ERP credit memos, Acumatica -> Magento, on both sims in-process: a credit memo a clerk enters in
Acumatica against a web order's invoice lines becomes one offline Magento credit memo on that order,
of Acumatica's amount to the cent, and never comes back as an Acumatica credit memo.

The order is placed with the sims' order builder over the sample catalog (as in test_payments_flow),
shipped, invoiced and released in Acumatica through its REST API as the demo's clerk does; the credit
memo is the OpenAPI's SalesInvoice of type Credit Memo whose Details name the invoice lines they credit
(``OrigInvType``, ``OrigInvNbr``, ``OrigInvLineNbr``, Default/24.200.001).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from erpsync.errors import MappingMissing, ValidationFailed
from erpsync.flows.credit_memos import CreditMemoRules
from erpsync.flows.documents import InvoiceRules
from erpsync.flows.erp_credit_memos import ErpCreditMemoRules
from erpsync.model import ChangeNotice
from erpsync.settings import Settings
from erpsync.state import dynamo
from sandbox.sims import magento_orders as mo
from tests.contract.test_acumatica_openapi import assert_holds
from tests.integration.test_payments_flow import Shop, v
from tests.support.magento_schema import validate_answer

API = "/entity/Default/24.200.001"
D = Decimal


class ClerkShop(Shop):
    """``Shop`` with the invoices flow, both credit memo flows, and Acumatica's clerk."""

    def __init__(self, table: str) -> None:
        super().__init__(table, Settings(tax_id="STORETAX"))
        self.invoices = InvoiceRules(self._ctx("invoices", "invoice", {}))
        self.erp_memos = ErpCreditMemoRules(self._ctx("erp-credit-memos", "creditmemo", {}))
        self.store_memos = CreditMemoRules(self._ctx("credit-memos", "creditmemo", {}))

    def invoiced_order(self) -> tuple[dict[str, Any], str]:
        """A Magento order (two lines, a discount, tax and shipping) sent to Acumatica, shipped,
        invoiced and released there, and its invoice brought to Magento; the order and the
        Acumatica invoice number."""
        order = mo.build_order(
            self.catalog,
            [mo.CartLine("24-MB01", 2), mo.CartLine("24-WG084", 1)],
            customer=self.customer,
            coupon=mo.Coupon("TENOFF", "percent", "10"),
            shipping_amount=10,
            tax_rate="8.25",
            payment_method="checkmo",
        )
        [saved] = self.mhttp.post("/_sim/seed", json={"orders": [order]}).json()["orders"]
        placed = dict(self.mhttp_get(f"/V1/orders/{saved['entity_id']}"))
        assert self.sync(self.orders, placed).outcome == "synced"
        so = self.sales_order(placed["increment_id"])
        self.action("SalesOrder", "SalesOrderCreateShipment", {"id": so["id"]}, {"WarehouseID": {"value": "WHOLESALE"}})
        fresh = self.ahttp.get(f"{API}/SalesOrder/{v(so['OrderType'])}/{v(so['OrderNbr'])}?$expand=Shipments").json()
        shipment = v(fresh["Shipments"][-1]["ShipmentNbr"])
        self.action("Shipment", "ConfirmShipment", {"ShipmentNbr": {"value": shipment}})
        self.shipment_confirmed(shipment)
        self.action("Shipment", "PrepareInvoice", {"ShipmentNbr": {"value": shipment}})
        [row] = self.ahttp.get(f"{API}/Shipment/{shipment}?$expand=Orders").json()["Orders"]
        invoice = str(v(row["InvoiceNbr"]))
        self.action(
            "SalesInvoice", "ReleaseSalesInvoice", {"Type": {"value": "Invoice"}, "ReferenceNbr": row["InvoiceNbr"]}
        )
        result = self.invoices.sync(ChangeNotice(source="acumatica", entity="invoice", id=invoice))
        assert result.outcome == "synced", result.message
        return dict(self.mhttp_get(f"/V1/orders/{saved['entity_id']}")), invoice

    def shipment_confirmed(self, shipment: str) -> None:
        """What happens once the order's shipment is confirmed in Acumatica (here: nothing)."""

    def action(self, entity: str, name: str, keys: dict[str, Any], params: dict[str, Any] | None = None) -> None:
        body: dict[str, Any] = {"entity": keys, **({"parameters": params} if params else {})}
        r = self.ahttp.post(f"{API}/{entity}/{name}", json=body)
        assert r.status_code in (200, 202, 204), r.text

    def enter_credit_memo(self, invoice: str, lines: list[tuple[int, int]], freight: str = "0", **over: Any) -> str:
        """A clerk's credit memo against invoice ``invoice``'s lines (``(line nbr, qty)``), released."""
        details = [
            {
                "OrigInvType": {"value": "Invoice"},
                "OrigInvNbr": {"value": invoice},
                "OrigInvLineNbr": {"value": n},
                "Qty": {"value": qty},
            }
            for n, qty in lines
        ]
        body = {
            "Type": {"value": "Credit Memo"},
            "CustomerID": {"value": self.customer_id()},
            "Description": {"value": "Returned by the customer"},
            "Hold": {"value": False},
            "Details": details,
            "FreightPrice": {"value": float(freight)},
            **over,
        }
        r = self.ahttp.put(f"{API}/SalesInvoice?$expand=Details", json=body)
        assert r.status_code == 200, r.text
        memo = r.json()
        assert_holds("SalesInvoice", memo)
        self.action("SalesInvoice", "ReleaseSalesInvoice", {"Type": memo["Type"], "ReferenceNbr": memo["ReferenceNbr"]})
        return str(v(memo["ReferenceNbr"]))

    def customer_id(self) -> str:
        rows = self.ahttp.get(f"{API}/SalesOrder").json()
        return str(v(rows[0]["CustomerID"]))

    def erp_memo(self, number: str) -> dict[str, Any]:
        return dict(self.ahttp.get(f"{API}/SalesInvoice/Credit Memo/{number}?$expand=Details").json())

    def run(self, number: str) -> Any:
        return self.erp_memos.sync(ChangeNotice(source="acumatica", entity="creditmemo", id=number))

    def store_memos_of(self, order_id: Any) -> list[dict[str, Any]]:
        page = self.magento.client.get(
            "/V1/creditmemos",
            params={
                "searchCriteria[filter_groups][0][filters][0][field]": "order_id",
                "searchCriteria[filter_groups][0][filters][0][value]": str(order_id),
            },
        )
        return list(page["items"])


@pytest.fixture
def shop(bindings_table: str) -> ClerkShop:
    return ClerkShop(bindings_table)


def test_a_clerks_credit_memo_becomes_one_offline_magento_credit_memo_of_its_amount(shop: ClerkShop) -> None:
    order, invoice = shop.invoiced_order()
    number = shop.enter_credit_memo(invoice, [(1, 1)], freight="10")
    erp = shop.erp_memo(number)
    amount = D(str(v(erp["Amount"])))
    result = shop.run(number)
    assert result.outcome == "synced", result.message
    [memo] = shop.store_memos_of(order["entity_id"])
    validate_answer("GET", "/V1/creditmemo/{id}", shop.mhttp_get(f"/V1/creditmemo/{memo['entity_id']}"))
    assert D(str(memo["grand_total"])) == amount  # to the cent
    assert [(i["sku"], D(str(i["qty"]))) for i in memo["items"] if D(str(i["qty"])) > 0] == [("24-MB01", D(1))]
    assert D(str(memo["shipping_amount"])) == D(10)
    assert f"[erpsync ref: {number}]" in memo["comments"][0]["comment"]
    after = shop.mhttp_get(f"/V1/orders/{order['entity_id']}")
    assert D(str(after["total_refunded"])) == amount
    # both sides name the order: the ERP credit memo now carries the store order number
    assert v(shop.erp_memo(number)["CustomerOrder"]) == order["increment_id"]
    # never twice, never back: again, the store credit memo through the store-to-ERP flow
    assert shop.run(number).outcome == "skipped"
    back = shop.store_memos.sync(ChangeNotice(source="magento", entity="creditmemo", id=str(memo["entity_id"])))
    assert back.outcome in ("skipped", "filtered"), back.message
    credit_memos = shop.ahttp.get(f"{API}/SalesInvoice", params={"$filter": "Type eq 'Credit Memo'"}).json()
    assert [v(c["ReferenceNbr"]) for c in credit_memos] == [number]
    assert len(shop.store_memos_of(order["entity_id"])) == 1


def test_a_store_credit_memo_made_from_the_erp_is_not_sent_back_even_before_it_is_bound(shop: ClerkShop) -> None:
    """The marker comment alone keeps it home (a poll of the store may find it between its create
    and its binding)."""
    order, invoice = shop.invoiced_order()
    number = shop.enter_credit_memo(invoice, [(2, 1)])
    assert shop.run(number).outcome == "synced"
    [memo] = shop.store_memos_of(order["entity_id"])
    key = {"pk": {"S": f"creditmemo#magento#{memo['entity_id']}"}, "sk": {"S": "acumatica"}}
    dynamo.client().delete_item(TableName=shop.bindings.table, Key=key)
    back = shop.store_memos.sync(ChangeNotice(source="magento", entity="creditmemo", id=str(memo["entity_id"])))
    assert back.outcome == "filtered" and number in back.message


def test_a_lost_answer_on_the_store_write_makes_no_second_credit_memo(shop: ClerkShop) -> None:
    order, invoice = shop.invoiced_order()
    number = shop.enter_credit_memo(invoice, [(1, 2)])
    shop.mhttp.post("/_sim/faults", json={"lost_response_rate": 1.0, "lost_response_mode": "504", "seed": 1})
    with pytest.raises(Exception):
        shop.run(number)
    shop.mhttp.delete("/_sim/faults")
    binding = shop.bindings.get("creditmemo", "acumatica", number, "magento")
    assert binding is not None and binding.status == "pending"
    result = shop.run(number)
    assert result.outcome == "synced" and "found" in result.message, result.message
    assert len(shop.store_memos_of(order["entity_id"])) == 1


def test_an_unreleased_or_store_made_credit_memo_is_filtered_with_the_reason(shop: ClerkShop) -> None:
    _order, invoice = shop.invoiced_order()
    body = {
        "Type": {"value": "Credit Memo"},
        "CustomerID": {"value": shop.customer_id()},
        "Hold": {"value": True},
        "Details": [
            {"OrigInvType": {"value": "Invoice"}, "OrigInvNbr": {"value": invoice}, "OrigInvLineNbr": {"value": 1}}
        ],
    }
    held = shop.ahttp.put(f"{API}/SalesInvoice", json=body).json()
    result = shop.run(str(v(held["ReferenceNbr"])))
    assert result.outcome == "filtered" and "On Hold" in result.message
    number = shop.enter_credit_memo(invoice, [(1, 1)], ExternalRef={"value": "000000042"})
    result = shop.run(number)
    assert result.outcome == "filtered" and "000000042" in result.message


def test_a_credit_memo_of_more_than_magento_can_refund_fails_naming_both(shop: ClerkShop) -> None:
    """The ERP credits three units of a line Magento invoiced two of: nothing is written."""
    order, invoice = shop.invoiced_order()
    number = shop.enter_credit_memo(invoice, [(1, 3)])
    with pytest.raises(ValidationFailed, match="2 invoiced and not refunded, the ERP credits 3"):
        shop.run(number)
    assert shop.store_memos_of(order["entity_id"]) == []


def test_a_credit_memo_line_of_an_order_line_the_store_does_not_know_fails_clearly(shop: ClerkShop) -> None:
    order, invoice = shop.invoiced_order()
    number = shop.enter_credit_memo(invoice, [(1, 1)])
    sent = shop.bindings.get("order", "magento", str(order["entity_id"]), "acumatica")
    assert sent is not None and sent.other_id
    rev = shop.bindings.get("order", "acumatica", sent.other_id, "magento")
    assert rev is not None
    rev.data["line_map"] = {}
    shop.bindings.put(rev)
    with pytest.raises(MappingMissing, match="has no matching line"):
        shop.run(number)


def test_an_erp_that_keeps_its_customer_order_still_gets_one_store_credit_memo(
    shop: ClerkShop, monkeypatch: Any
) -> None:
    """Writing the store order number back is the last step: an ERP that refuses it (a released
    document) leaves the store credit memo made and bound, and the result says reconcile will not
    count it."""
    from erpsync.errors import PermanentError

    order, invoice = shop.invoiced_order()
    number = shop.enter_credit_memo(invoice, [(1, 1)])

    def refuse(_number: str, _store_order: str) -> None:
        raise PermanentError("CustomerOrder cannot be changed on a released document", system="acumatica")

    monkeypatch.setattr(shop.erp_memos.ctx.source_port, "mark", refuse)
    result = shop.run(number)
    assert result.outcome == "synced" and "reconcile will not count it" in result.message, result.message
    assert shop.run(number).outcome == "skipped"
    assert len(shop.store_memos_of(order["entity_id"])) == 1
