"""Benchmark 4: cold start, as the import time of each handler module against ``import boto3`` alone.

Each import runs in a fresh interpreter (PYTHONPATH=layers/shared/python, as the Lambda layer
provides), several times, interleaved so that every module sees the same machine load.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.common import median

ROOT = Path(__file__).resolve().parents[1]
RUNS = 7
FLOWS = ("orders", "shipments", "invoices", "customers", "erp-customers")
"""Every flow function runs one module, ``functions/flow/app.py``, with ``FLOW`` naming its flow."""
HANDLERS = ("webhooks", *FLOWS, "operator")

_PROBE = """
import importlib.util, json, sys, time
t0 = time.perf_counter()
target = sys.argv[1]
if target.endswith(".py"):
    spec = importlib.util.spec_from_file_location("app", target)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
else:
    __import__(target)
imported = time.perf_counter() - t0
first = 0.0
if len(sys.argv) > 2:
    t1 = time.perf_counter()
    for name in sys.argv[2].split(","):
        __import__(name)
    first = time.perf_counter() - t1
print(json.dumps({"import_s": imported, "first_use_s": first}))
"""

# what a first invocation of each handler imports on top of the module (its runtime wiring); a flow
# function loads the catalogue, the run order, both system plugins (adapters and clients) and its
# own rules module (the catalogue's ``rules``)
_RUNTIME = (
    "erpsync.runtime.poller,erpsync.runtime.worker,erpsync.settings,erpsync.state.settings,erpsync.state.bindings,"
    "erpsync.state.cursors,erpsync.state.synclog,erpsync.state.guards,erpsync.flows.catalog,erpsync.flows.sync,"
    "erpsync.systems.registry,erpsync.systems.magento.plugin,erpsync.systems.magento.adapter,"
    "erpsync.systems.acumatica.plugin,erpsync.systems.acumatica.adapter,aws_lambda_powertools.utilities.parameters"
)
_RULES = {
    "orders": "erpsync.flows.orders",
    "shipments": "erpsync.flows.documents",
    "invoices": "erpsync.flows.documents",
    "customers": "erpsync.flows.customers",
    "erp-customers": "erpsync.flows.customers",
}
FIRST_USE = {
    "webhooks": "erpsync.runtime.ingress,erpsync.systems.magento.webhooks,erpsync.systems.acumatica.webhooks",
    **{flow: f"{_RUNTIME},{_RULES[flow]}" for flow in FLOWS},
    "operator": "erpsync.runtime.operator_api",
}


def _module_file(name: str) -> Path:
    return ROOT / "functions" / ("flow" if name in FLOWS else name) / "app.py"


def _probe(args: list[str], flow: str = "") -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "FLOW")}
    env.update(PYTHONPATH=str(ROOT / "layers/shared/python"), AWS_DEFAULT_REGION="us-east-1")
    if flow:
        env["FLOW"] = flow
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, env=env, check=True, cwd=ROOT
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def run(runs: int = RUNS) -> dict[str, Any]:
    targets: dict[str, list[str]] = {"boto3": ["boto3"]}
    for name in HANDLERS:
        path = str(_module_file(name))
        targets[name] = [path, FIRST_USE[name]] if FIRST_USE[name] else [path]
    samples: dict[str, list[dict[str, float]]] = {k: [] for k in targets}
    for _ in range(runs):
        for name, args in targets.items():
            samples[name].append(_probe(args, name if name in FLOWS else ""))
    base = median([s["import_s"] for s in samples["boto3"]])
    rows = []
    for name, got in samples.items():
        imp = median([s["import_s"] for s in got])
        first = median([s["first_use_s"] for s in got])
        rows.append(
            {
                "module": name,
                "file": str(_module_file(name).relative_to(ROOT)) if name != "boto3" else "",
                "import_ms": imp * 1000,
                "ratio": imp / base,
                "first_use_ms": first * 1000,
                "total_ratio": (imp + first) / base,
            }
        )
    return {"runs": runs, "boto3_ms": base * 1000, "rows": rows}
