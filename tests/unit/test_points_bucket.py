"""Shopify's cost bucket held across workers: one ``PointsBucket`` item every worker reserves its
queries' points from, beside what each worker's own view of the bucket (``Budget``) lets through."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from erpsync.state.guards import PointsBucket
from erpsync.systems.shopify.client import Budget, ShopifyClient
from sandbox.sims import shopify as sim


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def status(available: float, maximum: float = 100.0, rate: float = 10.0) -> dict[str, float]:
    return {"currentlyAvailable": available, "maximumAvailable": maximum, "restoreRate": rate}


def test_workers_reserve_from_one_level_and_wait_the_deficit_together(bindings_table: str) -> None:
    clock = Clock()
    a, b = PointsBucket(bindings_table, "shop", clock=clock), PointsBucket(bindings_table, "shop", clock=clock)
    assert a.take(60) == 0.0  # nothing known yet: the first query goes and its answer tells
    a.settle(status(100.0))
    assert a.take(60) == 0.0
    assert b.take(60) == pytest.approx(2.01)  # 40 left, 20 short at 10 a second: nothing reserved
    clock.t += 2.0
    assert b.take(60) == 0.0
    assert a.take(1) > 0  # the level is spent for a as well


def test_what_a_query_did_not_cost_goes_back_and_a_refusal_sets_the_level(bindings_table: str) -> None:
    clock = Clock()
    a, b = PointsBucket(bindings_table, "shop", clock=clock), PointsBucket(bindings_table, "shop", clock=clock)
    a.settle(status(100.0))
    assert a.take(80) == 0.0
    a.settle(status(75.0), refund=55.0)  # reserved 80, it cost 25
    assert b.take(75) == 0.0
    b.settle(status(0.0), throttled=True)  # the shop knows of spending we do not: its figure rules
    assert a.take(10) == pytest.approx(1.01)
    b.settle(status(90.0), refund=-5.0)  # cost more than reserved
    clock.t += 1.0
    assert a.take(5) == 0.0 and a.take(1) > 0  # 10 refilled - 5 more spent = 5


def test_a_query_dearer_than_the_whole_bucket_waits_for_a_full_one_and_spends_it_all(bindings_table: str) -> None:
    clock = Clock()
    bucket = PointsBucket(bindings_table, "shop", clock=clock)
    bucket.settle(status(80.0))
    assert bucket.take(150) == pytest.approx(2.01)  # a full bucket, not 150 points, is what it waits for
    clock.t += 2.0
    assert bucket.take(150) == 0.0
    assert bucket.take(1) == pytest.approx(5.11)  # 50 points in debt: the next waits them off


def test_a_status_that_does_not_say_changes_nothing() -> None:
    bucket = PointsBucket("no-table-is-read", "shop")
    bucket.settle({"currentlyAvailable": "lots"})
    bucket.settle(None)


FULFIL = "mutation($f: FulfillmentInput!) { fulfillmentCreate(fulfillment: $f) { userErrors { field message } } }"
NO_SUCH_ORDER = {"f": {"lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": "gid://shopify/FulfillmentOrder/1"}]}}


def _throttled_of(budgets: tuple[object, object]) -> int:
    """Two workers sending mutations (10 points each, refused ones apply nothing) to one shop in
    turn, each through its own client: how often the shop answered THROTTLED."""
    shop = TestClient(sim.create_app(), base_url="http://shop")
    shop.post("/_sim/seed", json={"throttle": {"maximum": 30, "restore_rate": 100}})
    clients = [
        ShopifyClient("http://shop", lambda: sim.ACCESS_TOKEN, http=shop, points=budget)  # type: ignore[arg-type]
        for budget in budgets
    ]
    for turn in range(16):
        clients[turn % 2].query(FULFIL, NO_SUCH_ORDER, cost=10)
    queries = shop.get("/_sim/costs").json()["queries"]
    assert len([q for q in queries if not q["throttled"]]) == 16
    return sum(1 for q in queries if q["throttled"])


def test_workers_sharing_the_bucket_are_not_refused_where_each_with_its_own_view_is(bindings_table: str) -> None:
    """Side by side on the sim's bucket (30 points, 100 a second): two workers each knowing only
    their own answers overspend and are answered THROTTLED; sharing one level they are not."""
    assert _throttled_of((Budget(), Budget())) >= 2
    shared = (PointsBucket(bindings_table, "shop"), PointsBucket(bindings_table, "shop"))
    assert _throttled_of(shared) == 0
