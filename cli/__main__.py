"""`python -m cli` is the `erpsync` command."""

from cli.main import main

main()
