"""A small client for SAP Business One's Service Layer (``<base_url>/b1s/v1/``, or ``/b1s/v2/``).

One session per client, signed in lazily (``POST Login``) and reused: its ``B1SESSION`` and
``ROUTEID`` cookies go back together on every call (``ROUTEID`` keeps a load balancer sending us to
the node that holds the session). A 401 (the session timed out or was ended: code 301) signs in
again once and sends the call again; concurrent callers holding the same dead session sign in once
between them (each session may take a licence). A sign-in refused, also with the credentials read
again from the secret (``credentials``), is an ``AuthError``. ``close`` signs out.

Answers are decoded with every JSON number that has a fraction as a ``Decimal`` (money is
``Edm.Double`` in the metadata: no arithmetic on floats); Decimals sent become JSON numbers.

Errors, v1 ``{"error": {"code": <int>, "message": {"lang", "value"}}}`` or v2 ``{"error": {"code":
"<text>", "message": "<text>"}}``, become ``erpsync.errors`` types carrying SAP's ``code`` (an int
whenever it is a number) and message:

- 401 after the one new sign-in, or 403 -> ``Unauthorised`` (an ``AuthError``)
- 404 -> ``Missing`` (a ``NotFoundError``)
- code -10 (already exists) -> ``AlreadyExists``; any other 4xx -> ``Refused`` (``ValidationFailed``)
- 429 -> ``RateLimitedError``; 503 -> ``OutageError``; other 5xx -> ``RetryableError`` with the
  status (a 502/504 may have been applied); transport errors as ``systems.http`` types them.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx

from erpsync.errors import (
    AuthError,
    NotFoundError,
    OutageError,
    RateLimitedError,
    RetryableError,
    SyncError,
    ValidationFailed,
)
from erpsync.systems import http as transport
from erpsync.systems.ports import Deadline, Gate

SYSTEM = "sap_b1"
SESSION_COOKIE, ROUTE_COOKIE = "B1SESSION", "ROUTEID"
Code = int | str | None
Key = int | str


class Refused(ValidationFailed):
    """The Service Layer refused the request (a 4xx); ``code`` is SAP's error code."""

    def __init__(self, message: str, *, code: Code, status: int, system: str = SYSTEM) -> None:
        super().__init__(message, system=system)
        self.code, self.status = code, status


class AlreadyExists(Refused):
    """Code -10: the record (an item code, a business partner code) is already there."""

    error_type = "already_exists"


class Missing(NotFoundError):
    """404: nothing has that key (SAP's code -2028)."""

    def __init__(self, message: str, *, code: Code, system: str = SYSTEM) -> None:
        super().__init__(message, system=system)
        self.code = code


class Unauthorised(AuthError):
    """The sign-in or the session was refused (401, code 301 for a dead session), or 403."""

    def __init__(self, message: str, *, code: Code, status: int, system: str = SYSTEM) -> None:
        super().__init__(message, system=system, status=status)
        self.code = code


@dataclass(frozen=True)
class Session:
    id: str
    route: str | None
    timeout_min: int | None

    def cookie(self) -> str:
        parts = [f"{SESSION_COOKIE}={self.id}"]
        if self.route:
            parts.append(f"{ROUTE_COOKIE}={self.route}")
        return "; ".join(parts)


def literal(value: Key) -> str:
    """An OData literal: ``12`` for an int, ``'O''Brien'`` for text."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"not a key or filter value: {value!r}")
    return str(value) if isinstance(value, int) else "'" + value.replace("'", "''") + "'"


def decode(response: httpx.Response) -> Any:
    """An answer's JSON, fractions as ``Decimal``."""
    return json.loads(response.content, parse_float=Decimal)


def error_of(response: httpx.Response) -> tuple[Code, str]:
    """SAP's code and message in an error answer (v1 or v2), or (None, the raw text)."""
    try:
        body = decode(response)
    except ValueError:
        return None, response.text[:300] or response.reason_phrase
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, response.text[:300]
    code = error.get("code")
    if isinstance(code, str) and re.fullmatch(r"-?\d+", code.strip()):
        code = int(code)
    message = error.get("message")
    if isinstance(message, dict):
        message = message.get("value")
    return code if isinstance(code, int | str) else None, str(message or "")


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


class SapB1Client:
    """Signed-in access to one company database through its Service Layer; thread-safe."""

    def __init__(
        self,
        base_url: str,
        company_db: str,
        username: str,
        password: str,
        *,
        version: str = "v1",
        http: httpx.Client | None = None,
        timeout: float = 30.0,
        gate: Gate | None = None,
        deadline: Deadline | None = None,
        name: str = SYSTEM,
        credentials: Callable[[], tuple[str, str]] | None = None,
    ) -> None:
        if version not in ("v1", "v2"):
            raise ValueError(f"Service Layer version must be v1 or v2, not {version!r}")
        self.root = f"{base_url.rstrip('/')}/b1s/{version}/"
        self.version = version
        self.company_db, self.username, self.password = company_db, username, password
        self.http = http if http is not None else transport.new_client(timeout)
        self._own_http = http is None
        self.timeout, self.gate, self.deadline, self.name = timeout, gate, deadline, name
        self.credentials = credentials
        """(username, password) as the secret holds them now, read again when a sign-in is refused."""
        self.requests_made = 0
        self.logins = 0
        self._session: Session | None = None
        self._count_lock = threading.Lock()
        self._sign_in_lock = threading.Lock()

    # -- session -------------------------------------------------------------------------------

    def session(self) -> Session:
        """The live session, signed in on first use."""
        with self._sign_in_lock:
            if self._session is None:
                self._session = self._sign_in()
            return self._session

    def _renew(self, dead: Session) -> Session:
        """A new session in place of ``dead``; callers that saw the same dead one share one sign-in."""
        with self._sign_in_lock:
            if self._session is None or self._session == dead:
                self._session = self._sign_in()
            return self._session

    def _sign_in(self) -> Session:
        body = {"CompanyDB": self.company_db, "UserName": self.username, "Password": self.password}
        response = self._send("POST", self.root + "Login", json_body=body)
        if response.status_code in (400, 401, 403):
            fresh = self.credentials() if self.credentials is not None else None
            if fresh is not None and fresh != (self.username, self.password):
                self.username, self.password = fresh  # the secret changed: once more with it
                return self._sign_in()
            code, message = error_of(response)
            raise Unauthorised(
                f"{self.name}: Login refused ({code}): {message}",
                code=code,
                status=response.status_code,
                system=self.name,
            )
        if response.status_code >= 300:
            raise self._error(response, "Login")
        try:
            answer = decode(response)
        except ValueError:
            answer = None
        session_id = (answer or {}).get("SessionId") if isinstance(answer, dict) else None
        session_id = session_id or response.cookies.get(SESSION_COOKIE)
        if not session_id:
            raise RetryableError(f"{self.name} answered Login without a session id", system=self.name)
        timeout = answer.get("SessionTimeout") if isinstance(answer, dict) else None
        with self._count_lock:
            self.logins += 1
        return Session(
            str(session_id), response.cookies.get(ROUTE_COOKIE), timeout if isinstance(timeout, int) else None
        )

    def close(self) -> None:
        """Sign out (frees the licence) and close our own HTTP client."""
        with self._sign_in_lock:
            session, self._session = self._session, None
        if session is not None:
            with contextlib.suppress(RetryableError):
                self._send("POST", self.root + "Logout", session=session)
        if self._own_http:
            self.http.close()

    # -- plumbing ------------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        url: str,
        *,
        session: Session | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        with self._count_lock:
            self.requests_made += 1
        sent = dict(headers or {})
        if session is not None:
            sent["Cookie"] = session.cookie()
        content = None
        if json_body is not None:
            content = json.dumps(json_body, default=_json_default).encode()
            sent["Content-Type"] = "application/json"
        timeout = self.deadline.timeout(self.timeout, self.name, method) if self.deadline else self.timeout
        return transport.send(
            self.http,
            method,
            url,
            system=self.name,
            timeout=timeout,
            gate=self.gate,
            deadline=self.deadline,
            content=content,
            headers=sent,
        )

    def url(self, path: str, query: Mapping[str, Any] | None = None) -> str:
        """``path`` (relative to the service root, as a ``nextLink`` is, or absolute) with ``query``."""
        url = str(httpx.URL(self.root).join(path))
        if query:
            url += ("&" if "?" in url else "?") + "&".join(
                f"{quote(k, safe='$')}={quote(str(v), safe=chr(39) + '$,/():*')}" for k, v in query.items()
            )
        return url

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        what: str = "",
    ) -> httpx.Response:
        """One call in the session; signs in again once on 401. Raises the typed error of a failure."""
        url = self.url(path, query)
        what = what or f"{method} {path}"
        session = self.session()
        response = self._send(method, url, session=session, json_body=json, headers=headers)
        if response.status_code == 401:
            session = self._renew(session)
            response = self._send(method, url, session=session, json_body=json, headers=headers)
        if response.status_code >= 400:
            raise self._error(response, what)
        return response

    def _error(self, response: httpx.Response, what: str) -> SyncError:
        status = response.status_code
        code, message = error_of(response)
        text = f"{self.name} {status} on {what}: {message}" + (f" (SAP code {code})" if code is not None else "")
        retry_after = transport.retry_after(response)
        if status == 429:
            return RateLimitedError(text, system=self.name, retry_after=retry_after, status=status)
        if status == 503:
            return OutageError(text, system=self.name, retry_after=retry_after, status=status)
        if status >= 500:
            return RetryableError(text, system=self.name, retry_after=retry_after, status=status)
        if status in (401, 403):
            return Unauthorised(text, code=code, status=status, system=self.name)
        if status == 404:
            return Missing(text, code=code, system=self.name)
        if code == -10:
            return AlreadyExists(text, code=code, status=status, system=self.name)
        return Refused(text, code=code, status=status, system=self.name)

    # -- API -------------------------------------------------------------------------------------

    def get(self, entity_set: str, key: Key, *, select: list[str] | None = None) -> dict[str, Any]:
        """One record by key (``Orders(12)``, ``BusinessPartners('C001')``)."""
        query = {"$select": ",".join(select)} if select else None
        path = f"{entity_set}({literal(key)})"
        record = decode(self.request("GET", path, query=query))
        if not isinstance(record, dict):
            raise RetryableError(f"{self.name} answered {path} with no record", system=self.name)
        return record

    def pages(
        self,
        entity_set: str,
        *,
        filter: str | None = None,
        select: list[str] | None = None,
        orderby: str | None = None,
        top: int | None = None,
        page_size: int | None = None,
        case_insensitive: bool = False,
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of records, following ``odata.nextLink`` (``@odata.nextLink`` on v2) as SAP writes it."""
        options = {"$filter": filter, "$select": ",".join(select or []) or None, "$orderby": orderby, "$top": top}
        query = {k: v for k, v in options.items() if v is not None}
        headers = {"Prefer": f"odata.maxpagesize={page_size}"} if page_size else {}
        if case_insensitive:
            headers["B1S-CaseInsensitive"] = "true"
        path: str | None = entity_set
        while path is not None:
            answer = decode(self.request("GET", path, query=query, headers=headers, what=f"GET {entity_set}"))
            rows = answer.get("value") if isinstance(answer, dict) else None
            if not isinstance(rows, list):
                raise RetryableError(f"{self.name} answered GET {entity_set} without a value list", system=self.name)
            yield rows
            link = answer.get("odata.nextLink") or answer.get("@odata.nextLink")
            path, query = (str(link), {}) if link else (None, {})

    def rows(self, entity_set: str, **options: Any) -> Iterator[dict[str, Any]]:
        """``pages`` flattened."""
        for page in self.pages(entity_set, **options):
            yield from page

    def create(self, entity_set: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST a new record; the record as created (never ``return-no-content``: the answer carries
        what SAP numbered, such as ``DocEntry`` and each line's ``LineNum``)."""
        record = decode(self.request("POST", entity_set, json=dict(body), what=f"POST {entity_set}"))
        if not isinstance(record, dict):
            raise RetryableError(f"{self.name} answered POST {entity_set} with no record", system=self.name)
        return record

    def action(self, entity_set: str, key: Key, name: str) -> None:
        """POST a bound action without parameters (``Orders(12)/Cancel``)."""
        path = f"{entity_set}({literal(key)})/{name}"
        self.request("POST", path, what=f"POST {path}")

    def update(self, entity_set: str, key: Key, body: Mapping[str, Any], *, replace_collections: bool = False) -> None:
        """PATCH a record; collections merge row by row unless ``replace_collections``."""
        headers = {"B1S-ReplaceCollectionsOnPatch": "true"} if replace_collections else None
        path = f"{entity_set}({literal(key)})"
        self.request("PATCH", path, json=dict(body), headers=headers, what=f"PATCH {path}")

    def delete(self, entity_set: str, key: Key) -> None:
        path = f"{entity_set}({literal(key)})"
        self.request("DELETE", path, what=f"DELETE {path}")
