"""The webhook doorbell: authenticate, validate, de-duplicate, enqueue. Never calls an ERP.

``POST /webhooks/{source}`` with ``source`` a connection id (``magento``, ``acumatica`` by
default). The connection's plugin verifies and parses the body; each notice goes to the queue of
the catalogue's flow for its entity coming from that connection's role. Answers 202 with what was
accepted, or a 4xx naming the problem (nothing is enqueued then). A body that fails anywhere is
never half-enqueued: notices are validated before any is sent.

Its cold start is the latency that counts (Shopify waits 5 s for an answer, Intuit 3 s), so the
first request imports neither the settings and record models (nor msgspec under them): the plugin's webhook
parse comes as plain fields (``registry.webhook_receiver``), the connections are read from the
stored settings document as JSON (``erpsync.settings_doc``; the models check it only when it is not
plainly valid), and each notice is a ``WebhookNotice``, queued byte for byte as the worker's
``ChangeNotice`` would be (``bench/cold_start.py`` measures it).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from erpsync.runtime import logs, metrics, queues
from erpsync.state import dynamo

log = logging.getLogger("erpsync.webhooks")
logs.install(os.environ.get("LOG_LEVEL", "INFO"))

MAX_BODY_BYTES = 256 * 1024
EVENT_TTL_S = 7 * 86400
SETTINGS_KEY = {"pk": "settings", "sk": "current"}
SETTINGS_CACHE_S = 60.0
"""The settings item and how long it is kept, as ``erpsync.state.settings`` (``KEY``, ``CACHE_SECONDS``)."""


class WebhookNotice:
    """A ``ChangeNotice`` as the ingress holds it: the fields a webhook announces, without the models.

    ``model_dump_json`` gives what ``ChangeNotice(**fields).model_dump_json`` gives, byte for byte
    (the worker reads it as a ``ChangeNotice``); for a value it does not write itself (a time zone
    offset with seconds, text that is not UTF-8) it asks the model."""

    FIELDS = ("source", "entity", "id", "target", "event_id", "occurred_at", "version", "snapshot", "read_at")
    __slots__ = FIELDS
    source: str
    entity: str
    id: str
    target: str | None
    event_id: str | None
    occurred_at: datetime | None
    version: str | None
    snapshot: dict[str, Any] | None
    read_at: datetime | None

    def __init__(self, **fields: Any) -> None:
        unknown = set(fields) - set(self.FIELDS)
        if unknown:
            raise TypeError(f"a change notice has no {sorted(unknown)}")
        for name in self.FIELDS:
            setattr(self, name, fields.get(name))

    def fields(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.FIELDS}

    def model_copy(self, *, update: Mapping[str, Any] | None = None) -> WebhookNotice:
        return WebhookNotice(**{**self.fields(), **(update or {})})

    def model_dump_json(self, *, exclude_none: bool = False) -> str:
        doc: dict[str, Any] = {}
        try:
            for name, value in self.fields().items():
                if value is None and exclude_none:
                    continue
                if isinstance(value, datetime):
                    value = _iso(value)
                elif value is not None and not isinstance(value, str):
                    raise _AskTheModel
                doc[name] = value
            text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
            text.encode()
        except (_AskTheModel, UnicodeEncodeError):
            from erpsync.model import ChangeNotice

            return ChangeNotice(**self.fields()).model_dump_json(exclude_none=exclude_none)
        return text


class _AskTheModel(Exception):
    """A value ``WebhookNotice`` does not serialise itself."""


def _iso(value: datetime) -> str:
    """A datetime as the models write it (``model_dump(mode="json")``): ISO 8601, ``Z`` for UTC."""
    offset = value.utcoffset()
    if offset is None:
        return value.isoformat()
    if offset % timedelta(minutes=1):
        raise _AskTheModel
    text = value.isoformat()
    return text[:-6] + "Z" if not offset else text


class Rejected(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def respond(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


@lru_cache(maxsize=1)
def _secrets_cached(name: str) -> dict[str, Any]:
    from erpsync.systems.registry import secret

    return secret(name)


def webhook_secrets() -> dict[str, Any]:
    name = os.environ.get("WEBHOOK_SECRET_NAME")
    return _secrets_cached(name) if name else {}


def handle(event: dict[str, Any], secrets: Callable[[], dict[str, Any]] = webhook_secrets) -> dict[str, Any]:
    """An API Gateway proxy event -> a proxy response. Never raises, never answers 5xx for bad input.

    Each notice queued gets a correlation id (in its message body) and a log line carrying it."""
    from erpsync.flows import catalog

    source = str((event.get("pathParameters") or {}).get("source", ""))
    try:
        notices = _accept(event, secrets)
        fresh = [(flows, n) for flows, n in notices if _first_delivery(n)]
        by_queue: dict[str, tuple[str, list[WebhookNotice]]] = {}
        for flows, n in fresh:
            for flow in flows:  # each flow's queue gets the notice as a change of its own entity
                entity = catalog.BY_NAME[flow].entity
                notice = n if n.entity == entity else n.model_copy(update={"entity": entity})
                by_queue.setdefault(queues.queue_url(flow), (flow, []))[1].append(notice)
        sent: list[logs.Correlation] = []
        try:
            for url, (flow, batch) in by_queue.items():
                correlation = logs.Correlation(flow, "webhook")
                queues.send_notices(url, batch, correlation)
                sent.append(correlation)
        except Exception:
            log.exception("could not enqueue; the sender will retry", extra={"connection": source})
            for _, n in fresh:
                _forget(n)
            return respond(503, {"message": "could not enqueue the notice; retry later"})
        for correlation in sent:
            dims = {"flow": correlation.flow, "connection": source, "via": "webhook"}
            metrics.add("Queued", correlation.queued(), dimensions=dims, rollups=metrics.BY_FLOW)
        log.info(
            "accepted %d notice(s), %d duplicate(s)",
            len(fresh),
            len(notices) - len(fresh),
            extra={"connection": source},
        )
        return respond(202, {"accepted": len(fresh), "duplicates": len(notices) - len(fresh)})
    except Rejected as exc:
        log.warning("webhook refused (%s): %s", exc.status, exc, extra={"connection": source, "status": exc.status})
        metrics.add("WebhooksRefused", dimensions={"connection": source})
        return respond(exc.status, {"message": str(exc)})


def _invoked(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle(event)


lambda_handler = logs.observed(_invoked)
"""The webhook function's entry point: ``handle`` with JSON logs (cold start, request id) and the
invocation's metrics flushed (``logs.observed``)."""


def _accept(event: dict[str, Any], secrets: Callable[[], dict[str, Any]]) -> list[tuple[list[str], WebhookNotice]]:
    """The webhook's notices, each with the flows it rings (``catalog.for_webhook``)."""
    """(flow name, notice) for each change the body announces; ``Rejected`` says what is wrong."""
    from erpsync.flows import catalog
    from erpsync.systems import registry
    from erpsync.systems.plugin import BadWebhook

    source = (event.get("pathParameters") or {}).get("source", "")
    conns = _connections()
    if source not in conns:
        raise Rejected(404, f"unknown webhook source {source!r}: use /webhooks/<connection> ({', '.join(conns)})")
    kind, role = conns[source]["kind"], conns[source]["role"]
    receive = registry.webhook_receiver(kind)
    if receive is None:
        raise Rejected(404, f"{kind} sends no webhooks: its changes are polled")
    raw = event.get("body") or ""
    body = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode()
    if len(body) > MAX_BODY_BYTES:
        raise Rejected(413, f"body is {len(body)} bytes; the limit is {MAX_BODY_BYTES}")
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items() if isinstance(v, str)}
    try:
        notices = [WebhookNotice(**fields) for fields in receive(secrets().get(source), body, headers)]
    except BadWebhook as exc:
        raise Rejected(exc.status, str(exc)) from exc
    routed: list[tuple[list[str], WebhookNotice]] = []
    for n in notices:
        specs = catalog.for_webhook(n.entity, role)
        if not specs:
            raise Rejected(422, f"no flow carries {n.entity} changes from a {role} ({source})")
        routed.append(([spec.name for spec in specs], n.model_copy(update={"source": source})))
    return routed


def _connections() -> dict[str, dict[str, Any]]:
    """The connections in force (the stored settings' connections over the deployment's own), as
    ``Settings.effective_connections`` gives them: read as JSON, and through the models only when
    the stored document is not plainly valid (they then say what is wrong)."""
    from erpsync.settings_doc import effective_connections, migrate

    table = os.environ.get("BINDINGS_TABLE")
    doc = _stored_settings(table) if table else {}
    if isinstance(doc, dict):
        doc = migrate(doc)
    found = effective_connections(doc)
    if found is None:
        from erpsync.settings import Settings

        conns = Settings.model_validate(doc).effective_connections()
        found = {cid: conn.model_dump() for cid, conn in conns.items()}
    return found


_stored: dict[str, tuple[float, Any]] = {}
"""The settings document last read, by table, with when it was read."""


def _stored_settings(table: str) -> Any:
    """The stored settings document (``{}`` when none), read again at most every ``SETTINGS_CACHE_S``
    (as ``SettingsStore.load`` reads it)."""
    kept = _stored.get(table)
    if kept is not None and time.monotonic() - kept[0] <= SETTINGS_CACHE_S:
        return kept[1]
    res = dynamo.client().get_item(TableName=table, Key=dynamo.to_item(SETTINGS_KEY))
    doc = json.loads(dynamo.from_item(res["Item"])["doc"]) if "Item" in res else {}
    _stored.clear()
    _stored[table] = (time.monotonic(), doc)
    return doc


def _event_key(notice: WebhookNotice) -> dict[str, Any]:
    return {"pk": f"event#{notice.source}#{notice.event_id}", "sk": "-"}


def _forget(notice: WebhookNotice) -> None:
    table = os.environ.get("BINDINGS_TABLE")
    if table and notice.event_id:
        dynamo.client().delete_item(TableName=table, Key=dynamo.to_item(_event_key(notice)))


def _first_delivery(notice: WebhookNotice) -> bool:
    """True the first time an event id is seen (a conditional put); duplicates are dropped."""
    table = os.environ.get("BINDINGS_TABLE")
    if not table or not notice.event_id:
        return True
    try:
        dynamo.client().put_item(
            TableName=table,
            Item=dynamo.to_item({**_event_key(notice), "expires_at": int(time.time()) + EVENT_TTL_S}),
            ConditionExpression="attribute_not_exists(pk)",
        )
        return True
    except dynamo.client().exceptions.ConditionalCheckFailedException:
        return False
