"""QuickBooks Online behind erpsync's ports: customers both ways, store orders as sales receipts,
invoices, or estimates that the invoice closes once the order is fulfilled, their payments applied
to the invoices, cancels as voids, store refunds as refund receipts or credit memos, and invoices
the bookkeeper got paid back to the store. ``QuickBooksSystem`` hands each out by entity and
direction.

Lookups that need several queries (a document by number of either kind, items by SKU and by name,
an order's documents and payments) go in one ``/batch`` request: each query's Fault is reported
against what it looked for, and the others' answers are read."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from erpsync.errors import AuthError, NotFoundError, RateLimitedError, RetryableError, ValidationFailed
from erpsync.model import (
    ChangeNotice,
    CreditMemoDraft,
    Customer,
    ErpCreditMemo,
    ErpOrderRef,
    ErpPayment,
    Invoice,
    PaymentDraft,
    SalesOrderDraft,
    cents,
)
from erpsync.systems.ports import Page
from erpsync.systems.quickbooks.client import Fault, QuickBooksClient, quoted, request_id
from erpsync.systems.quickbooks.mapping import (
    OPEN_ESTIMATE,
    customer_from_qbo,
    customer_to_qbo,
    deleted_invoice,
    display_name,
    document_total,
    invoice_from_qbo,
    money,
    order_document,
    payment_note,
    refund_document,
    refund_from_qbo,
    refund_number,
    voided,
)
from erpsync.systems.quickbooks.settings import QuickBooksSettings

log = logging.getLogger("erpsync.quickbooks")

KINDS = ("SalesReceipt", "Invoice", "Estimate")
"""What a store order may be booked as, the final documents first (an estimate is a first stage)."""
REFUND_KINDS = ("RefundReceipt", "CreditMemo")
ENDPOINT = {
    "SalesReceipt": "/salesreceipt",
    "Invoice": "/invoice",
    "Estimate": "/estimate",
    "Payment": "/payment",
    "Customer": "/customer",
    "RefundReceipt": "/refundreceipt",
    "CreditMemo": "/creditmemo",
}
UNDEPOSITED_FUNDS = "Undeposited Funds"
"""The account QuickBooks deposits sales receipts and payments to by default: refund receipts are
paid back from it when the settings name no ``deposit_account``."""
DUPLICATE_NAME = "6240"
CDC_DAYS = 30
"""How far back change data capture reaches; an older cursor is read with a query instead."""
CDC_MAX = 1000
"""Objects one CDC answer holds at most: an answer that reaches it may miss some, read with a query."""


def lookup(client: QuickBooksClient, queries: dict[str, str]) -> tuple[dict[str, dict[str, Any]], dict[str, Exception]]:
    """Run ``queries`` (what each looks for -> query text) in one batch: what -> its ``QueryResponse``
    (``{}`` when nothing matched), and what -> the error of its Fault."""
    bids = {f"bid{i + 1}": what for i, what in enumerate(queries)}
    answers = client.batch([{"bId": bid, "Query": queries[what]} for bid, what in bids.items()])
    found: dict[str, dict[str, Any]] = {}
    failed: dict[str, Exception] = {}
    for bid, what in bids.items():
        got = answers[bid]
        if isinstance(got, Exception):
            failed[what] = got
        else:
            qr = got.get("QueryResponse")
            found[what] = qr if isinstance(qr, dict) else {}
    return found, failed


def lookup_error(failed: dict[str, Exception], connection: str) -> Exception:
    """One error for the lookups that failed, naming each with its own Fault: an auth or throttle
    error as it is (the connection's problem, not the record's), else retryable if any is."""
    for kind in (AuthError, RateLimitedError):
        first = next((e for e in failed.values() if isinstance(e, kind)), None)
        if first is not None:
            return first
    text = "; ".join(f"{what}: {exc}" for what, exc in failed.items())
    if any(isinstance(e, RetryableError) for e in failed.values()):
        return RetryableError(f"{connection} could not look up {text}", system=connection)
    return ValidationFailed(f"{connection} could not look up {text}", system=connection)


def must(client: QuickBooksClient, connection: str, queries: dict[str, str]) -> dict[str, dict[str, Any]]:
    """``lookup``, raising ``lookup_error`` when any query failed."""
    found, failed = lookup(client, queries)
    if failed:
        raise lookup_error(failed, connection)
    return found


def _time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def changed_pages(
    client: QuickBooksClient,
    kind: str,
    entity: str,
    connection: str,
    since: datetime,
    size: int,
    *,
    where: str = "",
    notice: Callable[[dict[str, Any]], ChangeNotice | None] | None = None,
) -> Iterator[Page]:
    """Pages of ``kind`` records changed after ``since`` (and matching ``where``), oldest first,
    ``size`` a query; only the last page proves the newest change time (a page before it proves
    nothing: a record changed meanwhile moves to the end). ``notice`` makes a row's notice (None
    leaves the row out; by default the record's id and change time)."""
    condition = f"MetaData.LastUpdatedTime > {quoted(_time(since))}" + (f" and {where}" if where else "")
    start, newest = 1, None

    def plain(r: dict[str, Any]) -> ChangeNotice:
        return ChangeNotice(source=connection, entity=entity, id=str(r["Id"]), version=_changed(r))

    while True:
        order = f"orderby MetaData.LastUpdatedTime startposition {start} maxresults {size}"
        rows = client.query(f"select * from {kind} where {condition} {order}").get(kind) or []
        notices = [n for n in map(notice or plain, rows) if n is not None]
        stamps = [t for t in (_parse(_changed(r)) for r in rows) if t is not None]
        newest = max([*stamps, newest] if newest else stamps) if stamps else newest
        last = len(rows) < size
        yield Page(notices, newest if last else None)
        if last:
            return
        start += size


class QuickBooksCustomers:
    """Customers, both ways. Email is the identity; ``DisplayName`` must be unique across customers,
    vendors and employees, so a name already taken gets the email after it."""

    def __init__(self, client: QuickBooksClient, connection: str, settings: Callable[[], QuickBooksSettings]) -> None:
        self.client, self.connection, self.settings = client, connection, settings

    def changes(self, since: datetime) -> Iterator[Page]:
        """Pages of customers changed after ``since``, oldest first; the last page proves the newest
        change time (a page before it proves nothing: a customer changed meanwhile moves to the end)."""
        yield from changed_pages(self.client, "Customer", "customer", self.connection, since, self.settings().page_size)

    def _read(self, id: str) -> dict[str, Any]:
        record = self.client.get(f"/customer/{id}").get("Customer")
        if not isinstance(record, dict):
            raise NotFoundError(f"{self.connection} customer {id} does not exist", system=self.connection)
        return record

    def get(self, id: str) -> Customer:
        return customer_from_qbo(self._read(id))

    def find(self, email: str) -> list[Customer]:
        rows = (
            self.client.query(f"select * from Customer where PrimaryEmailAddr = {quoted(email.strip())}").get(
                "Customer"
            )
            or []
        )
        return [
            customer_from_qbo(r)
            for r in rows
            if str(((r.get("PrimaryEmailAddr") or {}).get("Address")) or "").lower() == email.strip().lower()
        ]

    def create(self, customer: Customer) -> Customer:
        name = display_name(customer)
        for attempt in (name, f"{name} ({customer.email})"[:500]):
            body = customer_to_qbo(customer, attempt)
            try:
                made = self.client.post("/customer", body, request_id=request_id(self.connection, "customer", body))
            except Fault as exc:
                if exc.code != DUPLICATE_NAME:
                    raise
                found = self.find(customer.email)  # our own create whose answer was lost
                if found:
                    return found[0]
                continue
            return customer_from_qbo(made.get("Customer"))
        raise ValidationFailed(
            f"{self.connection}: the names {name!r} and {name} ({customer.email}) are taken by other "
            "customers, vendors or employees",
            system=self.connection,
        )

    def update(self, id: str, customer: Customer, current: Customer | None = None) -> Customer:
        record = self._read(id)
        body = customer_to_qbo(customer, str(record.get("DisplayName")))
        body.update({"Id": id, "SyncToken": record["SyncToken"], "sparse": True})
        made = self.client.post("/customer", body, request_id=request_id(self.connection, "customer", body))
        return customer_from_qbo(made.get("Customer"))


class QuickBooksOrders:
    """Store orders booked as sales receipts, invoices or estimates (``QuickBooksSettings.documents``).

    ``estimate`` ("sync twice"): an order the store has not fulfilled becomes an estimate (a first
    stage: ``ErpOrderRef.final`` False); once fulfilled, the orders flow books it again and it becomes
    the invoice whose ``LinkedTxn`` names the estimate, which QuickBooks then closes."""

    def __init__(self, client: QuickBooksClient, connection: str, settings: Callable[[], QuickBooksSettings]) -> None:
        self.client, self.connection, self.settings = client, connection, settings
        self.item_ids: dict[str, str] = {}
        """SKU (or item name) -> item id, as found: items are looked up once per warm worker."""
        self.account_ids: dict[str, str] = {}
        """Account name -> id, as found (Undeposited Funds)."""

    def document_queries(self, number: str, kinds: tuple[str, ...] = KINDS) -> dict[str, str]:
        return {f"{kind} {number}": f"select * from {kind} where DocNumber = {quoted(number)}" for kind in kinds}

    def document(self, number: str) -> tuple[str, dict[str, Any]] | None:
        """``(kind, record)`` of the sales receipt, invoice or estimate with DocNumber ``number``, the
        final one first, if any (one batch)."""
        return self.pick(must(self.client, self.connection, self.document_queries(number)), number)

    @staticmethod
    def pick(found: dict[str, dict[str, Any]], number: str) -> tuple[str, dict[str, Any]] | None:
        for kind in KINDS:
            rows = found.get(f"{kind} {number}", {}).get(kind) or []
            if rows:
                return kind, rows[0]
        return None

    def find(self, number: str) -> ErpOrderRef | None:
        found = self.document(number)
        return _ref(*found) if found else None

    def kind_for(self, draft: SalesOrderDraft) -> str:
        documents = draft.document or self.settings().documents
        if documents == "auto":
            return "SalesReceipt" if draft.paid >= draft.total > 0 else "Invoice"
        if documents == "estimate":
            return "Invoice" if draft.fulfilled else "Estimate"
        return "SalesReceipt" if documents == "sales_receipt" else "Invoice"

    def items(self, skus: list[str], also: dict[str, str] | None = None) -> tuple[dict[str, str], dict[str, Any]]:
        """SKU -> item id, by ``Sku`` first, else by ``Name``: both queries in one batch, for the SKUs
        not known yet, with the queries ``also`` (what -> query), whose answers come second."""
        wanted = [s for s in dict.fromkeys(skus) if s not in self.item_ids]
        queries = dict(also or {})
        if wanted:
            listed = ", ".join(quoted(s) for s in wanted)
            for field in ("Sku", "Name"):
                queries[f"items by {field}"] = f"select * from Item where {field} in ({listed})"
        found = must(self.client, self.connection, queries) if queries else {}
        if wanted:
            for field in ("Name", "Sku"):  # a match by Sku wins over one by name
                for row in found[f"items by {field}"].get("Item") or []:
                    key = str(row.get(field) or "")
                    if key in wanted and row.get("Active", True):
                        self.item_ids[key] = str(row["Id"])
        return {s: self.item_ids[s] for s in skus if s in self.item_ids}, found

    def create(self, draft: SalesOrderDraft) -> ErpOrderRef:
        cfg = self.settings()
        kind = self.kind_for(draft)
        skus = [ln.sku for ln in draft.lines]
        closes = kind == "Invoice" and (draft.document or cfg.documents) == "estimate"
        estimate = self.document_queries(draft.number, ("Estimate",)) if closes else {}
        items, found = self.items([*skus, cfg.shipping_item] if draft.freight else skus, estimate)
        doc = order_document(
            draft,
            items,
            shipping_item=items.get(cfg.shipping_item),
            taxable_code=cfg.taxable_code,
            deposit_account=draft.deposit_account or cfg.deposit_account,
            kind=kind,
        )
        if closes:
            link = self._estimate_link(draft.number, found.get(f"Estimate {draft.number}", {}).get("Estimate") or [])
            if link:
                doc["LinkedTxn"] = link
        made = self.client.post(ENDPOINT[kind], doc, request_id=request_id(self.connection, kind, doc))
        record = made.get(kind)
        if not isinstance(record, dict):
            raise ValidationFailed(f"{self.connection} answered the {kind} without it", system=self.connection)
        if document_total(record) != cents(draft.total):
            log.warning(
                "%s %s total %s is not the store's %s",
                kind,
                record.get("DocNumber"),
                record.get("TotalAmt"),
                draft.total,
                extra={"connection": self.connection},
            )
        return _ref(kind, record, draft)

    def _estimate_link(self, number: str, estimates: list[dict[str, Any]]) -> list[dict[str, str]]:
        """The invoice's ``LinkedTxn`` to the estimate of order ``number`` that it closes (none when
        there is no estimate, or the bookkeeper rejected it). An estimate another invoice closed
        already (turned into an invoice in QuickBooks) is refused: the order would be booked twice."""
        for estimate in estimates:
            status = str(estimate.get("TxnStatus") or "Pending")
            if status in OPEN_ESTIMATE:
                return [{"TxnId": str(estimate["Id"]), "TxnType": "Estimate"}]
            invoices = [str(t.get("TxnId")) for t in estimate.get("LinkedTxn") or [] if t.get("TxnType") == "Invoice"]
            if status == "Closed" and invoices:
                raise ValidationFailed(
                    f"estimate {number} is closed by invoice {', '.join(invoices)} in QuickBooks already (not one "
                    f"erpsync made with DocNumber {number}): look at it there before the order is booked again",
                    system=self.connection,
                )
        return []


def _ref(kind: str, record: dict[str, Any], draft: SalesOrderDraft | None = None) -> ErpOrderRef:
    line_map: dict[str, str] = {}
    if draft is not None:
        sales = [ln for ln in record.get("Line") or [] if ln.get("DetailType") == "SalesItemLineDetail"]
        for ln, src in zip(sales, draft.lines, strict=False):
            line_map[str(ln.get("Id"))] = src.line_id
    status = "Voided" if voided(record) else "Open"
    if kind == "Estimate":
        status = str(record.get("TxnStatus") or "Pending")
    return ErpOrderRef(
        id=str(record["Id"]),
        number=str(record.get("DocNumber") or record["Id"]),
        order_type=kind,
        status=status,
        line_map=line_map,
        final=kind != "Estimate",
    )


class QuickBooksPayments:
    """Payments applied to the invoices of store orders; a sales receipt is its own payment."""

    def __init__(self, orders: QuickBooksOrders) -> None:
        self.orders = orders
        self.client, self.connection = orders.client, orders.connection

    def of_order(self, store_order: str, customer_id: str) -> list[ErpPayment]:
        payments = f"payments of customer {customer_id}"
        looked = must(
            self.client,
            self.connection,
            {
                **self.orders.document_queries(store_order),
                payments: f"select * from Payment where CustomerRef = {quoted(customer_id)}",
            },
        )
        found = self.orders.pick(looked, store_order)
        if found is None or found[0] == "Estimate":  # an estimate takes no payment
            return []
        kind, doc = found
        if kind == "SalesReceipt":
            return [
                ErpPayment(
                    id=str(doc["Id"]),
                    doc_type="SalesReceipt",
                    number=str(doc.get("DocNumber")),
                    amount=document_total(doc),
                    status="Closed",
                    reference=store_order,
                )
            ]
        out = []
        for p in looked[payments].get("Payment") or []:
            links = [
                ln
                for ln in p.get("Line") or []
                if any(
                    t.get("TxnType") == "Invoice" and str(t.get("TxnId")) == str(doc["Id"])
                    for t in ln.get("LinkedTxn") or []
                )
            ]
            if links:  # applied to this invoice (a voided one keeps its link at 0)
                applied = sum((Decimal(str(ln.get("Amount") or 0)) for ln in links), Decimal("0"))
                voided = "Voided" in str(p.get("PrivateNote") or "")
                out.append(
                    ErpPayment(
                        id=str(p["Id"]),
                        doc_type="Payment",
                        number=str(p["Id"]),
                        amount=cents(applied),
                        status="Voided" if voided else "Closed",
                        reference=str(p.get("PaymentRefNum") or ""),
                    )
                )
        return out

    def create(self, draft: PaymentDraft) -> ErpPayment:
        found = self.orders.document(draft.store_order)
        if found is not None and found[0] == "Estimate":
            raise RetryableError(
                f"{self.connection} has estimate {draft.store_order} until the order is fulfilled: the payment waits "
                "for the invoice that closes it",
                error_type="waiting_for_order",
                system=self.connection,
            )
        if found is None or found[0] != "Invoice":
            raise NotFoundError(
                f"{self.connection} has no invoice {draft.store_order} to apply the payment to", system=self.connection
            )
        invoice = found[1]
        body: dict[str, Any] = {
            "CustomerRef": {"value": draft.customer_id},
            "TotalAmt": money(draft.amount),
            "Line": [
                {"Amount": money(draft.amount), "LinkedTxn": [{"TxnId": str(invoice["Id"]), "TxnType": "Invoice"}]}
            ],
            "PaymentRefNum": draft.reference[:21] or None,
            "PrivateNote": payment_note(draft.description),
            "CurrencyRef": {"value": draft.currency},
        }
        account = draft.cash_account or self.orders.settings().deposit_account
        if account:
            body["DepositToAccountRef"] = {"value": account}
        body = {k: v for k, v in body.items() if v is not None}
        made = (
            self.client.post("/payment", body, request_id=request_id(self.connection, "payment", body)).get("Payment")
            or {}
        )
        return ErpPayment(
            id=str(made.get("Id")),
            doc_type="Payment",
            number=str(made.get("Id")),
            amount=cents(Decimal(str(made.get("TotalAmt") or 0))),
            status="Closed",
            reference=draft.reference,
        )

    def release(self, payment: ErpPayment) -> None:
        """A QuickBooks payment is posted when saved: nothing to release."""


class QuickBooksVoids:
    """Canceling a store order's document: the sales receipt or invoice is voided; an estimate
    (which QuickBooks does not void: it books nothing) is marked ``Rejected``."""

    def __init__(self, orders: QuickBooksOrders) -> None:
        self.orders = orders

    def cancel(self, ref: str, comments: list[str] | None = None) -> str:
        kind, _, number = ref.partition("/")
        found = self.orders.document(number)
        if found is None:
            raise NotFoundError(
                f"{self.orders.connection} has no {kind or 'document'} {number}", system=self.orders.connection
            )
        kind, doc = found
        if kind == "Estimate":
            return self._reject(number, doc)
        if _ref(kind, doc).status == "Voided":
            return "Voided"
        if kind == "Invoice" and Decimal(str(doc.get("Balance") or 0)) < document_total(doc):
            raise ValidationFailed(
                f"invoice {number} has payments applied: void or delete them in QuickBooks first",
                system=self.orders.connection,
            )
        body = {"Id": doc["Id"], "SyncToken": doc["SyncToken"], "sparse": True}
        self.orders.client.post(
            ENDPOINT[kind],
            body,
            request_id=request_id(self.orders.connection, "void", kind, doc["Id"]),
            operation="void",
        )
        return "Voided"

    def _reject(self, number: str, estimate: dict[str, Any]) -> str:
        """The estimate of a canceled order marked ``Rejected`` (once); one an invoice closed is refused."""
        status = str(estimate.get("TxnStatus") or "Pending")
        if status == "Rejected":
            return status
        if status not in OPEN_ESTIMATE:
            raise ValidationFailed(
                f"estimate {number} is {status}: cancel the invoice that closed it in QuickBooks",
                system=self.orders.connection,
            )
        body = {"Id": estimate["Id"], "SyncToken": estimate["SyncToken"], "sparse": True, "TxnStatus": "Rejected"}
        made = self.orders.client.post(
            "/estimate", body, request_id=request_id(self.orders.connection, "reject", estimate["Id"])
        )
        return str((made.get("Estimate") or {}).get("TxnStatus") or "Rejected")


class QuickBooksRefunds:
    """Store refunds (credit memos) booked as the order was: a **refund receipt** for an order booked
    as a sales receipt (the money goes back from ``deposit_account``, default Undeposited Funds), a
    **credit memo** for one booked as an invoice (the customer's credit). ``DocNumber`` is ``R`` and
    the store's credit memo number; ``requestid`` and the lookup by it make each once."""

    def __init__(self, orders: QuickBooksOrders) -> None:
        self.orders = orders
        self.client, self.connection = orders.client, orders.connection
        self.payments = QuickBooksPayments(orders)

    def find(self, store_number: str, customer_id: str) -> ErpCreditMemo | None:
        number = refund_number(store_number)
        found = must(self.client, self.connection, self.orders.document_queries(number, REFUND_KINDS))
        for kind in REFUND_KINDS:
            for row in found[f"{kind} {number}"].get(kind) or []:
                if str((row.get("CustomerRef") or {}).get("value")) == customer_id:
                    return refund_from_qbo(kind, row)
        return None

    def create(self, draft: CreditMemoDraft) -> ErpCreditMemo:
        """The refund receipt or credit memo of ``draft``: the order's document, the items and (when
        no ``deposit_account`` is set) the Undeposited Funds account are looked up in one batch."""
        cfg = self.orders.settings()
        order = draft.store_order
        skus = [ln.sku for ln in draft.lines]
        skus += [cfg.shipping_item] if draft.freight else []
        skus += [draft.adjustment_item] if draft.adjustment and draft.adjustment_item else []
        also = self.orders.document_queries(order)
        account = cfg.deposit_account or self.orders.account_ids.get(UNDEPOSITED_FUNDS)
        if account is None:
            also["account"] = f"select * from Account where Name = {quoted(UNDEPOSITED_FUNDS)}"
        items, found = self.orders.items(skus, also)
        for row in found.get("account", {}).get("Account") or []:
            account = self.orders.account_ids.setdefault(UNDEPOSITED_FUNDS, str(row["Id"]))
        booked = self.orders.pick(found, order)
        if booked is None:
            raise NotFoundError(
                f"{self.connection} has no sales receipt or invoice {order} to credit {draft.store_number} against",
                system=self.connection,
            )
        kind, doc = booked
        if kind == "Estimate":
            raise RetryableError(
                f"{self.connection} has only estimate {order} until the order is fulfilled: the refund waits for the "
                "invoice",
                error_type="waiting_for_order",
                system=self.connection,
            )
        total = document_total(doc)
        if voided(doc):
            raise ValidationFailed(f"{kind} {order} is voided in QuickBooks: nothing to credit", system=self.connection)
        if draft.total > total:
            raise ValidationFailed(
                f"refund {draft.store_number} of {draft.total} is more than {kind} {order} ({total})",
                system=self.connection,
            )
        made_kind = "RefundReceipt" if kind == "SalesReceipt" else "CreditMemo"
        body = refund_document(
            draft,
            items,
            kind=made_kind,
            shipping_item=items.get(cfg.shipping_item),
            taxable_code=cfg.taxable_code,
            deposit_account=account,
        )
        made = self.client.post(ENDPOINT[made_kind], body, request_id=request_id(self.connection, made_kind, body))
        record = made.get(made_kind)
        if not isinstance(record, dict):
            raise ValidationFailed(f"{self.connection} answered the {made_kind} without it", system=self.connection)
        if document_total(record) != cents(draft.total):
            log.warning(
                "%s %s total %s is not the store's %s",
                made_kind,
                record.get("DocNumber"),
                record.get("TotalAmt"),
                draft.total,
                extra={"connection": self.connection},
            )
        return refund_from_qbo(made_kind, record)

    def release(self, memo: ErpCreditMemo) -> ErpCreditMemo:
        """A QuickBooks document is posted when saved: nothing to release."""
        return memo

    def settled_without_refund(self, memo: ErpCreditMemo) -> str:
        """Why no refund follows: a refund receipt paid the money back itself; a credit memo stays
        the customer's credit (QuickBooks applies it to their open invoices when a payment is
        received; after a paid invoice the bookkeeper pays it out in QuickBooks, by a cheque to the
        customer applied against it: UNVERIFIED through the API, erpsync makes none)."""
        if memo.doc_type == "RefundReceipt":
            return f"refund receipt {memo.number} paid {memo.amount} back"
        return (
            f"kept as the customer's credit ({memo.balance} left on credit memo {memo.number}): after a paid invoice, "
            "pay it out in QuickBooks"
        )

    def refunds_of(self, store_number: str, customer_id: str) -> list[ErpPayment]:
        """The refund receipt of store credit memo ``store_number`` (its own refund), if any."""
        number = refund_number(store_number)
        found = must(self.client, self.connection, self.orders.document_queries(number, ("RefundReceipt",)))
        return [
            ErpPayment(
                id=str(row["Id"]),
                doc_type="RefundReceipt",
                number=number,
                amount=document_total(row),
                status="Voided" if voided(row) else "Closed",
                reference=store_number,
            )
            for row in found[f"RefundReceipt {number}"].get("RefundReceipt") or []
            if str((row.get("CustomerRef") or {}).get("value")) == customer_id
        ]

    def refund(self, memo: ErpCreditMemo, draft: PaymentDraft) -> ErpPayment:
        """Never asked for (``settled_without_refund``): erpsync writes no cheque in QuickBooks."""
        raise ValidationFailed(
            f"{self.connection} {memo.doc_type} {memo.number}: {self.settled_without_refund(memo)}",
            system=self.connection,
        )


class QuickBooksInvoices:
    """Invoices of store orders that QuickBooks got paid (the bookkeeper received a payment against
    one, or marked it paid): the source of the invoices flow, read by change data capture."""

    def __init__(self, orders: QuickBooksOrders) -> None:
        self.orders = orders
        self.client, self.connection = orders.client, orders.connection

    def changes(self, since: datetime) -> Iterator[Page]:
        """The invoices and payments changed after ``since`` (a payment rings the invoices it pays),
        by change data capture; a cursor older than CDC's 30 days, or an answer that reached its
        1,000 objects, is read by a query of the invoices instead."""
        since = since if since.tzinfo else since.replace(tzinfo=UTC)
        if datetime.now(UTC) - since < timedelta(days=CDC_DAYS, hours=-1):
            page = self._cdc(since)
            if page is not None:
                yield page
                return
        yield from self._query(since)

    def _cdc(self, since: datetime) -> Page | None:
        answer = self.client.cdc(["Invoice", "Payment"], _time(since))
        blocks = answer.get("CDCResponse")
        if not isinstance(blocks, list):
            raise RetryableError(
                f"{self.connection} answered change data capture without a CDCResponse list", system=self.connection
            )
        newest: dict[str, str] = {}
        count = 0

        def saw(id: Any, stamp: Any) -> None:
            if id in (None, ""):
                return
            key, when = str(id), str(stamp or "")
            newest[key] = max(newest.get(key, ""), when)

        for block in blocks:
            for response in (block or {}).get("QueryResponse") or []:
                for record in (response or {}).get("Invoice") or []:
                    count += 1
                    saw(record.get("Id"), (record.get("MetaData") or {}).get("LastUpdatedTime"))
                for record in (response or {}).get("Payment") or []:
                    count += 1
                    stamp = (record.get("MetaData") or {}).get("LastUpdatedTime")
                    for line in record.get("Line") or []:
                        for link in line.get("LinkedTxn") or []:
                            if link.get("TxnType") == "Invoice":
                                saw(link.get("TxnId"), stamp)
        if count >= CDC_MAX:
            log.info("change data capture reached %s objects: reading invoices by query", CDC_MAX)
            return None
        notices = [
            ChangeNotice(source=self.connection, entity="invoice", id=id, version=stamp or None)
            for id, stamp in sorted(newest.items(), key=lambda kv: kv[1])
        ]
        stamps = [t for t in (_parse(n.version) for n in notices) if t is not None]
        return Page(notices, _parse(answer.get("time")) or max(stamps, default=None))

    def _query(self, since: datetime) -> Iterator[Page]:
        size = self.orders.settings().page_size
        yield from changed_pages(self.client, "Invoice", "invoice", self.connection, since, size)

    def get(self, id: str) -> Invoice:
        """Invoice ``id`` with the payments its ``LinkedTxn`` name (one batch, with the shipping item
        when it is not known yet); one QuickBooks no longer has is ``deleted in QuickBooks``."""
        try:
            record = self.client.get(f"/invoice/{id}").get("Invoice")
        except NotFoundError:
            return deleted_invoice(id)
        if not isinstance(record, dict):
            raise ValidationFailed(f"{self.connection} answered invoice {id} without it", system=self.connection)
        paid_by = [
            str(t.get("TxnId"))
            for t in record.get("LinkedTxn") or []
            if t.get("TxnType") == "Payment" and t.get("TxnId")
        ]
        shipping = self.orders.settings().shipping_item
        payments: list[dict[str, Any]] = []
        if paid_by or shipping not in self.orders.item_ids:
            queries = {f"item {shipping}": f"select * from Item where Name = {quoted(shipping)}"}
            if paid_by:
                listed = ", ".join(quoted(p) for p in paid_by)
                queries[f"payments of invoice {id}"] = f"select * from Payment where Id in ({listed})"
            found = must(self.client, self.connection, queries)
            for row in found[f"item {shipping}"].get("Item") or []:
                self.orders.item_ids.setdefault(shipping, str(row["Id"]))
            payments = list(found.get(f"payments of invoice {id}", {}).get("Payment") or [])
        return invoice_from_qbo(record, payments, self.orders.item_ids.get(shipping))


def _changed(record: dict[str, Any]) -> str | None:
    """A record's ``MetaData.LastUpdatedTime`` as QuickBooks wrote it."""
    return str((record.get("MetaData") or {}).get("LastUpdatedTime") or "") or None


def _parse(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


class QuickBooksSystem:
    """A QuickBooks Online company: its ports by entity and direction."""

    kind = "quickbooks"

    def __init__(self, client: QuickBooksClient, connection: str, settings: Callable[[], QuickBooksSettings]) -> None:
        self.connection = connection
        self.client = client
        customers = QuickBooksCustomers(client, connection, settings)
        orders = QuickBooksOrders(client, connection, settings)
        self._ports: dict[tuple[str, str], object] = {
            ("customer", "source"): customers,
            ("customer", "target"): customers,
            ("order", "target"): orders,
            ("payment", "target"): QuickBooksPayments(orders),
            ("cancellation", "target"): QuickBooksVoids(orders),
            ("creditmemo", "target"): QuickBooksRefunds(orders),
            ("invoice", "source"): QuickBooksInvoices(orders),
        }
        from erpsync.systems.quickbooks.catalog import catalog_ports  # it builds on this module

        self._ports.update(catalog_ports(client, connection, settings))

    def port(self, entity: str, direction: str) -> Any:
        try:
            return self._ports[(entity, direction)]
        except KeyError:
            raise NotFoundError(f"quickbooks serves no {entity} {direction}", system="quickbooks") from None
