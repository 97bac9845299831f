"""The catalog flows, Acumatica -> Shopify, on both sims in-process and the bindings in moto.

The ERP's records are made through Acumatica's REST API (the same seed as the Magento catalog
tests); what reaches Shopify is read back through the Admin GraphQL API, and every request the
adapter sends is checked by the sim against Shopify's official 2025-01 schema. The flows are the
ones Magento runs (products, prices, stock), wired as the runtime wires them: Shopify serves no
attribute or category target, so a template's attributes become its product's options by label.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from starlette.testclient import TestClient

from erpsync.errors import PermanentError, ValidationFailed
from erpsync.flows import catalog
from erpsync.flows.sync import FlowContext
from erpsync.settings import Settings
from erpsync.state.bindings import Bindings
from erpsync.systems.acumatica import AcumaticaClient, AcumaticaSystem
from erpsync.systems.acumatica.settings import AcumaticaSettings
from erpsync.systems.plugin import SOURCE, TARGET
from erpsync.systems.shopify.adapter import ShopifySystem
from erpsync.systems.shopify.client import ShopifyClient
from erpsync.systems.shopify.plugin import PLUGIN
from erpsync.systems.shopify.settings import ShopifySettings
from sandbox.sims import acumatica as acu_sim
from sandbox.sims import shopify as shop_sim
from tests.integration.test_catalog_flows import ACU, BEGINNING, seed_catalog, w

MUTATIONS = {"ProductSet", "Prices", "SetStock", "Activate"}
PRODUCT = """
query P($q: String) {
  products(first: 5, query: $q) {
    nodes {
      id title handle status descriptionHtml
      options { name values }
      variants(first: 10) {
        nodes {
          sku price compareAtPrice selectedOptions { name value }
          inventoryItem {
            tracked
            inventoryLevels(first: 5) { nodes { location { name } quantities(names: ["available"]) { quantity } } }
          }
        }
      }
    }
  }
}
"""


class ShopCatalog:
    """The Acumatica sim, the Shopify sim, both systems and the catalog flows between them."""

    def __init__(self, table: str, settings: Settings | None = None, shop: ShopifySettings | None = None) -> None:
        self.shttp = TestClient(shop_sim.create_app(), base_url="http://shop")
        self.ahttp = TestClient(acu_sim.create_app())
        assert self.ahttp.post("/entity/auth/login", json={"name": "admin", "password": "123"}).status_code == 204
        seeded = self.shttp.post("/_sim/seed", json={"locations": ["Retail store"]}).json()
        self.retail = seeded["locations"][0]["id"]
        self.shop_settings = shop or ShopifySettings()
        self.shopify = ShopifySystem(
            ShopifyClient("http://shop", lambda: shop_sim.ACCESS_TOKEN, http=self.shttp),
            "shopify",
            lambda: self.shop_settings,
        )
        self.acumatica = AcumaticaSystem(
            AcumaticaClient("http://testserver", "admin", "123", "Company", http=self.ahttp, poll_interval=0),
            "acumatica",
            AcumaticaSettings,
        )
        self.settings = settings or Settings()
        self.bindings = Bindings(table)
        self.rules = {name: self._rules(name) for name in ("products", "prices", "stock")}

    def _rules(self, flow: str) -> Any:
        spec = catalog.get(flow)
        extra: dict[tuple[str, str], Any] = {}
        for entity in spec.needs:  # as the runtime wires a lane: only the ports each system serves
            extra[(entity, SOURCE)] = self.acumatica.port(entity, SOURCE)
            if PLUGIN.can(entity, TARGET):
                extra[(entity, TARGET)] = self.shopify.port(entity, TARGET)
        ctx = FlowContext(
            spec=spec,
            source="acumatica",
            target="shopify",
            source_port=self.acumatica.port(spec.entity, SOURCE),
            target_port=self.shopify.port(spec.entity, TARGET),
            bindings=self.bindings,
            settings=self.settings,
            extra=extra,
        )
        return spec.load_rules()(ctx)

    # -- the ERP, as test_catalog_flows' Catalog speaks to it (seed_catalog takes either) ------------

    def acu(self, method: str, path: str, body: Any = None) -> Any:
        r = self.ahttp.request(method, ACU + path, json=body)
        assert r.status_code in (200, 202, 204), f"{method} {path}: {r.status_code} {r.text[:500]}"
        return r.json() if r.content else None

    def put(self, entity: str, plain: dict[str, Any], expand: str = "") -> Any:
        return self.acu("PUT", entity + (f"?$expand={expand}" if expand else ""), w(plain))

    def receive(self, warehouse: str, quantities: dict[str, int]) -> None:
        receipt = self.put(
            "InventoryReceipt",
            {
                "Hold": False,
                "Details": [{"InventoryID": s, "WarehouseID": warehouse, "Qty": q} for s, q in quantities.items()],
            },
            expand="Details",
        )
        self.acu(
            "POST", "InventoryReceipt/ReleaseInventoryReceipt", {"entity": {"ReferenceNbr": receipt["ReferenceNbr"]}}
        )

    # -- the shop, through the Admin GraphQL API --------------------------------------------------------

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

    def product(self, handle: str) -> dict[str, Any]:
        [node] = self.gql(PRODUCT, {"q": f"handle:{handle}"})["products"]["nodes"]
        return dict(node)

    def variant(self, sku: str) -> dict[str, Any]:
        nodes = [v for p in self.gql(PRODUCT, {"q": f"sku:{sku}"})["products"]["nodes"] for v in p["variants"]["nodes"]]
        [found] = [v for v in nodes if v["sku"] == sku]
        return dict(found)

    def stock(self, sku: str) -> dict[str, int]:
        levels = self.variant(sku)["inventoryItem"]["inventoryLevels"]["nodes"]
        return {lv["location"]["name"]: lv["quantities"][0]["quantity"] for lv in levels}

    def writes(self) -> list[str]:
        """The mutations erpsync sent since the last ``clear`` (by operation name)."""
        rows = self.shttp.get("/_sim/costs").json()["queries"]
        return [r["operation"] for r in rows[self._mark :] if r["operation"] in MUTATIONS]

    def clear(self) -> None:
        self._mark = len(self.shttp.get("/_sim/costs").json()["queries"])

    _mark = 0

    # -- running the flows -------------------------------------------------------------------------

    def sync(self, flow: str, since: datetime = BEGINNING) -> list[Any]:
        rules = self.rules[flow]
        notices = [n for page in rules.ctx.source_port.changes(since) for n in page.notices]
        if hasattr(rules, "sync_many"):
            return list(rules.sync_many(notices)) if notices else []
        out: list[Any] = []
        for n in notices:
            try:
                out.append(rules.sync(n))
            except PermanentError as exc:
                out.append(exc)
        return out


@pytest.fixture
def shop(bindings_table: str) -> Iterator[ShopCatalog]:
    yield ShopCatalog(bindings_table)


def test_items_become_products_and_a_template_one_product_with_its_variants_and_options(shop: ShopCatalog) -> None:
    seed_catalog(shop)  # type: ignore[arg-type]
    results = shop.sync("products")
    assert {r.outcome for r in results} == {"synced", "skipped"}, results
    simple = shop.product("baseserv1")
    assert (simple["title"], simple["status"]) == ("Baseline level of performance", "ACTIVE")
    [variant] = simple["variants"]["nodes"]
    assert (variant["sku"], variant["price"]) == ("BASESERV1", "120.50")
    assert variant["selectedOptions"] == [{"name": "Title", "value": "Default Title"}]
    tshirt = shop.product("tshirt")
    assert tshirt["title"] == "T-shirt"
    [option] = tshirt["options"]
    assert (option["name"], sorted(option["values"])) == ("Color", ["Blue", "Red"])  # the ERP attribute's labels
    variants = {v["sku"]: v for v in tshirt["variants"]["nodes"]}
    assert sorted(variants) == ["TSHIRT-BLUE", "TSHIRT-RED"]
    assert variants["TSHIRT-RED"]["selectedOptions"] == [{"name": "Color", "value": "Red"}]
    assert variants["TSHIRT-BLUE"]["price"] == "20.00"
    assert all(v["inventoryItem"]["tracked"] for v in variants.values())
    # one productSet per product: the template's matrix items are written inside it
    assert shop.rules["products"].bindings.find("product", "acumatica", "TSHIRT", "shopify")


def test_a_rerun_writes_nothing_and_a_change_rewrites_its_product_keeping_its_variants(shop: ShopCatalog) -> None:
    seed_catalog(shop)  # type: ignore[arg-type]
    shop.sync("products")
    before = {v["sku"]: v for v in shop.product("tshirt")["variants"]["nodes"]}
    shop.clear()
    assert {r.outcome for r in shop.sync("products")} == {"skipped"}
    assert shop.writes() == []
    since = datetime.now(UTC) - timedelta(seconds=1)
    shop.put("StockItem", {"InventoryID": "TSHIRT-RED", "DefaultPrice": 22.5})
    shop.clear()
    results = shop.sync("products", since)
    assert [r.outcome for r in results].count("synced") == 1, results
    assert shop.writes() == ["ProductSet"]
    after = {v["sku"]: v for v in shop.product("tshirt")["variants"]["nodes"]}
    assert after["TSHIRT-RED"]["price"] == "22.50" and after["TSHIRT-BLUE"]["price"] == "20.00"
    ids = shop.gql(
        "query { productVariants(first: 5, query: \"sku:'TSHIRT-RED' OR sku:'TSHIRT-BLUE'\") { nodes { id sku } } }"
    )["productVariants"]["nodes"]
    assert len(ids) == 2 and before  # the same variants, not new ones (their stock stays)


def test_a_product_made_in_shopify_before_is_taken_over_by_its_sku(shop: ShopCatalog) -> None:
    shop.shttp.post("/_sim/seed", json={"products": [{"title": "Old kettle", "variants": [{"sku": "KETTLE"}]}]})
    shop.put("StockItem", {"InventoryID": "KETTLE", "Description": "Kettle", "DefaultPrice": 30})
    [result] = shop.sync("products")
    assert result.outcome == "synced", result
    found = shop.gql(PRODUCT, {"q": "sku:KETTLE"})["products"]["nodes"]
    assert len(found) == 1 and found[0]["title"] == "Kettle" and found[0]["handle"] == "old-kettle"
    assert found[0]["variants"]["nodes"][0]["price"] == "30.00"


def test_prices_reach_the_variants_and_a_rerun_writes_nothing(bindings_table: str) -> None:
    shop = ShopCatalog(bindings_table)
    for sku in ("JAM01", "JAM02"):
        shop.put("StockItem", {"InventoryID": sku, "Description": f"Jam {sku}", "DefaultPrice": 5, "BaseUOM": "EA"})
    shop.sync("products")
    now = datetime.now(UTC)
    seed = {
        "sales_prices": [
            {"PriceType": "Base", "InventoryID": "JAM01", "UOM": "EA", "BreakQty": 0, "Price": 6.25},
            {"PriceType": "Base", "InventoryID": "JAM02", "UOM": "EA", "BreakQty": 0, "Price": 7},
            {
                "PriceType": "Base",
                "InventoryID": "JAM02",
                "UOM": "EA",
                "BreakQty": 0,
                "Price": 5.95,
                "Promotion": True,
                "EffectiveDate": (now - timedelta(days=1)).strftime("%Y-%m-%dT00:00:00"),
                "ExpirationDate": (now + timedelta(days=5)).strftime("%Y-%m-%dT00:00:00"),
            },
        ]
    }
    assert shop.ahttp.post("/_sim/seed", json=seed).status_code == 200
    shop.clear()
    results = shop.sync("prices")
    assert {r.outcome for r in results} == {"synced"}, results
    assert shop.writes() == ["Prices", "Prices"]  # one productVariantsBulkUpdate per product
    assert (shop.variant("JAM01")["price"], shop.variant("JAM01")["compareAtPrice"]) == ("6.25", None)
    # a markdown in force: the sale price, the base price struck through
    assert (shop.variant("JAM02")["price"], shop.variant("JAM02")["compareAtPrice"]) == ("5.95", "7.00")
    shop.clear()
    assert {r.outcome for r in shop.sync("prices")} == {"skipped"}
    assert shop.writes() == []


def test_stock_goes_to_the_mapped_locations_and_one_warehouse_writes_one_location(bindings_table: str) -> None:
    settings = Settings.model_validate(
        {"catalog": {"stock": {"sources": {"WHOLESALE": "WHOLESALE", "RETAIL": "RETAIL"}, "quantity": "on_hand"}}}
    )
    probe = ShopCatalog(bindings_table, settings)
    shop_settings = ShopifySettings(locations={"WHOLESALE": "Shop location", "RETAIL": probe.retail})
    shop = probe
    shop.shop_settings = shop_settings
    assert shop.ahttp.post("/_sim/seed", json={"warehouses": ["WHOLESALE", "RETAIL"]}).status_code == 200
    for sku in ("JAM01", "JAM02", "JAM03"):
        shop.put("StockItem", {"InventoryID": sku, "Description": f"Jam {sku}", "DefaultPrice": 5})
    shop.sync("products")
    shop.receive("WHOLESALE", {"JAM01": 10, "JAM02": 20, "JAM03": 30})
    shop.receive("RETAIL", {"JAM01": 1, "JAM02": 2})
    shop.clear()
    results = shop.sync("stock")
    assert {r.outcome for r in results} == {"synced"}, results
    assert shop.stock("JAM01") == {"Shop location": 10, "Retail store": 1}
    assert shop.stock("JAM03") == {"Shop location": 30, "Retail store": 0}
    writes = shop.writes()
    # new variants are stocked at the primary location only: the retail one is activated with its quantity
    assert writes.count("SetStock") == 1 and writes.count("Activate") == 3, writes
    shop.clear()
    assert {r.outcome for r in shop.sync("stock")} == {"skipped"}
    assert shop.writes() == []
    shop.receive("RETAIL", {"JAM02": 5})
    sent: list[dict[str, Any]] = []
    client = shop.shopify.client
    mutate = client.mutate

    def recorded(mutation: str, variables: Any, name: str, **kw: Any) -> Any:
        sent.append(dict(variables))
        return mutate(mutation, variables, name, **kw)

    client.mutate = recorded  # type: ignore[method-assign]
    shop.clear()
    results = shop.sync("stock")
    assert [r.outcome for r in results if r.outcome == "synced"] == ["synced"], results
    assert shop.writes() == ["SetStock"]
    [body] = [s["input"] for s in sent]
    assert body["name"] == "available" and body["ignoreCompareQuantity"] is False
    assert [(q["locationId"], q["quantity"], q["compareQuantity"]) for q in body["quantities"]] == [
        (probe.retail, 7, 2)
    ]
    assert shop.stock("JAM02") == {"Shop location": 20, "Retail store": 7}


def test_a_sale_between_read_and_write_makes_the_compare_quantity_stale_and_is_read_again(shop: ShopCatalog) -> None:
    from erpsync.model.catalog import StockLevel

    shop.put("StockItem", {"InventoryID": "JAM01", "Description": "Jam", "DefaultPrice": 5})
    shop.sync("products")
    port = shop.shopify.port("stock", TARGET)
    shop.shop_settings = ShopifySettings(locations={"default": "Shop location"})
    sim = shop.shttp.app.state.sim  # type: ignore[attr-defined]
    query = port.client.query
    reads = []

    def racing(q: str, variables: Any = None, **kw: Any) -> Any:
        answer = query(q, variables, **kw)
        if "VariantsBySku" in q:
            reads.append(1)
            if len(reads) == 1:  # a sale lands after erpsync read the level
                with sim.shop.lock:
                    for key, level in sim.shop.levels.items():
                        if key[1] == sim.shop.location_id:
                            level["available"] -= 1
        return answer

    port.client.query = racing
    refused = port.write([StockLevel(sku="JAM01", quantities={"default": Decimal(12)})])
    assert refused == {} and len(reads) == 2
    assert shop.stock("JAM01") == {"Shop location": 12}
    stale = [r for r in shop.shttp.get("/_sim/costs").json()["queries"] if r["operation"] == "SetStock"]
    assert len(stale) == 2  # the first refused as stale, the second applied


def test_the_sim_answers_catalog_user_errors_as_shopify_does(shop: ShopCatalog) -> None:
    set_product = """
    mutation S($input: ProductSetInput!) {
      productSet(input: $input) { product { id } userErrors { field message code } }
    }"""
    bad_option = {
        "title": "Tee",
        "productOptions": [{"name": "Color", "values": [{"name": "Red"}]}],
        "variants": [{"optionValues": [{"optionName": "Color", "name": "Green"}], "price": "5"}],
    }
    [error] = shop.gql(set_product, {"input": bad_option})["productSet"]["userErrors"]
    assert error["code"] == "OPTION_VALUE_DOES_NOT_EXIST" and error["field"] == [
        "input",
        "variants",
        "0",
        "optionValues",
        "0",
    ]
    no_options = {"title": "Tee", "variants": [{"optionValues": [], "price": "5"}]}
    [error] = shop.gql(set_product, {"input": no_options})["productSet"]["userErrors"]
    assert error["code"] == "PRODUCT_OPTIONS_INPUT_MISSING"
    shop.put("StockItem", {"InventoryID": "JAM01", "Description": "Jam", "DefaultPrice": 5})
    shop.sync("products")
    item = shop.gql('query { productVariants(first: 1, query: "sku:JAM01") { nodes { inventoryItem { id } } } }')[
        "productVariants"
    ]["nodes"][0]["inventoryItem"]["id"]
    primary = shop.gql("query { location { id } }")["location"]["id"]
    set_qty = """
    mutation Q($input: InventorySetQuantitiesInput!) {
      inventorySetQuantities(input: $input) { inventoryAdjustmentGroup { id } userErrors { field message code } }
    }"""
    base = {"name": "available", "reason": "correction"}
    cases = [
        (
            {"quantities": [{"inventoryItemId": item, "locationId": primary, "quantity": 3}]},
            "COMPARE_QUANTITY_REQUIRED",
        ),
        (
            {"quantities": [{"inventoryItemId": item, "locationId": primary, "quantity": 3, "compareQuantity": 9}]},
            "COMPARE_QUANTITY_STALE",
        ),
        (
            {
                "quantities": [{"inventoryItemId": item, "locationId": shop.retail, "quantity": 3}],
                "ignoreCompareQuantity": True,
            },
            "ITEM_NOT_STOCKED_AT_LOCATION",
        ),
        ({"name": "committed", "quantities": []}, "INVALID_NAME"),
        ({"reason": "because", "quantities": []}, "INVALID_REASON"),
    ]
    for extra, code in cases:
        answer = shop.gql(set_qty, {"input": {**base, **extra}})["inventorySetQuantities"]
        assert answer["inventoryAdjustmentGroup"] is None and [e["code"] for e in answer["userErrors"]] == [code], (
            code,
            answer,
        )
    assert shop.stock("JAM01") == {"Shop location": 0}  # nothing applied


def test_a_stock_level_shopify_cannot_take_fails_its_sku_alone(shop: ShopCatalog) -> None:
    from erpsync.model.catalog import StockLevel

    for sku in ("JAM01", "JAM02"):
        shop.put("StockItem", {"InventoryID": sku, "Description": sku, "DefaultPrice": 5})
    shop.sync("products")
    shop.shop_settings = ShopifySettings(locations={"default": "Shop location"})
    port = shop.shopify.port("stock", TARGET)
    refused = port.write(
        [
            StockLevel(sku="JAM01", quantities={"default": Decimal(4)}),
            StockLevel(sku="JAM02", quantities={"default": Decimal("2.5")}),
            StockLevel(sku="GHOST", quantities={"default": Decimal(1)}),
        ]
    )
    assert sorted(refused) == ["GHOST", "JAM02"], refused
    assert "2.5" in refused["JAM02"] and "GHOST" in refused["GHOST"]
    assert shop.stock("JAM01") == {"Shop location": 4}
    with pytest.raises(ValidationFailed, match=r"nowhere.*Retail store, Shop location"):
        port.location("nowhere")


def test_a_throttled_product_set_is_waited_out_and_applied_once(shop: ShopCatalog) -> None:
    """Shopify answers THROTTLED (HTTP 200, nothing applied) when the bucket cannot pay: the client
    waits the deficit the throttle status names and sends the mutation again."""
    shop.put("StockItem", {"InventoryID": "KETTLE", "Description": "Kettle", "DefaultPrice": 30})
    sim = shop.shttp.app.state.sim  # type: ignore[attr-defined]
    original = sim.graphql
    drained = []

    def drain_before_the_write(body: Any) -> Any:
        if "productSet" in str(body.get("query")) and not drained:
            drained.append(1)
            with sim.bucket.lock:
                sim.bucket.available = 0.0  # other workers spent the bucket
        return original(body)

    sim.graphql = drain_before_the_write
    [result] = shop.sync("products")
    assert result.outcome == "synced", result
    sets = [q for q in shop.shttp.get("/_sim/costs").json()["queries"] if q["operation"] == "ProductSet"]
    assert [q["throttled"] for q in sets] == [True, False]
    assert len(shop.gql(PRODUCT, {"q": "sku:KETTLE"})["products"]["nodes"]) == 1


def test_a_non_stock_item_is_not_counted_and_an_item_made_inactive_becomes_a_draft(shop: ShopCatalog) -> None:
    from erpsync.model.catalog import StockLevel

    shop.put("NonStockItem", {"InventoryID": "INSTALL", "Description": "Installation", "DefaultPrice": 150})
    shop.put("StockItem", {"InventoryID": "KETTLE", "Description": "Kettle", "DefaultPrice": 30})
    assert {r.outcome for r in shop.sync("products")} == {"synced"}
    assert shop.variant("INSTALL")["inventoryItem"]["tracked"] is False
    assert shop.variant("KETTLE")["inventoryItem"]["tracked"] is True
    shop.shop_settings = ShopifySettings(locations={"default": "Shop location"})
    refused = shop.shopify.port("stock", TARGET).write([StockLevel(sku="INSTALL", quantities={"default": Decimal(3)})])
    assert "INSTALL is not tracked" in refused["INSTALL"], refused
    since = datetime.now(UTC) - timedelta(seconds=1)
    shop.put("StockItem", {"InventoryID": "KETTLE", "ItemStatus": "Inactive"})
    results = shop.sync("products", since)
    assert "synced" in {r.outcome for r in results}, results
    assert shop.product("kettle")["status"] == "DRAFT"  # disabled, never deleted
