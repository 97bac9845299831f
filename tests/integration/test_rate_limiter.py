"""The shared guards of a system: the rate limiter holds its ceiling over any 60 seconds (not per
calendar minute); the seats are shared by every container and learned from the answers; the
breaker opens on answers that show the system down."""

from __future__ import annotations

import itertools
import threading
from typing import Any

import pytest

from erpsync.state.guards import Breaker, LimitExceeded, RateLimiter, Seat, Seats, SystemGate


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def busy(clock: Clock, *, at: float | None = None, waited: bool = True, seats: int = 0) -> Seat:
    """The seat of a request sent with every seat busy (of ``seats``: 0, none that can hold), at ``at`` (now)."""
    return Seat(0, waited, True, seats, clock.now if at is None else at)


def test_no_sixty_seconds_hold_more_than_the_ceiling_across_a_minute_boundary(bindings_table: str) -> None:
    clock = Clock(60 * 1000 + 50.0)  # ten seconds before a minute boundary
    limiter = RateLimiter(bindings_table, "erp", per_minute=5, clock=clock, sleep=clock.sleep, max_wait_s=120)
    granted = []
    for _ in range(15):
        with limiter.request():
            granted.append(clock.now)
        clock.now += 1.0
    for i, t in enumerate(granted):
        assert sum(1 for u in granted[i:] if u - t < 60) <= 5
    assert granted[5] - granted[0] >= 60


def test_a_429_makes_everyone_wait_and_no_token_means_limit_exceeded(bindings_table: str) -> None:
    clock = Clock(1_000_000.0)
    limiter = RateLimiter(bindings_table, "erp", per_minute=100, clock=clock, sleep=clock.sleep, max_wait_s=1)
    limiter.throttled(5.0)
    with pytest.raises(LimitExceeded), limiter.request():
        pass
    clock.now += 5.1
    with limiter.request():
        pass


def test_seats_are_shared_by_every_container_and_held_while_a_request_runs(bindings_table: str) -> None:
    one = SystemGate(bindings_table, "erp")
    other = SystemGate(bindings_table, "erp")  # another container: its own gate, the same seats
    one.configure(None, 1)
    other.configure(None, 1)
    with one.request(), pytest.raises(LimitExceeded), other.request(0.3):
        pass
    with other.request(0.3):
        pass


def test_a_refusal_takes_a_seat_away_once_per_round(bindings_table: str) -> None:
    clock = Clock(3_000_000.0)
    seats = Seats(bindings_table, "erp", start=5.0, clock=clock)
    seats.refused(busy(clock, at=clock.now - 1.0))
    assert seats.count() == 4.0
    seats.refused(busy(clock, at=clock.now - 0.5))  # sent before the cut, under five seats: the cut answered it
    assert seats.count() == 4.0
    clock.now += 1.0
    seats.refused(busy(clock, at=clock.now - 0.2))  # sent under four seats and refused: one fewer again
    assert Seats(bindings_table, "erp").count() == 3.0


def test_a_stale_count_in_one_container_does_not_undo_anothers_cut(bindings_table: str) -> None:
    clock = Clock(3_200_000.0)
    one = Seats(bindings_table, "erp", start=8.0, clock=clock)
    other = Seats(bindings_table, "erp", start=8.0, clock=clock)  # another container
    assert one.count() == 8.0  # read before the other's cut
    other.refused(busy(clock, at=clock.now - 0.5))
    assert other.count() == 6.0
    clock.now += 1.0
    one.refused(busy(clock, at=clock.now - 0.1))  # cut from the six stored now, not the eight it read
    assert Seats(bindings_table, "erp").count() == 5.0


def test_until_the_first_refusal_busy_answers_double_the_seats_each_round(bindings_table: str) -> None:
    clock = Clock(3_400_000.0)
    seats = Seats(bindings_table, "erp", start=4.0, clock=clock)
    for _ in range(8):
        seats.served(busy(clock, waited=False))  # seats were not short: no growth
    assert seats.count() == 4.0
    for _ in range(5):
        seats.served(busy(clock))  # one seat per count answers
    assert 4.9 < Seats(bindings_table, "erp").count() < 5.4  # as every container reads it


def test_after_a_refusal_the_seats_stay_under_it_probe_it_once_and_then_climb_faster(bindings_table: str) -> None:
    clock = Clock(3_500_000.0)
    seats = Seats(bindings_table, "erp", start=5.0, clock=clock)
    seats.refused(busy(clock))  # five were too many
    assert seats.count() == 4.0
    for _ in range(100):
        seats.served(busy(clock))  # busy, but four is one under where the licence answered
    assert seats.count() == 4.0
    clock.now += seats.probe_s / 2
    for _ in range(100):
        seats.served(busy(clock))
    assert seats.count() < 4.5  # the curve is flat near the level refused
    clock.now += seats.probe_s / 2
    for _ in range(20):
        seats.served(busy(clock))
    assert 4.9 < seats.count() < 5.3  # one probe of five, for everyone
    clock.now += 1.0
    seats.refused(busy(clock, at=clock.now - 0.5))  # refused again: back to four, not three
    assert seats.count() == 4.0
    clock.now += seats.probe_s
    for _ in range(40):
        seats.served(busy(clock))
    assert seats.count() < 4.5  # five said no twice in a row: the next probe waits twice as long
    clock.now += 3 * seats.probe_s  # nothing refused for a long while: the licence may have grown
    for _ in range(80):
        seats.served(busy(clock))
    assert seats.count() >= 9.0


def test_each_refusal_in_a_row_at_one_level_doubles_the_time_to_the_next_probe(bindings_table: str) -> None:
    clock = Clock(3_550_000.0)
    seats = Seats(bindings_table, "erp", start=5.0, clock=clock)
    seats.refused(busy(clock))  # five refused: the first time
    waits = []
    for _ in range(5):
        started = clock.now
        while seats.count() < 5.0:  # busy at four until the curve lets a probe of five through
            clock.now += 1.0
            seats.served(busy(clock))
        waits.append(clock.now - started)
        clock.now += 1.0
        seats.refused(busy(clock, at=clock.now - 0.5))  # and five is refused again
        assert seats.count() == 4.0
    assert 0.8 * seats.probe_s <= waits[0] <= 1.1 * seats.probe_s
    assert all(1.8 <= b / a <= 2.2 for a, b in itertools.pairwise(waits))  # 1, 2, 4, 8, 16 probe_s
    other = Seats(bindings_table, "erp", start=5.0, clock=clock)  # another container reads the same
    assert other.count() == 4.0
    assert other._probe_scale_s() == 32 * seats.probe_s  # six refusals in a row: the cap


def test_a_level_that_held_comes_back_at_once_after_a_passing_refusal(bindings_table: str) -> None:
    clock = Clock(3_600_000.0)
    seats = Seats(bindings_table, "erp", start=5.0, clock=clock)
    seats.refused(busy(clock))  # the licence: four
    clock.now += 10.0
    seats.served(Seat(0, True, True, 4, clock.now - 1.0))  # every one of four seats busy, ten seconds on
    clock.now += 1.0
    seats.refused(busy(clock, at=clock.now - 0.5))  # a passing 429 at four
    assert seats.count() == 3.0
    for _ in range(4):
        seats.served(busy(clock))  # four held: back at slow-start pace, not a probe's time later
    assert seats.count() >= 4.0
    clock.now += 1.0
    seats.refused(busy(clock, at=clock.now - 0.5))  # four refused again (twice in a row)
    for _ in range(4):
        seats.served(busy(clock))
    assert seats.count() >= 4.0
    clock.now += 1.0
    seats.refused(busy(clock, at=clock.now - 0.5))  # and a third time: four no longer holds
    assert seats.count() == 3.0
    for _ in range(20):
        seats.served(busy(clock))
    assert seats.count() == 3.0


def test_at_the_floor_a_refusal_holds_the_seat_count_down_for_a_probe_s_time(bindings_table: str) -> None:
    clock = Clock(3_700_000.0)
    seats = Seats(bindings_table, "erp", start=1.0, clock=clock)
    seats.refused(busy(clock))  # others use the ERP's every seat
    for _ in range(20):
        seats.served(busy(clock))
    assert seats.count() == 1.0
    clock.now += 1.3 * seats.probe_s
    for _ in range(20):
        seats.served(busy(clock))
    assert 1.9 < seats.count() < 2.5


def test_a_refusal_with_seats_to_spare_is_not_the_licence_s(bindings_table: str) -> None:
    gate = SystemGate(bindings_table, "erp")
    gate.seats.start = 3.0
    with gate.request():  # one of three seats busy: a 429 here is a per-minute or passing limit
        gate.throttled(None)
    assert gate.seats.count() == 3.0
    with gate.request(), gate.request(), gate.request():  # the last seat: every seat busy
        gate.throttled(None)
    assert gate.seats.count() == 2.0


def test_a_burst_of_refusals_from_many_seats_comes_down_by_quarters(bindings_table: str) -> None:
    clock = Clock(4_000_000.0)
    seats = Seats(bindings_table, "erp", start=16.0, clock=clock)
    seats.refused(busy(clock))
    assert seats.count() == 12.0


def test_only_answers_that_show_the_system_working_grow_the_seats(bindings_table: str) -> None:
    gate = SystemGate(bindings_table, "erp")
    told: list[bool] = []
    gate.seats.served = lambda sent: told.append(sent.waited)  # type: ignore[method-assign]
    for status in (200, 422, 500, 503, None, 429):
        with gate.request():
            if status == 429:
                gate.throttled(None)
            gate.answered(status)
    assert len(told) == 2  # the 200 and the 422; not a 5xx, no answer or a refusal


def test_a_configured_concurrent_is_the_licence_s_word_not_learned(bindings_table: str) -> None:
    gate = SystemGate(bindings_table, "erp")
    gate.configure(None, 2)
    held = []
    with gate.request(), gate.request(), pytest.raises(LimitExceeded), gate.request(0.2):
        held.append("third")
    assert held == []
    gate.seats.refused()  # a 429 under a configured count: a per-minute or passing limit
    assert gate.seats.count() == 2
    gate.configure(None, None)  # not configured any more: learned again
    assert gate.seats.count() == Seats.start


def test_a_freed_seat_goes_to_a_waiting_thread_at_once(bindings_table: str) -> None:
    gate = SystemGate(bindings_table, "erp")
    gate.configure(None, 1)
    entered = threading.Event()

    def second() -> None:
        with gate.request(5.0):
            entered.set()

    with gate.request():
        t = threading.Thread(target=second)
        t.start()
        assert not entered.wait(0.3)  # held while the first request is in flight
    assert entered.wait(5)
    t.join()


def test_the_breaker_counts_answers_that_show_the_system_down_not_a_records_own_error(bindings_table: str) -> None:
    breaker = Breaker(bindings_table, threshold=3, cache_s=0)
    gate = SystemGate(bindings_table, "erp", breaker)
    for status in (500, 500, 500, 422, 429):  # the system answers: it is up
        gate.answered(status)
    assert breaker.open_for("erp") == 0
    gate.answered(503)
    gate.answered(None)
    gate.answered(200)  # an answer in between: counting starts again
    gate.answered(504)
    gate.answered(None)
    assert breaker.open_for("erp") == 0
    gate.answered(502)
    assert breaker.open_for("erp") > 0


def test_a_seat_whose_request_got_no_answer_stays_taken_while_the_erp_may_still_hold_it(bindings_table: str) -> None:
    """A read timeout: the ERP may still be working on the request, holding one of its licence seats.
    Giving ours back at once would send one request too many (a 429) and teach the seats a licence
    smaller than it is."""
    clock = Clock(5_000_000.0)
    gate = SystemGate(bindings_table, "erp")
    gate.configure(None, 2)
    gate.seats.clock = clock
    gate.linger_s = 30.0
    with gate.request():
        gate.answered(None)
        gate.abandoned()
    with gate.request(), pytest.raises(LimitExceeded), gate.request(0.2):
        pass  # one seat still held by the abandoned request, one by this one
    clock.now += 31.0
    with gate.request(), gate.request(0.2):
        pass  # the ERP is surely done with it now: both seats free


def _seat_items(table: str, system: str) -> list[str]:
    from erpsync.state import dynamo

    res = dynamo.client().query(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues=dynamo.to_item({":pk": f"seats#{system}"}),
        ConsistentRead=True,
    )
    return sorted(str(dynamo.from_item(i)["sk"]) for i in res.get("Items", []))


def test_lazy_seats_cost_nothing_until_the_system_refuses_then_every_container_takes_them(bindings_table: str) -> None:
    clock = Clock(4_000_000.0)
    one = Seats(bindings_table, "erp", start=4.0, clock=clock, lazy=True, recheck_s=10.0, quiet_s=600.0)
    other = Seats(bindings_table, "erp", start=4.0, clock=clock, lazy=True, recheck_s=10.0, quiet_s=600.0)
    free = one.take(1.0)
    assert free.index == -1 and _seat_items(bindings_table, "erp") == []  # no seat item, no count item
    assert other.take(1.0).index == -1
    one.refused(free)  # the first 429: the seats are engaged, at the count there is
    assert _seat_items(bindings_table, "erp") == ["count"] and one.count() == 4.0
    seat = one.take(1.0)
    assert seat.index == 0 and _seat_items(bindings_table, "erp") == ["0", "count"]
    one.free(seat.index)
    assert other.take(1.0).index == -1  # it read the count item less than recheck_s ago
    clock.now += 10.0
    taken = other.take(1.0)
    assert taken.index >= 0  # read again: engaged here too
    other.free(taken.index)
    clock.now += 591.0  # 601 s after the refusal
    assert one.take(1.0).index == -1 and other.take(1.0).index == -1  # quiet for quiet_s: no seats again


def test_a_gate_takes_no_seat_while_the_system_refuses_nothing(bindings_table: str) -> None:
    gate = SystemGate(bindings_table, "shop")
    gate.configure(None, None)
    with gate.request():
        gate.answered(200)
        assert _seat_items(bindings_table, "shop") == []
    with gate.request():
        gate.throttled(None)
        gate.answered(429)
    with gate.request():
        assert [s for s in _seat_items(bindings_table, "shop") if s != "count"] == ["0"]


class _Counting:
    """A DynamoDB client that counts the calls made through it."""

    def __init__(self, real: Any, calls: list[str]) -> None:
        self._real, self._calls = real, calls

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._real, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self._calls.append(name)
            return attr(*args, **kwargs)

        return call


def test_a_freed_seat_goes_straight_to_a_waiting_thread_of_the_same_container(
    bindings_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import types

    from erpsync.state import dynamo, guards

    seats = Seats(bindings_table, "erp", poll_s=5.0)  # polling alone would take seconds
    seats.configure(1)
    first = seats.take(1.0)
    calls: list[str] = []
    real = dynamo.client()
    counted = types.SimpleNamespace(**{k: getattr(dynamo, k) for k in ("to_item", "from_item")})
    counted.client = lambda: _Counting(real, calls)
    monkeypatch.setattr(guards, "dynamo", counted)
    got: list[Seat] = []
    waiter = threading.Thread(target=lambda: got.append(seats.take(10.0)))
    waiter.start()
    while seats._waiting == 0 or not calls:  # the waiter looked once and found the seat busy
        threading.Event().wait(0.01)
    calls.clear()
    seats.free(first.index)
    waiter.join(2.0)
    assert not waiter.is_alive() and got[0].index == first.index  # at once, not a poll later
    assert calls == []  # no DynamoDB call: the seat's item stays as it was
    assert _seat_items(bindings_table, "erp") == [str(first.index)]
    seats.free(got[0].index)  # nobody waits: back to the table
    assert _seat_items(bindings_table, "erp") == []


def test_a_seat_goes_back_to_the_table_after_handoff_s_or_a_cut(bindings_table: str) -> None:
    clock = Clock(4_100_000.0)
    seats = Seats(bindings_table, "erp", start=1.0, clock=clock, poll_s=0.02)
    first = seats.take(1.0)

    def hand_on(seat: Seat) -> Seat:
        got: list[Seat] = []
        waiter = threading.Thread(target=lambda: got.append(seats.take(5.0)))
        waiter.start()
        while seats._waiting == 0:
            threading.Event().wait(0.005)
        seats.free(seat.index)
        waiter.join(5.0)
        return got[0]

    second = hand_on(first)  # within handoff_s: handed on, the item kept
    assert seats._put_at[second.index] == first.at
    clock.now += seats.handoff_s
    third = hand_on(second)  # handoff_s after it was taken: released, and taken again from the table
    assert seats._put_at[third.index] == clock.now
    clock.now += 1.0
    seats.refused(Seat(third.index, True, True, 1, clock.now - 0.5))  # a refusal at the floor: the count stays 1
    clock.now += 0.1
    fourth = hand_on(third)  # cut since it was taken: back to the table, where the new count holds
    assert seats._put_at[fourth.index] == clock.now
    seats.free(fourth.index)
    assert _seat_items(bindings_table, "erp") == ["count"]


def test_refusals_in_an_error_storm_cut_but_do_not_back_the_probe_off(bindings_table: str) -> None:
    """The chaos run's lesson: random 429s among 500s and timeouts pinned the seats at one for ten
    minutes after the faults stopped (the probe backed off 32 times). A refusal while the system also
    fails is no repeat: the next probe comes within ``probe_s`` once the trouble has passed."""
    clock = Clock(3_700_000.0)
    seats = Seats(bindings_table, "erp", start=5.0, clock=clock)
    for _ in range(4):  # an error storm: each refusal at five comes with 500s around it
        seats.trouble()
        seats.refused(busy(clock, at=clock.now - 0.5))
        assert seats.count() == 4.0
        while seats.count() < 5.0:
            clock.now += 1.0
            seats.served(busy(clock))
        clock.now += 1.0
    assert seats._probe_scale_s() == seats.probe_s
    clock.now += seats.probe_s  # the storm is over: refusals of five now are the licence's, and count
    for _ in range(2):
        seats.refused(busy(clock, at=clock.now - 0.5))
        while seats.count() < 5.0:
            clock.now += 1.0
            seats.served(busy(clock))
        clock.now += 1.0
    seats.refused(busy(clock, at=clock.now - 0.5))
    other = Seats(bindings_table, "erp", start=5.0, clock=clock)  # another container reads the same
    assert other.count() == 4.0 and other._probe_scale_s() == 8 * seats.probe_s  # three in a row, no trouble


def test_a_5xx_or_no_answer_marks_the_system_troubled_a_429_does_not(bindings_table: str) -> None:
    clock = Clock(3_800_000.0)
    gate = SystemGate(bindings_table, "erp")
    gate.seats.clock = clock
    gate.answered(429)
    assert not gate.seats.troubled()
    gate.answered(503)
    assert gate.seats.troubled()
    clock.now += gate.seats.probe_s
    assert not gate.seats.troubled()
    gate.answered(None)
    assert gate.seats.troubled()
