"""What every flow shares: its result, and the content hash that recognises our own writes."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from erpsync.model.base import Model


@dataclass(frozen=True)
class SyncResult:
    """How one record ended: ``synced``, ``skipped`` (already in step) or ``filtered`` (left out)."""

    outcome: str
    target_id: str = ""
    message: str = ""


def content_hash(model: Model) -> str:
    """A stable hash of what we write, so an echo of our own write is recognised."""
    raw = json.dumps(model.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()[:32]
