"""A Shopify merchant's day through the Admin GraphQL API, as a test or the demo lives it on the
Shopify sim (or a development store): orders placed with ``orderCreate`` (discount code, shipping,
tax, a sale transaction), marked paid, cancelled, refunded (``refundCreate``); webhooks subscribed with
``webhookSubscriptionCreate``; the order read back as Shopify shows it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx

CENT = Decimal("0.01")
JSON = dict[str, Any]

PLACE = """
mutation Place($order: OrderCreateOrderInput!) {
  orderCreate(order: $order) {
    order {
      id legacyResourceId name
      totalPriceSet { shopMoney { amount currencyCode } } totalTaxSet { shopMoney { amount } }
    }
    userErrors { field message code }
  }
}
"""
VARIANTS = "query Variants($q: String) { productVariants(first: 50, query: $q) { nodes { id sku price } } }"
ORDER = """
query Order($id: ID!) {
  order(id: $id) {
    id name cancelledAt displayFinancialStatus displayFulfillmentStatus
    totalPriceSet { shopMoney { amount } } totalReceivedSet { shopMoney { amount } }
    lineItems(first: 50) { nodes { id sku quantity unfulfilledQuantity } }
    fulfillments(first: 10) { id status trackingInfo(first: 5) { company number } }
  }
}
"""
MARK_PAID = "mutation Paid($id: ID!) { orderMarkAsPaid(input: {id: $id}) { order { id } userErrors { message } } }"
CANCEL = """
mutation Cancel($id: ID!) {
  orderCancel(orderId: $id, refund: false, restock: true, reason: CUSTOMER, notifyCustomer: false) {
    job { id } orderCancelUserErrors { message }
  }
}
"""
REFUND_LINES = """
query RefundLines($id: ID!) {
  order(id: $id) {
    id
    lineItems(first: 50) {
      nodes {
        id sku quantity originalUnitPriceSet { shopMoney { amount } }
        totalDiscountSet { shopMoney { amount } } taxLines { priceSet { shopMoney { amount } } }
      }
    }
    transactions(first: 25) { id kind status gateway }
  }
}
"""
REFUND = """
mutation Refund($input: RefundInput!) {
  refundCreate(input: $input) {
    refund { id legacyResourceId totalRefundedSet { shopMoney { amount currencyCode } } }
    userErrors { field message }
  }
}
"""
SUBSCRIBE = """
mutation Subscribe($topic: WebhookSubscriptionTopic!, $url: URL!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: {callbackUrl: $url, format: JSON}) {
    webhookSubscription { id } userErrors { message }
  }
}
"""
ORDER_TOPICS = (
    "ORDERS_CREATE",
    "ORDERS_UPDATED",
    "ORDERS_PAID",
    "ORDERS_CANCELLED",
    "CUSTOMERS_CREATE",
    "CUSTOMERS_UPDATE",
)


def _money(amount: Decimal, currency: str) -> JSON:
    return {"shopMoney": {"amount": str(amount), "currencyCode": currency}}


@dataclass
class Cart:
    """What a shopper buys: ``lines`` (sku, qty), a fixed discount code, shipping and tax."""

    lines: list[tuple[str, int]]
    discount: Decimal = Decimal("0")
    shipping: Decimal = Decimal("0")
    tax_rate: Decimal = Decimal("0")
    paid: bool = True
    gateway: str = "shopify_payments"
    note: str = ""
    tags: tuple[str, ...] = ()
    source: str = ""
    """The channel it was sold on (``sourceName``: ``web``, ``pos``, an app's handle)."""


class ShopifyMerchant:
    """The merchant's side of the shop, over ``http`` (an ``httpx.Client`` on the shop's base URL,
    or a TestClient of the sim) with the app's access token."""

    def __init__(self, http: httpx.Client, token: str, api_version: str = "2025-01", currency: str = "USD") -> None:
        self.http, self.token, self.currency = http, token, currency
        self.path = f"/admin/api/{api_version}/graphql.json"
        self._variants: dict[str, JSON] = {}

    def graphql(self, query: str, variables: JSON | None = None) -> JSON:
        """The ``data`` of ``query``; a THROTTLED answer is waited out (the bucket refills)."""
        for _ in range(60):
            r = self.http.post(
                self.path,
                json={"query": query, "variables": variables or {}},
                headers={"X-Shopify-Access-Token": self.token},
            )
            r.raise_for_status()
            body = r.json()
            codes = {(e.get("extensions") or {}).get("code") for e in body.get("errors") or [] if isinstance(e, dict)}
            if "THROTTLED" not in codes:
                break
            time.sleep(1.0)
        if body.get("errors"):
            raise RuntimeError(f"shopify refused {query.split('(')[0].strip()}: {body['errors']}")
        data: JSON = body["data"]
        return data

    def variant(self, sku: str) -> JSON:
        if sku not in self._variants:
            for v in self.graphql(VARIANTS, {"q": f"sku:{sku}"})["productVariants"]["nodes"]:
                self._variants[v["sku"]] = v
        if sku not in self._variants:
            raise KeyError(f"the shop sells no {sku}")
        return self._variants[sku]

    def place(self, email: str, cart: Cart, address: JSON | None = None) -> JSON:
        """Place an order for ``email`` (an existing customer is associated, a new one made); the
        order as ``orderCreate`` answered it. Tax is the cart's rate on the discounted lines and
        the shipping, as Shopify's tax lines would carry it."""
        gross = sum((Decimal(self.variant(sku)["price"]) * qty for sku, qty in cart.lines), Decimal("0"))
        tax = ((gross - cart.discount + cart.shipping) * cart.tax_rate).quantize(CENT, ROUND_HALF_UP)
        total = gross - cart.discount + cart.shipping + tax
        addr = address or {
            "firstName": "Veronica",
            "lastName": "Costello",
            "address1": "6146 Honey Bluff Parkway",
            "city": "Calder",
            "provinceCode": "MI",
            "zip": "49628-7978",
            "countryCode": "US",
            "phone": "+15552293326",
        }
        order: JSON = {
            "email": email,
            "customer": {
                "toUpsert": {"email": email, "firstName": addr.get("firstName"), "lastName": addr.get("lastName")}
            },
            "currency": self.currency,
            # the schema defaults requiresShipping to false: a physical good says so
            "lineItems": [
                {"variantId": self.variant(sku)["id"], "quantity": qty, "requiresShipping": True}
                for sku, qty in cart.lines
            ],
            "billingAddress": addr,
            "shippingAddress": addr,
        }
        if cart.note:
            order["note"] = cart.note
        if cart.tags:
            order["tags"] = list(cart.tags)
        if cart.source:
            order["sourceName"] = cart.source
        if cart.shipping:
            order["shippingLines"] = [
                {"title": "Standard", "code": "Standard", "priceSet": _money(cart.shipping, self.currency)}
            ]
        if tax:
            order["taxLines"] = [
                {"title": "State tax", "rate": str(cart.tax_rate), "priceSet": _money(tax, self.currency)}
            ]
        if cart.discount:
            order["discountCode"] = {
                "itemFixedDiscountCode": {"code": "TENOFF", "amountSet": _money(cart.discount, self.currency)}
            }
        if cart.paid:
            order["transactions"] = [
                {
                    "kind": "SALE",
                    "status": "SUCCESS",
                    "gateway": cart.gateway,
                    "amountSet": _money(total, self.currency),
                }
            ]
        payload = self.graphql(PLACE, {"order": order})["orderCreate"]
        if payload["userErrors"]:
            raise RuntimeError(f"orderCreate refused: {payload['userErrors']}")
        placed: JSON = payload["order"]
        return placed

    def order(self, id: str) -> JSON:
        gid = id if id.startswith("gid://") else f"gid://shopify/Order/{id}"
        found: JSON = self.graphql(ORDER, {"id": gid})["order"]
        return found

    def mark_paid(self, id: str) -> None:
        errors = self.graphql(MARK_PAID, {"id": id})["orderMarkAsPaid"]["userErrors"]
        if errors:
            raise RuntimeError(f"orderMarkAsPaid refused: {errors}")

    def cancel(self, id: str) -> None:
        errors = self.graphql(CANCEL, {"id": id})["orderCancel"]["orderCancelUserErrors"]
        if errors:
            raise RuntimeError(f"orderCancel refused: {errors}")

    def refund(
        self,
        id: str,
        lines: list[tuple[str, int]],
        shipping: Decimal = Decimal("0"),
        amount: Decimal | None = None,
        restock: bool = True,
        note: str = "",
    ) -> JSON:
        """Refund ``lines`` (sku, qty) and ``shipping`` of order ``id`` with ``refundCreate``, giving
        back ``amount`` (default: what the lines were charged after discounts, with their tax, plus
        the shipping) to the gateway that took the payment; the refund as Shopify answered it."""
        gid = id if id.startswith("gid://") else f"gid://shopify/Order/{id}"
        order = self.graphql(REFUND_LINES, {"id": gid})["order"]
        by_sku = {ln["sku"]: ln for ln in order["lineItems"]["nodes"]}
        rows, due = [], shipping
        for sku, qty in lines:
            ln = by_sku[sku]
            share = Decimal(qty) / Decimal(ln["quantity"])
            gross = Decimal(ln["originalUnitPriceSet"]["shopMoney"]["amount"]) * ln["quantity"]
            net = gross - Decimal(ln["totalDiscountSet"]["shopMoney"]["amount"])
            tax = sum((Decimal(t["priceSet"]["shopMoney"]["amount"]) for t in ln["taxLines"]), Decimal("0"))
            due += (net * share).quantize(CENT, ROUND_HALF_UP) + (tax * share).quantize(CENT, ROUND_HALF_UP)
            rows.append({"lineItemId": ln["id"], "quantity": qty, "restockType": "RETURN" if restock else "NO_RESTOCK"})
        sale = next(
            (t for t in order["transactions"] if t["kind"] in ("SALE", "CAPTURE") and t["status"] == "SUCCESS"), None
        )
        body: JSON = {"orderId": gid, "refundLineItems": rows, "note": note or None}
        if shipping:
            body["shipping"] = {"amount": str(shipping)}
        money = due if amount is None else amount
        if money:
            if sale is None:
                raise RuntimeError(f"order {id} took no payment to refund {money} to")
            body["transactions"] = [
                {
                    "orderId": gid,
                    "kind": "REFUND",
                    "gateway": sale["gateway"],
                    "amount": str(money),
                    "parentId": sale["id"],
                }
            ]
        payload = self.graphql(REFUND, {"input": body})["refundCreate"]
        if payload["userErrors"]:
            raise RuntimeError(f"refundCreate refused: {payload['userErrors']}")
        made: JSON = payload["refund"]
        return made

    def subscribe(self, url: str, topics: tuple[str, ...] = ORDER_TOPICS) -> None:
        """Have the shop send these topics' webhooks to ``url``."""
        for topic in topics:
            errors = self.graphql(SUBSCRIBE, {"topic": topic, "url": url})["webhookSubscriptionCreate"]["userErrors"]
            if errors and not any("already been taken" in e["message"] for e in errors):
                raise RuntimeError(f"webhookSubscriptionCreate {topic} refused: {errors}")
