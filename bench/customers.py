"""Benchmark 7: what a steady-state customer change costs, both ways, and that nothing ping-pongs.

Customers already bound on both sides (created in Magento, synced to Acumatica, the echo settled)
are edited in Magento (last name): the customers flow's poll and workers bring the edit to
Acumatica. Then each is edited in Acumatica (phone): the erp-customers flow brings it back to
Magento. After the last edit, two further poll cycles of both flows (poll, then work the queue)
must write nothing anywhere. Everything goes through ``FlowRuntime`` (the real rules, adapters and
clients) against the sims over HTTP, with the bindings in moto; requests are counted from the sims'
``/_sim/requests`` logs and classified by ``kind``.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

from bench.common import RUNS, Bench, median, warm_sessions

CUSTOMERS = 10
"""Customers edited per run (each once in Magento, then once in Acumatica)."""
QUIET_CYCLES = 2


KINDS = ("read", "write", "poll", "auth", "other")
_RECORD = {"magento": re.compile(r"/V1/customers/(\d+)$"), "acumatica": re.compile(r"/Customer/([^/]+)$")}


def kind(system: str, row: dict[str, Any], mine: set[str] | None = None) -> str:
    """One logged request: ``auth`` (sign-in), ``poll`` (a search by change time), ``write``, ``read``,
    or ``other``: a read of one customer that is not among ``mine`` (the ones edited)."""
    path, query, method = row["path"], unquote(row.get("query") or ""), row["method"]
    if "/auth/" in path or path.endswith("/token"):
        return "auth"
    if method in ("POST", "PUT", "PATCH", "DELETE"):
        return "write"
    changed_since = "updated_at" if system == "magento" else "LastModifiedDateTime"
    if changed_since in query:
        return "poll"
    one = _RECORD[system].search(path)
    if one and mine is not None and unquote(one.group(1)) not in mine:
        return "other"
    return "read"


def tally(bench: Bench, mine: dict[str, set[str]] | None = None) -> dict[str, Counter[str]]:
    """Requests per system and kind since the last ``bench.clear()``."""
    return {s: Counter(kind(s, r, (mine or {}).get(s)) for r in bench.requests(s)) for s in ("magento", "acumatica")}


def cycle(rt: Any) -> list[Any]:
    """One schedule tick of a flow and the queue worked empty: its outcomes."""
    rt.poll()
    return list(rt.drain())


def _edit_in_magento(bench: Bench, mid: str, run: int) -> None:
    record = bench.story.magento.call("GET", f"/customers/{mid}")
    record["lastname"] = f"{record['lastname'].split('-r')[0]}-r{run}"
    bench.story.magento.call("PUT", f"/customers/{mid}", json={"customer": record})


def _edit_in_acumatica(bench: Bench, cid: str, run: int, n: int) -> None:
    phone = f"(555) 7{run:02d}-{n:04d}"
    bench.story.acumatica.put("Customer", {"CustomerID": {"value": cid}, "MainContact": {"Phone1": {"value": phone}}})


def _outcomes(outcomes: list[Any]) -> dict[str, int]:
    return dict(Counter(o.outcome for o in outcomes))


def _per(counts: Counter[str], n: int) -> dict[str, float]:
    return {k: counts.get(k, 0) / n for k in KINDS}


def start_cursors_now() -> None:
    """Start both customers polls from now (older records, e.g. customers other benchmarks created in
    Acumatica through the orders flow, are not this benchmark's business)."""
    from bench.poll_cost import reset_cursor

    now = datetime.now(UTC) - timedelta(seconds=1)
    reset_cursor("customers", "magento", now)
    reset_cursor("erp-customers", "acumatica", now)


def bind_customers(bench: Bench, count: int, to_erp: Any, to_store: Any) -> list[tuple[str, str]]:
    """``count`` new Magento accounts, synced to Acumatica by the runtimes given (so their sessions
    are warm) and settled: (Magento id, Acumatica id)."""
    from erpsync.state.bindings import Bindings

    people = bench.story.seed_customers(count)
    for _ in range(3):  # the create, then its echo: settled when a cycle of both is all skips
        done = cycle(to_erp) + cycle(to_store)
        if all(o.outcome == "skipped" for o in done):
            break
    bindings = Bindings(to_erp.bindings.table)
    pairs = []
    for p in people:
        cid = bindings.find("customer", "magento", str(p["id"]), "acumatica")
        if cid is None:
            raise RuntimeError(f"customer {p['id']} ({p['email']}) was not bound to Acumatica")
        pairs.append((str(p["id"]), cid))
    return pairs


def run(bench: Bench, runs: int = RUNS, customers: int = CUSTOMERS) -> dict[str, Any]:
    to_erp, to_store = bench.runtime("customers"), bench.runtime("erp-customers")
    start_cursors_now()
    pairs = bind_customers(bench, customers, to_erp, to_store)
    for rt in (to_erp, to_store):
        warm_sessions(rt)
    mine = {"magento": {m for m, _ in pairs}, "acumatica": {c for _, c in pairs}}
    samples: list[dict[str, Any]] = []
    for run_no in range(1, runs + 1):
        # Magento -> Acumatica
        for mid, _cid in pairs:
            _edit_in_magento(bench, mid, run_no)
        bench.clear()
        forward = cycle(to_erp)
        fwd = tally(bench, mine)
        fwd_aws = dict(bench.aws.calls)
        bench.clear()
        echo = cycle(to_store)  # our own write to Acumatica comes back: skipped, no write
        echo_req = tally(bench, mine)
        # Acumatica -> Magento
        for n, (_mid, cid) in enumerate(pairs):
            _edit_in_acumatica(bench, cid, run_no, n)
        bench.clear()
        reverse = cycle(to_store)
        rev = tally(bench, mine)
        rev_aws = dict(bench.aws.calls)
        # after the last edit: further cycles of both flows write nothing
        bench.clear()
        quiet: list[Any] = []
        for _ in range(QUIET_CYCLES):
            quiet += cycle(to_erp) + cycle(to_store)
        # with working seen versions a quiet tick enqueues nothing: what it does enqueue are look-back re-reads
        calm = tally(bench, mine)
        n = len(pairs)
        samples.append(
            {
                "forward": {
                    "outcomes": _outcomes(forward),
                    "acumatica": _per(fwd["acumatica"], n),
                    "magento": _per(fwd["magento"], n),
                    "aws": {k: v / n for k, v in fwd_aws.items()},
                },
                "echo": {
                    "outcomes": _outcomes(echo),
                    "writes": echo_req["magento"]["write"] + echo_req["acumatica"]["write"],
                    "requests": {s: dict(c) for s, c in echo_req.items()},
                },
                "reverse": {
                    "outcomes": _outcomes(reverse),
                    "magento": _per(rev["magento"], n),
                    "acumatica": _per(rev["acumatica"], n),
                    "aws": {k: v / n for k, v in rev_aws.items()},
                },
                "quiet": {
                    "cycles": QUIET_CYCLES,
                    "enqueued": len(quiet),
                    "outcomes": _outcomes(quiet),
                    "writes": calm["magento"]["write"] + calm["acumatica"]["write"],
                    "requests": {s: dict(c) for s, c in calm.items()},
                },
            }
        )

    def med(*path: str) -> float:
        values = []
        for s in samples:
            node: Any = s
            for p in path:
                node = node.get(p, 0) if isinstance(node, dict) else 0
            values.append(float(node or 0))
        return median(values)

    summary = {
        side: {system: {k: med(side, system, k) for k in KINDS} for system in ("magento", "acumatica")}
        for side in ("forward", "reverse")
    }
    return {
        "runs": runs,
        "customers": len(pairs),
        "samples": samples,
        "summary": summary,
        "echo_writes": max(s["echo"]["writes"] for s in samples),
        "quiet_writes": max(s["quiet"]["writes"] for s in samples),
        "quiet_cycles": QUIET_CYCLES,
        "quiet_requests": {
            system: {k: med("quiet", "requests", system, k) for k in KINDS} for system in ("magento", "acumatica")
        },
        "quiet_enqueued": med("quiet", "enqueued"),
        "aws": {
            side: {k: med(side, "aws", k) for k in sorted({k for s in samples for k in s[side]["aws"]})}
            for side in ("forward", "reverse")
        },
    }
