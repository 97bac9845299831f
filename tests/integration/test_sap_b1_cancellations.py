"""Cancellations, Magento -> SAP Business One, on the in-process sims: a Magento order canceled after
it reached B1 cancels its B1 sales order once (``POST Orders(<DocEntry>)/Cancel``, the v1 bound
FunctionImport ``Cancel``), also after a lost answer; an order B1 delivered is refused with B1's
reason and nothing written; and the sim's rules for the action.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from erpsync.errors import NotFoundError, PermanentError, RetryableError, ValidationFailed
from erpsync.flows.cancellations import CancellationRules, ErpCancellationRules
from erpsync.model import ChangeNotice
from erpsync.settings import Settings
from sandbox.local.stack import local_settings
from tests.integration.test_sap_b1_flows import Pair
from tests.support.sap_b1 import assert_answer, assert_error_v1


class Cancels(Pair):
    def __init__(self, table: str, settings: Settings) -> None:
        super().__init__(table, settings)
        self.cancellations = CancellationRules(self.ctx("cancellations", "cancellation", {}))
        self.erp_cancellations = ErpCancellationRules(self.ctx("erp-cancellations", "cancellation", {}))

    def cancel_in_magento(self, order: dict[str, Any], why: str = "") -> dict[str, Any]:
        if why:  # a comment the customer sees: the flow writes it into the B1 order's Comments
            history = {"comment": why, "is_visible_on_front": 1}
            assert self.magento.client.post(f"/V1/orders/{order['entity_id']}/comments", {"statusHistory": history})
        assert self.magento.client.post(f"/V1/orders/{order['entity_id']}/cancel", {}) is True
        return dict(self.magento.client.get(f"/V1/orders/{order['entity_id']}"))

    def sync(self, order: dict[str, Any]) -> Any:
        return self.cancellations.sync(
            ChangeNotice(source="magento", entity="cancellation", id=str(order["entity_id"]))
        )

    def writes(self) -> list[str]:
        rows = self.bhttp.get("/_sim/requests").json()["requests"]
        return [f"{r['method']} {r['path'].split('/b1s/v1/', 1)[-1]}" for r in rows if r["method"] != "GET"]

    def order(self, entry: int) -> dict[str, Any]:
        r = self.clerk.http.get(f"/b1s/v1/Orders({entry})")
        assert_answer("Orders", r.json())
        return dict(r.json())

    def committed(self, sku: str) -> float:
        return float(self.sim.records["Items"][sku]["ItemWarehouseInfoCollection"][0]["Committed"])


@pytest.fixture
def b1(bindings_table: str, monkeypatch: pytest.MonkeyPatch) -> Cancels:
    monkeypatch.setenv("STORE_SYSTEM", "magento")
    monkeypatch.setenv("ERP_SYSTEM", "sap_b1")
    return Cancels(bindings_table, Settings(**local_settings("magento", "sap_b1")))


def test_a_magento_cancel_cancels_the_b1_order_once(b1: Cancels) -> None:
    order = b1.place()
    booked = b1.book(order)
    assert b1.committed("24-MB01") == 2
    assert b1.sync(order).outcome == "filtered"  # not canceled yet
    canceled = b1.cancel_in_magento(order, "Ordered the wrong size")
    b1.bhttp.delete("/_sim/requests")
    result = b1.sync(canceled)
    assert result.outcome == "synced", result.message
    assert result.target_id == f"Orders/{booked['DocEntry']}"
    entry = booked["DocEntry"]
    assert b1.writes() == [f"PATCH Orders({entry})", f"POST Orders({entry})/Cancel"]  # the comment first
    after = b1.order(booked["DocEntry"])
    assert after["Comments"].endswith("Ordered the wrong size")
    assert (after["Cancelled"], after["DocumentStatus"]) == ("tYES", "bost_Close")
    assert {ln["LineStatus"] for ln in after["DocumentLines"]} == {"bost_Close"}
    assert b1.committed("24-MB01") == 0  # its stock no longer committed
    assert b1.sap.port("order", "target").find(order["increment_id"]) is None  # no live order carries it
    b1.bhttp.delete("/_sim/requests")
    again = b1.sync(canceled)
    assert again.outcome == "skipped" and b1.writes() == []


def test_a_cancel_whose_answer_was_lost_is_not_sent_again(b1: Cancels) -> None:
    order = b1.place()
    booked = b1.book(order)
    canceled = b1.cancel_in_magento(order)
    b1.bhttp.post("/_sim/faults", json={"lost_response_rate": 1.0})
    with pytest.raises(RetryableError):  # a 504: B1 may have applied it
        b1.sync(canceled)
    b1.bhttp.delete("/_sim/faults")
    assert b1.order(booked["DocEntry"])["Cancelled"] == "tYES"  # applied, its answer lost
    b1.bhttp.delete("/_sim/requests")
    result = b1.sync(canceled)
    assert result.outcome == "synced", result.message
    assert b1.writes() == []  # read back: cancelled already, nothing sent again


def test_a_delivered_order_is_refused_with_b1s_reason_and_nothing_written(b1: Cancels) -> None:
    order = b1.place()
    booked = b1.book(order)
    b1.clerk.deliver(booked["DocEntry"], "1Z-PART", lines={0: 1})
    canceled = b1.cancel_in_magento(order, "Ordered the wrong size")
    b1.bhttp.delete("/_sim/requests")
    with pytest.raises(PermanentError) as refused:
        b1.sync(canceled)
    assert f"Cannot cancel document {booked['DocEntry']}: target documents" in str(refused.value)
    assert "(SAP code -5002)" in str(refused.value)
    assert b1.writes() == [f"POST Orders({booked['DocEntry']})/Cancel"]  # refused; no comment written either
    assert b1.order(booked["DocEntry"])["Cancelled"] == "tNO"


def test_the_port_adds_the_comments_once_and_leaves_a_cancelled_order_as_it_is(b1: Cancels) -> None:
    port = b1.sap.port("cancellation", "target")
    first, second = (b1.book(b1.place()) for _ in range(2))
    assert port.cancel(f"Orders/{first['DocEntry']}", ["Customer changed their mind"]) == "Cancelled"
    assert b1.order(first["DocEntry"])["Comments"].endswith("Customer changed their mind")
    b1.bhttp.delete("/_sim/requests")
    assert port.cancel(f"Orders/{first['DocEntry']}", ["Customer changed their mind", "late"]) == "Cancelled"
    assert b1.writes() == []  # cancelled already: nothing written (B1 refuses changes to it)
    assert b1.clerk.cancel(second["DocEntry"])["Cancelled"] == "tYES"  # a clerk cancelled it in B1
    b1.bhttp.delete("/_sim/requests")
    assert port.cancel(f"Orders/{second['DocEntry']}") == "Cancelled" and b1.writes() == []
    with pytest.raises(ValidationFailed, match="is not a DocEntry"):
        port.cancel("Orders/SO-1")
    with pytest.raises(NotFoundError):
        port.cancel("Orders/999")


def test_the_sim_cancels_open_orders_only(b1: Cancels) -> None:
    booked = b1.book(b1.place())
    entry = booked["DocEntry"]
    cases = [
        ("POST", f"DeliveryNotes({entry})/Cancel", 501, "not simulated yet: DeliveryNotes(<DocEntry>)/Cancel"),
        ("POST", f"Orders({entry})/Close", 400, "The requested action is not supported for this object."),
        ("POST", f"Orders({entry})/Frobnicate", 400, "The requested action is not supported for this object."),
        ("GET", f"Orders({entry})/Cancel", 405, "Cancel is called with POST"),
        ("POST", "Orders(999)/Cancel", 404, "No matching records found"),
    ]
    for method, path, status, says in cases:
        r = b1.clerk.http.request(method, f"/b1s/v1/{path}")
        assert_error_v1(r.json())
        assert r.status_code == status and says in r.json()["error"]["message"]["value"], (path, r.json())
    assert b1.clerk.http.post(f"/b1s/v1/Orders({entry})/Cancel").status_code == 204
    again = b1.clerk.http.post(f"/b1s/v1/Orders({entry})/Cancel")
    assert (again.status_code, again.json()["error"]["code"]) == (400, -5002)
    assert f"Document {entry} is already cancelled" in again.json()["error"]["message"]["value"]
    patch = b1.clerk.http.patch(f"/b1s/v1/Orders({entry})", json={"Comments": "x"})
    assert patch.status_code == 400  # a cancelled document takes no change
    r = b1.clerk.http.post(
        "/b1s/v1/DeliveryNotes",
        json={"CardCode": booked["CardCode"], "DocumentLines": [{"BaseType": 17, "BaseEntry": entry, "BaseLine": 0}]},
    )
    assert r.status_code == 400 and "Base document line is closed" in r.json()["error"]["message"]["value"]


# -- B1 -> Magento ------------------------------------------------------------------------------------


def test_a_b1_cancel_cancels_the_magento_order_once_and_its_echo_writes_nothing(b1: Cancels) -> None:
    since = datetime.now(UTC).replace(microsecond=0)
    order = b1.place()
    booked, kept = b1.book(order), b1.book(b1.place())
    b1.clerk.request("PATCH", f"Orders({booked['DocEntry']})", json={"Comments": "Customer called: cancel it"})
    b1.clerk.cancel(booked["DocEntry"])
    port = b1.sap.port("cancellation", "source")
    notices = [n for page in port.changes(since) for n in page.notices]
    key = f"Orders/{booked['DocEntry']}"
    assert [(n.entity, n.id) for n in notices] == [("cancellation", key)]  # only the cancelled order
    assert f"Orders/{kept['DocEntry']}" not in {n.id for n in notices}
    status = port.get(key)
    assert (status.status, status.note) == ("Cancelled", "Customer called: cancel it")
    notice = ChangeNotice(source="sap_b1", entity="cancellation", id=key)
    result = b1.erp_cancellations.sync(notice)
    assert result.outcome == "synced", result.message
    canceled = dict(b1.magento.client.get(f"/V1/orders/{order['entity_id']}"))
    assert canceled["state"] == "canceled"
    assert any("Customer called: cancel it" in (c.get("comment") or "") for c in canceled["status_histories"])
    b1.bhttp.delete("/_sim/requests")
    assert b1.sync(canceled).outcome == "skipped"  # the echo: nothing back to B1
    assert b1.erp_cancellations.sync(notice).outcome == "skipped"
    assert b1.writes() == []


def test_a_b1_cancel_of_an_order_magento_invoiced_waits_with_the_reason(b1: Cancels) -> None:
    order = b1.place()
    booked = b1.book(order)
    items = [{"order_item_id": i["item_id"], "qty": i["qty_ordered"]} for i in order["items"]]
    b1.magento.client.post(f"/V1/order/{order['entity_id']}/invoice", {"capture": True, "items": items})
    b1.clerk.cancel(booked["DocEntry"])
    with pytest.raises(PermanentError) as refused:  # Magento answers false: invoiced all
        b1.erp_cancellations.sync(
            ChangeNotice(source="sap_b1", entity="cancellation", id=f"Orders/{booked['DocEntry']}")
        )
    assert refused.value.error_type == "not_canceled" and "credit memo" in str(refused.value)
