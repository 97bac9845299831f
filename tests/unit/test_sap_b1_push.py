"""SAP Business One's push (``systems/sap_b1/webhooks.py``): the body erpsync defines for what the
``SBO_SP_PostTransactionNotice`` procedure sees, turned into the notices the polls would make, or a
clear refusal. The keys are those of real Service Layer answers (tests/fixtures/sap_b1/
response_examples.json: ``Orders`` DocEntry 2 of business partner ``c001``, business partner
``c002``); the object type codes are the metadata's ``BoObjectTypes``."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from erpsync.flows import catalog
from erpsync.systems import registry
from erpsync.systems.plugin import BadWebhook
from erpsync.systems.sap_b1 import webhooks
from erpsync.systems.signing import sign

FIXTURES = Path(__file__).parent.parent / "fixtures" / "sap_b1"
SECRET = "b1-push-secret"
AT = "2026-11-29T10:15:00Z"


def recorded() -> dict[str, Any]:
    """The recorded ``Orders(CardCode, DocEntry)`` answer (the Service Layer guide, page 40)."""
    examples = json.loads((FIXTURES / "response_examples.json").read_text())["examples"]
    [found] = [e["body"] for e in examples if e["body"].get("odata.metadata") == "$metadata#Orders(CardCode, DocEntry)"]
    return dict(found["value"][0])


def push(*events: dict[str, Any], secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"events": list(events)}).encode()
    return body, {k.lower(): v for k, v in sign(secret, body).items()}


def test_each_object_rings_the_flows_that_read_it_with_the_ids_the_polls_give() -> None:
    order = recorded()
    body, headers = push(
        {"object": "2", "key": order["CardCode"], "action": "U", "at": AT},
        {"object": "oDeliveryNotes", "key": 7, "action": "A", "id": "ev-7"},
        {"object": "Invoices", "key": "8", "action": "A", "at": AT},
        {"object": 14, "key": "9", "action": "A", "at": AT},
        {"object": "17", "key": str(order["DocEntry"]), "action": "C", "at": AT},
        {"object": "234000031", "key": "11", "action": "U", "at": AT},
        {"object": "4", "key": "24-MB01", "action": "U", "id": "ev-item"},
    )
    got = webhooks.receive(SECRET, body, headers)
    assert [(n["entity"], n["id"]) for n in got] == [
        ("customer", "c001"),
        ("shipment", "7"),
        ("invoice", "8"),
        ("creditmemo", "9"),
        ("cancellation", "Orders/2"),
        ("return", "ReturnRequest/11"),
        ("product", "24-MB01"),
        ("price", "24-MB01"),
        ("stock", "24-MB01"),
    ]
    assert got[1]["event_id"] == "ev-7" and [n["event_id"] for n in got[-3:]] == [
        "ev-item:product",
        "ev-item:price",
        "ev-item:stock",
    ]
    assert got[0]["occurred_at"] == datetime(2026, 11, 29, 10, 15, tzinfo=UTC) and got[1]["occurred_at"] is None
    assert all(n["source"] == "sap_b1" and n["version"] is None for n in got)
    for n in got:  # each rings a flow from an ERP: the ingress would route every one
        assert catalog.for_webhook(n["entity"], "erp"), n["entity"]


def test_what_no_flow_reads_is_accepted_and_ignored() -> None:
    body, headers = push(
        {"object": "17", "key": "2", "action": "A", "at": AT},  # an order added in B1: erpsync books them
        {"object": "15", "key": "7", "action": "D", "at": AT},  # a delete: nothing left to read
        {"object": "16", "key": "3", "action": "A", "at": AT},  # a return: its request stamps and is polled
        {"object": "59", "key": "4", "action": "A", "at": AT},  # a goods receipt: stock is swept whole
    )
    assert webhooks.receive(SECRET, body, headers) == []


def test_the_same_event_without_an_id_is_the_same_notice_and_a_later_one_is_not() -> None:
    event = {"object": "15", "key": "7", "action": "U", "at": AT}
    body, headers = push(event, event, {**event, "at": "2026-11-29T10:16:00Z"})
    ids = [n["event_id"] for n in webhooks.receive(SECRET, body, headers)]
    assert ids[0] == ids[1] != ids[2] and all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        ({"object": "Shipments", "key": "7", "action": "A", "at": AT}, "object 'Shipments' is not a BoObjectTypes"),
        ({"object": None, "key": "7", "action": "A", "at": AT}, "object None"),
        ({"object": "15", "action": "A", "at": AT}, "key is missing"),
        ({"object": "15", "key": " ", "action": "A", "at": AT}, "key is missing"),
        ({"object": "15", "key": "DN-7", "action": "A", "at": AT}, "'DN-7' is not a DocEntry"),
        ({"object": "15", "key": "7", "action": "X", "at": AT}, "action 'X' is not one of"),
        ({"object": "15", "key": "7", "action": "A", "at": "yesterday"}, "at is not an ISO time"),
        ({"object": "15", "key": "7", "action": "A"}, "names neither its id nor its time"),
        ({"object": "15", "key": "7", "action": "A", "id": ""}, "id must be a non-empty string"),
        ("15", "events[1] is not an object"),
    ],
)
def test_a_bad_event_names_what_is_wrong_and_nothing_of_the_push_is_taken(event: Any, problem: str) -> None:
    body, headers = push({"object": "2", "key": "c002", "action": "U", "at": AT}, event)
    with pytest.raises(BadWebhook, match=re.escape(problem)) as refused:
        webhooks.receive(SECRET, body, headers)
    assert refused.value.status == 400 and "events[1]" in str(refused.value)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", 'expected {"events"'),
        (b'{"events": []}', 'expected {"events"'),
        (b'{"value": [{"DocEntry": 2}]}', "not an SAP Business One push"),
    ],
)
def test_a_body_that_is_not_a_push_is_refused(body: bytes, problem: str) -> None:
    headers = {k.lower(): v for k, v in sign(SECRET, body).items()}
    with pytest.raises(BadWebhook, match=re.escape(problem)):
        webhooks.receive(SECRET, body, headers)


def test_too_many_events_in_one_push_are_refused_as_too_large() -> None:
    event = {"object": "15", "key": "7", "action": "A", "at": AT}
    body, headers = push(*[event] * (webhooks.MAX_EVENTS + 1))
    with pytest.raises(BadWebhook, match="at most 500") as refused:
        webhooks.receive(SECRET, body, headers)
    assert refused.value.status == 413


def test_the_signature_is_required_and_checked() -> None:
    body, headers = push({"object": "15", "key": "7", "action": "A", "at": AT})
    for secret, given in (
        (SECRET, {}),
        ("another", headers),
        (SECRET, {**headers, "x-erpsync-timestamp": "1000"}),
        ("", headers),
    ):
        with pytest.raises(BadWebhook) as refused:
            webhooks.receive(secret, body, given)
        assert refused.value.status == 401, (secret, given)


def test_the_plugin_takes_pushes_and_the_ingress_finds_its_receiver() -> None:
    assert registry.webhook_receiver("sap_b1") is webhooks.receive
    body, headers = push({"object": "15", "key": "7", "action": "A", "at": AT})
    parse = registry.plugin("sap_b1").webhooks
    assert parse is not None
    [notice] = parse(SECRET, body, headers)
    assert (notice.entity, notice.id, notice.source) == ("shipment", "7", "sap_b1")
