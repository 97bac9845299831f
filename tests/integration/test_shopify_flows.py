"""Shopify -> Acumatica on both sims in-process and the bindings in moto: an order placed through
Shopify's Admin GraphQL API (``orderCreate`` with a discount code, shipping, tax and a sale) becomes
one Acumatica sales order to the cent, its payment one Acumatica payment, the Acumatica shipment
one Shopify fulfilment with its tracking number (once, also after a lost answer), and a cancel on
either side reaches the other. Customers go both ways by email.

Every request the adapter sends is checked by the sim against Shopify's official 2025-01 schema.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from starlette.testclient import TestClient

from erpsync.errors import RetryableError, ValidationFailed
from erpsync.flows import catalog
from erpsync.flows.cancellations import CancellationRules, ErpCancellationRules
from erpsync.flows.customers import CustomerRules
from erpsync.flows.documents import ShipmentRules
from erpsync.flows.orders import OrderRules
from erpsync.flows.payments import PaymentRules
from erpsync.flows.sync import FlowContext
from erpsync.model import ChangeNotice
from erpsync.settings import Settings
from erpsync.state.bindings import Bindings
from erpsync.systems.acumatica import AcumaticaClient, AcumaticaSystem
from erpsync.systems.acumatica.settings import AcumaticaSettings
from erpsync.systems.shopify.adapter import ShopifySystem
from erpsync.systems.shopify.client import ShopifyClient
from erpsync.systems.shopify.settings import ShopifySettings
from sandbox.shopify_merchant import Cart, ShopifyMerchant
from sandbox.sims import acumatica as acu_sim
from sandbox.sims import shopify as shop_sim
from sandbox.sims.control import ResponseDropped
from sandbox.sims.magento_orders import sample_catalog
from tests.integration.test_payments_flow import v

API = "/entity/Default/24.200.001"
D = Decimal
EMAIL = "roni_cost@example.com"


class ShopifyShop:
    """The Shopify sim, the Acumatica sim, both systems and the flows between them."""

    def __init__(self, table: str) -> None:
        self.shttp = TestClient(shop_sim.create_app(), base_url="http://shop")
        self.ahttp = TestClient(acu_sim.create_app())
        self.shttp.post("/_sim/seed", json=shop_sim.sample_seed())
        items = [
            {"InventoryID": p["sku"], "Description": p["name"]} for p in sample_catalog() if p["type_id"] == "simple"
        ]
        self.ahttp.post("/_sim/seed", json={"stock_items": items})
        self.ahttp.post("/entity/auth/login", json={"name": "admin", "password": "123", "company": "Company"})
        self.client = ShopifyClient("http://shop", lambda: shop_sim.ACCESS_TOKEN, http=self.shttp)
        self.shopify = ShopifySystem(self.client, "shopify", ShopifySettings)
        self.acumatica = AcumaticaSystem(
            AcumaticaClient("http://testserver", "admin", "123", "Company", http=self.ahttp, poll_interval=0),
            "acumatica",
            AcumaticaSettings,
        )
        self.merchant = ShopifyMerchant(self.shttp, shop_sim.ACCESS_TOKEN)
        self.settings = Settings(tax_id="STORETAX", shipping_methods={"Standard": "FLATRATE"})
        self.bindings = Bindings(table)
        customers = {("customer", "target"): self.acumatica.port("customer", "target")}
        self.orders = OrderRules(self._ctx("orders", "order", customers))
        self.payments = PaymentRules(self._ctx("payments", "payment", {}))
        self.shipments = ShipmentRules(self._ctx("shipments", "shipment", {}))
        self.cancellations = CancellationRules(self._ctx("cancellations", "cancellation", {}))
        self.erp_cancellations = ErpCancellationRules(self._ctx("erp-cancellations", "cancellation", {}))
        self.store_customers = CustomerRules(self._ctx("customers", "customer", {}))
        self.erp_customers = CustomerRules(self._ctx("erp-customers", "customer", {}))

    def _ctx(self, flow: str, entity: str, extra: dict[tuple[str, str], Any]) -> FlowContext:
        spec = catalog.get(flow)
        systems = {"shopify": self.shopify, "acumatica": self.acumatica}
        source, target = ("shopify", "acumatica") if spec.source == "store" else ("acumatica", "shopify")
        return FlowContext(
            spec=spec,
            source=source,
            target=target,
            source_port=systems[source].port(entity, "source"),
            target_port=systems[target].port(entity, "target"),
            bindings=self.bindings,
            settings=self.settings,
            extra=extra,
        )

    def place(self, cart: Cart | None = None) -> dict[str, Any]:
        cart = cart or Cart(
            [("24-MB01", 2), ("WS12-M-Orange", 1)], discount=D("10.00"), shipping=D("10.00"), tax_rate=D("0.0825")
        )
        return self.merchant.place(EMAIL, cart)

    def sync(self, rules: Any, id: str, source: str = "shopify") -> Any:
        return rules.sync(ChangeNotice(source=source, entity=rules.entity, id=id))

    def sales_order(self, number: str) -> dict[str, Any]:
        rows = self.ahttp.get(
            f"{API}/SalesOrder",
            params={"$filter": f"CustomerOrder eq '{number}'", "$expand": "Details,Totals,Payments"},
        ).json()
        assert len(rows) == 1, rows
        return dict(rows[0])

    def action(self, entity: str, name: str, keys: dict[str, Any], params: dict[str, Any] | None = None) -> None:
        body: dict[str, Any] = {"entity": keys, **({"parameters": params} if params else {})}
        r = self.ahttp.post(f"{API}/{entity}/{name}", json=body)
        assert r.status_code in (200, 202, 204), r.text

    def ship_in_acumatica(self, so: dict[str, Any], tracking: str) -> str:
        self.action("SalesOrder", "SalesOrderCreateShipment", {"id": so["id"]}, {"WarehouseID": {"value": "WHOLESALE"}})
        fresh = self.ahttp.get(f"{API}/SalesOrder/{v(so['OrderType'])}/{v(so['OrderNbr'])}?$expand=Shipments").json()
        nbr = str(v(fresh["Shipments"][-1]["ShipmentNbr"]))
        r = self.ahttp.put(
            f"{API}/Shipment",
            json={
                "ShipmentNbr": {"value": nbr},
                "ShipVia": {"value": "UPS"},
                "Packages": [{"TrackingNbr": {"value": tracking}}],
            },
        )
        assert r.status_code == 200, r.text
        self.action("Shipment", "ConfirmShipment", {"ShipmentNbr": {"value": nbr}})
        return nbr


@pytest.fixture
def shop(bindings_table: str) -> ShopifyShop:
    return ShopifyShop(bindings_table)


def test_an_order_reaches_acumatica_to_the_cent_and_its_shipment_comes_back_as_one_fulfilment(
    shop: ShopifyShop,
) -> None:
    placed = shop.place()
    order_id = placed["legacyResourceId"]
    assert int(order_id) > 2**53  # Shopify's ids do not fit a float; they travel as strings
    result = shop.sync(shop.orders, order_id)
    assert result.outcome == "synced", result.message
    so = shop.sales_order(placed["name"])
    total = D(placed["totalPriceSet"]["shopMoney"]["amount"])
    assert D(str(v(so["OrderTotal"]))) == total == D("97.43")  # 68 + 22 - 10 discount + 10 shipping + 7.43 tax
    assert D(str(v(so["TaxTotal"]))) == D("7.43")
    assert sorted((v(d["InventoryID"]), D(str(v(d["OrderQty"])))) for d in so["Details"]) == [
        ("24-MB01", 2),
        ("WS12-M-Orange", 1),
    ]
    assert v(so["ShipVia"]) == "FLATRATE"

    paid = shop.sync(shop.payments, order_id)
    assert paid.outcome == "synced", paid.message
    so = shop.sales_order(placed["name"])
    assert D(str(v(so["Totals"]["UnpaidBalance"]))) == 0

    shipment = shop.ship_in_acumatica(so, "1Z999AA10123456784")
    shipped = shop.sync(shop.shipments, shipment, source="acumatica")
    assert shipped.outcome == "synced", shipped.message
    after = shop.merchant.order(order_id)
    assert after["displayFulfillmentStatus"] == "FULFILLED"
    [fulfillment] = after["fulfillments"]
    assert fulfillment["trackingInfo"] == [{"company": "UPS", "number": "1Z999AA10123456784"}]

    # the same shipment again (a redelivered notice) writes nothing
    before = shop.client.request_count
    again = shop.sync(shop.shipments, shipment, source="acumatica")
    assert again.outcome == "skipped", again.message
    assert shop.client.request_count == before  # settled from the binding: Shopify not even asked
    assert len(shop.merchant.order(order_id)["fulfillments"]) == 1


def test_a_fulfilment_whose_answer_was_lost_is_found_not_made_twice(shop: ShopifyShop) -> None:
    placed = shop.place(Cart([("24-MB01", 3)]))
    order_id = placed["legacyResourceId"]
    assert shop.sync(shop.orders, order_id).outcome == "synced"
    so = shop.sales_order(placed["name"])
    shipment = shop.ship_in_acumatica(so, "1ZLOST")
    state = shop.shttp.app.state.sim  # type: ignore[attr-defined]
    original = state.graphql

    def lose_fulfilment_answers(body: Any) -> Any:
        answer = original(body)
        if "fulfillmentCreate" in str(body.get("query")):
            raise ResponseDropped()  # applied, then the connection dropped before the answer
        return answer

    state.graphql = lose_fulfilment_answers
    with pytest.raises(RetryableError, match="transport error"):
        shop.sync(shop.shipments, shipment, source="acumatica")
    state.graphql = original
    assert len(shop.merchant.order(order_id)["fulfillments"]) == 1  # it was applied
    retried = shop.sync(shop.shipments, shipment, source="acumatica")
    assert retried.outcome == "synced", retried.message
    assert len(shop.merchant.order(order_id)["fulfillments"]) == 1  # found, not made again


def test_a_shipment_of_more_than_shopify_has_left_fails_naming_the_line(shop: ShopifyShop) -> None:
    placed = shop.place(Cart([("24-MB01", 1)]))
    order_id = placed["legacyResourceId"]
    assert shop.sync(shop.orders, order_id).outcome == "synced"
    so = shop.sales_order(placed["name"])
    # the merchant fulfilled it by hand in Shopify before the warehouse shipped it
    fo = shop.merchant.graphql(
        "query($id: ID!) { order(id: $id) { fulfillmentOrders(first: 1) { nodes { id } } } }",
        {"id": placed["id"]},
    )["order"]["fulfillmentOrders"]["nodes"][0]["id"]
    shop.merchant.graphql(
        "mutation($f: FulfillmentInput!) { fulfillmentCreate(fulfillment: $f) { userErrors { message } } }",
        {"f": {"lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": fo}]}},
    )
    shipment = shop.ship_in_acumatica(so, "1ZTWICE")
    with pytest.raises(ValidationFailed, match=r"1 more than Shopify has left to fulfil .*fulfilled by hand"):
        shop.sync(shop.shipments, shipment, source="acumatica")
    assert len(shop.merchant.order(order_id)["fulfillments"]) == 1  # the merchant's own, nothing more


def test_cancels_reach_the_other_side_once(shop: ShopifyShop) -> None:
    placed = shop.place(Cart([("24-WG084", 2)], paid=False))
    order_id = placed["legacyResourceId"]
    assert shop.sync(shop.orders, order_id).outcome == "synced"
    shop.merchant.cancel(placed["id"])
    result = shop.sync(shop.cancellations, order_id)
    assert result.outcome == "synced", result.message
    assert v(shop.sales_order(placed["name"])["Status"]) == "Canceled"

    other = shop.place(Cart([("24-WG088", 1)], paid=False))
    assert shop.sync(shop.orders, other["legacyResourceId"]).outcome == "synced"
    so = shop.sales_order(other["name"])
    shop.action("SalesOrder", "CancelSalesOrder", {"id": so["id"]})
    erp_id = f"{v(so['OrderType'])}/{v(so['OrderNbr'])}"
    result = shop.sync(shop.erp_cancellations, erp_id, source="acumatica")
    assert result.outcome == "synced", result.message
    assert shop.merchant.order(other["id"])["cancelledAt"] is not None
    assert shop.sync(shop.erp_cancellations, erp_id, source="acumatica").outcome == "skipped"


def test_an_order_shopify_cannot_describe_to_the_erp_fails_with_the_reason(shop: ShopifyShop) -> None:
    placed = shop.merchant.graphql(
        "mutation($o: OrderCreateOrderInput!) { orderCreate(order: $o) { order { legacyResourceId } } }",
        {
            "o": {
                "email": EMAIL,
                "lineItems": [
                    {
                        "title": "Engraving",
                        "quantity": 1,
                        "priceSet": {"shopMoney": {"amount": "5.00", "currencyCode": "USD"}},
                    }
                ],
            }
        },
    )["orderCreate"]["order"]
    with pytest.raises(ValidationFailed, match=r"lineItems\[0\]\.sku is missing \(line 'Engraving'\)"):
        shop.sync(shop.orders, placed["legacyResourceId"])
    assert shop.ahttp.get(f"{API}/SalesOrder").json() == []


def test_customers_go_both_ways_by_email(shop: ShopifyShop) -> None:
    made = shop.merchant.graphql(
        "mutation($i: CustomerInput!) { customerCreate(input: $i) { customer { legacyResourceId } } }",
        {
            "i": {
                "email": "jane@example.com",
                "firstName": "Jane",
                "lastName": "Doe",
                "addresses": [{"address1": "1 Main St", "city": "Calder", "countryCode": "US", "zip": "49628"}],
            }
        },
    )["customerCreate"]["customer"]
    result = shop.sync(shop.store_customers, made["legacyResourceId"])
    assert result.outcome == "synced", result.message
    erp = shop.acumatica.port("customer", "target").find("jane@example.com")
    assert [(c.first_name, c.last_name) for c in erp] == [("Jane", "Doe")]

    erp_id = str(erp[0].source_id)
    shop.acumatica.port("customer", "target").update(erp_id, erp[0].model_copy(update={"last_name": "Roe"}))
    back = shop.sync(shop.erp_customers, erp_id, source="acumatica")
    assert back.outcome == "synced", back.message
    [found] = shop.shopify.port("customer", "target").find("jane@example.com")
    assert found.last_name == "Roe"
    # the echo of our own write to Shopify goes nowhere
    echo = shop.sync(shop.store_customers, made["legacyResourceId"])
    assert echo.outcome == "skipped", echo.message
