"""THE list of flows. Handlers, the webhook ingress, the operator API, the CLI, the local stack,
the demo and the template test all read it; no flow name is listed anywhere else.

A flow moves one entity in one direction between two roles (``store`` and ``erp``). Which
connections play those roles comes from the routing document in the settings; which systems can
serve an entity in a direction comes from each system's plugin. Adding a flow: one entry here,
one row in the template's ``Flows`` mapping, the entity's rules in ``flows/<entity>.py`` and the
ports it needs in each system (docs/ARCHITECTURE.md walks through the customers flows).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

STORE, ERP = "store", "erp"


@dataclass(frozen=True)
class FlowSpec:
    name: str
    """The flow's name: queue ``<stack>-<name>``, CLI argument, operator path, sync-log ``flow``."""
    entity: str
    """The canonical entity it moves (binding keys are ``<entity>#<connection>#<id>``)."""
    source: str
    """Role the records come from: ``store`` or ``erp``."""
    target: str
    """Role they are written to."""
    rules: str
    """``module:Class`` of the entity's rules (lazily imported)."""
    topics: tuple[str, ...] = ()
    """Webhook topics (canonical ``<entity>.<event>``) that ring this flow's doorbell."""
    schedule: str = "poll"
    """What the schedule does: ``poll`` (changes since the cursor), or ``none``."""
    sweep: bool = False
    """An hourly reconciliation sweep re-enqueues recent source records that have no binding."""
    needs: tuple[str, ...] = ()
    """Other entities whose ports (each side's, where its system serves it) the rules use for
    their dependencies, e.g. the customer before the order."""
    batch: int = 10
    """Queue messages per invocation (a flow that writes many records per request takes more)."""
    window: int = 1
    """Seconds the queue gathers a batch for before the invocation."""
    group: str = ""
    """A group the routes name to run it (``catalog``); a flow in a group does not run on ``*``."""
    summary: str = ""

    @property
    def logical_id(self) -> str:
        """The name in template logical ids: ``erp-customers`` -> ``ErpCustomers``."""
        return "".join(part.capitalize() for part in self.name.replace("_", "-").split("-"))

    def load_rules(self) -> type[Any]:
        module, _, cls = self.rules.partition(":")
        return getattr(importlib.import_module(module), cls)


FLOWS: tuple[FlowSpec, ...] = (
    FlowSpec(
        "customers",
        "customer",
        STORE,
        ERP,
        "erpsync.flows.customers:CustomerRules",
        topics=("customer.saved",),
        sweep=True,
        summary="store accounts -> ERP customers (created or updated, linked by email)",
    ),
    FlowSpec(
        "erp-customers",
        "customer",
        ERP,
        STORE,
        "erpsync.flows.customers:CustomerRules",
        topics=("customer.saved",),
        summary="ERP customers -> store accounts (created or updated, linked by email)",
    ),
    FlowSpec(
        "orders",
        "order",
        STORE,
        ERP,
        "erpsync.flows.orders:OrderRules",
        topics=("order.saved",),
        sweep=True,
        needs=("customer",),
        summary="store orders -> ERP sales orders, exactly once, to the cent",
    ),
    FlowSpec(
        "erp-orders",
        "order",
        ERP,
        STORE,
        "erpsync.flows.erp_orders:ErpOrderRules",
        needs=("customer",),
        summary="orders entered in the ERP -> store orders for the right customer, as the ERP charged them",
    ),
    FlowSpec(
        "payments",
        "payment",
        STORE,
        ERP,
        "erpsync.flows.payments:PaymentRules",
        topics=("order.saved",),
        summary="what store orders captured -> ERP payments applied to their sales orders, never twice",
    ),
    FlowSpec(
        "credit-memos",
        "creditmemo",
        STORE,
        ERP,
        "erpsync.flows.credit_memos:CreditMemoRules",
        topics=("creditmemo.saved",),
        summary="store credit memos (refunds) -> ERP credit memos, released and paid out by a refund, to the cent",
    ),
    FlowSpec(
        "erp-credit-memos",
        "creditmemo",
        ERP,
        STORE,
        "erpsync.flows.erp_credit_memos:ErpCreditMemoRules",
        topics=("creditmemo.saved",),
        summary="credit memos entered in the ERP -> offline store credit memos on their orders, to the cent",
    ),
    FlowSpec(
        "returns",
        "return",
        STORE,
        ERP,
        "erpsync.flows.returns:ReturnRules",
        summary="authorized store returns (Adobe Commerce RMAs) -> ERP return orders (RM), never twice",
    ),
    FlowSpec(
        "erp-returns",
        "return",
        ERP,
        STORE,
        "erpsync.flows.returns:ErpReturnRules",
        topics=("return.saved",),
        summary="what ERP return orders received -> their store returns (quantities returned, status received)",
    ),
    FlowSpec(
        "cancellations",
        "cancellation",
        STORE,
        ERP,
        "erpsync.flows.cancellations:CancellationRules",
        summary="store orders canceled after they reached the ERP -> ERP sales orders canceled",
    ),
    FlowSpec(
        "erp-cancellations",
        "cancellation",
        ERP,
        STORE,
        "erpsync.flows.cancellations:ErpCancellationRules",
        topics=("cancellation.saved",),
        summary="ERP sales orders canceled -> their store orders canceled (read back)",
    ),
    FlowSpec(
        "shipments",
        "shipment",
        ERP,
        STORE,
        "erpsync.flows.documents:ShipmentRules",
        topics=("shipment.saved",),
        summary="confirmed ERP shipments -> store shipments with tracking",
    ),
    FlowSpec(
        "invoices",
        "invoice",
        ERP,
        STORE,
        "erpsync.flows.documents:InvoiceRules",
        topics=("invoice.saved",),
        summary="released ERP invoices -> store invoices",
    ),
    FlowSpec(
        "attributes",
        "attribute",
        ERP,
        STORE,
        "erpsync.flows.attributes:AttributeRules",
        topics=("attribute.saved",),
        group="catalog",
        summary="ERP attribute definitions -> store product attributes and their options",
    ),
    FlowSpec(
        "categories",
        "category",
        ERP,
        STORE,
        "erpsync.flows.categories:CategoryRules",
        topics=("category.saved",),
        group="catalog",
        summary="ERP item sales categories -> store categories (parents first, moves followed)",
    ),
    FlowSpec(
        "products",
        "product",
        ERP,
        STORE,
        "erpsync.flows.products:ProductRules",
        topics=("product.saved",),
        needs=("attribute", "category"),
        group="catalog",
        summary="ERP stock, non-stock, template and kit items -> simple, virtual, configurable and bundle products",
    ),
    FlowSpec(
        "prices",
        "price",
        ERP,
        STORE,
        "erpsync.flows.prices:PriceRules",
        topics=("price.saved",),
        batch=100,
        window=5,
        group="catalog",
        summary="ERP sales prices -> store base, special and tier prices, many SKUs per request",
    ),
    FlowSpec(
        "stock",
        "stock",
        ERP,
        STORE,
        "erpsync.flows.stock:StockRules",
        topics=("stock.saved",),
        batch=100,
        window=5,
        group="catalog",
        summary="ERP stock per warehouse -> store source quantities, many SKUs per request",
    ),
)

BY_NAME: dict[str, FlowSpec] = {f.name: f for f in FLOWS}
NAMES: tuple[str, ...] = tuple(BY_NAME)


class UnknownFlow(ValueError):
    pass


def get(name: str) -> FlowSpec:
    """The flow called ``name`` (a singular entity name is accepted for a store-to-ERP flow)."""
    if name in BY_NAME:
        return BY_NAME[name]
    if f"{name}s" in BY_NAME:
        return BY_NAME[f"{name}s"]
    raise UnknownFlow(f"unknown flow {name!r}; flows are: {', '.join(NAMES)}")


def for_notice(entity: str, source_role: str) -> FlowSpec | None:
    """The flow that carries a change of ``entity`` coming from a system of ``source_role``."""
    return next((f for f in FLOWS if f.entity == entity and f.source == source_role), None)


def for_webhook(entity: str, source_role: str) -> list[FlowSpec]:
    """Every flow a webhook about ``entity`` from a system of ``source_role`` rings: those whose
    ``topics`` name ``<entity>.saved`` (a store order's save rings the orders and the payments flows)."""
    topic = f"{entity}.saved"
    return [f for f in FLOWS if f.source == source_role and topic in f.topics]
