"""Magento 2's REST API behind erpsync's ports: orders (source), shipments and invoices
(targets), customers (both ways). ``MagentoSystem`` hands each out by entity and direction."""

from __future__ import annotations

import copy
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from erpsync.errors import NotFoundError, RetryableError, ValidationFailed
from erpsync.model import (
    Books,
    ChangeNotice,
    CreditMemo,
    Customer,
    Invoice,
    Order,
    ReturnRequest,
    Shipment,
    StoreOrderRef,
    StoreRefundDraft,
    StoreRefundRef,
    StoreReturnState,
)
from erpsync.systems.magento.client import Filter, MagentoClient
from erpsync.systems.magento.mapping import (
    Amounts,
    credit_memo_from_magento,
    customer_from_magento,
    customer_to_magento,
    document_items,
    format_timestamp,
    has_marker,
    order_comments,
    order_entity,
    order_from_magento,
    parse_timestamp,
    received_items,
    ref_marker,
    refund_body,
    refund_ref,
    return_from_magento,
    return_version,
)
from erpsync.systems.magento.settings import MagentoSettings
from erpsync.systems.ports import Page

log = logging.getLogger("erpsync.magento")

SNAPSHOT_MAX_BYTES = 200_000
"""A polled order rides in its notice up to this size (an SQS message holds 256 KiB; a big order's
worker reads it instead). A typical order is 10 to 40 KB."""


def _id(order_id: str) -> int:
    try:
        value = int(str(order_id))
    except ValueError as exc:
        raise NotFoundError(f"magento order id {order_id!r} is not numeric", system="magento") from exc
    if value <= 0:
        raise NotFoundError(f"magento order id {order_id!r} does not exist", system="magento")
    return value


def _new_id(result: Any, what: str) -> str:
    text = str(result).strip().strip('"')
    if not text.isdigit():
        raise RetryableError(f"magento answered {what} with {result!r}, not an id", system="magento")
    return text


class MagentoStore:
    """The online store, as Magento 2 shows it through REST."""

    name = "magento"

    def __init__(
        self,
        client: MagentoClient,
        *,
        page_size: int = 100,
        connection: str = "magento",
        amounts: Callable[[], str] = lambda: "base",
        notify_invoice: Callable[[], bool] = lambda: False,
    ) -> None:
        self.client = client
        self.notify_invoice = notify_invoice
        """Whether an invoice made here e-mails the customer (``MagentoSettings.notify_invoice``)."""
        self.page_size = page_size
        self.name = connection
        self.amounts = amounts
        """Which amounts orders are read in (``MagentoSettings.amounts``, read at each use)."""

    def order_pages(self, since: datetime, entity: str = "order") -> Iterator[Page]:
        """Pages of notices (of ``entity``: an order's payments are read from the order too) for
        orders with ``updated_at`` after ``since``, oldest first, read by
        keyset (see ``MagentoClient.changed_pages``: an order updated during the poll is read again
        at its new version, and moves no other order out of it). Each page's checkpoint is the
        newest ``updated_at`` up to which every order has been read: never the second a page ends
        in while more of it may follow, but the one before it in the page, or None."""
        read_at = datetime.now(UTC)  # before the first page: a snapshot is never taken for fresher than it is
        for rows, done in self.client.changed_pages("/V1/orders", format_timestamp(since), page_size=self.page_size):
            notices: list[ChangeNotice] = []
            for row in rows:
                small = len(json.dumps(row, separators=(",", ":"), default=str)) <= SNAPSHOT_MAX_BYTES
                notices.append(
                    ChangeNotice(
                        source=self.name,
                        entity=entity,
                        id=str(row.get("entity_id")),
                        version=str(row.get("updated_at") or ""),
                        snapshot=row if small else None,
                        read_at=read_at if small else None,
                    )
                )
            yield Page(notices, parse_timestamp(done))

    def changed_orders(self, since: datetime) -> list[ChangeNotice]:
        """Every order notice since ``since`` (all pages, oldest first)."""
        return [n for page in self.order_pages(since) for n in page.notices]

    def get_order(self, order_id: str, snapshot: dict[str, Any] | None = None) -> Order:
        if snapshot is not None and str(snapshot.get("entity_id")) == str(_id(order_id)):
            return order_from_magento(snapshot, self.amounts())
        return order_from_magento(self.client.get(f"/V1/orders/{_id(order_id)}"), self.amounts())

    def find_order_id(self, number: str) -> str | None:
        page = self.client.search_page("/V1/orders", [Filter("increment_id", number)], page_size=1)
        items = page.get("items") or []
        return str(items[0]["entity_id"]) if items else None

    def find_shipment(self, order_id: str, ref: str) -> str | None:
        rows = self.client.search("/V1/shipments", [Filter("order_id", _id(order_id))], page_size=self.page_size)
        return next((str(r["entity_id"]) for r in rows if has_marker(r, ref)), None)

    def create_shipment(self, order_id: str, shipment: Shipment, ref: str, carrier_code: str) -> str:
        body = {
            "items": document_items(shipment.lines, f"shipment {ref}"),
            "notify": True,
            "appendComment": True,
            "comment": {"comment": f"Shipped from the ERP {ref_marker(ref)}", "is_visible_on_front": 0},
            "tracks": [
                {"track_number": t.number, "title": t.title or t.carrier or carrier_code, "carrier_code": carrier_code}
                for t in shipment.tracks
                if t.number
            ],
        }
        return _new_id(self.client.post(f"/V1/order/{_id(order_id)}/ship", body), "ship")

    def find_invoice(self, order_id: str, ref: str) -> str | None:
        rows = self.client.search("/V1/invoices", [Filter("order_id", _id(order_id))], page_size=self.page_size)
        return next((str(r["entity_id"]) for r in rows if has_marker(r, ref)), None)

    def create_invoice(self, order_id: str, invoice: Invoice, ref: str) -> str:
        body = {
            "capture": True,
            "items": document_items(invoice.lines, f"invoice {ref}"),
            "notify": self.notify_invoice(),
            "appendComment": True,
            "comment": {"comment": f"Invoiced in the ERP {ref_marker(ref)}", "is_visible_on_front": 0},
        }
        return _new_id(self.client.post(f"/V1/order/{_id(order_id)}/invoice", body), "invoice")


class MagentoOrderChanges:
    """An order-level fact read from the store's orders, one notice per changed order, as a change of
    ``entity``: what it captured (``payment``: ``Order.paid``, ``Order.transaction_id``) or that it
    was canceled (``cancellation``: ``Order.state``)."""

    def __init__(self, store: MagentoStore, entity: str) -> None:
        self.store, self.entity = store, entity

    def changes(self, since: datetime) -> Iterator[Page]:
        return self.store.order_pages(since, entity=self.entity)

    def get(self, id: str, snapshot: dict[str, Any] | None = None) -> Order:
        return self.store.get_order(id, snapshot)


class MagentoOrders(MagentoOrderChanges):
    """Store orders, the source of the orders flow."""

    def __init__(self, store: MagentoStore) -> None:
        super().__init__(store, "order")

    def books(self, since: datetime) -> Iterator[Books]:
        """The money of every order created after ``since``: charged, captured, refunded (in the
        currency the connection pushes), page by page."""
        rows = self.store.client.search(
            "/V1/orders",
            [Filter("created_at", format_timestamp(since), "gt")],
            sort=[("entity_id", "ASC")],
            page_size=self.store.page_size,
        )
        for row in rows:
            money = Amounts(row, row.get("increment_id"), in_base=self.store.amounts() != "order")
            yield Books(
                number=str(row.get("increment_id") or ""),
                ref=str(row.get("entity_id")),
                total=money.get(row, "grand_total"),
                paid=money.get(row, "total_paid"),
                refunded=money.get(row, "total_refunded"),
                currency=money.currency,
                state=str(row.get("state") or ""),
            )

    def find(self, number: str) -> str | None:
        return self.store.find_order_id(number)


class MagentoCreditMemos:
    """Store credit memos (refunds), the source of the credit-memos flow."""

    def __init__(self, store: MagentoStore) -> None:
        self.store = store

    def changes(self, since: datetime) -> Iterator[Page]:
        """Credit memos with ``updated_at`` after ``since``, by keyset (as ``order_pages``)."""
        client = self.store.client
        for rows, done in client.changed_pages(
            "/V1/creditmemos", format_timestamp(since), page_size=self.store.page_size
        ):
            notices = [
                ChangeNotice(
                    source=self.store.name,
                    entity="creditmemo",
                    id=str(row.get("entity_id")),
                    version=str(row.get("updated_at") or ""),
                )
                for row in rows
            ]
            yield Page(notices, parse_timestamp(done))

    def get(self, id: str) -> CreditMemo:
        """The credit memo and, for its customer and lines, its order (two reads)."""
        memo = self.store.client.get(f"/V1/creditmemo/{_id(id)}")
        order = self.store.client.get(f"/V1/orders/{_id(str(memo.get('order_id')))}")
        return credit_memo_from_magento(memo, order, self.store.amounts())


class MagentoRefunds:
    """Offline credit memos made from ERP credit memos, the target of the erp-credit-memos flow."""

    def __init__(self, store: MagentoStore) -> None:
        self.store = store

    def find(self, order_id: str, ref: str) -> StoreRefundRef | None:
        """The credit memo of the order that carries our marker for ERP credit memo ``ref``, if any."""
        rows = self.store.client.search(
            "/V1/creditmemos", [Filter("order_id", _id(order_id))], page_size=self.store.page_size
        )
        row = next((r for r in rows if has_marker(r, ref)), None)
        return refund_ref(row, self.store.amounts() != "order") if row else None

    def create(self, draft: StoreRefundDraft) -> StoreRefundRef:
        """An offline credit memo on the order of exactly the draft's total (three requests: the
        order, the refund, the credit memo read back)."""
        in_base = self.store.amounts() != "order"
        client = self.store.client
        order = client.get(f"/V1/orders/{_id(draft.order_id)}")
        body = refund_body(order, draft, in_base)
        memo_id = _new_id(client.post(f"/V1/order/{_id(draft.order_id)}/refund", body), "refund")
        return refund_ref(client.get(f"/V1/creditmemo/{memo_id}"), in_base)


class MagentoReturns:
    """Adobe Commerce returns (RMAs): the source of the returns flow, and the target the erp-returns
    flow tells what came back. Magento Open Source has no ``/V1/returns``: its poll finds none."""

    def __init__(self, store: MagentoStore, look_back_days: Callable[[], int]) -> None:
        self.store = store
        self.look_back_days = look_back_days
        self._no_rma_said = False

    def changes(self, since: datetime) -> Iterator[Page]:
        """Every return requested in the look-back window, by keyset on ``date_requested`` (a return
        has no modification time, so ``since`` cannot narrow it). A notice's version is the
        return's status and quantities: the poll queues a return again only when they move. The
        pages prove no checkpoint (the window is read whole at every poll)."""
        start = datetime.now(UTC) - timedelta(days=self.look_back_days())
        client = self.store.client
        try:
            for rows, _done in client.changed_pages(
                "/V1/returns", format_timestamp(start), page_size=self.store.page_size, time_field="date_requested"
            ):
                read_at = datetime.now(UTC)
                notices = [
                    ChangeNotice(
                        source=self.store.name,
                        entity="return",
                        id=str(row.get("entity_id")),
                        version=return_version(row),
                        snapshot=row,
                        read_at=read_at,
                    )
                    for row in rows
                ]
                yield Page(notices, None)
        except NotFoundError as exc:
            if "route" not in str(exc).lower():
                raise
            if not self._no_rma_said:
                self._no_rma_said = True
                log.warning(
                    "magento has no /V1/returns (Magento Open Source has no RMA): the returns flow has nothing to read",
                    extra={"connection": self.store.name},
                )

    def get(self, id: str, snapshot: dict[str, Any] | None = None) -> ReturnRequest:
        """The return (as polled, or read: a search row without its items is read whole) and its
        order, for the prices (one or two reads)."""
        client = self.store.client
        rma = snapshot if snapshot is not None and str(snapshot.get("entity_id")) == id else None
        if rma is None or not rma.get("items"):
            rma = client.get(f"/V1/returns/{_id(id)}")
        order = client.get(f"/V1/orders/{_id(str(rma.get('order_id')))}")
        return return_from_magento(rma, order, self.store.amounts())

    def receive(self, id: str, received: dict[str, Decimal], note: str) -> StoreReturnState:
        """Write what came back on return ``id`` (its items' ``qty_returned``, status ``received``)
        and add ``note`` as a comment unless one carries it; read back. Nothing is written when the
        return already says so (a retry after a lost answer writes nothing twice)."""
        client = self.store.client
        rma = client.get(f"/V1/returns/{_id(id)}")
        items = received_items(rma, received)
        if items is not None:
            rma = client.put(f"/V1/returns/{_id(id)}", {"rmaDataObject": {**rma, "items": items}})
        if not any(note in str(c.get("comment") or "") for c in rma.get("comments") or [] if isinstance(c, dict)):
            client.post(
                f"/V1/returns/{_id(id)}/comments",
                {"data": {"comment": note, "visible_on_front": False, "customer_notified": False}},
            )
        return StoreReturnState(
            id=str(rma.get("entity_id")), number=str(rma.get("increment_id") or ""), status=str(rma.get("status") or "")
        )


class MagentoOrderTarget:
    """Store orders made from orders entered in the ERP, the target of the erp-orders flow."""

    def __init__(self, store: MagentoStore) -> None:
        self.store = store

    def find(self, erp_ref: str) -> StoreOrderRef | None:
        """The store order made for ERP order ``erp_ref`` (its ``ext_order_id``), if any."""
        page = self.store.client.search_page("/V1/orders", [Filter("ext_order_id", erp_ref)], page_size=1)
        items = page.get("items") or []
        return _store_ref(items[0]) if items else None

    def create(
        self, order: Order, *, erp_ref: str, customer: Customer, shipping_method: str, payment_method: str, comment: str
    ) -> StoreOrderRef:
        """Save the ERP's order as it is, for the store ``customer`` (``POST /V1/orders``: Magento
        computes no totals and moves no stock)."""
        entity = order_entity(
            order,
            erp_ref=erp_ref,
            customer_id=customer.source_id,
            group_id=int(customer.group) if customer.group and customer.group.isdigit() else 1,
            shipping_method=shipping_method,
            payment_method=payment_method,
            comment=comment,
        )
        return _store_ref(self.store.client.post("/V1/orders", {"entity": entity}))


def _store_ref(order: Any) -> StoreOrderRef:
    if not isinstance(order, dict) or order.get("entity_id") is None:
        raise ValidationFailed(f"magento answered no order: {str(order)[:200]}", system="magento")
    top = [it for it in order.get("items") or [] if it.get("parent_item_id") is None]
    return StoreOrderRef(
        id=str(order["entity_id"]),
        number=str(order.get("increment_id") or ""),
        item_ids=[str(it.get("item_id")) for it in top],
    )


class MagentoCancellations:
    """Canceling store orders, the target of the erp-cancellations flow."""

    def __init__(self, store: MagentoStore) -> None:
        self.store = store

    def cancel(self, order_id: str, comments: list[str] | None = None) -> str:
        """Cancel store order ``order_id``; its state after, read back (Magento's cancel has answered
        true without canceling: #4479, #10803). Once it is canceled, each of ``comments`` the order's
        history does not hold yet is added (so a retry adds none twice)."""
        client = self.store.client
        client.post(f"/V1/orders/{_id(order_id)}/cancel", {})
        order = client.get(f"/V1/orders/{_id(order_id)}")
        state = str(order.get("state") or "")
        if state == "canceled":
            held = {c.text for c in order_comments(order)}
            for text in comments or []:
                if text.strip() not in held:
                    history = {"comment": text, "is_customer_notified": 0, "is_visible_on_front": 0}
                    client.post(f"/V1/orders/{_id(order_id)}/comments", {"statusHistory": history})
        return state


class MagentoShipments:
    def __init__(self, store: MagentoStore) -> None:
        self.store = store

    def find(self, order_id: str, ref: str) -> str | None:
        return self.store.find_shipment(order_id, ref)

    def create(self, order_id: str, shipment: Shipment, ref: str, carrier_code: str) -> str:
        return self.store.create_shipment(order_id, shipment, ref, carrier_code)


class MagentoInvoices:
    def __init__(self, store: MagentoStore) -> None:
        self.store = store

    def find(self, order_id: str, ref: str) -> str | None:
        return self.store.find_invoice(order_id, ref)

    def create(self, order_id: str, invoice: Invoice, ref: str) -> str:
        return self.store.create_invoice(order_id, invoice, ref)


DUPLICATE_EMAIL = "customer with the same email address already exists"
"""What Magento says (400) to a create whose email has an account in the website."""


class MagentoCustomers:
    """Customer accounts, both ways. Email (lower-case) within the configured website is the identity."""

    RECENT = 256
    """Customer records kept as last read, so an update right after a read sends them back whole
    without reading them again (a Magento PUT replaces the aggregate)."""

    def __init__(self, client: MagentoClient, settings: Callable[[], MagentoSettings], connection: str) -> None:
        self.client, self.settings, self.connection = client, settings, connection
        self._recent: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def _remember(self, record: dict[str, Any]) -> None:
        with self._lock:
            self._recent[str(record.get("id"))] = record
            self._recent.move_to_end(str(record.get("id")))
            while len(self._recent) > self.RECENT:
                self._recent.popitem(last=False)

    def _as_read(self, id: str, version: str | None) -> dict[str, Any] | None:
        """The record as last read, if it is still the version the caller saw."""
        with self._lock:
            found = self._recent.get(str(id))
        if found is not None and version and str(found.get("updated_at") or "") == version:
            return copy.deepcopy(found)
        return None

    def changes(self, since: datetime) -> Iterator[Page]:
        """Pages of notices for the website's customers with ``updated_at`` after ``since``, oldest
        first, read by keyset like the orders (the search filters on ``entity_id``; rows call it ``id``)."""
        cfg = self.settings()
        for rows, done in self.client.changed_pages(
            "/V1/customers/search",
            format_timestamp(since),
            [Filter("website_id", cfg.website_id)],
            page_size=cfg.page_size,
            row_id="id",
        ):
            notices = [
                ChangeNotice(
                    source=self.connection,
                    entity="customer",
                    id=str(r.get("id")),
                    version=str(r.get("updated_at") or "") or None,
                    occurred_at=parse_timestamp(r.get("updated_at")),
                )
                for r in rows
            ]
            yield Page(notices, parse_timestamp(done))

    def _read(self, id: str) -> dict[str, Any]:
        if not str(id).isdigit():
            raise NotFoundError(f"magento customer id {id!r} is not numeric", system="magento")
        record = self.client.get(f"/V1/customers/{int(id)}")
        if not isinstance(record, dict):
            raise RetryableError(f"magento answered customer {id} with {type(record).__name__}", system="magento")
        self._remember(record)
        return record

    def get(self, id: str) -> Customer:
        return customer_from_magento(self._read(id))

    def find(self, email: str) -> list[Customer]:
        cfg = self.settings()
        rows = self.client.search(
            "/V1/customers/search",
            [Filter("email", email.strip().lower()), Filter("website_id", cfg.website_id)],
            page_size=10,
        )
        return [customer_from_magento(r) for r in rows]

    def create(self, customer: Customer) -> Customer:
        cfg = self.settings()
        body = customer_to_magento(customer, None, website_id=cfg.website_id, store_id=cfg.store_id)
        try:
            saved = self.client.post("/V1/customers", {"customer": body})
        except ValidationFailed as exc:
            # made meanwhile (the shopper registered, or our own create whose answer was lost): that
            # account as it is; the flow links it and brings it in step
            found = self.find(customer.email) if DUPLICATE_EMAIL in str(exc) else []
            if len(found) != 1:
                raise
            return found[0]
        if not isinstance(saved, dict):
            raise RetryableError(f"magento answered the customer create with {saved!r}", system="magento")
        return customer_from_magento(saved)

    def update(self, id: str, customer: Customer, current: Customer | None = None) -> Customer:
        cfg = self.settings()
        # a PUT replaces the aggregate: send back whole what we do not sync (as just read, or read now)
        record = self._as_read(id, current.version if current else None) or self._read(id)
        body = customer_to_magento(customer, record, website_id=cfg.website_id, store_id=cfg.store_id)
        saved = self.client.put(f"/V1/customers/{int(id)}", {"customer": body})
        if not isinstance(saved, dict):
            raise RetryableError(f"magento answered the customer update with {saved!r}", system="magento")
        self._remember(saved)
        return customer_from_magento(saved)


class MagentoSystem:
    """A Magento connection: its ports by entity and direction."""

    kind = "magento"

    def __init__(self, client: MagentoClient, connection: str, settings: Callable[[], MagentoSettings]) -> None:
        self.connection = connection
        self.client = client
        self.store = MagentoStore(
            client,
            page_size=settings().page_size,
            connection=connection,
            amounts=lambda: settings().amounts,
            notify_invoice=lambda: settings().notify_invoice,
        )
        self._ports: dict[tuple[str, str], object] = {
            ("order", "source"): MagentoOrders(self.store),
            ("order", "target"): MagentoOrderTarget(self.store),
            ("payment", "source"): MagentoOrderChanges(self.store, "payment"),
            ("cancellation", "source"): MagentoOrderChanges(self.store, "cancellation"),
            ("cancellation", "target"): MagentoCancellations(self.store),
            ("creditmemo", "source"): MagentoCreditMemos(self.store),
            ("creditmemo", "target"): MagentoRefunds(self.store),
            ("shipment", "target"): MagentoShipments(self.store),
            ("invoice", "target"): MagentoInvoices(self.store),
            ("return", "source"): MagentoReturns(self.store, lambda: settings().returns_look_back_days),
            ("customer", "source"): MagentoCustomers(client, settings, connection),
        }
        self._ports[("customer", "target")] = self._ports[("customer", "source")]
        self._ports[("return", "target")] = self._ports[("return", "source")]
        self.settings = settings

    def port(self, entity: str, direction: str) -> Any:
        if (entity, direction) not in self._ports and direction == "target":
            self._catalog_port(entity)
        try:
            return self._ports[(entity, direction)]
        except KeyError:
            raise NotFoundError(f"magento serves no {entity} {direction}", system="magento") from None

    def _catalog_port(self, entity: str) -> None:
        """The catalog's ports, made when first asked for (the order flows never import them)."""
        from erpsync.systems.magento import catalog

        makers: dict[str, Callable[[], object]] = {
            "attribute": lambda: catalog.MagentoAttributes(self.client),
            "category": lambda: catalog.MagentoCategories(self.client, self.settings),
            "product": lambda: catalog.MagentoProducts(self.client),
            "price": lambda: catalog.MagentoPrices(self.client),
            "stock": lambda: catalog.MagentoStock(self.client, self.settings),
        }
        if entity in makers:
            self._ports[(entity, "target")] = makers[entity]()
