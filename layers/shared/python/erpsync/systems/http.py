"""What every system client shares: one gated HTTP request with transport errors typed, and
the ``Retry-After`` header read (seconds or an HTTP date)."""

from __future__ import annotations

import random
import ssl
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any

import httpx

from erpsync.errors import OutageError, RetryableError
from erpsync.systems.ports import Deadline, Gate

THROTTLE_TRIES = 3
MAX_INLINE_WAIT_S = 5.0
"""A 429 asking for a longer wait goes back to the queue instead (the record waits there)."""


@lru_cache(maxsize=1)
def ssl_context() -> ssl.SSLContext:
    """The TLS settings httpx makes for ``verify=True`` (certifi's CAs, or ``SSL_CERT_FILE`` /
    ``SSL_CERT_DIR``), made once per process: loading the CA bundle is a good part of a cold start,
    and every client of the process (Magento, Acumatica) verifies the same way."""
    return httpx.create_ssl_context()


def new_client(timeout: float) -> httpx.Client:
    """An ``httpx.Client`` as ``httpx.Client(timeout=timeout)`` makes it, with the process's one
    ``ssl_context``."""
    return httpx.Client(timeout=timeout, verify=ssl_context())


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
    deadline: Deadline | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """One request, under the system's shared ceilings when a ``gate`` is given.

    A 429 (the request was refused, not applied) tells the gate, so every worker slows down, and is
    tried again here after ``Retry-After`` (or a short jittered wait) while the wait is short and the
    invocation has time for it: a refused request costs a moment, not a trip back to the queue.
    Connect errors become ``OutageError``, timeouts and other transport errors ``RetryableError``.
    """
    for attempt in range(THROTTLE_TRIES):
        response = _once(http, method, url, system=system, timeout=timeout, gate=gate, deadline=deadline, **kwargs)
        if response.status_code != 429 or attempt == THROTTLE_TRIES - 1:
            return response
        wait = retry_after(response)
        wait = random.uniform(0.1, 0.3) * 2**attempt if wait is None else wait
        if wait > MAX_INLINE_WAIT_S:
            return response
        if deadline is not None:
            left = deadline.remaining()
            if left is not None and left < wait + 2 * deadline.floor(method):
                return response
        time.sleep(wait)
        if deadline is not None:
            timeout = deadline.timeout(timeout, system, method)
    return response


def _uncycled(response: httpx.Response) -> httpx.Response:
    """``response`` with its body, already read, no longer reachable only through a reference cycle.

    httpx leaves a read response and its stream pointing at each other (``BoundSyncStream``), so a
    dropped response, body and all, waits for the cyclic garbage collector's rare full pass: a poll
    of 700 KB pages held several of them at once and its peak memory grew with the pages read
    (bench/poll_memory.py). The body is in ``response.content``; the stream is made a plain one."""
    response.stream = httpx.ByteStream(response.content)
    return response


def _once(
    http: httpx.Client,
    method: str,
    url: str,
    *,
    system: str,
    timeout: float,
    gate: Gate | None,
    deadline: Deadline | None,
    **kwargs: Any,
) -> httpx.Response:
    """One request; under a gate, waiting for a seat no longer than the invocation allows (the
    request's timeout is then cut to what is left), and every answer (or its absence) told to it."""
    try:
        if gate is None:
            return _uncycled(http.request(method, url, timeout=timeout, **kwargs))
        left = deadline.remaining() if deadline is not None else None
        wait = None if left is None or deadline is None else max(0.0, left - deadline.floor(method))
        with gate.request(wait):
            if deadline is not None:
                timeout = deadline.timeout(timeout, system, method)
            try:
                response = http.request(method, url, timeout=timeout, **kwargs)
            except httpx.TransportError as exc:
                gate.answered(None)
                if isinstance(exc, (httpx.ReadTimeout, httpx.WriteTimeout)):
                    gate.abandoned()  # it reached the system, which may still be working on it
                raise
            gate.answered(response.status_code)
            if response.status_code == 429:
                gate.throttled(retry_after(response))
        return _uncycled(response)
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise OutageError(f"{system} unreachable: {exc}", system=system) from exc
    except httpx.TimeoutException as exc:
        raise RetryableError(f"{system} timed out: {method} {url}", error_type="timeout", system=system) from exc
    except httpx.TransportError as exc:
        raise RetryableError(f"{system} transport error: {exc}", system=system) from exc
