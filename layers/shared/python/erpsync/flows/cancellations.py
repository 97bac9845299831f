"""Cancellations both ways: a store order canceled after it reached the ERP cancels its ERP sales
order (``CancellationRules``), and a sales order canceled in the ERP cancels its store order
(``ErpCancellationRules``). Each binds the pair both ways, so the other direction sees its echo
settled and writes nothing back.

In the run order of ``flows.sync``: fetch the order (or the poll's fresh snapshot); must-skip: an
order that is not canceled, or one that never reached the ERP (the orders flow filtered it: nothing
to cancel there); settled when the binding says it is canceled already; a lease on the order; then
cancel the sales order (``CancelSalesOrder``) and bind. An ERP order that has shipped cannot be
canceled: the ERP's reason puts the record on the failures desk, where a person decides (a return,
a credit memo). Canceling twice (a retry after a lost answer) is harmless: an order already canceled
is left as it is.

Comments follow where ``order_comments`` says: a store order's comments (those the customer sees, by
default) are added to the ERP order's note when it is canceled; an ERP cancel leaves a comment on the
store order saying so, with the ERP order's note (where its reason is written).

The schedule's poll finds cancellations (the poll reads whole orders, so it costs no extra read);
a store order's webhook rings the orders and the payments flows only, so a cancellation reaches the
ERP at the next poll rather than at once.
"""

from __future__ import annotations

from erpsync.errors import PermanentError, RetryableError
from erpsync.flows.base import SyncResult
from erpsync.flows.orders import comments_to_send, sent_order
from erpsync.flows.sync import RecordSync
from erpsync.model import ChangeNotice, Order, OrderStatus, erp_order_key
from erpsync.state.bindings import SYNCED, Binding

CANCELED = "canceled"
"""Magento's state (and status) of a canceled order."""
ERP_CANCELED = ("Canceled", "Cancelled")


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

    def dependencies(self, record: Order) -> str:
        """The order's ERP sales order as bindings name it (``<type>/<number>``, or the number where
        the ERP has no order types: the erp-cancellations flow then meets the echo under that key)."""
        order_type, number = sent_order(self, record, "its cancellation")
        return erp_order_key(order_type, number)

    def write(self, order: Order, binding: Binding | None, deps: str | None = None) -> SyncResult:
        key = deps or self.dependencies(order)
        status = self.ctx.target_port.cancel(key, comments_to_send(order, self.settings.order_comments.to_erp))
        bind_cancellation(self, order.source_id, key, status)
        return SyncResult("synced", key, f"canceled {self.target} order {key} ({self.source} order {order.number})")


class ErpCancellationRules(RecordSync):
    """A sales order canceled in the ERP -> its store order canceled, once (read back: Magento's
    cancel has answered true without canceling)."""

    def fetch(self, notice: ChangeNotice) -> OrderStatus:
        status: OrderStatus = self.ctx.source_port.get(notice.id)
        return status

    def must_skip(self, record: OrderStatus) -> SyncResult | None:
        if record.status not in ERP_CANCELED:
            return SyncResult("filtered", "", f"not canceled (status {record.status or 'unknown'!r})")
        if self.bindings.get("order", self.source, record.source_id, self.target) is None:
            return SyncResult("filtered", "", f"{self.source} order {record.source_id} never reached {self.target}")
        return None

    def up_to_date(self, record: OrderStatus, binding: Binding | None) -> SyncResult | None:
        if binding is not None and binding.status == SYNCED:
            return SyncResult("skipped", binding.other_id or "", f"already canceled in {self.target}")
        return None

    def pair_key(self, record: OrderStatus, binding: Binding | None) -> str:
        return f"{self.source}:cancel:{record.source_id}"

    def write(self, record: OrderStatus, binding: Binding | None, deps: object = None) -> SyncResult:
        sent = self.bindings.get("order", self.source, record.source_id, self.target)
        if sent is None or not sent.other_id:
            raise RetryableError(
                f"{self.source} order {record.source_id} is not bound to {self.target} yet",
                error_type="waiting_for_order",
                system=self.target,
            )
        comment = f"Canceled in {self.source}: sales order {record.source_id}"
        if self.settings.order_comments.to_store and record.note.strip():
            comment += f". {record.note.strip()}"
        state = self.ctx.target_port.cancel(sent.other_id, [comment])
        if state != CANCELED:
            raise PermanentError(
                f"{self.target} did not cancel order {sent.data.get('number') or sent.other_id} (state {state!r}): "
                f"an order with invoiced items needs a credit memo, not a cancel",
                error_type="not_canceled",
                system=self.target,
            )
        bind_cancellation(self, record.source_id, sent.other_id, state)
        return SyncResult(
            "synced", sent.other_id, f"canceled {self.target} order {sent.data.get('number') or sent.other_id}"
        )


def bind_cancellation(rules: RecordSync, source_id: str, target_id: str, status: str) -> None:
    """Both ways: the cancellation this side sent, and its echo on the other side (the other
    direction's flow then sees it settled and writes nothing back)."""
    forward = Binding("cancellation", rules.source, source_id, rules.target, target_id, data={"status": status})
    echo = Binding("cancellation", rules.target, target_id, rules.source, source_id, data={"status": status})
    rules.bindings.bind_pair(forward, echo)
