"""The first sync of a shop's order history (``erpsync load orders``) reads the orders whole in one
bulk query operation: the sim runs the query against its own orders and answers JSON Lines with
the lines and shipping lines as rows of their own (``__parentId``), erpsync puts each order back
together and hands it to the orders flow in its notice, so no order is read again. What comes out
is, field for field, what the paged read gives for the same orders."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from starlette.testclient import TestClient

from erpsync.errors import PermanentError
from erpsync.systems.shopify.adapter import ShopifySystem, assemble
from erpsync.systems.shopify.client import ShopifyClient
from erpsync.systems.shopify.mapping import ORDER_CHILDREN, bulk_orders_query
from erpsync.systems.shopify.settings import ShopifySettings
from sandbox.shopify_merchant import Cart, ShopifyMerchant
from sandbox.sims import shopify as shop_sim
from tests.integration.test_payments_flow import v
from tests.integration.test_shopify_flows import ShopifyShop

BEGINNING = datetime(2000, 1, 1, tzinfo=UTC)
D = Decimal
EMAIL = "roni_cost@example.com"
RUN = """
mutation Run($q: String!) {
  bulkOperationRunQuery(query: $q) { bulkOperation { id } userErrors { field message code } }
}"""
STATE = "query { currentBulkOperation { status url } }"
MANY = [f"BULK-{n:02}" for n in range(60)]


def history(merchant: ShopifyMerchant, http: TestClient) -> dict[str, dict[str, Any]]:
    """A shop's orders as a day would leave them: paid with a discount code, shipping and tax;
    unpaid; marked paid by hand; part refunded; cancelled; one of 60 lines (two pages of lines
    when read page by page)."""
    http.post(
        "/_sim/seed",
        json={"products": [{"title": f"Bulk {sku}", "variants": [{"sku": sku, "price": "1.25"}]} for sku in MANY]},
    )
    made = {
        "paid": merchant.place(
            EMAIL,
            Cart(
                [("24-MB01", 2), ("WS12-M-Orange", 1)], discount=D("10.00"), shipping=D("10.00"), tax_rate=D("0.0825")
            ),
        ),
        "unpaid": merchant.place(EMAIL, Cart([("24-WG084", 1)], paid=False)),
        "by hand": merchant.place(EMAIL, Cart([("24-WG088", 3)], shipping=D("5.00"), paid=False, gateway="manual")),
        "refunded": merchant.place(EMAIL, Cart([("24-MB01", 2)], tax_rate=D("0.06"))),
        "cancelled": merchant.place(EMAIL, Cart([("24-WG084", 2)], paid=False)),
        "sixty lines": merchant.place(EMAIL, Cart([(sku, 1) for sku in MANY], shipping=D("7.50"))),
    }
    merchant.mark_paid(made["by hand"]["id"])
    merchant.refund(made["refunded"]["legacyResourceId"], [("24-MB01", 1)])
    merchant.cancel(made["cancelled"]["id"])
    return made


def operations(http: TestClient) -> list[str]:
    return [str(q["operation"]) for q in http.get("/_sim/costs").json()["queries"]]


def test_the_bulk_read_orders_are_the_paged_read_orders_field_for_field() -> None:
    http = TestClient(shop_sim.create_app(), base_url="http://shop")
    http.post("/_sim/seed", json=shop_sim.sample_seed())
    merchant = ShopifyMerchant(http, shop_sim.ACCESS_TOKEN)
    made = history(merchant, http)
    system = ShopifySystem(
        ShopifyClient("http://shop", lambda: shop_sim.ACCESS_TOKEN, http=http), "shopify", ShopifySettings
    )
    port = system.port("order", "source")
    before = len(operations(http))

    pages = list(port.load_pages(BEGINNING))

    read = operations(http)[before:]
    assert read.count("Bulk") == 1 and not {"Order", "OrderLines", "Orders"} & set(read)  # one file, no order read
    notices = [n for p in pages for n in p.notices]
    assert sorted(n.id for n in notices) == sorted(o["legacyResourceId"] for o in made.values())
    assert all(n.snapshot is not None and n.read_at is not None for n in notices)
    polled = {n.id: n.version for p in port.changes(BEGINNING) for n in p.notices}
    assert {n.id: n.version for n in notices} == polled  # the same records at the same versions
    store = system.port("order", "source").store
    for notice in notices:
        assert notice.snapshot is not None
        bulk = port.get(notice.id, notice.snapshot)
        paged = port.get(notice.id)
        assert bulk.model_dump() == paged.model_dump(), bulk.number
        # and the raw answers: every amount the same string, every id the same GID
        node = store.read_order(notice.id)
        for key, value in node.items():
            if key == "shippingLines":
                assert [{k: s[k] for k in value["nodes"][0]} for s in notice.snapshot[key]["nodes"]] == value["nodes"]
            elif key == "lineItems":
                assert notice.snapshot[key]["nodes"] == value["nodes"]
            else:
                assert notice.snapshot[key] == value, key
    by_number = {o.number: o for o in (port.get(n.id, n.snapshot) for n in notices)}
    paid = by_number[made["paid"]["name"]]
    assert (paid.grand_total, paid.paid, paid.tax_total, paid.freight) == (D("97.43"), D("97.43"), D("7.43"), 10)
    assert int(paid.source_id) > 2**53 and all(int(ln.line_id) > 2**53 for ln in paid.lines)
    assert isinstance(paid.transaction_id, str) and int(paid.transaction_id) > 2**53
    sixty = by_number[made["sixty lines"]["name"]]
    assert len(sixty.lines) == 60 and sixty.grand_total == D("82.50")  # 60 x 1.25 + 7.50
    assert operations(http).count("OrderLines") == 2  # both paged reads above needed a second page of lines
    assert by_number[made["unpaid"]["name"]].paid == 0
    assert by_number[made["by hand"]["name"]].paid == by_number[made["by hand"]["name"]].grand_total
    assert by_number[made["cancelled"]["name"]].status == "canceled"


def test_a_load_resumes_on_the_same_file_after_a_page() -> None:
    http = TestClient(shop_sim.create_app(), base_url="http://shop")
    http.post("/_sim/seed", json=shop_sim.sample_seed())
    merchant = ShopifyMerchant(http, shop_sim.ACCESS_TOKEN)
    for sku in ("24-MB01", "24-WG084", "24-WG088"):
        merchant.place(EMAIL, Cart([(sku, 1)]))
    system = ShopifySystem(
        ShopifyClient("http://shop", lambda: shop_sim.ACCESS_TOKEN, http=http),
        "shopify",
        lambda: ShopifySettings(page_size=2),
    )
    port = system.port("order", "source")
    pages = list(port.load_pages(BEGINNING))
    assert [len(p.notices) for p in pages] == [2, 1]
    assert pages[0].checkpoint is None and pages[-1].checkpoint is not None
    rest = list(port.load_pages(BEGINNING, pages[0].position))
    assert [n.id for p in rest for n in p.notices] == [n.id for n in pages[1].notices]
    assert rest[-1].notices[0].snapshot == pages[1].notices[0].snapshot
    assert operations(http).count("Bulk") == 1  # the same file, not a second operation
    later = list(port.load_pages(datetime.now(UTC) + timedelta(minutes=1)))
    assert [len(p.notices) for p in later] == [0]  # nothing matched: no file


@pytest.fixture
def shop(bindings_table: str) -> ShopifyShop:
    return ShopifyShop(bindings_table)


def test_the_orders_flow_writes_a_loaded_order_from_its_notice_without_reading_it_again(shop: ShopifyShop) -> None:
    placed = shop.place()  # 97.43 with a discount code, shipping and tax, paid
    other = shop.merchant.place(EMAIL, Cart([("24-WG084", 2)], paid=False))
    port = shop.shopify.port("order", "source")
    notices = {n.id: n for p in port.load_pages(BEGINNING) for n in p.notices}
    before = len(operations(shop.shttp))

    result = shop.orders.sync(notices[placed["legacyResourceId"]])

    assert result.outcome == "synced", result.message
    assert "Order" not in operations(shop.shttp)[before:]  # the notice carried the order
    so = shop.sales_order(placed["name"])
    assert D(str(v(so["OrderTotal"]))) == D("97.43") and D(str(v(so["TaxTotal"]))) == D("7.43")
    paid = shop.sync(shop.payments, placed["legacyResourceId"])
    assert paid.outcome == "synced", paid.message
    # a notice read longer ago than snapshot_max_age_s is not trusted: the order is read again
    stale = notices[other["legacyResourceId"]]
    assert stale.read_at is not None
    old = stale.model_copy(update={"read_at": stale.read_at - timedelta(seconds=shop.settings.snapshot_max_age_s + 1)})
    before = len(operations(shop.shttp))
    assert shop.orders.sync(old).outcome == "synced"
    assert "Order" in operations(shop.shttp)[before:]


def bulk_file(http: TestClient, query: str) -> list[dict[str, Any]]:
    merchant = ShopifyMerchant(http, shop_sim.ACCESS_TOKEN)
    made = merchant.graphql(RUN, {"q": query})["bulkOperationRunQuery"]
    assert made["userErrors"] == [], made
    merchant.graphql(STATE)  # RUNNING at the first look, done at the next
    state = merchant.graphql(STATE)["currentBulkOperation"]
    assert state["status"] == "COMPLETED"
    return [json.loads(line) for line in http.get(state["url"]).text.splitlines()]


def test_a_bulk_file_whose_rows_do_not_follow_their_order_is_refused_naming_the_row() -> None:
    http = TestClient(shop_sim.create_app(), base_url="http://shop")
    http.post("/_sim/seed", json=shop_sim.sample_seed())
    merchant = ShopifyMerchant(http, shop_sim.ACCESS_TOKEN)
    first = merchant.place(EMAIL, Cart([("24-MB01", 1), ("24-WG084", 1)], shipping=D("5.00")))
    merchant.place(EMAIL, Cart([("24-WG088", 1)]))
    rows = bulk_file(http, bulk_orders_query("updated_at:>'2000-01-01T00:00:00Z'"))
    assert [r.get("__parentId") for r in rows[:4]] == [None, first["id"], first["id"], first["id"]]
    orders = list(assemble(iter(rows), ORDER_CHILDREN, "shopify"))
    assert [(len(o["lineItems"]["nodes"]), len(o["shippingLines"]["nodes"])) for o in orders] == [(2, 1), (1, 0)]
    # a line of the first order written after the second order
    shuffled = [rows[0], rows[2], rows[3], *rows[4:], rows[1]]
    with pytest.raises(PermanentError, match=rf"row {rows[1]['id']} of {first['id']} does not follow its parent"):
        list(assemble(iter(shuffled), ORDER_CHILDREN, "shopify"))
    # a child row of a kind the query did not ask for
    with pytest.raises(PermanentError, match=r"row 'gid://shopify/ShippingLine/\d+' of .* is none of LineItem$"):
        list(assemble(iter(rows), {"LineItem": "lineItems"}, "shopify"))


def test_the_sim_refuses_bulk_queries_over_the_connection_limits() -> None:
    http = TestClient(shop_sim.create_app(), base_url="http://shop")
    merchant = ShopifyMerchant(http, shop_sim.ACCESS_TOKEN)
    deep = (
        "{ orders { edges { node { id fulfillmentOrders { edges { node { id "
        "lineItems { edges { node { id } } } } } } } } } }"
    )
    [error] = merchant.graphql(RUN, {"q": deep})["bulkOperationRunQuery"]["userErrors"]
    assert error["code"] == "INVALID" and "connection lineItems is nested 3 deep; at most 2" in error["message"]
    wide = (
        "{ orders { edges { node { id lineItems { edges { node { id } } } shippingLines { edges { node { id } } } "
        "discountApplications { edges { node { index } } } fulfillmentOrders { edges { node { id } } } "
        "returns { edges { node { id } } } } } } }"
    )
    [error] = merchant.graphql(RUN, {"q": wide})["bulkOperationRunQuery"]["userErrors"]
    assert "it selects 6 connections; at most 5 are allowed" in error["message"]
    none = "{ shop { name } }"
    [error] = merchant.graphql(RUN, {"q": none})["bulkOperationRunQuery"]["userErrors"]
    assert "must select at least one connection" in error["message"]
