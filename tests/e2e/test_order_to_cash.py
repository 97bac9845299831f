"""Order to cash on the local stack: Magento -> Acumatica -> Magento, exactly once, to the cent."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from sandbox.reconcile import reconcile
from sandbox.story import AcumaticaUser, MagentoAdmin, Story

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    from cli.target import use_local
    from sandbox.local.stack import LocalStack

    state = tmp_path_factory.mktemp("stack") / "local.json"
    with LocalStack(state_file=state, run_pollers=False, run_schedules=False) as s:
        use_local(state)
        from erpsync.state.settings import SettingsStore

        SettingsStore(os.environ["BINDINGS_TABLE"]).update({"tax_id": "STORETAX"})
        yield s.info


@pytest.fixture(scope="module")
def story(stack: dict[str, object]) -> Iterator[Story]:
    info = stack
    s = Story(
        magento=MagentoAdmin(**info["magento"]),  # type: ignore[arg-type]
        acumatica=AcumaticaUser(**info["acumatica"]),  # type: ignore[arg-type]
        api_url=str(info["api_url"]),
        webhook_secret=info["webhook_secrets"]["magento"],  # type: ignore[index]
    )
    s.seed_catalog()
    yield s
    s.magento.close()
    s.acumatica.close()


def drain(flow: str) -> list[str]:
    from erpsync.runtime.lambda_app import build

    rt = build(flow)
    rt.poll()
    return [o.outcome for o in rt.drain()]


def sim_requests(base_url: str) -> list[dict[str, object]]:
    return list(httpx.get(f"{base_url}/_sim/requests").json()["requests"])


def clear_requests(base_url: str) -> None:
    httpx.delete(f"{base_url}/_sim/requests")


def test_orders_ship_and_invoice_round_trip(story: Story) -> None:
    customers = story.seed_customers(3)
    story.place_orders(customers, 12)
    assert drain("orders").count("synced") == 12
    story.ship_and_invoice()
    drain("shipments")
    drain("invoices")
    rows = reconcile(story)
    assert [(r.number, r.problems) for r in rows if r.problems] == []
    assert any(r.m_status == "complete" for r in rows)
    assert any(r.m_status == "processing" for r in rows)  # the partial shipment


def test_running_every_flow_again_changes_nothing(story: Story) -> None:
    from erpsync.runtime.lambda_app import build

    before = len(story.acumatica.get("SalesOrder", "$select=OrderNbr"))
    for flow in ("orders", "shipments", "invoices"):
        assert "synced" not in drain(flow)
    orders = build("orders")
    assert {orders.sync_now(str(o.entity_id)).outcome for o in story.orders} == {"skipped"}
    assert len(story.acumatica.get("SalesOrder", "$select=OrderNbr")) == before
    assert not [r.problems for r in reconcile(story) if r.problems]


def test_steady_state_order_costs_at_most_two_acumatica_requests(story: Story, stack: dict[str, object]) -> None:
    acumatica_url = stack["sims"]["acumatica"]  # type: ignore[index]
    customers = story.seed_customers(2)
    story.place_orders(customers, 2)  # the customers become known to Acumatica
    drain("orders")
    already = len(story.orders)
    story.place_orders(customers, 10)
    clear_requests(acumatica_url)
    drain("orders")
    calls = [r for r in sim_requests(acumatica_url) if not str(r["path"]).startswith("/entity/auth")]
    per_order = len(calls) / (len(story.orders) - already)
    assert per_order <= 2, calls


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (b"not json", 400, "not valid JSON"),
        (b"{}", 400, "not a Magento webhook"),
        (b'{"eventName": "observer.sales_order_save_after", "data": {}}', 400, "no order record"),
        (b"", 400, "empty body"),
    ],
)
def test_bad_webhooks_get_a_4xx_naming_the_problem_and_enqueue_nothing(
    story: Story, body: bytes, status: int, says: str
) -> None:
    from erpsync.systems.magento.webhooks import sign

    headers = {"Content-Type": "application/json", **sign(story.webhook_secret, body)}
    r = httpx.post(f"{story.api_url}/webhooks/magento", content=body, headers=headers)
    assert r.status_code == status
    assert says in r.json()["message"]
    assert drain("orders").count("synced") == 0


def test_forged_webhook_is_refused(story: Story) -> None:
    body = b'{"eventName": "observer.sales_order_save_after", "data": {"order": {"entity_id": 1}}}'
    r = httpx.post(
        f"{story.api_url}/webhooks/magento",
        content=body,
        headers={"X-Erpsync-Timestamp": "1", "X-Erpsync-Signature": "sha256=00"},
    )
    assert r.status_code == 401
    unknown = httpx.post(f"{story.api_url}/webhooks/shopify", content=b"{}")
    assert unknown.status_code == 404


def test_a_lost_webhook_is_found_by_the_sweep(story: Story) -> None:
    from erpsync.runtime.lambda_app import build

    customers = story.seed_customers(1)
    story.api_url, api = "", story.api_url  # no doorbell for this one
    try:
        [placed] = story.place_orders(customers, 1)[-1:]
    finally:
        story.api_url = api
    rt = build("orders")
    swept = rt.sweep(hours=1)
    assert swept["enqueued"] == 1
    # swept again before a worker took it (a backlog): on its way already, not queued twice
    assert rt.sweep(hours=1)["enqueued"] == 0
    assert [o.outcome for o in rt.drain()] == ["synced"]
    assert len(story.acumatica.orders_for(placed.increment_id)) == 1
    assert rt.sweep(hours=1)["enqueued"] == 0


def test_an_acumatica_push_brings_a_shipment_back(story: Story, stack: dict[str, object]) -> None:
    customers = story.seed_customers(1)
    [placed] = story.place_orders(customers, 1)[-1:]
    drain("orders")
    [so] = story.acumatica.orders_for(placed.increment_id)
    nbr = story._ship_all(so, "1ZPUSH0001")
    story.acumatica.action("Shipment", "ConfirmShipment", {"ShipmentNbr": {"value": nbr}})
    story.shipped[placed.increment_id] = ["1ZPUSH0001"]
    push = {
        "Inserted": [{"ShipmentNbr": nbr, "Status": "Confirmed"}],
        "Deleted": [],
        "Query": "Shipments",
        "CompanyId": "Company",
        "Id": "push-1",
        "TimeStamp": None,
        "AdditionalInfo": {},
    }
    secret = stack["webhook_secrets"]["acumatica"]  # type: ignore[index]
    r = httpx.post(f"{story.api_url}/webhooks/acumatica", json=push, headers={"X-Erpsync-Token": secret})
    assert r.status_code == 202 and r.json() == {"accepted": 1, "duplicates": 0}
    from erpsync.runtime.lambda_app import build

    assert [o.outcome for o in build("shipments").drain()] == ["synced"]
    row = next(r for r in reconcile(story) if r.number == placed.increment_id)
    assert row.m_tracks == "1ZPUSH0001" and not row.problems


def test_operator_api_lists_and_resyncs_a_failed_order(story: Story) -> None:
    from sandbox.sims import magento_orders as mo

    odd = {**mo.sample_catalog()[8], "sku": "24-UG01", "name": "Quest Lumaflex Band", "id": 9001}
    story.magento.call("POST", "/products", json={"product": odd})
    order = mo.build_order([*story.catalog, odd], [mo.CartLine("24-UG01", 1)], customer=story.seed_customers(1)[0])
    saved = story.magento.call("POST", "/orders", json={"entity": order})
    assert drain("orders").count("failed") == 1
    listed = httpx.get(f"{story.api_url}/operator/failed/orders").json()
    [failed] = [f for f in listed["failed"] if f["id"] == str(saved["entity_id"])]
    assert failed["error_type"] == "unknown_item" and "24-UG01" in failed["reason"]
    story.acumatica.put("StockItem", {"InventoryID": {"value": "24-UG01"}, "Description": {"value": "Band"}})
    done = httpx.post(f"{story.api_url}/operator/resync/orders", json={"failed": True, "error_type": "unknown_item"})
    assert done.status_code == 200 and done.json()["counts"] == {"synced": 1}
    assert len(story.acumatica.orders_for(str(saved["increment_id"]))) == 1
    assert httpx.get(f"{story.api_url}/operator/failed/orders").json()["count"] == 0
