"""The worker's failure handling: what is retried, what waits, what is parked, and the log."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from erpsync.errors import AuthError, OutageError, RateLimitedError, RetryableError, UnknownItemError
from erpsync.flows.base import SyncResult
from erpsync.model import ChangeNotice
from erpsync.runtime.worker import Envelope, Worker, backoff_seconds
from erpsync.state.guards import Breaker, Leases
from erpsync.state.synclog import SyncLog


class ScriptedFlow:
    """A flow whose sync raises or returns what the test scripts, in order."""

    name, source, target = "orders", "magento", "acumatica"

    def __init__(self, *script: Any) -> None:
        self.script = list(script)
        self.calls = 0

    def changes(self, since: datetime) -> list[ChangeNotice]:
        return []

    def sync(self, notice: ChangeNotice) -> SyncResult:
        self.calls += 1
        step = self.script.pop(0) if self.script else SyncResult("synced", "SO1")
        if isinstance(step, Exception):
            raise step
        return step


def record(body: dict[str, Any] | str, n: int = 1) -> dict[str, Any]:
    raw = body if isinstance(body, str) else json.dumps(body)
    return {"messageId": f"m{n}", "receiptHandle": f"r{n}", "body": raw, "attributes": {"ApproximateReceiveCount": "1"}}


NOTICE = {"source": "magento", "entity": "order", "id": "42"}


def messages(url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"DelaySeconds": "0"})
    out = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=0)
    return list(out.get("Messages", []))


@pytest.fixture
def queue(aws: dict[str, Any]) -> str:
    return str(aws["queues"]["OrdersQueue"])


@pytest.fixture
def dlq(aws: dict[str, Any]) -> str:
    return str(aws["queues"]["OrdersDLQ"])


def worker(flow: ScriptedFlow, synclog_table: str, queue: str, **kw: Any) -> Worker:
    w = Worker(flow, SyncLog(synclog_table), queue, max_attempts=3, **kw)
    w.max_delay_s = 0  # see re-queued notices at once
    return w


def test_success_is_logged_once(synclog_table: str, queue: str) -> None:
    w = worker(ScriptedFlow(SyncResult("synced", "SO7", "created")), synclog_table, queue)
    assert w.handle_batch({"Records": [record(NOTICE)]}) == {"batchItemFailures": []}
    [row] = SyncLog(synclog_table).history("orders", "42")
    assert (row["outcome"], row["target_id"], row["attempt"]) == ("synced", "SO7", 1)


def test_permanent_failure_is_parked_at_once_with_its_reason(synclog_table: str, queue: str, dlq: str) -> None:
    w = worker(ScriptedFlow(UnknownItemError("unknown item 'NOPE'", system="acumatica")), synclog_table, queue)
    out = w.handle_record(record(NOTICE))
    assert out.ok and out.outcome == "failed"
    [parked] = messages(dlq)
    attrs = {k: v["StringValue"] for k, v in parked["MessageAttributes"].items()}
    assert attrs["error_type"] == "unknown_item" and "NOPE" in attrs["reason"]
    assert attrs["id"] == "42" and attrs["attempts"] == "1" and attrs["first_attempt_at"]
    assert Envelope.parse(parked["Body"]).notice.id == "42"
    assert not messages(queue)


def test_a_record_failure_is_retried_with_its_attempt_then_parked(synclog_table: str, queue: str, dlq: str) -> None:
    flow = ScriptedFlow(*[ValueError("bug")] * 3)
    w = worker(flow, synclog_table, queue)
    body: dict[str, Any] | str = NOTICE
    for attempt in (1, 2):
        out = w.handle_record(record(body))
        assert out.outcome == "retrying"
        [again] = messages(queue)
        env = Envelope.parse(again["Body"])
        assert env.attempt == attempt
        boto3.client("sqs").delete_message(QueueUrl=queue, ReceiptHandle=again["ReceiptHandle"])
        body = again["Body"]
    assert w.handle_record(record(body)).outcome == "failed"
    [parked] = messages(dlq)
    assert parked["MessageAttributes"]["attempts"]["StringValue"] == "3"
    outcomes = [r["outcome"] for r in SyncLog(synclog_table).history("orders", "42")]
    assert outcomes == ["retrying", "retrying", "failed"]


def test_an_outage_waits_without_spending_attempts(
    synclog_table: str, queue: str, dlq: str, bindings_table: str
) -> None:
    flow = ScriptedFlow(*[OutageError("connect refused", system="acumatica")] * 10)
    w = worker(flow, synclog_table, queue, breaker=Breaker(bindings_table, threshold=100))
    body: dict[str, Any] | str = NOTICE
    for _ in range(10):
        assert w.handle_record(record(body)).outcome == "retrying"
        [again] = messages(queue)
        boto3.client("sqs").delete_message(QueueUrl=queue, ReceiptHandle=again["ReceiptHandle"])
        body = again["Body"]
    assert Envelope.parse(str(body)).attempt == 0
    assert not messages(dlq)


def test_an_open_breaker_stops_calls_and_waits_it_out(synclog_table: str, queue: str, bindings_table: str) -> None:
    breaker = Breaker(bindings_table, threshold=2)
    for _ in range(2):
        breaker.failure("acumatica")  # what the gate does when the system gives no answer
    other = ScriptedFlow()
    w = worker(other, synclog_table, queue, breaker=Breaker(bindings_table, threshold=2))
    out = w.handle_record(record(NOTICE, 3))
    assert out.outcome == "retrying" and "circuit open" in out.message
    assert other.calls == 0
    [again] = messages(queue)
    assert Envelope.parse(again["Body"]).attempt == 0


class DownFlow(ScriptedFlow):
    """Its system gives no answer: the gate tells the breaker, then the error reaches the worker."""

    def __init__(self, breaker: Breaker) -> None:
        super().__init__()
        self.breaker = breaker

    def sync(self, notice: ChangeNotice) -> SyncResult:
        self.calls += 1
        self.breaker.failure("acumatica")
        raise OutageError("acumatica unreachable", system="acumatica")


def test_a_failure_that_opens_the_breaker_waits_until_it_closes(
    synclog_table: str, queue: str, bindings_table: str
) -> None:
    breaker = Breaker(bindings_table, threshold=1, base_open_s=120)
    w = worker(DownFlow(breaker), synclog_table, queue, breaker=breaker)
    w.max_delay_s = 900
    assert w.handle_record(record(NOTICE)).outcome == "retrying"
    [row] = SyncLog(synclog_table).history("orders", "42")
    assert "again in 119s" in row["message"] or "again in 120s" in row["message"]


def test_refused_credentials_open_the_breaker_and_spend_no_attempt(
    synclog_table: str, queue: str, dlq: str, bindings_table: str
) -> None:
    breaker = Breaker(bindings_table, base_open_s=60)
    flow = ScriptedFlow(AuthError("Acumatica sign-in refused", system="acumatica"))
    w = worker(flow, synclog_table, queue, breaker=breaker)
    w.max_delay_s = 900
    assert w.handle_record(record(NOTICE)).outcome == "retrying"
    assert 59 < breaker.open_for("acumatica") <= 60  # every worker waits, no request goes out
    assert not messages(dlq)
    [row] = SyncLog(synclog_table).history("orders", "42")  # back on the queue, delayed until it closes
    assert row["error_type"] == "auth" and int(row["attempt"]) == 0
    assert "again in 59s" in row["message"] or "again in 60s" in row["message"]


def test_records_meeting_a_down_system_count_how_long_it_has_been_down(
    synclog_table: str, queue: str, bindings_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``BreakerOpenFor`` (what the template's breaker alarm reads): written by a record that meets
    the breaker open and by one that fails on the system while it keeps opening; not once it answers."""
    from erpsync.runtime import metrics

    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "erpsync-OrdersFunction")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    with metrics._lock:
        metrics._docs.clear()
    now = [1_000_000.0]
    breaker = Breaker(bindings_table, threshold=1, base_open_s=10, cache_s=0, clock=lambda: now[0])
    w = worker(DownFlow(breaker), synclog_table, queue, breaker=breaker)
    w.handle_record(record(NOTICE))  # opens it
    now[0] += 90  # closed again, still no answer: the next record fails on it too
    w.handle_record(record(NOTICE, 2))
    now[0] += 5  # open: this one only meets it
    w.flow = ScriptedFlow()
    w.handle_record(record(NOTICE, 3))

    def open_for() -> list[float]:
        kept = [d for d in metrics.pending().values() if "BreakerOpenFor" in d.values]
        assert all(d.dimensions == {"flow": "orders", "connection": "acumatica"} for d in kept)
        return [v for d in kept for v in d.values["BreakerOpenFor"][1]]

    try:
        assert open_for() == [90.0, 95.0]  # the first opening counts from 0, which says nothing
        breaker.success("acumatica")
        now[0] += 30
        w.handle_record(record(NOTICE, 4))
        assert open_for() == [90.0, 95.0]
    finally:
        with metrics._lock:
            metrics._docs.clear()


def test_a_429_goes_back_without_spending_an_attempt(synclog_table: str, queue: str) -> None:
    flow = ScriptedFlow(RateLimitedError("429", system="acumatica", retry_after=7, status=429))
    w = worker(flow, synclog_table, queue)
    assert w.handle_record(record(NOTICE)).outcome == "retrying"
    [again] = messages(queue)
    assert Envelope.parse(again["Body"]).attempt == 0


def test_a_record_held_by_another_worker_waits(synclog_table: str, queue: str, bindings_table: str) -> None:
    holder = Leases(bindings_table)
    assert holder.acquire("orders#magento#42")
    flow = ScriptedFlow()
    w = worker(flow, synclog_table, queue, leases=Leases(bindings_table))
    assert w.handle_record(record(NOTICE)).outcome == "retrying"
    assert flow.calls == 0
    holder.release("orders#magento#42")
    assert w.handle_record(record(NOTICE)).outcome == "synced"


def test_transient_failures_are_parked_only_after_the_give_up_age(synclog_table: str, queue: str, dlq: str) -> None:
    old = (datetime.now(UTC) - timedelta(hours=100)).isoformat()
    flow = ScriptedFlow(OutageError("down", system="acumatica"))
    w = worker(flow, synclog_table, queue, give_up_after_hours=96)
    assert w.handle_record(record({**NOTICE, "first_attempt_at": old})).outcome == "failed"
    assert messages(dlq)


@pytest.mark.parametrize("body", ["not json", "[1]", json.dumps({"source": "magento"})])
def test_a_malformed_message_is_parked_not_retried(synclog_table: str, queue: str, dlq: str, body: str) -> None:
    w = worker(ScriptedFlow(), synclog_table, queue)
    assert w.handle_record(record(body)).outcome == "failed"
    [parked] = messages(dlq)
    assert parked["MessageAttributes"]["error_type"]["StringValue"] == "bad_message"


def test_backoff_grows_with_jitter_and_honours_retry_after() -> None:
    assert 5 <= backoff_seconds(1) <= 10
    assert 20 <= backoff_seconds(3) <= 40
    assert backoff_seconds(20) <= 900
    assert backoff_seconds(1, retry_after=120) == 120


class SlowFlow(ScriptedFlow):
    """Each sync takes ``seconds`` (a slow ERP answer)."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def sync(self, notice: ChangeNotice) -> SyncResult:
        import time

        time.sleep(self.seconds)
        return super().sync(notice)


def test_a_batch_hands_back_untouched_what_the_deadline_cannot_fit(synclog_table: str, queue: str) -> None:
    from erpsync.systems.ports import Deadline

    deadline = Deadline(margin_s=0.0)
    deadline.start(5.0 + 0.5)  # room for one record before the 5 s reserve is reached
    flow = SlowFlow(0.6)
    w = worker(flow, synclog_table, queue, deadline=deadline)
    batch = {"Records": [record({**NOTICE, "id": str(i)}, i) for i in range(4)]}
    out = w.handle_batch(batch)
    assert flow.calls == 1  # the first record ran; the rest were never started
    assert [f["itemIdentifier"] for f in out["batchItemFailures"]] == ["m1", "m2", "m3"]


def test_a_request_is_not_sent_with_too_little_time_left() -> None:
    from erpsync.systems.ports import Deadline

    d = Deadline(margin_s=1.0, min_request_s=1.0)
    assert d.timeout(30.0) == 30.0  # no deadline: the default
    d.start(10.0)
    assert 8.0 < d.timeout(30.0) <= 9.0  # cut to what is left, less the margin
    d.start(1.5)
    with pytest.raises(RetryableError) as err:
        d.timeout(30.0, "acumatica")
    assert err.value.error_type == "budget"


class WaitingFlow(ScriptedFlow):
    """Record "slow" waits until every other record of the batch has finished (or 5 s)."""

    def __init__(self, others: int) -> None:
        super().__init__()
        import threading

        self.done = threading.Semaphore(0)
        self.others = others
        self.saw_others_finish = False

    def sync(self, notice: ChangeNotice) -> SyncResult:
        if notice.id == "slow":
            self.saw_others_finish = all(self.done.acquire(timeout=5) for _ in range(self.others))
            return SyncResult("synced", "SLOW")
        self.done.release()
        return SyncResult("synced", notice.id)


def test_a_slow_record_does_not_hold_up_the_rest_of_its_batch(synclog_table: str, queue: str) -> None:
    flow = WaitingFlow(others=3)
    w = worker(flow, synclog_table, queue)
    w.parallel = 4
    batch = {
        "Records": [record({**NOTICE, "id": "slow"}, 0)] + [record({**NOTICE, "id": str(i)}, i) for i in (1, 2, 3)]
    }
    assert w.handle_batch(batch) == {"batchItemFailures": []}
    assert flow.saw_others_finish  # the three others ran while the first one was still waiting
    # (on one thread the slow record would wait its 5 s out alone and saw_others_finish would be False)


class BatchedFlow:
    """A flow that takes whole batches (``sync_many``), as stock and prices do."""

    name, source, target = "stock", "acumatica", "magento"
    batched = True

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.batches: list[list[str]] = []

    def sync(self, notice: ChangeNotice) -> SyncResult:
        raise AssertionError("a batched flow gets whole batches")

    def sync_many(self, notices: list[ChangeNotice]) -> list[Any]:
        self.batches.append([n.id for n in notices])
        return [self.answers.get(n.id, SyncResult("synced", n.id)) for n in notices]


def test_a_batched_flow_gets_the_batch_at_once_and_each_record_its_own_outcome(synclog_table: str, queue: str) -> None:
    flow = BatchedFlow(
        {
            "B": UnknownItemError("magento refused the stock of B: unknown SKU", system="magento"),
            "C": OutageError("magento is down", system="magento"),
        }
    )
    w = worker(flow, synclog_table, queue)  # type: ignore[arg-type]
    w.flow_name = "stock"
    batch = [record({"source": "acumatica", "entity": "stock", "id": sku}, n) for n, sku in enumerate("ABC")]
    out = w.handle_batch({"Records": batch})
    assert flow.batches == [["A", "B", "C"]]
    assert out == {"batchItemFailures": []}  # B is on the desk (or parked), C re-queued: none redelivered
    log = SyncLog(synclog_table)
    assert [r["outcome"] for r in log.history("stock", "A")] == ["synced"]
    assert [r["outcome"] for r in log.history("stock", "B")] == ["failed"]
    assert [r["outcome"] for r in log.history("stock", "C")] == ["retrying"]
    [again] = messages(queue)
    assert json.loads(again["Body"])["id"] == "C"


def test_a_batched_flow_that_raises_fails_each_record_alike(synclog_table: str, queue: str) -> None:
    class Broken(BatchedFlow):
        def sync_many(self, notices: list[ChangeNotice]) -> list[Any]:
            raise OutageError("magento is down", system="magento")

    w = worker(Broken({}), synclog_table, queue)  # type: ignore[arg-type]
    w.flow_name = "stock"
    batch = [record({"source": "acumatica", "entity": "stock", "id": sku}, n) for n, sku in enumerate("AB")]
    assert w.handle_batch({"Records": batch}) == {"batchItemFailures": []}
    assert sorted(json.loads(m["Body"])["id"] for m in messages(queue)) == ["A", "B"]


def test_a_duplicate_notice_of_a_version_already_synced_reads_nothing(
    synclog_table: str, queue: str, bindings_table: str
) -> None:
    """A webhook delivered twice, or a poll's look-back re-finding a change, costs no call to the
    source once that version was synced; a newer version, and an operator's retry, are synced."""
    from erpsync.state.bindings import SeenVersions
    from erpsync.state.failures import FailuresDesk

    seen = SeenVersions(bindings_table)
    flow = ScriptedFlow()
    w = worker(flow, synclog_table, queue, seen=seen, desk=FailuresDesk(bindings_table))
    v1 = {**NOTICE, "version": "2026-11-28T10:00:00Z"}
    assert w.handle_record(record(v1)).outcome == "synced"
    assert seen.get_many("orders#magento", ["42"]) == {"42": v1["version"]}
    again = w.handle_record(record(v1, 2))
    assert (again.outcome, again.message, flow.calls) == (
        "skipped",
        "this version was synced already (a duplicate notice)",
        1,
    )
    batched = w.run_many([record(v1, 3)])
    assert [o.outcome for o in batched if o] == ["skipped"] and flow.calls == 1
    assert w.handle_record(record({**v1, "version": "2026-11-28T10:05:00Z"}, 4)).outcome == "synced"
    assert (
        w.handle_record(record({**v1, "version": "2026-11-28T10:05:00Z", "by_operator": True}, 5)).outcome == "synced"
    )
    assert flow.calls == 3
    assert w.handle_record(record(NOTICE, 6)).outcome == "synced"  # no version: nothing to compare
    assert flow.calls == 4


def test_a_notice_for_a_flow_on_no_route_is_filtered_not_a_crash(
    synclog_table: str, queue: str, bindings_table: str
) -> None:
    """An ERP's webhook can ring a flow the settings give no route (QuickBooks' invoice events with
    a store that takes no invoices): the worker, breaker and all, logs it filtered, naming why."""
    from erpsync.runtime.lambda_app import Dispatcher

    w = Worker(
        Dispatcher("invoices", []), SyncLog(synclog_table), queue, max_attempts=3, breaker=Breaker(bindings_table)
    )
    body = {"source": "quickbooks", "entity": "invoice", "id": "147"}
    assert w.handle_batch({"Records": [record(body)]}) == {"batchItemFailures": []}
    [row] = SyncLog(synclog_table).history("invoices", "147")
    assert row["outcome"] == "filtered" and "flow invoices runs on no route of these settings" in row["message"]
