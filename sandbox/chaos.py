"""The chaos run: orders, customers, shipments, invoices, payments and credit memos through the
local stack while both systems misbehave, then the proof.

On a local stack with its pollers and schedules running (the orders flow on several containers at
once, as SQS ``MaximumConcurrency`` lets Lambda run it), the harness places orders in Magento,
creates and edits Magento accounts and Acumatica customers, and later ships and invoices a share of
the orders in Acumatica, while:

- the Acumatica sim fails a share of requests with 500, throttles some with 429 + Retry-After,
  hangs some until they time out (504) and goes fully down for a stretch;
- both sims lose the answer to a share of the writes after applying them (``lost_response_rate``):
  the ERP's sales orders and customers, the store's accounts, shipments and invoices, so every
  flow's writes meet it; the mode ("504" or a dropped connection) changes half-way on each sim;
- every order and account webhook is delivered twice, shuffled, and the schedules poll as well;
- a few orders name a SKU that Acumatica does not have.

Then it checks what issues 3 and 8 ask for:

- every good order is in Acumatica exactly once, with the store's total; every bad order waits on
  the failures desk as ``unknown_item`` naming the SKU (one item, failed a few times at most), and
  no good order is there; once the stock item exists, ``erpsync resync orders --failed`` (the CLI)
  brings them in exactly once and resolves their items;
- every Magento account is in Acumatica exactly once (by email) and every Acumatica customer that
  should go (not one made for a guest checkout) is in Magento exactly once, with no other customer
  on either side; each pair's fields are equal on both sides and equal to the last edit made;
- every shipped order has exactly one shipment (with its tracking number) in Magento and every
  invoiced order exactly one invoice;
- payments and refunds under the same faults: each order captured in Magento (by the invoice the
  invoices flow made) has exactly one released Acumatica payment of the paid amount, and each order
  not captured none; each credit memo the harness made in Magento (a partial refund, shipping
  included) exactly one Acumatica credit memo of its amount, paid out by exactly one refund;
- the books match: ``erpsync reconcile`` finds no difference, and after a clerk changes an order's
  total in Acumatica it names that order with both totals;
- no ping-pong: after everything settled, two further cycles of both customer flows (their poll,
  and a sync of every customer on each side through the functions) write nothing to either sim;
- no function invocation ran past its timeout (the local Lambda runtime records every one);
- with a rate limit in the settings, the connector never sent Acumatica more requests in any 60
  seconds than ``per_minute``, nor more at once than ``concurrent`` (from the sim's request log);
- with ``measure_drain``: once the faults stop, the backlog drains at no less than ``min_drain_ratio``
  of the rate the ERP's ceiling allows (see :func:`drain_figures`).

``run(ChaosConfig(...), workdir)`` returns a :class:`ChaosReport` whose ``problems`` is empty
when every guarantee held. Used by ``bench/chaos.py`` and ``tests/e2e/test_chaos.py``.
"""

from __future__ import annotations

import bisect
import functools
import json
import logging
import math
import os
import random
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from erpsync.runtime.queues import queue_url
from erpsync.systems.magento.webhooks import sign
from sandbox.sims import magento_orders as mo
from sandbox.story import CARTS, ENDPOINT, AcumaticaUser, MagentoAdmin, Story, v

log = logging.getLogger("erpsync.chaos")

HARNESS_AGENT = "erpsync-chaos-harness"
"""User-Agent of this harness's own calls to either sim, left out of every connector figure."""
BAD_SKU = "24-UB02"
"""A Magento product that Acumatica does not have."""
FLOW = "orders"
CUSTOMER_FLOWS = ("customers", "erp-customers")
DOCUMENT_FLOWS = ("shipments", "invoices")
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SIGN_IN = ("/auth/", "/login", "/logout", "/token")


@dataclass
class ChaosConfig:
    orders: int = 500
    bad_every: int = 50
    """Every n-th order names BAD_SKU (50: 2%)."""
    error_rate: float = 0.20
    throttle_rate: float = 0.10
    timeout_rate: float = 0.05
    timeout_s: float = 2.0
    """How long a timed-out request hangs before the sim answers 504 (the sims' default is 30 s)."""
    retry_after_s: float = 1.0
    lost_response_rate: float = 0.05
    """Share of the writes (both sims) applied whose answer is then lost."""
    outage_s: float = 25.0
    outage_at: float = 0.4
    """The outage starts once this share of the good orders is in Acumatica."""
    tuned: bool = True
    """Tuned settings: ``rate_limits.acumatica`` = per_minute/concurrent, ``retry_delay_cap_s`` 2,
    ``breaker_open_s`` 2. False: the product's defaults (only the tax id mapping is set)."""
    per_minute: int = 300
    concurrent: int = 4
    """The ERP's concurrency ceiling (the sim's ``max_concurrent``; tuned, the connector's too)."""
    latency_ms: float = 0.0
    """Added by the Acumatica sim to every request (an ERP's own time per request)."""
    erp_seats: int | None = None
    """The Acumatica sim's licence (``max_concurrent``: 429 beyond). None: tuned, ``concurrent`` + 1
    (one seat for the harness's own clerk, the connector's use is checked from the log); with the
    default settings, no limit."""
    containers: int | None = None
    """Orders batches run at once (SQS MaximumConcurrency); None: the template's FlowConcurrency."""
    flow_timeout: int | None = None
    """The template's FlowTimeout parameter (None: its default)."""
    customers: int = 25
    """Magento accounts made before the chaos (the orders are theirs, every fifth a guest's)."""
    new_accounts: int = 20
    """Magento accounts created during the chaos."""
    account_edits: int = 8
    """Of the first accounts, this many edited in Magento during the chaos."""
    erp_customers: int = 10
    """Acumatica customers created during the chaos (half of them edited there later)."""
    erp_edits: int = 6
    """Of the first accounts, this many edited in Acumatica once they are there (not those edited in Magento)."""
    ship_every: int = 3
    """Every n-th good order is shipped in Acumatica after the orders drained; 0: none."""
    invoice_every: int = 2
    """Every n-th shipped order is invoiced (and the invoice released) too."""
    refund_every: int = 2
    """Every n-th invoiced order is then refunded in part in Magento (one unit and the shipping); 0: none."""
    measure_drain: bool = False
    """Stop every fault when the outage ends and measure how fast the backlog drains."""
    outage_after_s: float | None = None
    """Start the outage after this long even if fewer than ``outage_at`` of the orders are in."""
    drain_max_s: float = 600.0
    """Measure the drain for at most this long; a backlog still there then is a problem, and the
    tuned rate limits are set (as an operator would) so the rest of the run can finish."""
    min_drain_ratio: float = 0.8
    require_every_flow_lost: bool = False
    """A problem unless every flow's writes met at least one lost response. Off by default: at 5%, a
    flow with a few dozen writes meets none in a few runs out of a hundred (the report says which)."""
    seed: int = 20240607
    schedule_speedup: float = 5.0
    """Template schedules run this much faster (poll every 5 min -> 60 s, sweep hourly -> 12 min).

    Faster polls slow a large run down: each poll re-enqueues every order in its look-back window
    that no worker has finished yet, so under a backlog the queue fills with duplicates, and
    moto's SQS pays for every message it holds on every send and receive."""
    max_run_s: float = 1800.0
    """Give up waiting for a phase after this long (then it is a problem)."""

    @property
    def label(self) -> str:
        return "tuned settings" if self.tuned else "default settings"

    def settings(self) -> dict[str, Any]:
        base: dict[str, Any] = {"tax_id": "STORETAX"}
        if self.tuned:
            base.update(self.tuned_settings())
        return base

    def parameters(self) -> dict[str, str]:
        return {"FlowTimeout": str(self.flow_timeout)} if self.flow_timeout else {}

    def tuned_settings(self) -> dict[str, Any]:
        return {
            "rate_limits": {"acumatica": {"per_minute": self.per_minute, "concurrent": self.concurrent}},
            "retry_delay_cap_s": 2,
            "breaker_open_s": 2,
        }

    def sim_max_concurrent(self) -> int | None:
        """The sim's licence limit (see ``erp_seats``)."""
        if self.erp_seats is not None:
            return self.erp_seats
        return self.concurrent + 1 if self.tuned else None

    def erp_normal(self) -> dict[str, Any]:
        """How Acumatica behaves when nothing is wrong: its latency and licence limit."""
        return {"latency_ms": self.latency_ms, "max_concurrent": self.sim_max_concurrent(), "seed": self.seed}

    def faults(self, seed_offset: int = 0, lost_mode: str = "504") -> dict[str, Any]:
        """Acumatica's fault mix."""
        return {
            **self.erp_normal(),
            "error_rate": self.error_rate,
            "throttle_rate": self.throttle_rate,
            "retry_after_s": self.retry_after_s,
            "timeout_rate": self.timeout_rate,
            "timeout_s": self.timeout_s,
            "lost_response_rate": self.lost_response_rate,
            "lost_response_mode": lost_mode,
            "seed": self.seed + seed_offset,
        }

    def store_faults(self, seed_offset: int = 0, lost_mode: str = "drop") -> dict[str, Any]:
        """Magento's: lost answers to writes only."""
        return {
            "lost_response_rate": self.lost_response_rate,
            "lost_response_mode": lost_mode,
            "seed": self.seed + 100 + seed_offset,
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
    store_faults: dict[str, int] = field(default_factory=dict)
    lost_by_flow: dict[str, dict[str, int]] = field(default_factory=dict)
    """Flow -> lost-response mode -> writes whose answer was lost."""
    writes_by_flow: dict[str, int] = field(default_factory=dict)
    connector_requests: int = 0
    store_requests: int = 0
    outage_s: float = 0.0
    retries: dict[str, int] = field(default_factory=dict)
    max_per_window: int = 0
    peak_concurrency: int = 0
    sim_max_in_flight: int = 0
    drain_s: float = 0.0
    parked_messages: int = 0
    failed_rows_per_bad: int = 0
    """The most failed sync-log rows one bad order got before its resync (one per duplicate notice
    already in flight when it first failed; then it is held on the desk)."""
    parked_bad: int = 0
    resynced: int = 0
    resync_counts: dict[str, int] = field(default_factory=dict)
    resync_exit: int | None = None
    resync_passes: int = 0
    customers: dict[str, int] = field(default_factory=dict)
    """What the harness did to customers (kind -> count) and what the checks found."""
    customers_settle_s: float = 0.0
    shipped: int = 0
    invoiced: int = 0
    documents_s: float = 0.0
    paid: int = 0
    """Orders the invoices flow captured in Magento, each to be paid once in Acumatica."""
    refunds: int = 0
    """Credit memos (partial refunds) made in Magento, each to land once in Acumatica."""
    money_s: float = 0.0
    reconciled: str = ""
    """``erpsync reconcile``'s summary after the chaos (the books should match)."""
    hand_change: dict[str, str] = field(default_factory=dict)
    """The order total a clerk changed in Acumatica afterwards, and what ``erpsync reconcile`` named."""
    quiet_cycles: int = 0
    quiet_writes: int = 0
    quiet_outcomes: dict[str, int] = field(default_factory=dict)
    invocations: int = 0
    invocation_max: dict[str, tuple[float, float, int]] = field(default_factory=dict)
    """Function -> (longest run s, timeout s, invocations)."""
    overruns: list[str] = field(default_factory=list)
    containers: dict[str, int] = field(default_factory=dict)
    drain: dict[str, Any] = field(default_factory=dict)
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


def is_write(row: dict[str, Any]) -> bool:
    """A request that changes something (sign-in and sign-out aside)."""
    return str(row.get("method")) in WRITES and not any(s in str(row.get("path")) for s in SIGN_IN)


def flow_of_write(sim: str, row: dict[str, Any]) -> str:
    """Which flow a connector write to ``sim`` belongs to (by endpoint)."""
    path = str(row.get("path"))
    if sim == "acumatica":
        if path.endswith("/SalesOrder"):
            return "orders"
        if path.endswith("/Customer"):
            return "customers"
        if "/Payment" in path:  # payments, and the refunds that pay credit memos out
            return "payments"
        if "/SalesInvoice" in path:
            return "credit-memos"
        if path.endswith("/CancelSalesOrder"):
            return "cancellations"
    else:
        if path.endswith("/ship"):
            return "shipments"
        if path.endswith("/invoice"):
            return "invoices"
        if "/V1/customers" in path:
            return "erp-customers"
    return "other"


def drain_figures(
    done_at: list[float],
    stopped_at: float,
    useful_requests: list[float],
    *,
    backlog: int,
    ended_at: float,
    concurrent: int,
    latency_s: float,
    per_minute: int | None,
) -> dict[str, Any]:
    """How fast a backlog drained against what the ERP's ceiling allows.

    ``done_at``: when each order of the backlog was written to the ERP (epoch s; the applied sales
    order creates); ``stopped_at``: when the faults stopped; ``ended_at``: when the drain (or its
    measurement) ended; ``useful_requests``: when the ERP answered a connector request with success
    (every request the drain needed: look-ups, customers, sales orders, the other flows' reads;
    refusals and faults are not useful work).

    The ceiling in requests per minute is ``per_minute`` when the settings set one, else what the
    ERP's licence lets through: ``concurrent`` requests at once, each taking ``latency_s`` (the
    ERP's own time per request), i.e. ``concurrent * 60 / latency_s`` (the smaller of the two when
    both are known). The orders per minute the ceiling allows = that / the useful requests per
    order the drain needed. The rate is taken between the moments 10% and 90% of the backlog were
    in (the first orders wait out the delay their last failure gave them; the last ones are a tail
    of stragglers); when less than 90% came in, over the whole measurement. The whole drain is
    reported beside it.
    """
    times = sorted(t for t in done_at if stopped_at <= t <= ended_at)
    n = len(times)
    out: dict[str, Any] = {"backlog": backlog, "arrived": n}
    caps = []
    if per_minute:
        caps.append(float(per_minute))
    if latency_s > 0:
        caps.append(concurrent * 60.0 / latency_s)
    if backlog < 10 or not caps:
        return out
    ceiling_req = min(caps)

    def rate(start: float, end: float, orders: int) -> tuple[float, float, float]:
        span = max(end - start, 1e-6)
        useful = sum(1 for t in useful_requests if start <= t <= end)
        per_order = useful / max(1, orders)
        orders_rate = orders / span * 60.0
        return orders_rate, per_order, orders_rate / (ceiling_req / max(per_order, 1e-6))

    if n >= math.ceil(0.9 * backlog):
        i10, i90 = math.floor(0.1 * (backlog - 1)), min(n - 1, math.ceil(0.9 * (backlog - 1)))
        start, end, orders = times[i10], times[i90], i90 - i10
        out["window"] = "from 10% to 90% of the backlog in"
    else:
        start, end, orders = stopped_at, ended_at, n
        out["window"] = "the whole measurement (less than 90% of the backlog came in)"
    orders_rate, per_order, ratio = rate(start, end, orders)
    whole_end = times[-1] if n >= backlog else ended_at
    whole_rate, whole_per_order, whole_ratio = rate(stopped_at, whole_end, n)
    out.update(
        ceiling_requests_per_min=round(ceiling_req, 1),
        requests_per_order=round(per_order, 2),
        ceiling_orders_per_min=round(ceiling_req / max(per_order, 1e-6), 1),
        orders_per_min=round(orders_rate, 1),
        ratio=round(ratio, 3),
        window_s=round(end - start, 1),
        whole_s=round(whole_end - stopped_at, 1),
        whole_orders_per_min=round(whole_rate, 1),
        whole_requests_per_order=round(whole_per_order, 2),
        whole_ratio=round(whole_ratio, 3),
    )
    return out


# --------------------------------------------------------------------------- the run


@dataclass
class Expected:
    """What one customer should look like on both sides once everything settled."""

    email: str
    first: str
    last: str
    phone: str
    street: str
    city: str
    postcode: str
    country: str = "US"
    region: str = "MI"
    magento_id: str | None = None
    erp_id: str | None = None
    in_store: bool = True

    def fields(self) -> dict[str, str]:
        return {
            "first": self.first,
            "last": self.last,
            "phone": self.phone,
            "street": self.street,
            "city": self.city,
            "postcode": self.postcode,
            "country": self.country,
        }


@dataclass
class _Env:
    """What one run holds on to."""

    cfg: ChaosConfig
    stack: Any
    workdir: Path
    story: Story
    acumatica_url: str
    magento_url: str
    queue_url: str
    report: ChaosReport
    placed: list[mo.JSON] = field(default_factory=list)
    bad_ids: set[str] = field(default_factory=set)
    people: list[mo.JSON] = field(default_factory=list)
    expected: dict[str, Expected] = field(default_factory=dict)
    guests: set[str] = field(default_factory=set)
    twin_edits: list[int] = field(default_factory=list)
    """Indexes of first accounts still to edit in Acumatica (once they are there)."""
    erp_made: list[str] = field(default_factory=list)
    pollers: list[Any] = field(default_factory=list)
    lost_mode: dict[str, str] = field(default_factory=lambda: {"acumatica": "504", "magento": "drop"})
    faults_on: bool = False
    outage_on: bool = False
    stopped_at: float | None = None
    """Epoch time the faults stopped for the drain measurement."""
    drained_at: float | None = None
    """Epoch time every good order was in and every bad one parked (or the drain measurement ended)."""
    remedied: bool = False
    backlog: list[str] = field(default_factory=list)
    shipped: dict[str, str] = field(default_factory=dict)
    """Magento entity id -> tracking number of every shipped order."""
    invoiced: set[str] = field(default_factory=set)
    memos: dict[str, str] = field(default_factory=dict)
    """Magento credit memo id -> the order's entity id, of every refund the harness made."""
    seats: list[tuple[float, float]] = field(default_factory=list)
    """(epoch time, the connector's learned Acumatica seat count) once a second while the orders drain."""
    say: Callable[[str], None] = print

    @property
    def ids(self) -> list[str]:
        return [str(o["entity_id"]) for o in self.placed]

    @property
    def good_ids(self) -> list[str]:
        return [i for i in self.ids if i not in self.bad_ids]

    # -- the sims' control API (never faulted)
    def set_faults(self, sim: str, body: dict[str, Any] | None) -> None:
        url = f"{self.magento_url if sim == 'magento' else self.acumatica_url}/_sim/faults"
        r = httpx.post(url, json=body, timeout=10) if body else httpx.delete(url, timeout=10)
        r.raise_for_status()

    def chaos(self, seed_offset: int = 0) -> None:
        """Both sims misbehave (the current lost-response mode of each)."""
        self.set_faults("acumatica", self.cfg.faults(seed_offset, self.lost_mode["acumatica"]))
        self.set_faults("magento", self.cfg.store_faults(seed_offset, self.lost_mode["magento"]))
        self.faults_on = True

    def calm(self) -> None:
        """No faults: Acumatica keeps only its latency and licence limit."""
        self.set_faults("acumatica", self.cfg.erp_normal())
        self.set_faults("magento", None)
        self.faults_on = False

    def sim_log(self, sim: str = "acumatica") -> dict[str, Any]:
        url = self.magento_url if sim == "magento" else self.acumatica_url
        body: dict[str, Any] = httpx.get(f"{url}/_sim/requests", timeout=120).json()
        return body

    def connector_rows(self, sim: str = "acumatica") -> list[dict[str, Any]]:
        return [r for r in self.sim_log(sim)["requests"] if r.get("agent") != HARNESS_AGENT]

    def unbound(self, ids: list[str], entity: str = "order") -> list[str]:
        from erpsync.state.bindings import Bindings

        return Bindings(os.environ["BINDINGS_TABLE"]).unbound(entity, "magento", ids, "acumatica")

    def binding(self, entity: str, system: str, id: str, other: str) -> str | None:
        from erpsync.state.bindings import Bindings

        return Bindings(os.environ["BINDINGS_TABLE"]).find(entity, system, id, other)

    def failed(self, flow: str = FLOW) -> list[Any]:
        """The flow's open failures on the desk (its failed queue folded in)."""
        from erpsync.runtime import operator
        from erpsync.state.failures import FailuresDesk

        return operator.list_failed(queue_url(flow), flow, FailuresDesk(os.environ["BINDINGS_TABLE"]))


@contextmanager
def _quiet() -> Iterator[None]:
    names = ("httpx", "httpcore", "erpsync", "sandbox", "uvicorn", "uvicorn.error", "botocore", "werkzeug", "urllib3")
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
        parameters=cfg.parameters(),
        schedule_seconds=None,
        schedule_speedup=cfg.schedule_speedup,
        webhook_secrets={"magento": "chaos-magento-secret", "acumatica": "chaos-acumatica-secret"},
        settings=cfg.settings(),
        moto_process=True,
    )
    with _quiet(), stack:
        info = use_local(state_file)
        acumatica = AcumaticaUser(**info["acumatica"])
        acumatica.http.headers["User-Agent"] = HARNESS_AGENT
        acumatica.http.timeout = httpx.Timeout(cfg.timeout_s + 30)  # the clerk waits out a hang
        magento = MagentoAdmin(**info["magento"])
        magento.http.headers["User-Agent"] = HARNESS_AGENT
        story = Story(
            magento=magento,
            acumatica=acumatica,
            api_url=info["api_url"],
            webhook_secret=info["webhook_secrets"]["magento"],
        )
        env = _Env(
            cfg, stack, workdir, story, info["sims"]["acumatica"], info["sims"]["magento"], queue_url(FLOW), report
        )
        env.say = say
        try:
            _chaos(env)
        except Exception as exc:  # the harness itself failed: a problem, with where
            import traceback

            where = traceback.extract_tb(exc.__traceback__)[-1]
            report.problems.append(f"the run stopped: {type(exc).__name__}: {exc} ({where.name}:{where.lineno})")
            for figures in (_figures, _invocations):  # what can still be read from the logs
                try:
                    figures(env)
                except Exception as more:  # the first failure is the one reported
                    log.debug("no %s after the stop: %s", figures.__name__, more)
        finally:
            for poller in env.pollers:
                poller.signal_stop()
            for poller in env.pollers:
                poller.stop()
            story.magento.close()
            story.acumatica.close()
    report.total_s = round(time.monotonic() - started, 1)
    return report


def _chaos(env: _Env) -> None:
    cfg, report = env.cfg, env.report
    _seed(env)
    for sim in ("acumatica", "magento"):
        httpx.delete(f"{env.acumatica_url if sim == 'acumatica' else env.magento_url}/_sim/requests", timeout=10)
    env.chaos()
    _start_containers(env)
    t0 = time.monotonic()
    env.say(f"[{cfg.label}] placing {cfg.orders} orders and changing customers under chaos...")
    _place_and_ring(env)
    env.say(f"placed; {report.deliveries} webhook deliveries; waiting for the queue to drain")
    _wait_drained(env, t0)
    report.drain_s = round(time.monotonic() - t0, 1)
    report.sim_max_in_flight = int(env.sim_log().get("max_in_flight", 0))
    env.say(f"orders drained in {report.drain_s:.0f}s")
    env.calm()
    _check_orders(env, "after the chaos")
    _check_parked(env)
    _resync(env)
    _check_orders(env, "after resync")
    left = env.failed()
    if left:
        report.problems.append(f"orders still open on the failures desk after resync: {[r.id for r in left][:10]}")
    _documents(env)
    _money(env)
    _settle_customers(env)
    _check_customers(env)
    _check_documents(env)
    _figures(env)  # from the sims' logs, before the quiet cycles clear them
    _quiet_cycles(env)
    _check_money(env)  # after the quiet cycles' polls of every flow: still one of each
    _reconcile(env)
    _invocations(env)


# --------------------------------------------------------------------------- harness calls


def _store_write(env: _Env, method: str, path: str, body: Any, recover: Callable[[], Any] | None = None) -> Any:
    """One write to Magento as a shop user would make it, sure to land once: after a lost or refused
    answer ``recover`` looks for what the first attempt may have saved."""
    http = env.story.magento.http
    last = ""
    for attempt in range(20):
        try:
            r = http.request(method, path, json=body)
            if r.status_code < 300:
                return r.json() if r.content else None
            last = f"{r.status_code} {r.text[:200]}"
        except httpx.TransportError as exc:
            last = f"{type(exc).__name__}: {exc}"
        if recover is not None:
            found = recover()
            if found:
                return found
        time.sleep(min(1.0, 0.1 * (attempt + 1)))
    raise RuntimeError(f"Magento {method} {path} never landed: {last}")


def _erp_put(env: _Env, entity: str, record: dict[str, Any]) -> None:
    """An upsert in Acumatica by its key, as a clerk makes it: tried again until it lands."""
    erp = env.story.acumatica
    last = ""
    for attempt in range(200):
        try:
            r = erp.request("PUT", f"/{ENDPOINT}/{entity}", json=record)
            if r.status_code < 300:
                return
            last = f"{r.status_code} {r.text[:200]}"
            if r.status_code in (400, 404, 412, 422):
                break
        except (httpx.TransportError, RuntimeError) as exc:  # RuntimeError: a sign-in that met a fault
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(min(2.0, 0.2 * (attempt + 1)))
    raise RuntimeError(f"Acumatica PUT {entity} never landed: {last}")


def _erp_get(env: _Env, entity: str, query: str = "") -> Any:
    """A read from Acumatica, tried again through faults."""
    erp = env.story.acumatica
    last = ""
    for attempt in range(200):
        try:
            r = erp.request("GET", f"/{ENDPOINT}/{entity}{'?' + query if query else ''}")
            if r.status_code < 300:
                return r.json()
            last = f"{r.status_code} {r.text[:200]}"
            if r.status_code in (400, 404):
                break
        except (httpx.TransportError, RuntimeError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(min(2.0, 0.2 * (attempt + 1)))
    raise RuntimeError(f"Acumatica GET {entity} failed: {last}")


# --------------------------------------------------------------------------- seed and containers


def _seed(env: _Env) -> None:
    story, cfg = env.story, env.cfg
    bad = mo._simple(1901, BAD_SKU, "Impulse Duffle (not in Acumatica)", "74")
    story.catalog = [*mo.sample_catalog(), bad]
    good_catalog = [p for p in story.catalog if p["sku"] != BAD_SKU]
    saved, story.catalog = story.catalog, good_catalog
    story.seed_catalog()  # Magento and Acumatica
    story.catalog = saved
    story.magento.call("POST", "/products", json={"product": bad})  # Magento only
    env.people = story.seed_customers(cfg.customers)
    for p in env.people:
        addr = p["addresses"][0]
        env.expected[p["email"]] = Expected(
            email=p["email"],
            first=p["firstname"],
            last=p["lastname"],
            phone=addr["telephone"],
            street=addr["street"][0],
            city=addr["city"],
            postcode=addr["postcode"],
            magento_id=str(p["id"]),
        )
    env.twin_edits = [i for i in range(cfg.customers) if i % 3 == 1][: cfg.erp_edits]


def _start_containers(env: _Env) -> None:
    """More batches of the orders flow at once: as many as SQS MaximumConcurrency lets Lambda run."""
    from sandbox.local.sqs_poller import SqsPoller

    stack = env.stack
    fn = stack.function(FLOW)
    base = stack.poller(FLOW)
    wanted = env.cfg.containers or base.event.maximum_concurrency or 1
    for _ in range(max(0, wanted - 1)):
        poller = SqsPoller(
            fn,
            base.event,
            base.queue,
            stack.aws_endpoint,
            dlq=base.dlq,
            region=stack.region,
            wait_time_s=base.wait_time_s,
        )
        poller.start()
        env.pollers.append(poller)
    env.report.containers["orders pollers"] = wanted


# --------------------------------------------------------------------------- the chaos


def _place_and_ring(env: _Env) -> None:
    """Place the orders in chunks; with each chunk some customer changes on both sides; after each
    chunk deliver every webhook twice, shuffled."""
    cfg, story, report = env.cfg, env.story, env.report
    rng = random.Random(cfg.seed)
    chunk = 25
    chunks = max(1, math.ceil(cfg.orders / chunk))
    actions = _customer_actions(env, chunks)
    with ThreadPoolExecutor(4) as pool, httpx.Client(timeout=30) as http:
        for k, start in enumerate(range(0, cfg.orders, chunk)):
            saved_chunk = []
            for i in range(start, min(cfg.orders, start + chunk)):
                bad = (i + 1) % cfg.bad_every == 0
                _kind, cart, coupon = CARTS[i % len(CARTS)]
                if bad:
                    cart, coupon = [mo.CartLine("24-MB01", 1), mo.CartLine(BAD_SKU, 1)], None
                number = f"{700000001 + i:09d}"
                order = story.order_body(i, env.people, cart, coupon, increment_id=number)
                saved = _store_write(
                    env, "POST", "/orders", {"entity": order}, recover=functools.partial(_order_by_number, env, number)
                )
                env.placed.append(saved)
                saved_chunk.append((i, saved))
                if bad:
                    env.bad_ids.add(str(saved["entity_id"]))
                if i % 5 == 4:
                    env.guests.add(str(saved["customer_email"]).lower())
            deliveries = []
            for i, saved in saved_chunk:
                first = _adobe_event(saved)
                second = first if i % 2 else _cloud_event(saved, rng)
                deliveries += [first, second]
            for customer in _run_actions(env, actions.get(k, [])):
                body = _customer_event(customer)
                deliveries += [body, body]
            rng.shuffle(deliveries)
            results = list(pool.map(lambda d: _deliver(env, http, d), deliveries))
            for status, dup in results:
                report.webhook_statuses[str(status)] = report.webhook_statuses.get(str(status), 0) + 1
                report.dropped_at_ingress += dup
    report.orders = len(env.placed)
    report.bad = len(env.bad_ids)
    report.good = report.orders - report.bad
    report.deliveries = sum(report.webhook_statuses.values())
    report.duplicate_deliveries = report.deliveries // 2


def _apply_settings(env: _Env, changes: dict[str, Any]) -> None:
    from erpsync.state.settings import SettingsStore

    SettingsStore(os.environ["BINDINGS_TABLE"]).update(changes, actor="chaos harness")


def _order_by_number(env: _Env, number: str) -> mo.JSON | None:
    found = env.story.magento.search("/orders", "increment_id", number)
    return found[0] if found else None


def _customer_actions(env: _Env, chunks: int) -> dict[int, list[tuple[str, int]]]:
    """Which customer change happens with which chunk of orders (spread over the placing)."""
    cfg = env.cfg
    todo: list[tuple[str, int]] = []
    todo += [("new account", j) for j in range(cfg.new_accounts)]
    edited = [i for i in range(cfg.customers) if i % 3 == 0][: cfg.account_edits]
    todo += [("account edit", i) for i in edited]
    todo += [("erp customer", j) for j in range(cfg.erp_customers)]
    todo += [("erp edit", j) for j in range(0, cfg.erp_customers, 2)]  # an ERP-made customer edited there
    rng = random.Random(cfg.seed + 7)
    plan: dict[int, list[tuple[str, int]]] = defaultdict(list)
    made_at: dict[int, int] = {}
    for kind, n in todo:
        if kind == "erp edit":
            k = min(chunks - 1, made_at.get(n, 0) + 1 + rng.randrange(2))
        else:
            k = rng.randrange(chunks)
            if kind == "erp customer":
                made_at[n] = k
        plan[k].append((kind, n))
    for k in plan:  # an ERP customer is made before it is edited, whatever the chunk
        plan[k].sort(key=lambda a: (a[0] == "erp edit", a[1]))
    return plan


def _run_actions(env: _Env, actions: list[tuple[str, int]]) -> list[mo.JSON]:
    """Do the customer changes of one chunk; the Magento accounts saved (their webhooks ring)."""
    rung: list[mo.JSON] = []
    counts = env.report.customers
    for kind, n in actions:
        counts[kind] = counts.get(kind, 0) + 1
        if kind == "new account":
            rung.append(_new_account(env, n))
        elif kind == "account edit":
            rung.append(_edit_account(env, n))
        elif kind == "erp customer":
            _new_erp_customer(env, n)
        elif kind == "erp edit":
            _edit_erp_customer(env, n)
    return rung


def _new_account(env: _Env, j: int) -> mo.JSON:
    email = f"new{j + 1}@chaos.example.com"
    c = mo.sample_customer(email=email)
    c["firstname"], c["lastname"] = "Nova", f"Account{j + 1}"
    addr = c["addresses"][0]
    addr.update(
        firstname="Nova",
        lastname=f"Account{j + 1}",
        street=[f"{j + 1} Chaos Lane"],
        city="Magentoville",
        postcode=f"{49000 + j}",
        telephone=f"(555) 600-{j:04d}",
    )
    saved = _store_write(
        env,
        "POST",
        "/customers",
        {"customer": c, "password": "Passw0rd!x"},
        recover=lambda: next(iter(env.story.magento.search("/customers/search", "email", email)), None),
    )
    env.expected[email] = Expected(
        email=email,
        first="Nova",
        last=f"Account{j + 1}",
        phone=addr["telephone"],
        street=addr["street"][0],
        city="Magentoville",
        postcode=addr["postcode"],
        magento_id=str(saved["id"]),
    )
    return dict(saved)


def _edit_account(env: _Env, i: int) -> mo.JSON:
    """A shopper changes their last name and phone in Magento."""
    person = env.people[i]
    exp = env.expected[person["email"]]
    current = env.story.magento.call("GET", f"/customers/{person['id']}")
    exp.last = f"{exp.last}-Edited"
    exp.phone = f"(555) 700-{i:04d}"
    current["lastname"] = exp.last
    for a in current.get("addresses") or []:
        if str(a.get("id")) == str(current.get("default_billing")):
            a["telephone"] = exp.phone
    saved = _store_write(env, "PUT", f"/customers/{person['id']}", {"customer": current})
    return dict(saved)


def _erp_customer_record(j: int, last: str, phone: str) -> dict[str, Any]:
    email = f"erp{j + 1}@chaos.example.org"
    return {
        "CustomerID": {"value": f"CHAOS{j + 1:04d}"},
        "CustomerName": {"value": f"Erin {last}"},
        "MainContact": {
            "Email": {"value": email},
            "FirstName": {"value": "Erin"},
            "LastName": {"value": last},
            "Phone1": {"value": phone},
            "Address": {
                "AddressLine1": {"value": f"{j + 1} Ledger Road"},
                "City": {"value": "Acumaticaville"},
                "State": {"value": "MI"},
                "PostalCode": {"value": f"{48000 + j}"},
                "Country": {"value": "US"},
            },
        },
    }


def _new_erp_customer(env: _Env, j: int) -> None:
    last, phone = f"Customer{j + 1}", f"(555) 500-{j:04d}"
    _erp_put(env, "Customer", _erp_customer_record(j, last, phone))
    email = f"erp{j + 1}@chaos.example.org"
    env.expected[email] = Expected(
        email=email,
        first="Erin",
        last=last,
        phone=phone,
        street=f"{j + 1} Ledger Road",
        city="Acumaticaville",
        postcode=f"{48000 + j}",
        erp_id=f"CHAOS{j + 1:04d}",
    )
    env.erp_made.append(email)


def _edit_erp_customer(env: _Env, j: int) -> None:
    """A clerk changes the last name and phone of a customer made in Acumatica."""
    exp = env.expected[f"erp{j + 1}@chaos.example.org"]
    exp.last, exp.phone = f"{exp.last}-Edited", f"(555) 510-{j:04d}"
    _erp_put(
        env,
        "Customer",
        {
            "CustomerID": {"value": exp.erp_id},
            "CustomerName": {"value": f"Erin {exp.last}"},
            "MainContact": {"LastName": {"value": exp.last}, "Phone1": {"value": exp.phone}},
        },
    )


def _edit_twins(env: _Env) -> None:
    """A clerk changes the phone and city of first accounts that reached Acumatica (not those edited
    in Magento); one not there yet waits for a later round."""
    still = []
    for i in env.twin_edits:
        person = env.people[i]
        twin = env.binding("customer", "magento", str(person["id"]), "acumatica")
        if not twin:
            still.append(i)
            continue
        exp = env.expected[person["email"]]
        exp.phone, exp.city = f"(555) 800-{i:04d}", "Erpton"
        exp.erp_id = twin
        _erp_put(
            env,
            "Customer",
            {
                "CustomerID": {"value": twin},
                "MainContact": {"Phone1": {"value": exp.phone}, "Address": {"City": {"value": exp.city}}},
            },
        )
        counts = env.report.customers
        counts["erp edit of a store account"] = counts.get("erp edit of a store account", 0) + 1
    env.twin_edits = still


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


def _customer_event(saved: mo.JSON) -> bytes:
    ref = {"entity_id": saved["id"], "email": saved["email"], "updated_at": saved.get("updated_at")}
    return json.dumps({"eventName": "observer.customer_save_after", "data": {"customer": ref}}).encode()


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


def _wait_drained(env: _Env, t0: float) -> None:
    """Until every good order is bound and every bad one parked; the outage happens on the way.

    After the outage the lost-response modes swap on both sims. With ``measure_drain`` every fault
    stops when the outage ends, and the backlog left then is what the drain figures measure."""
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
        late = cfg.outage_after_s is not None and now - t0 >= cfg.outage_after_s
        if not outage_done and outage_from is None and (done_share >= cfg.outage_at or late):
            env.set_faults("acumatica", {**cfg.erp_normal(), "outage": True})
            env.outage_on = True
            outage_from = now
            env.say(f"outage: Acumatica down ({done_share:.0%} of good orders in)")
        if outage_from is not None and not outage_done and now - outage_from >= cfg.outage_s:
            report.outage_s = round(now - outage_from, 1)
            env.outage_on = False
            outage_done = True
            env.lost_mode = {"acumatica": "drop", "magento": "504"}
            if cfg.measure_drain:
                env.calm()
                env.stopped_at = time.time()
                env.backlog = env.unbound(good)
                env.say(f"outage over after {report.outage_s:.0f}s; faults stop, backlog {len(env.backlog)} order(s)")
            else:
                env.chaos(seed_offset=1)
                env.say(f"outage over after {report.outage_s:.0f}s")
        stuck = env.stopped_at is not None and time.time() - env.stopped_at > cfg.drain_max_s
        if stuck and missing and not env.remedied:
            env.drained_at = time.time()
            env.remedied = True
            report.problems.append(
                f"{len(missing)} good order(s) still not in Acumatica {cfg.drain_max_s:.0f} s after the faults "
                "stopped; the tuned rate limits were set so the run could finish"
            )
            env.say(f"backlog not drained after {cfg.drain_max_s:.0f}s: setting the tuned rate limits")
            _apply_settings(env, cfg.tuned_settings())
        if env.twin_edits and not env.outage_on and env.stopped_at is None:
            _edit_twins(env)
        if not missing and outage_done:
            parked = {r.id for r in env.failed()}
            if env.bad_ids <= parked:
                break
        if now > deadline:
            report.problems.append(
                f"not drained after {cfg.max_run_s:.0f}s: {len(missing)} good order(s) not in Acumatica"
            )
            break
        if now - last_say > 15:
            env.say(f"  {now - t0:5.0f}s: {len(good) - len(missing)}/{len(good)} good orders in Acumatica")
            last_say = now
        env.seats.append((time.time(), _seat_count()))
        time.sleep(1.0)
    env.drained_at = env.drained_at or time.time()
    until = time.monotonic() + 180
    while env.twin_edits and time.monotonic() < until:  # the last ones, once they are in Acumatica
        _edit_twins(env)
        if env.twin_edits:
            time.sleep(2.0)
    if env.twin_edits:
        report.problems.append(f"first accounts never reached Acumatica to be edited there: {env.twin_edits}")


def _acumatica_orders(env: _Env, number: str) -> list[mo.JSON]:
    flt = quote(f"CustomerOrder eq '{number}'")
    return list(_erp_get(env, "SalesOrder", f"$filter={flt}&$select=OrderNbr,CustomerOrder,OrderTotal"))


def _check_orders(env: _Env, when: str) -> None:
    """Every good order (after resync: every order) in Acumatica exactly once with the store's total."""
    ids = env.good_ids if when == "after the chaos" else env.ids
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
    if when == "after the chaos":
        for i in env.bad_ids:
            inc = str(by_id[i]["increment_id"])
            if _acumatica_orders(env, inc):
                env.report.problems.append(f"bad order {inc} reached Acumatica")


MAX_FAILED_ROWS = 6
"""A bad order's notices in flight when it first fails (webhook deliveries, a poll, the sweep) may
each fail once; every later one is held on the desk."""


def _check_parked(env: _Env) -> None:
    report = env.report
    rows = env.failed()
    report.parked_messages = len(rows)
    parked = {r.id: r for r in rows}
    report.parked_bad = len(env.bad_ids & set(parked))
    for i in sorted(env.bad_ids):
        r = parked.get(i)
        if r is None:
            report.problems.append(f"bad order {i} is not on the failures desk")
        elif r.error_type != "unknown_item" or BAD_SKU not in r.reason:
            report.problems.append(f"bad order {i} parked as {r.error_type}: {r.reason[:120]}")
    wrongly = sorted(set(parked) - env.bad_ids)
    if wrongly:
        report.problems.append(f"good orders on the failures desk: {wrongly[:10]} ({len(wrongly)})")
    from erpsync.state.synclog import SyncLog

    log = SyncLog(os.environ["SYNC_LOG_TABLE"])
    rows_per_bad = [sum(r.get("outcome") == "failed" for r in log.history(FLOW, i)) for i in sorted(env.bad_ids)]
    report.failed_rows_per_bad = max(rows_per_bad, default=0)
    if report.failed_rows_per_bad > MAX_FAILED_ROWS:
        report.problems.append(
            f"a bad order failed {report.failed_rows_per_bad} times: a failure held on the desk must not be "
            f"tried again for every poll, sweep and duplicate (at most {MAX_FAILED_ROWS})"
        )


def _resync(env: _Env) -> None:
    """Create the missing stock item, then `erpsync resync orders --failed` under the same faults."""
    report = env.report
    if not env.bad_ids:
        return
    _erp_put(
        env,
        "StockItem",
        {
            "InventoryID": {"value": BAD_SKU},
            "Description": {"value": "Impulse Duffle"},
            "ItemClass": {"value": "STOCKITEM"},
            "DefaultPrice": {"value": 74},
        },
    )
    env.chaos(seed_offset=2)
    bad = sorted(env.bad_ids)
    for _ in range(3):  # a worker that picked a bad order up before the fix may park it once more
        _resync_cli(env)
        # records that met a fault went back on the queue: the workers finish them
        deadline = time.monotonic() + 120 + 2 * env.cfg.timeout_s
        while env.unbound(bad) and time.monotonic() < deadline:
            time.sleep(1.0)
        if not env.failed():
            break
    missing = env.unbound(bad)
    if missing:
        report.problems.append(f"after resync: {len(missing)} bad order(s) still not in Acumatica")
    report.resynced = len(bad) - len(missing)
    env.calm()


def _resync_cli(env: _Env) -> None:
    """`erpsync resync orders --failed`, as an operator runs it (the state file under the workdir)."""
    report = env.report
    res = _cli(env, "resync", "orders", "--failed", "--yes")
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


# --------------------------------------------------------------------------- shipments and invoices


def _documents(env: _Env) -> None:
    """The warehouse ships every n-th good order (and invoices some) in Acumatica, then the
    shipments and invoices flows bring them to Magento under the chaos (lost answers on the
    store's side, the fault mix on the ERP's); the modes of lost answers change half-way."""
    cfg, report = env.cfg, env.report
    if not cfg.ship_every:
        return
    by_id = {str(o["entity_id"]): o for o in env.placed}
    # an order with a virtual line is left out: Magento ships no virtual item, and a shipment that
    # names one is refused whole (see docs/RELIABILITY.md); physical orders only
    physical = [i for n, i in enumerate(env.ids) if i not in env.bad_ids and CARTS[n % len(CARTS)][0] != "virtual"]
    chosen = physical[:: cfg.ship_every]
    t0 = time.monotonic()
    env.set_faults("acumatica", None)  # the clerk works on a quiet, quick ERP; Magento loses answers
    env.lost_mode = {"acumatica": "504", "magento": "drop"}
    env.set_faults("magento", cfg.store_faults(3, env.lost_mode["magento"]))
    for n, i in enumerate(chosen):
        number = str(by_id[i]["increment_id"])
        tracking = f"1ZCHAOS{number[-6:]}"
        invoice = cfg.invoice_every > 0 and n % cfg.invoice_every == 0
        env.story.ship(number, tracking, invoice=invoice)
        env.shipped[i] = tracking
        if invoice and number in env.story.invoiced:
            env.invoiced.add(i)
    report.shipped, report.invoiced = len(env.shipped), len(env.invoiced)
    env.say(f"shipped {report.shipped} order(s), invoiced {report.invoiced} in Acumatica; flows under chaos")
    env.chaos(seed_offset=3)
    deadline = time.monotonic() + cfg.max_run_s
    swapped = False
    want = {("shipment", i) for i in env.shipped} | {("invoice", i) for i in env.invoiced}
    done: set[tuple[str, str]] = set()
    last_say = 0.0
    while True:
        for kind, i in sorted(want - done):
            if env.story.magento.search(f"/{kind}s", "order_id", i):
                done.add((kind, i))
        if not swapped and len(done) * 2 >= len(want):
            env.lost_mode = {"acumatica": "drop", "magento": "504"}
            env.chaos(seed_offset=4)
            swapped = True
        if done >= want:
            break
        parked = [r for flow in DOCUMENT_FLOWS for r in env.failed(flow)]
        if parked:
            report.problems += [f"{r.flow} {r.id} parked as {r.error_type}: {r.reason[:160]}" for r in parked[:5]]
            break
        if time.monotonic() > deadline:
            report.problems.append(
                f"documents: only {len(done)} of {len(want)} shipment(s) and invoice(s) reached Magento"
            )
            break
        if time.monotonic() - last_say > 30:
            env.say(f"  {time.monotonic() - t0:5.0f}s: {len(done)}/{len(want)} documents in Magento")
            last_say = time.monotonic()
        time.sleep(3.0)
    env.calm()
    report.documents_s = round(time.monotonic() - t0, 1)
    env.say(f"documents in Magento after {report.documents_s:.0f}s")


def _check_documents(env: _Env) -> None:
    """Each shipped order has one Magento shipment with its tracking number; each invoiced one invoice."""
    story, report = env.story, env.report
    for i, tracking in sorted(env.shipped.items()):
        shipments = story.magento.search("/shipments", "order_id", i)
        if len(shipments) != 1:
            report.problems.append(f"order {i}: {len(shipments)} shipment(s) in Magento, 1 expected")
            continue
        tracks = [t.get("track_number") for t in shipments[0].get("tracks") or []]
        if tracks != [tracking]:
            report.problems.append(f"order {i}: Magento shipment tracks {tracks}, expected [{tracking!r}]")
    for i in sorted(env.invoiced):
        invoices = story.magento.search("/invoices", "order_id", i)
        if len(invoices) != 1:
            report.problems.append(f"order {i}: {len(invoices)} invoice(s) in Magento, 1 expected")


# --------------------------------------------------------------------------- money


def _store_read(env: _Env, path: str) -> Any:
    """A read from Magento as the harness makes it (Magento's faults touch writes only)."""
    r = env.story.magento.http.get(path)
    r.raise_for_status()
    return r.json()


def _money(env: _Env) -> None:
    """Payments and refunds under the chaos. Each order the invoices flow captured in Magento rings
    Magento's order-saved webhook (twice, as every webhook of the run) and the payments flow pays it in
    Acumatica; then every n-th of them is refunded in part in Magento (one unit of its first line and
    its shipping) and the credit-memos flow's poll brings each credit memo to Acumatica, released and
    paid out by a refund. Both sims keep their faults meanwhile, lost answers to writes included."""
    cfg, report = env.cfg, env.report
    if not env.invoiced:
        return
    t0 = time.monotonic()
    env.chaos(seed_offset=5)
    orders = {i: _store_read(env, f"/orders/{i}") for i in sorted(env.invoiced)}
    report.paid = sum(1 for o in orders.values() if Decimal(str(o.get("total_paid") or 0)) > 0)
    with ThreadPoolExecutor(4) as pool, httpx.Client(timeout=30) as http:
        bodies = [_adobe_event(o) for o in orders.values() for _ in range(2)]
        list(pool.map(lambda d: _deliver(env, http, d), bodies))
    _wait_bound(env, "payment", "payments", list(orders), t0)
    for i in list(orders)[:: cfg.refund_every] if cfg.refund_every else []:
        line = next(it for it in orders[i]["items"] if it.get("parent_item_id") is None)
        body = {"items": [{"order_item_id": line["item_id"], "qty": 1}], "notify": False}
        memo_id = _store_write(env, "POST", f"/order/{i}/refund", body, recover=functools.partial(_memo_of, env, i))
        env.memos[str(memo_id)] = i
    report.refunds = len(env.memos)
    if env.memos:
        env.say(f"{report.paid} order(s) paid in Acumatica; {report.refunds} refunded in part in Magento")
        _wait_bound(env, "creditmemo-refund", "credit-memos", list(env.memos), t0)
    env.calm()
    report.money_s = round(time.monotonic() - t0, 1)
    env.say(f"payments and credit memos in Acumatica after {report.money_s:.0f}s")


def _memo_of(env: _Env, order_id: str) -> str | None:
    """The credit memo a refund of ``order_id`` saved before its answer was lost (the harness refunds
    an order once)."""
    rows = env.story.magento.search("/creditmemos", "order_id", order_id)
    return str(rows[0]["entity_id"]) if rows else None


def _wait_bound(env: _Env, entity: str, flow: str, ids: list[str], t0: float) -> None:
    """Until ``flow`` has bound every one of ``ids`` (``entity`` bindings), a record of it parked on
    the failures desk, or the run's patience ends."""
    deadline = time.monotonic() + env.cfg.max_run_s
    last_say = 0.0
    while True:
        missing = env.unbound(ids, entity)
        if not missing:
            return
        parked = env.failed(flow)
        if parked:
            env.report.problems += [f"{flow} {r.id} parked as {r.error_type}: {r.reason[:160]}" for r in parked[:5]]
            return
        if time.monotonic() > deadline:
            env.report.problems.append(f"{flow}: {len(missing)} of {len(ids)} record(s) never reached Acumatica")
            return
        if time.monotonic() - last_say > 30:
            env.say(f"  {time.monotonic() - t0:5.0f}s: {flow} {len(ids) - len(missing)}/{len(ids)} in Acumatica")
            last_say = time.monotonic()
        time.sleep(2.0)


def _check_money(env: _Env) -> None:
    """Each good order has as many released Acumatica payments as Magento captured (one, of the paid
    amount; none for an order not paid); each Magento credit memo one released Acumatica credit memo
    of its amount and one refund paying it out (to the cent)."""
    report = env.report
    by_ref: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for p in _erp_get(env, "Payment", "$filter=" + quote("Type eq 'Payment'")):
        if v(p.get("Status")) != "Voided":
            by_ref[str(v(p.get("ExternalRef")))].append(p)
    placed = {str(o["entity_id"]): o for o in env.placed}
    for i in env.good_ids:
        number = str(placed[i]["increment_id"])
        payments = by_ref.get(number, [])
        if i not in env.invoiced:
            if payments:
                report.problems.append(f"order {number}: {len(payments)} payment(s) in Acumatica, it was never paid")
            continue
        paid = Decimal(str(_store_read(env, f"/orders/{i}").get("total_paid") or 0))
        amounts = sorted(Decimal(str(v(p["PaymentAmount"]))) for p in payments)
        if amounts != [paid] or any(v(p.get("Status")) in ("Balanced", "On Hold") for p in payments):
            states = [f"{a} {v(p.get('Status'))}" for a, p in zip(amounts, payments, strict=True)]
            report.problems.append(f"order {number}: Acumatica payments {states}, expected one released of {paid}")
    if not env.memos:
        return
    memos = defaultdict(list)
    for cm in _erp_get(env, "SalesInvoice", "$filter=" + quote("Type eq 'Credit Memo'")):
        memos[str(v(cm.get("ExternalRef")))].append(cm)
    refunds = defaultdict(list)
    for r in _erp_get(env, "Payment", "$filter=" + quote("Type eq 'Refund'")):
        if v(r.get("Status")) != "Voided":
            refunds[str(v(r.get("ExternalRef")))].append(r)
    for memo_id in sorted(env.memos):
        memo = _store_read(env, f"/creditmemo/{memo_id}")
        number, amount = str(memo["increment_id"]), Decimal(str(memo["grand_total"]))
        got = [(Decimal(str(v(cm["Amount"]))), v(cm.get("Status"))) for cm in memos.get(number, [])]
        if got != [(amount, "Closed")]:
            report.problems.append(
                f"credit memo {number}: Acumatica credit memos {got}, expected one of {amount}, paid out"
            )
        paid_out = [Decimal(str(v(r["PaymentAmount"]))) for r in refunds.get(number, [])]
        if paid_out != [amount]:
            report.problems.append(f"credit memo {number}: Acumatica refunds {paid_out}, expected one of {amount}")


def _reconcile(env: _Env) -> None:
    """`erpsync reconcile` as the accountant runs it: the books match after the chaos; then a clerk
    changes the price of a line of an open order in Acumatica, and reconcile names that order, its
    store total and its new ERP total."""
    report = env.report
    res = _cli(env, "reconcile", "--days", "1")
    report.reconciled = (res.stdout.strip().splitlines() or ["(no output)"])[-1]
    if res.returncode != 0:
        report.problems.append(
            f"reconcile after the chaos (exit {res.returncode}): {res.stdout[-1500:]}{res.stderr[-500:]}"
        )
        return
    placed = {str(o["entity_id"]): o for o in env.placed}
    open_ids = [i for i in env.good_ids if i not in env.shipped]
    if not open_ids:
        return
    number = str(placed[open_ids[0]]["increment_id"])
    [so] = _erp_get(env, "SalesOrder", "$filter=" + quote(f"CustomerOrder eq '{number}'") + "&$expand=Details")
    line = so["Details"][0]
    _erp_put(
        env,
        "SalesOrder",
        {
            "OrderType": so["OrderType"],
            "OrderNbr": so["OrderNbr"],
            "Details": [{"id": line["id"], "UnitPrice": {"value": float(Decimal(str(v(line["UnitPrice"]))) + 1)}}],
        },
    )
    [so] = _erp_get(env, "SalesOrder", "$filter=" + quote(f"CustomerOrder eq '{number}'"))
    erp_total = f"{Decimal(str(v(so['OrderTotal']))):.2f}"
    store_total = f"{Decimal(str(placed[open_ids[0]]['grand_total'])):.2f}"
    res = _cli(env, "reconcile", "--days", "1", "--json")
    found = [json.loads(x) for x in res.stdout.splitlines() if x.startswith("{")]
    report.hand_change = {"order": number, "store": store_total, "erp": erp_total, "named": json.dumps(found)}
    expected = [{"number": number, "what": "total", "store_amount": store_total, "erp_amount": erp_total}]
    if res.returncode != 1 or [{k: d.get(k) for k in expected[0]} for d in found] != expected:
        report.problems.append(f"reconcile after a hand change of order {number}'s total to {erp_total}: {found}")


def _cli(env: _Env, *args: str) -> subprocess.CompletedProcess[str]:
    """``erpsync ARGS`` as an operator runs it (the state file under the workdir)."""
    cmd = [sys.executable, "-m", "cli", *args]
    return subprocess.run(cmd, cwd=env.workdir, capture_output=True, text=True, timeout=900, check=False)  # noqa: S603


# --------------------------------------------------------------------------- customers


def _store_side(c: dict[str, Any]) -> dict[str, str]:
    billing = next(
        (a for a in c.get("addresses") or [] if str(a.get("id")) == str(c.get("default_billing"))),
        (c.get("addresses") or [{}])[0],
    )
    return {
        "first": str(c.get("firstname") or ""),
        "last": str(c.get("lastname") or ""),
        "phone": str(billing.get("telephone") or ""),
        "street": str((billing.get("street") or [""])[0]),
        "city": str(billing.get("city") or ""),
        "postcode": str(billing.get("postcode") or ""),
        "country": str(billing.get("country_id") or ""),
    }


def _erp_side(c: dict[str, Any]) -> dict[str, str]:
    main = c.get("MainContact") or {}
    addr = main.get("Address") or {}
    return {
        "first": str(v(main.get("FirstName")) or ""),
        "last": str(v(main.get("LastName")) or ""),
        "phone": str(v(main.get("Phone1")) or ""),
        "street": str(v(addr.get("AddressLine1")) or ""),
        "city": str(v(addr.get("City")) or ""),
        "postcode": str(v(addr.get("PostalCode")) or ""),
        "country": str(v(addr.get("Country")) or ""),
    }


def _customers_now(env: _Env) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[dict[str, Any]]]]:
    """Every customer on each side, by lower-case email."""
    store: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for c in env.story.magento.call("GET", "/customers/search", params={"searchCriteria[pageSize]": "10000"})["items"]:
        store[str(c["email"]).lower()].append(c)
    erp: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for c in _erp_get(env, "Customer", "$expand=MainContact/Address"):
        email = str(v((c.get("MainContact") or {}).get("Email")) or "").lower()
        erp[email].append(c)
    return store, erp


def _customer_differences(env: _Env) -> list[str]:
    """What does not (yet) match: counts per email on both sides, and every pair's fields."""
    store, erp = _customers_now(env)
    out = []
    for email, exp in sorted(env.expected.items()):
        s, e = store.get(email, []), erp.get(email, [])
        if len(s) != 1 or len(e) != 1:
            out.append(f"customer {email}: {len(s)} in Magento, {len(e)} in Acumatica (1 and 1 expected)")
            continue
        mid, eid = str(s[0]["id"]), str(v(e[0].get("CustomerID")))
        if env.binding("customer", "magento", mid, "acumatica") != eid or (
            env.binding("customer", "acumatica", eid, "magento") != mid
        ):
            out.append(f"customer {email}: Magento {mid} and Acumatica {eid} are not bound to each other")
        want, got_s, got_e = exp.fields(), _store_side(s[0]), _erp_side(e[0])
        for name, value in want.items():
            if got_s[name] != value or got_e[name] != value:
                out.append(
                    f"customer {email} {name}: Magento {got_s[name]!r}, Acumatica {got_e[name]!r}, last edit {value!r}"
                )
    for email in sorted(env.guests):
        if store.get(email):
            out.append(f"guest {email} got a Magento account")
        if len(erp.get(email, [])) != 1:
            out.append(f"guest {email}: {len(erp.get(email, []))} customer(s) in Acumatica, 1 expected")
    stray_store = sorted(set(store) - set(env.expected))
    stray_erp = sorted(set(erp) - set(env.expected) - env.guests)
    if stray_store:
        out.append(f"Magento accounts nobody made: {stray_store[:5]}")
    if stray_erp:
        out.append(f"Acumatica customers nobody made: {stray_erp[:5]}")
    return out


QUEUED = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed")


def messages_left(sqs: Any, urls: dict[str, str]) -> dict[str, int]:
    """Messages of each queue (name -> url) still visible, in flight or delayed (a retry waiting its
    turn); queues holding none are left out."""
    left = {}
    for name, url in urls.items():
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(QUEUED))["Attributes"]
        if n := sum(int(attrs.get(a, 0)) for a in QUEUED):
            left[name] = n
    return left


def _work_left(env: _Env) -> dict[str, int]:
    """Messages of every flow's queue still visible, in flight or delayed."""
    from erpsync.flows.catalog import NAMES
    from erpsync.runtime import queues

    return messages_left(queues.client(), {flow: queue_url(flow) for flow in NAMES})


def _settle_customers(env: _Env) -> None:
    """Wait (no faults) until every queue is empty (no retry waiting either) and both customer flows
    brought every customer in step, or give up."""
    cfg, report = env.cfg, env.report
    t0 = time.monotonic()
    limit = max(300.0, 6 * 60 / cfg.schedule_speedup * 5)
    diffs: list[str] = []
    last_say = time.monotonic()
    while time.monotonic() - t0 < limit:
        left = _work_left(env)
        diffs = [f"messages still queued: {left}"] if left else _customer_differences(env)
        if not diffs:
            break
        if time.monotonic() - last_say > 15:
            env.say(f"  settling: {diffs[0]}" + (f" (+{len(diffs) - 1})" if len(diffs) > 1 else ""))
            last_say = time.monotonic()
        time.sleep(2.0)
    report.customers_settle_s = round(time.monotonic() - t0, 1)
    env.say(f"customers in step after {report.customers_settle_s:.0f}s more" if not diffs else "customers not in step")


def _check_customers(env: _Env) -> None:
    report = env.report
    left = _work_left(env)
    deadline = time.monotonic() + 60
    while left and time.monotonic() < deadline:  # a poll that ran after the settle queued work: it drains
        time.sleep(2.0)
        left = _work_left(env)
    if left:
        report.problems.append(f"work still queued {report.customers_settle_s:.0f} s after the documents: {left}")
    diffs = _customer_differences(env)
    report.problems += diffs[:20]
    if len(diffs) > 20:
        report.problems.append(f"... and {len(diffs) - 20} more customer difference(s)")
    store, erp = _customers_now(env)
    report.problems += _customer_histories(env, diffs, store, erp)
    report.customers["in Magento"] = sum(len(x) for x in store.values())
    report.customers["in Acumatica"] = sum(len(x) for x in erp.values())
    report.customers["guests (Acumatica only)"] = len(env.guests)
    report.customers["expected on both sides"] = len(env.expected)
    for flow in CUSTOMER_FLOWS:
        for r in env.failed(flow)[:5]:
            report.problems.append(f"{flow} {r.id} parked as {r.error_type}: {r.reason[:160]}")


def _customer_histories(
    env: _Env, diffs: list[str], store: dict[str, list[dict[str, Any]]], erp: dict[str, list[dict[str, Any]]]
) -> list[str]:
    """What both customer flows last did to (at most three of) the customers not in step: the sync
    log says why a change did not arrive."""
    from erpsync.state.synclog import SyncLog

    log = SyncLog(os.environ["SYNC_LOG_TABLE"])
    emails = list(dict.fromkeys(d.split()[1].rstrip(":") for d in diffs if d.startswith("customer ")))[:3]
    out = []
    for email in emails:
        ids = [("customers", str(c["id"])) for c in store.get(email, [])]
        ids += [("erp-customers", str(v(c.get("CustomerID")))) for c in erp.get(email, [])]
        for flow, id in ids:
            for r in log.history(flow, id)[-4:]:
                at, message = str(r.get("at"))[:23], str(r.get("message"))[:200]
                out.append(f"  {flow} {id} {r.get('outcome')} at {at}: {message}")
    return out


def _quiet_cycles(env: _Env, cycles: int = 2) -> None:
    """After everything settled: each cycle polls both customer flows and syncs every customer of
    each side through the functions; neither sim may see a write."""
    from erpsync.flows.catalog import NAMES
    from erpsync.state.synclog import SyncLog

    report, stack = env.report, env.stack
    env.set_faults("acumatica", None)  # settled: a quick ERP, so nothing here waits on its licence
    for flow in NAMES:  # every flow polled once more (the payments of orders the invoices flow just
        stack.invoke(flow, {"erpsync": "poll"})  # captured in Magento), then its work done, retries
    for flow in NAMES:  # waiting out a delay included (a payment's release retried after a lost answer)
        stack.poller(flow).wait_idle(timeout=300, delayed=True)
    for sim in ("acumatica", "magento"):
        httpx.delete(f"{env.acumatica_url if sim == 'acumatica' else env.magento_url}/_sim/requests", timeout=10)
    store, erp = _customers_now(env)
    store_ids = [str(c["id"]) for rows in store.values() for c in rows]
    erp_ids = [str(v(c["CustomerID"])) for rows in erp.values() for c in rows]
    # from now on (a sync that ended just before, its message gone from the queue, is not one of these)
    since = datetime.now(UTC).isoformat(timespec="milliseconds")
    outcomes: Counter[str] = Counter()
    for _ in range(cycles):
        for flow in CUSTOMER_FLOWS:  # the poll, its notices worked off by the flow's own poller
            stack.invoke(flow, {"erpsync": "poll"})
        for flow in CUSTOMER_FLOWS:
            stack.poller(flow).wait_idle(timeout=120)
        for flow, ids in (("customers", store_ids), ("erp-customers", erp_ids)):  # then every record
            with ThreadPoolExecutor(3) as pool:
                results = list(pool.map(lambda x, f=flow: stack.invoke(f, {"erpsync": "sync", "id": x}), ids))
            outcomes.update(f"{flow} {r.get('outcome')}" for r in results)
        report.quiet_cycles += 1
    log_rows = [
        r
        for outcome in ("synced", "failed", "retrying")
        for r in SyncLog(os.environ["SYNC_LOG_TABLE"]).by_outcome(outcome, since=since, limit=10_000)
        if r.get("flow") in CUSTOMER_FLOWS
    ]
    outcomes.update(f"{r['flow']} {r['outcome']} (queued)" for r in log_rows)
    report.quiet_outcomes = dict(sorted(outcomes.items()))
    for sim in ("acumatica", "magento"):
        writes = [r for r in env.connector_rows(sim) if is_write(r)]
        report.quiet_writes += len(writes)
        for r in writes[:5]:
            report.problems.append(
                f"write after everything settled ({flow_of_write(sim, r)}): {sim} {r['method']} {r['path']}"
            )
    moved = {k: n for k, n in outcomes.items() if k.split()[1] not in ("skipped", "filtered")}
    if moved:
        report.problems.append(f"customer syncs after everything settled were not all skipped: {moved}")
        for r in log_rows[:5]:
            report.problems.append(
                f"  {r['flow']} {r['source_id']} {r['outcome']} at {r['at'][:23]}: {str(r.get('message'))[:300]}"
            )


# --------------------------------------------------------------------------- figures


def _seat_count() -> float:
    """The connector's learned Acumatica seat count as stored now (-1: none stored yet)."""
    from erpsync.state import dynamo

    item = (
        dynamo.client()
        .get_item(
            TableName=os.environ["BINDINGS_TABLE"],
            Key=dynamo.to_item({"pk": "seats#acumatica", "sk": "count"}),
            ConsistentRead=True,
        )
        .get("Item")
    )
    return float(dynamo.from_item(item)["n"]) if item else -1.0


def _figures(env: _Env) -> None:
    """Ceilings, lost answers per flow, retries, invocations and the drain, from the sims' own logs
    (written beside the run's state, with the seat counts, for a closer look: ``--keep`` of bench.chaos)."""
    from erpsync.state.synclog import SyncLog

    cfg, report = env.cfg, env.report
    rows = env.connector_rows("acumatica")
    store_rows = env.connector_rows("magento")
    for name, data in (("acumatica-requests", rows), ("magento-requests", store_rows), ("seats", env.seats)):
        (env.workdir / f"{name}.json").write_text(json.dumps(data))
    report.connector_requests = len(rows)
    report.store_requests = len(store_rows)
    report.faults = dict(Counter(str(r["fault"]) for r in rows if r.get("fault")))
    report.store_faults = dict(Counter(str(r["fault"]) for r in store_rows if r.get("fault")))
    report.max_per_window, _ = max_in_window([float(r["received_at"]) for r in rows])
    report.peak_concurrency = peak_overlap([(float(r["received_at"]), float(r["at"])) for r in rows])
    lost: dict[str, dict[str, int]] = defaultdict(dict)
    writes: Counter[str] = Counter()
    for sim, sim_rows in (("acumatica", rows), ("magento", store_rows)):
        for r in sim_rows:
            if not is_write(r) or r.get("applied_status") is None:  # refused by a fault: never reached the app
                continue
            flow = flow_of_write(sim, r)
            writes[flow] += 1
            if r.get("fault") == "lost_response":
                mode = "drop" if int(r.get("status") or 0) == 0 else "504"
                lost[flow][mode] = lost[flow].get(mode, 0) + 1
    report.lost_by_flow = {k: dict(x) for k, x in sorted(lost.items())}
    report.writes_by_flow = dict(sorted(writes.items()))
    if cfg.require_every_flow_lost:
        for flow in ("orders", "customers", "erp-customers", *DOCUMENT_FLOWS, "payments", "credit-memos"):
            if writes.get(flow) and not lost.get(flow):
                report.problems.append(f"no write of the {flow} flow met a lost response ({writes[flow]} writes)")
    if cfg.tuned:
        if report.max_per_window > cfg.per_minute:
            report.problems.append(f"{report.max_per_window} requests in 60 s, ceiling {cfg.per_minute}")
        if report.peak_concurrency > cfg.concurrent:
            report.problems.append(f"{report.peak_concurrency} requests at once, ceiling {cfg.concurrent}")
        if report.faults.get("concurrency"):
            # the sim refuses beyond ceiling + 1 (the harness's seat): the connector went over
            report.problems.append(f"the sim refused {report.faults['concurrency']} request(s) over its licence")
    retrying = SyncLog(os.environ["SYNC_LOG_TABLE"]).by_outcome("retrying", limit=1_000_000)
    report.retries = dict(Counter(str(r.get("error_type") or "?") for r in retrying).most_common())
    if cfg.measure_drain:
        _drain(env, rows)


def _invocations(env: _Env) -> None:
    report = env.report
    for lid, fn in sorted(env.stack.functions.items()):
        hist = list(fn.history)
        report.invocations += len(hist)
        if hist:
            longest = max(hist, key=lambda i: i.duration_ms)
            report.invocation_max[lid] = (round(longest.duration_s, 1), longest.timeout_s, len(hist))
        report.containers[lid] = fn.containers
        for inv in fn.overruns():
            report.overruns.append(
                f"{lid} ({inv.kind}) ran {inv.duration_s:.1f}s, over its {inv.timeout_s:g}s timeout"
                + (f" ({inv.error})" if inv.error else "")
                + (f"; at its timeout in {' < '.join(reversed(inv.at_timeout[-4:]))}" if inv.at_timeout else "")
            )
    for line in report.overruns[:10]:
        report.problems.append(f"overrun: {line}")
    if len(report.overruns) > 10:
        report.problems.append(f"... and {len(report.overruns) - 10} more overrun(s)")


def _drain(env: _Env, rows: list[dict[str, Any]]) -> None:
    cfg, report = env.cfg, env.report
    if env.stopped_at is None:
        report.problems.append("the drain was not measured (the outage never ended)")
        return
    stopped, ended = env.stopped_at, env.drained_at or time.time()
    window = [r for r in rows if stopped <= float(r["at"]) <= ended]
    done_at = [
        float(r["at"])
        for r in window
        if r["method"] == "PUT"
        and str(r["path"]).endswith("/SalesOrder")
        and 200 <= int(r.get("applied_status") or 0) < 300
    ]
    useful = [float(r["at"]) for r in window if r.get("fault") is None and 200 <= int(r.get("status") or 0) < 300]
    limits = cfg.settings().get("rate_limits", {}).get("acumatica", {})
    fig = drain_figures(
        done_at,
        stopped,
        useful,
        backlog=len(env.backlog),
        ended_at=ended,
        concurrent=cfg.sim_max_concurrent() or cfg.concurrent,
        latency_s=cfg.latency_ms / 1000.0,
        per_minute=limits.get("per_minute"),
    )
    fig["backlog_orders"] = len(env.backlog)
    fig["requests"] = len(window)
    fig["refused_429"] = sum(1 for r in window if int(r.get("status") or 0) == 429)
    served = [float(r["at"]) - float(r["received_at"]) for r in window if r.get("applied_status") is not None]
    fig["median_request_s"] = round(statistics.median(served) if served else 0.0, 2)
    report.drain = fig
    if "ratio" not in fig:
        report.problems.append(f"the drain could not be measured (backlog {fig.get('backlog')})")
    elif fig["ratio"] < cfg.min_drain_ratio:
        report.problems.append(
            f"the backlog drained at {fig['orders_per_min']} orders/min, {fig['ratio']:.2f} of the "
            f"{fig['ceiling_orders_per_min']} the ERP's ceiling allows (at least {cfg.min_drain_ratio} required)"
        )
