"""Estimates turned into invoices ("sync twice"), Magento -> QuickBooks Online through the flows, on
the sims in-process and the bindings in moto.

With ``documents: estimate`` (or an order rule's ``document: estimate``) an order the store has not
fulfilled becomes a QuickBooks estimate, to the cent as the invoice would be; once the store has
shipped and invoiced it (Magento's ``complete``) the next sync of the order makes the invoice whose
``LinkedTxn`` names the estimate, and the sim closes the estimate as QuickBooks does. Its payment
waits for the invoice. Nothing is made twice: running again, or a lost answer on the invoice. Every
document is checked against Intuit's XSDs; the shipment body is the Magento tutorial's
(tests/fixtures/magento/shipment_create_payload.json).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from erpsync.errors import RetryableError, ValidationFailed
from erpsync.flows.cancellations import CancellationRules
from erpsync.flows.orders import OrderRules
from erpsync.flows.payments import PaymentRules
from erpsync.settings import Settings
from erpsync.systems.quickbooks.adapter import QuickBooksSystem
from erpsync.systems.quickbooks.settings import QuickBooksSettings
from sandbox.sims import magento_orders as mo
from sandbox.sims import quickbooks as qbo_sim
from tests.integration.test_quickbooks_flows import Books
from tests.support.qbo_schema import validate_response

D = Decimal
V3 = f"/v3/company/{qbo_sim.REALM}"
H = {"Authorization": f"Bearer {qbo_sim.ACCESS_TOKEN}", "Accept": "application/json"}
SHIPMENT = json.loads(
    (Path(__file__).parent.parent / "fixtures" / "magento" / "shipment_create_payload.json").read_text()
)


class Twice(Books):
    """Magento and QuickBooks with the connection's ``documents`` as given."""

    def __init__(self, table: str, documents: str = "estimate", settings: Settings | None = None) -> None:
        super().__init__(table, "magento")
        self.settings = settings or self.settings
        self.quickbooks = QuickBooksSystem(self.qclient, "quickbooks", lambda: QuickBooksSettings(documents=documents))
        customers = {("customer", "target"): self.quickbooks.port("customer", "target")}
        self.orders = OrderRules(self._ctx("orders", "order", customers))
        self.payments = PaymentRules(self._ctx("payments", "payment", {}))
        self.cancellations = CancellationRules(self._ctx("cancellations", "cancellation", {}))

    def pending_order(self, method: str = "checkmo") -> dict[str, Any]:
        return self.magento_order(
            coupon=mo.Coupon("TENOFF", "percent", "10"), shipping_amount=10, tax_rate="8.25", payment_method=method
        )

    def capture(self, order: dict[str, Any]) -> None:
        self.store.client.post(f"/V1/order/{order['entity_id']}/invoice", {"capture": True})

    def ship(self, order: dict[str, Any]) -> dict[str, Any]:
        """Ship every line with the tutorial's shipment (its tracks, our order's items): complete once invoiced."""
        items = [
            {"order_item_id": i["item_id"], "qty": i["qty_ordered"]}
            for i in order["items"]
            if not i.get("parent_item_id")
        ]
        self.store.client.post(f"/V1/order/{order['entity_id']}/ship", {**SHIPMENT, "items": items})
        return self.read(order)

    def read(self, order: dict[str, Any]) -> dict[str, Any]:
        return dict(self.store.client.get(f"/V1/orders/{order['entity_id']}"))

    def fulfil(self, order: dict[str, Any]) -> dict[str, Any]:
        self.capture(order)
        done = self.ship(order)
        assert done["state"] == "complete"
        return done

    def run(self, rules: Any, order: dict[str, Any]) -> Any:
        return self.sync(rules, str(order["entity_id"]))

    def requests(self) -> list[tuple[str, str]]:
        rows = self.qhttp.get("/_sim/requests").json()["requests"]
        return [(r["method"], r["path"].rsplit("/", 1)[-1]) for r in rows]

    def one(self, kind: str, number: str) -> dict[str, Any]:
        [doc] = [d for d in self.documents(kind) if d["DocNumber"] == number]
        return doc


@contextmanager
def answer_lost(http: TestClient, method: str, suffix: str) -> Iterator[list[str]]:
    """The first ``method`` request to a path ending ``suffix`` reaches QuickBooks, is applied there,
    and its answer never comes back (a read timeout)."""
    real = http.request
    lost: list[str] = []

    def request(m: str, url: Any, **kw: Any) -> httpx.Response:
        response = real(m, url, **kw)
        if m.upper() == method and httpx.URL(str(url)).path.endswith(suffix) and not lost:
            lost.append(str(url))
            raise httpx.ReadTimeout("the answer was lost", request=response.request)
        return response

    setattr(http, "request", request)  # an instance attribute over the method, for this block
    try:
        yield lost
    finally:
        setattr(http, "request", real)


def lines(doc: dict[str, Any]) -> list[tuple[str, Any, Any, Any]]:
    """What a document charges, line by line, without its ids."""
    return [
        (
            ln["DetailType"],
            ln["Amount"],
            (ln.get("SalesItemLineDetail") or {}).get("ItemRef"),
            (ln.get("SalesItemLineDetail") or {}).get("Qty"),
        )
        for ln in doc["Line"]
    ]


@pytest.fixture
def twice(bindings_table: str) -> Twice:
    return Twice(bindings_table)


def test_a_pending_order_is_an_estimate_and_once_fulfilled_the_invoice_that_closes_it(twice: Twice) -> None:
    b = twice
    order = b.pending_order()
    number = order["increment_id"]
    made = b.run(b.orders, order)
    assert made.outcome == "synced" and made.target_id == f"Estimate/{number}", made.message
    estimate = b.one("Estimate", number)
    assert D(str(estimate["TotalAmt"])) == D(str(order["base_grand_total"]))
    assert D(str(estimate["TxnTaxDetail"]["TotalTax"])) == D(str(order["base_tax_amount"]))
    kinds = [ln["DetailType"] for ln in estimate["Line"]]
    assert kinds.count("DiscountLineDetail") == 1 and kinds.count("SalesItemLineDetail") == 3  # 2 items + shipping
    assert estimate["TxnStatus"] == "Pending" and "LinkedTxn" not in estimate
    assert b.documents("Invoice") == []

    b.qhttp.delete("/_sim/requests")
    again = b.run(b.orders, order)  # a change of the order that is not its fulfilment: read, nothing written
    assert again.outcome == "skipped" and "stands until the order is fulfilled (status 'pending')" in again.message
    assert b.requests() == []

    b.capture(order)  # paid in Magento, not shipped: the estimate takes no payment
    waits = b.run(b.payments, order)
    assert (
        waits.outcome == "filtered"
        and f"quickbooks Estimate/{number} stands for magento order {number}" in waits.message
    )
    assert b.documents("Payment") == []

    b.ship(order)  # complete: the payment waits for the invoice the orders flow makes
    with pytest.raises(RetryableError) as early:
        b.run(b.payments, order)
    assert early.value.error_type == "waiting_for_order"

    b.qhttp.delete("/_sim/requests")
    final = b.run(b.orders, order)
    assert final.outcome == "synced" and final.target_id == f"Invoice/{number}", final.message
    assert final.message == f"created quickbooks order {number} (Invoice), closing Estimate/{number}"
    assert b.requests() == [("POST", "batch"), ("POST", "invoice")]  # the estimate looked up with the items
    invoice = b.one("Invoice", number)
    estimate = b.one("Estimate", number)
    assert invoice["LinkedTxn"] == [{"TxnId": estimate["Id"], "TxnType": "Estimate"}]
    assert estimate["TxnStatus"] == "Closed" and estimate["LinkedTxn"] == [
        {"TxnId": invoice["Id"], "TxnType": "Invoice"}
    ]
    assert lines(invoice) == lines(estimate)  # the same lines, discount, shipping and tax, to the cent
    assert invoice["TotalAmt"] == estimate["TotalAmt"] and invoice["TxnTaxDetail"] == estimate["TxnTaxDetail"]

    b.qhttp.delete("/_sim/requests")
    settled = b.run(b.orders, order)
    assert settled.outcome == "skipped" and settled.message == "already in quickbooks" and b.requests() == []
    paid = b.run(b.payments, order)
    assert paid.outcome == "synced", paid.message
    [payment] = b.documents("Payment")
    assert payment["Line"][0]["LinkedTxn"] == [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]
    assert D(str(b.one("Invoice", number)["Balance"])) == 0
    assert [len(b.documents(k)) for k in ("Estimate", "Invoice", "Payment")] == [1, 1, 1]


def test_a_lost_answer_on_the_invoice_makes_no_second_invoice(twice: Twice) -> None:
    b = twice
    order = b.pending_order()
    assert b.run(b.orders, order).outcome == "synced"
    b.fulfil(order)
    with answer_lost(b.qhttp, "POST", "/invoice") as lost, pytest.raises(RetryableError, match="timed out"):
        b.run(b.orders, order)
    assert lost and len(b.documents("Invoice")) == 1  # QuickBooks made it; we never heard
    retried = b.run(b.orders, order)
    assert retried.outcome == "synced" and retried.message.startswith("found existing quickbooks order"), (
        retried.message
    )
    assert [len(b.documents(k)) for k in ("Estimate", "Invoice")] == [1, 1]
    assert b.one("Estimate", order["increment_id"])["TxnStatus"] == "Closed"
    assert b.run(b.orders, order).outcome == "skipped"
    assert len(b.documents("Invoice")) == 1


def test_an_order_rule_chooses_the_estimate_and_an_order_fulfilled_before_its_first_sync_is_invoiced_at_once(
    bindings_table: str,
) -> None:
    rules = Settings.model_validate(
        {
            "tax_id": "STORETAX",
            "default_ship_via": "GROUND",
            "order_rules": [
                {
                    "name": "checks are quoted until shipped",
                    "when": [{"field": "payment_method", "op": "eq", "value": "checkmo"}],
                    "then": {"document": "estimate"},
                }
            ],
        }
    )
    b = Twice(bindings_table, documents="auto", settings=rules)
    quoted = b.pending_order()
    assert b.run(b.orders, quoted).target_id == f"Estimate/{quoted['increment_id']}"
    late = b.fulfil(b.pending_order())  # shipped and invoiced before erpsync saw it
    result = b.run(b.orders, late)
    assert result.outcome == "synced" and result.target_id == f"Invoice/{late['increment_id']}", result.message
    assert "LinkedTxn" not in b.one("Invoice", late["increment_id"])
    assert [d["DocNumber"] for d in b.documents("Estimate")] == [quoted["increment_id"]]
    paid = b.magento_order(payment_method="braintree", captured=True)  # no rule: documents auto
    assert b.run(b.orders, paid).target_id == f"SalesReceipt/{paid['increment_id']}"


def test_a_canceled_estimate_order_rejects_the_estimate_once(twice: Twice) -> None:
    b = twice
    order = b.pending_order()
    assert b.run(b.orders, order).outcome == "synced"
    b.store.client.post(f"/V1/orders/{order['entity_id']}/cancel", {})
    canceled = b.run(b.cancellations, order)
    assert canceled.outcome == "synced", canceled.message
    estimate = b.one("Estimate", order["increment_id"])
    assert estimate["TxnStatus"] == "Rejected"
    port = b.quickbooks.port("cancellation", "target")
    assert port.cancel(f"Estimate/{order['increment_id']}") == "Rejected"  # a second cancel writes nothing
    assert b.one("Estimate", order["increment_id"])["SyncToken"] == estimate["SyncToken"]


def test_an_estimate_the_bookkeeper_already_invoiced_is_not_booked_twice(twice: Twice) -> None:
    b = twice
    order = b.pending_order()
    assert b.run(b.orders, order).outcome == "synced"
    estimate = b.one("Estimate", order["increment_id"])
    theirs = {k: estimate[k] for k in ("CustomerRef", "Line", "TxnTaxDetail")}
    theirs["Line"] = [ln for ln in theirs["Line"] if ln["DetailType"] != "SubTotalLineDetail"]
    made = b.qclient.post("/invoice", {**theirs, "LinkedTxn": [{"TxnId": estimate["Id"], "TxnType": "Estimate"}]})
    b.fulfil(order)
    with pytest.raises(
        ValidationFailed, match=rf"estimate {order['increment_id']} is closed by invoice {made['Invoice']['Id']}"
    ):
        b.run(b.orders, order)
    assert [d["Id"] for d in b.documents("Invoice")] == [made["Invoice"]["Id"]]


# -- the sim, checked against Intuit's XSDs -----------------------------------------------------------


def call(qbo: TestClient, method: str, path: str, **kw: Any) -> tuple[int, dict[str, Any]]:
    r = qbo.request(method, f"{V3}{path}", headers=H, **kw)
    body: dict[str, Any] = r.json()
    validate_response(body)
    return r.status_code, body


def test_the_sim_closes_an_open_estimate_an_invoice_links_and_ignores_a_closed_one() -> None:
    qbo = TestClient(qbo_sim.create_app(), base_url="http://qbo")
    seeded = qbo.post(
        "/_sim/seed",
        json={
            "items": [{"Name": "24-MB01", "Sku": "24-MB01"}],
            "customers": [{"DisplayName": "Amy", "PrimaryEmailAddr": {"Address": "amy@example.com"}}],
        },
    ).json()
    customer, item = seeded["customers"][0]["Id"], seeded["items"][0]["Id"]
    line = {
        "DetailType": "SalesItemLineDetail",
        "Amount": 34.0,
        "SalesItemLineDetail": {"ItemRef": {"value": item}, "Qty": 1, "UnitPrice": 34.0},
    }
    body = {"CustomerRef": {"value": customer}, "Line": [line], "DocNumber": "1001"}
    status, made = call(qbo, "POST", "/estimate", json=body)
    assert status == 200 and made["Estimate"]["TxnStatus"] == "Pending"
    estimate = made["Estimate"]
    link = [{"TxnId": estimate["Id"], "TxnType": "Estimate"}]
    _, first = call(qbo, "POST", "/invoice", json={**body, "LinkedTxn": link})
    assert first["Invoice"]["LinkedTxn"] == link
    _, closed = call(qbo, "GET", f"/estimate/{estimate['Id']}")
    assert closed["Estimate"]["TxnStatus"] == "Closed"
    assert closed["Estimate"]["LinkedTxn"] == [{"TxnId": first["Invoice"]["Id"], "TxnType": "Invoice"}]
    assert int(closed["Estimate"]["SyncToken"]) == int(estimate["SyncToken"]) + 1
    _, second = call(qbo, "POST", "/invoice", json={**body, "LinkedTxn": link})
    assert "LinkedTxn" not in second["Invoice"]  # a closed estimate is ignored (Finance.xsd, LinkedTxn.TxnId)
    _, still = call(qbo, "GET", f"/estimate/{estimate['Id']}")
    assert still["Estimate"]["LinkedTxn"] == closed["Estimate"]["LinkedTxn"]
    status, missing = call(
        qbo, "POST", "/invoice", json={**body, "LinkedTxn": [{"TxnId": "999", "TxnType": "Estimate"}]}
    )
    assert (
        status == 400
        and missing["Fault"]["Error"][0]["code"] == "610"
        and "Estimate 999" in missing["Fault"]["Error"][0]["Detail"]
    )
    status, wrong = call(qbo, "POST", "/estimate", json={**body, "TxnStatus": "Open"})
    assert (
        status == 400
        and wrong["Fault"]["Error"][0]["code"] == "2010"
        and wrong["Fault"]["Error"][0]["element"] == "TxnStatus"
    )
