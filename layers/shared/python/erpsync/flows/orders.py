"""Orders: a store order becomes one ERP sales order, exactly once, adding up to the cent.

Run order for one record: skip if already bound, fetch the order, filter by the order sync
preferences, resolve the customer (find by email, create if missing, never overwrite),
map and check the money, look up a possibly lost earlier create, create, bind.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from decimal import Decimal

from erpsync.flows.base import SyncResult, content_hash
from erpsync.model import (
    ChangeNotice,
    Customer,
    DraftLine,
    ErpOrderRef,
    Order,
    SalesOrderDraft,
    allocate_proportionally,
    cents,
)
from erpsync.runtime.errors import MappingMissing, ValidationFailed
from erpsync.runtime.settings import Settings
from erpsync.state.bindings import PENDING, Bindings
from erpsync.systems.ports import Erp, Store


class OrdersFlow:
    name = "orders"

    def __init__(self, store: Store, erp: Erp, bindings: Bindings, settings: Settings) -> None:
        self.store, self.erp, self.bindings, self.settings = store, erp, bindings, settings
        self.source, self.target = store.name, erp.name

    def changes(self, since: datetime) -> list[ChangeNotice]:
        return self.store.changed_orders(since)

    def sync(self, notice: ChangeNotice) -> SyncResult:
        # the binding first: an order already in the ERP (an echo of our own shipment or invoice,
        # a redelivered notice) costs no call to the store
        binding = self.bindings.get("order", self.source, notice.id, self.target)
        if binding and binding.status != PENDING:
            return SyncResult("skipped", binding.other_id or "", f"already in {self.target}")
        order = self.store.get_order(notice.id, notice.fresh_snapshot(self.settings.snapshot_max_age_s))
        reason = self.left_out(order)
        if reason:
            return SyncResult("filtered", "", reason)
        customer_id = self.resolve_customer(order.customer)
        draft = self.draft(order, customer_id)
        digest = content_hash(draft)
        if binding or self.settings.lookup_before_create:
            found = self.erp.find_order(order.number)
            if found:
                self._bind(order, found, digest)
                return SyncResult("synced", found.key, f"found existing {self.target} order {found.number}")
        self.bindings.mark_pending("order", self.source, order.source_id, self.target)
        ref = self.erp.create_order(draft)
        self._bind(order, ref, digest)
        return SyncResult("synced", ref.key, f"created {self.target} order {ref.number}")

    def left_out(self, order: Order) -> str:
        """Why the order sync preferences leave this order out ('' when it syncs)."""
        prefs = self.settings.order_sync
        if prefs.statuses and order.status not in prefs.statuses:
            return f"status {order.status!r} is not one of {prefs.statuses}"
        if prefs.require_payment_captured and not order.payment_captured:
            return f"payment not captured (paid {order.paid} of {order.grand_total})"
        return ""

    def resolve_customer(self, customer: Customer) -> str:
        """The ERP customer for this email: bound, found, or created. Never updated by an order."""
        known = self.bindings.find("customer", "email", customer.email, self.target)
        if known:
            return known
        customer_id = self.erp.find_customer(customer.email)
        if not customer_id:
            customer_id = self.erp.create_customer(customer, self.customer_id_for(customer.email))
        self.bindings.bind("customer", "email", customer.email, self.target, customer_id)
        return customer_id

    def customer_id_for(self, email: str) -> str:
        """A stable ERP customer id derived from the email, so a retried create finds its twin."""
        digest = hashlib.sha256(email.encode()).hexdigest()[:10].upper()
        return f"{self.settings.customer_id_prefix}{digest}"

    def draft(self, order: Order, customer_id: str) -> SalesOrderDraft:
        """Map the order for the ERP; the money must add up to the store's grand total."""
        s = self.settings
        ship_via = self._mapped(order.shipping_method, s.shipping_methods, s.default_ship_via, "shipping_methods")
        payment = self._mapped(order.payment_method, s.payment_methods, s.default_payment_method, "payment_methods")
        if order.tax_total and not s.tax_id:
            raise MappingMissing("order has tax but settings.tax_id (the ERP tax id for store tax) is not set")
        if not order.lines:
            raise ValidationFailed(f"order {order.number} has no lines")
        spread = allocate_proportionally(
            order.order_discount, [ln.row_total - cents(ln.discount) for ln in order.lines]
        )
        lines = [
            DraftLine(
                line_id=ln.line_id,
                sku=ln.sku,
                description=ln.name,
                qty=ln.qty,
                unit_price=ln.unit_price,
                discount=cents(ln.discount) + extra,
            )
            for ln, extra in zip(order.lines, spread, strict=True)
        ]
        draft = SalesOrderDraft(
            number=order.number,
            customer_id=customer_id,
            date=order.created_at,
            currency=order.currency,
            description=f"{self.source} order {order.number}",
            ship_via=ship_via,
            payment_method=payment,
            bill_to=order.bill_to,
            ship_to=order.ship_to,
            email=order.customer.email,
            lines=lines,
            freight=cents(order.freight),
            tax_total=cents(order.tax_total),
            tax_id=s.tax_id if order.tax_total else None,
            total=cents(order.grand_total),
        )
        if draft.computed_total() != draft.total:
            raise ValidationFailed(
                f"order {order.number} does not add up: lines - discounts + freight + tax = "
                f"{draft.computed_total()} but the store charged {draft.total}"
            )
        if any(ln.amount < Decimal(0) for ln in lines):
            raise ValidationFailed(f"order {order.number} has a line discounted below zero")
        return draft

    @staticmethod
    def _mapped(code: str | None, table: dict[str, str], default: str | None, name: str) -> str | None:
        if not code:
            return default
        if code in table:
            return table[code]
        if default is not None:
            return default
        raise MappingMissing(f"no mapping for {code!r} in settings.{name} and no default set")

    def _bind(self, order: Order, ref: ErpOrderRef, digest: str) -> None:
        self.bindings.bind(
            "order",
            self.source,
            order.source_id,
            self.target,
            ref.key,
            hash=digest,
            data={"number": order.number, "erp_id": ref.id, "order_type": ref.order_type},
            reverse_data={"number": order.number, "line_map": ref.line_map},
        )
