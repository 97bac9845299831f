"""Benchmark 13: requests per order for the new pairs (Shopify -> Acumatica, Magento -> QuickBooks,
Shopify -> QuickBooks, Magento -> SAP Business One, Shopify -> SAP Business One, Magento -> S/4HANA),
beside a naive connector, and the throughput each system's ceiling allows.

Each run places ``ORDERS`` paid orders in the store (through its API: Shopify's ``orderCreate``,
Magento's ``POST /V1/orders``), then the orders and payments flows poll and drain them on the local
stack (``LocalStack(store=..., erp=...)`` with ``local_settings(store, erp)``; webhooks on, as a
merchant's app has them; S/4HANA takes no payments, so its runs drain the orders flow alone).
Counted from the sims' request logs: the store's requests and, for Shopify, the points its cost
bucket was charged (actual cost); the ERP's requests. The naive connector does per order what a
simple integration does, re-reading everything and batching nothing: read the order from the store,
then its ERP part (QuickBooks: customer search, one item query per line, the sales receipt;
Acumatica: ``bench/naive.py``; SAP Business One: sign-in, partner search, one item read per line,
the order, a down payment and the incoming payment, sign-out; S/4HANA: a CSRF fetch and the deep
insert, see ``_naive_sap_s4``); it is run on the same orders. The ceilings: QuickBooks allows 500
requests a minute per company, Shopify's standard plan refills 100 points a second; SAP publishes
none (``CEILING_SET``).

Then, timed (``throughput``): each pair against the ceiling that binds it, lowered so a run of a few
minutes lives under it (QuickBooks' requests a minute, set in its sim and held by the settings'
``rate_limits``; SAP's, set in the settings' ``rate_limits`` alone: its sims enforce none; for
Shopify -> Acumatica, Shopify's bucket refilling ``SHOPIFY_RESTORE`` points a second).
``THROUGHPUT_ORDERS`` paid orders are placed at once and the local stack's pollers and workers run
on their own; the rate is read between the moments 10% and 90% of the orders were created in the
ERP, against what the ceiling allows for the work each order took in that run (the useful requests,
or points, of every flow over the orders created: ``sandbox.chaos.drain_figures``, the chaos run's
own measure). The goal (issue 12): at least 0.8 of that.

``python -m bench.pairs`` runs this one and puts its section into docs/PERFORMANCE.md; ``--untimed``
measures the requests per order alone and keeps the timed rows the page has; ``--pair STORE ERP``
(repeatable) measures those pairs alone and keeps the page's rows of the others.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import sys
from collections import Counter
from collections.abc import Collection
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx

from bench.common import RUNS, median

ORDERS = 20
PAIRS = (
    ("shopify", "acumatica"),
    ("magento", "quickbooks"),
    ("shopify", "quickbooks"),
    ("magento", "sap_b1"),
    ("shopify", "sap_b1"),
    ("magento", "sap_s4"),
)
SECTION = "## 13. Any pair: requests per order, beside a naive connector, and what each ceiling allows"
QBO_PER_MINUTE = 500
SHOPIFY_POINTS_PER_S = 100
THROUGHPUT_ORDERS = 40
THROUGHPUT_ORDERS_BY_ERP = {"sap_s4": 200}
"""S/4HANA books an order in about one request: 40 orders would fit in one minute's ceiling."""
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
CEILING_SET = ("sap_b1", "sap_s4")
"""ERPs that publish no request ceiling (UNVERIFIED that SAP sets none): the timed runs hold them to
``THROUGHPUT_PER_MINUTE`` with the settings' ``rate_limits.<connection>``, as a merchant would."""
CREATES = {
    "quickbooks": ("/salesreceipt", "/invoice"),
    "acumatica": ("/SalesOrder",),
    "sap_b1": ("/Orders",),
    "sap_s4": ("/A_SalesOrder",),
}
"""The ERP request that books a store order (what the timed runs count as an order in)."""
ERP_NAMES = {"quickbooks": "QuickBooks", "acumatica": "Acumatica", "sap_b1": "SAP B1", "sap_s4": "S/4HANA"}


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


def _naive_sap_b1(stack: Any, placed: list[tuple[str, str, str]]) -> dict[str, float]:
    """What a naive connector spends per paid order with SAP Business One: the store's read, then a
    Service Layer session of its own (``POST Login``), the business partner searched by e-mail
    (created when none), one ``GET Items('<code>')`` per line, ``POST Orders``, ``POST DownPayments``
    based on the order's lines and ``POST IncomingPayments`` applied to it, ``POST Logout``."""
    from sandbox.local.stack import CONNECTION_SETTINGS

    creds, cfg = stack.credentials["sap_b1"], CONNECTION_SETTINGS["sap_b1"]
    store_url, erp_url = stack.sim_urls[stack.store], stack.sim_urls["sap_b1"]
    _clear(store_url)
    _clear(erp_url)
    day = datetime.now(UTC).date().isoformat()
    for ref, number, email in placed:
        lines = _store_read(stack, ref)
        with httpx.Client(base_url=f"{creds['base_url'].rstrip('/')}/b1s/v1", timeout=30) as b1:
            b1.post(
                "/Login",
                json={"CompanyDB": creds["company_db"], "UserName": creds["username"], "Password": creds["password"]},
            ).raise_for_status()
            try:
                found = b1.get(
                    "/BusinessPartners",
                    params={"$filter": f"EmailAddress eq '{email}'"},
                    headers={"B1S-CaseInsensitive": "true"},
                ).json()["value"]
                card = found[0]["CardCode"] if found else _b1_partner(b1, email)
                rows = []
                for sku, qty, price in lines:
                    b1.get(f"/Items('{sku}')").raise_for_status()
                    rows.append(
                        {
                            "ItemCode": sku,
                            "Quantity": float(qty),
                            "UnitPrice": float(price),
                            "TaxCode": cfg["tax_code"],
                            "WarehouseCode": cfg["warehouse_code"],
                        }
                    )
                order = _ok(
                    b1.post(
                        "/Orders",
                        json={
                            "CardCode": card,
                            "NumAtCard": f"naive-{number}",
                            "DocDueDate": day,
                            "DocumentLines": rows,
                        },
                    )
                )
                total = order["DocTotal"]
                down = _ok(
                    b1.post(
                        "/DownPayments",
                        json={
                            "CardCode": card,
                            "NumAtCard": f"naive-{number}",
                            "DownPaymentType": "dptInvoice",
                            "DocDueDate": day,
                            "DownPaymentAmount": total,
                            "DocumentLines": [
                                {"BaseType": 17, "BaseEntry": order["DocEntry"], "BaseLine": ln["LineNum"]}
                                for ln in order["DocumentLines"]
                            ],
                        },
                    )
                )
                _ok(
                    b1.post(
                        "/IncomingPayments",
                        json={
                            "DocType": "rCustomer",
                            "CardCode": card,
                            "TransferAccount": cfg["transfer_account"],
                            "TransferSum": total,
                            "TransferDate": day,
                            "PaymentInvoices": [
                                {"DocEntry": down["DocEntry"], "SumApplied": total, "InvoiceType": "it_DownPayment"}
                            ],
                        },
                    )
                )
            finally:
                b1.post("/Logout")
    n = len(placed)
    return {"store": _requests(store_url) / n, "erp": _requests(erp_url) / n}


def _b1_partner(b1: httpx.Client, email: str) -> str:
    code = "N" + hashlib.sha256(email.encode()).hexdigest()[:9].upper()
    _ok(
        b1.post(
            "/BusinessPartners",
            json={"CardCode": code, "CardName": email, "CardType": "cCustomer", "EmailAddress": email},
        )
    )
    return code


def _naive_sap_s4(stack: Any, placed: list[tuple[str, str, str]]) -> dict[str, float]:
    """What a naive connector spends per order with SAP S/4HANA: the store's read, then a CSRF token
    fetched afresh (``HEAD API_SALES_ORDER_SRV/`` with ``X-CSRF-Token: Fetch``: no session kept
    from one order to the next) and the ``POST A_SalesOrder`` deep insert (items and pricing
    conditions in one request). Nothing else: the sim serves no material or business partner API
    (``API_PRODUCT_SRV``, ``API_BUSINESS_PARTNER``), so the per-line material read a naive connector
    would make is not counted and this figure is a floor. S/4HANA takes no payments (FI clearing)."""
    from sandbox.local.stack import CONNECTION_SETTINGS

    creds, cfg = stack.credentials["sap_s4"], CONNECTION_SETTINGS["sap_s4"]
    store_url, erp_url = stack.sim_urls[stack.store], stack.sim_urls["sap_s4"]
    _clear(store_url)
    _clear(erp_url)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    for ref, number, _email in placed:
        lines = _store_read(stack, ref)
        items = [
            {
                "SalesOrderItem": str(10 * (n + 1)),
                "Material": sku,
                "RequestedQuantity": str(qty),
                "RequestedQuantityUnit": "PC",
                "to_PricingElement": {
                    "results": [{"ConditionType": "PR00", "ConditionRateValue": str(price), "ConditionCurrency": "USD"}]
                },
            }
            for n, (sku, qty, price) in enumerate(lines)
        ]
        with httpx.Client(
            base_url=f"{creds['base_url'].rstrip('/')}/API_SALES_ORDER_SRV",
            auth=(creds["username"], creds["password"]),
            headers={"Accept": "application/json"},
            timeout=30,
        ) as s4:
            token = s4.head("/", headers={"X-CSRF-Token": "Fetch"}).headers["x-csrf-token"]
            _ok(
                s4.post(
                    "/A_SalesOrder",
                    headers={"X-CSRF-Token": token},
                    json={
                        "SalesOrderType": "OR",
                        "SalesOrganization": cfg["sales_organization"],
                        "DistributionChannel": cfg["distribution_channel"],
                        "OrganizationDivision": cfg["organization_division"],
                        "SoldToParty": cfg["generic_sold_to"],
                        "PurchaseOrderByCustomer": f"naive-{number}",
                        "CustomerPurchaseOrderDate": f"/Date({int(today.timestamp() * 1000)})/",
                        "TransactionCurrency": "USD",
                        "to_Item": {"results": items},
                    },
                )
            )
    n = len(placed)
    return {"store": _requests(store_url) / n, "erp": _requests(erp_url) / n}


def _ok(response: httpx.Response) -> dict[str, Any]:
    """The answer's JSON (an OData v2 one unwrapped from ``d``); RuntimeError on a refusal."""
    if response.status_code >= 400:
        raise RuntimeError(
            f"naive {response.request.method} {response.request.url.path}: {response.status_code} {response.text[:300]}"
        )
    body: dict[str, Any] = response.json()
    return dict(body["d"]) if "d" in body else body


def _naive(stack: Any, placed: list[tuple[str, str, str]]) -> dict[str, float]:
    if stack.erp == "quickbooks":
        return _naive_quickbooks(stack, [(ref, email) for ref, _, email in placed])
    if stack.erp == "sap_b1":
        return _naive_sap_b1(stack, placed)
    if stack.erp == "sap_s4":
        return _naive_sap_s4(stack, placed)
    return _naive_acumatica(stack, placed)


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


def takes_payments(erp: str) -> bool:
    """Whether the ERP is a payments target (S/4HANA is not: FI clearing is not served)."""
    from erpsync.systems import registry
    from erpsync.systems.plugin import TARGET

    return registry.plugin(erp).can("payment", TARGET)


def measure(store: str, erp: str, runs: int = RUNS, orders: int = ORDERS) -> dict[str, Any]:
    import time

    from sandbox.local.stack import LocalStack, default_seed, local_settings

    out: dict[str, list[float]] = {"store": [], "erp": [], "points": [], "naive_store": [], "naive_erp": []}
    spent: Counter[str] = Counter()
    with LocalStack(
        store=store,
        erp=erp,
        run_pollers=False,
        run_schedules=False,
        state_file=None,
        seed=default_seed(),
        settings=local_settings(store, erp),
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
            paid = _drain("payments").count("synced") if takes_payments(erp) else orders
            if synced != orders or paid != orders:
                raise RuntimeError(
                    f"{store} -> {erp} run {run}: {synced} orders and {paid} payments synced of {orders}"
                )
            out["store"].append(_requests(store_url) / orders)
            out["erp"].append(_requests(erp_url) / orders)
            spent.update(_kinds(erp_url))
            if store == "shopify":
                out["points"].append(_points(store_url, since) / orders)
            naive = _naive(stack, placed)
            out["naive_store"].append(naive["store"])
            out["naive_erp"].append(naive["erp"])
    where = {k: round(n / (runs * orders), 2) for k, n in sorted(spent.items())}
    return {**{k: median(v) for k, v in out.items() if v}, "erp_requests": where}


def _kinds(url: str) -> Counter[str]:
    """The sim's logged requests by method and resource (``GET Orders(<key>)``, ``HEAD API_SALES_ORDER_SRV``)."""
    rows = httpx.get(f"{url}/_sim/requests", timeout=30).json()["requests"]
    found: Counter[str] = Counter()
    for r in rows:
        segments = [s for s in r["path"].split("?")[0].split("/") if s]
        found[f"{r['method']} {re.sub(r'[(].*[)]', '(<key>)', segments[-1] if segments else '/')}"] += 1
    return found


def throughput(
    store: str,
    erp: str,
    orders: int = THROUGHPUT_ORDERS,
    per_minute: int = THROUGHPUT_PER_MINUTE,
    restore: float = SHOPIFY_RESTORE,
    max_wait_s: float = 900.0,
) -> dict[str, Any]:
    """Orders a minute against the ceiling that binds the pair (see the module's docstring)."""
    import time

    from erpsync.state.bindings import Bindings
    from sandbox.chaos import drain_figures
    from sandbox.local.stack import LocalStack, default_seed, local_settings

    settings: dict[str, Any] = local_settings(store, erp)
    if erp in ("quickbooks", *CEILING_SET):
        settings["rate_limits"] = {erp: {"per_minute": per_minute, "concurrent": 10}}
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
        done = [
            r["at"]
            for r in rows
            if r["method"] in ("POST", "PUT")
            and r["path"].endswith(CREATES[erp])
            and r.get("applied_status") in (200, 201)
        ]
        if erp in ("quickbooks", *CEILING_SET):
            useful = [r["at"] for r in rows if 200 <= r["status"] < 300]
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
    # a sliding minute lets a whole minute's ceiling through at once: a run needing less never meets it
    return {**figures, "unit": unit, "ceiling": ceiling, "missing": missing, "orders": orders, "work": len(useful)}


def run(
    runs: int = RUNS,
    orders: int = ORDERS,
    timed_orders: int = THROUGHPUT_ORDERS,
    pairs: tuple[tuple[str, str], ...] = PAIRS,
) -> dict[str, Any]:
    logging.getLogger().setLevel(logging.WARNING)
    for noisy in ("erpsync", "httpx", "botocore", "urllib3.connectionpool"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    with Machine() as machine:
        res = {
            "orders": orders,
            "runs": runs,
            "pairs": {f"{s}->{e}": measure(s, e, runs, orders) for s, e in pairs},
            "throughput": {
                f"{s}->{e}": throughput(s, e, THROUGHPUT_ORDERS_BY_ERP.get(e, timed_orders)) for s, e in pairs
            }
            if timed_orders
            else {},
        }
    return {**res, "measured": machine.when()}


OTHER_RUNS = ("pytest", "pair_chaos", "bench.")
"""Processes whose command line names one of these are other test or benchmark runs (a busy machine)."""


class Machine:
    """What the machine was doing while a run measured: its 1-minute load as the run started and the
    highest seen (sampled every ``every_s``; the run's own work counts in it), and the other test or
    benchmark runs seen (``OTHER_RUNS``, this process and its parents left out)."""

    def __init__(self, every_s: float = 15.0, quiet_load: float = 1.2) -> None:
        import threading

        self.every_s, self.quiet_load = every_s, quiet_load
        self.started = datetime.now(UTC)
        self.first_load = self.top_load = 0.0
        self.others: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="bench-machine", daemon=True)

    def __enter__(self) -> Machine:
        self.first_load = self.top_load = self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _watch(self) -> None:
        while not self._stop.wait(self.every_s):
            self._sample()

    def _sample(self) -> float:
        load = os.getloadavg()[0]
        self.top_load = max(self.top_load, load)
        self.others |= other_runs()
        return load

    def when(self) -> str:
        """When and on what the run measured: its start, the working tree (not a commit: the lead
        commits later), and whether the machine was quiet (a load under ``quiet_load`` as it started
        and no other run seen) or busy."""
        quiet = self.first_load < self.quiet_load and not self.others
        seen = f"; other runs: {', '.join(sorted(self.others))}" if self.others else ""
        return (
            f"{self.started:%Y-%m-%d %H:%M} UTC, working tree, machine {'quiet' if quiet else 'busy'} "
            f"(load {self.first_load:.1f} at the start, at most {self.top_load:.1f}{seen})"
        )


def other_runs() -> set[str]:
    """Which of ``OTHER_RUNS`` run now in other processes (this one, its parents and its children
    left out: the local stack's own)."""
    from pathlib import Path

    me = os.getpid()
    mine = _lineage(me)
    found = set()
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            words = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        hit = next((name for name in OTHER_RUNS for w in words if name in w), None)
        if hit and int(entry.name) not in mine and me not in _lineage(int(entry.name)):
            found.add(hit)
    return found


def _lineage(pid: int) -> set[int]:
    """``pid`` and its parents."""
    from pathlib import Path

    found = set()
    while pid > 1 and pid not in found:
        found.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return found


def _ceilings(store: str, erp: str, m: dict[str, Any]) -> str:
    allows = []
    if erp == "quickbooks" and m["erp"]:
        allows.append(f"QuickBooks {QBO_PER_MINUTE / m['erp']:.0f}")
    if erp in CEILING_SET and m["erp"]:
        allows.append(
            f"{ERP_NAMES[erp]} at {THROUGHPUT_PER_MINUTE} req/min set: {THROUGHPUT_PER_MINUTE / m['erp']:.0f}"
        )
    if store == "shopify" and m.get("points"):
        allows.append(f"Shopify {SHOPIFY_POINTS_PER_S * 60 / m['points']:.0f}")
    return ", ".join(allows) or "-"


def section(res: dict[str, Any], kept: dict[str, dict[str, str]] | None = None) -> list[str]:
    """The page's section 13: the pairs ``res`` measured, and the rows ``kept`` (``kept_rows``: the
    page's rows of the pairs this run did not measure, untimed and timed), in ``PAIRS`` order."""
    kept = kept or {"untimed": {}, "timed": {}}
    when = res.get("measured", "-")
    lines = [
        SECTION,
        "",
        f"{res['orders']} paid orders per run, {res['runs']} runs, medians; the orders flow and the payments "
        "flow, each polled and drained on the local stack for the pair (`bench/pairs.py`); S/4HANA takes no "
        "payments (FI clearing is not served), so its figures are the orders flow alone. Store requests "
        "include the polls; for Shopify, points are what its cost bucket was charged (actual cost). The naive "
        "connector, per order: the store's read, then with QuickBooks a customer search by email, one item "
        "query per line, the sales receipt create; with Acumatica `bench/naive.py`'s part (sign-in, customer "
        "search, one `GET StockItem` per line, `PUT SalesOrder`, `PUT Payment`, sign-out); with SAP Business "
        "One a session of its own (`POST Login`), the business partner searched by e-mail, one "
        "`GET Items('<code>')` per line, `POST Orders`, `POST DownPayments` on the order's lines, "
        "`POST IncomingPayments` applied to it, `POST Logout`; with S/4HANA a fresh CSRF token "
        "(`HEAD API_SALES_ORDER_SRV/`) and the `POST A_SalesOrder` deep insert, nothing more: the sim serves "
        "no material or business partner API to look lines or customers up in, so that naive figure is a "
        "floor. Each naive connector runs after erpsync on the same orders and finds the customer erpsync "
        "made (its create is not counted). The `when` column says when each row was measured.",
        "",
        "| pair | erpsync store req/order | Shopify points/order | erpsync ERP req/order | naive store "
        "| naive ERP | ERP, erpsync / naive | orders/min the ceilings allow | when |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for pair in _ordered(res["pairs"], kept["untimed"]):
        m = res["pairs"].get(pair)
        if m is None:
            lines.append(kept["untimed"][pair])
            continue
        store, erp = pair.split("->")
        ratio = f"{m['erp'] / m['naive_erp']:.2f}x" if m.get("naive_erp") else "-"
        lines.append(
            f"| {store} -> {erp} | {m['store']:.2f} | {m.get('points', 0):.1f} | {m['erp']:.2f} | "
            f"{m.get('naive_store', 0) or '-'} | {m.get('naive_erp', 0) or '-'} | {ratio} | "
            f"{_ceilings(store, erp, m)} | {when} |"
        )
    lines += [
        "",
        "The ceilings' figures are what the measured requests per order leave room for: QuickBooks' 500 "
        "requests a minute per company over the QuickBooks requests per order, Shopify's 100 points a "
        "second over the points per order. Neither SAP product has a published ceiling (UNVERIFIED: the "
        "reference material names none): theirs are what "
        f"{THROUGHPUT_PER_MINUTE} requests a minute, set in the settings' `rate_limits.<connection>` (as the "
        "timed runs do), leave room for. The timed runs below measure them.",
    ]
    spent = {
        pair: f"- {pair.replace('->', ' -> ')}: " + ", ".join(f"`{k}` {v:g}" for k, v in m["erp_requests"].items())
        for pair, m in res["pairs"].items()
        if m.get("erp_requests")
    }
    spent.update({p: line for p, line in kept.get("spent", {}).items() if p not in res["pairs"]})
    if spent:
        lines += ["", "Where erpsync's ERP requests went, per order (the mean over each row's runs):", ""]
        lines += [spent[pair] for pair in _ordered(spent, {})]
    timed = res.get("throughput") or {}
    order = _ordered(timed, kept["timed"])
    if order:
        lines += [
            "",
            f"**Timed, against the ceiling** (`throughput`): {THROUGHPUT_ORDERS} paid orders (S/4HANA "
            f"{THROUGHPUT_ORDERS_BY_ERP['sap_s4']}: it books an order in about one request) placed at once, "
            "the local stack's pollers and workers on their own, the rate read between 10% and 90% of "
            f"the orders created in the ERP; QuickBooks' ceiling lowered to {THROUGHPUT_PER_MINUTE} requests a "
            f"minute (held by the settings' `rate_limits`), SAP's set to the same {THROUGHPUT_PER_MINUTE} in "
            f"`rate_limits.sap_b1` / `rate_limits.sap_s4`, Shopify's refill to {SHOPIFY_RESTORE:g} points a second "
            f"(bucket {SHOPIFY_BUCKET:g}) for Shopify -> Acumatica; polls every {THROUGHPUT_SCHEDULE_S:g} s. "
            f"Goal: at least {THROUGHPUT_GOAL} of what the ceiling allows. The work per order is all the run "
            "spent over the orders it created, the polls of every flow included: under a ceiling lowered this "
            "far a run lasts minutes, and polls every 30 s take a large share (Shopify -> Acumatica's points "
            "per order are mostly polls; the untimed table above has the orders' own).",
            "",
            "| pair | ceiling | work per order | orders/min the ceiling allows | orders/min measured | ratio "
            "| whole run | goal | when |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for pair in order:
            t = timed.get(pair)
            if t is None:
                lines.append(kept["timed"][pair])
                continue
            store, erp = pair.split("->")
            if "ratio" not in t:
                lines.append(
                    f"| {store} -> {erp} | {t['ceiling']} {t['unit']}/min | - | - | - | - | - | not measured "
                    f"({t.get('arrived', 0)} of {t['orders']} orders arrived) | {when} |"
                )
                continue
            met = "met" if t["ratio"] >= THROUGHPUT_GOAL else "**not met**"
            if t.get("work", t["ceiling"] + 1) <= t["ceiling"]:
                met = f"not measured: the run's {t['work']} {t['unit']} fit in one minute's {t['ceiling']}"
            lines.append(
                f"| {store} -> {erp} | {t['ceiling']} {t['unit']}/min | {t['requests_per_order']} {t['unit']} | "
                f"{t['ceiling_orders_per_min']} | {t['orders_per_min']} | {t['ratio']:.2f} | "
                f"{t['whole_s']:.0f} s, {t['whole_orders_per_min']}/min ({t['whole_ratio']:.2f}) | {met} | {when} |"
            )
    untimed = [p for p in _ordered(res["pairs"], kept["untimed"]) if p not in order]
    if untimed:
        lines += ["", f"No timed run yet for {', '.join(p.replace('->', ' -> ') for p in untimed)}."]
    return lines


def _ordered(measured: dict[str, Any], kept: dict[str, str]) -> list[str]:
    """The pairs of both, in ``PAIRS`` order (any other after)."""
    known = [f"{s}->{e}" for s, e in PAIRS]
    found = set(measured) | set(kept)
    return [p for p in known if p in found] + sorted(found - set(known))


def kept_rows(doc: str, measured: Collection[str] = ()) -> dict[str, dict[str, str]]:
    """The table rows the page's section 13 has now, by pair (``store->erp``), untimed and timed (the
    rows after ``**Timed``), leaving out the pairs in ``measured`` (which the run writes again)."""
    out: dict[str, dict[str, str]] = {"untimed": {}, "timed": {}, "spent": {}}
    start = doc.find(SECTION)
    if start == -1:
        return out
    end = doc.find("\n## ", start + len(SECTION))
    table = "untimed"
    for line in doc[start : end if end != -1 else len(doc)].splitlines():
        if line.startswith("**Timed"):
            table = "timed"
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("| ") else []
        if cells and " -> " in cells[0]:
            pair = cells[0].replace(" -> ", "->")
            if pair not in measured:
                out[table][pair] = line
        head = line[2:].split(": ", 1)[0] if line.startswith("- ") and ": " in line else ""
        if " -> " in head and head.replace(" -> ", "->") not in measured:
            out["spent"][head.replace(" -> ", "->")] = line
    return out


def main(argv: list[str] | None = None) -> int:
    import argparse

    from bench.report import ROOT, put_section

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--untimed",
        action="store_true",
        help="measure the requests per order only (minutes, not the timed runs' hour or so) and "
        "keep the timed rows the page has",
    )
    p.add_argument(
        "--pair",
        nargs=2,
        action="append",
        metavar=("STORE", "ERP"),
        help="measure this pair only (repeatable; e.g. --pair magento sap_b1) and keep the page's rows of the others",
    )
    args = p.parse_args(argv)
    chosen = tuple((s, e) for s, e in args.pair) if args.pair else PAIRS
    res = run(timed_orders=0, pairs=chosen) if args.untimed else run(pairs=chosen)
    doc = (ROOT / "docs" / "PERFORMANCE.md").read_text()
    kept = kept_rows(doc, res["pairs"])
    kept["timed"] = kept_rows(doc, res["throughput"])["timed"]
    lines = section(res, kept)
    put_section("pairs", SECTION, lines, res)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
