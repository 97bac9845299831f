"""template.yaml: the shape the design promises (queues with DLQs, partial batches, least privilege),
and the local reading of it (Fn::ForEach expanded, intrinsics resolved against the local stack)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from erpsync.flows.catalog import FLOWS
from sandbox.local.scheduler import Cron, rate_seconds
from sandbox.local.template import TemplateError, expand_foreach, load_template, parse_yaml

ROOT = Path(__file__).resolve().parents[2]
LIDS = tuple(f.logical_id for f in FLOWS)
STACK_QUEUES = "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:${AWS::StackName}-*"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    """The template with its Fn::ForEach loops expanded (what the SAM transform sees)."""
    return parse_yaml(ROOT / "template.yaml")


def resources(template: dict[str, Any], kind: str) -> dict[str, Any]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def find_in_map(lid: str, key: str) -> dict[str, Any]:
    return {"Fn::FindInMap": ["Flows", lid, key]}


def test_parses_with_the_transforms(template: dict[str, Any]) -> None:
    assert template["Transform"] == ["AWS::LanguageExtensions", "AWS::Serverless-2016-10-31"]
    assert template["Globals"]["Function"]["Runtime"] == "python3.11"
    assert set(resources(template, "AWS::Serverless::Function")) == {
        "WebhooksFunction",
        "OperatorFunction",
        "ReportFunction",
        *(f"{lid}Function" for lid in LIDS),
    }


def test_every_flow_runs_the_one_flow_handler_with_its_name_in_flow(template: dict[str, Any]) -> None:
    assert (ROOT / "functions" / "flow" / "app.py").is_file()
    for lid in LIDS:
        props = template["Resources"][f"{lid}Function"]["Properties"]
        assert (props["CodeUri"], props["Handler"]) == ("functions/flow", "app.handler")
        assert props["Environment"]["Variables"] == {"FLOW": find_in_map(lid, "Name")}
        assert props["Timeout"] == {"Ref": "FlowTimeout"}


def test_every_flow_has_a_partial_batch_sqs_event_a_poll_and_a_sweep(template: dict[str, Any]) -> None:
    for lid in LIDS:
        events = template["Resources"][f"{lid}Function"]["Properties"]["Events"]
        sqs = [e["Properties"] for e in events.values() if e["Type"] == "SQS"]
        assert len(sqs) == 1, lid
        assert sqs[0]["Queue"] == {"Fn::Sub": f"${{{lid}Queue.Arn}}"}
        assert sqs[0]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert sqs[0]["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "FlowConcurrency"}}
        schedules = [e["Properties"] for e in events.values() if e["Type"] == "Schedule"]
        assert schedules == [
            {"Schedule": {"Ref": "PollSchedule"}, "Input": '{"erpsync": "poll"}'},
            {
                "Schedule": {"Ref": "SweepSchedule"},
                "Input": '{"erpsync": "sweep", "hours": 24}',
                "State": find_in_map(lid, "Sweep"),
            },
        ]


def test_flow_concurrency_and_timeout_are_parameters(template: dict[str, Any]) -> None:
    params = template["Parameters"]
    assert params["FlowConcurrency"]["Default"] == 5 and params["FlowConcurrency"]["MinValue"] == 2
    assert str(params["FlowTimeout"]["Default"]) == "60"
    visibility = template["Mappings"]["FlowTimeouts"]
    allowed = [str(v) for v in params["FlowTimeout"]["AllowedValues"]]
    assert sorted(visibility, key=int) == allowed  # one row per allowed timeout
    assert all(row == {"VisibilityTimeout": 6 * int(t)} for t, row in visibility.items())


def test_operator_routes_require_iam(template: dict[str, Any]) -> None:
    events = template["Resources"]["OperatorFunction"]["Properties"]["Events"]
    assert events and all(e["Properties"]["Auth"] == {"Authorizer": "AWS_IAM"} for e in events.values())


def test_every_queue_has_a_dlq_with_the_parameterised_max_receive_count(template: dict[str, Any]) -> None:
    for lid in LIDS:
        queue = template["Resources"][f"{lid}Queue"]["Properties"]
        assert queue["RedrivePolicy"] == {
            "deadLetterTargetArn": {"Fn::Sub": f"${{{lid}DLQ.Arn}}"},
            "maxReceiveCount": {"Ref": "MaxReceiveCount"},
        }
        assert queue["VisibilityTimeout"] == {
            "Fn::FindInMap": ["FlowTimeouts", {"Ref": "FlowTimeout"}, "VisibilityTimeout"]
        }
        dlq = template["Resources"][f"{lid}DLQ"]["Properties"]
        assert dlq["RedriveAllowPolicy"]["redrivePermission"] == "byQueue"
        alarms = [
            a["Properties"]
            for a in resources(template, "AWS::CloudWatch::Alarm").values()
            if a["Properties"].get("Dimensions", [{}])[0].get("Value") == {"Fn::Sub": f"${{{lid}DLQ.QueueName}}"}
        ]
        assert alarms and alarms[0]["MetricName"] == "ApproximateNumberOfMessagesVisible"


def test_messages_are_kept_14_days(template: dict[str, Any]) -> None:
    for name, queue in resources(template, "AWS::SQS::Queue").items():
        assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600, name
        assert queue["Properties"]["SqsManagedSseEnabled"] is True, name


def _statements(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for name, fn in resources(template, "AWS::Serverless::Function").items():
        for policy in fn["Properties"].get("Policies", []):
            assert isinstance(policy, dict), f"{name}: use explicit statements, not managed policy names"
            out.extend((name, s) for s in policy["Statement"])
    return out


def _actions(statement: dict[str, Any]) -> list[str]:
    return statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]


def test_no_iam_statement_has_a_wildcard_action(template: dict[str, Any]) -> None:
    statements = _statements(template)
    assert statements
    for name, statement in statements:
        assert all("*" not in a for a in _actions(statement)), (name, statement.get("Sid"))
        if statement["Resource"] == "*":
            assert statement.get("Condition"), (name, statement.get("Sid"))


def test_the_webhook_function_may_only_enqueue_and_dedupe(template: dict[str, Any]) -> None:
    statements = [s for name, s in _statements(template) if name == "WebhooksFunction"]
    assert {a for s in statements for a in _actions(s)} == {
        "sqs:SendMessage",
        "secretsmanager:GetSecretValue",
        "dynamodb:PutItem",
        "dynamodb:GetItem",
        "dynamodb:DeleteItem",
    }
    enqueue = next(s for s in statements if s["Sid"] == "EnqueueNotices")
    assert enqueue["Resource"] == {"Fn::Sub": STACK_QUEUES}  # every flow's queue, whatever the flows


def test_the_operator_reaches_every_queue_by_the_stack_prefix(template: dict[str, Any]) -> None:
    queues = next(s for name, s in _statements(template) if name == "OperatorFunction" and s["Sid"] == "Queues")
    assert queues["Resource"] == {"Fn::Sub": STACK_QUEUES}


def test_a_flow_reaches_its_own_queues_the_tables_the_secrets_and_its_metrics(template: dict[str, Any]) -> None:
    for lid in LIDS:
        statements = {s["Sid"]: s for name, s in _statements(template) if name == f"{lid}Function"}
        assert set(statements) == {"OwnQueue", "ParkFailed", "State", "ReadSystemSecrets", "Metrics"}
        assert statements["OwnQueue"]["Resource"] == {"Fn::Sub": f"${{{lid}Queue.Arn}}"}
        assert statements["ParkFailed"]["Resource"] == {"Fn::Sub": f"${{{lid}DLQ.Arn}}"}
        secrets = [r["Fn::Sub"] for r in statements["ReadSystemSecrets"]["Resource"]]
        assert secrets[0].endswith(":secret:erpsync/*") and len(secrets) == 3
        assert statements["Metrics"]["Condition"] == {"StringEquals": {"cloudwatch:namespace": "erpsync"}}


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


def test_every_flow_log_group_has_its_saved_queries(template: dict[str, Any]) -> None:
    queries = resources(template, "AWS::Logs::QueryDefinition").values()
    for lid in LIDS:
        mine = [q for q in queries if {"Fn::Sub": f"${{{lid}LogGroup}}"} in q["Properties"]["LogGroupNames"]]
        assert len(mine) == 4, lid  # failed records, retries by error type, record history, sync durations


def test_outputs_give_every_queue_and_the_queue_url_prefix(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    for lid in LIDS:
        assert outputs[f"{lid}QueueUrl"]["Value"] == {"Fn::Sub": f"${{{lid}Queue}}"}
        assert outputs[f"{lid}DLQUrl"]["Value"] == {"Fn::Sub": f"${{{lid}DLQ}}"}
    prefix = template["Globals"]["Function"]["Environment"]["Variables"]["QUEUE_URL_PREFIX"]
    assert outputs["QueueUrlPrefix"]["Value"] == prefix


def test_the_local_reading_resolves_everything() -> None:
    st = load_template(ROOT / "template.yaml", {"MaxReceiveCount": "3"}, aws_endpoint="http://127.0.0.1:1")
    orders = st.functions["OrdersFunction"]
    assert orders.environment["QUEUE_URL_PREFIX"] == "http://127.0.0.1:1/123456789012/erpsync-"
    assert orders.environment["QUEUE_URL_PREFIX"] + "orders" == st.queues["OrdersQueue"].url
    assert orders.environment["FLOW"] == "orders"
    assert orders.environment["BINDINGS_TABLE"] == st.tables["BindingsTable"].name
    assert orders.environment["MAX_RECEIVE_COUNT"] == "3"
    assert orders.handler_file == ROOT / "functions" / "flow" / "app.py"
    assert st.queues["OrdersQueue"].max_receive_count == 3
    assert st.queues["OrdersQueue"].dead_letter_queue == "OrdersDLQ"
    assert orders.sqs_events[0].report_batch_item_failures and orders.sqs_events[0].batch_size == 10
    assert orders.sqs_events[0].queue == "OrdersQueue" and orders.sqs_events[0].maximum_concurrency == 5
    assert orders.schedule_events[0].input == {"erpsync": "poll"}
    assert orders.timeout == 60 and st.queues["OrdersQueue"].visibility_timeout == 360
    assert st.functions["WebhooksFunction"].api_events[0].path == "/webhooks/{source}"
    assert any((layer.import_path / "erpsync" / "__init__.py").is_file() for layer in st.layers.values())


def test_flow_timeout_and_concurrency_reach_every_flow() -> None:
    st = load_template(ROOT / "template.yaml", {"FlowTimeout": "120", "FlowConcurrency": "8"})
    for lid in LIDS:
        assert st.functions[f"{lid}Function"].timeout == 120
        assert st.functions[f"{lid}Function"].sqs_events[0].maximum_concurrency == 8
        assert st.queues[f"{lid}Queue"].visibility_timeout == 720
    with pytest.raises(TemplateError):
        load_template(ROOT / "template.yaml", {"FlowTimeout": "61"})


# --------------------------------------------------------------------------- Fn::ForEach, as read locally

LE = ["AWS::LanguageExtensions", "AWS::Serverless-2016-10-31"]


def test_foreach_stamps_out_keys_refs_and_subs() -> None:
    doc = {
        "Transform": LE,
        "Resources": {
            "Fn::ForEach::Q": [
                "Name",
                ["a-b", "c"],
                {
                    "Q&{Name}": {"Properties": {"N": {"Ref": "Name"}, "S": {"Fn::Sub": "${Name}-${AWS::StackName}"}}},
                    "Fn::ForEach::Inner": ["X", ["1", "2"], {"Q&{Name}${X}": {"Ref": "Q&{Name}"}}],
                },
            ],
            "Other": {"Ref": "Name"},
        },
    }
    out = expand_foreach(doc)["Resources"]
    assert out["Qab"] == {"Properties": {"N": "a-b", "S": {"Fn::Sub": "a-b-${AWS::StackName}"}}}
    assert out["Qc1"] == {"Ref": "Qc"} and set(out) == {"Qab", "Qc", "Qab1", "Qab2", "Qc1", "Qc2", "Other"}
    assert out["Other"] == {"Ref": "Name"}  # outside the loop the identifier means nothing


def test_foreach_collections_may_be_a_list_parameter() -> None:
    doc = {
        "Transform": LE,
        "Parameters": {"Names": {"Type": "CommaDelimitedList", "Default": "x, y"}},
        "Resources": {"Fn::ForEach::L": ["N", {"Ref": "Names"}, {"R${N}": {"Type": "T"}}]},
    }
    assert set(expand_foreach(doc)["Resources"]) == {"Rx", "Ry"}
    assert set(expand_foreach(doc, {"Names": ["z"]})["Resources"]) == {"Rz"}


@pytest.mark.parametrize(
    ("resources_", "transform", "message"),
    [
        ({"Fn::ForEach::L": ["N", ["a"], {"R${N}": {}}]}, "AWS::Serverless-2016-10-31", "LanguageExtensions"),
        ({"Fn::ForEach::L": ["N", ["a"], {"R": {}}]}, LE, "does not contain"),
        ({"Fn::ForEach::L": ["N", ["a", "a"], {"R${N}": {}}]}, LE, "output twice"),
        ({"Ra": {}, "Fn::ForEach::L": ["N", ["a"], {"R${N}": {}}]}, LE, "defined twice"),
        ({"Fn::ForEach::L": ["N", "a", {"R${N}": {}}]}, LE, "collection"),
    ],
)
def test_foreach_mistakes_are_refused(resources_: dict[str, Any], transform: Any, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        expand_foreach({"Transform": transform, "Resources": resources_})


def test_schedule_expressions() -> None:
    from datetime import UTC, datetime

    assert rate_seconds("rate(5 minutes)") == 300 and rate_seconds("rate(1 hour)") == 3600
    assert rate_seconds("cron(0 * * * ? *)") is None
    at = datetime(2026, 1, 5, 10, 7, tzinfo=UTC)  # a Monday
    assert Cron("cron(0/15 * * * ? *)").next_after(at) == datetime(2026, 1, 5, 10, 15, tzinfo=UTC)
    assert Cron("cron(0 8 ? * MON-FRI *)").next_after(at) == datetime(2026, 1, 6, 8, 0, tzinfo=UTC)


# --------------------------------------------------------------------------- alerts, dashboard, daily report

ALARM = "AWS::CloudWatch::Alarm"
FLOW_ALARMS = ("DLQ", "OpenFailures", "NoticeAge", "PollFailed", "BreakerOpen", "Auth", "Errors", "Throttles")
OTHER_FUNCTIONS = ("Webhooks", "Operator", "Report")


def _emitted() -> set[tuple[str, frozenset[str]]]:
    """(metric, dimension names) of every EMF dimension set the code writes, as written in Lambda:
    the calls of the worker, the gate observer, the poll and the ingress (erpsync.runtime.metrics)."""
    import io
    import os
    from contextlib import redirect_stdout
    from unittest import mock

    from erpsync.runtime import metrics

    out = io.StringIO()
    with mock.patch.dict(os.environ, {"AWS_LAMBDA_FUNCTION_NAME": "t", "POWERTOOLS_METRICS_DISABLED": "false"}):
        metrics.attempt("orders", "magento", "synced", 5, "", "2026-01-01T00:00:00+00:00")
        for outcome, kind in (("failed", "unknown_item"), ("retrying", "auth"), ("skipped", ""), ("filtered", "")):
            metrics.attempt("orders", "magento", outcome, 5, kind, "2026-01-01T00:00:00+00:00")
        metrics.gate_observer("orders", "acumatica")(None, 15.0)
        metrics.gate_observer("orders", "acumatica")(429, 0.0)
        metrics.breaker_open_for("orders", "acumatica", 120.0)
        metrics.add("PollFailed", dimensions={"flow": "orders"})  # as lambda_app.flow_handler
        metrics.open_failures("orders", 2)
        metrics.add(
            "Queued", 1, dimensions={"flow": "orders", "connection": "magento", "via": "poll"}, rollups=metrics.BY_FLOW
        )
        metrics.add("SweepFound", dimensions={"flow": "orders", "connection": "magento"}, rollups=metrics.BY_FLOW)
        metrics.add("WebhooksRefused", dimensions={"connection": "magento"})
        with redirect_stdout(out):
            metrics.flush()
    found: set[tuple[str, frozenset[str]]] = set()
    for line in out.getvalue().splitlines():
        [directive] = json.loads(line)["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == metrics.NAMESPACE
        for dims in directive["Dimensions"]:
            found |= {(m["Name"], frozenset(dims)) for m in directive["Metrics"]}
    return found


def test_every_alarm_tells_the_alerts_topic(template: dict[str, Any]) -> None:
    """Every alarm, those the Fn::ForEach loops stamp out per flow included (expanded as the local
    stack expands them), has an action on the alerts topic, and its return to OK too."""
    alarms = resources(template, ALARM)
    expected = {f"{lid}{kind}Alarm" for lid in LIDS for kind in FLOW_ALARMS}
    expected |= {f"{fn}{kind}Alarm" for fn in OTHER_FUNCTIONS for kind in ("Errors", "Throttles")}
    expected.add("ApiServerErrorsAlarm")
    assert expected <= set(alarms)
    for name, alarm in alarms.items():
        props = alarm["Properties"]
        assert props["AlarmActions"] == [{"Ref": "AlertsTopic"}], name
        assert props["OKActions"] == [{"Ref": "AlertsTopic"}], name
        assert props["TreatMissingData"] == "notBreaching", name  # no data means nothing went wrong
        assert "docs/OPERATIONS.md" in json.dumps(props["AlarmDescription"]), name
    st = load_template(ROOT / "template.yaml", aws_endpoint="http://127.0.0.1:1")
    topic = st.topics["AlertsTopic"].arn
    for name in alarms:
        props = st.resolve(st.raw["Resources"][name]["Properties"])
        assert props["AlarmActions"] == [topic] and props["OKActions"] == [topic], name
    names = [st.resolve(st.raw["Resources"][a]["Properties"]["AlarmName"]) for a in alarms]
    assert len(set(names)) == len(names) and all(n.startswith("erpsync-") for n in names)


def test_the_alerts_topic_and_the_email_parameter(template: dict[str, Any]) -> None:
    param = template["Parameters"]["AlertEmail"]
    assert param["Default"] == ""
    assert all(re.fullmatch(param["AllowedPattern"], ok) for ok in ("", "ops@example.com"))
    assert not re.fullmatch(param["AllowedPattern"], "ops at example")
    assert template["Resources"]["AlertsTopic"]["Type"] == "AWS::SNS::Topic"
    sub = template["Resources"]["AlertsEmailSubscription"]
    assert sub["Type"] == "AWS::SNS::Subscription" and sub["Condition"] == "HasAlertEmail"
    assert sub["Properties"] == {
        "TopicArn": {"Ref": "AlertsTopic"},
        "Protocol": "email",
        "Endpoint": {"Ref": "AlertEmail"},
    }
    by_default = load_template(ROOT / "template.yaml", aws_endpoint="http://127.0.0.1:1")
    assert by_default.resolve({"Fn::If": ["HasAlertEmail", "subscribed", "none"]}) == "none"
    given = load_template(ROOT / "template.yaml", {"AlertEmail": "ops@example.com"}, aws_endpoint="http://127.0.0.1:1")
    assert given.resolve({"Fn::If": ["HasAlertEmail", "subscribed", "none"]}) == "subscribed"
    assert given.topics["AlertsTopic"].arn == "arn:aws:sns:us-east-1:123456789012:erpsync-alerts"
    assert template["Outputs"]["AlertsTopicArn"]["Value"] == {"Ref": "AlertsTopic"}


def test_each_alarm_on_an_erpsync_metric_names_one_the_code_writes(template: dict[str, Any]) -> None:
    """Metric name and dimension set exactly as the EMF lines carry them, or the alarm never sees data."""
    from erpsync.runtime import metrics

    emitted = _emitted()
    st = load_template(ROOT / "template.yaml", aws_endpoint="http://127.0.0.1:1")
    flows = {f.name for f in FLOWS}
    checked = 0
    for name in resources(template, ALARM):
        props = st.resolve(st.raw["Resources"][name]["Properties"])
        stats = [m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m]
        for metric in stats or [props]:
            if metric["Namespace"] != metrics.NAMESPACE:
                continue
            dims = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
            assert (metric["MetricName"], frozenset(dims)) in emitted, (name, metric["MetricName"], sorted(dims))
            assert dims["service"] == metrics.SERVICE and dims["flow"] in flows, name
            checked += 1
    assert checked == len(LIDS) * 5  # notice age, failed polls, breaker open, auth, open failures: per flow


def test_the_alarms_say_what_the_issue_asks(template: dict[str, Any]) -> None:
    st = load_template(ROOT / "template.yaml", aws_endpoint="http://127.0.0.1:1")

    def props(lid: str) -> dict[str, Any]:
        resolved: dict[str, Any] = st.resolve(st.raw["Resources"][lid]["Properties"])
        return resolved

    for f in FLOWS:
        lid = f.logical_id
        dlq = props(f"{lid}DLQAlarm")
        assert dlq["Dimensions"] == [{"Name": "QueueName", "Value": st.queues[f"{lid}DLQ"].name}]
        desk = props(f"{lid}OpenFailuresAlarm")  # written by each poll (FlowRuntime.poll)
        assert (desk["Namespace"], desk["MetricName"], desk["Threshold"]) == ("erpsync", "OpenFailures", 0)
        assert {d["Name"]: d["Value"] for d in desk["Dimensions"]} == {"service": "erpsync", "flow": f.name}
        age = props(f"{lid}NoticeAgeAlarm")  # minutes, from the NoticeAge maximum in seconds
        assert [m.get("Expression") for m in age["Metrics"]] == [None, "age / 60"]
        assert age["Metrics"][0]["MetricStat"]["Stat"] == "Maximum" and age["Metrics"][0]["MetricStat"]["Period"] == 300
        assert age["Threshold"] == str(template["Parameters"]["NoticeAgeAlarmMinutes"]["Default"]) == "60"
        breaker = props(f"{lid}BreakerOpenAlarm")
        assert breaker["Metrics"][0]["MetricStat"]["Metric"]["MetricName"] == "BreakerOpenFor"
        assert breaker["Threshold"] == str(template["Parameters"]["BreakerOpenAlarmMinutes"]["Default"])
        auth = props(f"{lid}AuthAlarm")
        assert {d["Name"]: d["Value"] for d in auth["Dimensions"]}["error_type"] == "auth"
        assert (auth["MetricName"], auth["Statistic"], auth["Threshold"]) == ("Retrying", "Sum", 0)
        assert props(f"{lid}PollFailedAlarm")["MetricName"] == "PollFailed"
        for kind, metric in (("Errors", "Errors"), ("Throttles", "Throttles")):
            fn = props(f"{lid}{kind}Alarm")
            assert (fn["Namespace"], fn["MetricName"]) == ("AWS/Lambda", metric)
            assert fn["Dimensions"] == [{"Name": "FunctionName", "Value": f"erpsync-{lid}Function"}]
    for fn_lid in OTHER_FUNCTIONS:
        assert props(f"{fn_lid}ErrorsAlarm")["Dimensions"][0]["Value"] == f"erpsync-{fn_lid}Function"
    api = props("ApiServerErrorsAlarm")
    assert (api["Namespace"], api["MetricName"]) == ("AWS/ApiGateway", "5XXError")
    api_name = st.resolve(template["Resources"]["WebhookApi"]["Properties"]["Name"])
    assert {d["Name"]: d["Value"] for d in api["Dimensions"]} == {"ApiName": api_name, "Stage": "dev"}


def test_the_dashboard_charts_every_figure_from_metrics_that_exist(template: dict[str, Any]) -> None:
    dashboards = resources(template, "AWS::CloudWatch::Dashboard")
    assert list(dashboards) == ["Dashboard"]
    st = load_template(ROOT / "template.yaml", aws_endpoint="http://127.0.0.1:1")
    body = json.loads(st.resolve(dashboards["Dashboard"]["Properties"]["DashboardBody"]))
    widgets = body["widgets"]
    text = json.dumps(widgets)
    assert "${!" not in text and "${PROP('Dim.flow')}" in text  # dynamic labels survive Fn::Sub
    for metric in ("Synced", "Failed", "Retrying", "NoticeAge", "Requests", "BreakerOpened", "BreakerOpenFor"):
        assert f'MetricName=\\"{metric}\\"' in text, metric
    assert 'ApproximateNumberOfMessagesVisible\\" QueueName=erpsync NOT QueueName=dlq' in text  # flow queues
    assert 'ApproximateNumberOfMessagesVisible\\" QueueName=erpsync QueueName=dlq' in text  # failed queues
    emitted = _emitted()
    searches = re.findall(r"SEARCH\('\{erpsync,([a-z_,]+)\} MetricName=\\\"(\w+)\\\"", text)
    assert len(searches) >= 10
    for dims, metric in searches:
        assert (metric, frozenset(dims.split(","))) in emitted, (metric, dims)
    for w in widgets:  # a 24-column grid, nothing overlapping
        assert w["x"] + w["width"] <= 24
        if w["type"] == "metric":
            assert w["properties"]["region"] == "us-east-1" and w["properties"]["metrics"]
    cells = [(w["y"] + dy, w["x"] + dx) for w in widgets for dy in range(w["height"]) for dx in range(w["width"])]
    assert len(cells) == len(set(cells))
    assert "dashboards:name=${Dashboard}" in template["Outputs"]["DashboardUrl"]["Value"]["Fn::Sub"]


def test_the_daily_report_function_its_schedule_and_env(template: dict[str, Any]) -> None:
    fn = template["Resources"]["ReportFunction"]["Properties"]
    assert (fn["CodeUri"], fn["Handler"]) == ("functions/report", "app.handler")
    assert (ROOT / "functions" / "report" / "app.py").is_file()
    assert fn["Environment"]["Variables"]["ALERTS_TOPIC_ARN"] == {"Ref": "AlertsTopic"}
    [event] = fn["Events"].values()
    assert event["Type"] == "Schedule" and event["Properties"]["Schedule"] == {"Ref": "DailyReportCron"}
    assert template["Parameters"]["DailyReportCron"]["Default"] == "cron(0 7 * * ? *)"
    statements = {s["Sid"]: s for name, s in _statements(template) if name == "ReportFunction"}
    assert {sid: _actions(s) for sid, s in statements.items()} == {
        "PublishReport": ["sns:Publish"],
        "ReadSyncLog": ["dynamodb:Query"],
        "PeekFailedQueues": ["sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:ChangeMessageVisibility"],
        # the books of the day (reconcile): settings, bindings and the rate gates' seats, both systems' secrets
        "ReconcileState": [
            "dynamodb:GetItem",
            "dynamodb:BatchGetItem",
            "dynamodb:Query",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
        ],
        "ReadSystemSecrets": ["secretsmanager:GetSecretValue"],
    }
    assert statements["ReconcileState"]["Resource"] == {"Fn::GetAtt": ["BindingsTable", "Arn"]}
    assert statements["PublishReport"]["Resource"] == {"Ref": "AlertsTopic"}
    assert statements["ReadSyncLog"]["Resource"] == {"Fn::Sub": "${SyncLogTable.Arn}/index/by-outcome"}
    assert statements["PeekFailedQueues"]["Resource"]["Fn::Sub"].endswith(":${AWS::StackName}-*-dlq")


def test_the_local_stack_reads_the_report_and_keeps_its_daily_time() -> None:
    from datetime import UTC, datetime

    from sandbox.local.lambda_runtime import LocalFunction
    from sandbox.local.scheduler import Schedule

    st = load_template(ROOT / "template.yaml", aws_endpoint="http://127.0.0.1:1")
    spec = st.functions["ReportFunction"]
    assert spec.environment["ALERTS_TOPIC_ARN"] == st.topics["AlertsTopic"].arn
    assert spec.environment["SYNC_LOG_TABLE"] == st.tables["SyncLogTable"].name
    assert spec.handler_file == ROOT / "functions" / "report" / "app.py"
    [daily] = spec.schedule_events
    assert daily.expression == "cron(0 7 * * ? *)" and daily.input == {"erpsync": "report", "hours": 24}
    fn = LocalFunction(spec)
    # every other schedule fires every few seconds locally; a daily one keeps its own time
    at = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
    report = Schedule(fn, daily, interval_override_s=5.0, speedup=60.0)
    assert report.daily and report.next_delay(at) == 3600.0
    poll = st.functions["OrdersFunction"].schedule_events[0]
    assert Schedule(LocalFunction(st.functions["OrdersFunction"]), poll, interval_override_s=5.0).next_delay(at) == 5.0
