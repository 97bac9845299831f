"""The poll streams: page by page into the queue, the cursor checkpointed after each page, a stop
between pages when time is short, and a cursor from before connections is carried over."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from erpsync.model import ChangeNotice
from erpsync.runtime.poller import poll
from erpsync.settings import Settings
from erpsync.state.cursors import Cursors
from erpsync.systems.ports import Page

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def pages_of(n_pages: int, per_page: int, read: list[int]) -> Any:
    def pages(since: datetime) -> Iterator[Page]:
        for p in range(n_pages):
            read.append(p)
            notices = [
                ChangeNotice(source="magento", entity="order", id=f"{p}-{i}", occurred_at=T0 + timedelta(minutes=p))
                for i in range(per_page)
            ]
            yield Page(notices, checkpoint=T0 + timedelta(minutes=p))

    return pages


def queued(url: str) -> int:
    attrs = boto3.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attrs["Attributes"]["ApproximateNumberOfMessages"])


def test_a_poll_checkpoints_after_each_page_and_stops_between_pages(aws: dict[str, Any], bindings_table: str) -> None:
    url = aws["queues"]["OrdersQueue"]
    cursors = Cursors(bindings_table)
    read: list[int] = []
    stops = iter([False, True])
    r = poll(
        "orders",
        "magento",
        "acumatica",
        pages_of(5, 3, read),
        cursors,
        url,
        Settings(),
        now=T0 + timedelta(hours=1),
        should_stop=lambda: next(stops),
    )
    assert read == [0, 1] and r.stopped and r.pages == 2 and r.enqueued == 6
    assert cursors.get("orders#magento") == T0 + timedelta(minutes=1)  # the last page enqueued
    assert queued(url) == 6


def test_a_cursor_from_before_connections_starts_the_first_poll(aws: dict[str, Any], bindings_table: str) -> None:
    cursors = Cursors(bindings_table)
    cursors.set("orders", T0)  # written by a version that keyed cursors by flow alone
    seen: list[datetime] = []

    def pages(since: datetime) -> Iterator[Page]:
        seen.append(since)
        yield Page([], checkpoint=T0 + timedelta(minutes=5))

    poll("orders", "magento", "acumatica", pages, cursors, aws["queues"]["OrdersQueue"], Settings(lookback_seconds=60))
    assert seen == [T0 - timedelta(seconds=60)]
    assert cursors.get("orders#magento") == T0 + timedelta(minutes=5)
