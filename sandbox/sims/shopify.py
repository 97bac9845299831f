"""A Shopify Admin GraphQL simulator that checks every query and mutation against the official
schema (``shopify_schema/admin-graphql-schema-2025-01.json.gz``, Shopify's own introspection) and
answers by executing it there, so its answers have the schema's shapes by construction.

- ``POST /admin/api/<version>/graphql.json`` with ``X-Shopify-Access-Token``: queries ``order``,
  ``orders``, ``customer``, ``customers``, ``product``, ``products``, ``productVariants``,
  ``location``, ``locations``, ``refund``, ``fulfillmentOrder``, ``webhookSubscriptions``; mutations
  ``orderCreate``, ``orderMarkAsPaid``, ``orderCancel``, ``refundCreate``, ``fulfillmentCreate``,
  ``customerCreate``, ``customerUpdate``, ``productSet``, ``productVariantsBulkUpdate``,
  ``bulkOperationRunQuery`` (and the query ``currentBulkOperation``),
  ``inventorySetQuantities``, ``inventoryActivate``, ``webhookSubscriptionCreate``,
  ``webhookSubscriptionDelete``, ``metafieldsSet`` (orders, customers). A field the sim does not
  serve answers null with an error naming it.
- Errors as Shopify sends them: a query the schema refuses, ``THROTTLED`` and
  ``MAX_COST_EXCEEDED`` with HTTP 200 and no ``data``; ``userErrors`` in the payloads; 401 for a
  wrong token. Every answer carries ``extensions.cost`` with the bucket's ``throttleStatus``.
- Cost: records (types with an id) 1, embedded values free, connections 2 + ``first`` times their
  nodes, mutations 10 (calibrated on the costs Shopify reported for BCApps' queries); the bucket holds
  2000 points and restores 100 a second (Standard plan; ``/_sim/seed {"throttle": {...}}``).
- ``POST /admin/oauth/access_token``: expiring offline tokens. ``grant_type=refresh_token`` with
  the current refresh token answers a new access token (``expires_in``) and a new refresh token;
  the old refresh token stays good until the new one is first used (Shopify since 2026-08).
- Webhooks as Shopify sends them: a REST-shaped body, ``X-Shopify-Hmac-Sha256`` (base64 HMAC-SHA256
  of the raw body with the app's client secret), ``X-Shopify-Topic``, ``-Webhook-Id``,
  ``-Event-Id``, ``-Shop-Domain``, ``-API-Version``, ``-Triggered-At``; at least once, and
  (``/_sim/seed {"webhooks": {"duplicate_rate": .., "reorder": true}}``) sometimes twice or out of
  order. ``GET /_sim/webhooks`` lists deliveries; ``POST /_sim/webhooks/flush`` waits for them.
- ``GET /_sim/costs``: every query the bucket was asked to pay (operation, cost, throttled).
- Bulk operations: ``bulkOperationRunQuery`` reads its query whole into JSON Lines (nested
  connections' nodes with ``__parentId``, right after their parent), one operation at a time
  (``OPERATION_IN_PROGRESS``), refusing a query of no connection, of more than five or nested more
  than two deep (the bulk guide's limits);
  ``currentBulkOperation`` shows it ``RUNNING``, then ``COMPLETED`` with the file's ``url``
  (``GET /_sim/bulk/<n>.jsonl``).
- ``/_sim/`` control API as every sim (``sandbox.sims.control``); ``seed`` takes ``locations``
  (names: more locations beside the primary one), ``refunds`` (``{"order": <GID>, "refund": <a recorded
  REST refund>}``: put on the order with its recorded amounts), ``transactions`` (``{"order": <GID>,
  "transaction": <a recorded REST transaction>}``: put on the order as recorded), ``products``
  (``{"title", "variants": [{"sku", "price", "quantity"}]}``), ``customers`` (``CustomerInput``),
  ``throttle``, ``webhooks`` and ``token`` (``{"expires_in": s}``: tokens expire).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import json
import queue
import random
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    build_client_schema,
    execute_sync,
    get_named_type,
    is_leaf_type,
    parse,
    validate,
)
from graphql.language import ValueNode
from graphql.utilities import value_from_ast_untyped
from starlette.applications import Starlette
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.sims.control import SimControl
from sandbox.sims.shopify_shop import BULK, JSON, SearchQuery, Shop, connection, gid, parse_gid

SCHEMA_FILE = Path(__file__).resolve().parent / "shopify_schema" / "admin-graphql-schema-2025-01.json.gz"
SHOP_DOMAIN = "erpsync-sim.myshopify.com"
ACCESS_TOKEN = "shpat_sim_token"
CLIENT_ID = "sim-client-id"
CLIENT_SECRET = "shpss_sim_client_secret"
MAX_QUERY_COST = 1000


@lru_cache(maxsize=1)
def schema() -> GraphQLSchema:
    """The official Admin GraphQL 2025-01 schema (built once per process, about half a second)."""
    with gzip.open(SCHEMA_FILE) as fh:
        doc = json.load(fh)
    built = build_client_schema(doc.get("data", doc))
    # Shopify's own schema breaks two of the spec's rules on deprecations (an implementation
    # deprecating a field its interface does not); graphql-core would refuse to validate any
    # query against it. Those rules are about the schema, not the queries: they are waived.
    built._validation_errors = []
    return built


# ------------------------------------------------------------------------------- cost


_REQUESTED = object()


def query_cost(
    document: Any, operation: OperationDefinitionNode, variables: dict[str, Any], data: Any = _REQUESTED
) -> int:
    """The cost of ``operation`` as Shopify counts it (approximately): a record 1, a connection 2
    plus ``first``/``last`` times the cost of its nodes, a mutation 10; scalars and embedded values
    free. That is the requested cost; given the answer's ``data``, the actual cost (connections and
    lists as long as they came back): the bucket is charged the requested cost up front and given
    back the difference, as Shopify does."""
    sch = schema()
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    root = sch.mutation_type if operation.operation.value == "mutation" else sch.query_type
    assert root is not None

    def arg(node: FieldNode, name: str) -> Any:
        for a in node.arguments or ():
            if a.name.value == name:
                value: ValueNode = a.value
                return value_from_ast_untyped(value, variables)
        return None

    def fields(selection: SelectionSetNode | None) -> list[FieldNode]:
        out: list[FieldNode] = []
        for sel in selection.selections if selection else ():
            if isinstance(sel, FieldNode):
                out.append(sel)
            elif isinstance(sel, InlineFragmentNode):
                out.extend(fields(sel.selection_set))
            elif isinstance(sel, FragmentSpreadNode) and sel.name.value in fragments:
                out.extend(fields(fragments[sel.name.value].selection_set))
        return out

    def cost(selection: SelectionSetNode | None, parent: Any, value: Any = _REQUESTED, top: bool = False) -> int:
        total = 0
        for node in fields(selection):
            ptype = get_named_type(parent)
            fdef = getattr(ptype, "fields", {}).get(node.name.value) if hasattr(ptype, "fields") else None
            if fdef is None:
                continue
            ftype = get_named_type(fdef.type)
            if is_leaf_type(ftype):
                continue
            own = 1 if _is_record(ftype) else 0
            if value is _REQUESTED:
                child = cost(node.selection_set, ftype)
                if top and root is sch.mutation_type:
                    total += 10 + child
                elif ftype.name.endswith("Connection"):
                    size = arg(node, "first") or arg(node, "last") or 1
                    total += 2 + int(size) * child
                else:
                    total += own + child
                continue
            got = value.get((node.alias or node.name).value) if isinstance(value, dict) else None
            if top and root is sch.mutation_type:
                total += 10 + cost(node.selection_set, ftype, got)
            elif ftype.name.endswith("Connection"):
                total += 2 + cost(node.selection_set, ftype, got) if got is not None else 0
            elif isinstance(got, list):
                total += sum(own + cost(node.selection_set, ftype, item) for item in got)
            elif got is not None:
                total += own + cost(node.selection_set, ftype, got)
        return total

    return max(1, cost(operation.selection_set, root, data, top=True))


def _is_record(named: Any) -> bool:
    """A type Shopify charges a point for: a record (it implements ``Node``), an interface or a
    union; embedded values (a MoneyBag, an address, a tax line) are free, as the costs Shopify
    reports show (an order's transactions with their money bags cost 3)."""
    if isinstance(named, GraphQLObjectType):
        return any(i.name == "Node" for i in named.interfaces)
    return True


@dataclass
class Bucket:
    """The shop's cost bucket (leaky: restores ``restore_rate`` points a second up to ``maximum``)."""

    maximum: float = 2000.0
    restore_rate: float = 100.0
    available: float = 2000.0
    at: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, cost: int) -> bool:
        with self.lock:
            now = time.monotonic()
            self.available = min(self.maximum, self.available + (now - self.at) * self.restore_rate)
            self.at = now
            if cost > self.available:
                return False
            self.available -= cost
            return True

    def give_back(self, points: float) -> None:
        with self.lock:
            self.available = min(self.maximum, self.available + max(0.0, points))

    def status(self) -> JSON:
        return {
            "maximumAvailable": self.maximum,
            "currentlyAvailable": round(self.available),
            "restoreRate": self.restore_rate,
        }


# ------------------------------------------------------------------------------- webhooks


TOPICS = {
    "ORDERS_CREATE": "orders/create",
    "ORDERS_UPDATED": "orders/updated",
    "ORDERS_PAID": "orders/paid",
    "ORDERS_CANCELLED": "orders/cancelled",
    "ORDERS_FULFILLED": "orders/fulfilled",
    "ORDERS_PARTIALLY_FULFILLED": "orders/partially_fulfilled",
    "FULFILLMENTS_CREATE": "fulfillments/create",
    "CUSTOMERS_CREATE": "customers/create",
    "CUSTOMERS_UPDATE": "customers/update",
    "REFUNDS_CREATE": "refunds/create",
}


def sign(secret: str, body: bytes) -> str:
    """``X-Shopify-Hmac-Sha256``: base64 of the HMAC-SHA256 of the raw body with the client secret."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


class WebhookSender:
    """Delivers the shop's events to the subscribed addresses from a thread of its own, as Shopify
    does: signed, retried a few times on failure, sometimes twice or out of order (seeded dice)."""

    def __init__(self, sim: ShopifySim) -> None:
        self.sim = sim
        self.queue: queue.Queue[tuple[str, bytes, dict[str, str]] | None] = queue.Queue()
        self.deliveries: list[JSON] = []
        self.duplicate_rate = 0.0
        self.reorder = False
        self.retries = 3
        self.rng = random.Random(7)
        self.pending = 0
        self.lock = threading.Lock()
        self.idle = threading.Condition(self.lock)
        self._thread: threading.Thread | None = None

    def configure(self, options: JSON) -> None:
        self.duplicate_rate = float(options.get("duplicate_rate", self.duplicate_rate))
        self.reorder = bool(options.get("reorder", self.reorder))
        self.retries = int(options.get("retries", self.retries))
        if "seed" in options:
            self.rng = random.Random(options["seed"])

    def event(self, topic: str, body: JSON) -> None:
        targets = [w for w in self.sim.shop.webhooks.values() if TOPICS.get(w["topic"]) == topic]
        if not targets:
            return
        raw = json.dumps(body, separators=(",", ":")).encode()
        event_id = str(uuid.uuid4())
        triggered = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        batch = []
        for w in targets:
            headers = {
                "Content-Type": "application/json",
                "X-Shopify-Topic": topic,
                "X-Shopify-Hmac-Sha256": sign(self.sim.client_secret, raw),
                "X-Shopify-Shop-Domain": SHOP_DOMAIN,
                "X-Shopify-API-Version": "2025-01",
                "X-Shopify-Webhook-Id": str(uuid.uuid4()),
                "X-Shopify-Event-Id": event_id,
                "X-Shopify-Triggered-At": triggered,
            }
            batch.append((w["callbackUrl"], raw, headers))
            if self.rng.random() < self.duplicate_rate:
                batch.append((w["callbackUrl"], raw, dict(headers)))
        with self.lock:
            self.pending += len(batch)
        for item in batch:
            self.queue.put(item)
        self._ensure_thread()

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="shopify-sim-webhooks", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=5.0) as client:
            held: list[tuple[str, bytes, dict[str, str]]] = []
            while True:
                try:
                    item = self.queue.get(timeout=0.05 if held else 1.0)
                except queue.Empty:
                    item = None
                    if held:
                        item, held = held[0], held[1:]
                    else:
                        continue
                if item is None:
                    continue
                if self.reorder and self.rng.random() < 0.5 and self.queue.qsize() > 0:
                    held.append(item)  # sent after the next one
                    continue
                self._deliver(client, *item)

    def _deliver(self, client: httpx.Client, url: str, raw: bytes, headers: dict[str, str]) -> None:
        status: int | str = "no answer"
        for attempt in range(self.retries + 1):
            try:
                status = client.post(url, content=raw, headers=headers).status_code
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            if isinstance(status, int) and status < 300:
                break
            time.sleep(min(0.2 * 2**attempt, 2.0))
        with self.lock:
            self.deliveries.append(
                {
                    "url": url,
                    "topic": headers["X-Shopify-Topic"],
                    "webhook_id": headers["X-Shopify-Webhook-Id"],
                    "event_id": headers["X-Shopify-Event-Id"],
                    "status": status,
                    "body": json.loads(raw),
                }
            )
            self.pending -= 1
            self.idle.notify_all()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every queued delivery was tried; False when ``timeout`` passed first."""
        end = time.monotonic() + timeout
        with self.lock:
            while self.pending > 0:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self.idle.wait(left)
        return True


# ------------------------------------------------------------------------------- the API


class QueryRoot:
    """The query root's fields the sim serves (graphql-core calls them with ``info`` and the args)."""

    def __init__(self, shop: Shop, sim: ShopifySim | None = None) -> None:
        self.shop, self.sim = shop, sim

    def currentBulkOperation(self, info: Any, type: str = "QUERY") -> JSON | None:
        return self.sim.bulk.current(type) if self.sim is not None else None

    def order(self, info: Any, id: str) -> JSON | None:
        o = self.shop.orders.get(parse_gid(id, "Order"))
        return self.shop.order_node(o) if o else None

    def orders(self, info: Any, query: str | None = None, sortKey: str = "ID", **args: Any) -> JSON:
        search = SearchQuery(query, ("updated_at", "created_at", "name", "email", "id", "status"))
        rows = [
            o
            for o in self.shop.orders.values()
            if search.matches(
                {
                    "updated_at": o["updatedAt"],
                    "created_at": o["createdAt"],
                    "name": o["name"],
                    "email": o["email"],
                    "id": str(o["id"]),
                    "status": "cancelled" if o["cancelledAt"] else ("closed" if o["closed"] else "open"),
                }
            )
        ]
        keys = {"UPDATED_AT": "updatedAt", "CREATED_AT": "createdAt", "PROCESSED_AT": "processedAt", "ID": None}
        if sortKey not in keys:
            raise GraphQLError(f"sortKey {sortKey} is not supported by the sim")
        sort = keys[sortKey]
        return connection(
            rows, self.shop.order_node, lambda o: [o[sort].isoformat(), o["id"]] if sort else [o["id"]], **args
        )

    def customer(self, info: Any, id: str) -> JSON | None:
        c = self.shop.customers.get(parse_gid(id, "Customer"))
        return self.shop.customer_node(c) if c else None

    def customers(self, info: Any, query: str | None = None, sortKey: str = "ID", **args: Any) -> JSON:
        search = SearchQuery(query, ("updated_at", "created_at", "email", "id"))
        rows = [
            c
            for c in self.shop.customers.values()
            if search.matches(
                {
                    "updated_at": c["updatedAt"],
                    "created_at": c["createdAt"],
                    "email": c.get("email"),
                    "id": str(c["id"]),
                }
            )
        ]
        sort = {"UPDATED_AT": "updatedAt", "CREATED_AT": "createdAt", "ID": None}.get(sortKey)
        return connection(
            rows, self.shop.customer_node, lambda c: [c[sort].isoformat(), c["id"]] if sort else [c["id"]], **args
        )

    def productVariants(self, info: Any, query: str | None = None, sortKey: str = "ID", **args: Any) -> JSON:
        search = SearchQuery(query, ("sku", "id", "updated_at"))
        rows = [
            v
            for v in self.shop.variants.values()
            if search.matches({"sku": v["sku"], "id": str(v["id"]), "updated_at": v["updatedAt"]})
        ]
        return connection(rows, self.shop.variant_node, lambda v: [v["id"]], **args)

    def refund(self, info: Any, id: str) -> JSON | None:
        rid = parse_gid(id, "Refund")
        for o in self.shop.orders.values():
            for f in o.get("refunds") or []:
                if f["id"] == rid:
                    return self.shop.refund_node(o, f)
        return None

    def product(self, info: Any, id: str) -> JSON | None:
        p = self.shop.products.get(parse_gid(id, "Product"))
        return self.shop.product_node(p) if p else None

    def products(self, info: Any, query: str | None = None, sortKey: str = "ID", **args: Any) -> JSON:
        search = SearchQuery(query, ("handle", "title", "sku", "id", "updated_at", "status"))
        rows = [
            p
            for p in self.shop.products.values()
            if any(
                search.matches(
                    {
                        "handle": p["handle"],
                        "title": p["title"],
                        "sku": sku,
                        "id": str(p["id"]),
                        "updated_at": p["updatedAt"],
                        "status": p["status"],
                    }
                )
                for sku in [v["sku"] for v in self.shop.variants.values() if v["productId"] == p["id"]] or [""]
            )
        ]
        sort = {"UPDATED_AT": "updatedAt", "TITLE": "title", "ID": None}.get(sortKey)
        return connection(
            rows,
            self.shop.product_node,
            lambda p: [str(p[sort]) if sort else "", p["id"]],
            **args,
        )

    def location(self, info: Any, id: str | None = None) -> JSON | None:
        lid = parse_gid(id, "Location") if id else self.shop.location_id
        return self.shop.location_node(lid) if lid in self.shop.locations else None

    def locations(self, info: Any, **args: Any) -> JSON:
        (
            args.pop("query", None),
            args.pop("sortKey", None),
            args.pop("includeLegacy", None),
            args.pop("includeInactive", None),
        )
        return connection(
            list(self.shop.locations.values()),
            lambda loc: {
                "id": gid("Location", loc["id"]),
                "legacyResourceId": str(loc["id"]),
                "name": loc["name"],
                "isActive": True,
            },
            lambda loc: [loc["id"]],
            **args,
        )

    def fulfillmentOrder(self, info: Any, id: str) -> JSON | None:
        fo_id = parse_gid(id, "FulfillmentOrder")
        for o in self.shop.orders.values():
            for fo in o["fulfillmentOrders"]:
                if fo["id"] == fo_id:
                    conn = self.shop.order_node(o)["fulfillmentOrders"](info, first=250)
                    return next(n for n in conn["nodes"] if n["id"] == id)
        return None

    def webhookSubscriptions(self, info: Any, topics: list[str] | None = None, **args: Any) -> JSON:
        for key in ("query", "sortKey", "callbackUrl", "format"):
            args.pop(key, None)
        rows = [w for w in self.shop.webhooks.values() if not topics or w["topic"] in topics]
        return connection(rows, _webhook_node, lambda w: [w["id"]], **args)


def _webhook_node(w: JSON) -> JSON:
    return {
        "id": gid("WebhookSubscription", w["id"]),
        "legacyResourceId": str(w["id"]),
        "topic": w["topic"],
        "format": "JSON",
        "includeFields": [],
        "createdAt": w["createdAt"],
        "updatedAt": w["createdAt"],
        "endpoint": {"__typename": "WebhookHttpEndpoint", "callbackUrl": w["callbackUrl"]},
        "callbackUrl": w["callbackUrl"],
    }


class MutationRoot:
    def __init__(self, shop: Shop, sim: ShopifySim | None = None) -> None:
        self.shop, self.sim = shop, sim

    def _order(self, id: str) -> JSON | None:
        return self.shop.orders.get(parse_gid(id, "Order"))

    def orderCreate(self, info: Any, order: JSON, options: JSON | None = None) -> JSON:
        with self.shop.lock:
            created, errors = self.shop.create_order(order)
            return {"order": self.shop.order_node(created) if created else None, "userErrors": errors}

    def orderMarkAsPaid(self, info: Any, input: JSON) -> JSON:
        with self.shop.lock:
            o = self._order(input["id"])
            if o is None:
                return {"order": None, "userErrors": [{"field": ["id"], "message": "Order does not exist"}]}
            errors = self.shop.mark_paid(o)
            return {"order": self.shop.order_node(o), "userErrors": errors}

    def orderCancel(
        self,
        info: Any,
        orderId: str,
        refund: bool,
        restock: bool,
        reason: str,
        notifyCustomer: bool = False,
        staffNote: str | None = None,
    ) -> JSON:
        with self.shop.lock:
            o = self._order(orderId)
            if o is None:
                errors = [{"field": ["orderId"], "message": "Order does not exist", "code": "NOT_FOUND"}]
            else:
                errors = self.shop.cancel(o, reason, refund, restock, staffNote)
            job = None if errors else {"id": gid("Job", self.shop.new_id()), "done": True}
            return {
                "job": job,
                "orderCancelUserErrors": errors,
                "userErrors": [{k: e[k] for k in ("field", "message")} for e in errors],
            }

    def fulfillmentCreate(self, info: Any, fulfillment: JSON, message: str | None = None) -> JSON:
        with self.shop.lock:
            made, errors = self.shop.fulfill(fulfillment)
            if made is None:
                return {"fulfillment": None, "userErrors": errors}
            order = next(o for o in self.shop.orders.values() if made in o["fulfillments"])
            node = next(
                f
                for f in self.shop.order_node(order)["fulfillments"](info)
                if f["id"] == gid("Fulfillment", made["id"])
            )
            return {"fulfillment": node, "userErrors": []}

    def customerCreate(self, info: Any, input: JSON) -> JSON:
        with self.shop.lock:
            if input.get("id"):
                return {"customer": None, "userErrors": [{"field": ["id"], "message": "id is not allowed on create"}]}
            c, errors = self.shop.save_customer(input)
            return {"customer": self.shop.customer_node(c) if c else None, "userErrors": errors}

    def customerUpdate(self, info: Any, input: JSON) -> JSON:
        with self.shop.lock:
            existing = self.shop.customers.get(parse_gid(input.get("id"), "Customer"))
            if existing is None:
                return {"customer": None, "userErrors": [{"field": ["id"], "message": "Customer does not exist"}]}
            c, errors = self.shop.save_customer({k: v for k, v in input.items() if k != "id"}, existing)
            return {"customer": self.shop.customer_node(c) if c else None, "userErrors": errors}

    def webhookSubscriptionCreate(self, info: Any, topic: str, webhookSubscription: JSON) -> JSON:
        url = webhookSubscription.get("callbackUrl")
        if not url or not str(url).startswith(("http://", "https://")):
            return {
                "webhookSubscription": None,
                "userErrors": [{"field": ["webhookSubscription", "callbackUrl"], "message": "Address is invalid"}],
            }
        if topic not in TOPICS:
            return {
                "webhookSubscription": None,
                "userErrors": [{"field": ["topic"], "message": f"the sim does not send {topic}"}],
            }
        with self.shop.lock:
            if any(w["topic"] == topic and w["callbackUrl"] == url for w in self.shop.webhooks.values()):
                return {
                    "webhookSubscription": None,
                    "userErrors": [{"field": ["address"], "message": "Address for this topic has already been taken"}],
                }
            w = {
                "id": self.shop.new_id(),
                "topic": topic,
                "callbackUrl": url,
                "createdAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            self.shop.webhooks[w["id"]] = w
            return {"webhookSubscription": _webhook_node(w), "userErrors": []}

    def refundCreate(self, info: Any, input: JSON) -> JSON:
        with self.shop.lock:
            made, errors = self.shop.refund(input)
            order = self._order(input["orderId"]) if made else None
            return {
                "refund": self.shop.refund_node(order, made) if made and order else None,
                "order": self.shop.order_node(order) if order else None,
                "userErrors": errors,
            }

    def bulkOperationRunQuery(self, info: Any, query: str) -> JSON:
        assert self.sim is not None
        op, errors = self.sim.bulk.run(query)
        return {"bulkOperation": op, "userErrors": errors}

    def productSet(self, info: Any, input: JSON, synchronous: bool = True) -> JSON:
        with self.shop.lock:
            product, errors = self.shop.set_product(input, synchronous)
            return {
                "product": self.shop.product_node(product) if product else None,
                "productSetOperation": None,
                "userErrors": errors,
            }

    def productVariantsBulkUpdate(self, info: Any, productId: str, variants: list[JSON], **_: Any) -> JSON:
        with self.shop.lock:
            product, errors = self.shop.update_variants(productId, variants)
            if product is None:
                return {"product": None, "productVariants": None, "userErrors": errors}
            node = self.shop.product_node(product)
            ids = {v.get("id") for v in variants}
            made = [
                self.shop.variant_node(v) for v in self.shop.variants.values() if gid("ProductVariant", v["id"]) in ids
            ]
            return {"product": node, "productVariants": made, "userErrors": []}

    def inventorySetQuantities(self, info: Any, input: JSON) -> JSON:
        with self.shop.lock:
            group, errors = self.shop.set_quantities(input)
            return {
                "inventoryAdjustmentGroup": self.shop.adjustment_node(group) if group else None,
                "userErrors": errors,
            }

    def inventoryActivate(
        self, info: Any, inventoryItemId: str, locationId: str, available: int | None = None, **_: Any
    ) -> JSON:
        with self.shop.lock:
            level, errors = self.shop.activate(inventoryItemId, locationId, available)
            node = self.shop.level_node(level["item"], level["location"]) if level else None
            return {"inventoryLevel": node, "userErrors": errors}

    def metafieldsSet(self, info: Any, metafields: list[JSON]) -> JSON:
        with self.shop.lock:
            made, errors = self.shop.set_metafields(metafields)
            return {"metafields": made if not errors else None, "userErrors": errors}

    def webhookSubscriptionDelete(self, info: Any, id: str) -> JSON:
        with self.shop.lock:
            removed = self.shop.webhooks.pop(parse_gid(id, "WebhookSubscription"), None)
            if removed is None:
                return {
                    "deletedWebhookSubscriptionId": None,
                    "userErrors": [{"field": ["id"], "message": "Webhook subscription does not exist"}],
                }
            return {"deletedWebhookSubscriptionId": id, "userErrors": []}


class BulkOperations:
    """Bulk query operations as Shopify runs them: one at a time per shop; the query is read whole
    (its connections without ``first``) and written as JSON Lines, a node a line, a nested
    connection's nodes on lines of their own with ``__parentId``. An operation is ``RUNNING`` when
    made and ``COMPLETED`` at the next look; its file is served at ``GET /_sim/bulk/<n>.jsonl``."""

    def __init__(self, sim: ShopifySim) -> None:
        self.sim = sim
        self.ops: dict[int, JSON] = {}
        self.files: dict[int, str] = {}
        self.base_url = "http://shop"

    def run(self, text: str) -> tuple[JSON | None, list[JSON]]:
        running = [o for o in self.ops.values() if o["status"] == "RUNNING"]
        if running:
            return None, [
                {
                    "field": ["query"],
                    "message": f"A bulk query operation for this app and shop is already in progress: "
                    f"{gid('BulkOperation', running[0]['n'])}.",
                    "code": "OPERATION_IN_PROGRESS",
                }
            ]
        try:
            document = parse(text)
        except GraphQLError as exc:
            return None, [{"field": ["query"], "message": f"Invalid bulk query: {exc.message}", "code": "INVALID"}]
        problems = [e.message for e in validate(schema(), document)] or _bulk_rules(document)
        if problems:
            return None, [{"field": ["query"], "message": f"Invalid bulk query: {problems[0]}", "code": "INVALID"}]
        token = BULK.set(True)
        try:
            with self.sim.shop.lock:
                result = execute_sync(schema(), document, root_value=QueryRoot(self.sim.shop, self.sim))
        finally:
            BULK.reset(token)
        if result.errors:
            return None, [
                {"field": ["query"], "message": f"Invalid bulk query: {result.errors[0].message}", "code": "INVALID"}
            ]
        lines: list[JSON] = []
        for value in (result.data or {}).values():
            for node in _nodes(value):
                _flatten(node, None, lines)
        n = self.sim.shop.new_id()
        self.files[n] = "".join(json.dumps(line, default=_default) + "\n" for line in lines)
        op = {
            "n": n,
            "status": "RUNNING",
            "query": text,
            "createdAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "objectCount": len(lines),
            "rootObjectCount": sum(1 for line in lines if "__parentId" not in line),
        }
        self.ops[n] = op
        return self.node(op), []

    def current(self, type: str) -> JSON | None:
        if type != "QUERY" or not self.ops:
            return None
        op = self.ops[max(self.ops)]
        shown = self.node(op)
        if op["status"] == "RUNNING":  # it finishes while the app waits
            op["status"], op["completedAt"] = "COMPLETED", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return shown

    def node(self, op: JSON) -> JSON:
        done = op["status"] == "COMPLETED"
        size = len(self.files[op["n"]].encode())
        return {
            "id": gid("BulkOperation", op["n"]),
            "status": op["status"],
            "type": "QUERY",
            "query": op["query"],
            "createdAt": op["createdAt"],
            "completedAt": op.get("completedAt"),
            "errorCode": None,
            "objectCount": str(op["objectCount"] if done else 0),
            "rootObjectCount": str(op["rootObjectCount"] if done else 0),
            "fileSize": str(size) if done and size else None,
            "url": f"{self.base_url.rstrip('/')}/_sim/bulk/{op['n']}.jsonl" if done and size else None,
            "partialDataUrl": None,
        }


BULK_MAX_CONNECTIONS, BULK_MAX_DEPTH = 5, 2
"""The bulk guide's limits: at most five connections, nested at most two deep."""


def _bulk_rules(document: Any) -> list[str]:
    """What breaks the bulk guide's rules on a (schema-valid) query's connections. The words are the
    sim's: Shopify's own messages for these are not in the reference (UNVERIFIED)."""
    root = schema().query_type
    found: list[tuple[str, int]] = []

    def walk(selection: SelectionSetNode | None, parent: Any, depth: int) -> None:
        for sel in selection.selections if selection else ():
            if isinstance(sel, InlineFragmentNode):
                walk(sel.selection_set, parent, depth)
                continue
            if not isinstance(sel, FieldNode):
                continue
            fdef = getattr(get_named_type(parent), "fields", {}).get(sel.name.value)
            if fdef is None:
                continue
            ftype = get_named_type(fdef.type)
            inner = depth + 1 if ftype.name.endswith("Connection") else depth
            if inner > depth:
                found.append((sel.name.value, inner))
            walk(sel.selection_set, ftype, inner)

    for op in (d for d in document.definitions if isinstance(d, OperationDefinitionNode)):
        walk(op.selection_set, root, 0)
    out = []
    if not found:
        out.append("a bulk query must select at least one connection")
    if len(found) > BULK_MAX_CONNECTIONS:
        out.append(f"it selects {len(found)} connections; at most {BULK_MAX_CONNECTIONS} are allowed")
    deep = [name for name, depth in found if depth > BULK_MAX_DEPTH]
    if deep:
        out.append(f"connection {deep[0]} is nested {BULK_MAX_DEPTH + 1} deep; at most {BULK_MAX_DEPTH} are allowed")
    return out


def _nodes(value: Any) -> list[JSON]:
    """The nodes of a connection as a query returned it (``nodes`` or ``edges { node }``)."""
    if not isinstance(value, dict):
        return []
    if isinstance(value.get("nodes"), list):
        return list(value["nodes"])
    return [e["node"] for e in value.get("edges") or [] if isinstance(e, dict) and e.get("node")]


def _flatten(node: JSON, parent: str | None, out: list[JSON]) -> None:
    """``node`` as a JSON line (its nested connections as lines of their own after it)."""
    own = {k: v for k, v in node.items() if not (isinstance(v, dict) and ("nodes" in v or "edges" in v))}
    if parent is not None:
        own["__parentId"] = parent
    out.append(own)
    for value in node.values():
        if isinstance(value, dict) and ("nodes" in value or "edges" in value):
            for child in _nodes(value):
                _flatten(child, str(node.get("id")), out)


class ShopifySim:
    """The sim's state: the shop, the bucket, the credentials and the webhook sender."""

    def __init__(self) -> None:
        self.shop = Shop()
        self.bucket = Bucket()
        self.client_secret = CLIENT_SECRET
        self.webhooks = WebhookSender(self)
        self.shop.on_event = self.webhooks.event
        self.reset()

    def reset(self) -> None:
        self.shop.reset()
        self.bucket = Bucket()
        self.bulk = BulkOperations(self)
        self.tokens: dict[str, float | None] = {ACCESS_TOKEN: None}
        """access token -> when it expires (monotonic; None: never, an app's token)."""
        self.refresh_tokens: dict[str, str] = {}
        """refresh token -> its state: ``current`` or ``previous`` (still good until the current is used)."""
        self.token_lifetime: float | None = None
        self.api_versions: set[str] = set()
        self.ledger: list[JSON] = []
        """Every query the bucket was asked to pay: ``at``, ``operation``, ``cost``, ``throttled``."""

    def seed(self, body: JSON) -> JSON:
        created: JSON = {"products": [], "customers": []}
        if "throttle" in body:
            t = body["throttle"]
            self.bucket = Bucket(maximum=float(t.get("maximum", 2000)), restore_rate=float(t.get("restore_rate", 100)))
            self.bucket.available = self.bucket.maximum
        if "webhooks" in body:
            self.webhooks.configure(body["webhooks"])
        if "token" in body:
            self.token_lifetime = float(body["token"]["expires_in"])
            refresh = "shprt_" + secrets.token_hex(8)
            self.refresh_tokens = {refresh: "current"}
            access = "shpat_" + secrets.token_hex(8)
            self.tokens = {access: time.monotonic() + self.token_lifetime}
            created["token"] = {"access_token": access, "refresh_token": refresh, "expires_in": self.token_lifetime}
        for r in body.get("refunds") or []:
            order = self.shop.orders.get(parse_gid(r["order"], "Order"))
            if order is None:
                raise ValueError(f"refund: no order {r['order']}")
            rest = r["refund"].get("refund", r["refund"])
            with self.shop.lock:
                made = self.shop.seed_refund(order, rest)
            created.setdefault("refunds", []).append({"id": gid("Refund", made["id"])})
        for t in body.get("transactions") or []:
            order = self.shop.orders.get(parse_gid(t["order"], "Order"))
            if order is None:
                raise ValueError(f"transaction: no order {t['order']}")
            with self.shop.lock:
                made = self.shop.seed_transaction(order, t["transaction"].get("transaction", t["transaction"]))
            created.setdefault("transactions", []).append({"id": gid("OrderTransaction", made["id"])})
        for name in body.get("locations") or []:
            loc = self.shop.add_location(str(name))
            created.setdefault("locations", []).append({"id": gid("Location", loc["id"]), "name": loc["name"]})
        for p in body.get("products") or []:
            product = self.shop.add_product(str(p["title"]), list(p["variants"]))
            created["products"].append({"id": gid("Product", product["id"]), "title": product["title"]})
        for c in body.get("customers") or []:
            customer, errors = self.shop.save_customer(dict(c))
            if errors:
                raise ValueError(f"customer {c.get('email')}: {errors[0]['message']}")
            assert customer is not None
            created["customers"].append({"id": gid("Customer", customer["id"]), "email": customer.get("email")})
        return created

    def authorized(self, token: str) -> bool:
        if token not in self.tokens:
            return False
        expires = self.tokens[token]
        return expires is None or time.monotonic() < expires

    def refresh(self, form: dict[str, str]) -> tuple[int, JSON]:
        """``POST /admin/oauth/access_token`` with a refresh token: a new access and refresh token."""
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != self.client_secret:
            return 401, {"error": "invalid_client", "error_description": "Client authentication failed"}
        if form.get("grant_type") != "refresh_token":
            return 400, {"error": "unsupported_grant_type"}
        state = self.refresh_tokens.get(form.get("refresh_token", ""))
        if state is None:
            return 400, {"error": "invalid_grant", "error_description": "refresh token is invalid or was rotated"}
        if state == "current":
            # the one handed out before it is now used: the one before becomes worthless
            self.refresh_tokens = {k: v for k, v in self.refresh_tokens.items() if v == "current"}
        new_refresh = "shprt_" + secrets.token_hex(8)
        for k in list(self.refresh_tokens):
            self.refresh_tokens[k] = "previous"
        self.refresh_tokens[new_refresh] = "current"
        access = "shpat_" + secrets.token_hex(8)
        lifetime = self.token_lifetime or 3600.0
        self.tokens[access] = time.monotonic() + lifetime
        return 200, {
            "access_token": access,
            "expires_in": int(lifetime),
            "refresh_token": new_refresh,
            "refresh_token_expires_in": 90 * 24 * 3600,
            "scope": "read_orders,write_orders,read_customers,write_customers,write_fulfillments",
        }

    def graphql(self, body: Any) -> JSON:
        """Run one GraphQL request as Shopify would answer it (always HTTP 200)."""
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return {"errors": [{"message": "Parameter Missing or Invalid", "extensions": {"code": "BAD_REQUEST"}}]}
        variables = body.get("variables") or {}
        try:
            document = parse(body["query"])
        except GraphQLError as exc:
            return {"errors": [_error(exc)]}
        problems = validate(schema(), document)
        if problems:
            return {"errors": [_error(e) for e in problems]}
        ops = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        name = body.get("operationName")
        op = next((o for o in ops if o.name and o.name.value == name), ops[0]) if name else ops[0]
        cost = query_cost(document, op, variables)
        if cost > MAX_QUERY_COST:
            return {
                "errors": [
                    {
                        "message": f"Query cost is {cost}, which exceeds the single query max cost limit "
                        f"({MAX_QUERY_COST}).",
                        "extensions": {"code": "MAX_COST_EXCEEDED", "cost": cost, "maxCost": MAX_QUERY_COST},
                    }
                ]
            }
        paid = self.bucket.take(cost)
        top = op.selection_set.selections[0]
        self.ledger.append(
            {
                "at": time.time(),
                "operation": (op.name.value if op.name else "") or getattr(getattr(top, "name", None), "value", ""),
                "cost": cost,
                "throttled": not paid,
            }
        )
        if not paid:
            return {
                "errors": [
                    {
                        "message": "Throttled",
                        "extensions": {
                            "code": "THROTTLED",
                            "documentation": "https://shopify.dev/api/usage/rate-limits",
                        },
                    }
                ],
                "extensions": {
                    "cost": {
                        "requestedQueryCost": cost,
                        "actualQueryCost": None,
                        "throttleStatus": self.bucket.status(),
                    }
                },
            }
        root = MutationRoot(self.shop, self) if op.operation.value == "mutation" else QueryRoot(self.shop, self)
        result = execute_sync(schema(), document, root_value=root, variable_values=variables, operation_name=name)
        out: JSON = {}
        if result.errors:
            out["errors"] = [_error(e) for e in result.errors]
        out["data"] = result.data
        actual = query_cost(document, op, variables, result.data or {})
        self.bucket.give_back(cost - actual)
        self.ledger[-1]["actual"] = actual
        out["extensions"] = {
            "cost": {"requestedQueryCost": cost, "actualQueryCost": actual, "throttleStatus": self.bucket.status()}
        }
        return out


def _error(exc: GraphQLError) -> JSON:
    out: JSON = {"message": exc.message}
    if exc.locations:
        out["locations"] = [{"line": loc.line, "column": loc.column} for loc in exc.locations]
    if exc.path:
        out["path"] = list(exc.path)
    original = exc.original_error
    if original is not None and not isinstance(original, GraphQLError):
        # a resolver that is missing (a field the sim does not serve) or broke: say which
        out["message"] = f"{exc.message} (sim: {type(original).__name__})"
    return out


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(type(value).__name__)


async def _graphql(request: Request) -> Response:
    sim: ShopifySim = request.app.state.sim
    token = request.headers.get("x-shopify-access-token", "")
    if not sim.authorized(token):
        return JSONResponse(
            {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}, status_code=401
        )
    sim.api_versions.add(request.path_params["version"])
    sim.bulk.base_url = str(request.base_url)
    try:
        body = await request.json()
    except ValueError:
        return JSONResponse({"errors": [{"message": "Invalid JSON in request body"}]}, status_code=400)
    answer = sim.graphql(body)
    return Response(json.dumps(answer, default=_default), media_type="application/json")


async def _bulk_file(request: Request) -> Response:
    """A finished bulk operation's JSON Lines (Shopify serves them from signed storage URLs)."""
    sim: ShopifySim = request.app.state.sim
    text = sim.bulk.files.get(int(request.path_params["n"]))
    if text is None:
        return Response("NoSuchKey", status_code=404)
    return Response(text, media_type="application/jsonl")


async def _token(request: Request) -> Response:
    sim: ShopifySim = request.app.state.sim
    if request.headers.get("content-type", "").startswith("application/json"):
        form = {k: str(v) for k, v in (await request.json()).items()}
    else:
        form = {k: v[-1] for k, v in parse_qs((await request.body()).decode()).items()}
    status, body = sim.refresh(form)
    return JSONResponse(body, status_code=status)


async def _webhook_log(request: Request) -> Response:
    sim: ShopifySim = request.app.state.sim
    with sim.webhooks.lock:
        rows = list(sim.webhooks.deliveries)
    return JSONResponse({"deliveries": rows, "pending": sim.webhooks.pending})


async def _costs(request: Request) -> Response:
    sim: ShopifySim = request.app.state.sim
    rows = list(sim.ledger)
    return JSONResponse({"queries": rows, "throttle_status": sim.bucket.status()})


async def _webhook_flush(request: Request) -> Response:
    sim: ShopifySim = request.app.state.sim
    done = sim.webhooks.flush()
    return JSONResponse({"flushed": done, "pending": sim.webhooks.pending})


def create_app() -> Starlette:
    """The Shopify sim as an ASGI app; its state is ``app.state.sim`` (a :class:`ShopifySim`)."""
    sim = ShopifySim()
    control = SimControl(
        reset_data=sim.reset,
        seed_data=sim.seed,
        error_body=lambda status, message: {"errors": message},
    )
    app = Starlette(
        routes=[
            Route("/_sim/webhooks", _webhook_log, methods=["GET"]),
            Route("/_sim/webhooks/flush", _webhook_flush, methods=["POST"]),
            Route("/_sim/costs", _costs, methods=["GET"]),
            Route("/_sim/bulk/{n:int}.jsonl", _bulk_file, methods=["GET"]),
            *control.routes(),
            Route("/admin/api/{version}/graphql.json", _graphql, methods=["POST"]),
            Route("/admin/oauth/access_token", _token, methods=["POST"]),
        ]
    )
    app.add_middleware(BaseHTTPMiddleware, dispatch=control.dispatch)
    app.state.sim = sim
    app.state.control = control
    return app


def sample_seed() -> JSON:
    """What ``erpsync local up`` seeds the shop with: the sample catalog's sellable SKUs (the ones
    the Acumatica sim stocks) and one customer."""
    from sandbox.sims.magento_orders import sample_catalog, sample_customer

    products: dict[str, JSON] = {}
    for p in sample_catalog():
        if p.get("type_id") == "configurable":
            continue
        title = str(p["name"]).split("-")[0].strip() if p.get("visibility") == 1 else str(p["name"])
        variant_title = "-".join(str(p["name"]).split("-")[1:]) or "Default Title"
        products.setdefault(title, {"title": title, "variants": []})["variants"].append(
            {"sku": p["sku"], "price": str(p["price"]), "title": variant_title, "quantity": 100}
        )
    c = sample_customer()
    a = c["addresses"][0]
    customer = {
        "email": c["email"],
        "firstName": c["firstname"],
        "lastName": c["lastname"],
        "addresses": [
            {
                "firstName": a["firstname"],
                "lastName": a["lastname"],
                "address1": a["street"][0],
                "city": a["city"],
                "provinceCode": a["region"]["region_code"],
                "zip": a["postcode"],
                "countryCode": a["country_id"],
                "phone": a["telephone"],
            }
        ],
    }
    return {"products": list(products.values()), "customers": [customer]}
