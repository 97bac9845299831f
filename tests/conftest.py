"""Shared fixtures: DynamoDB tables and SQS queues from template.yaml on moto (in-process)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    """moto in-process with every table and queue of template.yaml; their names and URLs."""
    from moto import mock_aws

    from erpsync.runtime import queues
    from erpsync.state import dynamo
    from sandbox.local import aws as local_aws
    from sandbox.local.template import load_template

    with mock_aws():
        dynamo.client.cache_clear()
        queues.client.cache_clear()
        queues.dlq_url.cache_clear()
        resources = local_aws.create_resources(load_template())
        yield resources
        dynamo.client.cache_clear()
        queues.client.cache_clear()
        queues.dlq_url.cache_clear()


@pytest.fixture
def bindings_table(aws: dict[str, Any]) -> str:
    return str(aws["tables"]["BindingsTable"])


@pytest.fixture
def synclog_table(aws: dict[str, Any]) -> str:
    return str(aws["tables"]["SyncLogTable"])
