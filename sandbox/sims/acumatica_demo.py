"""The Acumatica demo company as far as the official Postman collection names it
(Acumatica/Help-and-Training-Examples, ``IntegrationDevelopmentGuide.postman_collection.json``,
Default/24.200.001), as a ``/_sim/seed`` body: ``POST /_sim/seed {"demo": true}``.

Every customer, item, warehouse, class, order, shipment, invoice and payment that a request of
the collection addresses is here, with the GUIDs the collection addresses records by, in the state
the request expects when run on its own (orders open, shipments open, documents balanced;
``INV000046`` on hold, sales order ``000001`` canceled so that it can be reopened). The open
shipments 000068-000072 that the POS scenarios confirm ship orders of their own (000068, 000069,
000072, RM 000125), so the scenarios' orders (000070, 000073, 000074, RM 000127) are still open for
their create-shipment steps. The names,
amounts and numbers come from the collection; descriptions and quantities that it does not give
are made up. A small catalog rides along: a matrix item with three children, a kit, sales
categories, customer price classes, and base, tier, price-class, customer and promotional prices.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

WAREHOUSES = ("WHOLESALE", "RETAIL", "MAIN", "YOGI")

STOCK_ITEMS = (
    # InventoryID, Description, class, price, {warehouse: on hand}, categories
    ("APJAM08", "Apple jam 8 oz", "JAMS", 5.5, {"WHOLESALE": 500, "RETAIL": 60}, (2,)),
    ("APJAM32", "Apple jam 32 oz", "JAMS", 15.0, {"WHOLESALE": 300, "RETAIL": 20}, (2,)),
    ("APJAM96", "Apple jam 96 oz", "JAMS", 40.0, {"WHOLESALE": 120}, (2,)),
    ("CHERJAM32", "Cherry jam 32 oz", "JAMS", 16.0, {"WHOLESALE": 200}, (2,)),
    ("PEARJAM96", "Pear jam 96 oz", "JAMS", 42.0, {"RETAIL": 40, "WHOLESALE": 80}, (2,)),
    ("PLUMJAM96", "Plum jam 96 oz", "JAMS", 41.0, {"WHOLESALE": 70}, (2,)),
    ("APL-16OZ-GBT", "Apple juice 16 oz glass bottle", "JUICES", 3.2, {"WHOLESALE": 400}, (1,)),
    ("ORG-16OZ-GBT", "Orange juice 16 oz glass bottle", "JUICES", 3.5, {"RETAIL": 90, "WHOLESALE": 300}, (1,)),
    ("ORG-32OZ-GBT", "Orange juice 32 oz glass bottle", "JUICES", 6.0, {"RETAIL": 90, "WHOLESALE": 300}, (1,)),
    ("SWB-32OZ-GBT", "Strawberry juice 32 oz glass bottle", "JUICES", 6.5, {"WHOLESALE": 250}, (1,)),
    ("APPLES", "Apples", "FRUITS", 1.2, {"WHOLESALE": 1000, "RETAIL": 200}, (3,)),
    ("BANANAS", "Bananas", "FRUITS", 0.9, {"WHOLESALE": 800}, (3,)),
    ("ORANGES", "Oranges", "FRUITS", 1.1, {"WHOLESALE": 900}, (3,)),
    ("AACOMPUT01", "Computer, 15 inch", "COMPUTERS", 500.0, {"WHOLESALE": 40}, (4,)),
    ("AALEGO500", "Building bricks set, 500 pieces", "STOCKITEM", 50.0, {"WHOLESALE": 300}, ()),
    ("AAMACHINE1", "Juicer machine", "STOCKITEM", 950.0, {"WHOLESALE": 5}, ()),
    ("EJECTOR03", "Ejector", "STOCKITEM", 120.0, {"MAIN": 12}, ()),
    ("CGFEEDER", "Chicken feeder", "STOCKITEM", 35.0, {"MAIN": 8}, ()),
    ("CONGRILL", "Contact grill", "STOCKITEM", 89.0, {"WHOLESALE": 25}, ()),
    ("LAPTOP15", "Laptop, 15 inch", "COMPUTERS", 1200.0, {"WHOLESALE": 15}, (4,)),
    ("SIMCARD", "SIM card", "COMPUTERS", 10.0, {"YOGI": 150, "WHOLESALE": 50}, (4,)),
)
NON_STOCK_ITEMS = (
    ("ADVERT", "Advertising, per day", "SERVICES", 1000.0, "DAY"),
    ("CLEANING", "Cleaning, per hour", "SERVICES", 40.0, "HOUR"),
    ("INSTALL", "Installation", "SERVICES", 150.0, "EA"),
    ("JAMGIFT", "Jam gift box (kit)", "NONSTOCK", 25.0, "EA"),
)
SHIRTS = (("BLACK", "M"), ("BLACK", "L"), ("WHITE", "M"))
KIT = "JAMGIFT"


def demo_company_seed() -> dict[str, Any]:
    """The seed body (keys as ``POST /_sim/seed`` takes them)."""
    return {
        "warehouses": [{"WarehouseID": w, "Description": f"{w.title()} warehouse"} for w in WAREHOUSES],
        "attributes": _attributes(),
        "item_classes": _item_classes(),
        "sales_categories": [
            {"CategoryID": 1, "Description": "Groceries", "SortOrder": 1},
            {"CategoryID": 2, "Description": "Jams", "ParentCategoryID": 1, "SortOrder": 1},
            {"CategoryID": 3, "Description": "Fruit", "ParentCategoryID": 1, "SortOrder": 2},
            {"CategoryID": 4, "Description": "Electronics", "SortOrder": 2},
            {"CategoryID": 5, "Description": "Apparel", "SortOrder": 3},
        ],
        "price_classes": [
            {"PriceClassID": pc, "Description": d}
            for pc, d in (("WHOLESALE", "Wholesale customers"), ("RETAIL", "Retail customers"), ("LOCAL", "Local"))
        ],
        "customer_classes": [
            {"ClassID": c, "Description": d}
            for c, d in (
                ("DEFAULT", "Default class"),
                ("ECCUSTOMER", "E-commerce customers"),
                ("INTL", "International customers"),
                ("LOCAL", "Local customers"),
            )
        ],
        "customers": _customers(),
        "template_items": [
            {
                "InventoryID": "AMTSHIRT",
                "Description": "T-shirt",
                "ItemClass": "APPAREL",
                "DefaultPrice": 20,
                "MSRP": 25,
                "Categories": [{"CategoryID": 5}],
            }
        ],
        "stock_items": _stock_items(),
        "non_stock_items": [
            {
                "InventoryID": i,
                "Description": d,
                "ItemClass": c,
                "DefaultPrice": p,
                "BaseUnit": u,
                "SalesUnit": u,
                **({"IsAKit": True} if i == KIT else {}),  # a kit specification needs a kit item
            }
            for i, d, c, p, u in NON_STOCK_ITEMS
        ],
        "kits": [
            {
                "KitInventoryID": KIT,
                "RevisionID": "1",
                "Description": "Jam gift box",
                "StockComponents": [
                    {"StockInventoryID": "APJAM08", "ComponentQty": 2},
                    {"StockInventoryID": "CHERJAM32", "ComponentQty": 1},
                ],
            }
        ],
        "item_warehouses": [
            {"InventoryID": "APPLES", "WarehouseID": "RETAIL", "OverrideReorderPoint": True, "ReorderPoint": 50},
        ],
        "sales_prices": _prices(),
        "price_worksheets": [
            {
                "Description": "Next year's jam prices",
                "Hold": True,
                "EffectiveDate": f"{datetime.now(UTC).year + 1}-01-01",
                "SalesPrices": [{"PriceType": "Base", "InventoryID": "APJAM08", "PendingPrice": 5.9}],
            }
        ],
        "inventory_receipts": [
            {
                "Description": "Jam delivery (on hold)",
                "Hold": True,
                "Details": [{"InventoryID": "APJAM08", "WarehouseID": "WHOLESALE", "Qty": 48, "UnitCost": 2.1}],
            }
        ],
        "sales_orders": _orders(),
        "shipments": _shipments(),
        "sales_invoices": _invoices(),
        "payments": [
            {"Type": "Payment", "ReferenceNbr": nbr, "CustomerID": c, "PaymentAmount": amount, "CashAccount": "10250ST"}
            for nbr, c, amount in (
                ("000001", "GOODFOOD", 100.0),
                ("000075", "FRUITICO", 1235.27),
                ("000076", "FRUITICO", 8.32),
                ("000078", "FRUITICO", 22.91),
                ("000079", "FRUITICO", 1084.4),
            )
        ],
    }


def _attributes() -> list[dict[str, Any]]:
    def combo(aid: str, description: str, values: list[tuple[str, str]]) -> dict[str, Any]:
        return {
            "AttributeID": aid,
            "Description": description,
            "ControlType": "Combo",
            "Values": [{"ValueID": v, "Description": d, "SortOrder": i} for i, (v, d) in enumerate(values)],
        }

    return [
        combo("Operation System", "Operating system", [("Windows", "Windows"), ("Linux", "Linux")]),
        combo("SOFTVER", "Software version", [("Server 2012 R2", "Server 2012 R2"), ("Server 2019", "Server 2019")]),
        combo("COLOR", "Color", [("BLACK", "Black"), ("WHITE", "White"), ("RED", "Red")]),
        combo("SIZE", "Size", [("S", "Small"), ("M", "Medium"), ("L", "Large")]),
        {"AttributeID": "MATERIAL", "Description": "Material", "ControlType": "Text"},
    ]


def _item_classes() -> list[dict[str, Any]]:
    def cls(cid: str, description: str, attrs: tuple[str, ...] = (), stock: bool = True) -> dict[str, Any]:
        return {
            "ClassID": cid,
            "Description": description,
            "StockItem": stock,
            "ItemType": "Finished Good" if stock else "Non-Stock Item",
            "TaxCategoryID": "TAXABLE",
            **({"DefaultWarehouseID": "WHOLESALE"} if stock else {}),
            "Attributes": [{"AttributeID": a, "SortOrder": i} for i, a in enumerate(attrs)],
        }

    return [
        cls("STOCKITEM", "Stock items", ("Operation System", "SOFTVER")),
        cls("COMPUTERS", "Computers", ("Operation System",)),
        cls("JAMS", "Jams"),
        cls("JUICES", "Juices"),
        cls("FRUITS", "Fruit"),
        cls("APPAREL", "Apparel", ("COLOR", "SIZE", "MATERIAL")),
        cls("NONSTOCK", "Non-stock items", stock=False),
        cls("SERVICES", "Services", stock=False),
    ]


def _customers() -> list[dict[str, Any]]:
    def customer(cid: str, name: str, email: str, **more: Any) -> dict[str, Any]:
        return {
            "CustomerID": cid,
            "CustomerName": name,
            "CustomerClass": more.pop("CustomerClass", "DEFAULT"),
            "MainContact": {
                "Email": email,
                "Phone1": "+1 (212) 555-0100",
                "Address": {"AddressLine1": "1 Main St", "City": "New York", "State": "NY", "PostalCode": "10001"},
            },
            **more,
        }

    return [
        customer("GOODFOOD", "GoodFood One Restaurant", "goodfood@example.com", PriceClassID="WHOLESALE"),
        customer("FRUITICO", "Fruitico", "fruitico@example.com", PriceClassID="RETAIL"),
        customer(
            "ABAKERY",
            "Alpha Bakery",
            "abakery@example.com",
            ShippingContact={"Email": "ship@abakery.example.com", "Address": {"City": "Brooklyn", "State": "NY"}},
        ),
        customer("C000000003", "Jevy Computers", "info@jevy-comp.con", CustomerClass="LOCAL"),
        customer("COFFEESHOP", "Coffee Shop", "coffee@example.com"),
        customer("HMBAKERY", "Home Bakery", "hmbakery@example.com"),
        customer("WIDGETCC", "Widget Credit Cards", "widget@example.com"),
    ]


def _stock_items() -> list[dict[str, Any]]:
    items = [
        {
            "InventoryID": iid,
            "Description": description,
            "ItemClass": cls,
            "DefaultPrice": price,
            "MSRP": round(price * 1.2, 2),
            "BaseUOM": "EA",
            "SalesUOM": "EA",
            "DefaultWarehouseID": next(iter(stock)),
            "DimensionWeight": 1.0,
            "WeightUOM": "LB",
            "ExportToExternal": True,
            "Visibility": "Visible",
            "WarehouseDetails": [{"WarehouseID": w, "QtyOnHand": q} for w, q in stock.items()],
            "Categories": [{"CategoryID": c} for c in cats],
        }
        for iid, description, cls, price, stock, cats in STOCK_ITEMS
    ]
    items[13]["Attributes"] = [{"AttributeID": "Operation System", "Value": "Windows"}]
    for color, size in SHIRTS:
        items.append(
            {
                "InventoryID": f"AMTSHIRT-{color}-{size}",
                "Description": f"T-shirt, {color.lower()}, {size}",
                "ItemClass": "APPAREL",
                "TemplateItemID": "AMTSHIRT",
                "DefaultPrice": 20,
                "MSRP": 25,
                "ExportToExternal": True,
                "Visibility": "Visible",
                "WarehouseDetails": [
                    {"WarehouseID": "WHOLESALE", "QtyOnHand": 30},
                    {"WarehouseID": "RETAIL", "QtyOnHand": 5},
                ],
                "Attributes": [
                    {"AttributeID": "COLOR", "Value": color},
                    {"AttributeID": "SIZE", "Value": size},
                    {"AttributeID": "MATERIAL", "Value": "Cotton"},
                ],
                "Categories": [{"CategoryID": 5}],
            }
        )
    return items


def _prices() -> list[dict[str, Any]]:
    today = datetime.now(UTC).date()
    return [
        {"PriceType": "Base", "InventoryID": "APJAM08", "UOM": "EA", "Price": 5.5},
        {"PriceType": "Base", "InventoryID": "APJAM08", "UOM": "EA", "BreakQty": 10, "Price": 5.0},
        {"PriceType": "Customer Price Class", "PriceCode": "WHOLESALE", "InventoryID": "APJAM08", "Price": 4.9},
        {"PriceType": "Customer", "PriceCode": "GOODFOOD", "InventoryID": "APJAM96", "Price": 35.0},
        {"PriceType": "Base", "InventoryID": "APJAM32", "UOM": "EA", "Price": 15.0},
        {
            "PriceType": "Base",
            "InventoryID": "APJAM32",
            "UOM": "EA",
            "Price": 12.0,
            "Promotion": True,
            "EffectiveDate": (today - timedelta(days=1)).isoformat(),
            "ExpirationDate": (today + timedelta(days=30)).isoformat(),
        },
        {"PriceType": "Base", "InventoryID": "AMTSHIRT-BLACK-M", "Price": 20.0},
    ]


def _line(item: str, qty: float, warehouse: str = "WHOLESALE", **more: Any) -> dict[str, Any]:
    return {"InventoryID": item, "OrderQty": qty, "WarehouseID": warehouse, **more}


def _orders() -> list[dict[str, Any]]:
    def so(nbr: str, customer: str, lines: list[dict[str, Any]], **more: Any) -> dict[str, Any]:
        return {
            "OrderType": more.pop("OrderType", "SO"),
            "OrderNbr": nbr,
            "CustomerID": customer,
            "Details": lines,
            **more,
        }

    return [
        so("000001", "GOODFOOD", [_line("APJAM08", 2)], id="a6295b33-c7f6-e811-b817-00155d408001", Status="Canceled"),
        so("000003", "GOODFOOD", [_line("CONGRILL", 1), _line("AALEGO500", 2)], CustomerOrder="SO248-563-06"),
        so("000004", "C000000003", [_line("APJAM08", 5, "MAIN")]),
        so("000006", "C000000003", [_line("APJAM32", 3, "MAIN")]),
        *(so(f"0000{n}", "C000000003", [_line("APPLES", 10)]) for n in (10, 11, 12, 13)),
        so("000036", "GOODFOOD", [_line("APJAM08", 3)]),
        so("000045", "GOODFOOD", [_line("APJAM08", 4)], id="42bb9a17-a402-e911-b818-00155d408001"),
        so("000066", "GOODFOOD", [_line("APJAM08", 2, UOM="PIECE")]),
        so("000067", "GOODFOOD", [_line("APJAM32", 6, UOM="PIECE")]),
        # the orders of the open shipments 000068-000072 (the scenarios' own orders stay open to ship)
        so("000068", "FRUITICO", [_line("SWB-32OZ-GBT", 1)]),
        so("000069", "FRUITICO", [_line("APJAM32", 5)]),
        so("000072", "FRUITICO", [_line("APJAM32", 1)]),
        so(
            "000125",
            "FRUITICO",
            [_line("SWB-32OZ-GBT", -1, Operation="Receipt"), _line("PEARJAM96", 1, "RETAIL", Operation="Issue")],
            OrderType="RM",
        ),
        so("000070", "FRUITICO", [_line("SWB-32OZ-GBT", 1)], id="3d43678c-c6a8-ed11-9e84-9828a61840c3"),
        so("000071", "FRUITICO", [_line("ORG-16OZ-GBT", 1, "RETAIL")]),
        so("000073", "FRUITICO", [_line("APJAM08", 1), _line("APJAM32", 10)]),
        so("000074", "FRUITICO", [_line("APJAM32", 1)]),
        so(
            "000087",
            "GOODFOOD",
            [_line("APJAM08", 1)],
            custom={"Document": {"AttributePRODUCT": {"type": "CustomStringField", "value": "Apple jam 8 oz."}}},
        ),
        so("000090", "GOODFOOD", [_line("APJAM08", 1)], id="e59cc6da-cc6c-ea11-b82d-00155d408001"),
        so(
            "000127",
            "FRUITICO",
            [
                _line(
                    "SWB-32OZ-GBT",
                    -1,
                    Operation="Receipt",
                    InvoiceNbr="000126",
                    id="4b93e6b2-8ba9-ed11-9e84-9828a61840c3",
                ),
                _line("PEARJAM96", 1, "RETAIL", Operation="Issue"),
            ],
            OrderType="RM",
            id="4593e6b2-8ba9-ed11-9e84-9828a61840c3",
        ),
        so(
            "000131",
            "FRUITICO",
            [
                _line(
                    "ORG-16OZ-GBT",
                    -1,
                    "RETAIL",
                    Operation="Receipt",
                    InvoiceNbr="000130",
                    id="c1bc7c53-e8ab-ed11-9e85-9828a61840c3",
                ),
                _line("ORG-32OZ-GBT", 1, "RETAIL", Operation="Issue"),
                _line("ORG-32OZ-GBT", 1, "RETAIL", Operation="Issue"),
            ],
            OrderType="RM",
            id="bbbc7c53-e8ab-ed11-9e85-9828a61840c3",
        ),
        so(
            "000139",
            "FRUITICO",
            [_line("APJAM08", 1, id="53d96bb9-41ae-ed11-9e86-9828a61840c3"), _line("APJAM32", -1)],
            OrderType="RM",
            id="4cd96bb9-41ae-ed11-9e86-9828a61840c3",
        ),
    ]


def _shipments() -> list[dict[str, Any]]:
    def ship(nbr: str, customer: str, order: str, line: int, qty: float, **more: Any) -> dict[str, Any]:
        order_type = more.pop("OrderType", "SO")
        return {
            "ShipmentNbr": nbr,
            "CustomerID": customer,
            "ShipmentDate": "2023-02-10T00:00:00+00:00",
            "Details": [{"OrderType": order_type, "OrderNbr": order, "OrderLineNbr": line, "ShippedQty": qty}],
            **more,
        }

    return [
        ship("000001", "GOODFOOD", "000036", 1, 1, Packages=[{"BoxID": "LARGE", "TrackingNbr": "1Z9999999999999999"}]),
        ship("000058", "GOODFOOD", "000036", 1, 1),
        ship("000068", "FRUITICO", "000068", 1, 1),
        ship("000069", "FRUITICO", "000125", 1, 1, OrderType="RM", Type="Receipt", Operation="Receipt"),
        ship("000070", "FRUITICO", "000125", 2, 1, OrderType="RM"),
        ship("000071", "FRUITICO", "000069", 1, 5),
        ship("000072", "FRUITICO", "000072", 1, 1),
    ]


def _invoices() -> list[dict[str, Any]]:
    def doc(nbr: str, customer: str = "FRUITICO", item: str = "APJAM08", **more: Any) -> dict[str, Any]:
        return {
            "Type": more.pop("Type", "Invoice"),
            "ReferenceNbr": nbr,
            "CustomerID": customer,
            "Hold": more.pop("Hold", False),
            "Details": [{"InventoryID": item, "Qty": more.pop("Qty", 1)}],
            **more,
        }

    return [
        doc("INV000046", "GOODFOOD", Hold=True),
        doc(
            "000002",
            "GOODFOOD",
            Status="Open",  # released: the collection's payments apply to it
            custom={
                "Document": {
                    "CuryBalanceWOTotal": {"type": "CustomDecimalField", "value": 0},
                    "DiscDate": {"type": "CustomDateTimeField", "value": "2024-03-01T00:00:00+00:00"},
                }
            },
        ),
        doc("000005", "GOODFOOD"),
        doc("000008", "GOODFOOD"),
        doc("000012", "GOODFOOD", "APJAM32", Qty=60),
        doc("000030", "GOODFOOD", "ORANGES", Qty=100),
        doc("000062", "GOODFOOD", "INSTALL"),
        doc("000113", "FRUITICO", "CHERJAM32"),
        doc("000114", "FRUITICO", "CHERJAM32", Qty=10),
        doc("000116", Type="Credit Memo"),
        doc("000118", "FRUITICO", "APJAM96", CurrencyID="EUR"),
        doc("000126", "FRUITICO", "SWB-32OZ-GBT"),
        doc("000128", "FRUITICO", "SWB-32OZ-GBT", Type="Credit Memo"),
        doc("000129", "FRUITICO", "PEARJAM96"),
        doc("000130", "FRUITICO", "ORG-16OZ-GBT"),
        doc("000132"),
        doc("000133"),
        doc("000134", "FRUITICO", "APJAM32"),
        doc("000137", "FRUITICO", "APJAM32"),
        doc("000140", Type="Credit Memo"),
    ]
