"""``python -m bench.chaos [--orders 500] [--default-orders 150] [--out docs/RELIABILITY.md]``:
the chaos runs (issues 3, 8 and 12).

Runs ``sandbox.chaos`` twice on fresh local stacks and rewrites docs/RELIABILITY.md with the
figures, the machine and the commit:

1. tuned settings (rate limits, short retry delays), the ERP hanging 2 s before a 504: orders and
   customers both ways, shipments and invoices, lost answers on every flow's writes, the ceilings;
2. the product's default settings and template defaults, the sims' default hang of 30 s and an ERP
   that takes 1 s per request with 4 licence seats: no invocation past its timeout, and once the
   faults stop the backlog drains at no less than 0.8 of what the ERP's ceiling allows;

then ``sandbox.pair_chaos`` once for each other pair (``PAIRS``: Shopify -> Acumatica, Magento and
Shopify -> QuickBooks, Magento and Shopify -> SAP Business One and -> S/4HANA; ``--pair-orders``
each, ``--only pairs`` for these alone).

Exits 1 when a guarantee did not hold (the problems are listed).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.common import git_commit
from sandbox.chaos import ChaosConfig, ChaosReport, run
from sandbox.pair_chaos import PAIRS, PairChaosConfig, PairChaosReport
from sandbox.pair_chaos import run as pair_run

ROOT = Path(__file__).resolve().parents[1]


def tuned_config(orders: int = 500, seed: int = ChaosConfig.seed) -> ChaosConfig:
    return ChaosConfig(orders=orders, seed=seed, containers=4, erp_customers=30, max_run_s=3600.0)


def default_config(orders: int = 150, seed: int = ChaosConfig.seed) -> ChaosConfig:
    return ChaosConfig(
        orders=orders,
        seed=seed + 1,
        tuned=False,
        timeout_s=30.0,
        latency_ms=1000.0,
        erp_seats=4,
        measure_drain=True,
        outage_after_s=300.0,
        drain_max_s=300.0,
        customers=15,
        new_accounts=10,
        account_edits=5,
        erp_customers=4,
        erp_edits=2,
        ship_every=5,
        max_run_s=3600.0,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--orders", type=int, default=500, help="orders of the tuned run")
    p.add_argument("--default-orders", type=int, default=150, help="orders of the default-settings run")
    p.add_argument("--only", choices=("tuned", "default", "pairs"), default=None)
    p.add_argument(
        "--pair-orders", type=int, default=40, help="orders of each other pair's run (sandbox/pair_chaos.py)"
    )
    p.add_argument("--seed", type=int, default=ChaosConfig.seed)
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "RELIABILITY.md")
    p.add_argument("--json", type=Path, default=None, help="also write the raw reports as JSON")
    p.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="run in this folder (one subfolder per run) and keep it: the local stack's state, both sims' "
        "request logs and the seat counts (default: a temporary folder, removed)",
    )
    args = p.parse_args(argv)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    configs = []
    if args.only in (None, "tuned"):
        configs.append(tuned_config(args.orders, args.seed))
    if args.only in (None, "default"):
        configs.append(default_config(args.default_orders, args.seed))
    t0 = time.monotonic()

    def say(msg: str) -> None:
        print(f"[{time.monotonic() - t0:6.1f}s] {msg}", flush=True)

    reports = []
    for cfg in configs:
        if args.keep:
            workdir = args.keep / cfg.label.replace(" ", "-")
            workdir.mkdir(parents=True, exist_ok=True)
            reports.append(run(cfg, workdir, say=say))
        else:
            with tempfile.TemporaryDirectory(prefix="erpsync-chaos-") as tmp:
                reports.append(run(cfg, Path(tmp), say=say))
        for problem in reports[-1].problems:
            say(f"PROBLEM ({cfg.label}): {problem}")
    pairs: list[PairChaosReport] = []
    if args.only in (None, "pairs") and args.pair_orders:
        for store, erp in PAIRS:
            say(f"[{store} -> {erp}] {args.pair_orders} orders")
            with tempfile.TemporaryDirectory(prefix="erpsync-pair-chaos-") as tmp:
                pairs.append(pair_run(PairChaosConfig(store, erp, orders=args.pair_orders), Path(tmp), say=say))
            for problem in pairs[-1].problems:
                say(f"PROBLEM ({pairs[-1].pair}): {problem}")
    if args.json:
        raw = [r.as_json() for r in reports] + [r.as_json() for r in pairs]
        args.json.write_text(json.dumps(raw, indent=2, default=str) + "\n")
    if args.only == "pairs" and args.out.exists():  # the other runs' sections stay as they were
        args.out.write_text(splice_pairs(args.out.read_text(), pairs))
    else:
        args.out.write_text(render(reports, pairs))
    say(f"wrote {args.out}")
    problems = [f"{r.config.label}: {p}" for r in reports for p in r.problems]
    problems += [f"{r.pair}: {p}" for r in pairs for p in r.problems]
    for problem in problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    return 1 if problems else 0


def splice_pairs(doc: str, pairs: list[PairChaosReport]) -> str:
    """``doc`` (docs/RELIABILITY.md) with its pairs section replaced by these runs' (``--only pairs``),
    put before the checks when it has none."""
    lines = doc.splitlines()
    runs = [i for i, line in enumerate(lines) if line.startswith("## Run ")]
    start = next((i for i in runs if "every other pair" in lines[i]), None)
    checks = lines.index(CHECKS[0])
    if start is None:
        start = end = checks
    else:
        end = next((i for i in runs if i > start), checks)
    number = len([i for i in runs if i < start]) + 1
    stamp = f"- pairs run: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {git_commit(ROOT)} (`--only pairs`)"
    return "\n".join([*lines[:start], *_pairs_section(number, pairs), stamp, "", *lines[end:]]) + "\n"


def _pairs_section(n: int, pairs: list[PairChaosReport]) -> list[str]:
    """The other pairs' runs (``sandbox/pair_chaos.py``), one row each."""
    lines = [
        f"## Run {n}: every other pair ({', '.join(r.pair for r in pairs)})",
        "",
        "`sandbox/pair_chaos.py` (its docstring has the whole run; `tests/e2e/test_pair_chaos.py` is the small "
        "version): the ERP answers 5xx and 429 and loses the answers of writes it applied (the connection "
        "dropped) from the start; the orders are placed in the store through its API (a third unpaid, two of those "
        "cancelled at once; Shopify's webhooks sometimes twice and out of order); then the store fails requests and "
        "loses answers too; with Acumatica the warehouse ships some orders and their fulfilments go to Shopify under "
        "the store's faults. Then the faults stop, `erpsync retry` runs for each flow with open failures, and both "
        "sides are read. QuickBooks' sim refuses requests over a per-minute ceiling lowered so the run reaches it, "
        "and the settings' `rate_limits` hold the same ceiling across workers.",
        "",
        "| pair | orders (paid, cancelled, shipped) | in the ERP | duplicates | paid twice | faults injected "
        "(ERP; store) | writes whose answer was lost (ERP; store) | ceiling: peak a minute, refused over it | "
        "Shopify: webhooks (twice), THROTTLED | retried by the operator | writes once settled | time | problems |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in pairs:
        store, _, erp = r.pair.partition(" -> ")
        ceiling = f"{r.ceiling}: {r.peak_per_minute}, {r.refused_over_ceiling}" if r.ceiling else "-"
        shopify = f"{r.webhooks} ({r.webhook_duplicates}), {r.shopify_throttled}" if store == "shopify" else "-"
        lines.append(
            f"| {r.pair} | {r.orders} ({r.paid}, {r.cancelled}, {r.shipped}) | {r.in_erp} | {r.duplicates} | "
            f"{r.payments_doubled} | {_kinds(r.faults.get(erp, {}))}; {_kinds(r.faults.get(store, {}))} | "
            f"{r.lost_writes.get(erp, 0)}; {r.lost_writes.get(store, 0)} | {ceiling} | {shopify} | {r.retried} | "
            f"{r.quiet_writes} | {r.total_s:.0f} s | {'; '.join(r.problems) or 'none'} |"
        )
    return [*lines, ""]


def _kinds(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])) or "none"


def _lost(r: ChaosReport) -> str:
    parts = []
    for flow, writes in r.writes_by_flow.items():
        modes = r.lost_by_flow.get(flow, {})
        lost = sum(modes.values())
        detail = ", ".join(f"{m} {n}" for m, n in sorted(modes.items()))
        parts.append(f"{flow} {lost} of {writes}" + (f" ({detail})" if detail else ""))
    return "; ".join(parts) or "none"


def _invocations(r: ChaosReport) -> str:
    rows = [
        f"{lid.removesuffix('Function')} {longest:g} s of {timeout:g} s ({n})"
        for lid, (longest, timeout, n) in sorted(r.invocation_max.items())
    ]
    return "; ".join(rows)


def _run_section(n: int, r: ChaosReport) -> list[str]:
    c = r.config
    faults_total = sum(r.faults.values())
    store_total = sum(r.store_faults.values())
    cust = r.customers
    if c.tuned:
        settings = (
            f'`rate_limits.acumatica = {{"per_minute": {c.per_minute}, "concurrent": {c.concurrent}}}`, '
            "`retry_delay_cap_s` 2, `breaker_open_s` 2, `tax_id`; the Acumatica sim's licence allows "
            f"{c.sim_max_concurrent()} requests at once (the connector's {c.concurrent}, one for the harness's clerk)"
        )
    else:
        settings = (
            "the product's defaults (only `tax_id` set: no rate limits, `batch_parallelism` 5, "
            "`retry_delay_cap_s` 900, `breaker_open_s` 15) and the template's (FlowTimeout "
            f"{c.flow_timeout or 60} s, FlowConcurrency 5); the Acumatica sim takes {c.latency_ms / 1000:g} s per "
            f"request and allows {c.sim_max_concurrent()} at once (429 beyond)"
        )
    lines = [
        f"## Run {n}: {c.label}" + (", the sims' default 30 s hang" if c.timeout_s >= 30 else ""),
        "",
        f"{r.orders} orders were placed in the Magento sim on the local stack (moto, both sims, the webhook API, the "
        f"SQS pollers and the schedules of template.yaml, schedules {c.schedule_speedup:g}x faster; the orders flow "
        f"ran {r.containers.get('orders pollers', 1)} batches at once, as SQS MaximumConcurrency lets Lambda). "
        f"Settings: {settings}.",
        "",
        f"While the orders went in, {cust.get('new account', 0)} Magento accounts were created "
        f"(`POST /V1/customers`) and {cust.get('account edit', 0)} edited (name and phone), each with its "
        "`observer.customer_save_after` webhook delivered twice; "
        f"{cust.get('erp customer', 0)} customers were created in Acumatica (`PUT Customer`), "
        f"{cust.get('erp edit', 0)} of them edited there later, and {cust.get('erp edit of a store account', 0)} "
        "customers that came from Magento were edited in Acumatica (phone and city) once they were there. "
        f"The orders belong to {c.customers} Magento accounts made before the chaos (every fifth order a guest's).",
        "",
        f"The Acumatica sim failed {c.error_rate:.0%} of requests with 500, throttled {c.throttle_rate:.0%} with 429 "
        f"and `Retry-After: {c.retry_after_s:g}`, held {c.timeout_rate:.0%} for {c.timeout_s:g} s before answering "
        f"504, and went fully down (503) for {r.outage_s:g} s once {c.outage_at:.0%} of the good orders were in. "
        f"Both sims lost the answer to {c.lost_response_rate:.0%} of the writes after applying them: Acumatica "
        "answering 504 and Magento dropping the connection until the outage ended, then the other way round"
        + (" (the shipments and invoices phase swapped once more half-way)" if c.ship_every else "")
        + ". Every webhook was delivered twice, shuffled (orders: half as the very same delivery, half as two "
        f"different events); the schedules' polls found the changes as well. One order in {c.bad_every} named a "
        "SKU that Acumatica does not have."
        + (
            f" After the orders drained, one good order in {c.ship_every} was shipped in Acumatica "
            f"(and one in {c.invoice_every} of those invoiced and released) on a quiet ERP; then the shipments "
            "and invoices flows brought them to Magento under the same faults."
            if c.ship_every
            else ""
        )
        + (
            " Each order invoiced that way was then captured in Magento, and the payments flow paid it in "
            f"Acumatica; one in {c.refund_every} of them was refunded in part in Magento (one unit of its first "
            "line and its shipping) and the credit-memos flow brought each credit memo to Acumatica, released and "
            "paid out by a refund: both under the same faults. At the end `erpsync reconcile` compared the books; "
            "then a clerk raised the price of a line of an open order in Acumatica and reconcile ran again."
            if c.ship_every and c.invoice_every
            else ""
        )
        + (
            " When the outage ended every fault stopped (the ERP kept its latency and licence limit) and the "
            "backlog's drain was measured."
            if c.measure_drain
            else ""
        )
        + f" Fault dice seeded ({c.seed}).",
        "",
        "| | |",
        "|---|---|",
        f"| verdict | {'**every guarantee held**' if not r.problems else '**FAILED**'} |",
        f"| orders | {r.orders} ({r.good} good, {r.bad} naming an unknown SKU) |",
        f"| webhook deliveries | {r.deliveries} ({r.duplicate_deliveries} duplicates; "
        f"{r.dropped_at_ingress} dropped at ingress as already seen, the rest skipped by the workers) |",
        f"| requests the connector sent Acumatica / Magento | {r.connector_requests} / {r.store_requests} |",
        f"| faults Acumatica injected | {faults_total}: {_kinds(r.faults)} |",
        f"| faults Magento injected | {store_total}: {_kinds(r.store_faults)} |",
        f"| writes whose answer was lost, by flow (of all its writes) | {_lost(r)} |",
        f"| retries (sync-log rows `retrying`, by error type) | {sum(r.retries.values())}: {_kinds(r.retries)} |",
        f"| time for the orders (first placed to every good order in Acumatica, every bad one parked) "
        f"| {r.drain_s:g} s |",
        f"| failures desk after the chaos | {r.parked_messages} open item(s) for {r.parked_bad} bad order(s), all "
        f"`unknown_item` naming the SKU; at most {r.failed_rows_per_bad} failed sync-log row(s) per bad order |",
        f"| failed, then resynced by `erpsync resync orders --failed` | {r.resynced} "
        f"(CLI: {_kinds(r.resync_counts)}; {r.resync_passes} pass(es), exit {r.resync_exit}) |",
        f"| customers at the end | {cust.get('in Magento', 0)} in Magento, {cust.get('in Acumatica', 0)} in Acumatica "
        f"({cust.get('guests (Acumatica only)', 0)} of them made for guest checkouts, which get no account); "
        f"in step {r.customers_settle_s:g} s after the documents |",
        f"| shipments / invoices brought to Magento | {r.shipped} / {r.invoiced} in {r.documents_s:g} s |",
        f"| payments / credit memos (with their refunds) in Acumatica | {r.paid} / {r.refunds} in {r.money_s:g} s |",
        f"| `erpsync reconcile` after the chaos | {r.reconciled or '-'} |",
        f"| after a clerk changed order {r.hand_change.get('order', '-')}'s total in Acumatica | reconcile named it: "
        f"store {r.hand_change.get('store', '-')}, ERP {r.hand_change.get('erp', '-')} |",
        f"| writes in two further cycles of both customer flows | **{r.quiet_writes}** ({_kinds(r.quiet_outcomes)}) |",
        f"| function invocations | {r.invocations}; **{len(r.overruns)}** past their timeout |",
        f"| longest invocation per function (of its timeout; invocations) | {_invocations(r)} |",
    ]
    if c.tuned:
        lines += [
            f"| most requests in any 60 s | **{r.max_per_window}** (ceiling {c.per_minute}) |",
            f"| peak concurrent requests (from the sim's log) | **{r.peak_concurrency}** (ceiling {c.concurrent}) |",
        ]
    if c.measure_drain and r.drain.get("ratio") is not None:
        d = r.drain
        lines += [
            f"| backlog when the faults stopped | {d['backlog']} good order(s) not yet in Acumatica; "
            f"{d['arrived']} came in during the measurement |",
            f"| drain rate ({d['window']}) | **{d['orders_per_min']:g} orders/min**, "
            f"{d['requests_per_order']:g} useful Acumatica requests per order |",
            f"| what the ERP's ceiling allows | {d['ceiling_requests_per_min']:g} requests/min = "
            f"**{d['ceiling_orders_per_min']:g} orders/min** |",
            f"| drain ratio | **{d['ratio']:.2f}** (required {c.min_drain_ratio:g}); over the whole drain "
            f"({d['whole_s']:g} s from the faults stopping): {d['whole_orders_per_min']:g} orders/min, "
            f"{d['whole_ratio']:.2f} |",
            f"| Acumatica during the drain | {d['requests']} requests, {d['refused_429']} refused with 429, "
            f"median {d['median_request_s']:g} s each |",
        ]
    lines.append(f"| whole run | {r.total_s:g} s |")
    lines.append("")
    unmet = [flow for flow, n in r.writes_by_flow.items() if n and not r.lost_by_flow.get(flow) and flow != "other"]
    if unmet:
        lines += [
            f"Not shown by this run: no write of {', '.join(unmet)} met a lost answer (at 5%, a flow with a few "
            "dozen writes meets none now and then).",
            "",
        ]
    if r.drain.get("window", "").startswith("the whole"):
        lines += [
            f"The backlog had not drained {c.drain_max_s:g} s after the faults stopped: the drain figures are "
            "over that whole measurement, and the tuned rate limits were then set (as an operator would) so the "
            "rest of the run could finish: the rest of the backlog came in after that, and every check after the "
            "drain ran with those limits.",
            "",
        ]
    if r.problems:
        lines += ["Problems:", "", *[f"- {p}" for p in r.problems], ""]
    return lines


def render(reports: list[ChaosReport], pairs: list[PairChaosReport] | None = None) -> str:
    pairs = pairs or []
    held = all(not r.problems for r in reports) and all(not r.problems for r in pairs)
    lines = [
        "# Reliability: the chaos runs",
        "",
        "Written by `make chaos` (`python -m bench.chaos`); do not edit by hand. The same runs at a",
        "smaller scale are `tests/e2e/test_chaos.py`. The harness is `sandbox/chaos.py`.",
        "",
        f"- run: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {git_commit(ROOT)}",
        f"- machine: {platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} CPUs",
        f"- verdict: {'**every guarantee held**' if held else '**FAILED** (problems listed under each run)'}",
        "",
    ]
    for n, r in enumerate(reports, 1):
        lines += _run_section(n, r)
    if pairs:
        lines += _pairs_section(len(reports) + 1, pairs)
    lines += CHECKS + HOW + LIMITS
    return "\n".join(lines)


CHECKS = [
    "## What each run checks",
    "",
    "At the end of each run, with the faults off, the harness reads both sims (and the bindings, only to see "
    "that each pair of customers is linked):",
    "",
    "- **Orders, exactly once.** Every good order is in Acumatica once (`SalesOrder?$filter=CustomerOrder eq "
    "'<increment id>'` returns one order) with the store's grand total; every bad order waited on the failures "
    "desk as one `unknown_item` item with a reason naming the SKU (held there: polls, sweeps and duplicate "
    "deliveries do not try it again, so it failed a few times at most), and no good order did; after the stock "
    "item was created, `erpsync resync orders --failed` (the CLI, in a subprocess, under the faults) brought each "
    "in once and resolved every item.",
    "- **Customers, exactly once and in step.** Each email the harness made or edited is one Magento account and "
    "one Acumatica customer; every customer made for a guest checkout is one Acumatica customer and no Magento "
    "account; neither side holds a customer nobody made. For each pair, first and last name, phone and billing "
    "street, city, postcode and country are equal on both sides and equal to the last edit made on either "
    "side (no edit was lost). No customer is open on the failures desk.",
    "- **Shipments and invoices, exactly once.** Each shipped order has exactly one Magento shipment, carrying its "
    "tracking number, and each invoiced order exactly one Magento invoice.",
    "- **Payments and credit memos, exactly once and to the cent.** Read after the further polls of every flow: "
    "each good order Magento captured has exactly one released Acumatica payment (`Payment` of type Payment whose "
    "`ExternalRef` is the order number) of the amount Magento shows paid, and each order it did not capture has "
    "none; each Magento credit memo has exactly one Acumatica credit memo (`SalesInvoice` of type Credit Memo whose "
    "`ExternalRef` is the credit memo's number) of its grand total, closed by exactly one refund of that amount.",
    "- **The books match.** `erpsync reconcile --days 1` (the CLI, in a subprocess) finds no difference between "
    "what Magento charged, captured and refunded and what Acumatica holds; after a clerk raises the price of a "
    "line of an open order in Acumatica, it names exactly that order, with Magento's total and Acumatica's new one.",
    "- **No ping-pong.** With the sims' request logs cleared, two further cycles of both customer flows (each: the "
    "poll, and a sync of every customer of each side through the flow functions, as `erpsync sync` does) end "
    "`skipped` or `filtered` and neither sim sees a single write.",
    "- **Lost answers met every flow.** The sims' logs show, per flow, writes whose answer was lost (the "
    "Acumatica `Customer` writes are those of the customers flow and of the orders flow making a buyer; "
    "Magento's customer writes those of the erp-customers flow). The large runs fail if a flow's writes met none.",
    "- **No invocation past its timeout.** The local Lambda runtime records every invocation's duration and the "
    "template's timeout of its function (and gives each a context counting down from that timeout, so the "
    "handlers keep their own deadline as on Lambda); a single overrun is a failure.",
    "- **The ceilings (tuned run).** From the Acumatica sim's own log (arrival and answer time of every "
    "request, the harness's calls left out): never more requests in any 60 s than `per_minute`, never more "
    "at once than `concurrent`, and none refused by the sim's licence.",
    "- **The drain (default run).** After the faults stop, the rate at which the backlog reaches Acumatica "
    "against the rate the ERP's ceiling allows. The ceiling in requests per minute is the settings' "
    "`per_minute` when one is set; the default settings set none, so it is the ERP's licence: `concurrent` "
    "requests at once, each taking the ERP's latency L, i.e. concurrent x 60 / L. The orders per minute it "
    "allows are that divided by the useful Acumatica requests (answered with success: customer look-ups and "
    "creates, sales orders, the look-ups after a lost answer, the other flows' reads) per order the drain "
    "needed. The rate is taken between the moments 10% and 90% of the backlog were in (the first orders "
    "still wait out the delay their last failure gave them, the last few are stragglers); the whole drain "
    "is reported beside it.",
    "",
]

HOW = [
    "## How each guarantee is achieved",
    "",
    "See [ARCHITECTURE.md](ARCHITECTURE.md) for the layout and the error model.",
    "",
    "- **Exactly once, through lost answers.** A webhook is only a doorbell; the worker reads the record from "
    "its source and holds a per-record lease (`state/guards.py` `Leases`), and a lease on the pair of records, so "
    "two workers never write the same record at once. Orders: before a create the binding is marked `pending`; "
    "an attempt that finds it pending looks the order up by `CustomerOrder` first, so a create whose answer was "
    "lost (504 or a dropped connection) never makes a second sales order. Shipments and invoices: the same, "
    "looked up by the marker comment on the Magento document. Customers: every create is preceded by a look-up "
    "by email on the target, and an Acumatica customer is created with an id derived from the email and "
    "`If-None-Match: *`, so a retried create finds its twin. Duplicate webhook deliveries are dropped at ingress "
    "by event id; the rest, and the polls' re-reads, end as `skipped`. Payments: before writing, the ERP's own "
    "payments of the order (by `ExternalRef`) say what is already paid, so a payment whose answer was lost is "
    "found, not made twice; credit memos and their refunds are found the same way by the credit memo's number.",
    "- **Customers in step, no ping-pong.** Email is the identity on both sides. The hash of what each side "
    "held right after our write is kept on the binding, so the change that comes back from our own write is "
    "skipped without a write; an edit on either side is synced field group by field group against the last "
    "synced state. (The runs edit different customers on each side; two sides editing the same field group "
    "of one customer at once, where the owner setting decides, is covered by "
    "`tests/integration/test_customers_flow.py`, not here.)",
    "- **Nothing lost, outages cost no attempts.** 5xx, 504, 429, connection failures, an open breaker and a "
    "busy lease are transient (`runtime/worker.py`): the notice goes back on the queue with a delay and its "
    "attempt count unchanged. The shared circuit breaker stops every worker calling Acumatica while it is down: "
    "each container counts the answers themselves, in a row (no answer, 502, 503, 504; any other answer starts "
    "the count again, so records failing on a 500 of their own do not stop the rest), and a notice that meets "
    "it open waits until it closes. "
    "The schedules' polls and the orders and customers sweeps re-enqueue anything a lost notice missed.",
    "- **Permanent failures on the desk with the reason.** `UnknownItemError` (Acumatica: the InventoryID cannot "
    "be found) is a `PermanentError`: the record goes onto the failures desk at once, one item with error type, "
    "reason, attempts and times (`erpsync failed`). `erpsync resync orders --failed` syncs each again and "
    "resolves it.",
    "- **Invocations within their timeout.** Each invocation starts a `Deadline` from the Lambda context's "
    "remaining time; every HTTP request's timeout is cut to what is left (less a margin), a batch stops starting "
    "records with less than 5 s left and hands the rest back untouched, and a poll stops between pages with less "
    "than 10 s left.",
    "- **The ERP's ceilings.** Every request holds one of the system's seats (`state/guards.py` `Seats`, "
    "shared through DynamoDB by every worker): how many requests it takes at once, learned from its answers "
    "(a 429 on a request that took the last seat takes one away, once per round; while every seat is busy and "
    "answers go through it grows back, at once up to a level that held, and from one under the level last "
    "refused only along a cubic curve of the time since, probing that level about 20 s later), or exactly "
    "`rate_limits.<connection>.concurrent` when that is set. "
    "With `per_minute` set, each request also takes a token of a sliding 60-second window (`RateLimiter`), "
    "and a 429 makes every worker wait out `Retry-After`. The window is counted in one-second "
    "buckets (calendar minutes let up to twice the ceiling through across a boundary), with a second of margin "
    "for the time a request "
    "takes to arrive; a token whose DynamoDB write took longer than half of that is not used. "
    "With `per_second` set (QuickBooks Online's 10 a second, from its plugin), the token also counts in a "
    "window of 1.5 s on tenth-of-a-second buckets: no second of arrivals can hold more.",
    "- **The local stack is faithful where it matters.** Every guard above rests on DynamoDB's atomic "
    "conditional writes; plain moto checks a condition and writes in two steps, so the local moto serialises "
    "DynamoDB requests (`sandbox/local/moto_server.py`, checked by `tests/integration/test_local_moto.py`). "
    "Lambda runs one invocation at a time per container: the local runtime gives an invocation that runs beside "
    "another of the same function its own container, with its own flow runtime and deadline "
    "(`sandbox/local/lambda_runtime.py`).",
    "",
]

LIMITS = [
    "## What these runs do not show",
    "",
    "- Magento only loses answers here (no 500s, 429s or hangs on the store's side), and Acumatica's webhooks "
    "are not used: the ERP-side changes reach the connector through the polls.",
    "- No customer is edited on both sides at once (see above), and no order is edited after it was placed.",
    "- Orders with a virtual item are not shipped: the harness's Acumatica seeds every simple product as a "
    "stock item, so a shipment would name the virtual line, and Magento refuses a shipment with a virtual "
    "item whole (the shipments flow parks it as `validation`).",
    "- The timing figures come from one machine shared by moto, both sims and every function; only the "
    "drain ratio is a requirement, the other times are what this run took.",
    "",
]


if __name__ == "__main__":
    sys.exit(main())
