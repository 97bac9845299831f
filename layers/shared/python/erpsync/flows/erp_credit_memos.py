"""ERP credit memos, ERP -> store: a credit memo entered in the ERP against a store order (made
from the invoice's lines, or by a return order) becomes one offline credit memo on that store
order, of the ERP's amount to the cent.

In the run order of ``flows.sync``: settled from the binding before any read when already in the
store; fetch (its lines resolved to the sales order lines they credit); must-skip rules: not
released yet, made by erpsync from a store credit memo (its ``ExternalRef``: it never goes back),
crediting no order line, or an order that is not in the store (each filtered with the reason); a
lease on the credit memo; the store order and its line map from the order's binding, or from the
return order's when a receipt made it (see ``flows.returns``; a credit memo that spans several
store orders fails: credit them one order at a time); create the store
credit memo of its lines and shipping, the adjustment taking up the rest so the total is the ERP's;
bind both ways, so the credit-memos flow never sends the store credit memo back; write the store
order number into the ERP credit memo's ``CustomerOrder`` (``erpsync reconcile`` counts it by it).

Nothing is made twice: the store credit memo carries the ERP credit memo number in a marker
comment, and a retry after a lost answer finds it by it.
"""

from __future__ import annotations

from erpsync.errors import PermanentError, ValidationFailed
from erpsync.flows.base import SyncResult
from erpsync.flows.documents import resolve_line
from erpsync.flows.sync import RecordSync
from erpsync.model import ChangeNotice, CreditNote, StoreRefundDraft, StoreRefundRef, cents
from erpsync.state.bindings import PENDING, Binding


class ErpCreditMemoRules(RecordSync):
    """One ERP credit memo -> one offline store credit memo on its order, never back again."""

    def before_fetch(self, notice: ChangeNotice, binding: Binding | None) -> SyncResult | None:
        if binding and binding.status != PENDING:
            return SyncResult("skipped", binding.other_id or "", f"already in {self.target}")
        return None

    def fetch(self, notice: ChangeNotice) -> CreditNote:
        note: CreditNote = self.ctx.source_port.get(notice.id)
        return note

    def must_skip(self, record: CreditNote) -> SyncResult | None:
        if not record.released:
            return SyncResult("filtered", "", f"credit memo {record.source_id} is {record.status or 'not released'}")
        if record.external_ref:
            return SyncResult(
                "filtered",
                "",
                f"carries store credit memo {record.external_ref} (ExternalRef): it was made from the store's",
            )
        if not record.lines:
            return SyncResult(
                "filtered", "", f"credit memo {record.source_id} credits no sales order line: no store order to credit"
            )
        orders = sorted({line.order_key for line in record.lines})
        if len(orders) > 1:
            raise ValidationFailed(
                f"{self.source} credit memo {record.source_id} credits {len(orders)} sales orders "
                f"({', '.join(orders)}): "
                f"a store credit memo belongs to one order; credit them one order at a time",
                system=self.source,
            )
        if self._store_order(orders[0]) is None:
            return SyncResult("filtered", "", f"sales order {orders[0]} is not a {self.target} order")
        return None

    def up_to_date(self, record: CreditNote, binding: Binding | None) -> SyncResult | None:
        return None  # settled before the fetch

    def pair_key(self, record: CreditNote, binding: Binding | None) -> str:
        return f"{self.source}:creditnote:{record.source_id}"

    def dependencies(self, record: CreditNote) -> tuple[str, str, dict[str, str]]:
        """``(store order id, store order number, line map)`` of the order the credit memo credits."""
        found = self._store_order(record.lines[0].order_key)
        assert found is not None  # must_skip filtered the others
        return found

    def _store_order(self, order_key: str) -> tuple[str, str, dict[str, str]] | None:
        """``(store order id, number, line map)`` of ERP order ``order_key``: a sales order bound to
        a store order, or a return order made from a store return (its lines map to the store
        order's items it takes back)."""
        order = self.bindings.get("order", self.source, order_key, self.target)
        if order is not None and order.other_id:
            return order.other_id, str(order.data.get("number") or order.other_id), order.data.get("line_map") or {}
        made = self.bindings.get("return", self.source, order_key, self.target)
        if made is not None and made.data.get("order"):
            store_order = str(made.data["order"])
            return store_order, str(made.data.get("number") or store_order), made.data.get("line_map") or {}
        return None

    def write(
        self, note: CreditNote, binding: Binding | None, deps: tuple[str, str, dict[str, str]] | None = None
    ) -> SyncResult:
        order_id, order_number, line_map = deps or self.dependencies(note)
        draft = StoreRefundDraft(
            order_id=order_id,
            ref=note.source_id,
            lines=[
                resolve_line(line, line_map, "credit memo line", f"{self.target} order {order_number}")
                for line in note.lines
                if line.qty > 0
            ],
            shipping=note.freight,
            total=note.total,
            description=f"Credited in {self.source}: credit memo {note.source_id}",
        )
        port = self.ctx.target_port
        made, created = self.create_once(
            (self.entity, self.source, note.source_id, self.target),
            binding,
            lambda: port.find(order_id, note.source_id),
            lambda: port.create(draft),
            look_first=self.settings.lookup_before_create,
        )
        self._bind(note, made, order_id)
        verb = "created" if created else "found"
        text = f"{verb} {self.target} credit memo {made.number or made.id} of {made.total} on order {order_number}"
        if note.customer_order != order_number:
            try:
                self.ctx.source_port.mark(note.source_id, order_number)
            except PermanentError as exc:  # made and bound: say so, reconcile will not count it
                text += f"; {self.source} kept its CustomerOrder ({exc}): reconcile will not count it"
        if made.adjustment:
            text += f" (adjustment {made.adjustment} so it is the {self.source}'s {cents(note.total)})"
        if cents(made.total) != cents(note.total):  # a store that priced it otherwise: say so, it is made
            text += f"; it differs from the {self.source}'s {cents(note.total)}: look at it"
        return SyncResult("synced", made.id, text)

    def _bind(self, note: CreditNote, made: StoreRefundRef, order_id: str) -> None:
        """Both ways in one transaction: the credit-memos flow finds the store credit memo bound
        (born in the ERP) and never sends it back."""
        data = {"total": str(cents(note.total)), "order": order_id, "born": self.source}
        self.bindings.bind_pair(
            Binding(self.entity, self.source, note.source_id, self.target, made.id, data=data),
            Binding(self.entity, self.target, made.id, self.source, note.source_id, data=data),
        )
