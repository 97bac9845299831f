"""`erpsync settings`: show and change the admin settings, see who changed what, and roll back.

Everything prints plain text (values from the settings are never read as markup) and every
expected failure is one line on stderr with a non-zero exit code.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from cli import target

if TYPE_CHECKING:
    from erpsync.state.settings import Change, SettingsStore

settings_app = typer.Typer(
    help="Admin settings (mappings, order sync preferences, attempts), every change versioned.",
    no_args_is_help=True,
)
StackOpt = Annotated[str | None, typer.Option("--stack", help="A deployed CloudFormation stack (default: local)")]


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def _store(stack: str | None) -> Iterator[SettingsStore]:
    """The settings of the target stack; AWS and settings failures become one line."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
    )

    from erpsync.state.settings import SettingsError, SettingsStore

    where = f"stack {stack}" if stack else "the local stack"
    try:
        target.choose(stack)
        if not stack:
            _probe(os.environ.get("AWS_ENDPOINT_URL", ""))
        table = os.environ.get("BINDINGS_TABLE")
        if not table:
            _fail(f"{where} names no bindings table (no BindingsTableName output)")
        yield SettingsStore(table)
    except SettingsError as exc:
        _fail(str(exc))
    except EndpointConnectionError as exc:
        _fail(f"{where} does not answer ({exc})" + ("" if stack else ": start it with `erpsync local up`"))
    except NoCredentialsError:
        _fail("no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    except NoRegionError:
        _fail("no AWS region: set AWS_REGION or AWS_DEFAULT_REGION")
    except ClientError as exc:
        err = exc.response.get("Error", {})
        stale = "" if stack else ": the local stack file is stale, start the stack again with `erpsync local up`"
        if err.get("Code") == "ResourceNotFoundException":
            _fail(f"the settings table of {where} does not exist{stale}")
        _fail(f"AWS refused {exc.operation_name}: {err.get('Code')}: {err.get('Message')}")
    except BotoCoreError as exc:
        _fail(f"{where}: {exc}")


def _probe(endpoint: str) -> None:
    """Fail at once, not after the AWS client's retries, when the local stack is not running."""
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(endpoint)
    try:
        socket.create_connection((url.hostname or "127.0.0.1", url.port or 80), timeout=2).close()
    except OSError:
        _fail(f"the local stack is not running (nothing answers at {endpoint}): start it with `erpsync local up`")


def _actor(stack: str | None) -> str:
    """Who is changing the settings: the caller's IAM identity, or the local user."""
    if stack:
        import boto3

        return str(boto3.client("sts").get_caller_identity()["Arn"])
    import getpass

    try:
        return f"local:{getpass.getuser()}"
    except (OSError, KeyError):
        return "local:unknown"


def _one_line(exc: Exception) -> str:
    from erpsync.model.base import ValidationError

    if isinstance(exc, ValidationError):
        parts = []
        for e in exc.errors():
            where = ".".join(str(p) for p in e["loc"]) or "settings"
            got = e.get("input", [])
            parts.append(f"{where}: {e['msg']}" + ("" if isinstance(got, dict | list) else f" (got {got!r})"))
        return "; ".join(parts)
    return " ".join(str(exc).split())


def _value(v: Any) -> str:
    from erpsync.state.settings import UNSET

    return "(unset)" if v is UNSET else json.dumps(v)


def _print_changes(changes: list[Change]) -> None:
    for c in changes:
        typer.echo(f"  {c.key}: {_value(c.before)} -> {_value(c.after)}")
    if not changes:
        typer.echo("  (no differences)")


def _pickup(changed: list[Change]) -> None:
    from erpsync.state.settings import CACHE_SECONDS

    s = f"{CACHE_SECONDS:.0f} s"
    typer.echo(
        f"Running workers, the webhook API and the operator API pick this up within {s}, at their next "
        f"invocation (each re-reads the settings at most every {s}); new workers at once. No redeploy needed."
    )
    if any(c.key == "log_retention_days" for c in changed):
        typer.echo("log_retention_days applies to sync log rows written by workers started after this change.")


def _patch(changes: str, value: str | None) -> dict[str, Any]:
    """A JSON merge patch from a JSON object, or from a dotted key and its value."""
    if value is None:
        try:
            doc = json.loads(changes)
        except ValueError as exc:
            _fail(f"not a JSON object ({exc}); or give a dotted key and its value, e.g. tax_id STORETAX", 2)
        if not isinstance(doc, dict):
            _fail('settings must be a JSON object, e.g. \'{"tax_id": "STORETAX"}\'', 2)
        return doc
    path = changes.split(".")
    if not all(path):
        _fail(f"{changes!r} is not a dotted key, e.g. rate_limits.acumatica.per_minute", 2)
    try:
        leaf: Any = json.loads(value)
    except ValueError:
        leaf = value  # plain text
    for key in reversed(path):
        leaf = {key: leaf}
    return dict(leaf)


def _version_arg(text: str) -> int:
    digits = text[1:] if text[:1] in ("v", "V") else text
    if not digits.isdigit():
        _fail(f"{text!r} is not a version number (see `erpsync settings history`)", 2)
    return int(digits)


@settings_app.command("show")
def settings_show(stack: StackOpt = None) -> None:
    """Print the settings in force (defaults included), as JSON."""
    with _store(stack) as store:
        typer.echo(store.load().model_dump_json(indent=2))


@settings_app.command("set")
def settings_set(
    changes: Annotated[
        str,
        typer.Argument(
            help='A JSON merge patch, e.g. \'{"tax_id": "STORETAX"}\' (nested maps merge, null removes), '
            "or a dotted key such as rate_limits.acumatica.per_minute followed by VALUE",
        ),
    ],
    value: Annotated[
        str | None, typer.Argument(help="The dotted key's value: JSON (300, true, null removes it) or plain text")
    ] = None,
    stack: StackOpt = None,
) -> None:
    """Change settings: validated before anything is saved, kept as a new version with who and when."""
    from erpsync.model.base import ValidationError
    from erpsync.state.settings import SettingsError

    patch = _patch(changes, value)
    with _store(stack) as store:
        from erpsync.runtime.lambda_app import ConfigurationError, check_settings  # once the target is set

        try:
            store.update(patch, actor=_actor(stack), check=check_settings)
        except (ValidationError, ConfigurationError, SettingsError) as exc:
            _fail(f"settings not changed: {_one_line(exc)}", 2)
        if store.version is None:
            typer.echo(f"nothing changed: the settings already say so (version {store.head()[0]})")
            return
        saved = store.get(store.version)
    typer.echo(f"settings version {saved.version} saved by {saved.actor}:")
    _print_changes(saved.changes())
    _pickup(saved.changes())


@settings_app.command("history")
def settings_history(
    limit: Annotated[int, typer.Option(help="At most this many changes")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines, one change a line")] = False,
    stack: StackOpt = None,
) -> None:
    """Every change of the settings, newest first: version, when, who, what changed."""
    if limit < 1:
        _fail("--limit must be 1 or more", 2)
    with _store(stack) as store:
        versions = store.history(limit)
    if as_json:
        for v in versions:
            typer.echo(json.dumps(v.as_json()))
        return
    if not versions:
        typer.echo("no settings changes recorded yet")
        return
    width = max(len(v.actor) for v in versions)
    typer.echo(f"{'version':>7}  {'at (UTC)':19}  {'by':{width}}  change")
    for v in versions:
        keys = ", ".join(c.key for c in v.changes()) or "(nothing)"
        what = f"rollback to version {v.rolled_back_to}: {keys}" if v.action == "rollback" else f"{v.action} {keys}"
        typer.echo(f"{v.version:>7}  {v.at[:19].replace('T', ' '):19}  {v.actor:{width}}  {what[:120]}")


@settings_app.command("diff")
def settings_diff(
    v1: Annotated[str | None, typer.Argument(metavar="V1", help="A version: alone, what that change did")] = None,
    v2: Annotated[
        str | None, typer.Argument(metavar="V2", help="A second version: the settings of V1 against those of V2")
    ] = None,
    stack: StackOpt = None,
) -> None:
    """What changed: the last change (no version), one change (V1), or between two versions (V1 V2)."""
    from erpsync.state.settings import diff

    first = _version_arg(v1) if v1 is not None else None
    second = _version_arg(v2) if v2 is not None else None
    with _store(stack) as store:
        if first is None or second is None:
            v = store.latest() if first is None else store.get(first)
            how = f"rollback to version {v.rolled_back_to}" if v.action == "rollback" else v.action
            title = f"version {v.version}, {v.at[:19].replace('T', ' ')} UTC by {v.actor} ({how}): before -> after"
            changes = v.changes()
        else:
            a, b = store.get(first), store.get(second)
            title = f"settings of version {first} -> settings of version {second}"
            changes = diff(a.after, b.after)
    typer.echo(title)
    _print_changes(changes)


@settings_app.command("rollback")
def settings_rollback(
    version: Annotated[str, typer.Argument(metavar="VERSION", help="The version whose settings to put back in force")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
    stack: StackOpt = None,
) -> None:
    """Put the settings of an earlier version back in force, as a new version that records it."""
    from erpsync.model.base import ValidationError
    from erpsync.state.settings import diff

    number = _version_arg(version)
    with _store(stack) as store:
        from erpsync.runtime.lambda_app import ConfigurationError, check_settings  # once the target is set

        wanted = store.get(number)
        head, doc = store.head()
        changes = diff(doc, wanted.after)
        if not changes:
            typer.echo(f"nothing to do: the settings in force (version {head}) are those of version {number}")
            return
        typer.echo(f"rolling back from version {head} to the settings of version {number}:")
        _print_changes(changes)
        if not yes and not typer.confirm("Roll back?", default=False):
            typer.echo("nothing changed")
            raise typer.Exit(1)
        try:
            saved = store.rollback(number, actor=_actor(stack), check=check_settings)
        except (ValidationError, ConfigurationError) as exc:
            _fail(f"settings not rolled back: {_one_line(exc)}", 2)
    if saved is None:
        typer.echo(f"nothing to do: the settings in force are those of version {number}")
        return
    typer.echo(f"settings version {saved.version} saved by {saved.actor}: rollback to version {number}")
    _pickup(saved.changes())
