"""Acumatica push notifications: check the configured header and turn rows into notices.

Body (SM302000): ``{"Inserted": [rows], "Deleted": [rows], "Query": name, "CompanyId", "Id",
"TimeStamp"}``; an update is a Deleted+Inserted pair. Rows that carry ``ShipmentNbr`` are
shipments, rows with ``ReferenceNbr`` (and a ``Type`` of Invoice, when present) are invoices,
other rows with ``CustomerID`` are customers. Catalog rows: ``InventoryID`` names an item, whose
stock changed when the row carries quantities (``STOCK_FIELDS``), its prices when it carries
prices (``PRICE_FIELDS``), the item itself otherwise; ``CategoryID`` a sales category,
``AttributeID`` an attribute definition.
Delivery is at least once: the event id is ``Id`` + ``Query``.
"""

from __future__ import annotations

import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from erpsync.systems.plugin import BadWebhook

if TYPE_CHECKING:
    from erpsync.model import ChangeNotice

TOKEN_HEADER = "x-erpsync-token"
STOCK_FIELDS = frozenset(
    {"QtyOnHand", "QtyAvailable", "QtyHardAvailable", "QtyAvailableForShipment", "LastModifiedDateofWarehouseQty"}
)
"""A row with ``InventoryID`` and one of these announces a stock change (an inquiry over quantities)."""
PRICE_FIELDS = frozenset({"Price", "PriceType", "PriceCode", "BreakQty", "PendingPrice"})
"""A row with ``InventoryID`` and one of these announces a price change."""
_TICKS_EPOCH = datetime(1, 1, 1, tzinfo=UTC)


BadPush = BadWebhook


def verify(secret: str, headers: dict[str, str]) -> None:
    token = headers.get(TOKEN_HEADER, "")
    if not token:
        raise BadPush(f"missing {TOKEN_HEADER} header", 401)
    if not hmac.compare_digest(token.encode(), secret.encode()):
        raise BadPush(f"{TOKEN_HEADER} does not match", 401)


def receive(secret: Any, body: bytes, headers: dict[str, str]) -> list[dict[str, Any]]:
    """Verify (when a token is configured) and parse an Acumatica push notification: the fields of
    each ``ChangeNotice`` it announces (the plugin's ``webhooks``; the ingress uses these as they
    are, without the models)."""
    if secret:
        verify(str(secret), headers)
    try:
        data = json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadPush(f"body is not valid JSON: {exc}") from exc
    if data is None:
        raise BadPush("empty body: expected a JSON object")
    return notice_fields(data)


def parse(body: Any, window: timedelta = timedelta(hours=24), now: datetime | None = None) -> list[ChangeNotice]:
    from erpsync.model import ChangeNotice

    return [ChangeNotice(**fields) for fields in notice_fields(body, window, now)]


def notice_fields(
    body: Any, window: timedelta = timedelta(hours=24), now: datetime | None = None
) -> list[dict[str, Any]]:
    """``parse`` without the model: the fields of each notice, every one of the type ``ChangeNotice``
    holds."""
    if not isinstance(body, dict):
        raise BadPush("body must be a JSON object")
    missing = [k for k in ("Query", "Id") if not isinstance(body.get(k), str) or not body.get(k)]
    if missing:
        raise BadPush(f"not an Acumatica push notification: missing {missing}")
    inserted = body.get("Inserted", [])
    if not isinstance(inserted, list) or not all(isinstance(r, dict) for r in inserted):
        raise BadPush("'Inserted' must be a list of objects")
    occurred = _ticks(body.get("TimeStamp"))
    if occurred and abs((now or datetime.now(UTC)) - occurred) > window:
        raise BadPush(f"'TimeStamp' {occurred.isoformat()} is outside the accepted window (replay?)")
    notices: list[dict[str, Any]] = []
    for row in inserted:
        if row.get("InventoryID") and (STOCK_FIELDS | PRICE_FIELDS) & set(row):
            entity = "stock" if STOCK_FIELDS & set(row) else "price"
            rid = str(row["InventoryID"]).strip()
        elif row.get("ShipmentNbr"):
            entity, rid = "shipment", str(row["ShipmentNbr"])
        elif row.get("ReferenceNbr") and str(row.get("Type", "Invoice")) in ("Invoice", "INV"):
            entity, rid = "invoice", str(row["ReferenceNbr"])
        elif row.get("CustomerID"):
            entity, rid = "customer", str(row["CustomerID"])
        elif row.get("InventoryID"):
            entity, rid = "product", str(row["InventoryID"]).strip()
        elif row.get("CategoryID") not in (None, ""):
            entity, rid = "category", str(row["CategoryID"])
        elif row.get("AttributeID"):
            entity, rid = "attribute", str(row["AttributeID"])
        else:
            continue
        event_id = f"{body['Id']}|{body['Query']}|{rid}"
        notices.append(
            {"source": "acumatica", "entity": entity, "id": rid, "event_id": event_id, "occurred_at": occurred}
        )
    if inserted and not notices:
        raise BadPush(
            f"query {body['Query']!r} rows carry no ShipmentNbr, invoice ReferenceNbr, CustomerID, "
            "InventoryID, CategoryID or AttributeID"
        )
    return notices


def _ticks(value: Any) -> datetime | None:
    """A .NET ticks timestamp (100 ns since 0001-01-01) as a UTC datetime."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    try:
        return _TICKS_EPOCH + timedelta(microseconds=value // 10)
    except OverflowError:
        return None
