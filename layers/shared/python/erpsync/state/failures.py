"""The failures desk: one item per failed record, open until it is resolved.

A record that cannot sync (a permanent error, or a retryable one past its attempts) gets one item,
however often it fails: the reason, error type and counts are updated in place. It stays open until
a later sync of the record goes through (resolved by the worker, ``synced``/``skipped``/``filtered``)
or an operator skips it with a note. Open items live under one key (``failures#open``, sort key
``<flow>#<source connection>#<record id>``), so listing them is one query whatever the size of the
catalogue; a resolved item moves under ``failures#resolved`` (newest first by its resolution time)
and expires after ``RESOLVED_DAYS``.

Everything stored here is masked (``erpsync.masking``): reasons quote ERP and store answers.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from typing import Any

from erpsync.masking import mask
from erpsync.state import dynamo

OPEN = "failures#open"
RESOLVED = "failures#resolved"
RESOLVED_DAYS = 30
REASON_CHARS = 2000
EXCERPT_CHARS = 2000


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def failure_key(flow: str, source: str, id: str) -> str:
    """The desk's id of a record: ``<flow>#<source connection>#<record id>``."""
    return f"{flow}#{source}#{id}"


@dataclass
class Failure:
    """One failed record on the desk."""

    flow: str
    source: str
    """The source connection."""
    id: str
    """The record's id in the source."""
    entity: str = ""
    target: str = ""
    """The target connection."""
    target_id: str = ""
    """The record on the target, when one is bound (a document of an order that is there)."""
    error_type: str = ""
    reason: str = ""
    attempts: int = 0
    """Attempts of the last run of tries (the one that failed)."""
    failures: int = 0
    """How many times the record failed while this item was open."""
    first_failed_at: str = ""
    last_failed_at: str = ""
    first_attempt_at: str = ""
    version: str = ""
    """The source version that failed: a notice of the same version is held, not tried again."""
    correlation_id: str = ""
    request: str = ""
    """The notice as queued (masked): what a retry sends through the flow again."""
    status: str = "open"
    resolution: str = ""
    """How it was resolved: synced, skipped, filtered (a later sync) or skipped_by_operator."""
    resolved_at: str = ""
    resolved_by: str = ""
    note: str = ""

    @property
    def key(self) -> str:
        return failure_key(self.flow, self.source, self.id)

    def as_json(self) -> dict[str, Any]:
        return {"key": self.key, **asdict(self)}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Failure:
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in row:
                v = row[f.name]
                values[f.name] = int(v or 0) if f.name in ("attempts", "failures") else str(v)
        return cls(**values)


class FailuresDesk:
    """The desk in the bindings table (see the module docstring for its keys)."""

    def __init__(self, table: str) -> None:
        self.table = table

    def record(self, f: Failure) -> Failure:
        """Open the record's item, or update it in place (one item however often it fails); its
        ``first_failed_at`` is kept from the first time (now, unless ``f`` says when)."""
        now = now_iso()
        values = {
            ":flow": f.flow,
            ":source": f.source,
            ":id": f.id,
            ":entity": f.entity,
            ":target": f.target,
            ":target_id": f.target_id,
            ":error_type": f.error_type,
            ":reason": mask(f.reason)[:REASON_CHARS],
            ":attempts": int(f.attempts),
            ":first_attempt_at": f.first_attempt_at,
            ":version": f.version,
            ":correlation_id": f.correlation_id,
            ":request": mask(f.request)[:EXCERPT_CHARS],
            ":now": now,
            ":first": f.first_failed_at or now,
            ":open": "open",
            ":one": 1,
        }
        names = ["flow", "source", "id", "entity", "target", "target_id", "error_type", "reason", "attempts"]
        names += ["first_attempt_at", "version", "correlation_id", "request"]
        sets = [f"#{n} = :{n}" for n in names]
        sets += ["#last_failed_at = :now", "#status = :open", "#first = if_not_exists(#first, :first)"]
        res = dynamo.client().update_item(
            TableName=self.table,
            Key=dynamo.to_item({"pk": OPEN, "sk": f.key}),
            UpdateExpression="SET " + ", ".join(sets) + " ADD #failures :one",
            ExpressionAttributeNames={
                **{f"#{n}": n for n in names},
                "#last_failed_at": "last_failed_at",
                "#status": "status",
                "#first": "first_failed_at",
                "#failures": "failures",
            },
            ExpressionAttributeValues=dynamo.to_item(values),
            ReturnValues="ALL_NEW",
        )
        return Failure.from_row(dynamo.from_item(res["Attributes"]))

    def get(self, key: str) -> Failure | None:
        """The open item of a record (None: nothing open)."""
        res = dynamo.client().get_item(TableName=self.table, Key=dynamo.to_item({"pk": OPEN, "sk": key}))
        return Failure.from_row(dynamo.from_item(res["Item"])) if "Item" in res else None

    def get_many(self, keys: list[str]) -> dict[str, Failure]:
        """The open items of these records (100 keys per read), by key."""
        rows = dynamo.batch_get(self.table, [{"pk": OPEN, "sk": k} for k in dict.fromkeys(keys)])
        return {f.key: f for f in (Failure.from_row(row) for row in rows)}

    def open(
        self,
        *,
        flow: str | None = None,
        error_type: str | None = None,
        since: str | None = None,
        ids: Iterable[str] | None = None,
    ) -> list[Failure]:
        """The open items, oldest failure first, filtered by flow, error type, last failure after
        ``since`` (an ISO time) and record ids."""
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk" + (" AND begins_with(sk, :flow)" if flow else ""),
            "ExpressionAttributeValues": dynamo.to_item({":pk": OPEN, **({":flow": f"{flow}#"} if flow else {})}),
        }
        wanted = set(ids or [])
        rows = [Failure.from_row(r) for r in dynamo.query(self.table, **kwargs)]
        rows = [
            r
            for r in rows
            if (not error_type or r.error_type == error_type)
            and (not since or r.last_failed_at >= since)
            and (not wanted or r.id in wanted or r.key in wanted)
        ]
        rows.sort(key=lambda r: r.first_failed_at)
        return rows

    def resolved(self, limit: int = 100) -> list[Failure]:
        """The latest resolved items, newest first."""
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": dynamo.to_item({":pk": RESOLVED}),
            "ScanIndexForward": False,
            "Limit": limit,
        }
        return [Failure.from_row(r) for r in dynamo.query(self.table, **kwargs)[:limit]]

    def resolve(self, key: str, resolution: str, by: str, note: str = "") -> Failure | None:
        """Close the open item of ``key`` (None when none was open): it moves to the resolved ones."""
        client = dynamo.client()
        try:
            res = client.delete_item(
                TableName=self.table,
                Key=dynamo.to_item({"pk": OPEN, "sk": key}),
                ConditionExpression="attribute_exists(pk)",
                ReturnValues="ALL_OLD",
            )
        except client.exceptions.ConditionalCheckFailedException:
            return None
        closed = Failure.from_row(dynamo.from_item(res["Attributes"]))
        closed.status, closed.resolution, closed.resolved_by = "resolved", resolution, by
        closed.resolved_at, closed.note = now_iso(), mask(note)[:REASON_CHARS]
        item = {
            "pk": RESOLVED,
            "sk": f"{closed.resolved_at}#{key}",
            **asdict(closed),
            "expires_at": int(time.time()) + RESOLVED_DAYS * 86400,
        }
        client.put_item(TableName=self.table, Item=dynamo.to_item(item))
        return closed
