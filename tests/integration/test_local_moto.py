"""The local AWS keeps DynamoDB's promise the guards rely on: a conditional write is atomic.

Plain moto checks a condition and writes in two steps, so two racing versioned updates could both
succeed (one increment lost); ``sandbox/local/moto_server.py`` serialises DynamoDB requests.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import pytest

from sandbox.local.aws import MotoServer, client


@pytest.fixture
def eager_thread_switches() -> Iterator[None]:
    """Switch threads every 10 µs rather than 5 ms, so a race in the in-process server shows up."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(before)


@pytest.mark.usefixtures("eager_thread_switches")
@pytest.mark.parametrize("own_process", [False, True], ids=["thread", "child-process"])
def test_racing_versioned_updates_never_both_succeed(own_process: bool) -> None:
    moto = MotoServer(own_process=own_process)
    endpoint = moto.start()
    try:
        ddb = client("dynamodb", endpoint)
        ddb.create_table(
            TableName="race",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        key = {"pk": {"S": "counter"}}
        won: list[int] = []

        def racer() -> None:
            mine = client("dynamodb", endpoint)
            for _ in range(60):
                item = mine.get_item(TableName="race", Key=key, ConsistentRead=True).get("Item", {})
                v = int(item.get("v", {"N": "0"})["N"])
                try:
                    mine.update_item(
                        TableName="race",
                        Key=key,
                        UpdateExpression="SET v = :nv",
                        ConditionExpression="attribute_not_exists(v) OR v = :v",
                        ExpressionAttributeValues={":nv": {"N": str(v + 1)}, ":v": {"N": str(v)}},
                    )
                    won.append(v)
                except mine.exceptions.ConditionalCheckFailedException:
                    pass

        threads = [threading.Thread(target=racer) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        final = int(ddb.get_item(TableName="race", Key=key)["Item"]["v"]["N"])
        assert len(won) == final  # every success is one increment: none was lost to a race
        assert sorted(won) == list(range(final))
    finally:
        moto.stop()
