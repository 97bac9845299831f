"""template.yaml: the shape the design promises (queues with DLQs, partial batches, least privilege)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sandbox.local.scheduler import Cron, rate_seconds
from sandbox.local.template import load_template, parse_yaml

ROOT = Path(__file__).resolve().parents[2]
FLOWS = ("Orders", "Shipments", "Invoices")


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return parse_yaml(ROOT / "template.yaml")


def resources(template: dict[str, Any], kind: str) -> dict[str, Any]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def test_parses_with_the_transform(template: dict[str, Any]) -> None:
    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    assert template["Globals"]["Function"]["Runtime"] == "python3.11"
    assert set(resources(template, "AWS::Serverless::Function")) == {
        "WebhooksFunction",
        "OperatorFunction",
        *(f"{f}Function" for f in FLOWS),
    }


def test_every_flow_has_a_partial_batch_sqs_event_and_a_schedule(template: dict[str, Any]) -> None:
    for flow in FLOWS:
        events = template["Resources"][f"{flow}Function"]["Properties"]["Events"]
        sqs = [e["Properties"] for e in events.values() if e["Type"] == "SQS"]
        assert len(sqs) == 1, flow
        assert sqs[0]["Queue"] == {"Fn::GetAtt": [f"{flow}Queue", "Arn"]}
        assert sqs[0]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        schedules = [e["Properties"] for e in events.values() if e["Type"] == "Schedule"]
        assert schedules[0] == {"Schedule": {"Ref": "PollSchedule"}, "Input": '{"erpsync": "poll"}'}


def test_orders_are_reconciled_by_a_sweep_schedule(template: dict[str, Any]) -> None:
    events = template["Resources"]["OrdersFunction"]["Properties"]["Events"]
    sweep = [
        e["Properties"] for e in events.values() if e["Type"] == "Schedule" and "sweep" in e["Properties"]["Input"]
    ]
    assert sweep == [{"Schedule": {"Ref": "SweepSchedule"}, "Input": '{"erpsync": "sweep", "hours": 24}'}]


def test_operator_routes_require_iam(template: dict[str, Any]) -> None:
    events = template["Resources"]["OperatorFunction"]["Properties"]["Events"]
    assert events and all(e["Properties"]["Auth"] == {"Authorizer": "AWS_IAM"} for e in events.values())


def test_every_queue_has_a_dlq_with_the_parameterised_max_receive_count(template: dict[str, Any]) -> None:
    timeout = template["Globals"]["Function"]["Timeout"]
    for flow in FLOWS:
        queue = template["Resources"][f"{flow}Queue"]["Properties"]
        assert queue["RedrivePolicy"] == {
            "deadLetterTargetArn": {"Fn::GetAtt": [f"{flow}DLQ", "Arn"]},
            "maxReceiveCount": {"Ref": "MaxReceiveCount"},
        }
        assert queue["VisibilityTimeout"] >= 6 * timeout
        dlq = template["Resources"][f"{flow}DLQ"]["Properties"]
        assert dlq["RedriveAllowPolicy"]["redrivePermission"] == "byQueue"
        alarms = [
            a["Properties"]
            for a in resources(template, "AWS::CloudWatch::Alarm").values()
            if a["Properties"]["Dimensions"][0]["Value"] == {"Fn::GetAtt": [f"{flow}DLQ", "QueueName"]}
        ]
        assert alarms and alarms[0]["MetricName"] == "ApproximateNumberOfMessagesVisible"


def test_messages_are_kept_14_days(template: dict[str, Any]) -> None:
    for name, queue in resources(template, "AWS::SQS::Queue").items():
        assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600, name
        assert queue["Properties"]["SqsManagedSseEnabled"] is True, name


def _statements(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for name, fn in resources(template, "AWS::Serverless::Function").items():
        for policy in fn["Properties"].get("Policies", []):
            assert isinstance(policy, dict), f"{name}: use explicit statements, not managed policy names"
            out.extend((name, s) for s in policy["Statement"])
    return out


def test_no_iam_statement_has_a_wildcard_action(template: dict[str, Any]) -> None:
    statements = _statements(template)
    assert statements
    for name, statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all("*" not in a for a in actions), (name, statement.get("Sid"), actions)
        if statement["Resource"] == "*":
            assert statement.get("Condition"), (name, statement.get("Sid"))


def test_the_webhook_function_may_only_enqueue_and_dedupe(template: dict[str, Any]) -> None:
    actions = {
        a
        for name, s in _statements(template)
        if name == "WebhooksFunction"
        for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }
    assert actions == {
        "sqs:SendMessage",
        "secretsmanager:GetSecretValue",
        "dynamodb:PutItem",
        "dynamodb:GetItem",
        "dynamodb:DeleteItem",
    }


def test_tables(template: dict[str, Any]) -> None:
    log = template["Resources"]["SyncLogTable"]["Properties"]
    assert log["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert log["GlobalSecondaryIndexes"][0]["IndexName"] == "by-outcome"
    for table in resources(template, "AWS::DynamoDB::Table").values():
        props = table["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        assert props["SSESpecification"]["SSEEnabled"] is True


def test_one_log_group_per_function_with_retention(template: dict[str, Any]) -> None:
    groups = resources(template, "AWS::Logs::LogGroup").values()
    named = {g["Properties"]["LogGroupName"]["Fn::Sub"] for g in groups}
    assert named == {f"/aws/lambda/${{{f}}}" for f in resources(template, "AWS::Serverless::Function")}
    assert all(g["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"} for g in groups)


def test_the_local_reading_resolves_everything(tmp_path: Path) -> None:
    st = load_template(ROOT / "template.yaml", {"MaxReceiveCount": "3"}, aws_endpoint="http://127.0.0.1:1")
    orders = st.functions["OrdersFunction"]
    assert orders.environment["ORDERS_QUEUE_URL"] == "http://127.0.0.1:1/123456789012/erpsync-orders"
    assert orders.environment["BINDINGS_TABLE"] == st.tables["BindingsTable"].name
    assert orders.environment["MAX_RECEIVE_COUNT"] == "3"
    assert st.queues["OrdersQueue"].max_receive_count == 3
    assert st.queues["OrdersQueue"].dead_letter_queue == "OrdersDLQ"
    assert orders.sqs_events[0].report_batch_item_failures and orders.sqs_events[0].batch_size == 10
    assert orders.schedule_events[0].input == {"erpsync": "poll"}
    assert st.functions["WebhooksFunction"].api_events[0].path == "/webhooks/{source}"
    assert any((layer.import_path / "erpsync" / "__init__.py").is_file() for layer in st.layers.values())


def test_schedule_expressions() -> None:
    from datetime import UTC, datetime

    assert rate_seconds("rate(5 minutes)") == 300 and rate_seconds("rate(1 hour)") == 3600
    assert rate_seconds("cron(0 * * * ? *)") is None
    at = datetime(2026, 1, 5, 10, 7, tzinfo=UTC)  # a Monday
    assert Cron("cron(0/15 * * * ? *)").next_after(at) == datetime(2026, 1, 5, 10, 15, tzinfo=UTC)
    assert Cron("cron(0 8 ? * MON-FRI *)").next_after(at) == datetime(2026, 1, 6, 8, 0, tzinfo=UTC)
