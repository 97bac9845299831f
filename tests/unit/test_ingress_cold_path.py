"""The webhook ingress's cold path (issue 9, item 11): its first request imports neither the models
(nor msgspec under them) nor httpx, and what it does instead gives exactly what the models gave:
the same queued bytes, the same notices from the plugins' parsers, the same connections from the
stored settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from erpsync import settings_doc
from erpsync.model import ChangeNotice
from erpsync.model.base import ValidationError
from erpsync.runtime import ingress
from erpsync.settings import Settings
from erpsync.state import settings as stored_settings
from erpsync.systems import registry
from erpsync.systems.magento.webhooks import sign

ROOT = Path(__file__).resolve().parents[2]

offsets = st.one_of(
    st.none(),
    st.just(UTC),
    st.integers(min_value=-(24 * 3600 - 1), max_value=24 * 3600 - 1).map(lambda s: timezone(timedelta(seconds=s))),
    st.integers(min_value=-23 * 60, max_value=23 * 60).map(lambda m: timezone(timedelta(minutes=m))),
)
times = st.one_of(st.none(), st.builds(lambda d, tz: d.replace(tzinfo=tz), st.datetimes(), offsets))
texts = st.text(max_size=12)
maybe_texts = st.one_of(st.none(), texts)


@settings(max_examples=300, deadline=None)
@given(
    source=texts,
    entity=texts,
    rid=texts,
    target=maybe_texts,
    event_id=maybe_texts,
    occurred_at=times,
    version=maybe_texts,
    exclude_none=st.booleans(),
)
def test_a_webhook_notice_is_queued_byte_for_byte_as_a_change_notice(
    source: str,
    entity: str,
    rid: str,
    target: str | None,
    event_id: str | None,
    occurred_at: datetime | None,
    version: str | None,
    exclude_none: bool,
) -> None:
    fields: dict[str, Any] = {
        "source": source,
        "entity": entity,
        "id": rid,
        "target": target,
        "event_id": event_id,
        "occurred_at": occurred_at,
        "version": version,
    }
    light = ingress.WebhookNotice(**fields)
    try:
        expected = ChangeNotice(**fields).model_dump_json(exclude_none=exclude_none)
    except Exception as exc:  # text that is not UTF-8: both refuse it
        with pytest.raises(type(exc)):
            light.model_dump_json(exclude_none=exclude_none)
        return
    assert light.model_dump_json(exclude_none=exclude_none) == expected
    moved = light.model_copy(update={"source": "magento-eu"})
    assert moved.model_dump_json() == ChangeNotice(**{**fields, "source": "magento-eu"}).model_dump_json()
    assert light.source == source  # a copy, not a change


def test_text_that_is_not_utf8_is_refused_as_the_model_refuses_it() -> None:
    fields = {"source": "acumatica", "entity": "shipment", "id": "\ud800", "event_id": "x|q|\ud800"}
    with pytest.raises(Exception) as expected:
        ChangeNotice(**fields).model_dump_json(exclude_none=True)
    with pytest.raises(expected.type):
        ingress.WebhookNotice(**fields).model_dump_json(exclude_none=True)


def test_a_webhook_notice_takes_only_the_fields_of_a_change_notice() -> None:
    assert set(ingress.WebhookNotice.FIELDS) == set(ChangeNotice.field_names())
    with pytest.raises(TypeError, match="no"):
        ingress.WebhookNotice(source="magento", entity="order", id="1", colour="red")


MAGENTO_BODY = json.dumps(
    {"eventName": "observer.sales_order_save_after", "data": {"order": {"entity_id": 7, "updated_at": "2025-05-01"}}}
).encode()
ACUMATICA_BODY = json.dumps(
    {"Query": "ERPSync-Shipments", "Id": "9f1", "Inserted": [{"ShipmentNbr": "000042"}, {"ReferenceNbr": "INV7"}]}
).encode()


@pytest.mark.parametrize(
    ("kind", "secret", "body", "headers"),
    [
        ("magento", "m-secret", MAGENTO_BODY, {k.lower(): v for k, v in sign("m-secret", MAGENTO_BODY).items()}),
        ("magento", None, MAGENTO_BODY, {"x-erpsync-event-id": "e-1"}),
        ("acumatica", "a-token", ACUMATICA_BODY, {"x-erpsync-token": "a-token"}),
    ],
)
def test_the_ingress_receives_what_the_plugin_parses(
    kind: str, secret: str | None, body: bytes, headers: dict[str, str]
) -> None:
    receive = registry.webhook_receiver(kind)
    plugin = registry.plugin(kind)
    assert receive is not None and plugin.webhooks is not None
    notices = plugin.webhooks(secret, body, headers)
    assert notices and [ChangeNotice(**f) for f in receive(secret, body, headers)] == notices
    assert [ingress.WebhookNotice(**f).model_dump_json() for f in receive(secret, body, headers)] == [
        n.model_dump_json() for n in notices
    ]


def test_every_kind_takes_webhooks_through_the_ingress_exactly_when_its_plugin_does() -> None:
    for kind in registry.KINDS:
        assert (registry.webhook_receiver(kind) is None) == (registry.plugin(kind).webhooks is None), kind
    with pytest.raises(registry.UnknownSystem):
        registry.webhook_receiver("woocommerce")


@pytest.mark.parametrize(
    "doc",
    [
        {},
        {"version": 2},
        {"customer_class": "RETAIL", "order_type": "SO"},  # version 1: moved into the ERP connection
        {"version": 2, "connections": {"magento": {"kind": "magento", "role": "store"}}},  # keeps the secret
        {
            "version": 2,
            "connections": {
                "magento-eu": {"kind": "magento", "role": "store", "secret": "erpsync/eu", "settings": {"a": 1}},
                "acumatica": {"kind": "acumatica", "role": "erp", "secret": "erpsync/acu-2"},
            },
            "routes": [{"store": "magento-eu", "erp": "acumatica"}],
        },
    ],
)
def test_connections_read_as_json_are_the_models_connections(doc: dict[str, Any]) -> None:
    migrated = settings_doc.migrate(json.loads(json.dumps(doc)))
    expected = {cid: c.model_dump() for cid, c in Settings.model_validate(migrated).effective_connections().items()}
    found = settings_doc.effective_connections(migrated)
    assert found == expected and list(found or {}) == list(expected)


@pytest.mark.parametrize(
    "connections",
    [
        {"magento": {"kind": "magento", "role": "shop"}},
        {"magento": {"kind": "magento"}},
        {"magento": {"kind": "magento", "role": "store", "colour": "red"}},
        {"magento": {"kind": 7, "role": "store"}},
        {"magento": "magento"},
        [],
    ],
)
def test_connections_the_models_would_refuse_are_left_to_the_models(connections: Any) -> None:
    doc = {"version": 2, "connections": connections}
    assert settings_doc.effective_connections(doc) is None
    with pytest.raises(ValidationError):
        Settings.model_validate(doc)


def test_the_ingress_reads_the_settings_item_the_settings_store_writes() -> None:
    assert ingress.SETTINGS_KEY == stored_settings.KEY
    assert ingress.SETTINGS_CACHE_S == stored_settings.CACHE_SECONDS


def test_a_webhooks_first_request_imports_neither_the_models_nor_httpx() -> None:
    """A fresh interpreter, as a cold Lambda container: the whole first request (Powertools JSON
    logs with the Lambda context, the settings read, de-duplication, the queue, the EMF metrics)
    leaves the models (and msgspec, pydantic) and httpx unimported."""
    script = textwrap.dedent(
        """
        import json, sys
        from erpsync.runtime import ingress, queues
        from erpsync.state import dynamo
        from erpsync.systems.magento.webhooks import sign

        class Fake:
            sent = []
            class exceptions:
                ConditionalCheckFailedException = KeyError
            def get_item(self, **kw):
                return {}
            def put_item(self, **kw):
                return {}
            def send_message_batch(self, **kw):
                Fake.sent += [dict(e, QueueUrl=kw["QueueUrl"]) for e in kw["Entries"]]
                return {"Successful": kw["Entries"]}

        dynamo.client = queues.client = lambda: Fake()
        body = json.dumps({"eventName": "observer.sales_order_save_after",
                           "data": {"order": {"entity_id": 7, "updated_at": "2025-05-01 10:00:00"}}}).encode()
        event = {"pathParameters": {"source": "magento"}, "headers": sign("ignored", body), "body": body.decode()}

        class Context:
            aws_request_id, function_name, memory_limit_in_mb = "r-1", "erpsync-webhooks", 256
            invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:erpsync-webhooks"

        answer = ingress.lambda_handler(event, Context())
        print(json.dumps({"status": answer["statusCode"], "sent": Fake.sent, "modules": sorted(sys.modules)}))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ERPSYNC_"))}
    env.update(
        PYTHONPATH=str(ROOT / "layers/shared/python"),
        AWS_LAMBDA_FUNCTION_NAME="erpsync-webhooks",
        AWS_DEFAULT_REGION="us-east-1",
        BINDINGS_TABLE="bindings",
        QUEUE_URL_PREFIX="https://sqs.us-east-1.amazonaws.com/123456789012/erpsync-",
    )
    env.pop("WEBHOOK_SECRET_NAME", None)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["status"] == 202
    by_queue = {m["QueueUrl"].rsplit("-", 1)[1]: m for m in got["sent"]}
    assert sorted(by_queue) == ["orders", "payments"]  # a store order's save rings both flows
    assert json.loads(by_queue["payments"]["MessageBody"])["entity"] == "payment"
    body = json.loads(by_queue["orders"]["MessageBody"])
    assert body.pop("correlation_id")
    assert ChangeNotice.model_validate(body) == ChangeNotice(
        source="magento",
        entity="order",
        id="7",
        event_id=body["event_id"],
        occurred_at=datetime(2025, 5, 1, 10),
        version="2025-05-01 10:00:00",
    )
    modules = set(got["modules"])
    assert "aws_lambda_powertools.logging.logger" in modules  # Powertools Logger and Metrics: used
    assert "aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch" in modules
    libraries = ("msgspec", "pydantic", "pydantic_core", "httpx", "httpcore")
    assert not {m for m in modules if m.split(".")[0] in libraries}
    assert not modules & {"erpsync.model", "erpsync.model.base", "erpsync.model.records", "erpsync.settings"}
