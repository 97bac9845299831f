"""Customers both ways, Magento <-> Acumatica, on both sims in-process and the bindings in moto.

Starts from the real payloads: Adobe's customer create response (tests/fixtures/magento) and
Acumatica's customer create request from the official Postman collection (tests/fixtures/acumatica).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from erpsync.errors import PermanentError
from erpsync.flows import catalog
from erpsync.flows.customers import CustomerRules
from erpsync.flows.sync import FlowContext
from erpsync.model import ChangeNotice
from erpsync.settings import Settings
from erpsync.state.bindings import Bindings
from tests.support.sims import SimSystems

FIXTURES = Path(__file__).parent.parent / "fixtures"


def magento_customer() -> dict[str, Any]:
    """Adobe's example customer (a create response), made ready to seed."""
    data = json.loads((FIXTURES / "magento" / "customer_create_response.json").read_text())
    return dict(data)


class Pair:
    """Both sims, both systems and the two customers flows between them."""

    def __init__(self, table: str, settings: Settings | None = None) -> None:
        sims = SimSystems()
        self.mhttp, self.ahttp, self.magento, self.acumatica = sims.mhttp, sims.ahttp, sims.magento, sims.acumatica
        self.settings = settings or Settings()
        self.bindings = Bindings(table)
        self.to_erp = self._rules("customers", "magento", "acumatica", self.magento, self.acumatica)
        self.to_store = self._rules("erp-customers", "acumatica", "magento", self.acumatica, self.magento)

    def _rules(self, flow: str, source: str, target: str, src: Any, tgt: Any) -> CustomerRules:
        ctx = FlowContext(
            spec=catalog.get(flow),
            source=source,
            target=target,
            source_port=src.port("customer", "source"),
            target_port=tgt.port("customer", "target"),
            bindings=self.bindings,
            settings=self.settings,
        )
        return CustomerRules(ctx)

    def writes(self) -> list[str]:
        """Every write both sims served (method and path), in order."""
        out = []
        for http in (self.mhttp, self.ahttp):
            rows = http.get("/_sim/requests").json()["requests"]
            out += [
                f"{r['method']} {r['path']}"
                for r in rows
                if r["method"] in ("POST", "PUT") and "/token" not in r["path"] and "/login" not in r["path"]
            ]
        return out

    def clear(self) -> None:
        self.mhttp.delete("/_sim/requests")
        self.ahttp.delete("/_sim/requests")

    def poll_both(self) -> list[str]:
        """One poll cycle of each flow from the start of time; the outcomes."""
        from datetime import UTC, datetime

        outcomes = []
        for rules, port in ((self.to_erp, self.magento), (self.to_store, self.acumatica)):
            pages = port.port("customer", "source").changes(datetime(2000, 1, 1, tzinfo=UTC))
            for page in pages:
                for n in page.notices:
                    outcomes.append(rules.sync(n).outcome)
        return outcomes


@pytest.fixture
def pair(bindings_table: str) -> Pair:
    return Pair(bindings_table)


def create_in_magento(pair: Pair, email: str = "jdoe@example.com", **over: Any) -> str:
    body = magento_customer()
    body.pop("id", None)
    body.update(email=email, **over)
    body["addresses"] = [
        {
            "firstname": body["firstname"],
            "lastname": body["lastname"],
            "street": ["123 Oak Ave"],
            "city": "Purchase",
            "region": {"region_code": "NY", "region": "New York"},
            "postcode": "10577",
            "country_id": "US",
            "telephone": "512-555-1111",
            "company": "Doe Ltd",
            "default_billing": True,
            "default_shipping": True,
        }
    ]
    saved = pair.magento.client.post("/V1/customers", {"customer": body})
    return str(saved["id"])


def test_a_new_magento_account_reaches_acumatica_once_and_stays_quiet(pair: Pair) -> None:
    mid = create_in_magento(pair)
    first = pair.to_erp.sync(ChangeNotice(source="magento", entity="customer", id=mid))
    assert first.outcome == "synced" and "created" in first.message
    found = pair.acumatica.port("customer", "target").find("jdoe@example.com")
    assert len(found) == 1
    erp = found[0]
    assert (erp.first_name, erp.last_name, erp.company, erp.phone) == ("Jane", "Doe", "Doe Ltd", "512-555-1111")
    assert erp.address is not None and erp.address.city == "Purchase" and erp.address.region_code == "NY"
    pair.clear()
    # two further poll cycles of both flows: nothing is written anywhere (no ping-pong)
    for _ in range(2):
        assert set(pair.poll_both()) <= {"skipped"}
    assert pair.writes() == []


def test_an_edit_in_acumatica_reaches_magento_and_its_echo_is_skipped(pair: Pair) -> None:
    mid = create_in_magento(pair)
    pair.to_erp.sync(ChangeNotice(source="magento", entity="customer", id=mid))
    [erp] = pair.acumatica.port("customer", "target").find("jdoe@example.com")
    pair.acumatica.client.put(
        "Customer",
        {"CustomerID": {"value": erp.source_id}, "MainContact": {"Phone1": {"value": "512-555-9999"}}},
    )
    pair.clear()
    back = pair.to_store.sync(ChangeNotice(source="acumatica", entity="customer", id=str(erp.source_id)))
    assert back.outcome == "synced", back.message
    magento = [
        f"{r['method']} {r['path']}"
        for r in pair.mhttp.get("/_sim/requests").json()["requests"]
        if "/token" not in r["path"]
    ]
    assert magento == [f"GET /rest/default/V1/customers/{mid}", f"PUT /rest/default/V1/customers/{mid}"]
    assert pair.magento.port("customer", "source").get(mid).phone == "512-555-9999"
    pair.clear()
    echo = pair.to_erp.sync(ChangeNotice(source="magento", entity="customer", id=mid))
    assert echo.outcome == "skipped" and "echo" in echo.message
    for _ in range(2):
        assert set(pair.poll_both()) <= {"skipped"}
    assert pair.writes() == []


def test_an_edit_in_magento_updates_the_linked_acumatica_customer(pair: Pair) -> None:
    mid = create_in_magento(pair)
    pair.to_erp.sync(ChangeNotice(source="magento", entity="customer", id=mid))
    current = pair.magento.client.get(f"/V1/customers/{mid}")
    current["lastname"] = "Doe-Smith"
    pair.magento.client.put(f"/V1/customers/{mid}", {"customer": current})
    pair.clear()
    again = pair.to_erp.sync(ChangeNotice(source="magento", entity="customer", id=mid))
    assert again.outcome == "synced" and "updated" in again.message
    [erp] = pair.acumatica.port("customer", "target").find("jdoe@example.com")
    assert erp.last_name == "Doe-Smith"
    assert [w for w in pair.writes() if w.startswith("PUT")] == ["PUT /entity/Default/24.200.001/Customer"]


def test_an_acumatica_customer_reaches_magento_with_its_addresses(pair: Pair) -> None:
    record = copy.deepcopy(json.loads((FIXTURES / "acumatica" / "request_customer_create.json").read_text()))
    record = record["request"]["body"]
    record["MainContact"] = {
        "Email": {"value": "Cust01@Example.com"},
        "FirstName": {"value": "Custumer"},
        "LastName": {"value": "01"},
        "Address": {"AddressLine1": {"value": "1 Main St"}, "City": {"value": "Austin"}, "Country": {"value": "US"}},
    }
    saved = pair.acumatica.client.put("Customer", record, expand="MainContact")
    cid = str(saved["CustomerID"]["value"])
    email = saved["MainContact"]["Email"]["value"]
    out = pair.to_store.sync(ChangeNotice(source="acumatica", entity="customer", id=cid))
    assert out.outcome == "synced", out.message
    [m] = pair.magento.port("customer", "target").find(email)
    assert m.email == email.lower()
    pair.clear()
    for _ in range(2):
        assert set(pair.poll_both()) <= {"skipped"}
    assert pair.writes() == []


def test_a_customer_on_both_sides_is_linked_not_duplicated(pair: Pair) -> None:
    mid = create_in_magento(pair)
    pair.acumatica.client.put(
        "Customer",
        {
            "CustomerID": {"value": "JDOE"},
            "CustomerName": {"value": "Jane Doe"},
            "MainContact": {"Email": {"value": "JDoe@Example.com"}, "FirstName": {"value": "Jane"}},
        },
    )
    out = pair.to_erp.sync(ChangeNotice(source="magento", entity="customer", id=mid))
    assert out.outcome == "synced" and "linked existing JDOE" in out.message
    assert len(pair.acumatica.port("customer", "target").find("jdoe@example.com")) == 1
    assert pair.bindings.find("customer", "magento", mid, "acumatica") == "JDOE"
    assert pair.bindings.find("customer", "email", "jdoe@example.com", "acumatica") == "JDOE"


def test_two_acumatica_customers_with_one_email_are_held_for_review(pair: Pair) -> None:
    mid = create_in_magento(pair)
    for cid in ("DUP1", "DUP2"):
        pair.acumatica.client.put(
            "Customer", {"CustomerID": {"value": cid}, "MainContact": {"Email": {"value": "jdoe@example.com"}}}
        )
    with pytest.raises(PermanentError) as err:
        pair.to_erp.sync(ChangeNotice(source="magento", entity="customer", id=mid))
    assert err.value.error_type == "conflict"
    assert "DUP1" in str(err.value) and "DUP2" in str(err.value) and "review" in str(err.value)


def test_both_sides_changed_the_owner_wins_and_the_loss_is_said(pair: Pair) -> None:
    mid = create_in_magento(pair)
    pair.to_erp.sync(ChangeNotice(source="magento", entity="customer", id=mid))
    [erp] = pair.acumatica.port("customer", "target").find("jdoe@example.com")
    pair.acumatica.client.put(
        "Customer", {"CustomerID": {"value": erp.source_id}, "MainContact": {"Phone1": {"value": "111"}}}
    )
    current = pair.magento.client.get(f"/V1/customers/{mid}")
    current["addresses"][0]["telephone"] = "222"
    pair.magento.client.put(f"/V1/customers/{mid}", {"customer": current})
    out = pair.to_erp.sync(ChangeNotice(source="magento", entity="customer", id=mid))
    assert out.outcome == "synced"
    assert "conflict: contact changed in acumatica lost to magento" in out.message
    [after] = pair.acumatica.port("customer", "target").find("jdoe@example.com")
    assert after.phone == "222"  # the store owns the contact fields by default


def test_an_erp_customer_made_for_a_guest_checkout_gets_no_store_account(pair: Pair) -> None:
    from erpsync.state.bindings import Binding

    pair.acumatica.client.put(
        "Customer", {"CustomerID": {"value": "WGUEST"}, "MainContact": {"Email": {"value": "guest@example.com"}}}
    )
    pair.bindings.put(Binding("customer", "guest", "WGUEST", "acumatica", "guest@example.com"))
    pair.clear()
    out = pair.to_store.sync(ChangeNotice(source="acumatica", entity="customer", id="WGUEST"))
    assert out.outcome == "filtered" and "guest" in out.message
    assert pair.magento.port("customer", "target").find("guest@example.com") == []
    assert pair.writes() == []


def test_customer_groups_map_to_price_and_customer_classes_both_ways(bindings_table: str) -> None:
    from erpsync.settings import CustomerSync

    settings = Settings(
        customers=CustomerSync(price_classes={"1": "RETAIL", "2": "WHOLESALE"}, customer_classes={"2": "WHOLESALE"})
    )
    pair = Pair(bindings_table, settings)
    mid = create_in_magento(pair, group_id=2)
    assert pair.to_erp.sync(ChangeNotice(source="magento", entity="customer", id=mid)).outcome == "synced"
    [erp] = pair.acumatica.port("customer", "target").find("jdoe@example.com")
    assert (erp.price_class, erp.customer_class) == ("WHOLESALE", "WHOLESALE")
    pair.acumatica.client.put("Customer", {"CustomerID": {"value": erp.source_id}, "PriceClassID": {"value": "RETAIL"}})
    back = pair.to_store.sync(ChangeNotice(source="acumatica", entity="customer", id=str(erp.source_id)))
    assert back.outcome == "synced", back.message
    assert pair.magento.client.get(f"/V1/customers/{mid}")["group_id"] == 1
    pair.clear()
    for _ in range(2):
        assert set(pair.poll_both()) <= {"skipped"}
    assert pair.writes() == []


def test_an_erp_customer_made_for_an_order_links_to_an_account_but_never_creates_one(pair: Pair) -> None:
    port = pair.acumatica.port("customer", "source")
    for email in ("noaccount@example.com", "jdoe@example.com"):
        pair.acumatica.client.put(
            "Customer", {"CustomerID": {"value": port.id_for(email)}, "MainContact": {"Email": {"value": email}}}
        )
    out = pair.to_store.sync(
        ChangeNotice(source="acumatica", entity="customer", id=port.id_for("noaccount@example.com"))
    )
    assert out.outcome == "filtered" and "made by erpsync for a store order" in out.message
    assert pair.magento.port("customer", "target").find("noaccount@example.com") == []
    mid = create_in_magento(pair)
    linked = pair.to_store.sync(ChangeNotice(source="acumatica", entity="customer", id=port.id_for("jdoe@example.com")))
    assert linked.outcome == "synced" and "linked existing" in linked.message
    assert pair.bindings.find("customer", "acumatica", port.id_for("jdoe@example.com"), "magento") == mid


def test_a_customer_made_by_an_order_between_the_lookup_and_the_create_is_brought_in_step(pair: Pair) -> None:
    """The orders flow makes the ERP customer (from the order: an older name and phone) just after
    the customers flow looked for it and found none: the customers flow's create meets that customer
    (same id, not overwritten by a create) and must bring it in step, not bind it as if it held what
    was sent (then both sides' hashes say "in step" and the edit never arrives)."""
    mid = create_in_magento(pair)
    port = pair.acumatica.port("customer", "target")
    cid = port.id_for("jdoe@example.com")
    pair.acumatica.client.put(
        "Customer",
        {
            "CustomerID": {"value": cid},
            "CustomerName": {"value": "Jane Olderson"},
            "MainContact": {
                "Email": {"value": "jdoe@example.com"},
                "FirstName": {"value": "Jane"},
                "LastName": {"value": "Olderson"},
                "Phone1": {"value": "512-555-0000"},
            },
        },
    )
    real_find = port.find
    port.find = lambda email: []  # type: ignore[method-assign]  # the lookup ran before that create
    try:
        out = pair.to_erp.sync(ChangeNotice(source="magento", entity="customer", id=mid))
    finally:
        port.find = real_find  # type: ignore[method-assign]
    assert out.outcome == "synced" and f"linked existing {cid}" in out.message
    erp = port.get(cid)
    assert (erp.last_name, erp.phone) == ("Doe", "512-555-1111")
    assert pair.bindings.find("customer", "magento", mid, "acumatica") == cid
    pair.clear()
    for _ in range(2):
        assert set(pair.poll_both()) <= {"skipped"}
    assert pair.writes() == []


def test_an_account_registered_between_the_lookup_and_the_create_is_linked_not_parked(pair: Pair) -> None:
    """The shopper registers in Magento just after the ERP-to-store flow looked for the email: the
    create meets Magento's duplicate-email answer (400), and the account is linked and brought in
    step instead of the record being parked as invalid."""
    record = copy.deepcopy(json.loads((FIXTURES / "acumatica" / "request_customer_create.json").read_text()))
    record = record["request"]["body"]
    record["MainContact"] = {
        "Email": {"value": "jdoe@example.com"},
        "FirstName": {"value": "Jane"},
        "LastName": {"value": "Doe"},
        "Phone1": {"value": "512-555-2222"},
    }
    saved = pair.acumatica.client.put("Customer", record, expand="MainContact")
    cid = str(saved["CustomerID"]["value"])
    mid = create_in_magento(pair)
    port = pair.magento.port("customer", "target")
    real_find, looked = port.find, []

    def find_once_too_early(email: str) -> Any:
        looked.append(email)
        return [] if len(looked) == 1 else real_find(email)

    port.find = find_once_too_early  # type: ignore[method-assign]
    out = pair.to_store.sync(ChangeNotice(source="acumatica", entity="customer", id=cid))
    assert out.outcome == "synced" and f"linked existing {mid}" in out.message, out.message
    assert len(real_find("jdoe@example.com")) == 1
    assert pair.bindings.find("customer", "acumatica", cid, "magento") == mid
