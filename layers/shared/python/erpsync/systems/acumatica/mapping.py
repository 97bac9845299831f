"""Canonical records to and from Acumatica's contract-based records (``{"Field": {"value": ...}}``).

The store's line id travels in each sales order line's ``LineDescription`` as a trailing
marker ``" [ref:<line id>]"`` (a real, free-text field of every endpoint version), so the line
map (ERP ``LineNbr`` -> store line id) can be recovered from the ERP alone, e.g. after a lost
response. Lines are also sent in draft order, which Acumatica numbers 1..n.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from erpsync.errors import ValidationFailed
from erpsync.model import (
    Address,
    CreditLine,
    CreditMemoDraft,
    CreditNote,
    Customer,
    DocumentLine,
    DraftLine,
    ErpCreditMemo,
    ErpPayment,
    ErpReturnRef,
    Invoice,
    Order,
    OrderLine,
    PaymentDraft,
    ReturnDraft,
    ReturnReceipt,
    SalesOrderDraft,
    Shipment,
    Track,
    cents,
    erp_order_key,
)

SYSTEM = "acumatica"

LINE_REF = re.compile(r"\s*\[ref:(?P<id>[^\]]+)\]\s*$")
DESCRIPTION_MAX = 256
CONFIRMED_SHIPMENT = ("Confirmed", "Completed", "Invoiced")
RELEASED_INVOICE = ("Open", "Closed")


def v(value: Any) -> dict[str, Any]:
    """A field wrapper; Decimals travel as JSON numbers."""
    if isinstance(value, Decimal):
        return {"value": float(value)}
    return {"value": value}


def value(record: Mapping[str, Any] | None, name: str, default: Any = None) -> Any:
    """The unwrapped value of ``record[name]``."""
    if not record:
        return default
    f = record.get(name)
    if isinstance(f, Mapping):
        got = f.get("value")
        return default if got is None else got
    return default


def dec(record: Mapping[str, Any] | None, name: str) -> Decimal:
    raw = value(record, name)
    if raw is None or raw == "":
        return Decimal(0)
    try:
        return Decimal(str(raw))
    except InvalidOperation:
        return Decimal(0)


def when(raw: Any) -> datetime | None:
    """An Acumatica date/time (ISO, with or without offset; naive taken as UTC)."""
    if not raw:
        return None
    try:
        dt = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def line_description(description: str, line_id: str) -> str:
    """The description with the store line marker, cut to fit Acumatica's 256 characters."""
    marker = f" [ref:{line_id}]"
    return description[: max(DESCRIPTION_MAX - len(marker), 0)].rstrip() + marker


def line_id_of(description: Any) -> str | None:
    """The store line id carried by a ``LineDescription``, if any."""
    m = LINE_REF.search(str(description or ""))
    return m.group("id") if m else None


def _contact(addr: Address, email: str) -> dict[str, Any]:
    out = {
        "Attention": v(addr.full_name),
        "BusinessName": v(addr.company or addr.full_name),
        "Email": v(addr.email or email),
        "Phone1": v(addr.phone),
    }
    return out


def address_record(addr: Address) -> dict[str, Any]:
    """An Address linked entity."""
    return {
        "AddressLine1": v(addr.street[0] if addr.street else ""),
        "AddressLine2": v(", ".join(addr.street[1:])),  # more than two lines are joined
        "City": v(addr.city),
        "State": v(addr.region_code or addr.region),
        "PostalCode": v(addr.postcode),
        "Country": v(addr.country),
    }


def sales_order_record(
    draft: SalesOrderDraft, *, order_type: str = "SO", warehouse_id: str | None = None
) -> dict[str, Any]:
    """The SalesOrder to PUT for a draft: manual discounts, premium freight, the store's tax."""
    ship_to = draft.ship_to or draft.bill_to
    details = []
    for line in draft.lines:
        row = _priced_line(line, "LineDescription", "OrderQty")
        if warehouse_id:
            row["WarehouseID"] = v(warehouse_id)
        details.append(row)
    record: dict[str, Any] = {
        "OrderType": v(order_type),
        "CustomerID": v(draft.customer_id),
        "CustomerOrder": v(draft.number),
        "ExternalRef": v(draft.number),
        "Description": v(draft.description),
        "CurrencyID": v(draft.currency),
        "Hold": v(False),
        "BillToContactOverride": v(True),
        "BillToContact": _contact(draft.bill_to, draft.email),
        "BillToAddressOverride": v(True),
        "BillToAddress": address_record(draft.bill_to),
        "ShipToContactOverride": v(True),
        "ShipToContact": _contact(ship_to, draft.email),
        "ShipToAddressOverride": v(True),
        "ShipToAddress": address_record(ship_to),
        "Details": details,
    }
    if draft.date:
        record["Date"] = v(draft.date.isoformat())
    if draft.exchange_rate:
        # Acumatica's rate converts the document's currency into the base one (1 EUR = x USD);
        # Magento's base_to_order_rate goes the other way (1 USD = y EUR)
        record["CurrencyRate"] = v((Decimal(1) / draft.exchange_rate).quantize(Decimal("0.00000001")))
        record["ReciprocalRate"] = v(draft.exchange_rate)
    if draft.ship_via:
        record["ShipVia"] = v(draft.ship_via)
        record["ShippingSettings"] = {"ShipVia": v(draft.ship_via)}
    if draft.payment_method:
        record["PaymentMethod"] = v(draft.payment_method)
    if draft.freight:
        record["Totals"] = {"PremiumFreight": v(cents(draft.freight))}
    if draft.tax_id:
        record.update(tax_as_charged(draft.tax_id, draft.tax_total, own_calculation_off=True))
    if draft.note:
        record["note"] = v(draft.note)
    return record


def line_map(details: Any) -> dict[str, str]:
    """ERP ``LineNbr`` -> store line id, from returned order lines that carry the marker."""
    out: dict[str, str] = {}
    for row in details or []:
        if not isinstance(row, Mapping):
            continue
        nbr, line_id = value(row, "LineNbr"), line_id_of(value(row, "LineDescription"))
        if nbr is not None and line_id:
            out[str(int(nbr))] = line_id
    return out


def return_order_record(draft: ReturnDraft, order_type: str = "RM", warehouse_id: str | None = None) -> dict[str, Any]:
    """The return order (an RM order: receipt lines of negative quantity, no issue) to PUT: each
    line at the store's price with its discount share, the store's tax on them as charged; it carries
    the store return's number (``ExternalRef``: found by it) and the store order's (``CustomerOrder``:
    the credit memo its receipt makes carries it, so ``erpsync reconcile`` counts it on the order)."""
    details = []
    for line in draft.lines:
        row = _priced_line(
            line.model_copy(update={"qty": -line.qty, "discount": -line.discount}), "LineDescription", "OrderQty"
        )
        row["Operation"] = v("Receipt")
        row["AutoCreateIssue"] = v(False)
        if warehouse_id:
            row["WarehouseID"] = v(warehouse_id)
        details.append(row)
    record = {"OrderType": v(order_type), **_store_document(draft, details)}
    if draft.tax_id:
        record.update(tax_as_charged(draft.tax_id, -draft.tax_total, own_calculation_off=True))
    return record


def return_ref(record: Mapping[str, Any]) -> ErpReturnRef:
    return ErpReturnRef(
        order_type=str(value(record, "OrderType", "")),
        number=str(value(record, "OrderNbr", "")),
        line_map=line_map(record.get("Details")),
    )


def return_receipt(record: Mapping[str, Any]) -> ReturnReceipt:
    """A return order (with ``Details``) as what it received: each receipt line's units on confirmed
    receipts (``ShippedQty``; the issue lines of an RMA with replacement are left out)."""
    received: dict[str, Decimal] = {}
    for row in record.get("Details") or []:
        if not isinstance(row, Mapping) or dec(row, "OrderQty") >= 0:
            continue
        nbr = value(row, "LineNbr")
        if nbr is not None:
            received[str(int(nbr))] = abs(dec(row, "ShippedQty"))
    order_type, number = value(record, "OrderType", ""), value(record, "OrderNbr", "")
    return ReturnReceipt(
        source_id=f"{order_type}/{number}",
        status=str(value(record, "Status", "") or ""),
        store_number=str(value(record, "ExternalRef", "") or ""),
        received=received,
        updated_at=when(value(record, "LastModified")),
    )


def customer_record(customer: Customer, customer_id: str, *, customer_class: str = "DEFAULT") -> dict[str, Any]:
    """The Customer to PUT when an order needs one (insert only)."""
    addr = customer.address or Address()
    return {
        "CustomerID": v(customer_id),
        "CustomerName": v(customer.name),
        "CustomerClass": v(customer_class),
        "MainContact": {
            "Email": v(customer.email),
            "Phone1": v(customer.phone or addr.phone),
            "Address": address_record(addr),
        },
    }


def address_from_record(record: Mapping[str, Any] | None) -> Address | None:
    """An Acumatica Address linked entity; None when it holds nothing."""
    if not isinstance(record, Mapping):
        return None
    lines = [str(value(record, k) or "").strip() for k in ("AddressLine1", "AddressLine2")]
    addr = Address(
        street=[x for x in lines if x],
        city=str(value(record, "City") or ""),
        region_code=str(value(record, "State") or ""),
        postcode=str(value(record, "PostalCode") or ""),
        country=str(value(record, "Country") or ""),
    )
    return None if addr == Address() else addr


def customer_from_acumatica(record: Mapping[str, Any]) -> Customer:
    """An Acumatica Customer (``$expand=MainContact,ShippingContact``) as the canonical customer."""
    main = record.get("MainContact") if isinstance(record.get("MainContact"), Mapping) else {}
    email = value(main, "Email") or value(record, "Email")
    cid = str(value(record, "CustomerID", ""))
    if not email:
        raise ValidationFailed(f"acumatica customer {cid}: no email on its main contact", system=SYSTEM)
    first, last = value(main, "FirstName") or "", value(main, "LastName") or ""
    name = str(value(record, "CustomerName") or "")
    company = str(value(main, "CompanyName") or "")
    if not first and not last and name and name != company:
        first, _, last = name.partition(" ")
    billing = address_from_record(main.get("Address") if isinstance(main, Mapping) else None)
    shipping = None
    if value(record, "ShippingAddressOverride"):
        ship = record.get("ShippingContact")
        shipping = address_from_record(ship.get("Address") if isinstance(ship, Mapping) else None)
    return Customer(
        email=str(email),
        first_name=str(first),
        last_name=str(last),
        company=company,
        phone=str(value(main, "Phone1") or ""),
        address=billing,
        shipping=shipping if shipping != billing else None,
        source_id=cid,
        version=str(value(record, "LastModifiedDateTime") or "") or None,
        price_class=value(record, "PriceClassID"),
        customer_class=value(record, "CustomerClass"),
    )


def customer_upsert_record(
    customer: Customer, customer_id: str, *, customer_class: str | None = None, price_class: str | None = None
) -> dict[str, Any]:
    """The Customer to PUT for the customers flow: name, main contact (names, company, email, phone,
    billing address), the shipping address as an override when it differs, the price class.
    ``customer_class`` only on a create (an existing class is the ERP's)."""
    name = customer.company or " ".join(p for p in (customer.first_name, customer.last_name) if p) or customer.email
    record: dict[str, Any] = {
        "CustomerID": v(customer_id),
        "CustomerName": v(name),
        "MainContact": {
            "FirstName": v(customer.first_name),
            "LastName": v(customer.last_name),
            "CompanyName": v(customer.company),
            "Email": v(customer.email),
            "Phone1": v(customer.phone),
            "Address": address_record(customer.address or Address()),
        },
    }
    if customer_class:
        record["CustomerClass"] = v(customer_class)
    if price_class:
        record["PriceClassID"] = v(price_class)
    differs = customer.shipping is not None and customer.shipping != customer.address
    record["ShippingAddressOverride"] = v(bool(differs))
    if differs and customer.shipping is not None:
        record["ShippingContact"] = {"Address": address_record(customer.shipping)}
    return record


def _document_lines(record: Mapping[str, Any], qty_field: str) -> list[DocumentLine]:
    """The Details of a shipment or invoice, each pointing at its sales order line."""
    return [
        DocumentLine(
            order_number=str(value(d, "OrderNbr", "")),
            order_type=str(value(d, "OrderType", "")),
            line_nbr=None if value(d, "OrderLineNbr") is None else str(int(value(d, "OrderLineNbr"))),
            sku=str(value(d, "InventoryID", "")),
            qty=dec(d, qty_field),
        )
        for d in record.get("Details") or []
        if isinstance(d, Mapping)
    ]


def shipment(record: Mapping[str, Any]) -> Shipment:
    """An Acumatica Shipment (with Details and Packages expanded) as the canonical one."""
    status = str(value(record, "Status", ""))
    ship_via = value(record, "ShipVia")
    lines = _document_lines(record, "ShippedQty")
    tracks = [
        Track(number=str(value(p, "TrackingNbr")), carrier=str(ship_via or ""))
        for p in record.get("Packages") or []
        if isinstance(p, Mapping) and value(p, "TrackingNbr")
    ]
    return Shipment(
        source_id=str(value(record, "ShipmentNbr", "")),
        status=status,
        confirmed=status in CONFIRMED_SHIPMENT,
        ship_date=when(value(record, "ShipmentDate")),
        ship_via=str(ship_via) if ship_via else None,
        lines=lines,
        tracks=tracks,
        updated_at=when(value(record, "LastModifiedDateTime")),
    )


def invoice(record: Mapping[str, Any]) -> Invoice:
    """An Acumatica SalesInvoice (with Details expanded) as the canonical one."""
    status = str(value(record, "Status", ""))
    lines = _document_lines(record, "Qty")
    return Invoice(
        source_id=str(value(record, "ReferenceNbr", "")),
        doc_type=str(value(record, "Type", "Invoice")),
        status=status,
        released=status in RELEASED_INVOICE,
        date=when(value(record, "Date")),
        amount=dec(record, "Amount"),
        currency=str(value(record, "Currency", None) or value(record, "CurrencyID", "")),  # the contract: Currency
        lines=lines,
        updated_at=when(value(record, "LastModifiedDateTime")),
    )


def credit_note(record: Mapping[str, Any], invoices: Mapping[str, Mapping[str, Any]]) -> CreditNote:
    """An Acumatica SalesInvoice of type Credit Memo (with Details) as the canonical CreditNote. A
    line credits a sales order line when it names one (``OrderType``/``OrderNbr``/``OrderLineNbr``,
    as a return order's credit memo does) or an original invoice line (``OrigInvNbr``/``OrigInvLineNbr``,
    as a credit memo made from invoice lines does), resolved through that invoice (``invoices``: by
    number, with Details); any other line is money given back besides, in the total."""
    number = str(value(record, "ReferenceNbr", ""))
    lines: list[CreditLine] = []
    for d in record.get("Details") or []:
        if not isinstance(d, Mapping):
            continue
        amount = dec(d, "Amount")
        source: Mapping[str, Any] | None = d if value(d, "OrderNbr") else None
        line_field = "OrderLineNbr"
        if source is None and value(d, "OrigInvNbr") is not None and value(d, "OrigInvLineNbr") is not None:
            invoice = invoices.get(str(value(d, "OrigInvNbr"))) or {}
            wanted = int(value(d, "OrigInvLineNbr"))
            rows = [ln for ln in invoice.get("Details") or [] if isinstance(ln, Mapping)]
            source = next((ln for ln in rows if dec(ln, "LineNbr") == wanted), None)
            if source is None or not value(source, "OrderNbr"):
                raise ValidationFailed(
                    f"acumatica credit memo {number}: line {value(d, 'LineNbr')} credits invoice "
                    f"{value(d, 'OrigInvNbr')} line {wanted}, which names no sales order line",
                    system="acumatica",
                )
        if source is None:
            continue
        lines.append(
            CreditLine(
                order_number=str(value(source, "OrderNbr", "")),
                order_type=str(value(source, "OrderType", "")),
                line_nbr=None if value(source, line_field) is None else str(int(value(source, line_field))),
                sku=str(value(d, "InventoryID", "")),
                qty=dec(d, "Qty"),
                amount=amount,
            )
        )
    status = str(value(record, "Status", ""))
    return CreditNote(
        source_id=number,
        status=status,
        released=status in RELEASED_INVOICE,
        date=when(value(record, "Date")),
        currency=str(value(record, "Currency", None) or value(record, "CurrencyID", "")),
        external_ref=str(value(record, "ExternalRef", "") or ""),
        customer_order=str(value(record, "CustomerOrder", "") or ""),
        lines=lines,
        freight=dec(record, "FreightPrice"),
        tax_total=dec(record, "TaxTotal"),
        total=dec(record, "Amount"),
        updated_at=when(value(record, "LastModifiedDateTime")),
    )


REFERENCE_MAX = 40
"""Acumatica's ``PaymentRef`` (ExtRefNbr) and ``ExternalRef`` hold at most 40 characters."""


def payment_record(draft: PaymentDraft) -> dict[str, Any]:
    """The Payment to PUT: the captured amount applied to the sales order, not on hold."""
    record = _payment_head("Payment", draft)
    record["OrdersToApply"] = [
        {"OrderType": v(draft.order_type), "OrderNbr": v(draft.order_number), "AppliedToOrder": v(cents(draft.amount))}
    ]
    return record


def _payment_head(kind: str, draft: PaymentDraft) -> dict[str, Any]:
    """A Payment of type ``kind`` (Payment, Refund) for ``draft``, applied to nothing yet."""
    record: dict[str, Any] = {
        "Type": v(kind),
        "CustomerID": v(draft.customer_id),
        "PaymentAmount": v(cents(draft.amount)),
        "CurrencyID": v(draft.currency),
        "PaymentRef": v(draft.reference[:REFERENCE_MAX]),
        "ExternalRef": v(draft.store_order[:REFERENCE_MAX]),
        "Description": v(draft.description),
        "Hold": v(False),
    }
    if draft.method:
        record["PaymentMethod"] = v(draft.method)
    if draft.cash_account:
        record["CashAccount"] = v(draft.cash_account)
    if draft.date:
        record["ApplicationDate"] = v(draft.date.isoformat())
    return record


def _priced_line(line: DraftLine, description: str, qty: str) -> dict[str, Any]:
    """A document line at the store's price and discount (``description`` and ``qty``: the
    document's names for them: a sales order's ``LineDescription``/``OrderQty``, an invoice's
    ``TransactionDescr``/``Qty``), marked with the store line id."""
    return {
        "InventoryID": v(line.sku),
        description: v(line_description(line.description or line.sku, line.line_id)),
        qty: v(line.qty),
        "UnitPrice": v(line.unit_price),
        "DiscountAmount": v(cents(line.discount)),
        "ManualDiscount": v(True),
    }


def credit_memo_record(draft: CreditMemoDraft) -> dict[str, Any]:
    """The SalesInvoice of type Credit Memo to PUT: the refunded lines at the prices and discounts
    the store gave back, the shipping refund as freight, an adjustment as a line of the adjustment
    item, and the store's tax as charged."""
    details = [_priced_line(line, "TransactionDescr", "Qty") for line in draft.lines]
    if draft.adjustment:
        details.append(
            {
                "InventoryID": v(draft.adjustment_item),
                "TransactionDescr": v("Refund adjustment" if draft.adjustment > 0 else "Refund fee"),
                "Qty": v(1 if draft.adjustment > 0 else -1),
                "UnitPrice": v(abs(cents(draft.adjustment))),
            }
        )
    record = {"Type": v("Credit Memo"), **_store_document(draft, details)}
    if draft.freight:
        record["FreightPrice"] = v(cents(draft.freight))
    if draft.tax_id:
        record.update(tax_as_charged(draft.tax_id, draft.tax_total))
    return record


def _store_document(draft: CreditMemoDraft | ReturnDraft, details: list[dict[str, Any]]) -> dict[str, Any]:
    """What an ERP document made for a store document carries: the customer, the store order
    (``CustomerOrder``), the store document's number (``ExternalRef``: found by it after a lost
    answer), a description, the currency, its lines; not on hold."""
    return {
        "CustomerID": v(draft.customer_id),
        "CustomerOrder": v(draft.store_order[:REFERENCE_MAX]),
        "ExternalRef": v(draft.store_number[:REFERENCE_MAX]),
        "Description": v(draft.description),
        "CurrencyID": v(draft.currency),
        "Hold": v(False),
        "Details": details,
    }


def tax_as_charged(tax_id: str, amount: Decimal, *, own_calculation_off: bool = False) -> dict[str, Any]:
    """The fields that put the store's tax, ``amount`` as charged, on tax id ``tax_id``
    (``own_calculation_off``: a sales order, whose own tax calculation is turned off for it)."""
    fields: dict[str, Any] = {"DisableAutomaticTaxCalculation": v(True)} if own_calculation_off else {}
    fields["IsTaxValid"] = v(True)
    fields["TaxDetails"] = [{"TaxID": v(tax_id), "TaxAmount": v(cents(amount))}]
    return fields


def credit_memo(record: Mapping[str, Any]) -> ErpCreditMemo:
    return ErpCreditMemo(
        doc_type=str(value(record, "Type", "Credit Memo")),
        number=str(value(record, "ReferenceNbr", "")),
        amount=dec(record, "Amount"),
        balance=dec(record, "Balance"),
        status=str(value(record, "Status", "")),
    )


def refund_record(memo: ErpCreditMemo, draft: PaymentDraft) -> dict[str, Any]:
    """The Payment of type Refund to PUT: the money paid back, applied to the credit memo."""
    record = _payment_head("Refund", draft)
    record["DocumentsToApply"] = [
        {"DocType": v(memo.doc_type), "ReferenceNbr": v(memo.number), "AmountPaid": v(cents(draft.amount))}
    ]
    return record


def payment(record: Mapping[str, Any]) -> ErpPayment:
    """An Acumatica Payment as the canonical ``ErpPayment``."""
    return ErpPayment(
        id=str(record.get("id", "")),
        doc_type=str(value(record, "Type", "Payment")),
        number=str(value(record, "ReferenceNbr", "")),
        amount=dec(record, "PaymentAmount"),
        status=str(value(record, "Status", "")),
        reference=str(value(record, "PaymentRef", "") or ""),
    )


def _party(contact: Any, address: Any) -> Address | None:
    """An order's bill-to or ship-to: its contact (attention, business name, email, phone) and address."""
    addr = address_from_record(address) or Address()
    contact = contact if isinstance(contact, Mapping) else {}
    attention = str(value(contact, "Attention") or value(contact, "DisplayName") or "").strip()
    first, _, last = attention.partition(" ")
    business = str(value(contact, "BusinessName") or "").strip()
    full = addr.model_copy(
        update={
            "first_name": first,
            "last_name": last,
            "company": "" if business == attention else business,
            "email": str(value(contact, "Email") or ""),
            "phone": str(value(contact, "Phone1") or ""),
        }
    )
    return None if full == Address() else full


def order_from_acumatica(record: Mapping[str, Any], email: str = "") -> Order:
    """An Acumatica SalesOrder (``$expand=Details,Totals,BillToContact,BillToAddress,ShipToContact,
    ShipToAddress``) as the canonical order: the ERP's lines, prices, discounts, freight, tax and
    total as it charged them; ``paid`` what its payments cover (total less the unpaid balance).
    ``email``: the customer's, when the bill-to contact has none."""
    order_type, number = str(value(record, "OrderType", "")), str(value(record, "OrderNbr", ""))
    where = f"acumatica order {order_type} {number}"
    bill_to = _party(record.get("BillToContact"), record.get("BillToAddress"))
    if bill_to is None:
        raise ValidationFailed(f"{where}: no bill-to contact or address", system=SYSTEM)
    email = bill_to.email or email
    if not email:
        raise ValidationFailed(f"{where}: no email on its bill-to contact or its customer", system=SYSTEM)
    lines = []
    for d in record.get("Details") or []:
        if not isinstance(d, Mapping):
            continue
        qty = dec(d, "OrderQty")
        lines.append(
            OrderLine(
                line_id=str(int(value(d, "LineNbr", 0) or 0)),
                sku=str(value(d, "InventoryID", "") or "").strip(),
                name=str(value(d, "LineDescription", "") or ""),
                qty=qty,
                unit_price=dec(d, "UnitPrice"),
                discount=dec(d, "DiscountAmount"),
                store_line_ids=[],
            )
        )
    totals = record.get("Totals") if isinstance(record.get("Totals"), Mapping) else {}
    total = dec(record, "OrderTotal")
    unpaid = dec(totals, "UnpaidBalance") if value(totals, "UnpaidBalance") is not None else total
    customer = Customer(
        email=email,
        first_name=bill_to.first_name,
        last_name=bill_to.last_name,
        company=bill_to.company,
        phone=bill_to.phone,
        address=bill_to,
        source_id=str(value(record, "CustomerID", "") or "") or None,
    )
    return Order(
        source_id=erp_order_key(order_type, number),
        number=number,
        status=str(value(record, "Status", "") or ""),
        created_at=when(value(record, "Date")),
        updated_at=when(value(record, "LastModified")),
        currency=str(value(record, "CurrencyID", "") or ""),
        customer=customer,
        bill_to=bill_to,
        ship_to=_party(record.get("ShipToContact"), record.get("ShipToAddress")),
        shipping_method=str(value(record, "ShipVia", "") or "") or None,
        payment_method=str(value(record, "PaymentMethod", "") or "") or None,
        lines=lines,
        subtotal=dec(totals, "LineTotalAmount"),
        freight=cents(dec(totals, "Freight") + dec(totals, "PremiumFreight")),
        tax_total=dec(record, "TaxTotal"),
        grand_total=total,
        paid=max(Decimal(0), total - unpaid),
        external_ref=str(value(record, "ExternalRef", "") or ""),
    )
