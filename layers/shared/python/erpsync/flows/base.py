"""What every flow shares: its result, and the content hash that recognises our own writes."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel

from erpsync.model import ChangeNotice


@dataclass(frozen=True)
class SyncResult:
    """How one record ended: ``synced``, ``skipped`` (already in step) or ``filtered`` (left out)."""

    outcome: str
    target_id: str = ""
    message: str = ""


class Flow(Protocol):
    """What the runtime needs of a flow: find changes (poll) and sync one record."""

    name: str
    source: str
    target: str

    def changes(self, since: datetime) -> list[ChangeNotice]: ...

    def sync(self, notice: ChangeNotice) -> SyncResult: ...


def content_hash(model: BaseModel) -> str:
    """A stable hash of what we write, so an echo of our own write is recognised."""
    raw = json.dumps(model.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()[:32]
