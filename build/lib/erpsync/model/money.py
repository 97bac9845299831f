"""Money arithmetic that adds up to the cent."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


def cents(value: Decimal | int | float | str | None) -> Decimal:
    """``value`` as a Decimal rounded half-up to the cent (``None`` is zero)."""
    if value is None:
        return Decimal("0.00")
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


def allocate_proportionally(total: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """Split ``total`` over ``weights`` in proportion, in cents, so the parts sum to ``total``.

    Largest-remainder method: each part is floored to the cent, then the cents left over go
    to the parts with the largest remainders (ties to the earlier part). Zero weights get
    nothing unless every weight is zero, in which case the split is even.
    """
    total = cents(total)
    if not weights:
        if total:
            raise ValueError(f"cannot allocate {total} over no lines")
        return []
    sign = -1 if total < 0 else 1
    units = int(abs(total) / CENT)
    w = [max(Decimal(x), Decimal(0)) for x in weights]
    if sum(w) == 0:
        w = [Decimal(1)] * len(w)
    wsum = sum(w)
    raw = [Decimal(units) * x / wsum for x in w]
    floors = [int(r) for r in raw]
    left = units - sum(floors)
    order = sorted(range(len(w)), key=lambda i: (-(raw[i] - floors[i]), i))
    for i in order[:left]:
        floors[i] += 1
    return [sign * Decimal(n) * CENT for n in floors]
