"""The pair chaos runs in docs/RELIABILITY.md (``bench.chaos``): rendered after the default pair's
runs, and ``--only pairs`` replaces that section alone, keeping the other runs as they were."""

from __future__ import annotations

from pathlib import Path

from bench.chaos import CHECKS, splice_pairs
from sandbox.pair_chaos import PairChaosReport

DOC = Path(__file__).resolve().parents[2] / "docs" / "RELIABILITY.md"


def report(problems: list[str] | None = None) -> PairChaosReport:
    return PairChaosReport(
        "shopify -> quickbooks",
        12,
        paid=8,
        cancelled=2,
        in_erp=10,
        faults={"quickbooks": {"error": 3, "lost_response": 2}, "shopify": {"error": 1}},
        lost_writes={"quickbooks": 2, "shopify": 0},
        ceiling="240/min",
        peak_per_minute=147,
        problems=problems or [],
    )


def test_only_pairs_replaces_its_section_and_keeps_the_other_runs() -> None:
    doc = DOC.read_text()
    others = [line for line in doc.splitlines() if line.startswith("## Run ") and "every other pair" not in line]
    once = splice_pairs(doc, [report()])
    again = splice_pairs(once, [report(["1 order(s) never reached quickbooks under the faults"])])
    for text in (once, again):
        heads = [line for line in text.splitlines() if line.startswith("## ")]
        assert [h for h in heads if h.startswith("## Run ") and "every other pair" not in h] == others
        assert sum("every other pair" in h for h in heads) == 1
        assert heads.index(CHECKS[0]) == heads.index(next(h for h in heads if "every other pair" in h)) + 1
    row = next(line for line in once.splitlines() if line.startswith("| shopify -> quickbooks |"))
    assert "| 12 (8, 2, 0) | 10 |" in row and "240/min: 147, 0" in row and row.endswith("| none |")
    assert "never reached quickbooks" in next(
        line for line in again.splitlines() if line.startswith("| shopify -> quickbooks |")
    )
