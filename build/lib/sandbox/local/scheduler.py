"""Fire each ``Schedule`` event of the template at its function, the way EventBridge would.

``rate(5 minutes)`` fires every 300 s and ``cron(0/15 * * * ? *)`` at the next matching UTC
minute; ``speedup`` divides every wait (a speed-up of 60 turns minutes into seconds) and
``interval_override_s`` replaces it outright (the local stack polls every few seconds). A
schedule that fires once a day or less often (``DAILY_S``: the daily report) is neither sped up
nor overridden: it keeps its own time, as a report every few seconds would only be noise. The
event is the schedule's ``Input`` when it has one, otherwise EventBridge's "Scheduled Event".
An exception in the handler is logged and the schedule carries on.
"""

from __future__ import annotations

import calendar
import logging
import re
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.local.lambda_runtime import LocalFunction
from sandbox.local.template import ScheduleEvent

log = logging.getLogger("erpsync.local.schedule")

DAILY_S = 86400.0
"""A schedule this far apart or more keeps its own time locally (not sped up, not overridden)."""
RATE_UNITS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}
MONTHS = {m.upper(): i for i, m in enumerate(calendar.month_abbr) if m}
DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}


class ScheduleError(ValueError):
    """A schedule expression the local stack cannot read."""


def rate_seconds(expression: str) -> float | None:
    """``rate(5 minutes)`` -> 300.0; None when ``expression`` is not a rate."""
    m = re.fullmatch(r"\s*rate\(\s*(\d+)\s+([a-z]+)\s*\)\s*", expression)
    if not m:
        return None
    value, unit = int(m.group(1)), m.group(2)
    if unit not in RATE_UNITS or value < 1:
        raise ScheduleError(f"bad rate expression {expression!r}")
    return float(value * RATE_UNITS[unit])


def _field(text: str, low: int, high: int, names: dict[str, int] | None = None) -> set[int]:
    if text in ("*", "?"):
        return set(range(low, high + 1))
    values: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            step = int(step_text)
        if part in ("*", ""):
            start, end = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = _value(a, names), _value(b, names)
        else:
            start = _value(part, names)
            end = high if "/" in text else start
        if not (low <= start <= high and low <= end <= high):
            raise ScheduleError(f"cron field {text!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return values


def _value(text: str, names: dict[str, int] | None) -> int:
    if names and text.upper() in names:
        return names[text.upper()]
    if not text.isdigit():
        raise ScheduleError(f"cron value {text!r} is not supported locally (L, W and # are not)")
    return int(text)


class Cron:
    """An EventBridge cron expression: minutes hours day-of-month month day-of-week year (UTC)."""

    def __init__(self, expression: str) -> None:
        m = re.fullmatch(r"\s*cron\((.+)\)\s*", expression)
        if not m:
            raise ScheduleError(f"not a cron expression: {expression!r}")
        parts = m.group(1).split()
        if len(parts) != 6:
            raise ScheduleError(f"cron needs 6 fields, got {len(parts)}: {expression!r}")
        self.minutes = _field(parts[0], 0, 59)
        self.hours = _field(parts[1], 0, 23)
        self.dom_any = parts[2] in ("*", "?")
        self.days = _field(parts[2], 1, 31)
        self.months = _field(parts[3], 1, 12, MONTHS)
        self.dow_any = parts[4] in ("*", "?")
        self.weekdays = _field(parts[4], 1, 7, DAYS)
        self.years = _field(parts[5], 1970, 2199)

    def _day_matches(self, day: datetime) -> bool:
        if day.month not in self.months or day.year not in self.years:
            return False
        aws_dow = (day.isoweekday() % 7) + 1  # SUN=1 .. SAT=7
        dom_ok = day.day in self.days
        dow_ok = aws_dow in self.weekdays
        if self.dom_any and self.dow_any:
            return True
        if self.dom_any:
            return dow_ok
        if self.dow_any:
            return dom_ok
        return dom_ok and dow_ok

    def next_after(self, after: datetime) -> datetime:
        """The first matching minute strictly after ``after`` (UTC)."""
        start = (after.astimezone(UTC) + timedelta(minutes=1)).replace(second=0, microsecond=0)
        day = start.replace(hour=0, minute=0)
        for _ in range(366 * 5):
            if self._day_matches(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        at = day.replace(hour=hour, minute=minute)
                        if at >= start:
                            return at
            day += timedelta(days=1)
        raise ScheduleError("cron expression never fires in the next five years")


def scheduled_event(rule_arn: str, region: str, account_id: str = "123456789012") -> dict[str, Any]:
    """The event EventBridge sends a target when the rule has no Input."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account_id,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


class Schedule:
    """One schedule event of one function, firing in a thread."""

    def __init__(
        self,
        function: LocalFunction,
        event: ScheduleEvent,
        *,
        speedup: float = 1.0,
        interval_override_s: float | None = None,
        fire_immediately: bool = False,
        region: str = "us-east-1",
    ) -> None:
        if speedup <= 0:
            raise ScheduleError("speedup must be positive")
        self.function, self.event = function, event
        self.speedup, self.interval_override_s = speedup, interval_override_s
        self.fire_immediately, self.region = fire_immediately, region
        self.rate_s = rate_seconds(event.expression)
        self.cron = None if self.rate_s is not None else Cron(event.expression)
        self.fired = 0
        self.errors = 0
        self.last_result: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def name(self) -> str:
        return f"schedule-{self.function.spec.logical_id}-{self.event.name}"

    @property
    def daily(self) -> bool:
        """Fires once a day or less often (its own time is kept locally)."""
        if self.rate_s is not None:
            return self.rate_s >= DAILY_S
        assert self.cron is not None
        first = self.cron.next_after(datetime.now(UTC))
        return (self.cron.next_after(first) - first).total_seconds() >= DAILY_S

    def next_delay(self, now: datetime | None = None) -> float:
        """Seconds until the next firing."""
        daily = self.daily
        if self.interval_override_s is not None and not daily:
            return self.interval_override_s
        speedup = 1.0 if daily else self.speedup
        if self.rate_s is not None:
            return self.rate_s / speedup
        assert self.cron is not None
        now = now or datetime.now(UTC)
        return max(0.0, (self.cron.next_after(now) - now).total_seconds() / speedup)

    def payload(self) -> dict[str, Any]:
        if self.event.input is not None:
            payload: dict[str, Any] = dict(self.event.input) if isinstance(self.event.input, dict) else self.event.input
            return payload
        rule = f"arn:aws:events:{self.region}:123456789012:rule/{self.function.spec.logical_id}{self.event.name}"
        return scheduled_event(rule, self.region)

    def fire(self) -> Any:
        """Invoke the function with the schedule's event now; its result (exceptions propagate)."""
        self.fired += 1
        self.last_result = self.function.invoke(self.payload())
        return self.last_result

    def _run(self) -> None:
        if self.fire_immediately:
            self._fire_logged()
        while not self._stop.wait(self.next_delay()):
            self._fire_logged()

    def _fire_logged(self) -> None:
        try:
            self.fire()
        except Exception:
            self.errors += 1
            log.exception("%s: the handler failed", self.name)

    def start(self) -> None:
        if self._thread is None and self.event.enabled:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def signal_stop(self) -> None:
        self._stop.set()

    def stop(self, timeout: float = 35.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
