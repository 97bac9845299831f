"""``python -m bench``: run every benchmark and rewrite docs/PERFORMANCE.md."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import (
    catalog,
    catalog_poll,
    cold_start,
    cost,
    customers,
    initial_load,
    latency,
    memory,
    order_money,
    pairs,
    per_record,
    poll_cost,
    poll_memory,
    throughput,
)
from bench.common import RUNS, git_commit, local_bench
from bench.report import write

ROOT = Path(__file__).resolve().parents[1]


def report_only() -> int:
    """Rewrite docs/PERFORMANCE.md from the last run's results (.erpsync/bench.json), without measuring."""
    results = json.loads((ROOT / ".erpsync" / "bench.json").read_text())
    write(results, ROOT / "docs" / "PERFORMANCE.md")
    return 0


def main() -> int:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ["LOG_LEVEL"] = "WARNING"
    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    results: dict[str, object] = {}

    def step(name: str) -> None:
        print(f"[{time.perf_counter() - started:6.0f}s] {name}", file=sys.stderr, flush=True)

    step("cold start")
    results["cold_start"] = cold_start.run()
    step("memory")
    results["memory"] = memory.run()
    step("poll memory")
    results["poll_memory"] = poll_memory.run()
    with local_bench() as bench:
        for noisy in ("httpx", "httpcore", "erpsync", "botocore", "werkzeug"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        step("requests per record")
        results["per_record"] = per_record.run(bench, RUNS)
        step("throughput")
        results["throughput"] = throughput.run(bench, RUNS)
        step("customer changes")
        results["customers"] = customers.run(bench, RUNS)
        step("poll cost")
        results["poll_cost"] = poll_cost.run(bench, RUNS)
        step("catalog changes")
        results["catalog"] = catalog.run(bench, RUNS)  # it switches the catalog on for the route
        step("products poll as the catalog grows")
        results["catalog_poll"] = catalog_poll.run(bench, RUNS)
        step("payments and credit memos")
        results["order_money"] = order_money.run(bench, RUNS)
        step("initial load of the catalog")
        results["initial_load"] = initial_load.run(bench)
    step("any pair: requests per order")
    results["pairs"] = pairs.run(RUNS)
    step("webhook latency")
    results["latency"] = latency.run()
    results["cost"] = cost.estimate(results["per_record"]["steady"])  # type: ignore[index]
    results["elapsed_s"] = time.perf_counter() - started
    results["commit"], results["run_at"] = git_commit(ROOT), f"{datetime.now(UTC):%Y-%m-%d %H:%M}"
    step("writing docs/PERFORMANCE.md")
    (ROOT / ".erpsync").mkdir(exist_ok=True)
    (ROOT / ".erpsync" / "bench.json").write_text(json.dumps(results, indent=1, default=str))
    write(results, ROOT / "docs" / "PERFORMANCE.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(report_only() if "--report-only" in sys.argv else main())
