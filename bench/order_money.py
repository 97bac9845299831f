"""Benchmark 12: the order's life after the sale, payments, credit memos and orders entered in the
ERP, requests per record, erpsync beside a naive connector in the same run.

On the local stack, per run: ``2 x ORDERS`` Magento orders (Luma's sample products) are placed,
invoiced with capture in Magento and sent to Acumatica by the orders flow. Half of them (paid by card)
are paid by erpsync (the payments flow's poll, then its queue worked as Lambda would), the other half
(paid by purchase order, which a payments rule leaves out of erpsync's way) by the naive connector;
then one item of each is refunded in Magento, and the credit memos reach Acumatica the same way, each
half by one side (erpsync's first; the naive ones are then marked handled, as seen versions). Requests are counted from
the sims' logs; sign-ins are left out (a warm container is signed in; the naive one is given the
same favour). An Acumatica action is a long-running operation: its POST and the read of its status
count as two.

The naive connector does per record what a first version does:

- payment: read the order from Magento, find its sales order in Acumatica (``CustomerOrder``), create
  the payment applied to it, release it;
- credit memo: read the credit memo and its order from Magento, find the sales order (for the
  customer), create the credit memo, release it, create the refund applied to it, release it;
- order entered in Acumatica (``2 x ORDERS`` more, entered through the REST API as a clerk does, for
  Acumatica customers Magento does not know yet, two per side; half synced by the erp-orders flow's poll and
  queue, then half by the naive one): read the sales order and its customer from Acumatica, look the
  customer up in Magento by email (create it when missing), create the Magento order, write its number
  back into the sales order's ``ExternalRef``. (Its Magento order is built from the sales order's SKUs
  and quantities by the sims' order builder: the request count, not the mapping, is compared here.)

It looks nothing up before it writes, so it pays or credits twice after a lost answer; erpsync
looks only then (a pending binding), so its happy path costs what the naive one does or less.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

from bench.common import RUNS, Bench, median, warm_sessions
from bench.poll_cost import purge

ORDERS = 8
SECTION = "## 12. The order's life: payments, credit memos and orders entered in the ERP, beside a naive connector"
ERP_CUSTOMERS = (("BENCHPH1", "phone.one@example.com"), ("BENCHPH2", "phone.two@example.com"))
NAIVE_CUSTOMERS = (("BENCHNV1", "naive.one@example.com"), ("BENCHNV2", "naive.two@example.com"))
"""Each side's orders entered in the ERP are for two customers of its own, new to Magento in the first run."""


def _place(bench: Bench, count: int, customers: list[dict[str, Any]], method: str) -> list[dict[str, Any]]:
    """Orders placed, invoiced with capture in Magento (what a card checkout leaves)."""
    from sandbox.sims import magento_orders as mo

    carts = [[mo.CartLine("24-MB01", 2)], [mo.CartLine("24-MB04", 1), mo.CartLine("24-WG084", 3)]]
    out = []
    for i in range(count):
        order = mo.build_order(
            bench.story.catalog, carts[i % 2], customer=customers[i % len(customers)], payment_method=method
        )
        saved = bench.story.magento.call("POST", "/orders", json={"entity": order})
        bench.story.magento.call("POST", f"/order/{saved['entity_id']}/invoice", json={"capture": True})
        out.append(bench.story.magento.call("GET", f"/orders/{saved['entity_id']}"))
    return out


def _refund(bench: Bench, order: dict[str, Any]) -> None:
    line = next(it for it in order["items"] if it.get("parent_item_id") is None)
    bench.story.magento.call(
        "POST",
        f"/order/{order['entity_id']}/refund",
        json={"items": [{"order_item_id": line["item_id"], "qty": 1}], "arguments": {"shipping_amount": 0}},
    )


def _erpsync(bench: Bench, rt: Any) -> dict[str, float]:
    bench.clear()
    rt.poll()
    outcomes = rt.drain()
    synced = sum(o.outcome == "synced" for o in outcomes)
    reqs = bench.data_requests()
    return {"records": synced, "magento": reqs["magento"] / synced, "acumatica": reqs["acumatica"] / synced}


class Naive:
    """The first-version connector, over the story's plain clients (sign-ins not counted)."""

    def __init__(self, bench: Bench) -> None:
        self.mag, self.acu = bench.story.magento, bench.story.acumatica
        self.catalog = bench.story.catalog

    def _sales_order(self, number: str) -> dict[str, Any]:
        flt = quote(f"CustomerOrder eq '{number}'")
        return dict(self.acu.get("SalesOrder", f"$filter={flt}&$select=OrderType,OrderNbr,CustomerID")[0])

    def pay(self, order_id: int) -> None:
        order = self.mag.call("GET", f"/orders/{order_id}")
        so = self._sales_order(order["increment_id"])
        payment = self.acu.put(
            "Payment",
            {
                "Type": {"value": "Payment"},
                "CustomerID": so["CustomerID"],
                "PaymentMethod": {"value": "CREDITCARD"},
                "PaymentAmount": {"value": order["total_paid"]},
                "PaymentRef": {"value": order["payment"].get("last_trans_id") or order["increment_id"]},
                "OrdersToApply": [{"OrderType": so["OrderType"], "OrderNbr": so["OrderNbr"]}],
            },
        )
        self.acu.action("Payment", "ReleasePayment", {"Type": payment["Type"], "ReferenceNbr": payment["ReferenceNbr"]})

    def credit(self, memo_id: int) -> None:
        memo = self.mag.call("GET", f"/creditmemo/{memo_id}")
        order = self.mag.call("GET", f"/orders/{memo['order_id']}")
        so = self._sales_order(order["increment_id"])
        lines = [
            {
                "InventoryID": {"value": it["sku"]},
                "Qty": {"value": it["qty"]},
                "UnitPrice": {"value": it["price"]},
                "DiscountAmount": {"value": it.get("discount_amount") or 0},
                "ManualDiscount": {"value": True},
            }
            for it in memo["items"]
            if it.get("price")
        ]
        cm = self.acu.put(
            "SalesInvoice",
            {
                "Type": {"value": "Credit Memo"},
                "CustomerID": so["CustomerID"],
                "Hold": {"value": False},
                "Details": lines,
            },
        )
        self.acu.action("SalesInvoice", "ReleaseSalesInvoice", {"Type": cm["Type"], "ReferenceNbr": cm["ReferenceNbr"]})
        refund = self.acu.put(
            "Payment",
            {
                "Type": {"value": "Refund"},
                "CustomerID": so["CustomerID"],
                "PaymentMethod": {"value": "CREDITCARD"},
                "PaymentAmount": cm["Amount"],
                "DocumentsToApply": [{"DocType": cm["Type"], "ReferenceNbr": cm["ReferenceNbr"]}],
            },
        )
        self.acu.action("Payment", "ReleasePayment", {"Type": refund["Type"], "ReferenceNbr": refund["ReferenceNbr"]})

    def erp_order(self, key: str) -> None:
        from sandbox.sims import magento_orders as mo

        order_type, _, number = key.partition("/")
        so = self.acu.get(f"SalesOrder/{order_type}/{number}", "$expand=Details,Totals")
        erp_customer = self.acu.get(f"Customer/{so['CustomerID']['value']}", "$expand=MainContact/Address")
        contact = erp_customer["MainContact"]
        email = contact["Email"]["value"]
        found = self.mag.search("/customers/search", "email", email)
        customer = found[0] if found else self._new_customer(email, contact)
        cart = [mo.CartLine(ln["InventoryID"]["value"], int(ln["OrderQty"]["value"])) for ln in so["Details"]]
        entity = mo.build_order(self.catalog, cart, customer=customer)
        saved = self.mag.call("POST", "/orders", json={"entity": entity})
        self.acu.put(
            "SalesOrder",
            {"OrderType": so["OrderType"], "OrderNbr": so["OrderNbr"], "ExternalRef": {"value": saved["increment_id"]}},
        )

    def _new_customer(self, email: str, contact: dict[str, Any]) -> dict[str, Any]:
        first = contact.get("FirstName", {}).get("value") or "Phone"
        last = contact.get("LastName", {}).get("value") or "Buyer"
        address = contact.get("Address") or {}

        def val(name: str) -> Any:
            return (address.get(name) or {}).get("value") or ""

        body = {
            "email": email,
            "firstname": first,
            "lastname": last,
            "website_id": 1,
            "addresses": [
                {
                    "firstname": first,
                    "lastname": last,
                    "street": [val("AddressLine1")],
                    "city": val("City"),
                    "region": {"region_code": val("State")},
                    "postcode": val("PostalCode"),
                    "country_id": val("Country") or "US",
                    "telephone": "5550100",
                    "default_billing": True,
                    "default_shipping": True,
                }
            ],
        }
        return dict(self.mag.call("POST", "/customers", json={"customer": body}))


def _enter(bench: Bench, count: int, customers: tuple[tuple[str, str], ...]) -> list[str]:
    """Orders entered in Acumatica as a clerk does (two lines, freight), for ``customers`` in turn;
    their keys."""
    skus = [p["sku"] for p in bench.story.catalog if p.get("type_id") == "simple"][:2]
    keys = []
    for i in range(count):
        so = bench.story.acumatica.put(
            "SalesOrder",
            {
                "OrderType": {"value": "SO"},
                "CustomerID": {"value": customers[i % len(customers)][0]},
                "Description": {"value": "Phone order"},
                "Details": [
                    {"InventoryID": {"value": skus[0]}, "OrderQty": {"value": 2}, "UnitPrice": {"value": 30}},
                    {"InventoryID": {"value": skus[1]}, "OrderQty": {"value": 1}, "UnitPrice": {"value": 45}},
                ],
                "Totals": {"PremiumFreight": {"value": 7.5}},
            },
        )
        keys.append(f"{so['OrderType']['value']}/{so['OrderNbr']['value']}")
    return keys


def _erp_customers(bench: Bench) -> None:
    for customer_id, email in ERP_CUSTOMERS + NAIVE_CUSTOMERS:
        bench.story.acumatica.put(
            "Customer",
            {
                "CustomerID": {"value": customer_id},
                "CustomerName": {"value": f"Phone buyer {customer_id[-1]}"},
                "MainContact": {
                    "Email": {"value": email},
                    "FirstName": {"value": "Pat"},
                    "LastName": {"value": f"Phone{customer_id[-1]}"},
                    "Address": {
                        "AddressLine1": {"value": "1 Dial Street"},
                        "City": {"value": "Austin"},
                        "State": {"value": "TX"},
                        "PostalCode": {"value": "78701"},
                        "Country": {"value": "US"},
                    },
                },
            },
        )


def _erp_orders_handled_elsewhere(bench: Bench, keys: list[str]) -> None:
    """The naive connector's orders as seen versions (at their version after its write-back): they
    are not erpsync's to sync, whenever its poll reads them."""
    from erpsync.state.bindings import SeenVersions

    versions = {}
    for key in keys:
        order_type, _, number = key.partition("/")
        so = bench.story.acumatica.get(f"SalesOrder/{order_type}/{number}", "$select=LastModified")
        versions[key] = str(so["LastModified"]["value"])
    SeenVersions(os.environ["BINDINGS_TABLE"]).mark_many("erp-orders#acumatica", versions)


def _naive(bench: Bench, act: Any, ids: list[Any]) -> dict[str, float]:
    bench.clear()
    for i in ids:
        act(i)
    reqs = bench.data_requests()
    return {"records": len(ids), "magento": reqs["magento"] / len(ids), "acumatica": reqs["acumatica"] / len(ids)}


def run(bench: Bench, runs: int = RUNS, orders: int = ORDERS) -> dict[str, Any]:
    customers = bench.story.seed_customers(2)
    # the naive connector's orders are paid by purchase order: erpsync's rule leaves them to it
    bench.settings({"payments": {"rules": {"purchaseorder": {"action": "skip"}}}})
    _erp_customers(bench)
    rts = {flow: bench.runtime(flow) for flow in ("orders", "payments", "credit-memos", "erp-orders")}
    for rt in rts.values():
        warm_sessions(rt)
    naive = Naive(bench)
    samples: dict[str, list[dict[str, float]]] = {k: [] for k in KINDS}
    try:
        for _ in range(runs):
            for flow in ("payments", "credit-memos"):  # what earlier sections left is not counted here
                rts[flow].poll()
                purge(bench, flow)
            mine = _place(bench, orders, customers, "braintree")
            theirs = _place(bench, orders, customers, "purchaseorder")
            rts["orders"].poll()
            rts["orders"].drain()
            samples["payment"].append(_erpsync(bench, rts["payments"]))
            samples["naive_payment"].append(_naive(bench, naive.pay, [int(o["entity_id"]) for o in theirs]))
            for o in mine:
                _refund(bench, o)
            samples["credit"].append(_erpsync(bench, rts["credit-memos"]))
            before = _memo_ids(bench)
            for o in theirs:
                _refund(bench, o)
            naive_memos = sorted(_memo_ids(bench) - before)
            samples["naive_credit"].append(_naive(bench, naive.credit, naive_memos))
            _handled_elsewhere(bench, "credit-memos", naive_memos)
            rts["erp-orders"].poll()  # what changed in Acumatica so far (the sales orders above) is worked off
            rts["erp-orders"].drain()
            _enter(bench, orders, ERP_CUSTOMERS)
            samples["erp_order"].append(_erpsync(bench, rts["erp-orders"]))
            theirs_erp = _enter(bench, orders, NAIVE_CUSTOMERS)
            samples["naive_erp_order"].append(_naive(bench, naive.erp_order, theirs_erp))
            _erp_orders_handled_elsewhere(bench, theirs_erp)
    finally:
        bench.settings({"payments": {"rules": {"purchaseorder": None}}})
    from datetime import UTC, datetime

    from bench.common import git_commit
    from bench.report import ROOT

    result: dict[str, Any] = {
        "runs": runs,
        "orders": orders,
        "commit": git_commit(ROOT),
        "run_at": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
    }
    for key, rows in samples.items():
        result[key] = {k: median([r[k] for r in rows]) for k in ("records", "magento", "acumatica")}
    return result


KINDS = ("payment", "naive_payment", "credit", "naive_credit", "erp_order", "naive_erp_order")


def _handled_elsewhere(bench: Bench, flow: str, memo_ids: list[int]) -> None:
    """Mark the naive connector's credit memos as handled (the seen versions a poll leaves out):
    they are not erpsync's to sync, whenever its poll reads them."""
    from erpsync.state.bindings import SeenVersions

    seen = SeenVersions(os.environ["BINDINGS_TABLE"])
    memos = {m: bench.story.magento.call("GET", f"/creditmemo/{m}") for m in memo_ids}
    seen.mark_many(f"{flow}#magento", {str(m): str(memo.get("updated_at") or "") for m, memo in memos.items()})


def _memo_ids(bench: Bench) -> set[int]:
    return {int(m["entity_id"]) for m in bench.story.magento.search("/creditmemos", "entity_id", 0, "gt")}


def section(result: dict[str, Any]) -> list[str]:
    """The benchmark's part of docs/PERFORMANCE.md."""
    lines = [
        SECTION,
        "",
        f"Run: commit `{result.get('commit', '?')}`, {result.get('run_at', '?')}. "
        f"{result['runs']} runs of {result['orders']} records per side (`bench/order_money.py`): card orders "
        "invoiced with capture in Magento, paid in Acumatica by the payments flow (poll, then the queue) or "
        "by the naive connector; then one item of each refunded in Magento and the credit memo brought to "
        "Acumatica (credit memo released, refund applied and released); and orders entered in Acumatica for "
        "customers Magento does not know yet, brought to Magento by the erp-orders flow (poll, then the queue) "
        "or by the naive connector. Requests per record, medians; "
        "sign-ins left out; an Acumatica action counts twice (its POST and the read of its status).",
        "",
        "| record | connector | records | Magento req/record | Acumatica req/record |",
        "|---|---|---|---|---|",
    ]
    for key, record, who in (
        ("payment", "payment", "erpsync"),
        ("naive_payment", "payment", "naive"),
        ("credit", "credit memo", "erpsync"),
        ("naive_credit", "credit memo", "naive"),
        ("erp_order", "order entered in the ERP", "erpsync"),
        ("naive_erp_order", "order entered in the ERP", "naive"),
    ):
        r = result[key]
        lines.append(f"| {record} | {who} | {r['records']:.0f} | {r['magento']:.2f} | {r['acumatica']:.2f} |")
    p, np_, c, nc, e, ne = (result[k] for k in KINDS)
    lines += [
        "",
        f"- Payments: erpsync {p['magento']:.2f} Magento and {p['acumatica']:.2f} Acumatica requests per payment, "
        f"the naive connector {np_['magento']:.2f} and {np_['acumatica']:.2f}: the poll reads whole orders (its "
        "share per order, no read of its own), and the sales order and the customer come from the bindings.",
        f"- Credit memos: erpsync {c['magento']:.2f} and {c['acumatica']:.2f}, naive {nc['magento']:.2f} and "
        f"{nc['acumatica']:.2f}. The naive one looks nothing up before it writes, so a lost answer makes it pay or "
        "credit twice; erpsync looks up only after one (a pending binding), so its happy path costs no more.",
        f"- Orders entered in Acumatica: erpsync {e['magento']:.2f} Magento and {e['acumatica']:.2f} Acumatica "
        f"requests per order, naive {ne['magento']:.2f} and {ne['acumatica']:.2f}. erpsync reads each order once "
        "(its customer's email is on its bill-to contact) beside its share of the poll, where the naive one "
        "reads the order and then its customer; both look the customer up in Magento by email for each order "
        "(created when missing: each side's orders are for two customers of its own, new to Magento in the "
        "first run) and write the Magento number back into `ExternalRef`.",
        "",
    ]
    return lines


if __name__ == "__main__":
    import argparse

    from bench.common import alone
    from bench.report import put_section

    parser = argparse.ArgumentParser(description="Payments and credit memos beside a naive connector, alone.")
    parser.add_argument("--doc", action="store_true", help="rewrite its section of docs/PERFORMANCE.md")
    args = parser.parse_args()
    res = alone(run)
    print("\n".join(section(res)))
    if args.doc:
        put_section("order_money", SECTION, section(res), res)
