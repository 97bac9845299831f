"""The failures desk: one item per failed record, held until it changes or an operator acts, resolved
by a later sync or a skip with a note; the failed queue (DLQ) folded in; nothing lost on the way."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from erpsync.errors import UnknownItemError
from erpsync.flows.base import SyncResult
from erpsync.runtime import operator, queues
from erpsync.runtime.worker import Envelope, Worker
from erpsync.state.bindings import SeenVersions
from erpsync.state.failures import FailuresDesk
from erpsync.state.synclog import SyncLog
from tests.unit.test_worker import ScriptedFlow, messages, record

MISSING = UnknownItemError("Acumatica has no stock item 24-UNKNOWN (customer jane.doe@example.com)")


@pytest.fixture
def queue(aws: dict[str, Any]) -> str:
    return str(aws["queues"]["OrdersQueue"])


@pytest.fixture
def desk(bindings_table: str) -> FailuresDesk:
    return FailuresDesk(bindings_table)


def worker(flow: ScriptedFlow, synclog_table: str, queue: str, desk: FailuresDesk, bindings_table: str) -> Worker:
    w = Worker(flow, SyncLog(synclog_table), queue, max_attempts=3, desk=desk, seen=SeenVersions(bindings_table))
    w.max_delay_s = 0
    return w


def notice(version: str = "2026-11-27 10:00:00", **extra: Any) -> dict[str, Any]:
    return {"source": "magento", "entity": "order", "id": "42", "target": "acumatica", "version": version, **extra}


def failed_rows(synclog_table: str) -> int:
    return sum(r["outcome"] == "failed" for r in SyncLog(synclog_table).history("orders", "42"))


def test_a_record_that_fails_is_one_item_held_until_it_changes(
    synclog_table: str, queue: str, desk: FailuresDesk, bindings_table: str
) -> None:
    flow = ScriptedFlow(MISSING, MISSING)
    w = worker(flow, synclog_table, queue, desk, bindings_table)
    assert w.handle_record(record(notice())).outcome == "failed"
    [item] = desk.open()
    assert (item.flow, item.id, item.error_type, item.failures, item.target) == (
        "orders",
        "42",
        "unknown_item",
        1,
        "acumatica",
    )
    assert "24-UNKNOWN" in item.reason and "jane.doe@example.com" not in item.reason  # masked
    # the same version again (a poll's re-find, a second delivery, the sweep): held, no sync, no row
    for n in range(3):
        assert w.handle_record(record(notice(), n)).outcome == "held"
    assert flow.calls == 1 and failed_rows(synclog_table) == 1
    # the poll leaves that version out altogether
    assert SeenVersions(bindings_table).get_many("orders#magento", ["42"]) == {"42": "2026-11-27 10:00:00"}
    # a newer version is tried again; failing again updates the one item
    assert w.handle_record(record(notice("2026-11-27 11:00:00"))).outcome == "failed"
    [item] = desk.open()
    assert item.failures == 2 and item.version == "2026-11-27 11:00:00" and flow.calls == 2
    assert not messages(str(queues.dlq_url(queue)))  # the desk, not the failed queue


def test_an_operator_retry_that_fails_again_keeps_it_open_with_the_new_reason(
    synclog_table: str, queue: str, desk: FailuresDesk, bindings_table: str
) -> None:
    again = UnknownItemError("Acumatica has no stock item 24-OTHER")
    flow = ScriptedFlow(MISSING, again, SyncResult("synced", "SO9", "created"))
    w = worker(flow, synclog_table, queue, desk, bindings_table)
    w.handle_record(record(notice()))
    retry = Envelope.parse(json.dumps(notice())).notice
    body = Envelope(retry, by_operator=True).body()
    assert w.handle_record(record(body)).outcome == "failed"  # held records are tried for an operator
    [item] = desk.open()
    assert item.failures == 2 and "24-OTHER" in item.reason
    counts = operator.retry_failed(queue, "orders", desk, lambda rid, source: w.handle_record(record(body)).outcome)
    assert counts == {"synced": 1}
    assert desk.open() == []
    [done] = desk.resolved()
    assert (done.resolution, done.resolved_by, done.id) == ("synced", "operator", "42")


def test_a_later_sync_of_a_changed_record_resolves_it(
    synclog_table: str, queue: str, desk: FailuresDesk, bindings_table: str
) -> None:
    w = worker(ScriptedFlow(MISSING), synclog_table, queue, desk, bindings_table)
    w.handle_record(record(notice()))
    assert w.handle_record(record(notice("2026-11-27 12:00:00"))).outcome == "synced"
    assert desk.open() == []
    assert desk.resolved()[0].resolution == "synced" and desk.resolved()[0].resolved_by == "sync"


def test_skip_closes_with_a_note_and_only_what_matches(desk: FailuresDesk, queue: str) -> None:
    from erpsync.state.failures import Failure

    for rid, kind in (("1", "unknown_item"), ("2", "unknown_item"), ("3", "mapping_missing")):
        desk.record(Failure("orders", "magento", rid, entity="order", error_type=kind, reason=f"why {rid}"))
    assert [f.id for f in operator.list_failed(queue, "orders", desk, error_type="unknown_item")] == ["1", "2"]
    assert operator.skip_failed(queue, "orders", desk, "cancelled in the store", "ops", ids=["2"]) == 1
    assert [f.id for f in desk.open()] == ["1", "3"]
    [done] = desk.resolved()
    assert (done.id, done.resolution, done.resolved_by, done.note) == (
        "2",
        "skipped_by_operator",
        "ops",
        "cancelled in the store",
    )
    assert desk.resolve(done.key, "skipped_by_operator", "ops") is None  # nothing open any more


def test_the_failed_queue_is_folded_into_the_desk_and_redrive_retries_everything(
    desk: FailuresDesk, queue: str
) -> None:
    dlq = queues.dlq_url(queue)
    sqs = boto3.client("sqs")
    # moved there by SQS after repeated crashes: the notice only, no reason
    sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps({**notice(), "attempt": 2}))
    # parked by a worker that could not write the desk: the reason in its attributes
    queues.park_failed(
        queue,
        json.dumps({**notice(), "id": "43"}),
        {"flow": "orders", "entity": "order", "source": "magento", "id": "43", "error_type": "validation",
         "reason": "bad address", "attempts": "1", "first_attempt_at": "", "last_attempt_at": ""},
    )  # fmt: skip
    rows = sorted(operator.list_failed(queue, "orders", desk), key=lambda f: f.id)
    assert [(f.id, f.error_type) for f in rows] == [("42", "crashed"), ("43", "validation")]
    assert "SQS after repeated crashes" in rows[0].reason
    assert not messages(dlq)
    assert sorted(operator.list_failed(queue, "orders", desk), key=lambda f: f.id) == rows  # one item each
    assert operator.redrive(queue, "orders", desk) == 2
    bodies = sorted((json.loads(m["Body"]) for m in messages(queue)), key=lambda b: b["id"])
    assert [(b["id"], b["attempt"], b["by_operator"], b["version"]) for b in bodies] == [
        ("42", 0, True, "2026-11-27 10:00:00"),
        ("43", 0, True, "2026-11-27 10:00:00"),
    ]
    assert len(desk.open()) == 2  # open until a worker gets them through


def test_without_a_writable_desk_a_failure_goes_to_the_failed_queue(
    synclog_table: str, queue: str, bindings_table: str
) -> None:
    w = worker(ScriptedFlow(MISSING), synclog_table, queue, FailuresDesk("no-such-table"), bindings_table)
    assert w.handle_record(record(notice())).outcome == "failed"
    [parked] = messages(queues.dlq_url(queue))
    assert parked["MessageAttributes"]["error_type"]["StringValue"] == "unknown_item"
