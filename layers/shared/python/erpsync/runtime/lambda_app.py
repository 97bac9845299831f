"""One Lambda handler for every flow (``FLOW`` names it): SQS batches go to the worker, the
schedule polls or sweeps, and an operator can ask to sync one record now.

``build`` wires a flow from the catalogue, the settings' connections and routes, and the system
plugins; it refuses, before any record is touched, a route whose systems cannot serve the flow
(``ConfigurationError`` names what is missing). Everything heavy is built once per container.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from erpsync.runtime import logs, metrics

if TYPE_CHECKING:
    from erpsync.flows.base import SyncResult
    from erpsync.flows.catalog import FlowSpec
    from erpsync.flows.sync import RecordSync
    from erpsync.model import ChangeNotice
    from erpsync.runtime.worker import Outcome, Worker
    from erpsync.settings import Connection, Route, Settings
    from erpsync.state.bindings import Bindings
    from erpsync.state.cursors import Cursors
    from erpsync.state.guards import Breaker, Leases, SystemGate
    from erpsync.state.settings import SettingsStore
    from erpsync.systems.ports import Deadline, System

# Importing a handler module stays cheap (no boto3, models or httpx): ``build`` imports the
# heavy parts on the first invocation, once per container, and ``runtime`` keeps what it built.

logs.install(os.environ.get("LOG_LEVEL", "INFO"))
log = logging.getLogger("erpsync.runtime")

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
POLL_RESERVE_S = 10.0
"""A poll stops taking pages when less than this is left in the invocation."""


class ConfigurationError(RuntimeError):
    """The settings ask for something no system can do; nothing was synced."""


@dataclass
class Lane:
    """One route of a flow: source connection -> target connection, with its rules."""

    source: str
    target: str
    route: Route
    rules: RecordSync


@dataclass
class Connections:
    """The connected systems of a container, by connection id (connected once, reused)."""

    table: str
    deadline: Deadline
    breaker: Breaker | None = None
    """Told every answer of every connection (see ``SystemGate.answered``)."""
    systems: dict[str, System] = field(default_factory=dict)
    gates: dict[str, SystemGate] = field(default_factory=dict)
    settings_of: dict[str, Any] = field(default_factory=dict)
    flow: str = ""
    """The flow these connections serve (the ``flow`` dimension of their request metrics)."""

    @contextmanager
    def token_lease(self, name: str) -> Iterator[bool]:
        """Hold the lease ``name`` for the block if no other worker does (True when this one got it)."""
        import uuid

        from erpsync.state.guards import Leases

        leases, token = Leases(self.table, seconds=60.0), uuid.uuid4().hex
        got = leases.acquire(name, token)
        try:
            yield got
        finally:
            if got:
                leases.release(name, token)

    def connect(self, cid: str, conn: Connection, settings: Callable[[], Settings]) -> System:
        if cid in self.systems:
            return self.systems[cid]
        from erpsync.model.base import ValidationError
        from erpsync.state.guards import SystemGate
        from erpsync.systems import registry
        from erpsync.systems.plugin import Wiring

        plugin = registry.plugin(conn.kind)
        if not conn.secret:
            raise ConfigurationError(f"connection {cid!r} ({conn.kind}) names no secret")
        try:
            secret = plugin.secret_model.model_validate(registry.secret(conn.secret))
        except ValidationError as exc:
            raise ConfigurationError(f"secret {conn.secret} of connection {cid!r} ({conn.kind}): {exc}") from exc

        def own_settings() -> Any:
            doc = settings()
            cached = self.settings_of.get(cid)
            if cached is not None and cached[0] is doc:  # the same settings document: as validated
                return cached[1]
            current = doc.effective_connections()[cid].settings
            validated = (
                cached[1]
                if cached is not None and cached[2] == current
                else plugin.settings_model.model_validate(current)
            )
            self.settings_of[cid] = (doc, validated, current)
            return validated

        try:
            own_settings()
        except ValidationError as exc:
            raise ConfigurationError(f"settings of connection {cid!r} ({conn.kind}): {exc}") from exc
        if cid not in self.gates:
            self.gates[cid] = SystemGate(self.table, cid, self.breaker)
            self.gates[cid].observer = metrics.gate_observer(self.flow, cid)
        gate = self.gates[cid]

        def reload_secret() -> Any:
            """The secret as stored now; the one in hand when it cannot be read or is not valid."""
            try:
                return plugin.secret_model.model_validate(registry.secret(conn.secret, force=True))
            except Exception:
                log.exception("could not read secret %s again for connection %s", conn.secret, cid)
                return secret

        def save_secret(document: dict[str, Any]) -> None:
            registry.save_secret(conn.secret, document)

        system = plugin.connect(
            Wiring(
                cid,
                secret,
                own_settings,
                gate,
                self.deadline,
                reload_secret,
                save_secret,
                self.token_lease,
                points=gate.points,
            )
        )
        self.systems[cid] = system
        return system


def check_routes(spec: FlowSpec, settings: Settings) -> list[tuple[str, str, Route]]:
    """The (source, target, route) lanes of ``spec``.

    Raises ``ConfigurationError`` naming what is missing when a route names an unknown connection
    or system kind, puts a connection in the wrong role, or lists this flow although one of its
    systems cannot serve it. A route for every flow (``*``) simply leaves out flows its systems
    do not serve.
    """
    from erpsync.systems import registry
    from erpsync.systems.plugin import SOURCE, TARGET

    conns = settings.effective_connections()
    lanes: list[tuple[str, str, Route]] = []
    problems: list[str] = []
    for route in settings.effective_routes():
        if not route.runs(spec.name, spec.group):
            continue
        ends = {"store": route.store, "erp": route.erp}
        source, target = ends[spec.source], ends[spec.target]
        serves = True
        for cid, role, direction in ((source, spec.source, SOURCE), (target, spec.target, TARGET)):
            conn = conns.get(cid)
            if conn is None:
                problems.append(f"route {route.store}->{route.erp} names connection {cid!r}, which is not defined")
                serves = False
                continue
            try:
                plugin = registry.plugin(conn.kind)
            except registry.UnknownSystem as exc:
                problems.append(f"connection {cid!r}: {exc}")
                serves = False
                continue
            if conn.role != role or plugin.role != role:
                problems.append(f"connection {cid!r} ({conn.kind}, a {plugin.role}) cannot be the {role} of a route")
                serves = False
            elif not plugin.can(spec.entity, direction):
                serves = False
                if "*" not in route.flows:
                    problems.append(
                        f"{conn.kind} (connection {cid!r}) has no adapter to be the {direction} of "
                        f"{spec.entity}s, which flow {spec.name} needs"
                    )
        if serves:
            lanes.append((source, target, route))
    if problems:
        raise ConfigurationError(f"flow {spec.name}: " + "; ".join(problems))
    return lanes


def check_settings(settings: Settings) -> None:
    """Refuse settings no deployment could run: every flow's routes (``check_routes``) and every
    connection's own settings against its plugin's model. ``ConfigurationError`` names each problem."""
    from erpsync.flows.catalog import FLOWS
    from erpsync.model.base import ValidationError
    from erpsync.systems import registry

    problems: list[str] = []
    for spec in FLOWS:
        try:
            check_routes(spec, settings)
        except ConfigurationError as exc:
            problems.append(str(exc))
    for cid, conn in settings.effective_connections().items():
        try:
            registry.plugin(conn.kind).settings_model.model_validate(conn.settings)
        except registry.UnknownSystem:
            continue  # named by the route check
        except ValidationError as exc:
            problems.append(f"settings of connection {cid!r} ({conn.kind}): {exc}")
    if problems:
        raise ConfigurationError("; ".join(dict.fromkeys(problems)))


@dataclass
class Dispatcher:
    """What the worker sees as "the flow": routes each notice to its lane's rules."""

    name: str
    lanes: list[Lane]

    @property
    def source(self) -> str:
        return self.lanes[0].source if self.lanes else ""

    @property
    def target(self) -> str:
        return self.lanes[0].target if self.lanes else ""

    @property
    def systems(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c for lane in self.lanes for c in (lane.source, lane.target)))

    def sync(self, notice: ChangeNotice) -> SyncResult:
        from erpsync.errors import MappingMissing

        if not self.lanes:  # e.g. an ERP's webhook ringing a flow the store cannot take here
            from erpsync.flows.base import SyncResult

            return SyncResult("filtered", "", f"flow {self.name} runs on no route of these settings")
        lanes = [ln for ln in self.lanes if ln.source == notice.source and notice.target in (None, ln.target)]
        if not lanes:
            raise MappingMissing(
                f"flow {self.name} has no route from connection {notice.source!r}"
                + (f" to {notice.target!r}" if notice.target else "")
            )
        results = [lane.rules.sync(notice.model_copy(update={"target": lane.target})) for lane in lanes]
        if len(results) == 1:
            return results[0]
        from erpsync.flows.base import SyncResult

        order = ("failed", "synced", "filtered", "skipped")
        outcome = min((r.outcome for r in results), key=lambda o: order.index(o) if o in order else 0)
        return SyncResult(outcome, ",".join(r.target_id for r in results), "; ".join(r.message for r in results))

    @property
    def batched(self) -> bool:
        """Whether the flow's rules write many records at once (stock, prices)."""
        return any(callable(getattr(lane.rules, "sync_many", None)) for lane in self.lanes)

    def loads_many(self) -> bool:
        """Whether the flow's rules take an initial load's page at once (``load_many``: products)."""
        return self.batched or any(callable(getattr(lane.rules, "load_many", None)) for lane in self.lanes)

    def sync_many(self, notices: list[ChangeNotice]) -> list[Any]:
        """Each notice's ``SyncResult`` or the exception its sync raised, in order; each lane's
        notices in one ``sync_many`` of its rules when they have one."""
        return self._many(notices, ("sync_many",))

    def load_many(self, notices: list[ChangeNotice]) -> list[Any]:
        """``sync_many`` for a page of an initial load: each lane's notices in one ``load_many`` of
        its rules (else ``sync_many``) when they have one."""
        return self._many(notices, ("load_many", "sync_many"))

    def _many(self, notices: list[ChangeNotice], methods: tuple[str, ...]) -> list[Any]:
        def many(rules: Any) -> Any:
            return next((getattr(rules, m) for m in methods if callable(getattr(rules, m, None))), None)

        out: list[Any] = [None] * len(notices)
        groups: dict[int, list[int]] = {}
        for i, notice in enumerate(notices):
            match = [
                n
                for n, ln in enumerate(self.lanes)
                if ln.source == notice.source and notice.target in (None, ln.target)
            ]
            if len(match) != 1 or many(self.lanes[match[0]].rules) is None:
                try:
                    out[i] = self.sync(notice)
                except Exception as exc:
                    out[i] = exc
                continue
            groups.setdefault(match[0], []).append(i)
        for n, idx in groups.items():
            lane = self.lanes[n]
            batch = [notices[i].model_copy(update={"target": lane.target}) for i in idx]
            try:
                answers = list(many(lane.rules)(batch))
            except Exception as exc:
                answers = [exc] * len(idx)
            for i, answer in zip(idx, answers, strict=True):
                out[i] = answer
        return out


@dataclass
class FlowRuntime:
    """A flow wired to its connections, tables and queue."""

    spec: FlowSpec
    settings_store: SettingsStore
    connections: Connections
    worker: Worker
    cursors: Cursors
    queue_url: str
    bindings: Bindings
    leases: Leases
    dispatcher: Dispatcher = field(init=False)
    _routes_of: Any = None

    def __post_init__(self) -> None:
        self.dispatcher = Dispatcher(self.spec.name, [])
        self.worker.flow = self.dispatcher
        self.rewire()

    @property
    def flow(self) -> Dispatcher:
        return self.dispatcher

    @property
    def settings(self) -> Settings:
        return self.settings_store.load()

    @property
    def gates(self) -> dict[str, SystemGate]:
        return self.connections.gates

    def rewire(self) -> None:
        """Build the lanes from the settings in force (again when routes or mappings changed)."""
        from erpsync.flows.sync import FlowContext
        from erpsync.systems import registry
        from erpsync.systems.plugin import SOURCE, TARGET

        settings = self.settings
        key = self.settings_store.generation
        if key == self._routes_of:
            return
        conns = settings.effective_connections()
        lanes: list[Lane] = []
        for source, target, route in check_routes(self.spec, settings):
            src = self.connections.connect(source, conns[source], lambda: self.settings)
            tgt = self.connections.connect(target, conns[target], lambda: self.settings)
            extra: dict[tuple[str, str], Any] = {}
            for entity in self.spec.needs:
                for direction, cid, system in ((SOURCE, source, src), (TARGET, target, tgt)):
                    if registry.plugin(conns[cid].kind).can(entity, direction):
                        extra[(entity, direction)] = system.port(entity, direction)
            ctx = FlowContext(
                spec=self.spec,
                source=source,
                target=target,
                source_port=src.port(self.spec.entity, SOURCE),
                target_port=tgt.port(self.spec.entity, TARGET),
                bindings=self.bindings,
                settings=settings.for_route(route),
                leases=self.leases,
                extra=extra,
            )
            lanes.append(Lane(source, target, route, self.spec.load_rules()(ctx)))
        self.dispatcher.lanes = lanes
        self.worker.systems = self.dispatcher.systems
        self._routes_of = key

    def refresh(self) -> None:
        """Pick up changed settings (re-read at most once a minute): every lane, adapter and guard."""
        settings = self.settings
        self.rewire()
        self.worker.max_attempts = settings.max_attempts
        self.worker.give_up_after_hours = settings.give_up_after_hours
        self.worker.max_delay_s = settings.retry_delay_cap_s
        self.worker.parallel = settings.batch_parallelism
        if self.worker.breaker:
            self.worker.breaker.threshold = settings.breaker_threshold
            self.worker.breaker.base_open_s = settings.breaker_open_s
        configure_gates(self.gates, settings)

    def poll(self, should_stop: Callable[[], bool] = lambda: False) -> dict[str, Any]:
        from erpsync.runtime import poller

        if self.spec.schedule == "none":
            return {"flow": self.spec.name, "enqueued": 0, "lanes": []}
        results = []
        enqueued = 0
        for lane in self.dispatcher.lanes:
            r = poller.poll(
                self.spec.name,
                lane.source,
                lane.target,
                lane.rules.ctx.source_port.changes,
                self.cursors,
                self.queue_url,
                self.settings,
                seen=self.worker.seen,
                should_stop=should_stop,
            )
            enqueued += r.enqueued
            metrics.add(
                "Queued",
                r.enqueued,
                dimensions={"flow": self.spec.name, "connection": lane.source, "via": "poll"},
                rollups=metrics.BY_FLOW,
            )
            log.info(
                "%s poll of %s since %s: %d queued in %d page(s)%s",
                self.spec.name,
                lane.source,
                r.since.isoformat(),
                r.enqueued,
                r.pages,
                " (stopped for time)" if r.stopped else "",
                extra={"flow": self.spec.name, "connection": lane.source, "via": "poll", "queued": r.enqueued},
            )
            results.append(
                {
                    "source": lane.source,
                    "target": lane.target,
                    "since": r.since.isoformat(),
                    "enqueued": r.enqueued,
                    "cursor": r.cursor.isoformat(),
                    "pages": r.pages,
                    "stopped": r.stopped,
                }
            )
        if self.worker.desk is not None:  # the open-failures alarm reads this (see template.yaml)
            try:
                metrics.open_failures(self.spec.name, len(self.worker.desk.open(flow=self.spec.name)))
            except Exception:
                log.exception("could not count the open failures of %s", self.spec.name)
        first = results[0] if results else {"since": "", "cursor": ""}
        return {
            "flow": self.spec.name,
            "since": first["since"],
            "cursor": first["cursor"],
            "enqueued": enqueued,
            "lanes": results,
        }

    def sweep(self, hours: float = 24.0, should_stop: Callable[[], bool] = lambda: False) -> dict[str, Any]:
        """Reconciliation: enqueue every recent source record that has no binding yet, page by page.

        A lost webhook, or a poll that died before enqueuing, costs at most one sweep interval.
        """
        from datetime import UTC, datetime, timedelta

        from erpsync.runtime import queues

        checked = enqueued = 0
        desk = self.worker.desk
        open_failures = desk.open(flow=self.spec.name) if desk else []
        for lane in self.dispatcher.lanes:
            held = {f.id for f in open_failures if f.source == lane.source}
            for page in lane.rules.ctx.source_port.changes(datetime.now(UTC) - timedelta(hours=hours)):
                ids = [n.id for n in page.notices]
                missing = set(self.bindings.unbound(self.spec.entity, lane.source, ids, lane.target)) - held
                batch = [
                    n.model_copy(update={"source": lane.source, "target": lane.target, "snapshot": None})
                    for n in page.notices
                    if n.id in missing
                ]
                seen, key = self.worker.seen, f"{self.spec.name}#{lane.source}"
                if seen is not None and batch:  # on its way already (a poll or a sweep queued it): not again
                    done, queued = seen.standing(key, [n.id for n in batch])
                    batch = [n for n in batch if not n.version or n.version not in (done.get(n.id), queued.get(n.id))]
                correlation = logs.Correlation(self.spec.name, "sweep")
                found = queues.send_notices(self.queue_url, batch, correlation)
                correlation.queued()
                hold = self.settings.requeue_after_s
                if seen is not None and hold and any(n.version for n in batch):
                    seen.mark_queued(key, {n.id: str(n.version) for n in batch if n.version}, hold)
                metrics.add(
                    "SweepFound",
                    found,
                    dimensions={"flow": self.spec.name, "connection": lane.source},
                    rollups=metrics.BY_FLOW,
                )
                enqueued += found
                checked += len(ids)
                if should_stop():
                    break
        return {"flow": self.spec.name, "checked": checked, "enqueued": enqueued}

    def drain(self, max_messages: int = 10_000) -> list[Outcome]:
        """Work the queue now until it is empty (what the SQS trigger does, by hand)."""
        from erpsync.runtime import queues

        self.refresh()
        outcomes: list[Outcome] = []
        batched = self.dispatcher.batched
        while len(outcomes) < max_messages:
            records = queues.receive(self.queue_url)
            while batched and records and len(records) < self.spec.batch:  # a batch as SQS would gather it
                more = queues.receive(self.queue_url, min(10, self.spec.batch - len(records)))
                if not more:
                    break
                records += more
            if not records:
                return outcomes
            if batched and len(records) > 1:
                got = self.worker.run_many(records)
            else:
                got = [self.worker.handle_record(r) for r in records]
            for record, outcome in zip(records, got, strict=True):
                if outcome is None:
                    continue  # not started: it comes back after its visibility timeout
                if outcome.ok:
                    queues.delete(self.queue_url, record["receiptHandle"])
                outcomes.append(outcome)
        return outcomes

    def run(self, notices: list[ChangeNotice], *, load: bool = False) -> list[Outcome]:
        """Sync these notices now, in this process, as the worker would a queue batch of them
        (the initial load): side by side on ``batch_parallelism`` threads (the system's seats cap
        what reaches it), each its outcome, sync-log row and, when it fails, its desk item.
        ``load`` (a page of an initial load): written at once where the flow's rules can."""
        from erpsync.runtime.worker import Envelope, Outcome

        self.refresh()
        correlation = logs.new_correlation_id()
        records = [
            {"messageId": f"run-{i}", "body": Envelope(n, correlation_id=correlation).body()}
            for i, n in enumerate(notices)
        ]
        if load and self.dispatcher.loads_many() and len(records) > 1:
            got: list[Outcome | None] = list(self.worker.run_many(records, load=True))
        elif self.dispatcher.batched and len(records) > 1:
            got = list(self.worker.run_many(records))
        else:  # side by side, as a queue batch runs
            got = list(self.worker.each(self.worker.handle_record, records))
        return [o if o is not None else Outcome(False, "retrying", "not started: out of time") for o in got]

    def sync_now(self, record_id: str, source: str | None = None) -> Outcome:
        """Sync one record now, as the worker would (the "sync this record" button): an operator's
        retry, tried even when the record is held on the failures desk."""
        from erpsync.model import ChangeNotice
        from erpsync.runtime.worker import Envelope

        lane = next((ln for ln in self.dispatcher.lanes if source in (None, ln.source)), None)
        notice = ChangeNotice(
            source=lane.source if lane else (source or ""),
            entity=self.spec.entity,
            id=record_id,
            target=lane.target if lane else None,
        )
        body = Envelope(notice, by_operator=True).body()
        return self.worker.handle_record({"messageId": f"now-{record_id}", "body": body, "attributes": {}})


def build(flow_name: str) -> FlowRuntime:
    """Wire ``flow_name`` from the environment, the catalogue, the settings and the plugins."""
    from erpsync.flows import catalog
    from erpsync.runtime import queues
    from erpsync.runtime.worker import Worker
    from erpsync.state.bindings import Bindings, SeenVersions
    from erpsync.state.cursors import Cursors
    from erpsync.state.failures import FailuresDesk
    from erpsync.state.guards import Breaker, Leases
    from erpsync.state.settings import SettingsStore
    from erpsync.state.synclog import SyncLog
    from erpsync.systems.ports import Deadline

    spec = catalog.get(flow_name)
    table = os.environ["BINDINGS_TABLE"]
    settings_store = SettingsStore(table)
    settings = settings_store.load()
    breaker = Breaker(table, threshold=settings.breaker_threshold, base_open_s=settings.breaker_open_s)
    connections = Connections(table, Deadline(), breaker, flow=spec.name)
    queue_url = queues.queue_url(spec.name)
    synclog = SyncLog(os.environ["SYNC_LOG_TABLE"], settings.log_retention_days)

    worker = Worker(
        None,  # the dispatcher, set by FlowRuntime
        synclog,
        queue_url,
        settings.max_attempts,
        breaker=breaker,
        give_up_after_hours=settings.give_up_after_hours,
        seen=SeenVersions(table),
        deadline=connections.deadline,
        flow_name=spec.name,
        desk=FailuresDesk(table),
    )
    worker.max_delay_s = settings.retry_delay_cap_s
    worker.parallel = settings.batch_parallelism
    rt = FlowRuntime(
        spec, settings_store, connections, worker, Cursors(table), queue_url, Bindings(table), Leases(table)
    )
    configure_gates(rt.gates, settings)
    return rt


def configure_gates(gates: dict[str, SystemGate], settings: Settings) -> None:
    """Give each connection's gate the ceilings the settings hold now, else its system's own
    published ceiling (``Plugin.ceiling``, e.g. QuickBooks' 500 a minute, 10 at once and 10 a
    second; the system's requests a second hold unless the settings name their own)."""
    from erpsync.systems import registry

    connections = settings.effective_connections()
    for name, gate in gates.items():
        conn = connections.get(name)
        try:
            ceiling = registry.plugin(conn.kind).ceiling if conn is not None else None
        except registry.UnknownSystem:
            ceiling = None
        published = ceiling or (None, None, None)
        limit = settings.rate_limits.get(name)
        if limit is not None:
            per_second = limit.per_second if limit.per_second is not None else published[2]
            gate.configure(limit.per_minute, limit.concurrent, per_second)
        else:
            gate.configure(*published)
        gate.linger_s = settings.in_doubt_wait_s


@lru_cache(maxsize=16)
def runtime(flow_name: str) -> FlowRuntime:
    return build(flow_name)


def _remaining_s(context: Any) -> float | None:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return remaining() / 1000.0 if callable(remaining) else None


def flow_handler(flow_name: str) -> Handler:
    """The Lambda entry point of ``flow_name``: JSON log lines with the flow, cold start and request
    id (each record's lines with its id and correlation id), and the metrics flushed at the end
    (``logs.observed``)."""

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        import time

        rt = runtime(flow_name)
        left = _remaining_s(context)
        rt.connections.deadline.start(left)
        started = time.monotonic()

        def should_stop() -> bool:
            return left is not None and left - (time.monotonic() - started) < POLL_RESERVE_S

        try:
            rt.refresh()
            if "Records" in event:
                return rt.worker.handle_batch(event)
            action = event.get("erpsync")
            if action == "poll":
                from erpsync.errors import RateLimitedError
                from erpsync.state.guards import LimitExceeded

                try:
                    return rt.poll(should_stop)
                except (LimitExceeded, RateLimitedError) as exc:  # a ceiling to wait for, not a failure
                    log.warning(
                        "%s poll stopped at a ceiling (%s); the next tick resumes from the last checkpoint",
                        flow_name,
                        exc,
                    )
                    return {"flow": flow_name, "deferred": str(exc)}
                except Exception:
                    metrics.add("PollFailed", dimensions={"flow": flow_name})
                    log.exception("%s poll failed; the next tick starts from the last checkpoint", flow_name)
                    raise
            if action == "sweep":
                return rt.sweep(float(event.get("hours", 24)), should_stop)
            if action == "sync" and event.get("id"):
                outcome = rt.sync_now(str(event["id"]), event.get("source"))
                return {"outcome": outcome.outcome, "message": outcome.message}
            raise ValueError(f"{flow_name}: unrecognised event (keys {sorted(event)})")
        finally:
            rt.connections.deadline.clear()

    return logs.observed(handler, flow=flow_name)


def flow_handler_from_env() -> Handler:
    """The entry point of the flow the ``FLOW`` environment variable names (one module, every flow)."""
    name = os.environ.get("FLOW", "")
    if not name:
        raise RuntimeError("FLOW is not set: the template gives every flow function its flow name")
    return flow_handler(name)
