"""QuickBooks Online entities <-> erpsync's canonical model.

QuickBooks Online has no sales order: a store order is booked as a sales receipt (paid at
checkout), an invoice (paid later, by payments applied to it), or an estimate that the invoice
closes once the order is fulfilled. Its lines are sales item lines at the store's unit price; the
store's discounts are one discount line; freight is a line on the shipping item; the store's tax is
the document's ``TxnTaxDetail.TotalTax`` (automated sales tax honours an explicit total), so the
document's total is the store's to the cent. A store refund is booked the same way, as a refund
receipt (of a sales receipt) or a credit memo (of an invoice).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from erpsync.errors import UnknownItemError, ValidationFailed
from erpsync.model import (
    Address,
    CreditMemoDraft,
    Customer,
    DocumentLine,
    DraftLine,
    ErpCreditMemo,
    Invoice,
    SalesOrderDraft,
    cents,
)
from erpsync.model.base import ValidationError

SYSTEM = "quickbooks"
DOC_NUMBER_MAX = 21
PAYMENT_MARK = "[erpsync]"
"""Ends the ``PrivateNote`` of every payment erpsync makes from what the store captured: an invoice
paid by these alone was paid in the store, and is not brought back to it."""
DELETED = "deleted in QuickBooks"
REFUND_PREFIX = "R"
"""Starts the ``DocNumber`` of the refund receipt or credit memo of a store refund (the store's
credit memo number follows): store credit memo and order numbers may be alike."""
OPEN_ESTIMATE = ("Pending", "Accepted")
"""The ``TxnStatus`` of an estimate an invoice can still close (Finance.xsd, ``LinkedTxn.TxnId``:
"Only Pending and Accepted Estimates can be specified. Closed and Rejected estimates will be
ignored")."""


def money(value: Decimal) -> float:
    """An amount as the JSON number QuickBooks takes (two decimals)."""
    return float(cents(value))


def address_to_qbo(addr: Address | None) -> dict[str, Any] | None:
    if addr is None:
        return None
    lines = [ln for ln in addr.street if ln][:3]
    out: dict[str, Any] = {f"Line{i + 1}": ln[:500] for i, ln in enumerate(lines)}
    out.update(
        {
            "City": addr.city or None,
            "CountrySubDivisionCode": addr.region_code or addr.region or None,
            "PostalCode": addr.postcode or None,
            "Country": addr.country or None,
        }
    )
    return {k: v for k, v in out.items() if v}


def address_from_qbo(data: Any, email: str = "") -> Address | None:
    if not isinstance(data, Mapping):
        return None
    return Address(
        street=[str(data[k]) for k in ("Line1", "Line2", "Line3") if data.get(k)],
        city=str(data.get("City") or ""),
        region_code=str(data.get("CountrySubDivisionCode") or ""),
        postcode=str(data.get("PostalCode") or ""),
        country=str(data.get("Country") or ""),
        email=email,
    )


def customer_from_qbo(record: Any) -> Customer:
    if not isinstance(record, Mapping):
        raise ValidationFailed("quickbooks customer: not an object", system=SYSTEM)
    email = str(((record.get("PrimaryEmailAddr") or {}).get("Address")) or "").strip()
    cid = str(record.get("Id"))
    if not email:
        raise ValidationFailed(
            f"quickbooks customer {cid} ({record.get('DisplayName')}) has no email: "
            "erpsync identifies customers by email",
            system=SYSTEM,
        )
    try:
        return Customer(
            email=email,
            first_name=str(record.get("GivenName") or ""),
            last_name=str(record.get("FamilyName") or ""),
            company=str(record.get("CompanyName") or ""),
            phone=str(((record.get("PrimaryPhone") or {}).get("FreeFormNumber")) or ""),
            address=address_from_qbo(record.get("BillAddr"), email),
            source_id=cid,
            version=str(((record.get("MetaData") or {}).get("LastUpdatedTime")) or "") or None,
        )
    except ValidationError as exc:
        raise ValidationFailed(f"quickbooks customer {cid}: {exc.errors()[0]['msg']}", system=SYSTEM) from exc


def display_name(customer: Customer) -> str:
    """The customer's name in QuickBooks: their name, else their company, else their email."""
    name = " ".join(x for x in (customer.first_name, customer.last_name) if x).strip()
    return (name or customer.company or customer.email)[:500]


def customer_to_qbo(customer: Customer, name: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "DisplayName": name,
        "GivenName": customer.first_name[:100] or None,
        "FamilyName": customer.last_name[:100] or None,
        "CompanyName": customer.company[:100] or None,
        "PrimaryEmailAddr": {"Address": customer.email},
        "PrimaryPhone": {"FreeFormNumber": customer.phone[:30]} if customer.phone else None,
        "BillAddr": address_to_qbo(customer.address),
    }
    return {k: v for k, v in out.items() if v is not None}


def order_document(
    draft: SalesOrderDraft,
    items: Mapping[str, str],
    *,
    shipping_item: str | None,
    taxable_code: str,
    deposit_account: str | None,
    kind: str,
) -> dict[str, Any]:
    """The sales receipt or invoice of ``draft`` (``items``: SKU -> item id)."""
    if len(draft.number) > DOC_NUMBER_MAX:
        raise ValidationFailed(
            f"order number {draft.number!r} is longer than QuickBooks' {DOC_NUMBER_MAX}-character DocNumber",
            system=SYSTEM,
        )
    tax_code = {"value": taxable_code if draft.tax_total else "NON"}
    lines = _item_lines(draft.lines, items, tax_code)
    if draft.freight:
        if shipping_item is None:
            raise ValidationFailed(
                "the order has freight but QuickBooks has no shipping item (settings shipping_item)", system=SYSTEM
            )
        lines.append(_charge_line(shipping_item, draft.freight, draft.ship_via or "Shipping", tax_code))
    doc: dict[str, Any] = {
        "DocNumber": draft.number,
        "CustomerRef": {"value": draft.customer_id},
        "Line": [{k: v for k, v in ln.items() if v is not None} for ln in lines],
        "TxnTaxDetail": {"TotalTax": money(draft.tax_total)},
        "CurrencyRef": {"value": draft.currency},
        "PrivateNote": "\n".join(x for x in (draft.description, draft.note) if x)[:4000] or None,
        "BillEmail": {"Address": draft.email} if draft.email else None,
        "BillAddr": address_to_qbo(draft.bill_to),
        "ShipAddr": address_to_qbo(draft.ship_to),
        "TxnDate": draft.date.date().isoformat() if draft.date else None,
        "ApplyTaxAfterDiscount": False,
    }
    if draft.exchange_rate:
        doc["ExchangeRate"] = float(draft.exchange_rate)
    if kind == "SalesReceipt" and deposit_account:
        doc["DepositToAccountRef"] = {"value": deposit_account}
    return {k: v for k, v in doc.items() if v is not None}


def _item_lines(lines: Sequence[DraftLine], items: Mapping[str, str], tax_code: dict[str, str]) -> list[dict[str, Any]]:
    """Sales item lines at the store's unit price, then one discount line of their discounts."""
    missing = sorted({ln.sku for ln in lines if ln.sku not in items})
    if missing:
        raise UnknownItemError(f"quickbooks has no item with SKU or name {', '.join(missing)}", system=SYSTEM)
    out: list[dict[str, Any]] = []
    for ln in lines:
        gross = cents(ln.unit_price * ln.qty)
        out.append(
            {
                "DetailType": "SalesItemLineDetail",
                "Amount": money(gross),
                "Description": ln.description[:4000] or None,
                "SalesItemLineDetail": {
                    "ItemRef": {"value": items[ln.sku]},
                    "Qty": float(ln.qty),
                    "UnitPrice": float(ln.unit_price),
                    "TaxCodeRef": tax_code,
                },
            }
        )
    discount = sum((cents(ln.discount) for ln in lines), Decimal("0"))
    if discount:
        out.append(
            {
                "DetailType": "DiscountLineDetail",
                "Amount": money(discount),
                "DiscountLineDetail": {"PercentBased": False},
            }
        )
    return out


def _charge_line(item: str, amount: Decimal, description: str, tax_code: dict[str, str]) -> dict[str, Any]:
    """One line of ``amount`` on ``item`` (freight on the shipping item, an adjustment)."""
    return {
        "DetailType": "SalesItemLineDetail",
        "Amount": money(amount),
        "Description": description,
        "SalesItemLineDetail": {
            "ItemRef": {"value": item},
            "Qty": 1,
            "UnitPrice": money(amount),
            "TaxCodeRef": tax_code,
        },
    }


def refund_number(store_number: str) -> str:
    """The ``DocNumber`` of the refund receipt or credit memo of store credit memo ``store_number``."""
    number = f"{REFUND_PREFIX}{store_number}"
    if len(number) > DOC_NUMBER_MAX:
        raise ValidationFailed(
            f"credit memo number {store_number!r} makes {number!r}, longer than QuickBooks' "
            f"{DOC_NUMBER_MAX}-character DocNumber",
            system=SYSTEM,
        )
    return number


def refund_document(
    draft: CreditMemoDraft,
    items: Mapping[str, str],
    *,
    kind: str,
    shipping_item: str | None,
    taxable_code: str,
    deposit_account: str | None,
) -> dict[str, Any]:
    """The refund receipt or credit memo of store refund ``draft`` (``items``: SKU or item name ->
    item id): the refunded items at their unit price, their discounts as one discount line, the
    refunded shipping on the shipping item, the adjustment on ``draft.adjustment_item`` (a fee
    beyond the refund is a negative line: UNVERIFIED that QuickBooks takes one), the tax as
    ``TxnTaxDetail.TotalTax``. A refund receipt is paid back from ``deposit_account``."""
    tax_code = {"value": taxable_code if draft.tax_total else "NON"}
    lines = _item_lines(draft.lines, items, tax_code)
    if draft.freight:
        if shipping_item is None:
            raise ValidationFailed(
                "the refund gives shipping back but QuickBooks has no shipping item (settings shipping_item)",
                system=SYSTEM,
            )
        lines.append(_charge_line(shipping_item, draft.freight, "Shipping refund", tax_code))
    if draft.adjustment:
        item = items.get(draft.adjustment_item or "")
        if item is None:
            raise UnknownItemError(
                f"quickbooks has no item with SKU or name {draft.adjustment_item!r} for the adjustment of "
                f"{draft.adjustment} (settings credit_memos.adjustment_item)",
                system=SYSTEM,
            )
        lines.append(_charge_line(item, draft.adjustment, "Adjustment", tax_code))
    doc: dict[str, Any] = {
        "DocNumber": refund_number(draft.store_number),
        "CustomerRef": {"value": draft.customer_id},
        "Line": [{k: v for k, v in ln.items() if v is not None} for ln in lines],
        "TxnTaxDetail": {"TotalTax": money(draft.tax_total)},
        "CurrencyRef": {"value": draft.currency},
        "PrivateNote": draft.description[:4000] or None,
        "ApplyTaxAfterDiscount": False,
    }
    if kind == "RefundReceipt":
        if not deposit_account:
            raise ValidationFailed(
                "a refund receipt needs the account it is paid from (settings deposit_account)", system=SYSTEM
            )
        doc["DepositToAccountRef"] = {"value": deposit_account}
    return {k: v for k, v in doc.items() if v is not None}


def refund_from_qbo(kind: str, record: Mapping[str, Any]) -> ErpCreditMemo:
    """A refund receipt (paid back when saved) or a credit memo (the customer's credit until it is
    used: ``RemainingCredit``) as the canonical ERP credit memo."""
    total = document_total(record)
    if kind == "RefundReceipt":
        balance, status = Decimal("0"), "Voided" if voided(record) else "Closed"
    else:
        left = record.get("RemainingCredit", record.get("Balance"))
        balance = cents(_decimal(left, f"credit memo {record.get('Id')} RemainingCredit"))
        status = "Voided" if voided(record) else "Open" if balance > 0 else "Closed"
    return ErpCreditMemo(
        doc_type=kind,
        number=str(record.get("DocNumber") or record.get("Id")),
        amount=total,
        balance=balance,
        status=status,
    )


def document_total(doc: Mapping[str, Any]) -> Decimal:
    return cents(Decimal(str(doc.get("TotalAmt") or 0)))


def payment_note(description: str) -> str:
    """The ``PrivateNote`` of a payment erpsync makes from the store's capture (marked as such)."""
    return f"{description[: 4000 - len(PAYMENT_MARK) - 1]} {PAYMENT_MARK}".strip()


def from_store(payment: Mapping[str, Any]) -> bool:
    """True when erpsync made this payment from what the store captured."""
    return str(payment.get("PrivateNote") or "").endswith(PAYMENT_MARK)


def voided(record: Mapping[str, Any]) -> bool:
    """A voided document or payment: QuickBooks zeroes it and notes ``Voided``."""
    return "Voided" in str(record.get("PrivateNote") or "") and document_total(record) == 0


def _decimal(value: Any, what: str) -> Decimal:
    try:
        return Decimal(str(value if value is not None else 0))
    except (InvalidOperation, ValueError) as exc:
        raise ValidationFailed(f"quickbooks {what} is not a number: {value!r}", system=SYSTEM) from exc


def _when(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def deleted_invoice(id: str) -> Invoice:
    """An invoice QuickBooks no longer has (a CDC ``"status": "Deleted"`` entry, or fault 610)."""
    return Invoice(source_id=id, status=DELETED, released=False, lines=[])


def invoice_from_qbo(
    record: Mapping[str, Any], payments: Sequence[Mapping[str, Any]], shipping_item: str | None
) -> Invoice:
    """A QuickBooks invoice as the canonical one: released (ready for the store) once it is paid in
    full by at least one payment erpsync did not make from the store's own capture (a payment the
    bookkeeper received, or the invoice marked paid). ``payments`` are those its ``LinkedTxn`` name;
    its lines are its sales item lines but the one on ``shipping_item`` (the freight)."""
    if not isinstance(record, Mapping) or not record.get("Id"):
        raise ValidationFailed("quickbooks invoice: not an invoice record (no Id)", system=SYSTEM)
    id = str(record["Id"])
    total = document_total(record)
    balance = cents(_decimal(record.get("Balance"), f"invoice {id} Balance"))
    paying = [p for p in payments if not voided(p)]
    released = False
    if voided(record):
        status = "voided in QuickBooks"
    elif total <= 0:
        status = "of no amount"
    elif balance > 0:
        status = f"not paid in full (balance {balance} of {total})"
    elif paying and all(from_store(p) for p in paying):
        status = "paid by the store's own payments: nothing to bring back"
    else:
        status, released = "paid", True
    number = str(record.get("DocNumber") or id)
    lines = []
    for ln in record.get("Line") or []:
        if not isinstance(ln, Mapping) or ln.get("DetailType") != "SalesItemLineDetail":
            continue
        detail = ln.get("SalesItemLineDetail") or {}
        item = detail.get("ItemRef") or {}
        if shipping_item is not None and str(item.get("value")) == shipping_item:
            continue
        lines.append(
            DocumentLine(
                order_number=number,
                order_type="Invoice",
                line_nbr=str(ln.get("Id")) if ln.get("Id") is not None else None,
                sku=str(item.get("name") or ""),
                qty=_decimal(detail.get("Qty"), f"invoice {id} line {ln.get('Id')} Qty"),
            )
        )
    return Invoice(
        source_id=id,
        doc_type="Invoice",
        status=status,
        released=released,
        date=_when(record.get("TxnDate")),
        amount=total,
        currency=str((record.get("CurrencyRef") or {}).get("value") or ""),
        lines=lines,
        updated_at=_when((record.get("MetaData") or {}).get("LastUpdatedTime")),
    )
