"""The canonical catalog: attributes, categories, products, prices and stock, as the ERP owns them.

Ids are the ERP's (``AttributeID``, ``CategoryID``, ``InventoryID``); what the store calls them
(attribute codes, option ids, category ids) lives in the bindings, never here. Prices are
``Decimal`` in the store's currency; quantities are ``Decimal`` in the item's sales unit.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from erpsync.model.base import Model


class AttributeOption(Model):
    value_id: str
    """The ERP's value id (``ValueID``): what items carry."""
    label: str
    sort_order: int = 0
    disabled: bool = False


class Attribute(Model):
    """An attribute definition and its values."""

    source_id: str
    """The ERP's ``AttributeID`` (may hold spaces)."""
    label: str = ""
    input: str = "select"
    """``select``, ``multiselect``, ``text``, ``boolean``, ``date`` (from the ERP's control type)."""
    options: list[AttributeOption] = []
    version: str | None = None


class Category(Model):
    """A sales category; ``parent_id`` None is a top-level category (under the store's root)."""

    source_id: str
    name: str
    parent_id: str | None = None
    position: int = 0
    active: bool = True
    version: str | None = None


class BundleComponent(Model):
    sku: str
    qty: Decimal = Decimal(1)


class Product(Model):
    """A sellable item: a simple (or virtual) product, a configurable (an ERP template with its
    matrix children) or a bundle (an ERP kit)."""

    source_id: str
    """The ERP's ``InventoryID``, which is the store's SKU."""
    kind: str = "simple"
    """``simple``, ``virtual``, ``configurable`` or ``bundle``."""
    name: str
    description: str = ""
    price: Decimal | None = None
    """The item's default (base) price; None when the ERP gave none."""
    weight: Decimal | None = None
    active: bool = True
    """False for an inactive or deleted item: the store product is disabled, never deleted."""
    visible: bool = True
    item_class: str | None = None
    tax_category: str | None = None
    attributes: dict[str, str] = {}
    """ERP attribute id -> value id (the store's option id comes from the attribute's binding)."""
    categories: list[str] = []
    """ERP category ids."""
    children: list[str] = []
    """A configurable's matrix children (their SKUs)."""
    variant_attributes: list[str] = []
    """A configurable's options: the attributes whose values differ across its children."""
    components: list[BundleComponent] = []
    """A bundle's components."""
    parent: str | None = None
    """A matrix child's template (synced only through it)."""
    version: str | None = None


class SpecialPrice(Model):
    """A temporary markdown, with its dates (either may be open)."""

    price: Decimal
    starts: datetime | None = None
    ends: datetime | None = None


class TierPrice(Model):
    group: str
    """``ALL`` (every customer) or an ERP customer price class."""
    qty: Decimal
    price: Decimal


class PriceSet(Model):
    """Every price of one SKU: base, special with dates, and tiers per group and quantity."""

    sku: str
    base: Decimal | None = None
    special: SpecialPrice | None = None
    tiers: list[TierPrice] = []
    version: str | None = None
    clear_special: bool = False
    """Set by the prices flow: a special price was written before and the ERP has none now."""
    clear_tiers: bool = False
    """Set by the prices flow: tiers were written before and the ERP has none left."""


class WarehouseQty(Model):
    """One SKU's quantities in one ERP warehouse, in the item's base unit."""

    on_hand: Decimal = Decimal(0)
    available: Decimal = Decimal(0)
    """On hand less what open orders and other documents will take (the ERP's availability rule)."""
    for_shipping: Decimal = Decimal(0)
    """On hand less what is allocated to shipments or already shipped."""


class StockLevel(Model):
    """How many of one SKU there are, per ERP warehouse; or, once in the store's terms, the
    quantity per store source (``quantities``)."""

    sku: str
    warehouses: dict[str, WarehouseQty] = {}
    """ERP warehouse id -> its quantities."""
    quantities: dict[str, Decimal] = {}
    """Store source code -> the quantity to sell (set by the stock flow)."""
    in_stock: dict[str, bool] = {}
    """Store source code -> in stock (set by the stock flow: quantity above zero, or backorders)."""
    version: str | None = None
    """When it was read (UTC ISO time): an older reading never overwrites a newer one."""


class StoreAttribute(Model):
    """A store attribute as the store has it: its code, id and options (label -> option id)."""

    code: str
    id: str = ""
    options: dict[str, str] = {}


class ProductDraft(Model):
    """A product as the store is to hold it: the ERP's product with every id already the store's
    (option ids, category ids, attribute set, tax class, websites)."""

    sku: str
    kind: str = "simple"
    name: str
    description: str | None = None
    """None: not sent (the store owns it, or the ERP has none)."""
    price: Decimal | None = None
    weight: Decimal | None = None
    active: bool = True
    visible: bool = True
    attribute_set_id: int
    tax_class_id: int | None = None
    website_ids: list[int] = []
    values: dict[str, str] = {}
    """Store attribute code -> option id (select attributes) or text."""
    category_ids: list[str] | None = None
    """None: not sent (the store owns the links)."""
    children: list[str] = []
    """A configurable's children's store product ids."""
    options: dict[str, list[str]] = {}
    """A configurable's options: store attribute id -> option ids its children use."""
    option_labels: dict[str, str] = {}
    """Store attribute id -> its label (configurable options are shown with it)."""
    components: list[BundleComponent] = []
    stock_managed: bool = True
    """False: the ERP keeps no stock of it (a non-stock item: a service, a fee): the store sells it
    without counting (a product the store counts starts at 0, out of stock, and sells nothing)."""
    variants: list[ProductDraft] = []
    """A configurable's children as drafts, for a store whose variants live inside their product
    (Shopify: the target port says ``variants_inline``); empty otherwise."""
