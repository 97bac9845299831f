"""An in-memory Magento 2 (2.4.x) REST API: admin token, orders, customers, catalog, ship, invoice.

Speaks ``/rest/default/V1/...`` (also ``/rest/V1``, ``/rest/all/V1`` and ``/rest/<store_code>/V1``)
with Magento's record shapes, searchCriteria query strings, error bodies (``{"message": "...%1...",
"parameters": [...]}``) and status codes. State lives in :class:`MagentoSim` (``app.state.sim``),
guarded by a lock. The catalog (stores, attributes, categories, products, prices, stock, async bulk;
store-view scope and the traps connectors hit) lives in :mod:`sandbox.sims.magento_catalog`, on the
same state and lock. The shared ``/_sim/`` control API seeds ``{"products": [...], "customers": [...],
"orders": [...]}`` (Magento-shaped records) and the catalog keys listed in that module.
Orders keep sales_order's unique key: one order per (increment_id, store_id); a save that breaks it is
answered 400 ``{"message": "Unique constraint violation found"}``, and new orders are numbered past
every number in use (seeded or explicit ones included).
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.sims.control import SimControl
from sandbox.sims.magento_orders import OFFLINE_METHODS, gateway_transaction_id

if TYPE_CHECKING:
    from sandbox.sims.magento_catalog import Catalog
    from sandbox.sims.magento_rma import Returns

JSON = dict[str, Any]
TS_FORMAT = "%Y-%m-%d %H:%M:%S"
CENT = Decimal("0.01")

NOT_FOUND = "The entity that was requested doesn't exist. Verify the entity and try again."
PRODUCT_NOT_FOUND = "The product that was requested doesn't exist. Verify the product and try again."
CUSTOMER_NOT_FOUND = "No such entity with %fieldName = %fieldValue"
DUPLICATE_EMAIL = "A customer with the same email address already exists in an associated website."
BAD_LOGIN = (
    "The account sign-in was incorrect or your account is disabled temporarily. Please wait and try again later."
)
NOT_AUTHORIZED = "The consumer isn't authorized to access %resources."
REQUIRED = '"%fieldName" is required. Enter and try again.'
BAD_TYPE = 'The "%1" value\'s type is invalid. The "%2" type was expected. Verify and try again.'
NO_ROUTE = "Request does not match any route."
UNIQUE_VIOLATION = "Unique constraint violation found"
"""AlreadyExistsException's message: what the REST API answers (400) when a save breaks a unique key,
such as sales_order's SALES_ORDER_INCREMENT_ID_STORE_ID (one increment_id per store)."""
SHIP_ERRORS = "Shipment Document Validation Error(s):\n"
INVOICE_ERRORS = "Invoice Document Validation Error(s):\n"
REFUND_ERRORS = "Creditmemo Document Validation Error(s):\n"
CANT_REFUND = "We can't create creditmemo for the order."


class MagentoError(Exception):
    """A Magento webapi error: HTTP status, message with placeholders, parameters."""

    def __init__(
        self,
        status: int,
        message: str,
        parameters: list[Any] | dict[str, Any] | None = None,
        *,
        errors: list[JSON] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.parameters = parameters
        self.errors = errors

    def body(self) -> JSON:
        out: JSON = {"message": self.message}
        if self.parameters:
            out["parameters"] = self.parameters
        if self.errors:
            out["errors"] = self.errors
        return out


def render_message(message: str, parameters: list[Any] | dict[str, Any] | None) -> str:
    """A Magento message with its ``%1``/``%name`` placeholders filled in."""
    if isinstance(parameters, dict):
        for key in sorted(parameters, key=len, reverse=True):
            message = message.replace(f"%{key}", str(parameters[key]))
    elif parameters:
        for i in range(len(parameters), 0, -1):
            message = message.replace(f"%{i}", str(parameters[i - 1]))
    return message


def D(value: Any) -> Decimal:
    """A number from a record as Decimal (``None`` and ``""`` are zero)."""
    if value is None or value == "":
        return Decimal("0")
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise MagentoError(400, BAD_TYPE, [str(value), "float"]) from exc


def num(value: Decimal) -> int | float:
    """A Decimal as JSON number the way Magento prints it (integral values without decimals)."""
    value = value.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
    return int(value) if value == value.to_integral_value() else float(value)


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


# --------------------------------------------------------------------------- searchCriteria

_BRACKETS = re.compile(r"\[([^\]]*)\]")
_CAMEL = {
    "filterGroups": "filter_groups",
    "conditionType": "condition_type",
    "sortOrders": "sort_orders",
    "pageSize": "page_size",
    "currentPage": "current_page",
}
_CONDITIONS = {"eq", "neq", "gt", "gteq", "lt", "lteq", "in", "nin", "like", "nlike", "null", "notnull", "from", "to"}


def _listify(node: Any) -> Any:
    if isinstance(node, dict):
        if node and all(k.isdigit() for k in node):
            return [_listify(node[k]) for k in sorted(node, key=int)]
        return {k: _listify(v) for k, v in node.items()}
    return node


def parse_search_criteria(query: list[tuple[str, str]]) -> JSON:
    """``searchCriteria[...]`` query parameters as Magento's normalised search_criteria object."""
    root: JSON = {}
    for key, value in query:
        if not key.startswith("searchCriteria["):
            continue
        parts = [_CAMEL.get(p, p) for p in _BRACKETS.findall(key[len("searchCriteria") :])]
        node: Any = root
        for part in parts[:-1]:
            nxt = node.setdefault(part, {})
            if not isinstance(nxt, dict):
                raise MagentoError(400, "The search criteria is malformed: %1", [key])
            node = nxt
        node[parts[-1]] = value
    raw = _listify(root)
    out: JSON = {"filter_groups": []}
    for group in _as_list(raw.get("filter_groups"), "filter_groups"):
        filters = []
        for f in _as_list(group.get("filters") if isinstance(group, dict) else None, "filters"):
            if not isinstance(f, dict) or "field" not in f:
                raise MagentoError(400, REQUIRED, {"fieldName": "field"})
            cond = str(f.get("condition_type") or "eq").lower()
            if cond not in _CONDITIONS:
                raise MagentoError(400, 'Invalid condition type "%1".', [cond])
            filters.append({"field": str(f["field"]), "value": str(f.get("value", "")), "condition_type": cond})
        out["filter_groups"].append({"filters": filters})
    sorts = []
    for s in _as_list(raw.get("sort_orders"), "sort_orders"):
        if not isinstance(s, dict) or "field" not in s:
            raise MagentoError(400, REQUIRED, {"fieldName": "field"})
        direction = str(s.get("direction") or "ASC").upper()
        if direction not in ("ASC", "DESC"):
            raise MagentoError(400, 'Sort order direction "%1" is invalid.', [direction])
        sorts.append({"field": str(s["field"]), "direction": direction})
    if sorts:
        out["sort_orders"] = sorts
    for key in ("page_size", "current_page"):
        if key in raw:
            try:
                number = int(raw[key])
            except (TypeError, ValueError) as exc:
                raise MagentoError(400, BAD_TYPE, [str(raw[key]), "int"]) from exc
            if number < (0 if key == "page_size" else 1):
                raise MagentoError(400, 'The "%1" value is invalid.', [key])
            out[key] = number
    return out


def _as_list(value: Any, name: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    raise MagentoError(400, "The search criteria is malformed: %1", [name])


def _comparable(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, bool):
        return (1, Decimal(int(value)))
    if isinstance(value, int | float):
        return (1, Decimal(str(value)))
    text = str(value)
    try:
        return (1, Decimal(text))
    except InvalidOperation:
        return (2, text.lower())


def _compare(a: Any, b: str) -> int | None:
    """-1/0/1 comparing record value ``a`` with filter value ``b``; None when not comparable."""
    ka, kb = _comparable(a), _comparable(b)
    if ka[0] == 0:
        return None
    if ka[0] != kb[0]:
        ka, kb = (2, str(a).lower()), (2, b.lower())
    return (ka[1] > kb[1]) - (ka[1] < kb[1])


def _like(pattern: str) -> re.Pattern[str]:
    parts = [".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern]
    return re.compile("^" + "".join(parts) + "$", re.IGNORECASE | re.DOTALL)


def matches(record: JSON, flt: JSON) -> bool:
    """Whether ``record`` satisfies one filter."""
    value = record.get(flt["field"])
    cond, target = flt["condition_type"], flt["value"]
    if cond == "null":
        return value is None
    if cond == "notnull":
        return value is not None
    if cond in ("in", "nin"):
        options = [t.strip() for t in target.split(",")]
        hit = any(_compare(value, t) == 0 for t in options)
        return hit if cond == "in" else not hit
    if cond in ("like", "nlike"):
        hit = value is not None and bool(_like(target).match(str(value)))
        return hit if cond == "like" else not hit
    c = _compare(value, target)
    if c is None:
        return cond == "neq"
    return {
        "eq": c == 0,
        "neq": c != 0,
        "gt": c > 0,
        "gteq": c >= 0,
        "from": c >= 0,
        "lt": c < 0,
        "lteq": c <= 0,
        "to": c <= 0,
    }[cond]


def _sort_key(fld: str) -> Callable[[JSON], tuple[int, Any]]:
    return lambda r: _comparable(r.get(fld))


def search(records: list[JSON], criteria: JSON, id_field: str, columns: dict[str, str] | None = None) -> JSON:
    """Filter, sort and page ``records`` like Magento's repositories do. ``columns`` maps a field
    searched by its database column to the record key it shows as (a customer's ``entity_id``
    column is its ``id``: Magento filters and sorts on ``entity_id``)."""
    names = columns or {}

    def as_key(flt: JSON) -> JSON:
        return {**flt, "field": names.get(flt["field"], flt["field"])}

    groups = [[as_key(f) for f in g["filters"]] for g in criteria["filter_groups"]]
    rows = [r for r in records if all(any(matches(r, f) for f in g) for g in groups)]
    rows.sort(key=lambda r: _comparable(r.get(id_field)))
    for s in reversed(criteria.get("sort_orders", [])):
        rows.sort(key=_sort_key(names.get(s["field"], s["field"])), reverse=s["direction"] == "DESC")
    total = len(rows)
    size = criteria.get("page_size")
    if size:
        last = max(1, -(-total // size))
        page = min(criteria.get("current_page", 1), last)
        rows = rows[(page - 1) * size : page * size]
    return {"items": rows, "search_criteria": criteria, "total_count": total}


def _one_filter_criteria(fld: str, value: Any) -> JSON:
    return {"filter_groups": [{"filters": [{"field": fld, "value": str(value), "condition_type": "eq"}]}]}


# --------------------------------------------------------------------------- fulfilment units


@dataclass
class _Unit:
    """What ships or invoices as one: a simple line, a configurable parent+child, a bundle child."""

    carrier: JSON
    lines: list[JSON]
    ids: set[int]
    virtual: bool
    bundle_parent: JSON | None = None
    ratio: Decimal = Decimal("1")


@dataclass
class MagentoSim:
    """The store's data and the operations the routes perform on it (all under ``lock``)."""

    username: str = "admin"
    password: str = "admin123"
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    lock: threading.RLock = field(default_factory=threading.RLock)
    tokens: set[str] = field(default_factory=set)
    products: dict[str, JSON] = field(default_factory=dict)
    customers: dict[int, JSON] = field(default_factory=dict)
    orders: dict[int, JSON] = field(default_factory=dict)
    shipments: dict[int, JSON] = field(default_factory=dict)
    invoices: dict[int, JSON] = field(default_factory=dict)
    creditmemos: dict[int, JSON] = field(default_factory=dict)
    _seq: dict[str, int] = field(default_factory=dict)
    _last_ts: datetime | None = None
    _numbers: dict[tuple[str, str], int] = field(default_factory=dict)
    """(increment_id, store_id) -> entity_id: sales_order's unique key, see :meth:`_order_numbers`."""
    _numbers_of: dict[int, JSON] | None = None
    _numbers_len: int = -1
    store_code: str = "default"
    """The scope of the request being served: ``all``, ``default`` or a store view code."""
    edition: str = "open-source"
    """``open-source`` (no RMA, as Magento Open Source) or ``commerce`` (Adobe Commerce: ``/V1/returns``)."""
    catalog: Catalog = field(init=False, repr=False)
    """Stores, attributes, categories, prices and stock (:mod:`sandbox.sims.magento_catalog`)."""
    returns: Returns = field(init=False, repr=False)
    """Adobe Commerce returns (:mod:`sandbox.sims.magento_rma`)."""

    def __post_init__(self) -> None:
        from sandbox.sims.magento_catalog import Catalog
        from sandbox.sims.magento_rma import Returns

        self.catalog = Catalog(self)
        self.returns = Returns(self)

    # ----------------------------------------------------------------- plumbing

    def reset(self) -> None:
        """Forget every record and token."""
        with self.lock:
            self.tokens.clear()
            self.products.clear()
            self.customers.clear()
            self.orders.clear()
            self.shipments.clear()
            self.invoices.clear()
            self.creditmemos.clear()
            self._seq.clear()
            self.catalog.reset()
            self.returns.reset()
            self._last_ts = None
            self._numbers_of = None

    def revoke_tokens(self) -> None:
        """Expire every admin token (as after 4 hours), so clients must sign in again."""
        with self.lock:
            self.tokens.clear()

    def next_id(self, kind: str, at_least: int = 0) -> int:
        value = max(self._seq.get(kind, 0), at_least) + 1
        self._seq[kind] = value
        return value

    def _bump(self, kind: str, used: int) -> None:
        self._seq[kind] = max(self._seq.get(kind, 0), used)

    def now(self) -> str:
        """The current UTC time as Magento prints it, strictly later than the previous call."""
        ts = self.clock().astimezone(UTC).replace(microsecond=0, tzinfo=None)
        if self._last_ts is not None and ts <= self._last_ts:
            ts = self._last_ts + timedelta(seconds=1)
        self._last_ts = ts
        return ts.strftime(TS_FORMAT)

    # ----------------------------------------------------------------- auth

    def issue_token(self, body: Any) -> str:
        if not isinstance(body, dict):
            raise MagentoError(400, REQUIRED, {"fieldName": "username"})
        for key in ("username", "password"):
            if not isinstance(body.get(key), str) or not body.get(key):
                raise MagentoError(400, REQUIRED, {"fieldName": key})
        if body["username"] != self.username or body["password"] != self.password:
            raise MagentoError(401, BAD_LOGIN)
        token = secrets.token_hex(16)
        self.tokens.add(token)
        return token

    # ----------------------------------------------------------------- products

    def save_product(self, product: Any) -> JSON:
        """Create or update a product at global scope (``/rest/all``); see :mod:`sandbox.sims.magento_catalog`."""
        return self.catalog.save_product(product, 0)

    def get_product(self, sku: str) -> JSON:
        return self.catalog.render_product(sku, 0)

    # ----------------------------------------------------------------- customers

    def save_customer(self, customer: Any, customer_id: int | None = None) -> JSON:
        if not isinstance(customer, dict):
            raise MagentoError(400, REQUIRED, {"fieldName": "customer"})
        existing = None
        if customer_id is not None:
            existing = self.customers.get(customer_id)
            if existing is None:
                raise MagentoError(404, CUSTOMER_NOT_FOUND, {"fieldName": "customerId", "fieldValue": customer_id})
        data = {**(existing or {}), **copy.deepcopy(customer)}
        for key in ("email", "firstname", "lastname"):
            if not isinstance(data.get(key), str) or not data[key].strip():
                raise MagentoError(400, REQUIRED, {"fieldName": key})
        if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", data["email"]):
            raise MagentoError(400, '"%1" is not a valid email address.', [data["email"]])
        website = data.get("website_id", 1)
        own_id = existing["id"] if existing else None
        for other in self.customers.values():
            if (
                other["id"] != own_id
                and other["email"].lower() == data["email"].lower()
                and other.get("website_id", 1) == website
            ):
                raise MagentoError(400, DUPLICATE_EMAIL)
        now = self.now()
        if existing is None:
            cid = customer.get("id")
            cid = cid if isinstance(cid, int) and cid not in self.customers else self.next_id("customer")
            self._bump("customer", cid)
        else:
            cid = existing["id"]
        data.update(id=cid, updated_at=now)
        data.setdefault("group_id", 1)
        data.setdefault("created_at", now)
        data.setdefault("created_in", "Default Store View")
        data.setdefault("store_id", 1)
        data.setdefault("website_id", 1)
        data.setdefault("disable_auto_group_change", 0)
        addresses = data.get("addresses") or []
        if not isinstance(addresses, list):
            raise MagentoError(400, BAD_TYPE, ["addresses", "array"])
        for addr in addresses:
            if not isinstance(addr, dict):
                raise MagentoError(400, BAD_TYPE, ["addresses", "array"])
            if not isinstance(addr.get("id"), int):
                addr["id"] = self.next_id("customer_address")
            self._bump("customer_address", addr["id"])
            addr["customer_id"] = cid
            if addr.get("default_billing"):
                data["default_billing"] = str(addr["id"])
            if addr.get("default_shipping"):
                data["default_shipping"] = str(addr["id"])
        data["addresses"] = addresses
        self.customers[cid] = data
        return copy.deepcopy(data)

    def get_customer(self, customer_id: int) -> JSON:
        if customer_id not in self.customers:
            raise MagentoError(404, CUSTOMER_NOT_FOUND, {"fieldName": "customerId", "fieldValue": customer_id})
        return copy.deepcopy(self.customers[customer_id])

    # ----------------------------------------------------------------- orders

    def save_order(self, entity: Any, *, keep_timestamps: bool = False) -> JSON:
        """Create (no or unknown entity_id) or update an order; the saved order.

        As in Magento, an increment_id is unique per store: a save that would give a second order
        the number another order of the store has fails 400 ``Unique constraint violation found``
        and changes nothing. A new order without an increment_id gets the next free number; an
        explicit numeric one moves the counter past it, so later orders never reuse it.
        """
        if not isinstance(entity, dict):
            raise MagentoError(400, REQUIRED, {"fieldName": "entity"})
        oid = entity.get("entity_id")
        if oid is not None and not isinstance(oid, int):
            raise MagentoError(400, BAD_TYPE, [str(oid), "int"])
        if oid is not None and oid in self.orders:
            order = self.orders[oid]
            old_number = _order_number(order)
            number = _order_number({**order, **{k: entity[k] for k in ("increment_id", "store_id") if k in entity}})
            self._claim_number(number, oid)
            now = self.now()
            incoming = copy.deepcopy(entity)
            if "items" in incoming:
                self._assign_item_ids(oid, incoming["items"], keep=set(self._item_ids(order)))
            order.update(incoming)
            self._normalise_order(order)
            order["updated_at"] = entity["updated_at"] if keep_timestamps and entity.get("updated_at") else now
            if number != old_number:
                self._renumber(oid, old_number, number)
            return self.render_order(order)
        for key in ("customer_email", "grand_total", "base_grand_total", "items"):
            if entity.get(key) is None:
                raise MagentoError(400, REQUIRED, {"fieldName": key})
        if not isinstance(entity["items"], list) or not entity["items"]:
            raise MagentoError(400, "The order must contain at least one item.")
        order = copy.deepcopy(entity)
        order.setdefault("store_id", 1)
        if order.get("increment_id"):
            self._claim_number(_order_number(order), oid)
        else:
            order["increment_id"] = self._fresh_increment_id(order["store_id"])
        now = self.now()
        oid = oid if oid is not None else self.next_id("order")
        self._bump("order", oid)
        order["entity_id"] = oid
        order.setdefault("state", "new")
        order.setdefault("status", "pending")
        order["created_at"] = order.get("created_at") if keep_timestamps or order.get("created_at") else now
        order["created_at"] = order["created_at"] or now
        order["updated_at"] = order.get("updated_at") if keep_timestamps and order.get("updated_at") else now
        self._assign_item_ids(oid, order["items"], keep=set())
        self._normalise_order(order)
        numbers = self._order_numbers()
        self.orders[oid] = order
        numbers[_order_number(order)] = oid
        self._numbers_len = len(self.orders)
        return self.render_order(order)

    def _order_numbers(self) -> dict[tuple[str, str], int]:
        """(increment_id, store_id) -> entity_id of every order (sales_order's unique key).

        Kept up to date by :meth:`save_order`; rebuilt when ``orders`` was replaced or grew behind
        the sim's back (a benchmark filling it directly).
        """
        if self._numbers_of is not self.orders or self._numbers_len != len(self.orders):
            self._numbers = {}
            for oid, order in self.orders.items():
                self._numbers.setdefault(_order_number(order), oid)
            self._numbers_of, self._numbers_len = self.orders, len(self.orders)
        return self._numbers

    def _claim_number(self, number: tuple[str, str], oid: int | None) -> None:
        """Fail as Magento does if another order of the store has this increment_id; else move the
        increment counter past it (a numeric one), so generated numbers never collide with it."""
        owner = self._order_numbers().get(number)
        other = self.orders.get(owner) if owner is not None and owner != oid else None
        if other is not None and _order_number(other) == number:
            raise MagentoError(400, UNIQUE_VIOLATION)
        if number[0].isascii() and number[0].isdigit():
            self._bump("increment", int(number[0]))

    def _renumber(self, oid: int, old: tuple[str, str], new: tuple[str, str]) -> None:
        numbers = self._order_numbers()
        if numbers.get(old) == oid:
            del numbers[old]
        numbers[new] = oid

    def _fresh_increment_id(self, store_id: Any) -> str:
        """The next increment_id no order of the store has (Magento's sequence, zero-padded to 9)."""
        numbers = self._order_numbers()
        store = _order_number({"store_id": store_id})[1]
        while True:
            candidate = f"{self.next_id('increment'):09d}"
            if (candidate, store) not in numbers:
                return candidate

    def _item_ids(self, order: JSON) -> list[int]:
        return [it["item_id"] for it in order.get("items", []) if isinstance(it, dict) and "item_id" in it]

    def _taken_item_ids(self) -> set[int]:
        return {i for o in self.orders.values() for i in self._item_ids(o)}

    def _assign_item_ids(self, oid: int, items: Any, keep: set[int]) -> None:
        if not isinstance(items, list) or not all(isinstance(it, dict) for it in items):
            raise MagentoError(400, BAD_TYPE, ["items", "array"])
        taken = self._taken_item_ids() - keep
        given = [it.get("item_id") for it in items]
        clash = any(i is not None and (not isinstance(i, int) or i in taken) for i in given) or len(
            [i for i in given if i is not None]
        ) != len({i for i in given if i is not None})
        remap: dict[Any, int] = {}
        for it in items:
            old = it.get("item_id")
            if old is None or clash:
                new = self.next_id("item", max(taken | set(keep) | {0}))
                if old is not None:
                    remap[old] = new
                it["item_id"] = new
            self._bump("item", it["item_id"])
            it.pop("parent_item", None)
        for it in items:
            if it.get("parent_item_id") is not None and it["parent_item_id"] in remap:
                it["parent_item_id"] = remap[it["parent_item_id"]]
            it["order_id"] = oid
            for key in ("qty_shipped", "qty_invoiced", "qty_canceled", "qty_refunded"):
                it.setdefault(key, 0)
            it.setdefault("qty_ordered", 1)
            it.setdefault("product_type", "simple")
            it.setdefault("is_virtual", 0)
            it.setdefault("price", 0)
            it.setdefault("discount_amount", 0)
            it.setdefault("tax_amount", 0)
            if not isinstance(it.get("sku"), str):
                raise MagentoError(400, REQUIRED, {"fieldName": "sku"})
            for key in ("qty_ordered", "price", "discount_amount", "tax_amount"):
                D(it[key])

    def _normalise_order(self, order: JSON) -> None:
        oid = order["entity_id"]
        bill = order.get("billing_address")
        if isinstance(bill, dict):
            bill.setdefault("address_type", "billing")
            bill["parent_id"] = oid
            if not isinstance(bill.get("entity_id"), int):
                bill["entity_id"] = self.next_id("order_address")
            self._bump("order_address", bill["entity_id"])
            order["billing_address_id"] = bill["entity_id"]
        for sa in (order.get("extension_attributes") or {}).get("shipping_assignments") or []:
            addr = (sa.get("shipping") or {}).get("address") if isinstance(sa, dict) else None
            if isinstance(addr, dict):
                addr.setdefault("address_type", "shipping")
                addr["parent_id"] = oid
                if not isinstance(addr.get("entity_id"), int):
                    addr["entity_id"] = self.next_id("order_address")
                self._bump("order_address", addr["entity_id"])
        payment = order.get("payment")
        if isinstance(payment, dict):
            payment.setdefault("entity_id", oid)
            payment["parent_id"] = oid
            payment.setdefault("account_status", None)
            payment.setdefault("additional_information", [])
            payment.setdefault("cc_last4", None)
        order.setdefault("status_histories", [])
        for key in ("grand_total", "base_grand_total", "subtotal", "shipping_amount", "tax_amount", "discount_amount"):
            D(order.get(key))

    def render_order(self, order: JSON) -> JSON:
        """The order as the API returns it: items' ``parent_item`` and shipping assignment items filled."""
        out = copy.deepcopy(order)
        by_id = {it["item_id"]: it for it in out["items"]}
        for it in out["items"]:
            parent = by_id.get(it.get("parent_item_id"))
            if parent is not None:
                it["parent_item"] = {k: v for k, v in copy.deepcopy(parent).items() if k != "parent_item"}
        for sa in (out.get("extension_attributes") or {}).get("shipping_assignments") or []:
            if isinstance(sa, dict):
                sa["items"] = copy.deepcopy(out["items"])
        return out

    def get_order(self, oid: int) -> JSON:
        if oid not in self.orders:
            raise MagentoError(404, NOT_FOUND)
        return self.orders[oid]

    def add_order_comment(self, oid: int, body: Any) -> bool:
        order = self.get_order(oid)
        history = body.get("statusHistory") if isinstance(body, dict) else None
        if not isinstance(history, dict):
            raise MagentoError(400, REQUIRED, {"fieldName": "statusHistory"})
        now = self.now()
        entry = {
            "comment": str(history.get("comment") or ""),
            "created_at": now,
            "entity_id": self.next_id("order_comment"),
            "entity_name": "order",
            "is_customer_notified": int(bool(history.get("is_customer_notified"))),
            "is_visible_on_front": int(bool(history.get("is_visible_on_front"))),
            "parent_id": oid,
            "status": history.get("status") or order.get("status"),
        }
        if history.get("status"):
            order["status"] = history["status"]
        order["status_histories"].insert(0, entry)
        order["updated_at"] = now
        return True

    def cancel(self, oid: int) -> bool:
        """``POST /V1/orders/{id}/cancel``: Magento's ``OrderManagement::cancel`` answers whether the
        order could be canceled (``canCancel``: not canceled, complete, closed or on hold, and something
        left that is neither invoiced nor canceled); what was not invoiced is canceled line by line."""
        order = self.get_order(oid)
        items = order["items"]
        open_qty = [D(it["qty_ordered"]) - D(it.get("qty_invoiced")) - D(it.get("qty_canceled")) for it in items]
        if order.get("state") in ("canceled", "complete", "closed", "holded") or not any(q > 0 for q in open_qty):
            return False
        for it, left in zip(items, open_qty, strict=True):
            if left > 0:
                it["qty_canceled"] = num(D(it.get("qty_canceled")) + left)
        if all(D(it.get("qty_invoiced")) == 0 for it in items):
            order["state"], order["status"] = "canceled", "canceled"
        else:  # part invoiced: Magento keeps the order open for what was paid
            self._refresh_state(order)
        order["updated_at"] = self.now()
        return True

    # ----------------------------------------------------------------- fulfilment

    def _units(self, order: JSON) -> list[_Unit]:
        items: list[JSON] = order["items"]
        by_id = {it["item_id"]: it for it in items}
        kids: dict[int, list[JSON]] = {}
        for it in items:
            pid = it.get("parent_item_id")
            if pid is not None and pid in by_id:
                kids.setdefault(pid, []).append(it)
        units: list[_Unit] = []
        for it in items:
            if it.get("parent_item_id") in by_id:
                continue
            children = kids.get(it["item_id"], [])
            virtual = bool(it.get("is_virtual"))
            if it.get("product_type") == "bundle" and children:
                for child in children:
                    ratio = D(child["qty_ordered"]) / (D(it["qty_ordered"]) or Decimal(1))
                    units.append(
                        _Unit(child, [child], {child["item_id"]}, bool(child.get("is_virtual")), it, ratio=ratio)
                    )
            elif children:
                units.append(_Unit(it, [it, *children], {it["item_id"]} | {c["item_id"] for c in children}, virtual))
            else:
                units.append(_Unit(it, [it], {it["item_id"]}, virtual))
        return units

    def _requested(self, order: JSON, body: JSON, kind: str) -> list[tuple[_Unit, Decimal]]:
        qty_field = "qty_shipped" if kind == "ship" else "qty_invoiced"
        prefix = SHIP_ERRORS if kind == "ship" else INVOICE_ERRORS
        units = self._units(order)
        items = _items_of(body)

        def left(u: _Unit) -> Decimal:
            if kind == "ship" and u.virtual:
                return Decimal(0)
            c = u.carrier
            return D(c["qty_ordered"]) - D(c.get(qty_field)) - D(c.get("qty_canceled"))

        wanted: dict[int, Decimal] = {}
        if not items:
            for i, u in enumerate(units):
                if left(u) > 0:
                    wanted[i] = left(u)
        for item_id, qty in items:
            if qty < 0:
                raise MagentoError(400, prefix + f"We found an invalid quantity to {kind} item with id {item_id}.")
            hits = [(i, u) for i, u in enumerate(units) if item_id in u.ids]
            if not hits:
                hits = [
                    (i, u) for i, u in enumerate(units) if u.bundle_parent and u.bundle_parent["item_id"] == item_id
                ]
            if not hits:
                what = "shipment" if kind == "ship" else "invoice"
                raise MagentoError(
                    400, prefix + f"The {what} contains an order item with id {item_id} that is not part of the order."
                )
            for i, u in hits:
                if qty:
                    wanted[i] = wanted.get(i, Decimal(0)) + qty * u.ratio
        for i, qty in wanted.items():
            u = units[i]
            if qty > left(u):
                verb = "ship" if kind == "ship" else "invoice"
                raise MagentoError(
                    400, prefix + f'We found an invalid quantity to {verb} item "{u.carrier.get("sku")}".'
                )
        if not wanted:
            if kind == "ship":
                raise MagentoError(400, prefix + "You can't create a shipment without products.")
            raise MagentoError(
                400, prefix + "The invoice can't be created without products. Add products and try again."
            )
        return [(units[i], q) for i, q in sorted(wanted.items())]

    def _check_open(self, order: JSON, kind: str) -> None:
        if order.get("state") in ("canceled", "closed", "holded"):
            if kind == "ship":
                raise MagentoError(400, SHIP_ERRORS + "The order does not allow a shipment to be created.")
            raise MagentoError(400, "An invoice cannot be created when an order has a status of %1", [order["status"]])

    @staticmethod
    def _roll_up(order: JSON, qty_field: str) -> dict[int, Decimal]:
        """Set bundle parents' qty from their children; the change per parent item id."""
        by_id = {it["item_id"]: it for it in order["items"]}
        changed: dict[int, Decimal] = {}
        for parent in order["items"]:
            if parent.get("product_type") != "bundle":
                continue
            children = [it for it in order["items"] if it.get("parent_item_id") == parent["item_id"]]
            if not children or parent.get("parent_item_id") in by_id:
                continue
            pq = D(parent["qty_ordered"]) or Decimal(1)
            done = min(D(c.get(qty_field)) / (D(c["qty_ordered"]) / pq) for c in children)
            done = done.to_integral_value(rounding=ROUND_FLOOR) if done != pq else done
            before = D(parent.get(qty_field))
            if done != before:
                parent[qty_field] = num(done)
                changed[parent["item_id"]] = done - before
        return changed

    def _refresh_state(self, order: JSON) -> None:
        if order.get("state") in ("canceled", "closed", "holded"):
            return
        items = order["items"]
        shipped_all = all(
            bool(it.get("is_virtual")) or D(it.get("qty_shipped")) + D(it.get("qty_canceled")) >= D(it["qty_ordered"])
            for it in items
        )
        invoiced_all = all(
            D(it.get("qty_invoiced")) + D(it.get("qty_canceled")) >= D(it["qty_ordered"]) for it in items
        )
        anything = any(D(it.get("qty_shipped")) > 0 or D(it.get("qty_invoiced")) > 0 for it in items)
        if shipped_all and invoiced_all:
            order["state"], order["status"] = "complete", "complete"
        elif anything:
            order["state"], order["status"] = "processing", "processing"

    def ship(self, oid: int, body: Any) -> str:
        """``POST /V1/order/{id}/ship``: the new shipment's id (as a string, as Magento answers)."""
        order = self.get_order(oid)
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise MagentoError(400, BAD_TYPE, ["body", "object"])
        self._check_open(order, "ship")
        wanted = self._requested(order, body, "ship")
        tracks_in = body.get("tracks") or []
        if not isinstance(tracks_in, list) or not all(isinstance(t, dict) for t in tracks_in):
            raise MagentoError(400, BAD_TYPE, ["tracks", "array"])
        for t in tracks_in:
            for key in ("track_number", "carrier_code"):
                if not t.get(key):
                    raise MagentoError(400, REQUIRED, {"fieldName": key})
        sid = self.next_id("shipment")
        now = self.now()
        deltas: dict[int, Decimal] = {}
        for unit, qty in wanted:
            for line in unit.lines:
                line["qty_shipped"] = num(D(line.get("qty_shipped")) + qty)
                line["updated_at"] = now
                deltas[line["item_id"]] = deltas.get(line["item_id"], Decimal(0)) + qty
        deltas.update(self._roll_up(order, "qty_shipped"))
        self.catalog.deduct_shipped(order, deltas)
        by_id = {it["item_id"]: it for it in order["items"]}
        items = []
        for item_id, qty in sorted(deltas.items()):
            it = by_id[item_id]
            items.append(
                {
                    "entity_id": self.next_id("shipment_item"),
                    "name": it.get("name"),
                    "parent_id": sid,
                    "price": it.get("price"),
                    "product_id": it.get("product_id"),
                    "sku": it["sku"],
                    "weight": it.get("weight"),
                    "order_item_id": item_id,
                    "qty": num(qty),
                }
            )
        tracks = [
            {
                "order_id": oid,
                "created_at": now,
                "entity_id": self.next_id("shipment_track"),
                "parent_id": sid,
                "updated_at": now,
                "weight": None,
                "qty": None,
                "description": None,
                "track_number": str(t["track_number"]),
                "title": str(t.get("title") or t["carrier_code"]),
                "carrier_code": str(t["carrier_code"]),
            }
            for t in tracks_in
        ]
        shipment = {
            "billing_address_id": order.get("billing_address_id"),
            "created_at": now,
            "customer_id": order.get("customer_id"),
            "email_sent": None,
            "entity_id": sid,
            "increment_id": f"{sid:09d}",
            "order_id": oid,
            "packages": [],
            "shipping_address_id": self._shipping_address_id(order),
            "store_id": order.get("store_id", 1),
            "total_qty": num(sum((unit_qty for _, unit_qty in wanted), Decimal(0))),
            "updated_at": now,
            "items": items,
            "tracks": tracks,
            "comments": self._comments(body, sid, now, "shipment"),
        }
        self.shipments[sid] = shipment
        order["updated_at"] = now
        self._refresh_state(order)
        return str(sid)

    def _comments(self, body: JSON, parent_id: int, now: str, kind: str) -> list[JSON]:
        comment = body.get("comment")
        if not comment:
            return []
        if not isinstance(comment, dict):
            raise MagentoError(400, BAD_TYPE, ["comment", "object"])
        return [
            {
                "is_customer_notified": int(bool(body.get("notify"))),
                "parent_id": parent_id,
                "comment": str(comment.get("comment") or ""),
                "is_visible_on_front": int(bool(comment.get("is_visible_on_front"))),
                "created_at": now,
                "entity_id": self.next_id(f"{kind}_comment"),
            }
        ]

    @staticmethod
    def _shipping_address_id(order: JSON) -> int | None:
        for sa in (order.get("extension_attributes") or {}).get("shipping_assignments") or []:
            addr = (sa.get("shipping") or {}).get("address") or {}
            if isinstance(addr.get("entity_id"), int):
                return int(addr["entity_id"])
        return None

    @staticmethod
    def _priced(order: JSON, item: JSON) -> bool:
        """Whether ``item`` carries money (configurable children and one side of a bundle do not)."""
        by_id = {it["item_id"]: it for it in order["items"]}
        parent = by_id.get(item.get("parent_item_id"))
        if parent is not None:
            return parent.get("product_type") == "bundle" and D(item.get("price")) > 0
        if item.get("product_type") == "bundle":
            children = [it for it in order["items"] if it.get("parent_item_id") == item["item_id"]]
            return not any(D(c.get("price")) > 0 for c in children)
        return True

    def invoice(self, oid: int, body: Any) -> str:
        """``POST /V1/order/{id}/invoice``: the new invoice's id (a string)."""
        order = self.get_order(oid)
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise MagentoError(400, BAD_TYPE, ["body", "object"])
        self._check_open(order, "invoice")
        wanted = self._requested(order, body, "invoice")
        capture = bool(body.get("capture"))
        iid = self.next_id("invoice")
        now = self.now()
        deltas: dict[int, Decimal] = {}
        for unit, qty in wanted:
            for line in unit.lines:
                line["qty_invoiced"] = num(D(line.get("qty_invoiced")) + qty)
                deltas[line["item_id"]] = deltas.get(line["item_id"], Decimal(0)) + qty
        deltas.update(self._roll_up(order, "qty_invoiced"))
        by_id = {it["item_id"]: it for it in order["items"]}
        items = []
        subtotal = tax = discount = Decimal(0)
        for item_id, qty in sorted(deltas.items()):
            it = by_id[item_id]
            row: JSON = {
                "entity_id": self.next_id("invoice_item"),
                "name": it.get("name"),
                "parent_id": iid,
                "product_id": it.get("product_id"),
                "sku": it["sku"],
                "order_item_id": item_id,
                "qty": num(qty),
            }
            if self._priced(order, it):
                share = qty / (D(it["qty_ordered"]) or Decimal(1))
                price = D(it.get("price"))
                row_total = money(price * qty)
                row_tax = money(D(it.get("tax_amount")) * share)
                row_disc = money(D(it.get("discount_amount")) * share)
                if D(it.get("qty_invoiced")) >= D(it["qty_ordered"]):
                    row_tax = D(it.get("tax_amount")) - D(it.get("tax_invoiced"))
                    row_disc = D(it.get("discount_amount")) - D(it.get("discount_invoiced"))
                it["row_invoiced"] = num(D(it.get("row_invoiced")) + row_total)
                it["base_row_invoiced"] = it["row_invoiced"]
                it["tax_invoiced"] = num(D(it.get("tax_invoiced")) + row_tax)
                it["base_tax_invoiced"] = it["tax_invoiced"]
                it["discount_invoiced"] = num(D(it.get("discount_invoiced")) + row_disc)
                it["base_discount_invoiced"] = it["discount_invoiced"]
                subtotal, tax, discount = subtotal + row_total, tax + row_tax, discount + row_disc
                incl = D(it.get("price_incl_tax") or price)
                row.update(
                    base_price=num(price),
                    price=num(price),
                    base_price_incl_tax=num(incl),
                    price_incl_tax=num(incl),
                    base_row_total=num(row_total),
                    row_total=num(row_total),
                    base_row_total_incl_tax=num(row_total + row_tax),
                    row_total_incl_tax=num(row_total + row_tax),
                    base_tax_amount=num(row_tax),
                    tax_amount=num(row_tax),
                    base_discount_amount=num(row_disc),
                    discount_amount=num(row_disc),
                    base_discount_tax_compensation_amount=0,
                    discount_tax_compensation_amount=0,
                )
            else:
                row.update(base_price=num(D(it.get("price"))), price=num(D(it.get("price"))))
            it["updated_at"] = now
            items.append(row)
        first = D(order.get("shipping_invoiced")) == 0 and not any(i["order_id"] == oid for i in self.invoices.values())
        shipping = D(order.get("shipping_amount")) if first else Decimal(0)
        ship_disc = D(order.get("shipping_discount_amount")) if first else Decimal(0)
        shipping_tax = D(order.get("shipping_tax_amount")) if first else Decimal(0)
        tax += shipping_tax
        total_discount = -(discount + ship_disc)
        everything = all(
            D(it.get("qty_invoiced")) + D(it.get("qty_canceled")) >= D(it["qty_ordered"]) for it in order["items"]
        )
        if everything:  # the last invoice takes what is left, so the invoices add up to the order
            subtotal = D(order.get("subtotal")) - D(order.get("subtotal_invoiced"))
            tax = D(order.get("tax_amount")) - D(order.get("tax_invoiced"))
            total_discount = D(order.get("discount_amount")) - D(order.get("discount_invoiced"))
            shipping = D(order.get("shipping_amount")) - D(order.get("shipping_invoiced"))
        grand = subtotal + total_discount + shipping + tax
        if everything:
            grand = D(order.get("grand_total")) - D(order.get("total_invoiced"))
        currency = order.get("order_currency_code") or "USD"
        invoice = {
            "base_currency_code": order.get("base_currency_code") or currency,
            "base_discount_amount": num(total_discount),
            "base_grand_total": num(grand),
            "base_discount_tax_compensation_amount": 0,
            "base_shipping_amount": num(shipping),
            "base_shipping_incl_tax": num(shipping + shipping_tax),
            "base_shipping_tax_amount": num(shipping_tax),
            "base_subtotal": num(subtotal),
            "base_subtotal_incl_tax": num(subtotal + tax - shipping_tax),
            "base_tax_amount": num(tax),
            "base_to_global_rate": 1,
            "base_to_order_rate": 1,
            "billing_address_id": order.get("billing_address_id"),
            "can_void_flag": 0,
            "created_at": now,
            "discount_amount": num(total_discount),
            "email_sent": int(bool(body.get("notify"))),
            "entity_id": iid,
            "global_currency_code": currency,
            "grand_total": num(grand),
            "discount_tax_compensation_amount": 0,
            "increment_id": f"{iid:09d}",
            "order_currency_code": currency,
            "order_id": oid,
            "shipping_address_id": self._shipping_address_id(order),
            "shipping_amount": num(shipping),
            "shipping_discount_tax_compensation_amount": 0,
            "shipping_incl_tax": num(shipping + shipping_tax),
            "shipping_tax_amount": num(shipping_tax),
            "state": 2 if capture else 1,
            "store_currency_code": currency,
            "store_id": order.get("store_id", 1),
            "store_to_base_rate": 0,
            "store_to_order_rate": 0,
            "subtotal": num(subtotal),
            "subtotal_incl_tax": num(subtotal + tax - shipping_tax),
            "tax_amount": num(tax),
            "total_qty": num(sum((q for _, q in wanted), Decimal(0))),
            "updated_at": now,
            "items": items,
            "comments": self._comments(body, iid, now, "invoice"),
        }
        self.invoices[iid] = invoice
        for key, value in (
            ("subtotal_invoiced", subtotal),
            ("tax_invoiced", tax),
            ("discount_invoiced", total_discount),
            ("shipping_invoiced", shipping),
            ("total_invoiced", grand),
        ):
            order[key] = num(D(order.get(key)) + value)
            order["base_" + key] = order[key]
        if capture:
            paid = min(D(order.get("total_paid")) + grand, D(order.get("grand_total")))
            order["total_paid"] = order["base_total_paid"] = num(paid)
            order["total_due"] = order["base_total_due"] = num(D(order.get("grand_total")) - paid)
            payment = order.get("payment")
            if isinstance(payment, dict):
                payment["amount_paid"] = payment["base_amount_paid"] = num(paid)
                if payment.get("method") not in OFFLINE_METHODS:  # the gateway's capture
                    payment["last_trans_id"] = invoice["transaction_id"] = gateway_transaction_id()
        order["updated_at"] = now
        self._refresh_state(order)
        return str(iid)

    # ----------------------------------------------------------------- refunds

    def refund(self, oid: int, body: Any, *, invoice_id: int | None = None) -> str:
        """``POST /V1/order/{id}/refund`` (offline) or ``POST /V1/invoice/{id}/refund`` (``isOnline``:
        the gateway refunds): the new credit memo's id. What was invoiced and not refunded can be
        refunded (no items: all of it), with shipping (``arguments.shipping_amount``; default: the
        shipping not refunded yet) and adjustments; at most what was paid and not refunded."""
        order = self.get_order(oid)
        body = {} if body is None else body
        if not isinstance(body, dict):
            raise MagentoError(400, BAD_TYPE, ["body", "object"])
        if order.get("state") in ("canceled", "closed", "holded") or D(order.get("total_invoiced")) <= 0:
            raise MagentoError(400, CANT_REFUND)
        online = bool(body.get("isOnline")) and invoice_id is not None
        method = (order.get("payment") or {}).get("method")
        if online and method in OFFLINE_METHODS:
            raise MagentoError(400, "Cannot create online refund for offline invoice.")
        args = body.get("arguments") or {}
        if not isinstance(args, dict):
            raise MagentoError(400, BAD_TYPE, ["arguments", "object"])
        wanted = self._refund_items(order, body)
        cid = self.next_id("creditmemo")
        now = self.now()
        items, subtotal, tax, discount = [], Decimal(0), Decimal(0), Decimal(0)
        for unit, qty in wanted:
            it = unit.carrier
            row: JSON = {
                "entity_id": self.next_id("creditmemo_item"),
                "name": it.get("name"),
                "parent_id": cid,
                "product_id": it.get("product_id"),
                "sku": it["sku"],
                "order_item_id": it["item_id"],
                "qty": num(qty),
                "base_cost": 0,
                "base_price": num(D(it.get("price"))),
                "price": num(D(it.get("price"))),
            }
            if self._priced(order, it):
                invoiced = D(it.get("qty_invoiced")) or Decimal(1)
                price = D(it.get("price"))
                row_total = money(price * qty)
                row_tax = money(D(it.get("tax_invoiced")) * qty / invoiced)
                row_disc = money(D(it.get("discount_invoiced")) * qty / invoiced)
                if D(it.get("qty_refunded")) + qty >= D(it.get("qty_invoiced")):  # the last refund takes the rest
                    row_tax = D(it.get("tax_invoiced")) - D(it.get("tax_refunded"))
                    row_disc = D(it.get("discount_invoiced")) - D(it.get("discount_refunded"))
                for key, value in (("tax_refunded", row_tax), ("discount_refunded", row_disc)):
                    it[key] = num(D(it.get(key)) + value)
                    it["base_" + key] = it[key]
                it["amount_refunded"] = it["base_amount_refunded"] = num(D(it.get("amount_refunded")) + row_total)
                subtotal, tax, discount = subtotal + row_total, tax + row_tax, discount + row_disc
                incl = D(it.get("price_incl_tax") or price)
                for key, value in (
                    ("price_incl_tax", incl),
                    ("row_total", row_total),
                    ("row_total_incl_tax", row_total + row_tax),
                    ("tax_amount", row_tax),
                    ("discount_amount", row_disc),
                    ("discount_tax_compensation_amount", Decimal(0)),
                ):
                    row[key] = row["base_" + key] = num(value)
            for line in unit.lines:
                line["qty_refunded"] = num(D(line.get("qty_refunded")) + qty)
                line["updated_at"] = now
            items.append(row)
        shipping_left = D(order.get("shipping_invoiced")) - D(order.get("shipping_refunded"))
        shipping = D(args["shipping_amount"]) if args.get("shipping_amount") is not None else shipping_left
        if shipping < 0 or shipping > shipping_left:
            raise MagentoError(400, "Maximum shipping amount allowed to refund is: %1", [num(shipping_left)])
        ship_base = D(order.get("shipping_amount"))
        shipping_tax = money(D(order.get("shipping_tax_amount")) * shipping / ship_base) if ship_base else Decimal(0)
        # the shipping discount goes back with the shipping it came off (Creditmemo\Total\Discount)
        ship_disc = money(D(order.get("shipping_discount_amount")) * shipping / ship_base) if ship_base else Decimal(0)
        tax += shipping_tax
        discount += ship_disc
        plus, minus = D(args.get("adjustment_positive")), D(args.get("adjustment_negative"))
        grand = money(subtotal - discount + shipping + tax + plus - minus)
        available = D(order.get("total_paid")) - D(order.get("total_refunded"))
        if grand > available + Decimal("0.0001"):
            raise MagentoError(400, "The most money available to refund is %1.", [num(available)])
        if grand <= 0:
            raise MagentoError(400, REFUND_ERRORS + "The credit memo's total must be positive.")
        currency = order.get("order_currency_code") or "USD"
        memo: JSON = {
            "adjustment": num(plus - minus),
            "adjustment_negative": num(minus),
            "adjustment_positive": num(plus),
            "base_currency_code": order.get("base_currency_code") or currency,
            "base_to_global_rate": 1,
            "base_to_order_rate": 1,
            "billing_address_id": order.get("billing_address_id"),
            "created_at": now,
            "creditmemo_status": 0,
            "discount_amount": num(-discount),
            "email_sent": int(bool(body.get("notify"))),
            "entity_id": cid,
            "global_currency_code": currency,
            "grand_total": num(grand),
            "increment_id": f"{cid:09d}",
            "invoice_id": invoice_id,
            "order_currency_code": currency,
            "order_id": oid,
            "shipping_address_id": self._shipping_address_id(order),
            "shipping_amount": num(shipping),
            "shipping_incl_tax": num(shipping + shipping_tax),
            "shipping_tax_amount": num(shipping_tax),
            "state": 2,
            "store_currency_code": currency,
            "store_id": order.get("store_id", 1),
            "subtotal": num(subtotal),
            "subtotal_incl_tax": num(subtotal + tax - shipping_tax),
            "tax_amount": num(tax),
            "updated_at": now,
            "items": items,
            "comments": self._comments(body, cid, now, "creditmemo"),
        }
        for key in ("adjustment", "adjustment_negative", "adjustment_positive", "discount_amount", "grand_total"):
            memo["base_" + key] = memo[key]
        for key in ("shipping_amount", "shipping_incl_tax", "shipping_tax_amount", "subtotal", "subtotal_incl_tax"):
            memo["base_" + key] = memo[key]
        memo["base_tax_amount"] = memo["tax_amount"]
        if online:
            memo["transaction_id"] = gateway_transaction_id()
        self.creditmemos[cid] = memo
        for key, value in (
            ("subtotal_refunded", subtotal),
            ("tax_refunded", tax),
            ("discount_refunded", discount),
            ("shipping_refunded", shipping),
            ("adjustment_positive", plus),
            ("adjustment_negative", minus),
            ("total_refunded", grand),
            ("total_online_refunded" if online else "total_offline_refunded", grand),
        ):
            order[key] = num(D(order.get(key)) + value)
            order["base_" + key] = order[key]
        payment = order.get("payment")
        if isinstance(payment, dict):
            payment["amount_refunded"] = payment["base_amount_refunded"] = order["total_refunded"]
        order["updated_at"] = now
        if D(order.get("total_refunded")) >= D(order.get("total_paid")) and all(
            D(it.get("qty_refunded")) + D(it.get("qty_canceled")) >= D(it["qty_ordered"]) for it in order["items"]
        ):
            order["state"] = order["status"] = "closed"
        return str(cid)

    def _refund_items(self, order: JSON, body: JSON) -> list[tuple[_Unit, Decimal]]:
        """The units to refund and how many of each (none asked: all that is invoiced and not refunded)."""
        units = self._units(order)
        items = _items_of(body)

        def left(u: _Unit) -> Decimal:
            return D(u.carrier.get("qty_invoiced")) - D(u.carrier.get("qty_refunded"))

        if not items:
            return [(u, left(u)) for u in units if left(u) > 0]
        wanted: dict[int, Decimal] = {}
        for item_id, qty in items:
            hits = [i for i, u in enumerate(units) if item_id in u.ids]
            if not hits:
                raise MagentoError(
                    400,
                    REFUND_ERRORS
                    + f"The creditmemo contains product item id {item_id} that is not part of the original order.",
                )
            if qty < 0 or qty > left(units[hits[0]]) - wanted.get(hits[0], Decimal(0)):
                sku = units[hits[0]].carrier.get("sku")
                raise MagentoError(
                    400,
                    REFUND_ERRORS + "The quantity to creditmemo must not be greater than the unrefunded quantity "
                    f'for product SKU "{sku}".',
                )
            if qty:
                wanted[hits[0]] = wanted.get(hits[0], Decimal(0)) + qty
        return [(units[i], q) for i, q in wanted.items()]

    # ----------------------------------------------------------------- seed

    def seed(self, body: JSON) -> JSON:
        """``/_sim/seed``: products, customers and orders (Magento records); the ids assigned."""
        out: JSON = {"products": [], "customers": [], "orders": []}
        with self.lock:
            try:
                self._seed_into(body, out)
            except MagentoError as exc:
                raise ValueError(render_message(exc.message, exc.parameters)) from exc
        return out

    def _seed_into(self, body: JSON, out: JSON) -> None:
        if body.get("edition") is not None:
            if body["edition"] not in ("open-source", "commerce"):
                raise MagentoError(400, "edition is open-source or commerce, not %1", [body["edition"]])
            self.edition = body["edition"]
            out["edition"] = self.edition
        self.catalog.seed_before(body, out)
        for p in body.get("products") or []:
            saved = self.save_product(p)
            out["products"].append({"sku": saved["sku"], "id": saved["id"]})
        for c in body.get("customers") or []:
            saved = self.save_customer(c)
            out["customers"].append({"email": saved["email"], "id": saved["id"]})
        for o in body.get("orders") or []:
            saved = self.save_order(o, keep_timestamps=True)
            out["orders"].append(
                {
                    "entity_id": saved["entity_id"],
                    "increment_id": saved["increment_id"],
                    "item_ids": [it["item_id"] for it in saved["items"]],
                }
            )
        if body.get("returns"):
            out["returns"] = self.returns.seed(body["returns"])
        self.catalog.seed_after(body, out)


def _order_number(order: JSON) -> tuple[str, str]:
    """An order's (increment_id, store_id): one order per pair, as sales_order's unique key has it."""
    store = order.get("store_id")
    return str(order.get("increment_id") or ""), str(1 if store is None else store)


# --------------------------------------------------------------------------- HTTP layer

Handler = Callable[["MagentoSim", "re.Match[str]", list[tuple[str, str]], Any], Any]


def _int(value: str) -> int:
    if not re.fullmatch(r"\d{1,18}", value):
        raise MagentoError(400, BAD_TYPE, [value, "int"])
    return int(value)


def _search(
    records: list[JSON], q: list[tuple[str, str]], id_field: str, columns: dict[str, str] | None = None
) -> JSON:
    return copy.deepcopy(search(records, parse_search_criteria(q), id_field, columns))


def _h_orders(sim: MagentoSim, m: re.Match[str], q: list[tuple[str, str]], body: Any) -> Any:
    # filter and page the stored orders, then render only the page: rendering copies every item,
    # so rendering first made a search O(store size) in deep copies (48 s for 100k orders)
    found = search(list(sim.orders.values()), parse_search_criteria(q), "entity_id")
    items = [sim.render_order(o) for o in found["items"]]
    return {**found, "search_criteria": copy.deepcopy(found["search_criteria"]), "items": items}


def _h_order(sim: MagentoSim, m: re.Match[str], q: list[tuple[str, str]], body: Any) -> Any:
    return sim.render_order(sim.get_order(_int(m["id"])))


def _h_save_order(sim: MagentoSim, m: re.Match[str], q: list[tuple[str, str]], body: Any) -> Any:
    if not isinstance(body, dict) or "entity" not in body:
        raise MagentoError(400, REQUIRED, {"fieldName": "entity"})
    return sim.save_order(body["entity"])


def _h_order_comments(sim: MagentoSim, m: re.Match[str], q: list[tuple[str, str]], body: Any) -> Any:
    oid = _int(m["id"])
    rows = copy.deepcopy(sim.get_order(oid)["status_histories"])
    return {"items": rows, "search_criteria": _one_filter_criteria("parent_id", oid), "total_count": len(rows)}


def _h_add_order_comment(sim: MagentoSim, m: re.Match[str], q: list[tuple[str, str]], body: Any) -> Any:
    return sim.add_order_comment(_int(m["id"]), body)


def _h_cancel(sim: MagentoSim, m: re.Match[str], q: list[tuple[str, str]], body: Any) -> Any:
    return sim.cancel(_int(m["id"]))


def _h_ship(sim: MagentoSim, m: re.Match[str], q: list[tuple[str, str]], body: Any) -> Any:
    return sim.ship(_int(m["id"]), body)


def _h_invoice(sim: MagentoSim, m: re.Match[str], q: list[tuple[str, str]], body: Any) -> Any:
    return sim.invoice(_int(m["id"]), body)


def _items_of(body: JSON) -> list[tuple[int, Decimal]]:
    """A shipment's, invoice's or credit memo's ``items`` (``[{order_item_id, qty}]``) as (id, qty)."""
    items = body.get("items") or []
    if not isinstance(items, list):
        raise MagentoError(400, BAD_TYPE, ["items", "array"])
    out = []
    for req in items:
        if not isinstance(req, dict) or "order_item_id" not in req:
            raise MagentoError(400, REQUIRED, {"fieldName": "order_item_id"})
        try:
            out.append((int(req["order_item_id"]), D(req.get("qty", 0))))
        except (TypeError, ValueError) as exc:
            raise MagentoError(400, BAD_TYPE, [str(req.get("order_item_id")), "int"]) from exc
    return out


def _h_refund(sim: MagentoSim, m: re.Match[str], q: list[tuple[str, str]], body: Any) -> Any:
    return sim.refund(_int(m["id"]), body)


def _h_refund_invoice(sim: MagentoSim, m: re.Match[str], q: list[tuple[str, str]], body: Any) -> Any:
    iid = _int(m["id"])
    if iid not in sim.invoices:
        raise MagentoError(404, NOT_FOUND)
    return sim.refund(int(sim.invoices[iid]["order_id"]), body, invoice_id=iid)


def _h_creditmemos(sim: MagentoSim, m: re.Match[str], q: list[tuple[str, str]], body: Any) -> Any:
    return _search(list(sim.creditmemos.values()), q, "entity_id")


def _h_creditmemo(sim: MagentoSim, m: re.Match[str], q: list[tuple[str, str]], body: Any) -> Any:
    return _document(sim.creditmemos, m["id"])


def _document(documents: dict[int, JSON], raw_id: str) -> JSON:
    """One shipment, invoice or credit memo by id (404 when there is none)."""
    did = _int(raw_id)
    if did not in documents:
        raise MagentoError(404, NOT_FOUND)
    return copy.deepcopy(documents[did])


def _comments_page(document: JSON) -> JSON:
    """A shipment's or invoice's comments as Magento's comment search result."""
    rows = document["comments"]
    return {
        "items": rows,
        "search_criteria": _one_filter_criteria("parent_id", document["entity_id"]),
        "total_count": len(rows),
    }


def _h_shipments(sim: MagentoSim, m: re.Match[str], q: list[tuple[str, str]], body: Any) -> Any:
    return _search(list(sim.shipments.values()), q, "entity_id")


def _h_shipment(sim: MagentoSim, m: re.Match[str], q: list[tuple[str, str]], body: Any) -> Any:
    return _document(sim.shipments, m["id"])


def _h_shipment_comments(sim: MagentoSim, m: re.Match[str], q: list[tuple[str, str]], body: Any) -> Any:
    return _comments_page(_h_shipment(sim, m, q, body))


def _h_invoices(sim: MagentoSim, m: re.Match[str], q: list[tuple[str, str]], body: Any) -> Any:
    return _search(list(sim.invoices.values()), q, "entity_id")


def _h_invoice_get(sim: MagentoSim, m: re.Match[str], q: list[tuple[str, str]], body: Any) -> Any:
    return _document(sim.invoices, m["id"])


def _h_invoice_comments(sim: MagentoSim, m: re.Match[str], q: list[tuple[str, str]], body: Any) -> Any:
    return _comments_page(_h_invoice_get(sim, m, q, body))


def _h_customers_search(sim: MagentoSim, m: re.Match[str], q: list[tuple[str, str]], body: Any) -> Any:
    return _search(list(sim.customers.values()), q, "id", {"entity_id": "id"})


def _h_customer(sim: MagentoSim, m: re.Match[str], q: list[tuple[str, str]], body: Any) -> Any:
    return sim.get_customer(_int(m["id"]))


def _h_create_customer(sim: MagentoSim, m: re.Match[str], q: list[tuple[str, str]], body: Any) -> Any:
    if not isinstance(body, dict) or "customer" not in body:
        raise MagentoError(400, REQUIRED, {"fieldName": "customer"})
    customer = body["customer"]
    if isinstance(customer, dict) and customer.get("id") is not None:
        customer = {k: v for k, v in customer.items() if k != "id"}
    return sim.save_customer(customer)


def _h_update_customer(sim: MagentoSim, m: re.Match[str], q: list[tuple[str, str]], body: Any) -> Any:
    if not isinstance(body, dict) or "customer" not in body:
        raise MagentoError(400, REQUIRED, {"fieldName": "customer"})
    return sim.save_customer(body["customer"], _int(m["id"]))


def _h_token(sim: MagentoSim, m: re.Match[str], q: list[tuple[str, str]], body: Any) -> Any:
    return sim.issue_token(body)


# (method, path pattern after /V1, handler, ACL resource or None when no token is needed)
ROUTES: list[tuple[str, re.Pattern[str], Handler, str | None]] = [
    (method, re.compile(f"^{pattern}$"), handler, resource)
    for method, pattern, handler, resource in [
        ("POST", r"/integration/admin/token", _h_token, None),
        ("GET", r"/orders", _h_orders, "Magento_Sales::actions_view"),
        ("POST", r"/orders", _h_save_order, "Magento_Sales::create"),
        ("GET", r"/orders/(?P<id>[^/]+)", _h_order, "Magento_Sales::actions_view"),
        ("GET", r"/orders/(?P<id>[^/]+)/comments", _h_order_comments, "Magento_Sales::actions_view"),
        ("POST", r"/orders/(?P<id>[^/]+)/comments", _h_add_order_comment, "Magento_Sales::comment"),
        ("POST", r"/orders/(?P<id>[^/]+)/cancel", _h_cancel, "Magento_Sales::cancel"),
        ("POST", r"/order/(?P<id>[^/]+)/ship", _h_ship, "Magento_Sales::ship"),
        ("POST", r"/order/(?P<id>[^/]+)/invoice", _h_invoice, "Magento_Sales::sales_invoice"),
        ("GET", r"/shipments", _h_shipments, "Magento_Sales::shipment"),
        ("GET", r"/shipment/(?P<id>[^/]+)", _h_shipment, "Magento_Sales::shipment"),
        ("GET", r"/shipment/(?P<id>[^/]+)/comments", _h_shipment_comments, "Magento_Sales::shipment"),
        ("GET", r"/invoices", _h_invoices, "Magento_Sales::sales_invoice"),
        ("GET", r"/invoices/(?P<id>[^/]+)", _h_invoice_get, "Magento_Sales::sales_invoice"),
        ("GET", r"/invoices/(?P<id>[^/]+)/comments", _h_invoice_comments, "Magento_Sales::sales_invoice"),
        ("POST", r"/order/(?P<id>[^/]+)/refund", _h_refund, "Magento_Sales::creditmemo"),
        ("POST", r"/invoice/(?P<id>[^/]+)/refund", _h_refund_invoice, "Magento_Sales::creditmemo"),
        ("GET", r"/creditmemos", _h_creditmemos, "Magento_Sales::creditmemo"),
        ("GET", r"/creditmemo/(?P<id>[^/]+)", _h_creditmemo, "Magento_Sales::creditmemo"),
        ("GET", r"/customers/search", _h_customers_search, "Magento_Customer::customer"),
        ("GET", r"/customers/(?P<id>[^/]+)", _h_customer, "Magento_Customer::customer"),
        ("POST", r"/customers", _h_create_customer, "Magento_Customer::manage"),
        ("PUT", r"/customers/(?P<id>[^/]+)", _h_update_customer, "Magento_Customer::manage"),
    ]
]

_PREFIX = re.compile(r"^/rest(?:/(?P<store>(?!V1/)[^/]+))?(?P<bulk>/async/bulk)?/V1(?P<rest>/.*)$")


_TABLES: dict[bool, list[tuple[str, re.Pattern[str], Handler, str | None]]] = {}


def _route_table(bulk: bool) -> list[tuple[str, re.Pattern[str], Handler, str | None]]:
    """The routes to match: the catalog's first (imported on first use: it builds on this module)."""
    if not _TABLES:
        from sandbox.sims.magento_catalog import ASYNC_ROUTES, CATALOG_ROUTES
        from sandbox.sims.magento_rma import RMA_ROUTES

        compiled = [(m, re.compile(f"^{p}$"), h, r) for m, p, h, r in [*CATALOG_ROUTES, *RMA_ROUTES]]
        _TABLES[False] = [*compiled, *ROUTES]
        _TABLES[True] = [(m, re.compile(f"^{p}$"), h, r) for m, p, h, r in ASYNC_ROUTES]
    return _TABLES[bulk]


def _error(exc: MagentoError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status)


def _raw_path(request: Request) -> str:
    """The path as sent (``%2F`` in a SKU stays encoded; handlers unquote what they capture)."""
    raw = request.scope.get("raw_path")
    return raw.decode("latin-1").split("?", 1)[0] if isinstance(raw, bytes) and raw else request.url.path


async def _dispatch(request: Request) -> Response:
    sim: MagentoSim = request.app.state.sim
    m = _PREFIX.match(_raw_path(request))
    store = (m["store"] or "default") if m else "default"
    if m is None or not sim.catalog.knows_store(store):
        return _error(MagentoError(404, NO_ROUTE))
    rest = m["rest"].rstrip("/") or "/"
    route = None
    path_known = False
    for method, pattern, handler, resource in _route_table(bool(m["bulk"])):
        hit = pattern.match(rest)
        if hit:
            path_known = True
            if method == request.method:
                route = (hit, handler, resource)
                break
    if route is None:
        return _error(MagentoError(404 if not path_known else 405, NO_ROUTE))
    hit, handler, resource = route
    body: Any = None
    if request.method in ("POST", "PUT"):
        raw = await request.body()
        if raw.strip():
            try:
                body = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                return _error(MagentoError(400, "Decoding error: \nSyntax error"))
    query = list(request.query_params.multi_items())
    try:
        with sim.lock:
            if resource is not None:
                auth = request.headers.get("authorization", "")
                token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
                if token not in sim.tokens:
                    raise MagentoError(401, NOT_AUTHORIZED, {"resources": resource})
            sim.store_code = store
            result = handler(sim, hit, query, body)
    except MagentoError as exc:
        return _error(exc)
    except (KeyError, TypeError, ValueError, InvalidOperation, AttributeError) as exc:
        return _error(MagentoError(400, "The request is invalid: %1", [str(exc)]))
    return JSONResponse(result)


def create_app(
    username: str = "admin",
    password: str = "admin123",  # noqa: S107 - the sim's well-known default
    *,
    clock: Callable[[], datetime] | None = None,
    edition: str = "open-source",
) -> Starlette:
    """The Magento sim as an ASGI app; its state is ``app.state.sim`` (a :class:`MagentoSim`).
    ``edition="commerce"`` serves Adobe Commerce's returns (RMA) too."""
    sim = MagentoSim(username=username, password=password, edition=edition)
    if clock is not None:
        sim.clock = clock
    control = SimControl(
        reset_data=sim.reset,
        seed_data=sim.seed,
        error_body=lambda status, message: {"message": message},
    )
    methods = ["GET", "POST", "PUT", "DELETE"]
    app = Starlette(routes=[*control.routes(), Route("/rest/{path:path}", _dispatch, methods=methods)])
    app.add_middleware(BaseHTTPMiddleware, dispatch=control.dispatch)
    app.state.sim = sim
    app.state.control = control
    return app
