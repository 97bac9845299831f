"""AcumaticaErp + AcumaticaClient against the sim, in-process through Starlette's TestClient."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from urllib.parse import unquote

import httpx
import pytest
from starlette.testclient import TestClient

from erpsync.errors import (
    AuthError,
    NotFoundError,
    OutageError,
    PermanentError,
    RateLimitedError,
    RetryableError,
    UnknownItemError,
    ValidationFailed,
)
from erpsync.model import Address, Customer, DraftLine, SalesOrderDraft
from erpsync.systems.acumatica import AcumaticaClient, AcumaticaErp, AlreadyExists
from erpsync.systems.acumatica.adapter import AcumaticaCustomers
from erpsync.systems.acumatica.settings import AcumaticaSettings
from sandbox.sims.acumatica import create_app

SINCE = datetime(2000, 1, 1, tzinfo=UTC)


@pytest.fixture
def http() -> TestClient:
    tc = TestClient(create_app())
    tc.post(
        "/_sim/seed",
        json={
            "customers": [{"CustomerID": "C1", "CustomerName": "Ann", "MainContact": {"Email": "ann@example.com"}}],
            "stock_items": [
                {"InventoryID": "SKU-A", "Description": "Shirt", "DefaultPrice": 10},
                {"InventoryID": "SKU-B", "Description": "Hat", "DefaultPrice": 5},
            ],
        },
    )
    return tc


def make(http: TestClient, **kw: object) -> AcumaticaErp:
    client = AcumaticaClient("http://testserver", "admin", "123", "Company", http=http, poll_interval=0)
    return AcumaticaErp(client, **kw)  # type: ignore[arg-type]


def draft(number: str = "100000001", sku: str = "SKU-A") -> SalesOrderDraft:
    return SalesOrderDraft(
        number=number,
        customer_id="C1",
        currency="USD",
        description="magento order",
        bill_to=Address(first_name="Ann", street=["1 Main"], city="Austin", country="US"),
        lines=[
            DraftLine(
                line_id="501",
                sku=sku,
                description="Shirt",
                qty=Decimal(2),
                unit_price=Decimal("10"),
                discount=Decimal("1"),
            ),
            DraftLine(line_id="502", sku="SKU-B", qty=Decimal(1), unit_price=Decimal("5")),
        ],
        freight=Decimal("4"),
        tax_total=Decimal("1.20"),
        tax_id="TX",
        total=Decimal("29.20"),
        ship_via="UPS",
    )


def requests(http: TestClient) -> list[dict[str, object]]:
    return http.get("/_sim/requests").json()["requests"]


def test_create_order_is_one_request_after_sign_in(http: TestClient) -> None:
    erp = make(http)
    erp.client.get_list("Customer", top=1)  # signs in
    http.delete("/_sim/requests")
    ref = erp.create_order(draft())
    calls = requests(http)
    assert [(r["method"], r["path"]) for r in calls] == [("PUT", "/entity/Default/24.200.001/SalesOrder")]
    assert ref.number == "000001" and ref.order_type == "SO" and ref.status == "Open" and ref.id
    assert ref.line_map == {"1": "501", "2": "502"}
    order = erp.client.get_record("SalesOrder", ["SO", ref.number], expand="Totals")
    assert order["OrderTotal"]["value"] == 29.2  # the ERP agrees with the store, to the cent
    assert erp.client.logins == 1


def test_find_order_recovers_the_line_map(http: TestClient) -> None:
    erp = make(http)
    created = erp.create_order(draft())
    found = erp.find_order("100000001")
    assert found is not None and found.model_dump() == created.model_dump()
    assert erp.find_order("nope'") is None


def test_customers(http: TestClient) -> None:
    erp = make(http, customer_class="ECOMM")
    assert erp.find_customer("ann@example.com") == "C1"
    assert erp.find_customer("o'hara@example.com") is None
    cust = Customer(email="o'hara@example.com", first_name="Kim")
    assert erp.create_customer(cust, "MAGX") == "MAGX"
    assert erp.find_customer("o'hara@example.com") == "MAGX"
    assert erp.create_customer(cust, "MAGX") == "MAGX"  # 412 -> already there
    with pytest.raises(AlreadyExists):
        erp.client.put("Customer", {"CustomerID": {"value": "MAGX"}}, if_none_match=True)


def test_shipments_and_invoices(http: TestClient) -> None:
    erp = make(http)
    ref = erp.create_order(draft())
    c = erp.client
    c.action("SalesOrder", "SalesOrderCreateShipment", {"OrderType": "SO", "OrderNbr": ref.number})
    assert erp.changed_shipments(SINCE) == []  # open shipments are not news
    (row,) = c.get_list("Shipment", select="ShipmentNbr")
    nbr = row["ShipmentNbr"]["value"]
    c.put("Shipment", {"ShipmentNbr": {"value": nbr}, "Packages": [{"TrackingNbr": {"value": "1Z9"}}]})
    c.action("Shipment", "ConfirmShipment", {"ShipmentNbr": nbr})
    (notice,) = erp.changed_shipments(SINCE)
    assert notice.source == "acumatica" and notice.entity == "shipment" and notice.id == nbr and notice.version
    shipment = erp.get_shipment(nbr)
    assert shipment.confirmed and [t.number for t in shipment.tracks] == ["1Z9"]
    assert {(ln.line_nbr, ln.qty) for ln in shipment.lines} == {("1", Decimal(2)), ("2", Decimal(1))}
    assert all(ref.line_map[str(ln.line_nbr)] for ln in shipment.lines)
    c.action("Shipment", "PrepareInvoice", {"ShipmentNbr": nbr})
    assert erp.changed_invoices(SINCE) == []  # balanced, not released yet
    inv_nbr = c.get_list("SalesInvoice", select="ReferenceNbr")[0]["ReferenceNbr"]["value"]
    c.action("SalesInvoice", "ReleaseSalesInvoice", {"Type": "Invoice", "ReferenceNbr": inv_nbr})
    (inv_notice,) = erp.changed_invoices(SINCE)
    assert inv_notice.id == inv_nbr and inv_notice.entity == "invoice"
    invoice = erp.get_invoice(inv_nbr)
    assert invoice.released and invoice.amount == Decimal("29.2") and len(invoice.lines) == 2
    assert [n.id for n in erp.changed_shipments(SINCE)] == [nbr]  # completed now, still reported
    assert erp.changed_shipments(datetime.now(UTC).replace(year=2100)) == []
    with pytest.raises(NotFoundError):
        erp.get_shipment("999999")


def test_changed_shipments_pages_until_a_short_page(http: TestClient) -> None:
    erp = make(http, page_size=2)
    c = erp.client
    for i in range(5):
        ref = erp.create_order(draft(number=f"N{i}"))
        c.action("SalesOrder", "SalesOrderCreateShipment", {"OrderType": "SO", "OrderNbr": ref.number})
    for row in c.get_list("Shipment", select="ShipmentNbr"):
        c.action("Shipment", "ConfirmShipment", {"ShipmentNbr": row["ShipmentNbr"]["value"]})
    http.delete("/_sim/requests")
    notices = erp.changed_shipments(SINCE)
    assert [n.id for n in notices] == ["000001", "000002", "000003", "000004", "000005"]
    gets = [r for r in requests(http) if r["path"].endswith("/Shipment")]
    # windows of an hour, then 16 hours, ... (x16 while empty) cross the 26 quiet years in five
    # requests; a full window is cut at its rows' median change time until it fits or cannot be cut
    # (all within a second here), then read by $skip: a handful of requests, not 26 years of windows
    assert len(gets) <= 10
    assert "$skip=2" in str(gets[-1]["query"]) or len(gets) < 10


def test_unknown_item_is_unknown_item_error(http: TestClient) -> None:
    with pytest.raises(UnknownItemError) as err:
        make(http).create_order(draft(sku="NOPE"))
    assert "NOPE" in str(err.value) and "cannot be found" in str(err.value)


def test_unknown_customer_is_validation_failed(http: TestClient) -> None:
    with pytest.raises(ValidationFailed) as err:
        make(http).create_order(draft().model_copy(update={"customer_id": "ZZZ"}))
    assert not isinstance(err.value, UnknownItemError) and "CustomerID" in str(err.value)


def test_faults_map_to_retryable_errors(http: TestClient) -> None:
    erp = make(http)
    erp.find_customer("ann@example.com")
    http.post("/_sim/faults", json={"error_rate": 1})
    with pytest.raises(RetryableError) as err:
        erp.find_customer("ann@example.com")
    assert err.value.status == 500
    http.post("/_sim/faults", json={"throttle_rate": 1, "retry_after_s": 3})
    with pytest.raises(RateLimitedError) as limited:
        erp.find_customer("ann@example.com")
    assert limited.value.retry_after == 3
    http.post("/_sim/faults", json={"outage": True})
    with pytest.raises(OutageError):
        erp.find_customer("ann@example.com")
    http.delete("/_sim/faults")
    assert erp.find_customer("ann@example.com") == "C1"


def test_session_is_reused_and_renewed_once_on_401(http: TestClient) -> None:
    erp = make(http)
    for _ in range(3):
        erp.find_customer("ann@example.com")
    assert erp.client.logins == 1
    http.app.state.sim.sessions.clear()  # type: ignore[attr-defined]  # the session expired server-side
    assert erp.find_customer("ann@example.com") == "C1"
    assert erp.client.logins == 2
    erp.client.close()
    assert [r["path"] for r in requests(http)][-1] == "/entity/auth/logout"


def test_bad_credentials_are_auth_error(http: TestClient) -> None:
    client = AcumaticaClient("http://testserver", "admin", "wrong", http=http)
    with pytest.raises(AuthError):
        client.get_list("Customer")


def test_a_refused_sign_in_reads_the_secret_again_once(http: TestClient) -> None:
    reads: list[str] = []

    def fixed() -> tuple[str, str]:
        reads.append("fixed")
        return "admin", "123"

    client = AcumaticaClient("http://testserver", "admin", "old", http=http, credentials=fixed)
    client.get_list("Customer")  # refused with the old password, signed in with the secret's new one
    assert reads == ["fixed"] and client.password == "123"
    http.delete("/_sim/requests")
    still = AcumaticaClient("http://testserver", "admin", "wrong", http=http, credentials=lambda: ("admin", "wrong"))
    with pytest.raises(AuthError) as refused:
        still.get_list("Customer")
    assert not isinstance(refused.value, PermanentError)  # the system's trouble: no attempt is spent
    assert [r["path"] for r in requests(http)] == ["/entity/auth/login"]  # the same secret is not tried twice


def test_transport_failures() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(OutageError):
        AcumaticaClient("http://erp", "a", "b", http=httpx.Client(transport=httpx.MockTransport(refuse))).get_list(
            "Customer"
        )
    with pytest.raises(RetryableError) as err:
        AcumaticaClient("http://erp", "a", "b", http=httpx.Client(transport=httpx.MockTransport(slow))).get_list(
            "Customer"
        )
    assert not isinstance(err.value, OutageError)


def test_a_200_with_errors_is_validation_failed() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/login"):
            return httpx.Response(204)
        return httpx.Response(
            200, json={"id": "x", "OrderNbr": {"value": "1"}, "Hold": {"value": True, "error": "Cannot release."}}
        )

    client = AcumaticaClient("http://erp", "a", "b", http=httpx.Client(transport=httpx.MockTransport(answer)))
    with pytest.raises(ValidationFailed, match="Cannot release"):
        client.put("SalesOrder", {"OrderNbr": {"value": "1"}})
    assert client.requests_made == 2


def test_settings_changed_in_a_warm_worker_reach_the_adapter(http: TestClient) -> None:
    """order_type and warehouse are read at each use, not frozen when the adapter was built."""
    from erpsync.systems.acumatica.settings import AcumaticaSettings

    current = {"now": AcumaticaSettings(order_type="SO")}
    client = AcumaticaClient("http://testserver", "admin", "123", "Company", http=http, poll_interval=0)
    erp = AcumaticaErp(client, settings=lambda: current["now"])
    assert erp.create_order(draft(number="W1")).order_type == "SO"
    current["now"] = AcumaticaSettings(order_type="IN")
    assert erp.create_order(draft(number="W2")).order_type == "IN"
    assert erp.find_order("W2") is not None and erp.find_order("W1") is None  # looked up in the new type


# -- polls in time windows sized from what the last one held


def _customers_changed_at(http: TestClient, offsets: list[timedelta], *, origin: datetime, shuffle: bool) -> list[str]:
    """One customer per offset, changed at ``origin`` + offset (in key order, or shuffled against
    it); the ids of every customer."""
    people = [{"CustomerID": f"K{n:05d}", "MainContact": {"Email": f"k{n}@example.com"}} for n in range(len(offsets))]
    http.post("/_sim/seed", json={"customers": people})
    records = list(http.app.state.sim.records["Customer"].values())  # type: ignore[attr-defined]
    stamps = [origin + o for o in offsets]
    if shuffle:
        random.Random(7).shuffle(stamps)
    for rec, when in zip((r for r in records if r["CustomerID"]["value"].startswith("K")), stamps, strict=True):
        rec["LastModifiedDateTime"] = {"value": when.isoformat(timespec="milliseconds")}
    for rec in records:
        if not rec["CustomerID"]["value"].startswith("K"):
            rec["LastModifiedDateTime"] = {"value": (origin - timedelta(days=1)).isoformat(timespec="milliseconds")}
    return [p["CustomerID"] for p in people]


def _windows(http: TestClient) -> list[tuple[datetime, datetime, int]]:
    """(after, until, $skip) of each Customer list request the poll sent."""
    out = []
    for r in requests(http):
        if r["method"] == "GET" and r["path"].endswith("/Customer"):
            query = unquote(str(r["query"]))
            after, until = (datetime.fromisoformat(t) for t in re.findall(r"datetimeoffset'([^']+)'", query))
            out.append((after, until, int(re.search(r"\$skip=(\d+)", query).group(1))))  # type: ignore[union-attr]
    return out


@pytest.mark.parametrize("shuffle", [False, True], ids=["keys-in-change-order", "keys-shuffled"])
def test_a_poll_over_a_month_of_changes_costs_about_a_request_per_page(http: TestClient, shuffle: bool) -> None:
    """400 changes spread over 30 days, 40 a page (10 pages): the windows settle at about a page
    each. Restarting every window from the whole rest of the range and cutting it down cost 37
    requests here (54 with shuffled keys), 4 to 5 a page."""
    count, page = 400, 40
    origin = datetime.now(UTC) - timedelta(days=30)
    ids = _customers_changed_at(
        http, [timedelta(days=30) * (n + 0.5) / count for n in range(count)], origin=origin, shuffle=shuffle
    )
    erp = make(http, page_size=page)
    erp.client.get_list("Customer", top=1)  # signs in
    http.delete("/_sim/requests")
    read = [n.id for p in AcumaticaCustomers(erp).changes(origin - timedelta(seconds=1)) for n in p.notices]
    assert sorted(read) == sorted(ids)
    windows = _windows(http)
    assert len(windows) <= 2 * count // page  # 15: about N / (0.75 page), and a few while the size settles
    assert windows[0][0] == origin - timedelta(seconds=1)  # the first asks for the whole range


def test_a_burst_after_a_quiet_month(http: TestClient) -> None:
    """Three pages of changes in the last minutes of a 30-day range: the quiet month costs three
    empty windows (an hour, 16 hours, 11 days), the burst about three requests a page while the
    size settles (cut twice from the whole rest of the range). Cutting every window from the whole
    rest of the range took 9 requests here: this shape was never the old way's weak spot."""
    count, page = 120, 40
    origin = datetime.now(UTC) - timedelta(days=30)
    ids = _customers_changed_at(
        http,
        [timedelta(days=30) - timedelta(minutes=10) + timedelta(seconds=n) for n in range(count)],
        origin=origin,
        shuffle=False,
    )
    erp = make(http, page_size=page)
    erp.client.get_list("Customer", top=1)
    http.delete("/_sim/requests")
    pages = list(AcumaticaCustomers(erp).changes(origin - timedelta(seconds=1)))
    assert sorted(n.id for p in pages for n in p.notices) == sorted(ids)
    assert len(_windows(http)) <= 3 + 3 * count // page


def test_a_quiet_poll_is_one_request_and_windows_run_back_to_back_to_the_start_of_the_poll(
    http: TestClient,
) -> None:
    client = AcumaticaClient("http://testserver", "admin", "123", "Company", http=http, poll_interval=0)
    erp = AcumaticaErp(client, settings=lambda: AcumaticaSettings(page_size=10))
    client.get_list("Customer", top=1)
    http.delete("/_sim/requests")
    before = datetime.now(UTC)
    since = before - timedelta(hours=2)
    pages = list(erp.pages("Customer", "CustomerID", "", since, "customer"))
    after = datetime.now(UTC)
    [window] = _windows(http)  # nothing changed: one request over the whole range
    assert window[0] == since and before <= window[1] <= after
    assert pages[-1].checkpoint == window[1]
    origin = datetime.now(UTC) - timedelta(days=2)
    _customers_changed_at(http, [timedelta(hours=n) for n in range(45)], origin=origin, shuffle=False)
    http.delete("/_sim/requests")
    before = datetime.now(UTC)
    pages = list(erp.pages("Customer", "CustomerID", "", origin - timedelta(seconds=1), "customer"))
    windows = _windows(http)
    assert len(windows) > 4  # 45 changes, 10 a page
    # each request repeats its window's start (a cut, a $skip page) or starts where the last ended
    assert all(s2 in (s1, e1) for (s1, e1, _), (s2, _, _) in pairwise(windows))
    assert before <= windows[-1][1]
    assert pages[-1].checkpoint == windows[-1][1]
    assert len({n.id for p in pages for n in p.notices}) == 45


def test_keep_store_number_saves_the_order_under_the_stores_number_and_never_over_another(http: TestClient) -> None:
    from erpsync.systems.acumatica.adapter import NumberTaken

    erp = make(http, settings=lambda: AcumaticaSettings(order_type="WO", keep_store_number=True))
    ref = erp.create_order(draft("000000042"))
    assert (ref.order_type, ref.number) == ("WO", "000000042")
    again = erp.create_order(draft("000000042"))  # a create whose answer was lost, sent again
    assert again.id == ref.id
    so = http.get("/entity/Default/24.200.001/SalesOrder/WO/000000042").json()
    assert so["CustomerOrder"]["value"] == "000000042"
    # the number is already another order's (entered by hand in the ERP): refused, nothing overwritten
    taken = draft("000000043").model_copy(update={"number": "000000043"})
    http.put(
        "/entity/Default/24.200.001/SalesOrder",
        json={
            "OrderType": {"value": "WO"},
            "OrderNbr": {"value": "000000043"},
            "CustomerID": {"value": "C1"},
            "CustomerOrder": {"value": "PHONE-7"},
            "Details": [{"InventoryID": {"value": "SKU-B"}, "OrderQty": {"value": 1}}],
        },
    )
    with pytest.raises(NumberTaken) as refused:
        erp.create_order(taken)
    assert "WO order 000000043 already exists for customer order PHONE-7" in str(refused.value)
    kept = http.get("/entity/Default/24.200.001/SalesOrder/WO/000000043?$expand=Details").json()
    assert kept["CustomerOrder"]["value"] == "PHONE-7" and len(kept["Details"]) == 1
    with pytest.raises(ValidationFailed, match="longer than Acumatica's OrderNbr"):
        erp.create_order(draft("1234567890123456"))
