"""Flows that write many records in one request (stock, prices): the shared run order.

Stock levels and price sets have no change date in the ERP (they are read by inquiry) and many of
them change at once, so their rules differ from ``RecordSync`` in two ways:

- ``sync_many`` takes a whole queue batch: each SKU's value is read (from the notice's fresh
  snapshot when the poll read it already), compared by content hash with what was last written
  (unchanged: skipped without a write; older than what was written: skipped), and the changed ones
  go to the store in as few requests as its API allows;
- the binding is one item per SKU (``<entity>#<erp>#<sku>`` -> store), holding the hash and the
  ERP reading time of what was last written. There is nothing to create and no reverse direction.
  A SKU written for the first time is looked for in the store first (one search for the batch):
  one the products flow has not made yet waits (retried, ``waiting_for_product``) instead of
  failing on the store's refusal.

Each record still gets its own outcome: a SKU the store refuses fails alone with the store's reason.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from erpsync.errors import PermanentError, RetryableError
from erpsync.flows.base import SyncResult
from erpsync.flows.sync import FlowRules
from erpsync.model import ChangeNotice
from erpsync.state.bindings import Binding


class StoreRefused(PermanentError):
    error_type = "refused"


def digest(value: Any) -> str:
    raw = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


class BatchedSync(FlowRules):
    """The run order of a flow that writes many SKUs per request. Subclasses say how a SKU's value
    is put in the store's terms (``for_store``, may filter) and written (``write``)."""

    noun = "record"

    # -- what subclasses fill in -------------------------------------------------------------------

    def read(self, notices: list[ChangeNotice]) -> dict[str, Any]:
        """SKU -> the ERP's value now: a notice's fresh snapshot stands in for a read, the rest are
        read in one go (the source port's ``from_snapshot`` and ``get_many``)."""
        port = self.ctx.source_port
        found, to_read = self.fresh(notices, port.from_snapshot)
        if to_read:
            found.update(port.get_many(to_read))
        return found

    def for_store(self, value: Any) -> tuple[Any, str]:
        """``(what the store is to hold, "")``, or ``(None, why)`` to leave the SKU out."""
        raise NotImplementedError

    def write(self, values: list[Any]) -> dict[str, str]:
        """Write them; SKU -> why the store refused it."""
        raise NotImplementedError

    def projection(self, value: Any) -> Any:
        """What is hashed of a store-ready value."""
        return value.model_dump(mode="json", exclude={"version"})

    def prepare(self, ready: Any, old: Binding | None) -> Any:
        """A changed value about to be written, given what was written last (``old``): subclasses
        say there what the store holds that the ERP no longer has."""
        return ready

    def remember(self, ready: Any) -> dict[str, Any]:
        """What the binding keeps of a value written (for ``prepare`` next time)."""
        return {}

    # -- the run order -----------------------------------------------------------------------------

    def sync(self, notice: ChangeNotice) -> SyncResult:
        answer = self.sync_many([notice])[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def sync_many(self, notices: list[ChangeNotice]) -> list[SyncResult | Exception]:
        values = self.read(notices)
        bindings = self.bindings.get_many(self.entity, self.source, list(values), self.target)
        settled: dict[str, SyncResult | Exception] = {}
        pending: list[tuple[str, Any, str]] = []
        for sku, value in values.items():
            ready, why = self.for_store(value)
            if ready is None:
                settled[sku] = SyncResult("filtered", "", why)
                continue
            h = digest(self.projection(ready))
            b = bindings.get(sku)
            if b is not None and b.seen_hash == h:
                settled[sku] = SyncResult("skipped", sku, f"{self.noun} unchanged since the last sync")
            elif b is not None and _older(value.version, b.version):
                settled[sku] = SyncResult("skipped", sku, f"a newer reading ({b.version}) was synced already")
            else:
                pending.append((sku, self.prepare(ready, b), h))
        first = [sku for sku, _, _ in pending if bindings.get(sku) is None]
        absent = self.ctx.target_port.missing(first) if first else set()
        for sku in absent:  # the products flow has not made it yet (or left the item out)
            settled[sku] = RetryableError(
                f"{self.target} has no product {sku} yet: its {self.noun} waits for the products flow to make it",
                error_type="waiting_for_product",
                system=self.target,
            )
        pending = [p for p in pending if p[0] not in absent]
        if pending:
            refused = self.write([ready for _, ready, _ in pending])
            done = []
            for sku, ready, h in pending:
                if sku in refused:
                    settled[sku] = StoreRefused(
                        f"{self.target} refused the {self.noun} of {sku}: {refused[sku]}", system=self.target
                    )
                    continue
                done.append(self._binding(sku, values[sku], h, bindings.get(sku), self.remember(ready)))
                settled[sku] = SyncResult("synced", sku, self.describe(ready))
            self.bindings.put_many(done)
        return [settled.get(n.id) or _missing(n, self.source) for n in notices]

    def describe(self, ready: Any) -> str:
        return f"{self.noun} written to {self.target}"

    def _binding(self, sku: str, value: Any, h: str, old: Binding | None, kept: dict[str, Any]) -> Binding:
        return Binding(
            self.entity,
            self.source,
            sku,
            self.target,
            sku,
            version=value.version,
            seen_hash=h,
            data={**(old.data if old is not None else {}), **kept},
        )

    # -- helpers -----------------------------------------------------------------------------------

    def fresh(
        self, notices: list[ChangeNotice], parse: Callable[[dict[str, Any]], Any]
    ) -> tuple[dict[str, Any], list[str]]:
        """The values the notices' fresh snapshots hold (newest per SKU), and the SKUs to read."""
        found: dict[str, Any] = {}
        to_read: list[str] = []
        for n in notices:
            snap = n.fresh_snapshot(self.settings.snapshot_max_age_s)
            if snap is None:
                to_read.append(n.id)
                continue
            value = parse(snap)
            if n.id not in found or _older(found[n.id].version, value.version):
                found[n.id] = value
        return found, [s for s in dict.fromkeys(to_read) if s not in found]


def _older(a: str | None, b: str | None) -> bool:
    """Whether version ``a`` is older than ``b``: ISO times with a zone compare as instants, without
    one as text; one with and one without (Business One's versions were its server's local time
    before they were UTC) cannot be compared, nor can other versions (a digest of the quantities, as
    B1's stock) or unknown ones: none of those is older."""
    if not (a and b and _TIME.match(a) and _TIME.match(b)):
        return False
    try:
        when_a, when_b = datetime.fromisoformat(a), datetime.fromisoformat(b)
    except ValueError:
        return a < b
    if (when_a.tzinfo is None) != (when_b.tzinfo is None):
        return False
    return when_a < when_b if when_a.tzinfo is not None else a < b


_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _missing(notice: ChangeNotice, source: str) -> SyncResult:
    return SyncResult("filtered", "", f"{notice.id} is not in {source} (not a sold item): nothing to write")
