"""The canonical model and S/4HANA's entities: the sales order deep insert (checked against the 2020
``API_SALES_ORDER_SRV`` EDMX: every property declared and creatable, within its ``MaxLength`` and
scale), money to the cent as pricing conditions of the configured types, a store number longer than
35 refused, item numbers compared without leading zeros; deliveries as shipments, billing
documents as invoices."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from typing import Any

import pytest

from erpsync.errors import MappingMissing, ValidationFailed
from erpsync.model import Address, DraftLine, SalesOrderDraft
from erpsync.systems.sap_s4 import mapping
from erpsync.systems.sap_s4.odata_v2 import parse_decimal
from erpsync.systems.sap_s4.settings import S4Settings
from tests.support.sap_s4_mock import FIXTURES, recorded_deep_insert

D = Decimal
EDM = "{http://schemas.microsoft.com/ado/2008/09/edm}"
SAP = "{http://www.sap.com/Protocols/SAPData}"
CFG = S4Settings(
    sales_organization="1710",
    distribution_channel="10",
    organization_division="00",
    generic_sold_to="USCU_S12",
    discount_condition_type="RB00",
    freight_condition_type="HD00",
)


def draft(**changes: Any) -> SalesOrderDraft:
    base: dict[str, Any] = {
        "number": "000000123",
        "customer_id": "USCU_S12",
        "date": datetime(2025, 3, 1, 23, 30, tzinfo=UTC),
        "currency": "USD",
        "bill_to": Address(city="Springfield", country="US"),
        "lines": [
            DraftLine(line_id="501", sku="MZ-FG-M550", description="Mountain bike", qty=D("2"), unit_price=D("19.99")),
            DraftLine(line_id="502", sku="MZ-FG-R100", qty=D("1"), unit_price=D("100.10"), discount=D("10.005")),
        ],
        "freight": D("7.50"),
        "tax_total": D("9.25"),
        "total": D("156.83"),
    }
    return SalesOrderDraft(**{**base, **changes})


# -- the EDMX ---------------------------------------------------------------------------------------


@cache
def entity_types() -> dict[str, dict[str, ET.Element]]:
    tree = ET.parse(FIXTURES / "API_SALES_ORDER_SRV.edmx")
    return {
        t.get("Name", ""): {p.get("Name", ""): p for p in t if p.tag in (f"{EDM}Property", f"{EDM}NavigationProperty")}
        for t in tree.iter(f"{EDM}EntityType")
    }


NAVS = {
    "A_SalesOrderType": {"to_Item": "A_SalesOrderItemType", "to_Partner": "A_SalesOrderHeaderPartnerType"},
    "A_SalesOrderItemType": {"to_PricingElement": "A_SalesOrderItemPrElementType"},
}


def problems(type_name: str, body: dict[str, Any]) -> list[str]:
    """What of a create body the 2020 EDMX does not allow: undeclared or non-creatable properties,
    texts beyond MaxLength, decimals not strings or beyond their scale."""
    props = entity_types()[type_name]
    found = []
    for key, value in body.items():
        prop = props.get(key)
        if prop is None:
            found.append(f"{type_name}.{key} is not declared")
            continue
        if prop.tag == f"{EDM}NavigationProperty":
            for row in value["results"]:
                found += problems(NAVS[type_name][key], row)
            continue
        if prop.get(f"{SAP}creatable") == "false":
            found.append(f"{type_name}.{key} is not creatable")
        kind = prop.get("Type")
        if kind == "Edm.String":
            limit = int(prop.get("MaxLength") or 10**6)
            if not isinstance(value, str) or len(value) > limit:
                found.append(f"{type_name}.{key}={value!r} is not a text of at most {limit}")
        elif kind == "Edm.Decimal":
            number = parse_decimal(value) if isinstance(value, str) else None
            scale = int(prop.get("Scale") or 0)
            exponent = number.as_tuple().exponent if number is not None else 0
            if number is None or not isinstance(exponent, int) or -exponent > scale:
                found.append(f"{type_name}.{key}={value!r} is not a decimal string of scale {scale}")
        elif kind == "Edm.DateTime" and not (isinstance(value, str) and value.startswith("/Date(")):
            found.append(f"{type_name}.{key}={value!r} is not /Date()/")
    return found


def test_the_recorded_deep_insert_passes_the_check_and_a_made_up_field_does_not() -> None:
    assert problems("A_SalesOrderType", recorded_deep_insert()) == []
    assert problems("A_SalesOrderType", {**recorded_deep_insert(), "ExternalDocumentID": "x"}) == [
        "A_SalesOrderType.ExternalDocumentID is not creatable"
    ]
    assert problems("A_SalesOrderType", {"PurchaseOrderByCustomer": "x" * 36, "Nope": 1}) == [
        f"A_SalesOrderType.PurchaseOrderByCustomer={'x' * 36!r} is not a text of at most 35",
        "A_SalesOrderType.Nope is not declared",
    ]


def test_the_order_body_is_what_the_edmx_allows() -> None:
    body = mapping.order_body(draft(), CFG.model_copy(update={"generic_ship_to": "USCU_S13"}))
    assert problems("A_SalesOrderType", body) == []


def test_the_order_body_has_the_recorded_shape_plus_the_store_number() -> None:
    one = draft(
        lines=[DraftLine(line_id="501", sku="MZ-FG-M550", qty=D("1"), unit_price=D("10"))],
        freight=D(0),
        tax_total=D(0),
        total=D("10"),
    )
    body = mapping.order_body(one, CFG.model_copy(update={"sales_order_type": "ZCM"}))
    recorded = recorded_deep_insert()
    for key in ("SalesOrderType", "SalesOrganization", "DistributionChannel", "OrganizationDivision", "SoldToParty"):
        assert body[key] == recorded[key]
    (item,) = body["to_Item"]["results"]
    (recorded_item,) = recorded["to_Item"]["results"]
    assert {k: item[k] for k in recorded_item} == recorded_item  # "RequestedQuantity": "1", a string
    assert body["PurchaseOrderByCustomer"] == "000000123"  # as the store has it, zeros and all
    assert body["CustomerPurchaseOrderDate"] == "/Date(1740787200000)/"  # 2025-03-01 UTC midnight


def test_money_goes_as_conditions_to_the_cent_of_the_configured_types() -> None:
    body = mapping.order_body(draft(), CFG)
    first, second = body["to_Item"]["results"]
    assert (first["SalesOrderItem"], second["SalesOrderItem"]) == ("10", "20")
    assert (first["RequestedQuantity"], first["RequestedQuantityUnit"]) == ("2", "PC")
    assert first["to_PricingElement"]["results"] == [
        {"ConditionType": "PR00", "ConditionRateValue": "19.99", "ConditionCurrency": "USD"},
        {"ConditionType": "HD00", "ConditionRateValue": "7.50", "ConditionCurrency": "USD"},
    ]
    assert second["to_PricingElement"]["results"] == [
        {"ConditionType": "PR00", "ConditionRateValue": "100.10", "ConditionCurrency": "USD"},
        {"ConditionType": "RB00", "ConditionRateValue": "-10.01", "ConditionCurrency": "USD"},  # half up
    ]
    assert (first["PurchaseOrderByCustomer"], second["PurchaseOrderByCustomer"]) == ("501", "502")
    assert first["SalesOrderItemText"] == "Mountain bike" and "SalesOrderItemText" not in second
    assert "to_Partner" not in body and body["TransactionCurrency"] == "USD"
    moved = mapping.order_body(draft(customer_id="OLD_GENERIC"), CFG.model_copy(update={"generic_sold_to": "WEB2"}))
    assert moved["SoldToParty"] == "WEB2"  # the setting, not what an older customer binding says
    assert not any(isinstance(v, float) for v in _leaves(body))


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in _leaves(v)]
    if isinstance(value, list):
        return [x for v in value for x in _leaves(v)]
    return [value]


def test_the_configured_condition_types_and_partner_are_used() -> None:
    cfg = CFG.model_copy(
        update={
            "price_condition_type": "PPR0",
            "discount_condition_type": "DRV1",
            "freight_condition_type": "ZFRT",
            "generic_ship_to": "USCU_S13",
            "ship_to_partner_function": "SH",
            "quantity_unit": "EA",
        }
    )
    body = mapping.order_body(draft(), cfg)
    kinds = [[c["ConditionType"] for c in i["to_PricingElement"]["results"]] for i in body["to_Item"]["results"]]
    assert kinds == [["PPR0", "ZFRT"], ["PPR0", "DRV1"]]
    assert body["to_Partner"] == {"results": [{"PartnerFunction": "SH", "Customer": "USCU_S13"}]}
    assert {i["RequestedQuantityUnit"] for i in body["to_Item"]["results"]} == {"EA"}


def test_freight_or_discounts_without_their_condition_type_are_a_missing_mapping() -> None:
    with pytest.raises(MappingMissing, match="freight_condition_type"):
        mapping.order_body(draft(), CFG.model_copy(update={"freight_condition_type": None}))
    with pytest.raises(MappingMissing, match="discount_condition_type"):
        mapping.order_body(draft(), CFG.model_copy(update={"discount_condition_type": None}))
    plain = draft(
        lines=[DraftLine(line_id="1", sku="A", qty=D(1), unit_price=D(5))], freight=D(0), tax_total=D(0), total=D(5)
    )
    bare = CFG.model_copy(update={"freight_condition_type": None, "discount_condition_type": None})
    assert len(mapping.order_body(plain, bare)["to_Item"]["results"][0]["to_PricingElement"]["results"]) == 1


def test_a_store_number_longer_than_35_is_refused_never_cut() -> None:
    assert mapping.order_body(draft(number="N" * 35), CFG)["PurchaseOrderByCustomer"] == "N" * 35
    with pytest.raises(ValidationFailed, match="36 characters") as refused:
        mapping.order_body(draft(number="N" * 36), CFG)
    assert refused.value.error_type == "validation" and "never cut" in str(refused.value)
    with pytest.raises(ValidationFailed):
        mapping.check_number("")


def test_a_store_line_id_too_long_for_the_item_is_matched_by_position() -> None:
    long_id = "gid://shopify/LineItem/123456789012345"
    one = draft(
        lines=[DraftLine(line_id=long_id, sku="A", qty=D(1), unit_price=D(5))], freight=D(0), tax_total=D(0), total=D(5)
    )
    body = mapping.order_body(one, CFG)
    assert "PurchaseOrderByCustomer" not in body["to_Item"]["results"][0]
    answer = {"SalesOrder": "4000043", "to_Item": {"results": [{"SalesOrderItem": "000010"}]}}
    assert mapping.order_ref(answer, one).line_map == {"10": long_id}
    assert mapping.order_ref(answer).line_map == {}  # found again without the draft: not known


def test_the_order_ref_maps_items_without_leading_zeros() -> None:
    answer = {
        "SalesOrder": "0004000043",
        "PurchaseOrderByCustomer": "000000123",
        "OverallSDProcessStatus": "A",
        "to_Item": {
            "results": [
                {"SalesOrderItem": "000010", "PurchaseOrderByCustomer": "501"},
                {"SalesOrderItem": "000020", "PurchaseOrderByCustomer": "502"},
                {"SalesOrderItem": "000030", "PurchaseOrderByCustomer": "000000123"},  # the header's, copied
                {
                    "SalesOrderItem": "000011",
                    "HigherLevelItem": "000010",
                    "PurchaseOrderByCustomer": "501",
                },  # free good
                {"SalesOrderItem": "000040", "HigherLevelItem": "000000"},
            ]
        },
    }
    ref = mapping.order_ref(answer)
    assert (ref.id, ref.number, ref.order_type, ref.key, ref.status) == ("4000043", "4000043", "", "4000043", "A")
    assert ref.line_map == {"10": "501", "20": "502"}
    with_draft = mapping.order_ref(answer, draft())
    assert with_draft.line_map == {"10": "501", "20": "502"}


def test_the_net_difference_leaves_tax_to_sap() -> None:
    d = draft()  # total 156.83, tax 9.25: the store's net is 147.58
    assert mapping.net_difference({"TotalNetAmount": "147.580"}, d) == D("0.00")
    assert mapping.net_difference({"TotalNetAmount": "147.57"}, d) == D("-0.01")
    assert mapping.net_difference({}, d) == D("-147.58")


# -- deliveries --------------------------------------------------------------------------------------


def delivery(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "__metadata": {"etag": "W/\"'0002'\""},
        "DeliveryDocument": "0080000000",
        "DeliveryVersion": "0002",
        "OverallGoodsMovementStatus": "C",
        "ActualGoodsMovementDate": "/Date(1740787200000)/",
        "LastChangeDate": "/Date(1740787200000)/",
        "BillOfLading": "1Z999AA10123456784",
        "ShippingType": "01",
        "to_DeliveryDocumentItem": {
            "results": [
                {
                    "DeliveryDocumentItem": "000010",
                    "ReferenceSDDocument": "0004000043",
                    "ReferenceSDDocumentItem": "000010",
                    "Material": "MZ-FG-M550",
                    "ActualDeliveryQuantity": "2.000",
                    "DeliveryQuantityUnit": "PC",
                },
                {"DeliveryDocumentItem": "000900", "ReferenceSDDocument": "", "Material": "PACKING"},
            ]
        },
        "to_HandlingUnitHeaderDelivery": {"__deferred": {"uri": "x"}},
    }
    return {**base, **changes}


def test_a_delivery_with_goods_issue_posted_is_a_confirmed_shipment() -> None:
    shipment = mapping.shipment_from_s4(delivery(), CFG)
    assert (shipment.source_id, shipment.status, shipment.confirmed) == ("80000000", "C", True)
    assert [t.number for t in shipment.tracks] == ["1Z999AA10123456784"]
    (line,) = shipment.lines
    assert (line.order_number, line.line_nbr, line.sku, line.qty) == ("4000043", "10", "MZ-FG-M550", D("2.000"))
    assert line.order_key == mapping.order_ref({"SalesOrder": "4000043"}).key
    assert shipment.ship_date == datetime(2025, 3, 1, tzinfo=UTC) and shipment.ship_via == "01"
    picked = mapping.shipment_from_s4(delivery(OverallGoodsMovementStatus="B", BillOfLading=""), CFG)
    assert (picked.confirmed, picked.status, picked.tracks) == (False, "B", [])


def test_tracking_comes_from_the_configured_source() -> None:
    units = {
        "results": [
            {"HandlingUnitExternalId": "00012345670000000011", "HandlingUnitSecondExternalId": "1ZA"},
            {"HandlingUnitExternalId": "00012345670000000028", "HandlingUnitSecondExternalId": "1ZA"},
        ]
    }
    texts = {
        "results": [
            {"TextElement": "0001", "Language": "EN", "TextElementText": "Leave at the door"},
            {"TextElement": "ZTRK", "Language": "EN", "TextElementText": " 1Z999AA1 "},
        ]
    }
    header = delivery(to_HandlingUnitHeaderDelivery=units, to_DeliveryDocumentText=texts)

    def numbers(source: str) -> list[str]:
        cfg = CFG.model_copy(update={"tracking_source": source})
        return [t.number for t in mapping.shipment_from_s4(header, cfg).tracks]

    assert numbers("HandlingUnitExternalId") == ["00012345670000000011", "00012345670000000028"]
    assert numbers("HandlingUnitSecondExternalId") == ["1ZA"]
    assert numbers("text:ZTRK") == ["1Z999AA1"]
    assert numbers("text:ZZZZ") == []
    with pytest.raises(ValueError, match="tracking_source"):
        CFG.model_validate({**CFG.model_dump(), "tracking_source": "TrackingNumber"})


# -- billing documents ------------------------------------------------------------------------------


def billing(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "BillingDocument": "0090000001",
        "BillingDocumentIsCancelled": False,
        "AccountingPostingStatus": "C",
        "BillingDocumentDate": "/Date(1740787200000)/",
        "LastChangeDateTime": "/Date(1740830400123+0000)/",
        "TotalNetAmount": "147.580",
        "TaxAmount": "9.250",
        "TotalGrossAmount": "156.830",
        "TransactionCurrency": "USD",
        "to_Item": {
            "results": [
                {
                    "BillingDocumentItem": "000010",
                    "SalesDocument": "4000043",
                    "SalesDocumentItem": "000010",
                    "ReferenceSDDocument": "80000000",
                    "ReferenceSDDocumentItem": "000010",
                    "Material": "MZ-FG-M550",
                    "BillingQuantity": "2.000",
                },
                {"BillingDocumentItem": "000020", "SalesDocument": "", "Material": "FREIGHT"},
            ]
        },
    }
    return {**base, **changes}


def test_a_posted_billing_document_is_a_released_invoice_with_order_lines() -> None:
    invoice = mapping.invoice_from_s4(billing(), CFG)
    assert (invoice.source_id, invoice.released, invoice.amount, invoice.currency) == (
        "90000001",
        True,
        D("156.83"),
        "USD",
    )
    (line,) = invoice.lines
    assert (line.order_number, line.line_nbr, line.qty, line.order_key) == ("4000043", "10", D("2.000"), "4000043")
    assert invoice.updated_at == datetime(2025, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)
    assert invoice.date == datetime(2025, 3, 1, tzinfo=UTC)


def test_released_follows_the_configured_posting_statuses_and_cancellation() -> None:
    assert not mapping.invoice_from_s4(billing(AccountingPostingStatus="A"), CFG).released
    assert mapping.invoice_from_s4(
        billing(AccountingPostingStatus="A"), CFG.model_copy(update={"released_posting_statuses": ["A", "C"]})
    ).released
    cancelled = mapping.invoice_from_s4(billing(BillingDocumentIsCancelled=True), CFG)
    assert (cancelled.released, cancelled.status) == (False, "cancelled")
