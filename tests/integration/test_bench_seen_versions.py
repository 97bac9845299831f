"""The poll's look-back re-reads the last ``lookback_seconds`` of changes on every tick; what a worker
already finished at that version must not be enqueued again (else every quiet tick re-reads the
look-back's records: bench.customers reports them as *other reads*)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from erpsync.model import ChangeNotice
from erpsync.runtime.poller import poll
from erpsync.settings import Settings
from erpsync.state.bindings import SeenVersions, settled
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


def changed(since: datetime, version: str = "v1") -> Iterator[Page]:
    notices = [
        ChangeNotice(source="shopify", entity="order", id=str(i), version=f"{version}-{i}", occurred_at=NOW)
        for i in range(3)
    ]
    yield Page(notices, checkpoint=NOW)


def _tick(url: str, cursors: Cursors, seen: SeenVersions, settings: Settings, version: str = "v1") -> int:
    return poll(
        "orders", "shopify", "quickbooks", lambda s: changed(s, version), cursors, url, settings, now=NOW, seen=seen
    ).enqueued


def test_a_change_queued_but_not_yet_finished_is_not_queued_again_on_every_tick(
    aws: dict[str, Any], bindings_table: str
) -> None:
    """A worker behind its queue (a throttled ERP) used to get every unfinished change of the
    look-back window once more on each tick: 30 orders became 500 messages in the chaos run."""
    url = aws["queues"]["OrdersQueue"]
    cursors, seen = Cursors(bindings_table), SeenVersions(bindings_table)
    settings = Settings(requeue_after_s=900)
    assert _tick(url, cursors, seen, settings) == 3
    assert _tick(url, cursors, seen, settings) == 0
    assert _tick(url, cursors, seen, settings, version="v2") == 3  # changed again: queued


def test_a_change_still_unfinished_after_the_hold_is_queued_again(
    aws: dict[str, Any], bindings_table: str, monkeypatch: Any
) -> None:
    import erpsync.state.bindings as bindings_module

    url = aws["queues"]["OrdersQueue"]
    cursors, seen = Cursors(bindings_table), SeenVersions(bindings_table)
    settings = Settings(requeue_after_s=60)
    assert _tick(url, cursors, seen, settings) == 3
    later = bindings_module.time.time() + 61
    monkeypatch.setattr(bindings_module.time, "time", lambda: later)
    assert _tick(url, cursors, seen, settings) == 3
    assert _tick(url, cursors, seen, settings) == 0


def test_no_hold_queues_every_unfinished_change_on_every_tick(aws: dict[str, Any], bindings_table: str) -> None:
    url = aws["queues"]["OrdersQueue"]
    cursors, seen = Cursors(bindings_table), SeenVersions(bindings_table)
    settings = Settings(requeue_after_s=0)
    assert _tick(url, cursors, seen, settings) == 3
    assert _tick(url, cursors, seen, settings) == 3


@pytest.mark.parametrize(
    ("version", "read_after_s", "final"),
    [
        ("2026-11-29T05:42:03Z", 0.5, False),  # Shopify's updatedAt: a change later in that second keeps it
        ("2026-11-29T05:42:03Z", 1.5, False),  # the clocks of two systems may differ by a second
        ("2026-11-29T05:42:03Z", 2.0, True),
        ("2026-11-29 05:42:03", 0.5, False),  # Magento's updated_at (UTC)
        ("2026-11-29T05:42:03-08:00", 0.5, False),  # QuickBooks' LastUpdatedTime
        ("2026-11-29T05:42:03-08:00", 2.5, True),
        ("2026-11-29T05:42:03.557+00:00", 0.0, True),  # finer stamps name one state
        ("17", 0.0, True),  # a counter (SyncToken) too
    ],
)
def test_a_whole_second_version_is_final_only_once_read_after_its_second(
    version: str, read_after_s: float, final: bool
) -> None:
    stamp = datetime.fromisoformat(version.replace(" ", "T").replace("Z", "+00:00")) if ":" in version else None
    if stamp is not None and stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    at = (stamp.timestamp() if stamp else 0.0) + read_after_s
    assert settled(version, at) is final
    assert settled(version, None) is True  # marks written before read times were kept


def test_a_change_in_the_second_of_our_own_write_is_polled_again_not_lost(
    aws: dict[str, Any], bindings_table: str
) -> None:
    """Our write to Shopify at 05:42:03 and the customer's own edit in that same second share the
    version ``05:42:03Z``: the worker that finished the echo within that second proves nothing
    about the edit, so the next poll queues the version again (and the worker reads it)."""
    url = aws["queues"]["OrdersQueue"]
    cursors, seen = Cursors(bindings_table), SeenVersions(bindings_table)
    settings = Settings(requeue_after_s=900)
    second = datetime.fromtimestamp(int(time.time()) + 5, UTC)  # a stamp after the polls' queue marks
    version = second.strftime("%Y-%m-%dT%H:%M:%SZ")

    def one(since: datetime) -> Iterator[Page]:
        notice = ChangeNotice(source="shopify", entity="order", id="1", version=version, occurred_at=NOW)
        yield Page([notice], checkpoint=NOW)

    def tick() -> int:
        return poll("orders", "shopify", "quickbooks", one, cursors, url, settings, now=NOW, seen=seen).enqueued

    assert tick() == 1
    assert tick() == 0  # its notice is still in the queue
    seen.mark("orders#shopify", "1", version, read_at=second.timestamp() + 0.4)  # a worker read it in that second
    assert tick() == 1
    seen.mark("orders#shopify", "1", version, read_at=second.timestamp() + 3)  # read again, seconds later
    assert seen.get_many("orders#shopify", ["1"]) == {"1": version}
    later = poll("orders", "shopify", "quickbooks", one, cursors, url, Settings(requeue_after_s=0), now=NOW, seen=seen)
    assert later.enqueued == 0
