"""Magento webhooks: verify the signature and turn the body into change notices.

Magento Open Source has no webhooks of its own; a store sends them through Adobe Commerce
Webhooks, Adobe I/O Events or a small module. Accepted bodies:

- Adobe Commerce Webhooks: ``{"eventName": "observer.sales_order_save_after", "data": {"order": {...}}}``
- Adobe I/O Events (CloudEvents): ``{"specversion": "1.0", "id": ..., "type":
  "com.adobe.commerce.observer.sales_order_save_after", "data": {"value": {...}}}``

Signature: ``X-Erpsync-Timestamp: <unix seconds>`` and ``X-Erpsync-Signature: sha256=<hex>``,
the HMAC-SHA256 of ``<timestamp>.<raw body>`` with the shared secret (``systems/signing.py``).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from erpsync.systems.plugin import BadWebhook
from erpsync.systems.signing import SIGNATURE_HEADER as SIGNATURE_HEADER
from erpsync.systems.signing import TIMESTAMP_HEADER as TIMESTAMP_HEADER
from erpsync.systems.signing import sign as sign
from erpsync.systems.signing import verify

if TYPE_CHECKING:
    from erpsync.model import ChangeNotice

EVENT_ID_HEADER = "x-erpsync-event-id"
ENTITIES = {"order": "order", "sales_order": "order", "customer": "customer"}


def receive(secret: Any, body: bytes, headers: dict[str, str]) -> list[dict[str, Any]]:
    """Verify (when a secret is configured) and parse a signed Magento webhook: the fields of each
    ``ChangeNotice`` it announces (the plugin's ``webhooks``; the ingress uses these as they are,
    without the models)."""
    if secret:
        verify(str(secret), body, headers)
    try:
        data = json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadWebhook(f"body is not valid JSON: {exc}") from exc
    if data is None:
        raise BadWebhook("empty body: expected a JSON object")
    return notice_fields(data, headers)


def parse(body: Any, headers: dict[str, str]) -> list[ChangeNotice]:
    """Change notices from a webhook body; ``BadWebhook`` names what is wrong."""
    from erpsync.model import ChangeNotice

    return [ChangeNotice(**fields) for fields in notice_fields(body, headers)]


def notice_fields(body: Any, headers: dict[str, str]) -> list[dict[str, Any]]:
    """``parse`` without the model: the fields of each notice (source, entity, id, event_id,
    occurred_at, version), every one of the type ``ChangeNotice`` holds."""
    if not isinstance(body, dict):
        raise BadWebhook("body must be a JSON object")
    if "specversion" in body:
        event_type, event_id, data = body.get("type"), body.get("id"), body.get("data")
        record = data.get("value") if isinstance(data, dict) else None
    elif "eventName" in body:
        event_type, event_id, data = body.get("eventName"), headers.get(EVENT_ID_HEADER), body.get("data")
        record = None
        if isinstance(data, dict):
            record = next((v for k, v in data.items() if k in ENTITIES and isinstance(v, dict)), None)
    else:
        raise BadWebhook("not a Magento webhook: expected 'eventName' (Adobe Commerce) or 'specversion' (CloudEvents)")
    if not isinstance(event_type, str) or not event_type:
        raise BadWebhook("missing event type ('eventName' or 'type')")
    entity = _entity(event_type)
    if not isinstance(record, dict):
        raise BadWebhook(f"event {event_type!r} carries no {entity} record in 'data'")
    record_id = record.get("entity_id", record.get("id") if entity == "customer" else None)
    if isinstance(record_id, bool) or not isinstance(record_id, int | str) or not str(record_id).strip():
        raise BadWebhook(f"the {entity} record has no 'entity_id'")
    if isinstance(record_id, str) and not record_id.strip().isdigit():
        raise BadWebhook(f"'entity_id' must be a number, got {record_id!r}")
    version = record.get("updated_at")
    occurred = None
    if isinstance(version, str):
        try:
            occurred = datetime.fromisoformat(version)
        except ValueError as exc:
            raise BadWebhook(f"'updated_at' is not a date: {version!r}") from exc
    if event_id is None:
        event_id = hashlib.sha256(f"{event_type}|{record_id}|{version}".encode()).hexdigest()[:32]
    return [
        {
            "source": "magento",
            "entity": entity,
            "id": str(record_id).strip(),
            "event_id": str(event_id),
            "occurred_at": occurred,
            "version": version if isinstance(version, str) else None,
        }
    ]


def _entity(event_type: str) -> str:
    for key, entity in ENTITIES.items():
        if f"{key}_save" in event_type or f"{key}_place" in event_type:
            return entity
    raise BadWebhook(
        f"event type {event_type!r} is not one erpsync handles "
        "(orders: *sales_order_save_after, customers: *customer_save_after)"
    )
