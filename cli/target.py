"""Where the command points: the local stack (.erpsync/local.json) or a deployed CloudFormation stack.

Either way the result is the same set of environment variables the functions see, so the
command runs the very same flow code an operator's Lambda runs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def _local_file() -> Path:
    """``ERPSYNC_LOCAL_FILE``, else ``.erpsync/local.json`` in this folder or the nearest folder above
    it that has one (a command run from a subfolder of the clone finds the stack), else here."""
    if os.environ.get("ERPSYNC_LOCAL_FILE"):
        return Path(os.environ["ERPSYNC_LOCAL_FILE"])
    here = Path.cwd()
    for folder in (here, *here.parents):
        candidate = folder / ".erpsync" / "local.json"
        if candidate.exists():
            return candidate
    return Path(".erpsync/local.json")


LOCAL_FILE = _local_file()
"""Where `erpsync local up` writes the stack's URLs and credentials and the other commands read them
(``ERPSYNC_LOCAL_FILE`` moves it)."""

OUTPUT_ENV = {
    "BindingsTableName": "BINDINGS_TABLE",
    "SyncLogTableName": "SYNC_LOG_TABLE",
    "QueueUrlPrefix": "QUEUE_URL_PREFIX",
}


def use_local(path: Path = LOCAL_FILE) -> dict[str, Any]:
    """Point this process at the local stack described by ``path``; its contents."""
    if not path.exists():
        raise SystemExit(
            f"error: no local stack found ({path} does not exist here or in a folder above): start it with "
            "`erpsync local up` in the clone, or use --stack NAME"
        )
    try:
        info: dict[str, Any] = json.loads(path.read_text())
        info["aws_endpoint"]
    except (ValueError, KeyError, TypeError):
        raise SystemExit(
            f"error: {path} is not a local stack file: start the stack again with `erpsync local up`"
        ) from None
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": info["aws_endpoint"],
            "AWS_DEFAULT_REGION": info.get("region", "us-east-1"),
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
    )
    os.environ.update({k: str(v) for k, v in info.get("env", {}).items()})
    return info


def use_stack(stack: str) -> dict[str, Any]:
    """Point this process at a deployed stack, from its CloudFormation outputs."""
    import boto3

    desc = boto3.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in desc.get("Outputs", [])}
    params = {p["ParameterKey"]: p.get("ParameterValue", "") for p in desc.get("Parameters", [])}
    for key, env in OUTPUT_ENV.items():
        if key in outputs:
            os.environ[env] = outputs[key]
    for key, env in (
        ("StoreSystem", "STORE_SYSTEM"),
        ("ErpSystem", "ERP_SYSTEM"),
        ("StoreSecretName", "STORE_SECRET_NAME"),
        ("ErpSecretName", "ERP_SECRET_NAME"),
        ("WebhookSecretName", "WEBHOOK_SECRET_NAME"),
    ):
        if params.get(key):
            os.environ[env] = params[key]
    return {"stack": stack, "outputs": outputs}


def choose(stack: str | None) -> dict[str, Any]:
    info = use_stack(stack) if stack else use_local()
    # the command prints its own results; the functions' per-record log lines only when asked
    os.environ["LOG_LEVEL"] = os.environ.get("ERPSYNC_LOG_LEVEL", "WARNING")
    return info
