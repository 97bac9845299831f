"""Issue 12 at a small scale: the chaos run of every pair but Magento -> Acumatica
(``sandbox/pair_chaos.py``; ``make chaos`` runs it larger, ``test_chaos.py`` the default pair).

The verdict is the harness's list of problems (see its docstring): every order in the ERP exactly
once and to the cent through 5xx, 429 and lost answers on both sides, paid ones paid once,
cancelled ones cancelled, shipments once with their tracking number, no ceiling passed, and no
write once everything settled. The figures asserted beside it say the chaos really happened: the
faults were injected, writes were applied whose answer was lost, Shopify sent webhooks twice.

SAP (issue 13): Magento -> SAP Business One and Magento -> S/4HANA at 5 orders, with every order
creation's answer lost (``lost_create_rate`` 1: each order is found again by the store's number),
B1's sessions ended and S/4HANA's CSRF tokens expired between the first and the second half of the
orders, S/4HANA refusing a valid CSRF token now and then; the clerk delivers and invoices (bills)
some orders mid-run. Shopify -> SAP Business One runs in ``make chaos`` only (``PAIRS``): the three
SAP pairs together took about 4.5 minutes here (docs/RELIABILITY.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.pair_chaos import PAIRS, SAP, PairChaosConfig, run

pytestmark = pytest.mark.e2e
IN_TEST = [(s, e) for s, e in PAIRS if (s, e) != ("shopify", "sap_b1")]


@pytest.mark.parametrize(("store", "erp"), IN_TEST, ids=[f"{s}-{e}" for s, e in IN_TEST])
def test_orders_under_chaos_reach_the_erp_exactly_once_within_its_ceiling(store: str, erp: str, tmp_path: Path) -> None:
    if erp in SAP:
        cfg = PairChaosConfig(
            store, erp, orders=5, shipments=3, erp_error_rate=0.1, erp_lost_rate=0.2, lost_create_rate=1.0
        )
    else:
        cfg = PairChaosConfig(store, erp, orders=7, shipments=3, per_minute=120, erp_lost_rate=0.2)
    report = run(cfg, tmp_path, say=lambda _msg: None)
    assert report.problems == [], "\n".join(report.problems)
    assert report.in_erp >= cfg.orders - cfg.cancels and report.duplicates == 0 and report.payments_doubled == 0
    assert report.lost_writes[erp] > 0, report.faults
    assert {"error", "lost_response"} <= set(report.faults[erp]) and report.faults[store]
    assert report.quiet_writes == 0
    if erp == "quickbooks":
        assert report.refused_over_ceiling == 0 and 0 < report.peak_per_minute <= cfg.per_minute
    if erp in ("acumatica", *SAP):
        assert report.shipped == cfg.shipments and report.fulfilments_doubled == 0
    if erp in SAP:
        assert report.lost_creates >= cfg.orders - report.cancelled, report.lost_creates  # every create lost its answer
        assert report.invoiced == cfg.shipments and report.invoices_doubled == 0
    if erp == "sap_b1":
        assert report.session["sessions_ended"] > 0 and report.session["sign_ins_after"] > 0, report.session
    if erp == "sap_s4":
        assert report.session["tokens_expired"] > 0 and report.session["token_fetches_after"] > 0, report.session
    if store == "shopify":
        assert report.webhook_duplicates > 0
