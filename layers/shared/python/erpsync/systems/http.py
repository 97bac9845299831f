"""What every system client shares: one gated HTTP request with transport errors typed, and
the ``Retry-After`` header read (seconds or an HTTP date)."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from erpsync.errors import OutageError, RetryableError
from erpsync.systems.ports import Gate


def retry_after(response: httpx.Response) -> float | None:
    """Seconds the server asked us to wait (``Retry-After`` as seconds or an HTTP date)."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def send(
    http: httpx.Client,
    method: str,
    url: str,
    *,
    system: str,
    timeout: float,
    gate: Gate | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """One request, under the system's shared ceilings when a ``gate`` is given.

    Connect errors become ``OutageError``, timeouts and other transport errors
    ``RetryableError``; a 429 tells the gate, so every worker slows down.
    """
    try:
        if gate is None:
            return http.request(method, url, timeout=timeout, **kwargs)
        with gate.request():
            response = http.request(method, url, timeout=timeout, **kwargs)
        if response.status_code == 429:
            gate.throttled(retry_after(response))
        return response
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise OutageError(f"{system} unreachable: {exc}", system=system) from exc
    except httpx.TimeoutException as exc:
        raise RetryableError(f"{system} timed out: {method} {url}", error_type="timeout", system=system) from exc
    except httpx.TransportError as exc:
        raise RetryableError(f"{system} transport error: {exc}", system=system) from exc
