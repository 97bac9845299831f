"""Cancellations, Magento -> Acumatica, on both sims in-process: a store order canceled after it
reached the ERP cancels its sales order once; one that has shipped is held with the ERP's reason."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from erpsync.errors import PermanentError, RetryableError
from erpsync.flows.cancellations import CancellationRules, ErpCancellationRules
from erpsync.model import ChangeNotice
from erpsync.settings import Settings
from erpsync.state import dynamo
from tests.integration.test_payments_flow import Shop, v

API = "/entity/Default/24.200.001"


class CancelShop(Shop):
    def __init__(self, table: str, settings: Settings | None = None) -> None:
        super().__init__(table, settings)
        self.cancellations = CancellationRules(self._ctx("cancellations", "cancellation", {}))

    def cancel_in_magento(self, order: dict[str, Any]) -> dict[str, Any]:
        assert self.magento.client.post(f"/V1/orders/{order['entity_id']}/cancel", {}) is True
        return dict(self.mhttp_get(f"/V1/orders/{order['entity_id']}"))

    def ship_in_acumatica(self, number: str) -> None:
        so = self.sales_order(number)
        r = self.ahttp.post(
            f"{API}/SalesOrder/SalesOrderCreateShipment",
            json={
                "entity": {"id": so["id"]},
                "parameters": {
                    "ShipmentDate": {"value": datetime.now(UTC).isoformat()},
                    "WarehouseID": {"value": "WHOLESALE"},
                },
            },
        )
        assert r.status_code in (202, 204), r.text


@pytest.fixture
def shop(bindings_table: str) -> CancelShop:
    return CancelShop(bindings_table)


def test_a_store_cancel_cancels_the_erp_order_once(shop: CancelShop) -> None:
    order = shop.place(captured=False)
    assert shop.sync(shop.orders, order).outcome == "synced"
    assert shop.sync(shop.cancellations, order).outcome == "filtered"  # not canceled yet
    canceled = shop.cancel_in_magento(order)
    assert canceled["state"] == "canceled"
    result = shop.sync(shop.cancellations, canceled)
    assert result.outcome == "synced", result.message
    assert v(shop.sales_order(order["increment_id"])["Status"]) == "Canceled"
    before = shop.writes()
    again = shop.sync(shop.cancellations, canceled)
    assert again.outcome == "skipped" and shop.writes() == before


def test_a_cancel_whose_answer_was_lost_is_sent_again_harmlessly(shop: CancelShop) -> None:
    order = shop.place(captured=False)
    shop.sync(shop.orders, order)
    canceled = shop.cancel_in_magento(order)
    shop.ahttp.post("/_sim/faults", json={"lost_response_rate": 1.0, "seed": 3})
    with pytest.raises(RetryableError):  # a 504: the ERP may have applied it
        shop.sync(shop.cancellations, canceled)
    shop.ahttp.delete("/_sim/faults")
    assert v(shop.sales_order(order["increment_id"])["Status"]) == "Canceled"  # applied, answer lost
    assert shop.sync(shop.cancellations, canceled).outcome == "synced"


def test_an_order_canceled_before_it_reached_the_erp_has_nothing_to_cancel(shop: CancelShop) -> None:
    order = shop.place(captured=False)
    canceled = shop.cancel_in_magento(order)
    assert shop.sync(shop.orders, canceled).outcome == "filtered"  # the preferences leave canceled orders out
    result = shop.sync(shop.cancellations, canceled)
    assert result.outcome == "filtered" and "never reached acumatica" in result.message


def test_a_shipped_erp_order_is_not_canceled_and_the_reason_says_why(shop: CancelShop) -> None:
    order = shop.place(captured=False)
    shop.sync(shop.orders, order)
    shop.ship_in_acumatica(order["increment_id"])
    canceled = shop.cancel_in_magento(order)
    with pytest.raises(PermanentError) as refused:
        shop.sync(shop.cancellations, canceled)
    assert "has shipments" in str(refused.value)
    assert v(shop.sales_order(order["increment_id"])["Status"]) != "Canceled"


def test_magento_answers_false_for_an_order_it_cannot_cancel(shop: CancelShop) -> None:
    order = shop.place(captured=False)
    shop.cancel_in_magento(order)
    assert shop.magento.client.post(f"/V1/orders/{order['entity_id']}/cancel", {}) is False


class BothWays(CancelShop):
    def __init__(self, table: str) -> None:
        super().__init__(table)
        self.erp_cancellations = ErpCancellationRules(self._ctx("erp-cancellations", "cancellation", {}))

    def cancel_in_acumatica(self, number: str) -> str:
        so = self.sales_order(number)
        r = self.ahttp.post(f"{API}/SalesOrder/CancelSalesOrder", json={"entity": {"id": so["id"]}})
        assert r.status_code in (202, 204), r.text
        return f"{v(so['OrderType'])}/{v(so['OrderNbr'])}"


def test_an_erp_cancel_cancels_the_store_order_once_and_its_echo_writes_nothing(bindings_table: str) -> None:
    shop = BothWays(bindings_table)
    order = shop.place(captured=False)
    shop.sync(shop.orders, order)
    key = shop.cancel_in_acumatica(order["increment_id"])
    notice = ChangeNotice(source="acumatica", entity="cancellation", id=key)
    result = shop.erp_cancellations.sync(notice)
    assert result.outcome == "synced", result.message
    canceled = shop.mhttp_get(f"/V1/orders/{order['entity_id']}")
    assert canceled["state"] == "canceled"
    before = shop.writes()
    assert shop.sync(shop.cancellations, canceled).outcome == "skipped"  # the echo: nothing back to the ERP
    assert shop.erp_cancellations.sync(notice).outcome == "skipped"
    assert shop.writes() == before


def test_a_store_order_magento_will_not_cancel_waits_with_the_reason(bindings_table: str) -> None:
    shop = BothWays(bindings_table)
    order = shop.place(captured=False)
    shop.sync(shop.orders, order)
    items = [{"order_item_id": i["item_id"], "qty": i["qty_ordered"]} for i in order["items"]]
    shop.magento.client.post(f"/V1/order/{order['entity_id']}/invoice", {"capture": True, "items": items})
    key = shop.cancel_in_acumatica(order["increment_id"])
    with pytest.raises(PermanentError) as refused:  # Magento answers false: invoiced all
        shop.erp_cancellations.sync(ChangeNotice(source="acumatica", entity="cancellation", id=key))
    assert refused.value.error_type == "not_canceled" and "credit memo" in str(refused.value)


def test_an_erp_order_that_is_not_canceled_or_never_reached_the_store_is_filtered(bindings_table: str) -> None:
    shop = BothWays(bindings_table)
    order = shop.place(captured=False)
    shop.sync(shop.orders, order)
    so = shop.sales_order(order["increment_id"])
    key = f"{v(so['OrderType'])}/{v(so['OrderNbr'])}"
    open_ = shop.erp_cancellations.sync(ChangeNotice(source="acumatica", entity="cancellation", id=key))
    assert open_.outcome == "filtered" and "not canceled" in open_.message
    shop.ahttp.post("/_sim/seed", json={"customers": [{"CustomerID": "PHONE", "CustomerName": "Phone"}]})
    r = shop.ahttp.put(
        f"{API}/SalesOrder",
        json={
            "OrderType": {"value": "SO"},
            "CustomerID": {"value": "PHONE"},
            "Details": [{"InventoryID": {"value": "24-MB01"}, "OrderQty": {"value": 1}}],
        },
    )
    other = f"SO/{v(r.json()['OrderNbr'])}"
    shop.ahttp.post(f"{API}/SalesOrder/CancelSalesOrder", json={"entity": {"id": r.json()["id"]}})
    result = shop.erp_cancellations.sync(ChangeNotice(source="acumatica", entity="cancellation", id=other))
    assert result.outcome == "filtered" and "never reached magento" in result.message


def comment_on(shop: Shop, order: dict[str, Any], text: str, visible: bool) -> None:
    """A comment on the Magento order's history, as the merchant (or checkout) writes it."""
    history = {"comment": text, "is_customer_notified": 0, "is_visible_on_front": int(visible)}
    assert shop.magento.client.post(f"/V1/orders/{order['entity_id']}/comments", {"statusHistory": history}) is True


def erp_note(shop: Shop, number: str) -> str:
    return str(shop.sales_order(number).get("note", {}).get("value") or "")


def test_store_comments_follow_the_order_and_its_cancel_into_the_erp_note(shop: CancelShop) -> None:
    """``order_comments.to_erp`` (default ``visible``): the comments the customer sees go into the
    sales order's note when it is made, and those written by the time of the cancel, once."""
    order = shop.place(captured=False)
    comment_on(shop, order, "Please leave the parcel at the back door", visible=True)
    comment_on(shop, order, "Fraud check passed", visible=False)
    order = shop.mhttp_get(f"/V1/orders/{order['entity_id']}")
    assert shop.sync(shop.orders, order).outcome == "synced"
    assert erp_note(shop, order["increment_id"]) == "Please leave the parcel at the back door"
    comment_on(shop, order, "Canceled at the customer's request: ordered the wrong size", visible=True)
    canceled = shop.cancel_in_magento(order)
    assert shop.sync(shop.cancellations, canceled).outcome == "synced"
    note = erp_note(shop, order["increment_id"])
    assert note.splitlines() == [
        "Please leave the parcel at the back door",
        "Canceled at the customer's request: ordered the wrong size",
    ]
    # a retry (the binding lost) adds nothing twice
    key = {"pk": {"S": f"cancellation#magento#{order['entity_id']}"}, "sk": {"S": "acumatica"}}
    dynamo.client().delete_item(TableName=shop.bindings.table, Key=key)
    assert shop.sync(shop.cancellations, canceled).outcome == "synced"
    assert erp_note(shop, order["increment_id"]) == note


def test_no_comments_go_when_the_setting_says_none(bindings_table: str) -> None:
    shop = CancelShop(bindings_table, Settings(order_comments={"to_erp": "none"}))
    order = shop.place(captured=False)
    comment_on(shop, order, "Gift wrap, please", visible=True)
    assert shop.sync(shop.orders, shop.mhttp_get(f"/V1/orders/{order['entity_id']}")).outcome == "synced"
    assert erp_note(shop, order["increment_id"]) == ""


def test_an_erp_cancel_leaves_a_comment_with_the_erp_note_on_the_store_order(bindings_table: str) -> None:
    shop = BothWays(bindings_table)
    order = shop.place(captured=False)
    shop.sync(shop.orders, order)
    so = shop.sales_order(order["increment_id"])
    r = shop.ahttp.put(
        f"{API}/SalesOrder",
        json={"OrderType": so["OrderType"], "OrderNbr": so["OrderNbr"], "note": {"value": "Customer phoned to cancel"}},
    )
    assert r.status_code == 200, r.text
    key = shop.cancel_in_acumatica(order["increment_id"])
    notice = ChangeNotice(source="acumatica", entity="cancellation", id=key)
    assert shop.erp_cancellations.sync(notice).outcome == "synced"
    after = shop.mhttp_get(f"/V1/orders/{order['entity_id']}")
    texts = [h["comment"] for h in after["status_histories"]]
    assert texts.count(f"Canceled in acumatica: sales order {key}. Customer phoned to cancel") == 1
    # its echo: the store order's new comment sends nothing back
    before = shop.writes()
    assert shop.sync(shop.cancellations, after).outcome == "skipped"
    assert shop.writes() == before
