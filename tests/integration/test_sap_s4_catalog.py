"""SAP S/4HANA as the catalog master: its products become Magento products, the list price
condition records of the sales area their prices (scale lines their tier prices) and the
unrestricted stock their quantities, through the real catalog flows, on the sims in-process and
the bindings in moto.

Products start from SAP's recorded sales order create (``API_SALES_ORDER_SRV.http``: material
``MZ-FG-M550`` sold in sales area ``1710``/``10``), seeded with the sim's control API or made by a
clerk with ``POST A_Product`` and ``POST A_SlsPrcgConditionRecord`` in the shapes of SAP's
metadata (sandbox/sims/sap_s4_metadata/SOURCES.md; no recorded answer of those services exists in
the reference). Stock is read only in S/4: it starts seeded and moves by a delivery's goods issue
posted through the delivery API, as the warehouse does.
"""

from __future__ import annotations

import re
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
from erpsync.systems.sap_s4.adapter import S4System
from erpsync.systems.sap_s4.client import S4Client
from erpsync.systems.sap_s4.plugin import PLUGIN as SAP_S4
from erpsync.systems.sap_s4.settings import S4Settings
from sandbox.sap_s4_clerk import PRICING, PRODUCTS, SapS4Clerk
from sandbox.sims import magento as mag_sim
from sandbox.sims import sap_s4
from tests.integration.test_quickbooks_catalog import a_moment_ago, outcomes
from tests.support.catalog_shelf import MagentoShelf, Side, catalog_rules

S4 = Path(__file__).parent.parent / "fixtures" / "sap_s4"
BEGINNING = datetime(2000, 1, 1, tzinfo=UTC)
AREA = {"sales_organization": "1710", "distribution_channel": "10", "organization_division": "00"}


def recorded_material() -> str:
    """The material of SAP's recorded sales order create."""
    found = re.search(r'"Material"\s*:\s*"([^"]+)"', (S4 / "API_SALES_ORDER_SRV.http").read_text())
    assert found is not None
    return found.group(1)


def material(code: str, text: str, price: str, **more: Any) -> dict[str, Any]:
    """A seed row of the sim (its product, list price record and stock come with it)."""
    return {"Material": code, "Text": text, "Price": price, "Unit": "PC", "Plant": "1710", **more}


class Shelf(MagentoShelf):
    """The S/4 sim and the Magento sim, both systems and the catalog flows between them."""

    def __init__(self, table: str, settings: Settings | None = None, **s4: Any) -> None:
        self.shttp = TestClient(sap_s4.create_app())
        self.cfg = S4Settings(**{**AREA, "generic_sold_to": "WEBSHOP", **s4})
        client = S4Client("http://testserver/sap/opu/odata/sap", sap_s4.USERNAME, sap_s4.PASSWORD, http=self.shttp)
        self.sap = S4System(client, "sap_s4", lambda: self.cfg)
        self.clerk = SapS4Clerk(TestClient(self.shttp.app))
        self.mhttp = TestClient(mag_sim.create_app())
        mclient = MagentoClient("/rest/default", "admin", "admin123", http=self.mhttp)
        self.magento = MagentoSystem(mclient, "magento", MagentoSettings)
        self.settings = settings or Settings()
        self.bindings = Bindings(table)
        erp, store = Side("sap_s4", self.sap, SAP_S4), Side("magento", self.magento, MAGENTO)
        self.rules = catalog_rules(erp, store, self.bindings, self.settings)

    def seed(self, *materials: dict[str, Any]) -> None:
        body = {"customers": [{"Customer": "WEBSHOP"}], "materials": list(materials)}
        assert self.shttp.post("/_sim/seed", json=body).status_code == 200

    def list_price(self, code: str) -> dict[str, Any]:
        """The list price condition record of material ``code`` (clerk's read)."""
        rows = self.clerk.request(
            "GET",
            PRICING,
            "A_SlsPrcgCndnRecdValidity",
            params={"$filter": f"Material eq '{code}'", "$expand": "to_SlsPrcgConditionRecord"},
        )["results"]
        return dict(rows[0]["to_SlsPrcgConditionRecord"])

    def set_rate(self, code: str, rate: str) -> None:
        record = self.list_price(code)
        self.clerk.request(
            "PATCH",
            PRICING,
            f"A_SlsPrcgConditionRecord('{record['ConditionRecord']}')",
            json={"ConditionRateValue": rate},
            headers={"If-Match": record["__metadata"]["etag"]},
        )


def test_plugin_serves_the_catalog_sources() -> None:
    assert {e for e in ("product", "price", "stock", "category", "attribute") if SAP_S4.can(e, SOURCE)} == {
        "product",
        "price",
        "stock",
    }
    defaults = S4Settings(**AREA, generic_sold_to="WEBSHOP")  # an existing connection's settings stay valid
    assert (defaults.price_changes, defaults.stock_plants, defaults.stock_by) == ("stamped", [], "plant")
    client = S4Client("http://testserver/sap/opu/odata/sap", sap_s4.USERNAME, sap_s4.PASSWORD)
    system = S4System(client, "sap_s4", lambda: defaults)
    for entity, directions in SAP_S4.serves.items():
        for direction in directions:
            assert system.port(entity, direction) is system.port(entity, direction)
    with pytest.raises(NotFoundError, match="serves no stock target"):
        system.port("stock", TARGET)


def test_products_reach_magento_with_price_and_stock_once(bindings_table: str) -> None:
    shelf = Shelf(bindings_table, Settings.model_validate({"catalog": {"stock": {"quantity": "available"}}}))
    assert sorted(shelf.rules) == ["prices", "products", "stock"]
    code = recorded_material()
    shelf.seed(
        material(code, "M550 Bike", "1500.00", Stock="25"),
        material("SRV-INSTALL", "Installation", "80.00", ProductType="SERV"),
        material("RAW-STEEL", "Steel", "3.00", SalesOrganization="1010", Stock="900"),  # another sales area
    )
    products = shelf.sync("products")
    assert outcomes(products) == {code: "synced", "SRV-INSTALL": "synced", "RAW-STEEL": "filtered"}
    made = shelf.mag("GET", f"/V1/products/{code}")
    assert (made["name"], made["price"], made["type_id"], made["status"]) == ("M550 Bike", 1500, "simple", 1)
    assert shelf.mag("GET", "/V1/products/SRV-INSTALL")["type_id"] == "virtual"

    shelf.clear()
    stock = shelf.sync("stock")
    assert outcomes(stock)[code] == "synced" and shelf.magento_qty(code) == 25
    assert "SRV-INSTALL" not in stock  # nothing stocked: no stock row, no stock written
    assert outcomes(shelf.sync("prices")) == {code: "synced", "SRV-INSTALL": "synced"}  # the sales area's only

    shelf.clear()  # a run again writes nothing
    again = {flow: outcomes(shelf.sync(flow)) for flow in ("products", "prices", "stock")}
    assert {o for flow in again.values() for o in flow.values()} <= {"skipped", "filtered"}, again
    assert shelf.writes() == []


def test_a_product_a_clerk_makes_reaches_magento_once(bindings_table: str) -> None:
    shelf = Shelf(bindings_table)
    since = a_moment_ago()
    shelf.clerk.request(
        "POST",
        PRODUCTS,
        "A_Product",
        json={
            "Product": "tg-11",  # SAP keeps it upper case
            "ProductType": "HAWA",
            "BaseUnit": "PC",
            "GrossWeight": "1.250",
            "WeightUnit": "KG",
            "to_Description": {"results": [{"Language": "EN", "ProductDescription": "Trekking Glove"}]},
            "to_SalesDelivery": {"results": [{"ProductSalesOrg": "1710", "ProductDistributionChnl": "10"}]},
        },
    )
    products = shelf.sync("products", since)
    assert isinstance(products["TG-11"], ValidationFailed)  # no list price yet: named, waits on the desk
    assert str(products["TG-11"]) == (
        "sap_s4 product TG-11 has no PR00 list price in force for sales area 1710/10: a store product "
        "without a price would sell for nothing"
    )
    shelf.clerk.request(
        "POST",
        PRICING,
        "A_SlsPrcgConditionRecord",
        json={
            "ConditionType": "PR00",
            "ConditionRateValue": "249.000",
            "ConditionRateValueUnit": "USD",
            "ConditionQuantity": "10",  # priced per 10 gloves
            "to_SlsPrcgCndnRecdValidity": {
                "results": [{"SalesOrganization": "1710", "DistributionChannel": "10", "Material": "TG-11"}]
            },
            "to_SlsPrcgCndnRecordScale": {
                "results": [
                    {"ConditionScaleQuantity": "1.000", "ConditionRateValue": "249.000"},
                    {"ConditionScaleQuantity": "50.000", "ConditionRateValue": "199.000"},
                ]
            },
        },
    )
    shelf.clear()
    assert outcomes(shelf.sync("products", since)) == {"TG-11": "synced"}
    made = shelf.mag("GET", "/V1/products/TG-11")
    assert (made["name"], made["price"], made["weight"]) == ("Trekking Glove", 24.9, 1.25)
    assert outcomes(shelf.sync("prices", since)) == {"TG-11": "synced"}
    tiers = shelf.mag("GET", "/V1/products/TG-11")["tier_prices"]
    assert [(t["qty"], t["value"]) for t in tiers] == [(50, 19.9)]  # the scale line, per glove
    shelf.clear()
    assert outcomes(shelf.sync("products", since)) == {"TG-11": "skipped"}
    assert shelf.writes() == []


@pytest.mark.parametrize("mode", ["stamped", "sweep"])
def test_a_list_price_change_updates_the_magento_price(bindings_table: str, mode: str) -> None:
    shelf = Shelf(bindings_table, price_changes=mode)
    shelf.seed(material("TG-11", "Trekking Glove", "24.90"), material("TG-12", "Hiking Glove", "19.90"))
    for flow in ("products", "prices"):
        shelf.sync(flow)
    since = a_moment_ago()
    shelf.set_rate("TG-11", "27.500")
    shelf.clear()
    changed = shelf.sync("prices", since)
    # stamped: only the record changed is announced; sweep: all are read, the unchanged one skipped
    assert outcomes(changed) == ({"TG-11": "synced"} if mode == "stamped" else {"TG-11": "synced", "TG-12": "skipped"})
    assert shelf.writes() == ["POST /rest/all/V1/products/base-prices"]
    assert shelf.mag("GET", "/V1/products/TG-11")["price"] == 27.5
    shelf.clear()
    assert set(outcomes(shelf.sync("prices", since)).values()) == {"skipped"}
    assert shelf.writes() == []


def test_a_goods_issue_moves_the_magento_quantity(bindings_table: str) -> None:
    shelf = Shelf(bindings_table, stock_plants=["1710"])
    shelf.seed(material("TG-11", "Trekking Glove", "24.90", Stock="100"))
    for flow in ("products", "stock"):
        shelf.sync(flow)
    assert shelf.magento_qty("TG-11") == 100
    order = shelf.clerk.request(
        "POST",
        sap_s4.SALES,
        "A_SalesOrder",
        json={
            "SalesOrderType": "OR",
            **{"SalesOrganization": "1710", "DistributionChannel": "10", "OrganizationDivision": "00"},
            "SoldToParty": "WEBSHOP",
            "PurchaseOrderByCustomer": "#1001",
            "to_Item": {"results": [{"Material": "TG-11", "RequestedQuantity": "5", "RequestedQuantityUnit": "PC"}]},
        },
    )
    shelf.clear()
    assert outcomes(shelf.sync("stock")) == {"TG-11": "skipped"}  # an order moves no unrestricted stock
    shelf.clerk.deliver(order["SalesOrder"], "1Z999")
    assert outcomes(shelf.sync("stock")) == {"TG-11": "synced"}
    assert shelf.magento_qty("TG-11") == 95
    assert shelf.writes() == ["POST /rest/all/V1/inventory/source-items"]
    shelf.clear()
    assert outcomes(shelf.sync("stock")) == {"TG-11": "skipped"}
    assert shelf.writes() == []


def test_a_product_marked_for_deletion_is_disabled_and_an_unknown_one_is_named(bindings_table: str) -> None:
    shelf = Shelf(bindings_table)
    shelf.seed(material("TG-11", "Trekking Glove", "24.90"))
    shelf.sync("products")
    since = a_moment_ago()
    shelf.clerk.request("PATCH", PRODUCTS, "A_Product('TG-11')", json={"IsMarkedForDeletion": True})
    assert outcomes(shelf.sync("products", since)) == {"TG-11": "synced"}
    assert shelf.mag("GET", "/V1/products/TG-11")["status"] == 2  # disabled, never deleted
    with pytest.raises(NotFoundError):
        shelf.rules["products"].ctx.source_port.get("NOPE")


def test_the_stock_sweep_keeps_a_material_whole_across_pages(bindings_table: str) -> None:
    shelf = Shelf(bindings_table, stock_by="storage_location")
    shelf.seed(*(material(f"TG-1{n}", f"Glove {n}", "10.00", Stock="5") for n in (3, 1, 2)))
    shelf.shttp.post("/_sim/config", json={"page_size": 2})
    shelf.shttp.post("/_sim/stock", json={"Material": "TG-11", "StorageLocation": "102", "Quantity": "7"})
    pages = list(shelf.rules["stock"].ctx.source_port.changes(datetime.now(UTC)))  # the cursor is not used
    # rows TG-11/101 TG-11/102 | TG-12/101 TG-13/101: a material is announced once its last row is read
    assert [[n.id for n in p.notices] for p in pages] == [[], ["TG-11", "TG-12"], ["TG-13"]]
    assert [p.checkpoint is None for p in pages] == [True, True, False]
    level = shelf.rules["stock"].ctx.source_port.get("TG-11")
    assert {w: str(q.on_hand) for w, q in level.warehouses.items()} == {"1710/101": "5.000", "1710/102": "7.000"}
    bad = shelf.shttp.post("/_sim/stock", json={"Material": "NOPE", "Quantity": "1"})
    assert bad.status_code == 404 and "NOPE" in bad.text
