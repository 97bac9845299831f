"""The catalog's pure rules: Acumatica rows to canonical prices and products, the store's view of
stock and prices, attribute codes and url keys."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from erpsync.flows.attributes import option_labels, store_code
from erpsync.flows.catalog import get
from erpsync.flows.categories import url_key
from erpsync.flows.prices import PriceRules
from erpsync.flows.stock import StockRules
from erpsync.flows.sync import FlowContext
from erpsync.model.catalog import Attribute, AttributeOption, PriceSet, Product, StockLevel, TierPrice, WarehouseQty
from erpsync.settings import Settings
from erpsync.systems.acumatica.catalog import price_set, product, variant_attributes


def row(**fields: Any) -> dict[str, Any]:
    return {k: {"value": v} for k, v in fields.items()}


def rules(cls: type[Any], flow: str, **catalog: Any) -> Any:
    settings = Settings.model_validate({"catalog": catalog})
    ctx = FlowContext(get(flow), "acumatica", "magento", None, None, None, settings)  # type: ignore[arg-type]
    return cls(ctx)


def test_price_rows_become_base_special_and_tiers() -> None:
    rows = [
        row(PriceType="Base", InventoryID="JAM", UOM="EA", BreakQty=0, Price=9.5, CurrencyID="USD"),
        row(PriceType="Base", InventoryID="JAM", UOM="EA", BreakQty=10, Price=8.75, CurrencyID="USD"),
        row(
            PriceType="Base",
            InventoryID="JAM",
            UOM="EA",
            BreakQty=0,
            Price=7,
            Promotion=True,
            EffectiveDate="2026-12-01T00:00:00",
            ExpirationDate="2026-12-24T00:00:00",
            CurrencyID="USD",
        ),
        row(PriceType="Customer Price Class", PriceCode="WHOLESALE", InventoryID="JAM", UOM="EA", BreakQty=0, Price=6),
        row(PriceType="Base", InventoryID="JAM", UOM="EA", BreakQty=0, Price=99, CurrencyID="EUR"),
        row(PriceType="Base", InventoryID="JAM", UOM="EA", BreakQty=0, Price=98, Warehouse="RETAIL"),
        row(PriceType="Customer", PriceCode="ABC", InventoryID="JAM", UOM="EA", BreakQty=0, Price=1),
    ]
    p = price_set("JAM", rows, default=Decimal("12"), currency="USD", uom=None)
    assert p.base == Decimal("9.5")  # the base row, not the item's default price
    assert p.special is not None and p.special.price == Decimal(7)
    assert p.special.starts is not None and p.special.starts.day == 1
    assert [(t.group, t.qty, t.price) for t in p.tiers] == [
        ("ALL", Decimal(10), Decimal("8.75")),
        ("WHOLESALE", Decimal(1), Decimal(6)),
    ]


def test_without_a_base_row_the_default_price_is_the_base() -> None:
    assert price_set("JAM", [], default=Decimal("12"), currency=None, uom=None).base == Decimal("12")


def test_only_mapped_price_classes_reach_the_store_as_groups() -> None:
    r = rules(PriceRules, "prices", price_groups={"WHOLESALE": "Wholesale"})
    value = PriceSet(
        sku="JAM",
        base=Decimal(9),
        tiers=[
            TierPrice(group="ALL", qty=Decimal(10), price=Decimal(8)),
            TierPrice(group="WHOLESALE", qty=Decimal(1), price=Decimal(6)),
            TierPrice(group="RETAIL", qty=Decimal(1), price=Decimal(7)),
        ],
    )
    ready, _ = r.for_store(value)
    assert [(t.group, t.price) for t in ready.tiers] == [("ALL", Decimal(8)), ("Wholesale", Decimal(6))]
    nothing, why = r.for_store(PriceSet(sku="X"))
    assert nothing is None and "X has no price" in why


def level() -> StockLevel:
    return StockLevel(
        sku="JAM",
        warehouses={
            "WHOLESALE": WarehouseQty(on_hand=Decimal(10), available=Decimal(4), for_shipping=Decimal(8)),
            "RETAIL": WarehouseQty(on_hand=Decimal(5), available=Decimal(5), for_shipping=Decimal(-2)),
        },
    )


def test_stock_sums_the_chosen_warehouses_of_the_chosen_quantity_into_the_default_source() -> None:
    ready, _ = rules(StockRules, "stock").for_store(level())
    assert ready.quantities == {"default": Decimal(6)}  # 8 + (-2) available for shipping
    ready, _ = rules(StockRules, "stock", stock={"warehouses": ["WHOLESALE"], "quantity": "on_hand"}).for_store(level())
    assert ready.quantities == {"default": Decimal(10)}


def test_stock_per_source_never_sells_below_zero_without_backorders() -> None:
    r = rules(StockRules, "stock", stock={"sources": {"WHOLESALE": "wh", "RETAIL": "shop"}})
    ready, _ = r.for_store(level())
    assert ready.quantities == {"wh": Decimal(8), "shop": Decimal(0)}
    assert ready.in_stock == {"wh": True, "shop": False}
    r = rules(StockRules, "stock", stock={"sources": {"RETAIL": "shop"}, "backorders": True})
    ready, _ = r.for_store(level())
    assert ready.quantities == {"shop": Decimal(-2)} and ready.in_stock == {"shop": True}


def test_a_stock_item_record_becomes_a_product() -> None:
    record = {
        **row(
            InventoryID="BASESERV1 ",
            Description="Baseline level of performance",
            ItemStatus="Active",
            ItemClass="STOCKITEM",
            DefaultPrice=120.5,
            DimensionWeight=2.5,
            TaxCategory="TAXABLE",
        ),
        "Attributes": [row(AttributeID="SOFTVER", Value="Server 2012 R2"), row(AttributeID="EMPTY", Value=None)],
        "Categories": [row(CategoryID=7)],
    }
    p = product(record, "StockItem")
    assert (p.source_id, p.kind, p.price, p.weight, p.active) == (
        "BASESERV1",
        "simple",
        Decimal("120.5"),
        Decimal("2.5"),
        True,
    )
    assert p.attributes == {"SOFTVER": "Server 2012 R2"} and p.categories == ["7"]
    assert not product({**record, **row(ItemStatus="Inactive")}, "StockItem").active
    assert product(record, "NonStockItem").kind == "virtual"


def test_variant_attributes_are_those_that_differ_across_the_children() -> None:
    kids = [
        Product(source_id="T-RED-S", name="x", attributes={"COLOR": "RED", "SIZE": "S", "BRAND": "ACME"}),
        Product(source_id="T-BLUE-S", name="x", attributes={"COLOR": "BLUE", "SIZE": "S", "BRAND": "ACME"}),
        Product(source_id="T-RED-M", name="x", attributes={"COLOR": "RED", "SIZE": "M", "BRAND": "ACME"}),
    ]
    assert variant_attributes(kids) == ["COLOR", "SIZE"]


def test_attribute_codes_and_labels_and_url_keys() -> None:
    assert store_code("Operation System") == "operation_system"
    assert store_code("1st-choice") == "a_1st_choice"
    assert len(store_code("X" * 90)) == 60
    attr = Attribute(
        source_id="COLOR",
        options=[
            AttributeOption(value_id="RD", label="Red"),
            AttributeOption(value_id="RED", label="red"),
            AttributeOption(value_id="OLD", label="Old", disabled=True),
        ],
    )
    assert option_labels(attr) == {"RD": "Red (RD)", "RED": "red (RED)"}
    assert url_key("Jams & Jellies", "12") == "jams-jellies-12"
    assert url_key("Café", "7") == "cafe-7"
