"""Logs: personal data masked (in logs, the sync log and failure reasons), JSON lines in Lambda
whatever handler the runtime put on the root logger first, a correlation id from the webhook to the
write, EMF metrics, and saved queries that name only fields the code writes."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from erpsync.masking import mask_value
from erpsync.runtime.logs import MaskingFilter, mask


@pytest.mark.parametrize(
    ("raw", "hidden", "kept"),
    [
        ("customer jdoe@example.com not found", "jdoe@", "j***@example.com"),
        ('{"telephone": "512-555-1111", "city": "Purchase"}', "512-555", '"city": "Purchase"'),
        ('{"street": ["123 Oak Ave"], "postcode": "10577", "city": "Purchase"}', "Oak Ave", '"city": "Purchase"'),
        ('{"street": ["123 Oak Ave"], "postcode": "10577"}', "10577", '"postcode": "***"'),
        ('{"firstname": "Jane", "lastname": "Doe", "sku": "24-MB01"}', "Doe", '"sku": "24-MB01"'),
        ("call +1 (555) 229-3326 now", "229-3326", "***26"),
    ],
)
def test_personal_data_is_masked(raw: str, hidden: str, kept: str) -> None:
    out = mask(raw)
    assert hidden not in out
    assert kept in out


def test_order_numbers_and_amounts_are_not_mistaken_for_phones() -> None:
    text = "order 000000003 total 165.00 at 2017-08-21 22:22:20"
    assert mask(text) == text


def test_filter_masks_formatted_records(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("erpsync.test.masking")
    caplog.handler.addFilter(MaskingFilter())
    with caplog.at_level(logging.INFO, logger="erpsync.test.masking"):
        logger.info("customer %s", "jane.doe@example.com")
    assert "jane.doe" not in caplog.text and "j***@example.com" in caplog.text


def test_json_lines_carry_extras_and_mask_them() -> None:
    from erpsync.runtime.logs import JsonFormatter

    record = logging.LogRecord("erpsync.worker", logging.INFO, "x", 1, "order %s failed for %s", ("42", "a@b.co"), None)
    record.flow, record.outcome = "orders", "failed"
    record.note = "ask jane@example.com"
    doc = json.loads(JsonFormatter().format(record))
    assert doc["level"] == "INFO" and doc["flow"] == "orders" and doc["outcome"] == "failed"
    assert "a***@b.co" in doc["message"] and doc["note"] == "ask j***@example.com"


# -- personal data in real payload shapes (tests/fixtures) -----------------------------------------

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PERSONAL_KEYS = {"firstname", "lastname", "street", "postcode", "telephone", "postalcode", "phone1", "addressline1"}
PERSONAL_KEYS |= {"customer_firstname", "customer_lastname", "firstname", "attention", "customername"}


def personal_values(doc: Any) -> set[str]:
    """Every value of a personal field in ``doc`` (Acumatica's ``{"value": ...}`` unwrapped)."""
    found: set[str] = set()
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key.lower() in PERSONAL_KEYS:
                value = value.get("value") if isinstance(value, dict) else value
                for v in value if isinstance(value, list) else [value]:
                    if isinstance(v, str | int) and str(v).strip():
                        found.add(str(v))
            else:
                found |= personal_values(value)
    elif isinstance(doc, list):
        for item in doc:
            found |= personal_values(item)
    return found


def fixture(path: str) -> Any:
    return json.loads((FIXTURES / path).read_text(encoding="utf-8-sig"))


@pytest.mark.parametrize(
    "path",
    [
        "magento/order_get_V1_orders_3.json",
        "magento/customer_create_response.json",
        "acumatica/request_customer_create.json",
        "acumatica/request_salesinvoice_direct.json",
        "acumatica/postman_entity_puts.json",
    ],
)
def test_names_streets_postcodes_and_phones_of_real_payloads_are_masked(path: str) -> None:
    doc = fixture(path)
    secrets = personal_values(doc)
    assert secrets, f"{path} has no personal field to hide"
    as_json = json.dumps(doc)
    shapes = {
        "json": as_json,
        "python repr": repr(doc),
        "excerpt cut short": as_json[: as_json.find(next(iter(sorted(secrets)))) + 3],
        "json inside a json string": json.dumps({"error": as_json}),
        "an error message": f"acumatica 422 on PUT /SalesOrder: {as_json[:300]}",
    }
    for shape, text in shapes.items():
        out = mask(text)
        leaked = sorted(s for s in secrets if s in out and s not in ("US",))
        assert not leaked, f"{shape}: {leaked}"
    # what is not personal stays readable
    if path.endswith("orders_3.json"):
        out = mask(as_json)
        assert '"increment_id": "000000003"' in out and '"grand_total": 165' in out
        assert '"city": "Purchase"' in out and '"sku": "WS12-M-Orange"' in out
        assert "j***@example.com" in out and "jdoe@" not in out  # an email keeps its first letter and domain


def test_models_and_validation_errors_are_masked() -> None:
    from erpsync.model import Address
    from erpsync.model.base import ValidationError

    try:
        Address.model_validate({"firstname": "Veronica", "lastname": ["Costello"], "postcode": "49628-7978"})
    except ValidationError as exc:
        assert "Costello" not in mask(str(exc))
    text = "Address(firstname='Veronica', lastname='Costello', street=['6146 Honey Bluff Parkway'], city='Calder')"
    out = mask(text)
    assert "Veronica" not in out and "Costello" not in out and "Honey" not in out and "Calder" in out
    assert mask_value({"lastname": "Costello", "note": "call (555) 229-3326", "n": 3}) == {
        "lastname": "***",
        "note": "call ***26",
        "n": 3,
    }


def test_the_sync_log_the_failed_queue_and_the_outcome_keep_no_personal_data(
    aws: dict[str, Any], synclog_table: str
) -> None:
    from erpsync.errors import ValidationFailed
    from erpsync.runtime.worker import Worker
    from erpsync.state.synclog import SyncLog

    order = fixture("magento/order_get_V1_orders_3.json")
    secrets = personal_values(order["billing_address"])
    reason = f"acumatica refused the customer: {json.dumps(order['billing_address'])}"

    class Refusing:
        name, source, target = "orders", "magento", "acumatica"

        def sync(self, notice: Any) -> Any:
            raise ValidationFailed(reason, system="acumatica")

    queue = str(aws["queues"]["OrdersQueue"])
    worker = Worker(Refusing(), SyncLog(synclog_table), queue, max_attempts=3)
    body = {"source": "magento", "entity": "order", "id": "3", "correlation_id": "cid-3"}
    out = worker.handle_record({"messageId": "m", "receiptHandle": "r", "body": json.dumps(body), "attributes": {}})
    assert out.outcome == "failed"
    [row] = SyncLog(synclog_table).history("orders", "3")
    sqs = boto3.client("sqs")
    [parked] = sqs.receive_message(
        QueueUrl=str(aws["queues"]["OrdersDLQ"]), MessageAttributeNames=["All"], MaxNumberOfMessages=1
    )["Messages"]
    stored = {
        "sync log": row["message"],
        "failed queue reason": parked["MessageAttributes"]["reason"]["StringValue"],
        "outcome": out.message,
    }
    for where, text in stored.items():
        assert "acumatica refused the customer" in text, where
        assert not [s for s in secrets if s in text and s != "US"], where
    assert json.loads(parked["Body"])["correlation_id"] == "cid-3"  # parked with its correlation id


def test_every_line_of_a_records_processing_carries_its_context(aws: dict[str, Any], synclog_table: str) -> None:
    """A line logged by any module while the worker handles a record (here a flow's own logger, in a
    worker thread of a parallel batch) carries the record's flow, id and correlation id."""
    from erpsync.flows.base import SyncResult
    from erpsync.runtime import logs
    from erpsync.runtime.worker import Worker
    from erpsync.state.synclog import SyncLog

    class Chatty:
        name, source, target = "orders", "magento", "acumatica"

        def sync(self, notice: Any) -> SyncResult:
            logging.getLogger("erpsync.flows.orders").info("mapping order %s for jane.doe@example.com", notice.id)
            return SyncResult("synced", f"SO{notice.id}")

    out = io.StringIO()
    worker = Worker(Chatty(), SyncLog(synclog_table), str(aws["queues"]["OrdersQueue"]), max_attempts=3)
    worker.parallel = 2
    bodies = [{"source": "magento", "entity": "order", "id": i, "correlation_id": f"cid-{i}"} for i in ("1", "2")]
    records = [{"messageId": f"m{i}", "receiptHandle": "r", "body": json.dumps(b)} for i, b in enumerate(bodies)]
    logs.reset()
    try:
        with contextlib.redirect_stdout(out):
            logs.install(json_lines=True)
            assert worker.handle_batch({"Records": records}) == {"batchItemFailures": []}
    finally:
        logs.reset()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    chatter = [d for d in lines if d["logger"] == "erpsync.flows.orders"]
    assert sorted((d["record"], d["correlation_id"], d["flow"]) for d in chatter) == [
        ("1", "cid-1", "orders"),
        ("2", "cid-2", "orders"),
    ]
    assert all("j***@example.com" in d["message"] for d in chatter)


# -- a handler run as Lambda runs it -----------------------------------------------------------------

LAMBDA_FORMAT = "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s"


class LambdaRuntimeHandler(logging.StreamHandler):
    """What the Lambda Python runtime puts on the root logger before it imports the handler module."""

    def __init__(self, stream: io.StringIO) -> None:
        super().__init__(stream)
        self.setFormatter(logging.Formatter(LAMBDA_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        record.aws_request_id = getattr(record, "aws_request_id", "-")
        super().emit(record)


@dataclass
class LambdaRun:
    """What the webhook and orders functions printed (``lambda_run``)."""

    lines: list[dict[str, Any]]
    """Every JSON log line (stdout)."""
    emf: list[dict[str, Any]]
    """Every EMF metrics document (stdout)."""
    runtime_text: str
    """What reached the runtime's own (plain text) root handler."""
    record: str
    correlation_id: str
    customer: dict[str, Any]


def _sqs_event(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "eventSource": "aws:sqs",
            }
            for m in messages
        ]
    }


def _order_saved(entity_id: int, increment_id: str) -> bytes:
    """Magento's order-saved webhook body."""
    order = {"entity_id": entity_id, "increment_id": increment_id}
    return json.dumps({"eventName": "observer.sales_order_save_after", "data": {"order": order}}).encode()


def _webhook_event(body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    return {
        "httpMethod": "POST",
        "path": "/webhooks/magento",
        "resource": "/webhooks/{source}",
        "pathParameters": {"source": "magento"},
        "headers": headers,
        "body": body.decode(),
        "isBase64Encoded": False,
        "requestContext": {"requestId": "apigw-1", "stage": "local"},
    }


def _receive(sqs: Any, url: str) -> list[dict[str, Any]]:
    for _ in range(50):
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]).get("Messages", [])
        if got:
            return list(got)
        time.sleep(0.1)
    raise AssertionError(f"nothing arrived on {url}")


@pytest.fixture(scope="module")
def lambda_run() -> Iterator[LambdaRun]:
    """The local stack with the runtime's root handler installed first, as Lambda does; then a signed
    Magento webhook for a new order, the orders worker during an Acumatica outage (a retry) and after
    it (synced), a forged webhook (refused) and a webhook for an order Magento does not have (failed):
    everything the handlers printed."""
    import aws_lambda_powertools.logging.logger as powertools_logger
    import httpx

    from erpsync.runtime import logs
    from erpsync.systems.magento.webhooks import sign
    from sandbox.local.stack import LOCAL_SETTINGS, LocalStack, default_seed
    from sandbox.story import AcumaticaUser, MagentoAdmin, Story

    runtime_stream, out = io.StringIO(), io.StringIO()
    root = logging.getLogger()
    runtime_handler = LambdaRuntimeHandler(runtime_stream)
    logs.reset()  # a fresh container: nothing of erpsync's logging in place yet
    root.addHandler(runtime_handler)
    powertools_logger.is_cold_start = True
    settings = {**LOCAL_SETTINGS, "retry_delay_cap_s": 0}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_LAMBDA_FUNCTION_NAME", "erpsync-test")
        mp.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
        try:
            with (
                LocalStack(
                    state_file=None, run_pollers=False, run_schedules=False, seed=default_seed(), settings=settings
                ) as stack,
                contextlib.redirect_stdout(out),
            ):
                info = stack.info
                story = Story(magento=MagentoAdmin(**info["magento"]), acumatica=AcumaticaUser(**info["acumatica"]))
                [customer] = story.seed_customers(1)
                [placed] = story.place_orders([customer], 1)
                body = _order_saved(placed.entity_id, placed.increment_id)
                secret = stack.webhook_secrets["magento"]
                headers = {"Content-Type": "application/json", **sign(secret, body)}
                answer = stack.invoke("WebhooksFunction", _webhook_event(body, headers))
                assert answer["statusCode"] == 202, answer
                forged = {"X-Erpsync-Timestamp": str(int(time.time())), "X-Erpsync-Signature": "sha256=00"}
                assert stack.invoke("WebhooksFunction", _webhook_event(body, forged))["statusCode"] == 401

                sqs, queue = stack.client("sqs"), stack.queues["OrdersQueue"]
                acumatica = stack.sim_urls["acumatica"]
                [notice] = _receive(sqs, queue)
                correlation_id = json.loads(notice["Body"])["correlation_id"]
                httpx.post(f"{acumatica}/_sim/faults", json={"outage": True}).raise_for_status()
                assert stack.invoke("OrdersFunction", _sqs_event([notice])) == {"batchItemFailures": []}
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=notice["ReceiptHandle"])
                httpx.delete(f"{acumatica}/_sim/faults").raise_for_status()
                [again] = _receive(sqs, queue)
                assert json.loads(again["Body"])["correlation_id"] == correlation_id  # kept through the re-queue
                assert stack.invoke("OrdersFunction", _sqs_event([again])) == {"batchItemFailures": []}
                assert story.acumatica.orders_for(placed.increment_id), "the order did not reach Acumatica"

                gone = _order_saved(990_001, "000990001")  # an order Magento no longer has: failed
                stack.invoke("WebhooksFunction", _webhook_event(gone, {**headers, **sign(secret, gone)}))
                assert stack.invoke("OrdersFunction", _sqs_event(_receive(sqs, queue))) == {"batchItemFailures": []}
                story.magento.close()
                story.acumatica.close()
                logging.getLogger("somelibrary").warning("a library's own warning")
        finally:
            root.removeHandler(runtime_handler)
            logs.reset()
    docs = [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
    yield LambdaRun(
        lines=[d for d in docs if "_aws" not in d],
        emf=[d for d in docs if "_aws" in d],
        runtime_text=runtime_stream.getvalue(),
        record=str(placed.entity_id),
        correlation_id=correlation_id,
        customer=customer,
    )


def test_a_handler_under_the_runtimes_root_handler_prints_json_lines(lambda_run: LambdaRun) -> None:
    mine = [d for d in lambda_run.lines if d.get("record") == lambda_run.record]
    rung = [d for d in mine if d.get("outcome") == "queued"]
    assert sorted(d["flow"] for d in rung) == ["orders", "payments"]  # a store order's save rings both
    queued = [d for d in rung if d["flow"] == "orders"]
    worked = [d for d in mine if d.get("logger") == "erpsync.worker"]
    assert [d["via"] for d in queued] == ["webhook"]
    assert [d["outcome"] for d in worked] == ["retrying", "synced"]
    for line in queued + worked:
        assert line["flow"] == "orders" and line["connection"] == "magento"
        assert line["correlation_id"] == lambda_run.correlation_id
        assert line["service"] == "erpsync" and line["level"] in ("INFO", "WARNING")
        assert line["function_request_id"] and "cold_start" in line
    assert worked[0]["error_type"] == "outage" and worked[1]["target_id"]
    assert lambda_run.lines[0]["cold_start"] is True and worked[-1]["cold_start"] is False


def test_nothing_reaches_the_runtimes_plain_text_handler_twice(lambda_run: LambdaRun) -> None:
    assert "a library's own warning" in lambda_run.runtime_text  # the runtime's handler still serves others
    assert "queued by the webhook" not in lambda_run.runtime_text
    assert f"orders {lambda_run.record} synced" not in lambda_run.runtime_text
    assert any(d["message"].startswith(f"orders {lambda_run.record} synced") for d in lambda_run.lines)


def test_no_personal_data_in_what_the_handlers_printed(lambda_run: LambdaRun) -> None:
    printed = json.dumps(lambda_run.lines + lambda_run.emf)
    person = lambda_run.customer
    address = person["addresses"][0]
    for value in (person["lastname"], address["street"][0], address["postcode"], address["telephone"]):
        assert value not in printed
    assert person["email"] not in printed


def _metric(emf: list[dict[str, Any]], name: str, **dims: str) -> list[dict[str, Any]]:
    return [d for d in emf if name in d and all(d.get(k) == v for k, v in dims.items())]


def _sum(docs: list[dict[str, Any]], name: str) -> float:
    """The sum of ``name``'s values (EMF carries a metric's values as a number or a list)."""
    values = [d.get(name, 0) for d in docs]
    return float(sum(sum(v) if isinstance(v, list) else v for v in values))


def test_metrics_are_flushed_as_emf_for_a_synced_record_and_a_retry(lambda_run: LambdaRun) -> None:
    emf = lambda_run.emf
    for doc in emf:
        [directive] = doc["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "erpsync"
        assert all(set(dims) <= set(doc) for dims in directive["Dimensions"])
    [synced] = _metric(emf, "Synced", flow="orders", connection="magento")
    assert _sum([synced], "Synced") == 1.0 and "SyncDuration" in synced and "NoticeAge" in synced
    assert ["service", "flow"] in synced["_aws"]["CloudWatchMetrics"][0]["Dimensions"]  # rolled up per flow too
    [retry] = _metric(emf, "Retrying", flow="orders", connection="magento", error_type="outage")
    assert _sum([retry], "Retrying") == 1.0
    # the notice's age counts from its first attempt: the retry's, then older when it synced
    ages = [_sum([d], "NoticeAge") for d in _metric(emf, "NoticeAge", flow="orders", connection="magento")]
    assert ages[1] == _sum([synced], "NoticeAge") and ages[1] > ages[0]
    queued = _metric(emf, "Queued", flow="orders", connection="magento", via="webhook")
    assert _sum(queued, "Queued") == 2.0  # the order, and the one Magento no longer has
    assert _sum(_metric(emf, "Failed", flow="orders", connection="magento"), "Failed") == 1.0
    requests = _metric(emf, "Requests", flow="orders")
    assert {d["connection"] for d in requests} == {"magento", "acumatica"}  # requests per external system
    assert _sum([d for d in requests if d["connection"] == "acumatica"], "Unanswered") >= 1  # the outage's 503
    assert _metric(emf, "WebhooksRefused", connection="magento")


# -- the saved Logs Insights queries name fields the code writes --------------------------------------

QUERY_WORDS = {"and", "or", "not", "like", "in", "as", "by", "asc", "desc", "fields", "filter", "stats", "sort"}
QUERY_WORDS |= {"limit", "display", "parse", "dedup"}


@dataclass
class SavedQuery:
    name: str
    fields: set[str]
    equals: dict[str, str]
    present: set[str]


def parse_query(name: str, text: str) -> SavedQuery:
    """The fields a Logs Insights query names (fields, filter, stats, sort), its ``field = "literal"``
    filters and its ``ispresent(field)`` checks. ``@`` fields are Logs Insights' own."""
    names: set[str] = set()
    aliases: set[str] = set()
    equals: dict[str, str] = {}
    present: set[str] = set()
    for command in text.split("|"):
        if command.strip().split(" ", 1)[0] == "filter":
            equals.update(re.findall(r"([A-Za-z_][\w.]*)\s*=\s*\"([^\"]*)\"", command))
            present.update(re.findall(r"ispresent\(\s*([A-Za-z_][\w.]*)\s*\)", command))
        aliases.update(re.findall(r"\bas\s+([A-Za-z_]\w*)", command))
        bare = re.sub(r"\"[^\"]*\"", " ", command)
        for word, call in re.findall(r"(?<![\w.@])(@?[A-Za-z_][\w.]*)\s*(\(?)", bare):
            if call or word.startswith("@") or word.lower() in QUERY_WORDS:
                continue
            names.add(word)
    return SavedQuery(name, names - aliases, equals, present)


def saved_queries() -> list[SavedQuery]:
    from sandbox.local.template import parse_yaml

    template = parse_yaml(Path(__file__).resolve().parents[2] / "template.yaml")
    found = []
    for lid, res in template["Resources"].items():
        if res["Type"] == "AWS::Logs::QueryDefinition":
            found.append(parse_query(lid, res["Properties"]["QueryString"]))
    return found


def test_the_query_parser_finds_each_field() -> None:
    q = parse_query(
        "x",
        'filter ispresent(duration_ms) and outcome = "retrying"\n'
        "| stats count(*) as n, pct(duration_ms, 95) as p95 by flow, error_type, bin(5m)\n| sort n desc",
    )
    assert q.fields == {"duration_ms", "outcome", "flow", "error_type"}
    assert q.equals == {"outcome": "retrying"} and q.present == {"duration_ms"}


def test_every_saved_query_names_fields_the_code_writes(lambda_run: LambdaRun) -> None:
    queries = saved_queries()
    assert len(queries) >= 6
    for q in queries:
        wanted = {k: v.replace("REPLACE-WITH-RECORD-ID", lambda_run.record) for k, v in q.equals.items()}
        matching = [
            d
            for d in lambda_run.lines
            if all(d.get(k) == v for k, v in wanted.items()) and all(k in d for k in q.present)
        ]
        assert matching, f"{q.name}: no line the code wrote matches {wanted} {q.present}"
        missing = sorted(f for f in q.fields if not any(f in d for d in matching))
        assert not missing, f"{q.name} names fields no matching line has: {missing}"
