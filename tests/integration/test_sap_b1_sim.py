"""The SAP Business One Service Layer sim answers as SAP documents it: every answer here is checked
against SAP's v1 metadata and every error against the v1 envelope (tests/support/sap_b1.py); where
SAP recorded an answer (login, session expiry, -10, -5006) the sim's is compared with it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.testclient import TestClient

from sandbox.sims import sap_b1
from tests.support.sap_b1 import FIXTURES, METADATA_FILE, assert_answer, assert_error_v1, assert_error_v2

RESPONSES = json.loads((FIXTURES / "response_examples.json").read_text())["examples"]
LOGIN = {"CompanyDB": sap_b1.COMPANY_DB, "UserName": sap_b1.USERNAME, "Password": sap_b1.PASSWORD}
V1 = "/b1s/v1/"


def recorded(page: int) -> Any:
    return next(r["body"] for r in RESPONSES if r["pdf_page"] == page)


class B1:
    """A TestClient on a fresh sim that checks every Service Layer answer it gets."""

    def __init__(self) -> None:
        self.app = sap_b1.create_app()
        self.http = TestClient(self.app)
        self.sim: sap_b1.SapB1Sim = self.app.state.sim
        self.clock = datetime(2025, 3, 1, 14, 5, 0, tzinfo=UTC)
        self.sim.now = lambda: self.clock

    def login(self) -> httpx.Response:
        return self.call("POST", "Login", json=LOGIN)

    def call(self, method: str, path: str, *, dialect: str = "v1", **kw: Any) -> httpx.Response:
        r = self.http.request(method, f"/b1s/{dialect}/{path}", **kw)
        if r.status_code >= 400:
            (assert_error_v2 if dialect == "v2" else assert_error_v1)(r.json())
        elif r.content and dialect == "v1" and not path.startswith("$metadata"):
            entity_set = "B1Sessions" if path == "Login" else path.split("(", 1)[0].split("?", 1)[0]
            assert_answer(entity_set, r.json())
        return r

    def seed(self, **body: Any) -> Any:
        r = self.http.post("/_sim/seed", json=body)
        assert r.status_code == 200, r.text
        return r.json()

    def config(self, **body: Any) -> None:
        assert self.http.post("/_sim/config", json=body).status_code == 200


def partner(code: str, **extra: Any) -> dict[str, Any]:
    return {"CardCode": code, "CardName": f"Customer {code}", "CardType": "C", **extra}


def item(code: str, price: float = 30, stock: float = 500) -> dict[str, Any]:
    return {
        "ItemCode": code,
        "ItemName": f"Item {code}",
        "ItemPrices": [{"PriceList": 1, "Price": price, "Currency": "USD"}],
        "ItemWarehouseInfoCollection": [{"WarehouseCode": "01", "InStock": stock}],
    }


@pytest.fixture
def b1() -> B1:
    b = B1()
    assert b.login().status_code == 200
    b.seed(tax_codes={"T1": 7.5}, business_partners=[partner("c001")], items=[item("i001")])
    return b


def order(**extra: Any) -> dict[str, Any]:
    return {
        "CardCode": "c001",
        "DocDueDate": "2014-04-04",
        "DocumentLines": [{"ItemCode": "i001", "Quantity": "100", "TaxCode": "T1", "UnitPrice": "30"}],
        **extra,
    }


# -- sessions -----------------------------------------------------------------------------------


def test_login_answers_as_recorded_and_sets_both_cookies() -> None:
    b = B1()
    r = b.login()
    body = r.json()
    assert set(body) == set(recorded(14)) and body["Version"] == recorded(14)["Version"]
    assert body["SessionTimeout"] == 30 and body["odata.metadata"].endswith("/b1s/v1/$metadata#B1Sessions/@Element")
    assert r.cookies["B1SESSION"] == body["SessionId"] and r.cookies["ROUTEID"] == ".node1"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({**LOGIN, "Password": "wrong"}, 401, 100000027),
        ({**LOGIN, "CompanyDB": "OTHER"}, 401, 100000027),
        ({**LOGIN, "Company": "x"}, 400, -1000),
    ],
)
def test_a_login_refused(body: dict[str, Any], status: int, code: int) -> None:
    b = B1()
    r = b.call("POST", "Login", json=body)
    assert (r.status_code, r.json()["error"]["code"]) == (status, code)
    assert "B1SESSION" not in r.cookies


def test_without_a_session_every_call_is_401_with_sap_s_recorded_body() -> None:
    b = B1()
    r = b.call("GET", "Orders")
    assert r.status_code == 401 and r.json() == recorded(15)
    b.login()
    assert b.call("GET", "Orders").status_code == 200
    assert b.call("POST", "Logout").status_code == 204
    r = b.call("GET", "Orders")
    assert r.status_code == 401 and r.json() == recorded(15)


def test_the_route_cookie_must_come_back_unless_configured_otherwise(b1: B1) -> None:
    b1.http.cookies.delete("ROUTEID")
    assert b1.call("GET", "Orders").json() == recorded(15)
    b1.config(require_route_id=False)
    assert b1.call("GET", "Orders").status_code == 200


def test_the_session_timeout_slides_and_is_configurable(b1: B1) -> None:
    for _ in range(3):  # 29 minutes idle each time: alive, and each call restarts the clock
        b1.clock += timedelta(minutes=29)
        assert b1.call("GET", "Orders").status_code == 200
    b1.clock += timedelta(minutes=30, seconds=1)
    assert b1.call("GET", "Orders").json() == recorded(15)
    b1.config(session_timeout_min=5)
    assert b1.login().json()["SessionTimeout"] == 5
    b1.clock += timedelta(minutes=5, seconds=1)
    assert b1.call("GET", "Orders").status_code == 401


def test_expiring_every_session_now(b1: B1) -> None:
    assert b1.http.get("/_sim/sessions").json() == {"live": 1, "logins": 1}
    assert b1.http.post("/_sim/sessions/expire").json() == {"expired": 1}
    assert b1.call("GET", "Items").json() == recorded(15)


def test_metadata_is_sap_s_own_trimmed_file(b1: B1) -> None:
    r = b1.call("GET", "$metadata")
    assert r.status_code == 200 and r.content == METADATA_FILE.read_bytes()


# -- business partners and items ----------------------------------------------------------------


def test_business_partner_crud(b1: B1) -> None:
    r = b1.call("POST", "BusinessPartners", json={"CardCode": "c002", "CardName": "c002", "CardType": "C"})
    made = r.json()
    assert r.status_code == 201 and r.headers["location"].endswith("/b1s/v1/BusinessPartners('c002')")
    assert made["CardType"] == "cCustomer" and made["Frozen"] == "tNO"
    assert (made["CreateDate"], made["CreateTime"], made["UpdateDate"]) == ("2025-03-01", "14:05:00", None)
    b1.clock += timedelta(seconds=7)
    assert b1.call("PATCH", "BusinessPartners('c002')", json={"EmailAddress": "Amy@Example.com"}).status_code == 204
    read = b1.call("GET", "BusinessPartners('c002')").json()
    assert (read["EmailAddress"], read["UpdateDate"], read["UpdateTime"]) == (
        "Amy@Example.com",
        "2025-03-01",
        "14:05:07",
    )
    again = b1.call("POST", "BusinessPartners", json={"CardCode": "c002", "CardName": "again"})
    assert again.status_code == 400 and again.json()["error"]["code"] == -10
    assert b1.call("DELETE", "BusinessPartners('c002')").status_code == 204
    assert b1.call("GET", "BusinessPartners('c002')").status_code == 404


def test_a_string_key_is_quoted_with_doubled_quotes(b1: B1) -> None:
    b1.call("POST", "BusinessPartners", json=partner("O'Brien"))
    assert b1.call("GET", "BusinessPartners('O''Brien')").json()["CardCode"] == "O'Brien"
    assert b1.call("GET", "BusinessPartners(O)").status_code == 400
    assert b1.call("GET", "Orders('1')").status_code == 400


def test_a_missing_key_is_404_minus_2028(b1: B1) -> None:
    r = b1.call("GET", "Orders(99)")
    assert r.status_code == 404
    assert r.json()["error"] == {
        "code": -2028,
        "message": {"lang": "en-us", "value": "No matching records found (ODBC -2028)"},
    }


def test_items_with_warehouse_rows_and_prices(b1: B1) -> None:
    b1.config(stamp_update_on_create=True)
    body = {
        "ItemCode": "i002",
        "ItemName": "Item2",
        "ItemType": "itItems",
        "ItemPrices": [{"PriceList": 1, "Price": "12.5"}, {"PriceList": 2, "Price": 11}],
        "ItemWarehouseInfoCollection": [{"WarehouseCode": "01"}, {"WarehouseCode": "02"}],
    }
    made = b1.call("POST", "Items", json=body).json()
    assert [p["Price"] for p in made["ItemPrices"]] == [12.5, 11]
    assert [(w["WarehouseCode"], w["InStock"], w["ItemCode"]) for w in made["ItemWarehouseInfoCollection"]] == [
        ("01", 0, "i002"),
        ("02", 0, "i002"),
    ]
    assert made["UpdateDate"] == "2025-03-01"  # stamp_update_on_create
    r = b1.call("POST", "Items", json=body)
    assert r.status_code == 400 and r.json() == recorded(87)  # SAP's recorded -10, word for word
    stock = b1.call(
        "POST",
        "Items",
        json={"ItemCode": "i003", "ItemWarehouseInfoCollection": [{"WarehouseCode": "01", "InStock": 5}]},
    )
    assert stock.json()["error"]["code"] == -1000 and "InStock: read-only" in stock.json()["error"]["message"]["value"]


def test_price_and_warehouse_rows_merge_on_patch(b1: B1) -> None:
    patch = {"ItemPrices": [{"PriceList": 1, "Price": 35}, {"PriceList": 3, "Price": 20}]}
    assert b1.call("PATCH", "Items('i001')", json=patch).status_code == 204
    prices = b1.call("GET", "Items('i001')").json()["ItemPrices"]
    assert [(p["PriceList"], p["Price"]) for p in prices] == [(1, 35), (3, 20)]
    assert (
        b1.call("PATCH", "Items('i001')", json={"ItemWarehouseInfoCollection": [{"WarehouseCode": "02"}]}).status_code
        == 204
    )
    rows = b1.call("GET", "Items('i001')").json()["ItemWarehouseInfoCollection"]
    assert [(w["WarehouseCode"], w["InStock"]) for w in rows] == [("01", 500), ("02", 0)]


# -- orders --------------------------------------------------------------------------------------


def test_an_order_is_priced_committed_and_read_back(b1: B1) -> None:
    r = b1.call("POST", "Orders", json=order(NumAtCard="000000042"))
    made = r.json()
    assert r.status_code == 201 and r.headers["location"].endswith(f"/b1s/v1/Orders({made['DocEntry']})")
    assert made["DocEntry"] == 1 and made["DocNum"] != made["DocEntry"]
    line = made["DocumentLines"][0]
    assert (line["LineNum"], line["LineTotal"], line["TaxTotal"], line["RemainingOpenQuantity"]) == (0, 3000, 225, 100)
    assert (made["VatSum"], made["DocTotal"], made["DocumentStatus"], made["Cancelled"]) == (
        225,
        3225,
        "bost_Open",
        "tNO",
    )
    assert (made["CreationDate"], made["UpdateDate"], made["UpdateTime"]) == ("2025-03-01", "2025-03-01", "14:05:00")
    assert b1.call("GET", "Orders(1)").json()["NumAtCard"] == "000000042"
    rows = b1.call("GET", "Items('i001')").json()["ItemWarehouseInfoCollection"]
    assert (rows[0]["InStock"], rows[0]["Committed"]) == (500, 100)


def test_a_header_discount_and_line_discount_are_b1_s_own_sums(b1: B1) -> None:
    body = order(DiscountPercent=10)
    body["DocumentLines"] = [
        {"ItemCode": "i001", "Quantity": 3, "UnitPrice": 9.99, "DiscountPercent": 5, "TaxCode": "T1"},
        {"ItemCode": "i001", "Quantity": 1},  # priced from price list 1, no tax code
    ]
    made = b1.call("POST", "Orders", json=body).json()
    first, second = made["DocumentLines"]
    assert (first["Price"], first["LineTotal"], first["TaxTotal"]) == (9.49, 28.47, 1.92)
    assert (second["UnitPrice"], second["LineTotal"], second["TaxTotal"]) == (30, 30, 0)
    assert (made["TotalDiscount"], made["VatSum"], made["DocTotal"]) == (5.85, 1.92, 54.54)


@pytest.mark.parametrize(
    ("body", "status", "code", "text"),
    [
        (order(Frobnicate=1), 400, -1000, "Property 'Frobnicate' of 'Document' is invalid"),
        (order(DocEntry=5), 400, -1000, "Document.DocEntry: read-only (Writable=false)"),
        (order(DocDueDate=None), 400, -5002, "Enter valid date [ORDR.DocDueDate]"),
        (order(CardCode="nobody"), 400, -2028, "No matching records found (ODBC -2028)"),
        (order(DocumentLines=[]), 400, -5002, "A document needs at least one line (DocumentLines)"),
        (
            order(DocumentLines=[{"ItemCode": "nothing", "Quantity": 1}]),
            400,
            -2028,
            "No matching records found (ODBC -2028)",
        ),
        (order(DocumentLines=[{"ItemCode": "i001", "Quantity": 0}]), 400, -5002, "Quantity must be greater than zero"),
        (order(DocumentLines=[{"ItemCode": "i001", "Quantity": 1, "TaxCode": "XX"}]), 400, -5002, "Tax code 'XX'"),
        (
            order(DocumentLines=[{"ItemCode": "i001", "Quantity": 1, "BaseType": 23, "BaseEntry": 1, "BaseLine": 0}]),
            501,
            -1,
            "not simulated yet",
        ),
    ],
)
def test_an_order_refused(b1: B1, body: dict[str, Any], status: int, code: int, text: str) -> None:
    r = b1.call("POST", "Orders", json=body)
    error = r.json()["error"]
    assert (r.status_code, error["code"]) == (status, code) and error["message"]["value"].startswith(text)
    assert b1.sim.records["Orders"] == {}


def test_freight_needs_a_seeded_expense_code_and_adds_to_the_total(b1: B1) -> None:
    freight = {"DocumentAdditionalExpenses": [{"ExpenseCode": 1, "LineTotal": "12.5", "TaxCode": "T1"}]}
    r = b1.call("POST", "Orders", json=order(**freight))
    assert r.status_code == 400 and r.json()["error"]["message"]["value"].startswith("Freight code 1 is not defined")
    b1.seed(expense_codes=[1])
    made = b1.call("POST", "Orders", json=order(**freight)).json()
    [expense] = made["DocumentAdditionalExpenses"]
    assert (expense["LineNum"], expense["LineTotal"], expense["TaxSum"]) == (0, 12.5, 0.94)
    assert (made["VatSum"], made["DocTotal"]) == (225.94, 3238.44)


def test_payments_applied_to_documents_are_not_simulated_yet(b1: B1) -> None:
    body = {"CardCode": "c001", "CashSum": 10, "PaymentInvoices": [{"DocEntry": 1, "SumApplied": 10}]}
    r = b1.call("POST", "IncomingPayments", json=body)
    assert r.status_code == 501 and "PaymentInvoices" in r.json()["error"]["message"]["value"]
    assert b1.sim.records["IncomingPayments"] == {}


def test_patch_merges_lines_by_line_number_or_replaces_them(b1: B1) -> None:
    b1.call("POST", "Orders", json=order())
    assert (
        b1.call("PATCH", "Orders(1)", json={"Comments": "new comments - modified by Service Layer"}).status_code == 204
    )
    patch = {"DocumentLines": [{"LineNum": 0, "Quantity": 50}, {"ItemCode": "i001", "Quantity": 2, "UnitPrice": 10}]}
    assert b1.call("PATCH", "Orders(1)", json=patch).status_code == 204
    read = b1.call("GET", "Orders(1)").json()
    assert read["Comments"] == "new comments - modified by Service Layer"
    assert [(ln["LineNum"], ln["Quantity"]) for ln in read["DocumentLines"]] == [(0, 50), (1, 2)]
    assert (read["VatSum"], read["DocTotal"]) == (112.5, 1632.5)
    assert b1.call("GET", "Items('i001')").json()["ItemWarehouseInfoCollection"][0]["Committed"] == 52
    replace = {"DocumentLines": [{"ItemCode": "i001", "Quantity": 1, "UnitPrice": 30}]}
    b1.call("PATCH", "Orders(1)", json=replace, headers={"B1S-ReplaceCollectionsOnPatch": "true"})
    read = b1.call("GET", "Orders(1)").json()
    assert [(ln["LineNum"], ln["Quantity"]) for ln in read["DocumentLines"]] == [(0, 1)] and read["DocTotal"] == 30
    assert b1.call("PATCH", "Orders(1)", json={"DocNum": "x"}).json()["error"]["code"] == -1000


def test_documents_cannot_be_deleted_and_used_partners_stay(b1: B1) -> None:
    b1.call("POST", "Orders", json=order())
    r = b1.call("DELETE", "Orders(1)")
    assert r.status_code == 400 and r.json() == recorded(26)  # SAP's recorded -5006, word for word
    assert b1.call("DELETE", "BusinessPartners('c001')").json()["error"]["code"] == -5002
    assert b1.call("DELETE", "Items('i001')").json()["error"]["code"] == -5002


def test_return_no_content(b1: B1) -> None:
    r = b1.call("POST", "Orders", json=order(), headers={"Prefer": "return-no-content"})
    assert r.status_code == 204 and r.content == b"" and r.headers["location"].endswith("/Orders(1)")
    assert b1.call("GET", "Orders(1)").status_code == 200


def test_stamps_are_the_server_s_local_time(b1: B1) -> None:
    b1.config(timezone="America/New_York")
    b1.clock = datetime(2025, 3, 1, 3, 30, 9, tzinfo=UTC)
    made = b1.call("POST", "Orders", json=order()).json()
    assert (made["UpdateDate"], made["UpdateTime"]) == ("2025-02-28", "22:30:09")
    assert b1.http.post("/_sim/config", json={"timezone": "Mars/Olympus"}).status_code == 400


# -- queries ---------------------------------------------------------------------------------------


def stamped(b1: B1, rows: list[tuple[str, str, str]]) -> None:
    """Business partners with given UpdateDate/UpdateTime (code, date, time)."""
    b1.seed(business_partners=[partner(c, UpdateDate=d, UpdateTime=t) for c, d, t in rows])


def codes(b1: B1, query: dict[str, str], headers: dict[str, str] | None = None) -> list[str]:
    r = b1.call("GET", "BusinessPartners", params=query, headers=headers)
    assert r.status_code == 200, r.text
    return [row["CardCode"] for row in r.json()["value"]]


@pytest.fixture
def dated(b1: B1) -> B1:
    stamped(
        b1,
        [
            ("A", "2025-02-28", "23:59:59"),
            ("B", "2025-03-01", "14:04:59"),
            ("C", "2025-03-01", "14:05:00"),
            ("D", "2025-03-01", "18:00:00"),
            ("E", "2025-03-02", "09:00:00"),  # a later day, an earlier clock time
        ],
    )
    return b1


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("UpdateDate eq '2025-03-01'", ["B", "C", "D"]),
        ("UpdateDate ne '2025-03-01'", ["A", "E", "c001"]),
        ("UpdateDate gt '2025-03-01'", ["E"]),
        ("UpdateDate ge '2025-03-01'", ["B", "C", "D", "E"]),
        ("UpdateDate lt '2025-03-01'", ["A"]),
        ("UpdateDate le '2025-03-01'", ["A", "B", "C", "D"]),
        ("UpdateDate eq null", ["c001"]),
        ("UpdateTime ge '14:05:00' and UpdateDate ge '2025-03-01'", ["C", "D"]),  # the wrong filter misses E
        ("UpdateDate gt '2025-03-01' or (UpdateDate eq '2025-03-01' and UpdateTime ge '14:05:00')", ["C", "D", "E"]),
        ("(CardCode eq 'A' or CardCode eq 'E') and UpdateTime lt '10:00'", ["E"]),
        ("CardType eq 'cCustomer' and CardCode eq 'a'", []),
        ("CardType eq 'C' and CardCode ne 'c001' and CardCode le 'B'", ["A", "B"]),
    ],
)
def test_filters(dated: B1, expr: str, expected: list[str]) -> None:
    assert codes(dated, {"$filter": expr}) == expected


def test_string_filters_are_case_sensitive_unless_asked(dated: B1) -> None:
    assert codes(dated, {"$filter": "CardCode eq 'a'"}) == []
    assert codes(dated, {"$filter": "CardCode eq 'a'"}, {"B1S-CaseInsensitive": "true"}) == ["A"]


@pytest.mark.parametrize(
    ("query", "text"),
    [
        ({"$filter": "DocStatus eq 'O'"}, "Property 'DocStatus' of 'BusinessPartner' is invalid"),
        ({"$filter": "toupper(CardName) eq 'X'"}, "Property 'toupper' of 'BusinessPartner' is invalid"),
        ({"$filter": "UpdateDate gt 'yesterday'"}, "Invalid $filter value"),
        ({"$filter": "(CardCode eq 'A'"}, "Invalid $filter"),
        ({"$filter": "CardCode eq"}, "Invalid $filter"),
        ({"$select": "CardCode,Colour"}, "Property 'Colour' of 'BusinessPartner' is invalid"),
        ({"$orderby": "BPAddresses"}, "Property 'BPAddresses' of 'BusinessPartner' is invalid"),
        ({"$top": "-1"}, "Invalid $top"),
        ({"$expand": "x"}, "Query option $expand is not supported"),
    ],
)
def test_bad_query_options_are_refused(dated: B1, query: dict[str, str], text: str) -> None:
    r = dated.call("GET", "BusinessPartners", params=query)
    assert r.status_code == 400 and r.json()["error"]["code"] == -1000
    assert r.json()["error"]["message"]["value"].startswith(text)


def test_select_orderby_top_skip_and_count(dated: B1) -> None:
    q = {"$select": "CardCode,UpdateTime", "$orderby": "UpdateDate desc,UpdateTime", "$top": "3", "$skip": "1"}
    r = dated.call("GET", "BusinessPartners", params={**q, "$inlinecount": "allpages"})
    body = r.json()
    assert body["odata.metadata"].endswith("$metadata#BusinessPartners(CardCode,UpdateTime)")
    assert body["value"] == [
        {"odata.id": None, "CardCode": "B", "UpdateTime": "14:04:59"},
        {"odata.id": None, "CardCode": "C", "UpdateTime": "14:05:00"},
        {"odata.id": None, "CardCode": "D", "UpdateTime": "18:00:00"},
    ]
    assert body["odata.count"] == 6


def pages(b1: B1, first: str, headers: dict[str, str] | None = None) -> Iterator[dict[str, Any]]:
    url: str | None = first
    while url is not None:
        r = b1.call("GET", url, headers=headers)
        assert r.status_code == 200, r.text
        yield r.json()
        url = r.json().get("odata.nextLink")


def test_pages_follow_the_next_link_with_the_same_options(b1: B1) -> None:
    b1.seed(business_partners=[partner(f"P{n:02d}") for n in range(45)])
    got = list(
        pages(
            b1, "BusinessPartners?$filter=CardCode ne 'c001'&$orderby=CardCode desc", {"Prefer": "odata.maxpagesize=20"}
        )
    )
    assert [len(p["value"]) for p in got] == [20, 20, 5]
    assert [row["CardCode"] for p in got for row in p["value"]] == [f"P{n:02d}" for n in reversed(range(45))]
    link = got[0]["odata.nextLink"]
    assert link.startswith("BusinessPartners?")
    assert parse_qs(urlsplit(link).query) == {
        "$filter": ["CardCode ne 'c001'"],
        "$orderby": ["CardCode desc"],
        "$skip": ["20"],
    }
    assert len(next(pages(b1, "BusinessPartners"))["value"]) == 20  # SAP's default page: 20
    limited = list(pages(b1, "BusinessPartners?$top=30", {"Prefer": "odata.maxpagesize=20"}))
    assert [len(p["value"]) for p in limited] == [20, 10]


def test_the_page_size_asked_for_is_echoed(b1: B1) -> None:
    r = b1.call("GET", "Items", headers={"Prefer": "odata.maxpagesize=5"})
    assert r.headers["preference-applied"] == "odata.maxpagesize=5"
    assert b1.call("GET", "Items", headers={"Prefer": "odata.maxpagesize=0"}).status_code == 400


# -- the official examples that need no seed of their own, and the v2 variant ---------------------


def test_unknown_sets_and_bound_actions(b1: B1) -> None:
    assert b1.call("GET", "Quotations").status_code == 404
    assert b1.call("POST", "Orders(1)/Close").json() == recorded(26)
    assert b1.call("PUT", "Orders(1)", json={}).json() == recorded(26)


def test_the_v2_variant_answers_its_own_envelope(b1: B1) -> None:
    b1.seed(business_partners=[partner(f"P{n:02d}") for n in range(3)])
    r = b1.call("GET", "BusinessPartners", dialect="v2", headers={"Prefer": "odata.maxpagesize=2"})
    body = r.json()
    assert "@odata.context" in body and "odata.metadata" not in body and body["@odata.nextLink"].endswith("$skip=2")
    r = b1.call("GET", "Orders(9)", dialect="v2")
    assert r.json() == {"error": {"code": "-2028", "message": "No matching records found (ODBC -2028)"}}
    assert b1.http.get("/b1s/v3/Orders").status_code == 404


# -- the shared control API ---------------------------------------------------------------------------


def test_a_lost_answer_still_applies_the_order_and_login_is_never_lost(b1: B1) -> None:
    b1.http.post("/_sim/faults", json={"lost_response_rate": 1.0})
    assert b1.login().status_code == 200
    r = b1.http.post(V1 + "Orders", json=order())
    assert r.status_code == 504
    assert list(b1.sim.records["Orders"]) == [1]
    log = b1.http.get("/_sim/requests").json()["requests"]
    assert [(x["path"], x["fault"], x["applied_status"]) for x in log[-2:]] == [
        ("/b1s/v1/Login", None, 200),
        ("/b1s/v1/Orders", "lost_response", 201),
    ]
    assert_error_v1(r.json())


def test_recorded_answers_and_faults_use_the_v1_envelope(b1: B1) -> None:
    answer = {"method": "POST", "path": "/b1s/v1/Orders", "status": 400, "body": recorded(172)}
    assert b1.http.post("/_sim/answers", json={"answers": [answer]}).status_code == 200
    assert b1.call("POST", "Orders", json=order()).json() == recorded(172)
    assert b1.sim.records["Orders"] == {}
    b1.http.post("/_sim/faults", json={"error_rate": 1.0})
    r = b1.call("GET", "Orders")
    assert r.status_code == 500
    b1.http.post("/_sim/reset")
    assert b1.sim.records["BusinessPartners"] == {} and b1.sim.sessions == {}


def test_a_bad_seed_names_what_was_wrong() -> None:
    b = B1()
    r = b.http.post("/_sim/seed", json={"items": [{"ItemCode": "x", "Colour": "red"}]})
    assert r.status_code == 400 and "Property 'Colour' of 'Item' is invalid" in r.json()["error"]


def test_sample_seed_loads() -> None:
    b = B1()
    made = b.seed(**sap_b1.sample_seed())
    assert "24-MB01" in made["items"] and b.sim.tax_codes == {"EX": 0}
