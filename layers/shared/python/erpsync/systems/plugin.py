"""What a system package declares about itself (its ``plugin.py`` exports one ``PLUGIN``).

- ``serves``: which entities it serves in which direction (``source``: we read changes from it,
  ``target``: we write to it); the startup check compares this with the routes before any record
  is touched;
- ``settings_model`` and ``secret_model``: the shape of the connection's own settings and of its
  secret, validated at startup with a message naming the connection and the field;
- ``connect``: the system, wired to its secret, its live settings, a rate gate and the deadline;
- ``webhooks``: verify and parse a webhook body into change notices (None: the system has none).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # importing this module stays free of the models (the webhook ingress needs BadWebhook)
    from erpsync.model import ChangeNotice
    from erpsync.model.base import Model
    from erpsync.systems.ports import Deadline, Gate, PointBucket, System

SOURCE, TARGET = "source", "target"


class BadWebhook(ValueError):
    """A webhook that is not acceptable; the message says why and goes back with ``status`` (4xx)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _deadline() -> Deadline:
    from erpsync.systems.ports import Deadline

    return Deadline()


@dataclass(frozen=True)
class Wiring:
    """What the runtime hands a system when it connects it."""

    connection: str
    secret: Model
    settings: Callable[[], Model]
    """The connection's settings as they are now (re-read by warm workers)."""
    gate: Gate | None = None
    deadline: Deadline = field(default_factory=_deadline)
    reload_secret: Callable[[], Model] | None = None
    """The secret read again from its store (not a cache): called when the system refuses it."""
    save_secret: Callable[[dict[str, Any]], None] | None = None
    """Store the secret's new JSON (renewed OAuth tokens; ``systems.oauth``)."""
    lease: Callable[[str], AbstractContextManager[bool]] | None = None
    """A lease across workers on a name, held for the block (True: this worker got it)."""
    points: PointBucket | None = None
    """The connection's query-cost bucket shared by every worker (systems that charge points)."""


WebhookParser = Callable[[Any, bytes, dict[str, str]], "list[ChangeNotice]"]
"""(secret or None, raw body, lower-cased headers) -> notices; raises ``BadWebhook``."""


@dataclass(frozen=True)
class Plugin:
    kind: str
    role: str
    """``store`` or ``erp``."""
    serves: Mapping[str, frozenset[str]]
    """entity -> the directions it serves (``source``, ``target``)."""
    settings_model: type[Model]
    secret_model: type[Model]
    connect: Callable[[Wiring], System]
    webhooks: WebhookParser | None = None
    ceiling: tuple[int, int | None, int | None] | None = None
    """The system's own published limit (requests per minute, concurrent requests, requests per
    second), held across every worker when the settings' ``rate_limits`` name none for the
    connection; its requests per second also when they name a ceiling without one."""

    def can(self, entity: str, direction: str) -> bool:
        return direction in self.serves.get(entity, frozenset())
