"""Benchmark 9: what a catalog change costs, erpsync beside a naive one-product-per-call connector.

On the local stack (the sims over HTTP, the bindings in moto), with the catalog switched on for the
route. Per run, in Acumatica through its REST API: ``PRODUCTS`` items are made and synced (with an
attribute and a category), then ``CHANGED`` of them are edited (their description); one inventory
receipt moves the stock of ``BATCH`` items; one price worksheet changes their base price. Each
change is brought to Magento by erpsync (the flow's poll, then its queue worked as Lambda would:
batches of ``FlowSpec.batch`` for stock and prices) and, for the same changes, by the naive
connector, which does per item what a first version does:

- product: read the item from Acumatica, read the product from Magento, write it (PUT);
- stock: read the item's quantities (``InventorySummaryInquiry``), read its stock item in Magento
  (``GET /V1/stockItems/{sku}``), write it (``PUT /V1/products/{sku}/stockItems/{id}``);
- price: read the item's prices (``SalesPricesInquiry``), write the base price (one SKU per call).

Requests are counted from the sims' logs (sign-in left out: a warm container is signed in).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from bench.common import RUNS, Bench, median, warm_sessions

PRODUCTS = 20
CHANGED = 10
BATCH = 100
GOAL_PRODUCT = 1.0
GOAL_BATCHED = 0.05
ENDPOINT = "entity/Default/24.200.001"


def w(plain: dict[str, Any]) -> dict[str, Any]:
    return {k: [w(x) for x in v] if isinstance(v, list) else {"value": v} for k, v in plain.items()}


def _cycle(rt: Any) -> dict[str, int]:
    rt.poll()
    outcomes = rt.drain()
    return {o: sum(1 for x in outcomes if x.outcome == o) for o in ("synced", "skipped", "failed")}


class NaiveCatalog:
    """One item per call, plain httpx (see the module docstring)."""

    def __init__(self, bench: Bench) -> None:
        info = bench.stack.info
        self.mag = httpx.Client(base_url=info["magento"]["base_url"].rsplit("/rest", 1)[0] + "/rest/all/V1", timeout=30)
        token = self.mag.post(
            "/integration/admin/token",
            json={"username": info["magento"]["username"], "password": info["magento"]["password"]},
        ).json()
        self.mag.headers["Authorization"] = f"Bearer {token}"
        self.acu = httpx.Client(base_url=info["acumatica"]["base_url"].rstrip("/") + "/" + ENDPOINT, timeout=30)
        login = {"name": info["acumatica"]["username"], "password": info["acumatica"]["password"]}
        self.acu.post(info["acumatica"]["base_url"].rstrip("/") + "/entity/auth/login", json=login)

    def product(self, sku: str) -> None:
        item = self.acu.get(f"/StockItem/{quote(sku, safe='')}").json()
        current = self.mag.get(f"/products/{quote(sku, safe='')}").json()
        body = {"product": {"sku": sku, "name": item["Description"]["value"], "type_id": current.get("type_id")}}
        self.mag.put(f"/products/{quote(sku, safe='')}", json=body)

    def stock(self, sku: str) -> None:
        rows = self.acu.put("/InventorySummaryInquiry?$expand=Results", json=w({"InventoryID": sku})).json()
        qty = sum(float((r.get("QtyOnHand") or {}).get("value") or 0) for r in rows.get("Results") or [])
        item = self.mag.get(f"/stockItems/{quote(sku, safe='')}").json()
        body = {"stockItem": {"qty": qty, "is_in_stock": qty > 0}}
        self.mag.put(f"/products/{quote(sku, safe='')}/stockItems/{item['item_id']}", json=body)

    def price(self, sku: str) -> None:
        body = w({"PriceType": "All Prices", "InventoryID": sku})
        rows = self.acu.put("/SalesPricesInquiry?$expand=SalesPriceDetails", json=body).json()
        prices = [r for r in rows.get("SalesPriceDetails") or [] if (r.get("PriceType") or {}).get("value") == "Base"]
        if prices:
            price = float(prices[-1]["Price"]["value"])
            self.mag.post("/products/base-prices", json={"prices": [{"price": price, "store_id": 0, "sku": sku}]})

    def close(self) -> None:
        self.mag.close()
        self.acu.close()


def _seed(bench: Bench, run: int, products: int, batch: int) -> list[str]:
    acu = bench.story.acumatica
    acu.put("Warehouse", w({"WarehouseID": "WHOLESALE"}))
    acu.put(
        "AttributeDefinition",
        w(
            {
                "AttributeID": "FLAVOR",
                "Description": "Flavor",
                "ControlType": "Combo",
                "Values": [{"ValueID": "PLUM", "Description": "Plum"}],
            }
        ),
    )
    top = acu.put("ItemSalesCategory", w({"Description": f"Bench {run}"}))["CategoryID"]["value"]
    skus = [f"CB{run}-{n:03}" for n in range(max(products, batch))]
    for n, sku in enumerate(skus):
        record = w({"InventoryID": sku, "Description": f"Bench item {n}", "DefaultPrice": 2 + n % 7})
        if n < products:
            record["Attributes"] = [w({"AttributeID": "FLAVOR", "Value": "PLUM"})]
            record["Categories"] = [w({"CategoryID": top})]
        acu.put("StockItem", record)
    return skus


def run(
    bench: Bench, runs: int = RUNS, products: int = PRODUCTS, changed: int = CHANGED, batch: int = BATCH
) -> dict[str, Any]:
    bench.settings({"routes": [{"store": "magento", "erp": "acumatica", "flows": ["*", "catalog"]}]})
    rts = {flow: bench.runtime(flow) for flow in ("products", "stock", "prices")}
    for rt in rts.values():
        warm_sessions(rt)
    naive = NaiveCatalog(bench)
    samples: list[dict[str, Any]] = []
    try:
        for r in range(runs):
            skus = _seed(bench, r, products, batch)
            _cycle(rts["products"])  # every item in Magento: the steady state begins
            _cycle(rts["prices"])
            _cycle(rts["stock"])
            sample: dict[str, Any] = {}
            acu = bench.story.acumatica

            # -- a product change -----------------------------------------------------------------
            time.sleep(1.1)  # the edits are the only changes of the next poll's window
            for sku in skus[:changed]:
                acu.put("StockItem", w({"InventoryID": sku, "Description": f"Bench item {sku}, run {r}"}))
            bench.clear()
            outcomes = _cycle(rts["products"])
            sample["product"] = {"erpsync": bench.data_requests(), "outcomes": outcomes}
            bench.clear()
            for sku in skus[:changed]:
                naive.product(sku)
            sample["product"]["naive"] = bench.data_requests()

            # -- a stock receipt of BATCH items ---------------------------------------------------
            lines = [w({"InventoryID": sku, "WarehouseID": "WHOLESALE", "Qty": 5 + r}) for sku in skus[:batch]]
            receipt = acu.put("InventoryReceipt", {"Hold": {"value": False}, "Details": lines}, "$expand=Details")
            acu.action("InventoryReceipt", "ReleaseInventoryReceipt", {"ReferenceNbr": receipt["ReferenceNbr"]})
            bench.clear()
            sample["stock"] = {"outcomes": _cycle(rts["stock"]), "erpsync": bench.data_requests()}
            bench.clear()
            for sku in skus[:batch]:
                naive.stock(sku)
            sample["stock"]["naive"] = bench.data_requests()

            # -- a price worksheet of BATCH items -------------------------------------------------
            rows = [
                w(
                    {
                        "PriceType": "Base",
                        "InventoryID": sku,
                        "UOM": "EA",
                        "BreakQty": 0,
                        "PendingPrice": 100 + r + n % 5,
                    }
                )
                for n, sku in enumerate(skus[:batch])
            ]
            sheet = acu.put(
                "SalesPriceWorksheet",
                {
                    **w({"Description": f"bench {r}", "EffectiveDate": "2026-01-01T00:00:00", "Hold": False}),
                    "SalesPrices": rows,
                },
                "$expand=SalesPrices",
            )
            acu.action("SalesPriceWorksheet", "ReleaseSalesPriceWorksheet", {"ReferenceNbr": sheet["ReferenceNbr"]})
            bench.clear()
            sample["price"] = {"outcomes": _cycle(rts["prices"]), "erpsync": bench.data_requests()}
            bench.clear()
            for sku in skus[:batch]:
                naive.price(sku)
            sample["price"]["naive"] = bench.data_requests()
            samples.append(sample)
    finally:
        naive.close()
    from bench.common import git_commit

    counts = {"product": changed, "stock": batch, "price": batch}
    return {
        "commit": git_commit(Path(__file__).resolve().parents[1]),
        "runs": runs,
        "products": products,
        "changed": changed,
        "batch": batch,
        "samples": samples,
        "per_change": _per_change(samples, counts),
    }


def _per_change(samples: list[dict[str, Any]], counts: dict[str, int]) -> dict[str, dict[str, dict[str, float]]]:
    """Median requests per change: kind -> connector -> system -> requests."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for kind, n in counts.items():
        out[kind] = {
            who: {s: median([x[kind][who][s] / n for x in samples]) for s in ("magento", "acumatica")}
            for who in ("erpsync", "naive")
        }
    return out


def goals(result: dict[str, Any]) -> dict[str, bool]:
    pc = result["per_change"]
    return {
        "product": pc["product"]["erpsync"]["magento"] <= GOAL_PRODUCT,
        "stock": pc["stock"]["erpsync"]["magento"] <= GOAL_BATCHED,
        "price": pc["price"]["erpsync"]["magento"] <= GOAL_BATCHED,
    }


def section(result: dict[str, Any]) -> list[str]:
    """The benchmark's part of docs/PERFORMANCE.md."""
    pc, ok = result["per_change"], goals(result)
    lines = [
        "## 9. A catalog change: requests per change, beside a naive connector",
        "",
        f"{result['runs']} runs on the local stack (the sims over HTTP, the bindings in moto). Per run "
        f"{result['changed']} items of {result['products']} are edited in Acumatica (their description), one "
        f"inventory receipt moves the stock of {result['batch']} items and one price worksheet changes their base "
        f"price (commit `{result.get('commit', '?')}`); erpsync brings each to Magento (the flow's poll, "
        "then its queue worked as Lambda would, in "
        "batches of 100 for stock and prices), and the naive connector (`bench/catalog.py` `NaiveCatalog`: one "
        "item per call, read then write) does the same changes. Medians; sign-ins left out.",
        "",
        "| change | connector | Magento requests per change | Acumatica requests per change |",
        "|---|---|---|---|",
    ]
    names = {"product": "product (description)", "stock": "stock (receipt)", "price": "price (worksheet)"}
    for kind in ("product", "stock", "price"):
        for who in ("erpsync", "naive"):
            m, a = pc[kind][who]["magento"], pc[kind][who]["acumatica"]
            lines.append(f"| {names[kind]} | {who} | {m:.3f} | {a:.3f} |")
    lines += [
        "",
        f"- Goal: at most {GOAL_PRODUCT:g} Magento request per product change: "
        f"{'**met**' if ok['product'] else '**not met**'} ({pc['product']['erpsync']['magento']:.3f}).",
        f"- Goal: at most {GOAL_BATCHED:g} Magento requests per stock or price change in a batch: stock "
        f"{'**met**' if ok['stock'] else '**not met**'} ({pc['stock']['erpsync']['magento']:.3f}), prices "
        f"{'**met**' if ok['price'] else '**not met**'} ({pc['price']['erpsync']['magento']:.3f}).",
        "- Acumatica, per product change: the worker's read of the item, and the poll's share: each time window "
        "is read from stock, non-stock and template items alike (a quiet entity still costs its request). The "
        "naive connector reads one item and nothing else, but it has to be told which items changed. Per stock "
        "change: the poll's one delta inquiry (`InventoryQuantityAvailable`) and, above 50 SKUs, one "
        "`StorageDetailsInquiry` per warehouse for the quantities. Per price change: the poll's one "
        "`SalesPricesInquiry` and its item windows.",
        "- Magento, per stock change: the receipt gives these items their first stock, so besides the one "
        "source-items request the batch costs one product search (`GET /V1/products`, `sku in`): a SKU written "
        "for the first time is looked for first, so stock or prices of an item the products flow has not made yet "
        "wait for it instead of being refused. A later receipt of the same items costs the one request.",
        "",
    ]
    return lines
