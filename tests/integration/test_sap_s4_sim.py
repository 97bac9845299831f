"""The SAP S/4HANA sim speaks Gateway's OData v2 as SAP documents it: CSRF, Basic auth, the
``{"d": ...}`` envelope, ETags with If-Match, paging with ``__next``, the deep insert SAP's recorded
request sends (tests/fixtures/sap_s4/API_SALES_ORDER_SRV.http), and the warehouse's and billing
clerk's day (delivery, goods issue, billing). Every answer here is checked against the metadata and
every error against Gateway's body (tests/support/sap_s4_sim.py)."""

from __future__ import annotations

import base64
import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient

from sandbox.sap_s4_clerk import SapS4Clerk
from sandbox.sims import sap_s4
from tests.support.sap_s4_sim import AUTH, BIL, DLV, FIXTURES, S4, SO, assert_answer, assert_error


def recorded_create() -> dict[str, Any]:
    """The body of the recorded ``POST …/A_SalesOrder`` (the ``.http`` file's last request)."""
    text = (FIXTURES / "API_SALES_ORDER_SRV.http").read_text()
    request = text.split("### Create Salesorder", 1)[1]
    assert request.lstrip().startswith("POST {{$dotenv s4hana}}/sap/opu/odata/sap/API_SALES_ORDER_SRV/A_SalesOrder")
    return dict(json.loads(request[request.index("\n{") :]))


def recorded_fetch_header() -> tuple[str, str]:
    """The header the recorded CSRF fetch sends (``X-CSRF-Token: fetch``, lower case)."""
    text = (FIXTURES / "API_SALES_ORDER_SRV.http").read_text()
    block = text.split("# @name fetchCSRF", 1)[1].split("###", 1)[0]
    name, value = re.search(r"^(X-CSRF-Token):\s*(\S+)$", block, re.M).groups()  # type: ignore[union-attr]
    return name, value


@pytest.fixture
def s4() -> S4:
    s = S4()
    s.seed(
        plants=[{"Plant": "1710", "ShippingPoint": "1710"}],
        customers=[{"Customer": "USCU_S12", "Currency": "USD", "PaymentTerms": "0001"}],
        materials=[
            {"Material": "MZ-FG-M550", "Price": "1500.00", "Unit": "PC", "Plant": "1710", "Text": "M550 Bike"},
            {"Material": "24-MB01", "Price": "34", "Unit": "PC", "Plant": "1710"},
        ],
    )
    return s


def order_body(po: str = "#1001", **extra: Any) -> dict[str, Any]:
    body = recorded_create()
    body["PurchaseOrderByCustomer"] = po
    body.update(extra)
    return body


def create(s4: S4, body: dict[str, Any]) -> dict[str, Any]:
    r = s4.call("POST", SO, "A_SalesOrder", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json()["d"])


# -- CSRF and auth -----------------------------------------------------------------------------


def test_the_recorded_csrf_fetch_then_deep_insert_creates_the_order(s4: S4) -> None:
    name, value = recorded_fetch_header()
    assert (name, value) == ("X-CSRF-Token", "fetch")  # lower case, as recorded
    fetch = s4.http.head(f"{sap_s4.ROOT}{SO}/", auth=AUTH, headers={name: value})
    assert fetch.status_code == 200 and fetch.content == b""
    token = fetch.headers["x-csrf-token"]
    assert sap_s4.SESSION_COOKIE in fetch.cookies and "sap-usercontext" in fetch.headers.get("set-cookie", "")
    r = s4.call("POST", SO, "A_SalesOrder", json=recorded_create(), headers={"X-CSRF-Token": token})
    assert r.status_code == 201, r.text
    d = r.json()["d"]
    assert d["SoldToParty"] == "USCU_S12" and d["SalesOrderType"] == "ZCM"
    (item,) = d["to_Item"]["results"]
    assert (item["SalesOrderItem"], item["Material"], item["RequestedQuantity"]) == ("10", "MZ-FG-M550", "1.000")
    assert (item["NetAmount"], d["TotalNetAmount"]) == ("1500.00", "1500.00")
    assert r.headers["location"].endswith(f"/A_SalesOrder('{d['SalesOrder']}')")
    assert r.headers["etag"] == d["__metadata"]["etag"]
    assert d["to_Partner"] == {"__deferred": {"uri": f"{d['__metadata']['uri']}/to_Partner"}}


def test_a_write_without_the_token_or_without_the_cookies_is_403_required(s4: S4) -> None:
    r = s4.call("POST", SO, "A_SalesOrder", json=order_body(), headers={"X-CSRF-Token": "made-up"})
    assert (r.status_code, r.headers["x-csrf-token"], r.text) == (403, "Required", "CSRF token validation failed")
    r = s4.http.post(
        f"{sap_s4.ROOT}{SO}/A_SalesOrder", auth=AUTH, json=order_body(), headers={"Accept": "application/json"}
    )
    assert (r.status_code, r.headers["x-csrf-token"]) == (403, "Required")
    token = s4.token(SO)
    cookieless = TestClient(s4.app)  # the token alone, without the session cookie it belongs to
    r = cookieless.post(
        f"{sap_s4.ROOT}{SO}/A_SalesOrder",
        auth=AUTH,
        json=order_body(),
        headers={"X-CSRF-Token": token, "Accept": "application/json"},
    )
    assert (r.status_code, r.headers["x-csrf-token"]) == (403, "Required")
    assert s4.sim.orders == {}
    assert create(s4, order_body())["SalesOrder"] == "1"


def test_tokens_are_per_service_expire_and_can_be_refused_at_random(s4: S4) -> None:
    token = s4.token(SO)
    r = s4.call("POST", DLV, "A_OutbDeliveryHeader", json={}, headers={"X-CSRF-Token": token})
    assert r.status_code == 403  # the sales order service's token is not the delivery service's
    assert s4.http.post("/_sim/csrf/expire").json() == {"expired": 1}
    assert s4.call("POST", SO, "A_SalesOrder", json=order_body()).status_code == 403
    s4.tokens.clear()
    assert s4.call("POST", SO, "A_SalesOrder", json=order_body()).status_code == 201
    s4.tick(seconds=1801)  # csrf_token_ttl_s
    assert s4.call("POST", SO, "A_SalesOrder", json=order_body("#1002")).status_code == 403
    s4.tokens.clear()
    s4.config(csrf_mismatch_rate=1.0)
    assert s4.call("POST", SO, "A_SalesOrder", json=order_body("#1002")).status_code == 403
    s4.config(csrf_mismatch_rate=0.0)
    assert s4.call("POST", SO, "A_SalesOrder", json=order_body("#1002")).status_code == 201


def test_the_same_session_fetches_the_same_token_and_a_get_fetches_too(s4: S4) -> None:
    first = s4.token(SO)
    r = s4.http.get(f"{sap_s4.ROOT}{SO}/", auth=AUTH, headers={"x-csrf-token": "FETCH", "Accept": "application/json"})
    assert r.headers["x-csrf-token"] == first
    assert r.json() == {"d": {"EntitySets": sorted(s4.sim.meta[SO].entity_sets)}}


def test_basic_auth_is_required(s4: S4) -> None:
    assert s4.call("GET", SO, "A_SalesOrder", auth=("ERPSYNC", "wrong")).status_code == 401
    r = s4.http.get(f"{sap_s4.ROOT}{SO}/A_SalesOrder", headers={"Accept": "application/json"})
    assert r.status_code == 401 and "Basic" in r.headers["www-authenticate"]


def test_json_only(s4: S4) -> None:
    r = s4.http.get(f"{sap_s4.ROOT}{SO}/A_SalesOrder", auth=AUTH)
    assert r.status_code == 406
    assert_error(r.json())
    assert s4.http.get(f"{sap_s4.ROOT}{SO}/A_SalesOrder?$format=json", auth=AUTH).status_code == 200
    assert (
        s4.http.get(f"{sap_s4.ROOT}{SO}/$metadata", auth=AUTH).content
        == (FIXTURES / "API_SALES_ORDER_SRV.edmx").read_bytes()
    )


# -- sales orders --------------------------------------------------------------------------------


def test_to_item_as_a_bare_array_is_taken_too(s4: S4) -> None:
    body = order_body()
    body["to_Item"] = body["to_Item"]["results"]
    d = create(s4, body)
    assert [i["SalesOrderItem"] for i in d["to_Item"]["results"]] == ["10"]


def test_purchase_order_by_customer_of_36_characters_is_refused_with_the_s4_error(s4: S4) -> None:
    r = s4.call("POST", SO, "A_SalesOrder", json=order_body("#" + "9" * 35))
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "SLS_LORD/033" and "PurchaseOrderByCustomer" in error["message"]["value"]
    (detail,) = error["innererror"]["errordetails"]
    assert (detail["propertyref"], detail["severity"]) == ("PurchaseOrderByCustomer", "error")
    assert "36 characters, more than MaxLength 35" in detail["message"]
    assert error["innererror"]["application"]["service_id"] == "API_SALES_ORDER_SRV"
    assert s4.sim.orders == {}
    assert create(s4, order_body("#" + "9" * 34))["PurchaseOrderByCustomer"] == "#" + "9" * 34


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"Frobnicate": "x"}, "A_SalesOrderType.Frobnicate: not a property of A_SalesOrderType"),
        ({"TotalNetAmount": "10.00"}, "A_SalesOrderType.TotalNetAmount: not creatable"),
        ({"ExternalDocumentID": "77"}, "A_SalesOrderType.ExternalDocumentID: not creatable"),
        ({"SalesOrder": "77"}, "numbers sales orders internally"),
    ],
)
def test_a_body_the_metadata_does_not_allow_is_refused(s4: S4, change: dict[str, Any], problem: str) -> None:
    r = s4.call("POST", SO, "A_SalesOrder", json=order_body(**change))
    assert r.status_code == 400 and problem in r.json()["error"]["message"]["value"], r.text
    assert s4.sim.orders == {}


def test_a_decimal_sent_as_a_number_is_refused(s4: S4) -> None:
    body = order_body()
    body["to_Item"]["results"][0]["RequestedQuantity"] = 1
    r = s4.call("POST", SO, "A_SalesOrder", json=body)
    assert r.status_code == 400
    assert "RequestedQuantity: expected a number as a string (Edm.Decimal), got 1" in r.text


def test_conditions_price_the_items_and_the_header_is_their_sum(s4: S4) -> None:
    body = order_body()
    body["to_Item"]["results"] = [
        {
            "Material": "MZ-FG-M550",
            "RequestedQuantity": "2",
            "to_PricingElement": {
                "results": [
                    {"ConditionType": "PR00", "ConditionRateValue": "12.50", "ConditionCurrency": "USD"},
                    {"ConditionType": "RB00", "ConditionRateValue": "-1.00", "ConditionCurrency": "USD"},
                    {"ConditionType": "HD00", "ConditionRateValue": "5.00", "ConditionCurrency": "USD"},
                ]
            },
        },
        {"Material": "24-mb01", "RequestedQuantity": "3"},  # no price: the material's; upper-cased
    ]
    body["to_Partner"] = {"results": [{"PartnerFunction": "WE", "Customer": "USCU_S12"}]}
    d = create(s4, body)
    first, second = d["to_Item"]["results"]
    assert (first["SalesOrderItem"], first["NetAmount"]) == ("10", "29.00")  # 25.00 - 1.00 + 5.00
    amounts = [c["ConditionAmount"] for c in first["to_PricingElement"]["results"]]
    assert amounts == ["25.00", "-1.00", "5.00"]
    assert (second["SalesOrderItem"], second["Material"], second["NetAmount"]) == ("20", "24-MB01", "102.00")
    (auto,) = second["to_PricingElement"]["results"]
    assert (auto["ConditionType"], auto["ConditionRateValue"]) == ("PR00", "34.00")
    assert d["TotalNetAmount"] == "131.00"
    partners = {p["PartnerFunction"]: p["Customer"] for p in d["to_Partner"]["results"]}
    assert partners == {"AG": "USCU_S12", "WE": "USCU_S12"}
    body["to_Item"]["results"][0]["to_PricingElement"]["results"][0]["ConditionType"] = "ZZ99"
    r = s4.call("POST", SO, "A_SalesOrder", json=body)
    assert r.status_code == 400 and "ZZ99" in r.json()["error"]["message"]["value"]


def test_an_unknown_sold_to_or_material_is_refused(s4: S4) -> None:
    r = s4.call("POST", SO, "A_SalesOrder", json=order_body(SoldToParty="NOPE"))
    assert r.status_code == 400 and "Sold-to party NOPE" in r.json()["error"]["message"]["value"]
    body = order_body()
    body["to_Item"]["results"][0]["Material"] = "NOPE"
    r = s4.call("POST", SO, "A_SalesOrder", json=body)
    assert r.status_code == 400 and "Material NOPE" in r.json()["error"]["message"]["value"]


def test_a_patch_needs_the_current_etag(s4: S4) -> None:
    d = create(s4, order_body())
    etag = d["__metadata"]["etag"]
    assert re.fullmatch(r"W/\"datetimeoffset'2025-03-01T14%3A05%3A00\.0000000Z'\"", etag), etag
    assert d["LastChangeDateTime"] == "/Date(1740837900000+0000)/"
    path = f"A_SalesOrder('{d['SalesOrder']}')"
    r = s4.call("PATCH", SO, path, json={"ShippingCondition": "01"})
    assert r.status_code == 428
    s4.tick(seconds=5)
    assert s4.call("PATCH", SO, path, json={"ShippingCondition": "01"}, headers={"If-Match": etag}).status_code == 204
    read = s4.call("GET", SO, path)
    new = read.json()["d"]["__metadata"]["etag"]
    assert read.headers["etag"] == new != etag and "14%3A05%3A05" in new
    r = s4.call("PATCH", SO, path, json={"ShippingCondition": "02"}, headers={"If-Match": etag})
    assert r.status_code == 412
    assert s4.call("PATCH", SO, path, json={"TotalNetAmount": "1.00"}, headers={"If-Match": new}).status_code == 400
    assert s4.call("PATCH", SO, path, json={"to_Item": []}, headers={"If-Match": new}).status_code == 400
    assert s4.call("PATCH", SO, path, json={"ShippingCondition": "02"}, headers={"If-Match": "*"}).status_code == 204
    assert s4.call("GET", SO, path).json()["d"]["ShippingCondition"] == "02"


def test_an_item_is_rejected_by_patch_and_leaves_the_totals(s4: S4) -> None:
    body = order_body()
    body["to_Item"]["results"].append({"Material": "24-MB01", "RequestedQuantity": "1"})
    d = create(s4, body)
    path = f"A_SalesOrderItem(SalesOrder='{d['SalesOrder']}',SalesOrderItem='20')"
    assert s4.call("PATCH", SO, path, json={"SalesDocumentRjcnReason": "Z1"}).status_code == 204
    order = s4.call("GET", SO, f"A_SalesOrder('{d['SalesOrder']}')?$expand=to_Item").json()["d"]
    assert (order["TotalNetAmount"], order["OverallSDDocumentRejectionSts"]) == ("1500.00", "B")
    assert order["to_Item"]["results"][1]["SDProcessStatus"] == "C"
    item = s4.call("GET", SO, path).json()["d"]
    assert item["SalesDocumentRjcnReason"] == "Z1" and "etag" not in item["__metadata"]
    nav = s4.call("GET", SO, f"A_SalesOrder('{d['SalesOrder']}')/to_Item").json()["d"]["results"]
    assert [i["SalesOrderItem"] for i in nav] == ["10", "20"]


def test_lists_page_with_next_and_count_as_a_string(s4: S4) -> None:
    for n in range(5):
        create(s4, order_body(f"#{2000 + n}"))
    s4.config(page_size=2)
    path = "A_SalesOrder?$inlinecount=allpages&$orderby=SalesOrder desc&$select=SalesOrder,PurchaseOrderByCustomer"
    seen, pages = [], 0
    while path:
        d = s4.call("GET", SO, path).json()["d"]
        assert d["__count"] == "5"
        seen += [r["PurchaseOrderByCustomer"] for r in d["results"]]
        assert all(set(r) == {"__metadata", "SalesOrder", "PurchaseOrderByCustomer"} for r in d["results"])
        pages += 1
        nxt = d.get("__next")
        if nxt:
            assert "$skiptoken=" in nxt and nxt.startswith("http://testserver/sap/opu/odata/sap/API_SALES_ORDER_SRV/")
            path = nxt.split(f"{SO}/", 1)[1]
        else:
            path = ""
    assert (pages, seen) == (3, ["#2004", "#2003", "#2002", "#2001", "#2000"])
    d = s4.call("GET", SO, "A_SalesOrder?$top=3&$skip=1&$orderby=SalesOrder").json()["d"]
    assert [r["SalesOrder"] for r in d["results"]] == ["2", "3"] and "$top=3" in d["__next"]
    assert s4.call("GET", SO, "A_SalesOrder/$count").text == "5"
    assert s4.http.get(f"{sap_s4.ROOT}{SO}/A_SalesOrder/$count", auth=AUTH).text == "5"  # text: no Accept needed


def test_filter_on_last_change_date_time_and_the_other_literals(s4: S4) -> None:
    s4.config(csrf_token_ttl_s=10**7)  # the clock moves a day
    create(s4, order_body("#A"))
    s4.tick(hours=1)
    create(s4, order_body("#B"))
    s4.tick(days=1)
    create(s4, order_body("O'Hara"))

    def pos(query: str) -> list[str]:
        r = s4.call("GET", SO, "A_SalesOrder", params={"$filter": query, "$orderby": "LastChangeDateTime"})
        assert r.status_code == 200, r.text
        return [x["PurchaseOrderByCustomer"] for x in r.json()["d"]["results"]]

    assert pos("LastChangeDateTime gt datetimeoffset'2025-03-01T14:05:00Z'") == ["#B", "O'Hara"]
    assert pos("LastChangeDateTime ge datetimeoffset'2025-03-01T14:05:00.0000000Z'") == ["#A", "#B", "O'Hara"]
    assert pos("LastChangeDate eq datetime'2025-03-01T00:00:00'") == ["#A", "#B"]
    assert pos("PurchaseOrderByCustomer eq 'O''Hara'") == ["O'Hara"]
    assert pos("(PurchaseOrderByCustomer eq '#A' or PurchaseOrderByCustomer eq '#B') and SalesOrder ne '1'") == ["#B"]
    assert pos("TotalNetAmount ge 1500 and SoldToParty eq 'USCU_S12'") == ["#A", "#B", "O'Hara"]
    r = s4.call("GET", SO, "A_SalesOrder?$filter=Nope eq 'x'")
    assert r.status_code == 400 and "Nope" in r.json()["error"]["message"]["value"]
    assert s4.call("GET", SO, "A_SalesOrder?$filter=LastChangeDateTime gt '2025'").status_code == 400
    assert s4.call("GET", SO, "A_SalesOrder?$filter=SalesOrder eq").status_code == 400


# -- the warehouse and the billing clerk ------------------------------------------------------------


def test_order_to_delivery_to_goods_issue_to_billing(s4: S4) -> None:
    s4.config(tax_rate_percent="7.5")
    d = create(s4, order_body())
    clerk = SapS4Clerk(s4.http)
    delivery = clerk.deliver(d["SalesOrder"], "1Z999AA10123456784")
    assert delivery["BillOfLading"] == "1Z999AA10123456784"
    assert (delivery["OverallGoodsMovementStatus"], delivery["DeliveryVersion"]) == ("C", "0003")
    assert delivery["__metadata"]["etag"] == "W/\"'0003'\""
    assert delivery["ActualGoodsMovementDate"] == "/Date(1740787200000)/"  # the day, at midnight
    assert delivery["LastChangeDate"] == "/Date(1740787200000)/"
    (row,) = delivery["to_DeliveryDocumentItem"]["results"]
    assert (row["ReferenceSDDocument"], row["ReferenceSDDocumentItem"], row["ActualDeliveryQuantity"]) == (
        d["SalesOrder"],
        "000010",
        "1.000",
    )
    order = s4.call("GET", SO, f"A_SalesOrder('{d['SalesOrder']}')?$expand=to_Item").json()["d"]
    assert (order["OverallTotalDeliveryStatus"], order["to_Item"]["results"][0]["DeliveryStatus"]) == ("C", "C")
    billing = clerk.bill(delivery["DeliveryDocument"])
    assert_answer(BIL, "A_BillingDocument('x')", {"d": billing})
    assert (billing["TotalNetAmount"], billing["TaxAmount"], billing["TotalGrossAmount"]) == (
        "1500.00",
        "112.50",
        "1612.50",
    )
    (item,) = billing["to_Item"]["results"]
    assert (item["SalesDocument"], item["SalesDocumentItem"]) == (d["SalesOrder"], "10")
    assert (item["ReferenceSDDocument"], item["ReferenceSDDocumentCategory"]) == (delivery["DeliveryDocument"], "J")
    assert (billing["AccountingPostingStatus"], billing["InvoiceClearingStatus"]) == ("C", "A")
    assert billing["PurchaseOrderByCustomer"] == "#1001" and billing["__metadata"]["etag"].startswith(
        "W/\"datetimeoffset'"
    )
    found = s4.call(
        "GET",
        BIL,
        "A_BillingDocument?$filter=LastChangeDateTime ge datetimeoffset'2025-03-01T00:00:00Z'&$expand=to_Item",
    ).json()["d"]["results"]
    assert [b["BillingDocument"] for b in found] == [billing["BillingDocument"]]
    s4.tick(minutes=1)
    cleared = clerk.clear(billing["BillingDocument"])
    assert cleared["InvoiceClearingStatus"] == "C" and cleared["LastChangeDateTime"] != billing["LastChangeDateTime"]
    again = s4.http.post("/_sim/billing", json={"deliveries": [delivery["DeliveryDocument"]]})
    assert again.status_code == 400 and "already billed" in again.json()["error"]["message"]["value"]


def test_delivery_refuses_bill_of_lading_on_create_and_over_delivery(s4: S4) -> None:
    d = create(s4, order_body())
    item = {"ReferenceSDDocument": d["SalesOrder"], "ReferenceSDDocumentItem": "10"}
    r = s4.call("POST", DLV, "A_OutbDeliveryHeader", json={"BillOfLading": "1Z", "to_DeliveryDocumentItem": [item]})
    assert r.status_code == 400 and "BillOfLading: not creatable" in r.text
    r = s4.call(
        "POST", DLV, "A_OutbDeliveryHeader", json={"to_DeliveryDocumentItem": [{**item, "ActualDeliveryQuantity": "2"}]}
    )
    assert r.status_code == 400 and "not within the 1.000 open" in r.text
    r = s4.call("POST", DLV, "A_OutbDeliveryItem", json=item)
    assert r.status_code == 405  # items only through the header's deep insert
    assert s4.sim.deliveries == {}
    r = s4.call("POST", DLV, "A_OutbDeliveryHeader", json={"to_DeliveryDocumentItem": {"results": [item]}})
    assert r.status_code == 201
    created = r.json()["d"]
    assert created["LastChangeDate"] is None and created["DeliveryVersion"] == "0001"
    assert r.headers["etag"] == "W/\"'0001'\""
    r = s4.call("POST", DLV, "A_OutbDeliveryHeader", json={"to_DeliveryDocumentItem": {"results": [item]}})
    assert r.status_code == 400 and "not within the 0.000 open" in r.text


def test_delivery_patch_and_goods_issue_need_the_delivery_version(s4: S4) -> None:
    d = create(s4, order_body())
    item = {"ReferenceSDDocument": d["SalesOrder"], "ReferenceSDDocumentItem": "10"}
    number = s4.call("POST", DLV, "A_OutbDeliveryHeader", json={"to_DeliveryDocumentItem": [item]}).json()["d"][
        "DeliveryDocument"
    ]
    path = f"A_OutbDeliveryHeader('{number}')"
    assert s4.call("PATCH", DLV, path, json={"BillOfLading": "1Z"}).status_code == 428
    assert (
        s4.call("PATCH", DLV, path, json={"BillOfLading": "1Z"}, headers={"If-Match": "W/\"'0001'\""}).status_code
        == 204
    )
    assert (
        s4.call("PATCH", DLV, path, json={"BillOfLading": "X"}, headers={"If-Match": "W/\"'0001'\""}).status_code == 412
    )
    assert (
        s4.call("PATCH", DLV, path, json={"SoldToParty": "X"}, headers={"If-Match": "W/\"'0002'\""}).status_code == 400
    )
    pgi = f"PostGoodsIssue?DeliveryDocument='{number}'"
    assert s4.call("POST", DLV, pgi).status_code == 428
    assert s4.call("POST", DLV, pgi, headers={"If-Match": "W/\"'0001'\""}).status_code == 412
    r = s4.call("POST", DLV, pgi, headers={"If-Match": "W/\"'0002'\""})
    assert r.status_code == 200
    (report,) = r.json()["d"]["results"]
    assert (report["DeliveryDocument"], report["DeliveryDocumentItem"], report["Material"]) == (
        number,
        "000010",
        "MZ-FG-M550",
    )
    r = s4.call("POST", DLV, pgi, headers={"If-Match": "W/\"'0003'\""})
    assert r.status_code == 400 and "already been posted" in r.json()["error"]["message"]["value"]
    shipped = s4.call(
        "GET",
        DLV,
        "A_OutbDeliveryHeader",
        params={"$filter": "LastChangeDate ge datetime'2025-03-01T00:00:00' and OverallGoodsMovementStatus eq 'C'"},
    ).json()["d"]["results"]
    assert [x["DeliveryDocument"] for x in shipped] == [number]
    reverse = f"ReverseGoodsIssue?DeliveryDocument='{number}'"
    assert s4.call("POST", DLV, reverse, headers={"If-Match": "W/\"'0003'\""}).status_code == 200
    assert s4.call("GET", DLV, path).json()["d"]["OverallGoodsMovementStatus"] == "A"
    r = s4.http.post("/_sim/billing", json={"deliveries": [number]})
    assert r.status_code == 400 and "goods issue not posted" in r.json()["error"]["message"]["value"]


def test_billing_documents_are_read_only_and_cancel_and_pdf_work(s4: S4) -> None:
    d = create(s4, order_body())
    clerk = SapS4Clerk(s4.http)
    delivery = clerk.deliver(d["SalesOrder"], "1Z1")
    billing = clerk.bill(delivery["DeliveryDocument"])
    number = billing["BillingDocument"]
    r = s4.call("POST", BIL, "A_BillingDocument", json={"BillingDocumentType": "F2"})
    assert r.status_code == 405
    r = s4.call("GET", BIL, f"GetPDF?BillingDocument='{number}'")
    assert base64.b64decode(r.json()["d"]["GetPDF"]["BillingDocumentBinary"]).startswith(b"%PDF")
    s4.tick(minutes=1)
    r = s4.call("POST", BIL, f"Cancel?BillingDocument='{number}'")
    (result,) = r.json()["d"]["results"]
    assert result["BillingDocument"] == number and result["SystemMessageType"] == "S"
    cancelled = s4.call("GET", BIL, f"A_BillingDocument('{number}')").json()["d"]
    assert (
        cancelled["BillingDocumentIsCancelled"] is True
        and cancelled["LastChangeDateTime"] != billing["LastChangeDateTime"]
    )
    s1 = s4.call("GET", BIL, f"A_BillingDocument('{result['CancellationBillingDocument']}')").json()["d"]
    assert (s1["BillingDocumentType"], s1["CancelledBillingDocument"]) == ("S1", number)
    assert s4.call("POST", BIL, f"Cancel?BillingDocument='{number}'").status_code == 400
    assert clerk.bill(delivery["DeliveryDocument"])["BillingDocument"] != number  # billable again


# -- control -----------------------------------------------------------------------------------------


def test_a_lost_response_still_applies_the_write(s4: S4) -> None:
    s4.token(SO)  # fetched before the fault: a HEAD is not a write
    s4.http.post("/_sim/faults", json={"lost_response_rate": 1.0})
    r = s4.call("POST", SO, "A_SalesOrder", json=order_body("#LOST"))
    assert r.status_code == 504
    assert_error(r.json())
    s4.http.delete("/_sim/faults")
    found = s4.call("GET", SO, "A_SalesOrder?$filter=PurchaseOrderByCustomer eq '%23LOST'").json()["d"]["results"]
    assert len(found) == 1
    log = s4.http.get("/_sim/requests").json()["requests"]
    lost = [x for x in log if x["fault"] == "lost_response"]
    assert [(x["method"], x["status"], x["applied_status"]) for x in lost] == [("POST", 504, 201)]


def test_sap_message_warnings_and_the_body_log(s4: S4) -> None:
    s4.config(sap_message_rate=1.0, seed=1)
    r = s4.call("POST", SO, "A_SalesOrder", json=order_body())
    assert r.status_code == 201
    warning = json.loads(r.headers["sap-message"])
    assert warning["severity"] == "warning" and {"code", "message", "details"} <= set(warning)
    assert "sap-message" not in s4.call("GET", SO, "A_SalesOrder").headers
    logged = s4.http.get("/_sim/bodies").json()["requests"]
    post = next(x for x in logged if x["method"] == "POST")
    assert post["path"].endswith("/A_SalesOrder") and post["body"] == order_body()


def test_the_sample_seed_takes_the_recorded_create(s4: S4) -> None:
    fresh = S4()
    fresh.seed(**sap_s4.sample_seed())
    assert create(fresh, recorded_create())["TotalNetAmount"] == "1500.00"
    materials = {m["Material"] for m in sap_s4.sample_seed()["materials"]}
    assert "24-MB01" in materials and all(m == m.upper() for m in materials)


def test_a_next_link_keeps_the_filter(s4: S4) -> None:
    for n in range(3):
        create(s4, order_body(f"#N{n}"))
    s4.config(page_size=1)
    d = s4.call("GET", SO, "A_SalesOrder?$filter=SoldToParty eq 'USCU_S12'&$top=2").json()["d"]
    query = parse_qs(urlsplit(d["__next"]).query)
    assert query["$filter"] == ["SoldToParty eq 'USCU_S12'"] and query["$skiptoken"] == ["1"]
