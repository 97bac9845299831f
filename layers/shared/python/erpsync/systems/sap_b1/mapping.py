"""The canonical model and SAP Business One Service Layer (v1) bodies: business partners,
sales orders (``Orders``), deliveries, invoices and payments.

- A business partner's name is ``CardName`` (the company, else the person); the person's first and
  last names ride on its first contact (``ContactEmployees``), the billing and shipping addresses
  on the ``BPAddresses`` rows erpsync names ``Bill to`` and ``Ship to`` (rows are matched by name and
  type, so a PATCH updates them in place and a clerk's other rows stay).
- An order carries the store's number in ``NumAtCard`` (the duplicate guard) and each store line
  id in its line's ``FreeText``, so an order found again (after a lost answer) maps its lines back;
  a line's discount is a ``DiscountPercent`` of its amount; freight, and the store's tax when
  ``tax_expense_code`` is set, are additional expenses (``DocumentAdditionalExpenses``).
- A paid store order is an A/R down payment invoice (``DownPayments``, ``dptInvoice``, based on
  the order, ``NumAtCard`` the store's number) and an incoming payment applied to it
  (``PaymentInvoices`` ``it_DownPayment``, ``CounterReference`` the store's number), as connectors
  for web shops post it (SYSTEMS-NOTES §3.2).
- A cancelled order is ``Cancelled`` (``tYES``). A store credit memo is an A/R credit note
  (``CreditNotes``) carrying the store's credit memo number in ``NumAtCard`` and ``Reference2``,
  its lines based on the invoice lines that billed the order lines given back (``BaseType`` 13)
  where there are; a credit note entered in B1 credits the order lines its invoice lines billed.
- A store return is a return request (``ReturnRequest``) carrying the store return's number in
  ``NumAtCard``; what came back is what the warehouse's returns drew off its lines.
- Change stamps are the database server's local date and time (``UpdateDate``/``UpdateTime``,
  ``CreateDate``/``CreateTime``), to the second, read in ``server_timezone``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from erpsync.errors import MappingMissing, ValidationFailed
from erpsync.model import (
    Address,
    CreditLine,
    CreditMemoDraft,
    CreditNote,
    Customer,
    DocumentLine,
    DraftLine,
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
    Track,
    cents,
)
from erpsync.systems.sap_b1.settings import SapB1Settings

SYSTEM = "sap_b1"
BILL_TO, SHIP_TO = "Bill to", "Ship to"
ORDERS = "Orders"
DOWN_PAYMENT = "it_DownPayment"
"""``PaymentInvoices.InvoiceType`` of a row applied to an A/R down payment invoice (203)."""
ORDER_OBJECT, DELIVERY_OBJECT, INVOICE_OBJECT = 17, 15, 13
"""``BaseType`` of a line based on a sales order, on a delivery, on an invoice."""
RETURN_REQUESTS = "ReturnRequest"
"""The entity set of return requests (``oReturnRequest``, 234000031)."""
CANCELLED = "Cancelled"
"""The status erpsync gives a B1 document whose ``Cancelled`` is ``tYES``."""
DISCOUNT_DIGITS = Decimal("0.000001")
"""``DiscountPercent`` is sent to six decimals (the precision B1 keeps is a company setting: UNVERIFIED)."""


def dec(value: Any) -> Decimal:
    """A Service Layer number (a Decimal as the client decodes it, an int, or text) as a Decimal."""
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


# -- change stamps --------------------------------------------------------------------------------


def changed_at(record: dict[str, Any]) -> tuple[str, str] | None:
    """The record's last change as the server wrote it: ``UpdateDate``/``UpdateTime``, or
    ``CreateDate``/``CreateTime`` while it has never been updated (SAP does not always set
    ``UpdateDate`` on a create)."""
    for day, clock in (("UpdateDate", "UpdateTime"), ("CreateDate", "CreateTime")):
        if record.get(day) and record.get(clock):
            return str(record[day])[:10], str(record[clock])
    return None


def version(record: dict[str, Any], zone: ZoneInfo) -> str | None:
    """The last change (``changed_at``, the server's local time in ``zone``) in UTC to the second:
    ``2026-11-29T15:04:05Z``. What the worker compares, and what ``state.bindings.settled`` reads as
    an instant: the server's local time read as UTC left a change in the same second as our own
    write looking settled at once west of UTC (and settling hours late east of it)."""
    stamp = changed_at(record)
    return to_utc(*stamp, zone).strftime("%Y-%m-%dT%H:%M:%SZ") if stamp else None


def to_utc(day: str, clock: str, zone: ZoneInfo) -> datetime:
    """A server-local stamp in UTC; an hour that repeats (DST ends) is read as its first occurrence,
    the earlier instant, so a checkpoint made from it is never late."""
    local = datetime.combine(date.fromisoformat(day), time.fromisoformat(clock), tzinfo=zone)
    return local.replace(fold=0).astimezone(UTC)


def local_cursor(since: datetime, zone: ZoneInfo) -> tuple[str, str]:
    """``since`` as the server's local date and time to the second; an hour earlier inside an hour
    that repeats (DST ends: the server's clock goes back, and changes made in the repeat carry
    earlier local times than ``since``)."""
    local = since.astimezone(zone)
    wall = local.replace(tzinfo=None)
    if local.replace(fold=0).utcoffset() != local.replace(fold=1).utcoffset():
        wall -= timedelta(hours=1)
    return wall.date().isoformat(), wall.strftime("%H:%M:%S")


# -- business partners ---------------------------------------------------------------------------


def address_from_row(row: dict[str, Any] | None) -> Address | None:
    if not row:
        return None
    return Address(
        street=[s for s in (str(row.get("Street") or ""), str(row.get("Block") or "")) if s],
        city=str(row.get("City") or ""),
        region_code=str(row.get("State") or ""),
        postcode=str(row.get("ZipCode") or ""),
        country=str(row.get("Country") or ""),
    )


def address_row(name: str, kind: str, address: Address) -> dict[str, Any]:
    return {
        "AddressName": name,
        "AddressType": kind,
        "Street": address.street[0] if address.street else "",
        "Block": ", ".join(address.street[1:]),
        "City": address.city,
        "ZipCode": address.postcode,
        "State": address.region_code,
        "Country": address.country,
    }


def _row(record: dict[str, Any], kind: str, default: Any) -> dict[str, Any] | None:
    rows = [r for r in record.get("BPAddresses") or [] if r.get("AddressType") == kind]
    return next((r for r in rows if r.get("AddressName") == default), rows[0] if rows else None)


def customer_from_b1(record: dict[str, Any], zone: ZoneInfo) -> Customer:
    """A business partner as the canonical customer (``zone``: the server's, for its version)."""
    code = str(record.get("CardCode") or "")
    email = str(record.get("EmailAddress") or "").strip()
    if not email:
        raise ValidationFailed(f"{SYSTEM} business partner {code}: no EmailAddress", system=SYSTEM)
    contacts = record.get("ContactEmployees") or []
    contact = next((c for c in contacts if str(c.get("E_Mail") or "").lower() == email.lower()), None)
    contact = contact or (contacts[0] if contacts else {})
    first, last = str(contact.get("FirstName") or ""), str(contact.get("LastName") or "")
    name = str(record.get("CardName") or "")
    person = " ".join(p for p in (first, last) if p)
    company = name if name and person and name != person else ""
    if not person and name:
        first, _, last = name.partition(" ")
    billing = address_from_row(_row(record, "bo_BillTo", record.get("BilltoDefault")))
    shipping = address_from_row(_row(record, "bo_ShipTo", record.get("ShipToDefault")))
    return Customer(
        email=email,
        first_name=first,
        last_name=last,
        company=company,
        phone=str(record.get("Phone1") or ""),
        address=billing,
        shipping=shipping if shipping != billing else None,
        source_id=code,
        version=version(record, zone),
    )


def partner_body(customer: Customer, *, current: dict[str, Any] | None = None) -> dict[str, Any]:
    """What erpsync writes of a customer: name, email, phone, the first contact's names and the
    ``Bill to``/``Ship to`` addresses. With ``current`` (the partner as read), the contact written is
    the one the partner already has, by its ``InternalCode``."""
    body: dict[str, Any] = {
        "CardName": customer.company
        or " ".join(p for p in (customer.first_name, customer.last_name) if p)
        or customer.email,
        "EmailAddress": customer.email,
        "Phone1": customer.phone,
    }
    if customer.first_name or customer.last_name:
        contact = {
            "Name": " ".join(p for p in (customer.first_name, customer.last_name) if p),
            "FirstName": customer.first_name,
            "LastName": customer.last_name,
            "E_Mail": customer.email,
        }
        held = (current or {}).get("ContactEmployees") or []
        if held:
            contact["InternalCode"] = held[0]["InternalCode"]
            contact.pop("Name")  # a contact's name is its key among the partner's contacts: kept
        body["ContactEmployees"] = [contact]
    if customer.address is not None:
        body["BPAddresses"] = [
            address_row(BILL_TO, "bo_BillTo", customer.address),
            address_row(SHIP_TO, "bo_ShipTo", customer.shipping or customer.address),
        ]
        body["BilltoDefault"], body["ShipToDefault"] = BILL_TO, SHIP_TO
    return body


# -- orders -------------------------------------------------------------------------------------------


def _extension(prefix: str, address: Address | None) -> dict[str, Any]:
    if address is None:
        return {}
    return {
        f"{prefix}Street": address.street[0] if address.street else "",
        f"{prefix}Block": ", ".join(address.street[1:]),
        f"{prefix}City": address.city,
        f"{prefix}ZipCode": address.postcode,
        f"{prefix}State": address.region_code,
        f"{prefix}Country": address.country,
    }


def priced(ln: DraftLine, cfg: SapB1Settings) -> dict[str, Any]:
    """A line's price as the store charged it: ``UnitPrice``, its discount as a ``DiscountPercent``
    of its amount, and the connection's tax code."""
    line: dict[str, Any] = {"UnitPrice": ln.unit_price}
    gross = ln.unit_price * ln.qty
    if ln.discount and gross:
        line["DiscountPercent"] = (ln.discount / gross * 100).quantize(DISCOUNT_DIGITS)
    if cfg.tax_code:
        line["TaxCode"] = cfg.tax_code
    return line


def expenses_of(
    what: str, freight: Decimal, tax: Decimal, cfg: SapB1Settings, ship_via: str = ""
) -> list[dict[str, Any]]:
    """Freight, and the store's tax when ``tax_expense_code`` is set, as additional expenses; money
    without a code to book it on is a ``MappingMissing``."""
    expenses = []
    if freight:
        if cfg.freight_expense_code is None:
            raise MappingMissing(f"{what} has freight but settings.freight_expense_code is not set")
        expenses.append({"ExpenseCode": cfg.freight_expense_code, "LineTotal": freight, "Remarks": ship_via})
    if tax:
        if cfg.tax_expense_code is not None:
            expenses.append({"ExpenseCode": cfg.tax_expense_code, "LineTotal": tax, "Remarks": "store tax"})
        elif not cfg.tax_code:
            raise MappingMissing(
                f"{what} has tax but neither settings.tax_expense_code (the store's tax as an expense) "
                "nor settings.tax_code (B1 reckons it) is set"
            )
    return expenses


def order_body(draft: SalesOrderDraft, cfg: SapB1Settings) -> dict[str, Any]:
    """The ``POST Orders`` body of a draft (money as Decimals: the client sends them as numbers)."""
    zone = ZoneInfo(cfg.server_timezone)
    day = (draft.date or datetime.now(UTC)).astimezone(zone).date().isoformat()
    lines = []
    for ln in draft.lines:
        line: dict[str, Any] = {"ItemCode": ln.sku, "Quantity": ln.qty, **priced(ln, cfg), "FreeText": ln.line_id}
        if cfg.warehouse_code:
            line["WarehouseCode"] = cfg.warehouse_code
        lines.append(line)
    expenses = expenses_of(f"order {draft.number}", draft.freight, draft.tax_total, cfg, draft.ship_via or "")
    body: dict[str, Any] = {
        "CardCode": draft.customer_id,
        "NumAtCard": draft.number,
        "DocDate": day,
        "DocDueDate": day,
        "DocCurrency": cfg.currency_codes.get(draft.currency, draft.currency),
        "DocumentLines": lines,
        "AddressExtension": {**_extension("BillTo", draft.bill_to), **_extension("ShipTo", draft.ship_to)},
    }
    if expenses:
        body["DocumentAdditionalExpenses"] = expenses
    if draft.note:
        body["Comments"] = draft.note
    if cfg.series is not None:
        body["Series"] = cfg.series
    return body


def order_ref(record: dict[str, Any], draft: SalesOrderDraft | None = None) -> ErpOrderRef:
    """Where an order landed: keyed by ``DocEntry`` (``DocNum`` repeats across numbering series, and
    the lines of deliveries and invoices name their order by ``DocEntry``); ``line_map`` from each
    line's ``FreeText`` (the store line id), or, when none carries one, by the draft's line order."""
    lines = record.get("DocumentLines") or []
    line_map = {str(ln["LineNum"]): str(ln["FreeText"]) for ln in lines if ln.get("FreeText")}
    if not line_map and draft is not None:
        line_map = {str(ln.get("LineNum")): d.line_id for ln, d in zip(lines, draft.lines, strict=False)}
    entry = str(record["DocEntry"])
    return ErpOrderRef(
        id=entry, number=entry, order_type=ORDERS, status=str(record.get("DocumentStatus") or ""), line_map=line_map
    )


def totals_differ(record: dict[str, Any], draft: SalesOrderDraft) -> bool:
    """Whether B1's ``DocTotal`` is not the store's total to the cent."""
    return cents(dec(record.get("DocTotal"))) != cents(draft.total)


# -- deliveries ----------------------------------------------------------------------------------


def order_line(line: dict[str, Any]) -> DocumentLine | None:
    """A document line based on a sales order line, naming its order as the order binding does
    (``Orders/<DocEntry>``) and the order line by its ``LineNum``; None for any other line."""
    if line.get("BaseType") != ORDER_OBJECT or line.get("BaseEntry") is None or line.get("BaseLine") is None:
        return None
    return DocumentLine(
        order_type=ORDERS,
        order_number=str(line["BaseEntry"]),
        line_nbr=str(line["BaseLine"]),
        sku=str(line.get("ItemCode") or ""),
        qty=dec(line.get("Quantity")),
    )


def order_lines(record: dict[str, Any]) -> list[DocumentLine]:
    """A document's lines based on sales order lines (``order_line``); other lines are left out."""
    return [d for d in (order_line(ln) for ln in record.get("DocumentLines") or []) if d is not None]


def updated_at(record: dict[str, Any], zone: ZoneInfo) -> datetime | None:
    stamp = changed_at(record)
    return to_utc(*stamp, zone) if stamp else None


def _day(value: Any, zone: ZoneInfo) -> datetime | None:
    return datetime.combine(date.fromisoformat(str(value)[:10]), time(), tzinfo=zone) if value else None


def shipment_from_b1(record: dict[str, Any], zone: ZoneInfo) -> Shipment:
    """A delivery as the canonical shipment: posted when added (confirmed unless cancelled), its
    tracking number the header's ``TrackingNumber``, its carrier the ``TransportationCode``."""
    cancelled = record.get("Cancelled") == "tYES"
    code = record.get("TransportationCode")
    tracking = str(record.get("TrackingNumber") or "").strip()
    return Shipment(
        source_id=str(record["DocEntry"]),
        status="cancelled" if cancelled else str(record.get("DocumentStatus") or ""),
        confirmed=not cancelled,
        ship_date=_day(record.get("DocDate"), zone),
        ship_via=str(code) if code not in (None, -1) else None,
        lines=order_lines(record),
        tracks=[Track(number=tracking)] if tracking else [],
        updated_at=updated_at(record, zone),
    )


# -- invoices -------------------------------------------------------------------------------------


def invoice_from_b1(
    record: dict[str, Any], delivered: dict[tuple[int, int], DocumentLine | None], zone: ZoneInfo, currency: str
) -> Invoice:
    """An A/R invoice as the canonical invoice: its lines based on order lines (``BaseType`` 17)
    as they are, those based on delivery lines (15) as the order lines the delivery lines were
    based on (``delivered``: (delivery DocEntry, LineNum) -> that order line, None when it was
    based on none); posted when added (released unless cancelled)."""
    lines = order_lines(record)
    for ln in record.get("DocumentLines") or []:
        if ln.get("BaseType") != DELIVERY_OBJECT:
            continue
        via = delivered.get((int(ln["BaseEntry"]), int(ln["BaseLine"])))
        if via is not None:
            lines.append(via.model_copy(update={"qty": dec(ln.get("Quantity"))}))
    cancelled = record.get("Cancelled") == "tYES"
    return Invoice(
        source_id=str(record["DocEntry"]),
        status="cancelled" if cancelled else str(record.get("DocumentStatus") or ""),
        released=not cancelled,
        date=_day(record.get("DocDate"), zone),
        amount=cents(dec(record.get("DocTotal"))),
        currency=currency,
        lines=lines,
        updated_at=updated_at(record, zone),
    )


# -- cancellations and credit notes -------------------------------------------------------------------


def order_status(record: dict[str, Any]) -> OrderStatus:
    """Where a B1 order stands, named as the order binding names it (``Orders/<DocEntry>``):
    ``Cancelled`` once cancelled, else its ``DocumentStatus``; its ``Comments`` as the note."""
    entry = str(record["DocEntry"])
    cancelled = record.get("Cancelled") == "tYES"
    return OrderStatus(
        source_id=f"{ORDERS}/{entry}",
        number=entry,
        status=CANCELLED if cancelled else str(record.get("DocumentStatus") or ""),
        note=str(record.get("Comments") or ""),
    )


def drawn_lines(order: dict[str, Any]) -> list[int]:
    """The order's lines later documents drew from (less open than ordered)."""
    return [
        int(ln["LineNum"])
        for ln in order.get("DocumentLines") or []
        if dec(ln.get("RemainingOpenQuantity", ln.get("Quantity"))) != dec(ln.get("Quantity"))
    ]


def credit_note_body(
    draft: CreditMemoDraft,
    store_lines: dict[str, str],
    invoiced: dict[int, list[tuple[int, int, Decimal]]],
    cfg: SapB1Settings,
) -> dict[str, Any]:
    """The ``POST CreditNotes`` body of a store credit memo: each refunded line at the store's price
    and discount, based on the open invoice lines that billed its order line (``BaseType`` 13;
    ``store_lines``: order ``LineNum`` -> store line id, ``invoiced``: order ``LineNum`` -> invoice
    lines and their open quantities), what no invoice line covers as a line of its own; the shipping
    refund and the store's tax as additional expenses (as on the order), the adjustment as one unit
    of ``adjustment_item`` (UNVERIFIED that B1 takes a negative price there, for a fee)."""
    by_store = {store: int(n) for n, store in store_lines.items() if store}
    open_left = {(entry, n): qty for rows in invoiced.values() for entry, n, qty in rows}
    lines: list[dict[str, Any]] = []
    for ln in draft.lines:
        price, left = {"DiscountPercent": 0, **priced(ln, cfg)}, ln.qty  # never the invoice line's discount
        for entry, n, _qty in invoiced.get(by_store.get(ln.line_id, -1), []):
            take = min(open_left[(entry, n)], left)
            if take > 0:
                lines.append({"BaseType": INVOICE_OBJECT, "BaseEntry": entry, "BaseLine": n, "Quantity": take, **price})
                open_left[(entry, n)] -= take
                left -= take
        if left > 0:
            own = {"ItemCode": ln.sku, "Quantity": left, "FreeText": ln.line_id, **price}
            if cfg.warehouse_code:
                own["WarehouseCode"] = cfg.warehouse_code
            lines.append(own)
    if draft.adjustment:
        if not draft.adjustment_item:
            raise MappingMissing(f"credit memo {draft.store_number} has an adjustment but no adjustment item")
        adjustment: dict[str, Any] = {"ItemCode": draft.adjustment_item, "Quantity": 1, "UnitPrice": draft.adjustment}
        if cfg.tax_code:
            adjustment["TaxCode"] = cfg.tax_code
        lines.append({**adjustment, "FreeText": "adjustment"})
    if not lines:
        raise ValidationFailed(f"credit memo {draft.store_number} gives back no line: B1 takes no empty credit note")
    day = datetime.now(UTC).astimezone(ZoneInfo(cfg.server_timezone)).date().isoformat()
    body: dict[str, Any] = {
        "CardCode": draft.customer_id,
        "NumAtCard": draft.store_number,
        "Reference2": draft.store_number,
        "DocDate": day,
        "DocDueDate": day,
        "DocCurrency": cfg.currency_codes.get(draft.currency, draft.currency),
        "Comments": draft.description,
        "DocumentLines": lines,
    }
    expenses = expenses_of(f"credit memo {draft.store_number}", draft.freight, draft.tax_total, cfg)
    if expenses:
        body["DocumentAdditionalExpenses"] = expenses
    return body


def credit_note_from_b1(
    record: dict[str, Any],
    billed: dict[tuple[int, int], DocumentLine | None],
    zone: ZoneInfo,
    currency: str,
    cfg: SapB1Settings,
) -> CreditNote:
    """A credit note as the canonical ``CreditNote``: each line based on an invoice line credits the
    order line it billed (``billed``: (invoice DocEntry, LineNum) -> that order line), for its
    quantity and ``LineTotal``; other lines are in the total only. Posted when added (released
    unless cancelled); ``external_ref`` the store credit memo erpsync made it from (``Reference2``),
    ``customer_order`` its ``NumAtCard``."""
    lines: list[CreditLine] = []
    for ln in record.get("DocumentLines") or []:
        if ln.get("BaseType") != INVOICE_OBJECT:
            continue
        via = billed.get((int(ln["BaseEntry"]), int(ln["BaseLine"])))
        if via is not None:
            lines.append(
                CreditLine(
                    **via.model_dump(include={"order_type", "order_number", "line_nbr", "sku"}),
                    qty=dec(ln.get("Quantity")),
                    amount=cents(dec(ln.get("LineTotal"))),
                )
            )
    expenses = record.get("DocumentAdditionalExpenses") or []
    freight = sum(
        (dec(e.get("LineTotal")) for e in expenses if e.get("ExpenseCode") == cfg.freight_expense_code), Decimal(0)
    )
    taxed = sum((dec(e.get("LineTotal")) for e in expenses if e.get("ExpenseCode") == cfg.tax_expense_code), Decimal(0))
    cancelled = record.get("Cancelled") == "tYES"
    return CreditNote(
        source_id=str(record["DocEntry"]),
        status=CANCELLED if cancelled else str(record.get("DocumentStatus") or ""),
        released=not cancelled,
        date=_day(record.get("DocDate"), zone),
        currency=currency,
        external_ref=str(record.get("Reference2") or ""),
        customer_order=str(record.get("NumAtCard") or ""),
        lines=lines,
        freight=cents(freight),
        tax_total=cents(dec(record.get("VatSum")) + taxed),
        total=cents(dec(record.get("DocTotal"))),
        updated_at=updated_at(record, zone),
    )


def credit_memo_from_b1(record: dict[str, Any]) -> ErpCreditMemo:
    """A credit note as the canonical ERP credit memo: keyed by ``DocEntry``, posted when added, its
    whole total the customer's (v1 keeps no ``PaidToDate``); ``Cancelled`` once cancelled."""
    cancelled = record.get("Cancelled") == "tYES"
    amount = cents(dec(record.get("DocTotal")))
    return ErpCreditMemo(
        doc_type="CreditNotes",
        number=str(record["DocEntry"]),
        amount=amount,
        balance=Decimal(0) if cancelled else amount,
        status=CANCELLED if cancelled else str(record.get("DocumentStatus") or "bost_Open"),
    )


# -- returns ----------------------------------------------------------------------------------------


def return_request_body(draft: ReturnDraft, cfg: SapB1Settings) -> dict[str, Any]:
    """The ``POST ReturnRequest`` body of a store return: its authorized lines at the store's prices
    (the store order line id in ``FreeText``), the store's tax as on an order; the store return's
    number in ``NumAtCard``. Lines of their own: which documents B1 lets a return request be based
    on is UNVERIFIED."""
    lines = []
    for ln in draft.lines:
        line: dict[str, Any] = {"ItemCode": ln.sku, "Quantity": ln.qty, **priced(ln, cfg), "FreeText": ln.line_id}
        if cfg.warehouse_code:
            line["WarehouseCode"] = cfg.warehouse_code
        lines.append(line)
    day = datetime.now(UTC).astimezone(ZoneInfo(cfg.server_timezone)).date().isoformat()
    body: dict[str, Any] = {
        "CardCode": draft.customer_id,
        "NumAtCard": draft.store_number,
        "DocDate": day,
        "DocDueDate": day,
        "DocCurrency": cfg.currency_codes.get(draft.currency, draft.currency),
        "Comments": draft.description,
        "DocumentLines": lines,
    }
    expenses = expenses_of(f"return {draft.store_number}", Decimal(0), draft.tax_total, cfg)
    if expenses:
        body["DocumentAdditionalExpenses"] = expenses
    return body


def return_ref(record: dict[str, Any]) -> ErpReturnRef:
    """A return request as the returns flow names it: ``ReturnRequest/<DocEntry>``, each line's
    ``LineNum`` -> the store order line in its ``FreeText``."""
    lines = record.get("DocumentLines") or []
    return ErpReturnRef(
        order_type=RETURN_REQUESTS,
        number=str(record["DocEntry"]),
        line_map={str(ln["LineNum"]): str(ln["FreeText"]) for ln in lines if ln.get("FreeText")},
    )


def return_receipt(record: dict[str, Any], zone: ZoneInfo) -> ReturnReceipt:
    """What a return request took back: each line's quantity less what is still open on it (drawn
    by the warehouse's returns, ``Returns`` based on it)."""
    received = {
        str(ln["LineNum"]): dec(ln.get("Quantity")) - dec(ln.get("RemainingOpenQuantity", ln.get("Quantity")))
        for ln in record.get("DocumentLines") or []
    }
    cancelled = record.get("Cancelled") == "tYES"
    return ReturnReceipt(
        source_id=f"{RETURN_REQUESTS}/{record['DocEntry']}",
        status=CANCELLED if cancelled else str(record.get("DocumentStatus") or ""),
        store_number=str(record.get("NumAtCard") or ""),
        received={line: qty for line, qty in received.items() if qty > 0},
        updated_at=updated_at(record, zone),
    )


# -- payments ---------------------------------------------------------------------------------------


def _today(draft: PaymentDraft, cfg: SapB1Settings) -> str:
    return (draft.date or datetime.now(UTC)).astimezone(ZoneInfo(cfg.server_timezone)).date().isoformat()


def open_lines(order: dict[str, Any]) -> list[dict[str, Any]]:
    """The B1 order's lines still open (a delivered line is closed)."""
    return [ln for ln in order.get("DocumentLines") or [] if ln.get("LineStatus") in (None, "bost_Open")]


def down_payment_body(draft: PaymentDraft, order: dict[str, Any], cfg: SapB1Settings) -> dict[str, Any]:
    """The ``POST DownPayments`` body of a paid store order: an A/R down payment invoice
    (``dptInvoice``) carrying the store's number in ``NumAtCard``, its lines based on the B1 order's
    open lines (``BaseType`` 17), for the captured amount (``DownPaymentAmount``: UNVERIFIED that B1
    takes the gross amount there; its own rule for the amount against the order is not known)."""
    lines = [
        {"BaseType": ORDER_OBJECT, "BaseEntry": order["DocEntry"], "BaseLine": ln["LineNum"]}
        for ln in open_lines(order)
    ]
    if not lines:
        raise ValidationFailed(
            f"{SYSTEM} order {order['DocEntry']} (store order {draft.store_order}) has no open line to base a down "
            "payment on: a payment after the order is closed goes on its invoice, which erpsync does not do",
            system=SYSTEM,
        )
    day = _today(draft, cfg)
    return {
        "CardCode": draft.customer_id,
        "NumAtCard": draft.store_order,
        "DownPaymentType": "dptInvoice",
        "DocDate": day,
        "DocDueDate": day,
        "DocCurrency": cfg.currency_codes.get(draft.currency, draft.currency),
        "DownPaymentAmount": draft.amount,
        "Comments": draft.description,
        "DocumentLines": lines,
    }


def payment_means(draft: PaymentDraft, cfg: SapB1Settings) -> tuple[bool, str]:
    """``(cash, G/L account)`` of a payment: cash into ``cash_account`` for ``cash_methods``, else a
    bank transfer into ``transfer_account``; the draft's ``cash_account`` (a payment rule's, or
    ``payments.cash_account``) comes first."""
    cash = draft.method is not None and draft.method in cfg.cash_methods
    means = "cash" if cash else "transfer"
    account = draft.cash_account or (cfg.cash_account if cash else cfg.transfer_account)
    if not account:
        raise MappingMissing(
            f"store order {draft.store_order}: no G/L account for its {means} payment: set settings.{means}_account "
            "of the sap_b1 connection (or payments.cash_account)"
        )
    return cash, account


def incoming_payment_body(draft: PaymentDraft, down_payment: int | None, cfg: SapB1Settings) -> dict[str, Any]:
    """The ``POST IncomingPayments`` body: the captured amount applied to the down payment invoice
    ``down_payment`` (``it_DownPayment``; None: a payment on account, with no ``PaymentInvoices``,
    as SAP's own request example), the store's number in ``CounterReference`` (how ``of_order``
    finds it), the gateway's transaction id in ``TransferReference`` and the description in
    ``Remarks``, into the account of ``payment_means``. The lengths B1 keeps of these texts are
    UNVERIFIED (the metadata has none)."""
    cash, account = payment_means(draft, cfg)
    day = _today(draft, cfg)
    body: dict[str, Any] = {
        "DocType": "rCustomer",
        "CardCode": draft.customer_id,
        "DocDate": day,
        "DocCurrency": cfg.currency_codes.get(draft.currency, draft.currency),
        "CounterReference": draft.store_order,
        "Remarks": draft.description,
    }
    if down_payment is not None:
        body["PaymentInvoices"] = [{"DocEntry": down_payment, "SumApplied": draft.amount, "InvoiceType": DOWN_PAYMENT}]
    if cash:
        body.update(CashAccount=account, CashSum=draft.amount)
    else:
        body.update(
            TransferAccount=account, TransferSum=draft.amount, TransferDate=day, TransferReference=draft.reference
        )
    return body


def payment_total(record: dict[str, Any]) -> Decimal:
    """What an incoming payment received: cash, transfer, credit cards and checks."""
    total = dec(record.get("CashSum")) + dec(record.get("TransferSum"))
    total += sum((dec(r.get("CreditSum")) for r in record.get("PaymentCreditCards") or []), Decimal(0))
    total += sum((dec(r.get("CheckSum")) for r in record.get("PaymentChecks") or []), Decimal(0))
    return total


def down_payments_paid(record: dict[str, Any]) -> set[int]:
    """The down payment invoices (``DocEntry``) an incoming payment was applied to."""
    return {
        int(r["DocEntry"])
        for r in record.get("PaymentInvoices") or []
        if r.get("InvoiceType") == DOWN_PAYMENT and r.get("DocEntry") is not None
    }


def payment_from_b1(record: dict[str, Any]) -> ErpPayment:
    """An incoming payment as the canonical ERP payment: keyed by ``DocEntry``, posted when added
    (``Posted``: B1 has no draft payment here), ``Voided`` once cancelled."""
    entry = str(record["DocEntry"])
    return ErpPayment(
        id=entry,
        doc_type="IncomingPayments",
        number=entry,
        amount=cents(payment_total(record)),
        status="Voided" if record.get("Cancelled") == "tYES" else "Posted",
        reference=str(record.get("TransferReference") or record.get("CounterReference") or ""),
    )
