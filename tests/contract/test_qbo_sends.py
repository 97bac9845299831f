"""What erpsync sends to QuickBooks Online passes Intuit's XSDs (tests/support/qbo_schema.py): a
sales receipt and an invoice of a real Magento order (tests/fixtures/magento/order_get_V1_orders_3.json)
as the adapter's own mapping builds them, a customer and a payment; the documents add up to the
store's total."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from erpsync.flows import catalog
from erpsync.flows.orders import OrderRules
from erpsync.flows.sync import FlowContext
from erpsync.model import Customer
from erpsync.settings import Settings
from erpsync.systems.magento.mapping import order_from_magento
from erpsync.systems.quickbooks.mapping import customer_to_qbo, order_document
from tests.support.qbo_schema import validate_entity

FIXTURES = Path(__file__).parent.parent / "fixtures"


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
