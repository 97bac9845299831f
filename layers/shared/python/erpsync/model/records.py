"""The canonical records every flow works with, independent of any concrete system."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from erpsync.model.base import Model, invalid
from erpsync.model.money import cents


class Address(Model):
    first_name: str = ""
    last_name: str = ""
    company: str = ""
    street: list[str] = []
    city: str = ""
    region: str = ""
    region_code: str = ""
    postcode: str = ""
    country: str = ""
    phone: str = ""
    email: str = ""

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p)


class Customer(Model):
    """A customer; the email address is the identity on every side."""

    email: str
    first_name: str = ""
    last_name: str = ""
    company: str = ""
    phone: str = ""
    group: str | None = None
    """The store's customer group id (the ERP side's price class is mapped to it by the flow)."""
    is_guest: bool = False
    address: Address | None = None
    """The default billing address."""
    shipping: Address | None = None
    """The default shipping address (None: same as billing)."""
    source_id: str | None = None
    version: str | None = None
    """The system's change marker (Magento ``updated_at``, Acumatica ``LastModifiedDateTime``)."""
    price_class: str | None = None
    """ERP side: the customer price class as the ERP holds it."""
    customer_class: str | None = None
    """ERP side: the customer class."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.email = self.email.strip().lower()
        if "@" not in self.email:
            raise invalid("email", f"not an email address: {self.email!r}")

    @property
    def name(self) -> str:
        name = " ".join(p for p in (self.first_name, self.last_name) if p)
        return name or self.company or self.email


class OrderLine(Model):
    """One real line of an order (a configurable parent and its child fold into one)."""

    line_id: str
    """The store's id for this line: the one it ships and invoices against."""
    sku: str
    name: str = ""
    qty: Decimal
    unit_price: Decimal
    discount: Decimal = Decimal("0")
    """The line's own discount amount (for the whole line, positive)."""
    tax: Decimal = Decimal("0")
    product_type: str = "simple"
    store_line_ids: list[str] = []
    """Every store line folded into this one (e.g. a configurable parent and its child)."""

    @property
    def row_total(self) -> Decimal:
        return cents(self.unit_price * self.qty)


class OrderComment(Model):
    """One comment of an order's history."""

    text: str
    visible: bool = False
    """Shown to the customer (Magento ``is_visible_on_front``; the customer's own comment is)."""
    created_at: datetime | None = None


class Order(Model):
    """A store order, as the store charged it."""

    source_id: str
    number: str
    """The store's visible reference (Magento increment_id); the ERP carries it too."""
    status: str = ""
    state: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    currency: str
    exchange_rate: Decimal | None = None
    """Units of ``currency`` per unit of the store's base currency (Magento's ``base_to_order_rate``),
    when the amounts are in a currency other than the base one."""
    customer: Customer
    bill_to: Address
    ship_to: Address | None = None
    shipping_method: str | None = None
    shipping_description: str = ""
    payment_method: str | None = None
    lines: list[OrderLine]
    subtotal: Decimal = Decimal("0")
    order_discount: Decimal = Decimal("0")
    """Cart-level discount not carried by any line (positive); spread over lines on the way."""
    freight: Decimal = Decimal("0")
    """Shipping charged, net of any shipping discount."""
    tax_total: Decimal = Decimal("0")
    grand_total: Decimal
    paid: Decimal = Decimal("0")
    """What the store has captured of the grand total so far (offline methods: what was invoiced)."""
    transaction_id: str = ""
    """The payment gateway's id of the last capture ('' for an offline method)."""
    external_ref: str = ""
    """An ERP order's reference to a store order (Acumatica ``ExternalRef``): set on every order that
    came from a store or was sent to one."""
    comments: list[OrderComment] = []
    """The order's comments, oldest first (what ``order_comments`` sends to the other side)."""
    channel: str = ""
    """Where it was sold (Shopify's ``sourceName``: web, pos, an app; Magento's store view)."""
    tags: list[str] = []
    """The store's tags on the order (Shopify's), for the order rules."""

    @property
    def payment_captured(self) -> bool:
        return self.grand_total > 0 and self.paid >= self.grand_total

    def computed_total(self) -> Decimal:
        """Lines less their discounts, less the cart discount, plus freight and tax."""
        lines = sum((ln.row_total - cents(ln.discount) for ln in self.lines), Decimal("0"))
        return cents(lines - self.order_discount + self.freight + self.tax_total)


class DraftLine(Model):
    line_id: str
    sku: str
    description: str = ""
    qty: Decimal
    unit_price: Decimal
    discount: Decimal = Decimal("0")

    @property
    def amount(self) -> Decimal:
        return cents(self.unit_price * self.qty) - cents(self.discount)


class SalesOrderDraft(Model):
    """What the orders flow asks the ERP to create: resolved, mapped and adding up."""

    number: str
    customer_id: str
    date: datetime | None = None
    currency: str
    exchange_rate: Decimal | None = None
    """As ``Order.exchange_rate``: units of ``currency`` per unit of the base currency."""
    description: str = ""
    ship_via: str | None = None
    payment_method: str | None = None
    bill_to: Address
    ship_to: Address | None = None
    email: str = ""
    lines: list[DraftLine]
    freight: Decimal = Decimal("0")
    tax_total: Decimal = Decimal("0")
    tax_id: str | None = None
    total: Decimal
    note: str = ""
    paid: Decimal = Decimal("0")
    """What the store captured at checkout: an ERP with no sales order may book a paid order as a
    sale already paid (QuickBooks' sales receipt)."""
    document: str | None = None
    """``sales_receipt``, ``invoice`` or ``estimate`` when an order rule chose (ERPs without sales orders)."""
    fulfilled: bool = False
    """The store order is fulfilled (shipped and complete): an ERP that books an order in two stages
    (QuickBooks' estimate, then the invoice that closes it) books its final document."""
    deposit_account: str | None = None
    """The account an order rule deposits it to (a sales receipt's ``DepositToAccountRef``)."""
    """The store order's comments the settings send (``order_comments.to_erp``), one a line."""

    def computed_total(self) -> Decimal:
        return cents(sum((ln.amount for ln in self.lines), Decimal("0")) + self.freight + self.tax_total)


class ErpOrderRef(Model):
    """Where an order landed in the ERP."""

    id: str
    """The ERP's stable id (Acumatica record GUID)."""
    number: str
    """The ERP's visible number (Acumatica OrderNbr)."""
    order_type: str = ""
    status: str = ""
    line_map: dict[str, str] = {}
    """ERP line number -> store line_id."""
    final: bool = True
    """False for a first-stage document (QuickBooks' estimate): the orders flow books the order
    again, finally, once the store has fulfilled it."""

    @property
    def key(self) -> str:
        return erp_order_key(self.order_type, self.number)


class OrderStatus(Model):
    """Where an order stands on one side (what a cancellation needs to know)."""

    source_id: str
    number: str
    status: str
    note: str = ""
    """The order's note (Acumatica ``note``): a cancel's reason is often written there."""


class StoreOrderRef(Model):
    """Where an order entered in the ERP landed in the store."""

    id: str
    """The store's id (Magento entity_id)."""
    number: str
    """The store's visible number (Magento increment_id)."""
    item_ids: list[str] = []
    """The store's line ids, in the order's line order."""


def erp_order_key(order_type: str, number: str) -> str:
    """How bindings name an ERP order: its type and number (numbers repeat across types)."""
    return f"{order_type}/{number}" if order_type else number


class PaymentDraft(Model):
    """Money the store captured, as the ERP should record it: a payment applied to the order's
    ERP sales order."""

    customer_id: str
    order_type: str
    order_number: str
    """The ERP sales order the payment is applied to."""
    amount: Decimal
    currency: str
    method: str | None = None
    """The ERP's payment method (None: the customer's default)."""
    cash_account: str | None = None
    """The ERP's cash account (None: the payment method's default)."""
    reference: str
    """The gateway's transaction id, or the store order number for an offline method."""
    store_order: str
    """The store order number: every payment of one store order carries it, so they can be found."""
    description: str = ""
    date: datetime | None = None


class ErpPayment(Model):
    """A payment as the ERP holds it."""

    id: str
    doc_type: str
    number: str
    amount: Decimal
    status: str = ""
    reference: str = ""

    @property
    def released(self) -> bool:
        """Released (posted): its status is no longer a draft's."""
        return self.status not in ("", "On Hold", "Balanced", "Pending Processing")

    @property
    def voided(self) -> bool:
        return self.status == "Voided"


class RefundLine(DraftLine):
    """One order line given back in a credit memo, as the store refunded it (``line_id``: the store
    order line, ``discount``: the line's discount given back with it)."""

    tax: Decimal = Decimal("0")


class CreditMemo(Model):
    """Money the store gave back on an order (a Magento credit memo), to the cent."""

    source_id: str
    number: str
    """The store's visible reference (Magento increment_id)."""
    order_id: str
    """The store order's id (the orders flow's binding key)."""
    order_number: str = ""
    email: str = ""
    """The order's customer (the ERP customer is found by it)."""
    currency: str
    created_at: datetime | None = None
    updated_at: datetime | None = None
    lines: list[RefundLine] = []
    shipping: Decimal = Decimal("0")
    """Shipping given back (net of any shipping discount)."""
    adjustment: Decimal = Decimal("0")
    """Adjustment refund less adjustment fee (Magento adjustment_positive - adjustment_negative)."""
    tax_total: Decimal = Decimal("0")
    grand_total: Decimal
    online: bool = False
    """Refunded through the payment gateway (``transaction_id`` its refund's id), not by hand."""
    transaction_id: str = ""
    payment_method: str | None = None
    erp_ref: str = ""
    """The ERP credit memo it was made from (by erpsync's erp-credit-memos flow): it never goes back."""

    def computed_total(self) -> Decimal:
        """Lines less their discounts, plus shipping, adjustment and tax."""
        lines = sum((ln.amount for ln in self.lines), Decimal("0"))
        return cents(lines + self.shipping + self.adjustment + self.tax_total)


class CreditMemoDraft(Model):
    """A store credit memo as the ERP should record it: a credit memo of the order's customer."""

    customer_id: str
    store_number: str
    """The store credit memo number: the ERP document carries it (its idempotency key)."""
    store_order: str
    currency: str
    lines: list[DraftLine]
    freight: Decimal = Decimal("0")
    adjustment: Decimal = Decimal("0")
    adjustment_item: str | None = None
    """The ERP non-stock item an adjustment is booked to."""
    tax_id: str | None = None
    tax_total: Decimal = Decimal("0")
    total: Decimal
    description: str = ""

    def computed_total(self) -> Decimal:
        return cents(
            sum((ln.amount for ln in self.lines), Decimal("0")) + self.freight + self.adjustment + self.tax_total
        )


class ErpCreditMemo(Model):
    """A credit memo as the ERP holds it."""

    doc_type: str = "Credit Memo"
    number: str
    amount: Decimal
    balance: Decimal = Decimal("0")
    status: str = ""

    @property
    def released(self) -> bool:
        return self.status not in ("", "On Hold", "Balanced")


class Books(Model):
    """What one order's money is on one side: charged, paid and given back (for ``reconcile``)."""

    number: str
    """The store order number (the one both sides carry)."""
    ref: str = ""
    """The order's id on this side (a store id, an ERP ``<type>/<number>``)."""
    total: Decimal
    paid: Decimal = Decimal("0")
    refunded: Decimal = Decimal("0")
    currency: str = ""
    state: str = ""


class Track(Model):
    number: str
    carrier: str = ""
    title: str = ""


class DocumentLine(Model):
    """A shipped or invoiced quantity of one order line, as the ERP reports it."""

    order_number: str
    """The ERP's order number the line belongs to."""
    order_type: str = ""
    line_nbr: str | None = None
    sku: str = ""
    qty: Decimal
    store_line_id: str | None = None
    """Filled in by the flow: the store's line to ship or invoice."""

    @property
    def order_key(self) -> str:
        return erp_order_key(self.order_type, self.order_number)


class Shipment(Model):
    source_id: str
    status: str = ""
    confirmed: bool = False
    """True once the ERP has confirmed it (goods left the warehouse)."""
    ship_date: datetime | None = None
    ship_via: str | None = None
    lines: list[DocumentLine]
    tracks: list[Track] = []
    updated_at: datetime | None = None


class Invoice(Model):
    source_id: str
    doc_type: str = "Invoice"
    status: str = ""
    released: bool = False
    """True once the ERP has released it (posted; no longer a draft)."""
    date: datetime | None = None
    amount: Decimal = Decimal("0")
    currency: str = ""
    lines: list[DocumentLine]
    updated_at: datetime | None = None


class CreditLine(DocumentLine):
    """One line of an ERP credit memo given back against a sales order line (``qty`` units,
    ``amount`` its extended amount less its discount)."""

    amount: Decimal = Decimal("0")


class CreditNote(Model):
    """A credit memo entered in the ERP: what it gives back, line by line against the sales order
    lines it credits (the source of the erp-credit-memos flow)."""

    source_id: str
    status: str = ""
    released: bool = False
    """True once the ERP has released it (posted: the money is owed to the customer)."""
    date: datetime | None = None
    currency: str = ""
    external_ref: str = ""
    """Set when erpsync made it from a store credit memo (that memo's number): it never goes back."""
    customer_order: str = ""
    """The store order number it carries (written back once the store credit memo is made)."""
    lines: list[CreditLine] = []
    """The lines that credit a sales order line (its other lines, an adjustment or a fee, are in ``total``)."""
    freight: Decimal = Decimal("0")
    tax_total: Decimal = Decimal("0")
    total: Decimal
    updated_at: datetime | None = None


class StoreRefundDraft(Model):
    """An ERP credit memo as the store should record it: an offline credit memo on one order of
    exactly ``total``, its lines resolved to the order's own lines (``store_line_id``)."""

    order_id: str
    ref: str
    """The ERP credit memo's number, marked on the store credit memo (found by it after a lost answer)."""
    lines: list[CreditLine]
    shipping: Decimal = Decimal("0")
    total: Decimal
    description: str = ""


class StoreRefundRef(Model):
    """A store credit memo made (or found) for an ERP credit memo."""

    id: str
    number: str = ""
    total: Decimal
    adjustment: Decimal = Decimal("0")
    """What the store credit memo carries as adjustment so its total is the ERP's to the cent."""


class ReturnRequest(Model):
    """A return the store agreed to take back (an Adobe Commerce RMA): the units authorized, each
    at what the customer paid for it (``RefundLine``: price, its share of discount and tax)."""

    source_id: str
    number: str
    """The store's visible reference (the RMA's increment_id)."""
    status: str = ""
    order_id: str
    order_number: str = ""
    email: str = ""
    currency: str = ""
    date: datetime | None = None
    lines: list[RefundLine] = []
    """The authorized lines (``qty``: units authorized), those with nothing authorized left out."""


class ReturnDraft(Model):
    """An ERP return order to create for a store return: receipt lines at the store's prices, with
    the store's tax on them as charged."""

    customer_id: str
    store_number: str
    """The store return's number: the ERP return order carries it (found by it after a lost answer)."""
    store_order: str
    currency: str
    lines: list[DraftLine]
    tax_id: str | None = None
    tax_total: Decimal = Decimal("0")
    description: str = ""


class ErpReturnRef(Model):
    """An ERP return order made (or found) for a store return."""

    order_type: str
    number: str
    line_map: dict[str, str] = {}
    """ERP line number -> the store order line it takes back."""

    @property
    def key(self) -> str:
        return f"{self.order_type}/{self.number}"


class ReturnReceipt(Model):
    """What an ERP return order has received so far (its confirmed receipts), line by line."""

    source_id: str
    """``<order type>/<number>``."""
    status: str = ""
    store_number: str = ""
    """The store return it was made from (the ERP's ``ExternalRef``), if any."""
    received: dict[str, Decimal] = {}
    """ERP line number -> units received on confirmed receipts (receipt lines only)."""
    updated_at: datetime | None = None


class StoreReturnState(Model):
    """A store return after its received quantities were written."""

    id: str
    number: str = ""
    status: str


class ChangeNotice(Model):
    """A doorbell: something changed in ``source``; the worker reads the record itself."""

    source: str
    """The connection the change comes from (an id such as ``magento``)."""
    entity: str
    id: str
    target: str | None = None
    """The connection to sync it to; None: every route of the flow from ``source``."""
    event_id: str | None = None
    occurred_at: datetime | None = None
    version: str | None = None
    """The source's version marker when known (e.g. updated_at)."""
    snapshot: dict[str, Any] | None = None
    """The record as the source returned it when the notice was made (a poll's search already reads
    whole orders), so a worker that picks the notice up soon after need not read it again."""
    read_at: datetime | None = None
    """When ``snapshot`` was read."""

    def fresh_snapshot(self, max_age_s: float, now: datetime | None = None) -> dict[str, Any] | None:
        """``snapshot`` if it was read less than ``max_age_s`` ago; else None (read the record)."""
        if not self.snapshot or self.read_at is None or max_age_s <= 0:
            return None
        age = ((now or datetime.now(UTC)) - self.read_at).total_seconds()
        return self.snapshot if 0 <= age < max_age_s else None
