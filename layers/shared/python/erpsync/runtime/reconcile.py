"""Do the books match? Order by order, what the store charged, captured and refunded against what
the ERP holds: the sales order total, the payments applied to it, its credit memos.

It reads the store's orders created in the window (one search, page by page), the ERP side of the
ones the orders flow linked (their sales orders ten a request, with their payments, and the credit
memos that carry their numbers), and lists each difference with both ids and both amounts: a total,
a paid or a refunded amount that differs by a cent or more, and a store order that should be in the
ERP and is not (one the order sync preferences leave out is not a difference), and an ERP order
changed in the window that no store order is linked to and that the erp-orders flow did not leave
out (its sync log says so). An order entered in the ERP has its total compared, not its money: its
payments and refunds are the ERP's own.
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
    """``total``, ``paid``, ``refunded``, ``missing`` (in the ERP) or ``only in the ERP``."""
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
        orders = len({d.number or d.erp_ref for d in self.differences})
        return (
            f"{self.checked} order(s) since {self.since:%Y-%m-%d %H:%M} UTC: {orders} differ "
            f"({len(self.differences)} difference(s)); run `erpsync reconcile` for each"
        )


def reconcile(rt: Any, days: float, now: datetime | None = None, synclog: Any = None) -> Reconciliation:
    """The books of the store orders created in the last ``days`` on each route of the orders
    flow runtime ``rt``, and the ERP orders changed since that no store order is linked to
    (``synclog``, default the runtime's: what the erp-orders flow left out is not a difference)."""
    now = now or datetime.now(UTC)
    result = Reconciliation(since=now - timedelta(days=days))
    rt.refresh()
    log = synclog if synclog is not None else getattr(getattr(rt, "worker", None), "synclog", None)
    for lane in rt.dispatcher.lanes:
        _lane(lane, result, now)
        if log is not None:
            _erp_only(lane, result, now, log)
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


def _erp_only(lane: Any, result: Reconciliation, now: datetime, synclog: Any) -> None:
    """ERP orders changed in the window with no store order linked: on their way (changed in the
    last minutes), left out by the erp-orders flow (its last sync-log row), or a difference."""
    port = lane.rules.ctx.target_port
    if not callable(getattr(port, "changes", None)):
        return
    notices = [n for page in port.changes(result.since) for n in page.notices]
    linked = lane.rules.bindings.get_many("order", lane.target, [n.id for n in notices], lane.source)
    for n in notices:
        if n.id in linked or (n.occurred_at is not None and (now - n.occurred_at).total_seconds() < SETTLE_S):
            continue
        history = synclog.history("erp-orders", n.id)
        if history and history[-1].get("outcome") == "filtered":
            result.left_out += 1
            continue
        result.differences.append(Difference("", "only in the ERP", "", n.id, None, None))


def _unlinked(rules: Any, books: Books, result: Reconciliation, now: datetime) -> None:
    """A store order the orders flow has not linked: left out by the preferences, on its way, or missing."""
    order = rules.ctx.source_port.get(books.ref)
    if rules.left_out(order):
        result.left_out += 1
        return
    if order.created_at is not None and (now - order.created_at).total_seconds() < SETTLE_S:
        return
    result.differences.append(Difference(books.number, "missing", books.ref, "", books.total, None))
