"""Payments of paid Magento orders in SAP Business One, on the in-process sims: the payments flow
books what Magento captured as B1 books a paid web order, an A/R down payment invoice based on the
B1 order and an incoming payment applied to it, once, also after a lost answer on either create;
and the sim's own rules for applying a payment to a down payment.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from erpsync.errors import MappingMissing, RetryableError
from erpsync.flows.base import SyncResult
from erpsync.flows.payments import PaymentRules
from erpsync.model import ChangeNotice
from erpsync.settings import Settings
from erpsync.systems.sap_b1 import mapping
from erpsync.systems.sap_b1.settings import SapB1Settings
from sandbox.local.stack import local_settings
from sandbox.sims import magento_orders as mo
from tests.integration.test_sap_b1_flows import Pair
from tests.support.sap_b1 import assert_answer, assert_error_v1

D = Decimal
TRANSFER_ACCOUNT = "_SYS00000000002"
"""The G/L account of SAP's own ``POST IncomingPayments`` example."""


def deployment(**b1: Any) -> Settings:
    """The local stack's settings for Magento and B1, the transfer account set, no wait after a lost
    answer (the flow would otherwise wait ``in_doubt_wait_s`` before it creates again)."""
    doc = local_settings("magento", "sap_b1")
    doc["connections"]["sap_b1"]["settings"].update({"transfer_account": TRANSFER_ACCOUNT, **b1})
    return Settings(**{**doc, "in_doubt_wait_s": 0})


class Payments(Pair):
    def __init__(self, table: str, settings: Settings) -> None:
        super().__init__(table, settings)
        self.payments = PaymentRules(self.ctx("payments", "payment", {}))

    def paid_order(self, **options: Any) -> dict[str, Any]:
        """A Magento order paid at checkout (a captured gateway payment)."""
        order = mo.build_order(
            self.catalog,
            [mo.CartLine("24-MB01", 2), mo.CartLine("24-WG084", 1)],
            customer=self.customer,
            tax_rate="0.0825",
            **{"payment_method": "braintree", "captured": True, **options},
        )
        [saved] = self.mhttp.post("/_sim/seed", json={"orders": [order]}).json()["orders"]
        return dict(self.magento.client.get(f"/V1/orders/{saved['entity_id']}"))

    def pay(self, order: dict[str, Any]) -> SyncResult:
        return self.payments.sync(ChangeNotice(source="magento", entity="payment", id=str(order["entity_id"])))

    def writes(self) -> list[str]:
        rows = self.bhttp.get("/_sim/requests").json()["requests"]
        return [f"{r['method']} {r['path'].rsplit('/', 1)[-1]}" for r in rows if r["method"] != "GET"]

    def call(self, method: str, path: str, json: Any = None) -> Any:
        """A clerk's request to the Service Layer, answered as it is (errors too)."""
        r = self.clerk.http.request(method, f"/b1s/v1/{path}", json=json)
        if r.status_code == 401:
            self.clerk.sign_in()
            r = self.clerk.http.request(method, f"/b1s/v1/{path}", json=json)
        return r

    def records(self, entity_set: str) -> list[dict[str, Any]]:
        return list(self.sim.records[entity_set].values())


@pytest.fixture
def b1(bindings_table: str, monkeypatch: pytest.MonkeyPatch) -> Payments:
    monkeypatch.setenv("STORE_SYSTEM", "magento")
    monkeypatch.setenv("ERP_SYSTEM", "sap_b1")
    return Payments(bindings_table, deployment())


def test_a_paid_order_becomes_a_down_payment_and_a_payment_applied_to_it_once(b1: Payments) -> None:
    order = b1.paid_order()
    booked = b1.book(order)
    b1.bhttp.delete("/_sim/requests")
    result = b1.pay(order)
    assert result.outcome == "synced", result.message
    assert b1.writes() == ["POST DownPayments", "POST IncomingPayments"]
    paid = D(str(order["payment"]["amount_paid"]))
    assert paid == D(str(order["grand_total"])) == D("78.06")
    [down] = b1.records("DownPayments")
    assert (down["NumAtCard"], down["DownPaymentType"], down["CardCode"]) == (
        order["increment_id"],
        "dptInvoice",
        booked["CardCode"],
    )
    assert D(str(down["DocTotal"])) == paid
    assert [(ln["BaseType"], ln["BaseEntry"], ln["BaseLine"]) for ln in down["DocumentLines"]] == [
        (17, booked["DocEntry"], 0),
        (17, booked["DocEntry"], 1),
    ]
    [payment] = b1.records("IncomingPayments")
    assert payment["CounterReference"] == order["increment_id"]
    assert (payment["TransferAccount"], D(str(payment["TransferSum"]))) == (TRANSFER_ACCOUNT, paid)
    assert payment["TransferReference"] == order["payment"]["last_trans_id"]
    assert [(r["DocEntry"], D(str(r["SumApplied"])), r["InvoiceType"]) for r in payment["PaymentInvoices"]] == [
        (down["DocEntry"], paid, "it_DownPayment")
    ]
    assert b1.sim.open_amount(down["DocEntry"]) == 0 and down["DocumentStatus"] == "bost_Close"
    order_now = b1.sim.records["Orders"][booked["DocEntry"]]
    assert [ln["RemainingOpenQuantity"] for ln in order_now["DocumentLines"]] == [2, 1]  # still to deliver
    assert result.target_id == str(payment["DocEntry"])
    for entity_set in ("DownPayments", "IncomingPayments", "Orders"):
        assert_answer(entity_set, b1.call("GET", entity_set).json())
    b1.bhttp.delete("/_sim/requests")
    again = b1.pay(order)
    assert again.outcome == "skipped", again.message  # the run again writes nothing
    assert b1.writes() == []
    assert len(b1.records("DownPayments")) == len(b1.records("IncomingPayments")) == 1
    [held] = b1.sap.port("payment", "target").of_order(order["increment_id"], booked["CardCode"])
    assert (held.id, held.amount, held.status, held.released) == (str(payment["DocEntry"]), paid, "Posted", True)
    payment["Cancelled"] = "tYES"  # cancelled by a clerk in B1
    [voided] = b1.sap.port("payment", "target").of_order(order["increment_id"], booked["CardCode"])
    assert voided.voided


def _lose_answer_of(b1: Payments, entity_set: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sim applies the next ``POST <entity_set>`` and drops its answer."""
    create = b1.sap.client.create

    def lossy(name: str, body: Any) -> dict[str, Any]:
        if name != entity_set:
            return create(name, body)
        b1.bhttp.post("/_sim/faults", json={"lost_response_rate": 1.0, "lost_response_mode": "drop"})
        try:
            return create(name, body)
        finally:
            b1.bhttp.delete("/_sim/faults")

    monkeypatch.setattr(b1.sap.client, "create", lossy)


@pytest.mark.parametrize("lost", ["DownPayments", "IncomingPayments"])
def test_a_lost_answer_on_either_create_makes_no_second_one(
    b1: Payments, lost: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = b1.paid_order()
    b1.book(order)
    _lose_answer_of(b1, lost, monkeypatch)
    with pytest.raises(RetryableError):
        b1.pay(order)
    monkeypatch.undo()
    assert len(b1.records(lost)) == 1  # applied, its answer lost
    b1.bhttp.delete("/_sim/requests")
    result = b1.pay(order)
    assert result.outcome == "synced", result.message
    # the down payment is found again and paid; a payment found again is the order's payment
    assert b1.writes() == ([] if lost == "IncomingPayments" else ["POST IncomingPayments"])
    [down] = b1.records("DownPayments")
    [payment] = b1.records("IncomingPayments")
    assert [r["DocEntry"] for r in payment["PaymentInvoices"]] == [down["DocEntry"]]
    assert b1.sim.open_amount(down["DocEntry"]) == 0
    assert b1.pay(order).outcome == "skipped"


def test_a_payment_waits_for_its_order_and_an_unpaid_order_gets_none(b1: Payments) -> None:
    order = b1.paid_order()
    with pytest.raises(RetryableError) as waiting:
        b1.pay(order)
    assert waiting.value.error_type == "waiting_for_order"
    assert b1.records("DownPayments") == [] and b1.records("IncomingPayments") == []
    b1.book(order)
    assert b1.pay(order).outcome == "synced"
    unpaid = b1.place()
    b1.book(unpaid)
    result = b1.pay(unpaid)
    assert result.outcome == "filtered" and "nothing captured yet" in result.message
    assert len(b1.records("DownPayments")) == len(b1.records("IncomingPayments")) == 1


def test_cash_methods_go_to_the_cash_account_and_a_missing_account_is_named(
    bindings_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STORE_SYSTEM", "magento")
    monkeypatch.setenv("ERP_SYSTEM", "sap_b1")
    cash = Payments(bindings_table, deployment(cash_methods=["CASH"], cash_account="_SYS00000000001"))
    order = cash.paid_order(payment_method="cashondelivery")  # Magento's method, ERP method CASH
    booked = cash.book(order)
    assert cash.pay(order).outcome == "synced"
    [payment] = cash.records("IncomingPayments")
    assert (payment["CashAccount"], D(str(payment["CashSum"])), payment.get("TransferSum")) == (
        "_SYS00000000001",
        D("78.06"),
        None,
    )
    port = cash.sap.port("payment", "target")
    draft = cash.payments.draft(
        order_of(cash, order), "Orders", str(booked["DocEntry"]), payment["CardCode"], D("1.00")
    )
    ruled = draft.model_copy(update={"cash_account": "RULE-ACCT"})  # a payment rule's account
    assert mapping.payment_means(ruled, port.settings()) == (True, "RULE-ACCT")
    cash.clerk.deliver(booked["DocEntry"], "T-ALL")  # delivered in full: no open line to base a down payment on
    on_account = port.create(draft)  # so the payment goes on the customer's account
    [made] = [p for p in cash.records("IncomingPayments") if str(p["DocEntry"]) == on_account.id]
    assert not made.get("PaymentInvoices") and D(str(made["CashSum"])) == D("1.00")
    port.settings = lambda: SapB1Settings()  # no account at all
    with pytest.raises(
        MappingMissing, match=r"no G/L account for its transfer payment: set settings\.transfer_account"
    ):
        port.create(draft)
    assert len(cash.records("DownPayments")) == 1  # refused before anything was written


def order_of(b1: Payments, order: dict[str, Any]) -> Any:
    return b1.magento.port("order", "source").get(str(order["entity_id"]))


# -- the sim's rules ---------------------------------------------------------------------------------


@pytest.fixture
def down(b1: Payments) -> Iterator[tuple[Payments, dict[str, Any]]]:
    """A booked order's down payment invoice of 50.00, nothing paid on it."""
    booked = b1.book(b1.place())
    body = {
        "CardCode": booked["CardCode"],
        "NumAtCard": "X-1",
        "DownPaymentAmount": "50.00",
        "DocumentLines": [{"BaseType": 17, "BaseEntry": booked["DocEntry"], "BaseLine": 0}],
    }
    made = b1.clerk.request("POST", "DownPayments", json=body)
    assert (made["DocTotal"], made["DownPaymentType"], made["DocumentStatus"]) == (50.0, "dptInvoice", "bost_Open")
    yield b1, made


def apply(b1: Payments, card: str, rows: list[dict[str, Any]], **means: Any) -> Any:
    body = {"CardCode": card, "TransferAccount": TRANSFER_ACCOUNT, "TransferSum": 50, **means, "PaymentInvoices": rows}
    return b1.call("POST", "IncomingPayments", body)


REFUSALS = [
    ([{"SumApplied": "50.01"}], {"TransferSum": 60}, "SumApplied 50.01 is more than the 50.00 open on DownPayments"),
    ([{"SumApplied": 30}, {"SumApplied": 30}], {"TransferSum": 60}, "SumApplied 60.00 is more than the 50.00 open"),
    ([{"SumApplied": 40}], {"TransferSum": 30}, "The payment's total 30.00 is less than the 40.00 applied"),
    ([{"SumApplied": 0}], {}, "SumApplied must be greater than zero [PaymentInvoices: 0]"),
    ([{"SumApplied": 10}], {"TransferAccount": None}, "Enter a transfer account (TransferAccount)"),
]
"""(``PaymentInvoices`` rows on the 50.00 down payment, the payment's means, B1's error text)."""


def test_a_payment_larger_than_what_is_open_is_refused_and_nothing_applied(
    down: tuple[Payments, dict[str, Any]],
) -> None:
    b1, made = down
    for rows, means, text in REFUSALS:
        full = [{"DocEntry": made["DocEntry"], "InvoiceType": "it_DownPayment", **r} for r in rows]
        r = apply(b1, made["CardCode"], full, **means)
        assert_error_v1(r.json())
        assert (r.status_code, r.json()["error"]["code"]) == (400, -5002)
        assert r.json()["error"]["message"]["value"].startswith(text), r.json()
        assert b1.records("IncomingPayments") == [] and b1.sim.open_amount(made["DocEntry"]) == D("50.00")


def test_payments_take_a_down_payment_down_to_nothing_then_it_is_closed(down: tuple[Payments, dict[str, Any]]) -> None:
    b1, made = down
    b1.sim.now = lambda: datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)  # the server's clock, for the stamp
    row = {"DocEntry": made["DocEntry"], "InvoiceType": "203", "SumApplied": 20}  # the database value of it_DownPayment
    first = apply(b1, made["CardCode"], [row], TransferSum=20)
    assert first.status_code == 201, first.json()
    assert_answer("IncomingPayments", first.json())
    assert first.json()["PaymentInvoices"][0]["InvoiceType"] == "it_DownPayment"
    assert b1.sim.open_amount(made["DocEntry"]) == D("30.00")
    stamped = b1.sim.records["DownPayments"][made["DocEntry"]]
    assert (stamped["UpdateDate"], stamped["UpdateTime"]) == ("2030-01-02", "03:04:05")  # for the change filter
    assert apply(b1, made["CardCode"], [{**row, "SumApplied": 30}], TransferSum=30).status_code == 201
    after = b1.sim.records["DownPayments"][made["DocEntry"]]
    assert after["DocumentStatus"] == "bost_Close" and b1.sim.open_amount(made["DocEntry"]) == 0
    closed = apply(b1, made["CardCode"], [{**row, "SumApplied": 1}], TransferSum=1)
    assert closed.status_code == 400 and "is closed or cancelled" in closed.json()["error"]["message"]["value"]
    assert len(b1.records("IncomingPayments")) == 2


def test_payments_to_other_documents_or_partners_are_refused(down: tuple[Payments, dict[str, Any]]) -> None:
    b1, made = down
    b1.bhttp.post("/_sim/seed", json={"business_partners": [{"CardCode": "C-OTHER", "CardName": "Other"}]})
    other = apply(b1, "C-OTHER", [{"DocEntry": made["DocEntry"], "InvoiceType": "it_DownPayment", "SumApplied": 5}])
    assert other.status_code == 400 and "belongs to business partner" in other.json()["error"]["message"]["value"]
    missing = apply(b1, made["CardCode"], [{"DocEntry": 999, "InvoiceType": "it_DownPayment", "SumApplied": 5}])
    assert (missing.status_code, missing.json()["error"]["code"]) == (400, -2028)
    invoice = apply(b1, made["CardCode"], [{"DocEntry": made["DocEntry"], "SumApplied": 5}])  # it_Invoice
    assert invoice.status_code == 501 and "it_Invoice" in invoice.json()["error"]["message"]["value"]
    base = made["DocumentLines"][0]["BaseEntry"]
    too_much = {
        "CardCode": made["CardCode"],
        "DownPaymentAmount": 10_000,
        "DocumentLines": [{"BaseType": 17, "BaseEntry": base, "BaseLine": 0}],
    }
    r = b1.call("POST", "DownPayments", too_much)
    assert r.status_code == 400 and "no more than the order's" in r.json()["error"]["message"]["value"]
    assert b1.records("IncomingPayments") == [] and len(b1.records("DownPayments")) == 1
    lines_total = D(str(made["DocumentLines"][0]["LineTotal"]))  # what the one based line comes to
    del too_much["DownPaymentAmount"]
    assert b1.call("POST", "DownPayments", too_much).json()["DocTotal"] == float(lines_total)
    half = b1.call("POST", "DownPayments", {**too_much, "DownPaymentPercentage": 50}).json()
    assert D(str(half["DocTotal"])) == lines_total / 2


def test_the_invoice_of_a_paid_order_draws_its_down_payment_and_still_reaches_magento(b1: Payments) -> None:
    from tests.integration.test_sap_b1_flows import bill, invoices_of

    order = b1.paid_order()
    booked = b1.book(order)
    assert b1.pay(order).outcome == "synced"
    [down] = b1.records("DownPayments")
    delivery = b1.clerk.deliver(booked["DocEntry"], "1Z-PAID")
    made = b1.clerk.invoice(delivery["DocEntry"])  # the accountant draws what the order's down payment holds
    paid = D(str(order["payment"]["amount_paid"]))
    lines = sum((D(str(ln["LineTotal"])) for ln in made["DocumentLines"]), D(0))
    assert lines < paid  # the sim's invoice of a delivery carries the lines, not the order's freight and tax
    assert [(r["DocEntry"], D(str(r["AmountToDraw"]))) for r in made["DownPaymentsToDraw"]] == [
        (down["DocEntry"], lines)
    ]
    assert (D(str(made["DownPaymentAmount"])), D(str(made["DocTotal"]))) == (lines, 0)  # nothing left to pay
    assert b1.sim.drawable(down["DocEntry"]) == paid - lines  # the rest stays on the down payment
    held = b1.sim.records["DownPayments"][down["DocEntry"]]
    assert (held["DocumentStatus"], D(str(held["DocTotal"]))) == ("bost_Close", paid)  # as the demo reads it: paid
    assert bill(b1, str(made["DocEntry"])).outcome == "synced"
    [store_invoice] = invoices_of(b1, order)
    assert D(str(store_invoice["grand_total"])) == D(str(order["grand_total"]))  # the store invoices what it sold


def test_a_payment_that_comes_after_the_delivery_is_booked_on_account_once(b1: Payments) -> None:
    """Found by the chaos run: the warehouse delivered a paid order before its payment reached B1,
    and no down payment can be based on an order with no open line. The money goes on the
    customer's account (an incoming payment with no ``PaymentInvoices``, as SAP's own request
    example), found again by the store's number: nothing is lost, nothing booked twice."""
    order = b1.paid_order()
    booked = b1.book(order)
    b1.clerk.deliver(booked["DocEntry"], "1Z-EARLY")
    b1.bhttp.delete("/_sim/requests")
    result = b1.pay(order)
    assert result.outcome == "synced", result.message
    assert b1.writes() == ["POST IncomingPayments"]
    assert b1.records("DownPayments") == []
    [payment] = b1.records("IncomingPayments")
    paid = D(str(order["payment"]["amount_paid"]))
    assert payment["CounterReference"] == order["increment_id"] and payment["CardCode"] == booked["CardCode"]
    assert D(str(payment["TransferSum"])) == paid and not payment.get("PaymentInvoices")
    assert_answer("IncomingPayments", b1.call("GET", "IncomingPayments").json())
    b1.bhttp.delete("/_sim/requests")
    assert b1.pay(order).outcome == "skipped"
    assert b1.writes() == [] and len(b1.records("IncomingPayments")) == 1
