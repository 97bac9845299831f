"""SAP Business One's items as the catalog's sources: products, prices and stock.

- Products: sales items of type ``itItems`` (``SalesItem`` tYES); ``ItemCode`` is the store's SKU,
  ``ItemName`` its name, an inventory item (``InventoryItem`` tYES) a simple product the store
  counts, any other a virtual one; ``Frozen`` tYES (B1's "Inactive") disables it (``Valid`` is not
  read: an item made without it answers tNO, and its date ranges are not followed: UNVERIFIED); its price is the
  item's row of the price list ``settings.price_list`` (an active item without a price there fails,
  named). Whether that list's prices are gross (``IsGrossPrice``) is not read: UNVERIFIED.
- Prices: the row of ``settings.price_list`` in ``ItemPrices`` is the base price (0 or none: no
  price). The row's ``Currency`` is not checked against the store's: UNVERIFIED.
- Stock: per warehouse of ``ItemWarehouseInfoCollection`` (those of ``settings.stock_warehouses``,
  none named: every warehouse), ``InStock`` on hand, ``InStock - Committed`` available (B1's rule,
  SYSTEMS-NOTES §3.1) and ``InStock`` for shipping (B1 keeps no allocation apart from open orders'
  ``Committed``; the store's own open orders are held back by the store). ``settings.catalog.stock``
  of the lane then picks the quantity and sums or maps the warehouses.

Products and prices are polled on ``UpdateDate``/``UpdateTime`` (then ``CreateDate``/``CreateTime``)
as the other B1 ports are. Stock moves need not stamp the item (SYSTEMS-NOTES §3.5, UNVERIFIED in
detail; the sim does not), so the stock source sweeps: every poll reads the inventory items'
warehouse rows in pages by ``ItemCode`` and announces each SKU with its quantities; the stock flow
drops the unchanged ones by hash without a write. A poll thus reads every inventory item.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from erpsync.errors import NotFoundError, ValidationFailed
from erpsync.model import ChangeNotice
from erpsync.model.catalog import PriceSet, Product, StockLevel, WarehouseQty
from erpsync.systems.ports import Page
from erpsync.systems.sap_b1 import mapping
from erpsync.systems.sap_b1.adapter import stamped_pages
from erpsync.systems.sap_b1.client import SapB1Client, literal
from erpsync.systems.sap_b1.settings import SapB1Settings

ITEMS = "Items"
SOLD = "ItemType eq 'itItems' and SalesItem eq 'tYES'"
STOCKED = f"{SOLD} and InventoryItem eq 'tYES'"
STAMP_FIELDS = ["UpdateDate", "UpdateTime", "CreateDate", "CreateTime"]
PRODUCT_FIELDS = ["ItemCode", "ItemName", "InventoryItem", "Frozen", "ItemPrices", *STAMP_FIELDS]
PRICE_FIELDS = ["ItemCode", "ItemPrices", *STAMP_FIELDS]
STOCK_FIELDS = ["ItemCode", "ItemWarehouseInfoCollection"]
CODES_PER_READ = 20
"""Item codes per ``ItemCode eq .. or ..`` read of many SKUs."""


def _named(item: dict[str, Any]) -> str:
    return f"item {item.get('ItemCode')} ({item.get('ItemName')})"


def list_price(item: dict[str, Any], price_list: int) -> Decimal | None:
    """The item's price in ``price_list``; None when it has no row there, or 0."""
    row = next((r for r in item.get("ItemPrices") or [] if r.get("PriceList") == price_list), None)
    price = mapping.dec(row.get("Price")) if row else Decimal(0)
    return price if price > 0 else None


def product(item: dict[str, Any], cfg: SapB1Settings, connection: str) -> Product:
    """A sales item as a canonical product; an active one without a price in the price list fails."""
    sku = str(item.get("ItemCode") or "").strip()
    if not sku:
        raise ValidationFailed(f"{connection} {_named(item)} has no ItemCode", system=connection)
    price = list_price(item, cfg.price_list)
    active = item.get("Frozen") != "tYES"
    if active and price is None:
        raise ValidationFailed(
            f"{connection} {_named(item)} has no price in price list {cfg.price_list}: a store product without "
            "a price would sell for nothing",
            system=connection,
        )
    return Product(
        source_id=sku,
        kind="simple" if item.get("InventoryItem") != "tNO" else "virtual",
        name=str(item.get("ItemName") or "").strip(),
        price=price,
        active=active,
        version=mapping.version(item, ZoneInfo(cfg.server_timezone)),
    )


def price_set(item: dict[str, Any], cfg: SapB1Settings) -> PriceSet:
    zone = ZoneInfo(cfg.server_timezone)
    return PriceSet(
        sku=str(item["ItemCode"]), base=list_price(item, cfg.price_list), version=mapping.version(item, zone)
    )


def stock_level(item: dict[str, Any], cfg: SapB1Settings, read_at: datetime) -> StockLevel:
    """The item's warehouse rows (those of ``stock_warehouses``, or all). Versioned by the quantities
    themselves (a stock move need not stamp the item): a poll that reads the same quantities again
    leaves the item out (the seen version), so what is queued and written grows with the changes,
    not with the catalog."""
    wanted = set(cfg.stock_warehouses)
    levels: dict[str, WarehouseQty] = {}
    for row in item.get("ItemWarehouseInfoCollection") or []:
        code = str(row.get("WarehouseCode") or "")
        if not code or (wanted and code not in wanted):
            continue
        in_stock = mapping.dec(row.get("InStock"))
        levels[code] = WarehouseQty(
            on_hand=in_stock, available=in_stock - mapping.dec(row.get("Committed")), for_shipping=in_stock
        )
    content = json.dumps(
        {k: [str(q.on_hand), str(q.available), str(q.for_shipping)] for k, q in sorted(levels.items())},
        separators=(",", ":"),
    )
    digest = hashlib.sha256(content.encode()).hexdigest()[:20]
    return StockLevel(sku=str(item["ItemCode"]), warehouses=levels, version=f"qty:{digest}")


class _Items:
    entity = ""

    def __init__(self, client: SapB1Client, connection: str, settings: Callable[[], SapB1Settings]) -> None:
        self.client, self.connection, self.settings = client, connection, settings

    def _notice(self, id: str, version: str | None, snapshot: dict[str, Any], at: datetime | None) -> ChangeNotice:
        return ChangeNotice(
            source=self.connection,
            entity=self.entity,
            id=id,
            version=version,
            occurred_at=at,
            snapshot=snapshot,
            read_at=datetime.now(UTC),
        )

    def _changed(
        self, since: datetime, where: str, select: list[str], snapshot: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> Iterator[Page]:
        cfg = self.settings()
        zone = ZoneInfo(cfg.server_timezone)

        def notice(row: dict[str, Any]) -> ChangeNotice:
            stamp = mapping.changed_at(row)
            at = mapping.to_utc(*stamp, zone) if stamp else None
            return self._notice(str(row["ItemCode"]), mapping.version(row, zone), snapshot(row), at)

        yield from stamped_pages(self.client, ITEMS, "ItemCode", since, cfg, where=where, select=select, notice=notice)

    def _items(self, codes: list[str], where: str, select: list[str]) -> dict[str, dict[str, Any]]:
        """Item code -> the item, for those of ``codes`` that ``where`` holds for."""
        wanted = list(dict.fromkeys(c for c in codes if c))
        found: dict[str, dict[str, Any]] = {}
        for n in range(0, len(wanted), CODES_PER_READ):
            chunk = wanted[n : n + CODES_PER_READ]
            anyof = " or ".join(f"ItemCode eq {literal(c)}" for c in chunk)
            for row in self.client.rows(
                ITEMS, filter=f"{where} and ({anyof})", select=select, page_size=self.settings().page_size
            ):
                if row.get("ItemCode") in chunk:
                    found[str(row["ItemCode"])] = row
        return found


class SapB1Products(_Items):
    """Sales items as products; a notice names the ``ItemCode`` and carries the item polled."""

    entity = "product"

    def changes(self, since: datetime) -> Iterator[Page]:
        yield from self._changed(since, SOLD, PRODUCT_FIELDS, lambda row: row)

    def from_snapshot(self, snapshot: dict[str, Any]) -> Product:
        return product(snapshot, self.settings(), self.connection)

    def get(self, id: str) -> Product:
        found = self._items([id], SOLD, PRODUCT_FIELDS).get(id)
        if found is None:
            raise NotFoundError(f"{self.connection} has no sales item {id}", system=self.connection)
        return product(found, self.settings(), self.connection)


class SapB1Prices(_Items):
    """Each sales item's price in ``settings.price_list`` as its base price."""

    entity = "price"

    def changes(self, since: datetime) -> Iterator[Page]:
        yield from self._changed(
            since, SOLD, PRICE_FIELDS, lambda row: price_set(row, self.settings()).model_dump(mode="json")
        )

    def from_snapshot(self, snapshot: dict[str, Any]) -> PriceSet:
        return PriceSet.model_validate(snapshot)

    def get(self, sku: str) -> PriceSet:
        found = self.get_many([sku])
        if sku not in found:
            raise NotFoundError(f"{self.connection} has no sales item {sku}", system=self.connection)
        return found[sku]

    def get_many(self, skus: list[str]) -> dict[str, PriceSet]:
        cfg = self.settings()
        return {code: price_set(item, cfg) for code, item in self._items(skus, SOLD, PRICE_FIELDS).items()}


class SapB1Stock(_Items):
    """The inventory sales items' warehouse quantities, swept whole on every poll (``since`` is not
    used: a stock move need not stamp the item)."""

    entity = "stock"

    def changes(self, since: datetime) -> Iterator[Page]:
        cfg = self.settings()
        started = datetime.now(UTC)
        last: str | None = None
        while True:
            where = STOCKED if last is None else f"{STOCKED} and ItemCode gt {literal(last)}"
            rows = next(
                self.client.pages(
                    ITEMS,
                    filter=where,
                    select=STOCK_FIELDS,
                    orderby="ItemCode",
                    top=cfg.page_size,
                    page_size=cfg.page_size,
                )
            )
            read_at = datetime.now(UTC)
            notices = []
            for row in rows:
                level = stock_level(row, cfg, read_at)
                notices.append(self._notice(level.sku, level.version, level.model_dump(mode="json"), read_at))
            done = len(rows) < cfg.page_size
            yield Page(notices, started if done else None)
            if done:
                return
            last = str(rows[-1]["ItemCode"])

    def from_snapshot(self, snapshot: dict[str, Any]) -> StockLevel:
        return StockLevel.model_validate(snapshot)

    def get(self, sku: str) -> StockLevel:
        found = self.get_many([sku])
        if sku not in found:
            raise NotFoundError(f"{self.connection} has no inventory sales item {sku}", system=self.connection)
        return found[sku]

    def get_many(self, skus: list[str]) -> dict[str, StockLevel]:
        cfg, now = self.settings(), datetime.now(UTC)
        return {code: stock_level(item, cfg, now) for code, item in self._items(skus, STOCKED, STOCK_FIELDS).items()}


def catalog_ports(
    client: SapB1Client, connection: str, settings: Callable[[], SapB1Settings]
) -> dict[tuple[str, str], object]:
    """The catalog's source ports of a B1 company, by (entity, direction)."""
    return {
        ("product", "source"): SapB1Products(client, connection, settings),
        ("price", "source"): SapB1Prices(client, connection, settings),
        ("stock", "source"): SapB1Stock(client, connection, settings),
    }
