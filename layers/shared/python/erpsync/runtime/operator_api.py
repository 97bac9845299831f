"""The operator endpoint, behind IAM auth on the API (the same actions as the `erpsync` command).

- ``GET  /operator/failed/{flow}?error_type=&since=``  the failed queue of a flow
- ``POST /operator/resync/{flow}`` ``{"id": "42"}`` one record, or ``{"failed": true,
  "error_type": ..., "since": ...}`` every matching failed record (until the Lambda's time is
  nearly up; ``"more": true`` says to call again)
- ``POST /operator/redrive/{flow}`` the failed queue back to its queue, attempts reset
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from erpsync.runtime import operator
from erpsync.runtime.ingress import respond

log = logging.getLogger("erpsync.operator")

SAFETY_MS = 10_000
API_BUDGET_S = 24.0
"""API Gateway waits 29 s for an answer: a bulk resync stops in time and says there is more."""


def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    params = event.get("pathParameters") or {}
    action, flow = params.get("action", ""), params.get("flow", "")
    from erpsync.flows.catalog import BY_NAME, NAMES

    if flow not in BY_NAME:
        return respond(404, {"message": f"unknown flow {flow!r}: use one of {list(NAMES)}"})
    try:
        body = json.loads(event.get("body") or "{}")
    except ValueError:
        return respond(400, {"message": "body is not valid JSON"})
    if not isinstance(body, dict):
        return respond(400, {"message": "body must be a JSON object"})
    query = event.get("queryStringParameters") or {}
    from erpsync.runtime.lambda_app import runtime

    rt = runtime(flow)
    rt.refresh()
    caller = ((event.get("requestContext") or {}).get("identity") or {}).get("userArn", "unknown")
    log.info("operator %s on %s by %s", action, flow, caller)
    if action == "failed" and event.get("httpMethod") == "GET":
        rows = operator.list_failed(rt.queue_url, flow, error_type=query.get("error_type"), since=query.get("since"))
        return respond(200, {"failed": [r.as_json() for r in rows], "count": len(rows)})
    if action == "resync" and event.get("httpMethod") == "POST":
        if body.get("id") and not body.get("failed"):
            outcome = operator.resync_one(rt.queue_url, flow, str(body["id"]), rt.sync_now)
            return respond(200, {"id": body["id"], "outcome": outcome.outcome, "message": outcome.message})
        if body.get("failed") is True:
            remaining = getattr(context, "get_remaining_time_in_millis", lambda: 900_000)
            started = time.monotonic()
            counts = operator.resync_failed(
                rt.queue_url,
                flow,
                lambda rid: rt.sync_now(rid).outcome,
                error_type=body.get("error_type"),
                since=body.get("since"),
                should_stop=lambda: remaining() < SAFETY_MS or time.monotonic() - started > API_BUDGET_S,
            )
            more = bool(counts.pop("_stopped", 0))
            return respond(200, {"counts": counts, "more": more})
        return respond(400, {"message": 'give {"id": "<record id>"} or {"failed": true, ...}'})
    if action == "redrive" and event.get("httpMethod") == "POST":
        return respond(200, {"moved": operator.redrive(rt.queue_url)})
    return respond(404, {"message": f"no operator action {event.get('httpMethod')} {action!r}"})
