"""SAP Business One as the catalog master: its sales items become Magento products, the item's row
of the configured price list their price and its warehouse rows their stock, through the real
catalog flows, on the sims in-process and the bindings in moto.

Items start from SAP's recorded ``POST Items`` example (``request_examples.json``: ``i001``,
``Item1``, ``itItems``), given price rows and warehouse rows of the metadata's ``ItemPrice`` and
``ItemWarehouseInfo`` shapes (no recorded answer holds them). Quantities are read-only in B1, so
the stock an item starts with is seeded through the sim's control API; it then moves by a sales
order (``Committed``) and a delivery (``InStock``) posted through the Service Layer.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from erpsync.errors import NotFoundError, ValidationFailed
from erpsync.settings import Settings
from erpsync.state.bindings import Bindings
from erpsync.systems.magento import MagentoClient, MagentoSystem
from erpsync.systems.magento.plugin import PLUGIN as MAGENTO
from erpsync.systems.magento.settings import MagentoSettings
from erpsync.systems.plugin import SOURCE, TARGET
from erpsync.systems.sap_b1.adapter import SapB1System
from erpsync.systems.sap_b1.client import SapB1Client
from erpsync.systems.sap_b1.plugin import PLUGIN as SAP_B1
from erpsync.systems.sap_b1.settings import SapB1Settings
from sandbox.sap_b1_clerk import SapB1Clerk
from sandbox.sims import magento as mag_sim
from sandbox.sims import sap_b1
from tests.integration.test_quickbooks_catalog import a_moment_ago, outcomes
from tests.support.catalog_shelf import MagentoShelf, Side, catalog_rules

B1 = Path(__file__).parent.parent / "fixtures" / "sap_b1"
BEGINNING = datetime(2000, 1, 1, tzinfo=UTC)


def recorded(request: str) -> dict[str, Any]:
    return dict(json.loads((B1 / "request_examples.json").read_text())["examples"][request])


def item(code: str, name: str, prices: dict[int, float], **more: Any) -> dict[str, Any]:
    """SAP's recorded ``POST Items`` body with another code and name, and price rows (list -> price)."""
    rows = [{"PriceList": n, "Price": p, "Currency": "USD"} for n, p in prices.items()]
    return {**recorded("POST Items"), "ItemCode": code, "ItemName": name, "ItemPrices": rows, **more}


STOCKED = {
    "ItemWarehouseInfoCollection": [{"WarehouseCode": "01", "InStock": 100}, {"WarehouseCode": "02", "InStock": 20}]
}


class Shelf(MagentoShelf):
    """The B1 sim and the Magento sim, both systems and the catalog flows between them."""

    def __init__(self, table: str, settings: Settings | None = None, **b1: Any) -> None:
        self.bhttp = TestClient(sap_b1.create_app())
        self.cfg = SapB1Settings(**b1)
        client = SapB1Client("http://testserver", sap_b1.COMPANY_DB, sap_b1.USERNAME, sap_b1.PASSWORD, http=self.bhttp)
        self.sap = SapB1System(client, "sap_b1", lambda: self.cfg)
        self.clerk = SapB1Clerk(TestClient(self.bhttp.app))
        self.mhttp = TestClient(mag_sim.create_app())
        mclient = MagentoClient("/rest/default", "admin", "admin123", http=self.mhttp)
        self.magento = MagentoSystem(mclient, "magento", MagentoSettings)
        self.settings = settings or Settings()
        self.bindings = Bindings(table)
        erp, store = Side("sap_b1", self.sap, SAP_B1), Side("magento", self.magento, MAGENTO)
        self.rules = catalog_rules(erp, store, self.bindings, self.settings)

    def seed(self, *items: dict[str, Any]) -> None:
        assert self.bhttp.post("/_sim/seed", json={"items": list(items)}).status_code == 200


def test_plugin_serves_the_catalog_sources() -> None:
    assert {e for e in ("product", "price", "stock", "category") if SAP_B1.can(e, SOURCE)} == {
        "product",
        "price",
        "stock",
    }
    defaults = SapB1Settings()  # an existing connection's settings stay valid
    assert (defaults.price_list, defaults.stock_warehouses) == (1, [])
    client = SapB1Client("http://testserver", sap_b1.COMPANY_DB, sap_b1.USERNAME, sap_b1.PASSWORD)
    system = SapB1System(client, "sap_b1", SapB1Settings)
    for entity, directions in SAP_B1.serves.items():
        for direction in directions:
            assert system.port(entity, direction) is system.port(entity, direction)
    with pytest.raises(NotFoundError, match="serves no stock target"):
        system.port("stock", TARGET)


def test_sales_items_become_magento_products_with_price_and_stock_once(bindings_table: str) -> None:
    shelf = Shelf(bindings_table, Settings.model_validate({"catalog": {"stock": {"quantity": "available"}}}))
    assert sorted(shelf.rules) == ["prices", "products", "stock"]  # no categories or attributes from B1 yet
    shelf.seed(
        item("i001", "Item1", {1: 30, 2: 25}, **STOCKED),
        item("s001", "Service hour", {1: 80}, InventoryItem="tNO"),
        item("r001", "Raw material", {1: 3}, SalesItem="tNO", **STOCKED),  # bought, never sold: no product
    )
    products = shelf.sync("products")
    assert outcomes(products) == {"i001": "synced", "s001": "synced"}
    made = shelf.mag("GET", "/V1/products/i001")
    assert (made["name"], made["price"], made["type_id"], made["status"]) == ("Item1", 30, "simple", 1)
    assert shelf.mag("GET", "/V1/products/s001")["type_id"] == "virtual"  # no stock kept: not counted

    shelf.clear()
    assert outcomes(shelf.sync("stock")) == {"i001": "synced"}  # inventory sales items only
    assert shelf.writes() == ["POST /rest/all/V1/inventory/source-items"]
    assert shelf.magento_qty("i001") == 120  # both warehouses summed into the default source
    assert outcomes(shelf.sync("prices")) == {"i001": "synced", "s001": "synced"}
    assert shelf.mag("GET", "/V1/products/i001")["price"] == 30  # price list 1, not list 2's 25

    shelf.clear()  # a run again writes nothing
    again = {flow: outcomes(shelf.sync(flow)) for flow in ("products", "prices", "stock")}
    assert {o for flow in again.values() for o in flow.values()} == {"skipped"}, again
    assert shelf.writes() == []


def test_a_new_item_reaches_magento_once(bindings_table: str) -> None:
    shelf = Shelf(bindings_table)
    shelf.seed(item("i001", "Item1", {1: 30}, **STOCKED))
    shelf.sync("products")
    since = a_moment_ago()
    # made in B1 (CreateDate/CreateTime stamped, UpdateDate left null as SAP may: the create poll finds it)
    shelf.clerk.request("POST", "Items", json=item("i002", "Item2", {1: 12.5}))
    assert shelf.clerk.request("GET", "Items('i002')")["UpdateDate"] is None
    shelf.clear()
    assert outcomes(shelf.sync("products", since)) == {"i002": "synced"}
    assert (shelf.mag("GET", "/V1/products/i002")["price"], len(shelf.writes())) == (12.5, 1)
    shelf.clear()
    assert outcomes(shelf.sync("products", since)) == {"i002": "skipped"}
    assert shelf.writes() == []


def test_a_price_list_change_updates_the_magento_price(bindings_table: str) -> None:
    shelf = Shelf(bindings_table, price_list=2)
    shelf.seed(item("i001", "Item1", {1: 30, 2: 25}, **STOCKED))
    for flow in ("products", "prices"):
        shelf.sync(flow)
    assert shelf.mag("GET", "/V1/products/i001")["price"] == 25
    since = a_moment_ago()
    shelf.clerk.request("PATCH", "Items('i001')", json={"ItemPrices": [{"PriceList": 1, "Price": 31}]})
    shelf.clear()  # another list's price moved: announced, nothing to write
    assert outcomes(shelf.sync("prices", since)) == {"i001": "skipped"}
    assert shelf.writes() == []
    since = a_moment_ago()
    shelf.clerk.request("PATCH", "Items('i001')", json={"ItemPrices": [{"PriceList": 2, "Price": 27.5}]})
    assert outcomes(shelf.sync("prices", since)) == {"i001": "synced"}
    assert shelf.writes() == ["POST /rest/all/V1/products/base-prices"]
    assert shelf.mag("GET", "/V1/products/i001")["price"] == 27.5
    shelf.clear()
    assert outcomes(shelf.sync("prices", since)) == {"i001": "skipped"}
    assert shelf.writes() == []


@pytest.mark.parametrize(
    ("quantity", "after_order", "after_delivery"),
    [("available", 95, 95), ("available_for_shipping", 100, 95)],
)
def test_a_stock_move_updates_the_magento_quantity(
    bindings_table: str, quantity: str, after_order: int, after_delivery: int
) -> None:
    settings = Settings.model_validate({"catalog": {"stock": {"quantity": quantity}}})
    shelf = Shelf(bindings_table, settings, stock_warehouses=["01"])  # warehouse 02 is not the shop's
    shelf.seed(item("i001", "Item1", {1: 30}, **STOCKED))
    for flow in ("products", "stock"):
        shelf.sync(flow)
    assert shelf.magento_qty("i001") == 100
    stamp = shelf.clerk.request("GET", "Items('i001')")["UpdateDate"]
    bp = recorded("POST BusinessPartners")
    shelf.clerk.request("POST", "BusinessPartners", json=bp)
    order = {**recorded("POST Orders"), "CardCode": bp["CardCode"]}
    order["DocumentLines"] = [{**order["DocumentLines"][0], "ItemCode": "i001", "Quantity": "5", "WarehouseCode": "01"}]
    assert shelf.bhttp.post("/_sim/seed", json={"tax_codes": {"T1": 0}}).status_code == 200
    posted = shelf.clerk.request("POST", "Orders", json=order)
    assert shelf.clerk.request("GET", "Items('i001')")["UpdateDate"] == stamp  # a stock move stamps no item
    shelf.clear()
    moved = shelf.sync("stock")
    assert shelf.magento_qty("i001") == after_order
    assert outcomes(moved) == {"i001": "synced" if after_order != 100 else "skipped"}
    shelf.clerk.deliver(posted["DocEntry"], "1Z999")
    shelf.sync("stock")
    assert shelf.magento_qty("i001") == after_delivery
    shelf.clear()
    assert outcomes(shelf.sync("stock")) == {"i001": "skipped"}
    assert shelf.writes() == []
    # versioned by the quantities: a poll that reads them unchanged carries the version the worker
    # finished, so the poll's seen versions leave the item out (cost grows with moves, not items)
    port = shelf.rules["stock"].ctx.source_port
    first, again = ([(n.id, n.version) for p in port.changes(BEGINNING) for n in p.notices] for _ in range(2))
    assert first == again and all(v.startswith("qty:") for _, v in first)


def test_an_item_without_a_price_fails_naming_it_and_a_frozen_one_is_disabled(bindings_table: str) -> None:
    shelf = Shelf(bindings_table)
    shelf.seed(item("i001", "Item1", {1: 30}), item("i003", "Item3", {2: 9}))
    products = shelf.sync("products")
    assert outcomes(products) == {"i001": "synced", "i003": "ValidationFailed"}
    assert str(products["i003"]) == (
        "sap_b1 item i003 (Item3) has no price in price list 1: a store product without a price would sell for nothing"
    )
    assert shelf.sync("prices")["i003"].outcome == "filtered"  # no price: nothing written
    since = a_moment_ago()
    shelf.clerk.request("PATCH", "Items('i001')", json={"Frozen": "tYES"})
    assert outcomes(shelf.sync("products", since)) == {"i001": "synced"}
    assert shelf.mag("GET", "/V1/products/i001")["status"] == 2  # disabled, never deleted
    with pytest.raises(NotFoundError, match="sap_b1 has no sales item i999"):
        shelf.rules["products"].ctx.source_port.get("i999")
    assert isinstance(products["i003"], ValidationFailed)


def test_the_stock_sweep_reads_every_inventory_item_once_in_pages(bindings_table: str) -> None:
    shelf = Shelf(bindings_table, page_size=2)
    shelf.seed(*(item(f"i00{n}", f"Item{n}", {1: 10}, **STOCKED) for n in (3, 1, 2)))
    shelf.seed(item("s001", "Service hour", {1: 80}, InventoryItem="tNO"))
    pages = list(shelf.rules["stock"].ctx.source_port.changes(datetime.now(UTC)))  # the cursor is not used
    assert [[n.id for n in p.notices] for p in pages] == [["i001", "i002"], ["i003"]]
    assert pages[0].checkpoint is None and pages[1].checkpoint is not None
    level = shelf.rules["stock"].ctx.source_port.get("i002")
    assert {w: str(q.available) for w, q in level.warehouses.items()} == {"01": "100.0", "02": "20.0"}
    with pytest.raises(NotFoundError, match="no inventory sales item s001"):
        shelf.rules["stock"].ctx.source_port.get("s001")
