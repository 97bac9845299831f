"""Admin settings models: which connections sync what, how records map, which sync, how hard to
try. Stored (with history of who changed what) by ``erpsync.state.settings``.

- ``connections``: each store or ERP tenant erpsync talks to (id -> kind, secret, its own settings,
  validated by the kind's plugin). The connection id, not the kind, keys bindings, cursors, rate
  limits and breakers. Absent, the deployment's two connections come from the template's
  ``StoreSystem``/``ErpSystem`` parameters (ids equal to the kinds: ``magento``, ``acumatica``).
- ``routes``: which store connection syncs which flows with which ERP connection, with mapping
  overrides per pair (e.g. each Magento website to its own Acumatica branch and tax id).
- everything else: mappings and preferences shared by every route unless a route overrides them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from erpsync.settings_doc import LEGACY_ERP_FIELDS as LEGACY_ERP_FIELDS
from erpsync.settings_doc import VERSION, merge
from erpsync.settings_doc import default_connections as default_connection_docs
from erpsync.settings_doc import migrate as migrate


class OrderSyncPreferences(BaseModel):
    """Which store orders go to the ERP. An order left out is logged as filtered."""

    model_config = ConfigDict(extra="forbid")

    statuses: list[str] = Field(default_factory=lambda: ["pending", "processing", "complete"])
    """Store statuses that sync; empty means every status."""
    require_payment_captured: bool = False
    """Only orders paid in full (e.g. captured card payments) sync."""


class ErpOrderSync(BaseModel):
    """Which orders entered in the ERP go to the store (the connector's A-M order sync preferences)
    and how they look there. An order goes when any configured condition holds (none configured:
    every order of the ERP connection's ``erp_order_types``); one left out is logged as filtered
    with the reason."""

    model_config = ConfigDict(extra="forbid")

    statuses: list[str] = Field(default_factory=list)
    """Condition: the ERP order's status is one of these (e.g. ``Open``)."""
    mapped_ship_via: bool = False
    """Condition: its ship via maps to a store shipping method."""
    paid: bool = False
    """Condition: its payments bring the unpaid balance to zero."""
    shipping_methods: dict[str, str] = Field(default_factory=dict)
    """ERP ShipVia -> store shipping method (default: ``shipping_methods`` read backwards)."""
    default_shipping_method: str = "flatrate_flatrate"
    """The store shipping method of an order whose ship via maps to none."""
    payment_method: str = "checkmo"
    """The store payment method such orders carry (an offline one: the ERP holds their payments)."""

    def shipping_method(self, ship_via: str | None, store_methods: dict[str, str]) -> str | None:
        """The store shipping method of ``ship_via``, or None when it maps to none."""
        if not ship_via:
            return None
        if ship_via in self.shipping_methods:
            return self.shipping_methods[ship_via]
        return next((code for code, via in store_methods.items() if via == ship_via), None)


class PaymentRule(BaseModel):
    """What happens to the payments of one store payment method (Connex's rules, per method)."""

    model_config = ConfigDict(extra="forbid")

    action: str = Field("create", pattern="^(create|skip|unpaid)$")
    """``create`` an ERP payment for what the store captured; ``skip``: create none (the money reaches
    the ERP another way, e.g. the gateway's own integration); ``unpaid``: leave the ERP order unpaid
    (e.g. payment on account); either is logged as filtered with the rule as its reason."""
    cash_account: str | None = None
    """The ERP cash account for these payments (default: ``payments.cash_account``)."""
    payment_method: str | None = None
    """The ERP payment method for these payments (default: ``payment_methods``, as for the order)."""


class PaymentSync(BaseModel):
    """Money the store captured -> ERP payments applied to the order's sales order."""

    model_config = ConfigDict(extra="forbid")

    release: bool = True
    """Release (post) each payment once it is created; False leaves it balanced for a person to release."""
    cash_account: str | None = None
    """The ERP cash account payments go to (None: the ERP payment method's default)."""
    rules: dict[str, PaymentRule] = Field(default_factory=dict)
    """Store payment method (e.g. ``checkmo``) -> its rule; a method not listed creates payments."""

    def rule(self, method: str | None) -> PaymentRule:
        return self.rules.get(method or "") or PaymentRule()


class CreditMemoSync(BaseModel):
    """Money the store gave back (credit memos, online or offline refunds) -> ERP credit memos."""

    model_config = ConfigDict(extra="forbid")

    release: bool = True
    """Release (post) each credit memo once it is created; False leaves it balanced for a person."""
    refund: bool = True
    """Pay each released credit memo out with an ERP refund (the store gave the money back); False
    leaves it open as the customer's credit."""
    adjustment_item: str | None = None
    """The ERP non-stock item that carries a credit memo's adjustment refund or fee (required once a
    credit memo has one)."""
    cash_account: str | None = None
    """The ERP cash account refunds are paid from (default: ``payments.cash_account``)."""


class OrderComments(BaseModel):
    """Which order comments follow an order to the other side."""

    model_config = ConfigDict(extra="forbid")

    to_erp: str = Field("visible", pattern="^(none|visible|all)$")
    """Store order comments written into the ERP sales order's note, when it is created and when the
    order is canceled: those the customer sees (``visible``, the default: the customer's own comment
    and what the merchant told them), every comment (``all``), or ``none``."""
    to_store: bool = True
    """A sales order canceled in the ERP cancels its store order with a comment saying so; True adds
    the ERP order's note (where the cancel's reason is written) to that comment."""


class ReturnSync(BaseModel):
    """Store returns (Adobe Commerce RMAs) -> ERP return orders, and what the ERP received back."""

    model_config = ConfigDict(extra="forbid")

    statuses: list[str] = Field(default_factory=lambda: ["authorized", "partially_authorized"])
    """Store return statuses that make an ERP return order (a pending request waits for a person
    to authorize it); the units authorized are the ones taken back."""


RULE_FIELDS_SET = ("payment_method", "shipping_method")


class RuleCondition(BaseModel):
    """One condition on a field of the store order (``erpsync.flows.rules``)."""

    model_config = ConfigDict(extra="forbid")

    field: str = Field(min_length=1, pattern=r"^[a-z_]+(\.[a-z_]+)*$")
    """A path into the canonical order: ``status``, ``payment_method``, ``channel``, ``tags``,
    ``grand_total``, ``created_at``, ``customer.email``, ``ship_to.country``, ``lines.sku`` ..."""
    op: str = Field("eq", pattern="^(eq|ne|in|not_in|contains|gt|gte|lt|lte|exists)$")
    value: Any = None
    """What to compare with (a list for ``in``/``not_in``; a number or an ISO time for ``gt`` ...;
    text compares without case)."""


class RuleActions(BaseModel):
    """What a rule does to the orders it holds for."""

    model_config = ConfigDict(extra="forbid")

    skip: str | None = None
    """Leave the order out, with this reason (logged as filtered, naming the rule)."""
    payment: str | None = Field(None, pattern="^(create|skip|unpaid)$")
    """What the payments flow does (as ``payments.rules``, but for the orders this rule holds for)."""
    document: str | None = Field(None, pattern="^(sales_receipt|invoice|estimate)$")
    """What an ERP without sales orders (QuickBooks Online) books the order as (``estimate``: an
    estimate until the store order is fulfilled, then the invoice that closes it)."""
    cash_account: str | None = None
    """The ERP account the order's payments (or its sales receipt) are deposited to."""
    set: dict[str, str] = Field(default_factory=dict)
    """Order fields replaced before mapping: ``payment_method``, ``shipping_method``."""

    @model_validator(mode="after")
    def _settable(self) -> RuleActions:
        wrong = sorted(set(self.set) - set(RULE_FIELDS_SET))
        if wrong:
            raise ValueError(f"set: {', '.join(wrong)} cannot be set (settable: {', '.join(RULE_FIELDS_SET)})")
        return self


class OrderRule(BaseModel):
    """Conditions on the store order -> actions (Connex-style order mapping rules)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    when: list[RuleCondition] = Field(default_factory=list)
    """All must hold (none: every order)."""
    then: RuleActions


class RateLimit(BaseModel):
    """A ceiling on one external system, held across every worker (e.g. the ERP licence)."""

    model_config = ConfigDict(extra="forbid")

    per_minute: int = Field(ge=1)
    concurrent: int | None = Field(None, ge=1)


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_sync: OrderSyncPreferences = Field(default_factory=OrderSyncPreferences)
    order_rules: list[OrderRule] = Field(default_factory=list)
    """Conditions on any field of the store order -> actions (skip, set a value, payments unpaid or
    skipped, the document type, the deposit account), in order (``erpsync.flows.rules``)."""
    shipping_methods: dict[str, str] = Field(
        default_factory=lambda: {
            "flatrate_flatrate": "FLATRATE",
            "tablerate_bestway": "BESTWAY",
            "freeshipping_freeshipping": "FREESHIP",
        }
    )
    """Store shipping method code -> ERP ShipVia."""
    default_ship_via: str | None = None
    payment_methods: dict[str, str] = Field(
        default_factory=lambda: {
            "checkmo": "CHECK",
            "banktransfer": "WIRE",
            "cashondelivery": "CASH",
            "purchaseorder": "PO",
            "free": "FREE",
            "braintree": "CREDITCARD",
            "authorizenet_acceptjs": "CREDITCARD",
            "paypal_express": "PAYPAL",
            "shopify_payments": "CREDITCARD",
            "manual": "CHECK",
            "paypal": "PAYPAL",
        }
    )
    """Store payment method code -> ERP PaymentMethod (Magento's method codes; Shopify's payment
    gateway names, e.g. ``shopify_payments``, ``manual``)."""
    default_payment_method: str | None = None
    carriers: dict[str, str] = Field(
        default_factory=lambda: {"UPSGROUND": "ups", "UPS": "ups", "FEDEX": "fedex", "USPS": "usps", "DHL": "dhl"}
    )
    """ERP ShipVia -> store carrier code for tracking numbers (default_carrier otherwise)."""
    default_carrier: str = "custom"
    tax_id: str | None = None
    """ERP tax id that carries the store's tax as charged (required when an order has tax)."""
    customers: CustomerSync = Field(default_factory=lambda: CustomerSync())
    payments: PaymentSync = Field(default_factory=PaymentSync)
    credit_memos: CreditMemoSync = Field(default_factory=CreditMemoSync)
    returns: ReturnSync = Field(default_factory=ReturnSync)
    order_comments: OrderComments = Field(default_factory=OrderComments)
    erp_orders: ErpOrderSync = Field(default_factory=ErpOrderSync)
    catalog: CatalogSync = Field(default_factory=lambda: CatalogSync())
    in_doubt_wait_s: float = Field(30.0, ge=0)
    """After a create whose answer was lost (timeout, dropped connection, 502/504), how long the
    target may still be applying it: a retry that does not find it waits this long before creating
    it again."""
    lookback_seconds: int = 120
    """Each poll re-reads this far behind its cursor, for clock skew between systems."""
    requeue_after_s: int = Field(900, ge=0, le=86400)
    """A change a poll queued is left out of later polls for this long, unless finished first
    (its notice is in the queue, or on the failures desk once it fails): a worker behind its queue
    is not sent the same change again on every tick. Then, still not finished, it is queued again.
    0 queues every change not finished on every poll."""
    first_poll_days: int = 7
    """With no cursor yet, the first poll reads this far back."""
    snapshot_max_age_s: float = Field(120.0, ge=0)
    """A polled order read less than this long ago is used as read (no second GET); 0 always reads."""
    lookup_before_create: bool = False
    """Look the ERP order up by store reference before every create, not only on a retry."""
    max_attempts: int = Field(5, ge=1)
    """Attempts for failures attributable to the record (not outages, 5xx, 429: those wait)."""
    give_up_after_hours: float = Field(96.0, gt=0)
    """A record still failing transiently after this long is parked in the failed queue."""
    retry_delay_cap_s: int = Field(900, ge=0, le=900)
    """Longest wait before a notice is tried again (SQS allows at most 900 s)."""
    breaker_threshold: int = Field(5, ge=1)
    """Consecutive outage-like failures of a system before every worker stops calling it."""
    breaker_open_s: float = Field(15.0, gt=0)
    """How long an open breaker stays open, or a quarter of the time the system has been down when that
    is longer (to 300 s)."""
    batch_parallelism: int = Field(5, ge=1, le=10)
    """Records of one SQS batch handled side by side, so one slow answer does not hold up the rest
    (the rate limits still cap what reaches each system)."""
    rate_limits: dict[str, RateLimit] = Field(default_factory=dict)
    """Per connection id (e.g. "acumatica"): requests per minute and concurrent requests."""
    log_retention_days: int = 30
    version: int = VERSION
    connections: dict[str, Connection] = Field(default_factory=dict)
    """Connection id -> connection. Absent: the deployment's store and ERP (see ``effective_connections``)."""
    routes: list[Route] = Field(default_factory=list)
    """Which flows run between which connections. Absent: every flow between the two connections."""

    def effective_connections(self) -> dict[str, Connection]:
        """The connections in force: those stored, over the deployment's own two."""
        found = dict(default_connections())
        for cid, conn in self.connections.items():
            base = found.get(cid)
            found[cid] = conn if base is None else conn.model_copy(update={"secret": conn.secret or base.secret})
        return found

    def effective_routes(self) -> list[Route]:
        if self.routes:
            return self.routes
        conns = self.effective_connections()
        stores = [c for c, v in conns.items() if v.role == "store"]
        erps = [c for c, v in conns.items() if v.role == "erp"]
        return [Route(store=stores[0], erp=erps[0])] if stores and erps else []

    def for_route(self, route: Route) -> Settings:
        """These settings with the route's overrides merged in (nested maps merge)."""
        if not route.overrides:
            return self
        return Settings.model_validate(merge(self.model_dump(mode="json"), route.overrides))


class CustomerSync(BaseModel):
    """How customers map between the store and the ERP, and who wins when both sides changed."""

    model_config = ConfigDict(extra="forbid")

    price_classes: dict[str, str] = Field(default_factory=dict)
    """Store customer group id -> ERP customer price class (and back; unmapped ones are not synced)."""
    customer_classes: dict[str, str] = Field(default_factory=dict)
    """Store customer group id -> ERP customer class for customers created in the ERP."""
    owner: dict[str, str] = Field(default_factory=lambda: {"contact": "store", "addresses": "store", "group": "erp"})
    """When both sides changed since the last sync: which side wins each field group
    (``contact``: names, company, phone; ``addresses``; ``group``). The losing change is logged."""


class StockSync(BaseModel):
    """Which ERP quantities become the store's stock, and where they go."""

    model_config = ConfigDict(extra="forbid")

    quantity: str = Field("available_for_shipping", pattern="^(available_for_shipping|available|on_hand)$")
    """The ERP quantity pushed: ``available_for_shipping`` (on hand less what is allocated or
    shipped, the default), ``available`` (less open orders too: the store's own open orders are
    then counted twice, once by the ERP and once by the store's reservations), or ``on_hand``."""
    warehouses: list[str] = Field(default_factory=list)
    """ERP warehouses whose stock is sold in the store; empty: every warehouse."""
    sources: dict[str, str] = Field(default_factory=dict)
    """ERP warehouse -> store (MSI) source code, one source per warehouse. Empty: the chosen
    warehouses are summed into ``default_source``."""
    default_source: str = "default"
    backorders: bool = False
    """Products stay in stock at zero or below (the store takes backorders)."""


class CatalogSync(BaseModel):
    """How the ERP's catalog becomes store products (the ERP owns it; see docs/CATALOG.md)."""

    model_config = ConfigDict(extra="forbid")

    website_ids: list[int] = Field(default_factory=lambda: [1])
    """Store websites products are assigned to (sent on every write: never left to the store)."""
    attribute_sets: dict[str, int] = Field(default_factory=dict)
    """ERP item class -> store attribute set id (``default_attribute_set`` otherwise)."""
    default_attribute_set: int = 4
    tax_classes: dict[str, int] = Field(default_factory=dict)
    """ERP tax category -> store tax class id (``default_tax_class`` otherwise)."""
    default_tax_class: int = 2
    non_stock_as: str = Field("virtual", pattern="^(virtual|simple)$")
    """Store product type of ERP non-stock items."""
    bundles: bool = False
    """ERP kits become store bundle products (off: kits are left out, logged as filtered)."""
    store_owns: list[str] = Field(default_factory=list)
    """Product fields the store owns (``description``, ``name``, ``visibility``, ``categories``):
    written when a product is created, never overwritten afterwards. Every other field follows the
    ERP: a change made in the store is overwritten at the product's next ERP change (logged)."""
    price_groups: dict[str, str] = Field(default_factory=dict)
    """ERP customer price class -> store customer group code, for group and tier prices (price
    classes not listed are not synced)."""
    stock: StockSync = Field(default_factory=StockSync)


class Connection(BaseModel):
    """One store or ERP tenant: its kind (a registered plugin), its secret and its own settings."""

    model_config = ConfigDict(extra="forbid")

    kind: str
    role: str = Field(pattern="^(store|erp)$")
    """``store`` or ``erp`` (the startup check refuses a kind that cannot play it)."""
    secret: str = ""
    """Secrets Manager name of its credentials (the plugin says what the secret holds)."""
    settings: dict[str, Any] = Field(default_factory=dict)
    """The connection's own settings, validated by its plugin's settings model."""


class Route(BaseModel):
    """A store connection and an ERP connection, the flows between them, and overrides."""

    model_config = ConfigDict(extra="forbid")

    store: str
    erp: str
    flows: list[str] = Field(default_factory=lambda: ["*"])
    """Flow names from the catalogue, a group of them (``catalog``: attributes, categories,
    products, prices, stock), or ``*`` for every flow both systems serve but the groups: the
    catalog overwrites the store's products from the ERP, so it runs only where a route names it
    (``["*", "catalog"]``)."""
    overrides: dict[str, Any] = Field(default_factory=dict)
    """Top-level settings that differ for this pair (merged, nested maps included)."""

    def runs(self, flow: str, group: str = "") -> bool:
        """Whether this route runs ``flow`` (a member of ``group``, when it is in one)."""
        return flow in self.flows or (group in self.flows if group else "*" in self.flows)


def default_connections() -> dict[str, Connection]:
    """The deployment's own store and ERP, from the template's parameters (ids = kinds)."""
    return {cid: Connection(**doc) for cid, doc in default_connection_docs().items()}


Settings.model_rebuild()
