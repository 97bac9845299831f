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
_WINDOW = re.compile(r"LastModifiedDateTime gt datetimeoffset'([^']+)' and LastModifiedDateTime le datetimeoffset'([^']+)'")


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
    with ``$top``/``$skip``, rows in key order (which is change order here, as for records created
    one after the other)."""

    def __init__(self, count: int, base: datetime, entity: str, key: str) -> None:
        self.count, self.base, self.entity, self.key = count, base, entity, key
        self.requests = 0

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
        rows = []
        for i in range(lo + skip, min(hi, lo + skip + top - 1) + 1):
            rows.append(
                {
                    "id": f"00000000-0000-4000-8000-{i:012d}",
                    "rowNumber": i - lo - skip + 1,
                    self.key: {"value": f"{i:06d}"},
                    "LastModifiedDateTime": {"value": self.time_of(i).isoformat(timespec="milliseconds")},
                    "custom": {},
                }
            )
        return httpx.Response(200, content=json.dumps(rows).encode(), headers={"Content-Type": "application/json"})


class _Sqs:
    """``SendMessageBatch`` that counts and drops (so SQS's own memory is not the child's)."""

    def __init__(self) -> None:
        self.messages = 0
        self.batches = 0
        self.bytes = 0

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        self.batches += 1
        self.messages += len(Entries)
        self.bytes += sum(len(e["MessageBody"]) for e in Entries)
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
    def get_many(self, flow: str, ids: list[str]) -> dict[str, str]:
        return {}


def poll_once(kind: str, count: int) -> dict[str, Any]:
    """One poll of ``count`` changed records of ``kind`` in this process: what it read and enqueued."""
    from erpsync.runtime import poller, queues
    from erpsync.settings import Settings
    from erpsync.systems.acumatica.adapter import AcumaticaCustomers, AcumaticaErp
    from erpsync.systems.acumatica.client import AcumaticaClient
    from erpsync.systems.magento.adapter import MagentoStore
    from erpsync.systems.magento.client import MagentoClient

    now = datetime.now(UTC)
    base = (now - (count + 120) * STEP).replace(microsecond=0)
    sqs = _Sqs()
    queues.client = lambda: sqs  # type: ignore[assignment]
    server: SyntheticMagento | SyntheticAcumatica
    if kind == "orders":
        server = SyntheticMagento(count, base)
        client: Any = MagentoClient(
            "http://magento.synthetic/rest/default", "admin", "x", http=httpx.Client(transport=httpx.MockTransport(server))
        )
        pages = MagentoStore(client).order_pages
    else:
        entity, key = ("Shipment", "ShipmentNbr") if kind == "shipments" else ("Customer", "CustomerID")
        server = SyntheticAcumatica(count, base, entity, key)
        client = AcumaticaClient(
            "http://acumatica.synthetic", "admin", "x", http=httpx.Client(transport=httpx.MockTransport(server))
        )
        erp = AcumaticaErp(client)
        pages = erp.shipment_pages if kind == "shipments" else AcumaticaCustomers(erp).changes
    settings = Settings()
    cursors = _Cursors(base - timedelta(seconds=1) + timedelta(seconds=settings.lookback_seconds))
    res = poller.poll(kind, "source", "target", pages, cursors, "queue", settings, seen=_Seen())  # type: ignore[arg-type]
    return {
        "enqueued": res.enqueued,
        "pages": res.pages,
        "requests": server.requests,
        "cursor_writes": cursors.writes,
        "sqs_batches": sqs.batches,
        "sqs_bytes": sqs.bytes,
        "cursor_at_end": cursors.value is not None and cursors.value >= base + count * STEP,
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
    return {"kind": kind, "count": count, **out, "rss_before_mb": before / 1024, "peak_rss_mb": peak / 1024, "s": seconds}


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
    return {"runs": runs, "warm_up": WARM_UP, "rows": rows, "ratios": ratios}


if __name__ == "__main__":
    import logging

    logging.disable(logging.INFO)
    print(json.dumps(_child(sys.argv[1], int(sys.argv[2]))))
