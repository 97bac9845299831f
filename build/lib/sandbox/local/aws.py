"""The local AWS: a moto server on a loopback port with the template's tables, queues and secrets.

``MotoServer`` serves moto (port 0 picks a free port) with DynamoDB requests serialised, as
DynamoDB's conditional writes are atomic and moto's are not (``sandbox/local/moto_server.py``).
``provision`` creates the tables (key schema, GSIs, TTL), queues (DLQs first, then sources
with their RedrivePolicy) and SNS topics of a resolved template. Moto keeps its state per process, so
``start()`` resets it: two stacks started one after the other in one process (a test session) do
not see each other's data; stacks that overlap in time share it and need different stack names.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.local.net import wait_port_closed
from sandbox.local.template import StackTemplate

log = logging.getLogger("erpsync.local.aws")

CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


_live: set[int] = set()
"""ids of the MotoServers running in this process (they share moto's global state)."""


class MotoServer:
    """moto in a thread (or with ``own_process``, a child process), serving every AWS service on
    ``http://<host>:<port>``.

    moto's backends are global to the process: two servers running at once see the same
    resources, so two stacks that overlap in time need different ``stack_name``s. The state is
    reset when a server starts while no other one runs.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, own_process: bool = False) -> None:
        self.host, self.port = host, port
        self.own_process = own_process
        """Run moto in a child process (its own interpreter and GIL: a second core for load tests)."""
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> str:
        if self.own_process:
            return self._start_process()
        from sandbox.local.moto_server import make

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = make(self.host, self.port)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto", daemon=True)
        self._thread.start()
        if not _live:
            self.reset()
        _live.add(id(self))
        return self.endpoint

    def _start_process(self, timeout: float = 30.0) -> str:
        if not self.port:
            with socket.socket() as probe:
                probe.bind((self.host, 0))
                self.port = int(probe.getsockname()[1])
        cmd = [sys.executable, "-m", "sandbox.local.moto_server", "-H", self.host, "-p", str(self.port)]
        root = str(Path(__file__).resolve().parents[2])  # sandbox/ importable from any cwd
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        self._process = subprocess.Popen(  # noqa: S603
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent, env=env
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.reset()
                return self.endpoint
            except OSError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"moto did not start on {self.endpoint}") from None
                time.sleep(0.1)

    def reset(self) -> None:
        """Forget every resource (moto's state is global to the process)."""
        req = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")  # noqa: S310 - loopback
        with urllib.request.urlopen(req, timeout=10) as res:  # noqa: S310 - our own loopback server
            res.read()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving; return once the serving thread (or process) has ended and the port refuses
        connections (``server_close()`` also waits for the request handler threads). Safe to call twice."""
        _live.discard(id(self))
        stopped = False
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout)
            self._process = None
            stopped = True
        if self._server is not None:
            self._server.shutdown()  # serve_forever's loop has ended
            self._server.server_close()  # the listening socket closed, the handler threads joined
            self._server = None
            stopped = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("the moto thread did not exit within %.0fs", timeout)
            self._thread = None
        if stopped:
            wait_port_closed(self.host, self.port)


def _die_with_parent() -> None:
    """In a child process on Linux: get SIGTERM when the parent dies (a killed test leaves no moto)."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def client(service: str, endpoint: str, region: str = "us-east-1") -> Any:
    """A boto3 client on the local endpoint, whatever the process environment says."""
    import boto3

    return boto3.session.Session(region_name=region, **CREDENTIALS).client(service, endpoint_url=endpoint)


@dataclass
class Provisioned:
    """What ``provision`` created: logical id -> physical name / URL / ARN."""

    tables: dict[str, str] = field(default_factory=dict)
    table_arns: dict[str, str] = field(default_factory=dict)
    queues: dict[str, str] = field(default_factory=dict)
    """Every queue, source and DLQ, logical id -> URL."""
    queue_arns: dict[str, str] = field(default_factory=dict)
    dlqs: dict[str, str] = field(default_factory=dict)
    """The dead-letter queues only, logical id -> URL."""
    secrets: dict[str, str] = field(default_factory=dict)
    """Secret name -> ARN."""
    topics: dict[str, str] = field(default_factory=dict)
    """SNS topics, logical id -> ARN."""


def provision(st: StackTemplate, endpoint: str) -> Provisioned:
    """Create the template's tables and queues in moto at ``endpoint``, fresh: a table or queue of
    the same name left by an earlier stack in this process (moto's state is per process, and is not
    reset while another stack's moto serves it) is dropped first, so no stack starts with another's
    bindings or messages."""
    out = Provisioned()
    ddb = client("dynamodb", endpoint, st.region)
    sqs = client("sqs", endpoint, st.region)
    for table in st.tables.values():
        with contextlib.suppress(ddb.exceptions.ResourceNotFoundException):
            ddb.delete_table(TableName=table.name)
    for queue in st.queues.values():
        with contextlib.suppress(sqs.exceptions.QueueDoesNotExist):
            sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=queue.name)["QueueUrl"])
    for lid, table in st.tables.items():
        desc = ddb.create_table(**table.create_table_kwargs())["TableDescription"]
        if table.ttl_attribute:
            ddb.update_time_to_live(
                TableName=table.name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute},
            )
        out.tables[lid] = table.name
        out.table_arns[lid] = desc["TableArn"]
    dlqs = st.dead_letter_queues
    # A RedrivePolicy must name an existing queue: dead-letter queues first.
    for lid, queue in sorted(st.queues.items(), key=lambda kv: kv[0] not in dlqs):
        url = sqs.create_queue(QueueName=queue.name, Attributes=queue.attributes)["QueueUrl"]
        if url != queue.url:
            raise RuntimeError(f"moto named {lid} {url}, the template resolved it to {queue.url}")
        out.queues[lid] = url
        out.queue_arns[lid] = queue.arn
        if lid in dlqs:
            out.dlqs[lid] = url
    if st.topics:
        sns = client("sns", endpoint, st.region)
        for lid, topic in st.topics.items():
            sns.delete_topic(TopicArn=topic.arn)  # and its subscriptions: a fresh topic, as above
            arn = sns.create_topic(Name=topic.name)["TopicArn"]
            if arn != topic.arn:
                raise RuntimeError(f"moto named {lid} {arn}, the template resolved it to {topic.arn}")
            out.topics[lid] = arn
    return out


def create_secrets(
    endpoint: str, secrets: Mapping[str, Mapping[str, Any] | str], region: str = "us-east-1"
) -> dict[str, str]:
    """Create (or overwrite) Secrets Manager secrets, name -> JSON document; name -> ARN."""
    sm = client("secretsmanager", endpoint, region)
    arns: dict[str, str] = {}
    for name, value in secrets.items():
        text = value if isinstance(value, str) else json.dumps(value)
        try:
            arns[name] = sm.create_secret(Name=name, SecretString=text)["ARN"]
        except sm.exceptions.ResourceExistsException:
            arns[name] = sm.put_secret_value(SecretId=name, SecretString=text)["ARN"]
    return arns
