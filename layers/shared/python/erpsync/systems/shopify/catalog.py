"""The ERP's catalog on Shopify: products with their variants and options (``productSet``), prices
on variants (``productVariantsBulkUpdate``), stock per location (``inventorySetQuantities``).

Shopify keeps no shop-wide attributes: a product's options are named on the product, so a
configurable (an ERP template) is one product whose variants are its matrix items, written whole
in one ``productSet`` (the products flow hands the variants inline: ``variants_inline``). A product
is found by its handle (the SKU's slug) or, for a plain product, by its variant's SKU. Variants are
found by SKU with ``productVariants(query: "sku:'A' OR sku:'B'")``, 50 SKUs a query.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from erpsync.errors import RetryableError, ValidationFailed
from erpsync.model.catalog import PriceSet, ProductDraft, StockLevel
from erpsync.systems.shopify.client import ShopifyClient, UserErrors
from erpsync.systems.shopify.mapping import legacy_id
from erpsync.systems.shopify.settings import ShopifySettings

SKUS_PER_QUERY = 50
QUANTITIES_PER_CALL = 250
DEFAULT_OPTION, DEFAULT_VALUE = "Title", "Default Title"

VARIANTS_QUERY = """
query VariantsBySku($first: Int!, $query: String) {
  productVariants(first: $first, query: $query) {
    nodes {
      id sku price compareAtPrice
      product { id handle }
      inventoryItem {
        id tracked
        inventoryLevels(first: 10) { nodes { location { id } quantities(names: ["available"]) { name quantity } } }
      }
    }
  }
}
"""
PRODUCT_BY_HANDLE = """
query ProductByHandle($query: String) {
  products(first: 1, query: $query) {
    nodes { id handle variants(first: 100) { nodes { id sku selectedOptions { name value } } } }
  }
}
"""
PRODUCT_SET = """
mutation ProductSet($input: ProductSetInput!) {
  productSet(input: $input, synchronous: true) {
    product { id handle variants(first: 100) { nodes { id sku } } }
    userErrors { field message code }
  }
}
"""
VARIANTS_UPDATE = """
mutation Prices($productId: ID!, $variants: [ProductVariantsBulkInput!]!) {
  productVariantsBulkUpdate(productId: $productId, variants: $variants) {
    productVariants { id sku price compareAtPrice }
    userErrors { field message code }
  }
}
"""
SET_QUANTITIES = """
mutation SetStock($input: InventorySetQuantitiesInput!) {
  inventorySetQuantities(input: $input) {
    inventoryAdjustmentGroup { id changes { name delta quantityAfterChange } }
    userErrors { field message code }
  }
}
"""
ACTIVATE = """
mutation Activate($item: ID!, $location: ID!, $available: Int) {
  inventoryActivate(inventoryItemId: $item, locationId: $location, available: $available) {
    inventoryLevel { id }
    userErrors { field message }
  }
}
"""
LOCATIONS_QUERY = "query Locations { locations(first: 50) { nodes { id name } } }"
VARIANTS_COST = 2 + SKUS_PER_QUERY * (2 + 2 + 10 * 1)
PRODUCT_COST = 110


def handle(sku: str) -> str:
    """The handle of ERP item ``sku``'s product: its slug."""
    return re.sub(r"[^a-z0-9]+", "-", sku.lower()).strip("-") or "item"


def _quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class ShopifyCatalog:
    """What the catalog ports share: the client, the settings and the variant lookup by SKU."""

    def __init__(self, client: ShopifyClient, connection: str, settings: Callable[[], ShopifySettings]) -> None:
        self.client, self.name, self.settings = client, connection, settings

    def variants(self, skus: Iterable[str]) -> dict[str, dict[str, Any]]:
        """SKU -> its variant (with product and inventory levels), for the SKUs Shopify has. A SKU
        two products hold is ambiguous: ``ValidationFailed`` names it and both products."""
        wanted = list(dict.fromkeys(skus))
        found: dict[str, dict[str, Any]] = {}
        for i in range(0, len(wanted), SKUS_PER_QUERY):
            chunk = wanted[i : i + SKUS_PER_QUERY]
            search = " OR ".join(f"sku:{_quoted(s)}" for s in chunk)
            data = self.client.query(VARIANTS_QUERY, {"first": 2 * len(chunk), "query": search}, cost=VARIANTS_COST)
            for node in ((data.get("productVariants") or {}).get("nodes")) or []:
                sku = str(node.get("sku") or "")
                if sku not in chunk:
                    continue  # the search matches loosely; only an exact SKU counts
                if sku in found and found[sku]["id"] != node["id"]:
                    raise ValidationFailed(
                        f"{self.name} has SKU {sku} on two variants ({found[sku]['id']}, {node['id']}): "
                        "erpsync cannot tell which one is the ERP's item",
                        system=self.name,
                    )
                found[sku] = node
        return found

    def missing(self, skus: list[str]) -> set[str]:
        """The SKUs no Shopify variant carries (yet)."""
        return set(skus) - set(self.variants(skus))


class ShopifyProducts(ShopifyCatalog):
    """ERP items as Shopify products, the target of the products flow."""

    variants_inline = True
    """A configurable's matrix items come inside its draft (``ProductDraft.variants``): on Shopify
    they are variants of one product, not products of their own."""

    def _by_handle(self, wanted: str) -> dict[str, Any] | None:
        data = self.client.query(PRODUCT_BY_HANDLE, {"query": f"handle:{_quoted(wanted)}"}, cost=PRODUCT_COST)
        nodes = ((data.get("products") or {}).get("nodes")) or []
        return next((n for n in nodes if n.get("handle") == wanted), None)

    def _product(self, sku: str) -> dict[str, Any] | None:
        """The product of ERP item ``sku``: by its handle, else (a product made in Shopify before
        erpsync) the product of the variant with that SKU."""
        node = self._by_handle(handle(sku))
        if node is None:
            variant = self.variants([sku]).get(sku)
            if variant is not None:
                node = self._by_handle(str((variant.get("product") or {}).get("handle") or ""))
        return node

    def find(self, sku: str) -> dict[str, Any] | None:
        node = self._product(sku)
        return None if node is None else {"id": legacy_id(node["id"]), "gid": node["id"], "handle": node.get("handle")}

    def save(self, draft: ProductDraft, *, exists: bool) -> dict[str, Any]:
        """``productSet`` the whole product: a create, or (the product found by ``find``) an
        overwrite keeping its variants' ids (and so their stock); ``{"id", "gid"}`` after."""
        current: dict[str, Any] | None = None
        if exists:
            found = self._product(draft.sku)
            if found is None:
                raise ValidationFailed(
                    f"{self.name} has no product for {draft.sku} to update (deleted in Shopify?)", system=self.name
                )
            current = found
        body = product_input(draft, current)
        try:
            payload = self.client.mutate(PRODUCT_SET, {"input": body}, "productSet")
        except UserErrors as exc:
            raise ValidationFailed(f"{self.name} refused product {draft.sku}: {exc}", system=self.name) from exc
        product = payload.get("product") or {}
        if not product.get("id"):
            raise RetryableError(f"{self.name} answered productSet without the product", system=self.name)
        return {"id": legacy_id(product["id"]), "gid": product["id"], "handle": product.get("handle")}


def product_input(draft: ProductDraft, current: dict[str, Any] | None) -> dict[str, Any]:
    """A ``ProductSetInput`` of ``draft`` (its ``variants`` for a configurable; else one default
    variant); ``current`` (the product as read) gives the ids of the variants it keeps."""
    ids: dict[str, str] = {}
    for v in ((current or {}).get("variants") or {}).get("nodes") or []:
        if v.get("sku"):
            ids.setdefault(str(v["sku"]), str(v["id"]))
    body: dict[str, Any] = {
        "handle": str(current.get("handle") or handle(draft.sku)) if current else handle(draft.sku),
        "title": draft.name or None,
        "status": "ACTIVE" if draft.active else "DRAFT",
    }
    if draft.description is not None:
        body["descriptionHtml"] = draft.description
    if current is not None:
        body["id"] = current["id"]
        if not draft.name:  # the store owns the name: leave it
            body.pop("title")
    if draft.variants:
        names = list(draft.options)
        if not names:
            raise ValidationFailed(f"product {draft.sku}: a product with variants needs options")
        body["productOptions"] = [
            {"name": name, "position": i + 1, "values": [{"name": v} for v in draft.options[name]]}
            for i, name in enumerate(names)
        ]
        rows = []
        for child in draft.variants:
            missing = [n for n in names if n not in child.values]
            if missing:
                raise ValidationFailed(
                    f"product {draft.sku}: variant {child.sku} has no value for {', '.join(missing)}"
                )
            rows.append(
                _variant(child, [{"optionName": n, "name": child.values[n]} for n in names], ids.get(child.sku))
            )
        body["variants"] = rows
    else:
        body["productOptions"] = [{"name": DEFAULT_OPTION, "values": [{"name": DEFAULT_VALUE}]}]
        body["variants"] = [
            _variant(draft, [{"optionName": DEFAULT_OPTION, "name": DEFAULT_VALUE}], ids.get(draft.sku))
        ]
    return body


def _variant(draft: ProductDraft, options: list[dict[str, str]], id: str | None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "optionValues": options,
        "inventoryItem": {"sku": draft.sku, "tracked": draft.stock_managed},
    }
    if draft.price is not None:
        row["price"] = str(draft.price)
    if id:
        row["id"] = id
    return row


class ShopifyPrices(ShopifyCatalog):
    """ERP prices on Shopify variants, the target of the prices flow: the base price as the
    variant's price; a special price in force now as its price with the base price as
    ``compareAtPrice`` (Shopify's sale price: Shopify schedules no prices, so a markdown starts or
    ends when the price is next synced). Tier prices have no Shopify equivalent outside B2B
    catalogs and are not written."""

    def write(self, prices: list[PriceSet]) -> dict[str, str]:
        """One ``productVariantsBulkUpdate`` per product; SKU -> why Shopify refused it."""
        found = self.variants(p.sku for p in prices)
        refused: dict[str, str] = {}
        by_product: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        now = datetime.now(UTC)
        for p in prices:
            variant = found.get(p.sku)
            if variant is None:
                refused[p.sku] = f"no variant with SKU {p.sku}"
                continue
            row = variant_prices(p, now)
            if row is None:
                refused[p.sku] = "no base price to write"
                continue
            row["id"] = variant["id"]
            by_product.setdefault(str((variant.get("product") or {}).get("id")), []).append((p.sku, row))
        for product_id, rows in by_product.items():
            try:
                self.client.mutate(
                    VARIANTS_UPDATE,
                    {"productId": product_id, "variants": [r for _, r in rows]},
                    "productVariantsBulkUpdate",
                )
            except UserErrors as exc:
                for sku, _ in rows:
                    refused[sku] = str(exc)
        return refused


def variant_prices(prices: PriceSet, now: datetime) -> dict[str, Any] | None:
    """``{"price", "compareAtPrice"}`` of a variant from the ERP's price set at ``now``."""
    special = prices.special
    on_sale = (
        special is not None
        and (special.starts is None or _aware(special.starts) <= now)
        and (special.ends is None or now < _aware(special.ends))
    )
    base = prices.base
    if on_sale and special is not None:
        return {"price": str(special.price), "compareAtPrice": str(base) if base and base > special.price else None}
    if base is None:
        return None
    return {"price": str(base), "compareAtPrice": None}


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)


class ShopifyStock(ShopifyCatalog):
    """ERP stock as Shopify's ``available`` quantities per location, the target of the stock flow.

    A store source (``catalog.stock.sources``: one per ERP warehouse, or ``default_source``) is a
    location by ``locations`` in the connection's settings, else by the location's name. Only the
    quantities that differ from what Shopify holds are set, each with the quantity read as its
    ``compareQuantity`` (a sale between the read and the write makes it stale: read again once);
    an item not yet stocked at a location is activated there with its quantity."""

    def __init__(self, client: ShopifyClient, connection: str, settings: Callable[[], ShopifySettings]) -> None:
        super().__init__(client, connection, settings)
        self._locations: dict[str, str] | None = None

    def location(self, source: str) -> str:
        """The location GID of store source ``source``."""
        mapped = self.settings().locations.get(source)
        if mapped:
            if mapped.isdigit():
                return f"gid://shopify/Location/{mapped}"
            if mapped.startswith("gid://"):
                return mapped
            source = mapped  # a location's name
        if self._locations is None or source not in self._locations:
            data = self.client.query(LOCATIONS_QUERY, {}, cost=52)
            self._locations = {str(n["name"]): str(n["id"]) for n in (data.get("locations") or {}).get("nodes") or []}
        if source not in self._locations:
            raise ValidationFailed(
                f"{self.name} has no location for store source {source!r}: map it in the connection's settings "
                f"(locations: {{{source!r}: <location id>}}); its locations are {', '.join(sorted(self._locations))}",
                system=self.name,
            )
        return self._locations[source]

    def write(self, levels: list[StockLevel]) -> dict[str, str]:
        refused: dict[str, str] = {}
        for attempt in range(2):
            found = self.variants(lv.sku for lv in levels)
            changes: list[tuple[str, dict[str, Any]]] = []
            for lv in levels:
                if lv.sku in refused:
                    continue
                try:
                    changes.extend((lv.sku, c) for c in self._changes(lv, found.get(lv.sku)))
                except ValidationFailed as exc:
                    refused[lv.sku] = str(exc)
            stale = self._set(changes, refused)
            if not stale:
                return refused
            if attempt == 1:
                raise RetryableError(
                    f"{self.name} stock of {', '.join(sorted(stale))} changed while it was written: tried again",
                    system=self.name,
                )
        return refused

    def _changes(self, level: StockLevel, variant: dict[str, Any] | None) -> list[dict[str, Any]]:
        """The quantities of ``level`` Shopify does not hold yet (activating the item where needed)."""
        if variant is None:
            raise ValidationFailed(f"no variant with SKU {level.sku}")
        item = variant.get("inventoryItem") or {}
        if not item.get("tracked"):
            raise ValidationFailed(f"{level.sku} is not tracked in {self.name} (its inventory item does not count)")
        held: dict[str, int] = {}
        for node in (item.get("inventoryLevels") or {}).get("nodes") or []:
            quantities = {q["name"]: q["quantity"] for q in node.get("quantities") or []}
            held[str((node.get("location") or {}).get("id"))] = int(quantities.get("available") or 0)
        out = []
        for source, qty in sorted(level.quantities.items()):
            if qty != qty.to_integral_value():
                raise ValidationFailed(f"{level.sku}: {qty} at {source} is not a whole number (Shopify counts units)")
            location = self.location(source)
            wanted = int(qty)
            if location not in held:
                payload = self.client.mutate(
                    ACTIVATE, {"item": item["id"], "location": location, "available": wanted}, "inventoryActivate"
                )
                if not payload.get("inventoryLevel"):
                    raise RetryableError(f"{self.name} did not stock {level.sku} at {location}", system=self.name)
                continue
            if held[location] != wanted:
                out.append(
                    {
                        "inventoryItemId": item["id"],
                        "locationId": location,
                        "quantity": wanted,
                        "compareQuantity": held[location],
                    }
                )
        return out

    def _set(self, changes: list[tuple[str, dict[str, Any]]], refused: dict[str, str]) -> set[str]:
        """Send ``changes``, 250 a call; the SKUs whose compare quantity was stale (not written)."""
        stale: set[str] = set()
        for i in range(0, len(changes), QUANTITIES_PER_CALL):
            batch = changes[i : i + QUANTITIES_PER_CALL]
            while batch:
                body = {
                    "name": "available",
                    "reason": "correction",
                    "referenceDocumentUri": f"erpsync://stock/{self.name}",
                    "ignoreCompareQuantity": False,
                    "quantities": [c for _, c in batch],
                }
                try:
                    self.client.mutate(SET_QUANTITIES, {"input": body}, "inventorySetQuantities")
                    break
                except UserErrors as exc:
                    at = _index(exc.errors)
                    if at is None:
                        for sku, _ in batch:
                            refused[sku] = str(exc)
                        break
                    sku = batch[at][0]
                    if any(e.get("code") == "COMPARE_QUANTITY_STALE" for e in exc.errors):
                        stale.add(sku)
                    else:
                        refused[sku] = str(exc)
                    batch = [b for b in batch if b[0] != sku]  # all or nothing: the rest again without it
        return stale


def _index(errors: list[Any]) -> int | None:
    """The quantity a userError points at (``["input", "quantities", "3", ...]``)."""
    for e in errors:
        field = e.get("field") or []
        if len(field) >= 3 and field[1] == "quantities" and str(field[2]).isdigit():
            return int(field[2])
    return None
