"""The control API every simulator shares, under ``/_sim/``.

- ``GET /_sim/requests`` the requests received (method, path, query, status, ``received_at`` when
  it arrived and ``at`` when it was answered, in epoch seconds, the ``fault`` injected, the
  caller's ``agent`` (User-Agent)) and ``max_in_flight``; ``DELETE`` clears
- ``POST /_sim/reset`` forget all data, requests and faults
- ``POST /_sim/seed`` load data (each sim says what it takes)
- ``POST /_sim/faults`` inject faults; ``GET`` shows them; ``DELETE`` clears them. Body fields,
  each optional: ``error_rate`` (5xx), ``throttle_rate`` (429), ``retry_after_s`` (sent with 429),
  ``timeout_rate`` (the request hangs ``timeout_s``, default 30 s, then fails 504), ``latency_ms``
  (added to every request), ``outage`` (true: every request fails 503), ``seed`` (for the dice),
  ``max_concurrent`` (more requests in flight at once get 429, like an ERP licence limit).

Control requests are not counted, never fail, and never wait.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

CONTROL_PREFIX = "/_sim/"


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
    seed: int | None = None


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
        }


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
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def set_faults(self, faults: Faults) -> None:
        self.faults = faults
        self._rng = random.Random(faults.seed)

    def routes(self) -> list[Route]:
        return [
            Route("/_sim/requests", self._requests, methods=["GET", "DELETE"]),
            Route("/_sim/reset", self._reset, methods=["POST"]),
            Route("/_sim/seed", self._seed, methods=["POST"]),
            Route("/_sim/faults", self._faults, methods=["GET", "POST", "DELETE"]),
        ]

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
        received_at = time.time()
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            over_limit = f.max_concurrent is not None and self.in_flight > f.max_concurrent
            roll = self._rng.random()
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
            else:
                response = await call_next(request)
        finally:
            with self._lock:
                self.in_flight -= 1
        with self._lock:
            self.requests.append(
                RecordedRequest(
                    method=request.method,
                    path=request.url.path,
                    query=request.url.query,
                    status=response.status_code,
                    at=time.time(),
                    fault=fault,
                    received_at=received_at,
                    agent=request.headers.get("user-agent", ""),
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
