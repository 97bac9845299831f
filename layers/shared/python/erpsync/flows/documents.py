"""What the shipments and invoices flows share: an ERP document becomes one store document
per order it covers, with every line resolved to the store's own order line.

Run order for one document: fetch it, skip if not final (unconfirmed/unreleased) or if the target
takes nothing of it yet (its port's ``waits``), then per
store order: skip if bound, resolve lines through the order binding's line map, look up a
possibly lost earlier create, create, bind. A target port with ``look_first`` (Shopify's orders
marked paid) is always looked up first; what it holds already is bound and counted as skipped.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TypeVar

from erpsync.errors import MappingMissing
from erpsync.flows.base import SyncResult
from erpsync.flows.sync import RecordSync
from erpsync.model import DocumentLine, Invoice, Shipment
from erpsync.state.bindings import PENDING, Binding

Document = Shipment | Invoice


class DocumentRules(RecordSync):
    """An ERP document (shipment, invoice) -> store documents, one per order it covers."""

    kind: str

    def must_skip(self, record: Document) -> SyncResult | None:
        reason = self.not_final(record) or self.not_taken(record)
        return SyncResult("filtered", "", reason) if reason else None

    def not_taken(self, doc: Document) -> str:
        """Why the store takes nothing of the document yet, when its target port says (``waits``:
        Shopify marks an order paid only on an invoice the ERP holds paid in full); a later change of
        the document rings the flow again."""
        waits = getattr(self.ctx.target_port, "waits", None)
        return str(waits(doc)) if callable(waits) else ""

    def not_final(self, doc: Document) -> str:
        """Why the document is not ready for the store yet ('' when it is)."""
        raise NotImplementedError

    def up_to_date(self, record: Document, binding: Binding | None) -> SyncResult | None:
        return None  # one binding per (document, order) part: settled in ``write``

    def pair_key(self, record: Document, binding: Binding | None) -> str:
        return f"{self.source}:{record.source_id}"

    def create(self, order_id: str, doc: Document, ref: str) -> str:
        raise NotImplementedError

    def write(self, doc: Document, binding: Binding | None, deps: object = None) -> SyncResult:
        by_order: dict[str, list[DocumentLine]] = defaultdict(list)
        for line in doc.lines:
            by_order[line.order_key].append(line)
        done: list[str] = []
        skipped: list[str] = []
        foreign: list[str] = []
        for order_key, lines in by_order.items():
            order = self.bindings.get("order", self.source, order_key, self.target)
            if order is None or not order.other_id:
                foreign.append(order_key)
                continue
            outcome = self._sync_for_order(doc, order.other_id, order.data.get("line_map", {}), lines)
            (done if outcome else skipped).append(outcome or order.data.get("number", order.other_id))
        if not done and not skipped:
            return SyncResult(
                "filtered", "", f"{self.entity} {doc.source_id} covers no order from {self.target}: {foreign}"
            )
        if not done:
            return SyncResult("skipped", ",".join(skipped), f"already in {self.target}")
        return SyncResult("synced", ",".join(done), f"created {self.target} {self.entity}(s) {', '.join(done)}")

    def _sync_for_order(self, doc: Document, order_id: str, line_map: dict[str, str], lines: list[DocumentLine]) -> str:
        """Create the store document for one order; its id, or '' when it already exists."""
        ref = f"{doc.source_id}"
        key = f"{doc.source_id}@{order_id}"
        binding = self.bindings.get(self.entity, self.source, key, self.target)
        if binding and binding.status != PENDING:
            return ""
        resolved = [self._resolve(line, line_map, order_id) for line in lines if line.qty > 0]
        part = doc.model_copy(update={"lines": resolved})
        target = self.ctx.target_port
        # a target whose store may hold the document already (a Shopify order paid there) is asked first
        look_first = bool(getattr(target, "look_first", False))
        made, created = self.create_once(
            (self.entity, self.source, key, self.target),
            binding,
            lambda: target.find(order_id, ref),
            lambda: self.create(order_id, part, ref),
            look_first=look_first,
        )
        self.bindings.bind(self.entity, self.source, key, self.target, str(made))
        return str(made) if created or not look_first else ""

    def _resolve(self, line: DocumentLine, line_map: dict[str, str], order_id: str) -> DocumentLine:
        return resolve_line(line, line_map, f"{self.entity} line", f"{self.target} order {order_id}")


Line = TypeVar("Line", bound=DocumentLine)


def resolve_line(line: Line, line_map: dict[str, str], what: str, order: str) -> Line:
    """``line`` with the store's own order line (``store_line_id``) from the order binding's
    ``line_map`` (ERP line number -> store line); ``what`` and ``order`` name them in the failure."""
    store_line = line_map.get(str(line.line_nbr)) if line.line_nbr is not None else None
    if not store_line:
        raise MappingMissing(
            f"{what} {line.line_nbr} ({line.sku}) of order {line.order_number} has no matching line on {order}"
        )
    return line.model_copy(update={"store_line_id": store_line})


class ShipmentRules(DocumentRules):
    """Confirmed ERP shipments become store shipments with tracking."""

    def not_final(self, doc: Document) -> str:
        return "" if isinstance(doc, Shipment) and doc.confirmed else f"shipment {doc.source_id} is {doc.status}"

    def create(self, order_id: str, doc: Document, ref: str) -> str:
        assert isinstance(doc, Shipment)
        carrier = self.settings.carriers.get(doc.ship_via or "", self.settings.default_carrier)
        return str(self.ctx.target_port.create(order_id, doc, ref, carrier))


class InvoiceRules(DocumentRules):
    """Released ERP invoices become store invoices (and complete the order once all is done)."""

    def not_final(self, doc: Document) -> str:
        return "" if isinstance(doc, Invoice) and doc.released else f"invoice {doc.source_id} is {doc.status}"

    def create(self, order_id: str, doc: Document, ref: str) -> str:
        assert isinstance(doc, Invoice)
        return str(self.ctx.target_port.create(order_id, doc, ref))
