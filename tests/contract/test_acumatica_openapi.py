"""Every answer of the Acumatica sim validates against the official OpenAPI of Default/24.200.001.

The schemas are those of ``EndpointDefinitions/Default_24.200.001`` (Acumatica's official REST
client), trimmed to the entities the sim serves (tests/fixtures/acumatica/SOURCES.md). The check
is stricter than plain JSON Schema: the OpenAPI declares no ``additionalProperties``, so a field
the contract does not name would pass unseen; here every field must be one the entity's schema
declares (``allOf`` and ``$ref`` resolved), every value wrapper holds only ``value`` and ``error``,
and values have the declared type and format (``date-time`` with an offset, ``uuid``).
Three things the OpenAPI cannot say are allowed: ``_links`` on a top-level record (every real
answer has it), ``"note": null`` on a detail line (Acumatica answers detail lines so), and an
empty value beside a field-level ``error`` in a 422 (the field the request lacked). The fields in
``KNOWN_EXTRA`` are the sim's own, outside the contract, each with the reason it stays for now.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from starlette.testclient import TestClient

from sandbox.sims.acumatica import ACTIONS, INQUIRIES, SPECS, create_app
from sandbox.sims.acumatica_catalog import INQUIRY_FIELDS

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "acumatica"
BASE = "/entity/Default/24.200.001/"
WRAPPER_KEYS = {"value", "error"}
INQUIRY_DETAILS = {
    "StorageDetailsInquiry": "StorageDetails",
    "InventoryQuantityAvailable": "Results",
    "InventorySummaryInquiry": "Results",
    "SalesPricesInquiry": "SalesPriceDetails",
}

KNOWN_EXTRA = {
    ("SalesOrderDetail", "ShippedQty"): "the sim's confirmed-shipped quantity per order line (the contract has "
    "QtyOnShipments and OpenQty); tests/integration/test_acumatica_sim.py asserts it, so it goes with that test",
    ("SalesInvoice", "CurrencyID"): "the contract names it Currency; erpsync's adapter reads CurrencyID "
    "(layers/shared/python/erpsync/systems/acumatica/mapping.py, invoice()), so both change together",
}
"""(schema, field) -> why the sim still answers a field its contract does not have."""

FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if "T" not in value or datetime.fromisoformat(value.replace("Z", "+00:00")).tzinfo is None:
        raise ValueError(f"{value!r} is not a date-time with an offset")
    return True


@FORMATS.checks("uuid", raises=ValueError)
def _uuid(value: object) -> bool:
    if isinstance(value, str):
        uuid.UUID(value)
    return True


class Contract:
    """The OpenAPI's component schemas, and a strict check of an answer against one of them."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.schemas: dict[str, Any] = document["components"]["schemas"]

    def properties(self, name: str) -> dict[str, Any]:
        """The properties of a component, ``allOf`` parts merged."""
        schema = self.schemas[name]
        out: dict[str, Any] = {}
        for part in schema.get("allOf", [schema]):
            if "$ref" in part:
                out.update(self.properties(part["$ref"].rsplit("/", 1)[-1]))
            out.update(part.get("properties", {}))
        return out

    def is_wrapper(self, name: str) -> bool:
        return set(self.properties(name)) == WRAPPER_KEYS

    def violations(self, name: str, instance: Any, path: str = "", top: bool = True) -> list[str]:
        """Every way ``instance`` breaks component ``name`` (empty when it holds to it)."""
        if not isinstance(instance, dict):
            return [f"{path or '/'}: {type(instance).__name__} where {name} is an object"]
        props = self.properties(name)
        out: list[str] = []
        for key, value in instance.items():
            where = f"{path}/{key}"
            if key == "_links" and top:
                continue
            if key == "note" and value is None and not top:
                continue
            if key not in props:
                if (name, key) not in KNOWN_EXTRA:
                    out.append(f"{where}: not a field of {name}")
                continue
            out.extend(self._check(props[key], value, where))
        return out

    def _check(self, schema: dict[str, Any], value: Any, where: str) -> list[str]:
        if "$ref" in schema:
            target = schema["$ref"].rsplit("/", 1)[-1]
            if not self.is_wrapper(target):
                return self.violations(target, value, where, top=False)
            if not isinstance(value, dict):
                return [f"{where}: {value!r} is not a {target}"]
            extra = set(value) - WRAPPER_KEYS
            if extra:
                return [f"{where}: {target} with {sorted(extra)}"]
            if value.get("value") is None and "error" in value:
                return []  # a 422's error beside a field the request did not give
            return self._plain(self.schemas[target], value, where)
        if schema.get("type") == "array" and "$ref" in schema.get("items", {}):
            if not isinstance(value, list):
                return [f"{where}: {type(value).__name__} where a list is declared"]
            return [v for i, item in enumerate(value) for v in self._check(schema["items"], item, f"{where}[{i}]")]
        return self._plain(schema, value, where)

    def _plain(self, schema: dict[str, Any], value: Any, where: str) -> list[str]:
        root = {**schema, "components": {"schemas": self.schemas}}
        validator = jsonschema.Draft4Validator(root, format_checker=FORMATS)
        return [f"{where}: {e.message}" for e in validator.iter_errors(value)]


@cache
def contract() -> Contract:
    return Contract(json.loads((FIXTURES / "openapi-Default-24.200.001-served.json").read_text()))


def assert_holds(entity: str, answer: Any) -> None:
    """``answer`` (a record or a list of records) holds to the schema of ``entity``."""
    records = answer if isinstance(answer, list) else [answer]
    problems = [v for rec in records for v in contract().violations(entity, rec)]
    assert not problems, f"{entity}: " + "; ".join(problems[:12])


def detail_names(entity: str) -> list[str]:
    """The entity's detail collections and linked entities (what ``$expand`` can name)."""
    return [
        k
        for k, v in contract().properties(entity).items()
        if (v.get("type") == "array" and "$ref" in v.get("items", {}))
        or ("$ref" in v and not contract().is_wrapper(v["$ref"].rsplit("/", 1)[-1]) and k != "note")
    ]


@pytest.fixture
def client() -> TestClient:
    c = TestClient(create_app())
    assert c.post("/entity/auth/login", json={"name": "admin", "password": "123"}).status_code == 204
    answer = c.post("/_sim/seed", json={"demo": True})
    assert answer.status_code == 200, answer.text
    return c


# -- the validator itself --------------------------------------------------------------------------


def test_validator_accepts_a_good_record() -> None:
    good = {
        "id": str(uuid.uuid4()),
        "rowNumber": 1,
        "note": {"value": ""},
        "InventoryID": {"value": "X"},
        "DefaultPrice": {"value": 1.5},
        "LastModified": {"value": "2024-01-02T03:04:05.123+00:00"},
        "WarehouseDetails": [{"id": str(uuid.uuid4()), "note": None, "QtyOnHand": {"value": 3}}],
        "custom": {},
        "_links": {"self": "/x"},
    }
    assert contract().violations("StockItem", good) == []


@pytest.mark.parametrize(
    ("record", "needle"),
    [
        ({"InventoryId": {"value": "X"}}, "not a field of StockItem"),
        ({"DefaultPrice": {"value": "1.5"}}, "is not of type 'number'"),
        ({"DefaultPrice": 1.5}, "is not a DecimalValue"),
        ({"LastModified": {"value": "2024-01-02"}}, "date-time"),
        ({"InventoryID": {"value": "X", "translations": {}}}, "StringValue with"),
        ({"WarehouseDetails": [{"Qty": {"value": 1}}]}, "not a field of StockItemWarehouseDetail"),
        ({"Attributes": {"AttributeID": {"value": "A"}}}, "where a list is declared"),
        ({"id": "not-a-guid"}, "/id"),
    ],
)
def test_validator_rejects(record: dict[str, Any], needle: str) -> None:
    problems = contract().violations("StockItem", record)
    assert problems and any(needle in p for p in problems), problems


# -- the sim's answers -----------------------------------------------------------------------------


@pytest.mark.parametrize("entity", sorted(SPECS))
def test_list_answers_hold_to_the_contract(client: TestClient, entity: str) -> None:
    expand = ",".join(detail_names(entity))
    answer = client.get(BASE + entity, params={"$expand": expand} if expand else {})
    assert answer.status_code == 200, answer.text
    records = answer.json()
    assert records, f"the demo company has no {entity}"
    assert_holds(entity, records)


@pytest.mark.parametrize("entity", sorted(SPECS))
def test_single_record_answers_hold_to_the_contract(client: TestClient, entity: str) -> None:
    first = client.get(BASE + entity, params={"$top": "1"}).json()[0]
    expand = ",".join(detail_names(entity))
    answer = client.get(f"{BASE}{entity}/{first['id']}", params={"$expand": expand} if expand else {})
    assert answer.status_code == 200, answer.text
    assert_holds(entity, answer.json())


@pytest.mark.parametrize(
    ("inquiry", "body"),
    [
        ("StorageDetailsInquiry", {"WarehouseID": {"value": "WHOLESALE"}}),
        ("InventoryQuantityAvailable", {"LastModifiedDateTime": {"value": "6/7/2024"}}),
        ("InventorySummaryInquiry", {"InventoryID": {"value": "APJAM08"}}),
        ("SalesPricesInquiry", {"PriceType": {"value": "All Prices"}}),
    ],
)
def test_inquiry_answers_hold_to_the_contract(client: TestClient, inquiry: str, body: dict[str, Any]) -> None:
    answer = client.put(BASE + inquiry, params={"$expand": INQUIRY_DETAILS[inquiry]}, json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()[INQUIRY_DETAILS[inquiry]], answer.text
    assert_holds(inquiry, answer.json())


def test_every_inquiry_is_checked() -> None:
    assert set(INQUIRY_DETAILS) == set(INQUIRIES)


@pytest.mark.parametrize(
    ("entity", "body"),
    [
        (
            "StockItem",
            {
                "InventoryID": {"value": "BAD1"},
                "Attributes": [{"AttributeID": {"value": "COLOR"}, "Value": {"value": "PINK"}}],
            },
        ),
        ("NonStockItem", {"InventoryID": {"value": "APJAM08"}}),
        ("InventoryReceipt", {"Details": [{"InventoryID": {"value": "NOPE"}, "Qty": {"value": 1}}]}),
        (
            "SalesPriceWorksheet",
            {"SalesPrices": [{"PriceType": {"value": "Base"}, "InventoryID": {"value": "APJAM08"}}]},
        ),
        ("ItemSalesCategory", {"Description": {"value": "Orphan"}, "ParentCategoryID": {"value": 999}}),
    ],
)
def test_rejections_hold_to_the_contract(client: TestClient, entity: str, body: dict[str, Any]) -> None:
    answer = client.put(BASE + entity, json=body)
    assert answer.status_code == 422, answer.text
    assert "error" in answer.text
    assert_holds(entity, answer.json())


def test_write_answers_hold_to_the_contract(client: TestClient) -> None:
    sheet = client.put(
        BASE + "SalesPriceWorksheet",
        params={"$expand": "SalesPrices"},
        json={
            "Description": {"value": "Spring prices"},
            "EffectiveDate": {"value": "2030-03-01"},
            "SalesPrices": [
                {"PriceType": {"value": "Base"}, "InventoryID": {"value": "APJAM08"}, "PendingPrice": {"value": 6}},
                {
                    "PriceType": {"value": "Customer Price Class"},
                    "PriceCode": {"value": "WHOLESALE"},
                    "InventoryID": {"value": "APJAM08"},
                    "BreakQty": {"value": 12},
                    "PendingPrice": {"value": 4.5},
                },
            ],
        },
    )
    assert sheet.status_code == 200, sheet.text
    assert_holds("SalesPriceWorksheet", sheet.json())
    receipt = client.put(
        BASE + "InventoryReceipt",
        params={"$expand": "Details"},
        json={
            "Details": [{"InventoryID": {"value": "APJAM08"}, "WarehouseID": {"value": "RETAIL"}, "Qty": {"value": 5}}]
        },
    )
    assert receipt.status_code == 200, receipt.text
    assert_holds("InventoryReceipt", receipt.json())


# -- the names the sim uses ------------------------------------------------------------------------

SIM_ONLY_ACTIONS = {
    ("SalesOrder", "ReleaseFromHold"): "an older sim shortcut for Hold = false (the contract sets Hold by PUT)",
    ("SalesOrder", "PutOnHold"): "an older sim shortcut for Hold = true (the contract sets Hold by PUT)",
}
"""Actions the sim runs that Default/24.200.001 does not define, and why they stay."""


def test_entity_keys_and_change_fields_are_the_contracts() -> None:
    for entity, spec in SPECS.items():
        fields = contract().properties(entity)
        for name in (*spec.keys, spec.modified, *spec.also_modified, *([spec.created] if spec.created else [])):
            assert name in fields, f"{entity}.{name}"


def test_actions_are_the_contracts() -> None:
    document = json.loads((FIXTURES / "openapi-Default-24.200.001-served.json").read_text())
    for entity, actions in ACTIONS.items():
        for action in actions:
            if (entity, action) not in SIM_ONLY_ACTIONS:
                assert f"/{entity}/{action}" in document["paths"], f"{entity}/{action}"
    assert "/Payment/Release" not in document["paths"]


def test_inquiry_filters_are_the_contracts() -> None:
    for inquiry, fields in INQUIRY_FIELDS.items():
        declared = contract().properties(inquiry)
        assert set(fields) <= set(declared), inquiry
        assert INQUIRY_DETAILS[inquiry] in declared
