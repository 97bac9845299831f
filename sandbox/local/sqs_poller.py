"""What Lambda's SQS event source mapping does, for one ``SQS`` event of a template function.

A thread long-polls the queue (``MaxNumberOfMessages`` up to ``BatchSize``, every system and
message attribute), builds the SQS event Lambda would send (``Records`` with ``messageId``,
``receiptHandle``, ``body``, ``attributes``, ``messageAttributes``, ``md5OfBody``,
``eventSource``, ``eventSourceARN``, ``awsRegion``), invokes the function and deletes what
succeeded: with ``ReportBatchItemFailures`` every record not named in ``batchItemFailures``,
without it the whole batch or nothing. A handler that raises, or a malformed partial batch
response, fails the whole batch. Failed messages are left alone: they come back after their
visibility timeout (or the delay the handler set with ChangeMessageVisibility).

Redrive: moto 5.2.5 moves a message to the dead-letter queue by itself when a receive finds it
visible with ``ApproximateReceiveCount >= maxReceiveCount`` (as SQS does), so the failure path
works as on AWS. Should a message ever arrive with a receive count above ``maxReceiveCount``
(another SQS emulator), the poller moves it to the DLQ itself instead of invoking the function.
``MaximumBatchingWindowInSeconds`` is not emulated (a batch is what one receive returns) and
each event source runs one batch at a time (``MaximumConcurrency`` 1).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sandbox.local.aws import client
from sandbox.local.lambda_runtime import LocalFunction
from sandbox.local.template import QueueSpec, SqsEvent

log = logging.getLogger("erpsync.local.sqs")

MAX_RECEIVE = 10


@dataclass
class BatchResult:
    """What one poll did."""

    received: int = 0
    succeeded: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    redriven: list[str] = field(default_factory=list)
    error: str | None = None


def lambda_message_attributes(attrs: dict[str, Any]) -> dict[str, Any]:
    """SQS API message attributes -> the lowerCamel shape of the Lambda event."""
    out: dict[str, Any] = {}
    for name, a in attrs.items():
        binary = a.get("BinaryValue")
        out[name] = {
            "stringValue": a.get("StringValue"),
            "binaryValue": base64.b64encode(binary).decode() if isinstance(binary, bytes) else binary,
            "stringListValues": a.get("StringListValues", []),
            "binaryListValues": a.get("BinaryListValues", []),
            "dataType": a.get("DataType"),
        }
    return out


def sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One ``Records`` entry of the Lambda SQS event."""
    record = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": lambda_message_attributes(message.get("MessageAttributes", {})),
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(message["Body"].encode()).hexdigest(),  # noqa: S324
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


class SqsPoller:
    """One SQS event source mapping: a thread that polls ``queue`` and invokes ``function``."""

    def __init__(
        self,
        function: LocalFunction,
        event: SqsEvent,
        queue: QueueSpec,
        endpoint: str,
        *,
        dlq: QueueSpec | None = None,
        region: str = "us-east-1",
        wait_time_s: int = 1,
    ) -> None:
        self.function, self.event, self.queue, self.dlq = function, event, queue, dlq
        self.region, self.wait_time_s = region, wait_time_s
        self.sqs = client("sqs", endpoint, region)
        self.batches = 0
        self.results: list[BatchResult] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def name(self) -> str:
        return f"sqs-{self.function.spec.logical_id}-{self.event.name}"

    # ------------------------------------------------------------------ one batch

    def receive(self, wait_time_s: int) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while len(messages) < self.event.batch_size:
            res = self.sqs.receive_message(
                QueueUrl=self.queue.url,
                MaxNumberOfMessages=min(MAX_RECEIVE, self.event.batch_size - len(messages)),
                WaitTimeSeconds=wait_time_s if not messages else 0,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            got = res.get("Messages", [])
            messages.extend(got)
            if len(got) < MAX_RECEIVE:
                break
        return messages

    def poll_once(self, wait_time_s: int | None = None) -> BatchResult:
        """Receive one batch, invoke the function, delete what succeeded."""
        result = BatchResult()
        messages = self.receive(self.wait_time_s if wait_time_s is None else wait_time_s)
        result.received = len(messages)
        messages = self._redrive_overdue(messages, result)
        if not messages:
            return result
        records = [sqs_record(m, self.queue.arn, self.region) for m in messages]
        ids = [r["messageId"] for r in records]
        try:
            response = self.function.invoke({"Records": records})
        except Exception as exc:
            result.failed, result.error = ids, f"{type(exc).__name__}: {exc}"
            self._record(result)
            return result
        failed = self._failed_ids(response, set(ids), result)
        result.failed = [i for i in ids if i in failed]
        result.succeeded = [i for i in ids if i not in failed]
        handles = {r["messageId"]: r["receiptHandle"] for r in records}
        self._delete([handles[i] for i in result.succeeded])
        self._record(result)
        return result

    def _failed_ids(self, response: Any, ids: set[str], result: BatchResult) -> set[str]:
        if not self.event.report_batch_item_failures:
            return set()
        if response is None or response == {}:
            return set()
        failures = response.get("batchItemFailures") if isinstance(response, dict) else None
        if failures is None:
            return set()
        if not isinstance(failures, list):
            result.error = "batchItemFailures is not a list: the whole batch failed"
            return ids
        named: set[str] = set()
        for item in failures:
            ident = item.get("itemIdentifier") if isinstance(item, dict) else None
            if not ident or ident not in ids:
                # Lambda treats an empty or unknown itemIdentifier as a failure of the whole batch.
                result.error = f"bad itemIdentifier {ident!r}: the whole batch failed"
                return ids
            named.add(ident)
        return named

    def _delete(self, handles: list[str]) -> None:
        for start in range(0, len(handles), MAX_RECEIVE):
            chunk = handles[start : start + MAX_RECEIVE]
            self.sqs.delete_message_batch(
                QueueUrl=self.queue.url,
                Entries=[{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(chunk)],
            )

    def _redrive_overdue(self, messages: list[dict[str, Any]], result: BatchResult) -> list[dict[str, Any]]:
        """Move messages received more than maxReceiveCount times to the DLQ (moto does it already)."""
        limit = self.queue.max_receive_count
        if self.dlq is None or limit is None:
            return messages
        keep = []
        for m in messages:
            if int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1")) <= limit:
                keep.append(m)
                continue
            kwargs: dict[str, Any] = {"QueueUrl": self.dlq.url, "MessageBody": m["Body"]}
            if m.get("MessageAttributes"):
                kwargs["MessageAttributes"] = m["MessageAttributes"]
            self.sqs.send_message(**kwargs)
            self.sqs.delete_message(QueueUrl=self.queue.url, ReceiptHandle=m["ReceiptHandle"])
            result.redriven.append(m["MessageId"])
            log.info("%s: message %s moved to %s", self.name, m["MessageId"], self.dlq.logical_id)
        return keep

    def _record(self, result: BatchResult) -> None:
        self.batches += 1
        self.results = [*self.results[-99:], result]
        if result.failed:
            log.info(
                "%s: %d of %d failed%s",
                self.name,
                len(result.failed),
                result.received,
                f" ({result.error})" if result.error else "",
            )

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:
                if self._stop.is_set():
                    break
                log.exception("%s: poll failed", self.name)
                self._stop.wait(1.0)

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def signal_stop(self) -> None:
        self._stop.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("%s did not stop within %.0fs", self.name, timeout)
            self._thread = None
        self.sqs.close()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait_idle(self, timeout: float = 10.0, *, delayed: bool = False) -> bool:
        """Wait until the queue shows no visible or in-flight messages (with ``delayed``, none waiting
        out a retry delay either)."""
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        if delayed:
            names.append("ApproximateNumberOfMessagesDelayed")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            attrs = self.sqs.get_queue_attributes(QueueUrl=self.queue.url, AttributeNames=names)["Attributes"]
            if sum(int(attrs.get(name, 0)) for name in names) == 0:
                return True
            time.sleep(0.1)
        return False
