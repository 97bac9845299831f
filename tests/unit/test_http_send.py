"""A refused request (429) is tried again in place while the wait is short and time allows; every
answer, or its absence, is told to the gate."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from erpsync.errors import AuthError, OutageError, RateLimitedError, RetryableError, may_have_been_applied
from erpsync.systems import http as transport
from erpsync.systems.ports import Deadline


def client(statuses: list[int], retry_after: str | None = "0") -> tuple[httpx.Client, list[int]]:
    seen: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        status = statuses[min(len(seen), len(statuses) - 1)]
        seen.append(status)
        headers = {"Retry-After": retry_after} if status == 429 and retry_after is not None else {}
        return httpx.Response(status, json={"ok": status == 200}, headers=headers)

    return httpx.Client(transport=httpx.MockTransport(handler)), seen


def test_a_429_is_tried_again_in_place() -> None:
    http, seen = client([429, 429, 200])
    r = transport.send(http, "PUT", "http://erp/x", system="acumatica", timeout=5)
    assert r.status_code == 200 and seen == [429, 429, 200]


def test_a_429_asking_for_a_long_wait_goes_back_to_the_caller() -> None:
    http, seen = client([429, 200], retry_after="60")
    r = transport.send(http, "PUT", "http://erp/x", system="acumatica", timeout=5)
    assert r.status_code == 429 and seen == [429]


def test_a_429_near_the_deadline_is_not_waited_out() -> None:
    http, seen = client([429, 200], retry_after="1")
    deadline = Deadline(margin_s=0.0, min_request_s=1.0)
    deadline.start(2.5)
    r = transport.send(http, "PUT", "http://erp/x", system="acumatica", timeout=5, deadline=deadline)
    assert r.status_code == 429 and seen == [429]


def test_connect_errors_are_an_outage() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(OutageError):
        transport.send(
            httpx.Client(transport=httpx.MockTransport(refuse)), "GET", "http://erp/x", system="a", timeout=1
        )


class Gate:
    """Records what the transport tells a gate."""

    def __init__(self) -> None:
        self.waits: list[float | None] = []
        self.answers: list[int | None] = []
        self.throttles: list[float | None] = []

    @contextmanager
    def request(self, wait_s: float | None = None) -> Iterator[None]:
        self.waits.append(wait_s)
        yield

    def throttled(self, retry_after_s: float | None) -> None:
        self.throttles.append(retry_after_s)

    def answered(self, status: int | None) -> None:
        self.answers.append(status)

    def abandoned(self) -> None:
        self.answers.append(-1)  # marks "gave up on the answer"


def test_the_gate_hears_every_answer_and_waits_no_longer_than_the_invocation_allows() -> None:
    http, _ = client([429, 500, 200], retry_after="0")
    gate = Gate()
    deadline = Deadline(margin_s=0.0, min_request_s=1.0, min_write_s=5.0)
    deadline.start(20.0)
    r = transport.send(http, "PUT", "http://erp/x", system="acumatica", timeout=5, gate=gate, deadline=deadline)
    assert r.status_code == 500
    assert gate.answers == [429, 500] and gate.throttles == [0.0]
    assert all(w is not None and 14.0 < w <= 15.0 for w in gate.waits)  # a write keeps min_write_s


def test_no_answer_is_told_to_the_gate_as_none() -> None:
    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    gate = Gate()
    with pytest.raises(RetryableError):
        transport.send(
            httpx.Client(transport=httpx.MockTransport(hang)), "GET", "http://erp/x", system="a", timeout=1, gate=gate
        )
    assert gate.answers == [None, -1]  # no answer, and abandoned: the seat lingers


def test_a_write_needs_more_time_left_than_a_read() -> None:
    """A write cut short may still be applied after we gave up: with less than ``min_write_s`` left
    it is not sent at all (the record comes back in the next invocation); a read still is."""
    http, seen = client([200])
    deadline = Deadline(margin_s=0.0, min_request_s=1.0, min_write_s=5.0)
    deadline.start(3.0)
    with pytest.raises(RetryableError, match="PUT not sent") as refused:
        transport.send(http, "PUT", "http://erp/x", system="acumatica", timeout=30, gate=Gate(), deadline=deadline)
    assert refused.value.error_type == "budget" and seen == []
    r = transport.send(http, "GET", "http://erp/x", system="acumatica", timeout=30, gate=Gate(), deadline=deadline)
    assert r.status_code == 200 and seen == [200]


@pytest.mark.parametrize(
    ("exc", "applied"),
    [
        (RetryableError("acumatica timed out: PUT", error_type="timeout"), True),
        (RetryableError("acumatica transport error: Server disconnected"), True),
        (RetryableError("Acumatica 504 on PUT SalesOrder", status=504), True),
        (RetryableError("Acumatica 502 on PUT SalesOrder", status=502), True),
        (RetryableError("Acumatica 500 on PUT SalesOrder", status=500), False),
        (RateLimitedError("Acumatica 429", status=429), False),
        (OutageError("Acumatica 503", status=503), False),
        (OutageError("acumatica unreachable: refused"), False),
        (AuthError("refused"), False),
        (RetryableError("PUT not sent: 0.2s left", error_type="budget"), False),
        (ValueError("not a sync error"), False),
    ],
)
def test_which_failed_writes_may_have_been_applied(exc: Exception, applied: bool) -> None:
    assert may_have_been_applied(exc) is applied


@pytest.mark.parametrize("gated", [False, True])
def test_a_dropped_answer_is_freed_at_once_not_left_to_the_cycle_collector(gated: bool) -> None:
    """httpx ties a read response and its stream in a cycle; a poll dropping one 700 KB page after
    another held several at once until the collector's full pass (bench 5b's growing peak)."""
    import gc
    import weakref

    body = b'{"items": [' + b",".join(b'{"n": %d}' % i for i in range(1000)) + b"]}"
    http = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(200, content=body)))
    gate = Gate() if gated else None
    gc.disable()
    try:
        response = transport.send(http, "GET", "http://store/page", system="magento", timeout=5, gate=gate)
        assert response.json()["items"][-1] == {"n": 999} and response.content == body
        gone = weakref.ref(response)
        del response
        assert gone() is None, "the response (and its body) outlived its last reference"
    finally:
        gc.enable()
