"""Check SAP S/4HANA OData v2 JSON against the services' metadata (tests/fixtures/sap_s4: SAP's
sales order ``$metadata`` and the hand-made delivery and billing files; see its SOURCES.md) with the
loader the simulator uses (``sandbox.sims.edmx``, dialect ``odata_v2``), and drive the simulator
the way a Gateway client does (Basic auth, CSRF token and cookies, ``Accept: application/json``).

- ``answer_type(service, path)``: the type (and function import) an answer to ``path`` holds;
- ``assert_answer(service, path, body)``: the whole ``{"d": ...}`` answer is valid;
- ``assert_error(body)``: exactly Gateway's error body (SYSTEMS-NOTES §4.6);
- ``S4``: a ``TestClient`` on a fresh sim, its clock fixed, that checks every answer it gets.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
from starlette.testclient import TestClient

from sandbox.sims import sap_s4
from sandbox.sims.edmx import Metadata

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sap_s4"
AUTH = (sap_s4.USERNAME, sap_s4.PASSWORD)
SO, DLV, BIL = sap_s4.SALES, sap_s4.DELIVERY, sap_s4.BILLING


class S4ShapeError(AssertionError):
    """An S/4 body that does not match the metadata or Gateway's documented shape."""


@cache
def metadata(service: str) -> Metadata:
    return Metadata.load(FIXTURES / sap_s4.SERVICES[service])


def answer_type(service: str, path: str) -> tuple[str, str | None]:
    """(type name, function import name or None) of the answer to ``path`` (below the service root)."""
    meta = metadata(service)
    name = unquote(urlsplit(path).path).strip("/")
    if name in meta.functions:
        declared = meta.functions[name].return_type or ""
        inner = declared.removeprefix("Collection(").removesuffix(")").split(".")[-1]
        return inner, None if declared.startswith("Collection(") else name
    m = re.fullmatch(r"(\w+)(?:\(.*?\))?(?:/(\w+))?", name)
    if m is None:
        raise S4ShapeError(f"cannot tell the type of an answer to {path!r}")
    t = meta.entity_type(m.group(1))
    if m.group(2):
        return t.nav_targets[m.group(2)][0], None
    return t.name, None


def assert_answer(service: str, path: str, body: Any) -> None:
    type_name, function = answer_type(service, path)
    problems = metadata(service).check_v2_document(type_name, body, function)
    if problems:
        raise S4ShapeError(f"{service}/{path} answer does not match the metadata:\n  " + "\n  ".join(problems))


def assert_error(body: Any) -> None:
    """``body`` is exactly Gateway's error body, with at least one ``errordetails`` row."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or set(body) != {"error"}:
        raise S4ShapeError(f"not a Gateway error body: {body!r}")
    problems = []
    if set(error) != {"code", "message", "innererror"} or not isinstance(error.get("code"), str):
        problems.append(f"error keys {sorted(error)} / code {error.get('code')!r}")
    message = error.get("message")
    if not isinstance(message, dict) or set(message) != {"lang", "value"}:
        problems.append(f"message {message!r}")
    inner = error.get("innererror") or {}
    if set(inner) != {"application", "transactionid", "timestamp", "Error_Resolution", "errordetails"}:
        problems.append(f"innererror keys {sorted(inner)}")
    details = inner.get("errordetails")
    if not isinstance(details, list) or not details:
        problems.append("no errordetails")
    else:
        for row in details:
            if set(row) != {"code", "message", "propertyref", "severity", "target"}:
                problems.append(f"errordetails row keys {sorted(row)}")
    if problems:
        raise S4ShapeError(f"not a Gateway error body ({'; '.join(problems)}): {body!r}")


class S4:
    """A TestClient on a fresh sim (clock fixed at 2025-03-01 14:05 UTC) that checks every answer."""

    def __init__(self) -> None:
        self.app = sap_s4.create_app()
        self.http = TestClient(self.app)
        self.sim: sap_s4.S4Sim = self.app.state.sim
        self.clock = datetime(2025, 3, 1, 14, 5, 0, tzinfo=UTC)
        self.sim.now = lambda: self.clock
        self.tokens: dict[str, str] = {}

    def tick(self, **delta: float) -> None:
        self.clock += timedelta(**delta)

    def token(self, service: str) -> str:
        if service not in self.tokens:
            r = self.http.head(f"{sap_s4.ROOT}{service}/", auth=AUTH, headers={"X-CSRF-Token": "Fetch"})
            assert r.status_code == 200, r.text
            self.tokens[service] = r.headers["x-csrf-token"]
        return self.tokens[service]

    def call(self, method: str, service: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"Accept": "application/json", **kw.pop("headers", {})}
        if method not in ("GET", "HEAD") and "X-CSRF-Token" not in headers:
            headers["X-CSRF-Token"] = self.token(service)
        r = self.http.request(
            method, f"{sap_s4.ROOT}{service}/{path}", auth=kw.pop("auth", AUTH), headers=headers, **kw
        )
        if r.status_code >= 400 and r.headers.get("content-type", "").startswith("application/json"):
            assert_error(r.json())
        elif r.status_code < 300 and r.content and r.headers.get("content-type", "").startswith("application/json"):
            assert_answer(service, path, r.json())
        return r

    def seed(self, **body: Any) -> Any:
        r = self.http.post("/_sim/seed", json=body)
        assert r.status_code == 200, r.text
        return r.json()

    def config(self, **body: Any) -> None:
        r = self.http.post("/_sim/config", json=body)
        assert r.status_code == 200, r.text
