"""An in-memory Acumatica tenant speaking the contract-based REST API (endpoint Default,
versions 22.200.001, 23.200.001 and 24.200.001), for tests and the local stack.

What it serves:

- ``GET /entity`` the endpoints; ``POST /entity/auth/login`` ``{"name","password","company"|"tenant",
  "branch"}`` -> 204 + ``ASP.NET_SessionId``/``.ASPXAUTH`` cookies (401 ``{"message"}`` for bad
  credentials); ``POST /entity/auth/logout`` ends the session. OAuth: ``POST /identity/connect/token``
  (form: grant_type password | refresh_token, client_id, ...) -> Bearer tokens. Without a session
  or token every entity call is 401.
- ``/entity/Default/<ver>/<Entity>`` for Customer, StockItem, SalesOrder, Shipment, SalesInvoice,
  Payment and the catalog entities (AttributeDefinition, ItemClass, ItemSalesCategory,
  CustomerPriceClass, CustomerClass, Warehouse, NonStockItem, TemplateItems, KitSpecification,
  ItemWarehouse, InventoryReceipt, SalesPriceWorksheet; their rules, the stock and price inquiries
  and the catalog seed keys are described in sandbox/sims/acumatica_catalog.py): ``GET`` with
  ``$filter`` (OData subset, see below), ``$expand``, ``$select``, ``$top``, ``$skip``;
  ``GET``/``DELETE`` by keys (``/SalesOrder/SO/000001``) or by GUID; ``PUT`` upserts by ``id``,
  key fields or ``$filter`` (no key -> insert with auto numbering), honouring
  ``If-None-Match: *`` / ``If-Match: *`` (412); validation errors -> 422 with the record echoed and
  ``error`` beside the offending values. ``POST /<Entity>/<Action>`` runs actions (at once); the
  long ones answer 202 + ``Location: .../<Action>/status/<GUID>``, which answers 204.
- Business rules: sales order line pricing, discounts, premium freight, client-set taxes and
  totals; shipments (from ``SalesOrderCreateShipment`` or ``PUT Shipment``, never more than is left
  to ship), confirmation, invoicing (``PrepareInvoice`` / ``PrepareSalesInvoice``; freight and tax on
  an order's first invoice), release of invoices and payments, order status Open -> Shipping ->
  Back Order / Completed.

Seed (``POST /_sim/seed``), every key optional; values plain or already wrapped
(``{"CustomerID": "C1"}`` or ``{"CustomerID": {"value": "C1"}}``), nested objects are linked
entities and lists are details::

    {"customers":     [{"CustomerID", "CustomerName", "MainContact": {"Email", ...}, ...}],
     "stock_items":   [{"InventoryID", "Description", "DefaultPrice", "QtyOnHand"?, "WarehouseID"?}],
     "warehouses":    ["WHOLESALE", ...] or [{"WarehouseID", "Description"}],
     "sales_orders":  [SalesOrder records as for PUT, OrderNbr optional],
     "shipments" | "sales_invoices" | "payments": [records as for PUT, "Status" kept],
     "demo":          true,   # the demo company the official Postman collection names
     ...the catalog keys (attributes, item_classes, sales_categories, price_classes, customer_classes,
        template_items, non_stock_items, kits, item_warehouses, stock, sales_prices, price_worksheets,
        inventory_receipts): see sandbox/sims/acumatica_catalog.py}

Records go through the same rules as a ``PUT``, in dependency order (``SEED_PLAN``); a record's
``id`` (and its detail lines' ids) are kept, so recorded requests that address records by GUID
find them. The answer lists what was created, e.g.
``{"customers": [{"id", "CustomerID"}], "stock_items": [{"id", "InventoryID"}], ...}``.
``app.state.sim`` is the ``AcumaticaSim`` (thread-safe: one re-entrant lock guards the state).
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.sims.control import SimControl

# ----------------------------------------------------------------------------------------------
# $filter: the OData subset Acumatica accepts. Comparisons: eq ne gt ge lt le; and or not;
# parentheses; substringof('x', F), startswith(F, 'x'), endswith(F, 'x'); literals 'string'
# ('' escapes a quote), numbers, true/false/null, datetimeoffset'...', datetime'...', guid'...'.
# Fields walk linked entities with '/'; string comparisons ignore case (SQL collation).
# ----------------------------------------------------------------------------------------------

Getter = Callable[[str], Any]
"""Reads a field path of the record under test (raises ``FilterError`` for detail paths)."""


class FilterError(ValueError):
    """The filter cannot be parsed or evaluated."""


@dataclass(frozen=True)
class Field:
    path: str


@dataclass(frozen=True)
class Literal:
    value: Any


@dataclass(frozen=True)
class Compare:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Logic:
    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Not:
    inner: Expr


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Node, ...]


Node = Field | Literal | Call
Expr = Compare | Logic | Not | Call | Field

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<typed>(?:datetimeoffset|datetime|guid)'(?:[^']|'')*')
    | (?P<string>'(?:[^']|'')*')
    | (?P<number>-?\d+(?:\.\d+)?(?:[mMdDfFlL])?)(?![\w/])
    | (?P<punct>[(),])
    | (?P<word>[A-Za-z_][\w./]*)
    )""",
    re.VERBOSE,
)
_COMPARE = {"eq", "ne", "gt", "ge", "lt", "le"}
_FUNCTIONS = {"substringof", "startswith", "endswith", "tolower", "toupper", "trim"}


def parse_datetime(text: str) -> datetime:
    """An ISO date/time; naive values are taken as UTC."""
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise FilterError(f"not a date/time: {text!r}") from exc
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise FilterError(f"unexpected input at position {pos}: {text[pos : pos + 20]!r}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise FilterError("unexpected end of filter")
        self.i += 1
        return tok

    def expect(self, punct: str) -> None:
        kind, text = self.take()
        if kind != "punct" or text != punct:
            raise FilterError(f"expected {punct!r}, got {text!r}")

    def parse(self) -> Expr:
        expr = self.or_expr()
        if self.peek() is not None:
            raise FilterError(f"unexpected {self.peek()[1]!r}")  # type: ignore[index]
        return expr

    def _is_word(self, word: str) -> bool:
        tok = self.peek()
        return tok is not None and tok[0] == "word" and tok[1].lower() == word

    def or_expr(self) -> Expr:
        left = self.and_expr()
        while self._is_word("or"):
            self.take()
            left = Logic("or", left, self.and_expr())
        return left

    def and_expr(self) -> Expr:
        left = self.unary()
        while self._is_word("and"):
            self.take()
            left = Logic("and", left, self.unary())
        return left

    def unary(self) -> Expr:
        if self._is_word("not"):
            self.take()
            return Not(self.unary())
        return self.comparison()

    def comparison(self) -> Expr:
        tok = self.peek()
        if tok == ("punct", "("):
            self.take()
            inner = self.or_expr()
            self.expect(")")
            return inner
        left = self.operand()
        nxt = self.peek()
        if nxt and nxt[0] == "word" and nxt[1].lower() in _COMPARE:
            op = self.take()[1].lower()
            return Compare(op, left, self.operand())
        if isinstance(left, Call | Field):
            return left
        raise FilterError("a literal is not a condition")

    def operand(self) -> Node:
        kind, text = self.take()
        if kind == "string":
            return Literal(text[1:-1].replace("''", "'"))
        if kind == "typed":
            prefix, _, rest = text.partition("'")
            raw = rest[:-1].replace("''", "'")
            if prefix in ("datetimeoffset", "datetime"):
                return Literal(parse_datetime(raw))
            return Literal(raw)
        if kind == "number":
            try:
                return Literal(Decimal(text.rstrip("mMdDfFlL")))
            except InvalidOperation as exc:
                raise FilterError(f"bad number {text!r}") from exc
        if kind == "word":
            low = text.lower()
            if low in ("true", "false"):
                return Literal(low == "true")
            if low == "null":
                return Literal(None)
            if low in _FUNCTIONS and self.peek() == ("punct", "("):
                self.take()
                args: list[Node] = [self.operand()]
                while self.peek() == ("punct", ","):
                    self.take()
                    args.append(self.operand())
                self.expect(")")
                return Call(low, tuple(args))
            if low in _COMPARE or low in ("and", "or", "not"):
                raise FilterError(f"unexpected operator {text!r}")
            return Field(text)
        raise FilterError(f"unexpected {text!r}")


_CUSTOM_FIELD = re.compile(r"cf\.\w+\(\s*f\s*=\s*'([\w]+)\.([\w]+)'\s*\)")
"""A custom field in a filter, ``cf.Decimal(f='Document.CuryBalanceWOTotal')``: read from ``custom``."""


def odata_parse(text: str) -> Expr:
    """Parse a ``$filter`` expression."""
    if not text.strip():
        raise FilterError("empty filter")
    return _Parser(_CUSTOM_FIELD.sub(r"custom/\1/\2", text)).parse()


def odata_fields(expr: Expr | Node) -> list[str]:
    """Every field path the expression reads."""
    if isinstance(expr, Field):
        return [expr.path]
    if isinstance(expr, Compare | Logic):
        return odata_fields(expr.left) + odata_fields(expr.right)
    if isinstance(expr, Not):
        return odata_fields(expr.inner)
    if isinstance(expr, Call):
        return [p for a in expr.args for p in odata_fields(a)]
    return []


def _value(node: Node, get: Getter) -> Any:
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Field):
        return get(node.path)
    args = [_value(a, get) for a in node.args]
    if node.name in ("tolower", "toupper", "trim"):
        s = "" if args[0] is None else str(args[0])
        return s.lower() if node.name == "tolower" else s.upper() if node.name == "toupper" else s.strip()
    if len(args) != 2:
        raise FilterError(f"{node.name} takes two arguments")
    a, b = ("" if x is None else str(x).casefold() for x in args)
    if node.name == "substringof":
        return a in b
    if node.name == "startswith":
        return a.startswith(b)
    return a.endswith(b)


def _coerce(a: Any, b: Any) -> tuple[Any, Any]:
    if isinstance(b, datetime) and not isinstance(a, datetime):
        a, b = b, a
        swapped = True
    else:
        swapped = False
    if isinstance(a, datetime) and b is not None:
        b = b if isinstance(b, datetime) else parse_datetime(str(b))
    elif isinstance(a, bool) or isinstance(b, bool):
        a, b = bool(a) if a is not None else None, bool(b) if b is not None else None
    elif isinstance(a, int | float | Decimal) or isinstance(b, int | float | Decimal):
        try:
            a = None if a is None else Decimal(str(a))
            b = None if b is None else Decimal(str(b))
        except InvalidOperation as exc:
            raise FilterError(f"cannot compare {a!r} with {b!r}") from exc
    elif isinstance(a, str) and isinstance(b, str):
        a, b = a.casefold(), b.casefold()
    return (b, a) if swapped else (a, b)


def _compare(op: str, a: Any, b: Any) -> bool:
    a, b = _coerce(a, b)
    if op == "eq":
        return bool(a == b)
    if op == "ne":
        return bool(a != b)
    if a is None or b is None:
        return False
    try:
        if op == "gt":
            return bool(a > b)
        if op == "ge":
            return bool(a >= b)
        if op == "lt":
            return bool(a < b)
        return bool(a <= b)
    except TypeError as exc:
        raise FilterError(f"cannot compare {a!r} with {b!r}") from exc


_BOUND_OPS: dict[str, Callable[[datetime, datetime], bool]] = {
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
}


def _time_bounds(expr: Expr) -> list[tuple[str, str, datetime]]:
    """The ``(field, op, time)`` comparisons of a top-level chain of ``and`` on plain fields (a row
    that fails one of them fails the filter)."""
    if isinstance(expr, Logic):
        return _time_bounds(expr.left) + _time_bounds(expr.right) if expr.op == "and" else []
    if (
        isinstance(expr, Compare)
        and expr.op in _BOUND_OPS
        and isinstance(expr.left, Field)
        and "/" not in expr.left.path
        and isinstance(expr.right, Literal)
        and isinstance(expr.right.value, datetime)
    ):
        return [(expr.left.path, expr.op, expr.right.value)]
    return []


def _only_bounds(expr: Expr) -> bool:
    """Whether ``expr`` is nothing but a chain of ``and`` over the comparisons ``_time_bounds`` takes."""
    if isinstance(expr, Logic):
        return expr.op == "and" and _only_bounds(expr.left) and _only_bounds(expr.right)
    return bool(_time_bounds(expr))


def odata_evaluate(expr: Expr, get: Getter) -> bool:
    """Whether the record read by ``get`` satisfies ``expr``."""
    if isinstance(expr, Logic):
        if expr.op == "and":
            return odata_evaluate(expr.left, get) and odata_evaluate(expr.right, get)
        return odata_evaluate(expr.left, get) or odata_evaluate(expr.right, get)
    if isinstance(expr, Not):
        return not odata_evaluate(expr.inner, get)
    if isinstance(expr, Compare):
        return _compare(expr.op, _value(expr.left, get), _value(expr.right, get))
    return bool(_value(expr, get))


# ----------------------------------------------------------------------------------------------
# Record helpers: records are kept exactly in the wire shape ({"Field": {"value": ...}}).
# ----------------------------------------------------------------------------------------------

Rec = dict[str, Any]
Tree = dict[str, "Tree"]

SYSTEM = {"id", "rowNumber", "_links", "delete", "error", "note", "custom", "files"}
DETAILS = {
    "Details",
    "Payments",
    "Shipments",
    "TaxDetails",
    "Packages",
    "PackageContents",
    "Orders",
    "OrdersToApply",
    "DocumentsToApply",
    "ApplicationsInvoice",
    "ApplicationsCreditMemo",
    "Attributes",
    "WarehouseDetails",
    "Allocations",
    "CreditCardTransactionInfo",
    "Categories",
    "CrossReferences",
    "Contacts",
    "Locations",
}
CANT_FIND = "'{}' cannot be found in the system."
CANT_BE_EMPTY = "'{}' cannot be empty."
CONFIRMED = ("Confirmed", "Invoiced", "Completed")
AR_DOC_TYPES = {"INV": "Invoice", "CRM": "Credit Memo", "DRM": "Debit Memo"}
"""The stored codes of AR document types, accepted for their names."""


class ApiError(Exception):
    """Ends a request with ``status`` and an Acumatica-shaped body."""

    def __init__(self, status: int, message: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class Rejected(Exception):
    """A record failed validation: 422 with the record echoed and its field errors."""

    def __init__(self, record: Rec, message: str) -> None:
        super().__init__(message)
        self.record = record


def new_id() -> str:
    return str(uuid.uuid4())


def val(rec: Rec | None, name: str, default: Any = None) -> Any:
    """The unwrapped value of field ``name`` (``default`` when absent or null)."""
    if not rec:
        return default
    f = rec.get(name)
    if isinstance(f, dict) and "value" in f:
        return default if f["value"] is None else f["value"]
    return default


def setv(rec: Rec, name: str, value: Any) -> None:
    if isinstance(value, Decimal):
        value = float(value)
    old = rec.get(name)
    rec[name] = {"value": value}
    if isinstance(old, dict) and "error" in old:
        rec[name]["error"] = old["error"]


def has(rec: Rec, name: str) -> bool:
    f = rec.get(name)
    return isinstance(f, dict) and "value" in f and f["value"] is not None


def num(rec: Rec | None, name: str, default: Decimal = Decimal(0)) -> Decimal:
    v = val(rec, name)
    if v is None or v == "":
        return default
    if isinstance(v, bool):
        raise _FieldError(name, f"'{name}' must be a number.")
    try:
        return Decimal(str(v))
    except InvalidOperation as exc:
        raise _FieldError(name, f"'{name}' must be a number.") from exc


def flag(rec: Rec | None, name: str) -> bool:
    v = val(rec, name)
    if isinstance(v, str):
        return v.strip().lower() == "true"
    return bool(v)


def fail(rec: Rec, name: str, message: str) -> None:
    """Put a field-level error beside the value, as Acumatica does."""
    f = rec.get(name)
    if not (isinstance(f, dict) and "value" in f):
        f = {"value": None}
        rec[name] = f
    f["error"] = message


def cents(x: Decimal) -> Decimal:
    return x.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


class _FieldError(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def record_errors(rec: Any, path: str = "") -> list[str]:
    """Every ``error`` in a record, as ``path: message``."""
    out: list[str] = []
    if isinstance(rec, dict):
        for k, v in rec.items():
            if k == "error" and isinstance(v, str):
                out.append(f"{path or 'record'}: {v}")
            elif isinstance(v, dict | list):
                out.extend(record_errors(v, f"{path}/{k}" if path else k))
    elif isinstance(rec, list):
        for i, item in enumerate(rec):
            out.extend(record_errors(item, f"{path}[{i}]"))
    return out


def merge(target: Rec, body: Rec, path: str = "") -> None:
    """Apply a PUT body to a stored record: fields replace, linked entities merge, details upsert."""
    for k, v in body.items():
        where = f"{path}{k}"
        if k in ("id", "rowNumber", "_links", "delete", "error", "files"):
            continue
        if k == "note":
            target["note"] = {"value": v.get("value") if isinstance(v, dict) else v}
        elif k == "custom":
            if not isinstance(v, dict):
                raise ApiError(400, f"'{where}' must be an object")
            merged = target.setdefault("custom", {})
            for view, flds in v.items():
                if isinstance(flds, dict):
                    merged.setdefault(view, {}).update(copy.deepcopy(flds))
        elif isinstance(v, dict) and "value" in v:
            target[k] = {"value": v["value"]}
        elif isinstance(v, dict):
            sub = target.get(k)
            if not isinstance(sub, dict) or "value" in sub:
                sub = {"id": new_id()}
                target[k] = sub
            merge(sub, v, f"{where}/")
        elif isinstance(v, list):
            current = target.get(k)
            if not isinstance(current, list):
                current = []
                target[k] = current
            _merge_detail(current, v, f"{where}/")
        elif v is None:
            continue
        else:
            raise ApiError(400, f"The value of '{where}' must be an object such as {{\"value\": ...}}.")


def _merge_detail(lines: list[Rec], body: list[Any], path: str) -> None:
    for item in body:
        if not isinstance(item, dict):
            raise ApiError(400, f"Each line of '{path.rstrip('/')}' must be an object.")
        line_id = item.get("id")
        if line_id:
            found = next((ln for ln in lines if ln.get("id") == str(line_id)), None)
            if found is None:
                if item.get("delete"):
                    continue
                raise ApiError(400, f"No line of '{path.rstrip('/')}' has id {line_id}.")
            if item.get("delete"):
                lines.remove(found)
                continue
            merge(found, item, path)
        elif not item.get("delete"):
            new: Rec = {"id": new_id(), "_new": True}
            merge(new, item, path)
            lines.append(new)


def parse_paths(text: str | None) -> Tree | None:
    """``"Details/Allocations,Packages"`` as a tree of names; ``None`` when not given."""
    if text is None:
        return None
    tree: Tree = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        node = tree
        for seg in part.split("/"):
            node = node.setdefault(seg.strip(), {})
    return tree


def render(
    rec: Rec,
    expand: Tree | None,
    select: Tree | None,
    *,
    row: int = 1,
    top: bool = True,
    link: str = "",
    everything: bool = False,
) -> Rec:
    """A stored record as the API returns it: nested entities only when expanded (or selected)."""
    out: Rec = {"id": rec["id"], "rowNumber": row}
    out["note"] = copy.deepcopy(rec.get("note")) if rec.get("note") else ({"value": ""} if top else None)
    for k in sorted(rec):
        if k in SYSTEM or k.startswith("_"):
            continue
        v = rec[k]
        if isinstance(v, dict) and "value" in v:
            if select is None or not select or k in select or everything:
                out[k] = {kk: vv for kk, vv in v.items() if kk in ("value", "error")}
                if isinstance(out[k]["value"], Decimal):
                    out[k]["value"] = float(out[k]["value"])
            continue
        sub_sel = None if select is None or k not in select or not select[k] else select[k]
        wanted = everything or (expand is not None and k in expand) or (select is not None and k in select)
        if not wanted:
            continue
        sub_exp = (expand or {}).get(k, {})
        if isinstance(v, dict):
            out[k] = render(v, sub_exp, sub_sel, top=False, everything=everything)
        elif isinstance(v, list):
            out[k] = [
                render(item, sub_exp, sub_sel, row=i + 1, top=False, everything=everything)
                for i, item in enumerate(v)
                if isinstance(item, dict)
            ]
    out["custom"] = copy.deepcopy(rec.get("custom", {}))
    if "error" in rec:
        out["error"] = rec["error"]
    if top and link:
        out["_links"] = {"self": link, "files:put": link + "/files/{filename}"}
    return out


# ----------------------------------------------------------------------------------------------
# The sim
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """How an entity is keyed, numbered and timestamped."""

    keys: tuple[str, ...]
    modified: str = "LastModifiedDateTime"
    defaults: tuple[tuple[str, str], ...] = ()
    prefix: str = ""
    digits: int = 6
    key_labels: tuple[str, ...] = ()
    numbered: bool = False
    """The last key is given by the sim when a new record lacks it."""
    int_key: bool = False
    """The numbered key is an integer (ItemSalesCategory.CategoryID)."""
    also_modified: tuple[str, ...] = ()
    """More fields holding the same change time (StockItem's LastModifiedDateTime)."""
    created: str = ""
    """The field holding the creation time, if the entity has one."""


SPECS: dict[str, Spec] = {
    "Customer": Spec(("CustomerID",), prefix="C", digits=9, key_labels=("Customer ID",)),
    "StockItem": Spec(
        ("InventoryID",), modified="LastModified", key_labels=("Inventory ID",), also_modified=("LastModifiedDateTime",)
    ),
    "SalesOrder": Spec(
        ("OrderType", "OrderNbr"), modified="LastModified", defaults=(("OrderType", "SO"),), numbered=True
    ),
    "Shipment": Spec(("ShipmentNbr",), numbered=True),
    "SalesInvoice": Spec(("Type", "ReferenceNbr"), defaults=(("Type", "Invoice"),), numbered=True),
    "Payment": Spec(("Type", "ReferenceNbr"), defaults=(("Type", "Payment"),), numbered=True),
    # the catalog (rules in sandbox/sims/acumatica_catalog.py)
    "AttributeDefinition": Spec(("AttributeID",), key_labels=("Attribute ID",), created="CreatedDateTime"),
    "ItemClass": Spec(("ClassID",), key_labels=("Class ID",)),
    "ItemSalesCategory": Spec(("CategoryID",), numbered=True, int_key=True, digits=1),
    "CustomerPriceClass": Spec(("PriceClassID",), key_labels=("Price Class ID",), created="CreatedDateTime"),
    "CustomerClass": Spec(("ClassID",), key_labels=("Class ID",), created="CreatedDateTime"),
    "Warehouse": Spec(("WarehouseID",), key_labels=("Warehouse ID",)),
    "NonStockItem": Spec(("InventoryID",), key_labels=("Inventory ID",)),
    "TemplateItems": Spec(
        ("InventoryID",), modified="LastModified", key_labels=("Inventory ID",), also_modified=("LastModifiedDateTime",)
    ),
    "KitSpecification": Spec(("KitInventoryID", "RevisionID"), key_labels=("Kit Inventory ID", "Revision")),
    "ItemWarehouse": Spec(
        ("InventoryID", "WarehouseID"), key_labels=("Inventory ID", "Warehouse"), created="CreatedDateTime"
    ),
    "InventoryReceipt": Spec(("ReferenceNbr",), numbered=True),
    "SalesPriceWorksheet": Spec(("ReferenceNbr",), numbered=True, created="CreatedDateTime"),
}
CATALOG = {
    "AttributeDefinition",
    "ItemClass",
    "ItemSalesCategory",
    "CustomerPriceClass",
    "CustomerClass",
    "Warehouse",
    "NonStockItem",
    "TemplateItems",
    "KitSpecification",
    "ItemWarehouse",
    "InventoryReceipt",
    "SalesPriceWorksheet",
}
"""Entities whose rules live in sandbox/sims/acumatica_catalog.py."""
INQUIRIES = ("StorageDetailsInquiry", "InventoryQuantityAvailable", "InventorySummaryInquiry", "SalesPricesInquiry")
"""Inquiry entities: ``PUT`` a filter, get it back with the ``$expand``ed results."""
ACTIONS: dict[str, dict[str, bool]] = {
    # action -> answers 202 + Location (long-running) or 204
    "SalesOrder": {
        "SalesOrderCreateShipment": True,
        "SalesOrderCreateReceipt": True,
        "PrepareSalesInvoice": True,
        "ReopenSalesOrder": False,
        "AutoRecalculateDiscounts": False,
        "CancelSalesOrder": False,
        "ReleaseFromCreditHoldSalesOrder": False,
        "ReleaseFromHold": False,
        "PutOnHold": False,
    },
    "Shipment": {"ConfirmShipment": True, "PrepareInvoice": True, "CorrectShipment": False},
    "SalesInvoice": {"ReleaseSalesInvoice": True},
    "Payment": {"ReleasePayment": True, "VoidPayment": True},
    "StockItem": {},
    "Customer": {},
    "InventoryReceipt": {"ReleaseInventoryReceipt": True},
    "SalesPriceWorksheet": {"ReleaseSalesPriceWorksheet": True},
}
VERSIONS = ("22.200.001", "23.200.001", "24.200.001")


class AcumaticaSim:
    """The in-memory state of one Acumatica tenant, and the operations on it (thread-safe)."""

    def __init__(self, username: str = "admin", password: str = "123", company: str = "Company") -> None:  # noqa: S107 (the sim's demo login)
        self.username, self.password, self.company = username, password, company
        self.lock = threading.RLock()
        self._times: dict[str, datetime] = {}
        """Stored change times as parsed (``_in_time_bounds``)."""
        self.session_idle_s = 600.0
        self.token_ttl_s = 3600
        self.reset()

    # -- state -------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every record, session and token."""
        with self.lock:
            self.records: dict[str, dict[str, Rec]] = {name: {} for name in SPECS}
            self.index: dict[tuple[str, tuple[str, ...]], str] = {}
            self.counters: dict[tuple[str, str], int] = {}
            self.sessions: dict[str, float] = {}
            self.tokens: dict[str, float] = {}
            self.refresh_tokens: dict[str, str] = {}
            self.operations: dict[str, str] = {}
            self.warehouses: set[str] = set()
            self.freight_invoiced: set[tuple[str, str]] = set()
            self.logins = 0
            self._last_stamp = datetime(2000, 1, 1, tzinfo=UTC)
            from sandbox.sims.acumatica_catalog import Catalog

            self.catalog = Catalog(self)

    def now(self) -> datetime:
        """A strictly increasing UTC time (so ``gt`` filters never miss a change)."""
        stamp = datetime.now(UTC).replace(microsecond=datetime.now(UTC).microsecond // 1000 * 1000)
        if stamp <= self._last_stamp:
            stamp = self._last_stamp + timedelta(milliseconds=1)
        self._last_stamp = stamp
        return stamp

    def stamp(self) -> str:
        return self.now().isoformat(timespec="milliseconds")

    # -- auth --------------------------------------------------------------------------------

    def login(self, body: Any) -> str:
        """Check the credentials; a new session id."""
        if not isinstance(body, dict):
            raise ApiError(400, "The request is invalid.")
        name, password = body.get("name"), body.get("password")
        company = body.get("company") or body.get("tenant") or ""
        if name != self.username or password != self.password:
            raise ApiError(401, "Invalid credentials. Please try again.")
        if company and str(company).casefold() != self.company.casefold():
            raise ApiError(401, f"Invalid credentials. Tenant '{company}' was not found.")
        sid = secrets.token_hex(12)
        with self.lock:
            self.sessions[sid] = time.monotonic()
            self.logins += 1
        return sid

    def logout(self, sid: str | None) -> None:
        with self.lock:
            if sid:
                self.sessions.pop(sid, None)

    def issue_token(self, form: dict[str, str]) -> dict[str, Any]:
        """The OAuth token endpoint (password and refresh_token grants)."""
        grant = form.get("grant_type", "")
        if not form.get("client_id"):
            raise ApiError(400, "invalid_client", {"error": "invalid_client"})
        with self.lock:
            if grant == "password":
                if form.get("username") != self.username or form.get("password") != self.password:
                    raise ApiError(
                        400,
                        "invalid_grant",
                        {"error": "invalid_grant", "error_description": "invalid_username_or_password"},
                    )
            elif grant == "refresh_token":
                if self.refresh_tokens.pop(form.get("refresh_token", ""), None) is None:
                    raise ApiError(400, "invalid_grant", {"error": "invalid_grant"})
            else:
                raise ApiError(400, "unsupported_grant_type", {"error": "unsupported_grant_type"})
            access, refresh = secrets.token_hex(16), secrets.token_hex(16)
            self.tokens[access] = time.monotonic() + self.token_ttl_s
            self.refresh_tokens[refresh] = access
        return {
            "access_token": access,
            "expires_in": self.token_ttl_s,
            "token_type": "Bearer",
            "refresh_token": refresh,
            "scope": form.get("scope", "api") or "api",
        }

    def authorised(self, sid: str | None, bearer: str | None) -> bool:
        now = time.monotonic()
        with self.lock:
            if bearer is not None:
                exp = self.tokens.get(bearer)
                return exp is not None and exp > now
            if sid and sid in self.sessions:
                if now - self.sessions[sid] > self.session_idle_s:
                    del self.sessions[sid]
                    return False
                self.sessions[sid] = now
                return True
        return False

    # -- lookups -----------------------------------------------------------------------------

    def _key_of(self, entity: str, rec: Rec) -> tuple[str, ...] | None:
        spec = SPECS[entity]
        parts = []
        for k in spec.keys:
            v = val(rec, k)
            if v is None or str(v).strip() == "":
                return None
            parts.append(str(v).strip().casefold())
        return tuple(parts)

    def find(self, entity: str, keys: tuple[str, ...]) -> Rec | None:
        rid = self.index.get((entity, tuple(k.strip().casefold() for k in keys)))
        return self.records[entity].get(rid) if rid else None

    def locate(self, entity: str, parts: list[str]) -> Rec | None:
        """A record by GUID or by its key values (``["SO", "000001"]``)."""
        if len(parts) == 1:
            try:
                uuid.UUID(parts[0])
                rec = self.records[entity].get(parts[0].lower())
                if rec is not None:
                    return rec
            except ValueError:
                pass
        spec = SPECS[entity]
        if len(parts) != len(spec.keys):
            return None
        return self.find(entity, tuple(parts))

    def order(self, order_type: str, nbr: str) -> Rec | None:
        return self.find("SalesOrder", (order_type or "SO", nbr))

    def _next_number(self, entity: str, rec: Rec) -> str:
        spec = SPECS[entity]
        scope = str(val(rec, spec.keys[0], "")) if len(spec.keys) > 1 else ""
        n = self.counters.get((entity, scope), 0)
        while True:
            n += 1
            nbr = f"{spec.prefix}{n:0{spec.digits}d}"
            keys = (*((scope,) if len(spec.keys) > 1 else ()), nbr)
            if self.find(entity, keys) is None:
                self.counters[(entity, scope)] = n
                return nbr

    def _store(self, entity: str, rec: Rec) -> None:
        key = self._key_of(entity, rec)
        assert key is not None
        self.records[entity][rec["id"]] = rec
        self.index[(entity, key)] = rec["id"]

    def _touch(self, entity: str, rec: Rec) -> None:
        spec = SPECS[entity]
        stamp = self.stamp()
        for name in (spec.modified, *spec.also_modified):
            setv(rec, name, stamp)
        if spec.created and not has(rec, spec.created):
            setv(rec, spec.created, stamp)

    def _clean(self, rec: Any) -> None:
        """Drop bookkeeping markers and field errors before a record is stored."""
        if isinstance(rec, dict):
            rec.pop("_new", None)
            rec.pop("error", None)
            for v in rec.values():
                if isinstance(v, dict) and "value" in v:
                    v.pop("error", None)
                else:
                    self._clean(v)
        elif isinstance(rec, list):
            for item in rec:
                self._clean(item)

    # -- query ---------------------------------------------------------------------------------

    def query(self, entity: str, params: dict[str, str]) -> list[Rec]:
        """Records matching ``$filter`` after ``$skip``, at most ``$top``."""
        expr = None
        if params.get("$filter"):
            try:
                expr = odata_parse(params["$filter"])
                for path in odata_fields(expr):
                    self._check_filter_path(entity, path)
            except FilterError as exc:
                raise ApiError(400, f"Invalid $filter: {exc}") from exc
        top = _int_param(params, "$top")
        skip = _int_param(params, "$skip") or 0
        out: list[Rec] = []
        with self.lock:
            rows = list(self.records[entity].values())
        if expr is not None:
            bounds = _time_bounds(expr)
            rows, decided = self._in_time_bounds(rows, bounds)
            if bounds and decided and _only_bounds(expr):  # the rows left are the matches: skip by slicing
                return rows[skip : None if top is None else skip + top]
        matched = 0
        for rec in rows:
            if expr is not None:
                try:
                    ok = odata_evaluate(expr, lambda p, r=rec: _read_path(r, p))  # type: ignore[misc]
                except FilterError as exc:
                    raise ApiError(400, f"Invalid $filter: {exc}") from exc
                if not ok:
                    continue
            matched += 1
            if matched <= skip:
                continue
            out.append(rec)
            if top is not None and len(out) >= top:
                break
        return out

    def _in_time_bounds(self, rows: list[Rec], bounds: list[tuple[str, str, datetime]]) -> tuple[list[Rec], bool]:
        """The rows that can meet a filter's top-level time bounds (``LastModifiedDateTime gt X and
        ... le Y``), found by comparing stored times parsed once, as a real Acumatica's index does,
        and whether each of them met every bound (False: some are left for the full filter to
        judge). A time-window poll or a load's ``$skip`` page over 100k records would otherwise
        evaluate the whole expression on each of them."""
        decided = True
        for field, op, bound in bounds:
            kept = []
            for rec in rows:
                cell = rec.get(field)
                if isinstance(cell, list):
                    kept.append(rec)  # a detail: the full filter says why it cannot be filtered on
                    decided = False
                    continue
                raw = cell.get("value") if isinstance(cell, dict) else None
                if raw is None:
                    continue  # absent or null compares false with every bound
                at = self._times.get(raw) if isinstance(raw, str) else None
                if at is None:
                    try:
                        at = raw if isinstance(raw, datetime) else parse_datetime(str(raw))
                    except FilterError:
                        kept.append(rec)  # not a time: the full filter decides
                        decided = False
                        continue
                    if isinstance(raw, str):
                        if len(self._times) > 500_000:
                            self._times.clear()
                        self._times[raw] = at
                if _BOUND_OPS[op](at, bound):
                    kept.append(rec)
            rows = kept
        return rows, decided

    def _check_filter_path(self, entity: str, path: str) -> None:
        segs = path.split("/")
        for seg in segs[:-1]:
            if seg in DETAILS:
                raise FilterError(f"filtering on the detail entity '{seg}' is not supported")
        if segs[-1] in DETAILS:
            raise FilterError(f"'{segs[-1]}' is a detail entity, not a field")

    # -- writes --------------------------------------------------------------------------------

    def put(self, entity: str, body: Any, params: dict[str, str], headers: dict[str, str]) -> Rec:
        """Insert or update one record; the stored record (raises ``Rejected`` on 422)."""
        if not isinstance(body, dict):
            raise ApiError(400, "The request is invalid.", _invalid("The request body must be a JSON object."))
        spec = SPECS[entity]
        with self.lock:
            existing = self._target(entity, body, params)
            insert_only = headers.get("if-none-match", "").strip() == "*"
            update_only = headers.get("if-match", "").strip() == "*"
            if existing is not None and insert_only:
                raise ApiError(412, "The record already exists (If-None-Match: *).")
            if existing is None and update_only:
                raise ApiError(412, "No entity satisfies the condition (If-Match: *).")
            cand: Rec = copy.deepcopy(existing) if existing is not None else {"id": new_id()}
            merge(cand, body)
            if existing is None:
                for name, default in spec.defaults:
                    if not has(cand, name):
                        setv(cand, name, default)
            elif self._key_of(entity, cand) != self._key_of(entity, existing):
                for k in spec.keys:
                    cand[k] = copy.deepcopy(existing[k])
            try:
                if entity in CATALOG:
                    self.catalog.apply(entity, cand, existing)
                else:
                    getattr(self, f"_apply_{entity}")(cand, existing)
            except _FieldError as exc:
                fail(cand, exc.field, str(exc))
            errors = record_errors(cand)
            if errors:
                cand["error"] = errors[0].split(": ", 1)[-1]
                raise Rejected(cand, "; ".join(errors))
            if existing is None and self._key_of(entity, cand) is None:
                last = spec.keys[-1]
                if spec.prefix or spec.numbered:
                    nbr = self._next_number(entity, cand)
                    setv(cand, last, int(nbr) if spec.int_key else nbr)
                else:
                    fail(cand, last, CANT_BE_EMPTY.format(spec.key_labels[-1] if spec.key_labels else last))
                    cand["error"] = CANT_BE_EMPTY.format(spec.key_labels[-1] if spec.key_labels else last)
                    raise Rejected(cand, cand["error"])
            self._clean(cand)
            self._touch(entity, cand)
            self._store(entity, cand)
            getattr(self, f"_after_{entity}", lambda c, e: None)(cand, existing)
            self.catalog.after(entity, cand, existing)
            return cand

    def _target(self, entity: str, body: Rec, params: dict[str, str]) -> Rec | None:
        if body.get("id"):
            rec = self.records[entity].get(str(body["id"]).lower())
            if rec is None:
                raise ApiError(404, "No entity satisfies the condition.")
            return rec
        key = self._key_of(entity, _with_defaults(entity, body))
        if key is not None:
            rid = self.index.get((entity, key))
            return self.records[entity].get(rid) if rid else None
        if params.get("$filter"):
            rows = self.query(entity, {"$filter": params["$filter"], "$top": "2"})
            if len(rows) > 1:
                raise ApiError(422, "More than one entity satisfies the condition.")
            if not rows:
                raise ApiError(404, "No entity satisfies the condition.")
            return rows[0]
        return None

    def delete(self, entity: str, parts: list[str]) -> None:
        with self.lock:
            rec = self.locate(entity, parts)
            if rec is None:
                raise ApiError(404, "No entity satisfies the condition.")
            if entity == "SalesOrder" and any(self._shipments_of(rec)):
                raise ApiError(422, "The sales order cannot be deleted because it has shipments.")
            self.catalog.deleting(entity, rec)
            del self.records[entity][rec["id"]]
            key = self._key_of(entity, rec)
            self.index.pop((entity, key or ()), None)
            if entity == "Shipment":
                for o in self._orders_of_shipment(rec):
                    self._recompute_order(o)

    # -- entity rules --------------------------------------------------------------------------

    def _require_customer(self, cand: Rec, required: bool = True) -> Rec | None:
        cid = val(cand, "CustomerID")
        if cid is None or str(cid).strip() == "":
            if required:
                fail(cand, "CustomerID", CANT_BE_EMPTY.format("Customer"))
            return None
        customer = self.find("Customer", (str(cid),))
        if customer is None:
            fail(cand, "CustomerID", CANT_FIND.format("Customer ID"))
        return customer

    def _item(self, line: Rec) -> Rec | None:
        iid = val(line, "InventoryID")
        if iid is None or str(iid).strip() == "":
            return None
        item = self.find("StockItem", (str(iid),)) or self.find("NonStockItem", (str(iid),))
        if item is None:
            fail(line, "InventoryID", CANT_FIND.format("Inventory ID"))
        return item

    def _apply_Customer(self, cand: Rec, existing: Rec | None) -> None:
        if existing is None:
            for name, default in (("CustomerClass", "DEFAULT"), ("Status", "Active"), ("CurrencyID", "USD")):
                if not has(cand, name):
                    setv(cand, name, default)
        if not has(cand, "CustomerName") and existing is None:
            setv(cand, "CustomerName", val(cand, "CustomerID", ""))
        contact = cand.get("MainContact")
        if isinstance(contact, dict) and has(contact, "Email"):
            setv(cand, "Email", val(contact, "Email"))

    def _apply_StockItem(self, cand: Rec, existing: Rec | None) -> None:
        if not has(cand, "InventoryID"):
            fail(cand, "InventoryID", CANT_BE_EMPTY.format("Inventory ID"))
        if existing is None:
            for name, default in (("ItemStatus", "Active"), ("ItemClass", "STOCKITEM"), ("BaseUOM", "EA")):
                if not has(cand, name):
                    setv(cand, name, default)
            if not has(cand, "DefaultPrice"):
                setv(cand, "DefaultPrice", 0.0)
        self.catalog.apply_item("StockItem", cand, existing)

    def _apply_SalesOrder(self, cand: Rec, existing: Rec | None) -> None:
        customer = self._require_customer(cand)
        if existing is None:
            self._order_parties(cand, customer)
            if not has(cand, "Date"):
                setv(cand, "Date", self.now().date().isoformat() + "T00:00:00+00:00")
            if not has(cand, "CurrencyID"):
                setv(cand, "CurrencyID", val(customer, "CurrencyID", "USD"))
            if not has(cand, "Hold"):
                setv(cand, "Hold", False)
        lines = [ln for ln in cand.get("Details") or [] if isinstance(ln, dict)]
        cand["Details"] = lines
        used = {int(num(ln, "LineNbr")) for ln in lines if not ln.get("_new") and has(ln, "LineNbr")}
        next_nbr = max([int(val(cand, "_LastLineNbr", 0) or 0), *used, 0])
        for ln in lines:
            item = self._item(ln)
            if ln.get("_new") or not has(ln, "LineNbr"):
                next_nbr += 1
                setv(ln, "LineNbr", next_nbr)
                if item is not None:
                    if not has(ln, "UnitPrice"):
                        setv(ln, "UnitPrice", num(item, "DefaultPrice"))
                    if not has(ln, "LineDescription"):
                        setv(ln, "LineDescription", val(item, "Description", ""))
                    if not has(ln, "UOM"):
                        setv(ln, "UOM", val(item, "BaseUOM", "EA"))
                if not has(ln, "OrderQty"):
                    alloc = sum((num(a, "Qty") for a in ln.get("Allocations") or [] if isinstance(a, dict)), Decimal(0))
                    setv(ln, "OrderQty", alloc)
                if not has(ln, "WarehouseID") and has(cand, "WarehouseID"):
                    setv(ln, "WarehouseID", val(cand, "WarehouseID"))
            self._price_line(ln, "OrderQty")
        cand["_LastLineNbr"] = {"value": next_nbr}
        self._order_totals(cand)
        self._recompute_order(cand, write=False)

    def _price_line(self, ln: Rec, qty_field: str) -> None:
        qty, price = num(ln, qty_field), num(ln, "UnitPrice")
        ext = cents(qty * price)
        setv(ln, "ExtendedPrice", ext)
        if flag(ln, "ManualDiscount") or (has(ln, "DiscountAmount") and not has(ln, "DiscountPercent")):
            disc = cents(num(ln, "DiscountAmount"))
            if has(ln, "DiscountAmount"):
                setv(ln, "ManualDiscount", True)
            setv(ln, "DiscountPercent", cents(disc * 100 / ext) if ext else Decimal(0))
        elif has(ln, "DiscountPercent"):
            disc = cents(ext * num(ln, "DiscountPercent") / 100)
        else:
            disc = Decimal(0)
        if ext >= 0 and disc > ext:
            fail(ln, "DiscountAmount", "The discount amount cannot exceed the extended price.")
        setv(ln, "DiscountAmount", disc)
        if not has(ln, "ManualDiscount"):
            setv(ln, "ManualDiscount", False)
        setv(ln, "Amount", ext - disc)

    @staticmethod
    def _order_parties(cand: Rec, customer: Rec | None) -> None:
        """A new order's bill-to and ship-to, where the body gave none: the customer's main contact
        and address (its shipping ones for the ship-to), as SO301000 fills them in."""
        if customer is None:
            return
        main: Rec = customer["MainContact"] if isinstance(customer.get("MainContact"), dict) else {}
        ship: Rec = customer["ShippingContact"] if isinstance(customer.get("ShippingContact"), dict) else main
        for side, contact in (("BillTo", main), ("ShipTo", ship)):
            if not isinstance(cand.get(f"{side}Contact"), dict):
                name = " ".join(str(val(contact, k, "") or "") for k in ("FirstName", "LastName")).strip()
                cand[f"{side}Contact"] = {
                    "id": new_id(),
                    "Attention": {"value": name or val(customer, "CustomerName", "")},
                    "BusinessName": {"value": val(customer, "CustomerName", "")},
                    "Email": {"value": val(contact, "Email", "")},
                    "Phone1": {"value": val(contact, "Phone1", "")},
                }
            if not isinstance(cand.get(f"{side}Address"), dict):
                source: Rec = contact["Address"] if isinstance(contact.get("Address"), dict) else {}
                copied = copy.deepcopy({k: v for k, v in source.items() if k != "id"})
                cand[f"{side}Address"] = {"id": new_id(), **copied}

    def _order_totals(self, cand: Rec) -> None:
        lines = cand.get("Details") or []
        totals = cand.get("Totals") if isinstance(cand.get("Totals"), dict) else None
        shipping = cand.get("ShippingSettings") if isinstance(cand.get("ShippingSettings"), dict) else None
        premium = (
            num(totals, "PremiumFreight") if has(totals or {}, "PremiumFreight") else num(shipping, "PremiumFreight")
        )
        freight = num(shipping, "FreightPrice") if flag(shipping, "OverrideFreightPrice") else Decimal(0)
        manual_tax = flag(cand, "DisableAutomaticTaxCalculation") or flag(cand, "IsTaxValid")
        tax = Decimal(0)
        for td in cand.get("TaxDetails") or []:
            if isinstance(td, dict) and manual_tax:
                tax += cents(num(td, "TaxAmount"))
        line_total = sum((num(ln, "Amount") for ln in lines), Decimal(0))
        disc_total = sum((num(ln, "DiscountAmount") for ln in lines), Decimal(0))
        total = cents(line_total + cents(freight) + cents(premium) + tax)
        paid = sum((num(p, "AppliedToOrder") for p in cand.get("Payments") or [] if isinstance(p, dict)), Decimal(0))
        if totals is None:
            totals = {"id": new_id()}
            cand["Totals"] = totals
        for name, amount in (
            ("Freight", cents(freight)),
            ("PremiumFreight", cents(premium)),
            ("DiscountTotal", cents(disc_total)),
            ("TaxTotal", tax),
            ("LineTotalAmount", cents(line_total)),
            ("UnpaidBalance", total - paid),
        ):
            setv(totals, name, amount)
        setv(cand, "OrderTotal", total)
        setv(cand, "TaxTotal", tax)
        setv(cand, "OrderedQty", sum((num(ln, "OrderQty") for ln in lines), Decimal(0)))
        if shipping is not None and not has(shipping, "ShipVia") and has(cand, "ShipVia"):
            setv(shipping, "ShipVia", val(cand, "ShipVia"))

    def _shipments_of(self, order: Rec) -> list[Rec]:
        ot, nbr = str(val(order, "OrderType", "SO")).casefold(), str(val(order, "OrderNbr", "")).casefold()
        return [
            s
            for s in self.records["Shipment"].values()
            if any(
                str(val(d, "OrderType", "SO")).casefold() == ot and str(val(d, "OrderNbr", "")).casefold() == nbr
                for d in s.get("Details") or []
            )
        ]

    def _orders_of_shipment(self, shipment: Rec) -> list[Rec]:
        out: list[Rec] = []
        for d in shipment.get("Details") or []:
            o = self.order(str(val(d, "OrderType", "SO")), str(val(d, "OrderNbr", "")))
            if o is not None and all(o is not x for x in out):
                out.append(o)
        return out

    def _recompute_order(self, order: Rec, write: bool = True) -> None:
        """Quantities on shipments, shipped quantities, the Shipments tab and the status."""
        if not has(order, "OrderNbr"):
            on_ship: dict[int, Decimal] = {}
            shipped: dict[int, Decimal] = {}
            shipments: list[Rec] = []
        else:
            shipments = self._shipments_of(order)
            on_ship, shipped = {}, {}
            ot, nbr = str(val(order, "OrderType", "SO")).casefold(), str(val(order, "OrderNbr")).casefold()
            for s in shipments:
                done = val(s, "Status") in CONFIRMED
                for d in s.get("Details") or []:
                    if str(val(d, "OrderType", "SO")).casefold() != ot or str(val(d, "OrderNbr", "")).casefold() != nbr:
                        continue
                    ln_nbr = int(num(d, "OrderLineNbr"))
                    on_ship[ln_nbr] = on_ship.get(ln_nbr, Decimal(0)) + num(d, "ShippedQty")
                    if done:
                        shipped[ln_nbr] = shipped.get(ln_nbr, Decimal(0)) + num(d, "ShippedQty")
        for ln in order.get("Details") or []:
            n = int(num(ln, "LineNbr"))
            setv(ln, "QtyOnShipments", on_ship.get(n, Decimal(0)))
            setv(ln, "ShippedQty", shipped.get(n, Decimal(0)))
            ordered, done_qty = num(ln, "OrderQty"), shipped.get(n, Decimal(0))
            # a return line (negative quantity, received on a receipt) is open for what is not received yet
            left = max(abs(ordered) - done_qty, Decimal(0))
            setv(ln, "OpenQty", left if ordered >= 0 else -left)
        old_rows = {str(val(r, "ShipmentNbr")): r for r in order.get("Shipments") or [] if isinstance(r, dict)}
        rows = []
        for s in shipments:
            row = old_rows.get(str(val(s, "ShipmentNbr"))) or {"id": new_id()}
            setv(row, "ShipmentNbr", val(s, "ShipmentNbr"))
            setv(row, "ShipmentType", val(s, "Type", "Shipment"))
            setv(row, "Status", val(s, "Status"))
            setv(row, "ShipmentDate", val(s, "ShipmentDate"))
            setv(row, "ShippedQty", num(s, "ShippedQty"))
            inv = next((o for o in s.get("Orders") or [] if has(o, "InvoiceNbr")), None)
            for name in ("InvoiceType", "InvoiceNbr"):  # empty until the shipment is invoiced
                if has(inv or {}, name):
                    setv(row, name, val(inv, name))
                else:
                    row.pop(name, None)
            rows.append(row)
        order["Shipments"] = rows
        status = val(order, "Status")
        if status in ("Canceled", "Cancelled"):
            new = "Canceled"
        elif flag(order, "Hold"):
            new = "On Hold"
        elif any(val(s, "Status") not in CONFIRMED for s in shipments):
            new = "Shipping"
        elif shipments and all(num(ln, "OpenQty") == 0 for ln in order.get("Details") or []):
            new = "Completed"
        elif shipments:
            new = "Back Order"
        else:
            new = "Open"
        setv(order, "Status", new)
        if write:
            self._touch("SalesOrder", order)

    def _apply_Shipment(self, cand: Rec, existing: Rec | None) -> None:
        if existing is None:
            setv(cand, "Status", "On Hold" if flag(cand, "Hold") else "Open")
            for name, default in (("Type", "Shipment"), ("Operation", "Issue")):
                if not has(cand, name):
                    setv(cand, name, default)
            if not has(cand, "ShipmentDate"):
                setv(cand, "ShipmentDate", self.now().date().isoformat() + "T00:00:00+00:00")
        elif val(existing, "Status") in ("Open", "On Hold"):
            setv(cand, "Status", "On Hold" if flag(cand, "Hold") else "Open")
        confirmed = existing is not None and val(existing, "Status") in CONFIRMED
        details: list[Rec] = []
        for d in cand.get("Details") or []:
            if not isinstance(d, dict):
                continue
            if d.get("_new") and confirmed:
                fail(d, "OrderNbr", "Lines cannot be added to a confirmed shipment.")
            if d.get("_new") and not has(d, "OrderLineNbr") and has(d, "OrderNbr"):
                details.extend(self._whole_order_lines(d))
            else:
                details.append(d)
        cand["Details"] = details
        if not details and existing is None:
            fail(cand, "Details", "The shipment has no lines.")
        # quantities left on each order line, counting other shipments only
        others: dict[tuple[str, str, int], Decimal] = {}
        for s in self.records["Shipment"].values():
            if s["id"] == cand["id"]:
                continue
            for d in s.get("Details") or []:
                k = (
                    str(val(d, "OrderType", "SO")).casefold(),
                    str(val(d, "OrderNbr", "")).casefold(),
                    int(num(d, "OrderLineNbr")),
                )
                others[k] = others.get(k, Decimal(0)) + num(d, "ShippedQty")
        mine: dict[tuple[str, str, int], Decimal] = {}
        first_order: Rec | None = None
        total = Decimal(0)
        for i, d in enumerate(details, start=1):
            if not has(d, "OrderNbr"):
                fail(d, "OrderNbr", CANT_BE_EMPTY.format("Order Nbr."))
                continue
            if not has(d, "OrderType"):
                setv(d, "OrderType", "SO")
            order = self.order(str(val(d, "OrderType")), str(val(d, "OrderNbr")))
            if order is None:
                fail(d, "OrderNbr", CANT_FIND.format("Order Nbr."))
                continue
            first_order = first_order or order
            line_nbr = int(num(d, "OrderLineNbr"))
            oline = next((ln for ln in order.get("Details") or [] if int(num(ln, "LineNbr")) == line_nbr), None)
            if oline is None:
                fail(d, "OrderLineNbr", CANT_FIND.format("Order Line Nbr."))
                continue
            if has(d, "InventoryID"):
                if (
                    self._item(d) is not None
                    and str(val(d, "InventoryID")).casefold() != str(val(oline, "InventoryID", "")).casefold()
                ):
                    fail(d, "InventoryID", "The item differs from the item of the sales order line.")
            else:
                setv(d, "InventoryID", val(oline, "InventoryID"))
            if not has(d, "ShippedQty"):
                if has(d, "Qty"):
                    setv(d, "ShippedQty", num(d, "Qty"))
                elif d.get("Allocations"):
                    setv(
                        d,
                        "ShippedQty",
                        sum((num(a, "Qty") for a in d["Allocations"] if isinstance(a, dict)), Decimal(0)),
                    )
                else:
                    k = (str(val(d, "OrderType")).casefold(), str(val(d, "OrderNbr")).casefold(), line_nbr)
                    setv(d, "ShippedQty", num(oline, "OrderQty") - others.get(k, Decimal(0)) - mine.get(k, Decimal(0)))
            qty = num(d, "ShippedQty")
            k = (str(val(d, "OrderType")).casefold(), str(val(d, "OrderNbr")).casefold(), line_nbr)
            mine[k] = mine.get(k, Decimal(0)) + qty
            ordered = -num(oline, "OrderQty") if val(cand, "Operation") == "Receipt" else num(oline, "OrderQty")
            left = ordered - others.get(k, Decimal(0))
            if qty < 0:
                fail(d, "ShippedQty", "The shipped quantity cannot be negative.")
            elif mine[k] > left and not confirmed:
                fail(d, "ShippedQty", f"The shipped quantity exceeds the quantity left to ship ({left}).")
            setv(d, "LineNbr", i)
            setv(d, "OrderedQty", num(oline, "OrderQty"))
            d.pop("Qty", None)  # ShipmentDetail has ShippedQty, no Qty
            for name in ("UOM", "WarehouseID"):
                if not has(d, name) and has(oline, name):
                    setv(d, name, val(oline, name))
            total += qty
        setv(cand, "ShippedQty", total)
        if first_order is not None:
            if not has(cand, "CustomerID"):
                setv(cand, "CustomerID", val(first_order, "CustomerID"))
            if not has(cand, "ShipVia") and has(first_order, "ShipVia"):
                setv(cand, "ShipVia", val(first_order, "ShipVia"))
        self._require_customer(cand)
        keep = {
            (str(val(o, "OrderType")).casefold(), str(val(o, "OrderNbr")).casefold()): o
            for o in cand.get("Orders") or []
            if isinstance(o, dict)
        }
        rows: list[Rec] = []
        for d in details:
            if not has(d, "OrderNbr"):
                continue
            k2 = (str(val(d, "OrderType", "SO")).casefold(), str(val(d, "OrderNbr")).casefold())
            if any((str(val(r, "OrderType")).casefold(), str(val(r, "OrderNbr")).casefold()) == k2 for r in rows):
                continue
            row = keep.get(k2) or {"id": new_id()}
            setv(row, "OrderType", val(d, "OrderType", "SO"))
            setv(row, "OrderNbr", val(d, "OrderNbr"))
            rows.append(row)
        cand["Orders"] = rows
        for p in cand.get("Packages") or []:
            if isinstance(p, dict) and not has(p, "Confirmed"):
                setv(p, "Confirmed", False)

    def _whole_order_lines(self, d: Rec) -> list[Rec]:
        """A shipment line naming only an order: one line per order line with quantity left."""
        order = self.order(str(val(d, "OrderType", "SO")), str(val(d, "OrderNbr")))
        if order is None:
            return [d]
        out = []
        for ln in order.get("Details") or []:
            left = num(ln, "OrderQty") - num(ln, "QtyOnShipments")
            if left <= 0:
                continue
            new = copy.deepcopy(d)
            new["id"] = new_id()
            setv(new, "OrderType", val(order, "OrderType"))
            setv(new, "OrderLineNbr", int(num(ln, "LineNbr")))
            setv(new, "ShippedQty", left)
            out.append(new)
        if not out:
            fail(d, "OrderNbr", "The sales order has no lines left to ship.")
            return [d]
        return out

    def _after_Shipment(self, cand: Rec, existing: Rec | None) -> None:
        orders = self._orders_of_shipment(cand)
        if existing is not None:
            orders += [o for o in self._orders_of_shipment(existing) if all(o is not x for x in orders)]
        for o in orders:
            self._recompute_order(o)

    def _apply_SalesInvoice(self, cand: Rec, existing: Rec | None) -> None:
        customer = self._require_customer(cand)
        if existing is None:
            setv(cand, "Status", "On Hold" if flag(cand, "Hold") else "Balanced")
            if not has(cand, "Date"):
                setv(cand, "Date", self.now().date().isoformat() + "T00:00:00+00:00")
            if not has(cand, "CurrencyID"):
                setv(cand, "CurrencyID", val(cand, "Currency") or val(customer, "CurrencyID", "USD"))
        elif val(existing, "Status") in ("Balanced", "On Hold"):
            setv(cand, "Status", "On Hold" if flag(cand, "Hold") else "Balanced")
        lines = [d for d in cand.get("Details") or [] if isinstance(d, dict)]
        cand["Details"] = lines
        for i, d in enumerate(lines, start=1):
            oline = None
            if has(d, "OrderNbr"):
                order = self.order(str(val(d, "OrderType", "SO")), str(val(d, "OrderNbr")))
                if order is not None and has(d, "OrderLineNbr"):
                    n = int(num(d, "OrderLineNbr"))
                    oline = next((ln for ln in order.get("Details") or [] if int(num(ln, "LineNbr")) == n), None)
            elif has(d, "OrigInvNbr") and val(cand, "Type") == "Credit Memo":
                oline = self._original_invoice_line(d)
            item = self._item(d)
            if oline is not None:
                if not has(d, "InventoryID"):
                    setv(d, "InventoryID", val(oline, "InventoryID"))
                if not has(d, "UnitPrice"):
                    setv(d, "UnitPrice", num(oline, "UnitPrice"))
            elif item is not None and not has(d, "UnitPrice"):
                setv(d, "UnitPrice", num(item, "DefaultPrice"))
            if not has(d, "Qty"):
                setv(d, "Qty", 1 if has(d, "InventoryID") else 0)
            setv(d, "LineNbr", i)
            self._price_line(d, "Qty")
            d.pop("ExtendedPrice", None)  # SalesInvoiceDetail has no ExtendedPrice
        lines_total = sum((num(d, "Amount") for d in lines), Decimal(0))
        tax = sum((cents(num(t, "TaxAmount")) for t in cand.get("TaxDetails") or [] if isinstance(t, dict)), Decimal(0))
        if not cand.get("TaxDetails"):
            tax = num(cand, "TaxTotal")
        freight = num(cand, "FreightPrice")
        amount = cents(lines_total + freight + tax)
        setv(cand, "DetailTotal", cents(lines_total))
        setv(cand, "TaxTotal", tax)
        setv(cand, "Amount", amount)
        if val(cand, "Status") in ("Balanced", "On Hold"):
            setv(cand, "Balance", amount)

    def _original_invoice_line(self, d: Rec) -> Rec | None:
        """The invoice line a credit memo line credits (``OrigInvType``/``OrigInvNbr``/``OrigInvLineNbr``,
        as "Add Invoice Lines" fills them), when the sim holds that invoice (the collection's requests
        name invoices of Acumatica's own demo company, which the sim's demo data does not all have)."""
        kind = str(val(d, "OrigInvType", "Invoice"))
        invoice = self.find("SalesInvoice", (AR_DOC_TYPES.get(kind, kind), str(val(d, "OrigInvNbr"))))
        if invoice is None or not has(d, "OrigInvLineNbr"):
            return None
        n = int(num(d, "OrigInvLineNbr"))
        return next((ln for ln in invoice.get("Details") or [] if int(num(ln, "LineNbr")) == n), None)

    def _apply_Payment(self, cand: Rec, existing: Rec | None) -> None:
        self._require_customer(cand)
        if existing is None:
            setv(cand, "Status", "On Hold" if flag(cand, "Hold") else "Balanced")
            if not has(cand, "ApplicationDate"):
                setv(cand, "ApplicationDate", self.now().date().isoformat() + "T00:00:00+00:00")
            if not has(cand, "CurrencyID"):
                setv(cand, "CurrencyID", "USD")
        applied = Decimal(0)
        for o in cand.get("OrdersToApply") or []:
            if isinstance(o, dict):
                order = self.order(str(val(o, "OrderType", "SO")), str(val(o, "OrderNbr", "")))
                if order is None:
                    fail(o, "OrderNbr", f"'{val(o, 'OrderNbr', '')}' cannot be found in the system.")
                    continue
                # what the order still owes, not counting what this payment applied to it before
                mine = self._applied_by(cand, order)
                unpaid = num(order.get("Totals"), "UnpaidBalance") + mine
                if not has(o, "AppliedToOrder"):
                    setv(
                        o,
                        "AppliedToOrder",
                        min(unpaid, num(cand, "PaymentAmount")) if has(cand, "PaymentAmount") else unpaid,
                    )
                if num(o, "AppliedToOrder") > unpaid:
                    fail(o, "AppliedToOrder", "Applied Amount Cannot Exceed the Unbilled Balance")
                elif val(order, "Status") in ("Canceled", "Cancelled"):
                    fail(o, "OrderNbr", f"The {val(order, 'OrderNbr')} sales order is canceled.")
                applied += num(o, "AppliedToOrder")
        for d in cand.get("DocumentsToApply") or []:
            if isinstance(d, dict):
                doc = self._applied_document(d)
                if doc is None or val(doc, "Status") != "Open":  # only released, open documents are applied
                    fail(d, "ReferenceNbr", CANT_FIND.format(val(d, "ReferenceNbr", "")))
                    continue
                if not has(d, "AmountPaid"):
                    setv(d, "AmountPaid", num(doc, "Balance"))
                if num(d, "AmountPaid") > num(doc, "Balance"):
                    fail(d, "AmountPaid", "The amount paid cannot exceed the document balance.")
                applied += num(d, "AmountPaid")
        if not has(cand, "PaymentAmount"):
            setv(cand, "PaymentAmount", applied)
        setv(cand, "AppliedToDocuments", applied)
        setv(cand, "AvailableBalance", num(cand, "PaymentAmount") - applied)  # the unapplied balance

    def _applied_document(self, row: Rec) -> Rec | None:
        """The SalesInvoice a payment's ``DocumentsToApply`` row names (``DocType``: Invoice, Credit Memo...)."""
        kind = str(val(row, "DocType", "Invoice"))
        return self.find("SalesInvoice", (AR_DOC_TYPES.get(kind, kind), str(val(row, "ReferenceNbr", ""))))

    def _applied_by(self, payment: Rec, order: Rec) -> Decimal:
        """What ``payment`` (as stored) applies to ``order`` now (its row on the order's Payments tab)."""
        if not has(payment, "ReferenceNbr"):
            return Decimal(0)
        row = self._order_payment_row(order, payment)
        return num(row, "AppliedToOrder") if row is not None else Decimal(0)

    @staticmethod
    def _order_payment_row(order: Rec, payment: Rec) -> Rec | None:
        kind, nbr = str(val(payment, "Type", "Payment")), str(val(payment, "ReferenceNbr", ""))
        return next(
            (
                r
                for r in order.get("Payments") or []
                if isinstance(r, dict) and str(val(r, "DocType", "")) == kind and str(val(r, "ReferenceNbr", "")) == nbr
            ),
            None,
        )

    def _after_Payment(self, payment: Rec, existing: Rec | None) -> None:
        """A payment applied to sales orders shows on each order's Payments tab and lowers its
        unpaid balance (SO301000 reads the applications this way)."""
        for o in payment.get("OrdersToApply") or []:
            if not isinstance(o, dict):
                continue
            order = self.order(str(val(o, "OrderType", "SO")), str(val(o, "OrderNbr", "")))
            if order is None:
                continue
            self._show_payment(order, payment, num(o, "AppliedToOrder"))

    def _show_payment(self, order: Rec, payment: Rec, applied: Decimal) -> None:
        row = self._order_payment_row(order, payment)
        if row is None:
            row = {"id": new_id(), "rowNumber": len(order.get("Payments") or []) + 1}
            order.setdefault("Payments", []).append(row)
        for name in (
            "PaymentAmount",
            "PaymentMethod",
            "PaymentRef",
            "ExternalRef",
            "CashAccount",
            "Status",
            "ApplicationDate",
        ):
            if has(payment, name):
                setv(row, name, val(payment, name))
        setv(row, "DocType", val(payment, "Type", "Payment"))
        setv(row, "ReferenceNbr", val(payment, "ReferenceNbr"))
        setv(row, "AppliedToOrder", applied)
        setv(row, "Balance", num(payment, "AvailableBalance"))
        self._order_totals(order)
        self._touch("SalesOrder", order)

    # -- actions -------------------------------------------------------------------------------

    def action(self, entity: str, name: str, body: Any) -> bool:
        """Run an action at once; whether it is a long-running one (202 + Location)."""
        long_running = ACTIONS.get(entity, {}).get(name)
        if long_running is None:
            raise ApiError(404, f"The action '{name}' is not defined for '{entity}'.")
        if not isinstance(body, dict) or not isinstance(body.get("entity", {}), dict):
            raise ApiError(400, "The request is invalid.", _invalid("'entity' must be an object."))
        keys = body.get("entity") or {}
        params = body.get("parameters") or {}
        if not isinstance(params, dict):
            raise ApiError(400, "The request is invalid.", _invalid("'parameters' must be an object."))
        with self.lock:
            rec = self._action_target(entity, keys)
            if entity in CATALOG:
                self.catalog.action(entity, name, rec, params)
            else:
                getattr(self, f"_do_{name}")(rec, params)
        return long_running

    def _action_target(self, entity: str, keys: Rec) -> Rec:
        rec: Rec | None = None
        if keys.get("id"):
            rec = self.records[entity].get(str(keys["id"]).lower())
        else:
            probe = _with_defaults(entity, keys)
            k = self._key_of(entity, probe)
            if k is not None:
                rec = self.find(entity, k)
        if rec is None:
            raise ApiError(404, "No entity satisfies the condition.")
        return rec

    def _do_SalesOrderCreateShipment(self, order: Rec, params: Rec) -> None:
        if val(order, "Status") not in ("Open", "Back Order"):
            raise ApiError(422, f"The sales order has the {val(order, 'Status')} status; it cannot be shipped.")
        lines = []
        for ln in order.get("Details") or []:
            left = num(ln, "OrderQty") - num(ln, "QtyOnShipments")
            if left > 0:
                lines.append(
                    {
                        "OrderType": {"value": val(order, "OrderType")},
                        "OrderNbr": {"value": val(order, "OrderNbr")},
                        "OrderLineNbr": {"value": int(num(ln, "LineNbr"))},
                        "ShippedQty": {"value": float(left)},
                    }
                )
        if not lines:
            raise ApiError(422, "The sales order has no lines left to ship.")
        body: Rec = {"CustomerID": {"value": val(order, "CustomerID")}, "Details": lines}
        if has(params, "ShipmentDate"):
            body["ShipmentDate"] = {"value": val(params, "ShipmentDate")}
        if has(params, "WarehouseID"):
            body["WarehouseID"] = {"value": val(params, "WarehouseID")}
        try:
            self.put("Shipment", body, {}, {})
        except Rejected as exc:
            raise ApiError(422, str(exc)) from exc

    def _do_ConfirmShipment(self, shipment: Rec, params: Rec) -> None:
        if val(shipment, "Status") != "Open":
            raise ApiError(422, f"The shipment has the {val(shipment, 'Status')} status; it cannot be confirmed.")
        setv(shipment, "Status", "Confirmed")
        self._touch("Shipment", shipment)
        for o in self._orders_of_shipment(shipment):
            self._recompute_order(o)

    def _do_CorrectShipment(self, shipment: Rec, params: Rec) -> None:
        if val(shipment, "Status") != "Confirmed":
            raise ApiError(422, "Only a confirmed shipment that is not invoiced can be corrected.")
        setv(shipment, "Status", "Open")
        self._touch("Shipment", shipment)
        for o in self._orders_of_shipment(shipment):
            self._recompute_order(o)

    def _do_PrepareInvoice(self, shipment: Rec, params: Rec) -> None:
        if val(shipment, "Status") != "Confirmed":
            raise ApiError(
                422, f"The shipment has the {val(shipment, 'Status')} status; only a confirmed one is invoiced."
            )
        self._invoice_shipment(shipment)

    def _invoice_shipment(self, shipment: Rec) -> Rec:
        """The invoice of a confirmed shipment; of a receipt (the return lines of an RM order) the
        credit memo, as Acumatica's PrepareInvoice makes it (no freight)."""
        details: list[Rec] = []
        freight = tax = Decimal(0)
        receipt = val(shipment, "Operation") == "Receipt" or val(shipment, "Type") == "Receipt"
        orders = self._orders_of_shipment(shipment)
        for d in shipment.get("Details") or []:
            order = self.order(str(val(d, "OrderType", "SO")), str(val(d, "OrderNbr", "")))
            if order is None:
                continue
            n = int(num(d, "OrderLineNbr"))
            oline = next((ln for ln in order.get("Details") or [] if int(num(ln, "LineNbr")) == n), None)
            if oline is None:
                continue
            qty, oqty = num(d, "ShippedQty"), abs(num(oline, "OrderQty"))
            disc = cents(abs(num(oline, "DiscountAmount")) * qty / oqty) if oqty else Decimal(0)
            details.append(
                {
                    "OrderType": {"value": val(order, "OrderType")},
                    "OrderNbr": {"value": val(order, "OrderNbr")},
                    "OrderLineNbr": {"value": n},
                    "ShipmentNbr": {"value": val(shipment, "ShipmentNbr")},
                    "InventoryID": {"value": val(oline, "InventoryID")},
                    "TransactionDescr": {"value": val(oline, "LineDescription")},
                    "Qty": {"value": float(qty)},
                    "UOM": {"value": val(oline, "UOM")},
                    "UnitPrice": {"value": float(num(oline, "UnitPrice"))},
                    "DiscountAmount": {"value": float(disc)},
                    "ManualDiscount": {"value": True},
                }
            )
        tax_details: list[Rec] = []
        for order in orders:
            okey = (str(val(order, "OrderType")).casefold(), str(val(order, "OrderNbr")).casefold())
            if okey in self.freight_invoiced:
                continue
            self.freight_invoiced.add(okey)
            t = order.get("Totals") or {}
            if not receipt:
                freight += num(t, "Freight") + num(t, "PremiumFreight")
            tax += abs(num(order, "TaxTotal"))
            for td in order.get("TaxDetails") or []:
                tax_details.append(
                    {"TaxID": {"value": val(td, "TaxID")}, "TaxAmount": {"value": float(abs(num(td, "TaxAmount")))}}
                )
        first = orders[0] if orders else {}
        doc_type = "Credit Memo" if receipt else "Invoice"
        body: Rec = {
            "Type": {"value": doc_type},
            "CustomerID": {"value": val(shipment, "CustomerID")},
            "CustomerOrder": {"value": val(first, "CustomerOrder")},
            "CurrencyID": {"value": val(first, "CurrencyID", "USD")},
            "Description": {"value": val(first, "Description")},
            "Hold": {"value": False},
            "FreightPrice": {"value": float(freight)},
            "TaxTotal": {"value": float(tax)},
            "Details": details,
        }
        if tax_details:
            body["TaxDetails"] = tax_details
        try:
            invoice = self.put("SalesInvoice", body, {}, {})
        except Rejected as exc:
            raise ApiError(422, str(exc)) from exc
        for row in shipment.get("Orders") or []:
            setv(row, "InvoiceType", doc_type)
            setv(row, "InvoiceNbr", val(invoice, "ReferenceNbr"))
        setv(shipment, "Status", "Invoiced")
        self._touch("Shipment", shipment)
        for o in orders:
            self._recompute_order(o)
        return invoice

    def _do_PrepareSalesInvoice(self, order: Rec, params: Rec) -> None:
        pending = [s for s in self._shipments_of(order) if val(s, "Status") == "Confirmed"]
        if not pending:
            raise ApiError(422, "The sales order has no confirmed shipments that are not invoiced.")
        for s in pending:
            self._invoice_shipment(s)

    def _do_ReopenSalesOrder(self, order: Rec, params: Rec) -> None:
        if val(order, "Status") not in ("Canceled", "Completed"):
            raise ApiError(422, f"The sales order has the {val(order, 'Status')} status; it cannot be reopened.")
        setv(order, "Status", "Open")
        self._recompute_order(order)

    def _do_AutoRecalculateDiscounts(self, order: Rec, params: Rec) -> None:
        """The sim has no discount sequences: the lines and totals are computed again."""
        for ln in order.get("Details") or []:
            self._price_line(ln, "OrderQty")
        self._order_totals(order)
        self._touch("SalesOrder", order)

    def _do_SalesOrderCreateReceipt(self, order: Rec, params: Rec) -> None:
        """A receipt (shipment of operation Receipt) for the return lines (negative quantities) of an order."""
        lines = []
        for ln in order.get("Details") or []:
            left = -num(ln, "OrderQty") - num(ln, "QtyOnShipments")
            if left > 0:
                lines.append(
                    {
                        "OrderType": {"value": val(order, "OrderType")},
                        "OrderNbr": {"value": val(order, "OrderNbr")},
                        "OrderLineNbr": {"value": int(num(ln, "LineNbr"))},
                        "ShippedQty": {"value": float(left)},
                    }
                )
        if not lines:
            raise ApiError(422, "The sales order has no return lines left to receive.")
        body: Rec = {
            "Type": {"value": "Receipt"},
            "Operation": {"value": "Receipt"},
            "CustomerID": {"value": val(order, "CustomerID")},
            "Details": lines,
        }
        for name in ("ShipmentDate", "WarehouseID"):
            if has(params, name):
                body[name] = {"value": val(params, name)}
        try:
            self.put("Shipment", body, {}, {})
        except Rejected as exc:
            raise ApiError(422, str(exc)) from exc

    def _do_CancelSalesOrder(self, order: Rec, params: Rec) -> None:
        if any(self._shipments_of(order)):
            raise ApiError(422, "The sales order has shipments; it cannot be canceled.")
        setv(order, "Status", "Canceled")
        self._touch("SalesOrder", order)

    def _do_ReleaseFromCreditHoldSalesOrder(self, order: Rec, params: Rec) -> None:
        self._do_ReleaseFromHold(order, params)

    def _do_ReleaseFromHold(self, order: Rec, params: Rec) -> None:
        setv(order, "Hold", False)
        self._recompute_order(order)

    def _do_PutOnHold(self, order: Rec, params: Rec) -> None:
        setv(order, "Hold", True)
        self._recompute_order(order)

    def _do_ReleaseSalesInvoice(self, invoice: Rec, params: Rec) -> None:
        if val(invoice, "Status") != "Balanced":
            raise ApiError(422, f"The document has the {val(invoice, 'Status')} status; it cannot be released.")
        setv(invoice, "Status", "Open" if num(invoice, "Balance") > 0 else "Closed")
        self._touch("SalesInvoice", invoice)
        nbr = str(val(invoice, "ReferenceNbr"))
        for s in self.records["Shipment"].values():
            if any(str(val(o, "InvoiceNbr", "")) == nbr for o in s.get("Orders") or []):
                setv(s, "Status", "Completed")
                self._touch("Shipment", s)
                for o in self._orders_of_shipment(s):
                    self._recompute_order(o)

    def _do_ReleasePayment(self, payment: Rec, params: Rec) -> None:
        if val(payment, "Status") != "Balanced":
            raise ApiError(422, f"The document has the {val(payment, 'Status')} status; it cannot be released.")
        for d in payment.get("DocumentsToApply") or []:
            inv = self._applied_document(d)
            if inv is not None and val(inv, "Status") == "Open":
                balance = num(inv, "Balance") - num(d, "AmountPaid")
                setv(inv, "Balance", max(balance, Decimal(0)))
                if balance <= 0:
                    setv(inv, "Status", "Closed")
                self._touch("SalesInvoice", inv)
        setv(payment, "Status", "Closed" if num(payment, "AvailableBalance") <= 0 else "Open")
        self._touch("Payment", payment)
        self._after_Payment(payment, payment)

    def _do_VoidPayment(self, payment: Rec, params: Rec) -> None:
        setv(payment, "Status", "Voided")
        self._touch("Payment", payment)
        for o in payment.get("OrdersToApply") or []:  # a voided payment no longer pays the order
            order = (
                self.order(str(val(o, "OrderType", "SO")), str(val(o, "OrderNbr", ""))) if isinstance(o, dict) else None
            )
            if order is not None:
                self._show_payment(order, payment, Decimal(0))

    # -- seeding -------------------------------------------------------------------------------

    def seed(self, body: dict[str, Any]) -> dict[str, Any]:
        """Load records in dependency order (see the module docstring); what was created."""
        from sandbox.sims.acumatica_demo import demo_company_seed

        unknown = set(body) - {p[0] for p in SEED_PLAN} - SEED_SPECIAL
        if unknown:
            raise ValueError(f"unknown seed keys {sorted(unknown)}")
        created: dict[str, Any] = {}
        with self.lock:
            if body.get("demo"):
                created["demo"] = self.seed(demo_company_seed())
            for key, entity, label in SEED_PLAN:
                rows = body.get(key)
                if rows is None:
                    continue
                if not isinstance(rows, list):
                    raise ValueError(f"{key} must be a list")
                created[key] = [self._seed_one(key, entity, label, row) for row in rows]
                if key == "warehouses":
                    created[key] = sorted(self.warehouses)
                elif key == "stock":
                    created[key] = len(rows)
        return created

    def _seed_one(self, key: str, entity: str, label: str, row: Any) -> dict[str, Any]:
        """One seed row through the rules of a ``PUT`` (an ``id`` given is kept, ``Status`` too)."""
        if key == "warehouses" and not isinstance(row, dict):
            row = {"WarehouseID": row}
        if not isinstance(row, dict):
            raise ValueError(f"each of {key} must be an object")
        if key == "stock":
            return self.catalog.seed_stock(wrap(row))
        if key == "sales_prices":
            return self.catalog.seed_price(wrap(row))
        record = wrap(row)
        fixed_id = record.pop("id", None)
        line_ids = {
            k: [line.pop("id", None) if isinstance(line, dict) else None for line in v]
            for k, v in record.items()
            if isinstance(v, list)
        }
        status = record.pop("Status", None) if entity in ("Shipment", "SalesInvoice", "Payment") else None
        if entity == "StockItem" and "QtyOnHand" in record:
            qty = record.pop("QtyOnHand")
            wh = val(record, "WarehouseID") or "WHOLESALE"
            record.pop("WarehouseID", None)
            record["WarehouseDetails"] = [{"WarehouseID": {"value": wh}, "QtyOnHand": qty}]
        try:
            rec = self.put(entity, record, {}, {})
        except Rejected as exc:
            raise ValueError(f"{entity} rejected: {exc}") from exc
        except ApiError as exc:
            raise ValueError(f"{entity}: {exc}") from exc
        if isinstance(status, dict):
            setv(rec, "Status", status.get("value"))
            for o in self._orders_of_shipment(rec) if entity == "Shipment" else []:
                self._recompute_order(o, write=False)
        for k, ids in line_ids.items():
            for line, given in zip(rec.get(k) or [], ids, strict=False):
                if given:
                    line["id"] = str(given).lower()
        if fixed_id:
            self._rekey(entity, rec, str(fixed_id).lower())
        return {
            "id": rec["id"],
            label: val(rec, label),
            **({"OrderType": val(rec, "OrderType")} if entity == "SalesOrder" else {}),
        }

    def _rekey(self, entity: str, rec: Rec, new: str) -> None:
        """Give a seeded record the GUID a recorded request addresses it by."""
        if new in self.records[entity]:
            raise ValueError(f"{entity}: id {new} is taken")
        old = rec["id"]
        del self.records[entity][old]
        rec["id"] = new
        self._store(entity, rec)
        self.catalog.rekeyed(entity, old, rec)


SEED_PLAN: tuple[tuple[str, str, str], ...] = (
    ("warehouses", "Warehouse", "WarehouseID"),
    ("attributes", "AttributeDefinition", "AttributeID"),
    ("item_classes", "ItemClass", "ClassID"),
    ("sales_categories", "ItemSalesCategory", "CategoryID"),
    ("price_classes", "CustomerPriceClass", "PriceClassID"),
    ("customer_classes", "CustomerClass", "ClassID"),
    ("customers", "Customer", "CustomerID"),
    ("template_items", "TemplateItems", "InventoryID"),
    ("stock_items", "StockItem", "InventoryID"),
    ("non_stock_items", "NonStockItem", "InventoryID"),
    ("kits", "KitSpecification", "KitInventoryID"),
    ("item_warehouses", "ItemWarehouse", "InventoryID"),
    ("stock", "", ""),
    ("sales_prices", "", ""),
    ("price_worksheets", "SalesPriceWorksheet", "ReferenceNbr"),
    ("inventory_receipts", "InventoryReceipt", "ReferenceNbr"),
    ("sales_orders", "SalesOrder", "OrderNbr"),
    ("shipments", "Shipment", "ShipmentNbr"),
    ("sales_invoices", "SalesInvoice", "ReferenceNbr"),
    ("payments", "Payment", "ReferenceNbr"),
)
"""Seed keys, in the order they load: (key, entity, the key field named in the answer)."""
SEED_SPECIAL = {"demo"}


def wrap(plain: Any) -> Any:
    """Plain values as ``{"value": ...}``; already wrapped fields, nested objects and lists kept."""
    if isinstance(plain, list):
        return [wrap(x) for x in plain]
    if not isinstance(plain, dict):
        return {"value": plain}
    out: Rec = {}
    for k, v in plain.items():
        if k in ("id", "delete", "note", "custom"):
            out[k] = v
        elif isinstance(v, dict) and ("value" in v or k not in DETAILS):
            out[k] = v if "value" in v else wrap(v)
        elif isinstance(v, list):
            out[k] = [wrap(x) for x in v]
        else:
            out[k] = {"value": v}
    return out


def _with_defaults(entity: str, body: Rec) -> Rec:
    probe = dict(body)
    for name, default in SPECS[entity].defaults:
        if not has(probe, name):
            probe[name] = {"value": default}
    return probe


def _read_path(rec: Rec, path: str) -> Any:
    node: Any = rec
    segs = path.split("/")
    for seg in segs[:-1]:
        node = node.get(seg) if isinstance(node, dict) else None
        if isinstance(node, list):
            raise FilterError(f"filtering on the detail entity '{seg}' is not supported")
    last = node.get(segs[-1]) if isinstance(node, dict) else None
    if isinstance(last, list):
        raise FilterError(f"'{segs[-1]}' is a detail entity, not a field")
    if isinstance(last, dict):
        return last.get("value")
    return None


def _int_param(params: dict[str, str], name: str) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        n = int(raw)
    except ValueError as exc:
        raise ApiError(400, f"Invalid {name}: {raw!r}") from exc
    if n < 0:
        raise ApiError(400, f"Invalid {name}: {raw!r}")
    return n


def _invalid(reason: str) -> dict[str, Any]:
    return {"message": "The request is invalid.", "modelState": {"": [reason]}}


# ----------------------------------------------------------------------------------------------
# HTTP
# ----------------------------------------------------------------------------------------------

SESSION_COOKIE = "ASP.NET_SessionId"
AUTH_COOKIE = ".ASPXAUTH"


def error_body(status: int, message: str) -> dict[str, Any]:
    """An Acumatica-shaped error body (used for injected faults and failures)."""
    if status >= 500 or status == 429:
        return {
            "message": "An error has occurred.",
            "exceptionMessage": message,
            "exceptionType": "PX.Api.ContractBased.ApiException" if status != 429 else "PX.Api.RequestLimitException",
            "stackTrace": "   at PX.Api.ContractBased.EntityService.Process()",
        }
    return {"message": message}


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(body, status_code=status, headers=headers)


def _fail(exc: ApiError) -> Response:
    body = exc.body if exc.body is not None else error_body(exc.status, str(exc))
    return _json(exc.status, body)


async def _body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        try:  # Acumatica's JSON reader takes any Unicode white space (the collection has no-break spaces)
            return json.loads(raw.decode("utf-8", "replace").replace("\u00a0", " "))
        except ValueError:
            pass
        raise ApiError(400, "The request is invalid.", _invalid(f"The body is not valid JSON: {exc}")) from exc


def create_app(username: str = "admin", password: str = "123", company: str = "Company") -> Starlette:  # noqa: S107
    """The sim as a Starlette app; ``app.state.sim`` is the ``AcumaticaSim``."""
    sim = AcumaticaSim(username, password, company)
    control = SimControl(reset_data=sim.reset, seed_data=sim.seed, error_body=error_body)

    def session_of(request: Request) -> str | None:
        return request.cookies.get(SESSION_COOKIE)

    def authorised(request: Request) -> bool:
        auth = request.headers.get("authorization", "")
        bearer = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        return sim.authorised(session_of(request), bearer)

    async def endpoints(request: Request) -> Response:
        return _json(
            200,
            {
                "version": {"acumaticaBuildVersion": "24.200.0123", "databaseVersion": "24.200.0123"},
                "endpoints": [{"name": "Default", "version": v, "href": f"/entity/Default/{v}/"} for v in VERSIONS],
            },
        )

    async def login(request: Request) -> Response:
        try:
            sid = sim.login(await _body(request))
        except ApiError as exc:
            return _fail(exc)
        response = Response(status_code=204)
        response.set_cookie(SESSION_COOKIE, sid, path="/", httponly=True)
        response.set_cookie(AUTH_COOKIE, secrets.token_hex(16), path="/", httponly=True)
        response.set_cookie("UserBranch", "1", path="/")
        response.set_cookie("Locale", "Culture=en-US&TimeZone=GMTM0000A", path="/")
        return response

    async def logout(request: Request) -> Response:
        sim.logout(session_of(request))
        response = Response(status_code=204)
        response.delete_cookie(SESSION_COOKIE, path="/")
        response.delete_cookie(AUTH_COOKIE, path="/")
        return response

    async def token(request: Request) -> Response:
        raw = (await request.body()).decode("utf-8", "replace")
        form = {k: v[-1] for k, v in parse_qs(raw).items()}
        try:
            return _json(200, sim.issue_token(form), {"Cache-Control": "no-store"})
        except ApiError as exc:
            return _json(exc.status, exc.body or {"error": str(exc)})

    async def entity(request: Request) -> Response:
        version = request.path_params["version"]
        if request.path_params["endpoint"] != "Default" or version not in VERSIONS:
            return _json(404, {"message": f"Endpoint {request.path_params['endpoint']}/{version} is not found."})
        if not authorised(request):
            return _json(401, {"message": "You are not logged in."})
        parts = [p for p in request.path_params["rest"].split("/") if p != ""]
        if parts and parts[0] in INQUIRIES:
            return await inquiry(request, parts[0], parts[1:])
        if not parts or parts[0] not in SPECS:
            return _json(404, {"message": f"The entity '{parts[0] if parts else ''}' is not found."})
        name, rest = parts[0], parts[1:]
        base = f"/entity/Default/{version}/{name}"
        params = dict(request.query_params)
        try:
            expand, select = parse_paths(params.get("$expand")), parse_paths(params.get("$select"))
            if request.method == "GET":
                if len(rest) == 3 and rest[1] == "status" and rest[0] in ACTIONS.get(name, {}):
                    with sim.lock:
                        known = rest[2] in sim.operations
                    return Response(status_code=204) if known else _json(404, {"message": "No such operation."})
                if rest:
                    with sim.lock:
                        rec = sim.locate(name, rest)
                        if rec is not None:
                            sim.catalog.prepare(name, rec)
                        out = render(rec, expand, select, link=f"{base}/{rec['id']}") if rec else None
                    if out is None:
                        return _json(404, {"message": "No entity satisfies the condition."})
                    return _json(200, out)
                with sim.lock:
                    rows = sim.query(name, params)
                    for r in rows:
                        sim.catalog.prepare(name, r)
                    out_rows = [
                        render(r, expand, select, row=i + 1, link=f"{base}/{r['id']}") for i, r in enumerate(rows)
                    ]
                return _json(200, out_rows)
            if request.method == "PUT":
                if rest:
                    return _json(405, {"message": "The requested resource does not support http method 'PUT'."})
                body = await _body(request)
                headers = {k.lower(): v for k, v in request.headers.items()}
                try:
                    with sim.lock:
                        rec = sim.put(name, body, params, headers)
                        sim.catalog.prepare(name, rec)
                        out = render(rec, expand, select, link=f"{base}/{rec['id']}")
                except Rejected as exc:
                    return _json(422, render(exc.record, None, None, link="", everything=True))
                return _json(200, out)
            if request.method == "DELETE":
                sim.delete(name, rest)
                return Response(status_code=204)
            if request.method == "POST":
                if len(rest) != 1:
                    return _json(404, {"message": "The requested resource is not found."})
                if rest[0] == "files":
                    return _json(404, {"message": "Files are not supported by the sim."})
                long_running = sim.action(name, rest[0], await _body(request))
                if not long_running:
                    return Response(status_code=204)
                op = str(uuid.uuid4())
                with sim.lock:
                    sim.operations[op] = f"{name}/{rest[0]}"
                return Response(status_code=202, headers={"Location": f"{base}/{rest[0]}/status/{op}"})
        except ApiError as exc:
            return _fail(exc)
        except Exception as exc:  # a sim bug, not the client's fault: report it the way Acumatica does
            return _json(
                500,
                {
                    "message": "An error has occurred.",
                    "exceptionMessage": f"{type(exc).__name__}: {exc}",
                    "exceptionType": "System.Exception",
                    "stackTrace": "",
                },
            )
        return _json(405, {"message": f"The requested resource does not support http method '{request.method}'."})

    async def inquiry(request: Request, name: str, rest: list[str]) -> Response:
        if request.method != "PUT" or rest:
            return _json(405, {"message": f"The requested resource does not support http method '{request.method}'."})
        params = dict(request.query_params)
        try:
            expand, select = parse_paths(params.get("$expand")), parse_paths(params.get("$select"))
            body = await _body(request)
            try:
                with sim.lock:
                    rec = sim.catalog.inquiry(name, body)
            except Rejected as exc:
                return _json(422, render(exc.record, None, None, everything=True))
            return _json(200, render(rec, expand, select))
        except ApiError as exc:
            return _fail(exc)

    routes = [
        *control.routes(),
        Route("/entity", endpoints, methods=["GET"]),
        Route("/entity/auth/login", login, methods=["POST"]),
        Route("/entity/auth/logout", logout, methods=["POST"]),
        Route("/identity/connect/token", token, methods=["POST"]),
        Route("/entity/{endpoint}/{version}/{rest:path}", entity, methods=["GET", "PUT", "POST", "DELETE"]),
    ]
    app = Starlette(routes=routes)
    app.add_middleware(BaseHTTPMiddleware, dispatch=control.dispatch)
    app.state.sim = sim
    app.state.control = control
    return app


LUMA_ITEMS = (
    ("24-WG080", "Sprite Yoga Companion Kit", 68),
    ("24-WG082-blue", "Sprite Stasis Ball 65 cm", 27),
    ("24-WG086", "Sprite Yoga Strap 8 foot", 17),
)
"""Luma sample-data items of Adobe's example order that the Magento sim's sample catalog lacks."""


def sample_seed() -> dict[str, Any]:
    """Stock items for every simple product of the Magento sim's sample catalog and of Adobe's sample
    order (a ``/_sim/seed`` body), so the sample orders of ``erpsync local up`` find their items."""
    from sandbox.sims.magento_orders import sample_catalog

    items = [(p["sku"], p["name"], p.get("price", 0)) for p in sample_catalog() if p.get("type_id") != "configurable"]
    return {
        "stock_items": [
            {"InventoryID": sku, "Description": name, "DefaultPrice": price, "QtyOnHand": 100}
            for sku, name, price in [*items, *LUMA_ITEMS]
        ]
    }
