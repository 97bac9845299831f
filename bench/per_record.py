"""Benchmark 1: requests per synced record, per flow and per external system, beside the naive connector."""

from __future__ import annotations

import itertools
import time
from collections import Counter
from typing import Any

from bench.common import RUNS, Bench, median
from bench.naive import NaiveConnector

ORDERS_PER_RUN = 30
DOCUMENT_ORDERS = 12
"""Orders per run shipped and invoiced in Acumatica for the shipments and invoices flows."""
_guest = itertools.count(1)


def place(bench: Bench, count: int, *, cold: bool, customers: list[dict[str, Any]]) -> list[int]:
    """``count`` realistic orders in the Magento sim: for known customers, or each for a new guest."""
    from sandbox.sims import magento_orders as mo

    carts = [
        [mo.CartLine("24-MB01", 1)],
        [mo.CartLine("WS12", 2, "WS12-M-Orange")],
        [mo.CartLine("24-MB04", 1), mo.CartLine("24-WG084", 3)],
        [mo.CartLine("24-WG088", 4), mo.CartLine("MH01", 1, "MH01-S-Gray")],
    ]
    ids = []
    for i in range(count):
        if cold:
            n = next(_guest)
            kwargs: dict[str, Any] = {
                "guest_email": f"bench-guest{n}@example.net",
                "address": mo.sample_customer()["addresses"][0],
            }
        else:
            kwargs = {"customer": customers[i % len(customers)]}
        order = mo.build_order(
            bench.story.catalog, carts[i % len(carts)], tax_rate="8.25" if i % 3 == 0 else 0, **kwargs
        )
        saved = bench.story.magento.call("POST", "/orders", json={"entity": order})
        ids.append(int(saved["entity_id"]))
    return ids


def _count(bench: Bench) -> dict[str, int]:
    return {s: len(bench.requests(s)) for s in ("magento", "acumatica")}


def _erpsync_orders(bench: Bench, rt: Any, ids: list[int]) -> dict[str, Any]:
    bench.clear()
    t0 = time.perf_counter()
    poll = rt.poll()
    after_poll = _count(bench)
    outcomes = rt.drain()
    seconds = time.perf_counter() - t0
    synced = sum(o.outcome == "synced" for o in outcomes)
    reqs = _count(bench)
    return {
        "records": synced,
        "expected": len(ids),
        "enqueued": poll["enqueued"],
        "magento": reqs["magento"] / synced,
        "magento_poll": after_poll["magento"] / synced,
        "acumatica": reqs["acumatica"] / synced,
        "aws": {k: v / synced for k, v in bench.aws.calls.items()},
        "units": {k: v / synced for k, v in bench.aws.units.items()},
        "seconds_per_record": seconds / synced,
    }


def _naive_orders(bench: Bench, naive: NaiveConnector, ids: list[int]) -> dict[str, Any]:
    bench.clear()
    t0 = time.perf_counter()
    made = [naive.sync_order(i) for i in ids]
    seconds = time.perf_counter() - t0
    reqs = _count(bench)
    statuses = Counter(f"{r['method']} {r['status']}" for r in bench.requests("acumatica") if r["status"] >= 300)
    return {
        "records": len(ids),
        "created": sum(bool(m) for m in made),
        "magento": reqs["magento"] / len(ids),
        "acumatica": reqs["acumatica"] / len(ids),
        "seconds_per_record": seconds / len(ids),
        "errors": dict(statuses),
    }


def run(bench: Bench, runs: int = RUNS) -> dict[str, Any]:
    from sandbox.story import PlacedOrder

    customers = bench.story.seed_customers(4)
    rt = bench.runtime("orders")
    place(bench, 4, cold=False, customers=customers)  # customers become known to Acumatica
    rt.poll()
    rt.drain()
    naive = NaiveConnector(bench.stack.info["magento"], bench.stack.info["acumatica"])
    result: dict[str, Any] = {"orders_per_run": ORDERS_PER_RUN, "runs": runs}
    samples: dict[str, list[dict[str, Any]]] = {k: [] for k in ("steady", "cold", "naive_steady", "naive_cold")}
    docs: dict[str, list[dict[str, Any]]] = {"shipments": [], "invoices": []}
    rts = {flow: bench.runtime(flow) for flow in ("shipments", "invoices")}
    for _ in range(runs):
        steady = place(bench, ORDERS_PER_RUN, cold=False, customers=customers)
        samples["steady"].append(_erpsync_orders(bench, rt, steady))
        cold = place(bench, ORDERS_PER_RUN, cold=True, customers=customers)
        samples["cold"].append(_erpsync_orders(bench, rt, cold))
        samples["naive_steady"].append(
            _naive_orders(bench, naive, place(bench, ORDERS_PER_RUN, cold=False, customers=customers))
        )
        samples["naive_cold"].append(_naive_orders(bench, naive, place(bench, ORDERS_PER_RUN, cold=True, customers=[])))
        # documents: ship and invoice the steady run's orders, then sync them back
        story = bench.story
        story.orders = []
        ids = place(bench, DOCUMENT_ORDERS, cold=False, customers=customers)
        rt.poll()
        rt.drain()
        for oid in ids:
            o = story.magento.call("GET", f"/orders/{oid}")
            story.orders.append(PlacedOrder(oid, str(o["increment_id"]), o["grand_total"], "bench"))
        story.shipped, story.partially, story.invoiced = {}, set(), set()
        story.ship_and_invoice()
        for flow, frt in rts.items():
            bench.clear()
            t0 = time.perf_counter()
            frt.poll()
            outcomes = frt.drain()
            seconds = time.perf_counter() - t0
            synced = max(1, sum(o.outcome == "synced" for o in outcomes))
            reqs = _count(bench)
            docs[flow].append(
                {
                    "records": synced,
                    "magento": reqs["magento"] / synced,
                    "acumatica": reqs["acumatica"] / synced,
                    "aws": {k: v / synced for k, v in bench.aws.calls.items()},
                    "units": {k: v / synced for k, v in bench.aws.units.items()},
                    "seconds_per_record": seconds / synced,
                }
            )
    for key, rows in {**samples, **docs}.items():
        result[key] = summarise(rows)
    return result


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of every numeric figure over the runs (nested dicts too)."""
    out: dict[str, Any] = {"samples": rows}
    keys = {k for r in rows for k, v in r.items() if isinstance(v, int | float)}
    for k in keys:
        out[k] = median([float(r.get(k, 0)) for r in rows])
    for k in {k for r in rows for k, v in r.items() if isinstance(v, dict)}:
        sub = {s for r in rows for s in r.get(k, {})}
        out[k] = {s: median([float(r.get(k, {}).get(s, 0)) for r in rows]) for s in sorted(sub)}
    return out
