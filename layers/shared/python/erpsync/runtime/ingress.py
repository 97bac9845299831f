"""The webhook doorbell: authenticate, validate, de-duplicate, enqueue. Never calls an ERP.

``POST /webhooks/{source}`` with ``source`` one of ``magento`` or ``acumatica``. Answers
202 with what was accepted, or a 4xx naming the problem (nothing is enqueued then). A body
that fails anywhere is never half-enqueued: notices are validated before any is sent.
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
from erpsync.runtime import logs, queues
from erpsync.state import dynamo

log = logging.getLogger("erpsync.webhooks")
logs.install(os.environ.get("LOG_LEVEL", "INFO"))

MAX_BODY_BYTES = 256 * 1024
EVENT_TTL_S = 7 * 86400
QUEUE_ENV = {"order": "ORDERS_QUEUE_URL", "shipment": "SHIPMENTS_QUEUE_URL", "invoice": "INVOICES_QUEUE_URL"}


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
    """An API Gateway proxy event -> a proxy response. Never raises, never answers 5xx for bad input."""
    try:
        notices = _accept(event, secrets)
        fresh = [n for n in notices if _first_delivery(n)]
        by_queue: dict[str, list[ChangeNotice]] = {}
        for n in fresh:
            by_queue.setdefault(os.environ[QUEUE_ENV[n.entity]], []).append(n)
        try:
            for url, batch in by_queue.items():
                queues.send_notices(url, batch)
        except Exception:
            log.exception("could not enqueue; the sender will retry")
            for n in fresh:
                _forget(n)
            return respond(503, {"message": "could not enqueue the notice; retry later"})
        log.info("accepted %d notice(s), %d duplicate(s)", len(fresh), len(notices) - len(fresh))
        return respond(202, {"accepted": len(fresh), "duplicates": len(notices) - len(fresh)})
    except Rejected as exc:
        log.warning("webhook refused (%s): %s", exc.status, exc)
        return respond(exc.status, {"message": str(exc)})


def _accept(event: dict[str, Any], secrets: Callable[[], dict[str, Any]]) -> list[ChangeNotice]:
    from erpsync.systems.acumatica import webhooks as acumatica
    from erpsync.systems.magento import webhooks as magento

    source = (event.get("pathParameters") or {}).get("source", "")
    if source not in ("magento", "acumatica"):
        raise Rejected(404, f"unknown webhook source {source!r}: use /webhooks/magento or /webhooks/acumatica")
    raw = event.get("body") or ""
    body = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode()
    if len(body) > MAX_BODY_BYTES:
        raise Rejected(413, f"body is {len(body)} bytes; the limit is {MAX_BODY_BYTES}")
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items() if isinstance(v, str)}
    secret = secrets().get(source)
    try:
        if source == "magento":
            if secret:
                magento.verify(secret, body, headers)
            return magento.parse(_json(body), headers)
        if secret:
            acumatica.verify(secret, headers)
        return acumatica.parse(_json(body))
    except (magento.BadWebhook, acumatica.BadPush) as exc:
        raise Rejected(exc.status, str(exc)) from exc


def _json(body: bytes) -> Any:
    if not body:
        raise Rejected(400, "empty body: expected a JSON object")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Rejected(400, f"body is not valid JSON: {exc}") from exc


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
