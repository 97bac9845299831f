"""`erpsync load catalog|customers|orders`: the initial load a new merchant runs on day one.

Every record of the source is read page by page, in dependency order (catalog: attributes,
categories, products (simple items, then each template's matrix items and the template, kits),
prices, stock; customers: the ERP's, then the store's; orders: the store's order history, then what
those orders were paid), and synced exactly as the flows' workers
would: the same rules, rate ceilings, bindings, sync log and failures desk. Memory holds one page.

Resumable: after each page the load records how far it got (an item in the bindings table, per
flow and source connection: the checkpoint of the last time window, or where a source that reads
a load page by page stands), so a load stopped by a crash or Ctrl-C starts again from there; a
record synced twice is recognised by its binding and hash and not written again. A finished load
starts over when run again (``--restart`` starts over at once). ``--dry-run`` reads everything and
says what it would do, without a write.

It runs in this process with your AWS credentials (the deployed stack's tables, queues and secrets
with ``--stack``): a load of hours does not fit in a Lambda invocation.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli import target

ORDER: dict[str, tuple[str, ...]] = {
    "catalog": ("attributes", "categories", "products", "prices", "stock"),
    "customers": ("erp-customers", "customers"),
    "orders": ("orders", "payments"),
}
BEGINNING = datetime(2000, 1, 1, tzinfo=UTC)
T = TypeVar("T")
READ_AHEAD = 3
"""Pages a load reads ahead of the one it writes."""
console = Console()
load_app = typer.Typer(help="The initial load: every record of the source, in dependency order, resumable.")


class LoadProgress:
    """How far a load of (flow, source) got: ``{"since": iso, "done": bool, "counts": {...}}``."""

    def __init__(self, table: str) -> None:
        self.table = table

    def _key(self, flow: str, source: str) -> dict[str, Any]:
        from erpsync.state import dynamo

        return dynamo.to_item({"pk": f"load#{flow}#{source}", "sk": "-"})

    def get(self, flow: str, source: str) -> dict[str, Any]:
        from erpsync.state import dynamo

        res = dynamo.client().get_item(TableName=self.table, Key=self._key(flow, source), ConsistentRead=True)
        return dynamo.from_item(res["Item"]) if "Item" in res else {}

    def put(
        self,
        flow: str,
        source: str,
        since: datetime | None,
        done: bool,
        counts: Counter[str],
        position: dict[str, Any] | None = None,
    ) -> None:
        from erpsync.state import dynamo

        item = {
            "pk": f"load#{flow}#{source}",
            "sk": "-",
            "since": since.isoformat() if since else "",
            "position": position,
            "done": done,
            "counts": dict(counts),
            "at": datetime.now(UTC).isoformat(),
        }
        dynamo.client().put_item(TableName=self.table, Item=dynamo.to_item(item))


def read_ahead(pages: Iterator[T], depth: int = READ_AHEAD) -> Iterator[T]:
    """``pages``, read on a thread up to ``depth`` pages ahead of the caller working on them: the
    source's time and the writes overlap, so a load runs at the pace of the slower of the two, and
    a page that takes long to write (a pause of the store) does not leave the source idle. At most
    ``depth + 2`` pages are held; an error reading one is raised where that page would be."""
    box: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for page in pages:
                while not stop.is_set():
                    try:
                        box.put((True, page), timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            box.put((False, None))
        except BaseException as exc:  # handed to the reader, raised there
            box.put((False, exc))

    reader = threading.Thread(target=produce, name="load-read-ahead", daemon=True)
    reader.start()
    try:
        while True:
            more, item = box.get()
            if not more:
                if item is not None:
                    raise item
                return
            yield item
    finally:
        stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                box.get_nowait()  # let a reader blocked on a full box see the stop


def plan(rules: Any, notices: list[Any]) -> list[str]:
    """What syncing ``notices`` would do, read but not written: create, update or unchanged."""
    out: list[str] = []
    if callable(getattr(rules, "sync_many", None)):
        values = rules.read(notices)
        known = rules.bindings.get_many(rules.entity, rules.source, list(values), rules.target)
        from erpsync.flows.batched import digest

        for n in notices:
            value = values.get(n.id)
            ready, _ = rules.for_store(value) if value is not None else (None, "")
            if ready is None:
                out.append("filtered")
            elif n.id in known and known[n.id].seen_hash == digest(rules.projection(ready)):
                out.append("unchanged")
            else:
                out.append("update" if n.id in known else "create")
        return out
    for n in notices:
        binding = rules.bindings.get(rules.entity, rules.source, n.id, rules.target)
        try:
            record = rules.fetch(n)
        except Exception as exc:
            out.append(f"fail: {exc}")
            continue
        digest = rules.content_hash(record)
        if binding is None or binding.status != "synced":
            out.append("create")
        elif digest is not None and digest == binding.seen_hash:
            out.append("unchanged")
        else:
            out.append("update")
    return out


def run(kind: str, *, dry_run: bool, restart: bool, stack: str | None, only: tuple[str, ...] = ()) -> Counter[str]:
    from erpsync.runtime.lambda_app import build

    target.choose(stack)
    progress_store = LoadProgress(os.environ["BINDINGS_TABLE"])
    totals: Counter[str] = Counter()
    table = Table("flow", "source", "synced", "skipped", "filtered", "failed", "other", title=f"load {kind}")
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.completed} records"),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        unknown = [f for f in only if f not in ORDER[kind]]
        if unknown:
            raise typer.BadParameter(f"{', '.join(unknown)}: not a flow of the {kind} load ({', '.join(ORDER[kind])})")
        for flow in [f for f in ORDER[kind] if not only or f in only]:
            rt = build(flow)
            rt.refresh()
            if not rt.dispatcher.lanes:
                console.print(
                    f"{flow}: no route runs it; the catalog runs where a route names it: "
                    """erpsync settings set '{"routes": [{"store": ..., "erp": ..., "flows": ["*", "catalog"]}]}'""",
                    markup=False,
                )
            for lane in rt.dispatcher.lanes:
                state = {} if restart else progress_store.get(flow, lane.source)
                resume = bool(state) and not state.get("done")
                since = datetime.fromisoformat(state["since"]) if resume and state.get("since") else BEGINNING
                counts: Counter[str] = Counter(state.get("counts") or {}) if resume else Counter()
                task = bar.add_task(f"{flow} ({lane.source})", total=None, completed=sum(counts.values()))
                port = lane.rules.ctx.source_port
                position = state.get("position") if resume else None
                whole = getattr(port, "load_pages", None)
                pages = whole(since, position) if whole is not None else port.changes(since)
                for page in read_ahead(pages):
                    notices = [
                        n.model_copy(update={"source": lane.source, "target": lane.target}) for n in page.notices
                    ]
                    if dry_run:
                        counts.update(plan(lane.rules, notices))
                    elif notices:
                        counts.update(o.outcome for o in rt.run(notices, load=True))
                    if page.checkpoint is not None:
                        since = page.checkpoint
                    position = page.position
                    if not dry_run:
                        progress_store.put(flow, lane.source, since, False, counts, position)
                    bar.update(task, completed=sum(counts.values()))
                if not dry_run:
                    progress_store.put(flow, lane.source, since, True, counts)
                bar.update(task, total=sum(counts.values()) or 1, completed=sum(counts.values()) or 1)
                other = sum(v for k, v in counts.items() if k not in ("synced", "skipped", "filtered", "failed"))
                table.add_row(
                    flow,
                    lane.source,
                    *(str(counts.get(k, 0)) for k in ("synced", "skipped", "filtered", "failed")),
                    escape(
                        ", ".join(
                            f"{k} {v}"
                            for k, v in sorted(counts.items())
                            if k not in ("synced", "skipped", "filtered", "failed")
                        )
                    )
                    or str(other),
                )
                totals.update(counts)
    console.print(table)
    if totals.get("failed"):
        console.print(f"{totals['failed']} record(s) failed: see [bold]erpsync failed[/] for each reason")
    return totals


Kind = Annotated[str, typer.Argument(help="catalog, customers or orders")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Read everything and say what would be done; write nothing")]
Restart = Annotated[bool, typer.Option("--restart", help="Start over instead of resuming an unfinished load")]
StackOpt = Annotated[str | None, typer.Option("--stack", help="A deployed CloudFormation stack (default: local)")]
Only = Annotated[
    list[str] | None,
    typer.Option("--only", help="Load only this flow (repeatable), e.g. --only products; its dependencies follow"),
]


@load_app.command("catalog")
def load_catalog(dry_run: DryRun = False, restart: Restart = False, stack: StackOpt = None, only: Only = None) -> None:
    """Attributes, categories, products, prices and stock from the ERP to the store."""
    totals = run("catalog", dry_run=dry_run, restart=restart, stack=stack, only=tuple(only or ()))
    raise typer.Exit(1 if totals.get("failed") else 0)


@load_app.command("customers")
def load_customers(dry_run: DryRun = False, restart: Restart = False, stack: StackOpt = None) -> None:
    """Customers both ways, linked by email (the ERP's first)."""
    totals = run("customers", dry_run=dry_run, restart=restart, stack=stack)
    raise typer.Exit(1 if totals.get("failed") else 0)


@load_app.command("orders")
def load_orders(dry_run: DryRun = False, restart: Restart = False, stack: StackOpt = None) -> None:
    """The store's order history to the ERP: its orders, then what they were paid."""
    totals = run("orders", dry_run=dry_run, restart=restart, stack=stack)
    raise typer.Exit(1 if totals.get("failed") else 0)
