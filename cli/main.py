"""`erpsync`: run the local stack, sync a flow now, read the sync log, change settings.

Every command but `local up` works against the local stack by default (.erpsync/local.json)
or against a deployed stack with `--stack NAME` (AWS credentials from the environment).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cli import target
from cli.console import console as console_command
from cli.load import load_app
from cli.settings import settings_app
from cli.sim import sim as sim_command

app = typer.Typer(help=__doc__, no_args_is_help=True, pretty_exceptions_enable=False)
local_app = typer.Typer(help="The local stack: sims, moto, the webhook API, pollers and schedules.")
app.add_typer(local_app, name="local")
app.add_typer(settings_app, name="settings")
app.add_typer(load_app, name="load")
app.command("console")(console_command)
app.command("sim")(sim_command)
console = Console()


def _flow_names() -> list[str]:
    from erpsync.flows.catalog import NAMES

    return list(NAMES)


def _complete_flow(incomplete: str) -> list[str]:
    return [n for n in _flow_names() if n.startswith(incomplete)]


OUTCOMES = ("synced", "skipped", "filtered", "failed", "retrying")

StackOpt = Annotated[str | None, typer.Option("--stack", help="A deployed CloudFormation stack (default: local)")]


@local_app.command("up")
def local_up(
    schedule_seconds: Annotated[float, typer.Option(help="How often each flow polls")] = 5.0,
    seed: Annotated[bool, typer.Option(help="Seed both sims with the sample catalog")] = True,
    store: Annotated[
        str, typer.Option("--store", help="The store: magento or shopify (its sim, or --connect it)")
    ] = "magento",
    erp: Annotated[
        str, typer.Option("--erp", help="The ERP: acumatica, quickbooks, sap_b1 or sap_s4 (its sim, or --connect it)")
    ] = "acumatica",
    state_file: Annotated[Path, typer.Option(help="Where to write URLs and credentials")] = target.LOCAL_FILE,
    connect: Annotated[
        list[str] | None,
        typer.Option(
            "--connect",
            metavar="SYSTEM=URL",
            help="Use the system at URL instead of its sim (repeatable); credentials from "
            "ERPSYNC_<SYSTEM>_USERNAME, _PASSWORD, ... or the sim's defaults",
        ),
    ] = None,
) -> None:
    """Start everything on loopback; Ctrl-C stops it cleanly."""
    from sandbox.local.stack import parse_connect, run_forever

    try:
        systems = parse_connect(connect or [])
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    from sandbox.local.stack import ERPS, STORES

    if store not in STORES:
        typer.echo(f"error: --store {store!r}: the stores are {', '.join(STORES)}", err=True)
        raise typer.Exit(2)
    if erp not in ERPS:
        typer.echo(f"error: --erp {erp!r}: the ERPs are {', '.join(ERPS)}", err=True)
        raise typer.Exit(2)
    run_forever(
        schedule_seconds=schedule_seconds, seed=seed, state_file=state_file, connect=systems, store=store, erp=erp
    )


@local_app.command("down")
def local_down(
    state_file: Annotated[Path, typer.Option(help="The state file `local up` wrote")] = target.LOCAL_FILE,
) -> None:
    """Stop the local stack that `erpsync local up` started (from another terminal)."""
    from sandbox.local.stack import stop_running

    try:
        console.print(stop_running(state_file), markup=False)
    except LookupError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    except TimeoutError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


@app.command()
def sync(
    flow: Annotated[str, typer.Argument(help="A flow of the catalogue", autocompletion=_complete_flow)],
    id: Annotated[str | None, typer.Option("--id", help="Sync just this record (store order id, ERP doc nbr)")] = None,
    stack: StackOpt = None,
) -> None:
    """Run one flow now: everything changed since its cursor, or one record. With --stack the
    deployed stack does it (through its operator API): no flow runs here with its secrets."""
    flow = _flow(flow)
    if stack:
        ops = _remote(stack)
        if id:
            res = ops.call("POST", f"resync/{flow}", {"id": id})
            console.print(f"{flow} {id}: {res['outcome']} {res.get('message', '')}", markup=False, highlight=False)
            raise typer.Exit(0 if res["outcome"] != "failed" else 1)
        res = ops.call("POST", f"poll/{flow}", {})
        console.print(f"{flow}: {res['enqueued']} change(s) since {res['since']} queued in {stack}", markup=False)
        return
    target.choose(stack)
    from erpsync.runtime.lambda_app import build

    rt = build(flow)
    if id:
        outcome = rt.sync_now(id)
        console.print(f"{flow} {id}: [bold]{outcome.outcome}[/] {escape(outcome.message)}")
        raise typer.Exit(0 if outcome.outcome != "failed" else 1)
    polled = rt.poll()
    outcomes = rt.drain()
    counts = Counter(o.outcome for o in outcomes)
    console.print(f"{flow}: {polled['enqueued']} change(s) since {polled['since']}; " + _counts(counts))
    raise typer.Exit(1 if counts.get("failed") else 0)


def _remote(stack: str) -> Any:
    """The operator API client of a deployed stack (requests signed with your AWS credentials)."""
    from cli.console_app.operator_client import OperatorClient

    info = target.choose(stack)
    api = info.get("outputs", {}).get("ApiUrl")
    if not api:
        raise typer.BadParameter(f"stack {stack} has no ApiUrl output: is it an erpsync stack?", param_hint="--stack")
    return OperatorClient(api)


def _flow(name: str) -> str:
    from erpsync.flows import catalog

    try:
        return catalog.get(name).name
    except catalog.UnknownFlow as exc:
        raise typer.BadParameter(str(exc)) from exc


failed_app = typer.Typer(help="The failures desk: what failed, why, since when; `show` one record.")
app.add_typer(failed_app, name="failed")

FlowOpt = Annotated[str | None, typer.Option(help="Only this flow (default: all)", autocompletion=_complete_flow)]
ErrorTypeOpt = Annotated[str | None, typer.Option(help="Only this error type, e.g. unknown_item")]
SinceOpt = Annotated[str | None, typer.Option(help="Only records that last failed after this ISO time")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before acting on several records")]


def _desk() -> Any:
    import os

    from erpsync.state.failures import FailuresDesk

    return FailuresDesk(os.environ["BINDINGS_TABLE"])


def _open_failures(flows: list[str], error_type: str | None, since: str | None, ids: list[str] | None) -> list[Any]:
    from erpsync.runtime import operator
    from erpsync.runtime.queues import queue_url

    desk, rows = _desk(), []
    for f in flows:
        rows += operator.list_failed(queue_url(f), f, desk, error_type=error_type, since=since, ids=ids)
    return rows


@failed_app.callback(invoke_without_command=True)
def failed(
    ctx: typer.Context,
    flow: FlowOpt = None,
    error_type: ErrorTypeOpt = None,
    since: SinceOpt = None,
    resolved: Annotated[bool, typer.Option("--resolved", help="The latest resolved failures instead")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines (one object a line) instead of a table")] = False,
    stack: StackOpt = None,
) -> None:
    """List the open failures: what failed, why, how often, since when."""
    if ctx.invoked_subcommand is not None:
        return
    flows = [_flow(flow)] if flow else _flow_names()
    since = _iso(since, "--since")
    if stack and not resolved:  # through the stack's operator API (it folds its failed queues in)
        ops = _remote(stack)
        rows = [_as_failure(r) for f in flows for r in ops.failed(f, error_type, since)]
    else:
        target.choose(stack)
        if resolved:
            rows = [f for f in _desk().resolved(200) if f.flow in flows]
        else:
            rows = _open_failures(flows, error_type, since, None)
    if as_json:
        for r in rows:
            print(json.dumps(r.as_json()))
        return
    title = "resolved failures" if resolved else "open failures"
    table = Table("flow", "id", "error type", "failures", "first failed", "last failed", "reason", title=title)
    for r in rows:
        table.add_row(
            r.flow,
            escape(r.id),
            escape(r.error_type),
            str(r.failures),
            r.first_failed_at[:19],
            r.last_failed_at[:19],
            escape((f"{r.resolution} by {r.resolved_by}: {r.note} / " if resolved else "") + r.reason[:90]),
        )
    console.print(table)
    console.print(f"{len(rows)} {title}")


@failed_app.command("show")
def failed_show(
    id: Annotated[str, typer.Argument(help="The record's id in its source (store order id, ERP doc nbr)")],
    flow: FlowOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of text")] = False,
    stack: StackOpt = None,
) -> None:
    """One failed record: both ids, why, how often, the notice, and its sync-log history."""
    import os

    target.choose(stack)
    from erpsync.state.synclog import SyncLog

    rows = _open_failures([_flow(flow)] if flow else _flow_names(), None, None, [id])
    if not rows:
        _fail(f"no open failure with id {id}" + (f" in {flow}" if flow else "") + " (see `erpsync failed`)")
    history = SyncLog(os.environ["SYNC_LOG_TABLE"])
    for r in rows:
        rows_log = history.history(r.flow, r.id)
        if as_json:
            print(json.dumps({**r.as_json(), "history": rows_log}, default=str))
            continue
        for name, value in r.as_json().items():
            if value not in ("", None, 0) or name in ("failures", "attempts"):
                console.print(f"{name:>17}: {value}", markup=False, highlight=False)
        console.print("          history:", markup=False)
        for h in rows_log[-10:]:
            line = f"  {str(h.get('at', ''))[:23]} {h.get('outcome')} try {h.get('attempt')}: {h.get('message', '')}"
            console.print(line[:300], markup=False, highlight=False)


def _as_failure(row: dict[str, Any]) -> Any:
    from dataclasses import fields

    from erpsync.state.failures import Failure

    names = {f.name for f in fields(Failure)}
    return Failure.from_row({k: v for k, v in row.items() if k in names})


def _iso(value: str | None, option: str) -> str | None:
    """``value`` if it is an ISO date or time (else a clear error naming ``option``)."""
    if value is None:
        return None
    from datetime import datetime

    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not an ISO date or time (e.g. 2026-11-01 or 2026-11-01T08:00)", param_hint=option
        ) from None
    return value


def _fail(message: str) -> None:
    console.print(message, markup=False, highlight=False)
    raise typer.Exit(1)


def _confirm(what: str, n: int, yes: bool) -> None:
    if n > 1 and not yes and not typer.confirm(f"{what} {n} records?"):
        raise typer.Exit(1)


def _bulk(
    verb: str,
    flow: str,
    ids: list[str],
    error_type: str | None,
    since: str | None,
    yes: bool,
    act: Any,
) -> Counter[str]:
    """Act on the matching open failures of ``flow`` with a progress bar, after asking."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    waiting = _open_failures([flow], error_type, since, ids or None)
    if not waiting:
        console.print(f"{flow}: no open failure matches", markup=False)
        return Counter()
    _confirm(f"{verb} {flow}:", len(waiting), yes)
    counts: Counter[str] = Counter()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console) as bar:
        task = bar.add_task(f"{verb} {flow}", total=len(waiting))

        def progress(_failure: Any, outcome: str) -> None:
            counts[outcome] += 1
            bar.advance(task)

        act([f.id for f in waiting], progress)
    console.print(f"{flow}: " + _counts(counts), markup=False)
    return counts


@app.command()
def reconcile(
    days: Annotated[float, typer.Option("--days", help="Store orders created in the last N days")] = 7,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object a line per difference")] = False,
    stack: StackOpt = None,
) -> None:
    """Do the books match? Order by order, what the store charged, captured and refunded against the
    ERP's sales order total, applied payments and credit memos; every difference with both ids and
    amounts, and store orders missing in the ERP. Exit status 1 when anything differs."""
    target.choose(stack)
    from erpsync.runtime.lambda_app import build
    from erpsync.runtime.reconcile import reconcile as run

    result = run(build("orders"), days)
    if as_json:
        for d in result.differences:
            print(json.dumps(d.as_json()))
        raise typer.Exit(1 if result.differences else 0)
    if result.differences:
        table = Table("store order", "what", "store", "store amount", "ERP", "ERP amount", title="differences")
        for d in result.differences:
            table.add_row(
                d.number or "-",
                d.what,
                d.store_ref,
                "-" if d.store_amount is None else str(d.store_amount),
                d.erp_ref or "-",
                "-" if d.erp_amount is None else str(d.erp_amount),
            )
        console.print(table)
    left = f"; {result.left_out} left out by the order sync preferences" if result.left_out else ""
    console.print(result.summary() + left, markup=False)
    raise typer.Exit(1 if result.differences else 0)


@app.command()
def retry(
    flow: Annotated[str, typer.Argument(help="A flow of the catalogue", autocompletion=_complete_flow)],
    ids: Annotated[
        list[str] | None, typer.Argument(help="Record ids (default: every open failure that matches)")
    ] = None,
    error_type: ErrorTypeOpt = None,
    since: SinceOpt = None,
    yes: YesOpt = False,
    stack: StackOpt = None,
) -> None:
    """Try failed records again now, one or in bulk: each that goes through leaves the desk, each that
    fails again stays open with the new reason."""
    flow = _flow(flow)
    since = _iso(since, "--since")
    if stack:  # the deployed stack syncs them, with its own secrets
        ops = _remote(stack)
        chosen = [str(r["id"]) for r in ops.failed(flow, error_type, since) if not ids or str(r["id"]) in ids]
        if not chosen:
            console.print(f"{flow}: no open failure matches", markup=False)
            raise typer.Exit(0)
        _confirm(f"retry {flow}:", len(chosen), yes)
        counts = Counter(ops.retry(flow, chosen))
        console.print(f"{flow}: " + _counts(counts), markup=False)
        raise typer.Exit(1 if counts.get("failed") else 0)
    target.choose(stack)
    from erpsync.runtime import operator
    from erpsync.runtime.lambda_app import build

    rt = build(flow)

    def act(chosen: list[str], progress: Any) -> None:
        operator.retry_failed(
            rt.queue_url,
            flow,
            _desk(),
            lambda rid, source: rt.sync_now(rid, source).outcome,
            ids=chosen,
            progress=progress,
        )

    counts = _bulk("retry", flow, list(ids or []), error_type, since, yes, act)
    raise typer.Exit(1 if counts.get("failed") else 0)


@app.command()
def skip(
    flow: Annotated[str, typer.Argument(help="A flow of the catalogue", autocompletion=_complete_flow)],
    ids: Annotated[
        list[str] | None, typer.Argument(help="Record ids (default: every open failure that matches)")
    ] = None,
    note: Annotated[str, typer.Option(help="Why it is skipped (kept with the record)")] = "",
    error_type: ErrorTypeOpt = None,
    since: SinceOpt = None,
    yes: YesOpt = False,
    stack: StackOpt = None,
) -> None:
    """Close failed records without syncing them (dealt with another way), with a note."""
    import getpass

    flow = _flow(flow)
    if not note.strip():
        raise typer.BadParameter("say why with --note (it is kept with the record)")
    if not ids and not error_type and not since:
        raise typer.BadParameter("name the records: ids, --error-type or --since")
    since = _iso(since, "--since")
    if stack:
        ops = _remote(stack)
        chosen = [str(r["id"]) for r in ops.failed(flow, error_type, since) if not ids or str(r["id"]) in ids]
        _confirm(f"skip {flow}:", len(chosen), yes)
        skipped = ops.skip(flow, chosen, note) if chosen else 0
        console.print(f"{flow}: {skipped} skipped", markup=False)
        return
    target.choose(stack)
    from erpsync.runtime import operator
    from erpsync.runtime.queues import queue_url

    def act(chosen: list[str], progress: Any) -> None:
        operator.skip_failed(queue_url(flow), flow, _desk(), note, getpass.getuser(), ids=chosen, progress=progress)

    _bulk("skip", flow, list(ids or []), error_type, since, yes, act)


@app.command()
def resync(
    flow: Annotated[str, typer.Argument(help="A flow of the catalogue", autocompletion=_complete_flow)],
    id: Annotated[str | None, typer.Argument(help="One record (store order id, ERP document nbr)")] = None,
    failed_only: Annotated[bool, typer.Option("--failed", help="Every open failure of the flow")] = False,
    error_type: Annotated[str | None, typer.Option(help="With --failed: only this error type")] = None,
    since: Annotated[
        str | None, typer.Option(help="With --failed: only records that failed after this ISO time")
    ] = None,
    yes: YesOpt = False,
    stack: StackOpt = None,
) -> None:
    """Sync records now, one (failed or not) or every open failure; a record already in step is a no-op."""
    flow = _flow(flow)
    if bool(id) == failed_only:
        raise typer.BadParameter("give a record id or --failed (not both)")
    if failed_only:
        retry(flow, None, error_type, since, yes, stack)
        return
    if stack:
        sync(flow, id, stack)
        return
    target.choose(stack)
    from erpsync.runtime.lambda_app import build

    outcome = build(flow).sync_now(str(id))
    console.print(f"{flow} {id}: {outcome.outcome} {outcome.message}", markup=False, highlight=False)
    raise typer.Exit(1 if outcome.outcome == "failed" else 0)


@app.command()
def redrive(
    flow: Annotated[str, typer.Argument(help="A flow of the catalogue", autocompletion=_complete_flow)],
    yes: YesOpt = False,
    stack: StackOpt = None,
) -> None:
    """Send every open failure of a flow back to its queue as a retry (the workers try them)."""

    flow = _flow(flow)
    if stack:
        ops = _remote(stack)
        _confirm(f"redrive {flow}:", len(ops.failed(flow)), yes)
        console.print(f"{flow}: {ops.redrive(flow)} record(s) sent back to the queue in {stack}", markup=False)
        return
    target.choose(stack)
    from erpsync.runtime import operator
    from erpsync.runtime.queues import queue_url

    waiting = _open_failures([flow], None, None, None)
    _confirm(f"redrive {flow}:", len(waiting), yes)
    moved = operator.redrive(queue_url(flow), flow, _desk())
    console.print(f"{flow}: {moved} record(s) sent back to the queue")


@app.command()
def log(
    flow: Annotated[str | None, typer.Option(help="Only this flow", autocompletion=_complete_flow)] = None,
    outcome: Annotated[str | None, typer.Option(help="synced, skipped, filtered, failed or retrying")] = None,
    id: Annotated[str | None, typer.Option("--id", help="The history of one record (needs --flow)")] = None,
    limit: Annotated[int, typer.Option(help="At most this many rows", min=1)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table")] = False,
    stack: StackOpt = None,
) -> None:
    """Show the sync log, newest first."""
    import os

    if flow:
        flow = _flow(flow)
    if outcome and outcome not in OUTCOMES:
        raise typer.BadParameter(
            f"{outcome!r} is not an outcome: use one of {', '.join(OUTCOMES)}", param_hint="--outcome"
        )
    if id and not flow:
        raise typer.BadParameter("--id needs --flow")
    target.choose(stack)
    from erpsync.state.synclog import SyncLog

    synclog = SyncLog(os.environ["SYNC_LOG_TABLE"])
    if id and flow:
        rows = list(reversed(synclog.history(flow, id)))
    elif outcome:
        rows = synclog.by_outcome(outcome, limit=limit)
    else:
        rows = synclog.recent(limit=limit if not flow else 10 * limit)
    if flow:
        rows = [r for r in rows if r.get("flow") == flow]
    rows = rows[:limit]
    if as_json:
        for r in rows:
            print(json.dumps(r, default=str))
        return
    table = Table("at", "flow", "source id", "outcome", "target id", "try", "ms", "error", "message", title="sync log")
    for r in rows:
        table.add_row(
            str(r.get("at", ""))[:23],
            r.get("flow", ""),
            str(r.get("source_id", "")),
            _styled(r.get("outcome", "")),
            str(r.get("target_id", "")),
            str(r.get("attempt", "")),
            str(r.get("duration_ms", "")),
            escape(str(r.get("error_type", ""))),
            escape(str(r.get("message", ""))[:80]),
        )
    console.print(table)
    console.print(_counts(Counter(r.get("outcome", "") for r in rows)))


def _counts(counts: Counter[str]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "nothing to do"


def _styled(outcome: str) -> str:
    color = {"synced": "green", "skipped": "dim", "filtered": "cyan", "failed": "red", "retrying": "yellow"}
    return f"[{color.get(outcome, 'white')}]{outcome}[/]"


def explain(exc: BaseException) -> str:
    """One line saying what went wrong and what to do, for an error no command expected."""
    from botocore import exceptions as aws

    from erpsync.errors import SyncError

    if isinstance(exc, aws.EndpointConnectionError):
        url = str(getattr(exc, "kwargs", {}).get("endpoint_url", "")).rstrip("/")
        if "127.0.0.1" in url or "localhost" in url:
            return f"the local stack is not answering at {url}: start it with `erpsync local up`, or use --stack NAME"
        return f"cannot reach AWS at {url}: check the network and the region"
    if isinstance(exc, aws.NoCredentialsError):
        return "no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    if isinstance(exc, aws.NoRegionError):
        return "no AWS region set: set AWS_DEFAULT_REGION (or AWS_REGION) to the stack's region"
    if isinstance(exc, aws.ClientError):
        err = exc.response.get("Error", {})
        return f"AWS refused {exc.operation_name}: {err.get('Code', '')} {err.get('Message', '')}".strip()
    if isinstance(exc, SyncError):
        return f"{exc.error_type}: {exc}"
    if type(exc).__name__ == "OperatorError":
        return str(exc)
    return f"{type(exc).__name__}: {exc} (run with ERPSYNC_DEBUG=1 to see the traceback)"


def main() -> None:
    """The `erpsync` command: whatever fails, one clear line on stderr and a non-zero exit, never a
    traceback (``ERPSYNC_DEBUG=1`` shows it)."""
    import os
    import sys

    try:
        app(prog_name="erpsync")
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("ERPSYNC_DEBUG"):
            raise
        print(f"error: {' '.join(explain(exc).split())}", file=sys.stderr)
        sys.exit(1)
