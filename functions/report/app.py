"""Lambda handler of the daily report: synced, failed and retried per flow, and the open failures,
published to the alerts topic (``erpsync.runtime.report``)."""

from __future__ import annotations

from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # boto3 and the layer: loaded by the first invocation. ``observed`` logs JSON lines (cold start,
    # request id).
    from erpsync.runtime import logs, report

    return logs.observed(report.handle)(event, context)
