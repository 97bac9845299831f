"""The small version of ``bench.latency``: signed webhooks through the local stack's API, queues and
event sources reach the Acumatica sim, and the benchmark finds each record's PUT in the sim's log
(no times asserted)."""

from __future__ import annotations

import pytest

from bench import latency

pytestmark = pytest.mark.e2e


def test_every_webhook_reaches_acumatica_and_its_put_is_found() -> None:
    r = latency.run(records=3, interval_s=0.1, warm_up=1)
    for kind in ("orders", "customers"):
        assert r[kind]["cold_first_s"] is not None, kind
        for mode in latency.MODES:
            d = r[kind][mode]
            assert d["sent"] == d["arrived"] == 3, (kind, mode)
            for row in d["samples"]:
                # the parts follow one another: the POST, the worker's read of the record, the PUT answered
                assert row["webhook"] > 0 and row["pickup"] > 0 and row["worker"] > 0, (kind, mode, row)
                assert row["pickup"] + row["worker"] == pytest.approx(row["latency"]), (kind, mode)
    assert r["event_sources"]["orders"]["batching_window_s"] >= 0


def test_percentiles_interpolate_between_ranks() -> None:
    assert latency.percentile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.5
    assert latency.percentile([1.0, 2.0, 3.0], 0.95) == pytest.approx(2.9)
    assert latency.percentile([], 0.5) == 0.0
