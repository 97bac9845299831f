"""Failed records: list, resync one or in bulk, redrive — nothing is lost on the way."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from erpsync.runtime import operator, queues


@pytest.fixture
def queue(aws: dict[str, Any]) -> str:
    return str(aws["queues"]["OrdersQueue"])


def park(queue: str, rid: str, error_type: str = "unknown_item", when: str = "2026-11-01T00:00:00+00:00") -> None:
    body = json.dumps({"source": "magento", "entity": "order", "id": rid, "attempt": 3})
    meta = {
        "flow": "orders",
        "entity": "order",
        "source": "magento",
        "id": rid,
        "error_type": error_type,
        "reason": f"unknown item for {rid}",
        "attempts": "3",
        "first_attempt_at": when,
        "last_attempt_at": when,
    }
    queues.park_failed(queue, body, meta)


def depth(url: str) -> int:
    attrs = boto3.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def test_list_shows_why_and_leaves_records_in_place(queue: str) -> None:
    park(queue, "1")
    park(queue, "2", "mapping_missing", "2026-11-10T00:00:00+00:00")
    rows = operator.list_failed(queue, "orders")
    assert [(r.id, r.error_type, r.attempts) for r in rows] == [("1", "unknown_item", 3), ("2", "mapping_missing", 3)]
    assert rows[0].reason == "unknown item for 1"
    assert [r.id for r in operator.list_failed(queue, "orders", error_type="mapping_missing")] == ["2"]
    assert [r.id for r in operator.list_failed(queue, "orders", since="2026-11-05")] == ["2"]
    assert depth(queues.dlq_url(queue)) == 2
    assert len(operator.list_failed(queue, "orders")) == 2  # peeking twice still sees both


def test_bulk_resync_takes_only_matching_records_and_each_once(queue: str) -> None:
    for rid in ("1", "2", "3"):
        park(queue, rid)
    park(queue, "1")  # parked twice
    park(queue, "9", "auth")
    synced: list[str] = []
    counts = operator.resync_failed(
        queue, "orders", lambda rid: synced.append(rid) or "synced", error_type="unknown_item"
    )
    assert sorted(synced) == ["1", "2", "3"]
    assert counts == {"synced": 3, "skipped": 1}
    assert [r.id for r in operator.list_failed(queue, "orders")] == ["9"]


def test_resync_one_removes_its_parked_copy_only_after_the_sync(queue: str) -> None:
    park(queue, "5")
    park(queue, "6")
    seen_during: list[int] = []

    def sync(rid: str) -> str:
        seen_during.append(depth(queues.dlq_url(queue)))
        return "synced"

    assert operator.resync_one(queue, "orders", "5", sync) == "synced"
    assert seen_during == [2]  # the parked copy was still there while the record synced
    assert [r.id for r in operator.list_failed(queue, "orders")] == ["6"]
    assert operator.resync_one(queue, "orders", "7", lambda rid: "skipped") == "skipped"  # not parked: just synced


def test_redrive_moves_everything_back_with_attempts_reset(queue: str) -> None:
    park(queue, "1")
    park(queue, "2")
    assert operator.redrive(queue) == 2
    assert depth(queues.dlq_url(queue)) == 0
    bodies = [json.loads(m["body"]) for m in queues.receive(queue, 10)]
    assert sorted(b["id"] for b in bodies) == ["1", "2"]
    assert all(b["attempt"] == 0 for b in bodies)
