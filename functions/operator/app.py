"""Lambda handler of the operator API (IAM-authorised): failed records, resync, redrive."""

from __future__ import annotations

from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # boto3 and the models: loaded by the first invocation, then cached. ``observed`` logs JSON lines
    # (cold start, request id) and flushes the invocation's metrics.
    from erpsync.runtime import logs, operator_api

    return logs.observed(operator_api.handle)(event, context)
