"""Benchmark 4: cold start of each function, import plus first use, against ``import boto3`` alone.

The goal (issue 9, item 11): the webhook ingress's import plus first use at or under 1.5x
``import boto3``, Powertools Logger and Metrics included; the workers (every flow function) at or
under 2x. The operator API has no goal of its own; it is measured all the same.

Each figure comes from fresh interpreters, ``RUNS`` rounds interleaved (boto3, webhooks, each flow,
operator, libraries, boto3, ...) so that a machine load that comes and goes touches every function
alike; each ratio is the median over the rounds of that round's figure against that round's
``import boto3``. Per function:

- **boto3**: ``import boto3`` and nothing else: the yardstick the issue names.
- **import**: loading the function's ``app.py`` from its file, as the Lambda runtime does.
- **first use**: then its first invocation, for real, in Lambda mode (``AWS_LAMBDA_FUNCTION_NAME``
  set, so Powertools' JSON Logger with the Lambda context, and the invocation's EMF metrics flushed
  through Powertools), every AWS call answered in-process by a stub at botocore's ``before-send``
  (the code's cost, not a network's):

  - webhooks: a signed Magento ``sales_order_save_after`` webhook (an API Gateway proxy event) end
    to end: the settings read (DynamoDB ``GetItem``), the webhook secret read (Secrets Manager
    through Powertools Parameters), the signature checked, the body parsed, the notice routed, the
    de-duplication put (``PutItem``) and the notice queued (``SendMessageBatch``); answered 202;
  - each flow: an SQS event with no records, which builds all a record needs (the settings, both
    secrets, both systems connected with their HTTP clients, the flow's rules, the worker and its
    guards), then what the first record adds: the validators of the records the flow moves
    (``MODELS``, built on first use) and its metrics written (Powertools' EMF); the record's own
    calls to Magento and Acumatica are left out (the remote systems' time, not the cold start's);
  - operator: ``GET /operator/failed/orders`` (the flow built as above, its failed queue folded in,
    the failures desk listed).

- **AWS set-up**: the part of *first use* spent making boto3 sessions and clients
  (``boto3.session.Session()``, ``Session.create_client``: botocore reads each service's model,
  endpoints and rules). Every function that calls AWS pays it, a handler of three lines as much as
  this one, and ``import boto3`` alone does not: it is shown apart.

The goal is checked on **(import + first use - AWS set-up) / boto3**: all the function imports and
does on its first invocation, Powertools included, against the yardstick, less only the SDK's own
set-up. **(import + first use) / boto3** is reported beside it: what a cold invocation pays before
its first network call. **libraries** (not a function) is what a worker's libraries alone take
(``LIBRARIES``), to show how much of a worker's figure is left to erpsync's own code.

erpsync is imported as the deployed layer has it: built by the layer's own build
(``layers/shared/python/Makefile``, as ``sam build`` runs it, here with ``DEPS=no``: this
virtualenv's libraries stand in for the layer's), i.e. with bytecode compiled ahead, and nothing
is written at run time (``PYTHONDONTWRITEBYTECODE``: Lambda's layer is read-only). The row
**orders, from source** is the orders flow imported from the source tree without bytecode, as
the layer was deployed before the build compiled it: every cold start compiled erpsync again.

Each interpreter sees only what Lambda has: the layer (``layers/shared/python/requirements.txt``
and their dependencies), boto3 and the standard library. The other packages of this virtualenv
(``rich``, ``click``, ``pygments`` ... for the CLI and the tests) are refused at import, as they
would be missing in Lambda: httpx, for one, imports its command line, and with it ``rich``, when
it finds ``click``.

``python -m bench.cold_start`` runs this benchmark alone and prints the table; ``--doc`` also
rewrites the cold-start section of docs/PERFORMANCE.md (``make bench`` runs it with the rest).
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.common import git_commit, median

ROOT = Path(__file__).resolve().parents[1]
RUNS = 7
FLOWS = ("orders", "shipments", "invoices", "customers", "erp-customers")
"""Every flow function runs one module, ``functions/flow/app.py``, with ``FLOW`` naming its flow."""
HANDLERS = ("webhooks", *FLOWS, "operator")
GOALS: dict[str, float | None] = {"webhooks": 1.5, **dict.fromkeys(FLOWS, 2.0), "operator": None}
"""Ceiling of (import + first use - AWS set-up) / boto3: the ingress 1.5x, the workers 2x; the
operator API (an operator's request, not a sender's) has none, and is measured all the same."""
WEBHOOK_SECRET = "bench-webhook-secret"
FROM_SOURCE = "orders, from source"
"""A yardstick row: the orders flow with erpsync compiled at each start (no bytecode in the layer)."""
LIBRARIES = "libraries"
"""A yardstick row: what a worker's libraries alone take (``import boto3`` and its DynamoDB types,
msgspec (the models' base), httpx with one client and so its TLS context, Powertools' Logger made,
its EMF Metrics and Parameters), so the share left to erpsync's own code can be read."""
SECTION = "## 4. Cold start"
"""The heading of this benchmark's section in docs/PERFORMANCE.md."""
WATCHED = (
    "pydantic",
    "msgspec",
    "httpx",
    "aws_lambda_powertools.logging.logger",
    "aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch",
    "aws_lambda_powertools.utilities.parameters",
)
"""Packages whose presence after the first invocation the result records (``loaded``)."""

MODELS = {
    "orders": ("Order", "Customer", "SalesOrderDraft", "ErpOrderRef"),
    "shipments": ("Shipment",),
    "invoices": ("Invoice",),
    "customers": ("Customer",),
    "erp-customers": ("Customer",),
}
"""The record models each flow's first record validates: what msgspec and ``Model.__post_init__`` learn of
each on first use (its fields' types, its converter) is built here, as that record would build it."""

_PROBE = r'''
import json, os, sys, time

MISSING = frozenset(os.environ["BENCH_NOT_IN_LAYER"].split(","))


class _LayerOnly:
    """Refuse the packages of this virtualenv that the Lambda layer does not have."""

    def find_spec(self, name, path=None, target=None):
        if name in MISSING:
            raise ModuleNotFoundError(f"No module named {name!r} (not in the Lambda layer)", name=name)
        return None


sys.meta_path.insert(0, _LayerOnly())
kind, target = sys.argv[1], sys.argv[2]
WATCHED = os.environ.get("BENCH_WATCHED", "").split(",")
out = {"import_s": 0.0, "first_use_s": 0.0, "clients_s": 0.0, "calls_s": 0.0}

if kind == "boto3":
    t0 = time.perf_counter()
    import boto3
    out["import_s"] = time.perf_counter() - t0
    print(json.dumps(out))
    raise SystemExit(0)

if kind == "libraries":
    t0 = time.perf_counter()
    import boto3
    import boto3.dynamodb.types
    import httpx
    from aws_lambda_powertools.logging import Logger
    from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider
    from aws_lambda_powertools.utilities import parameters
    import msgspec

    httpx.Client()
    Logger(service="bench")
    out["import_s"] = time.perf_counter() - t0
    print(json.dumps(out))
    raise SystemExit(0)

# botocore first (the functions need it on their first invocation anyway; counted as first use):
# a stub answers every AWS call in-process, and client creation is timed
t0 = time.perf_counter()
import botocore.handlers
import botocore.session
from botocore.awsrequest import AWSResponse

ANSWERS = json.loads(os.environ["BENCH_AWS_ANSWERS"])
calls = []


class _Raw:
    def __init__(self, data):
        self.data = data

    def stream(self, **_):
        yield self.data


def _answer(request, **_):
    target = request.headers.get("X-Amz-Target") or b""
    target = target.decode() if isinstance(target, bytes) else target
    op = target.rpartition(".")[2]
    calls.append(op)
    answer = ANSWERS.get(op, {})
    if op == "SendMessageBatch":
        entries = json.loads(request.body or b"{}").get("Entries", [])
        answer = {"Successful": [{"Id": e["Id"], "MessageId": f"m{e['Id']}", "MD5OfMessageBody": ""} for e in entries]}
    headers = {"Content-Type": "application/x-amz-json-1.0"}
    return AWSResponse(request.url, 200, headers, _Raw(json.dumps(answer).encode()))


botocore.handlers.BUILTIN_HANDLERS.append(("before-send", _answer))
_create = botocore.session.Session.create_client


def _timed_create(self, *a, **k):
    t = time.perf_counter()
    try:
        return _create(self, *a, **k)
    finally:
        out["clients_s"] += time.perf_counter() - t


botocore.session.Session.create_client = _timed_create
import boto3.session

_new_session = boto3.session.Session.__init__


def _timed_session(self, *a, **k):
    t = time.perf_counter()
    try:
        return _new_session(self, *a, **k)
    finally:
        out["clients_s"] += time.perf_counter() - t


boto3.session.Session.__init__ = _timed_session
import botocore.client

_call = botocore.client.BaseClient._make_api_call


def _timed_call(self, *a, **k):
    t = time.perf_counter()
    try:
        return _call(self, *a, **k)
    finally:
        out["calls_s"] += time.perf_counter() - t


botocore.client.BaseClient._make_api_call = _timed_call
prelude = time.perf_counter() - t0

import importlib.util

t1 = time.perf_counter()
spec = importlib.util.spec_from_file_location("app", target)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
t2 = time.perf_counter()


class Context:
    function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
    function_version = "$LATEST"
    invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
    memory_limit_in_mb = 256
    aws_request_id = "c0ld-5ta7t"
    log_group_name = f"/aws/lambda/{function_name}"
    log_stream_name = "bench"

    def get_remaining_time_in_millis(self):
        return 30_000


answer = module.handler(json.loads(os.environ["BENCH_EVENT"]), Context())
models = os.environ.get("BENCH_MODELS")
if models:  # what the flow's first record adds: its models' validators, its metrics written
    import typing

    import msgspec

    import erpsync.model as model
    from erpsync.model import base
    from erpsync.runtime import metrics

    for name in models.split(","):
        msgspec.json.Decoder(getattr(model, name))  # its converter, as its first model_validate builds it
        todo = [getattr(model, name)]
        while todo:  # what __post_init__ checks of it and of every model it holds
            cls = todo.pop()
            if cls not in base._PLANS:
                base._PLANS[cls] = base._plan(cls)
                for f in msgspec.structs.fields(cls):
                    held = (*typing.get_args(f.type), f.type)
                    todo += [t for t in held if isinstance(t, type) and issubclass(t, base.Model)]
    metrics.attempt(os.environ["FLOW"], "magento", "synced", 1.0)
    metrics.flush()
t3 = time.perf_counter()
out["import_s"] = t2 - t1
out["first_use_s"] = prelude + (t3 - t2)
out["answer"] = answer
out["aws_calls"] = calls
out["loaded"] = sorted(m for m in WATCHED if m in sys.modules)
print(json.dumps(out, default=str))
'''


def _not_in_layer() -> str:
    """Top-level import names of this virtualenv's packages that Lambda does not have: all but the
    layer's requirements and their dependencies, and boto3 (the runtime's own)."""
    wanted = ["boto3"]
    wanted += [
        re.split(r"[=<>~!\[; ]", line.strip())[0]
        for line in (ROOT / "layers/shared/python/requirements.txt").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    seen: set[str] = set()
    while wanted:
        name = re.sub(r"[-_.]+", "-", wanted.pop()).lower()
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        for req in dist.requires or []:
            if "extra ==" not in req:
                wanted.append(re.split(r"[=<>~!\[; (]", req.strip())[0])
    missing = set()
    for top, dists in metadata.packages_distributions().items():
        if top != "erpsync" and not any(re.sub(r"[-_.]+", "-", d).lower() in seen for d in dists):
            missing.add(top)
    return ",".join(sorted(missing))


def _webhook_event() -> dict[str, Any]:
    from erpsync.systems.magento.webhooks import sign

    body = json.dumps(
        {
            "eventName": "observer.sales_order_save_after",
            "data": {"order": {"entity_id": 7, "increment_id": "000000007", "updated_at": "2025-05-01 10:00:00"}},
        }
    )
    return {
        "resource": "/webhooks/{source}",
        "path": "/webhooks/magento",
        "httpMethod": "POST",
        "headers": {"Content-Type": "application/json", **sign(WEBHOOK_SECRET, body.encode())},
        "pathParameters": {"source": "magento"},
        "requestContext": {"requestId": "bench", "stage": "Prod"},
        "body": body,
        "isBase64Encoded": False,
    }


_QUEUE_PREFIX = "https://sqs.us-east-1.amazonaws.com/123456789012/erpsync-"
_SECRET = {
    "base_url": "https://erp.example.com",
    "username": "bench",
    "password": "bench",
    "company": "Company",
    "magento": WEBHOOK_SECRET,
}
ANSWERS: dict[str, Any] = {
    "GetSecretValue": {
        "ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:bench",
        "Name": "bench",
        "SecretString": json.dumps(_SECRET),
    },
    "GetQueueAttributes": {
        "Attributes": {
            "RedrivePolicy": json.dumps(
                {
                    "deadLetterTargetArn": "arn:aws:sqs:us-east-1:123456789012:erpsync-orders-failed",
                    "maxReceiveCount": 5,
                }
            )
        }
    },
    "GetQueueUrl": {"QueueUrl": f"{_QUEUE_PREFIX}orders-failed"},
    "ReceiveMessage": {},
    "Query": {"Items": [], "Count": 0, "ScannedCount": 0},
}
"""What the AWS stub answers (by operation; anything else gets ``{}``: an empty ``GetItem``, i.e.
no stored settings, and a successful put)."""


def build_layer(into: Path) -> Path:
    """erpsync as the layer's build leaves it (bytecode compiled ahead), under ``into``; its folder."""
    subprocess.run(
        [
            *("make", "-s", "-f", str(ROOT / "layers/shared/python/Makefile"), "build-SharedLayer"),
            *(f"ARTIFACTS_DIR={into}", "DEPS=no", f"PYTHON={sys.executable}"),
        ],
        check=True,
        capture_output=True,
    )
    return into / "python"


def _probe(name: str, layer: str, built: Path) -> dict[str, Any]:
    """One fresh interpreter: ``import boto3`` (``name`` boto3) or the function ``name``'s cold start,
    erpsync from the ``built`` layer (from the source tree for ``FROM_SOURCE``)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "FLOW") and not k.startswith("AWS_")}
    path = ROOT / "layers/shared/python" if name == FROM_SOURCE else built
    env.update(PYTHONPATH=str(path), PYTHONDONTWRITEBYTECODE="1", BENCH_NOT_IN_LAYER=layer)
    env.update(BENCH_WATCHED=",".join(WATCHED))
    flow = "orders" if name == FROM_SOURCE else name
    if name in ("boto3", LIBRARIES):
        args = [name, "-"]
    else:
        env.update(
            AWS_DEFAULT_REGION="us-east-1",
            AWS_REGION="us-east-1",
            AWS_ACCESS_KEY_ID="bench",
            AWS_SECRET_ACCESS_KEY="bench",
            AWS_LAMBDA_FUNCTION_NAME=f"erpsync-{name}",
            AWS_EC2_METADATA_DISABLED="true",
            LOG_LEVEL="INFO",
            POWERTOOLS_SERVICE_NAME="erpsync",
            POWERTOOLS_METRICS_NAMESPACE="erpsync",
            BINDINGS_TABLE="erpsync-bindings",
            SYNC_LOG_TABLE="erpsync-synclog",
            QUEUE_URL_PREFIX=_QUEUE_PREFIX,
            WEBHOOK_SECRET_NAME="erpsync/webhooks",
            BENCH_AWS_ANSWERS=json.dumps(ANSWERS),
        )
        if name == "webhooks":
            event: dict[str, Any] = _webhook_event()
        elif flow in FLOWS:
            env.update(FLOW=flow, BENCH_MODELS=",".join(MODELS[flow]))
            event = {"Records": []}
        else:
            event = {
                "resource": "/operator/{action}/{flow}",
                "httpMethod": "GET",
                "pathParameters": {"action": "failed", "flow": "orders"},
                "requestContext": {"identity": {"userArn": "arn:aws:iam::123456789012:user/bench"}},
                "body": None,
            }
        env["BENCH_EVENT"] = json.dumps(event)
        args = ["app", str(_module_file(flow))]
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, env=env, check=False, cwd=ROOT
    )
    if out.returncode != 0:
        raise RuntimeError(f"cold start probe of {name} failed:\n{out.stderr[-3000:]}")
    got = dict(json.loads(out.stdout.strip().splitlines()[-1]))
    _check(name, got)
    return got


def _check(name: str, got: dict[str, Any]) -> None:
    """A probe measures a first invocation that worked, not one that failed early."""
    answer = got.get("answer")
    if name not in GOALS:
        return
    if name == "webhooks":
        ok = answer["statusCode"] == 202 and json.loads(answer["body"]) == {"accepted": 1, "duplicates": 0}
        ok = ok and "SendMessageBatch" in got["aws_calls"]
    elif name in FLOWS:
        ok = answer == {"batchItemFailures": []} and "GetSecretValue" in got["aws_calls"]
    else:
        ok = answer["statusCode"] == 200
    if not ok:
        raise RuntimeError(
            f"cold start probe of {name}: the first invocation did not work: {answer} {got['aws_calls']}"
        )


def _module_file(name: str) -> Path:
    return ROOT / "functions" / ("flow" if name in FLOWS else name) / "app.py"


def run(runs: int = RUNS, handlers: tuple[str, ...] = HANDLERS) -> dict[str, Any]:
    """``runs`` rounds of fresh interpreters (boto3, then each of ``handlers``); per function the
    medians, and the ratios as the median over the rounds of each round's ratio to that round's
    ``import boto3`` (side by side, so a load that comes and goes touches both)."""
    from bench.report import _cpu

    layer = _not_in_layer()
    started = time.perf_counter()
    samples: dict[str, list[dict[str, Any]]] = {k: [] for k in ("boto3", *handlers, FROM_SOURCE, LIBRARIES)}
    with tempfile.TemporaryDirectory(prefix="erpsync-layer-") as tmp:
        built = build_layer(Path(tmp))
        for _ in range(runs):
            for name in samples:
                samples[name].append(_probe(name, layer, built))
    bases = [s["import_s"] for s in samples["boto3"]]
    rows = []
    for name, got in samples.items():
        own = [s["import_s"] + s["first_use_s"] - s["clients_s"] for s in got]
        total = [s["import_s"] + s["first_use_s"] for s in got]
        ratio = median([o / b for o, b in zip(own, bases, strict=True)])
        goal = GOALS.get(name)
        rows.append(
            {
                "module": name,
                "file": str(_module_file(name).relative_to(ROOT)) if name in GOALS else "",
                "import_ms": median([s["import_s"] for s in got]) * 1000,
                "first_use_ms": median([s["first_use_s"] for s in got]) * 1000,
                "clients_ms": median([s["clients_s"] for s in got]) * 1000,
                "total_ms": median(total) * 1000,
                "total_ratio": median([t / b for t, b in zip(total, bases, strict=True)]),
                "ratio": ratio,
                "ratio_range": [
                    min(o / b for o, b in zip(own, bases, strict=True)),
                    max(o / b for o, b in zip(own, bases, strict=True)),
                ],
                "goal": goal,
                "met": None if goal is None else ratio <= goal,
                "aws_calls": sorted(set(got[0].get("aws_calls", []))),
                "loaded": got[0].get("loaded", []),
            }
        )
    return {
        "runs": runs,
        "boto3_ms": median(bases) * 1000,
        "rows": rows,
        "elapsed_s": time.perf_counter() - started,
        "machine": f"{platform.platform()}; {_cpu()}",
        "python": sys.version.split()[0],
        "run_at": f"{datetime.now(UTC):%Y-%m-%d %H:%M}",
        "commit": git_commit(ROOT),
    }


def table(result: dict[str, Any]) -> str:
    """The result as plain text (``python -m bench.cold_start`` prints it)."""
    lines = [
        f"{'function':<14} {'import':>7} {'first use':>9} {'AWS set-up':>11} {'total':>7} "
        f"{'total/boto3':>11} {'w/o set-up/boto3':>17}  goal",
    ]
    for r in result["rows"]:
        verdict = "" if r["goal"] is None else f"<= {r['goal']:.1f}x: {'met' if r['met'] else 'NOT MET'}"
        lines.append(
            f"{r['module']:<14} {r['import_ms']:>7.0f} {r['first_use_ms']:>9.0f} {r['clients_ms']:>11.0f} "
            f"{r['total_ms']:>7.0f} {r['total_ratio']:>11.2f} {r['ratio']:>17.2f}  {verdict}"
        )
    lines.append(f"(ms, median of {result['runs']} interleaved runs; boto3 = {result['boto3_ms']:.0f} ms)")
    return "\n".join(lines)


def write_section(result: dict[str, Any], doc: Path = ROOT / "docs" / "PERFORMANCE.md") -> None:
    """Replace the cold-start section of ``doc`` (and the cold start kept in ``.erpsync/bench.json``,
    when a full run left one, so ``python -m bench --report-only`` shows this run) with ``result``."""
    from bench.report import cold_start_section, put_section

    put_section("cold_start", SECTION, cold_start_section(result), result, doc)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Cold starts against import boto3 (this benchmark alone).")
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--doc", action="store_true", help="rewrite the cold-start section of docs/PERFORMANCE.md")
    args = parser.parse_args()
    result = run(args.runs)
    print(table(result))
    if args.doc:
        write_section(result)
