"""`erpsync console`: the operator console, a web page served on loopback (``cli.console_app``)."""

from __future__ import annotations

import socket
from typing import Annotated

import typer

from cli import target


def console(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: any free one)")] = 8765,
    stack: Annotated[
        str | None, typer.Option("--stack", help="A deployed CloudFormation stack (default: local)")
    ] = None,
) -> None:
    """Serve the operator console on http://127.0.0.1:PORT (loopback only): overview, failures desk,
    one record's history, settings. With --stack, listings and actions go through the stack's IAM
    operator API, signed with your AWS credentials. Ctrl-C stops it."""
    info = target.choose(stack)
    from cli.console_app import create_app
    from cli.console_app.data import LocalOps, Ops, StackOps

    ops: Ops = LocalOps()
    if stack:
        from cli.console_app.operator_client import OperatorClient

        api = info.get("outputs", {}).get("ApiUrl")
        if not api:
            raise typer.BadParameter(
                f"stack {stack} has no ApiUrl output: is it an erpsync stack?", param_hint="--stack"
            )
        ops = StackOps(stack, OperatorClient(api))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        raise typer.BadParameter(
            f"cannot listen on 127.0.0.1:{port} ({exc.strerror}): try another", param_hint="--port"
        ) from exc
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(create_app(ops), log_level="warning", access_log=False))
    typer.echo(f"erpsync console for the {ops.where}: http://127.0.0.1:{sock.getsockname()[1]}/ (Ctrl-C stops it)")
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
