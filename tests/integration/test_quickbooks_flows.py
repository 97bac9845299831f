"""Magento -> QuickBooks Online and Shopify -> QuickBooks Online through the flows, on the sims
in-process and the bindings in moto: a paid order becomes one sales receipt, an unpaid one an
invoice that its later payment closes, to the cent (lines, one discount line, the shipping item,
the store's tax as TxnTaxDetail.TotalTax); a lost answer makes nothing twice (Intuit's
``requestid``); a name taken by another customer gets the email after it (fault 6240); a cancel
voids the document. Every document erpsync sends is checked against the official XSDs.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from starlette.testclient import TestClient

from erpsync.errors import RetryableError, UnknownItemError
from erpsync.flows import catalog
from erpsync.flows.cancellations import CancellationRules
from erpsync.flows.customers import CustomerRules
from erpsync.flows.orders import OrderRules
from erpsync.flows.payments import PaymentRules
from erpsync.flows.sync import FlowContext
from erpsync.model import ChangeNotice
from erpsync.settings import Settings
from erpsync.state.bindings import Bindings
from erpsync.systems.magento import MagentoClient, MagentoSystem
from erpsync.systems.magento.settings import MagentoSettings
from erpsync.systems.plugin import BadWebhook
from erpsync.systems.quickbooks import webhooks
from erpsync.systems.quickbooks.adapter import QuickBooksSystem
from erpsync.systems.quickbooks.client import QuickBooksClient
from erpsync.systems.quickbooks.settings import QuickBooksSettings
from erpsync.systems.shopify.adapter import ShopifySystem
from erpsync.systems.shopify.client import ShopifyClient
from erpsync.systems.shopify.settings import ShopifySettings
from sandbox.shopify_merchant import Cart, ShopifyMerchant
from sandbox.sims import magento as mag_sim
from sandbox.sims import magento_orders as mo
from sandbox.sims import quickbooks as qbo_sim
from sandbox.sims import shopify as shop_sim
from tests.support.qbo_schema import validate_entity

D = Decimal
V3 = f"/v3/company/{qbo_sim.REALM}"


class Books:
    """A store (Magento or Shopify sim), the QuickBooks sim, and the flows between them."""

    def __init__(self, table: str, store: str) -> None:
        self.qhttp = TestClient(qbo_sim.create_app(), base_url="http://qbo")
        self.qhttp.post("/_sim/seed", json=qbo_sim.sample_seed())
        self.qclient = QuickBooksClient("http://qbo", qbo_sim.REALM, lambda: qbo_sim.ACCESS_TOKEN, http=self.qhttp)
        self.quickbooks = QuickBooksSystem(self.qclient, "quickbooks", QuickBooksSettings)
        self.store_name = store
        if store == "magento":
            self.shttp = TestClient(mag_sim.create_app())
            self.catalog = mo.sample_catalog()
            self.customer = mo.sample_customer("jane@example.com")
            seeded = self.shttp.post("/_sim/seed", json={"products": self.catalog, "customers": [self.customer]}).json()
            self.customer["id"] = seeded["customers"][0]["id"]
            self.store: Any = MagentoSystem(
                MagentoClient("/rest/default", "admin", "admin123", http=self.shttp), "magento", MagentoSettings
            )
        else:
            self.shttp = TestClient(shop_sim.create_app(), base_url="http://shop")
            self.shttp.post("/_sim/seed", json=shop_sim.sample_seed())
            client = ShopifyClient("http://shop", lambda: shop_sim.ACCESS_TOKEN, http=self.shttp)
            self.store = ShopifySystem(client, "shopify", ShopifySettings)
            self.merchant = ShopifyMerchant(self.shttp, shop_sim.ACCESS_TOKEN)
        self.settings = Settings(tax_id="STORETAX", default_ship_via="GROUND")
        self.bindings = Bindings(table)
        self.orders = OrderRules(
            self._ctx("orders", "order", {("customer", "target"): self.quickbooks.port("customer", "target")})
        )
        self.payments = PaymentRules(self._ctx("payments", "payment", {}))
        self.cancellations = CancellationRules(self._ctx("cancellations", "cancellation", {}))
        self.customers = CustomerRules(self._ctx("customers", "customer", {}))

    def _ctx(self, flow: str, entity: str, extra: dict[tuple[str, str], Any]) -> FlowContext:
        spec = catalog.get(flow)
        return FlowContext(
            spec=spec,
            source=self.store_name,
            target="quickbooks",
            source_port=self.store.port(entity, "source"),
            target_port=self.quickbooks.port(entity, "target"),
            bindings=self.bindings,
            settings=self.settings,
            extra=extra,
        )

    def sync(self, rules: Any, id: str) -> Any:
        return rules.sync(ChangeNotice(source=self.store_name, entity=rules.entity, id=id))

    def magento_order(self, **kw: Any) -> dict[str, Any]:
        order = mo.build_order(
            self.catalog, [mo.CartLine("24-MB01", 2), mo.CartLine("24-WG084", 1)], customer=self.customer, **kw
        )
        [saved] = self.shttp.post("/_sim/seed", json={"orders": [order]}).json()["orders"]
        return dict(self.store.client.get(f"/V1/orders/{saved['entity_id']}"))

    def documents(self, kind: str) -> list[dict[str, Any]]:
        rows = self.qclient.query(f"select * from {kind}").get(kind) or []
        for row in rows:
            validate_entity(kind, row)
        return list(rows)


@pytest.fixture
def magento_books(bindings_table: str) -> Books:
    return Books(bindings_table, "magento")


@pytest.fixture
def shopify_books(bindings_table: str) -> Books:
    return Books(bindings_table, "shopify")


def test_a_paid_magento_order_is_one_sales_receipt_to_the_cent_and_its_own_payment(magento_books: Books) -> None:
    b = magento_books
    order = b.magento_order(
        coupon=mo.Coupon("TENOFF", "percent", "10"),
        shipping_amount=10,
        tax_rate="8.25",
        payment_method="braintree",
        captured=True,
    )
    result = b.sync(b.orders, str(order["entity_id"]))
    assert result.outcome == "synced", result.message
    [receipt] = b.documents("SalesReceipt")
    assert receipt["DocNumber"] == order["increment_id"]
    assert D(str(receipt["TotalAmt"])) == D(str(order["base_grand_total"]))
    assert D(str(receipt["TxnTaxDetail"]["TotalTax"])) == D(str(order["base_tax_amount"]))
    kinds = [ln["DetailType"] for ln in receipt["Line"]]
    assert kinds.count("DiscountLineDetail") == 1 and kinds.count("SalesItemLineDetail") == 3  # 2 items + shipping
    assert b.documents("Invoice") == []
    paid = b.sync(b.payments, str(order["entity_id"]))
    assert paid.outcome == "synced", paid.message  # the receipt holds the money: no Payment made
    assert b.documents("Payment") == []
    [customer] = b.quickbooks.port("customer", "target").find("jane@example.com")
    assert receipt["CustomerRef"]["value"] == customer.source_id


def test_a_create_whose_answer_was_lost_is_not_made_twice(magento_books: Books) -> None:
    b = magento_books
    order = b.magento_order(payment_method="checkmo", captured=False)
    b.qhttp.post("/_sim/faults", json={"lost_response_rate": 1.0, "lost_response_mode": "drop"})
    with pytest.raises(RetryableError):
        b.sync(b.orders, str(order["entity_id"]))
    b.qhttp.delete("/_sim/faults")
    result = b.sync(b.orders, str(order["entity_id"]))
    assert result.outcome == "synced", result.message
    assert len(b.documents("Invoice")) == 1


def test_an_unknown_sku_fails_naming_it(magento_books: Books) -> None:
    b = magento_books
    b.qhttp.post("/_sim/reset")
    b.qhttp.post("/_sim/seed", json={"items": [{"Name": "24-MB01", "Sku": "24-MB01"}]})
    order = b.magento_order(payment_method="checkmo", captured=False)
    with pytest.raises(UnknownItemError, match="no item with SKU or name 24-WG084"):
        b.sync(b.orders, str(order["entity_id"]))


def test_an_unpaid_shopify_order_is_an_invoice_that_its_payment_closes_and_a_cancel_voids(shopify_books: Books) -> None:
    b = shopify_books
    placed = b.merchant.place(
        "roni_cost@example.com",
        Cart(
            [("24-MB01", 2)], discount=D("5.00"), shipping=D("7.50"), tax_rate=D("0.06"), paid=False, gateway="manual"
        ),
    )
    oid = placed["legacyResourceId"]
    assert b.sync(b.orders, oid).outcome == "synced"
    [invoice] = b.documents("Invoice")
    assert (
        D(str(invoice["TotalAmt"])) == D(placed["totalPriceSet"]["shopMoney"]["amount"]) == D("74.73")
    )  # 68 - 5 discount + 7.50 shipping + 4.23 tax
    assert b.sync(b.payments, oid).outcome == "filtered"  # nothing captured yet
    b.merchant.mark_paid(placed["id"])
    result = b.sync(b.payments, oid)
    assert result.outcome == "synced", result.message
    [payment] = b.documents("Payment")
    assert D(str(payment["TotalAmt"])) == D("74.73")  # 68 - 5 discount + 7.50 shipping + 4.23 tax
    [invoice] = b.documents("Invoice")
    assert D(str(invoice["Balance"])) == 0
    assert b.sync(b.payments, oid).outcome == "skipped"

    other = b.merchant.place("roni_cost@example.com", Cart([("24-WG088", 1)], paid=False, gateway="manual"))
    assert b.sync(b.orders, other["legacyResourceId"]).outcome == "synced"
    b.merchant.cancel(other["id"])
    result = b.sync(b.cancellations, other["legacyResourceId"])
    assert result.outcome == "synced", result.message
    voided = next(d for d in b.documents("Invoice") if d["DocNumber"] == other["name"])
    assert D(str(voided["TotalAmt"])) == 0


def test_a_name_taken_by_another_customer_gets_the_email_after_it(shopify_books: Books) -> None:
    b = shopify_books
    b.qhttp.post(
        "/_sim/seed",
        json={
            "customers": [{"DisplayName": "Veronica Costello", "PrimaryEmailAddr": {"Address": "other@example.com"}}]
        },
    )
    placed = b.merchant.place("roni_cost@example.com", Cart([("24-MB01", 1)]))
    assert b.sync(b.orders, placed["legacyResourceId"]).outcome == "synced"
    [mine] = b.quickbooks.port("customer", "target").find("roni_cost@example.com")
    record = b.qclient.get(f"/customer/{mine.source_id}")["Customer"]
    validate_entity("Customer", record)
    assert record["DisplayName"] == "Veronica Costello (roni_cost@example.com)"


def test_webhooks_in_both_formats_are_verified_and_read() -> None:
    events = [
        {"specversion": "1.0", "id": "e1", "source": "intuit.x", "type": "qbo.customer.updated.v1", "data": {},
         "time": "2026-11-28T10:00:00Z", "intuitentityid": "58", "intuitaccountid": "310687"},
        {"specversion": "1.0", "id": "e2", "source": "intuit.x", "type": "qbo.invoice.created.v1", "data": {},
         "time": "2026-11-28T10:00:00Z", "intuitentityid": "130", "intuitaccountid": "310687"},
    ]  # fmt: skip
    cloud = json.dumps(events).encode()
    notices = webhooks.receive("v3rifier", cloud, {"intuit-signature": webhooks.sign("v3rifier", cloud)})
    assert [(n["entity"], n["id"], n["event_id"]) for n in notices] == [
        ("customer", "58", "e1"),
        ("invoice", "130", "e2"),  # the invoices flow reads it (invoices paid in QuickBooks)
    ]
    change = {"id": "58", "operation": "Update", "name": "Customer", "lastUpdated": "2025-09-08T20:52:31.657Z"}
    legacy = json.dumps(
        {"eventNotifications": [{"realmId": "310687", "dataChangeEvent": {"entities": [change]}}]}
    ).encode()
    [notice] = webhooks.receive("v3rifier", legacy, {"intuit-signature": webhooks.sign("v3rifier", legacy)})
    assert notice["id"] == "58"
    with pytest.raises(BadWebhook, match="signature does not match"):
        webhooks.receive(
            "v3rifier", legacy.replace(b"58", b"59"), {"intuit-signature": webhooks.sign("v3rifier", legacy)}
        )
    with pytest.raises(BadWebhook, match="not a QuickBooks webhook"):
        webhooks.receive("v3rifier", b"{}", {"intuit-signature": webhooks.sign("v3rifier", b"{}")})


def test_order_rules_choose_skip_document_payments_and_deposit_account(shopify_books: Books) -> None:
    """The rules of docs/QUICKBOOKS.md's example, on Shopify orders through the flows."""
    b = shopify_books
    b.settings = b.settings.model_validate(
        {
            **b.settings.model_dump(),
            "order_rules": [
                {
                    "name": "wholesale is booked by hand",
                    "when": [{"field": "tags", "op": "eq", "value": "wholesale"}],
                    "then": {"skip": "entered by the bookkeeper"},
                },
                {
                    "name": "manual payments on account",
                    "when": [{"field": "payment_method", "op": "eq", "value": "manual"}],
                    "then": {"document": "invoice", "payment": "unpaid"},
                },
                {
                    "name": "till sales to the cash drawer",
                    "when": [{"field": "channel", "op": "eq", "value": "pos"}],
                    "then": {"document": "sales_receipt", "cash_account": "101"},
                },
            ],
        }
    )
    customers = {("customer", "target"): b.quickbooks.port("customer", "target")}
    b.orders, b.payments = (
        OrderRules(b._ctx("orders", "order", customers)),
        PaymentRules(b._ctx("payments", "payment", {})),
    )
    wholesale = b.merchant.place("w@example.com", Cart([("24-MB01", 1)], tags=("wholesale",)))
    skipped = b.sync(b.orders, wholesale["legacyResourceId"])
    assert (
        skipped.outcome == "filtered"
        and skipped.message == "rule 'wholesale is booked by hand': entered by the bookkeeper"
    )
    manual = b.merchant.place("m@example.com", Cart([("24-MB01", 1)], gateway="manual"))  # paid, but on account
    assert b.sync(b.orders, manual["legacyResourceId"]).outcome == "synced"
    assert [d["DocNumber"] for d in b.documents("Invoice")] == [manual["name"]]
    unpaid = b.sync(b.payments, manual["legacyResourceId"])
    assert unpaid.outcome == "filtered" and "rule 'manual payments on account'" in unpaid.message
    till = b.merchant.place("p@example.com", Cart([("24-WG084", 1)], source="pos"))
    assert b.sync(b.orders, till["legacyResourceId"]).outcome == "synced"
    [receipt] = b.documents("SalesReceipt")
    assert receipt["DocNumber"] == till["name"] and receipt["DepositToAccountRef"] == {"value": "101"}
