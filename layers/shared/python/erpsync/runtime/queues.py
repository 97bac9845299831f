"""SQS: enqueue change notices, delay retries, and park failed records in the failed queue (DLQ)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any, Protocol

BATCH = 10
MAX_BATCH_BYTES = 250_000
"""SQS takes at most 256 KiB per message and per batch; this leaves room for attributes."""


class Notice(Protocol):
    """What ``send_notices`` sends: an ``erpsync.model.ChangeNotice``, or the webhook ingress's
    model-free twin of one (``ingress.WebhookNotice``, serialised the same)."""

    source: str
    entity: str
    id: str

    def model_dump_json(self, *, exclude_none: bool = False) -> str: ...

    def model_copy(self, *, update: Mapping[str, Any] | None = None) -> Notice: ...


def queue_url(flow: str) -> str:
    """The URL of a flow's queue: ``QUEUE_URL_PREFIX`` + name (the template sets it; queues are named
    ``<stack>-<flow>``), or ``<FLOW>_QUEUE_URL`` where a test or script set one."""
    own = os.environ.get(f"{flow.upper().replace('-', '_')}_QUEUE_URL")
    if own:
        return own
    prefix = os.environ.get("QUEUE_URL_PREFIX")
    if not prefix:
        raise KeyError(f"no queue for flow {flow!r}: set QUEUE_URL_PREFIX (the template does)")
    return f"{prefix}{flow}"


@lru_cache(maxsize=1)
def client() -> Any:
    import boto3

    return boto3.client("sqs")


def send_notices(queue_url: str, notices: Iterable[Notice], correlate: Callable[[Notice], str] | None = None) -> int:
    """Enqueue notices in batches (at most 10 and 250 KB each); raises if any could not be sent (so
    cursors stay put). ``correlate`` gives each notice its correlation id (``logs.Correlation``),
    carried in the message body beside the notice (the worker's ``Envelope`` reads it)."""
    batch: list[dict[str, Any]] = []
    size = sent = 0
    for notice in notices:
        body = notice.model_dump_json(exclude_none=True)
        if len(body.encode()) > MAX_BATCH_BYTES:  # a snapshot too big for SQS: the worker reads the record
            body = notice.model_copy(update={"snapshot": None, "read_at": None}).model_dump_json(exclude_none=True)
        if correlate is not None:
            body = f"{body[:-1]},{json.dumps('correlation_id')}:{json.dumps(correlate(notice))}}}"
        body_bytes = len(body.encode())
        if batch and size + body_bytes > MAX_BATCH_BYTES:
            sent += _flush(queue_url, batch)
            batch, size = [], 0
        batch.append({"Id": str(len(batch)), "MessageBody": body})
        size += body_bytes
        if len(batch) == BATCH:
            sent += _flush(queue_url, batch)
            batch, size = [], 0
    if batch:
        sent += _flush(queue_url, batch)
    return sent


def _flush(queue_url: str, batch: list[dict[str, Any]]) -> int:
    res = client().send_message_batch(QueueUrl=queue_url, Entries=batch)
    failed = res.get("Failed", [])
    if failed:
        raise RuntimeError(f"SQS refused {len(failed)} of {len(batch)} notices: {failed[0].get('Message')}")
    return len(batch)


@lru_cache(maxsize=16)
def dlq_url(queue_url: str) -> str:
    """The failed queue of ``queue_url``, read once from its redrive policy."""
    attrs = client().get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"])["Attributes"]
    arn = json.loads(attrs["RedrivePolicy"])["deadLetterTargetArn"]
    account, name = arn.split(":")[4:6]
    return str(client().get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"])


def park_failed(queue_url: str, body: str, meta: dict[str, str]) -> None:
    """Send a record to the failed queue with why it failed (as message attributes)."""
    client().send_message(
        QueueUrl=dlq_url(queue_url),
        MessageBody=body,
        MessageAttributes={k: {"DataType": "String", "StringValue": v or "-"} for k, v in meta.items()},
    )


def receive(
    queue_url: str, max_messages: int = 10, wait_s: int = 0, visibility_s: int | None = None
) -> list[dict[str, Any]]:
    """Messages shaped like the Records of an SQS Lambda event (for draining by hand)."""
    extra = {"VisibilityTimeout": visibility_s} if visibility_s is not None else {}
    res = client().receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=max_messages,
        WaitTimeSeconds=wait_s,
        **extra,
        MessageSystemAttributeNames=["All"],
        MessageAttributeNames=["All"],
    )
    return [
        {
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": m.get("Attributes", {}),
            "messageAttributes": m.get("MessageAttributes", {}),
        }
        for m in res.get("Messages", [])
    ]


def delete(queue_url: str, receipt_handle: str) -> None:
    client().delete_message(QueueUrl=queue_url, ReceiptHandle=receipt_handle)


def requeue(queue_url: str, body: str, delay_s: int) -> None:
    """Send a notice back to its queue, delivered after ``delay_s`` (at most 900 s)."""
    client().send_message(QueueUrl=queue_url, MessageBody=body, DelaySeconds=max(0, min(900, delay_s)))


def release(queue_url: str, receipt_handle: str) -> None:
    """Make a received message visible again at once."""
    client().change_message_visibility(QueueUrl=queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=0)
