"""Orders: a store order becomes one ERP sales order, exactly once, adding up to the cent.

In the run order of ``flows.sync``: settled from the binding before any read when already sent;
fetch (or the poll's fresh snapshot); the order sync preferences as must-skip rules; a lease on
the store number; the customer first (found by email, created if missing, never overwritten);
map and check the money; look up a possibly lost earlier create; create; bind.

A store number already sent from the same connection under another store id (a store that
reused a number) is never sent again: it fails as ``duplicate_number`` naming both records.

"Sync twice": an ERP may book an order in two stages (QuickBooks' estimate while the store order is
not fulfilled, then the invoice that closes it). The order binding then says ``final: False``, and a
later change of the order is work, not "already in the ERP": while the order is not fulfilled it is
skipped, once it is the final document is created, exactly once (its own pending binding
``order-final``, so a lost answer is looked up before anything is created again).
"""

from __future__ import annotations

from decimal import Decimal

from erpsync.errors import MappingMissing, PermanentError, RetryableError, ValidationFailed
from erpsync.flows.base import SyncResult, content_hash
from erpsync.flows.rules import applied, decide
from erpsync.flows.sync import RecordSync
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
from erpsync.settings import OrderRule, OrderSyncPreferences
from erpsync.state.bindings import PENDING, SYNCED, Binding

FULFILLED = "complete"
"""The canonical order's state (and status) once the store has shipped and invoiced all of it:
Magento's ``complete``; Shopify's fulfilled and paid, as its adapter reads them."""


def fulfilled(order: Order) -> bool:
    """Whether the store has fulfilled ``order`` (what turns a first-stage ERP document final)."""
    return FULFILLED in (order.state, order.status)


def staged(binding: Binding | None) -> bool:
    """Whether the order binding holds a first-stage ERP document (an estimate) that the order's
    fulfilment turns into the final one."""
    return binding is not None and binding.status == SYNCED and binding.data.get("final") is False


class DuplicateOrderNumber(PermanentError):
    error_type = "duplicate_number"


class OrderRules(RecordSync):
    """One store order -> one ERP sales order (insert only: an order synced once is never rewritten;
    one booked at a first stage gets its final document once, when fulfilled)."""

    def before_fetch(self, notice: ChangeNotice, binding: Binding | None) -> SyncResult | None:
        # an order already in the ERP (an echo of our own shipment or invoice, a redelivered
        # notice) costs no call to the store; one booked as a first stage is read again
        if binding and binding.status != PENDING and not staged(binding):
            return SyncResult("skipped", binding.other_id or "", f"already in {self.target}")
        return None

    def fetch(self, notice: ChangeNotice) -> Order:
        order: Order = self.ctx.source_port.get(notice.id, notice.fresh_snapshot(self.settings.snapshot_max_age_s))
        return order

    def must_skip(self, record: Order) -> SyncResult | None:
        reason = self.left_out(record)
        return SyncResult("filtered", "", reason) if reason else None

    def up_to_date(self, record: Order, binding: Binding | None) -> SyncResult | None:
        # insert only: a bound order was settled before the fetch, unless it is at a first stage
        if staged(binding) and not fulfilled(record):
            assert binding is not None
            return SyncResult(
                "skipped",
                binding.other_id or "",
                f"{self.target} {binding.other_id} stands until the order is fulfilled (status {record.status!r})",
            )
        return None

    def pair_key(self, record: Order, binding: Binding | None) -> str:
        return f"{self.source}:number:{record.number}"

    def dependencies(self, record: Order) -> str:
        return self.resolve_customer(record.customer)

    def write(self, order: Order, binding: Binding | None, deps: str | None = None) -> SyncResult:
        sent = self.bindings.get("order", self.source, f"number:{order.number}", self.target)
        if sent and sent.data.get("source_id") not in (None, order.source_id):
            raise DuplicateOrderNumber(
                f"{self.source} order number {order.number} was already sent (as {self.source} order "
                f"{sent.data.get('source_id')}, {self.target} order {sent.other_id}); this {self.source} order "
                f"{order.source_id} carries the same number and is held for review, not sent twice"
            )
        draft = self.draft(order, deps or self.resolve_customer(order.customer))
        digest = content_hash(draft)
        target = self.ctx.target_port
        if staged(binding):
            assert binding is not None
            return self._book_finally(order, draft, digest, binding.other_id or "")
        key = ("order", self.source, order.source_id, self.target)
        ref, created = self.create_once(
            key,
            binding,
            lambda: target.find(order.number),
            lambda: target.create(draft),
            look_first=bool(sent) or self.settings.lookup_before_create,
        )
        self._bind(order, ref, digest)
        if not ref.final and draft.fulfilled:  # found at its first stage, and fulfilled meanwhile
            return self._book_finally(order, draft, digest, ref.key)
        if not created:
            return SyncResult("synced", ref.key, f"found existing {self.target} order {ref.number}")
        return SyncResult("synced", ref.key, f"created {self.target} order {ref.number}")

    def _book_finally(self, order: Order, draft: SalesOrderDraft, digest: str, first: str) -> SyncResult:
        """The final document of a fulfilled order booked at a first stage (``first``), made once: a
        lost answer leaves ``order-final`` pending, and the retry finds the final document first."""
        target = self.ctx.target_port
        key = ("order-final", self.source, order.source_id, self.target)

        def find_final() -> ErpOrderRef | None:
            found: ErpOrderRef | None = target.find(order.number)
            return found if found is not None and found.final else None

        ref, created = self.create_once(
            key,
            self.bindings.get(*key),
            find_final,
            lambda: target.create(draft),
            look_first=self.settings.lookup_before_create,
        )
        if not ref.final:
            raise ValidationFailed(
                f"{self.target} booked fulfilled order {order.number} at a first stage again ({ref.key})"
            )
        self._bind(order, ref, digest)
        self.bindings.put(Binding(*key, other_id=ref.key))
        what = "created" if created else "found existing"
        return SyncResult(
            "synced", ref.key, f"{what} {self.target} order {ref.number} ({ref.order_type}), closing {first}"
        )

    def left_out(self, order: Order) -> str:
        """Why the order sync preferences leave this order out ('' when it syncs)."""
        return left_out(order, self.settings.order_sync, self.settings.order_rules)

    def resolve_customer(self, customer: Customer) -> str:
        """The ERP customer for this email: bound, found, or created. Never updated by an order."""
        key = ("customer", "email", customer.email, self.target)
        known = self.bindings.get(*key)
        if known is not None and known.status == SYNCED and known.other_id:
            return known.other_id
        port = self.ctx.extra[("customer", "target")]
        found = port.find(customer.email)
        if found:
            customer_id = str(found[0].source_id)
        else:
            made, _ = self.create_once(key, known, lambda: None, lambda: port.create(customer))
            customer_id = str(made.source_id)
        if customer.is_guest and not found:
            # made for a guest checkout: the ERP-to-store customers flow leaves it out
            self.bindings.put(Binding("customer", "guest", customer_id, self.target, customer.email))
        self.bindings.bind("customer", "email", customer.email, self.target, customer_id)
        return customer_id

    def draft(self, order: Order, customer_id: str) -> SalesOrderDraft:
        """Map the order for the ERP; the money must add up to the store's grand total."""
        s = self.settings
        decision = decide(s.order_rules, order)
        order = applied(order, decision)
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
            exchange_rate=order.exchange_rate,
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
            note="\n".join(comments_to_send(order, s.order_comments.to_erp)),
            paid=cents(order.paid),
            document=decision.document,
            fulfilled=fulfilled(order),
            deposit_account=decision.cash_account,
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
        """Both binding items and the store number's index, in one transaction."""
        fwd = Binding(
            "order",
            self.source,
            order.source_id,
            self.target,
            ref.key,
            hash=digest,
            written_hash=None,
            data={"number": order.number, "erp_id": ref.id, "order_type": ref.order_type, "final": ref.final},
        )
        rev = Binding(
            "order",
            self.target,
            ref.key,
            self.source,
            order.source_id,
            hash=digest,
            written_hash=digest,
            data={"number": order.number, "line_map": ref.line_map},
        )
        index = Binding(
            "order", self.source, f"number:{order.number}", self.target, ref.key, data={"source_id": order.source_id}
        )
        self.bindings.bind_pair(fwd, rev, also=[index])


def left_out(order: Order, prefs: OrderSyncPreferences, rules: list[OrderRule] | None = None) -> str:
    """Why the order sync preferences ``prefs`` or an order rule leave ``order`` out ('' when it syncs)."""
    if rules:
        skip = decide(rules, order).skip
        if skip:
            return skip
    if prefs.statuses and order.status not in prefs.statuses:
        return f"status {order.status!r} is not one of {prefs.statuses}"
    if prefs.require_payment_captured and not order.payment_captured:
        return f"payment not captured (paid {order.paid} of {order.grand_total})"
    return ""


def comments_to_send(order: Order, which: str) -> list[str]:
    """The texts of ``order``'s comments the setting ``order_comments.to_erp`` sends (``which``:
    none, visible, all), oldest first."""
    if which == "none":
        return []
    return [c.text for c in order.comments if c.text.strip() and (which == "all" or c.visible)]


def waits_for_final(rules: RecordSync, order: Order, sent: Binding | None, what: str) -> SyncResult | None:
    """While ``order``'s ERP document is a first stage (``staged``), ``what`` (e.g. "its payment")
    waits for the final one: filtered while the store order is not fulfilled (its fulfilment is a
    change that rings the flow again), retried as ``waiting_for_order`` once it is (the orders flow
    is booking it). None when the document is final."""
    if not staged(sent):
        return None
    assert sent is not None
    if fulfilled(order):
        raise RetryableError(
            f"{rules.source} order {order.number} is fulfilled and {rules.target} {sent.other_id} is being booked "
            f"finally: {what} waits for the orders flow",
            error_type="waiting_for_order",
            system=rules.target,
        )
    return SyncResult(
        "filtered",
        "",
        f"{rules.target} {sent.other_id} stands for {rules.source} order {order.number} until it is fulfilled: "
        f"{what} waits for the document that books it",
    )


def sent_order(rules: RecordSync, order: Order, what: str) -> tuple[str, str]:
    """``(order type, order number)`` of the ERP sales order the orders flow made for store ``order``;
    while there is none yet, ``what`` (e.g. "its payment") waits for it: retried as
    ``waiting_for_order``."""
    return sent_order_of(rules, order.source_id, order.number, what)


def sent_order_of(rules: RecordSync, source_id: str, number: str, what: str) -> tuple[str, str]:
    """``sent_order`` of the store order ``source_id`` (visible number ``number``)."""
    sent = rules.bindings.get("order", rules.source, source_id, rules.target)
    if sent is None or sent.status != SYNCED or not sent.other_id:
        raise RetryableError(
            f"{rules.source} order {number} is not in {rules.target} yet: {what} waits for the orders flow",
            error_type="waiting_for_order",
            system=rules.target,
        )
    order_type, _, number = sent.other_id.rpartition("/")
    return sent.data.get("order_type") or order_type, number


def sent_order_and_customer(
    rules: RecordSync, source_id: str, number: str, email: str, what: str
) -> tuple[str, str, str]:
    """``(order type, order number, customer id)`` of store order ``source_id``'s ERP sales order
    and of its customer (by ``email``), as the orders flow bound them; ``what`` waits for them."""
    order_type, erp_number = sent_order_of(rules, source_id, number, what)
    customer = rules.bindings.get("customer", "email", email.strip().lower(), rules.target)
    if customer is None or not customer.other_id:
        raise RetryableError(
            f"the {rules.target} customer of {rules.source} order {number} is not bound yet: "
            f"{what} waits for the orders flow",
            error_type="waiting_for_order",
            system=rules.target,
        )
    return order_type, erp_number, customer.other_id
