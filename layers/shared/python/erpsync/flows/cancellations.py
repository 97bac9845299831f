"""Cancellations, store -> ERP: a store order canceled after it reached the ERP cancels its ERP
sales order.

In the run order of ``flows.sync``: fetch the order (or the poll's fresh snapshot); must-skip: an
order that is not canceled, or one that never reached the ERP (the orders flow filtered it: nothing
to cancel there); settled when the binding says it is canceled already; a lease on the order; then
cancel the sales order (``CancelSalesOrder``) and bind. An ERP order that has shipped cannot be
canceled: the ERP's reason puts the record on the failures desk, where a person decides (a return,
a credit memo). Canceling twice (a retry after a lost answer) is harmless: an order already canceled
is left as it is.

The schedule's poll finds cancellations (the poll reads whole orders, so it costs no extra read);
a store order's webhook rings the orders and the payments flows only, so a cancellation reaches the
ERP at the next poll rather than at once.
"""

from __future__ import annotations

from erpsync.flows.base import SyncResult
from erpsync.flows.orders import sent_order
from erpsync.flows.sync import RecordSync
from erpsync.model import ChangeNotice, Order
from erpsync.state.bindings import SYNCED, Binding

CANCELED = "canceled"
"""Magento's state (and status) of a canceled order."""


class CancellationRules(RecordSync):
    """A canceled store order -> its ERP sales order canceled, once."""

    def fetch(self, notice: ChangeNotice) -> Order:
        order: Order = self.ctx.source_port.get(notice.id, notice.fresh_snapshot(self.settings.snapshot_max_age_s))
        return order

    def must_skip(self, record: Order) -> SyncResult | None:
        if record.state != CANCELED:
            return SyncResult("filtered", "", f"not canceled (state {record.state or 'unknown'!r})")
        sent = self.bindings.get("order", self.source, record.source_id, self.target)
        if sent is None:
            return SyncResult("filtered", "", f"{self.source} order {record.number} never reached {self.target}")
        return None

    def up_to_date(self, record: Order, binding: Binding | None) -> SyncResult | None:
        if binding is not None and binding.status == SYNCED:
            return SyncResult("skipped", binding.other_id or "", f"already canceled in {self.target}")
        return None

    def pair_key(self, record: Order, binding: Binding | None) -> str:
        return f"{self.source}:cancel:{record.source_id}"

    def dependencies(self, record: Order) -> tuple[str, str]:
        """``(order type, order number)`` of the order's ERP sales order."""
        return sent_order(self, record, "its cancellation")

    def write(self, order: Order, binding: Binding | None, deps: tuple[str, str] | None = None) -> SyncResult:
        order_type, number = deps or self.dependencies(order)
        status = self.ctx.target_port.cancel(order_type, number)
        key = f"{order_type}/{number}"
        self.bindings.put(
            Binding("cancellation", self.source, order.source_id, self.target, key, data={"status": status})
        )
        return SyncResult("synced", key, f"canceled {self.target} order {key} ({self.source} order {order.number})")
