"""The warehouse's day in the B1 sim: deliveries posted against sales orders (``DocumentLines`` with
``BaseType`` 17, ``BaseEntry``, ``BaseLine``; SYSTEMS-NOTES §3.1), as SAP's official order example
(tests/fixtures/sap_b1/request_examples.json) is delivered: open quantities drawn, lines and orders
closed, stock moved; and every way a delivery is refused, with nothing drawn.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.testclient import TestClient

from sandbox.sap_b1_clerk import SapB1Clerk
from tests.integration.test_sap_b1_sim import B1, item, partner
from tests.support.sap_b1 import FIXTURES

EXAMPLES = json.loads((FIXTURES / "request_examples.json").read_text())["examples"]


def official_order() -> dict[str, Any]:
    """SAP's ``POST Orders`` example with a second line and the due date B1 asks for."""
    body = dict(EXAMPLES["POST Orders"])
    body["DocumentLines"] = [*body["DocumentLines"], {"ItemCode": "i002", "Quantity": "5", "UnitPrice": "12"}]
    return body


@pytest.fixture
def b1() -> B1:
    b = B1()
    assert b.login().status_code == 200
    b.seed(
        tax_codes={"T1": 7.5},
        business_partners=[partner("c001"), partner("c002")],
        items=[item("i001"), item("i002", price=12, stock=40)],
    )
    assert b.call("POST", "Orders", json=official_order()).status_code == 201
    return b


def based(line: int, qty: Any = None, entry: int = 1, base_type: int = 17, **extra: Any) -> dict[str, Any]:
    row = {"BaseType": base_type, "BaseEntry": entry, "BaseLine": line, **extra}
    return row if qty is None else {**row, "Quantity": qty}


def deliver(b1: B1, *lines: dict[str, Any], card: str = "c001", **header: Any) -> Any:
    return b1.call("POST", "DeliveryNotes", json={"CardCode": card, "DocumentLines": list(lines), **header})


def stock(b1: B1, code: str) -> tuple[float, float]:
    row = b1.call("GET", f"Items('{code}')").json()["ItemWarehouseInfoCollection"][0]
    return row["InStock"], row["Committed"]


def test_a_full_delivery_closes_the_order_and_moves_the_stock(b1: B1) -> None:
    assert stock(b1, "i001") == (500, 100)
    b1.clock = b1.clock.replace(minute=20)
    r = deliver(b1, based(0), based(1), TrackingNumber="1Z999AA10123456784", TransportationCode=2)
    assert r.status_code == 201, r.text
    delivery = r.json()
    assert (delivery["DocObjectCode"], delivery["TrackingNumber"], delivery["TransportationCode"]) == (
        "oDeliveryNotes",
        "1Z999AA10123456784",
        2,
    )
    first, second = delivery["DocumentLines"]
    assert (first["ItemCode"], first["Quantity"], first["UnitPrice"], first["TaxCode"]) == ("i001", 100, 30, "T1")
    assert (second["BaseType"], second["BaseEntry"], second["BaseLine"], second["Quantity"]) == (17, 1, 1, 5)
    assert delivery["DocTotal"] == 3000 * 1.075 + 60
    order = b1.call("GET", "Orders(1)").json()
    assert [(ln["LineStatus"], ln["RemainingOpenQuantity"]) for ln in order["DocumentLines"]] == [
        ("bost_Close", 0),
        ("bost_Close", 0),
    ]
    assert (order["DocumentStatus"], order["UpdateTime"]) == ("bost_Close", "14:20:00")
    assert stock(b1, "i001") == (400, 0) and stock(b1, "i002") == (35, 0)


def test_a_partial_delivery_leaves_the_rest_open_for_the_next(b1: B1) -> None:
    assert deliver(b1, based(0, "60")).status_code == 201
    order = b1.call("GET", "Orders(1)").json()
    assert [(ln["LineStatus"], ln["RemainingOpenQuantity"]) for ln in order["DocumentLines"]] == [
        ("bost_Open", 40),
        ("bost_Open", 5),
    ]
    assert order["DocumentStatus"] == "bost_Open" and stock(b1, "i001") == (440, 40)
    assert deliver(b1, based(0), based(1, 5)).status_code == 201  # no Quantity: all that is open
    order = b1.call("GET", "Orders(1)").json()
    assert order["DocumentStatus"] == "bost_Close" and stock(b1, "i001") == (400, 0)
    assert b1.call("PATCH", "Orders(1)", json={"Comments": "late"}).status_code == 400  # closed


def test_a_changed_order_keeps_what_was_delivered(b1: B1) -> None:
    deliver(b1, based(0, 60))
    assert b1.call("PATCH", "Orders(1)", json={"DocumentLines": [{"LineNum": 0, "Quantity": 80}]}).status_code == 204
    assert b1.call("GET", "Orders(1)").json()["DocumentLines"][0]["RemainingOpenQuantity"] == 20
    assert stock(b1, "i001") == (440, 20)
    r = b1.call("PATCH", "Orders(1)", json={"DocumentLines": [{"LineNum": 0, "Quantity": 50}]})
    assert "less than the 60 already delivered" in r.json()["error"]["message"]["value"]
    replace = {"DocumentLines": [{"ItemCode": "i001", "Quantity": 1}]}
    r = b1.call("PATCH", "Orders(1)", json=replace, headers={"B1S-ReplaceCollectionsOnPatch": "true"})
    assert r.status_code == 400 and "cannot be replaced" in r.json()["error"]["message"]["value"]


@pytest.mark.parametrize(
    ("lines", "card", "status", "code", "says"),
    [
        ([based(0, 101)], "c001", 400, -5002, "Quantity 101 is more than the 100 open on Orders 1 line 0"),
        ([based(0, 60), based(0, 41)], "c001", 400, -5002, "Quantity 101 is more than the 100 open"),
        ([based(0, 1, entry=9)], "c001", 400, -2028, "[Orders 9, line: 0]"),
        ([based(7, 1)], "c001", 400, -5002, "Orders 1 has no line 7"),
        ([{"BaseType": 17, "BaseEntry": 1, "Quantity": 1}], "c001", 400, -5002, "(BaseEntry, BaseLine)"),
        ([based(0, 1)], "c002", 400, -5002, "Orders 1 belongs to business partner c001"),
        ([based(0, 1, ItemCode="i002")], "c001", 400, -5002, "Item i002 is not the base line's item i001"),
        ([based(0, 1, base_type=13)], "c001", 501, -1, "DeliveryNotes lines based on object 13"),
    ],
)
def test_a_delivery_the_order_does_not_allow_is_refused_and_draws_nothing(
    b1: B1, lines: list[dict[str, Any]], card: str, status: int, code: int, says: str
) -> None:
    r = deliver(b1, *lines, card=card)
    assert (r.status_code, r.json()["error"]["code"]) == (status, code)
    assert says in r.json()["error"]["message"]["value"]
    order = b1.call("GET", "Orders(1)").json()
    assert [ln["RemainingOpenQuantity"] for ln in order["DocumentLines"]] == [100, 5]
    assert stock(b1, "i001") == (500, 100) and b1.sim.records["DeliveryNotes"] == {}


def test_a_closed_line_and_a_cancelled_order_deliver_nothing(b1: B1) -> None:
    deliver(b1, based(0))
    r = deliver(b1, based(0, 1))
    assert "Base document line is closed [Orders 1, line 0" in r.json()["error"]["message"]["value"]
    b1.seed(orders=[{**official_order(), "DocEntry": 5, "Cancelled": "tYES"}])
    r = deliver(b1, based(1, 1, entry=5))
    assert r.status_code == 400 and "Base document line is closed [Orders 5" in r.json()["error"]["message"]["value"]


def test_based_lines_cannot_be_added_by_a_patch(b1: B1) -> None:
    delivery = deliver(b1, based(0, 10)).json()
    r = b1.call("PATCH", f"DeliveryNotes({delivery['DocEntry']})", json={"DocumentLines": [based(0, 5)]})
    assert r.status_code == 501 and "PATCH" in r.json()["error"]["message"]["value"]
    assert b1.call("GET", "Orders(1)").json()["DocumentLines"][0]["RemainingOpenQuantity"] == 90


def test_the_clerk_delivers_through_the_service_layer(b1: B1) -> None:
    clerk = SapB1Clerk(TestClient(b1.app))
    made = clerk.deliver(1, "1Z-PART", lines={0: 30})
    assert [(ln["BaseLine"], ln["Quantity"]) for ln in made["DocumentLines"]] == [(0, 30)]
    rest = clerk.deliver(1, "1Z-REST", transportation_code=1)
    assert [(ln["BaseLine"], ln["Quantity"]) for ln in rest["DocumentLines"]] == [(0, 70), (1, 5)]
    assert rest["TrackingNumber"] == "1Z-REST" and clerk.order(1)["DocumentStatus"] == "bost_Close"
    with pytest.raises(RuntimeError, match="Base document line is closed"):
        clerk.deliver(1, "1Z-AGAIN", lines={0: 1})
    b1.sim.expire_sessions()
    assert clerk.order(1)["DocEntry"] == 1  # signed in again


# -- the accountant's day: invoices ------------------------------------------------------------------


def invoice(b1: B1, *lines: dict[str, Any], card: str = "c001") -> Any:
    return b1.call("POST", "Invoices", json={"CardCode": card, "DocumentLines": list(lines)})


def test_an_invoice_of_a_delivery_closes_the_delivery_and_leaves_the_stock(b1: B1) -> None:
    deliver(b1, based(0, 60), based(1))
    r = invoice(b1, based(0, base_type=15), based(1, 2, base_type=15))
    assert r.status_code == 201, r.text
    made = r.json()
    assert (made["DocObjectCode"], made["DocTotal"]) == ("oInvoices", 60 * 30 * 1.075 + 24)
    assert [(ln["ItemCode"], ln["Quantity"]) for ln in made["DocumentLines"]] == [("i001", 60), ("i002", 2)]
    delivery = b1.call("GET", "DeliveryNotes(1)").json()
    assert [(ln["LineStatus"], ln["RemainingOpenQuantity"]) for ln in delivery["DocumentLines"]] == [
        ("bost_Close", 0),
        ("bost_Open", 3),
    ]
    assert delivery["DocumentStatus"] == "bost_Open" and stock(b1, "i001") == (440, 40)  # moved by the delivery
    r = invoice(b1, based(1, 4, base_type=15))
    assert "Quantity 4 is more than the 3 open on DeliveryNotes 1 line 1" in r.json()["error"]["message"]["value"]


def test_an_invoice_of_the_order_itself_draws_the_order_and_its_stock(b1: B1) -> None:
    r = invoice(b1, based(0, 10), based(1))
    assert r.status_code == 201, r.text
    order = b1.call("GET", "Orders(1)").json()
    assert [ln["RemainingOpenQuantity"] for ln in order["DocumentLines"]] == [90, 0]
    assert stock(b1, "i001") == (490, 90) and stock(b1, "i002") == (35, 0)


def test_an_invoice_refuses_what_no_delivery_allows(b1: B1) -> None:
    r = invoice(b1, based(0, 1, base_type=15))
    assert r.status_code == 400 and "[DeliveryNotes 1, line: 0]" in r.json()["error"]["message"]["value"]
    deliver(b1, based(0, 5))
    r = invoice(b1, based(0, 1, base_type=15), card="c002")
    assert "DeliveryNotes 1 belongs to business partner c001" in r.json()["error"]["message"]["value"]
    r = invoice(b1, based(0, 1, base_type=16))
    assert r.status_code == 501 and "Invoices lines based on object 16" in r.json()["error"]["message"]["value"]
    body = {"CardCode": "c001", "DocumentLines": [based(0, 1, base_type=15)], "DownPaymentsToDraw": [{"DocEntry": 1}]}
    r = b1.call("POST", "Invoices", json=body)  # no down payment 1
    assert (r.status_code, r.json()["error"]["code"]) == (400, -2028)
    assert "[DownPayments 1, DownPaymentsToDraw: 0]" in r.json()["error"]["message"]["value"]
    r = b1.call("POST", "DeliveryNotes", json={**body, "DocumentLines": [based(0, 1)]})
    assert r.status_code == 501 and "DownPaymentsToDraw" in r.json()["error"]["message"]["value"]
    assert b1.sim.records["Invoices"] == {}


def test_the_accountant_invoices_a_delivery_or_an_order(b1: B1) -> None:
    clerk = SapB1Clerk(TestClient(b1.app))
    delivery = clerk.deliver(1, "1Z", lines={0: 30})
    made = clerk.invoice(delivery["DocEntry"])
    assert [(ln["BaseType"], ln["BaseEntry"], ln["BaseLine"], ln["Quantity"]) for ln in made["DocumentLines"]] == [
        (15, delivery["DocEntry"], 0, 30)
    ]
    with pytest.raises(RuntimeError, match="nothing open to invoice"):
        clerk.invoice(delivery["DocEntry"])
    direct = clerk.invoice(order_docentry=1)
    assert [(ln["BaseType"], ln["BaseLine"], ln["Quantity"]) for ln in direct["DocumentLines"]] == [
        (17, 0, 70),
        (17, 1, 5),
    ]
    with pytest.raises(ValueError, match="one of them"):
        clerk.invoice(1, order_docentry=1)


# -- prepaid orders: the invoice draws the down payment ----------------------------------------------

TRANSFER = {"TransferAccount": "_SYS00000000002"}  # the account of SAP's own POST IncomingPayments example


def down_payment(b1: B1, amount: Any, paid: Any = None, card: str = "c001", order: int = 1) -> int:
    """A down payment invoice of ``amount`` on the order, ``paid`` of it received; its DocEntry."""
    body = {"CardCode": card, "DownPaymentAmount": amount, "DocumentLines": [based(0, entry=order)]}
    r = b1.call("POST", "DownPayments", json=body)
    assert r.status_code == 201, r.text
    entry = int(r.json()["DocEntry"])
    if paid is not None:
        rows = [{"DocEntry": entry, "SumApplied": paid, "InvoiceType": "it_DownPayment"}]
        r = b1.call(
            "POST",
            "IncomingPayments",
            json={"CardCode": card, **TRANSFER, "TransferSum": paid, "PaymentInvoices": rows},
        )
        assert r.status_code == 201, r.text
    return entry


def test_the_invoice_of_a_prepaid_order_draws_its_down_payment(b1: B1) -> None:
    dp = down_payment(b1, 1000, paid=1000)
    clerk = SapB1Clerk(TestClient(b1.app))
    delivery = clerk.deliver(1, "1Z", lines={0: 40})
    made = clerk.invoice(delivery["DocEntry"])  # draws what the order's down payment holds
    gross = 40 * 30 * 1.075  # 1290.00
    assert (made["DownPaymentAmount"], made["DocTotal"]) == (1000, pytest.approx(gross - 1000))
    [row] = made["DownPaymentsToDraw"]
    assert (row["DocEntry"], row["AmountToDraw"], row["DocInternalID"], row["RowNum"]) == (
        dp,
        1000,
        made["DocEntry"],
        0,
    )
    assert b1.sim.drawable(dp) == 0 and b1.sim.open_amount(dp) == 0  # drawn; still paid in full
    down = b1.call("GET", f"DownPayments({dp})").json()
    assert (down["DocTotal"], down["DocumentStatus"]) == (1000, "bost_Close")  # what pair_demo reads as paid
    rest = clerk.invoice(order_docentry=1)  # nothing left to draw: none drawn
    assert "DownPaymentsToDraw" not in rest or rest["DownPaymentsToDraw"] == []
    assert rest["DocTotal"] == pytest.approx(60 * 30 * 1.075 + 60)
    assert b1.call("PATCH", f"Invoices({made['DocEntry']})", json={"Comments": "x"}).status_code == 204
    assert b1.call("GET", f"Invoices({made['DocEntry']})").json()["DocTotal"] == pytest.approx(gross - 1000)


def test_an_invoice_draws_part_and_the_next_the_rest(b1: B1) -> None:
    dp = down_payment(b1, 1000, paid=1000)
    deliver(b1, based(0, 10), based(0, 90))
    first = invoice(b1, based(0, base_type=15))
    assert first.status_code == 201
    body = {
        "CardCode": "c001",
        "DocumentLines": [based(0, base_type=15)],
        "DownPaymentsToDraw": [{"DocEntry": dp, "AmountToDraw": 200}],
    }
    r = b1.call("POST", "Invoices", json=body)
    assert r.status_code == 400 and "Base document line is closed" in r.json()["error"]["message"]["value"]
    b1.seed(orders=[{**official_order(), "DocEntry": 7}])
    d2 = deliver(b1, based(0, 10, entry=7)).json()
    body["DocumentLines"] = [based(0, base_type=15, entry=d2["DocEntry"])]
    made = b1.call("POST", "Invoices", json=body).json()  # 322.50 owed, 200 drawn
    assert (made["DownPaymentAmount"], made["DocTotal"]) == (200, pytest.approx(10 * 30 * 1.075 - 200))
    assert b1.sim.drawable(dp) == 800


@pytest.mark.parametrize(
    ("rows", "card", "code", "says"),
    [
        (
            [{"AmountToDraw": "500.01"}],
            "c001",
            -5002,
            "AmountToDraw 500.01 is more than the 500.00 DownPayments 1 holds",
        ),
        ([{"AmountToDraw": 300}, {"AmountToDraw": 300}], "c001", -5002, "AmountToDraw 300.00 is more than the 200.00"),
        ([{"AmountToDraw": 0}], "c001", -5002, "AmountToDraw must be greater than zero [DownPaymentsToDraw: 0]"),
        ([{"DocEntry": 2, "AmountToDraw": 1}], "c001", -5002, "AmountToDraw 1.00 is more than the 0.00 DownPayments 2"),
        ([{"DocEntry": 9}], "c001", -2028, "[DownPayments 9, DownPaymentsToDraw: 0]"),
        ([{"AmountToDraw": 1}], "c002", -5002, "DownPayments 1 belongs to business partner c001"),
    ],
)
def test_drawing_more_than_a_down_payment_holds_is_refused_and_draws_nothing(
    b1: B1, rows: list[dict[str, Any]], card: str, code: int, says: str
) -> None:
    down_payment(b1, 1000, paid=500)  # 1: half paid, holds 500
    down_payment(b1, 100)  # 2: unpaid, holds nothing
    b1.seed(orders=[{**official_order(), "CardCode": "c002", "DocEntry": 5}])
    order = 5 if card == "c002" else 1
    deliver(b1, based(0, 40, entry=order), card=card)
    draws = [{"DocEntry": 1, **r} for r in rows]
    r = b1.call(
        "POST",
        "Invoices",
        json={"CardCode": card, "DocumentLines": [based(0, base_type=15)], "DownPaymentsToDraw": draws},
    )
    assert (r.status_code, r.json()["error"]["code"]) == (400, code)
    assert says in r.json()["error"]["message"]["value"], r.json()
    assert b1.sim.records["Invoices"] == {} and b1.sim.drawable(1) == 500
    assert b1.call("GET", "DeliveryNotes(1)").json()["DocumentLines"][0]["RemainingOpenQuantity"] == 40


def test_no_invoice_draws_more_than_its_total(b1: B1) -> None:
    dp = down_payment(b1, 3000, paid=3000)
    deliver(b1, based(1))  # 5 x 12 = 60.00
    body: dict[str, Any] = {
        "CardCode": "c001",
        "DocumentLines": [based(0, base_type=15)],
        "DownPaymentsToDraw": [{"DocEntry": dp, "AmountToDraw": 60.01}],
    }
    r = b1.call("POST", "Invoices", json=body)
    assert (
        r.status_code == 400
        and "Down payments drawn (60.01) are more than the invoice's total 60.00"
        in r.json()["error"]["message"]["value"]
    )
    del body["DownPaymentsToDraw"][0]["AmountToDraw"]  # all it holds, up to the total
    made = b1.call("POST", "Invoices", json=body).json()
    assert (made["DownPaymentAmount"], made["DocTotal"], b1.sim.drawable(dp)) == (60, 0, 2940)
