"""The control API every simulator shares, under ``/_sim/``.

- ``GET /_sim/requests`` the requests received (method, path, query, status, ``received_at`` when
  it arrived and ``at`` when it was answered, in epoch seconds, the ``fault`` injected, the
  caller's ``agent`` (User-Agent)) and ``max_in_flight``; ``DELETE`` clears
- ``POST /_sim/reset`` forget all data, requests and faults
- ``POST /_sim/seed`` load data (each sim says what it takes)
- ``POST /_sim/answers`` queue recorded answers (below); ``GET`` lists those not yet served;
  ``DELETE`` forgets them
- ``POST /_sim/faults`` inject faults; ``GET`` shows them; ``DELETE`` clears them. Body fields,
  each optional: ``error_rate`` (5xx), ``throttle_rate`` (429), ``retry_after_s`` (sent with 429),
  ``timeout_rate`` (the request hangs ``timeout_s``, default 30 s, then fails 504), ``latency_ms``
  (added to every request), ``outage`` (true: every request fails 503), ``seed`` (for the dice),
  ``max_concurrent`` (more requests in flight at once get 429, like an ERP licence limit),
  ``lost_response_rate``, ``lost_response_paths`` and ``lost_response_mode`` (below).

Control requests are not counted, never fail, and never wait.

Recorded answers (``POST /_sim/answers`` with ``{"answers": [...]}``): a real system's answer,
recorded from its documentation or a live call, served byte for byte instead of the sim's own, so a
test sees erpsync handle exactly what the real API sends (a batch with per-item faults, a change
data capture with a deleted record, a fulfilment's userErrors). Each answer names the request it
answers: ``method``, ``path`` (exact) or ``path_regex``, and optionally ``body_contains`` (a text the
request body must contain, e.g. a GraphQL operation's name); ``status``, ``body`` (JSON, or text)
and ``headers`` say what to answer; ``times`` (default 1) how often. The first queued answer that
matches a request is served and counted down; the sim's app never sees that request (nothing is
applied), and the request log records it with ``fault`` ``"recorded"``. Faults are rolled first.

Lost responses (``lost_response_rate``, 0..1): a write (POST, PUT, PATCH or DELETE, except sign-in
and sign-out requests: paths with an ``auth``, ``login``, ``logout`` or ``token`` segment) that no
other fault stopped is handed to the app and fully applied, then its answer is thrown away, as when
a gateway gives up on a slow backend or a connection dies after the commit. A client that retries
blindly writes twice. The app's answer is lost whatever it was: a refusal (S/4HANA's 403 for an
expired CSRF token, say) is lost as well, and the client never learns of it.
``lost_response_paths`` (``{"<path regex, matched in full>": rate}``) gives the writes whose path
matches a rate of their own instead (the first that matches; e.g. every order creation loses its
answer while other writes keep ``lost_response_rate``). ``lost_response_mode`` says what the client
gets instead:

- ``"504"`` (the default): 504 Gateway Timeout with the sim's own error body.
- ``"drop"``: no HTTP answer at all. Under a real server (uvicorn, h11 or httptools) the connection
  is closed before a byte of the response is written; httpx raises ``RemoteProtocolError`` ("Server
  disconnected without sending a response."). An in-process ASGI transport (``httpx.ASGITransport``,
  Starlette's ``TestClient``) has no connection to close: there the app raises
  :class:`ResponseDropped`, a ``httpx.RemoteProtocolError``, which those transports pass on to the
  caller (with their default ``raise_app_exceptions``/``raise_server_exceptions``).

The request log records such a request with ``fault`` ``"lost_response"``, ``status`` what the client
got (504, or 0 for a dropped connection) and ``applied_status`` the app's real answer that was
thrown away (for every request the app answered, ``applied_status`` is that answer's status; None
when a fault answered instead). The lost-response dice are their own random stream (seeded from
``seed`` too), rolled once for every write whatever else happens to it: turning lost responses on
does not change which requests the other faults hit for a given seed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

CONTROL_PREFIX = "/_sim/"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SIGN_IN_SEGMENTS = frozenset({"auth", "login", "logout", "token"})
"""A write whose path has one of these segments signs in or out: lost responses spare it."""


class Faults(BaseModel):
    """Faults a sim injects; every field optional."""

    model_config = ConfigDict(extra="forbid")

    error_rate: float = Field(0.0, ge=0, le=1)
    throttle_rate: float = Field(0.0, ge=0, le=1)
    retry_after_s: float | None = Field(None, ge=0)
    timeout_rate: float = Field(0.0, ge=0, le=1)
    timeout_s: float = Field(30.0, ge=0)
    latency_ms: float = Field(0.0, ge=0)
    outage: bool = False
    max_concurrent: int | None = Field(None, ge=1)
    lost_response_rate: float = Field(0.0, ge=0, le=1)
    lost_response_paths: dict[str, float] = Field(default_factory=dict)
    """Path regex (matched in full) -> the lost-response rate of the writes it matches."""
    lost_response_mode: Literal["504", "drop"] = "504"
    seed: int | None = None

    def model_post_init(self, context: Any, /) -> None:
        for pattern, rate in self.lost_response_paths.items():
            if not 0 <= rate <= 1:
                raise ValueError(f"lost_response_paths[{pattern!r}]: {rate} is not a rate between 0 and 1")
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"lost_response_paths: {pattern!r} is not a regular expression: {exc}") from exc

    def lost_rate(self, path: str) -> float:
        """The lost-response rate of a write to ``path``."""
        for pattern, rate in self.lost_response_paths.items():
            if re.fullmatch(pattern, path):
                return rate
        return self.lost_response_rate


class RecordedAnswer(BaseModel):
    """One recorded answer to serve instead of the sim's own (``POST /_sim/answers``)."""

    model_config = ConfigDict(extra="forbid")

    method: str = Field(pattern=r"^[A-Za-z]+$")
    path: str | None = None
    path_regex: str | None = None
    body_contains: str | None = None
    status: int = Field(200, ge=100, le=599)
    body: Any = None
    headers: dict[str, str] = Field(default_factory=dict)
    times: int = Field(1, ge=1)

    def model_post_init(self, context: Any, /) -> None:
        if (self.path is None) == (self.path_regex is None):
            raise ValueError("give one of path or path_regex")
        if self.path_regex is not None:
            try:
                re.compile(self.path_regex)
            except re.error as exc:
                raise ValueError(f"path_regex {self.path_regex!r} is not a regular expression: {exc}") from exc

    def matches(self, method: str, path: str, body: bytes) -> bool:
        if method.upper() != self.method.upper():
            return False
        if self.path is not None and path != self.path:
            return False
        if self.path_regex is not None and not re.fullmatch(self.path_regex, path):
            return False
        return self.body_contains is None or self.body_contains.encode() in body

    def response(self) -> Response:
        if isinstance(self.body, str):
            return Response(self.body, status_code=self.status, headers=self.headers)
        return JSONResponse(self.body, status_code=self.status, headers=self.headers)


class RecordedAnswers(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answers: list[RecordedAnswer]


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: str
    status: int
    at: float
    fault: str | None = None
    received_at: float = 0.0
    agent: str = ""
    applied_status: int | None = None
    """The app's answer (None: a fault answered); differs from ``status`` when the answer was lost."""

    def as_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "status": self.status,
            "at": self.at,
            "fault": self.fault,
            "received_at": self.received_at,
            "agent": self.agent,
            "applied_status": self.applied_status,
        }


def is_lossy_write(method: str, path: str) -> bool:
    """A write whose response a lost-response fault may throw away (not a sign-in or sign-out)."""
    if method.upper() not in WRITE_METHODS:
        return False
    return not SIGN_IN_SEGMENTS.intersection(part.lower() for part in path.split("/"))


class ResponseDropped(httpx.RemoteProtocolError):
    """Raised by the app for a dropped response (``lost_response_mode`` "drop").

    Under a real server the connection closes without an answer and the client sees its own
    transport error; in-process ASGI transports hand this one to the caller instead.
    """

    def __init__(self) -> None:
        super().__init__("Server disconnected without sending a response.")


class DroppedResponse(Response):
    """No answer: the connection is closed before a byte of HTTP is written.

    An ASGI app cannot close its connection, and a server answers 500 for an app that raises
    before starting its response. So this response starts with a header no HTTP server can put on
    the wire (a value with CR LF): uvicorn (h11 and httptools alike) marks the response started,
    refuses the header before writing anything, and when the app then raises it closes the
    connection, the way it does for an app that fails mid-response. Starlette's error middleware
    sees a started response and sends no 500 either.
    """

    def __init__(self) -> None:
        super().__init__(status_code=504)  # never sent; what an in-process transport not raising shows

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = {"type": "http.response.start", "status": 504, "headers": [(b"x-sim-fault", b"lost\r\nresponse")]}
        with contextlib.suppress(Exception):
            await send(start)
        raise ResponseDropped


class _QuietDrops(logging.Filter):
    """Keeps uvicorn from logging a traceback for every dropped response (they are on purpose)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
            exc = exc.exceptions[0]
        return not isinstance(exc, ResponseDropped)


logging.getLogger("uvicorn.error").addFilter(_QuietDrops())


@dataclass
class SimControl:
    """Request log and fault dice shared by a sim's routes and middleware."""

    reset_data: Callable[[], None]
    seed_data: Callable[[dict[str, Any]], dict[str, Any]]
    error_body: Callable[[int, str], dict[str, Any]]
    requests: list[RecordedRequest] = field(default_factory=list)
    faults: Faults = field(default_factory=Faults)
    in_flight: int = 0
    max_in_flight: int = 0
    _rng: random.Random = field(default_factory=random.Random)
    _lost_rng: random.Random = field(default_factory=random.Random)
    """The lost-response dice: a stream of their own, so the other faults' rolls do not shift."""
    answers: list[RecordedAnswer] = field(default_factory=list)
    """Recorded answers still to serve, in the order queued."""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def set_faults(self, faults: Faults) -> None:
        self.faults = faults
        self._rng = random.Random(faults.seed)
        self._lost_rng = random.Random(None if faults.seed is None else f"lost_response:{faults.seed}")

    def routes(self) -> list[Route]:
        return [
            Route("/_sim/requests", self._requests, methods=["GET", "DELETE"]),
            Route("/_sim/reset", self._reset, methods=["POST"]),
            Route("/_sim/seed", self._seed, methods=["POST"]),
            Route("/_sim/faults", self._faults, methods=["GET", "POST", "DELETE"]),
            Route("/_sim/answers", self._answers, methods=["GET", "POST", "DELETE"]),
        ]

    async def _answers(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                queued = RecordedAnswers.model_validate(await request.json()).answers
            except (ValueError, ValidationError) as exc:
                return JSONResponse({"error": f"bad answers: {exc}"}, status_code=400)
            with self._lock:
                self.answers.extend(queued)
        elif request.method == "DELETE":
            with self._lock:
                self.answers.clear()
            return Response(status_code=204)
        with self._lock:
            rows = [a.model_dump() for a in self.answers]
        return JSONResponse({"answers": rows})

    def _recorded(self, method: str, path: str, body: bytes) -> Response | None:
        """The first queued recorded answer for this request (counted down), if any."""
        with self._lock:
            for i, answer in enumerate(self.answers):
                if answer.matches(method, path, body):
                    answer.times -= 1
                    if answer.times == 0:
                        del self.answers[i]
                    return answer.response()
        return None

    async def _requests(self, request: Request) -> Response:
        if request.method == "DELETE":
            with self._lock:
                self.requests.clear()
                self.max_in_flight = 0
            return Response(status_code=204)
        with self._lock:
            rows = [r.as_json() for r in self.requests]
            peak = self.max_in_flight
        return JSONResponse({"requests": rows, "count": len(rows), "max_in_flight": peak})

    async def _reset(self, request: Request) -> Response:
        self.reset_data()
        with self._lock:
            self.requests.clear()
            self.max_in_flight = 0
        self.set_faults(Faults())
        with self._lock:
            self.answers.clear()
        return Response(status_code=204)

    async def _seed(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "seed body is not JSON"}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "seed body must be a JSON object"}, status_code=400)
        try:
            return JSONResponse(self.seed_data(body))
        except (KeyError, ValueError, TypeError) as exc:
            return JSONResponse({"error": f"bad seed: {exc}"}, status_code=400)

    async def _faults(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.set_faults(Faults())
            return Response(status_code=204)
        if request.method == "POST":
            try:
                self.set_faults(Faults.model_validate(await request.json()))
            except (ValueError, ValidationError) as exc:
                return JSONResponse({"error": f"bad faults: {exc}"}, status_code=400)
        return JSONResponse(self.faults.model_dump())

    async def dispatch(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        """Middleware body: control paths pass straight through; others are faulted and logged."""
        if request.url.path.startswith(CONTROL_PREFIX):
            return await call_next(request)
        f = self.faults
        fault: str | None = None
        response: Response | None = None
        applied_status: int | None = None
        received_at = time.time()
        lossy = is_lossy_write(request.method, request.url.path)
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            over_limit = f.max_concurrent is not None and self.in_flight > f.max_concurrent
            roll = self._rng.random()
            lost = lossy and self._lost_rng.random() < f.lost_rate(request.url.path)
        try:
            if f.latency_ms:
                await asyncio.sleep(f.latency_ms / 1000)
            if f.outage:
                fault, response = "outage", self._error(503, "Service Unavailable")
            elif over_limit:
                fault, response = "concurrency", self._throttled()
            elif roll < f.error_rate:
                fault, response = "error", self._error(500, "An error has occurred.")
            elif roll < f.error_rate + f.throttle_rate:
                fault, response = "throttle", self._throttled()
            elif roll < f.error_rate + f.throttle_rate + f.timeout_rate:
                fault = "timeout"
                await asyncio.sleep(f.timeout_s)
                response = self._error(504, "Gateway Timeout")
            elif self.answers and (
                recorded := self._recorded(
                    request.method,
                    request.url.path,
                    await request.body() if any(a.body_contains for a in self.answers) else b"",
                )
            ):
                fault, response = "recorded", recorded
            else:
                response = await call_next(request)
                applied_status = response.status_code
                if lost:
                    await _drain(response)  # the app has finished: the write is applied
                    fault = "lost_response"
                    if f.lost_response_mode == "drop":
                        response = DroppedResponse()
                    else:
                        response = self._error(504, "Gateway Timeout")
        finally:
            with self._lock:
                self.in_flight -= 1
        with self._lock:
            self.requests.append(
                RecordedRequest(
                    method=request.method,
                    path=request.url.path,
                    query=request.url.query,
                    status=0 if isinstance(response, DroppedResponse) else response.status_code,
                    at=time.time(),
                    fault=fault,
                    received_at=received_at,
                    agent=request.headers.get("user-agent", ""),
                    applied_status=applied_status,
                )
            )
        return response

    def _error(self, status: int, message: str) -> Response:
        return JSONResponse(self.error_body(status, message), status_code=status)

    def _throttled(self) -> Response:
        response = self._error(429, "API request limit exceeded")
        if self.faults.retry_after_s is not None:
            response.headers["Retry-After"] = str(round(self.faults.retry_after_s))
        return response


async def _drain(response: Response) -> None:
    """Read a ``call_next`` response to its end (the app has then run to completion)."""
    body = getattr(response, "body_iterator", None)
    if body is not None:
        async for _chunk in body:
            pass
