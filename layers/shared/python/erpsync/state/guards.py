"""Guards shared by every worker through the bindings table: leases, the circuit breaker and
the rate limiter of each external system. Each is one small DynamoDB item updated atomically.

- ``Leases``: a short lease per record, so two workers never write the same record at once.
- ``Breaker``: after ``threshold`` outage-like failures of a system with no answer between, every worker
  stops calling it for a cool-down, longer the longer it has been down (up to ``max_open_s``).
- ``RateLimiter``: at most ``per_minute`` requests per system in any 60 seconds (a sliding
  window), and at most ``per_second`` in any second, across all workers; a 429 makes everyone
  wait out ``Retry-After``.
- ``Seats``: how many requests a system takes at once, across all workers, learned from its
  answers (fewer after a 429 on the last seat, back along a curve that probes the level refused)
  or a configured ``concurrent``.
- ``PointsBucket``: a query-cost bucket (Shopify's points) spent by every worker from one shared
  level, so workers in parallel stay within what the system's bucket holds.
- ``SystemGate``: all of the above for one connection, as its clients see it.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from erpsync.errors import RetryableError
from erpsync.state import dynamo


def _conditional_failed(exc: Exception) -> bool:
    return type(exc).__name__ == "ConditionalCheckFailedException"


def _delete_if_owner(table: str, key: dict[str, str], owner: str) -> None:
    """Delete a lease-like item unless someone else holds it now (its lease ran out and was taken)."""
    try:
        dynamo.client().delete_item(
            TableName=table,
            Key=dynamo.to_item(key),
            ConditionExpression="#o = :me",
            ExpressionAttributeNames={"#o": "owner"},
            ExpressionAttributeValues=dynamo.to_item({":me": owner}),
        )
    except Exception as exc:
        if not _conditional_failed(exc):
            raise


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

    def acquire_many(self, names: list[str]) -> set[str]:
        """``acquire`` each of ``names`` (for this process): the ones taken."""
        now = self.clock()
        return self._each_in_transactions(
            names,
            lambda n: {
                "Put": {
                    "TableName": self.table,
                    "Item": dynamo.to_item(
                        {"pk": f"lease#{n}", "sk": "-", "owner": self.owner, "until": now + self.seconds}
                    ),
                    "ConditionExpression": "attribute_not_exists(pk) OR #u < :now OR #o = :me",
                    "ExpressionAttributeNames": {"#u": "until", "#o": "owner"},
                    "ExpressionAttributeValues": dynamo.to_item({":now": now, ":me": self.owner}),
                }
            },
            self.acquire,
        )

    def release_many(self, names: list[str]) -> None:
        """``release`` each of ``names``."""

        def one(name: str) -> bool:
            self.release(name)
            return True

        self._each_in_transactions(
            names,
            lambda n: {
                "Delete": {
                    "TableName": self.table,
                    "Key": dynamo.to_item({"pk": f"lease#{n}", "sk": "-"}),
                    "ConditionExpression": "#o = :me",
                    "ExpressionAttributeNames": {"#o": "owner"},
                    "ExpressionAttributeValues": dynamo.to_item({":me": self.owner}),
                }
            },
            one,
        )

    @staticmethod
    def _each_in_transactions(
        names: list[str], item: Callable[[str], dict[str, Any]], one: Callable[[str], bool]
    ) -> set[str]:
        """``item(name)`` of each name, 100 a transaction (all or none); the names of a transaction
        another holder spoils go ``one`` by one. The names it held for."""
        held: set[str] = set()
        unique = list(dict.fromkeys(names))
        for i in range(0, len(unique), 100):
            chunk = unique[i : i + 100]
            try:
                dynamo.client().transact_write_items(TransactItems=[item(n) for n in chunk])
                held.update(chunk)
            except Exception as exc:
                if type(exc).__name__ != "TransactionCanceledException":
                    raise
                held.update(n for n in chunk if one(n))
        return held

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
        _delete_if_owner(self.table, {"pk": f"lease#{name}", "sk": "-"}, token or self.owner)


@dataclass
class Breaker:
    """A circuit breaker per system, shared by every worker.

    Each container counts the outage-like failures it meets in a row (any answer in between, in
    any of its threads, starts the count again): at ``threshold`` it opens the shared breaker for
    ``base_open_s``, or, when the system has been down a while already, for that time over
    ``lag_share`` (up to ``max_open_s``). Records that meet it open wait as long (they come back
    as it closes), so after an outage of D the work resumes within about max(base_open_s,
    D / lag_share): a short outage is not followed by a longer wait (a doubling per trip kept a
    25 s outage's backlog waiting 20 s more), a long one is not polled every few seconds.
    Counting in the container keeps "in a row" true: a shared count would add up the failures of
    every worker between answers it cannot see, and open on a system that mostly answers."""

    table: str
    threshold: int = 5
    base_open_s: float = 15.0
    max_open_s: float = 300.0
    lag_share: float = 4.0
    cache_s: float = 1.0
    clock: Callable[[], float] = time.time
    _seen: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)
    _in_a_row: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

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
        with self._lock:
            self._in_a_row[system] = self._in_a_row.get(system, 0) + 1
            if self._in_a_row[system] < self.threshold:
                return 0.0
            self._in_a_row[system] = 0
        return self.trip(system)

    def down_for(self, system: str) -> float:
        """Seconds since the breaker of ``system`` first opened with no answer going through since
        (0 once one has): how long the system has been down, as the workers saw it."""
        since = self.state(system).get("down_since")
        return max(0.0, self.clock() - float(since)) if since is not None else 0.0

    def trip(self, system: str) -> float:
        """Open now (also without reaching the threshold, e.g. credentials refused: no request can go
        through), unless it is open already: the workers that met the same trouble open it once.
        Open seconds."""
        row, now = self.state(system, fresh=True), self.clock()
        if float(row.get("open_until", 0)) > now:
            return float(row["open_until"]) - now
        down_s = now - float(row["down_since"]) if row.get("down_since") is not None else 0.0
        open_s = min(self.max_open_s, max(self.base_open_s, down_s / self.lag_share))
        res = dynamo.client().update_item(
            TableName=self.table,
            Key=self._key(system),
            # down_since: the first opening of this run of trips (removed by ``success``)
            UpdateExpression="SET open_until = :until, down_since = if_not_exists(down_since, :now) ADD trips :one",
            ExpressionAttributeValues=dynamo.to_item({":until": now + open_s, ":one": 1, ":now": now}),
            ReturnValues="ALL_NEW",
        )
        self._seen[system] = (now, dynamo.from_item(res["Attributes"]))
        return open_s

    def success(self, system: str) -> None:
        """An answer: the count in a row starts again, and a breaker that tripped is reset (a write
        only when this container last saw trips: it reads the breaker before each record)."""
        with self._lock:
            self._in_a_row[system] = 0
        cached = self._seen.get(system)
        row = cached[1] if cached else {}
        if not row.get("trips"):
            return
        dynamo.client().update_item(
            TableName=self.table,
            Key=self._key(system),
            UpdateExpression="SET trips = :zero REMOVE down_since",
            ExpressionAttributeValues=dynamo.to_item({":zero": 0}),
        )
        self._seen[system] = (self.clock(), {**{k: v for k, v in row.items() if k != "down_since"}, "trips": 0})


class LimitExceeded(Exception):
    """No request slot within the wait budget; ``wait_s`` says when to try again."""

    def __init__(self, system: str, wait_s: float) -> None:
        super().__init__(f"{system}: request ceiling reached; next slot in {wait_s:.1f}s")
        self.wait_s = wait_s


@dataclass
class RateLimiter:
    """Requests per minute to one system, held across all workers.

    The minute is a sliding one. One item (``limit#<system>``) counts the grants of the last
    minute in one-second buckets, and a request gets a token only while the buckets that overlap
    the last ``window_s + margin_s`` seconds hold fewer than ``per_minute`` (an optimistic,
    versioned update), so no 60-second span ever holds more than the ceiling, whatever the
    boundaries; the item stays small (about 62 counters) whatever the ceiling. (Calendar-minute
    buckets let up to twice the ceiling through across a boundary.) ``margin_s`` covers the time
    a request takes to reach the system, which counts by arrival; a token whose write took more
    than half of it is stale and not used. A 429 sets ``until`` on the same item: nobody gets a
    token before it. (Requests at once are the ``Seats``; the gate takes the seat before the token,
    so a token is spent at once.)

    ``per_second`` (QuickBooks Online refuses more than 10 requests a second per company) is held
    the same way on tenth-of-a-second buckets (``recent``): no span of one second plus half the
    margin (a token is used within that, or taken again) holds more, so no second of arrivals can.
    """

    table: str
    system: str
    per_minute: int | None
    max_wait_s: float = 20.0
    window_s: float = 60.0
    margin_s: float = 1.0
    bucket_s: float = 1.0
    per_second: int | None = None
    tick_s: float = 0.1
    """The bucket of the per-second window."""
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep

    def _key(self) -> dict[str, Any]:
        return dynamo.to_item({"pk": f"limit#{self.system}", "sk": "-"})

    def _window(self, row: dict[str, Any], now: float, field: str = "grants") -> dict[int, int]:
        """The grant counts per bucket of ``row`` whose bucket overlaps the last span (the minute's
        ``grants``, or the second's ``recent``)."""
        span, bucket = self._span(field)
        grants = row.get(field)
        counts = {int(k): int(c) for k, c in grants.items()} if isinstance(grants, dict) else {}
        return {k: c for k, c in counts.items() if (k + 1) * bucket > now - span}

    def _span(self, field: str) -> tuple[float, float]:
        """The span a ceiling holds over and its bucket, in seconds."""
        if field == "recent":
            return 1.0 + self.margin_s / 2, self.tick_s
        return self.window_s + self.margin_s, self.bucket_s

    def _wait_for_room(self, window: dict[int, int], now: float, ceiling: int, field: str = "grants") -> float:
        """Seconds until enough old buckets leave the span for one more grant."""
        span, bucket = self._span(field)
        excess = sum(window.values()) - ceiling + 1
        for k in sorted(window):
            excess -= window[k]
            if excess <= 0:
                return (k + 1) * bucket + span - now + 0.01
        return bucket  # unreachable while the ceiling is 1 or more

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
            if self.per_minute is not None and sum(window.values()) >= self.per_minute:
                return self._wait_for_room(window, now, self.per_minute)
            recent = self._window(row, now, "recent")
            if self.per_second is not None and sum(recent.values()) >= self.per_second:
                return self._wait_for_room(recent, now, self.per_second, "recent")
            bucket = int(now // self.bucket_s)
            window[bucket] = window.get(bucket, 0) + 1
            tick = int(now // self.tick_s)
            recent[tick] = recent.get(tick, 0) + 1
            version = int(row.get("v", 0))
            try:
                dynamo.client().update_item(
                    TableName=self.table,
                    Key=self._key(),
                    UpdateExpression="SET grants = :g, recent = :r, v = :nv, expires_at = :exp",
                    ConditionExpression="(attribute_not_exists(v) OR v = :v) AND "
                    "(attribute_not_exists(#u) OR #u < :now)",
                    ExpressionAttributeNames={"#u": "until"},
                    ExpressionAttributeValues=dynamo.to_item(
                        {
                            ":g": {str(k): c for k, c in window.items()},
                            ":r": {str(k): c for k, c in recent.items()},
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

    @contextmanager
    def request(self, wait_s: float | None = None) -> Iterator[None]:
        """Hold a minute token for one request, waiting up to ``wait_s`` (default ``max_wait_s``)."""
        deadline = self.clock() + (self.max_wait_s if wait_s is None else min(wait_s, self.max_wait_s))
        while True:
            wait = self._take_minute_token()
            if not wait:
                break
            if self.clock() + wait > deadline:
                raise LimitExceeded(self.system, wait)
            self.sleep(wait)
        yield


@dataclass(frozen=True)
class Seat:
    """One seat taken for one request: its number, whether it had to wait for it, whether it was
    the last one (every seat busy with it), and how many seats there were."""

    index: int
    waited: bool
    full: bool
    seats: int
    at: float
    """When it was taken (the request's send time, give or take a DynamoDB call)."""


@dataclass
class Seats:
    """How many requests one system takes at once, shared by every worker and learned from its answers.

    An ERP licence serves a few requests at a time and refuses (429) the rest; workers that each
    guess alone crowd the ERP with refusals, and a refused request still holds the ERP's seat for
    as long as a served one. The seats live under one key (``seats#<system>``): one item per seat
    held (a lease with an expiry, so a crashed worker frees its seat) and one ``count`` item with
    how many seats there are, the last cut (``at``; its level, ``last``, and how many cuts in a
    row were at that level, ``hits``), the level last refused above what held (``hit``, at
    ``hit_at``) and the level that held (``good``).

    Every request knows whether it took the last free seat (every seat busy with it). A refusal
    cuts the count by one seat (a quarter from eight up, never under ``floor``) only when it can
    be the licence's: its request was sent with every seat busy (with seats to spare, a 429 is a
    per-minute or passing limit, which the retry handles) and after the last cut (a request sent
    before it was sent under the old count: one round of refusals cuts once). The cut starts from
    the count stored now, not from this container's copy. A cut at a level above ``good`` (or the
    first one) is the licence answering a probe: it moves ``hit`` there.

    Growth needs every seat busy and answers that show the system working (below 500: an outage's
    503s prove nothing), and goes at most at slow-start pace (one seat per count answers: it
    doubles each round, like TCP's). Until the first refusal it goes at that pace. After one, it
    follows the level refused as TCP CUBIC follows its last loss: the count may reach
    ``hit - 1 + (t / probe_s) ** 3``, t the seconds since ``hit_at``, so it stays one seat under the
    refused level for a while, probes it once about ``probe_s`` later (every probe of a licence
    costs a round of refused requests), and climbs faster and faster if that goes through (the
    licence, or what others leave of it, grew). Each refusal in a row at the same level doubles the
    curve's time scale (up to 32 ``probe_s``): a licence that said no again and again is probed
    less and less often, so a long backlog does not pay a round of refusals every ``probe_s``. A
    refusal that comes while the system is also failing requests (a 5xx or no answer in this
    container within ``probe_s``: an outage, an error storm) still cuts the count, but is no repeat:
    the curve keeps ``probe_s`` and ``good`` stays, so once the trouble passes the seats come back
    within a probe's time instead of many.
    A level that held (every seat busy for ``good_rounds`` requests' time, no refusal) is stored as
    ``good``; under it the count grows back at once, so passing trouble (random 429s, another
    client's burst) does not sink the seats; ``good`` comes down one seat when refused
    ``shrink_hits`` times in a row.
    A configured ``concurrent`` is taken as the licence's word: that many seats, nothing learned.
    Taking a seat is a query and a conditional put; within a container only one waiting thread
    asks DynamoDB at a time, and a thread that frees a seat hands it to a waiting one directly (no
    DynamoDB call) for ``handoff_s`` after it was taken, then gives it back to the table.

    ``lazy`` seats (the gates' own) are taken only once the system has refused: while it refuses
    nothing there is no ceiling to share, and a request costs no DynamoDB call for it. The first
    refusal (``refused`` on a request sent without a seat) marks the ``count`` item refused at the
    count it holds (``start`` when new), which engages the seats in this container at once and in
    every other within ``recheck_s`` (each reads the ``count`` item that often while not engaged);
    they stay engaged until ``quiet_s`` pass without a refusal.
    """

    table: str
    system: str
    ceiling: int = 32
    start: float = 8.0
    learn: bool = True
    """False: exactly ``ceiling`` seats (a configured ``concurrent``)."""
    floor: float = 1.0
    probe_s: float = 20.0
    good_rounds: float = 3.0
    shrink_hits: int = 3
    ttl_s: float = 120.0
    poll_s: float = 0.1
    clock: Callable[[], float] = time.time
    lazy: bool = False
    """Take seats only once the system has refused (see the class)."""
    quiet_s: float = 3600.0
    recheck_s: float = 10.0
    handoff_s: float = 10.0
    """How long after it was taken a seat may pass from thread to thread of one container (``free``)."""
    owner: str = field(default_factory=lambda: uuid.uuid4().hex)
    _checked_at: float = field(default=float("-inf"), repr=False)
    _cond: threading.Condition = field(default_factory=threading.Condition, repr=False)
    _polling: bool = field(default=False, repr=False)
    _waiting: int = field(default=0, repr=False)
    """Threads of this container in ``take``."""
    _handed: list[int] = field(default_factory=list, repr=False)
    """Seats a thread freed for another of this container's waiting threads (``free``)."""
    _put_at: dict[int, float] = field(default_factory=dict, repr=False)
    """When this container took each seat it holds (its item written)."""
    _grown: float = field(default=0.0, repr=False)
    _count: float | None = field(default=None, repr=False)
    _refused_at: float = field(default=0.0, repr=False)
    """When the last refusal cut the count (as last read; 0: never)."""
    _hit: int | None = field(default=None, repr=False)
    """The seats in use when the last refusal came (as last read; None: never refused)."""
    _hit_at: float = field(default=0.0, repr=False)
    """When ``_hit`` was refused (as last read): where the curve starts."""
    _repeats: int = field(default=1, repr=False)
    """How many refusals in a row came at ``_hit`` (as last read): each doubles the curve's scale."""
    _good: int = field(default=0, repr=False)
    """The highest level that held (as last read; 0: none yet)."""
    _rose_at: float = field(default=0.0, repr=False)
    """When the count last rose to a new whole seat (as last read)."""
    _latency_s: float = field(default=1.0, repr=False)
    """How long this container's requests take (a moving average): one round."""
    _troubled_at: float = field(default=float("-inf"), repr=False)
    """When this container last saw the system fail a request (a 5xx other than 429, no answer)."""

    def _pk(self) -> str:
        return f"seats#{self.system}"

    def _read(self) -> tuple[float, set[int]]:
        """The learned count (capped by the ceiling) and the seats held now."""
        res = dynamo.client().query(
            TableName=self.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=dynamo.to_item({":pk": self._pk()}),
            ConsistentRead=True,
        )
        now = self.clock()
        count, busy = self.start, set()
        for item in res.get("Items", []):
            row = dynamo.from_item(item)
            if row["sk"] == "count":
                count = float(row.get("n", self.start))
                self._note(row)
            elif float(row.get("until", 0)) > now:
                busy.add(int(row["sk"]))
        self._count = max(self.floor, min(float(self.ceiling), count)) if self.learn else float(self.ceiling)
        return self._count, busy

    def _note(self, row: dict[str, Any]) -> None:
        """Remember the last refusal of a ``count`` row."""
        self._refused_at = float(row.get("at", 0))
        self._hit = int(row["hit"]) if row.get("hit") is not None else None
        self._hit_at = float(row.get("hit_at", row.get("at", 0)))
        last = row.get("last")
        same = last is not None and self._hit is not None and int(last) == self._hit
        self._repeats = int(row.get("hits", 1)) if same else 1
        self._good = int(row.get("good", 0))
        self._rose_at = float(row.get("rose_at", 0))

    def configure(self, concurrent: int | None) -> None:
        """``concurrent`` seats exactly, or (None) as many as learned, up to the default ceiling."""
        self.ceiling = concurrent or Seats.ceiling
        self.learn = concurrent is None
        self._count = None  # read again under the new rule

    def engaged(self) -> bool:
        """Whether requests take seats now: always, unless ``lazy`` and no refusal came within
        ``quiet_s`` (the ``count`` item is read again at most every ``recheck_s``)."""
        if not self.lazy or not self.learn:
            return True
        now = self.clock()
        if now - self._checked_at >= self.recheck_s:
            item = (
                dynamo.client()
                .get_item(TableName=self.table, Key=dynamo.to_item({"pk": self._pk(), "sk": "count"}))
                .get("Item")
            )
            if item:
                row = dynamo.from_item(item)
                self._note(row)
                self._count = max(self.floor, min(float(self.ceiling), float(row.get("n", self.start))))
            self._checked_at = now
        return self._hit is not None and now - max(self._refused_at, self._hit_at) < self.quiet_s

    def _engage(self) -> None:
        """The first refusal in ``quiet_s``: mark the ``count`` item refused at its count, so every
        container takes seats from now on (the cuts and growth then go as for any seat)."""
        now = self.clock()
        try:
            res = dynamo.client().update_item(
                TableName=self.table,
                Key=dynamo.to_item({"pk": self._pk(), "sk": "count"}),
                UpdateExpression="SET n = if_not_exists(n, :start), #at = :now, hit_at = :now, hit = :level",
                ConditionExpression="attribute_not_exists(hit_at) OR hit_at < :quiet",
                ExpressionAttributeNames={"#at": "at"},
                ExpressionAttributeValues=dynamo.to_item(
                    {":start": self.start, ":now": now, ":level": int(self.count()), ":quiet": now - self.quiet_s}
                ),
                ReturnValues="ALL_NEW",
            )
            row = dynamo.from_item(res["Attributes"])
        except Exception as exc:
            if not _conditional_failed(exc):
                raise
            self._checked_at = float("-inf")  # engaged by another container: read it
            self.engaged()
            return
        self._note(row)
        self._count = max(self.floor, min(float(self.ceiling), float(row.get("n", self.start))))
        self._checked_at = now

    def count(self) -> float:
        """How many seats there are now (as last read)."""
        return self._count if self._count is not None else self._read()[0]

    def _take(self) -> tuple[int, bool, int] | None:
        """A free seat, whether it was the last one (every seat busy with it) and how many seats
        there are, or None."""
        count, busy = self._read()
        if len(busy) >= int(count):
            return None
        seat = next(i for i in range(int(count) + len(busy)) if i not in busy)
        now = self.clock()
        try:
            dynamo.client().put_item(
                TableName=self.table,
                Item=dynamo.to_item(
                    {"pk": self._pk(), "sk": str(seat), "owner": self.owner, "until": now + self.ttl_s}
                ),
                ConditionExpression="attribute_not_exists(pk) OR #u < :now",
                ExpressionAttributeNames={"#u": "until"},
                ExpressionAttributeValues=dynamo.to_item({":now": now}),
            )
        except Exception as exc:
            if not _conditional_failed(exc):
                raise
            return None  # taken in between
        self._put_at[seat] = now
        return seat, len(busy) + 1 >= int(count), int(count)

    def take(self, wait_s: float) -> Seat:
        """A seat, waiting up to ``wait_s`` (else ``LimitExceeded``); index -1: none was needed
        (``lazy`` and not engaged)."""
        if not self.engaged():
            return Seat(-1, False, False, int(self._count or self.start), self.clock())
        give_up = time.monotonic() + max(0.0, wait_s)
        waited = False
        with self._cond:
            self._waiting += 1
        try:
            with self._cond:
                while self._polling:
                    if self._handed:
                        return self._handed_seat()
                    left = give_up - time.monotonic()
                    if left <= 0:
                        raise LimitExceeded(self.system, self.poll_s * 10)
                    waited = True
                    self._cond.wait(left)
                if self._handed:
                    return self._handed_seat()
                self._polling = True
            try:
                while True:
                    got = self._take()
                    if got is not None:
                        return Seat(got[0], waited, got[1], got[2], self.clock())
                    waited = True
                    left = give_up - time.monotonic()
                    if left <= 0:
                        raise LimitExceeded(self.system, self.poll_s * 10)
                    with self._cond:  # a seat freed here wakes us at once; one freed elsewhere is polled for
                        if not self._handed:
                            self._cond.wait(min(left, self.poll_s * random.uniform(0.5, 1.5)))
                        if self._handed:
                            return self._handed_seat()
            finally:
                with self._cond:
                    self._polling = False
                    self._cond.notify_all()
        finally:
            with self._cond:
                self._waiting -= 1
                spare = self._handed[self._waiting :]  # handed on to a thread that no longer waits
                del self._handed[self._waiting :]
            for index in spare:
                self._release(index)

    def _handed_seat(self) -> Seat:
        """A seat another thread of this container handed on (called holding ``_cond``): every seat
        was busy, as a thread was waiting for it."""
        return Seat(self._handed.pop(), True, True, int(self._count or self.start), self.clock())

    def free(self, seat: int, linger_s: float = 0.0) -> None:
        """Give the seat back; with ``linger_s``, only after that long (a request we gave up on may
        still hold the ERP's seat: no one else takes it until the ERP is likely done).

        A thread of this container waiting for a seat gets it at once, with no DynamoDB call, for
        ``handoff_s`` after the seat was taken and while no refusal cut the seats since; then it goes
        back to the table, where every container competes for it and a cut made elsewhere holds."""
        if seat < 0:
            return
        if linger_s > 0:
            self._put_at.pop(seat, None)
            try:
                dynamo.client().update_item(
                    TableName=self.table,
                    Key=dynamo.to_item({"pk": self._pk(), "sk": str(seat)}),
                    UpdateExpression="SET #u = :until",
                    ConditionExpression="#o = :me",
                    ExpressionAttributeNames={"#u": "until", "#o": "owner"},
                    ExpressionAttributeValues=dynamo.to_item({":until": self.clock() + linger_s, ":me": self.owner}),
                )
            except Exception as exc:
                if not _conditional_failed(exc):
                    raise
            return
        with self._cond:
            put_at = self._put_at.get(seat)
            if (
                put_at is not None
                and self._waiting > len(self._handed)
                and self.clock() - put_at < self.handoff_s
                and self._refused_at < put_at
            ):
                self._handed.append(seat)
                self._cond.notify_all()
                return
        self._release(seat)

    def _release(self, seat: int) -> None:
        """Delete the seat's item (it is free for every container) and wake this container's waiters."""
        self._put_at.pop(seat, None)
        _delete_if_owner(self.table, {"pk": self._pk(), "sk": str(seat)}, self.owner)
        with self._cond:
            self._cond.notify_all()

    def refused(self, sent: Seat | None = None) -> None:
        """The system refused the request sent on ``sent`` (429): one seat fewer, when the refusal
        can be the licence's (see the class)."""
        if not self.learn:
            return
        with self._cond:
            self._grown = 0.0
        if sent is not None and sent.index < 0:
            self._engage()
            return
        if sent is not None and not sent.full:
            return
        sent_at = self.clock() if sent is None else sent.at
        for _ in range(3):  # another container may cut or grow it in between: read again
            item = (
                dynamo.client()
                .get_item(
                    TableName=self.table, Key=dynamo.to_item({"pk": self._pk(), "sk": "count"}), ConsistentRead=True
                )
                .get("Item")
            )
            row = dynamo.from_item(item) if item else {}
            self._note(row)
            if float(row.get("at", 0)) >= sent_at:
                return
            count = max(self.floor, min(float(self.ceiling), float(row.get("n", self.start))))
            in_use = int(count)
            now = self.clock()
            fewer = max(self.floor, float(in_use - 1) if count < 8 else count * 0.75)
            good = int(row.get("good", 0))
            again = row.get("last") is not None and int(row["last"]) == in_use
            # a refusal while the system also fails (5xx, no answer) says little about its licence:
            # it cuts, but is no repeat (no probe back-off, ``good`` kept) so the seats come back fast
            hits = int(row.get("hits", 0)) + 1 if again and not self.troubled() else 1
            cut: dict[str, Any] = {"n": fewer, "at": now, "last": in_use, "hits": hits}
            if in_use == good and hits >= self.shrink_hits:  # the level that held is refused again and again
                good = cut["good"] = in_use - 1
            if in_use > good or row.get("hit") is None:  # past what held: where the curve starts again
                cut.update(hit=in_use, hit_at=now)
            # unchanged since read: compared as stored (a float read back may not match)
            if item and "n" in item:
                unchanged = "n = :was AND " + ("#at = :was_at" if "at" in item else "attribute_not_exists(#at)")
                was = {":was": item["n"], **({":was_at": item["at"]} if "at" in item else {})}
            else:
                unchanged, was = "attribute_not_exists(n)", {}
            try:
                dynamo.client().update_item(
                    TableName=self.table,
                    Key=dynamo.to_item({"pk": self._pk(), "sk": "count"}),
                    UpdateExpression="SET " + ", ".join(f"#{k} = :{k}" for k in cut),
                    ConditionExpression=unchanged,
                    ExpressionAttributeNames={f"#{k}": k for k in cut},
                    ExpressionAttributeValues={**dynamo.to_item({f":{k}": v for k, v in cut.items()}), **was},
                )
            except Exception as exc:
                if not _conditional_failed(exc):
                    raise
                continue
            self._count = fewer
            self._note({**row, **cut})
            return

    def served(self, sent: Seat) -> None:
        """The request sent on ``sent`` went through: a level held long enough is marked good, and
        when seats were short the count grows (see the class)."""
        if not self.learn or sent.index < 0:
            return
        now = self.clock()
        with self._cond:
            self._latency_s += (max(0.0, now - sent.at) - self._latency_s) * 0.2
        count = self.count()
        held = sent.full and sent.seats == int(count) > self._good
        if held and sent.at - max(self._refused_at, self._rose_at) >= self.good_rounds * self._latency_s:
            self._mark_good(sent.seats)
        if not sent.waited or count >= self.ceiling:
            return
        step = 1.0 / count  # slow-start pace
        if self._hit is not None and int(count) >= self._good:  # after a refusal: no further than the curve
            room = self._hit - 1 + max(0.0, (now - self._hit_at) / self._probe_scale_s()) ** 3 - count
            if room <= 0:
                return
            step = min(step, room)
        with self._cond:
            self._grown += step
            grow, self._grown = (self._grown, 0.0) if self._grown >= 0.25 else (0.0, self._grown)
        if not grow:
            return
        try:
            res = dynamo.client().update_item(
                TableName=self.table,
                Key=dynamo.to_item({"pk": self._pk(), "sk": "count"}),
                UpdateExpression="SET n = if_not_exists(n, :start) + :grow, #at = if_not_exists(#at, :zero)",
                ConditionExpression="attribute_not_exists(n) OR n < :ceiling",
                ExpressionAttributeNames={"#at": "at"},
                ExpressionAttributeValues=dynamo.to_item(
                    {":start": self.start, ":grow": grow, ":zero": 0, ":ceiling": self.ceiling}
                ),
                ReturnValues="ALL_NEW",
            )
            row = dynamo.from_item(res["Attributes"])
            self._count = min(float(self.ceiling), float(row["n"]))
            self._note(row)
            if int(float(row["n"])) > int(float(row["n"]) - grow):  # a seat more from now: when, for _good
                dynamo.client().update_item(
                    TableName=self.table,
                    Key=dynamo.to_item({"pk": self._pk(), "sk": "count"}),
                    UpdateExpression="SET rose_at = :now",
                    ExpressionAttributeValues=dynamo.to_item({":now": now}),
                )
                self._rose_at = now
        except Exception as exc:
            if not _conditional_failed(exc):
                raise

    def trouble(self) -> None:
        """The system failed a request here (a 5xx other than a refusal, or no answer)."""
        self._troubled_at = self.clock()

    def troubled(self) -> bool:
        """Whether this container saw the system fail within the last ``probe_s``."""
        return self.clock() - self._troubled_at < self.probe_s

    def _probe_scale_s(self) -> float:
        """The curve's time scale: ``probe_s``, doubled per refusal in a row at the level refused
        (up to 32 times)."""
        return self.probe_s * 2.0 ** min(max(self._repeats - 1, 0), 5)

    def _mark_good(self, level: int) -> None:
        """Every seat of ``level`` busy for ``good_rounds`` requests' time without a refusal."""
        try:
            dynamo.client().update_item(
                TableName=self.table,
                Key=dynamo.to_item({"pk": self._pk(), "sk": "count"}),
                UpdateExpression="SET good = :level",
                ConditionExpression="attribute_not_exists(good) OR good < :level",
                ExpressionAttributeValues=dynamo.to_item({":level": level}),
            )
        except Exception as exc:
            if not _conditional_failed(exc):
                raise
        self._good = max(self._good, level)


def _status(status: Mapping[str, Any] | None) -> tuple[float, float, float] | None:
    """(available, maximum, restore rate) of a throttle status, None when it does not say."""
    if not isinstance(status, Mapping):
        return None
    try:
        return (
            float(status["currentlyAvailable"]),
            float(status["maximumAvailable"]),
            float(status["restoreRate"]),
        )
    except (KeyError, TypeError, ValueError):
        return None


@dataclass
class PointsBucket:
    """A query-cost bucket (Shopify's: points that refill at a rate, up to a maximum), held across
    all workers of one connection.

    One item (``points#<system>``) holds the bucket's level at a time (``level``, ``at``) with its
    maximum and refill rate, as the system's answers said. A query first reserves its expected cost
    from it (an optimistic, versioned update) and waits while the bucket cannot pay, so workers in
    parallel spend from one level instead of each from its own idea of the bucket and the system
    seldom has to refuse one (``THROTTLED``). After the answer, what the query did not cost goes back
    (``refund``). The first status a worker sees creates the item when there is none; a refusal
    sets the level to the system's own figure (it knows of spending we do not). Nothing known yet:
    a query goes (the first answer tells).
    """

    table: str
    system: str
    clock: Callable[[], float] = time.time
    known: bool = False
    """This worker has seen the item exist (or made it)."""

    def _key(self) -> dict[str, Any]:
        return dynamo.to_item({"pk": f"points#{self.system}", "sk": "-"})

    def take(self, points: float) -> float:
        """Reserve ``points``: 0 when taken (or nothing is known), else the seconds until the
        bucket could pay them (nothing reserved)."""
        for _ in range(20):
            res = dynamo.client().get_item(TableName=self.table, Key=self._key(), ConsistentRead=True)
            row = dynamo.from_item(res["Item"]) if "Item" in res else {}
            if "level" not in row:
                return 0.0
            self.known = True
            now = self.clock()
            maximum, rate = float(row["maximum"]), max(float(row["rate"]), 0.001)
            level = min(maximum, float(row["level"]) + max(0.0, now - float(row["at"])) * rate)
            need = min(points, maximum)  # a query dearer than the whole bucket waits for a full one
            if level < need:
                return (need - level) / rate + 0.01
            try:
                dynamo.client().update_item(
                    TableName=self.table,
                    Key=self._key(),
                    UpdateExpression="SET #l = :l, #a = :a, v = :nv",
                    ConditionExpression="v = :v",
                    ExpressionAttributeNames={"#l": "level", "#a": "at"},
                    ExpressionAttributeValues=dynamo.to_item(
                        {":l": level - points, ":a": now, ":nv": int(row.get("v", 0)) + 1, ":v": int(row.get("v", 0))}
                    ),
                )
            except Exception as exc:
                if not _conditional_failed(exc):
                    raise
                continue  # another worker spent in between: look again
            return 0.0
        return 0.05

    def settle(self, status: Mapping[str, Any] | None, refund: float = 0.0, throttled: bool = False) -> None:
        """An answer's throttle status learned (see the class)."""
        told = _status(status)
        if told is None:
            return
        available, maximum, rate = told
        names = {"#l": "level", "#a": "at"}
        if throttled or not self.known:
            update: dict[str, Any] = {
                "UpdateExpression": "SET #l = :l, #a = :a, maximum = :m, rate = :r, v = if_not_exists(v, :zero) + :one",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": dynamo.to_item(
                    {":l": available, ":a": self.clock(), ":m": maximum, ":r": rate, ":one": 1, ":zero": 0}
                ),
            }
            if not throttled:
                update["ConditionExpression"] = "attribute_not_exists(#l)"
            try:
                dynamo.client().update_item(TableName=self.table, Key=self._key(), **update)
                self.known = True
                return
            except Exception as exc:
                if not _conditional_failed(exc):
                    raise
                self.known = True  # another worker made it first: this query's reservation is settled below
        if not refund:
            return
        try:
            dynamo.client().update_item(
                TableName=self.table,
                Key=self._key(),
                UpdateExpression="SET maximum = :m, rate = :r ADD #l :refund, v :one",
                ConditionExpression="attribute_exists(#l)",
                ExpressionAttributeNames={"#l": "level"},
                ExpressionAttributeValues=dynamo.to_item({":m": maximum, ":r": rate, ":refund": refund, ":one": 1}),
            )
        except Exception as exc:
            if not _conditional_failed(exc):
                raise
            self.known = False


class SystemGate:
    """The gate of one system (connection) as the settings say now: a ceiling set or changed in the
    settings applies from the next refresh, in every warm worker, without a restart.

    Every request holds one of the system's shared ``Seats`` (how many, learned from its answers
    and capped by a configured ``concurrent``; learned seats are taken only once the system has
    refused a request, see ``Seats.lazy``) and, with ``per_minute`` or ``per_second`` set, a
    token of the ``RateLimiter``. Each answer is told to the ``breaker`` when one is given: no answer (a
    timeout, a refused connection) or a 502/503/504 counts towards opening it, any other answer
    closes it, so a record that fails on a 500 of its own does not stop the others.
    """

    DOWN = (502, 503, 504)

    def __init__(self, table: str, system: str, breaker: Breaker | None = None) -> None:
        self.table, self.system, self.breaker = table, system, breaker
        self.limiter: RateLimiter | None = None
        self.seats = Seats(table, system, lazy=True)
        self.points = PointsBucket(table, system)
        """The system's query-cost bucket, for the clients of systems that charge points (Shopify)."""
        self.max_wait_s = 20.0
        self.linger_s = 30.0
        """How long a seat stays taken after a request got no answer (``abandoned``): the ERP may
        still be working on it, holding its licence seat (the settings' ``in_doubt_wait_s``)."""
        self._local = threading.local()
        self.observer: Callable[[int | None, float], None] | None = None
        """Told each answer (``answered``): its status (None: no answer) and the seconds the breaker
        opened for on it (0: it did not). The runtime counts requests and breaker trips with it."""

    def configure(self, per_minute: int | None, concurrent: int | None, per_second: int | None = None) -> None:
        """Apply the system's current ceilings (None: none)."""
        if per_minute is None and per_second is None:
            self.limiter = None
        elif self.limiter is None:
            self.limiter = RateLimiter(self.table, self.system, per_minute, per_second=per_second)
        else:
            self.limiter.per_minute, self.limiter.per_second = per_minute, per_second
        self.seats.configure(concurrent)

    @contextmanager
    def request(self, wait_s: float | None = None) -> Iterator[None]:
        """Hold a seat (and a minute token) for one request, waiting at most ``wait_s``
        (default ``max_wait_s``); ``LimitExceeded`` when none comes in time."""
        wait = self.max_wait_s if wait_s is None else min(wait_s, self.max_wait_s)
        give_up = time.monotonic() + wait
        self._local.abandoned = self._local.working = False
        seat = self.seats.take(wait)
        self._local.seat = seat
        try:
            if self.limiter is None:
                yield
            else:
                with self.limiter.request(max(0.0, give_up - time.monotonic())):
                    yield
        finally:
            self.seats.free(seat.index, self.linger_s if self._local.abandoned else 0.0)
        if self._local.working:  # an answer below 500, not a 429 (``answered``)
            self.seats.served(seat)

    def abandoned(self) -> None:
        """We gave up waiting for the answer (called inside ``request``): the seat stays taken for
        ``linger_s``, as the ERP's may."""
        self._local.abandoned = True

    def throttled(self, retry_after_s: float | None) -> None:
        """The system answered 429 (called inside ``request``): one seat fewer for everyone and,
        with a per-minute or per-second ceiling, every worker waits out ``Retry-After``."""
        self.seats.refused(getattr(self._local, "seat", None))
        if self.limiter is not None:
            self.limiter.throttled(retry_after_s)

    def answered(self, status: int | None) -> None:
        """How the system answered a request (None: it did not), for the breaker and the observer."""
        opened = 0.0
        self._local.working = status is not None and status < 500 and status != 429
        if status is None or (status >= 500 and status != 429):
            self.seats.trouble()
        if self.breaker is not None and status != 429:
            if status is None or status in self.DOWN:
                opened = self.breaker.failure(self.system)
            else:
                self.breaker.success(self.system)
        if self.observer is not None:
            self.observer(status, opened)
