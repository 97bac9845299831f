"""Returns, on both sims in-process: an Adobe Commerce return (RMA) the merchant authorized in
Magento becomes one Acumatica RM order; the warehouse receives it (``SalesOrderCreateReceipt``,
``ConfirmShipment``), and the Magento return says so; the credit memo the receipt makes
(``PrepareInvoice``, ``ReleaseSalesInvoice``) lands on the Magento order to the cent.

The order is placed with the sims' order builder over the sample catalog (two lines, a coupon, tax,
shipping), shipped and invoiced in Acumatica through its REST API as the Postman collection's "POS
Systems" scenario does, and both documents are brought to Magento by their flows. The return is
made through Magento's ``POST /V1/returns`` (``rma-data-rma-interface``, Adobe Commerce 2.4), the RM
order's receipt through the collection's "Create a Shipment with the Receipt Operation for an RMA
Order for a Return".
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest

from erpsync.flows.documents import ShipmentRules
from erpsync.flows.returns import ErpReturnRules, ReturnRules
from erpsync.model import ChangeNotice
from erpsync.state import dynamo
from tests.contract.test_acumatica_openapi import assert_holds
from tests.integration.test_erp_credit_memos_flow import API, ClerkShop
from tests.integration.test_payments_flow import v
from tests.support.magento_schema import validate_answer, validate_request

D = Decimal


class ReturnShop(ClerkShop):
    """``ClerkShop`` on Adobe Commerce, with the shipments and both returns flows."""

    def __init__(self, table: str) -> None:
        super().__init__(table)
        self.mhttp.post("/_sim/seed", json={"edition": "commerce"})
        self.shipments = ShipmentRules(self._ctx("shipments", "shipment", {}))
        self.returns = ReturnRules(self._ctx("returns", "return", {}))
        self.erp_returns = ErpReturnRules(self._ctx("erp-returns", "return", {}))

    def delivered_order(self) -> dict[str, Any]:
        """A Magento order shipped and invoiced in Acumatica, both brought to Magento."""
        order, _invoice = self.invoiced_order()
        return order

    def shipment_confirmed(self, shipment: str) -> None:
        """The shipments flow brings it to Magento (a return takes back what was shipped)."""
        assert self.shipments.sync(ChangeNotice(source="acumatica", entity="shipment", id=shipment)).outcome == "synced"

    def request_return(self, order: dict[str, Any], sku: str, qty: int, status: str = "authorized") -> dict[str, Any]:
        """The merchant's return of ``qty`` units of ``sku``, through Magento's REST API."""
        item = next(i for i in order["items"] if i["sku"] == sku and not i.get("parent_item_id"))
        body = {  # every field the schema requires, new ids 0 and values Magento fills in empty
            "rmaDataObject": {
                "entity_id": 0,
                "increment_id": "",
                "order_id": order["entity_id"],
                "order_increment_id": order["increment_id"],
                "store_id": order["store_id"],
                "customer_id": order["customer_id"],
                "date_requested": "",
                "customer_custom_email": "",
                "status": status,
                "comments": [],
                "tracks": [],
                "items": [
                    {
                        "entity_id": 0,
                        "rma_entity_id": 0,
                        "order_item_id": item["item_id"],
                        "qty_requested": qty,
                        "qty_authorized": qty if status == "authorized" else 0,
                        "qty_approved": 0,
                        "qty_returned": 0,
                        "reason": "wrong size",
                        "condition": "unopened",
                        "resolution": "refund",
                        "status": status,
                    }
                ],
            }
        }
        validate_request("POST", "/V1/returns", body, allow_null=True)
        answer = self.magento.client.post("/V1/returns", body)
        validate_answer("POST", "/V1/returns", answer)
        return dict(answer)

    def run(self, number: str) -> Any:  # the returns flow, store -> ERP
        return self.returns.sync(ChangeNotice(source="magento", entity="return", id=number))

    def run_back(self, key: str) -> Any:  # the erp-returns flow, ERP -> store
        return self.erp_returns.sync(ChangeNotice(source="acumatica", entity="return", id=key))

    def return_orders(self) -> list[dict[str, Any]]:
        rows = self.ahttp.get(f"{API}/SalesOrder", params={"$filter": "OrderType eq 'RM'", "$expand": "Details"})
        return list(rows.json())

    def receive(self, key: str) -> str:
        """The warehouse receives return order ``key`` in full: a receipt, confirmed."""
        order_type, _, number = key.partition("/")
        keys = {"OrderType": {"value": order_type}, "OrderNbr": {"value": number}}
        self.action("SalesOrder", "SalesOrderCreateReceipt", keys, {"WarehouseID": {"value": "WHOLESALE"}})
        fresh = self.ahttp.get(f"{API}/SalesOrder/{order_type}/{number}?$expand=Shipments").json()
        receipt = str(v(fresh["Shipments"][-1]["ShipmentNbr"]))
        self.action("Shipment", "ConfirmShipment", {"ShipmentNbr": {"value": receipt}})
        return receipt


@pytest.fixture
def shop(bindings_table: str) -> ReturnShop:
    return ReturnShop(bindings_table)


def test_an_authorized_return_is_one_rm_order_received_back_and_credited_to_the_cent(shop: ReturnShop) -> None:
    order = shop.delivered_order()
    rma = shop.request_return(order, "24-MB01", 1)
    result = shop.run(str(rma["entity_id"]))
    assert result.outcome == "synced", result.message
    [rm] = shop.return_orders()
    assert_holds("SalesOrder", rm)
    key = f"{v(rm['OrderType'])}/{v(rm['OrderNbr'])}"
    assert result.target_id == key
    assert v(rm["ExternalRef"]) == rma["increment_id"] and v(rm["CustomerOrder"]) == order["increment_id"]
    [line] = rm["Details"]
    assert (v(line["InventoryID"]), D(str(v(line["OrderQty"]))), v(line["Operation"])) == ("24-MB01", D(-1), "Receipt")
    item = next(i for i in order["items"] if i["sku"] == "24-MB01")
    assert D(str(v(line["UnitPrice"]))) == D(str(item["base_price"]))
    # again: nothing new
    assert shop.run(str(rma["entity_id"])).outcome == "skipped"
    assert len(shop.return_orders()) == 1

    # nothing received yet: the store return stays authorized
    assert shop.run_back(key).outcome == "filtered"
    shop.receive(key)
    back = shop.run_back(key)
    assert back.outcome == "synced", back.message
    after = shop.mhttp_get(f"/V1/returns/{rma['entity_id']}")
    validate_answer("GET", "/V1/returns/{id}", after)
    assert after["status"] == "received"
    assert [(i["qty_returned"], i["status"]) for i in after["items"]] == [(1, "received")]
    assert any(key in c["comment"] for c in after["comments"])
    assert shop.run_back(key).outcome == "skipped"
    assert len(shop.mhttp_get(f"/V1/returns/{rma['entity_id']}")["comments"]) == len(after["comments"])
    # the received return's echo in the store-to-ERP flow: already there, nothing written
    echo = shop.run(str(rma["entity_id"]))
    assert echo.outcome == "skipped" and key in echo.message, echo.message
    assert len(shop.return_orders()) == 1

    # the receipt's credit memo: once to Magento, on the order, of Acumatica's amount
    fresh = shop.ahttp.get(f"{API}/SalesOrder/{key}?$expand=Shipments").json()
    receipt = str(v(fresh["Shipments"][-1]["ShipmentNbr"]))
    shop.action("Shipment", "PrepareInvoice", {"ShipmentNbr": {"value": receipt}})
    [row] = shop.ahttp.get(f"{API}/Shipment/{receipt}?$expand=Orders").json()["Orders"]
    assert v(row["InvoiceType"]) == "Credit Memo"
    number = str(v(row["InvoiceNbr"]))
    shop.action(
        "SalesInvoice", "ReleaseSalesInvoice", {"Type": {"value": "Credit Memo"}, "ReferenceNbr": {"value": number}}
    )
    erp_memo = shop.erp_memo(number)
    assert v(erp_memo["CustomerOrder"]) == order["increment_id"]
    credited = shop.erp_memos.sync(ChangeNotice(source="acumatica", entity="creditmemo", id=number))
    assert credited.outcome == "synced", credited.message
    [memo] = shop.store_memos_of(order["entity_id"])
    assert D(str(memo["grand_total"])) == D(str(v(erp_memo["Amount"])))
    # one of the two units of 24-MB01: its price, less its half of the line's coupon discount, plus
    # its half of the line's tax (6.80 and 5.049 -> 5.05 for the line: 34 - 3.40 + 2.53)
    half = [
        (D(str(item[k])) / 2).quantize(D("0.01"), ROUND_HALF_UP) for k in ("base_discount_amount", "base_tax_amount")
    ]
    assert D(str(v(erp_memo["Amount"]))) == D(str(item["base_price"])) - half[0] + half[1] == D("33.13")
    assert [(i["sku"], D(str(i["qty"]))) for i in memo["items"] if D(str(i["qty"])) > 0] == [("24-MB01", D(1))]
    # and it never goes back as a second Acumatica credit memo
    back = shop.store_memos.sync(ChangeNotice(source="magento", entity="creditmemo", id=str(memo["entity_id"])))
    assert back.outcome in ("skipped", "filtered"), back.message
    memos = shop.ahttp.get(f"{API}/SalesInvoice", params={"$filter": "Type eq 'Credit Memo'"}).json()
    assert [v(c["ReferenceNbr"]) for c in memos] == [number]


def test_a_pending_return_waits_and_an_open_source_store_has_none_to_read(shop: ReturnShop) -> None:
    order = shop.delivered_order()
    rma = shop.request_return(order, "24-WG084", 1, status="pending")
    result = shop.run(str(rma["entity_id"]))
    assert result.outcome == "filtered" and "pending" in result.message and "returns.statuses" in result.message
    assert shop.return_orders() == []
    port = shop.magento.port("return", "source")
    [page] = list(port.changes(datetime.now(UTC)))
    assert [n.id for n in page.notices] == [str(rma["entity_id"])] and page.checkpoint is None
    # authorized later: its version moves, so the poll queues it again, and it goes
    shop.magento.client.put(
        f"/V1/returns/{rma['entity_id']}",
        {
            "rmaDataObject": {
                "items": [{"entity_id": rma["items"][0]["entity_id"], "qty_authorized": 1, "status": "authorized"}]
            }
        },
    )
    [again] = list(port.changes(datetime.now(UTC)))
    assert again.notices[0].version != page.notices[0].version
    # a search row that came without its items (a store whose list leaves them out) is read whole
    snapshot = page.notices[0].snapshot
    assert snapshot is not None
    bare = {k: val for k, val in snapshot.items() if k != "items"}
    assert [ln.sku for ln in port.get(str(rma["entity_id"]), bare).lines] == ["24-WG084"]
    assert shop.run(str(rma["entity_id"])).outcome == "synced"
    # Magento Open Source: no /V1/returns; the poll reads nothing and fails nothing
    shop.mhttp.post("/_sim/seed", json={"edition": "open-source"})
    assert list(port.changes(datetime.now(UTC))) == []


def test_a_lost_answer_on_the_return_order_write_makes_no_second_one(shop: ReturnShop) -> None:
    order = shop.delivered_order()
    rma = shop.request_return(order, "24-MB01", 2)
    shop.ahttp.post("/_sim/faults", json={"lost_response_rate": 1.0, "lost_response_mode": "504", "seed": 3})
    with pytest.raises(Exception):
        shop.run(str(rma["entity_id"]))
    shop.ahttp.delete("/_sim/faults")
    assert len(shop.return_orders()) == 1  # the write went through; its answer was lost
    result = shop.run(str(rma["entity_id"]))
    assert result.outcome == "synced" and "found" in result.message, result.message
    assert len(shop.return_orders()) == 1


def test_returns_of_orders_erp_never_had_or_rm_orders_entered_in_the_erp_are_filtered(shop: ReturnShop) -> None:
    order = shop.delivered_order()
    rma = shop.request_return(order, "24-MB01", 1)
    key = {"pk": {"S": f"order#magento#{order['entity_id']}"}, "sk": {"S": "acumatica"}}
    dynamo.client().delete_item(TableName=shop.bindings.table, Key=key)  # as if the orders flow left it out
    result = shop.run(str(rma["entity_id"]))
    assert result.outcome == "filtered" and "never reached" in result.message
    body = {
        "OrderType": {"value": "RM"},
        "CustomerID": {"value": shop.customer_id()},
        "Details": [
            {"InventoryID": {"value": "24-MB01"}, "OrderQty": {"value": -1}, "Operation": {"value": "Receipt"}}
        ],
    }
    rm = shop.ahttp.put(f"{API}/SalesOrder", json=body).json()
    result = shop.run_back(f"RM/{v(rm['OrderNbr'])}")
    assert result.outcome == "filtered" and "erp-credit-memos" in result.message
