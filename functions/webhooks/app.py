"""Lambda handler of the webhook API: authenticate, validate, de-duplicate, enqueue."""

from __future__ import annotations

from typing import Any

from erpsync.runtime import ingress


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return ingress.handle(event)
