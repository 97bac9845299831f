"""The small version of the benchmarks that run on the local stack (``bench.customers``,
``bench.poll_cost``) and of the cold-start benchmark (``bench.cold_start``): the same code as
``make bench``, a few records or interpreters, structural assertions only (request counts from the
sims' logs, what each first invocation did; no times: ``make test`` runs on two busy workers)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bench import cold_start, customers, poll_cost
from bench.common import Bench, local_bench

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def bench() -> Iterator[Bench]:
    with local_bench() as b:
        yield b


def test_a_steady_state_customer_edit_costs_one_read_and_one_write_on_the_other_side(bench: Bench) -> None:
    r = customers.run(bench, runs=1, customers=2)
    fwd, rev = r["summary"]["forward"], r["summary"]["reverse"]
    # Magento edit -> Acumatica: the customer as it is (1 GET), then the PUT; nothing else there
    assert fwd["acumatica"] == {"read": 1, "write": 1, "poll": 0, "auth": 0, "other": 0}
    assert fwd["magento"]["read"] == 1 and fwd["magento"]["write"] == 0  # the worker's read of the source
    # Acumatica edit -> Magento: 1 GET and the PUT that sends the record as just read
    assert rev["magento"] == {"read": 1, "write": 1, "poll": 0, "auth": 0, "other": 0}
    assert rev["acumatica"]["read"] == 1 and rev["acumatica"]["write"] == 0
    # no ping-pong: the echo and two further ticks of both flows write nothing
    assert r["echo_writes"] == 0 and r["quiet_writes"] == 0
    [sample] = r["samples"]
    assert sample["forward"]["outcomes"] == {"synced": 2} and sample["reverse"]["outcomes"] == {"synced": 2}


def test_a_poll_over_a_store_twice_as_big_costs_the_same_requests_and_bytes(bench: Bench) -> None:
    r = poll_cost.run(bench, runs=1, sizes=(), fixed_sizes=(200, 400), fixed_changed=5)
    for flow, rows in r["fixed"].items():
        small, big = rows
        assert small["enqueued"] == big["enqueued"] == 5, flow
        assert small["source_requests"] == big["source_requests"] == 1, flow
        assert abs(big["bytes_in"] - small["bytes_in"]) <= 0.01 * small["bytes_in"], flow
        assert small["aws_calls"] == big["aws_calls"], flow
    assert set(r["fixed"]) == {"orders", "customers", "erp-customers"}


def test_the_poll_cost_benchmark_leaves_the_sims_as_it_found_them(bench: Bench) -> None:
    mag = bench.stack.sim_apps["magento"].state.sim
    before: dict[str, Any] = {"orders": len(mag.orders), "customers": len(mag.customers)}
    poll_cost.run(bench, runs=1, sizes=(), fixed_sizes=(50,), fixed_changed=2, flows=("customers",))
    assert {"orders": len(mag.orders), "customers": len(mag.customers)} == before


def test_the_cold_start_benchmark_measures_every_function_against_boto3_in_the_same_run() -> None:
    """One round (boto3 and every function in fresh interpreters): each first invocation worked
    (``cold_start`` checks the answer), and each function has its ratio and its goal. No ratio is
    asserted: measured on a machine running the other tests, it is not the function's."""
    r = cold_start.run(runs=1)
    rows = {row["module"]: row for row in r["rows"]}
    assert list(rows) == ["boto3", *cold_start.HANDLERS, cold_start.FROM_SOURCE, cold_start.LIBRARIES]
    assert rows[cold_start.FROM_SOURCE]["goal"] is None
    assert r["boto3_ms"] > 0 and rows["boto3"]["ratio"] == 1.0
    for name in cold_start.HANDLERS:
        row = rows[name]
        goal = {"webhooks": 1.5, "operator": None}.get(name, 2.0)
        assert row["goal"] == goal and row["total_ratio"] >= row["ratio"] > 0, name
        assert row["met"] == (None if goal is None else row["ratio"] <= goal), name
        assert "aws_lambda_powertools.logging.logger" in row["loaded"], name  # Powertools Logger and Metrics
        emf = "aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch"
        assert emf in row["loaded"] or name == "operator", name  # (a listing counts no metric)
    webhooks = rows["webhooks"]
    assert webhooks["aws_calls"] == ["GetItem", "GetSecretValue", "PutItem", "SendMessageBatch"]
    assert not {"msgspec", "pydantic", "httpx"} & set(webhooks["loaded"])
    assert {"msgspec", "httpx"} <= set(rows["orders"]["loaded"]) and "pydantic" not in rows["orders"]["loaded"]


def test_a_catalog_change_costs_one_magento_request_per_product_and_a_share_of_one_per_batch(bench: Bench) -> None:
    """Last in this module: it switches the catalog on for the route."""
    from bench import catalog

    r = catalog.run(bench, runs=1, products=4, changed=2, batch=40)
    [sample] = r["samples"]
    assert sample["product"]["outcomes"]["synced"] == 2
    assert sample["stock"]["outcomes"]["synced"] == 40 and sample["price"]["outcomes"]["synced"] == 40
    pc = r["per_change"]
    assert pc["product"]["erpsync"]["magento"] == 1.0  # the PUT; the poll reads Acumatica only
    # one source-items request for the batch, and one product search: these SKUs get their first stock
    # (a SKU written for the first time is looked for, so stock never waits on a refusal)
    assert pc["stock"]["erpsync"]["magento"] == 2 / 40
    assert pc["price"]["erpsync"]["magento"] == 1 / 40  # one base-prices request for the batch
    assert pc["stock"]["naive"]["magento"] == 2.0 and pc["price"]["naive"]["magento"] == 1.0


def test_the_products_poll_follows_the_changes_not_the_catalog(bench: Bench) -> None:
    """After the catalog test (the catalog is on for the route): the small version of benchmark 10."""
    from bench import catalog_poll

    r = catalog_poll.run(bench, runs=1, sizes=(200, 2_000))
    small, large = r["rows"]
    assert small["enqueued"] == 1 and large["enqueued"] == 2  # 0.1% of each (at least one)
    first, last = r["fixed"]
    assert first["enqueued"] == last["enqueued"] == catalog_poll.FIXED_CHANGED
    assert last["source_requests"] == first["source_requests"]  # ten times the items, not one request more
    assert r["ratios"]["bytes_in"] < 1.2 and catalog_poll.goals(r)["flat"]


def test_the_initial_load_reads_pages_only_and_writes_products_in_bulk(bench: Bench) -> None:
    """The small version of benchmark 11: two loads in a process of their own, every item synced,
    the ERP asked for its pages and a few fixed reads, Magento for a bulk, its status and the ids
    of each page (no product written alone), the process's memory the same for twice the items."""
    from bench import initial_load

    r = initial_load.run(bench, sizes=(300, 600), page=100, latency_s=0.05)
    for row in r["rows"]:
        assert row["counts"] == {"synced": row["total"]}, row["counts"]
        pages = row["pages"]
        assert pages <= row["acumatica_requests"] <= pages + 8, row  # sign-in, attribute, category, ends
        bulk = 1 + 1 + 1  # the bulk, its status, one search for the ids of a page of 100
        assert row["magento_requests"] <= pages * bulk + 10, row
    assert r["memory_ratio"] < 1.3


def test_payments_and_credit_memos_cost_no_more_than_the_naive_connector(bench: Bench) -> None:
    """The small version of benchmark 12: each side's records synced, and erpsync's requests per
    payment, per credit memo and per order entered in the ERP at most the naive connector's."""
    from bench import order_money

    bench.settings({"tax_id": "STORETAX"})
    r = order_money.run(bench, runs=1, orders=2)
    for key in order_money.KINDS:
        assert r[key]["records"] == 2, (key, r[key])
    assert r["payment"]["acumatica"] <= r["naive_payment"]["acumatica"]
    assert r["payment"]["magento"] < r["naive_payment"]["magento"]
    assert r["credit"]["acumatica"] <= r["naive_credit"]["acumatica"]
    assert r["erp_order"]["acumatica"] < r["naive_erp_order"]["acumatica"]
    assert r["erp_order"]["magento"] <= r["naive_erp_order"]["magento"]
