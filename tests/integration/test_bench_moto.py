"""``bench.moto_server``: the bench's moto backs up only the items a TransactWriteItems touches, and a
cancelled transaction still leaves nothing behind (run in a child: the patch is process-wide)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHECK = """
import json, os
os.environ.update(AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x")
os.environ.pop("AWS_ENDPOINT_URL", None)
import boto3
from moto import mock_aws
from bench.moto_server import patch
patch()
patch()  # twice is once
with mock_aws():
    c = boto3.client("dynamodb")
    c.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk")],
        BillingMode="PAY_PER_REQUEST",
    )
    key = lambda pk: {"pk": {"S": pk}, "sk": {"S": "-"}}
    c.put_item(TableName="t", Item={**key("a"), "v": {"N": "1"}})
    c.put_item(TableName="t", Item={**key("taken"), "v": {"N": "1"}})
    c.transact_write_items(TransactItems=[{"Put": {"TableName": "t", "Item": key(f"ok{i}")}} for i in range(3)])
    try:
        c.transact_write_items(TransactItems=[
            {"Put": {"TableName": "t", "Item": key("new")}},
            {"Update": {"TableName": "t", "Key": key("a"), "UpdateExpression": "SET v = :v",
                        "ExpressionAttributeValues": {":v": {"N": "2"}}}},
            {"Put": {"TableName": "t", "Item": key("taken"), "ConditionExpression": "attribute_not_exists(pk)"}},
        ])
        cancelled = False
    except c.exceptions.TransactionCanceledException:
        cancelled = True
    print(json.dumps({
        "ok": all("Item" in c.get_item(TableName="t", Key=key(f"ok{i}")) for i in range(3)),
        "cancelled": cancelled,
        "new": "Item" in c.get_item(TableName="t", Key=key("new")),
        "a": c.get_item(TableName="t", Key=key("a"))["Item"]["v"]["N"],
    }))
"""


def test_a_cancelled_transaction_leaves_nothing_behind() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "layers/shared/python")])}
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, env=env, cwd=ROOT, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"ok": True, "cancelled": True, "new": False, "a": "1"}
