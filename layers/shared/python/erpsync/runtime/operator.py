"""What an operator does with failed records, shared by the `erpsync` command and the
IAM-authorised operator endpoint: list the failed queue, resync one record or many, redrive.

The failed queue is each flow's DLQ; a parked message carries the notice (with its attempts)
as body and why it failed as message attributes.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from erpsync.runtime import queues

PEEK_VISIBILITY_S = 30
T = TypeVar("T")


@dataclass
class FailedRecord:
    flow: str
    entity: str
    source: str
    id: str
    error_type: str
    reason: str
    attempts: int
    first_attempt_at: str
    last_attempt_at: str
    message_id: str
    receipt_handle: str = ""

    def as_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("receipt_handle")
        return d


def _record(flow: str, msg: dict[str, Any]) -> FailedRecord:
    a = {k: v.get("StringValue", "") for k, v in msg.get("messageAttributes", {}).items()}
    body_id = ""
    with contextlib.suppress(ValueError, AttributeError):
        body_id = str(json.loads(msg["body"]).get("id", ""))
    return FailedRecord(
        flow=a.get("flow", flow),
        entity=a.get("entity", ""),
        source=a.get("source", ""),
        id=a.get("id", "") or body_id,
        error_type=a.get("error_type", "unknown"),
        reason=a.get("reason", "(no reason recorded: moved here by SQS after repeated crashes)"),
        attempts=int(a.get("attempts", "0") or 0),
        first_attempt_at=a.get("first_attempt_at", ""),
        last_attempt_at=a.get("last_attempt_at", ""),
        message_id=msg["messageId"],
        receipt_handle=msg["receiptHandle"],
    )


def matches(r: FailedRecord, error_type: str | None, since: str | None, record_id: str | None = None) -> bool:
    if error_type and r.error_type != error_type:
        return False
    if since and (r.last_attempt_at or "") < since:
        return False
    return not (record_id and r.id != record_id)


def _sweep_dlq(queue_url: str, flow: str, visibility: int) -> Iterator[FailedRecord]:
    """Every message of the failed queue once (each is hidden for ``visibility`` seconds)."""
    dlq = queues.dlq_url(queue_url)
    seen: set[str] = set()
    empty_rounds = 0
    while empty_rounds < 2:
        batch = queues.receive(dlq, 10, visibility_s=visibility)
        fresh = [m for m in batch if m["messageId"] not in seen]
        if not fresh:
            empty_rounds += 1
            continue
        empty_rounds = 0
        for m in fresh:
            seen.add(m["messageId"])
            yield _record(flow, m)


def list_failed(
    queue_url: str, flow: str, *, error_type: str | None = None, since: str | None = None
) -> list[FailedRecord]:
    """The failed queue's records (peeked: every one is visible again when this returns)."""
    swept = list(_sweep_dlq(queue_url, flow, PEEK_VISIBILITY_S))
    dlq = queues.dlq_url(queue_url)
    for r in swept:
        queues.release(dlq, r.receipt_handle)
    rows = [r for r in swept if matches(r, error_type, since)]
    rows.sort(key=lambda r: r.last_attempt_at)
    return rows


def resync_failed(
    queue_url: str,
    flow: str,
    sync_one: Callable[[str], str],
    *,
    error_type: str | None = None,
    since: str | None = None,
    record_id: str | None = None,
    progress: Callable[[FailedRecord, str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, int]:
    """Sync every matching failed record now; each leaves the failed queue once it is dealt with.

    ``sync_one(id)`` runs the worker on the record and returns its outcome; a record that fails
    again is parked anew (with the new reason) by the worker, so the old message goes either way.
    """
    dlq = queues.dlq_url(queue_url)
    counts: dict[str, int] = {}
    done: set[str] = set()
    untouched: list[FailedRecord] = []
    for r in _sweep_dlq(queue_url, flow, 300):
        if should_stop and should_stop():
            untouched.append(r)
            counts["_stopped"] = 1
            continue
        if not matches(r, error_type, since, record_id):
            untouched.append(r)  # released after the sweep, or the sweep would see it again
            continue
        key = f"{r.entity}#{r.id}"
        outcome = "skipped" if key in done else sync_one(r.id)
        done.add(key)
        queues.delete(dlq, r.receipt_handle)
        counts[outcome] = counts.get(outcome, 0) + 1
        if progress:
            progress(r, outcome)
    for r in untouched:
        queues.release(dlq, r.receipt_handle)
    return counts


def resync_one(queue_url: str, flow: str, record_id: str, sync_one: Callable[[str], T]) -> T:
    """Sync one record now. A parked copy leaves the failed queue only once its resync is done
    (or parked anew with the new reason), so nothing is lost if this is interrupted."""
    seen: list[T] = []

    def once(rid: str) -> str:
        seen.append(sync_one(rid))
        return str(getattr(seen[-1], "outcome", seen[-1]))

    resync_failed(queue_url, flow, once, record_id=record_id)
    return seen[-1] if seen else sync_one(record_id)


def redrive(queue_url: str) -> int:
    """Move every failed record back to its queue with a fresh attempt count; how many moved."""
    dlq = queues.dlq_url(queue_url)
    moved = 0
    while batch := queues.receive(dlq, 10, visibility_s=60):
        for m in batch:
            queues.requeue(queue_url, fresh_body(m["body"]), 0)
            queues.delete(dlq, m["receiptHandle"])
            moved += 1
    return moved


def fresh_body(body: str) -> str:
    """A parked notice's body with its attempt count reset (other bodies pass unchanged)."""
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if not isinstance(data, dict):
        return body
    data["attempt"] = 0
    data.pop("first_attempt_at", None)
    return json.dumps(data)
