"""Webhook bodies: what each source sends becomes change notices, or a clear refusal."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from erpsync.systems.acumatica import webhooks as acumatica
from erpsync.systems.magento import webhooks as magento

FIXTURES = Path(__file__).parent.parent / "fixtures"


def test_acumatica_push_sample_of_a_stock_item_rings_the_products_flow() -> None:
    body = json.loads((FIXTURES / "acumatica" / "push_notification_example.json").read_text())
    [notice] = acumatica.parse(body, now=datetime(2017, 5, 5, tzinfo=UTC))
    assert (notice.entity, notice.id) == ("product", "AACOMPUT01")  # "Stock Items: Last Modified Date"


def test_acumatica_push_rows_with_quantities_or_prices_ring_stock_and_prices() -> None:
    body = json.loads((FIXTURES / "acumatica" / "push_notification_example.json").read_text())
    body["Inserted"] = [
        {"InventoryID": "AALEGO500", "WarehouseID": "WHOLESALE", "QtyOnHand": 40},
        {"InventoryID": "AALEGO500", "PriceType": "Base", "Price": 19.99},
        {"CategoryID": 12, "Description": "Toys"},
        {"AttributeID": "COLOR"},
        {"Note": "nothing erpsync knows"},
    ]
    notices = acumatica.parse(body, now=datetime(2017, 5, 5, tzinfo=UTC))
    assert [(n.entity, n.id) for n in notices] == [
        ("stock", "AALEGO500"),
        ("price", "AALEGO500"),
        ("category", "12"),
        ("attribute", "COLOR"),
    ]


def test_acumatica_push_of_rows_it_cannot_place_is_refused() -> None:
    body = json.loads((FIXTURES / "acumatica" / "push_notification_example.json").read_text())
    body["Inserted"] = [{"Note": "nothing erpsync knows"}]
    with pytest.raises(acumatica.BadPush, match="no ShipmentNbr"):
        acumatica.parse(body, now=datetime(2017, 5, 5, tzinfo=UTC))


def test_acumatica_push_for_shipments_and_invoices() -> None:
    body = json.loads((FIXTURES / "acumatica" / "push_notification_example.json").read_text())
    body["Inserted"] = [
        {"ShipmentNbr": "000042", "Status": "Confirmed"},
        {"ReferenceNbr": "INV0007", "Type": "Invoice"},
    ]
    notices = acumatica.parse(body, now=datetime(2017, 5, 5, tzinfo=UTC))
    assert [(n.entity, n.id) for n in notices] == [("shipment", "000042"), ("invoice", "INV0007")]
    assert notices[0].event_id == f"{body['Id']}|{body['Query']}|000042"
    assert notices[0].occurred_at is not None and notices[0].occurred_at.year == 2017


def test_acumatica_push_out_of_window_is_refused_as_a_replay() -> None:
    body = json.loads((FIXTURES / "acumatica" / "push_notification_example.json").read_text())
    with pytest.raises(acumatica.BadPush, match="window"):
        acumatica.parse(body, now=datetime(2026, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ([], "JSON object"),
        ({"Inserted": []}, "missing"),
        ({"Query": "q", "Id": "1", "Inserted": "x"}, "list of objects"),
    ],
)
def test_acumatica_bad_bodies_name_the_problem(body: object, problem: str) -> None:
    with pytest.raises(acumatica.BadPush, match=problem):
        acumatica.parse(body)


def test_acumatica_token_is_checked() -> None:
    acumatica.verify("s3cret", {"x-erpsync-token": "s3cret"})
    with pytest.raises(acumatica.BadPush, match="does not match") as exc:
        acumatica.verify("s3cret", {"x-erpsync-token": "nope"})
    assert exc.value.status == 401
    with pytest.raises(acumatica.BadPush, match="missing"):
        acumatica.verify("s3cret", {})


def test_magento_cloudevent_and_commerce_webhook() -> None:
    ce = {
        "specversion": "1.0",
        "id": "evt-1",
        "type": "com.adobe.commerce.observer.sales_order_save_after",
        "data": {"value": {"entity_id": 3, "increment_id": "000000003", "updated_at": "2017-08-21 22:22:20"}},
    }
    [n] = magento.parse(ce, {})
    assert (n.source, n.entity, n.id, n.event_id) == ("magento", "order", "3", "evt-1")
    wh = {"eventName": "observer.sales_order_save_after", "data": {"order": {"entity_id": "7"}}}
    [m] = magento.parse(wh, {"x-erpsync-event-id": "abc"})
    assert (m.id, m.event_id) == ("7", "abc")
    [same] = magento.parse(wh, {})
    [again] = magento.parse(wh, {})
    assert same.event_id == again.event_id  # a redelivery without an id still de-duplicates


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("x", "JSON object"),
        ({"foo": 1}, "not a Magento webhook"),
        ({"eventName": "observer.catalog_product_save_after", "data": {}}, "not one erpsync handles"),
        ({"eventName": "observer.sales_order_save_after", "data": {}}, "no order record"),
        ({"eventName": "observer.sales_order_save_after", "data": {"order": {"x": 1}}}, "entity_id"),
        ({"eventName": "observer.sales_order_save_after", "data": {"order": {"entity_id": "1; drop"}}}, "number"),
        (
            {"eventName": "observer.sales_order_save_after", "data": {"order": {"entity_id": 1, "updated_at": "x"}}},
            "not a date",
        ),
    ],
)
def test_magento_bad_bodies_name_the_problem(body: object, problem: str) -> None:
    with pytest.raises(magento.BadWebhook, match=problem):
        magento.parse(body, {})


def test_magento_signature() -> None:
    body = b'{"a":1}'
    headers = {k.lower(): v for k, v in magento.sign("k", body, timestamp=1_000_000).items()}
    magento.verify("k", body, headers, now=1_000_100)
    with pytest.raises(magento.BadWebhook, match="does not match"):
        magento.verify("other", body, headers, now=1_000_100)
    with pytest.raises(magento.BadWebhook, match="does not match"):
        magento.verify("k", body + b" ", headers, now=1_000_100)
    with pytest.raises(magento.BadWebhook, match="window"):
        magento.verify("k", body, headers, now=1_000_000 + 301)
    with pytest.raises(magento.BadWebhook, match="missing"):
        magento.verify("k", body, {}, now=1_000_000)
