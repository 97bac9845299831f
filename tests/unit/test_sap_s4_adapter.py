"""S/4HANA's ports against a scripted stand-in: the ``PurchaseOrderByCustomer`` guard (exact match,
rejected orders left out, two live ones a conflict), the create (refused before sending when the
number is too long; warnings and the total difference logged, or held when configured), the
generic sold-to, the day-granular delivery poll with its look-back and the billing keyset, and the
plugin's wiring."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from erpsync.errors import PermanentError, ValidationFailed
from erpsync.model import Address, Customer, DraftLine, SalesOrderDraft
from erpsync.model.base import Model
from erpsync.systems.plugin import Wiring
from erpsync.systems.sap_s4.adapter import DuplicatePurchaseOrder, S4System, TotalDiffers
from erpsync.systems.sap_s4.client import S4Client
from erpsync.systems.sap_s4.plugin import PLUGIN
from erpsync.systems.sap_s4.settings import S4Secret, S4Settings
from tests.support.sap_s4_mock import BASE, BILLING, MockS4, answer

D = Decimal
CFG = S4Settings(
    sales_organization="1710", distribution_channel="10", organization_division="00", generic_sold_to="USCU_S12"
)
DRAFT = SalesOrderDraft(
    number="#1001",
    customer_id="USCU_S12",
    currency="USD",
    bill_to=Address(city="Springfield"),
    lines=[DraftLine(line_id="501", sku="MZ-FG-M550", qty=D(2), unit_price=D("19.99"))],
    total=D("39.98"),
)


def system(mock: MockS4, cfg: S4Settings = CFG) -> S4System:
    return S4System(mock.client(), "sap_s4", lambda: cfg)


def order(number: str, po: str, rejected: str = "", items: list[str] | None = None) -> dict[str, Any]:
    return {
        "SalesOrder": number,
        "PurchaseOrderByCustomer": po,
        "OverallSDProcessStatus": "A",
        "OverallSDDocumentRejectionSts": rejected,
        "to_Item": {"results": [{"SalesOrderItem": i, "PurchaseOrderByCustomer": "501"} for i in items or ["000010"]]},
    }


def rows(*found: dict[str, Any]) -> httpx.Response:
    return answer(200, {"d": {"results": list(found)}})


# -- orders ------------------------------------------------------------------------------------------


def test_the_guard_asks_for_the_store_number_and_maps_the_items() -> None:
    mock = MockS4(lambda r: rows(order("4000043", "#1001")))
    ref = system(mock).port("order", "target").find("#1001")
    assert ref is not None and (ref.key, ref.line_map) == ("4000043", {"10": "501"})
    (read,) = mock.requests
    assert read.url.path == "/sap/opu/odata/sap/API_SALES_ORDER_SRV/A_SalesOrder"
    assert read.url.params["$filter"] == "PurchaseOrderByCustomer eq '#1001'" and "%231001" in str(read.url)
    assert read.url.params["$expand"] == "to_Item" and "PurchaseOrderByCustomer" in read.url.params["$select"]


def test_the_guard_matches_exactly_and_leaves_rejected_orders_out() -> None:
    mock = MockS4(lambda r: rows(order("1", "#1001 "), order("2", "#1001", rejected="C"), order("3", "#1001")))
    ref = system(mock).port("order", "target").find("#1001")
    assert ref is not None and ref.number == "3"
    assert system(MockS4(lambda r: rows())).port("order", "target").find("O'Brien") is None


def test_two_live_orders_with_one_number_are_a_conflict() -> None:
    mock = MockS4(lambda r: rows(order("1", "#1001"), order("2", "#1001", rejected="B")))
    with pytest.raises(DuplicatePurchaseOrder, match="1, 2") as caught:
        system(mock).port("order", "target").find("#1001")
    assert caught.value.error_type == "duplicate_number"


def test_a_number_longer_than_35_is_refused_before_anything_is_sent() -> None:
    mock = MockS4()
    orders = system(mock).port("order", "target")
    too_long = DRAFT.model_copy(update={"number": "M" * 36})
    with pytest.raises(ValidationFailed, match="36 characters"):
        orders.create(too_long)
    with pytest.raises(ValidationFailed):
        orders.find("M" * 36)
    assert mock.requests == []


def created(net: str, warning: dict[str, Any] | None = None) -> Any:
    def handler(request: httpx.Request) -> httpx.Response | None:
        if request.method != "POST":
            return None
        body = json.loads(request.content)
        items = [
            {"SalesOrderItem": i["SalesOrderItem"].zfill(6), "PurchaseOrderByCustomer": "501"}
            for i in body["to_Item"]["results"]
        ]
        headers = {"sap-message": json.dumps(warning)} if warning else {}
        return answer(
            201, {"d": {"SalesOrder": "4000043", "TotalNetAmount": net, "to_Item": {"results": items}}}, headers
        )

    return handler


def test_a_create_logs_sap_warnings_and_a_differing_total(caplog: pytest.LogCaptureFixture) -> None:
    warning = {"code": "V1/084", "message": "Credit limit exceeded", "severity": "warning", "details": []}
    mock = MockS4(created("39.00", warning))
    with caplog.at_level(logging.WARNING, logger="erpsync.systems.sap_s4.adapter"):
        ref = system(mock).port("order", "target").create(DRAFT)
    assert (ref.key, ref.line_map) == ("4000043", {"10": "501"})
    messages = [r.getMessage() for r in caplog.records]
    assert any("V1/084" in m and "Credit limit exceeded" in m for m in messages)
    assert any("nets 39.00" in m and "difference -0.98" in m for m in messages)
    posted = json.loads(mock.sent("POST")[0].content)
    assert posted["PurchaseOrderByCustomer"] == "#1001" and posted["SoldToParty"] == "USCU_S12"


def test_a_matching_total_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="erpsync.systems.sap_s4.adapter"):
        system(MockS4(created("39.980"))).port("order", "target").create(DRAFT)
    assert caplog.records == []


def test_a_differing_total_is_held_when_configured_and_within_tolerance_is_not() -> None:
    strict = CFG.model_copy(update={"fail_on_total_difference": True})
    with pytest.raises(TotalDiffers, match="held for review") as held:
        system(MockS4(created("39.00")), strict).port("order", "target").create(DRAFT)
    assert held.value.error_type == "total_mismatch"
    lenient = strict.model_copy(update={"total_tolerance": D("1.00")})
    assert system(MockS4(created("39.00")), lenient).port("order", "target").create(DRAFT).number == "4000043"


def test_customers_are_the_generic_sold_to_and_the_customers_flow_is_refused() -> None:
    customers = system(MockS4()).port("customer", "target")
    jane = Customer(email="Jane@Example.com", first_name="Jane")
    assert [(c.email, c.source_id) for c in customers.find("jane@example.com")] == [("jane@example.com", "USCU_S12")]
    assert customers.create(jane).source_id == "USCU_S12"
    with pytest.raises(PermanentError, match="generic sold-to"):
        customers.update("USCU_S12", jane)
    with pytest.raises(PermanentError):
        customers.get("USCU_S12")


# -- deliveries ---------------------------------------------------------------------------------------


def test_the_delivery_poll_reads_whole_days_with_the_look_back_as_a_keyset() -> None:
    day1, day2 = "/Date(1740700800000)/", "/Date(1740787200000)/"  # 2025-02-28, 2025-03-01

    def row(number: str, day: str, version: str, status: str) -> dict[str, Any]:
        return {
            "DeliveryDocument": number,
            "LastChangeDate": day,
            "DeliveryVersion": version,
            "OverallGoodsMovementStatus": status,
        }

    never_changed = {
        "DeliveryDocument": "80000009",
        "CreationDate": day2,
        "LastChangeDate": None,
        "DeliveryVersion": "0001",
        "OverallGoodsMovementStatus": "A",
    }
    pages = iter(
        [
            rows(row("80000001", day1, "0001", "A"), row("80000002", day2, "0003", "C")),
            rows(row("80000003", day2, "0001", "C")),
            rows(never_changed),
        ]
    )
    mock = MockS4(lambda r: next(pages))
    port = system(mock, CFG.model_copy(update={"page_size": 2})).port("shipment", "source")
    got = list(port.changes(datetime(2025, 3, 1, 13, 45, tzinfo=UTC)))
    assert [[n.id for n in p.notices] for p in got] == [["80000001", "80000002"], ["80000003"], ["80000009"]]
    assert [n.version for n in got[0].notices] == ["0001:A", "0003:C"]
    assert [p.checkpoint for p in got] == [None, None, datetime(2025, 3, 1, tzinfo=UTC)]
    filters = [r.url.params["$filter"] for r in mock.requests]
    assert filters == [
        "LastChangeDate ge datetime'2025-02-28T00:00:00'",
        "LastChangeDate ge datetime'2025-02-28T00:00:00' and (LastChangeDate gt datetime'2025-03-01T00:00:00' "
        "or (LastChangeDate eq datetime'2025-03-01T00:00:00' and DeliveryDocument gt '80000002'))",
        "CreationDate ge datetime'2025-02-28T00:00:00' and LastChangeDate eq null",
    ]
    assert [r.url.params["$orderby"] for r in mock.requests] == [
        "LastChangeDate,DeliveryDocument",
        "LastChangeDate,DeliveryDocument",
        "CreationDate,DeliveryDocument",
    ]
    assert mock.requests[0].url.path.endswith("/API_OUTBOUND_DELIVERY_SRV;v=0002/A_OutbDeliveryHeader")


def test_no_delivery_changed_proves_nothing() -> None:
    port = system(MockS4(lambda r: rows()), CFG.model_copy(update={"delivery_look_back_days": 0})).port(
        "shipment", "source"
    )
    pages = list(port.changes(datetime(2025, 3, 1, 13, 45, tzinfo=UTC)))
    assert [(p.notices, p.checkpoint) for p in pages] == [([], None), ([], None)]


@pytest.mark.parametrize(
    ("source", "expand"),
    [
        ("BillOfLading", "to_DeliveryDocumentItem"),
        ("HandlingUnitExternalId", "to_DeliveryDocumentItem,to_HandlingUnitHeaderDelivery"),
        ("text:ZTRK", "to_DeliveryDocumentItem,to_DeliveryDocumentText"),
    ],
)
def test_a_delivery_is_read_with_what_its_tracking_needs(source: str, expand: str) -> None:
    header = {"DeliveryDocument": "80000001", "OverallGoodsMovementStatus": "C", "BillOfLading": "1Z"}
    mock = MockS4(lambda r: answer(200, {"d": header}))
    cfg = CFG.model_copy(update={"tracking_source": source})
    shipment = system(mock, cfg).port("shipment", "source").get("80000001")
    assert shipment.confirmed and shipment.source_id == "80000001"
    (read,) = mock.requests
    assert read.url.path.endswith("/A_OutbDeliveryHeader('80000001')") and read.url.params["$expand"] == expand


# -- billing documents --------------------------------------------------------------------------------


def test_the_billing_poll_is_a_keyset_on_the_change_stamp() -> None:
    t1, t2 = "/Date(1740830400000+0000)/", "/Date(1740830400123+0000)/"
    pages = iter(
        [
            rows(
                {"BillingDocument": "90000001", "LastChangeDateTime": t1},
                {"BillingDocument": "90000002", "LastChangeDateTime": t2},
            ),
            rows({"BillingDocument": "90000003", "LastChangeDateTime": t2}),
        ]
    )
    mock = MockS4(lambda r: next(pages))
    port = system(mock, CFG.model_copy(update={"page_size": 2})).port("invoice", "source")
    got = list(port.changes(datetime(2025, 3, 1, 11, 0, tzinfo=UTC)))
    assert [[n.id for n in p.notices] for p in got] == [["90000001", "90000002"], ["90000003"]]
    assert got[0].notices[1].version == "2025-03-01T12:00:00.123000+00:00"
    assert (got[0].checkpoint, got[1].checkpoint) == (None, datetime(2025, 3, 1, 12, 0, 0, 123000, tzinfo=UTC))
    filters = [r.url.params["$filter"] for r in mock.requests]
    assert filters[0] == "LastChangeDateTime ge datetimeoffset'2025-03-01T11:00:00Z'"
    assert filters[1].endswith(
        "(LastChangeDateTime gt datetimeoffset'2025-03-01T12:00:00.123Z' or "
        "(LastChangeDateTime eq datetimeoffset'2025-03-01T12:00:00.123Z' and BillingDocument gt '90000002'))"
    )
    assert mock.requests[0].url.path.endswith(f"/{BILLING}/A_BillingDocument")


def test_a_billing_document_is_read_with_its_items() -> None:
    header: dict[str, Any] = {
        "BillingDocument": "90000001",
        "AccountingPostingStatus": "C",
        "TotalGrossAmount": "10.000",
    }
    header["to_Item"] = {"results": [{"SalesDocument": "4000043", "SalesDocumentItem": "10", "BillingQuantity": "1"}]}
    mock = MockS4(lambda r: answer(200, {"d": header}))
    invoice = system(mock).port("invoice", "source").get("90000001")
    assert invoice.released and invoice.amount == D("10.00") and invoice.lines[0].order_key == "4000043"
    assert mock.requests[0].url.params["$expand"] == "to_Item"


# -- the plugin ----------------------------------------------------------------------------------------


def test_the_plugin_serves_what_the_system_has_ports_for_and_wires_the_secret() -> None:
    secret = S4Secret(base_url=BASE, username="USER", password="pw", sap_client="100")
    fresh = S4Secret(base_url=BASE, username="USER", password="new")

    def reload() -> Model:
        return fresh

    wired = PLUGIN.connect(Wiring(connection="s4", secret=secret, settings=lambda: CFG, reload_secret=reload))
    assert isinstance(wired, S4System) and wired.connection == "s4"
    client = wired.client
    assert isinstance(client, S4Client) and client.sap_client == "100" and client.name == "s4"
    assert client.credentials is not None and client.credentials() == ("USER", "new")
    for entity, directions in PLUGIN.serves.items():
        for direction in directions:
            assert wired.port(entity, direction) is not None
    with pytest.raises(Exception, match="serves no payment target"):
        wired.port("payment", "target")
    assert PLUGIN.kind == "sap_s4" and PLUGIN.role == "erp" and PLUGIN.webhooks is None
    with pytest.raises(ValueError, match="generic_sold_to"):
        S4Settings.model_validate(
            {"sales_organization": "1710", "distribution_channel": "10", "organization_division": "00"}
        )
