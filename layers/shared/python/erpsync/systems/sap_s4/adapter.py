"""SAP S/4HANA's ports: the orders target (``A_SalesOrder`` deep insert guarded by
``PurchaseOrderByCustomer``), cancellations as rejections of every item, customers as one generic
sold-to or as business partners (``sold_to``), outbound deliveries as the shipments source and
billing documents as the invoices source.

Polling (SYSTEMS-NOTES §4.3/4.4): billing documents by ``LastChangeDateTime`` as a keyset (ordered by
stamp and number; each request asks for the rows after the last one read). Outbound deliveries have
only a day-granular ``LastChangeDate``: every poll reads from the cursor's day less
``delivery_look_back_days`` (then, by ``CreationDate``, those never changed), and the notice's
version (``DeliveryVersion`` and goods movement status) lets the poll leave out what a worker
already finished.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from erpsync.errors import MappingMissing, NotFoundError, PermanentError, ValidationFailed
from erpsync.model import (
    ChangeNotice,
    CreditMemoDraft,
    CreditNote,
    Customer,
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
from erpsync.systems.sap_s4 import mapping, odata_v2
from erpsync.systems.sap_s4.client import Answer, S4Client
from erpsync.systems.sap_s4.odata_v2 import literal, normalise_number
from erpsync.systems.sap_s4.settings import TRACKING_FIELDS, S4Settings

log = logging.getLogger(__name__)
GUARD_FIELDS = [
    "SalesOrder",
    "PurchaseOrderByCustomer",
    "OverallSDProcessStatus",
    "OverallSDDocumentRejectionSts",
    "to_Item",
]
DELIVERY_CHANGE_FIELDS = [
    "DeliveryDocument",
    "LastChangeDate",
    "CreationDate",
    "DeliveryVersion",
    "OverallGoodsMovementStatus",
]
MS = timedelta(milliseconds=1)
CATALOG = ("product", "price", "stock")
"""The catalog's entities (their ports live in ``sap_s4.catalog``)."""


class DuplicatePurchaseOrder(PermanentError):
    """Two live S/4 orders carry one store number: which one is the store's is for a person to say."""

    error_type = "duplicate_number"


class TotalDiffers(ValidationFailed):
    """SAP's net total is not the store's and the settings say to hold such orders for review."""

    error_type = "total_mismatch"


def log_warnings(answer: Answer, what: str, connection: str) -> None:
    """``sap-message`` warnings of a write, logged with the connection (they never fail it)."""
    for w in answer.warnings:
        log.warning(
            "%s: SAP says (%s %s): %s",
            what,
            w.severity or "message",
            w.code,
            w.message,
            extra={"connection": connection, "sap_code": w.code},
        )


class S4Customers:
    """Customers as the settings' ``sold_to`` says.

    ``generic``: every store customer is the generic sold-to (``generic_sold_to``); no business
    partner is read or written. ``find`` and ``create`` answer the generic sold-to, so the orders
    flow books orders on it; ``keeps_customers`` is False, so the customers flow files each store
    account as filtered instead of writing it.

    ``customer``: each store customer is a business partner (``API_BUSINESS_PARTNER``) with the
    customer roles and a sales area, its id the partner's ``Customer``. ``find`` looks the e-mail up
    in ``A_AddressEmailAddress`` by its search field (``SearchEmailAddress``, the first 20
    characters in upper case: UNVERIFIED that S/4 derives it so) and compares the whole address
    case-insensitively, then reads each partner it belongs to; a create whose answer was lost is
    found again that way (its e-mail went in with it). ``update`` patches the partner's names and its
    first address (street, city, postcode, region, country, phone); an e-mail is the identity and is
    never rewritten."""

    EXPAND = ["to_BusinessPartnerAddress/to_EmailAddress", "to_BusinessPartnerAddress/to_PhoneNumber"]

    def __init__(self, client: S4Client, connection: str, settings: Callable[[], S4Settings]) -> None:
        self.client, self.connection, self.settings = client, connection, settings

    @property
    def keeps_customers(self) -> bool:
        """Whether store customers are written here (``sold_to`` ``customer``)."""
        return self.settings().sold_to == "customer"

    @property
    def service(self) -> str:
        return self.settings().business_partner_service

    @property
    def zone(self) -> ZoneInfo:
        """The system's time zone, the partners' stamps' (``server_timezone``)."""
        return ZoneInfo(self.settings().server_timezone)

    def changes(self, since: datetime) -> Iterator[Page]:
        """The partners with a customer changed (then created and never changed) at or after
        ``since``, named by their ``Customer`` (``DayTimeSet``); none with ``sold_to`` ``generic``."""
        if not self.keeps_customers:
            return
        cfg = self.settings()
        keyset = DayTimeSet(
            self.client,
            self.service,
            "A_BusinessPartner",
            "BusinessPartner",
            ZoneInfo(cfg.server_timezone),
            where="Customer ne ''",
            select=["Customer"],
        )

        def notice(row: dict[str, Any], at: datetime | None) -> ChangeNotice:
            return ChangeNotice(
                source=self.connection,
                entity="customer",
                id=str(row["Customer"]),
                version=mapping.partner_version(row, keyset.zone),
                occurred_at=at,
            )

        yield from keyset.changes(since, cfg.page_size, notice)

    def _generic(self, email: str) -> Customer:
        return Customer(email=email, source_id=self.settings().generic_sold_to)

    def find(self, email: str) -> list[Customer]:
        if not self.keeps_customers:
            return [self._generic(email)]
        wanted = email.strip().lower()
        mails = self.client.rows(
            self.service,
            "A_AddressEmailAddress",
            filter=f"SearchEmailAddress eq {literal(wanted.upper()[:20])}",
            select=["AddressID", "EmailAddress"],
        )
        addresses = sorted({str(m["AddressID"]) for m in mails if str(m.get("EmailAddress") or "").lower() == wanted})
        if not addresses:
            return []
        rows = self.client.rows(
            self.service,
            "A_BusinessPartnerAddress",
            filter=" or ".join(f"AddressID eq {literal(a)}" for a in addresses),
            select=["BusinessPartner", "AddressID"],
        )
        found = [self._partner(str(bp)) for bp in sorted({r["BusinessPartner"] for r in rows})]
        return [mapping.customer_from_partner(p, self.zone) for p in found if p.get("Customer")]

    def _partner(self, number: str) -> dict[str, Any]:
        path = S4Client.key("A_BusinessPartner", number)
        return self.client.get(self.service, path, expand=self.EXPAND).entity

    def _by_customer(self, id: str) -> dict[str, Any]:
        rows = list(
            self.client.rows(self.service, "A_BusinessPartner", filter=f"Customer eq {literal(id)}", expand=self.EXPAND)
        )
        if not rows:
            raise NotFoundError(f"{self.connection} has no business partner of customer {id}", system=self.connection)
        return rows[0]

    def create(self, customer: Customer) -> Customer:
        if not self.keeps_customers:
            return self._generic(customer.email)
        cfg = self.settings()
        made = self.client.create(self.service, "A_BusinessPartner", mapping.partner_body(customer, cfg, None))
        log_warnings(made, f"business partner for {customer.email}", self.connection)
        number = str(made.entity.get("BusinessPartner") or "")
        if not made.entity.get("Customer"):
            raise ValidationFailed(
                f"{self.connection}: business partner {number} was made without a customer "
                f"(roles {', '.join(cfg.customer_roles)}): orders cannot be booked on it",
                system=self.connection,
            )
        return mapping.customer_from_partner(self._partner(number), self.zone)

    def get(self, id: str) -> Customer:
        if not self.keeps_customers:
            raise self._not_kept()
        return mapping.customer_from_partner(self._by_customer(id), self.zone)

    def update(self, id: str, customer: Customer, current: Customer | None = None) -> Customer:
        if not self.keeps_customers:
            raise self._not_kept()
        partner = self._by_customer(id)
        number = str(partner["BusinessPartner"])
        names = mapping.partner_names(customer, str(partner.get("BusinessPartnerCategory") or ""))
        self.client.update(self.service, S4Client.key("A_BusinessPartner", number), names, etag="")
        addresses = odata_v2.expanded(partner, "to_BusinessPartnerAddress") or []
        if addresses:
            first = addresses[0]
            fields = mapping.partner_address(customer.address)
            if fields:
                path = S4Client.key(
                    "A_BusinessPartnerAddress", BusinessPartner=number, AddressID=str(first["AddressID"])
                )
                self.client.update(self.service, path, fields, etag="")
            phones = odata_v2.expanded(first, "to_PhoneNumber") or []
            if phones and customer.phone and customer.phone != phones[0].get("PhoneNumber"):
                path = S4Client.key(
                    "A_AddressPhoneNumber",
                    AddressID=str(phones[0]["AddressID"]),
                    Person=str(phones[0].get("Person") or ""),
                    OrdinalNumber=str(phones[0]["OrdinalNumber"]),
                )
                self.client.update(self.service, path, {"PhoneNumber": customer.phone[:30]}, etag="")
        return self.get(id)

    def _not_kept(self) -> PermanentError:
        return PermanentError(
            f"{self.connection}: S/4HANA customers are the generic sold-to {self.settings().generic_sold_to} "
            "(sold_to generic): no business partner is read or written",
            system=self.connection,
        )


class DayTimeSet:
    """An entity set whose change stamp is a date and a time field in the system's time zone
    (business partners' ``LastChangeDate``/``LastChangeTime``), read as a keyset (date, time, key),
    then by the creation stamp for the rows never changed (the change date null, as SAP leaves it
    until a change: UNVERIFIED for partners). The last page proves the newest stamp read."""

    STAMPS = (("LastChangeDate", "LastChangeTime"), ("CreationDate", "CreationTime"))

    def __init__(
        self,
        client: S4Client,
        service: str,
        entity_set: str,
        key: str,
        zone: ZoneInfo,
        *,
        where: str = "",
        select: list[str] | None = None,
    ) -> None:
        self.client, self.service, self.entity_set, self.key, self.zone = client, service, entity_set, key, zone
        self.where, self.select = where, select or []

    def _local(self, since: datetime) -> tuple[date, time]:
        """``since`` as the system's local date and time to the second; an hour earlier inside an
        hour that repeats (the clock goes back: changes made in the repeat carry earlier times)."""
        local = since.astimezone(self.zone)
        wall = local.replace(tzinfo=None, microsecond=0)
        if local.replace(fold=0).utcoffset() != local.replace(fold=1).utcoffset():
            wall -= timedelta(hours=1)
        return wall.date(), wall.time()

    def _stamp(self, row: dict[str, Any], day_field: str, time_field: str) -> tuple[date, time] | None:
        day, clock = odata_v2.parse_datetime(row.get(day_field)), odata_v2.parse_time(row.get(time_field))
        return None if day is None else (day.astimezone(UTC).date(), clock or time())

    def changes(
        self, since: datetime, page_size: int, notice: Callable[[dict[str, Any], datetime | None], ChangeNotice]
    ) -> Iterator[Page]:
        day, clock = self._local(since)
        newest: datetime | None = None
        fields = [f for pair in self.STAMPS for f in pair]
        for n, (day_field, time_field) in enumerate(self.STAMPS):
            last: tuple[date, time, str] | None = None
            while True:
                d, t = literal(day), literal(clock)
                condition = f"({day_field} gt {d} or ({day_field} eq {d} and {time_field} ge {t}))"
                if n:
                    condition += f" and {self.STAMPS[0][0]} eq null"
                if last is not None:
                    d, t, k = literal(last[0]), literal(last[1]), literal(last[2])
                    condition += (
                        f" and ({day_field} gt {d} or ({day_field} eq {d} and ({time_field} gt {t} or "
                        f"({time_field} eq {t} and {self.key} gt {k}))))"
                    )
                rows = next(
                    self.client.pages(
                        self.service,
                        self.entity_set,
                        filter=f"{self.where} and {condition}" if self.where else condition,
                        select=list(dict.fromkeys([self.key, *self.select, *fields])),
                        orderby=f"{day_field},{time_field},{self.key}",
                        top=page_size,
                    )
                )
                notices = []
                for row in rows:
                    stamp = self._stamp(row, day_field, time_field)
                    at = datetime.combine(*stamp, tzinfo=self.zone).astimezone(UTC) if stamp else None
                    if at is not None:
                        newest = at if newest is None or at > newest else newest
                    notices.append(notice(row, at))
                done = len(rows) < page_size
                yield Page(notices, newest if done and n == len(self.STAMPS) - 1 else None)
                if done:
                    break
                tail = self._stamp(rows[-1], day_field, time_field)
                if tail is None:
                    break  # a row without its stamp cannot continue the keyset (the filter excludes it)
                last = (tail[0], tail[1], str(rows[-1][self.key]))


class S4Orders:
    """Store orders as S/4 sales orders, looked up by the store's number in ``PurchaseOrderByCustomer``."""

    def __init__(self, client: S4Client, connection: str, settings: Callable[[], S4Settings]) -> None:
        self.client, self.connection, self.settings = client, connection, settings

    def find(self, number: str) -> ErpOrderRef | None:
        """The live order (not rejected as a whole) carrying ``number``; ``DuplicatePurchaseOrder``
        when two do (S/4 does not keep ``PurchaseOrderByCustomer`` unique)."""
        mapping.check_number(number, self.connection)
        found = live_orders(self.client, self.settings(), number)
        if len(found) > 1:
            orders = ", ".join(str(r.get("SalesOrder")) for r in found)
            raise DuplicatePurchaseOrder(
                f"{self.connection}: sales orders {orders} all carry store number {number} in "
                "PurchaseOrderByCustomer; reject the extra ones in S/4HANA",
                system=self.connection,
            )
        return mapping.order_ref(found[0]) if found else None

    def create(self, draft: SalesOrderDraft) -> ErpOrderRef:
        cfg = self.settings()
        body = mapping.order_body(draft, cfg)
        answer = self.client.create(cfg.sales_order_service, "A_SalesOrder", body)
        log_warnings(answer, f"order {draft.number}", self.connection)
        ref = mapping.order_ref(answer.entity, draft)
        difference = mapping.net_difference(answer.entity, draft)
        if abs(difference) > cfg.total_tolerance:
            text = (
                f"{self.connection}: sales order {ref.number} (store order {draft.number}) nets "
                f"{answer.entity.get('TotalNetAmount')}, the store's net is {draft.total - draft.tax_total} "
                f"(difference {difference})"
            )
            log.warning(text, extra={"connection": self.connection, "difference": str(difference)})
            if cfg.fail_on_total_difference:
                raise TotalDiffers(
                    text + ": held for review (settings.fail_on_total_difference); a retry binds the order as it is",
                    system=self.connection,
                )
        return ref


def live_orders(client: S4Client, cfg: S4Settings, store_order: str) -> list[dict[str, Any]]:
    """The sales orders carrying store order ``store_order`` in ``PurchaseOrderByCustomer`` and not
    rejected as a whole, with their items."""
    rows = client.rows(
        cfg.sales_order_service,
        "A_SalesOrder",
        filter=f"PurchaseOrderByCustomer eq {literal(store_order)}",
        select=GUARD_FIELDS,
        expand=["to_Item"],
    )
    return [r for r in rows if r.get("PurchaseOrderByCustomer") == store_order and mapping.live(r)]


def live_order(client: S4Client, connection: str, cfg: S4Settings, store_order: str, what: str) -> dict[str, Any]:
    """The live sales order of store order ``store_order``, with its items (``what``: the store
    document it is looked up for, named in the error when there is none)."""
    found = live_orders(client, cfg, store_order)
    if not found:
        raise NotFoundError(f"{connection} has no live sales order {store_order} for {what}", system=connection)
    return found[0]


class S4CreditMemos:
    """Store refunds as S/4 credit memo requests (``API_CREDIT_MEMO_REQUEST_SRV``), the target of
    the credit-memos flow. The request is made with reference to the store order's sales order,
    each refunded line to the order item that carries its store line (else the first of its
    material), so SAP prices it as the order item was priced (an item's pricing elements cannot be
    sent: SAP's metadata marks them not insertable) and never credits more than was ordered. The
    store's credit memo number goes into ``PurchaseOrderByCustomer`` and ``AssignmentReference``
    (the duplicate guard, looked up before a create and after a lost answer; a clerk's request
    carries its order's number in the first and not the second). SAP determines the tax, so its
    net is compared with the store's (refund less tax): the shipping refund and an adjustment have
    no item here, and show as a difference, logged (not held: the request exists by then, and the
    flow binds what it finds). ``release`` lifts a billing block; the credit memo itself is
    billed from the request in S/4 (VF01), and paying it out is FI's (no A2X API: the credit stays
    the customer's, ``settled_without_refund``)."""

    FIELDS = [
        "CreditMemoRequest",
        "PurchaseOrderByCustomer",
        "AssignmentReference",
        "SoldToParty",
        "TotalNetAmount",
        "HeaderBillingBlockReason",
        "OverallSDDocumentRejectionSts",
        "OverallSDProcessStatus",
        "LastChangeDateTime",
    ]

    def __init__(self, client: S4Client, connection: str, settings: Callable[[], S4Settings]) -> None:
        self.client, self.connection, self.settings = client, connection, settings

    def find(self, store_number: str, customer_id: str) -> ErpCreditMemo | None:
        """The request erpsync made for store credit memo ``store_number``: a live one first, a
        rejected one rather than none (a clerk's rejection is never undone by a second request)."""
        mapping.check_number(store_number, self.connection)
        rows = self.client.rows(
            self.settings().credit_memo_request_service,
            "A_CreditMemoRequest",
            filter=f"PurchaseOrderByCustomer eq {literal(store_number)}",
            select=self.FIELDS,
        )
        ours = sorted((r for r in rows if mapping.erpsyncs(r) == store_number), key=lambda r: not mapping.live(r))
        return mapping.credit_memo_from_s4(ours[0]) if ours else None

    def create(self, draft: CreditMemoDraft) -> ErpCreditMemo:
        cfg = self.settings()
        order = self._order(draft)
        body = mapping.credit_memo_request_body(draft, order, cfg, self.connection)
        answer = self.client.create(cfg.credit_memo_request_service, "A_CreditMemoRequest", body)
        log_warnings(answer, f"credit memo request for {draft.store_number}", self.connection)
        memo = mapping.credit_memo_from_s4(answer.entity)
        difference = cents(memo.amount) - cents(draft.total - draft.tax_total)
        if abs(difference) > cfg.total_tolerance:
            text = (
                f"{self.connection}: credit memo request {memo.number} (store credit memo {draft.store_number}) nets "
                f"{memo.amount}, the store refunded {draft.total - draft.tax_total} net (difference {difference}: "
                "shipping refunds and adjustments have no item, SAP prices the lines as the order)"
            )
            log.warning(text, extra={"connection": self.connection, "difference": str(difference)})
        return memo

    def _order(self, draft: CreditMemoDraft) -> dict[str, Any]:
        return live_order(self.client, self.connection, self.settings(), draft.store_order, draft.store_number)

    def release(self, memo: ErpCreditMemo) -> ErpCreditMemo:
        """Lift the request's billing block (``PATCH`` with its etag), so it can be billed."""
        service = self.settings().credit_memo_request_service
        path = S4Client.key("A_CreditMemoRequest", memo.number)
        current = self.client.get(service, path)
        if current.entity.get("HeaderBillingBlockReason"):
            self.client.update(service, path, {"HeaderBillingBlockReason": ""}, etag=current.etag)
            current = self.client.get(service, path)
        return mapping.credit_memo_from_s4(current.entity)

    def settled_without_refund(self, memo: ErpCreditMemo) -> str:
        return (
            "no refund made: S/4HANA pays a credit out in FI (no A2X API), so the credit memo request "
            "stays the customer's credit until it is billed and cleared there"
        )

    def refunds_of(self, store_number: str, customer_id: str) -> list[ErpPayment]:
        return []

    def refund(self, memo: ErpCreditMemo, draft: PaymentDraft) -> ErpPayment:
        raise PermanentError(
            f"{self.connection}: refunds are not made in S/4HANA (FI has no A2X API for them)", system=self.connection
        )


def _midnight(day: datetime) -> datetime:
    return datetime.combine(day.astimezone(UTC).date(), time(), tzinfo=UTC)


class S4Cancellations:
    """Store cancellations as S/4 rejections, the target of the cancellations flow. The A2X API has
    no cancel of a sales order: an order whose every item carries a rejection reason
    (``SalesDocumentRjcnReason``, the settings' ``rejection_reason``) is rejected as a whole
    (``OverallSDDocumentRejectionSts`` ``C``), which is S/4's cancelled order. Items are patched one
    by one (the item has no concurrency token: no ``If-Match``); an order with anything delivered is
    refused before a write (a return or credit memo is for a person to decide), so no order is left
    half rejected by erpsync. Rejecting again after a lost answer is harmless. The store's comments
    are not sent (the sim holds no order texts).

    And the orders rejected as a whole in S/4, the source of the erp-cancellations flow: polled by
    ``LastChangeDateTime`` as billing documents are (``StampedSet``), named by ``SalesOrder`` as the
    order binding names them."""

    def __init__(self, client: S4Client, connection: str, settings: Callable[[], S4Settings]) -> None:
        self.client, self.connection, self.settings = client, connection, settings

    def changes(self, since: datetime) -> Iterator[Page]:
        cfg = self.settings()
        rejected = f"OverallSDDocumentRejectionSts eq {literal(mapping.REJECTED)}"
        keyset = StampedSet(
            self.client, self.connection, cfg.sales_order_service, "A_SalesOrder", "SalesOrder", rejected
        )
        yield from keyset.changes("cancellation", since, cfg.page_size)

    def get(self, id: str) -> OrderStatus:
        """Where order ``id`` stands: ``Cancelled`` once rejected as a whole, else its
        ``OverallSDProcessStatus``."""
        cfg = self.settings()
        order = self.client.get(cfg.sales_order_service, S4Client.key("A_SalesOrder", id)).entity
        number = odata_v2.normalise_number(order["SalesOrder"])
        rejected = order.get("OverallSDDocumentRejectionSts") == mapping.REJECTED
        status = mapping.CANCELLED if rejected else str(order.get("OverallSDProcessStatus") or "")
        return OrderStatus(source_id=number, number=number, status=status)

    def cancel(self, ref: str, comments: list[str] | None = None) -> str:
        cfg = self.settings()
        number = ref.rpartition("/")[2]
        if not cfg.rejection_reason:
            raise MappingMissing(
                f"{self.connection}: settings.rejection_reason (the S/4HANA rejection reason of a store "
                "cancellation) is not set",
                system=self.connection,
            )
        service = cfg.sales_order_service
        order = self.client.get(service, S4Client.key("A_SalesOrder", number), expand=["to_Item"]).entity
        if order.get("OverallSDDocumentRejectionSts") == mapping.REJECTED:
            return mapping.CANCELLED
        items = [i for i in odata_v2.expanded(order, "to_Item") or [] if not i.get("SalesDocumentRjcnReason")]
        delivered = [str(i["SalesOrderItem"]) for i in items if str(i.get("DeliveryStatus") or "A") not in ("", "A")]
        if delivered:
            raise ValidationFailed(
                f"{self.connection}: sales order {number} has items delivered ({', '.join(delivered)}): "
                "it cannot be rejected; a return or a credit memo is for a person to decide",
                system=self.connection,
            )
        for item in items:
            path = S4Client.key("A_SalesOrderItem", SalesOrder=number, SalesOrderItem=str(item["SalesOrderItem"]))
            self.client.update(service, path, {"SalesDocumentRjcnReason": cfg.rejection_reason}, etag="")
        after = self.client.get(service, S4Client.key("A_SalesOrder", number)).entity
        if after.get("OverallSDDocumentRejectionSts") == mapping.REJECTED:
            return mapping.CANCELLED
        return str(after.get("OverallSDDocumentRejectionSts") or "")


class S4Deliveries:
    """Outbound deliveries (``A_OutbDeliveryHeader``), the source of the shipments flow: shipped
    once goods issue is posted, tracking from ``tracking_source``."""

    def __init__(self, client: S4Client, connection: str, settings: Callable[[], S4Settings]) -> None:
        self.client, self.connection, self.settings = client, connection, settings

    def changes(self, since: datetime) -> Iterator[Page]:
        """Deliveries changed on the cursor's day or after (less the look-back days), then those
        created since and never changed (``LastChangeDate`` null: SAP leaves it empty until a
        change), each pass by day and number as a keyset. The last page proves the start of the
        newest day read (that day is read again next time: its later changes carry the same date)."""
        cfg = self.settings()
        first = _midnight(since) - timedelta(days=cfg.delivery_look_back_days)
        newest: datetime | None = None
        passes = (("LastChangeDate", ""), ("CreationDate", " and LastChangeDate eq null"))
        for n, (day_field, extra) in enumerate(passes):
            last: tuple[datetime, str] | None = None
            while True:
                condition = f"{day_field} ge {literal(first.replace(tzinfo=None))}{extra}"
                if last is not None:
                    d, k = literal(last[0].replace(tzinfo=None)), literal(last[1])
                    condition += f" and ({day_field} gt {d} or ({day_field} eq {d} and DeliveryDocument gt {k}))"
                rows = next(
                    self.client.pages(
                        cfg.outbound_delivery_service,
                        "A_OutbDeliveryHeader",
                        filter=condition,
                        select=DELIVERY_CHANGE_FIELDS,
                        orderby=f"{day_field},DeliveryDocument",
                        top=cfg.page_size,
                    )
                )
                for row in rows:
                    day = odata_v2.parse_datetime(row.get(day_field))
                    if day is not None:
                        newest = max(newest, _midnight(day)) if newest is not None else _midnight(day)
                notices = [
                    ChangeNotice(
                        source=self.connection,
                        entity="shipment",
                        id=odata_v2.normalise_number(r["DeliveryDocument"]),
                        version=mapping.delivery_version(r),
                    )
                    for r in rows
                ]
                done = len(rows) < cfg.page_size
                yield Page(notices, newest if done and n == len(passes) - 1 else None)
                if done:
                    break
                tail = rows[-1]
                last = (_midnight(odata_v2.parse_datetime(tail.get(day_field)) or first), str(tail["DeliveryDocument"]))

    def get(self, id: str) -> Shipment:
        cfg = self.settings()
        expand = ["to_DeliveryDocumentItem"]
        if cfg.tracking_source.startswith("text:"):
            expand.append("to_DeliveryDocumentText")
        elif cfg.tracking_source in TRACKING_FIELDS[1:]:
            expand.append("to_HandlingUnitHeaderDelivery")
        answer = self.client.get(cfg.outbound_delivery_service, S4Client.key("A_OutbDeliveryHeader", id), expand=expand)
        return mapping.shipment_from_s4(answer.entity, cfg)


class StampedSet:
    """An entity set read by ``LastChangeDateTime`` as a keyset (billing documents, sales orders).

    ``changes`` yields the rows changed at or after ``since`` (those ``where`` holds for) as notices
    of ``entity``, ordered by stamp and key; each request asks for the rows after the last one read,
    and the last page proves the newest stamp read. The answer shows the stamp to the millisecond,
    SAP may keep it finer (``Precision=7``): the next page's ``gt`` then reads again the rows of the
    last millisecond (left out here, by key), and a full page of nothing but those reads that
    millisecond whole, then goes on after it."""

    def __init__(
        self,
        client: S4Client,
        connection: str,
        service: str,
        entity_set: str,
        key: str,
        where: str = "",
        *,
        expand: list[str] | None = None,
        notices: Callable[[str, dict[str, Any]], list[ChangeNotice]] | None = None,
    ) -> None:
        self.client, self.connection, self.service = client, connection, service
        self.entity_set, self.key, self.where = entity_set, key, where
        self.expand = expand or []
        """Navigations read with each row (for ``notices``)."""
        self.notices = notices or (lambda entity, row: [self._notice(entity, row)])
        """A row as the notices it announces: by default one of ``entity``, named by ``key``."""

    def changes(self, entity: str, since: datetime, page_size: int) -> Iterator[Page]:
        start = since.astimezone(UTC)
        newest: datetime | None = None
        last: tuple[datetime, str] | None = None
        same_ms: set[str] = set()
        """Keys read whose stamp (as answered) is ``last``'s."""
        while True:
            condition = f"LastChangeDateTime ge {literal(start)}"
            if last is not None:
                t, k = literal(last[0]), literal(last[1])
                condition += f" and (LastChangeDateTime gt {t} or (LastChangeDateTime eq {t} and {self.key} gt {k}))"
            rows = self._page(condition, top=page_size)
            full = len(rows) == page_size
            fresh = [r for r in rows if not (last and self.stamp(r) == last[0] and self._number(r) in same_ms)]
            jumped = full and not fresh and last is not None
            if jumped and last is not None:  # more rows share one millisecond than a page holds
                ms = last[0]
                within = f"LastChangeDateTime ge {literal(ms)} and LastChangeDateTime lt {literal(ms + MS)}"
                fresh = [r for r in self._page(within) if self._number(r) not in same_ms]
                start, last, same_ms = ms + MS, None, set()
            for row in fresh:
                stamp = self.stamp(row)
                newest = max(newest, stamp) if newest is not None else stamp
            yield Page([n for r in fresh for n in self.notices(entity, r)], None if full else newest)
            if not full:
                return
            if jumped:
                continue  # a millisecond read whole: on from its end
            tail = self.stamp(fresh[-1])
            if last is None or tail != last[0]:
                same_ms = set()
            same_ms |= {self._number(r) for r in fresh if self.stamp(r) == tail}
            last = (tail, self._number(fresh[-1]))

    def _page(self, condition: str, top: int | None = None) -> list[dict[str, Any]]:
        """The first page (``top`` rows) of what ``condition`` finds; every row when no ``top``."""
        pages = self.client.pages(
            self.service,
            self.entity_set,
            filter=f"{self.where} and {condition}" if self.where else condition,
            select=[self.key, "LastChangeDateTime", *dict.fromkeys(e.split("/")[0] for e in self.expand)],
            expand=self.expand or None,
            orderby=f"LastChangeDateTime,{self.key}",
            top=top,
        )
        return next(pages) if top else [r for page in pages for r in page]

    def _number(self, row: dict[str, Any]) -> str:
        return str(row[self.key])

    def stamp(self, row: dict[str, Any]) -> datetime:
        stamp = odata_v2.parse_datetime(row.get("LastChangeDateTime"))
        if stamp is None:  # a row without a stamp can neither continue a keyset nor prove a checkpoint
            raise ValidationFailed(
                f"{self.connection}: {self.entity_set} {row.get(self.key)} has no LastChangeDateTime",
                system=self.connection,
            )
        return stamp.astimezone(UTC)

    def _notice(self, entity: str, row: dict[str, Any]) -> ChangeNotice:
        return ChangeNotice(
            source=self.connection,
            entity=entity,
            id=odata_v2.normalise_number(row[self.key]),
            version=self.stamp(row).isoformat(),
        )


class S4BillingDocuments:
    """Billing documents (``A_BillingDocument``, read-only in the API), the source of the invoices flow."""

    def __init__(self, client: S4Client, connection: str, settings: Callable[[], S4Settings]) -> None:
        self.client, self.connection, self.settings = client, connection, settings

    def changes(self, since: datetime) -> Iterator[Page]:
        """Billing documents changed at or after ``since`` (``stamped_changes``)."""
        cfg = self.settings()
        keyset = StampedSet(
            self.client, self.connection, cfg.billing_document_service, "A_BillingDocument", "BillingDocument"
        )
        yield from keyset.changes("invoice", since, cfg.page_size)

    def get(self, id: str) -> Invoice:
        cfg = self.settings()
        answer = self.client.get(
            cfg.billing_document_service, S4Client.key("A_BillingDocument", id), expand=["to_Item"]
        )
        return mapping.invoice_from_s4(answer.entity, cfg)


class S4CreditNotes:
    """Credit memos billed in S/4 (billing documents of SD category ``O``, e.g. ``G2``), the source
    of the erp-credit-memos flow. Each item bills a credit memo request item
    (``SalesDocument``/``SalesDocumentItem``); the request item's reference names the sales order
    item it credits, so the request is read too (one ``GET``). An item billing a customer return
    (``SalesSDDocumentCategory`` ``H``) credits that return's item, which the returns flow bound to
    its store order. A request erpsync made from a store
    refund (its ``AssignmentReference`` the store number it also carries in
    ``PurchaseOrderByCustomer``) makes ``external_ref``: it never goes back. The store order's
    number is the referenced order's ``PurchaseOrderByCustomer``; billing documents are read only,
    so ``mark`` writes nothing (the credit memo carries the request's customer reference)."""

    def __init__(self, client: S4Client, connection: str, settings: Callable[[], S4Settings]) -> None:
        self.client, self.connection, self.settings = client, connection, settings

    def changes(self, since: datetime) -> Iterator[Page]:
        cfg = self.settings()
        where = f"SDDocumentCategory eq {literal(mapping.CREDIT_MEMO_CATEGORY)}"
        keyset = StampedSet(
            self.client, self.connection, cfg.billing_document_service, "A_BillingDocument", "BillingDocument", where
        )
        yield from keyset.changes("creditmemo", since, cfg.page_size)

    def get(self, id: str) -> CreditNote:
        cfg = self.settings()
        memo = self.client.get(
            cfg.billing_document_service, S4Client.key("A_BillingDocument", id), expand=["to_Item"]
        ).entity
        requests: dict[str, dict[str, Any]] = {}
        for item in odata_v2.expanded(memo, "to_Item") or []:
            number = normalise_number(item.get("SalesDocument"))
            if number and number not in requests and item.get("SalesSDDocumentCategory") != mapping.RETURN_CATEGORY:
                path = S4Client.key("A_CreditMemoRequest", number)
                requests[number] = self.client.get(cfg.credit_memo_request_service, path, expand=["to_Item"]).entity
        orders: dict[str, str] = {}
        for request in requests.values():
            for number in {
                normalise_number(i.get("ReferenceSDDocument")) for i in odata_v2.expanded(request, "to_Item") or []
            }:
                if number and number not in orders:
                    order = self.client.get(cfg.sales_order_service, S4Client.key("A_SalesOrder", number)).entity
                    orders[number] = str(order.get("PurchaseOrderByCustomer") or "")
        return mapping.credit_note_from_s4(memo, requests, orders, cfg)

    def mark(self, number: str, store_order: str) -> None:
        """Billing documents are read only in the API: nothing is written (``customer_order`` is
        the referenced order's store number already)."""


class S4Returns:
    """Store returns as S/4 customer returns (``API_CUSTOMER_RETURN_SRV``), the target of the returns
    flow: with reference to the store order's sales order, each line on the order item of its store
    line (the store line id in the item's ``PurchaseOrderByCustomer``), ``return_reason`` and
    ``return_follow_up`` on each item when set, SAP pricing them as the order. The store return's
    number is in ``PurchaseOrderByCustomer`` and ``AssignmentReference`` (the duplicate guard, as
    credit memo requests). And what the warehouse received on a customer return (its returns
    delivery's goods receipt: each item's schedule lines' ``DeliveredQtyInOrderQtyUnit``), the source
    of the erp-returns flow: customer returns polled by ``LastChangeDateTime`` (UNVERIFIED that a
    goods receipt stamps the return), named ``CustomerReturn/<number>``."""

    EXPAND = ["to_Item/to_ScheduleLine"]

    def __init__(self, client: S4Client, connection: str, settings: Callable[[], S4Settings]) -> None:
        self.client, self.connection, self.settings = client, connection, settings

    @property
    def service(self) -> str:
        return self.settings().customer_return_service

    def find(self, store_number: str, customer_id: str) -> ErpReturnRef | None:
        mapping.check_number(store_number, self.connection)
        rows = self.client.rows(
            self.service,
            "A_CustomerReturn",
            filter=f"PurchaseOrderByCustomer eq {literal(store_number)}",
            expand=["to_Item"],
        )
        ours = sorted(
            (r for r in rows if mapping.erpsyncs(r) == store_number),
            key=lambda r: not mapping.live(r),
        )
        return mapping.return_ref(ours[0]) if ours else None

    def create(self, draft: ReturnDraft) -> ErpReturnRef:
        cfg = self.settings()
        order = live_order(self.client, self.connection, cfg, draft.store_order, draft.store_number)
        body = mapping.customer_return_body(draft, order, cfg, self.connection)
        answer = self.client.create(self.service, "A_CustomerReturn", body)
        log_warnings(answer, f"customer return for {draft.store_number}", self.connection)
        return mapping.return_ref(answer.entity)

    def changes(self, since: datetime) -> Iterator[Page]:
        cfg = self.settings()

        def notices(entity: str, row: dict[str, Any]) -> list[ChangeNotice]:
            number = normalise_number(row["CustomerReturn"])
            return [
                ChangeNotice(
                    source=self.connection,
                    entity=entity,
                    id=f"{mapping.RETURN_TYPE}/{number}",
                    version=keyset.stamp(row).isoformat(),
                )
            ]

        keyset = StampedSet(
            self.client, self.connection, self.service, "A_CustomerReturn", "CustomerReturn", notices=notices
        )
        yield from keyset.changes("return", since, cfg.page_size)

    def get(self, id: str) -> ReturnReceipt:
        number = id.rpartition("/")[2]
        entity = self.client.get(self.service, S4Client.key("A_CustomerReturn", number), expand=self.EXPAND).entity
        return mapping.return_receipt(entity)


class S4System:
    """An S/4HANA connection: its ports by entity and direction."""

    kind = "sap_s4"

    def __init__(self, client: S4Client, connection: str, settings: Callable[[], S4Settings]) -> None:
        self.connection, self.client, self.settings = connection, client, settings
        self._ports: dict[tuple[str, str], object] = {
            ("customer", "target"): S4Customers(client, connection, settings),
            ("customer", "source"): S4Customers(client, connection, settings),
            ("order", "target"): S4Orders(client, connection, settings),
            ("cancellation", "target"): S4Cancellations(client, connection, settings),
            ("creditmemo", "target"): S4CreditMemos(client, connection, settings),
            ("cancellation", "source"): S4Cancellations(client, connection, settings),
            ("shipment", "source"): S4Deliveries(client, connection, settings),
            ("invoice", "source"): S4BillingDocuments(client, connection, settings),
            ("creditmemo", "source"): S4CreditNotes(client, connection, settings),
            ("return", "target"): S4Returns(client, connection, settings),
            ("return", "source"): S4Returns(client, connection, settings),
        }

    def port(self, entity: str, direction: str) -> Any:
        if entity in CATALOG and (CATALOG[0], "source") not in self._ports:  # made when first asked for
            from erpsync.systems.sap_s4.catalog import catalog_ports  # it builds on this module

            self._ports.update(catalog_ports(self.client, self.connection, self.settings))
        try:
            return self._ports[(entity, direction)]
        except KeyError:
            raise NotFoundError(f"sap_s4 serves no {entity} {direction}", system=self.connection) from None
