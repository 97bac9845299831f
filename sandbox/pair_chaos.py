"""The chaos run for any store with any ERP (issue 12): ``python -m sandbox.pair_chaos --store shopify
--erp quickbooks [--orders 60]``; ``make chaos`` runs it for every pair but Magento -> Acumatica
(whose own, larger run is ``sandbox.chaos``), and ``make test`` a small version of each.

On a fresh local stack for the pair, pollers and schedules running, nobody running a command:

1. the ERP misbehaves from the start: 5xx, 429 and writes applied whose answer is then lost (the
   connection dropped, or a 504), and with QuickBooks a lowered per-minute ceiling that its sim
   enforces with 429s and the settings hold across workers (``rate_limits``);
2. orders are placed in the store through its own API (a third unpaid, one in three with a
   discount), Shopify's webhooks delivered twice or out of order at ``duplicate_rate``; a few
   unpaid ones are cancelled in the store at once; then the store misbehaves too (5xx and lost
   answers to writes);
3. with Acumatica, the warehouse ships some orders (faults paused on the ERP for the clerk): their
   fulfilments reach Shopify under the store's faults; with SAP (issue 13) the clerk delivers some
   orders and invoices (B1) or bills (S/4HANA) each delivery, and the tracking and Magento's invoices
   reach the store under its faults. With SAP the orders come in two halves: once the first half is
   in the ERP, B1 ends every session (the connector meets 401 and signs in again) or S/4HANA expires
   every CSRF token; S/4HANA also refuses a valid token now and then (``csrf_mismatch_rate``), and
   order creations lose their answer at a rate of their own (``lost_create_rate``);
4. the faults stop; the operator retries what the failures desk holds (``erpsync retry``);
5. checked: every order in the ERP exactly once and to the cent (S/4HANA: net of the store's tax,
   SAP determines tax; a cancelled one cancelled or never made where the ERP serves cancellations,
   else only not doubled), every paid order paid once (B1: one down payment invoice per order and one
   incoming payment per down payment; S/4HANA takes no payments: not checked), each SAP invoice one
   Magento invoice, the session expiry met and got over, every shipment once with its tracking number, no ceiling
   passed (no 429 the sim gave on its own, Shopify's cost bucket never refused a query as too
   expensive), the lost-answer path taken for real (writes applied whose answer was lost), and
   a quiet spell of polls writing nothing more on either side.

The report lists what did not hold (``problems``); ``main`` exits 1 when any did.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from sandbox.chaos import _quiet, max_in_window, messages_left
from sandbox.pair_demo import ErpSide, Placed, StoreSide

log = logging.getLogger(__name__)
D = Decimal
PAIRS = (
    ("shopify", "acumatica"),
    ("magento", "quickbooks"),
    ("shopify", "quickbooks"),
    ("magento", "sap_b1"),
    ("shopify", "sap_b1"),
    ("magento", "sap_s4"),
    ("shopify", "sap_s4"),
)
"""Every pair but Magento -> Acumatica, which ``sandbox.chaos`` runs at length."""
SAP = ("sap_b1", "sap_s4")
FLOWS = ("orders", "payments", "cancellations", "shipments", "invoices")
"""The flows whose failures the operator retries (those the pair has)."""
ORDER_CREATE = {"sap_b1": r"/b1s/v\d/Orders", "sap_s4": r".*/API_SALES_ORDER_SRV/A_SalesOrder"}
"""The path (a regex) of an SAP order creation."""
HARNESS_AGENT = "erpsync-pair-chaos"
"""The User-Agent of the harness's own requests to an SAP sim (its clerk's), told apart from the
connector's in the sim's request log."""
POLL_EVERY_S = 300.0
"""The template's ``PollSchedule`` default (``rate(5 minutes)``)."""


@dataclass
class PairChaosConfig:
    store: str
    erp: str
    orders: int = 60
    seed: int = 20261128
    erp_error_rate: float = 0.04
    erp_throttle_rate: float = 0.03
    erp_lost_rate: float = 0.1
    """Share of the ERP's writes applied whose answer is then lost."""
    store_error_rate: float = 0.02
    store_lost_rate: float = 0.05
    duplicate_rate: float = 0.3
    """Shopify's webhooks delivered twice (and out of order)."""
    cancels: int = 2
    shipments: int = 6
    """With Acumatica and SAP: orders shipped there (their fulfilments go to the store under its
    faults); with SAP the clerk also invoices (B1) or bills (S/4HANA) each delivery."""
    lost_create_rate: float = 0.3
    """SAP: the rate at which an order creation the ERP applied loses its answer (the rest of its
    writes keep ``erp_lost_rate``)."""
    csrf_mismatch_rate: float = 0.1
    """S/4HANA: a valid CSRF token refused now and then (the sim's ``csrf_mismatch_rate``)."""
    per_minute: int | None = 240
    """QuickBooks: the sim's ceiling a minute, and the settings' ``rate_limits`` the same (None:
    QuickBooks' own 500, which the plugin holds by default)."""
    schedule_s: float = 5.0
    max_wait_s: float = 900.0

    @property
    def label(self) -> str:
        return f"{self.store} -> {self.erp}"

    def settings(self) -> dict[str, Any]:
        from sandbox.local.stack import local_settings

        found: dict[str, Any] = {**local_settings(self.store, self.erp), "retry_delay_cap_s": 2, "breaker_open_s": 2}
        if self.erp == "quickbooks" and self.per_minute:
            found["rate_limits"] = {"quickbooks": {"per_minute": self.per_minute, "concurrent": 10}}
        return found

    def erp_faults(self) -> dict[str, Any]:
        return {
            "error_rate": self.erp_error_rate,
            "throttle_rate": self.erp_throttle_rate,
            "retry_after_s": 1,
            "lost_response_rate": self.erp_lost_rate,
            "lost_response_mode": "drop",
            "lost_response_paths": {ORDER_CREATE[self.erp]: self.lost_create_rate} if self.erp in SAP else {},
            "seed": self.seed,
        }

    def store_faults(self) -> dict[str, Any]:
        return {
            "error_rate": self.store_error_rate,
            "lost_response_rate": self.store_lost_rate,
            "lost_response_mode": "504",
            "seed": self.seed + 1,
        }


@dataclass
class PairChaosReport:
    pair: str
    orders: int
    paid: int = 0
    cancelled: int = 0
    shipped: int = 0
    in_erp: int = 0
    duplicates: int = 0
    payments_doubled: int = 0
    fulfilments_doubled: int = 0
    invoiced: int = 0
    """SAP: deliveries the clerk invoiced (B1) or billed (S/4HANA)."""
    invoices_doubled: int = 0
    """Magento orders with more than one invoice made from the ERP's."""
    lost_creates: int = 0
    """SAP: order creations the ERP applied whose answer was lost (among ``lost_writes``)."""
    session: dict[str, Any] = field(default_factory=dict)
    """SAP: the sessions expired mid-run and what the connector did after (B1: 401s, sign-ins; S/4HANA:
    CSRF tokens expired, 403 Required answers, token fetches)."""
    notes: list[str] = field(default_factory=list)
    """What the run checked differently for this ERP (a flow it does not serve)."""
    faults: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per sim: the faults it injected, by kind (``lost_response``: writes applied, answer lost)."""
    lost_writes: dict[str, int] = field(default_factory=dict)
    """Per sim: the paths of writes whose answer was lost (their count)."""
    ceiling: str = ""
    peak_per_minute: int = 0
    refused_over_ceiling: int = 0
    shopify_throttled: int = 0
    webhooks: int = 0
    webhook_duplicates: int = 0
    retried: int = 0
    open_failures: list[str] = field(default_factory=list)
    """What the failures desk held when the faults stopped (retried by the operator): flow, id, reason."""
    quiet_writes: int = 0
    drain_s: float = 0.0
    total_s: float = 0.0
    problems: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def run(cfg: PairChaosConfig, workdir: Path, say: Callable[[str], None] = print) -> PairChaosReport:
    """One chaos run for ``cfg``'s pair on a fresh local stack under ``workdir``."""
    from cli.target import use_local
    from sandbox.local.stack import LocalStack, default_seed

    started = time.monotonic()
    report = PairChaosReport(cfg.label, cfg.orders)
    state_file = workdir / ".erpsync" / "local.json"
    stack = LocalStack(
        store=cfg.store,
        erp=cfg.erp,
        state_file=state_file,
        # the template's clock run faster: its 5-minute polls every ``schedule_s``, its hourly
        # sweeps twelve times that (a sweep each tick re-read a day of orders every 5 s)
        schedule_seconds=None,
        schedule_speedup=POLL_EVERY_S / cfg.schedule_s,
        seed=default_seed(),
        settings=cfg.settings(),
        moto_process=True,  # moto on a core of its own, as sandbox.chaos runs it
    )
    with _quiet(), stack:
        use_local(state_file)
        own = None
        if cfg.erp in (*SAP, "quickbooks"):  # the harness's requests carry their own User-Agent (told apart
            # in the sim's log: its reads of QuickBooks are not the connector's, nor under its ceiling)
            own = httpx.Client(base_url=stack.sim_urls[cfg.erp], timeout=30, headers={"User-Agent": HARNESS_AGENT})
        books = ErpSide(cfg.erp, stack.info, b1_http=own)
        env = _Pair(cfg, report, stack, workdir, StoreSide(cfg.store, stack.info), books, say)
        try:
            env.chaos()
        except Exception as exc:  # the harness itself failed: a problem, with where
            import traceback

            where = traceback.extract_tb(exc.__traceback__)[-1]
            report.problems.append(f"the run stopped: {type(exc).__name__}: {exc} ({where.name}:{where.lineno})")
    report.total_s = round(time.monotonic() - started, 1)
    return report


@dataclass
class _Pair:
    cfg: PairChaosConfig
    report: PairChaosReport
    stack: Any
    workdir: Path
    shop: StoreSide
    books: ErpSide
    say: Callable[[str], None]
    placed: list[Placed] = field(default_factory=list)
    cancelled: set[str] = field(default_factory=set)
    tracking: dict[str, str] = field(default_factory=dict)
    invoiced: set[str] = field(default_factory=set)
    expired_at: float | None = None
    """SAP: when (epoch seconds) the sessions or CSRF tokens were expired."""

    # -- the sims' control API (never faulted)
    def sim(self, name: str) -> str:
        return str(self.stack.sim_urls[name])

    def faults(self, name: str, body: dict[str, Any] | None) -> None:
        url = f"{self.sim(name)}/_sim/faults"
        (httpx.post(url, json=body, timeout=10) if body else httpx.delete(url, timeout=10)).raise_for_status()

    def requests(self, name: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = httpx.get(f"{self.sim(name)}/_sim/requests", timeout=60).json()["requests"]
        return rows

    # -- the run
    def chaos(self) -> None:
        cfg, report = self.cfg, self.report
        store, erp = cfg.store, cfg.erp
        if store == "shopify":
            _seed(self.sim(store), {"webhooks": {"duplicate_rate": cfg.duplicate_rate, "reorder": True}})
        if erp == "quickbooks" and cfg.per_minute:
            _seed(self.sim(erp), {"limits": {"per_minute": cfg.per_minute}})
        report.ceiling = f"{cfg.per_minute or 500}/min" if erp == "quickbooks" else ""
        self.note_scope()
        for name in (store, erp):
            httpx.delete(f"{self.sim(name)}/_sim/requests", timeout=10)
        self.faults(erp, cfg.erp_faults())
        self.sap_faults(on=True)
        self.say(f"[{cfg.label}] placing {cfg.orders} orders while {erp} misbehaves...")
        t0 = time.monotonic()
        first = (cfg.orders + 1) // 2 if erp in SAP else cfg.orders
        for n in range(first):
            self.placed.append(self.shop.place(n, paid=n % 3 != 2))
        if erp in SAP:  # the first half in the ERP (sessions and tokens held), then expired mid-run
            self.wait_bound("order", list(self.placed), t0)
            self.expire()
            for n in range(first, cfg.orders):
                self.placed.append(self.shop.place(n, paid=n % 3 != 2))
        report.paid = sum(o.paid for o in self.placed)
        for victim in [o for o in self.placed if not o.paid][: cfg.cancels]:
            self.shop.cancel(victim)
            self.cancelled.add(victim.number)
        report.cancelled = len(self.cancelled)
        self.faults(store, cfg.store_faults())
        self.wait_bound("order", [o for o in self.placed if o.number not in self.cancelled], t0)
        if erp == "acumatica" and cfg.shipments:
            self.ship(t0)
        if erp in SAP and cfg.shipments:
            self.ship_sap()
        report.drain_s = round(time.monotonic() - t0, 1)
        self.calm()
        self.retry()
        self.settle(t0)
        self.figures()
        self.check()
        self.quiet()

    def note_scope(self) -> None:
        """What this ERP serves of the checks (notes in the report)."""
        erp = self.cfg.erp
        if erp not in SAP:
            return
        if not self.books.pays:
            self.report.notes.append(f"payments into {erp} are not served (FI clearing): the paid check is skipped")
        cancels = self.cancels_served()
        self.report.notes.append(
            f"{erp} serves cancellations as a target: a store-cancelled order must be cancelled there or never made"
            if cancels
            else f"{erp} does not serve cancellations: a store-cancelled order must only not be doubled"
        )

    def cancels_served(self) -> bool:
        from erpsync.systems.registry import plugin

        return plugin(self.cfg.erp).can("cancellation", "target")

    def sap_faults(self, on: bool) -> None:
        """S/4HANA: its CSRF mismatch rate on (the gateway refuses a valid token now and then) or off."""
        if self.cfg.erp == "sap_s4":
            rate = self.cfg.csrf_mismatch_rate if on else 0.0
            body = {"csrf_mismatch_rate": rate, "seed": self.cfg.seed}
            httpx.post(f"{self.sim('sap_s4')}/_sim/config", json=body, timeout=10).raise_for_status()

    def expire(self) -> None:
        """Mid-run, half the orders in the ERP and the rest to come: B1 ends every session (the
        connector meets 401 code 301 and signs in again); S/4HANA expires every CSRF token (403
        Required, fetched again)."""
        self.report.session["expired_after"] = f"{len(self.placed)}/{self.cfg.orders} orders in {self.cfg.erp}"
        self.expired_at = time.time()
        what = "sessions/expire" if self.cfg.erp == "sap_b1" else "csrf/expire"
        answer = httpx.post(f"{self.sim(self.cfg.erp)}/_sim/{what}", timeout=10)
        answer.raise_for_status()
        key = "sessions_ended" if self.cfg.erp == "sap_b1" else "tokens_expired"
        self.report.session[key] = int(answer.json()["expired"])
        self.say(f"  {self.cfg.erp}: {what} ({answer.json()['expired']})")

    def wait_bound(self, entity: str, orders: list[Placed], t0: float) -> None:
        """Until every order is bound to its ERP document (the connector's own record of it)."""
        from erpsync.state.bindings import Bindings

        bindings = Bindings(os.environ["BINDINGS_TABLE"])
        ids = [_store_id(o) for o in orders]
        last = 0.0
        while True:
            missing = bindings.unbound(entity, self.cfg.store, ids, self.cfg.erp)
            if not missing:
                return
            now = time.monotonic()
            if now - t0 > self.cfg.max_wait_s:
                self.report.problems.append(f"{len(missing)} order(s) never reached {self.cfg.erp} under the faults")
                self.report.problems += [self.why_unbound(entity, id) for id in missing]
                return
            if now - last > 15:
                self.say(f"  {now - t0:4.0f}s: {len(ids) - len(missing)}/{len(ids)} orders in {self.cfg.erp}")
                last = now
            time.sleep(1.0)

    def why_unbound(self, entity: str, id: str) -> str:
        """What the connector's own records say of an order that never got bound: its binding, its
        open failure and the last rows of its sync log (the harness's verdict names the cause)."""
        from erpsync.state.bindings import Bindings
        from erpsync.state.failures import FailuresDesk, failure_key
        from erpsync.state.synclog import SyncLog

        store, erp = self.cfg.store, self.cfg.erp
        binding = Bindings(os.environ["BINDINGS_TABLE"]).get(entity, store, id, erp)
        failure = FailuresDesk(os.environ["BINDINGS_TABLE"]).get(failure_key("orders", store, id))
        rows = SyncLog(os.environ["SYNC_LOG_TABLE"]).history("orders", id)[-4:]
        logged = [f"{r.get('outcome')} {r.get('error_type', '')}: {str(r.get('message', ''))[:160]}" for r in rows]
        return (
            f"  {store} order {id}: binding {binding.status if binding else 'none'}"
            f" (attempts {binding.attempts if binding else 0}); open failure "
            f"{(failure.error_type + ': ' + failure.reason[:200]) if failure and failure.status == 'open' else 'none'};"
            f" sync log {logged or 'empty'}"
        )

    def ship(self, t0: float) -> None:
        """The warehouse ships some orders in Acumatica (the clerk's requests are spared the
        ERP's faults); their fulfilments reach the store under the store's faults."""
        self.faults(self.cfg.erp, None)
        ready = [o for o in self.placed if o.number not in self.cancelled][: self.cfg.shipments]
        for i, o in enumerate(ready):
            doc = self.books.document(o.number)
            if doc is None:
                self.report.problems.append(f"{o.number}: no Acumatica order to ship")
                continue
            self.tracking[o.number] = f"1ZCHAOS{i:05d}"
            self.books.ship(doc["so"], self.tracking[o.number])
        self.report.shipped = len(self.tracking)
        self.faults(self.cfg.erp, self.cfg.erp_faults())
        deadline = time.monotonic() + min(300.0, self.cfg.max_wait_s)
        while time.monotonic() < deadline and not self.fulfilled():
            time.sleep(2.0)

    def ship_sap(self) -> None:
        """The SAP clerk delivers some orders, the ERP's faults paused while it works: a B1 delivery
        with the tracking number, an S/4HANA outbound delivery with its bill of lading and goods issue;
        then invoices the delivery (B1: an A/R invoice drawing the order's paid down payment; S/4HANA:
        a billing document). In B1 a paid order is delivered once its payment is in: a payment that
        comes after the delivery goes on the customer's account (no down payment can be based on a
        closed order; the first run met it), which this run's paid check, reading the order's down
        payments, would not count. The tracking and Magento's invoices reach the store under the
        store's faults."""
        cfg = self.cfg
        ready = [o for o in self.placed if o.number not in self.cancelled]
        wanted = min(cfg.shipments, len(ready))
        deadline = time.monotonic() + min(240.0, cfg.max_wait_s)
        while len(self.tracking) < wanted and time.monotonic() < deadline:
            with self.erp_paused():
                for o in ready:
                    if o.number in self.tracking or len(self.tracking) >= wanted:
                        continue
                    doc = self.books.document(o.number)
                    if doc is None or (self.books.pays and o.paid and doc["open"] != 0):
                        continue  # not in the ERP, or its payment not yet
                    self.tracking[o.number] = f"1ZSAP{len(self.tracking):05d}"
                    self.books.ship_order(o.number, doc, self.tracking[o.number])
                    self.books.invoice(o.number)
                    self.invoiced.add(o.number)
            if len(self.tracking) < wanted:
                time.sleep(3.0)
        self.report.shipped, self.report.invoiced = len(self.tracking), len(self.invoiced)
        if len(self.tracking) < wanted:
            self.report.problems.append(
                f"only {len(self.tracking)} of {wanted} orders could be delivered in {cfg.erp}: the others' payments "
                "were not in it"
            )
        deadline = time.monotonic() + min(300.0, cfg.max_wait_s)
        while time.monotonic() < deadline and not (self.fulfilled() and self.billed()):
            time.sleep(2.0)

    @contextlib.contextmanager
    def erp_paused(self) -> Iterator[None]:
        """The ERP's faults (and S/4HANA's CSRF mismatches) off while the harness's clerk works."""
        self.faults(self.cfg.erp, None)
        self.sap_faults(on=False)
        try:
            yield
        finally:
            self.faults(self.cfg.erp, self.cfg.erp_faults())
            self.sap_faults(on=True)

    def billed(self) -> bool:
        """Every invoiced order has its one invoice in Magento (Shopify has none)."""
        if self.cfg.store != "magento":
            return True
        try:
            return all(len(self.shop.invoiced(o)) == 1 for o in self.placed if o.number in self.invoiced)
        except (httpx.HTTPError, RuntimeError):
            return False

    def fulfilled(self) -> bool:
        try:
            return all(self.shop.shipped(o) for o in self.placed if o.number in self.tracking)
        except (httpx.HTTPError, RuntimeError):  # the store's faults hit the harness's read too: ask again
            return False

    def calm(self) -> None:
        for name in (self.cfg.store, self.cfg.erp):
            self.faults(name, None)
        self.sap_faults(on=False)

    def retry(self) -> None:
        """``erpsync retry <flow> --yes`` for every flow with open failures, as an operator would."""
        for flow in FLOWS if self.cfg.erp in SAP else FLOWS[:-1]:
            listed = _cli(self.workdir, "failed", "--flow", flow, "--json")
            rows = [json.loads(line) for line in listed.stdout.splitlines() if line.startswith("{")]
            if not rows:
                continue
            self.say(f"  retrying {len(rows)} open failure(s) of {flow}: {Counter(r.get('error_type') for r in rows)}")
            self.report.open_failures += [f"{flow} {r.get('id')}: {str(r.get('reason'))[:200]}" for r in rows]
            done = _cli(self.workdir, "retry", flow, "--yes")
            self.report.retried += len(rows)
            if done.returncode not in (0, 1):
                self.report.problems.append(
                    f"erpsync retry {flow} failed (exit {done.returncode}): {done.stderr[-300:]}"
                )

    def settle(self, t0: float) -> None:
        """Without faults: until every order is in the ERP, paid ones paid, cancelled ones
        cancelled, shipments in the store (or the time is up)."""
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if not self.unsettled():
                return
            time.sleep(2.0)
        for problem in self.unsettled():
            self.report.problems.append(problem)

    def unsettled(self) -> list[str]:
        out = []
        docs = self.documents()
        cancels = self.cfg.erp not in SAP or self.cancels_served()
        for o in self.placed:
            found = docs.get(o.number, [])
            if o.number in self.cancelled:
                if cancels and found and not all(d["canceled"] for d in found):
                    out.append(f"{o.number}: cancelled in the store but not in {self.cfg.erp}")
                continue
            if not found:
                out.append(f"{o.number}: not in {self.cfg.erp}")
            elif o.paid and self.books.pays and any(d["open"] != 0 for d in found):
                out.append(f"{o.number}: paid in the store, {found[0]['open']} open in {self.cfg.erp}")
        if self.tracking and not self.fulfilled():
            out.append(f"shipments not in {self.cfg.store}")
        if self.invoiced and not self.billed():
            out.append(f"invoices not in {self.cfg.store}")
        return out

    def documents(self) -> dict[str, list[dict[str, Any]]]:
        """Store order number -> its ERP documents (more than one is a duplicate)."""
        found: dict[str, list[dict[str, Any]]] = {}
        if self.cfg.erp == "quickbooks":
            client = self.books.books
            for kind in ("SalesReceipt", "Invoice"):
                rows = client.query(f"select * from {kind} maxresults 1000").get(kind) or []  # noqa: S608
                for r in rows:
                    found.setdefault(str(r.get("DocNumber")), []).append(
                        {
                            "id": f"{kind}/{r['Id']}",
                            "total": D(str(r["TotalAmt"])),
                            "open": D(str(r.get("Balance") or 0)),
                            "canceled": "Voided" in str(r.get("PrivateNote") or "") and D(str(r["TotalAmt"])) == 0,
                        }
                    )
            return found
        if self.cfg.erp == "sap_b1":
            return self.b1_documents()
        if self.cfg.erp == "sap_s4":
            return self.s4_documents()
        for o in self.placed:
            rows = self.books.acumatica.orders_for(o.number)
            for so in rows:
                doc = self.books.document(o.number) or {}
                found.setdefault(o.number, []).append(
                    {
                        "id": f"{_v(so['OrderType'])} {_v(so['OrderNbr'])}",
                        "total": D(str(_v(so["OrderTotal"]))),
                        "open": doc.get("open", D(0)),
                        "canceled": _v(so["Status"]) == "Canceled",
                    }
                )
        return found

    def b1_documents(self) -> dict[str, list[dict[str, Any]]]:
        """B1 ``Orders`` by ``NumAtCard`` (cancelled ones too); ``open``: the order's total less its
        down payment invoices (by the same ``NumAtCard``) paid in full."""
        clerk = self.books.clerk
        paid: dict[str, Decimal] = {}
        for dp in clerk.rows("DownPayments", "DocEntry gt 0", "NumAtCard,DocTotal,DocumentStatus,Cancelled"):
            if dp.get("Cancelled") != "tYES" and dp.get("DocumentStatus") == "bost_Close":
                number = str(dp.get("NumAtCard"))
                paid[number] = paid.get(number, D(0)) + D(str(dp["DocTotal"]))
        found: dict[str, list[dict[str, Any]]] = {}
        for r in clerk.rows("Orders", "DocEntry gt 0", "DocEntry,DocNum,NumAtCard,DocTotal,Cancelled"):
            number = str(r.get("NumAtCard"))
            found.setdefault(number, []).append(
                {
                    "id": f"Orders({r['DocEntry']})",
                    "total": D(str(r["DocTotal"])),
                    "open": D(str(r["DocTotal"])) - paid.get(number, D(0)),
                    "canceled": r.get("Cancelled") == "tYES",
                }
            )
        return found

    def s4_documents(self) -> dict[str, list[dict[str, Any]]]:
        """S/4HANA ``A_SalesOrder`` by ``PurchaseOrderByCustomer`` (rejected ones too), page after
        page; ``total`` the net value (SAP determines the tax: compared with the store's total less
        its tax); ``open`` is not known (payments are not posted to S/4HANA)."""
        from sandbox.sims.sap_s4 import SALES

        select = "SalesOrder,PurchaseOrderByCustomer,TotalNetAmount,OverallSDDocumentRejectionSts"
        found: dict[str, list[dict[str, Any]]] = {}
        skip = 0
        while True:
            d = self.books.s4.request("GET", SALES, "A_SalesOrder", params={"$select": select, "$skiptoken": str(skip)})
            for r in d["results"]:
                found.setdefault(str(r["PurchaseOrderByCustomer"]), []).append(
                    {
                        "id": f"A_SalesOrder('{r['SalesOrder']}')",
                        "total": D(str(r["TotalNetAmount"])),
                        "open": D(str(r["TotalNetAmount"])),
                        "canceled": r.get("OverallSDDocumentRejectionSts") == "C",
                        "net": True,
                    }
                )
            skip += len(d["results"])
            if not d.get("__next") or not d["results"]:
                return found

    def figures(self) -> None:
        report, cfg = self.report, self.cfg
        for name in (cfg.store, cfg.erp):
            rows = self.requests(name)
            report.faults[name] = dict(Counter(str(r["fault"]) for r in rows if r.get("fault")))
            report.lost_writes[name] = sum(1 for r in rows if r.get("fault") == "lost_response")
            if name == cfg.erp and name in SAP:
                self.sap_figures(rows)
            if name == "quickbooks":
                report.refused_over_ceiling = sum(1 for r in rows if r["status"] == 429 and not r.get("fault"))
                ours = [r["received_at"] for r in rows if r.get("agent") != HARNESS_AGENT]
                report.peak_per_minute = max_in_window(ours, 60.0)[0]
        if cfg.store == "shopify":
            costs = httpx.get(f"{self.sim('shopify')}/_sim/costs", timeout=30).json()
            report.shopify_throttled = sum(1 for q in costs["queries"] if q.get("throttled"))
            hooks = httpx.get(f"{self.sim('shopify')}/_sim/webhooks", timeout=30).json()["deliveries"]
            report.webhooks = len(hooks)
            ids = Counter(d.get("webhook_id") or d.get("id") for d in hooks)
            report.webhook_duplicates = sum(n - 1 for n in ids.values() if n > 1)

    def sap_figures(self, rows: list[dict[str, Any]]) -> None:
        """The lost order creations, and what the connector's requests met after the expiry."""
        erp, report = self.cfg.erp, self.report
        report.lost_creates = sum(
            1
            for r in rows
            if r.get("fault") == "lost_response"
            and r["method"] == "POST"
            and re.fullmatch(ORDER_CREATE[erp], str(r["path"]))
            and (r.get("applied_status") or 500) < 300
        )
        ours = [r for r in rows if r.get("agent") != HARNESS_AGENT]
        after = [r for r in ours if self.expired_at is not None and r["received_at"] >= self.expired_at]
        if erp == "sap_b1":
            report.session["refused_401_after"] = sum(1 for r in after if r["status"] == 401)
            report.session["sign_ins_after"] = sum(
                1 for r in after if r["method"] == "POST" and str(r["path"]).endswith("/Login") and r["status"] < 300
            )
        else:
            report.session["csrf_refused"] = sum(1 for r in ours if r["status"] == 403)
            report.session["csrf_refused_after"] = sum(1 for r in after if r["status"] == 403)
            report.session["token_fetches_after"] = sum(1 for r in after if r["method"] == "HEAD")
            report.session["writes_after"] = sum(1 for r in after if r["method"] in ("POST", "PATCH"))

    def check(self) -> None:
        report, cfg = self.report, self.cfg
        docs = self.documents()
        for o in self.placed:
            found = docs.get(o.number, [])
            report.in_erp += bool(found)
            if len(found) > 1:
                report.duplicates += len(found) - 1
                report.problems.append(f"{o.number}: {len(found)} documents in {cfg.erp}: {[d['id'] for d in found]}")
            expected = o.total - o.tax if found and found[0].get("net") else o.total
            if found and not found[0]["canceled"] and found[0]["total"] != expected:
                net = " (net of its tax)" if expected != o.total else ""
                report.problems.append(f"{o.number}: {expected}{net} in the store, {found[0]['total']} in {cfg.erp}")
        report.payments_doubled = self.doubled_payments()
        if report.payments_doubled:
            report.problems.append(f"{report.payments_doubled} order(s) paid more than once in {cfg.erp}")
        for o in self.placed:
            if o.number in self.tracking:
                got = self.shop.shipped(o)
                if got != [self.tracking[o.number]]:
                    report.fulfilments_doubled += len(got) > 1
                    report.problems.append(
                        f"{o.number}: tracking {got} in {cfg.store}, shipped once as {self.tracking[o.number]}"
                    )
        if report.refused_over_ceiling:
            report.problems.append(
                f"{cfg.erp} refused {report.refused_over_ceiling} request(s) over its ceiling ({report.ceiling})"
            )
        if cfg.erp == "quickbooks" and cfg.per_minute and report.peak_per_minute > cfg.per_minute:
            report.problems.append(f"{report.peak_per_minute} requests in one minute, over {cfg.per_minute}")
        if cfg.erp_lost_rate and not report.lost_writes.get(cfg.erp):
            report.problems.append(f"no write to {cfg.erp} lost its answer: the lost-answer path was not taken")
        if cfg.erp in SAP:
            self.check_sap()

    def check_sap(self) -> None:
        report, cfg, session = self.report, self.cfg, self.report.session
        if cfg.lost_create_rate and not report.lost_creates:
            report.problems.append(f"no order creation in {cfg.erp} lost its answer: that path was not taken")
        if cfg.store == "magento":
            for o in self.placed:
                if o.number in self.invoiced and len(got := self.shop.invoiced(o)) != 1:
                    report.invoices_doubled += len(got) > 1
                    report.problems.append(f"{o.number}: {len(got)} invoices in magento, invoiced once in {cfg.erp}")
        if self.expired_at is None:
            report.problems.append(f"{cfg.erp}: nothing was expired mid-run")
        elif cfg.erp == "sap_b1" and not (session.get("refused_401_after") and session.get("sign_ins_after")):
            report.problems.append(
                f"sap_b1: its sessions ended, the connector met no 401 or never signed in again: {session}"
            )
        elif cfg.erp == "sap_s4" and session.get("writes_after") and not session.get("token_fetches_after"):
            # every token died: a write after it carries a token fetched after it (or met a 403)
            report.problems.append(f"sap_s4: writes after the CSRF tokens expired, yet no token fetched: {session}")

    def doubled_payments(self) -> int:
        """Orders with more than one payment in the ERP (B1: two down payment invoices of one order,
        or two incoming payments applied to one down payment; S/4HANA takes no payments: 0)."""
        if self.cfg.erp == "sap_s4":
            return 0
        if self.cfg.erp == "sap_b1":
            return self.b1_doubled_payments()
        if self.cfg.erp == "quickbooks":
            client = self.books.books
            payments = client.query("select * from Payment maxresults 1000").get("Payment") or []
            per_invoice = Counter(
                str(link["TxnId"])
                for p in payments
                if D(str(p.get("TotalAmt") or 0)) > 0
                for line in p.get("Line") or []
                for link in line.get("LinkedTxn") or []
                if link.get("TxnType") == "Invoice"
            )
            return sum(1 for n in per_invoice.values() if n > 1)
        rows = list(self.books.acumatica.get("Payment", "$expand=OrdersToApply"))
        per_order = Counter(
            str(_v(a.get("OrderNbr")))
            for p in rows
            if _v(p.get("Status")) not in ("Voided", "Canceled")
            for a in p.get("OrdersToApply") or []
        )
        return sum(1 for n in per_order.values() if n > 1)

    def b1_doubled_payments(self) -> int:
        clerk = self.books.clerk
        order_of: dict[int, int] = {}
        for dp in clerk.rows("DownPayments", "DocEntry gt 0", "DocEntry,Cancelled,DocumentLines"):
            bases = {ln.get("BaseEntry") for ln in dp.get("DocumentLines") or [] if ln.get("BaseType") == 17}
            if dp.get("Cancelled") != "tYES" and bases:
                order_of[int(dp["DocEntry"])] = int(min(bases))
        per_dp = Counter(
            int(row["DocEntry"])
            for pay in clerk.rows("IncomingPayments", "DocEntry gt 0", "DocEntry,Cancelled,PaymentInvoices")
            if pay.get("Cancelled") != "tYES"
            for row in pay.get("PaymentInvoices") or []
            if row.get("InvoiceType") == "it_DownPayment"
        )
        per_order = Counter(order_of.values())
        doubled = {order for order, n in per_order.items() if n > 1}
        doubled |= {order_of[dp] for dp, n in per_dp.items() if n > 1 and dp in order_of}
        return len(doubled)

    def idle(self, timeout_s: float = 120.0) -> None:
        """Until no work queue holds a message (visible, in flight or delayed): the retries are done
        (a dead-letter queue keeps what failed for good: the failures desk shows it)."""
        sqs = self.stack.client("sqs")
        work = {lid: url for lid, url in self.stack.queues.items() if lid not in self.stack.dlqs}
        deadline = time.monotonic() + timeout_s
        while held := messages_left(sqs, work):
            if time.monotonic() > deadline:
                break
            time.sleep(1.0)
        else:
            return
        self.report.problems.append(
            f"{timeout_s:.0f} s after everything settled the queues still held messages: {held}"
        )

    def quiet(self) -> None:
        """A few poll rounds once every queue is empty: no write on either side."""
        self.idle()
        for name in (self.cfg.store, self.cfg.erp):
            httpx.delete(f"{self.sim(name)}/_sim/requests", timeout=10)
        time.sleep(max(8.0, 4 * self.cfg.schedule_s))
        writes = [
            f"{name} {r['method']} {r['path']}"
            for name in (self.cfg.store, self.cfg.erp)
            for r in self.requests(name)
            if r["method"] in ("POST", "PUT", "PATCH", "DELETE") and not _is_read(name, r)
        ]
        self.report.quiet_writes = len(writes)
        if writes:
            self.report.problems.append(f"{len(writes)} write(s) once everything had settled: {writes[:5]}")


def _is_read(sim: str, row: dict[str, Any]) -> bool:
    """A POST that only reads: Shopify's GraphQL queries (the sim logs no operation, so every
    GraphQL POST counts as a read here; its writes are checked by their results), QuickBooks'
    queries, and sign-ins."""
    path = str(row["path"])
    if sim == "shopify":
        return path.endswith("/graphql.json") or path.endswith("/access_token")
    if sim == "quickbooks":
        return path.endswith("/query") or path.endswith("/tokens/bearer")
    return "/auth/" in path or path.lower().endswith("/login")


def _store_id(o: Placed) -> str:
    """The store id bindings use: Magento's entity id, Shopify's legacy numeric id."""
    return o.ref.rsplit("/", 1)[-1]


def _v(value: Any) -> Any:
    return value.get("value") if isinstance(value, dict) else value


def _seed(url: str, body: dict[str, Any]) -> None:
    httpx.post(f"{url}/_sim/seed", json=body, timeout=30).raise_for_status()


def _cli(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``erpsync ARGS`` as an operator runs it (the state file under ``workdir``)."""
    cmd = [sys.executable, "-m", "cli", *args]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), *sys.path])}
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=600, check=False, env=env)  # noqa: S603


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", choices=("magento", "shopify"), default=None, help="default: every pair")
    p.add_argument("--erp", choices=("acumatica", "quickbooks", *SAP), default=None)
    p.add_argument("--orders", type=int, default=PairChaosConfig.orders)
    p.add_argument("--json", type=Path, default=None, help="also write the reports as JSON")
    args = p.parse_args(argv)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    pairs = [(s, e) for s, e in PAIRS if args.store in (None, s) and args.erp in (None, e)]
    if args.store and args.erp and (args.store, args.erp) not in pairs:
        pairs = [(args.store, args.erp)]
    reports = []
    for store, erp in pairs:
        with tempfile.TemporaryDirectory(prefix="erpsync-pair-chaos-") as tmp:
            report = run(PairChaosConfig(store, erp, orders=args.orders), Path(tmp))
        reports.append(report)
        print(json.dumps(report.as_json(), default=str, indent=1))
    if args.json:
        args.json.write_text(json.dumps([r.as_json() for r in reports], default=str, indent=1))
    return 1 if any(r.problems for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
