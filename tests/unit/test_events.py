"""Every flow of the catalogue has its sample events (events/<flow>/), and they parse as the
handler would read them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from erpsync.flows.catalog import FLOWS
from erpsync.runtime.worker import Envelope

EVENTS = Path(__file__).parents[2] / "events"


@pytest.mark.parametrize("flow", [f.name for f in FLOWS])
def test_each_flow_has_a_queue_and_a_schedule_sample(flow: str) -> None:
    notice = json.loads((EVENTS / flow / "sqs_notice.json").read_text())
    [record] = notice["Records"]
    env = Envelope.parse(record["body"])
    assert env.notice.entity == next(f.entity for f in FLOWS if f.name == flow)
    assert record["eventSourceARN"].endswith(f":erpsync-{flow}")
    assert json.loads((EVENTS / flow / "schedule.json").read_text()) == {"erpsync": "poll"}
