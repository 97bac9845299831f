"""The Magento sim's catalog: stores, attributes, attribute sets, categories, products, prices, stock.

Wired into the one Magento app (:mod:`sandbox.sims.magento`): same state object, same lock, same
error bodies. Routes are served under ``/rest/<scope>/V1`` where scope is ``all`` (admin, store 0:
global values), ``default`` or nothing (the default store view) or any store view code seeded; an
unknown code is a path Magento does not know (404 "Request does not match any route.").

Endpoints (shapes as in Magento 2.4.8's admin schema):

- stores: ``GET /V1/store/websites``, ``/V1/store/storeGroups`` (``root_category_id``), ``/V1/store/storeViews``
- attributes: ``GET|POST /V1/products/attributes``, ``GET|PUT|DELETE /V1/products/attributes/{code}``,
  ``GET|POST /V1/products/attributes/{code}/options``, ``PUT|DELETE .../options/{optionId}``
- attribute sets: ``GET /V1/products/attribute-sets/sets/list``, ``POST /V1/products/attribute-sets``,
  ``GET /V1/products/attribute-sets/{id}``, ``GET /V1/products/attribute-sets/{id}/attributes``,
  ``POST /V1/products/attribute-sets/attributes``, ``GET /V1/products/attribute-sets/groups/list``,
  ``POST /V1/products/attribute-sets/groups``
- categories: ``GET /V1/categories`` (tree; ``rootCategoryId``, ``depth``), ``GET /V1/categories/list``,
  ``GET|PUT|DELETE /V1/categories/{id}``, ``POST /V1/categories``, ``PUT /V1/categories/{id}/move``,
  ``GET|POST|PUT /V1/categories/{id}/products``, ``DELETE /V1/categories/{id}/products/{sku}``
- products: ``GET /V1/products``, ``POST /V1/products``, ``GET|PUT|DELETE /V1/products/{sku}`` (SKUs
  URL-encoded, ``%2F`` included), ``POST|PUT /V1/products/{sku}/websites``,
  ``GET /V1/configurable-products/{sku}/children``, ``GET .../options/all``, ``POST .../child``,
  ``POST .../options``, ``DELETE .../children/{childSku}``, ``GET /V1/bundle-products/{sku}/children``
- prices: ``POST /V1/products/base-prices`` (+ ``-information``), ``/special-price`` (+ ``-information``,
  ``-delete``), ``POST|PUT /V1/products/tier-prices`` (+ ``-information``, ``-delete``);
  ``GET /V1/customerGroups/search``, ``GET /V1/customerGroups/{id}``
- stock (MSI): ``GET|POST /V1/inventory/sources``, ``GET /V1/inventory/sources/{code}``,
  ``GET /V1/inventory/stocks``, ``GET|POST /V1/inventory/stock-source-links``,
  ``GET|POST /V1/inventory/source-items``, ``POST /V1/inventory/source-items-delete``,
  ``GET /V1/inventory/get-product-salable-quantity/{sku}/{stockId}``,
  ``GET /V1/inventory/is-product-salable/{sku}/{stockId}``; legacy ``GET /V1/stockItems/{sku}`` and
  ``PUT /V1/products/{sku}/stockItems/{itemId}`` (answers the item id as a string)
- async bulk: ``POST /rest/<scope>/async/bulk/V1/products`` (and ``PUT .../products/bySku``), processed at
  once; ``GET /V1/bulk/{uuid}/status``

Behaviour and the traps real connectors fell into (CATALOG-NOTES §2, §4), reproduced on purpose:

1. **Store scope** (#9186, #7612, #31083, #7831). Each attribute has a scope (``global``, ``website``,
   ``store``). A write through ``/rest/all`` sets global values. A write through a store view
   (``/rest/default``, ``/rest/V1``, ``/rest/<code>``) of an *existing* product or category puts every
   non-global value (name, description, url_key, status, visibility, meta_*, user attributes of scope
   store/website) into a store-view override and leaves the global value alone; *creating* through a
   store view writes the values globally and as an override of that store view (Magento writes both
   rows). Reads through a store view show the override, reads through ``all`` the global value, so a
   later global write no longer shows in that store view. Price is global (Magento's default
   ``catalog/price/scope``); seed ``{"config": {"price_scope": "website"}}`` to make price and
   special_price store-scoped too.
2. **Websites** (#11324): a product created through ``/rest/all`` without
   ``extension_attributes.website_ids`` goes to every website; through a store view, to that store's
   website.
3. **Category links** (#2900, #3354, #4104): Magento 2.4.8 keeps a product's category links when a save
   carries no ``category_links`` (``Category\\Link\\SaveHandler`` skips ``null``) and drops them all for
   ``category_links: []``. The 2.0-2.1 behaviour (a save without them removes them) is switched on by
   seeding ``{"config": {"legacy_category_links_replace": true}}``.
4. **Configurable links** (#9789): a save of a configurable whose body has ``extension_attributes``
   but no ``configurable_product_links`` unlinks every child (2.4.8's ``ConfigurableProduct\\Model\\
   Product\\SaveHandler`` saves ``(array) null``); a body without ``extension_attributes`` keeps them.
   ``configurable_product_options`` left out are kept, sent ones replace. Children must carry a value
   for every option attribute and differ (``Products "%1" and "%2" have the same set of attribute
   values.``). As in Magento the options' ``values`` are read back from the linked children, not
   from the ``value_index`` sent. Unlike Magento, a link to a product id that does not exist (yet) is
   kept rather than refused: the sim's own seeds and story post a configurable before its children.
5. **Bundle options**: a save without ``bundle_product_options`` keeps them; sent ones replace.
6. **url_key** (#11266, #8188, #3525, #21860): a product without url_key gets the slug of its name, so
   two products named alike collide: 400 ``URL key for specified store already exists.`` (unique per
   store view among the products of its websites). Categories: unique among the children of one parent.
7. **Select attributes** take the option id as a string; an unknown option id is a 400. Unknown
   attribute codes in ``custom_attributes`` are dropped silently, as Magento does, and so are the
   values of user-defined attributes that are not in the product's attribute set (assign them with
   ``POST /V1/products/attribute-sets/attributes`` first). A set the sim does not know (the Luma
   sample's 9) is not checked.
8. **Options** (#8810, #18392, #36939): ``POST .../options`` answers ``"id_<n>"``; a ``value`` sent by
   the client is ignored; the listing starts with ``{"label": " ", "value": ""}``.
9. **Category PUT without name** (#22309): 400 ``The "Name" attribute value is empty. Set the attribute
   and try again.`` (whatever the scope).
10. **Prices** answer 200 with a list of failures (``[]`` = all saved); the rows that fail are skipped,
    the others saved. A configurable SKU is not a valid special/tier price SKU (the failure says the
    product does not exist, as Magento's SKU filter does); a bundle's special price is a percentage
    (0-100). Tier ``PUT`` replaces every tier price of the SKUs sent, ``POST`` adds or updates.
    ``customer_group`` is the group code (a code with surrounding spaces is unknown, PR #36590);
    ``ALL GROUPS`` is id 32000; bundles take ``discount`` tiers only. ``*-delete`` needs an exact
    match; rows that match nothing are ignored. Special prices follow Open Source: one per SKU and
    store, ``price_from``/``price_to`` optional (the 2.4.8 schema marks them required, as Adobe
    Commerce does: a connector that validates its bodies sends them).
11. **Stock**: source items take many SKUs per call and answer ``[]``; one bad row fails the whole call
    with 400 ``Validation Failed`` and ``errors[]``. Salable quantity = quantity of the in-stock
    source items of the stock's enabled sources minus open reservations (ordered - shipped - canceled -
    refunded on the sim's orders that are not canceled/closed/complete; every sim order counts as a
    checkout order). A shipment deducts the quantity from the SKU's source items (by link priority),
    as MSI does. The legacy stock item (``extension_attributes.stock_item``, ``/V1/stockItems``)
    mirrors the ``default`` source item both ways. A new simple/virtual product gets a ``default``
    source item (quantity 0, out of stock), as manage-source-items.md says. Source items for a
    configurable, bundle or grouped SKU are refused (one such row fails the call, BCApps#8396).
12. ``updated_at`` moves on every save of a product or category.
13. Integer results come back as JSON strings (``"335"`` for a configurable option, the item id for a
    stock item PUT), as Magento prints them, though the schema says integer.

Messages: Magento's own where known (``URL key for specified store already exists.``, ``The product
is already attached.``, ``Option values are not specified.``, ``Requested products don't exist:
%sku``, the price-storage ``Row ID`` messages, ``Validation Failed``...). The wording of a few is the
sim's own (unknown select option id, an unknown SKU or source in a source item, a source item for a
configurable); parameters of price failures are a list of the placeholder values in order of first
appearance. Known differences: ``category_ids`` is not echoed in ``custom_attributes`` (Magento prints
a list there, which the 2.4.8 schema refuses); attribute set ids are not checked.

Seeding (``POST /_sim/seed``, every key optional, alongside ``products``/``customers``/``orders``):
``{"config": {"price_scope", "legacy_category_links_replace"}, "websites": [{id, code, name,
default_group_id}], "store_groups": [{id, website_id, root_category_id, default_store_id, name, code}],
"store_views": [{id, code, name, website_id, store_group_id, is_active}], "customer_groups": [{id,
code, tax_class_id}], "attributes": [<attribute as POST /V1/products/attributes takes it, plus
attribute_set_ids: [set ids to put it in]; a seeded attribute_id and option value are kept when
free>], "attribute_sets": [{attribute_set_name, skeleton_id?, attributes?: [codes]}], "categories":
[<category as POST /V1/categories takes it, optional id>], "sources": [<source>],
"stock_source_links": [{stock_id, source_code, priority}], "source_items": [{sku, source_code,
quantity, status}]}``. The answer adds ``attributes: [{attribute_code, attribute_id, options: {label: id}}]``,
``attribute_sets: [{attribute_set_name, attribute_set_id}]`` and ``categories: [{name, id}]``.
Defaults: website 1 ``base``, store group 1 (root category 2), store view 1 ``default``; root category
1 and "Default Category" 2; attribute set 4 "Default" (groups 7 "Product Details", 8 "Content") with
the standard attributes; customer groups 0 NOT LOGGED IN, 1 General, 2 Wholesale, 3 Retailer; source
``default`` in stock 1 "Default Stock".
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from sandbox.sims.magento import (
    BAD_TYPE,
    NO_ROUTE,
    PRODUCT_NOT_FOUND,
    REQUIRED,
    MagentoError,
    _int,
    num,
    parse_search_criteria,
    render_message,
    search,
)
from sandbox.sims.magento_orders import stock_item

if TYPE_CHECKING:
    from sandbox.sims.magento import MagentoSim

JSON = dict[str, Any]

NO_SUCH = "No such entity with %fieldName = %fieldValue"
INVALID_FIELD = 'Invalid value of "%value" provided for the %fieldName field.'
URL_KEY_TAKEN = "URL key for specified store already exists."
ATTRIBUTE_MISSING = 'The attribute with a "%1" attributeCode doesn\'t exist. Verify the attribute and try again.'
ATTRIBUTE_CODE_BAD = (
    'Attribute code "%1" is invalid. Please use only letters (a-z or A-Z), numbers (0-9) or underscore (_) '
    "in this field, and the first character should be a letter."
)
ATTRIBUTE_CODE_LENGTH = "An attribute code must not be less than %1 and more than %2 characters."
ATTRIBUTE_EXISTS = "An attribute with the same code (%1) already exists."
NAME_EMPTY = 'The "%1" attribute value is empty. Set the attribute and try again.'
VALIDATION_FAILED = "Validation Failed"
ATTRIBUTE_CODE_RE = re.compile(r"^[a-z][a-z0-9_]{0,59}$")

ALL_GROUPS_ID = 32000
ALL_GROUPS = "ALL GROUPS"
PRODUCT_TYPES = ("simple", "virtual", "configurable", "bundle", "downloadable", "grouped")
SPECIAL_PRICE_TYPES = ("simple", "virtual", "bundle", "downloadable")
TIER_PRICE_TYPES = ("simple", "virtual", "bundle", "downloadable")
BASE_PRICE_TYPES = ("simple", "virtual", "bundle", "downloadable", "configurable")
SOURCE_ITEM_TYPES = ("simple", "virtual", "downloadable")
SELECT_INPUTS = ("select", "multiselect", "swatch_visual", "swatch_text")
FRONTEND_INPUTS = (
    "text",
    "textarea",
    "texteditor",
    "pagebuilder",
    "date",
    "datetime",
    "boolean",
    "multiselect",
    "select",
    "price",
    "weight",
    "media_image",
    "gallery",
    "swatch_visual",
    "swatch_text",
)
HANDLED_EXTENSIONS = (
    "website_ids",
    "category_links",
    "stock_item",
    "configurable_product_options",
    "configurable_product_links",
    "bundle_product_options",
)
NOT_COPIED = frozenset(
    {"id", "sku", "type_id", "attribute_set_id", "created_at", "updated_at", "extension_attributes"}
    | {"custom_attributes", "tier_prices"}
)
TOP_LEVEL = ("name", "price", "status", "visibility", "weight")
"""Product attributes that travel as top-level fields, not in ``custom_attributes``."""

# (id, code, frontend_input, backend_type, scope, label, required, group)
_STANDARD: list[tuple[int, str, str, str, str, str, bool, int]] = [
    (73, "name", "text", "varchar", "store", "Product Name", True, 7),
    (74, "sku", "text", "static", "global", "SKU", True, 7),
    (75, "description", "textarea", "text", "store", "Description", False, 8),
    (76, "short_description", "textarea", "text", "store", "Short Description", False, 8),
    (77, "price", "price", "decimal", "global", "Price", True, 7),
    (78, "special_price", "price", "decimal", "global", "Special Price", False, 7),
    (79, "special_from_date", "date", "datetime", "global", "Special Price From Date", False, 7),
    (80, "special_to_date", "date", "datetime", "global", "Special Price To Date", False, 7),
    (81, "cost", "price", "decimal", "global", "Cost", False, 7),
    (82, "weight", "weight", "decimal", "global", "Weight", False, 7),
    (83, "manufacturer", "select", "int", "global", "Manufacturer", False, 7),
    (84, "meta_title", "text", "varchar", "store", "Meta Title", False, 8),
    (85, "meta_keyword", "textarea", "text", "store", "Meta Keywords", False, 8),
    (86, "meta_description", "textarea", "varchar", "store", "Meta Description", False, 8),
    (93, "color", "select", "int", "global", "Color", False, 7),
    (97, "status", "boolean", "int", "website", "Enable Product", False, 7),
    (99, "visibility", "select", "int", "store", "Visibility", False, 7),
    (106, "options_container", "select", "varchar", "store", "Display Product Options In", False, 8),
    (107, "required_options", "text", "static", "global", "Required Options", False, 7),
    (108, "has_options", "text", "static", "global", "Has Options", False, 7),
    (121, "url_key", "text", "varchar", "store", "URL Key", False, 8),
    (132, "tax_class_id", "select", "int", "website", "Tax Class", False, 7),
    (133, "country_of_manufacture", "select", "varchar", "website", "Country of Manufacture", False, 7),
    (135, "price_type", "boolean", "int", "global", "Dynamic Price", False, 7),
    (136, "sku_type", "boolean", "int", "global", "Dynamic SKU", False, 7),
    (137, "weight_type", "boolean", "int", "global", "Dynamic Weight", False, 7),
    (138, "price_view", "select", "int", "global", "Price View", False, 7),
    (139, "shipment_type", "select", "int", "global", "Ship Bundle Items", False, 7),
]
FIXED_SOURCES = {
    "visibility",
    "status",
    "tax_class_id",
    "options_container",
    "country_of_manufacture",
    "price_view",
    "shipment_type",
}
"""Select attributes backed by a source model (not by stored options): their values are not checked."""
CATEGORY_STORE_FIELDS = ("name", "is_active", "include_in_menu")
CATEGORY_STORE_ATTRIBUTES = ("description", "url_key", "meta_title", "meta_keywords", "meta_description")


def slug(text: str) -> str:
    """Magento's url_key from a name: lower case, runs of other characters become one dash."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def attrs_of(record: JSON) -> dict[str, Any]:
    """A record's ``custom_attributes`` as a code -> value dict."""
    out: dict[str, Any] = {}
    for row in record.get("custom_attributes") or []:
        if isinstance(row, dict) and isinstance(row.get("attribute_code"), str):
            out[row["attribute_code"]] = row.get("value")
    return out


def attrs_list(values: dict[str, Any]) -> list[JSON]:
    return [{"attribute_code": k, "value": v} for k, v in values.items()]


def _failure(message: str, values: list[Any]) -> JSON:
    """A price-storage failure: the message with %placeholders and their values, in order."""
    return {"message": message, "parameters": ["" if v is None else str(v) for v in values]}


def eav_value(value: Any) -> Any:
    """A custom attribute value as Magento answers it: a string (lists joined with commas)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def group_out(group: JSON) -> JSON:
    """An attribute group as Magento answers it: ``attribute_group_id`` is a string (the schema says so)."""
    return {**group, "attribute_group_id": str(group["attribute_group_id"])}


def category_field(key: str, value: Any) -> Any:
    return bool(int(value)) if key in ("is_active", "include_in_menu") and value is not None else value


def _found_page(rows: list[JSON], q: list[tuple[str, str]], id_field: str) -> JSON:
    return copy.deepcopy(search(rows, parse_search_criteria(q), id_field))


@dataclass
class Catalog:
    """The catalog's records, held by a :class:`MagentoSim` (``sim.catalog``) and used under its lock."""

    sim: MagentoSim
    config: JSON = field(default_factory=dict)
    websites: dict[int, JSON] = field(default_factory=dict)
    groups: dict[int, JSON] = field(default_factory=dict)
    stores: dict[int, JSON] = field(default_factory=dict)
    customer_groups: dict[int, JSON] = field(default_factory=dict)
    attributes: dict[str, JSON] = field(default_factory=dict)
    attribute_sets: dict[int, JSON] = field(default_factory=dict)
    attribute_groups: dict[int, JSON] = field(default_factory=dict)
    set_attributes: dict[int, dict[str, tuple[int, int]]] = field(default_factory=dict)
    """set id -> attribute code -> (group id, sort order)."""
    categories: dict[int, JSON] = field(default_factory=dict)
    category_overrides: dict[tuple[int, int], JSON] = field(default_factory=dict)
    links: dict[str, dict[int, int]] = field(default_factory=dict)
    """sku -> category id -> position."""
    overrides: dict[tuple[str, int], JSON] = field(default_factory=dict)
    """(sku, store id) -> store-view values: top-level fields and ``custom_attributes`` (a dict)."""
    url_index: dict[tuple[int, str], str] = field(default_factory=dict)
    url_keys_of: dict[str, set[tuple[int, str]]] = field(default_factory=dict)
    specials: dict[str, list[JSON]] = field(default_factory=dict)
    tiers: dict[str, list[JSON]] = field(default_factory=dict)
    sources: dict[str, JSON] = field(default_factory=dict)
    stocks: dict[int, JSON] = field(default_factory=dict)
    stock_links: list[JSON] = field(default_factory=list)
    source_items: dict[tuple[str, str], JSON] = field(default_factory=dict)
    stock_config: dict[str, JSON] = field(default_factory=dict)
    """sku -> the legacy stock item's settings (everything but qty and is_in_stock)."""
    bulks: dict[str, JSON] = field(default_factory=dict)
    id_index: dict[Any, str] = field(default_factory=dict)
    """product id -> sku (checked on use, rebuilt when stale)."""

    def __post_init__(self) -> None:
        self.reset()

    # ----------------------------------------------------------------- defaults

    def reset(self) -> None:
        """Back to a fresh Magento install: default stores, attributes, set 4, categories 1 and 2."""
        for value in vars(self).values():
            if isinstance(value, dict | list) and value is not self.sim:
                value.clear()
        self.config.update(price_scope="global", legacy_category_links_replace=False)
        self.websites[0] = {"id": 0, "code": "admin", "name": "Admin", "default_group_id": 0}
        self.websites[1] = {"id": 1, "code": "base", "name": "Main Website", "default_group_id": 1}
        self.groups[0] = {
            "id": 0,
            "website_id": 0,
            "root_category_id": 0,
            "default_store_id": 0,
            "name": "Default",
            "code": "default",
        }
        self.groups[1] = {
            "id": 1,
            "website_id": 1,
            "root_category_id": 2,
            "default_store_id": 1,
            "name": "Main Website Store",
            "code": "main_website_store",
        }
        self.stores[0] = {
            "id": 0,
            "code": "admin",
            "name": "Admin",
            "website_id": 0,
            "store_group_id": 0,
            "is_active": 1,
        }
        self.stores[1] = {
            "id": 1,
            "code": "default",
            "name": "Default Store View",
            "website_id": 1,
            "store_group_id": 1,
            "is_active": 1,
        }
        for gid, code, tax in ((0, "NOT LOGGED IN", 3), (1, "General", 3), (2, "Wholesale", 3), (3, "Retailer", 3)):
            self.customer_groups[gid] = {
                "id": gid,
                "code": code,
                "tax_class_id": tax,
                "tax_class_name": "Retail Customer",
            }
        self.attribute_sets[4] = {
            "attribute_set_id": 4,
            "attribute_set_name": "Default",
            "sort_order": 0,
            "entity_type_id": 4,
        }
        self.attribute_groups[7] = {
            "attribute_group_id": 7,
            "attribute_group_name": "Product Details",
            "attribute_set_id": 4,
        }
        self.attribute_groups[8] = {"attribute_group_id": 8, "attribute_group_name": "Content", "attribute_set_id": 4}
        self.set_attributes[4] = {}
        for aid, code, finput, backend, scope, label, required, group in _STANDARD:
            self.attributes[code] = self._attribute_record(
                {
                    "attribute_id": aid,
                    "attribute_code": code,
                    "frontend_input": finput,
                    "backend_type": backend,
                    "scope": scope,
                    "default_frontend_label": label,
                    "is_required": required,
                    "is_user_defined": False,
                }
            )
            self.set_attributes[4][code] = (group, aid)
        now = "2024-01-01 00:00:00"
        self.categories[1] = self._category_defaults(1, 0, "Root Catalog", "1", 0, now)
        self.categories[2] = self._category_defaults(2, 1, "Default Category", "1/2", 1, now)
        self.sources["default"] = {
            "source_code": "default",
            "name": "Default Source",
            "enabled": True,
            "description": "Default Source",
            "latitude": 0,
            "longitude": 0,
            "country_id": "US",
            "postcode": "00000",
            "use_default_carrier_config": True,
            "carrier_links": [],
        }
        self.stocks[1] = {
            "stock_id": 1,
            "name": "Default Stock",
            "extension_attributes": {"sales_channels": [{"type": "website", "code": "base"}]},
        }
        self.stock_links.append({"stock_id": 1, "source_code": "default", "priority": 1})

    def _next(self, kind: str, at_least: int) -> int:
        return self.sim.next_id(f"catalog_{kind}", at_least)

    # ----------------------------------------------------------------- stores

    def store_id(self) -> int:
        """The store view the current request addresses (0 for ``/rest/all``)."""
        code = self.sim.store_code
        if code == "all":
            return 0
        if code == "default":
            return self.default_store_id()
        for store in self.stores.values():
            if store["code"] == code:
                return int(store["id"])
        raise MagentoError(404, NO_ROUTE)

    def knows_store(self, code: str) -> bool:
        return code in ("all", "default") or any(s["code"] == code for s in self.stores.values() if s["id"])

    def default_store_id(self) -> int:
        website = next((w for w in self.websites.values() if w["id"]), None)
        if website is None:
            return 1
        group = self.groups.get(website["default_group_id"])
        return int(group["default_store_id"]) if group else 1

    def website_of(self, store_id: int) -> int:
        store = self.stores.get(store_id)
        return int(store["website_id"]) if store else 0

    def stores_of_websites(self, website_ids: Iterable[int]) -> list[int]:
        wanted = set(website_ids)
        return sorted(s["id"] for s in self.stores.values() if s["id"] and s["website_id"] in wanted)

    def root_category(self, store_id: int) -> int:
        store = self.stores.get(store_id)
        if not store_id or store is None:
            return 1
        group = self.groups.get(store["store_group_id"])
        return int(group["root_category_id"]) if group else 2

    # ----------------------------------------------------------------- attributes

    def _attribute_record(self, given: JSON) -> JSON:
        finput = given.get("frontend_input") or "text"
        backend = given.get("backend_type") or {
            "select": "int",
            "boolean": "int",
            "multiselect": "varchar",
            "price": "decimal",
            "weight": "decimal",
            "date": "datetime",
            "textarea": "text",
        }.get(finput, "varchar")
        label = given.get("default_frontend_label")
        labels = given.get("frontend_labels") or []
        if not label:
            label = next((x.get("label") for x in labels if isinstance(x, dict) and not x.get("store_id")), None)
        flag = lambda key, default="0": str(int(bool(int(given[key])))) if key in given else default  # noqa: E731
        record: JSON = {
            "is_wysiwyg_enabled": bool(given.get("is_wysiwyg_enabled", False)),
            "is_html_allowed_on_front": bool(given.get("is_html_allowed_on_front", False)),
            "used_for_sort_by": bool(given.get("used_for_sort_by", False)),
            "is_filterable": bool(given.get("is_filterable", False)),
            "is_filterable_in_search": bool(given.get("is_filterable_in_search", False)),
            "is_used_in_grid": bool(given.get("is_used_in_grid", True)),
            "is_visible_in_grid": bool(given.get("is_visible_in_grid", False)),
            "is_filterable_in_grid": bool(given.get("is_filterable_in_grid", True)),
            "position": int(given.get("position") or 0),
            "apply_to": list(given.get("apply_to") or []),
            "is_searchable": flag("is_searchable"),
            "is_visible_in_advanced_search": flag("is_visible_in_advanced_search"),
            "is_comparable": flag("is_comparable"),
            "is_used_for_promo_rules": flag("is_used_for_promo_rules"),
            "is_visible_on_front": flag("is_visible_on_front"),
            "used_in_product_listing": flag("used_in_product_listing"),
            "is_visible": bool(given.get("is_visible", True)),
            "scope": given.get("scope") or "store",
            "attribute_id": given["attribute_id"],
            "attribute_code": given["attribute_code"],
            "frontend_input": finput,
            "entity_type_id": "4",
            "is_required": bool(given.get("is_required", False)),
            "options": [],
            "is_user_defined": bool(given.get("is_user_defined", True)),
            "default_frontend_label": label,
            "frontend_labels": [
                {"store_id": int(x.get("store_id") or 0), "label": str(x.get("label") or "")}
                for x in labels
                if isinstance(x, dict)
            ],
            "backend_type": backend,
            "is_unique": "0",
            "validation_rules": [],
        }
        if given.get("default_value") is not None:
            record["default_value"] = str(given["default_value"])
        if given.get("note"):
            record["note"] = str(given["note"])
        return record

    def attribute(self, code: str) -> JSON:
        if code not in self.attributes:
            raise MagentoError(404, ATTRIBUTE_MISSING, [code])
        return self.attributes[code]

    def attribute_by_id(self, attribute_id: Any) -> JSON:
        for record in self.attributes.values():
            if str(record["attribute_id"]) == str(attribute_id):
                return record
        raise MagentoError(404, NO_SUCH, {"fieldName": "attribute_id", "fieldValue": attribute_id})

    def render_attribute(self, record: JSON) -> JSON:
        out = copy.deepcopy(record)
        out["options"] = self.option_list(record)
        return out

    def option_list(self, record: JSON) -> list[JSON]:
        """The options as ``GET .../options`` lists them: a blank first, then label and id as string."""
        if record["frontend_input"] not in SELECT_INPUTS and record["frontend_input"] != "boolean":
            return []
        if record["frontend_input"] == "boolean":
            return [{"label": "Yes", "value": "1"}, {"label": "No", "value": "0"}]
        rows = [{"label": " ", "value": ""}]
        for opt in sorted(record["options"], key=lambda o: (o.get("sort_order", 0), o["value"])):
            rows.append(
                {
                    "label": opt["label"],
                    "value": str(opt["value"]),
                    "sort_order": opt.get("sort_order", 0),
                    "is_default": opt.get("is_default", False),
                    "store_labels": copy.deepcopy(opt.get("store_labels", [])),
                }
            )
        return rows

    def create_attribute(self, given: Any, *, keep_ids: bool = False) -> JSON:
        if not isinstance(given, dict):
            raise MagentoError(400, REQUIRED, {"fieldName": "attribute"})
        code = given.get("attribute_code")
        label = given.get("default_frontend_label") or next(
            (x.get("label") for x in given.get("frontend_labels") or [] if isinstance(x, dict)), None
        )
        if not label:
            raise MagentoError(400, REQUIRED, {"fieldName": "frontend_label"})
        if not code:
            code = slug(str(label)).replace("-", "_")[:30] or "attr"
        code = str(code)
        self._check_attribute_code(code)
        if code in self.attributes:
            raise MagentoError(400, ATTRIBUTE_EXISTS, [code])
        finput = given.get("frontend_input") or "text"
        if finput not in FRONTEND_INPUTS:
            raise MagentoError(400, INVALID_FIELD, {"value": finput, "fieldName": "frontend_input"})
        scope = given.get("scope") or "store"
        if scope not in ("global", "website", "store"):
            raise MagentoError(400, INVALID_FIELD, {"value": scope, "fieldName": "scope"})
        aid = given.get("attribute_id") if keep_ids else None
        taken = {int(a["attribute_id"]) for a in self.attributes.values()}
        if not str(aid or "").isdigit() or int(str(aid)) in taken:
            aid = self._next("attribute", max(taken))
        self.sim._bump("catalog_attribute", int(str(aid)))
        record = self._attribute_record(
            {**given, "attribute_code": code, "attribute_id": int(str(aid)), "is_user_defined": True}
        )
        self.attributes[code] = record
        for opt in given.get("options") or []:
            if isinstance(opt, dict) and str(opt.get("label") or "").strip():
                self._add_option(record, opt, keep_id=keep_ids)
        return self.render_attribute(record)

    @staticmethod
    def _check_attribute_code(code: str) -> None:
        if not 1 <= len(code) <= 60:
            raise MagentoError(400, ATTRIBUTE_CODE_LENGTH, [1, 60])
        if not ATTRIBUTE_CODE_RE.match(code):
            raise MagentoError(400, ATTRIBUTE_CODE_BAD, [code])

    def update_attribute(self, code: str, given: Any, *, keep_ids: bool = False) -> JSON:
        record = self.attribute(code)
        if not isinstance(given, dict):
            raise MagentoError(400, REQUIRED, {"fieldName": "attribute"})
        keep = {"attribute_id", "attribute_code", "entity_type_id", "is_user_defined", "options", "backend_type"}
        merged = self._attribute_record({**record, **{k: v for k, v in given.items() if k not in keep}})
        merged.update({k: record[k] for k in keep})
        if "frontend_input" in given and given["frontend_input"] != record["frontend_input"]:
            raise MagentoError(400, "Frontend input for this attribute is not valid")
        known = {o["label"].lower() for o in record["options"]}
        self.attributes[code] = merged
        for opt in given.get("options") or []:
            if isinstance(opt, dict) and str(opt.get("label") or "").strip() and opt["label"].lower() not in known:
                self._add_option(merged, opt, keep_id=keep_ids)
        return self.render_attribute(merged)

    def delete_attribute(self, code: str) -> bool:
        record = self.attribute(code)
        if not record["is_user_defined"]:
            raise MagentoError(400, "The system attribute can't be deleted.")
        del self.attributes[code]
        for members in self.set_attributes.values():
            members.pop(code, None)
        return True

    def _add_option(self, record: JSON, opt: JSON, *, keep_id: bool = False) -> int:
        if record["frontend_input"] not in SELECT_INPUTS:
            raise MagentoError(400, 'The "%1" attribute doesn\'t work with options.', [record["attribute_code"]])
        label = str(opt.get("label") or "").strip()
        if not label:
            raise MagentoError(400, "The attribute option label is empty. Enter a value and try again.")
        if any(o["label"].lower() == label.lower() for o in record["options"]):
            raise MagentoError(400, 'Admin store attribute option label "%1" is already exists.', [label])
        wanted = str(opt.get("value") or "")
        taken = {int(o["value"]) for a in self.attributes.values() for o in a["options"]}
        if keep_id and wanted.isdigit() and int(wanted) not in taken:
            oid = int(wanted)
            self.sim._bump("catalog_option", oid)
        else:
            oid = self._next("option", max(taken, default=4))
        record["options"].append(
            {
                "label": label,
                "value": oid,
                "sort_order": int(opt.get("sort_order") or 0),
                "is_default": bool(opt.get("is_default", False)),
                "store_labels": [
                    {"store_id": int(s.get("store_id") or 0), "label": str(s.get("label") or "")}
                    for s in opt.get("store_labels") or []
                    if isinstance(s, dict)
                ],
            }
        )
        return oid

    def add_option(self, code: str, body: Any) -> str:
        """``POST .../options``: ``"id_<n>"``; whatever ``value`` the client sent is ignored."""
        record = self.attribute(code)
        opt = body.get("option") if isinstance(body, dict) else None
        if not isinstance(opt, dict):
            raise MagentoError(400, REQUIRED, {"fieldName": "option"})
        return f"id_{self._add_option(record, opt)}"

    def _option(self, record: JSON, option_id: str) -> JSON:
        for opt in record["options"]:
            if str(opt["value"]) == option_id:
                return opt
        raise MagentoError(
            404,
            'The "%1" attribute doesn\'t include an option with "%2" ID.',
            [
                record["attribute_code"],
                option_id,
            ],
        )

    def update_option(self, code: str, option_id: str, body: Any) -> bool:
        record = self.attribute(code)
        opt = self._option(record, option_id)
        given = body.get("option") if isinstance(body, dict) else None
        if not isinstance(given, dict):
            raise MagentoError(400, REQUIRED, {"fieldName": "option"})
        label = str(given.get("label") or opt["label"]).strip()
        if any(o is not opt and o["label"].lower() == label.lower() for o in record["options"]):
            raise MagentoError(400, 'Admin store attribute option label "%1" is already exists.', [label])
        opt["label"] = label
        if "sort_order" in given:
            opt["sort_order"] = int(given.get("sort_order") or 0)
        if "is_default" in given:
            opt["is_default"] = bool(given["is_default"])
        if isinstance(given.get("store_labels"), list):
            opt["store_labels"] = [
                {"store_id": int(s.get("store_id") or 0), "label": str(s.get("label") or "")}
                for s in given["store_labels"]
                if isinstance(s, dict)
            ]
        return True

    def delete_option(self, code: str, option_id: str) -> bool:
        record = self.attribute(code)
        record["options"].remove(self._option(record, option_id))
        return True

    # ----------------------------------------------------------------- attribute sets

    def attribute_set(self, set_id: int) -> JSON:
        if set_id not in self.attribute_sets:
            raise MagentoError(404, NO_SUCH, {"fieldName": "id", "fieldValue": set_id})
        return self.attribute_sets[set_id]

    def create_attribute_set(self, body: Any) -> JSON:
        if not isinstance(body, dict) or not isinstance(body.get("attributeSet"), dict):
            raise MagentoError(400, REQUIRED, {"fieldName": "attributeSet"})
        if body.get("skeletonId") is None:
            raise MagentoError(400, REQUIRED, {"fieldName": "skeletonId"})
        given = body["attributeSet"]
        name = str(given.get("attribute_set_name") or "").strip()
        if not name:
            raise MagentoError(400, REQUIRED, {"fieldName": "attribute_set_name"})
        try:
            skeleton_id = int(body["skeletonId"])
        except (TypeError, ValueError) as exc:
            raise MagentoError(400, BAD_TYPE, [str(body["skeletonId"]), "int"]) from exc
        if skeleton_id not in self.attribute_sets:
            raise MagentoError(400, "The skeleton set ID is invalid. Verify the ID and try again.")
        if any(s["attribute_set_name"].lower() == name.lower() for s in self.attribute_sets.values()):
            raise MagentoError(
                400, 'A "%1" attribute set name already exists. Create a new name and try again.', [name]
            )
        set_id = self._next("attribute_set", 9)
        self.attribute_sets[set_id] = {
            "attribute_set_id": set_id,
            "attribute_set_name": name,
            "sort_order": int(given.get("sort_order") or 0),
            "entity_type_id": 4,
        }
        group_map: dict[int, int] = {}
        for gid, group in list(self.attribute_groups.items()):
            if group["attribute_set_id"] == skeleton_id:
                new_gid = self._next("attribute_group", 20)
                self.attribute_groups[new_gid] = {**group, "attribute_group_id": new_gid, "attribute_set_id": set_id}
                group_map[gid] = new_gid
        self.set_attributes[set_id] = {
            code: (group_map.get(gid, gid), order) for code, (gid, order) in self.set_attributes[skeleton_id].items()
        }
        return copy.deepcopy(self.attribute_sets[set_id])

    def assign_attribute(self, body: Any) -> str:
        """``POST .../attribute-sets/attributes``: the attribute id (a string, as Magento prints ints)."""
        if not isinstance(body, dict):
            raise MagentoError(400, REQUIRED, {"fieldName": "attributeSetId"})
        for key in ("attributeSetId", "attributeGroupId", "attributeCode", "sortOrder"):
            if body.get(key) is None:
                raise MagentoError(400, REQUIRED, {"fieldName": key})
        set_id, group_id = int(body["attributeSetId"]), int(body["attributeGroupId"])
        self.attribute_set(set_id)
        record = self.attribute(str(body["attributeCode"]))
        group = self.attribute_groups.get(group_id)
        if group is None or group["attribute_set_id"] != set_id:
            raise MagentoError(400, "The attribute group doesn't belong to the attribute set.")
        self.set_attributes[set_id][record["attribute_code"]] = (group_id, int(body["sortOrder"]))
        return str(record["attribute_id"])

    def set_members(self, set_id: int) -> list[JSON]:
        self.attribute_set(set_id)
        codes = self.set_attributes.get(set_id, {})
        return [self.render_attribute(self.attributes[c]) for c in codes if c in self.attributes]

    def create_group(self, body: Any) -> JSON:
        given = body.get("group") if isinstance(body, dict) else None
        if not isinstance(given, dict) or not given.get("attribute_group_name"):
            raise MagentoError(400, REQUIRED, {"fieldName": "attribute_group_name"})
        set_id = int(given.get("attribute_set_id") or 0)
        self.attribute_set(set_id)
        name = str(given["attribute_group_name"])
        for group in self.attribute_groups.values():
            if group["attribute_set_id"] == set_id and group["attribute_group_name"].lower() == name.lower():
                raise MagentoError(400, "Can't save attribute group with same name.")
        gid = self._next("attribute_group", 20)
        self.attribute_groups[gid] = {
            "attribute_group_id": gid,
            "attribute_group_name": name,
            "attribute_set_id": set_id,
        }
        return group_out(self.attribute_groups[gid])

    # ----------------------------------------------------------------- categories

    @staticmethod
    def _category_defaults(cid: int, parent: int, name: str, path: str, level: int, now: str) -> JSON:
        return {
            "id": cid,
            "parent_id": parent,
            "name": name,
            "is_active": True,
            "position": 1 if cid != 1 else 0,
            "level": level,
            "children": "",
            "created_at": now,
            "updated_at": now,
            "path": path,
            "available_sort_by": [],
            "include_in_menu": True,
            "extension_attributes": {},
            "custom_attributes": [
                {"attribute_code": "display_mode", "value": "PRODUCTS"},
                {"attribute_code": "is_anchor", "value": "1"},
                {"attribute_code": "path", "value": path},
                {"attribute_code": "children_count", "value": "0"},
            ],
        }

    def category(self, cid: int) -> JSON:
        if cid not in self.categories:
            raise MagentoError(404, NO_SUCH, {"fieldName": "id", "fieldValue": cid})
        return self.categories[cid]

    def _children(self, cid: int) -> list[JSON]:
        return sorted(
            (c for c in self.categories.values() if c["parent_id"] == cid and c["id"] != cid),
            key=lambda c: (c["position"], c["id"]),
        )

    def _descendants(self, cid: int) -> list[int]:
        prefix = self.categories[cid]["path"] + "/"
        return [c["id"] for c in self.categories.values() if c["path"].startswith(prefix)]

    def render_category(self, cid: int, store_id: int) -> JSON:
        out = copy.deepcopy(self.categories[cid])
        override = self.category_overrides.get((cid, store_id))
        if store_id and override:
            values = attrs_of(out)
            for key, value in override.items():
                if key == "custom_attributes":
                    values.update(value)
                else:
                    out[key] = value
            out["custom_attributes"] = attrs_list(values)
        kids = self._children(cid)
        out["children"] = ",".join(str(c["id"]) for c in kids)
        values = attrs_of(out)
        values["children_count"] = str(len(self._descendants(cid)))
        values["path"] = out["path"]
        out["custom_attributes"] = attrs_list(values)
        return out

    def _url_key_of_category(self, cid: int, store_id: int) -> str | None:
        value = attrs_of(self.render_category(cid, store_id)).get("url_key")
        return str(value) if value else None

    def _check_category_url_key(self, cid: int | None, parent: int, key: str, store_id: int) -> None:
        for sibling in self._children(parent):
            if sibling["id"] != cid and self._url_key_of_category(sibling["id"], store_id) == key:
                raise MagentoError(400, URL_KEY_TAKEN)

    def create_category(self, given: Any, store_id: int, *, keep_id: bool = False) -> JSON:
        if not isinstance(given, dict):
            raise MagentoError(400, REQUIRED, {"fieldName": "category"})
        name = str(given.get("name") or "").strip()
        if not name:
            raise MagentoError(400, NAME_EMPTY, ["Name"])
        parent_id = int(given.get("parent_id") or self.root_category(store_id))
        parent = self.category(parent_id)
        values = {k: eav_value(v) for k, v in attrs_of(given).items()}
        key = str(values.get("url_key") or slug(name))
        self._check_category_url_key(None, parent_id, key, store_id)
        wanted = given.get("id")
        if keep_id and isinstance(wanted, int) and wanted not in self.categories:
            cid = wanted
            self.sim._bump("catalog_category", cid)
        else:
            cid = self._next("category", max(self.categories))
        now = self.sim.now()
        path = f"{parent['path']}/{cid}"
        record = self._category_defaults(cid, parent_id, name, path, int(parent["level"]) + 1, now)
        siblings = self._children(parent_id)
        record["position"] = int(given.get("position") or (max((c["position"] for c in siblings), default=0) + 1))
        record["is_active"] = bool(given.get("is_active", True))
        record["include_in_menu"] = bool(given.get("include_in_menu", True))
        record["available_sort_by"] = list(given.get("available_sort_by") or [])
        merged = {**attrs_of(record), **values, "url_key": key}
        merged["url_path"] = self._url_path(parent_id, key)
        record["custom_attributes"] = attrs_list(merged)
        self.categories[cid] = record
        if store_id:
            self.category_overrides[(cid, store_id)] = self._category_store_part(given, values, key)
        return self.render_category(cid, store_id)

    def _url_path(self, parent_id: int, key: str) -> str:
        parent = self.categories.get(parent_id)
        if parent is None or parent["level"] < 2:
            return key
        base = attrs_of(parent).get("url_path") or attrs_of(parent).get("url_key") or slug(parent["name"])
        return f"{base}/{key}"

    @staticmethod
    def _category_store_part(given: JSON, values: dict[str, Any], key: str | None) -> JSON:
        part: JSON = {k: category_field(k, given[k]) for k in CATEGORY_STORE_FIELDS if k in given}
        attrs = {k: v for k, v in values.items() if k in CATEGORY_STORE_ATTRIBUTES}
        if key is not None:
            attrs["url_key"] = key
        if attrs:
            part["custom_attributes"] = attrs
        return part

    def update_category(self, cid: int, given: Any, store_id: int) -> JSON:
        record = self.category(cid)
        if not isinstance(given, dict):
            raise MagentoError(400, REQUIRED, {"fieldName": "category"})
        name = str(given.get("name") or "").strip()
        if not name:
            raise MagentoError(400, NAME_EMPTY, ["Name"])
        values = {k: eav_value(v) for k, v in attrs_of(given).items()}
        key = str(values["url_key"]) if values.get("url_key") else None
        if key is not None:
            self._check_category_url_key(cid, record["parent_id"], key, store_id)
        if store_id:
            part = self._category_store_part(given, values, key)
            old = self.category_overrides.setdefault((cid, store_id), {})
            old_attrs = old.get("custom_attributes", {})
            old.update({k: v for k, v in part.items() if k != "custom_attributes"})
            old["custom_attributes"] = {**old_attrs, **part.get("custom_attributes", {})}
            global_values = {k: v for k, v in values.items() if k not in CATEGORY_STORE_ATTRIBUTES}
            record["custom_attributes"] = attrs_list({**attrs_of(record), **global_values})
            for k in ("position", "available_sort_by"):
                if k in given:
                    record[k] = given[k]
        else:
            for k in (*CATEGORY_STORE_FIELDS, "position", "available_sort_by"):
                if k in given:
                    record[k] = category_field(k, given[k])
            merged = {**attrs_of(record), **values}
            if key is not None:
                merged["url_path"] = self._url_path(record["parent_id"], key)
            record["custom_attributes"] = attrs_list(merged)
        record["updated_at"] = self.sim.now()
        return self.render_category(cid, store_id)

    def move_category(self, cid: int, body: Any) -> bool:
        record = self.category(cid)
        if not isinstance(body, dict) or body.get("parentId") is None:
            raise MagentoError(400, REQUIRED, {"fieldName": "parentId"})
        parent_id = int(body["parentId"])
        parent = self.category(parent_id)
        if parent_id == cid or parent_id in self._descendants(cid):
            raise MagentoError(400, "Operation do not allow to move a parent category to any of children category")
        key = attrs_of(record).get("url_key") or slug(record["name"])
        self._check_category_url_key(cid, parent_id, str(key), 0)
        siblings = [c for c in self._children(parent_id) if c["id"] != cid]
        after = body.get("afterId")
        if after is None:
            index = len(siblings)
        else:
            ids = [c["id"] for c in siblings]
            index = ids.index(int(after)) + 1 if int(after) in ids else 0
        siblings.insert(index, record)
        for pos, sibling in enumerate(siblings, start=1):
            sibling["position"] = pos
        old_path = record["path"]
        record["parent_id"] = parent_id
        record["path"] = f"{parent['path']}/{cid}"
        shift = int(parent["level"]) + 1 - int(record["level"])
        record["level"] = int(parent["level"]) + 1
        for other in self.categories.values():
            if other["path"].startswith(old_path + "/"):
                other["path"] = record["path"] + other["path"][len(old_path) :]
                other["level"] = int(other["level"]) + shift
        values = attrs_of(record)
        values["url_path"] = self._url_path(parent_id, str(key))
        record["custom_attributes"] = attrs_list(values)
        record["updated_at"] = self.sim.now()
        return True

    def delete_category(self, cid: int) -> bool:
        self.category(cid)
        if cid == 1 or any(g["root_category_id"] == cid for g in self.groups.values()):
            raise MagentoError(400, "Can't delete root category.")
        gone = {cid, *self._descendants(cid)}
        for gid in gone:
            del self.categories[gid]
        for key in [k for k in self.category_overrides if k[0] in gone]:
            del self.category_overrides[key]
        for positions in self.links.values():
            for gid in gone:
                positions.pop(gid, None)
        return True

    def category_tree(self, root: int | None, depth: int | None, store_id: int) -> JSON:
        start = root if root is not None else self.root_category(store_id)
        self.category(start)
        counts: dict[int, int] = {}
        for positions in self.links.values():
            for cat in positions:
                counts[cat] = counts.get(cat, 0) + 1

        def node(cid: int, left: int | None) -> JSON:
            cat = self.render_category(cid, store_id)
            kids = [] if left == 0 else [node(c["id"], None if left is None else left - 1) for c in self._children(cid)]
            return {
                "id": cid,
                "parent_id": cat["parent_id"],
                "name": cat["name"],
                "is_active": bool(cat["is_active"]),
                "position": cat["position"],
                "level": cat["level"],
                "product_count": counts.get(cid, 0),
                "children_data": kids,
            }

        return node(start, depth)

    def category_list(self, q: list[tuple[str, str]], store_id: int) -> JSON:
        rows = []
        for cid in self.categories:
            rendered = self.render_category(cid, store_id)
            rows.append({**attrs_of(rendered), **rendered})
        page = _found_page(rows, q, "id")
        page["items"] = [self.render_category(r["id"], store_id) for r in page["items"]]
        return page

    def category_products(self, cid: int) -> list[JSON]:
        self.category(cid)
        rows = [
            {"sku": sku, "position": positions[cid], "category_id": str(cid)}
            for sku, positions in self.links.items()
            if cid in positions
        ]
        return sorted(rows, key=lambda r: (r["position"], r["sku"]))

    def link_product(self, cid: int, body: Any) -> bool:
        link = body.get("productLink") if isinstance(body, dict) else None
        if not isinstance(link, dict) or not link.get("sku"):
            raise MagentoError(400, REQUIRED, {"fieldName": "productLink"})
        record = self.category(cid)
        sku = str(link["sku"])
        if sku not in self.sim.products:
            raise MagentoError(404, PRODUCT_NOT_FOUND)
        self.links.setdefault(sku, {})[cid] = int(link.get("position") or 0)
        record["updated_at"] = self.sim.now()
        return True

    def unlink_product(self, cid: int, sku: str) -> bool:
        record = self.category(cid)
        if sku not in self.sim.products:
            raise MagentoError(404, PRODUCT_NOT_FOUND)
        positions = self.links.get(sku, {})
        if cid not in positions:
            raise MagentoError(400, "The category doesn't contain the specified product.")
        del positions[cid]
        record["updated_at"] = self.sim.now()
        return True

    # ----------------------------------------------------------------- products: reading

    def product(self, sku: str) -> JSON:
        if sku not in self.sim.products:
            raise MagentoError(404, PRODUCT_NOT_FOUND)
        return self.sim.products[sku]

    def sku_of_id(self, pid: Any) -> str | None:
        """The SKU of product id ``pid`` (None when no product has it); rebuilds a stale index."""
        sku = self.id_index.get(pid)
        if sku is not None and (self.sim.products.get(sku) or {}).get("id") == pid:
            return sku
        if sku is not None or len(self.id_index) != len(self.sim.products):
            self.id_index = {p.get("id"): s for s, p in self.sim.products.items()}
            sku = self.id_index.get(pid)
        return sku

    def _store_scoped(self, code: str) -> bool:
        if code in ("price", "special_price", "special_from_date", "special_to_date"):
            return self.config.get("price_scope") == "website"
        record = self.attributes.get(code)
        return record is not None and record["scope"] != "global"

    def _view(self, sku: str, store_id: int) -> JSON:
        """A flat, shallow view of the product at a store: for filtering, not for answering."""
        base = self.sim.products[sku]
        override = self.overrides.get((sku, store_id)) if store_id else None
        values = attrs_of(base)
        view = {**values, **base}
        if override:
            view.update({k: v for k, v in override.items() if k != "custom_attributes"})
            view.update(override.get("custom_attributes", {}))
        return view

    def render_product(self, sku: str, store_id: int) -> JSON:
        """The product as ``GET /V1/products/{sku}`` answers it through store view ``store_id``."""
        base = self.product(sku)
        out = copy.deepcopy(base)
        values = attrs_of(base)
        override = self.overrides.get((sku, store_id)) if store_id else None
        if override:
            out.update({k: copy.deepcopy(v) for k, v in override.items() if k != "custom_attributes"})
            values.update(copy.deepcopy(override.get("custom_attributes", {})))
        out["custom_attributes"] = attrs_list(values)
        ext = out.setdefault("extension_attributes", {})
        positions = self.links.get(sku)
        if positions:
            ext["category_links"] = [
                {"position": pos, "category_id": str(cid)} for cid, pos in sorted(positions.items(), key=lambda x: x[1])
            ]
        ext["stock_item"] = self.stock_item_of(sku)
        if out.get("type_id") == "configurable":
            ext.setdefault("configurable_product_options", [])
            ext.setdefault("configurable_product_links", [])
            self._option_values_from_children(ext)
        out["tier_prices"] = self._product_tiers(sku, base)
        return out

    def _option_values_from_children(self, ext: JSON) -> None:
        """Like Magento, a configurable option lists the values its linked children have."""
        children = [self.sim.products[s] for s in map(self.sku_of_id, ext["configurable_product_links"]) if s]
        if not children:
            return
        for opt in ext["configurable_product_options"]:
            code = self.attribute_by_id(opt["attribute_id"])["attribute_code"]
            found = {str(attrs_of(c).get(code)) for c in children if attrs_of(c).get(code) not in (None, "")}
            opt["values"] = [{"value_index": int(v)} for v in sorted(found, key=int) if v.isdigit()]

    def search_products(self, q: list[tuple[str, str]], store_id: int) -> JSON:
        criteria = parse_search_criteria(q)
        views = [self._view(sku, store_id) for sku in _sku_candidates(self.sim.products, criteria)]
        found = search(views, criteria, "id")
        items = [self.render_product(v["sku"], store_id) for v in found["items"]]
        return {**found, "search_criteria": copy.deepcopy(found["search_criteria"]), "items": items}

    # ----------------------------------------------------------------- products: writing

    def save_product(self, given: Any, store_id: int, *, url_sku: str | None = None) -> JSON:
        """Create or update a product through store view ``store_id`` (0: ``/rest/all``); rendered."""
        if not isinstance(given, dict):
            raise MagentoError(400, REQUIRED, {"fieldName": "product"})
        sku = given.get("sku") or url_sku
        if not isinstance(sku, str) or not sku.strip():
            raise MagentoError(400, REQUIRED, {"fieldName": "sku"})
        existing = self.sim.products.get(sku)
        new = existing is None
        type_id = given.get("type_id") or (existing or {}).get("type_id") or "simple"
        if type_id not in PRODUCT_TYPES:
            raise MagentoError(400, INVALID_FIELD, {"value": type_id, "fieldName": "type_id"})
        ext_in = given.get("extension_attributes")
        if ext_in is not None and not isinstance(ext_in, dict):
            raise MagentoError(400, BAD_TYPE, ["extension_attributes", "object"])
        set_id = given.get("attribute_set_id", (existing or {}).get("attribute_set_id", 4))
        values_in = self._checked_values(given, _top_level_value("attribute_set_id", set_id))
        base = self._new_base(sku, given) if new else copy.deepcopy(existing)
        assert base is not None
        base["type_id"] = type_id
        store_part = copy.deepcopy(self.overrides.get((sku, store_id), {})) if store_id else {}
        store_attrs: dict[str, Any] = store_part.setdefault("custom_attributes", {}) if store_id else {}
        base_attrs = attrs_of(base)
        for key in (*TOP_LEVEL, "attribute_set_id"):
            if key in given:
                self._put(key, given[key], base, store_part, store_id, new)
        for key, value in given.items():
            if key not in NOT_COPIED and key not in TOP_LEVEL:
                base[key] = copy.deepcopy(value)  # product_links, options, media_gallery_entries: replaced
        for code, value in values_in.items():
            self._put(code, value, base_attrs, store_attrs, store_id, new)
        if new and not base_attrs.get("url_key"):
            base_attrs["url_key"] = slug(str(base.get("name") or sku)) or slug(sku)
            if store_id:
                store_attrs.setdefault("url_key", base_attrs["url_key"])
        base["custom_attributes"] = attrs_list(base_attrs)
        ext = base.setdefault("extension_attributes", {})
        self._websites(ext, ext_in, new, store_id)
        category_links = self._category_links(given, ext_in, values_in, new)
        if type_id == "configurable":
            self._configurable(base, ext, ext_in)
        else:
            ext.pop("configurable_product_options", None)
            ext.pop("configurable_product_links", None)
        if type_id == "bundle":
            self._bundle(sku, ext, ext_in)
        for key in ("stock_item", "category_links"):
            ext.pop(key, None)
        for key, value in (ext_in or {}).items():
            if key not in HANDLED_EXTENSIONS:
                ext[key] = copy.deepcopy(value)
        url_keys = self._url_keys(sku, base, store_id, store_part)
        self._check_url_keys(sku, url_keys)
        self._commit(sku, base, store_id, store_part, url_keys, given, new)
        if category_links is not None:
            self.links[sku] = category_links
        self._stock_from_product(sku, type_id, (ext_in or {}).get("stock_item"))
        if new and type_id in SOURCE_ITEM_TYPES and "default" in self.sources:
            # "Commerce also assigns newly-created products to the default source" (manage-source-items.md)
            self.source_items.setdefault(
                (sku, "default"), {"sku": sku, "source_code": "default", "quantity": 0, "status": 0}
            )
        if "tier_prices" in given and isinstance(given["tier_prices"], list):
            self._tiers_from_product(sku, given["tier_prices"])
        return self.render_product(sku, store_id)

    def _new_base(self, sku: str, given: JSON) -> JSON:
        pid = given.get("id")
        if not isinstance(pid, int) or isinstance(pid, bool) or self.sku_of_id(pid) is not None:
            pid = self.sim.next_id("product")
        self.sim._bump("product", pid)
        base: JSON = {
            "id": pid,
            "sku": sku,
            "name": given.get("name") or sku,
            "attribute_set_id": 4,
            "price": 0,
            "status": 1,
            "visibility": 4,
            "type_id": "simple",
            "created_at": given.get("created_at") or "",
            "updated_at": "",
            "weight": 0,
            "extension_attributes": {},
            "product_links": copy.deepcopy(given.get("product_links") or []),
            "options": copy.deepcopy(given.get("options") or []),
            "media_gallery_entries": copy.deepcopy(given.get("media_gallery_entries") or []),
            "tier_prices": [],
            "custom_attributes": [],
        }
        return base

    def _put(self, key: str, value: Any, base: JSON, store: JSON, store_id: int, new: bool) -> None:
        """One value into the global record and/or the store view's override (see trap 1)."""
        value = _top_level_value(key, value)
        scoped = store_id and self._store_scoped(key)
        if not scoped or new:
            base[key] = copy.deepcopy(value)
        if scoped:
            store[key] = copy.deepcopy(value)

    def _checked_values(self, given: JSON, set_id: Any) -> dict[str, Any]:
        """The custom attribute values Magento keeps: known codes in the product's attribute set only
        (trap 7); option ids checked. An attribute set the sim does not know is not checked."""
        values_in = attrs_of(given)
        members = self.set_attributes.get(set_id) if isinstance(set_id, int) else None
        out: dict[str, Any] = {}
        for code, raw in values_in.items():
            record = self.attributes.get(code)
            if record is None or code in TOP_LEVEL or code == "sku":
                continue
            if members is not None and record["is_user_defined"] and code not in members:
                continue
            value = eav_value(raw)
            if record["frontend_input"] in SELECT_INPUTS and code not in FIXED_SOURCES and value not in (None, ""):
                ids = {str(o["value"]) for o in record["options"]}
                parts = value.split(",") if record["frontend_input"] == "multiselect" else [value]
                if any(p.strip() not in ids for p in parts):
                    raise MagentoError(400, INVALID_FIELD, {"value": value, "fieldName": code})
            out[code] = value
        return out

    def _websites(self, ext: JSON, ext_in: JSON | None, new: bool, store_id: int) -> None:
        wanted = (ext_in or {}).get("website_ids")
        if wanted is not None:
            if not isinstance(wanted, list):
                raise MagentoError(400, BAD_TYPE, ["website_ids", "array"])
            for wid in wanted:
                if not isinstance(wid, int) or wid not in self.websites or wid == 0:
                    raise MagentoError(
                        404,
                        "The website with id %1 that was requested wasn't found. Verify the website and try again.",
                        [wid],
                    )
            ext["website_ids"] = sorted(set(wanted))
        elif new:
            ext["website_ids"] = sorted(w for w in self.websites if w) if store_id == 0 else [self.website_of(store_id)]

    def _category_links(
        self, given: JSON, ext_in: JSON | None, values_in: dict[str, Any], new: bool
    ) -> dict[int, int] | None:
        """The product's new category positions, or None to keep them (trap 3)."""
        links = (ext_in or {}).get("category_links")
        if links is None and "category_ids" in attrs_of(given):
            ids = attrs_of(given)["category_ids"]
            ids = ids if isinstance(ids, list) else str(ids).split(",")
            links = [{"category_id": str(i).strip(), "position": 0} for i in ids if str(i).strip()]
        if links is None:
            return {} if self.config.get("legacy_category_links_replace") and not new else None
        if not isinstance(links, list):
            raise MagentoError(400, BAD_TYPE, ["category_links", "array"])
        out: dict[int, int] = {}
        for link in links:
            if not isinstance(link, dict) or link.get("category_id") in (None, ""):
                raise MagentoError(400, REQUIRED, {"fieldName": "category_id"})
            cid = _int(str(link["category_id"]))
            self.category(cid)
            out[cid] = int(link.get("position") or 0)
        return out

    def _configurable(self, base: JSON, ext: JSON, ext_in: JSON | None) -> None:
        """Options and links of a configurable (trap 4: links left out of extension_attributes drop)."""
        ext.setdefault("configurable_product_options", [])
        ext.setdefault("configurable_product_links", [])
        if ext_in is None:
            return
        if ext_in.get("configurable_product_options") is not None:
            ext["configurable_product_options"] = self._config_options(
                base["id"], ext_in["configurable_product_options"], ext["configurable_product_options"]
            )
        links = ext_in.get("configurable_product_links") or []
        if not isinstance(links, list):
            raise MagentoError(400, BAD_TYPE, ["configurable_product_links", "array"])
        self._check_children(base["sku"], ext["configurable_product_options"], links)
        ext["configurable_product_links"] = [int(x) for x in links]

    def _config_options(self, product_id: int, given: Any, old: list[JSON]) -> list[JSON]:
        if not isinstance(given, list):
            raise MagentoError(400, BAD_TYPE, ["configurable_product_options", "array"])
        out = []
        for pos, opt in enumerate(given):
            out.append(self._config_option(product_id, opt, old, pos))
        return out

    def _config_option(self, product_id: int, opt: Any, old: list[JSON], pos: int) -> JSON:
        if not isinstance(opt, dict):
            raise MagentoError(400, BAD_TYPE, ["option", "object"])
        if opt.get("attribute_id") in (None, ""):
            raise MagentoError(400, "Option attribute ID is not specified.")
        if not opt.get("label"):
            raise MagentoError(400, "Option label is not specified.")
        values = opt.get("values")
        if not isinstance(values, list) or not values:
            raise MagentoError(400, "Option values are not specified.")
        record = self.attribute_by_id(opt["attribute_id"])
        if record["frontend_input"] not in SELECT_INPUTS or record["scope"] != "global":
            raise MagentoError(400, INVALID_FIELD, {"value": record["attribute_code"], "fieldName": "attribute_id"})
        for value in values:
            index = value.get("value_index") if isinstance(value, dict) else None
            if index is None:
                raise MagentoError(400, "Value index is not specified for an option.")
            _int(str(index))
        same = next((o for o in old if str(o["attribute_id"]) == str(record["attribute_id"])), None)
        oid = same["id"] if same else self._next("configurable_option", 0)
        return {
            "id": oid,
            "attribute_id": str(record["attribute_id"]),
            "label": str(opt["label"]),
            "position": int(opt.get("position", pos) or 0),
            "values": [{"value_index": int(v["value_index"])} for v in values],
            "product_id": product_id,
        }

    def _check_children(self, sku: str, options: list[JSON], links: list[Any]) -> None:
        codes = [self.attribute_by_id(o["attribute_id"])["attribute_code"] for o in options]
        seen: dict[tuple[str, ...], Any] = {}
        for pid in links:
            if not isinstance(pid, int):
                raise MagentoError(400, BAD_TYPE, [str(pid), "int"])
            child_sku = self.sku_of_id(pid)
            if child_sku is None:
                continue  # kept dangling: the sim's own seeds post a configurable before its children
            values = attrs_of(self.sim.products[child_sku])
            combo = []
            for code in codes:
                if values.get(code) in (None, ""):
                    raise MagentoError(
                        400, 'Product with id "%1" does not contain required attribute "%2".', [pid, code]
                    )
                combo.append(str(values[code]))
            if codes and tuple(combo) in seen:
                raise MagentoError(
                    400, 'Products "%1" and "%2" have the same set of attribute values.', [seen[tuple(combo)], pid]
                )
            seen[tuple(combo)] = pid

    def _bundle(self, sku: str, ext: JSON, ext_in: JSON | None) -> None:
        """Bundle options: replaced when sent, kept when left out (trap 5)."""
        given = (ext_in or {}).get("bundle_product_options")
        ext.setdefault("bundle_product_options", [])
        if given is None:
            return
        if not isinstance(given, list):
            raise MagentoError(400, BAD_TYPE, ["bundle_product_options", "array"])
        out = []
        for pos, opt in enumerate(given):
            if not isinstance(opt, dict) or not opt.get("title"):
                raise MagentoError(400, REQUIRED, {"fieldName": "title"})
            option_id = (
                opt.get("option_id") if isinstance(opt.get("option_id"), int) else self._next("bundle_option", 0)
            )
            links = []
            for link in opt.get("product_links") or []:
                if not isinstance(link, dict) or not link.get("sku"):
                    raise MagentoError(400, REQUIRED, {"fieldName": "sku"})
                child = self.sim.products.get(str(link["sku"]))
                if child is None or child.get("type_id") not in ("simple", "virtual", "downloadable"):
                    raise MagentoError(404, PRODUCT_NOT_FOUND)
                links.append(
                    {
                        "id": str(self._next("bundle_link", 0)),
                        "sku": str(link["sku"]),
                        "option_id": option_id,
                        "qty": num(Decimal(str(link.get("qty") or 1))),
                        "position": int(link.get("position") or 0),
                        "is_default": bool(link.get("is_default", False)),
                        "price": num(Decimal(str(link.get("price") or 0))),
                        "price_type": int(link.get("price_type") or 0),
                        "can_change_quantity": int(link.get("can_change_quantity") or 0),
                    }
                )
            out.append(
                {
                    "option_id": option_id,
                    "title": str(opt["title"]),
                    "required": bool(opt.get("required", True)),
                    "type": str(opt.get("type") or "select"),
                    "position": int(opt.get("position", pos) or 0),
                    "sku": sku,
                    "product_links": links,
                }
            )
        ext["bundle_product_options"] = out

    def _url_keys(self, sku: str, base: JSON, store_id: int, store_part: JSON) -> set[tuple[int, str]]:
        """(store view, url_key) pairs the product would hold (the key each store view shows)."""
        keys: set[tuple[int, str]] = set()
        base_key = attrs_of(base).get("url_key")
        for sid in self.stores_of_websites(base["extension_attributes"].get("website_ids") or []):
            override = store_part if sid == store_id else self.overrides.get((sku, sid), {})
            key = (override.get("custom_attributes") or {}).get("url_key") or base_key
            if key:
                keys.add((sid, str(key)))
        return keys

    def _check_url_keys(self, sku: str, keys: set[tuple[int, str]]) -> None:
        for pair in keys:
            owner = self.url_index.get(pair)
            if owner is not None and owner != sku and owner in self.sim.products:
                raise MagentoError(400, URL_KEY_TAKEN)

    def _commit(
        self, sku: str, base: JSON, store_id: int, store_part: JSON, keys: set[tuple[int, str]], given: JSON, new: bool
    ) -> None:
        now = self.sim.now()
        base["updated_at"] = now
        if new:
            base["created_at"] = given.get("created_at") or now
        self.sim.products[sku] = base
        self.id_index[base["id"]] = sku
        if store_id:
            if not store_part.get("custom_attributes"):
                store_part.pop("custom_attributes", None)
            if store_part:
                self.overrides[(sku, store_id)] = store_part
        for pair in self.url_keys_of.pop(sku, set()):
            if self.url_index.get(pair) == sku:
                del self.url_index[pair]
        for pair in keys:
            self.url_index[pair] = sku
        self.url_keys_of[sku] = keys

    def delete_product(self, sku: str) -> bool:
        product = self.product(sku)
        del self.sim.products[sku]
        self.id_index.pop(product["id"], None)
        for key in [k for k in self.overrides if k[0] == sku]:
            del self.overrides[key]
        for pair in self.url_keys_of.pop(sku, set()):
            self.url_index.pop(pair, None)
        for store in (self.links, self.specials, self.tiers, self.stock_config):
            store.pop(sku, None)
        for item_key in [k for k in self.source_items if k[0] == sku]:
            del self.source_items[item_key]
        for other in self.sim.products.values():
            ext = other.get("extension_attributes") or {}
            if product["id"] in (ext.get("configurable_product_links") or []):
                ext["configurable_product_links"] = [x for x in ext["configurable_product_links"] if x != product["id"]]
        return True

    def add_website(self, sku: str, body: Any, replace: bool = False) -> bool:
        product = self.product(sku)
        link = body.get("productWebsiteLink") if isinstance(body, dict) else None
        if not isinstance(link, dict) or link.get("website_id") is None:
            raise MagentoError(400, REQUIRED, {"fieldName": "website_id"})
        wid = int(link["website_id"])
        if wid not in self.websites or wid == 0:
            raise MagentoError(
                404, "The website with id %1 that was requested wasn't found. Verify the website and try again.", [wid]
            )
        ext = product.setdefault("extension_attributes", {})
        ext["website_ids"] = sorted({*([] if replace else ext.get("website_ids") or []), wid})
        keys = self._url_keys(sku, product, -1, {})
        self._check_url_keys(sku, keys)
        self._commit(sku, product, 0, {}, keys, {}, False)
        return True

    # ----------------------------------------------------------------- configurable and bundle

    def children(self, sku: str, store_id: int) -> list[JSON]:
        parent = self.product(sku)
        ids = (parent.get("extension_attributes") or {}).get("configurable_product_links") or []
        skus = [s for s in (self.sku_of_id(pid) for pid in ids) if s is not None]
        return [self.render_product(s, store_id) for s in skus]

    def configurable_options(self, sku: str) -> list[JSON]:
        parent = self.product(sku)
        return copy.deepcopy((parent.get("extension_attributes") or {}).get("configurable_product_options") or [])

    def add_child(self, sku: str, body: Any) -> bool:
        parent = self.product(sku)
        child_sku = body.get("childSku") if isinstance(body, dict) else None
        if not child_sku:
            raise MagentoError(400, REQUIRED, {"fieldName": "childSku"})
        child = self.product(str(child_sku))
        ext = parent.setdefault("extension_attributes", {})
        links = list(ext.get("configurable_product_links") or [])
        if child["id"] in links:
            raise MagentoError(400, "The product is already attached.")
        options = ext.get("configurable_product_options") or []
        if not options:
            raise MagentoError(400, "The parent product doesn't have configurable product options.")
        for opt in options:
            code = self.attribute_by_id(opt["attribute_id"])["attribute_code"]
            if attrs_of(child).get(code) in (None, ""):
                raise MagentoError(
                    400,
                    'The child product doesn\'t have the "%1" attribute value. Verify the value and try again.',
                    [code],
                )
        self._check_children(sku, options, [*links, child["id"]])
        ext["configurable_product_links"] = [*links, child["id"]]
        parent["updated_at"] = self.sim.now()
        return True

    def remove_child(self, sku: str, child_sku: str) -> bool:
        parent = self.product(sku)
        child = self.product(child_sku)
        ext = parent.setdefault("extension_attributes", {})
        links = list(ext.get("configurable_product_links") or [])
        if child["id"] not in links:
            raise MagentoError(404, "The option that was requested doesn't exist. Verify the entity and try again.")
        ext["configurable_product_links"] = [x for x in links if x != child["id"]]
        parent["updated_at"] = self.sim.now()
        return True

    def add_configurable_option(self, sku: str, body: Any) -> str:
        """``POST .../options``: the option id, as a string (the tutorial shows ``"335"``)."""
        parent = self.product(sku)
        if parent.get("type_id") not in ("configurable", "simple", "virtual"):
            raise MagentoError(400, 'The "%1" product type is not configurable.', [parent.get("type_id")])
        opt = body.get("option") if isinstance(body, dict) else None
        if not isinstance(opt, dict):
            raise MagentoError(400, REQUIRED, {"fieldName": "option"})
        ext = parent.setdefault("extension_attributes", {})
        old = ext.get("configurable_product_options") or []
        if any(str(o["attribute_id"]) == str(opt.get("attribute_id")) for o in old):
            raise MagentoError(400, "Something went wrong while saving option.")
        saved = self._config_option(parent["id"], opt, old, len(old))
        parent["type_id"] = "configurable"
        ext["configurable_product_options"] = [*old, saved]
        ext.setdefault("configurable_product_links", [])
        parent["updated_at"] = self.sim.now()
        return str(saved["id"])

    def bundle_children(self, sku: str) -> list[JSON]:
        parent = self.product(sku)
        if parent.get("type_id") != "bundle":
            raise MagentoError(400, "This is implemented for bundle products only.")
        options = (parent.get("extension_attributes") or {}).get("bundle_product_options") or []
        return [copy.deepcopy(link) for opt in options for link in opt["product_links"]]

    # ----------------------------------------------------------------- prices

    def _priced_sku(self, sku: Any, types: tuple[str, ...]) -> JSON | None:
        product = self.sim.products.get(sku) if isinstance(sku, str) else None
        return product if product is not None and product.get("type_id") in types else None

    def _skus_or_404(self, body: Any, types: tuple[str, ...]) -> list[str]:
        skus = body.get("skus") if isinstance(body, dict) else None
        if not isinstance(skus, list):
            raise MagentoError(400, REQUIRED, {"fieldName": "skus"})
        bad = [str(s) for s in skus if self._priced_sku(s, types) is None]
        if bad:
            raise MagentoError(404, "Requested products don't exist: %sku", {"sku": ", ".join(bad)})
        return [str(s) for s in skus]

    @staticmethod
    def _rows(body: Any) -> list[Any]:
        rows = body.get("prices") if isinstance(body, dict) else None
        if not isinstance(rows, list):
            raise MagentoError(400, REQUIRED, {"fieldName": "prices"})
        return rows

    @staticmethod
    def _price(value: Any) -> Decimal | None:
        try:
            price = Decimal(str(value))
        except ArithmeticError:
            return None
        return price if price.is_finite() and price >= 0 else None

    def base_prices(self, body: Any) -> list[JSON]:
        """``POST /V1/products/base-prices``: the failures; the good rows are saved."""
        failures = []
        for row in self._rows(body):
            row = row if isinstance(row, dict) else {}
            sku, store, where = row.get("sku"), row.get("store_id"), "Row ID: SKU = %SKU, Store ID: %storeId."
            price = self._price(row.get("price"))
            if self._priced_sku(sku, BASE_PRICE_TYPES) is None:
                failures.append(_failure(f"Invalid attribute SKU = %SKU. {where}", [sku, store]))
            elif price is None:
                failures.append(_failure(f"Invalid attribute Price = %price. {where}", [row.get("price"), sku, store]))
            elif not isinstance(store, int) or store not in self.stores:
                failures.append(_failure(f"Requested store is not found. {where}", [sku, store]))
            else:
                self._set_price(str(sku), store, "price", num(price))
        return failures

    def _set_price(self, sku: str, store_id: int, code: str, value: Any) -> None:
        """A price attribute at a store (global price scope: always the global value)."""
        product = self.sim.products[sku]
        if store_id and self.config.get("price_scope") == "website":
            override = self.overrides.setdefault((sku, store_id), {})
            if code in TOP_LEVEL:
                override[code] = value
            else:
                override.setdefault("custom_attributes", {})[code] = value
        elif code in TOP_LEVEL:
            product[code] = value
        else:
            values = attrs_of(product)
            if value is None:
                values.pop(code, None)
            else:
                values[code] = value
            product["custom_attributes"] = attrs_list(values)
        product["updated_at"] = self.sim.now()

    def base_prices_information(self, body: Any) -> list[JSON]:
        out = []
        for sku in self._skus_or_404(body, BASE_PRICE_TYPES):
            for sid in sorted(self.stores):
                if sid and self.config.get("price_scope") != "website":
                    continue
                view = self._view(sku, sid)
                out.append({"price": num(Decimal(str(view.get("price") or 0))), "store_id": sid, "sku": sku})
        return out

    def special_prices(self, body: Any) -> list[JSON]:
        """``POST /V1/products/special-price``: one special price per SKU and store (Open Source)."""
        failures = []
        for row in self._rows(body):
            row = row if isinstance(row, dict) else {}
            sku, store = row.get("sku"), row.get("store_id")
            frm, to = row.get("price_from"), row.get("price_to")
            where = "Row ID: SKU = %SKU, Store ID: %storeId, Price From: %priceFrom, Price To: %priceTo."
            product = self._priced_sku(sku, SPECIAL_PRICE_TYPES)
            price = self._price(row.get("price"))
            if product is None:
                message = "The product that was requested doesn't exist. Verify the product and try again. "
                failures.append(_failure(message + where, [sku, store, frm, to]))
            elif price is None or (product.get("type_id") == "bundle" and not 0 < price <= 100):
                failures.append(
                    _failure(f"Invalid attribute Price = %price. {where}", [row.get("price"), sku, store, frm, to])
                )
            elif not isinstance(store, int) or store not in self.stores:
                failures.append(_failure(f"Requested store is not found. {where}", [sku, store, frm, to]))
            elif not (_date_ok(frm) and _date_ok(to)):
                label, value = ("Price From", frm) if not _date_ok(frm) else ("Price To", to)
                failures.append(_failure(f"Invalid attribute {label} = %value. {where}", [value, sku, store, frm, to]))
            else:
                entry = {"price": num(price), "store_id": store, "sku": str(sku), "price_from": frm, "price_to": to}
                rows = [r for r in self.specials.get(str(sku), []) if r["store_id"] != store]
                self.specials[str(sku)] = [*rows, entry]
                self._set_price(str(sku), store, "special_price", f"{price:.6f}")
                self._set_price(str(sku), store, "special_from_date", frm)
                self._set_price(str(sku), store, "special_to_date", to)
        return failures

    def special_prices_information(self, body: Any) -> list[JSON]:
        return [
            copy.deepcopy(r) for sku in self._skus_or_404(body, SPECIAL_PRICE_TYPES) for r in self.specials.get(sku, [])
        ]

    def delete_special_prices(self, body: Any) -> list[JSON]:
        """``POST /V1/products/special-price-delete``: removes exact matches (price, store, dates)."""
        failures = []
        for row in self._rows(body):
            row = row if isinstance(row, dict) else {}
            sku, store = row.get("sku"), row.get("store_id")
            if self._priced_sku(sku, SPECIAL_PRICE_TYPES) is None:
                message = "The product that was requested doesn't exist. Verify the product and try again. "
                where = "Row ID: SKU = %SKU, Store ID: %storeId, Price From: %priceFrom, Price To: %priceTo."
                failures.append(_failure(message + where, [sku, store, row.get("price_from"), row.get("price_to")]))
                continue
            price = self._price(row.get("price"))
            kept = []
            for entry in self.specials.get(str(sku), []):
                same = (
                    entry["store_id"] == store
                    and price is not None
                    and Decimal(str(entry["price"])) == price
                    and entry["price_from"] == row.get("price_from")
                    and entry["price_to"] == row.get("price_to")
                )
                if same:
                    for code in ("special_price", "special_from_date", "special_to_date"):
                        self._set_price(str(sku), entry["store_id"], code, None)
                else:
                    kept.append(entry)
            self.specials[str(sku)] = kept
        return failures

    def _group_id(self, code: Any) -> int | None:
        if not isinstance(code, str):
            return None
        if code.lower() == ALL_GROUPS.lower():
            return ALL_GROUPS_ID
        for group in self.customer_groups.values():
            if group["code"].lower() == code.lower():
                return int(group["id"])
        return None

    def _tier_failure(self, row: JSON) -> JSON | None:
        sku, website, group, qty = row.get("sku"), row.get("website_id"), row.get("customer_group"), row.get("quantity")
        where = "Row ID: SKU = %SKU, Website ID: %websiteId, Customer Group: %customerGroup, Quantity: %qty."
        ids = [sku, website, group, qty]
        price = self._price(row.get("price"))
        if self._priced_sku(sku, TIER_PRICE_TYPES) is None:
            return _failure(f"Invalid attribute SKU = %SKU. {where}", ids)
        bundle = self.sim.products[str(sku)].get("type_id") == "bundle"
        if row.get("price_type") not in ("fixed", "discount") or (bundle and row.get("price_type") != "discount"):
            return _failure(f"Invalid attribute Price Type = %priceType. {where}", [row.get("price_type"), *ids])
        if price is None or (row["price_type"] == "discount" and price > 100):
            return _failure(f"Invalid attribute Price = %price. {where}", [row.get("price"), *ids])
        if self._price(qty) is None or Decimal(str(qty)) <= 0:
            return _failure(f"Invalid attribute Quantity = %qty. {where}", ids)
        if not isinstance(website, int) or website not in self.websites:
            return _failure(f"Invalid attribute Website ID = %websiteId. {where}", ids)
        if self._group_id(group) is None:
            return _failure(f"No such entity with Customer Group = %customerGroup. {where}", ids)
        return None

    @staticmethod
    def _tier_key(row: JSON) -> tuple[int, str, Decimal]:
        return int(row["website_id"]), str(row["customer_group"]).lower(), Decimal(str(row["quantity"]))

    def _tier_row(self, row: JSON) -> JSON:
        gid = self._group_id(row["customer_group"])
        group = self.customer_groups.get(gid) if gid is not None else None
        return {
            "price": num(Decimal(str(row["price"]))),
            "price_type": row["price_type"],
            "website_id": int(row["website_id"]),
            "sku": str(row["sku"]),
            "customer_group": group["code"] if group else ALL_GROUPS,
            "quantity": num(Decimal(str(row["quantity"]))),
        }

    def tier_prices(self, body: Any, *, replace: bool) -> list[JSON]:
        """``POST`` (add or update) or ``PUT`` (replace every tier price of the SKUs sent)."""
        failures, good = [], []
        for row in self._rows(body):
            row = row if isinstance(row, dict) else {}
            failure = self._tier_failure(row)
            if failure is None:
                good.append(self._tier_row(row))
            else:
                failures.append(failure)
        if replace:
            for sku in {r["sku"] for r in good}:
                self.tiers[sku] = []
        for row in good:
            rows = [r for r in self.tiers.get(row["sku"], []) if self._tier_key(r) != self._tier_key(row)]
            self.tiers[row["sku"]] = [*rows, row]
        for sku in {r["sku"] for r in good}:
            self.sim.products[sku]["updated_at"] = self.sim.now()
        return failures

    def tier_prices_information(self, body: Any) -> list[JSON]:
        return [copy.deepcopy(r) for sku in self._skus_or_404(body, TIER_PRICE_TYPES) for r in self.tiers.get(sku, [])]

    def delete_tier_prices(self, body: Any) -> list[JSON]:
        failures = []
        for row in self._rows(body):
            row = row if isinstance(row, dict) else {}
            failure = self._tier_failure(row)
            if failure is not None:
                failures.append(failure)
                continue
            wanted = self._tier_row(row)
            self.tiers[wanted["sku"]] = [r for r in self.tiers.get(wanted["sku"], []) if r != wanted]
        return failures

    def _product_tiers(self, sku: str, base: JSON) -> list[JSON]:
        out = []
        price = Decimal(str(base.get("price") or 0))
        for row in self.tiers.get(sku, []):
            gid = self._group_id(row["customer_group"])
            ext: JSON = {"website_id": row["website_id"]}
            value = Decimal(str(row["price"]))
            if row["price_type"] == "discount":
                ext["percentage_value"] = row["price"]
                value = price * (100 - value) / 100
            out.append(
                {"customer_group_id": gid, "qty": row["quantity"], "value": num(value), "extension_attributes": ext}
            )
        return out

    def _tiers_from_product(self, sku: str, rows: list[Any]) -> None:
        """``tier_prices`` in a product body replace the product's tier prices."""
        out = []
        for row in rows:
            if not isinstance(row, dict):
                continue
            gid = row.get("customer_group_id")
            known = self.customer_groups.get(gid) if isinstance(gid, int) else None
            group = ALL_GROUPS if gid == ALL_GROUPS_ID else (known or {}).get("code")
            ext = row.get("extension_attributes") or {}
            percent = ext.get("percentage_value")
            out.append(
                {
                    "price": num(Decimal(str(percent if percent is not None else row.get("value") or 0))),
                    "price_type": "discount" if percent is not None else "fixed",
                    "website_id": int(ext.get("website_id") or 0),
                    "sku": sku,
                    "customer_group": group or ALL_GROUPS,
                    "quantity": num(Decimal(str(row.get("qty") or 1))),
                }
            )
        self.tiers[sku] = out

    def customer_group(self, gid: int) -> JSON:
        if gid not in self.customer_groups:
            raise MagentoError(404, NO_SUCH, {"fieldName": "id", "fieldValue": gid})
        return copy.deepcopy(self.customer_groups[gid])

    # ----------------------------------------------------------------- stock

    def source(self, code: str) -> JSON:
        if code not in self.sources:
            raise MagentoError(404, 'Source with code "%value" is not found.', {"value": code})
        return self.sources[code]

    def save_source(self, body: Any) -> list[Any]:
        given = body.get("source") if isinstance(body, dict) else None
        if not isinstance(given, dict):
            raise MagentoError(400, REQUIRED, {"fieldName": "source"})
        errors = [
            {"message": '"%field" can not be empty.', "parameters": {"field": key}}
            for key in ("source_code", "name", "country_id", "postcode")
            if not str(given.get(key) or "").strip()
        ]
        if errors:
            raise _validation(errors)
        code = str(given["source_code"])
        record = {
            "enabled": True,
            "use_default_carrier_config": True,
            "carrier_links": [],
            **self.sources.get(code, {}),
        }
        record.update(copy.deepcopy(given))
        record["enabled"] = bool(record.get("enabled"))
        self.sources[code] = record
        return []

    def stock(self, stock_id: int) -> JSON:
        if stock_id not in self.stocks:
            raise MagentoError(404, 'Stock with id "%value" does not exist.', {"value": stock_id})
        return self.stocks[stock_id]

    def save_stock_links(self, body: Any) -> list[Any]:
        links = body.get("links") if isinstance(body, dict) else None
        if not isinstance(links, list):
            raise MagentoError(400, REQUIRED, {"fieldName": "links"})
        errors = []
        for link in links:
            link = link if isinstance(link, dict) else {}
            if link.get("stock_id") not in self.stocks:
                errors.append(
                    {"message": 'Stock with id "%value" does not exist.', "parameters": {"value": link.get("stock_id")}}
                )
            if link.get("source_code") not in self.sources:
                errors.append(
                    {
                        "message": 'Source with code "%value" is not found.',
                        "parameters": {"value": link.get("source_code")},
                    }
                )
        if errors:
            raise _validation(errors)
        for link in links:
            self.stock_links[:] = [
                x
                for x in self.stock_links
                if (x["stock_id"], x["source_code"]) != (link["stock_id"], link["source_code"])
            ]
            self.stock_links.append(
                {
                    "stock_id": link["stock_id"],
                    "source_code": link["source_code"],
                    "priority": int(link.get("priority") or 1),
                }
            )
        return []

    def _source_item_errors(self, row: Any) -> list[JSON]:
        if not isinstance(row, dict):
            return [{"message": '"%field" can not be empty.', "parameters": {"field": "sku"}}]
        errors = []
        sku, code = row.get("sku"), row.get("source_code")
        if not str(sku or "").strip():
            errors.append({"message": '"%field" can not be empty.', "parameters": {"field": "sku"}})
        elif sku not in self.sim.products:
            errors.append({"message": 'Product with SKU "%sku" does not exist.', "parameters": {"sku": sku}})
        elif self.sim.products[sku].get("type_id") not in ("simple", "virtual", "downloadable"):
            errors.append(
                {
                    "message": 'Source items are not allowed for the "%type" product type (SKU "%sku").',
                    "parameters": {"type": self.sim.products[sku].get("type_id"), "sku": sku},
                }
            )
        if not str(code or "").strip():
            errors.append({"message": '"%field" can not be empty.', "parameters": {"field": "source_code"}})
        elif code not in self.sources:
            errors.append({"message": 'Source with code "%value" is not found.', "parameters": {"value": code}})
        if self._price(row.get("quantity")) is None and row.get("quantity") is not None:
            errors.append({"message": '"%field" should be numeric.', "parameters": {"field": "quantity"}})
        if row.get("status") not in (0, 1, None):
            errors.append({"message": '"%field" should be numeric.', "parameters": {"field": "status"}})
        return errors

    def save_source_items(self, body: Any) -> list[Any]:
        """``POST /V1/inventory/source-items``: all rows or none (400 Validation Failed)."""
        rows = body.get("sourceItems") if isinstance(body, dict) else None
        if not isinstance(rows, list) or not rows:
            raise MagentoError(400, "Input data is empty")
        errors = [e for row in rows for e in self._source_item_errors(row)]
        if errors:
            raise _validation(errors)
        for row in rows:
            quantity = Decimal(str(row.get("quantity") or 0))
            status = row.get("status")
            self.source_items[(row["sku"], row["source_code"])] = {
                "sku": row["sku"],
                "source_code": row["source_code"],
                "quantity": num(quantity),
                "status": int(quantity > 0) if status is None else int(status),
            }
        return []

    def delete_source_items(self, body: Any) -> list[Any]:
        rows = body.get("sourceItems") if isinstance(body, dict) else None
        if not isinstance(rows, list) or not rows:
            raise MagentoError(400, "Input data is empty")
        for row in rows:
            if isinstance(row, dict):
                self.source_items.pop((row.get("sku"), row.get("source_code")), None)  # type: ignore[arg-type]
        return []

    def _stock_sources(self, stock_id: int) -> list[str]:
        links = sorted((x for x in self.stock_links if x["stock_id"] == stock_id), key=lambda x: x["priority"])
        return [x["source_code"] for x in links if self.sources.get(x["source_code"], {}).get("enabled", True)]

    def reserved(self, sku: str) -> Decimal:
        """Open reservations of ``sku``: ordered minus shipped, canceled and refunded on open orders."""
        total = Decimal(0)
        for order in self.sim.orders.values():
            if order.get("state") in ("canceled", "closed", "complete"):
                continue
            items = order.get("items") or []
            parents = {it.get("parent_item_id") for it in items if isinstance(it, dict)}
            for it in items:
                if not isinstance(it, dict) or it.get("sku") != sku or it.get("item_id") in parents:
                    continue
                left = Decimal(str(it.get("qty_ordered") or 0))
                for key in ("qty_shipped", "qty_canceled", "qty_refunded"):
                    left -= Decimal(str(it.get(key) or 0))
                total += max(left, Decimal(0))
        return total

    def salable_qty(self, sku: str, stock_id: int) -> int | float:
        self.stock(stock_id)
        product = self.product(sku)
        if product.get("type_id") not in ("simple", "virtual", "downloadable"):
            raise MagentoError(400, "Can't check requested quantity for products without Source Items support.")
        qty = Decimal(0)
        for code in self._stock_sources(stock_id):
            item = self.source_items.get((sku, code))
            if item is not None and item["status"] == 1:
                qty += Decimal(str(item["quantity"]))
        min_qty = Decimal(str(self.stock_config.get(sku, {}).get("min_qty") or 0))
        return num(qty - self.reserved(sku) - min_qty)

    def is_salable(self, sku: str, stock_id: int) -> bool:
        self.stock(stock_id)
        product = self.product(sku)
        if int(product.get("status") or 1) != 1:
            return False
        if product.get("type_id") == "configurable":
            return any(self.is_salable(c["sku"], stock_id) for c in self.children(sku, 0))
        if product.get("type_id") not in ("simple", "virtual", "downloadable"):
            return bool(self.stock_item_of(sku)["is_in_stock"])
        config = self.stock_config.get(sku, {})
        if config.get("manage_stock") is False and config.get("use_config_manage_stock") is False:
            return True  # stock not managed: always salable, whatever the quantity
        return Decimal(str(self.salable_qty(sku, stock_id))) > 0

    def stock_item_of(self, sku: str) -> JSON:
        """The legacy stock item: settings kept per SKU, qty and status from the ``default`` source item."""
        product = self.product(sku)
        config = self.stock_config.get(sku, {})
        item = {**stock_item(product["id"], 0), **config, "item_id": product["id"], "product_id": product["id"]}
        source = self.source_items.get((sku, "default"))
        if source is not None:
            item["qty"] = source["quantity"]
            item["is_in_stock"] = source["status"] == 1
        return item

    def _stock_from_product(self, sku: str, type_id: str, given: Any) -> None:
        if not isinstance(given, dict):
            return
        keep = {k: copy.deepcopy(v) for k, v in given.items() if k not in ("item_id", "product_id", "stock_id")}
        config = {**self.stock_config.get(sku, {}), **keep}
        if type_id in ("simple", "virtual", "downloadable") and ("qty" in given or "is_in_stock" in given):
            old = self.source_items.get((sku, "default"), {"quantity": 0, "status": 0})
            qty = given.get("qty", old["quantity"])
            status = given.get("is_in_stock")
            in_stock = bool(status) if status is not None else Decimal(str(qty or 0)) > 0
            self.source_items[(sku, "default")] = {
                "sku": sku,
                "source_code": "default",
                "quantity": num(Decimal(str(qty or 0))),
                "status": int(in_stock),
            }
            config.pop("qty", None)
            config.pop("is_in_stock", None)
        if "qty" in config:
            config["qty"] = num(Decimal(str(config["qty"] or 0)))
        if "is_in_stock" in config:
            config["is_in_stock"] = bool(config["is_in_stock"])
        self.stock_config[sku] = config

    def update_stock_item(self, sku: str, body: Any) -> str:
        """``PUT /V1/products/{sku}/stockItems/{itemId}``: the item id, as a string."""
        product = self.product(sku)
        given = body.get("stockItem") if isinstance(body, dict) else None
        if not isinstance(given, dict):
            raise MagentoError(400, REQUIRED, {"fieldName": "stockItem"})
        self._stock_from_product(sku, str(product.get("type_id")), given)
        return str(product["id"])

    def deduct_shipped(self, order: JSON, deltas: dict[int, Decimal]) -> None:
        """A shipment takes the shipped quantities off the SKUs' source items (by stock priority)."""
        items = {it["item_id"]: it for it in order.get("items") or [] if isinstance(it, dict)}
        parents = {it.get("parent_item_id") for it in items.values()}
        for item_id, qty in deltas.items():
            item = items.get(item_id)
            if item is None or item_id in parents:
                continue
            codes = [c for c in self._stock_sources(1) if (item.get("sku"), c) in self.source_items]
            codes += [c for c in self.sources if (item.get("sku"), c) in self.source_items and c not in codes]
            left = qty
            for n, code in enumerate(codes):
                row = self.source_items[(item["sku"], code)]
                have = Decimal(str(row["quantity"]))
                take = left if n == len(codes) - 1 else min(left, max(have, Decimal(0)))
                row["quantity"] = num(have - take)
                left -= take
                if left <= 0:
                    break

    # ----------------------------------------------------------------- async bulk

    def bulk(self, body: Any, store_id: int, topic: str) -> JSON:
        """The async bulk API, processed at once: one operation per ``{"product": ...}``."""
        if not isinstance(body, list):
            raise MagentoError(400, BAD_TYPE, ["body", "array"])
        bulk_id = str(uuid.uuid4())
        items, operations = [], []
        for n, entry in enumerate(body):
            status, message = (
                1,
                "Service execution success Magento\\Catalog\\Model\\ProductRepository\\Interceptor::save",
            )
            code: int | None = None
            try:
                product = entry.get("product") if isinstance(entry, dict) else None
                self.save_product(
                    product, store_id, url_sku=(entry or {}).get("sku") if isinstance(entry, dict) else None
                )
            except MagentoError as exc:
                status, code = 3, 0
                message = _render(exc)
            items.append({"id": n, "data_hash": _hash(entry), "status": "accepted"})
            operations.append({"id": n, "status": status, "result_message": message, "error_code": code})
        self.bulks[bulk_id] = {
            "operations_list": operations,
            "user_type": 2,
            "bulk_id": bulk_id,
            "description": f"Topic {topic}",
            "start_time": self.sim.now(),
            "user_id": 1,
            "operation_count": len(operations),
        }
        return {"bulk_uuid": bulk_id, "request_items": items, "errors": False}

    def bulk_status(self, bulk_id: str) -> JSON:
        if bulk_id not in self.bulks:
            raise MagentoError(404, "Bulk uuid %bulkUuid not exist", {"bulkUuid": bulk_id})
        return copy.deepcopy(self.bulks[bulk_id])

    # ----------------------------------------------------------------- seed

    def seed_before(self, body: JSON, out: JSON) -> None:
        """Seed what products need first: config, stores, groups, attributes, sets, categories, sources."""
        config = body.get("config") or {}
        for key in ("price_scope", "legacy_category_links_replace"):
            if key in config:
                self.config[key] = config[key]
        for key, table in (("websites", self.websites), ("store_groups", self.groups), ("store_views", self.stores)):
            for row in body.get(key) or []:
                table[int(row["id"])] = copy.deepcopy(row)
        for row in body.get("customer_groups") or []:
            self.customer_groups[int(row["id"])] = {"tax_class_name": "Retail Customer", "tax_class_id": 3, **row}
        if "attributes" in body:
            out["attributes"] = [self._seed_attribute(a) for a in body.get("attributes") or []]
        if "attribute_sets" in body:
            out["attribute_sets"] = [self._seed_set(s) for s in body.get("attribute_sets") or []]
        if "categories" in body:
            out["categories"] = []
            for cat in body.get("categories") or []:
                saved = self.create_category(cat, 0, keep_id=True)
                out["categories"].append({"name": saved["name"], "id": saved["id"]})
        for src in body.get("sources") or []:
            self.save_source({"source": src})
        if body.get("stock_source_links"):
            self.save_stock_links({"links": body["stock_source_links"]})

    def seed_after(self, body: JSON, out: JSON) -> None:
        if body.get("source_items"):
            self.save_source_items({"sourceItems": body["source_items"]})

    def _seed_attribute(self, given: JSON) -> JSON:
        """One seeded attribute; ``attribute_set_ids`` (optional) puts it in those sets' first group."""
        code = given.get("attribute_code")
        if code in self.attributes:
            saved = self.update_attribute(code, given, keep_ids=True)
        else:
            saved = self.create_attribute(given, keep_ids=True)
        for set_id in given.get("attribute_set_ids") or []:
            group = min(g for g, row in self.attribute_groups.items() if row["attribute_set_id"] == set_id)
            self.set_attributes[set_id][saved["attribute_code"]] = (group, 100)
        labels = {o["label"]: int(o["value"]) for o in saved["options"] if o["value"]}
        return {"attribute_code": saved["attribute_code"], "attribute_id": saved["attribute_id"], "options": labels}

    def _seed_set(self, given: JSON) -> JSON:
        saved = self.create_attribute_set(
            {
                "attributeSet": {"attribute_set_name": given["attribute_set_name"]},
                "skeletonId": given.get("skeleton_id", 4),
            }
        )
        set_id = saved["attribute_set_id"]
        group = next(g for g in self.attribute_groups.values() if g["attribute_set_id"] == set_id)
        for n, code in enumerate(given.get("attributes") or []):
            self.assign_attribute(
                {
                    "attributeSetId": set_id,
                    "attributeGroupId": group["attribute_group_id"],
                    "attributeCode": code,
                    "sortOrder": n,
                }
            )
        return {"attribute_set_name": saved["attribute_set_name"], "attribute_set_id": set_id}


def _top_level_value(key: str, value: Any) -> Any:
    """Numbers sent as strings (``"weight": "0.5"``, as Magento's own tutorial does) stored as numbers."""
    try:
        if key in ("price", "weight") and value not in (None, ""):
            return num(Decimal(str(value)))
        if key in ("status", "visibility", "attribute_set_id") and value not in (None, ""):
            return int(str(value))
    except (ArithmeticError, ValueError) as exc:
        raise MagentoError(400, BAD_TYPE, [str(value), "int" if key != "price" else "float"]) from exc
    return value


def _date_ok(value: Any) -> bool:
    if value in (None, ""):
        return True
    return isinstance(value, str) and bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}( \d{2}:\d{2}(:\d{2})?)?", value))


def _validation(errors: list[JSON]) -> MagentoError:
    """MSI's ValidationException: 400 ``Validation Failed`` with one entry per problem in ``errors``."""
    return MagentoError(400, VALIDATION_FAILED, errors=errors)


def _render(exc: MagentoError) -> str:
    return render_message(exc.message, exc.parameters)


def _hash(entry: Any) -> str:
    return hashlib.sha256(json.dumps(entry, sort_keys=True, default=str).encode()).hexdigest()


# --------------------------------------------------------------------------- HTTP handlers

Q = list[tuple[str, str]]
CatalogHandler = Callable[["MagentoSim", "re.Match[str]", Q, Any], Any]


def _cat(sim: MagentoSim) -> Catalog:
    return sim.catalog


def _query_int(q: Q, name: str) -> int | None:
    value = next((v for k, v in q if k == name), None)
    return None if value in (None, "") else _int(str(value))


def _sku(m: re.Match[str], group: str = "sku") -> str:
    return unquote(m[group])


def _h_websites(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return copy.deepcopy(list(_cat(sim).websites.values()))


def _h_store_groups(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return copy.deepcopy(list(_cat(sim).groups.values()))


def _h_store_views(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return copy.deepcopy(list(_cat(sim).stores.values()))


def _h_attributes(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    c = _cat(sim)
    rows = [c.render_attribute(a) for a in c.attributes.values()]
    return _found_page(rows, q, "attribute_id")


def _h_attribute(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _cat(sim).render_attribute(_cat(sim).attribute(unquote(m["code"])))


def _h_create_attribute(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    if not isinstance(body, dict) or "attribute" not in body:
        raise MagentoError(400, REQUIRED, {"fieldName": "attribute"})
    return _cat(sim).create_attribute(body["attribute"])


def _h_update_attribute(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    if not isinstance(body, dict) or "attribute" not in body:
        raise MagentoError(400, REQUIRED, {"fieldName": "attribute"})
    return _cat(sim).update_attribute(unquote(m["code"]), body["attribute"])


def _h_delete_attribute(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _cat(sim).delete_attribute(unquote(m["code"]))


def _h_options(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _cat(sim).option_list(_cat(sim).attribute(unquote(m["code"])))


def _h_add_option(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _cat(sim).add_option(unquote(m["code"]), body)


def _h_update_option(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _cat(sim).update_option(unquote(m["code"]), m["option"], body)


def _h_delete_option(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _cat(sim).delete_option(unquote(m["code"]), m["option"])


def _h_sets(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _found_page(list(_cat(sim).attribute_sets.values()), q, "attribute_set_id")


def _h_set(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return copy.deepcopy(_cat(sim).attribute_set(_int(m["id"])))


def _h_create_set(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _cat(sim).create_attribute_set(body)


def _h_set_attributes(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _cat(sim).set_members(_int(m["id"]))


def _h_assign_attribute(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _cat(sim).assign_attribute(body)


def _h_groups(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    page = _found_page(list(_cat(sim).attribute_groups.values()), q, "attribute_group_id")
    page["items"] = [group_out(g) for g in page["items"]]
    return page


def _h_create_group(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _cat(sim).create_group(body)


def _h_tree(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    c = _cat(sim)
    return c.category_tree(_query_int(q, "rootCategoryId"), _query_int(q, "depth"), c.store_id())


def _h_category_list(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _cat(sim).category_list(q, _cat(sim).store_id())


def _h_category(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    c = _cat(sim)
    cid = _int(m["id"])
    c.category(cid)
    return c.render_category(cid, c.store_id())


def _h_create_category(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    if not isinstance(body, dict) or "category" not in body:
        raise MagentoError(400, REQUIRED, {"fieldName": "category"})
    given = body["category"]
    if isinstance(given, dict) and given.get("id"):
        return _cat(sim).update_category(_int(str(given["id"])), given, _cat(sim).store_id())
    return _cat(sim).create_category(given, _cat(sim).store_id())


def _h_update_category(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    if not isinstance(body, dict) or "category" not in body:
        raise MagentoError(400, REQUIRED, {"fieldName": "category"})
    return _cat(sim).update_category(_int(m["id"]), body["category"], _cat(sim).store_id())


def _h_delete_category(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _cat(sim).delete_category(_int(m["id"]))


def _h_move_category(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _cat(sim).move_category(_int(m["id"]), body)


def _h_category_products(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _cat(sim).category_products(_int(m["id"]))


def _h_link_product(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _cat(sim).link_product(_int(m["id"]), body)


def _h_unlink_product(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _cat(sim).unlink_product(_int(m["id"]), _sku(m))


def _h_products(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _cat(sim).search_products(q, _cat(sim).store_id())


def _h_product(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    c = _cat(sim)
    store = _query_int(q, "storeId")
    return c.render_product(_sku(m), c.store_id() if store is None else store)


def _h_save_product(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    if not isinstance(body, dict) or "product" not in body:
        raise MagentoError(400, REQUIRED, {"fieldName": "product"})
    url_sku = _sku(m) if m.groupdict().get("sku") else None
    return _cat(sim).save_product(body["product"], _cat(sim).store_id(), url_sku=url_sku)


def _h_delete_product(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _cat(sim).delete_product(_sku(m))


def _h_add_website(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _cat(sim).add_website(_sku(m), body)


def _h_children(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _cat(sim).children(_sku(m), _cat(sim).store_id())


def _h_config_options(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _cat(sim).configurable_options(_sku(m))


def _h_add_child(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _cat(sim).add_child(_sku(m), body)


def _h_remove_child(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _cat(sim).remove_child(_sku(m), _sku(m, "child"))


def _h_add_config_option(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _cat(sim).add_configurable_option(_sku(m), body)


def _h_bundle_children(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _cat(sim).bundle_children(_sku(m))


def _h_base_prices(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _cat(sim).base_prices(body)


def _h_base_prices_info(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _cat(sim).base_prices_information(body)


def _h_special(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _cat(sim).special_prices(body)


def _h_special_info(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _cat(sim).special_prices_information(body)


def _h_special_delete(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _cat(sim).delete_special_prices(body)


def _h_tier_add(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _cat(sim).tier_prices(body, replace=False)


def _h_tier_replace(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _cat(sim).tier_prices(body, replace=True)


def _h_tier_info(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _cat(sim).tier_prices_information(body)


def _h_tier_delete(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _cat(sim).delete_tier_prices(body)


def _h_customer_groups(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _found_page(list(_cat(sim).customer_groups.values()), q, "id")


def _h_customer_group(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _cat(sim).customer_group(_int(m["id"]))


def _h_sources(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _found_page(list(_cat(sim).sources.values()), q, "source_code")


def _h_source(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return copy.deepcopy(_cat(sim).source(unquote(m["code"])))


def _h_save_source(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _cat(sim).save_source(body)


def _h_stocks(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _found_page(list(_cat(sim).stocks.values()), q, "stock_id")


def _h_stock(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return copy.deepcopy(_cat(sim).stock(_int(m["id"])))


def _h_stock_links(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _found_page(list(_cat(sim).stock_links), q, "stock_id")


def _h_save_stock_links(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _cat(sim).save_stock_links(body)


def _h_source_items(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _found_page(list(_cat(sim).source_items.values()), q, "sku")


def _h_save_source_items(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _cat(sim).save_source_items(body)


def _h_delete_source_items(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _cat(sim).delete_source_items(body)


def _h_salable_qty(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _cat(sim).salable_qty(_sku(m), _int(m["stock"]))


def _h_is_salable(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _cat(sim).is_salable(_sku(m), _int(m["stock"]))


def _h_stock_item(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _cat(sim).stock_item_of(_sku(m))


def _h_update_stock_item(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _cat(sim).update_stock_item(_sku(m), body)


def _h_bulk_status(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    return _cat(sim).bulk_status(m["uuid"])


def _h_bulk_save(sim: MagentoSim, m: re.Match[str], q: Q, body: Any) -> Any:
    topic = "async.magento.catalog.api.productrepositoryinterface.save.post"
    if m.groupdict().get("by"):
        topic = "async.magento.catalog.api.productrepositoryinterface.save.put"
    return _cat(sim).bulk(body, _cat(sim).store_id(), topic)


_P = "Magento_Catalog::products"
_A = "Magento_Catalog::attributes_attributes"
_C = "Magento_Catalog::categories"
_I = "Magento_InventoryApi::source"
_SKU = r"(?P<sku>[^/]+)"

CATALOG_ROUTES: list[tuple[str, str, CatalogHandler, str | None]] = [
    ("GET", r"/store/websites", _h_websites, "Magento_Backend::stores"),
    ("GET", r"/store/storeGroups", _h_store_groups, "Magento_Backend::stores"),
    ("GET", r"/store/storeViews", _h_store_views, "Magento_Backend::stores"),
    ("GET", r"/products/attributes", _h_attributes, _A),
    ("POST", r"/products/attributes", _h_create_attribute, _A),
    ("GET", r"/products/attributes/(?P<code>[^/]+)", _h_attribute, _A),
    ("PUT", r"/products/attributes/(?P<code>[^/]+)", _h_update_attribute, _A),
    ("DELETE", r"/products/attributes/(?P<code>[^/]+)", _h_delete_attribute, _A),
    ("GET", r"/products/attributes/(?P<code>[^/]+)/options", _h_options, _A),
    ("POST", r"/products/attributes/(?P<code>[^/]+)/options", _h_add_option, _A),
    ("PUT", r"/products/attributes/(?P<code>[^/]+)/options/(?P<option>[^/]+)", _h_update_option, _A),
    ("DELETE", r"/products/attributes/(?P<code>[^/]+)/options/(?P<option>[^/]+)", _h_delete_option, _A),
    ("GET", r"/products/attribute-sets/sets/list", _h_sets, "Magento_Catalog::sets"),
    ("POST", r"/products/attribute-sets", _h_create_set, "Magento_Catalog::sets"),
    ("POST", r"/products/attribute-sets/attributes", _h_assign_attribute, "Magento_Catalog::sets"),
    ("GET", r"/products/attribute-sets/groups/list", _h_groups, "Magento_Catalog::sets"),
    ("POST", r"/products/attribute-sets/groups", _h_create_group, "Magento_Catalog::sets"),
    ("GET", r"/products/attribute-sets/(?P<id>[^/]+)", _h_set, "Magento_Catalog::sets"),
    ("GET", r"/products/attribute-sets/(?P<id>[^/]+)/attributes", _h_set_attributes, "Magento_Catalog::sets"),
    ("GET", r"/categories", _h_tree, _C),
    ("POST", r"/categories", _h_create_category, _C),
    ("GET", r"/categories/list", _h_category_list, _C),
    ("GET", r"/categories/(?P<id>[^/]+)", _h_category, _C),
    ("PUT", r"/categories/(?P<id>[^/]+)", _h_update_category, _C),
    ("DELETE", r"/categories/(?P<id>[^/]+)", _h_delete_category, _C),
    ("PUT", r"/categories/(?P<id>[^/]+)/move", _h_move_category, _C),
    ("GET", r"/categories/(?P<id>[^/]+)/products", _h_category_products, _C),
    ("POST", r"/categories/(?P<id>[^/]+)/products", _h_link_product, _C),
    ("PUT", r"/categories/(?P<id>[^/]+)/products", _h_link_product, _C),
    ("DELETE", r"/categories/(?P<id>[^/]+)/products/" + _SKU, _h_unlink_product, _C),
    ("POST", r"/products/base-prices", _h_base_prices, _P),
    ("POST", r"/products/base-prices-information", _h_base_prices_info, _P),
    ("POST", r"/products/special-price", _h_special, _P),
    ("POST", r"/products/special-price-information", _h_special_info, _P),
    ("POST", r"/products/special-price-delete", _h_special_delete, _P),
    ("POST", r"/products/tier-prices", _h_tier_add, _P),
    ("PUT", r"/products/tier-prices", _h_tier_replace, _P),
    ("POST", r"/products/tier-prices-information", _h_tier_info, _P),
    ("POST", r"/products/tier-prices-delete", _h_tier_delete, _P),
    ("GET", r"/products", _h_products, _P),
    ("POST", r"/products", _h_save_product, _P),
    ("GET", r"/products/" + _SKU, _h_product, _P),
    ("PUT", r"/products/" + _SKU, _h_save_product, _P),
    ("DELETE", r"/products/" + _SKU, _h_delete_product, _P),
    ("POST", r"/products/" + _SKU + r"/websites", _h_add_website, _P),
    ("PUT", r"/products/" + _SKU + r"/websites", _h_add_website, _P),
    (
        "PUT",
        r"/products/" + _SKU + r"/stockItems/(?P<item>[^/]+)",
        _h_update_stock_item,
        "Magento_CatalogInventory::cataloginventory",
    ),
    ("GET", r"/stockItems/" + _SKU, _h_stock_item, "Magento_CatalogInventory::cataloginventory"),
    ("GET", r"/configurable-products/" + _SKU + r"/children", _h_children, _P),
    ("GET", r"/configurable-products/" + _SKU + r"/options/all", _h_config_options, _P),
    ("POST", r"/configurable-products/" + _SKU + r"/child", _h_add_child, _P),
    ("DELETE", r"/configurable-products/" + _SKU + r"/children/(?P<child>[^/]+)", _h_remove_child, _P),
    ("POST", r"/configurable-products/" + _SKU + r"/options", _h_add_config_option, _P),
    ("GET", r"/bundle-products/" + _SKU + r"/children", _h_bundle_children, _P),
    ("GET", r"/customerGroups/search", _h_customer_groups, "Magento_Customer::group"),
    ("GET", r"/customerGroups/(?P<id>[^/]+)", _h_customer_group, "Magento_Customer::group"),
    ("GET", r"/inventory/sources", _h_sources, _I),
    ("POST", r"/inventory/sources", _h_save_source, _I),
    ("GET", r"/inventory/sources/(?P<code>[^/]+)", _h_source, _I),
    ("GET", r"/inventory/stocks", _h_stocks, "Magento_InventoryApi::stock"),
    ("GET", r"/inventory/stocks/(?P<id>[^/]+)", _h_stock, "Magento_InventoryApi::stock"),
    ("GET", r"/inventory/stock-source-links", _h_stock_links, "Magento_InventoryApi::stock"),
    ("POST", r"/inventory/stock-source-links", _h_save_stock_links, "Magento_InventoryApi::stock_source_link"),
    ("GET", r"/inventory/source-items", _h_source_items, _I),
    ("POST", r"/inventory/source-items", _h_save_source_items, "Magento_InventoryApi::source_item"),
    ("POST", r"/inventory/source-items-delete", _h_delete_source_items, "Magento_InventoryApi::source_item"),
    (
        "GET",
        r"/inventory/get-product-salable-quantity/" + _SKU + r"/(?P<stock>[^/]+)",
        _h_salable_qty,
        "Magento_InventoryApi::stock",
    ),
    (
        "GET",
        r"/inventory/is-product-salable/" + _SKU + r"/(?P<stock>[^/]+)",
        _h_is_salable,
        "Magento_InventoryApi::stock",
    ),
    ("GET", r"/bulk/(?P<uuid>[^/]+)/status", _h_bulk_status, "Magento_Logging::system_magento_logging_bulk_operations"),
]
"""Catalog routes (method, path after ``/V1``, handler, ACL resource), matched before the sim's others."""

ASYNC_ROUTES: list[tuple[str, str, CatalogHandler, str | None]] = [
    ("POST", r"/products", _h_bulk_save, _P),
    ("PUT", r"/products/(?P<by>bySku)", _h_bulk_save, _P),
]
"""Routes under ``/rest/<scope>/async/bulk/V1``."""


def _sku_candidates(products: dict[str, Any], criteria: JSON) -> list[str]:
    """The SKUs a search can find: those a filter group made only of ``sku`` eq/in filters names
    (compared without case, as MySQL does), else every SKU. (Filter groups are ANDed, so such a
    group bounds the result; the search itself still applies every filter. Building the view of
    every product for each ``sku in`` lookup made a 100k catalog crawl.)"""
    for group in criteria.get("filter_groups") or []:
        filters = group.get("filters") or []
        if filters and all(f["field"] == "sku" and f["condition_type"] in ("eq", "in") for f in filters):
            wanted = {
                v.strip().casefold()
                for f in filters
                for v in (f["value"].split(",") if f["condition_type"] == "in" else [f["value"]])
            }
            return [sku for sku in products if sku.casefold() in wanted]
    return list(products)
