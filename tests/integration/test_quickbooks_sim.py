"""The QuickBooks Online sim answers as Intuit does, every answer checked against the official XSDs
(tests/support/qbo_schema.py), and erpsync's client reads its Faults: a ``requestid`` replays the
first answer, a stale ``SyncToken`` is fault 5010, a batch answers each item with its entity or its
Fault inside HTTP 200, change data capture lists a deleted invoice by id only, a duplicate name is
fault 6240, and more than 10 requests a second are refused with 429."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from starlette.testclient import TestClient

from erpsync.errors import NotFoundError, RateLimitedError, RetryableError
from erpsync.systems.quickbooks.client import Fault, QuickBooksClient
from sandbox.sims import quickbooks as sim
from tests.support.qbo_schema import validate_response

V3 = f"/v3/company/{sim.REALM}"
H = {"Authorization": f"Bearer {sim.ACCESS_TOKEN}", "Accept": "application/json"}


@pytest.fixture
def qbo() -> TestClient:
    client = TestClient(sim.create_app(), base_url="http://qbo")
    client.post(
        "/_sim/seed",
        json={
            **sim.sample_seed(),
            "customers": [{"DisplayName": "Amy's Bird Sanctuary", "PrimaryEmailAddr": {"Address": "amy@example.com"}}],
        },
    )
    return client


def call(qbo: TestClient, method: str, path: str, **kw: Any) -> tuple[int, dict[str, Any]]:
    r = qbo.request(method, f"{V3}{path}", headers=H, **kw)
    body: dict[str, Any] = r.json()
    validate_response(body)
    return r.status_code, body


def receipt(customer: str, item: str, amount: float = 34.0) -> dict[str, Any]:
    return {
        "CustomerRef": {"value": customer},
        "Line": [
            {
                "DetailType": "SalesItemLineDetail",
                "Amount": amount,
                "SalesItemLineDetail": {"ItemRef": {"value": item}, "Qty": 1, "UnitPrice": amount},
            }
        ],
        "TxnTaxDetail": {"TotalTax": 2.81},
    }


def ids(qbo: TestClient) -> tuple[str, str]:
    _, customers = call(qbo, "GET", "/query", params={"query": "select * from Customer"})
    _, items = call(qbo, "GET", "/query", params={"query": "select * from Item where Sku = '24-MB01'"})
    return customers["QueryResponse"]["Customer"][0]["Id"], items["QueryResponse"]["Item"][0]["Id"]


def test_a_request_id_replays_the_first_answer(qbo: TestClient) -> None:
    customer, item = ids(qbo)
    rid = str(uuid.uuid4())
    status, first = call(qbo, "POST", "/salesreceipt", params={"requestid": rid}, json=receipt(customer, item))
    assert status == 200 and first["SalesReceipt"]["TotalAmt"] == 36.81
    _, again = call(qbo, "POST", "/salesreceipt", params={"requestid": rid}, json=receipt(customer, item))
    assert again["SalesReceipt"]["Id"] == first["SalesReceipt"]["Id"]
    _, listed = call(qbo, "GET", "/query", params={"query": "select * from SalesReceipt"})
    assert len(listed["QueryResponse"]["SalesReceipt"]) == 1


def test_a_stale_sync_token_is_5010_and_the_client_retries_it(qbo: TestClient) -> None:
    customer, _ = ids(qbo)
    _, read = call(qbo, "GET", f"/customer/{customer}")
    record = read["Customer"]
    call(
        qbo,
        "POST",
        "/customer",
        json={"Id": customer, "SyncToken": record["SyncToken"], "sparse": True, "Notes": "first"},
    )
    status, fault = call(
        qbo,
        "POST",
        "/customer",
        json={"Id": customer, "SyncToken": record["SyncToken"], "sparse": True, "Notes": "second"},
    )
    assert status == 400 and fault["Fault"]["Error"][0]["code"] == "5010"
    client = QuickBooksClient("http://qbo", sim.REALM, lambda: sim.ACCESS_TOKEN, http=qbo)
    with pytest.raises(RetryableError, match="Stale Object Error") as caught:
        client.post("/customer", {"Id": customer, "SyncToken": record["SyncToken"], "sparse": True})
    assert caught.value.error_type == "stale"
    with pytest.raises(NotFoundError, match="610"):
        client.get("/invoice/424242")


def test_a_batch_answers_each_item_with_its_entity_or_its_fault(qbo: TestClient) -> None:
    customer, item = ids(qbo)
    body = {
        "BatchItemRequest": [
            {"bId": "1", "operation": "create", "SalesReceipt": receipt(customer, item)},
            {"bId": "2", "operation": "create", "SalesReceipt": receipt(customer, "999999")},
            {"bId": "3", "operation": "create", "Customer": {"DisplayName": "Amy's Bird Sanctuary"}},
            {"bId": "4", "Query": "select * from Item where Name = 'Shipping'"},
        ]
    }
    status, answer = call(qbo, "POST", "/batch", json=body)
    assert status == 200
    by_id = {a["bId"]: a for a in answer["BatchItemResponse"]}
    assert by_id["1"]["SalesReceipt"]["TotalAmt"] == 36.81
    assert by_id["2"]["Fault"]["Error"][0]["code"] == "610"
    assert by_id["3"]["Fault"]["Error"][0]["code"] == "6240"
    assert by_id["4"]["QueryResponse"]["Item"][0]["Name"] == "Shipping"


def test_change_data_capture_lists_a_deleted_invoice_by_id_only(qbo: TestClient) -> None:
    customer, item = ids(qbo)
    _, made = call(qbo, "POST", "/invoice", json=receipt(customer, item))
    invoice = made["Invoice"]
    call(
        qbo,
        "POST",
        "/invoice",
        params={"operation": "delete"},
        json={"Id": invoice["Id"], "SyncToken": invoice["SyncToken"]},
    )
    _, cdc = call(qbo, "GET", "/cdc", params={"entities": "Invoice,Customer", "changedSince": "2020-01-01T00:00:00Z"})
    blocks = cdc["CDCResponse"][0]["QueryResponse"]
    [deleted] = blocks[0]["Invoice"]
    assert deleted["status"] == "Deleted" and set(deleted) == {"Id", "status", "domain", "MetaData"}
    assert blocks[1]["Customer"][0]["DisplayName"] == "Amy's Bird Sanctuary"


def test_more_than_ten_requests_a_second_are_refused_and_the_client_keeps_under(qbo: TestClient) -> None:
    codes = [qbo.get(f"{V3}/customer/1", headers=H).status_code for _ in range(12)]
    assert 429 in codes
    r = qbo.get(f"{V3}/customer/1", headers=H)
    if r.status_code == 429:
        assert r.json()["Fault"]["Error"][0]["code"] == "3001"
    qbo.post("/_sim/reset")
    qbo.post("/_sim/seed", json=sim.sample_seed())
    client = QuickBooksClient("http://qbo", sim.REALM, lambda: sim.ACCESS_TOKEN, http=qbo)
    for _ in range(25):  # paced: 10 a second at most
        client.query("select * from Item where Name = 'Shipping'")


def test_a_wrong_token_is_a_3200_fault_and_a_bad_query_says_why(qbo: TestClient) -> None:
    r = qbo.get(f"{V3}/customer/1", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.json()["Fault"]["Error"][0]["code"] == "3200"
    client = QuickBooksClient("http://qbo", sim.REALM, lambda: sim.ACCESS_TOKEN, http=qbo)
    with pytest.raises(Fault, match="QueryParserError"):
        client.query("select * from Customer where DisplayName = unquoted")
    qbo.post("/_sim/faults", json={"throttle_rate": 1.0})
    with pytest.raises(RateLimitedError):
        client.query("select * from Customer")


def test_changed_customers_come_page_by_page_and_only_the_last_page_proves_a_checkpoint(qbo: TestClient) -> None:
    from datetime import UTC, datetime, timedelta

    from erpsync.systems.quickbooks.adapter import QuickBooksSystem
    from erpsync.systems.quickbooks.settings import QuickBooksSettings

    for n in range(4):
        qbo.post(
            "/_sim/seed",
            json={"customers": [{"DisplayName": f"Buyer {n}", "PrimaryEmailAddr": {"Address": f"b{n}@example.com"}}]},
        )
    client = QuickBooksClient("http://qbo", sim.REALM, lambda: sim.ACCESS_TOKEN, http=qbo)
    system = QuickBooksSystem(client, "quickbooks", lambda: QuickBooksSettings(page_size=2))
    pages = list(system.port("customer", "source").changes(datetime.now(UTC) - timedelta(hours=1)))
    assert [len(p.notices) for p in pages] == [2, 2, 1]  # the seeded customer and four buyers
    assert [p.checkpoint is None for p in pages] == [True, True, False]
    emails = [system.port("customer", "source").get(n.id).email for p in pages for n in p.notices]
    assert emails[-4:] == [f"b{n}@example.com" for n in range(4)]
