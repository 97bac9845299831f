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
   fulfilments reach Shopify under the store's faults;
4. the faults stop; the operator retries what the failures desk holds (``erpsync retry``);
5. checked: every order in the ERP exactly once and to the cent (a cancelled one cancelled or never
   made), every paid order paid once, every shipment once with its tracking number, no ceiling
   passed (no 429 the sim gave on its own, Shopify's cost bucket never refused a query as too
   expensive), the lost-answer path taken for real (writes applied whose answer was lost), and
   a quiet spell of polls writing nothing more on either side.

The report lists what did not hold (``problems``); ``main`` exits 1 when any did.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from sandbox.chaos import _quiet, max_in_window, messages_left
from sandbox.pair_demo import ErpSide, Placed, StoreSide

log = logging.getLogger(__name__)
D = Decimal
PAIRS = (("shopify", "acumatica"), ("magento", "quickbooks"), ("shopify", "quickbooks"))
"""Every pair but Magento -> Acumatica, which ``sandbox.chaos`` runs at length."""
FLOWS = ("orders", "payments", "cancellations", "shipments")
"""The flows whose failures the operator retries (those the pair has)."""
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
    """With Acumatica: orders shipped there (their fulfilments go to the store under its faults)."""
    per_minute: int | None = 240
    """QuickBooks: the sim's ceiling a minute, and the settings' ``rate_limits`` the same (None:
    QuickBooks' own 500, which the plugin holds by default)."""
    schedule_s: float = 5.0
    max_wait_s: float = 900.0

    @property
    def label(self) -> str:
        return f"{self.store} -> {self.erp}"

    def settings(self) -> dict[str, Any]:
        from sandbox.local.stack import LOCAL_SETTINGS

        found: dict[str, Any] = {**LOCAL_SETTINGS, "retry_delay_cap_s": 2, "breaker_open_s": 2}
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
        env = _Pair(cfg, report, stack, workdir, StoreSide(cfg.store, stack.info), ErpSide(cfg.erp, stack.info), say)
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
        for name in (store, erp):
            httpx.delete(f"{self.sim(name)}/_sim/requests", timeout=10)
        self.faults(erp, cfg.erp_faults())
        self.say(f"[{cfg.label}] placing {cfg.orders} orders while {erp} misbehaves...")
        t0 = time.monotonic()
        for n in range(cfg.orders):
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
        report.drain_s = round(time.monotonic() - t0, 1)
        self.calm()
        self.retry()
        self.settle(t0)
        self.figures()
        self.check()
        self.quiet()

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
                return
            if now - last > 15:
                self.say(f"  {now - t0:4.0f}s: {len(ids) - len(missing)}/{len(ids)} orders in {self.cfg.erp}")
                last = now
            time.sleep(1.0)

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

    def fulfilled(self) -> bool:
        try:
            return all(self.shop.shipped(o) for o in self.placed if o.number in self.tracking)
        except httpx.HTTPError:  # the store's faults hit the harness's read too: ask again
            return False

    def calm(self) -> None:
        for name in (self.cfg.store, self.cfg.erp):
            self.faults(name, None)

    def retry(self) -> None:
        """``erpsync retry <flow> --yes`` for every flow with open failures, as an operator would."""
        for flow in FLOWS:
            listed = _cli(self.workdir, "failed", "--flow", flow, "--json")
            rows = [json.loads(line) for line in listed.stdout.splitlines() if line.startswith("{")]
            if not rows:
                continue
            self.say(f"  retrying {len(rows)} open failure(s) of {flow}: {Counter(r.get('error_type') for r in rows)}")
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
        for o in self.placed:
            found = docs.get(o.number, [])
            if o.number in self.cancelled:
                if found and not all(d["canceled"] for d in found):
                    out.append(f"{o.number}: cancelled in the store but not in {self.cfg.erp}")
                continue
            if not found:
                out.append(f"{o.number}: not in {self.cfg.erp}")
            elif o.paid and any(d["open"] != 0 for d in found):
                out.append(f"{o.number}: paid in the store, {found[0]['open']} open in {self.cfg.erp}")
        if self.tracking and not self.fulfilled():
            out.append(f"shipments not in {self.cfg.store}")
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

    def figures(self) -> None:
        report, cfg = self.report, self.cfg
        for name in (cfg.store, cfg.erp):
            rows = self.requests(name)
            report.faults[name] = dict(Counter(str(r["fault"]) for r in rows if r.get("fault")))
            report.lost_writes[name] = sum(1 for r in rows if r.get("fault") == "lost_response")
            if name == "quickbooks":
                report.refused_over_ceiling = sum(1 for r in rows if r["status"] == 429 and not r.get("fault"))
                report.peak_per_minute = max_in_window([r["received_at"] for r in rows], 60.0)[0]
        if cfg.store == "shopify":
            costs = httpx.get(f"{self.sim('shopify')}/_sim/costs", timeout=30).json()
            report.shopify_throttled = sum(1 for q in costs["queries"] if q.get("throttled"))
            hooks = httpx.get(f"{self.sim('shopify')}/_sim/webhooks", timeout=30).json()["deliveries"]
            report.webhooks = len(hooks)
            ids = Counter(d.get("webhook_id") or d.get("id") for d in hooks)
            report.webhook_duplicates = sum(n - 1 for n in ids.values() if n > 1)

    def check(self) -> None:
        report, cfg = self.report, self.cfg
        docs = self.documents()
        for o in self.placed:
            found = docs.get(o.number, [])
            report.in_erp += bool(found)
            if len(found) > 1:
                report.duplicates += len(found) - 1
                report.problems.append(f"{o.number}: {len(found)} documents in {cfg.erp}: {[d['id'] for d in found]}")
            if found and not found[0]["canceled"] and found[0]["total"] != o.total:
                report.problems.append(f"{o.number}: {o.total} in the store, {found[0]['total']} in {cfg.erp}")
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

    def doubled_payments(self) -> int:
        """Orders with more than one payment in the ERP."""
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
    return "/auth/" in path or path.endswith("/login")


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
    p.add_argument("--erp", choices=("acumatica", "quickbooks"), default=None)
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
