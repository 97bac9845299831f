"""SAP Business One's optional push: a body erpsync defines, for changes the poll would find later.

The Service Layer sends no webhooks (SYSTEMS-NOTES §3.4). What a B1 installation has is the
``SBO_SP_PostTransactionNotice`` stored procedure (after each commit, from the B1 client, the DI
API and the Service Layer alike), whose parameters name the object type, the transaction type and
the key; a B1if scenario (or any small sender) forwards them here. docs/SAP_B1.md shows the body
and a sender. The poll stays: a push only brings a change sooner, and a lost one is found by it.

``POST /webhooks/<connection>``, signed as every erpsync-defined webhook (``systems/signing.py``)::

    {"events": [{"object": "15", "key": "42", "action": "A",
                 "id": "<the sender's event id, optional>", "at": "<ISO time, optional>"}]}

- ``object``: the object type as the procedure gets it (``@object_type``, a ``BoObjectTypes``
  value: ``"15"``) or its name in the Service Layer's metadata (``"oDeliveryNotes"``, or
  the entity set, ``"DeliveryNotes"``);
- ``key``: the key value (``@list_of_cols_val_tab_del``): ``DocEntry`` of a document, ``CardCode``
  of a business partner, ``ItemCode`` of an item;
- ``action``: the transaction type (``@transaction_type``): ``A`` add, ``U`` update, ``C`` cancel,
  ``L`` close, ``D`` delete;
- ``id`` or ``at`` (or both): the sender's event id, the time of the change. The ingress takes an
  event id once (a push delivered twice is one notice); without one, the id is a digest of the
  object, key, action and time.

What rings which flow (the ids the poll gives the same records): a business partner (2) the
erp-customers flow; an item (4) the product, price and stock flows; an A/R invoice (13) invoices;
a credit note (14) erp-credit-memos; a delivery (15) shipments; a cancelled order (17, ``C``)
erp-cancellations; a return request (234000031) erp-returns. Other objects and actions (a delete,
an order added or updated, a goods receipt whose items are not named) are answered as accepted and
ignored: no flow reads them, or the poll (stock is swept whole) does.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from erpsync.systems.plugin import BadWebhook
from erpsync.systems.signing import verify

MAX_EVENTS = 500
OBJECTS: dict[str, tuple[str, ...]] = {
    "2": ("oBusinessPartners", "BusinessPartners"),
    "4": ("oItems", "Items"),
    "13": ("oInvoices", "Invoices"),
    "14": ("oCreditNotes", "CreditNotes"),
    "15": ("oDeliveryNotes", "DeliveryNotes"),
    "16": ("oReturns", "Returns"),
    "17": ("oOrders", "Orders"),
    "234000031": ("oReturnRequest", "ReturnRequest"),
}
"""``BoObjectTypes`` values (sap-b1/service-layer-metadata-v2.edmx) -> their member and entity set
names, each accepted as ``object``."""
BY_NAME = {name.lower(): code for code, names in OBJECTS.items() for name in names}
KEYED_BY_CODE = frozenset({"2", "4"})
"""Business partners and items: keyed by a code (``CardCode``, ``ItemCode``); the rest by ``DocEntry``."""
ACTIONS = frozenset("AUCLD")
RINGS: dict[str, tuple[tuple[str, str], ...]] = {
    "2": (("customer", ""),),
    "4": (("product", ""), ("price", ""), ("stock", "")),
    "13": (("invoice", ""),),
    "14": (("creditmemo", ""),),
    "15": (("shipment", ""),),
    "234000031": (("return", "ReturnRequest/"),),
}
"""Object type -> the (entity, id prefix) of each notice it makes, as the adapter's polls name them."""


def receive(secret: Any, body: bytes, headers: dict[str, str]) -> list[dict[str, Any]]:
    """Verify and parse a push: the fields of each notice its events announce."""
    if not secret:
        raise BadWebhook("no webhook secret is configured for this SAP Business One connection", 401)
    verify(str(secret), body, headers)
    try:
        data = json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadWebhook(f"body is not valid JSON: {exc}") from exc
    events = data.get("events") if isinstance(data, dict) else None
    if not isinstance(events, list) or not events:
        raise BadWebhook('not an SAP Business One push: expected {"events": [{"object", "key", "action"}, ...]}')
    if len(events) > MAX_EVENTS:
        raise BadWebhook(f"{len(events)} events in one push; at most {MAX_EVENTS}", 413)
    out: list[dict[str, Any]] = []
    for i, ev in enumerate(events):
        out += _notices(i, ev)
    return out


def _notices(i: int, ev: Any) -> list[dict[str, Any]]:
    if not isinstance(ev, dict):
        raise BadWebhook(f"events[{i}] is not an object")
    raw_object, key, action = ev.get("object"), ev.get("key"), ev.get("action")
    code = _object_code(raw_object)
    if code is None:
        raise BadWebhook(f"events[{i}].object {raw_object!r} is not a BoObjectTypes value or name")
    if not isinstance(key, str | int) or isinstance(key, bool) or not str(key).strip():
        raise BadWebhook(f"events[{i}].key is missing (the DocEntry, CardCode or ItemCode)")
    if not isinstance(action, str) or action.upper() not in ACTIONS:
        raise BadWebhook(f"events[{i}].action {action!r} is not one of A, U, C, L, D")
    key, action = str(key).strip(), action.upper()
    if code not in KEYED_BY_CODE and not key.isdigit():
        raise BadWebhook(f"events[{i}].key {key!r} is not a DocEntry (a number)")
    at = _when(ev.get("at"), i)
    given = ev.get("id")
    if given is not None and (not isinstance(given, str | int) or isinstance(given, bool) or not str(given).strip()):
        raise BadWebhook(f"events[{i}].id must be a non-empty string when given")
    if given is None and at is None:
        raise BadWebhook(f"events[{i}] names neither its id nor its time ('at'): a later change would be taken for it")
    event_id = str(given).strip() if given is not None else _digest(code, key, action, ev.get("at"))
    rings = RINGS.get(code, ())
    if code == "17" and action == "C":
        rings = (("cancellation", "Orders/"),)
    if action == "D":
        rings = ()  # nothing to read: B1 does not delete a posted document, and a deleted record is gone
    return [
        {
            "source": "sap_b1",
            "entity": entity,
            "id": f"{prefix}{key}",
            "event_id": event_id if len(rings) == 1 else f"{event_id}:{entity}",
            "occurred_at": at,
            "version": None,
        }
        for entity, prefix in rings
    ]


def _object_code(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    value = value.strip()
    if value.isdigit():
        return value  # any object type; those erpsync reads nothing of are ignored
    return BY_NAME.get(value.lower())


def _when(value: Any, i: int) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadWebhook(f"events[{i}].at is not an ISO time: {value!r}") from exc


def _digest(code: str, key: str, action: str, at: Any) -> str:
    """An event id for an event that names none (it names its time): the same event sent twice is
    one notice."""
    return hashlib.sha256(f"{code}|{key}|{action}|{at}".encode()).hexdigest()[:32]
