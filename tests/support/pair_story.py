"""A store on the local stack as the ERP stories see it (tests/e2e/test_order_to_cash_sap_*.py):
orders placed through the store's own API, their shipments, invoices and payment state read back,
and each flow polled and drained once (``drain``)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx

from sandbox.local.stack import LocalStack
from sandbox.shopify_merchant import Cart, ShopifyMerchant
from sandbox.sims import magento_orders as mo
from sandbox.story import MagentoAdmin

D = Decimal


def drain(flow: str) -> list[str]:
    from erpsync.runtime.lambda_app import build

    rt = build(flow)
    rt.poll()
    return [o.outcome for o in rt.drain()]


class Store:
    """The stack's store through its own API: places orders, reads their shipments and invoices."""

    def __init__(self, stack: LocalStack) -> None:
        self.kind, self.url = stack.store, stack.sim_urls[stack.store]
        self.token = stack.credentials["shopify"]["access_token"] if self.kind == "shopify" else ""
        self.admin = MagentoAdmin(**stack.credentials["magento"]) if self.kind == "magento" else None

    def merchant(self, http: httpx.Client) -> ShopifyMerchant:
        return ShopifyMerchant(http, self.token)

    def place(self, n: int) -> dict[str, Any]:
        """An order (``number``, ``total``, ``tax``, ``ref``: the store's id): two lines, a discount, shipping, tax."""
        if self.kind == "shopify":
            cart = Cart(
                [("24-MB01", 1), ("24-WG084", 2)],
                discount=D("3.00"),
                shipping=D("5.00"),
                tax_rate=D("0.0825"),
                paid=n % 2 == 0,
                gateway="shopify_payments" if n % 2 == 0 else "manual",
            )
            with httpx.Client(base_url=self.url, timeout=30) as http:
                placed = self.merchant(http).place(f"buyer{n}@example.com", cart)
            return {
                "number": placed["name"],
                "total": D(placed["totalPriceSet"]["shopMoney"]["amount"]),
                "tax": D(placed["totalTaxSet"]["shopMoney"]["amount"]),
                "ref": placed["id"],
            }
        order = mo.build_order(
            mo.sample_catalog(),
            [mo.CartLine("24-MB01", 1), mo.CartLine("24-WG084", 2)],
            customer=mo.sample_customer(f"buyer{n}@example.com"),
            coupon=mo.Coupon("TENOFF", "percent", "10"),
            shipping_amount=5,
            tax_rate="8.25",
            payment_method="braintree" if n % 2 == 0 else "checkmo",
            captured=n % 2 == 0,
        )
        [saved] = httpx.post(f"{self.url}/_sim/seed", json={"orders": [order]}, timeout=30).json()["orders"]
        return {
            "number": str(saved["increment_id"]),
            "total": D(str(order["base_grand_total"])),
            "tax": D(str(order["base_tax_amount"])),
            "ref": str(saved["entity_id"]),
        }

    def tracking(self, order: dict[str, Any]) -> list[str]:
        if self.kind == "shopify":
            with httpx.Client(base_url=self.url, timeout=30) as http:
                found = self.merchant(http).order(order["ref"])
            return [t["number"] for f in found["fulfillments"] for t in f["trackingInfo"]]
        assert self.admin is not None
        rows = self.admin.search("/shipments", "order_id", order["ref"])
        return [t["track_number"] for s in rows for t in s.get("tracks") or []]

    def magento(self, path: str, order: dict[str, Any]) -> list[dict[str, Any]]:
        assert self.admin is not None
        return self.admin.search(path, "order_id", order["ref"])

    def financial_status(self, order: dict[str, Any]) -> str:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            return str(
                self.merchant(http).graphql(
                    "query($id: ID!) { order(id: $id) { displayFinancialStatus } }", {"id": order["ref"]}
                )["order"]["displayFinancialStatus"]
            )


def running_stack(store: str, erp: str, state: Any, erp_settings: dict[str, Any] | None = None) -> Iterator[LocalStack]:
    """A local stack for the pair with its seeded sims and ``local_settings`` (the ERP connection's
    own settings updated with ``erp_settings``), pollers and schedules off (each test polls and
    drains), the CLI pointed at it; for a module fixture to ``yield from``."""
    from cli.target import use_local
    from sandbox.local.stack import default_seed, local_settings

    settings = local_settings(store, erp)
    if erp_settings:
        settings["connections"][erp]["settings"].update(erp_settings)

    with LocalStack(
        store=store,
        erp=erp,
        state_file=state,
        run_pollers=False,
        run_schedules=False,
        seed=default_seed(),
        settings=settings,
    ) as s:
        use_local(state)
        yield s
