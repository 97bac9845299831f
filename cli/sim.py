"""`erpsync sim`: one simulator alone, in the foreground, e.g. for `erpsync local up --connect`."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Annotated, NoReturn

import typer

SYSTEMS = (
    "magento",
    "acumatica",
    "shopify",
    "quickbooks",
)  # sandbox.local.stack.SIMS, without importing the stack for --help


def _complete(incomplete: str) -> list[str]:
    return [s for s in SYSTEMS if s.startswith(incomplete)]


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def sim(
    system: Annotated[str, typer.Argument(help="magento or acumatica", autocompletion=_complete)],
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: any free one)")] = 0,
    seed: Annotated[bool, typer.Option("--seed", help="Load the data `erpsync local up` seeds it with")] = False,
) -> None:
    """Run one simulator alone on 127.0.0.1, print its URL and credentials; Ctrl-C stops it."""
    from sandbox.local.stack import SIMS, default_seed, seed_sim, sim_credentials, start_sim

    if system not in SIMS:
        _fail(f"no simulator {system!r} (simulators: {', '.join(SIMS)})", 2)
    try:
        server = start_sim(system, port=port)
    except (OSError, OverflowError) as exc:
        _fail(f"cannot listen on 127.0.0.1:{port}: {getattr(exc, 'strerror', None) or exc}", 1)
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        typer.echo(f"{system} sim: {server.url}")
        for key, value in sim_credentials(system, server.url).items():
            if value:
                typer.echo(f"  {key:<9} {value}")
        typer.echo(f"  control   {server.url}/_sim/ (requests, reset, seed, faults)")
        if seed:
            created = seed_sim(system, server.url, default_seed()[system])
            typer.echo("seeded: " + ", ".join(f"{len(v)} {k}" for k, v in created.items() if isinstance(v, list) and v))
        store = {"shopify": "--store shopify ", "quickbooks": "--erp quickbooks "}.get(system, "")
        typer.echo(f"use it: erpsync local up {store}--connect {system}={server.url}")
        typer.echo("Ctrl-C stops it.")
        while not done.wait(0.2):
            pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    typer.echo("stopped")
