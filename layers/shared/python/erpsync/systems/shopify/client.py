"""A small synchronous Shopify Admin GraphQL client: one POST per query, cost-based throttling,
errors typed.

Shopify throttles by query cost: every answer's ``extensions.cost.throttleStatus`` says how many
points the shop's bucket holds and how fast it refills. A request the bucket cannot pay is answered
``THROTTLED`` with HTTP 200 (nothing applied). Each query first reserves its expected cost from the
bucket (in Lambda one ``PointsBucket`` shared by every worker of the connection, else this process's
``Budget``) and waits only the deficit when the bucket cannot pay it; after the answer, what the
query did not cost goes back. A ``THROTTLED`` answer is waited out and tried again while the wait is
short, and otherwise goes back to the queue as ``RateLimitedError`` (the shared gate is told, so
every worker slows down).
"""

from __future__ import annotations

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
from erpsync.systems.ports import Deadline, Gate, PointBucket

SYSTEM = "shopify"
MAX_INLINE_WAIT_S = 5.0
THROTTLE_TRIES = 8
"""A THROTTLED answer is waited out and tried again this many times while each wait is short: other
workers draw on the same bucket, so a wait computed from the last status can fall short."""
DEFAULT_RESTORE_RATE = 50.0
"""Points a second assumed before the first answer says (the lowest plan's rate)."""


class UserErrors(ValidationFailed):
    """A mutation answered ``userErrors``: Shopify refused the input (nothing was applied)."""

    def __init__(self, mutation: str, errors: list[Mapping[str, Any]], system: str = SYSTEM) -> None:
        shown = "; ".join(_user_error(e) for e in errors[:5])
        super().__init__(f"{system} {mutation} refused: {shown}", system=system)
        self.errors = list(errors)


def _refill_wait(cost_info: Mapping[str, Any] | None, points: float) -> float:
    """Seconds until a refused query's ``points`` are in the bucket, by the refusal's own status."""
    status = (cost_info or {}).get("throttleStatus")
    try:
        available = float(status["currentlyAvailable"])  # type: ignore[index]
        rate = float(status["restoreRate"]) or DEFAULT_RESTORE_RATE  # type: ignore[index]
    except (KeyError, TypeError, ValueError):
        return 1.0
    return max(0.0, points - available) / rate or 1.0


def _user_error(error: Mapping[str, Any]) -> str:
    field = error.get("field")
    where = ".".join(str(f) for f in field) if isinstance(field, list) and field else ""
    return f"{where}: {error.get('message')}" if where else str(error.get("message"))


class Budget:
    """The shop's cost bucket as this process knows it (the last answer's throttle status, credited
    with the refill since); the client's ``PointBucket`` when no shared one is given."""

    def __init__(self) -> None:
        self.available: float | None = None
        self.maximum: float | None = None
        self.restore_rate = DEFAULT_RESTORE_RATE
        self.at = time.monotonic()
        self.lock = threading.Lock()

    def settle(self, status: Mapping[str, Any] | None, refund: float = 0.0, throttled: bool = False) -> None:
        """Every answer's status is the truth as of that answer (``refund`` is already in it)."""
        if not isinstance(status, Mapping):
            return
        with self.lock:
            try:
                self.available = float(status["currentlyAvailable"])
                self.maximum = float(status["maximumAvailable"])
                self.restore_rate = float(status.get("restoreRate") or DEFAULT_RESTORE_RATE)
            except (KeyError, TypeError, ValueError):
                return
            self.at = time.monotonic()

    def take(self, points: float) -> float:
        """Reserve ``points`` (0), or the seconds until the bucket holds them as far as we know."""
        with self.lock:
            if self.available is None:
                return 0.0
            now = time.monotonic()
            level = self.available + (now - self.at) * self.restore_rate
            if self.maximum is not None:
                level = min(level, self.maximum)
            need = points if self.maximum is None else min(points, self.maximum)
            if level < need:
                return (need - level) / self.restore_rate
            self.available, self.at = level - points, now
            return 0.0


class ShopifyClient:
    """Talks to ``<shop>/admin/api/<version>/graphql.json`` with the app's access token.

    ``token`` returns the access token to use; ``renew`` is called with a refused token and returns
    a fresh one (read again from the secret, or refreshed), or raises ``AuthError``.
    """

    def __init__(
        self,
        shop: str,
        token: Callable[[], str],
        *,
        api_version: str = "2025-01",
        http: httpx.Client | None = None,
        timeout: float = 15.0,
        gate: Gate | None = None,
        deadline: Deadline | None = None,
        name: str = SYSTEM,
        renew: Callable[[str], str] | None = None,
        points: PointBucket | None = None,
    ) -> None:
        shop = shop.rstrip("/")
        if not shop.startswith(("http://", "https://")):
            shop = f"https://{shop}"
        self.url = f"{shop}/admin/api/{api_version}/graphql.json"
        self.token, self.renew = token, renew
        self.http = http if http is not None else transport.new_client(timeout)
        self.timeout, self.gate, self.deadline, self.name = timeout, gate, deadline, name
        self.budget: PointBucket = points if points is not None else Budget()
        """The shop's cost bucket: shared by every worker when the runtime gives one."""
        self.request_count = 0
        self.last_cost: float | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        self.http.close()

    def query(self, query: str, variables: Mapping[str, Any] | None = None, *, cost: float = 50.0) -> dict[str, Any]:
        """The ``data`` of ``query`` (a query or a mutation). ``cost`` is what it is expected to
        cost (the client waits until the bucket can pay it). GraphQL errors raise: ``THROTTLED`` a
        ``RateLimitedError`` once the short waits are spent, others ``ValidationFailed``."""
        token = self.token()
        renewed = False
        for attempt in range(THROTTLE_TRIES):
            self._pace(cost)
            response = self._post(query, variables, token)  # no answer: the reservation stays spent
            if response.status_code == 401 and not renewed and self.renew is not None:
                token, renewed = self.renew(token), True
                response = self._post(query, variables, token)
            body = self._decode(response)
            extensions = body.get("extensions") if isinstance(body.get("extensions"), Mapping) else {}
            cost_info = extensions.get("cost") if isinstance(extensions, Mapping) else None
            errors = body.get("errors")
            codes = {str((e.get("extensions") or {}).get("code") or "") for e in errors or [] if isinstance(e, Mapping)}
            if isinstance(cost_info, Mapping):
                actual = _number(cost_info.get("actualQueryCost"))
                self.last_cost = actual or _number(cost_info.get("requestedQueryCost"))
                throttled = "THROTTLED" in codes
                spent = 0.0 if throttled else (actual if actual is not None else cost)
                self.budget.settle(cost_info.get("throttleStatus"), refund=cost - spent, throttled=throttled)
            if not errors:
                data = body.get("data")
                if not isinstance(data, dict):
                    raise RetryableError(f"{self.name} answered without data: {str(body)[:200]}", system=self.name)
                return data
            if "THROTTLED" in codes:
                requested = _number((cost_info or {}).get("requestedQueryCost")) or cost
                wait = _refill_wait(cost_info, requested)
                if self.gate is not None:
                    self.gate.throttled(wait)
                if attempt == THROTTLE_TRIES - 1 or wait > MAX_INLINE_WAIT_S or not self._time_for(wait):
                    raise RateLimitedError(
                        f"{self.name} throttled the query (cost {requested:g}); bucket refills in {wait:.1f}s",
                        system=self.name,
                        retry_after=wait,
                    )
                time.sleep(wait)
                cost = requested
                continue
            message = "; ".join(str(e.get("message")) for e in errors if isinstance(e, Mapping)) or str(errors)
            if "MAX_COST_EXCEEDED" in codes:
                raise PermanentError(f"{self.name} refused the query as too costly: {message}", system=self.name)
            if any(c in codes for c in ("INTERNAL_SERVER_ERROR", "SERVICE_UNAVAILABLE")):
                raise RetryableError(f"{self.name} failed the query: {message}", system=self.name)
            if any("not found" in str(e.get("message", "")).lower() for e in errors if isinstance(e, Mapping)):
                raise NotFoundError(f"{self.name}: {message}", system=self.name)
            raise ValidationFailed(f"{self.name} refused the query: {message}", system=self.name)
        raise RateLimitedError(f"{self.name} kept throttling the query", system=self.name)  # pragma: no cover

    def mutate(
        self, mutation: str, variables: Mapping[str, Any], name: str, *, errors_key: str = "userErrors"
    ) -> dict[str, Any]:
        """Run a mutation and return its payload (``data[name]``); its ``userErrors`` raise ``UserErrors``."""
        data = self.query(mutation, variables, cost=10.0)
        payload = data.get(name)
        if not isinstance(payload, dict):
            raise RetryableError(f"{self.name} answered {name} without a payload", system=self.name)
        errors = payload.get(errors_key) or []
        if errors:
            raise UserErrors(name, errors, self.name)
        return payload

    # ----------------------------------------------------------------- plumbing

    def _pace(self, cost: float) -> None:
        """Reserve ``cost`` points from the bucket, waiting the deficit while it is short; a long
        wait goes back to the queue (``RateLimitedError``)."""
        waited = 0.0
        while wait := self.budget.take(cost):
            if waited + wait > MAX_INLINE_WAIT_S or not self._time_for(wait):
                raise RateLimitedError(
                    f"{self.name}'s cost bucket needs {wait:.1f}s to pay {cost:g} points",
                    system=self.name,
                    retry_after=wait,
                )
            time.sleep(wait)
            waited += wait

    def _time_for(self, wait: float) -> bool:
        if self.deadline is None:
            return True
        left = self.deadline.remaining()
        return left is None or left > wait + 2 * self.deadline.floor("POST")

    def _post(self, query: str, variables: Mapping[str, Any] | None, token: str) -> httpx.Response:
        with self._lock:
            self.request_count += 1
        return transport.send(
            self.http,
            "POST",
            self.url,
            system=self.name,
            timeout=self.deadline.timeout(self.timeout, self.name, "POST") if self.deadline else self.timeout,
            gate=self.gate,
            deadline=self.deadline,
            json={"query": query, "variables": dict(variables or {})},
            headers={"X-Shopify-Access-Token": token, "Accept": "application/json"},
        )

    def _decode(self, response: httpx.Response) -> dict[str, Any]:
        status = response.status_code
        if status in (401, 403):
            raise AuthError(
                f"{self.name} refused the access token ({status}): {response.text[:200]}",
                system=self.name,
                status=status,
            )
        if status == 429:
            raise RateLimitedError(
                f"{self.name} answered 429", system=self.name, retry_after=transport.retry_after(response)
            )
        if status in (502, 504):
            raise RetryableError(f"{self.name} gateway answered {status}", system=self.name, status=status)
        if status >= 500:
            raise OutageError(f"{self.name} answered {status}", system=self.name, status=status)
        if status == 404:
            raise PermanentError(
                f"{self.name}: no Admin API at {self.url} (404): check the shop and the API version", system=self.name
            )
        try:
            body = response.json()
        except ValueError as exc:
            raise RetryableError(
                f"{self.name} answered {status} with a body that is not JSON", system=self.name
            ) from exc
        if status >= 400:
            raise ValidationFailed(f"{self.name} answered {status}: {str(body)[:300]}", system=self.name)
        if not isinstance(body, dict):
            raise RetryableError(f"{self.name} answered {type(body).__name__}, not an object", system=self.name)
        return body


def _number(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None
