"""`erpsync local up --connect`: the local stack uses a system at a URL instead of starting its sim.

The "system" is an Acumatica sim started alone, as `erpsync sim acumatica --seed` starts it; an
order placed in the stack's Magento sim reaches it."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.local.net import port_accepts
from sandbox.local.stack import LOCAL_SETTINGS, LocalStack, default_seed, seed_sim, start_sim
from sandbox.sims import magento_orders as mo
from sandbox.story import AcumaticaUser, MagentoAdmin

pytestmark = pytest.mark.e2e


def test_the_stack_syncs_an_order_to_the_connected_system_and_starts_no_sim_for_it(tmp_path: Path) -> None:
    from cli.target import use_local
    from erpsync.runtime.lambda_app import build

    erp = start_sim("acumatica")
    try:
        seed_sim("acumatica", erp.url, default_seed()["acumatica"])
        state = tmp_path / "local.json"
        with LocalStack(
            state_file=state,
            run_pollers=False,
            run_schedules=False,
            settings=LOCAL_SETTINGS,
            connect={"acumatica": erp.url},
        ) as stack:
            use_local(state)
            assert list(stack.sim_urls) == ["magento"] and stack.info["connected"] == {"acumatica": erp.url}
            assert [d["base_url"] for d in stack.secrets.values() if "company" in d] == [erp.url]

            shop = MagentoAdmin(**stack.credentials["magento"])
            body = mo.build_order(mo.sample_catalog(), [mo.CartLine("24-MB01", 1)], customer=mo.sample_customer())
            order = shop.call("POST", "/orders", json={"entity": body})
            shop.close()
            outcome = build("orders").sync_now(str(order["entity_id"]))
            assert outcome.outcome == "synced", outcome.message

            warehouse = AcumaticaUser(**stack.credentials["acumatica"])
            [so] = warehouse.orders_for(order["increment_id"])
            warehouse.close()
            assert so["OrderTotal"]["value"] == order["grand_total"]
    finally:
        erp.stop()
    assert not port_accepts(erp.host, erp.port)
