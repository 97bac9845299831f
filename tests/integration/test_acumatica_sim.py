"""The Acumatica sim speaks the contract-based REST API: auth, queries, writes, totals, actions."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from sandbox.sims.acumatica import create_app

B = "/entity/Default/24.200.001/"


def login(c: TestClient) -> None:
    r = c.post("/entity/auth/login", json={"name": "admin", "password": "123", "company": "Company", "branch": "HQ"})
    assert r.status_code == 204


@pytest.fixture
def c() -> TestClient:
    client = TestClient(create_app())
    login(client)
    seed = {
        "customers": [
            {"CustomerID": "C1", "CustomerName": "Ann", "MainContact": {"Email": "ann@example.com"}},
            {
                "CustomerID": {"value": "C2"},
                "CustomerName": {"value": "O'Brien"},
                "MainContact": {"Email": {"value": "ob@example.com"}},
            },
        ],
        "stock_items": [
            {"InventoryID": "SKU1", "Description": "Shirt", "DefaultPrice": 10, "QtyOnHand": 50},
            {"InventoryID": "SKU2", "Description": "Hat", "DefaultPrice": 5.5},
        ],
    }
    answer = client.post("/_sim/seed", json=seed)
    assert answer.status_code == 200
    assert [r["CustomerID"] for r in answer.json()["customers"]] == ["C1", "C2"]
    return client


def order(c: TestClient, **extra: Any) -> dict[str, Any]:
    body = {
        "CustomerID": {"value": "C1"},
        "Details": [
            {"InventoryID": {"value": "SKU1"}, "OrderQty": {"value": 3}, "UnitPrice": {"value": 10}},
            {"InventoryID": {"value": "SKU2"}, "OrderQty": {"value": 2}},
        ],
    } | extra
    r = c.put(B + "SalesOrder?$expand=Details,Totals", json=body)
    assert r.status_code == 200, r.text
    return r.json()


# -- auth ----------------------------------------------------------------------------------------


def test_endpoints_listed() -> None:
    body = TestClient(create_app()).get("/entity").json()
    assert {"name": "Default", "version": "24.200.001", "href": "/entity/Default/24.200.001/"} in body["endpoints"]


def test_unauthenticated_is_401_and_bad_credentials_are_refused() -> None:
    c = TestClient(create_app())
    assert c.get(B + "Customer").status_code == 401
    r = c.post("/entity/auth/login", json={"name": "admin", "password": "nope"})
    assert r.status_code == 401 and "message" in r.json()
    assert c.post("/entity/auth/login", json={"name": "admin", "password": "123", "tenant": "Other"}).status_code == 401


def test_login_sets_cookies_and_logout_ends_the_session() -> None:
    c = TestClient(create_app())
    login(c)
    assert "ASP.NET_SessionId" in c.cookies and ".ASPXAUTH" in c.cookies
    sid = c.cookies["ASP.NET_SessionId"]
    assert c.get(B + "Customer").status_code == 200
    assert c.post("/entity/auth/logout").status_code == 204
    c.cookies.set("ASP.NET_SessionId", sid)  # even replaying the old cookie does not help
    assert c.get(B + "Customer").status_code == 401


def test_oauth_password_and_refresh_grants() -> None:
    c = TestClient(create_app())
    form = {
        "grant_type": "password",
        "client_id": "abc@Company",
        "client_secret": "s",
        "username": "admin",
        "password": "123",
        "scope": "api",
    }
    tok = c.post("/identity/connect/token", data=form).json()
    assert tok["token_type"] == "Bearer" and tok["expires_in"] > 0
    assert c.get(B + "Customer", headers={"Authorization": f"Bearer {tok['access_token']}"}).status_code == 200
    assert c.get(B + "Customer", headers={"Authorization": "Bearer wrong"}).status_code == 401
    new = c.post(
        "/identity/connect/token",
        data={"grant_type": "refresh_token", "client_id": "abc@Company", "refresh_token": tok["refresh_token"]},
    ).json()
    assert new["refresh_token"] != tok["refresh_token"]
    assert c.get(B + "Customer", headers={"Authorization": f"Bearer {new['access_token']}"}).status_code == 200
    reused = c.post(
        "/identity/connect/token",
        data={"grant_type": "refresh_token", "client_id": "abc@Company", "refresh_token": tok["refresh_token"]},
    )
    assert reused.status_code == 400
    assert c.post("/identity/connect/token", data=form | {"password": "x"}).status_code == 400


# -- queries -------------------------------------------------------------------------------------


def test_filter_on_linked_field_select_and_quotes(c: TestClient) -> None:
    rows = c.get(
        B + "Customer", params={"$filter": "MainContact/Email eq 'ANN@example.com'", "$select": "CustomerID"}
    ).json()
    assert len(rows) == 1 and rows[0]["CustomerID"] == {"value": "C1"} and "CustomerName" not in rows[0]
    rows = c.get(B + "Customer", params={"$filter": "CustomerName eq 'O''Brien'"}).json()
    assert [r["CustomerID"]["value"] for r in rows] == ["C2"]
    assert "MainContact" not in rows[0]  # linked entities only with $expand
    assert "MainContact" in c.get(B + "Customer/C2", params={"$expand": "MainContact"}).json()


def test_filter_operators(c: TestClient) -> None:
    order(c)
    order(c, Details=[{"InventoryID": {"value": "SKU2"}, "OrderQty": {"value": 1}}], CustomerOrder={"value": "M-7"})

    def nbrs(flt: str) -> list[str]:
        r = c.get(B + "SalesOrder", params={"$filter": flt})
        assert r.status_code == 200, r.text
        return [x["OrderNbr"]["value"] for x in r.json()]

    assert nbrs("OrderTotal gt 20") == ["000001"]
    assert nbrs("OrderTotal le 5.5 and OrderType eq 'SO'") == ["000002"]
    assert nbrs("(OrderTotal ge 100 or CustomerOrder eq 'M-7') and Status ne 'Completed'") == ["000002"]
    assert nbrs("startswith(CustomerOrder,'M-')") == ["000002"]
    assert nbrs("substringof('-7', CustomerOrder)") == ["000002"]
    assert nbrs("Hold eq false") == ["000001", "000002"]
    assert nbrs("LastModified gt datetimeoffset'2000-01-01T00:00:00+00:00'") == ["000001", "000002"]
    assert nbrs("LastModified lt datetimeoffset'2000-01-01T00:00:00%2B00:00'".replace("%2B", "+")) == []


def test_bad_filters_are_400(c: TestClient) -> None:
    assert c.get(B + "SalesOrder", params={"$filter": "Details/InventoryID eq 'SKU1'"}).status_code == 400
    assert c.get(B + "SalesOrder", params={"$filter": "OrderNbr eq"}).status_code == 400
    assert c.get(B + "SalesOrder", params={"$filter": "OrderNbr eq 'x' and (Status eq 'Open'"}).status_code == 400
    assert c.get(B + "SalesOrder", params={"$top": "many"}).status_code == 400


def test_top_and_skip_page(c: TestClient) -> None:
    for _ in range(5):
        order(c)

    def page(skip: int) -> list[str]:
        rows = c.get(B + "SalesOrder", params={"$top": 2, "$skip": skip}).json()
        return [r["OrderNbr"]["value"] for r in rows]

    assert (
        page(0) == ["000001", "000002"] and page(2) == ["000003", "000004"] and page(4) == ["000005"] and page(6) == []
    )


def test_expand_nested_and_get_by_keys_and_id(c: TestClient) -> None:
    o = order(
        c,
        Details=[
            {
                "InventoryID": {"value": "SKU1"},
                "OrderQty": {"value": 1},
                "Allocations": [{"Qty": {"value": 1}, "LocationID": {"value": "L1"}}],
            }
        ],
    )
    by_keys = c.get(B + "SalesOrder/SO/" + o["OrderNbr"]["value"], params={"$expand": "Details/Allocations"}).json()
    assert by_keys["id"] == o["id"] and by_keys["Details"][0]["Allocations"][0]["LocationID"] == {"value": "L1"}
    assert "Details" not in c.get(B + "SalesOrder/" + o["id"]).json()
    assert c.get(B + "SalesOrder/SO/999999").status_code == 404
    assert c.get(B + "SalesOrder/SO/999999").json()["message"] == "No entity satisfies the condition."


# -- writes --------------------------------------------------------------------------------------


def test_if_none_match_and_if_match(c: TestClient) -> None:
    body = {"CustomerID": {"value": "C1"}, "CustomerName": {"value": "Again"}}
    assert c.put(B + "Customer", json=body, headers={"If-None-Match": "*"}).status_code == 412
    assert (
        c.put(B + "Customer", json=body | {"CustomerID": {"value": "NEW"}}, headers={"If-None-Match": "*"}).status_code
        == 200
    )
    assert (
        c.put(B + "Customer", json=body | {"CustomerID": {"value": "NOPE"}}, headers={"If-Match": "*"}).status_code
        == 412
    )
    assert c.put(B + "Customer", json=body, headers={"If-Match": "*"}).json()["CustomerName"] == {"value": "Again"}


def test_unknown_inventory_id_is_422_with_field_error(c: TestClient) -> None:
    r = c.put(
        B + "SalesOrder",
        json={"CustomerID": {"value": "C1"}, "Details": [{"InventoryID": {"value": "X"}, "OrderQty": {"value": 1}}]},
    )
    assert r.status_code == 422
    body = r.json()
    assert body["Details"][0]["InventoryID"] == {"value": "X", "error": "'Inventory ID' cannot be found in the system."}
    assert body["error"]
    assert c.get(B + "SalesOrder").json() == []  # nothing saved, no number used
    assert order(c)["OrderNbr"]["value"] == "000001"


def test_unknown_customer_is_422(c: TestClient) -> None:
    r = c.put(B + "SalesOrder", json={"CustomerID": {"value": "ZZ"}, "Details": []})
    assert r.status_code == 422 and r.json()["CustomerID"]["error"]


def test_malformed_bodies_are_400(c: TestClient) -> None:
    assert (
        c.put(B + "SalesOrder", content=b"{not json", headers={"Content-Type": "application/json"}).status_code == 400
    )
    assert c.put(B + "SalesOrder", json=["x"]).status_code == 400
    assert c.put(B + "SalesOrder", json={"CustomerID": "C1"}).status_code == 400
    assert c.post(B + "SalesOrder/SalesOrderCreateShipment", json={"entity": "x"}).status_code == 400


def test_detail_lines_update_and_delete_by_id(c: TestClient) -> None:
    o = order(c)
    first, second = o["Details"]
    r = c.put(
        B + "SalesOrder?$expand=Details",
        json={
            "OrderType": {"value": "SO"},
            "OrderNbr": o["OrderNbr"],
            "Details": [
                {"id": first["id"], "OrderQty": {"value": 5}},
                {"id": second["id"], "delete": True},
                {"InventoryID": {"value": "SKU2"}, "OrderQty": {"value": 1}},
            ],
        },
    )
    assert r.status_code == 200, r.text
    lines = r.json()["Details"]
    assert [(ln["LineNbr"]["value"], ln["OrderQty"]["value"]) for ln in lines] == [(1, 5.0), (3, 1.0)]
    assert r.json()["OrderTotal"]["value"] == 55.5


def test_totals_add_up(c: TestClient) -> None:
    o = order(
        c,
        Details=[
            {
                "InventoryID": {"value": "SKU1"},
                "OrderQty": {"value": 3},
                "UnitPrice": {"value": 10},
                "DiscountAmount": {"value": 2.5},
                "ManualDiscount": {"value": True},
            },
            {"InventoryID": {"value": "SKU2"}, "OrderQty": {"value": 2}, "DiscountPercent": {"value": 10}},
        ],
        Totals={"PremiumFreight": {"value": 7}},
        DisableAutomaticTaxCalculation={"value": True},
        TaxDetails=[{"TaxID": {"value": "T"}, "TaxAmount": {"value": 1.23}}],
    )
    a, b = o["Details"]
    assert (a["ExtendedPrice"]["value"], a["DiscountAmount"]["value"], a["Amount"]["value"]) == (30.0, 2.5, 27.5)
    assert (b["UnitPrice"]["value"], b["DiscountAmount"]["value"], b["Amount"]["value"]) == (5.5, 1.1, 9.9)
    t = o["Totals"]
    assert (
        t["LineTotalAmount"]["value"] == 37.4 and t["PremiumFreight"]["value"] == 7 and t["TaxTotal"]["value"] == 1.23
    )
    assert t["DiscountTotal"]["value"] == 3.6
    assert o["OrderTotal"]["value"] == 45.63 and o["TaxTotal"]["value"] == 1.23 and o["OrderedQty"]["value"] == 5
    assert o["Status"]["value"] == "Open" and o["CurrencyID"]["value"] == "USD"
    assert o["LastModified"]["value"].endswith("+00:00")
    held = order(c, Hold={"value": True}, TaxDetails=[{"TaxID": {"value": "T"}, "TaxAmount": {"value": 9}}])
    assert (
        held["Status"]["value"] == "On Hold" and held["TaxTotal"]["value"] == 0
    )  # automatic tax: client amounts ignored


# -- actions -------------------------------------------------------------------------------------


def run(c: TestClient, entity: str, action: str, keys: dict[str, Any]) -> None:
    r = c.post(B + f"{entity}/{action}", json={"entity": keys, "parameters": {}})
    assert r.status_code == 202, r.text
    loc = r.headers["Location"]
    assert loc.startswith(f"/entity/Default/24.200.001/{entity}/{action}/status/")
    assert c.get(loc).status_code == 204


def test_order_to_cash_flow(c: TestClient) -> None:
    o = order(c, Totals={"PremiumFreight": {"value": 4}})
    nbr = o["OrderNbr"]["value"]
    run(c, "SalesOrder", "SalesOrderCreateShipment", {"OrderType": {"value": "SO"}, "OrderNbr": {"value": nbr}})
    assert c.get(B + f"SalesOrder/SO/{nbr}").json()["Status"]["value"] == "Shipping"
    (ship,) = c.get(B + "Shipment", params={"$expand": "Details,Orders"}).json()
    assert ship["Status"]["value"] == "Open" and [d["ShippedQty"]["value"] for d in ship["Details"]] == [3, 2]
    keys = {"ShipmentNbr": ship["ShipmentNbr"]}
    run(c, "Shipment", "ConfirmShipment", keys)
    o2 = c.get(B + f"SalesOrder/SO/{nbr}", params={"$expand": "Details,Shipments"}).json()
    assert o2["Status"]["value"] == "Completed" and o2["Details"][0]["ShippedQty"]["value"] == 3
    assert o2["Shipments"][0]["ShipmentNbr"] == ship["ShipmentNbr"]
    run(c, "Shipment", "PrepareInvoice", keys)
    ship = c.get(B + "Shipment/" + ship["ShipmentNbr"]["value"], params={"$expand": "Orders"}).json()
    assert ship["Status"]["value"] == "Invoiced"
    inv_nbr = ship["Orders"][0]["InvoiceNbr"]["value"]
    inv = c.get(B + f"SalesInvoice/Invoice/{inv_nbr}", params={"$expand": "Details"}).json()
    assert inv["Status"]["value"] == "Balanced" and inv["Amount"]["value"] == o["OrderTotal"]["value"] == 45.0
    line = inv["Details"][0]
    assert (
        line["OrderNbr"]["value"],
        line["OrderLineNbr"]["value"],
        line["ShipmentNbr"]["value"],
        line["Qty"]["value"],
    ) == (nbr, 1, ship["ShipmentNbr"]["value"], 3)
    run(c, "SalesInvoice", "ReleaseSalesInvoice", {"Type": {"value": "Invoice"}, "ReferenceNbr": {"value": inv_nbr}})
    assert c.get(B + f"SalesInvoice/Invoice/{inv_nbr}").json()["Status"]["value"] == "Open"
    assert c.get(B + "Shipment/" + ship["ShipmentNbr"]["value"]).json()["Status"]["value"] == "Completed"
    pay = c.put(
        B + "Payment",
        json={
            "CustomerID": {"value": "C1"},
            "PaymentAmount": {"value": 45},
            "DocumentsToApply": [{"DocType": {"value": "INV"}, "ReferenceNbr": {"value": inv_nbr}}],
        },
    ).json()
    run(c, "Payment", "ReleasePayment", {"Type": {"value": "Payment"}, "ReferenceNbr": pay["ReferenceNbr"]})
    assert c.get(B + "Payment/Payment/" + pay["ReferenceNbr"]["value"]).json()["Status"]["value"] == "Closed"
    assert c.get(B + f"SalesInvoice/Invoice/{inv_nbr}").json()["Status"]["value"] == "Closed"


def test_partial_shipment_via_put_and_packages_later(c: TestClient) -> None:
    nbr = order(c)["OrderNbr"]["value"]
    line = {"OrderType": {"value": "SO"}, "OrderNbr": {"value": nbr}, "OrderLineNbr": {"value": 1}}
    first = c.put(
        B + "Shipment?$expand=Details",
        json={
            "Type": {"value": "Shipment"},
            "CustomerID": {"value": "C1"},
            "Details": [line | {"ShippedQty": {"value": 2}}],
            "Packages": [{"Weight": {"value": 1}}],
        },
    )
    assert first.status_code == 200, first.text
    too_many = c.put(
        B + "Shipment", json={"CustomerID": {"value": "C1"}, "Details": [line | {"ShippedQty": {"value": 2}}]}
    )
    assert too_many.status_code == 422 and "exceeds" in too_many.json()["Details"][0]["ShippedQty"]["error"]
    snbr = first.json()["ShipmentNbr"]
    run(c, "Shipment", "ConfirmShipment", {"ShipmentNbr": snbr})
    o = c.get(B + f"SalesOrder/SO/{nbr}", params={"$expand": "Details"}).json()
    assert o["Status"]["value"] == "Back Order" and o["Details"][0]["OpenQty"]["value"] == 1
    pkg = c.put(
        B + "Shipment?$expand=Packages", json={"ShipmentNbr": snbr, "Packages": [{"TrackingNbr": {"value": "1Z1"}}]}
    )
    assert [p.get("TrackingNbr", {}).get("value") for p in pkg.json()["Packages"]] == [None, "1Z1"]
    pkg_id = pkg.json()["Packages"][0]["id"]
    pkg = c.put(
        B + "Shipment?$expand=Packages",
        json={"ShipmentNbr": snbr, "Packages": [{"id": pkg_id, "TrackingNbr": {"value": "1Z0"}}]},
    )
    assert [p.get("TrackingNbr", {}).get("value") for p in pkg.json()["Packages"]] == ["1Z0", "1Z1"]
    rest = c.put(B + "Shipment", json={"CustomerID": {"value": "C1"}, "Details": [line | {"Qty": {"value": 1}}]})
    assert rest.status_code == 200


def test_cancel_and_action_errors(c: TestClient) -> None:
    nbr = order(c)["OrderNbr"]["value"]
    keys = {"OrderType": {"value": "SO"}, "OrderNbr": {"value": nbr}}
    assert c.post(B + "SalesOrder/CancelSalesOrder", json={"entity": keys}).status_code == 204
    assert c.get(B + f"SalesOrder/SO/{nbr}").json()["Status"]["value"] == "Canceled"
    assert c.post(B + "SalesOrder/SalesOrderCreateShipment", json={"entity": keys}).status_code == 422
    assert (
        c.post(B + "SalesOrder/SalesOrderCreateShipment", json={"entity": {"OrderNbr": {"value": "nope"}}}).status_code
        == 404
    )
    assert c.post(B + "SalesOrder/NoSuchAction", json={"entity": keys}).status_code == 404


def test_delete_by_keys(c: TestClient) -> None:
    assert c.delete(B + "Customer/C2").status_code == 204
    assert c.get(B + "Customer/C2").status_code == 404
    assert c.delete(B + "Customer/C2").status_code == 404


def test_faults_are_acumatica_shaped_and_logged(c: TestClient) -> None:
    c.post("/_sim/faults", json={"error_rate": 1})
    r = c.get(B + "Customer")
    assert r.status_code == 500 and {"message", "exceptionMessage", "exceptionType", "stackTrace"} <= set(r.json())
    c.delete("/_sim/faults")
    rows = c.get("/_sim/requests").json()["requests"]
    assert rows[-1]["fault"] == "error" and rows[-1]["status"] == 500


def test_a_time_window_filter_finds_what_evaluating_it_on_every_record_finds() -> None:
    """The sim narrows a ``LastModifiedDateTime`` window by the stored times before it evaluates
    the filter (``_in_time_bounds``); what it answers is what the plain evaluation answers, with
    times written every way Acumatica and the seeds write them, and null and absent ones."""
    import random
    from datetime import UTC, datetime, timedelta

    from sandbox.sims.acumatica import AcumaticaSim

    sim = AcumaticaSim()
    rnd = random.Random(7)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    forms = [
        lambda t: t.isoformat(timespec="milliseconds"),
        lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        lambda t: t.replace(tzinfo=None).isoformat(),
        lambda t: t.astimezone(UTC).isoformat().replace("+00:00", "+00:00"),
    ]
    with sim.lock:
        for n in range(400):
            at = start + timedelta(seconds=rnd.randrange(0, 86_400))
            rec: dict[str, Any] = {"id": f"r{n}", "InventoryID": {"value": f"I{n}"}}
            if n % 37 == 0:
                rec["LastModifiedDateTime"] = {"value": None}
            elif n % 41 != 0:
                rec["LastModifiedDateTime"] = {"value": forms[n % len(forms)](at)}
            rec["Description"] = {"value": "odd" if n % 2 else "even"}
            sim.records.setdefault("StockItem", {})[rec["id"]] = rec

    def plain(params: dict[str, str]) -> list[str]:
        real = AcumaticaSim._in_time_bounds
        try:
            AcumaticaSim._in_time_bounds = lambda self, rows, bounds: (rows, False)  # type: ignore[method-assign]
            return [r["id"] for r in sim.query("StockItem", params)]
        finally:
            AcumaticaSim._in_time_bounds = real  # type: ignore[method-assign]

    for _ in range(30):
        a = start + timedelta(seconds=rnd.randrange(0, 86_400))
        b = a + timedelta(seconds=rnd.randrange(0, 40_000))
        lo, hi = a.isoformat(timespec="milliseconds"), b.isoformat(timespec="milliseconds")
        for text in (
            f"LastModifiedDateTime gt datetimeoffset'{lo}' and LastModifiedDateTime le datetimeoffset'{hi}'",
            f"LastModifiedDateTime gt datetimeoffset'{lo}'",
            f"LastModifiedDateTime ge datetimeoffset'{lo}' and Description eq 'odd'",
            f"LastModifiedDateTime lt datetimeoffset'{hi}' or Description eq 'odd'",
        ):
            params = {"$filter": text, "$top": "50", "$skip": "3"}
            assert [r["id"] for r in sim.query("StockItem", params)] == plain(params), text
