"""Lambda handler of the webhook API: authenticate, validate, de-duplicate, enqueue."""

from __future__ import annotations

from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # boto3 and Powertools (not the models): loaded by the first invocation, then cached. ``lambda_handler``
    # logs JSON lines (cold start, request id, each notice's correlation id) and flushes the metrics.
    from erpsync.runtime import ingress

    return ingress.lambda_handler(event, context)
