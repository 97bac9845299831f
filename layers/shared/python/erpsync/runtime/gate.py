"""What a client asks before each request to an external system: a slot under its ceilings.

``erpsync.state.guards.RateLimiter`` is the shared implementation (DynamoDB); clients only see
this Protocol, so they work without one (tests, scripts) and never import the state layer.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol


class Gate(Protocol):
    def request(self) -> AbstractContextManager[None]:
        """Held for the duration of one request; may wait, or raise when no slot comes in time."""
        ...

    def throttled(self, retry_after_s: float | None) -> None:
        """The system answered 429: slow every worker down."""
        ...
