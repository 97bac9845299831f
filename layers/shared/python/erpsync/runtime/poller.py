"""The schedule side of a flow: enqueue every change since the cursor, then move the cursor.

The poll re-reads ``lookback_seconds`` behind its cursor (clock skew between systems); a
record whose version the worker already finished is left out, and anything enqueued twice is
harmless because workers skip records already in step. The cursor
moves to the newest change seen, and only after every notice was enqueued.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from erpsync.flows.base import Flow
from erpsync.model import ChangeNotice
from erpsync.runtime import queues
from erpsync.runtime.settings import Settings
from erpsync.state.bindings import SeenVersions
from erpsync.state.cursors import Cursors


@dataclass
class PollResult:
    since: datetime
    enqueued: int
    cursor: datetime


def changed_at(notice: ChangeNotice) -> datetime | None:
    """When the notice's record changed (naive source times are UTC)."""
    when = notice.occurred_at
    if when is None and notice.version:
        try:
            when = datetime.fromisoformat(notice.version)
        except ValueError:
            return None
    if when is None:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def poll(
    flow: Flow,
    cursors: Cursors,
    queue_url: str,
    settings: Settings,
    now: datetime | None = None,
    seen: SeenVersions | None = None,
) -> PollResult:
    now = now or datetime.now(UTC)
    cursor = cursors.get(flow.name) or now - timedelta(days=settings.first_poll_days)
    since = cursor - timedelta(seconds=settings.lookback_seconds)
    notices = flow.changes(since)
    fresh = notices
    if seen is not None and notices:
        done = seen.get_many(flow.name, [n.id for n in notices])
        fresh = [n for n in notices if not n.version or done.get(n.id) != n.version]
    enqueued = queues.send_notices(queue_url, fresh)
    times = [t for t in (changed_at(n) for n in notices) if t is not None]
    newest = max([cursor, *times])
    cursors.set(flow.name, newest)
    return PollResult(since=since, enqueued=enqueued, cursor=newest)
