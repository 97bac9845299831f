"""The pair chaos run's verdict for the e2e tests (``tests/e2e/test_pair_chaos*.py``): one run of
``sandbox.pair_chaos`` at a small scale and every check of it (see those tests' docstrings)."""

from __future__ import annotations

from pathlib import Path

from sandbox.pair_chaos import SAP, PairChaosConfig, run


def chaos_checked(store: str, erp: str, tmp_path: Path) -> None:
    """A small chaos run of the pair; fails naming the harness's problems or the figure that says
    the chaos did not really happen."""
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
