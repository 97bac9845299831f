"""Lambda handler of the operator API (IAM-authorised): failed records, resync, redrive."""

from __future__ import annotations

from typing import Any

from erpsync.runtime import operator_api


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return operator_api.handle(event, context)
