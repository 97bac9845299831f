"""Payments, Magento -> Acumatica, on both sims in-process and the bindings in moto: what an order
captured becomes one released Acumatica payment applied to its sales order, never two.

The orders come from the sims' order builder over the sample catalog (Luma's products, as Adobe's
sample data has them); the payment body follows the official Postman collection's "Create a Payment
for an Invoice and a Sales Order" (tests/fixtures/acumatica/request_payment_orders_and_documents_to_apply.json).
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from erpsync.errors import RetryableError
from erpsync.flows import catalog
from erpsync.flows.orders import OrderRules
from erpsync.flows.payments import PaymentRules
from erpsync.flows.sync import FlowContext
from erpsync.model import ChangeNotice
from erpsync.settings import PaymentRule, Settings
from erpsync.state.bindings import Bindings
from erpsync.systems.acumatica.mapping import payment_record
from sandbox.sims import magento_orders as mo
from tests.contract.test_acumatica_openapi import assert_holds
from tests.support.sims import SimSystems

FIXTURES = Path(__file__).parent.parent / "fixtures"
D = Decimal


def v(field: Any) -> Any:
    return field.get("value") if isinstance(field, dict) else field


class Shop:
    """Both sims, both systems, the orders and the payments flows between them."""

    def __init__(self, table: str, settings: Settings | None = None) -> None:
        sims = SimSystems()
        self.mhttp, self.ahttp, self.magento, self.acumatica = sims.mhttp, sims.ahttp, sims.magento, sims.acumatica
        self.catalog = mo.sample_catalog()
        self.customer = mo.sample_customer("jane@example.com")
        seeded = self.mhttp.post("/_sim/seed", json={"products": self.catalog, "customers": [self.customer]}).json()
        self.customer["id"] = seeded["customers"][0]["id"]
        items = [{"InventoryID": p["sku"], "Description": p["name"]} for p in self.catalog if p["type_id"] == "simple"]
        self.ahttp.post("/_sim/seed", json={"stock_items": items})
        self.settings = settings or Settings()
        self.ahttp.post("/entity/auth/login", json={"name": "admin", "password": "123", "company": "Company"})
        self.bindings = Bindings(table)
        self.orders = OrderRules(
            self._ctx("orders", "order", {("customer", "target"): self.acumatica.port("customer", "target")})
        )
        self.payments = PaymentRules(self._ctx("payments", "payment", {}))

    def _ctx(self, flow: str, entity: str, extra: dict[tuple[str, str], Any]) -> FlowContext:
        """The flow's context between the two sims, in the catalogue's direction."""
        spec = catalog.get(flow)
        systems = {"magento": self.magento, "acumatica": self.acumatica}
        source, target = ("magento", "acumatica") if spec.source == "store" else ("acumatica", "magento")
        return FlowContext(
            spec=spec,
            source=source,
            target=target,
            source_port=systems[source].port(entity, "source"),
            target_port=systems[target].port(entity, "target"),
            bindings=self.bindings,
            settings=self.settings,
            extra=extra,
        )

    def place(self, *, method: str = "braintree", captured: bool = True) -> dict[str, Any]:
        order = mo.build_order(
            self.catalog, [mo.CartLine("24-MB01", 2)], customer=self.customer, payment_method=method, captured=captured
        )
        [saved] = self.mhttp.post("/_sim/seed", json={"orders": [order]}).json()["orders"]
        return dict(self.mhttp_get(f"/V1/orders/{saved['entity_id']}"))

    def mhttp_get(self, path: str) -> Any:
        return self.magento.client.get(path)

    def sync(self, rules: Any, order: dict[str, Any]) -> Any:
        return rules.sync(ChangeNotice(source="magento", entity=rules.entity, id=str(order["entity_id"])))

    def erp_payments(self) -> list[dict[str, Any]]:
        return list(self.ahttp.get("/entity/Default/24.200.001/Payment?$expand=OrdersToApply").json())

    def sales_order(self, number: str) -> dict[str, Any]:
        rows = self.ahttp.get(
            "/entity/Default/24.200.001/SalesOrder",
            params={"$filter": f"CustomerOrder eq '{number}'", "$expand": "Payments,Totals"},
        ).json()
        return dict(rows[0])

    def writes(self) -> list[str]:
        rows = self.ahttp.get("/_sim/requests").json()["requests"]
        return [
            f"{r['method']} {r['path']}" for r in rows if r["method"] in ("PUT", "POST") and "/auth/" not in r["path"]
        ]


@pytest.fixture
def shop(bindings_table: str) -> Shop:
    return Shop(bindings_table)


def test_a_captured_order_gets_one_released_payment_applied_to_its_sales_order(shop: Shop) -> None:
    order = shop.place()
    assert shop.sync(shop.orders, order).outcome == "synced"
    result = shop.sync(shop.payments, order)
    assert result.outcome == "synced", result.message
    [payment] = shop.erp_payments()
    total = D(str(order["grand_total"]))
    assert D(str(v(payment["PaymentAmount"]))) == total
    assert v(payment["Status"]) == "Closed"  # released, nothing left unapplied
    assert v(payment["PaymentRef"]) == order["payment"]["last_trans_id"] != ""
    assert v(payment["ExternalRef"]) == order["increment_id"]
    assert v(payment["PaymentMethod"]) == "CREDITCARD"
    [applied] = payment["OrdersToApply"]
    so = shop.sales_order(order["increment_id"])
    assert v(applied["OrderNbr"]) == v(so["OrderNbr"])
    assert D(str(v(so["Totals"]["UnpaidBalance"]))) == 0
    [row] = so["Payments"]
    assert v(row["ReferenceNbr"]) == v(payment["ReferenceNbr"]) and D(str(v(row["AppliedToOrder"]))) == total
    assert_holds("Payment", payment)
    assert_holds("SalesOrder", so)

    before = shop.writes()
    again = shop.sync(shop.payments, order)
    assert again.outcome == "skipped" and "already paid" in again.message
    assert shop.writes() == before  # nothing written the second time
    assert len(shop.erp_payments()) == 1


def test_an_unpaid_order_gets_no_payment_until_an_invoice_captures_it(shop: Shop) -> None:
    order = shop.place(method="braintree", captured=False)
    shop.sync(shop.orders, order)
    unpaid = shop.sync(shop.payments, order)
    assert unpaid.outcome == "filtered" and "nothing captured" in unpaid.message
    assert shop.erp_payments() == []

    # captured later, when the store invoices it (Magento's invoice with capture)
    token = shop.mhttp.post(
        "/rest/default/V1/integration/admin/token", json={"username": "admin", "password": "admin123"}
    ).json()
    items = [
        {"order_item_id": i["item_id"], "qty": i["qty_ordered"]} for i in order["items"] if not i.get("parent_item_id")
    ]
    r = shop.mhttp.post(
        f"/rest/default/V1/order/{order['entity_id']}/invoice",
        json={"capture": True, "items": items},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200, r.text
    paid = shop.mhttp_get(f"/V1/orders/{order['entity_id']}")
    assert shop.sync(shop.payments, paid).outcome == "synced"
    [payment] = shop.erp_payments()
    assert D(str(v(payment["PaymentAmount"]))) == D(str(paid["total_paid"])) > 0
    assert v(payment["PaymentRef"]) == paid["payment"]["last_trans_id"]


def test_a_lost_answer_on_the_payment_write_never_pays_twice(bindings_table: str) -> None:
    shop = Shop(bindings_table, Settings(in_doubt_wait_s=0))
    order = shop.place()
    shop.sync(shop.orders, order)
    shop.ahttp.post("/_sim/faults", json={"lost_response_rate": 1.0, "seed": 1})
    with pytest.raises(RetryableError):  # a 504 after the write was applied
        shop.sync(shop.payments, order)
    shop.ahttp.delete("/_sim/faults")
    assert len(shop.erp_payments()) == 1  # the write was applied; its answer was lost
    retried = shop.sync(shop.payments, order)
    assert retried.outcome == "synced" and "found" in retried.message
    [payment] = shop.erp_payments()
    assert v(payment["Status"]) == "Closed"  # the retry released what the lost write made
    assert D(str(v(shop.sales_order(order["increment_id"])["Totals"]["UnpaidBalance"]))) == 0


def test_a_payment_waits_for_its_order(shop: Shop) -> None:
    order = shop.place()
    with pytest.raises(RetryableError) as waiting:
        shop.sync(shop.payments, order)
    assert waiting.value.error_type == "waiting_for_order"
    assert shop.erp_payments() == []
    shop.sync(shop.orders, order)
    assert shop.sync(shop.payments, order).outcome == "synced"


def test_rules_by_payment_method_skip_or_leave_unpaid_and_set_the_cash_account(bindings_table: str) -> None:
    settings = Settings(
        payments={
            "cash_account": "10200WH",
            "rules": {
                "checkmo": PaymentRule(action="unpaid"),
                "banktransfer": PaymentRule(action="skip"),
                "braintree": PaymentRule(cash_account="10250ST", payment_method="CREDITCARD"),
            },
        }
    )
    shop = Shop(bindings_table, settings)
    check = shop.place(method="checkmo")
    wire = shop.place(method="banktransfer")
    card = shop.place(method="braintree")
    for order in (check, wire, card):
        shop.sync(shop.orders, order)
    assert "rule unpaid" in shop.sync(shop.payments, check).message
    assert "rule skip" in shop.sync(shop.payments, wire).message
    assert shop.sync(shop.payments, card).outcome == "synced"
    [payment] = shop.erp_payments()
    assert v(payment["CashAccount"]) == "10250ST" and v(payment["ExternalRef"]) == card["increment_id"]


def test_release_off_leaves_the_payment_balanced(bindings_table: str) -> None:
    shop = Shop(bindings_table, Settings(payments={"release": False}))
    order = shop.place()
    shop.sync(shop.orders, order)
    result = shop.sync(shop.payments, order)
    assert "not released" in result.message
    [payment] = shop.erp_payments()
    assert v(payment["Status"]) == "Balanced"


def test_the_sim_refuses_a_payment_applied_beyond_the_unpaid_balance(shop: Shop) -> None:
    """Acumatica's own check, which keeps a second payment of the same money out."""
    order = shop.place()
    shop.sync(shop.orders, order)
    shop.sync(shop.payments, order)
    so = shop.sales_order(order["increment_id"])
    body = json.loads((FIXTURES / "acumatica" / "request_payment_orders_and_documents_to_apply.json").read_text())[
        "request"
    ]["body"]
    body.pop("DocumentsToApply")
    body["CustomerID"] = so["CustomerID"]
    body["PaymentAmount"] = {"value": 10}
    body["OrdersToApply"] = [
        {"OrderType": so["OrderType"], "OrderNbr": so["OrderNbr"], "AppliedToOrder": {"value": 10}}
    ]
    r = shop.ahttp.put("/entity/Default/24.200.001/Payment", json=body)
    assert r.status_code == 422
    assert "Applied Amount Cannot Exceed the Unbilled Balance" in r.text


def test_the_payment_body_follows_the_official_request() -> None:
    """Every field the mapping sends is one the official Payment schema has, and covers the fields
    of the official Postman request's order application."""
    from erpsync.model import PaymentDraft

    official = json.loads((FIXTURES / "acumatica" / "request_payment_orders_and_documents_to_apply.json").read_text())
    schemas = json.loads((FIXTURES / "acumatica" / "openapi-Default-24.200.001-served.json").read_text())["components"][
        "schemas"
    ]

    def fields(name: str) -> set[str]:
        return {k for part in schemas[name].get("allOf", [schemas[name]]) for k in part.get("properties", {})}

    record = payment_record(
        PaymentDraft(
            customer_id="C1",
            order_type="SO",
            order_number="000036",
            amount=D("12.5"),
            currency="USD",
            method="CHECK",
            cash_account="10200WH",
            reference="txn1",
            store_order="000000042",
        )
    )
    assert set(official["request"]["body"]["OrdersToApply"][0]) <= set(record["OrdersToApply"][0])
    assert set(record) <= fields("Payment")
    assert set(record["OrdersToApply"][0]) <= fields("PaymentOrderDetail")
    assert record["PaymentAmount"] == {"value": D("12.50")} and record["Hold"] == {"value": False}


def test_an_order_the_preferences_leave_out_gets_no_payment_and_no_endless_wait(bindings_table: str) -> None:
    shop = Shop(bindings_table, Settings(order_sync={"statuses": ["processing"]}))
    order = shop.place()
    assert order["status"] not in ("processing",)
    assert shop.sync(shop.orders, order).outcome == "filtered"
    result = shop.sync(shop.payments, order)
    assert result.outcome == "filtered" and "left out by the order sync preferences" in result.message
    assert shop.erp_payments() == []
