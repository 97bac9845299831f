"""The Acumatica sim's catalog rules: items, attributes, categories, matrix items, kits, stock,
receipts, prices and the inquiries a connector reads them with."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from sandbox.sims.acumatica import create_app

B = "/entity/Default/24.200.001/"


@pytest.fixture
def c() -> TestClient:
    client = TestClient(create_app())
    assert client.post("/entity/auth/login", json={"name": "admin", "password": "123"}).status_code == 204
    answer = client.post("/_sim/seed", json={"demo": True})
    assert answer.status_code == 200, answer.text
    return client


def put(c: TestClient, entity: str, body: dict[str, Any], expand: str = "", status: int = 200) -> dict[str, Any]:
    r = c.put(B + entity, params={"$expand": expand} if expand else {}, json=body)
    assert r.status_code == status, r.text
    return dict(r.json())


def v(x: Any) -> dict[str, Any]:
    return {"value": x}


def storage(c: TestClient, warehouse: str | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    body = {"WarehouseID": v(warehouse)} if warehouse else {}
    rows = put(c, "StorageDetailsInquiry", body, "StorageDetails")["StorageDetails"]
    return {(r["InventoryID"]["value"], r["WarehouseID"]["value"]): r for r in rows}


def available(c: TestClient, since: str | None = None, item: str | None = None) -> dict[str, dict[str, Any]]:
    body: dict[str, Any] = {}
    if since:
        body["LastModifiedDateTime"] = v(since)
    if item:
        body["InventoryID"] = v(item)
    rows = put(c, "InventoryQuantityAvailable", body, "Results")["Results"]
    return {r["InventoryID"]["value"]: r for r in rows}


def receive(c: TestClient, item: str, warehouse: str, qty: float) -> str:
    receipt = put(
        c,
        "InventoryReceipt",
        {"Hold": v(False), "Details": [{"InventoryID": v(item), "WarehouseID": v(warehouse), "Qty": v(qty)}]},
        "Details",
    )
    nbr = receipt["ReferenceNbr"]["value"]
    assert receipt["Status"]["value"] == "Balanced" and receipt["TotalQty"]["value"] == qty
    r = c.post(B + "InventoryReceipt/ReleaseInventoryReceipt", json={"entity": {"ReferenceNbr": v(nbr)}})
    assert r.status_code == 202, r.text
    assert c.get(r.headers["Location"]).status_code == 204
    return str(nbr)


def stamp(c: TestClient) -> str:
    """A server time: the change time of a record written now."""
    return str(
        put(c, "CustomerPriceClass", {"PriceClassID": v("TICK"), "Description": v("tick")})["LastModifiedDateTime"][
            "value"
        ]
    )


# -- stock ----------------------------------------------------------------------------------------


def test_receipt_release_adds_stock_and_moves_the_line_time(c: TestClient) -> None:
    before = storage(c, "RETAIL")[("APJAM08", "RETAIL")]
    other = storage(c)[("APJAM08", "WHOLESALE")]
    nbr = receive(c, "APJAM08", "RETAIL", 7)
    after = storage(c, "RETAIL")[("APJAM08", "RETAIL")]
    assert after["QtyOnHand"]["value"] == before["QtyOnHand"]["value"] + 7
    assert after["QtyAvailable"]["value"] == before["QtyAvailable"]["value"] + 7
    assert after["LastModifiedDateofWarehouseQty"]["value"] > before["LastModifiedDateofWarehouseQty"]["value"]
    untouched = storage(c)[("APJAM08", "WHOLESALE")]
    assert untouched["LastModifiedDateofWarehouseQty"]["value"] == other["LastModifiedDateofWarehouseQty"]["value"]
    item = c.get(B + "StockItem/APJAM08", params={"$expand": "WarehouseDetails"}).json()
    retail = next(w for w in item["WarehouseDetails"] if w["WarehouseID"]["value"] == "RETAIL")
    assert retail["QtyOnHand"]["value"] == after["QtyOnHand"]["value"]
    released = c.get(B + f"InventoryReceipt/{nbr}").json()
    assert released["Status"]["value"] == "Released"
    again = c.post(B + "InventoryReceipt/ReleaseInventoryReceipt", json={"entity": {"ReferenceNbr": v(nbr)}})
    assert again.status_code == 422


def test_receipt_into_a_new_warehouse_adds_the_line(c: TestClient) -> None:
    receive(c, "BANANAS", "RETAIL", 12)
    assert storage(c, "RETAIL")[("BANANAS", "RETAIL")]["QtyOnHand"]["value"] == 12


def test_receipt_on_hold_cannot_be_released_and_bad_lines_are_refused(c: TestClient) -> None:
    held = put(c, "InventoryReceipt", {"Hold": v(True), "Details": [{"InventoryID": v("APJAM08"), "Qty": v(1)}]})
    assert held["Status"]["value"] == "On Hold"
    r = c.post(B + "InventoryReceipt/ReleaseInventoryReceipt", json={"entity": {"ReferenceNbr": held["ReferenceNbr"]}})
    assert r.status_code == 422
    bad = put(c, "InventoryReceipt", {"Details": [{"InventoryID": v("APJAM08"), "Qty": v(-2)}]}, "Details", status=422)
    assert "error" in bad["Details"][0]["Qty"]
    nostock = put(
        c, "InventoryReceipt", {"Details": [{"InventoryID": v("ADVERT"), "Qty": v(1)}]}, "Details", status=422
    )
    assert "error" in nostock["Details"][0]["InventoryID"]


def test_quantity_available_since_returns_only_changed_items(c: TestClient) -> None:
    assert len(available(c)) > 5
    since = stamp(c)
    assert available(c, since) == {}
    receive(c, "CHERJAM32", "WHOLESALE", 3)
    changed = available(c, since)
    assert list(changed) == ["CHERJAM32"]
    assert changed["CHERJAM32"]["QtyAvailable"]["value"] == 203
    later = stamp(c)
    assert available(c, later) == {}


def test_quantity_available_is_summed_over_warehouses_and_follows_orders(c: TestClient) -> None:
    assert available(c, item="APJAM96")["APJAM96"]["QtyAvailable"]["value"] == 120
    before = available(c, item="PLUMJAM96")["PLUMJAM96"]
    since = stamp(c)
    put(c, "SalesOrder", {"CustomerID": v("GOODFOOD"), "Details": [{"InventoryID": v("PLUMJAM96"), "OrderQty": v(4)}]})
    after = available(c, since)
    assert after["PLUMJAM96"]["QtyAvailable"]["value"] == before["QtyAvailable"]["value"] - 4
    row = storage(c, "WHOLESALE")[("PLUMJAM96", "WHOLESALE")]
    assert row["QtyOnHand"]["value"] == 70 and row["QtyAvailable"]["value"] == 66


def test_open_shipments_lower_hard_available(c: TestClient) -> None:
    row = storage(c, "WHOLESALE")[("SWB-32OZ-GBT", "WHOLESALE")]
    # the open shipment 000068 ships one of them (order 000068); order 000070 books one more
    assert row["QtyOnHand"]["value"] == 250
    assert row["QtyHardAvailable"]["value"] == 249
    assert row["QtyAvailableforIssue"]["value"] == 249


def test_inventory_summary_per_warehouse(c: TestClient) -> None:
    rows = put(c, "InventorySummaryInquiry", {"InventoryID": v("SIMCARD")}, "Results")["Results"]
    assert {r["WarehouseID"]["value"]: r["QtyOnHand"]["value"] for r in rows} == {"YOGI": 150, "WHOLESALE": 50}
    one = put(c, "InventorySummaryInquiry", {"InventoryID": v("SIMCARD"), "WarehouseID": v("YOGI")}, "Results")
    assert len(one["Results"]) == 1 and one["InventoryID"]["value"] == "SIMCARD"
    missing = put(c, "InventorySummaryInquiry", {"InventoryID": v("NOPE")}, "Results", status=422)
    assert "error" in missing["InventoryID"]


def test_inquiry_results_show_only_when_expanded(c: TestClient) -> None:
    answer = put(c, "StorageDetailsInquiry", {"WarehouseID": v("YOGI")})
    assert "StorageDetails" not in answer and answer["WarehouseID"]["value"] == "YOGI"
    assert c.get(B + "StorageDetailsInquiry").status_code == 405


# -- prices ---------------------------------------------------------------------------------------


def prices(c: TestClient, **filters: Any) -> list[dict[str, Any]]:
    body = {k: v(x) for k, x in filters.items()}
    return list(put(c, "SalesPricesInquiry", body, "SalesPriceDetails")["SalesPriceDetails"])


def test_worksheet_release_shows_in_the_prices_inquiry(c: TestClient) -> None:
    sheet = put(
        c,
        "SalesPriceWorksheet",
        {
            "EffectiveDate": v("2030-01-01"),
            "SalesPrices": [
                {"PriceType": v("Base"), "InventoryID": v("APJAM96"), "PendingPrice": v(44)},
                {
                    "PriceType": v("Customer Price Class"),
                    "PriceCode": v("RETAIL"),
                    "InventoryID": v("APJAM96"),
                    "BreakQty": v(5),
                    "PendingPrice": v(39.5),
                },
            ],
        },
        "SalesPrices",
    )
    assert sheet["Status"]["value"] == "Open"
    assert [ln["LineID"]["value"] for ln in sheet["SalesPrices"]] == [1, 2]
    assert prices(c, InventoryID="APJAM96", PriceType="Base") == []
    r = c.post(
        B + "SalesPriceWorksheet/ReleaseSalesPriceWorksheet", json={"entity": {"ReferenceNbr": sheet["ReferenceNbr"]}}
    )
    assert r.status_code == 202, r.text
    assert prices(c, InventoryID="APJAM96", PriceType="Base") == []  # not in effect today
    base = prices(c, InventoryID="APJAM96", PriceType="Base", EffectiveAsOf="2030-01-02")
    assert [(p["Price"]["value"], p["EffectiveDate"]["value"][:10]) for p in base] == [(44, "2030-01-01")]
    tier = prices(c, PriceType="Customer Price Class", PriceCode="RETAIL", EffectiveAsOf="2030-06-01")
    assert [(p["InventoryID"]["value"], p["BreakQty"]["value"], p["Price"]["value"]) for p in tier] == [
        ("APJAM96", 5, 39.5)
    ]
    assert prices(c, InventoryID="APJAM96", PriceType="Base", EffectiveAsOf="2029-12-31") == []
    every = put(c, "SalesPricesInquiry", {"InventoryID": v("APJAM96"), "EffectiveAsOf": v(None)}, "SalesPriceDetails")
    assert len(every["SalesPriceDetails"]) == 3 and "EffectiveAsOf" not in every
    assert c.get(B + f"SalesPriceWorksheet/{sheet['ReferenceNbr']['value']}").json()["Status"]["value"] == "Released"


def test_a_later_base_price_closes_the_earlier_one(c: TestClient) -> None:
    sheet = put(
        c,
        "SalesPriceWorksheet",
        {"EffectiveDate": v("2031-05-01"), "SalesPrices": [{"InventoryID": v("APJAM08"), "PendingPrice": v(6.1)}]},
    )
    c.post(
        B + "SalesPriceWorksheet/ReleaseSalesPriceWorksheet", json={"entity": {"ReferenceNbr": sheet["ReferenceNbr"]}}
    )
    rows = [p for p in prices(c, InventoryID="APJAM08", PriceType="Base") if p["BreakQty"]["value"] == 0]
    old = next(p for p in rows if p["Price"]["value"] == 5.5)
    assert old["ExpirationDate"]["value"][:10] == "2031-04-30"
    assert [
        p["Price"]["value"]
        for p in prices(c, InventoryID="APJAM08", PriceType="Base", EffectiveAsOf="2031-06-01")
        if p["BreakQty"]["value"] == 0
    ] == [6.1]


def test_seeded_prices_include_tiers_classes_customers_and_promotions(c: TestClient) -> None:
    rows = prices(c)
    kinds = {
        (p["PriceType"]["value"], p["InventoryID"]["value"], p["BreakQty"]["value"], p["Promotion"]["value"])
        for p in rows
    }
    assert ("Base", "APJAM08", 10, False) in kinds
    assert ("Customer Price Class", "APJAM08", 0, False) in kinds
    assert ("Customer", "APJAM96", 0, False) in kinds
    promo = next(p for p in rows if p["Promotion"]["value"])
    assert promo["InventoryID"]["value"] == "APJAM32" and promo["ExpirationDate"]["value"]
    assert all(isinstance(p["RecordID"]["value"], int) for p in rows)


def test_worksheet_lines_are_checked(c: TestClient) -> None:
    bad = put(
        c,
        "SalesPriceWorksheet",
        {
            "SalesPrices": [
                {
                    "PriceType": v("Customer Price Class"),
                    "PriceCode": v("NOPE"),
                    "InventoryID": v("APJAM08"),
                    "PendingPrice": v(1),
                },
                {"PriceType": v("Whatever"), "InventoryID": v("APJAM08"), "PendingPrice": v(1)},
                {"PriceType": v("Base"), "InventoryID": v("NOPE"), "PendingPrice": v(1)},
            ]
        },
        "SalesPrices",
        status=422,
    )
    lines = bad["SalesPrices"]
    assert "error" in lines[0]["PriceCode"] and "error" in lines[1]["PriceType"] and "error" in lines[2]["InventoryID"]


# -- items, attributes, categories, matrix, kits -------------------------------------------------------


def test_attribute_value_outside_the_list_is_422(c: TestClient) -> None:
    bad = put(
        c,
        "StockItem",
        {
            "InventoryID": v("SHIRT9"),
            "ItemClass": v("APPAREL"),
            "Attributes": [{"AttributeID": v("COLOR"), "Value": v("PINK")}],
        },
        "Attributes",
        status=422,
    )
    line = next(a for a in bad["Attributes"] if a["AttributeID"]["value"] == "COLOR")
    assert line["Value"]["value"] == "PINK" and "error" in line["Value"]
    assert bad["error"]
    assert c.get(B + "StockItem/SHIRT9").status_code == 404


def test_attribute_lines_are_filled_from_the_definitions(c: TestClient) -> None:
    item = put(
        c,
        "StockItem",
        {
            "InventoryID": v("SHIRT1"),
            "ItemClass": v("APPAREL"),
            "Attributes": [
                {"AttributeID": v("color"), "Value": v("red")},
                {"AttributeID": v("MATERIAL"), "Value": v("Wool")},
            ],
        },
        "Attributes",
    )
    rows = {a["AttributeID"]["value"]: a for a in item["Attributes"]}
    assert set(rows) == {"COLOR", "SIZE", "MATERIAL"}  # the class's attributes, in the definitions' case
    assert rows["COLOR"]["Value"]["value"] == "RED" and rows["COLOR"]["ValueDescription"]["value"] == "Red"
    assert rows["COLOR"]["AttributeDescription"]["value"] == "Color"
    assert rows["MATERIAL"]["ValueDescription"]["value"] == "Wool"
    again = put(
        c,
        "StockItem",
        {"InventoryID": v("SHIRT1"), "Attributes": [{"AttributeID": v("COLOR"), "Value": v("WHITE")}]},
        "Attributes",
    )
    assert len(again["Attributes"]) == 3
    assert next(a for a in again["Attributes"] if a["AttributeID"]["value"] == "COLOR")["Value"]["value"] == "WHITE"
    unknown = put(
        c,
        "StockItem",
        {"InventoryID": v("SHIRT1"), "Attributes": [{"AttributeID": v("NOPE"), "Value": v("x")}]},
        "Attributes",
        status=422,
    )
    assert any("error" in a["AttributeID"] for a in unknown["Attributes"])


def test_official_stock_item_with_attributes(c: TestClient) -> None:
    body = {
        "InventoryID": v("BASESERV1"),
        "Description": v("Baseline level of performance"),
        "ItemClass": v("STOCKITEM"),
        "Attributes": [
            {"AttributeID": v("Operation System"), "Value": v("Windows")},
            {"AttributeID": v("SOFTVER"), "Value": v("Server 2012 R2")},
        ],
    }
    item = put(c, "StockItem", body, "Attributes")
    assert {a["AttributeID"]["value"]: a["ValueDescription"]["value"] for a in item["Attributes"]} == {
        "Operation System": "Windows",
        "SOFTVER": "Server 2012 R2",
    }


def test_category_path_parents_and_members(c: TestClient) -> None:
    jams = c.get(B + "ItemSalesCategory/2", params={"$expand": "Members"}).json()
    assert jams["Path"]["value"] == "Groceries/Jams" and jams["ParentCategoryID"]["value"] == 1
    assert "APJAM08" in [m["InventoryID"]["value"] for m in jams["Members"]]
    child = put(c, "ItemSalesCategory", {"Description": v("Sugar-free"), "ParentCategoryID": v(2)})
    cid = child["CategoryID"]["value"]
    assert isinstance(cid, int) and cid > 5 and child["Path"]["value"] == "Groceries/Jams/Sugar-free"
    put(c, "ItemSalesCategory", {"CategoryID": v(1), "Description": v("Food")})
    assert c.get(B + f"ItemSalesCategory/{cid}").json()["Path"]["value"] == "Food/Jams/Sugar-free"
    put(c, "ItemSalesCategory", {"CategoryID": v(1), "ParentCategoryID": v(cid)}, status=422)
    put(c, "ItemSalesCategory", {"Description": v("Lost"), "ParentCategoryID": v(999)}, status=422)
    put(c, "StockItem", {"InventoryID": v("PLUMJAM96"), "Categories": [{"CategoryID": v(cid)}]})
    members = c.get(B + f"ItemSalesCategory/{cid}", params={"$expand": "Members"}).json()["Members"]
    assert [m["InventoryID"]["value"] for m in members] == ["PLUMJAM96"]
    put(c, "StockItem", {"InventoryID": v("PLUMJAM96"), "Categories": [{"CategoryID": v(404)}]}, status=422)
    assert c.delete(B + "ItemSalesCategory/2").status_code == 422  # it has a child
    listed = c.get(B + "ItemSalesCategory", params={"$filter": "ParentCategoryID eq 1"}).json()
    assert sorted(r["CategoryID"]["value"] for r in listed) == [2, 3]


def test_category_members_added_from_the_category(c: TestClient) -> None:
    put(c, "ItemSalesCategory", {"CategoryID": v(4), "Members": [{"InventoryID": v("ADVERT")}]}, "Members")
    item = c.get(B + "NonStockItem/ADVERT", params={"$expand": "Categories"}).json()
    assert [x["CategoryID"]["value"] for x in item["Categories"]] == [4]


def test_template_matrix_lists_its_children(c: TestClient) -> None:
    tpl = c.get(B + "TemplateItems/AMTSHIRT", params={"$expand": "Matrix,Attributes,Categories"}).json()
    assert [m["InventoryID"]["value"] for m in tpl["Matrix"]] == [
        "AMTSHIRT-BLACK-L",
        "AMTSHIRT-BLACK-M",
        "AMTSHIRT-WHITE-M",
    ]
    assert set(tpl["Matrix"][0]) == {
        "id",
        "rowNumber",
        "note",
        "InventoryID",
        "Description",
        "DefaultPrice",
        "MSRP",
        "ItemStatus",
        "ExportToExternal",
        "custom",
    }
    assert tpl["LastModified"] == tpl["LastModifiedDateTime"]
    put(
        c,
        "StockItem",
        {
            "InventoryID": v("AMTSHIRT-RED-S"),
            "TemplateItemID": v("AMTSHIRT"),
            "ItemClass": v("APPAREL"),
            "DefaultPrice": v(21),
            "Attributes": [{"AttributeID": v("COLOR"), "Value": v("RED")}, {"AttributeID": v("SIZE"), "Value": v("S")}],
        },
    )
    put(c, "StockItem", {"InventoryID": v("AMTSHIRT-BLACK-L"), "TemplateItemID": v(None)})
    matrix = c.get(B + "TemplateItems/AMTSHIRT", params={"$expand": "Matrix"}).json()["Matrix"]
    assert [m["InventoryID"]["value"] for m in matrix] == ["AMTSHIRT-BLACK-M", "AMTSHIRT-RED-S", "AMTSHIRT-WHITE-M"]
    children = c.get(
        B + "StockItem", params={"$filter": "TemplateItemID eq 'AMTSHIRT'", "$expand": "Attributes"}
    ).json()
    assert len(children) == 3 and all(len(ch["Attributes"]) == 3 for ch in children)
    put(c, "StockItem", {"InventoryID": v("ORPHAN1"), "TemplateItemID": v("NOPE")}, status=422)
    assert c.delete(B + "TemplateItems/AMTSHIRT").status_code == 422


def test_stock_item_timestamps_are_one_column(c: TestClient) -> None:
    item = c.get(B + "StockItem/APJAM08").json()
    assert item["LastModified"] == item["LastModifiedDateTime"]
    since = stamp(c)
    put(c, "StockItem", {"InventoryID": v("APJAM08"), "Description": v("Apple jam, 8 oz")})
    changed = c.get(B + "StockItem", params={"$filter": f"LastModifiedDateTime gt datetimeoffset'{since}'"}).json()
    assert [r["InventoryID"]["value"] for r in changed] == ["APJAM08"]


def test_one_inventory_id_names_one_item(c: TestClient) -> None:
    bad = put(c, "NonStockItem", {"InventoryID": v("APJAM08"), "Description": v("clash")}, status=422)
    assert "error" in bad["InventoryID"]
    ok = put(
        c,
        "NonStockItem",
        {"InventoryID": v("GIFTWRAP"), "Description": v("Gift wrap"), "SalesCategories": [{"CategoryID": v(1)}]},
        "SalesCategories",
    )
    assert ok["BaseUnit"]["value"] == "EA" and ok["SalesUnit"]["value"] == "EA" and "BaseUOM" not in ok
    assert ok["SalesCategories"][0]["CategoryID"]["value"] == 1


def test_kit_specification(c: TestClient) -> None:
    kit = c.get(B + "KitSpecification/JAMGIFT/1", params={"$expand": "StockComponents,NonStockComponents"}).json()
    assert kit["IsNonStock"]["value"] is True
    assert [(x["StockInventoryID"]["value"], x["ComponentQty"]["value"]) for x in kit["StockComponents"]] == [
        ("APJAM08", 2),
        ("CHERJAM32", 1),
    ]
    bad = put(
        c,
        "KitSpecification",
        {"KitInventoryID": v("JAMGIFT"), "RevisionID": v("2"), "StockComponents": [{"StockInventoryID": v("ADVERT")}]},
        "StockComponents",
        status=422,
    )
    assert "error" in bad["StockComponents"][0]["StockInventoryID"]
    put(c, "KitSpecification", {"KitInventoryID": v("JAMGIFT")}, status=422)


def test_warehouses_are_records_and_the_old_seed_key_works() -> None:
    client = TestClient(create_app())
    client.post("/entity/auth/login", json={"name": "admin", "password": "123"})
    seeded = client.post(
        "/_sim/seed", json={"warehouses": ["WHOLESALE", {"WarehouseID": "EAST", "Description": "East"}]}
    ).json()
    assert seeded["warehouses"] == ["EAST", "WHOLESALE"]
    client.post("/_sim/seed", json={"stock_items": [{"InventoryID": "X1", "QtyOnHand": 4, "WarehouseID": "WEST"}]})
    rows = client.get(B + "Warehouse").json()
    assert sorted(r["WarehouseID"]["value"] for r in rows) == ["EAST", "WEST", "WHOLESALE"]
    assert client.app.state.sim.warehouses == {"EAST", "WEST", "WHOLESALE"}  # type: ignore[attr-defined]


def test_seed_keys_for_the_catalog() -> None:
    client = TestClient(create_app())
    client.post("/entity/auth/login", json={"name": "admin", "password": "123"})
    body = {
        "attributes": [{"AttributeID": "FLAVOR", "ControlType": "Combo", "Values": [{"ValueID": "SWEET"}]}],
        "item_classes": [{"ClassID": "CANDY", "Attributes": [{"AttributeID": "FLAVOR", "Required": True}]}],
        "sales_categories": [{"Description": "Sweets"}],
        "price_classes": [{"PriceClassID": "VIP"}],
        "customer_classes": [{"ClassID": "VIPS"}],
        "customers": [{"CustomerID": "C9", "CustomerName": "Nine"}],
        "template_items": [{"InventoryID": "LOLLY", "ItemClass": "CANDY"}],
        "stock_items": [
            {
                "InventoryID": "LOLLY-1",
                "ItemClass": "CANDY",
                "TemplateItemID": "LOLLY",
                "Attributes": [{"AttributeID": "FLAVOR", "Value": "SWEET"}],
            }
        ],
        "non_stock_items": [{"InventoryID": "WRAP"}],
        "kits": [{"KitInventoryID": "WRAP", "RevisionID": "A", "StockComponents": [{"StockInventoryID": "LOLLY-1"}]}],
        "stock": [{"InventoryID": "LOLLY-1", "WarehouseID": "MAIN", "QtyOnHand": 9}],
        "sales_prices": [
            {"InventoryID": "LOLLY-1", "Price": 1.25},
            {"PriceType": "Customer Price Class", "PriceCode": "VIP", "InventoryID": "LOLLY-1", "Price": 1.0},
        ],
    }
    answer = client.post("/_sim/seed", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["sales_categories"][0]["CategoryID"] == 1
    item = client.get(B + "StockItem/LOLLY-1", params={"$expand": "Attributes,WarehouseDetails"}).json()
    assert item["Attributes"][0]["Required"]["value"] is True
    assert item["WarehouseDetails"][0]["QtyOnHand"]["value"] == 9
    assert client.post("/_sim/seed", json={"stock": [{"InventoryID": "NOPE", "QtyOnHand": 1}]}).status_code == 400
    assert client.post("/_sim/seed", json={"sales_prices": [{"InventoryID": "LOLLY-1"}]}).status_code == 400


def test_an_initial_load_reads_pages_whole_skips_no_item_when_others_change_and_resumes() -> None:
    """``load_pages`` reads items whole by ``$skip`` pages (one request a page). An item changed
    while the load runs leaves its range (the next poll has it) and shifts the rows after it: no
    other item is skipped for it. Stopped after a page and resumed from its ``position``, the
    load reads each item once."""
    from datetime import UTC, datetime

    from erpsync.systems.acumatica.settings import AcumaticaSettings
    from erpsync.systems.plugin import SOURCE
    from tests.support.sims import SimSystems

    sims = SimSystems()
    sims.acumatica.erp.settings = lambda: AcumaticaSettings(page_size=5)  # type: ignore[method-assign]
    assert sims.ahttp.post("/entity/auth/login", json={"name": "admin", "password": "123"}).status_code == 204
    items = [f"ITEM{n:02}" for n in range(23)]
    for sku in items:
        body = {"InventoryID": {"value": sku}, "Description": {"value": sku.title()}, "DefaultPrice": {"value": 2}}
        assert sims.ahttp.put(B + "StockItem", json=body).status_code == 200
    port = sims.acumatica.port("product", SOURCE)
    since = datetime(2000, 1, 1, tzinfo=UTC)
    sims.ahttp.delete("/_sim/requests")

    seen: list[str] = []
    changed = {"ITEM01", "ITEM02", "ITEM12"}  # two already read, one not yet: each shifts what follows
    pages = port.load_pages(since)
    first = next(pages)
    seen += [n.id for n in first.notices]
    assert all(n.snapshot is not None for n in first.notices)
    for sku in changed:
        body = {"InventoryID": {"value": sku}, "Description": {"value": "Changed"}}
        assert sims.ahttp.put(B + "StockItem", json=body).status_code == 200
    for page in pages:
        seen += [n.id for n in page.notices]
    assert sorted(set(seen)) == sorted(set(items) - {"ITEM12"}) and len(seen) == len(set(seen))
    reads = [r for r in sims.ahttp.get("/_sim/requests").json()["requests"] if r["method"] == "GET"]
    assert not [r for r in reads if "/StockItem/" in r["path"]], "no item read alone"

    # stopped after the second page, resumed from where it stood
    pages = port.load_pages(since)
    got = [n.id for n in next(pages).notices]
    second = next(pages)
    got += [n.id for n in second.notices]
    assert second.position is not None and second.checkpoint is None
    resumed = port.load_pages(since, second.position)
    rest = [p for p in resumed]
    got += [n.id for p in rest for n in p.notices]
    assert sorted(got) == sorted(items) and len(got) == len(set(got))
    assert rest[-1].checkpoint is not None and rest[-1].position is None
