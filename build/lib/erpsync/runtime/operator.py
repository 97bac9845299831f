"""What an operator does with failed records, shared by the `erpsync` command and the
IAM-authorised operator endpoint: list the failures desk, retry or skip one record or many,
redrive.

Failed records live on the failures desk (``state/failures.py``). Each flow's failed queue (its DLQ)
stays as the backstop: SQS moves a message there after repeated crashes, and the worker parks one
there when the desk cannot be written (the body is the notice, why it failed in the message
attributes); listing folds it into the desk.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from erpsync.runtime import queues
from erpsync.state.failures import Failure, FailuresDesk


@dataclass
class Parked:
    """A message of a failed queue, as the worker parked it (or SQS moved it)."""

    flow: str
    entity: str
    source: str
    id: str
    error_type: str
    reason: str
    attempts: int
    first_attempt_at: str
    failed_at: str
    version: str
    message_id: str


def _record(flow: str, msg: dict[str, Any]) -> Parked:
    a = {k: v.get("StringValue", "") for k, v in msg.get("messageAttributes", {}).items()}
    body: dict[str, Any] = {}
    with contextlib.suppress(ValueError, TypeError):
        loaded = json.loads(msg["body"])
        body = loaded if isinstance(loaded, dict) else {}
    sent = (msg.get("attributes") or {}).get("SentTimestamp")
    sent_at = datetime.fromtimestamp(int(sent) / 1000, UTC).isoformat(timespec="milliseconds") if sent else ""
    return Parked(
        flow=a.get("flow", flow),
        entity=a.get("entity", ""),
        source=a.get("source", ""),
        id=a.get("id", "") or str(body.get("id") or ""),
        error_type=a.get("error_type", "crashed"),
        reason=a.get("reason", "no reason recorded: moved to the failed queue by SQS after repeated crashes"),
        attempts=int(a.get("attempts", "0") or body.get("attempt") or 0),
        first_attempt_at=a.get("first_attempt_at", "") or str(body.get("first_attempt_at") or ""),
        failed_at=a.get("last_attempt_at", "") or sent_at,
        version=str(body.get("version") or ""),
        message_id=msg["messageId"],
    )


def fold_dlq(queue_url: str, flow: str, desk: FailuresDesk) -> int:
    """Move what waits in the flow's failed queue onto the desk: records SQS moved there after
    repeated crashes, and those parked when the desk could not be written. How many moved."""
    dlq = queues.dlq_url(queue_url)
    moved = 0
    while batch := queues.receive(dlq, 10, visibility_s=60):
        for m in batch:
            r = _record(flow, m)
            desk.record(
                Failure(
                    r.flow,
                    r.source,
                    r.id or f"message:{r.message_id}",
                    entity=r.entity,
                    error_type=r.error_type,
                    reason=r.reason,
                    attempts=r.attempts,
                    first_attempt_at=r.first_attempt_at,
                    first_failed_at=r.failed_at,
                    version=r.version,
                    request=fresh_body(m["body"]),
                )
            )
            queues.delete(dlq, m["receiptHandle"])
            moved += 1
    return moved


def list_failed(
    queue_url: str,
    flow: str,
    desk: FailuresDesk,
    *,
    error_type: str | None = None,
    since: str | None = None,
    ids: list[str] | None = None,
) -> list[Failure]:
    """The flow's open failures, oldest first (its failed queue folded in first)."""
    fold_dlq(queue_url, flow, desk)
    return desk.open(flow=flow, error_type=error_type, since=since, ids=ids)


def retry_failed(
    queue_url: str,
    flow: str,
    desk: FailuresDesk,
    sync_one: Callable[[str, str], str],
    *,
    error_type: str | None = None,
    since: str | None = None,
    ids: list[str] | None = None,
    progress: Callable[[Failure, str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, int]:
    """Try every matching open failure again now (``sync_one(id, source)`` runs the worker on it
    and returns the outcome). A record that goes through is resolved by the worker; one that fails
    again stays open with the new reason. ``_stopped`` in the counts: stopped before the end."""
    counts: dict[str, int] = {}
    for f in list_failed(queue_url, flow, desk, error_type=error_type, since=since, ids=ids):
        if should_stop and should_stop():
            counts["_stopped"] = 1
            break
        # an unreadable message has nothing to sync: skip it with a note once looked at
        outcome = "unreadable" if f.error_type == "bad_message" else sync_one(f.id, f.source)
        counts[outcome] = counts.get(outcome, 0) + 1
        if progress:
            progress(f, outcome)
    return counts


def skip_failed(
    queue_url: str,
    flow: str,
    desk: FailuresDesk,
    note: str,
    by: str,
    *,
    error_type: str | None = None,
    since: str | None = None,
    ids: list[str] | None = None,
    progress: Callable[[Failure, str], None] | None = None,
) -> int:
    """Resolve matching open failures without syncing them (the operator dealt with them another
    way), with a note; how many were skipped."""
    done = 0
    for f in list_failed(queue_url, flow, desk, error_type=error_type, since=since, ids=ids):
        if desk.resolve(f.key, "skipped_by_operator", by, note) is not None:
            done += 1
        if progress:
            progress(f, "skipped")
    return done


def redrive(queue_url: str, flow: str, desk: FailuresDesk) -> int:
    """Send every open failure of the flow (its failed queue folded in first) back to its queue as
    an operator's retry, attempts reset: the workers try them in the background, resolving each
    that goes through; how many were sent."""
    sent = 0
    for f in list_failed(queue_url, flow, desk):
        if f.error_type == "bad_message":
            continue
        notice = {"source": f.source, "entity": f.entity, "id": f.id, "target": f.target, "version": f.version}
        body = {k: v for k, v in notice.items() if v}
        queues.requeue(queue_url, json.dumps({**body, "attempt": 0, "by_operator": True}), 0)
        sent += 1
    return sent


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
