"""A small client for SAP S/4HANA's OData v2 A2X services (``<base_url>/<service>/``), one client
for every service of a connection (sales order, outbound delivery, billing document).

- Basic authentication on every request. A 401 reads the credentials again from the secret
  (``credentials``) and, when they changed, sends the request once more; else ``Unauthorised``.
- CSRF (SYSTEMS-NOTES §4.6): before the first write to a service, ``HEAD <service>/`` (``GET`` when
  the HEAD answers no token) with ``X-CSRF-Token: Fetch``; the token and the cookies of that
  answer go together on every write to that service (one token per service root). On exactly a
  403 with ``x-csrf-token: Required`` the token is fetched once more and the write sent once more;
  callers that saw the same dead token share one fetch. A write that got no answer (a transport
  error, 502 or 504) forgets the token, so the next write fetches a fresh one: the lost answer may
  have been the 403, and reads carry no token to tell.
- ETags are kept byte for byte and sent in ``If-Match``; ``update`` reads the entity again on a
  412 and sends once more with the new etag.
- Paging follows ``__next``. Decimals are strings in both directions (``odata_v2``).
- ``sap-message`` (a warning on a successful answer) is parsed and handed back with the answer;
  it never fails the call.

Errors, ``{"error": {"code": "SLS_LORD/033", "message": {"lang", "value"}, "innererror":
{"errordetails": [{"code", "message", "severity", …}]}}}``, become ``erpsync.errors`` types with
SAP's ``code`` (a string) and message, the first ``errordetails`` entry of severity ``error``
first, else ``message.value``:

- a 403 ``x-csrf-token: Required`` again with the fresh token -> ``RetryableError`` (``csrf``: not
  applied, and not the credentials' fault, so no breaker trips for it)
- 401 (after the one re-read of the secret) and any other 403 -> ``Unauthorised`` (an ``AuthError``)
- 404 -> ``Missing`` (a ``NotFoundError``); 412 after the one re-read -> ``RetryableError``
  (``conflict``: changed meanwhile again); any other 4xx -> ``Refused`` (``ValidationFailed``)
- 429 -> ``RateLimitedError``; 503 -> ``OutageError``; other 5xx -> ``RetryableError`` with the
  status (a 502/504 may have been applied); transport errors as ``systems.http`` types them.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
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
from erpsync.systems.sap_s4 import odata_v2

SYSTEM = "sap_s4"
CSRF = "X-CSRF-Token"
UNANSWERED = (502, 504)
"""A gateway's answer for a backend that never answered (the write may or may not be applied)."""
WRITES = frozenset({"POST", "PUT", "PATCH", "MERGE", "DELETE"})
_QUERY_SAFE = "'$,/():*;=@!"
"""Kept as they are in a query value (OData syntax); ``#``, ``&``, ``+``, space and the rest are
percent-encoded (a Magento number ``#1001`` must not end the URL)."""


class Refused(ValidationFailed):
    """S/4 refused the request (a 4xx); ``code`` is SAP's message id (``SLS_LORD/033``)."""

    def __init__(self, message: str, *, code: str | None, status: int, system: str = SYSTEM) -> None:
        super().__init__(message, system=system)
        self.code, self.status = code, status


class Missing(NotFoundError):
    """404: nothing has that key."""

    def __init__(self, message: str, *, code: str | None, system: str = SYSTEM) -> None:
        super().__init__(message, system=system)
        self.code = code


class Unauthorised(AuthError):
    """The user was refused (401 also with the secret read again, or a 403 that is not CSRF's)."""

    def __init__(self, message: str, *, code: str | None, status: int, system: str = SYSTEM) -> None:
        super().__init__(message, system=system, status=status)
        self.code = code


@dataclass(frozen=True)
class SapMessage:
    """One message of a ``sap-message`` header (the header's own and each of its ``details``)."""

    code: str
    message: str
    severity: str
    target: str = ""


@dataclass
class Answer:
    """A successful answer: the entity (``d`` unwrapped; {} for a 204), its etag verbatim, and the
    ``sap-message`` warnings that came with it."""

    entity: dict[str, Any]
    etag: str | None = None
    warnings: list[SapMessage] = field(default_factory=list)


@dataclass(frozen=True)
class Token:
    value: str
    cookies: tuple[tuple[str, str], ...]

    def cookie(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies)


def decode(response: httpx.Response) -> Any:
    """An answer's JSON (a number with a fraction, which S/4 does not send, as a Decimal)."""
    return json.loads(response.content, parse_float=Decimal)


def error_of(response: httpx.Response) -> tuple[str | None, str]:
    """SAP's code and message of an error answer: the first ``errordetails`` entry of severity
    ``error`` (its ``target``/``propertyref`` named before the message), else
    ``error.code``/``message.value``; (None, the raw text) when it is not SAP's."""
    try:
        body = decode(response)
    except ValueError:
        return None, response.text[:300] or response.reason_phrase
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, response.text[:300]
    inner = error.get("innererror")
    details = inner.get("errordetails") if isinstance(inner, dict) else None
    for detail in details if isinstance(details, list) else []:
        if isinstance(detail, dict) and str(detail.get("severity") or "").lower() == "error":
            code, text = detail.get("code"), str(detail.get("message") or "")
            where = str(detail.get("target") or detail.get("propertyref") or "")
            if where and where not in text:
                text = f"{where}: {text}"
            return (str(code) if code not in (None, "") else None), text
    message = error.get("message")
    if isinstance(message, dict):
        message = message.get("value")
    code = error.get("code")
    return (str(code) if code not in (None, "") else None), str(message or "")


def warnings_of(response: httpx.Response) -> list[SapMessage]:
    """The ``sap-message`` header's messages (itself, then its ``details``); unreadable -> one
    warning carrying the raw header, never an error."""
    raw = response.headers.get("sap-message")
    if not raw:
        return []
    try:
        message = json.loads(raw)
    except ValueError:
        return [SapMessage(code="", message=raw, severity="")]
    if not isinstance(message, dict):
        return [SapMessage(code="", message=raw, severity="")]
    found = []
    for m in [message, *(message.get("details") or [])]:
        if isinstance(m, dict) and (m.get("message") or m.get("code")):
            found.append(
                SapMessage(
                    code=str(m.get("code") or ""),
                    message=str(m.get("message") or ""),
                    severity=str(m.get("severity") or ""),
                    target=str(m.get("target") or ""),
                )
            )
    return found


def _csrf_refused(response: httpx.Response) -> bool:
    return response.status_code == 403 and response.headers.get(CSRF, "").strip().lower() == "required"


class S4Client:
    """Access to one S/4HANA system's OData v2 services; thread-safe."""

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        sap_client: str | None = None,
        http: httpx.Client | None = None,
        timeout: float = 30.0,
        gate: Gate | None = None,
        deadline: Deadline | None = None,
        name: str = SYSTEM,
        credentials: Callable[[], tuple[str, str]] | None = None,
    ) -> None:
        self.base = base_url.rstrip("/") + "/"
        self.username, self.password = username, password
        self.sap_client = sap_client
        self.http = http if http is not None else transport.new_client(timeout)
        self._own_http = http is None
        self.timeout, self.gate, self.deadline, self.name = timeout, gate, deadline, name
        self.credentials = credentials
        """(username, password) as the secret holds them now, read again when a request is refused."""
        self.requests_made = 0
        self.token_fetches = 0
        self._tokens: dict[str, Token] = {}
        self._lock = threading.Lock()
        self._fetch_lock = threading.Lock()

    def close(self) -> None:
        if self._own_http:
            self.http.close()

    # -- plumbing ------------------------------------------------------------------------------

    def root(self, service: str) -> str:
        """The service root, ``<base>/<service>/``."""
        return self.base + service.strip("/") + "/"

    def url(self, service: str, path: str, query: Mapping[str, Any] | None = None) -> str:
        """``path`` under the service root (an absolute ``__next`` is kept) with ``query``."""
        url = path if path.startswith(("http://", "https://")) else self.root(service) + path.lstrip("/")
        options = dict(query or {})
        if self.sap_client and "sap-client=" not in url:
            options.setdefault("sap-client", self.sap_client)
        if options:
            url += ("&" if "?" in url else "?") + "&".join(
                f"{quote(k, safe='$-')}={quote(str(v), safe=_QUERY_SAFE)}" for k, v in options.items()
            )
        return url

    def _authorization(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def _send(
        self, method: str, url: str, *, headers: Mapping[str, str] | None = None, json_body: Any = None
    ) -> httpx.Response:
        """One request with the credentials; a 401 sends it once more when the secret changed."""
        content = None
        sent = {"Accept": "application/json", **(headers or {})}
        if json_body is not None:
            content = json.dumps(json_body).encode()
            sent["Content-Type"] = "application/json"
        response = self._once(method, url, sent, content)
        if response.status_code == 401 and self.credentials is not None:
            fresh = self.credentials()
            if fresh != (self.username, self.password):
                self.username, self.password = fresh
                response = self._once(method, url, sent, content)
        return response

    def _once(self, method: str, url: str, headers: dict[str, str], content: bytes | None) -> httpx.Response:
        with self._lock:
            self.requests_made += 1
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
            headers={**headers, "Authorization": self._authorization()},
        )

    # -- CSRF ----------------------------------------------------------------------------------

    def token(self, service: str) -> Token:
        """The service's CSRF token and session cookies, fetched on first use."""
        with self._fetch_lock:
            held = self._tokens.get(service)
            if held is None:
                held = self._tokens[service] = self._fetch_token(service)
            return held

    def _renew(self, service: str, dead: Token) -> Token:
        """A new token in place of ``dead``; callers that saw the same dead one share one fetch."""
        with self._fetch_lock:
            held = self._tokens.get(service)
            if held is None or held == dead:
                held = self._tokens[service] = self._fetch_token(service)
            return held

    def _fetch_token(self, service: str) -> Token:
        """``HEAD <service>/`` with ``X-CSRF-Token: Fetch`` (``GET`` when the HEAD brings no token)."""
        url = self.url(service, "")
        response = None
        for method in ("HEAD", "GET"):
            response = self._send(method, url, headers={CSRF: "Fetch"})
            value = response.headers.get(CSRF, "")
            if response.status_code < 400 and value and value.lower() not in ("required", "fetch"):
                with self._lock:
                    self.token_fetches += 1
                return Token(value, tuple((c.name, c.value or "") for c in response.cookies.jar))
        assert response is not None
        if response.status_code >= 400:
            raise self._error(response, f"CSRF token fetch of {service}")
        raise RetryableError(f"{self.name} answered no CSRF token for {service}", system=self.name)

    # -- requests ------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        service: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        what: str = "",
    ) -> httpx.Response:
        """One call; a write carries the service's CSRF token and cookies and is sent once more
        after exactly a 403 ``x-csrf-token: Required``. Raises the typed error of a failure."""
        url = self.url(service, path, query)
        what = what or f"{method} {service}/{path}"
        if method.upper() not in WRITES:
            response = self._send(method, url, headers=headers, json_body=json)
        else:
            token = self.token(service)
            response = self._guarded_write(method, url, token, service, headers, json)
            if _csrf_refused(response):
                token = self._renew(service, token)
                response = self._guarded_write(method, url, token, service, headers, json)
                if _csrf_refused(response):  # a fresh token refused too: the gateway's trouble, not the user's
                    raise RetryableError(
                        f"{self.name} refused a fresh CSRF token on {what} (403 x-csrf-token: Required; "
                        "a load balancer without sticky sessions does this now and then)",
                        error_type="csrf",
                        system=self.name,
                        status=403,
                    )
        if response.status_code >= 400:
            raise self._error(response, what)
        return response

    def _guarded_write(
        self,
        method: str,
        url: str,
        token: Token,
        service: str,
        headers: Mapping[str, str] | None,
        json_body: Any,
    ) -> httpx.Response:
        """``_write``; a write that got no answer from the backend (a transport error, a 502 or 504)
        forgets the token: the answer never seen may have been a 403 ``Required`` (the token had
        expired), and since reads carry no token nothing else would ever tell. The next write
        fetches a fresh one (one ``HEAD``) instead of sending the dead token again and again."""
        try:
            response = self._write(method, url, token, headers, json_body)
        except (RetryableError, OutageError):
            self._forget(service, token)
            raise
        if response.status_code in UNANSWERED:
            self._forget(service, token)
        return response

    def _forget(self, service: str, dead: Token) -> None:
        with self._fetch_lock:
            if self._tokens.get(service) == dead:
                del self._tokens[service]

    def _write(
        self, method: str, url: str, token: Token, headers: Mapping[str, str] | None, json_body: Any
    ) -> httpx.Response:
        sent = {**(headers or {}), CSRF: token.value}
        if token.cookies:
            sent["Cookie"] = token.cookie()
        return self._send(method, url, headers=sent, json_body=json_body)

    def _error(self, response: httpx.Response, what: str) -> SyncError:
        status = response.status_code
        code, message = error_of(response)
        text = f"{self.name} {status} on {what}: {message}" + (f" (SAP code {code})" if code else "")
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
        if status == 412:
            return RetryableError(text, error_type="conflict", system=self.name, status=status)
        return Refused(text, code=code, status=status, system=self.name)

    # -- API -------------------------------------------------------------------------------------

    @staticmethod
    def key(entity_set: str, *values: str, **named: str) -> str:
        """``A_SalesOrder('4000043')``, or with several keys ``A_X(A='1',B='10')``."""
        if named:
            inner = ",".join(f"{k}={odata_v2.literal(v)}" for k, v in named.items())
        else:
            inner = ",".join(odata_v2.literal(v) for v in values)
        return f"{entity_set}({inner})"

    def get(
        self, service: str, path: str, *, select: list[str] | None = None, expand: list[str] | None = None
    ) -> Answer:
        """One entity (``A_SalesOrder('4000043')``) with its etag."""
        query = {"$format": "json"}
        if select:
            query["$select"] = ",".join(select)
        if expand:
            query["$expand"] = ",".join(expand)
        response = self.request("GET", service, path, query=query)
        entity = odata_v2.unwrap(decode(response))
        return Answer(entity, odata_v2.etag(entity, response.headers.get("ETag")), warnings_of(response))

    def pages(
        self,
        service: str,
        entity_set: str,
        *,
        filter: str | None = None,
        select: list[str] | None = None,
        expand: list[str] | None = None,
        orderby: str | None = None,
        top: int | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of entities, following ``__next`` as the server writes it."""
        options = {
            "$filter": filter,
            "$select": ",".join(select or []) or None,
            "$expand": ",".join(expand or []) or None,
            "$orderby": orderby,
            "$top": top,
            "$format": "json",
        }
        query: dict[str, Any] = {k: v for k, v in options.items() if v is not None}
        path: str | None = entity_set
        while path is not None:
            response = self.request("GET", service, path, query=query, what=f"GET {service}/{entity_set}")
            try:
                page = odata_v2.collection(decode(response))
            except ValueError as exc:
                raise RetryableError(f"{self.name} answered GET {entity_set}: {exc}", system=self.name) from exc
            yield page.rows
            path, query = (page.next, {}) if page.next else (None, {})
            if path is not None and not path.startswith(("http://", "https://")):
                path = str(httpx.URL(self.root(service)).join(path))

    def rows(self, service: str, entity_set: str, **options: Any) -> Iterator[dict[str, Any]]:
        """``pages`` flattened."""
        for page in self.pages(service, entity_set, **options):
            yield from page

    def create(self, service: str, entity_set: str, body: Mapping[str, Any]) -> Answer:
        """POST a new entity (a deep insert with its items); the entity as created."""
        response = self.request("POST", service, entity_set, json=dict(body), what=f"POST {entity_set}")
        try:
            entity = odata_v2.unwrap(decode(response))
        except ValueError as exc:
            raise RetryableError(f"{self.name} answered POST {entity_set}: {exc}", system=self.name) from exc
        return Answer(entity, odata_v2.etag(entity, response.headers.get("ETag")), warnings_of(response))

    def update(self, service: str, path: str, body: Mapping[str, Any], *, etag: str | None = None) -> Answer:
        """PATCH an entity with ``If-Match`` (its etag as read; read first when not given). A 412 (it
        changed meanwhile) reads it again and sends once more with the new etag."""
        current = etag if etag is not None else self.get(service, path).etag
        for attempt in range(2):
            headers = {"If-Match": current} if current else {}
            try:
                response = self.request("PATCH", service, path, json=dict(body), headers=headers)
            except RetryableError as exc:
                if exc.status != 412 or attempt:
                    raise
                current = self.get(service, path).etag
                continue
            return Answer({}, response.headers.get("ETag"), warnings_of(response))
        raise AssertionError("unreachable")

    def call(
        self, service: str, function: str, params: Mapping[str, str], *, etag: str | None = None, method: str = "POST"
    ) -> Answer:
        """A function import (``PostGoodsIssue?DeliveryDocument='80000001'``) with ``If-Match``
        when an etag is given; its result (``d``, or ``d.results`` as ``{"results": [...]}``)."""
        query = {k: odata_v2.literal(v) for k, v in params.items()}
        headers = {"If-Match": etag} if etag else {}
        response = self.request(method, service, function, query=query, headers=headers, what=f"{method} {function}")
        entity: dict[str, Any] = {}
        if response.content:
            try:
                entity = odata_v2.unwrap(decode(response))
            except ValueError:
                entity = {}
        return Answer(entity, response.headers.get("ETag"), warnings_of(response))
