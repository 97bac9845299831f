"""SAP Business One as the deployment's ERP, on the in-process sims: the plugin, the registry, the
template and the local stack's settings and seed for ``--erp sap_b1``, connected as the runtime
connects a system; a Magento order booked through the orders flow on them, delivered by the B1
clerk with a tracking number and shipped in Magento by the shipments flow, then invoiced by the
B1 accountant and invoiced in Magento with the e-mail to the customer by the invoices flow, once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from starlette.testclient import TestClient

from erpsync.errors import ValidationFailed
from erpsync.flows import catalog
from erpsync.flows.documents import InvoiceRules, ShipmentRules
from erpsync.flows.orders import OrderRules
from erpsync.flows.sync import FlowContext
from erpsync.model import ChangeNotice
from erpsync.runtime.lambda_app import check_routes, check_settings
from erpsync.settings import Settings
from erpsync.state.bindings import Bindings
from erpsync.systems import registry
from erpsync.systems.magento import MagentoClient, MagentoSystem
from erpsync.systems.magento.settings import MagentoSettings
from erpsync.systems.plugin import Wiring
from erpsync.systems.sap_b1.adapter import SapB1Invoices, SapB1System
from erpsync.systems.sap_b1.settings import SapB1Settings
from sandbox.local.stack import ERPS, SIMS, LocalStack, default_seed, local_settings, sim_credentials
from sandbox.sap_b1_clerk import SapB1Clerk
from sandbox.sims import magento as mag_sim
from sandbox.sims import magento_orders as mo
from sandbox.sims import sap_b1

D = Decimal
TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_multi_constructor("!", lambda loader, suffix, node: None)


@pytest.fixture
def deployment(monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings of a local stack run with ``--store magento --erp sap_b1``."""
    monkeypatch.setenv("STORE_SYSTEM", "magento")
    monkeypatch.setenv("ERP_SYSTEM", "sap_b1")
    return Settings(**local_settings("magento", "sap_b1"))


class Pair:
    """The Magento sim and the B1 sim, each connected as the runtime connects it."""

    def __init__(self, table: str, settings: Settings) -> None:
        self.settings = settings
        conns = settings.effective_connections()
        self.bhttp = TestClient(sap_b1.create_app())
        self.sim: sap_b1.SapB1Sim = self.bhttp.app.state.sim  # type: ignore[attr-defined]
        assert self.bhttp.post("/_sim/seed", json=default_seed()["sap_b1"]).status_code == 200
        plugin = registry.plugin("sap_b1")
        secret = plugin.secret_model.model_validate(sim_credentials("sap_b1", "http://testserver"))
        own = plugin.settings_model.model_validate(conns["sap_b1"].settings)
        system = plugin.connect(Wiring("sap_b1", secret, lambda: own))
        assert isinstance(system, SapB1System)
        system.client.http.close()
        system.client.http = self.bhttp  # the sim in-process instead of over the network
        self.sap = system
        self.mhttp = TestClient(mag_sim.create_app())
        store_own = MagentoSettings.model_validate(conns["magento"].settings)
        self.magento = MagentoSystem(
            MagentoClient("/rest/default", "admin", "admin123", http=self.mhttp), "magento", lambda: store_own
        )
        self.catalog = mo.sample_catalog()
        self.customer = mo.sample_customer("roni_cost@example.com")
        seeded = self.mhttp.post("/_sim/seed", json={"products": self.catalog, "customers": [self.customer]}).json()
        self.customer["id"] = seeded["customers"][0]["id"]
        self.bindings = Bindings(table)
        self.orders = OrderRules(
            self.ctx("orders", "order", {("customer", "target"): self.sap.port("customer", "target")})
        )
        self.shipments = ShipmentRules(self.ctx("shipments", "shipment", {}))
        self.invoices = InvoiceRules(self.ctx("invoices", "invoice", {}))
        self.clerk = SapB1Clerk(TestClient(self.bhttp.app))

    def ctx(self, flow: str, entity: str, extra: dict[tuple[str, str], Any]) -> FlowContext:
        spec = catalog.get(flow)
        systems: dict[str, Any] = {"magento": self.magento, "sap_b1": self.sap}
        source, target = ("magento", "sap_b1") if spec.source == "store" else ("sap_b1", "magento")
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

    def place(self, lines: list[mo.CartLine] | None = None) -> dict[str, Any]:
        order = mo.build_order(
            self.catalog,
            lines or [mo.CartLine("24-MB01", 2), mo.CartLine("24-WG084", 1)],
            customer=self.customer,
            tax_rate="0.0825",
        )
        [saved] = self.mhttp.post("/_sim/seed", json={"orders": [order]}).json()["orders"]
        return dict(self.magento.client.get(f"/V1/orders/{saved['entity_id']}"))

    def book(self, order: dict[str, Any]) -> dict[str, Any]:
        """The order through the orders flow; the B1 order it became."""
        result = self.orders.sync(ChangeNotice(source="magento", entity="order", id=str(order["entity_id"])))
        assert result.outcome == "synced", result.message
        [booked] = [o for o in self.sim.records["Orders"].values() if o.get("NumAtCard") == order["increment_id"]]
        return booked


@pytest.fixture
def pair(bindings_table: str, deployment: Settings) -> Pair:
    return Pair(bindings_table, deployment)


# -- wiring --------------------------------------------------------------------------------------------


def test_sap_b1_is_an_erp_kind_the_template_and_the_local_stack_offer() -> None:
    plugin = registry.plugin("sap_b1")
    assert (plugin.kind, plugin.role, plugin.webhooks is not None) == ("sap_b1", "erp", True)
    assert registry.webhook_receiver("sap_b1") is not None  # no webhooks in the Service Layer: an optional push
    params = yaml.load(TEMPLATE.read_text(), Loader=_Loader)["Parameters"]
    assert "sap_b1" in params["ErpSystem"]["AllowedValues"]
    assert "company_db" in params["ErpSecretName"]["Description"]
    assert "sap_b1" in SIMS and "sap_b1" in ERPS
    stack = LocalStack(store="magento", erp="sap_b1", run_pollers=False, run_schedules=False, state_file=None)
    assert (stack.sim_names, stack.parameters["ErpSystem"]) == (["magento", "sap_b1"], "sap_b1")
    assert default_seed()["sap_b1"] == sap_b1.sample_seed()


def test_the_local_settings_name_codes_the_seeded_sim_has(deployment: Settings) -> None:
    check_settings(deployment)  # every flow's routes and each connection's own settings
    conn = deployment.effective_connections()["sap_b1"]
    assert (conn.kind, conn.role, conn.secret) == ("sap_b1", "erp", "erpsync/sap_b1")
    own = SapB1Settings.model_validate(conn.settings)
    seed = sap_b1.sample_seed()
    assert {own.freight_expense_code, own.tax_expense_code} <= set(seed["expense_codes"])
    assert own.tax_code in seed["tax_codes"]
    assert all(
        own.warehouse_code in {r["WarehouseCode"] for r in i["ItemWarehouseInfoCollection"]} for i in seed["items"]
    )
    assert local_settings("magento", "acumatica").get("connections") is None  # the other ERPs as before
    assert [(s, t) for s, t, _ in check_routes(catalog.get("orders"), deployment)] == [("magento", "sap_b1")]


def test_the_plugin_serves_what_the_system_has_ports_for(pair: Pair) -> None:
    plugin = registry.plugin("sap_b1")
    for entity, directions in plugin.serves.items():
        for direction in directions:
            assert pair.sap.port(entity, direction) is not None
    assert pair.sap.client.name == "sap_b1" and pair.sap.client.version == "v1"


def test_a_refused_secret_is_read_again_before_it_fails(pair: Pair) -> None:
    plugin = registry.plugin("sap_b1")
    stale = plugin.secret_model.model_validate({**sim_credentials("sap_b1", "http://testserver"), "password": "old"})
    fresh = plugin.secret_model.model_validate(sim_credentials("sap_b1", "http://testserver"))
    system = plugin.connect(Wiring("sap_b1", stale, SapB1Settings, reload_secret=lambda: fresh))
    assert isinstance(system, SapB1System)
    system.client.http.close()
    system.client.http = pair.bhttp
    system.client.session()
    assert system.client.password == sap_b1.PASSWORD


def test_a_magento_order_reaches_b1_once_through_the_connected_pair(pair: Pair) -> None:
    order = pair.place()
    booked = pair.book(order)
    assert D(str(booked["DocTotal"])) == D(str(order["base_grand_total"]))
    assert [e["ExpenseCode"] for e in booked["DocumentAdditionalExpenses"]] == [1, 2]
    assert {ln["WarehouseCode"] for ln in booked["DocumentLines"]} == {"01"}
    again = pair.orders.sync(ChangeNotice(source="magento", entity="order", id=str(order["entity_id"])))
    assert again.outcome == "skipped" and len(pair.sim.records["Orders"]) == 1


# -- deliveries -> store shipments ------------------------------------------------------------------


def shipments_of(pair: Pair, order: dict[str, Any]) -> list[dict[str, Any]]:
    rows = pair.magento.client.get("/V1/shipments", params={"searchCriteria[pageSize]": "50"})["items"]
    return [r for r in rows if r["order_id"] == order["entity_id"]]


def ship(pair: Pair, id: str) -> Any:
    return pair.shipments.sync(ChangeNotice(source="sap_b1", entity="shipment", id=id))


def test_a_delivery_becomes_the_magento_shipment_with_its_tracking_number_once(pair: Pair) -> None:
    since = datetime.now(UTC).replace(microsecond=0)
    order = pair.place()
    booked = pair.book(order)
    delivery = pair.clerk.deliver(booked["DocEntry"], "1Z999AA10123456784")
    [notice] = [n for page in pair.sap.port("shipment", "source").changes(since) for n in page.notices]
    assert (notice.entity, notice.id) == ("shipment", str(delivery["DocEntry"]))
    result = ship(pair, notice.id)
    assert result.outcome == "synced", result.message
    [shipment] = shipments_of(pair, order)
    assert [t["track_number"] for t in shipment["tracks"]] == ["1Z999AA10123456784"]
    by_line = {i["order_item_id"]: i["qty"] for i in shipment["items"]}
    assert by_line == {i["item_id"]: i["qty_ordered"] for i in order["items"] if not i.get("parent_item_id")}
    assert ship(pair, notice.id).outcome == "skipped"  # the run again changes nothing
    assert len(shipments_of(pair, order)) == 1


def test_each_partial_delivery_ships_its_own_lines(pair: Pair) -> None:
    order = pair.place([mo.CartLine("24-MB01", 3), mo.CartLine("24-WG084", 1)])
    booked = pair.book(order)
    first = pair.clerk.deliver(booked["DocEntry"], "TRACK-1", lines={0: 1})
    rest = pair.clerk.deliver(booked["DocEntry"], "TRACK-2")
    assert ship(pair, str(first["DocEntry"])).outcome == "synced"
    assert ship(pair, str(rest["DocEntry"])).outcome == "synced"
    made = sorted(shipments_of(pair, order), key=lambda r: r["entity_id"])
    assert [[t["track_number"] for t in m["tracks"]] for m in made] == [["TRACK-1"], ["TRACK-2"]]
    assert [sorted(float(i["qty"]) for i in m["items"]) for m in made] == [[1.0], [1.0, 2.0]]


def test_deliveries_the_store_must_not_get_are_filtered(pair: Pair) -> None:
    pair.bhttp.post("/_sim/seed", json={"business_partners": [{"CardCode": "C-PHONE", "CardName": "Phone buyer"}]})
    phone = {
        "CardCode": "C-PHONE",
        "DocDueDate": "2025-03-01",
        "DocumentLines": [{"ItemCode": "24-MB01", "Quantity": 1}],
    }
    made = pair.clerk.request("POST", "Orders", json=phone)
    foreign = pair.clerk.deliver(made["DocEntry"], "T-PHONE")
    result = ship(pair, str(foreign["DocEntry"]))
    assert result.outcome == "filtered" and "covers no order from magento" in result.message
    booked = pair.book(pair.place())
    delivery = pair.clerk.deliver(booked["DocEntry"], "T-CANCEL")
    pair.sim.records["DeliveryNotes"][delivery["DocEntry"]]["Cancelled"] = "tYES"  # cancelled in the client
    result = ship(pair, str(delivery["DocEntry"]))
    assert result.outcome == "filtered" and "is cancelled" in result.message
    with pytest.raises(ValidationFailed, match="delivery id 'DN-1' is not a DocEntry"):
        pair.sap.port("shipment", "source").get("DN-1")


def test_a_delivery_sap_never_updated_is_found_by_its_creation_day(pair: Pair) -> None:
    booked = pair.book(pair.place())
    delivery = pair.clerk.deliver(booked["DocEntry"], "T-NEW")
    row = pair.sim.records["DeliveryNotes"][delivery["DocEntry"]]
    row["UpdateDate"] = row["UpdateTime"] = None  # as SAP leaves some creates (SYSTEMS-NOTES §3.5)
    since = datetime.now(UTC)
    pages = list(pair.sap.port("shipment", "source").changes(since))
    assert [n.id for p in pages for n in p.notices] == [str(delivery["DocEntry"])]
    assert pages[-1].checkpoint is None  # nothing stamped with a time was read: the cursor stays


# -- invoices -> store invoices with the e-mail ------------------------------------------------------


def invoices_of(pair: Pair, order: dict[str, Any]) -> list[dict[str, Any]]:
    rows = pair.magento.client.get("/V1/invoices", params={"searchCriteria[pageSize]": "50"})["items"]
    return [r for r in rows if r["order_id"] == order["entity_id"]]


def bill(pair: Pair, id: str) -> Any:
    return pair.invoices.sync(ChangeNotice(source="sap_b1", entity="invoice", id=id))


def test_the_invoice_of_a_delivery_reaches_magento_with_the_e_mail_and_completes_the_order(pair: Pair) -> None:
    since = datetime.now(UTC).replace(microsecond=0)
    order = pair.place()
    booked = pair.book(order)
    delivery = pair.clerk.deliver(booked["DocEntry"], "1Z999AA10123456784")
    assert ship(pair, str(delivery["DocEntry"])).outcome == "synced"
    made = pair.clerk.invoice(delivery["DocEntry"])
    [notice] = [n for page in pair.sap.port("invoice", "source").changes(since) for n in page.notices]
    assert (notice.entity, notice.id) == ("invoice", str(made["DocEntry"]))
    result = bill(pair, notice.id)
    assert result.outcome == "synced", result.message
    [store_invoice] = invoices_of(pair, order)
    assert store_invoice["email_sent"] == 1  # MagentoSettings.notify_invoice, on in the SAP local settings
    assert D(str(store_invoice["grand_total"])) == D(str(order["grand_total"]))
    assert pair.magento.client.get(f"/V1/orders/{order['entity_id']}")["state"] == "complete"
    assert bill(pair, notice.id).outcome == "skipped"  # the run again changes nothing
    assert ship(pair, str(delivery["DocEntry"])).outcome == "skipped"
    assert len(invoices_of(pair, order)) == 1 and len(shipments_of(pair, order)) == 1
    assert len(pair.sim.records["Invoices"]) == 1


def test_an_invoice_of_the_order_itself_and_a_store_that_does_not_e_mail(
    bindings_table: str, deployment: Settings
) -> None:
    doc = local_settings("magento", "sap_b1")
    del doc["connections"]["magento"]  # Magento's own defaults: notify_invoice off
    pair = Pair(bindings_table, Settings(**doc))
    order = pair.place([mo.CartLine("24-MB01", 2)])
    booked = pair.book(order)
    made = pair.clerk.invoice(order_docentry=booked["DocEntry"])
    invoice = pair.sap.port("invoice", "source").get(str(made["DocEntry"]))
    assert [(ln.order_key, ln.line_nbr, ln.qty) for ln in invoice.lines] == [(f"Orders/{booked['DocEntry']}", "0", 2)]
    assert bill(pair, str(made["DocEntry"])).outcome == "synced"
    [store_invoice] = invoices_of(pair, order)
    assert store_invoice["email_sent"] == 0


def test_an_invoice_line_of_a_delivery_names_the_order_line_it_was_delivered_from(pair: Pair) -> None:
    booked = pair.book(pair.place([mo.CartLine("24-MB01", 3), mo.CartLine("24-WG084", 1)]))
    first = pair.clerk.deliver(booked["DocEntry"], "T-1", lines={1: 1})
    second = pair.clerk.deliver(booked["DocEntry"], "T-2", lines={0: 3})
    made = pair.clerk.invoice(second["DocEntry"])
    source = pair.sap.port("invoice", "source")
    before = pair.sap.client.requests_made
    invoice = source.get(str(made["DocEntry"]))
    assert [(ln.order_number, ln.line_nbr, ln.qty) for ln in invoice.lines] == [(str(booked["DocEntry"]), "0", 3)]
    assert pair.sap.client.requests_made - before == 2  # the invoice, then its delivery
    source.get(str(made["DocEntry"]))
    assert pair.sap.client.requests_made - before == 3  # the delivery's lines are kept
    assert invoice.released and invoice.amount == D(str(made["DocTotal"])).quantize(D("0.01"))
    pair.sim.records["Invoices"][made["DocEntry"]]["DocCurrency"] = "$"  # a company that calls USD "$"
    dollars = SapB1Invoices(pair.sap.client, "sap_b1", lambda: SapB1Settings(currency_codes={"USD": "$"}))
    dollars.CACHED_DELIVERIES = 1  # keeps one delivery's lines
    other = pair.clerk.invoice(first["DocEntry"])
    before = pair.sap.client.requests_made
    assert dollars.get(str(made["DocEntry"])).currency == "USD"
    assert [ln.line_nbr for ln in dollars.get(str(other["DocEntry"])).lines] == ["1"]
    assert dollars.get(str(made["DocEntry"])).lines == invoice.lines
    assert pair.sap.client.requests_made - before == 6  # each read read its delivery again
