"""The QuickBooks XSD check (tests/support/qbo_xsd.py) passes Intuit's real payloads, fails what
is wrong naming where, and passes what erpsync sends: a sales receipt and an invoice of a store
order, a customer, a payment (built by the adapter's own mapping from a real Magento order)."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from erpsync.flows import catalog
from erpsync.flows.orders import OrderRules
from erpsync.flows.sync import FlowContext
from erpsync.model import Customer
from erpsync.settings import Settings
from erpsync.systems.magento.mapping import order_from_magento
from erpsync.systems.quickbooks.mapping import customer_to_qbo, order_document
from tests.support.qbo_xsd import SchemaProblem, validate_entity, validate_response

FIXTURES = Path(__file__).parent.parent / "fixtures"
QBO = FIXTURES / "quickbooks"


def load(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((QBO / name).read_text())
    return body


@pytest.mark.parametrize(
    "name",
    [
        "sales_receipt_create_sales_receipt.json",
        "sales_receipt_void_sales_receipt.json",
        "item_read_item.json",
        "item_create_item.json",
        "api_query.json",
        "item_read_item_error.json",
    ],
)
def test_intuits_real_payloads_pass(name: str) -> None:
    validate_response(load(name))


def test_an_invented_field_fails_naming_its_path() -> None:
    body = load("sales_receipt_create_sales_receipt.json")
    body["SalesReceipt"]["Line"][0]["SalesItemLineDetail"]["Colour"] = "red"
    with pytest.raises(SchemaProblem, match=r"SalesReceipt\.Line\[0\]\.SalesItemLineDetail\.Colour: not declared"):
        validate_response(body)


def test_a_wrong_type_fails_naming_the_element() -> None:
    receipt = load("sales_receipt_create_sales_receipt.json")["SalesReceipt"]
    receipt["Line"][0]["SalesItemLineDetail"]["Qty"] = "two"
    with pytest.raises(SchemaProblem, match="Qty"):
        validate_entity("SalesReceipt", receipt)


def test_key_order_does_not_matter() -> None:
    receipt = load("sales_receipt_create_sales_receipt.json")["SalesReceipt"]
    validate_entity("SalesReceipt", dict(reversed(list(receipt.items()))))


def test_a_cdc_answer_with_a_deleted_invoice_passes() -> None:
    """Constructed after Intuit's CDC shape (SYSTEMS-NOTES 2.4): a deleted record is its id only."""
    receipt = load("sales_receipt_create_sales_receipt.json")["SalesReceipt"]
    body: dict[str, Any] = {
        "CDCResponse": [
            {
                "QueryResponse": [
                    {
                        "Invoice": [
                            {
                                "Id": "130",
                                "status": "Deleted",
                                "domain": "QBO",
                                "MetaData": {"LastUpdatedTime": "2026-11-28T10:00:00-08:00"},
                            }
                        ],
                        "startPosition": 1,
                        "maxResults": 1,
                    },
                    {"SalesReceipt": [receipt], "startPosition": 1, "maxResults": 1},
                ]
            }
        ],
        "time": "2026-11-28T10:00:01.000-08:00",
    }
    validate_response(body)
    broken = copy.deepcopy(body)
    broken["CDCResponse"][0]["QueryResponse"][0]["Invoice"][0]["Deleted"] = True
    with pytest.raises(SchemaProblem, match="Deleted"):
        validate_response(broken)


def test_what_erpsync_sends_passes() -> None:
    order = order_from_magento(json.loads((FIXTURES / "magento" / "order_get_V1_orders_3.json").read_text()))
    settings = Settings(tax_id="T", default_ship_via="GROUND", default_payment_method="CHECK")
    ctx = FlowContext(catalog.get("orders"), "magento", "quickbooks", None, None, None, settings)  # type: ignore[arg-type]
    rules = OrderRules(ctx)
    draft = rules.draft(order, "58")
    items = {ln.sku: str(100 + i) for i, ln in enumerate(draft.lines)} | {"Shipping": "99"}
    for kind in ("SalesReceipt", "Invoice"):
        doc = order_document(draft, items, shipping_item="99", taxable_code="TAX", deposit_account="4", kind=kind)
        validate_entity(kind, doc)
        total = sum(
            Decimal(str(ln["Amount"])) * (-1 if ln["DetailType"] == "DiscountLineDetail" else 1) for ln in doc["Line"]
        )
        assert total + Decimal(str(doc["TxnTaxDetail"]["TotalTax"])) == draft.total
    customer = Customer(
        email="jdoe@example.com", first_name="John", last_name="Doe", phone="+15551234567", address=order.bill_to
    )
    validate_entity("Customer", customer_to_qbo(customer, "John Doe"))
    payment = {
        "CustomerRef": {"value": "58"},
        "TotalAmt": 10.0,
        "Line": [{"Amount": 10.0, "LinkedTxn": [{"TxnId": "130", "TxnType": "Invoice"}]}],
        "PaymentRefNum": "000000003",
    }
    validate_entity("Payment", payment)
