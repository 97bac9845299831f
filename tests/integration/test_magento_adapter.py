"""MagentoStore and MagentoClient against the sim, in-process through Starlette's TestClient."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from erpsync.errors import (
    AuthError,
    NotFoundError,
    OutageError,
    RateLimitedError,
    RetryableError,
    ValidationFailed,
)
from erpsync.model import DocumentLine, Invoice, Shipment, Track
from erpsync.systems.magento import Filter, MagentoClient, MagentoStore, search_params
from erpsync.systems.magento.adapter import MagentoInvoices, MagentoOrders, MagentoShipments
from erpsync.systems.ports import InvoiceTarget, OrderSource, ShipmentTarget
from sandbox.sims.magento import MagentoSim, create_app
from sandbox.sims.magento_orders import CartLine, build_order, sample_catalog, sample_customer

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "magento" / "order_get_V1_orders_3.json"


@pytest.fixture
def app() -> Starlette:
    return create_app()


@pytest.fixture
def sim(app: Starlette) -> MagentoSim:
    state: MagentoSim = app.state.sim
    return state


@pytest.fixture
def http(app: Starlette) -> TestClient:
    client = TestClient(app)
    client.post("/_sim/seed", json={"orders": [json.loads(FIXTURE.read_text())]})
    return client


@pytest.fixture
def client(http: TestClient) -> MagentoClient:
    return MagentoClient("/rest/default", "admin", "admin123", http=http)


@pytest.fixture
def store(client: MagentoClient) -> MagentoStore:
    return MagentoStore(client)


def line(item_id: str, qty: str) -> DocumentLine:
    return DocumentLine(order_number="SO000001", qty=Decimal(qty), store_line_id=item_id)


def test_serves_the_store_ports(store: MagentoStore) -> None:
    orders: OrderSource = MagentoOrders(store)
    shipments: ShipmentTarget = MagentoShipments(store)
    invoices: InvoiceTarget = MagentoInvoices(store)
    assert store.name == "magento" and orders.store is store
    assert shipments.store is store and invoices.store is store


def test_search_params_shape() -> None:
    params = search_params(
        [Filter("updated_at", "2024-01-01 00:00:00", "gt"), [Filter("a", 1), Filter("b", [1, 2], "in")]],
        [("updated_at", "asc")],
        50,
        2,
    )
    assert params["searchCriteria[filter_groups][1][filters][1][value]"] == "1,2"
    assert params["searchCriteria[sortOrders][0][direction]"] == "ASC"
    assert params["searchCriteria[pageSize]"] == "50" and params["searchCriteria[currentPage]"] == "2"


def test_get_order_and_find(store: MagentoStore, client: MagentoClient) -> None:
    order = store.get_order("3")
    assert order.number == "000000003" and order.computed_total() == order.grand_total
    assert store.find_order_id("000000003") == "3"
    assert store.find_order_id("nope") is None
    with pytest.raises(NotFoundError):
        store.get_order("999")
    before = client.request_count
    store.get_order("3")
    assert client.request_count == before + 1  # the token is reused


def test_changed_orders_pages_oldest_first(http: TestClient, store: MagentoStore) -> None:
    catalog, customer = sample_catalog(), sample_customer()
    orders = []
    for n in range(7):
        order = build_order(catalog, [CartLine("24-MB01")], customer=customer)
        order["updated_at"] = f"2030-01-01 00:00:0{7 - n}"
        orders.append(order)
    http.post("/_sim/seed", json={"orders": orders})
    store.page_size = 3
    notices = store.changed_orders(datetime(2029, 12, 31, tzinfo=UTC))
    assert [n.version for n in notices] == [f"2030-01-01 00:00:0{i}" for i in range(1, 8)]
    assert all(n.source == "magento" and n.entity == "order" for n in notices)
    assert len({n.id for n in notices}) == 7
    assert len(store.changed_orders(datetime(2010, 1, 1))) == 8


def test_a_polled_order_needs_no_second_read_while_fresh(store: MagentoStore, client: MagentoClient) -> None:
    [polled] = store.changed_orders(datetime(2010, 1, 1, tzinfo=UTC))
    assert polled.snapshot is not None and polled.read_at is not None
    fresh = polled.fresh_snapshot(120)
    before = client.request_count
    assert store.get_order(polled.id, fresh) == store.get_order(polled.id)  # the same order either way
    assert client.request_count == before + 1  # only the second call read Magento
    assert store.get_order("3", {"entity_id": 4}).source_id == "3"  # another order's snapshot is not used
    later = polled.read_at + timedelta(seconds=121)
    assert polled.fresh_snapshot(120, now=later) is None  # stale: the worker reads the order again
    assert polled.fresh_snapshot(0) is None  # snapshot_max_age_s 0: always read


def test_shipment_is_idempotent_by_ref(store: MagentoStore, sim: MagentoSim) -> None:
    shipment = Shipment(
        source_id="SH0001",
        lines=[line("11", "1"), line("3", "1")],
        tracks=[Track(number="1Z999", carrier="UPS")],
    )
    assert store.find_shipment("3", "SH0001") is None
    new_id = store.create_shipment("3", shipment, "SH0001", "ups")
    assert store.find_shipment("3", "SH0001") == new_id
    assert store.find_shipment("3", "SH000") is None
    record = sim.shipments[int(new_id)]
    assert record["tracks"][0]["carrier_code"] == "ups" and record["tracks"][0]["title"] == "UPS"
    with pytest.raises(ValidationFailed, match="invalid quantity"):
        store.create_shipment("3", shipment, "SH0002", "ups")


def test_invoice_is_idempotent_by_ref(store: MagentoStore) -> None:
    invoice = Invoice(source_id="INV1", lines=[line("11", "1")])
    new_id = store.create_invoice("3", invoice, "INV1")
    assert store.find_invoice("3", "INV1") == new_id and store.find_invoice("3", "INV2") is None
    with pytest.raises(ValidationFailed):
        store.create_invoice("3", invoice, "INV2")
    rest = Invoice(source_id="INV3", lines=[line(i, "1") for i in ("3", "4", "6", "7", "8", "9")])
    store.create_invoice("3", rest, "INV3")
    order = store.get_order("3")
    assert order.paid == order.grand_total and order.payment_captured


def test_token_renewed_once_on_401(client: MagentoClient, http: TestClient, sim: MagentoSim) -> None:
    client.get("/V1/orders/3")
    sim.revoke_tokens()
    assert client.get("/V1/orders/3")["entity_id"] == 3
    bad = MagentoClient("/rest/default", "admin", "wrong", http=http)
    with pytest.raises(AuthError):
        bad.get("/V1/orders/3")

    secret_now = (client.username, client.password)
    fixed = MagentoClient("/rest/default", "admin", "wrong", http=http, credentials=lambda: secret_now)
    assert fixed.get("/V1/orders/3")["entity_id"] == 3  # the secret read again holds the right password


def test_error_mapping(client: MagentoClient, http: TestClient) -> None:
    with pytest.raises(NotFoundError):
        client.get("/V1/orders/999")
    with pytest.raises(NotFoundError, match="customerId = 42"):
        client.get("/V1/customers/42")
    with pytest.raises(ValidationFailed, match=r"status of canceled"):
        client.post("/V1/orders", {"entity": {"entity_id": 3, "state": "canceled", "status": "canceled"}})
        client.post("/V1/order/3/invoice", {"capture": True})
    client.get("/V1/orders/3")  # token in hand before the faults
    http.post("/_sim/faults", json={"error_rate": 1.0})
    with pytest.raises(RetryableError) as err:
        client.get("/V1/orders/3")
    assert err.value.status == 500 and not isinstance(err.value, RateLimitedError)
    http.post("/_sim/faults", json={"throttle_rate": 1.0, "retry_after_s": 7})
    with pytest.raises(RateLimitedError) as limited:
        client.get("/V1/orders/3")
    assert limited.value.retry_after == 7.0
    http.post("/_sim/faults", json={"outage": True})
    with pytest.raises(OutageError):
        client.get("/V1/orders/3")
    http.delete("/_sim/faults")


def test_transport_errors() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    refused = MagentoClient(
        "http://magento.test/rest/default", "a", "b", http=httpx.Client(transport=httpx.MockTransport(refuse))
    )
    with pytest.raises(OutageError):
        refused.get("/V1/orders/1")
    timed_out = MagentoClient(
        "http://magento.test/rest/default", "a", "b", http=httpx.Client(transport=httpx.MockTransport(slow))
    )
    with pytest.raises(RetryableError) as err:
        timed_out.get("/V1/orders/1")
    assert not isinstance(err.value, OutageError)


def test_search_stops_by_total_count(client: MagentoClient, http: TestClient) -> None:
    orders = [build_order(sample_catalog(), [CartLine("24-MB01")], customer=sample_customer()) for _ in range(4)]
    http.post("/_sim/seed", json={"orders": orders})
    before = client.request_count
    rows = client.search("/V1/orders", sort=[("entity_id", "ASC")], page_size=2)
    assert len(rows) == 5 and len({r["entity_id"] for r in rows}) == 5
    assert client.request_count - before <= 4  # 3 pages (+ a token)


# -- polls read by keyset: nothing skipped when a record moves mid-poll, checkpoints never inside a second


def _seed_orders(http: TestClient, stamps: list[str]) -> list[int]:
    """One order per ``updated_at`` in ``stamps``; their entity ids, in order."""
    orders = []
    for stamp in stamps:
        order = build_order(sample_catalog(), [CartLine("24-MB01")], customer=sample_customer())
        order["updated_at"] = order["created_at"] = stamp
        orders.append(order)
    return [o["entity_id"] for o in http.post("/_sim/seed", json={"orders": orders}).json()["orders"]]


def test_an_order_updated_between_pages_moves_no_other_order_out_of_the_poll(
    http: TestClient, store: MagentoStore, client: MagentoClient
) -> None:
    ids = _seed_orders(http, [f"2020-01-01 00:00:0{n}" for n in range(1, 8)])
    store.page_size = 2
    pages = store.order_pages(datetime(2019, 12, 31, tzinfo=UTC))
    first = next(pages)
    assert [n.id for n in first.notices] == [str(i) for i in ids[:2]]
    # the store edits the first order now: it moves to the end of the search (updated_at now)
    client.post(f"/V1/orders/{ids[0]}/comments", {"statusHistory": {"comment": "called the customer"}})
    rest = [n for page in pages for n in page.notices]
    # offset paging would skip ids[2] here: page 2 of the shifted search starts at ids[3]
    assert [n.id for n in rest] == [str(i) for i in [*ids[2:], ids[0]]]
    assert rest[-1].version > first.notices[0].version  # the edited order again, at its new version


def test_orders_sharing_one_second_over_several_pages(http: TestClient, store: MagentoStore) -> None:
    same = "2020-01-01 00:00:05"
    ids = _seed_orders(http, ["2020-01-01 00:00:04", *[same] * 7, "2020-01-01 00:00:06"])
    store.page_size = 3
    pages = list(store.order_pages(datetime(2019, 12, 31, tzinfo=UTC)))
    assert [n.id for p in pages for n in p.notices] == [str(i) for i in ids]  # each once, in (updated_at, id) order
    at = datetime(2020, 1, 1, 0, 0, 5, tzinfo=UTC)
    # a page that ends inside 00:00:05 (more of it may follow) never checkpoints 00:00:05 itself:
    # the one before it, when the page completed it, or no checkpoint
    assert [p.checkpoint for p in pages] == [at - timedelta(seconds=1), None, at + timedelta(seconds=1)]


def test_a_poll_resumed_from_a_checkpoint_reads_the_rest_of_its_second(http: TestClient, store: MagentoStore) -> None:
    """The runtime stops between pages when time runs low and resumes from the last checkpoint."""
    ids = _seed_orders(http, ["2020-01-01 00:00:04", *["2020-01-01 00:00:05"] * 4])
    store.page_size = 2
    pages = store.order_pages(datetime(2019, 12, 31, tzinfo=UTC))
    first = next(pages)
    pages.close()  # time is up after one page
    assert first.checkpoint is not None  # 00:00:04: its second is over
    resumed = list(store.order_pages(first.checkpoint))  # the next tick, with no lookback
    read = [n.id for n in first.notices] + [n.id for p in resumed for n in p.notices]
    assert set(read) == {str(i) for i in ids}


def test_an_empty_poll_and_a_last_page_that_is_full(
    http: TestClient, store: MagentoStore, client: MagentoClient
) -> None:
    assert list(store.order_pages(datetime(2040, 1, 1, tzinfo=UTC))) == []
    ids = _seed_orders(http, ["2020-01-01 00:00:01", "2020-01-01 00:00:02", "2020-01-01 00:00:02"])
    store.page_size = 3
    before = client.request_count
    [page] = store.order_pages(datetime(2019, 12, 31, tzinfo=UTC))
    assert [n.id for n in page.notices] == [str(i) for i in ids]
    assert page.checkpoint == datetime(2020, 1, 1, 0, 0, 2, tzinfo=UTC)  # total_count says nothing follows
    assert client.request_count - before == 1


def test_the_customers_poll_reads_by_keyset_too(http: TestClient, client: MagentoClient, sim: MagentoSim) -> None:
    from erpsync.systems.magento.adapter import MagentoCustomers
    from erpsync.systems.magento.settings import MagentoSettings

    people = [sample_customer() | {"email": f"c{n}@example.com"} for n in range(7)]
    ids = [c["id"] for c in http.post("/_sim/seed", json={"customers": people}).json()["customers"]]
    for n, cid in enumerate(ids):  # the last four share 00:00:04, more than a page
        sim.customers[cid]["updated_at"] = "2020-01-01 00:00:0" + str(min(n, 3) + 1)
    customers = MagentoCustomers(client, lambda: MagentoSettings(page_size=2), "magento")
    pages = customers.changes(datetime(2019, 12, 31, tzinfo=UTC))
    first = next(pages)
    record = client.get(f"/V1/customers/{ids[0]}")
    client.put(f"/V1/customers/{ids[0]}", {"customer": {**record, "lastname": "Moved"}})  # now: to the end
    rest = list(pages)
    assert [n.id for n in first.notices] == [str(i) for i in ids[:2]]
    assert [n.id for p in rest for n in p.notices] == [str(i) for i in [*ids[2:], ids[0]]]
    # 00:00:02 ends page 1 and might go on; 00:00:04 holds pages 2 to 4
    assert first.checkpoint == datetime(2020, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert [p.checkpoint for p in rest][:2] == [datetime(2020, 1, 1, 0, 0, 3, tzinfo=UTC), None]
