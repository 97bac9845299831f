"""Issue 3's acceptance check at a small scale: orders under chaos reach Acumatica exactly once.

The same run as ``make chaos`` (``sandbox/chaos.py``): the Acumatica sim fails, throttles and
times out a seeded share of requests and goes down for a few seconds; every webhook arrives twice,
out of order; a few orders name a SKU Acumatica lacks. The verdict is the harness's list of
problems: exactly once with the right totals, unknown items parked with the SKU in the reason and
no good order parked, ``erpsync resync orders --failed`` (the CLI) clears the failed queue, and
the request ceilings held as the ERP saw them. No timing is asserted beyond the ceilings.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.chaos import ChaosConfig, max_in_window, peak_overlap, run

pytestmark = pytest.mark.e2e


def test_sixty_orders_under_chaos_arrive_exactly_once_within_the_ceilings(tmp_path: Path) -> None:
    cfg = ChaosConfig(orders=60, bad_every=20, outage_s=6.0, per_minute=150, concurrent=3, customers=10)
    report = run(cfg, tmp_path, say=lambda _msg: None)
    assert report.problems == []
    assert report.bad == 3
    assert report.parked_bad == 3
    assert report.resynced == 3
    assert report.resync_exit == 0
    assert report.max_per_window <= cfg.per_minute
    assert report.peak_concurrency <= cfg.concurrent
    assert {"error", "throttle", "timeout", "outage"} <= set(report.faults)


def test_window_and_overlap_counting() -> None:
    assert max_in_window([0, 1, 59.9, 60, 61], 60) == (3, 0)
    assert max_in_window([], 60) == (0, 0.0)
    assert peak_overlap([(0, 1), (1, 2), (0.5, 1.5)]) == 2
    assert peak_overlap([(0, 3), (1, 2), (1.5, 2.5)]) == 3
