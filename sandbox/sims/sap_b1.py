"""An SAP Business One Service Layer simulator, for tests and the local stack.

It speaks ``/b1s/v1`` (OData 3 JSON, what most B1 integrations use) from SAP's own v1 metadata
(``sap_b1_metadata/``, trimmed from SAP's ``$metadata``: see its SOURCES.md), and ``/b1s/v2`` as a
variant of the envelope and the errors only (records keep their v1 shapes there: UNVERIFIED).

- ``POST /b1s/v1/Login {"CompanyDB", "UserName", "Password"[, "Language"]}`` -> the recorded answer
  shape ``{"odata.metadata", "SessionId", "Version", "SessionTimeout"}`` and the cookies
  ``B1SESSION=<SessionId>`` and ``ROUTEID=.node1`` (both ``Path=/b1s``; the attributes are
  UNVERIFIED). Sessions slide: each request restarts the timeout (``session_timeout_min``, 30).
  ``POST Logout`` ends the session. Without a live session, or without ``ROUTEID`` when
  ``require_route_id`` (a load balancer that loses its stickiness: the exact symptom is UNVERIFIED),
  every call is 401 with SAP's recorded body, code 301.
- ``GET $metadata``; ``Orders``, ``DeliveryNotes``, ``Invoices``, ``CreditNotes``, ``Returns``,
  ``ReturnRequest``, ``DownPayments`` (type ``Document``), ``IncomingPayments`` (``Payment``),
  ``BusinessPartners`` and ``Items``: ``POST`` creates (201 with the record, or 204 with
  ``Prefer: return-no-content``), ``GET`` lists or reads by key (``Orders(123)``,
  ``BusinessPartners('C001')``), ``PATCH`` updates (204; collection rows merge by their key:
  ``LineNum``, ``ExpenseCode``, ``PriceList``, ``WarehouseCode``, ``AddressName`` and
  ``AddressType``, a contact's ``InternalCode``; other rows are appended;
  ``B1S-ReplaceCollectionsOnPatch: true`` replaces the collections sent), ``DELETE`` removes a
  business partner or an item no document names (documents cannot be deleted: -5006).
- Lists: ``$filter`` (``eq ne gt ge lt le``, ``and``, ``or``, parentheses; literals ``'text'``
  (``''`` escapes a quote), numbers, ``null``; a date ``'2025-03-01'`` or a time
  ``'14:05:00'`` compared as such against ``Edm.DateTime``/``Edm.Time`` properties; string
  comparisons case-sensitive unless ``B1S-CaseInsensitive: true``; functions are not supported and,
  as a real Service Layer answers for ``toupper``, are named as invalid properties), ``$select``,
  ``$orderby`` (several keys, ``asc``/``desc``), ``$top``, ``$skip``, ``$inlinecount=allpages``
  (``odata.count``). Pages of ``Prefer: odata.maxpagesize`` rows (20 by default) end with
  ``"odata.nextLink": "Orders?<the same options>&$skip=<n>"``, relative to ``/b1s/v1/``.
- Every request body is checked against the metadata: a property the type does not declare, a
  wrong type or a read-only property is refused with 400, code -1000 and, for an unknown one,
  ``Property 'X' of 'Document' is invalid`` (the text public clients record; the code is theirs too).
- Business rules: a document needs an existing ``CardCode`` and lines with existing ``ItemCode`` and
  a positive ``Quantity`` (an unknown code is -2028, as public clients record), an order a
  ``DocDueDate``; ``TaxCode`` must be seeded. ``LineTotal`` = Quantity x Price (``UnitPrice`` less
  the line's ``DiscountPercent``; without a price, the item's price in the partner's price list),
  ``TaxTotal`` per line rounded to the cent, ``VatSum``, ``TotalDiscount`` (header
  ``DiscountPercent``) and ``DocTotal`` are the sim's own sums; ``DocumentAdditionalExpenses``
  (freight) rows need a seeded ``ExpenseCode`` and add their ``LineTotal`` (and the tax of their
  ``TaxCode``) to ``DocTotal``. An order commits its quantities in the item's warehouse rows
  (``Committed``). A partner's contacts get an ``InternalCode``.
- The warehouse's and the accountant's day: ``POST DeliveryNotes`` with lines ``{"BaseType": 17,
  "BaseEntry": <order DocEntry>, "BaseLine": <order LineNum>[, "Quantity"]}`` (and the header's
  ``TrackingNumber``), ``POST Invoices`` with lines based on a delivery (``BaseType`` 15) or an order
  (17). A based line must name a line of an open document of the same partner, with its item, for no
  more than its ``RemainingOpenQuantity`` (all of it when ``Quantity`` is left out); it takes the
  base line's item, price, discount, tax code and warehouse unless it names its own. Posting takes
  its quantity off the base line's ``RemainingOpenQuantity``, closes a line with nothing left
  (``LineStatus`` ``bost_Close``) and a document whose lines all closed (``DocumentStatus``), stamps
  the base document, and, for an order's lines, takes the quantity out of the warehouse row's
  ``Committed`` and ``InStock``.
- A paid web order: ``POST DownPayments`` (an A/R down payment invoice, ``DownPaymentType``
  ``dptInvoice`` by default) with lines based on the order's (``BaseType`` 17, checked as above but
  drawing nothing: the order stays open for its delivery) and a ``DownPaymentAmount`` (its
  ``DocTotal``; positive, no more than the base orders' totals) or ``DownPaymentPercentage``;
  ``POST IncomingPayments`` with ``PaymentInvoices [{"DocEntry", "SumApplied", "InvoiceType":
  "it_DownPayment"}]``: each row names an open down payment of the payment's partner, for no more
  than is open on it (its total less the payments applied before: v1 has no ``PaidToDate``), and
  the rows are no more than the payment received (``CashSum``, ``TransferSum``, which needs a
  ``TransferAccount``, credit cards, checks); each refusal is -5002 naming the row, and nothing is
  applied. Applying stamps the down payment and closes it once nothing is open.
- The invoice of a prepaid order draws its down payment: ``POST Invoices`` with
  ``DownPaymentsToDraw [{"DocEntry": <down payment>, "AmountToDraw"}]`` (left out: all it holds, up
  to the invoice's total). A row names a down payment of the invoice's partner, not cancelled, for
  no more than it holds (what was paid on it less what invoices drew before) and the rows no more
  than the invoice's total (-5002 naming the row; nothing drawn). The invoice's
  ``DownPaymentAmount`` is what it drew and its ``DocTotal`` what is still to pay (UNVERIFIED: how
  B1 splits the two).
- ``POST Orders(<DocEntry>)/Cancel`` (the v1 bound FunctionImport ``Cancel``; 204): an open order
  no later document drew from is cancelled (``Cancelled`` tYES, closed, its committed stock
  released, stamped); a cancelled or closed one, or one with deliveries or invoices, is refused
  with -5002 (texts UNVERIFIED).
- Returns: ``POST ReturnRequest`` (the return the merchant agreed to, lines of their own; it moves
  no stock), then the warehouse's ``POST Returns`` with lines based on the request's
  (``BaseType`` 234000031, checked and drawn as above), which puts the quantities back in stock.
- ``POST CreditNotes`` with lines based on an invoice's (``BaseType`` 13, checked and drawn as a
  delivery's lines are from an order) or on none; it moves no stock (B1 takes the items back into
  the warehouse: not simulated).
- Not simulated yet (501): other bases (a return of a delivery, quotations ...), other documents' ``Cancel``, down
  payments drawn by anything but an invoice, and payments applied to other documents
  (``it_Invoice``, the default ``InvoiceType``, ...). Other bound actions (``Close``, ``Reopen``,
  ``CreateCancellationDocument``) answer SAP's recorded -5006 "not supported".
- Every write stamps ``UpdateDate``/``UpdateTime`` in the configured server-local ``timezone``, to
  the second; documents get ``CreationDate``; a created business partner or item gets
  ``CreateDate``/``CreateTime`` and keeps ``UpdateDate`` null unless ``stamp_update_on_create``
  (SAP does not always set it on create: SYSTEMS-NOTES §3.5).
- Errors are SAP's v1 envelope ``{"error": {"code": <int>, "message": {"lang": "en-us", "value"}}}``
  (on ``/b1s/v2``: ``{"error": {"code": "<text>", "message": "<text>"}}``, UNVERIFIED). The codes
  and texts SAP records are used where they fit (301 session, -5006, -10 already exists); the
  others (-1000, -2028, -5002 and the texts the sim writes) are UNVERIFIED.

Control (besides the shared ``/_sim/`` API of sandbox/sims/control.py):

- ``POST /_sim/seed {"business_partners": [...], "items": [...], "tax_codes": {"T1": 7.5},
  "expense_codes": [1, 2], "orders": [...]}``: records as for a ``POST``, which may also carry the
  read-only stamps (``CreateDate``, ``UpdateDate``, ``UpdateTime``, ...), an order's ``DocEntry``,
  ``DocumentStatus`` and ``Cancelled``, and warehouse quantities (``InStock``, ``Committed``,
  ``Ordered``);
- ``GET|POST /_sim/config`` (``timezone``, ``session_timeout_min``, ``require_route_id``,
  ``stamp_update_on_create``, ``default_page_size``); ``POST /_sim/sessions/expire`` ends every
  session now; ``GET /_sim/sessions`` counts live sessions and logins.

``app.state.sim`` is the ``SapB1Sim`` (thread-safe); its ``now`` (a UTC clock) may be replaced.
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import cache, partial
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.applications import Starlette
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.sims.control import SimControl
from sandbox.sims.edmx import INTEGERS, NUMBERS, Metadata, Prop, StructuredType, parse_date, parse_time

JSON = dict[str, Any]
Dialect = Literal["v1", "v2"]
METADATA_FILE = Path(__file__).resolve().parent / "sap_b1_metadata" / "service-layer-metadata-v1-trimmed.xml"
COMPANY_DB, USERNAME, PASSWORD = "SBODEMOUS", "manager", "1234"
SESSION_COOKIE, ROUTE_COOKIE, ROUTE_ID = "B1SESSION", "ROUTEID", ".node1"
SL_VERSION = "1000110"
"""The ``Version`` of SAP's recorded Login answer."""
CENT = Decimal("0.01")
DOCUMENT_SETS = {
    "Orders": "oOrders",
    "DeliveryNotes": "oDeliveryNotes",
    "Invoices": "oInvoices",
    "CreditNotes": "oCreditNotes",
    "Returns": "oReturns",
    "ReturnRequest": "oReturnRequest",
    "DownPayments": "oDownPayments",
}
SETS = (*DOCUMENT_SETS, "IncomingPayments", "BusinessPartners", "Items")
LINE_KEYS: dict[str, tuple[str, ...]] = {
    "DocumentLine": ("LineNum",),
    "DocumentAdditionalExpense": ("ExpenseCode",),
    "ItemPrice": ("PriceList",),
    "ItemWarehouseInfo": ("WarehouseCode",),
    "BPAddress": ("AddressName", "AddressType"),
    "ContactEmployee": ("InternalCode",),
}
"""The fields a collection's rows are matched by when a PATCH merges them (others are appended)."""
DEFAULTED = {
    "Document": ("DocType", "DocumentStatus", "Cancelled"),
    "DocumentLine": ("BaseType",),
    "BusinessPartner": ("CardType", "Valid", "Frozen"),
    "Item": ("ItemType", "InventoryItem", "SalesItem", "PurchaseItem", "Valid", "Frozen"),
    "ItemWarehouseInfo": ("Locked",),
}
"""Properties a create fills from the metadata's ``DefaultValue`` when the body leaves them out."""
STOCK_FIELDS = ("InStock", "Committed", "Ordered")
RETURN_REQUEST = 234000031
"""``BoObjectTypes`` ``oReturnRequest``."""
BASES: dict[str, dict[int, str]] = {
    "DeliveryNotes": {17: "Orders"},
    "Invoices": {17: "Orders", 15: "DeliveryNotes"},
    "DownPayments": {17: "Orders"},
    "CreditNotes": {13: "Invoices"},
    "Returns": {RETURN_REQUEST: "ReturnRequest"},
}
"""The documents a set's lines may be based on (``BaseType``: 17 an order, 15 a delivery, 13 an
invoice, 234000031 a return request: ``BoObjectTypes.oReturnRequest``, UNVERIFIED as a base type)."""
DRAWS_NOTHING = frozenset({"DownPayments"})
"""Sets whose based lines take nothing off their base lines: a down payment invoice leaves its order
open for delivery (UNVERIFIED: what B1 does with the order's open quantities)."""
COPIED_FROM_BASE = ("ItemCode", "UnitPrice", "DiscountPercent", "TaxCode", "WarehouseCode", "FreeText")
"""What a based line takes from its base line when the request leaves it out (as B1 copies it)."""
STAMPS = ("CreationDate", "CreateDate", "CreateTime", "UpdateDate", "UpdateTime")
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


class SlError(Exception):
    """Ends a request with ``status`` and a Service Layer error (``code``, ``message``)."""

    def __init__(self, status: int, code: int, message: str, inner: bool = False) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.inner = status, code, message, inner


def error_body(code: int, message: str, dialect: Dialect = "v1", inner: bool = False) -> JSON:
    """The Service Layer's error envelope."""
    if dialect == "v2":
        return {"error": {"code": str(code), "message": message}}
    error: JSON = {"code": code, "message": {"lang": "en-us", "value": message}}
    if inner:
        error["innererror"] = {"context": None, "trace": None}  # as SAP's -10 and -2028 recordings carry
    return {"error": error}


def session_error() -> SlError:
    return SlError(401, 301, "Invalid session or session already timeout.")  # SAP's recorded answer


def not_found(status: int = 404) -> SlError:
    """-2028: 404 for a key read; 400 for a write naming a partner or an item that does not exist."""
    return SlError(status, -2028, "No matching records found (ODBC -2028)")


def invalid_property(name: str, type_name: str) -> SlError:
    return SlError(400, -1000, f"Property '{name}' of '{type_name}' is invalid")


def refused(message: str) -> SlError:
    return SlError(400, -5002, message)


def not_supported() -> SlError:
    return SlError(400, -5006, "The requested action is not supported for this object.")  # SAP's recorded text


def not_simulated(what: str) -> SlError:
    return SlError(501, -1, f"not simulated yet: {what}")


class SimConfig(BaseModel):
    """``/_sim/config``."""

    model_config = ConfigDict(extra="forbid")

    timezone: str = "UTC"
    """The database server's zone: ``UpdateDate``/``UpdateTime`` are its local time."""
    session_timeout_min: int = Field(30, ge=1)
    require_route_id: bool = True
    stamp_update_on_create: bool = False
    default_page_size: int = Field(20, ge=1)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, ROUND_HALF_UP)


def _dec(value: Any) -> Decimal:
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise SlError(400, -1000, f"{value!r} is not a number") from exc


# ----------------------------------------------------------------------------------------------
# $filter, $orderby, $select
# ----------------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>'(?:[^']|'')*')
    | (?P<number>-?\d+(?:\.\d+)?)(?![\w.])
    | (?P<punct>[()])
    | (?P<word>[A-Za-z_][\w./]*)
    )""",
    re.VERBOSE,
)
_COMPARE = frozenset({"eq", "ne", "gt", "ge", "lt", "le"})
Predicate = Callable[[JSON], bool]


@dataclass
class _Filter:
    """A recursive-descent ``$filter`` compiler for one entity type."""

    meta: Metadata
    type: StructuredType
    case_insensitive: bool
    tokens: list[tuple[str, str]]
    i: int = 0

    @classmethod
    def compile(cls, meta: Metadata, t: StructuredType, text: str, case_insensitive: bool) -> Predicate:
        tokens: list[tuple[str, str]] = []
        pos, text = 0, text.strip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None or m.end() == pos:
                raise SlError(400, -1000, f"Invalid $filter at position {pos}: {text[pos : pos + 20]!r}")
            kind = m.lastgroup or ""
            tokens.append((kind, m.group(kind)))
            pos = m.end()
        parser = cls(meta, t, case_insensitive, tokens)
        predicate = parser.or_expr()
        if parser.i < len(tokens):
            raise SlError(400, -1000, f"Invalid $filter: unexpected {tokens[parser.i][1]!r}")
        return predicate

    def _peek_word(self, word: str) -> bool:
        return self.i < len(self.tokens) and self.tokens[self.i] == ("word", word)

    def _take(self) -> tuple[str, str]:
        if self.i >= len(self.tokens):
            raise SlError(400, -1000, "Invalid $filter: it ends too early")
        self.i += 1
        return self.tokens[self.i - 1]

    def or_expr(self) -> Predicate:
        left = self.and_expr()
        while self._peek_word("or"):
            self.i += 1
            left = _either(left, self.and_expr())
        return left

    def and_expr(self) -> Predicate:
        left = self.atom()
        while self._peek_word("and"):
            self.i += 1
            left = _both(left, self.atom())
        return left

    def atom(self) -> Predicate:
        kind, text = self._take()
        if (kind, text) == ("punct", "("):
            inner = self.or_expr()
            if self._take() != ("punct", ")"):
                raise SlError(400, -1000, "Invalid $filter: a parenthesis is not closed")
            return inner
        if kind != "word" or text in _COMPARE or text in ("and", "or"):
            raise SlError(400, -1000, f"Invalid $filter: expected a property, got {text!r}")
        prop = self.type.props.get(text)
        if prop is None or prop.collection or self.meta.structured(prop) is not None:
            raise invalid_property(text, self.type.name)  # also what SAP answers for toupper(...)
        op_kind, op = self._take()
        if op_kind != "word" or op not in _COMPARE:
            raise SlError(400, -1000, f"Invalid $filter: expected an operator after {text}, got {op!r}")
        lit_kind, lit = self._take()
        if lit_kind not in ("string", "number", "word"):
            raise SlError(400, -1000, f"Invalid $filter: expected a value after {text} {op}, got {lit!r}")
        bound = self._literal(prop, lit_kind, lit)

        def test(record: JSON) -> bool:
            return _compare(op, self._cell(prop, record.get(prop.name)), bound)

        return test

    def _literal(self, prop: Prop, kind: str, text: str) -> Any:
        if kind == "word":
            if text == "null":
                return None
            if text in ("true", "false") and prop.type == "Edm.Boolean":
                return text == "true"
            raise SlError(400, -1000, f"Invalid $filter value {text!r} for property '{prop.name}'")
        raw = text[1:-1].replace("''", "'") if kind == "string" else text
        value = self._cell(prop, raw)
        if value is None:
            raise SlError(400, -1000, f"Invalid $filter value {text!r} for property '{prop.name}'")
        return value

    def _cell(self, prop: Prop, raw: Any) -> Any:
        """A record's or a literal's value as it compares (None: null or not a value of the type)."""
        if raw is None:
            return None
        enum = self.meta.enum(prop)
        if enum is not None:
            text = str(raw)
            return next((name for name, db in enum.members.items() if text in (name, db)), None)
        if prop.type == "Edm.DateTime":
            return parse_date(str(raw))
        if prop.type == "Edm.Time":
            return parse_time(str(raw))
        if prop.type in INTEGERS or prop.type in NUMBERS:
            try:
                return Decimal(str(raw))
            except InvalidOperation:
                return None
        if prop.type == "Edm.Boolean":
            return raw if isinstance(raw, bool) else None
        return str(raw).casefold() if self.case_insensitive else str(raw)


def _either(a: Predicate, b: Predicate) -> Predicate:
    return lambda record: a(record) or b(record)


def _both(a: Predicate, b: Predicate) -> Predicate:
    return lambda record: a(record) and b(record)


def _compare(op: str, a: Any, b: Any) -> bool:
    if op == "eq":
        return bool(a == b)
    if op == "ne":
        return bool(a != b)
    if a is None or b is None:
        return False
    if op == "gt":
        return bool(a > b)
    if op == "ge":
        return bool(a >= b)
    if op == "lt":
        return bool(a < b)
    return bool(a <= b)


def _sort_value(prop: Prop, record: JSON) -> tuple[int, Any]:
    """Nulls first, then by the value as its type compares."""
    value = record.get(prop.name)
    if value is None:
        return (0, "")
    if prop.type == "Edm.DateTime":
        return (1, parse_date(str(value)) or date.min)
    if prop.type == "Edm.Time":
        return (1, parse_time(str(value)) or time.min)
    if prop.type in INTEGERS or prop.type in NUMBERS:
        return (1, Decimal(str(value)))
    return (1, str(value))


@cache
def default_metadata() -> Metadata:
    """SAP's v1 metadata as the sim serves it, read once per process (it is never changed)."""
    return Metadata.load(METADATA_FILE)


# ----------------------------------------------------------------------------------------------
# The company
# ----------------------------------------------------------------------------------------------


class SapB1Sim:
    """One company database behind a Service Layer: sessions, records and the rules on them."""

    def __init__(self, metadata: Metadata | None = None) -> None:
        self.meta = metadata or default_metadata()
        self.lock = threading.RLock()
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.reset()

    def reset(self) -> None:
        """Forget every record, session and setting."""
        with self.lock:
            self.config = SimConfig()
            self.sessions: dict[str, datetime] = {}
            self.logins = 0
            self.records: dict[str, dict[Any, JSON]] = {name: {} for name in SETS}
            self.next_entry: dict[str, int] = dict.fromkeys(SETS, 1)
            self.next_number: dict[str, int] = dict.fromkeys(SETS, 1001)
            self.tax_codes: dict[str, Decimal] = {}
            self.expense_codes: set[int] = set()
            self.next_contact = 1
            self.applied: dict[int, Decimal] = {}
            """What incoming payments applied to each down payment (``DocEntry``): v1 has no
            ``PaidToDate`` to keep it on the document."""
            self.drawn: dict[int, Decimal] = {}
            """What invoices drew of each down payment (``DownPaymentsToDraw``)."""

    # -- sessions ------------------------------------------------------------------------------

    def login(self, body: Any) -> tuple[str, int]:
        """A new session for SAP's Login parameters: its id and timeout in minutes."""
        problems = self.meta.check_parameters("Login", body)
        if problems:
            raise SlError(400, -1000, "; ".join(problems))
        if (body.get("CompanyDB"), body.get("UserName"), body.get("Password")) != (COMPANY_DB, USERNAME, PASSWORD):
            raise SlError(401, 100000027, "Login failed")  # code and text UNVERIFIED
        sid = "-".join("".join(secrets.choice(_ALNUM) for _ in range(n)) for n in (8, 4, 4, 4, 12))
        with self.lock:
            self.sessions[sid] = self.now()
            self.logins += 1
            return sid, self.config.session_timeout_min

    def logout(self, sid: str) -> None:
        with self.lock:
            self.sessions.pop(sid, None)

    def authorise(self, sid: str | None, route: str | None) -> str:
        """The live session ``sid`` (its timeout restarted), or the 401 SAP answers."""
        with self.lock:
            if self.config.require_route_id and route != ROUTE_ID:
                raise session_error()
            seen = self.sessions.get(sid or "")
            now = self.now()
            if sid is None or seen is None:
                raise session_error()
            if now - seen > timedelta(minutes=self.config.session_timeout_min):
                del self.sessions[sid]
                raise session_error()
            self.sessions[sid] = now
            return sid

    def expire_sessions(self) -> int:
        with self.lock:
            n = len(self.sessions)
            self.sessions.clear()
            return n

    # -- reading -------------------------------------------------------------------------------

    def key_of(self, entity_set: str, literal: str) -> Any:
        """The key a path's ``(...)`` names: ``123`` for an integer key, ``'C''1'`` for a string one."""
        t = self.meta.entity_type(entity_set)
        prop = t.props[t.keys[0]]
        if prop.type in INTEGERS:
            if not re.fullmatch(r"-?\d+", literal):
                raise SlError(400, -1000, f"Invalid key {literal!r}: {entity_set} has an integer key")
            return int(literal)
        if not re.fullmatch(r"'(?:[^']|'')*'", literal):
            raise SlError(400, -1000, f"Invalid key {literal!r}: {entity_set} has a quoted string key")
        return literal[1:-1].replace("''", "'")

    def get(self, entity_set: str, key: Any) -> JSON:
        with self.lock:
            record = self.records[entity_set].get(key)
            if record is None:
                raise not_found()
            return copy.deepcopy(record)

    def query(self, entity_set: str, params: dict[str, str], case_insensitive: bool) -> list[JSON]:
        """Every record matching ``$filter``, in ``$orderby`` order (key order without one)."""
        t = self.meta.entity_type(entity_set)
        predicate = _Filter.compile(self.meta, t, params["$filter"], case_insensitive) if "$filter" in params else None
        order = _order_by(self.meta, t, params.get("$orderby"))
        with self.lock:
            rows = [copy.deepcopy(r) for k, r in sorted(self.records[entity_set].items())]
        if predicate is not None:
            rows = [r for r in rows if predicate(r)]
        for prop, descending in reversed(order):
            rows.sort(key=partial(_sort_value, prop), reverse=descending)
        return rows

    # -- writing -------------------------------------------------------------------------------

    def stamp(self) -> tuple[str, str]:
        """Today and the time now on the database server's clock (second resolution)."""
        local = self.now().astimezone(ZoneInfo(self.config.timezone))
        return local.date().isoformat(), local.strftime("%H:%M:%S")

    def create(self, entity_set: str, body: Any, *, seeding: bool = False) -> JSON:
        t = self.meta.entity_type(entity_set)
        kept: JSON = {}
        if seeding and isinstance(body, dict):
            body = copy.deepcopy(body)
            kept = {k: body.pop(k) for k in (*STAMPS, "DocEntry", "DocumentStatus", "Cancelled") if k in body}
            for row in body.get("ItemWarehouseInfoCollection") or []:
                if isinstance(row, dict):
                    row["_stock"] = {k: row.pop(k) for k in STOCK_FIELDS if k in row}
        self._check(t, body, "create", skip={"_stock"} if seeding else set())
        record = self._normalised(t, body)
        with self.lock:
            entry = kept.pop("DocEntry", None)
            if entry is not None:  # a seeded document keeps its DocEntry (the next ones follow it)
                if entry in self.records[entity_set]:
                    raise refused(f"DocEntry {entry} is taken")
                following, self.next_entry[entity_set] = self.next_entry[entity_set], int(entry)
            try:
                if entity_set in DOCUMENT_SETS:
                    self._new_document(entity_set, record)
                elif entity_set == "BusinessPartners":
                    self._new_partner(record)
                elif entity_set == "Items":
                    self._new_item(record)
                else:
                    self._new_payment(record)
            except SlError:
                if entry is not None:
                    self.next_entry[entity_set] = following
                raise
            if entry is not None:
                self.next_entry[entity_set] = max(following, self.next_entry[entity_set])
            record.update(kept)
            key = record[t.keys[0]]
            self.records[entity_set][key] = record
            if entity_set == "Orders":
                self._commit(record, +1)
            self._draw(record)
            self._apply_draws(record)
            if entity_set == "IncomingPayments":
                self._apply_payment(record)
            return copy.deepcopy(record)

    def update(self, entity_set: str, key: Any, body: Any, replace_collections: bool) -> None:
        t = self.meta.entity_type(entity_set)
        self._check(t, body, "update")
        changes = self._normalised(t, body)
        with self.lock:
            current = self.records[entity_set].get(key)
            if current is None:
                raise not_found()
            key_name = t.keys[0]
            if key_name in changes and changes[key_name] != key:
                raise refused(f"{key_name} cannot be changed")
            updated = copy.deepcopy(current)
            _merge(self.meta, t, updated, changes, replace_collections)
            if entity_set in DOCUMENT_SETS:
                if current.get("Cancelled") == "tYES" or current.get("DocumentStatus") != "bost_Open":
                    raise refused(f"Document {key} is closed or cancelled and cannot be changed")
                if any(ln.get("BaseType") not in (None, -1) for ln in changes.get("DocumentLines") or []):
                    raise not_simulated("based lines (BaseType) sent in a PATCH")
                if "DownPaymentsToDraw" in changes:
                    raise not_simulated("down payments drawn by a PATCH (DownPaymentsToDraw)")
                drawn = {
                    ln["LineNum"]: _dec(ln.get("Quantity")) - _dec(ln.get("RemainingOpenQuantity"))
                    for ln in current.get("DocumentLines") or []
                }
                if replace_collections and "DocumentLines" in changes and any(drawn.values()):
                    raise refused(f"Document {key} has lines later documents drew from: they cannot be replaced")
                drawn = {} if replace_collections and "DocumentLines" in changes else drawn
                self._price_document(entity_set, updated, delivered=drawn)
                if current.get("DownPaymentsToDraw"):  # still less what it drew
                    updated["DocTotal"] = float(_dec(updated["DocTotal"]) - _dec(current.get("DownPaymentAmount") or 0))
            elif entity_set == "Items":
                self._complete_rows(updated)
            elif entity_set == "BusinessPartners":
                self._complete_partner(updated)
            if entity_set == "Orders":
                self._commit(current, -1)
                self._commit(updated, +1)
            updated["UpdateDate"], updated["UpdateTime"] = self.stamp()
            self.records[entity_set][key] = updated

    def delete(self, entity_set: str, key: Any) -> None:
        with self.lock:
            record = self.records[entity_set].get(key)
            if record is None:
                raise not_found()
            if entity_set not in ("BusinessPartners", "Items"):
                raise not_supported()
            for name in DOCUMENT_SETS:
                for doc in self.records[name].values():
                    if (entity_set == "BusinessPartners" and doc.get("CardCode") == key) or (
                        entity_set == "Items"
                        and any(ln.get("ItemCode") == key for ln in doc.get("DocumentLines") or [])
                    ):
                        raise refused(f"{key} is used in {name} {doc['DocEntry']} and cannot be removed")
            del self.records[entity_set][key]

    def _check(
        self, t: StructuredType, body: Any, op: Literal["create", "update"], skip: set[str] | None = None
    ) -> None:
        problems = [p for p in self.meta.check_request(t.name, body, op) if not any(f".{s}:" in p for s in skip or ())]
        if not problems:
            return
        unknown = re.search(r"\.(\w+): not a property of (\w+)$", problems[0])
        if len(problems) == 1 and unknown:
            raise invalid_property(unknown.group(1), unknown.group(2))
        raise SlError(400, -1000, "; ".join(problems))

    def _normalised(self, t: StructuredType, body: JSON) -> JSON:
        """``body`` with numeric texts as numbers and enum database values as member names."""
        out: JSON = {}
        for key, value in body.items():
            prop = t.props.get(key)
            out[key] = value if prop is None or value is None else self._value(prop, value)
        return out

    def _value(self, prop: Prop, value: Any) -> Any:
        if prop.collection and isinstance(value, list):
            return [self._one(prop, v) for v in value]
        return self._one(prop, value)

    def _one(self, prop: Prop, value: Any) -> Any:
        structured = self.meta.structured(prop)
        if structured is not None and isinstance(value, dict):
            return self._normalised(structured, value)
        enum = self.meta.enum(prop)
        if enum is not None:
            return next((name for name, db in enum.members.items() if value in (name, db)), value)
        if prop.type in INTEGERS and isinstance(value, str):
            return int(value)
        if prop.type in NUMBERS and isinstance(value, str | int):
            return float(Decimal(str(value)))
        return value

    def _defaults(self, type_name: str, record: JSON) -> None:
        t = self.meta.types[type_name]
        for name in DEFAULTED.get(type_name, ()):
            prop = t.props[name]
            if record.get(name) is None and prop.default is not None:
                record[name] = self._one(prop, int(prop.default) if prop.type in INTEGERS else prop.default)

    def _new_partner(self, record: JSON) -> None:
        code = record.get("CardCode")
        if not code:
            raise refused("Enter a business partner code (CardCode)")
        if code in self.records["BusinessPartners"]:
            raise SlError(400, -10, f"Business partner code '{code}' already exists", inner=True)
        self._defaults("BusinessPartner", record)
        self._complete_partner(record)
        self._created(record)

    def _complete_partner(self, partner: JSON) -> None:
        """Contacts numbered (``InternalCode``) and every row with the partner's code."""
        for contact in partner.setdefault("ContactEmployees", []):
            if contact.get("InternalCode") is None:
                contact["InternalCode"] = self.next_contact
                self.next_contact += 1
            contact["CardCode"] = partner["CardCode"]
        for address in partner.setdefault("BPAddresses", []):
            if not address.get("AddressName"):
                raise refused("Enter an address name (BPAddresses.AddressName)")
            address.setdefault("AddressType", "bo_BillTo")
            address["BPCode"] = partner["CardCode"]

    def _new_item(self, record: JSON) -> None:
        code = record.get("ItemCode")
        if not code:
            raise refused("Enter an item code (ItemCode)")
        if code in self.records["Items"]:
            raise SlError(400, -10, f"Item code '{code}' already exists", inner=True)  # SAP's recorded answer
        self._defaults("Item", record)
        for row in record.setdefault("ItemWarehouseInfoCollection", []):
            stock = row.pop("_stock", {})
            row.update({k: float(_dec(stock.get(k, 0))) for k in STOCK_FIELDS}, ItemCode=code)
        record.setdefault("ItemPrices", [])
        self._complete_rows(record)
        self._created(record)

    def _complete_rows(self, item: JSON) -> None:
        """Every warehouse row with its item code, quantities and defaults; the item's totals."""
        for row in item.get("ItemWarehouseInfoCollection") or []:
            if not row.get("WarehouseCode"):
                raise refused("Enter a warehouse code (ItemWarehouseInfoCollection.WarehouseCode)")
            row["ItemCode"] = item["ItemCode"]
            for name in STOCK_FIELDS:
                row.setdefault(name, 0.0)
            self._defaults("ItemWarehouseInfo", row)
        _sum_stock(item)

    def _created(self, record: JSON) -> None:
        day, clock = self.stamp()
        record["CreateDate"], record["CreateTime"] = day, clock
        stamped = self.config.stamp_update_on_create
        record["UpdateDate"], record["UpdateTime"] = (day, clock) if stamped else (None, None)

    def _new_payment(self, record: JSON) -> None:
        record.setdefault("DocType", "rCustomer")  # B1's default; the metadata declares none
        code = record.get("CardCode")
        if record.get("DocType") == "rCustomer":
            if not code:
                raise refused("Enter a business partner code (CardCode)")
            partner = self.records["BusinessPartners"].get(code)
            if partner is None:
                raise not_found(400)
            record.setdefault("CardName", partner.get("CardName"))
        if _dec(record.get("TransferSum") or 0) > 0 and not record.get("TransferAccount"):
            raise refused("Enter a transfer account (TransferAccount)")
        self._check_applied(record)
        for i, row in enumerate(record.get("CashFlowAssignments") or []):
            row["CashFlowAssignmentsID"] = i + 1
        record["DocEntry"] = self._next_entry("IncomingPayments")
        record["DocNum"] = record.get("DocNum") or self._next_number("IncomingPayments")
        record.setdefault("DocDate", self.stamp()[0])
        record["Cancelled"] = "tNO"

    def _check_applied(self, payment: JSON) -> None:
        """``PaymentInvoices`` rows checked: each names an open A/R down payment invoice of the
        payment's partner (``it_DownPayment``; other document types are not simulated) for a
        positive ``SumApplied`` no larger than what is open on it, and the rows together are no
        more than the payment received (cash, transfer, credit cards, checks)."""
        applying: dict[int, Decimal] = {}
        for i, row in enumerate(payment.get("PaymentInvoices") or []):
            kind = row.get("InvoiceType") or "it_Invoice"  # the metadata's default, 13
            if kind != "it_DownPayment":
                raise not_simulated(f"IncomingPayments applied to {kind} (PaymentInvoices.InvoiceType)")
            entry = row.get("DocEntry")
            doc = self.records["DownPayments"].get(entry)
            if doc is None:
                raise SlError(
                    400, -2028, f"No matching records found (ODBC -2028) [DownPayments {entry}, PaymentInvoices: {i}]"
                )
            if doc.get("CardCode") != payment.get("CardCode"):
                raise refused(
                    f"DownPayments {entry} belongs to business partner {doc.get('CardCode')} [PaymentInvoices: {i}]"
                )
            if doc.get("Cancelled") == "tYES" or doc.get("DocumentStatus") != "bost_Open":
                raise refused(f"DownPayments {entry} is closed or cancelled [PaymentInvoices: {i}]")
            amount = _dec(row.get("SumApplied") or 0)
            if amount <= 0:
                raise refused(f"SumApplied must be greater than zero [PaymentInvoices: {i}]")
            applying[entry] = applying.get(entry, Decimal(0)) + amount
            open_amount = _dec(doc["DocTotal"]) - self.applied.get(entry, Decimal(0))
            if applying[entry] > open_amount:
                raise refused(
                    f"SumApplied {_cents(applying[entry])} is more than the {_cents(open_amount)} open on "
                    f"DownPayments {entry} [PaymentInvoices: {i}]"
                )
            row.update(LineNum=i, InvoiceType=kind)
        received = _dec(payment.get("CashSum") or 0) + _dec(payment.get("TransferSum") or 0)
        received += sum((_dec(r.get("CreditSum") or 0) for r in payment.get("PaymentCreditCards") or []), Decimal(0))
        received += sum((_dec(r.get("CheckSum") or 0) for r in payment.get("PaymentChecks") or []), Decimal(0))
        total = sum(applying.values(), Decimal(0))
        if total > received:
            raise refused(
                f"The payment's total {_cents(received)} is less than the {_cents(total)} applied to documents"
            )

    def _apply_payment(self, payment: JSON) -> None:
        """A payment's ``PaymentInvoices`` taken off their down payments' open amounts; one with
        nothing left open closes (UNVERIFIED: B1's status of a paid down payment invoice); each is
        stamped."""
        day, clock = self.stamp()
        for row in payment.get("PaymentInvoices") or []:
            entry = row["DocEntry"]
            doc = self.records["DownPayments"][entry]
            self.applied[entry] = self.applied.get(entry, Decimal(0)) + _dec(row["SumApplied"])
            if self.applied[entry] >= _dec(doc["DocTotal"]):
                doc["DocumentStatus"] = "bost_Close"
            doc["UpdateDate"], doc["UpdateTime"] = day, clock

    def open_amount(self, down_payment: int) -> Decimal:
        """What is still open on a down payment invoice (its total less the payments applied)."""
        with self.lock:
            doc = self.records["DownPayments"][down_payment]
            return _cents(_dec(doc["DocTotal"]) - self.applied.get(down_payment, Decimal(0)))

    def drawable(self, down_payment: int) -> Decimal:
        """What a down payment invoice holds to be drawn: what payments applied to it less what
        invoices drew of it."""
        with self.lock:
            return _cents(self.applied.get(down_payment, Decimal(0)) - self.drawn.get(down_payment, Decimal(0)))

    def _check_draws(self, invoice: JSON) -> None:
        """An invoice's ``DownPaymentsToDraw`` rows checked and completed: each names a down payment
        invoice (-2028 otherwise) of the invoice's partner, not cancelled, for a positive
        ``AmountToDraw`` (left out: all it holds, up to what the invoice still comes to) no more than
        it holds (what was paid on it less what was drawn before: UNVERIFIED that B1 keeps unpaid
        down payments out), and together no more than the invoice's total. The invoice's
        ``DownPaymentAmount`` is what was drawn and its ``DocTotal`` what is still to pay (B1 keeps
        the total less the down payments in ``DocTotal``: UNVERIFIED); each refusal is -5002 naming
        the row, and nothing is drawn."""
        rows = invoice.get("DownPaymentsToDraw") or []
        left = _dec(invoice["DocTotal"])
        drawing: dict[int, Decimal] = {}
        for i, row in enumerate(rows):
            entry = row.get("DocEntry")
            doc = self.records["DownPayments"].get(entry)
            if doc is None:
                raise SlError(
                    400,
                    -2028,
                    f"No matching records found (ODBC -2028) [DownPayments {entry}, DownPaymentsToDraw: {i}]",
                )
            if doc.get("CardCode") != invoice.get("CardCode"):
                raise refused(
                    f"DownPayments {entry} belongs to business partner {doc.get('CardCode')} [DownPaymentsToDraw: {i}]"
                )
            if doc.get("Cancelled") == "tYES":
                raise refused(f"DownPayments {entry} is cancelled [DownPaymentsToDraw: {i}]")
            holds = self.drawable(entry) - drawing.get(entry, Decimal(0))
            amount = _cents(_dec(row["AmountToDraw"])) if row.get("AmountToDraw") is not None else min(holds, left)
            if amount <= 0:
                raise refused(f"AmountToDraw must be greater than zero [DownPaymentsToDraw: {i}]")
            if amount > holds:
                raise refused(
                    f"AmountToDraw {amount} is more than the {holds} DownPayments {entry} holds "
                    f"[DownPaymentsToDraw: {i}]"
                )
            if amount > left:
                raise refused(
                    f"Down payments drawn ({_cents(_dec(invoice['DocTotal']) - left + amount)}) are more than the "
                    f"invoice's total {_cents(_dec(invoice['DocTotal']))} [DownPaymentsToDraw: {i}]"
                )
            drawing[entry] = drawing.get(entry, Decimal(0)) + amount
            left -= amount
            row.update(
                AmountToDraw=float(amount),
                RowNum=i,
                DocNumber=doc.get("DocNum"),
                PostingDate=doc.get("DocDate"),
                DueDate=doc.get("DocDueDate"),
                Name=doc.get("CardName"),
                DownPaymentType=doc.get("DownPaymentType"),
            )
        if rows:
            invoice.update(DownPaymentAmount=float(_dec(invoice["DocTotal"]) - left), DocTotal=float(left))

    def _apply_draws(self, invoice: JSON) -> None:
        """What an invoice drew, taken off its down payments (each stamped)."""
        day, clock = self.stamp()
        for row in invoice.get("DownPaymentsToDraw") or []:
            entry = row["DocEntry"]
            self.drawn[entry] = self.drawn.get(entry, Decimal(0)) + _dec(row["AmountToDraw"])
            doc = self.records["DownPayments"][entry]
            doc["UpdateDate"], doc["UpdateTime"] = day, clock

    def cancel(self, entity_set: str, key: Any) -> None:
        """``POST Orders(<DocEntry>)/Cancel``: an open order no delivery, invoice or return drew from
        is cancelled (``Cancelled`` tYES, closed, its lines closed, its committed stock released,
        stamped). A cancelled or closed order, or one later documents drew from, is refused with
        -5002 (the codes and texts are UNVERIFIED); other documents' Cancel is not simulated."""
        if entity_set != "Orders":
            raise not_simulated(f"{entity_set}(<DocEntry>)/Cancel")
        with self.lock:
            order = self.records["Orders"].get(key)
            if order is None:
                raise not_found()
            if order.get("Cancelled") == "tYES":
                raise refused(f"Document {key} is already cancelled")
            if order.get("DocumentStatus") != "bost_Open":
                raise refused(f"Document {key} is closed and cannot be cancelled")
            drawn = [
                ln["LineNum"]
                for ln in order.get("DocumentLines") or []
                if _dec(ln.get("Quantity")) != _dec(ln.get("RemainingOpenQuantity", ln.get("Quantity")))
            ]
            if drawn:
                raise refused(
                    f"Cannot cancel document {key}: target documents (deliveries, invoices) were created from "
                    f"its lines {', '.join(str(n) for n in drawn)}"
                )
            self._commit(order, -1)
            day, clock = self.stamp()
            for line in order.get("DocumentLines") or []:
                line["LineStatus"] = "bost_Close"
            order.update(
                Cancelled="tYES", DocumentStatus="bost_Close", CancelDate=day, UpdateDate=day, UpdateTime=clock
            )

    def _next_entry(self, entity_set: str) -> int:
        n = self.next_entry[entity_set]
        self.next_entry[entity_set] = n + 1
        return n

    def _next_number(self, entity_set: str) -> int:
        n = self.next_number[entity_set]
        self.next_number[entity_set] = n + 1
        return n

    def _new_document(self, entity_set: str, record: JSON) -> None:
        code = record.get("CardCode")
        if not code:
            raise refused("Enter a business partner code (CardCode)")
        partner = self.records["BusinessPartners"].get(code)
        if partner is None:
            raise not_found(400)
        if entity_set == "Orders" and not record.get("DocDueDate"):
            raise refused("Enter valid date [ORDR.DocDueDate]")
        lines = record.get("DocumentLines")
        if not lines:
            raise refused("A document needs at least one line (DocumentLines)")
        if record.get("DownPaymentsToDraw") and entity_set != "Invoices":
            raise not_simulated(f"down payments drawn by {entity_set} (DownPaymentsToDraw)")
        day, clock = self.stamp()
        self._defaults("Document", record)
        if entity_set == "DownPayments":
            record.setdefault("DownPaymentType", "dptInvoice")  # the metadata's default, Y
        record.setdefault("DocDate", day)
        record.setdefault("TaxDate", record["DocDate"])
        record.setdefault("CardName", partner.get("CardName"))
        record.setdefault("DocCurrency", partner.get("Currency") or "USD")
        record["DocObjectCode"] = DOCUMENT_SETS[entity_set]
        record["DocumentStatus"], record["Cancelled"] = "bost_Open", "tNO"
        record["CreationDate"], record["UpdateDate"], record["UpdateTime"] = day, day, clock
        record.setdefault("DocumentAdditionalExpenses", [])
        self._take_from_bases(entity_set, record)
        self._price_document(entity_set, record, partner)
        self._check_draws(record)
        record["DocEntry"] = self._next_entry(entity_set)  # numbered once every rule has passed
        record["DocNum"] = record.get("DocNum") or self._next_number(entity_set)
        for line in record["DocumentLines"]:
            line["DocEntry"] = record["DocEntry"]
        for row in record.get("DownPaymentsToDraw") or []:
            row["DocInternalID"] = record["DocEntry"]
        if isinstance(record.get("AddressExtension"), dict):
            record["AddressExtension"]["DocEntry"] = record["DocEntry"]

    def _price_document(
        self, entity_set: str, record: JSON, partner: JSON | None = None, delivered: dict[int, Decimal] | None = None
    ) -> None:
        """Lines checked and priced, then the document's totals (the sim's own arithmetic);
        ``delivered`` (``LineNum`` -> quantity) is what later documents already drew from a line."""
        partner = partner or self.records["BusinessPartners"].get(record.get("CardCode")) or {}
        price_list = partner.get("PriceListNum") or 1
        subtotal = Decimal(0)
        taxes: list[tuple[JSON, Decimal]] = []
        used = {ln.get("LineNum") for ln in record["DocumentLines"] if ln.get("LineNum") is not None}
        next_line = 0
        for i, line in enumerate(record["DocumentLines"]):
            if line.get("BaseType") not in (None, -1, *BASES.get(entity_set, {})):
                raise not_simulated(f"{entity_set} lines based on object {line.get('BaseType')} (BaseType)")
            item = self.records["Items"].get(line.get("ItemCode"))
            if item is None:
                raise not_found(400)
            qty = _dec(line.get("Quantity", 0))
            if qty <= 0:
                raise refused(f"Quantity must be greater than zero [line: {i}]")
            if line.get("LineNum") is None:
                while next_line in used:
                    next_line += 1
                line["LineNum"] = next_line
                used.add(next_line)
            self._defaults("DocumentLine", line)
            line.setdefault("LineStatus", "bost_Open")
            discount = _dec(line.get("DiscountPercent") or 0)
            if line.get("UnitPrice") is not None:
                price = _dec(line["UnitPrice"]) * (1 - discount / 100)
            elif line.get("Price") is not None:
                price, discount = _dec(line["Price"]), Decimal(0)
                line["UnitPrice"] = float(price)
            else:
                prices = item.get("ItemPrices") or []
                listed: JSON = next((p for p in prices if p.get("PriceList") == price_list), {})
                price = _dec(listed.get("Price") or 0)
                line["UnitPrice"] = float(price)
            rate = Decimal(0)
            if line.get("TaxCode"):
                if line["TaxCode"] not in self.tax_codes:
                    raise refused(f"Tax code '{line['TaxCode']}' is not defined [line: {i}]")
                rate = self.tax_codes[line["TaxCode"]]
            line_total = _cents(price * qty)
            subtotal += line_total
            taxes.append((line, rate))
            line.update(
                ItemDescription=line.get("ItemDescription") or item.get("ItemName"),
                Quantity=float(qty),
                DiscountPercent=float(discount),
                Price=float(_cents(price)),
                PriceAfterVAT=float(_cents(price * (1 + rate / 100))),
                LineTotal=float(line_total),
                TaxPercentagePerRow=float(rate),
                WarehouseCode=line.get("WarehouseCode") or _warehouse_of(item),
                Currency=record.get("DocCurrency"),
            )
            if line.get("LineStatus") == "bost_Open":
                done = (delivered or {}).get(line["LineNum"], Decimal(0))
                if qty < done:
                    raise refused(f"Quantity {_text(qty)} is less than the {_text(done)} already delivered [line: {i}]")
                line["RemainingOpenQuantity"] = float(qty - done)
        header_discount = _dec(record.get("DiscountPercent") or 0)
        vat = Decimal(0)
        for line, rate in taxes:
            tax = _cents(_dec(line["LineTotal"]) * (1 - header_discount / 100) * rate / 100)
            line["TaxTotal"] = float(tax)
            vat += tax
        expenses = Decimal(0)
        for n, expense in enumerate(record.get("DocumentAdditionalExpenses") or []):
            amount, tax = self._price_expense(expense, n)
            expenses += amount
            vat += tax
        total_discount = _cents(subtotal * header_discount / 100)
        record.update(
            DiscountPercent=float(header_discount),
            TotalDiscount=float(total_discount),
            VatSum=float(vat),
            DocTotal=float(subtotal - total_discount + expenses + vat),
        )
        if entity_set == "DownPayments":
            self._down_payment_total(record)

    def _down_payment_total(self, record: JSON) -> None:
        """A down payment invoice's total: its ``DownPaymentAmount`` (gross), else its
        ``DownPaymentPercentage`` of what its lines come to, else all of it; an amount is positive and
        no more than the total of the orders its lines are based on (UNVERIFIED: B1's own rules, and
        whether the amount is gross). The tax is the lines' tax in proportion."""
        total, vat = _dec(record["DocTotal"]), _dec(record["VatSum"])
        if record.get("DownPaymentAmount") is not None:
            amount = _cents(_dec(record["DownPaymentAmount"]))
            bases = {ln.get("BaseEntry") for ln in record["DocumentLines"] if ln.get("BaseType") == 17}
            limit = sum(
                (_dec(self.records["Orders"][e]["DocTotal"]) for e in bases if e in self.records["Orders"]), Decimal(0)
            )
            if amount <= 0 or (bases and amount > limit):
                raise refused(f"Down payment amount {amount} must be more than 0 and no more than the order's {limit}")
        elif record.get("DownPaymentPercentage") is not None:
            amount = _cents(total * _dec(record["DownPaymentPercentage"]) / 100)
        else:
            amount = total
        record.update(DocTotal=float(amount), VatSum=float(_cents(vat * amount / total)) if total else 0.0)

    def _take_from_bases(self, entity_set: str, record: JSON) -> None:
        """Based lines checked against their base lines (same partner, open, no more than is open,
        the same item) and completed from them; ``_draw`` applies them once the document is made."""
        drawn: dict[tuple[str, int, int], Decimal] = {}
        for i, line in enumerate(record["DocumentLines"]):
            base_type = line.get("BaseType")
            if base_type in (None, -1):
                continue
            base_set = BASES.get(entity_set, {}).get(base_type)
            if base_set is None:
                raise not_simulated(f"{entity_set} lines based on object {base_type} (BaseType)")
            entry, number = line.get("BaseEntry"), line.get("BaseLine")
            if entry is None or number is None:
                raise refused(f"Enter the base document and line (BaseEntry, BaseLine) [line: {i}]")
            base = self.records[base_set].get(entry)
            if base is None:
                raise SlError(400, -2028, f"No matching records found (ODBC -2028) [{base_set} {entry}, line: {i}]")
            if base.get("CardCode") != record.get("CardCode"):
                raise refused(f"{base_set} {entry} belongs to business partner {base.get('CardCode')} [line: {i}]")
            source = next((ln for ln in base.get("DocumentLines") or [] if ln.get("LineNum") == number), None)
            if source is None:
                raise refused(f"{base_set} {entry} has no line {number} [line: {i}]")
            if base.get("Cancelled") == "tYES" or source.get("LineStatus") != "bost_Open":
                raise refused(f"Base document line is closed [{base_set} {entry}, line {number}; line: {i}]")
            if line.get("ItemCode") not in (None, source.get("ItemCode")):
                raise refused(
                    f"Item {line['ItemCode']} is not the base line's item {source.get('ItemCode')} [line: {i}]"
                )
            for name in COPIED_FROM_BASE:
                if line.get(name) is None and source.get(name) is not None:
                    line[name] = source[name]
            open_qty = _dec(source.get("RemainingOpenQuantity", 0))
            if line.get("Quantity") is None:
                line["Quantity"] = float(open_qty)
            key = (base_set, entry, number)
            drawn[key] = drawn.get(key, Decimal(0)) + _dec(line["Quantity"])
            if drawn[key] > open_qty:
                raise refused(
                    f"Quantity {_text(drawn[key])} is more than the {_text(open_qty)} open on {base_set} {entry} "
                    f"line {number} "
                    f"[line: {i}]"
                )

    def _draw(self, record: JSON) -> None:
        """What the new document's based lines take off their base lines: the open quantity (a
        line with none left closes, and a document whose lines all closed), and, for an order
        delivered or invoiced directly, the stock it had committed."""
        touched: dict[tuple[str, int], JSON] = {}
        if any(record.get("DocObjectCode") == DOCUMENT_SETS[name] for name in DRAWS_NOTHING):
            return
        if record.get("DocObjectCode") == DOCUMENT_SETS["Returns"]:
            for line in record.get("DocumentLines") or []:
                self._move_stock(line, -_dec(line["Quantity"]), committed=False)  # back into the warehouse
        for line in record.get("DocumentLines") or []:
            base_set = BASES.get(_set_of(record), {}).get(line.get("BaseType"))
            if base_set is None:
                continue
            base = self.records[base_set][line["BaseEntry"]]
            source = next(ln for ln in base["DocumentLines"] if ln.get("LineNum") == line["BaseLine"])
            qty = _dec(line["Quantity"])
            left = _dec(source["RemainingOpenQuantity"]) - qty
            source["RemainingOpenQuantity"] = float(left)
            if left <= 0:
                source["LineStatus"] = "bost_Close"
            if base_set == "Orders":
                self._move_stock(source, qty)
            touched[(base_set, line["BaseEntry"])] = base
        day, clock = self.stamp()
        for base in touched.values():
            if all(ln.get("LineStatus") == "bost_Close" for ln in base["DocumentLines"]):
                base["DocumentStatus"] = "bost_Close"
            base["UpdateDate"], base["UpdateTime"] = day, clock

    def _move_stock(self, order_line: JSON, qty: Decimal, committed: bool = True) -> None:
        """``qty`` of an order line leaves the warehouse: no longer committed, no longer in stock (a
        negative ``qty`` without ``committed``: a return's line comes back into stock)."""
        item = self.records["Items"].get(order_line.get("ItemCode"))
        rows = (item or {}).get("ItemWarehouseInfoCollection") or []
        row = next((r for r in rows if r.get("WarehouseCode") == order_line.get("WarehouseCode")), None)
        if item is None or row is None:
            return
        if committed:
            row["Committed"] = float(_dec(row.get("Committed", 0)) - qty)
        row["InStock"] = float(_dec(row.get("InStock", 0)) - qty)
        _sum_stock(item)

    def _price_expense(self, expense: JSON, n: int) -> tuple[Decimal, Decimal]:
        """A freight (additional expense) row: its code seeded, its amount and tax (the tax code's rate)."""
        if expense.get("ExpenseCode") not in self.expense_codes:
            raise refused(
                f"Freight code {expense.get('ExpenseCode')!r} is not defined [DocumentAdditionalExpenses: {n}]"
            )
        amount = _cents(_dec(expense.get("LineTotal") or 0))
        rate = Decimal(0)
        if expense.get("TaxCode"):
            if expense["TaxCode"] not in self.tax_codes:
                raise refused(f"Tax code '{expense['TaxCode']}' is not defined [DocumentAdditionalExpenses: {n}]")
            rate = self.tax_codes[expense["TaxCode"]]
        tax = _cents(amount * rate / 100)
        expense.update(LineNum=n, LineTotal=float(amount), TaxPercent=float(rate), TaxSum=float(tax))
        return amount, tax

    def _commit(self, order: JSON, sign: int) -> None:
        """An open order's quantities committed in (``+1``) or released from (``-1``) the warehouses."""
        if order.get("Cancelled") == "tYES":
            return
        for line in order.get("DocumentLines") or []:
            item = self.records["Items"].get(line.get("ItemCode"))
            if item is None:
                continue
            rows = item.setdefault("ItemWarehouseInfoCollection", [])
            row = next((r for r in rows if r.get("WarehouseCode") == line.get("WarehouseCode")), None)
            if row is None:
                row = {"WarehouseCode": line.get("WarehouseCode"), "ItemCode": item["ItemCode"], "Locked": "tNO"}
                row.update(dict.fromkeys(STOCK_FIELDS, 0.0))
                rows.append(row)
            open_qty = _dec(line.get("RemainingOpenQuantity", line.get("Quantity", 0)))
            row["Committed"] = float(_dec(row.get("Committed", 0)) + sign * open_qty)
            _sum_stock(item)

    # -- seed ------------------------------------------------------------------------------------

    def seed(self, body: JSON) -> JSON:
        out: JSON = {}
        codes = body.get("tax_codes") or {}
        if isinstance(codes, list):
            codes = {c["Code"]: c["Rate"] for c in codes}
        with self.lock:
            self.tax_codes.update({str(k): _dec(v) for k, v in codes.items()})
            self.expense_codes.update(int(code) for code in body.get("expense_codes") or [])
        for key, entity_set, label in (
            ("business_partners", "BusinessPartners", "CardCode"),
            ("items", "Items", "ItemCode"),
            ("orders", "Orders", "DocEntry"),
        ):
            made = []
            for row in body.get(key) or []:
                try:
                    made.append(self.create(entity_set, row, seeding=True)[label])
                except SlError as exc:
                    raise ValueError(f"{key}: {exc.message}") from exc
            if made:
                out[key] = made
        return out


def _text(value: Decimal) -> str:
    """A quantity as a person writes it (``100``, ``2.5``)."""
    return format(value.normalize(), "f")


def _set_of(document: JSON) -> str:
    """The entity set of a document, from its ``DocObjectCode``."""
    return next(name for name, code in DOCUMENT_SETS.items() if code == document.get("DocObjectCode"))


def _warehouse_of(item: JSON) -> str:
    rows = item.get("ItemWarehouseInfoCollection") or []
    return str(item.get("DefaultWarehouse") or (rows[0]["WarehouseCode"] if rows else "01"))


def _sum_stock(item: JSON) -> None:
    rows = item.get("ItemWarehouseInfoCollection") or []
    item["QuantityOnStock"] = float(sum((_dec(r.get("InStock", 0)) for r in rows), Decimal(0)))
    item["QuantityOrderedByCustomers"] = float(sum((_dec(r.get("Committed", 0)) for r in rows), Decimal(0)))


def _merge(meta: Metadata, t: StructuredType, target: JSON, changes: JSON, replace_collections: bool) -> None:
    """A PATCH: fields replaced, complex values merged, collections merged row by row (by their
    key field; rows without it appended) or replaced whole."""
    for key, value in changes.items():
        prop = t.props[key]
        inner = meta.structured(prop)
        if inner is None or value is None:
            target[key] = value
        elif not prop.collection:
            current: JSON = target[key] if isinstance(target.get(key), dict) else {}
            _merge(meta, inner, current, value, replace_collections)
            target[key] = current
        elif replace_collections:
            target[key] = value
        else:
            rows = target.setdefault(key, [])
            match = LINE_KEYS.get(inner.name)
            for row in value:
                hit = next((r for r in rows if match and _same_row(match, r, row)), None)
                if hit is None:
                    rows.append(row)
                else:
                    _merge(meta, inner, hit, row, replace_collections)


def _same_row(fields: tuple[str, ...], a: JSON, b: JSON) -> bool:
    return all(b.get(f) is not None and a.get(f) == b.get(f) for f in fields)


def _order_by(meta: Metadata, t: StructuredType, text: str | None) -> list[tuple[Prop, bool]]:
    out: list[tuple[Prop, bool]] = []
    for part in (text or "").split(","):
        words = part.split()
        if not words:
            continue
        if len(words) > 2 or (len(words) == 2 and words[1] not in ("asc", "desc")):
            raise SlError(400, -1000, f"Invalid $orderby: {part.strip()!r}")
        prop = t.props.get(words[0])
        if prop is None or prop.collection or meta.structured(prop) is not None:
            raise invalid_property(words[0], t.name)
        out.append((prop, len(words) == 2 and words[1] == "desc"))
    return out


# ----------------------------------------------------------------------------------------------
# HTTP
# ----------------------------------------------------------------------------------------------

QUERY_OPTIONS = frozenset({"$filter", "$select", "$orderby", "$top", "$skip", "$inlinecount", "$count"})
MEDIA = {
    "v1": "application/json;odata=minimalmetadata;charset=utf-8",
    "v2": "application/json;odata.metadata=minimal;charset=utf-8",
}


def _answer(body: JSON | None, dialect: Dialect, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    if body is None:
        return Response(status_code=status, headers=headers)
    return JSONResponse(body, status_code=status, headers=headers, media_type=MEDIA[dialect])


def _fail(exc: SlError, dialect: Dialect) -> Response:
    return _answer(error_body(exc.code, exc.message, dialect, exc.inner), dialect, exc.status)


def _prefer(request: Request) -> tuple[int | None, bool]:
    """``Prefer``: the page size asked for, and whether ``return-no-content`` is."""
    size, no_content = None, False
    for part in request.headers.get("prefer", "").split(","):
        name, _, value = part.strip().partition("=")
        if name == "odata.maxpagesize":
            try:
                size = int(value)
            except ValueError as exc:
                raise SlError(400, -1000, f"Invalid Prefer odata.maxpagesize={value!r}") from exc
            if size < 1:
                raise SlError(400, -1000, f"Invalid Prefer odata.maxpagesize={value!r}")
        elif name == "return-no-content":
            no_content = True
    return size, no_content


def _count(params: dict[str, str], name: str) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    if not raw.isdigit():
        raise SlError(400, -1000, f"Invalid {name}: {raw!r}")
    return int(raw)


def _select(meta: Metadata, t: StructuredType, text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    for name in names:
        if name not in t.props:
            raise invalid_property(name, t.name)
    return names


def _key_literal(value: Any) -> str:
    return str(value) if isinstance(value, int) else "'" + str(value).replace("'", "''") + "'"


def create_app(metadata: Metadata | None = None) -> Starlette:
    """The sim as a Starlette app; ``app.state.sim`` is the ``SapB1Sim``."""
    sim = SapB1Sim(metadata)
    control = SimControl(
        reset_data=sim.reset,
        seed_data=sim.seed,
        error_body=lambda status, message: error_body(-status, message),
    )

    def root(request: Request, dialect: Dialect) -> str:
        return f"{str(request.base_url).rstrip('/')}/b1s/{dialect}/"

    async def body_of(request: Request) -> Any:
        raw = await request.body()
        if not raw.strip():
            return {}
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise SlError(400, -1000, f"The body is not JSON: {exc}") from exc

    async def login(request: Request) -> Response:
        dialect: Dialect = request.path_params["dialect"]
        if dialect not in MEDIA:
            return Response(status_code=404)
        try:
            sid, timeout = sim.login(await body_of(request))
        except SlError as exc:
            return _fail(exc, dialect)
        meta_key = "@odata.context" if dialect == "v2" else "odata.metadata"
        element = "$entity" if dialect == "v2" else "@Element"
        body = {
            meta_key: f"{root(request, dialect)}$metadata#B1Sessions/{element}",
            "SessionId": sid,
            "Version": SL_VERSION,
            "SessionTimeout": timeout,
        }
        response = _answer(body, dialect)
        response.set_cookie(SESSION_COOKIE, sid, path="/b1s", httponly=True)
        response.set_cookie(ROUTE_COOKIE, ROUTE_ID, path="/b1s")
        return response

    async def service(request: Request) -> Response:
        dialect: Dialect = request.path_params["dialect"]
        rest: str = request.path_params["rest"]
        if dialect not in MEDIA:
            return Response(status_code=404)
        try:
            sid = sim.authorise(request.cookies.get(SESSION_COOKIE), request.cookies.get(ROUTE_COOKIE))
            if rest == "Logout" and request.method == "POST":
                sim.logout(sid)
                return Response(status_code=204)
            if rest == "$metadata" and request.method == "GET":
                return Response(sim.meta.raw, media_type="application/xml")
            bound = re.fullmatch(r"(\w+)\((.*)\)/(\w+)", rest)
            if bound is not None and bound.group(1) in DOCUMENT_SETS:
                return await action(request, bound.group(1), bound.group(2), bound.group(3))
            m = re.fullmatch(r"(\w+)(?:\((.*)\))?", rest)
            if m is None:
                if re.fullmatch(r"\w+\(.*\)/.+", rest):
                    raise not_supported()
                raise SlError(404, -2028, f"Resource not found for the segment '{rest}'")
            entity_set, key_text = m.group(1), m.group(2)
            if entity_set not in SETS:
                raise SlError(404, -2028, f"Resource not found for the segment '{entity_set}'")
            key = None if key_text is None else sim.key_of(entity_set, key_text)
            return await resource(request, dialect, entity_set, key)
        except SlError as exc:
            return _fail(exc, dialect)

    async def action(request: Request, entity_set: str, key_text: str, name: str) -> Response:
        """A bound action on a document (v1 FunctionImports ``IsBindable``, POST): ``Cancel`` of an
        order; any other (``Close``, ``Reopen``, ``CreateCancellationDocument`` ...) answers SAP's
        recorded -5006, as before the sim knew any."""
        if name != "Cancel":
            raise not_supported()
        key = sim.key_of(entity_set, key_text)
        if request.method != "POST":
            raise SlError(405, -1000, f"{name} is called with POST")
        if not isinstance(await body_of(request), dict):
            raise SlError(400, -1000, "The body of a bound action is an object")
        sim.cancel(entity_set, key)
        return Response(status_code=204)

    async def resource(request: Request, dialect: Dialect, entity_set: str, key: Any) -> Response:
        t = sim.meta.entity_type(entity_set)
        base = root(request, dialect)
        params = dict(request.query_params)
        unknown = [p for p in params if p.startswith("$") and p not in QUERY_OPTIONS]
        if unknown:
            raise SlError(400, -1000, f"Query option {unknown[0]} is not supported")
        context = "@odata.context" if dialect == "v2" else "odata.metadata"
        method = request.method
        if method == "GET" and key is not None:
            select = _select(sim.meta, t, params.get("$select"))
            record = sim.get(entity_set, key)
            element = "$entity" if dialect == "v2" else "@Element"
            shown = {n: record.get(n) for n in select} if select else record
            return _answer({context: f"{base}$metadata#{entity_set}/{element}", **shown}, dialect)
        if method == "GET":
            return listing(request, dialect, entity_set, t, params)
        if method == "POST" and key is None:
            _size, no_content = _prefer(request)
            record = sim.create(entity_set, await body_of(request))
            location = f"{base}{entity_set}({_key_literal(record[t.keys[0]])})"
            if no_content:
                return _answer(None, dialect, 204, {"Location": location, "Preference-Applied": "return-no-content"})
            element = "$entity" if dialect == "v2" else "@Element"
            return _answer(
                {context: f"{base}$metadata#{entity_set}/{element}", **record}, dialect, 201, {"Location": location}
            )
        if method == "PATCH" and key is not None:
            replace = request.headers.get("b1s-replacecollectionsonpatch", "").lower() == "true"
            sim.update(entity_set, key, await body_of(request), replace)
            return Response(status_code=204)
        if method == "DELETE" and key is not None:
            sim.delete(entity_set, key)
            return Response(status_code=204)
        raise not_supported()

    def listing(
        request: Request, dialect: Dialect, entity_set: str, t: StructuredType, params: dict[str, str]
    ) -> Response:
        size, _no_content = _prefer(request)
        page_size = size or sim.config.default_page_size
        select = _select(sim.meta, t, params.get("$select"))
        top, skip = _count(params, "$top"), _count(params, "$skip") or 0
        case_insensitive = request.headers.get("b1s-caseinsensitive", "").lower() == "true"
        rows = sim.query(entity_set, params, case_insensitive)
        total = len(rows)
        window = rows[skip:] if top is None else rows[skip : skip + top]
        page = window[:page_size]
        if select:
            page = [{**({} if dialect == "v2" else {"odata.id": None}), **{n: r.get(n) for n in select}} for r in page]
        prefix = "@odata." if dialect == "v2" else "odata."
        described = f"{entity_set}({','.join(select)})" if select else entity_set
        context = "@odata.context" if dialect == "v2" else "odata.metadata"
        body: JSON = {context: f"{root(request, dialect)}$metadata#{described}", "value": page}
        if params.get("$inlinecount") == "allpages" or params.get("$count") == "true":
            body[f"{prefix}count"] = total
        if len(window) > page_size:
            following = {k: v for k, v in params.items() if k not in ("$skip", "$top")}
            if top is not None:
                following["$top"] = str(top - page_size)
            following["$skip"] = str(skip + page_size)
            query = "&".join(f"{k}={quote(v, safe=chr(39) + '$(),:/')}" for k, v in following.items())
            body[f"{prefix}nextLink"] = f"{entity_set}?{query}"
        headers = {"Preference-Applied": f"odata.maxpagesize={size}"} if size else None
        return _answer(body, dialect, headers=headers)

    async def config(request: Request) -> Response:
        if request.method == "POST":
            try:
                merged = {**sim.config.model_dump(), **(await request.json())}
                new = SimConfig.model_validate(merged)
            except (ValueError, ValidationError) as exc:
                return JSONResponse({"error": f"bad config: {exc}"}, status_code=400)
            with sim.lock:
                sim.config = new
        return JSONResponse(sim.config.model_dump())

    async def sessions(request: Request) -> Response:
        if request.method == "POST":
            return JSONResponse({"expired": sim.expire_sessions()})
        with sim.lock:
            return JSONResponse({"live": len(sim.sessions), "logins": sim.logins})

    app = Starlette(
        routes=[
            Route("/_sim/config", config, methods=["GET", "POST"]),
            Route("/_sim/sessions", sessions, methods=["GET"]),
            Route("/_sim/sessions/expire", sessions, methods=["POST"]),
            *control.routes(),
            Route("/b1s/{dialect:str}/Login", login, methods=["POST"]),
            Route("/b1s/{dialect:str}/{rest:path}", service, methods=["GET", "POST", "PATCH", "DELETE", "PUT"]),
        ]
    )
    app.add_middleware(BaseHTTPMiddleware, dispatch=control.dispatch)
    app.state.sim = sim
    app.state.control = control
    return app


def sample_seed() -> JSON:
    """Items for the sellable SKUs of the Magento sim's sample catalog (what a local stack would
    seed), priced in price list 1 and stocked in warehouse ``01``, an exempt tax code ``EX`` and the
    additional expenses 1 (freight) and 2 (the store's tax, booked as charged)."""
    from sandbox.sims.magento_orders import sample_catalog

    items = [
        {
            "ItemCode": p["sku"],
            "ItemName": p["name"],
            "ItemPrices": [{"PriceList": 1, "Price": float(p["price"]), "Currency": "USD"}],
            "ItemWarehouseInfoCollection": [{"WarehouseCode": "01", "InStock": 100}],
        }
        for p in sample_catalog()
        if p.get("type_id") != "configurable"
    ]
    return {"items": items, "tax_codes": {"EX": 0}, "expense_codes": [1, 2]}
