"""Orders entered in the ERP, ERP -> store: each becomes one store order for the right customer,
with the ERP's lines, prices, discounts, freight, tax and total as the ERP charged them.

In the run order of ``flows.sync``: settled from the binding before any read when already in the
store (an order that came from the store carries the orders flow's binding, so nothing loops);
fetch; must-skip rules: an order whose ``ExternalRef`` names a store order (it came from a store,
or was sent to one), a canceled one, and the order sync preferences (any configured condition: a
status, a mapped ship via, the unpaid balance at zero), each filtered with its reason; a lease on
the ERP order; the customer first (found by email in the store, created if missing); map; look up
a possibly lost earlier create (``ext_order_id``); create; write the store's number into the ERP
order's ``ExternalRef`` (both numbers on both sides); bind both ways with the line map, so the
shipments and invoices flows bring the ERP's documents to this store order, and the orders flow
never sends it back.
"""

from __future__ import annotations

from erpsync.errors import ValidationFailed
from erpsync.flows.base import SyncResult
from erpsync.flows.sync import RecordSync
from erpsync.model import ChangeNotice, Customer, Order, StoreOrderRef, cents
from erpsync.state.bindings import PENDING, Binding

CANCELED = ("Canceled", "Cancelled")


class ErpOrderRules(RecordSync):
    """One order entered in the ERP -> one store order (insert only), never back again."""

    def before_fetch(self, notice: ChangeNotice, binding: Binding | None) -> SyncResult | None:
        if binding and binding.status != PENDING:
            return SyncResult("skipped", binding.other_id or "", f"already in {self.target}")
        return None

    def fetch(self, notice: ChangeNotice) -> Order:
        order: Order = self.ctx.source_port.get(notice.id)
        return order

    def must_skip(self, record: Order) -> SyncResult | None:
        if record.external_ref:
            return SyncResult(
                "filtered", "", f"carries store order {record.external_ref} (ExternalRef): it came from a store"
            )
        if record.status in CANCELED:
            return SyncResult("filtered", "", f"{self.source} order {record.source_id} is canceled")
        reason = self.left_out(record)
        return SyncResult("filtered", "", reason) if reason else None

    def left_out(self, order: Order) -> str:
        """Why the preferences leave the order out ('' when any configured condition holds)."""
        prefs = self.settings.erp_orders
        held: list[str] = []
        if prefs.statuses:
            if order.status in prefs.statuses:
                return ""
            held.append(f"status {order.status!r} is not one of {prefs.statuses}")
        if prefs.mapped_ship_via:
            if prefs.shipping_method(order.shipping_method, self.settings.shipping_methods):
                return ""
            held.append(f"ship via {order.shipping_method!r} maps to no store shipping method")
        if prefs.paid:
            if order.grand_total > 0 and order.paid >= order.grand_total:
                return ""
            held.append(f"unpaid balance {cents(order.grand_total - order.paid)} is not zero")
        return "; ".join(held)

    def up_to_date(self, record: Order, binding: Binding | None) -> SyncResult | None:
        return None  # insert only: a bound order was settled before the fetch

    def pair_key(self, record: Order, binding: Binding | None) -> str:
        return f"{self.source}:order:{record.source_id}"

    def dependencies(self, record: Order) -> Customer:
        """The store customer of the order's email: found, or created from the order's bill-to."""
        port = self.ctx.extra[("customer", "target")]
        found = port.find(record.customer.email)
        if found:
            return found[0]
        made, _ = self.create_once(
            ("customer", "email", record.customer.email, self.target),
            self.bindings.get("customer", "email", record.customer.email, self.target),
            lambda: next(iter(port.find(record.customer.email)), None),
            lambda: port.create(record.customer),
        )
        customer: Customer = made
        return customer

    def write(self, order: Order, binding: Binding | None, deps: Customer | None = None) -> SyncResult:
        customer = deps or self.dependencies(order)
        if not order.lines:
            raise ValidationFailed(f"{self.source} order {order.source_id} has no lines")
        if order.computed_total() != order.grand_total:
            raise ValidationFailed(
                f"{self.source} order {order.source_id} does not add up: lines - discounts + freight + tax = "
                f"{order.computed_total()} but it charges {order.grand_total}"
            )
        prefs = self.settings.erp_orders
        method = prefs.shipping_method(order.shipping_method, self.settings.shipping_methods)
        port = self.ctx.target_port
        made, created = self.create_once(
            ("order", self.source, order.source_id, self.target),
            binding,
            lambda: port.find(order.source_id),
            lambda: port.create(
                order,
                erp_ref=order.source_id,
                customer=customer,
                shipping_method=method or prefs.default_shipping_method,
                payment_method=prefs.payment_method,
                comment=f"Created from {self.source} order {order.source_id.replace('/', ' ')}",
            ),
        )
        ref: StoreOrderRef = made
        self.ctx.source_port.mark(order.source_id, ref.number)
        self._bind(order, ref)
        verb = "created" if created else "found existing"
        return SyncResult("synced", ref.id, f"{verb} {self.target} order {ref.number}")

    def _bind(self, order: Order, ref: StoreOrderRef) -> None:
        """Both ways: the ERP order to the store's (with the line map the shipments and invoices
        flows read), the store order to the ERP's (so the orders flow never sends it back)."""
        line_map = {ln.line_id: item for ln, item in zip(order.lines, ref.item_ids, strict=False)}
        order_type, _, number = order.source_id.rpartition("/")
        fwd = Binding(
            "order",
            self.source,
            order.source_id,
            self.target,
            ref.id,
            data={"number": ref.number, "line_map": line_map},
        )
        rev = Binding(
            "order",
            self.target,
            ref.id,
            self.source,
            order.source_id,
            data={"number": ref.number, "order_type": order_type, "erp_number": number, "born": self.source},
        )
        index = Binding(
            "order", self.target, f"number:{ref.number}", self.source, order.source_id, data={"source_id": ref.id}
        )
        self.bindings.bind_pair(fwd, rev, also=[index])
        if order.customer.source_id:
            self.bindings.bind("customer", "email", order.customer.email, self.source, order.customer.source_id)
