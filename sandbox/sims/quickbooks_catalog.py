"""The items and stock part of the QuickBooks Online sim (``Company.stock`` in quickbooks.py).

- Items (``/item``): ``Type`` one of Finance.xsd's ``ItemTypeEnum``; an ``Inventory`` item is made
  with ``TrackQtyOnHand`` true, ``QtyOnHand``, ``InvStartDate``, ``IncomeAccountRef``,
  ``AssetAccountRef`` and ``ExpenseAccountRef`` (its cost of goods sold account) (SYSTEMS-NOTES
  §2.2; fault 2020 naming the one missing); a ``ParentRef`` names an existing item (the item becomes
  a ``SubItem`` one ``Level`` below it, ``FullyQualifiedName`` ``Parent:Child``). ``QtyOnHand`` is
  given when the item is made; an update that changes it is refused (fault 2010: use an inventory
  adjustment; UNVERIFIED, SYSTEMS-NOTES §2.2 calls the field "read-only-ish" since Sept 2024).
- Items are made inactive (``Active`` false), never deleted: ``?operation=delete`` of an item is
  fault 2010 (UNVERIFIED code; QuickBooks clients delete an item by making it inactive).
- A query of ``Item`` that does not name ``Active`` answers active items only (Intuit's developer
  blog, "deep dive sql queries", 2017: "SELECT * FROM Customer retrieves all active customers");
  ``Active in (true, false)`` (or ``in (false)``) reaches the others.
- ``InventoryAdjustment`` (``/inventoryadjustment``; Finance.xsd ``InventoryAdjustment``,
  ``ItemAdjustmentLineDetail``): ``AdjustAccountRef`` and lines of ``ItemAdjustmentLineDetail``
  ``{ItemRef, QtyDiff | NewQty}`` naming active inventory items (2020, 610, fault 6000 for an item
  that is not an inventory item: code UNVERIFIED). It changes each item's ``QtyOnHand``, and its
  ``SyncToken`` and ``MetaData.LastUpdatedTime`` (so the item shows in queries by change time,
  change data capture and webhooks: UNVERIFIED that QuickBooks moves them); deleted, it takes its
  quantities back.
- Sales: a sales receipt or an invoice takes the ``Qty`` of its lines on inventory items off their
  ``QtyOnHand`` (a line without ``Qty`` takes none); voided or deleted, it gives them back; updated,
  it books the difference. The item's ``LastUpdatedTime`` does not move (UNVERIFIED either way).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sandbox.sims.quickbooks import Fault, _dec, _stamp

if TYPE_CHECKING:
    from sandbox.sims.quickbooks import Company

JSON = dict[str, Any]
ITEM_TYPES = frozenset(
    {
        "Assembly",
        "Category",
        "Fixed Asset",
        "Group",
        "Inventory",
        "NonInventory",
        "Other Charge",
        "Payment",
        "Service",
        "Subtotal",
        "Discount",
        "Tax",
        "Tax Group",
        "Bundle",
    }
)
"""Finance.xsd ``ItemTypeEnum``."""
INVENTORY_NEEDS = ("TrackQtyOnHand", "QtyOnHand", "InvStartDate", "IncomeAccountRef", "AssetAccountRef")
SALES = ("SalesReceipt", "Invoice")
REQUIRED = "Required param missing, need to supply the required value for the API"
INVALID = "Request has invalid or unsupported property"


def _missing(element: str) -> Fault:
    return Fault(400, "2020", REQUIRED, f"Required parameter {element} is missing", element)


def _number(value: Decimal) -> int | float:
    """A quantity as Intuit writes it: ``10``, ``2.5``."""
    return int(value) if value == value.to_integral_value() else float(value)


class Stock:
    """Item rules, inventory adjustments and what sales take off the shelf, for one company."""

    def __init__(self, company: Company) -> None:
        self.company = company
        self.booked: dict[tuple[str, str], dict[str, Decimal]] = {}
        """(entity, id) of a transaction -> item id -> the quantity it added (negative: took)."""

    # -- checks, before a record is stored ------------------------------------------------------

    def check(self, entity: str, record: JSON, updating: JSON | None) -> None:
        if entity == "Item":
            self._check_item(record, updating)
        elif entity == "InventoryAdjustment":
            self._check_adjustment(record)

    def _check_item(self, item: JSON, current: JSON | None) -> None:
        kind = str(item.get("Type") or "")
        if kind not in ITEM_TYPES:
            raise Fault(400, "2010", INVALID, f"Type {kind!r} is not an item type", "Type")
        was_inventory = current is not None and current.get("Type") == "Inventory"
        if was_inventory and current is not None:
            have = _dec(current.get("QtyOnHand") or 0, "QtyOnHand")
            if "QtyOnHand" in item and _dec(item["QtyOnHand"], "QtyOnHand") != have:
                raise Fault(
                    400,
                    "2010",
                    INVALID,
                    f"QtyOnHand of item {current['Id']} is {have}: change it with an InventoryAdjustment",
                    "QtyOnHand",
                )
            item.setdefault("QtyOnHand", current.get("QtyOnHand"))
            item.setdefault("InvStartDate", current.get("InvStartDate"))
        if kind == "Inventory":
            for field in INVENTORY_NEEDS:
                if item.get(field) in (None, "", {}):
                    raise _missing(field)
            if item.get("TrackQtyOnHand") is not True:
                raise Fault(400, "2010", INVALID, "an Inventory item has TrackQtyOnHand true", "TrackQtyOnHand")
            if not (item.get("ExpenseAccountRef") or item.get("COGSAccountRef")):
                raise _missing("ExpenseAccountRef")
            _dec(item["QtyOnHand"], "QtyOnHand")
        parent = str((item.get("ParentRef") or {}).get("value") or "")
        if parent:
            above = self.company.records["Item"].get(parent)
            if above is None or (current is not None and parent == current["Id"]):
                raise Fault(
                    400,
                    "610",
                    "Object Not Found",
                    f"Something you're trying to use has been made inactive or deleted: Item {parent}",
                    "ParentRef",
                )
            item["SubItem"] = True
            item["Level"] = int(above.get("Level") or 0) + 1
            item["FullyQualifiedName"] = f"{above.get('FullyQualifiedName') or above['Name']}:{item['Name']}"
        else:
            for key in ("SubItem", "Level"):
                item.pop(key, None)
            item["FullyQualifiedName"] = item["Name"]

    def _check_adjustment(self, adjustment: JSON) -> None:
        if not (adjustment.get("AdjustAccountRef") or {}).get("value"):
            raise _missing("AdjustAccountRef")
        lines = adjustment.get("Line")
        if not isinstance(lines, list) or not lines:
            raise _missing("Line")
        for i, line in enumerate(lines):
            where = f"Line[{i}].ItemAdjustmentLineDetail"
            detail = line.get("ItemAdjustmentLineDetail")
            if line.get("DetailType") != "ItemAdjustmentLineDetail" or not isinstance(detail, dict):
                raise _missing(where)
            ref = str((detail.get("ItemRef") or {}).get("value") or "")
            item = self.company.records["Item"].get(ref)
            if item is None or item.get("Active") is False:
                raise Fault(
                    400,
                    "610",
                    "Object Not Found",
                    f"Something you're trying to use has been made inactive or deleted: Item {ref}",
                    f"{where}.ItemRef",
                )
            if item.get("Type") != "Inventory":
                raise Fault(
                    400,
                    "6000",
                    "A business validation error has occurred while processing your request",
                    f"Business Validation Error: item {ref} ({item['Name']}) is a {item.get('Type')} item: "
                    "only inventory items have a quantity to adjust",
                    f"{where}.ItemRef",
                )
            given = [k for k in ("QtyDiff", "NewQty") if detail.get(k) is not None]
            if not given:
                raise _missing(f"{where}.QtyDiff")
            if len(given) > 1:
                raise Fault(400, "2010", INVALID, "give QtyDiff or NewQty, not both", f"{where}.NewQty")
            _dec(detail[given[0]], f"{where}.{given[0]}")
            line.setdefault("Id", str(i))
        adjustment.setdefault("TxnDate", _stamp()[:10])

    def may_delete(self, entity: str) -> None:
        if entity == "Item":
            raise Fault(400, "2010", INVALID, "an item cannot be deleted: make it inactive (Active false)")

    # -- effects, after a record is stored -------------------------------------------------------

    def changed(self, entity: str, record: JSON, operation: str) -> None:
        if entity not in (*SALES, "InventoryAdjustment"):
            return
        key = (entity, str(record["Id"]))
        old = self.booked.get(key, {})
        new = self._effect(entity, record, old)
        self.booked[key] = new
        for item_id in sorted(set(old) | set(new)):
            delta = new.get(item_id, Decimal(0)) - old.get(item_id, Decimal(0))
            item = self.company.records["Item"].get(item_id)
            if delta == 0 or item is None:
                continue
            item["QtyOnHand"] = _number(_dec(item.get("QtyOnHand") or 0, "QtyOnHand") + delta)
            if entity == "InventoryAdjustment":
                item["SyncToken"] = str(int(item["SyncToken"]) + 1)
                item["MetaData"] = {**item["MetaData"], "LastUpdatedTime": _stamp()}
                self.company.changed("Item", item, "Update")

    def _effect(self, entity: str, record: JSON, old: dict[str, Decimal]) -> dict[str, Decimal]:
        """Item id -> the quantity the transaction adds now (nothing once voided or deleted)."""
        gone = record.get("status") == "Deleted"
        voided = "Voided" in str(record.get("PrivateNote") or "") and not record.get("TotalAmt")
        if gone or (entity in SALES and voided):
            return {}
        out: dict[str, Decimal] = {}
        for line in record.get("Line") or []:
            if entity == "InventoryAdjustment":
                detail = line.get("ItemAdjustmentLineDetail") or {}
                item_id = str((detail.get("ItemRef") or {}).get("value"))
                if detail.get("QtyDiff") is not None:
                    qty = _dec(detail["QtyDiff"], "QtyDiff")
                else:  # the quantity the item is to have: what it has without this adjustment
                    item = self.company.records["Item"].get(item_id) or {}
                    before = _dec(item.get("QtyOnHand") or 0, "QtyOnHand") - old.get(item_id, Decimal(0))
                    qty = _dec(detail["NewQty"], "NewQty") - before
            else:
                detail = line.get("SalesItemLineDetail") or {}
                item_id = str((detail.get("ItemRef") or {}).get("value"))
                item = self.company.records["Item"].get(item_id) or {}
                if line.get("DetailType") != "SalesItemLineDetail" or item.get("Type") != "Inventory":
                    continue
                qty = -_dec(detail.get("Qty") or 0, "Qty")
            out[item_id] = out.get(item_id, Decimal(0)) + qty
        return out

    # -- reads ------------------------------------------------------------------------------------

    @staticmethod
    def visible(entity: str, where: str, rows: list[JSON]) -> list[JSON]:
        """A query of items that does not name ``Active`` answers the active ones only."""
        if entity != "Item" or re.search(r"\bActive\b", where, re.IGNORECASE):
            return rows
        return [r for r in rows if r.get("Active") is not False]
