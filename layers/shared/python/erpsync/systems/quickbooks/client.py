"""A small synchronous QuickBooks Online v3 client: bearer token, ``minorversion``, ``requestid``
on every write, Faults typed.

Intuit replays the first answer to a ``requestid``: a write retried with the same id after a lost
answer gets the document the first attempt made, not a second one. Callers derive the id from
what they write (``request_id``), so a retry of the same write carries the same id.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from erpsync.errors import (
    AuthError,
    NotFoundError,
    OutageError,
    PermanentError,
    RateLimitedError,
    RetryableError,
    ValidationFailed,
)
from erpsync.systems import http as transport
from erpsync.systems.ports import Deadline, Gate

SYSTEM = "quickbooks"
THROTTLE_WAIT_S = 60.0
"""Intuit's advice after a 429: wait a minute."""
PER_SECOND = 10
"""Intuit's ceiling per realm and app: each client keeps its own requests under it, with or without
a gate; the shared gate keeps every worker's together under it and the 500 a minute."""
BATCH_MAX = 30
"""Intuit's ceiling of items in one batch request."""
WINDOW_S = 1.1
"""The second the client counts its requests in, with a margin for the time a request takes to arrive."""


class Fault(ValidationFailed):
    """QuickBooks refused the request (a ``Fault`` body); ``code`` is Intuit's error code."""

    def __init__(self, message: str, code: str, system: str = SYSTEM) -> None:
        super().__init__(message, system=system)
        self.code = code


def request_id(*parts: Any) -> str:
    """A ``requestid`` for a write: the same parts (the connection, what is written) give the same id."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:36]


def quoted(value: str) -> str:
    """A string literal of the query language (``'`` escaped as ``\\'``)."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


class QuickBooksClient:
    """Talks to ``<base_url>/v3/company/<realm>/...``."""

    def __init__(
        self,
        base_url: str,
        realm_id: str,
        token: Callable[[], str],
        *,
        minor_version: int = 75,
        http: httpx.Client | None = None,
        timeout: float = 30.0,
        gate: Gate | None = None,
        deadline: Deadline | None = None,
        name: str = SYSTEM,
        renew: Callable[[str], str] | None = None,
    ) -> None:
        self.base = f"{base_url.rstrip('/')}/v3/company/{realm_id}"
        self.token, self.renew = token, renew
        self.minor_version = minor_version
        self.http = http if http is not None else transport.new_client(timeout)
        self.timeout, self.gate, self.deadline, self.name = timeout, gate, deadline, name
        self.request_count = 0
        self._lock = threading.Lock()
        self._sent: list[float] = []

    def close(self) -> None:
        self.http.close()

    def get(self, path: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        return self._call("GET", path, params=params)

    def post(self, path: str, body: Any, *, request_id: str | None = None, **params: str) -> dict[str, Any]:
        query = dict(params)
        if request_id:
            query["requestid"] = request_id
        return self._call("POST", path, params=query, json=body)

    def query(self, text: str) -> dict[str, Any]:
        """The ``QueryResponse`` of a query (``{}`` when nothing matched)."""
        found = self.get("/query", {"query": text}).get("QueryResponse")
        return found if isinstance(found, dict) else {}

    def cdc(self, entities: list[str], since: str) -> dict[str, Any]:
        """Change data capture: the whole answer of ``GET /cdc`` for ``entities`` changed after ``since``."""
        return self.get("/cdc", {"entities": ",".join(entities), "changedSince": since})

    def batch(self, items: list[dict[str, Any]]) -> dict[str, dict[str, Any] | Exception]:
        """Send ``items`` (each with its ``bId``) in ``POST /batch`` requests of at most ``BATCH_MAX``;
        bId -> what QuickBooks answered for it (without the bId), or the typed error of its Fault
        (Intuit answers a batch with HTTP 200 and a Fault per item that failed; the others are done).
        Answers are matched by bId, not by position: Intuit does not promise the order."""
        out: dict[str, dict[str, Any] | Exception] = {}
        for start in range(0, len(items), BATCH_MAX):
            chunk = items[start : start + BATCH_MAX]
            answer = self.post("/batch", {"BatchItemRequest": chunk})
            rows = answer.get("BatchItemResponse")
            if not isinstance(rows, list):
                raise RetryableError(f"{self.name} answered a batch without BatchItemResponse", system=self.name)
            by_bid = {str(r.get("bId")): r for r in rows if isinstance(r, dict)}
            for item in chunk:
                bid = str(item["bId"])
                row = by_bid.get(bid)
                fault = canonical_fault(row).get("Fault") if row is not None else None
                if row is None:
                    out[bid] = RetryableError(f"{self.name} answered nothing for batch item {bid}", system=self.name)
                elif isinstance(fault, dict):
                    errors = fault.get("Error") or [{}]
                    code = str((errors[0] if isinstance(errors[0], dict) else {}).get("code") or "")
                    text = _fault_text({"Fault": fault}) or "Fault"
                    out[bid] = fault_error(code, 200, text, f"batch item {bid}", self.name)
                else:
                    out[bid] = {k: v for k, v in row.items() if k != "bId"}
        return out

    # ----------------------------------------------------------------- plumbing

    def _pace(self) -> None:
        """Wait, if need be, so that no more than ``PER_SECOND`` requests leave in any second."""
        with self._lock:
            now = time.monotonic()
            self._sent = [t for t in self._sent if now - t < WINDOW_S]
            wait = WINDOW_S - (now - self._sent[0]) if len(self._sent) >= PER_SECOND else 0.0
            self._sent.append(now + wait)
            self.request_count += 1
        if wait > 0:
            time.sleep(wait)

    def _send(self, method: str, path: str, params: dict[str, str], json_body: Any, token: str) -> httpx.Response:
        self._pace()
        url = f"{self.base}{path}"
        return transport.send(
            self.http,
            method,
            url,
            system=self.name,
            timeout=self.deadline.timeout(self.timeout, self.name, method) if self.deadline else self.timeout,
            gate=self.gate,
            deadline=self.deadline,
            params={**params, "minorversion": str(self.minor_version)},
            json=json_body,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )

    def _call(
        self, method: str, path: str, *, params: Mapping[str, str] | None = None, json: Any = None
    ) -> dict[str, Any]:
        token = self.token()
        response = self._send(method, path, dict(params or {}), json, token)
        if response.status_code == 401 and self.renew is not None:
            response = self._send(method, path, dict(params or {}), json, self.renew(token))
        return self._decode(response, f"{method} {path}")

    def _decode(self, response: httpx.Response, what: str) -> dict[str, Any]:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        if status == 401:
            raise AuthError(
                f"{self.name} refused the access token: {_fault_text(body) or response.text[:200]}",
                system=self.name,
                status=401,
            )
        if status == 429:
            raise RateLimitedError(
                f"{self.name} throttled {what}: {_fault_text(body) or 'ThrottleExceeded'}",
                system=self.name,
                retry_after=transport.retry_after(response) or THROTTLE_WAIT_S,
            )
        if status in (502, 504):
            raise RetryableError(f"{self.name} gateway answered {status} to {what}", system=self.name, status=status)
        if status >= 500:
            raise OutageError(f"{self.name} answered {status} to {what}", system=self.name, status=status)
        if not isinstance(body, dict):
            raise RetryableError(
                f"{self.name} answered {status} to {what} with a body that is not JSON", system=self.name
            )
        body = canonical_fault(body)
        fault = body.get("Fault")
        if status >= 400 or fault:
            errors = (fault or {}).get("Error") or [{}]
            code = str(errors[0].get("code") or status)
            raise fault_error(code, status, _fault_text(body) or f"HTTP {status}", what, self.name)
        return body


def fault_error(code: str, status: int, text: str, what: str, name: str = SYSTEM) -> Exception:
    """The typed error of a Fault with Intuit error ``code`` (answered with HTTP ``status``)."""
    if code == "5010":
        return RetryableError(f"{name} {what}: {text}", system=name, error_type="stale")
    if code == "610":
        return NotFoundError(f"{name} {what}: {text}", system=name)
    if code in ("3200", "3100"):
        return AuthError(f"{name} {what}: {text}", system=name)
    if code == "3001":
        return RateLimitedError(f"{name} {what}: {text}", system=name, retry_after=THROTTLE_WAIT_S)
    if status == 404:
        return PermanentError(f"{name}: nothing at {what} (404): check base_url and realm_id", system=name)
    return Fault(f"{name} refused {what}: {text}", code, name)


def canonical_fault(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with Intuit's occasional lower-case Fault (``{"fault": {"error": [{"message",
    "detail", "code"}], "type"}}``, recorded for a 6240) in the documented spelling."""
    low = body.get("fault")
    if "Fault" in body or not isinstance(low, dict):
        return body
    errors = [
        {"Message": e.get("message"), "Detail": e.get("detail"), "code": e.get("code"), "element": e.get("element")}
        for e in low.get("error") or []
        if isinstance(e, dict)
    ]
    return {**body, "Fault": {"Error": errors, "type": low.get("type")}}


def _fault_text(body: Any) -> str:
    if not isinstance(body, dict) or not isinstance(body.get("Fault"), dict):
        return ""
    parts = []
    for e in body["Fault"].get("Error") or []:
        if isinstance(e, dict):
            where = f" ({e['element']})" if e.get("element") else ""
            detail = e.get("Detail") or ""
            message = e.get("Message") or ""
            text = detail if message and message in detail else f"{message}: {detail}" if detail else message
            parts.append(f"{e.get('code')} {text}{where}")
    return "; ".join(parts)
