"""Enqueuing notices: batches stay within SQS's size limits when polled orders ride along."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from erpsync.model import ChangeNotice
from erpsync.runtime import queues

ORDER = json.loads((Path(__file__).parents[1] / "fixtures" / "magento" / "order_get_V1_orders_3.json").read_text())


@pytest.fixture
def queue(aws: dict[str, Any]) -> str:
    return str(aws["queues"]["OrdersQueue"])


def polled(i: int, padding: int) -> ChangeNotice:
    order = {**ORDER, "entity_id": i, "customer_note": "x" * padding}
    return ChangeNotice(source="magento", entity="order", id=str(i), snapshot=order, read_at=datetime.now(UTC))


def drain(queue: str) -> list[ChangeNotice]:
    out: list[ChangeNotice] = []
    while batch := queues.receive(queue):
        for r in batch:
            out.append(ChangeNotice.model_validate_json(r["body"]))
            queues.delete(queue, r["receiptHandle"])
    return out


def test_big_snapshots_split_batches_under_the_sqs_limit(queue: str, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[int] = []
    flush = queues._flush

    def measured(url: str, batch: list[dict[str, Any]]) -> int:
        sizes.append(sum(len(e["MessageBody"].encode()) for e in batch))
        return flush(url, batch)

    monkeypatch.setattr(queues, "_flush", measured)
    notices = [polled(i, 40_000) for i in range(1, 13)]  # about 45 KB each
    assert queues.send_notices(queue, notices) == 12
    assert len(sizes) > 2 and max(sizes) <= queues.MAX_BATCH_BYTES
    got = drain(queue)
    assert sorted(int(n.id) for n in got) == list(range(1, 13))
    assert all(n.snapshot and n.snapshot["entity_id"] == int(n.id) for n in got)


def test_a_snapshot_too_big_for_sqs_is_dropped_and_the_worker_reads_the_order(queue: str) -> None:
    assert queues.send_notices(queue, [polled(7, 300_000)]) == 1
    [got] = drain(queue)
    assert got.id == "7" and got.snapshot is None and got.read_at is None
