"""``python -m bench.pairs`` rewrites section 13 from what it measured and keeps the page's rows of the
pairs it did not measure (``--untimed`` keeps every timed row; ``--pair`` keeps the other pairs')."""

from __future__ import annotations

import os

import pytest

from bench import pairs

OLD_B1 = "| magento -> sap_b1 | 0.20 | 0.0 | 9.00 | 2.0 | 8.0 | 1.12x | SAP B1 at 90 req/min set: 10 | earlier |"
PAGE = f"""# Performance

{pairs.SECTION}

old untimed text

| pair | erpsync store req/order | when |
|---|---|---|
| shopify -> acumatica | 2.20 | 2026-11-29, commit `de85225` |
{OLD_B1}

- magento -> sap_b1: `POST Orders` 1

**Timed, against the ceiling** (`throughput`): ...

| pair | ceiling | when |
|---|---|---|
| shopify -> acumatica | 600 points/min | a run before |

## Ideas not implemented

- Duplicate notices: not a pair's line
"""
B1 = {
    "store": 0.2,
    "erp": 8.1,
    "naive_store": 2.0,
    "naive_erp": 8.0,
    "erp_requests": {"GET BusinessPartners": 1.0, "POST Login": 0.1, "POST Orders": 1.0},
}
S4 = {"store": 0.1, "erp": 1.05, "naive_store": 2.0, "naive_erp": 2.0, "erp_requests": {"POST A_SalesOrder": 1.0}}


def test_the_rows_of_pairs_not_measured_are_kept_by_table() -> None:
    kept = pairs.kept_rows(PAGE, {"magento->sap_b1"})
    assert kept == {
        "untimed": {"shopify->acumatica": "| shopify -> acumatica | 2.20 | 2026-11-29, commit `de85225` |"},
        "timed": {"shopify->acumatica": "| shopify -> acumatica | 600 points/min | a run before |"},
        "spent": {},
    }
    every = pairs.kept_rows(PAGE)
    assert every["untimed"]["magento->sap_b1"] == OLD_B1
    assert every["spent"] == {"magento->sap_b1": "- magento -> sap_b1: `POST Orders` 1"}


def test_a_page_without_the_section_keeps_nothing() -> None:
    assert pairs.kept_rows("# Performance\n\n| shopify -> acumatica | 1 |\n") == {
        "untimed": {},
        "timed": {},
        "spent": {},
    }


def test_the_sap_rows_replace_the_pages_and_keep_the_others_in_pair_order() -> None:
    measured = {"magento->sap_s4": S4, "magento->sap_b1": B1}
    res = {
        "orders": 20,
        "runs": 3,
        "measured": "2026-11-29 05:40 UTC, working tree, machine busy (load 2.3)",
        "pairs": measured,
    }
    lines = pairs.section(res, pairs.kept_rows(PAGE, measured))
    rows = [line for line in lines if line.startswith("| ") and " -> " in line]
    assert [r.split(" | ")[0] for r in rows] == [
        "| shopify -> acumatica",
        "| magento -> sap_b1",
        "| magento -> sap_s4",
        "| shopify -> acumatica",
    ]
    assert OLD_B1 not in lines
    b1 = rows[1]
    assert " | 8.10 | 2.0 | 8.0 | 1.01x | SAP B1 at 90 req/min set: 11 | 2026-11-29 05:40 UTC, working tree" in b1
    assert " | 0.53x | S/4HANA at 90 req/min set: 86 | " in rows[2]
    assert "- magento -> sap_b1: `GET BusinessPartners` 1, `POST Login` 0.1, `POST Orders` 1" in lines
    assert "- magento -> sap_s4: `POST A_SalesOrder` 1" in lines
    assert lines[-1] == "No timed run yet for magento -> sap_b1, magento -> sap_s4."


def test_a_timed_run_writes_its_row_with_the_goal() -> None:
    timed = {
        "orders": 40,
        "ceiling": 90,
        "unit": "requests",
        "requests_per_order": 9.5,
        "ceiling_orders_per_min": 9.5,
        "orders_per_min": 7.0,
        "ratio": 0.74,
        "whole_s": 400.0,
        "whole_orders_per_min": 6.0,
        "whole_ratio": 0.63,
    }
    res = {"orders": 20, "runs": 3, "measured": "now", "pairs": {"shopify->sap_b1": B1}}
    lines = pairs.section({**res, "throughput": {"shopify->sap_b1": timed}})
    assert "| shopify -> sap_b1 | 90 requests/min | 9.5 requests | 9.5 | 7.0 | 0.74 | 400 s, 6.0/min (0.63) " in (
        "\n".join(lines)
    )
    assert any(line.endswith("| **not met** | now |") for line in lines)
    assert not any(line.startswith("No timed run yet") for line in lines)


@pytest.mark.parametrize(
    ("first", "top", "others", "state"),
    [(0.4, 1.9, set(), "quiet"), (2.3, 2.3, set(), "busy"), (0.4, 3.9, {"pair_chaos"}, "busy")],
)
def test_a_run_says_whether_the_machine_was_quiet(first: float, top: float, others: set[str], state: str) -> None:
    machine = pairs.Machine()
    machine.first_load, machine.top_load, machine.others = first, top, others
    when = machine.when()
    assert f"UTC, working tree, machine {state} (load {first:.1f} at the start, at most {top:.1f}" in when
    assert ("other runs: pair_chaos" in when) == bool(others)


def test_the_machine_watch_leaves_this_run_and_its_parents_out() -> None:
    with pairs.Machine(every_s=0.05) as machine:
        pass
    assert machine.top_load >= machine.first_load >= 0
    assert {os.getpid(), os.getppid()} <= pairs._lineage(os.getpid())  # this pytest is not "another run"


def test_a_run_that_fits_in_one_minute_of_the_ceiling_measures_nothing() -> None:
    timed = {
        "orders": 40,
        "ceiling": 90,
        "unit": "requests",
        "work": 44,
        "requests_per_order": 1.06,
        "ceiling_orders_per_min": 84.9,
        "orders_per_min": 203.3,
        "ratio": 2.4,
        "whole_s": 45.0,
        "whole_orders_per_min": 53.8,
        "whole_ratio": 0.67,
    }
    res = {"orders": 20, "runs": 3, "measured": "now", "pairs": {"magento->sap_s4": S4}}
    [row] = [ln for ln in pairs.section({**res, "throughput": {"magento->sap_s4": timed}}) if "90 requests/min" in ln]
    assert "| not measured: the run's 44 requests fit in one minute's 90 | now |" in row and "| met |" not in row
