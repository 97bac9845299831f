"""`erpsync load catalog` on the local stack: a dry run writes nothing; a load stopped halfway and
started again finishes with every item once and none skipped."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sandbox.story import AcumaticaUser, MagentoAdmin

pytestmark = pytest.mark.e2e

ITEMS = 12


def w(plain: dict[str, Any]) -> dict[str, Any]:
    return {k: [w(x) for x in v] if isinstance(v, list) else {"value": v} for k, v in plain.items()}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from cli.target import use_local
    from sandbox.local.stack import LocalStack

    state = tmp_path_factory.mktemp("stack") / "local.json"
    with LocalStack(state_file=state, run_pollers=False, run_schedules=False) as s:
        use_local(state)
        from erpsync.state.settings import SettingsStore

        SettingsStore(os.environ["BINDINGS_TABLE"]).update(
            {
                "routes": [{"store": "magento", "erp": "acumatica", "flows": ["*", "catalog"]}],
                # small pages, so the load checkpoints several times
                "connections": {"acumatica": {"kind": "acumatica", "role": "erp", "settings": {"page_size": 5}}},
            }
        )
        acu = AcumaticaUser(**s.info["acumatica"])
        acu.put("Warehouse", w({"WarehouseID": "WHOLESALE"}))
        top = acu.put("ItemSalesCategory", w({"Description": "Preserves"}))["CategoryID"]["value"]
        for n in range(ITEMS):
            acu.put(
                "StockItem",
                {
                    **w({"InventoryID": f"LOAD{n:02}", "Description": f"Preserve {n}", "DefaultPrice": 3 + n}),
                    "Categories": [{"CategoryID": {"value": top}}],
                },
            )
        yield dict(s.info)


def products(mag: MagentoAdmin) -> list[str]:
    rows = mag.search("/products", "sku", "LOAD%", "like")
    return sorted(str(r["sku"]) for r in rows)


def test_a_dry_run_counts_and_writes_nothing_then_an_interrupted_load_resumes(
    stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli import load, target
    from erpsync.flows import products as products_flow
    from erpsync.runtime import lambda_app

    monkeypatch.setattr(target, "choose", lambda stack: stack)  # this module's stack, pointed at already
    monkeypatch.setattr(products_flow, "BULK_MIN", 2)  # each page (5, 5 and 2 items) goes in one bulk request
    mag = MagentoAdmin(**stack["magento"])
    dry = load.run("catalog", dry_run=True, restart=False, stack=None)
    assert dry["create"] >= ITEMS + 1  # the items and their category (and the items' prices)
    assert products(mag) == []

    real_run = lambda_app.FlowRuntime.run
    calls = {"products": 0}

    def stopped_halfway(self: Any, notices: list[Any], **kw: Any) -> Any:
        if self.spec.name == "products":
            calls["products"] += 1
            if calls["products"] == 2:
                raise KeyboardInterrupt  # Ctrl-C after the first page of products
        return real_run(self, notices, **kw)

    monkeypatch.setattr(lambda_app.FlowRuntime, "run", stopped_halfway)
    with pytest.raises(KeyboardInterrupt):
        load.run("catalog", dry_run=False, restart=False, stack=None)
    halfway = products(mag)
    assert 0 < len(halfway) < ITEMS
    monkeypatch.setattr(lambda_app.FlowRuntime, "run", real_run)

    httpx.delete(f"{stack['magento']['base_url'].split('/rest')[0]}/_sim/requests")
    totals = load.run("catalog", dry_run=False, restart=False, stack=None)
    assert products(mag) == [f"LOAD{n:02}" for n in range(ITEMS)]  # each once, none skipped
    sent = httpx.get(f"{stack['magento']['base_url'].split('/rest')[0]}/_sim/requests").json()["requests"]
    bulks = [r for r in sent if r["method"] == "POST" and r["path"].endswith("/async/bulk/V1/products")]
    assert bulks, "the load's pages of plain items went to the store in bulk"
    singles = [r for r in sent if r["method"] == "POST" and r["path"] == "/rest/all/V1/products"]
    assert not singles, "no product was written alone"
    assert totals["failed"] == 0
    assert totals["synced"] >= ITEMS - len(halfway)  # the rest; the first page's were bound already

    again = load.run("catalog", dry_run=False, restart=False, stack=None)  # a finished load starts over
    assert again["synced"] == 0 and again["failed"] == 0  # ... and finds everything in step
