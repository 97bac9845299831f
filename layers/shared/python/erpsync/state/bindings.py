"""Bindings: which record on one side is which record on the other, and what we last wrote.

One item per direction, so either side's id finds the other in one read:
``pk = <entity>#<connection>#<id>``, ``sk = <other connection>`` (connection ids default to the
system kinds, so bindings written before connections existed read the same). Each item keeps the
hashes of its side: what we last synced (``seen_hash``) and what that side held right after our
last write (``written_hash``), so a change that is only our own echo is recognised. An item is ``pending`` from just
before a create until the create is bound; a pending binding tells the next attempt that a
response may have been lost, so it must look the record up before creating it again.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from erpsync.errors import RetryableError
from erpsync.state import dynamo

SYNCED = "synced"
PENDING = "pending"


class AlreadyBound(RetryableError):
    """A create was about to be marked pending, but another worker bound the record meanwhile."""

    error_type = "busy"


@dataclass
class Binding:
    entity: str
    system: str
    id: str
    other_system: str
    other_id: str | None = None
    status: str = SYNCED
    hash: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    updated_at: float = 0.0
    attempts: int = 0
    version: str | None = None
    """This side's change marker when we last synced from or to it."""
    seen_hash: str | None = None
    """Content hash of this side's record as we last synced it."""
    written_hash: str | None = None
    """Content hash of this side's record as it stood right after our last write to it: a change
    that comes back with this hash is our own echo."""
    in_doubt_until: float = 0.0
    """Pending only: the create sent last got no answer; until this time (epoch seconds) the target
    may still be applying it, so a retry that does not find it must not create it again yet."""

    @property
    def key(self) -> dict[str, str]:
        return {"pk": f"{self.entity}#{self.system}#{self.id}", "sk": self.other_system}


class Bindings:
    """The bindings table (also home of cursors and settings: see those modules)."""

    def __init__(self, table: str) -> None:
        self.table = table

    def get(self, entity: str, system: str, id: str, other_system: str) -> Binding | None:
        res = dynamo.client().get_item(
            TableName=self.table,
            Key=dynamo.to_item({"pk": f"{entity}#{system}#{id}", "sk": other_system}),
            ConsistentRead=True,
        )
        if "Item" not in res:
            return None
        b = self._binding(dynamo.from_item(res["Item"]))
        b.entity, b.system, b.id, b.other_system = entity, system, id, other_system
        return b

    def mark_pending(self, entity: str, system: str, id: str, other_system: str) -> Binding:
        """Record that a create is about to be sent (counts the attempts); returns the binding.
        ``AlreadyBound`` when another worker bound the record since it was read."""
        key = {"pk": f"{entity}#{system}#{id}", "sk": other_system}
        try:
            res = dynamo.client().update_item(
                TableName=self.table,
                Key=dynamo.to_item(key),
                UpdateExpression="SET #s = :p, updated_at = :now ADD attempts :one",
                ConditionExpression="attribute_not_exists(#s) OR #s = :p",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=dynamo.to_item({":p": PENDING, ":now": time.time(), ":one": 1}),
                ReturnValues="ALL_NEW",
            )
        except dynamo.client().exceptions.ConditionalCheckFailedException:
            raise AlreadyBound(
                f"{entity} {id} was bound to {other_system} by another worker meanwhile", system=other_system
            ) from None
        row = dynamo.from_item(res["Attributes"])
        return Binding(
            entity,
            system,
            id,
            other_system,
            status=PENDING,
            attempts=int(row.get("attempts", 1)),
            in_doubt_until=float(row.get("in_doubt_until", 0)),
        )

    def mark_in_doubt(self, entity: str, system: str, id: str, other_system: str, until: float) -> None:
        """The create just sent on this pending binding got no answer: it may be applied up to ``until``."""
        key = {"pk": f"{entity}#{system}#{id}", "sk": other_system}
        try:
            dynamo.client().update_item(
                TableName=self.table,
                Key=dynamo.to_item(key),
                UpdateExpression="SET in_doubt_until = :u",
                ConditionExpression="#s = :p",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=dynamo.to_item({":u": until, ":p": PENDING}),
            )
        except dynamo.client().exceptions.ConditionalCheckFailedException:
            pass  # bound meanwhile (another worker found it): nothing is in doubt

    def bind(
        self,
        entity: str,
        system: str,
        id: str,
        other_system: str,
        other_id: str,
        *,
        hash: str | None = None,
        data: dict[str, Any] | None = None,
        reverse_data: dict[str, Any] | None = None,
    ) -> Binding:
        """Bind both directions: ``system/id`` <-> ``other_system/other_id``."""
        now = time.time()
        forward = Binding(entity, system, id, other_system, other_id, SYNCED, hash, data or {}, now)
        reverse = Binding(entity, other_system, other_id, system, id, SYNCED, hash, reverse_data or {}, now)
        # the reverse item first: a forward item marked synced always has its twin
        for b in (reverse, forward):
            dynamo.client().put_item(TableName=self.table, Item=dynamo.to_item(self._row(b)))
        return forward

    def find(self, entity: str, system: str, id: str, other_system: str) -> str | None:
        """The other side's id, if bound and synced."""
        b = self.get(entity, system, id, other_system)
        return b.other_id if b and b.status == SYNCED else None

    def put(self, b: Binding) -> None:
        """Write one item alone (an index or a marker that has no twin)."""
        b.status, b.updated_at = SYNCED, time.time()
        dynamo.client().put_item(TableName=self.table, Item=dynamo.to_item(self._row(b)))

    def bind_pair(self, forward: Binding, reverse: Binding, *, also: list[Binding] | None = None) -> None:
        """Write both items of a pair (and ``also``: e.g. an email index) in one transaction, so
        neither side ever sees a half-bound pair."""
        now = time.time()
        items = [forward, reverse, *(also or [])]
        for b in items:
            b.status, b.updated_at = SYNCED, now
        dynamo.client().transact_write_items(
            TransactItems=[{"Put": {"TableName": self.table, "Item": dynamo.to_item(self._row(b))}} for b in items]
        )

    @staticmethod
    def _row(b: Binding) -> dict[str, Any]:
        row = {
            **b.key,
            "entity": b.entity,
            "other_id": b.other_id,
            "status": b.status,
            "hash": b.hash,
            "data": b.data,
            "updated_at": b.updated_at,
        }
        for name in ("version", "seen_hash", "written_hash"):
            if getattr(b, name) is not None:
                row[name] = getattr(b, name)
        return row

    def get_many(self, entity: str, system: str, ids: list[str], other_system: str) -> dict[str, Binding]:
        """The bindings of ``ids`` that exist (100 keys per read)."""
        keys = [{"pk": f"{entity}#{system}#{x}", "sk": other_system} for x in dict.fromkeys(ids)]
        found = [self._binding(row) for row in dynamo.batch_get(self.table, keys, ConsistentRead=True)]
        return {b.id: b for b in found}

    def put_many(self, bindings: list[Binding]) -> None:
        """Write items that have no twin (25 per request)."""
        now = time.time()
        for b in bindings:
            b.status, b.updated_at = SYNCED, now
        dynamo.batch_put(self.table, [self._row(b) for b in bindings])

    @staticmethod
    def _binding(row: dict[str, Any]) -> Binding:
        entity, system, id = str(row["pk"]).split("#", 2)
        return Binding(
            entity=entity,
            system=system,
            id=id,
            other_system=str(row["sk"]),
            other_id=row.get("other_id"),
            status=row.get("status", SYNCED),
            hash=row.get("hash"),
            data=row.get("data", {}),
            updated_at=float(row.get("updated_at", 0)),
            attempts=int(row.get("attempts", 0)),
            version=row.get("version"),
            seen_hash=row.get("seen_hash"),
            written_hash=row.get("written_hash"),
            in_doubt_until=float(row.get("in_doubt_until", 0)),
        )

    def unbound(self, entity: str, system: str, ids: list[str], other_system: str) -> list[str]:
        """Those of ``ids`` with no synced binding (100 keys per read)."""
        keys = [{"pk": f"{entity}#{system}#{x}", "sk": other_system} for x in dict.fromkeys(ids)]
        rows = dynamo.batch_get(
            self.table, keys, ProjectionExpression="pk, #s", ExpressionAttributeNames={"#s": "status"}
        )
        bound = {str(row["pk"]).split("#", 2)[2] for row in rows if row.get("status") == SYNCED}
        return [x for x in ids if x not in bound]


SETTLE_S = 2.0
"""How long after a whole-second version's second a read must come to have seen its last change
(one second, and one for the clocks of the two systems)."""
_WHOLE_SECOND = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(Z|[+-]\d{2}:?\d{2})?$")


def settled(version: str, read_at: Any) -> bool:
    """Whether a record read at ``read_at`` (epoch seconds) was the last state of ``version``.

    A version that is a time stamp of whole seconds (Shopify's ``updatedAt``, Magento's
    ``updated_at``, QuickBooks' ``LastUpdatedTime``) names every change made in that second: a
    change right after our own write, in the same second, keeps the version our write left. Only a
    read at least ``SETTLE_S`` after that second proves the version final; before, a notice of that
    version is read again (the content hash then tells an echo from a change). Other versions
    (finer stamps, counters) and marks without a read time are final."""
    if read_at is None:
        return True
    m = _WHOLE_SECOND.match(version.strip())
    if not m:
        return True
    date, clock, zone = m.groups()
    zone = (zone or "Z").replace("Z", "+00:00")
    if len(zone) == 5:  # +0000
        zone = f"{zone[:3]}:{zone[3:]}"
    try:
        stamp = datetime.fromisoformat(f"{date}T{clock}{zone}")
    except ValueError:
        return True
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return float(read_at) >= stamp.timestamp() + SETTLE_S


class SeenVersions:
    """The source version each flow last finished a record at, with when the record was read, so a
    poll or a duplicate notice can leave out what was handled (a re-read of the look-back window
    then costs no call to the source): only a version ``settled`` by that read counts."""

    def __init__(self, table: str) -> None:
        self.table = table

    @staticmethod
    def _item(flow: str, id: str, version: str, read_at: float | None) -> dict[str, Any]:
        return {"pk": f"seen#{flow}#{id}", "sk": "-", "version": version, "at": read_at}

    def mark(self, flow: str, id: str, version: str, read_at: float | None = None) -> None:
        """``read_at``: when the record was read (default now)."""
        at = time.time() if read_at is None else read_at
        dynamo.client().put_item(TableName=self.table, Item=dynamo.to_item(self._item(flow, id, version, at)))

    def mark_many(self, flow: str, versions: dict[str, str | tuple[str, float]]) -> None:
        """``mark`` for many records (a version, or a version and its read time), 25 a request."""
        now = time.time()
        items = []
        for id, v in versions.items():
            version, at = v if isinstance(v, tuple) else (v, now)
            items.append(self._item(flow, id, version, at))
        dynamo.batch_put(self.table, items)

    @staticmethod
    def finished(row: dict[str, Any]) -> str | None:
        """The version a ``seen#`` row proves finished (None: not settled by its read)."""
        version = str(row.get("version", ""))
        return version if settled(version, row.get("at")) else None

    def get_keys(self, keys: list[str]) -> dict[str, str]:
        """The finished versions of ``<flow>#<id>`` keys (any flows), by key."""
        rows = dynamo.batch_get(self.table, [{"pk": f"seen#{k}", "sk": "-"} for k in dict.fromkeys(keys)])
        found = {str(row["pk"]).removeprefix("seen#"): self.finished(row) for row in rows}
        return {k: v for k, v in found.items() if v is not None}

    def get_many(self, flow: str, ids: list[str]) -> dict[str, str]:
        done, _ = self.standing(flow, ids)
        return done

    def standing(self, flow: str, ids: list[str]) -> tuple[dict[str, str], dict[str, str]]:
        """The finished versions of ``ids``, and the versions a poll queued whose notice no worker
        has taken since (one read)."""
        unique = list(dict.fromkeys(ids))
        keys = [{"pk": f"{kind}#{flow}#{x}", "sk": "-"} for kind in ("seen", "queued") for x in unique]
        done: dict[str, str] = {}
        read: dict[str, float] = {}
        queued: dict[str, tuple[str, float]] = {}
        now = int(time.time())
        for row in dynamo.batch_get(self.table, keys):
            pk = str(row["pk"])
            if pk.startswith("seen#"):
                id = pk.removeprefix(f"seen#{flow}#")
                read[id] = float(row.get("at") or 0)
                version = self.finished(row)
                if version is not None:
                    done[id] = version
            elif int(row.get("expires_at", 0)) > now:  # DynamoDB's TTL deletes late
                queued[pk.removeprefix(f"queued#{flow}#")] = (str(row.get("version", "")), float(row.get("at") or 0))
        waiting = {id: v for id, (v, at) in queued.items() if at > read.get(id, 0.0)}
        return done, waiting

    def mark_queued(self, flow: str, versions: dict[str, str], hold_s: int) -> None:
        """Polls leave these versions out for ``hold_s``: their notices are in the queue (and a
        failure goes to the failures desk), so a poll that re-reads them before the worker has
        finished them queues nothing twice."""
        now = time.time()
        dynamo.batch_put(
            self.table,
            [
                {"pk": f"queued#{flow}#{x}", "sk": "-", "version": v, "at": now, "expires_at": int(now) + hold_s}
                for x, v in versions.items()
            ],
        )
