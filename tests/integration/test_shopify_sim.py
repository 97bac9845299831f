"""The Shopify sim speaks the Admin GraphQL API as Shopify does, checked against the official
2025-01 schema, and erpsync's client and webhook receiver handle what it (and Shopify) send:
schema errors, THROTTLED and MAX_COST_EXCEEDED with HTTP 200, userErrors, rotating refresh
tokens, and signed webhooks delivered at least once, forged and replayed ones refused.

Real recorded payloads (tests/fixtures/shopify, see SOURCES.md) are parsed as webhooks.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from erpsync.errors import AuthError, PermanentError, RateLimitedError
from erpsync.systems.plugin import BadWebhook
from erpsync.systems.shopify import webhooks
from erpsync.systems.shopify.adapter import ORDERS_QUERY
from erpsync.systems.shopify.client import ShopifyClient, UserErrors
from erpsync.systems.shopify.mapping import ORDER_QUERY
from sandbox.local.stack import ServerThread
from sandbox.shopify_merchant import Cart, ShopifyMerchant
from sandbox.sims import shopify as sim

FIXTURES = Path(__file__).parent.parent / "fixtures" / "shopify"
GQL = "/admin/api/2025-01/graphql.json"
H = {"X-Shopify-Access-Token": sim.ACCESS_TOKEN}


@pytest.fixture
def shop() -> TestClient:
    client = TestClient(sim.create_app(), base_url="http://shop")
    client.post("/_sim/seed", json=sim.sample_seed())
    return client


def ask(shop: TestClient, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    r = shop.post(GQL, json={"query": query, "variables": variables or {}}, headers=H)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_a_query_the_schema_refuses_is_answered_with_its_errors_and_no_data(shop: TestClient) -> None:
    body = ask(shop, "{ orders(first: 1) { nodes { id colour } } }")
    assert "data" not in body
    assert body["errors"][0]["message"] == "Cannot query field 'colour' on type 'Order'."
    body = ask(shop, "mutation { orderMarkAsPaid(input: {}) { order { id } } }")
    assert "to include required field 'id'" in body["errors"][0]["message"]


def test_every_query_erpsync_sends_is_valid_and_affordable(shop: TestClient) -> None:
    """The adapter's order read costs what the client expects, far under the 1000-point cap."""
    merchant = ShopifyMerchant(shop, sim.ACCESS_TOKEN)
    placed = merchant.place("a@example.com", Cart([("24-MB01", 1)], shipping=Decimal("5")))
    body = ask(shop, ORDER_QUERY, {"id": placed["id"]})
    assert "errors" not in body, body
    assert body["extensions"]["cost"]["requestedQueryCost"] <= 200
    body = ask(shop, ORDERS_QUERY, {"first": 25, "query": "updated_at:>'2020-01-01T00:00:00Z'"})
    assert [n["name"] for n in body["data"]["orders"]["nodes"]] == [placed["name"]]
    assert body["extensions"]["cost"]["throttleStatus"]["maximumAvailable"] == 2000.0


def test_throttled_is_http_200_without_data_and_the_client_gives_the_record_back_to_the_queue(
    shop: TestClient,
) -> None:
    shop.post("/_sim/seed", json={"throttle": {"maximum": 60, "restore_rate": 1}})
    big = "{ orders(first: 50) { nodes { id lineItems(first: 1) { nodes { id } } } } }"
    body = ask(shop, big)
    assert body["errors"][0]["extensions"]["code"] == "THROTTLED" and "data" not in body
    assert body["extensions"]["cost"]["actualQueryCost"] is None
    client = ShopifyClient("http://shop", lambda: sim.ACCESS_TOKEN, http=shop)
    with pytest.raises(RateLimitedError) as caught:
        client.query(big, cost=152)
    assert caught.value.retry_after and caught.value.retry_after > 5  # the bucket refills 1 point a second


def test_a_query_over_the_cost_cap_is_refused_for_good(shop: TestClient) -> None:
    client = ShopifyClient("http://shop", lambda: sim.ACCESS_TOKEN, http=shop)
    with pytest.raises(PermanentError, match="exceeds the single query max cost limit"):
        client.query("{ orders(first: 250) { nodes { lineItems(first: 250) { nodes { id } } } } }")


def test_user_errors_name_the_field(shop: TestClient) -> None:
    client = ShopifyClient("http://shop", lambda: sim.ACCESS_TOKEN, http=shop)
    fulfil = "mutation($f: FulfillmentInput!) { fulfillmentCreate(fulfillment: $f) { userErrors { field message } } }"
    with pytest.raises(UserErrors, match="fulfillment: Fulfillment order does not exist"):
        client.mutate(
            fulfil,
            {"f": {"lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": "gid://shopify/FulfillmentOrder/1"}]}},
            "fulfillmentCreate",
        )


def test_a_wrong_token_is_401(shop: TestClient) -> None:
    r = shop.post(GQL, json={"query": "{ shop { name } }"}, headers={"X-Shopify-Access-Token": "shpat_wrong"})
    assert r.status_code == 401 and "Invalid API key or access token" in r.json()["errors"]


def test_refresh_tokens_rotate_and_the_one_before_dies_once_the_new_one_is_used(shop: TestClient) -> None:
    first = shop.post("/_sim/seed", json={"token": {"expires_in": 3600}}).json()["token"]
    form = {"client_id": sim.CLIENT_ID, "client_secret": sim.CLIENT_SECRET, "grant_type": "refresh_token"}
    second = shop.post("/admin/oauth/access_token", data={**form, "refresh_token": first["refresh_token"]}).json()
    assert second["refresh_token"] != first["refresh_token"] and second["expires_in"] == 3600
    r = shop.post(
        GQL,
        json={"query": "{ locations(first: 1) { nodes { id } } }"},
        headers={"X-Shopify-Access-Token": second["access_token"]},
    )
    assert r.status_code == 200
    # until the new refresh token is used, the old one still works (a refresher that lost the answer)
    again = shop.post("/admin/oauth/access_token", data={**form, "refresh_token": first["refresh_token"]})
    assert again.status_code == 200
    third = shop.post("/admin/oauth/access_token", data={**form, "refresh_token": again.json()["refresh_token"]})
    assert third.status_code == 200
    dead = shop.post("/admin/oauth/access_token", data={**form, "refresh_token": first["refresh_token"]})
    assert dead.status_code == 400 and dead.json()["error"] == "invalid_grant"


# -------------------------------------------------------------------------------- webhooks


class Inbox:
    """A real HTTP endpoint the sim delivers webhooks to."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[tuple[bytes, dict[str, str]]] = []
        self.lock = threading.Lock()

        async def take(request: Request) -> Response:
            body = await request.body()
            with self.lock:
                self.received.append((body, {k.lower(): v for k, v in request.headers.items()}))
            return Response(status_code=self.status)

        self.server = ServerThread(Starlette(routes=[Route("/hook", take, methods=["POST"])]), "inbox")

    @property
    def url(self) -> str:
        return f"{self.server.url}/hook"


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    box = Inbox()
    box.server.start()
    yield box
    box.server.stop()


def test_webhooks_are_signed_and_erpsync_takes_them_once_per_delivery(shop: TestClient, inbox: Inbox) -> None:
    merchant = ShopifyMerchant(shop, sim.ACCESS_TOKEN)
    merchant.subscribe(inbox.url, ("ORDERS_CREATE", "ORDERS_PAID"))
    shop.post("/_sim/seed", json={"webhooks": {"duplicate_rate": 1.0}})  # every delivery twice
    placed = merchant.place("b@example.com", Cart([("24-MB01", 1)]))
    assert shop.post("/_sim/webhooks/flush").json()["flushed"]
    topics = sorted(h["x-shopify-topic"] for _, h in inbox.received)
    assert topics == ["orders/create", "orders/create", "orders/paid", "orders/paid"]
    notices = [webhooks.receive(sim.CLIENT_SECRET, body, headers)[0] for body, headers in inbox.received]
    assert {n["id"] for n in notices} == {placed["legacyResourceId"]}
    assert {n["entity"] for n in notices} == {"order"}
    # a duplicate carries the same webhook id: the ingress keeps the first and drops the second
    assert len({n["event_id"] for n in notices}) == 2


def test_forged_replayed_and_malformed_webhooks_are_refused(shop: TestClient, inbox: Inbox) -> None:
    merchant = ShopifyMerchant(shop, sim.ACCESS_TOKEN)
    merchant.subscribe(inbox.url, ("ORDERS_CREATE",))
    merchant.place("c@example.com", Cart([("24-MB01", 1)]))
    assert shop.post("/_sim/webhooks/flush").json()["flushed"]
    [(body, headers)] = inbox.received
    tampered = body.replace(b'"total_price":"', b'"total_price":"1')
    with pytest.raises(BadWebhook, match="signature does not match") as e:
        webhooks.receive(sim.CLIENT_SECRET, tampered, headers)
    assert e.value.status == 401
    with pytest.raises(BadWebhook, match="signature does not match"):
        webhooks.receive("another-app-secret", body, headers)
    with pytest.raises(BadWebhook, match="missing x-shopify-hmac-sha256") as e:
        webhooks.receive(sim.CLIENT_SECRET, body, {k: v for k, v in headers.items() if k != "x-shopify-hmac-sha256"})
    assert e.value.status == 401
    old = {**headers, "x-shopify-triggered-at": "2026-01-01T00:00:00Z"}
    with pytest.raises(BadWebhook, match="replay") as e:
        webhooks.receive(sim.CLIENT_SECRET, body, old)
    assert e.value.status == 401
    with pytest.raises(BadWebhook, match="no webhook secret is configured"):
        webhooks.receive("", body, headers)
    junk = b"{not json"
    with pytest.raises(BadWebhook, match="not valid JSON") as e:
        webhooks.receive(
            sim.CLIENT_SECRET, junk, {**headers, "x-shopify-hmac-sha256": webhooks.sign(sim.CLIENT_SECRET, junk)}
        )
    assert e.value.status == 400
    with pytest.raises(BadWebhook, match="topic 'app/uninstalled' is not one erpsync handles"):
        webhooks.receive(sim.CLIENT_SECRET, body, {**headers, "x-shopify-topic": "app/uninstalled"})
    with pytest.raises(BadWebhook, match="missing x-shopify-webhook-id"):
        webhooks.receive(sim.CLIENT_SECRET, body, {k: v for k, v in headers.items() if k != "x-shopify-webhook-id"})


def test_real_recorded_payloads_parse_as_webhooks() -> None:
    """Shopify's documented REST bodies (tests/fixtures/shopify) as a webhook would carry them."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    cases = [
        ("rest-2026-07-order.json", "order", "orders/updated", "450789469"),
        ("rest-2026-07-customer.json", "customer", "customers/update", "207119551"),
        ("rest-2026-07-fulfillment.json", "fulfillment", "fulfillments/create", "450789469"),
    ]
    for name, key, topic, want in cases:
        body = json.dumps(json.loads((FIXTURES / name).read_text())[key]).encode()
        headers = {
            "x-shopify-topic": topic,
            "x-shopify-hmac-sha256": webhooks.sign("s3cret", body),
            "x-shopify-webhook-id": f"wh-{name}",
            "x-shopify-triggered-at": now,
        }
        [notice] = webhooks.receive("s3cret", body, headers)
        assert notice["id"] == want, name
        assert notice["event_id"] == f"wh-{name}"
    big = b'{"id": 820982911946154508, "updated_at": "2026-11-28T10:00:00-05:00"}'
    headers = {
        "x-shopify-topic": "orders/create",
        "x-shopify-hmac-sha256": webhooks.sign("k", big),
        "x-shopify-webhook-id": "1",
    }
    assert webhooks.receive("k", big, headers)[0]["id"] == "820982911946154508"  # beyond 2**53, exact


def test_the_adapter_queries_hold_no_field_missing_from_the_schema() -> None:
    from graphql import parse, validate

    from erpsync.systems.shopify import adapter, mapping

    queries = [
        v
        for m in (adapter, mapping)
        for k, v in vars(m).items()
        if k.isupper() and isinstance(v, str) and ("query " in v or "mutation " in v)
    ]
    assert len(queries) >= 12
    for q in queries:
        assert validate(sim.schema(), parse(q)) == [], q[:80]


def test_the_sim_answers_through_a_real_http_server() -> None:
    server = ServerThread(sim.create_app(), "shopify-sim")
    server.start()
    try:
        with httpx.Client(base_url=server.url) as http:
            http.post("/_sim/seed", json=sim.sample_seed())
            body = http.post(GQL, json={"query": "{ locations(first: 5) { nodes { name } } }"}, headers=H).json()
        assert body["data"]["locations"]["nodes"] == [{"name": "Shop location"}]
    finally:
        server.stop()


def test_a_refused_token_is_read_again_once_then_the_connection_is_closed(shop: TestClient) -> None:
    tokens = iter(["shpat_revoked", sim.ACCESS_TOKEN])
    asked: list[str] = []

    def renew(refused: str) -> str:
        asked.append(refused)
        return next(tokens)

    client = ShopifyClient("http://shop", lambda: "shpat_revoked", http=shop, renew=renew)
    with pytest.raises(AuthError, match="refused the access token"):
        client.query("{ locations(first: 1) { nodes { id } } }")  # the secret still holds a bad one
    assert asked == ["shpat_revoked"]
    data = client.query("{ locations(first: 1) { nodes { id } } }")  # rotated meanwhile: read again, works
    assert data["locations"]["nodes"]
