"""Benchmark 8: peak memory of one poll as the number of changes it enqueues grows.

A poll streams: the source is read page by page, each page is enqueued and the cursor moved to its
checkpoint before the next page is read, so memory should hold one page whatever the number of
changes. Measured as peak RSS (``ru_maxrss``) of a fresh interpreter per run, for:

- ``orders``: the orders poll (``MagentoStore.order_pages``, snapshots in the notices) over 1k, 10k
  and 100k orders changed since the cursor;
- ``shipments`` and ``customers``: the Acumatica shipments and erp-customers polls through the
  adapter's time-windowed pages (``AcumaticaErp.pages``).

What runs is erpsync's own code from the HTTP client up: ``MagentoClient``/``AcumaticaClient``
(httpx, JSON), the adapters, ``erpsync.runtime.poller.poll`` and ``queues.send_notices``. The far
ends are stand-ins inside the child: the source is an ``httpx.MockTransport`` that builds the page
asked for from one template record when asked (it stores nothing, so the sims' own memory, 100k
orders of it, is not counted), SQS ``SendMessageBatch`` is a stub that counts and drops the
messages, and the cursor and seen versions are in-memory (a cursor write per page, no seen version
found, as on a first poll).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.common import median

ROOT = Path(__file__).resolve().parents[1]
SIZES = (1_000, 10_000, 100_000)
RUNS = 3
KINDS = ("orders", "shipments", "customers")
WARM_UP = 300
"""Records polled before the baseline is taken (imports, validators and caches warmed)."""
STEP = timedelta(seconds=1)
"""Change times of the synthetic records, one apart (Magento prints whole seconds)."""
TS = "%Y-%m-%d %H:%M:%S"
_WINDOW = re.compile(
    r"LastModifiedDateTime gt datetimeoffset'([^']+)' and LastModifiedDateTime le datetimeoffset'([^']+)'"
)


class SyntheticMagento:
    """The orders search of a store where ``count`` orders changed, one second apart from ``base``:
    answers ``GET /V1/orders`` (filter ``updated_at gt``, sorted by it, paged) by building the asked
    page from a template order."""

    def __init__(self, count: int, base: datetime) -> None:
        from sandbox.sims import magento_orders as mo

        self.count, self.base = count, base.replace(microsecond=0)
        self.template = mo.build_order(
            mo.sample_catalog(),
            [mo.CartLine("24-MB04", 1), mo.CartLine("24-WG084", 3)],
            customer=mo.sample_customer(customer_id=1) | {"id": 1},
            entity_id=1,
            increment_id="000000001",
        )
        self.requests = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        path = request.url.path
        if path.endswith("/integration/admin/token"):
            return httpx.Response(200, json="synthetic-token")
        if not path.endswith("/V1/orders"):
            return httpx.Response(404, json={"message": f"no route {path}"})
        q = request.url.params
        size = int(q.get("searchCriteria[pageSize]", "20"))
        page = int(q.get("searchCriteria[currentPage]", "1"))
        first = 1
        for g in range(4):
            key = f"searchCriteria[filter_groups][{g}][filters][0]"
            if q.get(f"{key}[field]") == "updated_at" and q.get(f"{key}[condition_type]") == "gt":
                since = datetime.strptime(q[f"{key}[value]"], TS).replace(tzinfo=UTC)
                first = max(1, int((since - self.base) / STEP) + 1)
        total = max(0, self.count - first + 1)
        last_page = max(1, -(-total // size))
        page = min(page, last_page)  # Magento repeats the last page past the end
        lo = first + (page - 1) * size
        items = []
        for i in range(lo, min(self.count, lo + size - 1) + 1):
            order = dict(self.template)
            order["entity_id"], order["increment_id"] = i, f"{i:09d}"
            order["updated_at"] = (self.base + i * STEP).strftime(TS)
            items.append(order)
        body = json.dumps({"items": items, "search_criteria": {}, "total_count": total}).encode()
        return httpx.Response(200, content=body, headers={"Content-Type": "application/json"})


class SyntheticAcumatica:
    """An Acumatica endpoint where ``count`` records of ``entity`` changed, one second apart from
    ``base``: answers sign-in and ``GET <entity>?$filter=LastModifiedDateTime gt .. and le ..``
    with ``$top``/``$skip``, rows in key order (Acumatica has no ``$orderby``). By default key order
    is change order (records created one after the other); with ``shuffle_seed`` the keys are
    shuffled against the change times (customers keyed by a hash of their email, say)."""

    def __init__(self, count: int, base: datetime, entity: str, key: str, shuffle_seed: int | None = None) -> None:
        self.count, self.base, self.entity, self.key = count, base, entity, key
        self.requests = 0
        self.key_at: list[int] | None = None
        if shuffle_seed is not None:
            import random

            self.key_at = list(range(1, count + 1))
            random.Random(shuffle_seed).shuffle(self.key_at)

    def time_of(self, i: int) -> datetime:
        return self.base + i * STEP

    def _index_after(self, moment: datetime) -> int:
        """How many records changed at or before ``moment``."""
        return max(0, min(self.count, int((moment - self.base) // STEP)))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        path = request.url.path
        if path.endswith("/auth/login"):
            return httpx.Response(204)
        if not path.endswith(f"/{self.entity}"):
            return httpx.Response(404, json={"message": f"no route {path}"})
        q = request.url.params
        m = _WINDOW.search(q.get("$filter", ""))
        if not m:
            return httpx.Response(400, json={"message": "synthetic endpoint: a LastModifiedDateTime window is needed"})
        after, until = (datetime.fromisoformat(x) for x in m.groups())
        lo, hi = self._index_after(after) + 1, self._index_after(until)
        top, skip = int(q.get("$top", "100")), int(q.get("$skip", "0"))
        if self.key_at is None:
            chosen = [(i, i) for i in range(lo + skip, min(hi, lo + skip + top - 1) + 1)]
        else:
            import heapq

            keys = self.key_at
            chosen = heapq.nsmallest(skip + top, ((keys[i - 1], i) for i in range(lo, hi + 1)))[skip:]
        rows = [
            {
                "id": f"00000000-0000-4000-8000-{i:012d}",
                "rowNumber": n,
                self.key: {"value": f"{k:06d}"},
                "LastModifiedDateTime": {"value": self.time_of(i).isoformat(timespec="milliseconds")},
                "custom": {},
            }
            for n, (k, i) in enumerate(chosen, 1)
        ]
        return httpx.Response(200, content=json.dumps(rows).encode(), headers={"Content-Type": "application/json"})


class StubSqs:
    """``SendMessageBatch`` that counts and drops (so SQS's own memory is not the child's);
    ``on_send`` is called after each batch (a test watches the poll stream with it)."""

    def __init__(self, on_send: Callable[[StubSqs], None] | None = None) -> None:
        self.messages = 0
        self.batches = 0
        self.bytes = 0
        self.on_send = on_send

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.batches += 1
        self.messages += len(Entries)
        self.bytes += sum(len(e["MessageBody"]) for e in Entries)
        if self.on_send is not None:
            self.on_send(self)
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}


class _Cursors:
    def __init__(self, start: datetime) -> None:
        self.value: datetime | None = start
        self.writes = 0

    def get(self, key: str, legacy: str | None = None) -> datetime | None:
        return self.value

    def set(self, key: str, value: datetime) -> None:
        self.writes += 1
        if self.value is None or value > self.value:
            self.value = value


class _Seen:
    """Seen versions that hold nothing: every notice is new (what a first poll of a backlog meets)."""

    def get_many(self, flow: str, ids: list[str]) -> dict[str, str]:
        return {}

    def standing(self, flow: str, ids: list[str]) -> tuple[dict[str, str], dict[str, str]]:
        return {}, {}

    def mark_queued(self, flow: str, versions: dict[str, str], hold_s: int) -> None:
        """Nothing kept (the memory measured is the poll's, not a store's)."""


def _mock(transport: Callable[[httpx.Request], httpx.Response]) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(transport))


def source(kind: str, count: int, base: datetime) -> tuple[Any, Callable[[datetime], Any]]:
    """The synthetic server of ``kind`` and the adapter's stream of pages reading it."""
    from erpsync.systems.acumatica.adapter import AcumaticaCustomers, AcumaticaErp
    from erpsync.systems.acumatica.client import AcumaticaClient
    from erpsync.systems.magento.adapter import MagentoStore
    from erpsync.systems.magento.client import MagentoClient

    if kind == "orders":
        shop = SyntheticMagento(count, base)
        return shop, MagentoStore(
            MagentoClient("http://magento.synthetic/rest/default", "a", "x", http=_mock(shop))
        ).order_pages
    entity, key = ("Shipment", "ShipmentNbr") if kind == "shipments" else ("Customer", "CustomerID")
    server = SyntheticAcumatica(count, base, entity, key)
    erp = AcumaticaErp(AcumaticaClient("http://acumatica.synthetic", "a", "x", http=_mock(server)))
    return server, (erp.shipment_pages if kind == "shipments" else AcumaticaCustomers(erp).changes)


def poll_once(kind: str, count: int, on_send: Callable[[Any, StubSqs], None] | None = None) -> dict[str, Any]:
    """One poll of ``count`` changed records of ``kind`` in this process: what it read and enqueued.
    ``on_send(server, sqs)`` is called after each SendMessageBatch."""
    from erpsync.runtime import poller, queues
    from erpsync.settings import Settings

    base = (datetime.now(UTC) - (count + 120) * STEP).replace(microsecond=0)
    server, pages = source(kind, count, base)
    sqs = StubSqs(None if on_send is None else lambda q: on_send(server, q))
    settings = Settings()
    cursors = _Cursors(base - timedelta(seconds=1) + timedelta(seconds=settings.lookback_seconds))
    real = queues.client
    queues.client = lambda: sqs  # type: ignore[assignment]
    try:
        res = poller.poll(kind, "source", "target", pages, cursors, "queue", settings, seen=_Seen())  # type: ignore[arg-type]
    finally:
        queues.client = real
    return {
        "enqueued": res.enqueued,
        "pages": res.pages,
        "requests": server.requests,
        "cursor_writes": cursors.writes,
        "sqs_batches": sqs.batches,
        "sqs_bytes": sqs.bytes,
        "cursor_at_end": cursors.value is not None and cursors.value >= base + count * STEP,
    }


WINDOW_SIZES = (1_000, 10_000)


def window_requests(count: int, shuffled: bool) -> dict[str, Any]:
    """Requests the Acumatica customers poll's time windows take to read ``count`` changes (in this
    process; the rows come in change order, or with their keys shuffled against it)."""
    from erpsync.systems.acumatica.adapter import PAGE_SIZE, AcumaticaCustomers, AcumaticaErp
    from erpsync.systems.acumatica.client import AcumaticaClient

    base = (datetime.now(UTC) - (count + 120) * STEP).replace(microsecond=0)
    server = SyntheticAcumatica(count, base, "Customer", "CustomerID", shuffle_seed=7 if shuffled else None)
    erp = AcumaticaErp(AcumaticaClient("http://acumatica.synthetic", "admin", "x", http=_mock(server)))
    ids = [n.id for page in AcumaticaCustomers(erp).changes(base - timedelta(seconds=1)) for n in page.notices]
    reads = server.requests - 1  # the sign-in
    return {
        "count": count,
        "shuffled": shuffled,
        "read": len(ids),
        "distinct": len(set(ids)),
        "requests": reads,
        "per_100": 100 * reads / count,
        "ideal_per_100": 100 / PAGE_SIZE,
    }


def _child(kind: str, count: int) -> dict[str, Any]:
    import resource
    import time

    poll_once(kind, WARM_UP)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    out = poll_once(kind, count)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss = {"rss_before_mb": before / 1024, "peak_rss_mb": peak / 1024}
    return {"kind": kind, "count": count, **out, **rss, "s": seconds}


def child_run(kind: str, count: int) -> dict[str, Any]:
    """One measurement in a fresh interpreter (``ru_maxrss`` is a high-water mark)."""
    env = dict(os.environ, PYTHONPATH=f"{ROOT / 'layers/shared/python'}{os.pathsep}{ROOT}", LOG_LEVEL="WARNING")
    out = subprocess.run(
        [sys.executable, "-m", "bench.poll_memory", kind, str(count)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def run(runs: int = RUNS, sizes: tuple[int, ...] = SIZES, kinds: tuple[str, ...] = KINDS) -> dict[str, Any]:
    rows = []
    for kind in kinds:
        for count in sizes:
            samples = [child_run(kind, count) for _ in range(runs)]
            row: dict[str, Any] = {"kind": kind, "count": count, "samples": samples}
            keys = ("enqueued", "pages", "requests", "cursor_writes", "rss_before_mb", "peak_rss_mb", "s")
            row.update({k: median([float(s[k]) for s in samples]) for k in keys})
            row["growth_mb"] = row["peak_rss_mb"] - row["rss_before_mb"]
            row["complete"] = all(s["enqueued"] == count and s["cursor_at_end"] for s in samples)
            rows.append(row)
    ratios = {}
    for kind in kinds:
        mine = [r for r in rows if r["kind"] == kind]
        if len(mine) > 1:
            ratios[kind] = mine[-1]["peak_rss_mb"] / mine[0]["peak_rss_mb"]
    windows = [window_requests(n, shuffled) for shuffled in (False, True) for n in WINDOW_SIZES]
    return {"runs": runs, "warm_up": WARM_UP, "rows": rows, "ratios": ratios, "windows": windows}


if __name__ == "__main__":
    import logging

    logging.disable(logging.INFO)
    print(json.dumps(_child(sys.argv[1], int(sys.argv[2]))))
