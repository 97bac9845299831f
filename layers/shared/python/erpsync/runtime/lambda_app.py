"""One Lambda handler per flow: SQS batches go to the worker, the schedule polls, and an
operator can ask to sync one record now. Everything heavy is built once per container.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from erpsync.runtime import logs

if TYPE_CHECKING:
    from erpsync.flows.base import Flow
    from erpsync.runtime.settings import Settings, SettingsStore
    from erpsync.runtime.worker import Outcome, Worker
    from erpsync.state.bindings import Bindings
    from erpsync.state.cursors import Cursors
    from erpsync.state.guards import SystemGate

# Importing a handler module stays cheap (no boto3, pydantic or httpx): ``build`` imports the
# heavy parts on the first invocation, once per container, and ``runtime`` keeps what it built.

logs.install(os.environ.get("LOG_LEVEL", "INFO"))

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass
class FlowRuntime:
    """A flow wired to its systems, tables and queue."""

    flow: Flow
    settings_store: SettingsStore
    worker: Worker
    cursors: Cursors
    queue_url: str
    bindings: Bindings
    gates: dict[str, SystemGate]

    @property
    def settings(self) -> Settings:
        return self.settings_store.load()

    def refresh(self) -> None:
        """Pick up changed settings (re-read at most once a minute)."""
        settings = self.settings
        self.flow.settings = settings  # type: ignore[attr-defined]
        self.worker.max_attempts = settings.max_attempts
        self.worker.give_up_after_hours = settings.give_up_after_hours
        self.worker.max_delay_s = settings.retry_delay_cap_s
        if self.worker.breaker:
            self.worker.breaker.threshold = settings.breaker_threshold
            self.worker.breaker.base_open_s = settings.breaker_open_s
        configure_gates(self.gates, settings)

    def poll(self) -> dict[str, Any]:
        from erpsync.runtime import poller

        r = poller.poll(self.flow, self.cursors, self.queue_url, self.settings, seen=self.worker.seen)
        return {
            "flow": self.flow.name,
            "since": r.since.isoformat(),
            "enqueued": r.enqueued,
            "cursor": r.cursor.isoformat(),
        }

    def sweep(self, hours: float = 24.0) -> dict[str, Any]:
        """Reconciliation: enqueue every recent source record that has no binding yet.

        A lost webhook, or a poll that died before enqueuing, costs at most one sweep interval.
        """
        from datetime import UTC, datetime, timedelta

        from erpsync.runtime import queues

        notices = self.flow.changes(datetime.now(UTC) - timedelta(hours=hours))
        entity = self.flow.name.rstrip("s")
        missing = set(self.bindings.unbound(entity, self.flow.source, [n.id for n in notices], self.flow.target))
        queues.send_notices(self.queue_url, [n for n in notices if n.id in missing])
        return {"flow": self.flow.name, "checked": len(notices), "enqueued": len(missing)}

    def drain(self, max_messages: int = 10_000) -> list[Outcome]:
        """Work the queue now until it is empty (what the SQS trigger does, by hand)."""
        from erpsync.runtime import queues

        self.refresh()
        outcomes: list[Outcome] = []
        while len(outcomes) < max_messages:
            records = queues.receive(self.queue_url)
            if not records:
                return outcomes
            for record in records:
                outcome = self.worker.handle_record(record)
                if outcome.ok:
                    queues.delete(self.queue_url, record["receiptHandle"])
                outcomes.append(outcome)
        return outcomes

    def sync_now(self, record_id: str) -> Outcome:
        """Sync one record now, as the worker would (the "sync this record" button)."""
        from erpsync.model import ChangeNotice

        notice = ChangeNotice(source=self.flow.source, entity=self.flow.name.rstrip("s"), id=record_id)
        record = {"messageId": f"now-{record_id}", "body": notice.model_dump_json(), "attributes": {}}
        return self.worker.handle_record(record)


def build(flow_name: str) -> FlowRuntime:
    """Wire ``flow_name`` from the environment, secrets and stored settings."""
    from erpsync.flows.documents import InvoicesFlow, ShipmentsFlow
    from erpsync.flows.orders import OrdersFlow
    from erpsync.runtime.settings import SettingsStore
    from erpsync.runtime.worker import Worker
    from erpsync.state.bindings import Bindings, SeenVersions
    from erpsync.state.cursors import Cursors
    from erpsync.state.guards import Breaker, Leases, SystemGate
    from erpsync.state.synclog import SyncLog
    from erpsync.systems import registry

    table = os.environ["BINDINGS_TABLE"]
    settings_store = SettingsStore(table)
    settings = settings_store.load()
    store_name = os.environ.get("STORE_SYSTEM", "magento")
    erp_name = os.environ.get("ERP_SYSTEM", "acumatica")
    gates = {name: SystemGate(table, name) for name in (store_name, erp_name)}
    configure_gates(gates, settings)
    store = registry.store(store_name, os.environ["STORE_SECRET_NAME"], gate=gates[store_name])
    erp = registry.erp(erp_name, os.environ["ERP_SECRET_NAME"], settings, gate=gates[erp_name])
    bindings = Bindings(table)
    flows: dict[str, type[Any]] = {"orders": OrdersFlow, "shipments": ShipmentsFlow, "invoices": InvoicesFlow}
    flow: Flow = flows[flow_name](store, erp, bindings, settings)
    queue_url = os.environ[f"{flow_name.upper()}_QUEUE_URL"]
    synclog = SyncLog(os.environ["SYNC_LOG_TABLE"], settings.log_retention_days)

    def throttled(system: str, retry_after: float | None) -> None:
        if system in gates:
            gates[system].throttled(retry_after)

    worker = Worker(
        flow,
        synclog,
        queue_url,
        settings.max_attempts,
        breaker=Breaker(table, threshold=settings.breaker_threshold, base_open_s=settings.breaker_open_s),
        leases=Leases(table),
        give_up_after_hours=settings.give_up_after_hours,
        on_throttle=throttled,
        seen=SeenVersions(table),
    )
    worker.max_delay_s = settings.retry_delay_cap_s
    return FlowRuntime(flow, settings_store, worker, Cursors(table), queue_url, bindings, gates)


def configure_gates(gates: dict[str, SystemGate], settings: Settings) -> None:
    """Give each system's gate the ceilings the settings hold now."""
    for name, gate in gates.items():
        limit = settings.rate_limits.get(name)
        gate.configure(limit.per_minute if limit else None, limit.concurrent if limit else None)


@lru_cache(maxsize=8)
def runtime(flow_name: str) -> FlowRuntime:
    return build(flow_name)


def flow_handler(flow_name: str) -> Handler:
    """The Lambda entry point of ``flow_name``."""

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        rt = runtime(flow_name)
        rt.refresh()
        if "Records" in event:
            return rt.worker.handle_batch(event)
        action = event.get("erpsync")
        if action == "poll":
            return rt.poll()
        if action == "sweep":
            return rt.sweep(float(event.get("hours", 24)))
        if action == "sync" and event.get("id"):
            outcome = rt.sync_now(str(event["id"]))
            return {"outcome": outcome.outcome, "message": outcome.message}
        raise ValueError(f"{flow_name}: unrecognised event (keys {sorted(event)})")

    return handler
