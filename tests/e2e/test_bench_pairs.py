"""The small version of benchmark 13 (``bench.pairs``): the same code as ``make bench`` for one pair,
three orders, structural assertions only (request counts from the sims' logs; no times)."""

from __future__ import annotations

import pytest

from bench import pairs

pytestmark = pytest.mark.e2e


def test_the_pairs_benchmark_counts_requests_and_points_per_order() -> None:
    res = pairs.measure("shopify", "quickbooks", runs=1, orders=3)  # raises unless every order and payment synced
    assert res["store"] >= 1  # at least the worker's read of each order
    assert res["points"] > 0  # Shopify's bucket was charged
    assert res["erp"] >= 1  # at least the sales receipt
    assert res["naive_store"] == 1 and res["naive_erp"] >= 4  # a read; customer search, 2 item lookups, the create
    lines = pairs.section({"orders": 3, "runs": 1, "pairs": {"shopify->quickbooks": res}})
    assert lines[0] == pairs.SECTION and any(line.startswith("| shopify -> quickbooks |") for line in lines)
