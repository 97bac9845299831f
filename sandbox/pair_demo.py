"""`make demo STORE=shopify ERP=quickbooks` (any pair but the default): order to cash on the local
stack with that store and that ERP, with no command once it runs.

Starts the local stack for the pair (pollers and fast schedules on, the store's webhooks
subscribed, the pair's own settings from ``local_settings``), places orders in the store through
its own API (Magento's REST, Shopify's Admin GraphQL ``orderCreate``), waits for each in the ERP
(an Acumatica sales order, a QuickBooks sales receipt or invoice, an SAP Business One order with
the store's number in ``NumAtCard``) and, where the ERP takes payments, for its payment; where the
ERP ships (Acumatica, B1), ships some of them there and waits for the store's shipments or
fulfilments with tracking; where the ERP invoices (B1: its clerk invoices the delivery), waits for
the Magento invoices, e-mailed to the customer, and the orders complete; cancels one unpaid order
in the store and waits for the ERP to cancel (S/4HANA: reject) or void it. Then runs those flows
once more and checks nothing changed. Prints both sides and exits 1 when a total, a payment, a
shipment, an invoice, the cancel or the second run does not match.
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
    tax: Decimal = Decimal(0)
    """The tax the store charged (an ERP that determines tax itself is compared net of it)."""


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
            total, tax = order["totalPriceSet"]["shopMoney"], (order.get("totalTaxSet") or {}).get("shopMoney") or {}
            return Placed(order["name"], D(total["amount"]), order["id"], paid, tax=D(str(tax.get("amount") or 0)))
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
        return Placed(
            str(saved["increment_id"]),
            D(str(saved["grand_total"])),
            str(saved["entity_id"]),
            paid,
            tax=D(str(saved.get("tax_amount") or 0)),
        )

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

    def invoiced(self, order: Placed) -> list[JSON]:
        """Magento's invoices of the order (Shopify has none: its orders are marked paid)."""
        if self.kind == "shopify":
            return []
        return list(self.magento.search("/invoices", "order_id", order.ref))

    def state(self, order: Placed) -> str:
        """The order's state in the store (Magento ``state``, Shopify's financial status)."""
        if self.kind == "shopify":
            return str(self.merchant.order(order.ref).get("displayFinancialStatus") or "")
        return str(self.magento.call("GET", f"/orders/{order.ref}")["state"])

    def cancel(self, order: Placed) -> None:
        if self.kind == "shopify":
            self.merchant.cancel(order.ref)
        else:
            self.magento.call("POST", f"/orders/{order.ref}/cancel")


class ErpSide:
    """Reads the ERP's documents of store orders, and ships and invoices them where the ERP does."""

    KINDS = ("acumatica", "quickbooks", "sap_b1", "sap_s4")
    """The ERPs the demo tells the story of."""

    def __init__(self, kind: str, info: JSON, b1_http: httpx.Client | None = None) -> None:
        """``b1_http``: the client for the ERP's sim (SAP's clerks, QuickBooks' reads; default: one of
        their own), e.g. one whose User-Agent tells the harness's requests apart in the sim's log."""
        self.kind = kind
        sap = kind in ("sap_b1", "sap_s4")
        self.ships = kind in ("acumatica", "sap_b1", "sap_s4")
        """Someone ships in the ERP and the store gets the tracking (QuickBooks ships nothing)."""
        self.invoices = sap
        """The ERP's clerk invoices the delivery and the store gets the invoice (Acumatica's
        invoices are the default demo's, ``sandbox/demo.py``)."""
        self.pays = kind != "sap_s4"
        """The store's payments reach the ERP (S/4HANA's are FI clearing: not served)."""
        self.delivered: dict[str, Any] = {}
        """SAP: store number -> the delivery the clerk posted (B1 DocEntry, S/4 DeliveryDocument)."""
        if kind == "acumatica":
            self.acumatica = AcumaticaUser(**info["acumatica"])
        elif kind == "sap_b1":
            from sandbox.sap_b1_clerk import SapB1Clerk

            self.clerk = SapB1Clerk(b1_http or httpx.Client(base_url=info["sap_b1"]["base_url"], timeout=30))
        elif kind == "sap_s4":
            from sandbox.sap_s4_clerk import SapS4Clerk

            host = str(info["sap_s4"]["base_url"]).removesuffix("/sap/opu/odata/sap")
            self.s4 = SapS4Clerk(b1_http or httpx.Client(base_url=host, timeout=30))
        else:
            from erpsync.systems.quickbooks.client import QuickBooksClient, quoted

            self.quoted = quoted

            creds = info["quickbooks"]
            self.books = QuickBooksClient(
                creds["base_url"], creds["realm_id"], lambda: creds["access_token"], http=b1_http
            )

    def document(self, number: str) -> JSON | None:
        """``{"kind", "number", "total", "open", "canceled", "copies"}`` of the store order's ERP
        document (``copies``: how many live documents carry the number; None also while the ERP
        throttles us: the workers share its ceilings)."""
        from erpsync.errors import RateLimitedError

        try:
            return self._document(number)
        except RateLimitedError:
            return None

    def documents(self, numbers: list[str]) -> dict[str, JSON]:
        """The ERP documents of several store orders (the ones found), by store number. QuickBooks
        answers all of them in one query per document kind: the demo's look-ups share its 500 requests
        a minute with the workers."""
        from erpsync.errors import RateLimitedError

        if self.kind != "quickbooks" or not numbers:
            found = {n: self.document(n) for n in numbers}
            return {n: d for n, d in found.items() if d}
        out: dict[str, JSON] = {}
        wanted = ", ".join(self.quoted(n) for n in numbers)
        try:
            for kind in ("SalesReceipt", "Invoice"):
                rows = self.books.query(f"select * from {kind} where DocNumber in ({wanted})").get(kind) or []  # noqa: S608
                for doc in rows:
                    if doc["DocNumber"] not in out:
                        out[doc["DocNumber"]] = self._qbo(
                            kind, doc, sum(r["DocNumber"] == doc["DocNumber"] for r in rows)
                        )
        except RateLimitedError:
            pass
        return out

    def _qbo(self, kind: str, doc: JSON, copies: int) -> JSON:
        return {
            "kind": kind,
            "number": doc["DocNumber"],
            "total": D(str(doc["TotalAmt"])),
            "open": D(str(doc.get("Balance") or 0)),
            "canceled": "Voided" in str(doc.get("PrivateNote") or "") and D(str(doc["TotalAmt"])) == 0,
            "copies": copies,
        }

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
                "copies": len(rows),
                "so": so,
            }
        if self.kind == "sap_b1":
            return self._b1_order(number)
        if self.kind == "sap_s4":
            return self._s4_order(number)
        for kind in ("SalesReceipt", "Invoice"):
            text = f"select * from {kind} where DocNumber = {self.quoted(number)}"  # noqa: S608 - quoted
            rows = self.books.query(text).get(kind) or []
            if rows:
                return self._qbo(kind, rows[0], len(rows))
        return None

    def _b1_order(self, number: str) -> JSON | None:
        """The B1 ``Orders`` carrying the store's number in ``NumAtCard``. ``open`` is the order's
        ``DocTotal`` less the down payment invoices of that number paid in full (closed): Service
        Layer v1 has no ``PaidToDate`` on an order; the payments flow posts a store capture as a down
        payment invoice and an incoming payment applied to it."""
        quoted = number.replace("'", "''")
        rows = self.clerk.request(
            "GET",
            "Orders",
            params={
                "$filter": f"NumAtCard eq '{quoted}'",
                "$select": "DocEntry,DocNum,DocTotal,DocumentStatus,Cancelled",
            },
        )["value"]
        if not rows:
            return None
        live = [r for r in rows if r.get("Cancelled") != "tYES"]
        doc = (live or rows)[0]
        return {
            "kind": "Orders",
            "number": str(doc["DocNum"]),
            "total": D(str(doc["DocTotal"])),
            "open": D(str(doc["DocTotal"])) - self._b1_paid(quoted),
            "canceled": not live,
            "copies": len(live),
            "entry": int(doc["DocEntry"]),
            "closed": doc.get("DocumentStatus") == "bost_Close",
        }

    def _s4_order(self, number: str) -> JSON | None:
        """The S/4HANA ``A_SalesOrder`` carrying the store's number in ``PurchaseOrderByCustomer``;
        its total is the sales order's net value (``TotalNetAmount``: freight and discounts are
        conditions in it; SAP determines the tax itself, so it is compared with the store's total
        less its tax: ``net``). ``open`` is that total: the store's payments are not posted to S/4HANA."""
        from sandbox.sims.sap_s4 import SALES

        quoted = number.replace("'", "''")
        rows = self.s4.request(
            "GET",
            SALES,
            "A_SalesOrder",
            params={"$filter": f"PurchaseOrderByCustomer eq '{quoted}'", "$expand": "to_Item"},
        )["results"]
        if not rows:
            return None
        doc = rows[0]
        total = D(str(doc["TotalNetAmount"]))
        return {
            "kind": "A_SalesOrder",
            "number": str(doc["SalesOrder"]),
            "total": total,
            "open": total,
            "canceled": doc.get("OverallSDDocumentRejectionSts") == "C",
            "copies": len(rows),
            "closed": doc.get("OverallTotalDeliveryStatus") == "C",
            "net": True,
        }

    def _b1_paid(self, quoted: str) -> Decimal:
        """What the closed (paid) down payment invoices carrying the store number add up to."""
        rows = self.clerk.request(
            "GET",
            "DownPayments",
            params={"$filter": f"NumAtCard eq '{quoted}' and DocumentStatus eq 'bost_Close'", "$select": "DocTotal"},
        )["value"]
        return sum((D(str(r["DocTotal"])) for r in rows), D(0))

    def ship_order(self, number: str, doc: JSON, tracking: str) -> None:
        """Ship store order ``number`` (its ERP document ``doc``) in full with ``tracking``: an
        Acumatica shipment confirmed, a B1 delivery posted against the order by its clerk."""
        if self.kind == "sap_b1":
            self.delivered[number] = int(self.clerk.deliver(doc["entry"], tracking)["DocEntry"])
        elif self.kind == "sap_s4":
            self.delivered[number] = str(self.s4.deliver(doc["number"], tracking)["DeliveryDocument"])
        elif self.kind == "acumatica":
            self.ship(doc["so"], tracking)
        else:
            raise ValueError(f"{self.kind} ships nothing in this demo")

    def ship(self, so: JSON, tracking: str) -> None:
        """Ship Acumatica sales order ``so`` in full: a shipment with ``tracking``, confirmed."""
        a = self.acumatica
        when = {"ShipmentDate": {"value": datetime.now(UTC).isoformat()}, "WarehouseID": {"value": "WHOLESALE"}}
        a.action("SalesOrder", "SalesOrderCreateShipment", {"id": so["id"]}, when)
        fresh = a.get(f"SalesOrder/{_v(so['OrderType'])}/{_v(so['OrderNbr'])}", "$expand=Shipments")
        nbr = str(_v(fresh["Shipments"][-1]["ShipmentNbr"]))
        a.put("Shipment", {"ShipmentNbr": {"value": nbr}, "Packages": [{"TrackingNbr": {"value": tracking}}]})
        a.action("Shipment", "ConfirmShipment", {"ShipmentNbr": {"value": nbr}})

    def invoice(self, number: str) -> JSON:
        """Invoice what was shipped of store order ``number``: B1's clerk posts an A/R invoice of the
        delivery (lines ``BaseType`` 15). The invoice as posted."""
        if number not in self.delivered:
            raise ValueError(f"no {self.kind} delivery of order {number} to invoice")
        if self.kind == "sap_s4":
            return self.s4.bill(self.delivered[number])
        return self.clerk.invoice(self.delivered[number])


def _v(field: Any) -> Any:
    return field.get("value") if isinstance(field, dict) else field


def run(store: str, erp: str) -> int:
    from sandbox.local.stack import LocalStack, default_seed, local_settings

    logging.getLogger().setLevel(logging.WARNING)
    problems: list[str] = []
    state_file = Path(".erpsync/demo.json")
    with LocalStack(
        store=store,
        erp=erp,
        schedule_seconds=2.0,
        state_file=state_file,
        seed=default_seed(),
        settings=local_settings(store, erp),
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

        # the demo's own look-ups share the ERP's ceiling with the workers (QuickBooks: 500 a minute
        # per company): each check reads only the orders it still waits for, every 2 s
        def look_up(which: list[Placed]) -> None:
            found = books.documents([o.number for o in which])
            for o in which:
                o.erp = found.get(o.number) or o.erp

        def arrived() -> bool:
            look_up([o for o in orders if not o.erp])
            return all(o.erp for o in orders)

        wait_for(f"every order in {erp}", arrived, 120, every_s=2.0)
        console.print(f"all {len(orders)} orders are in {erp} under the store's number")
        if books.pays:

            def settled() -> bool:
                look_up([o for o in orders if o.paid and o.erp["open"] != 0])
                return all(o.erp["open"] == 0 for o in orders if o.paid)

            wait_for("the paid orders' payments", settled, 120, every_s=2.0)
            console.print("every paid order is paid in the ERP")
        else:
            console.print(
                f"payments into {erp} are not built yet: the orders paid at checkout stay open there "
                "(open = the order's total)"
            )
        shipped: dict[str, str] = {}
        if books.ships:
            for i, o in enumerate(orders[:3]):
                shipped[o.number] = f"1ZPAIR{i:04d}"
                books.ship_order(o.number, o.erp, shipped[o.number])

            def delivered() -> bool:
                return all(shop.shipped(o) == [shipped[o.number]] for o in orders[:3])

            wait_for(f"the shipments in {store}", delivered, 120)
            console.print(f"{len(shipped)} orders shipped in {erp} show their tracking number in {store}")
        invoiced: set[str] = set()
        if books.invoices:
            for o in orders[:3]:
                books.invoice(o.number)
                invoiced.add(o.number)
            if shop.kind == "magento":

                def billed() -> bool:
                    return all(len(shop.invoiced(o)) == 1 and shop.state(o) == "complete" for o in orders[:3])

                wait_for(f"the invoices in {store}", billed, 120)
                mailed = sum(inv.get("email_sent") == 1 for o in orders[:3] for inv in shop.invoiced(o))
                console.print(
                    f"{len(invoiced)} deliveries invoiced in {erp} are invoices in {store} "
                    f"({mailed} e-mailed to the customer), their orders complete"
                )
                if mailed != len(invoiced):
                    problems.append(f"{len(invoiced) - mailed} invoices reached {store} without the e-mail")
            else:
                console.print(
                    f"{len(invoiced)} deliveries invoiced in {erp}: {store} has no invoices and marks an order "
                    f"paid only on an invoice paid in full, so these open invoices change nothing there"
                )
        victim = next(o for o in orders if not o.paid and o.number not in shipped)
        shop.cancel(victim)
        wait_for(f"the cancel in {erp}", lambda: bool((books.document(victim.number) or {}).get("canceled")), 120)
        console.print(f"order {victim.number} canceled in {store} is canceled in {erp}")

        def refresh() -> None:
            look_up(orders)

        refresh()
        before = fingerprint(shop, orders)
        flows = ["orders"] + ["payments"] * books.pays + ["shipments"] * books.ships + ["invoices"] * books.invoices
        changed = rerun(state_file, flows)
        refresh()
        if changed or fingerprint(shop, orders) != before:
            problems.append(
                f"running {', '.join(flows)} again changed something: {', '.join(changed) or 'the documents'}"
            )
        else:
            console.print(f"{', '.join(flows)} run again: nothing changes")
        table = Table(title=f"{store} -> {erp}")
        for col in (f"{store} order", "total", f"{erp} document", "total", "open", "shipped", "invoiced", "state"):
            table.add_column(col)
        for o in orders:
            doc = o.erp
            table.add_row(
                o.number,
                str(o.total),
                f"{doc['kind']} {doc['number']}",
                str(doc["total"]),
                str(doc["open"]),
                shipped.get(o.number, ""),
                "yes" if o.number in invoiced else "",
                erp_state(books, doc),
            )
            expected, net = (o.total - o.tax, " net of tax") if doc.get("net") else (o.total, "")
            if doc["total"] != expected and not doc["canceled"]:
                problems.append(f"{o.number}: {store} {expected}{net} but {erp} {doc['total']}")
            if doc["copies"] > 1:
                problems.append(f"{o.number}: {doc['copies']} live documents in {erp}")
        console.print(table)
    for p in problems:
        console.print(f"[red]{p}")
    console.print("[bold green]every order adds up" if not problems else "[bold red]something does not add up")
    return 1 if problems else 0


def erp_state(books: ErpSide, doc: JSON) -> str:
    """The document's state as the ERP holds it (B1: paid or open, and its order closed once delivered)."""
    if doc["canceled"]:
        return "canceled"
    state = "paid" if doc["open"] == 0 else "open"
    if books.kind == "sap_s4":
        return "delivered" if doc["closed"] else "open"
    return f"{state}, closed (delivered)" if books.kind == "sap_b1" and doc["closed"] else state


def fingerprint(shop: StoreSide, orders: list[Placed]) -> list[tuple[Any, ...]]:
    """What both sides hold of each order: its ERP document, tracking and invoices in the store."""
    return [
        (
            o.erp["number"],
            o.erp["total"],
            o.erp["open"],
            o.erp["canceled"],
            o.erp["copies"],
            shop.shipped(o),
            len(shop.invoiced(o)),
        )
        for o in orders
    ]


def rerun(state_file: Path, flows: list[str]) -> list[str]:
    """Poll and drain each flow once more; what each synced (it should sync nothing)."""
    from cli.target import use_local
    from erpsync.runtime.lambda_app import build

    use_local(state_file)
    changed = []
    for flow in flows:
        rt = build(flow)
        rt.poll()
        synced = [o for o in rt.drain() if o.outcome == "synced"]
        if synced:
            changed.append(f"{flow} synced {len(synced)}")
    return changed


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
