"""The CLI as a product: one clear line instead of a traceback, found from any folder of the clone,
bad options named, and with --stack every sync goes through the stack's operator API (no flow runs
on the laptop with the stack's secrets)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import cli.main as cli_main
from erpsync.state.synclog import LogRow, SyncLog
from tests.integration.test_failures_cli import desk as desk

ROOT = Path(__file__).resolve().parents[2]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def erpsync(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("ERPSYNC_")}
    base["PYTHONPATH"] = f"{ROOT / 'layers' / 'shared' / 'python'}{os.pathsep}{ROOT}"
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=cwd,
        env={**base, "AWS_MAX_ATTEMPTS": "1", **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_stopped_local_stack_is_one_line_found_from_a_subfolder(tmp_path: Path) -> None:
    (tmp_path / ".erpsync").mkdir()
    dead = f"http://127.0.0.1:{closed_port()}"
    env = {"BINDINGS_TABLE": "t", "SYNC_LOG_TABLE": "s", "QUEUE_URL_PREFIX": f"{dead}/q/"}
    (tmp_path / ".erpsync" / "local.json").write_text(json.dumps({"aws_endpoint": dead, "env": env}))
    deep = tmp_path / "docs" / "notes"
    deep.mkdir(parents=True)
    out = erpsync("log", cwd=deep)  # finds ../../.erpsync/local.json
    assert out.returncode == 1, out.stderr
    assert out.stderr.strip().splitlines() == [
        f"error: the local stack is not answering at {dead}: start it with `erpsync local up`, or use --stack NAME"
    ]
    assert "Traceback" not in out.stderr + out.stdout


def test_no_local_stack_anywhere_is_one_line(tmp_path: Path) -> None:
    out = erpsync("failed", cwd=tmp_path)
    assert out.returncode == 1
    [line] = out.stderr.strip().splitlines()
    assert line.startswith("error: no local stack found") and "erpsync local up" in line


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["log", "--limit", "0"], "--limit"),
        (["log", "--outcome", "done"], "'done' is not an outcome"),
        (["log", "--flow", "ordres"], "ordres"),
        (["failed", "--since", "yesterday"], "'yesterday' is not an ISO date"),
        (["retry", "orders", "--since", "last week"], "is not an ISO date"),
    ],
)
def test_bad_options_are_named_before_anything_runs(args: list[str], named: str) -> None:
    out = CliRunner().invoke(cli_main.app, args)
    assert out.exit_code == 2 and named in out.output, out.output
    assert "Traceback" not in out.output


def test_log_json_is_one_object_a_line(desk: Any, aws: dict[str, Any]) -> None:
    SyncLog(aws["tables"]["SyncLogTable"]).write(LogRow("orders", "magento", "9", "synced", message="created [b]SO9"))
    out = CliRunner().invoke(cli_main.app, ["log", "--json", "--flow", "orders"])
    assert out.exit_code == 0, out.output
    rows = [json.loads(line) for line in out.output.strip().splitlines()]
    assert [r["source_id"] for r in rows if r["source_id"] == "9"] == ["9"]


class FakeOperatorApi:
    """What a deployed stack's operator API would answer, and every call made to it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []

    def call(self, method: str, path: str, body: Any = None, query: Any = None) -> dict[str, Any]:
        self.calls.append((method, path, body))
        if path.startswith("failed/"):
            return {"failed": [{"flow": "orders", "source": "magento", "id": "7", "error_type": "unknown_item"}]}
        if path.startswith("poll/"):
            return {"enqueued": 3, "since": "2026-11-27T00:00:00+00:00"}
        return {"id": (body or {}).get("id"), "outcome": "synced", "message": "created SO7"}

    def failed(self, flow: str, error_type: str | None = None, since: str | None = None) -> list[dict[str, Any]]:
        return list(self.call("GET", f"failed/{flow}")["failed"])

    def retry(self, flow: str, ids: list[str]) -> dict[str, int]:
        self.calls.append(("POST", f"resync/{flow}", {"failed": True, "ids": ids}))
        return {"synced": len(ids)}

    def skip(self, flow: str, ids: list[str], note: str) -> int:
        self.calls.append(("POST", f"skip/{flow}", {"ids": ids, "note": note}))
        return len(ids)


def test_with_a_stack_every_sync_goes_through_its_operator_api(monkeypatch: pytest.MonkeyPatch) -> None:
    api = FakeOperatorApi()
    monkeypatch.setattr(cli_main, "_remote", lambda stack: api)

    def no_local_flow(flow: str) -> Any:
        raise AssertionError("a flow was built on the laptop")

    monkeypatch.setattr("erpsync.runtime.lambda_app.build", no_local_flow)
    runner = CliRunner()
    assert runner.invoke(cli_main.app, ["sync", "orders", "--stack", "prod"]).exit_code == 0
    assert runner.invoke(cli_main.app, ["sync", "orders", "--id", "7", "--stack", "prod"]).exit_code == 0
    assert runner.invoke(cli_main.app, ["retry", "orders", "--stack", "prod", "--yes"]).exit_code == 0
    assert runner.invoke(cli_main.app, ["resync", "orders", "7", "--stack", "prod"]).exit_code == 0
    out = runner.invoke(cli_main.app, ["skip", "orders", "7", "--note", "dealt with", "--stack", "prod"])
    assert out.exit_code == 0, out.output
    assert [(m, p) for m, p, _ in api.calls] == [
        ("POST", "poll/orders"),
        ("POST", "resync/orders"),
        ("GET", "failed/orders"),
        ("POST", "resync/orders"),
        ("POST", "resync/orders"),
        ("GET", "failed/orders"),
        ("POST", "skip/orders"),
    ]
    assert api.calls[3][2] == {"failed": True, "ids": ["7"]} and api.calls[1][2] == {"id": "7"}
