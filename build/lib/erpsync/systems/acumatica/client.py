"""A small client for Acumatica's contract-based REST API (endpoint Default/24.200.001).

An optional ``Gate`` (shared rate limiter) is held around every request and told about 429s.
One cookie session per client, signed in lazily and reused across calls (Lambda keeps the
client between invocations, so one sign-in per worker); a 401 signs in again once. Every
failure becomes a typed error of ``erpsync.errors``:

- transport errors and timeouts -> ``RetryableError`` (connect errors and 503 -> ``OutageError``)
- 429 -> ``RateLimitedError`` (``retry_after`` from ``Retry-After``); other 5xx -> ``RetryableError``
- 422, or a 200 whose record carries ``error``s -> ``ValidationFailed`` with every field error,
  or ``UnknownItemError`` when an ``InventoryID`` cannot be found
- 404 -> ``NotFoundError``; 412 -> ``AlreadyExists`` (for ``If-None-Match: *``) or
  ``PreconditionFailed``; a sign-in refused also with the credentials read again from the secret
  (``credentials``) -> ``AuthError`` (the system's trouble, not the record's)
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx

from erpsync.errors import (
    AuthError,
    NotFoundError,
    OutageError,
    PermanentError,
    RateLimitedError,
    RetryableError,
    UnknownItemError,
    ValidationFailed,
)
from erpsync.systems import http as transport
from erpsync.systems.ports import Deadline, Gate

SYSTEM = "acumatica"
_SYSTEM_PROPS = {"id", "rowNumber", "note", "custom", "_links", "error", "delete", "files"}


class PreconditionFailed(PermanentError):
    """412: ``If-Match`` / ``If-None-Match`` did not hold."""

    error_type = "precondition_failed"


class AlreadyExists(PreconditionFailed):
    """412 on an insert-only PUT (``If-None-Match: *``): the record is already there."""

    error_type = "already_exists"


def wrap(plain: Mapping[str, Any]) -> dict[str, Any]:
    """``{"A": 1, "B": {"C": 2}, "L": [{"D": 3}]}`` as Acumatica's ``{"A": {"value": 1}, ...}``.

    Nested mappings are linked entities, lists are details; system properties (``id``,
    ``delete``, ``note``, ``custom``) pass through; ``None`` values are left out; Decimals become
    numbers.
    """
    out: dict[str, Any] = {}
    for key, value in plain.items():
        if value is None:
            continue
        if key in _SYSTEM_PROPS:
            out[key] = value
        elif isinstance(value, Mapping):
            out[key] = dict(value) if "value" in value else wrap(value)
        elif isinstance(value, list | tuple):
            out[key] = [wrap(item) for item in value]
        else:
            out[key] = {"value": float(value) if isinstance(value, Decimal) else value}
    return out


def unwrap(record: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of ``wrap``: ``{"A": {"value": 1}}`` -> ``{"A": 1}``; ``id`` kept, links dropped."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key in ("_links", "rowNumber", "custom", "note", "error"):
            continue
        if isinstance(value, Mapping):
            out[key] = value.get("value") if "value" in value else unwrap(value)
        elif isinstance(value, list):
            out[key] = [unwrap(item) for item in value if isinstance(item, Mapping)]
        else:
            out[key] = value
    return out


def field_errors(record: Any, path: str = "") -> list[tuple[str, Any, str]]:
    """Every ``(field path, value, error)`` in a returned record, the top-level one included."""
    out: list[tuple[str, Any, str]] = []
    if isinstance(record, Mapping):
        for key, value in record.items():
            if key == "error" and isinstance(value, str) and value:
                out.append((path or "record", record.get("value"), value))
            elif isinstance(value, Mapping | list):
                out.extend(field_errors(value, f"{path}/{key}" if path else key))
    elif isinstance(record, list):
        for i, item in enumerate(record):
            out.extend(field_errors(item, f"{path}[{i}]"))
    return out


def _raise_for_record(record: Any, what: str) -> None:
    errors = field_errors(record)
    if not errors:
        return
    detail = "; ".join(f"{p}={v!r}: {e}" if p != "record" else e for p, v, e in errors)
    message = f"Acumatica rejected {what}: {detail}"
    for p, v, e in errors:
        if p.endswith("InventoryID") and "cannot be found" in e:
            raise UnknownItemError(f"unknown item {v!r}: {message}", system=SYSTEM)
    raise ValidationFailed(message, system=SYSTEM)


class AcumaticaClient:
    """Signed-in access to one Acumatica tenant; thread-safe sign-in, counted requests."""

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        company: str = "",
        branch: str = "",
        *,
        endpoint: str = "Default/24.200.001",
        http: httpx.Client | None = None,
        timeout: float = 30.0,
        poll_interval: float = 1.0,
        max_polls: int = 120,
        gate: Gate | None = None,
        deadline: Deadline | None = None,
        name: str = SYSTEM,
        credentials: Callable[[], tuple[str, str]] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.deadline = deadline
        self.name = name
        """The connection this client serves: named in its errors, so breakers and gates are per connection."""
        self.username, self.password, self.company, self.branch = username, password, company, branch
        self.endpoint = endpoint.strip("/")
        self.http = http if http is not None else transport.new_client(timeout)
        self._own_http = http is None
        self.timeout = timeout
        self.poll_interval, self.max_polls = poll_interval, max_polls
        self.gate = gate
        self.credentials = credentials
        """(username, password) as the secret holds them now, read again when a sign-in is refused."""
        self.requests_made = 0
        self.logins = 0
        self._signed_in = False
        self._lock = threading.Lock()
        self._sign_in_lock = threading.Lock()

    # -- plumbing ------------------------------------------------------------------------------

    @property
    def entity_url(self) -> str:
        return f"{self.base_url}/entity/{self.endpoint}"

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        with self._lock:
            self.requests_made += 1
        timeout = self.deadline.timeout(self.timeout, self.name, method) if self.deadline else self.timeout
        return transport.send(
            self.http, method, url, system=self.name, timeout=timeout, gate=self.gate, deadline=self.deadline, **kwargs
        )

    def login(self) -> None:
        """Sign in (cookie session)."""
        body = {"name": self.username, "password": self.password}
        if self.company:
            body["company"] = self.company
        if self.branch:
            body["branch"] = self.branch
        response = self._send("POST", f"{self.base_url}/entity/auth/login", json=body)
        if _refused(response):
            fresh = self.credentials() if self.credentials is not None else None
            if fresh is not None and fresh != (self.username, self.password):
                self.username, self.password = fresh  # the secret changed: once more with it
                return self.login()
            raise AuthError(f"Acumatica sign-in refused: {_message(response)}", system=self.name)
        if response.status_code >= 300:
            self._raise(response, "sign-in")
        self._signed_in = True
        self.logins += 1

    def _ensure_login(self) -> None:
        if self._signed_in:
            return
        with self._sign_in_lock:
            if not self._signed_in:
                self.login()

    def close(self) -> None:
        """Sign out (frees the licence seat) and close our own HTTP client."""
        if self._signed_in:
            self._signed_in = False
            with contextlib.suppress(RetryableError):
                self._send("POST", f"{self.base_url}/entity/auth/logout", headers={"Content-Length": "0"})
        if self._own_http:
            self.http.close()

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
        """One signed-in call (``path`` relative to the endpoint, or absolute); signs in again once on 401."""
        url = path if path.startswith(("http://", "https://")) else f"{self.entity_url}/{path.lstrip('/')}"
        if query:
            url += "?" + _query_string(query)
        self._ensure_login()
        response = self._send(method, url, json=json, headers=dict(headers or {}))
        if response.status_code == 401:
            self._signed_in = False
            self._ensure_login()
            response = self._send(method, url, json=json, headers=dict(headers or {}))
            if response.status_code == 401:
                raise AuthError(f"Acumatica refused the session: {_message(response)}", system=self.name)
        if response.status_code >= 400:
            self._raise(response, what or f"{method} {path}")
        return response

    def _raise(self, response: httpx.Response, what: str) -> None:
        status = response.status_code
        message = f"Acumatica {status} on {what}: {_message(response)}"
        if status == 429:
            raise RateLimitedError(
                message, system=self.name, retry_after=transport.retry_after(response), status=status
            )
        if status == 503:
            raise OutageError(message, system=self.name, retry_after=transport.retry_after(response), status=status)
        if status >= 500:
            raise RetryableError(message, system=self.name, retry_after=transport.retry_after(response), status=status)
        if status == 422:
            try:
                body = response.json()
            except ValueError:
                body = None
            _raise_for_record(body, what)
            raise ValidationFailed(message, system=self.name)
        if status == 404:
            raise NotFoundError(message, system=self.name)
        if status == 412:
            raise PreconditionFailed(message, system=self.name)
        if status in (401, 403):
            raise AuthError(message, system=self.name)
        raise ValidationFailed(message, system=self.name)

    # -- API -----------------------------------------------------------------------------------

    def get(
        self,
        entity: str,
        key_or_id: str | Sequence[str] | None = None,
        *,
        filter: str | None = None,
        expand: str | Sequence[str] | None = None,
        select: str | Sequence[str] | None = None,
        top: int | None = None,
        skip: int | None = None,
    ) -> Any:
        """One record (by key values or id) or a list of records (with the query options)."""
        path = entity
        if key_or_id is not None:
            keys = [key_or_id] if isinstance(key_or_id, str) else list(key_or_id)
            path += "".join("/" + quote(str(k), safe="") for k in keys)
        query = _options(filter=filter, expand=expand, select=select, top=top, skip=skip)
        return self.request("GET", path, query=query, what=f"GET {path}").json()

    def get_list(self, entity: str, **options: Any) -> list[dict[str, Any]]:
        """``get`` without a key, typed as a list."""
        rows = self.get(entity, None, **options)
        if not isinstance(rows, list):
            raise ValidationFailed(f"Acumatica returned {type(rows).__name__} for a list of {entity}", system=self.name)
        return rows

    def get_record(self, entity: str, key_or_id: str | Sequence[str], **options: Any) -> dict[str, Any]:
        """``get`` with a key, typed as one record."""
        rec = self.get(entity, key_or_id, **options)
        if not isinstance(rec, dict):
            raise ValidationFailed(f"Acumatica returned {type(rec).__name__} for one {entity}", system=self.name)
        return rec

    def put(
        self,
        entity: str,
        record: Mapping[str, Any],
        *,
        expand: str | Sequence[str] | None = None,
        select: str | Sequence[str] | None = None,
        if_none_match: bool = False,
        if_match: bool = False,
    ) -> dict[str, Any]:
        """Insert or update; the saved record. A 412 on an insert-only put is ``AlreadyExists``."""
        headers = {"If-None-Match": "*"} if if_none_match else {"If-Match": "*"} if if_match else {}
        query = _options(expand=expand, select=select)
        try:
            response = self.request(
                "PUT", entity, query=query, json=dict(record), headers=headers, what=f"PUT {entity}"
            )
        except PreconditionFailed as exc:
            if if_none_match:
                raise AlreadyExists(str(exc), system=self.name) from exc
            raise
        saved = response.json()
        _raise_for_record(saved, f"PUT {entity}")
        if not isinstance(saved, dict):
            raise ValidationFailed(f"Acumatica returned no record for PUT {entity}", system=self.name)
        return saved

    def action(
        self,
        entity: str,
        action: str,
        entity_keys: Mapping[str, Any],
        parameters: Mapping[str, Any] | None = None,
    ) -> None:
        """Run an action; waits for a long-running one (202 + Location) until it answers 204."""
        body = {"entity": wrap(entity_keys), "parameters": wrap(parameters or {})}
        response = self.request("POST", f"{entity}/{action}", json=body, what=f"{entity}/{action}")
        if response.status_code != 202:
            return
        location = response.headers.get("Location")
        if not location:
            return
        url = str(httpx.URL(self.base_url + "/").join(location))
        for attempt in range(self.max_polls):
            status = self.request("GET", url, what=f"{entity}/{action} status")
            if status.status_code == 204:
                return
            if attempt + 1 < self.max_polls and self.poll_interval:
                time.sleep(self.poll_interval)
        raise RetryableError(
            f"Acumatica {entity}/{action} still running after {self.max_polls} polls", system=self.name
        )

    wrap = staticmethod(wrap)
    unwrap = staticmethod(unwrap)


def _options(**options: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in options.items():
        if value is None:
            continue
        if isinstance(value, list | tuple):
            value = ",".join(value)
        out[f"${name}"] = str(value)
    return out


def _query_string(query: Mapping[str, Any]) -> str:
    # '+' must travel as %2B (datetimeoffset'...+00:00'); keep the OData punctuation readable.
    return "&".join(f"{quote(k, safe='$')}={quote(str(v), safe=chr(39) + '$,/():*')}" for k, v in query.items())


def _refused(response: httpx.Response) -> bool:
    """A sign-in refused for its credentials (Acumatica answers some with a 500 naming them)."""
    return response.status_code in (401, 403) or (response.status_code == 500 and "credential" in response.text.lower())


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(body, dict):
        parts = [str(body[k]) for k in ("message", "exceptionMessage", "error", "error_description") if body.get(k)]
        errors = field_errors(body)
        parts += [f"{p}: {e}" for p, _v, e in errors[:10]]
        if parts:
            return " | ".join(dict.fromkeys(parts))
    return response.text[:300]
