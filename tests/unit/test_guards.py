"""The guards every worker shares: per-minute ceilings, seats, 429 cool-downs, breaker."""

from __future__ import annotations

import pytest

from erpsync.state import dynamo
from erpsync.state.guards import Breaker, LimitExceeded, RateLimiter, Seats, SystemGate


class Clock:
    def __init__(self, t: float = 1_000_050.0) -> None:  # 30 s into a minute
        self.t = t
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.t += s


def limiter(table: str, clock: Clock, **kw: object) -> RateLimiter:
    return RateLimiter(table, "acumatica", clock=clock, sleep=clock.sleep, **kw)  # type: ignore[arg-type]


def test_per_minute_ceiling_is_shared_and_holds_in_any_60_seconds(bindings_table: str) -> None:
    clock = Clock()
    a = limiter(bindings_table, clock, per_minute=3, max_wait_s=70)
    b = limiter(bindings_table, clock, per_minute=3, max_wait_s=70)
    granted = []
    for gate in (a, b, a):
        with gate.request():
            granted.append(clock.t)
        clock.t += 10
    assert clock.slept == []
    with b.request():  # the fourth waits until the first grant is a minute old
        granted.append(clock.t)
    assert granted[3] - granted[0] >= 60
    assert all(later - earlier >= 60 for earlier, later in zip(granted, granted[3:], strict=False))


def test_per_second_ceiling_is_shared_and_no_second_of_arrivals_holds_more(bindings_table: str) -> None:
    """QuickBooks Online refuses an 11th request within a second (SYSTEMS-NOTES: 10 a second per
    company): two workers asking at once get 10 tokens, the rest wait, and no span of one second
    (plus the half margin a token may be used in) ever holds more than 10 grants."""
    clock = Clock(1_000_050.05)
    a = limiter(bindings_table, clock, per_minute=500, per_second=10, max_wait_s=10)
    b = limiter(bindings_table, clock, per_minute=500, per_second=10, max_wait_s=10)
    granted = []
    for i in range(25):
        with (a if i % 2 else b).request():
            granted.append(clock.t)
        clock.t += 0.01  # each request answered in 10 ms: a burst, as a fast system's
    assert len([t for t in granted if t < granted[0] + 1.0]) == 10 and clock.slept
    span = 1.0 + a.margin_s / 2
    assert all(sum(1 for t in granted if start <= t < start + span) <= 10 for start in granted)
    assert granted[-1] - granted[0] >= 2 * span - 0.2  # 25 grants: three spans' worth, not one


def test_without_a_per_second_ceiling_a_burst_is_not_paced(bindings_table: str) -> None:
    clock = Clock()
    gate = limiter(bindings_table, clock, per_minute=500)
    for _ in range(25):
        with gate.request():
            clock.t += 0.01
    assert clock.slept == []


def test_a_wait_beyond_the_budget_raises_so_the_record_is_requeued(bindings_table: str) -> None:
    clock = Clock()
    gate = limiter(bindings_table, clock, per_minute=1, max_wait_s=5)
    with gate.request():
        pass
    with pytest.raises(LimitExceeded) as exc, gate.request():
        pass
    assert exc.value.wait_s > 5


def test_a_429_cools_every_worker_down(bindings_table: str) -> None:
    clock = Clock()
    a, b = limiter(bindings_table, clock, per_minute=100), limiter(bindings_table, clock, per_minute=100)
    a.throttled(7)
    with b.request():
        pass
    assert clock.slept and 6.9 < clock.slept[0] < 7.2


def test_a_crashed_holder_frees_its_seat_after_the_ttl(bindings_table: str) -> None:
    clock = Clock()
    crashed = Seats(bindings_table, "acumatica", ceiling=1, ttl_s=30, clock=clock)
    crashed.take(0)  # taken and never freed: the worker died
    other = Seats(bindings_table, "acumatica", ceiling=1, ttl_s=30, clock=clock, poll_s=0.01)
    with pytest.raises(LimitExceeded):
        other.take(0.05)
    clock.t += 30.1
    seat = other.take(0.05)
    other.free(seat.index)


def test_breaker_opens_after_the_threshold_for_a_share_of_the_downtime_and_closes_on_success(
    bindings_table: str,
) -> None:
    clock = Clock()
    br = Breaker(bindings_table, threshold=2, base_open_s=10, cache_s=0, clock=clock)
    assert br.failure("acumatica") == 0
    assert br.failure("acumatica") == 10
    assert 9.9 < br.open_for("acumatica") <= 10
    clock.t += 11
    assert br.open_for("acumatica") == 0  # half-open: calls may go through
    br.failure("acumatica")
    assert br.failure("acumatica") == 10  # down 11 s: a short outage is not followed by a longer wait
    clock.t += 189
    br.failure("acumatica")
    assert br.failure("acumatica") == 50  # down 200 s: open a quarter of that, not polled every 10 s
    clock.t += 3000
    br.failure("acumatica")
    assert br.failure("acumatica") == br.max_open_s
    br.success("acumatica")
    assert br.state("acumatica", fresh=True).get("trips") == 0
    assert br.failure("acumatica") == 0


def test_the_breaker_knows_how_long_its_system_has_been_down(bindings_table: str) -> None:
    """``down_for`` (what ``BreakerOpenFor`` and its alarm read) counts from the first opening of a
    run of trips, through every re-opening, and is gone with the first answer that goes through."""
    clock = Clock()
    br = Breaker(bindings_table, threshold=1, base_open_s=10, cache_s=0, clock=clock)
    assert br.down_for("acumatica") == 0
    br.failure("acumatica")
    clock.t += 11
    assert br.open_for("acumatica") == 0 and br.down_for("acumatica") == 11  # closed, but nothing answered
    br.failure("acumatica")  # opens again, longer: still the same outage
    clock.t += 5
    assert br.down_for("acumatica") == 16
    br.trip("erp-eu")  # credentials refused: open now, counted as well
    assert br.down_for("erp-eu") == 0 and br.open_for("erp-eu") > 0
    clock.t += 60
    assert br.down_for("erp-eu") == 60
    br.success("acumatica")
    assert br.down_for("acumatica") == 0 and "down_since" not in br.state("acumatica", fresh=True)


def test_a_token_whose_write_was_slow_is_not_used(bindings_table: str) -> None:
    """A stamp older than the request would free the window early: such a token stays spent."""
    clock = Clock()
    gate = limiter(bindings_table, clock, per_minute=10, margin_s=1.0)
    writes: list[float] = []
    client = dynamo.client()
    original = client.update_item

    def slow_update(**kw: object) -> object:
        writes.append(clock.t)
        if len(writes) == 1:
            clock.t += 2.0  # the first write stalls for two seconds
        return original(**kw)

    client.update_item = slow_update  # type: ignore[method-assign]
    try:
        assert gate._take_minute_token() == 0.0
    finally:
        client.update_item = original  # type: ignore[method-assign]
    assert len(writes) == 2  # the stale token was left spent and a fresh one taken
    row = dynamo.from_item(client.get_item(TableName=bindings_table, Key=gate._key())["Item"])
    assert {k: int(c) for k, c in row["grants"].items()} == {"1000050": 1, "1000052": 1}


def test_a_system_gate_follows_the_settings(bindings_table: str) -> None:
    """A ceiling set (or lifted) in the settings applies to a warm worker at its next refresh."""
    gate = SystemGate(bindings_table, "acumatica")
    with gate.request():  # no ceiling configured: straight through
        pass
    gate.configure(per_minute=1, concurrent=1)
    assert gate.limiter is not None
    gate.limiter.max_wait_s = 0.1
    with gate.request():
        pass
    with pytest.raises(LimitExceeded), gate.request():
        pass
    gate.configure(per_minute=2, concurrent=1)
    with gate.request():
        pass
    gate.configure(None, None)
    with gate.request():
        pass
    gate.configure(None, None, per_second=3)  # a per-second ceiling alone still takes tokens
    assert gate.limiter is not None and gate.limiter.per_minute is None and gate.limiter.per_second == 3


def test_quickbooks_published_per_second_ceiling_holds_unless_the_settings_name_one(bindings_table: str) -> None:
    """Intuit's 10 requests a second apply to a QuickBooks connection whether or not the settings
    limit it per minute; a connection's own ``per_second`` replaces it."""
    from erpsync.runtime.lambda_app import configure_gates
    from erpsync.settings import Settings

    connections = {
        "magento": {"kind": "magento", "role": "store", "secret": "s"},
        "quickbooks": {"kind": "quickbooks", "role": "erp", "secret": "q"},
    }
    gates = {"quickbooks": SystemGate(bindings_table, "quickbooks")}
    configure_gates(gates, Settings.model_validate({"connections": connections}))
    limiter = gates["quickbooks"].limiter
    assert limiter is not None and (limiter.per_minute, limiter.per_second) == (500, 10)
    configure_gates(
        gates,
        Settings.model_validate({"connections": connections, "rate_limits": {"quickbooks": {"per_minute": 120}}}),
    )
    assert (limiter.per_minute, limiter.per_second) == (120, 10)
    both = {"quickbooks": {"per_minute": 120, "per_second": 4}}
    configure_gates(gates, Settings.model_validate({"connections": connections, "rate_limits": both}))
    assert (limiter.per_minute, limiter.per_second) == (120, 4)


def test_leases_are_taken_and_given_back_a_hundred_at_a_time_and_never_from_another_holder(
    bindings_table: str,
) -> None:
    from erpsync.state.guards import Leases

    mine, theirs = Leases(bindings_table), Leases(bindings_table)
    assert theirs.acquire("products#acumatica#B")
    names = [f"products#acumatica#{n}" for n in ("A", "B", "C")] + [f"products#acumatica#X{n}" for n in range(150)]
    taken = mine.acquire_many(names)
    assert taken == set(names) - {"products#acumatica#B"}  # the spoilt transaction taken name by name
    assert not theirs.acquire("products#acumatica#A")
    mine.release_many(sorted(taken | {"products#acumatica#B"}))  # B is theirs: left alone
    assert not mine.acquire("products#acumatica#B")
    assert theirs.acquire("products#acumatica#A") and theirs.acquire("products#acumatica#X149")


def test_many_records_read_and_written_in_batches_are_what_one_by_one_would_leave(
    bindings_table: str, synclog_table: str
) -> None:
    from erpsync.state.bindings import SeenVersions
    from erpsync.state.failures import Failure, FailuresDesk, failure_key
    from erpsync.state.synclog import LogRow, SyncLog

    desk = FailuresDesk(bindings_table)
    desk.record(Failure("stock", "acumatica", "SKU7", error_type="refused", reason="no"))
    keys = [failure_key("stock", "acumatica", f"SKU{n}") for n in range(130)]
    assert list(desk.get_many(keys)) == [failure_key("stock", "acumatica", "SKU7")]

    log = SyncLog(synclog_table)
    log.write_many([LogRow("stock", "acumatica", f"SKU{n}", "synced", message=f"row {n}") for n in range(30)])
    assert [r["message"] for r in log.history("stock", "SKU29")] == ["row 29"]

    seen = SeenVersions(bindings_table)
    seen.mark_many("stock#acumatica", {f"SKU{n}": f"v{n}" for n in range(30)})
    assert seen.get_many("stock#acumatica", ["SKU0", "SKU29", "SKU30"]) == {"SKU0": "v0", "SKU29": "v29"}
