"""Benchmark 5: peak RSS of an orders worker as the number of processed orders grows.

Pushing 10k orders through moto and the HTTP sims would take most of the bench budget, so this
runs the real worker, flow, Magento mapping and Acumatica mapping with in-memory stand-ins for
the two HTTP clients and for DynamoDB/SQS (which keep nothing per record, as the remote systems
would keep it outside the worker). Each size runs in a fresh interpreter: ru_maxrss is a peak.
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
SIZES = (1_000, 5_000, 10_000)
RUNS = 3
BATCH = 10


def _child(count: int) -> dict[str, Any]:
    import copy
    import resource
    import time

    from erpsync.flows import catalog as flows
    from erpsync.flows.orders import OrderRules
    from erpsync.flows.sync import FlowContext
    from erpsync.model import ChangeNotice
    from erpsync.runtime.worker import Worker
    from erpsync.settings import Settings
    from erpsync.state.bindings import Binding
    from erpsync.systems.acumatica.adapter import AcumaticaErp, AcumaticaOrders
    from erpsync.systems.magento.adapter import MagentoOrders, MagentoStore
    from sandbox.sims import magento_orders as mo

    catalog = mo.sample_catalog()
    template = mo.build_order(
        catalog,
        [mo.CartLine("24-MB04", 1), mo.CartLine("24-WG084", 3)],
        customer=mo.sample_customer(customer_id=1) | {"id": 1},
        entity_id=1,
        increment_id="000000001",
    )
    template.setdefault("updated_at", template.get("created_at"))

    class Magento:
        def get(self, path: str, params: Any = None) -> Any:
            oid = int(path.rsplit("/", 1)[1])
            order = copy.deepcopy(template)
            order["entity_id"], order["increment_id"] = oid, f"{oid:09d}"
            return order

    class Acumatica:
        def put(self, entity: str, record: dict[str, Any], **_: Any) -> dict[str, Any]:
            saved = copy.deepcopy(record)
            saved["OrderNbr"] = {"value": "SO" + str(record["CustomerOrder"]["value"])}
            for n, line in enumerate(saved.get("Details") or [], 1):
                line["LineNbr"] = {"value": n}
            return saved

    class Bindings:
        def get(self, *a: Any) -> Binding | None:
            # every order's customer is known by email (the orders flow resolves it from this binding)
            return Binding(*a, other_id="C000001") if a[:2] == ("customer", "email") else None

        def find(self, *a: Any) -> str:
            return "C000001"

        def mark_pending(self, *a: Any) -> None:
            return None

        def bind(self, *a: Any, **k: Any) -> None:
            return None

        def bind_pair(self, *a: Any, **k: Any) -> None:
            return None

    class SyncLog:
        rows = 0

        def write(self, row: Any) -> None:
            SyncLog.rows += 1

    settings = Settings(tax_id="STORETAX")
    store = MagentoStore(Magento())  # type: ignore[arg-type]
    erp = AcumaticaErp(Acumatica())  # type: ignore[arg-type]
    flow = OrderRules(
        FlowContext(
            spec=flows.get("orders"),
            source="magento",
            target="acumatica",
            source_port=MagentoOrders(store),
            target_port=AcumaticaOrders(erp),
            bindings=Bindings(),  # type: ignore[arg-type]
            settings=settings,
        )
    )
    worker = Worker(flow, SyncLog(), "queue", 5, flow_name="orders")  # type: ignore[arg-type]
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    synced = 0
    for first in range(1, count + 1, BATCH):
        records = [
            {
                "messageId": str(i),
                "body": ChangeNotice(source="magento", entity="order", id=str(i)).model_dump_json(),
                "attributes": {},
            }
            for i in range(first, min(count, first + BATCH - 1) + 1)
        ]
        synced += sum(worker.handle_record(r).outcome == "synced" for r in records)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"count": count, "synced": synced, "rss_before_mb": base / 1024, "peak_rss_mb": peak / 1024, "s": seconds}


def run(runs: int = RUNS, sizes: tuple[int, ...] = SIZES) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=f"{ROOT / 'layers/shared/python'}{os.pathsep}{ROOT}", LOG_LEVEL="WARNING")
    rows = []
    for count in sizes:
        samples = []
        for _ in range(runs):
            out = subprocess.run(
                [sys.executable, "-m", "bench.memory", str(count)],
                capture_output=True,
                text=True,
                env=env,
                cwd=ROOT,
                check=True,
            )
            samples.append(json.loads(out.stdout.strip().splitlines()[-1]))
        short = [s for s in samples if int(s["synced"]) != count]
        if short:  # a run whose orders did not sync measured nothing worth reporting
            raise RuntimeError(f"memory bench: {short[0]['synced']} of {count} orders synced; see the child's stderr")
        row = {"count": count, "samples": samples}
        row.update({k: median([float(s[k]) for s in samples]) for k in ("synced", "rss_before_mb", "peak_rss_mb", "s")})
        rows.append(row)
    return {"runs": runs, "batch": BATCH, "rows": rows}


if __name__ == "__main__":
    import logging

    logging.disable(logging.INFO)
    print(json.dumps(_child(int(sys.argv[1]))))
