"""Returns, Adobe Commerce -> SAP Business One and back, on the in-process sims: a return (RMA) the
merchant authorized in Magento becomes one B1 return request (``ReturnRequest``) carrying the store
return's number in ``NumAtCard``, once, also after a lost answer; the B1 warehouse takes the goods
back (``Returns`` based on the request's lines, the stock back in the warehouse), and the erp-returns
flow writes what came back on the Magento return, once. The RMA is made through Magento's
``POST /V1/returns`` (``rma-data-rma-interface``, Adobe Commerce 2.4) as the Acumatica returns test
makes it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from erpsync.errors import PermanentError, RetryableError
from erpsync.flows.returns import ErpReturnRules, ReturnRules
from erpsync.model import ChangeNotice
from erpsync.settings import Settings
from sandbox.local.stack import local_settings
from tests.integration.test_sap_b1_flows import Pair, ship
from tests.support.magento_schema import validate_answer, validate_request
from tests.support.sap_b1 import assert_answer

D = Decimal


class Returns(Pair):
    def __init__(self, table: str, settings: Settings) -> None:
        super().__init__(table, settings)
        self.mhttp.post("/_sim/seed", json={"edition": "commerce"})
        self.returns = ReturnRules(self.ctx("returns", "return", {}))
        self.erp_returns = ErpReturnRules(self.ctx("erp-returns", "return", {}))

    def shipped(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """A Magento order booked in B1, delivered there and shipped in Magento: (order, B1 order)."""
        order = self.place()
        booked = self.book(order)
        delivery = self.clerk.deliver(booked["DocEntry"], "1Z-RMA")
        assert ship(self, str(delivery["DocEntry"])).outcome == "synced"
        return dict(self.magento.client.get(f"/V1/orders/{order['entity_id']}")), booked

    def request_return(self, order: dict[str, Any], sku: str, qty: int) -> dict[str, Any]:
        """The merchant's authorized return of ``qty`` units of ``sku``, through Magento's REST API."""
        item = next(i for i in order["items"] if i["sku"] == sku and not i.get("parent_item_id"))
        body = {  # every field the schema requires, new ids 0 and values Magento fills in empty
            "rmaDataObject": {
                "entity_id": 0,
                "increment_id": "",
                "order_id": order["entity_id"],
                "order_increment_id": order["increment_id"],
                "store_id": order["store_id"],
                "customer_id": order["customer_id"],
                "date_requested": "",
                "customer_custom_email": "",
                "status": "authorized",
                "comments": [],
                "tracks": [],
                "items": [
                    {
                        "entity_id": 0,
                        "rma_entity_id": 0,
                        "order_item_id": item["item_id"],
                        "qty_requested": qty,
                        "qty_authorized": qty,
                        "qty_approved": 0,
                        "qty_returned": 0,
                        "reason": "wrong size",
                        "condition": "unopened",
                        "resolution": "refund",
                        "status": "authorized",
                    }
                ],
            }
        }
        validate_request("POST", "/V1/returns", body, allow_null=True)
        answer = self.magento.client.post("/V1/returns", body)
        validate_answer("POST", "/V1/returns", answer)
        return dict(answer)

    def run(self, rma: dict[str, Any]) -> Any:
        return self.returns.sync(ChangeNotice(source="magento", entity="return", id=str(rma["entity_id"])))

    def run_back(self, key: str) -> Any:
        return self.erp_returns.sync(ChangeNotice(source="sap_b1", entity="return", id=key))

    def requests_made(self) -> list[dict[str, Any]]:
        return list(self.sim.records["ReturnRequest"].values())

    def in_stock(self, sku: str) -> float:
        return float(self.sim.records["Items"][sku]["ItemWarehouseInfoCollection"][0]["InStock"])


@pytest.fixture
def b1(bindings_table: str, monkeypatch: pytest.MonkeyPatch) -> Returns:
    monkeypatch.setenv("STORE_SYSTEM", "magento")
    monkeypatch.setenv("ERP_SYSTEM", "sap_b1")
    return Returns(bindings_table, Settings(**{**local_settings("magento", "sap_b1"), "in_doubt_wait_s": 0}))


def test_an_authorized_return_is_one_return_request_taken_back_and_told_to_magento(b1: Returns) -> None:
    order, booked = b1.shipped()
    rma = b1.request_return(order, "24-MB01", 1)
    result = b1.run(rma)
    assert result.outcome == "synced", result.message
    [request] = b1.requests_made()
    assert_answer("ReturnRequest", b1.clerk.request("GET", f"ReturnRequest({request['DocEntry']})"))
    key = f"ReturnRequest/{request['DocEntry']}"
    assert result.target_id == key
    assert (request["NumAtCard"], request["CardCode"], request["DocObjectCode"]) == (
        rma["increment_id"],
        booked["CardCode"],
        "oReturnRequest",
    )
    item = next(i for i in order["items"] if i["sku"] == "24-MB01")
    [line] = request["DocumentLines"]
    assert (line["ItemCode"], line["Quantity"], D(str(line["UnitPrice"])), line["FreeText"]) == (
        "24-MB01",
        1,
        D(str(item["base_price"])),
        str(item["item_id"]),
    )
    assert b1.run(rma).outcome == "skipped" and len(b1.requests_made()) == 1

    assert b1.run_back(key).outcome == "filtered"  # nothing taken back yet
    stock = b1.in_stock("24-MB01")
    made = b1.clerk.receive(request["DocEntry"])
    assert [(ln["BaseType"], ln["BaseEntry"], ln["Quantity"]) for ln in made["DocumentLines"]] == [
        (234000031, request["DocEntry"], 1)
    ]
    assert b1.in_stock("24-MB01") == stock + 1  # back in the warehouse
    back = b1.run_back(key)
    assert back.outcome == "synced", back.message
    after = dict(b1.magento.client.get(f"/V1/returns/{rma['entity_id']}"))
    assert after["status"] == "received"
    assert [(i["qty_returned"], i["status"]) for i in after["items"]] == [(1, "received")]
    assert any(key in c["comment"] for c in after["comments"])
    assert b1.run_back(key).outcome == "skipped"
    echo = b1.run(rma)
    assert echo.outcome == "skipped" and len(b1.requests_made()) == 1


def test_a_lost_answer_on_the_return_request_makes_no_second_one(b1: Returns) -> None:
    order, _booked = b1.shipped()
    rma = b1.request_return(order, "24-WG084", 1)
    b1.bhttp.post("/_sim/faults", json={"lost_response_rate": 1.0})
    with pytest.raises(RetryableError):
        b1.run(rma)
    b1.bhttp.delete("/_sim/faults")
    assert len(b1.requests_made()) == 1  # applied, its answer lost
    result = b1.run(rma)
    assert result.outcome == "synced" and len(b1.requests_made()) == 1, result.message
    [request] = b1.requests_made()
    assert result.target_id == f"ReturnRequest/{request['DocEntry']}"


def test_the_sim_takes_back_no_more_than_a_return_request_agreed(b1: Returns) -> None:
    order, _booked = b1.shipped()
    b1.run(b1.request_return(order, "24-MB01", 2))
    [request] = b1.requests_made()
    with pytest.raises(RuntimeError, match="Quantity 3 is more than the 2 open on ReturnRequest"):
        b1.clerk.receive(request["DocEntry"], {0: 3})
    b1.clerk.receive(request["DocEntry"], {0: 1})
    receipt = b1.sap.port("return", "source").get(f"ReturnRequest/{request['DocEntry']}")
    assert (receipt.received, receipt.store_number) == ({"0": D(1)}, request["NumAtCard"])
    with pytest.raises(PermanentError, match="is not a DocEntry"):
        b1.sap.port("return", "source").get("ReturnRequest/R-1")
