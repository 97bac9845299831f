"""The schedule side of a flow: stream the changes since the cursor into the queue.

The poll re-reads ``lookback_seconds`` behind its cursor (clock skew between systems), reads the
source page by page, enqueues each page (leaving out records whose version a worker already
finished) and moves the cursor to the page's checkpoint once the page is enqueued. It stops
between pages when ``should_stop`` says the invocation's time is nearly up; the next tick carries
on from the last checkpoint. Memory holds one page, whatever the number of changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from erpsync.model import ChangeNotice
from erpsync.runtime import logs, queues
from erpsync.settings import Settings
from erpsync.state.bindings import SeenVersions
from erpsync.state.cursors import Cursors
from erpsync.systems.ports import Page


@dataclass
class PollResult:
    since: datetime
    enqueued: int
    cursor: datetime
    pages: int = 0
    stopped: bool = False
    """True when the poll stopped for time before the source had no more pages."""


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
    flow: str,
    source: str,
    target: str,
    pages: Callable[[datetime], Iterator[Page]],
    cursors: Cursors,
    queue_url: str,
    settings: Settings,
    *,
    now: datetime | None = None,
    seen: SeenVersions | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> PollResult:
    """Enqueue every change of ``source`` since the cursor of (``flow``, ``source``), for ``target``."""
    now = now or datetime.now(UTC)
    key = f"{flow}#{source}"
    cursor = cursors.get(key, legacy=flow) or now - timedelta(days=settings.first_poll_days)
    since = cursor - timedelta(seconds=settings.lookback_seconds)
    result = PollResult(since=since, enqueued=0, cursor=cursor)
    correlation = logs.Correlation(flow, "poll")
    stream = pages(since)
    for page in stream:
        notices = [n.model_copy(update={"source": source, "target": target}) for n in page.notices]
        fresh = notices
        if seen is not None and notices:
            done, queued = seen.standing(key, [n.id for n in notices])
            fresh = [n for n in notices if not n.version or n.version not in (done.get(n.id), queued.get(n.id))]
        result.enqueued += queues.send_notices(queue_url, fresh, correlation)
        if seen is not None and settings.requeue_after_s and any(n.version for n in fresh):
            seen.mark_queued(key, {n.id: str(n.version) for n in fresh if n.version}, settings.requeue_after_s)
        correlation.queued()
        result.pages += 1
        if page.checkpoint is not None:
            point = min(page.checkpoint if page.checkpoint.tzinfo else page.checkpoint.replace(tzinfo=UTC), now)
            if point > result.cursor:
                cursors.set(key, point)
                result.cursor = point
        if should_stop():
            result.stopped = True
            close = getattr(stream, "close", None)
            if close:
                close()
            break
    return result
