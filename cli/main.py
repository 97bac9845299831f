"""`erpsync`: run the local stack, sync a flow now, read the sync log, change settings.

Every command but `local up` works against the local stack by default (.erpsync/local.json)
or against a deployed stack with `--stack NAME` (AWS credentials from the environment).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli import target

app = typer.Typer(help=__doc__, no_args_is_help=True)
local_app = typer.Typer(help="The local stack: sims, moto, the webhook API, pollers and schedules.")
settings_app = typer.Typer(help="Admin settings (mappings, order sync preferences, attempts).")
app.add_typer(local_app, name="local")
app.add_typer(settings_app, name="settings")
console = Console()


def _flow_names() -> list[str]:
    from erpsync.flows.catalog import NAMES

    return list(NAMES)


def _complete_flow(incomplete: str) -> list[str]:
    return [n for n in _flow_names() if n.startswith(incomplete)]


StackOpt = Annotated[str | None, typer.Option("--stack", help="A deployed CloudFormation stack (default: local)")]


@local_app.command("up")
def local_up(
    schedule_seconds: Annotated[float, typer.Option(help="How often each flow polls")] = 5.0,
    seed: Annotated[bool, typer.Option(help="Seed both sims with the sample catalog")] = True,
    state_file: Annotated[Path, typer.Option(help="Where to write URLs and credentials")] = target.LOCAL_FILE,
) -> None:
    """Start everything on loopback; Ctrl-C stops it cleanly."""
    from sandbox.local.stack import run_forever

    run_forever(schedule_seconds=schedule_seconds, seed=seed, state_file=state_file)


@app.command()
def sync(
    flow: Annotated[str, typer.Argument(help="A flow of the catalogue", autocompletion=_complete_flow)],
    id: Annotated[str | None, typer.Option("--id", help="Sync just this record (store order id, ERP doc nbr)")] = None,
    stack: StackOpt = None,
) -> None:
    """Run one flow now: everything changed since its cursor, or one record."""
    flow = _flow(flow)
    target.choose(stack)
    from erpsync.runtime.lambda_app import build

    rt = build(flow)
    if id:
        outcome = rt.sync_now(id)
        console.print(f"{flow} {id}: [bold]{outcome.outcome}[/] {outcome.message}")
        raise typer.Exit(0 if outcome.outcome != "failed" else 1)
    polled = rt.poll()
    outcomes = rt.drain()
    counts = Counter(o.outcome for o in outcomes)
    console.print(f"{flow}: {polled['enqueued']} change(s) since {polled['since']}; " + _counts(counts))
    raise typer.Exit(1 if counts.get("failed") else 0)


def _flow(name: str) -> str:
    from erpsync.flows import catalog

    try:
        return catalog.get(name).name
    except catalog.UnknownFlow as exc:
        raise typer.BadParameter(str(exc)) from exc


@app.command()
def failed(
    flow: Annotated[
        str | None, typer.Option(help="Only this flow (default: all)", autocompletion=_complete_flow)
    ] = None,
    error_type: Annotated[str | None, typer.Option(help="Only this error type, e.g. unknown_item")] = None,
    since: Annotated[str | None, typer.Option(help="Only records that last failed after this ISO time")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table")] = False,
    stack: StackOpt = None,
) -> None:
    """List the failed queues: what failed, why, how often, since when."""

    target.choose(stack)
    from erpsync.runtime import operator

    rows = []
    from erpsync.runtime.queues import queue_url

    for f in [_flow(flow)] if flow else _flow_names():
        rows += operator.list_failed(queue_url(f), f, error_type=error_type, since=since)
    if as_json:
        for r in rows:
            console.print_json(json.dumps(r.as_json()))
        return
    table = Table("flow", "id", "error type", "attempts", "first attempt", "last attempt", "reason", title="failed")
    for r in rows:
        table.add_row(
            r.flow, r.id, r.error_type, str(r.attempts), r.first_attempt_at[:19], r.last_attempt_at[:19], r.reason[:90]
        )
    console.print(table)
    console.print(f"{len(rows)} failed record(s)")


@app.command()
def resync(
    flow: Annotated[str, typer.Argument(help="A flow of the catalogue", autocompletion=_complete_flow)],
    id: Annotated[str | None, typer.Argument(help="One record (store order id, ERP document nbr)")] = None,
    failed_only: Annotated[bool, typer.Option("--failed", help="Every record in the failed queue")] = False,
    error_type: Annotated[str | None, typer.Option(help="With --failed: only this error type")] = None,
    since: Annotated[
        str | None, typer.Option(help="With --failed: only records that failed after this ISO time")
    ] = None,
    stack: StackOpt = None,
) -> None:
    """Sync failed records now, one or in bulk; a record already in step is a no-op."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    flow = _flow(flow)
    if bool(id) == failed_only:
        raise typer.BadParameter("give a record id or --failed (not both)")
    target.choose(stack)
    from erpsync.runtime import operator
    from erpsync.runtime.lambda_app import build

    rt = build(flow)
    if id:
        outcome = operator.resync_one(rt.queue_url, flow, id, rt.sync_now)
        console.print(f"{flow} {id}: [bold]{outcome.outcome}[/] {outcome.message}")
        raise typer.Exit(1 if outcome.outcome == "failed" else 0)
    waiting = operator.list_failed(rt.queue_url, flow, error_type=error_type, since=since)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console) as bar:
        task = bar.add_task(f"resync {flow}", total=len(waiting))
        counts = operator.resync_failed(
            rt.queue_url,
            flow,
            lambda rid: rt.sync_now(rid).outcome,
            error_type=error_type,
            since=since,
            progress=lambda r, outcome: bar.advance(task),
        )
    console.print(f"{flow}: " + _counts(Counter(counts)))
    raise typer.Exit(1 if counts.get("failed") else 0)


@app.command()
def redrive(
    flow: Annotated[str, typer.Argument(help="A flow of the catalogue", autocompletion=_complete_flow)],
    stack: StackOpt = None,
) -> None:
    """Move a flow's failed queue (DLQ) back to its queue, attempts reset."""

    flow = _flow(flow)
    target.choose(stack)
    from erpsync.runtime import operator
    from erpsync.runtime.queues import queue_url

    moved = operator.redrive(queue_url(flow))
    console.print(f"{flow}: {moved} record(s) moved back to the queue")


@app.command()
def log(
    flow: Annotated[str | None, typer.Option(help="Only this flow", autocompletion=_complete_flow)] = None,
    outcome: Annotated[str | None, typer.Option(help="synced, skipped, filtered, failed or retrying")] = None,
    id: Annotated[str | None, typer.Option("--id", help="The history of one record (needs --flow)")] = None,
    limit: Annotated[int, typer.Option(help="At most this many rows")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table")] = False,
    stack: StackOpt = None,
) -> None:
    """Show the sync log, newest first."""
    import os

    target.choose(stack)
    from erpsync.state.synclog import SyncLog

    synclog = SyncLog(os.environ["SYNC_LOG_TABLE"])
    if id:
        if not flow:
            raise typer.BadParameter("--id needs --flow")
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
            console.print_json(json.dumps(r, default=str))
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
            r.get("error_type", ""),
            str(r.get("message", ""))[:80],
        )
    console.print(table)
    console.print(_counts(Counter(r.get("outcome", "") for r in rows)))


@settings_app.command("show")
def settings_show(stack: StackOpt = None) -> None:
    """Print the settings in force (defaults included)."""
    import os

    target.choose(stack)
    from erpsync.state.settings import SettingsStore

    console.print_json(SettingsStore(os.environ["BINDINGS_TABLE"]).load().model_dump_json())


@settings_app.command("set")
def settings_set(
    changes: Annotated[
        str, typer.Argument(help='A JSON object of top-level settings, e.g. \'{"tax_id": "STORETAX"}\'')
    ],
    stack: StackOpt = None,
) -> None:
    """Change settings (validated before anything is saved)."""
    import os

    from pydantic import ValidationError

    target.choose(stack)
    from erpsync.runtime.lambda_app import ConfigurationError, check_settings
    from erpsync.state.settings import SettingsStore

    try:
        doc = json.loads(changes)
        if not isinstance(doc, dict):
            raise ValueError("settings must be a JSON object")
        saved = SettingsStore(os.environ["BINDINGS_TABLE"]).update(doc, check=check_settings)
    except (ValueError, ValidationError, ConfigurationError) as exc:
        console.print(f"[red]settings not changed:[/] {exc}")
        raise typer.Exit(2) from exc
    console.print_json(saved.model_dump_json())


def _counts(counts: Counter[str]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "nothing to do"


def _styled(outcome: str) -> str:
    color = {"synced": "green", "skipped": "dim", "filtered": "cyan", "failed": "red", "retrying": "yellow"}
    return f"[{color.get(outcome, 'white')}]{outcome}[/]"
