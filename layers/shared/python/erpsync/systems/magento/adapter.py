"""``MagentoStore``: the ``Store`` port over Magento 2's REST API."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from erpsync.model import ChangeNotice, Invoice, Order, Shipment
from erpsync.runtime.errors import NotFoundError, RetryableError
from erpsync.systems.magento.client import Filter, MagentoClient
from erpsync.systems.magento.mapping import document_items, format_timestamp, has_marker, order_from_magento, ref_marker

SNAPSHOT_MAX_BYTES = 200_000
"""A polled order rides in its notice up to this size (an SQS message holds 256 KiB; a big order's
worker reads it instead). A typical order is 10 to 40 KB."""


def _id(order_id: str) -> int:
    try:
        value = int(str(order_id))
    except ValueError as exc:
        raise NotFoundError(f"magento order id {order_id!r} is not numeric", system="magento") from exc
    if value <= 0:
        raise NotFoundError(f"magento order id {order_id!r} does not exist", system="magento")
    return value


def _new_id(result: Any, what: str) -> str:
    text = str(result).strip().strip('"')
    if not text.isdigit():
        raise RetryableError(f"magento answered {what} with {result!r}, not an id", system="magento")
    return text


class MagentoStore:
    """The online store, as Magento 2 shows it through REST."""

    name = "magento"

    def __init__(self, client: MagentoClient, *, page_size: int = 100) -> None:
        self.client = client
        self.page_size = page_size

    def changed_orders(self, since: datetime) -> list[ChangeNotice]:
        """Notices for orders with ``updated_at`` after ``since``, oldest first (all pages)."""
        read_at = datetime.now(UTC)  # before the first page: a snapshot is never taken for fresher than it is
        rows = self.client.search(
            "/V1/orders",
            [Filter("updated_at", format_timestamp(since), "gt")],
            sort=[("updated_at", "ASC"), ("entity_id", "ASC")],
            page_size=self.page_size,
        )
        seen: set[str] = set()
        notices: list[ChangeNotice] = []
        for row in rows:
            oid = str(row.get("entity_id"))
            if oid in seen:
                continue
            seen.add(oid)
            small = len(json.dumps(row, separators=(",", ":"), default=str)) <= SNAPSHOT_MAX_BYTES
            notices.append(
                ChangeNotice(
                    source=self.name,
                    entity="order",
                    id=oid,
                    version=str(row.get("updated_at") or ""),
                    snapshot=row if small else None,
                    read_at=read_at if small else None,
                )
            )
        return notices

    def get_order(self, order_id: str, snapshot: dict[str, Any] | None = None) -> Order:
        if snapshot is not None and str(snapshot.get("entity_id")) == str(_id(order_id)):
            return order_from_magento(snapshot)
        return order_from_magento(self.client.get(f"/V1/orders/{_id(order_id)}"))

    def find_order_id(self, number: str) -> str | None:
        page = self.client.search_page("/V1/orders", [Filter("increment_id", number)], page_size=1)
        items = page.get("items") or []
        return str(items[0]["entity_id"]) if items else None

    def find_shipment(self, order_id: str, ref: str) -> str | None:
        rows = self.client.search("/V1/shipments", [Filter("order_id", _id(order_id))], page_size=self.page_size)
        return next((str(r["entity_id"]) for r in rows if has_marker(r, ref)), None)

    def create_shipment(self, order_id: str, shipment: Shipment, ref: str, carrier_code: str) -> str:
        body = {
            "items": document_items(shipment.lines, f"shipment {ref}"),
            "notify": True,
            "appendComment": True,
            "comment": {"comment": f"Shipped from the ERP {ref_marker(ref)}", "is_visible_on_front": 0},
            "tracks": [
                {"track_number": t.number, "title": t.title or t.carrier or carrier_code, "carrier_code": carrier_code}
                for t in shipment.tracks
                if t.number
            ],
        }
        return _new_id(self.client.post(f"/V1/order/{_id(order_id)}/ship", body), "ship")

    def find_invoice(self, order_id: str, ref: str) -> str | None:
        rows = self.client.search("/V1/invoices", [Filter("order_id", _id(order_id))], page_size=self.page_size)
        return next((str(r["entity_id"]) for r in rows if has_marker(r, ref)), None)

    def create_invoice(self, order_id: str, invoice: Invoice, ref: str) -> str:
        body = {
            "capture": True,
            "items": document_items(invoice.lines, f"invoice {ref}"),
            "notify": False,
            "appendComment": True,
            "comment": {"comment": f"Invoiced in the ERP {ref_marker(ref)}", "is_visible_on_front": 0},
        }
        return _new_id(self.client.post(f"/V1/order/{_id(order_id)}/invoice", body), "invoice")
