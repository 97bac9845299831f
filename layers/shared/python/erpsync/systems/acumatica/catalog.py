"""Acumatica's catalog as erpsync's sources: attribute definitions, item sales categories, stock,
non-stock and template items (matrix), stock per warehouse and effective sales prices.

Change tracking differs by entity (docs/CATALOG.md; ../shared/reference/CATALOG-NOTES.md §1.9):

- ``AttributeDefinition``, ``ItemSalesCategory``, ``StockItem``, ``NonStockItem``, ``TemplateItems``:
  ``LastModifiedDateTime``, read in time windows (``AcumaticaErp.pages``);
- stock: ``InventoryQuantityAvailable`` with ``LastModifiedDateTime`` is the only server-side stock
  delta (which SKUs moved); their quantities per warehouse come from ``InventorySummaryInquiry``
  (one request per SKU) or, when many moved, from ``StorageDetailsInquiry`` (one per warehouse);
- prices: ``SalesPricesInquiry`` has no header timestamp; its rows carry ``LastModifiedDateTime``,
  so one pass reads every row and keeps the SKUs with a row changed since the cursor (the whole
  price set of each goes in the notice). A deleted price row shows only in a full comparison.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from erpsync.errors import NotFoundError
from erpsync.model import ChangeNotice
from erpsync.model.catalog import (
    Attribute,
    AttributeOption,
    BundleComponent,
    Category,
    PriceSet,
    Product,
    SpecialPrice,
    StockLevel,
    TierPrice,
    WarehouseQty,
)
from erpsync.systems.acumatica.mapping import dec, value, when
from erpsync.systems.ports import Page

PAGE = 100
ACTIVE = ("Active", "No Purchases", "No Request")
"""Item statuses that may be sold (``Inactive``, ``No Sales``, ``Marked for Deletion`` may not)."""
ITEM_EXPAND = "Attributes,Categories"
ENTITY_MEMORY = 10_000
"""Items whose entity (stock, non-stock, template) a products port remembers, to read them first there."""
CONTROL_TYPES = {"Combo": "select", "Multi Select Combo": "multiselect", "Checkbox": "boolean", "Datetime": "date"}
ALL_GROUPS = "ALL"


def stamp(raw: Any) -> str | None:
    """An Acumatica time as a UTC ISO string (versions compare as text)."""
    moment = when(raw)
    return moment.astimezone(UTC).isoformat() if moment else None


def _rows(record: dict[str, Any], detail: str) -> list[dict[str, Any]]:
    rows = record.get(detail) or []
    return [r for r in rows if isinstance(r, dict)]


# -- records -> canonical ------------------------------------------------------------------------


def attribute(record: dict[str, Any]) -> Attribute:
    control = str(value(record, "ControlType", "") or "")
    options = [
        AttributeOption(
            value_id=str(value(r, "ValueID", "")),
            label=str(value(r, "Description", "") or value(r, "ValueID", "")),
            sort_order=int(value(r, "SortOrder", 0) or 0),
            disabled=bool(value(r, "Disabled", False)),
        )
        for r in _rows(record, "Values")
        if value(r, "ValueID")
    ]
    return Attribute(
        source_id=str(value(record, "AttributeID", "")),
        label=str(value(record, "Description", "") or value(record, "AttributeID", "")),
        input=CONTROL_TYPES.get(control, "select" if options else "text"),
        options=options,
        version=stamp(value(record, "LastModifiedDateTime")),
    )


def category(record: dict[str, Any]) -> Category:
    parent = value(record, "ParentCategoryID")
    return Category(
        source_id=str(value(record, "CategoryID", "")),
        name=str(value(record, "Description", "") or "").strip(),
        parent_id=str(parent) if parent not in (None, "", 0, "0") else None,
        position=int(value(record, "SortOrder", 0) or 0),
        version=stamp(value(record, "LastModifiedDateTime")),
    )


def product(record: dict[str, Any], entity: str) -> Product:
    """A stock, non-stock or template item (``entity``) as a canonical product."""
    status = str(value(record, "ItemStatus", "Active") or "Active")
    weight = value(record, "DimensionWeight", value(record, "Weight"))
    categories = _rows(record, "Categories") + _rows(record, "SalesCategories")
    export = value(record, "ExportToExternal")
    return Product(
        source_id=str(value(record, "InventoryID", "")).strip(),
        kind="configurable" if entity == "TemplateItems" else ("virtual" if entity == "NonStockItem" else "simple"),
        name=str(value(record, "Description", "") or "").strip(),
        description=str(value(record, "Content", "") or ""),
        price=dec(record, "DefaultPrice") if value(record, "DefaultPrice") is not None else None,
        weight=Decimal(str(weight)) if weight not in (None, "") else None,
        active=status in ACTIVE,
        visible=export is not False and str(value(record, "Visibility", "") or "") != "Invisible",
        item_class=value(record, "ItemClass"),
        tax_category=value(record, "TaxCategory"),
        attributes={
            str(value(a, "AttributeID")): str(value(a, "Value"))
            for a in _rows(record, "Attributes")
            if value(a, "AttributeID") and value(a, "Value") not in (None, "")
        },
        categories=sorted({str(value(c, "CategoryID")) for c in categories if value(c, "CategoryID") is not None}),
        parent=value(record, "TemplateItemID") or None,
        version=stamp(value(record, "LastModifiedDateTime") or value(record, "LastModified")),
    )


def variant_attributes(children: list[Product]) -> list[str]:
    """The attributes whose values differ across a template's children (the Default endpoint does
    not say which class attributes are variant ones)."""
    if len(children) < 2:
        return sorted({a for c in children for a in c.attributes})
    names = set.intersection(*(set(c.attributes) for c in children))
    return sorted(a for a in names if len({c.attributes[a] for c in children}) > 1)


def warehouse_qty(row: dict[str, Any], for_shipping: str) -> WarehouseQty:
    return WarehouseQty(
        on_hand=dec(row, "QtyOnHand"),
        available=dec(row, "QtyAvailable"),
        for_shipping=dec(row, for_shipping),
    )


def price_set(
    sku: str,
    rows: list[dict[str, Any]],
    *,
    default: Decimal | None,
    currency: str | None,
    uom: str | None,
    now: datetime | None = None,
) -> PriceSet:
    """One SKU's effective prices: ``Base`` with no break -> base (else the item's default price);
    a promotional ``Base`` row -> the special price with its dates; breaks and price classes ->
    tiers. Rows in another currency, another unit than the sales unit, or for one warehouse are
    not store prices and are left out."""
    special: SpecialPrice | None = None
    in_force: dict[tuple[str, Decimal], tuple[datetime, Decimal]] = {}
    """(group, break quantity) -> the latest start and its price (a later price closes an earlier one)."""
    today = now or datetime.now(UTC)
    oldest = datetime.min.replace(tzinfo=UTC)
    for row in rows:
        if value(row, "Warehouse") or (currency and value(row, "CurrencyID") not in (None, "", currency)):
            continue
        if uom and value(row, "UOM") not in (None, "", uom):
            continue
        starts, ends = when(value(row, "EffectiveDate")), when(value(row, "ExpirationDate"))
        if ends is not None and ends < today:
            continue  # expired
        promotion = bool(value(row, "Promotion"))
        if starts is not None and starts > today and not promotion:
            continue  # not yet in force (a markdown to come goes to the store with its dates)
        kind = str(value(row, "PriceType", "") or "")
        price = dec(row, "Price")
        qty = dec(row, "BreakQty")
        if kind == "Base" and promotion:
            if special is None or (special.starts or today) > (starts or today):  # the one that comes first
                special = SpecialPrice(price=price, starts=starts, ends=ends)
            continue
        if kind == "Base":
            key = (ALL_GROUPS, qty if qty > 1 else Decimal(0))
        elif kind == "Customer Price Class" and value(row, "PriceCode"):
            key = (str(value(row, "PriceCode")), max(qty, Decimal(1)))
        else:
            continue  # per-customer prices have no store equivalent
        if key not in in_force or in_force[key][0] <= (starts or oldest):
            in_force[key] = (starts or oldest, price)
    base_row = in_force.pop((ALL_GROUPS, Decimal(0)), None)
    tiers = [TierPrice(group=g, qty=q, price=p) for (g, q), (_, p) in sorted(in_force.items())]
    base = base_row[1] if base_row is not None else default
    # the version is when the prices were read, not the newest row in force: a promotion that
    # expired or a row deleted takes its newer stamp away, and an older-looking reading would then
    # be skipped as stale, leaving the store with what the ERP no longer has
    return PriceSet(sku=sku, base=base, special=special, tiers=tiers, version=today.astimezone(UTC).isoformat())


# -- the ports -----------------------------------------------------------------------------------


class AcumaticaAttributes:
    def __init__(self, erp: Any) -> None:
        self.erp, self.client = erp, erp.client

    def changes(self, since: datetime) -> Iterator[Page]:
        return self.erp.pages("AttributeDefinition", "AttributeID", "", since, "attribute")

    def get(self, id: str) -> Attribute:
        return attribute(self.client.get_record("AttributeDefinition", id, expand="Values"))


class AcumaticaCategories:
    def __init__(self, erp: Any) -> None:
        self.erp, self.client = erp, erp.client

    def changes(self, since: datetime) -> Iterator[Page]:
        return self.erp.pages("ItemSalesCategory", "CategoryID", "", since, "category")

    def get(self, id: str) -> Category:
        return category(self.client.get_record("ItemSalesCategory", id))


class AcumaticaProducts:
    """Stock, non-stock and template items. A matrix child changes as part of its template: its
    notice names the template."""

    ENTITIES = ("StockItem", "NonStockItem", "TemplateItems")

    def __init__(self, erp: Any) -> None:
        self.erp, self.client = erp, erp.client
        self._entity_of: dict[str, str] = {}

    def changes(self, since: datetime) -> Iterator[Page]:
        sources = [
            ("StockItem", "InventoryID", "", "TemplateItemID"),
            ("NonStockItem", "InventoryID", "", "TemplateItemID"),
            ("TemplateItems", "InventoryID", "", ""),
        ]
        return self.erp.pages_of(sources, since, "product")

    def load_pages(self, since: datetime, resume: dict[str, Any] | None = None) -> Iterator[Page]:
        """``changes`` for an initial load (``whole_pages``): each page of items read whole
        (attributes and categories expanded) in one request, each plain item's notice carrying it
        (``from_snapshot``); a template (its matrix items) and a kit (its specification) are still
        read by the worker."""
        sources = [
            ("StockItem", "InventoryID", "", "TemplateItemID"),
            ("NonStockItem", "InventoryID", "", "TemplateItemID"),
            ("TemplateItems", "InventoryID", "", ""),
        ]
        return self.erp.whole_pages(sources, since, "product", self._snapshot, expand=ITEM_EXPAND, resume=resume)

    @staticmethod
    def _snapshot(row: dict[str, Any], entity: str) -> dict[str, Any] | None:
        if entity == "TemplateItems" or value(row, "IsAKit"):
            return None
        return {"entity": entity, "record": row}

    @staticmethod
    def from_snapshot(snapshot: dict[str, Any]) -> Product:
        """The item a ``load_pages`` notice carries."""
        return product(snapshot["record"], snapshot["entity"])

    def get(self, id: str) -> Product:
        record, entity = self._read(id)
        item = product(record, entity)
        if entity != "TemplateItems":
            return item.model_copy(update={"components": self._kit(id)} if value(record, "IsAKit") else {})
        children = self.children(id)
        return item.model_copy(
            update={"children": [c.source_id for c in children], "variant_attributes": variant_attributes(children)}
        )

    def children(self, template: str) -> list[Product]:
        """A template's matrix items, with their attribute values."""
        out: list[Product] = []
        quoted = template.replace("'", "''")
        for entity in ("StockItem", "NonStockItem"):
            rows = self.client.get_list(entity, filter=f"TemplateItemID eq '{quoted}'", expand=ITEM_EXPAND)
            out.extend(product(r, entity) for r in rows)
        return sorted(out, key=lambda p: p.source_id)

    def _read(self, id: str) -> tuple[dict[str, Any], str]:
        known = self._entity_of.get(id)
        order = [known] + [e for e in self.ENTITIES if e != known] if known else list(self.ENTITIES)
        for entity in order:
            expand = ITEM_EXPAND + (",Matrix" if entity == "TemplateItems" else "")
            try:
                record = self.client.get_record(entity, id, expand=expand)
            except NotFoundError:
                continue
            if len(self._entity_of) >= ENTITY_MEMORY:  # a warm worker meets ever more items: start over
                self._entity_of.clear()
            self._entity_of[id] = entity
            return record, entity
        raise NotFoundError(f"acumatica has no stock, non-stock or template item {id}", system=self.erp.name)

    def _kit(self, id: str) -> list[BundleComponent]:
        quoted = id.replace("'", "''")
        rows = self.client.get_list(
            "KitSpecification", filter=f"KitInventoryID eq '{quoted}'", expand="StockComponents,NonStockComponents"
        )
        active = [r for r in rows if value(r, "Active", True)]
        if not active:
            return []
        kit = active[-1]
        comps = [
            BundleComponent(
                sku=str(value(r, "StockInventoryID") or value(r, "NonStockInventoryID")),
                qty=dec(r, "ComponentQty") or Decimal(1),
            )
            for r in _rows(kit, "StockComponents") + _rows(kit, "NonStockComponents")
            if value(r, "StockInventoryID") or value(r, "NonStockInventoryID")
        ]
        return comps


class AcumaticaStock:
    """Stock per SKU and warehouse. ``for_shipping`` is ``QtyHardAvailable`` (on hand less what is
    allocated or shipped)."""

    MANY = 50
    """Above this many SKUs, quantities are read per warehouse (one request each) instead of per SKU."""

    def __init__(self, erp: Any) -> None:
        self.erp, self.client = erp, erp.client

    def warehouses(self) -> list[str]:
        rows = self.client.get_list("Warehouse", select="WarehouseID")
        return sorted(str(value(r, "WarehouseID")) for r in rows if value(r, "WarehouseID"))

    def changes(self, since: datetime) -> Iterator[Page]:
        """SKUs whose stock moved since ``since`` (one inquiry), their quantities in the notices."""
        answer = self.client.put(
            "InventoryQuantityAvailable",
            {"LastModifiedDateTime": {"value": since.astimezone(UTC).isoformat()}},
            expand="Results",
        )
        moved: dict[str, str | None] = {}
        for row in _rows(answer, "Results"):
            sku = str(value(row, "InventoryID", "") or "").strip()
            changed = stamp(value(row, "LastModifiedDateTime"))
            if sku and (changed is None or changed > since.astimezone(UTC).isoformat()):
                moved[sku] = max(moved.get(sku) or "", changed or "") or None
        skus = sorted(moved, key=lambda s: (moved[s] or "", s))
        for i in range(0, len(skus), PAGE):
            chunk = skus[i : i + PAGE]
            levels = self.get_many(chunk)
            notices = []
            for sku in chunk:
                level = levels.get(sku)
                if level is None:
                    continue
                level = level.model_copy(update={"version": moved[sku] or level.version})
                notices.append(
                    ChangeNotice(
                        source=self.erp.name,
                        entity="stock",
                        id=sku,
                        version=level.version,
                        occurred_at=when(level.version),
                        snapshot=level.model_dump(mode="json"),
                        read_at=datetime.now(UTC),
                    )
                )
            last = moved[chunk[-1]]
            yield Page(notices, checkpoint=when(last) if last and i + PAGE >= len(skus) else None)

    def from_snapshot(self, snapshot: dict[str, Any]) -> StockLevel:
        return StockLevel.model_validate(snapshot)

    def get(self, sku: str) -> StockLevel:
        level = self.get_many([sku]).get(sku)
        if level is None:
            raise NotFoundError(f"acumatica has no stock of {sku}", system=self.erp.name)
        return level

    def get_many(self, skus: list[str]) -> dict[str, StockLevel]:
        if len(skus) > self.MANY:
            return self._by_warehouse(set(skus))
        out: dict[str, StockLevel] = {}
        for sku in skus:
            answer = self.client.put("InventorySummaryInquiry", {"InventoryID": {"value": sku}}, expand="Results")
            per: dict[str, WarehouseQty] = {}
            for row in _rows(answer, "Results"):
                wh = str(value(row, "WarehouseID", "") or "")
                if not wh or value(row, "LocationID"):  # warehouse totals only
                    continue
                qty = warehouse_qty(row, "QtyAvailableForShipment")
                per[wh] = qty
            out[sku] = StockLevel(sku=sku, warehouses=per, version=None)
        return out

    def _by_warehouse(self, skus: set[str]) -> dict[str, StockLevel]:
        out: dict[str, StockLevel] = {}
        for wh in self.warehouses():
            answer = self.client.put("StorageDetailsInquiry", {"WarehouseID": {"value": wh}}, expand="StorageDetails")
            for row in _rows(answer, "StorageDetails"):
                sku = str(value(row, "InventoryID", "") or "").strip()
                if sku not in skus:
                    continue
                level = out.setdefault(sku, StockLevel(sku=sku))
                level.warehouses[str(value(row, "WarehouseID", wh))] = warehouse_qty(row, "QtyHardAvailable")
                changed = stamp(value(row, "LastModifiedDateofWarehouseQty"))
                if changed and (level.version is None or changed > level.version):
                    level.version = changed
        return out


class AcumaticaPrices:
    """Each SKU's effective sales prices (``SalesPricesInquiry``), with the item's default price
    when it has no base price row."""

    def __init__(self, erp: Any) -> None:
        self.erp, self.client = erp, erp.client

    def currency(self) -> str | None:
        return self.erp.settings().price_currency

    def _inquiry(self, sku: str | None = None) -> list[dict[str, Any]]:
        # every date (the screen's default is today's prices only): a markdown to come is sent ahead
        body: dict[str, Any] = {"PriceType": {"value": "All Prices"}, "EffectiveAsOf": {"value": None}}
        if sku:
            body["InventoryID"] = {"value": sku}
        return _rows(self.client.put("SalesPricesInquiry", body, expand="SalesPriceDetails"), "SalesPriceDetails")

    def changes(self, since: datetime) -> Iterator[Page]:
        started = datetime.now(UTC)
        after = since.astimezone(UTC).isoformat()
        by_sku: dict[str, list[dict[str, Any]]] = {}
        moved: set[str] = set()
        for row in self._inquiry():
            sku = str(value(row, "InventoryID", "") or "").strip()
            if not sku:
                continue
            by_sku.setdefault(sku, []).append(row)
            if (stamp(value(row, "LastModifiedDateTime")) or "") > after:
                moved.add(sku)
        for page in self.erp.pages("StockItem", "InventoryID", "", since, "price"):
            moved.update(n.id for n in page.notices)  # a new default price
        skus = sorted(moved)
        for i in range(0, len(skus), PAGE):
            chunk = skus[i : i + PAGE]
            defaults = self._defaults([s for s in chunk if not any(_is_base(r) for r in by_sku.get(s, []))])
            notices = []
            for sku in chunk:
                prices = price_set(
                    sku, by_sku.get(sku, []), default=defaults.get(sku), currency=self.currency(), uom=None
                )
                notices.append(
                    ChangeNotice(
                        source=self.erp.name,
                        entity="price",
                        id=sku,
                        version=prices.version,
                        snapshot=prices.model_dump(mode="json"),
                        read_at=datetime.now(UTC),
                    )
                )
            yield Page(notices, checkpoint=None)
        yield Page([], checkpoint=started)

    def from_snapshot(self, snapshot: dict[str, Any]) -> PriceSet:
        return PriceSet.model_validate(snapshot)

    def get(self, sku: str) -> PriceSet:
        return self.get_many([sku])[sku]

    def get_many(self, skus: list[str]) -> dict[str, PriceSet]:
        out: dict[str, PriceSet] = {}
        for sku in skus:
            rows = self._inquiry(sku)
            default = None if any(_is_base(r) for r in rows) else self._defaults([sku]).get(sku)
            out[sku] = price_set(sku, rows, default=default, currency=self.currency(), uom=None)
        return out

    def _defaults(self, skus: list[str]) -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        for i in range(0, len(skus), 25):
            chunk = " or ".join(f"InventoryID eq '{x.replace(chr(39), chr(39) * 2)}'" for x in skus[i : i + 25])
            if not chunk:
                continue
            for entity in ("StockItem", "NonStockItem"):
                for row in self.client.get_list(entity, filter=chunk, select="InventoryID,DefaultPrice"):
                    if value(row, "DefaultPrice") is not None:
                        out[str(value(row, "InventoryID"))] = dec(row, "DefaultPrice")
        return out


def _is_base(row: dict[str, Any]) -> bool:
    return value(row, "PriceType") == "Base" and not value(row, "Promotion") and dec(row, "BreakQty") <= 1
