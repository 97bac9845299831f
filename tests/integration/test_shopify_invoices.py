"""Invoices paid in the ERP mark their Shopify orders paid (Shopify <- QuickBooks Online), on the
sims in-process and the bindings in moto.

- An unpaid Shopify order booked as a QuickBooks invoice, paid in full by the bookkeeper in
  QuickBooks (a payment received against it through the API), is marked paid in Shopify by the
  invoices flow: one ``orderMarkAsPaid`` (counted in the sim's ``/_sim/costs``; three requests with
  the look-up and the check of the order), one manual sale of the outstanding amount; a re-run
  asks Shopify nothing; a lost answer on the mutation is found paid, not marked twice.
- A partly paid invoice waits; an order cancelled in Shopify, one partly paid or partly refunded
  there, or one whose outstanding amount is not the invoice's is refused naming why; an order
  already paid in Shopify is bound without a write.
- Every route of Shopify with an ERP that has invoices runs the invoices flow (``*`` included).
- The target on its own: an Acumatica invoice still ``Open`` (owed) is refused, so is one of
  another amount or currency, or for an order Shopify does not have; a ``Closed`` one marks the
  order paid (its records shaped from Acumatica's recorded direct sales invoice).
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from erpsync.errors import NotFoundError, PermanentError, RetryableError, ValidationFailed
from erpsync.flows import catalog
from erpsync.flows.documents import InvoiceRules
from erpsync.flows.sync import FlowContext
from erpsync.model import ChangeNotice
from erpsync.runtime.lambda_app import check_routes
from erpsync.settings import Settings
from erpsync.systems.acumatica import mapping as acumatica
from sandbox.shopify_merchant import Cart
from sandbox.sims.control import ResponseDropped
from tests.integration.test_quickbooks_flows import Books

D = Decimal
ACUMATICA = Path(__file__).parent.parent / "fixtures" / "acumatica"


class Till(Books):
    """Shopify and QuickBooks with the invoices flow back to the store."""

    def __init__(self, table: str) -> None:
        super().__init__(table, "shopify")
        self.source = self.quickbooks.port("invoice", "source")
        self.target = self.store.port("invoice", "target")
        self.invoices = InvoiceRules(
            FlowContext(
                spec=catalog.get("invoices"),
                source="quickbooks",
                target="shopify",
                source_port=self.source,
                target_port=self.target,
                bindings=self.bindings,
                settings=self.settings,
            )
        )

    def unpaid_order(self, *lines: tuple[str, int]) -> dict[str, Any]:
        cart = Cart(
            list(lines or [("24-MB01", 2)]), shipping=D("7.50"), tax_rate=D("0.06"), paid=False, gateway="manual"
        )
        placed = self.merchant.place("roni_cost@example.com", cart)
        assert self.sync(self.orders, placed["legacyResourceId"]).outcome == "synced"
        return placed

    def invoice_of(self, placed: dict[str, Any]) -> dict[str, Any]:
        [invoice] = [d for d in self.documents("Invoice") if d["DocNumber"] == placed["name"]]
        return invoice

    def receive_payment(self, invoice: dict[str, Any], amount: Any = None) -> None:
        """The bookkeeper receives a payment against ``invoice`` in QuickBooks (through its API)."""
        total = invoice["TotalAmt"] if amount is None else amount
        self.qclient.post(
            "/payment",
            {
                "CustomerRef": invoice["CustomerRef"],
                "TotalAmt": total,
                "Line": [{"Amount": total, "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}],
                "PaymentRefNum": "CHK-2001",
            },
        )

    def ring(self, invoice: dict[str, Any]) -> Any:
        return self.invoices.sync(ChangeNotice(source="quickbooks", entity="invoice", id=invoice["Id"]))

    def operations(self) -> list[str]:
        return [str(q["operation"]) for q in self.shttp.get("/_sim/costs").json()["queries"]]

    def shop_order(self, placed: dict[str, Any]) -> dict[str, Any]:
        return self.merchant.order(placed["id"])

    def manual_sales(self, placed: dict[str, Any]) -> list[dict[str, Any]]:
        found = self.merchant.graphql(
            "query($id: ID!) { order(id: $id) { transactions(first: 20) "
            "{ kind status gateway amountSet { shopMoney { amount } } } } }",
            {"id": placed["id"]},
        )["order"]["transactions"]
        return [t for t in found if t["kind"] == "SALE" and t["gateway"] == "manual" and t["status"] == "SUCCESS"]


@pytest.fixture
def till(bindings_table: str) -> Till:
    return Till(bindings_table)


def test_an_invoice_the_bookkeeper_gets_paid_marks_the_shopify_order_paid_once(till: Till) -> None:
    b = till
    placed = b.unpaid_order()
    invoice = b.invoice_of(placed)
    unpaid = b.ring(invoice)
    assert unpaid.outcome == "filtered" and "not paid in full (balance 80.03 of 80.03)" in unpaid.message
    assert b.shop_order(placed)["displayFinancialStatus"] == "PENDING"

    b.receive_payment(invoice)
    [notice] = [n for page in b.source.changes(datetime.now(UTC) - timedelta(hours=1)) for n in page.notices]
    assert notice.id == invoice["Id"]
    asked = len(b.operations())
    result = b.invoices.sync(notice)
    assert result.outcome == "synced", result.message
    assert b.operations()[asked:] == ["PaymentState", "PaymentState", "MarkPaid"]  # look-up, check, mark
    after = b.shop_order(placed)
    assert after["displayFinancialStatus"] == "PAID"
    assert D(after["totalReceivedSet"]["shopMoney"]["amount"]) == D(placed["totalPriceSet"]["shopMoney"]["amount"])
    [sale] = b.manual_sales(placed)
    assert D(sale["amountSet"]["shopMoney"]["amount"]) == D("80.03")  # 68 + 7.50 shipping + 4.53 tax, to the cent
    assert b.operations().count("MarkPaid") == 1

    asked = len(b.operations())
    again = b.invoices.sync(notice)
    assert again.outcome == "skipped", again.message
    assert len(b.operations()) == asked  # settled from the binding: Shopify not even asked
    assert len(b.manual_sales(placed)) == 1


def test_a_mark_paid_whose_answer_was_lost_is_found_paid_not_marked_twice(till: Till) -> None:
    b = till
    placed = b.unpaid_order()
    invoice = b.invoice_of(placed)
    b.receive_payment(invoice)
    state = b.shttp.app.state.sim  # type: ignore[attr-defined]
    original = state.graphql

    def lose_mark_paid_answers(body: Any) -> Any:
        answer = original(body)
        if "orderMarkAsPaid" in str(body.get("query")):
            raise ResponseDropped()  # applied, then the connection dropped before the answer
        return answer

    state.graphql = lose_mark_paid_answers
    with pytest.raises(RetryableError, match="transport error"):
        b.ring(invoice)
    state.graphql = original
    assert b.shop_order(placed)["displayFinancialStatus"] == "PAID"  # it was applied
    retried = b.ring(invoice)
    assert retried.outcome == "skipped", retried.message  # found paid: nothing written
    assert b.operations().count("MarkPaid") == 1 and len(b.manual_sales(placed)) == 1


def test_a_partly_paid_invoice_waits_and_the_rest_marks_the_order_paid(till: Till) -> None:
    b = till
    placed = b.unpaid_order()
    invoice = b.invoice_of(placed)
    b.receive_payment(invoice, 50.0)
    first = b.ring(invoice)
    assert first.outcome == "filtered" and "balance 30.03 of 80.03" in first.message
    assert "MarkPaid" not in b.operations()
    b.receive_payment(invoice, 30.03)
    assert b.ring(invoice).outcome == "synced"
    assert b.shop_order(placed)["displayFinancialStatus"] == "PAID"


def test_an_order_cancelled_in_shopify_is_refused_naming_it(till: Till) -> None:
    b = till
    placed = b.unpaid_order()
    invoice = b.invoice_of(placed)
    b.merchant.cancel(placed["id"])
    b.receive_payment(invoice)
    with pytest.raises(PermanentError, match=rf"shopify order {placed['name']} is cancelled \(PENDING\)"):
        b.ring(invoice)
    assert "MarkPaid" not in b.operations() and b.manual_sales(placed) == []


def test_an_order_part_paid_at_checkout_is_refused_naming_its_status(till: Till) -> None:
    b = till
    original = b.merchant.graphql

    def deposit_only(query: str, variables: Any = None) -> Any:
        if "orderCreate" in query:  # the shopper paid a 20.00 deposit at checkout
            variables = copy.deepcopy(variables)
            variables["order"]["transactions"] = [
                {
                    "kind": "SALE",
                    "status": "SUCCESS",
                    "gateway": "manual",
                    "amountSet": {"shopMoney": {"amount": "20.00", "currencyCode": "USD"}},
                }
            ]
        return original(query, variables)

    b.merchant.graphql = deposit_only  # type: ignore[method-assign]
    placed = b.unpaid_order()
    b.merchant.graphql = original  # type: ignore[method-assign]
    invoice = b.invoice_of(placed)  # not captured in full: an invoice
    b.receive_payment(invoice)
    with pytest.raises(PermanentError, match=rf"order {placed['name']} is PARTIALLY_PAID: only an unpaid order"):
        b.ring(invoice)
    assert "MarkPaid" not in b.operations()


def test_an_order_already_paid_in_shopify_is_bound_without_a_write(till: Till) -> None:
    b = till
    placed = b.unpaid_order()
    invoice = b.invoice_of(placed)
    b.merchant.mark_paid(placed["id"])  # paid at the counter, and the bookkeeper got paid too
    b.receive_payment(invoice)
    result = b.ring(invoice)
    assert result.outcome == "skipped", result.message
    assert "MarkPaid" not in b.operations() and len(b.manual_sales(placed)) == 1  # the merchant's own
    binding = b.bindings.get("invoice", "quickbooks", f"{invoice['Id']}@{placed['legacyResourceId']}", "shopify")
    assert binding is not None and binding.other_id == placed["legacyResourceId"]


def acumatica_invoice(status: str, amount: str, currency: str = "USD") -> Any:
    """Acumatica's recorded direct sales invoice as its invoice source reads it back, released."""
    recorded = json.loads((ACUMATICA / "request_salesinvoice_direct.json").read_text())["request"]["body"]
    record = dict(
        copy.deepcopy(recorded),
        ReferenceNbr={"value": "AR007001"},
        Status={"value": status},
        Amount={"value": float(amount)},
        Currency={"value": currency},
    )
    return acumatica.invoice(record)


def test_the_target_marks_paid_for_a_closed_acumatica_invoice_and_refuses_an_open_one(till: Till) -> None:
    b = till
    placed = b.merchant.place("roni_cost@example.com", Cart([("24-MB01", 1)], paid=False, gateway="manual"))
    order_id = placed["legacyResourceId"]
    owed = acumatica_invoice("Open", "34.00")
    assert owed.released  # the invoices flow lets it through: the target must refuse it
    with pytest.raises(
        PermanentError,
        match=r"invoice AR007001 is Open in the ERP, not a status that says paid in full \(paid, Closed\)",
    ):
        b.target.create(order_id, owed, "AR007001")
    with pytest.raises(ValidationFailed, match=r"invoice AR007001 of 30\.00 is not what .* has outstanding \(34\.00\)"):
        b.target.create(order_id, acumatica_invoice("Closed", "30.00"), "AR007001")
    with pytest.raises(ValidationFailed, match=rf"invoice AR007001 is in EUR, shopify order {placed['name']} in USD"):
        b.target.create(order_id, acumatica_invoice("Closed", "34.00", "EUR"), "AR007001")
    with pytest.raises(NotFoundError, match="shopify order 999999999 does not exist"):
        b.target.create("999999999", acumatica_invoice("Closed", "34.00"), "AR007001")
    assert b.target.find(order_id, "AR007001") is None and "MarkPaid" not in b.operations()
    assert b.target.create(order_id, acumatica_invoice("Closed", "34.00"), "AR007001") == order_id
    assert b.shop_order(placed)["displayFinancialStatus"] == "PAID"
    assert b.target.find(order_id, "AR007001") == order_id


def test_the_invoices_flow_lets_an_invoice_still_owed_wait_instead_of_failing_it(till: Till) -> None:
    """Routes of Shopify with Acumatica run the invoices flow: an invoice still ``Open`` there is
    filtered (nothing on the failures desk), and the same invoice once ``Closed`` goes through."""
    owed, paid = acumatica_invoice("Open", "34.00"), acumatica_invoice("Closed", "34.00")
    skipped = till.invoices.must_skip(owed)
    assert skipped is not None and skipped.outcome == "filtered"
    assert "invoice AR007001 is Open in the ERP: a Shopify order is marked paid only on an invoice paid in full" in (
        skipped.message
    )
    assert till.invoices.must_skip(paid) is None


def test_a_partly_refunded_order_is_refused_naming_its_status(till: Till) -> None:
    b = till
    placed = b.merchant.place("roni_cost@example.com", Cart([("24-MB01", 2)]))  # paid at checkout
    b.merchant.refund(placed["id"], [("24-MB01", 1)])
    with pytest.raises(PermanentError, match=rf"order {placed['name']} is PARTIALLY_REFUNDED"):
        b.target.create(placed["legacyResourceId"], acumatica_invoice("Closed", "34.00"), "AR007001")
    assert b.target.find(placed["legacyResourceId"], "AR007001") is None


def test_every_route_of_shopify_runs_the_invoices_flow_from_an_erp_with_invoices() -> None:
    connections = {
        "quickbooks": {"kind": "quickbooks", "role": "erp", "secret": "erpsync/quickbooks"},
        "acumatica": {"kind": "acumatica", "role": "erp", "secret": "erpsync/acumatica"},
        "shopify": {"kind": "shopify", "role": "store", "secret": "erpsync/shopify"},
    }
    routes = [
        {"store": "shopify", "erp": "quickbooks", "flows": ["*"]},
        {"store": "shopify", "erp": "acumatica", "flows": ["*"]},
        {"store": "shopify", "erp": "quickbooks", "flows": ["invoices"]},
    ]
    settings = Settings.model_validate({"connections": connections, "routes": routes})
    lanes = [(s, t) for s, t, _ in check_routes(catalog.get("invoices"), settings)]
    assert lanes == [("quickbooks", "shopify"), ("acumatica", "shopify"), ("quickbooks", "shopify")]
