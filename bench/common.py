"""What the benchmarks share: a local stack driven by hand, request counters, medians."""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

RUNS = 3
"""How many times each figure is measured (the document reports the median)."""


def git_commit(root: Path) -> str:
    """The checked-out commit, marked when the tree (the generated pages in docs/ aside) is not clean."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", ".", ":!docs"], cwd=root, capture_output=True, text=True
        ).stdout
        return out.stdout.strip() + (" (with uncommitted changes)" if dirty.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


@dataclass
class Bench:
    """A running local stack (no pollers, no schedules) with the story's catalog seeded."""

    stack: Any
    story: Any
    aws: AwsCounter = field(default_factory=lambda: AwsCounter())

    @property
    def magento_url(self) -> str:
        return str(self.stack.sim_urls["magento"])

    @property
    def acumatica_url(self) -> str:
        return str(self.stack.sim_urls["acumatica"])

    def url(self, system: str) -> str:
        return str(self.stack.sim_urls[system])

    def requests(self, system: str) -> list[dict[str, Any]]:
        return list(httpx.get(f"{self.url(system)}/_sim/requests", timeout=60).json()["requests"])

    def data_requests(self) -> dict[str, int]:
        """Requests each sim answered since ``clear``, sign-ins left out (a warm container is signed in)."""
        return {
            system: sum(
                1 for r in self.requests(system) if "/auth/" not in r["path"] and not r["path"].endswith("/token")
            )
            for system in ("magento", "acumatica")
        }

    def clear(self) -> None:
        for system in ("magento", "acumatica"):
            httpx.delete(f"{self.url(system)}/_sim/requests")
        self.aws.reset()

    def faults(self, system: str, **faults: Any) -> None:
        if faults:
            httpx.post(f"{self.url(system)}/_sim/faults", json=faults).raise_for_status()
        else:
            httpx.delete(f"{self.url(system)}/_sim/faults")

    def settings(self, patch: dict[str, Any]) -> None:
        from erpsync.state.settings import SettingsStore

        store = SettingsStore(os.environ["BINDINGS_TABLE"])
        store.update(patch)

    def runtime(self, flow: str) -> Any:
        """A fresh FlowRuntime (its own clients, as a new Lambda container has) with AWS calls counted."""
        from erpsync.runtime.lambda_app import build

        rt = build(flow)
        self.aws.attach()
        return rt


def warm_sessions(rt: Any) -> None:
    """Sign a runtime's clients in, as in a warm container (the Magento token, the Acumatica session)."""
    for system in rt.connections.systems.values():
        client = system.client
        if hasattr(client, "token"):
            client.token()
        else:
            client.login()


class Wire:
    """One system client's requests as its caller sees them: how many, bytes each way (bodies and
    URLs), and the time spent waiting for them (the round trip, the server's own work included)."""

    def __init__(self, aws: Any = None) -> None:
        self.requests = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.seconds = 0.0
        self.aws = aws
        """An ``AwsCounter``: the AWS calls made inside a request (the rate gate's seat) are its
        time, not the wire's, so they are taken out of ``seconds`` (counted once, as AWS wait)."""

    def reset(self) -> None:
        self.requests = self.bytes_in = self.bytes_out = 0
        self.seconds = 0.0

    def attach(self, client: Any) -> Callable[[], None]:
        """Count ``client._send`` (the Magento and Acumatica clients' one door); returns the undo."""
        had = "_send" in vars(client)
        send = client._send

        def counted(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            aws0 = self.aws.seconds if self.aws is not None else 0.0
            try:
                response = send(*args, **kwargs)
            finally:
                inner = (self.aws.seconds - aws0) if self.aws is not None else 0.0
                self.seconds += time.perf_counter() - t0 - inner
            self.requests += 1
            self.bytes_in += len(response.content)
            self.bytes_out += len(response.request.content or b"") + len(str(response.request.url))
            return response

        client._send = counted

        def undo() -> None:
            if had:
                client._send = send
            else:
                vars(client).pop("_send", None)

        return undo


class AwsCounter:
    """Counts the AWS API calls of this process (the layer's cached DynamoDB and SQS clients)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.units: defaultdict[str, float] = defaultdict(float)
        self.seconds = 0.0
        self._attached: set[int] = set()
        self._t0 = 0.0

    def reset(self) -> None:
        self.calls.clear()
        self.units.clear()
        self.seconds = 0.0

    def attach(self) -> None:
        from erpsync.runtime import queues
        from erpsync.state import dynamo

        for client in (dynamo.client(), queues.client()):
            if id(client) in self._attached:
                continue
            self._attached.add(id(client))
            service = client.meta.service_model.service_name
            client.meta.events.register(f"provide-client-params.{service}.*", self._before)
            client.meta.events.register(f"after-call.{service}.*", self._after)

    def _before(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        service = model.service_model.service_name
        op = model.name
        self.calls[f"{service}.{op}"] += 1
        self._t0 = time.perf_counter()
        if service == "dynamodb":
            self._units(op, params)
        else:
            entries = params.get("Entries")
            self.units["sqs"] += 1 if not entries else -(-len(entries) // 10)

    def _after(self, **_: Any) -> None:
        self.seconds += time.perf_counter() - self._t0

    def _units(self, op: str, params: dict[str, Any]) -> None:
        # on-demand: a write of an item up to 1 KB is 1 WRU; a strongly consistent read up to 4 KB
        # is 1 RRU, an eventually consistent one 0.5 (our items are well under both sizes)
        if op in ("PutItem", "UpdateItem", "DeleteItem"):
            self.units["wru"] += 1
        elif op == "GetItem":
            self.units["rru"] += 1 if params.get("ConsistentRead") else 0.5
        elif op == "BatchGetItem":
            for spec in params.get("RequestItems", {}).values():
                self.units["rru"] += len(spec.get("Keys", [])) * (1 if spec.get("ConsistentRead") else 0.5)
        elif op == "BatchWriteItem":
            self.units["wru"] += sum(len(v) for v in params.get("RequestItems", {}).values())
        elif op == "TransactWriteItems":
            # a transactional write costs two WRU per item (prepare and commit)
            self.units["wru"] += 2 * len(params.get("TransactItems", []))
        elif op == "TransactGetItems":
            self.units["rru"] += 2 * len(params.get("TransactItems", []))
        elif op in ("Query", "Scan"):
            self.units["rru"] += 1


@contextlib.contextmanager
def local_bench(customers: int = 4) -> Iterator[Bench]:
    """The local stack with the catalog in both sims and ``tax_id`` set; the story's customers seeded."""
    from bench.moto_server import cheap_transactions
    from sandbox.local.stack import LocalStack
    from sandbox.story import AcumaticaUser, MagentoAdmin, Story

    with tempfile.TemporaryDirectory() as tmp:
        stack = LocalStack(
            state_file=Path(tmp) / "local.json", run_pollers=False, run_schedules=False, moto_process=True
        )
        with cheap_transactions(), stack:
            info = stack.info
            story = Story(
                magento=MagentoAdmin(**info["magento"]),
                acumatica=AcumaticaUser(**info["acumatica"]),
            )
            story.seed_catalog()
            bench = Bench(stack, story)
            bench.settings({"tax_id": "STORETAX"})
            try:
                yield bench
            finally:
                story.magento.close()
                story.acumatica.close()


def alone(measure: Callable[[Bench], Any]) -> Any:
    """Run one benchmark on a fresh local stack, quietly (``python -m bench.<section>``)."""
    import logging

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    logging.basicConfig(level=logging.WARNING)
    with local_bench() as bench:
        for noisy in ("httpx", "httpcore", "erpsync", "botocore"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        return measure(bench)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out
