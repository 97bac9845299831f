"""Order rules (``settings.order_rules``): conditions on any field of the store order -> actions.

Every rule whose conditions all hold applies, in the order they are listed; a later rule's action
replaces an earlier one's of the same kind. A rule that says ``skip`` leaves the order out (the
orders flow logs it as filtered naming the rule). Fields are paths into the canonical order:
``status``, ``payment_method``, ``shipping_method``, ``channel``, ``tags``, ``currency``,
``grand_total``, ``paid``, ``created_at``, ``customer.email``, ``customer.group``,
``ship_to.country``, ``lines.sku`` (any line) ...
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from erpsync.model import Order
from erpsync.settings import OrderRule, RuleCondition


@dataclass
class Decision:
    """What the rules that hold say about one order (None: no rule said)."""

    rules: list[str] = field(default_factory=list)
    """The names of the rules that hold, in order."""
    skip: str | None = None
    """Why the order is left out (``rule <name>: <reason>``)."""
    payment: str | None = None
    """``create``, ``skip`` or ``unpaid``: what the payments flow does."""
    document: str | None = None
    """``sales_receipt``, ``invoice`` or ``estimate``: what an ERP without sales orders books it as."""
    cash_account: str | None = None
    """The ERP account the order's payments (or sales receipt) are deposited to."""
    values: dict[str, str] = field(default_factory=dict)
    """Order fields replaced before mapping (``payment_method``, ``shipping_method``)."""
    reasons: dict[str, str] = field(default_factory=dict)
    """Action -> the rule that decided it (for the sync log)."""


def _values(order: Order, path: str) -> list[Any]:
    """Every value at ``path`` (a list field, or a path through ``lines``, gives several)."""
    current: list[Any] = [order]
    for part in path.split("."):
        found: list[Any] = []
        for item in current:
            value = item.get(part) if isinstance(item, dict) else getattr(item, part, None)
            if isinstance(value, list):
                found.extend(value)
            elif value is not None:
                found.append(value)
        current = found
    return current


def _number(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _compare(have: Any, op: str, want: Any) -> bool:
    if op in ("eq", "ne", "in", "not_in", "contains"):
        text = str(have).lower()
        wants = [str(w).lower() for w in (want if isinstance(want, list) else [want])]
        return {
            "eq": text == wants[0],
            "ne": text != wants[0],
            "in": text in wants,
            "not_in": text not in wants,
            "contains": any(w in text for w in wants),
        }[op]
    a: Any
    b: Any
    a, b = _number(have), _number(want)
    if a is None or b is None:
        a, b = _time(have), _time(want)
        if a is None or b is None:
            return False
        if (a.tzinfo is None) != (b.tzinfo is None):
            a, b = a.replace(tzinfo=None), b.replace(tzinfo=None)
    return {"gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b}[op]


def holds(condition: RuleCondition, order: Order) -> bool:
    """Whether ``condition`` holds for ``order`` (for a field with several values: any of them;
    ``ne`` and ``not_in``: none of them)."""
    values = _values(order, condition.field)
    if condition.op == "exists":
        return bool(values) == bool(condition.value if condition.value is not None else True)
    if condition.op in ("ne", "not_in"):
        positive = "eq" if condition.op == "ne" else "in"
        return not any(_compare(v, positive, condition.value) for v in values)
    return any(_compare(v, condition.op, condition.value) for v in values)


def decide(rules: Iterable[OrderRule], order: Order) -> Decision:
    """What the rules that hold for ``order`` decide."""
    out = Decision()
    for rule in rules:
        if not all(holds(c, order) for c in rule.when):
            continue
        out.rules.append(rule.name)
        then = rule.then
        if then.skip is not None and out.skip is None:
            out.skip = f"rule {rule.name!r}: {then.skip}"
        for action in ("payment", "document", "cash_account"):
            value = getattr(then, action)
            if value is not None:
                setattr(out, action, value)
                out.reasons[action] = rule.name
        for key, value in then.set.items():
            out.values[key] = value
            out.reasons[f"set.{key}"] = rule.name
    return out


def applied(order: Order, decision: Decision) -> Order:
    """``order`` with the values the rules set (payment and shipping method)."""
    return order.model_copy(update=decision.values) if decision.values else order
