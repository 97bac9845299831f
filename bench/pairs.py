"""Benchmark 13: requests per order for the new pairs (Shopify -> Acumatica, Magento -> QuickBooks,
Shopify -> QuickBooks), beside a naive connector, and the throughput each system's ceiling allows.

Each run places ``ORDERS`` paid orders in the store (through its API: Shopify's ``orderCreate``,
Magento's ``POST /V1/orders``), then the orders and payments flows poll and drain them on the local
stack (``LocalStack(store=..., erp=...)``; webhooks on, as a merchant's app has them). Counted from
the sims' request logs: the store's requests and, for Shopify, the points its cost bucket was
charged (actual cost); the ERP's requests. The naive connector does per order what a simple
integration does: read the order from the store, search the customer by email, look each line's
item up, create the sales receipt (QuickBooks) or the sales order and its payment (Acumatica,
``bench/naive.py``); it is run on the same orders. The ceilings: QuickBooks allows 500 requests a
minute per company, Shopify's standard plan refills 100 points a second.

Then, timed (``throughput``): each pair against the ceiling that binds it, lowered so a run of a few
minutes lives under it (QuickBooks' requests a minute, set in its sim and held by the settings'
``rate_limits``; for Shopify -> Acumatica, Shopify's bucket refilling ``SHOPIFY_RESTORE`` points a
second). ``THROUGHPUT_ORDERS`` paid orders are placed at once and the local stack's pollers and
workers run on their own; the rate is read between the moments 10% and 90% of the orders were
created in the ERP, against what the ceiling allows for the work each order took in that run (the
useful requests, or points, of every flow over the orders created: ``sandbox.chaos.drain_figures``,
the chaos run's own measure). The goal (issue 12): at least 0.8 of that.

``python -m bench.pairs`` runs this one and puts its section into docs/PERFORMANCE.md; ``--untimed``
measures the requests per order alone and keeps the timed table the page has.
"""

from __future__ import annotations

import logging
import sys
from decimal import Decimal
from typing import Any

import httpx

from bench.common import RUNS, median

ORDERS = 20
PAIRS = (("shopify", "acumatica"), ("magento", "quickbooks"), ("shopify", "quickbooks"))
SECTION = "## 13. Any pair: requests per order, beside a naive connector, and what each ceiling allows"
QBO_PER_MINUTE = 500
SHOPIFY_POINTS_PER_S = 100
THROUGHPUT_ORDERS = 40
THROUGHPUT_PER_MINUTE = 90
"""QuickBooks' ceiling in the timed runs (its real one is 500: the same limiter, a shorter run)."""
SHOPIFY_RESTORE = 10.0
SHOPIFY_BUCKET = 200.0
"""Shopify's refill in points a second and its bucket in the timed run of Shopify -> Acumatica: a
bucket small beside the run's work (a full one is a burst the ceiling then does not bind)."""
THROUGHPUT_SCHEDULE_S = 30.0
"""Polls every 30 s in the timed runs (the template's are minutes apart: polls every few seconds
would spend the lowered ceilings on polling, which real schedules do not)."""
THROUGHPUT_GOAL = 0.8


def _requests(url: str) -> int:
    return int(httpx.get(f"{url}/_sim/requests", timeout=30).json()["count"])


def _clear(url: str) -> None:
    httpx.delete(f"{url}/_sim/requests", timeout=30)


def _points(url: str, since: float) -> float:
    rows = httpx.get(f"{url}/_sim/costs", timeout=30).json()["queries"]
    return float(sum(r.get("actual", r["cost"]) for r in rows if r["at"] >= since))


def _drain(flow: str) -> list[str]:
    from erpsync.runtime.lambda_app import build

    rt = build(flow)
    rt.poll()
    return [o.outcome for o in rt.drain()]


def _naive_quickbooks(stack: Any, placed: list[tuple[str, str]]) -> dict[str, float]:
    """What a naive connector spends per order: the store's read, then QuickBooks' customer search,
    one item query per line and the create (a customer create when the search finds none)."""
    from erpsync.systems.quickbooks.client import QuickBooksClient, quoted

    creds = stack.credentials["quickbooks"]
    books = QuickBooksClient(creds["base_url"], creds["realm_id"], lambda: creds["access_token"])
    store_url, erp_url = stack.sim_urls[stack.store], stack.sim_urls["quickbooks"]
    _clear(store_url)
    _clear(erp_url)
    for ref, email in placed:
        lines = _store_read(stack, ref)
        found = books.query(f"select * from Customer where PrimaryEmailAddr = {quoted(email)}").get("Customer") or []
        customer = (
            found[0]["Id"]
            if found
            else books.post("/customer", {"DisplayName": f"naive {email}", "PrimaryEmailAddr": {"Address": email}})[
                "Customer"
            ]["Id"]
        )
        body_lines = []
        for sku, qty, price in lines:
            item = books.query(f"select * from Item where Sku = {quoted(sku)}")["Item"][0]["Id"]
            body_lines.append(
                {
                    "DetailType": "SalesItemLineDetail",
                    "Amount": float(qty * price),
                    "SalesItemLineDetail": {"ItemRef": {"value": item}, "Qty": float(qty), "UnitPrice": float(price)},
                }
            )
        books.post("/salesreceipt", {"CustomerRef": {"value": customer}, "Line": body_lines})
    n = len(placed)
    return {"store": _requests(store_url) / n, "erp": _requests(erp_url) / n}


def _naive_acumatica(stack: Any, placed: list[tuple[str, str, str]]) -> dict[str, float]:
    """What the naive connector (``bench/naive.py``) spends per order with Acumatica behind any store:
    the store's read, then its Acumatica part (sign-in, customer, each line's item, the sales order,
    the payment, sign-out)."""
    from bench.naive import NaiveConnector

    naive = NaiveConnector(stack.credentials[stack.store], stack.credentials["acumatica"])
    store_url, erp_url = stack.sim_urls[stack.store], stack.sim_urls["acumatica"]
    _clear(store_url)
    _clear(erp_url)
    for ref, number, email in placed:
        lines = [(sku, float(qty), float(price)) for sku, qty, price in _store_read(stack, ref)]
        naive.book(f"naive-{number}", email, "", lines, sum(q * p for _, q, p in lines))
    n = len(placed)
    return {"store": _requests(store_url) / n, "erp": _requests(erp_url) / n}


def _store_read(stack: Any, ref: str) -> list[tuple[str, Decimal, Decimal]]:
    url = stack.sim_urls[stack.store]
    if stack.store == "shopify":
        from erpsync.systems.shopify.mapping import ORDER_QUERY

        body = httpx.post(
            f"{url}/admin/api/2025-01/graphql.json",
            json={"query": ORDER_QUERY, "variables": {"id": ref}},
            headers={"X-Shopify-Access-Token": stack.credentials["shopify"]["access_token"]},
            timeout=30,
        ).json()
        nodes = body["data"]["order"]["lineItems"]["nodes"]
        return [
            (n["sku"], Decimal(n["quantity"]), Decimal(n["originalUnitPriceSet"]["shopMoney"]["amount"])) for n in nodes
        ]
    creds = stack.credentials["magento"]
    token = httpx.post(
        f"{creds['base_url']}/V1/integration/admin/token",
        json={"username": creds["username"], "password": creds["password"]},
        timeout=30,
    ).json()
    order = httpx.get(
        f"{creds['base_url']}/V1/orders/{ref}", headers={"Authorization": f"Bearer {token}"}, timeout=30
    ).json()
    return [
        (i["sku"], Decimal(str(i["qty_ordered"])), Decimal(str(i["price"])))
        for i in order["items"]
        if not i.get("parent_item_id")
    ]


def _place(stack: Any, run: int, n: int) -> tuple[str, str, str]:
    """One paid order (its store ref, its number and the buyer's email)."""
    email = f"bench{run}-{n}@example.com"
    first, last = f"Buyer{run}x{n}", "Bench"  # people with names of their own (a shared name costs QuickBooks a 6240)
    if stack.store == "shopify":
        from sandbox.shopify_merchant import Cart, ShopifyMerchant

        with httpx.Client(base_url=stack.sim_urls["shopify"], timeout=30) as http:
            merchant = ShopifyMerchant(http, stack.credentials["shopify"]["access_token"])
            address = {
                "firstName": first,
                "lastName": last,
                "address1": "1 Main St",
                "city": "Calder",
                "countryCode": "US",
            }
            cart = Cart([("24-MB01", 1), ("24-WG084", 2)], shipping=Decimal("5"), tax_rate=Decimal("0.0825"))
            placed = merchant.place(email, cart, address)
        return placed["id"], placed["name"], email
    from sandbox.sims import magento_orders as mo

    address = {**mo.sample_customer()["addresses"][0], "firstname": first, "lastname": last}
    order = mo.build_order(
        mo.sample_catalog(),
        [mo.CartLine("24-MB01", 1), mo.CartLine("24-WG084", 2)],
        guest_email=email,
        address=address,
        shipping_amount=5,
        tax_rate="8.25",
        payment_method="braintree",
        captured=True,
    )
    [saved] = httpx.post(f"{stack.sim_urls['magento']}/_sim/seed", json={"orders": [order]}, timeout=30).json()[
        "orders"
    ]
    return str(saved["entity_id"]), str(saved["increment_id"]), email


def measure(store: str, erp: str, runs: int = RUNS, orders: int = ORDERS) -> dict[str, Any]:
    import time

    from sandbox.local.stack import LOCAL_SETTINGS, LocalStack, default_seed

    out: dict[str, list[float]] = {"store": [], "erp": [], "points": [], "naive_store": [], "naive_erp": []}
    with LocalStack(
        store=store,
        erp=erp,
        run_pollers=False,
        run_schedules=False,
        state_file=None,
        seed=default_seed(),
        settings=LOCAL_SETTINGS,
    ) as stack:
        if erp == "quickbooks":  # requests are counted here, not throttled: the ceiling is derived from them
            httpx.post(
                f"{stack.sim_urls[erp]}/_sim/seed",
                json={"limits": {"per_minute": 100_000, "per_second": 1000}},
                timeout=30,
            )
        for run in range(runs):
            placed = [_place(stack, run, n) for n in range(orders)]
            store_url, erp_url = stack.sim_urls[store], stack.sim_urls[erp]
            if store == "shopify":
                httpx.post(f"{store_url}/_sim/webhooks/flush", timeout=60)
            _clear(store_url)
            _clear(erp_url)
            since = time.time()
            synced = _drain("orders").count("synced")
            paid = _drain("payments").count("synced")
            if synced != orders or paid != orders:
                raise RuntimeError(
                    f"{store} -> {erp} run {run}: {synced} orders and {paid} payments synced of {orders}"
                )
            out["store"].append(_requests(store_url) / orders)
            out["erp"].append(_requests(erp_url) / orders)
            if store == "shopify":
                out["points"].append(_points(store_url, since) / orders)
            if erp == "quickbooks":
                naive = _naive_quickbooks(stack, [(ref, email) for ref, _, email in placed])
            else:
                naive = _naive_acumatica(stack, placed)
            out["naive_store"].append(naive["store"])
            out["naive_erp"].append(naive["erp"])
    return {k: median(v) for k, v in out.items() if v}


def throughput(
    store: str,
    erp: str,
    orders: int = THROUGHPUT_ORDERS,
    per_minute: int = THROUGHPUT_PER_MINUTE,
    restore: float = SHOPIFY_RESTORE,
    max_wait_s: float = 900.0,
) -> dict[str, Any]:
    """Orders a minute against the ceiling that binds the pair (see the module's docstring)."""
    import os
    import time

    from erpsync.state.bindings import Bindings
    from sandbox.chaos import drain_figures
    from sandbox.local.stack import LOCAL_SETTINGS, LocalStack, default_seed

    settings: dict[str, Any] = dict(LOCAL_SETTINGS)
    if erp == "quickbooks":
        settings["rate_limits"] = {"quickbooks": {"per_minute": per_minute, "concurrent": 10}}
    with LocalStack(
        store=store,
        erp=erp,
        state_file=None,
        schedule_seconds=THROUGHPUT_SCHEDULE_S,
        seed=default_seed(),
        settings=settings,
    ) as stack:
        store_url, erp_url = stack.sim_urls[store], stack.sim_urls[erp]
        if erp == "quickbooks":
            httpx.post(f"{erp_url}/_sim/seed", json={"limits": {"per_minute": per_minute}}, timeout=30)
        _clear(store_url)
        _clear(erp_url)
        started = time.time()
        placed = [_place(stack, 0, n) for n in range(orders)]
        if erp == "acumatica":  # the merchant's own orderCreates were spared the low refill
            httpx.post(
                f"{store_url}/_sim/seed",
                json={"throttle": {"maximum": SHOPIFY_BUCKET, "restore_rate": restore}},
                timeout=30,
            )
        ids = [ref.rsplit("/", 1)[-1] for ref, _, _ in placed]
        bindings = Bindings(os.environ["BINDINGS_TABLE"])
        deadline = time.monotonic() + max_wait_s
        while bindings.unbound("order", store, ids, erp) and time.monotonic() < deadline:
            time.sleep(1.0)
        ended = time.time()
        missing = len(bindings.unbound("order", store, ids, erp))
        rows = httpx.get(f"{erp_url}/_sim/requests", timeout=60).json()["requests"]
        creates = ("/salesreceipt", "/invoice") if erp == "quickbooks" else ("/SalesOrder",)
        done = [
            r["at"]
            for r in rows
            if r["method"] in ("POST", "PUT") and r["path"].endswith(creates) and r.get("applied_status") == 200
        ]
        if erp == "quickbooks":
            useful = [r["at"] for r in rows if r["status"] == 200]
            ceiling, unit = per_minute, "requests"
        else:  # Shopify's bucket binds: every point charged is a unit of work
            costs = httpx.get(f"{store_url}/_sim/costs", timeout=30).json()["queries"]
            useful = [
                q["at"]
                for q in costs
                if q["at"] >= started and not q["throttled"]
                for _ in range(round(q.get("actual", q["cost"])))
            ]
            ceiling, unit = round(restore * 60), "points"
        figures = drain_figures(
            done, started, useful, backlog=orders, ended_at=ended, concurrent=0, latency_s=0.0, per_minute=ceiling
        )
    return {**figures, "unit": unit, "ceiling": ceiling, "missing": missing, "orders": orders}


def run(runs: int = RUNS, orders: int = ORDERS, timed_orders: int = THROUGHPUT_ORDERS) -> dict[str, Any]:
    logging.getLogger().setLevel(logging.WARNING)
    for noisy in ("erpsync", "httpx", "botocore", "urllib3.connectionpool"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    return {
        "orders": orders,
        "runs": runs,
        "pairs": {f"{s}->{e}": measure(s, e, runs, orders) for s, e in PAIRS},
        "throughput": {f"{s}->{e}": throughput(s, e, timed_orders) for s, e in PAIRS} if timed_orders else {},
    }


def section(res: dict[str, Any]) -> list[str]:
    lines = [
        SECTION,
        "",
        f"{res['orders']} paid orders per run, {res['runs']} runs, medians; the orders flow and the payments "
        "flow, each polled and drained on the local stack for the pair (`bench/pairs.py`). Store requests "
        "include the polls; for Shopify, points are what its cost bucket was charged (actual cost). The naive "
        "connector, per order: the store's read, then with QuickBooks a customer search by email, one item "
        "query per line, the sales receipt create; with Acumatica `bench/naive.py`'s part (sign-in, customer "
        "search, one `GET StockItem` per line, `PUT SalesOrder`, `PUT Payment`, sign-out).",
        "",
        "| pair | erpsync store req/order | Shopify points/order | erpsync ERP req/order | naive store "
        "| naive ERP | ERP, erpsync / naive | orders/min the ceilings allow |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for pair, m in res["pairs"].items():
        store, erp = pair.split("->")
        allows = []
        if erp == "quickbooks" and m["erp"]:
            allows.append(f"QuickBooks {QBO_PER_MINUTE / m['erp']:.0f}")
        if store == "shopify" and m.get("points"):
            allows.append(f"Shopify {SHOPIFY_POINTS_PER_S * 60 / m['points']:.0f}")
        ratio = f"{m['erp'] / m['naive_erp']:.2f}x" if m.get("naive_erp") else "-"
        lines.append(
            f"| {store} -> {erp} | {m['store']:.2f} | {m.get('points', 0):.1f} | {m['erp']:.2f} | "
            f"{m.get('naive_store', 0) or '-'} | {m.get('naive_erp', 0) or '-'} | {ratio} | "
            f"{', '.join(allows) or '-'} |"
        )
    lines += [
        "",
        "The ceilings' figures are what the measured requests per order leave room for: QuickBooks' 500 "
        "requests a minute per company over the QuickBooks requests per order, Shopify's 100 points a "
        "second over the points per order. The timed runs below measure them.",
    ]
    timed = res.get("throughput") or {}
    if timed:
        lines += [
            "",
            f"**Timed, against the ceiling** (`throughput`): {next(iter(timed.values()))['orders']} paid orders placed "
            "at once, the local stack's pollers and workers on their own, the rate read between 10% and 90% of "
            f"the orders created in the ERP; QuickBooks' ceiling lowered to {THROUGHPUT_PER_MINUTE} requests a "
            f"minute (held by the settings' `rate_limits`), Shopify's refill to {SHOPIFY_RESTORE:g} points a second "
            f"(bucket {SHOPIFY_BUCKET:g}) for Shopify -> Acumatica; polls every {THROUGHPUT_SCHEDULE_S:g} s. "
            f"Goal: at least {THROUGHPUT_GOAL} of what the ceiling allows. The work per order is all the run "
            "spent over the orders it created, the polls of every flow included: under a ceiling lowered this "
            "far a run lasts minutes, and polls every 30 s take a large share (Shopify -> Acumatica's points "
            "per order are mostly polls; the untimed table above has the orders' own).",
            "",
            "| pair | ceiling | work per order | orders/min the ceiling allows | orders/min measured | ratio "
            "| whole run | goal |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for pair, t in timed.items():
            store, erp = pair.split("->")
            if "ratio" not in t:
                lines.append(
                    f"| {store} -> {erp} | {t['ceiling']} {t['unit']}/min | - | - | - | - | - | not measured "
                    f"({t.get('arrived', 0)} of {t['orders']} orders arrived) |"
                )
                continue
            met = "met" if t["ratio"] >= THROUGHPUT_GOAL else "**not met**"
            lines.append(
                f"| {store} -> {erp} | {t['ceiling']} {t['unit']}/min | {t['requests_per_order']} {t['unit']} | "
                f"{t['ceiling_orders_per_min']} | {t['orders_per_min']} | {t['ratio']:.2f} | "
                f"{t['whole_s']:.0f} s, {t['whole_orders_per_min']}/min ({t['whole_ratio']:.2f}) | {met} |"
            )
    return lines


def kept_timed(doc: str) -> list[str]:
    """The timed part of the section ``doc`` has now (from ``**Timed`` to the section's end), or none."""
    start = doc.find(SECTION)
    if start == -1:
        return []
    end = doc.find("\n## ", start + len(SECTION))
    body = doc[start : end if end != -1 else len(doc)].splitlines()
    at = next((i for i, line in enumerate(body) if line.startswith("**Timed")), None)
    return [] if at is None else ["", *body[at:]]


def main(argv: list[str] | None = None) -> int:
    import argparse

    from bench.report import ROOT, put_section

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--untimed",
        action="store_true",
        help="measure the requests per order only (minutes, not the timed runs' three quarters of an hour) and "
        "keep the timed table the page has",
    )
    args = p.parse_args(argv)
    res = run(timed_orders=0) if args.untimed else run()
    lines = section(res)
    if args.untimed:
        lines += kept_timed((ROOT / "docs" / "PERFORMANCE.md").read_text())
    put_section("pairs", SECTION, lines, res)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
