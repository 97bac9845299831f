"""Payments: what a store order has captured becomes ERP payments applied to its sales order.

In the run order of ``flows.sync``: fetch the order (or the poll's fresh snapshot); must-skip
rules: the payment method's rule says ``skip`` or ``unpaid``, nothing captured yet, the order
sync preferences leave the order itself out, or its ERP document is a first stage (QuickBooks'
estimate, which takes no payment: filtered until the order is fulfilled, then retried as
``waiting_for_order`` until the orders flow has booked the invoice); up to date
when the binding already holds everything captured; a lease on the order's payments; the order
first (its ERP sales order and customer, from the orders flow's bindings); then one payment for
what was captured since the last one, applied to the sales order and released by setting; bind.

The binding (one per store order) keeps the captured amount already paid in the ERP, so a later
capture (an order paid at invoice time, a second partial capture) pays only the difference. Every
payment carries the store order number as its external reference and the gateway's transaction id
as its payment reference: after a lost answer the ERP's own payments of that order say what is
already there, so a retry never pays twice.
"""

from __future__ import annotations

from decimal import Decimal

from erpsync.errors import MappingMissing, ValidationFailed
from erpsync.flows.base import SyncResult
from erpsync.flows.orders import left_out, sent_order_and_customer, waits_for_final
from erpsync.flows.rules import applied, decide
from erpsync.flows.sync import RecordSync
from erpsync.model import ChangeNotice, ErpPayment, Order, PaymentDraft, cents
from erpsync.state.bindings import PENDING, SYNCED, Binding


class PaymentRules(RecordSync):
    """One store order's captured money -> ERP payments on its sales order, never paid twice."""

    def fetch(self, notice: ChangeNotice) -> Order:
        order: Order = self.ctx.source_port.get(notice.id, notice.fresh_snapshot(self.settings.snapshot_max_age_s))
        return order

    def must_skip(self, record: Order) -> SyncResult | None:
        decided = decide(self.settings.order_rules, record)
        if decided.payment in ("skip", "unpaid"):
            what = "payments are not created" if decided.payment == "skip" else "the order stays unpaid"
            return SyncResult("filtered", "", f"rule {decided.reasons['payment']!r}: {what} ({decided.payment})")
        rule = self.settings.payments.rule(record.payment_method)
        if decided.payment == "create":
            pass
        elif rule.action == "skip":
            return SyncResult(
                "filtered", "", f"payment method {record.payment_method!r}: payments are not created (rule skip)"
            )
        if rule.action == "unpaid":
            return SyncResult(
                "filtered", "", f"payment method {record.payment_method!r}: the order stays unpaid (rule unpaid)"
            )
        if cents(record.paid) <= 0:
            return SyncResult("filtered", "", f"nothing captured yet (paid 0 of {cents(record.grand_total)})")
        sent = self.bindings.get("order", self.source, record.source_id, self.target)
        if sent is not None and sent.data.get("born") == self.target:
            return SyncResult(
                "filtered", "", f"order {record.number} was entered in {self.target}: its payments are {self.target}'s"
            )
        reason = left_out(record, self.settings.order_sync, self.settings.order_rules) if sent is None else ""
        if reason:  # its order does not go to the ERP: nothing to pay there
            return SyncResult("filtered", "", f"its order is left out by the order sync preferences: {reason}")
        return waits_for_final(self, record, sent, "its payment")  # an estimate takes no payment

    def up_to_date(self, record: Order, binding: Binding | None) -> SyncResult | None:
        if binding is not None and binding.status == SYNCED and paid_in_erp(binding) >= cents(record.paid):
            return SyncResult("skipped", binding.other_id or "", f"{cents(record.paid)} already paid in {self.target}")
        return None

    def pair_key(self, record: Order, binding: Binding | None) -> str:
        return f"{self.source}:payments:{record.source_id}"

    def dependencies(self, record: Order) -> tuple[str, str, str]:
        """``(order type, order number, customer id)`` of the order's ERP sales order."""
        return sent_order_and_customer(self, record.source_id, record.number, record.customer.email, "its payment")

    def write(self, order: Order, binding: Binding | None, deps: tuple[str, str, str] | None = None) -> SyncResult:
        order_type, number, customer_id = deps or self.dependencies(order)
        port = self.ctx.target_port
        captured = cents(order.paid)
        key = ("payment", self.source, order.source_id, self.target)
        known = paid_in_erp(binding) if binding is not None and binding.status == SYNCED else Decimal(0)
        made: list[ErpPayment] = []

        def in_erp() -> list[ErpPayment] | None:
            """The order's payments in the ERP when they already hold all that was captured."""
            held = [p for p in port.of_order(order.number, customer_id) if not p.voided]
            return held if sum((p.amount for p in held), Decimal(0)) >= captured else None

        def pay() -> list[ErpPayment]:
            # after a lost answer (pending binding) the ERP says what is there; else the binding does
            already = known
            if binding is not None and binding.status == PENDING:
                already = sum((p.amount for p in port.of_order(order.number, customer_id) if not p.voided), Decimal(0))
            made.append(port.create(self.draft(order, order_type, number, customer_id, captured - already)))
            return made

        payments, created = self.create_once(key, binding, in_erp, pay, look_first=self.settings.lookup_before_create)
        if self.settings.payments.release:
            for p in payments:
                if not p.released:
                    port.release(p)
        numbers = ", ".join(p.number for p in payments)
        self.bindings.put(
            Binding(
                "payment",
                self.source,
                order.source_id,
                self.target,
                payments[-1].number if payments else None,
                version=order.updated_at.isoformat() if order.updated_at else None,
                data={"paid": str(captured), "order": f"{order_type}/{number}", "number": order.number},
            )
        )
        released = " and released" if self.settings.payments.release else " (not released: payments.release is off)"
        if not created:
            return SyncResult(
                "synced", numbers, f"found {self.target} payment(s) {numbers} holding {captured}{released}"
            )
        return SyncResult(
            "synced",
            numbers,
            f"created {self.target} payment {made[-1].number} of {made[-1].amount} on order {number}{released}",
        )

    def draft(self, order: Order, order_type: str, number: str, customer_id: str, amount: Decimal) -> PaymentDraft:
        """The ERP payment for ``amount`` of ``order``'s captured money."""
        if amount <= 0:
            raise ValidationFailed(f"{self.source} order {order.number}: nothing left to pay ({amount})")
        s = self.settings
        decided = decide(s.order_rules, order)
        order = applied(order, decided)
        rule = s.payments.rule(order.payment_method)
        method = rule.payment_method or s.payment_methods.get(order.payment_method or "", s.default_payment_method)
        if order.payment_method and method is None:
            raise MappingMissing(
                f"no mapping for payment method {order.payment_method!r} in settings.payment_methods "
                "(or settings.payments.rules) and no default set"
            )
        return PaymentDraft(
            customer_id=customer_id,
            order_type=order_type,
            order_number=number,
            amount=cents(amount),
            currency=order.currency,
            method=method,
            cash_account=decided.cash_account or rule.cash_account or s.payments.cash_account,
            reference=order.transaction_id or order.number,
            store_order=order.number,
            description=f"{self.source} order {order.number}: {order.payment_method or 'payment'}"
            + (f" {order.transaction_id}" if order.transaction_id else ""),
            date=order.updated_at,
        )


def paid_in_erp(binding: Binding | None) -> Decimal:
    """What the binding says the ERP already holds of the order's captured money."""
    if binding is None:
        return Decimal(0)
    try:
        return Decimal(str(binding.data.get("paid", "0")))
    except ArithmeticError:
        return Decimal(0)
