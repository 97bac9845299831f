"""API Gateway (REST, Lambda proxy integration) in front of the template's ``Api`` events.

An HTTP request becomes a payload-format-1.0 proxy event (``httpMethod``, ``resource``,
``path``, ``pathParameters``, ``headers``/``multiValueHeaders``, query strings, ``body`` and
``isBase64Encoded`` for a body that is not UTF-8, ``requestContext`` with ``requestId``,
``stage``, ``identity.sourceIp``, ``requestTimeEpoch``); the handler's proxy response becomes
the HTTP response. Like API Gateway: a body over 10 MB is answered 413, a route or method the
API does not have 403 ``{"message": "Missing Authentication Token"}``, a handler that raises or
answers something that is not a proxy response 502 ``{"message": "Internal server error"}``.
Routes are served under ``/<stage>`` (as on AWS) and, for convenience, at the root too.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.local.lambda_runtime import LocalFunction
from sandbox.local.template import ApiEvent

log = logging.getLogger("erpsync.local.api")

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


@dataclass(frozen=True)
class ApiRoute:
    """One resource + method of the API and the function behind it."""

    event: ApiEvent
    function: LocalFunction
    pattern: re.Pattern[str]

    def matches(self, method: str) -> bool:
        return self.event.method in ("ANY", method)


def compile_path(path: str) -> re.Pattern[str]:
    """``/webhooks/{source}`` -> a regex with a named group per path parameter (``{proxy+}`` greedy)."""
    out, pos = [], 0
    for m in re.finditer(r"\{([A-Za-z0-9_]+)(\+?)\}", path):
        out.append(re.escape(path[pos : m.start()]))
        out.append(f"(?P<{m.group(1)}>.+)" if m.group(2) else f"(?P<{m.group(1)}>[^/]+)")
        pos = m.end()
    out.append(re.escape(path[pos:]))
    return re.compile("^" + "".join(out) + "/?$")


def _missing_token() -> JSONResponse:
    return JSONResponse({"message": "Missing Authentication Token"}, status_code=403)


def _bad_gateway() -> JSONResponse:
    return JSONResponse({"message": "Internal server error"}, status_code=502)


def proxy_event(request: Request, route: ApiRoute, path: str, params: dict[str, str], body: bytes) -> dict[str, Any]:
    """The REST API proxy event (payload format 1.0) for ``request``."""
    headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    for key, value in request.headers.items():
        headers[key] = value
        multi_headers.setdefault(key, []).append(value)
    query: dict[str, str] = {}
    multi_query: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        query[key] = value
        multi_query.setdefault(key, []).append(value)
    try:
        text: str | None = body.decode("utf-8") if body else None
        is_b64 = False
    except UnicodeDecodeError:
        text, is_b64 = base64.b64encode(body).decode("ascii"), True
    now = time.time()
    stage = route.event.stage
    request_id = str(uuid.uuid4())
    client = request.client.host if request.client else "127.0.0.1"
    return {
        "resource": route.event.path,
        "path": path,
        "httpMethod": request.method,
        "headers": headers or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": params or None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "local",
            "resourcePath": route.event.path,
            "httpMethod": request.method,
            "extendedRequestId": request_id,
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "path": f"/{stage}{path}",
            "accountId": "123456789012",
            "protocol": f"HTTP/{request.scope.get('http_version', '1.1')}",
            "stage": stage,
            "domainPrefix": "local",
            "requestTimeEpoch": int(now * 1000),
            "requestId": request_id,
            "identity": {
                "sourceIp": client,
                "userAgent": request.headers.get("user-agent"),
                "accountId": None,
                "caller": None,
                "user": None,
                "userArn": None,
                "apiKey": None,
                "accessKey": None,
                "cognitoIdentityId": None,
                "cognitoIdentityPoolId": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
            },
            "domainName": request.headers.get("host", "localhost"),
            "apiId": route.event.api,
        },
        "body": text,
        "isBase64Encoded": is_b64,
    }


def proxy_response(result: Any, request_id: str) -> Response:
    """The handler's proxy response -> an HTTP response (502 when it is not one)."""
    if not isinstance(result, dict) or "statusCode" not in result:
        log.error("the handler did not return a proxy response: %r", result)
        return _bad_gateway()
    try:
        status = int(result["statusCode"])
    except (TypeError, ValueError):
        return _bad_gateway()
    body = result.get("body")
    if body is None:
        content = b""
    elif result.get("isBase64Encoded"):
        content = base64.b64decode(body)
    else:
        content = (body if isinstance(body, str) else json.dumps(body)).encode()
    response = Response(content=content, status_code=status)
    del response.headers["content-type"]
    for key, values in (result.get("multiValueHeaders") or {}).items():
        for value in values:
            response.headers.append(key, str(value))
    for key, value in (result.get("headers") or {}).items():
        response.headers[key] = str(value)
    if "content-type" not in response.headers:
        response.headers["content-type"] = "application/json"
    response.headers["x-amzn-requestid"] = request_id
    return response


def create_api_app(routes: list[tuple[ApiEvent, LocalFunction]]) -> Starlette:
    """A Starlette app serving every ``(event, function)`` the way API Gateway would."""
    compiled = [ApiRoute(ev, fn, compile_path(ev.path)) for ev, fn in routes]
    stages = {ev.stage for ev, _ in routes}

    async def dispatch(request: Request) -> Response:
        path = request.url.path
        for stage in stages:
            if path.startswith(f"/{stage}/"):
                path = path[len(stage) + 1 :]
                break
        found = [(r, m) for r in compiled if (m := r.pattern.match(path))]
        chosen = next(((r, m) for r, m in found if r.matches(request.method)), None)
        if chosen is None:
            return _missing_token()
        route, match = chosen
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > MAX_PAYLOAD_BYTES:
            return JSONResponse({"message": "Request Too Long"}, status_code=413)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_PAYLOAD_BYTES:
                return JSONResponse({"message": "Request Too Long"}, status_code=413)
            chunks.append(chunk)
        event = proxy_event(request, route, path, match.groupdict(), b"".join(chunks))
        try:
            result = await run_in_threadpool(route.function.invoke, event)
        except Exception:
            return _bad_gateway()
        return proxy_response(result, event["requestContext"]["requestId"])

    return Starlette(routes=[Route("/{path:path}", dispatch, methods=ALL_METHODS)])
