"""The signature of the webhooks whose body erpsync defines (Magento's module, SAP Business One's
push): ``X-Erpsync-Timestamp: <unix seconds>`` and ``X-Erpsync-Signature: sha256=<hex>``, the
HMAC-SHA256 of ``<timestamp>.<raw body>`` with the connection's webhook secret. A timestamp outside
the window is refused (a replayed body)."""

from __future__ import annotations

import hashlib
import hmac
import time

from erpsync.systems.plugin import BadWebhook

SIGNATURE_HEADER = "x-erpsync-signature"
TIMESTAMP_HEADER = "x-erpsync-timestamp"
WINDOW_S = 300


def sign(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The headers a sender adds (used by tests, the demo and the sims)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    mac = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"X-Erpsync-Timestamp": ts, "X-Erpsync-Signature": f"sha256={mac}"}


def verify(
    secret: str, body: bytes, headers: dict[str, str], window_s: int = WINDOW_S, now: float | None = None
) -> None:
    """Raise ``BadWebhook`` (401) unless the body is signed with ``secret`` within the window."""
    sig = headers.get(SIGNATURE_HEADER, "")
    ts = headers.get(TIMESTAMP_HEADER, "")
    if not sig or not ts:
        raise BadWebhook(f"missing {SIGNATURE_HEADER} or {TIMESTAMP_HEADER} header", 401)
    if not ts.isdigit():
        raise BadWebhook(f"{TIMESTAMP_HEADER} is not a unix time", 401)
    if abs((now or time.time()) - int(ts)) > window_s:
        raise BadWebhook(f"{TIMESTAMP_HEADER} is outside the {window_s}s window (replay?)", 401)
    expected = "sha256=" + hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), sig.encode()):
        raise BadWebhook("signature does not match", 401)
