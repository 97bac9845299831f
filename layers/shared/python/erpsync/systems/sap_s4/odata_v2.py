"""OData v2 as S/4HANA's A2X APIs write it (SYSTEMS-NOTES §4.6): the ``{"d": …}`` envelope, values
and filter literals. Nothing here does I/O.

- ``Edm.DateTime`` is ``"/Date(<ms since 1970 UTC>)/"``, ``Edm.DateTimeOffset``
  ``"/Date(<ms>+0000)/"`` (the offset in minutes; the ms are UTC either way), ``Edm.Time``
  ``"PT17H49M08S"``; ``Edm.Decimal`` is a JSON **string** (``"2656.24"``), read into a ``Decimal``
  exactly and written back from one without exponent or float; ``__count`` is a string too.
- An entity's etag (``__metadata.etag``, or the ``ETag`` header of a single read) is kept byte for
  byte: ``W/"datetimeoffset'2005-10-24T15%3A36%3A52.0000000Z'"`` goes back in ``If-Match`` as read.
- Filter literals: ``'O''Brien'`` (a quote doubled), ``datetime'2025-03-01T00:00:00'``,
  ``datetimeoffset'2025-03-01T00:00:00Z'``, ``12.50M``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DATE = re.compile(r"/Date\((-?\d+)(?:([+-])(\d{1,4}))?\)/")
_TIME = re.compile(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)(?:\.(\d{1,7}))?S)?")
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?")


class ODataValueError(ValueError):
    """A value is not in the OData v2 form its type needs."""


# -- values -------------------------------------------------------------------------------------


def parse_datetime(value: Any) -> datetime | None:
    """An ``Edm.DateTime``/``Edm.DateTimeOffset`` value as an aware datetime, exact to the ms.

    ``/Date(ms)/`` is UTC; ``/Date(ms+0060)/`` keeps its offset (minutes) on the same instant. An ISO
    text (some gateways answer it) is read too, a naive one as UTC. None and "" are None."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).strip()
    m = _DATE.fullmatch(text)
    if m:
        at = EPOCH + timedelta(milliseconds=int(m.group(1)))
        if m.group(2):
            minutes = int(m.group(3)) * (1 if m.group(2) == "+" else -1)
            at = at.astimezone(timezone(timedelta(minutes=minutes)))
        return at
    if _ISO.fullmatch(text):
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return at if at.tzinfo else at.replace(tzinfo=UTC)
    raise ODataValueError(f"not an OData date: {value!r}")


def _ms(at: datetime) -> int:
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    delta = at - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def format_datetime(at: datetime | date) -> str:
    """``Edm.DateTime`` for a request body: ``/Date(ms)/``; a date is its UTC midnight (what
    ``sap:display-format="Date"`` properties hold)."""
    if not isinstance(at, datetime):
        at = datetime.combine(at, time(), tzinfo=UTC)
    return f"/Date({_ms(at)})/"


def format_datetimeoffset(at: datetime) -> str:
    """``Edm.DateTimeOffset`` for a request body: ``/Date(ms+0000)/`` (the instant in UTC)."""
    return f"/Date({_ms(at)}+0000)/"


def parse_time(value: Any) -> time | None:
    """An ``Edm.Time`` (``PT17H49M08S``, fractions to 7 digits read to the microsecond) as a time."""
    if value is None or value == "":
        return None
    m = _TIME.fullmatch(str(value).strip())
    if not m or not any(m.groups()):
        raise ODataValueError(f"not an OData time: {value!r}")
    hours, minutes, seconds = (int(g or 0) for g in m.groups()[:3])
    micro = int((m.group(4) or "0").ljust(7, "0")[:6])
    if hours > 23 or minutes > 59 or seconds > 59:
        raise ODataValueError(f"not a time of day: {value!r}")
    return time(hours, minutes, seconds, micro)


def format_time(at: time) -> str:
    """``Edm.Time`` as S/4 writes it: ``PT08H05M09S`` (two digits each)."""
    return f"PT{at.hour:02d}H{at.minute:02d}M{at.second:02d}S"


def parse_decimal(value: Any) -> Decimal | None:
    """An ``Edm.Decimal`` (a string on the wire) as the Decimal it spells, digit for digit."""
    if value is None or value == "":
        return None
    if isinstance(value, float):
        raise ODataValueError(f"a decimal came as a float ({value!r}): its digits are not known")
    if isinstance(value, bool):
        raise ODataValueError(f"not a decimal: {value!r}")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ODataValueError(f"not a decimal: {value!r}") from None
    if not number.is_finite():
        raise ODataValueError(f"not a decimal: {value!r}")
    return number


def format_decimal(value: Decimal | int | str) -> str:
    """A Decimal for a request body: its own digits as a string, never a float or an exponent
    (``Decimal("12.50")`` -> ``"12.50"``, ``Decimal("1E+1")`` -> ``"10"``)."""
    if isinstance(value, float | bool):
        raise TypeError(f"money and quantities go as Decimal, not {type(value).__name__}: {value!r}")
    number = parse_decimal(value)
    if number is None:
        raise ODataValueError(f"not a decimal: {value!r}")
    return format(number, "f")


# -- filter literals ----------------------------------------------------------------------------


def literal(value: str | int | bool | Decimal | datetime | date | time) -> str:
    """``value`` as an OData v2 ``$filter`` literal: text quoted with ``'`` doubled, an aware
    datetime as ``datetimeoffset'…Z'``, a naive one or a date as ``datetime'…'``, a time of day as
    ``time'PT14H05M00S'``, a Decimal as ``…M``. The URL encoding (``#``, ``&``, ``+``) is the client's."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return format_decimal(value) + "M"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return f"datetime'{_iso(value)}'"
        return f"datetimeoffset'{_iso(value.astimezone(UTC).replace(tzinfo=None))}Z'"
    if isinstance(value, date):
        return f"datetime'{value.isoformat()}T00:00:00'"
    if isinstance(value, time):
        return f"time'{format_time(value)}'"
    raise TypeError(f"not a filter value: {value!r}")


def _iso(at: datetime) -> str:
    text = at.strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{at.microsecond:06d}".rstrip("0") if at.microsecond else "")


# -- the envelope -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Collection:
    rows: list[dict[str, Any]]
    next: str | None
    """``__next``: where the next page is (None: this was the last)."""
    count: int | None
    """``__count`` (asked with ``$inlinecount=allpages``), a string on the wire."""


def unwrap(body: Any) -> dict[str, Any]:
    """The object under ``d`` of an answer."""
    inner = body.get("d") if isinstance(body, dict) else None
    if not isinstance(inner, dict):
        raise ODataValueError("not an OData v2 answer (no 'd' object)")
    return inner


def collection(body: Any) -> Collection:
    """A collection answer: ``{"d": {"results": [...], "__next"?, "__count"?}}`` (an old-style
    ``{"d": [...]}`` is read too)."""
    inner = body.get("d") if isinstance(body, dict) else None
    if isinstance(inner, list):
        return Collection([r for r in inner if isinstance(r, dict)], None, None)
    if not isinstance(inner, dict) or not isinstance(inner.get("results"), list):
        raise ODataValueError("not an OData v2 collection (no d.results list)")
    count = inner.get("__count")
    return Collection(
        [r for r in inner["results"] if isinstance(r, dict)],
        str(inner["__next"]) if inner.get("__next") else None,
        int(count) if count not in (None, "") else None,
    )


def expanded(entity: dict[str, Any], nav: str) -> list[dict[str, Any]] | None:
    """An expanded navigation's entities (``{"results": [...]}`` or a bare list; a to-one nav as a
    one-item list); None when it was not expanded (``{"__deferred": …}`` or absent)."""
    value = entity.get(nav)
    if isinstance(value, list):
        return [r for r in value if isinstance(r, dict)]
    if not isinstance(value, dict) or "__deferred" in value:
        return None
    if isinstance(value.get("results"), list):
        return [r for r in value["results"] if isinstance(r, dict)]
    return [value]


def etag(entity: dict[str, Any], header: str | None = None) -> str | None:
    """The entity's etag exactly as written (``__metadata.etag``, else the ``ETag`` header)."""
    meta = entity.get("__metadata")
    if isinstance(meta, dict) and isinstance(meta.get("etag"), str):
        return str(meta["etag"])
    return header or None


def normalise_number(value: Any) -> str:
    """A document or item number without leading zeros (``"000010"`` -> ``"10"``, ``"0"`` stays):
    whether an A2X answer writes ALPHA zeros is UNVERIFIED, so both sides are compared this way.
    Text that is not all digits is kept as it is."""
    text = str(value if value is not None else "").strip()
    return (text.lstrip("0") or "0") if text.isdigit() else text
