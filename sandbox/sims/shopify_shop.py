"""The Shopify sim's shop: customers, products and variants, a location, orders with their lines,
discounts, shipping, taxes, transactions, fulfillment orders and fulfillments, and the webhooks
they raise; and how each is shown as the Admin GraphQL schema's objects (``sandbox.sims.shopify``
executes queries against the official schema over these).

A record is kept as a plain dict; ``*_node`` renders it as a GraphQL object: a dict whose keys are
the schema's field names, with a callable (``info, **args``) where a field takes arguments
(graphql-core's default resolver calls it). Money is ``Decimal`` in the shop's currency; a
``MoneyBag`` shows it in shop and presentment money. Ids are beyond 2**53, as Shopify's are.
"""

from __future__ import annotations

import base64
import contextvars
import json
import re
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from graphql import GraphQLError

JSON = dict[str, Any]
CENT = Decimal("0.01")
FIRST_ID = 9_007_199_254_740_993
"""2**53 + 1: an id a float cannot hold, as Shopify's own (``820982911946154508``)."""
MAX_PAGE = 250
BULK: contextvars.ContextVar[bool] = contextvars.ContextVar("shopify_sim_bulk", default=False)
"""Set while a bulk operation runs its query: connections are read whole."""


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def iso(when: datetime | None) -> str | None:
    return None if when is None else when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def money(value: Decimal) -> str:
    return str(Decimal(value).quantize(CENT, ROUND_HALF_UP))


def gid(kind: str, id: int) -> str:
    return f"gid://shopify/{kind}/{id}"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def parse_gid(value: Any, kind: str) -> int:
    """The number of ``gid://shopify/<kind>/<n>``; a GraphQL error naming the id otherwise."""
    m = re.fullmatch(rf"gid://shopify/{kind}/(\d+)", str(value or ""))
    if not m:
        raise GraphQLError(f"Invalid id: {value}")
    return int(m.group(1))


class SearchQuery:
    """Shopify's search syntax, the part the connector uses: ``field:value`` terms joined by spaces
    (AND) or by ``OR``, with ``>``, ``>=``, ``<``, ``<=`` and quoted values
    (``updated_at:>'2025-01-01T00:00:00Z'``, ``sku:'A' OR sku:'B'``). Anything else is refused with
    an error naming it (the sim does not pretend to search)."""

    TERM = re.compile(r"""(\w+):(>=|<=|>|<)?('[^']*'|"[^"]*"|\S+)""")

    def __init__(self, text: str | None, fields: Iterable[str]) -> None:
        self.groups: list[list[tuple[str, str, str]]] = []
        allowed = set(fields)
        for part in re.split(r"\s+OR\s+", (text or "").strip()):
            self.groups.append(self._terms(part.strip(), allowed))

    def _terms(self, text: str, allowed: set[str]) -> list[tuple[str, str, str]]:
        terms: list[tuple[str, str, str]] = []
        pos = 0
        for m in self.TERM.finditer(text):
            if text[pos : m.start()].strip():
                raise GraphQLError(f"Search syntax not supported by the sim: {text[pos : m.start()].strip()!r}")
            field, op, value = m.group(1), m.group(2) or "=", m.group(3).strip("'\"")
            if field not in allowed:
                raise GraphQLError(f"Search field {field!r} is not supported by the sim (supported: {sorted(allowed)})")
            terms.append((field, op, value))
            pos = m.end()
        if text[pos:].strip():
            raise GraphQLError(f"Search syntax not supported by the sim: {text[pos:].strip()!r}")
        return terms

    def matches(self, values: dict[str, Any]) -> bool:
        return any(self._all(group, values) for group in self.groups)

    @staticmethod
    def _all(terms: list[tuple[str, str, str]], values: dict[str, Any]) -> bool:
        for field, op, wanted in terms:
            have = values.get(field)
            if isinstance(have, datetime):
                want: Any = datetime.fromisoformat(wanted.replace("Z", "+00:00"))
                if want.tzinfo is None:
                    want = want.replace(tzinfo=UTC)
            else:
                have, want = str(have or "").lower(), wanted.lower()
            if have is None:
                return False
            ok = {
                "=": have == want,
                ">": have > want,
                ">=": have >= want,
                "<": have < want,
                "<=": have <= want,
            }[op]
            if not ok:
                return False
        return True


def connection(
    rows: list[Any],
    render: Callable[[Any], JSON],
    key: Callable[[Any], Any],
    *,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
    reverse: bool = False,
    **_: Any,
) -> JSON:
    """A Relay connection over ``rows`` sorted by ``key`` (cursor: the row's sort key and id). In a
    bulk operation (``BULK`` set) a connection without ``first``/``last`` is read whole."""
    if first is None and last is None:
        if not BULK.get():
            raise GraphQLError("you must provide one of first or last")
        first = len(rows)
    for name, value in (("first", first), ("last", last)):
        if value is not None and value > MAX_PAGE and not BULK.get():
            raise GraphQLError(f"The {name} argument cannot exceed {MAX_PAGE}.")
        if value is not None and value < 0:
            raise GraphQLError(f"The {name} argument cannot be negative.")
    ordered = sorted(rows, key=key, reverse=reverse)
    keys = [json.loads(json.dumps(key(r), default=str)) for r in ordered]
    cursors = [_cursor(k) for k in keys]

    def past(k: Any, mark: Any) -> bool:
        return bool(k < mark) if reverse else bool(k > mark)

    start, end = 0, len(ordered)
    if after:
        mark = _decode(after)
        start = next((i for i, k in enumerate(keys) if past(k, mark)), len(ordered))
    if before:
        mark = _decode(before)
        end = next((i for i, k in enumerate(keys) if not past(mark, k)), len(ordered))
    window = list(range(start, end))
    if first is not None:
        window = window[:first]
    if last is not None:
        window = window[-last:] if last else []
    nodes = [render(ordered[i]) for i in window]
    return {
        "nodes": nodes,
        "edges": [{"cursor": cursors[i], "node": n} for i, n in zip(window, nodes, strict=True)],
        "pageInfo": {
            "hasNextPage": bool(window) and window[-1] < end - 1,
            "hasPreviousPage": bool(window) and window[0] > 0,
            "startCursor": cursors[window[0]] if window else None,
            "endCursor": cursors[window[-1]] if window else None,
        },
    }


def _cursor(key: Any) -> str:
    return base64.b64encode(json.dumps(key, default=str).encode()).decode()


def _decode(cursor: str) -> Any:
    try:
        return json.loads(base64.b64decode(cursor.encode()))
    except (ValueError, TypeError) as exc:
        raise GraphQLError(f"Invalid cursor: {cursor}") from exc


class Shop:
    """One shop's data, behind one lock. ``events`` collects (topic, REST body) of what changed,
    for the webhook sender."""

    def __init__(self, currency: str = "USD", clock: Callable[[], datetime] = now) -> None:
        self.currency = currency
        self.clock = clock
        self.lock = threading.RLock()
        self.events: list[tuple[str, JSON]] = []
        self.on_event: Callable[[str, JSON], None] | None = None
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self._next = FIRST_ID
            self.customers: dict[int, JSON] = {}
            self.products: dict[int, JSON] = {}
            self.variants: dict[int, JSON] = {}
            self.levels: dict[tuple[int, int], JSON] = {}
            self.orders: dict[int, JSON] = {}
            self.webhooks: dict[int, JSON] = {}
            self.order_number = 1000
            self.location_id = self.new_id()
            self.locations = {self.location_id: {"id": self.location_id, "name": "Shop location"}}
            self.events.clear()

    def new_id(self) -> int:
        self._next += 1
        return self._next

    def emit(self, topic: str, body: JSON) -> None:
        self.events.append((topic, body))
        if self.on_event is not None:
            self.on_event(topic, body)

    # ------------------------------------------------------------------ seeding

    def add_product(self, title: str, variants: list[JSON]) -> JSON:
        """A product with its variants (``sku``, ``price``, ``title``, ``quantity``), each variant its
        own value of one ``Title`` option, stocked at the primary location."""
        with self.lock:
            pid = self.new_id()
            stamp = self.clock()
            option: JSON = {"id": self.new_id(), "name": "Title", "values": []}
            product: JSON = {
                "id": pid,
                "title": title,
                "handle": self.free_handle(_slug(title) or "product"),
                "descriptionHtml": "",
                "status": "ACTIVE",
                "options": [option],
                "createdAt": stamp,
                "updatedAt": stamp,
            }
            self.products[pid] = product
            for i, v in enumerate(variants):
                name = str(v.get("title") or "Default Title")
                option["values"].append(name)
                vid = self.new_id()
                self.variants[vid] = self._new_variant(pid, i + 1, str(v["sku"]), Decimal(str(v.get("price", "0"))))
                self.variants[vid]["id"] = vid
                self.variants[vid]["title"] = name
                self.variants[vid]["options"] = [("Title", name)]
                item = self.variants[vid]["inventoryItemId"]
                self.levels[(item, self.location_id)] = {"available": int(v.get("quantity", 100)), "at": stamp}
            return product

    def _new_variant(self, pid: int, position: int, sku: str, price: Decimal) -> JSON:
        return {
            "id": 0,
            "productId": pid,
            "sku": sku,
            "title": "Default Title",
            "price": price,
            "compareAtPrice": None,
            "inventoryItemId": self.new_id(),
            "tracked": True,
            "taxable": True,
            "position": position,
            "options": [],
            "updatedAt": self.clock(),
        }

    def free_handle(self, handle: str) -> str:
        """``handle``, or ``handle-1``, ``-2``... when taken (what Shopify does for a new product
        whose input names no handle)."""
        taken = {p["handle"] for p in self.products.values()}
        out, n = handle, 0
        while out in taken:
            n += 1
            out = f"{handle}-{n}"
        return out

    def variant_by_sku(self, sku: str) -> JSON | None:
        return next((v for v in self.variants.values() if v["sku"] == sku), None)

    # ------------------------------------------------------------------ catalog (productSet, prices, stock)

    def add_location(self, name: str) -> JSON:
        with self.lock:
            for loc in self.locations.values():
                if loc["name"] == name:
                    return loc
            lid = self.new_id()
            self.locations[lid] = {"id": lid, "name": name}
            return self.locations[lid]

    def set_product(self, data: JSON, synchronous: bool = True) -> tuple[JSON | None, list[JSON]]:
        """``productSet``: create the product or (``id``) overwrite it with the input; the variants
        listed replace the product's (matched by ``id``, else by their option values, so a kept
        variant keeps its inventory item and stock); (product, userErrors with codes)."""

        def fail(field: list[str], message: str, code: str) -> tuple[None, list[JSON]]:
            return None, [{"field": field, "message": message, "code": code}]

        if not synchronous:
            return fail(["synchronous"], "the sim runs productSet synchronously only", "INVALID_INPUT")
        existing = None
        if data.get("id"):
            existing = self.products.get(parse_gid(data["id"], "Product"))
            if existing is None:
                return fail(["input", "id"], "Product does not exist", "PRODUCT_DOES_NOT_EXIST")
        title = str(data["title"] if data.get("title") is not None else (existing or {}).get("title") or "").strip()
        if not title:
            return fail(["input", "title"], "Title can't be blank", "INVALID_PRODUCT")
        handle = str(data.get("handle") or (existing or {}).get("handle") or "")
        if data.get("handle"):
            other = next((p for p in self.products.values() if p["handle"] == handle), None)
            if other is not None and other is not existing:
                return fail(
                    ["input", "handle"],
                    f"Handle '{handle}' already in use. Please provide a new handle.",
                    "HANDLE_NOT_UNIQUE",
                )
        status = data.get("status") or (existing or {}).get("status") or "ACTIVE"
        options_in, variants_in = data.get("productOptions"), data.get("variants")
        if variants_in is not None and options_in is None:
            return fail(
                ["input", "productOptions"], "Product options input is required", "PRODUCT_OPTIONS_INPUT_MISSING"
            )
        if options_in is not None and variants_in is None:
            return fail(["input", "variants"], "Variants input is required", "VARIANTS_INPUT_MISSING")
        options: list[JSON] = list((existing or {}).get("options") or [])
        planned: list[tuple[JSON | None, JSON, list[tuple[str, str]]]] = []
        if variants_in is not None:
            assert options_in is not None
            if len(options_in) > 3:
                return fail(
                    ["input", "productOptions"], "Can only specify a maximum of 3 options", "OPTIONS_OVER_LIMIT"
                )
            if len(variants_in) > 2048:
                return fail(["input", "variants"], "Exceeded the maximum of 2048 variants", "VARIANTS_OVER_LIMIT")
            options = []
            for i, o in enumerate(options_in):
                name = str(o.get("name") or "").strip()
                values = [str(v.get("name") or "").strip() for v in o.get("values") or []]
                if not name:
                    return fail(
                        ["input", "productOptions", str(i), "name"], "Option name can't be blank", "INVALID_INPUT"
                    )
                if any(x["name"].lower() == name.lower() for x in options):
                    return fail(
                        ["input", "productOptions", str(i)],
                        f"Duplicated option name '{name}'",
                        "DUPLICATED_OPTION_NAME",
                    )
                if not values or len({v.lower() for v in values}) != len(values) or not all(values):
                    return fail(
                        ["input", "productOptions", str(i), "values"],
                        f"Option '{name}' needs distinct, non-blank values",
                        "DUPLICATED_OPTION_VALUE" if values and all(values) else "OPTION_VALUES_MISSING",
                    )
                options.append({"id": self.new_id(), "name": name, "values": values})
            seen: set[tuple[str, ...]] = set()
            for i, v in enumerate(variants_in):
                where = ["input", "variants", str(i)]
                chosen: dict[str, str] = {}
                for j, ov in enumerate(v.get("optionValues") or []):
                    opt = next(
                        (o for o in options if o["name"].lower() == str(ov.get("optionName") or "").lower()), None
                    )
                    if opt is None:
                        return fail(
                            [*where, "optionValues", str(j)],
                            f"Option '{ov.get('optionName')}' does not exist",
                            "OPTION_DOES_NOT_EXIST",
                        )
                    if ov.get("name") not in opt["values"]:
                        return fail(
                            [*where, "optionValues", str(j)],
                            f"Option value '{ov.get('name')}' does not exist for option '{opt['name']}'",
                            "OPTION_VALUE_DOES_NOT_EXIST",
                        )
                    chosen[opt["name"]] = str(ov["name"])
                if set(chosen) != {o["name"] for o in options}:
                    return fail(
                        [*where, "optionValues"], "Each variant needs a value of every option", "OPTION_VALUES_MISSING"
                    )
                combo = tuple(chosen[o["name"]] for o in options)
                if combo in seen:
                    return fail(where, f"The variant '{' / '.join(combo)}' already exists.", "INVALID_VARIANT")
                seen.add(combo)
                price = Decimal(str(v["price"])) if v.get("price") is not None else None
                if price is not None and price < 0:
                    return fail([*where, "price"], "Price must be greater than or equal to 0", "INVALID_VARIANT")
                current = None
                if v.get("id"):
                    current = self.variants.get(parse_gid(v["id"], "ProductVariant"))
                    if current is None or existing is None or current["productId"] != existing["id"]:
                        return fail([*where, "id"], "Product variant does not exist", "PRODUCT_VARIANT_DOES_NOT_EXIST")
                elif existing is not None:
                    current = next(
                        (
                            x
                            for x in self.variants.values()
                            if x["productId"] == existing["id"] and tuple(val for _, val in x["options"]) == combo
                        ),
                        None,
                    )
                planned.append((current, v, [(o["name"], chosen[o["name"]]) for o in options]))
        stamp = self.clock()
        product = existing or {"id": self.new_id(), "createdAt": stamp, "handle": ""}
        if not product["handle"]:
            product["handle"] = handle or self.free_handle(_slug(title) or "product")
        product.update(
            title=title,
            status=status,
            options=options,
            descriptionHtml=data.get("descriptionHtml", product.get("descriptionHtml") or ""),
            updatedAt=stamp,
        )
        self.products[product["id"]] = product
        if variants_in is not None:
            keep: set[int] = set()
            for position, (current, v, chosen_values) in enumerate(planned, start=1):
                item_in = v.get("inventoryItem") or {}
                if current is None:
                    current = self._new_variant(product["id"], position, "", Decimal("0"))
                    current["id"] = self.new_id()
                    self.variants[current["id"]] = current
                    self.levels[(current["inventoryItemId"], self.location_id)] = {"available": 0, "at": stamp}
                sku = v.get("sku", item_in.get("sku", current["sku"]))
                current.update(
                    sku=str(sku or ""),
                    title=" / ".join(val for _, val in chosen_values),
                    options=chosen_values,
                    position=position,
                    updatedAt=stamp,
                )
                if v.get("price") is not None:
                    current["price"] = Decimal(str(v["price"]))
                if "compareAtPrice" in v:
                    current["compareAtPrice"] = (
                        None if v["compareAtPrice"] is None else Decimal(str(v["compareAtPrice"]))
                    )
                if item_in.get("tracked") is not None:
                    current["tracked"] = bool(item_in["tracked"])
                if v.get("taxable") is not None:
                    current["taxable"] = bool(v["taxable"])
                keep.add(current["id"])
            for vid in [k for k, x in self.variants.items() if x["productId"] == product["id"] and k not in keep]:
                gone = self.variants.pop(vid)
                for key in [k for k in self.levels if k[0] == gone["inventoryItemId"]]:
                    del self.levels[key]
        self.emit("products/update" if existing else "products/create", {"id": product["id"], "title": title})
        return product, []

    def update_variants(self, product_id: str, variants: list[JSON]) -> tuple[JSON | None, list[JSON]]:
        """``productVariantsBulkUpdate`` (prices): all or nothing; (product, userErrors with codes)."""
        product = self.products.get(parse_gid(product_id, "Product"))
        if product is None:
            return None, [
                {"field": ["productId"], "message": "Product does not exist", "code": "PRODUCT_DOES_NOT_EXIST"}
            ]
        changes: list[tuple[JSON, JSON]] = []
        for i, v in enumerate(variants):
            if not v.get("id"):
                return None, [
                    {
                        "field": ["variants", str(i), "id"],
                        "message": "Product variant is missing ID attribute",
                        "code": "PRODUCT_VARIANT_ID_MISSING",
                    }
                ]
            current = self.variants.get(parse_gid(v["id"], "ProductVariant"))
            if current is None or current["productId"] != product["id"]:
                return None, [
                    {
                        "field": ["variants", str(i), "id"],
                        "message": "Product variant does not exist",
                        "code": "PRODUCT_VARIANT_DOES_NOT_EXIST",
                    }
                ]
            for key in ("price", "compareAtPrice"):
                if v.get(key) is not None and Decimal(str(v[key])) < 0:
                    return None, [
                        {
                            "field": ["variants", str(i), key],
                            "message": "Price must be greater than or equal to 0",
                            "code": "NEGATIVE_PRICE_VALUE",
                        }
                    ]
            changes.append((current, v))
        stamp = self.clock()
        for current, v in changes:
            if v.get("price") is not None:
                current["price"] = Decimal(str(v["price"]))
            if "compareAtPrice" in v:
                current["compareAtPrice"] = None if v["compareAtPrice"] is None else Decimal(str(v["compareAtPrice"]))
            current["updatedAt"] = stamp
        product["updatedAt"] = stamp
        self.emit("products/update", {"id": product["id"], "title": product["title"]})
        return product, []

    REASONS = frozenset(
        [
            "correction",
            "cycle_count_available",
            "damaged",
            "movement_created",
            "movement_updated",
            "movement_received",
            "movement_canceled",
            "other",
            "promotion",
            "quality_control",
            "received",
            "reservation_created",
            "reservation_deleted",
            "reservation_updated",
            "restock",
            "safety_stock",
            "shrinkage",
        ]
    )

    def _item(self, item_gid: Any) -> JSON | None:
        try:
            item = parse_gid(item_gid, "InventoryItem")
        except GraphQLError:
            return None
        return next((v for v in self.variants.values() if v["inventoryItemId"] == item), None)

    def _location(self, location_gid: Any) -> int | None:
        try:
            lid = parse_gid(location_gid, "Location")
        except GraphQLError:
            return None
        return lid if lid in self.locations else None

    def set_quantities(self, data: JSON) -> tuple[JSON | None, list[JSON]]:
        """``inventorySetQuantities``: absolute quantities, all or nothing; each checked against its
        ``compareQuantity`` unless ``ignoreCompareQuantity``; (adjustment group, userErrors)."""

        def fail(field: list[str], message: str, code: str) -> tuple[None, list[JSON]]:
            return None, [{"field": field, "message": message, "code": code}]

        name = data.get("name")
        if name not in ("available", "on_hand"):
            return fail(["input", "name"], "The quantity name must be either 'available' or 'on_hand'.", "INVALID_NAME")
        if data.get("reason") not in self.REASONS:
            return fail(["input", "reason"], "The specified reason is invalid.", "INVALID_REASON")
        uri = data.get("referenceDocumentUri")
        if uri is not None and not re.fullmatch(r"[a-z][a-z0-9+.-]*://\S+", str(uri)):
            return fail(
                ["input", "referenceDocumentUri"],
                "The reference document URI is invalid.",
                "INVALID_REFERENCE_DOCUMENT",
            )
        ignore = bool(data.get("ignoreCompareQuantity"))
        planned: list[tuple[JSON, int, int, int]] = []
        pairs: set[tuple[int, int]] = set()
        for i, q in enumerate(data.get("quantities") or []):
            where = ["input", "quantities", str(i)]
            variant = self._item(q.get("inventoryItemId"))
            if variant is None:
                return fail(
                    [*where, "inventoryItemId"],
                    "The specified inventory item could not be found.",
                    "INVALID_INVENTORY_ITEM",
                )
            lid = self._location(q.get("locationId"))
            if lid is None:
                return fail([*where, "locationId"], "The specified location could not be found.", "INVALID_LOCATION")
            if not variant["tracked"]:
                return fail(
                    [*where, "inventoryItemId"], "The inventory item is not tracked.", "NON_MUTABLE_INVENTORY_ITEM"
                )
            level = self.levels.get((variant["inventoryItemId"], lid))
            if level is None:
                return fail(
                    [*where, "locationId"],
                    "The specified inventory item is not stocked at the location.",
                    "ITEM_NOT_STOCKED_AT_LOCATION",
                )
            if (variant["inventoryItemId"], lid) in pairs:
                return fail(
                    where,
                    "The combination of inventoryItemId and locationId must be unique.",
                    "NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR",
                )
            pairs.add((variant["inventoryItemId"], lid))
            quantity = int(q["quantity"])
            if quantity > 1_000_000_000:
                return fail(
                    [*where, "quantity"],
                    "The quantity can't be higher than 1,000,000,000.",
                    "INVALID_QUANTITY_TOO_HIGH",
                )
            if quantity < -1_000_000_000:
                return fail(
                    [*where, "quantity"], "The quantity can't be lower than -1,000,000,000.", "INVALID_QUANTITY_TOO_LOW"
                )
            if not ignore:
                if q.get("compareQuantity") is None:
                    return fail(
                        [*where, "compareQuantity"],
                        "The compareQuantity argument must be given to each "
                        "quantity or ignored using ignoreCompareQuantity.",
                        "COMPARE_QUANTITY_REQUIRED",
                    )
                if int(q["compareQuantity"]) != level["available"]:
                    return fail(
                        [*where, "compareQuantity"],
                        "The compareQuantity value does not match the current quantity.",
                        "COMPARE_QUANTITY_STALE",
                    )
            planned.append((variant, lid, quantity, level["available"]))
        stamp = self.clock()
        changes = []
        for variant, lid, quantity, before in planned:
            self.levels[(variant["inventoryItemId"], lid)] = {"available": quantity, "at": stamp}
            if quantity != before:
                changes.append(
                    {"item": variant["inventoryItemId"], "location": lid, "delta": quantity - before, "after": quantity}
                )
            self.emit(
                "inventory_levels/update",
                {"inventory_item_id": variant["inventoryItemId"], "location_id": lid, "available": quantity},
            )
        group = {
            "id": self.new_id(),
            "createdAt": stamp,
            "reason": data["reason"],
            "referenceDocumentUri": uri,
            "name": name,
            "changes": changes,
        }
        return group, []

    def activate(self, item_gid: Any, location_gid: Any, available: int | None) -> tuple[JSON | None, list[JSON]]:
        """``inventoryActivate``: stock the item at the location (with ``available``); (level, userErrors)."""
        variant = self._item(item_gid)
        if variant is None:
            return None, [{"field": ["inventoryItemId"], "message": "Inventory item does not exist"}]
        lid = self._location(location_gid)
        if lid is None:
            return None, [{"field": ["locationId"], "message": "Location does not exist"}]
        key = (variant["inventoryItemId"], lid)
        if key in self.levels:
            if available is not None:
                return None, [
                    {
                        "field": ["available"],
                        "message": "Not allowed to set available quantity when the "
                        "item is already active at the location.",
                    }
                ]
        else:
            self.levels[key] = {"available": int(available or 0), "at": self.clock()}
        return {"item": variant["inventoryItemId"], "location": lid}, []

    # ------------------------------------------------------------------ customers

    def customer_by_email(self, email: str) -> JSON | None:
        return next((c for c in self.customers.values() if (c.get("email") or "").lower() == email.lower()), None)

    def save_customer(self, data: JSON, existing: JSON | None = None) -> tuple[JSON | None, list[JSON]]:
        """Create (``existing`` None) or update a customer from a ``CustomerInput``; (customer, userErrors)."""
        email = data.get("email")
        if email is not None:
            email = str(email).strip()
            if email and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
                return None, [{"field": ["email"], "message": "Email is invalid"}]
            other = self.customer_by_email(email) if email else None
            if other is not None and (existing is None or other["id"] != existing["id"]):
                return None, [{"field": ["email"], "message": "Email has already been taken"}]
        if existing is None and not (email or data.get("phone") or data.get("firstName") or data.get("lastName")):
            return None, [{"field": None, "message": "A name, phone number, or email address must be present"}]
        stamp = self.clock()
        customer = existing or {"id": self.new_id(), "createdAt": stamp, "addresses": [], "tags": [], "note": None}
        for key in ("email", "firstName", "lastName", "phone", "note", "taxExempt"):
            if key in data:
                customer[key] = data[key]
        if "tags" in data:
            customer["tags"] = list(data["tags"] or [])
        if data.get("addresses") is not None:
            customer["addresses"] = [self.address(a) for a in data["addresses"]]
        customer["updatedAt"] = stamp
        self.customers[customer["id"]] = customer
        self.emit("customers/create" if existing is None else "customers/update", self.customer_rest(customer))
        return customer, []

    def address(self, data: JSON | None) -> JSON | None:
        if not data:
            return None
        out = {
            k: data.get(k) for k in ("firstName", "lastName", "company", "address1", "address2", "city", "zip", "phone")
        }
        out["id"] = self.new_id()
        out["countryCodeV2"] = data.get("countryCode") or data.get("countryCodeV2")
        out["provinceCode"] = data.get("provinceCode")
        return out

    # ------------------------------------------------------------------ orders

    def totals(self, order: JSON) -> JSON:
        """The order's money, derived from its lines, shipping, taxes and transactions."""
        lines = order["lineItems"]
        gross = sum((ln["price"] * ln["quantity"] for ln in lines), Decimal("0"))
        line_disc = sum((a["amount"] for ln in lines for a in ln["discountAllocations"]), Decimal("0"))
        ship = sum((s["price"] for s in order["shippingLines"]), Decimal("0"))
        ship_disc = sum((a["amount"] for s in order["shippingLines"] for a in s["discountAllocations"]), Decimal("0"))
        tax = sum((t["amount"] for ln in lines for t in ln["taxLines"]), Decimal("0")) + sum(
            (t["amount"] for s in order["shippingLines"] for t in s["taxLines"]), Decimal("0")
        )
        subtotal = gross - line_disc
        total = subtotal + ship - ship_disc + (Decimal("0") if order["taxesIncluded"] else tax)
        received = sum(
            (
                t["amount"]
                for t in order["transactions"]
                if t["kind"] in ("SALE", "CAPTURE") and t["status"] == "SUCCESS"
            ),
            Decimal("0"),
        )
        refunded = sum(
            (t["amount"] for t in order["transactions"] if t["kind"] == "REFUND" and t["status"] == "SUCCESS"),
            Decimal("0"),
        )
        authorized = any(t["kind"] == "AUTHORIZATION" and t["status"] == "SUCCESS" for t in order["transactions"])
        return {
            "subtotal": subtotal,
            "discounts": line_disc + ship_disc,
            "shipping": ship,
            "shipping_net": ship - ship_disc,
            "tax": tax,
            "total": total,
            "received": received,
            "refunded": refunded,
            "outstanding": max(Decimal("0"), total - received),
            "authorized": authorized,
        }

    def financial_status(self, order: JSON) -> str:
        t = self.totals(order)
        if t["refunded"] and t["refunded"] >= t["received"] > 0:
            return "REFUNDED"
        if t["refunded"]:
            return "PARTIALLY_REFUNDED"
        if t["received"] >= t["total"] and t["total"] > 0:
            return "PAID"
        if t["received"] > 0:
            return "PARTIALLY_PAID"
        if t["authorized"]:
            return "AUTHORIZED"
        return "PAID" if t["total"] == 0 else "PENDING"

    def fulfillment_status(self, order: JSON) -> str:
        lines = [li for fo in order["fulfillmentOrders"] for li in fo["lineItems"]]
        total = sum(li["totalQuantity"] for li in lines)
        left = sum(li["remainingQuantity"] for li in lines)
        if total and not left:
            return "FULFILLED"
        if left < total:
            return "PARTIALLY_FULFILLED"
        return "UNFULFILLED"

    def touch(self, order: JSON, topic: str = "orders/updated") -> None:
        stamp = self.clock()
        order["updatedAt"] = stamp
        self.emit(topic, self.order_rest(order))
        if topic != "orders/updated":
            self.emit("orders/updated", self.order_rest(order))

    def create_order(self, data: JSON) -> tuple[JSON | None, list[JSON]]:
        """``orderCreate``: an order from an ``OrderCreateOrderInput``; (order, userErrors)."""
        errors: list[JSON] = []
        lines: list[JSON] = []
        for i, item in enumerate(data.get("lineItems") or []):
            variant = None
            if item.get("variantId"):
                try:
                    variant = self.variants.get(parse_gid(item["variantId"], "ProductVariant"))
                except GraphQLError:
                    variant = None
                if variant is None:
                    errors.append({"field": ["order", "lineItems", str(i), "variantId"], "message": "invalid variant"})
                    continue
            price = _bag_amount(item.get("priceSet"))
            if price is None:
                if variant is None:
                    errors.append({"field": ["order", "lineItems", str(i), "priceSet"], "message": "price is required"})
                    continue
                price = variant["price"]
            if int(item["quantity"]) <= 0:
                errors.append(
                    {"field": ["order", "lineItems", str(i), "quantity"], "message": "must be greater than 0"}
                )
                continue
            product = self.products.get(variant["productId"]) if variant else None
            lines.append(
                {
                    "id": self.new_id(),
                    "variantId": variant["id"] if variant else None,
                    "productId": variant["productId"] if variant else None,
                    "sku": (variant or {}).get("sku") or item.get("sku"),
                    "title": (product or {}).get("title") or item.get("title") or "Custom item",
                    "variantTitle": (variant or {}).get("title") if variant else item.get("variantTitle"),
                    "quantity": int(item["quantity"]),
                    "price": Decimal(price),
                    "requiresShipping": item.get("requiresShipping", True) is not False,
                    "taxable": item.get("taxable", True) is not False,
                    "discountAllocations": [],
                    "taxLines": [_tax_line(t) for t in item.get("taxLines") or []],
                }
            )
        if not lines and not errors:
            errors.append({"field": ["order", "lineItems"], "message": "Line items must have at least one line item"})
        currency = data.get("currency") or self.currency
        if currency != self.currency:
            errors.append({"field": ["order", "currency"], "message": f"the sim's shop sells in {self.currency}"})
        if errors:
            return None, [dict(e, code="INVALID") for e in errors]
        customer = None
        cust = data.get("customer") or {}
        if cust.get("toAssociate"):
            ref = cust["toAssociate"]
            if ref.get("id"):
                customer = self.customers.get(parse_gid(ref["id"], "Customer"))
            elif ref.get("email"):
                customer = self.customer_by_email(ref["email"])
            if customer is None:
                return None, [{"field": ["order", "customer"], "message": "Customer not found", "code": "INVALID"}]
        elif cust.get("toUpsert"):
            up = dict(cust["toUpsert"])
            found = self.customer_by_email(up["email"]) if up.get("email") else None
            up.pop("id", None)
            if up.get("addresses") is not None:
                up["addresses"] = [dict(a, countryCode=a.get("countryCode")) for a in up["addresses"]]
            customer, errs = self.save_customer(up, found)
            if errs:
                return None, [dict(e, code="INVALID") for e in errs]
        shipping = []
        for s in data.get("shippingLines") or []:
            shipping.append(
                {
                    "id": self.new_id(),
                    "title": s["title"],
                    "code": s.get("code") or s["title"],
                    "source": s.get("source") or "shopify",
                    "price": _bag_amount(s.get("priceSet")) or Decimal("0"),
                    "discountAllocations": [],
                    "taxLines": [_tax_line(t) for t in s.get("taxLines") or []],
                }
            )
        order: JSON = {
            "id": self.new_id(),
            "email": data.get("email") or (customer or {}).get("email"),
            "phone": data.get("phone"),
            "customerId": customer["id"] if customer else None,
            "note": data.get("note"),
            "tags": list(data.get("tags") or []),
            "poNumber": data.get("poNumber"),
            "taxesIncluded": bool(data.get("taxesIncluded")),
            "billingAddress": self.address(data.get("billingAddress")),
            "shippingAddress": self.address(data.get("shippingAddress")),
            "lineItems": lines,
            "shippingLines": shipping,
            "discountApplications": [],
            "transactions": [],
            "fulfillmentOrders": [],
            "fulfillments": [],
            "cancelledAt": None,
            "cancelReason": None,
            "closed": False,
            "test": bool(data.get("test")),
            "sourceName": data.get("sourceName") or "web",
        }
        order_tax = [_tax_line(t) for t in data.get("taxLines") or []]
        if order_tax:
            _spread_tax(order, order_tax)
        code = data.get("discountCode") or {}
        if code:
            error = _apply_discount(order, code)
            if error:
                return None, [{"field": ["order", "discountCode"], "message": error, "code": "INVALID"}]
        with self.lock:
            self.order_number += 1
            order["number"] = self.order_number
            order["name"] = str(data.get("name") or f"#{self.order_number}")
            stamp = self.clock()
            processed = data.get("processedAt")
            order["createdAt"] = stamp
            order["processedAt"] = datetime.fromisoformat(processed.replace("Z", "+00:00")) if processed else stamp
            order["updatedAt"] = stamp
            order["fulfillmentOrders"] = [
                {
                    "id": self.new_id(),
                    "locationId": self.location_id,
                    "status": "OPEN",
                    "lineItems": [
                        {
                            "id": self.new_id(),
                            "lineItemId": ln["id"],
                            "totalQuantity": ln["quantity"],
                            "remainingQuantity": ln["quantity"],
                        }
                        for ln in lines
                        if ln["requiresShipping"]
                    ],
                }
            ]
            for t in data.get("transactions") or []:
                amount = _bag_amount(t.get("amountSet")) or Decimal("0")
                order["transactions"].append(
                    self.transaction(
                        t.get("kind") or "SALE", amount, t.get("gateway") or "manual", t.get("status") or "SUCCESS"
                    )
                )
            status = data.get("financialStatus")
            if status == "PAID" and not order["transactions"]:
                order["transactions"].append(self.transaction("SALE", self.totals(order)["total"], "manual"))
            self.orders[order["id"]] = order
            self.emit("orders/create", self.order_rest(order))
            if self.financial_status(order) == "PAID":
                self.emit("orders/paid", self.order_rest(order))
        return order, []

    def transaction(self, kind: str, amount: Decimal, gateway: str, status: str = "SUCCESS") -> JSON:
        return {
            "id": self.new_id(),
            "kind": kind,
            "status": status,
            "gateway": gateway,
            "amount": Decimal(amount),
            "createdAt": self.clock(),
            "processedAt": self.clock(),
            "authorizationCode": f"sim-{self._next}",
        }

    def mark_paid(self, order: JSON) -> list[JSON]:
        t = self.totals(order)
        if order["cancelledAt"] or t["outstanding"] <= 0:
            return [{"field": ["id"], "message": "Order cannot be marked as paid."}]
        order["transactions"].append(self.transaction("SALE", t["outstanding"], "manual"))
        self.touch(order, "orders/paid")
        return []

    def cancel(self, order: JSON, reason: str, refund: bool, restock: bool, note: str | None) -> list[JSON]:
        if order["cancelledAt"]:
            return [
                {
                    "field": ["orderId"],
                    "message": "Cannot cancel an order that has already been canceled",
                    "code": "INVALID",
                }
            ]
        if any(f["status"] == "SUCCESS" for f in order["fulfillments"]):
            return [{"field": ["orderId"], "message": "Cannot cancel an order with fulfillments", "code": "INVALID"}]
        order["cancelledAt"] = self.clock()
        order["cancelReason"] = reason
        order["closed"] = True
        order["closedAt"] = order["cancelledAt"]
        if note:
            order["note"] = "\n".join(x for x in (order.get("note"), note) if x)
        for fo in order["fulfillmentOrders"]:
            fo["status"] = "CLOSED"
        if refund:
            received = self.totals(order)["received"]
            if received:
                order["transactions"].append(self.transaction("REFUND", received, "manual"))
        self.touch(order, "orders/cancelled")
        return []

    def fulfill(self, data: JSON) -> tuple[JSON | None, list[JSON]]:
        """``fulfillmentCreate``: ship fulfillment-order lines (all from one location)."""
        groups = data.get("lineItemsByFulfillmentOrder") or []
        if not groups:
            return None, [{"field": ["fulfillment"], "message": "Line items by fulfillment order can't be blank."}]
        picked: list[tuple[JSON, JSON, int]] = []
        order = None
        locations = set()
        for g in groups:
            fo_id = parse_gid(g["fulfillmentOrderId"], "FulfillmentOrder")
            found = next(
                ((o, fo) for o in self.orders.values() for fo in o["fulfillmentOrders"] if fo["id"] == fo_id), None
            )
            if found is None:
                return None, [{"field": ["fulfillment"], "message": "Fulfillment order does not exist."}]
            o, fo = found
            if order is not None and o["id"] != order["id"]:
                return None, [
                    {"field": ["fulfillment"], "message": "All fulfillment orders must belong to the same order."}
                ]
            order = o
            locations.add(fo["locationId"])
            if fo["status"] in ("CLOSED", "CANCELLED"):
                return None, [
                    {
                        "field": ["fulfillment"],
                        "message": f"Fulfillment order {fo_id} has an unfulfillable status= closed.",
                    }
                ]
            wanted = g.get("fulfillmentOrderLineItems")
            if wanted is None:
                picked.extend((fo, li, li["remainingQuantity"]) for li in fo["lineItems"] if li["remainingQuantity"])
                continue
            for w in wanted:
                li_id = parse_gid(w["id"], "FulfillmentOrderLineItem")
                li = next((x for x in fo["lineItems"] if x["id"] == li_id), None)
                if li is None:
                    return None, [{"field": ["fulfillment"], "message": "Invalid fulfillment order line item id."}]
                qty = int(w["quantity"])
                if qty <= 0 or qty > li["remainingQuantity"]:
                    return None, [
                        {
                            "field": ["fulfillment"],
                            "message": f"Invalid fulfillment order line item quantity requested ({qty}); "
                            f"{li['remainingQuantity']} remaining.",
                        }
                    ]
                picked.append((fo, li, qty))
        if len(locations) > 1:
            return None, [
                {"field": ["fulfillment"], "message": "All fulfillment orders must be assigned to a single location."}
            ]
        if order is None or not picked:
            return None, [{"field": ["fulfillment"], "message": "Nothing to fulfill."}]
        for _, li, qty in picked:
            li["remainingQuantity"] -= qty
        for fo in {id(fo): fo for fo, _, _ in picked}.values():
            fo["status"] = "CLOSED" if not any(li["remainingQuantity"] for li in fo["lineItems"]) else "IN_PROGRESS"
        tracking = data.get("trackingInfo") or {}
        numbers = list(tracking.get("numbers") or ([tracking["number"]] if tracking.get("number") else []))
        urls = list(tracking.get("urls") or ([tracking["url"]] if tracking.get("url") else []))
        fulfillment = {
            "id": self.new_id(),
            "name": f"{order['name']}-F{len(order['fulfillments']) + 1}",
            "status": "SUCCESS",
            "createdAt": self.clock(),
            "updatedAt": self.clock(),
            "locationId": next(iter(locations)),
            "tracking": [
                {"company": tracking.get("company"), "number": n, "url": urls[i] if i < len(urls) else None}
                for i, n in enumerate(numbers)
            ],
            "lines": [{"id": self.new_id(), "lineItemId": li["lineItemId"], "quantity": qty} for _, li, qty in picked],
        }
        order["fulfillments"].append(fulfillment)
        self.emit("fulfillments/create", self.fulfillment_rest(order, fulfillment))
        self.touch(
            order, "orders/fulfilled" if self.fulfillment_status(order) == "FULFILLED" else "orders/partially_fulfilled"
        )
        return fulfillment, []

    # ------------------------------------------------------------------ refunds

    def refund(self, data: JSON) -> tuple[JSON | None, list[JSON]]:
        """``refundCreate``: give back order lines (at what they were charged after discounts, with
        their tax), shipping and money (``transactions``, ``REFUND`` of a ``SALE``/``CAPTURE``);
        (refund, userErrors). Restocked lines go back to stock at the order's location."""

        def fail(field: list[str], message: str) -> tuple[None, list[JSON]]:
            return None, [{"field": field, "message": message}]

        try:
            order = self.orders.get(parse_gid(data.get("orderId"), "Order"))
        except GraphQLError:
            order = None
        if order is None:
            return fail(["orderId"], "Order does not exist")
        lines = {ln["id"]: ln for ln in order["lineItems"]}
        rows: list[JSON] = []
        for i, r in enumerate(data.get("refundLineItems") or []):
            try:
                ln = lines.get(parse_gid(r.get("lineItemId"), "LineItem"))
            except GraphQLError:
                ln = None
            if ln is None:
                return fail(["refundLineItems", str(i), "lineItemId"], "Line item does not exist")
            qty = int(r["quantity"])
            left = (
                ln["quantity"]
                - self.refunded_qty(order, ln["id"])
                - sum(x["quantity"] for x in rows if x["lineItemId"] == ln["id"])
            )
            if qty <= 0 or qty > left:
                return fail(
                    ["refundLineItems", str(i), "quantity"],
                    f"Quantity cannot refund more items than were purchased ({left} left)",
                )
            disc = sum((a["amount"] for a in ln["discountAllocations"]), Decimal("0"))
            tax = sum((t["amount"] for t in ln["taxLines"]), Decimal("0"))
            share = Decimal(qty) / Decimal(ln["quantity"])
            rows.append(
                {
                    "id": self.new_id(),
                    "lineItemId": ln["id"],
                    "quantity": qty,
                    "restockType": r.get("restockType") or "NO_RESTOCK",
                    "price": ln["price"],
                    "subtotal": ((ln["price"] * ln["quantity"] - disc) * share).quantize(CENT, ROUND_HALF_UP),
                    "tax": (tax * share).quantize(CENT, ROUND_HALF_UP),
                }
            )
        shipping: list[JSON] = []
        ship_in = data.get("shipping") or {}
        if ship_in:
            charged = self.totals(order)["shipping_net"] - self.refunded_shipping(order)
            amount = charged if ship_in.get("fullRefund") else Decimal(str(ship_in.get("amount") or "0"))
            if amount < 0 or amount > charged:
                return fail(["shipping"], f"Shipping refund amount must be between 0 and {money(charged)}")
            if amount and order["shippingLines"]:
                s = order["shippingLines"][0]
                tax = sum((t["amount"] for t in s["taxLines"]), Decimal("0"))
                net = s["price"] - sum((a["amount"] for a in s["discountAllocations"]), Decimal("0"))
                shipping.append(
                    {
                        "id": self.new_id(),
                        "shippingLineId": s["id"],
                        "amount": amount,
                        "tax": (tax * amount / net).quantize(CENT, ROUND_HALF_UP) if net else Decimal(0),
                    }
                )
        money_back: list[JSON] = []
        t = self.totals(order)
        room = t["received"] - t["refunded"]
        for i, x in enumerate(data.get("transactions") or []):
            if x.get("kind") != "REFUND":
                return fail(["transactions", str(i), "kind"], "Kind must be refund")
            amount = Decimal(str(x["amount"]))
            if amount <= 0 or amount > room:
                return fail(
                    ["transactions", str(i), "amount"],
                    f"Amount cannot be greater than the refundable amount ({money(room)})",
                )
            room -= amount
            money_back.append(self.transaction("REFUND", amount, str(x.get("gateway") or "manual")))
        if not rows and not shipping and not money_back:
            return fail(["refundLineItems"], "Refund must have at least one line item, shipping or transaction")
        return self.add_refund(order, rows, shipping, money_back, data.get("note")), []

    def add_refund(
        self, order: JSON, rows: list[JSON], shipping: list[JSON], money_back: list[JSON], note: str | None
    ) -> JSON:
        stamp = self.clock()
        order["transactions"].extend(money_back)
        refund = {
            "id": self.new_id(),
            "createdAt": stamp,
            "updatedAt": stamp,
            "note": note,
            "lines": rows,
            "shipping": shipping,
            "transactions": [x["id"] for x in money_back],
        }
        order.setdefault("refunds", []).append(refund)
        for r in rows:
            if r["restockType"] in ("RETURN", "CANCEL", "LEGACY_RESTOCK"):
                ln = next(x for x in order["lineItems"] if x["id"] == r["lineItemId"])
                variant = self.variants.get(ln.get("variantId") or 0)
                level = self.levels.get((variant["inventoryItemId"], self.location_id)) if variant else None
                if level is not None:
                    level["available"] += r["quantity"]
        self.emit("refunds/create", self.refund_rest(order, refund))
        self.touch(order)
        return refund

    def seed_transaction(self, order: JSON, rest: JSON) -> JSON:
        """A recorded transaction (the REST resource, as Shopify answers ``GET orders/<id>/transactions/
        <id>``) put on ``order`` as recorded: its kind, status, amount, gateway, authorization and time."""
        kind, status = str(rest["kind"]).upper(), str(rest.get("status") or "success").upper()
        if kind not in ("AUTHORIZATION", "CAPTURE", "SALE", "VOID", "REFUND"):
            raise ValueError(f"recorded transaction {rest.get('id')}: kind {rest['kind']!r} is not one the sim keeps")
        made = self.transaction(kind, Decimal(str(rest["amount"])), str(rest.get("gateway") or "manual"), status)
        when = datetime.fromisoformat(str(rest.get("processed_at") or rest["created_at"]))
        made.update(createdAt=when, processedAt=when, authorizationCode=rest.get("authorization"))
        order["transactions"].append(made)
        self.touch(order)
        return made

    def seed_refund(self, order: JSON, rest: JSON) -> JSON:
        """A recorded refund (the REST resource, as Shopify answers ``GET orders/<id>/refunds/<id>``)
        put on ``order`` with its recorded amounts: lines matched by SKU, transactions as recorded."""
        by_sku = {ln["sku"]: ln for ln in order["lineItems"]}
        rows = []
        for r in rest.get("refund_line_items") or []:
            sku = (r.get("line_item") or {}).get("sku")
            if sku not in by_sku:
                raise ValueError(f"recorded refund line {r.get('id')}: the order has no line with SKU {sku}")
            rows.append(
                {
                    "id": self.new_id(),
                    "lineItemId": by_sku[sku]["id"],
                    "quantity": int(r["quantity"]),
                    "restockType": str(r.get("restock_type") or "no_restock").upper(),
                    "price": Decimal(str(r["line_item"]["price"])),
                    "subtotal": _recorded_subtotal(r),
                    "tax": _recorded_tax(r),
                }
            )
        shipping = [
            {
                "id": self.new_id(),
                "shippingLineId": order["shippingLines"][0]["id"] if order["shippingLines"] else 0,
                "amount": Decimal(str(s["subtotal_amount_set"]["shop_money"]["amount"])),
                "tax": Decimal(str(s["tax_amount_set"]["shop_money"]["amount"])),
            }
            for s in rest.get("refund_shipping_lines") or []
        ]
        money_back = [
            self.transaction(
                str(x["kind"]).upper(),
                Decimal(str(x["amount"])),
                str(x.get("gateway") or "manual"),
                str(x.get("status") or "success").upper(),
            )
            for x in rest.get("transactions") or []
        ]
        return self.add_refund(
            order, [dict(r, restockType="NO_RESTOCK") for r in rows], shipping, money_back, rest.get("note")
        )

    def refunded_qty(self, order: JSON, line_id: int) -> int:
        return sum(r["quantity"] for f in order.get("refunds") or [] for r in f["lines"] if r["lineItemId"] == line_id)

    def refunded_shipping(self, order: JSON) -> Decimal:
        return sum((s["amount"] for f in order.get("refunds") or [] for s in f["shipping"]), Decimal("0"))

    def refund_node(self, order: JSON, f: JSON) -> JSON:
        node = self.order_node(order)
        line_nodes = {n["id"]: n for n in node["lineItems"](None, first=250)["nodes"]}
        ship_nodes = {n["id"]: n for n in node["shippingLines"](None, first=250)["nodes"]}
        transactions = [x for x in order["transactions"] if x["id"] in f["transactions"]]
        total = sum((x["amount"] for x in transactions if x["status"] == "SUCCESS"), Decimal("0"))
        return {
            "__typename": "Refund",
            "id": gid("Refund", f["id"]),
            "legacyResourceId": str(f["id"]),
            "createdAt": iso(f["createdAt"]),
            "updatedAt": iso(f["updatedAt"]),
            "note": f["note"],
            "order": node,
            "return": None,
            "duties": [],
            "totalRefundedSet": self.bag(total),
            "totalRefunded": self.bag(total)["shopMoney"],
            "refundLineItems": lambda info, **args: connection(
                f["lines"],
                lambda r: {
                    "id": gid("RefundLineItem", r["id"]),
                    "lineItem": line_nodes[gid("LineItem", r["lineItemId"])],
                    "quantity": r["quantity"],
                    "restockType": r["restockType"],
                    "restocked": r["restockType"] != "NO_RESTOCK",
                    "location": self.location_node(self.location_id),
                    "price": money(r["price"]),
                    "priceSet": self.bag(r["price"]),
                    "subtotal": money(r["subtotal"]),
                    "subtotalSet": self.bag(r["subtotal"]),
                    "totalTax": money(r["tax"]),
                    "totalTaxSet": self.bag(r["tax"]),
                },
                lambda r: r["id"],
                **args,
            ),
            "refundShippingLines": lambda info, **args: connection(
                f["shipping"],
                lambda s: {
                    "id": gid("RefundShippingLine", s["id"]),
                    "shippingLine": ship_nodes.get(gid("ShippingLine", s["shippingLineId"])),
                    "subtotalAmountSet": self.bag(s["amount"]),
                    "taxAmountSet": self.bag(s["tax"]),
                },
                lambda s: s["id"],
                **args,
            ),
            "transactions": lambda info, **args: connection(
                transactions,
                lambda x: node["transactions"](info, first=250)[order["transactions"].index(x)],
                lambda x: x["id"],
                **args,
            ),
            "orderAdjustments": lambda info, **args: connection([], dict, lambda a: 0, **args),
        }

    def refund_rest(self, order: JSON, f: JSON) -> JSON:
        """The refund as ``refunds/create`` carries it: the REST resource, with the keys of Shopify's
        recorded one (``tests/fixtures/shopify/rest-2026-07-refund.json``) the sim has values for."""
        lines = {ln["id"]: ln for ln in order["lineItems"]}
        zero = _rest_bag(self.bag(Decimal("0")))
        return {
            "id": f["id"],
            "admin_graphql_api_id": gid("Refund", f["id"]),
            "order_id": order["id"],
            "created_at": iso(f["createdAt"]),
            "processed_at": iso(f["createdAt"]),
            "note": f["note"],
            "user_id": None,
            "restock": any(r["restockType"] != "NO_RESTOCK" for r in f["lines"]),
            "return": None,
            "duties": [],
            "total_duties_set": zero,
            "additional_fees": [],
            "total_additional_fees_set": zero,
            "order_adjustments": [],
            "refund_line_items": [
                {
                    "id": r["id"],
                    "line_item_id": r["lineItemId"],
                    "location_id": self.location_id,
                    "quantity": r["quantity"],
                    "restock_type": r["restockType"].lower(),
                    "subtotal": float(r["subtotal"]),
                    "subtotal_set": _rest_bag(self.bag(r["subtotal"])),
                    "total_tax": float(r["tax"]),
                    "total_tax_set": _rest_bag(self.bag(r["tax"])),
                    "line_item": {
                        "id": r["lineItemId"],
                        "admin_graphql_api_id": gid("LineItem", r["lineItemId"]),
                        "sku": lines[r["lineItemId"]]["sku"],
                        "title": lines[r["lineItemId"]]["title"],
                        "quantity": lines[r["lineItemId"]]["quantity"],
                        "price": money(lines[r["lineItemId"]]["price"]),
                        "variant_id": lines[r["lineItemId"]].get("variantId"),
                    },
                }
                for r in f["lines"]
            ],
            "refund_shipping_lines": [
                {
                    "id": s["id"],
                    "shipping_line_id": s["shippingLineId"],
                    "subtotal_amount_set": _rest_bag(self.bag(s["amount"])),
                    "tax_amount_set": _rest_bag(self.bag(s["tax"])),
                }
                for s in f["shipping"]
            ],
            "transactions": [
                {
                    "id": x["id"],
                    "admin_graphql_api_id": gid("OrderTransaction", x["id"]),
                    "order_id": order["id"],
                    "kind": "refund",
                    "amount": money(x["amount"]),
                    "currency": self.currency,
                    "gateway": x["gateway"],
                    "status": x["status"].lower(),
                    "created_at": iso(x["createdAt"]),
                    "processed_at": iso(x["processedAt"]),
                    "test": order["test"],
                }
                for x in order["transactions"]
                if x["id"] in f["transactions"]
            ],
        }

    # ------------------------------------------------------------------ GraphQL objects

    def bag(self, amount: Decimal) -> JSON:
        m = {"amount": money(amount), "currencyCode": self.currency}
        return {"shopMoney": m, "presentmentMoney": dict(m)}

    def address_node(self, a: JSON | None) -> JSON | None:
        if a is None:
            return None
        return dict(
            a, id=gid("MailingAddress", a["id"]), name=" ".join(x for x in (a.get("firstName"), a.get("lastName")) if x)
        )

    def customer_node(self, c: JSON) -> JSON:
        default = c["addresses"][0] if c["addresses"] else None
        return {
            **{k: c.get(k) for k in ("email", "firstName", "lastName", "phone", "note")},
            "__typename": "Customer",
            "id": gid("Customer", c["id"]),
            "legacyResourceId": str(c["id"]),
            "displayName": " ".join(x for x in (c.get("firstName"), c.get("lastName")) if x) or c.get("email") or "",
            "tags": c.get("tags") or [],
            "taxExempt": bool(c.get("taxExempt")),
            "createdAt": iso(c["createdAt"]),
            "updatedAt": iso(c["updatedAt"]),
            "defaultAddress": self.address_node(default),
            "addresses": lambda info, first=None: [self.address_node(a) for a in c["addresses"][:first]],
            "state": "ENABLED",
            "verifiedEmail": True,
        }

    def level_node(self, item: int, lid: int) -> JSON:
        level = self.levels[(item, lid)]

        def quantities(info: Any, names: list[str]) -> list[JSON]:
            known = {
                "available": level["available"],
                "on_hand": level["available"],
                "committed": 0,
                "incoming": 0,
                "reserved": 0,
                "damaged": 0,
                "quality_control": 0,
                "safety_stock": 0,
            }
            out = []
            for n in names:
                if n not in known:
                    raise GraphQLError(f"Invalid quantity name: {n}")
                out.append(
                    {
                        "id": gid("InventoryQuantity", item) + f"?inventory_location_id={lid}&name={n}",
                        "name": n,
                        "quantity": known[n],
                        "updatedAt": iso(level["at"]),
                    }
                )
            return out

        return {
            "id": gid("InventoryLevel", lid) + f"?inventory_item_id={item}",
            "location": self.location_node(lid),
            "item": {"id": gid("InventoryItem", item), "legacyResourceId": str(item)},
            "quantities": quantities,
            "canDeactivate": True,
            "createdAt": iso(level["at"]),
            "updatedAt": iso(level["at"]),
        }

    def location_node(self, lid: int) -> JSON:
        loc = self.locations[lid]
        return {"id": gid("Location", lid), "legacyResourceId": str(lid), "name": loc["name"], "isActive": True}

    def item_node(self, v: JSON) -> JSON:
        item = v["inventoryItemId"]
        held = sorted(lid for (i, lid) in self.levels if i == item)
        return {
            "id": gid("InventoryItem", item),
            "legacyResourceId": str(item),
            "sku": v["sku"],
            "tracked": v["tracked"],
            "trackedEditable": {"locked": False, "reason": None},
            "requiresShipping": True,
            "locationsCount": {"count": len(held), "precision": "EXACT"},
            "inventoryLevels": lambda info, **args: connection(
                held,
                lambda lid: self.level_node(item, lid),
                lambda lid: lid,
                **{k: a for k, a in args.items() if k != "query"},
            ),
            "inventoryLevel": lambda info, locationId: (
                self.level_node(item, parse_gid(locationId, "Location"))
                if (item, parse_gid(locationId, "Location")) in self.levels
                else None
            ),
        }

    def variant_node(self, v: JSON) -> JSON:
        product = self.products[v["productId"]]
        item = v["inventoryItemId"]
        return {
            "__typename": "ProductVariant",
            "id": gid("ProductVariant", v["id"]),
            "legacyResourceId": str(v["id"]),
            "sku": v["sku"],
            "title": v["title"],
            "displayName": f"{product['title']} - {v['title']}",
            "price": money(v["price"]),
            "compareAtPrice": None if v["compareAtPrice"] is None else money(v["compareAtPrice"]),
            "taxable": v["taxable"],
            "inventoryPolicy": "DENY",
            "position": v["position"],
            "createdAt": iso(v["updatedAt"]),
            "updatedAt": iso(v["updatedAt"]),
            "selectedOptions": [{"name": n, "value": val} for n, val in v["options"]],
            "inventoryQuantity": sum(lv["available"] for (i, _), lv in self.levels.items() if i == item),
            "product": lambda info: self.product_node(product),
            "inventoryItem": self.item_node(v),
        }

    def product_node(self, p: JSON) -> JSON:
        variants = sorted((v for v in self.variants.values() if v["productId"] == p["id"]), key=lambda v: v["position"])
        return {
            "__typename": "Product",
            "id": gid("Product", p["id"]),
            "legacyResourceId": str(p["id"]),
            "title": p["title"],
            "handle": p["handle"],
            "descriptionHtml": p.get("descriptionHtml") or "",
            "status": p["status"],
            "createdAt": iso(p["createdAt"]),
            "updatedAt": iso(p["updatedAt"]),
            "hasOnlyDefaultVariant": [o["name"] for o in p["options"]] == ["Title"]
            and len(variants) == 1
            and variants[0]["title"] == "Default Title",
            "totalInventory": sum(
                lv["available"] for v in variants for (i, _), lv in self.levels.items() if i == v["inventoryItemId"]
            ),
            "options": lambda info, first=None: [
                {
                    "id": gid("ProductOption", o["id"]),
                    "name": o["name"],
                    "position": n,
                    "values": list(o["values"]),
                    "optionValues": [
                        {
                            "id": gid("ProductOptionValue", o["id"] * 1000 + k),
                            "name": val,
                            "hasVariants": any((o["name"], val) in v["options"] for v in variants),
                        }
                        for k, val in enumerate(o["values"])
                    ],
                }
                for n, o in enumerate(p["options"][:first], start=1)
            ],
            "variants": lambda info, **args: connection(variants, self.variant_node, lambda v: v["position"], **args),
            "variantsCount": {"count": len(variants), "precision": "EXACT"},
        }

    def adjustment_node(self, group: JSON) -> JSON:
        return {
            "id": gid("InventoryAdjustmentGroup", group["id"]),
            "createdAt": iso(group["createdAt"]),
            "reason": group["reason"],
            "referenceDocumentUri": group["referenceDocumentUri"],
            "changes": lambda info, inventoryItemIds=None, locationIds=None, quantityNames=None: [
                {
                    "name": group["name"],
                    "delta": c["delta"],
                    "quantityAfterChange": c["after"],
                    "item": {"id": gid("InventoryItem", c["item"])},
                    "location": self.location_node(c["location"]),
                    "ledgerDocumentUri": None,
                }
                for c in group["changes"]
            ],
        }

    def order_node(self, o: JSON) -> JSON:
        t = self.totals(o)
        customer = self.customers.get(o["customerId"]) if o["customerId"] else None
        lines = {ln["id"]: ln for ln in o["lineItems"]}

        def line_node(ln: JSON) -> JSON:
            disc = sum((a["amount"] for a in ln["discountAllocations"]), Decimal("0"))
            unit_after = (ln["price"] * ln["quantity"] - disc) / ln["quantity"]
            fulfilled = sum(
                fl["quantity"] for f in o["fulfillments"] for fl in f["lines"] if fl["lineItemId"] == ln["id"]
            )
            return {
                "id": gid("LineItem", ln["id"]),
                "sku": ln["sku"],
                "title": ln["title"],
                "name": ln["title"]
                if not ln.get("variantTitle") or ln["variantTitle"] == "Default Title"
                else f"{ln['title']} - {ln['variantTitle']}",
                "variantTitle": ln.get("variantTitle"),
                "quantity": ln["quantity"],
                "currentQuantity": 0 if o["cancelledAt"] else ln["quantity"],
                "unfulfilledQuantity": ln["quantity"] - fulfilled,
                "refundableQuantity": ln["quantity"],
                "requiresShipping": ln["requiresShipping"],
                "taxable": ln["taxable"],
                "isGiftCard": False,
                "originalUnitPriceSet": self.bag(ln["price"]),
                "discountedUnitPriceSet": self.bag(unit_after),
                "discountedUnitPriceAfterAllDiscountsSet": self.bag(unit_after),
                "originalTotalSet": self.bag(ln["price"] * ln["quantity"]),
                "totalDiscountSet": self.bag(disc),
                "discountAllocations": [self.allocation_node(o, a) for a in ln["discountAllocations"]],
                "taxLines": lambda info, first=None: [self.tax_node(x) for x in ln["taxLines"][:first]],
                "variant": self.variant_node(self.variants[ln["variantId"]])
                if ln.get("variantId") in self.variants
                else None,
                "product": {"id": gid("Product", ln["productId"])} if ln.get("productId") else None,
            }

        def shipping_node(s: JSON) -> JSON:
            disc = sum((a["amount"] for a in s["discountAllocations"]), Decimal("0"))
            return {
                "id": gid("ShippingLine", s["id"]),
                "title": s["title"],
                "code": s["code"],
                "source": s["source"],
                "custom": False,
                "isRemoved": False,
                "originalPriceSet": self.bag(s["price"]),
                "discountedPriceSet": self.bag(s["price"] - disc),
                "currentDiscountedPriceSet": self.bag(s["price"] - disc),
                "discountAllocations": [self.allocation_node(o, a) for a in s["discountAllocations"]],
                "taxLines": [self.tax_node(x) for x in s["taxLines"]],
            }

        def fo_node(fo: JSON) -> JSON:
            return {
                "id": gid("FulfillmentOrder", fo["id"]),
                "status": fo["status"],
                "requestStatus": "UNSUBMITTED",
                "orderId": gid("Order", o["id"]),
                "orderName": o["name"],
                "assignedLocation": {
                    "name": self.locations[fo["locationId"]]["name"],
                    "countryCode": "US",
                    "location": {
                        "id": gid("Location", fo["locationId"]),
                        "name": self.locations[fo["locationId"]]["name"],
                    },
                },
                "deliveryMethod": {"methodType": "SHIPPING"},
                "lineItems": lambda info, **args: connection(
                    fo["lineItems"],
                    lambda li: {
                        "id": gid("FulfillmentOrderLineItem", li["id"]),
                        "totalQuantity": li["totalQuantity"],
                        "remainingQuantity": li["remainingQuantity"],
                        "sku": lines[li["lineItemId"]]["sku"],
                        "lineItem": line_node(lines[li["lineItemId"]]),
                    },
                    lambda li: li["id"],
                    **args,
                ),
            }

        def fulfillment_node(f: JSON) -> JSON:
            return {
                "id": gid("Fulfillment", f["id"]),
                "legacyResourceId": str(f["id"]),
                "name": f["name"],
                "status": f["status"],
                "createdAt": iso(f["createdAt"]),
                "updatedAt": iso(f["updatedAt"]),
                "totalQuantity": sum(x["quantity"] for x in f["lines"]),
                "trackingInfo": lambda info, first=None: [dict(x) for x in f["tracking"][:first]],
                "location": {"id": gid("Location", f["locationId"]), "name": self.locations[f["locationId"]]["name"]},
                "fulfillmentLineItems": lambda info, **args: connection(
                    f["lines"],
                    lambda x: {
                        "id": gid("FulfillmentLineItem", x["id"]),
                        "quantity": x["quantity"],
                        "lineItem": line_node(lines[x["lineItemId"]]),
                    },
                    lambda x: x["id"],
                    **args,
                ),
            }

        def transaction_node(x: JSON) -> JSON:
            return {
                "id": gid("OrderTransaction", x["id"]),
                "kind": x["kind"],
                "status": x["status"],
                "gateway": x["gateway"],
                "formattedGateway": x["gateway"].replace("_", " ").title(),
                "manualPaymentGateway": x["gateway"] == "manual",
                "amountSet": self.bag(x["amount"]),
                "authorizationCode": x.get("authorizationCode"),
                "createdAt": iso(x["createdAt"]),
                "processedAt": iso(x["processedAt"]),
                "test": o["test"],
                "parentTransaction": None,
            }

        status = self.financial_status(o)
        return {
            "__typename": "Order",
            "id": gid("Order", o["id"]),
            "legacyResourceId": str(o["id"]),
            "name": o["name"],
            "email": o["email"],
            "phone": o["phone"],
            "note": o["note"],
            "tags": o["tags"],
            "poNumber": o["poNumber"],
            "test": o["test"],
            "sourceName": o["sourceName"],
            "createdAt": iso(o["createdAt"]),
            "updatedAt": iso(o["updatedAt"]),
            "processedAt": iso(o["processedAt"]),
            "cancelledAt": iso(o["cancelledAt"]),
            "cancelReason": o["cancelReason"],
            "closed": o["closed"],
            "closedAt": iso(o.get("closedAt")),
            "confirmed": True,
            "currencyCode": self.currency,
            "presentmentCurrencyCode": self.currency,
            "taxesIncluded": o["taxesIncluded"],
            "taxExempt": False,
            "displayFinancialStatus": status,
            "displayFulfillmentStatus": self.fulfillment_status(o),
            "fullyPaid": t["outstanding"] == 0,
            "unpaid": t["received"] == 0,
            "canMarkAsPaid": not o["cancelledAt"] and t["outstanding"] > 0,
            "paymentGatewayNames": sorted({x["gateway"] for x in o["transactions"]}) or ["manual"],
            "customer": self.customer_node(customer) if customer else None,
            "billingAddress": self.address_node(o["billingAddress"]),
            "shippingAddress": self.address_node(o["shippingAddress"]),
            "discountCodes": [d["code"] for d in o["discountApplications"] if d.get("code")],
            "discountCode": next((d["code"] for d in o["discountApplications"] if d.get("code")), None),
            "subtotalPriceSet": self.bag(t["subtotal"]),
            "currentSubtotalPriceSet": self.bag(t["subtotal"]),
            "totalDiscountsSet": self.bag(t["discounts"]),
            "currentTotalDiscountsSet": self.bag(t["discounts"]),
            "totalShippingPriceSet": self.bag(t["shipping_net"]),
            "currentShippingPriceSet": self.bag(t["shipping_net"]),
            "totalTaxSet": self.bag(t["tax"]),
            "currentTotalTaxSet": self.bag(t["tax"]),
            "totalPriceSet": self.bag(t["total"]),
            "currentTotalPriceSet": self.bag(t["total"]),
            "originalTotalPriceSet": self.bag(t["total"]),
            "totalReceivedSet": self.bag(t["received"]),
            "netPaymentSet": self.bag(t["received"] - t["refunded"]),
            "totalRefundedSet": self.bag(t["refunded"]),
            "totalOutstandingSet": self.bag(t["outstanding"]),
            "taxLines": [self.tax_node(x) for x in _sum_tax(o)],
            "discountApplications": lambda info, **args: connection(
                o["discountApplications"], lambda d: self.application_node(d), lambda d: d["index"], **args
            ),
            "lineItems": lambda info, **args: connection(o["lineItems"], line_node, lambda ln: ln["id"], **args),
            "shippingLines": lambda info, includeRemovals=False, **args: connection(
                o["shippingLines"], shipping_node, lambda s: s["id"], **args
            ),
            "shippingLine": shipping_node(o["shippingLines"][0]) if o["shippingLines"] else None,
            "transactions": lambda info, first=None, **_: [transaction_node(x) for x in o["transactions"][:first]],
            "fulfillmentOrders": lambda info, displayable=None, query=None, **args: connection(
                o["fulfillmentOrders"], fo_node, lambda fo: fo["id"], **args
            ),
            "fulfillments": lambda info, first=None: [fulfillment_node(f) for f in o["fulfillments"][:first]],
            "refunds": lambda info, first=None: [self.refund_node(o, f) for f in (o.get("refunds") or [])[:first]],
            "metafield": lambda info, key, namespace=None: self.metafield_node(o, namespace or "", key),
            "requiresShipping": any(ln["requiresShipping"] for ln in o["lineItems"]),
        }

    def metafield_node(self, owner: JSON, namespace: str, key: str) -> JSON | None:
        m = owner.get("metafields", {}).get((namespace, key))
        if m is None:
            return None
        return {
            "id": gid("Metafield", m["id"]),
            "namespace": namespace,
            "key": key,
            "type": m["type"],
            "value": m["value"],
            "createdAt": iso(m["createdAt"]),
            "updatedAt": iso(m["updatedAt"]),
        }

    def set_metafields(self, inputs: list[JSON]) -> tuple[list[JSON], list[JSON]]:
        """``metafieldsSet``: each input's owner (an order or a customer) gets its value; all or nothing."""
        owners = []
        for i, m in enumerate(inputs):
            kind = str(m["ownerId"]).split("/")[-2] if str(m["ownerId"]).count("/") >= 4 else ""
            store = {"Order": self.orders, "Customer": self.customers}.get(kind)
            owner = store.get(parse_gid(m["ownerId"], kind)) if store is not None else None
            if owner is None:
                return [], [
                    {
                        "field": ["metafields", str(i), "ownerId"],
                        "message": "Owner does not exist.",
                        "code": "INVALID_VALUE",
                    }
                ]
            if not re.fullmatch(r"[A-Za-z0-9_-]{2,64}", m["key"]):
                return [], [
                    {"field": ["metafields", str(i), "key"], "message": "Key is invalid.", "code": "INVALID_VALUE"}
                ]
            if m.get("type") == "json":
                try:
                    json.loads(m["value"])
                except ValueError:
                    return [], [
                        {
                            "field": ["metafields", str(i), "value"],
                            "message": "Value is invalid JSON.",
                            "code": "INVALID_VALUE",
                        }
                    ]
            owners.append(owner)
        out = []
        for owner, m in zip(owners, inputs, strict=True):
            key = (m.get("namespace") or "app", m["key"])
            held = owner.setdefault("metafields", {})
            stamp = self.clock()
            if key in held:
                held[key].update(value=m["value"], type=m.get("type") or held[key]["type"], updatedAt=stamp)
            else:
                held[key] = {
                    "id": self.new_id(),
                    "value": m["value"],
                    "type": m.get("type") or "single_line_text_field",
                    "createdAt": stamp,
                    "updatedAt": stamp,
                }
            node = self.metafield_node(owner, key[0], key[1])
            assert node is not None
            out.append(node)
        return out, []

    def tax_node(self, t: JSON) -> JSON:
        rate = float(t["rate"])
        return {
            "title": t["title"],
            "rate": rate,
            "ratePercentage": round(rate * 100, 4),
            "priceSet": self.bag(t["amount"]),
            "channelLiable": False,
            "source": "shopify",
        }

    def application_node(self, d: JSON) -> JSON:
        value: JSON = (
            {"__typename": "PricingPercentageValue", "percentage": float(d["value"])}
            if d["valueType"] == "percentage"
            else {"__typename": "MoneyV2", "amount": money(d["value"]), "currencyCode": self.currency}
        )
        return {
            "__typename": "DiscountCodeApplication",
            "code": d["code"],
            "index": d["index"],
            "allocationMethod": "ACROSS",
            "targetSelection": "ALL",
            "targetType": d["targetType"],
            "value": value,
        }

    def allocation_node(self, o: JSON, a: JSON) -> JSON:
        app = next(d for d in o["discountApplications"] if d["index"] == a["index"])
        return {"allocatedAmountSet": self.bag(a["amount"]), "discountApplication": self.application_node(app)}

    # ------------------------------------------------------------------ REST bodies (webhooks)

    def order_rest(self, o: JSON) -> JSON:
        """The order as a webhook carries it (the REST resource, snake_case; ids as numbers)."""
        t = self.totals(o)
        customer = self.customers.get(o["customerId"]) if o["customerId"] else None
        return {
            "id": o["id"],
            "admin_graphql_api_id": gid("Order", o["id"]),
            "name": o["name"],
            "order_number": o["number"],
            "email": o["email"],
            "created_at": iso(o["createdAt"]),
            "updated_at": iso(o["updatedAt"]),
            "cancelled_at": iso(o["cancelledAt"]),
            "cancel_reason": (o["cancelReason"] or "").lower() or None,
            "currency": self.currency,
            "financial_status": self.financial_status(o).lower(),
            "fulfillment_status": {"FULFILLED": "fulfilled", "PARTIALLY_FULFILLED": "partial"}.get(
                self.fulfillment_status(o)
            ),
            "total_price": money(t["total"]),
            "subtotal_price": money(t["subtotal"]),
            "total_tax": money(t["tax"]),
            "total_discounts": money(t["discounts"]),
            "taxes_included": o["taxesIncluded"],
            "total_price_set": _rest_bag(self.bag(t["total"])),
            "current_total_price_set": _rest_bag(self.bag(t["total"])),
            "customer": {
                "id": customer["id"],
                "email": customer.get("email"),
                "admin_graphql_api_id": gid("Customer", customer["id"]),
            }
            if customer
            else None,
            "line_items": [
                {
                    "id": ln["id"],
                    "admin_graphql_api_id": gid("LineItem", ln["id"]),
                    "sku": ln["sku"],
                    "quantity": ln["quantity"],
                    "price": money(ln["price"]),
                    "variant_id": ln.get("variantId"),
                    "title": ln["title"],
                }
                for ln in o["lineItems"]
            ],
        }

    def customer_rest(self, c: JSON) -> JSON:
        return {
            "id": c["id"],
            "admin_graphql_api_id": gid("Customer", c["id"]),
            "email": c.get("email"),
            "first_name": c.get("firstName"),
            "last_name": c.get("lastName"),
            "phone": c.get("phone"),
            "created_at": iso(c["createdAt"]),
            "updated_at": iso(c["updatedAt"]),
        }

    def fulfillment_rest(self, o: JSON, f: JSON) -> JSON:
        return {
            "id": f["id"],
            "admin_graphql_api_id": gid("Fulfillment", f["id"]),
            "order_id": o["id"],
            "name": f["name"],
            "status": f["status"].lower(),
            "created_at": iso(f["createdAt"]),
            "updated_at": iso(f["updatedAt"]),
            "tracking_numbers": [x["number"] for x in f["tracking"]],
        }


def _recorded_subtotal(row: JSON) -> Decimal:
    """What a recorded refund line gave back before tax: its ``subtotal_set``, or (the legacy shape,
    without it) the line's price times the quantity less its share of the line's discount."""
    if row.get("subtotal_set"):
        return Decimal(str(row["subtotal_set"]["shop_money"]["amount"]))
    item = row["line_item"]
    share = Decimal(int(row["quantity"])) / Decimal(int(item["quantity"]))
    gross = Decimal(str(item["price"])) * int(item["quantity"])
    return ((gross - Decimal(str(item.get("total_discount") or 0))) * share).quantize(CENT, ROUND_HALF_UP)


def _recorded_tax(row: JSON) -> Decimal:
    """A recorded refund line's tax: ``total_tax_set``, or (legacy) its share of the line's tax lines."""
    if row.get("total_tax_set"):
        return Decimal(str(row["total_tax_set"]["shop_money"]["amount"]))
    item = row["line_item"]
    share = Decimal(int(row["quantity"])) / Decimal(int(item["quantity"]))
    tax = sum((Decimal(str(t["price"])) for t in item.get("tax_lines") or []), Decimal("0"))
    return (tax * share).quantize(CENT, ROUND_HALF_UP)


def _rest_bag(bag: JSON) -> JSON:
    return {
        "shop_money": {"amount": bag["shopMoney"]["amount"], "currency_code": bag["shopMoney"]["currencyCode"]},
        "presentment_money": {
            "amount": bag["presentmentMoney"]["amount"],
            "currency_code": bag["presentmentMoney"]["currencyCode"],
        },
    }


def _bag_amount(bag: JSON | None) -> Decimal | None:
    if not bag:
        return None
    return Decimal(str(bag["shopMoney"]["amount"]))


def _tax_line(t: JSON) -> JSON:
    return {
        "title": t["title"],
        "rate": Decimal(str(t["rate"])),
        "amount": _bag_amount(t.get("priceSet")) or Decimal("0"),
    }


def _spread_tax(order: JSON, taxes: list[JSON]) -> None:
    """Order-level tax lines put on the taxable lines in proportion to their amounts (the last line
    takes the cents left), as Shopify shows an order's taxes on its lines."""
    taxable = [ln for ln in order["lineItems"] if ln["taxable"]] or order["lineItems"]
    base = sum((ln["price"] * ln["quantity"] for ln in taxable), Decimal("0"))
    for tax in taxes:
        left = tax["amount"]
        for i, ln in enumerate(taxable):
            share = (
                left
                if i == len(taxable) - 1
                else (tax["amount"] * ln["price"] * ln["quantity"] / base).quantize(CENT, ROUND_HALF_UP)
                if base
                else Decimal("0")
            )
            left -= share
            ln["taxLines"].append({"title": tax["title"], "rate": tax["rate"], "amount": share})


def _sum_tax(order: JSON) -> list[JSON]:
    out: dict[tuple[str, Decimal], Decimal] = {}
    for holder in [*order["lineItems"], *order["shippingLines"]]:
        for t in holder["taxLines"]:
            out[(t["title"], t["rate"])] = out.get((t["title"], t["rate"]), Decimal("0")) + t["amount"]
    return [{"title": k[0], "rate": k[1], "amount": v} for k, v in out.items()]


def _apply_discount(order: JSON, code: JSON) -> str:
    """A discount code from ``OrderCreateDiscountCodeInput`` allocated across the lines (or the
    shipping, for free shipping) in proportion, the last one taking the cents left."""
    lines = order["lineItems"]
    gross = sum((ln["price"] * ln["quantity"] for ln in lines), Decimal("0"))
    if code.get("itemFixedDiscountCode"):
        c = code["itemFixedDiscountCode"]
        amount, value_type, value = (
            _bag_amount(c.get("amountSet")) or Decimal("0"),
            "fixed",
            _bag_amount(c.get("amountSet")) or Decimal("0"),
        )
        targets, target_type = lines, "LINE_ITEM"
    elif code.get("itemPercentageDiscountCode"):
        c = code["itemPercentageDiscountCode"]
        pct = Decimal(str(c.get("percentage") or 0))
        amount, value_type, value = (gross * pct / 100).quantize(CENT, ROUND_HALF_UP), "percentage", pct
        targets, target_type = lines, "LINE_ITEM"
    elif code.get("freeShippingDiscountCode"):
        c = code["freeShippingDiscountCode"]
        targets, target_type = order["shippingLines"], "SHIPPING_LINE"
        amount = sum((s["price"] for s in targets), Decimal("0"))
        value_type, value = "percentage", Decimal("100")
    else:
        return "discountCode needs one of its kinds"
    if amount > gross and target_type == "LINE_ITEM":
        return "discount exceeds the order's line items"
    order["discountApplications"].append(
        {"index": 0, "code": c["code"], "valueType": value_type, "value": value, "targetType": target_type}
    )
    base = sum((t["price"] * t.get("quantity", 1) for t in targets), Decimal("0"))
    left = amount
    for i, t in enumerate(targets):
        share = (
            left
            if i == len(targets) - 1
            else (amount * t["price"] * t.get("quantity", 1) / base).quantize(CENT, ROUND_HALF_UP)
        )
        left -= share
        if share:
            t["discountAllocations"].append({"index": 0, "amount": share})
    return ""
