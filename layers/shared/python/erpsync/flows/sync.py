"""The one record-sync run order every flow uses (after OCA connector's importer):

1. the binding, then fetch the source record (``before_fetch`` may settle it from the binding alone);
2. must-skip rules: skip, filter (logged with the reason) or fail (``PermanentError``);
3. binding: is this record already paired with one on the target?
4. up to date? the source version, and the content hash of what we last wrote to this side (an
   equal hash is our own echo: skipped without a write) or last synced from it;
5. a lease on the *pair* of records, so the two directions of one record never run at once;
6. dependencies first (the customer before the order);
7. map, then create or update on the target (a create that lost its answer is looked up first,
   and not sent again while the target may still be applying it: ``create_once``);
8. bind, with the new hashes, on both binding items in one transaction.

``RecordSync`` holds the order; each entity's rules (``flows/<entity>.py``) fill in the steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from erpsync.errors import PermanentError, RetryableError, may_have_been_applied
from erpsync.flows.base import SyncResult
from erpsync.flows.catalog import FlowSpec
from erpsync.model import ChangeNotice
from erpsync.settings import Settings
from erpsync.state.bindings import PENDING, AlreadyBound, Binding, Bindings
from erpsync.state.guards import Leases

T = TypeVar("T")


@dataclass
class FlowContext:
    """What one flow between two connections works with."""

    spec: FlowSpec
    source: str
    """Source connection id."""
    target: str
    """Target connection id."""
    source_port: Any
    target_port: Any
    bindings: Bindings
    settings: Settings
    """The settings in force for this route (overrides merged)."""
    leases: Leases | None = None
    extra: dict[tuple[str, str], Any] = field(default_factory=dict)
    """Other ports a flow's dependencies need, e.g. ``("customer", "target")``."""


class FlowRules:
    """What every flow's rules hold: the context, its bindings, both connections and the entity."""

    def __init__(self, ctx: FlowContext) -> None:
        self.ctx = ctx
        self.bindings = ctx.bindings
        self.source, self.target = ctx.source, ctx.target
        self.entity = ctx.spec.entity

    @property
    def settings(self) -> Settings:
        return self.ctx.settings


class RecordSync(FlowRules):
    """The run order. Subclasses are an entity's rules; they override the steps they need."""

    # -- the run order ---------------------------------------------------------------------------

    def sync(self, notice: ChangeNotice) -> SyncResult:
        binding = self.bindings.get(self.entity, self.source, notice.id, self.target)
        early = self.before_fetch(notice, binding)
        if early is not None:
            return early
        record = self.fetch(notice)
        skipped = self.must_skip(record)
        if skipped is not None:
            return skipped
        if self.source_id(record) != notice.id:  # the notice named the record another way
            binding = self.bindings.get(self.entity, self.source, self.source_id(record), self.target)
        current = self.up_to_date(record, binding)
        if current is not None:
            return current
        with self._pair_lease(self.pair_key(record, binding)):
            deps = self.dependencies(record)
            return self.write(record, binding, deps)

    def _pair_lease(self, key: str) -> Any:
        from contextlib import nullcontext

        return self.ctx.leases.hold(f"{self.entity}#{key}") if self.ctx.leases else nullcontext()

    # -- the steps ---------------------------------------------------------------------------------

    def before_fetch(self, notice: ChangeNotice, binding: Binding | None) -> SyncResult | None:
        """Settle the notice without reading the source (e.g. an order already in the ERP);
        ``binding`` is the record's, read once for the whole run."""
        return None

    def fetch(self, notice: ChangeNotice) -> Any:
        return self.ctx.source_port.get(notice.id)

    def source_id(self, record: Any) -> str:
        return str(record.source_id)

    def must_skip(self, record: Any) -> SyncResult | None:
        """``SyncResult('filtered'|'skipped', ...)`` to leave the record out; raise to fail it."""
        return None

    def up_to_date(self, record: Any, binding: Binding | None) -> SyncResult | None:
        """Skip a record whose content we already synced, or that is our own echo."""
        if binding is None or binding.status != "synced":
            return None
        digest = self.content_hash(record)
        if digest is None:
            return None
        if digest == binding.written_hash:
            return SyncResult("skipped", binding.other_id or "", f"echo of our own write to {self.source}")
        if digest == binding.seen_hash:
            return SyncResult("skipped", binding.other_id or "", "unchanged since the last sync")
        return None

    def content_hash(self, record: Any) -> str | None:
        """The hash of what this flow syncs of ``record`` (None: no hash comparison)."""
        return None

    def pair_key(self, record: Any, binding: Binding | None) -> str:
        """The lease key shared by both directions of this pair."""
        if binding is not None and binding.other_id:
            return "|".join(sorted((f"{self.source}:{self.source_id(record)}", f"{self.target}:{binding.other_id}")))
        return f"{self.source}:{self.source_id(record)}"

    def bind_one_way(self, record: Any, other_id: str, data: dict[str, Any]) -> None:
        """Bind a record of a one-way flow (the catalog): one item, with the record's version and the
        hash of what was synced (its ``up_to_date`` reads them)."""
        self.bindings.put(
            Binding(
                self.entity,
                self.source,
                self.source_id(record),
                self.target,
                other_id,
                version=record.version,
                seen_hash=self.content_hash(record),
                data=data,
            )
        )

    def dependencies(self, record: Any) -> Any:
        """Sync what the record needs on the target first; what it returns is handed to ``write``.
        (Rules hold no per-record state: a batch runs its records on several threads.)"""
        return None

    def write(self, record: Any, binding: Binding | None, deps: Any = None) -> SyncResult:
        """Map, create or update, bind."""
        raise NotImplementedError

    # -- creating exactly once -------------------------------------------------------------------

    def _look_up(
        self, key: tuple[str, str, str, str], pending: Binding | None, find: Callable[[], T | None]
    ) -> T | None:
        """``find``; nothing found while ``pending``'s create may still be applied is an ``in_doubt`` retry."""
        found = find()
        if found is not None:
            return found
        left = pending.in_doubt_until - time.time() if pending is not None else 0.0
        if left > 0:
            raise RetryableError(
                f"an earlier create of {key[0]} {key[2]} in {key[3]} got no answer and is not there yet: "
                f"looking again in {left:.0f}s before creating it",
                error_type="in_doubt",
                system=key[3],
                retry_after=left,
            )
        return None

    def create_once(
        self,
        key: tuple[str, str, str, str],
        binding: Binding | None,
        find: Callable[[], T | None],
        create: Callable[[], T],
        *,
        look_first: bool = False,
    ) -> tuple[T, bool]:
        """``(record, created)``: the target record of the binding ``key`` (entity, system, id,
        other system), created at most once.

        A binding still pending means an earlier create may have gone through: ``find`` looks for
        it first (so does ``look_first``: the record may be there from before the bindings). A
        create whose answer was lost (``may_have_been_applied``) marks the binding in doubt for
        ``settings.in_doubt_wait_s``: the target may still be applying it, so until then a retry
        that does not find it waits instead of creating a second one. A create the target refuses
        (e.g. a category's url key taken) is looked for once more: two workers syncing one
        dependency at once (two products of one category) both miss it and both create it, and
        the slower one finds the faster one's.
        """
        pending = binding is not None and binding.status == PENDING
        if pending or look_first:
            found = self._look_up(key, binding if pending else None, find)
            if found is not None:
                return found, False
        try:
            marked = self.bindings.mark_pending(*key)
        except AlreadyBound:  # two workers on one dependency (two products of one category): take theirs
            found = find()
            if found is not None:
                return found, False
            raise
        if not pending and marked.attempts > 1:
            # another worker marked it pending after ``binding`` was read (a webhook delivered twice):
            # its create may have gone through, answer lost; look before creating a second one
            found = self._look_up(key, marked, find)
            if found is not None:
                return found, False
        try:
            return create(), True
        except Exception as exc:
            if may_have_been_applied(exc):
                self.bindings.mark_in_doubt(*key, until=time.time() + self.settings.in_doubt_wait_s)
            elif isinstance(exc, PermanentError):  # refused: another worker may have made it meanwhile
                found = find()
                if found is not None:
                    return found, False
            raise
