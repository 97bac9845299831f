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


QUERY = """
import json, os
os.environ.update(AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x")
os.environ.pop("AWS_ENDPOINT_URL", None)
import boto3
from moto import mock_aws
from moto.dynamodb.models.table import Table
from sandbox.local.moto_queries import patch

def answers(c):
    out = {}
    for table in ("ranged", "flat"):
        for pk in ("a", "b", "none"):
            q = dict(TableName=table, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": pk}})
            if table == "ranged":
                q.update(Limit=2, ScanIndexForward=False)
            got = c.query(**q)
            out[f"{table}/{pk}"] = [i.get("sk", {}).get("S", i["pk"]["S"]) for i in got["Items"]]
            out[f"{table}/{pk}/more"] = "LastEvaluatedKey" in got
    return out

with mock_aws():
    c = boto3.client("dynamodb")
    for name, ranged in (("ranged", True), ("flat", False)):
        keys = [("pk", "HASH"), ("sk", "RANGE")] if ranged else [("pk", "HASH")]
        c.create_table(TableName=name, KeySchema=[{"AttributeName": n, "KeyType": t} for n, t in keys],
                       AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n, _ in keys],
                       BillingMode="PAY_PER_REQUEST")
    for pk in ("a", "b"):
        c.put_item(TableName="flat", Item={"pk": {"S": pk}})
        for sk in ("1", "2", "3"):
            c.put_item(TableName="ranged", Item={"pk": {"S": pk}, "sk": {"S": pk + sk}})
    before = answers(c)
    patch()
    patch()  # twice is once
    scans = []
    real = Table.all_items
    Table.all_items = lambda self: scans.append(self.name) or real(self)
    after = answers(c)
    print(json.dumps({"before": before, "after": after, "whole_table_reads": scans,
                      "scan": len(c.scan(TableName="ranged")["Items"])}))
"""


def test_a_query_reads_its_partition_and_answers_as_before() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "layers/shared/python")])}
    out = subprocess.run([sys.executable, "-c", QUERY], capture_output=True, text=True, env=env, cwd=ROOT, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["before"]["ranged/a"] == ["a3", "a2"] and result["before"]["ranged/a/more"]
    assert result["before"]["flat/b"] == ["b"] and result["before"]["ranged/none"] == []
    assert result["after"] == result["before"]
    assert result["whole_table_reads"] == ["ranged"]  # the scan alone; no query read the whole table
    assert result["scan"] == 6
