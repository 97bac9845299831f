"""Builds realistic Magento 2 orders (shaped like ``GET /V1/orders/{id}``) from a catalog and a cart.

Used by the demo, tests and benchmarks: configurables become a priced parent line plus a child line
(price 0), a coupon is spread onto the items' ``discount_amount`` like Magento's sales rules, tax is
charged on the discounted row, and the totals add up to the cent.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from erpsync.model.money import allocate_proportionally, cents

JSON = dict[str, Any]

SHIPPING_TITLES = {
    "tablerate_bestway": "Best Way - Table Rate",
    "flatrate_flatrate": "Flat Rate - Fixed",
    "freeshipping_freeshipping": "Free Shipping - Free",
    "ups_GND": "United Parcel Service - Ground",
}
PAYMENT_TITLES = {
    "checkmo": "Check / Money order",
    "banktransfer": "Bank Transfer Payment",
    "cashondelivery": "Cash On Delivery",
    "braintree": "Credit Card (Braintree)",
}
OFFLINE_METHODS = frozenset({"checkmo", "banktransfer", "cashondelivery", "purchaseorder", "free"})
"""Methods no gateway captures: their payments carry no transaction id."""


def gateway_transaction_id() -> str:
    """A new capture's id as a gateway (Braintree) gives it: eight lower-case letters and digits."""
    return uuid.uuid4().hex[:8]


@dataclass(frozen=True)
class CartLine:
    """One cart line: a simple sku, or a configurable's parent ``sku`` with the chosen ``option_sku``."""

    sku: str
    qty: Decimal | int | str = 1
    option_sku: str | None = None


@dataclass(frozen=True)
class Coupon:
    """A cart price rule: ``percent`` of each row, or a ``fixed_cart`` amount spread over the rows."""

    code: str
    kind: Literal["percent", "fixed_cart"]
    amount: Decimal | int | str
    apply_to_shipping: bool = False
    rule_id: int = 2


def _n(value: Decimal) -> int | float:
    value = Decimal(value).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
    return int(value) if value == value.to_integral_value() else float(value)


def _product(catalog: Sequence[JSON], sku: str) -> JSON:
    for p in catalog:
        if p.get("sku") == sku:
            return p
    raise KeyError(f"no product with sku {sku!r} in the catalog")


def _product_by_id(catalog: Sequence[JSON], pid: int) -> JSON | None:
    return next((p for p in catalog if p.get("id") == pid), None)


def _address(src: JSON, kind: str, email: str) -> JSON:
    region = src.get("region")
    region_name, region_code, region_id = region, src.get("region_code"), src.get("region_id")
    if isinstance(region, dict):
        region_name, region_code = region.get("region"), region.get("region_code")
        region_id = region.get("region_id", region_id)
    out: JSON = {
        "address_type": kind,
        "city": src.get("city", ""),
        "country_id": src.get("country_id", "US"),
        "email": email,
        "firstname": src.get("firstname", ""),
        "lastname": src.get("lastname", ""),
        "postcode": src.get("postcode", ""),
        "region": region_name,
        "region_code": region_code,
        "region_id": region_id,
        "street": list(src.get("street") or []),
        "telephone": src.get("telephone", ""),
    }
    if src.get("company"):
        out["company"] = src["company"]
    if src.get("id") is not None and kind in ("billing", "shipping") and src.get("customer_id"):
        out["customer_address_id"] = src["id"]
    return out


def build_order(
    catalog: Sequence[JSON],
    cart: Sequence[CartLine],
    *,
    customer: JSON | None = None,
    guest_email: str | None = None,
    guest_firstname: str = "Guest",
    guest_lastname: str = "Shopper",
    address: JSON | None = None,
    coupon: Coupon | None = None,
    shipping_method: str = "flatrate_flatrate",
    shipping_amount: Decimal | int | str = 5,
    tax_rate: Decimal | int | str = 0,
    currency: str = "USD",
    payment_method: str = "checkmo",
    captured: bool = False,
    entity_id: int | None = None,
    increment_id: str | None = None,
    created_at: datetime | None = None,
    first_item_id: int = 1,
) -> JSON:
    """A Magento order entity for ``cart``, for a registered ``customer`` or a guest.

    ``customer`` is a Magento customer record (its default billing address is used unless
    ``address`` is given); a guest needs ``guest_email`` and ``address`` (Magento address fields).
    Item ids start at ``first_item_id``; the sim renumbers them if they are taken.
    """
    if not cart:
        raise ValueError("the cart is empty")
    if customer is None and not (guest_email and address):
        raise ValueError("a guest order needs guest_email and address")
    email = customer["email"] if customer else str(guest_email)
    if address is None and customer is not None:
        addresses = customer.get("addresses") or []
        address = next((a for a in addresses if a.get("default_billing")), addresses[0] if addresses else None)
    if address is None:
        raise ValueError("no address for the order")
    when = (created_at or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    rate = Decimal(str(tax_rate))
    ship_amount = cents(shipping_amount)

    # 1. the rows: (parent line, child line or None, unit price, qty, product)
    rows: list[tuple[JSON, JSON | None, Decimal, Decimal]] = []
    for line in cart:
        qty = Decimal(str(line.qty))
        if qty <= 0:
            raise ValueError(f"quantity must be positive for {line.sku}")
        product = _product(catalog, line.sku)
        if product.get("type_id") == "configurable":
            if not line.option_sku:
                raise ValueError(f"{line.sku} is configurable: choose option_sku")
            chosen = _product(catalog, line.option_sku)
            links = (product.get("extension_attributes") or {}).get("configurable_product_links") or []
            if links and chosen.get("id") not in links:
                raise ValueError(f"{line.option_sku} is not an option of {line.sku}")
            rows.append((product, chosen, cents(chosen.get("price")), qty))
        else:
            rows.append((product, None, cents(product.get("price")), qty))
    row_totals = [cents(price * qty) for _, _, price, qty in rows]
    subtotal = sum(row_totals, Decimal("0"))

    # 2. the coupon, spread onto the rows (and shipping when the rule says so)
    discounts = [Decimal("0.00")] * len(rows)
    ship_discount = Decimal("0.00")
    if coupon is not None:
        amount = Decimal(str(coupon.amount))
        if coupon.kind == "percent":
            discounts = [cents(rt * amount / 100) for rt in row_totals]
            if coupon.apply_to_shipping:
                ship_discount = cents(ship_amount * amount / 100)
        else:
            discounts = allocate_proportionally(min(cents(amount), subtotal), row_totals)
    taxes = [cents((rt - d) * rate / 100) for rt, d in zip(row_totals, discounts, strict=True)]
    tax_total = sum(taxes, Decimal("0"))
    discount_total = sum(discounts, Decimal("0")) + ship_discount
    grand_total = subtotal - discount_total + ship_amount + tax_total

    # 3. the items
    items: list[JSON] = []
    next_id = first_item_id
    rule_ids = str(coupon.rule_id) if coupon else ""
    for (product, option, price, qty), row_total, disc, tax in zip(rows, row_totals, discounts, taxes, strict=True):
        child = option
        parent_id = next_id
        next_id += 1
        priced = _item(
            item_id=parent_id,
            sku=(child or product)["sku"],
            name=str(product.get("name") or product["sku"]),
            product=product,
            product_type=str(product.get("type_id") or "simple"),
            qty=qty,
            price=price,
            row_total=row_total,
            discount=disc,
            tax=tax,
            rate=rate,
            pct=Decimal(str(coupon.amount)) if coupon and coupon.kind == "percent" else Decimal(0),
            when=when,
            rule_ids=rule_ids,
            entity_id=entity_id,
        )
        items.append(priced)
        if child is not None:
            kid = _item(
                item_id=next_id,
                sku=child["sku"],
                name=str(child.get("name") or child["sku"]),
                product=child,
                product_type="simple",
                qty=qty,
                price=Decimal(0),
                row_total=Decimal(0),
                discount=Decimal(0),
                tax=Decimal(0),
                rate=Decimal(0),
                pct=Decimal(0),
                when=when,
                rule_ids=rule_ids,
                entity_id=entity_id,
            )
            kid["parent_item_id"] = parent_id
            kid["parent_item"] = copy.deepcopy(priced)
            next_id += 1
            items.append(kid)

    bill = _address(address, "billing", email)
    ship_to = _address(address, "shipping", email)
    firstname = customer.get("firstname", "") if customer else guest_firstname
    lastname = customer.get("lastname", "") if customer else guest_lastname
    total_qty = sum((qty for _, _, _, qty in rows), Decimal(0))
    weight = sum((Decimal(str(p.get("weight") or 0)) * q for p, c, _, q in rows if not _is_virtual(c or p)), Decimal(0))
    paid = grand_total if captured else Decimal(0)
    payment: JSON = {
        "account_status": None,
        "additional_information": [PAYMENT_TITLES.get(payment_method, payment_method)],
        "amount_ordered": _n(grand_total),
        "base_amount_ordered": _n(grand_total),
        "base_shipping_amount": _n(ship_amount),
        "cc_last4": None,
        "method": payment_method,
        "shipping_amount": _n(ship_amount),
    }
    if captured:
        payment.update(amount_paid=_n(paid), base_amount_paid=_n(paid))
        if payment_method not in OFFLINE_METHODS:
            payment["last_trans_id"] = gateway_transaction_id()
    shipping_total = {
        "base_shipping_amount": _n(ship_amount),
        "base_shipping_discount_amount": _n(ship_discount),
        "base_shipping_incl_tax": _n(ship_amount),
        "base_shipping_tax_amount": 0,
        "shipping_amount": _n(ship_amount),
        "shipping_discount_amount": _n(ship_discount),
        "shipping_discount_tax_compensation_amount": 0,
        "shipping_incl_tax": _n(ship_amount),
        "shipping_tax_amount": 0,
    }
    order: JSON = {
        "applied_rule_ids": rule_ids or None,
        "base_currency_code": currency,
        "base_discount_amount": _n(-discount_total),
        "base_grand_total": _n(grand_total),
        "base_discount_tax_compensation_amount": 0,
        "base_shipping_amount": _n(ship_amount),
        "base_shipping_discount_amount": _n(ship_discount),
        "base_shipping_incl_tax": _n(ship_amount),
        "base_shipping_tax_amount": 0,
        "base_subtotal": _n(subtotal),
        "base_subtotal_incl_tax": _n(subtotal + tax_total),
        "base_tax_amount": _n(tax_total),
        "base_total_due": _n(grand_total - paid),
        "base_to_global_rate": 1,
        "base_to_order_rate": 1,
        "created_at": when,
        "customer_email": email,
        "customer_firstname": firstname,
        "customer_group_id": int(customer.get("group_id", 1)) if customer else 0,
        "customer_is_guest": 0 if customer else 1,
        "customer_lastname": lastname,
        "customer_note_notify": 1,
        "discount_amount": _n(-discount_total),
        "email_sent": 1,
        "global_currency_code": currency,
        "grand_total": _n(grand_total),
        "discount_tax_compensation_amount": 0,
        "is_virtual": int(all(_is_virtual(c or p) for p, c, _, _ in rows)),
        "order_currency_code": currency,
        "shipping_amount": _n(ship_amount),
        "shipping_description": SHIPPING_TITLES.get(shipping_method, shipping_method),
        "shipping_discount_amount": _n(ship_discount),
        "shipping_discount_tax_compensation_amount": 0,
        "shipping_incl_tax": _n(ship_amount),
        "shipping_tax_amount": 0,
        "state": "new",
        "status": "pending",
        "store_currency_code": currency,
        "store_id": 1,
        "store_name": "Main Website\nMain Website Store\nDefault Store View",
        "store_to_base_rate": 0,
        "store_to_order_rate": 0,
        "subtotal": _n(subtotal),
        "subtotal_incl_tax": _n(subtotal + tax_total),
        "tax_amount": _n(tax_total),
        "total_due": _n(grand_total - paid),
        "total_item_count": len(items),
        "total_qty_ordered": _n(total_qty),
        "updated_at": when,
        "weight": _n(weight),
        "items": items,
        "billing_address": bill,
        "payment": payment,
        "status_histories": [],
        "extension_attributes": {
            "shipping_assignments": [
                {
                    "shipping": {"address": ship_to, "method": shipping_method, "total": shipping_total},
                    "items": copy.deepcopy(items),
                }
            ]
        },
    }
    if customer is not None and customer.get("id") is not None:
        order["customer_id"] = customer["id"]
    if coupon is not None:
        order["coupon_code"] = coupon.code
        order["discount_description"] = coupon.code
    if captured:
        order.update(
            total_paid=_n(paid),
            base_total_paid=_n(paid),
            total_invoiced=0,
            base_total_invoiced=0,
        )
    if entity_id is not None:
        order["entity_id"] = entity_id
        bill["parent_id"] = ship_to["parent_id"] = payment["parent_id"] = entity_id
    if increment_id is not None:
        order["increment_id"] = increment_id
    return order


def build_order_in_currency(
    catalog: Sequence[JSON],
    cart: Sequence[CartLine],
    *,
    order_currency: str,
    rate: Decimal | int | str,
    base_currency: str = "USD",
    **kw: Any,
) -> JSON:
    """``build_order`` for a website whose base currency is ``base_currency`` and a customer who paid
    in ``order_currency`` at ``rate`` (units of it per base unit, Magento's ``base_to_order_rate``):
    the ``base_*`` amounts in the base currency, the others as Magento converts them (each price,
    the shipping and a fixed coupon at the rate, rounded to the cent; totals summed in each currency,
    so each adds up on its own)."""
    factor = Decimal(str(rate))
    base = build_order(catalog, cart, currency=base_currency, **kw)
    converted_catalog = [{**p, "price": str(cents(Decimal(str(p.get("price") or 0)) * factor))} for p in catalog]
    conv_kw = dict(kw)
    conv_kw["shipping_amount"] = cents(Decimal(str(kw.get("shipping_amount", 5))) * factor)
    coupon = kw.get("coupon")
    if coupon is not None and coupon.kind == "fixed_cart":
        amount = cents(Decimal(str(coupon.amount)) * factor)
        conv_kw["coupon"] = Coupon(coupon.code, coupon.kind, amount, coupon.apply_to_shipping, coupon.rule_id)
    order = _merge_currencies(base, build_order(converted_catalog, cart, currency=order_currency, **conv_kw))
    order.update(
        base_currency_code=base_currency,
        global_currency_code=base_currency,
        store_currency_code=base_currency,
        order_currency_code=order_currency,
        base_to_global_rate=1,
        base_to_order_rate=_n(factor),
        store_to_base_rate=1,
        store_to_order_rate=_n(factor),
    )
    return order


def _merge_currencies(base: Any, converted: Any) -> Any:
    """``converted`` with every ``base_*`` value taken from ``base`` (the same order built twice)."""
    if isinstance(base, dict) and isinstance(converted, dict):
        return {
            k: base[k] if k.startswith("base_") and k in base else _merge_currencies(base.get(k), v)
            for k, v in converted.items()
        }
    if isinstance(base, list) and isinstance(converted, list) and len(base) == len(converted):
        return [_merge_currencies(b, c) for b, c in zip(base, converted, strict=True)]
    return converted


def _is_virtual(product: JSON) -> bool:
    return product.get("type_id") in ("virtual", "downloadable")


def _item(
    *,
    item_id: int,
    sku: str,
    name: str,
    product: JSON,
    product_type: str,
    qty: Decimal,
    price: Decimal,
    row_total: Decimal,
    discount: Decimal,
    tax: Decimal,
    rate: Decimal,
    pct: Decimal,
    when: str,
    rule_ids: str,
    entity_id: int | None,
) -> JSON:
    incl = cents(price * (1 + rate / 100))
    weight = Decimal(str(product.get("weight") or 0))
    item: JSON = {
        "amount_refunded": 0,
        "applied_rule_ids": rule_ids or None,
        "base_amount_refunded": 0,
        "base_discount_amount": _n(discount),
        "base_discount_invoiced": 0,
        "base_discount_tax_compensation_amount": 0,
        "base_original_price": _n(price),
        "base_price": _n(price),
        "base_price_incl_tax": _n(incl),
        "base_row_invoiced": 0,
        "base_row_total": _n(row_total),
        "base_row_total_incl_tax": _n(row_total + tax),
        "base_tax_amount": _n(tax),
        "base_tax_invoiced": 0,
        "created_at": when,
        "discount_amount": _n(discount),
        "discount_invoiced": 0,
        "discount_percent": _n(pct),
        "free_shipping": 0,
        "discount_tax_compensation_amount": 0,
        "is_qty_decimal": 0,
        "is_virtual": int(_is_virtual(product)),
        "item_id": item_id,
        "name": name,
        "no_discount": 0,
        "original_price": _n(price),
        "price": _n(price),
        "price_incl_tax": _n(incl),
        "product_id": product.get("id"),
        "product_type": product_type,
        "qty_canceled": 0,
        "qty_invoiced": 0,
        "qty_ordered": _n(qty),
        "qty_refunded": 0,
        "qty_shipped": 0,
        "row_invoiced": 0,
        "row_total": _n(row_total),
        "row_total_incl_tax": _n(row_total + tax),
        "row_weight": _n(weight * qty),
        "sku": sku,
        "store_id": 1,
        "tax_amount": _n(tax),
        "tax_invoiced": 0,
        "tax_percent": _n(rate),
        "updated_at": when,
        "weight": _n(weight),
    }
    if entity_id is not None:
        item["order_id"] = entity_id
    return item


def stock_item(product_id: int | None, qty: int | float = 100) -> JSON:
    """A legacy CatalogInventory stock item as Magento returns it inside a product."""
    return {
        "item_id": product_id,
        "product_id": product_id,
        "stock_id": 1,
        "qty": qty,
        "is_in_stock": qty > 0,
        "is_qty_decimal": False,
        "show_default_notification_message": False,
        "use_config_min_qty": True,
        "min_qty": 0,
        "use_config_min_sale_qty": 1,
        "min_sale_qty": 1,
        "use_config_max_sale_qty": True,
        "max_sale_qty": 10000,
        "use_config_backorders": True,
        "backorders": 0,
        "use_config_notify_stock_qty": True,
        "notify_stock_qty": 1,
        "use_config_qty_increments": True,
        "qty_increments": 0,
        "use_config_enable_qty_inc": True,
        "enable_qty_increments": False,
        "use_config_manage_stock": True,
        "manage_stock": True,
        "low_stock_date": None,
        "is_decimal_divided": False,
        "stock_status_changed_auto": 0,
    }


def _simple(pid: int, sku: str, name: str, price: str, weight: float = 1, type_id: str = "simple") -> JSON:
    return {
        "id": pid,
        "sku": sku,
        "name": name,
        "attribute_set_id": 4 if type_id != "simple" else 9,
        "price": _n(Decimal(price)),
        "status": 1,
        "visibility": 4,
        "type_id": type_id,
        "weight": weight if type_id == "simple" else 0,
        "extension_attributes": {"website_ids": [1], "stock_item": stock_item(pid, 100 if type_id == "simple" else 0)},
        "custom_attributes": [{"attribute_code": "url_key", "value": sku.lower()}],
    }


def sample_catalog() -> list[JSON]:
    """A handful of Luma-like products: two configurables with their children, simples, a virtual."""
    tees = [
        _simple(1553, "WS12-M-Orange", "Radiant Tee-M-Orange", "22"),
        _simple(1554, "WS12-L-Orange", "Radiant Tee-L-Orange", "22"),
        _simple(1555, "WS12-M-Blue", "Radiant Tee-M-Blue", "22"),
    ]
    hoodies = [
        _simple(56, "MH01-S-Gray", "Chaz Kangeroo Hoodie-S-Gray", "52"),
        _simple(57, "MH01-M-Gray", "Chaz Kangeroo Hoodie-M-Gray", "52"),
    ]
    for child in [*tees, *hoodies]:
        child["visibility"] = 1
    radiant = _simple(1562, "WS12", "Radiant Tee", "0", type_id="configurable")
    radiant["extension_attributes"]["configurable_product_links"] = [p["id"] for p in tees]
    chaz = _simple(67, "MH01", "Chaz Kangeroo Hoodie", "0", type_id="configurable")
    chaz["extension_attributes"]["configurable_product_links"] = [p["id"] for p in hoodies]
    return [
        radiant,
        *tees,
        chaz,
        *hoodies,
        _simple(1, "24-MB01", "Joust Duffle Bag", "34", weight=2),
        _simple(2, "24-MB04", "Strive Shoulder Pack", "32", weight=1.5),
        _simple(21, "24-WG084", "Sprite Foam Yoga Brick", "5"),
        _simple(22, "24-WG088", "Sprite Foam Roller", "19"),
        _simple(49, "240-LV08", "Advanced Pilates & Yoga (Strength)", "18", type_id="downloadable"),
        _simple(50, "24-GC01", "Gift Wrapping Service", "4.99", type_id="virtual"),
    ]


def sample_customer(email: str = "roni_cost@example.com", customer_id: int | None = None) -> JSON:
    """A Luma-like registered customer record (Magento customer shape) with a default address."""
    customer: JSON = {
        "email": email,
        "firstname": "Veronica",
        "lastname": "Costello",
        "group_id": 1,
        "website_id": 1,
        "addresses": [
            {
                "firstname": "Veronica",
                "lastname": "Costello",
                "street": ["6146 Honey Bluff Parkway"],
                "city": "Calder",
                "region": {"region_code": "MI", "region": "Michigan", "region_id": 33},
                "region_id": 33,
                "postcode": "49628-7978",
                "country_id": "US",
                "telephone": "(555) 229-3326",
                "default_billing": True,
                "default_shipping": True,
            }
        ],
    }
    if customer_id is not None:
        customer["id"] = customer_id
    return customer
