"""Bulk query operations: the sim runs ``bulkOperationRunQuery`` as Shopify does (one at a time,
JSON Lines with ``__parentId``), and an initial load of Shopify customers reads them in one bulk
operation instead of page by page, resumable after a page."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from starlette.testclient import TestClient

from erpsync.systems.shopify.adapter import ShopifySystem
from erpsync.systems.shopify.client import ShopifyClient
from erpsync.systems.shopify.settings import ShopifySettings
from sandbox.shopify_merchant import Cart, ShopifyMerchant
from sandbox.sims import shopify as shop_sim

BEGINNING = datetime(2000, 1, 1, tzinfo=UTC)
RUN = """
mutation Run($q: String!) {
  bulkOperationRunQuery(query: $q) { bulkOperation { id status } userErrors { field message code } }
}"""
STATE = "query { currentBulkOperation { id status objectCount rootObjectCount url } }"


def shop() -> tuple[TestClient, ShopifyMerchant]:
    http = TestClient(shop_sim.create_app(), base_url="http://shop")
    http.post("/_sim/seed", json=shop_sim.sample_seed())
    return http, ShopifyMerchant(http, shop_sim.ACCESS_TOKEN)


def test_a_bulk_query_runs_one_at_a_time_and_writes_nested_nodes_with_their_parent() -> None:
    http, merchant = shop()
    placed = merchant.place("roni_cost@example.com", Cart([("24-MB01", 2), ("WS12-M-Orange", 1)]))
    query = "{ orders { edges { node { id name lineItems { edges { node { id sku quantity } } } } } } }"
    made = merchant.graphql(RUN, {"q": query})["bulkOperationRunQuery"]
    assert made["userErrors"] == [] and made["bulkOperation"]["status"] == "RUNNING"
    again = merchant.graphql(RUN, {"q": query})["bulkOperationRunQuery"]
    assert [e["code"] for e in again["userErrors"]] == ["OPERATION_IN_PROGRESS"]
    state = merchant.graphql(STATE)["currentBulkOperation"]
    assert state["status"] == "RUNNING"
    state = merchant.graphql(STATE)["currentBulkOperation"]
    assert (state["status"], state["objectCount"], state["rootObjectCount"]) == ("COMPLETED", "3", "1")
    rows = [json.loads(line) for line in http.get(state["url"]).text.splitlines()]
    assert rows[0] == {"id": placed["id"], "name": placed["name"]}
    assert sorted((r["sku"], r["quantity"], r["__parentId"]) for r in rows[1:]) == [
        ("24-MB01", 2, placed["id"]),
        ("WS12-M-Orange", 1, placed["id"]),
    ]
    bad = merchant.graphql(RUN, {"q": "{ orders { edges { node { nosuchfield } } } }"})["bulkOperationRunQuery"]
    assert bad["bulkOperation"] is None and bad["userErrors"][0]["code"] == "INVALID"
    assert "nosuchfield" in bad["userErrors"][0]["message"]


def test_an_initial_load_of_customers_reads_them_in_one_bulk_operation_and_resumes_after_a_page() -> None:
    http, _ = shop()
    customers = [{"email": f"c{n:02}@example.com", "firstName": f"C{n}", "lastName": "Shopper"} for n in range(30)]
    http.post("/_sim/seed", json={"customers": customers})
    system = ShopifySystem(
        ShopifyClient("http://shop", lambda: shop_sim.ACCESS_TOKEN, http=http), "shopify", ShopifySettings
    )
    port = system.port("customer", "source")
    pages = list(port.load_pages(BEGINNING))
    assert [len(p.notices) for p in pages] == [25, 6]  # 30 and the seeded Veronica, 25 a page
    assert pages[0].checkpoint is None and pages[-1].checkpoint is not None
    ids = {n.id for p in pages for n in p.notices}
    assert len(ids) == 31 and all(i.isdigit() and int(i) > 2**53 for i in ids)
    operations = [q["operation"] for q in http.get("/_sim/costs").json()["queries"]]
    assert operations.count("Bulk") == 1 and "Customers" not in operations  # no paged reads
    # a load stopped after its first page resumes from that page's position, on the same file
    rest = list(port.load_pages(BEGINNING, pages[0].position))
    assert [n.id for p in rest for n in p.notices] == [n.id for n in pages[1].notices]
    operations = [q["operation"] for q in http.get("/_sim/costs").json()["queries"]]
    assert operations.count("Bulk") == 1
    # nothing changed since: no file, no notices
    later = list(port.load_pages(datetime.now(UTC)))
    assert [len(p.notices) for p in later] == [0]
