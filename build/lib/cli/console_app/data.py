"""What the console shows and does. Reads go to the stack's tables and queues with the caller's
credentials (as the CLI reads them); the failures desk's listing and every action go through
``Ops``: in this process on the local stack (``LocalOps``, the CLI's way) or through a deployed
stack's operator API (``StackOps``)."""

from __future__ import annotations

import getpass
import os
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from erpsync.flows.catalog import BY_NAME, NAMES
from erpsync.state.failures import Failure, FailuresDesk, failure_key

OUTCOMES = ("synced", "failed", "retrying")


class Ops(Protocol):
    where: str

    def failed(self, flow: str, error_type: str | None = None) -> list[Failure]: ...
    def retry(self, flow: str, keys: list[str]) -> dict[str, int]: ...
    def skip(self, flow: str, keys: list[str], note: str) -> int: ...
    def redrive(self, flow: str) -> int: ...


class LocalOps:
    """The operator functions run here, on the stack this process points at (``cli.target``)."""

    where = "local stack"

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def _desk(self) -> FailuresDesk:
        return FailuresDesk(os.environ["BINDINGS_TABLE"])

    def failed(self, flow: str, error_type: str | None = None) -> list[Failure]:
        from erpsync.runtime import operator, queues

        return operator.list_failed(queues.queue_url(flow), flow, self._desk(), error_type=error_type)

    def retry(self, flow: str, keys: list[str]) -> dict[str, int]:
        from erpsync.runtime import operator
        from erpsync.runtime.lambda_app import runtime

        with self._lock:
            rt = runtime(flow)
            rt.refresh()
            return operator.retry_failed(
                rt.queue_url, flow, self._desk(), lambda rid, source: rt.sync_now(rid, source).outcome, ids=keys
            )

    def skip(self, flow: str, keys: list[str], note: str) -> int:
        from erpsync.runtime import operator, queues

        with self._lock:
            by = f"{getpass.getuser()} (console)"
            return operator.skip_failed(queues.queue_url(flow), flow, self._desk(), note, by, ids=keys)

    def redrive(self, flow: str) -> int:
        from erpsync.runtime import operator, queues

        with self._lock:
            return operator.redrive(queues.queue_url(flow), flow, self._desk())


class StackOps:
    """The same through a deployed stack's operator API, signed as the operator."""

    def __init__(self, stack: str, client: Any) -> None:
        self.where, self.client = f"stack {stack}", client

    def failed(self, flow: str, error_type: str | None = None) -> list[Failure]:
        return [Failure.from_row(r) for r in self.client.failed(flow, error_type)]

    def retry(self, flow: str, keys: list[str]) -> dict[str, int]:
        return dict(self.client.retry(flow, keys))

    def skip(self, flow: str, keys: list[str], note: str) -> int:
        return int(self.client.skip(flow, keys, note))

    def redrive(self, flow: str) -> int:
        return int(self.client.redrive(flow))


# --------------------------------------------------------------------------- reads


@dataclass
class Overview:
    now: datetime
    hours: dict[str, dict[str, list[int]]]
    """flow -> outcome -> attempts in each of the last 24 hours (oldest first)."""
    days: dict[str, dict[str, list[int]]]
    """flow -> outcome -> attempts in each of the last 7 days (oldest first)."""
    open_failures: Counter[str] = field(default_factory=Counter)
    breakers: list[dict[str, Any]] = field(default_factory=list)
    queues: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """What could not be read (the rest is still shown)."""


def _at(row: dict[str, Any]) -> datetime | None:
    try:
        at = datetime.fromisoformat(str(row.get("at", "")).split("#", 1)[0])
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def overview(now: datetime | None = None) -> Overview:
    """The sync log bucketed per flow (hours of the last day, days of the last week), open failures
    per flow, each connection's breaker and each flow's queue depths."""
    from erpsync.state.synclog import SyncLog

    now = now or datetime.now(UTC)
    flows = list(NAMES)
    ov = Overview(
        now,
        {f: {o: [0] * 24 for o in OUTCOMES} for f in flows},
        {f: {o: [0] * 7 for o in OUTCOMES} for f in flows},
    )
    since = (now - timedelta(days=7)).isoformat(timespec="milliseconds")
    try:
        log = SyncLog(os.environ["SYNC_LOG_TABLE"])
        for outcome in OUTCOMES:
            for row in log.since(outcome, since, ("flow", "at")):
                at, flow = _at(row), str(row.get("flow") or "?")
                if at is None:
                    continue
                age = (now - at).total_seconds()
                ov.hours.setdefault(flow, {o: [0] * 24 for o in OUTCOMES})
                ov.days.setdefault(flow, {o: [0] * 7 for o in OUTCOMES})
                if 0 <= age < 86400:
                    ov.hours[flow][outcome][23 - int(age // 3600)] += 1
                if 0 <= age < 7 * 86400:
                    ov.days[flow][outcome][6 - int(age // 86400)] += 1
    except Exception as exc:
        ov.problems.append(f"sync log: {type(exc).__name__}: {exc}")
    try:
        ov.open_failures = Counter(f.flow for f in FailuresDesk(os.environ["BINDINGS_TABLE"]).open())
    except Exception as exc:
        ov.problems.append(f"failures desk: {type(exc).__name__}: {exc}")
    ov.breakers = breakers(ov.problems)
    ov.queues = queue_depths(flows, ov.problems)
    return ov


def breakers(problems: list[str]) -> list[dict[str, Any]]:
    """Each connection's breaker: open for how long still, down since how long, trips in a row."""
    from erpsync.state.guards import Breaker
    from erpsync.state.settings import SettingsStore

    try:
        table = os.environ["BINDINGS_TABLE"]
        conns = SettingsStore(table).load().effective_connections()
        breaker = Breaker(table)
        out = []
        for cid, conn in conns.items():
            state = breaker.state(cid, fresh=True)
            out.append(
                {
                    "connection": cid,
                    "kind": conn.kind,
                    "open_for": breaker.open_for(cid),
                    "down_for": breaker.down_for(cid),
                    "trips": int(state.get("trips", 0) or 0),
                }
            )
        return out
    except Exception as exc:
        problems.append(f"breakers: {type(exc).__name__}: {exc}")
        return []


DEPTHS = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed")


def queue_depths(flows: list[str], problems: list[str]) -> list[dict[str, Any]]:
    """Each flow's queue: waiting, in flight, delayed (retries waiting their turn), and its failed
    queue (records not yet folded into the desk)."""
    from erpsync.runtime import queues

    out = []
    for flow in flows:
        try:
            url = queues.queue_url(flow)
            a = queues.client().get_queue_attributes(QueueUrl=url, AttributeNames=list(DEPTHS))["Attributes"]
            dlq = queues.client().get_queue_attributes(QueueUrl=queues.dlq_url(url), AttributeNames=list(DEPTHS))
            out.append(
                {
                    "flow": flow,
                    "waiting": int(a.get(DEPTHS[0], 0)),
                    "in_flight": int(a.get(DEPTHS[1], 0)),
                    "delayed": int(a.get(DEPTHS[2], 0)),
                    "failed_queue": sum(int(v) for v in dlq["Attributes"].values()),
                }
            )
        except Exception as exc:
            problems.append(f"queue of {flow}: {type(exc).__name__}: {exc}")
    return out


@dataclass
class RecordView:
    flow: str
    id: str
    rows: list[dict[str, Any]]
    """Every attempt in the sync log, oldest first."""
    source: str = ""
    target: str = ""
    binding: Any = None
    failure: Failure | None = None


def record(flow: str, id: str, source: str | None = None) -> RecordView:
    """One record: its sync-log history, its binding (the record on the other side) and its open
    failure, if any."""
    from erpsync.state.bindings import Bindings
    from erpsync.state.settings import SettingsStore
    from erpsync.state.synclog import SyncLog

    spec = BY_NAME[flow]
    rows = SyncLog(os.environ["SYNC_LOG_TABLE"]).history(flow, id)
    table = os.environ["BINDINGS_TABLE"]
    last = rows[-1] if rows else {}
    src, tgt = source or str(last.get("source_system") or ""), str(last.get("target_system") or "")
    if not src or not tgt:  # never logged: the default route's connections
        route = SettingsStore(table).load().effective_routes()[0]
        ends = {"store": route.store, "erp": route.erp}
        src, tgt = src or ends[spec.source], tgt or ends[spec.target]
    desk = FailuresDesk(table)
    return RecordView(
        flow,
        id,
        rows,
        src,
        tgt,
        Bindings(table).get(spec.entity, src, id, tgt),
        desk.get(failure_key(flow, src, id)),
    )


def settings_view(compare: tuple[int, int] | None = None) -> dict[str, Any]:
    """The settings in force (defaults included), the latest versions, and a diff of two versions."""
    from erpsync.state.settings import SettingsError, SettingsStore, diff

    store = SettingsStore(os.environ["BINDINGS_TABLE"])
    view: dict[str, Any] = {
        "current": store.load().model_dump_json(indent=2),
        "version": store.head()[0],
        "history": store.history(limit=50),
        "compare": None,
        "error": "",
    }
    if compare:
        try:
            a, b = (store.get(v) for v in compare)
            view["compare"] = (compare, diff(a.after, b.after))
        except SettingsError as exc:
            view["error"] = str(exc)
    return view
