"""`python -m cli` is the `erpsync` command."""

from cli.main import app

app(prog_name="erpsync")
