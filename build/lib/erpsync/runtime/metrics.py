"""Metrics per flow and connection, in CloudWatch's embedded metric format (EMF) through Powertools.

What the code counts as it works is kept in memory (a lock: a batch runs its records on threads)
and written at the end of each invocation (``flush``, which ``logs.observed`` calls): one EMF JSON
line (an ``_aws`` key) per set of dimension values, which CloudWatch Logs turns into metrics in the
``erpsync`` namespace (``POWERTOOLS_METRICS_NAMESPACE``). Only in Lambda
(``AWS_LAMBDA_FUNCTION_NAME`` set, and ``POWERTOOLS_METRICS_DISABLED`` not true): elsewhere (the
local stack, the CLI) nothing is kept. Counts are summed per invocation before they are written, so
read a count's *Sum*; durations and ages keep every value (*Average*, *Maximum*, percentiles).

Every line has the dimension ``service`` (``erpsync``) and is also rolled up as listed:

| metric | unit | dimensions | rolled up by | one per |
|---|---|---|---|---|
| ``Synced``, ``Skipped``, ``Filtered``, ``Failed`` | Count | flow, connection | flow | attempt with that outcome |
| ``Retrying`` | Count | flow, connection, error_type | flow + error_type; flow | attempt sent back to the queue |
| ``SyncDuration`` | Milliseconds | flow, connection | flow | attempt |
| ``NoticeAge`` | Seconds | flow, connection | flow | attempt: now minus the record's first attempt |
| ``Requests`` | Count | flow, connection | connection | HTTP request to an external system |
| ``Throttled`` | Count | flow, connection | connection | 429 answer |
| ``Unanswered`` | Count | flow, connection | connection | request with no answer, or 502/503/504 |
| ``BreakerOpened`` | Count | flow, connection | connection | time a system's breaker opened |
| ``BreakerOpenFor`` | Seconds | flow, connection | flow; connection | record meeting a down system (below) |
| ``Queued`` | Count | flow, connection, via | flow | notice queued by a webhook or a poll |
| ``SweepFound`` | Count | flow, connection | flow | record a sweep found unsynced and queued |
| ``PollFailed`` | Count | flow | - | scheduled poll that raised |
| ``WebhooksRefused`` | Count | connection | - | webhook answered 4xx |

``connection`` is the record's source connection for record metrics (``Synced`` ... ``NoticeAge``,
``Queued``, ``SweepFound``) and the system called for the request and breaker metrics.
``NoticeAge`` is written on every attempt, retries included, so its *Maximum* grows through an
outage of hours although no message stays in a queue. ``BreakerOpenFor`` is the seconds since a
system's breaker first opened with no answer going through since, written by each record that
meets it open or fails on the system while it keeps opening: it grows while the system stays
down and stops with the first answer (the template's breaker alarm reads its *Maximum*).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

SERVICE = "erpsync"
NAMESPACE = "erpsync"
"""Default namespace (the template sets ``POWERTOOLS_METRICS_NAMESPACE``; IAM grants this one)."""
COUNT, MILLISECONDS, SECONDS = "Count", "Milliseconds", "Seconds"
OUTCOME_METRICS = {
    "synced": "Synced",
    "skipped": "Skipped",
    "filtered": "Filtered",
    "failed": "Failed",
    "retrying": "Retrying",
}
BY_FLOW = (("flow",),)
BY_CONNECTION = (("connection",),)


def enabled() -> bool:
    """Metrics are kept in Lambda only, unless ``POWERTOOLS_METRICS_DISABLED`` says otherwise."""
    if os.environ.get("POWERTOOLS_METRICS_DISABLED", "").lower() in ("1", "true", "yes", "on"):
        return False
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


def namespace() -> str:
    return os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or NAMESPACE


@dataclass
class _Doc:
    """The metrics of one set of dimension values (one EMF line)."""

    dimensions: dict[str, str]
    rollups: tuple[tuple[str, ...], ...]
    values: dict[str, tuple[str, list[float]]] = field(default_factory=dict)


_lock = threading.Lock()
_docs: dict[tuple[object, ...], _Doc] = {}


def add(
    name: str,
    value: float = 1.0,
    *,
    unit: str = COUNT,
    dimensions: Mapping[str, str],
    rollups: tuple[tuple[str, ...], ...] = (),
) -> None:
    """Count ``value`` of ``name`` under ``dimensions`` (also rolled up to each of ``rollups``, a
    subset of the dimension names). Counts are summed; other units keep every value."""
    if not enabled():
        return
    dims = {k: str(v) or "-" for k, v in dimensions.items()}
    key = (tuple(dims.items()), rollups)
    with _lock:
        doc = _docs.get(key)
        if doc is None:
            doc = _docs[key] = _Doc(dims, rollups)
        kept = doc.values.get(name)
        if kept is None:
            doc.values[name] = (unit, [float(value)])
        elif unit == COUNT:
            kept[1][0] += float(value)
        else:
            kept[1].append(float(value))


def attempt(
    flow: str, connection: str, outcome: str, duration_ms: float, error_type: str = "", first_attempt_at: str = ""
) -> None:
    """One attempt at a record: its outcome, how long it took and how old its notice is."""
    if not enabled():
        return
    dims = {"flow": flow, "connection": connection}
    name = OUTCOME_METRICS.get(outcome)
    if name == "Retrying":
        add(
            name,
            dimensions={**dims, "error_type": error_type or "unknown"},
            rollups=(("flow", "error_type"), ("flow",)),
        )
    elif name:
        add(name, dimensions=dims, rollups=BY_FLOW)
    add("SyncDuration", duration_ms, unit=MILLISECONDS, dimensions=dims, rollups=BY_FLOW)
    age = notice_age_s(first_attempt_at)
    if age is not None:
        add("NoticeAge", age, unit=SECONDS, dimensions=dims, rollups=BY_FLOW)


def open_failures(flow: str, count: int) -> None:
    """How many records of ``flow`` are open on the failures desk now (each poll writes it)."""
    add("OpenFailures", count, dimensions={"flow": flow})


def breaker_open_for(flow: str, connection: str, seconds: float) -> None:
    """A record of ``flow`` met the breaker of ``connection`` (the system called) that first opened
    ``seconds`` ago with no answer going through since."""
    add(
        "BreakerOpenFor",
        seconds,
        unit=SECONDS,
        dimensions={"flow": flow, "connection": connection},
        rollups=(("flow",), ("connection",)),
    )


def notice_age_s(first_attempt_at: str, now: datetime | None = None) -> float | None:
    """Seconds since the record's first attempt (None when unknown)."""
    try:
        first = datetime.fromisoformat(first_attempt_at)
    except (TypeError, ValueError):
        return None
    if first.tzinfo is None:
        first = first.replace(tzinfo=UTC)
    return max(0.0, ((now or datetime.now(UTC)) - first).total_seconds())


def gate_observer(flow: str, connection: str) -> Callable[[int | None, float], None]:
    """What a connection's gate tells of each answer (``SystemGate.observer``): the status (None: no
    answer) and the seconds the breaker opened for on it (0: it did not)."""
    dims = {"flow": flow, "connection": connection}

    def observe(status: int | None, opened_s: float) -> None:
        add("Requests", dimensions=dims, rollups=BY_CONNECTION)
        if status == 429:
            add("Throttled", dimensions=dims, rollups=BY_CONNECTION)
        elif status is None or status in (502, 503, 504):
            add("Unanswered", dimensions=dims, rollups=BY_CONNECTION)
        if opened_s > 0:
            add("BreakerOpened", dimensions=dims, rollups=BY_CONNECTION)

    return observe


def flush() -> None:
    """Write what was counted since the last flush as EMF lines on stdout, and forget it."""
    global _docs
    with _lock:
        docs, _docs = _docs, {}
    if not docs:
        return
    from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

    for doc in docs.values():
        provider = AmazonCloudWatchEMFProvider(namespace=namespace(), service=SERVICE)
        for dim, label in doc.dimensions.items():
            provider.add_dimension(name=dim, value=label)
        for rollup in doc.rollups:
            provider.add_dimensions(service=SERVICE, **{k: doc.dimensions[k] for k in rollup})
        for name, (unit, values) in doc.values.items():
            for value in values:
                provider.add_metric(name=name, unit=unit, value=value)
        provider.flush_metrics()


def pending() -> dict[tuple[object, ...], _Doc]:
    """What is counted and not yet flushed (tests)."""
    with _lock:
        return dict(_docs)
