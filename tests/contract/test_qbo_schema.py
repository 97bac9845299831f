"""The QuickBooks XSD check (tests/support/qbo_schema.py): Intuit's recorded answers pass
(tests/fixtures/quickbooks, see its SOURCES.md), key order does not matter, and an invented field,
a wrong type or a misshapen envelope fails naming its JSON path."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.qbo_schema import QboSchemaError, schema, validate_entity, validate_response

QBO = Path(__file__).parent.parent / "fixtures" / "quickbooks"
NS = "http://schema.intuit.com/finance/v3"

RECORDED = [
    "sales_receipt_create_sales_receipt.json",
    "sales_receipt_void_sales_receipt.json",
    "item_read_item.json",
    "item_create_item.json",
    "api_query.json",
    "preferences_read_preferences.json",
    "item_read_item_error.json",
]


def load(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((QBO / name).read_text())
    return body


def receipt() -> dict[str, Any]:
    entity: dict[str, Any] = load("sales_receipt_create_sales_receipt.json")["SalesReceipt"]
    return entity


def reversed_keys(node: Any) -> Any:
    """The same JSON with every object's keys in reverse order."""
    if isinstance(node, dict):
        return {key: reversed_keys(node[key]) for key in reversed(list(node))}
    if isinstance(node, list):
        return [reversed_keys(item) for item in node]
    return node


@pytest.mark.parametrize("name", RECORDED)
def test_intuits_recorded_answers_pass(name: str) -> None:
    validate_response(load(name))


@pytest.mark.parametrize("name", RECORDED)
def test_key_order_does_not_matter(name: str) -> None:
    body = reversed_keys(load(name))
    assert list(body) != list(load(name)) or len(body) == 1
    validate_response(body)


def test_the_xsd_itself_is_order_sensitive() -> None:
    """Why the JSON is written out in the schema's order: XML with TxnDate before Id is invalid."""
    in_order = f'<SalesReceipt xmlns="{NS}"><Id>6</Id><TxnDate>2017-09-20</TxnDate></SalesReceipt>'
    swapped = f'<SalesReceipt xmlns="{NS}"><TxnDate>2017-09-20</TxnDate><Id>6</Id></SalesReceipt>'
    assert schema().is_valid(in_order)
    assert not schema().is_valid(swapped)
    validate_entity("SalesReceipt", {"TxnDate": "2017-09-20", "Id": "6"})


def test_each_entity_of_a_query_answer_passes_on_its_own() -> None:
    items = load("api_query.json")["QueryResponse"]["Item"]
    assert len(items) > 1
    for item in items:
        validate_entity("Item", item)


def test_an_invented_field_fails_naming_its_path() -> None:
    body = load("sales_receipt_create_sales_receipt.json")
    body["SalesReceipt"]["Line"][0]["SalesItemLineDetail"]["Colour"] = "red"
    with pytest.raises(QboSchemaError) as raised:
        validate_response(body)
    assert str(raised.value) == (
        "SalesReceipt: SalesReceipt.Line[0].SalesItemLineDetail.Colour: not declared in SalesItemLineDetail"
    )


def test_an_invented_field_in_a_query_answer_names_the_item() -> None:
    body = load("api_query.json")
    body["QueryResponse"]["Item"][2]["Sku"] = "GS-1"
    body["QueryResponse"]["Item"][2]["Colour"] = "green"
    with pytest.raises(QboSchemaError, match=r"^Item: QueryResponse\.Item\[2\]\.Colour: not declared in Item$"):
        validate_response(body)


def test_a_wrong_type_fails_naming_its_path() -> None:
    entity = receipt()
    entity["Line"][0]["SalesItemLineDetail"]["Qty"] = "two"
    with pytest.raises(QboSchemaError) as raised:
        validate_entity("SalesReceipt", entity)
    message = str(raised.value)
    assert message.startswith("SalesReceipt: SalesReceipt.Line[0].SalesItemLineDetail.Qty: ")
    assert "number" in message and "'two'" in message


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A change to a SalesReceipt: ``path`` is dotted keys and list indexes, the last key is set."""

    def change(entity: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = entity
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        node[last] = value

    return change


@pytest.mark.parametrize(
    ("change", "where", "what"),
    [
        (_set("Line.0.SalesItemLineDetail.Qty", "2"), "Line[0].SalesItemLineDetail.Qty", "expected a JSON number"),
        (_set("Line.0.LineNum", 1.5), "Line[0].LineNum", "1.5"),
        (_set("TxnDate", "2017-13-45"), "TxnDate", "month"),
        (_set("TxnDate", "20.09.2017"), "TxnDate", "20.09.2017"),
        (_set("MetaData.CreateTime", "2017-09-20 18:32"), "MetaData.CreateTime", "Invalid datetime"),
        (_set("PrintStatus", "Maybe"), "PrintStatus", "must be one of"),
        (_set("sparse", "false"), "sparse", "expected a JSON boolean"),
        (_set("status", "Gone"), "status", "must be one of"),
        (_set("TotalAmt", True), "TotalAmt", "expected a JSON number"),
        (_set("DocNumber", 1005), "DocNumber", "expected a JSON string"),
        (_set("CurrencyRef", "USD"), "CurrencyRef", "expected an object {'value': ...}"),
        (_set("CurrencyRef", {"value": 840}), "CurrencyRef.value", "expected a JSON string"),
        (_set("CurrencyRef", {"value": "USD", "code": "840"}), "CurrencyRef.code", "not declared in ReferenceType"),
        (_set("Line", {"Amount": 0, "DetailType": "SubTotalLineDetail"}), "Line", "expected a list"),
        (_set("MetaData", [{"CreateTime": "2017-09-20T18:32:11-07:00"}]), "MetaData", "got a list"),
        (_set("PrivateNote", None), "PrivateNote", "null is not allowed"),
        (_set("Line.0.DiscountLineDetail", {"PercentBased": True}), "Line[0].SalesItemLineDetail", "Unexpected"),
    ],
)
def test_what_is_wrong_is_named_at_its_path(change: Callable[[dict[str, Any]], None], where: str, what: str) -> None:
    entity = receipt()
    change(entity)
    with pytest.raises(QboSchemaError) as raised:
        validate_entity("SalesReceipt", entity)
    assert str(raised.value).startswith(f"SalesReceipt: SalesReceipt.{where}: "), raised.value
    assert what in str(raised.value)


def test_json_numbers_become_xsd_decimals() -> None:
    entity = receipt()
    entity["TotalAmt"] = 1e16  # Python writes 1e+16, which is no xs:decimal: it must be sent as digits
    entity["Balance"] = 12.345
    entity["Line"][0]["SalesItemLineDetail"]["Qty"] = 2
    validate_entity("SalesReceipt", entity)


def test_a_fault_passes_and_a_broken_one_fails() -> None:
    validate_response(load("item_read_item_error.json"))
    body: dict[str, Any] = {
        "Fault": {
            "Error": [
                {
                    "Message": "Stale Object Error",
                    "Detail": "Stale Object Error : You and root were working on this at the same time.",
                    "code": "5010",
                },
                {"Message": "Required param missing", "code": "2020", "element": "Line.Amount"},
            ],
            "type": "ValidationFault",
        },
        "time": "2017-09-20T18:32:11.363-07:00",
    }
    validate_response(body)
    no_code = copy.deepcopy(body)
    del no_code["Fault"]["Error"][1]["code"]
    with pytest.raises(QboSchemaError, match=r"^response: Fault\.Error\[1\]: missing required attribute 'code'"):
        validate_response(no_code)
    typo = copy.deepcopy(body)
    typo["Fault"]["Error"][0]["Mesage"] = typo["Fault"]["Error"][0].pop("Message")
    with pytest.raises(QboSchemaError, match=r"^response: Fault\.Error\[0\]\.Mesage: not declared in Error$"):
        validate_response(typo)


def cdc_body() -> dict[str, Any]:
    """Constructed (no recorded CDC answer is at hand) after Intuit's CDC shape: one QueryResponse
    per entity type, a deleted entity reduced to its Id, status and MetaData."""
    return {
        "CDCResponse": [
            {
                "QueryResponse": [
                    {
                        "Invoice": [
                            {
                                "domain": "QBO",
                                "status": "Deleted",
                                "Id": "130",
                                "MetaData": {"LastUpdatedTime": "2017-09-21T10:04:12-07:00"},
                            }
                        ],
                        "startPosition": 1,
                        "maxResults": 1,
                    },
                    {"SalesReceipt": [receipt()], "startPosition": 1, "maxResults": 1},
                    {"Item": load("api_query.json")["QueryResponse"]["Item"][:2], "startPosition": 1, "maxResults": 2},
                ]
            }
        ],
        "time": "2017-09-21T10:05:00.120-07:00",
    }


def test_a_cdc_answer_with_a_deleted_invoice_passes() -> None:
    validate_response(cdc_body())
    validate_response(reversed_keys(cdc_body()))


def test_a_cdc_answer_names_the_entity_at_fault() -> None:
    body = cdc_body()
    body["CDCResponse"][0]["QueryResponse"][0]["Invoice"][0]["Deleted"] = True
    with pytest.raises(
        QboSchemaError, match=r"^Invoice: CDCResponse\[0\]\.QueryResponse\[0\]\.Invoice\[0\]\.Deleted: not declared"
    ):
        validate_response(body)
    body = cdc_body()
    body["CDCResponse"][0]["QueryResponse"][2]["Item"][1]["UnitPrice"] = "75"
    with pytest.raises(QboSchemaError, match=r"^Item: CDCResponse\[0\]\.QueryResponse\[2\]\.Item\[1\]\.UnitPrice: "):
        validate_response(body)


def test_only_a_deleted_entity_may_lack_required_elements() -> None:
    """The XSD requires an InventoryAdjustment's AdjustAccountRef: a deleted one carries none."""
    stub = {"Id": "7", "MetaData": {"LastUpdatedTime": "2017-09-21T10:04:12-07:00"}}
    validate_entity("InventoryAdjustment", {**stub, "status": "Deleted"})
    with pytest.raises(QboSchemaError, match=r"^InventoryAdjustment: InventoryAdjustment: .*AdjustAccountRef"):
        validate_entity("InventoryAdjustment", stub)


def test_the_envelope_holds_exactly_one_answer() -> None:
    body = load("item_read_item.json")
    validate_response(body)
    with pytest.raises(QboSchemaError, match=r"^response: expected exactly one .*got none"):
        validate_response({"time": body["time"]})
    with pytest.raises(QboSchemaError, match=r"^response: expected exactly one .*\['Item', 'SalesReceipt'\]"):
        validate_response({**body, "SalesReceipt": receipt()})
    with pytest.raises(QboSchemaError, match=r"^response: requestid: not declared in IntuitResponse$"):
        validate_response({**body, "requestid": "abc"})
    with pytest.raises(QboSchemaError, match=r"^response: time: "):
        validate_response({**body, "time": "yesterday"})
    with pytest.raises(QboSchemaError, match=r"^response: QueryResponse\.startPosition: expected a JSON number"):
        validate_response({"QueryResponse": {"Item": [], "startPosition": "1"}})


def test_jaxb_any_content_is_checked() -> None:
    """Constructed after the Payment answers Intuit sends: ``LineEx`` (IntuitAnyType, xs:any) is
    JAXB's list of named elements."""

    def name_value(name: str, value: str) -> dict[str, Any]:
        return {
            "name": f"{{{NS}}}NameValue",
            "declaredType": "com.intuit.schema.finance.v3.NameValue",
            "scope": "javax.xml.bind.JAXBElement$GlobalScope",
            "value": {"Name": name, "Value": value},
            "nil": False,
            "globalScope": True,
            "typeSubstituted": False,
        }

    payment: dict[str, Any] = {
        "CustomerRef": {"value": "3", "name": "Cool Cars"},
        "DepositToAccountRef": {"value": "4"},
        "TotalAmt": 22,
        "UnappliedAmt": 0,
        "ProcessPayment": False,
        "domain": "QBO",
        "sparse": False,
        "Id": "237",
        "SyncToken": "0",
        "MetaData": {"CreateTime": "2015-06-04T10:04:41-07:00", "LastUpdatedTime": "2015-06-04T10:04:41-07:00"},
        "TxnDate": "2015-06-04",
        "Line": [
            {
                "Amount": 22,
                "LinkedTxn": [{"TxnId": "188", "TxnType": "Invoice"}],
                "LineEx": {"any": [name_value("txnId", "188"), name_value("txnOpenBalance", "22.00")]},
            }
        ],
    }
    validate_entity("Payment", payment)
    payment["Line"][0]["LineEx"]["any"][1]["value"]["Valu"] = "22.00"
    with pytest.raises(
        QboSchemaError, match=r"^Payment: Payment\.Line\[0\]\.LineEx\.any\[1\]\.value\.Valu: not declared in NameValue$"
    ):
        validate_entity("Payment", payment)


def test_an_unknown_entity_name_fails() -> None:
    with pytest.raises(QboSchemaError, match=r"^SalesReciept: no such element"):
        validate_entity("SalesReciept", receipt())
