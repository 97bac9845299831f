"""Credentials refused are the system's trouble, not the orders': on the local stack, the ERP's
password is changed while orders wait; nothing is parked, and once the secret holds the new
password every order reaches Acumatica exactly once."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from sandbox.story import AcumaticaUser, MagentoAdmin, Story

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from cli.target import use_local
    from sandbox.local.stack import LocalStack

    state = tmp_path_factory.mktemp("stack") / "local.json"
    with LocalStack(state_file=state, run_pollers=False, run_schedules=False) as s:
        use_local(state)
        from erpsync.state.settings import SettingsStore

        # short waits so the test sees the retries: the breaker opens for 1 s, re-queues wait 1 s
        SettingsStore(os.environ["BINDINGS_TABLE"]).update(
            {"tax_id": "STORETAX", "breaker_open_s": 1, "retry_delay_cap_s": 1}
        )
        yield s


def _parked(flow: str) -> int:
    from erpsync.runtime import queues

    attrs = queues.client().get_queue_attributes(
        QueueUrl=queues.dlq_url(queues.queue_url(flow)), AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"])


def _drain_until(flow: str, synced: int, timeout_s: float = 60) -> list[str]:
    from erpsync.runtime.lambda_app import build

    rt = build(flow)
    outcomes: list[str] = []
    until = time.monotonic() + timeout_s
    while outcomes.count("synced") < synced and time.monotonic() < until:
        outcomes += [o.outcome for o in rt.drain()]
        time.sleep(0.5)
    return outcomes


def test_a_changed_erp_password_parks_nothing_and_the_orders_sync_once_the_secret_is_fixed(stack: Any) -> None:
    from erpsync.runtime.lambda_app import build
    from erpsync.state.synclog import SyncLog

    info = stack.info
    story = Story(
        magento=MagentoAdmin(**info["magento"]),
        acumatica=AcumaticaUser(**info["acumatica"]),
        api_url=str(info["api_url"]),
        webhook_secret=info["webhook_secrets"]["magento"],
    )
    story.seed_catalog()
    customers = story.seed_customers(2)
    sim = stack.sim_apps["acumatica"].state.sim
    sim.password = "changed-by-the-erp-admin"
    sim.sessions.clear()  # every session signs in again
    placed = story.place_orders(customers, 3)

    rt = build("orders")
    rt.poll()
    first = [o.outcome for o in rt.drain()]
    assert first and set(first) == {"retrying"}, first
    rows = [r for p in placed for r in SyncLog(os.environ["SYNC_LOG_TABLE"]).history("orders", str(p.entity_id))]
    kinds = {r.get("error_type") for r in rows}
    assert "auth" in kinds and kinds <= {"auth", "breaker_open"}, kinds  # the first refusal opens the breaker
    assert all(int(r.get("attempt", 0)) == 0 for r in rows), "a refused password spent an attempt"
    assert _parked("orders") == 0

    name = next(n for n, doc in stack.secrets.items() if doc.get("password") == "123" and "company" in doc)
    fixed = {**stack.secrets[name], "password": sim.password}
    boto3.client("secretsmanager").put_secret_value(SecretId=name, SecretString=json.dumps(fixed))

    outcomes = _drain_until("orders", synced=3)
    assert outcomes.count("synced") == 3, outcomes
    story.acumatica.login["password"] = sim.password
    for order in placed:
        assert len(story.acumatica.orders_for(order.increment_id)) == 1
    assert _parked("orders") == 0
