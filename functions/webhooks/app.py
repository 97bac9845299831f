"""Lambda handler of the webhook API: authenticate, validate, de-duplicate, enqueue."""

from __future__ import annotations

from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from erpsync.runtime import ingress  # boto3 and pydantic: loaded by the first invocation, then cached

    return ingress.handle(event)
