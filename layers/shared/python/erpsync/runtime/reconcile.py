"""Do the books match? Order by order, what the store charged, captured and refunded against what
the ERP holds: the sales order total, the payments applied to it, its credit memos.

It reads the store's orders created in the window (one search, page by page), the ERP side of the
ones the orders flow linked (their sales orders ten a request, with their payments, and the credit
memos that carry their numbers), and lists each difference with both ids and both amounts: a total,
a paid or a refunded amount that differs by a cent or more, and a store order that should be in the
ERP and is not (one the order sync preferences leave out is not a difference). An order entered in
the ERP has its total compared, not its money: its payments and refunds are the ERP's own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from erpsync.model import Books, cents

SETTLE_S = 600.0
"""A store order younger than this may still be on its way: not missing yet."""


@dataclass(frozen=True)
class Difference:
    """One way an order's books differ between the two sides."""

    number: str
    """The store order number."""
    what: str
    """``total``, ``paid``, ``refunded``, or ``missing`` (in the ERP)."""
    store_ref: str
    erp_ref: str
    store_amount: Decimal | None
    erp_amount: Decimal | None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: getattr(self, k) for k in ("number", "what", "store_ref", "erp_ref")}
        out["store_amount"] = None if self.store_amount is None else str(self.store_amount)
        out["erp_amount"] = None if self.erp_amount is None else str(self.erp_amount)
        return out


@dataclass
class Reconciliation:
    since: datetime
    checked: int = 0
    """Store orders compared with their ERP order."""
    left_out: int = 0
    """Store orders the order sync preferences leave out (nothing to compare)."""
    differences: list[Difference] = field(default_factory=list)

    def summary(self) -> str:
        if not self.differences:
            return f"{self.checked} order(s) since {self.since:%Y-%m-%d %H:%M} UTC: the books match"
        orders = len({d.number for d in self.differences})
        return (
            f"{self.checked} order(s) since {self.since:%Y-%m-%d %H:%M} UTC: {orders} differ "
            f"({len(self.differences)} difference(s)); run `erpsync reconcile` for each"
        )


def reconcile(rt: Any, days: float, now: datetime | None = None) -> Reconciliation:
    """The books of the store orders created in the last ``days`` on each route of the orders
    flow runtime ``rt``."""
    now = now or datetime.now(UTC)
    result = Reconciliation(since=now - timedelta(days=days))
    rt.refresh()
    for lane in rt.dispatcher.lanes:
        _lane(lane, result, now)
    return result


def _lane(lane: Any, result: Reconciliation, now: datetime) -> None:
    rules = lane.rules
    store = list(rules.ctx.source_port.books(result.since))
    bound = rules.bindings.get_many("order", lane.source, [b.ref for b in store], lane.target)
    refs = {b.number: bound[b.ref].other_id for b in store if b.ref in bound and bound[b.ref].other_id}
    erp = rules.ctx.target_port.books(refs) if refs else {}
    for books in store:
        binding = bound.get(books.ref)
        if binding is None or not binding.other_id:
            _unlinked(rules, books, result, now)
            continue
        theirs = erp.get(books.number)
        if theirs is None:
            result.differences.append(
                Difference(books.number, "missing", books.ref, binding.other_id, books.total, None)
            )
            continue
        result.checked += 1
        born_in_erp = (binding.data or {}).get("born") == lane.target
        for what in ("total",) if born_in_erp else ("total", "paid", "refunded"):
            mine, other = cents(getattr(books, what)), cents(getattr(theirs, what))
            if mine != other:
                result.differences.append(Difference(books.number, what, books.ref, theirs.ref, mine, other))


def _unlinked(rules: Any, books: Books, result: Reconciliation, now: datetime) -> None:
    """A store order the orders flow has not linked: left out by the preferences, on its way, or missing."""
    order = rules.ctx.source_port.get(books.ref)
    if rules.left_out(order):
        result.left_out += 1
        return
    if order.created_at is not None and (now - order.created_at).total_seconds() < SETTLE_S:
        return
    result.differences.append(Difference(books.number, "missing", books.ref, "", books.total, None))
