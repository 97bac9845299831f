"""Returns, Adobe Commerce -> SAP S/4HANA and back, on the in-process sims: a return (RMA) the
merchant authorized in Magento becomes one S/4 customer return (``API_CUSTOMER_RETURN_SRV``, in the
shapes of SAP's metadata: sandbox/sims/sap_s4_metadata/SOURCES.md) with reference to the sales
order's items, carrying the store return's number, once, also after a lost answer; the S/4
warehouse receives the goods (the returns delivery's goods receipt: a sim door, the returns
delivery API is not simulated), the stock comes back, and the erp-returns flow writes what came
back on the Magento return, once. The RMA is made through Magento's ``POST /V1/returns`` as the
Business One returns test makes it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from erpsync.errors import RetryableError, may_have_been_applied
from erpsync.flows.erp_credit_memos import ErpCreditMemoRules
from erpsync.flows.returns import ErpReturnRules, ReturnRules
from erpsync.model import ChangeNotice
from erpsync.settings import Settings
from erpsync.systems.sap_s4.client import Refused
from sandbox.sims import sap_s4
from tests.integration.test_sap_b1_returns import Returns as B1Returns
from tests.integration.test_sap_s4_adapter import Pair

D = Decimal
RET = sap_s4.RETURNS


class Returns(Pair):
    request_return = B1Returns.request_return

    def __init__(self, table: str, **s4_settings: Any) -> None:
        super().__init__(table, **s4_settings)
        self.mhttp.post("/_sim/seed", json={"edition": "commerce"})
        self.settings = Settings(tax_id="STORETAX", default_ship_via="GROUND", in_doubt_wait_s=0)
        self.returns = ReturnRules(self.ctx("returns", "return", {}))
        self.erp_returns = ErpReturnRules(self.ctx("erp-returns", "return", {}))

    def shipped(self, invoiced: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
        """A Magento order booked in S/4, delivered (goods issue posted) and shipped in Magento (and,
        ``invoiced``, billed in S/4 and invoiced in Magento)."""
        order = self.place()
        notice = ChangeNotice(source="magento", entity="order", id=str(order["entity_id"]))
        assert self.orders.sync(notice).outcome == "synced"
        [booked] = [o for o in self.s4.sim.orders.values() if o["PurchaseOrderByCustomer"] == order["increment_id"]]
        items = [str(i["SalesOrderItem"]) for i in booked["to_Item"]]
        delivery = self.s4.deliver(str(booked["SalesOrder"]), items, "1Z-RMA")
        assert self.shipments.sync(ChangeNotice(source="sap_s4", entity="shipment", id=delivery)).outcome == "synced"
        if invoiced:
            billed = ChangeNotice(source="sap_s4", entity="invoice", id=self.s4.bill(delivery))
            assert self.invoices.sync(billed).outcome == "synced"
        return dict(self.magento.client.get(f"/V1/orders/{order['entity_id']}")), booked

    def run(self, rma: dict[str, Any]) -> Any:
        return self.returns.sync(ChangeNotice(source="magento", entity="return", id=str(rma["entity_id"])))

    def run_back(self, key: str) -> Any:
        return self.erp_returns.sync(ChangeNotice(source="sap_s4", entity="return", id=key))

    def made(self) -> list[dict[str, Any]]:
        return list(self.s4.sim.customer_returns.values())

    def receive(self, number: str, items: dict[str, str]) -> dict[str, Any]:
        answer = self.s4.http.post(f"/_sim/returns/{number}/receive", json={"items": items})
        assert answer.status_code == 200, answer.text
        return dict(answer.json()["d"])

    def in_stock(self, sku: str) -> Decimal:
        rows = [r for (m, _, _), r in self.s4.sim.stock.items() if m == sku]
        return sum((D(r["MatlWrhsStkQtyInMatlBaseUnit"]) for r in rows), D(0))


@pytest.fixture
def s4(bindings_table: str) -> Returns:
    return Returns(bindings_table, return_reason="101")


def test_an_authorized_return_is_one_customer_return_received_and_told_to_magento(s4: Returns) -> None:
    order, booked = s4.shipped()
    rma = s4.request_return(order, "24-MB01", 1)
    result = s4.run(rma)
    assert result.outcome == "synced", result.message
    [made] = s4.made()
    key = f"CustomerReturn/{made['CustomerReturn']}"
    assert result.target_id == key
    assert (made["PurchaseOrderByCustomer"], made["AssignmentReference"], made["CustomerReturnType"]) == (
        rma["increment_id"],
        rma["increment_id"],
        "CBAR",
    )
    [ordered] = [i for i in booked["to_Item"] if i["Material"] == "24-MB01"]
    item = next(i for i in order["items"] if i["sku"] == "24-MB01")
    [line] = made["to_Item"]
    assert (line["Material"], D(line["RequestedQuantity"]), line["ReturnReason"]) == ("24-MB01", D(1), "101")
    assert (line["ReferenceSDDocument"], line["ReferenceSDDocumentItem"], line["PurchaseOrderByCustomer"]) == (
        booked["SalesOrder"],
        ordered["SalesOrderItem"],
        str(item["item_id"]),
    )
    assert s4.run(rma).outcome == "skipped" and len(s4.made()) == 1

    source = s4.s4.system.port("return", "source")
    since = s4.s4.sim.now().replace(microsecond=0)
    assert s4.run_back(key).outcome == "filtered"  # nothing received yet
    stock = s4.in_stock("24-MB01")
    s4.receive(made["CustomerReturn"], {line["CustomerReturnItem"]: "1"})
    assert s4.in_stock("24-MB01") == stock + 1  # back in the plant
    assert [n.id for p in source.changes(since) for n in p.notices] == [key]  # the receipt stamps the return
    back = s4.run_back(key)
    assert back.outcome == "synced", back.message
    after = dict(s4.magento.client.get(f"/V1/returns/{rma['entity_id']}"))
    assert after["status"] == "received"
    assert [(i["qty_returned"], i["status"]) for i in after["items"]] == [(1, "received")]
    assert s4.run_back(key).outcome == "skipped"
    assert s4.run(rma).outcome == "skipped" and len(s4.made()) == 1


def test_a_lost_answer_on_the_customer_return_makes_no_second_one(s4: Returns) -> None:
    order, _ = s4.shipped()
    rma = s4.request_return(order, "24-WG084", 1)
    s4.s4.client.token(RET)
    s4.s4.http.post("/_sim/faults", json={"lost_response_paths": {".*/A_CustomerReturn$": 1.0}})
    with pytest.raises(RetryableError) as lost:
        s4.run(rma)
    assert may_have_been_applied(lost.value) and len(s4.made()) == 1  # applied, its answer lost
    s4.s4.http.delete("/_sim/faults")
    result = s4.run(rma)
    assert result.outcome == "synced" and len(s4.made()) == 1, result.message


def test_the_sim_takes_back_no_more_than_was_delivered_or_expected(s4: Returns) -> None:
    _, booked = s4.shipped()
    [ordered] = [i for i in booked["to_Item"] if i["Material"] == "24-MB01"]
    body = {
        "CustomerReturnType": "CBAR",
        "SalesOrganization": "1710",
        "DistributionChannel": "10",
        "OrganizationDivision": "00",
        "SoldToParty": "WEBSHOP",
        "ReferenceSDDocument": booked["SalesOrder"],
        "to_Item": {
            "results": [
                {"Material": "24-MB01", "RequestedQuantity": "3", "ReferenceSDDocumentItem": ordered["SalesOrderItem"]}
            ]
        },
    }
    with pytest.raises(Refused, match=r"only 2\.000 delivered left to return"):
        s4.s4.client.create(RET, "A_CustomerReturn", body)
    body["to_Item"]["results"][0]["RequestedQuantity"] = "2"
    made = s4.s4.client.create(RET, "A_CustomerReturn", body).entity
    refused = s4.s4.http.post(f"/_sim/returns/{made['CustomerReturn']}/receive", json={"items": {"10": "3"}})
    assert refused.status_code == 400 and "2.000 expected" in refused.text


def test_the_credit_memo_billed_for_a_received_return_reaches_the_store_order_once(s4: Returns) -> None:
    order, _ = s4.shipped(invoiced=True)
    rma = s4.request_return(order, "24-MB01", 1)
    assert s4.run(rma).outcome == "synced"
    [made] = s4.made()
    s4.receive(made["CustomerReturn"], {"10": "1"})
    billed = s4.s4.http.post("/_sim/billing", json={"customer_return": made["CustomerReturn"]})
    assert billed.status_code == 201, billed.text
    memo = billed.json()["d"]
    assert (memo["BillingDocumentType"], memo["SDDocumentCategory"]) == ("RE", "O")
    note = s4.s4.system.port("creditmemo", "source").get(memo["BillingDocument"])
    assert [(ln.order_key, ln.line_nbr, ln.qty) for ln in note.lines] == [
        (f"CustomerReturn/{made['CustomerReturn']}", "10", D(1))
    ]
    rules = ErpCreditMemoRules(s4.ctx("erp-credit-memos", "creditmemo", {}))
    notice = ChangeNotice(source="sap_s4", entity="creditmemo", id=memo["BillingDocument"])
    result = rules.sync(notice)
    assert result.outcome == "synced", result.message  # its store order found through the return's binding
    memos = s4.magento.client.get("/V1/creditmemos", params={"searchCriteria[pageSize]": "50"})["items"]
    [store_memo] = [m for m in memos if m["order_id"] == order["entity_id"]]
    assert D(str(store_memo["grand_total"])) == note.total == D(made["to_Item"][0]["NetAmount"])
    assert rules.sync(notice).outcome == "skipped"
    again = s4.s4.http.post("/_sim/billing", json={"customer_return": made["CustomerReturn"]})
    assert again.status_code == 400 and "nothing received to credit" in again.text
