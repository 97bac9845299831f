"""``erpsync reconcile``: order by order, what Magento charged, captured and refunded against the
Acumatica sales order total, its applied payments and its credit memos, on both sims in-process
(the orders, payments and credit-memos flows of test_credit_memos_flow's shop)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from erpsync.runtime.reconcile import reconcile
from tests.integration.test_credit_memos_flow import ACU, RefundShop
from tests.integration.test_payments_flow import v

D = Decimal


@dataclass
class _Lane:
    source: str
    target: str
    rules: Any


@dataclass
class _Dispatcher:
    lanes: list[_Lane] = field(default_factory=list)


class _Runtime:
    """What ``reconcile`` needs of the orders flow's runtime: its lanes."""

    def __init__(self, shop: RefundShop) -> None:
        self.dispatcher = _Dispatcher([_Lane("magento", "acumatica", shop.orders)])

    def refresh(self) -> None:
        pass


@pytest.fixture
def shop(bindings_table: str) -> RefundShop:
    return RefundShop(bindings_table)


def later() -> datetime:
    return datetime.now(UTC) + timedelta(hours=1)  # every order old enough to be in the ERP


def test_books_that_match_have_no_difference_and_a_hand_edit_in_the_erp_is_named(shop: RefundShop) -> None:
    order, invoice_id = shop.paid_order()
    line = next(it for it in order["items"] if it.get("parent_item_id") is None)
    memo = shop.refund(
        f"/V1/invoice/{invoice_id}/refund", {"items": [{"order_item_id": line["item_id"], "qty": 1}], "isOnline": True}
    )
    assert shop.sync_memo(memo).outcome == "synced"
    rt = _Runtime(shop)
    clean = reconcile(rt, days=1, now=later())
    assert clean.checked == 1 and clean.differences == [], clean.differences
    assert "the books match" in clean.summary()

    so = shop.sales_order(order["increment_id"])
    edited = shop.ahttp.put(
        ACU + "SalesOrder?$expand=Details",
        json={
            "OrderType": so["OrderType"],
            "OrderNbr": so["OrderNbr"],
            "Totals": {"PremiumFreight": {"value": 99}},
        },
    )
    assert edited.status_code == 200, edited.text
    erp_total = D(str(v(shop.sales_order(order["increment_id"])["OrderTotal"])))
    [diff] = reconcile(rt, days=1, now=later()).differences
    assert (diff.number, diff.what) == (order["increment_id"], "total")
    assert diff.store_amount == D(str(order["base_grand_total"])) and diff.erp_amount == erp_total
    assert diff.store_ref == str(order["entity_id"]) and diff.erp_ref == f"{v(so['OrderType'])}/{v(so['OrderNbr'])}"


def test_a_refund_or_an_order_that_did_not_reach_the_erp_is_a_difference(shop: RefundShop) -> None:
    order, invoice_id = shop.paid_order()
    memo = shop.refund(f"/V1/invoice/{invoice_id}/refund", {"isOnline": True, "arguments": {"shipping_amount": 0}})
    unsent = shop.place(method="checkmo", captured=False)  # placed, never synced
    result = reconcile(_Runtime(shop), days=1, now=later())
    found = {(d.number, d.what): d for d in result.differences}
    refunded = found[(order["increment_id"], "refunded")]
    assert refunded.store_amount == D(str(memo["base_grand_total"])) and refunded.erp_amount == 0
    missing = found[(unsent["increment_id"], "missing")]
    assert missing.erp_ref == "" and missing.erp_amount is None
    assert len(result.differences) == 2

    assert shop.sync_memo(memo).outcome == "synced"
    assert shop.sync(shop.orders, unsent).outcome == "synced"
    assert reconcile(_Runtime(shop), days=1, now=later()).differences == []


def test_an_order_the_preferences_leave_out_is_not_missing(bindings_table: str) -> None:
    from erpsync.settings import Settings

    shop = RefundShop(bindings_table, Settings(tax_id="STORETAX", order_sync={"statuses": ["processing"]}))
    shop.place(method="checkmo", captured=False)  # pending: left out
    result = reconcile(_Runtime(shop), days=1, now=later())
    assert result.differences == [] and result.left_out == 1


def test_the_daily_report_says_whether_the_books_match(shop: RefundShop, monkeypatch: pytest.MonkeyPatch) -> None:
    from erpsync.runtime import lambda_app, report

    order, _ = shop.paid_order()
    monkeypatch.setattr(lambda_app, "build", lambda flow: _Runtime(shop))
    assert report.books(24).endswith("the books match")
    so = shop.sales_order(order["increment_id"])
    shop.ahttp.put(
        ACU + "SalesOrder",
        json={"OrderType": so["OrderType"], "OrderNbr": so["OrderNbr"], "Totals": {"PremiumFreight": {"value": 1}}},
    )
    monkeypatch.setattr("erpsync.runtime.reconcile.SETTLE_S", 0.0)
    line = report.books(24)
    assert "1 differ" in line and "erpsync reconcile" in line

    def down(flow: str) -> Any:
        raise ConnectionError("acumatica is unreachable")

    monkeypatch.setattr(lambda_app, "build", down)
    assert report.books(24).startswith("could not be compared (ConnectionError: acumatica is unreachable")


def test_the_command_lists_each_difference_as_a_json_line_and_fails(
    shop: RefundShop, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from typer.testing import CliRunner

    from cli import target
    from cli.main import app
    from erpsync.runtime import lambda_app

    order, _ = shop.paid_order()
    monkeypatch.setattr(target, "choose", lambda stack: None)
    monkeypatch.setattr(lambda_app, "build", lambda flow: _Runtime(shop))
    monkeypatch.setattr("erpsync.runtime.reconcile.SETTLE_S", 0.0)
    ok = CliRunner().invoke(app, ["reconcile", "--days", "1"])
    assert ok.exit_code == 0 and "the books match" in ok.output, ok.output
    so = shop.sales_order(order["increment_id"])
    shop.ahttp.put(
        ACU + "SalesOrder",
        json={"OrderType": so["OrderType"], "OrderNbr": so["OrderNbr"], "Totals": {"PremiumFreight": {"value": 1}}},
    )
    bad = CliRunner().invoke(app, ["reconcile", "--days", "1", "--json"])
    assert bad.exit_code == 1
    [row] = [json.loads(line) for line in bad.output.splitlines() if line.strip()]
    assert row["number"] == order["increment_id"] and row["what"] == "total"
    assert row["store_amount"] == str(D(str(order["base_grand_total"])).quantize(D("0.01")))


def test_an_erp_order_no_store_order_is_linked_to_is_named_unless_the_erp_orders_flow_left_it_out(
    shop: RefundShop, synclog_table: str
) -> None:
    from erpsync.state.synclog import LogRow, SyncLog

    shop.paid_order()  # a store order, linked: not "only in the ERP"
    phone = shop.ahttp.put(
        ACU + "SalesOrder",
        json={
            "OrderType": {"value": "SO"},
            "CustomerID": shop.ahttp.get(ACU + "SalesOrder").json()[0]["CustomerID"],
            "Details": [{"InventoryID": {"value": "24-MB01"}, "OrderQty": {"value": 1}}],
        },
    ).json()
    ref = f"{v(phone['OrderType'])}/{v(phone['OrderNbr'])}"
    log = SyncLog(synclog_table)
    [only] = reconcile(_Runtime(shop), days=1, now=later(), synclog=log).differences
    assert (only.what, only.erp_ref, only.number, only.store_amount) == ("only in the ERP", ref, "", None)

    log.write(LogRow("erp-orders", "acumatica", ref, "filtered", message="status 'Open' is not one of ['Completed']"))
    result = reconcile(_Runtime(shop), days=1, now=later(), synclog=log)
    assert result.differences == [] and result.left_out == 1
