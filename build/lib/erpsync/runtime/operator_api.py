"""The operator endpoint, behind IAM auth on the API (the same actions as the `erpsync` command).

- ``GET  /operator/failed/{flow}?error_type=&since=&id=``  the open failures of a flow (its
  failed queue folded in); ``?resolved=1`` the latest resolved ones
- ``POST /operator/resync/{flow}`` ``{"id": "42"}`` one record, or ``{"failed": true,
  "error_type": ..., "since": ..., "ids": [...]}`` every matching open failure (until the Lambda's
  time is nearly up; ``"more": true`` says to call again)
- ``POST /operator/skip/{flow}`` ``{"ids": [...], "note": "..."}`` (or ``error_type``/``since``)
  resolve open failures without syncing them, with a note
- ``POST /operator/redrive/{flow}`` every open failure back to the queue as a retry, attempts reset
- ``POST /operator/poll/{flow}`` poll the flow now: its changes since the cursor go onto its queue
  (the stack's workers sync them)
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
    desk = rt.worker.desk
    if desk is None:
        return respond(500, {"message": "this deployment has no failures desk"})
    filters = {"error_type": body.get("error_type"), "since": body.get("since"), "ids": body.get("ids")}
    if action == "failed" and event.get("httpMethod") == "GET":
        if query.get("resolved"):
            done = [f for f in desk.resolved(int(query.get("limit") or 100)) if f.flow == flow]
            return respond(200, {"resolved": [f.as_json() for f in done], "count": len(done)})
        ids = [query["id"]] if query.get("id") else None
        rows = operator.list_failed(
            rt.queue_url, flow, desk, error_type=query.get("error_type"), since=query.get("since"), ids=ids
        )
        return respond(200, {"failed": [r.as_json() for r in rows], "count": len(rows)})
    if action == "resync" and event.get("httpMethod") == "POST":
        if body.get("id") and not body.get("failed"):
            outcome = rt.sync_now(str(body["id"]), body.get("source"))
            return respond(200, {"id": body["id"], "outcome": outcome.outcome, "message": outcome.message})
        if body.get("failed") is True:
            remaining = getattr(context, "get_remaining_time_in_millis", lambda: 900_000)
            started = time.monotonic()
            counts = operator.retry_failed(
                rt.queue_url,
                flow,
                desk,
                lambda rid, source: rt.sync_now(rid, source).outcome,
                **filters,
                should_stop=lambda: remaining() < SAFETY_MS or time.monotonic() - started > API_BUDGET_S,
            )
            more = bool(counts.pop("_stopped", 0))
            return respond(200, {"counts": counts, "more": more})
        return respond(400, {"message": 'give {"id": "<record id>"} or {"failed": true, ...}'})
    if action == "skip" and event.get("httpMethod") == "POST":
        if not str(body.get("note") or "").strip():
            return respond(400, {"message": 'a skip needs {"note": "why"} (it is kept with the record)'})
        if not any(filters.values()):
            return respond(400, {"message": 'name what to skip: {"ids": [...]} or error_type / since'})
        skipped = operator.skip_failed(rt.queue_url, flow, desk, str(body["note"]), caller, **filters)
        return respond(200, {"skipped": skipped})
    if action == "poll" and event.get("httpMethod") == "POST":
        polled = rt.poll()
        return respond(200, {"enqueued": polled["enqueued"], "since": polled["since"]})
    if action == "redrive" and event.get("httpMethod") == "POST":
        return respond(200, {"moved": operator.redrive(rt.queue_url, flow, desk)})
    return respond(404, {"message": f"no operator action {event.get('httpMethod')} {action!r}"})
