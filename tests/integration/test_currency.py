"""An order paid in a currency other than the website's base one, through both sims: the ERP gets
the base currency's amounts by default (the merchant FAQ's rule), or the order currency with its
rate; either way the sales order and its payment add up to the cent."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from sandbox.sims import magento_orders as mo
from tests.integration.test_payments_flow import Shop, v

D = Decimal


def place_in_euros(shop: Shop) -> dict[str, Any]:
    order = mo.build_order_in_currency(
        shop.catalog,
        [mo.CartLine("24-MB01", 2), mo.CartLine("24-WG084", 1)],
        customer=shop.customer,
        shipping_amount="7.50",
        payment_method="braintree",
        captured=True,
        order_currency="EUR",
        rate="0.9234",
    )
    [saved] = shop.mhttp.post("/_sim/seed", json={"orders": [order]}).json()["orders"]
    return dict(shop.mhttp_get(f"/V1/orders/{saved['entity_id']}"))


@pytest.mark.parametrize("amounts", ["base", "order"])
def test_an_order_in_euros_lands_in_the_chosen_currency_to_the_cent(bindings_table: str, amounts: str) -> None:
    shop = Shop(bindings_table)
    shop.magento.store.amounts = lambda: amounts
    order = place_in_euros(shop)
    assert order["order_currency_code"] == "EUR" and order["base_currency_code"] == "USD"
    assert shop.sync(shop.orders, order).outcome == "synced"
    assert shop.sync(shop.payments, order).outcome == "synced"
    so = shop.sales_order(order["increment_id"])
    [payment] = shop.erp_payments()
    if amounts == "base":
        currency, total = "USD", D(str(order["base_grand_total"]))
        assert "CurrencyRate" not in so or v(so.get("CurrencyRate")) in (None, 1)
    else:
        currency, total = "EUR", D(str(order["grand_total"]))
        assert D(str(v(so["ReciprocalRate"]))) == D("0.9234")
        assert D(str(v(so["CurrencyRate"]))) == (1 / D("0.9234")).quantize(D("0.00000001"))
    assert v(so["CurrencyID"]) == currency and v(payment["CurrencyID"]) == currency
    assert D(str(v(so["OrderTotal"]))) == total
    assert D(str(v(payment["PaymentAmount"]))) == total
    assert D(str(v(so["Totals"]["UnpaidBalance"]))) == 0
