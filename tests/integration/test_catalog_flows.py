"""The catalog flows, Acumatica -> Magento, on both sims in-process and the bindings in moto.

The ERP's records are made through Acumatica's REST API as a merchant's would be (the stock item
with attributes is the official Postman collection's "Create a Stock Item with Attributes",
tests/fixtures/acumatica/request_stockitem_with_attributes.json); what reaches Magento is read
back through Magento's REST API.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from erpsync.errors import PermanentError
from erpsync.flows import catalog
from erpsync.flows.sync import FlowContext
from erpsync.model import ChangeNotice
from erpsync.settings import Settings
from erpsync.state.bindings import Bindings
from erpsync.systems.magento.settings import MagentoSettings
from erpsync.systems.plugin import SOURCE, TARGET
from tests.support.catalog_shelf import magento_writes
from tests.support.sims import SimSystems

FIXTURES = Path(__file__).parent.parent / "fixtures"
ACU = "/entity/Default/24.200.001/"
BEGINNING = datetime(2000, 1, 1, tzinfo=UTC)


def w(plain: dict[str, Any]) -> dict[str, Any]:
    """Plain values as Acumatica's ``{"value": ...}``; lists of objects as details."""
    out: dict[str, Any] = {}
    for k, v in plain.items():
        if isinstance(v, list):
            out[k] = [w(x) for x in v]
        elif isinstance(v, dict):
            out[k] = w(v)
        else:
            out[k] = {"value": v}
    return out


class Catalog:
    """Both sims, both systems and the catalog flows between them."""

    def __init__(self, table: str, settings: Settings | None = None) -> None:
        sims = SimSystems()
        self.mhttp, self.ahttp, self.magento, self.acumatica = sims.mhttp, sims.ahttp, sims.magento, sims.acumatica
        assert self.ahttp.post("/entity/auth/login", json={"name": "admin", "password": "123"}).status_code == 204
        self.settings = settings or Settings()
        self.sent: list[tuple[str, str, Any]] = []
        """Every request the Magento client sent: method, path, JSON body."""
        client = self.magento.client
        send = client._send

        def recorded(method: str, path: str, **kw: Any) -> Any:
            self.sent.append((method, path, kw.get("json")))
            return send(method, path, **kw)

        client._send = recorded  # type: ignore[method-assign]
        self.bindings = Bindings(table)
        self.rules = {name: self._rules(name) for name in ("attributes", "categories", "products", "prices", "stock")}

    def _rules(self, flow: str) -> Any:
        spec = catalog.get(flow)
        extra = {
            (entity, direction): (self.acumatica if direction == SOURCE else self.magento).port(entity, direction)
            for entity in spec.needs
            for direction in (SOURCE, TARGET)
        }
        ctx = FlowContext(
            spec=spec,
            source="acumatica",
            target="magento",
            source_port=self.acumatica.port(spec.entity, SOURCE),
            target_port=self.magento.port(spec.entity, TARGET),
            bindings=self.bindings,
            settings=self.settings,
            extra=extra,
        )
        return spec.load_rules()(ctx)

    # -- the ERP, through its REST API -------------------------------------------------------------

    def acu(self, method: str, path: str, body: Any = None) -> Any:
        r = self.ahttp.request(method, ACU + path, json=body)
        assert r.status_code in (200, 202, 204), f"{method} {path}: {r.status_code} {r.text[:500]}"
        return r.json() if r.content else None

    def put(self, entity: str, plain: dict[str, Any], expand: str = "") -> Any:
        return self.acu("PUT", entity + (f"?$expand={expand}" if expand else ""), w(plain))

    # -- the store, through its REST API -------------------------------------------------------------

    def mag(self, method: str, path: str, body: Any = None) -> Any:
        token = self.mhttp.post(
            "/rest/V1/integration/admin/token", json={"username": "admin", "password": "admin123"}
        ).json()
        r = self.mhttp.request(method, "/rest/all" + path, json=body, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code < 300, f"{method} {path}: {r.status_code} {r.text[:500]}"
        return r.json()

    def product(self, sku: str) -> dict[str, Any]:
        return dict(self.mag("GET", f"/V1/products/{sku}"))

    # -- running the flows -------------------------------------------------------------------------

    def poll(self, flow: str, since: datetime = BEGINNING) -> list[ChangeNotice]:
        port = self.rules[flow].ctx.source_port
        return [n for page in port.changes(since) for n in page.notices]

    def sync(self, flow: str, since: datetime = BEGINNING) -> list[Any]:
        """One poll of ``flow`` and every notice synced; the results."""
        rules = self.rules[flow]
        notices = self.poll(flow, since)
        if hasattr(rules, "sync_many"):
            return list(rules.sync_many(notices)) if notices else []
        out: list[Any] = []
        for n in notices:
            try:
                out.append(rules.sync(n))
            except PermanentError as exc:
                out.append(exc)
        return out

    def magento_writes(self) -> list[str]:
        return magento_writes(self.mhttp)

    def clear(self) -> None:
        self.mhttp.delete("/_sim/requests")
        self.ahttp.delete("/_sim/requests")


@pytest.fixture
def cat(bindings_table: str) -> Iterator[Catalog]:
    yield Catalog(bindings_table)


def seed_catalog(cat: Catalog) -> None:
    """Attributes, a category tree, the Postman stock item and a template with two matrix items."""
    cat.put(
        "AttributeDefinition",
        {
            "AttributeID": "Operation System",
            "Description": "Operating system",
            "ControlType": "Combo",
            "Values": [{"ValueID": "Windows", "Description": "Windows"}, {"ValueID": "Linux", "Description": "Linux"}],
        },
    )
    cat.put(
        "AttributeDefinition",
        {
            "AttributeID": "SOFTVER",
            "Description": "Software version",
            "ControlType": "Combo",
            "Values": [{"ValueID": "Server 2012 R2", "Description": "Server 2012 R2"}],
        },
    )
    cat.put(
        "AttributeDefinition",
        {
            "AttributeID": "COLOR",
            "Description": "Color",
            "ControlType": "Combo",
            "Values": [{"ValueID": "RED", "Description": "Red"}, {"ValueID": "BLUE", "Description": "Blue"}],
        },
    )
    top = cat.put("ItemSalesCategory", {"Description": "Servers"})
    top_id = top["CategoryID"]["value"]
    cat.put("ItemSalesCategory", {"Description": "Baseline", "ParentCategoryID": top_id})
    official = json.loads((FIXTURES / "acumatica" / "request_stockitem_with_attributes.json").read_text())["request"][
        "body"
    ]
    official["DefaultPrice"] = {"value": 120.5}
    official["Categories"] = [{"CategoryID": {"value": top_id}}]
    assert cat.acu("PUT", "StockItem?$expand=Attributes,Categories", official)
    cat.put("TemplateItems", {"InventoryID": "TSHIRT", "Description": "T-shirt", "DefaultPrice": 20})
    for sku, color in (("TSHIRT-RED", "RED"), ("TSHIRT-BLUE", "BLUE")):
        cat.put(
            "StockItem",
            {
                "InventoryID": sku,
                "Description": f"T-shirt {color.lower()}",
                "DefaultPrice": 20,
                "TemplateItemID": "TSHIRT",
                "Attributes": [{"AttributeID": "COLOR", "Value": color}],
            },
            expand="Attributes",
        )


def test_items_become_products_with_their_attributes_categories_and_configurable_links(cat: Catalog) -> None:
    seed_catalog(cat)
    results = cat.sync("products")
    # the template is announced by its own change and by its matrix items' (the second is skipped)
    assert sorted(r.target_id for r in results if r.outcome == "synced") == ["1", "4"], results
    assert {r.outcome for r in results} == {"synced", "skipped"}, results
    simple = cat.product("BASESERV1")
    assert (simple["name"], simple["price"], simple["type_id"]) == ("Baseline level of performance", 120.5, "simple")
    custom = {a["attribute_code"]: a["value"] for a in simple["custom_attributes"]}
    os_options = {o["label"]: o["value"] for o in cat.mag("GET", "/V1/products/attributes/operation_system/options")}
    assert custom["operation_system"] == os_options["Windows"]
    assert custom["softver"]
    links = simple["extension_attributes"]["category_links"]
    servers = cat.bindings.find("category", "acumatica", str(cat.poll("categories")[0].id), "magento")
    assert [str(x["category_id"]) for x in links] == [servers]
    parent = cat.product("TSHIRT")
    assert parent["type_id"] == "configurable"
    children = cat.mag("GET", "/V1/configurable-products/TSHIRT/children")
    assert sorted(c["sku"] for c in children) == ["TSHIRT-BLUE", "TSHIRT-RED"]
    assert all(c["visibility"] == 1 for c in children)


def test_a_second_poll_writes_nothing_and_a_change_writes_one_product(cat: Catalog) -> None:
    seed_catalog(cat)
    cat.sync("products")
    cat.clear()
    assert {getattr(r, "outcome", None) for r in cat.sync("products")} == {"skipped"}
    assert cat.magento_writes() == []
    since = datetime.now(UTC) - timedelta(seconds=1)
    cat.put("StockItem", {"InventoryID": "BASESERV1", "Description": "Baseline level, renamed"})
    cat.clear()
    results = cat.sync("products", since)
    assert [r.outcome for r in results].count("synced") == 1  # (what else the window holds is skipped)
    assert cat.magento_writes() == ["PUT /rest/all/V1/products/BASESERV1"]
    assert cat.product("BASESERV1")["name"] == "Baseline level, renamed"


def test_an_item_without_a_price_fails_alone_naming_the_item_and_field(cat: Catalog) -> None:
    seed_catalog(cat)
    cat.put("StockItem", {"InventoryID": "NOPRICE", "Description": "No price yet"})  # DefaultPrice 0
    results = {str(getattr(r, "target_id", "") or r): r for r in cat.sync("products")}
    failed = [r for r in results.values() if isinstance(r, PermanentError)]
    assert len(failed) == 1 and "NOPRICE" in str(failed[0]) and "DefaultPrice" in str(failed[0])
    assert cat.product("BASESERV1")["sku"] == "BASESERV1"  # nothing else stopped


def test_a_category_whose_parent_is_gone_fails_naming_both(cat: Catalog) -> None:
    top = cat.put("ItemSalesCategory", {"Description": "Top"})["CategoryID"]["value"]
    child = cat.put("ItemSalesCategory", {"Description": "Child", "ParentCategoryID": top})["CategoryID"]["value"]
    sim = cat.ahttp.app.state.sim  # type: ignore[attr-defined]
    with sim.lock:  # the parent gone from under the child (the ERP's REST API refuses to do it)
        [key] = [k for k, r in sim.records["ItemSalesCategory"].items() if r["CategoryID"]["value"] == top]
        del sim.records["ItemSalesCategory"][key]
    results = cat.sync("categories")
    [failure] = [r for r in results if isinstance(r, PermanentError)]
    assert str(top) in str(failure) and str(child) in str(failure)


def test_categories_are_made_parents_first_and_follow_a_rename(cat: Catalog) -> None:
    top = cat.put("ItemSalesCategory", {"Description": "Kitchen"})["CategoryID"]["value"]
    child = cat.put("ItemSalesCategory", {"Description": "Jams", "ParentCategoryID": top})["CategoryID"]["value"]
    assert {r.outcome for r in cat.sync("categories")} == {"synced"}
    top_id = cat.bindings.find("category", "acumatica", str(top), "magento")
    child_id = cat.bindings.find("category", "acumatica", str(child), "magento")
    assert cat.mag("GET", f"/V1/categories/{child_id}")["parent_id"] == int(str(top_id))
    since = datetime.now(UTC) - timedelta(seconds=1)
    cat.put("ItemSalesCategory", {"CategoryID": child, "Description": "Jams and jellies"})
    cat.sync("categories", since)
    assert cat.mag("GET", f"/V1/categories/{child_id}")["name"] == "Jams and jellies"


def test_stock_and_prices_go_many_skus_per_request(cat: Catalog) -> None:
    assert cat.ahttp.post("/_sim/seed", json={"warehouses": ["WHOLESALE"]}).status_code == 200
    for n in range(30):
        cat.put("StockItem", {"InventoryID": f"JAM{n:02}", "Description": f"Jam {n}", "DefaultPrice": 5})
    cat.sync("products")
    receipt = cat.put(
        "InventoryReceipt",
        {
            "Hold": False,
            "Details": [{"InventoryID": f"JAM{n:02}", "WarehouseID": "WHOLESALE", "Qty": 10 + n} for n in range(30)],
        },
        expand="Details",
    )
    cat.acu("POST", "InventoryReceipt/ReleaseInventoryReceipt", {"entity": {"ReferenceNbr": receipt["ReferenceNbr"]}})
    cat.clear()
    results = cat.sync("stock")
    assert [r.outcome for r in results] == ["synced"] * 30
    writes = cat.magento_writes()
    assert writes == ["POST /rest/all/V1/inventory/source-items"], writes
    items = cat.mag(
        "GET",
        "/V1/inventory/source-items?searchCriteria[filter_groups][0][filters][0][field]=sku"
        "&searchCriteria[filter_groups][0][filters][0][value]=JAM07",
    )["items"]
    assert items[0]["quantity"] == 17
    cat.clear()
    assert {r.outcome for r in cat.sync("stock")} <= {"skipped"}  # a second poll: no write
    assert cat.magento_writes() == []


def test_a_price_worksheet_reaches_the_store_as_base_special_and_tier_prices(bindings_table: str) -> None:
    cat = Catalog(bindings_table, Settings.model_validate({"catalog": {"price_groups": {"WHOLESALE": "Wholesale"}}}))
    cat.put("CustomerPriceClass", {"PriceClassID": "WHOLESALE", "Description": "Wholesale"})
    for sku in ("JAM01", "JAM02"):
        cat.put(
            "StockItem",
            {"InventoryID": sku, "Description": f"Jam {sku}", "DefaultPrice": 5, "BaseUOM": "EA", "SalesUOM": "EA"},
        )
    cat.sync("products")
    sheet = cat.put(
        "SalesPriceWorksheet",
        {
            "Description": "Winter prices",
            "EffectiveDate": "2026-01-01T00:00:00",
            "Hold": False,
            "SalesPrices": [
                {"PriceType": "Base", "InventoryID": "JAM01", "UOM": "EA", "BreakQty": 0, "PendingPrice": 6.25},
                {"PriceType": "Base", "InventoryID": "JAM01", "UOM": "EA", "BreakQty": 10, "PendingPrice": 5.5},
                {
                    "PriceType": "Customer Price Class",
                    "PriceCode": "WHOLESALE",
                    "InventoryID": "JAM01",
                    "UOM": "EA",
                    "BreakQty": 0,
                    "PendingPrice": 4.75,
                },
                {"PriceType": "Base", "InventoryID": "JAM02", "UOM": "EA", "BreakQty": 0, "PendingPrice": 7},
            ],
        },
        expand="SalesPrices",
    )
    cat.acu(
        "POST", "SalesPriceWorksheet/ReleaseSalesPriceWorksheet", {"entity": {"ReferenceNbr": sheet["ReferenceNbr"]}}
    )
    cat.clear()
    results = cat.sync("prices")
    assert {r.outcome for r in results} == {"synced"}, results
    writes = cat.magento_writes()
    assert writes == ["POST /rest/all/V1/products/base-prices", "PUT /rest/all/V1/products/tier-prices"], writes
    base = cat.mag("POST", "/V1/products/base-prices-information", {"skus": ["JAM01", "JAM02"]})
    assert sorted((b["sku"], b["price"]) for b in base) == [("JAM01", 6.25), ("JAM02", 7)]
    tiers = cat.mag("POST", "/V1/products/tier-prices-information", {"skus": ["JAM01"]})
    assert sorted((t["customer_group"], t["quantity"], t["price"]) for t in tiers) == [
        ("ALL GROUPS", 10, 5.5),
        ("Wholesale", 1, 4.75),
    ]
    cat.clear()
    assert {r.outcome for r in cat.sync("prices")} == {"skipped"}
    assert cat.magento_writes() == []


def test_a_promotional_price_with_dates_becomes_a_special_price(cat: Catalog) -> None:
    cat.put("StockItem", {"InventoryID": "JAM09", "Description": "Jam nine", "DefaultPrice": 9})
    cat.sync("products")
    # the Default endpoint's worksheet has no "promotional" flag: the price table is seeded with one
    seed = {
        "sales_prices": [
            {
                "PriceType": "Base",
                "InventoryID": "JAM09",
                "UOM": "EA",
                "BreakQty": 0,
                "Price": 9.5,
                "EffectiveDate": "2026-01-01T00:00:00",
            },
            {
                "PriceType": "Base",
                "InventoryID": "JAM09",
                "UOM": "EA",
                "BreakQty": 0,
                "Price": 7.25,
                "Promotion": True,
                "EffectiveDate": "2026-12-01T00:00:00",
                "ExpirationDate": "2026-12-24T00:00:00",
            },
        ]
    }
    assert cat.ahttp.post("/_sim/seed", json=seed).status_code == 200, cat.ahttp.post("/_sim/seed", json={}).text
    results = cat.sync("prices")
    assert [r.outcome for r in results] == ["synced"], results
    [special] = cat.mag("POST", "/V1/products/special-price-information", {"skus": ["JAM09"]})
    assert special["price"] == 7.25
    assert special["price_from"].startswith("2026-12-01") and special["price_to"].startswith("2026-12-24")
    [base] = cat.mag("POST", "/V1/products/base-prices-information", {"skus": ["JAM09"]})
    assert base["price"] == 9.5


def test_every_body_sent_to_magento_validates_against_the_official_schema(bindings_table: str) -> None:
    from tests.support.magento_schema import validate_request

    cat = Catalog(bindings_table, Settings.model_validate({"catalog": {"price_groups": {"WHOLESALE": "Wholesale"}}}))
    seed_catalog(cat)
    cat.put("NonStockItem", {"InventoryID": "INSTALL", "Description": "Installation", "DefaultPrice": 150})
    assert cat.ahttp.post("/_sim/seed", json={"warehouses": ["WHOLESALE"]}).status_code == 200
    cat.sync("products")
    assert any("stock_item" in (b or {}).get("product", {}).get("extension_attributes", {}) for _, _, b in cat.sent)
    seed = {
        "price_classes": [{"PriceClassID": "WHOLESALE", "Description": "Wholesale"}],
        "sales_prices": [
            {"PriceType": "Base", "InventoryID": "BASESERV1", "UOM": "EA", "BreakQty": 5, "Price": 110},
            {
                "PriceType": "Customer Price Class",
                "PriceCode": "WHOLESALE",
                "InventoryID": "BASESERV1",
                "UOM": "EA",
                "BreakQty": 0,
                "Price": 100,
            },
            {
                "PriceType": "Base",
                "InventoryID": "BASESERV1",
                "UOM": "EA",
                "BreakQty": 0,
                "Price": 99,
                "Promotion": True,
                "EffectiveDate": "2026-12-01T00:00:00",
                "ExpirationDate": "2026-12-24T00:00:00",
            },
        ],
        "stock": [{"InventoryID": "BASESERV1", "WarehouseID": "WHOLESALE", "QtyOnHand": 7}],
    }
    assert cat.ahttp.post("/_sim/seed", json=seed).status_code == 200
    cat.sync("prices")
    cat.sync("stock")
    writes = [(m, p, b) for m, p, b in cat.sent if m in ("POST", "PUT") and "token" not in p]
    kinds = {"/".join(p.split("/V1/")[1].split("/")[:2]) for _, p, _ in writes}
    assert {"products/attributes", "products/base-prices", "products/tier-prices", "inventory/source-items"} <= kinds
    for method, path, body in writes:
        validate_request(method, path, body)  # strict: what erpsync sends, as the 2.4.8 schema types it


def test_a_kit_becomes_a_bundle_after_its_components(bindings_table: str) -> None:
    cat = Catalog(bindings_table, Settings.model_validate({"catalog": {"bundles": True}}))
    for sku, price in (("CUP", 4), ("SAUCER", 3)):
        cat.put("StockItem", {"InventoryID": sku, "Description": sku.title(), "DefaultPrice": price})
    cat.put("StockItem", {"InventoryID": "TEASET", "Description": "Tea set", "DefaultPrice": 12, "IsAKit": True})
    cat.put(
        "KitSpecification",
        {
            "KitInventoryID": "TEASET",
            "RevisionID": "1",
            "Active": True,
            "StockComponents": [
                {"StockInventoryID": "CUP", "ComponentQty": 2},
                {"StockInventoryID": "SAUCER", "ComponentQty": 2},
            ],
        },
        expand="StockComponents",
    )
    rules = cat.rules["products"]
    result = rules.sync(ChangeNotice(source="acumatica", entity="product", id="TEASET", target="magento"))
    assert result.outcome == "synced", result
    assert cat.product("TEASET")["type_id"] == "bundle"
    children = cat.mag("GET", "/V1/bundle-products/TEASET/children")
    assert sorted((c["sku"]) for c in children) == ["CUP", "SAUCER"]
    assert cat.product("CUP")["type_id"] == "simple"  # made first, as a dependency
    # a non-stock kit (Acumatica's gift boxes and service bundles) is a bundle too
    cat.put("NonStockItem", {"InventoryID": "GIFTBOX", "Description": "Gift box", "DefaultPrice": 9, "IsAKit": True})
    cat.put(
        "KitSpecification",
        {
            "KitInventoryID": "GIFTBOX",
            "RevisionID": "1",
            "StockComponents": [{"StockInventoryID": "CUP", "ComponentQty": 1}],
        },
        expand="StockComponents",
    )
    result = rules.sync(ChangeNotice(source="acumatica", entity="product", id="GIFTBOX", target="magento"))
    assert result.outcome == "synced" and cat.product("GIFTBOX")["type_id"] == "bundle", result


def test_a_price_or_stock_level_the_store_refuses_fails_its_sku_alone(cat: Catalog) -> None:
    from decimal import Decimal

    from erpsync.model.catalog import PriceSet, StockLevel, TierPrice
    from erpsync.systems.magento.catalog import MagentoPrices, MagentoStock

    for n in range(4):
        cat.put("StockItem", {"InventoryID": f"JAM{n:02}", "Description": f"Jam {n}", "DefaultPrice": 5})
    cat.sync("products")
    cat.clear()
    # the price APIs answer a failure list: the SKU named in it fails, the rest of the request is saved
    failed = MagentoPrices(cat.magento.client).write(
        [
            PriceSet(sku="JAM00", base=Decimal("6.10")),
            PriceSet(sku="GHOST", base=Decimal("1.00")),
            PriceSet(
                sku="JAM01", base=Decimal("7.20"), tiers=[TierPrice(group="ALL", qty=Decimal(5), price=Decimal(6))]
            ),
        ]
    )
    assert list(failed) == ["GHOST"] and "GHOST" in failed["GHOST"], failed
    assert cat.product("JAM00")["price"] == 6.1 and cat.product("JAM01")["price"] == 7.2
    assert [t["value"] for t in cat.product("JAM01")["tier_prices"]] == [6]
    assert cat.magento_writes() == ["POST /rest/all/V1/products/base-prices", "PUT /rest/all/V1/products/tier-prices"]
    # source items are saved all or none: a refused batch is split in halves until the SKU at fault is alone
    cat.clear()
    skus = ["JAM00", "GHOST", "JAM01", "JAM02", "JAM03"]
    failed = MagentoStock(cat.magento.client, MagentoSettings).write(
        [
            StockLevel(sku=s, quantities={"default": Decimal(10 + i)}, in_stock={"default": True})
            for i, s in enumerate(skus)
        ]
    )
    assert list(failed) == ["GHOST"] and 'SKU "GHOST" does not exist' in failed["GHOST"], failed
    saved = cat.mag("GET", "/V1/inventory/source-items?searchCriteria[pageSize]=100")["items"]
    assert {r["sku"]: r["quantity"] for r in saved if r["sku"].startswith("JAM")} == {
        "JAM00": 10,
        "JAM01": 12,
        "JAM02": 13,
        "JAM03": 14,
    }
    # five refused, then [JAM00, GHOST] refused and [JAM01..03] saved, then JAM00 saved and GHOST refused
    assert cat.magento_writes() == ["POST /rest/all/V1/inventory/source-items"] * 5


def test_bad_catalog_data_fails_the_item_alone_naming_the_item_and_the_field(cat: Catalog) -> None:
    seed_catalog(cat)
    # two items with one name: two products, url keys of their own
    for sku in ("TEA-A", "TEA-B"):
        cat.put("StockItem", {"InventoryID": sku, "Description": "Green tea", "DefaultPrice": 4})
    # two values of one attribute with one description: two options, neither lost
    cat.put(
        "AttributeDefinition",
        {
            "AttributeID": "FLAVOR",
            "Description": "Flavor",
            "ControlType": "Combo",
            "Values": [
                {"ValueID": "MINT1", "Description": "Mint"},
                {"ValueID": "MINT2", "Description": "Mint"},
                {"ValueID": "LEMON", "Description": "Lemon"},
            ],
        },
    )
    # an item whose value the attribute no longer has (removed from the definition after the item took it)
    cat.put(
        "StockItem",
        {
            "InventoryID": "TEA-C",
            "Description": "Lemon tea",
            "DefaultPrice": 4,
            "Attributes": [{"AttributeID": "FLAVOR", "Value": "LEMON"}],
        },
        expand="Attributes",
    )
    values = cat.acu("GET", "AttributeDefinition/FLAVOR?$expand=Values")["Values"]
    lemon = next(v["id"] for v in values if v["ValueID"]["value"] == "LEMON")
    cat.acu(
        "PUT",
        "AttributeDefinition?$expand=Values",
        {"AttributeID": {"value": "FLAVOR"}, "Values": [{"id": lemon, "delete": True}]},
    )
    assert all(r.outcome == "synced" for r in cat.sync("attributes"))
    results = {getattr(r, "record_id", None) or str(r): r for r in cat.sync("products")}
    failed = [r for r in results.values() if isinstance(r, PermanentError)]
    assert len(failed) == 1, failed
    reason = str(failed[0])
    assert failed[0].error_type == "option_missing" and "TEA-C" in reason and "FLAVOR" in reason, reason
    assert "LEMON" in reason, reason
    a, b = cat.product("TEA-A"), cat.product("TEA-B")
    keys = (
        {x["attribute_code"]: x["value"] for x in a["custom_attributes"]},
        {x["attribute_code"]: x["value"] for x in b["custom_attributes"]},
    )
    assert keys[0]["url_key"] != keys[1]["url_key"] and a["name"] == b["name"] == "Green tea"
    options = cat.mag("GET", "/V1/products/attributes/flavor/options")
    labels = sorted(o["label"] for o in options if o.get("value"))
    assert len([x for x in labels if x.startswith("Mint")]) == 2, labels


def test_stock_and_prices_of_an_item_not_yet_a_product_wait_for_it(cat: Catalog) -> None:
    from erpsync.errors import RetryableError

    assert cat.ahttp.post("/_sim/seed", json={"warehouses": ["WHOLESALE"]}).status_code == 200
    cat.put("StockItem", {"InventoryID": "JAM99", "Description": "Jam 99", "DefaultPrice": 5})
    receipt = cat.put(
        "InventoryReceipt",
        {"Hold": False, "Details": [{"InventoryID": "JAM99", "WarehouseID": "WHOLESALE", "Qty": 7}]},
        expand="Details",
    )
    cat.acu("POST", "InventoryReceipt/ReleaseInventoryReceipt", {"entity": {"ReferenceNbr": receipt["ReferenceNbr"]}})
    cat.clear()
    for flow in ("stock", "prices"):  # polled before the products flow made the product
        [waiting] = [r for r in cat.sync(flow) if getattr(r, "outcome", None) != "filtered"]
        assert isinstance(waiting, RetryableError) and waiting.error_type == "waiting_for_product", waiting
        assert "JAM99" in str(waiting)
    assert cat.magento_writes() == []  # nothing sent the store would refuse
    cat.sync("products")
    assert [r.outcome for r in cat.sync("stock")] == ["synced"]
    assert [r.outcome for r in cat.sync("prices")] == ["synced"]
    cat.clear()
    assert {r.outcome for r in cat.sync("stock") + cat.sync("prices")} == {"skipped"}
    searches = [r for r in cat.mhttp.get("/_sim/requests").json()["requests"] if r["path"].endswith("/V1/products")]
    assert searches == []  # bound SKUs are not looked for again


def test_a_non_stock_item_is_sold_without_counting_and_a_stock_item_only_when_stocked(cat: Catalog) -> None:
    cat.put("NonStockItem", {"InventoryID": "INSTALL", "Description": "Installation", "DefaultPrice": 150})
    cat.put("StockItem", {"InventoryID": "KETTLE", "Description": "Kettle", "DefaultPrice": 30})
    assert {r.outcome for r in cat.sync("products")} == {"synced"}
    assert cat.product("INSTALL")["type_id"] == "virtual"
    assert cat.mag("GET", "/V1/inventory/is-product-salable/INSTALL/1") is True  # a service: never out of stock
    assert cat.mag("GET", "/V1/inventory/is-product-salable/KETTLE/1") is False  # none received yet


def test_a_special_price_and_tiers_removed_in_the_erp_are_removed_from_the_store(cat: Catalog) -> None:
    cat.put("StockItem", {"InventoryID": "JAM10", "Description": "Jam ten", "DefaultPrice": 9})
    cat.sync("products")
    row = {"PriceType": "Base", "InventoryID": "JAM10", "UOM": "EA", "EffectiveDate": "2026-01-01T00:00:00"}
    seed = {
        "sales_prices": [
            {**row, "BreakQty": 0, "Price": 9.5},
            {**row, "BreakQty": 12, "Price": 8.5},
            {**row, "BreakQty": 0, "Price": 7.25, "Promotion": True, "ExpirationDate": "2026-12-24T00:00:00"},
        ]
    }
    assert cat.ahttp.post("/_sim/seed", json=seed).status_code == 200
    assert [r.outcome for r in cat.sync("prices")] == ["synced"]
    assert cat.mag("POST", "/V1/products/special-price-information", {"skus": ["JAM10"]})
    assert cat.mag("POST", "/V1/products/tier-prices-information", {"skus": ["JAM10"]})
    sim = cat.ahttp.app.state.sim  # type: ignore[attr-defined]
    with sim.lock:  # the promotion and the quantity break deleted in the ERP
        for key, price in list(sim.catalog.prices.items()):
            if price["InventoryID"]["value"] == "JAM10" and price["Price"]["value"] != 9.5:
                del sim.catalog.prices[key]
    rules = cat.rules["prices"]
    notice = ChangeNotice(source="acumatica", entity="price", id="JAM10", target="magento")
    [result] = rules.sync_many([notice])
    assert result.outcome == "synced" and "special price removed" in result.message, result
    assert "tiers removed" in result.message
    assert cat.mag("POST", "/V1/products/special-price-information", {"skus": ["JAM10"]}) == []
    assert cat.mag("POST", "/V1/products/tier-prices-information", {"skus": ["JAM10"]}) == []
    [base] = cat.mag("POST", "/V1/products/base-prices-information", {"skus": ["JAM10"]})
    assert base["price"] == 9.5
    cat.clear()
    [again] = rules.sync_many([notice])
    assert again.outcome == "skipped" and cat.magento_writes() == []  # removed once, not at every sync


def test_an_initial_load_writes_plain_items_in_one_bulk_and_the_rest_one_by_one(
    cat: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``load_pages`` reads the items whole; ``load_many`` sends the plain ones to Magento's async
    bulk API in one request, a template and a product the bulk refused one by one, and a bad item
    fails alone naming the item and the field. Loaded again, nothing is written."""
    from erpsync.flows import products as products_flow
    from tests.support.magento_schema import validate_request

    monkeypatch.setattr(products_flow, "BULK_MIN", 5)
    seed_catalog(cat)
    for n in range(8):
        cat.put("StockItem", {"InventoryID": f"JAM{n}", "Description": f"Jam {n}", "DefaultPrice": 3 + n})
    cat.put("StockItem", {"InventoryID": "NOPRICE", "Description": "Free jam"})
    # a product the store has already, holding the url key the bulk will ask for JAM7
    cat.mag(
        "POST",
        "/V1/products",
        {
            "product": {
                "sku": "OLD-JAM",
                "name": "Old",
                "attribute_set_id": 4,
                "price": 1,
                "custom_attributes": [{"attribute_code": "url_key", "value": "jam-7-jam7"}],
            }
        },
    )
    cat.sync("attributes")
    cat.sync("categories")
    cat.clear()
    cat.sent.clear()
    rules = cat.rules["products"]
    port = rules.ctx.source_port
    results: dict[str, Any] = {}
    for page in port.load_pages(BEGINNING):
        for notice, answer in zip(page.notices, rules.load_many(page.notices), strict=True):
            if notice.id not in results or getattr(answer, "outcome", "") != "skipped":
                results[notice.id] = answer  # a template is announced by its matrix items and by itself

    bad = results.pop("NOPRICE")
    assert isinstance(bad, PermanentError) and "NOPRICE" in str(bad) and "DefaultPrice" in str(bad)
    assert all(getattr(r, "outcome", None) == "synced" for r in results.values()), [
        (k, r) for k, r in results.items() if getattr(r, "outcome", None) != "synced"
    ]
    assert {k for k, r in results.items() if r.message.endswith("in bulk")} == {f"JAM{n}" for n in range(7)} | {
        "BASESERV1"
    }
    assert "in bulk" not in results["JAM7"].message  # refused in the bulk (url key taken), then made alone
    assert "in bulk" not in results["TSHIRT"].message  # a template: its matrix items first, then it
    writes = cat.magento_writes()
    assert writes.count("POST /rest/all/async/bulk/V1/products") == 1, writes
    acu = [r["path"] for r in cat.ahttp.get("/_sim/requests").json()["requests"] if r["method"] == "GET"]
    assert not [p for p in acu if "/StockItem/JAM" in p or "/StockItem/BASESERV1" in p], acu  # read in pages only
    for n in range(7):
        product = cat.product(f"JAM{n}")
        assert product["name"] == f"Jam {n}" and product["price"] == 3 + n
    assert cat.product("JAM7")["name"] == "Jam 7"
    for method, path, body in cat.sent:
        if path.endswith("/async/bulk/V1/products"):
            for entry in body:
                validate_request("POST", "/V1/products", entry)
    bound = cat.bindings.get("product", "acumatica", "JAM3", "magento")
    assert bound is not None and bound.other_id == str(cat.product("JAM3")["id"])

    cat.clear()
    again = [a for page in port.load_pages(BEGINNING) for a in rules.load_many(page.notices)]
    assert [a for a in again if not isinstance(a, Exception) and a.outcome == "synced"] == []
    assert [w for w in cat.magento_writes() if "/products" in w and "attribute" not in w] == []
