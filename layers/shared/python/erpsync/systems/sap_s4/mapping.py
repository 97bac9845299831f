"""The canonical model and S/4HANA's OData v2 entities: the sales order deep insert
(``A_SalesOrder`` with ``to_Item``, ``to_Partner`` and item ``to_PricingElement``), outbound
deliveries as shipments and billing documents as invoices.

- With ``sold_to`` ``generic`` every order is booked on the configured generic sold-to
  (``generic_sold_to``; a ship-to partner when ``generic_ship_to`` is set); with ``customer`` on the
  store customer's own business partner (its ``Customer``, the draft's ``customer_id``). The
  store's order number goes in ``PurchaseOrderByCustomer`` (the duplicate guard): at most 35
  characters (the EDMX's ``MaxLength``), a longer one is refused before anything is sent, never cut.
- Items are ``10``, ``20`` … in the store's line order; each item carries the store line id in its
  own ``PurchaseOrderByCustomer`` (item level, 35), so an order found again after a lost answer maps
  its items back to store lines (that S/4 keeps an item value that differs from the header's is
  UNVERIFIED). Item numbers are compared without leading zeros on every side.
- Money goes as pricing conditions (every decimal a string): the unit price as
  ``price_condition_type``, a line's discount as ``discount_condition_type`` (a negative amount),
  the store's shipping as ``freight_condition_type`` on the first item. Tax is SAP's to determine:
  none is sent, and its net total is compared with the store's net (total less tax).
- A delivery is shipped once goods issue is posted (``OverallGoodsMovementStatus`` ``C``); its lines
  are the items that reference a sales order item (``ReferenceSDDocument``/``…Item``).
- A billing document is released when not cancelled and its ``AccountingPostingStatus`` is one the
  settings name; its lines are the items' ``SalesDocument``/``SalesDocumentItem``.
- A customer is a business partner (``A_BusinessPartner``): a person (category 1) with first and
  last name, or an organisation (2) named by the company; one address carrying the billing
  address, the e-mail address (lower case: the identity) and the phone; the customer roles, and
  the customer with one sales area (the orders' sales organization, channel and division).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, tzinfo
from decimal import Decimal
from typing import Any

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
    ErpReturnRef,
    Invoice,
    ReturnDraft,
    ReturnReceipt,
    SalesOrderDraft,
    Shipment,
    Track,
    cents,
)
from erpsync.systems.sap_s4 import odata_v2
from erpsync.systems.sap_s4.odata_v2 import format_decimal, normalise_number
from erpsync.systems.sap_s4.settings import S4Settings

SYSTEM = "sap_s4"
PO_MAX = 35
"""``PurchaseOrderByCustomer`` is ``Edm.String MaxLength=35`` on the header and on the item."""
ITEM_TEXT_MAX = 40
SHIPPED, REJECTED = "C", "C"
CANCELLED = "Cancelled"
"""What a store cancellation reads back once the order is rejected as a whole (an ERP cancel status
the cancellations flow knows)."""
"""``OverallGoodsMovementStatus`` of a delivery whose goods issue is posted; ``OverallSDDocumentRejectionSts``
of an order whose every item is rejected."""


def dec(value: Any) -> Decimal:
    """An ``Edm.Decimal`` (a string) as a Decimal; missing is zero."""
    return odata_v2.parse_decimal(value) or Decimal(0)


def item_number(position: int) -> str:
    """The ``SalesOrderItem`` of the store's ``position``-th line (0-based): ``10``, ``20`` …"""
    return str((position + 1) * 10)


# -- orders ---------------------------------------------------------------------------------------


def check_number(number: str, connection: str = SYSTEM) -> str:
    """The store's order number as ``PurchaseOrderByCustomer`` takes it, or ``ValidationFailed``
    when it is longer than 35 (cut, it would no longer find the order it made)."""
    if not number:
        raise ValidationFailed(f"{connection}: a store order without a number cannot be guarded", system=connection)
    if len(number) > PO_MAX:
        raise ValidationFailed(
            f"{connection}: store order number {number!r} has {len(number)} characters; S/4HANA's "
            f"PurchaseOrderByCustomer holds {PO_MAX}: not sent (never cut: the cut number would not find it again)",
            system=connection,
        )
    return number


def _condition(kind: str, rate: Decimal, currency: str) -> dict[str, str]:
    return {"ConditionType": kind, "ConditionRateValue": format_decimal(rate), "ConditionCurrency": currency}


def order_body(draft: SalesOrderDraft, cfg: S4Settings) -> dict[str, Any]:
    """The ``POST A_SalesOrder`` deep-insert body of a draft (the recorded request's shape, with
    the store number, partners and pricing conditions). The sold-to is the configured generic one,
    whatever customer the draft names: a customer binding made before the setting changed may
    still name the earlier one."""
    number = check_number(draft.number)
    if not draft.lines:
        raise ValidationFailed(f"{SYSTEM}: order {number} has no lines", system=SYSTEM)
    if draft.freight and not cfg.freight_condition_type:
        raise MappingMissing(f"order {number} has freight but settings.freight_condition_type is not set")
    if any(ln.discount for ln in draft.lines) and not cfg.discount_condition_type:
        raise MappingMissing(f"order {number} has discounts but settings.discount_condition_type is not set")
    items = []
    for n, ln in enumerate(draft.lines):
        conditions = [_condition(cfg.price_condition_type, ln.unit_price, draft.currency)]
        if ln.discount and cfg.discount_condition_type:
            conditions.append(_condition(cfg.discount_condition_type, -cents(ln.discount), draft.currency))
        if n == 0 and draft.freight and cfg.freight_condition_type:
            conditions.append(_condition(cfg.freight_condition_type, cents(draft.freight), draft.currency))
        item: dict[str, Any] = {
            "SalesOrderItem": item_number(n),
            "Material": ln.sku,
            "RequestedQuantity": format_decimal(ln.qty),
            "RequestedQuantityUnit": cfg.quantity_unit,
            "to_PricingElement": {"results": conditions},
        }
        if len(ln.line_id) <= PO_MAX:
            item["PurchaseOrderByCustomer"] = ln.line_id
        if ln.description:
            item["SalesOrderItemText"] = ln.description[:ITEM_TEXT_MAX]
        items.append(item)
    day = (draft.date or datetime.now(UTC)).astimezone(UTC).date()
    body: dict[str, Any] = {
        "SalesOrderType": cfg.sales_order_type,
        "SalesOrganization": cfg.sales_organization,
        "DistributionChannel": cfg.distribution_channel,
        "OrganizationDivision": cfg.organization_division,
        "SoldToParty": sold_to(draft, cfg),
        "PurchaseOrderByCustomer": number,
        "CustomerPurchaseOrderDate": odata_v2.format_datetime(day),
        "TransactionCurrency": draft.currency,
        "to_Item": {"results": items},
    }
    if cfg.generic_ship_to and cfg.sold_to == "generic":
        body["to_Partner"] = {
            "results": [{"PartnerFunction": cfg.ship_to_partner_function, "Customer": cfg.generic_ship_to}]
        }
    return body


def order_ref(entity: dict[str, Any], draft: SalesOrderDraft | None = None) -> ErpOrderRef:
    """Where an order landed: its ``SalesOrder`` (no order type: S/4 numbers are unique), each
    item (without leading zeros) -> the store line named in its ``PurchaseOrderByCustomer``;
    items without one are matched to the draft's lines by position when the draft is known. Items
    SAP made under another item are left out (``_sub_item``)."""
    items = [i for i in odata_v2.expanded(entity, "to_Item") or [] if not _sub_item(i)]
    by_line = {ln.line_id for ln in draft.lines} if draft is not None else None
    line_map: dict[str, str] = {}
    for n, item in enumerate(items):
        nbr = normalise_number(item.get("SalesOrderItem"))
        marker = str(item.get("PurchaseOrderByCustomer") or "")
        if marker and (by_line is None or marker in by_line) and marker != entity.get("PurchaseOrderByCustomer"):
            line_map[nbr] = marker
        elif draft is not None and n < len(draft.lines):
            line_map[nbr] = draft.lines[n].line_id
    number = normalise_number(entity["SalesOrder"])
    return ErpOrderRef(
        id=number,
        number=number,
        order_type="",
        status=str(entity.get("OverallSDProcessStatus") or ""),
        line_map=line_map,
    )


def _sub_item(item: dict[str, Any]) -> bool:
    """An item SAP made under another (``HigherLevelItem``: a free good, a bill-of-materials part):
    no store line of its own, so it is left out of ``line_map`` (a document line naming it then
    fails as unmapped instead of counting against its parent's store line)."""
    return normalise_number(item.get("HigherLevelItem")) not in ("", "0")


def net_difference(entity: dict[str, Any], draft: SalesOrderDraft) -> Decimal:
    """SAP's ``TotalNetAmount`` less the store's net (its total less its tax), to the cent."""
    return cents(dec(entity.get("TotalNetAmount"))) - cents(draft.total - draft.tax_total)


def live(entity: dict[str, Any]) -> bool:
    """Whether an order still counts: not rejected as a whole."""
    return entity.get("OverallSDDocumentRejectionSts") != REJECTED


# -- deliveries -----------------------------------------------------------------------------------


def delivery_version(entity: dict[str, Any]) -> str:
    """What a poll compares: ``DeliveryVersion`` (bumped by each change) and the goods movement status."""
    return f"{entity.get('DeliveryVersion') or ''}:{entity.get('OverallGoodsMovementStatus') or ''}"


def tracks_of(header: dict[str, Any], source: str) -> list[Track]:
    """The delivery's tracking numbers from ``tracking_source``: the header's ``BillOfLading``,
    each handling unit's external id (``to_HandlingUnitHeaderDelivery``), or a header text
    (``text:<TextElement>``, from ``to_DeliveryDocumentText``)."""
    if source == "BillOfLading":
        numbers = [str(header.get("BillOfLading") or "")]
    elif source.startswith("text:"):
        element = source.removeprefix("text:")
        texts = odata_v2.expanded(header, "to_DeliveryDocumentText") or []
        numbers = [str(t.get("TextElementText") or "") for t in texts if t.get("TextElement") == element]
    else:
        units = odata_v2.expanded(header, "to_HandlingUnitHeaderDelivery") or []
        numbers = [str(u.get(source) or "") for u in units]
    seen: list[str] = []
    for number in (n.strip() for n in numbers):
        if number and number not in seen:
            seen.append(number)
    return [Track(number=n) for n in seen]


def reference_line(item: dict[str, Any], order_field: str, item_field: str, qty_field: str) -> DocumentLine | None:
    """A delivery or billing item naming the sales order item it comes from; None for others."""
    order, line = item.get(order_field), item.get(item_field)
    if not order or not line:
        return None
    return DocumentLine(
        order_type="",
        order_number=normalise_number(order),
        line_nbr=normalise_number(line),
        sku=str(item.get("Material") or ""),
        qty=dec(item.get(qty_field)),
    )


def shipment_from_s4(header: dict[str, Any], cfg: S4Settings) -> Shipment:
    """An outbound delivery (with ``to_DeliveryDocumentItem`` expanded) as the canonical shipment."""
    items = odata_v2.expanded(header, "to_DeliveryDocumentItem") or []
    lines = [
        d
        for d in (
            reference_line(i, "ReferenceSDDocument", "ReferenceSDDocumentItem", "ActualDeliveryQuantity") for i in items
        )
        if d is not None
    ]
    status = str(header.get("OverallGoodsMovementStatus") or "")
    shipping_type = str(header.get("ShippingType") or "")
    return Shipment(
        source_id=normalise_number(header["DeliveryDocument"]),
        status=status,
        confirmed=status == SHIPPED,
        ship_date=odata_v2.parse_datetime(header.get("ActualGoodsMovementDate")),
        ship_via=shipping_type or None,
        lines=lines,
        tracks=tracks_of(header, cfg.tracking_source),
        updated_at=odata_v2.parse_datetime(header.get("LastChangeDate")),
    )


# -- billing documents ---------------------------------------------------------------------------


RETURN_CATEGORY = "H"
"""The SD document category of a customer return (a billing item's ``SalesSDDocumentCategory``)."""
CREDIT_MEMO_CATEGORY = "O"
"""The SD document category of a credit memo billing document (``G2``)."""
INVOICE_CATEGORIES = frozenset({"M"})
"""SD document categories of billing documents that are invoices (``M``; ``N`` cancels one, ``O`` is
a credit memo, ``P`` a debit memo, ``U`` a pro forma: SAP's ``VBTYPN`` values)."""


def invoice_from_s4(header: dict[str, Any], cfg: S4Settings) -> Invoice:
    """A billing document (with ``to_Item`` expanded) as the canonical invoice."""
    items = odata_v2.expanded(header, "to_Item") or []
    lines = [
        d
        for d in (reference_line(i, "SalesDocument", "SalesDocumentItem", "BillingQuantity") for i in items)
        if d is not None
    ]
    cancelled = bool(header.get("BillingDocumentIsCancelled"))
    posting = str(header.get("AccountingPostingStatus") or "")
    category = str(header.get("SDDocumentCategory") or "M")
    if category not in INVOICE_CATEGORIES:  # a cancellation (N), a credit memo (O) ...: no store invoice
        status = f"not an invoice (SD document category {category}, {header.get('BillingDocumentType') or '?'})"
    else:
        status = "cancelled" if cancelled else posting
    return Invoice(
        source_id=normalise_number(header["BillingDocument"]),
        status=status,
        released=category in INVOICE_CATEGORIES and not cancelled and posting in cfg.released_posting_statuses,
        date=odata_v2.parse_datetime(header.get("BillingDocumentDate")),
        amount=cents(dec(header.get("TotalGrossAmount"))),
        currency=str(header.get("TransactionCurrency") or ""),
        lines=lines,
        updated_at=odata_v2.parse_datetime(header.get("LastChangeDateTime")),
    )


def sold_to(draft: SalesOrderDraft, cfg: S4Settings) -> str:
    """The ``SoldToParty`` of an order: the generic one, or the customer's own partner."""
    if cfg.sold_to == "generic":
        assert cfg.generic_sold_to is not None  # the settings require it then
        return cfg.generic_sold_to
    if not draft.customer_id or len(draft.customer_id) > 10:
        raise ValidationFailed(
            f"order {draft.number}: {draft.customer_id!r} is not an S/4HANA customer number (sold_to is customer)",
            system=SYSTEM,
        )
    return draft.customer_id


PARTNER_TEXT = {"FirstName": 40, "LastName": 40, "OrganizationBPName1": 40}
ADDRESS_TEXT = {"StreetName": 60, "CityName": 40, "PostalCode": 10, "Region": 3, "Country": 3}


def _cut(value: str, most: int) -> str:
    return value.strip()[:most]


def partner_names(customer: Customer, category: str = "") -> dict[str, str]:
    """The partner's own name fields for its ``category`` (a partner keeps the one it was made
    with; new ones are organisations when the store names only a company): a person's first and
    last name (the e-mail's local part when the store has no last name: SAP requires one), or an
    organisation's name."""
    organisation = category == "2" or (
        not category and bool(customer.company) and not (customer.first_name or customer.last_name)
    )
    if organisation:
        return {"OrganizationBPName1": _cut(customer.company or customer.name, 40)}
    last = customer.last_name or customer.email.partition("@")[0]
    return {"FirstName": _cut(customer.first_name, 40), "LastName": _cut(last, 40)}


def partner_address(address: Address | None) -> dict[str, str]:
    """An address's fields (the street lines joined: SAP's ``StreetName`` is one line of 60)."""
    if address is None:
        return {}
    fields = {
        "StreetName": ", ".join(s for s in address.street if s),
        "CityName": address.city,
        "PostalCode": address.postcode,
        "Region": address.region_code,
        "Country": address.country,
    }
    return {k: _cut(v, ADDRESS_TEXT[k]) for k, v in fields.items() if v}


def partner_body(customer: Customer, cfg: S4Settings, currency: str | None) -> dict[str, Any]:
    """``POST A_BusinessPartner``: the partner with its address, e-mail and phone, its customer
    roles and its customer in the orders' sales area."""
    names = partner_names(customer)
    address: dict[str, Any] = {
        **partner_address(customer.address),
        "to_EmailAddress": {"results": [{"EmailAddress": customer.email, "IsDefaultEmailAddress": True}]},
    }
    address.setdefault("Country", (customer.address.country if customer.address else "") or "US")
    phone = customer.phone or (customer.address.phone if customer.address else "")
    if phone:
        address["to_PhoneNumber"] = {"results": [{"PhoneNumber": _cut(phone, 30), "IsDefaultPhoneNumber": True}]}
    area: dict[str, Any] = {
        "SalesOrganization": cfg.sales_organization,
        "DistributionChannel": cfg.distribution_channel,
        "Division": cfg.organization_division,
    }
    if cfg.customer_currency or currency:
        area["Currency"] = cfg.customer_currency or currency
    if cfg.customer_payment_terms:
        area["CustomerPaymentTerms"] = cfg.customer_payment_terms
    body: dict[str, Any] = {
        "BusinessPartnerCategory": "2" if "OrganizationBPName1" in names else "1",
        **names,
        "to_BusinessPartnerAddress": {"results": [address]},
        "to_BusinessPartnerRole": {"results": [{"BusinessPartnerRole": r} for r in cfg.customer_roles]},
        "to_Customer": {"to_CustomerSalesArea": {"results": [area]}},
    }
    if cfg.partner_grouping:
        body["BusinessPartnerGrouping"] = cfg.partner_grouping
    return body


def partner_email(partner: dict[str, Any]) -> str:
    """The partner's default e-mail address (the first when none is marked), lower case."""
    mails = [
        m
        for a in odata_v2.expanded(partner, "to_BusinessPartnerAddress") or []
        for m in odata_v2.expanded(a, "to_EmailAddress") or []
    ]
    chosen = next((m for m in mails if m.get("IsDefaultEmailAddress")), mails[0] if mails else {})
    return str(chosen.get("EmailAddress") or "").strip().lower()


def customer_from_partner(partner: dict[str, Any], zone: tzinfo = UTC) -> Customer:
    """A business partner (read with its addresses and their e-mail and phone) as the canonical
    customer; its id is the partner's ``Customer``."""
    number = str(partner.get("Customer") or "")
    email = partner_email(partner)
    if not email:
        raise ValidationFailed(
            f"{SYSTEM} business partner {partner.get('BusinessPartner')}: no e-mail address", system=SYSTEM
        )
    addresses = odata_v2.expanded(partner, "to_BusinessPartnerAddress") or []
    first = addresses[0] if addresses else {}
    phones = odata_v2.expanded(first, "to_PhoneNumber") or []
    address = None
    if first.get("StreetName") or first.get("CityName") or first.get("PostalCode"):
        address = Address(
            street=[str(first.get("StreetName") or "")] if first.get("StreetName") else [],
            city=str(first.get("CityName") or ""),
            postcode=str(first.get("PostalCode") or ""),
            region_code=str(first.get("Region") or ""),
            country=str(first.get("Country") or ""),
        )
    return Customer(
        email=email,
        first_name=str(partner.get("FirstName") or ""),
        last_name=str(partner.get("LastName") or ""),
        company=str(partner.get("OrganizationBPName1") or ""),
        phone=str(phones[0].get("PhoneNumber") or "") if phones else "",
        address=address,
        source_id=number,
        version=partner_version(partner, zone),
    )


def partner_version(partner: dict[str, Any], zone: tzinfo = UTC) -> str:
    """A business partner's version: its last change, or its creation when it was never changed, as
    a UTC time of whole seconds (``2026-11-29T12:10:19+00:00``; the stamps are in the system's
    ``zone``). Being whole seconds, a version counts as finished only when read two seconds after
    its second (``state.bindings.settled``): a second change in the same second is not left out."""
    day_field, time_field = ("LastChangeDate", "LastChangeTime") if partner.get("LastChangeDate") else STAMP_CREATED
    day, clock = odata_v2.parse_datetime(partner.get(day_field)), odata_v2.parse_time(partner.get(time_field))
    if day is None:
        return ""
    local = datetime.combine(day.astimezone(UTC).date(), clock or time(), tzinfo=zone)
    return local.astimezone(UTC).isoformat()


STAMP_CREATED = ("CreationDate", "CreationTime")


# -- credit memo requests ---------------------------------------------------------------------------


def referencing(
    lines: list[DraftLine], order: dict[str, Any], cfg: S4Settings, connection: str, what: str
) -> tuple[str, list[dict[str, Any]]]:
    """``(the order's number, an item row per line)`` of a document made with reference to
    ``order`` (read with ``to_Item``): each line on the order item carrying its store line (else the
    first of its material), the store line id in the row's ``PurchaseOrderByCustomer``; ``what`` the
    document's verb in the error naming a line the order lacks."""
    number = normalise_number(order["SalesOrder"])
    items = [i for i in odata_v2.expanded(order, "to_Item") or [] if not _sub_item(i)]
    rows = []
    for ln in lines:
        item = next((i for i in items if str(i.get("PurchaseOrderByCustomer") or "") == ln.line_id), None)
        item = item or next((i for i in items if str(i.get("Material") or "").upper() == ln.sku.upper()), None)
        if item is None:
            raise ValidationFailed(
                f"{connection}: sales order {number} has no item of {ln.sku} (store line {ln.line_id}) to {what}",
                system=connection,
            )
        rows.append(
            {
                "Material": str(item["Material"]),
                "RequestedQuantity": format_decimal(ln.qty),
                "RequestedQuantityUnit": str(item.get("RequestedQuantityUnit") or cfg.quantity_unit),
                "ReferenceSDDocument": number,
                "ReferenceSDDocumentItem": normalise_number(item["SalesOrderItem"]),
                "PurchaseOrderByCustomer": ln.line_id[:PO_MAX],
            }
        )
    return number, rows


def _referencing_header(
    kind: tuple[str, str],
    cfg: S4Settings,
    store_number: str,
    number: str,
    order: dict[str, Any],
    customer: str,
    currency: str,
) -> dict[str, Any]:
    """The header of a credit memo request or customer return (``kind``: its type field and type)
    made for a store document: the sales area, the order's sold-to, the store number in
    ``PurchaseOrderByCustomer`` and ``AssignmentReference`` (erpsync's mark, see ``erpsyncs``), with
    reference to order ``number``."""
    return {
        kind[0]: kind[1],
        "SalesOrganization": cfg.sales_organization,
        "DistributionChannel": cfg.distribution_channel,
        "OrganizationDivision": cfg.organization_division,
        "SoldToParty": str(order.get("SoldToParty") or customer),
        "PurchaseOrderByCustomer": store_number,
        "AssignmentReference": store_number[:18],
        "ReferenceSDDocument": number,
        "TransactionCurrency": currency,
    }


def credit_memo_request_body(
    draft: CreditMemoDraft, order: dict[str, Any], cfg: S4Settings, connection: str = SYSTEM
) -> dict[str, Any]:
    """The deep insert of a store refund's credit memo request, with reference to ``order``'s items
    (``referencing``): SAP prices them as ordered and credits no more than an item holds."""
    check_number(draft.store_number, connection)
    number, rows = referencing(draft.lines, order, cfg, connection, "credit")
    kind = ("CreditMemoRequestType", cfg.credit_memo_request_type)
    body = _referencing_header(kind, cfg, draft.store_number, number, order, draft.customer_id, draft.currency)
    if cfg.credit_memo_reason:
        body["SDDocumentReason"] = cfg.credit_memo_reason
    return {**body, "to_Item": {"results": rows}}


def credit_memo_from_s4(entity: dict[str, Any]) -> ErpCreditMemo:
    """A credit memo request as the flows see it: its net (SAP's tax is not in it), ``On Hold``
    while billing is blocked, ``Rejected`` once rejected as a whole, else ``Open``."""
    if not live(entity):
        status = "Rejected"
    elif entity.get("HeaderBillingBlockReason"):
        status = "On Hold"
    else:
        status = "Open"
    return ErpCreditMemo(
        doc_type="Credit Memo Request",
        number=normalise_number(entity["CreditMemoRequest"]),
        amount=cents(dec(entity.get("TotalNetAmount"))),
        status=status,
    )


def credit_note_from_s4(
    memo: dict[str, Any], requests: dict[str, dict[str, Any]], orders: dict[str, str], cfg: S4Settings
) -> CreditNote:
    """A credit memo billing document (with ``to_Item``) as the canonical credit note: each item
    credits the sales order item its request item references (``requests`` by number, with their
    items), or the customer return item it bills (``CustomerReturn/<n>``: the returns flow bound
    it to its store order); ``orders`` maps a sales order to its store number. Released once posted to accounting
    (``released_posting_statuses``) and not cancelled."""
    lines = []
    made_by_erpsync = ""
    for item in odata_v2.expanded(memo, "to_Item") or []:
        if item.get("SalesSDDocumentCategory") == RETURN_CATEGORY:  # a return's credit: its lines, as bound
            lines.append(
                CreditLine(
                    order_type=RETURN_TYPE,
                    order_number=normalise_number(item.get("SalesDocument")),
                    line_nbr=normalise_number(item.get("SalesDocumentItem")),
                    sku=str(item.get("Material") or ""),
                    qty=dec(item.get("BillingQuantity")),
                    amount=cents(dec(item.get("NetAmount"))),
                )
            )
            continue
        request = requests.get(normalise_number(item.get("SalesDocument")))
        if request is None:
            continue
        made_by_erpsync = made_by_erpsync or erpsyncs(request)
        source = next(
            (
                r
                for r in odata_v2.expanded(request, "to_Item") or []
                if normalise_number(r.get("CreditMemoRequestItem")) == normalise_number(item.get("SalesDocumentItem"))
            ),
            None,
        )
        if source is None or not source.get("ReferenceSDDocument") or not source.get("ReferenceSDDocumentItem"):
            continue  # a request item of its own (no order item): money in the total only
        lines.append(
            CreditLine(
                order_number=normalise_number(source["ReferenceSDDocument"]),
                line_nbr=normalise_number(source["ReferenceSDDocumentItem"]),
                sku=str(item.get("Material") or ""),
                qty=dec(item.get("BillingQuantity")),
                amount=cents(dec(item.get("NetAmount"))),
            )
        )
    cancelled = bool(memo.get("BillingDocumentIsCancelled"))
    posting = str(memo.get("AccountingPostingStatus") or "")
    order_numbers = {ln.order_number for ln in lines}
    customer_order = orders.get(next(iter(order_numbers)), "") if len(order_numbers) == 1 else ""
    return CreditNote(
        source_id=normalise_number(memo["BillingDocument"]),
        status="cancelled" if cancelled else posting,
        released=not cancelled and posting in cfg.released_posting_statuses,
        date=odata_v2.parse_datetime(memo.get("BillingDocumentDate")),
        currency=str(memo.get("TransactionCurrency") or ""),
        external_ref=made_by_erpsync,
        customer_order=customer_order,
        lines=lines,
        tax_total=cents(dec(memo.get("TaxAmount"))),
        total=cents(dec(memo.get("TotalGrossAmount"))),
        updated_at=odata_v2.parse_datetime(memo.get("LastChangeDateTime")),
    )


# -- customer returns -------------------------------------------------------------------------------

RETURN_TYPE = "CustomerReturn"
"""The ``order_type`` part of a customer return's key (``CustomerReturn/<number>``), as the flows name it."""


def customer_return_body(
    draft: ReturnDraft, order: dict[str, Any], cfg: S4Settings, connection: str = SYSTEM
) -> dict[str, Any]:
    """The deep insert of a store return's customer return, with reference to ``order``'s items
    (``referencing``), ``return_reason`` and ``return_follow_up`` on each item when set."""
    check_number(draft.store_number, connection)
    number, rows = referencing(draft.lines, order, cfg, connection, "take back")
    for row in rows:
        if cfg.return_reason:
            row["ReturnReason"] = cfg.return_reason
        if cfg.return_follow_up:
            row["CustRetItmFollowUpActivity"] = cfg.return_follow_up
    kind = ("CustomerReturnType", cfg.customer_return_type)
    body = _referencing_header(kind, cfg, draft.store_number, number, order, draft.customer_id, draft.currency)
    return {**body, "to_Item": {"results": rows}}


def erpsyncs(entity: dict[str, Any]) -> str:
    """The store number of a document erpsync made (its ``AssignmentReference`` the start of the
    store number in its ``PurchaseOrderByCustomer``); "" for one made in S/4."""
    reference, marker = str(entity.get("PurchaseOrderByCustomer") or ""), str(entity.get("AssignmentReference") or "")
    return reference if marker and marker == reference[:18] else ""


def return_ref(entity: dict[str, Any]) -> ErpReturnRef:
    """A customer return as the returns flow names it (``CustomerReturn/<number>``), each item ->
    the store order line in its ``PurchaseOrderByCustomer``."""
    items = odata_v2.expanded(entity, "to_Item") or []
    return ErpReturnRef(
        order_type=RETURN_TYPE,
        number=normalise_number(entity["CustomerReturn"]),
        line_map={
            normalise_number(i["CustomerReturnItem"]): str(i["PurchaseOrderByCustomer"])
            for i in items
            if i.get("PurchaseOrderByCustomer")
        },
    )


def return_receipt(entity: dict[str, Any]) -> ReturnReceipt:
    """What a customer return took in: per item, its schedule lines' ``DeliveredQtyInOrderQtyUnit``
    (the returns delivery's goods receipt)."""
    received: dict[str, Decimal] = {}
    for item in odata_v2.expanded(entity, "to_Item") or []:
        qty = sum(
            (dec(s.get("DeliveredQtyInOrderQtyUnit")) for s in odata_v2.expanded(item, "to_ScheduleLine") or []),
            Decimal(0),
        )
        if qty > 0:
            received[normalise_number(item["CustomerReturnItem"])] = qty
    rejected = entity.get("OverallSDDocumentRejectionSts") == REJECTED
    return ReturnReceipt(
        source_id=f"{RETURN_TYPE}/{normalise_number(entity['CustomerReturn'])}",
        status=CANCELLED if rejected else str(entity.get("OverallSDProcessStatus") or ""),
        store_number=erpsyncs(entity),
        received=received,
        updated_at=odata_v2.parse_datetime(entity.get("LastChangeDateTime")),
    )
