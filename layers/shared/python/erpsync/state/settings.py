"""The settings document in the bindings table (``pk=settings, sk=current``), cached per process.

Every save also writes a history item (``pk=settings#history``, ``sk=<time>``) with who changed
it and the patch, so "who changed the tax id yesterday" has an answer. A stored document of an
older version is migrated when read (``erpsync.settings.migrate``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from erpsync.settings import Settings, merge, migrate
from erpsync.state import dynamo

CACHE_SECONDS = 60.0
KEY = {"pk": "settings", "sk": "current"}


class SettingsStore:
    def __init__(self, table: str) -> None:
        self.table = table
        self._cached: Settings | None = None
        self._read_at = 0.0
        self.generation = 0
        """Goes up each time a different document is in force (warm workers rewire on a change)."""

    def load(self) -> Settings:
        if self._cached is not None and time.monotonic() - self._read_at <= CACHE_SECONDS:
            return self._cached
        if self._cached is None or time.monotonic() - self._read_at > CACHE_SECONDS:
            res = dynamo.client().get_item(TableName=self.table, Key=dynamo.to_item(KEY))
            doc = json.loads(dynamo.from_item(res["Item"])["doc"]) if "Item" in res else {}
            fresh = Settings.model_validate(migrate(doc))
            if fresh != self._cached:
                self._cached = fresh
                self.generation += 1
            self._read_at = time.monotonic()
        return self._cached

    def save(self, settings: Settings, *, actor: str = "cli", patch: dict[str, Any] | None = None) -> None:
        doc = settings.model_dump_json(exclude_defaults=True)
        now = time.time()
        dynamo.client().put_item(
            TableName=self.table,
            Item=dynamo.to_item({**KEY, "doc": doc, "updated_at": now, "updated_by": actor}),
        )
        dynamo.client().put_item(
            TableName=self.table,
            Item=dynamo.to_item(
                {
                    "pk": "settings#history",
                    "sk": f"{now:.6f}",
                    "actor": actor,
                    "patch": json.dumps(patch if patch is not None else {"*": "replaced"}),
                    "doc": doc,
                }
            ),
        )
        self._cached, self._read_at = settings, time.monotonic()
        self.generation += 1

    def update(
        self, changes: dict[str, Any], *, actor: str = "cli", check: Callable[[Settings], None] | None = None
    ) -> Settings:
        """Apply a partial document as a JSON merge patch (nested maps merge, ``null`` removes a
        key), validate the result (and ``check`` it, e.g. against the systems' plugins) and save it.
        Nothing is saved when it does not validate."""
        current = json.loads(self.load().model_dump_json())
        settings = Settings.model_validate(merge(current, changes))
        if check is not None:
            check(settings)
        self.save(settings, actor=actor, patch=changes)
        return settings

    def history(self, limit: int = 20) -> list[dict[str, Any]]:
        """The latest changes, newest first."""
        res = dynamo.client().query(
            TableName=self.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=dynamo.to_item({":pk": "settings#history"}),
            ScanIndexForward=False,
            Limit=limit,
        )
        return [dynamo.from_item(i) for i in res.get("Items", [])]
