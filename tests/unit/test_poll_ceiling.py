"""A scheduled poll that meets a ceiling (the shared rate limiter's, or the system's own 429) stops
and leaves the next tick to resume from its last checkpoint: a ceiling to wait for, not a failed
poll (no ``PollFailed``, whose alarm tells a person); any other error still fails the poll."""

from __future__ import annotations

from typing import Any

import pytest

from erpsync.errors import OutageError, RateLimitedError
from erpsync.runtime import lambda_app, metrics
from erpsync.state.guards import LimitExceeded
from erpsync.systems.ports import Deadline


class Connections:
    deadline = Deadline()


class FakeRuntime:
    def __init__(self, error: Exception) -> None:
        self.error, self.connections = error, Connections()

    def refresh(self) -> None:
        pass

    def poll(self, should_stop: Any) -> dict[str, Any]:
        raise self.error


@pytest.fixture
def added(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    names: list[str] = []
    real = metrics.add

    def add(name: str, *args: Any, **kwargs: Any) -> None:
        names.append(name)
        real(name, *args, **kwargs)

    monkeypatch.setattr(metrics, "add", add)
    return names


@pytest.mark.parametrize(
    "error",
    [LimitExceeded("quickbooks", 28.3), RateLimitedError("quickbooks answered 429", system="quickbooks")],
    ids=["shared limiter", "429"],
)
def test_a_poll_at_a_ceiling_is_deferred_not_failed(
    error: Exception, added: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lambda_app, "runtime", lambda flow: FakeRuntime(error))
    answer = lambda_app.flow_handler("erp-customers")({"erpsync": "poll"}, None)
    assert answer == {"flow": "erp-customers", "deferred": str(error)}
    assert "PollFailed" not in added


def test_any_other_poll_error_still_fails_the_poll(added: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lambda_app, "runtime", lambda flow: FakeRuntime(OutageError("down", system="quickbooks")))
    with pytest.raises(OutageError):
        lambda_app.flow_handler("erp-customers")({"erpsync": "poll"}, None)
    assert "PollFailed" in added
