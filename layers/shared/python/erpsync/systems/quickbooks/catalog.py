"""QuickBooks Online's items as the catalog's sources: categories, products, prices and stock.

- Products: items of type ``Inventory`` (a simple product the store counts), ``NonInventory`` and
  ``Service`` (products the store does not count); the item's ``Sku`` is the store's SKU (an
  inventory or non-inventory item without one fails, named; a service item without one is not
  announced), ``Name`` the product's name, ``Description`` its description, ``UnitPrice`` its
  price (an active item without one fails, named), ``Active`` false disables it; ``ParentRef`` of
  a sub-item names its category (an item of type ``Category``).
- Prices: ``UnitPrice`` is the base price (0 or none: no price). An item has no special, tier or
  customer-group prices (Finance.xsd ``Item``), so none are served.
- Stock: ``QtyOnHand`` of inventory items, one quantity for the whole company (the warehouse
  ``COMPANY``); non-inventory and service items have no stock and are left out.

Changes are the items whose ``MetaData.LastUpdatedTime`` moved (``changed_pages``), inactive ones
included: a query of a name list answers active records only unless it names ``Active`` (Intuit's
developer blog, "deep dive sql queries", 2017); ``Active in (true, false)`` is how QuickBooks
clients in the wild ask for both (UNVERIFIED against Intuit's reference). That an inventory
adjustment or a sale moves the item's ``LastUpdatedTime`` is UNVERIFIED: if it does not, a new
quantity reaches the store at the item's next change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from erpsync.errors import NotFoundError, ValidationFailed
from erpsync.model import ChangeNotice
from erpsync.model.catalog import Category, PriceSet, Product, StockLevel, WarehouseQty
from erpsync.systems.ports import Page
from erpsync.systems.quickbooks.adapter import _changed, _parse, changed_pages, must
from erpsync.systems.quickbooks.client import QuickBooksClient, quoted
from erpsync.systems.quickbooks.settings import QuickBooksSettings

SOLD = ("Inventory", "NonInventory", "Service")
"""Item types that become store products (the others: Category, Group, Bundle, Discount ...)."""
ANY_ACTIVE = "Active in (true, false)"
COMPANY = "company"
"""The one warehouse a QuickBooks company's stock is in (``settings.catalog.stock`` names it so)."""
SKUS_PER_QUERY = 25


def _types(types: tuple[str, ...]) -> str:
    return f"Type in ({', '.join(quoted(t) for t in types)})"


def stamp(record: dict[str, Any]) -> str | None:
    """The record's change time as a UTC ISO string (versions compare as text)."""
    when = _parse(_changed(record))
    return when.astimezone(UTC).isoformat() if when else None


def sku_of(item: dict[str, Any]) -> str:
    return str(item.get("Sku") or "").strip()


def stocked(item: dict[str, Any]) -> bool:
    """An inventory item, whose quantity QuickBooks tracks."""
    return item.get("Type") == "Inventory" and item.get("TrackQtyOnHand") is not False


def _number(item: dict[str, Any], field: str, connection: str) -> Decimal | None:
    raw = item.get(field)
    if raw in (None, ""):
        return None
    try:
        return Decimal(str(raw))
    except (InvalidOperation, ValueError):
        raise ValidationFailed(
            f"{connection} item {item.get('Id')} ({item.get('Name')}): {field} is not a number: {raw!r}",
            system=connection,
        ) from None


def _named(item: dict[str, Any]) -> str:
    return f"item {item.get('Id')} ({item.get('Name')})"


def product(item: dict[str, Any], connection: str) -> Product:
    """An item of a sold type as a canonical product; one without ``Sku``, or active without a
    ``UnitPrice``, fails, naming it."""
    kind = str(item.get("Type") or "")
    if kind not in SOLD:
        raise ValidationFailed(
            f"{connection} {_named(item)} is of type {kind or 'none'}: only {', '.join(SOLD)} items are products",
            system=connection,
        )
    sku = sku_of(item)
    if not sku:
        raise ValidationFailed(
            f"{connection} {_named(item)} has no Sku: the store finds a product by its SKU, so give the item "
            "one in QuickBooks",
            system=connection,
        )
    price = _number(item, "UnitPrice", connection)
    active = item.get("Active") is not False
    if active and (price is None or price <= 0):
        raise ValidationFailed(
            f"{connection} {_named(item)}, SKU {sku}, has no UnitPrice ({price}): a store product without a price "
            "would sell for nothing",
            system=connection,
        )
    parent = (item.get("ParentRef") or {}).get("value") if item.get("SubItem") else None
    return Product(
        source_id=sku,
        kind="simple" if stocked(item) else "virtual",
        name=str(item.get("Name") or "").strip(),
        description=str(item.get("Description") or ""),
        price=price if price is not None and price > 0 else None,
        active=active,
        categories=[str(parent)] if parent else [],
        version=stamp(item),
    )


def price_set(item: dict[str, Any], connection: str) -> PriceSet:
    """``UnitPrice`` as the base price (0 or none: no price, which the prices flow leaves out)."""
    price = _number(item, "UnitPrice", connection)
    return PriceSet(sku=sku_of(item), base=price if price is not None and price > 0 else None, version=stamp(item))


def stock_level(item: dict[str, Any], connection: str) -> StockLevel:
    """``QtyOnHand`` as every quantity of the one warehouse (QuickBooks knows no allocations)."""
    qty = _number(item, "QtyOnHand", connection) or Decimal(0)
    level = WarehouseQty(on_hand=qty, available=qty, for_shipping=qty)
    return StockLevel(sku=sku_of(item), warehouses={COMPANY: level}, version=stamp(item))


def category(item: dict[str, Any]) -> Category:
    parent = (item.get("ParentRef") or {}).get("value")
    return Category(
        source_id=str(item["Id"]),
        name=str(item.get("Name") or "").strip(),
        parent_id=str(parent) if parent else None,
        active=item.get("Active") is not False,
        version=stamp(item),
    )


class _Items:
    """What the catalog ports share: the client, the connection, its settings."""

    entity = ""

    def __init__(self, client: QuickBooksClient, connection: str, settings: Callable[[], QuickBooksSettings]) -> None:
        self.client, self.connection, self.settings = client, connection, settings

    def _pages(
        self,
        types: tuple[str, ...],
        since: datetime,
        notice: Callable[[dict[str, Any]], ChangeNotice | None] | None = None,
    ) -> Iterator[Page]:
        yield from changed_pages(
            self.client,
            "Item",
            self.entity,
            self.connection,
            since,
            self.settings().page_size,
            where=f"{_types(types)} and {ANY_ACTIVE}",
            notice=notice,
        )

    def _item(self, id: str) -> dict[str, Any]:
        try:
            found = self.client.get(f"/item/{id}").get("Item")
        except NotFoundError:
            found = None
        if not isinstance(found, dict):
            raise NotFoundError(f"{self.connection} has no item {id}", system=self.connection)
        return found

    def _notice(self, id: str, item: dict[str, Any], snapshot: dict[str, Any]) -> ChangeNotice:
        return ChangeNotice(
            source=self.connection,
            entity=self.entity,
            id=id,
            version=stamp(item),
            occurred_at=_parse(_changed(item)),
            snapshot=snapshot,
            read_at=datetime.now(UTC),
        )

    def _by_sku(self, skus: list[str]) -> dict[str, dict[str, Any]]:
        """SKU -> its item (active or not), the queries in one batch; of two items with one SKU the
        active one last changed."""
        wanted = list(dict.fromkeys(s for s in skus if s))
        asked = set(wanted)
        queries = {
            f"SKUs {i + 1}": f"select * from Item where Sku in ({', '.join(quoted(s) for s in chunk)}) and {ANY_ACTIVE}"
            for i, chunk in enumerate(wanted[n : n + SKUS_PER_QUERY] for n in range(0, len(wanted), SKUS_PER_QUERY))
        }
        found: dict[str, dict[str, Any]] = {}
        rows = [r for answer in must(self.client, self.connection, queries).values() for r in answer.get("Item") or []]
        for row in sorted(rows, key=lambda r: (r.get("Active") is not False, stamp(r) or "")):
            if sku_of(row) in asked:
                found[sku_of(row)] = row
        return found


class QuickBooksCategories(_Items):
    """Items of type ``Category`` (the tree a sub-item's ``ParentRef`` hangs in)."""

    entity = "category"

    def changes(self, since: datetime) -> Iterator[Page]:
        yield from self._pages(("Category",), since)

    def get(self, id: str) -> Category:
        item = self._item(id)
        if item.get("Type") != "Category":
            raise NotFoundError(
                f"{self.connection} {_named(item)} is of type {item.get('Type')}, not a category",
                system=self.connection,
            )
        return category(item)


class QuickBooksProducts(_Items):
    """Inventory, non-inventory and service items. A notice names the item's id and carries the
    item read by the poll. An inventory or non-inventory item without a SKU is announced, to fail
    naming it; a service item without one (freight, labour, a fee) is not a store product and is
    not announced."""

    entity = "product"

    def changes(self, since: datetime) -> Iterator[Page]:
        def notice(item: dict[str, Any]) -> ChangeNotice | None:
            if not sku_of(item) and item.get("Type") == "Service":
                return None
            return self._notice(str(item["Id"]), item, item)

        yield from self._pages(SOLD, since, notice)

    def from_snapshot(self, snapshot: dict[str, Any]) -> Product:
        return product(snapshot, self.connection)

    def get(self, id: str) -> Product:
        return product(self._item(id), self.connection)


class QuickBooksPrices(_Items):
    """Each SKU's base price (``UnitPrice``); a notice per item with a SKU whose item changed."""

    entity = "price"

    def changes(self, since: datetime) -> Iterator[Page]:
        def notice(item: dict[str, Any]) -> ChangeNotice | None:
            if not sku_of(item):
                return None
            prices = price_set(item, self.connection)
            return self._notice(prices.sku, item, prices.model_dump(mode="json"))

        yield from self._pages(SOLD, since, notice)

    def from_snapshot(self, snapshot: dict[str, Any]) -> PriceSet:
        return PriceSet.model_validate(snapshot)

    def get(self, sku: str) -> PriceSet:
        found = self.get_many([sku])
        if sku not in found:
            raise NotFoundError(f"{self.connection} has no item with Sku {sku}", system=self.connection)
        return found[sku]

    def get_many(self, skus: list[str]) -> dict[str, PriceSet]:
        return {
            sku: price_set(item, self.connection)
            for sku, item in self._by_sku(skus).items()
            if item.get("Type") in SOLD
        }


class QuickBooksStock(_Items):
    """``QtyOnHand`` of inventory items; non-inventory and service items have none (left out)."""

    entity = "stock"

    def changes(self, since: datetime) -> Iterator[Page]:
        def notice(item: dict[str, Any]) -> ChangeNotice | None:
            if not sku_of(item) or not stocked(item):
                return None
            level = stock_level(item, self.connection)
            return self._notice(level.sku, item, level.model_dump(mode="json"))

        yield from self._pages(("Inventory",), since, notice)

    def from_snapshot(self, snapshot: dict[str, Any]) -> StockLevel:
        return StockLevel.model_validate(snapshot)

    def get(self, sku: str) -> StockLevel:
        found = self.get_many([sku])
        if sku not in found:
            raise NotFoundError(f"{self.connection} has no inventory item with Sku {sku}", system=self.connection)
        return found[sku]

    def get_many(self, skus: list[str]) -> dict[str, StockLevel]:
        return {sku: stock_level(item, self.connection) for sku, item in self._by_sku(skus).items() if stocked(item)}


def catalog_ports(
    client: QuickBooksClient, connection: str, settings: Callable[[], QuickBooksSettings]
) -> dict[tuple[str, str], object]:
    """The catalog's source ports of a QuickBooks company, by (entity, direction)."""
    return {
        ("category", "source"): QuickBooksCategories(client, connection, settings),
        ("product", "source"): QuickBooksProducts(client, connection, settings),
        ("price", "source"): QuickBooksPrices(client, connection, settings),
        ("stock", "source"): QuickBooksStock(client, connection, settings),
    }
