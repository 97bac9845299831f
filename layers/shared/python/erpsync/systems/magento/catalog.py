"""Magento 2 as the target of the catalog: attributes and options, categories, products, prices
and stock (../shared/reference/CATALOG-NOTES.md §2 lists the traps these avoid).

- Every catalog write goes through ``/rest/all`` (global values): a write through a store view
  would make store-view overrides that later global writes never show through.
- Products are sent whole as the ERP owns them, with ``website_ids``, ``category_links`` and a
  configurable's options and links always in the payload (an update without them drops them).
- Option ids are the store's: after adding options the attribute is read back.
- url keys are the name's slug with the SKU, and on "URL key ... already exists" a numbered suffix.
- Prices go through the price APIs, many SKUs per request; they answer 200 with a list of
  failures, each of which fails its SKU alone. Stock goes to MSI source items, many per request
  (legacy stock items when MSI is off); a batch the store refuses as a whole is split in halves
  until the SKU at fault is found, so one bad SKU never fails the rest.
"""

from __future__ import annotations

import contextlib
import re
import time
import unicodedata
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from erpsync.errors import NotFoundError, RetryableError, ValidationFailed
from erpsync.model.catalog import Attribute, Category, PriceSet, ProductDraft, StockLevel, StoreAttribute
from erpsync.systems.magento.client import Filter, MagentoClient, render_message
from erpsync.systems.magento.settings import MagentoSettings

ALL = "all"
CHUNK = 500
BULK_COMPLETE, BULK_OPEN = 1, 4
"""Operation statuses of Magento's bulk API (2, 3: failed, retriable or not; 5: rejected)."""
BULK_WAIT_S = 300.0
"""How long a bulk of products may stay open (its consumers behind) before its open products are retried."""
"""SKUs per price or source-item request (well under PHP's and the web server's limits)."""
UNCOUNTED_STOCK_ITEM: dict[str, Any] = {
    "manage_stock": False,
    "use_config_manage_stock": False,
    "is_in_stock": True,
    "qty": 0,
    # the rest as the store's configuration has it (the schema lists every field as required)
    "is_qty_decimal": False,
    "is_decimal_divided": False,
    "show_default_notification_message": False,
    "use_config_min_qty": True,
    "min_qty": 0,
    "use_config_min_sale_qty": 1,
    "min_sale_qty": 1,
    "use_config_max_sale_qty": True,
    "max_sale_qty": 10000,
    "use_config_backorders": True,
    "backorders": 0,
    "use_config_notify_stock_qty": True,
    "notify_stock_qty": 1,
    "use_config_qty_increments": True,
    "qty_increments": 0,
    "use_config_enable_qty_inc": True,
    "enable_qty_increments": False,
    "low_stock_date": "",
    "stock_status_changed_auto": 0,
}
"""The stock item of a product the ERP keeps no stock of: not managed, so always salable."""
TS = "%Y-%m-%d %H:%M:%S"
ALL_GROUPS = "ALL GROUPS"
URL_TAKEN = "url key"


def sku_path(sku: str) -> str:
    return quote(sku, safe="")


def slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def _money(x: Decimal) -> float:
    return float(x)


class MagentoAttributes:
    def __init__(self, client: MagentoClient) -> None:
        self.client = client

    def find(self, code: str) -> StoreAttribute | None:
        try:
            data = self.client.get(f"/V1/products/attributes/{quote(code, safe='')}")
        except NotFoundError:
            return None
        options = {
            str(o.get("label", "")).strip(): str(o.get("value"))
            for o in data.get("options") or []
            if str(o.get("value", "")).strip() and str(o.get("label", "")).strip()
        }
        return StoreAttribute(
            code=str(data.get("attribute_code", code)), id=str(data.get("attribute_id", "")), options=options
        )

    def create(self, code: str, attribute: Attribute) -> StoreAttribute:
        live = [o for o in attribute.options if not o.disabled]
        body = {
            "attribute": {
                "attribute_code": code,
                "entity_type_id": "4",  # catalog_product (the schema requires it)
                "frontend_input": attribute.input
                if attribute.input in ("select", "multiselect", "boolean", "date")
                else "text",
                "default_frontend_label": attribute.label or attribute.source_id,
                "frontend_labels": [],
                "is_required": False,
                "is_user_defined": True,
                "scope": "global",
                "is_filterable": attribute.input in ("select", "multiselect"),
                "is_visible_on_front": "1",  # strings in the schema ("1"/"0")
                "used_in_product_listing": "0",
                "options": [  # ``value`` is required and ignored: Magento answers its own option ids
                    {"label": o.label, "value": "", "sort_order": o.sort_order, "is_default": False} for o in live
                ],
            }
        }
        self.client.post("/V1/products/attributes", body, scope=ALL)
        found = self.find(code)
        if found is None:
            raise ValidationFailed(f"magento attribute {code} is not there after its create", system=self.client.name)
        return found

    def add_options(self, code: str, labels: list[str]) -> StoreAttribute:
        for n, label in enumerate(labels):
            self.client.post(
                f"/V1/products/attributes/{quote(code, safe='')}/options",
                {"option": {"label": label, "value": "", "sort_order": n, "is_default": False, "store_labels": []}},
                scope=ALL,
            )
        found = self.find(code)
        if found is None:
            raise NotFoundError(f"magento attribute {code} is gone", system=self.client.name)
        return found


class MagentoCategories:
    def __init__(self, client: MagentoClient, settings: Callable[[], MagentoSettings]) -> None:
        self.client, self.settings = client, settings
        self._root: dict[int, str] = {}

    def root(self) -> str:
        website = self.settings().website_id
        if website not in self._root:
            groups = self.client.get("/V1/store/storeGroups") or []
            mine = [g for g in groups if int(g.get("website_id", -1)) == website] or groups
            if not mine:
                raise NotFoundError("magento has no store group to take a root category from", system=self.client.name)
            self._root[website] = str(mine[0].get("root_category_id"))
        return self._root[website]

    def get(self, id: str) -> tuple[str, str] | None:
        try:
            data = self.client.get(f"/V1/categories/{quote(id, safe='')}")
        except NotFoundError:
            return None
        return str(data.get("name", "")), str(data.get("parent_id", ""))

    def find(self, url_key: str, parent: str) -> str | None:
        rows = self.client.search("/V1/categories/list", [Filter("parent_id", parent), Filter("url_key", url_key)])
        return str(rows[0]["id"]) if rows else None

    def create(self, category: Category, parent: str, url_key: str) -> str:
        body = {
            "category": {
                "parent_id": int(parent),
                "name": category.name,
                "is_active": category.active,
                "include_in_menu": True,
                "position": category.position,
                "custom_attributes": [{"attribute_code": "url_key", "value": url_key}],
            }
        }
        data = self.client.post("/V1/categories", body, scope=ALL)
        return str(data.get("id"))

    def update(self, id: str, category: Category, parent: str) -> None:
        current = self.get(id)
        body = {
            "category": {
                "id": int(id),
                "name": category.name,
                "is_active": category.active,
                "position": category.position,
            }
        }
        self.client.put(f"/V1/categories/{quote(id, safe='')}", body, scope=ALL)
        if current is not None and current[1] != parent:
            self.client.put(f"/V1/categories/{quote(id, safe='')}/move", {"parentId": int(parent)}, scope=ALL)


class MagentoProducts:
    def __init__(self, client: MagentoClient) -> None:
        self.client = client
        self._in_set: dict[int, set[str]] = {}

    def find(self, sku: str) -> dict[str, Any] | None:
        try:
            data = self.client.get(f"/V1/products/{sku_path(sku)}")
        except NotFoundError:
            return None
        return {"id": str(data.get("id")), "type": data.get("type_id")}

    def save(self, draft: ProductDraft, *, exists: bool) -> dict[str, Any]:
        self._ensure_in_set(draft.attribute_set_id, list(draft.values))
        product = self.payload(draft)
        if exists:
            data = self.client.put(f"/V1/products/{sku_path(draft.sku)}", {"product": product}, scope=ALL)
            return {"id": str(data.get("id")), "type": data.get("type_id")}
        base = slug(f"{draft.name} {draft.sku}") or slug(draft.sku) or "product"
        for n in range(1, 6):
            key = base if n == 1 else f"{base}-{n}"
            attrs = [a for a in product["custom_attributes"] if a["attribute_code"] != "url_key"]
            product["custom_attributes"] = [*attrs, {"attribute_code": "url_key", "value": key}]
            try:
                data = self.client.post("/V1/products", {"product": product, "saveOptions": True}, scope=ALL)
            except ValidationFailed as exc:
                if URL_TAKEN in str(exc).lower() and n < 5:
                    continue
                raise
            return {"id": str(data.get("id")), "type": data.get("type_id")}
        raise ValidationFailed(f"magento refused every url key tried for {draft.sku}", system=self.client.name)

    def save_many(self, drafts: list[ProductDraft], new: set[str]) -> dict[str, str | Exception]:
        """Write ``drafts`` through the async bulk API, one request for them all (those in ``new`` are
        created, with a url key): SKU -> the store's product id, or the error of one it refused or
        did not finish in ``BULK_WAIT_S``. Magento saves a product by SKU, so a bulk sent again
        after a lost answer updates what the first one made: nothing is made twice."""
        for set_id in sorted({d.attribute_set_id for d in drafts}):
            codes = sorted({c for d in drafts if d.attribute_set_id == set_id for c in d.values})
            self._ensure_in_set(set_id, codes)
        body = []
        for d in drafts:
            product = self.payload(d)
            if d.sku in new:
                key = slug(f"{d.name} {d.sku}") or slug(d.sku) or "product"
                product["custom_attributes"].append({"attribute_code": "url_key", "value": key})
            body.append({"product": product, "saveOptions": True})
        answer = self.client.post("/async/bulk/V1/products", body, scope=ALL)
        if not isinstance(answer, dict) or not answer.get("bulk_uuid"):
            raise RetryableError(
                f"magento answered a bulk of products without a bulk_uuid: {answer!r:.200}", system=self.client.name
            )
        bulk = str(answer["bulk_uuid"])
        rejected = {
            int(r["id"]): str(r.get("error_message") or "rejected")
            for r in answer.get("request_items") or []
            if isinstance(r, dict) and r.get("status") != "accepted"
        }
        operations = self._finished(bulk)
        out: dict[str, str | Exception] = {}
        saved: list[str] = []
        for n, d in enumerate(drafts):
            status, message = operations.get(n, (None, rejected.get(n, "not in the bulk's status")))
            if status == BULK_COMPLETE:
                saved.append(d.sku)
            elif status in (BULK_OPEN, None) and n not in rejected:
                out[d.sku] = RetryableError(
                    f"magento bulk {bulk}: product {d.sku} not saved after {BULK_WAIT_S:.0f}s "
                    "(are the async.operations.all consumers running?)",
                    system=self.client.name,
                )
            else:
                out[d.sku] = ValidationFailed(
                    f"magento refused product {d.sku} (bulk {bulk}): {rejected.get(n) or message}",
                    system=self.client.name,
                )
        ids = product_ids(self.client, saved)
        for sku in saved:
            out[sku] = ids.get(sku) or RetryableError(
                f"magento bulk {bulk} saved product {sku} but a search does not find it", system=self.client.name
            )
        return out

    def _finished(self, bulk: str) -> dict[int, tuple[int | None, str]]:
        """Operation id -> (status, message) once no operation of ``bulk`` is open, or after
        ``BULK_WAIT_S`` (open ones then stay open)."""
        deadline = time.monotonic() + BULK_WAIT_S
        pause = 0.2
        while True:
            summary = self.client.get(f"/V1/bulk/{quote(bulk, safe='')}/status") or {}
            ops = {
                int(o["id"]): (int(o["status"]) if o.get("status") is not None else None, str(o.get("result_message")))
                for o in summary.get("operations_list") or []
                if isinstance(o, dict) and o.get("id") is not None
            }
            if all(status != BULK_OPEN for status, _ in ops.values()) or time.monotonic() >= deadline:
                return ops
            time.sleep(pause)
            pause = min(pause * 2, 5.0)

    def payload(self, d: ProductDraft) -> dict[str, Any]:
        product: dict[str, Any] = {
            "sku": d.sku,
            "attribute_set_id": d.attribute_set_id,
            "type_id": d.kind,
            "status": 1 if d.active else 2,
            "visibility": 4 if d.visible else 1,
        }
        if d.name:
            product["name"] = d.name
        if d.price is not None:
            product["price"] = _money(d.price)
        if d.weight is not None and d.kind != "virtual":
            product["weight"] = float(d.weight)
        ext: dict[str, Any] = {"website_ids": d.website_ids}
        if d.category_ids is not None:
            ext["category_links"] = [{"category_id": c, "position": 0} for c in d.category_ids]
        if d.kind == "configurable":
            ext["configurable_product_options"] = [
                {
                    "attribute_id": attr,
                    "label": d.option_labels.get(attr, attr),
                    "position": n,
                    "values": [{"value_index": int(o)} for o in opts],
                }
                for n, (attr, opts) in enumerate(d.options.items())
            ]
            ext["configurable_product_links"] = [int(c) for c in d.children]
        if d.kind == "bundle":
            ext["bundle_product_options"] = [
                {
                    "title": c.sku,
                    "required": True,
                    "type": "select",
                    "position": n,
                    "sku": d.sku,
                    "product_links": [
                        {
                            "sku": c.sku,
                            "qty": float(c.qty),
                            "is_default": True,
                            "price": 0,
                            "price_type": 0,
                            "can_change_quantity": 0,
                        }
                    ],
                }
                for n, c in enumerate(d.components)
            ]
        if not d.stock_managed:
            ext["stock_item"] = dict(UNCOUNTED_STOCK_ITEM)
        product["extension_attributes"] = ext
        custom = [{"attribute_code": code, "value": value} for code, value in sorted(d.values.items())]
        if d.description is not None:
            custom.append({"attribute_code": "description", "value": d.description})
        if d.tax_class_id is not None:
            custom.append({"attribute_code": "tax_class_id", "value": str(d.tax_class_id)})
        if d.kind == "bundle":
            custom += [
                {"attribute_code": k, "value": "0"}
                for k in ("price_type", "sku_type", "weight_type", "price_view", "shipment_type")
            ]
        product["custom_attributes"] = custom
        return product

    def _ensure_in_set(self, set_id: int, codes: list[str]) -> None:
        """Attributes must be in a product's attribute set, or the store drops their values."""
        if not codes:
            return
        if set_id not in self._in_set:
            rows = self.client.get(f"/V1/products/attribute-sets/{set_id}/attributes") or []
            self._in_set[set_id] = {str(r.get("attribute_code")) for r in rows}
        missing = [c for c in codes if c not in self._in_set[set_id]]
        if not missing:
            return
        groups = self.client.search("/V1/products/attribute-sets/groups/list", [Filter("attribute_set_id", set_id)])
        if not groups:
            raise NotFoundError(
                f"magento attribute set {set_id} has no group to put attributes in", system=self.client.name
            )
        group = int(groups[0]["attribute_group_id"])  # answered as a string, taken as an integer
        for code in missing:
            self.client.post(
                "/V1/products/attribute-sets/attributes",
                {"attributeSetId": set_id, "attributeGroupId": group, "attributeCode": code, "sortOrder": 100},
                scope=ALL,
            )
            self._in_set[set_id].add(code)


def _failed_skus(failures: Any, sent: list[str]) -> dict[str, str]:
    """The price APIs' failure list (``[{"message", "parameters"}]``) as SKU -> message."""
    out: dict[str, str] = {}
    known = set(sent)
    for f in failures or []:
        params = f.get("parameters") if isinstance(f, dict) else None
        values = list(params.values()) if isinstance(params, dict) else list(params or [])
        message = render_message(f, str(f))
        hits = [str(v) for v in values if str(v) in known]
        for sku in hits or sent:  # a failure naming no SKU fails the request's every SKU
            out.setdefault(sku, message)
    return out


def product_ids(client: MagentoClient, skus: list[str]) -> dict[str, str]:
    """SKU -> store product id of the SKUs the store has: one search per 100 (``sku in``; a SKU
    with a comma, which ``in`` would split, is looked up alone)."""
    plain = [s for s in skus if "," not in s]
    found: dict[str, str] = {}
    for i in range(0, len(plain), 100):
        chunk = plain[i : i + 100]
        rows = client.search("/V1/products", [Filter("sku", ",".join(chunk), "in")], page_size=len(chunk))
        found.update({str(r.get("sku")): str(r.get("id")) for r in rows})
    for sku in skus:
        if "," in sku:
            with contextlib.suppress(NotFoundError):
                found[sku] = str(client.get(f"/V1/products/{sku_path(sku)}").get("id"))
    return found


def absent_products(client: MagentoClient, skus: list[str]) -> set[str]:
    """The SKUs the store has no product for."""
    found = product_ids(client, skus)
    return {s for s in skus if s not in found}


class MagentoPrices:
    def __init__(self, client: MagentoClient) -> None:
        self.client = client

    def missing(self, skus: list[str]) -> set[str]:
        return absent_products(self.client, skus)

    def write(self, prices: list[PriceSet]) -> dict[str, str]:
        failed: dict[str, str] = {}
        for i in range(0, len(prices), CHUNK):
            chunk = prices[i : i + CHUNK]
            base: list[dict[str, Any]] = [
                {"price": _money(p.base), "store_id": 0, "sku": p.sku} for p in chunk if p.base is not None
            ]
            if base:
                answer = self.client.post("/V1/products/base-prices", {"prices": base}, scope=ALL)
                failed.update(_failed_skus(answer, [p.sku for p in chunk if p.base is not None]))
            special: list[dict[str, Any]] = [
                {
                    "price": _money(p.special.price),
                    "store_id": 0,
                    "sku": p.sku,
                    "price_from": p.special.starts.strftime(TS) if p.special.starts else None,
                    "price_to": p.special.ends.strftime(TS) if p.special.ends else None,
                }
                for p in chunk
                if p.special is not None and p.sku not in failed
            ]
            if special:
                rows = [{k: v for k, v in r.items() if v is not None} for r in special]
                answer = self.client.post("/V1/products/special-price", {"prices": rows}, scope=ALL)
                failed.update(_failed_skus(answer, [str(r["sku"]) for r in rows]))
            tiers: list[dict[str, Any]] = [
                {
                    "price": _money(t.price),
                    "price_type": "fixed",
                    "website_id": 0,
                    "sku": p.sku,
                    "customer_group": ALL_GROUPS if t.group == "ALL" else t.group,
                    "quantity": float(t.qty),
                }
                for p in chunk
                if p.sku not in failed
                for t in p.tiers
            ]
            if tiers:
                skus = sorted({str(r["sku"]) for r in tiers})
                failed.update(
                    _failed_skus(self.client.put("/V1/products/tier-prices", {"prices": tiers}, scope=ALL), skus)
                )
            self._clear([p.sku for p in chunk if p.clear_special and p.sku not in failed], "special-price", failed)
            self._clear([p.sku for p in chunk if p.clear_tiers and p.sku not in failed], "tier-prices", failed)
        return failed

    def _clear(self, skus: list[str], kind: str, failed: dict[str, str]) -> None:
        """Delete every ``kind`` row (special price, tier prices) the store holds for ``skus``: read
        them (``<kind>-information``) and send them back to ``<kind>-delete``, which removes exact matches."""
        if not skus:
            return
        rows = self.client.post(f"/V1/products/{kind}-information", {"skus": skus}, scope=ALL) or []
        rows = [r for r in rows if isinstance(r, dict) and str(r.get("sku")) in skus]
        if rows:
            answer = self.client.post(f"/V1/products/{kind}-delete", {"prices": rows}, scope=ALL)
            failed.update(_failed_skus(answer, skus))


class MagentoStock:
    def __init__(self, client: MagentoClient, settings: Callable[[], MagentoSettings]) -> None:
        self.client = client
        self.settings = settings

    def missing(self, skus: list[str]) -> set[str]:
        return absent_products(self.client, skus)

    def write(self, levels: list[StockLevel]) -> dict[str, str]:
        if not self.settings().msi:
            return self._legacy(levels)
        failed: dict[str, str] = {}
        for i in range(0, len(levels), CHUNK):
            self._source_items(levels[i : i + CHUNK], failed)
        return failed

    def _source_items(self, levels: list[StockLevel], failed: dict[str, str]) -> None:
        items = [
            {
                "sku": lv.sku,
                "source_code": source,
                "quantity": float(q),
                "status": 1 if lv.in_stock.get(source, q > 0) else 0,
            }
            for lv in levels
            for source, q in sorted(lv.quantities.items())
        ]
        if not items:
            return
        try:
            self.client.post("/V1/inventory/source-items", {"sourceItems": items}, scope=ALL)
        except ValidationFailed as exc:
            if len(levels) == 1:
                failed[levels[0].sku] = str(exc)
                return
            half = len(levels) // 2  # refused as a whole: find the SKU at fault, keep the rest
            self._source_items(levels[:half], failed)
            self._source_items(levels[half:], failed)

    def _legacy(self, levels: list[StockLevel]) -> dict[str, str]:
        failed: dict[str, str] = {}
        for lv in levels:
            qty = sum(lv.quantities.values(), Decimal(0))
            try:
                item = self.client.get(f"/V1/stockItems/{sku_path(lv.sku)}")
                self.client.put(
                    f"/V1/products/{sku_path(lv.sku)}/stockItems/{item.get('item_id')}",
                    {"stockItem": {"qty": float(qty), "is_in_stock": any(lv.in_stock.values()) or qty > 0}},
                )
            except (ValidationFailed, NotFoundError) as exc:
                failed[lv.sku] = str(exc)
        return failed
