"""QuickBooks Online webhooks: verify ``intuit-signature`` and turn the body into change notices.

Both formats Intuit sends are read: the legacy ``{"eventNotifications": [{"realmId",
"dataChangeEvent": {"entities": [{"id", "operation", "name", "lastUpdated"}]}}]}`` and the
CloudEvents array (``[{"specversion": "1.0", "id", "type": "qbo.customer.updated.v1",
"intuitentityid", "intuitaccountid", "time", ...}]``, up to 100 events). ``intuit-signature`` is the
base64 HMAC-SHA256 of the raw body with the app's verifier token. Events carry ids only: the
worker reads the record. Events of entities erpsync does not read from QuickBooks are dropped.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

from erpsync.systems.plugin import BadWebhook

SIGNATURE_HEADER = "intuit-signature"
ENTITIES = {"customer": "customer", "invoice": "invoice"}
"""QuickBooks entity (lower case) -> the entity whose flows it rings. A payment's events are not
read (an event names the payment, not the invoices it pays): applying a payment updates each
invoice's ``Balance``, whose own event rings the invoices flow (the sim sends it; UNVERIFIED that
QuickBooks does), and that flow's change data capture poll reads payments as well."""


def sign(verifier: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(verifier.encode(), body, hashlib.sha256).digest()).decode()


def verify(verifier: str, body: bytes, headers: dict[str, str]) -> None:
    if not verifier:
        raise BadWebhook("no webhook verifier token is configured for this QuickBooks connection", 401)
    given = headers.get(SIGNATURE_HEADER, "")
    if not given:
        raise BadWebhook(f"missing {SIGNATURE_HEADER} header", 401)
    if not hmac.compare_digest(sign(verifier, body).encode(), given.strip().encode()):
        raise BadWebhook("signature does not match", 401)


def _when(value: Any, where: str) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")[:32])
    except ValueError as exc:
        raise BadWebhook(f"{where} is not a time: {value!r}") from exc


def receive(secret: Any, body: bytes, headers: dict[str, str]) -> list[dict[str, Any]]:
    """Verify and parse a QuickBooks webhook: the fields of each notice it announces."""
    verify(str(secret or ""), body, headers)
    try:
        data = json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadWebhook(f"body is not valid JSON: {exc}") from exc
    events: list[tuple[str, str, str, str, Any]] = []  # (entity, id, operation, event id, time)
    if isinstance(data, list):
        for i, ev in enumerate(data):
            if not isinstance(ev, dict) or ev.get("specversion") != "1.0":
                raise BadWebhook(f"event [{i}] is not a CloudEvent (specversion 1.0)")
            parts = str(ev.get("type") or "").split(".")
            if len(parts) != 4 or parts[0] != "qbo":
                raise BadWebhook(f"event [{i}] type {ev.get('type')!r} is not qbo.<entity>.<operation>.v1")
            events.append(
                (parts[1], str(ev.get("intuitentityid") or ""), parts[2], str(ev.get("id") or ""), ev.get("time"))
            )
    elif isinstance(data, dict) and isinstance(data.get("eventNotifications"), list):
        for n in data["eventNotifications"]:
            for e in ((n or {}).get("dataChangeEvent") or {}).get("entities") or []:
                if not isinstance(e, dict):
                    raise BadWebhook("an entity of dataChangeEvent is not an object")
                entity, rid, op, at = (
                    str(e.get("name") or "").lower(),
                    str(e.get("id") or ""),
                    str(e.get("operation") or ""),
                    e.get("lastUpdated"),
                )
                digest = hashlib.sha256(f"{(n or {}).get('realmId')}|{entity}|{rid}|{op}|{at}".encode()).hexdigest()[
                    :32
                ]
                events.append((entity, rid, op.lower(), digest, at))
    else:
        raise BadWebhook("not a QuickBooks webhook: expected a CloudEvents array or eventNotifications")
    out = []
    for entity, rid, _op, event_id, at in events:
        if entity not in ENTITIES:
            continue
        if not rid.isdigit():
            raise BadWebhook(f"{entity} event has no numeric id: {rid!r}")
        when = _when(at, f"{entity} {rid} time")
        out.append(
            {
                "source": "quickbooks",
                "entity": ENTITIES[entity],
                "id": rid,
                "event_id": event_id,
                "occurred_at": when,
                "version": None,
            }
        )
    return out
