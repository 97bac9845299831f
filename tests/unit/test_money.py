"""Money adds up to the cent: the proportional spread of a cart discount."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from erpsync.model import allocate_proportionally, cents

D = Decimal


def test_spread_follows_the_weights() -> None:
    assert allocate_proportionally(D("10.00"), [D("30"), D("10")]) == [D("7.50"), D("2.50")]


def test_leftover_cents_go_to_the_largest_remainders() -> None:
    parts = allocate_proportionally(D("10.00"), [D("1"), D("1"), D("1")])
    assert parts == [D("3.34"), D("3.33"), D("3.33")]
    assert sum(parts) == D("10.00")


def test_zero_weights_get_nothing_unless_all_are_zero() -> None:
    assert allocate_proportionally(D("5.00"), [D("0"), D("20")]) == [D("0.00"), D("5.00")]
    assert allocate_proportionally(D("5.00"), [D("0"), D("0")]) == [D("2.50"), D("2.50")]


def test_nothing_to_spread_over_is_an_error() -> None:
    assert allocate_proportionally(D("0"), []) == []
    with pytest.raises(ValueError, match="no lines"):
        allocate_proportionally(D("1.00"), [])


def test_cents_rounds_half_up() -> None:
    assert cents("2.345") == D("2.35")
    assert cents(None) == D("0.00")
    assert cents(1.005) == D("1.01")  # via str(), not binary float


amounts = st.decimals(min_value=D("0"), max_value=D("100000"), places=2)
weights = st.lists(st.decimals(min_value=D("0"), max_value=D("10000"), places=2), min_size=1, max_size=30)


@given(amounts, weights)
def test_parts_always_sum_to_the_total_and_never_go_negative(total: Decimal, ws: list[Decimal]) -> None:
    parts = allocate_proportionally(total, ws)
    assert sum(parts) == total
    assert all(p >= 0 for p in parts)
    assert all(p == cents(p) for p in parts)


@given(amounts, weights)
def test_each_part_is_within_a_cent_of_its_exact_share(total: Decimal, ws: list[Decimal]) -> None:
    parts = allocate_proportionally(total, ws)
    wsum = sum(ws)
    if wsum == 0:
        return
    for p, w in zip(parts, ws, strict=True):
        assert abs(p - total * w / wsum) < D("0.01")
