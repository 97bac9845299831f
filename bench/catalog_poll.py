"""Benchmark 10: the products poll as the catalog grows (1k, 10k and 100k items, 0.1% changed).

The Acumatica sim's stock items are replaced by ``total`` copies of one item saved through its
API (new ids, ``LastModifiedDateTime`` two days before the cursor), the last 0.1% of them changed
after it; then one ``FlowRuntime.poll()`` of the products flow over HTTP and moto, as in section
3: its Acumatica requests, bytes and time. The poll reads ``LastModifiedDateTime`` time windows
(Acumatica has no ``$orderby``), so what it costs should follow the changes, not the catalog.
The sim answers a filter by scanning every record (a real Acumatica uses its index): its time is
the ``source`` column, and ``sim filter s`` is that scan alone, called in-process.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import RUNS, Bench, Wire, median
from bench.poll_cost import fill_acumatica, measure_poll, purge, reset_cursor, source_client

SIZES = (1_000, 10_000, 100_000)
CHANGED = 0.001
FIXED_CHANGED = 10
GOAL = 1.5
"""With ``FIXED_CHANGED`` changes, requests and bytes of a poll over 100k items at most this many
times those over 1k."""


def fill_items(sim: Any, total: int, changed: int, cursor: datetime) -> None:
    """Replace the sim's stock items with ``total`` copies of one, the last ``changed`` changed after ``cursor``."""
    template = {
        "InventoryID": {"value": "POLLTPL"},
        "Description": {"value": "Poll template"},
        "DefaultPrice": {"value": 9.5},
    }
    fill_acumatica(
        sim,
        "StockItem",
        "InventoryID",
        template,
        lambda i: (f"00000000-0000-4000-9000-{i:012d}", f"ITEM{i:07d}"),
        total,
        changed,
        cursor,
    )


def _sim_filter_seconds(sim: Any, since: datetime) -> float:
    """The sim's own scan for one window's filter over its stock items (in-process, no HTTP)."""
    t0 = time.perf_counter()
    stamp = since.isoformat(timespec="milliseconds")
    with sim.lock:
        _ = [r for r in sim.records["StockItem"].values() if str(r["LastModifiedDateTime"]["value"]) > stamp]
    return time.perf_counter() - t0


def run(bench: Bench, runs: int = RUNS, sizes: tuple[int, ...] = SIZES) -> dict[str, Any]:
    """Needs the catalog switched on for the route (benchmark 9 does it)."""
    from bench import poll_cost

    poll_cost.SOURCE.setdefault("products", "acumatica")
    sim = bench.stack.sim_apps["acumatica"].state.sim
    with sim.lock:
        saved_items = sim.records.get("StockItem", {})
        saved_index = {k: v for k, v in sim.index.items() if k[0] == "StockItem"}
    cursor = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    rt = bench.runtime("products")
    wire = Wire(bench.aws)
    detach = wire.attach(source_client(rt))
    rt.poll()  # signed in
    purge(bench, "products")
    since = cursor - timedelta(seconds=rt.settings.lookback_seconds)

    def measured(total: int, changed: int) -> dict[str, Any]:
        fill_items(sim, total, changed, cursor)
        samples = [measure_poll(bench, rt, "products", cursor, wire) for _ in range(runs)]
        row: dict[str, Any] = {"total": total, "changed": changed, "samples": samples}
        row.update({k: median([float(s[k]) for s in samples]) for k in samples[0]})
        row["sim_filter_s"] = median([_sim_filter_seconds(sim, since) for _ in range(runs)])
        return row

    try:
        rows = [measured(total, max(1, int(total * CHANGED))) for total in sizes]
        fixed = [measured(total, FIXED_CHANGED) for total in (sizes[0], sizes[-1])]
    finally:
        detach()
        with sim.lock:
            sim.records["StockItem"] = saved_items
            sim.index = {k: v for k, v in sim.index.items() if k[0] != "StockItem"} | saved_index
        reset_cursor("products", "acumatica", datetime.now(UTC))
    first, last = fixed
    ratios = {k: (last[k] / first[k] if first[k] else 0.0) for k in ("source_requests", "bytes_in", "erpsync")}
    return {"runs": runs, "changed_share": CHANGED, "rows": rows, "fixed": fixed, "ratios": ratios}


def goals(result: dict[str, Any]) -> dict[str, bool]:
    r = result["ratios"]
    return {"flat": r["source_requests"] <= GOAL and r["bytes_in"] <= GOAL}


def _table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| items | changed | enqueued | Acumatica requests | bytes in | seconds | source s | sim filter s "
        "| AWS s | erpsync s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['total']:,} | {row['changed']:,} | {row['enqueued']:.0f} | {row['source_requests']:.0f} "
            f"| {row['bytes_in']:,.0f} | {row['seconds']:.2f} | {row['source_wait']:.2f} | {row['sim_filter_s']:.3f} "
            f"| {row['aws_wait']:.2f} | {row['erpsync']:.3f} |"
        )
    return lines


def section(result: dict[str, Any]) -> list[str]:
    """The benchmark's part of docs/PERFORMANCE.md."""
    rows, fixed, r = result["rows"], result["fixed"], result["ratios"]
    ok = goals(result)["flat"]
    return [
        "## 10. The products poll as the catalog grows",
        "",
        f"{result['runs']} polls per row; the Acumatica sim's stock items replaced by copies of one item, some "
        "changed since the cursor (`bench/catalog_poll.py`). One `FlowRuntime.poll()` of the products flow: "
        "`LastModifiedDateTime` time windows over stock, non-stock and template items, the changed items "
        "enqueued. Medians. *source s* is the wait for Acumatica, the sim's own scan of every record included (a "
        "real Acumatica filters by its index); *sim filter s* is that scan alone, in-process.",
        "",
        f"### 10a. {result['changed_share']:.1%} of the items changed",
        "",
        *_table(rows),
        "",
        f"### 10b. {fixed[0]['changed']} items changed, over {fixed[0]['total']:,} and {fixed[-1]['total']:,}",
        "",
        *_table(fixed),
        "",
        f"- Goal: a poll grows with the changes, not the catalog (the same changes over {fixed[-1]['total']:,} "
        f"items cost at most {GOAL:g}x the requests and bytes they cost over {fixed[0]['total']:,}): "
        f"{'**met**' if ok else '**not met**'}: requests {r['source_requests']:.2f}x, bytes {r['bytes_in']:.2f}x, "
        f"erpsync's own time {r['erpsync']:.2f}x. In 10a the requests follow the changes (a window holds at most "
        "a page).",
        "",
    ]
