"""A refused request (429) is tried again in place while the wait is short and time allows; the
container's concurrency towards a system follows its answers (AIMD)."""

from __future__ import annotations

import threading

import httpx
import pytest

from erpsync.errors import OutageError
from erpsync.state.guards import AdaptiveConcurrency
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


def test_adaptive_concurrency_halves_on_429_and_grows_back_slowly() -> None:
    a = AdaptiveConcurrency(start=8)
    a.acquire()
    a.release(throttled=True)
    assert a.limit == 4
    for _ in range(4):
        a.acquire()
        a.release(throttled=False)
    assert 4.9 < a.limit < 5.1  # one more after a window of four answers that went through


def test_adaptive_concurrency_holds_callers_beyond_its_limit() -> None:
    a = AdaptiveConcurrency(start=1, max_wait_s=5)
    a.acquire()
    entered = threading.Event()

    def second() -> None:
        a.acquire()
        entered.set()
        a.release(throttled=False)

    t = threading.Thread(target=second)
    t.start()
    assert not entered.wait(0.3)  # held while the first request is in flight
    a.release(throttled=False)
    assert entered.wait(5)
    t.join()
