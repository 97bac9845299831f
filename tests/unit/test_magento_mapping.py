"""Magento order JSON to the canonical Order: the real fixture, a built coupon order, bad input."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from erpsync.errors import MappingMissing, ValidationFailed
from erpsync.model import DocumentLine
from erpsync.systems.magento.mapping import document_items, has_marker, order_from_magento, ref_marker
from sandbox.sims.magento_orders import CartLine, Coupon, build_order, sample_catalog, sample_customer

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "magento" / "order_get_V1_orders_3.json"


@pytest.fixture
def real() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())


def test_real_order_maps(real: dict[str, Any]) -> None:
    order = order_from_magento(real)
    assert order.source_id == "3" and order.number == "000000003"
    assert order.currency == "USD" and order.status == "pending" and order.state == "new"
    assert order.created_at == datetime(2017, 8, 21, 22, 22, 19, tzinfo=UTC)
    assert order.customer.email == "jdoe@example.com" and not order.customer.is_guest
    assert order.customer.group == "1" and order.customer.source_id == "3"
    assert order.bill_to.region_code == "NY" and order.ship_to is not None and order.ship_to.postcode == "10577"
    assert order.shipping_method == "tablerate_bestway" and order.payment_method == "banktransfer"
    by_sku = {ln.sku: ln for ln in order.lines}
    hoodie = by_sku["MH01-S-Gray"]
    assert hoodie.unit_price == Decimal("52") and hoodie.line_id == "11" and hoodie.store_line_ids == ["10", "11"]
    assert hoodie.product_type == "configurable"
    # the dynamic bundle's children are the lines; the parent is not
    assert {"24-WG082-blue", "24-WG084", "24-WG086", "24-WG088"} <= set(by_sku)
    assert not any(ln.product_type == "bundle" for ln in order.lines)
    assert by_sku["240-LV08"].product_type == "downloadable"
    assert by_sku["WS12-M-Orange"].line_id == "3"
    assert len(order.lines) == 7
    assert order.freight == Decimal("5") and order.order_discount == 0 and order.paid == 0
    assert order.computed_total() == order.grand_total == Decimal("165")


def test_fixed_price_bundle_is_one_line(real: dict[str, Any]) -> None:
    for item in real["items"]:
        if item.get("parent_item_id") == 5:
            item["price"] = item["base_price"] = 0
    order = order_from_magento(real)
    bundle = next(ln for ln in order.lines if ln.product_type == "bundle")
    assert bundle.line_id == "5" and bundle.unit_price == Decimal("68")
    assert bundle.store_line_ids == ["5", "6", "7", "8", "9"]
    assert order.computed_total() == order.grand_total


@pytest.mark.parametrize(
    "coupon",
    [Coupon("TEN", "percent", 10), Coupon("FIVEOFF", "fixed_cart", "13.37"), Coupon("SHIP", "percent", 15, True)],
)
def test_coupon_order_adds_up(coupon: Coupon) -> None:
    raw = build_order(
        sample_catalog(),
        [CartLine("WS12", 3, "WS12-L-Orange"), CartLine("MH01", 1, "MH01-M-Gray"), CartLine("24-MB04", 2)],
        customer=sample_customer(customer_id=7),
        coupon=coupon,
        shipping_method="tablerate_bestway",
        shipping_amount="15.00",
        tax_rate="8.25",
        captured=True,
        entity_id=41,
        increment_id="000000041",
    )
    order = order_from_magento(raw)
    assert [ln.sku for ln in order.lines] == ["WS12-L-Orange", "MH01-M-Gray", "24-MB04"]
    assert order.lines[0].line_id == "2" and order.lines[0].store_line_ids == ["1", "2"]
    assert sum(ln.discount for ln in order.lines) > 0
    assert order.computed_total() == order.grand_total
    assert order.payment_captured and order.paid == order.grand_total
    if coupon.apply_to_shipping:
        assert order.freight < Decimal("15")


def test_guest_order() -> None:
    raw = build_order(
        sample_catalog(),
        [CartLine("24-MB01")],
        guest_email="Guest@Example.com",
        entity_id=9,
        increment_id="000000009",
        address={
            "firstname": "G",
            "lastname": "S",
            "street": ["1 Main"],
            "city": "X",
            "postcode": "1",
            "country_id": "DE",
        },
    )
    order = order_from_magento(raw)
    assert order.customer.is_guest and order.customer.email == "guest@example.com" and order.customer.group == "0"


def test_order_discount_not_on_lines(real: dict[str, Any]) -> None:
    real["discount_amount"] = real["base_discount_amount"] = -10
    real["grand_total"] = real["base_grand_total"] = 155
    order = order_from_magento(real)
    assert order.order_discount == Decimal("10")
    assert order.computed_total() == Decimal("155")


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda o: o.pop("increment_id"), "increment_id"),
        (lambda o: o.pop("order_currency_code"), "order_currency_code"),
        (lambda o: o.__setitem__("customer_email", "not-an-email"), "customer_email"),
        (lambda o: o.__setitem__("items", []), "items"),
        (lambda o: o["items"][0].__setitem__("base_price", "abc"), "base_price"),
        (lambda o: o["items"][0].pop("qty_ordered"), "qty_ordered"),
        (lambda o: (o.pop("grand_total"), o.pop("base_grand_total")), "grand_total"),
        (lambda o: o.pop("billing_address"), "billing_address"),
        (lambda o: o.__setitem__("created_at", "yesterday"), "created_at"),
    ],
)
def test_bad_input_names_the_field(real: dict[str, Any], mutate: Any, field: str) -> None:
    broken = copy.deepcopy(real)
    mutate(broken)
    with pytest.raises(ValidationFailed, match=field):
        order_from_magento(broken)


def test_document_items_and_marker() -> None:
    lines = [
        DocumentLine(order_number="SO1", qty=Decimal("1"), store_line_id="11"),
        DocumentLine(order_number="SO1", qty=Decimal("2"), store_line_id="11"),
        DocumentLine(order_number="SO1", qty=Decimal("0.5"), store_line_id="3"),
    ]
    assert document_items(lines, "shipment") == [{"order_item_id": 11, "qty": 3}, {"order_item_id": 3, "qty": 0.5}]
    with pytest.raises(MappingMissing):
        document_items([DocumentLine(order_number="SO1", qty=Decimal("1"))], "shipment")
    record = {"comments": [{"comment": f"Shipped {ref_marker('SH1')}"}]}
    assert has_marker(record, "SH1") and not has_marker(record, "SH10") and not has_marker({}, "SH1")


def test_an_order_in_another_currency_goes_in_the_base_currency_or_with_its_rate() -> None:
    """The merchant FAQ's rule: the website's base currency by default (``base_*``), or what the
    customer paid in with Magento's rate (``MagentoSettings.amounts`` "order")."""
    from sandbox.sims.magento_orders import build_order_in_currency

    raw = build_order_in_currency(
        sample_catalog(),
        [CartLine("WS12", 3, "WS12-L-Orange"), CartLine("24-MB04", 2)],
        customer=sample_customer(customer_id=7),
        coupon=Coupon("FIVEOFF", "fixed_cart", "13.37"),
        shipping_amount="15.00",
        tax_rate="8.25",
        order_currency="EUR",
        rate="0.9234",
        entity_id=41,
        increment_id="000000041",
    )
    assert raw["base_currency_code"] == "USD" and raw["order_currency_code"] == "EUR"
    assert raw["base_grand_total"] != raw["grand_total"]
    base = order_from_magento(raw)
    assert base.currency == "USD" and base.exchange_rate is None
    assert base.grand_total == Decimal(str(raw["base_grand_total"])) == base.computed_total()
    assert base.freight == Decimal("15.00")
    paid_in = order_from_magento(raw, "order")
    assert paid_in.currency == "EUR" and paid_in.exchange_rate == Decimal("0.9234")
    assert paid_in.grand_total == Decimal(str(raw["grand_total"])) == paid_in.computed_total()
    assert paid_in.freight == Decimal("13.85")  # 15.00 x 0.9234, to the cent
    # a payload without the base amounts cannot be read in the base currency: it says which field
    broken = copy.deepcopy(raw)
    broken.pop("base_grand_total")
    with pytest.raises(ValidationFailed, match=r"base_grand_total.*EUR.*USD"):
        order_from_magento(broken)
