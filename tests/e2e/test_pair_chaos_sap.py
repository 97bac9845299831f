"""Issue 13: the pair chaos run with SAP as the ERP, at a small scale (the rest of the pairs are in
``test_pair_chaos.py``; a file of its own so that the two run side by side under ``make test``).

Magento -> S/4HANA at 5 orders, with every order creation's answer lost (``lost_create_rate`` 1:
each order is found again by the store's number), its CSRF tokens expired between the first and the
second half of the orders and a valid token refused now and then; the clerk delivers and bills some
orders mid-run. The SAP Business One pairs (sessions ended mid-run) and Shopify -> S/4HANA run in
``make chaos`` (``PAIRS``), and ``python -m sandbox.pair_chaos --store magento --erp sap_b1`` alone:
they were taken out of ``make test`` to keep it near 20 minutes (docs/RELIABILITY.md has their runs).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.pair_chaos import PAIRS
from tests.support.pair_chaos import chaos_checked

pytestmark = pytest.mark.e2e
IN_TEST = [(s, e) for s, e in PAIRS if (s, e) == ("magento", "sap_s4")]


@pytest.mark.parametrize(("store", "erp"), IN_TEST, ids=[f"{s}-{e}" for s, e in IN_TEST])
def test_orders_under_chaos_reach_sap_exactly_once(store: str, erp: str, tmp_path: Path) -> None:
    chaos_checked(store, erp, tmp_path)
