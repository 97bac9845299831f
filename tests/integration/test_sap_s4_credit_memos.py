"""Store refunds -> SAP S/4HANA credit memo requests through the credit-memos flow, on the
in-process sims: a Magento credit memo of an order S/4 booked, delivered and billed becomes one
credit memo request (``API_CREDIT_MEMO_REQUEST_SRV``, in the shapes of SAP's metadata: see
sandbox/sims/sap_s4_metadata/SOURCES.md) with reference to the sales order, each line on the
order item of its store line, carrying the store's credit memo number; SAP prices the lines as the
order was (its net compared with the store's); once, also after a lost answer; a billing block is
lifted when the flow releases; no refund is made in S/4 (FI's); and the sim's rules for requests.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import pytest

from erpsync.errors import RetryableError, may_have_been_applied
from erpsync.flows.credit_memos import CreditMemoRules
from erpsync.flows.erp_credit_memos import ErpCreditMemoRules
from erpsync.model import ChangeNotice
from erpsync.settings import Settings
from erpsync.systems.sap_s4.client import Refused
from sandbox.sims import sap_s4
from tests.integration.test_sap_s4_adapter import Pair

D = Decimal
CMR = sap_s4.CREDIT_MEMOS


class Credits(Pair):
    def __init__(self, table: str, **s4_settings: Any) -> None:
        super().__init__(table, **s4_settings)
        self.settings = Settings(tax_id="STORETAX", default_ship_via="GROUND", in_doubt_wait_s=0)
        self.credit_memos = CreditMemoRules(self.ctx("credit-memos", "creditmemo", {}))

    def billed(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """A Magento order booked in S/4, delivered, billed and invoiced in Magento: (the Magento
        order as it is now, the S/4 order)."""
        order = self.place()
        assert self.orders.sync(ChangeNotice(source="magento", entity="order", id=str(order["entity_id"]))).outcome == (
            "synced"
        )
        [booked] = [o for o in self.s4.sim.orders.values() if o["PurchaseOrderByCustomer"] == order["increment_id"]]
        items = [str(i["SalesOrderItem"]) for i in booked["to_Item"]]
        billed = self.s4.bill(self.s4.deliver(str(booked["SalesOrder"]), items, "1Z-CM"))
        assert self.invoices.sync(ChangeNotice(source="sap_s4", entity="invoice", id=billed)).outcome == "synced"
        return dict(self.magento.client.get(f"/V1/orders/{order['entity_id']}")), booked

    def refund(self, order: dict[str, Any], lines: dict[str, int], **arguments: Any) -> dict[str, Any]:
        """An offline Magento credit memo of ``lines`` (sku -> qty) of the order's invoice."""
        items = [
            {"order_item_id": it["item_id"], "qty": lines[it["sku"]]} for it in order["items"] if it["sku"] in lines
        ]
        invoices = self.magento.client.get("/V1/invoices", params={"searchCriteria[pageSize]": "50"})["items"]
        [invoice] = [i for i in invoices if i["order_id"] == order["entity_id"]]
        memo_id = self.magento.client.post(
            f"/V1/invoice/{invoice['entity_id']}/refund", {"items": items, "arguments": arguments}
        )
        return dict(self.magento.client.get(f"/V1/creditmemo/{memo_id}"))

    def sync(self, memo: dict[str, Any]) -> Any:
        return self.credit_memos.sync(ChangeNotice(source="magento", entity="creditmemo", id=str(memo["entity_id"])))

    def requests(self) -> list[dict[str, Any]]:
        return list(self.s4.sim.credit_memo_requests.values())


@pytest.fixture
def s4(bindings_table: str) -> Credits:
    return Credits(bindings_table)


def test_a_refund_is_one_credit_memo_request_on_the_order_items_priced_as_ordered(s4: Credits) -> None:
    order, booked = s4.billed()
    memo = s4.refund(order, {"24-MB01": 1}, shipping_amount=0)
    result = s4.sync(memo)
    assert result.outcome == "synced", result.message
    assert "no refund made" in result.message  # FI pays credits out: nothing to call
    [request] = s4.requests()
    assert (request["PurchaseOrderByCustomer"], request["AssignmentReference"]) == (memo["increment_id"],) * 2
    assert (request["ReferenceSDDocument"], request["SoldToParty"], request["CreditMemoRequestType"]) == (
        booked["SalesOrder"],
        "WEBSHOP",
        "CR",
    )
    [item] = request["to_Item"]
    [ordered] = [i for i in booked["to_Item"] if i["Material"] == "24-MB01"]
    assert (item["Material"], D(item["RequestedQuantity"]), item["ReferenceSDDocumentItem"]) == (
        "24-MB01",
        D(1),
        ordered["SalesOrderItem"],
    )
    net = D(str(memo["grand_total"])) - D(str(memo["tax_amount"]))
    [price] = [c for c in ordered["to_PricingElement"] if c["ConditionType"] == "PR00"]
    assert D(request["TotalNetAmount"]) == net == D(price["ConditionRateValue"])  # not the order's freight
    assert result.target_id == request["CreditMemoRequest"]
    assert s4.sync(memo).outcome == "skipped" and len(s4.requests()) == 1


def test_a_lost_answer_is_found_again_by_the_store_number_never_made_twice(s4: Credits) -> None:
    order, _ = s4.billed()
    memo = s4.refund(order, {"24-MB01": 2}, shipping_amount=0)
    s4.s4.client.token(CMR)
    s4.s4.http.post("/_sim/faults", json={"lost_response_paths": {".*/A_CreditMemoRequest$": 1.0}})
    with pytest.raises(RetryableError) as lost:
        s4.sync(memo)
    assert may_have_been_applied(lost.value) and len(s4.requests()) == 1  # applied, its answer lost
    s4.s4.http.delete("/_sim/faults")
    result = s4.sync(memo)
    assert result.outcome == "synced" and "found" in result.message, result.message
    assert len(s4.requests()) == 1


def test_a_shipping_refund_shows_as_a_logged_difference(s4: Credits, caplog: pytest.LogCaptureFixture) -> None:
    order, _ = s4.billed()
    memo = s4.refund(order, {"24-MB01": 1}, shipping_amount=5)
    with caplog.at_level(logging.WARNING, logger="erpsync.systems.sap_s4.adapter"):
        assert s4.sync(memo).outcome == "synced"
    [request] = s4.requests()
    assert D(request["TotalNetAmount"]) == D(str(memo["grand_total"])) - D(str(memo["tax_amount"])) - 5
    assert "difference -5.00: shipping refunds and adjustments have no item" in caplog.text


def test_a_billing_block_is_lifted_on_release(bindings_table: str) -> None:
    s4 = Credits(bindings_table)
    s4.s4.http.post("/_sim/config", json={"credit_memo_billing_block": "08"})
    order, _ = s4.billed()
    result = s4.sync(s4.refund(order, {"24-WG084": 1}, shipping_amount=0))
    assert result.outcome == "synced" and "released" in result.message, result.message
    [request] = s4.requests()
    assert request["HeaderBillingBlockReason"] == ""
    patches = [r for r in s4.s4.log("PATCH") if "A_CreditMemoRequest" in r["path"]]
    assert len(patches) == 1


def test_the_sim_credits_no_more_than_an_order_item_holds_and_takes_no_item_prices(s4: Credits) -> None:
    _, booked = s4.billed()
    [ordered] = [i for i in booked["to_Item"] if i["Material"] == "24-MB01"]
    body = {
        "CreditMemoRequestType": "CR",
        "SalesOrganization": "1710",
        "DistributionChannel": "10",
        "OrganizationDivision": "00",
        "SoldToParty": "WEBSHOP",
        "ReferenceSDDocument": booked["SalesOrder"],
        "to_Item": {
            "results": [
                {
                    "Material": "24-MB01",
                    "RequestedQuantity": str(D(ordered["RequestedQuantity"]) + 1),
                    "ReferenceSDDocumentItem": ordered["SalesOrderItem"],
                }
            ]
        },
    }
    with pytest.raises(Refused, match=r"has only 2\.000 left to credit"):
        s4.s4.client.create(CMR, "A_CreditMemoRequest", body)
    priced = {
        **body,
        "to_Item": {"results": [{"Material": "24-MB01", "RequestedQuantity": "1", "to_PricingElement": []}]},
    }
    with pytest.raises(Refused, match="not insertable"):
        s4.s4.client.create(CMR, "A_CreditMemoRequest", priced)
    with pytest.raises(Refused, match="TotalNetAmount"):
        s4.s4.client.create(CMR, "A_CreditMemoRequest", {**body, "TotalNetAmount": "1.00"})
    assert s4.requests() == []


# -- credit memos billed in S/4 back to the store ----------------------------------------------------


def bill_request(s4: Credits, number: str) -> str:
    """The billing clerk's VF01 for a credit memo request (the sim's door: not an API)."""
    made = s4.s4.http.post("/_sim/billing", json={"credit_memo_request": number})
    assert made.status_code == 201, made.text
    return str(made.json()["d"]["BillingDocument"])


def sync_back(s4: Credits, billing: str) -> Any:
    rules = ErpCreditMemoRules(s4.ctx("erp-credit-memos", "creditmemo", {}))
    return rules.sync(ChangeNotice(source="sap_s4", entity="creditmemo", id=billing))


def test_a_credit_memo_billed_in_s4_becomes_one_magento_credit_memo_of_its_total(s4: Credits) -> None:
    order, booked = s4.billed()
    [ordered] = [i for i in booked["to_Item"] if i["Material"] == "24-WG084"]
    request = s4.s4.client.create(  # the accountant's request, with reference to the order, as a clerk makes it
        CMR,
        "A_CreditMemoRequest",
        {
            "CreditMemoRequestType": "CR",
            "SalesOrganization": "1710",
            "DistributionChannel": "10",
            "OrganizationDivision": "00",
            "SoldToParty": "WEBSHOP",
            "PurchaseOrderByCustomer": booked["PurchaseOrderByCustomer"],
            "ReferenceSDDocument": booked["SalesOrder"],
            "to_Item": {
                "results": [
                    {
                        "Material": "24-WG084",
                        "RequestedQuantity": "1",
                        "ReferenceSDDocumentItem": ordered["SalesOrderItem"],
                    }
                ]
            },
        },
    ).entity
    since = s4.s4.sim.now().replace(microsecond=0)
    billing = bill_request(s4, request["CreditMemoRequest"])
    notices = [n for p in s4.s4.system.port("creditmemo", "source").changes(since) for n in p.notices]
    assert [n.id for n in notices] == [billing]  # the credit memo alone: the poll reads category O only
    note = s4.s4.system.port("creditmemo", "source").get(billing)
    assert (note.customer_order, note.external_ref, note.released) == (order["increment_id"], "", True)
    assert [(ln.order_key, ln.line_nbr, ln.qty) for ln in note.lines] == [
        (booked["SalesOrder"], ordered["SalesOrderItem"], D(1))
    ]
    result = sync_back(s4, billing)
    assert result.outcome == "synced", result.message
    memos = s4.magento.client.get("/V1/creditmemos", params={"searchCriteria[pageSize]": "50"})["items"]
    [memo] = [m for m in memos if m["order_id"] == order["entity_id"]]
    assert D(str(memo["grand_total"])) == note.total
    assert sync_back(s4, billing).outcome == "skipped"
    # and the invoices flow sees the credit memo for what it is: no store invoice
    invoice = s4.s4.system.port("invoice", "source").get(billing)
    assert not invoice.released and "category O" in invoice.status


def test_a_credit_memo_billed_from_erpsyncs_own_request_never_goes_back(s4: Credits) -> None:
    order, _ = s4.billed()
    assert s4.sync(s4.refund(order, {"24-MB01": 1}, shipping_amount=0)).outcome == "synced"
    [request] = s4.requests()
    billing = bill_request(s4, request["CreditMemoRequest"])
    result = sync_back(s4, billing)
    assert result.outcome == "filtered" and "it was made from the store's" in result.message, result.message
    memos = s4.magento.client.get("/V1/creditmemos", params={"searchCriteria[pageSize]": "50"})["items"]
    assert len([m for m in memos if m["order_id"] == order["entity_id"]]) == 1  # the store's own, no second
