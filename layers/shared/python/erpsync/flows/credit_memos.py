"""Credit memos: money the store gave back on an order becomes an ERP credit memo, released and
paid out by a refund, to the cent.

In the run order of ``flows.sync``: fetch the credit memo (and its order, for the customer); must-
skip: one the erp-credit-memos flow made from an ERP credit memo (its marker comment), an order
that never reached the ERP (left out by the order sync preferences) or one entered in the ERP (its
refunds are the ERP's); settled when the binding holds it; a lease on the credit
memo; the order first (its ERP sales order and customer, from the orders flow's bindings); then
the ERP credit memo: the refunded lines at the prices and discounts the store gave back, the
shipping refund as freight, an adjustment on ``credit_memos.adjustment_item``, the store's tax as
charged; released and paid out by a refund applied to it, by setting; bind.

An ERP document may settle the refund by itself (``settled_without_refund`` on the target port says
why): QuickBooks' refund receipt pays the money back, and its credit memo stays the customer's credit.
While the order's ERP document is a first stage (QuickBooks' estimate), its credit memo waits for
the final one (retried as ``waiting_for_order``).

Nothing is made twice: the credit memo carries the store credit memo number as its external
reference, and so does its refund; a retry after a lost answer finds them by it. A credit memo
that does not add up (lines, shipping, adjustment and tax against the store's total) fails naming
both amounts, and nothing is written.
"""

from __future__ import annotations

from erpsync.errors import MappingMissing, RetryableError, ValidationFailed
from erpsync.flows.base import SyncResult
from erpsync.flows.orders import sent_order_and_customer, staged
from erpsync.flows.sync import RecordSync
from erpsync.model import (
    ChangeNotice,
    CreditMemo,
    CreditMemoDraft,
    DraftLine,
    ErpCreditMemo,
    ErpPayment,
    PaymentDraft,
    RefundLine,
    cents,
)
from erpsync.state.bindings import SYNCED, Binding


class CreditMemoRules(RecordSync):
    """One store credit memo -> one ERP credit memo and its refund, never twice."""

    def fetch(self, notice: ChangeNotice) -> CreditMemo:
        memo: CreditMemo = self.ctx.source_port.get(notice.id)
        return memo

    def must_skip(self, record: CreditMemo) -> SyncResult | None:
        if record.erp_ref:
            return SyncResult(
                "filtered", "", f"made from {self.target} credit memo {record.erp_ref}: it never goes back"
            )
        sent = self.bindings.get("order", self.source, record.order_id, self.target)
        if sent is None:
            return SyncResult(
                "filtered",
                "",
                f"{self.source} order {record.order_number} never reached {self.target}: nothing to credit",
            )
        if sent.data.get("born") == self.target:
            return SyncResult(
                "filtered",
                "",
                f"order {record.order_number} was entered in {self.target}: its refunds are {self.target}'s",
            )
        if staged(sent):
            raise RetryableError(
                f"{self.source} order {record.order_number} is {sent.other_id} in {self.target} until it is "
                "fulfilled: its credit memo waits for the document that books it",
                error_type="waiting_for_order",
                system=self.target,
            )
        return None

    def up_to_date(self, record: CreditMemo, binding: Binding | None) -> SyncResult | None:
        if binding is not None and binding.status == SYNCED:
            return SyncResult("skipped", binding.other_id or "", f"already credited in {self.target}")
        return None

    def pair_key(self, record: CreditMemo, binding: Binding | None) -> str:
        return f"{self.source}:creditmemo:{record.source_id}"

    def dependencies(self, record: CreditMemo) -> tuple[str, str, str]:
        """``(order type, order number, customer id)`` of the order's ERP sales order."""
        return sent_order_and_customer(self, record.order_id, record.order_number, record.email, "its credit memo")

    def write(self, memo: CreditMemo, binding: Binding | None, deps: tuple[str, str, str] | None = None) -> SyncResult:
        order_type, number, customer_id = deps or self.dependencies(memo)
        port = self.ctx.target_port
        s = self.settings.credit_memos
        draft = self.draft(memo, customer_id, f"{order_type}/{number}")
        key = ("creditmemo", self.source, memo.source_id, self.target)
        erp_memo, created = self.create_once(
            key,
            binding,
            lambda: port.find(memo.number, customer_id),
            lambda: port.create(draft),
            look_first=self.settings.lookup_before_create,
        )
        notes = [
            f"{'created' if created else 'found'} {self.target} credit memo {erp_memo.number} of {erp_memo.amount}"
        ]
        refund: ErpPayment | None = None
        if s.release:
            erp_memo = port.release(erp_memo) if not erp_memo.released else erp_memo
            notes.append("released")
            settled = getattr(port, "settled_without_refund", None)
            why = settled(erp_memo) if s.refund and settled is not None else ""
            if why:
                notes.append(why)
            elif s.refund:
                refund = self._refund(memo, erp_memo, customer_id, order_type, number)
                notes.append(f"paid out by refund {refund.number}")
        self.bindings.put(
            Binding(
                "creditmemo",
                self.source,
                memo.source_id,
                self.target,
                erp_memo.number,
                version=memo.updated_at.isoformat() if memo.updated_at else None,
                data={
                    "total": str(cents(memo.grand_total)),
                    "order": f"{order_type}/{number}",
                    "number": memo.number,
                    "refund": refund.number if refund else "",
                },
            )
        )
        return SyncResult("synced", erp_memo.number, f"{', '.join(notes)} for {self.source} credit memo {memo.number}")

    def _refund(
        self, memo: CreditMemo, erp_memo: ErpCreditMemo, customer_id: str, order_type: str, number: str
    ) -> ErpPayment:
        """The refund that pays the credit memo out, made once (``create_once``: after a lost
        answer the one that carries the store credit memo number is found); released."""
        port = self.ctx.target_port
        key = ("creditmemo-refund", self.source, memo.source_id, self.target)

        def held() -> ErpPayment | None:
            found = [p for p in port.refunds_of(memo.number, customer_id) if not p.voided]
            return found[0] if found else None

        def make() -> ErpPayment:
            if created_memo_settled(erp_memo):
                raise ValidationFailed(
                    f"{self.target} credit memo {erp_memo.number} has no balance left to refund, and no refund of "
                    f"{self.source} credit memo {memo.number} is there: it was settled another way; look at it there"
                )
            return port.refund(erp_memo, self._refund_draft(memo, customer_id, order_type, number))

        refund, _ = self.create_once(
            key, self.bindings.get(*key), held, make, look_first=self.settings.lookup_before_create
        )
        if not refund.released:
            port.payments.release(refund)
        self.bindings.put(Binding(*key, other_id=refund.number))
        return refund

    def draft(self, memo: CreditMemo, customer_id: str, erp_order: str) -> CreditMemoDraft:
        """The ERP credit memo of ``memo``, adding up to the store's total to the cent."""
        s = self.settings
        if memo.adjustment and not s.credit_memos.adjustment_item:
            raise MappingMissing(
                f"{self.source} credit memo {memo.number} has an adjustment of {memo.adjustment}: set "
                "settings.credit_memos.adjustment_item to the ERP non-stock item that carries it"
            )
        if cents(memo.tax_total) and not s.tax_id:
            raise MappingMissing(
                f"{self.source} credit memo {memo.number} gives back tax of {memo.tax_total}: set settings.tax_id"
            )
        draft = CreditMemoDraft(
            customer_id=customer_id,
            store_number=memo.number,
            store_order=memo.order_number,
            currency=memo.currency,
            lines=draft_lines(memo.lines),
            freight=cents(memo.shipping),
            adjustment=cents(memo.adjustment),
            adjustment_item=s.credit_memos.adjustment_item,
            tax_id=s.tax_id,
            tax_total=cents(memo.tax_total),
            total=cents(memo.grand_total),
            description=f"{self.source} credit memo {memo.number} of order {memo.order_number} ({erp_order})",
        )
        if draft.computed_total() != draft.total:
            raise ValidationFailed(
                f"{self.source} credit memo {memo.number} does not add up: lines - discounts + shipping + "
                f"adjustment + tax = {draft.computed_total()} but the store refunded {draft.total}"
            )
        return draft

    def _refund_draft(self, memo: CreditMemo, customer_id: str, order_type: str, number: str) -> PaymentDraft:
        s = self.settings
        method = s.payment_methods.get(memo.payment_method or "", s.default_payment_method)
        return PaymentDraft(
            customer_id=customer_id,
            order_type=order_type,
            order_number=number,
            amount=cents(memo.grand_total),
            currency=memo.currency,
            method=method,
            cash_account=s.credit_memos.cash_account or s.payments.cash_account,
            reference=memo.transaction_id or memo.number,
            store_order=memo.number,
            description=f"{self.source} refund of credit memo {memo.number}, order {memo.order_number}"
            + (" (online)" if memo.online else " (offline)"),
        )


def draft_lines(lines: list[RefundLine]) -> list[DraftLine]:
    """Lines the store gave (or takes) back, as the ERP document's lines: price and discount as the store had them."""
    return [
        DraftLine(
            line_id=ln.line_id,
            sku=ln.sku,
            description=ln.description,
            qty=ln.qty,
            unit_price=ln.unit_price,
            discount=cents(ln.discount),
        )
        for ln in lines
    ]


def created_memo_settled(memo: ErpCreditMemo) -> bool:
    """Whether a released credit memo has nothing left to refund (paid out another way)."""
    return memo.released and memo.balance <= 0
