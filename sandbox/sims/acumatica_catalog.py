"""The catalog part of the Acumatica sim (Default/24.200.001): items, attributes, categories,
kits, warehouses and stock, prices, and the inquiries a connector reads them with.

Entities (``/entity/Default/<ver>/<Entity>``, the same ``GET``/``PUT``/``DELETE`` rules as the rest
of the sim; names and fields checked against the official OpenAPI of Default/24.200.001):

- ``AttributeDefinition`` (key ``AttributeID``; ``Values[]``: ValueID, Description, SortOrder, Disabled).
- ``ItemClass`` (``ClassID``; ``Attributes[]``: AttributeID, Required, SortOrder).
- ``ItemSalesCategory`` (``CategoryID``, an int numbered by the sim; ``ParentCategoryID`` 0 = root,
  ``Path`` = the descriptions from the root joined with ``/``; ``Members[]`` lists the items in the
  category, and lines added to it put items in the category).
- ``CustomerPriceClass`` (``PriceClassID``), ``CustomerClass`` (``ClassID``), ``Warehouse``
  (``WarehouseID``; a warehouse named by an item or a seed is created on the fly).
- ``StockItem`` gains the catalog rules: ``Attributes[]`` (AttributeDescription, ValueDescription,
  IsActive and Required filled from the definitions; a value outside the ValueIDs of a combo
  attribute is a 422 with ``error`` beside it), ``Categories[]`` (existing CategoryIDs),
  ``WarehouseDetails[]`` (one line per warehouse; ``QtyOnHand``), ``TemplateItemID`` (an existing
  template), ``LastModified`` = ``LastModifiedDateTime``.
- ``NonStockItem`` (``InventoryID``; ``BaseUnit``/``SalesUnit``, ``Categories[]``, ``SalesCategories[]``,
  ``Attributes[]``), ``TemplateItems`` (``InventoryID``; ``Matrix[]`` lists the stock and non-stock
  items whose ``TemplateItemID`` is the template: InventoryID, Description, DefaultPrice, MSRP,
  ItemStatus, ExportToExternal), ``KitSpecification`` (``KitInventoryID`` + ``RevisionID``;
  ``StockComponents[]``, ``NonStockComponents[]``), ``ItemWarehouse`` (``InventoryID`` + ``WarehouseID``).
  One InventoryID names one item: a stock item's ID cannot be reused by a non-stock item or template.
- ``InventoryReceipt`` (``ReferenceNbr`` numbered; ``Details[]``: InventoryID, WarehouseID, Qty, UOM,
  UnitCost) and its action ``ReleaseInventoryReceipt``, which adds the quantities to the item's
  warehouse line and moves that line's change time.
- ``SalesPriceWorksheet`` (``ReferenceNbr`` numbered; ``SalesPrices[]``: PriceType Base | Customer |
  Customer Price Class, PriceCode, InventoryID, UOM, BreakQty, PendingPrice, CurrencyID) and its
  action ``ReleaseSalesPriceWorksheet``, which writes the lines into the effective price table
  with the worksheet's EffectiveDate/ExpirationDate.

Inquiries (``PUT <Inquiry>?$expand=<Results>`` with a filter body; the answer is the filter with the
results, which show only when expanded):

- ``StorageDetailsInquiry`` (WarehouseID?) -> ``StorageDetails[]`` per item and warehouse:
  QtyOnHand, QtyAvailable, QtyAvailableforIssue, QtyHardAvailable, LastModifiedDateofWarehouseQty.
- ``InventoryQuantityAvailable`` (InventoryID?, LastModifiedDateTime?) -> ``Results[]`` per item,
  summed over warehouses, only items whose warehouse lines changed at or after the given time.
- ``InventorySummaryInquiry`` (InventoryID, WarehouseID?) -> ``Results[]`` per warehouse.
- ``SalesPricesInquiry`` (PriceType All Prices | Base | Customer | Customer Price Class, PriceCode,
  InventoryID, ItemClassID, PriceClass, EffectiveAsOf) -> ``SalesPriceDetails[]``: the rows in effect
  on EffectiveAsOf, which defaults to today as on the screen (send ``{"value": null}`` for all dates).

Quantities: on hand is what receipts, seeds and item writes put on the warehouse line. Available =
on hand - the open quantity of sales order lines of orders Open, Back Order or Shipping (the line's
warehouse, else the order's, else the item's default warehouse). Hard available (= available for
shipment, = available for issue) = on hand - the quantities on shipments not yet confirmed.
A line's change time moves when its on hand changes, and when its available or hard available
quantity is seen to have changed by an order or shipment since it was last read.

Seed keys (``POST /_sim/seed``, values plain or wrapped; see ``SEED_PLAN`` in acumatica.py for the
order): ``warehouses``, ``attributes``, ``item_classes``, ``sales_categories``, ``price_classes``,
``customer_classes``, ``template_items``, ``stock_items``, ``non_stock_items``, ``kits``,
``item_warehouses``, ``stock`` ([{InventoryID, WarehouseID, QtyOnHand}]), ``sales_prices`` (rows of the
price table: PriceType, PriceCode, InventoryID, UOM, BreakQty, Price, Promotion, EffectiveDate,
ExpirationDate, CurrencyID, Warehouse), ``price_worksheets``, ``inventory_receipts``; and
``{"demo": true}``, which loads ``demo_company_seed()``: the records the official Postman collection
names (customers GOODFOOD, FRUITICO..., items APJAM08..., warehouses WHOLESALE, RETAIL, MAIN, YOGI,
item classes, price classes, attributes, the documents its scenarios address) plus a small
catalog (a matrix item with children, a kit, customer price class, tier and promotional prices).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sandbox.sims.acumatica import (
    CANT_BE_EMPTY,
    CANT_FIND,
    ApiError,
    FilterError,
    Rec,
    Rejected,
    fail,
    flag,
    has,
    new_id,
    num,
    parse_datetime,
    record_errors,
    setv,
    val,
)

if TYPE_CHECKING:
    from sandbox.sims.acumatica import AcumaticaSim

ITEMS = ("StockItem", "NonStockItem", "TemplateItems")
ITEM_LABELS = {"StockItem": "stock item", "NonStockItem": "non-stock item", "TemplateItems": "template item"}
LIST_CONTROLS = {"combo", "multi select combo", "dropdown"}
ITEM_STATUSES = {"Active", "No Sales", "No Purchases", "No Request", "Inactive", "Marked for Deletion"}
PRICE_TYPES = ("Base", "Customer", "Customer Price Class")
OPEN_ORDER = ("Open", "Back Order", "Shipping")
INQUIRY_FIELDS: dict[str, tuple[str, ...]] = {
    "StorageDetailsInquiry": ("WarehouseID",),
    "InventoryQuantityAvailable": ("InventoryID", "LastModifiedDateTime"),
    "InventorySummaryInquiry": ("InventoryID", "WarehouseID", "LocationID", "Subitem", "ExpandByLotSerialNbr"),
    "SalesPricesInquiry": (
        "PriceType",
        "PriceCode",
        "InventoryID",
        "ItemClassID",
        "PriceClass",
        "EffectiveAsOf",
        "PriceManager",
        "PriceManagerIsMe",
        "PriceWorkgroup",
        "PriceWorkgroupIsMine",
        "TaxCalculationMode",
    ),
}
DATE_FIELDS = ("Date", "EffectiveDate", "ExpirationDate", "EffectiveAsOf", "LastModifiedDateTime")
Key = tuple[str, str]


def to_iso(value: Any) -> str:
    """A date as Acumatica answers it (``2024-06-07T00:00:00+00:00``); takes ISO or ``M/D/YYYY``."""
    text = str(value).strip()
    try:
        return parse_datetime(text).isoformat()
    except FilterError:
        pass
    for fmt in ("%m/%d/%Y", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %I:%M:%S %p"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC).isoformat()
        except ValueError:
            continue
    raise FilterError(f"not a date: {text!r}")


def when(value: Any) -> datetime | None:
    """A stored date/time value as an aware datetime (``None`` when empty)."""
    if value in (None, ""):
        return None
    return parse_datetime(to_iso(value))


def cf(value: Any) -> str:
    return "" if value is None else str(value).strip().casefold()


def collapse(lines: Any, *keys: str) -> list[Rec]:
    """Detail lines with one line per key: a new line naming a key already present updates that line."""
    out: list[Rec] = []
    for line in lines or []:
        if not isinstance(line, dict):
            continue
        k = tuple(cf(val(line, name)) for name in keys)
        twin = next((o for o in out if all(k) and tuple(cf(val(o, n)) for n in keys) == k), None)
        if twin is not None and line.get("_new"):
            for name, v in line.items():
                if name not in ("id", "_new") and not name.startswith("_"):
                    twin[name] = v
            continue
        out.append(line)
    return out


class Catalog:
    """The catalog rules and state of one ``AcumaticaSim`` (called under the sim's lock)."""

    def __init__(self, sim: AcumaticaSim) -> None:
        self.sim = sim
        self.prices: dict[int, Rec] = {}
        self.price_seq = 0
        self.children: dict[str, dict[str, str]] = {}
        """Template InventoryID (casefolded) -> {record id of a matrix item: its entity}."""
        self.template_of: dict[str, str] = {}
        """Record id of a matrix item -> its template's InventoryID (casefolded)."""
        self.members: dict[int, dict[str, str]] = {}
        """CategoryID -> {record id of an item in the category: its entity}."""
        self.seen: dict[Key, tuple[Decimal, Decimal]] = {}
        """(item record id, warehouse) -> (booked, picked) when last read: on hand moves the time itself."""
        self._pending_members: tuple[list[str], list[str]] = ([], [])

    # -- dispatch --------------------------------------------------------------------------------

    def apply(self, entity: str, cand: Rec, existing: Rec | None) -> None:
        """The entity's rules on a record about to be stored (errors go beside the values)."""
        for name in DATE_FIELDS:
            if has(cand, name) and name != "LastModifiedDateTime":
                try:
                    setv(cand, name, to_iso(val(cand, name)))
                except FilterError:
                    fail(cand, name, f"'{val(cand, name)}' is not a valid date.")
                    return
        getattr(self, f"_apply_{entity}")(cand, existing)
        if "NoteID" in _NOTE_ENTITIES.get(entity, ()) and not has(cand, "NoteID"):
            setv(cand, "NoteID", new_id())

    def after(self, entity: str, cand: Rec, existing: Rec | None) -> None:
        """Keep the indexes and linked records in step with a record just stored."""
        if entity in ITEMS:
            self._index_item(entity, cand, existing)
        if entity == "StockItem":
            for line in cand.get("WarehouseDetails") or []:
                self.ensure_warehouse(str(val(line, "WarehouseID")))
        elif entity == "Warehouse":
            self.sim.warehouses.add(str(val(cand, "WarehouseID")))
        elif entity == "ItemSalesCategory":
            self._after_category(cand, existing)
            cand["Members"] = self._members(int(num(cand, "CategoryID")))
        elif entity == "KitSpecification":
            kit = self._any_item(val(cand, "KitInventoryID"))
            if kit is not None:
                setv(kit, "IsAKit", True)
                if has(kit, "IsKit"):
                    setv(kit, "IsKit", True)
        elif entity == "ItemWarehouse":
            item = self.sim.find("StockItem", (str(val(cand, "InventoryID")),))
            if item is not None:
                self._stock_line(item, str(val(cand, "WarehouseID")))

    def deleting(self, entity: str, rec: Rec) -> None:
        """Refuse or follow the removal of a record."""
        if entity == "ItemSalesCategory":
            cid = int(num(rec, "CategoryID"))
            if any(int(num(c, "ParentCategoryID")) == cid for c in self.sim.records[entity].values()):
                raise ApiError(422, "The category has child categories; it cannot be deleted.")
            for rid, ent in list(self.members.get(cid, {}).items()):
                item = self.sim.records[ent].get(rid)
                if item is not None:
                    self._drop_category(item, cid)
            self.members.pop(cid, None)
        elif entity == "TemplateItems" and self.children.get(cf(val(rec, "InventoryID"))):
            raise ApiError(422, "The template item has matrix items; it cannot be deleted.")
        elif entity in ITEMS:
            self._unindex_item(rec)
        elif entity == "Warehouse":
            self.sim.warehouses.discard(str(val(rec, "WarehouseID")))

    def rekeyed(self, entity: str, old: str, rec: Rec) -> None:
        """A seeded record took another GUID: the indexes follow."""
        if entity in ITEMS:
            self._unindex_item({**rec, "id": old})
            self._index_item(entity, rec, None)

    def prepare(self, entity: str, rec: Rec) -> None:
        """Fill the detail lists that are views of other records before a record is answered."""
        if entity == "TemplateItems":
            rec["Matrix"] = self._matrix(rec)
        elif entity == "ItemSalesCategory":
            rec["Members"] = self._members(int(num(rec, "CategoryID")))

    def action(self, entity: str, name: str, rec: Rec, params: Rec) -> None:
        getattr(self, f"_do_{name}")(rec, params)

    # -- reference records ----------------------------------------------------------------------

    def _apply_Warehouse(self, cand: Rec, existing: Rec | None) -> None:
        _defaults(cand, existing, Active=True, Description=val(cand, "WarehouseID"))

    def _apply_CustomerPriceClass(self, cand: Rec, existing: Rec | None) -> None:
        _defaults(cand, existing, Description=val(cand, "PriceClassID"))

    def _apply_CustomerClass(self, cand: Rec, existing: Rec | None) -> None:
        _defaults(cand, existing, Description=val(cand, "ClassID"), CurrencyID="USD")

    def _apply_AttributeDefinition(self, cand: Rec, existing: Rec | None) -> None:
        _defaults(cand, existing, Description=val(cand, "AttributeID"), ControlType="Text", Internal=False)
        lines = collapse(cand.get("Values"), "ValueID")
        for i, line in enumerate(lines):
            if not has(line, "ValueID"):
                fail(line, "ValueID", CANT_BE_EMPTY.format("Value ID"))
            if not has(line, "Description"):
                setv(line, "Description", val(line, "ValueID"))
            if not has(line, "SortOrder"):
                setv(line, "SortOrder", i)
            if not has(line, "Disabled"):
                setv(line, "Disabled", False)
        cand["Values"] = lines

    def _apply_ItemClass(self, cand: Rec, existing: Rec | None) -> None:
        _defaults(
            cand,
            existing,
            Description=val(cand, "ClassID"),
            StockItem=True,
            ItemType="Finished Good",
            BaseUOM="EA",
            SalesUOM=val(cand, "BaseUOM", "EA"),
            PurchaseUOM=val(cand, "BaseUOM", "EA"),
        )
        lines = collapse(cand.get("Attributes"), "AttributeID")
        for i, line in enumerate(lines):
            self._definition(line)
            if not has(line, "Required"):
                setv(line, "Required", False)
            if not has(line, "SortOrder"):
                setv(line, "SortOrder", i)
        cand["Attributes"] = lines

    def _definition(self, line: Rec) -> Rec | None:
        """The attribute definition a line names (an error beside the line's AttributeID if none)."""
        aid = val(line, "AttributeID")
        if aid in (None, ""):
            fail(line, "AttributeID", CANT_BE_EMPTY.format("Attribute ID"))
            return None
        found = self.sim.find("AttributeDefinition", (str(aid),))
        if found is None:
            fail(line, "AttributeID", CANT_FIND.format("Attribute ID"))
            return None
        setv(line, "AttributeID", val(found, "AttributeID"))
        return found

    # -- categories -----------------------------------------------------------------------------

    def _apply_ItemSalesCategory(self, cand: Rec, existing: Rec | None) -> None:
        if not has(cand, "Description"):
            fail(cand, "Description", CANT_BE_EMPTY.format("Description"))
        _defaults(cand, existing, SortOrder=0, ParentCategoryID=0)
        parent = int(num(cand, "ParentCategoryID"))
        setv(cand, "ParentCategoryID", parent)
        me = int(num(cand, "CategoryID")) if has(cand, "CategoryID") else None
        if me is not None:
            setv(cand, "CategoryID", me)
        seen: set[int] = set()
        while parent:
            if parent == me or parent in seen:
                fail(cand, "ParentCategoryID", "A category cannot be its own parent or ancestor.")
                break
            seen.add(parent)
            found = self.sim.find("ItemSalesCategory", (str(parent),))
            if found is None:
                fail(cand, "ParentCategoryID", CANT_FIND.format("Parent Category"))
                break
            parent = int(num(found, "ParentCategoryID"))
        setv(cand, "Path", self._path(cand))
        before = {str(m.get("id")) for m in (existing or {}).get("Members") or []}
        lines = [m for m in cand.get("Members") or [] if isinstance(m, dict)]
        added: list[str] = []
        for line in lines:
            if not line.get("_new"):
                continue
            item = self._any_item(val(line, "InventoryID"))
            if item is None:
                fail(line, "InventoryID", CANT_FIND.format("Inventory ID"))
            else:
                added.append(item["id"])
        kept = {str(m.get("id")) for m in lines}
        self._pending_members = (added, sorted(before - kept))

    def _path(self, cat: Rec) -> str:
        names = [str(val(cat, "Description", ""))]
        parent, hops = int(num(cat, "ParentCategoryID")), 0
        while parent and hops < 100:
            found = self.sim.find("ItemSalesCategory", (str(parent),))
            if found is None:
                break
            names.append(str(val(found, "Description", "")))
            parent, hops = int(num(found, "ParentCategoryID")), hops + 1
        return "/".join(reversed(names))

    def _after_category(self, cat: Rec, existing: Rec | None) -> None:
        cid = int(num(cat, "CategoryID"))
        added, removed = self._pending_members
        self._pending_members = ([], [])
        for rid in added:
            for ent in ITEMS:
                item = self.sim.records[ent].get(rid)
                if item is not None and cid not in _categories(item):
                    item.setdefault("Categories", []).append({"id": new_id(), "CategoryID": {"value": cid}})
                    self._index_item(ent, item, None)
        for rid in removed:
            for ent in ITEMS:
                item = self.sim.records[ent].get(rid)
                if item is not None:
                    self._drop_category(item, cid)
        if existing is not None and (
            val(existing, "Description") != val(cat, "Description")
            or num(existing, "ParentCategoryID") != num(cat, "ParentCategoryID")
        ):
            self._refresh_paths(cid)

    def _refresh_paths(self, cid: int) -> None:
        """The Path of every category under ``cid`` (after a rename or a move)."""
        below: dict[int, list[Rec]] = {}
        for other in self.sim.records["ItemSalesCategory"].values():
            below.setdefault(int(num(other, "ParentCategoryID")), []).append(other)
        todo, seen = [cid], {cid}
        while todo:
            for child in below.get(todo.pop(), []):
                child_id = int(num(child, "CategoryID"))
                if child_id not in seen:
                    seen.add(child_id)
                    setv(child, "Path", self._path(child))
                    todo.append(child_id)

    def _drop_category(self, item: Rec, cid: int) -> None:
        for name in ("Categories", "SalesCategories"):
            if isinstance(item.get(name), list):
                item[name] = [ln for ln in item[name] if int(num(ln, "CategoryID")) != cid]
        self.members.get(cid, {}).pop(item["id"], None)

    def _members(self, cid: int) -> list[Rec]:
        rows = []
        for rid, ent in self.members.get(cid, {}).items():
            item = self.sim.records[ent].get(rid)
            if item is None:
                continue
            row: Rec = {"id": rid}
            for name in ("InventoryID", "Description", "ItemClass", "ItemStatus"):
                if has(item, name):
                    row[name] = {"value": val(item, name)}
            rows.append(row)
        return sorted(rows, key=lambda r: str(r["InventoryID"]["value"]))

    # -- items ----------------------------------------------------------------------------------

    def _any_item(self, iid: Any) -> Rec | None:
        if iid in (None, ""):
            return None
        for ent in ITEMS:
            found = self.sim.find(ent, (str(iid),))
            if found is not None:
                return found
        return None

    def apply_item(self, entity: str, cand: Rec, existing: Rec | None) -> None:
        """Rules shared by stock items, non-stock items and template items."""
        iid = val(cand, "InventoryID")
        if existing is None and iid not in (None, ""):
            for other in ITEMS:
                if other != entity and self.sim.find(other, (str(iid),)) is not None:
                    fail(cand, "InventoryID", f"The ID '{iid}' is already used by a {ITEM_LABELS[other]}.")
        if has(cand, "ItemStatus") and val(cand, "ItemStatus") not in ITEM_STATUSES:
            fail(cand, "ItemStatus", f"'{val(cand, 'ItemStatus')}' is not a valid item status.")
        cls = self.sim.find("ItemClass", (str(val(cand, "ItemClass", "")),)) if has(cand, "ItemClass") else None
        if existing is None and cls is not None and val(cls, "TaxCategoryID") and not has(cand, "TaxCategory"):
            setv(cand, "TaxCategory", val(cls, "TaxCategoryID"))
        template = val(cand, "TemplateItemID")
        if template and entity != "TemplateItems" and self.sim.find("TemplateItems", (str(template),)) is None:
            fail(cand, "TemplateItemID", CANT_FIND.format("Template Item"))
        self._item_attributes(cand, cls)
        for name in ("Categories", "SalesCategories"):
            if name in cand:
                cand[name] = collapse(cand.get(name), "CategoryID")
                for line in cand[name]:
                    found = self.sim.find("ItemSalesCategory", (str(val(line, "CategoryID", "")),))
                    if found is None:
                        fail(line, "CategoryID", CANT_FIND.format("Category ID"))
                    else:
                        setv(line, "CategoryID", val(found, "CategoryID"))
        if entity == "StockItem":
            self._warehouse_lines(cand, existing)

    def _item_attributes(self, cand: Rec, cls: Rec | None) -> None:
        lines = collapse(cand.get("Attributes"), "AttributeID")
        required = {cf(val(a, "AttributeID")): flag(a, "Required") for a in (cls or {}).get("Attributes") or []}
        present = {cf(val(ln, "AttributeID")) for ln in lines}
        for a in (cls or {}).get("Attributes") or []:
            if cf(val(a, "AttributeID")) not in present:
                lines.append({"id": new_id(), "AttributeID": {"value": val(a, "AttributeID")}})
        for line in lines:
            definition = self._definition(line)
            if definition is None:
                continue
            setv(line, "AttributeDescription", val(definition, "Description"))
            setv(line, "IsActive", True)
            setv(line, "Required", required.get(cf(val(line, "AttributeID")), False))
            self._attribute_value(line, definition)
        if lines or "Attributes" in cand:
            cand["Attributes"] = lines

    def _attribute_value(self, line: Rec, definition: Rec) -> None:
        value = val(line, "Value")
        if value in (None, ""):
            line.pop("ValueDescription", None)
            return
        control = cf(val(definition, "ControlType", "Text"))
        if control not in LIST_CONTROLS:
            setv(line, "ValueDescription", value)
            return
        allowed = {
            cf(val(v, "ValueID")): v
            for v in definition.get("Values") or []
            if isinstance(v, dict) and not flag(v, "Disabled")
        }
        parts = [p.strip() for p in str(value).split(",")] if control == "multi select combo" else [str(value)]
        bad = [p for p in parts if cf(p) not in allowed]
        if bad:
            fail(line, "Value", f"'{bad[0]}' is not a value of the attribute '{val(definition, 'AttributeID')}'.")
            return
        setv(line, "Value", ",".join(str(val(allowed[cf(p)], "ValueID")) for p in parts))
        setv(line, "ValueDescription", ", ".join(str(val(allowed[cf(p)], "Description")) for p in parts))

    def _warehouse_lines(self, cand: Rec, existing: Rec | None) -> None:
        lines = collapse(cand.get("WarehouseDetails"), "WarehouseID")
        old = {cf(val(ln, "WarehouseID")): ln for ln in (existing or {}).get("WarehouseDetails") or []}
        stamp = None
        for line in lines:
            if not has(line, "WarehouseID"):
                fail(line, "WarehouseID", CANT_BE_EMPTY.format("Warehouse"))
                continue
            if not has(line, "QtyOnHand"):
                setv(line, "QtyOnHand", 0.0)
            if not has(line, "Status"):
                setv(line, "Status", "Active")
            before = old.get(cf(val(line, "WarehouseID")))
            if before is None or num(before, "QtyOnHand") != num(line, "QtyOnHand") or "_Stamp" not in line:
                stamp = stamp or self.sim.stamp()
                line["_Stamp"] = stamp
        if lines and not has(cand, "DefaultWarehouseID"):
            setv(cand, "DefaultWarehouseID", val(lines[0], "WarehouseID"))
        default = cf(val(cand, "DefaultWarehouseID"))
        for line in lines:
            setv(line, "IsDefault", cf(val(line, "WarehouseID")) == default)
        if lines or "WarehouseDetails" in cand:
            cand["WarehouseDetails"] = lines

    def _apply_NonStockItem(self, cand: Rec, existing: Rec | None) -> None:
        if not has(cand, "InventoryID"):
            fail(cand, "InventoryID", CANT_BE_EMPTY.format("Inventory ID"))
        cls = self.sim.find("ItemClass", (str(val(cand, "ItemClass", "")),)) if has(cand, "ItemClass") else None
        _defaults(
            cand,
            existing,
            ItemStatus="Active",
            ItemClass="NONSTOCK",
            ItemType="Non-Stock Item",
            BaseUnit=val(cls, "BaseUOM", "EA"),
            SalesUnit=val(cls, "SalesUOM", "EA"),
            PurchaseUnit=val(cls, "PurchaseUOM", "EA"),
            DefaultPrice=0.0,
            RequireShipment=False,
            RequireReceipt=False,
            IsKit=False,
        )
        self.apply_item("NonStockItem", cand, existing)

    def _apply_TemplateItems(self, cand: Rec, existing: Rec | None) -> None:
        if not has(cand, "InventoryID"):
            fail(cand, "InventoryID", CANT_BE_EMPTY.format("Inventory ID"))
        _defaults(
            cand,
            existing,
            ItemStatus="Active",
            ItemClass="STOCKITEM",
            IsStockItem=True,
            BaseUOM="EA",
            SalesUOM=val(cand, "BaseUOM", "EA"),
            DefaultPrice=0.0,
            RequireShipment=True,
        )
        cand.pop("Matrix", None)
        self.apply_item("TemplateItems", cand, existing)

    def _index_item(self, entity: str, item: Rec, existing: Rec | None) -> None:
        self._unindex_item(existing or item)
        if has(item, "TemplateItemID"):
            template = cf(val(item, "TemplateItemID"))
            self.children.setdefault(template, {})[item["id"]] = entity
            self.template_of[item["id"]] = template
        for cid in _categories(item):
            self.members.setdefault(cid, {})[item["id"]] = entity

    def _unindex_item(self, item: Rec) -> None:
        template = self.template_of.pop(item["id"], None)
        if template is not None:
            self.children.get(template, {}).pop(item["id"], None)
        for cid in _categories(item):
            self.members.get(cid, {}).pop(item["id"], None)

    def _matrix(self, template: Rec) -> list[Rec]:
        rows = []
        for rid, ent in self.children.get(cf(val(template, "InventoryID")), {}).items():
            child = self.sim.records[ent].get(rid)
            if child is None:
                continue
            row: Rec = {"id": rid}
            for name in ("InventoryID", "Description", "DefaultPrice", "MSRP", "ItemStatus", "ExportToExternal"):
                if has(child, name):
                    row[name] = {"value": val(child, name)}
            rows.append(row)
        return sorted(rows, key=lambda r: str(r["InventoryID"]["value"]))

    def _apply_KitSpecification(self, cand: Rec, existing: Rec | None) -> None:
        kit = None
        if not has(cand, "KitInventoryID"):
            fail(cand, "KitInventoryID", CANT_BE_EMPTY.format("Kit Inventory ID"))
        else:
            kit = self.sim.find("StockItem", (str(val(cand, "KitInventoryID")),)) or self.sim.find(
                "NonStockItem", (str(val(cand, "KitInventoryID")),)
            )
            if kit is None:
                fail(cand, "KitInventoryID", CANT_FIND.format("Kit Inventory ID"))
        if not has(cand, "RevisionID"):
            fail(cand, "RevisionID", CANT_BE_EMPTY.format("Revision"))
        _defaults(cand, existing, Active=True, Description=val(kit, "Description"))
        if kit is not None:
            setv(cand, "IsNonStock", self.sim.find("NonStockItem", (str(val(cand, "KitInventoryID")),)) is not None)
        for name, field, entity in (
            ("StockComponents", "StockInventoryID", "StockItem"),
            ("NonStockComponents", "NonStockInventoryID", "NonStockItem"),
        ):
            lines = collapse(cand.get(name), field)
            for line in lines:
                part = self.sim.find(entity, (str(val(line, field, "")),)) if has(line, field) else None
                if part is None:
                    fail(line, field, CANT_FIND.format("Component ID"))
                    continue
                if not has(line, "ComponentQty"):
                    setv(line, "ComponentQty", 1.0)
                elif num(line, "ComponentQty") <= 0:
                    fail(line, "ComponentQty", "The component quantity must be greater than zero.")
                if not has(line, "UOM"):
                    setv(line, "UOM", val(part, "BaseUOM") or val(part, "BaseUnit") or "EA")
                if not has(line, "AllowComponentQtyVariance"):
                    setv(line, "AllowComponentQtyVariance", False)
            if lines or name in cand:
                cand[name] = lines

    def _apply_ItemWarehouse(self, cand: Rec, existing: Rec | None) -> None:
        for name, entity, label in (
            ("InventoryID", "StockItem", "Inventory ID"),
            ("WarehouseID", "Warehouse", "Warehouse"),
        ):
            if not has(cand, name):
                fail(cand, name, CANT_BE_EMPTY.format(label))
            elif self.sim.find(entity, (str(val(cand, name)),)) is None:
                fail(cand, name, CANT_FIND.format(label))
        _defaults(cand, existing, Status="Active")

    # -- warehouses and stock -------------------------------------------------------------------

    def ensure_warehouse(self, wid: str) -> None:
        """A warehouse record for an ID named by an item or a seed (created when missing)."""
        if wid and self.sim.find("Warehouse", (wid,)) is None:
            self.sim.put("Warehouse", {"WarehouseID": {"value": wid}}, {}, {})
        self.sim.warehouses.add(wid)

    def _stock_line(self, item: Rec, wid: str) -> Rec:
        """The item's line for a warehouse (added, with on hand 0, when missing)."""
        lines = item.setdefault("WarehouseDetails", [])
        for line in lines:
            if cf(val(line, "WarehouseID")) == cf(wid):
                return line
        self.ensure_warehouse(wid)
        line = {
            "id": new_id(),
            "WarehouseID": {"value": wid},
            "QtyOnHand": {"value": 0.0},
            "Status": {"value": "Active"},
            "IsDefault": {"value": not lines},
            "_Stamp": self.sim.stamp(),
        }
        lines.append(line)
        if not has(item, "DefaultWarehouseID"):
            setv(item, "DefaultWarehouseID", wid)
        return line

    def add_stock(self, item: Rec, wid: str, qty: Decimal) -> None:
        """Change on hand of one item in one warehouse; the line's change time moves."""
        line = self._stock_line(item, wid)
        setv(line, "QtyOnHand", num(line, "QtyOnHand") + qty)
        line["_Stamp"] = self.sim.stamp()

    def _commitments(self) -> tuple[dict[Key, Decimal], dict[Key, Decimal]]:
        """Open sales order quantities and quantities on unconfirmed shipments, per (item, warehouse)."""
        booked: dict[Key, Decimal] = {}
        picked: dict[Key, Decimal] = {}
        for order in self.sim.records["SalesOrder"].values():
            if val(order, "Status") not in OPEN_ORDER:
                continue
            for ln in order.get("Details") or []:
                left = num(ln, "OrderQty") - num(ln, "ShippedQty")
                if left > 0 and has(ln, "InventoryID"):
                    k = self._where(ln, order)
                    booked[k] = booked.get(k, Decimal(0)) + left
        for shipment in self.sim.records["Shipment"].values():
            if val(shipment, "Status") not in ("Open", "On Hold") or val(shipment, "Operation") == "Receipt":
                continue
            for d in shipment.get("Details") or []:
                if has(d, "InventoryID"):
                    k = self._where(d, shipment)
                    picked[k] = picked.get(k, Decimal(0)) + num(d, "ShippedQty")
        return booked, picked

    def _where(self, line: Rec, doc: Rec) -> Key:
        iid = str(val(line, "InventoryID"))
        wid = val(line, "WarehouseID") or val(doc, "WarehouseID")
        if not wid:
            item = self.sim.find("StockItem", (iid,))
            wid = val(item, "DefaultWarehouseID", "")
        return cf(iid), cf(wid)

    def stock_rows(self, inventory: Any = None, warehouse: Any = None) -> Iterator[tuple[Rec, Rec, dict[str, Any]]]:
        """(item, warehouse line, quantities) for stock items, optionally of one item or warehouse."""
        booked, picked = self._commitments()
        if inventory not in (None, ""):
            one = self.sim.find("StockItem", (str(inventory),))
            items = [one] if one is not None else []
        else:
            items = sorted(self.sim.records["StockItem"].values(), key=lambda r: str(val(r, "InventoryID")))
        for item in items:
            for line in item.get("WarehouseDetails") or []:
                if warehouse not in (None, "") and cf(val(line, "WarehouseID")) != cf(warehouse):
                    continue
                k = (cf(val(item, "InventoryID")), cf(val(line, "WarehouseID")))
                on_hand = num(line, "QtyOnHand")
                qty = {
                    "QtyOnHand": on_hand,
                    "QtyAvailable": on_hand - booked.get(k, Decimal(0)),
                    "QtyHardAvailable": on_hand - picked.get(k, Decimal(0)),
                }
                self._observe(item, line, (booked.get(k, Decimal(0)), picked.get(k, Decimal(0))))
                yield item, line, qty

    def _observe(self, item: Rec, line: Rec, fingerprint: tuple[Decimal, Decimal]) -> None:
        key = (item["id"], cf(val(line, "WarehouseID")))
        before = self.seen.get(key)
        if "_Stamp" not in line or (before is not None and before != fingerprint):
            line["_Stamp"] = self.sim.stamp()
        self.seen[key] = fingerprint

    # -- receipts -------------------------------------------------------------------------------

    def _apply_InventoryReceipt(self, cand: Rec, existing: Rec | None) -> None:
        if existing is not None and val(existing, "Status") == "Released":
            fail(cand, "Status", "A released receipt cannot be changed.")
            return
        setv(cand, "Status", "On Hold" if flag(cand, "Hold") else "Balanced")
        _defaults(cand, existing, Hold=False, Date=self._today())
        if not has(cand, "PostPeriod"):
            setv(cand, "PostPeriod", self.sim.now().strftime("%m%Y"))
        lines = [ln for ln in cand.get("Details") or [] if isinstance(ln, dict)]
        total_qty = total_cost = Decimal(0)
        for i, line in enumerate(lines, start=1):
            setv(line, "LineNumber", i)
            item = (
                self.sim.find("StockItem", (str(val(line, "InventoryID", "")),)) if has(line, "InventoryID") else None
            )
            if item is None:
                fail(line, "InventoryID", CANT_FIND.format("Inventory ID"))
                continue
            if not has(line, "WarehouseID"):
                setv(line, "WarehouseID", val(item, "DefaultWarehouseID") or val(cand, "WarehouseID"))
            if not has(line, "WarehouseID") or self.sim.find("Warehouse", (str(val(line, "WarehouseID")),)) is None:
                fail(line, "WarehouseID", CANT_FIND.format("Warehouse"))
            if num(line, "Qty") <= 0:
                fail(line, "Qty", "The quantity must be greater than zero.")
            if not has(line, "UOM"):
                setv(line, "UOM", val(item, "BaseUOM", "EA"))
            if not has(line, "Description"):
                setv(line, "Description", val(item, "Description"))
            setv(line, "ExtCost", num(line, "Qty") * num(line, "UnitCost"))
            total_qty += num(line, "Qty")
            total_cost += num(line, "ExtCost")
        cand["Details"] = lines
        setv(cand, "TotalQty", total_qty)
        setv(cand, "TotalCost", total_cost)

    def _do_ReleaseInventoryReceipt(self, receipt: Rec, params: Rec) -> None:
        if val(receipt, "Status") != "Balanced":
            raise ApiError(422, f"The receipt has the {val(receipt, 'Status')} status; it cannot be released.")
        for line in receipt.get("Details") or []:
            item = self.sim.find("StockItem", (str(val(line, "InventoryID")),))
            if item is None:
                raise ApiError(422, CANT_FIND.format("Inventory ID"))
            self.add_stock(item, str(val(line, "WarehouseID")), num(line, "Qty"))
        setv(receipt, "Status", "Released")
        self.sim._touch("InventoryReceipt", receipt)

    # -- prices ---------------------------------------------------------------------------------

    def _apply_SalesPriceWorksheet(self, cand: Rec, existing: Rec | None) -> None:
        if existing is not None and val(existing, "Status") == "Released":
            fail(cand, "Status", "A released worksheet cannot be changed.")
            return
        _defaults(cand, existing, Hold=False, OverwriteOverlappingPrices=True)
        if not has(cand, "EffectiveDate"):
            setv(cand, "EffectiveDate", self._today())
        setv(cand, "Status", "On Hold" if flag(cand, "Hold") else "Open")
        lines = [ln for ln in cand.get("SalesPrices") or [] if isinstance(ln, dict)]
        used = [int(num(ln, "LineID")) for ln in lines if has(ln, "LineID")]
        nxt = max(used, default=0)
        for line in lines:
            if not has(line, "LineID"):
                nxt += 1
                setv(line, "LineID", nxt)
            if has(cand, "ReferenceNbr"):
                setv(line, "ReferenceNbr", val(cand, "ReferenceNbr"))
            self._price_line(line, "PendingPrice")
            if not any("error" in v for v in line.values() if isinstance(v, dict)):
                current = self._find_price(line, when(val(cand, "EffectiveDate")))
                setv(line, "SourcePrice", num(current, "Price"))
        cand["SalesPrices"] = lines

    def _price_line(self, line: Rec, price_field: str) -> Rec | None:
        """Check and complete a price line (worksheet line or seeded row); the item it prices."""
        if not has(line, "PriceType"):
            setv(line, "PriceType", "Base")
        ptype = val(line, "PriceType")
        if ptype not in PRICE_TYPES:
            fail(line, "PriceType", f"'{ptype}' is not a price type ({', '.join(PRICE_TYPES)}).")
        elif ptype == "Base":
            line.pop("PriceCode", None)
        elif not has(line, "PriceCode"):
            fail(line, "PriceCode", CANT_BE_EMPTY.format("Price Code"))
        else:
            entity = "Customer" if ptype == "Customer" else "CustomerPriceClass"
            if self.sim.find(entity, (str(val(line, "PriceCode")),)) is None:
                fail(line, "PriceCode", CANT_FIND.format("Price Code"))
        item = self._any_item(val(line, "InventoryID"))
        if item is None:
            fail(line, "InventoryID", CANT_FIND.format("Inventory ID"))
        else:
            setv(line, "InventoryID", val(item, "InventoryID"))
            if not has(line, "Description"):
                setv(line, "Description", val(item, "Description"))
            if not has(line, "UOM"):
                setv(line, "UOM", val(item, "SalesUOM") or val(item, "SalesUnit") or val(item, "BaseUOM") or "EA")
        if not has(line, "BreakQty"):
            setv(line, "BreakQty", 0.0)
        if not has(line, "CurrencyID"):
            setv(line, "CurrencyID", "USD")
        if not has(line, price_field):
            fail(line, price_field, CANT_BE_EMPTY.format(price_field))
        elif num(line, price_field) < 0:
            fail(line, price_field, "The price cannot be negative.")
        return item

    def _price_key(self, row: Rec) -> tuple[Any, ...]:
        return (
            val(row, "PriceType"),
            cf(val(row, "PriceCode")),
            cf(val(row, "InventoryID")),
            cf(val(row, "UOM")),
            num(row, "BreakQty"),
            cf(val(row, "CurrencyID")),
            cf(val(row, "Warehouse")),
            flag(row, "Promotion"),
        )

    def _find_price(self, line: Rec, at: datetime | None) -> Rec | None:
        key = self._price_key(line)
        for row in self.prices.values():
            if self._price_key(row) == key and _effective(row, at or self.sim.now()):
                return row
        return None

    def put_price(self, fields: Rec, overwrite: bool = True) -> Rec:
        """Write one row of the effective price table (same key and start date: the price changes)."""
        key, start = self._price_key(fields), when(val(fields, "EffectiveDate"))
        stamp = self.sim.stamp()
        for row in self.prices.values():
            if self._price_key(row) != key:
                continue
            if when(val(row, "EffectiveDate")) == start:
                for name in ("Price", "ExpirationDate", "Description", "Tax"):
                    if has(fields, name):
                        row[name] = {"value": val(fields, name)}
                    else:
                        row.pop(name, None)
                setv(row, "LastModifiedDateTime", stamp)
                return row
            older = when(val(row, "EffectiveDate"))
            ends = when(val(row, "ExpirationDate"))
            if start is None or not overwrite or flag(row, "Promotion"):
                continue
            if (older is None or older < start) and (ends is None or ends >= start):
                setv(row, "ExpirationDate", (start - timedelta(days=1)).isoformat())
                setv(row, "LastModifiedDateTime", stamp)
        self.price_seq += 1
        row = {"id": new_id()}
        for name in (
            "PriceType",
            "PriceCode",
            "InventoryID",
            "Description",
            "UOM",
            "BreakQty",
            "Price",
            "Promotion",
            "EffectiveDate",
            "ExpirationDate",
            "CurrencyID",
            "Warehouse",
            "Tax",
        ):
            if has(fields, name):
                row[name] = {"value": val(fields, name)}
        setv(row, "Promotion", flag(fields, "Promotion"))
        setv(row, "TaxCalculationMode", "Gross" if val(fields, "Tax") else "Net")
        setv(row, "RecordID", self.price_seq)
        setv(row, "NoteID", new_id())
        setv(row, "CreatedDateTime", stamp)
        setv(row, "LastModifiedDateTime", stamp)
        self.prices[self.price_seq] = row
        return row

    def _do_ReleaseSalesPriceWorksheet(self, sheet: Rec, params: Rec) -> None:
        if val(sheet, "Status") != "Open":
            raise ApiError(422, f"The worksheet has the {val(sheet, 'Status')} status; it cannot be released.")
        for line in sheet.get("SalesPrices") or []:
            row = copy.deepcopy(line)
            row["Price"] = {"value": val(line, "PendingPrice")}
            row["EffectiveDate"] = {"value": val(sheet, "EffectiveDate")}
            row["ExpirationDate"] = {"value": val(sheet, "ExpirationDate")}
            self.put_price(row, flag(sheet, "OverwriteOverlappingPrices"))
        setv(sheet, "Status", "Released")
        self.sim._touch("SalesPriceWorksheet", sheet)

    # -- inquiries ------------------------------------------------------------------------------

    def inquiry(self, name: str, body: Any) -> Rec:
        """An inquiry's answer: the filter given, with its results."""
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise ApiError(400, "The request is invalid.")
        rec: Rec = {"id": new_id(), "_cleared": set()}
        for field in INQUIRY_FIELDS[name]:
            v = body.get(field)
            if isinstance(v, dict) and "value" in v and v["value"] not in (None, ""):
                rec[field] = {"value": v["value"]}
            elif isinstance(v, dict) and "value" in v:
                rec["_cleared"].add(field)
        for field in ("LastModifiedDateTime", "EffectiveAsOf"):
            if has(rec, field):
                try:
                    setv(rec, field, to_iso(val(rec, field)))
                except FilterError:
                    fail(rec, field, f"'{val(rec, field)}' is not a valid date.")
        getattr(self, f"_inquire_{name}")(rec)
        errors = record_errors(rec)
        if errors:
            rec["error"] = errors[0].split(": ", 1)[-1]
            raise Rejected(rec, "; ".join(errors))
        return rec

    def _inquire_StorageDetailsInquiry(self, rec: Rec) -> None:
        rows = []
        for item, line, qty in self.stock_rows(warehouse=val(rec, "WarehouseID")):
            rows.append(
                _row(
                    InventoryID=val(item, "InventoryID"),
                    WarehouseID=val(line, "WarehouseID"),
                    QtyOnHand=qty["QtyOnHand"],
                    QtyAvailable=qty["QtyAvailable"],
                    QtyAvailableforIssue=qty["QtyHardAvailable"],
                    QtyHardAvailable=qty["QtyHardAvailable"],
                    LastModifiedDateofWarehouseQty=line["_Stamp"],
                )
            )
        rec["StorageDetails"] = rows

    def _inquire_InventoryQuantityAvailable(self, rec: Rec) -> None:
        since = when(val(rec, "LastModifiedDateTime"))
        totals: dict[str, tuple[Rec, Decimal, str]] = {}
        for item, line, qty in self.stock_rows(inventory=val(rec, "InventoryID")):
            _, total, last = totals.get(item["id"], (item, Decimal(0), ""))
            totals[item["id"]] = (item, total + qty["QtyAvailable"], max(last, line["_Stamp"]))
        rows = []
        for item, total, last in totals.values():
            if since is not None and parse_datetime(last) < since:
                continue
            rows.append(_row(InventoryID=val(item, "InventoryID"), QtyAvailable=total, LastModifiedDateTime=last))
        rec["Results"] = rows

    def _inquire_InventorySummaryInquiry(self, rec: Rec) -> None:
        if not has(rec, "InventoryID"):
            fail(rec, "InventoryID", CANT_BE_EMPTY.format("Inventory ID"))
            return
        item = self.sim.find("StockItem", (str(val(rec, "InventoryID")),))
        if item is None:
            fail(rec, "InventoryID", CANT_FIND.format("Inventory ID"))
            return
        rows = []
        for _, line, qty in self.stock_rows(inventory=val(item, "InventoryID"), warehouse=val(rec, "WarehouseID")):
            rows.append(
                _row(
                    WarehouseID=val(line, "WarehouseID"),
                    QtyOnHand=qty["QtyOnHand"],
                    QtyAvailable=qty["QtyAvailable"],
                    QtyAvailableForShipment=qty["QtyHardAvailable"],
                    QtyNotAvailable=Decimal(0),
                    BaseUOM=val(item, "BaseUOM", "EA"),
                )
            )
        rec["Results"] = rows

    def _inquire_SalesPricesInquiry(self, rec: Rec) -> None:
        ptype = val(rec, "PriceType") or "All Prices"
        setv(rec, "PriceType", ptype)
        if not has(rec, "EffectiveAsOf") and "EffectiveAsOf" not in rec["_cleared"]:
            setv(rec, "EffectiveAsOf", self._today())  # the screen's default: the business date
        if ptype != "All Prices" and ptype not in PRICE_TYPES:
            fail(rec, "PriceType", f"'{ptype}' is not a price type.")
            return
        at = when(val(rec, "EffectiveAsOf"))
        rows = []
        for row in sorted(self.prices.values(), key=lambda r: int(val(r, "RecordID"))):
            if ptype != "All Prices" and val(row, "PriceType") != ptype:
                continue
            if has(rec, "PriceCode") and cf(val(row, "PriceCode")) != cf(val(rec, "PriceCode")):
                continue
            if has(rec, "InventoryID") and cf(val(row, "InventoryID")) != cf(val(rec, "InventoryID")):
                continue
            if at is not None and not _effective(row, at):
                continue
            if has(rec, "ItemClassID") or has(rec, "PriceClass"):
                item = self._any_item(val(row, "InventoryID"))
                if has(rec, "ItemClassID") and cf(val(item, "ItemClass")) != cf(val(rec, "ItemClassID")):
                    continue
                if has(rec, "PriceClass") and cf(val(item, "PriceClass")) != cf(val(rec, "PriceClass")):
                    continue
            rows.append(copy.deepcopy(row))
        rec["SalesPriceDetails"] = rows

    # -- seeding --------------------------------------------------------------------------------

    def _today(self) -> str:
        return self.sim.now().date().isoformat() + "T00:00:00+00:00"

    def seed_stock(self, row: Rec) -> dict[str, Any]:
        """``{"InventoryID", "WarehouseID", "QtyOnHand"}``: set on hand of an item in a warehouse."""
        item = self.sim.find("StockItem", (str(val(row, "InventoryID", "")),))
        if item is None:
            raise ValueError(f"stock: no stock item {val(row, 'InventoryID')!r}")
        wid = str(val(row, "WarehouseID") or val(item, "DefaultWarehouseID") or "WHOLESALE")
        line = self._stock_line(item, wid)
        self.add_stock(item, wid, num(row, "QtyOnHand") - num(line, "QtyOnHand"))
        return {"InventoryID": val(item, "InventoryID"), "WarehouseID": wid}

    def seed_price(self, row: Rec) -> dict[str, Any]:
        """One row of the price table, checked as a worksheet line is (``Price`` instead of ``PendingPrice``)."""
        self._price_line(row, "Price")
        errors = record_errors(row)
        if errors:
            raise ValueError(f"sales price rejected: {'; '.join(errors)}")
        for name in ("EffectiveDate", "ExpirationDate"):
            if has(row, name):
                setv(row, name, to_iso(val(row, name)))
        if not has(row, "EffectiveDate"):
            setv(row, "EffectiveDate", self._today())
        saved = self.put_price(row)
        return {"RecordID": val(saved, "RecordID"), "InventoryID": val(saved, "InventoryID")}


_NOTE_ENTITIES = {
    "ItemSalesCategory": ("NoteID",),
    "CustomerPriceClass": ("NoteID",),
    "NonStockItem": ("NoteID",),
}


def _defaults(cand: Rec, existing: Rec | None, **values: Any) -> None:
    """Field defaults of a new record."""
    if existing is not None:
        return
    for name, value in values.items():
        if not has(cand, name) and value is not None:
            setv(cand, name, value)


def _categories(item: Rec) -> set[int]:
    out = set()
    for name in ("Categories", "SalesCategories"):
        for line in item.get(name) or []:
            if isinstance(line, dict) and has(line, "CategoryID"):
                try:
                    out.add(int(val(line, "CategoryID")))
                except (TypeError, ValueError):
                    continue
    return out


def _effective(row: Rec, at: datetime) -> bool:
    start, end = when(val(row, "EffectiveDate")), when(val(row, "ExpirationDate"))
    if start is not None and start.date() > at.date():
        return False
    return end is None or end.date() >= at.date()


def _row(**fields: Any) -> Rec:
    row: Rec = {"id": new_id()}
    for name, value in fields.items():
        row[name] = {"value": float(value) if isinstance(value, Decimal) else value}
    return row
