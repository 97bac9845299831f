"""The metadata checker (sandbox/sims/edmx.py) on SAP's own material: the nine official Service Layer
request examples are valid requests of their entity sets, the recorded answers are valid answers,
and a made-up property, a wrong type or a read-only property is named as wrong."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from sandbox.sims.edmx import Metadata, MetadataError, parse_date, parse_time
from tests.support.sap_b1 import (
    FIXTURES,
    METADATA_FILE,
    B1ShapeError,
    assert_answer,
    assert_error_v1,
    assert_error_v2,
    metadata,
)

REQUESTS: dict[str, Any] = json.loads((FIXTURES / "request_examples.json").read_text())["examples"]
RESPONSES: list[dict[str, Any]] = json.loads((FIXTURES / "response_examples.json").read_text())["examples"]


def recorded(page: int) -> Any:
    return next(r["body"] for r in RESPONSES if r["pdf_page"] == page)


def test_the_trimmed_metadata_declares_what_the_sim_serves() -> None:
    meta = metadata()
    assert meta.namespace == "SAPB1"
    assert meta.entity_sets["Orders"] == meta.entity_sets["Invoices"] == "Document"
    assert meta.entity_sets["IncomingPayments"] == "Payment"
    assert meta.types["Document"].keys == ("DocEntry",) and meta.types["BusinessPartner"].keys == ("CardCode",)
    doc = meta.types["Document"].props
    assert (doc["UpdateDate"].type, doc["UpdateTime"].type, doc["DocTotal"].type) == (
        "Edm.DateTime",
        "Edm.Time",
        "Edm.Double",
    )
    assert not doc["DocEntry"].writable and doc["NumAtCard"].writable
    assert "PaidToDate" not in doc  # only in v2: the plan's finding 1
    assert doc["DocumentLines"].collection and doc["DocumentLines"].type == "SAPB1.DocumentLine"
    assert meta.enums["BoStatus"].members == {
        "bost_Open": "O",
        "bost_Close": "C",
        "bost_Paid": "P",
        "bost_Delivered": "D",
    }
    assert meta.functions["Login"].params == {
        "CompanyDB": "Edm.String",
        "UserName": "Edm.String",
        "Password": "Edm.String",
        "Language": "Edm.String",
    }
    assert meta.functions["Login"].return_type == "SAPB1.B1Session"


def test_a_type_the_metadata_names_but_does_not_declare_is_refused_on_load() -> None:
    broken = METADATA_FILE.read_bytes().replace(b'<ComplexType Name="DocumentLine">', b'<ComplexType Name="Renamed">')
    with pytest.raises(MetadataError, match=r"Document\.DocumentLines names the undeclared type SAPB1\.DocumentLine"):
        Metadata(broken)
    with pytest.raises(MetadataError, match="not XML"):
        Metadata(b"<Edmx")


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_each_official_request_example_is_a_valid_request(name: str) -> None:
    method, target = name.split(" ", 1)
    entity_set = target.split("(", 1)[0]
    type_name = metadata().entity_type(entity_set).name
    op = "update" if method == "PATCH" else "create"
    assert metadata().check_request(type_name, REQUESTS[name], op) == []


def test_there_are_nine_official_request_examples() -> None:
    assert len(REQUESTS) == 9


def test_a_made_up_property_is_named_at_any_depth() -> None:
    order = copy.deepcopy(REQUESTS["POST Orders"])
    order["Frobnicate"] = "x"
    order["DocumentLines"][0]["Colour"] = "red"
    assert metadata().check_request("Document", order) == [
        "Document.DocumentLines[0].Colour: not a property of DocumentLine",
        "Document.Frobnicate: not a property of Document",
    ]
    # the DB column name is not the property name (a trap public clients fell into)
    assert metadata().check_request("Document", {"DocStatus": "O"}) == [
        "Document.DocStatus: not a property of Document"
    ]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"DocDueDate": "04/04/2014"}, "Document.DocDueDate: not a date (Edm.DateTime): '04/04/2014'"),
        ({"DocDueDate": "2014-02-30"}, "Document.DocDueDate: not a date (Edm.DateTime): '2014-02-30'"),
        ({"Series": "twelve"}, "Document.Series: expected an integer (Edm.Int32), got 'twelve'"),
        ({"Series": 1.5}, "Document.Series: expected an integer (Edm.Int32), got 1.5"),
        ({"CardCode": 1}, "Document.CardCode: expected a string (Edm.String), got 1"),
        ({"DocType": "dDocument_Things"}, "Document.DocType: 'dDocument_Things' is not a member of BoDocumentTypes"),
        ({"DocumentLines": {"ItemCode": "i001"}}, "Document.DocumentLines: expected a list"),
        ({"AddressExtension": ["x"]}, "Document.AddressExtension: expected an object (AddressExtension)"),
        ({"DocTime": "25:00"}, "Document.DocTime: not a time (Edm.Time): '25:00'"),
        ({"DocEntry": 12}, "Document.DocEntry: read-only (Writable=false)"),
        ({"DocumentStatus": "bost_Close"}, "Document.DocumentStatus: read-only (Writable=false)"),
        (
            {"BusinessPartner": {"CardCode": "c001"}},
            "Document.BusinessPartner: a navigation property cannot be written",
        ),
    ],
)
def test_a_wrong_type_or_a_read_only_property_is_named(change: dict[str, Any], problem: str) -> None:
    body = {**REQUESTS["POST Orders"], **change}
    problems = metadata().check_request("Document", body)
    assert len(problems) == 1 and problems[0].startswith(problem), problems


def test_a_wrong_line_quantity_is_named_with_its_line() -> None:
    body = copy.deepcopy(REQUESTS["POST Orders"])
    body["DocumentLines"][0]["Quantity"] = "lots"
    assert metadata().check_request("Document", body) == [
        "Document.DocumentLines[0].Quantity: expected a number (Edm.Double), got 'lots'"
    ]


def test_answers_are_stricter_than_requests() -> None:
    """SAP's examples send numbers as text and enums as DB values; answers carry numbers and names."""
    assert metadata().check_request("BusinessPartner", {"CardCode": "c1", "CardType": "C"}) == []
    assert metadata().check_answer("BusinessPartner", {"CardCode": "c1", "CardType": "C"}) == [
        "BusinessPartner.CardType: 'C' is not a member of BoCardTypes (cCustomer, cSupplier, cLid)"
    ]
    line = {"DocEntry": 1, "DocumentLines": [{"Quantity": "100"}]}
    assert metadata().check_answer("Document", line) == [
        "Document.DocumentLines[0].Quantity: expected a number (Edm.Double), got '100'"
    ]
    assert metadata().check_answer("Document", {"DocEntry": None}) == [
        "Document.DocEntry: null, but DocEntry is not nullable"
    ]
    assert metadata().check_answer("Document", {"odata.metadata": "x", "DocEntry": 1, "UpdateTime": "14:05:00"}) == []
    assert metadata().check_request("Document", {"odata.metadata": "x"}) == [
        "Document.odata.metadata: not a property of Document"
    ]


def test_the_recorded_login_answer_is_a_b1_session() -> None:
    assert metadata().check_answer("B1Session", recorded(14)) == []
    assert metadata().check_answer("B1Session", {**recorded(14), "SessionTimeout": "30"}) == [
        "B1Session.SessionTimeout: expected an integer (Edm.Int32), got '30'"
    ]


def test_the_recorded_select_answer_is_a_list_of_orders() -> None:
    assert_answer("Orders", recorded(40))
    bad = copy.deepcopy(recorded(40))
    bad["value"][1]["DocEntry"] = "3"
    with pytest.raises(B1ShapeError, match=r"Document\[1\]\.DocEntry: expected an integer"):
        assert_answer("Orders", bad)


def test_the_login_parameters_are_checked() -> None:
    good = {"CompanyDB": "SBODEMOUS", "UserName": "manager", "Password": "1234"}
    assert metadata().check_parameters("Login", good) == []
    assert metadata().check_parameters("Login", {**good, "Company": "x"}) == ["Login.Company: not a parameter of Login"]


def test_every_recorded_error_is_a_v1_envelope_and_a_string_code_is_not() -> None:
    errors = [r["body"] for r in RESPONSES if "error" in r["body"]]
    assert len(errors) == 11
    for body in errors:
        assert_error_v1(body)
    with pytest.raises(B1ShapeError, match="is not an integer"):
        assert_error_v1({"error": {"code": "301", "message": {"lang": "en-us", "value": "x"}}})
    with pytest.raises(B1ShapeError, match="is not"):
        assert_error_v1({"error": {"code": 301, "message": "x"}})
    assert_error_v2({"error": {"code": "-2028", "message": "No matching records found (ODBC -2028)"}})
    with pytest.raises(B1ShapeError):
        assert_error_v2(errors[0])


@pytest.mark.parametrize(
    ("text", "ok"),
    [("2014-04-04", True), ("2014-04-04T00:00:00Z", True), ("2014-04-04T10:11:12.123", True), ("2014-4-4", False)],
)
def test_date_texts(text: str, ok: bool) -> None:
    assert (parse_date(text) is not None) is ok


@pytest.mark.parametrize(("text", "ok"), [("14:05:00", True), ("14:05", True), ("1405", False), ("24:00:00", False)])
def test_time_texts(text: str, ok: bool) -> None:
    assert (parse_time(text) is not None) is ok
