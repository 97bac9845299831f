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

from typing import Annotated, Any

from msgspec import Meta, field

from erpsync.model.base import Model, invalid
from erpsync.settings_doc import LEGACY_ERP_FIELDS as LEGACY_ERP_FIELDS
from erpsync.settings_doc import VERSION, merge
from erpsync.settings_doc import default_connections as default_connection_docs
from erpsync.settings_doc import migrate as migrate


class OrderSyncPreferences(Model):
    """Which store orders go to the ERP. An order left out is logged as filtered."""

    statuses: list[str] = field(default_factory=lambda: ["pending", "processing", "complete"])
    """Store statuses that sync; empty means every status."""
    require_payment_captured: bool = False
    """Only orders paid in full (e.g. captured card payments) sync."""


class ErpOrderSync(Model):
    """Which orders entered in the ERP go to the store (the connector's A-M order sync preferences)
    and how they look there. An order goes when any configured condition holds (none configured:
    every order of the ERP connection's ``erp_order_types``); one left out is logged as filtered
    with the reason."""

    statuses: list[str] = []
    """Condition: the ERP order's status is one of these (e.g. ``Open``)."""
    mapped_ship_via: bool = False
    """Condition: its ship via maps to a store shipping method."""
    paid: bool = False
    """Condition: its payments bring the unpaid balance to zero."""
    shipping_methods: dict[str, str] = {}
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


class PaymentRule(Model):
    """What happens to the payments of one store payment method (Connex's rules, per method)."""

    action: Annotated[str, Meta(pattern="^(create|skip|unpaid)$")] = "create"
    """``create`` an ERP payment for what the store captured; ``skip``: create none (the money reaches
    the ERP another way, e.g. the gateway's own integration); ``unpaid``: leave the ERP order unpaid
    (e.g. payment on account); either is logged as filtered with the rule as its reason."""
    cash_account: str | None = None
    """The ERP cash account for these payments (default: ``payments.cash_account``)."""
    payment_method: str | None = None
    """The ERP payment method for these payments (default: ``payment_methods``, as for the order)."""


class PaymentSync(Model):
    """Money the store captured -> ERP payments applied to the order's sales order."""

    release: bool = True
    """Release (post) each payment once it is created; False leaves it balanced for a person to release."""
    cash_account: str | None = None
    """The ERP cash account payments go to (None: the ERP payment method's default)."""
    rules: dict[str, PaymentRule] = {}
    """Store payment method (e.g. ``checkmo``) -> its rule; a method not listed creates payments."""

    def rule(self, method: str | None) -> PaymentRule:
        return self.rules.get(method or "") or PaymentRule()


class CreditMemoSync(Model):
    """Money the store gave back (credit memos, online or offline refunds) -> ERP credit memos."""

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


class OrderComments(Model):
    """Which order comments follow an order to the other side."""

    to_erp: Annotated[str, Meta(pattern="^(none|visible|all)$")] = "visible"
    """Store order comments written into the ERP sales order's note, when it is created and when the
    order is canceled: those the customer sees (``visible``, the default: the customer's own comment
    and what the merchant told them), every comment (``all``), or ``none``."""
    to_store: bool = True
    """A sales order canceled in the ERP cancels its store order with a comment saying so; True adds
    the ERP order's note (where the cancel's reason is written) to that comment."""


class ReturnSync(Model):
    """Store returns (Adobe Commerce RMAs) -> ERP return orders, and what the ERP received back."""

    statuses: list[str] = field(default_factory=lambda: ["authorized", "partially_authorized"])
    """Store return statuses that make an ERP return order (a pending request waits for a person
    to authorize it); the units authorized are the ones taken back."""


RULE_FIELDS_SET = ("payment_method", "shipping_method")


class RuleCondition(Model):
    """One condition on a field of the store order (``erpsync.flows.rules``)."""

    field: Annotated[str, Meta(min_length=1, pattern=r"^[a-z_]+(\.[a-z_]+)*$")]
    """A path into the canonical order: ``status``, ``payment_method``, ``channel``, ``tags``,
    ``grand_total``, ``created_at``, ``customer.email``, ``ship_to.country``, ``lines.sku`` ..."""
    op: Annotated[str, Meta(pattern="^(eq|ne|in|not_in|contains|gt|gte|lt|lte|exists)$")] = "eq"
    value: Any = None
    """What to compare with (a list for ``in``/``not_in``; a number or an ISO time for ``gt`` ...;
    text compares without case)."""


class RuleActions(Model):
    """What a rule does to the orders it holds for."""

    skip: str | None = None
    """Leave the order out, with this reason (logged as filtered, naming the rule)."""
    payment: Annotated[str, Meta(pattern="^(create|skip|unpaid)$")] | None = None
    """What the payments flow does (as ``payments.rules``, but for the orders this rule holds for)."""
    document: Annotated[str, Meta(pattern="^(sales_receipt|invoice|estimate)$")] | None = None
    """What an ERP without sales orders (QuickBooks Online) books the order as (``estimate``: an
    estimate until the store order is fulfilled, then the invoice that closes it)."""
    cash_account: str | None = None
    """The ERP account the order's payments (or its sales receipt) are deposited to."""
    set: dict[str, str] = {}
    """Order fields replaced before mapping: ``payment_method``, ``shipping_method``."""

    def __post_init__(self) -> None:
        super().__post_init__()
        wrong = sorted(set(self.set) - set(RULE_FIELDS_SET))
        if wrong:
            raise invalid("set", f"{', '.join(wrong)} cannot be set (settable: {', '.join(RULE_FIELDS_SET)})")


class OrderRule(Model):
    """Conditions on the store order -> actions (Connex-style order mapping rules)."""

    name: Annotated[str, Meta(min_length=1)]
    when: list[RuleCondition] = []
    """All must hold (none: every order)."""
    then: RuleActions


class RateLimit(Model):
    """A ceiling on one external system, held across every worker (e.g. the ERP licence)."""

    per_minute: Annotated[int, Meta(ge=1)] | None = None
    concurrent: Annotated[int, Meta(ge=1)] | None = None
    per_second: Annotated[int, Meta(ge=1)] | None = None
    """None: the system's own published one, if it has one (QuickBooks Online: 10 a second)."""


class Settings(Model):
    order_sync: OrderSyncPreferences = field(default_factory=OrderSyncPreferences)
    order_rules: list[OrderRule] = []
    """Conditions on any field of the store order -> actions (skip, set a value, payments unpaid or
    skipped, the document type, the deposit account), in order (``erpsync.flows.rules``)."""
    shipping_methods: dict[str, str] = field(
        default_factory=lambda: {
            "flatrate_flatrate": "FLATRATE",
            "tablerate_bestway": "BESTWAY",
            "freeshipping_freeshipping": "FREESHIP",
        }
    )
    """Store shipping method code -> ERP ShipVia."""
    default_ship_via: str | None = None
    payment_methods: dict[str, str] = field(
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
    carriers: dict[str, str] = field(
        default_factory=lambda: {"UPSGROUND": "ups", "UPS": "ups", "FEDEX": "fedex", "USPS": "usps", "DHL": "dhl"}
    )
    """ERP ShipVia -> store carrier code for tracking numbers (default_carrier otherwise)."""
    default_carrier: str = "custom"
    tax_id: str | None = None
    """ERP tax id that carries the store's tax as charged (required when an order has tax)."""
    customers: CustomerSync = field(default_factory=lambda: CustomerSync())
    payments: PaymentSync = field(default_factory=PaymentSync)
    credit_memos: CreditMemoSync = field(default_factory=CreditMemoSync)
    returns: ReturnSync = field(default_factory=ReturnSync)
    order_comments: OrderComments = field(default_factory=OrderComments)
    erp_orders: ErpOrderSync = field(default_factory=ErpOrderSync)
    catalog: CatalogSync = field(default_factory=lambda: CatalogSync())
    in_doubt_wait_s: Annotated[float, Meta(ge=0)] = 30.0
    """After a create whose answer was lost (timeout, dropped connection, 502/504), how long the
    target may still be applying it: a retry that does not find it waits this long before creating
    it again."""
    lookback_seconds: int = 120
    """Each poll re-reads this far behind its cursor, for clock skew between systems."""
    requeue_after_s: Annotated[int, Meta(ge=0, le=86400)] = 900
    """A change a poll queued is left out of later polls for this long, unless finished first
    (its notice is in the queue, or on the failures desk once it fails): a worker behind its queue
    is not sent the same change again on every tick. Then, still not finished, it is queued again.
    0 queues every change not finished on every poll."""
    first_poll_days: int = 7
    """With no cursor yet, the first poll reads this far back."""
    snapshot_max_age_s: Annotated[float, Meta(ge=0)] = 120.0
    """A polled order read less than this long ago is used as read (no second GET); 0 always reads."""
    lookup_before_create: bool = False
    """Look the ERP order up by store reference before every create, not only on a retry."""
    max_attempts: Annotated[int, Meta(ge=1)] = 5
    """Attempts for failures attributable to the record (not outages, 5xx, 429: those wait)."""
    give_up_after_hours: Annotated[float, Meta(gt=0)] = 96.0
    """A record still failing transiently after this long is parked in the failed queue."""
    retry_delay_cap_s: Annotated[int, Meta(ge=0, le=900)] = 900
    """Longest wait before a notice is tried again (SQS allows at most 900 s)."""
    breaker_threshold: Annotated[int, Meta(ge=1)] = 5
    """Consecutive outage-like failures of a system before every worker stops calling it."""
    breaker_open_s: Annotated[float, Meta(gt=0)] = 15.0
    """How long an open breaker stays open, or a quarter of the time the system has been down when that
    is longer (to 300 s)."""
    batch_parallelism: Annotated[int, Meta(ge=1, le=10)] = 5
    """Records of one SQS batch handled side by side, so one slow answer does not hold up the rest
    (the rate limits still cap what reaches each system)."""
    rate_limits: dict[str, RateLimit] = {}
    """Per connection id (e.g. "acumatica"): requests per minute and concurrent requests."""
    log_retention_days: int = 30
    version: int = VERSION
    connections: dict[str, Connection] = {}
    """Connection id -> connection. Absent: the deployment's store and ERP (see ``effective_connections``)."""
    routes: list[Route] = []
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


class CustomerSync(Model):
    """How customers map between the store and the ERP, and who wins when both sides changed."""

    price_classes: dict[str, str] = {}
    """Store customer group id -> ERP customer price class (and back; unmapped ones are not synced)."""
    customer_classes: dict[str, str] = {}
    """Store customer group id -> ERP customer class for customers created in the ERP."""
    owner: dict[str, str] = field(default_factory=lambda: {"contact": "store", "addresses": "store", "group": "erp"})
    """When both sides changed since the last sync: which side wins each field group
    (``contact``: names, company, phone; ``addresses``; ``group``). The losing change is logged."""


class StockSync(Model):
    """Which ERP quantities become the store's stock, and where they go."""

    quantity: Annotated[str, Meta(pattern="^(available_for_shipping|available|on_hand)$")] = "available_for_shipping"
    """The ERP quantity pushed: ``available_for_shipping`` (on hand less what is allocated or
    shipped, the default), ``available`` (less open orders too: the store's own open orders are
    then counted twice, once by the ERP and once by the store's reservations), or ``on_hand``."""
    warehouses: list[str] = []
    """ERP warehouses whose stock is sold in the store; empty: every warehouse."""
    sources: dict[str, str] = {}
    """ERP warehouse -> store (MSI) source code, one source per warehouse. Empty: the chosen
    warehouses are summed into ``default_source``."""
    default_source: str = "default"
    backorders: bool = False
    """Products stay in stock at zero or below (the store takes backorders)."""


class CatalogSync(Model):
    """How the ERP's catalog becomes store products (the ERP owns it; see docs/CATALOG.md)."""

    website_ids: list[int] = field(default_factory=lambda: [1])
    """Store websites products are assigned to (sent on every write: never left to the store)."""
    attribute_sets: dict[str, int] = {}
    """ERP item class -> store attribute set id (``default_attribute_set`` otherwise)."""
    default_attribute_set: int = 4
    tax_classes: dict[str, int] = {}
    """ERP tax category -> store tax class id (``default_tax_class`` otherwise)."""
    default_tax_class: int = 2
    non_stock_as: Annotated[str, Meta(pattern="^(virtual|simple)$")] = "virtual"
    """Store product type of ERP non-stock items."""
    bundles: bool = False
    """ERP kits become store bundle products (off: kits are left out, logged as filtered)."""
    store_owns: list[str] = []
    """Product fields the store owns (``description``, ``name``, ``visibility``, ``categories``):
    written when a product is created, never overwritten afterwards. Every other field follows the
    ERP: a change made in the store is overwritten at the product's next ERP change (logged)."""
    price_groups: dict[str, str] = {}
    """ERP customer price class -> store customer group code, for group and tier prices (price
    classes not listed are not synced)."""
    stock: StockSync = field(default_factory=StockSync)


class Connection(Model):
    """One store or ERP tenant: its kind (a registered plugin), its secret and its own settings."""

    kind: str
    role: Annotated[str, Meta(pattern="^(store|erp)$")]
    """``store`` or ``erp`` (the startup check refuses a kind that cannot play it)."""
    secret: str = ""
    """Secrets Manager name of its credentials (the plugin says what the secret holds)."""
    settings: dict[str, Any] = {}
    """The connection's own settings, validated by its plugin's settings model."""


class Route(Model):
    """A store connection and an ERP connection, the flows between them, and overrides."""

    store: str
    erp: str
    flows: list[str] = field(default_factory=lambda: ["*"])
    """Flow names from the catalogue, a group of them (``catalog``: attributes, categories,
    products, prices, stock), or ``*`` for every flow both systems serve but the groups: the
    catalog overwrites the store's products from the ERP, so it runs only where a route names it
    (``["*", "catalog"]``)."""
    overrides: dict[str, Any] = {}
    """Top-level settings that differ for this pair (merged, nested maps included)."""

    def runs(self, flow: str, group: str = "") -> bool:
        """Whether this route runs ``flow`` (a member of ``group``, when it is in one)."""
        return flow in self.flows or (group in self.flows if group else "*" in self.flows)


def default_connections() -> dict[str, Connection]:
    """The deployment's own store and ERP, from the template's parameters (ids = kinds)."""
    return {cid: Connection(**doc) for cid, doc in default_connection_docs().items()}
