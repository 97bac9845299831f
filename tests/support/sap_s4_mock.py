"""An S/4HANA stand-in for unit tests (``httpx.MockTransport``): a script of answers per request,
every request kept; and the recorded deep-insert request of ``tests/fixtures/sap_s4``.

Answer bodies built here are in the OData v2 shape SYSTEMS-NOTES §4.6 describes, not recordings
(the reference holds no recorded S/4 answer)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from erpsync.systems.sap_s4.client import S4Client

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sap_s4"
BASE = "https://s4.example.com/sap/opu/odata/sap"
SO = "API_SALES_ORDER_SRV"
DELIVERY = "API_OUTBOUND_DELIVERY_SRV;v=0002"
BILLING = "API_BILLING_DOCUMENT_SRV"
Handler = Callable[[httpx.Request], "httpx.Response | None"]


def recorded_requests() -> list[dict[str, Any]]:
    """The requests of ``API_SALES_ORDER_SRV.http`` as ``{"method", "target", "headers", "body"}``
    (``{{…}}`` placeholders left as they are; a body parsed as JSON)."""
    text = (FIXTURES / "API_SALES_ORDER_SRV.http").read_text()
    out = []
    for block in text.split("###")[1:]:
        lines = [ln for ln in block.splitlines()[1:] if not ln.startswith(("#", "@"))]
        while lines and not lines[0].strip():
            lines.pop(0)
        if not lines:
            continue
        method, _, target = lines[0].partition(" ")
        headers: dict[str, str] = {}
        n = 1
        while n < len(lines) and lines[n].strip():
            if ":" in lines[n] and not lines[n].startswith("&"):
                k, _, v = lines[n].partition(":")
                headers[k.strip()] = v.strip()
            n += 1
        body = "\n".join(lines[n:]).strip()
        out.append({"method": method, "target": target, "headers": headers, "body": json.loads(body) if body else None})
    return out


def recorded_deep_insert() -> dict[str, Any]:
    """The body of the recorded ``POST …/A_SalesOrder``."""
    post = next(r for r in recorded_requests() if r["method"] == "POST")
    body = post["body"]
    assert isinstance(body, dict)
    return body


def answer(status: int = 200, body: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
    content = json.dumps(body).encode() if body is not None else b""
    sent = {"content-type": "application/json", **(headers or {})} if body is not None else dict(headers or {})
    return httpx.Response(status, content=content, headers=sent)


def token_answer(token: str = "tok-1", session: str = "s1") -> httpx.Response:
    """What ``HEAD <service>/`` with ``X-CSRF-Token: Fetch`` answers: the token and session cookies."""
    return httpx.Response(
        200,
        headers=[
            ("x-csrf-token", token),
            ("set-cookie", f"SAP_SESSIONID_S4H_100={session}; path=/"),
            ("set-cookie", "sap-usercontext=sap-client=100; path=/"),
        ],
    )


def csrf_required() -> httpx.Response:
    return httpx.Response(403, text="CSRF token validation failed", headers={"x-csrf-token": "Required"})


def sap_error(status: int, code: str, message: str, details: list[dict[str, Any]] | None = None) -> httpx.Response:
    """An error answer in the shape SYSTEMS-NOTES §4.6 gives."""
    body = {
        "error": {
            "code": code,
            "message": {"lang": "en", "value": message},
            "innererror": {
                "application": {"component_id": "SD-SLS-API", "service_namespace": "/SAP/", "service_id": SO},
                "transactionid": "5D1A3CE7D6B44E2E9E1BE3C2D5E1C0A1",
                "timestamp": "20250301120000.1234567",
                "Error_Resolution": {"SAP_Transaction": "Run transaction /IWFND/ERROR_LOG", "SAP_Note": "1797736"},
                "errordetails": details or [],
            },
        }
    }
    return answer(status, body)


class MockS4:
    """Answers each request with ``handler`` (CSRF fetches with ``token_answer`` unless the handler
    answers them) and keeps every request."""

    def __init__(self, handler: Handler | None = None) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []
        self.tokens = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.handler is not None:
            got = self.handler(request)
            if got is not None:
                return got
        if request.headers.get("x-csrf-token", "").lower() == "fetch":
            self.tokens += 1
            return token_answer(f"tok-{self.tokens}", f"s{self.tokens}")
        raise AssertionError(f"unexpected {request.method} {request.url}")

    def client(self, **options: Any) -> S4Client:
        return S4Client(BASE, "USER", "pw", http=httpx.Client(transport=httpx.MockTransport(self)), **options)

    def sent(self, method: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method]
