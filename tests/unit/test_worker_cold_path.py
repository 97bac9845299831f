"""A flow worker's cold path (issue 9, item 11): its first invocation, in a fresh interpreter as a cold
Lambda container, wires what a record needs and imports nothing it does not use: no other flow's
rules, no other system, no catalog models, no operator or CLI code, no ``difflib``, no pydantic (the
models are msgspec structs: ``erpsync/model/base.py``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = textwrap.dedent(
    """
    import importlib.util, json, sys

    class NotInLambda:  # the CLI's packages: Lambda's layer has none of them
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("rich", "typer", "click", "pygments"):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, NotInLambda())
    from erpsync.state import dynamo
    from erpsync.systems import registry

    SECRET = {"base_url": "https://erp.example.com", "username": "u", "password": "p", "company": "Company"}
    SECRETS = {"erpsync/magento": SECRET, "erpsync/acumatica": SECRET}  # as bench/cold_start.py's
    reads = []

    class Dynamo:
        class exceptions:
            ConditionalCheckFailedException = KeyError
            TransactionCanceledException = KeyError
        def get_item(self, **kw):
            return {}
        def put_item(self, **kw):
            return {}
        def update_item(self, **kw):
            return {}
        def query(self, **kw):
            return {"Items": []}

    class SecretsManager:
        def get_secret_value(self, SecretId, **kw):
            reads.append(SecretId)
            return {"SecretString": json.dumps(SECRETS[SecretId])}

    import boto3

    real_client = boto3.client
    boto3.client = lambda service, *a, **kw: SecretsManager() if service == "secretsmanager" else real_client(
        service, *a, **kw
    )
    dynamo.client = lambda: Dynamo()
    spec = importlib.util.spec_from_file_location("app", sys.argv[1])
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)

    class Context:
        aws_request_id, function_name, memory_limit_in_mb = "r-1", "erpsync-orders", 256
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:erpsync-orders"
        def get_remaining_time_in_millis(self):
            return 30_000

    answer = app.handler({"Records": []}, Context())
    from erpsync.runtime.lambda_app import runtime
    rt = runtime(sys.argv[2])
    lanes = [(lane.source, lane.target, type(lane.rules).__name__) for lane in rt.dispatcher.lanes]
    print(json.dumps({"answer": answer, "reads": reads, "lanes": lanes, "modules": sorted(sys.modules)}))
    """
)


def first_invocation(flow: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ERPSYNC_", "POWERTOOLS_"))}
    for name in ("FLOW", "STORE_SYSTEM", "ERP_SYSTEM", "STORE_SECRET_NAME", "ERP_SECRET_NAME"):
        env.pop(name, None)
    env.update(
        PYTHONPATH=str(ROOT / "layers/shared/python"),
        FLOW=flow,
        AWS_LAMBDA_FUNCTION_NAME=f"erpsync-{flow}",
        AWS_DEFAULT_REGION="us-east-1",
        BINDINGS_TABLE="bindings",
        SYNC_LOG_TABLE="synclog",
        QUEUE_URL_PREFIX="https://sqs.us-east-1.amazonaws.com/123456789012/erpsync-",
    )
    script = [sys.executable, "-c", SCRIPT, str(ROOT / "functions/flow/app.py"), flow]
    out = subprocess.run(script, capture_output=True, text=True, env=env, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    got: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return got


NEVER = (
    "difflib",
    "pydantic",
    "pydantic_core",
    "erpsync.model.catalog",
    "erpsync.runtime.operator",
    "erpsync.runtime.operator_api",
    "erpsync.runtime.report",
    "erpsync.runtime.ingress",
    "erpsync.systems.shopify",
    "erpsync.systems.quickbooks",
    "erpsync.systems.sap_b1",
    "erpsync.systems.sap_s4",
    "erpsync.systems.magento.catalog",
    "erpsync.systems.acumatica.catalog",
)


@pytest.mark.parametrize(
    ("flow", "rules", "own"),
    [
        ("orders", "OrderRules", "erpsync.flows.orders"),
        ("shipments", "ShipmentRules", "erpsync.flows.documents"),
    ],
)
def test_a_workers_first_invocation_imports_only_what_its_flow_uses(flow: str, rules: str, own: str) -> None:
    got = first_invocation(flow)
    assert got["answer"] == {"batchItemFailures": []}
    assert got["lanes"] == [["magento", "acumatica", rules]] or got["lanes"] == [["acumatica", "magento", rules]]
    assert sorted(got["reads"]) == ["erpsync/acumatica", "erpsync/magento"]  # both secrets, once each
    modules = set(got["modules"])
    assert own in modules and "aws_lambda_powertools.logging.logger" in modules
    assert not [m for m in modules if m in NEVER or m.startswith(tuple(f"{n}." for n in NEVER))]
    flows = {m for m in modules if m.startswith("erpsync.flows.")}
    assert flows <= {"erpsync.flows.base", "erpsync.flows.catalog", "erpsync.flows.sync", "erpsync.flows.rules", own}
