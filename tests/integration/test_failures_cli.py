"""`erpsync failed`, `failed show` and `skip` against the failures desk on moto: listings as a table
or real JSON lines, a reason with markup in it printed as text, and the unhappy paths as one line."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from cli import target
from cli.main import app
from erpsync.state.failures import Failure, FailuresDesk
from erpsync.state.synclog import LogRow, SyncLog

ENV = ("AWS_ENDPOINT_URL", "BINDINGS_TABLE", "SYNC_LOG_TABLE", "QUEUE_URL_PREFIX", "LOG_LEVEL")


@pytest.fixture
def desk(aws: dict[str, Any], moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FailuresDesk:
    """A local stack file as `erpsync local up` writes it (tables and queues in moto) and a desk
    holding two failed orders, one of them with rich markup in its reason."""
    for key in ENV:  # use_local writes os.environ: restored after the test
        monkeypatch.setenv(key, os.environ.get(key, "WARNING" if key == "LOG_LEVEL" else "unset"))
    env = {
        "BINDINGS_TABLE": aws["tables"]["BindingsTable"],
        "SYNC_LOG_TABLE": aws["tables"]["SyncLogTable"],
        "QUEUE_URL_PREFIX": str(aws["queues"]["OrdersQueue"]).removesuffix("orders"),
    }
    local = tmp_path / "local.json"
    local.write_text(json.dumps({"aws_endpoint": moto_endpoint, "env": env}))
    monkeypatch.setattr(target, "use_local", functools.partial(target.use_local, local))
    d = FailuresDesk(env["BINDINGS_TABLE"])
    d.record(
        Failure(
            "orders",
            "magento",
            "7",
            entity="order",
            target="acumatica",
            error_type="unknown_item",
            reason="Acumatica has no stock item [/b]24-UG01[bold] for jane.doe@example.com",
            attempts=1,
        )
    )
    d.record(Failure("orders", "magento", "8", entity="order", error_type="mapping_missing", reason="no ShipVia"))
    SyncLog(env["SYNC_LOG_TABLE"]).write(
        LogRow("orders", "magento", "7", "failed", error_type="unknown_item", message="no stock item 24-UG01")
    )
    return d


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=input)


def test_failed_lists_the_desk_and_prints_markup_as_text(desk: FailuresDesk) -> None:
    out = run("failed", "--flow", "orders")
    assert out.exit_code == 0, out.output
    assert "[/b]24-UG" in out.output  # the table may wrap the reason; the markup is printed, not read
    assert "2 open failures" in out.output
    assert "jane.doe@example.com" not in out.output  # masked on the desk


def test_failed_json_is_one_object_a_line(desk: FailuresDesk) -> None:
    out = run("failed", "--json", "--error-type", "unknown_item")
    assert out.exit_code == 0, out.output
    [line] = out.output.strip().splitlines()
    row = json.loads(line)
    assert (row["flow"], row["id"], row["error_type"], row["failures"]) == ("orders", "7", "unknown_item", 1)


def test_failed_show_gives_the_record_and_its_history(desk: FailuresDesk) -> None:
    out = run("failed", "show", "7")
    assert out.exit_code == 0, out.output
    assert "[/b]24-UG01[bold]" in out.output and "acumatica" in out.output
    assert "failed try" in out.output and "no stock item 24-UG01" in out.output
    missing = run("failed", "show", "99")
    assert missing.exit_code == 1 and "no open failure with id 99" in missing.output
    assert "Traceback" not in missing.output


def test_skip_needs_a_note_and_asks_before_several(desk: FailuresDesk) -> None:
    no_note = run("skip", "orders", "7")
    assert no_note.exit_code == 2 and "--note" in no_note.output
    declined = run("skip", "orders", "7", "8", "--note", "cancelled in the store", input="n\n")
    assert declined.exit_code == 1 and "skip orders: 2 records?" in declined.output
    assert sorted(f.id for f in desk.open()) == ["7", "8"]
    done = run("skip", "orders", "7", "8", "--note", "cancelled in the store", "--yes")
    assert done.exit_code == 0, done.output
    assert desk.open() == []
    assert {(f.id, f.note, f.resolution) for f in desk.resolved()} == {
        ("7", "cancelled in the store", "skipped_by_operator"),
        ("8", "cancelled in the store", "skipped_by_operator"),
    }
    listed = run("failed", "--resolved", "--json")
    assert sorted(json.loads(x)["id"] for x in listed.output.strip().splitlines()) == ["7", "8"]


def test_an_unknown_flow_is_one_clear_line(desk: FailuresDesk) -> None:
    out = run("failed", "--flow", "ordres")
    assert out.exit_code == 2 and "ordres" in out.output and "Traceback" not in out.output
