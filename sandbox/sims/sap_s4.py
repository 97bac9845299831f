"""An SAP S/4HANA simulator (OData v2 A2X APIs through SAP Gateway), for tests and the local stack.

Nine services under ``/sap/opu/odata/sap/``, each with ``$metadata`` (from ``sap_s4_metadata/``:
SAP's own 2020 ``API_SALES_ORDER_SRV`` file, and hand-made trimmed files for the others, each
checked against a public copy of SAP's; see its SOURCES.md) and a service document. Business
partners, credit memo requests, customer returns, products, pricing condition records and material
stock are described in docs/SAP_S4.md ("The simulator"); the first three in detail here:

- ``API_SALES_ORDER_SRV``: ``A_SalesOrder`` (list, ``('1')`` read with an ``ETag`` header, deep
  insert with ``to_Item`` as ``{"results": [...]}`` or a bare list (UNVERIFIED that Gateway takes
  it), ``to_Partner`` and item ``to_PricingElement``; ``PATCH`` with ``If-Match``),
  ``A_SalesOrderItem`` (list, ``(SalesOrder='1',SalesOrderItem='10')`` read, ``PATCH``, e.g.
  ``SalesDocumentRjcnReason`` to reject it), ``A_SalesOrderHeaderPartner``,
  ``A_SalesOrderItemPrElement`` (read only); ``A_SalesOrder('1')/to_Item`` reads a navigation.
- ``API_OUTBOUND_DELIVERY_SRV;v=0002``: ``POST A_OutbDeliveryHeader`` with
  ``to_DeliveryDocumentItem`` rows ``{"ReferenceSDDocument", "ReferenceSDDocumentItem"[,
  "ActualDeliveryQuantity", "DeliveryQuantityUnit"]}`` naming open items of orders of one sold-to
  party (all that is open when the quantity is left out); ``BillOfLading`` and the other
  ``sap:creatable="false"`` fields are refused on create. ``PATCH A_OutbDeliveryHeader('8...')``
  (``If-Match: W/"'0001'"``) bumps ``DeliveryVersion``. ``POST PostGoodsIssue?DeliveryDocument='8...'``
  (``If-Match`` required: UNVERIFIED) posts the goods issue (``OverallGoodsMovementStatus`` and
  picking ``C``, ``ActualGoodsMovementDate``/``Time``) and answers ``PickingReport`` rows;
  ``ReverseGoodsIssue`` undoes it (not once billed). A write to a set SAP marks not creatable or
  not updatable (``A_OutbDeliveryItem``, the billing sets) is 405 (the exact status is
  UNVERIFIED). Creating a delivery sets the order items' ``DeliveryStatus`` and the order's
  ``OverallTotalDeliveryStatus``/``OverallSDProcessStatus``
  (``A``/``B``/``C``). ``LastChangeDate`` is a day (``/Date(<midnight>)/``), left null on create
  unless ``stamp_delivery_change_on_create`` (LIKP-AEDAT is empty until a change: UNVERIFIED).
  Item numbers are written ``000010`` (and ``ReferenceSDDocumentItem`` too; UNVERIFIED), read either way.
- ``API_BILLING_DOCUMENT_SRV``: ``A_BillingDocument``/``A_BillingDocumentItem`` read only (as in
  SAP's metadata), ``POST Cancel?BillingDocument='9...'`` (a cancellation document ``S1``; the
  original ``BillingDocumentIsCancelled``), ``GET GetPDF?BillingDocument='9...'`` (a tiny PDF,
  base64, wrapped ``{"d": {"GetPDF": {...}}}``: UNVERIFIED). **Billing documents are not created
  through any API**: SAP's service cannot create them (its sets are ``sap:creatable="false"``). A
  billing clerk runs VF01/VF04 in the GUI; here the sim-only door ``POST /_sim/billing
  {"deliveries": ["80000000", ...]}`` stands in for that. It is not an S/4 API.

Gateway behaviour:

- Basic auth on every request (``ERPSYNC``/``Welcome1``; 401 otherwise). CSRF: ``HEAD`` or ``GET``
  of a service with ``X-CSRF-Token: Fetch`` (any case) answers the token in ``x-csrf-token`` and the
  session cookies ``SAP_SESSIONID_S4H_100`` and ``sap-usercontext``; every ``POST``/``PUT``/``PATCH``/
  ``MERGE``/``DELETE`` needs that token **and** the session cookie, else 403 with ``x-csrf-token:
  Required`` and the text ``CSRF token validation failed``. Tokens are per session and service root
  (``csrf_per_service``; whether Gateway shares them across services is UNVERIFIED), expire after
  ``csrf_token_ttl_s`` and all at once on ``POST /_sim/csrf/expire``; ``csrf_mismatch_rate`` refuses
  a valid token now and then, as behind a load balancer without sticky sessions.
- Answers are OData v2 JSON (``$format=json`` or an ``Accept`` naming JSON; the sim speaks no Atom:
  406 otherwise): ``{"d": {...}}`` / ``{"d": {"results": [...], "__count": "<n>", "__next"}}``, each
  entity with ``__metadata {id, uri, type, etag}``, every declared property present (a blank text
  ``""``, a blank flag ``false``, other blanks ``null``: UNVERIFIED), navigations ``__deferred``
  unless ``$expand``-ed (``{"results": [...]}``). ``Edm.DateTime`` ``/Date(<ms>)/``,
  ``Edm.DateTimeOffset`` ``/Date(<ms>+0000)/``, ``Edm.Time`` ``PT14H05M00S``, decimals as strings
  (amounts to the cent, quantities to their scale: ``"2.000"``, UNVERIFIED).
- ``$filter`` (``eq ne gt ge lt le``, ``and``, ``or``, parentheses; no functions, no ``not``;
  literals ``'text'`` (``''`` a quote), numbers, ``true``/``false``/``null``, ``datetimeoffset'2025-03-01T00:00:00Z'``
  and ``datetime'2025-03-01T00:00:00'`` (either for either date type), ``time'PT14H05M00S'``),
  ``$select``, ``$expand`` (nested with ``/``), ``$orderby`` (several keys), ``$top``, ``$skip``,
  ``$inlinecount=allpages``, ``/$count``; pages of ``page_size`` rows end with ``__next`` (the same
  options and ``$skiptoken=<n>``).
- ETags: ``A_SalesOrder`` and ``A_BillingDocument``
  ``W/"datetimeoffset'2025-03-01T14%3A05%3A00.0000000Z'"`` (``LastChangeDateTime`` with 7 fraction
  digits, colons percent-encoded, as recorded; whole seconds unless ``stamp_fraction_digits``, and
  the JSON value carries milliseconds only, so keep the etag verbatim); deliveries ``W/"'0001'"``
  (``DeliveryVersion``). A ``PATCH`` of an entity with an etag needs ``If-Match``:
  428 without it (UNVERIFIED), 412 when it is not the current one (``*`` matches).
- ``PATCH``, ``MERGE`` and ``PUT`` all merge the fields sent (a ``PUT`` replacing the entity is not
  simulated); ``DELETE`` and ``$batch`` answer 501; ``sap-client`` and other non-``$`` options are
  ignored.
- Every request body is checked against the metadata (``sandbox.sims.edmx``, dialect
  ``odata_v2``): unknown property, wrong type, a decimal that is not a string, ``MaxLength``
  (``PurchaseOrderByCustomer`` 35), ``sap:creatable``/``sap:updatable``. Errors are Gateway's body
  ``{"error": {"code", "message": {"lang": "en", "value"}, "innererror": {"application",
  "transactionid", "timestamp", "Error_Resolution", "errordetails": [{"code", "message",
  "propertyref", "severity", "target"}]}}}``;
  the message ids the sim uses (``CODES``) are UNVERIFIED. ``sap_message_rate`` adds a
  ``sap-message`` warning header to successful writes.
- Pricing: an item's conditions (``to_PricingElement``: ``ConditionType``, ``ConditionRateValue``)
  are typed by ``conditions`` (default ``PR00``/``PPR0`` price per unit, ``RB00`` discount amount,
  ``HD00`` freight amount; real condition types are customer configuration, UNVERIFIED); without a
  price condition the material's seeded price is used (an automatic ``PR00``). ``NetAmount`` and
  ``TotalNetAmount`` (rejected items left out) are the sim's own sums; billing adds
  ``tax_rate_percent`` per item, rounded to the cent.

Control (besides the shared ``/_sim/`` API of sandbox/sims/control.py: requests, faults, lost
responses applied then lost, recorded answers, reset):

- ``POST /_sim/seed {"customers": [{"Customer", "Name"?, "Currency"?, "PaymentTerms"?}],
  "materials": [{"Material", "Price", "Currency"?, "Unit"?, "Plant"?, "Text"?, "Stock"?,
  "ProductType"?, "SalesOrganization"?, "DistributionChannel"?, "PriceCondition"?}], "plants":
  [{"Plant", "ShippingPoint"?}], "orders": [<A_SalesOrder create bodies>]}`` (each material also a
  product with sales data and a list price record, and stock with ``Stock``);
- ``GET|POST /_sim/config`` (``SimConfig``); ``POST /_sim/csrf/expire``;
- ``POST /_sim/billing {"deliveries": [...]}`` (above; answers ``{"d": <A_BillingDocument>}``), or
  ``{"credit_memo_request": "6..."}`` (VF01 for a credit memo request: a ``G2`` credit memo), or
  ``{"customer_return": "61..."}`` (a returns credit memo ``RE`` of what was received),
  ``POST /_sim/billing/{BillingDocument}/clear`` (the customer paid: ``InvoiceClearingStatus`` C);
- ``POST /_sim/stock {"Material", "Quantity", "Plant"?, "StorageLocation"?}`` (a goods receipt or
  a count stands in: the stock API is read only); ``POST /_sim/returns/{CustomerReturn}/receive
  {"items": {"10": "1"}}`` (the returns delivery's goods receipt: that API is not simulated);
- ``GET /_sim/bodies`` every service request with its body (``DELETE`` clears).

``app.state.sim`` is the ``S4Sim`` (thread-safe); its ``now`` (a UTC clock) may be replaced.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import random
import re
import secrets
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import cache, partial
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.sims.control import SimControl
from sandbox.sims.edmx import V2_DATETIME, V2_DATETIMEOFFSET, V2_TIME, Metadata, Prop, StructuredType

JSON = dict[str, Any]
METADATA_DIR = Path(__file__).resolve().parent / "sap_s4_metadata"
USERNAME, PASSWORD = "ERPSYNC", "Welcome1"
SESSION_COOKIE = "SAP_SESSIONID_S4H_100"
ROOT = "/sap/opu/odata/sap/"
SALES, DELIVERY, BILLING = "API_SALES_ORDER_SRV", "API_OUTBOUND_DELIVERY_SRV;v=0002", "API_BILLING_DOCUMENT_SRV"
PARTNERS = "API_BUSINESS_PARTNER"
PRODUCTS, PRICING, STOCK = "API_PRODUCT_SRV", "API_SLSPRICINGCONDITIONRECORD_SRV", "API_MATERIAL_STOCK_SRV"
CREDIT_MEMOS = "API_CREDIT_MEMO_REQUEST_SRV"
RETURNS = "API_CUSTOMER_RETURN_SRV"
SERVICES = {
    SALES: "API_SALES_ORDER_SRV.edmx",
    DELIVERY: "API_OUTBOUND_DELIVERY_SRV_0002-handmade.edmx",
    BILLING: "API_BILLING_DOCUMENT_SRV-handmade.edmx",
    PARTNERS: "API_BUSINESS_PARTNER-handmade.edmx",
    PRODUCTS: "API_PRODUCT_SRV-handmade.edmx",
    PRICING: "API_SLSPRICINGCONDITIONRECORD_SRV-handmade.edmx",
    STOCK: "API_MATERIAL_STOCK_SRV-handmade.edmx",
    CREDIT_MEMOS: "API_CREDIT_MEMO_REQUEST_SRV-handmade.edmx",
    RETURNS: "API_CUSTOMER_RETURN_SRV-handmade.edmx",
}
COMPONENTS = {
    SALES: "SD-SLS-API",
    DELIVERY: "LE-SHP-API",
    BILLING: "SD-BIL-API",
    PARTNERS: "LO-MD-BP-API",
    PRODUCTS: "LO-MD-MM-API",
    PRICING: "SD-MD-CM-API",
    STOCK: "MM-IM-API",
    CREDIT_MEMOS: "SD-SLS-API",
    RETURNS: "SD-SLS-API",
}
CUSTOMER_ROLES = frozenset({"FLCU00", "FLCU01"})
"""The business partner roles that make a partner a customer (FI customer, sales customer); a sales
area needs ``FLCU01`` (UNVERIFIED beyond the roles' names)."""
"""``innererror.application.component_id`` per service (UNVERIFIED)."""
WRITES = frozenset({"POST", "PUT", "PATCH", "MERGE", "DELETE"})
CENT = Decimal("0.01")
FIRST_NUMBER = {
    "order": 1,
    "delivery": 80000000,
    "billing": 90000000,
    "accounting": 9400000000,
    "partner": 1000000,
    "address": 30000,
    "condition": 1000000,
    "credit_memo_request": 60000000,
    "customer_return": 61000000,
}
"""Where the number ranges start (S/4 demo systems' usual ranges; UNVERIFIED)."""
FOREVER = date(9999, 12, 31)
"""The validity end of a condition record without one."""
STORAGE_LOCATION = "101"
"""The storage location seeded stock is kept in (S/4 demo systems' usual one; UNVERIFIED)."""
CODES = {
    "not_found": "/IWBEP/CM_MGW_RT/020",
    "bad_request": "/IWBEP/CM_MGW_RT/000",
    "invalid_body": "/IWBEP/CM_MGW_RT/004",
    "etag": "/IWBEP/CM_MGW_RT/055",
    "missing_field": "V1/384",
    "unknown_customer": "V1/302",
    "unknown_material": "V1/390",
    "quantity": "V1/092",
    "condition": "V1/213",
    "order_field": "SLS_LORD/033",
    "delivery": "VL/527",
    "goods_issue": "VL/609",
    "billing": "VF/016",
    "not_simulated": "SIM/501",
    "partner": "R11/002",
    "product": "MG/150",
    "condition_record": "VK/010",
}
"""The message ids the sim answers with. Gateway's ``/IWBEP/`` ids and the SD ones are guesses
in SAP's style: every one is UNVERIFIED (the notes record only the shape and ``SLS_LORD/033``)."""


class S4Error(Exception):
    """Ends a request with ``status`` and a Gateway error body."""

    def __init__(self, status: int, code: str, message: str, details: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = details or []
        """(message, propertyref) rows for ``errordetails``; one for the message when empty."""


def not_found(what: str) -> S4Error:
    return S4Error(404, CODES["not_found"], f"Resource not found for segment '{what}'")


def bad_request(message: str, code: str = CODES["bad_request"]) -> S4Error:
    return S4Error(400, code, message)


ConditionKind = Literal["price", "discount", "freight"]


def default_conditions() -> dict[str, ConditionKind]:
    return {"PR00": "price", "PPR0": "price", "RB00": "discount", "HD00": "freight"}


class SimConfig(BaseModel):
    """``/_sim/config``."""

    model_config = ConfigDict(extra="forbid")

    csrf_token_ttl_s: float = Field(1800, gt=0)
    csrf_per_service: bool = True
    csrf_mismatch_rate: float = Field(0.0, ge=0, le=1)
    page_size: int = Field(50, ge=1)
    tax_rate_percent: Decimal = Field(Decimal(0), ge=0)
    conditions: dict[str, ConditionKind] = Field(default_factory=default_conditions)
    sap_message_rate: float = Field(0.0, ge=0, le=1)
    stamp_fraction_digits: int = Field(0, ge=0, le=6)
    """Digits of the second kept in ``LastChangeDateTime`` (the 7th is always 0). The one recorded
    etag (``...15%3A36%3A52.0000000Z``) has whole seconds, the default; more digits make the stamp
    finer than the JSON value's milliseconds, as a ``TIMESTAMPL`` filled to the microsecond would."""
    stamp_delivery_change_on_create: bool = False
    require_if_match_on_goods_issue: bool = True
    credit_memo_billing_block: str = Field("", max_length=2)
    """``HeaderBillingBlockReason`` a new credit memo request gets when the request names none (a
    request type with a billing block waits for someone to release it; none by default)."""
    accounting_posting_status: str = Field("C", max_length=1)
    company_code: str = Field("1710", max_length=4)
    seed: int | None = None
    """Seeds the dice of ``csrf_mismatch_rate`` and ``sap_message_rate``."""


# ----------------------------------------------------------------------------------------------
# Values on the wire
# ----------------------------------------------------------------------------------------------


def _ms(moment: datetime) -> int:
    return int((moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1))


def wire_date(day: date) -> str:
    """``Edm.DateTime`` of a day: ``/Date(<UTC midnight in ms>)/``."""
    return f"/Date({_ms(datetime.combine(day, time(), UTC))})/"


def wire_offset(moment: datetime) -> str:
    """``Edm.DateTimeOffset``: ``/Date(<ms>+0000)/``."""
    return f"/Date({_ms(moment)}+0000)/"


def wire_time(moment: datetime) -> str:
    return f"PT{moment.hour:02d}H{moment.minute:02d}M{moment.second:02d}S"


def etag_of_stamp(moment: datetime) -> str:
    """``W/"datetimeoffset'2005-10-24T15%3A36%3A52.0000000Z'"``: 7 digits, colons percent-encoded."""
    text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"
    return "W/\"datetimeoffset'" + text.replace(":", "%3A") + "'\""


def amount(value: Decimal) -> str:
    return str(value.quantize(CENT, ROUND_HALF_UP))


def quantity(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.001"), ROUND_HALF_UP))


def dec(value: Any, what: str = "value") -> Decimal:
    try:
        out = Decimal(str(value))
    except InvalidOperation as exc:
        raise bad_request(f"{what}: {value!r} is not a number", CODES["invalid_body"]) from exc
    if not out.is_finite():
        raise bad_request(f"{what}: {value!r} is not a number", CODES["invalid_body"])
    return out


def parse_moment(text: str) -> datetime | None:
    """A literal's or a value's moment (UTC): ``/Date(ms[+hhmm])/`` or ISO text with up to 7
    fraction digits (no zone: UTC)."""
    m = V2_DATETIMEOFFSET.fullmatch(text) or V2_DATETIME.fullmatch(text)
    if m is not None:
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=int(m.group(1)))
    iso = re.fullmatch(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?)(?:\.(\d{1,7}))?(Z|[+-]\d{2}:\d{2})?", text)
    if iso is None:
        return None
    try:
        moment = datetime.fromisoformat(iso.group(1))
    except ValueError:
        return None
    fraction = (iso.group(2) or "").ljust(7, "0")[:6]
    moment = moment.replace(microsecond=int(fraction))
    zone = iso.group(3)
    if zone in (None, "Z"):
        return moment.replace(tzinfo=UTC)
    sign = 1 if zone[0] == "+" else -1
    offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])) * sign
    return (moment - offset).replace(tzinfo=UTC)


def parse_wire_time(text: str) -> int | None:
    m = V2_TIME.fullmatch(text)
    return None if m is None else int(m.group(1)) * 3600 + int(m.group(2)) * 60 + int(m.group(3))


def item_number(text: Any) -> int | None:
    """``10``, ``"10"`` and ``"000010"`` are item 10."""
    raw = str(text or "").strip()
    return int(raw) if raw.isdigit() else None


def document_number(text: Any) -> str:
    """``"0000000001"`` and ``"1"`` are document 1 (SAP's leading-zero conversion)."""
    raw = str(text or "").strip()
    return raw.lstrip("0") or "0" if raw.isdigit() else raw


# ----------------------------------------------------------------------------------------------
# $filter, $orderby, $select, $expand
# ----------------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<typed>(?:datetimeoffset|datetime|time|guid)'[^']*')
    | (?P<string>'(?:[^']|'')*')
    | (?P<number>-?\d+(?:\.\d+)?[mMdDfFlL]?)(?![\w.])
    | (?P<punct>[(),])
    | (?P<word>[A-Za-z_][\w/]*)
    )""",
    re.VERBOSE,
)
_COMPARE = frozenset({"eq", "ne", "gt", "ge", "lt", "le"})
Predicate = Callable[[JSON], bool]


def cell(prop: Prop, record: JSON) -> Any:
    """A record's value of ``prop`` as it compares (None: null)."""
    precise = record.get(f"_{prop.name}")
    if isinstance(precise, datetime):
        return precise
    return _comparable(prop, record.get(prop.name))


def _comparable(prop: Prop, raw: Any) -> Any:
    if raw is None:
        return None
    if prop.type in ("Edm.DateTime", "Edm.DateTimeOffset"):
        return parse_moment(str(raw))
    if prop.type == "Edm.Time":
        return parse_wire_time(str(raw))
    if prop.type in ("Edm.Decimal", "Edm.Int64", "Edm.Int32", "Edm.Int16", "Edm.Double", "Edm.Byte"):
        try:
            return Decimal(str(raw))
        except InvalidOperation:
            return None
    if prop.type == "Edm.Boolean":
        return bool(raw)
    return str(raw)


@dataclass
class _Filter:
    """A recursive-descent ``$filter`` compiler for one entity type."""

    type: StructuredType
    tokens: list[tuple[str, str]]
    i: int = 0

    @classmethod
    def compile(cls, t: StructuredType, text: str) -> Predicate:
        tokens: list[tuple[str, str]] = []
        pos, text = 0, text.strip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None or m.end() == pos:
                raise bad_request(f"Invalid filter expression at position {pos}: '{text[pos : pos + 20]}'")
            kind = m.lastgroup or ""
            tokens.append((kind, m.group(kind)))
            pos = m.end()
        parser = cls(t, tokens)
        predicate = parser.or_expr()
        if parser.i < len(tokens):
            raise bad_request(f"Invalid filter expression: unexpected '{tokens[parser.i][1]}'")
        return predicate

    def _take(self) -> tuple[str, str]:
        if self.i >= len(self.tokens):
            raise bad_request("Invalid filter expression: it ends too early")
        self.i += 1
        return self.tokens[self.i - 1]

    def _peek(self, word: str) -> bool:
        return self.i < len(self.tokens) and self.tokens[self.i] == ("word", word)

    def or_expr(self) -> Predicate:
        parts = [self.and_expr()]
        while self._peek("or"):
            self.i += 1
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else (lambda r: any(p(r) for p in parts))

    def and_expr(self) -> Predicate:
        parts = [self.atom()]
        while self._peek("and"):
            self.i += 1
            parts.append(self.atom())
        return parts[0] if len(parts) == 1 else (lambda r: all(p(r) for p in parts))

    def atom(self) -> Predicate:
        kind, text = self._take()
        if (kind, text) == ("punct", "("):
            inner = self.or_expr()
            if self._take() != ("punct", ")"):
                raise bad_request("Invalid filter expression: a parenthesis is not closed")
            return inner
        if kind != "word" or text in _COMPARE or text in ("and", "or"):
            raise bad_request(f"Invalid filter expression: expected a property, got '{text}'")
        if self.i < len(self.tokens) and self.tokens[self.i] == ("punct", "("):
            raise S4Error(501, CODES["not_simulated"], f"Filter function '{text}' is not simulated")
        prop = self.type.props.get(text)
        if prop is None:
            raise bad_request(f"Property '{text}' not found in type '{self.type.name}'")
        op_kind, op = self._take()
        if op_kind != "word" or op not in _COMPARE:
            raise bad_request(f"Invalid filter expression: expected an operator after {text}, got '{op}'")
        bound = self._literal(prop, *self._take())

        def test(record: JSON) -> bool:
            return _compare(op, cell(prop, record), bound)

        return test

    def _literal(self, prop: Prop, kind: str, text: str) -> Any:
        wrong = bad_request(f"Invalid literal {text} for property '{prop.name}' ({prop.type})")
        if kind == "word":
            if text == "null":
                return None
            if text in ("true", "false") and prop.type == "Edm.Boolean":
                return text == "true"
            raise wrong
        if kind == "typed":
            prefix, _, rest = text.partition("'")
            value: Any = parse_moment(rest[:-1]) if prefix in ("datetime", "datetimeoffset") else None
            if prefix == "time":
                value = parse_wire_time(rest[:-1])
            dates = ("Edm.DateTime", "Edm.DateTimeOffset")
            if (
                value is None
                or (prefix == "time") != (prop.type == "Edm.Time")
                or (prefix != "time" and prop.type not in dates)
            ):
                raise wrong
            return value
        raw = text[1:-1].replace("''", "'") if kind == "string" else text.rstrip("mMdDfFlL")
        if kind == "number" and prop.type in ("Edm.String", "Edm.DateTime", "Edm.DateTimeOffset", "Edm.Time"):
            raise wrong
        value = _comparable(prop, raw)
        if value is None or (kind == "string" and prop.type in ("Edm.DateTime", "Edm.DateTimeOffset")):
            raise wrong
        return value


def _compare(op: str, a: Any, b: Any) -> bool:
    if op == "eq":
        return bool(a == b)
    if op == "ne":
        return bool(a != b)
    if a is None or b is None:
        return False
    try:
        return bool({"gt": a > b, "ge": a >= b, "lt": a < b, "le": a <= b}[op])
    except TypeError:
        return False


def _sort_key(prop: Prop, record: JSON) -> tuple[int, Any]:
    value = cell(prop, record)
    return (0, "") if value is None else (1, value)


def parse_expand(text: str | None, t: StructuredType, meta: Metadata) -> dict[str, Any]:
    """``to_Item,to_Item/to_PricingElement`` -> ``{"to_Item": {"to_PricingElement": {}}}``."""
    tree: dict[str, Any] = {}
    for path in (text or "").split(","):
        node, current = tree, t
        for step in [s for s in path.strip().split("/") if s]:
            if step not in current.navigations:
                raise bad_request(f"Property '{step}' not found in type '{current.name}'")
            node = node.setdefault(step, {})
            current = meta.types.get(current.nav_targets.get(step, ("", True))[0], current)
    return tree


def parse_select(text: str | None, t: StructuredType) -> set[str] | None:
    if not text or text.strip() == "*":
        return None
    names = {part.strip().split("/", 1)[0] for part in text.split(",") if part.strip()}
    for name in names:
        if name not in t.props and name not in t.navigations:
            raise bad_request(f"Property '{name}' not found in type '{t.name}'")
    return names


def parse_key(t: StructuredType, text: str) -> tuple[str, ...]:
    """``'1'`` or ``SalesOrder='1',SalesOrderItem='10'`` -> the key values in ``t.keys`` order."""
    parts = re.findall(r"(?:(\w+)=)?'((?:[^']|'')*)'", text)
    rebuilt = ",".join(f"{n}='{v}'" if n else f"'{v}'" for n, v in parts)
    if not parts or rebuilt != text.strip():
        raise bad_request(f"Invalid key predicate ({text})")
    if len(parts) == 1 and not parts[0][0] and len(t.keys) == 1:
        return (parts[0][1].replace("''", "'"),)
    named = {n: v.replace("''", "'") for n, v in parts}
    if set(named) != set(t.keys):
        raise bad_request(f"Invalid key predicate ({text}): the keys of {t.name} are {', '.join(t.keys)}")
    return tuple(named[k] for k in t.keys)


def key_predicate(t: StructuredType, record: JSON) -> str:
    if len(t.keys) == 1:
        return "'" + str(record[t.keys[0]]).replace("'", "''") + "'"
    return ",".join(f"{k}='" + str(record[k]).replace("'", "''") + "'" for k in t.keys)


@cache
def default_metadata(service: str) -> Metadata:
    """The metadata of one of the three services, read once per process."""
    return Metadata.load(METADATA_DIR / SERVICES[service])


@dataclass(frozen=True)
class SetSpec:
    service: str
    rows: Callable[[S4Sim], Iterable[JSON]]


def _order_items(sim: S4Sim) -> Iterable[JSON]:
    return (i for o in sim.orders.values() for i in o["to_Item"])


def _partner_addresses(sim: S4Sim) -> Iterable[JSON]:
    return (a for p in sim.partners.values() for a in p["to_BusinessPartnerAddress"])


SETS: dict[str, SetSpec] = {
    "A_SalesOrder": SetSpec(SALES, lambda sim: sim.orders.values()),
    "A_SalesOrderItem": SetSpec(SALES, _order_items),
    "A_SalesOrderHeaderPartner": SetSpec(SALES, lambda sim: (p for o in sim.orders.values() for p in o["to_Partner"])),
    "A_SalesOrderItemPrElement": SetSpec(
        SALES, lambda sim: (c for i in _order_items(sim) for c in i["to_PricingElement"])
    ),
    "A_OutbDeliveryHeader": SetSpec(DELIVERY, lambda sim: sim.deliveries.values()),
    "A_OutbDeliveryItem": SetSpec(
        DELIVERY, lambda sim: (i for d in sim.deliveries.values() for i in d["to_DeliveryDocumentItem"])
    ),
    "A_BillingDocument": SetSpec(BILLING, lambda sim: sim.billing.values()),
    "A_BillingDocumentItem": SetSpec(BILLING, lambda sim: (i for b in sim.billing.values() for i in b["to_Item"])),
    "A_BusinessPartner": SetSpec(PARTNERS, lambda sim: sim.partners.values()),
    "A_BusinessPartnerAddress": SetSpec(PARTNERS, lambda sim: _partner_addresses(sim)),
    "A_AddressEmailAddress": SetSpec(
        PARTNERS, lambda sim: (e for a in _partner_addresses(sim) for e in a["to_EmailAddress"])
    ),
    "A_AddressPhoneNumber": SetSpec(
        PARTNERS, lambda sim: (n for a in _partner_addresses(sim) for n in a["to_PhoneNumber"])
    ),
    "A_BusinessPartnerRole": SetSpec(
        PARTNERS, lambda sim: (r for p in sim.partners.values() for r in p["to_BusinessPartnerRole"])
    ),
    "A_Customer": SetSpec(PARTNERS, lambda sim: (c for p in sim.partners.values() for c in p["to_Customer"])),
    "A_Product": SetSpec(PRODUCTS, lambda sim: sim.products.values()),
    "A_ProductDescription": SetSpec(
        PRODUCTS, lambda sim: (d for p in sim.products.values() for d in p["to_Description"])
    ),
    "A_ProductSalesDelivery": SetSpec(
        PRODUCTS, lambda sim: (d for p in sim.products.values() for d in p["to_SalesDelivery"])
    ),
    "A_SlsPrcgConditionRecord": SetSpec(PRICING, lambda sim: sim.conditions.values()),
    "A_SlsPrcgCndnRecdValidity": SetSpec(
        PRICING,
        lambda sim: (
            {**v, "to_SlsPrcgConditionRecord": [r]}
            for r in sim.conditions.values()
            for v in r["to_SlsPrcgCndnRecdValidity"]
        ),
    ),
    "A_SlsPrcgCndnRecordScale": SetSpec(
        PRICING, lambda sim: (c for r in sim.conditions.values() for c in r["to_SlsPrcgCndnRecordScale"])
    ),
    "A_CreditMemoRequest": SetSpec(CREDIT_MEMOS, lambda sim: sim.credit_memo_requests.values()),
    "A_CreditMemoRequestItem": SetSpec(
        CREDIT_MEMOS, lambda sim: (i for r in sim.credit_memo_requests.values() for i in r["to_Item"])
    ),
    "A_CreditMemoReqItemPrcgElmnt": SetSpec(
        CREDIT_MEMOS,
        lambda sim: (
            c for r in sim.credit_memo_requests.values() for i in r["to_Item"] for c in i["to_PricingElement"]
        ),
    ),
    "A_CustomerReturn": SetSpec(RETURNS, lambda sim: sim.customer_returns.values()),
    "A_CustomerReturnItem": SetSpec(
        RETURNS, lambda sim: (i for r in sim.customer_returns.values() for i in r["to_Item"])
    ),
    "A_CustomerReturnScheduleLine": SetSpec(
        RETURNS,
        lambda sim: (s for r in sim.customer_returns.values() for i in r["to_Item"] for s in i["to_ScheduleLine"]),
    ),
    "A_MaterialStock": SetSpec(STOCK, lambda sim: sim.material_stock()),
    "A_MatlStkInAcctMod": SetSpec(STOCK, lambda sim: sim.stock.values()),
    "A_CustomerSalesArea": SetSpec(
        PARTNERS,
        lambda sim: (a for p in sim.partners.values() for c in p["to_Customer"] for a in c["to_CustomerSalesArea"]),
    ),
}
"""The entity sets the sim holds rows of (the others in the metadata answer 501)."""


# ----------------------------------------------------------------------------------------------
# The system
# ----------------------------------------------------------------------------------------------


class S4Sim:
    """One S/4HANA client (mandant) behind Gateway: sessions, documents and their rules."""

    def __init__(self) -> None:
        self.meta = {service: default_metadata(service) for service in SERVICES}
        self.lock = threading.RLock()
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.config = SimConfig()
            self.rng = random.Random()
            self.sessions: dict[str, dict[str, tuple[str, datetime]]] = {}
            """Session id -> service -> (CSRF token, issued at)."""
            self.customers: dict[str, JSON] = {}
            self.materials: dict[str, JSON] = {}
            self.plants: dict[str, JSON] = {}
            self.orders: dict[str, JSON] = {}
            self.deliveries: dict[str, JSON] = {}
            self.billing: dict[str, JSON] = {}
            self.partners: dict[str, JSON] = {}
            self.products: dict[str, JSON] = {}
            """Products by ``Product``, their descriptions and sales data nested."""
            self.conditions: dict[str, JSON] = {}
            """Condition records by ``ConditionRecord``, their validity rows and scale lines nested."""
            self.stock: dict[tuple[str, str, str], JSON] = {}
            """Unrestricted stock rows by (material, plant, storage location)."""
            self.credit_memo_requests: dict[str, JSON] = {}
            self.customer_returns: dict[str, JSON] = {}
            """Customer returns by number, their items (and those's schedule lines) nested."""
            """Credit memo requests by number, their items (and those's pricing elements) nested."""
            """Unrestricted stock rows by (material, plant, storage location)."""
            """Business partners by ``BusinessPartner``, their addresses, roles and customer nested."""
            self.numbers = dict(FIRST_NUMBER)
            self.bodies: list[JSON] = []

    def set_config(self, config: SimConfig) -> None:
        with self.lock:
            self.config = config
            self.rng = random.Random(config.seed)

    def _number(self, kind: str) -> str:
        n = self.numbers[kind]
        self.numbers[kind] = n + 1
        return str(n)

    def stamp(self) -> datetime:
        """Now, to ``stamp_fraction_digits`` of the second."""
        now = self.now().astimezone(UTC)
        keep = 10 ** (6 - self.config.stamp_fraction_digits)
        return now.replace(microsecond=now.microsecond // keep * keep)

    def type_of(self, entity_set: str) -> StructuredType:
        return self.meta[SETS[entity_set].service].entity_type(entity_set)

    # -- CSRF ----------------------------------------------------------------------------------

    def fetch_token(self, session: str | None, service: str) -> tuple[str, str]:
        """The session (a new one unless ``session`` is live) and its CSRF token for ``service``."""
        scope = service if self.config.csrf_per_service else "*"
        with self.lock:
            if session not in self.sessions:
                session = secrets.token_hex(16).upper()
                self.sessions[session] = {}
            tokens = self.sessions[session]
            held = tokens.get(scope)
            if held is None or self.now() - held[1] > timedelta(seconds=self.config.csrf_token_ttl_s):
                held = (secrets.token_urlsafe(16)[:22] + "==", self.now())
                tokens[scope] = held
            return session, held[0]

    def token_ok(self, session: str | None, service: str, token: str | None) -> bool:
        scope = service if self.config.csrf_per_service else "*"
        with self.lock:
            held = self.sessions.get(session or "", {}).get(scope)
            if held is None or token is None or token != held[0]:
                return False
            if self.now() - held[1] > timedelta(seconds=self.config.csrf_token_ttl_s):
                return False
            return self.rng.random() >= self.config.csrf_mismatch_rate

    def expire_tokens(self) -> int:
        with self.lock:
            n = sum(len(t) for t in self.sessions.values())
            for tokens in self.sessions.values():
                tokens.clear()
            return n

    def warning(self) -> str | None:
        """A ``sap-message`` header now and then (``sap_message_rate``)."""
        with self.lock:
            if self.config.sap_message_rate <= 0 or self.rng.random() >= self.config.sap_message_rate:
                return None
        message = {
            "code": "V1/555",
            "message": "The sales document is not yet complete: check the incompletion log",
            "target": "",
            "severity": "warning",
            "transition": False,
            "details": [],
        }  # the shape of a recorded S/4 Cloud answer (SYSTEMS-NOTES §4.6); this text and code UNVERIFIED
        return json.dumps(message)

    # -- reading -------------------------------------------------------------------------------

    def rows(self, entity_set: str) -> list[JSON]:
        with self.lock:
            return [copy.deepcopy(r) for r in SETS[entity_set].rows(self)]

    def find(self, entity_set: str, key: tuple[str, ...]) -> JSON:
        t = self.type_of(entity_set)
        for row in SETS[entity_set].rows(self):
            if all(_same_key(str(row.get(k)), v) for k, v in zip(t.keys, key, strict=True)):
                return row
        raise not_found(f"{entity_set}({','.join(key)})")

    def query(self, entity_set: str, params: dict[str, str]) -> list[JSON]:
        t = self.type_of(entity_set)
        predicate = _Filter.compile(t, params["$filter"]) if params.get("$filter") else None
        rows = [r for r in self.rows(entity_set) if predicate is None or predicate(r)]
        for part in reversed([p for p in (params.get("$orderby") or "").split(",") if p.strip()]):
            words = part.split()
            prop = t.props.get(words[0])
            if prop is None or len(words) > 2 or (len(words) == 2 and words[1] not in ("asc", "desc")):
                raise bad_request(f"Invalid $orderby '{part.strip()}'")
            rows.sort(key=partial(_sort_key, prop), reverse=len(words) == 2 and words[1] == "desc")
        return rows

    def etag(self, t: StructuredType, record: JSON) -> str | None:
        for prop in t.etag_props:
            if prop.type == "Edm.DateTimeOffset":
                stamp = record.get(f"_{prop.name}")
                return etag_of_stamp(stamp) if isinstance(stamp, datetime) else None
            return f"W/\"'{record.get(prop.name)}'\""
        return None

    def render(
        self,
        meta: Metadata,
        root: str,
        t: StructuredType,
        record: JSON,
        expand: dict[str, Any],
        select: set[str] | None = None,
    ) -> JSON:
        """One entity as Gateway writes it (``root`` the service URL ending in ``/``)."""
        entity_set = next(s for s, name in meta.entity_sets.items() if name == t.name)
        uri = f"{root}{entity_set}({key_predicate(t, record)})"
        head: JSON = {"id": uri, "uri": uri, "type": meta.qualified(t.name)}
        etag = self.etag(t, record)
        if etag is not None:
            head["etag"] = etag
        out: JSON = {"__metadata": head}
        for name, prop in t.props.items():
            if select is None or name in select:
                out[name] = record[name] if name in record else _blank(prop)
        for nav in [*t.nav_targets, *sorted(t.navigations - set(t.nav_targets))]:
            if nav in expand:
                target_name, many = t.nav_targets.get(nav, ("", True))
                target = meta.types[target_name]
                children = record.get(nav) or []
                rendered = [self.render(meta, root, target, c, expand[nav]) for c in children]
                out[nav] = {"results": rendered} if many else (rendered[0] if rendered else None)
            elif select is None or nav in select:
                out[nav] = {"__deferred": {"uri": f"{uri}/{nav}"}}
        return out

    # -- checks --------------------------------------------------------------------------------

    def check(self, service: str, type_name: str, body: Any, op: Literal["create", "update"]) -> None:
        if not isinstance(body, dict):
            raise bad_request("The request body is not a JSON object", CODES["invalid_body"])
        problems = self.meta[service].check_request(type_name, body, op, "odata_v2")
        if problems:
            details = [(p.split(": ", 1)[-1], _property_of(p)) for p in problems]
            first = problems[0]
            if "MaxLength" in first:
                message = f"Value of property '{_property_of(first)}' is too long: {first.split(': ', 1)[-1]}"
                raise S4Error(400, CODES["order_field"], message, details)
            raise S4Error(400, CODES["invalid_body"], f"Invalid request payload: {first}", details)

    # -- sales orders --------------------------------------------------------------------------

    def create_order(self, body: Any) -> JSON:
        self.check(SALES, "A_SalesOrderType", body, "create")
        body = copy.deepcopy(body)
        for name, label in (
            ("SalesOrderType", "a sales document type"),
            ("SalesOrganization", "a sales organization"),
            ("DistributionChannel", "a distribution channel"),
            ("OrganizationDivision", "a division"),
            ("SoldToParty", "a sold-to party"),
        ):
            if not body.get(name):
                raise S4Error(400, CODES["missing_field"], f"Enter {label} ({name})", [(f"Enter {label}", name)])
        if body.get("SalesOrder"):
            message = "This system numbers sales orders internally: leave SalesOrder out (UNVERIFIED message)"
            raise S4Error(400, CODES["order_field"], message, [(message, "SalesOrder")])
        with self.lock:
            customer = self.customers.get(body["SoldToParty"])
            if customer is None:
                area = f"{body['SalesOrganization']}/{body['DistributionChannel']}/{body['OrganizationDivision']}"
                message = f"Sold-to party {body['SoldToParty']} not maintained for sales area {area}"
                raise S4Error(400, CODES["unknown_customer"], message, [(message, "SoldToParty")])
            items = _rows(body.pop("to_Item", None))
            partners = _rows(body.pop("to_Partner", None))
            if not items:
                raise S4Error(400, CODES["missing_field"], "Enter at least one item (to_Item)")
            stamp, today = self.stamp(), self.now().date()
            order: JSON = {k: _normalised(v) for k, v in body.items() if k != "__metadata"}
            number = self._peek_number("order")
            order.update(
                SalesOrder=number,
                TransactionCurrency=order.get("TransactionCurrency") or customer.get("Currency") or "USD",
                CustomerPaymentTerms=order.get("CustomerPaymentTerms") or customer.get("PaymentTerms") or "",
                SalesOrderDate=order.get("SalesOrderDate") or wire_date(today),
                PricingDate=order.get("PricingDate") or wire_date(today),
                RequestedDeliveryDate=order.get("RequestedDeliveryDate") or wire_date(today),
                CreationDate=wire_date(today),
                CreatedByUser=USERNAME,
                LastChangeDate=wire_date(today),
                LastChangeDateTime=wire_offset(stamp),
                _LastChangeDateTime=stamp,
                OverallSDProcessStatus="A",
                OverallTotalDeliveryStatus="A",
                OverallSDDocumentRejectionSts="A",
                TotalCreditCheckStatus="",
                SalesDocApprovalStatus="",
            )
            used: set[int] = set()
            order["to_Item"] = []
            for i, row in enumerate(items):
                order["to_Item"].append(self._new_item(order, row, i, used))
            order["to_Partner"] = [
                {**{k: v for k, v in p.items() if k != "__metadata"}, "SalesOrder": number} for p in partners
            ]
            if not any(p.get("PartnerFunction") in ("AG", "SP") for p in order["to_Partner"]):
                order["to_Partner"].insert(
                    0, {"SalesOrder": number, "PartnerFunction": "AG", "Customer": order["SoldToParty"]}
                )
            self._totals(order)
            self._number("order")
            self.orders[number] = order
            return copy.deepcopy(order)

    def _peek_number(self, kind: str) -> str:
        return str(self.numbers[kind])

    def _new_item(self, order: JSON, row: JSON, i: int, used: set[int]) -> JSON:
        where = f"to_Item[{i}]"
        given = item_number(row.get("SalesOrderItem")) if row.get("SalesOrderItem") else None
        if row.get("SalesOrderItem") and given is None:
            raise bad_request(f"{where}: item number {row['SalesOrderItem']!r} is not a number")
        n = given if given is not None else (max(used, default=0) // 10 + 1) * 10
        if n in used:
            raise bad_request(f"{where}: item {n} appears twice")
        used.add(n)
        material_code = str(row.get("Material") or "").upper()
        material = self.materials.get(material_code)
        if material is None:
            message = (
                f"Material {material_code or '(none)'} is not defined for sales org.{order['SalesOrganization']},"
                f" distr.chan.{order['DistributionChannel']}, language EN"
            )
            raise S4Error(400, CODES["unknown_material"], message, [(message, f"{where}/Material")])
        qty = dec(row.get("RequestedQuantity", 0), f"{where}.RequestedQuantity")
        if qty <= 0:
            message = f"Enter a quantity greater than 0 for item {n}"
            raise S4Error(400, CODES["quantity"], message, [(message, f"{where}/RequestedQuantity")])
        plant = row.get("ProductionPlant") or material.get("Plant") or next(iter(self.plants), "1710")
        if self.plants and plant not in self.plants:
            raise bad_request(f"{where}: plant {plant} does not exist")
        item: JSON = {k: _normalised(v) for k, v in row.items() if k not in ("__metadata", "to_PricingElement")}
        item.update(
            SalesOrder=order["SalesOrder"],
            SalesOrderItem=str(n),
            Material=material_code,
            SalesOrderItemText=row.get("SalesOrderItemText") or material.get("Text") or material_code,
            SalesOrderItemCategory=row.get("SalesOrderItemCategory") or "TAN",
            RequestedQuantity=quantity(qty),
            RequestedQuantityUnit=row.get("RequestedQuantityUnit") or material.get("Unit") or "PC",
            ProductionPlant=plant,
            ShippingPoint=row.get("ShippingPoint") or self.plants.get(plant, {}).get("ShippingPoint") or plant,
            TransactionCurrency=order["TransactionCurrency"],
            SalesDocumentRjcnReason=row.get("SalesDocumentRjcnReason") or "",
            SDProcessStatus="A",
            DeliveryStatus="A",
            OrderRelatedBillingStatus="",
        )
        item["to_PricingElement"] = [
            {k: v for k, v in c.items() if k != "__metadata"} for c in _rows(row.get("to_PricingElement"))
        ]
        self._price_item(item, material)
        return item

    def _price_item(self, item: JSON, material: JSON | None = None) -> None:
        """Conditions checked and their amounts worked out; the item's ``NetAmount`` their sum."""
        material = material or self.materials.get(item["Material"], {})
        qty = Decimal(item["RequestedQuantity"])
        kinds = self.config.conditions
        conditions = item["to_PricingElement"]
        if not any(kinds.get(c.get("ConditionType", "")) == "price" for c in conditions):
            price_type = next((k for k, v in kinds.items() if v == "price"), "PR00")
            conditions.insert(
                0,
                {
                    "ConditionType": price_type,
                    "ConditionRateValue": amount(dec(material.get("Price", 0))),
                    "ConditionOrigin": "A",
                },
            )
        net = Decimal(0)
        for n, condition in enumerate(conditions):
            kind = kinds.get(condition.get("ConditionType", ""))
            if kind is None:
                message = (
                    f"Condition type {condition.get('ConditionType')!r} is not allowed in the pricing procedure"
                    f" (item {item['SalesOrderItem']})"
                )
                raise S4Error(400, CODES["condition"], message, [(message, "ConditionType")])
            if condition.get("ConditionRateValue") is None:
                raise bad_request(f"Enter a rate for condition {condition['ConditionType']}", CODES["condition"])
            rate = dec(condition["ConditionRateValue"], "ConditionRateValue")
            per = dec(condition.get("ConditionQuantity") or 1, "ConditionQuantity")
            if kind == "price":
                value = (rate * qty / per).quantize(CENT, ROUND_HALF_UP)
            elif kind == "discount":
                value = -abs(rate).quantize(CENT, ROUND_HALF_UP)
            else:
                value = rate.quantize(CENT, ROUND_HALF_UP)
            net += value
            condition.update(
                SalesOrder=item["SalesOrder"],
                SalesOrderItem=item["SalesOrderItem"],
                PricingProcedureStep=condition.get("PricingProcedureStep") or f"{(n + 1) * 10:03d}",
                PricingProcedureCounter=condition.get("PricingProcedureCounter") or "001",
                ConditionRateValue=amount(rate),
                ConditionCurrency=condition.get("ConditionCurrency") or item["TransactionCurrency"],
                ConditionQuantity=str(per.quantize(Decimal(1))),
                ConditionAmount=amount(value),
                TransactionCurrency=item["TransactionCurrency"],
            )
        item["NetAmount"] = amount(net)

    def _totals(self, order: JSON) -> None:
        """Header sums and statuses from the items."""
        live = [i for i in order["to_Item"] if not i.get("SalesDocumentRjcnReason")]
        order["TotalNetAmount"] = amount(sum((Decimal(i["NetAmount"]) for i in live), Decimal(0)))
        rejected = len(order["to_Item"]) - len(live)
        order["OverallSDDocumentRejectionSts"] = "A" if rejected == 0 else ("C" if not live else "B")
        statuses = {i["DeliveryStatus"] for i in live}
        order["OverallTotalDeliveryStatus"] = (
            "C" if statuses == {"C"} or not live else ("A" if statuses == {"A"} else "B")
        )
        order["OverallSDProcessStatus"] = order["OverallTotalDeliveryStatus"]

    def _touch(self, record: JSON, *, offset_stamp: bool = True) -> None:
        stamp = self.stamp()
        record["LastChangeDate"] = wire_date(stamp.date())
        if offset_stamp:
            record["LastChangeDateTime"], record["_LastChangeDateTime"] = wire_offset(stamp), stamp

    def update_order(self, key: tuple[str, ...], body: Any, if_match: str | None) -> None:
        self.check(SALES, "A_SalesOrderType", body, "update")
        t = self.type_of("A_SalesOrder")
        with self.lock:
            order = self.find("A_SalesOrder", key)
            self._precondition(t, order, if_match)
            order.update({k: _normalised(v) for k, v in body.items() if k != "__metadata"})
            self._touch(order)

    def update_order_item(self, key: tuple[str, ...], body: Any) -> None:
        self.check(SALES, "A_SalesOrderItemType", body, "update")
        with self.lock:
            item = self.find("A_SalesOrderItem", key)
            order = self.orders[document_number(item["SalesOrder"])]
            delivered = self._delivered(item)
            changes = {k: _normalised(v) for k, v in body.items() if k != "__metadata"}
            if changes.get("SalesDocumentRjcnReason") and delivered > 0:
                message = f"Item {item['SalesOrderItem']} has been delivered and cannot be rejected"
                raise S4Error(400, CODES["order_field"], message, [(message, "SalesDocumentRjcnReason")])
            if "RequestedQuantity" in changes:
                qty = dec(changes["RequestedQuantity"], "RequestedQuantity")
                if qty <= 0 or qty < delivered:
                    raise S4Error(400, CODES["quantity"], f"Quantity {qty} is less than the {delivered} delivered")
                changes["RequestedQuantity"] = quantity(qty)
            updated = {**copy.deepcopy(item), **changes}
            self._price_item(updated)
            item.clear()
            item.update(updated)
            item["SDProcessStatus"] = "C" if item.get("SalesDocumentRjcnReason") else item["DeliveryStatus"]
            self._totals(order)
            self._touch(order)

    def _precondition(self, t: StructuredType, record: JSON, if_match: str | None) -> None:
        current = self.etag(t, record)
        if current is None:
            return
        if if_match is None:
            raise S4Error(428, CODES["etag"], "Precondition required: send the entity's ETag in If-Match")
        if if_match.strip() != "*" and current not in [m.strip() for m in if_match.split(",")]:
            raise S4Error(412, CODES["etag"], "Precondition failed: the entity was changed by someone else")

    # -- outbound deliveries ---------------------------------------------------------------------

    def _delivered(self, order_item: JSON) -> Decimal:
        total = Decimal(0)
        for delivery in self.deliveries.values():
            for row in delivery["to_DeliveryDocumentItem"]:
                if document_number(row["ReferenceSDDocument"]) == order_item["SalesOrder"] and item_number(
                    row["ReferenceSDDocumentItem"]
                ) == int(order_item["SalesOrderItem"]):
                    total += Decimal(row["ActualDeliveryQuantity"])
        return total

    def create_delivery(self, body: Any) -> JSON:
        self.check(DELIVERY, "A_OutbDeliveryHeaderType", body, "create")
        rows = _rows(body.get("to_DeliveryDocumentItem"))
        if not rows:
            raise S4Error(400, CODES["delivery"], "No items to deliver (to_DeliveryDocumentItem is empty)")
        with self.lock:
            number = self._peek_number("delivery")
            now, today = self.now(), self.now().date()
            sold_to, orders, items = None, [], []
            taking: dict[tuple[str, int], Decimal] = {}
            for i, row in enumerate(rows):
                where = f"to_DeliveryDocumentItem[{i}]"
                order = self.orders.get(document_number(row.get("ReferenceSDDocument")))
                n = item_number(row.get("ReferenceSDDocumentItem"))
                source = next((x for x in (order or {}).get("to_Item", []) if int(x["SalesOrderItem"]) == n), None)
                if order is None or source is None:
                    ref = f"{row.get('ReferenceSDDocument')}/{row.get('ReferenceSDDocumentItem')}"
                    raise S4Error(400, CODES["delivery"], f"{where}: sales order item {ref} does not exist")
                if source.get("SalesDocumentRjcnReason"):
                    raise S4Error(
                        400, CODES["delivery"], f"{where}: item {n} of order {order['SalesOrder']} is rejected"
                    )
                if sold_to not in (None, order["SoldToParty"]):
                    raise S4Error(400, CODES["delivery"], f"{where}: orders of different sold-to parties")
                sold_to = order["SoldToParty"]
                key = (order["SalesOrder"], int(n or 0))
                open_qty = Decimal(source["RequestedQuantity"]) - self._delivered(source) - taking.get(key, Decimal(0))
                qty = dec(row["ActualDeliveryQuantity"], where) if row.get("ActualDeliveryQuantity") else open_qty
                if qty <= 0 or qty > open_qty:
                    message = f"{where}: quantity {qty} is not within the {open_qty} open on order {key[0]} item {n}"
                    raise S4Error(400, CODES["delivery"], message)
                unit = row.get("DeliveryQuantityUnit") or source["RequestedQuantityUnit"]
                if unit != source["RequestedQuantityUnit"]:
                    raise S4Error(400, CODES["delivery"], f"{where}: unit {unit} is not the order's")
                taking[key] = taking.get(key, Decimal(0)) + qty
                if order not in orders:
                    orders.append(order)
                items.append(
                    {
                        "DeliveryDocument": number,
                        "DeliveryDocumentItem": f"{(i + 1) * 10:06d}",
                        "ActualDeliveryQuantity": quantity(qty),
                        "DeliveryQuantityUnit": unit,
                        "DeliveryDocumentItemText": source.get("SalesOrderItemText", ""),
                        "Material": source["Material"],
                        "Plant": source["ProductionPlant"],
                        "StorageLocation": source.get("StorageLocation") or "",
                        "ReferenceSDDocument": order["SalesOrder"],
                        "ReferenceSDDocumentItem": f"{int(n or 0):06d}",
                        "ReferenceSDDocumentCategory": "C",
                        "GoodsMovementStatus": "A",
                        "PickingStatus": "A",
                        "DeliveryRelatedBillingStatus": "A",
                        "DeliveryVersion": "0001",
                        "CreationDate": wire_date(today),
                        "LastChangeDate": None,
                    }
                )
            first = orders[0]
            ship_to = next(
                (p["Customer"] for p in first["to_Partner"] if p.get("PartnerFunction") in ("WE", "SH")),
                first["SoldToParty"],
            )
            header: JSON = {
                "DeliveryDocument": number,
                "DeliveryDocumentType": "LF",
                "SDDocumentCategory": "J",
                "ActualGoodsMovementDate": None,
                "ActualGoodsMovementTime": None,
                "CreatedByUser": USERNAME,
                "CreationDate": wire_date(today),
                "CreationTime": wire_time(now),
                "DeliveryDate": wire_date(today),
                "DeliveryVersion": "0001",
                "LastChangeDate": None,
                "LastChangedByUser": "",
                "OverallDelivReltdBillgStatus": "A",
                "OverallGoodsMovementStatus": "A",
                "OverallPickingStatus": "A",
                "OverallSDProcessStatus": "A",
                "PlannedGoodsIssueDate": wire_date(today),
                "ShippingPoint": body.get("ShippingPoint") or first["to_Item"][0]["ShippingPoint"],
                "ShipToParty": ship_to,
                "SoldToParty": sold_to,
                "to_DeliveryDocumentItem": items,
                "to_DeliveryDocumentText": [],
                "to_HandlingUnitHeaderDelivery": [],
            }
            if self.config.stamp_delivery_change_on_create:
                header["LastChangeDate"] = wire_date(today)
                for item in items:
                    item["LastChangeDate"] = wire_date(today)
            self._number("delivery")
            self.deliveries[number] = header
            for order in orders:
                self._delivery_status(order)
            return copy.deepcopy(header)

    def _delivery_status(self, order: JSON) -> None:
        for item in order["to_Item"]:
            if item.get("SalesDocumentRjcnReason"):
                continue
            done = self._delivered(item)
            item["DeliveryStatus"] = "A" if done == 0 else ("C" if done >= Decimal(item["RequestedQuantity"]) else "B")
            item["SDProcessStatus"] = item["DeliveryStatus"]
        self._totals(order)
        self._touch(order)

    def _bump(self, delivery: JSON) -> None:
        version = f"{int(delivery['DeliveryVersion']) + 1:04d}"
        today = wire_date(self.now().date())
        delivery.update(DeliveryVersion=version, LastChangeDate=today, LastChangedByUser=USERNAME)
        for item in delivery["to_DeliveryDocumentItem"]:
            item.update(DeliveryVersion=version, LastChangeDate=today)

    def update_delivery(self, key: tuple[str, ...], body: Any, if_match: str | None) -> None:
        self.check(DELIVERY, "A_OutbDeliveryHeaderType", body, "update")
        t = self.type_of("A_OutbDeliveryHeader")
        with self.lock:
            delivery = self.find("A_OutbDeliveryHeader", key)
            self._precondition(t, delivery, if_match)
            delivery.update({k: _normalised(v) for k, v in body.items() if k != "__metadata"})
            self._bump(delivery)

    def post_goods_issue(self, number: str, if_match: str | None) -> list[JSON]:
        t = self.type_of("A_OutbDeliveryHeader")
        with self.lock:
            delivery = self.find("A_OutbDeliveryHeader", (number,))
            if self.config.require_if_match_on_goods_issue or if_match is not None:
                self._precondition(t, delivery, if_match)
            if delivery["OverallGoodsMovementStatus"] == "C":
                raise S4Error(
                    400, CODES["goods_issue"], f"Goods movement for delivery {number} has already been posted"
                )
            now = self.now()
            delivery.update(
                OverallGoodsMovementStatus="C",
                OverallPickingStatus="C",
                OverallSDProcessStatus="B",
                ActualGoodsMovementDate=wire_date(now.date()),
                ActualGoodsMovementTime=wire_time(now),
            )
            for item in delivery["to_DeliveryDocumentItem"]:
                item.update(GoodsMovementStatus="C", PickingStatus="C")
            self._bump(delivery)
            self._move_stock(delivery, -1)
            return [
                {
                    "__metadata": {"type": "API_OUTBOUND_DELIVERY_SRV.PickingReport"},
                    "SystemMessageIdentification": "",
                    "SystemMessageNumber": "",
                    "SystemMessageType": "",
                    "SystemMessageVariable1": "",
                    "SystemMessageVariable2": "",
                    "SystemMessageVariable3": "",
                    "SystemMessageVariable4": "",
                    "Batch": "",
                    "DeliveryQuantityUnit": item["DeliveryQuantityUnit"],
                    "ActualDeliveryQuantity": item["ActualDeliveryQuantity"],
                    "DeliveryDocumentItemText": item["DeliveryDocumentItemText"],
                    "Material": item["Material"],
                    "DeliveryDocumentItem": item["DeliveryDocumentItem"],
                    "DeliveryDocument": number,
                }
                for item in delivery["to_DeliveryDocumentItem"]
            ]  # what a real PickingReport row holds after a goods issue is UNVERIFIED

    def reverse_goods_issue(self, number: str, if_match: str | None) -> list[JSON]:
        t = self.type_of("A_OutbDeliveryHeader")
        with self.lock:
            delivery = self.find("A_OutbDeliveryHeader", (number,))
            if self.config.require_if_match_on_goods_issue or if_match is not None:
                self._precondition(t, delivery, if_match)
            if delivery["OverallGoodsMovementStatus"] != "C":
                raise S4Error(400, CODES["goods_issue"], f"Delivery {number} has no goods issue to reverse")
            if delivery["OverallDelivReltdBillgStatus"] == "C":
                raise S4Error(400, CODES["goods_issue"], f"Delivery {number} is billed: cancel the billing first")
            delivery.update(
                OverallGoodsMovementStatus="A",
                OverallSDProcessStatus="A",
                ActualGoodsMovementDate=None,
                ActualGoodsMovementTime=None,
            )
            for item in delivery["to_DeliveryDocumentItem"]:
                item["GoodsMovementStatus"] = "A"
            self._bump(delivery)
            self._move_stock(delivery, 1)
            return []

    # -- billing (the clerk's door and the two function imports) -------------------------------

    def create_billing(self, deliveries: Any) -> JSON:
        """VF01 for outbound deliveries with goods issue posted (not an API: ``/_sim/billing``)."""
        if not isinstance(deliveries, list) or not deliveries or not all(isinstance(d, str) for d in deliveries):
            raise bad_request('give {"deliveries": ["<DeliveryDocument>", ...]}')
        with self.lock:
            found = []
            for number in deliveries:
                delivery = self.deliveries.get(document_number(number))
                if delivery is None:
                    raise not_found(f"A_OutbDeliveryHeader('{number}')")
                if delivery["OverallGoodsMovementStatus"] != "C":
                    raise S4Error(400, CODES["billing"], f"Delivery {number}: goods issue not posted, nothing to bill")
                if delivery["OverallDelivReltdBillgStatus"] == "C":
                    raise S4Error(400, CODES["billing"], f"Delivery {number} is already billed")
                found.append(delivery)
            if len({d["SoldToParty"] for d in found}) > 1:
                raise S4Error(400, CODES["billing"], "Deliveries of different sold-to parties are billed apart")
            lines: list[JSON] = []
            first_order: JSON | None = None
            for delivery in found:
                for row in delivery["to_DeliveryDocumentItem"]:
                    order = self.orders[row["ReferenceSDDocument"]]
                    first_order = first_order or order
                    source = next(
                        i
                        for i in order["to_Item"]
                        if int(i["SalesOrderItem"]) == item_number(row["ReferenceSDDocumentItem"])
                    )
                    qty = Decimal(row["ActualDeliveryQuantity"])
                    lines.append(
                        {
                            "Material": row["Material"],
                            "Plant": row["Plant"],
                            "Text": row["DeliveryDocumentItemText"],
                            "Quantity": qty,
                            "Unit": row["DeliveryQuantityUnit"],
                            "Net": (Decimal(source["NetAmount"]) * qty / Decimal(source["RequestedQuantity"])).quantize(
                                CENT, ROUND_HALF_UP
                            ),
                            "Reference": (delivery["DeliveryDocument"], row["DeliveryDocumentItem"], "J"),
                            "Sales": (order["SalesOrder"], source["SalesOrderItem"], ""),
                        }
                    )
            assert first_order is not None
            now = self.now()
            document = self._billing_document(first_order, lines, "F2", "M")
            for delivery in found:
                delivery.update(OverallDelivReltdBillgStatus="C", OverallSDProcessStatus="C")
                delivery["LastChangeDate"] = wire_date(now.date())
                for row in delivery["to_DeliveryDocumentItem"]:
                    row["DeliveryRelatedBillingStatus"] = "C"
            return document

    def bill_customer_return(self, number: str) -> JSON:
        """VF01 for a customer return (``/_sim/billing {"customer_return"}``): a returns credit memo
        (``RE``, SD category ``O``) of what was received and not yet credited, each item naming the
        return item (``SalesSDDocumentCategory`` ``H``), at the return item's price per unit."""
        with self.lock:
            ret = self.find("A_CustomerReturn", (number,))
            rows = []
            for row in ret["to_Item"]:
                received = Decimal(row["to_ScheduleLine"][0]["DeliveredQtyInOrderQtyUnit"])
                credited = Decimal(row.get("_credited") or 0)
                if received > credited:
                    rows.append((row, received - credited))
            if not rows:
                raise S4Error(400, CODES["billing"], f"Customer return {number}: nothing received to credit")
            memo = self._billing_document(
                ret,
                [
                    {
                        "Material": row["Material"],
                        "Plant": row.get("ProductionPlant") or "",
                        "Text": row["CustomerReturnItemText"],
                        "Quantity": qty,
                        "Unit": row["RequestedQuantityUnit"],
                        "Net": (Decimal(row["NetAmount"]) / Decimal(row["RequestedQuantity"]) * qty).quantize(
                            CENT, ROUND_HALF_UP
                        ),
                        "Reference": (ret["CustomerReturn"], row["CustomerReturnItem"], "H"),
                        "Sales": (ret["CustomerReturn"], row["CustomerReturnItem"], "H"),
                    }
                    for row, qty in rows
                ],
                "RE",
                "O",
            )
            for row, qty in rows:
                row["_credited"] = str(Decimal(row.get("_credited") or 0) + qty)
            return memo

    def _billing_document(self, source: JSON, lines: list[JSON], kind: str, category: str) -> JSON:
        """A billing document of type ``kind`` and SD category ``category`` (an invoice ``M``, a credit
        memo ``O``) of ``lines`` of ``source`` (the first order billed, a credit memo request or a
        customer return: its sales area, sold-to, payment terms and customer reference), stored.
        Each line: ``Material``, ``Plant``, ``Text``, ``Quantity``, ``Unit``, ``Net`` and the
        ``Reference`` and ``Sales`` documents it bills as (number, item, category)."""
        billing = self._peek_number("billing")
        rate = self.config.tax_rate_percent
        items: list[JSON] = []
        net_total, tax_total = Decimal(0), Decimal(0)
        for line in lines:
            net = line["Net"]
            tax = (net * rate / 100).quantize(CENT, ROUND_HALF_UP)
            net_total, tax_total = net_total + net, tax_total + tax
            (ref, ref_item, ref_category), (sales, sales_item, sales_category) = line["Reference"], line["Sales"]
            items.append(
                {
                    "BillingDocument": billing,
                    "BillingDocumentItem": str((len(items) + 1) * 10),
                    "Material": line["Material"],
                    "Plant": line["Plant"],
                    "BillingDocumentItemText": line["Text"],
                    "BillingQuantity": quantity(line["Quantity"]),
                    "BillingQuantityUnit": line["Unit"],
                    "NetAmount": amount(net),
                    "TransactionCurrency": source["TransactionCurrency"],
                    "GrossAmount": amount(net + tax),
                    "TaxAmount": amount(tax),
                    "ReferenceSDDocument": ref,
                    "ReferenceSDDocumentItem": ref_item,
                    "ReferenceSDDocumentCategory": ref_category,
                    "SalesDocument": sales,
                    "SalesDocumentItem": sales_item,
                    "SalesSDDocumentCategory": sales_category,
                    "SDDocumentReason": source.get("SDDocumentReason") or "",
                }
            )
        now, stamp = self.now(), self.stamp()
        posted = self.config.accounting_posting_status == "C"
        document: JSON = {
            "BillingDocument": billing,
            "SDDocumentCategory": category,
            "BillingDocumentCategory": "L",
            "BillingDocumentType": kind,
            "CreationDate": wire_date(now.date()),
            "CreationTime": wire_time(now),
            "LastChangeDate": wire_date(stamp.date()),
            "LastChangeDateTime": wire_offset(stamp),
            "_LastChangeDateTime": stamp,
            "SalesOrganization": source["SalesOrganization"],
            "DistributionChannel": source["DistributionChannel"],
            "Division": source["OrganizationDivision"],
            "BillingDocumentDate": wire_date(now.date()),
            "BillingDocumentIsCancelled": False,
            "CancelledBillingDocument": "",
            "TotalNetAmount": amount(net_total),
            "TransactionCurrency": source["TransactionCurrency"],
            "TaxAmount": amount(tax_total),
            "TotalGrossAmount": amount(net_total + tax_total),
            "PayerParty": source["SoldToParty"],
            "CustomerPaymentTerms": source.get("CustomerPaymentTerms", ""),
            "PaymentMethod": source.get("PaymentMethod", ""),
            "CompanyCode": self.config.company_code,
            "FiscalYear": str(now.year),
            "AccountingDocument": self._number("accounting") if posted else "",
            "SoldToParty": source["SoldToParty"],
            "PurchaseOrderByCustomer": source.get("PurchaseOrderByCustomer") or "",
            "OverallBillingStatus": "",
            "AccountingPostingStatus": self.config.accounting_posting_status,
            "InvoiceClearingStatus": "A",
            "to_Item": items,
        }
        self._number("billing")
        self.billing[billing] = document
        return copy.deepcopy(document)

    def bill_credit_memo_request(self, number: str) -> JSON:
        """VF01 for a credit memo request (not an API: ``/_sim/billing {"credit_memo_request"}``): a
        credit memo (``G2``, SD category ``O``) of its items, each naming the request item it bills
        (``SalesDocument``/``SalesDocumentItem``, ``SalesSDDocumentCategory`` ``K``), the request's
        ``PurchaseOrderByCustomer`` and ``SDDocumentReason`` copied. Refused while billing is
        blocked or once billed."""
        with self.lock:
            request = self.find("A_CreditMemoRequest", (number,))
            if request.get("HeaderBillingBlockReason"):
                message = f"Credit memo request {number} is blocked for billing ({request['HeaderBillingBlockReason']})"
                raise S4Error(400, CODES["billing"], message)
            if request.get("OverallOrdReltdBillgStatus") == "C":
                raise S4Error(400, CODES["billing"], f"Credit memo request {number} is already billed")
            memo = self._billing_document(
                request,
                [
                    {
                        "Material": row["Material"],
                        "Plant": row.get("Plant") or "",
                        "Text": row["CreditMemoRequestItemText"],
                        "Quantity": Decimal(row["RequestedQuantity"]),
                        "Unit": row["RequestedQuantityUnit"],
                        "Net": Decimal(row["NetAmount"]),
                        "Reference": (request["CreditMemoRequest"], row["CreditMemoRequestItem"], "K"),
                        "Sales": (request["CreditMemoRequest"], row["CreditMemoRequestItem"], "K"),
                    }
                    for row in request["to_Item"]
                ],
                "G2",
                "O",
            )
            request["OverallOrdReltdBillgStatus"] = "C"
            for row in request["to_Item"]:
                row["OrderRelatedBillingStatus"] = "C"
            return memo

    def clear_billing(self, number: str) -> JSON:
        with self.lock:
            document = self.find("A_BillingDocument", (number,))
            document["InvoiceClearingStatus"] = "C"
            self._touch(document)
            return copy.deepcopy(document)

    def cancel_billing(self, number: str) -> list[JSON]:
        with self.lock:
            original = self.find("A_BillingDocument", (number,))
            if original["BillingDocumentIsCancelled"] or original["CancelledBillingDocument"]:
                raise S4Error(
                    400, CODES["billing"], f"Billing document {number} is already cancelled or a cancellation"
                )
            cancellation = copy.deepcopy(original)
            new = self._peek_number("billing")
            stamp = self.stamp()
            cancellation.update(
                BillingDocument=new,
                BillingDocumentType="S1",
                SDDocumentCategory="N",
                CancelledBillingDocument=original["BillingDocument"],
                CreationDate=wire_date(stamp.date()),
                CreationTime=wire_time(stamp),
                LastChangeDate=wire_date(stamp.date()),
                LastChangeDateTime=wire_offset(stamp),
                _LastChangeDateTime=stamp,
                AccountingDocument=self._number("accounting") if original["AccountingDocument"] else "",
            )
            for item in cancellation["to_Item"]:
                item["BillingDocument"] = new
            self._number("billing")
            self.billing[new] = cancellation
            original["BillingDocumentIsCancelled"] = True
            self._touch(original)
            for row in original["to_Item"]:
                delivery = self.deliveries.get(row["ReferenceSDDocument"])
                if delivery is not None:
                    delivery.update(OverallDelivReltdBillgStatus="A", OverallSDProcessStatus="B")
                    for drow in delivery["to_DeliveryDocumentItem"]:
                        drow["DeliveryRelatedBillingStatus"] = "A"
            return [
                {
                    "__metadata": {"type": "API_BILLING_DOCUMENT_SRV.CancelResult"},
                    "BillingDocument": original["BillingDocument"],
                    "CancellationBillingDocument": new,
                    "SystemMessageType": "S",
                    "SystemMessageIdentification": "VF",
                    "SystemMessageNumber": "311",
                    "SystemMessageText": f"Document {new} has been saved",
                    "SystemMessageVariable1": new,
                    "SystemMessageVariable2": "",
                    "SystemMessageVariable3": "",
                    "SystemMessageVariable4": "",
                }
            ]  # message id and text UNVERIFIED

    def pdf(self, number: str) -> JSON:
        with self.lock:
            self.find("A_BillingDocument", (number,))
        text = f"%PDF-1.4\n% erpsync S/4HANA sim: billing document {number} (not a real PDF layout)\n%%EOF\n"
        return {
            "__metadata": {"type": "API_BILLING_DOCUMENT_SRV.GetPDFResult"},
            "BillingDocumentBinary": base64.b64encode(text.encode()).decode(),
        }

    # -- seed ----------------------------------------------------------------------------------

    # -- business partners ---------------------------------------------------------------------

    def create_partner(self, body: Any) -> JSON:
        """``POST A_BusinessPartner``, a deep insert: the partner, its addresses with their e-mail
        addresses and phone numbers, its roles, and with a customer role its customer with its
        sales areas. A person (category 1) needs ``LastName``, an organisation (2)
        ``OrganizationBPName1``; numbers are given internally (an external ``BusinessPartner`` is
        kept when free). A customer (``FLCU00``/``FLCU01``) gets the partner's number as its
        ``Customer`` and becomes a sold-to party orders may name."""
        self.check(PARTNERS, "A_BusinessPartnerType", body, "create")
        body = copy.deepcopy(body)
        category = str(body.get("BusinessPartnerCategory") or "")
        if category not in ("1", "2"):
            raise S4Error(
                400,
                CODES["partner"],
                "Enter a business partner category (1 person, 2 organization)",
                [("BusinessPartnerCategory is 1 or 2", "BusinessPartnerCategory")],
            )
        name_field = "LastName" if category == "1" else "OrganizationBPName1"
        if not str(body.get(name_field) or "").strip():
            message = f"Enter a {'last name' if category == '1' else 'name'} for the business partner"
            raise S4Error(400, CODES["partner"], message, [(message, name_field)])
        roles = [str(r.get("BusinessPartnerRole") or "") for r in _rows(body.get("to_BusinessPartnerRole"))]
        given_customer = body.get("to_Customer")  # a to-one navigation: the entity itself
        customer_rows = [given_customer] if isinstance(given_customer, dict) else []
        if customer_rows and not CUSTOMER_ROLES & set(roles):
            message = "Customer data needs the business partner role FLCU00 or FLCU01"
            raise S4Error(400, CODES["partner"], message, [(message, "to_BusinessPartnerRole")])
        with self.lock:
            number = str(body.get("BusinessPartner") or "") or self._number("partner")
            if number in self.partners:
                message = f"Business partner {number} already exists"
                raise S4Error(400, CODES["partner"], message, [(message, "BusinessPartner")])
            now = self.stamp()
            partner: JSON = {k: v for k, v in body.items() if not k.startswith("to_")}
            partner["BusinessPartner"] = number
            partner["CreationDate"], partner["CreationTime"] = wire_date(now.date()), wire_time(now)
            partner["to_BusinessPartnerAddress"] = [
                self._new_address(number, a) for a in _rows(body.get("to_BusinessPartnerAddress"))
            ]
            partner["to_BusinessPartnerRole"] = [{"BusinessPartner": number, "BusinessPartnerRole": r} for r in roles]
            partner["to_Customer"] = []
            if CUSTOMER_ROLES & set(roles):
                given = customer_rows[0] if customer_rows else {}
                areas = [
                    {**{k: v for k, v in a.items() if not k.startswith("to_")}, "Customer": number}
                    for a in _rows(given.get("to_CustomerSalesArea"))
                ]
                if areas and "FLCU01" not in roles:
                    message = "Sales area data needs the business partner role FLCU01"
                    raise S4Error(400, CODES["partner"], message, [(message, "to_BusinessPartnerRole")])
                partner["Customer"] = number
                partner["to_Customer"] = [
                    {
                        **{k: v for k, v in given.items() if not k.startswith("to_")},
                        "Customer": number,
                        "to_CustomerSalesArea": areas,
                    }
                ]
            self._named(partner, changed=False)
            self.partners[number] = partner
            if partner.get("Customer"):
                currency = next(
                    (a.get("Currency") for a in partner["to_Customer"][0]["to_CustomerSalesArea"] if a.get("Currency")),
                    None,
                )
                self.customers[number] = {
                    "Customer": number,
                    "Name": partner["BusinessPartnerFullName"],
                    "Currency": currency or "USD",
                }
            return copy.deepcopy(partner)

    def _new_address(self, partner: str, row: JSON) -> JSON:
        address = {k: v for k, v in row.items() if not k.startswith("to_")}
        address["BusinessPartner"], address["AddressID"] = partner, self._number("address")
        address["to_EmailAddress"] = [
            self._communication(address["AddressID"], e, i) for i, e in enumerate(_rows(row.get("to_EmailAddress")), 1)
        ]
        address["to_PhoneNumber"] = [
            self._communication(address["AddressID"], n, i) for i, n in enumerate(_rows(row.get("to_PhoneNumber")), 1)
        ]
        return address

    @staticmethod
    def _communication(address: str, row: JSON, ordinal: int) -> JSON:
        out = {**row, "AddressID": address, "Person": "", "OrdinalNumber": str(ordinal)}
        if "EmailAddress" in out:
            out["SearchEmailAddress"] = str(out["EmailAddress"] or "").upper()[:20]
        return out

    def _named(self, partner: JSON, changed: bool = True) -> None:
        """The read-only names SAP derives, and the change stamp (``LastChangeDate``/``Time``; left
        empty on create, as SAP leaves a new partner's change date until its first change:
        UNVERIFIED)."""
        if partner.get("BusinessPartnerCategory") == "2":
            name = str(partner.get("OrganizationBPName1") or "")
        else:
            name = " ".join(str(partner.get(f) or "") for f in ("FirstName", "LastName") if partner.get(f))
        partner["BusinessPartnerFullName"] = partner["BusinessPartnerName"] = name
        for address in partner["to_BusinessPartnerAddress"]:
            address["FullName"] = name
        for customer in partner["to_Customer"]:
            customer["CustomerFullName"] = name
        now = self.stamp()
        if changed:
            partner["LastChangeDate"], partner["LastChangeTime"] = wire_date(now.date()), wire_time(now)
        else:
            partner["LastChangeDate"], partner["LastChangeTime"] = None, None
        partner["ETag"] = now.strftime("%Y%m%d%H%M%S")  # a change counter's text: its real form is UNVERIFIED

    def _partner_of(self, entity_set: str, key: tuple[str, ...]) -> tuple[JSON, JSON]:
        """The stored row of ``entity_set`` at ``key`` and the partner holding it."""
        row = self.find(entity_set, key)
        for partner in self.partners.values():
            if row is partner or any(
                row is a or any(row is c for c in (*a["to_EmailAddress"], *a["to_PhoneNumber"]))
                for a in partner["to_BusinessPartnerAddress"]
            ):
                return row, partner
        raise not_found(f"{entity_set}({','.join(key)})")

    def update_partner_row(self, entity_set: str, key: tuple[str, ...], body: Any) -> None:
        """``PATCH`` of a partner, one of its addresses, e-mail addresses or phone numbers (no
        ``If-Match``: the service marks no concurrency token); the partner's stamp moves."""
        type_name = self.type_of(entity_set).name
        self.check(PARTNERS, type_name, body, "update")
        with self.lock:
            row, partner = self._partner_of(entity_set, key)
            keys = set(self.type_of(entity_set).keys)
            for name, value in body.items():
                if name in keys and str(value) != str(row.get(name)):
                    message = f"Key field {name} cannot be changed"
                    raise S4Error(400, CODES["partner"], message, [(message, name)])
            row.update({k: v for k, v in body.items() if not k.startswith("to_")})
            if "EmailAddress" in body:
                row["SearchEmailAddress"] = str(body["EmailAddress"] or "").upper()[:20]
            if partner.get("BusinessPartnerCategory") == "1" and not str(partner.get("LastName") or "").strip():
                message = "Enter a last name for the business partner"
                raise S4Error(400, CODES["partner"], message, [(message, "LastName")])
            self._named(partner)
            if partner.get("Customer") in self.customers:
                self.customers[partner["Customer"]]["Name"] = partner["BusinessPartnerFullName"]

    # -- credit memo requests --------------------------------------------------------------------

    @staticmethod
    def _taken(documents: Iterable[JSON], order: str, item: str) -> Decimal:
        """What live ``documents`` (credit memo requests or customer returns) already take of an
        order item."""
        total = Decimal(0)
        for document in documents:
            if document.get("OverallSDDocumentRejectionSts") == "C":
                continue
            for row in document["to_Item"]:
                if row.get("ReferenceSDDocument") == order and _same_key(str(row.get("ReferenceSDDocumentItem")), item):
                    total += Decimal(str(row["RequestedQuantity"]))
        return total

    def _referencing(self, service: str, type_name: str, type_field: str, body: Any) -> tuple[JSON, list[JSON]]:
        """The checks a credit memo request's and a customer return's create share: the body against
        the metadata, the header's required fields, at least one item. ``(the body without its items,
        the items)``."""
        self.check(service, type_name, body, "create")
        body = copy.deepcopy(body)
        for name, label in (
            (type_field, "a sales document type"),
            ("SalesOrganization", "a sales organization"),
            ("DistributionChannel", "a distribution channel"),
            ("OrganizationDivision", "a division"),
            ("SoldToParty", "a sold-to party"),
        ):
            if not body.get(name):
                raise S4Error(400, CODES["missing_field"], f"Enter {label} ({name})", [(f"Enter {label}", name)])
        items = _rows(body.pop("to_Item", None))
        if not items:
            raise S4Error(400, CODES["missing_field"], "Enter at least one item (to_Item)")
        return body, items

    def _sold_to_and_reference(self, body: JSON) -> tuple[JSON, JSON | None]:
        """The sold-to party a referencing document names, and the sales order it refers to (None
        without a reference); either missing is refused. Called under the lock."""
        customer = self.customers.get(body["SoldToParty"])
        if customer is None:
            message = f"Sold-to party {body['SoldToParty']} does not exist"
            raise S4Error(400, CODES["unknown_customer"], message, [(message, "SoldToParty")])
        reference = self.orders.get(document_number(str(body.get("ReferenceSDDocument") or "")) or "")
        if body.get("ReferenceSDDocument") and reference is None:
            message = f"Reference document {body['ReferenceSDDocument']} does not exist"
            raise S4Error(400, CODES["order_field"], message, [(message, "ReferenceSDDocument")])
        return customer, reference

    def _referenced_line(
        self, document: JSON, row: JSON, i: int, left: Callable[[JSON, str], Decimal], what: str
    ) -> tuple[str, JSON, Decimal, Decimal, str, JSON | None]:
        """One item of a credit memo request or customer return: ``(material number, material,
        quantity, price per unit, reference document, the order item it names or None)``. An item
        naming an order item is priced as that item (``_unit_net``) and may take no more than
        ``left(order item, order)``, ``what`` naming that quantity in the refusal; one without
        takes the material's price."""
        where = f"to_Item[{i}]"
        code = str(row.get("Material") or "").upper()
        material = self.materials.get(code)
        if material is None:
            message = f"Material {code or '(none)'} is not defined for sales org.{document['SalesOrganization']}"
            raise S4Error(400, CODES["unknown_material"], message, [(message, f"{where}/Material")])
        qty = dec(row.get("RequestedQuantity", 0), f"{where}.RequestedQuantity")
        if qty <= 0:
            message = f"Enter a quantity greater than 0 for item {(i + 1) * 10}"
            raise S4Error(400, CODES["quantity"], message, [(message, f"{where}/RequestedQuantity")])
        price = dec(material.get("Price", 0))
        ref_doc = document_number(str(row.get("ReferenceSDDocument") or document.get("ReferenceSDDocument") or ""))
        source = None
        if row.get("ReferenceSDDocumentItem"):
            order = self.orders.get(ref_doc or "")
            source = next(
                (
                    it
                    for it in (order or {}).get("to_Item", [])
                    if _same_key(str(it["SalesOrderItem"]), str(row["ReferenceSDDocumentItem"]))
                ),
                None,
            )
            if source is None or source["Material"] != code:
                item_no = row["ReferenceSDDocumentItem"]
                message = f"Item {item_no} of reference document {ref_doc} is not material {code}"
                raise S4Error(400, CODES["order_field"], message, [(message, f"{where}/ReferenceSDDocumentItem")])
            open_qty = left(source, str(ref_doc))
            if qty > open_qty:
                message = (
                    f"Item {source['SalesOrderItem']} of reference document {ref_doc} has only {open_qty} {what}, "
                    f"not {qty}"
                )
                raise S4Error(400, CODES["quantity"], message, [(message, f"{where}/RequestedQuantity")])
            price = self._unit_net(source)
        return code, material, qty, price, ref_doc, source

    def create_credit_memo_request(self, body: Any) -> JSON:
        """``POST A_CreditMemoRequest`` with its items (deep insert). An item naming a sales order
        item (``ReferenceSDDocument``/``ReferenceSDDocumentItem``) is priced as that item (its price
        and discount per unit, not the order's freight: what copy control copies is each system's
        own: UNVERIFIED) and may credit no more than it holds less what other live requests credit;
        one without a reference takes the material's price. Items' pricing elements cannot be sent
        (SAP's metadata marks the navigation not insertable)."""
        body, items = self._referencing(CREDIT_MEMOS, "A_CreditMemoRequestType", "CreditMemoRequestType", body)
        for i, row in enumerate(items):
            if "to_PricingElement" in row:
                message = "Navigation property to_PricingElement of an item is not insertable"  # text UNVERIFIED
                raise S4Error(400, CODES["invalid_body"], message, [(message, f"to_Item[{i}]/to_PricingElement")])
        with self.lock:
            customer, reference = self._sold_to_and_reference(body)
            stamp, today = self.stamp(), self.now().date()
            number = self._peek_number("credit_memo_request")
            request: JSON = {k: _normalised(v) for k, v in body.items() if k != "__metadata"}
            currency = (reference or {}).get("TransactionCurrency") or customer.get("Currency") or "USD"
            request.update(
                CreditMemoRequest=number,
                TransactionCurrency=request.get("TransactionCurrency") or currency,
                CreditMemoRequestDate=request.get("CreditMemoRequestDate") or wire_date(today),
                CreationDate=wire_date(today),
                LastChangeDate=wire_date(today),
                LastChangeDateTime=wire_offset(stamp),
                _LastChangeDateTime=stamp,
                ReferenceSDDocumentCategory="C" if reference else "",
                HeaderBillingBlockReason=request.get("HeaderBillingBlockReason")
                or self.config.credit_memo_billing_block,
                SalesDocApprovalStatus="",
                OverallSDProcessStatus="A",
                OverallSDDocumentRejectionSts="A",
                OverallOrdReltdBillgStatus="A",
            )
            request["to_Item"] = [self._credit_item(request, row, i) for i, row in enumerate(items)]
            request["TotalNetAmount"] = str(sum((Decimal(i["NetAmount"]) for i in request["to_Item"]), Decimal(0)))
            self._number("credit_memo_request")
            self.credit_memo_requests[number] = request
            return copy.deepcopy(request)

    def _credit_item(self, request: JSON, row: JSON, i: int) -> JSON:
        def left(source: JSON, order: str) -> Decimal:
            taken = self._taken(self.credit_memo_requests.values(), order, str(source["SalesOrderItem"]))
            return Decimal(source["RequestedQuantity"]) - taken

        code, material, qty, price, ref_doc, _ = self._referenced_line(request, row, i, left, "left to credit")
        net = (price * qty).quantize(CENT, ROUND_HALF_UP)
        item: JSON = {k: _normalised(v) for k, v in row.items() if k != "__metadata"}
        item.update(
            CreditMemoRequest=request["CreditMemoRequest"],
            CreditMemoRequestItem=str((i + 1) * 10),
            CreditMemoRequestItemCategory=row.get("CreditMemoRequestItemCategory") or "G2N",
            CreditMemoRequestItemText=row.get("CreditMemoRequestItemText") or str(material.get("Text") or code)[:40],
            Material=code,
            RequestedQuantity=quantity(qty),
            RequestedQuantityUnit=row.get("RequestedQuantityUnit") or material.get("Unit") or "PC",
            TransactionCurrency=request["TransactionCurrency"],
            NetAmount=str(net),
            ReferenceSDDocument=ref_doc or "",
            SDProcessStatus="A",
            OrderRelatedBillingStatus="A",
        )
        item["to_PricingElement"] = [
            {
                "CreditMemoRequest": request["CreditMemoRequest"],
                "CreditMemoRequestItem": item["CreditMemoRequestItem"],
                "PricingProcedureStep": "010",
                "PricingProcedureCounter": "001",
                "ConditionType": "PR00",
                "ConditionRateValue": str(price.quantize(Decimal("0.000000001"))),
                "ConditionCurrency": request["TransactionCurrency"],
                "ConditionAmount": str(net),
                "TransactionCurrency": request["TransactionCurrency"],
            }
        ]
        return item

    def create_customer_return(self, body: Any) -> JSON:
        """``POST A_CustomerReturn`` with its items (deep insert). An item naming a sales order item
        is priced as that item (as a credit memo request's) and may take back no more than was
        delivered of it less what other live returns take; each item gets one schedule line,
        nothing received yet."""
        body, items = self._referencing(RETURNS, "A_CustomerReturnType", "CustomerReturnType", body)
        with self.lock:
            customer, reference = self._sold_to_and_reference(body)
            stamp, today = self.stamp(), self.now().date()
            number = self._peek_number("customer_return")
            ret: JSON = {k: _normalised(v) for k, v in body.items() if k != "__metadata"}
            ret.update(
                CustomerReturn=number,
                TransactionCurrency=(reference or {}).get("TransactionCurrency") or customer.get("Currency") or "USD",
                CustomerReturnDate=ret.get("CustomerReturnDate") or wire_date(today),
                CreationDate=wire_date(today),
                LastChangeDate=wire_date(today),
                LastChangeDateTime=wire_offset(stamp),
                _LastChangeDateTime=stamp,
                ReferenceSDDocumentCategory="C" if reference else "",
                RetsMgmtLogProcgStatus="A",
                RetsMgmtProcessingStatus="A",
                OverallSDProcessStatus="A",
                OverallSDDocumentRejectionSts="A",
            )
            ret["to_Item"] = [self._return_item(ret, row, i) for i, row in enumerate(items)]
            ret["TotalNetAmount"] = str(sum((Decimal(i["NetAmount"]) for i in ret["to_Item"]), Decimal(0)))
            self._number("customer_return")
            self.customer_returns[number] = ret
            return copy.deepcopy(ret)

    def _return_item(self, ret: JSON, row: JSON, i: int) -> JSON:
        def left(source: JSON, order: str) -> Decimal:
            taken = self._taken(self.customer_returns.values(), order, str(source["SalesOrderItem"]))
            return self._delivered(source) - taken

        code, material, qty, price, ref_doc, source = self._referenced_line(
            ret, row, i, left, "delivered left to return"
        )
        plant = (
            row.get("ProductionPlant")
            or (source or {}).get("ProductionPlant")
            or material.get("Plant")
            or next(iter(self.plants), "1710")
        )
        net = (price * qty).quantize(CENT, ROUND_HALF_UP)
        number, item_no = ret["CustomerReturn"], str((i + 1) * 10)
        item: JSON = {k: _normalised(v) for k, v in row.items() if k != "__metadata"}
        item.update(
            CustomerReturn=number,
            CustomerReturnItem=item_no,
            CustomerReturnItemCategory=row.get("CustomerReturnItemCategory") or "CBAR",
            CustomerReturnItemText=row.get("CustomerReturnItemText") or str(material.get("Text") or code)[:40],
            Material=code,
            RequestedQuantity=quantity(qty),
            RequestedQuantityUnit=row.get("RequestedQuantityUnit") or material.get("Unit") or "PC",
            TransactionCurrency=ret["TransactionCurrency"],
            NetAmount=str(net),
            ProductionPlant=plant,
            ReferenceSDDocument=ref_doc or "",
            ReturnsMaterialHasBeenReceived="",
            RetsMgmtItmLogProcgStatus="A",
            RetsMgmtItmProcgStatus="A",
            SDProcessStatus="A",
        )
        item["to_ScheduleLine"] = [
            {
                "CustomerReturn": number,
                "CustomerReturnItem": item_no,
                "ScheduleLine": "1",
                "OrderQuantityUnit": item["RequestedQuantityUnit"],
                "ConfdOrderQtyByMatlAvailCheck": quantity(qty),
                "DeliveredQtyInOrderQtyUnit": quantity(Decimal(0)),
            }
        ]
        return item

    def receive_return(self, number: str, received: dict[str, Any]) -> JSON:
        """The returns delivery and its goods receipt (``/_sim/returns/<n>/receive``: the sim does not
        serve API_CUSTOMER_RETURNS_DELIVERY_SRV): item number -> units received, added to the item's
        schedule line and to the plant's stock; the return's statuses and stamp move."""
        with self.lock:
            ret = self.find("A_CustomerReturn", (number,))
            for key, raw in received.items():
                row = next((r for r in ret["to_Item"] if _same_key(str(r["CustomerReturnItem"]), str(key))), None)
                if row is None:
                    raise not_found(f"A_CustomerReturnItem(CustomerReturn='{number}',CustomerReturnItem='{key}')")
                line = row["to_ScheduleLine"][0]
                qty = dec(raw, f"item {key}")
                done = Decimal(line["DeliveredQtyInOrderQtyUnit"]) + qty
                if qty <= 0 or done > Decimal(row["RequestedQuantity"]):
                    message = f"Item {key}: {qty} cannot be received ({row['RequestedQuantity']} expected in all)"
                    raise S4Error(400, CODES["quantity"], message)
                line["DeliveredQtyInOrderQtyUnit"] = quantity(done)
                whole = done == Decimal(row["RequestedQuantity"])
                row.update(
                    ReturnsMaterialHasBeenReceived="X" if whole else "",
                    RetsMgmtItmLogProcgStatus="C" if whole else "B",
                    SDProcessStatus="C" if whole else "B",
                )
                rows = sorted(
                    (k, r) for k, r in self.stock.items() if k[0] == row["Material"] and k[1] == row["ProductionPlant"]
                )
                if rows:
                    stock = rows[0][1]
                    stock["MatlWrhsStkQtyInMatlBaseUnit"] = (
                        f"{Decimal(stock['MatlWrhsStkQtyInMatlBaseUnit']) + qty:.3f}"
                    )
            states = {r["RetsMgmtItmLogProcgStatus"] for r in ret["to_Item"]}
            ret["RetsMgmtLogProcgStatus"] = "C" if states == {"C"} else "B"
            ret["OverallSDProcessStatus"] = "C" if states == {"C"} else "B"
            stamp = self.stamp()
            ret.update(
                LastChangeDate=wire_date(stamp.date()), LastChangeDateTime=wire_offset(stamp), _LastChangeDateTime=stamp
            )
            return copy.deepcopy(ret)

    def _unit_net(self, item: JSON) -> Decimal:
        """An order item's price per unit less its discount per unit (its freight is the order's,
        not the unit's): what a credit of one unit is worth."""
        kinds, qty = self.config.conditions, Decimal(item["RequestedQuantity"])
        goods = sum(
            (
                Decimal(c["ConditionAmount"])
                for c in item["to_PricingElement"]
                if kinds.get(c["ConditionType"]) != "freight"
            ),
            Decimal(0),
        )
        return goods / qty

    def update_credit_memo_request(self, key: tuple[str, ...], body: Any, if_match: str | None) -> None:
        """``PATCH A_CreditMemoRequest('6…')`` with ``If-Match`` (``LastChangeDateTime`` is its
        concurrency token), e.g. ``HeaderBillingBlockReason`` ``""`` to release it for billing."""
        self.check(CREDIT_MEMOS, "A_CreditMemoRequestType", body, "update")
        t = self.type_of("A_CreditMemoRequest")
        with self.lock:
            request = self.find("A_CreditMemoRequest", key)
            self._precondition(t, request, if_match)
            request.update(
                {k: _normalised(v) for k, v in body.items() if not k.startswith("to_") and k != "__metadata"}
            )
            stamp = self.stamp()
            request.update(
                LastChangeDate=wire_date(stamp.date()), LastChangeDateTime=wire_offset(stamp), _LastChangeDateTime=stamp
            )

    # -- the catalog: products, condition records, stock -----------------------------------------

    def _stamp_product(self, product: JSON) -> None:
        now = self.stamp()
        product["LastChangeDate"] = wire_date(now.date())
        product["LastChangeDateTime"], product["_LastChangeDateTime"] = wire_offset(now), now

    def create_product(self, body: Any) -> JSON:
        """``POST A_Product``: a product with its descriptions and sales data (deep insert). It can
        then be ordered, at its list price once a condition record gives it one."""
        self.check(PRODUCTS, "A_ProductType", body, "create")
        code = str(body.get("Product") or "").upper()  # SAP keeps material numbers in upper case
        if not code:
            message = "Enter a product number (Product): the sim numbers no products"
            raise S4Error(400, CODES["missing_field"], message, [(message, "Product")])
        with self.lock:
            if code in self.products:
                message = f"Product {code} already exists"
                raise S4Error(400, CODES["product"], message, [(message, "Product")])
            now = self.stamp()
            product: JSON = {
                k: _normalised(v) for k, v in body.items() if not k.startswith("to_") and k != "__metadata"
            }
            product.update(Product=code, CreationDate=wire_date(now.date()))
            product["to_Description"] = [
                {**_plain(d), "Product": code, "Language": str(d.get("Language") or "EN").upper()}
                for d in _rows(body.get("to_Description"))
            ]
            product["to_SalesDelivery"] = [{**_plain(d), "Product": code} for d in _rows(body.get("to_SalesDelivery"))]
            self._stamp_product(product)
            self.products[code] = product
            name = next((str(d.get("ProductDescription") or "") for d in product["to_Description"]), code)
            self.materials.setdefault(
                code,
                {
                    "Material": code,
                    "Text": name[:40],
                    "Price": "0.00",
                    "Unit": str(product.get("BaseUnit") or "PC"),
                    "Plant": next(iter(self.plants), "1710"),
                },
            )
            return copy.deepcopy(product)

    def update_product_row(self, entity_set: str, key: tuple[str, ...], body: Any) -> None:
        """``PATCH`` of a product, one of its descriptions or its sales data (no ``If-Match``: the
        service marks no concurrency token); the product's ``LastChangeDateTime`` moves (UNVERIFIED
        that SAP stamps it for a description or sales data alone)."""
        t = self.type_of(entity_set)
        self.check(PRODUCTS, t.name, body, "update")
        with self.lock:
            row = self.find(entity_set, key)
            for name in t.keys:
                if name in body and str(body[name]) != str(row.get(name)):
                    message = f"Key field {name} cannot be changed"
                    raise S4Error(400, CODES["product"], message, [(message, name)])
            row.update({k: _normalised(v) for k, v in body.items() if not k.startswith("to_") and k != "__metadata"})
            self._stamp_product(self.products[str(row["Product"])])

    def _stamp_condition(self, record: JSON) -> None:
        now = self.stamp()
        record["LastChangeDateTime"], record["_LastChangeDateTime"] = wire_offset(now), now
        tag = now.strftime("%Y%m%d%H%M%S") + f"{now.microsecond:06d}"  # its real form is UNVERIFIED
        for row in (record, *record["to_SlsPrcgCndnRecdValidity"], *record["to_SlsPrcgCndnRecordScale"]):
            row["ETag"] = tag

    def create_condition(self, body: Any) -> JSON:
        """``POST A_SlsPrcgConditionRecord`` with its validity rows (the condition table's key
        fields: sales area, material ...) and scale lines (deep insert)."""
        self.check(PRICING, "A_SlsPrcgConditionRecordType", body, "create")
        validities = _rows(body.get("to_SlsPrcgCndnRecdValidity"))
        for name, label in (("ConditionType", "a condition type"), ("ConditionRateValue", "a rate")):
            if body.get(name) in (None, ""):
                raise S4Error(400, CODES["missing_field"], f"Enter {label} ({name})", [(f"Enter {label}", name)])
        if not validities:
            message = "Enter the validity and the key fields (to_SlsPrcgCndnRecdValidity)"
            raise S4Error(400, CODES["condition_record"], message, [(message, "to_SlsPrcgCndnRecdValidity")])
        if body.get("ConditionRecord"):
            message = "Condition records are numbered internally: leave ConditionRecord out"
            raise S4Error(400, CODES["condition_record"], message, [(message, "ConditionRecord")])
        with self.lock:
            number = self._number("condition")
            today = self.now().date()
            record: JSON = {k: _normalised(v) for k, v in body.items() if not k.startswith("to_") and k != "__metadata"}
            record.update(
                ConditionRecord=number,
                ConditionSequentialNumber="01",
                ConditionApplication=record.get("ConditionApplication") or "V",
                ConditionQuantity=record.get("ConditionQuantity") or "1",
                ConditionIsDeleted=bool(record.get("ConditionIsDeleted")),
                CreationDate=wire_date(today),
            )
            start = wire_date(today)
            record["to_SlsPrcgCndnRecdValidity"] = [
                {
                    **{k: _normalised(x) for k, x in _plain(v).items()},
                    "ConditionRecord": number,
                    "ConditionType": record["ConditionType"],
                    "ConditionApplication": record["ConditionApplication"],
                    "ConditionValidityStartDate": _normalised(v.get("ConditionValidityStartDate")) or start,
                    "ConditionValidityEndDate": _normalised(v.get("ConditionValidityEndDate")) or wire_date(FOREVER),
                }
                for v in validities
            ]
            record["to_SlsPrcgCndnRecordScale"] = [
                {
                    **_plain(line),
                    "ConditionRecord": number,
                    "ConditionSequentialNumber": "01",
                    "ConditionScaleLine": f"{n:04d}",
                }
                for n, line in enumerate(_rows(body.get("to_SlsPrcgCndnRecordScale")), 1)
            ]
            self._stamp_condition(record)
            self.conditions[number] = record
            self._list_price(record)
            return copy.deepcopy(record)

    def update_condition(self, key: tuple[str, ...], body: Any, if_match: str | None) -> None:
        """``PATCH A_SlsPrcgConditionRecord('…')`` (``If-Match``: its ``ETag`` is a concurrency token),
        e.g. ``ConditionRateValue`` or ``ConditionIsDeleted``."""
        self.check(PRICING, "A_SlsPrcgConditionRecordType", body, "update")
        t = self.type_of("A_SlsPrcgConditionRecord")
        with self.lock:
            record = self.find("A_SlsPrcgConditionRecord", key)
            self._precondition(t, record, if_match)
            for name in ("ConditionRecord", "ConditionType"):
                if name in body and str(body[name]) != str(record.get(name)):
                    message = f"{name} cannot be changed"
                    raise S4Error(400, CODES["condition_record"], message, [(message, name)])
            record.update({k: _normalised(v) for k, v in body.items() if not k.startswith("to_") and k != "__metadata"})
            self._stamp_condition(record)
            self._list_price(record)

    def _list_price(self, record: JSON) -> None:
        """Orders of the material a list price record names are priced from it from now on."""
        if self.config.conditions.get(str(record.get("ConditionType"))) != "price" or record.get("ConditionIsDeleted"):
            return
        today = self.now().date()
        for v in record["to_SlsPrcgCndnRecdValidity"]:
            material = self.materials.get(str(v.get("Material") or "").upper())
            if material is None or any(
                v.get(k) for k in ("Customer", "CustomerGroup", "CustomerPriceGroup", "PriceListType")
            ):
                continue
            start, end = parse_moment(v["ConditionValidityStartDate"]), parse_moment(v["ConditionValidityEndDate"])
            if (start is None or start.date() <= today) and (end is None or today <= end.date()):
                per = dec(record.get("ConditionQuantity") or 1) or Decimal(1)
                material["Price"] = str((dec(record["ConditionRateValue"]) / per).quantize(CENT, ROUND_HALF_UP))

    def material_stock(self) -> list[JSON]:
        """``A_MaterialStock``: each material with stock rows, the rows nested."""
        found: dict[str, JSON] = {}
        for row in self.stock.values():
            head = found.setdefault(
                row["Material"],
                {"Material": row["Material"], "MaterialBaseUnit": row["MaterialBaseUnit"], "to_MatlStkInAcctMod": []},
            )
            head["to_MatlStkInAcctMod"].append(row)
        return list(found.values())

    def set_stock(self, material: str, plant: str, location: str, quantity: Decimal) -> JSON:
        """A material's unrestricted stock at a plant's storage location (``/_sim/stock``: a goods
        receipt or a physical count stands in; API_MATERIAL_STOCK_SRV is read only)."""
        code = material.upper()
        with self.lock:
            if code not in self.materials and code not in self.products:
                raise S4Error(404, CODES["unknown_material"], f"Material {code} does not exist")
            row = self.stock.get((code, plant, location))
            if row is None:
                unit = str(self.materials.get(code, {}).get("Unit") or "PC")
                row = {
                    "Material": code,
                    "Plant": plant,
                    "StorageLocation": location,
                    "Batch": "",
                    "Supplier": "",
                    "Customer": "",
                    "WBSElementInternalID": "00000000",
                    "SDDocument": "",
                    "SDDocumentItem": "000000",
                    "InventorySpecialStockType": "",
                    "InventoryStockType": "01",
                    "MaterialBaseUnit": unit,
                }
                self.stock[(code, plant, location)] = row
            row["MatlWrhsStkQtyInMatlBaseUnit"] = f"{quantity:.3f}"
            return copy.deepcopy(row)

    def _move_stock(self, delivery: JSON, sign: int) -> None:
        """A goods issue (``sign`` -1) or its reversal (+1): each item's quantity leaves (or comes
        back to) the first storage location of its plant holding the material. Stock may go below
        zero (whether a plant allows that is its configuration: the sim does not refuse)."""
        for item in delivery["to_DeliveryDocumentItem"]:
            code, plant = str(item.get("Material") or ""), str(item.get("Plant") or "")
            rows = sorted((k, r) for k, r in self.stock.items() if k[0] == code and k[1] == plant)
            if not rows:
                continue  # no stock kept of it: nothing to move
            row = rows[0][1]
            moved = Decimal(str(item.get("ActualDeliveryQuantity") or 0)) * sign
            row["MatlWrhsStkQtyInMatlBaseUnit"] = f"{Decimal(row['MatlWrhsStkQtyInMatlBaseUnit']) + moved:.3f}"

    def _seed_catalog(self, row: JSON, code: str) -> None:
        """A seeded material's product (description, sales data of the seed's sales area), list
        price record (``PriceCondition``, default ``PR00``) and stock (``Stock`` at ``Plant``/101)."""
        now = self.stamp()
        area = (str(row.get("SalesOrganization") or "1710"), str(row.get("DistributionChannel") or "10"))
        product: JSON = {
            "Product": code,
            "ProductType": str(row.get("ProductType") or "HAWA"),
            "BaseUnit": str(row.get("Unit") or "PC"),
            "IsMarkedForDeletion": False,
            "CreationDate": wire_date(now.date()),
            "to_Description": [
                {"Product": code, "Language": "EN", "ProductDescription": str(row.get("Text") or code)[:40]}
            ],
            "to_SalesDelivery": [
                {
                    "Product": code,
                    "ProductSalesOrg": area[0],
                    "ProductDistributionChnl": area[1],
                    "IsMarkedForDeletion": False,
                }
            ],
        }
        self._stamp_product(product)
        self.products[code] = product
        number = self._number("condition")
        record: JSON = {
            "ConditionRecord": number,
            "ConditionSequentialNumber": "01",
            "ConditionApplication": "V",
            "ConditionType": str(row.get("PriceCondition") or "PR00"),
            "ConditionRateValue": str(dec(row.get("Price", 0))),
            "ConditionRateValueUnit": str(row.get("Currency") or "USD"),
            "ConditionCurrency": str(row.get("Currency") or "USD"),
            "ConditionQuantity": "1",
            "ConditionQuantityUnit": str(row.get("Unit") or "PC"),
            "ConditionIsDeleted": False,
            "CreationDate": wire_date(now.date()),
            "to_SlsPrcgCndnRecordScale": [],
        }
        record["to_SlsPrcgCndnRecdValidity"] = [
            {
                "ConditionRecord": number,
                "ConditionValidityEndDate": wire_date(FOREVER),
                "ConditionValidityStartDate": wire_date(date(2000, 1, 1)),
                "ConditionApplication": "V",
                "ConditionType": record["ConditionType"],
                "SalesOrganization": area[0],
                "DistributionChannel": area[1],
                "Material": code,
            }
        ]
        self._stamp_condition(record)
        self.conditions[number] = record
        if row.get("Stock") is not None:
            self.set_stock(code, str(row.get("Plant") or "1710"), STORAGE_LOCATION, dec(row["Stock"], "Stock"))

    def seed(self, body: JSON) -> JSON:
        with self.lock:
            for row in body.get("plants") or []:
                self.plants[str(row["Plant"])] = {"ShippingPoint": str(row.get("ShippingPoint") or row["Plant"])}
            for row in body.get("customers") or []:
                self.customers[str(row["Customer"])] = dict(row)
            for row in body.get("materials") or []:
                code = str(row["Material"]).upper()
                self.materials[code] = {**row, "Material": code, "Price": str(dec(row.get("Price", 0)))}
                self._seed_catalog(row, code)
        made = []
        for row in body.get("orders") or []:
            try:
                made.append(self.create_order(row)["SalesOrder"])
            except S4Error as exc:
                raise ValueError(f"orders: {exc.message}") from exc
        with self.lock:
            return {
                "customers": len(self.customers),
                "materials": len(self.materials),
                "plants": len(self.plants),
                "products": len(self.products),
                "orders": made,
            }


def _plain(row: JSON) -> JSON:
    """A deep-insert row without its metadata and navigations."""
    return {k: v for k, v in row.items() if k != "__metadata" and not k.startswith("to_")}


def _same_key(stored: str, asked: str) -> bool:
    if stored == asked:
        return True
    return stored.isdigit() and asked.isdigit() and int(stored) == int(asked)


def _rows(value: Any) -> list[JSON]:
    """A deep insert's rows: ``{"results": [...]}`` or a bare list."""
    if value is None:
        return []
    rows = value.get("results", []) if isinstance(value, dict) else value
    return [r for r in rows if isinstance(r, dict)]


def _normalised(value: Any) -> Any:
    """A request's date given as ISO text kept as Gateway writes it (``/Date(ms)/``)."""
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}T[\d:.]+(?:Z|[+-]\d{2}:\d{2})?", value):
        moment = parse_moment(value)
        if moment is not None:
            return f"/Date({_ms(moment)})/"
    return value


def _blank(prop: Prop) -> Any:
    if prop.type == "Edm.String":
        return ""
    if prop.type == "Edm.Boolean":
        return False
    return None


def _property_of(problem: str) -> str:
    path = problem.split(": ", 1)[0]
    return path.split(".", 1)[-1].replace(".", "/") if "." in path else path


# ----------------------------------------------------------------------------------------------
# HTTP
# ----------------------------------------------------------------------------------------------

QUERY_OPTIONS = frozenset(
    {"$filter", "$select", "$expand", "$orderby", "$top", "$skip", "$skiptoken", "$inlinecount", "$format"}
)


def error_body(
    service: str, status: int, code: str, message: str, details: list[tuple[str, str]] | None = None
) -> JSON:
    """SAP Gateway's error body (SYSTEMS-NOTES §4.6); the ``Error_Resolution`` texts are UNVERIFIED."""
    now = datetime.now(UTC)
    rows = details or [(message, "")]
    return {
        "error": {
            "code": code,
            "message": {"lang": "en", "value": message},
            "innererror": {
                "application": {
                    "component_id": COMPONENTS.get(service, ""),
                    "service_namespace": "/SAP/",
                    "service_id": service.split(";", 1)[0],
                    "service_version": "0002" if service == DELIVERY else "0001",
                },
                "transactionid": uuid.uuid4().hex.upper(),
                "timestamp": now.strftime("%Y%m%d%H%M%S.") + f"{now.microsecond:06d}0",
                "Error_Resolution": {
                    "SAP_Transaction": "For backend administrators: use ADT feed reader 'SAP Gateway Error Log'"
                    " or run transaction /IWFND/ERROR_LOG on SAP Gateway hub system and search for entries"
                    " with the timestamp above for more details",
                    "SAP_Note": "See SAP Note 1797736 for error analysis (https://service.sap.com/sap/support/notes/1797736)",
                },
                "errordetails": [
                    {"code": code, "message": text, "propertyref": ref, "severity": "error", "target": ref}
                    for text, ref in rows
                ],
            },
        }
    }


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(
        body,
        status_code=status,
        headers={"dataserviceversion": "2.0", **(headers or {})},
        media_type="application/json; charset=utf-8",
    )


def _fail(service: str, exc: S4Error) -> Response:
    return _json(error_body(service, exc.status, exc.code, exc.message, exc.details), exc.status)


def _authorised(request: Request) -> bool:
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, password = base64.b64decode(encoded).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return (user, password) == (USERNAME, PASSWORD)


def _wants_json(request: Request) -> bool:
    return request.query_params.get("$format") == "json" or "json" in request.headers.get("accept", "").lower()


def _count(params: dict[str, str], name: str) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    if not raw.isdigit():
        raise bad_request(f"Invalid value '{raw}' of system query option {name}")
    return int(raw)


def _function_arg(params: dict[str, str], name: str) -> str:
    raw = params.get(name)
    if raw is None or not re.fullmatch(r"'(?:[^']|'')*'", raw):
        raise bad_request(f"Function import parameter {name} is missing or not a quoted string ('...')")
    return raw[1:-1].replace("''", "'")


def create_app() -> Starlette:
    """The sim as a Starlette app; ``app.state.sim`` is the ``S4Sim``."""
    sim = S4Sim()
    control = SimControl(
        reset_data=sim.reset,
        seed_data=sim.seed,
        error_body=lambda status, message: error_body(SALES, status, f"SIM/{status}", message),
    )

    def service_root(request: Request, service: str) -> str:
        return f"{str(request.base_url).rstrip('/')}{ROOT}{service}/"

    async def body_of(request: Request) -> Any:
        raw = await request.body()
        if not raw.strip():
            return {}
        if "json" not in request.headers.get("content-type", "").lower():
            raise S4Error(415, CODES["invalid_body"], "Send the body as application/json (the sim speaks no Atom)")
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise bad_request(f"The request body is not JSON: {exc}", CODES["invalid_body"]) from exc

    async def log_body(request: Request) -> None:
        raw = await request.body()
        try:
            body: Any = json.loads(raw) if raw.strip() else None
        except ValueError:
            body = raw.decode(errors="replace")
        with sim.lock:
            sim.bodies.append(
                {
                    "method": request.method,
                    "path": request.url.path,
                    "query": request.url.query,
                    "if_match": request.headers.get("if-match"),
                    "body": body,
                }
            )

    async def endpoint(request: Request) -> Response:
        service: str = request.path_params["service"]
        rest: str = request.path_params.get("rest", "")
        if service not in SERVICES:
            return Response(f"Service {service} not found", status_code=404, media_type="text/plain")
        await log_body(request)
        if not _authorised(request):
            return Response(
                "Logon failed",  # the real answer's body is an HTML logon page (UNVERIFIED)
                status_code=401,
                headers={"www-authenticate": 'Basic realm="SAP NetWeaver Application Server [S4H/100]"'},
                media_type="text/plain",
            )
        session = request.cookies.get(SESSION_COOKIE)
        headers: dict[str, str] = {}
        if request.method in ("GET", "HEAD") and request.headers.get("x-csrf-token", "").lower() == "fetch":
            fresh, token = sim.fetch_token(session, service)
            headers["x-csrf-token"] = token
            if fresh != session:
                headers["set-cookie"] = f"{SESSION_COOKIE}={fresh}; path=/; HttpOnly"
        elif request.method in WRITES and not sim.token_ok(session, service, request.headers.get("x-csrf-token")):
            return Response(
                "CSRF token validation failed",
                status_code=403,
                headers={"x-csrf-token": "Required"},
                media_type="text/plain",
            )
        try:
            response = await dispatch(request, service, rest)
        except S4Error as exc:
            response = _fail(service, exc)
        for name, value in headers.items():
            if name == "set-cookie":
                response.headers.append("set-cookie", value)
                response.headers.append("set-cookie", "sap-usercontext=sap-client=100; path=/")
            else:
                response.headers[name] = value
        if request.method in WRITES and response.status_code < 300 and (warning := sim.warning()):
            response.headers["sap-message"] = warning
        return response

    async def dispatch(request: Request, service: str, rest: str) -> Response:
        meta = sim.meta[service]
        root = service_root(request, service)
        method = request.method
        params = dict(request.query_params)
        if rest in ("", "/"):
            if method == "HEAD":
                return Response(status_code=200)
            if method != "GET":
                raise S4Error(405, CODES["bad_request"], f"Method {method} is not allowed on the service document")
            if _wants_json(request):
                return _json({"d": {"EntitySets": sorted(meta.entity_sets)}})
            return Response(_service_xml(root, meta), media_type="application/xml")
        if rest == "$metadata":
            return Response(meta.raw, media_type="application/xml")
        if rest == "$batch":
            raise S4Error(501, CODES["not_simulated"], "$batch is not simulated")
        unknown = [p for p in params if p.startswith("$") and p not in QUERY_OPTIONS]
        if unknown:
            raise bad_request(f"System query option '{unknown[0]}' is not supported")
        if method == "HEAD":
            return Response(status_code=200)
        if method in ("GET", "POST") and not rest.endswith("/$count") and not _wants_json(request):
            raise S4Error(
                406, CODES["bad_request"], "The sim answers JSON only: send Accept: application/json or $format=json"
            )
        if rest in meta.functions:
            return await function(request, service, rest, params)
        m = re.fullmatch(r"(\w+)(?:\((.*?)\))?(?:/(\$count|\w+))?", rest)
        if m is None:
            raise not_found(rest)
        entity_set, key_text, tail = m.group(1), m.group(2), m.group(3)
        if entity_set not in meta.entity_sets:
            raise not_found(entity_set)
        if entity_set not in SETS:
            raise S4Error(501, CODES["not_simulated"], f"Entity set {entity_set} is not simulated")
        t = meta.entity_type(entity_set)
        key = None if key_text is None else parse_key(t, key_text)
        if tail == "$count" and key is None and method == "GET":
            return Response(str(len(sim.query(entity_set, params))), media_type="text/plain")
        if tail is not None:
            if key is None or method != "GET" or tail not in t.navigations:
                raise not_found(rest)
            with sim.lock:
                parent = copy.deepcopy(sim.find(entity_set, key))
            target_name, many = t.nav_targets.get(tail, ("", True))
            target = meta.types[target_name]
            expand = parse_expand(params.get("$expand"), target, meta)
            children = [sim.render(meta, root, target, c, expand) for c in parent.get(tail) or []]
            return _json({"d": {"results": children}} if many else {"d": children[0] if children else None})
        if method == "GET":
            return read(request, meta, root, entity_set, t, key, params)
        creatable, updatable = meta.set_flags.get(entity_set, (True, True))
        if method == "POST" and key is None:
            if not creatable:
                raise S4Error(
                    405, CODES["bad_request"], f"Entity set {entity_set} is not creatable (sap:creatable=false)"
                )
            body = await body_of(request)
            record = _create(sim, entity_set, body)
            expand = {nav: {} for nav in t.navigations if nav in body} if isinstance(body, dict) else {}
            if entity_set == "A_SalesOrder" and isinstance(body, dict) and "to_Item" in body:
                expand["to_Item"] = (
                    {"to_PricingElement": {}}
                    if any("to_PricingElement" in r for r in _rows(body.get("to_Item")))
                    else {}
                )
            entity = sim.render(meta, root, t, record, expand)
            out = {"Location": entity["__metadata"]["uri"]}
            if "etag" in entity["__metadata"]:
                out["ETag"] = entity["__metadata"]["etag"]
            return _json({"d": entity}, 201, out)
        if method in ("PATCH", "MERGE", "PUT") and key is not None:
            if not updatable:
                raise S4Error(
                    405, CODES["bad_request"], f"Entity set {entity_set} is not updatable (sap:updatable=false)"
                )
            body = await body_of(request)
            _update(sim, entity_set, key, body, request.headers.get("if-match"))
            return Response(status_code=204, headers={"dataserviceversion": "2.0"})
        raise S4Error(501, CODES["not_simulated"], f"{method} on {entity_set} is not simulated")

    def read(
        request: Request,
        meta: Metadata,
        root: str,
        entity_set: str,
        t: StructuredType,
        key: tuple[str, ...] | None,
        params: dict[str, str],
    ) -> Response:
        expand = parse_expand(params.get("$expand"), t, meta)
        select = parse_select(params.get("$select"), t)
        if key is not None:
            with sim.lock:
                record = copy.deepcopy(sim.find(entity_set, key))
            entity = sim.render(meta, root, t, record, expand, select)
            etag = entity["__metadata"].get("etag")
            return _json({"d": entity}, headers={"ETag": etag} if etag else None)
        rows = sim.query(entity_set, params)
        top, skip, token = _count(params, "$top"), _count(params, "$skip") or 0, _count(params, "$skiptoken") or 0
        window = rows[skip:] if top is None else rows[skip : skip + top]
        size = sim.config.page_size
        page = window[token : token + size]
        d: JSON = {"results": [sim.render(meta, root, t, r, expand, select) for r in page]}
        if params.get("$inlinecount") == "allpages":
            d["__count"] = str(len(rows))
        if token + size < len(window):
            following = {k: v for k, v in params.items() if k != "$skiptoken"}
            following["$skiptoken"] = str(token + size)
            query = "&".join(f"{k}={quote(v, safe=chr(39) + '$(),:/')}" for k, v in following.items())
            d["__next"] = f"{root}{entity_set}?{query}"
        return _json({"d": d})

    async def function(request: Request, service: str, name: str, params: dict[str, str]) -> Response:
        declared = sim.meta[service].functions[name]
        if request.method != declared.http_method:
            raise S4Error(405, CODES["bad_request"], f"Function import {name} is called with {declared.http_method}")
        if_match = request.headers.get("if-match")
        if name == "PostGoodsIssue":
            rows = sim.post_goods_issue(document_number(_function_arg(params, "DeliveryDocument")), if_match)
            return _json({"d": {"results": rows}})
        if name == "ReverseGoodsIssue":
            rows = sim.reverse_goods_issue(document_number(_function_arg(params, "DeliveryDocument")), if_match)
            return _json({"d": {"results": rows}})
        if name == "Cancel":
            return _json({"d": {"results": sim.cancel_billing(_function_arg(params, "BillingDocument"))}})
        if name == "GetPDF":
            return _json({"d": {"GetPDF": sim.pdf(_function_arg(params, "BillingDocument"))}})
        raise S4Error(501, CODES["not_simulated"], f"Function import {name} is not simulated")

    async def config(request: Request) -> Response:
        if request.method == "POST":
            try:
                merged = {**sim.config.model_dump(), **(await request.json())}
                sim.set_config(SimConfig.model_validate(merged))
            except (ValueError, ValidationError) as exc:
                return JSONResponse({"error": f"bad config: {exc}"}, status_code=400)
        return JSONResponse(sim.config.model_dump(mode="json"))

    async def csrf_expire(request: Request) -> Response:
        return JSONResponse({"expired": sim.expire_tokens()})

    async def billing(request: Request) -> Response:
        number = request.path_params.get("number")
        try:
            if number is not None:
                record = sim.clear_billing(number)
            else:
                try:
                    body = await request.json()
                except ValueError:
                    body = None
                if isinstance(body, dict) and body.get("credit_memo_request"):
                    record = sim.bill_credit_memo_request(str(body["credit_memo_request"]))
                elif isinstance(body, dict) and body.get("customer_return"):
                    record = sim.bill_customer_return(str(body["customer_return"]))
                else:
                    record = sim.create_billing(body.get("deliveries") if isinstance(body, dict) else None)
        except S4Error as exc:
            return _fail(BILLING, exc)
        meta = sim.meta[BILLING]
        root = service_root(request, BILLING)
        entity = sim.render(meta, root, meta.types["A_BillingDocumentType"], record, {"to_Item": {}})
        return _json({"d": entity}, 200 if number is not None else 201)

    async def receive(request: Request) -> Response:
        number = request.path_params["number"]
        try:
            body = await request.json()
            items = body["items"]
            if not isinstance(items, dict):
                raise TypeError("items is not an object")
            record = sim.receive_return(number, items)
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"error": f'bad body ({{"items": {{"<item>": "<qty>"}}}}): {exc}'}, 400)
        except S4Error as exc:
            return _fail(RETURNS, exc)
        meta = sim.meta[RETURNS]
        t = meta.types["A_CustomerReturnType"]
        entity = sim.render(meta, service_root(request, RETURNS), t, record, {"to_Item": {"to_ScheduleLine": {}}})
        return _json({"d": entity})

    async def stock(request: Request) -> Response:
        try:
            body = await request.json()
            row = sim.set_stock(
                str(body["Material"]),
                str(body.get("Plant") or "1710"),
                str(body.get("StorageLocation") or STORAGE_LOCATION),
                dec(body["Quantity"], "Quantity"),
            )
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"error": f"bad stock body (Material, Quantity, Plant?, StorageLocation?): {exc}"}, 400)
        except S4Error as exc:
            return _fail(STOCK, exc)
        return JSONResponse(row)

    async def bodies(request: Request) -> Response:
        with sim.lock:
            if request.method == "DELETE":
                sim.bodies.clear()
                return Response(status_code=204)
            return JSONResponse({"requests": list(sim.bodies)})

    methods = ["GET", "HEAD", "POST", "PATCH", "MERGE", "PUT", "DELETE"]
    app = Starlette(
        routes=[
            Route("/_sim/config", config, methods=["GET", "POST"]),
            Route("/_sim/csrf/expire", csrf_expire, methods=["POST"]),
            Route("/_sim/billing", billing, methods=["POST"]),
            Route("/_sim/billing/{number}/clear", billing, methods=["POST"]),
            Route("/_sim/stock", stock, methods=["POST"]),
            Route("/_sim/returns/{number}/receive", receive, methods=["POST"]),
            Route("/_sim/bodies", bodies, methods=["GET", "DELETE"]),
            *control.routes(),
            Route(ROOT + "{service}", endpoint, methods=methods),
            Route(ROOT + "{service}/{rest:path}", endpoint, methods=methods),
        ]
    )
    app.add_middleware(BaseHTTPMiddleware, dispatch=control.dispatch)
    app.state.sim = sim
    app.state.control = control
    return app


def _create(sim: S4Sim, entity_set: str, body: Any) -> JSON:
    if entity_set == "A_SalesOrder":
        return sim.create_order(body)
    if entity_set == "A_BusinessPartner":
        return sim.create_partner(body)
    if entity_set == "A_OutbDeliveryHeader":
        return sim.create_delivery(body)
    if entity_set == "A_CreditMemoRequest":
        return sim.create_credit_memo_request(body)
    if entity_set == "A_CustomerReturn":
        return sim.create_customer_return(body)
    if entity_set == "A_Product":
        return sim.create_product(body)
    if entity_set == "A_SlsPrcgConditionRecord":
        return sim.create_condition(body)
    raise S4Error(501, CODES["not_simulated"], f"Creating {entity_set} is not simulated")


def _update(sim: S4Sim, entity_set: str, key: tuple[str, ...], body: Any, if_match: str | None) -> None:
    if entity_set == "A_SalesOrder":
        sim.update_order(key, body, if_match)
    elif entity_set == "A_SalesOrderItem":
        sim.update_order_item(key, body)
    elif entity_set == "A_OutbDeliveryHeader":
        sim.update_delivery(key, body, if_match)
    elif entity_set in PARTNER_ROWS:
        sim.update_partner_row(entity_set, key, body)
    elif entity_set in ("A_Product", "A_ProductDescription", "A_ProductSalesDelivery"):
        sim.update_product_row(entity_set, key, body)
    elif entity_set == "A_SlsPrcgConditionRecord":
        sim.update_condition(key, body, if_match)
    elif entity_set == "A_CreditMemoRequest":
        sim.update_credit_memo_request(key, body, if_match)
    else:
        raise S4Error(501, CODES["not_simulated"], f"Updating {entity_set} is not simulated")


PARTNER_ROWS = frozenset(
    {"A_BusinessPartner", "A_BusinessPartnerAddress", "A_AddressEmailAddress", "A_AddressPhoneNumber"}
)
"""The business partner sets a ``PATCH`` reaches (the others answer 501)."""


def _service_xml(root: str, meta: Metadata) -> str:
    collections = "".join(
        f'<app:collection href="{s}"><atom:title>{s}</atom:title></app:collection>' for s in meta.entity_sets
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><app:service xml:base="'
        + root
        + '" xmlns:app="http://www.w3.org/2007/app" xmlns:atom="http://www.w3.org/2005/Atom">'
        + f"<app:workspace><atom:title>Data</atom:title>{collections}</app:workspace></app:service>"
    )


def sample_seed() -> JSON:
    """The sold-to party and material of SAP's recorded create (``USCU_S12``, ``MZ-FG-M550``), a
    generic web customer ``WEBSHOP``, plant and shipping point ``1710``, and a material for each
    sellable SKU of the Magento sim's sample catalog at its price (SAP keeps material numbers in
    upper case)."""
    from sandbox.sims.magento_orders import sample_catalog

    materials = [
        {
            "Material": p["sku"].upper(),
            "Text": p["name"][:40],
            "Price": str(p["price"]),
            "Unit": "PC",
            "Plant": "1710",
            "Stock": "100",
        }
        for p in sample_catalog()
        if p.get("type_id") != "configurable"
    ]
    materials.append(
        {
            "Material": "MZ-FG-M550",
            "Text": "M550 Bike",
            "Price": "1500.00",
            "Unit": "PC",
            "Plant": "1710",
            "Stock": "25",
        }
    )
    return {
        "plants": [{"Plant": "1710", "ShippingPoint": "1710"}],
        "customers": [
            {"Customer": "USCU_S12", "Name": "Domestic US Customer 12", "Currency": "USD", "PaymentTerms": "0001"},
            {"Customer": "WEBSHOP", "Name": "Web shop customers", "Currency": "USD", "PaymentTerms": "0001"},
        ],
        "materials": materials,
    }
