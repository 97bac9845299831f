"""Every request of Acumatica's official Postman collection on what the sim serves, run on a sim
seeded with the demo company (``{"demo": true}``), succeeds, or is in ``EXCEPTIONS`` with its reason.

The collection (tests/fixtures/acumatica/postman_collection_requests.json) has 258 requests; the
sim serves those on its entities and inquiries plus sign-in, sign-out and the endpoint list. Each
request runs on a fresh sim (tenant U100, as the collection signs in) after the earlier requests of
its scenario that it depends on (``PREREQUISITES``), with the collection's variables filled in the
way its scripts fill them (``VARIABLES``, ``CAPTURES``). Success: 2xx, no ``error`` in the answer, a
202's status URL answering 204, and a JSON answer on an entity holding to the OpenAPI, except
where it echoes a field the request itself sent: the sim keeps what a client writes as written,
while Acumatica drops fields its endpoint lacks (the collection sends ``Branch`` on invoice lines,
``LocationID`` on an invoice) and converts values to the field's type (``"50"`` -> 50, ``"1"`` -> 1,
a date without an offset -> with the tenant's). Everything else in the answer is checked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from sandbox.sims.acumatica import INQUIRIES, SPECS, create_app
from tests.contract.test_acumatica_openapi import contract

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "acumatica"
BASE = "/entity/Default/24.200.001/"
TENANT = "U100"
VARIABLES = {
    # sign-in data of the collection's variables
    "TenantU100": TENANT,
    "BranchU100": "HEADOFFICE",
    "UsernameU100": "admin",
    "PasswordU100": "123",
    # what the collection's pre-request scripts create or read before the request, in the demo company
    "orderNbr1": "000066",
    "orderNbr2": "000067",
    "paymentNbr": "000075",
    "invoiceNbr": "000126",
    "RMorderNbr": "000127",
    "paymentRefNbr": "000001",
}
# Requests are named by their position in the collection (item names repeat across scenarios);
# test_collection_tables_name_the_right_requests checks each position against its item path.
PREREQUISITES: dict[int, list[int]] = {
    # request -> earlier requests of its scenario it builds on
    3: [2],  # Update a Record (by the e-mail) <- Create a Record (JOHNGOOD, that e-mail)
    120: [119],  # Invoke Release of an Invoice <- Remove a Sales Invoice from Hold (INV000046)
    208: [207],  # Prepare an Invoice for the Shipment <- Confirm the Shipment (000068)
    217: [216],  # Prepare a Credit Memo <- Confirm the Receipt (000069)
    221: [220],  # Prepare an Invoice <- Confirm the Shipment (000070)
    244: [243],  # Prepare an Invoice for the Shipment <- Confirm the Shipment (000071)
    251: [250],  # Prepare an Invoice for the Shipment <- Confirm the Shipment (000072)
}
CAPTURES: dict[int, tuple[int, Callable[[Any], dict[str, str]]]] = {
    # request -> (the request whose answer the collection's script reads, what it takes from it)
    147: (146, lambda rows: {"shipmentID": rows[0]["id"], "packageID": rows[0]["Packages"][0]["id"]}),
    136: (135, lambda rows: {f"{ln['InventoryID']['value']}_detail_ID": ln["id"] for ln in rows[0]["Details"]}),
}
EXCEPTIONS: dict[int, tuple[int, str]] = {
    # request -> (the status the sim answers, why it does not succeed)
    91: (
        404,
        "Release a Payment calls POST Payment/Release: Default/24.200.001 has no action of that name (the "
        "Payment actions are ReleasePayment, VoidPayment, CaptureCreditCardPayment, CardOperation, "
        "VoidCardPayment), so a real instance refuses it as well; the POS scenarios release by ReleasePayment",
    ),
    23: (
        404,
        "Retrieve the Schema of Custom Fields (GET StockItem/$adHocSchema) describes a tenant's custom fields; "
        "the sim keeps no custom fields of its own",
    ),
}
SHIPPED = "/Scenarios/POS Systems/Entry of a Direct Sales Invoice for a Shipped Order and Return: "
PARTIAL = "/Scenarios/POS Systems/Entry of a Direct Sales Invoice for a Partially Shipped Sales Order: "
CREDIT = "/Scenarios/POS Systems/Entry of a Credit Memo for an Unshipped Sales Order: "
NAMES = {
    2: "/Basic Requests/Create a Record",
    3: "/Basic Requests/Update a Record",
    23: "/Basic Requests/Retrieve the Schema of Custom Fields",
    91: "/Payment/Release a Payment",
    119: "/SalesInvoice/Remove a Sales Invoice from Hold",
    120: "/SalesInvoice/Invoke Release of an Invoice",
    135: "/SalesOrder/Retrieve a Sales Order by the Values of Specific Fields",
    136: "/SalesOrder/Update the Detail Lines of a Sales Order",
    146: "/Shipment/Read the Tracking Number from a Shipment",
    147: "/Shipment/Write the Tracking Number to a Shipment",
    207: SHIPPED + "Confirm the Shipment",
    208: SHIPPED + "Prepare an Invoice for the Shipment",
    216: SHIPPED + "Confirm the Receipt",
    217: SHIPPED + "Prepare a Credit Memo",
    220: SHIPPED + "Confirm the Shipment",
    221: SHIPPED + "Prepare an Invoice",
    243: PARTIAL + "Confirm the Shipment",
    244: PARTIAL + "Prepare an Invoice for the Shipment",
    250: CREDIT + "Confirm the Shipment",
    251: CREDIT + "Prepare an Invoice for the Shipment",
}


@cache
def collection() -> list[dict[str, Any]]:
    return list(json.loads((FIXTURES / "postman_collection_requests.json").read_text())["requests"])


def target(url: str) -> str | None:
    """The sim path of a collection URL, or ``None`` when the sim does not serve it."""
    if url.startswith("{{EndpointURL}}"):
        rest = url.removeprefix("{{EndpointURL}}").lstrip("/")
        entity = rest.split("?")[0].split("/")[0]
        return BASE + rest if entity in SPECS or entity in INQUIRIES else None
    if url.startswith("{{InstanceURL}}"):
        rest = "/" + url.removeprefix("{{InstanceURL}}").lstrip("/")
        return rest if rest.split("?")[0] in ("/entity", "/entity/auth/login", "/entity/auth/logout") else None
    return None


def served() -> list[int]:
    """Positions of the requests the sim serves."""
    return [i for i, r in enumerate(collection()) if target(r["url"]) is not None]


def fill(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\{\{(\w+)\}\}", lambda m: values.get(m.group(1), m.group(0)), text)


def fresh() -> TestClient:
    client = TestClient(create_app(company=TENANT))
    assert (
        client.post("/entity/auth/login", json={"name": "admin", "password": "123", "tenant": TENANT}).status_code
        == 204
    )
    seeded = client.post("/_sim/seed", json={"demo": True})
    assert seeded.status_code == 200, seeded.text
    return client


def send(client: TestClient, request: dict[str, Any], values: dict[str, str]) -> Any:
    path = fill(str(target(request["url"])), values)
    body = fill(request["body_raw"], values)
    return client.request(
        request["method"],
        path,
        content=body.encode() if body.strip() else None,
        headers={"Content-Type": "application/json"},
    )


def outcome(client: TestClient, request: dict[str, Any], answer: Any) -> str | None:
    """Why an answer is not a success (``None`` when it is)."""
    if answer.status_code not in (200, 202, 204):
        return f"{answer.status_code}: {answer.text[:600]}"
    if answer.status_code == 202:
        status = client.get(answer.headers["Location"])
        if status.status_code != 204:
            return f"the operation status answered {status.status_code}"
    if answer.status_code == 200 and answer.content:
        text = answer.text
        if re.search(r'"error"\s*:', text):
            return f"error in the answer: {text[:600]}"
        entity = str(target(request["url"])).removeprefix(BASE).split("?")[0].split("/")[0]
        if entity in SPECS or entity in INQUIRIES:
            sent = sent_paths(request["body_raw"])
            records = answer.json() if isinstance(answer.json(), list) else [answer.json()]
            problems = [
                v
                for rec in records
                for v in contract().violations(entity, rec)
                if re.sub(r"\[\d+\]", "", v.split(":", 1)[0]) not in sent
            ]
            if problems:
                return f"not the contract of {entity}: {problems[:8]}"
    return None


def sent_paths(raw: str) -> set[str]:
    """The field paths a request body gives (``/Details/Branch``), detail indices left out."""
    try:
        body = json.loads(raw.replace("\u00a0", " ")) if raw.strip() else {}
    except ValueError:
        return set()
    out: set[str] = set()

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                out.add(f"{path}/{key}")
                walk(value, f"{path}/{key}")
        elif isinstance(node, list):
            for item in node:
                walk(item, path)

    walk(body, "")
    return out


def run(position: int) -> tuple[TestClient, dict[str, Any], Any]:
    requests = collection()
    client = fresh()
    values = dict(VARIABLES)
    for before in PREREQUISITES.get(position, []):
        answer = send(client, requests[before], values)
        assert outcome(client, requests[before], answer) is None, f"prerequisite #{before}: {answer.text[:400]}"
    if position in CAPTURES:
        source, take = CAPTURES[position]
        answer = send(client, requests[source], values)
        assert answer.status_code == 200, answer.text
        values.update(take(answer.json()))
    return client, requests[position], send(client, requests[position], values)


@pytest.mark.parametrize("position", served(), ids=lambda i: f"{i}-{collection()[i]['postman_item'][-60:]}")
def test_collection_request(position: int) -> None:
    client, request, answer = run(position)
    if position in EXCEPTIONS:
        status, reason = EXCEPTIONS[position]
        assert answer.status_code == status, f"documented as {status} ({reason}), answered {answer.status_code}"
        return
    problem = outcome(client, request, answer)
    assert problem is None, f"{request['method']} {request['url'][:120]}: {problem}"


def test_collection_tables_name_the_right_requests() -> None:
    requests = collection()
    assert len(requests) == 258
    for position, name in NAMES.items():
        assert requests[position]["postman_item"] == name, position
    tables: list[Any] = [PREREQUISITES, CAPTURES, EXCEPTIONS]
    used = {p for t in tables for p in t} | {b for bs in PREREQUISITES.values() for b in bs}
    used |= {source for source, _ in CAPTURES.values()}
    assert used <= set(NAMES)
    assert set(EXCEPTIONS) <= set(served())


def test_collection_count() -> None:
    """The sim serves 141 of the 258 requests (134 on the order-to-cash entities, 3 on inquiries,
    1 on ItemWarehouse, sign-in, sign-out and the endpoint list); all but the exceptions succeed."""
    assert len(served()) == 141
    assert len(served()) - len(EXCEPTIONS) == 139
