"""SAP Business One's ports: customers (business partners, both ways), the orders target,
deliveries as the shipments source, A/R invoices as the invoices source, the payments target
(a down payment invoice and the incoming payment applied to it), cancellations both ways (an
order's ``Cancel``, and the orders B1 cancelled), credit memos both ways (A/R credit notes) and
returns both ways (return requests, and what the warehouse's returns took back on them).

Changes are polled on the two stamp fields the Service Layer has, done right (SYSTEMS-NOTES §3.5):
``UpdateDate gt D or (UpdateDate eq D and UpdateTime ge T)``, never ``UpdateDate ge D and
UpdateTime ge T`` (which misses a later day's change made at an earlier hour). The pages are a
keyset (ordered by date, time and key; each request asks for the rows after the last one read), so
a record changed while the poll runs moves to the end instead of shifting another out of a page.
A business partner SAP created without setting ``UpdateDate`` is found by a second poll on
``CreateDate``/``CreateTime``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from erpsync.errors import NotFoundError, PermanentError, ValidationFailed
from erpsync.model import (
    ChangeNotice,
    CreditMemoDraft,
    CreditNote,
    Customer,
    DocumentLine,
    ErpCreditMemo,
    ErpOrderRef,
    ErpPayment,
    ErpReturnRef,
    Invoice,
    OrderStatus,
    PaymentDraft,
    ReturnDraft,
    ReturnReceipt,
    SalesOrderDraft,
    Shipment,
    cents,
)
from erpsync.systems.ports import Page
from erpsync.systems.sap_b1 import mapping
from erpsync.systems.sap_b1.client import AlreadyExists, Refused, SapB1Client, literal
from erpsync.systems.sap_b1.settings import SapB1Settings

log = logging.getLogger(__name__)
STAMPS = (("UpdateDate", "UpdateTime"), ("CreateDate", "CreateTime"))
DOCUMENT_STAMPS = (("UpdateDate", "UpdateTime"), ("CreationDate", None))
"""A document has ``UpdateDate``/``UpdateTime`` and a ``CreationDate`` without a time (day-granular)."""
DOCUMENT_CHANGE_FIELDS = ["DocEntry", "UpdateDate", "UpdateTime", "CreationDate"]
PARTNER_CHANGE_FIELDS = ["CardCode", "UpdateDate", "UpdateTime", "CreateDate", "CreateTime"]
ORDER_FIELDS = ["DocEntry", "DocNum", "NumAtCard", "CardCode", "Cancelled", "DocumentStatus", "DocumentLines"]
DOWN_PAYMENT_FIELDS = [*ORDER_FIELDS, "DocTotal"]
PAYMENT_FIELDS = [
    "DocEntry",
    "DocNum",
    "CardCode",
    "CounterReference",
    "TransferReference",
    "Cancelled",
    "CashSum",
    "TransferSum",
    "PaymentCreditCards",
    "PaymentChecks",
    "PaymentInvoices",
]


class DuplicateNumAtCard(PermanentError):
    """Two live B1 orders carry one store number: which one is the store's is for a person to say."""

    error_type = "duplicate_number"


def changed_filter(day_field: str, time_field: str, day: str, clock: str) -> str:
    """Records stamped at or after ``day`` ``clock`` (server-local date and time)."""
    d, t = literal(day), literal(clock)
    return f"({day_field} gt {d} or ({day_field} eq {d} and {time_field} ge {t}))"


def after_filter(day_field: str, time_field: str, key_field: str, last: tuple[str, str, Any]) -> str:
    """Records that come after ``last`` (date, time, key) in ``day, time, key`` order."""
    d, t, k = (literal(v) for v in last)
    return (
        f"({day_field} gt {d} or ({day_field} eq {d} and ({time_field} gt {t} or "
        f"({time_field} eq {t} and {key_field} gt {k}))))"
    )


def stamped_pages(
    client: SapB1Client,
    entity_set: str,
    key_field: str,
    since: datetime,
    cfg: SapB1Settings,
    *,
    where: str = "",
    select: list[str],
    notice: Callable[[dict[str, Any]], ChangeNotice],
    stamps: tuple[tuple[str, str | None], ...] = STAMPS,
) -> Iterator[Page]:
    """Pages of notices of the records changed (then created) at or after ``since``; the last page
    proves the newest stamp read (a page before it proves nothing: the create poll is still to come).
    A stamp without a time field (a document's ``CreationDate``) finds the records never updated
    (the first stamp null) from the cursor's day on, paged by key."""
    zone = ZoneInfo(cfg.server_timezone)
    day, clock = mapping.local_cursor(since, zone)
    newest: datetime | None = None
    for n, (day_field, time_field) in enumerate(stamps):
        last: tuple[str, str, Any] | None = None
        while True:
            if time_field is None:
                condition = f"{day_field} ge {literal(day)} and {stamps[0][0]} eq null"  # never updated
                if last is not None:
                    condition += f" and {key_field} gt {literal(last[2])}"
                orderby = key_field
            else:
                condition = changed_filter(day_field, time_field, day, clock)
                if last is not None:
                    condition += " and " + after_filter(day_field, time_field, key_field, last)
                orderby = f"{day_field},{time_field},{key_field}"
            rows = next(
                client.pages(
                    entity_set,
                    filter=f"{where} and {condition}" if where else condition,
                    select=select,
                    orderby=orderby,
                    top=cfg.page_size,
                    page_size=cfg.page_size,
                )
            )
            for row in rows:
                stamp = mapping.changed_at(row)
                if stamp is not None:
                    at = mapping.to_utc(*stamp, zone)
                    newest = at if newest is None or at > newest else newest
            done = len(rows) < cfg.page_size
            final = done and n == len(stamps) - 1
            yield Page([notice(r) for r in rows], newest if final else None)
            if done:
                break
            tail = rows[-1]
            last = (str(tail[day_field])[:10], str(tail[time_field]) if time_field else "", tail[key_field])


class SapB1Customers:
    """Business partners of type customer, both ways; the email is the identity (B1 does not keep
    it unique: ``find`` returns every match)."""

    def __init__(self, client: SapB1Client, connection: str, settings: Callable[[], SapB1Settings]) -> None:
        self.client, self.connection, self.settings = client, connection, settings

    def _zone(self) -> ZoneInfo:
        return ZoneInfo(self.settings().server_timezone)

    def changes(self, since: datetime) -> Iterator[Page]:
        zone = self._zone()

        def notice(row: dict[str, Any]) -> ChangeNotice:
            return ChangeNotice(
                source=self.connection, entity="customer", id=str(row["CardCode"]), version=mapping.version(row, zone)
            )

        yield from stamped_pages(
            self.client,
            "BusinessPartners",
            "CardCode",
            since,
            self.settings(),
            where="CardType eq 'cCustomer'",
            select=PARTNER_CHANGE_FIELDS,
            notice=notice,
        )

    def _read(self, id: str) -> dict[str, Any]:
        return self.client.get("BusinessPartners", id)

    def get(self, id: str) -> Customer:
        return mapping.customer_from_b1(self._read(id), self._zone())

    def find(self, email: str) -> list[Customer]:
        wanted = email.strip().lower()
        rows = self.client.rows(
            "BusinessPartners",
            filter=f"CardType eq 'cCustomer' and EmailAddress eq {literal(wanted)}",
            case_insensitive=True,
            page_size=self.settings().page_size,
        )
        return [
            mapping.customer_from_b1(r, self._zone())
            for r in rows
            if str(r.get("EmailAddress") or "").strip().lower() == wanted
        ]

    def id_for(self, email: str) -> str:
        """The ``CardCode`` of the partner made for ``email``, derived from it: a create retried
        after a lost answer meets its twin (code -10) instead of making a second partner."""
        digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:10].upper()
        return f"{self.settings().card_code_prefix}{digest}"

    def create(self, customer: Customer) -> Customer:
        cfg = self.settings()
        code = self.id_for(customer.email)
        body = {"CardCode": code, "CardType": "cCustomer", **mapping.partner_body(customer)}
        if cfg.bp_group_code is not None:
            body["GroupCode"] = cfg.bp_group_code
        try:
            return mapping.customer_from_b1(self.client.create("BusinessPartners", body), self._zone())
        except AlreadyExists:
            return self.get(code)  # our own earlier create (its answer lost): that partner, as it is

    def update(self, id: str, customer: Customer, current: Customer | None = None) -> Customer:
        self.client.update("BusinessPartners", id, mapping.partner_body(customer, current=self._read(id)))
        return self.get(id)


class SapB1Orders:
    """Store orders as B1 sales orders (``Orders``), looked up by the store's number in ``NumAtCard``."""

    def __init__(self, client: SapB1Client, connection: str, settings: Callable[[], SapB1Settings]) -> None:
        self.client, self.connection, self.settings = client, connection, settings

    def find(self, number: str) -> ErpOrderRef | None:
        """The live order (not cancelled) carrying ``number``; ``DuplicateNumAtCard`` when two do
        (B1 does not keep ``NumAtCard`` unique)."""
        rows = list(self.client.rows("Orders", filter=f"NumAtCard eq {literal(number)}", select=ORDER_FIELDS))
        live = [r for r in rows if r.get("Cancelled") != "tYES" and r.get("NumAtCard") == number]
        if len(live) > 1:
            entries = ", ".join(str(r["DocEntry"]) for r in live)
            raise DuplicateNumAtCard(
                f"{self.connection}: orders {entries} all carry store number {number} in NumAtCard; "
                "cancel the extra ones in B1",
                system=self.connection,
            )
        return mapping.order_ref(live[0]) if live else None

    def create(self, draft: SalesOrderDraft) -> ErpOrderRef:
        record = self.client.create("Orders", mapping.order_body(draft, self.settings()))
        if mapping.totals_differ(record, draft):
            log.warning(
                "order %s (DocEntry %s) total %s is not the store's %s",
                draft.number,
                record.get("DocEntry"),
                record.get("DocTotal"),
                draft.total,
                extra={"connection": self.connection},
            )
        return mapping.order_ref(record, draft)


def document_key(id: str, what: str, connection: str) -> int:
    """A document's ``DocEntry`` from a notice's id."""
    if not id.isdigit():
        raise ValidationFailed(f"{connection}: {what} id {id!r} is not a DocEntry (a number)", system=connection)
    return int(id)


class SapB1Deliveries:
    """Deliveries (``DeliveryNotes``), the source of the shipments flow: posted when added, with
    the one tracking number B1 keeps on the header (``TrackingNumber``)."""

    def __init__(self, client: SapB1Client, connection: str, settings: Callable[[], SapB1Settings]) -> None:
        self.client, self.connection, self.settings = client, connection, settings

    def changes(self, since: datetime) -> Iterator[Page]:
        yield from document_pages(self.client, "DeliveryNotes", "shipment", since, self.settings(), self.connection)

    def get(self, id: str) -> Shipment:
        record = self.client.get("DeliveryNotes", document_key(id, "delivery", self.connection))
        return mapping.shipment_from_b1(record, ZoneInfo(self.settings().server_timezone))


class SapB1Invoices:
    """A/R invoices (``Invoices``), the source of the invoices flow. A line based on a delivery
    (``BaseType`` 15) names the delivery line; the delivery is read (once per warm worker: a posted
    delivery's lines do not change) to reach the order line it was based on."""

    CACHED_DELIVERIES = 1000

    def __init__(self, client: SapB1Client, connection: str, settings: Callable[[], SapB1Settings]) -> None:
        self.client, self.connection, self.settings = client, connection, settings
        self._deliveries: dict[int, dict[int, DocumentLine | None]] = {}

    def changes(self, since: datetime) -> Iterator[Page]:
        yield from document_pages(self.client, "Invoices", "invoice", since, self.settings(), self.connection)

    def get(self, id: str) -> Invoice:
        cfg = self.settings()
        record = self.client.get("Invoices", document_key(id, "invoice", self.connection))
        delivered: dict[tuple[int, int], DocumentLine | None] = {}
        for ln in record.get("DocumentLines") or []:
            if ln.get("BaseType") == mapping.DELIVERY_OBJECT:
                entry = int(ln["BaseEntry"])
                for number, line in self._delivery_lines(entry).items():
                    delivered[(entry, number)] = line
        code = str(record.get("DocCurrency") or "")
        currency = next((iso for iso, b1 in cfg.currency_codes.items() if b1 == code), code)
        return mapping.invoice_from_b1(record, delivered, ZoneInfo(cfg.server_timezone), currency)

    def invoice_lines(self, entry: int) -> dict[int, DocumentLine | None]:
        """An invoice's lines (``LineNum``) -> the order line each bills (through its delivery line
        for one based on a delivery), None for a line based on no order line."""
        record = self.client.get("Invoices", entry, select=["DocEntry", "DocumentLines"])
        out: dict[int, DocumentLine | None] = {}
        for ln in record.get("DocumentLines") or []:
            via = mapping.order_line(ln)
            if via is None and ln.get("BaseType") == mapping.DELIVERY_OBJECT:
                via = self._delivery_lines(int(ln["BaseEntry"])).get(int(ln["BaseLine"]))
            out[int(ln["LineNum"])] = via
        return out

    def _delivery_lines(self, entry: int) -> dict[int, DocumentLine | None]:
        """A delivery's lines (``LineNum``) -> the order line each was based on."""
        if entry not in self._deliveries:
            if len(self._deliveries) >= self.CACHED_DELIVERIES:
                self._deliveries.clear()
            record = self.client.get("DeliveryNotes", entry, select=["DocEntry", "DocumentLines"])
            self._deliveries[entry] = {
                int(ln["LineNum"]): mapping.order_line(ln) for ln in record.get("DocumentLines") or []
            }
        return self._deliveries[entry]


def document_pages(
    client: SapB1Client,
    entity_set: str,
    entity: str,
    since: datetime,
    cfg: SapB1Settings,
    connection: str,
    prefix: str = "",
    where: str = "",
) -> Iterator[Page]:
    """Notices of the documents of ``entity_set`` (those ``where`` holds for) changed or created
    since ``since``, each id its ``DocEntry`` after ``prefix``."""

    def notice(row: dict[str, Any]) -> ChangeNotice:
        id = f"{prefix}{row['DocEntry']}"
        return ChangeNotice(
            source=connection, entity=entity, id=id, version=mapping.version(row, ZoneInfo(cfg.server_timezone))
        )

    yield from stamped_pages(
        client,
        entity_set,
        "DocEntry",
        since,
        cfg,
        where=where,
        select=DOCUMENT_CHANGE_FIELDS,
        notice=notice,
        stamps=DOCUMENT_STAMPS,
    )


class SapB1Payments:
    """What a store captured, as B1 books a paid web order (SYSTEMS-NOTES §3.2): an A/R down payment
    invoice (``DownPayments``, ``dptInvoice``) based on the B1 order and carrying the store's number
    in ``NumAtCard``, then an incoming payment (``IncomingPayments``) applied to it
    (``it_DownPayment``) carrying the store's number in ``CounterReference``. Two creates, each found
    again after a lost answer: the payment by ``CounterReference`` (``of_order``), the down payment
    by ``NumAtCard``, its base order and its amount when no payment of the order was applied to it.
    B1 posts both when added: ``release`` has nothing to do."""

    def __init__(self, client: SapB1Client, connection: str, settings: Callable[[], SapB1Settings]) -> None:
        self.client, self.connection, self.settings = client, connection, settings

    def _payments(self, store_order: str, customer_id: str) -> list[dict[str, Any]]:
        rows = self.client.rows(
            "IncomingPayments",
            filter=f"CounterReference eq {literal(store_order)} and CardCode eq {literal(customer_id)}",
            select=PAYMENT_FIELDS,
            page_size=self.settings().page_size,
        )
        return [r for r in rows if r.get("CounterReference") == store_order]

    def of_order(self, store_order: str, customer_id: str) -> list[ErpPayment]:
        return [mapping.payment_from_b1(r) for r in self._payments(store_order, customer_id)]

    def create(self, draft: PaymentDraft) -> ErpPayment:
        order_entry = document_key(draft.order_number, "order", self.connection)
        mapping.payment_means(draft, self.settings())  # no account: refused before anything is written
        paid: set[int] = set()
        for p in self._payments(draft.store_order, draft.customer_id):
            if p.get("Cancelled") != "tYES":
                paid |= mapping.down_payments_paid(p)
        down_payment = self._unpaid_down_payment(draft, order_entry, paid)
        if down_payment is None:
            order = self.client.get("Orders", order_entry, select=["DocEntry", "CardCode", "DocumentLines"])
            if not mapping.open_lines(order):
                # delivered before the payment came: no down payment can be based on the order, so the
                # money goes on the customer's account (the accountant applies it to the invoice)
                log.info(
                    "%s: order %s is delivered: store order %s's payment is booked on account of %s",
                    self.connection,
                    order_entry,
                    draft.store_order,
                    draft.customer_id,
                    extra={"connection": self.connection},
                )
                on_account = mapping.incoming_payment_body(draft, None, self.settings())
                return mapping.payment_from_b1(self.client.create("IncomingPayments", on_account))
            down_payment = self.client.create("DownPayments", mapping.down_payment_body(draft, order, self.settings()))
        body = mapping.incoming_payment_body(draft, int(down_payment["DocEntry"]), self.settings())
        return mapping.payment_from_b1(self.client.create("IncomingPayments", body))

    def _unpaid_down_payment(self, draft: PaymentDraft, order_entry: int, paid: set[int]) -> dict[str, Any] | None:
        """The down payment of this order and amount that no payment was applied to yet: one made
        before its answer, or its payment's answer, was lost."""
        rows = self.client.rows(
            "DownPayments",
            filter=f"NumAtCard eq {literal(draft.store_order)} and CardCode eq {literal(draft.customer_id)}",
            select=DOWN_PAYMENT_FIELDS,
            page_size=self.settings().page_size,
        )
        for row in rows:
            based = {
                ln.get("BaseEntry")
                for ln in row.get("DocumentLines") or []
                if ln.get("BaseType") == mapping.ORDER_OBJECT
            }
            if (
                row.get("NumAtCard") == draft.store_order
                and row.get("Cancelled") != "tYES"
                and int(row["DocEntry"]) not in paid
                and order_entry in based
                and cents(mapping.dec(row.get("DocTotal"))) == cents(draft.amount)
            ):
                return row
        return None

    def release(self, payment: ErpPayment) -> None:
        """Nothing to do: B1 posts an incoming payment when it is added."""


class SapB1Cancellations:
    """Cancelling B1 sales orders, the target of the cancellations flow: the bound action
    ``POST Orders(<DocEntry>)/Cancel``. An order already cancelled (a retry after a lost answer) is
    left as it is; one B1 will not cancel (delivered or invoiced from) raises B1's reason. And the
    orders cancelled in B1, the source of the erp-cancellations flow (named as the order binding
    names them, ``Orders/<DocEntry>``)."""

    FIELDS = ["DocEntry", "DocNum", "Cancelled", "DocumentStatus", "Comments", "DocumentLines"]

    def __init__(self, client: SapB1Client, connection: str, settings: Callable[[], SapB1Settings]) -> None:
        self.client, self.connection, self.settings = client, connection, settings

    def changes(self, since: datetime) -> Iterator[Page]:
        """Cancelled orders changed since ``since`` (a cancel stamps the order)."""
        yield from document_pages(
            self.client,
            mapping.ORDERS,
            "cancellation",
            since,
            self.settings(),
            self.connection,
            prefix=f"{mapping.ORDERS}/",
            where="Cancelled eq 'tYES'",
        )

    def get(self, id: str) -> OrderStatus:
        entry = document_key(id.rpartition("/")[2], "order", self.connection)
        return mapping.order_status(self.client.get("Orders", entry, select=self.FIELDS))

    def cancel(self, ref: str, comments: list[str] | None = None) -> str:
        """Cancel order ``Orders/<DocEntry>`` (the order binding's key); ``Cancelled`` once B1 holds
        it cancelled (read back). ``comments`` its ``Comments`` do not hold yet are added first, one
        a line, unless later documents drew from it (B1 will refuse the cancel: nothing is written)."""
        entry = document_key(ref.rpartition("/")[2], "order", self.connection)
        order = self.client.get("Orders", entry, select=self.FIELDS)
        if order.get("Cancelled") == "tYES":
            return mapping.CANCELLED
        note = str(order.get("Comments") or "")
        missing = [c for c in comments or [] if c not in note]
        if missing and order.get("DocumentStatus") == "bost_Open" and not mapping.drawn_lines(order):
            self.client.update("Orders", entry, {"Comments": "\n".join([note, *missing] if note else missing)})
        try:
            self.client.action("Orders", entry, "Cancel")
        except Refused:
            if self.client.get("Orders", entry, select=self.FIELDS).get("Cancelled") != "tYES":
                raise
            return mapping.CANCELLED  # cancelled meanwhile (a clerk, or our own lost answer)
        after = self.client.get("Orders", entry, select=self.FIELDS)
        return mapping.CANCELLED if after.get("Cancelled") == "tYES" else str(after.get("DocumentStatus") or "")


class SapB1CreditMemos:
    """Store credit memos as B1 A/R credit notes (``CreditNotes``), the target of the credit-memos
    flow: the store's credit memo number in ``NumAtCard`` and ``Reference2`` (the duplicate guard,
    looked up before a create and after a lost answer), the refunded lines based on the order's invoice lines
    (``BaseType`` 13) as far as they were invoiced, the rest as lines of their own; the shipping
    refund and the store's tax as additional expenses, the adjustment on ``adjustment_item``. B1
    posts a credit note when it is added (``release`` does nothing). Paying it out to the customer
    (an outgoing payment, ``VendorPayments`` of ``DocType`` rCustomer) is not built: its shape is
    UNVERIFIED, so the credit note stays the customer's credit (``settled_without_refund``)."""

    FIELDS = ["DocEntry", "DocNum", "NumAtCard", "Reference2", "CardCode", "Cancelled", "DocumentStatus", "DocTotal"]

    def __init__(
        self, client: SapB1Client, connection: str, settings: Callable[[], SapB1Settings], payments: SapB1Payments
    ) -> None:
        self.client, self.connection, self.settings = client, connection, settings
        self.payments = payments

    def find(self, store_number: str, customer_id: str) -> ErpCreditMemo | None:
        """The credit note of ``customer_id`` erpsync made for ``store_number`` (in ``NumAtCard`` and
        ``Reference2``: a store numbers its credit memos as it does its orders, and a credit note
        entered in B1 carries its store order's number in ``NumAtCard``); a live one first, a
        cancelled one rather than none, so a clerk's cancel is never undone by a second."""
        rows = self.client.rows(
            "CreditNotes",
            filter=f"NumAtCard eq {literal(store_number)} and CardCode eq {literal(customer_id)}",
            select=self.FIELDS,
            page_size=self.settings().page_size,
        )
        found = sorted(
            (r for r in rows if r.get("NumAtCard") == store_number and r.get("Reference2") == store_number),
            key=lambda r: r.get("Cancelled") == "tYES",
        )
        return mapping.credit_memo_from_b1(found[0]) if found else None

    def create(self, draft: CreditMemoDraft) -> ErpCreditMemo:
        cfg = self.settings()
        order = self._order(draft)
        invoiced = self._invoiced(draft.customer_id, int(order["DocEntry"]))
        store_lines = {str(ln["LineNum"]): str(ln.get("FreeText") or "") for ln in order.get("DocumentLines") or []}
        record = self.client.create("CreditNotes", mapping.credit_note_body(draft, store_lines, invoiced, cfg))
        if cents(mapping.dec(record.get("DocTotal"))) != cents(draft.total):
            log.warning(
                "credit note %s (DocEntry %s) total %s is not the store's %s",
                draft.store_number,
                record.get("DocEntry"),
                record.get("DocTotal"),
                draft.total,
                extra={"connection": self.connection},
            )
        return mapping.credit_memo_from_b1(record)

    def _order(self, draft: CreditMemoDraft) -> dict[str, Any]:
        """The live B1 order carrying the store order's number."""
        rows = self.client.rows(
            "Orders",
            filter=f"NumAtCard eq {literal(draft.store_order)} and CardCode eq {literal(draft.customer_id)}",
            select=["DocEntry", "NumAtCard", "Cancelled", "DocumentLines"],
        )
        live = [r for r in rows if r.get("NumAtCard") == draft.store_order and r.get("Cancelled") != "tYES"]
        if not live:
            raise NotFoundError(
                f"{self.connection} has no live order {draft.store_order} of {draft.customer_id} to credit "
                f"{draft.store_number} against",
                system=self.connection,
            )
        return live[0]

    def _invoiced(self, card_code: str, order_entry: int) -> dict[int, list[tuple[int, int, Decimal]]]:
        """Order ``LineNum`` -> the open invoice lines billing it: ``(invoice DocEntry, LineNum,
        open quantity)``, oldest first; an invoice line based on a delivery line is traced to the
        order line through the delivery."""
        size = self.settings().page_size
        where = f"CardCode eq {literal(card_code)}"
        fields = ["DocEntry", "Cancelled", "DocumentLines"]
        delivered: dict[tuple[int, int], int] = {}
        for d in self.client.rows("DeliveryNotes", filter=where, select=fields, page_size=size):
            for ln in d.get("DocumentLines") or []:
                via = mapping.order_line(ln)
                if d.get("Cancelled") != "tYES" and via is not None and via.order_number == str(order_entry):
                    delivered[(int(d["DocEntry"]), int(ln["LineNum"]))] = int(str(via.line_nbr))
        out: dict[int, list[tuple[int, int, Decimal]]] = {}
        for inv in self.client.rows("Invoices", filter=where, select=fields, page_size=size):
            if inv.get("Cancelled") == "tYES":
                continue
            for ln in inv.get("DocumentLines") or []:
                if ln.get("LineStatus") not in (None, "bost_Open"):
                    continue
                via = mapping.order_line(ln)
                if via is not None and via.order_number == str(order_entry):
                    order_line: int | None = int(str(via.line_nbr))
                elif ln.get("BaseType") == mapping.DELIVERY_OBJECT:
                    order_line = delivered.get((int(ln["BaseEntry"]), int(ln["BaseLine"])))
                else:
                    order_line = None
                if order_line is not None:
                    left = mapping.dec(ln.get("RemainingOpenQuantity", ln.get("Quantity")))
                    out.setdefault(order_line, []).append((int(inv["DocEntry"]), int(ln["LineNum"]), left))
        return out

    def release(self, memo: ErpCreditMemo) -> ErpCreditMemo:
        """Nothing to do: B1 posts a credit note when it is added."""
        return memo

    def settled_without_refund(self, memo: ErpCreditMemo) -> str:
        """Why no refund follows: erpsync pays no credit note out in B1 (UNVERIFIED shape)."""
        return (
            f"kept as the customer's credit ({memo.balance} on credit note {memo.number}): paying it out "
            "(an outgoing payment to the customer) is done in B1"
        )

    def refunds_of(self, store_number: str, customer_id: str) -> list[ErpPayment]:
        """None: erpsync makes no refund payment in B1."""
        return []

    def refund(self, memo: ErpCreditMemo, draft: PaymentDraft) -> ErpPayment:
        """Never asked for (``settled_without_refund``)."""
        raise ValidationFailed(
            f"{self.connection} credit note {memo.number}: {self.settled_without_refund(memo)}", system=self.connection
        )


class SapB1CreditNotes:
    """A/R credit notes entered in B1 against store orders, the source of the erp-credit-memos flow:
    each line based on an invoice line (``BaseType`` 13) credits the order line that invoice line
    billed; other lines (an adjustment, a fee) are money in the total; the freight is its
    ``freight_expense_code`` expenses. A credit note erpsync made from a store credit memo carries
    that memo's number in ``Reference2`` (``external_ref``: it never goes back). The store order's
    number is written into ``NumAtCard`` (``mark``), as on the order."""

    def __init__(self, client: SapB1Client, connection: str, settings: Callable[[], SapB1Settings]) -> None:
        self.client, self.connection, self.settings = client, connection, settings
        self.invoices = SapB1Invoices(client, connection, settings)

    def changes(self, since: datetime) -> Iterator[Page]:
        yield from document_pages(self.client, "CreditNotes", "creditmemo", since, self.settings(), self.connection)

    def get(self, id: str) -> CreditNote:
        cfg = self.settings()
        record = self.client.get("CreditNotes", document_key(id, "credit note", self.connection))
        billed: dict[tuple[int, int], DocumentLine | None] = {}
        for entry in sorted(
            {int(ln["BaseEntry"]) for ln in record.get("DocumentLines") or [] if ln.get("BaseType") == 13}
        ):
            billed.update({(entry, n): via for n, via in self.invoices.invoice_lines(entry).items()})
        code = str(record.get("DocCurrency") or "")
        currency = next((iso for iso, b1 in cfg.currency_codes.items() if b1 == code), code)
        return mapping.credit_note_from_b1(record, billed, ZoneInfo(cfg.server_timezone), currency, cfg)

    def mark(self, number: str, store_order: str) -> None:
        """Write the store order's number into credit note ``number``'s ``NumAtCard``."""
        self.client.update(
            "CreditNotes", document_key(number, "credit note", self.connection), {"NumAtCard": store_order}
        )


class SapB1Returns:
    """Store returns as B1 return requests (``ReturnRequest``, the return the merchant agreed to),
    the target of the returns flow: the store return's number in ``NumAtCard`` (found by it after a
    lost answer), its lines at the store's prices with the store line id in ``FreeText``, the
    store's tax as on an order. And, with what the warehouse's returns (``Returns`` based on the
    request's lines) took back, the source of the erp-returns flow: a request is named
    ``ReturnRequest/<DocEntry>``, its received quantities those drawn off its lines."""

    FIELDS = ["DocEntry", "NumAtCard", "CardCode", "Cancelled", "DocumentStatus", "DocumentLines"]

    def __init__(self, client: SapB1Client, connection: str, settings: Callable[[], SapB1Settings]) -> None:
        self.client, self.connection, self.settings = client, connection, settings

    def find(self, store_number: str, customer_id: str) -> ErpReturnRef | None:
        rows = self.client.rows(
            mapping.RETURN_REQUESTS,
            filter=f"NumAtCard eq {literal(store_number)} and CardCode eq {literal(customer_id)}",
            select=self.FIELDS,
            page_size=self.settings().page_size,
        )
        found = [r for r in rows if r.get("NumAtCard") == store_number and r.get("Cancelled") != "tYES"]
        return mapping.return_ref(found[0]) if found else None

    def create(self, draft: ReturnDraft) -> ErpReturnRef:
        return mapping.return_ref(
            self.client.create(mapping.RETURN_REQUESTS, mapping.return_request_body(draft, self.settings()))
        )

    def changes(self, since: datetime) -> Iterator[Page]:
        """Return requests changed since ``since`` (a return drawn off one stamps it)."""
        yield from document_pages(
            self.client,
            mapping.RETURN_REQUESTS,
            "return",
            since,
            self.settings(),
            self.connection,
            prefix=f"{mapping.RETURN_REQUESTS}/",
        )

    def get(self, id: str) -> ReturnReceipt:
        entry = document_key(id.rpartition("/")[2], "return request", self.connection)
        record = self.client.get(mapping.RETURN_REQUESTS, entry)
        return mapping.return_receipt(record, ZoneInfo(self.settings().server_timezone))


CATALOG = ("product", "price", "stock")
"""The entities of ``catalog.py``'s ports (imported only by a worker that asks for one)."""


class SapB1System:
    """An SAP Business One connection: its ports by entity and direction."""

    kind = "sap_b1"

    def __init__(self, client: SapB1Client, connection: str, settings: Callable[[], SapB1Settings]) -> None:
        self.connection, self.client, self.settings = connection, client, settings
        customers = SapB1Customers(client, connection, settings)
        payments = SapB1Payments(client, connection, settings)
        cancellations = SapB1Cancellations(client, connection, settings)
        self._ports: dict[tuple[str, str], object] = {
            ("customer", "source"): customers,
            ("customer", "target"): customers,
            ("order", "target"): SapB1Orders(client, connection, settings),
            ("shipment", "source"): SapB1Deliveries(client, connection, settings),
            ("invoice", "source"): SapB1Invoices(client, connection, settings),
            ("payment", "target"): payments,
            ("cancellation", "target"): cancellations,
            ("cancellation", "source"): cancellations,
            ("creditmemo", "target"): SapB1CreditMemos(client, connection, settings, payments),
            ("creditmemo", "source"): SapB1CreditNotes(client, connection, settings),
        }
        returns = SapB1Returns(client, connection, settings)
        self._ports[("return", "target")] = self._ports[("return", "source")] = returns

    def port(self, entity: str, direction: str) -> Any:
        if entity in CATALOG and (CATALOG[0], "source") not in self._ports:  # made when first asked for
            from erpsync.systems.sap_b1.catalog import catalog_ports  # it builds on this module

            self._ports.update(catalog_ports(self.client, self.connection, self.settings))
        try:
            return self._ports[(entity, direction)]
        except KeyError:
            raise NotFoundError(f"sap_b1 serves no {entity} {direction}", system=self.connection) from None
