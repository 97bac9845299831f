"""The `erpsync` command for operators, against the local stack or a deployed stack."""
