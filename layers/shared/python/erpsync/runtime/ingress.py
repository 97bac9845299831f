"""The webhook doorbell: authenticate, validate, de-duplicate, enqueue. Never calls an ERP.

``POST /webhooks/{source}`` with ``source`` a connection id (``magento``, ``acumatica`` by
default). The connection's plugin verifies and parses the body; each notice goes to the queue of
the catalogue's flow for its entity coming from that connection's role. Answers 202 with what was
accepted, or a 4xx naming the problem (nothing is enqueued then). A body that fails anywhere is
never half-enqueued: notices are validated before any is sent.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from erpsync.model import ChangeNotice
from erpsync.runtime import logs, metrics, queues
from erpsync.state import dynamo

log = logging.getLogger("erpsync.webhooks")
logs.install(os.environ.get("LOG_LEVEL", "INFO"))

MAX_BODY_BYTES = 256 * 1024
EVENT_TTL_S = 7 * 86400


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
    source = str((event.get("pathParameters") or {}).get("source", ""))
    try:
        notices = _accept(event, secrets)
        fresh = [(flow, n) for flow, n in notices if _first_delivery(n)]
        by_queue: dict[str, tuple[str, list[ChangeNotice]]] = {}
        for flow, n in fresh:
            by_queue.setdefault(queues.queue_url(flow), (flow, []))[1].append(n)
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


def _accept(event: dict[str, Any], secrets: Callable[[], dict[str, Any]]) -> list[tuple[str, ChangeNotice]]:
    """(flow name, notice) for each change the body announces; ``Rejected`` says what is wrong."""
    from erpsync.flows import catalog
    from erpsync.settings import Settings
    from erpsync.systems import registry
    from erpsync.systems.plugin import BadWebhook

    source = (event.get("pathParameters") or {}).get("source", "")
    conns = _connections(Settings)
    if source not in conns:
        raise Rejected(404, f"unknown webhook source {source!r}: use /webhooks/<connection> ({', '.join(conns)})")
    conn = conns[source]
    plugin = registry.plugin(conn.kind)
    if plugin.webhooks is None:
        raise Rejected(404, f"{conn.kind} sends no webhooks: its changes are polled")
    raw = event.get("body") or ""
    body = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode()
    if len(body) > MAX_BODY_BYTES:
        raise Rejected(413, f"body is {len(body)} bytes; the limit is {MAX_BODY_BYTES}")
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items() if isinstance(v, str)}
    try:
        notices = plugin.webhooks(secrets().get(source), body, headers)
    except BadWebhook as exc:
        raise Rejected(exc.status, str(exc)) from exc
    routed: list[tuple[str, ChangeNotice]] = []
    for n in notices:
        spec = catalog.for_notice(n.entity, conn.role)
        if spec is None:
            raise Rejected(422, f"no flow carries {n.entity} changes from a {conn.role} ({source})")
        routed.append((spec.name, n.model_copy(update={"source": source})))
    return routed


def _connections(settings_model: Any) -> dict[str, Any]:
    """The connections in force (the stored settings' connections over the deployment's own)."""
    table = os.environ.get("BINDINGS_TABLE")
    if not table:
        return dict(settings_model().effective_connections())
    return dict(_settings_store(table).load().effective_connections())


@lru_cache(maxsize=1)
def _settings_store(table: str) -> Any:
    from erpsync.state.settings import SettingsStore

    return SettingsStore(table)


def _event_key(notice: ChangeNotice) -> dict[str, Any]:
    return {"pk": f"event#{notice.source}#{notice.event_id}", "sk": "-"}


def _forget(notice: ChangeNotice) -> None:
    table = os.environ.get("BINDINGS_TABLE")
    if table and notice.event_id:
        dynamo.client().delete_item(TableName=table, Key=dynamo.to_item(_event_key(notice)))


def _first_delivery(notice: ChangeNotice) -> bool:
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
