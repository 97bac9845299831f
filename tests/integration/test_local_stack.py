"""The local stack runs template.yaml: API Gateway events, SQS event sources (partial batch
failures, redrive to the DLQ), schedules, and a clean stop.

The functions are pointed at a throwaway handler written into a temp dir (``code_overrides``),
and the template is the real one with two changes for speed: every queue's VisibilityTimeout is
1 s and MaxReceiveCount is 2. No sims are started: these tests are about the stack itself.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from erpsync.flows.catalog import FLOWS
from sandbox.local.stack import LocalStack
from sandbox.local.template import parse_yaml

ROOT = Path(__file__).resolve().parents[2]

HANDLER = '''
"""A test handler: records every event; a record with {"fail": true} is reported, {"raise": true} raises."""
from __future__ import annotations

import json
import os
import threading

EVENTS: list[dict] = []
ENV: dict = {}
FLOW = os.environ.get("FLOW")  # differs between functions: read at import, as functions/flow/app.py does
_lock = threading.Lock()


def handler(event, context):
    with _lock:
        EVENTS.append(event)
        ENV.update({k: os.environ.get(k) for k in ("BINDINGS_TABLE", "QUEUE_URL_PREFIX", "MAX_RECEIVE_COUNT")})
    assert context.get_remaining_time_in_millis() > 0 and context.function_name and context.aws_request_id
    if "httpMethod" in event:
        return {
            "statusCode": 201,
            "headers": {"Content-Type": "application/json", "X-Test": "yes"},
            "body": json.dumps({"event": event}),
        }
    if "Records" in event:
        bodies = [json.loads(r["body"]) for r in event["Records"]]
        if any(b.get("raise") for b in bodies):
            raise RuntimeError("boom")
        return {"batchItemFailures": [
            {"itemIdentifier": r["messageId"]} for r, b in zip(event["Records"], bodies) if b.get("fail")
        ]}
    return {"ok": True}
'''

FUNCTIONS = ("WebhooksFunction", "OperatorFunction", "ReportFunction", *(f"{f.logical_id}Function" for f in FLOWS))


def fast_template(tmp: Path) -> Path:
    """template.yaml with 1 s visibility timeouts (failures come back quickly)."""
    doc = parse_yaml(ROOT / "template.yaml")
    for res in doc["Resources"].values():
        if res["Type"] == "AWS::SQS::Queue" and "VisibilityTimeout" in res["Properties"]:
            res["Properties"]["VisibilityTimeout"] = 1
    # Relative CodeUri/ContentUri stay valid: the copy sits beside the real one's paths via code_overrides,
    # and layers resolve against the copy's folder, so point them back at the repository.
    for res in doc["Resources"].values():
        if res["Type"] == "AWS::Serverless::LayerVersion":
            res["Properties"]["ContentUri"] = str(ROOT / res["Properties"]["ContentUri"])
    path = tmp / "template.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def write_handlers(tmp: Path) -> dict[str, str | Path]:
    overrides: dict[str, str | Path] = {}
    for lid in FUNCTIONS:
        code = tmp / "fn" / lid
        code.mkdir(parents=True)
        (code / "app.py").write_text(HANDLER)
        overrides[lid] = code
    return overrides


def events(stack: LocalStack, name: str) -> list[dict[str, Any]]:
    module = stack.function(name).module
    return list(module.EVENTS) if module is not None else []  # type: ignore[attr-defined]


def bodies(stack: LocalStack, name: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(json.loads(r["body"]), r) for e in events(stack, name) for r in e.get("Records", [])]


def _listening(port: int) -> bool:
    """Something accepts connections on the loopback port (a socket that connected to itself,
    TCP simultaneous open on a closed ephemeral port, is not a listener)."""
    with socket.socket() as s:
        s.settimeout(0.5)
        if s.connect_ex(("127.0.0.1", port)) != 0:
            return False
        try:
            return bool(s.getsockname() != s.getpeername())
        except OSError:
            return False


def test_partial_batches_by_hand_and_a_clean_stop(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    env_before = os.environ.get("AWS_ENDPOINT_URL")
    stack = LocalStack(
        fast_template(tmp_path),
        stack_name="erpsync-second",  # moto's state is per process: the module's stack still runs
        code_overrides=write_handlers(tmp_path),
        sims=(),
        run_pollers=False,
        run_schedules=False,
        state_file=None,
    )
    with stack:
        assert os.environ["AWS_ENDPOINT_URL"] == stack.aws_endpoint
        sqs = stack.client("sqs")
        url = stack.queues["OrdersQueue"]
        for n, fail in (("a", False), ("b", True), ("c", False)):
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"n": n, "fail": fail}))
        result = stack.poller("orders").poll_once(wait_time_s=0)
        assert result.received == 3 and len(result.failed) == 1 and len(result.succeeded) == 2
        time.sleep(1.1)  # the failed one becomes visible again; the others were deleted
        again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        assert [json.loads(m["Body"])["n"] for m in again] == ["b"]
        assert stack.schedule("orders").fire() == {"ok": True}
        ports = [int(stack.aws_endpoint.rsplit(":", 1)[1]), int(stack.api_url.split(":")[2].split("/")[0])]
        assert all(_listening(p) for p in ports)
    # stop() has returned: no waiting here. It joined the serving threads and saw the ports refuse.
    assert not any(_listening(p) for p in ports)
    servers = [t.name for t in set(threading.enumerate()) - before if t.name.startswith(("uvicorn-", "moto"))]
    assert not servers
    deadline = time.monotonic() + 5
    while set(threading.enumerate()) - before and time.monotonic() < deadline:  # handler threads wind down
        time.sleep(0.05)
    assert not [t.name for t in set(threading.enumerate()) - before]
    assert os.environ.get("AWS_ENDPOINT_URL") == env_before


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    tmp = tmp_path_factory.mktemp("localstack")
    with LocalStack(
        fast_template(tmp),
        parameters={"MaxReceiveCount": "2"},
        code_overrides=write_handlers(tmp),
        sims=(),
        schedule_seconds=0.3,
        state_file=tmp / "local.json",
    ) as s:
        yield s


def test_state_file_describes_the_stack(stack: LocalStack) -> None:
    assert stack.state_file is not None
    info = json.loads(stack.state_file.read_text())
    assert info["aws_endpoint"] == stack.aws_endpoint and info["region"] == "us-east-1"
    assert info["api_url"].endswith("/dev")
    assert set(info["tables"]) == {"BindingsTable", "SyncLogTable"}
    assert set(info["queues"]) == {f"{f.logical_id}Queue" for f in FLOWS}
    assert set(info["dlqs"]) == {f"{f.logical_id}DLQ" for f in FLOWS}
    assert set(info["functions"]) == set(FUNCTIONS)
    assert info["topics"] == {"AlertsTopic": "arn:aws:sns:us-east-1:123456789012:erpsync-alerts"}
    assert stack.client("sns").get_topic_attributes(TopicArn=info["topics"]["AlertsTopic"])["Attributes"]
    assert info["env"]["BINDINGS_TABLE"] == info["tables"]["BindingsTable"]
    assert set(info["webhook_secrets"]) == {"magento", "acumatica"}
    sm = stack.client("secretsmanager")
    assert json.loads(sm.get_secret_value(SecretId="erpsync/webhooks")["SecretString"]) == info["webhook_secrets"]


def test_tables_and_queues_come_from_the_template(stack: LocalStack) -> None:
    ddb = stack.client("dynamodb")
    log = ddb.describe_table(TableName=stack.tables["SyncLogTable"])["Table"]
    assert [g["IndexName"] for g in log["GlobalSecondaryIndexes"]] == ["by-outcome"]
    ttl = ddb.describe_time_to_live(TableName=stack.tables["SyncLogTable"])["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "expires_at"
    sqs = stack.client("sqs")
    attrs = sqs.get_queue_attributes(QueueUrl=stack.queues["OrdersQueue"], AttributeNames=["All"])["Attributes"]
    redrive = json.loads(attrs["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == stack.queue_arns["OrdersDLQ"] and int(redrive["maxReceiveCount"]) == 2
    assert attrs["MessageRetentionPeriod"] == "1209600"


def test_http_post_reaches_the_handler_as_an_api_gateway_event(stack: LocalStack) -> None:
    res = httpx.post(
        f"{stack.api_url}/webhooks/magento?a=1&a=2",
        content=b'{"hello": "world"}',
        headers={"Content-Type": "application/json", "X-Magento-Event": "order_save"},
    )
    assert res.status_code == 201
    assert res.headers["x-test"] == "yes" and res.headers["content-type"] == "application/json"
    event = res.json()["event"]
    assert event["httpMethod"] == "POST"
    assert event["resource"] == "/webhooks/{source}" and event["path"] == "/webhooks/magento"
    assert event["pathParameters"] == {"source": "magento"}
    assert event["queryStringParameters"] == {"a": "2"}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"]}
    assert event["headers"]["x-magento-event"] == "order_save"
    assert event["multiValueHeaders"]["x-magento-event"] == ["order_save"]
    assert event["body"] == '{"hello": "world"}' and event["isBase64Encoded"] is False
    ctx = event["requestContext"]
    assert ctx["stage"] == "dev" and ctx["identity"]["sourceIp"] == "127.0.0.1" and ctx["requestId"]
    assert abs(ctx["requestTimeEpoch"] / 1000 - time.time()) < 60
    assert res.headers["x-amzn-requestid"] == ctx["requestId"]


def test_binary_bodies_are_base64(stack: LocalStack) -> None:
    res = httpx.post(f"{stack.api_url}/webhooks/acumatica", content=b"\xff\xfe\x00")
    event = res.json()["event"]
    assert event["isBase64Encoded"] is True and event["body"] == "//4A"


def test_api_gateway_answers_for_what_it_does_not_route(stack: LocalStack) -> None:
    missing = {"message": "Missing Authentication Token"}
    for method, path in (("POST", "/nowhere"), ("GET", "/webhooks/magento"), ("POST", "/webhooks/a/b")):
        res = httpx.request(method, stack.api_url + path)
        assert (res.status_code, res.json()) == (403, missing), (method, path)
    too_big = httpx.post(f"{stack.api_url}/webhooks/magento", content=b"x" * (10 * 1024 * 1024 + 1))
    assert too_big.status_code == 413


def test_an_sqs_message_reaches_its_handler_and_is_deleted(stack: LocalStack) -> None:
    sqs = stack.client("sqs")
    sqs.send_message(QueueUrl=stack.queues["OrdersQueue"], MessageBody=json.dumps({"n": "ok-1"}))
    found = stack.wait_for(lambda: [r for b, r in bodies(stack, "orders") if b.get("n") == "ok-1"], timeout=10)
    record = found[0]
    assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"] == stack.queue_arns["OrdersQueue"]
    assert record["awsRegion"] == "us-east-1" and record["md5OfBody"] and record["receiptHandle"]
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert stack.poller("orders").wait_idle(timeout=5)
    module = stack.function("orders").module
    assert module is not None
    assert module.ENV["BINDINGS_TABLE"] == stack.tables["BindingsTable"]
    assert module.ENV["QUEUE_URL_PREFIX"] + "orders" == stack.queues["OrdersQueue"] and module.FLOW == "orders"
    assert module.ENV["MAX_RECEIVE_COUNT"] == "2"


def _dlq_bodies(stack: LocalStack, dlq: str) -> list[dict[str, Any]]:
    res = stack.client("sqs").receive_message(QueueUrl=stack.dlqs[dlq], MaxNumberOfMessages=10, WaitTimeSeconds=0)
    return [json.loads(m["Body"]) for m in res.get("Messages", [])]


def test_a_reported_failure_stays_and_lands_in_the_dlq_after_max_receive_count(stack: LocalStack) -> None:
    sqs = stack.client("sqs")
    sqs.send_message(QueueUrl=stack.queues["ShipmentsQueue"], MessageBody=json.dumps({"n": "bad-1", "fail": True}))
    sqs.send_message(QueueUrl=stack.queues["ShipmentsQueue"], MessageBody=json.dumps({"n": "ok-2"}))
    got = stack.wait_for(lambda: _dlq_bodies(stack, "ShipmentsDLQ"), timeout=12)
    assert got == [{"n": "bad-1", "fail": True}]
    attempts = [r["attributes"]["ApproximateReceiveCount"] for b, r in bodies(stack, "shipments") if b["n"] == "bad-1"]
    assert attempts == ["1", "2"]  # received MaxReceiveCount times, then moved
    assert [b["n"] for b, _ in bodies(stack, "shipments")].count("ok-2") == 1  # deleted after one success


def test_a_handler_that_raises_fails_the_whole_batch(stack: LocalStack) -> None:
    sqs = stack.client("sqs")
    sqs.send_message(QueueUrl=stack.queues["InvoicesQueue"], MessageBody=json.dumps({"n": "boom", "raise": True}))
    got = stack.wait_for(lambda: _dlq_bodies(stack, "InvoicesDLQ"), timeout=12)
    assert got == [{"n": "boom", "raise": True}]


def test_schedules_fire_their_input(stack: LocalStack) -> None:
    for flow in (f.name for f in FLOWS):
        stack.wait_for(lambda flow=flow: {"erpsync": "poll"} in events(stack, flow), timeout=5)
    assert not any(e == {"erpsync": "poll"} for e in events(stack, "webhooks"))
    assert not events(stack, "report")  # a daily schedule keeps its own time, however fast the others fire
