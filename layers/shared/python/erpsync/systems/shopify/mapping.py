"""Shopify's Admin GraphQL objects <-> erpsync's canonical model, and the queries that read them.

Ids: a notice and a binding hold a record's numeric id (``legacyResourceId``, a string: Shopify's
ids go beyond 2**53 and never pass through a float); queries take the GID built from it.
Money: every amount is a ``MoneyBag``; ``amounts`` ("shop" or "presentment") picks which side.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from erpsync.errors import NotFoundError, RetryableError, ValidationFailed
from erpsync.model import Address, CreditMemo, Customer, Order, OrderComment, OrderLine, RefundLine, cents
from erpsync.model.base import ValidationError

SYSTEM = "shopify"

BAG = "fragment Bag on MoneyBag { shopMoney { amount currencyCode } presentmentMoney { amount currencyCode } }"
ADDRESS = (
    "fragment Address on MailingAddress { firstName lastName company address1 address2 city province "
    "provinceCode zip countryCodeV2 phone }"
)
LINES_PAGE = 50
LINE_FIELDS = (
    "id sku name title quantity requiresShipping originalUnitPriceSet { ...Bag } "
    "discountAllocations { allocatedAmountSet { ...Bag } } taxLines { priceSet { ...Bag } }"
)
ORDER_FIELDS = (
    "id legacyResourceId name email phone note createdAt updatedAt processedAt cancelledAt closed test "
    "currencyCode presentmentCurrencyCode taxesIncluded displayFinancialStatus displayFulfillmentStatus "
    "paymentGatewayNames tags sourceName "
    "customer { id legacyResourceId email firstName lastName phone } "
    "billingAddress { ...Address } shippingAddress { ...Address } "
    "subtotalPriceSet { ...Bag } totalDiscountsSet { ...Bag } totalTaxSet { ...Bag } totalPriceSet { ...Bag } "
    "totalReceivedSet { ...Bag } totalRefundedSet { ...Bag } "
    "transactions(first: 25) { id kind status gateway amountSet { ...Bag } processedAt }"
)
"""An order's own fields (its lines and shipping lines are connections, read beside them)."""
SHIPPING_FIELDS = "title code discountedPriceSet { ...Bag } discountAllocations { allocatedAmountSet { ...Bag } }"
ORDER_QUERY = f"""
query Order($id: ID!) {{
  order(id: $id) {{
    {ORDER_FIELDS}
    shippingLines(first: 5) {{ nodes {{ {SHIPPING_FIELDS} }} }}
    lineItems(first: {LINES_PAGE}) {{ pageInfo {{ hasNextPage endCursor }} nodes {{ {LINE_FIELDS} }} }}
  }}
}}
{BAG}
{ADDRESS}
"""
_BAG_FIELDS = BAG.split("{", 1)[1].rsplit("}", 1)[0].strip()
_ADDRESS_FIELDS = ADDRESS.split("{", 1)[1].rsplit("}", 1)[0].strip()
ORDER_CHILDREN = {"LineItem": "lineItems", "ShippingLine": "shippingLines"}
"""A bulk result's child rows of an order, by the type of their id: the connection they belong to."""


def bulk_orders_query(search: str) -> str:
    """The bulk query (``bulkOperationRunQuery``) of every order ``search`` matches, each with what
    ``ORDER_QUERY`` reads of it: its own fields and its lines and shipping lines whole (Shopify
    writes those as rows of their own, with ``__parentId``; their ``id`` tells which is which).
    Fragments are written out (the bulk guide's queries use none)."""
    text = (
        f"{{ orders(query: {json.dumps(search)}, sortKey: UPDATED_AT) {{ edges {{ node {{ {ORDER_FIELDS} "
        f"shippingLines {{ edges {{ node {{ id {SHIPPING_FIELDS} }} }} }} "
        f"lineItems {{ edges {{ node {{ {LINE_FIELDS} }} }} }} }} }} }} }}"
    )
    return text.replace("...Bag", _BAG_FIELDS).replace("...Address", _ADDRESS_FIELDS)


MORE_LINES_QUERY = f"""
query OrderLines($id: ID!, $after: String) {{
  order(id: $id) {{
    lineItems(first: {LINES_PAGE}, after: $after) {{ pageInfo {{ hasNextPage endCursor }} nodes {{ {LINE_FIELDS} }} }}
  }}
}}
{BAG}
"""
ORDER_COST = 60
"""About what ``ORDER_QUERY`` costs (the client waits for the bucket to hold it)."""


def _fail(order: Any, field: str, problem: str) -> ValidationFailed:
    return ValidationFailed(f"shopify order {order}: {field} {problem}", system=SYSTEM)


def gid(kind: str, id: str) -> str:
    """The GID of record ``id`` of ``kind`` (an id that already is a GID is kept)."""
    text = str(id).strip()
    if text.startswith("gid://"):
        return text
    if not text.isdigit():
        raise NotFoundError(f"shopify {kind} id {id!r} is not numeric", system=SYSTEM)
    return f"gid://shopify/{kind}/{text}"


def legacy_id(value: Any) -> str:
    """The numeric id of a GID (``gid://shopify/Order/123`` -> ``"123"``), as a string."""
    text = str(value or "")
    m = re.search(r"/(\d+)(?:\?.*)?$", text)
    return m.group(1) if m else text


def parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def amount(bag: Any, side: str, where: str, order: Any) -> Decimal:
    """The ``shop`` or ``presentment`` amount of a MoneyBag (0 when the bag is absent)."""
    if bag is None:
        return Decimal("0")
    money = bag.get(f"{side}Money") if isinstance(bag, Mapping) else None
    if not isinstance(money, Mapping):
        raise _fail(order, where, f"has no {side}Money")
    try:
        return Decimal(str(money.get("amount")))
    except (InvalidOperation, ValueError) as exc:
        raise _fail(order, where, f"is not an amount: {money.get('amount')!r}") from exc


def address_from_shopify(data: Any, email: str = "") -> Address | None:
    if not isinstance(data, Mapping):
        return None
    return Address(
        first_name=str(data.get("firstName") or ""),
        last_name=str(data.get("lastName") or ""),
        company=str(data.get("company") or ""),
        street=[str(s) for s in (data.get("address1"), data.get("address2")) if s],
        city=str(data.get("city") or ""),
        region=str(data.get("province") or ""),
        region_code=str(data.get("provinceCode") or ""),
        postcode=str(data.get("zip") or ""),
        country=str(data.get("countryCodeV2") or data.get("countryCode") or ""),
        phone=str(data.get("phone") or ""),
        email=email,
    )


def address_to_shopify(addr: Address) -> dict[str, Any]:
    """A ``MailingAddressInput``."""
    street = [*addr.street, "", ""]
    out = {
        "firstName": addr.first_name or None,
        "lastName": addr.last_name or None,
        "company": addr.company or None,
        "address1": street[0] or None,
        "address2": " ".join(s for s in street[1:] if s) or None,
        "city": addr.city or None,
        "provinceCode": addr.region_code or None,
        "zip": addr.postcode or None,
        "countryCode": addr.country or None,
        "phone": addr.phone or None,
    }
    return {k: v for k, v in out.items() if v is not None}


def _sum(rows: Any, key: str, side: str, where: str, order: Any) -> Decimal:
    total = Decimal("0")
    for row in rows or []:
        if isinstance(row, Mapping):
            total += amount(row.get(key), side, where, order)
    return total


def order_status(node: Mapping[str, Any]) -> tuple[str, str]:
    """``(status, state)`` in the store vocabulary the order sync preferences use (Magento's):
    ``pending``/``new`` (unpaid, nothing shipped), ``processing`` (paid or partly shipped),
    ``complete`` (paid and shipped), ``canceled``, ``closed`` (refunded)."""
    if node.get("cancelledAt"):
        return "canceled", "canceled"
    financial = str(node.get("displayFinancialStatus") or "")
    fulfilled = str(node.get("displayFulfillmentStatus") or "")
    if financial == "REFUNDED":
        return "closed", "closed"
    if fulfilled == "FULFILLED" and financial in ("PAID", "PARTIALLY_REFUNDED"):
        return "complete", "complete"
    if financial in ("PAID", "PARTIALLY_PAID", "PARTIALLY_REFUNDED") or fulfilled in (
        "FULFILLED",
        "PARTIALLY_FULFILLED",
    ):
        return "processing", "processing"
    return "pending", "new"


def order_from_shopify(node: Any, amounts: str = "shop") -> Order:
    """A Shopify ``Order`` (as ``ORDER_QUERY`` reads it, every line page joined) as the canonical Order."""
    if not isinstance(node, Mapping):
        raise NotFoundError("shopify order: not found", system=SYSTEM)
    name = node.get("name") or legacy_id(node.get("id"))
    side = "presentment" if amounts == "presentment" else "shop"
    if node.get("taxesIncluded"):
        raise _fail(
            name,
            "taxesIncluded",
            "is true: its prices include tax, and erpsync sends ERP lines at prices before tax "
            "(not supported yet; the order waits in the failed queue)",
        )
    customer_node = node.get("customer") if isinstance(node.get("customer"), Mapping) else None
    email = str(node.get("email") or (customer_node or {}).get("email") or "").strip()
    if not email:
        raise _fail(name, "email", "is missing: the ERP customer is found by email (a POS order without one?)")
    bill_to = address_from_shopify(node.get("billingAddress"), email) or address_from_shopify(
        node.get("shippingAddress"), email
    )
    if bill_to is None:
        first = str((customer_node or {}).get("firstName") or "")
        last = str((customer_node or {}).get("lastName") or "")
        bill_to = Address(first_name=first, last_name=last or email, email=email)
    lines: list[OrderLine] = []
    line_nodes = ((node.get("lineItems") or {}).get("nodes")) or []
    if not line_nodes:
        raise _fail(name, "lineItems", "is empty")
    for i, ln in enumerate(line_nodes):
        where = f"lineItems[{i}]"
        sku = str(ln.get("sku") or "").strip()
        if not sku:
            raise _fail(
                name, f"{where}.sku", f"is missing (line {ln.get('name')!r}): the ERP needs an item for every line"
            )
        try:
            qty = Decimal(int(ln["quantity"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise _fail(name, f"{where}.quantity", "is missing") from exc
        line_id = legacy_id(ln.get("id"))
        lines.append(
            OrderLine(
                line_id=line_id,
                sku=sku,
                name=str(ln.get("name") or ln.get("title") or ""),
                qty=qty,
                unit_price=amount(ln.get("originalUnitPriceSet"), side, f"{where}.originalUnitPriceSet", name),
                discount=_sum(
                    ln.get("discountAllocations"), "allocatedAmountSet", side, f"{where}.discountAllocations", name
                ),
                tax=_sum(ln.get("taxLines"), "priceSet", side, f"{where}.taxLines", name),
                store_line_ids=[line_id],
            )
        )
    shipping = ((node.get("shippingLines") or {}).get("nodes")) or []
    freight = _sum(shipping, "discountedPriceSet", side, "shippingLines", name)
    shipping_discount = sum(
        (
            _sum(s.get("discountAllocations"), "allocatedAmountSet", side, "shippingLines.discountAllocations", name)
            for s in shipping
        ),
        Decimal("0"),
    )
    line_discounts = sum((ln.discount for ln in lines), Decimal("0"))
    total_discounts = amount(node.get("totalDiscountsSet"), side, "totalDiscountsSet", name)
    total = amount(node.get("totalPriceSet"), side, "totalPriceSet", name)
    currency_key = "presentmentCurrencyCode" if side == "presentment" else "currencyCode"
    currency = str(node.get(currency_key) or "")
    if not currency:
        raise _fail(name, currency_key, "is missing")
    rate = None
    if side == "presentment" and node.get("presentmentCurrencyCode") != node.get("currencyCode"):
        shop_total = amount(node.get("totalPriceSet"), "shop", "totalPriceSet", name)
        rate = (total / shop_total).quantize(Decimal("0.00000001")) if shop_total else None
    paid_rows = [
        t
        for t in node.get("transactions") or []
        if isinstance(t, Mapping) and t.get("kind") in ("SALE", "CAPTURE") and t.get("status") == "SUCCESS"
    ]
    status, state = order_status(node)
    gateways = [str(g) for g in node.get("paymentGatewayNames") or [] if g]
    note = str(node.get("note") or "").strip()
    try:
        customer = Customer(
            email=email,
            first_name=str((customer_node or {}).get("firstName") or bill_to.first_name),
            last_name=str((customer_node or {}).get("lastName") or bill_to.last_name),
            company=bill_to.company,
            phone=str((customer_node or {}).get("phone") or bill_to.phone or ""),
            is_guest=customer_node is None,
            address=bill_to,
            source_id=legacy_id(customer_node.get("id")) if customer_node else None,
        )
        return Order(
            source_id=legacy_id(node.get("id")),
            number=str(name),
            status=status,
            state=state,
            created_at=parse_time(node.get("processedAt") or node.get("createdAt")),
            updated_at=parse_time(node.get("updatedAt")),
            currency=currency,
            exchange_rate=rate,
            customer=customer,
            bill_to=bill_to,
            ship_to=address_from_shopify(node.get("shippingAddress"), email),
            shipping_method=str(shipping[0].get("code") or shipping[0].get("title") or "") or None
            if shipping
            else None,
            shipping_description=str(shipping[0].get("title") or "") if shipping else "",
            payment_method=gateways[0] if gateways else None,
            lines=lines,
            subtotal=sum((ln.qty * ln.unit_price for ln in lines), Decimal("0")),
            order_discount=max(Decimal("0"), total_discounts - line_discounts - shipping_discount),
            freight=freight,
            tax_total=amount(node.get("totalTaxSet"), side, "totalTaxSet", name),
            grand_total=total,
            paid=amount(node.get("totalReceivedSet"), side, "totalReceivedSet", name),
            transaction_id=legacy_id(paid_rows[-1].get("id")) if paid_rows else "",
            comments=[OrderComment(text=note, visible=True)] if note else [],
            channel=str(node.get("sourceName") or ""),
            tags=[str(t) for t in node.get("tags") or []],
        )
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"])
        raise _fail(name, where, f"is invalid: {problem['msg']}") from exc


# ------------------------------------------------------------------------------- customers

CUSTOMER_FIELDS = (
    "id legacyResourceId email firstName lastName phone note updatedAt tags "
    "defaultAddress { ...Address } addresses(first: 5) { ...Address }"
)


def customer_from_shopify(node: Any) -> Customer:
    if not isinstance(node, Mapping):
        raise NotFoundError("shopify customer: not found", system=SYSTEM)
    email = str(node.get("email") or "").strip()
    cid = legacy_id(node.get("id"))
    if not email:
        raise ValidationFailed(
            f"shopify customer {cid} has no email: erpsync identifies customers by email", system=SYSTEM
        )
    address = address_from_shopify(node.get("defaultAddress"), email)
    try:
        return Customer(
            email=email,
            first_name=str(node.get("firstName") or ""),
            last_name=str(node.get("lastName") or ""),
            company=address.company if address else "",
            phone=str(node.get("phone") or (address.phone if address else "") or ""),
            address=address,
            source_id=cid,
            version=str(node.get("updatedAt") or "") or None,
        )
    except ValidationError as exc:
        raise ValidationFailed(f"shopify customer {cid}: {exc.errors()[0]['msg']}", system=SYSTEM) from exc


def customer_input(customer: Customer, current: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A ``CustomerInput`` with the fields erpsync syncs. Shopify replaces a customer's address list
    with the one sent: on an update, the addresses it holds besides the default are sent back as read."""
    out: dict[str, Any] = {
        "email": customer.email,
        "firstName": customer.first_name or None,
        "lastName": customer.last_name or None,
    }
    if customer.phone and re.fullmatch(r"\+\d{7,15}", customer.phone.replace(" ", "")):
        out["phone"] = customer.phone.replace(" ", "")  # Shopify takes E.164 only; others stay as they are
    if customer.address is not None:
        addresses = [address_to_shopify(customer.address)]
        if current is not None:
            default = current.get("defaultAddress") or {}
            for other in current.get("addresses") or []:
                if isinstance(other, Mapping) and other != default:
                    addresses.append(address_to_shopify(address_from_shopify(other) or Address()))
        out["addresses"] = addresses
    return {k: v for k, v in out.items() if v is not None}


# ------------------------------------------------------------------------------- refunds

REFUND_LINES_PAGE = 50
REFUND_LINE_FIELDS = (
    "quantity restockType priceSet { ...Bag } subtotalSet { ...Bag } totalTaxSet { ...Bag } lineItem { id sku name }"
)
REFUND_QUERY = f"""
query Refund($id: ID!) {{
  refund(id: $id) {{
    id legacyResourceId createdAt updatedAt note
    order {{ id legacyResourceId name email currencyCode presentmentCurrencyCode customer {{ email }} }}
    refundLineItems(first: {REFUND_LINES_PAGE}) {{
      pageInfo {{ hasNextPage endCursor }} nodes {{ {REFUND_LINE_FIELDS} }}
    }}
    refundShippingLines(first: 5) {{ nodes {{ subtotalAmountSet {{ ...Bag }} taxAmountSet {{ ...Bag }} }} }}
    transactions(first: 10) {{ nodes {{ id kind status gateway amountSet {{ ...Bag }} }} }}
  }}
}}
{BAG}
"""
MORE_REFUND_LINES_QUERY = f"""
query RefundLines($id: ID!, $after: String) {{
  refund(id: $id) {{
    refundLineItems(first: {REFUND_LINES_PAGE}, after: $after) {{
      pageInfo {{ hasNextPage endCursor }} nodes {{ {REFUND_LINE_FIELDS} }}
    }}
  }}
}}
{BAG}
"""
REFUND_COST = 130


def refund_from_shopify(node: Any, amounts: str = "shop") -> CreditMemo:
    """A Shopify ``Refund`` (as ``REFUND_QUERY`` reads it, every line page joined) as the canonical
    CreditMemo: each refunded line at its unit price, its discount the difference to what Shopify
    gave back for it (``subtotalSet``), its tax; the shipping given back; the money refunded (the
    successful ``REFUND`` transactions) as the total, and what that differs from lines, shipping and
    tax (a refund of less, or more, than the goods) as the adjustment."""
    if not isinstance(node, Mapping):
        raise NotFoundError("shopify refund: not found", system=SYSTEM)
    rid = legacy_id(node.get("id"))
    found = node.get("order")
    order: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    name = str(order.get("name") or legacy_id(order.get("id")))
    where = f"refund {rid} of"
    side = "presentment" if amounts == "presentment" else "shop"
    currency = str(order.get("presentmentCurrencyCode" if side == "presentment" else "currencyCode") or "")
    if not currency:
        raise _fail(name, f"{where} currencyCode", "is missing")
    refunds = [
        t
        for t in ((node.get("transactions") or {}).get("nodes")) or []
        if isinstance(t, Mapping) and t.get("kind") == "REFUND"
    ]
    pending = [t for t in refunds if t.get("status") in ("PENDING", "AWAITING_RESPONSE", "UNKNOWN")]
    if pending:
        raise RetryableError(
            f"shopify order {name}: {where} order has a refund transaction still {pending[0].get('status')}: "
            "it is credited once it settles",
            system=SYSTEM,
        )
    email = str(order.get("email") or (order.get("customer") or {}).get("email") or "").strip()
    lines: list[RefundLine] = []
    for i, row in enumerate(((node.get("refundLineItems") or {}).get("nodes")) or []):
        at = f"{where} refundLineItems[{i}]"
        item = row.get("lineItem") or {}
        sku = str(item.get("sku") or "").strip()
        if not sku:
            raise _fail(name, f"{at}.lineItem.sku", f"is missing (line {item.get('name')!r}): the ERP needs an item")
        qty = Decimal(int(row.get("quantity") or 0))
        if qty <= 0:
            raise _fail(name, f"{at}.quantity", f"is {row.get('quantity')!r}")
        unit = amount(row.get("priceSet"), side, f"{at}.priceSet", name)
        subtotal = amount(row.get("subtotalSet"), side, f"{at}.subtotalSet", name)
        discount = unit * qty - subtotal
        if discount < 0:
            raise _fail(name, f"{at}.subtotalSet", f"{subtotal} is more than {qty} x {unit}")
        lines.append(
            RefundLine(
                line_id=legacy_id(item.get("id")),
                sku=sku,
                description=str(item.get("name") or ""),
                qty=qty,
                unit_price=unit,
                discount=discount,
                tax=amount(row.get("totalTaxSet"), side, f"{at}.totalTaxSet", name),
            )
        )
    shipping_rows = ((node.get("refundShippingLines") or {}).get("nodes")) or []
    shipping = _sum(shipping_rows, "subtotalAmountSet", side, f"{where} refundShippingLines", name)
    shipping_tax = _sum(shipping_rows, "taxAmountSet", side, f"{where} refundShippingLines", name)
    paid_back = [t for t in refunds if t.get("status") == "SUCCESS"]
    money = _sum(paid_back, "amountSet", side, f"{where} transactions", name)
    tax_total = sum((ln.tax for ln in lines), Decimal("0")) + shipping_tax
    goods = sum((ln.amount for ln in lines), Decimal("0")) + cents(shipping) + cents(tax_total)
    gateways = [str(t.get("gateway") or "") for t in paid_back]
    try:
        return CreditMemo(
            source_id=rid,
            number=rid,
            order_id=legacy_id(order.get("id")),
            order_number=name,
            email=email,
            currency=currency,
            created_at=parse_time(node.get("createdAt")),
            updated_at=parse_time(node.get("updatedAt") or node.get("createdAt")),
            lines=lines,
            shipping=cents(shipping),
            adjustment=cents(money) - goods,
            tax_total=cents(tax_total),
            grand_total=cents(money),
            online=any(g and g != "manual" for g in gateways),
            transaction_id=legacy_id(paid_back[-1].get("id")) if paid_back else "",
            payment_method=gateways[-1] if gateways else None,
        )
    except ValidationError as exc:
        problem = exc.errors()[0]
        raise _fail(name, f"{where} {'.'.join(str(p) for p in problem['loc'])}", problem["msg"]) from exc
