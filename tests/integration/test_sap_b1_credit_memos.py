"""Store refunds -> SAP Business One A/R credit notes through the credit-memos flow, on the in-process
sims: a Magento credit memo of an order B1 invoiced becomes one credit note (``CreditNotes``) whose
lines are based on the B1 invoice's lines (``BaseType`` 13), carrying the store's credit memo number
in ``NumAtCard``, to the cent with the shipping refund, the adjustment and the tax; once, also after
a lost answer; a refund of an order B1 has not invoiced is a credit note of its own lines; no refund
payment is made in B1 (its shape is UNVERIFIED): the credit stays the customer's. A credit note
the B1 accountant enters against the invoice becomes one offline Magento credit memo of B1's total,
and one erpsync made never goes back. And the sim's rules for credit notes based on invoices.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from erpsync.errors import NotFoundError, PermanentError, RetryableError
from erpsync.flows.credit_memos import CreditMemoRules
from erpsync.flows.erp_credit_memos import ErpCreditMemoRules
from erpsync.model import ChangeNotice
from erpsync.settings import Settings
from sandbox.local.stack import local_settings
from tests.integration.test_sap_b1_flows import Pair, bill, invoices_of
from tests.support.sap_b1 import assert_answer

D = Decimal
ADJUST = "ADJUST"
"""The non-stock item the store's adjustments are booked on (``credit_memos.adjustment_item``)."""


class Credits(Pair):
    def __init__(self, table: str, settings: Settings) -> None:
        super().__init__(table, settings)
        self.bhttp.post("/_sim/seed", json={"items": [{"ItemCode": ADJUST, "ItemName": "Refund adjustment"}]})
        self.credit_memos = CreditMemoRules(self.ctx("credit-memos", "creditmemo", {}))
        self.erp_credit_memos = ErpCreditMemoRules(self.ctx("erp-credit-memos", "creditmemo", {}))

    def invoiced_in_b1(self) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """A Magento order booked in B1, delivered, invoiced there and invoiced in Magento by the
        invoices flow: (the Magento order, the B1 order, the B1 invoice)."""
        order = self.place()
        booked = self.book(order)
        delivery = self.clerk.deliver(booked["DocEntry"], "1Z-CM")
        made = self.clerk.invoice(delivery["DocEntry"])
        assert bill(self, str(made["DocEntry"])).outcome == "synced"
        return dict(self.magento.client.get(f"/V1/orders/{order['entity_id']}")), booked, made

    def refund(self, order: dict[str, Any], lines: dict[str, int], **arguments: Any) -> dict[str, Any]:
        """An offline Magento credit memo of ``lines`` (sku -> qty) of the order's invoice."""
        items = [
            {"order_item_id": it["item_id"], "qty": lines.get(it["sku"], 0)}
            for it in order["items"]
            if it["sku"] in lines
        ]
        [invoice] = invoices_of(self, order)
        memo_id = self.magento.client.post(
            f"/V1/invoice/{invoice['entity_id']}/refund", {"items": items, "arguments": arguments}
        )
        return dict(self.magento.client.get(f"/V1/creditmemo/{memo_id}"))

    def sync(self, memo: dict[str, Any]) -> Any:
        return self.credit_memos.sync(ChangeNotice(source="magento", entity="creditmemo", id=str(memo["entity_id"])))

    def writes(self) -> list[str]:
        rows = self.bhttp.get("/_sim/requests").json()["requests"]
        return [f"{r['method']} {r['path'].split('/b1s/v1/', 1)[-1]}" for r in rows if r["method"] != "GET"]

    def notes(self) -> list[dict[str, Any]]:
        return list(self.sim.records["CreditNotes"].values())

    def sync_back(self, entry: Any) -> Any:
        return self.erp_credit_memos.sync(ChangeNotice(source="sap_b1", entity="creditmemo", id=str(entry)))

    def store_memos(self, order: dict[str, Any]) -> list[dict[str, Any]]:
        rows = self.magento.client.get("/V1/creditmemos", params={"searchCriteria[pageSize]": "50"})["items"]
        return [r for r in rows if r["order_id"] == order["entity_id"]]


def settings(**credit_memos: Any) -> Settings:
    doc = local_settings("magento", "sap_b1")
    return Settings(**{**doc, "in_doubt_wait_s": 0, "credit_memos": {"adjustment_item": ADJUST, **credit_memos}})


@pytest.fixture
def b1(bindings_table: str, monkeypatch: pytest.MonkeyPatch) -> Credits:
    monkeypatch.setenv("STORE_SYSTEM", "magento")
    monkeypatch.setenv("ERP_SYSTEM", "sap_b1")
    return Credits(bindings_table, settings())


def test_a_refund_of_an_invoiced_order_is_one_credit_note_based_on_the_invoice_to_the_cent(b1: Credits) -> None:
    order, booked, invoice = b1.invoiced_in_b1()
    memo = b1.refund(order, {"24-MB01": 1}, shipping_amount=5, adjustment_positive=2, adjustment_negative=0.5)
    b1.bhttp.delete("/_sim/requests")
    result = b1.sync(memo)
    assert result.outcome == "synced", result.message
    assert b1.writes() == ["POST CreditNotes"]  # released when added, no refund payment
    [note] = b1.notes()
    assert_answer("CreditNotes", b1.clerk.request("GET", f"CreditNotes({note['DocEntry']})"))
    assert (note["NumAtCard"], note["CardCode"]) == (memo["increment_id"], booked["CardCode"])
    assert D(str(note["DocTotal"])) == D(str(memo["base_grand_total"]))  # to the cent, everything included
    bag = next(ln for ln in invoice["DocumentLines"] if ln["ItemCode"] == "24-MB01")
    based, adjustment = note["DocumentLines"]
    assert (based["BaseType"], based["BaseEntry"], based["BaseLine"], based["Quantity"]) == (
        13,
        invoice["DocEntry"],
        bag["LineNum"],
        1,
    )
    assert (adjustment["ItemCode"], adjustment.get("BaseType"), D(str(adjustment["LineTotal"]))) == (
        ADJUST,
        -1,
        D("1.50"),
    )
    expenses = {e["ExpenseCode"]: D(str(e["LineTotal"])) for e in note["DocumentAdditionalExpenses"]}
    assert expenses == {1: D("5.00"), 2: D(str(memo["base_tax_amount"]))}  # shipping and the store's tax
    line = b1.sim.records["Invoices"][invoice["DocEntry"]]["DocumentLines"][bag["LineNum"]]
    assert line["RemainingOpenQuantity"] == bag["Quantity"] - 1  # one bag credited
    assert result.target_id == str(note["DocEntry"])
    assert f"kept as the customer's credit ({memo['base_grand_total']:.2f} on credit note" in result.message
    b1.bhttp.delete("/_sim/requests")
    again = b1.sync(memo)
    assert again.outcome == "skipped" and b1.writes() == []
    found = b1.sap.port("creditmemo", "target").find(memo["increment_id"], booked["CardCode"])
    assert found is not None and (found.number, found.released) == (str(note["DocEntry"]), True)


def test_a_lost_answer_on_the_credit_note_makes_no_second_one(b1: Credits) -> None:
    order, _booked, _invoice = b1.invoiced_in_b1()
    memo = b1.refund(order, {"24-WG084": 1}, shipping_amount=0)
    b1.bhttp.post("/_sim/faults", json={"lost_response_rate": 1.0})
    with pytest.raises(RetryableError):
        b1.sync(memo)
    b1.bhttp.delete("/_sim/faults")
    assert len(b1.notes()) == 1  # applied, its answer lost
    b1.bhttp.delete("/_sim/requests")
    result = b1.sync(memo)
    assert result.outcome == "synced" and result.message.startswith("found sap_b1 credit memo"), result.message
    assert b1.writes() == [] and len(b1.notes()) == 1
    assert D(str(b1.notes()[0]["DocTotal"])) == D(str(memo["base_grand_total"]))


def test_a_refund_of_an_order_b1_has_not_invoiced_is_a_credit_note_of_its_own_lines(b1: Credits) -> None:
    order = b1.place()
    booked = b1.book(order)
    items = [{"order_item_id": it["item_id"], "qty": it["qty_ordered"]} for it in order["items"]]
    b1.magento.client.post(f"/V1/order/{order['entity_id']}/invoice", {"capture": True, "items": items})
    order = dict(b1.magento.client.get(f"/V1/orders/{order['entity_id']}"))
    memo = b1.refund(order, {"24-MB01": 2, "24-WG084": 1})
    result = b1.sync(memo)
    assert result.outcome == "synced", result.message
    [note] = b1.notes()
    assert D(str(note["DocTotal"])) == D(str(memo["base_grand_total"]))
    assert [(ln["ItemCode"], ln["Quantity"], ln.get("BaseType")) for ln in note["DocumentLines"]] == [
        ("24-MB01", 2, -1),
        ("24-WG084", 1, -1),
    ]
    order_lines = {ln["FreeText"] for ln in booked["DocumentLines"]}
    assert {ln["FreeText"] for ln in note["DocumentLines"]} == order_lines  # the store's line ids


def test_a_credit_note_b1_refuses_or_of_an_order_it_cancelled_fails_naming_why(b1: Credits) -> None:
    order, booked, _invoice = b1.invoiced_in_b1()
    del b1.sim.records["Items"][ADJUST]  # the adjustment item is not in B1
    memo = b1.refund(order, {"24-MB01": 1}, adjustment_positive=2)
    with pytest.raises(PermanentError, match=r"No matching records found .* \(SAP code -2028\)"):
        b1.sync(memo)
    assert b1.notes() == []
    b1.sim.records["Orders"][booked["DocEntry"]]["Cancelled"] = "tYES"  # cancelled in B1 meanwhile
    with pytest.raises(NotFoundError, match=f"has no live order {order['increment_id']}"):
        b1.sync(memo)
    assert b1.notes() == []


def test_the_sim_credits_no_more_than_an_invoice_line_holds(b1: Credits) -> None:
    _order, _booked, invoice = b1.invoiced_in_b1()
    first = invoice["DocumentLines"][0]
    made = b1.clerk.credit(invoice["DocEntry"], {first["LineNum"]: 1}, NumAtCard="CM-1")
    assert [(ln["BaseType"], ln["BaseLine"], ln["Quantity"], ln["ItemCode"]) for ln in made["DocumentLines"]] == [
        (13, first["LineNum"], 1, first["ItemCode"])
    ]
    assert made["DocumentLines"][0]["UnitPrice"] == first["UnitPrice"]  # taken from the invoice line
    left = first["Quantity"] - 1
    with pytest.raises(RuntimeError, match=f"Quantity {left + 1:g} is more than the {left:g} open on Invoices"):
        b1.clerk.credit(invoice["DocEntry"], {first["LineNum"]: left + 1})
    rest = b1.clerk.credit(invoice["DocEntry"])  # everything still open
    assert (
        sum(ln["Quantity"] for ln in rest["DocumentLines"])
        == sum(ln["Quantity"] for ln in invoice["DocumentLines"]) - 1
    )
    assert b1.sim.records["Invoices"][invoice["DocEntry"]]["DocumentStatus"] == "bost_Close"
    with pytest.raises(RuntimeError, match="Base document line is closed"):
        b1.clerk.credit(invoice["DocEntry"], {first["LineNum"]: 1})


# -- B1 -> Magento -------------------------------------------------------------------------------------


def test_a_credit_note_entered_in_b1_becomes_one_magento_credit_memo_of_its_total(b1: Credits) -> None:
    since = datetime.now(UTC).replace(microsecond=0)
    order, booked, invoice = b1.invoiced_in_b1()
    bag = next(ln for ln in invoice["DocumentLines"] if ln["ItemCode"] == "24-MB01")
    made = b1.clerk.credit(invoice["DocEntry"], {bag["LineNum"]: 1})  # the accountant credits one bag
    notices = [n for page in b1.sap.port("creditmemo", "source").changes(since) for n in page.notices]
    assert str(made["DocEntry"]) in {n.id for n in notices if n.entity == "creditmemo"}
    note = b1.sap.port("creditmemo", "source").get(str(made["DocEntry"]))
    ordered = next(ln for ln in booked["DocumentLines"] if ln["ItemCode"] == "24-MB01")
    assert bag["BaseType"] == 15  # the invoice of a delivery: traced through the delivery to the order line
    assert [(ln.order_key, ln.line_nbr, ln.qty, ln.amount) for ln in note.lines] == [
        (f"Orders/{booked['DocEntry']}", str(ordered["LineNum"]), D(1), D(str(made["DocumentLines"][0]["LineTotal"])))
    ]
    assert (note.released, note.external_ref, note.total) == (True, "", D(str(made["DocTotal"])))
    result = b1.sync_back(made["DocEntry"])
    assert result.outcome == "synced", result.message
    [memo] = b1.store_memos(order)
    assert D(str(memo["grand_total"])) == D(str(made["DocTotal"]))  # B1's amount to the cent
    assert [(i["sku"], D(str(i["qty"]))) for i in memo["items"] if D(str(i["qty"])) > 0] == [("24-MB01", D(1))]
    assert b1.sim.records["CreditNotes"][made["DocEntry"]]["NumAtCard"] == order["increment_id"]  # marked
    assert b1.sync_back(made["DocEntry"]).outcome == "skipped"
    echo = b1.sync(memo)  # the store credit memo erpsync made never goes back to B1
    assert echo.outcome == "filtered" and len(b1.notes()) == 1, echo.message


def test_a_credit_note_erpsync_made_never_goes_back(b1: Credits) -> None:
    order, _booked, _invoice = b1.invoiced_in_b1()
    memo = b1.refund(order, {"24-WG084": 1})
    assert b1.sync(memo).outcome == "synced"
    [note] = b1.notes()
    assert note["Reference2"] == memo["increment_id"]
    back = b1.sync_back(note["DocEntry"])
    assert back.outcome == "filtered" and memo["increment_id"] in back.message, back.message
    assert len(b1.store_memos(order)) == 1
