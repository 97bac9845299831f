"""Issue 12 at a small scale: the chaos run of Shopify -> Acumatica and Magento -> QuickBooks
(``sandbox/pair_chaos.py``; ``make chaos`` runs every pair larger, ``test_chaos.py`` the default pair).

The verdict is the harness's list of problems (see its docstring): every order in the ERP exactly
once and to the cent through 5xx, 429 and lost answers on both sides, paid ones paid once,
cancelled ones cancelled, shipments once with their tracking number, no ceiling passed, and no
write once everything settled. The figures asserted beside it say the chaos really happened: the
faults were injected, writes were applied whose answer was lost, Shopify sent webhooks twice.

SAP (issue 13) is in ``test_pair_chaos_sap.py``: a file of its own, so that ``make test``'s two
workers (``--dist loadfile``) run the two files side by side.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.pair_chaos import PAIRS, SAP
from tests.support.pair_chaos import chaos_checked

pytestmark = pytest.mark.e2e
IN_TEST = [(s, e) for s, e in PAIRS if e not in SAP and (s, e) != ("shopify", "quickbooks")]
"""One pair per store and per ERP: Shopify -> QuickBooks (88 s) runs in ``make chaos`` only, as
Shopify's and QuickBooks' chaos runs here with Acumatica and Magento (``make test`` stays near 20
minutes)."""


@pytest.mark.parametrize(("store", "erp"), IN_TEST, ids=[f"{s}-{e}" for s, e in IN_TEST])
def test_orders_under_chaos_reach_the_erp_exactly_once_within_its_ceiling(store: str, erp: str, tmp_path: Path) -> None:
    chaos_checked(store, erp, tmp_path)
