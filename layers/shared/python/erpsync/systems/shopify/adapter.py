"""Shopify's Admin GraphQL API behind erpsync's ports: orders, their payments, refunds and
cancellations (sources), fulfilments from ERP shipments, cancellations and orders marked paid from
paid ERP invoices (targets), customers both ways, and
the ERP's catalog (products, prices, stock: ``catalog.py``).
``ShopifySystem`` hands each out by entity and direction."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from erpsync.errors import NotFoundError, PermanentError, RetryableError, ValidationFailed
from erpsync.model import ChangeNotice, CreditMemo, Customer, Invoice, Order, Shipment
from erpsync.systems.ports import Page
from erpsync.systems.shopify.catalog import ShopifyPrices, ShopifyProducts, ShopifyStock
from erpsync.systems.shopify.client import ShopifyClient, UserErrors
from erpsync.systems.shopify.mapping import (
    ADDRESS,
    CUSTOMER_FIELDS,
    MORE_LINES_QUERY,
    MORE_REFUND_LINES_QUERY,
    ORDER_CHILDREN,
    ORDER_COST,
    ORDER_QUERY,
    REFUND_COST,
    REFUND_QUERY,
    bulk_orders_query,
    customer_from_shopify,
    customer_input,
    gid,
    legacy_id,
    order_from_shopify,
    parse_time,
    refund_from_shopify,
)
from erpsync.systems.shopify.settings import ShopifySettings

log = logging.getLogger("erpsync.shopify")

ORDERS_QUERY = """
query Orders($first: Int!, $after: String, $query: String) {
  orders(first: $first, after: $after, sortKey: UPDATED_AT, query: $query) {
    pageInfo { hasNextPage endCursor }
    nodes { id name updatedAt }
  }
}
"""
ORDER_REFUNDS_QUERY = """
query OrderRefunds($first: Int!, $after: String, $query: String) {
  orders(first: $first, after: $after, sortKey: UPDATED_AT, query: $query) {
    pageInfo { hasNextPage endCursor }
    nodes { id updatedAt refunds(first: 5) { id updatedAt } }
  }
}
"""
ALL_REFUNDS_QUERY = "query AllRefunds($id: ID!) { order(id: $id) { refunds { id updatedAt } } }"
REFUNDS_PER_ROW = 5
"""Refunds a poll row reads of its order (keeping the page cheap); an order with as many is read again whole."""
FIND_ORDER_QUERY = "query FindOrder($query: String) { orders(first: 1, query: $query) { nodes { id name } } }"
CUSTOMERS_QUERY = """
query Customers($first: Int!, $after: String, $query: String) {
  customers(first: $first, after: $after, sortKey: UPDATED_AT, query: $query) {
    pageInfo { hasNextPage endCursor }
    nodes { id updatedAt }
  }
}
"""
CUSTOMER_QUERY = f"query Customer($id: ID!) {{ customer(id: $id) {{ {CUSTOMER_FIELDS} }} }}\n{ADDRESS}"
FIND_CUSTOMERS_QUERY = f"""
query FindCustomers($query: String) {{ customers(first: 10, query: $query) {{ nodes {{ {CUSTOMER_FIELDS} }} }} }}
{ADDRESS}"""
CUSTOMER_CREATE = f"""
mutation CustomerCreate($input: CustomerInput!) {{
  customerCreate(input: $input) {{ customer {{ {CUSTOMER_FIELDS} }} userErrors {{ field message }} }}
}}
{ADDRESS}"""
CUSTOMER_UPDATE = CUSTOMER_CREATE.replace("CustomerCreate", "CustomerUpdate").replace(
    "customerCreate", "customerUpdate"
)
MARKER_QUERY = """
query Fulfilled($id: ID!, $key: String!) {
  order(id: $id) {
    id
    metafield(namespace: "erpsync", key: $key) { value }
    fulfillments(first: 50) { id createdAt fulfillmentLineItems(first: 20) { nodes { quantity lineItem { id } } } }
  }
}
"""
OPEN_LINES_QUERY = """
query OpenLines($id: ID!) {
  order(id: $id) {
    id name cancelledAt
    fulfillments(first: 50) { id }
    fulfillmentOrders(first: 2) {
      nodes {
        id status assignedLocation { location { id } }
        lineItems(first: 25) { nodes { id remainingQuantity lineItem { id } } }
      }
    }
  }
}
"""
METAFIELDS_SET = """
mutation Marker($metafields: [MetafieldsSetInput!]!) {
  metafieldsSet(metafields: $metafields) { metafields { key } userErrors { field message } }
}
"""
FULFILLMENT_CREATE = """
mutation Fulfill($fulfillment: FulfillmentInput!) {
  fulfillmentCreate(fulfillment: $fulfillment) { fulfillment { id status } userErrors { field message } }
}
"""
ORDER_STATE_QUERY = "query OrderState($id: ID!) { order(id: $id) { id name cancelledAt note } }"
ORDER_CANCEL = """
mutation Cancel($orderId: ID!, $staffNote: String) {
  orderCancel(
    orderId: $orderId, refund: false, restock: true, reason: OTHER, notifyCustomer: false, staffNote: $staffNote
  ) {
    job { id done }
    orderCancelUserErrors { field message code }
  }
}
"""
BULK_RUN = """
mutation Bulk($query: String!) {
  bulkOperationRunQuery(query: $query) { bulkOperation { id status } userErrors { field message code } }
}
"""
BULK_STATE = "query BulkState { currentBulkOperation(type: QUERY) { id status errorCode createdAt objectCount url } }"
BULK_POLL_S = (0.2, 0.5, 1.0, 2.0, 5.0)
"""Waits between looks at a running bulk operation (the last one repeats)."""
BULK_MAX_WAIT_S = 600.0
MARKER_COST = 50
OPEN_LINES_COST = 110
OPEN_FO = ("OPEN", "IN_PROGRESS")


def search_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def page_checkpoint(times: list[datetime | None], more: bool) -> datetime | None:
    """The checkpoint a page of rows sorted by update time proves: everything up to its last row's
    time when no page follows; otherwise up to just before it (rows of that same second may follow)."""
    stamps = [t for t in times if t is not None]
    if not stamps:
        return None
    last = max(stamps)
    return last if not more else last - timedelta(seconds=1)


def _roots(rows: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """A bulk result's top-level records (its child rows left out)."""
    return (row for row in rows if "__parentId" not in row)


def assemble(rows: Iterator[dict[str, Any]], children: dict[str, str], system: str) -> Iterator[dict[str, Any]]:
    """A bulk result's top-level records, each with its child rows back in its connections (as
    ``{"nodes": [...]}``, in file order). Shopify writes a record's children right after it (the
    JSON Lines file groups them, 2025-01); a child row of another record, or of a type not in
    ``children``, is refused naming it rather than put in the wrong place."""
    current: dict[str, Any] | None = None
    for line in rows:
        row = {k: v for k, v in line.items() if k != "__parentId"}
        parent = line.get("__parentId")
        if parent is None:
            if current is not None:
                yield current
            current = {**row, **{key: {"nodes": []} for key in children.values()}}
            continue
        kind = str(row.get("id") or "").removeprefix("gid://shopify/").split("/", 1)[0]
        if kind not in children:
            raise PermanentError(
                f"{system} bulk result: row {row.get('id')!r} of {parent} is none of {', '.join(children)}",
                system=system,
            )
        if current is None or parent != current.get("id"):
            raise PermanentError(
                f"{system} bulk result: row {row.get('id')} of {parent} does not follow its parent "
                f"(after {current.get('id') if current else 'nothing'}): the file is not grouped",
                system=system,
            )
        current[children[kind]]["nodes"].append(row)
    if current is not None:
        yield current


class ShopifyStore:
    """What the order ports share: the client and the connection's settings."""

    def __init__(self, client: ShopifyClient, connection: str, settings: Callable[[], ShopifySettings]) -> None:
        self.client, self.name, self.settings = client, connection, settings

    def changed_pages(
        self,
        query: str,
        key: str,
        since: datetime,
        entity: str,
        expand: Callable[[dict[str, Any]], list[ChangeNotice]] | None = None,
    ) -> Iterator[Page]:
        """Pages of notices for the ``key`` records (``orders``, ``customers``) updated after
        ``since`` less the overlap window, oldest first, by cursor (``expand``: the notices a
        record stands for, when not itself)."""
        cfg = self.settings()
        start = since - timedelta(seconds=cfg.overlap_s)
        search = f"updated_at:>'{search_time(start)}'"
        after: str | None = None
        while True:
            data = self.client.query(
                query, {"first": cfg.page_size, "after": after, "query": search}, cost=2 + cfg.page_size
            )
            conn = data.get(key) or {}
            nodes = conn.get("nodes") or []
            info = conn.get("pageInfo") or {}
            more = bool(info.get("hasNextPage"))
            notices = (
                [x for n in nodes for x in expand(n)]
                if expand is not None
                else [
                    ChangeNotice(
                        source=self.name,
                        entity=entity,
                        id=legacy_id(n.get("id")),
                        version=str(n.get("updatedAt") or "") or None,
                        occurred_at=parse_time(n.get("updatedAt")),
                    )
                    for n in nodes
                ]
            )
            yield Page(notices, page_checkpoint([parse_time(n.get("updatedAt")) for n in nodes], more))
            if not more or not info.get("endCursor"):
                return
            after = str(info["endCursor"])

    def bulk_file(
        self, query: str, resume: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], Iterator[dict[str, Any]]]:
        """A bulk query operation's state once finished and the rows of its JSON Lines file, read
        as they come (``bulkOperationRunQuery``: Shopify reads the whole result into the file,
        charging no query cost); the operation of ``resume``, still completed with its file, is
        read again instead of a new one."""
        client = self.client
        op_id = str((resume or {}).get("operation") or "")
        state = (client.query(BULK_STATE, {}, cost=2).get("currentBulkOperation") or {}) if op_id else {}
        if not op_id or state.get("id") != op_id or state.get("status") != "COMPLETED":
            try:
                made = client.mutate(BULK_RUN, {"query": query}, "bulkOperationRunQuery")
            except UserErrors as exc:
                if any(e.get("code") == "OPERATION_IN_PROGRESS" for e in exc.errors):
                    raise RetryableError(
                        f"{self.name} is running another bulk query: this one starts after it", system=self.name
                    ) from exc
                raise
            op_id = str((made.get("bulkOperation") or {}).get("id") or "")
            state = self._bulk_done(op_id)
        return dict(state), self._bulk_lines(op_id, state.get("url"))

    def _bulk_lines(self, op_id: str, url: Any) -> Iterator[dict[str, Any]]:
        if not url:  # nothing matched: Shopify makes no file
            return
        with self.client.http.stream("GET", str(url), timeout=self.client.timeout) as response:
            if response.status_code != 200:
                raise RetryableError(
                    f"{self.name} bulk result {op_id} could not be read ({response.status_code})", system=self.name
                )
            for line in response.iter_lines():
                if line.strip():
                    yield json.loads(line)

    def _bulk_done(self, op_id: str) -> dict[str, Any]:
        """The state of bulk operation ``op_id`` once it has finished (waited for)."""
        waited = 0.0
        for step in range(10_000):
            state = self.client.query(BULK_STATE, {}, cost=2).get("currentBulkOperation") or {}
            if state.get("id") != op_id:
                raise RetryableError(f"{self.name} bulk operation {op_id} was replaced by another", system=self.name)
            status = state.get("status")
            if status == "COMPLETED":
                return dict(state)
            if status in ("FAILED", "CANCELED", "CANCELING", "EXPIRED"):
                raise RetryableError(
                    f"{self.name} bulk operation {op_id} ended {status} ({state.get('errorCode') or 'no error code'})",
                    system=self.name,
                )
            wait = BULK_POLL_S[min(step, len(BULK_POLL_S) - 1)]
            if waited + wait > BULK_MAX_WAIT_S:
                break
            time.sleep(wait)
            waited += wait
        raise RetryableError(f"{self.name} bulk operation {op_id} still running after {waited:.0f}s", system=self.name)

    def bulk_pages(
        self,
        query: str,
        entity: str,
        resume: dict[str, Any] | None = None,
        children: dict[str, str] | None = None,
    ) -> Iterator[Page]:
        """Pages of notices (``page_size`` records each) of a bulk query of records with
        ``updatedAt``; each page's ``position`` lets a load resume after it, the last one's
        checkpoint is the newest ``updatedAt`` read (a bulk result comes in no order of time).

        ``children`` (GID type -> connection, e.g. ``{"LineItem": "lineItems"}``): each record is
        put back together with its child rows and carried whole in its notice's ``snapshot``
        (``read_at``: when the operation started, the oldest its data can be)."""
        size = self.settings().page_size
        skip = int((resume or {}).get("rows") or 0)
        state, rows = self.bulk_file(query, resume)
        op_id = str(state.get("id") or "")
        read_at = parse_time(state.get("createdAt")) if children is not None else None
        records = assemble(rows, children, self.name) if children is not None else _roots(rows)
        done, newest = 0, None
        batch: list[ChangeNotice] = []
        for record in records:
            done += 1
            when = parse_time(record.get("updatedAt"))
            newest = when if when is not None and (newest is None or when > newest) else newest
            if done <= skip:
                continue
            batch.append(
                ChangeNotice(
                    source=self.name,
                    entity=entity,
                    id=legacy_id(record.get("id")),
                    version=str(record.get("updatedAt") or "") or None,
                    occurred_at=when,
                    snapshot=record if children is not None else None,
                    read_at=read_at,
                )
            )
            if len(batch) >= size:
                yield Page(batch, None, {"operation": op_id, "rows": done})
                batch = []
        yield Page(batch, newest, {"operation": op_id, "rows": done})

    def read_order(self, id: str) -> dict[str, Any]:
        """The order as ``ORDER_QUERY`` reads it, every page of lines joined."""
        order_gid = gid("Order", id)
        node = self.client.query(ORDER_QUERY, {"id": order_gid}, cost=ORDER_COST).get("order")
        if not isinstance(node, dict):
            raise NotFoundError(f"{self.name} order {id} does not exist", system=self.name)
        lines = node.get("lineItems") or {}
        while (lines.get("pageInfo") or {}).get("hasNextPage"):
            more = self.client.query(
                MORE_LINES_QUERY, {"id": order_gid, "after": lines["pageInfo"]["endCursor"]}, cost=ORDER_COST
            )
            page = ((more.get("order") or {}).get("lineItems")) or {}
            node["lineItems"]["nodes"].extend(page.get("nodes") or [])
            lines = page
        return node

    def get_order(self, id: str) -> Order:
        return order_from_shopify(self.read_order(id), self.settings().amounts)


class ShopifyOrderChanges:
    """An order-level fact read from the shop's orders, one notice per changed order, as a change of
    ``entity``: what it captured (``payment``) or that it was canceled (``cancellation``)."""

    def __init__(self, store: ShopifyStore, entity: str) -> None:
        self.store, self.entity = store, entity

    def changes(self, since: datetime) -> Iterator[Page]:
        return self.store.changed_pages(ORDERS_QUERY, "orders", since, self.entity)

    def load_pages(self, since: datetime, resume: dict[str, Any] | None = None) -> Iterator[Page]:
        """``changes`` for an initial load (``erpsync load orders``): every order updated after
        ``since`` read whole in one bulk query operation, each notice carrying its order."""
        query = bulk_orders_query(f"updated_at:>'{search_time(since)}'")
        return self.store.bulk_pages(query, self.entity, resume, ORDER_CHILDREN)

    def get(self, id: str, snapshot: dict[str, Any] | None = None) -> Order:
        """The order: from ``snapshot`` (a load's bulk read of it, whole) when given, else read."""
        if snapshot is not None and legacy_id(snapshot.get("id")) == str(id):
            return order_from_shopify(snapshot, self.store.settings().amounts)
        return self.store.get_order(id)


class ShopifyOrders(ShopifyOrderChanges):
    """Shop orders, the source of the orders flow (a notice is a light row; the worker reads the
    order whole in one query, or more for an order of over 50 lines)."""

    def __init__(self, store: ShopifyStore) -> None:
        super().__init__(store, "order")

    def find(self, number: str) -> str | None:
        data = self.store.client.query(FIND_ORDER_QUERY, {"query": f"name:'{number}'"}, cost=3)
        nodes = ((data.get("orders") or {}).get("nodes")) or []
        exact = [n for n in nodes if str(n.get("name")) == number]
        return legacy_id(exact[0]["id"]) if exact else None


class ShopifyRefunds:
    """Refunds made on shop orders, the source of the credit-memos flow: a changed order's
    refunds, one notice each (the worker reads the refund whole, ``refund(id:)``)."""

    def __init__(self, store: ShopifyStore) -> None:
        self.store = store

    def changes(self, since: datetime) -> Iterator[Page]:
        def refunds_of(order: dict[str, Any]) -> list[ChangeNotice]:
            rows = order.get("refunds") or []
            if len(rows) >= REFUNDS_PER_ROW:
                whole = self.store.client.query(ALL_REFUNDS_QUERY, {"id": order["id"]}, cost=50).get("order") or {}
                rows = whole.get("refunds") or rows
            return [
                ChangeNotice(
                    source=self.store.name,
                    entity="creditmemo",
                    id=legacy_id(r.get("id")),
                    version=str(r.get("updatedAt") or "") or None,
                    occurred_at=parse_time(r.get("updatedAt")),
                )
                for r in rows
            ]

        return self.store.changed_pages(ORDER_REFUNDS_QUERY, "orders", since, "creditmemo", refunds_of)

    def get(self, id: str) -> CreditMemo:
        client, refund_gid = self.store.client, gid("Refund", id)
        node = client.query(REFUND_QUERY, {"id": refund_gid}, cost=REFUND_COST).get("refund")
        if not isinstance(node, dict):
            raise NotFoundError(f"{self.store.name} refund {id} does not exist", system=self.store.name)
        lines = node.get("refundLineItems") or {}
        while (lines.get("pageInfo") or {}).get("hasNextPage"):
            more = client.query(
                MORE_REFUND_LINES_QUERY, {"id": refund_gid, "after": lines["pageInfo"]["endCursor"]}, cost=REFUND_COST
            )
            lines = ((more.get("refund") or {}).get("refundLineItems")) or {}
            node["refundLineItems"]["nodes"].extend(lines.get("nodes") or [])
        return refund_from_shopify(node, self.store.settings().amounts)


class ShopifyCancellations:
    """Canceling shop orders, the target of the erp-cancellations flow."""

    def __init__(self, store: ShopifyStore) -> None:
        self.store = store

    def cancel(self, order_id: str, comments: list[str] | None = None) -> str:
        """Cancel shop order ``order_id`` (not refunded, stock restocked; ``comments`` as its staff
        note); ``canceled`` once it is, read back. One already canceled is left so."""
        client = self.store.client
        order_gid = gid("Order", order_id)
        state = client.query(ORDER_STATE_QUERY, {"id": order_gid}, cost=3).get("order")
        if not isinstance(state, dict):
            raise NotFoundError(f"{self.store.name} order {order_id} does not exist", system=self.store.name)
        if state.get("cancelledAt"):
            return "canceled"
        note = "\n".join(c for c in comments or [] if c.strip()) or None
        try:
            client.mutate(
                ORDER_CANCEL,
                {"orderId": order_gid, "staffNote": note},
                "orderCancel",
                errors_key="orderCancelUserErrors",
            )
        except UserErrors as exc:
            if any("already been canceled" in str(e.get("message")) for e in exc.errors):
                return "canceled"
            raise
        after = client.query(ORDER_STATE_QUERY, {"id": order_gid}, cost=3).get("order") or {}
        if after.get("cancelledAt"):
            return "canceled"
        # orderCancel runs as a job: not canceled yet is retried, not taken for a refusal
        raise RetryableError(f"{self.store.name} is still canceling order {state.get('name')}", system=self.store.name)


PAYMENT_STATE_QUERY = """
query PaymentState($id: ID!) {
  order(id: $id) {
    id name cancelledAt currencyCode displayFinancialStatus
    totalOutstandingSet { shopMoney { amount } }
  }
}
"""
ORDER_MARK_AS_PAID = """
mutation MarkPaid($input: OrderMarkAsPaidInput!) {
  orderMarkAsPaid(input: $input) {
    order { id displayFinancialStatus totalOutstandingSet { shopMoney { amount } } }
    userErrors { field message }
  }
}
"""
PAID_INVOICE_STATUSES = ("paid", "Closed")
"""What an ERP's invoice source calls an invoice it holds paid in full. The canonical invoice has
no paid flag, only its ERP's status: QuickBooks' source says ``paid`` (and emits no other invoice
as released); Acumatica's says ``Closed`` for a released invoice with no balance left (its ``Open``
one is still owed). UNVERIFIED for Acumatica beyond its sim: a balance closed by a credit memo
rather than a payment is ``Closed`` as well."""


class ShopifyMarkPaid:
    """Orders marked paid (``orderMarkAsPaid``: a manual sale of what is outstanding) from ERP
    invoices the ERP holds paid in full, the target of the invoices flow. Shopify has no invoice:
    the id bound is the order's. ``look_first``: the flow asks ``find`` before ``create``, so an
    order already paid in Shopify is bound without a write."""

    look_first = True

    def __init__(self, store: ShopifyStore) -> None:
        self.store = store

    def _state(self, order_id: str) -> dict[str, Any]:
        node = self.store.client.query(PAYMENT_STATE_QUERY, {"id": gid("Order", order_id)}, cost=3).get("order")
        if not isinstance(node, dict):
            raise NotFoundError(f"{self.store.name} order {order_id} does not exist", system=self.store.name)
        return node

    @staticmethod
    def _outstanding(node: dict[str, Any]) -> Decimal:
        return Decimal(str(((node.get("totalOutstandingSet") or {}).get("shopMoney") or {}).get("amount") or "0"))

    @staticmethod
    def _paid(node: dict[str, Any]) -> bool:
        """Paid in full and not cancelled (``PAID``: nothing outstanding, nothing refunded)."""
        return not node.get("cancelledAt") and node.get("displayFinancialStatus") == "PAID"

    @staticmethod
    def waits(invoice: Invoice) -> str:
        """Why an invoice marks nothing paid yet: the ERP does not hold it paid in full (the invoices
        flow filters it; its payment changes it and rings the flow again)."""
        if invoice.status in PAID_INVOICE_STATUSES:
            return ""
        return (
            f"invoice {invoice.source_id} is {invoice.status or 'of no status'} in the ERP: a Shopify order is "
            f"marked paid only on an invoice paid in full ({', '.join(PAID_INVOICE_STATUSES)})"
        )

    def find(self, order_id: str, ref: str) -> str | None:
        """The order's id once Shopify holds it paid (by us or anyone), else None."""
        return order_id if self._paid(self._state(order_id)) else None

    def create(self, order_id: str, invoice: Invoice, ref: str) -> str:
        """Mark order ``order_id`` paid for ERP invoice ``ref``; refused (naming why) unless the
        invoice is paid in full, the order is unpaid (``PENDING``) and not cancelled, and the
        invoice's amount is what the order has outstanding, to the cent."""
        name = self.store.name
        node = self._state(order_id)
        if self._paid(node):
            return order_id
        number = node.get("name") or order_id
        status = node.get("displayFinancialStatus")
        if node.get("cancelledAt"):
            raise PermanentError(f"{name} order {number} is cancelled ({status}): not marked paid", system=name)
        if invoice.status not in PAID_INVOICE_STATUSES:
            raise PermanentError(
                f"invoice {ref} is {invoice.status or 'of no status'} in the ERP, not a status that says paid in "
                f"full ({', '.join(PAID_INVOICE_STATUSES)}): {name} order {number} is not marked paid",
                system=name,
            )
        if status != "PENDING":
            raise PermanentError(f"{name} order {number} is {status}: only an unpaid order is marked paid", system=name)
        outstanding = self._outstanding(node)
        if invoice.amount != outstanding:
            raise ValidationFailed(
                f"invoice {ref} of {invoice.amount:.2f} is not what {name} order {number} has outstanding "
                f"({outstanding}): not marked paid",
                system=name,
            )
        if invoice.currency and invoice.currency != node.get("currencyCode"):
            raise ValidationFailed(
                f"invoice {ref} is in {invoice.currency}, {name} order {number} in {node.get('currencyCode')}",
                system=name,
            )
        payload = self.store.client.mutate(
            ORDER_MARK_AS_PAID, {"input": {"id": gid("Order", order_id)}}, "orderMarkAsPaid"
        )
        after = payload.get("order") or {}
        if not self._paid(after):
            raise ValidationFailed(
                f"{name} order {number} is {after.get('displayFinancialStatus')} after orderMarkAsPaid, "
                f"{self._outstanding(after)} outstanding",
                system=name,
            )
        return order_id


def _marker_key(ref: str) -> str:
    return ("shipment-" + re.sub(r"[^A-Za-z0-9_-]", "_", ref))[:64]


class ShopifyFulfillments:
    """Fulfilments made from ERP shipments, the target of the shipments flow.

    A fulfilment carries no note of ours, so before it is made the order gets a metafield
    (``erpsync``/``shipment-<ref>``) naming the fulfilments it had and the lines about to ship.
    ``find`` after a lost answer recognises the fulfilment made since with exactly those lines."""

    def __init__(self, store: ShopifyStore) -> None:
        self.store = store

    def _read(self, query: str, variables: dict[str, Any], cost: int) -> dict[str, Any]:
        node = self.store.client.query(query, variables, cost=cost).get("order")
        if not isinstance(node, dict):
            raise NotFoundError(f"{self.store.name} order {variables['id']} does not exist", system=self.store.name)
        return node

    @staticmethod
    def _lines_of(fulfillment: dict[str, Any]) -> dict[str, int]:
        out: dict[str, int] = {}
        for row in (fulfillment.get("fulfillmentLineItems") or {}).get("nodes") or []:
            line = legacy_id((row.get("lineItem") or {}).get("id"))
            out[line] = out.get(line, 0) + int(row.get("quantity") or 0)
        return out

    def _ours(self, node: dict[str, Any]) -> list[str]:
        marker = node.get("metafield")
        if not isinstance(marker, dict):
            return []
        try:
            mark = json.loads(marker.get("value") or "{}")
        except ValueError:
            return []
        before = set(mark.get("before") or [])
        wanted = {str(k): int(v) for k, v in (mark.get("lines") or {}).items()}
        made = sorted(
            (f for f in node.get("fulfillments") or [] if legacy_id(f.get("id")) not in before),
            key=lambda f: str(f.get("createdAt") or ""),
        )
        mine: list[str] = []
        left = dict(wanted)
        for f in made:
            lines = self._lines_of(f)
            if lines and all(left.get(k, 0) >= q for k, q in lines.items()):
                mine.append(legacy_id(f.get("id")))
                for k, q in lines.items():
                    left[k] -= q
            if not any(left.values()):
                return mine
        return []

    def find(self, order_id: str, ref: str) -> str | None:
        node = self._read(MARKER_QUERY, {"id": gid("Order", order_id), "key": _marker_key(ref)}, MARKER_COST)
        ours = self._ours(node)
        return ",".join(ours) if ours else None

    def create(self, order_id: str, shipment: Shipment, ref: str, carrier_code: str) -> str:
        """Fulfil the shipment's lines from the order's open fulfillment orders (one
        ``fulfillmentCreate`` per location), with its tracking numbers; the fulfilment ids."""
        cfg = self.store.settings()
        node = self._read(OPEN_LINES_QUERY, {"id": gid("Order", order_id)}, OPEN_LINES_COST)
        if node.get("cancelledAt"):
            raise ValidationFailed(
                f"{self.store.name} order {node.get('name')} is canceled: shipment {ref} is not fulfilled there"
            )
        wanted: dict[str, int] = {}
        for line in shipment.lines:
            if not line.store_line_id:
                raise ValidationFailed(f"shipment {ref}: line {line.sku} names no {self.store.name} order line")
            qty = Decimal(line.qty)
            if qty != qty.to_integral_value():
                raise ValidationFailed(f"shipment {ref}: {line.sku} ships {qty}, and Shopify fulfils whole units")
            wanted[legacy_id(line.store_line_id)] = wanted.get(legacy_id(line.store_line_id), 0) + int(qty)
        by_location: dict[str, dict[str, list[dict[str, Any]]]] = {}
        left = dict(wanted)
        for fo in (node.get("fulfillmentOrders") or {}).get("nodes") or []:
            if fo.get("status") not in OPEN_FO:
                continue
            location = str((((fo.get("assignedLocation") or {}).get("location")) or {}).get("id") or "")
            if cfg.location_id and location != cfg.location_id:
                continue
            for item in (fo.get("lineItems") or {}).get("nodes") or []:
                line_id = legacy_id((item.get("lineItem") or {}).get("id"))
                take = min(left.get(line_id, 0), int(item.get("remainingQuantity") or 0))
                if take > 0:
                    by_location.setdefault(location, {}).setdefault(fo["id"], []).append(
                        {"id": item["id"], "quantity": take}
                    )
                    left[line_id] -= take
        short = {k: v for k, v in left.items() if v > 0}
        if short:
            detail = ", ".join(f"line {k}: {v} more than Shopify has left to fulfil" for k, v in short.items())
            raise ValidationFailed(
                f"shipment {ref} cannot be fulfilled on {self.store.name} order {node.get('name')}: {detail} "
                "(fulfilled by hand in Shopify already?)",
                system=self.store.name,
            )
        before = [legacy_id(f.get("id")) for f in node.get("fulfillments") or []]
        marker = {
            "ownerId": node["id"],
            "namespace": "erpsync",
            "key": _marker_key(ref),
            "type": "json",
            "value": json.dumps({"ref": ref, "before": before, "lines": wanted}),
        }
        self.store.client.mutate(METAFIELDS_SET, {"metafields": [marker]}, "metafieldsSet")
        tracks = [t for t in shipment.tracks if t.number]
        company = next((t.carrier or t.title for t in tracks if t.carrier or t.title), None) or carrier_code or None
        made: list[str] = []
        for groups in by_location.values():
            fulfillment: dict[str, Any] = {
                "notifyCustomer": cfg.notify_customer,
                "lineItemsByFulfillmentOrder": [
                    {"fulfillmentOrderId": fo_id, "fulfillmentOrderLineItems": items} for fo_id, items in groups.items()
                ],
            }
            if tracks:
                fulfillment["trackingInfo"] = {"company": company, "numbers": [t.number for t in tracks]}
            payload = self.store.client.mutate(FULFILLMENT_CREATE, {"fulfillment": fulfillment}, "fulfillmentCreate")
            made.append(legacy_id((payload.get("fulfillment") or {}).get("id")))
        return ",".join(made)


class ShopifyCustomers:
    """Customers, both ways. Email (case-insensitive) is the identity."""

    def __init__(self, store: ShopifyStore) -> None:
        self.store = store

    def changes(self, since: datetime) -> Iterator[Page]:
        return self.store.changed_pages(CUSTOMERS_QUERY, "customers", since, "customer")

    def load_pages(self, since: datetime, resume: dict[str, Any] | None = None) -> Iterator[Page]:
        """``changes`` for an initial load (``erpsync load customers``): every customer updated
        after ``since`` in one bulk query operation, not page by page."""
        search = json.dumps(f"updated_at:>'{search_time(since)}'")
        query = f"{{ customers(query: {search}) {{ edges {{ node {{ id updatedAt }} }} }} }}"
        return self.store.bulk_pages(query, "customer", resume)

    def _read(self, id: str) -> dict[str, Any]:
        node = self.store.client.query(CUSTOMER_QUERY, {"id": gid("Customer", id)}, cost=20).get("customer")
        if not isinstance(node, dict):
            raise NotFoundError(f"{self.store.name} customer {id} does not exist", system=self.store.name)
        return node

    def get(self, id: str) -> Customer:
        return customer_from_shopify(self._read(id))

    def find(self, email: str) -> list[Customer]:
        text = email.strip().lower().replace("'", "\\'")
        data = self.store.client.query(FIND_CUSTOMERS_QUERY, {"query": f"email:'{text}'"}, cost=40)
        nodes = ((data.get("customers") or {}).get("nodes")) or []
        return [customer_from_shopify(n) for n in nodes if str(n.get("email") or "").lower() == email.strip().lower()]

    def create(self, customer: Customer) -> Customer:
        try:
            payload = self.store.client.mutate(CUSTOMER_CREATE, {"input": customer_input(customer)}, "customerCreate")
        except UserErrors as exc:
            # made meanwhile (the shopper signed up, or our own create whose answer was lost)
            if not any("has already been taken" in str(e.get("message")) for e in exc.errors):
                raise
            found = self.find(customer.email)
            if len(found) != 1:
                raise RetryableError(
                    f"{self.store.name} says {customer.email} is taken but its search does not show it yet",
                    system=self.store.name,
                ) from exc
            return found[0]
        return customer_from_shopify(payload.get("customer"))

    def update(self, id: str, customer: Customer, current: Customer | None = None) -> Customer:
        record = self._read(id)
        body = dict(customer_input(customer, record), id=gid("Customer", id))
        payload = self.store.client.mutate(CUSTOMER_UPDATE, {"input": body}, "customerUpdate")
        return customer_from_shopify(payload.get("customer"))


class ShopifySystem:
    """A Shopify connection: its ports by entity and direction."""

    kind = "shopify"

    def __init__(self, client: ShopifyClient, connection: str, settings: Callable[[], ShopifySettings]) -> None:
        self.connection = connection
        self.client = client
        store = ShopifyStore(client, connection, settings)
        customers = ShopifyCustomers(store)
        self._ports: dict[tuple[str, str], object] = {
            ("order", "source"): ShopifyOrders(store),
            ("payment", "source"): ShopifyOrderChanges(store, "payment"),
            ("creditmemo", "source"): ShopifyRefunds(store),
            ("cancellation", "source"): ShopifyOrderChanges(store, "cancellation"),
            ("cancellation", "target"): ShopifyCancellations(store),
            ("shipment", "target"): ShopifyFulfillments(store),
            ("invoice", "target"): ShopifyMarkPaid(store),
            ("customer", "source"): customers,
            ("customer", "target"): customers,
            ("product", "target"): ShopifyProducts(client, connection, settings),
            ("price", "target"): ShopifyPrices(client, connection, settings),
            ("stock", "target"): ShopifyStock(client, connection, settings),
        }

    def port(self, entity: str, direction: str) -> Any:
        try:
            return self._ports[(entity, direction)]
        except KeyError:
            raise NotFoundError(f"shopify serves no {entity} {direction}", system="shopify") from None
