"""`erpsync settings` against a local stack file on moto: set, history, diff, rollback, and every
expected failure as one line with no traceback."""

from __future__ import annotations

import functools
import getpass
import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from cli import target
from cli.main import app
from erpsync.state.settings import CACHE_SECONDS, SettingsStore

ENV = (
    "AWS_ENDPOINT_URL",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "BINDINGS_TABLE",
    "LOG_LEVEL",
)


def _point_at(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, endpoint: str, table: str) -> None:
    """A local stack file as `erpsync local up` writes it, and the command reading it."""
    for key in ENV:  # use_local writes os.environ: restored after the test
        monkeypatch.setenv(key, os.environ.get(key, "WARNING" if key == "LOG_LEVEL" else "unset"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    local = tmp_path / "local.json"
    local.write_text(json.dumps({"aws_endpoint": endpoint, "env": {"BINDINGS_TABLE": table}}))
    monkeypatch.setattr(target, "use_local", functools.partial(target.use_local, local))


@pytest.fixture
def local(moto_endpoint: str, bindings_table: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    _point_at(monkeypatch, tmp_path, moto_endpoint, bindings_table)
    return bindings_table


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(app, ["settings", *args], input=input)


def one_line_error(result: Result, code: int) -> str:
    assert result.exit_code == code, result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_set_says_the_version_the_changes_and_when_workers_pick_it_up(local: str) -> None:
    res = run("set", '{"tax_id": "STORETAX", "rate_limits": {"acumatica": {"per_minute": 300, "concurrent": 4}}}')
    assert res.exit_code == 0, res.output
    assert f"settings version 1 saved by local:{getpass.getuser()}:" in res.stdout
    assert '  tax_id: null -> "STORETAX"' in res.stdout
    assert "  rate_limits.acumatica.concurrent: (unset) -> 4" in res.stdout
    assert f"within {CACHE_SECONDS:.0f} s" in res.stdout and "60 s" in res.stdout

    res = run("set", "rate_limits.acumatica.per_minute", "200")  # a dotted key merges too
    assert res.exit_code == 0, res.output
    assert "  rate_limits.acumatica.per_minute: 300 -> 200" in res.stdout
    limit = SettingsStore(local).load().rate_limits["acumatica"]
    assert (limit.per_minute, limit.concurrent) == (200, 4)

    res = run("set", "rate_limits.acumatica.per_minute", "200")
    assert res.exit_code == 0 and "nothing changed" in res.stdout and SettingsStore(local).head()[0] == 2
    res = run("set", "tax_id", "null")  # null removes
    assert res.exit_code == 0 and '  tax_id: "STORETAX" -> null' in res.stdout
    assert "log_retention_days" not in res.stdout
    res = run("set", "log_retention_days", "10")
    assert "log_retention_days applies to sync log rows written by workers started after this change" in res.stdout


def test_a_typo_names_close_matches_and_the_valid_keys_and_saves_nothing(local: str) -> None:
    line = one_line_error(run("set", '{"tax_idd": "STORETAX"}'), 2)
    assert "unknown setting 'tax_idd' (did you mean 'tax_id'?)" in line
    assert "valid top-level keys: batch_parallelism," in line and "rate_limits" in line
    line = one_line_error(run("set", "rate_limits.acumatica.per_minit", "5"), 2)
    assert "'per_minute'" in line and "valid keys under 'rate_limits.acumatica': concurrent, per_minute" in line
    assert SettingsStore(local).history() == []


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (('{"default_carrier": ["[/b]"]}',), "default_carrier: Expected `str`, got `array`"),
        (('{"max_attempts": 0}',), "max_attempts: Expected `int` >= 1 (got 0)"),
        (('{"routes": [{"store": "magento", "erp": "qbo[/b]", "flows": ["orders"]}]}',), "'qbo[/b]'"),
        (("[1, 2]",), "settings must be a JSON object"),
        (("{oops",), "not a JSON object"),
        (("a..b", "1"), "is not a dotted key"),
    ],
)
def test_refused_values_are_one_line_and_never_markup(local: str, args: tuple[str, ...], says: str) -> None:
    assert says in one_line_error(run("set", *args), 2)
    assert SettingsStore(local).history() == []


def test_history_lists_every_change_and_json_is_one_object_a_line(local: str) -> None:
    res = run("history")
    assert res.exit_code == 0 and "no settings changes recorded yet" in res.stdout
    assert run("history", "--json").stdout == ""
    run("set", "tax_id", "A")
    run("set", '{"shipping_methods": {"ups_GND": "UPSGROUND"}, "tax_id": "[/b]B"}')
    res = run("history")
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["version", "at", "(UTC)", "by", "change"]
    assert lines[1].split()[0] == "2" and "set shipping_methods.ups_GND, tax_id" in lines[1]
    assert lines[2].split()[0] == "1" and lines[2].endswith("set tax_id")
    rows = [json.loads(line) for line in run("history", "--json", "--limit", "1").stdout.splitlines()]
    assert len(rows) == 1 and rows[0]["version"] == 2 and rows[0]["actor"] == f"local:{getpass.getuser()}"
    assert {"key": "tax_id", "before": "A", "after": "[/b]B"} in rows[0]["changes"]
    assert rows[0]["patch"] == {"shipping_methods": {"ups_GND": "UPSGROUND"}, "tax_id": "[/b]B"}
    assert "--limit must be 1 or more" in one_line_error(run("history", "--limit", "0"), 2)


def test_diff_shows_before_and_after_of_the_last_change_one_change_or_two_versions(local: str) -> None:
    assert one_line_error(run("diff"), 1) == "error: no settings changes recorded yet"
    run("set", "tax_id", "A")
    run("set", '{"tax_id": "[bold]B[/bold]", "default_carrier": "ups"}')
    run("set", "default_carrier", "null")
    res = run("diff")
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines()[1:] == ['  default_carrier: "ups" -> "custom"']
    assert "version 3," in res.stdout.splitlines()[0]
    res = run("diff", "2")
    assert res.stdout.splitlines()[1:] == [
        '  default_carrier: "custom" -> "ups"',
        '  tax_id: "A" -> "[bold]B[/bold]"',  # printed as written, not as markup
    ]
    res = run("diff", "v1", "3")
    assert res.stdout.splitlines() == [
        "settings of version 1 -> settings of version 3",
        '  tax_id: "A" -> "[bold]B[/bold]"',
    ]
    assert run("diff", "3", "3").stdout.splitlines()[1:] == ["  (no differences)"]
    assert one_line_error(run("diff", "9"), 1) == "error: no settings version 9: the versions are 1 to 3"
    assert "'abc' is not a version number" in one_line_error(run("diff", "abc"), 2)
    assert "'1.5' is not a version number" in one_line_error(run("diff", "1", "1.5"), 2)


def test_rollback_asks_first_and_is_itself_a_version(local: str) -> None:
    assert one_line_error(run("rollback", "1", "--yes"), 1) == "error: no settings changes recorded yet"
    run("set", '{"tax_id": "A", "rate_limits": {"acumatica": {"per_minute": 300, "concurrent": 4}}}')
    run("set", '{"tax_id": "B", "rate_limits": null}')

    res = run("rollback", "1", input="n\n")
    assert res.exit_code == 1 and '  tax_id: "B" -> "A"' in res.stdout and "nothing changed" in res.stdout
    assert SettingsStore(local).head()[0] == 2
    res = run("rollback", "1")  # no answer at all: nothing happens either
    assert res.exit_code != 0 and SettingsStore(local).head()[0] == 2

    res = run("rollback", "1", input="y\n")
    assert res.exit_code == 0, res.output
    assert f"settings version 3 saved by local:{getpass.getuser()}: rollback to version 1" in res.stdout
    assert f"within {CACHE_SECONDS:.0f} s" in res.stdout
    settings = SettingsStore(local).load()
    assert settings.tax_id == "A" and settings.rate_limits["acumatica"].concurrent == 4
    [row] = [json.loads(line) for line in run("history", "--json", "--limit", "1").stdout.splitlines()]
    assert (row["version"], row["action"], row["rolled_back_to"]) == (3, "rollback", 1)
    assert "rollback to version 1: rate_limits.acumatica.concurrent" in run("history").stdout

    res = run("rollback", "3", "--yes")
    assert res.exit_code == 0 and "nothing to do" in res.stdout and SettingsStore(local).head()[0] == 3
    res = run("rollback", "2", "--yes")
    assert res.exit_code == 0 and "settings version 4" in res.stdout and "Roll back?" not in res.stdout
    assert one_line_error(run("rollback", "7", "--yes"), 1) == "error: no settings version 7: the versions are 1 to 4"
    assert "'x' is not a version number" in one_line_error(run("rollback", "x"), 2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("command", [("show",), ("history",), ("diff",), ("set", "tax_id", "A"), ("rollback", "1")])
def test_a_stopped_local_stack_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: tuple[str, ...]
) -> None:
    _point_at(monkeypatch, tmp_path, f"http://127.0.0.1:{_free_port()}", "unit-bindings")
    line = one_line_error(run(*command), 1)
    assert line.startswith("error: the local stack is not running") and "erpsync local up" in line


def test_a_stale_local_stack_file_is_one_line(
    moto_endpoint: str, aws: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _point_at(monkeypatch, tmp_path, moto_endpoint, "gone-bindings")
    line = one_line_error(run("history"), 1)
    assert line == (
        "error: the settings table of the local stack does not exist: the local stack file is stale, "
        "start the stack again with `erpsync local up`"
    )


def test_with_stack_the_change_is_recorded_with_the_callers_iam_identity(
    moto_endpoint: str, bindings_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("BINDINGS_TABLE", "unset")
    monkeypatch.setenv("LOG_LEVEL", "WARNING")

    def use_stack(stack: str) -> dict[str, Any]:  # as the stack's BindingsTableName output would
        monkeypatch.setenv("BINDINGS_TABLE", bindings_table)
        return {"stack": stack}

    monkeypatch.setattr(target, "use_stack", use_stack)
    res = run("set", "tax_id", "STORETAX", "--stack", "prod")
    assert res.exit_code == 0, res.output
    [v] = SettingsStore(bindings_table).history()
    assert v.actor.startswith("arn:aws:") and f"saved by {v.actor}:" in res.stdout


def test_an_unknown_stack_is_one_line(moto_endpoint: str, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    line = one_line_error(run("history", "--stack", "nope"), 1)
    assert line.startswith("error: AWS refused DescribeStacks: ValidationError:") and "nope" in line


def test_show_prints_the_settings_in_force_and_a_version_todays_code_refuses_is_not_rolled_back(local: str) -> None:
    from erpsync.state import dynamo

    run("set", "tax_id", "A")
    run("set", "tax_id", "B")
    shown = json.loads(run("show").stdout)
    assert shown["tax_id"] == "B" and shown["shipping_methods"]["flatrate_flatrate"] == "FLATRATE"
    key = dynamo.to_item({"pk": "settings#history", "sk": "v#0000000001"})
    dynamo.client().update_item(
        TableName=local,
        Key=key,
        UpdateExpression="SET doc = :d",
        ExpressionAttributeValues=dynamo.to_item({":d": '{"tax_id": "A", "retired_setting": 1}'}),
    )
    line = one_line_error(run("rollback", "1", "--yes"), 2)
    assert line == "error: settings not rolled back: retired_setting: unknown field (got 1)"
    assert SettingsStore(local).head()[0] == 2 and SettingsStore(local).load().tax_id == "B"


def test_the_order_number_setting_as_operations_md_gives_it(local: str) -> None:
    """docs/OPERATIONS.md "Order numbers": the first time as the whole connection, then one key."""
    from erpsync.systems.acumatica.settings import AcumaticaSettings

    doc = (
        '{"connections": {"acumatica": {"kind": "acumatica", "role": "erp",\n'
        '  "settings": {"order_type": "WO", "keep_store_number": true}}}}'
    )
    res = run("set", doc)
    assert res.exit_code == 0, res.output
    conn = SettingsStore(local).load().connections["acumatica"]
    assert AcumaticaSettings.model_validate(conn.settings) == AcumaticaSettings(order_type="WO", keep_store_number=True)
    res = run("set", "connections.acumatica.settings.keep_store_number", "false")
    assert res.exit_code == 0, res.output
    conn = SettingsStore(local).load().connections["acumatica"]
    assert conn.settings == {"order_type": "WO", "keep_store_number": False} and conn.kind == "acumatica"
