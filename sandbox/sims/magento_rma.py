"""Adobe Commerce returns (RMA) for the Magento sim: ``/V1/returns`` as Adobe Commerce 2.4 serves it.

Magento Open Source has no RMA module, so the sim answers these paths as Open Source does (404
``Request does not match any route.``) until the edition is ``commerce``: ``create_app(edition=
"commerce")``, or ``POST /_sim/seed {"edition": "commerce"}``. Records follow the official schema
(``rma-data-rma-interface``, ``rma-data-item-interface``, ``rma-data-comment-interface``):

- ``POST /V1/returns {"rmaDataObject": {order_id, items: [{order_item_id, qty_requested,
  qty_authorized, reason, condition, resolution, status}], status}}`` creates one. An item can be
  returned up to what was shipped of it, less what other returns of the order (not rejected or
  denied) already ask for.
- ``PUT /V1/returns/{id} {"rmaDataObject": {...}}`` updates the items named by ``entity_id``
  (quantities and statuses); a received quantity cannot exceed the authorized one.
- ``GET /V1/returns/{id}``, ``GET /V1/returns?searchCriteria`` (fields ``entity_id``,
  ``increment_id``, ``order_id``, ``status``, ``date_requested``).
- ``GET|POST /V1/returns/{id}/comments`` (``{"data": {comment, visible_on_front,
  customer_notified, status}}``; POST answers ``true``).

The return's status follows its items', as Adobe Commerce derives it: one status for all items is
the return's; mixed ones give ``partially_authorized``, ``received_on_item``, ``approved_on_item``
or ``rejected_on_item``. A return has no modification time in the API (only ``date_requested``).
"""

from __future__ import annotations

import copy
import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sandbox.sims.magento import (
    NO_ROUTE,
    NOT_FOUND,
    REQUIRED,
    D,
    MagentoError,
    _int,
    _one_filter_criteria,
    num,
    parse_search_criteria,
    search,
)

if TYPE_CHECKING:
    from sandbox.sims.magento import MagentoSim

JSON = dict[str, Any]

ITEM_STATUSES = ("pending", "authorized", "received", "approved", "rejected", "denied")
CLOSED_ITEM_STATUSES = ("rejected", "denied")
TOO_MANY = "A quantity of %1 is greater than you can return."
TOO_MANY_RECEIVED = "Quantity of %1 is greater than the quantity authorized."
WRONG_ITEM = "The return item %1 is not an item of order %2."
BAD_STATUS = 'The "%1" status is not a valid return item status.'


def rma_status(items: list[JSON]) -> str:
    """The return's status from its items' (Adobe Commerce's ``getStatusByItems`` in short)."""
    statuses = {str(it.get("status") or "pending") for it in items}
    if len(statuses) == 1:
        return statuses.pop()
    for status, mixed in (
        ("approved", "approved_on_item"),
        ("received", "received_on_item"),
        ("rejected", "rejected_on_item"),
        ("denied", "rejected_on_item"),
    ):
        if status in statuses:
            return mixed
    return "partially_authorized"


class Returns:
    """The returns of one sim (state under the sim's lock)."""

    def __init__(self, sim: MagentoSim) -> None:
        self.sim = sim
        self.records: dict[int, JSON] = {}

    def reset(self) -> None:
        self.records.clear()

    def _require_commerce(self) -> None:
        if self.sim.edition != "commerce":
            raise MagentoError(404, NO_ROUTE)

    def _record(self, rid: int) -> JSON:
        """The stored return ``rid`` (404 as Magento answers it: no route on Open Source)."""
        self._require_commerce()
        if rid not in self.records:
            raise MagentoError(404, NOT_FOUND)
        return self.records[rid]

    # -- reads -----------------------------------------------------------------------------------

    def get(self, rid: int) -> JSON:
        return copy.deepcopy(self._record(rid))

    def search(self, q: list[tuple[str, str]]) -> JSON:
        self._require_commerce()
        return copy.deepcopy(search(list(self.records.values()), parse_search_criteria(q), "entity_id"))

    def comments(self, rid: int) -> JSON:
        rows = self.get(rid)["comments"]
        return {"items": rows, "search_criteria": _one_filter_criteria("rma_entity_id", rid), "total_count": len(rows)}

    # -- writes ----------------------------------------------------------------------------------

    def create(self, body: Any) -> JSON:
        self._require_commerce()
        data = _data_object(body)
        if data.get("order_id") in (None, ""):
            raise MagentoError(400, REQUIRED, {"fieldName": "order_id"})
        order = self.sim.get_order(_int(str(data["order_id"])))
        raw_items = data.get("items")
        if not isinstance(raw_items, list) or not raw_items:
            raise MagentoError(400, REQUIRED, {"fieldName": "items"})
        rid = self.sim.next_id("rma")
        now = self.sim.now()
        items = []
        for raw in raw_items:
            if not isinstance(raw, dict) or raw.get("order_item_id") in (None, ""):
                raise MagentoError(400, REQUIRED, {"fieldName": "order_item_id"})
            item = self._order_item(order, raw["order_item_id"])
            requested = D(raw.get("qty_requested"))
            if requested <= 0:
                raise MagentoError(400, REQUIRED, {"fieldName": "qty_requested"})
            if requested > self._returnable(order, item, rid):
                raise MagentoError(400, TOO_MANY, [num(requested)])
            status = _item_status(raw.get("status") or "pending")
            authorized = D(raw.get("qty_authorized")) if raw.get("qty_authorized") not in (None, "") else None
            if authorized is None:
                authorized = requested if status in ("authorized", "received", "approved") else Decimal(0)
            if authorized > requested:
                raise MagentoError(400, TOO_MANY, [num(authorized)])
            items.append(
                {
                    "entity_id": self.sim.next_id("rma_item"),
                    "rma_entity_id": rid,
                    "order_item_id": int(item["item_id"]),
                    "qty_requested": num(requested),
                    "qty_authorized": num(authorized),
                    "qty_approved": num(D(raw.get("qty_approved"))),
                    "qty_returned": num(D(raw.get("qty_returned"))),
                    "reason": str(raw.get("reason") or ""),
                    "condition": str(raw.get("condition") or ""),
                    "resolution": str(raw.get("resolution") or ""),
                    "status": status,
                }
            )
        record: JSON = {
            "entity_id": rid,
            "increment_id": str(data.get("increment_id") or f"{rid:09d}"),
            "order_id": int(order["entity_id"]),
            "order_increment_id": str(order.get("increment_id") or ""),
            "store_id": int(order.get("store_id") or 1),
            "customer_id": int(order.get("customer_id") or 0),
            "date_requested": str(data.get("date_requested") or now),
            "customer_custom_email": str(data.get("customer_custom_email") or ""),
            "items": items,
            "status": rma_status(items),
            "comments": [],
            "tracks": [],
        }
        self.records[rid] = record
        for comment in data.get("comments") or []:
            self._add_comment(record, comment)
        return copy.deepcopy(record)

    def update(self, rid: int, body: Any) -> JSON:
        record = self._record(rid)
        data = _data_object(body)
        by_id = {int(it["entity_id"]): it for it in record["items"]}
        changed = copy.deepcopy(by_id)
        for raw in data.get("items") or []:
            if not isinstance(raw, dict) or raw.get("entity_id") in (None, ""):
                raise MagentoError(400, REQUIRED, {"fieldName": "entity_id"})
            item = changed.get(int(raw["entity_id"]))
            if item is None:
                raise MagentoError(404, NOT_FOUND)
            for name in ("qty_authorized", "qty_approved", "qty_returned"):
                if raw.get(name) not in (None, ""):
                    item[name] = num(D(raw[name]))
            for name in ("reason", "condition", "resolution"):
                if raw.get(name) is not None:
                    item[name] = str(raw[name])
            if raw.get("status"):
                item["status"] = _item_status(raw["status"])
            if D(item["qty_authorized"]) > D(item["qty_requested"]):
                raise MagentoError(400, TOO_MANY, [item["qty_authorized"]])
            if D(item["qty_returned"]) > D(item["qty_authorized"]):
                raise MagentoError(400, TOO_MANY_RECEIVED, [item["qty_returned"]])
        for iid, item in changed.items():
            by_id[iid].update(item)
        record["status"] = rma_status(record["items"])
        for comment in data.get("comments") or []:
            if isinstance(comment, dict) and not comment.get("entity_id"):
                self._add_comment(record, comment)
        return copy.deepcopy(record)

    def comment(self, rid: int, body: Any) -> bool:
        record = self._record(rid)
        if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
            raise MagentoError(400, REQUIRED, {"fieldName": "data"})
        self._add_comment(record, body["data"])
        return True

    def seed(self, rows: list[Any]) -> list[JSON]:
        out = []
        for row in rows:
            saved = self.create({"rmaDataObject": row})
            out.append({"entity_id": saved["entity_id"], "increment_id": saved["increment_id"]})
        return out

    # -- helpers ---------------------------------------------------------------------------------

    def _add_comment(self, record: JSON, raw: Any) -> None:
        if not isinstance(raw, dict) or not str(raw.get("comment") or "").strip():
            raise MagentoError(400, REQUIRED, {"fieldName": "comment"})
        record["comments"].append(
            {
                "entity_id": self.sim.next_id("rma_comment"),
                "rma_entity_id": record["entity_id"],
                "comment": str(raw["comment"]),
                "created_at": self.sim.now(),
                "customer_notified": bool(raw.get("customer_notified", False)),
                "visible_on_front": bool(raw.get("visible_on_front", False)),
                "status": str(raw.get("status") or record["status"]),
                "admin": bool(raw.get("admin", True)),
            }
        )

    @staticmethod
    def _order_item(order: JSON, item_id: Any) -> JSON:
        for item in order.get("items") or []:
            if str(item.get("item_id")) == str(item_id):
                return item
        raise MagentoError(400, WRONG_ITEM, [item_id, order.get("increment_id")])

    def _returnable(self, order: JSON, item: JSON, rid: int) -> Decimal:
        """What of ``item`` can still be returned: shipped, less what other open returns ask for."""
        asked = Decimal(0)
        for other in self.records.values():
            if other["entity_id"] == rid or int(other["order_id"]) != int(order["entity_id"]):
                continue
            for it in other["items"]:
                if int(it["order_item_id"]) == int(item["item_id"]) and it["status"] not in CLOSED_ITEM_STATUSES:
                    asked += D(it["qty_requested"])
        return D(item.get("qty_shipped")) - asked


def _data_object(body: Any) -> JSON:
    if not isinstance(body, dict) or not isinstance(body.get("rmaDataObject"), dict):
        raise MagentoError(400, REQUIRED, {"fieldName": "rmaDataObject"})
    return body["rmaDataObject"]


def _item_status(value: Any) -> str:
    status = str(value)
    if status not in ITEM_STATUSES:
        raise MagentoError(400, BAD_STATUS, [status])
    return status


# --------------------------------------------------------------------------- routes


def _h_list(sim: MagentoSim, m: re.Match[str], q: list[tuple[str, str]], body: Any) -> Any:
    return sim.returns.search(q)


def _h_create(sim: MagentoSim, m: re.Match[str], q: list[tuple[str, str]], body: Any) -> Any:
    return sim.returns.create(body)


def _h_get(sim: MagentoSim, m: re.Match[str], q: list[tuple[str, str]], body: Any) -> Any:
    return sim.returns.get(_int(m["id"]))


def _h_update(sim: MagentoSim, m: re.Match[str], q: list[tuple[str, str]], body: Any) -> Any:
    return sim.returns.update(_int(m["id"]), body)


def _h_comments(sim: MagentoSim, m: re.Match[str], q: list[tuple[str, str]], body: Any) -> Any:
    return sim.returns.comments(_int(m["id"]))


def _h_comment(sim: MagentoSim, m: re.Match[str], q: list[tuple[str, str]], body: Any) -> Any:
    return sim.returns.comment(_int(m["id"]), body)


RMA_ROUTES = [
    ("GET", r"/returns", _h_list, "Magento_Rma::magento_rma"),
    ("POST", r"/returns", _h_create, "Magento_Rma::magento_rma"),
    ("GET", r"/returns/(?P<id>[^/]+)", _h_get, "Magento_Rma::magento_rma"),
    ("PUT", r"/returns/(?P<id>[^/]+)", _h_update, "Magento_Rma::magento_rma"),
    ("GET", r"/returns/(?P<id>[^/]+)/comments", _h_comments, "Magento_Rma::magento_rma"),
    ("POST", r"/returns/(?P<id>[^/]+)/comments", _h_comment, "Magento_Rma::magento_rma"),
]
