"""SAP S/4HANA's products, list prices and stock as the catalog's sources (three A2X services; the
shapes are those of SAP's public metadata, see sandbox/sims/sap_s4_metadata/SOURCES.md).

- Products (``API_PRODUCT_SRV``): ``A_Product`` polled by ``LastChangeDateTime`` as a keyset
  (``StampedSet``); each is read with its descriptions and sales data. ``Product`` (the material
  number) is the store's SKU, the description in ``product_language`` its name, ``GrossWeight``
  its weight as given (its ``WeightUnit`` is not converted: UNVERIFIED that it is the store's).
  A product of a ``virtual_product_types`` type is virtual, any other a simple product the store
  counts. It is active when neither it nor its sales data of the connection's sales organisation
  and distribution channel is marked for deletion and that sales data exists at all: a product
  not extended to the sales area is not for the store (left out, or disabled once synced). Its
  price is the list price below; an active product without one fails, named.
- List prices (``API_SLSPRICINGCONDITIONRECORD_SRV``): the condition records of
  ``price_condition_type`` whose validity names the sales area and the material, in force today
  (``ConditionValidityStartDate`` <= today <= ``ConditionValidityEndDate``), not deleted. The one
  naming no customer, customer group, customer price group or price list type is the base price
  (``ConditionRateValue`` per ``ConditionQuantity`` units); its scale lines above one unit are
  tier prices for every customer (``ALL``); a record naming only a customer price group is that
  group's price (with its scale lines), a tier of the group at quantity 1. Records naming a
  customer, a customer group or a price list type are left out (not a store price: UNVERIFIED
  that merchants want them). Which condition table a record belongs to
  is read from the fields its validity fills, not from ``ConditionTable`` numbers (each system's
  customizing). Changes: ``price_changes`` ``stamped`` reads the records changed since the cursor
  by ``LastChangeDateTime`` (absent before the 2024 releases: UNVERIFIED which one) and announces
  the materials their validity names; ``sweep`` reads every list price of the sales area on each
  poll, versioned by the prices themselves, so only those that differ are written.
- Stock (``API_MATERIAL_STOCK_SRV``, read only, no change stamp at all): every poll sweeps
  ``A_MatlStkInAcctMod``'s unrestricted stock (``InventoryStockType`` ``01``, no special stock)
  of ``stock_plants`` (or every plant) in pages, summed per material and plant (or storage
  location, ``stock_by``), versioned by the quantities: only the materials whose quantities
  changed are written. On hand, available and for shipping are all the unrestricted quantity
  (the API has no availability; ATP is another service). A stock row emptied to 0 is still
  answered (the view aggregates material documents: UNVERIFIED), so a sell-out reaches the store.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from erpsync.errors import NotFoundError, ValidationFailed
from erpsync.model import ChangeNotice
from erpsync.model.catalog import PriceSet, Product, StockLevel, TierPrice, WarehouseQty
from erpsync.systems.ports import Page
from erpsync.systems.sap_s4 import odata_v2
from erpsync.systems.sap_s4.adapter import StampedSet
from erpsync.systems.sap_s4.client import S4Client
from erpsync.systems.sap_s4.odata_v2 import literal
from erpsync.systems.sap_s4.settings import S4Settings

PRODUCT_EXPAND = ["to_Description", "to_SalesDelivery"]
RECORD = "to_SlsPrcgConditionRecord"
VALIDITY = "to_SlsPrcgCndnRecdValidity"
SCALES = "to_SlsPrcgCndnRecordScale"
PRICE_KEYS = ("Customer", "CustomerGroup", "CustomerPriceGroup", "PriceListType")
"""Validity fields that, filled, make a record something other than the list price."""
UNRESTRICTED = "InventoryStockType eq '01' and InventorySpecialStockType eq ''"
"""Unrestricted-use stock of the company's own (no special stock: consignment, sales order ...)."""
SKUS_PER_READ = 20
"""Materials per ``Material eq .. or ..`` read of many SKUs."""


def _today() -> date:
    return datetime.now(UTC).date()


def _digest(content: Any) -> str:
    raw = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:20]


def _any_of(field: str, values: list[str]) -> str:
    return "(" + " or ".join(f"{field} eq {literal(v)}" for v in values) + ")"


# -- prices --------------------------------------------------------------------------------------


def unit_price(record: dict[str, Any], rate: Any = None) -> Decimal:
    """A condition's rate per unit: ``ConditionRateValue`` (or ``rate``, a scale line's) over
    ``ConditionQuantity`` (prices per 10 or 100 units), to six places."""
    value = odata_v2.parse_decimal(record.get("ConditionRateValue") if rate is None else rate) or Decimal(0)
    per = odata_v2.parse_decimal(record.get("ConditionQuantity")) or Decimal(1)
    return value if per == 1 else (value / per).quantize(Decimal("0.000001"))


def in_force(validity: dict[str, Any], today: date) -> bool:
    start = odata_v2.parse_datetime(validity.get("ConditionValidityStartDate"))
    end = odata_v2.parse_datetime(validity.get("ConditionValidityEndDate"))
    return (start is None or start.date() <= today) and (end is None or today <= end.date())


def price_set(sku: str, validities: list[dict[str, Any]], cfg: S4Settings, connection: str, today: date) -> PriceSet:
    """The prices of material ``sku`` from its validity rows (each with its record and the
    record's scale lines expanded) in the sales area."""
    base: Decimal | None = None
    tiers: list[TierPrice] = []
    stamps: list[datetime] = []
    for validity in validities:
        record = validity.get(RECORD) or {}
        stamp = odata_v2.parse_datetime(record.get("LastChangeDateTime"))
        if stamp is not None:  # every record read, a deleted one too: its deletion is the newest change
            stamps.append(stamp.astimezone(UTC))
        if not record or record.get("ConditionIsDeleted") or not in_force(validity, today):
            continue
        group = str(validity.get("CustomerPriceGroup") or "")
        if any(validity.get(k) for k in PRICE_KEYS if k != "CustomerPriceGroup"):
            continue  # a customer's own price, a customer group's or a price list's: not the store's
        currency = str(record.get("ConditionRateValueUnit") or record.get("ConditionCurrency") or "")
        if cfg.price_currency and currency and currency != cfg.price_currency:
            raise ValidationFailed(
                f"{connection} condition record {record.get('ConditionRecord')} prices material {sku} in "
                f"{currency}, the store sells in {cfg.price_currency}",
                system=connection,
            )
        price = unit_price(record)
        if not group:
            base = price
        else:
            tiers.append(TierPrice(group=group, qty=Decimal(1), price=price))
        for line in odata_v2.expanded(record, SCALES) or []:
            qty = odata_v2.parse_decimal(line.get("ConditionScaleQuantity")) or Decimal(0)
            if qty > 1:
                tiers.append(
                    TierPrice(group=group or "ALL", qty=qty, price=unit_price(record, line["ConditionRateValue"]))
                )
    tiers.sort(key=lambda t: (t.group, t.qty))
    content = {"base": base, "tiers": [t.model_dump(mode="json") for t in tiers]}
    stamped = cfg.price_changes == "stamped" and stamps
    version = max(stamps).isoformat() if stamped else f"price:{_digest(content)}"
    return PriceSet(sku=sku, base=base if base and base > 0 else None, tiers=tiers, version=version)


# -- products ------------------------------------------------------------------------------------


def product(entity: dict[str, Any], prices: PriceSet | None, cfg: S4Settings, connection: str) -> Product:
    """A product (read with its descriptions and sales data) as the canonical product."""
    sku = str(entity.get("Product") or "").strip()
    if not sku:
        raise ValidationFailed(f"{connection}: a product without a Product number", system=connection)
    names = odata_v2.expanded(entity, "to_Description") or []
    name = next((d for d in names if str(d.get("Language") or "").upper() == cfg.product_language.upper()), None)
    name = name or (names[0] if names else {})
    sales = next(
        (
            s
            for s in odata_v2.expanded(entity, "to_SalesDelivery") or []
            if s.get("ProductSalesOrg") == cfg.sales_organization
            and s.get("ProductDistributionChnl") == cfg.distribution_channel
        ),
        None,
    )
    active = bool(sales) and not entity.get("IsMarkedForDeletion") and not (sales or {}).get("IsMarkedForDeletion")
    price = prices.base if prices else None
    if active and price is None:
        raise ValidationFailed(
            f"{connection} product {sku} has no {cfg.price_condition_type} list price in force for sales area "
            f"{cfg.sales_organization}/{cfg.distribution_channel}: "
            "a store product without a price would sell for nothing",
            system=connection,
        )
    weight = odata_v2.parse_decimal(entity.get("GrossWeight"))
    stamp = odata_v2.parse_datetime(entity.get("LastChangeDateTime"))
    return Product(
        source_id=sku,
        kind="virtual" if str(entity.get("ProductType") or "") in cfg.virtual_product_types else "simple",
        name=str(name.get("ProductDescription") or "").strip(),
        price=price,
        weight=weight if weight else None,
        active=active,
        version=stamp.astimezone(UTC).isoformat() if stamp else None,
    )


class _Catalog:
    entity = ""

    def __init__(self, client: S4Client, connection: str, settings: Callable[[], S4Settings]) -> None:
        self.client, self.connection, self.settings = client, connection, settings

    def _prices(self, skus: list[str]) -> dict[str, PriceSet]:
        """SKU -> its prices, for each of ``skus`` (no price: an empty set), in reads of
        ``SKUS_PER_READ`` materials."""
        cfg, today = self.settings(), _today()
        wanted = list(dict.fromkeys(s for s in skus if s))
        rows: dict[str, list[dict[str, Any]]] = {s: [] for s in wanted}
        for n in range(0, len(wanted), SKUS_PER_READ):
            chunk = wanted[n : n + SKUS_PER_READ]
            for row in self.client.rows(
                cfg.pricing_service,
                "A_SlsPrcgCndnRecdValidity",
                filter=f"{self._area()} and {_any_of('Material', chunk)}",
                expand=[RECORD, f"{RECORD}/{SCALES}"],
            ):
                if row.get("Material") in rows:
                    rows[str(row["Material"])].append(_record_inline(row))
        return {sku: price_set(sku, found, cfg, self.connection, today) for sku, found in rows.items()}

    def _sold(self, skus: list[str]) -> set[str]:
        """Those of ``skus`` with sales data in the sales area (not marked for deletion): the
        products the store may carry."""
        cfg = self.settings()
        wanted = list(dict.fromkeys(s for s in skus if s))
        found: set[str] = set()
        for n in range(0, len(wanted), SKUS_PER_READ):
            chunk = wanted[n : n + SKUS_PER_READ]
            where = (
                f"ProductSalesOrg eq {literal(cfg.sales_organization)} and "
                f"ProductDistributionChnl eq {literal(cfg.distribution_channel)} and {_any_of('Product', chunk)}"
            )
            for row in self.client.rows(
                cfg.product_service, "A_ProductSalesDelivery", filter=where, select=["Product", "IsMarkedForDeletion"]
            ):
                if row.get("Product") in chunk and not row.get("IsMarkedForDeletion"):
                    found.add(str(row["Product"]))
        return found

    def _area(self) -> str:
        cfg = self.settings()
        return (
            f"ConditionType eq {literal(cfg.price_condition_type)} and "
            f"SalesOrganization eq {literal(cfg.sales_organization)} and "
            f"DistributionChannel eq {literal(cfg.distribution_channel)}"
        )

    def _notice(self, id: str, version: str | None, snapshot: dict[str, Any] | None = None) -> ChangeNotice:
        return ChangeNotice(
            source=self.connection,
            entity=self.entity,
            id=id,
            version=version,
            snapshot=snapshot,
            read_at=datetime.now(UTC) if snapshot is not None else None,
        )


def _record_inline(validity: dict[str, Any]) -> dict[str, Any]:
    """A validity row with its expanded record as a plain dict (a to-one navigation answers the
    entity itself, or ``{"results": [...]}`` from some gateways)."""
    record = validity.get(RECORD)
    if isinstance(record, dict) and "results" in record:
        rows = record["results"]
        record = rows[0] if rows else None
    return {**validity, RECORD: record if isinstance(record, dict) and "__deferred" not in record else None}


class S4Products(_Catalog):
    """Products (``A_Product``) of the sales area; a notice names the ``Product``."""

    entity = "product"

    def changes(self, since: datetime) -> Iterator[Page]:
        cfg = self.settings()
        keyset = StampedSet(self.client, self.connection, cfg.product_service, "A_Product", "Product")
        yield from keyset.changes(self.entity, since, cfg.page_size)

    def get(self, id: str) -> Product:
        cfg = self.settings()
        entity = self.client.get(cfg.product_service, S4Client.key("A_Product", id), expand=PRODUCT_EXPAND).entity
        return product(entity, self._prices([id]).get(id), cfg, self.connection)


class S4Prices(_Catalog):
    """Each material's list price (and tiers) in the sales area, named by its SKU."""

    entity = "price"

    def changes(self, since: datetime) -> Iterator[Page]:
        cfg = self.settings()
        if cfg.price_changes == "sweep":
            yield from self._sweep()
            return

        def notices(entity: str, record: dict[str, Any]) -> list[ChangeNotice]:
            named = {
                str(v["Material"])
                for v in odata_v2.expanded(record, VALIDITY) or []
                if v.get("Material")
                and v.get("SalesOrganization") == cfg.sales_organization
                and v.get("DistributionChannel") == cfg.distribution_channel
            }
            version = keyset.stamp(record).isoformat()
            return [self._notice(sku, version) for sku in sorted(named)]

        keyset = StampedSet(
            self.client,
            self.connection,
            cfg.pricing_service,
            "A_SlsPrcgConditionRecord",
            "ConditionRecord",
            f"ConditionType eq {literal(cfg.price_condition_type)}",
            expand=[VALIDITY],
            notices=notices,
        )
        yield from keyset.changes(self.entity, since, cfg.page_size)

    def _sweep(self) -> Iterator[Page]:
        """Every list price of the sales area, a page of materials at a time (a material's rows
        are announced once all are read: they come ordered by material)."""
        cfg, today, started = self.settings(), _today(), datetime.now(UTC)
        pending: tuple[str, list[dict[str, Any]]] | None = None
        pages = self.client.pages(
            cfg.pricing_service,
            "A_SlsPrcgCndnRecdValidity",
            filter=self._area(),
            expand=[RECORD, f"{RECORD}/{SCALES}"],
            orderby="Material,ConditionRecord",
        )
        for rows in pages:
            notices = []
            for row in rows:
                sku = str(row.get("Material") or "")
                if not sku:
                    continue
                if pending is not None and pending[0] != sku:
                    notices.append(self._swept(pending, today))
                    pending = None
                if pending is None:
                    pending = (sku, [])
                pending[1].append(_record_inline(row))
            yield Page(notices, None)
        last = [self._swept(pending, today)] if pending is not None else []
        yield Page(last, started)

    def _swept(self, found: tuple[str, list[dict[str, Any]]], today: date) -> ChangeNotice:
        prices = price_set(found[0], found[1], self.settings(), self.connection, today)
        return self._notice(prices.sku, prices.version, prices.model_dump(mode="json"))

    def from_snapshot(self, snapshot: dict[str, Any]) -> PriceSet:
        return PriceSet.model_validate(snapshot)

    def get(self, sku: str) -> PriceSet:
        return self.get_many([sku])[sku]

    def get_many(self, skus: list[str]) -> dict[str, PriceSet]:
        return self._prices(skus)


# -- stock ---------------------------------------------------------------------------------------


def stock_level(sku: str, rows: list[dict[str, Any]], cfg: S4Settings) -> StockLevel:
    """Material ``sku``'s unrestricted stock per plant (or storage location), every plant of
    ``stock_plants`` present (0 when it holds none); versioned by the quantities."""
    totals: dict[str, Decimal] = dict.fromkeys(cfg.stock_plants, Decimal(0)) if cfg.stock_by == "plant" else {}
    for row in rows:
        plant = str(row.get("Plant") or "")
        if cfg.stock_plants and plant not in cfg.stock_plants:
            continue
        where = plant if cfg.stock_by == "plant" else f"{plant}/{row.get('StorageLocation') or ''}"
        qty = odata_v2.parse_decimal(row.get("MatlWrhsStkQtyInMatlBaseUnit")) or Decimal(0)
        totals[where] = totals.get(where, Decimal(0)) + qty
    levels = {k: WarehouseQty(on_hand=q, available=q, for_shipping=q) for k, q in sorted(totals.items())}
    version = f"qty:{_digest({k: str(q.normalize()) for k, q in totals.items()})}"
    return StockLevel(sku=sku, warehouses=levels, version=version)


class S4Stock(_Catalog):
    """Unrestricted stock per material sold in the sales area, swept whole on every poll (``since``
    is not used: the API has no change stamp). Which materials are sold is asked of the product API
    for each page's materials (``A_ProductSalesDelivery``): stock of a material the store does not
    carry (raw materials, other sales areas) is never announced."""

    entity = "stock"

    def _where(self) -> str:
        plants = self.settings().stock_plants
        return f"{UNRESTRICTED} and {_any_of('Plant', plants)}" if plants else UNRESTRICTED

    def changes(self, since: datetime) -> Iterator[Page]:
        cfg, started = self.settings(), datetime.now(UTC)
        pending: tuple[str, list[dict[str, Any]]] | None = None
        pages = self.client.pages(
            cfg.stock_service,
            "A_MatlStkInAcctMod",
            filter=self._where(),
            select=["Material", "Plant", "StorageLocation", "MatlWrhsStkQtyInMatlBaseUnit"],
            orderby="Material,Plant,StorageLocation",
        )
        for rows in pages:
            done = []
            for row in rows:
                sku = str(row.get("Material") or "")
                if pending is not None and pending[0] != sku:
                    done.append(pending)
                    pending = None
                if pending is None:
                    pending = (sku, [])
                pending[1].append(row)
            yield Page(self._levels(done), None)
        yield Page(self._levels([pending] if pending is not None else []), started)

    def _levels(self, found: list[tuple[str, list[dict[str, Any]]]]) -> list[ChangeNotice]:
        """Notices of the materials the store may carry (sold in the sales area) among ``found``."""
        sold = self._sold([sku for sku, _ in found]) if found else set()
        notices = []
        for sku, rows in found:
            if sku in sold:
                level = stock_level(sku, rows, self.settings())
                notices.append(self._notice(level.sku, level.version, level.model_dump(mode="json")))
        return notices

    def from_snapshot(self, snapshot: dict[str, Any]) -> StockLevel:
        return StockLevel.model_validate(snapshot)

    def get(self, sku: str) -> StockLevel:
        found = self.get_many([sku])
        if sku not in found:
            raise NotFoundError(f"{self.connection} holds no stock record of material {sku}", system=self.connection)
        return found[sku]

    def get_many(self, skus: list[str]) -> dict[str, StockLevel]:
        cfg = self.settings()
        wanted = list(dict.fromkeys(s for s in skus if s))
        rows: dict[str, list[dict[str, Any]]] = {}
        for n in range(0, len(wanted), SKUS_PER_READ):
            chunk = wanted[n : n + SKUS_PER_READ]
            for row in self.client.rows(
                cfg.stock_service,
                "A_MatlStkInAcctMod",
                filter=f"{self._where()} and {_any_of('Material', chunk)}",
                select=["Material", "Plant", "StorageLocation", "MatlWrhsStkQtyInMatlBaseUnit"],
            ):
                if row.get("Material") in chunk:
                    rows.setdefault(str(row["Material"]), []).append(row)
        sold = self._sold(list(rows))
        return {sku: stock_level(sku, found, cfg) for sku, found in rows.items() if sku in sold}


def catalog_ports(
    client: S4Client, connection: str, settings: Callable[[], S4Settings]
) -> dict[tuple[str, str], object]:
    """The catalog's source ports of an S/4HANA connection, by (entity, direction)."""
    return {
        ("product", "source"): S4Products(client, connection, settings),
        ("price", "source"): S4Prices(client, connection, settings),
        ("stock", "source"): S4Stock(client, connection, settings),
    }
