"""Order rules (``settings.order_rules``) on a real order: Magento's documented GET /V1/orders/3
(tests/fixtures/magento/order_get_V1_orders_3.json: pending, bank transfer, 165.00 USD, placed
2017-08-21 by jdoe@example.com, Luma SKUs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from erpsync.flows.rules import applied, decide, holds
from erpsync.model import Order
from erpsync.model.base import ValidationError
from erpsync.settings import OrderRule, RuleCondition, Settings
from erpsync.systems.magento.mapping import order_from_magento

FIXTURE = Path(__file__).parent.parent / "fixtures" / "magento" / "order_get_V1_orders_3.json"


@pytest.fixture
def order() -> Order:
    return order_from_magento(json.loads(FIXTURE.read_text()))


def rule(name: str, when: list[dict[str, object]], then: dict[str, object]) -> OrderRule:
    return OrderRule.model_validate({"name": name, "when": when, "then": then})


@pytest.mark.parametrize(
    ("field", "op", "value", "expected"),
    [
        ("status", "eq", "PENDING", True),  # text compares without case
        ("payment_method", "in", ["checkmo", "banktransfer"], True),
        ("payment_method", "not_in", ["checkmo", "banktransfer"], False),
        ("grand_total", "gt", 100, True),
        ("grand_total", "lte", "164.99", False),
        ("created_at", "lt", "2018-01-01T00:00:00", True),
        ("customer.email", "contains", "@example.com", True),
        ("lines.sku", "eq", "24-WG084", True),  # any line
        ("lines.sku", "ne", "24-WG084", False),  # no line
        ("ship_to.country", "eq", "US", True),
        ("channel", "eq", "Main Website Store", True),
        ("tags", "exists", False, True),  # Magento orders carry no tags
        ("customer.group", "eq", "1", True),
    ],
)
def test_conditions_read_any_field_of_the_order(
    order: Order, field: str, op: str, value: object, expected: bool
) -> None:
    assert holds(RuleCondition(field=field, op=op, value=value), order) is expected


def test_every_rule_that_holds_applies_in_order_and_the_later_one_wins(order: Order) -> None:
    rules = [
        rule(
            "offline methods stay unpaid",
            [{"field": "payment_method", "op": "in", "value": ["banktransfer", "checkmo"]}],
            {"payment": "unpaid", "document": "invoice"},
        ),
        rule("big orders are paid", [{"field": "grand_total", "op": "gte", "value": 150}], {"payment": "create"}),
        rule(
            "never matches",
            [{"field": "currency", "op": "eq", "value": "EUR"}],
            {"skip": "euro orders are booked by hand"},
        ),
        rule("ship them ground", [], {"set": {"shipping_method": "GROUND"}}),
    ]
    decided = decide(rules, order)
    assert decided.rules == ["offline methods stay unpaid", "big orders are paid", "ship them ground"]
    assert (decided.payment, decided.reasons["payment"]) == ("create", "big orders are paid")
    assert decided.document == "invoice" and decided.skip is None
    assert applied(order, decided).shipping_method == "GROUND" and order.shipping_method != "GROUND"


def test_a_skip_names_its_rule(order: Order) -> None:
    decided = decide(
        [
            rule(
                "test orders",
                [{"field": "customer.email", "op": "contains", "value": "jdoe"}],
                {"skip": "a test account"},
            )
        ],
        order,
    )
    assert decided.skip == "rule 'test orders': a test account"


def test_bad_rules_are_refused_naming_what_is_wrong() -> None:
    with pytest.raises(ValidationError, match="op"):
        Settings.model_validate(
            {"order_rules": [{"name": "x", "when": [{"field": "status", "op": "like"}], "then": {}}]}
        )
    with pytest.raises(ValidationError, match="set: grand_total cannot be set"):
        Settings.model_validate({"order_rules": [{"name": "x", "then": {"set": {"grand_total": "0"}}}]})
    with pytest.raises(ValidationError, match="document"):
        Settings.model_validate({"order_rules": [{"name": "x", "then": {"document": "sales_order"}}]})
    with pytest.raises(ValidationError, match="then"):
        Settings.model_validate({"order_rules": [{"name": "x", "when": []}]})
