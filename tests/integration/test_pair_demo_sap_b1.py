"""The pair demo's SAP Business One side (``sandbox/pair_demo.py`` ``ErpSide("sap_b1")``) on the
in-process B1 sim: the document of a store order is the live ``Orders`` carrying its number in
``NumAtCard`` (with how many live ones do, a cancelled one, a number with a quote), open until paid
(payments into B1 are not built), closed once delivered; the clerk delivers it with the tracking
number and invoices that delivery; what the demo refuses, and ``--erp sap_b1`` offered.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from starlette.testclient import TestClient

from sandbox.pair_demo import ErpSide, erp_state, main
from sandbox.sims import sap_b1
from tests.support.sap_b1 import FIXTURES

D = Decimal
EXAMPLE_ORDER = json.loads((FIXTURES / "request_examples.json").read_text())["examples"]["POST Orders"]


@pytest.fixture
def erp() -> ErpSide:
    http = TestClient(sap_b1.create_app())
    assert (
        http.post(
            "/_sim/seed",
            json={
                "tax_codes": {"T1": 7.5},
                "business_partners": [{"CardCode": "c001", "CardName": "Customer c001", "CardType": "C"}],
                "items": [
                    {
                        "ItemCode": "i001",
                        "ItemName": "Item i001",
                        "ItemPrices": [{"PriceList": 1, "Price": 30, "Currency": "USD"}],
                        "ItemWarehouseInfoCollection": [{"WarehouseCode": "01", "InStock": 500}],
                    }
                ],
            },
        ).status_code
        == 200
    )
    return ErpSide("sap_b1", {"sap_b1": {"base_url": "http://testserver"}}, b1_http=http)


def book(erp: ErpSide, number: str, **extra: Any) -> dict[str, Any]:
    """SAP's official ``POST Orders`` example carrying the store's ``number``."""
    return dict(erp.clerk.request("POST", "Orders", json={**EXAMPLE_ORDER, "NumAtCard": number, **extra}))


def test_the_document_is_the_order_with_the_store_number_held_unpaid(erp: ErpSide) -> None:
    assert erp.document("000000001") is None
    made = book(erp, "000000001")
    doc = erp.document("000000001")
    assert doc is not None
    total = D(str(made["DocTotal"]))
    assert total == D("3225")  # 100 x 30 at T1 7.5 %
    assert (doc["kind"], doc["number"], doc["total"], doc["entry"]) == (
        "Orders",
        str(made["DocNum"]),
        total,
        made["DocEntry"],
    )
    assert (doc["open"], doc["canceled"], doc["copies"], doc["closed"]) == (total, False, 1, False)
    assert erp_state(erp, doc) == "open"
    assert erp.pays and erp.ships and erp.invoices


def test_a_quote_in_the_number_is_doubled_not_an_error(erp: ErpSide) -> None:
    book(erp, "O'Brien-7")
    doc = erp.document("O'Brien-7")
    assert doc is not None and doc["copies"] == 1


def test_two_live_orders_with_one_number_are_counted(erp: ErpSide) -> None:
    book(erp, "000000002")
    book(erp, "000000002")
    doc = erp.document("000000002")
    assert doc is not None and doc["copies"] == 2


def test_a_cancelled_order_is_not_live_and_the_live_one_is_the_document(erp: ErpSide) -> None:
    cancelled = {**EXAMPLE_ORDER, "NumAtCard": "000000004", "DocEntry": 90, "Cancelled": "tYES"}
    assert erp.clerk.http.post("/_sim/seed", json={"orders": [cancelled]}).status_code == 200
    doc = erp.document("000000004")
    assert doc is not None and (doc["canceled"], doc["copies"], doc["entry"]) == (True, 0, 90)
    assert erp_state(erp, doc) == "canceled"
    live = book(erp, "000000004")
    doc = erp.document("000000004")
    assert doc is not None and (doc["canceled"], doc["copies"], doc["entry"]) == (False, 1, live["DocEntry"])


def test_the_clerk_delivers_with_tracking_and_invoices_the_delivery(erp: ErpSide) -> None:
    with pytest.raises(ValueError, match="no sap_b1 delivery of order 000000003"):
        erp.invoice("000000003")
    book(erp, "000000003")
    doc = erp.document("000000003")
    assert doc is not None
    erp.ship_order("000000003", doc, "1ZPAIR0000")
    delivery = erp.clerk.request("GET", f"DeliveryNotes({erp.delivered['000000003']})")
    assert delivery["TrackingNumber"] == "1ZPAIR0000"
    assert [(ln["BaseType"], ln["BaseEntry"]) for ln in delivery["DocumentLines"]] == [(17, doc["entry"])]
    shipped = erp.document("000000003")
    assert (
        shipped is not None and shipped["closed"] and erp_state(erp, shipped) == "open, closed (delivered)"
    )  # delivered, no payment posted
    invoice = erp.invoice("000000003")
    assert [(ln["BaseType"], ln["BaseEntry"]) for ln in invoice["DocumentLines"]] == [(15, delivery["DocEntry"])]
    assert D(str(invoice["DocTotal"])) == doc["total"]
    with pytest.raises(RuntimeError, match="nothing open to invoice"):
        erp.invoice("000000003")


def test_quickbooks_ships_nothing() -> None:
    books = ErpSide("quickbooks", {"quickbooks": {"base_url": "http://qbo", "realm_id": "1", "access_token": "t"}})
    assert (books.ships, books.invoices, books.pays) == (False, False, True)
    with pytest.raises(ValueError, match="quickbooks ships nothing"):
        books.ship_order("1001", {}, "1ZPAIR0000")
    with pytest.raises(ValueError, match="no quickbooks delivery of order 1001"):
        books.invoice("1001")


def test_the_demo_offers_sap_b1_and_refuses_an_erp_it_does_not_know(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--erp", "sap_b1"], lambda store, erp: len(f"{store}->{erp}")) == len("magento->sap_b1")
    assert main(["--erp", "sap_s4"], lambda store, erp: len(f"{store}->{erp}")) == len("magento->sap_s4")
    with pytest.raises(SystemExit):
        main(["--erp", "sap_r3"], lambda store, erp: 0)
    assert "invalid choice: 'sap_r3'" in capsys.readouterr().err
