"""The metadata checker's ``odata_v2`` dialect (sandbox/sims/edmx.py) on SAP's sales order metadata
and the hand-made delivery, billing, business partner, credit memo request, customer return,
product, pricing and stock files
(tests/fixtures/sap_s4, see SOURCES.md): SAP's recorded
deep insert is a valid create; a made-up field, a decimal sent as a number, a value longer than its
``MaxLength`` or a field SAP marks not creatable is named; and every answer the S/4 sim gives in a
scripted order -> delivery -> goods issue -> billing run (with partners and the catalog) is valid
against the metadata."""

from __future__ import annotations

import copy
import json
import re
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from starlette.testclient import TestClient

from sandbox.sap_s4_clerk import SapS4Clerk
from sandbox.sims import sap_s4
from tests.support.sap_s4_sim import (
    BIL,
    DLV,
    FIXTURES,
    S4,
    SO,
    S4ShapeError,
    assert_answer,
    assert_error,
    metadata,
)


def recorded_create() -> dict[str, Any]:
    text = (FIXTURES / "API_SALES_ORDER_SRV.http").read_text().split("### Create Salesorder", 1)[1]
    return dict(json.loads(text[text.index("\n{") :]))


@pytest.mark.parametrize("service", sorted(sap_s4.SERVICES))
def test_the_sim_serves_the_fixture_metadata(service: str) -> None:
    name = sap_s4.SERVICES[service]
    assert (sap_s4.METADATA_DIR / name).read_bytes() == (FIXTURES / name).read_bytes()


def test_the_facets_the_sim_relies_on_are_read() -> None:
    so = metadata(SO)
    order = so.types["A_SalesOrderType"]
    assert so.namespace == "API_SALES_ORDER_SRV" and order.keys == ("SalesOrder",)
    assert order.props["PurchaseOrderByCustomer"].max_length == 35
    assert [p.name for p in order.etag_props] == ["LastChangeDateTime"]
    assert (order.props["TotalNetAmount"].precision, order.props["TotalNetAmount"].scale) == (16, 3)
    assert not order.props["TotalNetAmount"].creatable and not order.props["ExternalDocumentID"].updatable
    assert order.nav_targets["to_Item"] == ("A_SalesOrderItemType", True)
    assert so.types["A_SalesOrderItemType"].nav_targets["to_SalesOrder"] == ("A_SalesOrderType", False)
    assert so.set_flags["A_SalesOrderHeaderPartner"] == (False, True)
    assert so.set_flags["A_SalesOrderScheduleLine"] == (False, False)
    dlv = metadata(DLV).types["A_OutbDeliveryHeaderType"]
    assert metadata(DLV).namespace == "API_OUTBOUND_DELIVERY_SRV"
    bol = dlv.props["BillOfLading"]
    assert (bol.creatable, bol.updatable, bol.max_length) == (False, True, 35)
    assert [p.name for p in dlv.etag_props] == ["DeliveryVersion"]
    assert "LastChangeDateTime" not in dlv.props and dlv.props["LastChangeDate"].type == "Edm.DateTime"
    assert metadata(DLV).set_flags["A_OutbDeliveryItem"] == (False, True)
    pgi = metadata(DLV).functions["PostGoodsIssue"]
    assert (pgi.http_method, pgi.params) == ("POST", {"DeliveryDocument": "Edm.String"})
    bil = metadata(BIL)
    assert bil.set_flags["A_BillingDocument"] == (False, False) == bil.set_flags["A_BillingDocumentItem"]
    assert (bil.functions["Cancel"].http_method, bil.functions["GetPDF"].http_method) == ("POST", "GET")
    assert [p.name for p in bil.types["A_BillingDocumentType"].etag_props] == ["LastChangeDateTime"]


def test_the_b1_dialect_is_unchanged_by_the_sap_facets() -> None:
    """The S/4 file read with the B1 rules: no MaxLength check, decimals as numbers (B1 v1's)."""
    body = {"PurchaseOrderByCustomer": "x" * 40, "TotalNetAmount": 1}
    assert metadata(SO).check_request("A_SalesOrderType", body, "update") == []


# -- requests ------------------------------------------------------------------------------------------


def test_the_recorded_deep_insert_is_a_valid_create() -> None:
    body = recorded_create()
    assert metadata(SO).check_request("A_SalesOrderType", body, "create", "odata_v2") == []
    bare = copy.deepcopy(body)
    bare["to_Item"] = bare["to_Item"]["results"]
    assert metadata(SO).check_request("A_SalesOrderType", bare, "create", "odata_v2") == []


def test_a_made_up_field_a_number_decimal_a_long_value_and_a_read_only_field_are_named() -> None:
    body = recorded_create()
    body["Frobnicate"] = "x"
    body["PurchaseOrderByCustomer"] = "#" * 36
    body["TotalNetAmount"] = "1.00"
    item = body["to_Item"]["results"][0]
    item["RequestedQuantity"] = 1
    item["Colour"] = "red"
    item["to_PricingElement"] = {"results": [{"ConditionType": "PR00", "ConditionRateValue": 12.5}]}
    assert metadata(SO).check_request("A_SalesOrderType", body, "create", "odata_v2") == [
        "A_SalesOrderType.to_Item[0].RequestedQuantity: expected a number as a string (Edm.Decimal), got 1",
        "A_SalesOrderType.to_Item[0].Colour: not a property of A_SalesOrderItemType",
        "A_SalesOrderType.to_Item[0].to_PricingElement[0].ConditionRateValue: "
        "expected a number as a string (Edm.Decimal), got 12.5",
        "A_SalesOrderType.Frobnicate: not a property of A_SalesOrderType",
        "A_SalesOrderType.PurchaseOrderByCustomer: 36 characters, more than MaxLength 35",
        "A_SalesOrderType.TotalNetAmount: not creatable (sap:creatable=false)",
    ]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"ExternalDocumentID": "x"}, "A_SalesOrderType.ExternalDocumentID: not updatable (sap:updatable=false)"),
        ({"to_Item": []}, "A_SalesOrderType.to_Item: a navigation property cannot be written in an update"),
        ({"RequestedDeliveryDate": "01/03/2025"}, "A_SalesOrderType.RequestedDeliveryDate: not a date (Edm.DateTime"),
        ({"CompleteDeliveryIsDefined": "X"}, "A_SalesOrderType.CompleteDeliveryIsDefined: expected true or false"),
        ({"AccountingExchangeRate": "1.123456"}, "does not fit Precision 9, Scale 5"),
    ],
)
def test_an_update_is_held_to_updatable_fields_and_types(body: dict[str, Any], problem: str) -> None:
    problems = metadata(SO).check_request("A_SalesOrderType", body, "update", "odata_v2")
    assert len(problems) == 1 and problem in problems[0], problems


def test_a_delivery_create_may_not_carry_the_bill_of_lading() -> None:
    body = {"BillOfLading": "1Z", "to_DeliveryDocumentItem": {"results": [{"ReferenceSDDocument": "1"}]}}
    assert metadata(DLV).check_request("A_OutbDeliveryHeaderType", body, "create", "odata_v2") == [
        "A_OutbDeliveryHeaderType.BillOfLading: not creatable (sap:creatable=false)"
    ]
    assert metadata(DLV).check_request("A_OutbDeliveryHeaderType", {"BillOfLading": "1Z"}, "update", "odata_v2") == []


# -- answers -------------------------------------------------------------------------------------------


def an_order_answer() -> dict[str, Any]:
    """A sim-made answer (not a recorded one) to break in the tests below."""
    s4 = S4()
    s4.seed(
        customers=[{"Customer": "USCU_S12"}],
        materials=[{"Material": "MZ-FG-M550", "Price": "1500"}],
        plants=[{"Plant": "1710"}],
    )
    r = s4.call("POST", SO, "A_SalesOrder", json=recorded_create())
    assert r.status_code == 201
    return dict(r.json())


@pytest.mark.parametrize(
    ("breaking", "problem"),
    [
        (lambda d: d.update(Frobnicate="x"), "A_SalesOrderType.Frobnicate: not a property of A_SalesOrderType"),
        (lambda d: d.update(TotalNetAmount=1500.0), "TotalNetAmount: expected a number as a string (Edm.Decimal)"),
        (lambda d: d.update(TotalNetAmount="1500.0001"), "does not fit Precision 16, Scale 3"),
        (lambda d: d.update(LastChangeDateTime="/Date(1740837900000)/"), "not a date (Edm.DateTimeOffset"),
        (lambda d: d.update(CreationDate="2025-03-01T00:00:00"), "not a date (Edm.DateTime"),
        (lambda d: d["__metadata"].pop("etag"), "so an etag is due"),
        (lambda d: d["__metadata"].update(type="API_SALES_ORDER_SRV.A_SalesOrder"), "__metadata.type"),
        (lambda d: d.update(to_Partner=[]), "to_Partner: expected {'results': [...]}"),
        (lambda d: d["to_Item"]["results"][0].update(NetAmount=1500), "to_Item[0].NetAmount: expected a number as a"),
        (lambda d: d["to_Item"]["results"][0]["__metadata"].update(etag='W/"x"'), "has no ConcurrencyMode"),
    ],
)
def test_a_broken_answer_is_named(breaking: Any, problem: str) -> None:
    body = an_order_answer()
    assert_answer(SO, "A_SalesOrder", body)
    broken = copy.deepcopy(body)
    breaking(broken["d"])
    with pytest.raises(S4ShapeError, match=re.escape(problem)):
        assert_answer(SO, "A_SalesOrder", broken)


def test_the_envelope_is_checked() -> None:
    row = an_order_answer()["d"]
    assert_answer(SO, "A_SalesOrder", {"d": {"results": [row], "__count": "1"}})
    with pytest.raises(S4ShapeError, match="__count: a count is a string of digits"):
        assert_answer(SO, "A_SalesOrder", {"d": {"results": [row], "__count": 1}})
    with pytest.raises(S4ShapeError, match="not an OData v2 answer"):
        assert_answer(SO, "A_SalesOrder", {"value": [row]})
    broken = copy.deepcopy(row)
    broken["TotalNetAmount"] = 1
    with pytest.raises(S4ShapeError, match=r"A_SalesOrderType\[1\]\.TotalNetAmount"):
        assert_answer(SO, "A_SalesOrder", {"d": {"results": [row, broken]}})
    with pytest.raises(S4ShapeError, match=r"d\.__next: not a string"):
        assert_answer(SO, "A_SalesOrder", {"d": {"results": [], "__next": 2}})


# -- every answer of a scripted run ----------------------------------------------------------------------


class Recorder:
    """Keeps every (method, URL, response) a client saw."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, httpx.URL, httpx.Response]] = []

    def __call__(self, response: httpx.Response) -> None:
        response.read()
        self.seen.append((response.request.method, response.request.url, response))


def test_every_answer_of_an_order_to_cash_run_is_valid() -> None:
    app = sap_s4.create_app()
    http = TestClient(app)
    recorder = Recorder()
    http.event_hooks = {"request": [], "response": [recorder]}
    assert http.post("/_sim/seed", json=sap_s4.sample_seed()).status_code == 200
    clerk = SapS4Clerk(http)
    body = recorded_create()
    body["PurchaseOrderByCustomer"] = "#000000042"
    body["to_Item"]["results"].append(
        {
            "Material": "24-MB01",
            "RequestedQuantity": "2",
            "to_PricingElement": {"results": [{"ConditionType": "PR00", "ConditionRateValue": "30.00"}]},
        }
    )
    body["to_Partner"] = {"results": [{"PartnerFunction": "WE", "Customer": "WEBSHOP"}]}
    order = clerk.request("POST", SO, "A_SalesOrder", json=body)
    number = order["SalesOrder"]
    clerk.request("GET", SO, f"A_SalesOrder('{number}')", params={"$expand": "to_Item/to_PricingElement,to_Partner"})
    clerk.request(
        "GET",
        SO,
        "A_SalesOrder",
        params={"$filter": "PurchaseOrderByCustomer eq '#000000042'", "$inlinecount": "allpages"},
    )
    clerk.request("GET", SO, f"A_SalesOrder('{number}')/to_Item")
    clerk.request(
        "PATCH", SO, f"A_SalesOrderItem(SalesOrder='{number}',SalesOrderItem='20')", json={"RequestedQuantity": "1"}
    )
    clerk.request("GET", SO, "A_SalesOrderItemPrElement")
    clerk.request("GET", SO, "A_SalesOrderHeaderPartner")
    delivery = clerk.deliver(number, "1Z999AA10123456784")
    clerk.request("GET", DLV, "A_OutbDeliveryItem")
    clerk.request(
        "GET", DLV, "A_OutbDeliveryHeader", params={"$filter": "LastChangeDate ge datetime'2000-01-01T00:00:00'"}
    )
    billing = clerk.bill(delivery["DeliveryDocument"])
    clerk.request(
        "GET", BIL, "A_BillingDocument", params={"$expand": "to_Item", "$orderby": "LastChangeDateTime,BillingDocument"}
    )
    clerk.request("GET", BIL, "A_BillingDocumentItem")
    clerk.request("GET", BIL, "GetPDF", params={"BillingDocument": f"'{billing['BillingDocument']}'"})
    clerk.request("POST", BIL, "Cancel", params={"BillingDocument": f"'{billing['BillingDocument']}'"})
    bp = sap_s4.PARTNERS
    partner = clerk.request(
        "POST",
        bp,
        "A_BusinessPartner",
        json={
            "BusinessPartnerCategory": "1",
            "FirstName": "Jane",
            "LastName": "Doe",
            "to_BusinessPartnerAddress": {
                "results": [
                    {
                        "CityName": "Springfield",
                        "Country": "US",
                        "to_EmailAddress": {"results": [{"EmailAddress": "jane@example.com"}]},
                        "to_PhoneNumber": {"results": [{"PhoneNumber": "2175550100"}]},
                    }
                ]
            },
            "to_BusinessPartnerRole": {"results": [{"BusinessPartnerRole": "FLCU01"}]},
            "to_Customer": {
                "to_CustomerSalesArea": {
                    "results": [{"SalesOrganization": "1710", "DistributionChannel": "10", "Division": "00"}]
                }
            },
        },
    )
    key = f"A_BusinessPartner('{partner['BusinessPartner']}')"
    expand = ",".join(
        (
            "to_BusinessPartnerAddress/to_EmailAddress",
            "to_BusinessPartnerAddress/to_PhoneNumber",
            "to_BusinessPartnerRole",
            "to_Customer/to_CustomerSalesArea",
        )
    )
    clerk.request("GET", bp, key, params={"$expand": expand})
    clerk.request("GET", bp, "A_AddressEmailAddress", params={"$filter": "SearchEmailAddress eq 'JANE@EXAMPLE.COM'"})
    clerk.request("GET", bp, "A_BusinessPartnerAddress", params={"$select": "BusinessPartner,AddressID"})
    clerk.request("PATCH", bp, key, json={"LastName": "Smith"})
    for entity_set in ("A_Customer", "A_CustomerSalesArea", "A_BusinessPartnerRole", "A_AddressPhoneNumber"):
        clerk.request("GET", bp, entity_set)
    # a credit memo request with reference to the order, its billing block lifted, read back
    cmr = sap_s4.CREDIT_MEMOS
    request = clerk.request(
        "POST",
        cmr,
        "A_CreditMemoRequest",
        json={
            "CreditMemoRequestType": "CR",
            "SalesOrganization": "1710",
            "DistributionChannel": "10",
            "OrganizationDivision": "00",
            "SoldToParty": body["SoldToParty"],
            "PurchaseOrderByCustomer": "#000000042-1",
            "AssignmentReference": "#000000042-1",
            "ReferenceSDDocument": number,
            "HeaderBillingBlockReason": "08",
            "to_Item": {
                "results": [{"Material": "24-MB01", "RequestedQuantity": "1", "ReferenceSDDocumentItem": "20"}]
            },
        },
    )
    cmr_key = f"A_CreditMemoRequest('{request['CreditMemoRequest']}')"
    clerk.request(
        "PATCH",
        cmr,
        cmr_key,
        json={"HeaderBillingBlockReason": ""},
        headers={"If-Match": request["__metadata"]["etag"]},
    )
    clerk.request("GET", cmr, cmr_key, params={"$expand": "to_Item/to_PricingElement"})
    clerk.request("GET", cmr, "A_CreditMemoRequest", params={"$filter": "PurchaseOrderByCustomer eq '#000000042-1'"})
    clerk.request("GET", cmr, "A_CreditMemoRequestItem")
    clerk.request("GET", cmr, "A_CreditMemoReqItemPrcgElmnt")
    billed = http.post("/_sim/billing", json={"credit_memo_request": request["CreditMemoRequest"]})
    assert billed.status_code == 201, billed.text
    # a customer return of the delivered order, received, read back; its credit memo billed
    ret = sap_s4.RETURNS
    made_return = clerk.request(
        "POST",
        ret,
        "A_CustomerReturn",
        json={
            "CustomerReturnType": "CBAR",
            "SalesOrganization": "1710",
            "DistributionChannel": "10",
            "OrganizationDivision": "00",
            "SoldToParty": body["SoldToParty"],
            "PurchaseOrderByCustomer": "RMA-42",
            "AssignmentReference": "RMA-42",
            "ReferenceSDDocument": number,
            "to_Item": {
                "results": [
                    {
                        "Material": "24-MB01",
                        "RequestedQuantity": "1",
                        "ReferenceSDDocumentItem": "20",
                        "ReturnReason": "101",
                    }
                ]
            },
        },
    )
    received = http.post(f"/_sim/returns/{made_return['CustomerReturn']}/receive", json={"items": {"10": "1"}})
    assert received.status_code == 200, received.text
    clerk.request(
        "GET",
        ret,
        f"A_CustomerReturn('{made_return['CustomerReturn']}')",
        params={"$expand": "to_Item/to_ScheduleLine"},
    )
    clerk.request("GET", ret, "A_CustomerReturn", params={"$filter": "PurchaseOrderByCustomer eq 'RMA-42'"})
    clerk.request("GET", ret, "A_CustomerReturnItem")
    clerk.request("GET", ret, "A_CustomerReturnScheduleLine")
    billed = http.post("/_sim/billing", json={"customer_return": made_return["CustomerReturn"]})
    assert billed.status_code == 201, billed.text
    # the catalog: a product and its list price with scales made and changed, read back every way
    products, pricing, stock = sap_s4.PRODUCTS, sap_s4.PRICING, sap_s4.STOCK
    clerk.request(
        "POST",
        products,
        "A_Product",
        json={
            "Product": "TG11",
            "ProductType": "HAWA",
            "BaseUnit": "PC",
            "GrossWeight": "1.250",
            "WeightUnit": "KG",
            "to_Description": {"results": [{"Language": "EN", "ProductDescription": "Trekking Glove"}]},
            "to_SalesDelivery": {"results": [{"ProductSalesOrg": "1710", "ProductDistributionChnl": "10"}]},
        },
    )
    clerk.request(
        "PATCH", products, "A_ProductDescription(Product='TG11',Language='EN')", json={"ProductDescription": "Glove"}
    )
    clerk.request("GET", products, "A_Product('TG11')", params={"$expand": "to_Description,to_SalesDelivery"})
    clerk.request(
        "GET", products, "A_Product", params={"$filter": "LastChangeDateTime ge datetimeoffset'2000-01-01T00:00:00Z'"}
    )
    clerk.request("GET", products, "A_ProductSalesDelivery", params={"$filter": "ProductSalesOrg eq '1710'"})
    clerk.request("GET", products, "A_ProductDescription")
    record = clerk.request(
        "POST",
        pricing,
        "A_SlsPrcgConditionRecord",
        json={
            "ConditionType": "PR00",
            "ConditionRateValue": "24.900",
            "ConditionRateValueUnit": "USD",
            "to_SlsPrcgCndnRecdValidity": {
                "results": [{"SalesOrganization": "1710", "DistributionChannel": "10", "Material": "TG11"}]
            },
            "to_SlsPrcgCndnRecordScale": {
                "results": [{"ConditionScaleQuantity": "50.000", "ConditionRateValue": "19.900"}]
            },
        },
    )
    path = f"A_SlsPrcgConditionRecord('{record['ConditionRecord']}')"
    clerk.request(
        "PATCH",
        pricing,
        path,
        json={"ConditionRateValue": "27.500"},
        headers={"If-Match": record["__metadata"]["etag"]},
    )
    clerk.request("GET", pricing, path, params={"$expand": "to_SlsPrcgCndnRecdValidity,to_SlsPrcgCndnRecordScale"})
    clerk.request(
        "GET",
        pricing,
        "A_SlsPrcgCndnRecdValidity",
        params={"$filter": "Material eq 'TG11'", "$expand": "to_SlsPrcgConditionRecord/to_SlsPrcgCndnRecordScale"},
    )
    clerk.request("GET", pricing, "A_SlsPrcgCndnRecordScale")
    clerk.request("GET", stock, "A_MatlStkInAcctMod", params={"$filter": "InventoryStockType eq '01'"})
    clerk.request("GET", stock, "A_MaterialStock", params={"$expand": "to_MatlStkInAcctMod"})
    refused = http.post(
        f"{sap_s4.ROOT}{SO}/A_SalesOrder",
        auth=(sap_s4.USERNAME, sap_s4.PASSWORD),
        json={**body, "PurchaseOrderByCustomer": "#" * 36},
        headers={"Accept": "application/json", "X-CSRF-Token": clerk.tokens[SO]},
    )
    assert refused.status_code == 400

    checked: dict[str, int] = {}
    for method, url, response in recorder.seen:
        if not response.headers.get("content-type", "").startswith("application/json"):
            assert method == "HEAD" or response.status_code == 204, (method, url, response.status_code)
            continue
        if response.status_code >= 400:
            assert_error(response.json())
            checked["error"] = checked.get("error", 0) + 1
            continue
        path = unquote(url.path)
        if path == "/_sim/billing":
            service, rest = BIL, "A_BillingDocument"
        elif path.startswith(sap_s4.ROOT):
            service, _, rest = path.removeprefix(sap_s4.ROOT).partition("/")
        else:
            continue  # the control API's own answers
        assert_answer(service, rest, response.json())
        key = f"{service.split(';')[0]}/{rest.split('(')[0]}"
        checked[key] = checked.get(key, 0) + 1
    assert set(checked) >= {
        "API_SALES_ORDER_SRV/A_SalesOrder",
        "API_SALES_ORDER_SRV/A_SalesOrderItemPrElement",
        "API_SALES_ORDER_SRV/A_SalesOrderHeaderPartner",
        "API_OUTBOUND_DELIVERY_SRV/A_OutbDeliveryHeader",
        "API_OUTBOUND_DELIVERY_SRV/A_OutbDeliveryItem",
        "API_OUTBOUND_DELIVERY_SRV/PostGoodsIssue",
        "API_BILLING_DOCUMENT_SRV/A_BillingDocument",
        "API_BILLING_DOCUMENT_SRV/A_BillingDocumentItem",
        "API_BILLING_DOCUMENT_SRV/GetPDF",
        "API_BILLING_DOCUMENT_SRV/Cancel",
        "API_BUSINESS_PARTNER/A_BusinessPartner",
        "API_BUSINESS_PARTNER/A_AddressEmailAddress",
        "API_BUSINESS_PARTNER/A_BusinessPartnerAddress",
        "API_BUSINESS_PARTNER/A_CustomerSalesArea",
        "API_CREDIT_MEMO_REQUEST_SRV/A_CreditMemoRequest",
        "API_CREDIT_MEMO_REQUEST_SRV/A_CreditMemoRequestItem",
        "API_CREDIT_MEMO_REQUEST_SRV/A_CreditMemoReqItemPrcgElmnt",
        "API_CUSTOMER_RETURN_SRV/A_CustomerReturn",
        "API_CUSTOMER_RETURN_SRV/A_CustomerReturnItem",
        "API_CUSTOMER_RETURN_SRV/A_CustomerReturnScheduleLine",
        "API_PRODUCT_SRV/A_Product",
        "API_PRODUCT_SRV/A_ProductSalesDelivery",
        "API_PRODUCT_SRV/A_ProductDescription",
        "API_SLSPRICINGCONDITIONRECORD_SRV/A_SlsPrcgConditionRecord",
        "API_SLSPRICINGCONDITIONRECORD_SRV/A_SlsPrcgCndnRecdValidity",
        "API_SLSPRICINGCONDITIONRECORD_SRV/A_SlsPrcgCndnRecordScale",
        "API_MATERIAL_STOCK_SRV/A_MatlStkInAcctMod",
        "API_MATERIAL_STOCK_SRV/A_MaterialStock",
        "error",
    }, checked
    assert sum(checked.values()) >= 15
