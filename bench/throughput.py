"""Benchmark 2: orders per second against the ERP's ceiling (fixed latency L, C concurrent requests).

The ideal is C / (L x Acumatica requests per order). Each worker thread is its own FlowRuntime
(its own clients and session), as concurrent Lambda containers are, sharing the system's seats in
DynamoDB. Measured at two latencies: about what a real Acumatica takes to save a sales
order (L = 1 s), and a short one (L = 100 ms) where the local stack's own CPU (moto, the sims
and the workers on two cores) becomes the bottleneck rather than the ERP.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from bench.common import RUNS, Bench, median, warm_sessions
from bench.per_record import place

LATENCIES_MS = {"realistic": 1000, "short": 100}
"""L per case; each case places ``ORDERS[case]`` orders per run (about 30 s of ideal work)."""
ORDERS = {"realistic": 120, "short": 200}
CONCURRENT = 4
THREADS = 8


def run(bench: Bench, runs: int = RUNS) -> dict[str, Any]:
    """Per latency, 8 workers: erpsync told the ceiling (``rate_limits`` with ``concurrent`` = C),
    and beside it the product's defaults (no ``rate_limits``: the seats are learned from the ERP's
    429s): the difference is what learning the licence costs."""
    return {
        case: {
            "limiter": _run(bench, runs, ORDERS[case], latency_ms, limiter=True, threads=THREADS),
            "learned": _run(bench, runs, ORDERS[case], latency_ms, limiter=False, threads=THREADS),
        }
        for case, latency_ms in LATENCIES_MS.items()
    }


def _run(bench: Bench, runs: int, orders: int, latency_ms: int, *, limiter: bool, threads: int) -> dict[str, Any]:
    customers = bench.story.seed_customers(4)
    # settings are a JSON merge patch: null removes the key (an empty map would merge into the old one)
    limits = {"acumatica": {"per_minute": 1_000_000, "concurrent": CONCURRENT}} if limiter else None
    bench.settings({"rate_limits": limits})
    workers = [bench.runtime("orders") for _ in range(threads)]
    place(bench, 4, cold=False, customers=customers)  # customers known
    workers[0].poll()
    workers[0].drain()
    for rt in workers:  # every worker signed in, as warm containers are
        warm_sessions(rt)
    bench.faults("acumatica", latency_ms=latency_ms, max_concurrent=CONCURRENT)
    samples = []
    try:
        for _ in range(runs):
            place(bench, orders, cold=False, customers=customers)
            workers[0].poll()
            bench.clear()
            outcomes: list[Any] = []
            lock = threading.Lock()

            def work(rt: Any, outcomes: list[Any] = outcomes, lock: threading.Lock = lock) -> None:
                done = rt.drain()
                with lock:
                    outcomes.extend(done)

            pool = [threading.Thread(target=work, args=(rt,)) for rt in workers]
            t0 = time.perf_counter()
            for t in pool:
                t.start()
            for t in pool:
                t.join()
            # anything re-queued with a delay (a 429, a ceiling wait) is finished here, and counted
            while sum(o.outcome == "synced" for o in outcomes) < orders and time.perf_counter() - t0 < 300:
                time.sleep(0.2)
                outcomes.extend(workers[0].drain())
            elapsed = time.perf_counter() - t0
            reqs = bench.requests("acumatica")
            synced = sum(o.outcome == "synced" for o in outcomes)
            per_order = len(reqs) / max(1, synced)
            rate = synced / elapsed
            ideal = CONCURRENT / (latency_ms / 1000 * per_order)
            samples.append(
                {
                    "synced": synced,
                    "seconds": elapsed,
                    "orders_per_s": rate,
                    "acumatica_per_order": per_order,
                    "ideal_orders_per_s": ideal,
                    "ratio": rate / ideal,
                    "throttled_429": sum(r["status"] == 429 for r in reqs),
                    "retrying": sum(o.outcome == "retrying" for o in outcomes),
                    "max_in_flight": _peak(bench),
                }
            )
    finally:
        bench.faults("acumatica")
        bench.settings({"rate_limits": None})
    keys = samples[0].keys()
    return {
        "latency_ms": latency_ms,
        "concurrent": CONCURRENT,
        "orders": orders,
        "threads": threads,
        "runs": runs,
        "samples": samples,
        **{k: median([float(s[k]) for s in samples]) for k in keys},
    }


def _peak(bench: Bench) -> int:
    import httpx

    return int(httpx.get(f"{bench.acumatica_url}/_sim/requests").json().get("max_in_flight", 0))
