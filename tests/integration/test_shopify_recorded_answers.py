"""Recorded Shopify answers, replayed through the sim's control API, handled by the adapter and the
flows (Shopify -> Acumatica, both sims in-process): a ``fulfillmentCreate`` refused with
``userErrors`` fails the shipment with Shopify's message naming the field, and the shipment is then
fulfilled once with its tracking; ``THROTTLED`` is waited out; ``MAX_COST_EXCEEDED`` fails for good;
a recorded authorization is not taken for money paid. The answers and where they come from:
``tests/fixtures/shopify/SOURCES.md`` (the reference holds no complete recorded GraphQL answer, so
the GraphQL ones are the quotes of SYSTEMS-NOTES.md; the transaction is a recorded REST one)."""

from __future__ import annotations

import json
import re
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from erpsync.errors import PermanentError, ValidationFailed
from sandbox.shopify_merchant import Cart
from tests.integration.test_payments_flow import v
from tests.integration.test_shopify_flows import ShopifyShop

FIXTURES = Path(__file__).parent.parent / "fixtures" / "shopify"
GRAPHQL = r"/admin/api/[^/]+/graphql\.json"
D = Decimal


def recorded(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def replay(shop: ShopifyShop, answer: Any, operation: str) -> None:
    """Serve ``answer`` once for the next GraphQL request whose body holds ``operation``."""
    r = shop.shttp.post(
        "/_sim/answers",
        json={"answers": [{"method": "POST", "path_regex": GRAPHQL, "body_contains": operation, "body": answer}]},
    )
    assert r.status_code == 200, r.text


def served(shop: ShopifyShop) -> int:
    """How many requests a recorded answer answered."""
    return sum(1 for r in shop.shttp.get("/_sim/requests").json()["requests"] if r["fault"] == "recorded")


@pytest.fixture
def shop(bindings_table: str) -> ShopifyShop:
    return ShopifyShop(bindings_table)


def test_a_recorded_fulfillment_user_error_fails_the_shipment_naming_the_field_then_it_ships_once(
    shop: ShopifyShop,
) -> None:
    placed = shop.place()
    order_id = placed["legacyResourceId"]
    assert shop.sync(shop.orders, order_id).outcome == "synced"
    shipment = shop.ship_in_acumatica(shop.sales_order(placed["name"]), "1Z999AA10123456784")
    replay(shop, recorded("graphql-fulfillment-create-user-error.json"), "fulfillmentCreate")

    with pytest.raises(ValidationFailed) as refused:
        shop.sync(shop.shipments, shipment, source="acumatica")

    assert str(refused.value) == "shopify fulfillmentCreate refused: fulfillment: Fulfillment order does not exist."
    assert served(shop) == 1 and shop.shttp.get("/_sim/answers").json() == {"answers": []}
    assert shop.merchant.order(order_id)["fulfillments"] == []  # a recorded answer applies nothing

    state = shop.shttp.app.state.sim  # type: ignore[attr-defined]
    answers: list[Any] = []
    original = state.graphql

    def keep_fulfilment_answers(body: Any) -> Any:
        answer = original(body)
        if "fulfillmentCreate" in str(body.get("query")):
            answers.append(answer)
        return answer

    state.graphql = keep_fulfilment_answers
    shipped = shop.sync(shop.shipments, shipment, source="acumatica")  # tried again: Shopify takes it
    state.graphql = original

    assert shipped.outcome == "synced", shipped.message
    [fulfillment] = shop.merchant.order(order_id)["fulfillments"]
    assert fulfillment["trackingInfo"] == [{"company": "UPS", "number": "1Z999AA10123456784"}]
    assert shipped.target_id == fulfillment["id"].rsplit("/", 1)[1]
    # the sim answered in the recorded success answer's shape (its id elided in the recording)
    success = recorded("graphql-fulfillment-create-success.json")["data"]["fulfillmentCreate"]
    [answer] = answers
    got = answer["data"]["fulfillmentCreate"]
    assert got.keys() == success.keys() and got["fulfillment"].keys() == success["fulfillment"].keys()
    assert (got["fulfillment"]["status"], got["userErrors"]) == (success["fulfillment"]["status"], [])
    assert re.fullmatch(r"gid://shopify/Fulfillment/\d+", got["fulfillment"]["id"])
    assert success["fulfillment"]["id"].startswith("gid://shopify/Fulfillment/")
    again = shop.sync(shop.shipments, shipment, source="acumatica")
    assert again.outcome == "skipped" and len(shop.merchant.order(order_id)["fulfillments"]) == 1


def test_recorded_throttled_is_waited_out_and_max_cost_exceeded_fails_for_good(shop: ShopifyShop) -> None:
    placed = shop.place()
    replay(shop, recorded("graphql-throttled.json"), "query Order(")
    start = time.monotonic()

    result = shop.sync(shop.orders, placed["legacyResourceId"])

    assert result.outcome == "synced", result.message
    assert served(shop) == 1
    assert time.monotonic() - start >= 0.5  # (70 asked - 20 left) / 100 a second, from the answer's own status
    assert D(str(v(shop.sales_order(placed["name"])["OrderTotal"]))) == D("97.43")

    other = shop.place(Cart([("24-WG084", 1)]))
    replay(shop, recorded("graphql-max-cost-exceeded.json"), "query Order(")
    with pytest.raises(PermanentError) as refused:
        shop.sync(shop.orders, other["legacyResourceId"])
    assert str(refused.value) == (
        "shopify refused the query as too costly: "
        "Query cost is 1002, which exceeds the single query max cost limit (1000)."
    )
    assert served(shop) == 2
    rows = shop.ahttp.get(
        "/entity/Default/24.200.001/SalesOrder", params={"$filter": f"CustomerOrder eq '{other['name']}'"}
    )
    assert rows.json() == []


def test_a_recorded_authorization_is_not_money_paid_until_the_order_is_paid(shop: ShopifyShop) -> None:
    placed = shop.place(Cart([("24-MB01", 2)], shipping=D("5.00"), paid=False))  # 68 + 5 = 73.00
    authorization = recorded("transaction.json")
    seeded = shop.shttp.post(
        "/_sim/seed", json={"transactions": [{"order": placed["id"], "transaction": authorization}]}
    )
    assert seeded.status_code == 200, seeded.text
    port = shop.shopify.port("order", "source")
    node = port.store.read_order(placed["legacyResourceId"])
    [read] = node["transactions"]
    assert (read["kind"], read["status"], read["gateway"], read["amountSet"]["shopMoney"]["amount"]) == (
        "AUTHORIZATION",
        "SUCCESS",
        "bogus",
        "409.94",
    )
    order = port.get(placed["legacyResourceId"])
    assert (order.paid, order.grand_total, order.status, order.transaction_id) == (D("0.00"), D("73.00"), "pending", "")

    shop.settings.payment_methods["bogus"] = "CREDITCARD"  # Shopify's test gateway, mapped as any other
    assert shop.sync(shop.orders, placed["legacyResourceId"]).outcome == "synced"
    nothing = shop.sync(shop.payments, placed["legacyResourceId"])
    assert nothing.outcome == "filtered" and nothing.message == "nothing captured yet (paid 0 of 73.00)"

    shop.merchant.mark_paid(placed["id"])  # the merchant takes the money: a SALE of what is outstanding
    paid = port.get(placed["legacyResourceId"])
    assert paid.paid == D("73.00") and paid.transaction_id != ""
    result = shop.sync(shop.payments, placed["legacyResourceId"])
    assert result.outcome == "synced", result.message
    assert D(str(v(shop.sales_order(placed["name"])["Totals"]["UnpaidBalance"]))) == 0
