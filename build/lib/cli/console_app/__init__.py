"""The operator console: a small web app for `erpsync console`, served on loopback only.

Pages: the overview (``/``), the failures desk (``/failures``), one record's history (``/record``)
and the settings with their history (``/settings``). Every change is a POST carrying the process's
CSRF token; only requests addressed to 127.0.0.1 or localhost are answered; the pages allow no
inline script and no other origin (CSP)."""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from collections import defaultdict
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from cli.console_app import data, pages
from cli.console_app.data import Ops
from cli.console_app.static import CSS, JS
from erpsync.flows.catalog import BY_NAME

log = logging.getLogger("erpsync.console")

HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _html(text: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status, headers=HEADERS)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {n}" for k, n in sorted(counts.items())) or "nothing matched"


def create_app(ops: Ops) -> Starlette:
    """The console app acting through ``ops`` (the local stack or a deployed stack's operator API)."""
    token = secrets.token_urlsafe(32)
    where = ops.where

    def overview(request: Request) -> Response:
        return _html(pages.overview_page(data.overview(), where))

    def failures(request: Request) -> Response:
        q = request.query_params
        flow = q.get("flow") if q.get("flow") in BY_NAME else None
        error_type = q.get("error_type") or None
        rows, problems = [], []
        for f in [flow] if flow else list(BY_NAME):
            try:
                rows += ops.failed(f)
            except Exception as exc:
                problems.append(f"{f}: {exc}")
        types = sorted({r.error_type for r in rows})
        rows = [r for r in rows if not error_type or r.error_type == error_type]
        try:
            done = data.FailuresDesk(os.environ["BINDINGS_TABLE"]).resolved(20)
            resolved = [r for r in done if not flow or r.flow == flow]
        except Exception as exc:
            resolved, problems = [], [*problems, f"resolved failures: {exc}"]
        err = "; ".join(e for e in [q.get("err", ""), *problems] if e)
        return _html(
            pages.failures_page(
                rows,
                resolved,
                flow=flow,
                error_type=error_type,
                error_types=types,
                csrf=token,
                where=where,
                msg=q.get("msg", ""),
                err=err,
            )
        )

    def act(form: dict[str, list[str]]) -> tuple[str, str]:
        """Do what the desk's form asks; (message, error)."""

        def one(name: str) -> str:
            return (form.get(name) or [""])[0].strip()

        keys, note, action = form.get("key", []), one("note"), one("act")
        for name in ("retry_one", "skip_one"):
            if one(name):
                action, keys = name.removesuffix("_one"), [one(name)]
        if action == "redrive":
            flow = one("flow")
            if flow not in BY_NAME:
                return "", "choose a flow to send back to its queue"
            return f"{flow}: {ops.redrive(flow)} record(s) sent back to the queue", ""
        if action not in ("retry", "skip"):
            return "", f"unknown action {action!r}"
        if not keys:
            return "", "select at least one record first"
        if action == "skip" and not note:
            return "", "a skip needs a note: say why in the note box (it is kept with the record)"
        by_flow: dict[str, list[str]] = defaultdict(list)
        for key in keys:
            flow = key.split("#", 1)[0]
            if flow not in BY_NAME:
                return "", f"not a failure of a known flow: {key}"
            by_flow[flow].append(key)
        said = []
        for flow, chosen in by_flow.items():
            if action == "retry":
                said.append(f"retry {flow}: {_counts(ops.retry(flow, chosen))}")
            else:
                said.append(f"skip {flow}: {ops.skip(flow, chosen, note)} skipped")
        return "; ".join(said), ""

    async def failures_post(request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
        if not hmac.compare_digest((form.get("csrf") or [""])[0], token):
            return _html(pages.error_page("This form is stale (the console restarted?): reload the page.", where), 403)
        try:
            msg, err = await run_in_threadpool(act, form)
        except Exception as exc:
            log.exception("console action failed")
            msg, err = "", f"{type(exc).__name__}: {exc}"
        back = (form.get("back") or ["/failures"])[0]
        if not back.startswith("/") or back.startswith("//"):
            back = "/failures"
        sep = "&" if "?" in back else "?"
        return RedirectResponse(back + sep + pages.urlencode({"msg": msg} if msg else {"err": err}), 303)

    def record(request: Request) -> Response:
        q = request.query_params
        flow, id = q.get("flow", ""), q.get("id", "").strip()
        if flow not in BY_NAME or not id:
            err = "choose a flow and give a record id" if (flow or id) else ""
            return _html(pages.record_page(None, flow, id, token, where, err))
        view = data.record(flow, id, q.get("source") or None)
        return _html(pages.record_page(view, flow, id, token, where, q.get("err", "") or q.get("msg", "")))

    def settings(request: Request) -> Response:
        q = request.query_params
        a, b = q.get("a", "").strip(), q.get("b", "").strip()
        compare = (int(a), int(b)) if a.isdigit() and b.isdigit() else None
        view = data.settings_view(compare)
        if (a or b) and not compare:
            view["error"] = "give two version numbers to compare"
        return _html(pages.settings_page(view, where, a, b))

    def static(body: str, kind: str) -> Any:
        return lambda request: Response(body, media_type=kind, headers={"X-Content-Type-Options": "nosniff"})

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("console page failed", exc_info=exc)
        return _html(pages.error_page(f"{type(exc).__name__}: {exc}", where), 500)

    routes = [
        Route("/", overview),
        Route("/failures", failures, methods=["GET"]),
        Route("/failures", failures_post, methods=["POST"]),
        Route("/record", record),
        Route("/settings", settings),
        Route("/static/console.css", static(CSS, "text/css")),
        Route("/static/console.js", static(JS, "text/javascript")),
    ]
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=["127.0.0.1", "localhost"])]
    app = Starlette(routes=routes, middleware=middleware, exception_handlers={Exception: server_error})
    app.state.csrf, app.state.ops = token, ops
    return app
