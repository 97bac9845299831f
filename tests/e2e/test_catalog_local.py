"""The catalog on the local stack with its schedules running: items, a price worksheet (base, a
promotional price with dates, a quantity break and a price class) and a released inventory receipt
made in Acumatica through its REST API reach Magento without a command."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sandbox.story import AcumaticaUser, MagentoAdmin

pytestmark = pytest.mark.e2e


def w(plain: dict[str, Any]) -> dict[str, Any]:
    return {k: [w(x) for x in v] if isinstance(v, list) else {"value": v} for k, v in plain.items()}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from cli.target import use_local
    from sandbox.local.stack import LocalStack

    state = tmp_path_factory.mktemp("stack") / "local.json"
    with LocalStack(state_file=state, run_pollers=True, run_schedules=True, schedule_seconds=2.0) as s:
        use_local(state)
        from erpsync.state.settings import SettingsStore

        SettingsStore(os.environ["BINDINGS_TABLE"]).update(
            {
                "routes": [{"store": "magento", "erp": "acumatica", "flows": ["*", "catalog"]}],
                "catalog": {"price_groups": {"WHOLESALE": "Wholesale"}},
                "first_poll_days": 1,
            }
        )
        yield dict(s.info)


def until(what: str, check: Callable[[], Any], timeout_s: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except RuntimeError as exc:  # not there yet (404)
            last = exc
        else:
            if last:
                return last
        time.sleep(0.5)
    raise AssertionError(f"{what}: not in Magento after {timeout_s:.0f}s (last: {last!r})")


def test_items_prices_and_stock_reach_magento_without_a_command(stack: dict[str, Any]) -> None:
    acu = AcumaticaUser(**stack["acumatica"])
    mag = MagentoAdmin(**stack["magento"])
    acu.put("Warehouse", w({"WarehouseID": "WHOLESALE", "Description": "Wholesale"}))
    acu.put("CustomerPriceClass", w({"PriceClassID": "WHOLESALE", "Description": "Wholesale"}))
    for sku, price in (("E2EJAM1", 5.0), ("E2EJAM2", 6.0)):
        acu.put("StockItem", w({"InventoryID": sku, "Description": f"Jam {sku}", "DefaultPrice": price}))
    product = until("the product", lambda: mag.call("GET", "/products/E2EJAM1"))
    assert product["price"] == 5.0 and product["name"] == "Jam E2EJAM1"

    sheet = acu.put(
        "SalesPriceWorksheet",
        w(
            {
                "Description": "e2e",
                "EffectiveDate": "2026-01-01T00:00:00",
                "Hold": False,
                "SalesPrices": [
                    {"PriceType": "Base", "InventoryID": "E2EJAM1", "UOM": "EA", "BreakQty": 0, "PendingPrice": 5.5},
                    {"PriceType": "Base", "InventoryID": "E2EJAM1", "UOM": "EA", "BreakQty": 12, "PendingPrice": 4.9},
                    {
                        "PriceType": "Customer Price Class",
                        "PriceCode": "WHOLESALE",
                        "InventoryID": "E2EJAM1",
                        "UOM": "EA",
                        "BreakQty": 0,
                        "PendingPrice": 4.5,
                    },
                ],
            }
        ),
        "$expand=SalesPrices",
    )
    acu.action("SalesPriceWorksheet", "ReleaseSalesPriceWorksheet", {"ReferenceNbr": sheet["ReferenceNbr"]})

    def base() -> Any:
        rows = mag.call("POST", "/products/base-prices-information", json={"skus": ["E2EJAM1"]})
        return [r for r in rows if r["price"] == 5.5]

    until("the new base price", base)
    tiers = until(
        "the tier prices",
        lambda: mag.call("POST", "/products/tier-prices-information", json={"skus": ["E2EJAM1"]}),
    )
    assert sorted((t["customer_group"], t["quantity"], t["price"]) for t in tiers) == [
        ("ALL GROUPS", 12, 4.9),
        ("Wholesale", 1, 4.5),
    ]

    receipt = acu.put(
        "InventoryReceipt",
        w({"Hold": False, "Details": [{"InventoryID": "E2EJAM2", "WarehouseID": "WHOLESALE", "Qty": 24}]}),
        "$expand=Details",
    )
    acu.action("InventoryReceipt", "ReleaseInventoryReceipt", {"ReferenceNbr": receipt["ReferenceNbr"]})

    def stocked() -> Any:
        items = mag.search("/inventory/source-items", "sku", "E2EJAM2")
        return [i for i in items if i["quantity"] == 24 and i["status"] == 1]

    until("the received stock", stocked)
