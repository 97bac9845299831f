"""Issue 13: the pair chaos run with SAP as the ERP, at a small scale (the rest of the pairs are in
``test_pair_chaos.py``; a file of its own so that the two run side by side under ``make test``).

Magento -> SAP Business One and Magento -> S/4HANA at 5 orders, with every order creation's answer
lost (``lost_create_rate`` 1: each order is found again by the store's number), B1's sessions ended
and S/4HANA's CSRF tokens expired between the first and the second half of the orders, S/4HANA
refusing a valid CSRF token now and then; the clerk delivers and invoices (bills) some orders
mid-run. Shopify -> SAP Business One and Shopify -> S/4HANA run in ``make chaos`` only (``PAIRS``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.pair_chaos import PAIRS, SAP
from tests.support.pair_chaos import chaos_checked

pytestmark = pytest.mark.e2e
IN_TEST = [(s, e) for s, e in PAIRS if e in SAP and s == "magento"]


@pytest.mark.parametrize(("store", "erp"), IN_TEST, ids=[f"{s}-{e}" for s, e in IN_TEST])
def test_orders_under_chaos_reach_sap_exactly_once(store: str, erp: str, tmp_path: Path) -> None:
    chaos_checked(store, erp, tmp_path)
