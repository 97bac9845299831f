"""Benchmark 3: the cost of one scheduled poll as the store grows.

Two tables. (a) The orders poll with 0.1% of the orders changed since the cursor, at 1k, 10k and
100k orders. (b) The same number of changes (``FIXED_CHANGED``) over 1k and 100k records, for the
orders poll, the customers poll (Magento accounts) and the erp-customers poll (Acumatica customers,
through the adapter's time-windowed pages): with the cursor and the look-back, unchanged records
are never read, so the poll's requests and bytes do not depend on the total.

Records are put straight into the sims' memory (one realistic record, copied with new ids and
timestamps), because seeding 100k records through the APIs takes minutes. Each poll itself goes
through HTTP and moto as usual (``FlowRuntime.poll()``: search, seen versions, enqueue, cursor).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import RUNS, Bench, Wire, median
from bench.per_record import place

SIZES = (1_000, 10_000, 100_000)
CHANGED = 0.001
FIXED_SIZES = (1_000, 100_000)
FIXED_CHANGED = 10
TS = "%Y-%m-%d %H:%M:%S"
FLOWS = ("orders", "customers", "erp-customers")
SOURCE = {"orders": "magento", "customers": "magento", "erp-customers": "acumatica"}


# -- filling the sims' memory ----------------------------------------------------------------------


def _stamp(cursor: datetime, i: int, total: int, changed: int) -> datetime:
    """Record ``i``'s change time: after the cursor for the last ``changed`` records, else 2 days before."""
    return cursor + timedelta(seconds=i - (total - changed)) if i > total - changed else cursor - timedelta(days=2)


def fill_orders(sim: Any, template: dict[str, Any], total: int, changed: int, cursor: datetime) -> None:
    """Replace the Magento sim's orders with ``total`` copies of ``template``, the last ``changed``
    of them changed after ``cursor``."""
    with sim.lock:
        sim.orders = {}
        for i in range(1, total + 1):
            order = dict(template)
            order["entity_id"] = i
            order["increment_id"] = f"{i:09d}"
            order["created_at"] = order["updated_at"] = _stamp(cursor, i, total, changed).strftime(TS)
            sim.orders[i] = order


def fill_customers(sim: Any, total: int, changed: int, cursor: datetime) -> None:
    """Replace the Magento sim's customers with ``total`` accounts, the last ``changed`` changed after ``cursor``."""
    from sandbox.sims import magento_orders as mo

    with sim.lock:
        sim.customers = {}  # the template is saved into the new store, never into the one replaced
        template = sim.save_customer(mo.sample_customer(email="poll-template@example.com"))
        sim.customers = {}
        for i in range(1, total + 1):
            c = dict(template)
            c["id"], c["email"] = i, f"poll{i}@example.com"
            c["created_at"] = c["updated_at"] = _stamp(cursor, i, total, changed).strftime(TS)
            sim.customers[i] = c


def fill_acumatica(
    sim: Any,
    entity: str,
    key: str,
    template: dict[str, Any],
    ids: Callable[[int], tuple[str, str]],
    total: int,
    changed: int,
    cursor: datetime,
) -> None:
    """Replace the Acumatica sim's ``entity`` records with ``total`` copies of ``template`` (saved
    through the sim first, so it is whole), the last ``changed`` changed after ``cursor``; record
    ``i`` gets ``ids(i)``: its GUID and its ``key`` value."""
    with sim.lock:
        sim.records[entity] = {}  # as for the Magento template: never into the records replaced
        sim.index = {k: v for k, v in sim.index.items() if k[0] != entity}
        saved = sim.put(entity, template, {}, {})
        sim.records[entity] = {}
        sim.index = {k: v for k, v in sim.index.items() if k[0] != entity}
        for i in range(1, total + 1):
            rec = dict(saved)
            rid, value = ids(i)
            rec["id"], rec[key] = rid, {"value": value}
            rec["LastModifiedDateTime"] = {
                "value": _stamp(cursor, i, total, changed).isoformat(timespec="milliseconds")
            }
            sim.records[entity][rid] = rec
            sim.index[(entity, (value.casefold(),))] = rid


def fill_erp_customers(sim: Any, total: int, changed: int, cursor: datetime) -> None:
    """Replace the Acumatica sim's customers with ``total``, the last ``changed`` changed after ``cursor``."""
    template = {
        "CustomerID": {"value": "POLLTPL"},
        "CustomerName": {"value": "Poll Template"},
        "MainContact": {"Email": {"value": "poll-template@example.com"}, "FirstName": {"value": "Poll"}},
    }
    fill_acumatica(
        sim,
        "Customer",
        "CustomerID",
        template,
        lambda i: (f"00000000-0000-4000-8000-{i:012d}", f"P{i:09d}"),
        total,
        changed,
        cursor,
    )


def _fill_orders(bench: Bench, total: int, changed: int, cursor: datetime) -> None:
    template_id = place(bench, 1, cold=False, customers=bench.story.seed_customers(1))[0]
    sim = bench.stack.sim_apps["magento"].state.sim
    with sim.lock:
        template = sim.orders[template_id]
    fill_orders(sim, template, total, changed, cursor)


def _fill_customers(bench: Bench, total: int, changed: int, cursor: datetime) -> None:
    fill_customers(bench.stack.sim_apps["magento"].state.sim, total, changed, cursor)


def _fill_erp_customers(bench: Bench, total: int, changed: int, cursor: datetime) -> None:
    fill_erp_customers(bench.stack.sim_apps["acumatica"].state.sim, total, changed, cursor)


FILL: dict[str, Callable[[Bench, int, int, datetime], None]] = {
    "orders": _fill_orders,
    "customers": _fill_customers,
    "erp-customers": _fill_erp_customers,
}


class _Saved:
    """What the fills replace in the sims, put back afterwards (the other benchmarks use it)."""

    def __init__(self, bench: Bench) -> None:
        self.mag = bench.stack.sim_apps["magento"].state.sim
        self.acu = bench.stack.sim_apps["acumatica"].state.sim
        with self.mag.lock, self.acu.lock:
            self.orders, self.customers = self.mag.orders, self.mag.customers
            self.erp_customers = self.acu.records["Customer"]
            self.index = {k: v for k, v in self.acu.index.items() if k[0] == "Customer"}

    def restore(self) -> None:
        with self.mag.lock, self.acu.lock:
            self.mag.orders, self.mag.customers = self.orders, self.customers
            self.acu.records["Customer"] = self.erp_customers
            self.acu.index = {k: v for k, v in self.acu.index.items() if k[0] != "Customer"} | self.index


# -- one poll, measured ----------------------------------------------------------------------------


def reset_cursor(flow: str, connection: str, cursor: datetime) -> None:
    """Put the cursor of (``flow``, ``connection``) at ``cursor`` (cursors never move back by themselves)."""
    from erpsync.state import dynamo
    from erpsync.state.cursors import Cursors

    table = os.environ["BINDINGS_TABLE"]
    for key in (f"cursor#{flow}#{connection}", f"cursor#{flow}"):  # the legacy key would be read as a fallback
        dynamo.client().delete_item(TableName=table, Key=dynamo.to_item({"pk": key, "sk": "-"}))
    Cursors(table).set(f"{flow}#{connection}", cursor)


def purge(bench: Bench, flow: str) -> None:
    """Empty a flow's queue (the polls here only enqueue; nobody works them)."""
    from erpsync.runtime import queues

    url = queues.queue_url(flow)
    while True:
        got = queues.client().receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        msgs = got.get("Messages", [])
        if not msgs:
            return
        queues.client().delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)]
        )


def source_client(rt: Any) -> Any:
    """The HTTP client of the flow's (first) source connection (an orders port reaches it through its store)."""
    port = rt.dispatcher.lanes[0].rules.ctx.source_port
    store = getattr(port, "store", None)
    return store.client if store is not None else port.client


def measure_poll(bench: Bench, rt: Any, flow: str, cursor: datetime, wire: Wire) -> dict[str, Any]:
    """One ``rt.poll()`` from ``cursor``: requests (the sim's log), bytes, time split."""
    reset_cursor(flow, SOURCE[flow], cursor)
    bench.clear()
    wire.reset()
    t0 = time.perf_counter()
    res = rt.poll()
    seconds = time.perf_counter() - t0
    sample = {
        "seconds": seconds,
        "source_wait": wire.seconds,
        "aws_wait": bench.aws.seconds,
        "erpsync": seconds - wire.seconds - bench.aws.seconds,
        "source_requests": len(bench.requests(SOURCE[flow])),
        "client_requests": wire.requests,
        "bytes_in": wire.bytes_in,
        "bytes_out": wire.bytes_out,
        "aws_calls": sum(bench.aws.calls.values()),
        "enqueued": res["enqueued"],
    }
    purge(bench, flow)
    return sample


def _sim_search_seconds(bench: Bench, since: datetime) -> float:
    """The sim's own server-side time for the orders poll's search (called in-process, no HTTP)."""
    from erpsync.systems.magento.client import Filter, search_params
    from erpsync.systems.magento.mapping import format_timestamp
    from sandbox.sims.magento import _h_orders

    sim = bench.stack.sim_apps["magento"].state.sim
    params = search_params(
        [Filter("updated_at", format_timestamp(since), "gt")], [("updated_at", "ASC"), ("entity_id", "ASC")], 100, 1
    )
    t0 = time.perf_counter()
    with sim.lock:
        _h_orders(sim, None, list(params.items()), None)  # type: ignore[arg-type]
    return time.perf_counter() - t0


def _row(samples: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {**extra, "samples": samples}
    row.update({k: median([float(s[k]) for s in samples]) for k in samples[0]})
    return row


def run(
    bench: Bench,
    runs: int = RUNS,
    sizes: tuple[int, ...] = SIZES,
    fixed_sizes: tuple[int, ...] = FIXED_SIZES,
    fixed_changed: int = FIXED_CHANGED,
    flows: tuple[str, ...] = FLOWS,
) -> dict[str, Any]:
    cursor = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    saved = _Saved(bench)
    rts = {flow: bench.runtime(flow) for flow in flows}
    wires = {flow: Wire(bench.aws) for flow in flows}
    detach = [wires[flow].attach(source_client(rt)) for flow, rt in rts.items()]
    for rt in rts.values():  # signed in before any measurement
        rt.poll()
    for flow in flows:
        purge(bench, flow)
    share: list[dict[str, Any]] = []
    fixed: dict[str, list[dict[str, Any]]] = {flow: [] for flow in flows}
    try:
        if "orders" in flows:
            for total in sizes:
                changed = max(1, int(total * CHANGED))
                _fill_orders(bench, total, changed, cursor)
                samples = [measure_poll(bench, rts["orders"], "orders", cursor, wires["orders"]) for _ in range(runs)]
                since = cursor - timedelta(seconds=rts["orders"].settings.lookback_seconds)
                sim_s = median([_sim_search_seconds(bench, since) for _ in range(runs)])
                share.append(_row(samples, total=total, changed=changed, sim_search_s=sim_s))
        for flow in flows:
            for total in fixed_sizes:
                FILL[flow](bench, total, fixed_changed, cursor)
                samples = [measure_poll(bench, rts[flow], flow, cursor, wires[flow]) for _ in range(runs)]
                fixed[flow].append(_row(samples, total=total, changed=fixed_changed))
    finally:
        for undo in detach:
            undo()
        saved.restore()
        for flow in flows:
            reset_cursor(flow, SOURCE[flow], datetime.now(UTC))
    ratios = {
        flow: {
            k: (rows[-1][k] / rows[0][k] if rows[0][k] else 0.0)
            for k in ("source_requests", "bytes_in", "seconds", "erpsync")
        }
        for flow, rows in fixed.items()
        if rows
    }
    return {
        "runs": runs,
        "changed_share": CHANGED,
        "rows": share,
        "fixed_changed": fixed_changed,
        "fixed": fixed,
        "fixed_ratios": ratios,
    }
