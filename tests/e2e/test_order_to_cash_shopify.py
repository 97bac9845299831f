"""Order to cash on the local stack with Shopify as the store: Shopify -> Acumatica -> Shopify,
exactly once, to the cent, with the shop's webhooks (signed, some delivered twice) and the polls
both bringing the same orders.

The stack runs template.yaml with ``StoreSystem=shopify`` (``LocalStack(store="shopify")``, what
``erpsync local up --store shopify`` starts); the Shopify sim is subscribed to the stack's webhook
API as a merchant's app would be.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from sandbox.local.stack import LocalStack
from sandbox.shopify_merchant import Cart, ShopifyMerchant
from sandbox.story import AcumaticaUser
from tests.support.pair_story import running_stack

pytestmark = pytest.mark.e2e
D = Decimal


def v(field: Any) -> Any:
    return field.get("value") if isinstance(field, dict) else field


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    yield from running_stack("shopify", "acumatica", tmp_path_factory.mktemp("stack") / "local.json")


@pytest.fixture(scope="module")
def merchant(stack: LocalStack) -> Iterator[ShopifyMerchant]:
    http = httpx.Client(base_url=stack.sim_urls["shopify"], timeout=30)
    http.post("/_sim/seed", json={"webhooks": {"duplicate_rate": 0.5, "reorder": True, "seed": 3}})
    yield ShopifyMerchant(http, stack.credentials["shopify"]["access_token"])
    http.close()


@pytest.fixture(scope="module")
def clerk(stack: LocalStack) -> Iterator[AcumaticaUser]:
    user = AcumaticaUser(**stack.credentials["acumatica"])
    yield user
    user.close()


def drain(flow: str, *, poll: bool = True) -> list[str]:
    from erpsync.runtime.lambda_app import build

    rt = build(flow)
    if poll:
        rt.poll()
    return [o.outcome for o in rt.drain()]


def flush(merchant: ShopifyMerchant) -> None:
    assert merchant.http.post("/_sim/webhooks/flush").json()["flushed"]


CARTS = [
    Cart([("24-MB01", 2), ("WS12-M-Orange", 1)], discount=D("10.00"), shipping=D("10.00"), tax_rate=D("0.0825")),
    Cart([("24-WG084", 3)], shipping=D("5.00"), tax_rate=D("0.06")),
    Cart([("MH01-S-Gray", 1)], discount=D("7.77"), tax_rate=D("0.0725")),
    Cart([("24-MB04", 1), ("24-WG088", 2)], shipping=D("12.50")),
    Cart([("WS12-L-Orange", 2)], paid=False, gateway="manual", tax_rate=D("0.05")),
    Cart([("24-MB01", 1)], shipping=D("4.99"), tax_rate=D("0.0825"), note="Leave at the back door"),
]


def test_webhooks_and_polls_bring_each_order_once_to_the_cent(
    stack: LocalStack, merchant: ShopifyMerchant, clerk: AcumaticaUser
) -> None:
    placed = [merchant.place(f"shopper{n}@example.com", cart) for n, cart in enumerate(CARTS)]
    flush(merchant)
    deliveries = merchant.http.get("/_sim/webhooks").json()["deliveries"]
    assert deliveries and all(d["status"] == 202 for d in deliveries), deliveries[:3]
    assert len({d["webhook_id"] for d in deliveries}) < len(deliveries)  # some came twice
    outcomes = drain("orders", poll=False)  # what the webhooks queued
    assert outcomes.count("synced") == len(CARTS), outcomes
    assert "synced" not in drain("orders")  # the poll finds the same orders: nothing more
    for order in placed:
        [so] = clerk.orders_for(order["name"])
        assert D(str(v(so["OrderTotal"]))) == D(order["totalPriceSet"]["shopMoney"]["amount"]), order["name"]
    [with_note] = clerk.orders_for(placed[-1]["name"])
    assert "Leave at the back door" in str(v(with_note.get("note")) or "")


def test_payments_shipments_and_a_cancel_travel_once(
    stack: LocalStack, merchant: ShopifyMerchant, clerk: AcumaticaUser
) -> None:
    assert drain("payments").count("synced") == len(CARTS) - 1  # the unpaid one waits
    names = [o["name"] for o in merchant.graphql("{ orders(first: 20) { nodes { name } } }")["orders"]["nodes"]]
    first, second = names[0], names[1]
    for number, tracking in ((first, "1ZE2E0001"), (second, "1ZE2E0002")):
        [so] = clerk.orders_for(number)
        clerk.action(
            "SalesOrder",
            "SalesOrderCreateShipment",
            {"id": so["id"]},
            {"WarehouseID": {"value": "WHOLESALE"}},
        )
        fresh = clerk.get(f"SalesOrder/{v(so['OrderType'])}/{v(so['OrderNbr'])}", "$expand=Shipments")
        nbr = str(v(fresh["Shipments"][-1]["ShipmentNbr"]))
        clerk.put("Shipment", {"ShipmentNbr": {"value": nbr}, "Packages": [{"TrackingNbr": {"value": tracking}}]})
        clerk.action("Shipment", "ConfirmShipment", {"ShipmentNbr": {"value": nbr}})
    assert drain("shipments").count("synced") == 2
    rows = merchant.graphql(
        "{ orders(first: 20) { nodes { name displayFulfillmentStatus "
        "fulfillments(first: 5) { trackingInfo { number } } } } }"
    )["orders"]["nodes"]
    by_name = {r["name"]: r for r in rows}
    assert by_name[first]["displayFulfillmentStatus"] == "FULFILLED"
    assert [t["number"] for f in by_name[first]["fulfillments"] for t in f["trackingInfo"]] == ["1ZE2E0001"]
    flush(merchant)  # the fulfilments' own orders/updated webhooks come back: echoes, nothing written
    assert "synced" not in drain("orders", poll=False)

    unpaid = next(
        o
        for o in merchant.graphql("{ orders(first: 20) { nodes { id name displayFinancialStatus } } }")["orders"][
            "nodes"
        ]
        if o["displayFinancialStatus"] == "PENDING"
    )
    merchant.cancel(unpaid["id"])
    flush(merchant)
    assert drain("cancellations").count("synced") == 1
    [so] = clerk.orders_for(unpaid["name"])
    assert v(so["Status"]) == "Canceled"

    for flow in ("orders", "payments", "shipments", "cancellations", "erp-cancellations"):
        assert "synced" not in drain(flow), flow
    assert drain("invoices") == []  # no invoice released in Acumatica: no order to mark paid
    assert os.environ.get("STORE_SYSTEM") in (None, "shopify")
