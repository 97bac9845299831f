"""The small version of benchmark 13 (``bench.pairs``): the same code as ``make bench`` for Shopify ->
QuickBooks, Magento -> SAP Business One and Magento -> S/4HANA, three orders each, structural assertions
only (request counts from the sims' logs; no times)."""

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


def test_the_sap_business_one_pair_counts_orders_and_payments_beside_the_naive_connector() -> None:
    res = pairs.measure("magento", "sap_b1", runs=1, orders=3)  # raises unless every order and payment synced
    # per paid order the naive one signs in, searches the partner, reads 2 items, posts the order, the down
    # payment and the incoming payment, and signs out; it reads the order from Magento (a token and a GET)
    assert res["naive_erp"] == 8 and res["naive_store"] == 2
    where = res["erp_requests"]
    for booked in ("POST Orders", "POST DownPayments", "POST IncomingPayments"):
        assert where[booked] == 1, (booked, where)  # exactly once per order
    assert where["POST Login"] < 1  # a session per drain, not per order
    assert res["erp"] == pytest.approx(sum(where.values()), abs=0.01)


def test_the_s4hana_pair_counts_the_orders_flow_alone() -> None:
    res = pairs.measure("magento", "sap_s4", runs=1, orders=3)  # raises unless every order synced
    assert res["naive_erp"] == 2  # a CSRF fetch and the deep insert per order
    where = res["erp_requests"]
    assert where["POST A_SalesOrder"] == 1 and where["HEAD API_SALES_ORDER_SRV"] < 1  # one token for the drain
    assert not any("Payment" in k for k in where)  # S/4HANA takes no payments
    assert res["erp"] < res["naive_erp"]
