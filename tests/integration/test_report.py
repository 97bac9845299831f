"""The daily report against moto: counts per flow from the sync log, the open failures from the
failures desk (the failed queues folded in), published to the alerts topic (read back through a
queue subscribed to it), and the report function run the way the local stack runs it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from erpsync.runtime import logs, queues, report
from erpsync.state.failures import FailuresDesk
from erpsync.state.synclog import LogRow, SyncLog

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime.now(UTC)


@pytest.fixture
def env(aws: dict[str, Any], moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The report function's environment as the template gives it (stack ``unit``)."""
    prefix = str(aws["queues"]["OrdersQueue"]).removesuffix("orders")
    topic = str(aws["topics"]["AlertsTopic"])
    monkeypatch.setenv("SYNC_LOG_TABLE", str(aws["tables"]["SyncLogTable"]))
    monkeypatch.setenv("BINDINGS_TABLE", str(aws["tables"]["BindingsTable"]))
    monkeypatch.setenv("QUEUE_URL_PREFIX", prefix)
    monkeypatch.setenv("ALERTS_TOPIC_ARN", topic)
    monkeypatch.setenv("STACK_NAME", "unit")
    return {**aws, "topic": topic, "prefix": prefix}


@pytest.fixture
def inbox(env: dict[str, Any], moto_endpoint: str) -> Iterator[str]:
    """A queue subscribed to the alerts topic: what an email subscriber would get."""
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint)
    sns = boto3.client("sns", endpoint_url=moto_endpoint)
    url = sqs.create_queue(QueueName="unit-alerts-inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=env["topic"], Protocol="sqs", Endpoint=arn)
    yield url
    sqs.delete_queue(QueueUrl=url)


def received(inbox: str) -> list[dict[str, Any]]:
    """The SNS notifications that reached the inbox (Subject, Message)."""
    sqs = queues.client()
    got = sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    return [json.loads(m["Body"]) for m in got]


def row(flow: str, source_id: str, outcome: str, error_type: str = "", hours_ago: float = 1.0) -> LogRow:
    at = (NOW - timedelta(hours=hours_ago)).isoformat(timespec="milliseconds")
    return LogRow(flow, "magento", source_id, outcome, error_type=error_type, message="x", at=at)


def park(env: dict[str, Any], flow: str, record: str, error_type: str, reason: str, hours_ago: float) -> None:
    first = (NOW - timedelta(hours=hours_ago)).isoformat()
    body = json.dumps({"source": "magento", "entity": "order", "id": record, "attempt": 1, "first_attempt_at": first})
    meta = {
        "flow": flow,
        "entity": "order",
        "source": "magento",
        "id": record,
        "error_type": error_type,
        "reason": reason,
        "attempts": "1",
        "first_attempt_at": first,
        "last_attempt_at": NOW.isoformat(),
    }
    queues.park_failed(f"{env['prefix']}{flow}", body, meta)


def test_the_report_counts_each_flow_and_names_the_oldest_open_failure(env: dict[str, Any], inbox: str) -> None:
    log = SyncLog(env["tables"]["SyncLogTable"])
    for i in range(3):
        log.write(row("orders", str(10 + i), "synced"))
    log.write(row("orders", "7", "failed", "unknown_item"))
    log.write(row("orders", "8", "retrying", "outage"))
    log.write(row("orders", "8", "retrying", "outage", hours_ago=2))
    log.write(row("orders", "9", "retrying", "timeout"))
    log.write(row("orders", "8", "synced", hours_ago=0.5))
    log.write(row("customers", "5", "synced"))
    log.write(row("orders", "1", "synced", hours_ago=30))  # before the window
    log.write(row("orders", "2", "failed", "validation", hours_ago=25))
    park(env, "orders", "7", "unknown_item", "unknown SKU 'WB04-XS-Blue' for j***@example.com", hours_ago=3)
    park(env, "orders", "6", "mapping_missing", "no ShipVia for flatrate_flatrate", hours_ago=30)  # parked yesterday
    park(env, "shipments", "000123", "not_found", "no such Magento order", hours_ago=1)

    answer = report.handle({"erpsync": "report", "hours": 24}, None)

    [note] = received(inbox)
    assert note["Subject"] == answer["subject"] == "unit daily report: 5 synced, 1 failed, 3 open failures"
    text = note["Message"]
    assert text == answer["message"] and answer["published"]
    lines = text.splitlines()
    assert lines[0] == "erpsync daily report, stack unit"
    start = next(i for i, x in enumerate(lines) if x.startswith("flow "))
    table = {line.split()[0]: line.split()[1:] for line in lines[start : lines.index("", start)]}
    assert table["orders"] == ["4", "1", "3", "(2", "records)", "2"]  # synced, failed, retried (records), open
    assert table["customers"] == ["1", "0", "0", "0"]
    assert table["shipments"] == ["0", "0", "0", "1"]
    assert table["invoices"] == ["0", "0", "0", "0"] and table["erp-customers"] == ["0", "0", "0", "0"]
    assert table["all"] == ["flows", "5", "1", "3", "3"]
    assert "  orders: unknown_item 1" in lines  # failed by error type (yesterday's validation is out)
    assert "  orders: outage 2, timeout 1" in lines
    waiting = next(x for x in lines if x.startswith("  orders: 2 waiting"))
    assert "the oldest is 6 (mapping_missing)" in waiting and "(30 h ago)" in waiting
    assert "no ShipVia for flatrate_flatrate" in waiting
    assert any(x.startswith("  shipments: 1 waiting; the oldest is 000123 (not_found)") for x in lines)
    assert "The oldest open failure: orders 6, waiting since" in text
    assert "`erpsync retry <flow>`" in text and "erpsync failed show <id>" in text

    # the failed queues were folded into the desk: one open item per record, nothing lost
    assert not queues.receive(f"{env['prefix']}orders-dlq", 10, visibility_s=0)
    open_ = FailuresDesk(env["tables"]["BindingsTable"]).open()
    assert sorted((f.flow, f.id) for f in open_) == [("orders", "6"), ("orders", "7"), ("shipments", "000123")]


def test_personal_data_in_a_reason_stays_masked(env: dict[str, Any]) -> None:
    park(env, "orders", "7", "validation", "bad address for jane.doe@example.com, phone +1 555 0100 1234", 2)
    desk = FailuresDesk(env["tables"]["BindingsTable"])
    text = report.gather(SyncLog(env["tables"]["SyncLogTable"]), desk, report.queue_urls(), stack="unit").text()
    assert "jane.doe@example.com" not in text and "j***@example.com" in text


def test_a_day_with_nothing_to_tell_still_says_so(env: dict[str, Any], inbox: str) -> None:
    SyncLog(env["tables"]["SyncLogTable"]).write(row("orders", "1", "synced", hours_ago=48))

    answer = report.handle({}, None)

    [note] = received(inbox)
    assert note["Subject"] == "unit daily report: nothing synced, nothing failed"
    assert "Nothing to report: no record was synced, failed or retried in the last 24 hours," in note["Message"]
    assert "no failure is open" in note["Message"] and answer["published"]


def test_without_a_topic_the_report_is_returned_not_published(
    env: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ALERTS_TOPIC_ARN")
    answer = report.handle({}, None)
    assert not answer["published"] and answer["message"].startswith("erpsync daily report, stack unit")


def test_the_report_function_runs_as_the_local_stack_runs_it(
    aws: dict[str, Any], moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """template.yaml's ReportFunction: its handler file, with its environment, publishing to the
    topic the local stack created in moto."""
    from sandbox.local.lambda_runtime import LocalFunction
    from sandbox.local.template import load_template

    st = load_template(ROOT / "template.yaml", stack_name="unit", aws_endpoint=moto_endpoint)
    spec = st.functions["ReportFunction"]
    for key, value in spec.environment.items():
        monkeypatch.setenv(key, value)  # put back after the test (the function sets them too)
    sqs, sns = queues.client(), boto3.client("sns", endpoint_url=moto_endpoint)
    inbox = sqs.create_queue(QueueName="unit-report-inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=spec.environment["ALERTS_TOPIC_ARN"], Protocol="sqs", Endpoint=arn)
    SyncLog(spec.environment["SYNC_LOG_TABLE"]).write(row("invoices", "INV1", "synced"))
    fn = LocalFunction(spec)
    try:
        answer = fn.invoke(spec.schedule_events[0].input)
    finally:
        fn.unload()
        logs.reset()
    assert answer["published"] and "1 synced" in answer["subject"]
    [note] = received(inbox)
    assert note["Subject"] == answer["subject"] and note["TopicArn"] == st.topics["AlertsTopic"].arn


def test_a_record_sqs_moved_after_crashes_and_an_unreadable_queue_are_reported(env: dict[str, Any]) -> None:
    first = (NOW - timedelta(hours=5)).isoformat()
    crashed = json.dumps({"source": "magento", "entity": "order", "id": "77", "attempt": 3, "first_attempt_at": first})
    queues.client().send_message(QueueUrl=f"{env['prefix']}orders-dlq", MessageBody=crashed)  # no attributes
    urls = {**report.queue_urls(), "ghost": f"{env['prefix']}ghost"}
    desk = FailuresDesk(env["tables"]["BindingsTable"])
    got = report.gather(SyncLog(env["tables"]["SyncLogTable"]), desk, urls, stack="unit")
    orders = next(f for f in got.flows if f.flow == "orders")
    assert orders.open_failures == 1 and orders.oldest is not None
    assert (orders.oldest.id, orders.oldest.first_attempt_at) == ("77", first)
    assert "moved to the failed queue by SQS after repeated crashes" in orders.oldest.reason
    text = got.text()
    assert "Could not read the open failures of ghost: " in text and "  orders: 1 waiting; the oldest is 77" in text
