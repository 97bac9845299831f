"""Orders entered in Acumatica -> Magento, on both sims in-process: one store order for the right
customer, as the ERP charged it; both numbers on both sides; never back again, and never a second.

The ERP order is saved through the Acumatica sim's REST API as the official Postman collection's
sales order requests do (tests/fixtures/acumatica/request_salesorder_tax_override.json's shape)."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest

from erpsync.errors import RetryableError
from erpsync.flows.documents import ShipmentRules
from erpsync.flows.erp_orders import ErpOrderRules
from erpsync.model import Customer
from erpsync.settings import ErpOrderSync, Settings
from tests.integration.test_payments_flow import Shop, v

API = "/entity/Default/24.200.001"
D = Decimal


class ErpShop(Shop):
    def __init__(self, table: str, settings: Settings | None = None) -> None:
        super().__init__(table, settings)
        self.ahttp.post(
            "/_sim/seed",
            json={
                "customers": [
                    {
                        "CustomerID": "ABARTENDE",
                        "CustomerName": "Able Bartenders",
                        "MainContact": {"Email": "buyer@able.example", "FirstName": "Ann", "LastName": "Able"},
                    },
                ]
            },
        )
        extra = {("customer", "target"): self.magento.port("customer", "target")}
        self.erp_orders = ErpOrderRules(self._ctx("erp-orders", "order", extra))
        self.shipments = ShipmentRules(self._ctx("shipments", "shipment", {}))

    def enter_in_acumatica(self, **over: Any) -> dict[str, Any]:
        body = {
            "OrderType": {"value": "SO"},
            "CustomerID": {"value": "ABARTENDE"},
            "Description": {"value": "Phone order"},
            "ShipVia": {"value": "BESTWAY"},
            "Details": [
                {
                    "InventoryID": {"value": "24-MB01"},
                    "OrderQty": {"value": 2},
                    "UnitPrice": {"value": 34},
                    "DiscountAmount": {"value": 3.4},
                    "ManualDiscount": {"value": True},
                },
                {"InventoryID": {"value": "24-WG084"}, "OrderQty": {"value": 1}, "UnitPrice": {"value": 32}},
            ],
            "Totals": {"PremiumFreight": {"value": 7.5}},
            **over,
        }
        r = self.ahttp.put(f"{API}/SalesOrder?$expand=Details,Totals", json=body)
        assert r.status_code == 200, r.text
        return dict(r.json())

    def key(self, so: dict[str, Any]) -> str:
        return f"{v(so['OrderType'])}/{v(so['OrderNbr'])}"

    def run(self, rules: Any, id: str) -> Any:
        from erpsync.model import ChangeNotice

        return rules.sync(ChangeNotice(source="acumatica", entity=rules.entity, id=id))

    def store_orders(self) -> list[dict[str, Any]]:
        return list(self.magento.client.get("/V1/orders", params={"searchCriteria[pageSize]": 100})["items"])


@pytest.fixture
def shop(bindings_table: str) -> ErpShop:
    return ErpShop(bindings_table)


def test_an_erp_order_becomes_one_store_order_as_the_erp_charged_it(shop: ErpShop) -> None:
    so = shop.enter_in_acumatica()
    key = shop.key(so)
    result = shop.run(shop.erp_orders, key)
    assert result.outcome == "synced", result.message
    [order] = shop.store_orders()
    assert order["ext_order_id"] == key and order["customer_email"] == "buyer@able.example"
    assert D(str(order["grand_total"])) == D(str(v(so["OrderTotal"]))) == D("104.10")
    assert D(str(order["shipping_amount"])) == D("7.50") and order["payment"]["method"] == "checkmo"
    assert order["extension_attributes"]["shipping_assignments"][0]["shipping"]["method"] == "tablerate_bestway"
    assert [i["sku"] for i in order["items"]] == ["24-MB01", "24-WG084"]
    assert "Created from acumatica order SO" in order["status_histories"][0]["comment"]
    customers = shop.magento.port("customer", "target").find("buyer@able.example")
    assert len(customers) == 1 and str(order["customer_id"]) == customers[0].source_id  # made for the order
    # both numbers on both sides
    back = shop.ahttp.get(f"{API}/SalesOrder/SO/{v(so['OrderNbr'])}").json()
    assert v(back["ExternalRef"]) == order["increment_id"]
    # never again: the echo of our write-back, a redelivered notice, the store-to-ERP orders flow
    assert shop.run(shop.erp_orders, key).outcome == "skipped"
    assert shop.sync(shop.orders, order).outcome == "skipped"
    assert len(shop.store_orders()) == 1


def test_its_shipment_comes_back_to_the_store_order(shop: ErpShop) -> None:
    so = shop.enter_in_acumatica()
    shop.run(shop.erp_orders, shop.key(so))
    r = shop.ahttp.post(
        f"{API}/SalesOrder/SalesOrderCreateShipment",
        json={"entity": {"id": so["id"]}, "parameters": {"WarehouseID": {"value": "WHOLESALE"}}},
    )
    assert r.status_code in (202, 204), r.text
    fresh = shop.ahttp.get(f"{API}/SalesOrder/SO/{v(so['OrderNbr'])}?$expand=Shipments").json()
    nbr = v(fresh["Shipments"][-1]["ShipmentNbr"])
    shop.ahttp.post(f"{API}/Shipment/ConfirmShipment", json={"entity": {"ShipmentNbr": {"value": nbr}}})
    assert shop.run(shop.shipments, nbr).outcome == "synced"
    [order] = shop.store_orders()
    shipped = shop.magento.client.get("/V1/shipments", params={"searchCriteria[pageSize]": 10})["items"]
    assert [s["order_id"] for s in shipped] == [order["entity_id"]]


def test_a_lost_answer_on_the_store_write_never_makes_a_second_order(bindings_table: str) -> None:
    shop = ErpShop(bindings_table, Settings(in_doubt_wait_s=0))
    known = Customer(email="buyer@able.example", first_name="Ann", last_name="Able")
    shop.magento.port("customer", "target").create(known)  # the store knows the customer: found, not made
    so = shop.enter_in_acumatica()
    shop.mhttp.post("/_sim/faults", json={"lost_response_rate": 1.0, "seed": 5})
    with pytest.raises(RetryableError):
        shop.run(shop.erp_orders, shop.key(so))
    shop.mhttp.delete("/_sim/faults")
    result = shop.run(shop.erp_orders, shop.key(so))
    assert result.outcome == "synced" and "found existing" in result.message
    assert len(shop.store_orders()) == 1


def test_preferences_any_condition_sends_the_order_else_filtered_with_the_reason(bindings_table: str) -> None:
    prefs = ErpOrderSync(statuses=["Completed"], paid=True)
    shop = ErpShop(bindings_table, Settings(erp_orders=prefs))
    so = shop.enter_in_acumatica()
    left = shop.run(shop.erp_orders, shop.key(so))
    assert left.outcome == "filtered"
    assert "status 'Open' is not one of ['Completed']" in left.message and "unpaid balance 104.10" in left.message
    assert shop.store_orders() == []
    # a payment that brings the unpaid balance to zero: now it goes
    r = shop.ahttp.put(
        f"{API}/Payment",
        json={
            "Type": {"value": "Payment"},
            "CustomerID": {"value": "ABARTENDE"},
            "PaymentAmount": {"value": 104.10},
            "OrdersToApply": [{"OrderType": {"value": "SO"}, "OrderNbr": so["OrderNbr"]}],
        },
    )
    assert r.status_code == 200, r.text
    assert shop.run(shop.erp_orders, shop.key(so)).outcome == "synced"


def test_an_order_that_came_from_the_store_never_goes_back(shop: ErpShop) -> None:
    order = shop.place()
    shop.sync(shop.orders, order)
    so = shop.sales_order(order["increment_id"])
    assert shop.run(shop.erp_orders, shop.key(so)).outcome == "skipped"  # bound: no read
    marked = shop.enter_in_acumatica(ExternalRef={"value": "000000777"})  # a store's reference, unbound
    result = shop.run(shop.erp_orders, shop.key(marked))
    assert result.outcome == "filtered" and "came from a store" in result.message
    assert len(shop.store_orders()) == 1


def test_the_erp_poll_names_sales_orders_by_type_and_number(shop: ErpShop) -> None:
    from datetime import UTC, datetime

    so = shop.enter_in_acumatica()
    # the sim's change times run strictly ahead of each other (a millisecond per save within one):
    # a poll reads up to its own start, so wait until the clock has passed the order's stamp
    stamped = datetime.fromisoformat(str(v(so["LastModified"])).replace("Z", "+00:00"))
    while datetime.now(UTC) <= stamped:
        time.sleep(0.01)
    pages = shop.acumatica.port("order", "source").changes(datetime(2000, 1, 1, tzinfo=UTC))
    ids = [n.id for p in pages for n in p.notices]
    assert shop.key(so) in ids and all("/" in i for i in ids)


def test_an_erp_order_invoiced_in_the_store_is_not_paid_twice_in_the_erp(shop: ErpShop) -> None:
    so = shop.enter_in_acumatica()
    shop.run(shop.erp_orders, shop.key(so))
    [order] = shop.store_orders()
    items = [{"order_item_id": i["item_id"], "qty": i["qty_ordered"]} for i in order["items"]]
    shop.magento.client.post(f"/V1/order/{order['entity_id']}/invoice", {"capture": True, "items": items})
    paid = shop.mhttp_get(f"/V1/orders/{order['entity_id']}")
    assert D(str(paid["total_paid"])) == D("104.10")
    result = shop.sync(shop.payments, paid)
    assert result.outcome == "filtered" and "entered in acumatica" in result.message
    assert shop.erp_payments() == []
