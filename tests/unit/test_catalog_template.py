"""The flow catalogue (erpsync.flows.catalog.FLOWS) is the only list of flows: template.yaml stamps
out each flow's queue, failed queue, alarm, function, log group and schedules from its Flows
mapping, and the systems it offers are registered plugins. These tests fail as soon as the two
disagree, so adding a flow to one and not the other cannot pass.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from erpsync.flows.catalog import FLOWS
from erpsync.systems.registry import KINDS
from sandbox.local.template import FOREACH, StackTemplate, load_template, parse_yaml

ROOT = Path(__file__).resolve().parents[2]
LIDS = [f.logical_id for f in FLOWS]


@pytest.fixture(scope="module")
def written() -> dict[str, Any]:
    """The template as written (loops not expanded)."""
    return parse_yaml(ROOT / "template.yaml", expand=False)


@pytest.fixture(scope="module")
def local() -> StackTemplate:
    return load_template(ROOT / "template.yaml", aws_endpoint="http://127.0.0.1:1")


def flow_loops(written: dict[str, Any]) -> dict[str, list[Any]]:
    """Every Fn::ForEach of Resources and Outputs whose identifier is Flow: where -> collection."""
    return {
        f"{section}/{key}": loop[1]
        for section in ("Resources", "Outputs")
        for key, loop in (written.get(section) or {}).items()
        if key.startswith(FOREACH) and loop[0] == "Flow"
    }


def test_the_flows_mapping_is_the_catalogue(written: dict[str, Any]) -> None:
    assert written["Mappings"]["Flows"] == {
        f.logical_id: {
            "Name": f.name,
            "Sweep": "ENABLED" if f.sweep else "DISABLED",
            "BatchSize": f.batch,
            "Window": f.window,
        }
        for f in FLOWS
    }


def test_every_flow_loop_runs_over_the_catalogue(written: dict[str, Any]) -> None:
    loops = flow_loops(written)
    assert {where.split("/")[0] for where in loops} == {"Resources", "Outputs"}
    for where, collection in loops.items():
        assert collection == LIDS, where


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, list):
        for x in node:
            yield from _strings(x)
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from _strings(k)
            yield from _strings(v)


def test_no_flow_is_written_out_by_hand(written: dict[str, Any]) -> None:
    """Outside the Flows mapping and the loop collections, the template names no flow."""
    rest = {k: v for k, v in written.items() if k != "Mappings"}
    rest["Mappings"] = {k: v for k, v in written["Mappings"].items() if k != "Flows"}
    for section in ("Resources", "Outputs"):
        rest[section] = {
            k: (v[2] if k.startswith(FOREACH) else v) for k, v in written[section].items()
        }  # the loop bodies stay, their collections go
    for text in _strings(rest):
        for f in FLOWS:
            assert not re.search(rf"(?<![A-Za-z]){f.logical_id}(?=[A-Z]|$)", text), (f.name, text)
            assert not re.search(rf"(?<![\w-]){re.escape(f.name)}(?![\w])", text), (f.name, text)


def test_every_flow_gets_its_queue_failed_queue_alarm_function_and_log_group(local: StackTemplate) -> None:
    resources = local.raw["Resources"]
    for f in FLOWS:
        lid = f.logical_id
        assert {f"{lid}Queue", f"{lid}DLQ", f"{lid}DLQAlarm", f"{lid}Function", f"{lid}LogGroup"} <= set(resources)
        queue, dlq = local.queues[f"{lid}Queue"], local.queues[f"{lid}DLQ"]
        assert (queue.name, dlq.name) == (f"erpsync-{f.name}", f"erpsync-{f.name}-dlq")
        assert queue.dead_letter_queue == f"{lid}DLQ"
        assert f'"sourceQueueArns": ["{queue.arn}"]' in dlq.attributes["RedriveAllowPolicy"]
        fn = local.functions[f"{lid}Function"]
        assert fn.environment["FLOW"] == f.name
        assert [e.queue for e in fn.sqs_events] == [f"{lid}Queue"]


def test_sweeps_are_enabled_for_the_flows_that_sweep(local: StackTemplate) -> None:
    for f in FLOWS:
        schedules = {e.name: e for e in local.functions[f"{f.logical_id}Function"].schedule_events}
        assert schedules["Poll"].enabled is (f.schedule == "poll"), f.name
        assert schedules["Sweep"].enabled is f.sweep, f.name
        assert schedules["Sweep"].input == {"erpsync": "sweep", "hours": 24}


def test_the_runtime_finds_each_flow_queue_from_the_prefix(
    local: StackTemplate, monkeypatch: pytest.MonkeyPatch
) -> None:
    from erpsync.runtime.queues import queue_url

    for f in FLOWS:
        monkeypatch.delenv(f"{f.name.upper().replace('-', '_')}_QUEUE_URL", raising=False)
        fn = local.functions[f"{f.logical_id}Function"]
        monkeypatch.setenv("QUEUE_URL_PREFIX", fn.environment["QUEUE_URL_PREFIX"])
        assert queue_url(f.name) == local.queues[f"{f.logical_id}Queue"].url


def test_the_systems_offered_are_registered_plugins(written: dict[str, Any]) -> None:
    for param in ("StoreSystem", "ErpSystem"):
        spec = written["Parameters"][param]
        assert set(spec["AllowedValues"]) <= set(KINDS), (param, spec["AllowedValues"], sorted(KINDS))
        assert spec["Default"] in spec["AllowedValues"]


def test_no_function_folder_per_flow() -> None:
    folders = {p.name for p in (ROOT / "functions").iterdir() if p.is_dir() and not p.name.startswith(("_", "."))}
    assert folders == {"flow", "webhooks", "operator", "report"}
