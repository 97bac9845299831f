"""The chaos run: many orders through the local stack while Acumatica misbehaves, then the proof.

On a local stack with its pollers and schedules running (and extra drain threads standing in
for Lambda's concurrency), orders are placed in Magento while the Acumatica sim fails a share of
requests with 5xx, throttles some with 429 + Retry-After, hangs some until they time out (504),
and goes fully down for a stretch in the middle. Every order's webhook is delivered twice and out
of order (half as the very same delivery, half as two different events), and the schedule finds
them too. A few orders name a SKU that Acumatica does not have.

Then it checks what issue 3 asks for:

- every good order is in Acumatica exactly once, with the store's total;
- every bad order waits in the orders failed queue as ``unknown_item`` with a reason naming the
  SKU, and no good order is there;
- once the stock items exist, ``erpsync resync orders --failed`` (the CLI, in a subprocess)
  brings every order to Acumatica exactly once and empties the failed queue;
- the connector never sent Acumatica more requests in any 60 seconds than ``per_minute``, nor
  more at once than ``concurrent`` (from the sim's request log: arrival and answer times).

``run(ChaosConfig(...), workdir)`` returns a :class:`ChaosReport` whose ``problems`` is empty
when every guarantee held. Used by ``bench/chaos.py`` and ``tests/e2e/test_chaos.py``.
"""

from __future__ import annotations

import bisect
import json
import logging
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from erpsync.runtime.queues import queue_url
from erpsync.systems.magento.webhooks import sign
from sandbox.sims import magento_orders as mo
from sandbox.story import CARTS, AcumaticaUser, MagentoAdmin, Story, v

log = logging.getLogger("erpsync.chaos")

HARNESS_AGENT = "erpsync-chaos-harness"
"""User-Agent of this harness's own Acumatica calls, left out of the ceiling checks."""
BAD_SKU = "24-UB02"
"""A Magento product that Acumatica does not have."""
FLOW = "orders"


@dataclass
class ChaosConfig:
    orders: int = 500
    bad_every: int = 50
    """Every n-th order names BAD_SKU (50: 2%)."""
    error_rate: float = 0.20
    throttle_rate: float = 0.10
    timeout_rate: float = 0.05
    timeout_s: float = 2.0
    """How long a timed-out request hangs before the sim answers 504."""
    retry_after_s: float = 1.0
    outage_s: float = 25.0
    outage_at: float = 0.4
    """The outage starts once this share of the good orders is in Acumatica."""
    per_minute: int = 300
    concurrent: int = 4
    drain_threads: int = 3
    """Drain threads besides the stack's own SQS poller (Lambda's concurrency)."""
    customers: int = 25
    seed: int = 20240607
    schedule_speedup: float = 5.0
    """Template schedules run this much faster (poll every 5 min -> 60 s, sweep hourly -> 12 min).

    Faster polls slow the run down: each poll re-enqueues every order in its look-back window
    that no worker has finished yet, so under a backlog the queue fills with duplicates, and
    moto's SQS pays for every message it holds on every send and receive."""
    max_run_s: float = 1800.0
    """Give up waiting for the queue to drain after this long (then it is a problem)."""

    def faults(self, seed_offset: int = 0) -> dict[str, Any]:
        return {
            "error_rate": self.error_rate,
            "throttle_rate": self.throttle_rate,
            "retry_after_s": self.retry_after_s,
            "timeout_rate": self.timeout_rate,
            "timeout_s": self.timeout_s,
            "max_concurrent": self.concurrent,
            "seed": self.seed + seed_offset,
        }


@dataclass
class ChaosReport:
    config: ChaosConfig
    orders: int = 0
    good: int = 0
    bad: int = 0
    deliveries: int = 0
    duplicate_deliveries: int = 0
    dropped_at_ingress: int = 0
    webhook_statuses: dict[str, int] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)
    connector_requests: int = 0
    outage_s: float = 0.0
    retries: dict[str, int] = field(default_factory=dict)
    max_per_window: int = 0
    peak_concurrency: int = 0
    sim_max_in_flight: int = 0
    drain_s: float = 0.0
    parked_messages: int = 0
    parked_bad: int = 0
    resynced: int = 0
    resync_counts: dict[str, int] = field(default_factory=dict)
    resync_exit: int | None = None
    resync_passes: int = 0
    total_s: float = 0.0
    problems: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        d = {k: v for k, v in vars(self).items() if k != "config"}
        d["config"] = vars(self.config)
        return d


# --------------------------------------------------------------------------- pure checks


def max_in_window(times: list[float], window_s: float = 60.0) -> tuple[int, float]:
    """The most of ``times`` inside any half-open span of ``window_s`` seconds, and where it starts."""
    ts = sorted(times)
    best, at = 0, 0.0
    for i, t in enumerate(ts):
        n = bisect.bisect_left(ts, t + window_s) - i
        if n > best:
            best, at = n, t
    return best, at


def peak_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one instant (an interval ending as another starts does not overlap)."""
    events = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals], key=lambda e: (e[0], e[1]))
    peak = now = 0
    for _, step in events:
        now += step
        peak = max(peak, now)
    return peak


# --------------------------------------------------------------------------- the run


@dataclass
class _Env:
    """What one run holds on to."""

    cfg: ChaosConfig
    stack: Any
    workdir: Path
    story: Story
    acumatica_url: str
    queue_url: str
    report: ChaosReport
    placed: list[mo.JSON] = field(default_factory=list)
    bad_ids: set[str] = field(default_factory=set)
    stop_drains: threading.Event = field(default_factory=threading.Event)
    drain_errors: list[str] = field(default_factory=list)
    say: Callable[[str], None] = print

    @property
    def ids(self) -> list[str]:
        return [str(o["entity_id"]) for o in self.placed]

    @property
    def good_ids(self) -> list[str]:
        return [i for i in self.ids if i not in self.bad_ids]

    def faults(self, body: dict[str, Any] | None) -> None:
        url = f"{self.acumatica_url}/_sim/faults"
        r = httpx.post(url, json=body, timeout=10) if body else httpx.delete(url, timeout=10)
        r.raise_for_status()

    def sim_log(self) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(f"{self.acumatica_url}/_sim/requests", timeout=60).json()
        return body

    def connector_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.sim_log()["requests"] if r.get("agent") != HARNESS_AGENT]

    def unbound(self, ids: list[str]) -> list[str]:
        from erpsync.state.bindings import Bindings

        return Bindings(os.environ["BINDINGS_TABLE"]).unbound("order", "magento", ids, "acumatica")

    def failed(self) -> list[Any]:
        from erpsync.runtime import operator

        return operator.list_failed(self.queue_url, FLOW)


@contextmanager
def _quiet() -> Iterator[None]:
    names = ("httpx", "httpcore", "erpsync", "sandbox", "uvicorn", "uvicorn.error", "botocore", "werkzeug")
    saved = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for n, level in saved.items():
            logging.getLogger(n).setLevel(level)


def run(cfg: ChaosConfig, workdir: Path, say: Callable[[str], None] = print) -> ChaosReport:
    """The whole chaos run on a fresh local stack under ``workdir``; the report (problems empty = pass)."""
    from cli.target import use_local
    from sandbox.local.stack import LocalStack

    started = time.monotonic()
    state_file = workdir / ".erpsync" / "local.json"
    report = ChaosReport(cfg)
    stack = LocalStack(
        state_file=state_file,
        schedule_seconds=None,
        schedule_speedup=cfg.schedule_speedup,
        webhook_secrets={"magento": "chaos-magento-secret", "acumatica": "chaos-acumatica-secret"},
        settings={
            "tax_id": "STORETAX",
            "rate_limits": {"acumatica": {"per_minute": cfg.per_minute, "concurrent": cfg.concurrent}},
            "retry_delay_cap_s": 2,
            "breaker_open_s": 2,
        },
        moto_process=True,
    )
    with _quiet(), stack:
        info = use_local(state_file)
        acumatica = AcumaticaUser(**info["acumatica"])
        acumatica.http.headers["User-Agent"] = HARNESS_AGENT
        story = Story(
            magento=MagentoAdmin(**info["magento"]),
            acumatica=acumatica,
            api_url=info["api_url"],
            webhook_secret=info["webhook_secrets"]["magento"],
        )
        env = _Env(cfg, stack, workdir, story, info["sims"]["acumatica"], queue_url(FLOW), report)
        env.say = say
        try:
            _chaos(env)
        finally:
            env.stop_drains.set()
            story.magento.close()
            story.acumatica.close()
    report.total_s = round(time.monotonic() - started, 1)
    return report


def _chaos(env: _Env) -> None:
    cfg, report = env.cfg, env.report
    customers = _seed(env)
    httpx.delete(f"{env.acumatica_url}/_sim/requests", timeout=10)
    env.faults(cfg.faults())
    drains = _start_drains(env, cfg.drain_threads)
    t0 = time.monotonic()
    env.say(f"placing {cfg.orders} orders under chaos...")
    _place_and_ring(env, customers)
    env.say(f"placed; {report.deliveries} webhook deliveries; waiting for the queue to drain")
    _wait_drained(env, t0)
    report.drain_s = round(time.monotonic() - t0, 1)
    report.sim_max_in_flight = int(env.sim_log().get("max_in_flight", 0))  # before this harness calls Acumatica
    env.say(f"drained in {report.drain_s:.0f}s")
    for t in drains:
        t.join(5)
    env.faults(None)
    _check_after_chaos(env)
    _resync(env)
    _check_after_resync(env)
    _ceilings(env)


def _seed(env: _Env) -> list[mo.JSON]:
    story = env.story
    bad = mo._simple(1901, BAD_SKU, "Impulse Duffle (not in Acumatica)", "74")
    story.catalog = [*mo.sample_catalog(), bad]
    good_catalog = [p for p in story.catalog if p["sku"] != BAD_SKU]
    saved, story.catalog = story.catalog, good_catalog
    story.seed_catalog()  # Magento and Acumatica
    story.catalog = saved
    story.magento.call("POST", "/products", json={"product": bad})  # Magento only
    return story.seed_customers(env.cfg.customers)


def _place_and_ring(env: _Env, customers: list[mo.JSON]) -> None:
    """Place the orders in chunks; after each chunk deliver every webhook twice, shuffled."""
    cfg, story, report = env.cfg, env.story, env.report
    rng = random.Random(cfg.seed)
    chunk = 25
    with ThreadPoolExecutor(4) as pool, httpx.Client(timeout=30) as http:
        for start in range(0, cfg.orders, chunk):
            saved_chunk = []
            for i in range(start, min(cfg.orders, start + chunk)):
                bad = (i + 1) % cfg.bad_every == 0
                _kind, cart, coupon = CARTS[i % len(CARTS)]
                if bad:
                    cart, coupon = [mo.CartLine("24-MB01", 1), mo.CartLine(BAD_SKU, 1)], None
                order = story.order_body(i, customers, cart, coupon)
                saved = story.magento.call("POST", "/orders", json={"entity": order})
                env.placed.append(saved)
                saved_chunk.append((i, saved))
                if bad:
                    env.bad_ids.add(str(saved["entity_id"]))
            deliveries = []
            for i, saved in saved_chunk:
                first = _adobe_event(saved)
                second = first if i % 2 else _cloud_event(saved, rng)
                deliveries += [first, second]
            rng.shuffle(deliveries)
            results = list(pool.map(lambda d: _deliver(env, http, d), deliveries))
            for status, dup in results:
                report.webhook_statuses[str(status)] = report.webhook_statuses.get(str(status), 0) + 1
                report.dropped_at_ingress += dup
    report.orders = len(env.placed)
    report.bad = len(env.bad_ids)
    report.good = report.orders - report.bad
    report.deliveries = sum(report.webhook_statuses.values())
    report.duplicate_deliveries = report.deliveries - report.orders


def _order_ref(saved: mo.JSON) -> dict[str, Any]:
    return {
        "entity_id": saved["entity_id"],
        "increment_id": saved["increment_id"],
        "updated_at": saved.get("updated_at"),
    }


def _adobe_event(saved: mo.JSON) -> bytes:
    return json.dumps({"eventName": "observer.sales_order_save_after", "data": {"order": _order_ref(saved)}}).encode()


def _cloud_event(saved: mo.JSON, rng: random.Random) -> bytes:
    body = {
        "specversion": "1.0",
        "id": f"{rng.getrandbits(64):016x}",
        "source": "urn:magento",
        "type": "com.adobe.commerce.observer.sales_order_save_after",
        "datacontenttype": "application/json",
        "data": {"value": _order_ref(saved)},
    }
    return json.dumps(body).encode()


def _deliver(env: _Env, http: httpx.Client, body: bytes) -> tuple[int, int]:
    headers = {"Content-Type": "application/json", **sign(env.story.webhook_secret, body)}
    for _ in range(3):
        try:
            r = http.post(f"{env.story.api_url}/webhooks/magento", content=body, headers=headers)
        except httpx.TransportError:
            continue
        dup = int(r.json().get("duplicates", 0)) if r.status_code == 202 else 0
        return r.status_code, dup
    return 0, 0


def _start_drains(env: _Env, n: int) -> list[threading.Thread]:
    """Extra workers on the orders queue, each with its own runtime (one Lambda container each)."""
    from erpsync.runtime.lambda_app import build

    def work() -> None:
        rt = build(FLOW)
        while not env.stop_drains.is_set():
            try:
                outcomes = rt.drain(max_messages=20)
            except Exception as exc:  # a worker crash: SQS redelivers after the visibility timeout
                env.drain_errors.append(f"{type(exc).__name__}: {exc}")
                env.stop_drains.wait(1.0)
                continue
            if not outcomes:
                env.stop_drains.wait(0.5)

    threads = [threading.Thread(target=work, name=f"chaos-drain-{i}", daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    return threads


def _wait_drained(env: _Env, t0: float) -> None:
    """Until every good order is bound and every bad one parked; the outage happens on the way."""
    cfg, report = env.cfg, env.report
    outage_from: float | None = None
    outage_done = cfg.outage_s <= 0
    good = env.good_ids
    deadline = t0 + cfg.max_run_s
    last_say = 0.0
    while True:
        missing = env.unbound(good)
        done_share = 1 - len(missing) / max(1, len(good))
        now = time.monotonic()
        if not outage_done and outage_from is None and done_share >= cfg.outage_at:
            env.faults({"outage": True, "seed": cfg.seed})
            outage_from = now
            env.say(f"outage: Acumatica down ({done_share:.0%} of good orders in)")
        if outage_from is not None and not outage_done and now - outage_from >= cfg.outage_s:
            env.faults(cfg.faults(seed_offset=1))
            report.outage_s = round(now - outage_from, 1)
            outage_done = True
            env.say(f"outage over after {report.outage_s:.0f}s")
        if not missing and outage_done:
            parked = {r.id for r in env.failed()}
            if env.bad_ids <= parked:
                return
        if now > deadline:
            env.report.problems.append(
                f"not drained after {cfg.max_run_s:.0f}s: {len(missing)} good order(s) not in Acumatica"
            )
            return
        if now - last_say > 15:
            env.say(f"  {now - t0:5.0f}s: {len(good) - len(missing)}/{len(good)} good orders in Acumatica")
            last_say = now
        time.sleep(1.0)


def _acumatica_orders(env: _Env, number: str) -> list[mo.JSON]:
    flt = quote(f"CustomerOrder eq '{number}'")
    return list(env.story.acumatica.get("SalesOrder", f"$filter={flt}&$select=OrderNbr,CustomerOrder,OrderTotal"))


def _exactly_once(env: _Env, ids: list[str], when: str) -> None:
    by_id = {str(o["entity_id"]): o for o in env.placed}
    for i in ids:
        o = by_id[i]
        found = _acumatica_orders(env, str(o["increment_id"]))
        if len(found) != 1:
            env.report.problems.append(f"{when}: order {o['increment_id']} is in Acumatica {len(found)} times")
            continue
        total = Decimal(str(v(found[0].get("OrderTotal")) or 0))
        if total != Decimal(str(o["grand_total"])):
            env.report.problems.append(
                f"{when}: order {o['increment_id']} has total {total} in Acumatica, {o['grand_total']} in Magento"
            )


def _check_after_chaos(env: _Env) -> None:
    report = env.report
    _exactly_once(env, env.good_ids, "after the chaos")
    for i in env.bad_ids:
        inc = next(str(o["increment_id"]) for o in env.placed if str(o["entity_id"]) == i)
        if _acumatica_orders(env, inc):
            report.problems.append(f"bad order {inc} reached Acumatica")
    rows = env.failed()
    report.parked_messages = len(rows)
    parked = {r.id: r for r in rows}
    report.parked_bad = len(env.bad_ids & set(parked))
    for i in sorted(env.bad_ids):
        r = parked.get(i)
        if r is None:
            report.problems.append(f"bad order {i} is not in the failed queue")
        elif r.error_type != "unknown_item" or BAD_SKU not in r.reason:
            report.problems.append(f"bad order {i} parked as {r.error_type}: {r.reason[:120]}")
    wrongly = sorted(set(parked) - env.bad_ids)
    if wrongly:
        report.problems.append(f"good orders in the failed queue: {wrongly[:10]} ({len(wrongly)})")
    if env.drain_errors:
        report.problems.append(f"worker crashes: {Counter(env.drain_errors).most_common(3)}")


def _resync(env: _Env) -> None:
    """Create the missing stock item, then `erpsync resync orders --failed` under the same faults."""
    report = env.report
    env.story.acumatica.put(
        "StockItem",
        {
            "InventoryID": {"value": BAD_SKU},
            "Description": {"value": "Impulse Duffle"},
            "ItemClass": {"value": "STOCKITEM"},
            "DefaultPrice": {"value": 74},
        },
    )
    env.faults(env.cfg.faults(seed_offset=2))
    bad = sorted(env.bad_ids)
    for _ in range(3):  # a worker that picked a bad order up before the fix may park it once more
        _resync_cli(env)
        # records that met a fault went back on the queue: the workers finish them
        deadline = time.monotonic() + 120
        while env.unbound(bad) and time.monotonic() < deadline:
            time.sleep(1.0)
        if not env.failed():
            break
    missing = env.unbound(bad)
    if missing:
        report.problems.append(f"after resync: {len(missing)} bad order(s) still not in Acumatica")
    report.resynced = len(bad) - len(missing)
    env.faults(None)


def _resync_cli(env: _Env) -> None:
    """`erpsync resync orders --failed`, as an operator runs it (the state file under the workdir)."""
    report = env.report
    cmd = [sys.executable, "-m", "cli", "resync", "orders", "--failed"]
    res = subprocess.run(cmd, cwd=env.workdir, capture_output=True, text=True, timeout=600, check=False)  # noqa: S603
    report.resync_passes += 1
    report.resync_exit = res.returncode if report.resync_exit in (None, 0) else report.resync_exit
    for line in res.stdout.splitlines():
        if line.startswith("orders:"):  # "orders: skipped: 8, synced: 3"
            for part in line.split(":", 1)[1].split(","):
                name, _, count = part.strip().partition(": ")
                if count.strip().isdigit():
                    report.resync_counts[name] = report.resync_counts.get(name, 0) + int(count)
    if res.returncode not in (0, 1):
        report.problems.append(f"resync failed to run (exit {res.returncode}): {res.stderr[-500:]}")


def _check_after_resync(env: _Env) -> None:
    _exactly_once(env, env.ids, "after resync")
    left = env.failed()
    if left:
        env.report.problems.append(f"failed queue not empty after resync: {[r.id for r in left][:10]}")


def _ceilings(env: _Env) -> None:
    """From the sim's own log: the ERP never saw more than the ceilings (this harness's calls aside)."""
    from erpsync.state.synclog import SyncLog

    cfg, report = env.cfg, env.report
    log_body = env.sim_log()
    rows = [r for r in log_body["requests"] if r.get("agent") != HARNESS_AGENT]
    report.connector_requests = len(rows)
    report.faults = dict(Counter(str(r["fault"]) for r in rows if r.get("fault")))
    report.max_per_window, _ = max_in_window([float(r["received_at"]) for r in rows])
    report.peak_concurrency = peak_overlap([(float(r["received_at"]), float(r["at"])) for r in rows])
    if report.max_per_window > cfg.per_minute:
        report.problems.append(f"{report.max_per_window} requests in 60 s, ceiling {cfg.per_minute}")
    if report.peak_concurrency > cfg.concurrent:
        report.problems.append(f"{report.peak_concurrency} requests at once, ceiling {cfg.concurrent}")
    if report.sim_max_in_flight > cfg.concurrent:
        report.problems.append(f"the sim saw {report.sim_max_in_flight} requests in flight, ceiling {cfg.concurrent}")
    if report.faults.get("concurrency"):
        report.problems.append(f"the sim refused {report.faults['concurrency']} request(s) over max_concurrent")
    retrying = SyncLog(os.environ["SYNC_LOG_TABLE"]).by_outcome("retrying", limit=1_000_000)
    report.retries = dict(Counter(str(r.get("error_type") or "?") for r in retrying).most_common())
