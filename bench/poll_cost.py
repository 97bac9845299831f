"""Benchmark 3: the cost of one scheduled orders poll as the store grows (0.1% changed since the cursor).

Orders are put straight into the Magento sim's memory (one realistic order, saved through the
API, copied with new ids and timestamps), because seeding 100k orders through ``/_sim/seed``
renumbers item ids in O(n) per order. The poll itself goes through HTTP as usual.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import RUNS, Bench, median
from bench.per_record import place

SIZES = (1_000, 10_000, 100_000)
CHANGED = 0.001
TS = "%Y-%m-%d %H:%M:%S"


def _fill(bench: Bench, total: int, changed: int, cursor: datetime) -> None:
    template_id = place(bench, 1, cold=False, customers=bench.story.seed_customers(1))[0]
    sim = bench.stack.sim_apps["magento"].state.sim
    with sim.lock:
        template = sim.orders[template_id]
        old = (cursor - timedelta(days=2)).strftime(TS)
        sim.orders = {}
        for i in range(1, total + 1):
            order = dict(template)
            order["entity_id"] = i
            order["increment_id"] = f"{i:09d}"
            stamp = (cursor + timedelta(seconds=i)).strftime(TS) if i > total - changed else old
            order["created_at"] = order["updated_at"] = stamp
            sim.orders[i] = order


def _reset_cursor(cursor: datetime) -> None:
    from erpsync.state import dynamo
    from erpsync.state.cursors import Cursors

    table = os.environ["BINDINGS_TABLE"]
    dynamo.client().delete_item(TableName=table, Key=dynamo.to_item({"pk": "cursor#orders", "sk": "-"}))
    Cursors(table).set("orders", cursor)


def _sim_search_seconds(bench: Bench, since: datetime) -> float:
    """The sim's own server-side time for the poll's search (called in-process, no HTTP)."""
    from erpsync.systems.magento.client import Filter, search_params
    from erpsync.systems.magento.mapping import format_timestamp
    from sandbox.sims.magento import _h_orders

    sim = bench.stack.sim_apps["magento"].state.sim
    params = search_params(
        [Filter("updated_at", format_timestamp(since), "gt")], [("updated_at", "ASC"), ("entity_id", "ASC")], 100, 1
    )
    t0 = time.perf_counter()
    with sim.lock:
        _h_orders(sim, None, list(params.items()), None)
    return time.perf_counter() - t0


def run(bench: Bench, runs: int = RUNS, sizes: tuple[int, ...] = SIZES) -> dict[str, Any]:
    rt = bench.runtime("orders")
    client = rt.flow.store.client
    waited = [0.0]
    send = client._send

    def timed_send(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return send(*args, **kwargs)
        finally:
            waited[0] += time.perf_counter() - t0

    client._send = timed_send
    client.token()
    cursor = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    rows = []
    try:
        for total in sizes:
            changed = max(1, int(total * CHANGED))
            _fill(bench, total, changed, cursor)
            samples = []
            for _ in range(runs):
                _reset_cursor(cursor)
                bench.clear()
                waited[0] = 0.0
                t0 = time.perf_counter()
                res = rt.poll()
                seconds = time.perf_counter() - t0
                samples.append(
                    {
                        "seconds": seconds,
                        "magento_wait": waited[0],
                        "aws_wait": bench.aws.seconds,
                        "erpsync": seconds - waited[0] - bench.aws.seconds,
                        "magento_requests": len(bench.requests("magento")),
                        "aws_calls": sum(bench.aws.calls.values()),
                        "enqueued": res["enqueued"],
                    }
                )
            since = cursor - timedelta(seconds=rt.settings.lookback_seconds)
            sim_s = median([_sim_search_seconds(bench, since) for _ in range(runs)])
            row: dict[str, Any] = {"total": total, "changed": changed, "sim_search_s": sim_s, "samples": samples}
            row.update({k: median([float(s[k]) for s in samples]) for k in samples[0]})
            rows.append(row)
    finally:
        client._send = send
        sim = bench.stack.sim_apps["magento"].state.sim
        with sim.lock:
            sim.orders = {}
        _reset_cursor(datetime.now(UTC))
    return {"runs": runs, "changed_share": CHANGED, "rows": rows}
