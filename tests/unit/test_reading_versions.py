"""Which of two readings of a price or stock level is older (``flows/batched._older``): a newer
reading already synced is never overwritten by an older one that arrives late."""

from __future__ import annotations

import pytest

from erpsync.flows.batched import _older


@pytest.mark.parametrize(
    ("a", "b", "older"),
    [
        ("2025-03-01 10:00:00", "2025-03-01 10:00:01", True),  # Magento's updated_at: UTC without a zone
        ("2025-03-01T18:00:00Z", "2025-03-01T18:00:01Z", True),  # Business One's versions now
        ("2025-03-01T19:00:00+01:00", "2025-03-01T18:30:00Z", True),  # instants, not text: 18:00Z
        ("2025-03-01T18:30:00Z", "2025-03-01T19:00:00+01:00", False),
        ("2025-03-01T17:59:59Z", "2025-03-01T19:00:00+01:00", True),
        # a Business One version stored before they were UTC (its server's local time, here Berlin:
        # 19:00 there is 18:00Z) against a new one: they cannot be compared, so the new one is not
        # taken for older (text would have said 18:00:00Z < 19:00:00 and skipped it)
        ("2025-03-01T18:00:00Z", "2025-03-01T19:00:00", False),
        ("2025-03-01T17:00:00", "2025-03-01T18:00:00Z", False),
        ("9f2c0e", "2025-03-01T18:00:00Z", False),  # a digest of quantities (B1's stock) is never older
        (None, "2025-03-01T18:00:00Z", False),
    ],
)
def test_a_reading_is_older_only_when_the_two_versions_are_comparable_instants(
    a: str | None, b: str | None, older: bool
) -> None:
    assert _older(a, b) is older
