"""The settings document in the bindings table (``pk=settings, sk=current``), cached per process.

Every change is a numbered version. The current item carries its number (``rev``); a history item
(``pk=settings#history``, ``sk=v#<number>``) keeps who made it, when, how (``set`` or ``rollback``),
the patch, and the document before and after. Both are written in one transaction that holds only
if nobody saved in between, so two operators never lose each other's change. History items written
before versions existed (``sk=<unix time>``) are numbered in order the first time they are read.
A stored document of an older version is migrated when read (``erpsync.settings.migrate``).
"""

from __future__ import annotations

import json
import time
import typing
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from erpsync.model.base import Model, ValidationError
from erpsync.settings import Settings, merge, migrate
from erpsync.state import dynamo

CACHE_SECONDS = 60.0
"""How long a process keeps the settings it read: a running worker sees a change within this."""
KEY = {"pk": "settings", "sk": "current"}
HISTORY_PK = "settings#history"
UNSET = object()
"""A key a document does not have (in a ``Change``)."""


class SettingsError(ValueError):
    """A settings request that cannot be done (an unknown key, no such version); one line."""


class SettingsConflict(SettingsError):
    """Someone saved the settings between our read and our write."""


@dataclass
class Change:
    key: str
    """Dotted path, e.g. ``rate_limits.acumatica.per_minute``."""
    before: Any
    after: Any

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "before": None if self.before is UNSET else self.before,
            "after": None if self.after is UNSET else self.after,
        }


@dataclass
class Version:
    version: int
    at: str
    """ISO time, UTC."""
    actor: str
    action: str
    """``set`` (a merge patch), ``rollback`` or ``replace``."""
    before: dict[str, Any]
    """The stored document before (defaults left out)."""
    after: dict[str, Any]
    patch: dict[str, Any] | None = None
    rolled_back_to: int | None = None

    def changes(self) -> list[Change]:
        return diff(self.before, self.after)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "version": self.version,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "patch": self.patch,
            "changes": [c.as_json() for c in self.changes()],
        }
        if self.rolled_back_to is not None:
            out["rolled_back_to"] = self.rolled_back_to
        return out


def effective(doc: dict[str, Any]) -> dict[str, Any]:
    """The settings a stored document means, defaults included (the document itself if invalid)."""
    try:
        return Settings.model_validate(migrate(doc)).model_dump(mode="json")
    except ValidationError:
        return doc


def diff(before: dict[str, Any], after: dict[str, Any]) -> list[Change]:
    """Every leaf that differs between two stored documents, defaults included, by dotted key (a
    leaf absent on one side and null on the other is no change: null is how a key is unset)."""
    a, b = _flatten(effective(before)), _flatten(effective(after))
    changes = [Change(k, a.get(k, UNSET), b.get(k, UNSET)) for k in sorted(a.keys() | b.keys())]
    return [c for c in changes if c.before != c.after and not _unset(c.before, c.after)]


def _unset(before: Any, after: Any) -> bool:
    """Absent on one side, null on the other."""
    return (before is UNSET and after is None) or (before is None and after is UNSET)


def _flatten(doc: Any, prefix: str = "") -> dict[str, Any]:
    """Leaves by dotted key (lists are leaves; an empty map has none)."""
    if not isinstance(doc, dict):
        return {prefix: doc}
    out: dict[str, Any] = {}
    for key, value in doc.items():
        out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def check_keys(patch: dict[str, Any], model: type[Model] = Settings, path: str = "") -> None:
    """Refuse a patch naming a key the settings do not have, naming close matches and the valid keys."""
    fields = {f.name: f for f in msgspec.structs.fields(model)}
    for key, value in patch.items():
        if key not in fields:
            import difflib  # only to name close matches of a mistyped key (not on a worker's cold start)

            close = difflib.get_close_matches(key, list(fields), n=3, cutoff=0.6)
            hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
            where = f"valid keys under {path[:-1]!r}" if path else "valid top-level keys"
            raise SettingsError(f"unknown setting {path + key!r}{hint}; {where}: {', '.join(sorted(fields))}")
        sub, keyed = _model_of(fields[key].type)
        if sub is None or value is None:
            continue
        if not keyed and isinstance(value, dict):
            check_keys(value, sub, f"{path}{key}.")
        elif keyed and isinstance(value, dict):
            for name, item in value.items():
                if isinstance(item, dict):
                    check_keys(item, sub, f"{path}{key}.{name}.")
        elif keyed and isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    check_keys(item, sub, f"{path}{key}[{i}].")


def _model_of(annotation: Any) -> tuple[type[Model] | None, bool]:
    """The settings model a field holds: itself (False) or as the values of a map or list (True)."""
    if isinstance(annotation, type) and issubclass(annotation, Model):
        return annotation, False
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (dict, list) and args:
        inner = args[-1]
        if isinstance(inner, type) and issubclass(inner, Model):
            return inner, True
    return None, False


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _version(item: dict[str, Any]) -> Version:
    patch = item.get("patch")
    return Version(
        version=int(item["version"]),
        at=str(item.get("at", "")),
        actor=str(item.get("actor", "")),
        action=str(item.get("action", "set")),
        before=json.loads(item.get("before") or "{}"),
        after=json.loads(item.get("doc") or "{}"),
        patch=json.loads(patch) if patch else None,
        rolled_back_to=item.get("rolled_back_to"),
    )


class SettingsStore:
    def __init__(self, table: str) -> None:
        self.table = table
        self._cached: Settings | None = None
        self._read_at = 0.0
        self.generation = 0
        """Goes up each time a different document is in force (warm workers rewire on a change)."""
        self.version: int | None = None
        """The version this store last saved."""

    def load(self) -> Settings:
        """The settings in force, read again at most every ``CACHE_SECONDS``."""
        if self._cached is not None and time.monotonic() - self._read_at <= CACHE_SECONDS:
            return self._cached
        res = dynamo.client().get_item(TableName=self.table, Key=dynamo.to_item(KEY))
        doc = json.loads(dynamo.from_item(res["Item"])["doc"]) if "Item" in res else {}
        fresh = Settings.model_validate(migrate(doc))
        if self._cached is None or fresh != self._cached:
            self._cached = fresh
            self.generation += 1
        self._read_at = time.monotonic()
        return self._cached

    def head(self) -> tuple[int, dict[str, Any]]:
        """The number of the version in force (0: never changed) and its stored document, read now."""
        res = dynamo.client().get_item(TableName=self.table, Key=dynamo.to_item(KEY), ConsistentRead=True)
        item = dynamo.from_item(res["Item"]) if "Item" in res else {}
        doc = json.loads(item["doc"]) if "doc" in item else {}
        return (int(item["rev"]) if "rev" in item else self._number_old_history()), doc

    def save(
        self,
        settings: Settings,
        *,
        actor: str = "cli",
        patch: dict[str, Any] | None = None,
        action: str = "set",
        rolled_back_to: int | None = None,
        head: tuple[int, dict[str, Any]] | None = None,
    ) -> int:
        """Save ``settings`` as the next version; its number. ``head`` is the version the change was
        made from: if someone saved since, ``SettingsConflict`` and nothing is saved."""
        rev, before = head if head is not None else self.head()
        doc = settings.model_dump_json(exclude_defaults=True)
        version = rev + 1
        current = {**KEY, "doc": doc, "rev": version, "updated_at": time.time(), "updated_by": actor}
        entry = {
            "pk": HISTORY_PK,
            "sk": f"v#{version:010d}",
            "version": version,
            "at": _now(),
            "actor": actor,
            "action": action,
            "patch": json.dumps(patch) if patch is not None else None,
            "before": json.dumps(before),
            "doc": doc,
            "rolled_back_to": rolled_back_to,
        }
        try:
            dynamo.client().transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": dynamo.to_item(current),
                            "ConditionExpression": "attribute_not_exists(#rev) OR #rev = :rev",
                            "ExpressionAttributeNames": {"#rev": "rev"},
                            "ExpressionAttributeValues": dynamo.to_item({":rev": rev}),
                        }
                    },
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": dynamo.to_item(entry),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            )
        except dynamo.client().exceptions.TransactionCanceledException as exc:
            raise SettingsConflict(f"the settings changed while version {version} was being saved") from exc
        self._cached, self._read_at = settings, time.monotonic()
        self.generation += 1
        self.version = version
        return version

    def update(
        self, changes: dict[str, Any], *, actor: str = "cli", check: Callable[[Settings], None] | None = None
    ) -> Settings:
        """Apply a partial document as a JSON merge patch (nested maps merge, ``null`` removes a
        key), validate the result (and ``check`` it, e.g. against the systems' plugins) and save it
        as a new version. Nothing is saved when a key is unknown, the result does not validate, or
        nothing changes (``version`` is then None)."""
        check_keys(changes)
        self.version = None
        for attempt in range(3):
            head = self.head()
            before = Settings.model_validate(migrate(head[1]))
            settings = Settings.model_validate(merge(json.loads(before.model_dump_json()), changes))
            if settings == before:
                return settings
            if check is not None:
                check(settings)
            try:
                self.save(settings, actor=actor, patch=changes, head=head)
                return settings
            except SettingsConflict:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def rollback(
        self, version: int, *, actor: str = "cli", check: Callable[[Settings], None] | None = None
    ) -> Version | None:
        """Put the settings of ``version`` back in force, as a new version that records it; None
        when they already are."""
        target = self.get(version)
        head = self.head()
        settings = Settings.model_validate(migrate(target.after))
        if settings == Settings.model_validate(migrate(head[1])):
            return None
        if check is not None:
            check(settings)
        self.save(settings, actor=actor, action="rollback", rolled_back_to=version, head=head)
        return self.get(self.version or 0)

    def history(self, limit: int = 20) -> list[Version]:
        """The latest changes, newest first."""
        self.head()  # numbers history written before versions existed
        res = dynamo.client().query(
            TableName=self.table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :v)",
            ExpressionAttributeValues=dynamo.to_item({":pk": HISTORY_PK, ":v": "v#"}),
            ScanIndexForward=False,
            Limit=limit,
        )
        return [_version(dynamo.from_item(i)) for i in res.get("Items", [])]

    def get(self, version: int) -> Version:
        """One version; ``SettingsError`` naming the versions there are when it does not exist."""
        if version >= 1:
            res = dynamo.client().get_item(
                TableName=self.table, Key=dynamo.to_item({"pk": HISTORY_PK, "sk": f"v#{version:010d}"})
            )
            if "Item" in res:
                return _version(dynamo.from_item(res["Item"]))
        last = self.head()[0]
        if not last:
            raise SettingsError("no settings changes recorded yet")
        raise SettingsError(f"no settings version {version}: the versions are 1 to {last}")

    def latest(self) -> Version:
        last = self.head()[0]
        if not last:
            raise SettingsError("no settings changes recorded yet")
        return self.get(last)

    def _number_old_history(self) -> int:
        """Give history items written before versions existed (``sk=<unix time>``) numbers, in order;
        the highest number there is."""
        items = dynamo.query(
            self.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=dynamo.to_item({":pk": HISTORY_PK}),
        )
        numbered = [int(i["version"]) for i in items if str(i["sk"]).startswith("v#")]
        last = max(numbered, default=0)
        before = "{}"
        for old in (i for i in items if not str(i["sk"]).startswith("v#")):
            last += 1
            at = datetime.fromtimestamp(float(old["sk"]), UTC).isoformat(timespec="milliseconds")
            patch = old.get("patch")
            entry = {
                "pk": HISTORY_PK,
                "sk": f"v#{last:010d}",
                "version": last,
                "at": at.replace("+00:00", "Z"),
                "actor": old.get("actor", ""),
                "action": "replace" if patch == json.dumps({"*": "replaced"}) else "set",
                "patch": None if patch == json.dumps({"*": "replaced"}) else patch,
                "before": before,
                "doc": old.get("doc", "{}"),
            }
            dynamo.client().put_item(TableName=self.table, Item=dynamo.to_item(entry))
            dynamo.client().delete_item(TableName=self.table, Key=dynamo.to_item({"pk": HISTORY_PK, "sk": old["sk"]}))
            before = entry["doc"]
        return last
