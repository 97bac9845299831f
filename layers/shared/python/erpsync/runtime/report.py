"""The daily report: what every flow did in the last 24 hours and what waits for a person, as plain
text published to the alerts topic (``ALERTS_TOPIC_ARN``: an email to whoever subscribed with the
template's ``AlertEmail``).

- **Synced, failed, retried per flow** are counted from the sync log (one row per attempt) through
  its ``by-outcome`` index, page by page from the start of the window, with failures and retries
  broken down by error type. "Retried" counts attempts sent back to the queue and the records they
  were for (a record waiting out an outage is retried many times).
- **Open failures** are the records open on the failures desk (``state/failures.py``; each flow's
  failed queue, the backstop for crashed workers, folded in first): how many per flow, and the
  oldest one's id, error type, reason and first failure.

A day with nothing to tell still sends a report that says so: silence would look the same as a
broken report. ``handle`` is the report function's entry point (``functions/report/app.py``); the
event may set ``hours`` (default 24) for another window.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from erpsync.flows.catalog import FLOWS
from erpsync.masking import mask
from erpsync.runtime import queues
from erpsync.state.failures import FailuresDesk
from erpsync.state.synclog import SyncLog

log = logging.getLogger("erpsync.report")

COUNTED = ("synced", "failed", "retrying")
MAX_MESSAGE_CHARS = 200_000
"""SNS takes 256 KB per message."""


@dataclass
class OpenFailure:
    """A record open on the failures desk."""

    flow: str
    id: str
    error_type: str
    reason: str
    first_attempt_at: str


@dataclass
class FlowDay:
    """What one flow did in the window, and what waits on the failures desk now."""

    flow: str
    synced: int = 0
    failed: int = 0
    retried: int = 0
    retried_records: set[str] = field(default_factory=set)
    failed_by: Counter[str] = field(default_factory=Counter)
    retried_by: Counter[str] = field(default_factory=Counter)
    open_failures: int = 0
    oldest: OpenFailure | None = None
    queue_error: str = ""
    """Why the open failures could not be read (they are unknown)."""

    @property
    def quiet(self) -> bool:
        return not (self.synced or self.failed or self.retried or self.open_failures or self.queue_error)


@dataclass
class Report:
    stack: str
    since: datetime
    until: datetime
    flows: list[FlowDay]
    books: str = ""
    """Whether the store's and the ERP's books match for the orders of the period (``reconcile``)."""

    @property
    def quiet(self) -> bool:
        return all(f.quiet for f in self.flows)

    def total(self, name: str) -> int:
        return sum(int(getattr(f, name)) for f in self.flows)

    @property
    def oldest(self) -> OpenFailure | None:
        waiting = [f.oldest for f in self.flows if f.oldest and _parse(f.oldest.first_attempt_at)]
        return min(waiting, key=lambda o: _parse(o.first_attempt_at) or self.until) if waiting else None

    def subject(self) -> str:
        """One line for the email's subject (SNS: under 100 characters, no line breaks)."""
        head = f"{self.stack} daily report: "
        if self.quiet:
            return (head + "nothing synced, nothing failed")[:99]
        parts = [f"{self.total('synced')} synced", f"{self.total('failed')} failed"]
        open_ = self.total("open_failures")
        parts.append(f"{open_} open failure{'s' if open_ != 1 else ''}" if open_ else "no open failures")
        return (head + ", ".join(parts))[:99]

    def text(self, now: datetime | None = None) -> str:
        now = now or self.until
        hours = round((self.until - self.since).total_seconds() / 3600)
        lines = [
            f"erpsync daily report, stack {self.stack}",
            f"{hours} hours from {_when(self.since)} to {_when(self.until)}",
            "",
        ]
        if self.quiet:
            lines += [
                f"Nothing to report: no record was synced, failed or retried in the last {hours} hours,",
                "and no failure is open.",
                "",
                "If the store or the ERP did change records in that time, check that the webhooks",
                "reach the stack and the schedules run (the stack's CloudWatch dashboard and alarms).",
            ]
            if self.books:
                lines += ["", f"Books: {self.books}"]
            return "\n".join(lines) + "\n"
        lines += _table(self.flows)
        if self.books:
            lines += ["", f"Books: {self.books}"]
        failed = [(f.flow, f.failed_by) for f in self.flows if f.failed_by]
        if failed:
            lines += ["", "Failed (onto the failures desk), by error type:"]
            lines += [f"  {flow}: {_counts(by)}" for flow, by in failed]
        retried = [(f.flow, f.retried_by) for f in self.flows if f.retried_by]
        if retried:
            lines += ["", "Retried (sent back to the queue to try again), by error type:"]
            lines += [f"  {flow}: {_counts(by)}" for flow, by in retried]
        lines += [""]
        unread = [f for f in self.flows if f.queue_error]
        for f in unread:
            lines.append(f"Could not read the open failures of {f.flow}: {f.queue_error}")
        waiting = [f for f in self.flows if f.open_failures]
        if not waiting and not unread:
            lines.append("Open failures: none.")
        elif not waiting:
            lines.append("Open failures: none in the flows that could be read.")
        else:
            lines.append("Open failures (records waiting for a person on the failures desk):")
            for f in waiting:
                line = f"  {f.flow}: {f.open_failures} waiting"
                if f.oldest:
                    o = f.oldest
                    line += f"; the oldest is {o.id or '(no id)'} ({o.error_type})"
                    if o.first_attempt_at:
                        line += f", first failed {_when(o.first_attempt_at)} ({_ago(o.first_attempt_at, now)} ago)"
                    if o.reason:
                        line += f": {o.reason[:200]}"
                lines.append(line)
            oldest = self.oldest
            if oldest and len(waiting) > 1:
                lines += [
                    "",
                    f"The oldest open failure: {oldest.flow} {oldest.id}, waiting since "
                    f"{_when(oldest.first_attempt_at)} ({_ago(oldest.first_attempt_at, now)}).",
                ]
            lines += [
                "",
                "What to do: `erpsync failed --flow <flow>` lists them and `erpsync failed show <id>` says why;",
                "fix the cause (a mapping, an item, the record itself), then `erpsync retry <flow>`,",
                "or `erpsync skip <flow> <id> --note ...` for one dealt with another way.",
            ]
        return "\n".join(lines) + "\n"


def _when(value: datetime | str) -> str:
    at = _parse(value) if isinstance(value, str) else value
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if at else str(value)


def _ago(value: str, now: datetime) -> str:
    at = _parse(value)
    if at is None:
        return "?"
    minutes = max(0, int((now - at).total_seconds() // 60))
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes // 60
    return f"{hours} h" if hours < 48 else f"{hours // 24} days"


def _parse(value: str) -> datetime | None:
    try:
        at = datetime.fromisoformat(value.split("#", 1)[0])
    except (TypeError, ValueError):
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _counts(by: Counter[str]) -> str:
    return ", ".join(f"{kind} {n}" for kind, n in by.most_common())


def _table(flows: list[FlowDay]) -> list[str]:
    width = max(len("all flows"), *(len(f.flow) for f in flows))
    head = f"{'flow':<{width}}  {'synced':>7}  {'failed':>7}  {'retried':>18}  {'open failures':>13}"
    rows = [head]
    for f in flows:
        n = len(f.retried_records)
        retried = f"{f.retried} ({n} record{'' if n == 1 else 's'})" if f.retried else "0"
        rows.append(f"{f.flow:<{width}}  {f.synced:>7}  {f.failed:>7}  {retried:>18}  {f.open_failures:>13}")
    total_retried = sum(f.retried for f in flows)
    rows.append(
        f"{'all flows':<{width}}  {sum(f.synced for f in flows):>7}  {sum(f.failed for f in flows):>7}"
        f"  {total_retried:>18}  {sum(f.open_failures for f in flows):>13}"
    )
    return rows


# --------------------------------------------------------------------------- gathering


def tally(synclog: SyncLog, since: datetime, flows: Iterable[str]) -> dict[str, FlowDay]:
    """Synced, failed and retried per flow since ``since``, from the sync log (the catalogue's flows
    first, in its order; a flow met only in the log is added after them)."""
    days = {name: FlowDay(name) for name in flows}
    start = since.astimezone(UTC).isoformat(timespec="milliseconds")
    for outcome in COUNTED:
        for row in synclog.since(outcome, start):
            flow = str(row.get("flow") or "?")
            day = days.setdefault(flow, FlowDay(flow))
            kind = str(row.get("error_type") or "unknown")
            if outcome == "synced":
                day.synced += 1
            elif outcome == "failed":
                day.failed += 1
                day.failed_by[kind] += 1
            else:
                day.retried += 1
                day.retried_by[kind] += 1
                day.retried_records.add(str(row.get("record", "")))
    return days


def gather(
    synclog: SyncLog,
    desk: FailuresDesk,
    queue_urls: Mapping[str, str],
    *,
    stack: str = "erpsync",
    hours: float = 24.0,
    now: datetime | None = None,
    flows: Iterable[str] | None = None,
) -> Report:
    """The report of the ``hours`` before ``now``; ``queue_urls`` maps a flow to its queue's URL (its
    failed queue is folded into the desk first)."""
    from erpsync.runtime.operator import fold_dlq

    until = now or datetime.now(UTC)
    since = until - timedelta(hours=hours)
    days = tally(synclog, since, flows if flows is not None else [f.name for f in FLOWS])
    for flow, url in queue_urls.items():
        day = days.setdefault(flow, FlowDay(flow))
        try:
            fold_dlq(url, flow, desk)
            rows = desk.open(flow=flow)
        except Exception as exc:  # the rest of the report is still worth sending
            log.exception("could not read the open failures of %s", flow)
            day.queue_error = f"{type(exc).__name__}: {exc}"[:200]
            continue
        day.open_failures = len(rows)
        if rows:  # waiting since its first attempt (a record may have retried for hours before it failed)
            first = min(rows, key=lambda f: f.first_attempt_at or f.first_failed_at)
            waiting_since = first.first_attempt_at or first.first_failed_at
            day.oldest = OpenFailure(first.flow, first.id, first.error_type, mask(first.reason), waiting_since)
    return Report(stack, since, until, list(days.values()))


# --------------------------------------------------------------------------- publishing


@lru_cache(maxsize=1)
def sns() -> Any:
    import boto3

    return boto3.client("sns")


def publish(report: Report, topic_arn: str) -> str:
    """Publish the report to the topic; its message id."""
    res = sns().publish(TopicArn=topic_arn, Subject=report.subject(), Message=report.text()[:MAX_MESSAGE_CHARS])
    return str(res.get("MessageId", ""))


def queue_urls(flows: Iterable[str] | None = None) -> dict[str, str]:
    """Each flow's queue URL."""
    return {name: queues.queue_url(name) for name in (flows or [f.name for f in FLOWS])}


def books(hours: float) -> str:
    """The reconciliation of the store orders of the last ``hours`` in one line (``erpsync reconcile``
    lists each difference), or why it could not be made: the rest of the report goes out anyway."""
    try:
        from erpsync.runtime.lambda_app import build
        from erpsync.runtime.reconcile import reconcile

        return reconcile(build("orders"), hours / 24).summary()
    except Exception as exc:
        log.exception("could not reconcile the orders of the last %s hours", hours)
        return f"could not be compared ({type(exc).__name__}: {exc})"[:300]


def handle(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """The report function: gather the report of the last ``hours`` (event, default 24) and publish it
    to ``ALERTS_TOPIC_ARN`` (without one, only return it)."""
    hours = float((event or {}).get("hours") or 24)
    report = gather(
        SyncLog(os.environ["SYNC_LOG_TABLE"]),
        FailuresDesk(os.environ["BINDINGS_TABLE"]),
        queue_urls(),
        stack=os.environ.get("STACK_NAME", "erpsync"),
        hours=hours,
    )
    report.books = books(hours)
    topic = os.environ.get("ALERTS_TOPIC_ARN", "")
    message_id = publish(report, topic) if topic else ""
    log.info(
        "daily report: %s%s",
        report.subject(),
        "" if topic else " (ALERTS_TOPIC_ARN is not set: not published)",
        extra={
            "synced": report.total("synced"),
            "failed": report.total("failed"),
            "retried": report.total("retried"),
            "open_failures": report.total("open_failures"),
        },
    )
    return {
        "subject": report.subject(),
        "message": report.text(),
        "published": bool(message_id),
        "message_id": message_id,
    }
