"""The worker side of a flow: sync each queued notice and decide what happens on failure.

- success (synced, skipped, filtered): the message is done, and the record's item on the failures
  desk (``state/failures.py``), if one is open, is resolved;
- ``PermanentError``: onto the failures desk at once with the reason (one item per record, however
  often it fails; the failed queue only when the desk cannot be written);
- transient trouble of a remote system (outage, 5xx, timeout, 429, an open circuit breaker,
  another worker holding the record's lease): the notice goes back on the queue with a delay and
  *without* spending an attempt, so an ERP outage of hours fails nothing; only a record retrying
  for longer than ``give_up_after_hours`` is parked;
- anything attributable to the record that may pass (a bug, an unexpected answer): back on the
  queue with exponential backoff and jitter until ``max_attempts``, then onto the desk.

A record open on the desk is *held*: a notice of the version that failed (a poll's or sweep's
re-find, a second delivery) is done with at once, without a sync or a sync-log row; a newer version
of the record, or an operator's retry, is tried again.

A notice travels with its own attempt count and first-attempt time (the message body), so
re-queuing never trips SQS's own redrive, which stays as the backstop for crashed workers.
Every attempt writes one sync-log row.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from erpsync.errors import AuthError, PermanentError, RateLimitedError, RetryableError, SyncError
from erpsync.model import ChangeNotice
from erpsync.model.base import ValidationError
from erpsync.runtime import logs, metrics, queues
from erpsync.state import dynamo
from erpsync.state.bindings import SeenVersions
from erpsync.state.failures import OPEN, Failure, FailuresDesk, failure_key
from erpsync.state.guards import Breaker, Leases, LimitExceeded
from erpsync.state.synclog import LogRow, SyncLog
from erpsync.systems.ports import Deadline

log = logging.getLogger("erpsync.worker")
T = TypeVar("T")

BASE_DELAY_S = 10
MAX_DELAY_S = 900  # SQS's longest message delay
BUSY_DELAY_S = 5
ALREADY_DONE = "this version was synced already (a duplicate notice)"
RECORD_RESERVE_S = 5.0
"""A record is not started with less than this left before the deadline's margin."""
TRANSIENT = (
    "outage",
    "timeout",
    "rate_limited",
    "server_error",
    "breaker_open",
    "busy",
    "ceiling",
    "budget",
    "auth",
    "in_doubt",
)


@dataclass
class Outcome:
    ok: bool
    """True when the message is done with (synced, skipped, filtered, parked or re-queued)."""
    outcome: str
    message: str = ""

    def __post_init__(self) -> None:
        self.message = logs.mask(self.message)  # a failure reason may quote the record


@dataclass
class Envelope:
    """A notice with its delivery history (what the message body carries)."""

    notice: ChangeNotice
    attempt: int = 0
    first_attempt_at: str = ""
    correlation_id: str = ""
    """Made where the notice was made (webhook, poll, sweep; see ``logs.Correlation``), kept through
    re-queues and the failed queue: every log line of this record's processing carries it."""
    by_operator: bool = False
    """An operator's retry: tried even when the record is held on the failures desk."""

    @classmethod
    def parse(cls, body: str) -> Envelope:
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ValueError("message body is not a JSON object")
        attempt = int(data.pop("attempt", 0))
        first = str(data.pop("first_attempt_at", ""))
        correlation_id = str(data.pop("correlation_id", "") or "")
        by_operator = bool(data.pop("by_operator", False))
        return cls(ChangeNotice.model_validate(data), attempt, first, correlation_id, by_operator)

    def body(self) -> str:
        data = self.notice.model_dump(mode="json", exclude_none=True)
        extra: dict[str, Any] = {"correlation_id": self.correlation_id} if self.correlation_id else {}
        if self.by_operator:
            extra["by_operator"] = True
        return json.dumps({**data, "attempt": self.attempt, "first_attempt_at": self.first_attempt_at, **extra})


def backoff_seconds(attempt: int, retry_after: float | None = None) -> int:
    """Exponential backoff with jitter (half to full), never shorter than the remote's Retry-After."""
    ceiling = min(MAX_DELAY_S, BASE_DELAY_S * 2 ** max(0, attempt - 1))
    wait = random.uniform(ceiling / 2, ceiling)
    return int(min(MAX_DELAY_S, max(wait, retry_after or 0)))


def transient_kind(exc: RetryableError) -> str:
    """What kind of passing trouble this is ('' = the record's own: it spends an attempt)."""
    if isinstance(exc, RateLimitedError):
        return "rate_limited"
    if exc.error_type in TRANSIENT:
        return exc.error_type
    if exc.status is not None and exc.status >= 500:
        return "server_error"
    if exc.error_type in ("retryable",) and exc.status is None and "timed out" in str(exc):
        return "timeout"
    if exc.error_type == "retryable" and exc.status is None:
        return "outage"  # transport trouble
    return ""


class Worker:
    def __init__(
        self,
        flow: Any,
        synclog: SyncLog,
        queue_url: str,
        max_attempts: int,
        *,
        breaker: Breaker | None = None,
        leases: Leases | None = None,
        give_up_after_hours: float = 96.0,
        seen: SeenVersions | None = None,
        deadline: Deadline | None = None,
        flow_name: str | None = None,
        desk: FailuresDesk | None = None,
    ) -> None:
        self.deadline = deadline
        self.desk = desk
        self.parallel = 1
        """Records of one batch handled side by side (set from the settings by the runtime)."""
        self.flow_name = flow_name or flow.name
        self.flow, self.synclog, self.queue_url, self.max_attempts = flow, synclog, queue_url, max_attempts
        self.breaker, self.leases, self.give_up_after_hours = breaker, leases, give_up_after_hours
        self.seen = seen
        self._batch = threading.local()
        """``rows`` and ``seen``: what a ``run_many`` batch writes at its end (None: write at once)."""
        self.max_delay_s = MAX_DELAY_S
        """Longest re-queue delay (SQS allows 900 s; tests set 0 to see re-queued notices at once)."""
        self.systems: tuple[str, ...] = tuple(dict.fromkeys((flow.source, flow.target))) if flow is not None else ()

    def handle_batch(self, event: dict[str, Any]) -> dict[str, Any]:
        """An SQS event -> the partial batch response (ReportBatchItemFailures).

        Records run side by side on up to ``parallel`` threads, so one slow answer does not hold up
        the rest of the batch (the shared rate gate still caps what reaches each system). The batch
        keeps the invocation's deadline: a record not yet started when less than
        ``RECORD_RESERVE_S`` is left is reported as a failure untouched (SQS delivers it again; no
        attempt is spent) instead of being cut off mid-write by the Lambda timeout.
        """
        records = event.get("Records", [])
        if len(records) > 1 and getattr(self.flow, "batched", False):
            results = [None if o is None else o.ok for o in self.run_many(records)]
        else:
            results = self.each(self._run, records)
        failures = [{"itemIdentifier": r["messageId"]} for r, ok in zip(records, results, strict=True) if not ok]
        handed_back = results.count(None)
        if handed_back:
            log.warning(
                "%s: too little time left in the invocation; %d record(s) handed back untouched",
                self.flow_name,
                handed_back,
                extra={"flow": self.flow_name, "handed_back": handed_back},
            )
        return {"batchItemFailures": failures}

    def each(self, fn: Callable[[dict[str, Any]], T], records: list[dict[str, Any]]) -> list[T]:
        """``fn`` over the records, side by side on up to ``parallel`` threads (in turn when 1)."""
        if self.parallel <= 1 or len(records) <= 1:
            return [fn(r) for r in records]
        from concurrent.futures import ThreadPoolExecutor

        queues.client(), dynamo.client()  # made once, before threads race to make them
        with ThreadPoolExecutor(max_workers=min(self.parallel, len(records))) as pool:
            return list(pool.map(fn, records))

    def run_many(self, records: list[dict[str, Any]], *, load: bool = False) -> list[Outcome | None]:
        """A batch whose flow writes many records at once (``sync_many``: stock, prices; ``load``:
        an initial load's page, ``load_many``): every record still gets its own desk check, lease,
        outcome and sync-log row, but those are read and written in batches, and the target is
        written in as few requests as its API allows. None: not started (too little time left)."""
        left = self.deadline.remaining() if self.deadline else None
        if left is not None and left < RECORD_RESERVE_S:
            return [None] * len(records)
        self._batch.rows, self._batch.seen = [], {}
        try:
            return self._run_many(records, load)
        finally:
            rows, seen = self._batch.rows, self._batch.seen
            self._batch.rows = self._batch.seen = None
            self.synclog.write_many(rows)
            if self.seen:
                for flow, versions in seen.items():
                    self.seen.mark_many(flow, versions)

    def _run_many(self, records: list[dict[str, Any]], load: bool) -> list[Outcome | None]:
        started = time.monotonic()
        results: list[Outcome | None] = [None] * len(records)
        parsed: list[tuple[int, Envelope]] = []
        for i, record in enumerate(records):
            try:
                env = Envelope.parse(record["body"])
            except (ValueError, ValidationError):
                results[i] = self.handle_record(record)  # the bad-message path
                continue
            env.correlation_id = env.correlation_id or logs.new_correlation_id()
            parsed.append((i, env))
        open_failures, seen = self._desk_and_seen([env for _, env in parsed])
        ready: list[tuple[int, Envelope]] = []
        for i, env in parsed:
            failure = open_failures.get(failure_key(self.flow_name, env.notice.source, env.notice.id))
            if (
                failure is not None
                and not env.by_operator
                and (not env.notice.version or env.notice.version == failure.version)
            ):
                results[i] = Outcome(True, "held", failure.reason)
                continue
            if self._finished(env, seen):
                results[i] = Outcome(True, "skipped", ALREADY_DONE)
                continue
            env.attempt += 1
            env.first_attempt_at = env.first_attempt_at or datetime.now(UTC).isoformat()
            ready.append((i, env))
        wait = self._breaker_wait()
        if wait:
            self._breaker_down(self.systems)
            for i, env in ready:
                exc = RetryableError(f"circuit open for {wait:.0f}s", error_type="breaker_open")
                results[i] = self._again(env, started, exc, wait)
            return results
        held: list[tuple[int, Envelope, str]] = []
        names = [f"{self.flow_name}#{env.notice.source}#{env.notice.id}" for _, env in ready]
        taken = self.leases.acquire_many(names) if self.leases else set(names)
        for (i, env), lease in zip(ready, names, strict=True):
            if lease not in taken:
                busy = RetryableError("another worker holds this record", error_type="busy")
                results[i] = self._again(env, started, busy, BUSY_DELAY_S)
            else:
                held.append((i, env, lease))
        if not held:
            return results
        try:
            write_many = self.flow.load_many if load else self.flow.sync_many
            try:
                answers: list[Any] = list(write_many([env.notice for _, env, _ in held]))
            except Exception as exc:  # the whole batch failed alike (e.g. the target is down)
                answers = [exc] * len(held)
            for (i, env, _), answer in zip(held, answers, strict=True):
                with logs.record_context(
                    flow=self.flow_name,
                    record=env.notice.id,
                    connection=env.notice.source,
                    correlation_id=env.correlation_id,
                ):
                    results[i] = self._settle(env, started, answer)
        finally:
            if self.leases:
                self.leases.release_many([lease for _, _, lease in held])
        return results

    def _desk_and_seen(self, envs: list[Envelope]) -> tuple[dict[str, Failure], dict[str, str]]:
        """The open desk items of these records (by desk key) and the versions this flow last
        finished them at (by ``<flow>#<source>#<id>``): one read per 100 keys when both live in
        one table, as deployed."""
        keys = [failure_key(self.flow_name, e.notice.source, e.notice.id) for e in envs]
        seen_keys = [f"{self.flow_name}#{e.notice.source}#{e.notice.id}" for e in envs if e.notice.version]
        desk = self.desk if envs else None
        seen = self.seen if seen_keys else None
        try:
            if desk is not None and seen is not None and desk.table == seen.table:
                items = [{"pk": OPEN, "sk": k} for k in dict.fromkeys(keys)]
                items += [{"pk": f"seen#{k}", "sk": "-"} for k in dict.fromkeys(seen_keys)]
                rows = dynamo.batch_get(desk.table, items)
                failures = {f.key: f for f in (Failure.from_row(r) for r in rows if r["pk"] == OPEN)}
                versions = {
                    str(r["pk"]).removeprefix("seen#"): str(SeenVersions.finished(r))
                    for r in rows
                    if str(r["pk"]).startswith("seen#") and SeenVersions.finished(r) is not None
                }
                return failures, versions
            failures = desk.get_many(keys) if desk is not None else {}
            versions = seen.get_keys(seen_keys) if seen is not None else {}
            return failures, versions
        except Exception:  # unreadable: try the records (a failure is recorded again, a version re-read)
            log.exception("could not read the failures desk for a batch of %d", len(envs))
            return {}, {}

    def _finished(self, env: Envelope, seen: dict[str, str]) -> bool:
        """This very version of the record was finished already (a duplicate notice: a webhook
        delivered twice, a poll's look-back, a webhook and a poll for one change): nothing to read.
        An operator's retry is always tried."""
        notice = env.notice
        if env.by_operator or not notice.version:
            return False
        return seen.get(f"{self.flow_name}#{notice.source}#{notice.id}") == str(notice.version)

    def _run(self, record: dict[str, Any]) -> bool | None:
        """Handle one record of a batch: True when done with, False to redeliver, None when not started."""
        left = self.deadline.remaining() if self.deadline else None
        if left is not None and left < RECORD_RESERVE_S:
            return None
        return self.handle_record(record).ok

    def handle_record(self, record: dict[str, Any]) -> Outcome:
        started = time.monotonic()
        try:
            env = Envelope.parse(record["body"])
        except (ValueError, ValidationError) as exc:
            bad = Failure(
                self.flow_name,
                "",
                f"message:{record.get('messageId', '')}",
                error_type="bad_message",
                reason=f"not a change notice: {exc}",
                request=str(record.get("body", "")),
            )
            self._to_desk(bad, str(record.get("body", "")), None)
            metrics.attempt(self.flow_name, "", "failed", (time.monotonic() - started) * 1000)
            return Outcome(True, "failed", "bad message")
        env.correlation_id = env.correlation_id or logs.new_correlation_id()
        with logs.record_context(
            flow=self.flow_name,
            record=env.notice.id,
            connection=env.notice.source,
            correlation_id=env.correlation_id,
        ):
            return self._attempt(env, started)

    def _attempt(self, env: Envelope, started: float) -> Outcome:
        """One attempt at the record of ``env`` (every line it logs carries the record's context)."""
        notice = env.notice
        failures, seen = self._desk_and_seen([env])
        failure = failures.get(failure_key(self.flow_name, notice.source, notice.id))
        if failure is not None and not env.by_operator and (not notice.version or notice.version == failure.version):
            log.info(
                "%s %s is held on the failures desk (%s): tried again when it changes or an operator retries it",
                self.flow_name,
                notice.id,
                failure.error_type,
                extra={"flow": self.flow_name, "record": notice.id, "outcome": "held"},
            )
            return Outcome(True, "held", failure.reason)
        if self._finished(env, seen):
            log.info(
                "%s %s: version %s was synced already (a duplicate notice): nothing read",
                self.flow_name,
                notice.id,
                notice.version,
                extra={"flow": self.flow_name, "record": notice.id, "outcome": "skipped"},
            )
            return Outcome(True, "skipped", ALREADY_DONE)
        env.attempt += 1
        env.first_attempt_at = env.first_attempt_at or datetime.now(UTC).isoformat()
        outcome = self._leased(env, started)
        if failure is not None and outcome.outcome in ("synced", "skipped", "filtered") and self.desk:
            self.desk.resolve(failure.key, outcome.outcome, "operator" if env.by_operator else "sync")
        return outcome

    def _leased(self, env: Envelope, started: float) -> Outcome:
        notice = env.notice
        wait = self._breaker_wait()
        if wait:
            self._breaker_down(self.systems)
            return self._again(
                env, started, RetryableError(f"circuit open for {wait:.0f}s", error_type="breaker_open"), wait
            )
        lease = f"{self.flow_name}#{notice.source}#{notice.id}"
        if self.leases and not self.leases.acquire(lease):
            return self._again(
                env, started, RetryableError("another worker holds this record", error_type="busy"), BUSY_DELAY_S
            )
        try:
            return self._sync(env, started)
        finally:
            if self.leases:
                self.leases.release(lease)

    def _sync(self, env: Envelope, started: float) -> Outcome:
        try:
            result: Any = self.flow.sync(env.notice)
        except Exception as exc:
            result = exc
        return self._settle(env, started, result)

    def _settle(self, env: Envelope, started: float, result: Any) -> Outcome:
        """What becomes of the record: ``result`` is its ``SyncResult``, or the exception its sync raised."""
        notice = env.notice
        if isinstance(result, PermanentError):
            return self._failed(env, result, started)
        if isinstance(result, LimitExceeded):
            return self._again(env, started, RetryableError(str(result), error_type="ceiling"), result.wait_s)
        if isinstance(result, RetryableError):
            if transient_kind(result):
                return self._transient(env, result, started)
            return self._retry(env, result, started)
        if isinstance(result, Exception):
            log.error("unexpected error syncing %s %s", notice.entity, notice.id, exc_info=result)
            unexpected = RetryableError(f"unexpected {type(result).__name__}: {result}", error_type="unexpected")
            return self._retry(env, unexpected, started)
        self._log(env, result.outcome, started, target_id=result.target_id, message=result.message)
        if self.seen and notice.version:
            self._mark_seen(notice, started)
        return Outcome(True, result.outcome, result.message)

    def _mark_seen(self, notice: ChangeNotice, started: float) -> None:
        """The version finished, with when the record was read at the latest: the attempt's start
        (monotonic ``started`` as wall time), or the poll's read of a snapshot if earlier."""
        read_at = time.time() - (time.monotonic() - started)
        if notice.snapshot is not None and notice.read_at is not None:
            read_at = min(read_at, notice.read_at.timestamp())
        flow = f"{self.flow_name}#{notice.source}"
        batch: dict[str, dict[str, str | tuple[str, float]]] | None = getattr(self._batch, "seen", None)
        if batch is not None:  # a batch of records: written with the others
            batch.setdefault(flow, {})[notice.id] = (str(notice.version), read_at)
        elif self.seen:
            self.seen.mark(flow, notice.id, str(notice.version), read_at)

    def _breaker_wait(self) -> float:
        if not self.breaker:
            return 0.0
        return max((self.breaker.open_for(s) for s in self.systems), default=0.0)  # a flow on no route has none

    def _breaker_down(self, systems: tuple[str, ...]) -> None:
        """How long each of ``systems`` has been down (``BreakerOpenFor``, what the breaker alarm reads)."""
        if self.breaker and metrics.enabled():
            for system in systems:
                down = self.breaker.down_for(system)
                if down > 0:
                    metrics.breaker_open_for(self.flow_name, system, down)

    def _transient(self, env: Envelope, exc: RetryableError, started: float) -> Outcome:
        """The remote is in trouble, not the record: wait without spending an attempt (until the
        breaker closes, when the system's answers opened it: see ``SystemGate.answered``)."""
        delay = float(exc.retry_after or 0)
        if isinstance(exc, AuthError):
            log.error("%s refused its credentials (also as read again from the secret): fix the secret", exc.system)
            if self.breaker and exc.system:
                self.breaker.trip(exc.system)  # no request can go through: every worker waits
        if self.breaker and exc.system:
            delay = max(delay, self.breaker.open_for(exc.system))
            self._breaker_down((exc.system,))
        if self._too_old(env):
            return self._failed(env, exc, started)
        return self._again(env, started, exc, max(delay, backoff_seconds(1)))

    def _again(self, env: Envelope, started: float, exc: RetryableError, delay: float) -> Outcome:
        """Back on the queue after ``delay`` without spending an attempt."""
        env.attempt -= 1
        return self._requeue(env, started, exc, int(max(1, delay)))

    def _retry(self, env: Envelope, exc: RetryableError, started: float) -> Outcome:
        if env.attempt >= self.max_attempts or self._too_old(env):
            return self._failed(env, exc, started)
        return self._requeue(env, started, exc, backoff_seconds(env.attempt, exc.retry_after))

    def _requeue(self, env: Envelope, started: float, exc: RetryableError, delay: int) -> Outcome:
        delay = max(0, min(self.max_delay_s, delay))
        self._log(env, "retrying", started, error=exc, message=f"{exc} (again in {delay}s)")
        try:
            queues.requeue(self.queue_url, env.body(), delay)
        except Exception:
            log.exception("could not re-queue %s; SQS will redeliver it", env.notice.id)
            return Outcome(False, "retrying", str(exc))
        return Outcome(True, "retrying", str(exc))

    def _too_old(self, env: Envelope) -> bool:
        try:
            first = datetime.fromisoformat(env.first_attempt_at)
        except ValueError:
            return False
        return (datetime.now(UTC) - first).total_seconds() > self.give_up_after_hours * 3600

    def _failed(self, env: Envelope, exc: SyncError, started: float) -> Outcome:
        self._log(env, "failed", started, error=exc, message=str(exc))
        notice = env.notice
        failure = Failure(
            self.flow_name,
            notice.source,
            notice.id,
            entity=notice.entity,
            target=notice.target or getattr(self.flow, "target", "") or "",
            error_type=exc.error_type,
            reason=str(exc),
            attempts=env.attempt,
            first_attempt_at=env.first_attempt_at,
            version=notice.version or "",
            correlation_id=env.correlation_id,
            request=Envelope(notice.model_copy(update={"snapshot": None}), 0, "", env.correlation_id).body(),
        )
        if self._to_desk(failure, env.body(), notice) and self.seen and notice.version:
            # a poll leaves this version out: one failure is one item and one row, not one per poll
            self.seen.mark(f"{self.flow_name}#{notice.source}", notice.id, notice.version)
        return Outcome(True, "failed", str(exc))

    def _to_desk(self, failure: Failure, body: str, notice: ChangeNotice | None) -> bool:
        """Record a failure on the desk; True when it is there. Without a desk, or when it cannot be
        written, the message goes to the failed queue instead (nothing is lost)."""
        if self.desk is not None:
            try:
                self.desk.record(failure)
                return True
            except Exception:
                log.exception("could not write the failures desk; %s goes to the failed queue", failure.id)
        self._park(body, notice, failure.error_type, failure.reason, failure.attempts, failure.first_attempt_at)
        return False

    def _park(
        self, body: str, notice: ChangeNotice | None, error_type: str, reason: str, attempt: int, first_at: str
    ) -> None:
        queues.park_failed(
            self.queue_url,
            body,
            {
                "flow": self.flow_name,
                "entity": notice.entity if notice else "",
                "source": notice.source if notice else "",
                "id": notice.id if notice else "",
                "error_type": error_type,
                "reason": logs.mask(reason)[:1000],
                "attempts": str(attempt),
                "first_attempt_at": first_at,
                "last_attempt_at": datetime.now(UTC).isoformat(),
            },
        )

    def _log(
        self,
        env: Envelope,
        outcome: str,
        t0: float,
        *,
        target_id: str = "",
        message: str = "",
        error: SyncError | None = None,
    ) -> None:
        notice = env.notice
        row = LogRow(
            flow=self.flow_name,
            source_system=notice.source,
            source_id=notice.id,
            outcome=outcome,
            target_system=notice.target or self.flow.target,
            target_id=target_id,
            attempt=env.attempt,
            duration_ms=int((time.monotonic() - t0) * 1000),
            error_type=error.error_type if error else "",
            message=message[:2000],
        )
        log.log(
            logging.WARNING if outcome == "failed" else logging.INFO,
            "%s %s %s: %s",
            self.flow_name,
            notice.id,
            outcome,
            message,
            extra={
                "flow": self.flow_name,
                "record": notice.id,
                "outcome": outcome,
                "error_type": row.error_type,
                "attempt": env.attempt,
                "duration_ms": row.duration_ms,
                "target_id": target_id,
            },
        )
        metrics.attempt(self.flow_name, notice.source, outcome, row.duration_ms, row.error_type, env.first_attempt_at)
        rows: list[LogRow] | None = getattr(self._batch, "rows", None)
        if rows is not None:  # a batch of records: written with the others
            rows.append(row)
        else:
            self.synclog.write(row)
