"""Shared fixtures: the tables and queues of template.yaml, on a moto server on loopback."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")


def _clear_clients() -> None:
    from erpsync.runtime import queues, report
    from erpsync.state import dynamo

    dynamo.client.cache_clear()
    queues.client.cache_clear()
    queues.dlq_url.cache_clear()
    report.sns.cache_clear()


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    from sandbox.local.aws import MotoServer

    server = MotoServer()
    endpoint = server.start()
    yield endpoint
    server.stop()


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A fresh copy of every table and queue of template.yaml; logical id -> name / URL."""
    from sandbox.local.aws import MotoServer, provision
    from sandbox.local.template import load_template

    server = MotoServer(port=int(moto_endpoint.rsplit(":", 1)[1]))
    server.reset()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    _clear_clients()
    made = provision(load_template("template.yaml", stack_name="unit", aws_endpoint=moto_endpoint), moto_endpoint)
    yield {"tables": made.tables, "queues": made.queues, "dlqs": made.dlqs, "topics": made.topics}
    _clear_clients()


@pytest.fixture
def bindings_table(aws: dict[str, Any]) -> str:
    return str(aws["tables"]["BindingsTable"])


@pytest.fixture
def synclog_table(aws: dict[str, Any]) -> str:
    return str(aws["tables"]["SyncLogTable"])
