"""The demo's catalog chapter: the ERP's catalog reaches the store, and so do a price and a stock change.

Acumatica is seeded with the catalog of its demo company (``sandbox/sims/acumatica_demo.py``: a
matrix item with three children, a kit, sales categories, price classes, base, promotional,
quantity-break and price-class prices, stock in two warehouses); the catalog flows are switched on
for the route and the local stack's schedules carry everything to Magento. Then a price worksheet
and an inventory receipt are released in Acumatica, through its REST API as a clerk would, and the
new price and quantity appear in Magento without a command. A last poll of every catalog flow
must write nothing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from sandbox.story import Story, wait_for

CATALOG_SEED_KEYS = (
    "warehouses",
    "attributes",
    "item_classes",
    "sales_categories",
    "price_classes",
    "customer_classes",
    "customers",
    "template_items",
    "stock_items",
    "non_stock_items",
    "kits",
    "item_warehouses",
    "sales_prices",
    "price_worksheets",
    "inventory_receipts",
)
"""The demo company's catalog and what its prices name (customers), without its documents."""
WAREHOUSES = ["WHOLESALE", "RETAIL"]
SETTINGS = {
    "catalog": {
        "bundles": True,
        "price_groups": {"WHOLESALE": "Wholesale", "RETAIL": "Retailer"},
        "stock": {"warehouses": WAREHOUSES},
    },
}
SHOWN = ("AMTSHIRT", "AMTSHIRT-BLACK-M", "JAMGIFT", "APJAM08", "APJAM32", "CHERJAM32", "ADVERT")


def w(plain: dict[str, Any]) -> dict[str, Any]:
    """Plain values as Acumatica's ``{"value": ...}`` (lists of objects as details)."""
    return {k: [w(x) for x in v] if isinstance(v, list) else {"value": v} for k, v in plain.items()}


def catalog_chapter(story: Story, console: Console) -> list[str]:
    """Seed, switch on, wait, change a price and a stock level, check a quiet poll; the problems."""
    from erpsync.state.settings import SettingsStore
    from sandbox.sims.acumatica_demo import demo_company_seed

    seed = {k: v for k, v in demo_company_seed().items() if k in CATALOG_SEED_KEYS}
    r = httpx.post(f"{story.acumatica.base}/_sim/seed", json=seed, timeout=60)
    r.raise_for_status()
    items = [row["InventoryID"] for row in seed["stock_items"] + seed["non_stock_items"] + seed["template_items"]]
    store = SettingsStore(os.environ["BINDINGS_TABLE"])
    routes = [
        {**route.model_dump(mode="json", exclude_none=True), "flows": [*route.flows, "catalog"]}
        for route in store.load().effective_routes()
    ]
    store.update({**SETTINGS, "routes": routes}, actor="demo")
    console.print(
        f"Acumatica: the demo company's catalog, {len(items)} items (a matrix item and its children, a kit, "
        f"price classes, quantity breaks, a promotion), stock in {' and '.join(WAREHOUSES)}; "
        "the catalog flows switched on for the route"
    )
    t0 = time.monotonic()
    wait_for("every item as a Magento product", lambda: not missing(story, items), timeout_s=180)
    wait_for("the kit as a bundle with its parts", lambda: bool(bundle_parts(story, "JAMGIFT")), timeout_s=60)
    # both jams this chapter then reads (APJAM32's level before its receipt): 560 and 320 in the seed
    summed = {"APJAM08": 560.0, "APJAM32": 320.0}
    wait_for(
        "stock summed over both warehouses",
        lambda: all(magento_qty(story, sku) == qty for sku, qty in summed.items()),
        timeout_s=60,
    )
    console.print(f"every item is a Magento product, priced and stocked, {time.monotonic() - t0:.0f} s after the seed")
    show(story, console)

    problems: list[str] = []
    before_price, before_qty = base_price(story, "APJAM08"), magento_qty(story, "APJAM32")
    today = datetime.now(UTC).strftime("%Y-%m-%dT00:00:00")
    sheet = story.acumatica.put(
        "SalesPriceWorksheet",
        w(
            {
                "Description": "Demo: apple jam costs more",
                "EffectiveDate": today,
                "Hold": False,
                "SalesPrices": [{"PriceType": "Base", "InventoryID": "APJAM08", "UOM": "EA", "PendingPrice": 5.75}],
            }
        ),
        "$expand=SalesPrices",
    )
    story.acumatica.action("SalesPriceWorksheet", "ReleaseSalesPriceWorksheet", {"ReferenceNbr": sheet["ReferenceNbr"]})
    receipt = story.acumatica.put(
        "InventoryReceipt",
        w({"Hold": False, "Details": [{"InventoryID": "APJAM32", "WarehouseID": "RETAIL", "Qty": 24}]}),
        "$expand=Details",
    )
    story.acumatica.action("InventoryReceipt", "ReleaseInventoryReceipt", {"ReferenceNbr": receipt["ReferenceNbr"]})
    console.print(
        "Acumatica: a price worksheet released (APJAM08 at 5.75) and a receipt of 24 APJAM32 into RETAIL released"
    )
    took = arrival_times(
        {
            "APJAM08 base price": lambda: base_price(story, "APJAM08") == 5.75,
            "APJAM32 quantity": lambda: magento_qty(story, "APJAM32") == before_qty + 24,
        },
        timeout_s=90,
    )
    for what, was, now in (
        ("APJAM08 base price", before_price, base_price(story, "APJAM08")),
        ("APJAM32 quantity", before_qty, magento_qty(story, "APJAM32")),
    ):
        if took.get(what) is None:
            problems.append(f"{what} did not reach Magento within 90 s (still {now})")
        else:
            console.print(f"Magento: {what} {was:g} -> {now:g}, {took[what]:.0f} s after the release (no command)")
    writes = quiet_poll(story)
    if writes:
        problems.append(f"a poll of the catalog flows with nothing changed wrote to Magento: {writes[:5]}")
    else:
        console.print("a further poll of every catalog flow wrote nothing to Magento")
    return problems


def missing(story: Story, skus: list[str]) -> list[str]:
    found = set()
    for i in range(0, len(skus), 50):
        chunk = skus[i : i + 50]
        found |= {p["sku"] for p in story.magento.search("/products", "sku", ",".join(chunk), "in")}
    return [s for s in skus if s not in found]


def bundle_parts(story: Story, sku: str) -> list[str]:
    try:
        return sorted(c["sku"] for c in story.magento.call("GET", f"/bundle-products/{sku}/children"))
    except RuntimeError:
        return []


def magento_qty(story: Story, sku: str) -> float:
    return float(sum(i["quantity"] for i in story.magento.search("/inventory/source-items", "sku", sku)))


def base_price(story: Story, sku: str) -> float:
    rows = story.magento.call("POST", "/products/base-prices-information", json={"skus": [sku]})
    return float(next((r["price"] for r in rows if r["store_id"] == 0), 0.0))


def arrival_times(checks: dict[str, Callable[[], bool]], timeout_s: float) -> dict[str, float]:
    """Seconds until each check first held (watched side by side), for those that did."""
    t0 = time.monotonic()
    took: dict[str, float] = {}
    while len(took) < len(checks) and time.monotonic() - t0 < timeout_s:
        for what, check in checks.items():
            if what not in took and check():
                took[what] = time.monotonic() - t0
        time.sleep(0.5)
    return took


def quiet_poll(story: Story) -> list[str]:
    """Poll and drain every catalog flow by hand; the writes Magento saw meanwhile."""
    from erpsync.flows import catalog
    from erpsync.runtime.lambda_app import build

    base = str(story.magento.http.base_url).split("/rest")[0]
    httpx.delete(f"{base}/_sim/requests", timeout=10)
    for spec in catalog.FLOWS:
        if spec.group != "catalog":
            continue
        rt = build(spec.name)
        rt.poll()
        rt.drain()
    rows = httpx.get(f"{base}/_sim/requests", timeout=10).json()["requests"]
    return [
        f"{r['method']} {r['path']}"
        for r in rows
        if r["method"] in ("POST", "PUT", "DELETE") and "token" not in r["path"] and "-information" not in r["path"]
    ]


def show(story: Story, console: Console) -> None:
    t = Table(title="Some of the catalog in Magento")
    for col in ("SKU", "type", "name", "price", "special", "tier and group prices", "qty"):
        t.add_column(col)
    for sku in SHOWN:
        p = story.magento.call("GET", f"/products/{sku}")
        attrs = {a["attribute_code"]: a["value"] for a in p.get("custom_attributes") or []}
        priced = p["type_id"] in ("simple", "virtual")  # the price APIs know no configurable or bundle
        tiers = story.magento.call("POST", "/products/tier-prices-information", json={"skus": [sku]}) if priced else []
        tier_text = ", ".join(f"{x['customer_group']} {x['quantity']:g}+ {x['price']:g}" for x in tiers) or "-"
        qty = magento_qty(story, sku) if p["type_id"] == "simple" else None  # services are not counted
        t.add_row(
            sku,
            p["type_id"],
            p["name"],
            f"{p.get('price', 0):g}" if priced else "-",
            f"{float(attrs['special_price']):g}" if attrs.get("special_price") else "-",
            tier_text,
            ("not counted" if p["type_id"] == "virtual" else "-") if qty is None else f"{qty:g}",
        )
    console.print(t)
