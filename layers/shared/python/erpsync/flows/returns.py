"""Returns both ways: a store return (an Adobe Commerce RMA) the merchant authorized becomes one ERP
return order (``ReturnRules``: an RM order of receipt lines, at the store's prices, with its tax),
and what the ERP receives on it is written back on the store return (``ErpReturnRules``: each
item's returned quantity and status ``received``, and a comment).

In the run order of ``flows.sync``, store -> ERP: fetch the return (the poll's snapshot) and its
order, for the prices; must-skip: a status the settings do not send (``returns.statuses``: a
pending request waits for a person), nothing authorized, or an order that never reached the ERP
(each filtered with the reason); settled when bound; a lease on the return; the order's ERP sales
order and customer from the orders flow's bindings; create the return order once (a retry after a
lost answer finds it by the store return's number, its ``ExternalRef``); bind both ways, with the
return order's line map (ERP line -> store order item) and the store order.

ERP -> store: settled from the binding before any read when the return order was not made from a
store return (an RM order entered in the ERP reaches the store as the credit memo its receipt
makes, through the erp-credit-memos flow); fetch what its confirmed receipts took in; filtered
while nothing is received; settled when the binding holds these quantities already; write them on
the store return (read back: the store derives the return's status from its items) and remember them.

The money follows by the credit memo the receipt makes in the ERP: the erp-credit-memos flow
finds its store order through this flow's binding, and makes the store credit memo to the cent.
"""

from __future__ import annotations

from decimal import Decimal

from erpsync.flows.base import SyncResult
from erpsync.flows.credit_memos import draft_lines
from erpsync.flows.orders import sent_order_and_customer
from erpsync.flows.sync import RecordSync
from erpsync.model import ChangeNotice, ErpReturnRef, ReturnDraft, ReturnReceipt, ReturnRequest, cents
from erpsync.state.bindings import SYNCED, Binding


class ReturnRules(RecordSync):
    """One authorized store return -> one ERP return order, never twice."""

    def fetch(self, notice: ChangeNotice) -> ReturnRequest:
        request: ReturnRequest = self.ctx.source_port.get(
            notice.id, notice.fresh_snapshot(self.settings.snapshot_max_age_s)
        )
        return request

    def must_skip(self, record: ReturnRequest) -> SyncResult | None:
        bound = self.bindings.get(self.entity, self.source, record.source_id, self.target)
        if bound is not None and bound.status == SYNCED:
            return None  # made already, whatever its status now (received, ...): up_to_date says so
        statuses = self.settings.returns.statuses
        if record.status not in statuses:
            return SyncResult(
                "filtered",
                "",
                f"return {record.number} is {record.status or 'without status'}: returns go to {self.target} "
                f"once {' or '.join(statuses)} (settings returns.statuses)",
            )
        if not record.lines:
            return SyncResult("filtered", "", f"return {record.number} has no units authorized")
        if self.bindings.get("order", self.source, record.order_id, self.target) is None:
            return SyncResult(
                "filtered",
                "",
                f"{self.source} order {record.order_number} never reached {self.target}: no sales order to return to",
            )
        return None

    def up_to_date(self, record: ReturnRequest, binding: Binding | None) -> SyncResult | None:
        if binding is None or binding.status != SYNCED:
            return None
        authorized = _quantities({ln.line_id: ln.qty for ln in record.lines})
        text = f"already in {self.target} as return order {binding.other_id}"
        if authorized != binding.data.get("authorized", authorized):
            text += (
                f"; the units authorized changed since ({binding.data.get('authorized')} -> {authorized}): "
                f"change the return order in {self.target}"
            )
        return SyncResult("skipped", binding.other_id or "", text)

    def dependencies(self, record: ReturnRequest) -> tuple[str, str, str]:
        """``(order type, order number, customer id)`` of the order's ERP sales order."""
        return sent_order_and_customer(self, record.order_id, record.order_number, record.email, "its return")

    def write(
        self, request: ReturnRequest, binding: Binding | None, deps: tuple[str, str, str] | None = None
    ) -> SyncResult:
        order_type, number, customer_id = deps or self.dependencies(request)
        draft = ReturnDraft(
            customer_id=customer_id,
            store_number=request.number,
            store_order=request.order_number,
            currency=request.currency,
            lines=draft_lines(request.lines),
            tax_id=self.settings.tax_id,
            tax_total=cents(sum((ln.tax for ln in request.lines), Decimal(0))),
            description=f"{self.source} return {request.number}, order {request.order_number} ({order_type}/{number})",
        )
        port = self.ctx.target_port
        made, created = self.create_once(
            (self.entity, self.source, request.source_id, self.target),
            binding,
            lambda: port.find(request.number, customer_id),
            lambda: port.create(draft),
            look_first=self.settings.lookup_before_create,
        )
        self._bind(request, made)
        verb = "created" if created else "found"
        units = sum((ln.qty for ln in request.lines), Decimal(0))
        return SyncResult(
            "synced",
            made.key,
            f"{verb} {self.target} return order {made.key} for {self.source} return {request.number} "
            f"({_qty(units)} units of order {request.order_number})",
        )

    def _bind(self, request: ReturnRequest, made: ErpReturnRef) -> None:
        """Both ways in one transaction: the erp-returns flow finds the store return by the return
        order, and the erp-credit-memos flow the store order its credit memo belongs to."""
        line_map = made.line_map or {
            str(n): ln.line_id for n, ln in enumerate(request.lines, start=1)
        }  # an ERP that dropped the line markers: the lines in the order sent
        data = {
            "order": request.order_id,
            "number": request.order_number,
            "return": request.number,
            "line_map": line_map,
            "authorized": _quantities({ln.line_id: ln.qty for ln in request.lines}),
            "received": {},
        }
        self.bindings.bind_pair(
            Binding(self.entity, self.source, request.source_id, self.target, made.key, data=data),
            Binding(self.entity, self.target, made.key, self.source, request.source_id, data=data),
        )


class ErpReturnRules(RecordSync):
    """What an ERP return order received -> the store return it was made from, once per change."""

    def before_fetch(self, notice: ChangeNotice, binding: Binding | None) -> SyncResult | None:
        if binding is None or not binding.other_id:
            return SyncResult(
                "filtered",
                "",
                f"return order {notice.id} was not made from a {self.target} return "
                f"(its credit memo reaches {self.target} through the erp-credit-memos flow)",
            )
        return None

    def fetch(self, notice: ChangeNotice) -> ReturnReceipt:
        receipt: ReturnReceipt = self.ctx.source_port.get(notice.id)
        return receipt

    def must_skip(self, record: ReturnReceipt) -> SyncResult | None:
        if not any(qty > 0 for qty in record.received.values()):
            return SyncResult("filtered", "", f"return order {record.source_id} has received nothing yet")
        return None

    def up_to_date(self, record: ReturnReceipt, binding: Binding | None) -> SyncResult | None:
        assert binding is not None  # before_fetch settled the others
        if self._received(record, binding) == binding.data.get("received"):
            return SyncResult("skipped", binding.other_id or "", f"{self.target} return has these quantities already")
        return None

    def write(self, record: ReturnReceipt, binding: Binding | None, deps: object = None) -> SyncResult:
        assert binding is not None and binding.other_id
        received = self._received(record, binding)
        number = binding.data.get("return") or binding.other_id
        items = ", ".join(f"item {item} x {qty}" for item, qty in sorted(received.items()))
        note = f"Received in {self.source} on return order {record.source_id}: {items}"
        state = self.ctx.target_port.receive(
            binding.other_id, {item: Decimal(qty) for item, qty in received.items()}, note
        )
        data = {**binding.data, "received": received}
        self.bindings.bind_pair(
            Binding(self.entity, self.source, record.source_id, self.target, binding.other_id, data=data),
            Binding(self.entity, self.target, binding.other_id, self.source, record.source_id, data=data),
        )
        return SyncResult(
            "synced",
            binding.other_id,
            f"{self.target} return {number} is {state.status}: {items} received on {record.source_id}",
        )

    @staticmethod
    def _received(record: ReturnReceipt, binding: Binding) -> dict[str, str]:
        """Units received by store order item (lines the binding does not know, added in the ERP by
        hand, are not on the store return and are left out)."""
        line_map: dict[str, str] = binding.data.get("line_map") or {}
        out: dict[str, Decimal] = {}
        for line, qty in record.received.items():
            item = line_map.get(line)
            if item is not None and qty > 0:
                out[item] = out.get(item, Decimal(0)) + qty
        return _quantities(out)


def _qty(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _quantities(by_item: dict[str, Decimal]) -> dict[str, str]:
    """Quantities as the binding stores them (strings, so they compare as they were written)."""
    return {item: _qty(Decimal(qty)) for item, qty in sorted(by_item.items())}
