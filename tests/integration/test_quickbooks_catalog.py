"""QuickBooks Online as the catalog master: its items become Magento and Shopify products, their
``UnitPrice`` the price and the ``QtyOnHand`` of inventory items the stock, through the real
catalog flows, on the sims in-process and the bindings in moto.

The items are made through the QuickBooks sim's API from recorded answers (the Pump of
``item_read_item.json``, the services of ``api_query.json``, Intuit's category sample
``item_category.json``) given a ``Sku``; stock moves by an inventory adjustment shaped as
``inventory_adjustment.xml``. Every answer of the QuickBooks sim is checked against Intuit's XSDs.
"""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from erpsync.errors import NotFoundError, PermanentError
from erpsync.flows import catalog
from erpsync.runtime.lambda_app import ConfigurationError, check_routes
from erpsync.settings import Settings
from erpsync.state.bindings import Bindings
from erpsync.systems.magento import MagentoClient, MagentoSystem
from erpsync.systems.magento.plugin import PLUGIN as MAGENTO
from erpsync.systems.magento.settings import MagentoSettings
from erpsync.systems.quickbooks.adapter import QuickBooksSystem
from erpsync.systems.quickbooks.client import QuickBooksClient
from erpsync.systems.quickbooks.plugin import PLUGIN as QUICKBOOKS
from erpsync.systems.quickbooks.settings import QuickBooksSettings
from erpsync.systems.shopify.adapter import ShopifySystem
from erpsync.systems.shopify.client import ShopifyClient
from erpsync.systems.shopify.plugin import PLUGIN as SHOPIFY
from erpsync.systems.shopify.settings import ShopifySettings
from sandbox.sims import magento as mag_sim
from sandbox.sims import quickbooks as qbo_sim
from sandbox.sims import shopify as shop_sim
from tests.integration.test_shopify_catalog import MUTATIONS, PRODUCT
from tests.support.catalog_shelf import MagentoShelf, Side, catalog_rules
from tests.support.qbo_schema import validate_response

QBO = Path(__file__).parent.parent / "fixtures" / "quickbooks"
V3 = f"/v3/company/{qbo_sim.REALM}"
AUTH = {"Authorization": f"Bearer {qbo_sim.ACCESS_TOKEN}"}
BEGINNING = datetime(2000, 1, 1, tzinfo=UTC)
SOLD = ("Pump", "Rock Fountain", "Sprinkler Heads", "Design", "Soil")
"""The seeded items that become products (by name)."""
SKUS = ("PUMP-01", "ROCK-FOUNTAIN", "SPRINKLER-HEADS", "DESIGN", "SOIL")
STOCKED = ("PUMP-01", "ROCK-FOUNTAIN", "SPRINKLER-HEADS")
"""The inventory items' SKUs."""
CATALOG_FLOWS = ("attributes", "categories", "products", "prices", "stock")
QBO_KEYS = ("Id", "SyncToken", "MetaData", "domain", "sparse", "FullyQualifiedName")
"""What QuickBooks writes itself: left out of a recorded item made anew."""


def recorded(name: str) -> dict[str, Any]:
    return dict(json.loads((QBO / name).read_text()))


def made_anew(record: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A recorded item as the body that makes it again (QuickBooks' own keys left out)."""
    return {**{k: v for k, v in record.items() if k not in QBO_KEYS}, **changes}


def listed(name: str) -> dict[str, Any]:
    """Item ``name`` of the recorded query answer ``api_query.json``."""
    [item] = [i for i in recorded("api_query.json")["QueryResponse"]["Item"] if i["Name"] == name]
    return dict(item)


def _element(node: ET.Element) -> Any:
    if len(node) == 0:
        return (node.text or "").strip()
    out: dict[str, Any] = {}
    for child in node:
        value = _element(child)
        if child.tag == "Line":
            out.setdefault("Line", []).append(value)
        else:
            out[child.tag] = value
    return out


def adjustment(quantities: dict[str, int]) -> dict[str, Any]:
    """The recorded adjustment (``inventory_adjustment.xml``) as the JSON body that makes one:
    its account, note and line shape, with a line ``QtyDiff`` per item id here. The recording
    writes references as ``<value>``/``<name>`` children (read so); its class and department refs
    are left out (the sim keeps no classes or departments)."""
    record = _element(ET.fromstring((QBO / "inventory_adjustment.xml").read_text()))
    line = record["Line"][0]
    detail = {k: v for k, v in line["ItemAdjustmentLineDetail"].items() if k != "ClassRef"}
    return {
        "AdjustAccountRef": record["AdjustAccountRef"],
        "PrivateNote": record["PrivateNote"],
        "Line": [
            {
                "DetailType": line["DetailType"],
                "ItemAdjustmentLineDetail": {**detail, "ItemRef": {"value": item}, "QtyDiff": qty},
            }
            for item, qty in quantities.items()
        ],
    }


class Shelf(MagentoShelf):
    """The QuickBooks sim, a store sim (Magento or Shopify), both systems and the catalog flows
    between them, wired as the runtime wires a lane (only the ports each system serves)."""

    def __init__(self, table: str, store: str, settings: Settings | None = None) -> None:
        self.qhttp = TestClient(qbo_sim.create_app(), base_url="http://qbo")
        # the test's own calls do not pace themselves as erpsync's client does: no ceiling for them
        self.qhttp.post("/_sim/seed", json={"limits": {"per_second": 10_000, "per_minute": 100_000}})
        client = QuickBooksClient("http://qbo", qbo_sim.REALM, lambda: qbo_sim.ACCESS_TOKEN, http=self.qhttp)
        self.quickbooks = QuickBooksSystem(client, "quickbooks", QuickBooksSettings)
        self.store_name = store
        self.store: Any
        if store == "magento":
            self.mhttp = TestClient(mag_sim.create_app())
            mclient = MagentoClient("/rest/default", "admin", "admin123", http=self.mhttp)
            self.store, self.plugin = MagentoSystem(mclient, "magento", MagentoSettings), MAGENTO
        else:
            self.shttp = TestClient(shop_sim.create_app(), base_url="http://shop")
            self.shttp.post("/_sim/seed", json={"locations": ["Retail store"]})
            sclient = ShopifyClient("http://shop", lambda: shop_sim.ACCESS_TOKEN, http=self.shttp)
            shop = ShopifySettings(locations={"default": "Shop location"})
            self.store, self.plugin = ShopifySystem(sclient, "shopify", lambda: shop), SHOPIFY
        self.settings = settings or Settings()
        self.bindings = Bindings(table)
        lane = Side("quickbooks", self.quickbooks, QUICKBOOKS), Side(store, self.store, self.plugin)
        self.rules = catalog_rules(*lane, self.bindings, self.settings)
        self._mark = 0

    def qbo(self, method: str, path: str, body: Any = None, **params: str) -> tuple[int, dict[str, Any]]:
        """Call the QuickBooks sim; its answer, checked against Intuit's XSDs."""
        r = self.qhttp.request(method, V3 + path, json=body, params=params, headers=AUTH)
        answer: dict[str, Any] = r.json()
        validate_response(answer)
        return r.status_code, answer

    def book(self, path: str, body: Any, **params: str) -> dict[str, Any]:
        status, answer = self.qbo("POST", path, body, **params)
        assert status == 200, answer
        [entity] = [v for k, v in answer.items() if k != "time"]
        return dict(entity)

    def item(self, id: str) -> dict[str, Any]:
        return dict(self.qbo("GET", f"/item/{id}")[1]["Item"])

    def seed(self) -> dict[str, str]:
        """Intuit's category sample with a category inside it, the recorded Pump in that one, two
        more inventory items, the recorded Design service and a non-inventory item: name -> id."""
        sample = recorded("item_category.json")["Item"]
        trees = self.book("/item", made_anew(sample))
        inner = {"SubItem": True, "ParentRef": {"value": trees["Id"]}}
        pumps = self.book("/item", made_anew(sample, Name="Fountain pumps", **inner))
        pump = recorded("item_read_item.json")["Item"]
        rock = listed("Rock Fountain")
        made = [
            trees,
            pumps,
            self.book("/item", made_anew(pump, Sku="PUMP-01", SubItem=True, ParentRef={"value": pumps["Id"]})),
            self.book("/item", made_anew(rock, Sku="ROCK-FOUNTAIN")),
            self.book("/item", made_anew(listed("Sprinkler Heads"), Sku="SPRINKLER-HEADS")),
            self.book("/item", made_anew(listed("Design"), Sku="DESIGN")),
            # no recorded non-inventory item: the recorded Soil service (a 2 cubic ft. bag) as one
            self.book("/item", made_anew(listed("Soil"), Type="NonInventory", Sku="SOIL")),
        ]
        return {m["Name"]: m["Id"] for m in made}

    # -- running the flows -------------------------------------------------------------------------

    # -- the store ---------------------------------------------------------------------------------

    def gql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        for _ in range(30):  # a read of the test's waits while the bucket refills
            body = self.shttp.post(
                "/admin/api/2025-01/graphql.json",
                json={"query": query, "variables": variables or {}},
                headers={"X-Shopify-Access-Token": shop_sim.ACCESS_TOKEN},
            ).json()
            if "THROTTLED" not in str(body.get("errors")):
                break
            time.sleep(0.5)
        assert not body.get("errors"), body["errors"]
        return dict(body["data"])

    def variant(self, sku: str) -> dict[str, Any]:
        nodes = [v for p in self.gql(PRODUCT, {"q": f"sku:{sku}"})["products"]["nodes"] for v in p["variants"]["nodes"]]
        [found] = [v for v in nodes if v["sku"] == sku]
        return dict(found)

    def shop_qty(self, sku: str) -> dict[str, int]:
        levels = self.variant(sku)["inventoryItem"]["inventoryLevels"]["nodes"]
        return {lv["location"]["name"]: lv["quantities"][0]["quantity"] for lv in levels}

    def writes(self) -> list[str]:
        """What erpsync wrote to the store since the last ``clear``."""
        if self.store_name == "magento":
            rows = self.mhttp.get("/_sim/requests").json()["requests"]
            return [
                f"{r['method']} {r['path']}"
                for r in rows
                if r["method"] in ("POST", "PUT", "DELETE") and "token" not in r["path"]
            ]
        rows = self.shttp.get("/_sim/costs").json()["queries"]
        return [r["operation"] for r in rows[self._mark :] if r["operation"] in MUTATIONS]

    def clear(self) -> None:
        if self.store_name == "magento":
            self.mhttp.delete("/_sim/requests")
        else:
            self._mark = len(self.shttp.get("/_sim/costs").json()["queries"])


def outcomes(results: dict[str, Any]) -> dict[str, str]:
    return {k: getattr(r, "outcome", type(r).__name__) for k, r in results.items()}


def a_moment_ago() -> datetime:
    """A cursor that holds what changes from now on and nothing before: the next whole second (a
    query's cursor is in seconds, the sim stamps milliseconds), waited for."""
    now = datetime.now(UTC)
    boundary = now.replace(microsecond=0) + timedelta(seconds=1)
    time.sleep((boundary - now).total_seconds() + 0.01)
    return boundary


def test_items_become_magento_products_in_their_category_with_price_and_stock(bindings_table: str) -> None:
    mapped = Settings.model_validate({"catalog": {"stock": {"sources": {"company": "default"}}}})
    shelf = Shelf(bindings_table, "magento", mapped)  # QuickBooks' one warehouse, named
    ids = shelf.seed()
    assert sorted(shelf.rules) == ["categories", "prices", "products", "stock"]  # no attributes in QuickBooks
    products = shelf.sync("products")
    # the sim's own Shipping service has no Sku: not a store product, not announced
    assert outcomes(products) == {ids[n]: "synced" for n in SOLD}
    pump = shelf.mag("GET", "/V1/products/PUMP-01")
    assert (pump["name"], pump["price"], pump["type_id"], pump["status"]) == ("Pump", 15, "simple", 1)
    assert {a["attribute_code"]: a["value"] for a in pump["custom_attributes"]}["description"] == "Fountain Pump"
    trees = shelf.bindings.find("category", "quickbooks", ids["Trees"], "magento")
    pumps = shelf.bindings.find("category", "quickbooks", ids["Fountain pumps"], "magento")
    assert [str(c["category_id"]) for c in pump["extension_attributes"]["category_links"]] == [pumps]
    assert shelf.mag("GET", f"/V1/categories/{pumps}")["name"] == "Fountain pumps"
    assert str(shelf.mag("GET", f"/V1/categories/{pumps}")["parent_id"]) == trees  # made parents first
    assert shelf.mag("GET", f"/V1/categories/{trees}")["name"] == "Trees"
    design = shelf.mag("GET", "/V1/products/DESIGN")
    assert (design["type_id"], design["price"]) == ("virtual", 75)  # a service: sold without counting
    soil = shelf.mag("GET", "/V1/products/SOIL")
    assert (soil["type_id"], soil["price"]) == ("virtual", 10)  # a non-inventory item: neither
    assert shelf.mag("GET", "/V1/inventory/is-product-salable/SOIL/1") is True
    assert shelf.mag("GET", "/V1/inventory/is-product-salable/DESIGN/1") is True
    assert shelf.mag("GET", "/V1/inventory/is-product-salable/PUMP-01/1") is False  # no stock written yet

    shelf.clear()
    stock = shelf.sync("stock")
    assert outcomes(stock) == {s: "synced" for s in STOCKED}  # not the service, not the non-inventory item
    assert shelf.writes() == ["POST /rest/all/V1/inventory/source-items"]  # one request for every SKU
    assert (shelf.magento_qty("PUMP-01"), shelf.magento_qty("ROCK-FOUNTAIN")) == (25, 2)
    assert shelf.mag("GET", "/V1/inventory/is-product-salable/PUMP-01/1") is True
    prices = shelf.sync("prices")
    assert outcomes(prices) == {s: "synced" for s in SKUS}

    shelf.clear()  # a re-run changes nothing
    again = {flow: outcomes(shelf.sync(flow)) for flow in ("categories", "products", "prices", "stock")}
    assert {o for flow in again.values() for o in flow.values()} == {"skipped"}, again
    assert shelf.writes() == []


def test_items_become_shopify_products_with_price_and_stock(bindings_table: str) -> None:
    shelf = Shelf(bindings_table, "shopify")
    ids = shelf.seed()
    assert sorted(shelf.rules) == ["prices", "products", "stock"]  # Shopify takes no categories
    products = shelf.sync("products")
    assert outcomes(products) == {ids[n]: "synced" for n in SOLD}
    pump = shelf.variant("PUMP-01")
    assert (pump["price"], pump["inventoryItem"]["tracked"]) == ("15.00", True)
    design = shelf.variant("DESIGN")
    assert (design["price"], design["inventoryItem"]["tracked"]) == ("75.00", False)
    assert shelf.variant("SOIL")["inventoryItem"]["tracked"] is False
    stock = shelf.sync("stock")
    assert outcomes(stock) == {s: "synced" for s in STOCKED}  # a service, a non-inventory item: no stock
    assert shelf.shop_qty("PUMP-01") == {"Shop location": 25}
    assert shelf.shop_qty("SPRINKLER-HEADS") == {"Shop location": 25}
    prices = shelf.sync("prices")
    assert outcomes(prices) == {s: "synced" for s in SKUS}
    assert shelf.variant("ROCK-FOUNTAIN")["price"] == "275.00"
    shelf.clear()
    again = {flow: outcomes(shelf.sync(flow)) for flow in ("products", "prices", "stock")}
    assert {o for flow in again.values() for o in flow.values()} == {"skipped"}, again
    assert shelf.writes() == []


@pytest.mark.parametrize("store", ["magento", "shopify"])
def test_an_inventory_adjustment_reaches_the_store_once(bindings_table: str, store: str) -> None:
    shelf = Shelf(bindings_table, store)
    ids = shelf.seed()
    for flow in ("products", "prices", "stock"):
        shelf.sync(flow)
    since = a_moment_ago()
    made = shelf.book("/inventoryadjustment", adjustment({ids["Pump"]: -2, ids["Rock Fountain"]: 3}))
    assert made["PrivateNote"] == "Adjustment for XYZ" and len(made["Line"]) == 2
    shelf.clear()
    stock = shelf.sync("stock", since)
    assert outcomes(stock) == {"PUMP-01": "synced", "ROCK-FOUNTAIN": "synced"}
    if store == "magento":
        assert (shelf.magento_qty("PUMP-01"), shelf.magento_qty("ROCK-FOUNTAIN")) == (23, 5)
        assert shelf.writes() == ["POST /rest/all/V1/inventory/source-items"]
    else:
        assert (shelf.shop_qty("PUMP-01"), shelf.shop_qty("ROCK-FOUNTAIN")) == (
            {"Shop location": 23},
            {"Shop location": 5},
        )
        assert shelf.writes() == ["SetStock"]  # both SKUs in one inventorySetQuantities
    shelf.clear()  # the window polled again, and the prices and products the two items ring: no write
    again = {flow: outcomes(shelf.sync(flow, since)) for flow in ("stock", "prices", "products")}
    assert again == {
        "stock": {"PUMP-01": "skipped", "ROCK-FOUNTAIN": "skipped"},
        "prices": {"PUMP-01": "skipped", "ROCK-FOUNTAIN": "skipped"},
        "products": {ids["Pump"]: "skipped", ids["Rock Fountain"]: "skipped"},
    }
    assert shelf.writes() == []


def test_a_unit_price_change_reaches_the_store_as_the_base_price(bindings_table: str) -> None:
    shelf = Shelf(bindings_table, "magento")
    ids = shelf.seed()
    for flow in ("products", "prices"):
        shelf.sync(flow)
    pump = shelf.item(ids["Pump"])
    since = a_moment_ago()
    shelf.book("/item", {"Id": pump["Id"], "SyncToken": pump["SyncToken"], "sparse": True, "UnitPrice": 16.5})
    shelf.clear()
    assert outcomes(shelf.sync("prices", since)) == {"PUMP-01": "synced"}
    assert shelf.writes() == ["POST /rest/all/V1/products/base-prices"]
    assert shelf.mag("GET", "/V1/products/PUMP-01")["price"] == 16.5
    shelf.clear()
    assert outcomes(shelf.sync("prices", since)) == {"PUMP-01": "skipped"}
    assert shelf.writes() == []


def test_an_item_without_a_sku_or_a_price_fails_naming_it_and_a_service_without_a_sku_is_left_out(
    bindings_table: str,
) -> None:
    shelf = Shelf(bindings_table, "magento")
    ids = shelf.seed()
    supplies = shelf.book("/item", made_anew(recorded("item_create_item.json")["Item"], UnitPrice=12))
    hours = shelf.book("/item", made_anew(listed("Hours")))
    concrete = shelf.book("/item", made_anew(listed("Concrete"), Sku="CONCRETE"))  # UnitPrice 0
    products = shelf.sync("products")
    failures = {k: str(v) for k, v in products.items() if isinstance(v, PermanentError)}
    assert failures == {
        supplies["Id"]: f"quickbooks item {supplies['Id']} (Garden Supplies) has no Sku: the store finds a product "
        "by its SKU, so give the item one in QuickBooks",
        concrete["Id"]: f"quickbooks item {concrete['Id']} (Concrete), SKU CONCRETE, has no UnitPrice (0): a store "
        "product without a price would sell for nothing",
    }
    assert hours["Id"] not in products  # a service without a SKU (labour, freight) is no store product
    assert outcomes({k: v for k, v in products.items() if k not in failures}) == {ids[n]: "synced" for n in SOLD}
    # items without a SKU are not announced to the prices and stock flows, which know a record by it
    assert set(shelf.sync("stock")) == set(STOCKED)
    prices = shelf.sync("prices")
    assert set(prices) == {*SKUS, "CONCRETE"}
    assert (prices["CONCRETE"].outcome, prices["CONCRETE"].message) == (
        "filtered",
        "CONCRETE has no price in quickbooks",
    )


def test_an_item_made_inactive_is_disabled_and_one_never_synced_is_left_out(bindings_table: str) -> None:
    shelf = Shelf(bindings_table, "magento")
    ids = shelf.seed()
    shelf.sync("products")
    since = a_moment_ago()
    for name in ("Pump", "Rock Fountain"):
        item = shelf.item(ids[name])
        shelf.book("/item", {"Id": item["Id"], "SyncToken": item["SyncToken"], "sparse": True, "Active": False})
    never = shelf.book("/item", made_anew(listed("Trimming"), Sku="TRIMMING", Active=False))
    # QuickBooks answers a plain query with active items only: the poll asks for both
    _, plain = shelf.qbo("GET", "/query", query=f"select * from Item where Id = '{ids['Pump']}'")
    assert plain["QueryResponse"] == {}
    results = shelf.sync("products", since)
    assert outcomes(results) == {ids["Pump"]: "synced", ids["Rock Fountain"]: "synced", never["Id"]: "filtered"}
    assert "TRIMMING is not active in quickbooks and not in the store" in results[never["Id"]].message
    assert shelf.mag("GET", "/V1/products/PUMP-01")["status"] == 2  # disabled, never deleted
    assert shelf.mag("GET", "/V1/products/DESIGN")["status"] == 1
    # QuickBooks makes items inactive, it does not delete them; an id it has not is named
    status, fault = shelf.qbo("POST", "/item", {"Id": ids["Design"], "SyncToken": "0"}, operation="delete")
    assert status == 400 and "make it inactive" in fault["Fault"]["Error"][0]["Detail"]
    with pytest.raises(NotFoundError, match="quickbooks has no item 999"):
        shelf.rules["products"].ctx.source_port.get("999")


def test_a_sale_booked_in_quickbooks_reaches_the_store_with_the_next_adjustment(bindings_table: str) -> None:
    shelf = Shelf(bindings_table, "magento")
    ids = shelf.seed()
    for flow in ("products", "stock"):
        shelf.sync(flow)
    customer = shelf.book("/customer", {"DisplayName": "Amy's Bird Sanctuary"})
    receipt = recorded("sales_receipt_create_sales_receipt.json")["SalesReceipt"]
    [line] = [ln for ln in receipt["Line"] if ln["DetailType"] == "SalesItemLineDetail"]
    detail = {**line["SalesItemLineDetail"], "ItemRef": {"value": ids["Pump"]}, "Qty": 4, "UnitPrice": 15}
    since = a_moment_ago()
    shelf.book(
        "/salesreceipt",
        {
            "CustomerRef": {"value": customer["Id"]},
            "Line": [{"DetailType": "SalesItemLineDetail", "Amount": 60, "SalesItemLineDetail": detail}],
        },
    )
    assert shelf.item(ids["Pump"])["QtyOnHand"] == 21
    # the sale does not move the item's change time in the sim (UNVERIFIED for QuickBooks): not polled
    assert shelf.sync("stock", since) == {}
    shelf.book("/inventoryadjustment", adjustment({ids["Pump"]: 1}))
    assert outcomes(shelf.sync("stock", since)) == {"PUMP-01": "synced"}
    assert shelf.magento_qty("PUMP-01") == 22


def test_the_sim_keeps_stock_as_quickbooks_does() -> None:
    validate_response(recorded("item_category.json"))  # Intuit's sample, as recorded
    shelf = Shelf("no-table: the sim alone is asked", "magento")
    ids = shelf.seed()
    pump = ids["Pump"]
    assert (shelf.item(pump)["FullyQualifiedName"], shelf.item(pump)["Level"]) == ("Trees:Fountain pumps:Pump", 2)
    # an inventory item is made with its quantity, start date and accounts
    bare = made_anew(recorded("item_create_item.json")["Item"])
    del bare["AssetAccountRef"]
    status, fault = shelf.qbo("POST", "/item", bare)
    assert (status, fault["Fault"]["Error"][0]["code"], fault["Fault"]["Error"][0]["element"]) == (
        400,
        "2020",
        "AssetAccountRef",
    )
    # its quantity then moves by adjustments only (UNVERIFIED: QuickBooks' own refusal)
    item = shelf.item(pump)
    status, fault = shelf.qbo(
        "POST", "/item", {"Id": pump, "SyncToken": item["SyncToken"], "sparse": True, "QtyOnHand": 40}
    )
    assert status == 400 and "InventoryAdjustment" in fault["Fault"]["Error"][0]["Detail"]
    cursor = a_moment_ago().isoformat()
    made = shelf.book("/inventoryadjustment", adjustment({pump: -2}))
    after = shelf.item(pump)
    assert after["QtyOnHand"] == 23 and after["SyncToken"] == str(int(item["SyncToken"]) + 1)
    _, cdc = shelf.qbo("GET", "/cdc", entities="Item,InventoryAdjustment", changedSince=cursor)
    [block] = cdc["CDCResponse"]
    assert [r["Id"] for r in block["QueryResponse"][0]["Item"]] == [pump]
    assert [r["Id"] for r in block["QueryResponse"][1]["InventoryAdjustment"]] == [made["Id"]]
    # NewQty sets the quantity; deleting an adjustment takes its quantities back
    new_qty = adjustment({pump: 0})
    detail = new_qty["Line"][0]["ItemAdjustmentLineDetail"]
    detail["NewQty"] = detail.pop("QtyDiff") + 30
    second = shelf.book("/inventoryadjustment", new_qty)
    assert shelf.item(pump)["QtyOnHand"] == 30
    shelf.book("/inventoryadjustment", {"Id": second["Id"], "SyncToken": second["SyncToken"]}, operation="delete")
    assert shelf.item(pump)["QtyOnHand"] == 23
    # what QuickBooks refuses
    for body, code, element, named in (
        (adjustment({ids["Design"]: 1}), "6000", "Line[0].ItemAdjustmentLineDetail.ItemRef", "(Design) is a Service"),
        ({**adjustment({pump: 1}), "AdjustAccountRef": {}}, "2020", "AdjustAccountRef", "AdjustAccountRef"),
        (adjustment({"999": 1}), "610", "Line[0].ItemAdjustmentLineDetail.ItemRef", "Item 999"),
    ):
        status, fault = shelf.qbo("POST", "/inventoryadjustment", body)
        error = fault["Fault"]["Error"][0]
        assert (status, error["code"], error["element"]) == (400, code, element), error
        assert named in error["Detail"], error
    assert shelf.item(pump)["QtyOnHand"] == 23  # nothing of them applied
    # a sales receipt takes its inventory lines' quantity off the shelf, its void gives it back
    customer = shelf.book("/customer", {"DisplayName": "Amy's Bird Sanctuary"})

    def sold(item: str, qty: int, price: int) -> dict[str, Any]:
        detail = {"ItemRef": {"value": item}, "Qty": qty, "UnitPrice": price}
        return {"DetailType": "SalesItemLineDetail", "Amount": qty * price, "SalesItemLineDetail": detail}

    receipt = shelf.book(
        "/salesreceipt",
        {"CustomerRef": {"value": customer["Id"]}, "Line": [sold(pump, 3, 15), sold(ids["Design"], 1, 75)]},
    )
    assert shelf.item(pump)["QtyOnHand"] == 20
    assert "QtyOnHand" not in shelf.item(ids["Design"])  # a service has no quantity to take
    shelf.book("/salesreceipt", {"Id": receipt["Id"], "SyncToken": receipt["SyncToken"]}, operation="void")
    assert shelf.item(pump)["QtyOnHand"] == 23
    # an invoice too; changed, it books the difference; deleted, it gives it back
    invoice = shelf.book("/invoice", {"CustomerRef": {"value": customer["Id"]}, "Line": [sold(pump, 2, 15)]})
    assert shelf.item(pump)["QtyOnHand"] == 21
    changed = {"Id": invoice["Id"], "SyncToken": invoice["SyncToken"], "sparse": True, "Line": [sold(pump, 1, 15)]}
    invoice = shelf.book("/invoice", changed)
    assert shelf.item(pump)["QtyOnHand"] == 22
    shelf.book("/invoice", {"Id": invoice["Id"], "SyncToken": invoice["SyncToken"]}, operation="delete")
    assert shelf.item(pump)["QtyOnHand"] == 23


def test_a_route_naming_the_catalog_runs_what_quickbooks_and_the_store_serve() -> None:
    connections = {
        "quickbooks": {"kind": "quickbooks", "role": "erp", "secret": "erpsync/quickbooks"},
        "shopify": {"kind": "shopify", "role": "store", "secret": "erpsync/shopify"},
    }
    routes = [
        {"store": "magento", "erp": "quickbooks", "flows": ["*", "catalog"]},
        {"store": "shopify", "erp": "quickbooks", "flows": ["*", "catalog"]},
    ]
    settings = Settings.model_validate({"connections": connections, "routes": routes})
    lanes = {flow: [(s, t) for s, t, _ in check_routes(catalog.get(flow), settings)] for flow in CATALOG_FLOWS}
    assert lanes == {
        "attributes": [],  # QuickBooks items carry no attributes
        "categories": [("quickbooks", "magento")],  # Shopify takes no categories
        "products": [("quickbooks", "magento"), ("quickbooks", "shopify")],
        "prices": [("quickbooks", "magento"), ("quickbooks", "shopify")],
        "stock": [("quickbooks", "magento"), ("quickbooks", "shopify")],
    }
    only = Settings.model_validate(
        {"connections": connections, "routes": [{"store": "magento", "erp": "quickbooks", "flows": ["attributes"]}]}
    )
    with pytest.raises(ConfigurationError, match=r"quickbooks .* has no adapter to be the source of attributes"):
        check_routes(catalog.get("attributes"), only)
