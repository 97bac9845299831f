"""`make demo STORE=shopify ERP=quickbooks` (any pair but the default): order to cash on the local
stack with that store and that ERP, with no command once it runs.

Starts the local stack for the pair (pollers and fast schedules on, the store's webhooks
subscribed), places orders in the store through its own API (Magento's REST, Shopify's Admin
GraphQL ``orderCreate``), waits for each in the ERP (an Acumatica sales order, a QuickBooks sales
receipt or invoice) and for its payment; with Acumatica, ships some of them there and waits for
the store's shipments or fulfilments with tracking; cancels one in the store and waits for the
ERP to cancel or void it. Prints both sides and exits 1 when a total, a payment, a shipment or the
cancel does not match.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from sandbox.sims import magento_orders as mo
from sandbox.story import AcumaticaUser, MagentoAdmin, wait_for

console = Console(width=160)
D = Decimal
JSON = dict[str, Any]
ORDERS = 6


@dataclass
class Placed:
    number: str
    total: Decimal
    ref: str
    """The store's id (Magento entity_id, Shopify GID)."""
    paid: bool
    erp: JSON = field(default_factory=dict)


class StoreSide:
    """Places, reads and cancels orders in the store through its own API."""

    def __init__(self, kind: str, info: JSON) -> None:
        self.kind = kind
        if kind == "shopify":
            from sandbox.shopify_merchant import ShopifyMerchant

            self.http = httpx.Client(base_url=info["shopify"]["shop"], timeout=30)
            self.merchant = ShopifyMerchant(self.http, info["shopify"]["access_token"])
        else:
            self.magento = MagentoAdmin(**info["magento"])  # its catalog: the stack's seed

    def place(self, n: int, paid: bool) -> Placed:
        email = f"buyer{n}@example.com"
        if self.kind == "shopify":
            from sandbox.shopify_merchant import Cart

            cart = Cart(
                [("24-MB01", 1 + n % 2), ("24-WG084", 1)],
                discount=D("3.00") if n % 3 == 0 else D("0"),
                shipping=D("5.00"),
                tax_rate=D("0.0825"),
                paid=paid,
                gateway="shopify_payments" if paid else "manual",
            )
            order = self.merchant.place(email, cart)
            return Placed(order["name"], D(order["totalPriceSet"]["shopMoney"]["amount"]), order["id"], paid)
        body = mo.build_order(
            mo.sample_catalog(),
            [mo.CartLine("24-MB01", 1 + n % 2), mo.CartLine("24-WG084", 1)],
            guest_email=email,
            address=mo.sample_customer()["addresses"][0],
            coupon=mo.Coupon("SAVE10", "percent", 10) if n % 3 == 0 else None,
            shipping_amount=5,
            tax_rate="8.25",
            payment_method="braintree" if paid else "checkmo",
            captured=paid,
        )
        saved = self.magento.call("POST", "/orders", json={"entity": body})
        return Placed(str(saved["increment_id"]), D(str(saved["grand_total"])), str(saved["entity_id"]), paid)

    def shipped(self, order: Placed) -> list[str]:
        """The tracking numbers the store shows on the order."""
        if self.kind == "shopify":
            found = self.merchant.order(order.ref)
            return [t["number"] for f in found["fulfillments"] for t in f["trackingInfo"]]
        rows = self.magento.call(
            "GET",
            "/shipments",
            params={
                "searchCriteria[filter_groups][0][filters][0][field]": "order_id",
                "searchCriteria[filter_groups][0][filters][0][value]": order.ref,
            },
        )
        return [t["track_number"] for s in rows.get("items") or [] for t in s.get("tracks") or []]

    def cancel(self, order: Placed) -> None:
        if self.kind == "shopify":
            self.merchant.cancel(order.ref)
        else:
            self.magento.call("POST", f"/orders/{order.ref}/cancel")


class ErpSide:
    """Reads (and for Acumatica, ships) the ERP's documents of store orders."""

    KINDS = ("acumatica", "quickbooks")
    """The ERPs the demo tells the story of (SAP Business One's comes with its order to cash)."""

    def __init__(self, kind: str, info: JSON) -> None:
        self.kind = kind
        if kind == "acumatica":
            self.acumatica = AcumaticaUser(**info["acumatica"])
        else:
            from erpsync.systems.quickbooks.client import QuickBooksClient, quoted

            self.quoted = quoted

            creds = info["quickbooks"]
            self.books = QuickBooksClient(creds["base_url"], creds["realm_id"], lambda: creds["access_token"])

    def document(self, number: str) -> JSON | None:
        """``{"kind", "number", "total", "open", "canceled"}`` of the store order's ERP document
        (None also while the ERP throttles us: the workers share its ceilings)."""
        from erpsync.errors import RateLimitedError

        try:
            return self._document(number)
        except RateLimitedError:
            return None

    def _document(self, number: str) -> JSON | None:
        if self.kind == "acumatica":
            rows = self.acumatica.orders_for(number)
            if not rows:
                return None
            so = rows[0]
            full = self.acumatica.get(f"SalesOrder/{_v(so['OrderType'])}/{_v(so['OrderNbr'])}", "$expand=Totals")
            return {
                "kind": "SalesOrder",
                "number": f"{_v(so['OrderType'])} {_v(so['OrderNbr'])}",
                "total": D(str(_v(so["OrderTotal"]))),
                "open": D(str(_v(full["Totals"]["UnpaidBalance"]))),
                "canceled": _v(so["Status"]) == "Canceled",
                "so": so,
            }
        for kind in ("SalesReceipt", "Invoice"):
            text = f"select * from {kind} where DocNumber = {self.quoted(number)}"  # noqa: S608 - quoted
            rows = self.books.query(text).get(kind) or []
            if rows:
                doc = rows[0]
                return {
                    "kind": kind,
                    "number": doc["DocNumber"],
                    "total": D(str(doc["TotalAmt"])),
                    "open": D(str(doc.get("Balance") or 0)),
                    "canceled": "Voided" in str(doc.get("PrivateNote") or "") and D(str(doc["TotalAmt"])) == 0,
                }
        return None

    def ship(self, so: JSON, tracking: str) -> None:
        a = self.acumatica
        when = {"ShipmentDate": {"value": datetime.now(UTC).isoformat()}, "WarehouseID": {"value": "WHOLESALE"}}
        a.action("SalesOrder", "SalesOrderCreateShipment", {"id": so["id"]}, when)
        fresh = a.get(f"SalesOrder/{_v(so['OrderType'])}/{_v(so['OrderNbr'])}", "$expand=Shipments")
        nbr = str(_v(fresh["Shipments"][-1]["ShipmentNbr"]))
        a.put("Shipment", {"ShipmentNbr": {"value": nbr}, "Packages": [{"TrackingNbr": {"value": tracking}}]})
        a.action("Shipment", "ConfirmShipment", {"ShipmentNbr": {"value": nbr}})


def _v(field: Any) -> Any:
    return field.get("value") if isinstance(field, dict) else field


def run(store: str, erp: str) -> int:
    from sandbox.local.stack import LOCAL_SETTINGS, LocalStack, default_seed

    logging.getLogger().setLevel(logging.WARNING)
    problems: list[str] = []
    with LocalStack(
        store=store,
        erp=erp,
        schedule_seconds=2.0,
        state_file=Path(".erpsync/demo.json"),
        seed=default_seed(),
        settings=LOCAL_SETTINGS,
    ) as stack:
        for noisy in ("erpsync", "httpx", "botocore", "uvicorn", "urllib3.connectionpool", "sandbox"):
            logging.getLogger(noisy).setLevel(logging.ERROR)
        info = stack.info
        shop, books = StoreSide(store, info), ErpSide(erp, info)
        console.rule(f"[bold]Order to cash: {store} -> {erp}")
        orders = [shop.place(n, paid=n % 3 != 2) for n in range(ORDERS)]
        console.print(
            f"{len(orders)} orders placed in {store} ({sum(o.paid for o in orders)} paid at checkout); "
            "nobody runs a command"
        )

        def arrived() -> bool:
            for o in orders:
                o.erp = books.document(o.number) or o.erp
            return all(o.erp for o in orders)

        wait_for(f"every order in {erp}", arrived, 120)
        console.print(f"all {len(orders)} orders are in {erp}")

        def settled() -> bool:
            arrived()
            return all(o.erp["open"] == 0 for o in orders if o.paid)

        wait_for("the paid orders' payments", settled, 120)
        console.print("every paid order is paid in the ERP")
        shipped: dict[str, str] = {}
        if erp == "acumatica":
            for i, o in enumerate(orders[:3]):
                shipped[o.number] = f"1ZPAIR{i:04d}"
                books.ship(o.erp["so"], shipped[o.number])

            def delivered() -> bool:
                return all(shop.shipped(o) == [shipped[o.number]] for o in orders[:3])

            wait_for(f"the shipments in {store}", delivered, 120)
            console.print(f"{len(shipped)} orders shipped in Acumatica show their tracking number in {store}")
        victim = next(o for o in orders if not o.paid and o.number not in shipped)
        shop.cancel(victim)
        wait_for(f"the cancel in {erp}", lambda: bool((books.document(victim.number) or {}).get("canceled")), 120)
        console.print(f"order {victim.number} canceled in {store} is canceled in {erp}")
        arrived()
        table = Table(title=f"{store} -> {erp}")
        for col in (f"{store} order", "total", f"{erp} document", "total", "open", "shipped", "state"):
            table.add_column(col)
        for o in orders:
            doc = o.erp
            state = "canceled" if doc["canceled"] else ("paid" if doc["open"] == 0 else "open")
            table.add_row(
                o.number,
                str(o.total),
                f"{doc['kind']} {doc['number']}",
                str(doc["total"]),
                str(doc["open"]),
                shipped.get(o.number, ""),
                state,
            )
            if doc["total"] != o.total and not doc["canceled"]:
                problems.append(f"{o.number}: {store} {o.total} but {erp} {doc['total']}")
        console.print(table)
    for p in problems:
        console.print(f"[red]{p}")
    console.print("[bold green]every order adds up" if not problems else "[bold red]something does not add up")
    return 1 if problems else 0


def main(argv: list[str] | None = None, runner: Callable[[str, str], int] = run) -> int:
    import argparse

    from sandbox.local.stack import ERPS, STORES

    parser = argparse.ArgumentParser(prog="make demo", description=__doc__)
    parser.add_argument("--store", default="magento", choices=STORES)
    parser.add_argument("--erp", default="acumatica", choices=[e for e in ERPS if e in ErpSide.KINDS])
    args = parser.parse_args(argv)
    return runner(args.store, args.erp)


if __name__ == "__main__":
    sys.exit(main())
