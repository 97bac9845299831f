"""Magento 2 records to and from the canonical model (orders in; shipments and invoices out)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from erpsync.errors import MappingMissing, ValidationFailed
from erpsync.model import (
    Address,
    CreditMemo,
    Customer,
    DocumentLine,
    Order,
    OrderComment,
    OrderLine,
    RefundLine,
    ReturnRequest,
    StoreRefundDraft,
    StoreRefundRef,
    cents,
)
from erpsync.model.base import ValidationError

SYSTEM = "magento"
TS_FORMAT = "%Y-%m-%d %H:%M:%S"
REF_MARKER = "[erpsync ref: {ref}]"


def _fail(order_id: Any, field: str, problem: str) -> ValidationFailed:
    return ValidationFailed(f"magento order {order_id}: {field} {problem}", system=SYSTEM)


def _decimal(data: Mapping[str, Any], key: str, where: str, order_id: Any, *, required: bool = False) -> Decimal:
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise _fail(order_id, f"{where}{key}", "is missing")
        return Decimal("0")
    if isinstance(value, bool):
        raise _fail(order_id, f"{where}{key}", f"is not a number: {value!r}")
    try:
        result = Decimal(str(value))
    except InvalidOperation as exc:
        raise _fail(order_id, f"{where}{key}", f"is not a number: {value!r}") from exc
    if not result.is_finite():
        raise _fail(order_id, f"{where}{key}", f"is not a number: {value!r}")
    return result


def parse_timestamp(value: Any) -> datetime | None:
    """Magento's UTC ``YYYY-MM-DD HH:MM:SS`` (or ISO 8601) as an aware datetime."""
    if value in (None, ""):
        return None
    text = str(value).strip()
    try:
        parsed = datetime.strptime(text, TS_FORMAT)
    except ValueError:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def format_timestamp(when: datetime) -> str:
    """``when`` as Magento's UTC timestamp text (naive datetimes are taken as UTC)."""
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    return when.strftime(TS_FORMAT)


def address_from_magento(data: Mapping[str, Any] | None) -> Address | None:
    """An order or customer address (region as text or ``{region, region_code}``)."""
    if not data:
        return None
    region = data.get("region")
    region_code = data.get("region_code") or ""
    if isinstance(region, Mapping):
        region_code = region.get("region_code") or region_code
        region = region.get("region")
    street = data.get("street") or []
    if isinstance(street, str):
        street = [street]
    return Address(
        first_name=str(data.get("firstname") or ""),
        last_name=str(data.get("lastname") or ""),
        company=str(data.get("company") or ""),
        street=[str(s) for s in street if s],
        city=str(data.get("city") or ""),
        region=str(region or ""),
        region_code=str(region_code or ""),
        postcode=str(data.get("postcode") or ""),
        country=str(data.get("country_id") or ""),
        phone=str(data.get("telephone") or ""),
        email=str(data.get("email") or ""),
    )


class Amounts:
    """Reads an order's money in the currency the connection pushes (``MagentoSettings.amounts``):
    the website's base currency (Magento's ``base_*`` fields, the merchant FAQ's rule) or the
    currency the customer paid in. A ``base_*`` field a payload lacks is read from its plain twin
    only when both currencies are the same; otherwise the order fails naming the missing field."""

    def __init__(self, data: Mapping[str, Any], order_id: Any, in_base: bool = True) -> None:
        self.order_id = order_id
        self.order_currency = str(data.get("order_currency_code") or "")
        self.base_currency = str(data.get("base_currency_code") or "") or self.order_currency
        self.in_base = in_base
        self.same = self.base_currency == self.order_currency

    @property
    def currency(self) -> str:
        return self.base_currency if self.in_base else self.order_currency

    def get(self, record: Mapping[str, Any], key: str, where: str = "", *, required: bool = False) -> Decimal:
        if self.in_base:
            if record.get(f"base_{key}") not in (None, ""):
                return _decimal(record, f"base_{key}", where, self.order_id)
            if not self.same and record.get(key) not in (None, "", 0, "0"):
                raise _fail(
                    self.order_id,
                    f"{where}base_{key}",
                    f"is missing: the order is in {self.order_currency} and amounts go in the base "
                    f"currency {self.base_currency} (settings amounts)",
                )
        return _decimal(record, key, where, self.order_id, required=required)


def _line(item: Mapping[str, Any], order_id: Any, money: Amounts | None = None, **over: Any) -> OrderLine:
    where = f"items[{item.get('item_id')}]."
    money = money or Amounts(item, order_id, in_base=False)
    values: dict[str, Any] = {
        "line_id": str(item["item_id"]),
        "sku": str(item.get("sku") or ""),
        "name": str(item.get("name") or ""),
        "qty": _decimal(item, "qty_ordered", where, order_id, required=True),
        "unit_price": money.get(item, "price", where),
        "discount": money.get(item, "discount_amount", where),
        "tax": money.get(item, "tax_amount", where),
        "product_type": str(item.get("product_type") or "simple"),
        "store_line_ids": [str(item["item_id"])],
    }
    values.update(over)
    if not values["sku"]:
        raise _fail(order_id, f"{where}sku", "is missing")
    return OrderLine(**values)


def order_lines(items: Iterable[Mapping[str, Any]], order_id: Any, money: Amounts | None = None) -> list[OrderLine]:
    """The real lines: configurable parent+child fold into one, dynamic bundles become their children
    (amounts as ``money`` reads them: the order currency's when not given)."""
    rows = list(items)
    for i, item in enumerate(rows):
        if not isinstance(item, Mapping):
            raise _fail(order_id, f"items[{i}]", "is not an object")
        if item.get("item_id") is None:
            raise _fail(order_id, f"items[{i}].item_id", "is missing")
    by_id = {r["item_id"]: r for r in rows}
    children: dict[Any, list[Mapping[str, Any]]] = {}
    for r in rows:
        parent = r.get("parent_item_id")
        if parent is not None and parent in by_id:
            children.setdefault(parent, []).append(r)
    lines: list[OrderLine] = []
    for item in rows:
        if item.get("parent_item_id") is not None and item["parent_item_id"] in by_id:
            continue
        kids = children.get(item["item_id"], [])
        ptype = str(item.get("product_type") or "simple")
        if ptype == "bundle" and kids:
            where = f"items[{item['item_id']}]."
            priced = (_decimal(k, key, where, order_id) > 0 for k in kids for key in ("price", "base_price"))
            if any(priced):
                lines.extend(_line(k, order_id, money) for k in kids)
            else:
                ids = [str(item["item_id"]), *(str(k["item_id"]) for k in kids)]
                lines.append(_line(item, order_id, money, store_line_ids=ids))
        elif kids:
            child = kids[0]
            lines.append(
                _line(
                    item,
                    order_id,
                    money,
                    line_id=str(child["item_id"]),
                    sku=str(child.get("sku") or item.get("sku") or ""),
                    name=str(child.get("name") or item.get("name") or ""),
                    store_line_ids=[str(item["item_id"]), *(str(k["item_id"]) for k in kids)],
                )
            )
        else:
            lines.append(_line(item, order_id, money))
    return lines


def order_comments(data: Mapping[str, Any]) -> list[OrderComment]:
    """An order's ``status_histories`` with a comment, oldest first (Magento lists the newest first)."""
    rows = [
        r for r in data.get("status_histories") or [] if isinstance(r, Mapping) and str(r.get("comment") or "").strip()
    ]
    rows.sort(key=lambda r: (str(r.get("created_at") or ""), int(r.get("entity_id") or 0)))
    return [
        OrderComment(
            text=str(r["comment"]).strip(),
            visible=bool(int(r.get("is_visible_on_front") or 0)),
            created_at=parse_timestamp(r.get("created_at")),
        )
        for r in rows
    ]


def order_from_magento(data: Any, amounts: str = "base") -> Order:
    """A Magento order (``GET /V1/orders/{id}``) as the canonical Order, its money in the base
    currency (``amounts`` "base", Magento's ``base_*`` fields) or the order currency ("order", with
    Magento's ``base_to_order_rate``)."""
    if not isinstance(data, Mapping):
        raise ValidationFailed("magento order: not a JSON object", system=SYSTEM)
    order_id = data.get("entity_id")
    if order_id is None:
        raise _fail("?", "entity_id", "is missing")
    for key in ("increment_id", "order_currency_code", "customer_email"):
        if not data.get(key):
            raise _fail(order_id, key, "is missing")
    items = data.get("items")
    if not isinstance(items, list) or not items:
        raise _fail(order_id, "items", "is missing or empty")
    money = Amounts(data, order_id, in_base=amounts != "order")
    lines = order_lines(items, order_id, money)
    bill_to = address_from_magento(data.get("billing_address"))
    if bill_to is None:
        raise _fail(order_id, "billing_address", "is missing")
    shipping: Mapping[str, Any] = {}
    assignments = (data.get("extension_attributes") or {}).get("shipping_assignments") or []
    if assignments and isinstance(assignments[0], Mapping):
        shipping = assignments[0].get("shipping") or {}
    ship_to = address_from_magento(shipping.get("address"))
    payment = data.get("payment") or {}

    shipping_discount = money.get(data, "shipping_discount_amount")
    discount_total = abs(money.get(data, "discount_amount"))
    line_discounts = sum((ln.discount for ln in lines), Decimal("0"))
    paid_keys = ("total_paid", "base_total_paid") if money.in_base else ("total_paid",)
    if any(data.get(k) is not None for k in paid_keys):
        paid = money.get(data, "total_paid")
    else:
        paid = money.get(payment, "amount_paid", "payment.")
    rate = _decimal(data, "base_to_order_rate", "", order_id)
    group = data.get("customer_group_id")
    try:
        customer = Customer(
            email=str(data["customer_email"]),
            first_name=str(data.get("customer_firstname") or bill_to.first_name),
            last_name=str(data.get("customer_lastname") or bill_to.last_name),
            company=bill_to.company,
            phone=bill_to.phone,
            group=None if group is None else str(group),
            is_guest=bool(int(data.get("customer_is_guest") or 0)),
            address=bill_to,
            source_id=None if data.get("customer_id") is None else str(data["customer_id"]),
        )
    except (ValidationError, ValueError) as exc:
        raise _fail(order_id, "customer_email", f"is invalid: {data.get('customer_email')!r}") from exc
    try:
        created_at = parse_timestamp(data.get("created_at"))
        updated_at = parse_timestamp(data.get("updated_at"))
    except ValueError as exc:
        raise _fail(order_id, "created_at/updated_at", f"is not a timestamp: {exc}") from exc
    try:
        return Order(
            source_id=str(order_id),
            number=str(data["increment_id"]),
            status=str(data.get("status") or ""),
            state=str(data.get("state") or ""),
            created_at=created_at,
            updated_at=updated_at,
            currency=money.currency,
            exchange_rate=None if money.in_base or money.same or rate <= 0 else rate,
            customer=customer,
            bill_to=bill_to,
            ship_to=ship_to,
            shipping_method=shipping.get("method") or data.get("shipping_method") or None,
            shipping_description=str(data.get("shipping_description") or ""),
            payment_method=payment.get("method") or None,
            lines=lines,
            subtotal=money.get(data, "subtotal"),
            order_discount=max(Decimal("0"), cents(discount_total - line_discounts - shipping_discount)),
            freight=money.get(data, "shipping_amount") - shipping_discount,
            tax_total=money.get(data, "tax_amount"),
            grand_total=money.get(data, "grand_total", required=True),
            paid=paid,
            transaction_id=str(payment.get("last_trans_id") or ""),
            comments=order_comments(data),
            channel=str(data.get("store_name") or "").strip().splitlines()[-1:][0] if data.get("store_name") else "",
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise _fail(order_id, field, f"is invalid: {first['msg']}") from exc


def credit_memo_from_magento(memo: Any, order: Any, amounts: str = "base") -> CreditMemo:
    """A Magento credit memo (``GET /V1/creditmemo/{id}``) of ``order`` (``GET /V1/orders/{id}``) as
    the canonical CreditMemo, in the currency ``amounts`` says (as ``order_from_magento``). Lines
    are the refunded items that carry money (a configurable's child and a priced bundle's parent
    carry none); a memo discount beyond its lines' (a shipping discount given back) comes off the
    refunded shipping."""
    if not isinstance(memo, Mapping) or not isinstance(order, Mapping):
        raise ValidationFailed("magento credit memo: not a JSON object", system=SYSTEM)
    memo_id = memo.get("entity_id")
    where = f"credit memo {memo.get('increment_id') or memo_id}: "
    money = Amounts(
        {**memo, "order_currency_code": memo.get("order_currency_code") or order.get("order_currency_code")},
        order.get("increment_id"),
        in_base=amounts != "order",
    )
    by_id = {it.get("item_id"): it for it in order.get("items") or [] if isinstance(it, Mapping)}
    lines: list[RefundLine] = []
    for row in memo.get("items") or []:
        qty = _decimal(row, "qty", where, memo_id)
        price = money.get(row, "price", where)
        if qty <= 0 or price <= 0:
            continue
        item = by_id.get(row.get("order_item_id")) or {}
        lines.append(
            RefundLine(
                line_id=str(row.get("order_item_id")),
                sku=str(row.get("sku") or item.get("sku") or ""),
                description=str(row.get("name") or item.get("name") or ""),
                qty=qty,
                unit_price=price,
                discount=abs(money.get(row, "discount_amount", where)),
                tax=money.get(row, "tax_amount", where),
            )
        )
    discount_total = abs(money.get(memo, "discount_amount"))
    extra_discount = cents(discount_total - sum((ln.discount for ln in lines), Decimal("0")))
    payment = order.get("payment") or {}
    try:
        return CreditMemo(
            source_id=str(memo_id),
            number=str(memo.get("increment_id") or memo_id),
            order_id=str(memo.get("order_id")),
            order_number=str(order.get("increment_id") or ""),
            email=str(order.get("customer_email") or ""),
            currency=money.currency,
            created_at=parse_timestamp(memo.get("created_at")),
            updated_at=parse_timestamp(memo.get("updated_at")),
            lines=lines,
            shipping=money.get(memo, "shipping_amount") - max(extra_discount, Decimal("0")),
            adjustment=money.get(memo, "adjustment_positive") - money.get(memo, "adjustment_negative"),
            tax_total=money.get(memo, "tax_amount"),
            grand_total=money.get(memo, "grand_total", required=True),
            online=bool(memo.get("transaction_id")),
            transaction_id=str(memo.get("transaction_id") or ""),
            payment_method=payment.get("method") or None,
            erp_ref=marked_ref(memo),
        )
    except (ValidationError, ValueError) as exc:
        raise ValidationFailed(f"magento {where}{exc}", system=SYSTEM) from exc


RETURN_CLOSED_ITEMS = ("rejected", "denied")
"""Return item statuses whose units are not coming back."""


def return_from_magento(rma: Any, order: Any, amounts: str = "base") -> ReturnRequest:
    """An Adobe Commerce return (``GET /V1/returns/{id}``) of ``order`` (``GET /V1/orders/{id}``) as
    the canonical ReturnRequest: each item with units authorized (``line_id``: the order item the
    return names; a configurable's parent or child both find their order line), at that line's
    price with its share of the line's discount and tax for those units (``amounts`` as
    ``order_from_magento``)."""
    if not isinstance(rma, Mapping) or not isinstance(order, Mapping):
        raise ValidationFailed("magento return: not a JSON object", system=SYSTEM)
    rma_id = rma.get("entity_id")
    where = f"return {rma.get('increment_id') or rma_id}: "
    money = Amounts(order, order.get("increment_id"), in_base=amounts != "order")
    lines_of = {
        sid: line
        for line in order_lines(order.get("items") or [], order.get("increment_id"), money)
        for sid in line.store_line_ids
    }
    lines: list[RefundLine] = []
    for item in rma.get("items") or []:
        if not isinstance(item, Mapping) or str(item.get("status") or "") in RETURN_CLOSED_ITEMS:
            continue
        qty = _decimal(item, "qty_authorized", where, rma_id)
        if qty <= 0:
            continue
        line = lines_of.get(str(item.get("order_item_id")))
        if line is None:
            raise ValidationFailed(
                f"magento {where}item {item.get('entity_id')} takes back order item {item.get('order_item_id')}, "
                f"which order {order.get('increment_id')} does not have",
                system=SYSTEM,
            )
        share = qty / line.qty if line.qty else Decimal(0)
        lines.append(
            RefundLine(
                line_id=str(item.get("order_item_id")),
                sku=line.sku,
                description=line.name,
                qty=qty,
                unit_price=line.unit_price,
                discount=cents(line.discount * share),
                tax=cents(line.tax * share),
            )
        )
    try:
        return ReturnRequest(
            source_id=str(rma_id),
            number=str(rma.get("increment_id") or rma_id),
            status=str(rma.get("status") or ""),
            order_id=str(rma.get("order_id") or order.get("entity_id")),
            order_number=str(rma.get("order_increment_id") or order.get("increment_id") or ""),
            email=str(order.get("customer_email") or ""),
            currency=money.currency,
            date=parse_timestamp(rma.get("date_requested")),
            lines=lines,
        )
    except (ValidationError, ValueError) as exc:
        raise ValidationFailed(f"magento {where}{exc}", system=SYSTEM) from exc


def return_version(rma: Mapping[str, Any]) -> str:
    """What a poll compares to know a return moved: its status and each item's quantities and status
    (a return has no modification time)."""
    items = sorted(
        (
            str(it.get("entity_id")),
            str(it.get("status") or ""),
            str(it.get("qty_authorized") or 0),
            str(it.get("qty_returned") or 0),
        )
        for it in rma.get("items") or []
        if isinstance(it, Mapping)
    )
    return f"{rma.get('status') or ''}|" + ";".join(":".join(row) for row in items)


def received_items(rma: Mapping[str, Any], received: Mapping[str, Decimal]) -> list[dict[str, Any]] | None:
    """The return's items, as read, each recording what came back (``received``: store order item ->
    units received in all, capped at what was authorized): ``qty_returned`` and status ``received``.
    None when every item says so already (nothing to write). The whole items go back, as read: a
    save through the REST API takes the record it is given."""
    out: list[dict[str, Any]] = []
    left = dict(received)
    changed = False
    for item in rma.get("items") or []:
        if not isinstance(item, Mapping):
            continue
        row = dict(item)
        out.append(row)
        key = str(item.get("order_item_id"))
        if str(item.get("status") or "") in RETURN_CLOSED_ITEMS or key not in left:
            continue
        authorized = _decimal(item, "qty_authorized", "return item ", rma.get("entity_id"))
        qty = min(left[key], authorized)
        left[key] -= qty
        if qty <= 0:
            continue
        status = str(item.get("status") or "")
        status = "received" if status in ("pending", "authorized", "received") else status
        if _decimal(item, "qty_returned", "return item ", rma.get("entity_id")) != qty or item.get("status") != status:
            row.update(qty_returned=_qty(qty), status=status)
            changed = True
    return out if changed else None


# ------------------------------------------------------------------------- fulfilment out


def ref_marker(ref: str) -> str:
    """The text we write on a shipment or invoice comment so we recognise it later."""
    return REF_MARKER.format(ref=ref)


def marked_ref(record: Mapping[str, Any]) -> str:
    """The ref of our marker on one of the record's comments ('' when none carries one)."""
    head, _, tail = REF_MARKER.partition("{ref}")
    for c in record.get("comments") or []:
        text = str(c.get("comment") or "") if isinstance(c, Mapping) else ""
        start = text.find(head)
        end = text.find(tail, start + len(head)) if start >= 0 else -1
        if end > start:
            return text[start + len(head) : end]
    return ""


def has_marker(record: Mapping[str, Any], ref: str) -> bool:
    """Whether one of the record's comments carries our marker for ``ref``."""
    marker = ref_marker(ref)
    return any(isinstance(c, Mapping) and marker in str(c.get("comment") or "") for c in record.get("comments") or [])


def _qty(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def document_items(lines: Iterable[DocumentLine], what: str) -> list[dict[str, Any]]:
    """``[{"order_item_id", "qty"}]`` for a ship or invoice call (lines of the same item add up)."""
    qty_by_item: dict[int, Decimal] = {}
    for line in lines:
        if not line.store_line_id:
            raise MappingMissing(
                f"{what} line {line.line_nbr or line.sku} has no store line id (order {line.order_number})",
                system=SYSTEM,
            )
        try:
            item_id = int(line.store_line_id)
        except ValueError as exc:
            raise MappingMissing(f"{what} line store id {line.store_line_id!r} is not a Magento item id") from exc
        if line.qty > 0:
            qty_by_item[item_id] = qty_by_item.get(item_id, Decimal("0")) + line.qty
    if not qty_by_item:
        raise ValidationFailed(f"{what} has no quantity to send to magento", system=SYSTEM)
    return [{"order_item_id": i, "qty": _qty(q)} for i, q in qty_by_item.items()]


# -- customers ------------------------------------------------------------------------------------


def _address_by_id(record: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    wanted = record.get(key)
    for addr in record.get("addresses") or []:
        if isinstance(addr, Mapping) and (
            (wanted is not None and str(addr.get("id")) == str(wanted)) or addr.get(key) is True
        ):
            return addr
    return None


def customer_from_magento(record: Any) -> Customer:
    """A Magento customer account (``GET /V1/customers/{id}``) as the canonical customer.

    Company and phone live on Magento's addresses: they are read from the default billing address.
    """
    if not isinstance(record, Mapping) or not record.get("email"):
        raise ValidationFailed(
            f"magento customer {record.get('id') if isinstance(record, Mapping) else record!r}: no email"
        )
    billing_raw = _address_by_id(record, "default_billing")
    shipping_raw = _address_by_id(record, "default_shipping")
    billing = address_from_magento(billing_raw)
    shipping = address_from_magento(shipping_raw)
    if billing is not None:
        billing = billing.model_copy(update={"email": ""})
    if shipping is not None:
        shipping = shipping.model_copy(update={"email": ""})
    return Customer(
        email=str(record["email"]),
        first_name=str(record.get("firstname") or ""),
        last_name=str(record.get("lastname") or ""),
        company=billing.company if billing else "",
        phone=billing.phone if billing else "",
        group=str(record.get("group_id")) if record.get("group_id") is not None else None,
        address=billing,
        shipping=shipping if shipping is not None and shipping != billing else None,
        source_id=str(record.get("id")),
        version=str(record.get("updated_at") or "") or None,
    )


def address_to_magento(addr: Address, customer: Customer, **flags: Any) -> dict[str, Any]:
    """A Magento customer address; names, company and phone fall back to the customer's."""
    return {
        "firstname": addr.first_name or customer.first_name,
        "lastname": addr.last_name or customer.last_name,
        "company": addr.company or customer.company,
        "street": list(addr.street),
        "city": addr.city,
        "region": {"region_code": addr.region_code, "region": addr.region or addr.region_code},
        "postcode": addr.postcode,
        "country_id": addr.country,
        "telephone": addr.phone or customer.phone,
        **flags,
    }


def customer_to_magento(
    customer: Customer, current: Mapping[str, Any] | None, *, website_id: int, store_id: int
) -> dict[str, Any]:
    """The whole customer to send (``POST`` or ``PUT /V1/customers/{id}``).

    A Magento update replaces the customer aggregate: addresses left out are deleted and default
    flags not sent are reset. So the current record is sent back whole, with the synced fields and
    the default billing and shipping addresses replaced (keeping their ids); other addresses stay.
    """
    body: dict[str, Any] = dict(current or {})
    body.pop("addresses", None)
    body.update(email=customer.email, firstname=customer.first_name or "-", lastname=customer.last_name or "-")
    if customer.group is not None:
        body["group_id"] = int(customer.group) if customer.group.isdigit() else customer.group
    if current is None:
        body.update(website_id=website_id, store_id=store_id)
    kept = [
        dict(a)
        for a in (current or {}).get("addresses") or []
        if isinstance(a, Mapping)
        and str(a.get("id"))
        not in {str((current or {}).get("default_billing")), str((current or {}).get("default_shipping"))}
    ]
    for a in kept:
        a["default_billing"] = False
        a["default_shipping"] = False
    billing_id = (current or {}).get("default_billing")
    shipping_id = (current or {}).get("default_shipping")
    addresses: list[dict[str, Any]] = []
    if customer.address is not None:
        same = customer.shipping is None or customer.shipping == customer.address
        a = address_to_magento(customer.address, customer, default_billing=True, default_shipping=same)
        if billing_id is not None:
            a["id"] = int(billing_id)
        addresses.append(a)
        if not same and customer.shipping is not None:
            s = address_to_magento(customer.shipping, customer, default_billing=False, default_shipping=True)
            if shipping_id is not None and str(shipping_id) != str(billing_id):
                s["id"] = int(shipping_id)
            addresses.append(s)
    body["addresses"] = addresses + kept
    for key in ("default_billing", "default_shipping"):
        body.pop(key, None)
    return body


def _order_address(addr: Address, customer: Customer, kind: str) -> dict[str, Any]:
    """An order address (region as text and code, as an order holds it)."""
    return {
        "address_type": kind,
        "firstname": addr.first_name or customer.first_name,
        "lastname": addr.last_name or customer.last_name,
        "company": addr.company or customer.company,
        "street": list(addr.street) or ["-"],
        "city": addr.city,
        "region": addr.region or addr.region_code,
        "region_code": addr.region_code,
        "postcode": addr.postcode,
        "country_id": addr.country,
        "telephone": addr.phone or customer.phone or "-",
        "email": customer.email,
    }


def order_entity(
    order: Order,
    *,
    erp_ref: str,
    customer_id: str | None,
    group_id: int,
    shipping_method: str,
    payment_method: str,
    comment: str,
) -> dict[str, Any]:
    """The ``{"entity": ...}`` of ``POST /V1/orders`` for an order entered in the ERP: Magento saves it
    as it is (no totals computed, no stock moved), so every amount is the ERP's, in its currency (the
    website's base one), and the order adds up as the ERP charged it. ``ext_order_id`` carries the
    ERP's order (``<type>/<number>``), a comment says where it came from; nothing is paid in the store
    (the ERP holds its payments)."""
    c = order.customer
    items = []
    for line in order.lines:
        row = cents(line.qty * line.unit_price)
        for_row = {
            "sku": line.sku,
            "name": line.name or line.sku,
            "product_type": "simple",
            "qty_ordered": _qty(line.qty),
            "price": float(line.unit_price),
            "base_price": float(line.unit_price),
            "original_price": float(line.unit_price),
            "row_total": float(row),
            "base_row_total": float(row),
            "discount_amount": float(cents(line.discount)),
            "base_discount_amount": float(cents(line.discount)),
            "tax_amount": 0,
            "base_tax_amount": 0,
            "qty_invoiced": 0,
            "qty_shipped": 0,
            "qty_canceled": 0,
            "qty_refunded": 0,
        }
        items.append(for_row)
    discount = sum((cents(ln.discount) for ln in order.lines), Decimal(0))
    subtotal = sum((cents(ln.qty * ln.unit_price) for ln in order.lines), Decimal(0))
    money = {
        "subtotal": subtotal,
        "discount_amount": -discount,
        "shipping_amount": cents(order.freight),
        "tax_amount": cents(order.tax_total),
        "grand_total": cents(order.grand_total),
        "total_due": cents(order.grand_total),
    }
    entity: dict[str, Any] = {
        "ext_order_id": erp_ref,
        "customer_email": c.email,
        "customer_firstname": c.first_name,
        "customer_lastname": c.last_name,
        "customer_is_guest": 0 if customer_id else 1,
        "customer_group_id": group_id,
        "order_currency_code": order.currency,
        "base_currency_code": order.currency,
        "global_currency_code": order.currency,
        "store_currency_code": order.currency,
        "base_to_order_rate": 1,
        "base_to_global_rate": 1,
        "state": "new",
        "status": "pending",
        "shipping_description": shipping_method,
        "total_item_count": len(items),
        "total_qty_ordered": _qty(sum((ln.qty for ln in order.lines), Decimal(0))),
        "items": items,
        "billing_address": _order_address(order.bill_to, c, "billing"),
        "payment": {"method": payment_method, "amount_ordered": float(cents(order.grand_total))},
        "status_histories": [
            {"comment": comment, "is_customer_notified": 0, "is_visible_on_front": 0, "status": "pending"}
        ],
        "extension_attributes": {
            "shipping_assignments": [
                {
                    "shipping": {
                        "address": _order_address(order.ship_to or order.bill_to, c, "shipping"),
                        "method": shipping_method,
                        "total": {"shipping_amount": float(cents(order.freight))},
                    },
                    "items": [],
                }
            ]
        },
    }
    for key, amount in money.items():
        entity[key] = entity[f"base_{key}"] = float(amount)
    if customer_id:
        entity["customer_id"] = int(customer_id) if str(customer_id).isdigit() else customer_id
    if order.created_at:
        entity["created_at"] = format_timestamp(order.created_at)
    return entity


# ------------------------------------------------------------------------- refunds from the ERP


def refund_body(order: Mapping[str, Any], draft: StoreRefundDraft, in_base: bool = True) -> dict[str, Any]:
    """``POST /V1/order/{id}/refund`` for ``draft``: an offline credit memo of its lines (through each
    order line it names) and shipping, and an adjustment that makes Magento's total the ERP's to the
    cent. Magento prices a refund by its own rules (``Creditmemo\\Total\\*``: a unit's price, its
    share of the invoiced tax and discount, the last unit of a line taking what is left; the shipping
    with its share of shipping tax and discount); the adjustment carries whatever the ERP credited
    besides or otherwise (an adjustment refund when more, a fee when less)."""
    money = Amounts(order, order.get("increment_id"), in_base=in_base)
    by_id = {str(it.get("item_id")): it for it in order.get("items") or [] if isinstance(it, Mapping)}
    items: list[dict[str, Any]] = []
    estimate = Decimal(0)
    for line in draft.lines:
        item = by_id.get(str(line.store_line_id))
        if item is None:
            raise ValidationFailed(
                f"magento order {order.get('increment_id')}: no item {line.store_line_id} to refund ({line.sku})",
                system=SYSTEM,
            )
        where = f"items[{line.store_line_id}]."
        invoiced = _decimal(item, "qty_invoiced", where, order.get("increment_id"))
        left = invoiced - _decimal(item, "qty_refunded", where, order.get("increment_id"))
        if line.qty > left:
            raise ValidationFailed(
                f"magento order {order.get('increment_id')}: item {line.sku} has {_qty(left)} invoiced and not "
                f"refunded, the ERP credits {_qty(line.qty)}",
                system=SYSTEM,
            )
        items.append({"order_item_id": int(str(line.store_line_id)), "qty": _qty(line.qty)})
        share = line.qty / invoiced if invoiced else Decimal(0)
        tax, disc = money.get(item, "tax_invoiced", where), money.get(item, "discount_invoiced", where)
        if line.qty >= left:  # the last refund of the line takes what is left
            tax -= money.get(item, "tax_refunded", where)
            disc -= money.get(item, "discount_refunded", where)
        else:
            tax, disc = cents(tax * share), cents(disc * share)
        estimate += cents(money.get(item, "price", where) * line.qty) + tax - disc
    shipping = cents(draft.shipping)
    base = money.get(order, "shipping_amount")
    if shipping and base:
        ratio = shipping / base
        shipping_tax = cents(money.get(order, "shipping_tax_amount") * ratio)
        shipping_discount = cents(money.get(order, "shipping_discount_amount") * ratio)
        estimate += shipping + shipping_tax - shipping_discount
    adjustment = cents(draft.total - estimate)
    return {
        "items": items,
        "notify": False,
        "appendComment": True,
        "comment": {
            "comment": f"{draft.description or 'Credited in the ERP'} {ref_marker(draft.ref)}",
            "is_visible_on_front": 0,
        },
        "arguments": {
            "shipping_amount": float(shipping),
            "adjustment_positive": float(max(adjustment, Decimal(0))),
            "adjustment_negative": float(max(-adjustment, Decimal(0))),
        },
    }


def refund_ref(memo: Mapping[str, Any], in_base: bool = True) -> StoreRefundRef:
    """A Magento credit memo (``GET /V1/creditmemo/{id}`` or a search row) as made for an ERP one."""
    money = Amounts(memo, memo.get("order_id"), in_base=in_base)
    return StoreRefundRef(
        id=str(memo.get("entity_id")),
        number=str(memo.get("increment_id") or ""),
        total=money.get(memo, "grand_total"),
        adjustment=money.get(memo, "adjustment_positive") - money.get(memo, "adjustment_negative"),
    )
