"""The worker side of a flow: sync each queued notice and decide what happens on failure.

- success (synced, skipped, filtered): the message is deleted;
- ``PermanentError``: parked in the failed queue at once with the reason, then deleted;
- ``RetryableError``: left on the queue with exponential backoff and jitter (``Retry-After``
  honoured) until ``max_attempts``; after that it is parked in the failed queue too.
Every attempt writes one sync-log row.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from erpsync.flows.base import Flow
from erpsync.model import ChangeNotice
from erpsync.runtime import queues
from erpsync.runtime.errors import PermanentError, RetryableError, SyncError
from erpsync.state.synclog import LogRow, SyncLog

log = logging.getLogger("erpsync.worker")

BASE_DELAY_S = 10
MAX_DELAY_S = 900


@dataclass
class Outcome:
    ok: bool
    outcome: str
    message: str = ""


def backoff_seconds(attempt: int, retry_after: float | None = None) -> int:
    """Exponential backoff with full jitter, never shorter than the remote's Retry-After."""
    ceiling = min(MAX_DELAY_S, BASE_DELAY_S * 2 ** max(0, attempt - 1))
    wait = random.uniform(ceiling / 2, ceiling)
    return int(max(wait, retry_after or 0))


class Worker:
    def __init__(self, flow: Flow, synclog: SyncLog, queue_url: str, max_attempts: int) -> None:
        self.flow, self.synclog, self.queue_url, self.max_attempts = flow, synclog, queue_url, max_attempts

    def handle_batch(self, event: dict[str, Any]) -> dict[str, Any]:
        """An SQS event -> the partial batch response (ReportBatchItemFailures)."""
        failures = []
        for record in event.get("Records", []):
            if not self.handle_record(record).ok:
                failures.append({"itemIdentifier": record["messageId"]})
        return {"batchItemFailures": failures}

    def handle_record(self, record: dict[str, Any]) -> Outcome:
        attrs = record.get("attributes", {})
        attempt = int(attrs.get("ApproximateReceiveCount", 1))
        started = time.monotonic()
        try:
            notice = ChangeNotice.model_validate_json(record["body"])
        except ValidationError as exc:
            self._park(record, None, "bad_message", f"not a change notice: {exc.errors()[0]['msg']}", attempt)
            return Outcome(True, "failed", "bad message")
        try:
            result = self.flow.sync(notice)
        except PermanentError as exc:
            return self._failed(record, notice, exc, attempt, started)
        except RetryableError as exc:
            if attempt >= self.max_attempts:
                return self._failed(record, notice, exc, attempt, started)
            return self._retry(record, notice, exc, attempt, started)
        except Exception as exc:
            log.exception("unexpected error syncing %s %s", notice.entity, notice.id)
            err = RetryableError(f"unexpected {type(exc).__name__}: {exc}", error_type="unexpected")
            if attempt >= self.max_attempts:
                return self._failed(record, notice, err, attempt, started)
            return self._retry(record, notice, err, attempt, started)
        self._log(notice, result.outcome, attempt, started, target_id=result.target_id, message=result.message)
        return Outcome(True, result.outcome, result.message)

    def _retry(
        self, record: dict[str, Any], notice: ChangeNotice, exc: RetryableError, attempt: int, t0: float
    ) -> Outcome:
        wait = backoff_seconds(attempt, exc.retry_after)
        self._log(notice, "retrying", attempt, t0, error=exc, message=f"{exc} (next try in {wait}s)")
        try:
            queues.delay(self.queue_url, record["receiptHandle"], wait)
        except Exception:  # the visibility timeout still brings it back
            log.warning("could not delay message %s", record.get("messageId"))
        return Outcome(False, "retrying", str(exc))

    def _failed(self, record: dict[str, Any], notice: ChangeNotice, exc: SyncError, attempt: int, t0: float) -> Outcome:
        self._log(notice, "failed", attempt, t0, error=exc, message=str(exc))
        self._park(record, notice, exc.error_type, str(exc), attempt)
        return Outcome(True, "failed", str(exc))

    def _park(
        self, record: dict[str, Any], notice: ChangeNotice | None, error_type: str, reason: str, attempt: int
    ) -> None:
        first = record.get("attributes", {}).get("ApproximateFirstReceiveTimestamp")
        first_at = datetime.fromtimestamp(int(first) / 1000, UTC).isoformat() if first else ""
        queues.park_failed(
            self.queue_url,
            record["body"],
            {
                "flow": self.flow.name,
                "entity": notice.entity if notice else "",
                "source": notice.source if notice else "",
                "id": notice.id if notice else "",
                "error_type": error_type,
                "reason": reason[:1000],
                "attempts": str(attempt),
                "first_attempt_at": first_at,
                "last_attempt_at": datetime.now(UTC).isoformat(),
            },
        )

    def _log(
        self,
        notice: ChangeNotice,
        outcome: str,
        attempt: int,
        t0: float,
        *,
        target_id: str = "",
        message: str = "",
        error: SyncError | None = None,
    ) -> None:
        row = LogRow(
            flow=self.flow.name,
            source_system=notice.source,
            source_id=notice.id,
            outcome=outcome,
            target_system=self.flow.target,
            target_id=target_id,
            attempt=attempt,
            duration_ms=int((time.monotonic() - t0) * 1000),
            error_type=error.error_type if error else "",
            message=message[:2000],
        )
        log.info("%s %s %s: %s", self.flow.name, notice.id, outcome, message)
        self.synclog.write(row)
