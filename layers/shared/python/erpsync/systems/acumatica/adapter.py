"""Acumatica's contract-based REST API behind erpsync's ports: sales orders (target), shipments
and invoices (sources), customers (both ways). ``AcumaticaSystem`` hands each out.

Orders are found by ``CustomerOrder`` (the store's order number) and created with one PUT; the
line map rides in each line's ``LineDescription`` (see ``mapping``). Changes are read by
``LastModifiedDateTime`` in time windows (Acumatica has no ``$orderby``, so ``$skip`` pages are
only stable inside a window): the first asks for the whole range (a quiet poll is one request),
each next is sized from what the last one held so that it fits a page, a full window is cut at its
median change time, and a checkpoint follows each window.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from erpsync.errors import NotFoundError, PermanentError, ValidationFailed
from erpsync.model import (
    Books,
    ChangeNotice,
    CreditMemoDraft,
    CreditNote,
    Customer,
    ErpCreditMemo,
    ErpOrderRef,
    ErpPayment,
    ErpReturnRef,
    Invoice,
    Order,
    OrderStatus,
    PaymentDraft,
    ReturnDraft,
    ReturnReceipt,
    SalesOrderDraft,
    Shipment,
)
from erpsync.systems.acumatica import mapping
from erpsync.systems.acumatica.client import AcumaticaClient, AlreadyExists
from erpsync.systems.acumatica.settings import AcumaticaSettings
from erpsync.systems.ports import Page

PAGE_SIZE = 100
MIN_WINDOW = timedelta(seconds=1)
FILL = 0.75
"""A time window is sized to hold about this share of a page (the rest is room for a busier stretch)."""
GROW = 16
"""The most a window grows over the last one (after an empty one: a quiet stretch is crossed in a few requests)."""
SHRINK = 4
"""The most a window shrinks under the last one (after one read by ``$skip``)."""
CUSTOMER_EXPAND = "MainContact/Address,ShippingContact/Address"


ORDER_NBR_MAX = 15
"""Acumatica's ``OrderNbr`` holds at most 15 characters."""


class NumberTaken(PermanentError):
    """The store's number is already an Acumatica order number of another order."""

    error_type = "number_taken"


def odata_string(text: str) -> str:
    """``text`` as an OData string literal (quotes doubled)."""
    return "'" + text.replace("'", "''") + "'"


def odata_time(moment: datetime) -> str:
    """``moment`` as a ``datetimeoffset'...'`` literal (naive taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return f"datetimeoffset'{moment.isoformat()}'"


class AcumaticaErp:
    """Acumatica as the ERP of the order flows. Settings are read at each use (a warm worker
    follows changes); ``order_type`` etc. may be given directly for scripts and tests."""

    name = "acumatica"

    def __init__(
        self,
        client: AcumaticaClient,
        *,
        settings: Callable[[], AcumaticaSettings] | None = None,
        order_type: str = "SO",
        customer_class: str = "DEFAULT",
        warehouse_id: str | None = None,
        page_size: int = PAGE_SIZE,
        connection: str = "acumatica",
    ) -> None:
        self.client = client
        if settings is None:
            fixed = AcumaticaSettings(
                order_type=order_type, customer_class=customer_class, warehouse_id=warehouse_id, page_size=page_size
            )
            settings = lambda: fixed  # noqa: E731
        self.settings = settings
        self.name = connection

    @property
    def order_type(self) -> str:
        return self.settings().order_type

    @property
    def page_size(self) -> int:
        return self.settings().page_size

    # -- customers the orders flow needs -------------------------------------------------------

    def find_customer(self, email: str) -> str | None:
        rows = self.client.get_list(
            "Customer", filter=f"MainContact/Email eq {odata_string(email)}", select="CustomerID", top=1
        )
        return str(mapping.value(rows[0], "CustomerID")) if rows and mapping.value(rows[0], "CustomerID") else None

    def create_customer(self, customer: Customer, customer_id: str) -> str:
        record = mapping.customer_record(customer, customer_id, customer_class=self.settings().customer_class)
        try:
            saved = self.client.put("Customer", record, select="CustomerID", if_none_match=True)
        except AlreadyExists:
            return customer_id
        return str(mapping.value(saved, "CustomerID", customer_id))

    # -- orders --------------------------------------------------------------------------------

    def find_order(self, number: str) -> ErpOrderRef | None:
        rows = self.client.get_list(
            "SalesOrder",
            filter=f"OrderType eq {odata_string(self.order_type)} and CustomerOrder eq {odata_string(number)}",
            expand="Details",
            top=1,
        )
        return self._ref(rows[0]) if rows else None

    def create_order(self, draft: SalesOrderDraft) -> ErpOrderRef:
        cfg = self.settings()
        record = mapping.sales_order_record(draft, order_type=cfg.order_type, warehouse_id=cfg.warehouse_id)
        if cfg.keep_store_number:
            saved = self._create_numbered(draft, record, cfg.order_type)
        else:
            saved = self.client.put("SalesOrder", record, expand="Details")
        ref = self._ref(saved)
        if len(ref.line_map) != len(draft.lines):
            # the ERP renumbered or dropped the marker: fall back on the line order we sent
            numbers = sorted(int(mapping.value(d, "LineNbr", 0)) for d in saved.get("Details") or [])
            ref.line_map = {str(n): line.line_id for n, line in zip(numbers, draft.lines, strict=False)}
        return ref

    def _create_numbered(self, draft: SalesOrderDraft, record: dict[str, Any], order_type: str) -> dict[str, Any]:
        """The order saved under the store's number, insert only (a PUT with a key that exists would
        update that order): a number taken by another order fails; one taken by this store order (an
        earlier create whose answer was lost) is that order."""
        if len(draft.number) > ORDER_NBR_MAX:
            raise ValidationFailed(
                f"store order number {draft.number} is longer than Acumatica's OrderNbr ({ORDER_NBR_MAX} characters): "
                "keep_store_number cannot keep it",
                system=self.name,
            )
        record = {**record, "OrderNbr": mapping.v(draft.number)}
        try:
            return self.client.put("SalesOrder", record, expand="Details", if_none_match=True)
        except AlreadyExists:
            held = self.client.get_record("SalesOrder", [order_type, draft.number], expand="Details")
            if str(mapping.value(held, "CustomerOrder", "")) == draft.number:
                return held
            raise NumberTaken(
                f"Acumatica {order_type} order {draft.number} already exists for customer order "
                f"{mapping.value(held, 'CustomerOrder', '') or '(none)'}: store order {draft.number} cannot keep its "
                f"number (keep_store_number); renumber that order or use an order type of its own",
                system=self.name,
            ) from None

    def _ref(self, record: dict[str, Any]) -> ErpOrderRef:
        return ErpOrderRef(
            id=str(record.get("id", "")),
            number=str(mapping.value(record, "OrderNbr", "")),
            order_type=str(mapping.value(record, "OrderType", self.order_type)),
            status=str(mapping.value(record, "Status", "")),
            line_map=mapping.line_map(record.get("Details")),
        )

    # -- changes, in time windows ----------------------------------------------------------------

    def pages(self, entity: str, key: str, condition: str, since: datetime, kind: str) -> Iterator[Page]:
        """Pages of notices for ``entity`` records changed after ``since`` (and matching ``condition``)."""
        return self.pages_of([(entity, key, condition, "")], since, kind)

    def pages_of(
        self,
        sources: list[tuple[str, str, str, str]],
        since: datetime,
        kind: str,
        modified: str = "LastModifiedDateTime",
    ) -> Iterator[Page]:
        """Pages of notices for the records of every ``(entity, key, condition, via)`` changed after
        ``since``: each time window is read from every entity before its checkpoint, so a
        checkpoint holds for all of them (products are stock, non-stock and template items). A
        row whose ``via`` field is set is announced under that id instead (a matrix item under its
        template), once per page.

        The range is read in consecutive time windows, oldest first, each ending with a checkpoint
        at its end; no window reaches past the time the poll started. The first window is the whole
        range, so a quiet poll costs one request per entity. A window that comes back as a full page
        of any entity holds more than a page: it is cut at the median change time of the rows it
        returned (an estimate of the window's own median) until it fits in a page or cannot be cut
        any more, in which case it is read by ``$skip`` inside the window. Each next window is sized
        from what the last one held, so that it holds about ``FILL`` of a page: longer after a sparse
        window (at most ``GROW`` times, also after an empty one), shorter after a crowded one (at
        most ``SHRINK`` times). A poll over N changes thus costs about N / (FILL * page_size)
        requests, plus a few while the size adapts.

        ``modified`` is the entity's change-time field (a sales order has ``LastModified`` only); a
        ``key`` of two fields (``OrderType,OrderNbr``) names each record ``<type>/<number>``.
        """
        until = datetime.now(UTC)
        start = since if since.tzinfo else since.replace(tzinfo=UTC)
        size = self.settings().page_size
        width: timedelta | None = None  # the first window: the whole range
        while start < until:
            end = start + width if width is not None and width < until - start else until
            held = 0
            for n, (entity, key, condition, via) in enumerate(sources):
                select = f"{key},{modified}" + (f",{via}" if via else "")
                while True:
                    filter_ = f"{modified} gt {odata_time(start)} and {modified} le {odata_time(end)}"
                    if condition:
                        filter_ += f" and {condition}"
                    rows = self.client.get_list(entity, filter=filter_, select=select, top=size, skip=0)
                    if len(rows) < size or end - start <= MIN_WINDOW or n > 0:
                        break  # windows are cut on the first entity only (the others follow its cuts)
                    times = sorted(t for t in (mapping.when(mapping.value(r, modified)) for r in rows) if t)
                    cut = times[len(times) // 2] if times else None
                    if cut is None or cut <= start or cut >= end:
                        break  # cannot be cut: read it page by page
                    end = cut
                got = len(rows)
                while len(rows) >= size:
                    yield Page(self._notices(rows, key, kind, via, modified))
                    rows = self.client.get_list(entity, filter=filter_, select=select, top=size, skip=got)
                    got += len(rows)
                held = max(held, got)
                last = n == len(sources) - 1
                yield Page(self._notices(rows, key, kind, via, modified), checkpoint=end if last else None)
            factor = GROW if held == 0 else min(GROW, max(1 / SHRINK, FILL * size / held))
            width = max((end - start) * factor, MIN_WINDOW)
            start = end

    def whole_pages(
        self,
        sources: list[tuple[str, str, str, str]],
        since: datetime,
        kind: str,
        whole: Callable[[dict[str, Any], str], dict[str, Any] | None],
        *,
        expand: str = "",
        resume: dict[str, Any] | None = None,
    ) -> Iterator[Page]:
        """An initial load's pages: every record of each ``(entity, key, condition, via)`` changed
        after ``since`` and up to the time the load started, read whole (with ``expand``) by
        ``$skip`` pages, each notice carrying ``whole(row, entity)`` as its snapshot (None: the
        worker reads the record). A page costs one request, none is spent on time windows.

        Paging by offset holds because the API answers in key order and nothing enters the range
        (it ends in the past); a record changed meanwhile leaves it (the next poll has it), which
        would shift the rows after it by one. So each next page is asked from the last row read
        on: when that row is not where it was, the page is asked again from further back and
        taken after it (the whole entity again if it is gone), so no row is skipped. Each page's
        ``position`` says where the load stands, for ``resume``; the last one's checkpoint is the
        load's start.
        """
        until = datetime.fromisoformat(resume["until"]) if resume else datetime.now(UTC)
        size = self.settings().page_size
        first = int(resume["entity"]) if resume else 0
        for n, (entity, key, condition, via) in enumerate(sources):
            if n < first:
                continue
            skip, last = (int(resume["skip"]), resume.get("last")) if resume and n == first else (0, None)
            filter_ = f"LastModifiedDateTime gt {odata_time(since)} and LastModifiedDateTime le {odata_time(until)}"
            filter_ += f" and {condition}" if condition else ""
            while True:
                rows, skip = self._after(entity, key, filter_, expand, skip, last, size)
                more = len(rows) >= size
                if rows:
                    last = self._key_of(rows[-1], key)
                position = {"until": until.isoformat(), "entity": n, "skip": skip, "last": last}
                done = not more and n == len(sources) - 1
                notices = self._notices(rows, key, kind, via, whole=functools.partial(_of_entity, whole, entity))
                yield Page(notices, checkpoint=until if done else None, position=None if done else position)
                if not more:
                    break

    def _after(
        self, entity: str, key: str, filter_: str, expand: str, skip: int, last: str | None, size: int
    ) -> tuple[list[dict[str, Any]], int]:
        """The page of rows after row ``last`` (at offset ``skip - 1`` when nothing moved), and the
        offset after it."""
        back = 1
        while True:
            ask = max(skip - back, 0) if last is not None else skip
            rows = self.client.get_list(
                entity, filter=filter_, expand=expand or None, top=size + (skip - ask), skip=ask
            )
            if last is None:
                return rows, skip + len(rows)
            keys = [self._key_of(r, key) for r in rows]
            if last in keys:
                at = keys.index(last)
                return rows[at + 1 :], ask + at + 1 + len(rows[at + 1 :])
            if ask == 0:  # the last row read left the range, and with it the anchor: read it all again
                return rows, len(rows)
            back = min(back * 4 + size // 10, skip)

    @staticmethod
    def _key_of(row: dict[str, Any], key: str) -> str:
        return "/".join(str(mapping.value(row, k, "")).strip() for k in key.split(","))

    def _notices(
        self,
        rows: list[dict[str, Any]],
        key: str,
        kind: str,
        via: str = "",
        modified: str = "LastModifiedDateTime",
        *,
        whole: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None,
    ) -> list[ChangeNotice]:
        out: dict[str, ChangeNotice] = {}
        read_at = datetime.now(UTC)
        for row in rows:
            version = mapping.value(row, modified)
            own = "/".join(str(mapping.value(row, k, "")).strip() for k in key.split(","))
            rid = str((mapping.value(row, via) if via else None) or own).strip()
            notice = ChangeNotice(
                source=self.name,
                entity=kind,
                id=rid,
                version=str(version) if version else None,
                occurred_at=mapping.when(version),
            )
            if via and mapping.value(row, via):
                notice.version = None  # the template's own version is not the matrix item's
            elif whole is not None:
                notice.snapshot = whole(row)
                notice.read_at = read_at if notice.snapshot is not None else None
            seen = out.get(rid)
            if seen is None or (notice.occurred_at or datetime.min.replace(tzinfo=UTC)) > (
                seen.occurred_at or datetime.min.replace(tzinfo=UTC)
            ):
                out[rid] = notice
        return sorted(out.values(), key=lambda n: n.occurred_at or datetime.min.replace(tzinfo=UTC))

    def shipment_pages(self, since: datetime) -> Iterator[Page]:
        statuses = " or ".join(f"Status eq {odata_string(s)}" for s in mapping.CONFIRMED_SHIPMENT)
        return self.pages("Shipment", "ShipmentNbr", f"({statuses})", since, "shipment")

    def invoice_pages(self, since: datetime) -> Iterator[Page]:
        statuses = " or ".join(f"Status eq {odata_string(s)}" for s in mapping.RELEASED_INVOICE)
        return self.pages("SalesInvoice", "ReferenceNbr", f"Type eq 'Invoice' and ({statuses})", since, "invoice")

    def changed_shipments(self, since: datetime) -> list[ChangeNotice]:
        """Every confirmed shipment changed after ``since`` (all windows)."""
        return [n for p in self.shipment_pages(since) for n in p.notices]

    def changed_invoices(self, since: datetime) -> list[ChangeNotice]:
        """Every released invoice changed after ``since`` (all windows)."""
        return [n for p in self.invoice_pages(since) for n in p.notices]

    # -- documents -----------------------------------------------------------------------------

    def get_shipment(self, shipment_id: str) -> Shipment:
        return mapping.shipment(self.client.get_record("Shipment", shipment_id, expand="Details,Packages"))

    def get_invoice(self, invoice_id: str) -> Invoice:
        return mapping.invoice(self.client.get_record("SalesInvoice", ["Invoice", invoice_id], expand="Details"))

    def credit_note_pages(self, since: datetime) -> Iterator[Page]:
        statuses = " or ".join(f"Status eq {odata_string(s)}" for s in mapping.RELEASED_INVOICE)
        released = f"Type eq 'Credit Memo' and ({statuses})"
        return self.pages("SalesInvoice", "ReferenceNbr", released, since, "creditmemo")

    def get_credit_note(self, number: str) -> CreditNote:
        """Credit memo ``number`` with its lines; each original invoice its lines credit is read once
        (a line that names its sales order line needs none)."""
        record = self.client.get_record("SalesInvoice", ["Credit Memo", number], expand="Details")
        wanted = {
            str(mapping.value(d, "OrigInvNbr"))
            for d in record.get("Details") or []
            if isinstance(d, dict) and not mapping.value(d, "OrderNbr") and mapping.value(d, "OrigInvNbr")
        }
        invoices = {
            nbr: self.client.get_record("SalesInvoice", ["Invoice", nbr], expand="Details") for nbr in sorted(wanted)
        }
        return mapping.credit_note(record, invoices)


class AcumaticaOrders:
    """ERP sales orders: the target of the store's orders, the source of the ERP's own."""

    def __init__(self, erp: AcumaticaErp) -> None:
        self.erp = erp

    def changes(self, since: datetime, entity: str = "order") -> Iterator[Page]:
        """Sales orders of the connection's ``erp_order_types`` changed after ``since``, by their
        ``LastModified`` (a sales order has no ``LastModifiedDateTime``), named ``<type>/<number>``,
        as changes of ``entity``."""
        types = self.erp.settings().erp_order_types
        condition = "(" + " or ".join(f"OrderType eq {odata_string(t)}" for t in types) + ")"
        return self.erp.pages_of([("SalesOrder", "OrderType,OrderNbr", condition, "")], since, entity, "LastModified")

    def status(self, id: str) -> OrderStatus:
        """Where sales order ``<type>/<number>`` stands (one small read)."""
        order_type, _, number = id.rpartition("/")
        record = self.erp.client.get_record(
            "SalesOrder", [order_type or self.erp.order_type, number], select="OrderType,OrderNbr,Status"
        )
        return OrderStatus(
            source_id=id,
            number=number,
            status=str(mapping.value(record, "Status", "") or ""),
            note=str(mapping.value(record, "note", "") or ""),
        )

    def get(self, id: str, snapshot: dict[str, Any] | None = None) -> Order:
        """The sales order ``<type>/<number>`` with its lines, totals and contacts."""
        order_type, _, number = id.rpartition("/")
        record = self.erp.client.get_record(
            "SalesOrder",
            [order_type or self.erp.order_type, number],
            expand="Details,Totals,BillToContact,BillToAddress,ShipToContact,ShipToAddress",
        )
        contact = record.get("BillToContact") if isinstance(record.get("BillToContact"), dict) else {}
        email = (
            ""
            if mapping.value(contact, "Email")
            else self._customer_email(str(mapping.value(record, "CustomerID", "")))
        )
        return mapping.order_from_acumatica(record, email)

    def _customer_email(self, customer_id: str) -> str:
        if not customer_id:
            return ""
        customer = self.erp.client.get_record("Customer", customer_id, expand="MainContact")
        main = customer.get("MainContact") if isinstance(customer.get("MainContact"), dict) else {}
        return str(mapping.value(main, "Email") or "")

    def mark(self, id: str, store_number: str) -> None:
        """Write the store's order number into the sales order's ``ExternalRef`` (both numbers seen
        on both sides; an order that carries one is never sent to a store again)."""
        order_type, _, number = id.rpartition("/")
        self.erp.client.put(
            "SalesOrder",
            {"OrderType": mapping.v(order_type), "OrderNbr": mapping.v(number), "ExternalRef": mapping.v(store_number)},
            select="OrderType,OrderNbr,ExternalRef",
            if_match=True,
        )

    def find(self, number: str) -> ErpOrderRef | None:
        return self.erp.find_order(number)

    def create(self, draft: SalesOrderDraft) -> ErpOrderRef:
        return self.erp.create_order(draft)

    def books(self, refs: dict[str, str]) -> dict[str, Books]:
        """Store order number -> the money of its sales order (``refs``: number -> ``<type>/<number>``):
        the order total, the payments applied to it, and the credit memos that carry the number;
        10 orders a request."""
        out: dict[str, Books] = {}
        items = list(refs.items())
        for i in range(0, len(items), BOOKS_CHUNK):
            chunk = dict(items[i : i + BOOKS_CHUNK])
            by_ref = {ref: number for number, ref in chunk.items()}
            keys = " or ".join(
                f"(OrderType eq {odata_string(t)} and OrderNbr eq {odata_string(n)})"
                for t, _, n in (ref.rpartition("/") for ref in chunk.values())
            )
            for row in self.erp.client.get_list("SalesOrder", filter=keys, expand="Payments"):
                ref = f"{mapping.value(row, 'OrderType')}/{mapping.value(row, 'OrderNbr')}"
                number = by_ref.get(ref)
                if number is None:
                    continue
                paid = sum(
                    (mapping.dec(p, "AppliedToOrder") for p in row.get("Payments") or [] if isinstance(p, dict)),
                    Decimal(0),
                )
                out[number] = Books(
                    number=number,
                    ref=ref,
                    total=mapping.dec(row, "OrderTotal"),
                    paid=paid,
                    currency=str(mapping.value(row, "CurrencyID", "") or ""),
                    state=str(mapping.value(row, "Status", "") or ""),
                )
            names = " or ".join(f"CustomerOrder eq {odata_string(n[: mapping.REFERENCE_MAX])}" for n in chunk)
            memos = self.erp.client.get_list(
                "SalesInvoice",
                filter=f"Type eq 'Credit Memo' and ({names})",
                select="Type,ReferenceNbr,CustomerOrder,Amount,Status",
            )
            for row in memos:
                books = out.get(str(mapping.value(row, "CustomerOrder", "")))
                if books is not None and mapping.value(row, "Status") not in ("Voided", "Canceled"):
                    books.refunded += mapping.dec(row, "Amount")
        return out


PAYMENT_FIELDS = "Type,ReferenceNbr,PaymentAmount,Status,PaymentRef"


def carries(customer_id: str, ref: str) -> str:
    """The filter of ``customer_id``'s documents whose ``ExternalRef`` is the store's ``ref``."""
    return f"CustomerID eq {odata_string(customer_id)} and ExternalRef eq {odata_string(ref[: mapping.REFERENCE_MAX])}"


BOOKS_CHUNK = 10
"""Sales orders a ``books`` request asks for (their keys ORed in one filter)."""


class AcumaticaPayments:
    """ERP payments, the target of the payments flow."""

    def __init__(self, erp: AcumaticaErp) -> None:
        self.erp = erp

    def of_order(self, store_order: str, customer_id: str) -> list[ErpPayment]:
        """Every payment (voided ones too) that carries the store order number ``store_order``: of
        type Payment, as the payments flow makes them (a store numbers its credit memos as it does
        its orders, and a refund carries its credit memo's number)."""
        return self.carrying(store_order, customer_id, "Payment")

    def carrying(self, ref: str, customer_id: str, doc_type: str = "") -> list[ErpPayment]:
        """Every payment of ``customer_id`` (of ``doc_type``, when given; voided ones too) whose
        ``ExternalRef`` is the store's ``ref``."""
        condition = carries(customer_id, ref)
        rows = self.erp.client.get_list(
            "Payment",
            filter=f"Type eq {odata_string(doc_type)} and {condition}" if doc_type else condition,
            select=PAYMENT_FIELDS,
        )
        return [mapping.payment(r) for r in rows]

    def create(self, draft: PaymentDraft) -> ErpPayment:
        return mapping.payment(self.erp.client.put("Payment", mapping.payment_record(draft)))

    def release(self, payment: ErpPayment) -> None:
        """Release (post) the payment; one already released is left as it is."""
        try:
            self.erp.client.action(
                "Payment", "ReleasePayment", {"Type": payment.doc_type, "ReferenceNbr": payment.number}
            )
        except PermanentError:
            current = mapping.payment(
                self.erp.client.get_record("Payment", [payment.doc_type, payment.number], select=PAYMENT_FIELDS)
            )
            if not current.released:
                raise


class AcumaticaCreditMemos:
    """ERP credit memos and the refunds that pay them out, the target of the credit-memos flow."""

    FIELDS = "Type,ReferenceNbr,Amount,Balance,Status"

    def __init__(self, erp: AcumaticaErp) -> None:
        self.erp = erp
        self.payments = AcumaticaPayments(erp)

    def find(self, store_number: str, customer_id: str) -> ErpCreditMemo | None:
        """The credit memo that carries the store credit memo number, if any."""
        rows = self.erp.client.get_list(
            "SalesInvoice", filter=f"Type eq 'Credit Memo' and {carries(customer_id, store_number)}", select=self.FIELDS
        )
        return mapping.credit_memo(rows[0]) if rows else None

    def create(self, draft: CreditMemoDraft) -> ErpCreditMemo:
        return mapping.credit_memo(self.erp.client.put("SalesInvoice", mapping.credit_memo_record(draft)))

    def release(self, memo: ErpCreditMemo) -> ErpCreditMemo:
        """Release (post) the credit memo; one already released is left as it is. As it is after
        (a release leaves its whole amount open to refund; one released before is read back)."""
        try:
            self.erp.client.action(
                "SalesInvoice", "ReleaseSalesInvoice", {"Type": memo.doc_type, "ReferenceNbr": memo.number}
            )
        except PermanentError:
            key = [memo.doc_type, memo.number]
            current = mapping.credit_memo(self.erp.client.get_record("SalesInvoice", key, select=self.FIELDS))
            if not current.released:
                raise
            return current
        return memo.model_copy(update={"status": "Open", "balance": memo.amount})

    def refunds_of(self, store_number: str, customer_id: str) -> list[ErpPayment]:
        """The refunds (voided ones too) that carry the store credit memo number."""
        return self.payments.carrying(store_number, customer_id, "Refund")

    def refund(self, memo: ErpCreditMemo, draft: PaymentDraft) -> ErpPayment:
        return mapping.payment(self.erp.client.put("Payment", mapping.refund_record(memo, draft)))


class AcumaticaCreditNotes:
    """Credit memos entered in the ERP, the source of the erp-credit-memos flow."""

    def __init__(self, erp: AcumaticaErp) -> None:
        self.erp = erp

    def changes(self, since: datetime) -> Iterator[Page]:
        return self.erp.credit_note_pages(since)

    def get(self, id: str) -> CreditNote:
        return self.erp.get_credit_note(id)

    def mark(self, number: str, store_order: str) -> None:
        """Write the store order number into credit memo ``number``'s ``CustomerOrder`` (both sides
        name the order; ``erpsync reconcile`` counts the credit memo by it)."""
        self.erp.client.put(
            "SalesInvoice",
            {
                "Type": mapping.v("Credit Memo"),
                "ReferenceNbr": mapping.v(number),
                "CustomerOrder": mapping.v(store_order[: mapping.REFERENCE_MAX]),
            },
            select="Type,ReferenceNbr,CustomerOrder",
        )


class AcumaticaReturns:
    """Return orders (RM): the target of the returns flow, and, with what their receipts took in,
    the source of the erp-returns flow."""

    def __init__(self, erp: AcumaticaErp) -> None:
        self.erp = erp

    def order_type(self) -> str:
        return self.erp.settings().return_order_type

    def find(self, store_number: str, customer_id: str) -> ErpReturnRef | None:
        rows = self.erp.client.get_list(
            "SalesOrder",
            filter=f"OrderType eq {odata_string(self.order_type())} and {carries(customer_id, store_number)}",
            expand="Details",
            top=1,
        )
        return mapping.return_ref(rows[0]) if rows else None

    def create(self, draft: ReturnDraft) -> ErpReturnRef:
        cfg = self.erp.settings()
        record = mapping.return_order_record(draft, cfg.return_order_type, cfg.return_warehouse_id)
        return mapping.return_ref(self.erp.client.put("SalesOrder", record, expand="Details"))

    def changes(self, since: datetime) -> Iterator[Page]:
        """Return orders changed after ``since`` (a receipt confirmed moves its order's
        ``LastModified``), named ``<type>/<number>``."""
        condition = f"OrderType eq {odata_string(self.order_type())}"
        return self.erp.pages_of([("SalesOrder", "OrderType,OrderNbr", condition, "")], since, "return", "LastModified")

    def get(self, id: str) -> ReturnReceipt:
        order_type, _, number = id.rpartition("/")
        record = self.erp.client.get_record(
            "SalesOrder",
            [order_type or self.order_type(), number],
            expand="Details",
            select="OrderType,OrderNbr,Status,ExternalRef,LastModified,Details/LineNbr,Details/OrderQty,Details/ShippedQty",
        )
        return mapping.return_receipt(record)


class AcumaticaCancellations:
    """Canceling ERP sales orders (the target of the cancellations flow), and the sales orders the
    ERP canceled (the source of the erp-cancellations flow)."""

    def __init__(self, erp: AcumaticaErp) -> None:
        self.erp = erp
        self.orders = AcumaticaOrders(erp)

    def changes(self, since: datetime) -> Iterator[Page]:
        return self.orders.changes(since, "cancellation")

    def get(self, id: str) -> OrderStatus:
        return self.orders.status(id)

    def cancel(self, ref: str, comments: list[str] | None = None) -> str:
        """Cancel sales order ``<type>/<number>``; its status after. One already canceled is left as
        it is; one the ERP will not cancel (it has shipments) raises the ERP's reason. ``comments``
        the order's note does not hold yet are added to it, one a line."""
        order_type, _, number = ref.rpartition("/")
        try:
            self.erp.client.action("SalesOrder", "CancelSalesOrder", {"OrderType": order_type, "OrderNbr": number})
        except PermanentError:
            if self.orders.status(ref).status != "Canceled":
                raise
        after = self.orders.status(ref)
        missing = [c for c in comments or [] if c not in after.note]
        if missing:
            note = "\n".join([after.note, *missing] if after.note else missing)
            self.erp.client.put(
                "SalesOrder",
                {"OrderType": mapping.v(order_type), "OrderNbr": mapping.v(number), "note": mapping.v(note)},
                select="OrderType,OrderNbr",
            )
        return after.status


class AcumaticaShipments:
    def __init__(self, erp: AcumaticaErp) -> None:
        self.erp = erp

    def changes(self, since: datetime) -> Iterator[Page]:
        return self.erp.shipment_pages(since)

    def get(self, id: str) -> Shipment:
        return self.erp.get_shipment(id)


class AcumaticaInvoices:
    def __init__(self, erp: AcumaticaErp) -> None:
        self.erp = erp

    def changes(self, since: datetime) -> Iterator[Page]:
        return self.erp.invoice_pages(since)

    def get(self, id: str) -> Invoice:
        return self.erp.get_invoice(id)


class AcumaticaCustomers:
    """Customers both ways. Acumatica does not enforce unique emails: ``find`` returns them all."""

    def __init__(self, erp: AcumaticaErp) -> None:
        self.erp = erp
        self.client = erp.client

    def changes(self, since: datetime) -> Iterator[Page]:
        return self.erp.pages("Customer", "CustomerID", "", since, "customer")

    def get(self, id: str) -> Customer:
        return mapping.customer_from_acumatica(self.client.get_record("Customer", id, expand=CUSTOMER_EXPAND))

    def find(self, email: str) -> list[Customer]:
        rows = self.client.get_list(
            "Customer",
            filter=f"MainContact/Email eq {odata_string(email.strip().lower())}",
            expand=CUSTOMER_EXPAND,
            top=5,
        )
        return [mapping.customer_from_acumatica(r) for r in rows]

    def id_for(self, email: str) -> str:
        """A stable customer id derived from the email, so a create retried after a lost answer
        finds its twin instead of making a second customer."""
        digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:10].upper()
        return f"{self.erp.settings().customer_id_prefix}{digest}"

    def create(self, customer: Customer) -> Customer:
        cid = self.id_for(customer.email)
        cls = customer.customer_class or self.erp.settings().customer_class
        record = mapping.customer_upsert_record(customer, cid, customer_class=cls, price_class=customer.price_class)
        try:
            saved = self.client.put("Customer", record, expand=CUSTOMER_EXPAND, if_none_match=True)
        except AlreadyExists:
            # our own earlier create (its answer lost): that customer, as it is (never overwritten here)
            return self.get(cid)
        return mapping.customer_from_acumatica(saved)

    def update(self, id: str, customer: Customer, current: Customer | None = None) -> Customer:
        record = mapping.customer_upsert_record(customer, id, price_class=customer.price_class)
        saved = self.client.put("Customer", record, expand=CUSTOMER_EXPAND, if_match=True)
        return mapping.customer_from_acumatica(saved)


class AcumaticaSystem:
    """An Acumatica connection: its ports by entity and direction."""

    kind = "acumatica"

    def __init__(self, client: AcumaticaClient, connection: str, settings: Callable[[], AcumaticaSettings]) -> None:
        self.connection = connection
        self.client = client
        self.erp = AcumaticaErp(client, settings=settings, connection=connection)
        self._ports: dict[tuple[str, str], object] = {
            ("order", "target"): AcumaticaOrders(self.erp),
            ("payment", "target"): AcumaticaPayments(self.erp),
            ("creditmemo", "target"): AcumaticaCreditMemos(self.erp),
            ("cancellation", "target"): AcumaticaCancellations(self.erp),
            ("shipment", "source"): AcumaticaShipments(self.erp),
            ("invoice", "source"): AcumaticaInvoices(self.erp),
            ("creditmemo", "source"): AcumaticaCreditNotes(self.erp),
            ("customer", "source"): AcumaticaCustomers(self.erp),
            ("return", "target"): AcumaticaReturns(self.erp),
        }
        self._ports[("customer", "target")] = self._ports[("customer", "source")]
        self._ports[("order", "source")] = self._ports[("order", "target")]
        self._ports[("cancellation", "source")] = self._ports[("cancellation", "target")]
        self._ports[("return", "source")] = self._ports[("return", "target")]
        self.settings = settings

    def port(self, entity: str, direction: str) -> Any:
        if (entity, direction) not in self._ports and direction == "source":
            self._catalog_port(entity)
        try:
            return self._ports[(entity, direction)]
        except KeyError:
            raise NotFoundError(f"acumatica serves no {entity} {direction}", system="acumatica") from None

    def _catalog_port(self, entity: str) -> None:
        """The catalog's ports, made when first asked for (the order flows never import them)."""
        from erpsync.systems.acumatica import catalog

        makers: dict[str, Callable[[], object]] = {
            "attribute": lambda: catalog.AcumaticaAttributes(self.erp),
            "category": lambda: catalog.AcumaticaCategories(self.erp),
            "product": lambda: catalog.AcumaticaProducts(self.erp),
            "price": lambda: catalog.AcumaticaPrices(self.erp),
            "stock": lambda: catalog.AcumaticaStock(self.erp),
        }
        if entity in makers:
            self._ports[(entity, "source")] = makers[entity]()


def _of_entity(
    whole: Callable[[dict[str, Any], str], dict[str, Any] | None], entity: str, row: dict[str, Any]
) -> dict[str, Any] | None:
    return whole(row, entity)
