"""The poll's look-back re-reads the last ``lookback_seconds`` of changes on every tick; what a worker
already finished at that version must not be enqueued again (else every quiet tick re-reads the
look-back's records: bench.customers reports them as *other reads*)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from erpsync.model import ChangeNotice
from erpsync.runtime.poller import poll
from erpsync.settings import Settings
from erpsync.state.bindings import SeenVersions
from erpsync.state.cursors import Cursors
from erpsync.systems.ports import Page

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


def changes(since: datetime) -> Iterator[Page]:
    stamps = [NOW - timedelta(seconds=30 - i) for i in range(3)]
    notices = [
        ChangeNotice(source="magento", entity="customer", id=str(i + 1), version=t.isoformat(), occurred_at=t)
        for i, t in enumerate(stamps)
    ]
    yield Page(notices, checkpoint=stamps[-1])


def test_a_second_tick_does_not_enqueue_what_a_worker_already_finished(
    aws: dict[str, Any], bindings_table: str
) -> None:
    url = aws["queues"]["CustomersQueue"]
    cursors, seen = Cursors(bindings_table), SeenVersions(bindings_table)
    settings = Settings(lookback_seconds=120)
    first = poll("customers", "magento", "acumatica", changes, cursors, url, settings, now=NOW, seen=seen)
    assert first.enqueued == 3
    for n in changes(NOW):
        for notice in n.notices:  # what the worker does once it has handled a notice
            seen.mark(f"customers#{notice.source}", notice.id, str(notice.version))
    again = poll("customers", "magento", "acumatica", changes, cursors, url, settings, now=NOW, seen=seen)
    assert again.enqueued == 0
