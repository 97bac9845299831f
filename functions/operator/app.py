"""Lambda handler of the operator API (IAM-authorised): failed records, resync, redrive."""

from __future__ import annotations

from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from erpsync.runtime import operator_api  # boto3 and pydantic: loaded by the first invocation, then cached

    return operator_api.handle(event, context)
