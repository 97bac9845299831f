"""Shopify webhooks: verify the signature and turn the body into change notices.

Shopify signs every delivery: ``X-Shopify-Hmac-Sha256`` is the base64 HMAC-SHA256 of the raw body
with the app's client secret (the connection's webhook secret). ``X-Shopify-Webhook-Id`` names the
delivery (a retry of it carries the same id: the ingress drops it as a duplicate),
``X-Shopify-Topic`` what happened; the body is the REST resource of the topic (snake_case, ids as
numbers, which Python reads exactly however large). A delivery triggered more than
``MAX_AGE_S`` ago is refused as a replay (Shopify retries for 4 hours).

A refund (``refunds/create``) rings the credit-memos flow with the refund's own id; its body has
no ``updated_at`` (a refund is not edited), so its notice has no version and its time is
``created_at``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import datetime
from typing import Any

from erpsync.systems.plugin import BadWebhook

HMAC_HEADER = "x-shopify-hmac-sha256"
TOPIC_HEADER = "x-shopify-topic"
WEBHOOK_ID_HEADER = "x-shopify-webhook-id"
TRIGGERED_HEADER = "x-shopify-triggered-at"
MAX_AGE_S = 6 * 3600
TOPICS = {
    "orders/create": "order",
    "orders/updated": "order",
    "orders/paid": "order",
    "orders/cancelled": "order",
    "orders/fulfilled": "order",
    "orders/partially_fulfilled": "order",
    "orders/edited": "order",
    "fulfillments/create": "order",
    "fulfillments/update": "order",
    "customers/create": "customer",
    "customers/update": "customer",
    "refunds/create": "creditmemo",
}
"""Topic -> the entity whose flows it rings (a fulfilment is a change of its order)."""
ID_KEY = {"fulfillments/create": "order_id", "fulfillments/update": "order_id"}
"""Where a topic's body names its notice's record, when not ``id``."""
TIME_KEY = {"refunds/create": "created_at"}
"""The body's time of the change, when not ``updated_at`` (which is then also the notice's version)."""


def sign(secret: str, body: bytes) -> str:
    """The ``X-Shopify-Hmac-Sha256`` value of ``body`` (used by tests and the sim)."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def verify(secret: str, body: bytes, headers: dict[str, str], now: float | None = None) -> None:
    """Raise ``BadWebhook`` (401) unless the body carries Shopify's signature with ``secret``."""
    if not secret:
        raise BadWebhook("no webhook secret is configured for this Shopify connection (its app's client secret)", 401)
    given = headers.get(HMAC_HEADER, "")
    if not given:
        raise BadWebhook(f"missing {HMAC_HEADER} header", 401)
    if not hmac.compare_digest(sign(secret, body).encode(), given.strip().encode()):
        raise BadWebhook("signature does not match", 401)
    triggered = headers.get(TRIGGERED_HEADER)
    if triggered:
        try:
            at = datetime.fromisoformat(triggered.replace("Z", "+00:00")).timestamp()
        except ValueError as exc:
            raise BadWebhook(f"{TRIGGERED_HEADER} is not a time: {triggered!r}", 400) from exc
        age = (now or time.time()) - at
        if age > MAX_AGE_S:
            raise BadWebhook(f"delivery triggered {age / 3600:.1f} hours ago (replay?)", 401)


def receive(secret: Any, body: bytes, headers: dict[str, str]) -> list[dict[str, Any]]:
    """Verify and parse a Shopify webhook: the fields of the ``ChangeNotice`` it announces."""
    verify(str(secret or ""), body, headers)
    topic = headers.get(TOPIC_HEADER, "").strip()
    if not topic:
        raise BadWebhook(f"missing {TOPIC_HEADER} header")
    if topic not in TOPICS:
        raise BadWebhook(f"topic {topic!r} is not one erpsync handles ({', '.join(sorted(TOPICS))})")
    webhook_id = headers.get(WEBHOOK_ID_HEADER, "").strip()
    if not webhook_id:
        raise BadWebhook(f"missing {WEBHOOK_ID_HEADER} header")
    try:
        data = json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadWebhook(f"body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise BadWebhook("body must be a JSON object")
    key = ID_KEY.get(topic, "id")
    record_id = data.get(key)
    if isinstance(record_id, bool) or not isinstance(record_id, int | str) or not str(record_id).strip().isdigit():
        raise BadWebhook(f"the {topic} body has no numeric {key!r}")
    time_key = TIME_KEY.get(topic, "updated_at")
    stamp = data.get(time_key)
    occurred = None
    if isinstance(stamp, str):
        try:
            occurred = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        except ValueError as exc:
            raise BadWebhook(f"{time_key!r} is not a time: {stamp!r}") from exc
    versioned = isinstance(stamp, str) and time_key == "updated_at" and key == "id"
    return [
        {
            "source": "shopify",
            "entity": TOPICS[topic],
            "id": str(record_id).strip(),
            "event_id": webhook_id,
            "occurred_at": occurred,
            "version": stamp if versioned else None,
        }
    ]
