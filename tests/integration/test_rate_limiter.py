"""The shared rate limiter holds its ceiling over any 60 seconds, not per calendar minute."""

from __future__ import annotations

import pytest

from erpsync.state.guards import LimitExceeded, RateLimiter


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


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


def test_a_429_makes_everyone_wait_and_no_slot_means_limit_exceeded(bindings_table: str) -> None:
    clock = Clock(1_000_000.0)
    limiter = RateLimiter(bindings_table, "erp", per_minute=100, clock=clock, sleep=clock.sleep, max_wait_s=1)
    limiter.throttled(5.0)
    with pytest.raises(LimitExceeded), limiter.request():
        pass
    clock.now += 5.1
    with limiter.request():
        pass


def test_concurrent_slots_are_held_while_a_request_runs(bindings_table: str) -> None:
    clock = Clock(2_000_000.0)
    one = RateLimiter(bindings_table, "erp", per_minute=100, concurrent=1, clock=clock, sleep=clock.sleep, max_wait_s=1)
    other = RateLimiter(
        bindings_table, "erp", per_minute=100, concurrent=1, clock=clock, sleep=clock.sleep, max_wait_s=1
    )
    with one.request(), pytest.raises(LimitExceeded), other.request():
        pass
    with other.request():
        pass
