"""Guards shared by every worker through the bindings table: leases, the circuit breaker and
the rate limiter of each external system. Each is one small DynamoDB item updated atomically.

- ``Leases``: a short lease per record, so two workers never write the same record at once.
- ``Breaker``: after ``threshold`` consecutive outage-like failures of a system, every worker
  stops calling it for a cool-down that doubles while it stays down (up to ``max_open_s``).
- ``RateLimiter``: at most ``per_minute`` requests per system in any 60 seconds (a sliding
  window) and ``concurrent`` at once, across all workers; a 429 makes everyone wait out
  ``Retry-After``.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from erpsync.errors import RetryableError
from erpsync.state import dynamo


def _conditional_failed(exc: Exception) -> bool:
    return type(exc).__name__ == "ConditionalCheckFailedException"


class Leases:
    def __init__(self, table: str, seconds: float = 60.0, clock: Callable[[], float] = time.time) -> None:
        self.table, self.seconds, self.clock = table, seconds, clock
        self.owner = uuid.uuid4().hex

    def acquire(self, name: str, token: str | None = None) -> bool:
        """Take the lease on ``name`` unless another holder has an unexpired one. ``token`` tells
        holders apart within one process (threads); default: this process."""
        me = token or self.owner
        now = self.clock()
        try:
            dynamo.client().put_item(
                TableName=self.table,
                Item=dynamo.to_item({"pk": f"lease#{name}", "sk": "-", "owner": me, "until": now + self.seconds}),
                ConditionExpression="attribute_not_exists(pk) OR #u < :now OR #o = :me",
                ExpressionAttributeNames={"#u": "until", "#o": "owner"},
                ExpressionAttributeValues=dynamo.to_item({":now": now, ":me": me}),
            )
            return True
        except Exception as exc:
            if _conditional_failed(exc):
                return False
            raise

    @contextmanager
    def hold(self, name: str) -> Iterator[None]:
        """Hold the lease on ``name`` for the block; another holder makes it a ``busy`` retry."""
        token = f"{self.owner}:{uuid.uuid4().hex}"
        if not self.acquire(name, token):
            raise RetryableError(f"another worker holds {name}", error_type="busy")
        try:
            yield
        finally:
            self.release(name, token)

    def release(self, name: str, token: str | None = None) -> None:
        me = token or self.owner
        try:
            dynamo.client().delete_item(
                TableName=self.table,
                Key=dynamo.to_item({"pk": f"lease#{name}", "sk": "-"}),
                ConditionExpression="#o = :me",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues=dynamo.to_item({":me": me}),
            )
        except Exception as exc:
            if not _conditional_failed(exc):
                raise


@dataclass
class Breaker:
    """A circuit breaker per system, shared by every worker."""

    table: str
    threshold: int = 5
    base_open_s: float = 15.0
    max_open_s: float = 300.0
    cache_s: float = 1.0
    clock: Callable[[], float] = time.time
    _seen: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)

    def _key(self, system: str) -> dict[str, Any]:
        return dynamo.to_item({"pk": f"breaker#{system}", "sk": "-"})

    def state(self, system: str, fresh: bool = False) -> dict[str, Any]:
        cached = self._seen.get(system)
        if cached and not fresh and self.clock() - cached[0] < self.cache_s:
            return cached[1]
        res = dynamo.client().get_item(TableName=self.table, Key=self._key(system), ConsistentRead=True)
        row = dynamo.from_item(res["Item"]) if "Item" in res else {}
        self._seen[system] = (self.clock(), row)
        return row

    def open_for(self, system: str) -> float:
        """Seconds the breaker of ``system`` stays open (0 when calls may go through)."""
        return max(0.0, float(self.state(system).get("open_until", 0)) - self.clock())

    def failure(self, system: str) -> float:
        """Count an outage-like failure; opens (or re-opens, longer) at the threshold. Open seconds."""
        now = self.clock()
        res = dynamo.client().update_item(
            TableName=self.table,
            Key=self._key(system),
            UpdateExpression="ADD failures :one SET last_failure = :now",
            ExpressionAttributeValues=dynamo.to_item({":one": 1, ":now": now}),
            ReturnValues="ALL_NEW",
        )
        row = dynamo.from_item(res["Attributes"])
        failures = int(row.get("failures", 0))
        if failures < self.threshold:
            self._seen[system] = (now, row)
            return 0.0
        trips = int(row.get("trips", 0))
        open_s = min(self.max_open_s, self.base_open_s * 2**trips)
        res = dynamo.client().update_item(
            TableName=self.table,
            Key=self._key(system),
            UpdateExpression="SET open_until = :until, failures = :zero ADD trips :one",
            ExpressionAttributeValues=dynamo.to_item({":until": now + open_s, ":zero": 0, ":one": 1}),
            ReturnValues="ALL_NEW",
        )
        self._seen[system] = (now, dynamo.from_item(res["Attributes"]))
        return open_s

    def success(self, system: str) -> None:
        """A call went through: close the breaker (only writes when there is something to reset)."""
        row = self.state(system)
        if not row.get("failures") and not row.get("trips"):
            return
        dynamo.client().update_item(
            TableName=self.table,
            Key=self._key(system),
            UpdateExpression="SET failures = :zero, trips = :zero",
            ExpressionAttributeValues=dynamo.to_item({":zero": 0}),
        )
        self._seen[system] = (self.clock(), {})


class LimitExceeded(Exception):
    """No request slot within the wait budget; ``wait_s`` says when to try again."""

    def __init__(self, system: str, wait_s: float) -> None:
        super().__init__(f"{system}: request ceiling reached; next slot in {wait_s:.1f}s")
        self.wait_s = wait_s


@dataclass
class RateLimiter:
    """Requests per minute and concurrent requests to one system, held across all workers.

    The minute is a sliding one. One item (``limit#<system>``) counts the grants of the last
    minute in one-second buckets, and a request gets a token only while the buckets that overlap
    the last ``window_s + margin_s`` seconds hold fewer than ``per_minute`` (an optimistic,
    versioned update), so no 60-second span ever holds more than the ceiling, whatever the
    boundaries; the item stays small (about 62 counters) whatever the ceiling. (Calendar-minute
    buckets let up to twice the ceiling through across a boundary.) ``margin_s`` covers the time
    a request takes to reach the system, which counts by arrival; a token whose write took more
    than half of it is stale and not used. A 429 sets ``until`` on the same item: nobody gets a
    token before it. Concurrency uses ``concurrent`` slot items, each a lease with a short expiry
    (so a crashed worker frees its slot); the slot is taken before the token, so a token is spent
    at once.
    """

    table: str
    system: str
    per_minute: int
    concurrent: int | None = None
    max_wait_s: float = 20.0
    slot_ttl_s: float = 60.0
    window_s: float = 60.0
    margin_s: float = 1.0
    bucket_s: float = 1.0
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    owner: str = field(default_factory=lambda: uuid.uuid4().hex)

    def _key(self) -> dict[str, Any]:
        return dynamo.to_item({"pk": f"limit#{self.system}", "sk": "-"})

    def _window(self, row: dict[str, Any], now: float) -> dict[int, int]:
        """The grant counts per bucket of ``row`` whose bucket overlaps the last span."""
        since = now - self.window_s - self.margin_s
        grants = row.get("grants")
        counts = {int(k): int(c) for k, c in grants.items()} if isinstance(grants, dict) else {}
        return {k: c for k, c in counts.items() if (k + 1) * self.bucket_s > since}

    def _wait_for_room(self, window: dict[int, int], now: float) -> float:
        """Seconds until enough old buckets leave the span for one more grant."""
        excess = sum(window.values()) - self.per_minute + 1
        for k in sorted(window):
            excess -= window[k]
            if excess <= 0:
                return (k + 1) * self.bucket_s + self.window_s + self.margin_s - now + 0.01
        return self.bucket_s  # unreachable while per_minute >= 1

    def _take_minute_token(self) -> float:
        """0 when a token was taken; else the seconds to wait (ceiling reached, or a 429 cool-down)."""
        for _ in range(50):
            res = dynamo.client().get_item(TableName=self.table, Key=self._key(), ConsistentRead=True)
            row = dynamo.from_item(res["Item"]) if "Item" in res else {}
            now = self.clock()  # after the read: the grant is stamped as close to the request as it can be
            until = float(row.get("until", 0))
            if until > now:
                return until - now + 0.01
            window = self._window(row, now)
            if sum(window.values()) >= self.per_minute:
                return self._wait_for_room(window, now)
            bucket = int(now // self.bucket_s)
            window[bucket] = window.get(bucket, 0) + 1
            version = int(row.get("v", 0))
            try:
                dynamo.client().update_item(
                    TableName=self.table,
                    Key=self._key(),
                    UpdateExpression="SET grants = :g, v = :nv, expires_at = :exp",
                    ConditionExpression="(attribute_not_exists(v) OR v = :v) AND "
                    "(attribute_not_exists(#u) OR #u < :now)",
                    ExpressionAttributeNames={"#u": "until"},
                    ExpressionAttributeValues=dynamo.to_item(
                        {
                            ":g": {str(k): c for k, c in window.items()},
                            ":nv": version + 1,
                            ":v": version,
                            ":exp": int(now + self.window_s) + 180,
                            ":now": now,
                        }
                    ),
                )
            except Exception as exc:
                if not _conditional_failed(exc):
                    raise
                continue  # another worker took a token (or a 429 arrived) in between: look again
            if self.clock() - now <= self.margin_s / 2:
                return 0.0
            # the write took so long the stamp is stale: the request would arrive later than it
            # says, and the window would free too early. The token stays spent; take a fresh one.
        return 0.05

    def throttled(self, retry_after_s: float | None) -> None:
        """The system answered 429: every worker waits ``retry_after_s`` (default 5 s)."""
        now = self.clock()
        until = now + (retry_after_s if retry_after_s is not None else 5.0)
        try:
            dynamo.client().update_item(
                TableName=self.table,
                Key=self._key(),
                UpdateExpression="SET #u = :u",
                ConditionExpression="attribute_not_exists(#u) OR #u < :u",
                ExpressionAttributeNames={"#u": "until"},
                ExpressionAttributeValues=dynamo.to_item({":u": until}),
            )
        except Exception as exc:
            if not _conditional_failed(exc):
                raise

    def _take_slot(self) -> int | None:
        if not self.concurrent:
            return -1
        now = self.clock()
        for i in range(self.concurrent):
            try:
                dynamo.client().put_item(
                    TableName=self.table,
                    Item=dynamo.to_item(
                        {
                            "pk": f"slot#{self.system}#{i}",
                            "sk": "-",
                            "owner": self.owner,
                            "until": now + self.slot_ttl_s,
                        }
                    ),
                    ConditionExpression="attribute_not_exists(pk) OR #u < :now",
                    ExpressionAttributeNames={"#u": "until"},
                    ExpressionAttributeValues=dynamo.to_item({":now": now}),
                )
                return i
            except Exception as exc:
                if not _conditional_failed(exc):
                    raise
        return None

    def _free_slot(self, i: int) -> None:
        if i < 0:
            return
        dynamo.client().delete_item(
            TableName=self.table, Key=dynamo.to_item({"pk": f"slot#{self.system}#{i}", "sk": "-"})
        )

    @contextmanager
    def request(self) -> Iterator[None]:
        """Hold a concurrency slot and a minute token for one request, waiting up to ``max_wait_s``."""
        deadline = self.clock() + self.max_wait_s
        slot = self._take_slot()
        while slot is None:
            if self.clock() + 0.05 > deadline:
                raise LimitExceeded(self.system, 1.0)
            self.sleep(0.05)
            slot = self._take_slot()
        try:
            while True:
                wait = self._take_minute_token()
                if not wait:
                    break
                if self.clock() + wait > deadline:
                    raise LimitExceeded(self.system, wait)
                self.sleep(wait)
            yield
        finally:
            self._free_slot(slot)


class AdaptiveConcurrency:
    """How many requests this container sends one system at once, learned from its answers
    (additive increase, multiplicative decrease, as TCP does): one more per window of answers that
    went through, half as many after a 429. With no ceiling configured, this is what keeps a burst
    of workers from swamping an ERP whose licence allows only a few requests at a time; with one
    configured, the shared ``RateLimiter`` holds it across every worker as well.
    """

    def __init__(self, start: float = 4.0, floor: float = 1.0, ceiling: float = 64.0, max_wait_s: float = 30.0):
        self.limit, self.floor, self.ceiling, self.max_wait_s = start, floor, ceiling, max_wait_s
        self.in_use = 0
        self._cond = threading.Condition()

    def acquire(self, clock: Callable[[], float] = time.monotonic) -> None:
        """Wait for a free place (at most ``max_wait_s``: then go anyway rather than stall a record)."""
        give_up = clock() + self.max_wait_s
        with self._cond:
            while self.in_use >= max(1, int(self.limit)):
                left = give_up - clock()
                if left <= 0:
                    break
                self._cond.wait(min(left, 1.0))
            self.in_use += 1

    def release(self, throttled: bool) -> None:
        with self._cond:
            self.in_use -= 1
            if throttled:
                self.limit = max(self.floor, self.limit / 2)
            else:
                self.limit = min(self.ceiling, self.limit + 1 / max(self.limit, 1.0))
            self._cond.notify_all()


class SystemGate:
    """The gate of one system (connection) as the settings say now: a ceiling set or changed in the
    settings applies from the next refresh, in every warm worker, without a restart. With no
    ceiling configured requests pass without a DynamoDB call; a 429 is still shared, and every
    request goes through the container's ``AdaptiveConcurrency``."""

    def __init__(self, table: str, system: str) -> None:
        self.table, self.system = table, system
        self.limiter: RateLimiter | None = None
        self.adaptive = AdaptiveConcurrency()
        self._local = threading.local()

    def configure(self, per_minute: int | None, concurrent: int | None) -> None:
        """Apply the system's current ceilings (``per_minute`` None: none)."""
        if per_minute is None:
            self.limiter = None
        elif self.limiter is None:
            self.limiter = RateLimiter(self.table, self.system, per_minute, concurrent)
        else:
            self.limiter.per_minute, self.limiter.concurrent = per_minute, concurrent
        if concurrent:
            self.adaptive.ceiling = float(concurrent)
            self.adaptive.limit = min(self.adaptive.limit, self.adaptive.ceiling)

    @contextmanager
    def request(self) -> Iterator[None]:
        self._local.throttled = False
        self.adaptive.acquire()
        try:
            if self.limiter is None:
                yield
            else:
                with self.limiter.request():
                    yield
        finally:
            self.adaptive.release(bool(getattr(self._local, "throttled", False)))

    def throttled(self, retry_after_s: float | None) -> None:
        """The system answered 429 (called inside ``request``): fewer at once here, and every worker
        waits out ``Retry-After``."""
        self._local.throttled = True
        (self.limiter or RateLimiter(self.table, self.system, 1)).throttled(retry_after_s)
