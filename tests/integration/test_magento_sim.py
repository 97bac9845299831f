"""The Magento sim behaves like Magento: auth, searchCriteria, ship/invoice rules, order state."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from sandbox.sims.magento import create_app
from sandbox.sims.magento_orders import CartLine, build_order, sample_catalog, sample_customer

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

BASE = "/rest/default/V1"
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "magento" / "order_get_V1_orders_3.json"


class Api:
    def __init__(self) -> None:
        self.app = create_app()
        self.client = TestClient(self.app)
        token = self.client.post(f"{BASE}/integration/admin/token", json={"username": "admin", "password": "admin123"})
        self.auth = {"Authorization": f"Bearer {token.json()}"}

    def get(self, path: str, **params: str) -> Any:
        return self.client.get(f"{BASE}{path}", params=params, headers=self.auth)

    def post(self, path: str, body: Any) -> Any:
        return self.client.post(f"{BASE}{path}", json=body, headers=self.auth)


@pytest.fixture
def api() -> Api:
    return Api()


def seed_fixture(api: Api) -> dict[str, Any]:
    seeded = api.client.post("/_sim/seed", json={"orders": [json.loads(FIXTURE.read_text())]})
    assert seeded.status_code == 200
    return seeded.json()


def criteria(groups: list[list[tuple[str, str, str]]], **extra: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for g, group in enumerate(groups):
        for f, (fld, value, cond) in enumerate(group):
            key = f"searchCriteria[filter_groups][{g}][filters][{f}]"
            params.update({f"{key}[field]": fld, f"{key}[value]": value, f"{key}[condition_type]": cond})
    params.update({f"searchCriteria[{k}]": v for k, v in extra.items()})
    return params


def test_auth(api: Api) -> None:
    anonymous = api.client.get(f"{BASE}/orders/3")
    assert anonymous.status_code == 401
    assert anonymous.json() == {
        "message": "The consumer isn't authorized to access %resources.",
        "parameters": {"resources": "Magento_Sales::actions_view"},
    }
    assert api.client.get(f"{BASE}/orders/3", headers={"Authorization": "Bearer nope"}).status_code == 401
    bad = api.client.post(f"{BASE}/integration/admin/token", json={"username": "admin", "password": "wrong"})
    assert bad.status_code == 401 and "sign-in" in bad.json()["message"]
    seed_fixture(api)
    for prefix in ("/rest/V1", "/rest/all/V1", "/rest/default/V1"):
        assert api.client.get(f"{prefix}/orders/3", headers=api.auth).status_code == 200
    assert api.get("/orders/999").status_code == 404
    assert api.get("/orders/999").json()["message"].startswith("The entity that was requested doesn't exist")
    assert api.get("/nowhere").status_code == 404
    bad_json = api.client.post(f"{BASE}/orders", content=b"{", headers=api.auth)
    assert bad_json.status_code == 400 and "message" in bad_json.json()
    assert api.post("/orders", {"nope": 1}).status_code == 400
    assert api.post("/order/3/ship", {"items": "x"}).status_code == 400
    assert api.post("/order/3/ship", {"items": [{"order_item_id": "x", "qty": 1}]}).status_code == 400
    assert api.get("/orders", **{"searchCriteria[pageSize]": "abc"}).status_code == 400


def test_search_criteria_semantics(api: Api) -> None:
    catalog = sample_catalog()
    customer = sample_customer()
    orders = [
        build_order(catalog, [CartLine("24-MB01", n + 1)], customer=customer, increment_id=f"10000000{n}")
        for n in range(5)
    ]
    for n, order in enumerate(orders):
        order["updated_at"] = f"2024-01-0{n + 1} 10:00:00"
        order["status"] = "pending" if n % 2 == 0 else "processing"
    api.client.post("/_sim/seed", json={"orders": orders})
    # OR within a group
    found = api.get("/orders", **criteria([[("increment_id", "100000001", "eq"), ("increment_id", "100000003", "eq")]]))
    assert sorted(o["increment_id"] for o in found.json()["items"]) == ["100000001", "100000003"]
    # AND across groups
    both = criteria([[("status", "pending", "eq")], [("updated_at", "2024-01-02 00:00:00", "gt")]])
    assert [o["increment_id"] for o in api.get("/orders", **both).json()["items"]] == ["100000002", "100000004"]
    # in / like / nin / sort / paging
    inn = api.get("/orders", **criteria([[("increment_id", "100000000,100000004", "in")]])).json()
    assert inn["total_count"] == 2
    assert api.get("/orders", **criteria([[("customer_email", "RONI%", "like")]])).json()["total_count"] == 5
    assert api.get("/orders", **criteria([[("increment_id", "100000000,100000004", "nin")]])).json()["total_count"] == 3
    assert api.get("/orders", **criteria([[("coupon_code", "", "null")]])).json()["total_count"] == 5
    paged = criteria([], **{"pageSize": "2", "currentPage": "2", "sortOrders][0][field": "updated_at"})
    paged["searchCriteria[sortOrders][0][direction]"] = "DESC"
    page2 = api.get("/orders", **paged).json()
    assert page2["total_count"] == 5 and [o["increment_id"] for o in page2["items"]] == ["100000002", "100000001"]
    paged["searchCriteria[currentPage]"] = "9"  # past the last page: Magento answers the last page
    assert [o["increment_id"] for o in api.get("/orders", **paged).json()["items"]] == ["100000000"]
    camel = {
        "searchCriteria[filterGroups][0][filters][0][field]": "increment_id",
        "searchCriteria[filterGroups][0][filters][0][value]": "100000002",
        "searchCriteria[filterGroups][0][filters][0][conditionType]": "gteq",
    }
    assert api.get("/orders", **camel).json()["total_count"] == 3


def test_keyset_search_on_updated_at_and_entity_id(api: Api) -> None:
    """The keyset a poll pages by: (updated_at gt T OR entity_id gt I) AND updated_at gteq T, sorted
    by both; customers are searched by their entity_id column (the record shows it as ``id``)."""
    catalog, customer = sample_catalog(), sample_customer()
    stamps = ["2024-01-01 10:00:00", "2024-01-01 10:00:01", "2024-01-01 10:00:01", "2024-01-01 10:00:01"]
    orders = [build_order(catalog, [CartLine("24-MB01")], customer=customer) for _ in stamps]
    for order, stamp in zip(orders, stamps, strict=True):
        order["updated_at"] = stamp
    ids = [o["entity_id"] for o in api.client.post("/_sim/seed", json={"orders": orders}).json()["orders"]]
    keyset = criteria(
        [
            [("updated_at", "2024-01-01 10:00:01", "gt"), ("entity_id", str(ids[1]), "gt")],
            [("updated_at", "2024-01-01 10:00:01", "gteq")],
        ],
        pageSize="10",
        currentPage="1",
    )
    keyset.update(
        {
            "searchCriteria[sortOrders][0][field]": "updated_at",
            "searchCriteria[sortOrders][0][direction]": "ASC",
            "searchCriteria[sortOrders][1][field]": "entity_id",
            "searchCriteria[sortOrders][1][direction]": "DESC",
        }
    )
    found = api.get("/orders", **keyset).json()
    assert found["total_count"] == 2 and [o["entity_id"] for o in found["items"]] == [ids[3], ids[2]]
    same = criteria([[("updated_at", "2024-01-01 10:00:01", "eq")], [("entity_id", str(ids[1]), "gt")]])
    assert sorted(o["entity_id"] for o in api.get("/orders", **same).json()["items"]) == [ids[2], ids[3]]
    people = [sample_customer() | {"email": f"k{n}@example.com"} for n in range(3)]
    cids = [c["id"] for c in api.client.post("/_sim/seed", json={"customers": people}).json()["customers"]]
    by_column = criteria([[("entity_id", str(cids[0]), "gt")]])
    by_column["searchCriteria[sortOrders][0][field]"] = "entity_id"
    by_column["searchCriteria[sortOrders][0][direction]"] = "DESC"
    rows = api.get("/customers/search", **by_column).json()["items"]
    assert [r["id"] for r in rows] == [cids[2], cids[1]] and all("entity_id" not in r for r in rows)


def test_ship_partial_over_and_state(api: Api) -> None:
    seed_fixture(api)
    # a configurable is shipped by its child id (as in shipment_create_payload.json); qty lands on both lines
    first = api.post("/order/3/ship", {"items": [{"order_item_id": 11, "qty": 1}], "tracks": []})
    assert first.status_code == 200 and first.json() == "1"
    order = api.get("/orders/3").json()
    shipped = {it["item_id"]: it["qty_shipped"] for it in order["items"]}
    assert shipped[10] == 1 and shipped[11] == 1 and shipped[3] == 0
    assert (order["state"], order["status"]) == ("processing", "processing")
    over = api.post("/order/3/ship", {"items": [{"order_item_id": 10, "qty": 1}]})
    assert over.status_code == 400 and "invalid quantity" in over.json()["message"]
    unknown = api.post("/order/3/ship", {"items": [{"order_item_id": 999, "qty": 1}]})
    assert unknown.status_code == 400
    virtual = api.post("/order/3/ship", {"items": [{"order_item_id": 4, "qty": 1}]})
    assert virtual.status_code == 400
    # a bundle parent id ships its children
    assert api.post("/order/3/ship", {"items": [{"order_item_id": 5, "qty": 1}]}).status_code == 200
    order = api.get("/orders/3").json()
    assert all(it["qty_shipped"] == 1 for it in order["items"] if it["item_id"] in (5, 6, 7, 8, 9))
    # empty items: everything left (the tee); the downloadable is never shipped
    rest = api.post(
        "/order/3/ship", {"items": [], "tracks": [{"track_number": "1Z", "carrier_code": "ups", "title": "UPS"}]}
    )
    assert rest.status_code == 200
    shipment = api.get(f"/shipment/{rest.json()}").json()
    assert [i["order_item_id"] for i in shipment["items"]] == [3]
    assert shipment["tracks"][0]["track_number"] == "1Z" and shipment["tracks"][0]["order_id"] == 3
    assert api.post("/order/3/ship", {}).status_code == 400
    assert api.get("/orders/3").json()["state"] == "processing"  # nothing invoiced yet

    # invoice in two parts; the second one completes the order
    part = api.post("/order/3/invoice", {"capture": True, "items": [{"order_item_id": 3, "qty": 1}]})
    assert part.status_code == 200
    first_invoice = api.get(f"/invoices/{part.json()}").json()
    assert (
        first_invoice["subtotal"] == 22 and first_invoice["shipping_amount"] == 5 and first_invoice["grand_total"] == 27
    )
    assert api.post("/order/3/invoice", {"items": [{"order_item_id": 3, "qty": 1}]}).status_code == 400
    last = api.post("/order/3/invoice", {"capture": True, "items": []})
    assert last.status_code == 200
    order = api.get("/orders/3").json()
    assert order["total_invoiced"] == 165 and order["total_paid"] == 165 and order["payment"]["amount_paid"] == 165
    assert (order["state"], order["status"]) == ("complete", "complete")
    invoices = api.get("/invoices", **criteria([[("order_id", "3", "eq")]])).json()
    assert invoices["total_count"] == 2 and sum(i["grand_total"] for i in invoices["items"]) == 165


def test_canceled_order_cannot_ship_or_invoice(api: Api) -> None:
    seed_fixture(api)
    assert (
        api.post("/orders", {"entity": {"entity_id": 3, "state": "canceled", "status": "canceled"}}).status_code == 200
    )
    assert api.post("/order/3/ship", {"items": []}).status_code == 400
    refused = api.post("/order/3/invoice", {"items": []})
    assert refused.status_code == 400 and refused.json()["parameters"] == ["canceled"]


def test_order_save_assigns_ids_and_bumps_updated_at(api: Api) -> None:
    order = build_order(sample_catalog(), [CartLine("WS12", 1, "WS12-M-Blue")], customer=sample_customer())
    first = api.post("/orders", {"entity": order}).json()
    second = api.post("/orders", {"entity": order}).json()
    assert first["entity_id"] != second["entity_id"] and first["increment_id"] != second["increment_id"]
    first_ids = [it["item_id"] for it in first["items"]]
    second_ids = [it["item_id"] for it in second["items"]]
    assert not set(first_ids) & set(second_ids)
    assert second["items"][1]["parent_item_id"] == second_ids[0]
    again = api.post("/orders", {"entity": {"entity_id": first["entity_id"], "status": "fraud"}}).json()
    assert again["updated_at"] > first["updated_at"] and again["status"] == "fraud"
    assert api.post(f"/orders/{first['entity_id']}/comments", {"statusHistory": {"comment": "hi"}}).json() is True
    assert api.get(f"/orders/{first['entity_id']}/comments").json()["total_count"] == 1


def test_customers_and_products(api: Api) -> None:
    created = api.post("/customers", {"customer": sample_customer(), "password": "Secret123!"})
    assert created.status_code == 200
    duplicate = api.post("/customers", {"customer": sample_customer()})
    assert duplicate.status_code == 400
    assert (
        duplicate.json()["message"] == "A customer with the same email address already exists in an associated website."
    )
    cid = created.json()["id"]
    updated = api.client.put(
        f"{BASE}/customers/{cid}", json={"customer": {**created.json(), "lastname": "Smith"}}, headers=api.auth
    )
    assert updated.status_code == 200 and updated.json()["lastname"] == "Smith"
    missing = api.get("/customers/999")
    assert missing.status_code == 404 and missing.json()["parameters"] == {"fieldName": "customerId", "fieldValue": 999}
    search = api.get("/customers/search", **criteria([[("email", "roni_cost@example.com", "eq")]])).json()
    assert search["total_count"] == 1
    for product in sample_catalog():
        assert api.post("/products", {"product": product}).status_code == 200
    upsert = api.post("/products", {"product": {"sku": "24-MB01", "price": 40}}).json()
    assert upsert["price"] == 40 and upsert["name"] == "Joust Duffle Bag"
    assert api.get("/products/24-MB01").json()["price"] == 40
    configurables = api.get("/products", **criteria([[("type_id", "configurable", "eq")]])).json()
    assert configurables["total_count"] == 2


def test_control_reset_and_faults(api: Api) -> None:
    seed_fixture(api)
    api.client.post("/_sim/faults", json={"error_rate": 1.0})
    failed = api.get("/orders/3")
    assert failed.status_code == 500 and failed.json() == {"message": "An error has occurred."}
    api.client.delete("/_sim/faults")
    assert api.client.post("/_sim/seed", json={"orders": [{"entity_id": 5}]}).status_code == 400
    assert api.client.post("/_sim/reset").status_code == 204
    assert api.get("/orders/3").status_code == 401  # tokens are forgotten too


def _new_order(**kw: Any) -> dict[str, Any]:
    return build_order(sample_catalog(), [CartLine("24-MB01", 1)], customer=sample_customer(), **kw)


def test_orders_after_a_seeded_number_get_fresh_increment_ids(api: Api) -> None:
    # the fixture is entity 3, "000000003": the next orders used to be numbered 1, 2, 3 (entity 6
    # then had entity 3's number) because an explicit number did not move the counter
    assert seed_fixture(api)["orders"][0]["increment_id"] == "000000003"
    saved = [api.post("/orders", {"entity": _new_order()}).json() for _ in range(4)]
    assert [o["entity_id"] for o in saved] == [4, 5, 6, 7]
    assert [o["increment_id"] for o in saved] == ["000000004", "000000005", "000000006", "000000007"]
    seeded = api.client.post("/_sim/seed", json={"orders": [_new_order(increment_id="100000041")]}).json()
    assert seeded["orders"][0]["increment_id"] == "100000041"
    assert api.post("/orders", {"entity": _new_order()}).json()["increment_id"] == "100000042"
    numbers = [o["increment_id"] for o in api.get("/orders").json()["items"]]
    assert len(numbers) == len(set(numbers)) == 7


def test_a_taken_increment_id_is_refused_like_magento(api: Api) -> None:
    seed_fixture(api)
    before = api.get("/orders").json()["total_count"]
    taken = api.post("/orders", {"entity": _new_order(increment_id="000000003")})
    assert taken.status_code == 400
    assert taken.json() == {"message": "Unique constraint violation found"}
    assert api.get("/orders").json()["total_count"] == before  # nothing saved
    other_store = api.post("/orders", {"entity": {**_new_order(increment_id="000000003"), "store_id": 2}})
    assert other_store.status_code == 200  # the unique key is (increment_id, store_id)
    in_seed = api.client.post("/_sim/seed", json={"orders": [_new_order(increment_id="000000003")]})
    assert in_seed.status_code == 400 and "Unique constraint violation found" in in_seed.json()["error"]


def test_updating_an_order_keeps_or_changes_its_own_number(api: Api) -> None:
    seed_fixture(api)
    again = api.post("/orders", {"entity": json.loads(FIXTURE.read_text())})  # the same order saved again
    assert again.status_code == 200 and again.json()["entity_id"] == 3 and again.json()["increment_id"] == "000000003"
    status = api.post("/orders", {"entity": {"entity_id": 3, "increment_id": "000000003", "status": "holded"}})
    assert status.status_code == 200 and status.json()["status"] == "holded"
    other = api.post("/orders", {"entity": _new_order()}).json()
    steal = api.post("/orders", {"entity": {"entity_id": other["entity_id"], "increment_id": "000000003"}})
    assert steal.status_code == 400 and steal.json()["message"] == "Unique constraint violation found"
    assert api.get(f"/orders/{other['entity_id']}").json()["increment_id"] == other["increment_id"]  # unchanged
    moved = api.post("/orders", {"entity": {"entity_id": 3, "increment_id": "000000777"}})
    assert moved.status_code == 200 and moved.json()["increment_id"] == "000000777"
    reuse = api.post("/orders", {"entity": _new_order(increment_id="000000003")})  # its old number is free again
    assert reuse.status_code == 200 and reuse.json()["entity_id"] != 3
    assert api.post("/orders", {"entity": _new_order()}).json()["increment_id"] == "000000778"
