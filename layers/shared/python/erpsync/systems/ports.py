"""The ports: what flows ask of a system, one small port per entity and direction, and what the
runtime hands a system (a rate ``Gate``, a ``Deadline``).

A system package implements the ports it serves (its ``plugin.py`` says which); flows only ever
see these Protocols. Every ``changes`` is a stream of pages: the poll enqueues and checkpoints
page by page, so memory stays flat whatever the number of changes.

Adapters raise the typed errors of ``erpsync.errors``: ``RetryableError`` (and its
``RateLimitedError``/``OutageError``) for what may pass, ``PermanentError`` subclasses for what
will not, ``NotFoundError`` when a record asked for does not exist.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from erpsync.errors import RetryableError

if TYPE_CHECKING:  # annotations only: a flow's worker builds only the models it moves
    from erpsync.model import (
        ChangeNotice,
        CreditMemo,
        CreditMemoDraft,
        CreditNote,
        Customer,
        ErpCreditMemo,
        ErpOrderRef,
        ErpPayment,
        ErpReturnRef,
        Invoice,
        Order,
        PaymentDraft,
        ReturnDraft,
        ReturnReceipt,
        ReturnRequest,
        SalesOrderDraft,
        Shipment,
        StoreRefundDraft,
        StoreRefundRef,
        StoreReturnState,
    )
    from erpsync.model.catalog import Attribute, Category, PriceSet, ProductDraft, StockLevel, StoreAttribute

# -- what the runtime hands a system ------------------------------------------------------------


class Gate(Protocol):
    """A slot under a system's shared ceilings (``erpsync.state.guards.SystemGate`` in Lambda)."""

    def request(self, wait_s: float | None = None) -> AbstractContextManager[None]:
        """Held for the duration of one request; may wait (at most ``wait_s``), or raise when no
        slot comes in time."""
        ...

    def throttled(self, retry_after_s: float | None) -> None:
        """The system answered 429: slow every worker down."""
        ...

    def answered(self, status: int | None) -> None:
        """The status the system answered a request with (None: no answer at all)."""
        ...

    def abandoned(self) -> None:
        """We gave up on the answer (a read timeout): the system may still be working on it."""
        ...


class PointBucket(Protocol):
    """A bucket of query points that refills at a rate (Shopify's query cost), shared by every
    worker of a connection (``erpsync.state.guards.PointsBucket`` in Lambda)."""

    def take(self, points: float) -> float:
        """Reserve ``points`` now: 0 when taken (or while nothing is known of the bucket), else the
        seconds until the bucket could pay them (nothing reserved)."""
        ...

    def settle(self, status: Mapping[str, Any] | None, refund: float = 0.0, throttled: bool = False) -> None:
        """An answer's throttle status (``currentlyAvailable``, ``maximumAvailable``,
        ``restoreRate``) learned: ``refund`` is what was reserved beyond what the query cost (negative
        when it cost more); ``throttled``: the system refused it, its figure is the truth."""
        ...


READS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class Deadline:
    """The time left in the current invocation: every HTTP timeout fits inside it.

    The runtime calls ``start`` at each invocation with the Lambda's remaining time; a client asks
    ``timeout(default)`` before each request. With no deadline set, the default applies.
    """

    margin_s: float = 3.0
    """Kept free at the end of the invocation (release leases, report the batch)."""
    min_request_s: float = 1.0
    """A read needs at least this long; with less left it is not sent."""
    min_write_s: float = 5.0
    """A write needs at least this long: one cut short may still be applied after we gave up, and
    then waits ``in_doubt_wait_s`` before it is looked for again."""
    _ends_at: float | None = field(default=None, repr=False)

    def start(self, remaining_s: float | None) -> None:
        self._ends_at = None if remaining_s is None else time.monotonic() + remaining_s

    def clear(self) -> None:
        self._ends_at = None

    def remaining(self) -> float | None:
        """Seconds usable before the margin (None: no deadline)."""
        if self._ends_at is None:
            return None
        return self._ends_at - time.monotonic() - self.margin_s

    def floor(self, method: str = "GET") -> float:
        """The least time a request of ``method`` needs (a write more than a read)."""
        return self.min_request_s if method.upper() in READS else max(self.min_request_s, self.min_write_s)

    def timeout(self, default: float, system: str = "", method: str = "GET") -> float:
        """The timeout of the next request: ``default``, cut to the time left; raises when less than
        the request's ``floor`` is left."""
        left = self.remaining()
        if left is None:
            return default
        if left < min(self.floor(method), default):
            raise RetryableError(
                f"{system or 'request'} {method.upper()} not sent: {max(left, 0):.1f}s left in this invocation",
                error_type="budget",
            )
        return min(default, left)


# -- changes as a stream -------------------------------------------------------------------------


@dataclass
class Page:
    """One page of changes and the checkpoint it proves: every change up to ``checkpoint`` has been
    read once this page and those before it are enqueued (None: not yet, keep the cursor)."""

    notices: list[ChangeNotice]
    checkpoint: datetime | None = None
    position: dict[str, Any] | None = None
    """Where an initial load stands after this page (its source's ``load_pages`` resumes from it)."""


class ChangeSource(Protocol):
    def changes(self, since: datetime) -> Iterator[Page]:
        """Pages of notices for records changed after ``since``, oldest window first."""
        ...


# -- one port per entity and direction --------------------------------------------------------------


class CustomerPort(ChangeSource, Protocol):
    """Customers on either side: email is the identity.

    An ERP's port may also offer ``id_for(email) -> str``, the id it gives customers it creates
    (derived from the email, so a retried create finds its twin); the customers flows use it to
    recognise customers made for store orders."""

    def get(self, id: str) -> Customer:
        """The customer as it is now (``source_id`` and ``version`` set)."""
        ...

    def find(self, email: str) -> list[Customer]:
        """Every customer with this email (case-insensitive); more than one is a conflict."""
        ...

    def create(self, customer: Customer) -> Customer:
        """Create the customer; the created record (``source_id``, ``version``)."""
        ...

    def update(self, id: str, customer: Customer, current: Customer | None = None) -> Customer:
        """Write ``customer``'s synced fields onto record ``id`` (``current``: as just read, to keep
        what we do not sync); the updated record."""
        ...


class OrderSource(ChangeSource, Protocol):
    """Store orders, the source of the orders flow."""

    def get(self, id: str, snapshot: dict[str, Any] | None = None) -> Order:
        """The order as it is now. A fresh ``snapshot`` (what ``changes`` read) stands in for the read."""
        ...

    def find(self, number: str) -> str | None:
        """The store's id of the order with visible number ``number``, if any."""
        ...


class OrderTarget(Protocol):
    """ERP sales orders, the target of the orders flow."""

    def find(self, number: str) -> ErpOrderRef | None:
        """The ERP order that carries the store reference ``number``, if any."""
        ...

    def create(self, draft: SalesOrderDraft) -> ErpOrderRef:
        """Create the sales order; the ref carries the ERP line numbers of each line."""
        ...


class PaymentSource(ChangeSource, Protocol):
    """What store orders have captured (``Order.paid``, ``Order.transaction_id``) or that they were
    canceled (``Order.state``), the source of the payments and the cancellations flows: one notice
    per order."""

    def get(self, id: str, snapshot: dict[str, Any] | None = None) -> Order: ...


class PaymentTarget(Protocol):
    """ERP payments applied to sales orders, the target of the payments flow."""

    def of_order(self, store_order: str, customer_id: str) -> list[ErpPayment]:
        """Every payment of ``customer_id`` that carries store order number ``store_order`` (voided
        ones too): what the ERP already holds of that order's money."""
        ...

    def create(self, draft: PaymentDraft) -> ErpPayment:
        """Create the payment, applied to the draft's sales order, not released."""
        ...

    def release(self, payment: ErpPayment) -> None:
        """Release (post) it; one already released is left as it is."""
        ...


class CreditMemoSource(ChangeSource, Protocol):
    """Store credit memos (refunds made on orders), the source of the credit-memos flow."""

    def get(self, id: str) -> CreditMemo:
        """The credit memo, with its order's number and customer email."""
        ...


class CreditMemoTarget(Protocol):
    """ERP credit memos and the refunds that pay them out, the target of the credit-memos flow."""

    def find(self, store_number: str, customer_id: str) -> ErpCreditMemo | None:
        """The credit memo of ``customer_id`` that carries store credit memo number ``store_number``."""
        ...

    def create(self, draft: CreditMemoDraft) -> ErpCreditMemo:
        """Create the credit memo, not released."""
        ...

    def release(self, memo: ErpCreditMemo) -> ErpCreditMemo:
        """Release (post) it (one already released is left so); as it is after."""
        ...

    def refunds_of(self, store_number: str, customer_id: str) -> list[ErpPayment]:
        """The refunds (voided ones too) that carry store credit memo number ``store_number``."""
        ...

    def refund(self, memo: ErpCreditMemo, draft: PaymentDraft) -> ErpPayment:
        """A refund of ``draft.amount`` applied to ``memo``, not released."""
        ...

    payments: PaymentTarget
    """Releases a refund as it does a payment."""


class CreditNoteSource(ChangeSource, Protocol):
    """Credit memos entered in the ERP, the source of the erp-credit-memos flow."""

    def get(self, id: str) -> CreditNote:
        """The credit memo, each line resolved to the sales order line it credits."""
        ...

    def mark(self, number: str, store_order: str) -> None:
        """Name store order ``store_order`` on credit memo ``number``."""
        ...


class StoreRefundTarget(Protocol):
    """Offline store credit memos, the target of the erp-credit-memos flow."""

    def find(self, order_id: str, ref: str) -> StoreRefundRef | None:
        """The credit memo of store order ``order_id`` made for ERP credit memo ``ref``, if any."""
        ...

    def create(self, draft: StoreRefundDraft) -> StoreRefundRef:
        """An offline credit memo on the draft's order of exactly ``draft.total``."""
        ...


class ReturnSource(ChangeSource, Protocol):
    """Store returns (Adobe Commerce RMAs), the source of the returns flow. A store without them
    (Magento Open Source) has no changes to give."""

    def get(self, id: str, snapshot: dict[str, Any] | None = None) -> ReturnRequest:
        """The return with its authorized lines priced as the order charged them."""
        ...


class ReturnTarget(Protocol):
    """ERP return orders, the target of the returns flow."""

    def find(self, store_number: str, customer_id: str) -> ErpReturnRef | None:
        """The return order of ``customer_id`` that carries store return ``store_number``, if any."""
        ...

    def create(self, draft: ReturnDraft) -> ErpReturnRef: ...


class ReceiptSource(ChangeSource, Protocol):
    """ERP return orders and what they received, the source of the erp-returns flow."""

    def get(self, id: str) -> ReturnReceipt: ...


class ReturnStatusTarget(Protocol):
    """Store returns told what came back, the target of the erp-returns flow."""

    def receive(self, id: str, received: dict[str, Decimal], note: str) -> StoreReturnState:
        """Record ``received`` (store order line -> units received in all) on store return ``id``
        and add ``note`` once; as the store has it after (read back)."""
        ...


class CancellationSource(ChangeSource, Protocol):
    """Orders whose cancellation may have to reach the other side: ``get`` answers an
    ``OrderStatus`` (an ERP) or the ``Order`` (a store, whose ``state`` says it)."""

    def get(self, id: str) -> Any: ...


class CancellationTarget(Protocol):
    """Canceling orders on either side: the cancellations flows' target."""

    def cancel(self, ref: str, comments: list[str] | None = None) -> str:
        """Cancel order ``ref`` (the id the order binding holds: an ERP's ``<type>/<number>``, a
        store's id); its status or state after, read back. One already canceled is left so; raises the
        system's reason when it will not (e.g. the order has shipments). ``comments`` the order does
        not hold yet are added to it (an ERP's note, a store's history)."""
        ...


class ShipmentSource(ChangeSource, Protocol):
    def get(self, id: str) -> Shipment: ...


class ShipmentTarget(Protocol):
    def find(self, order_id: str, ref: str) -> str | None:
        """The id of a shipment of ``order_id`` we created for source shipment ``ref``, if any."""
        ...

    def create(self, order_id: str, shipment: Shipment, ref: str, carrier_code: str) -> str:
        """Ship the shipment's lines (``store_line_id`` set) with its tracks; the new id."""
        ...


class InvoiceSource(ChangeSource, Protocol):
    def get(self, id: str) -> Invoice: ...


class InvoiceTarget(Protocol):
    def find(self, order_id: str, ref: str) -> str | None:
        """The id of an invoice of ``order_id`` we created for source invoice ``ref``, if any."""
        ...

    def create(self, order_id: str, invoice: Invoice, ref: str) -> str:
        """Invoice the invoice's lines (``store_line_id`` set); the new id."""
        ...


# -- the catalog (ERP -> store) -----------------------------------------------------------------


class CatalogSource(ChangeSource, Protocol):
    """An ERP's attributes, categories or products: ``get`` answers the canonical record
    (``Attribute``, ``Category`` or ``Product``)."""

    def get(self, id: str) -> Any: ...


class AttributeTarget(Protocol):
    def find(self, code: str) -> StoreAttribute | None: ...

    def create(self, code: str, attribute: Attribute) -> StoreAttribute:
        """Create it with its options; as read back (option ids are the store's)."""
        ...

    def add_options(self, code: str, labels: list[str]) -> StoreAttribute:
        """Add the missing option ``labels``; the store attribute as read back."""
        ...


class CategoryTarget(Protocol):
    def root(self) -> str:
        """The store category that top-level ERP categories go under."""
        ...

    def get(self, id: str) -> Any:
        """``(name, parent id)`` of store category ``id``, or None when it is gone."""
        ...

    def find(self, url_key: str, parent: str) -> str | None:
        """The id of the category with ``url_key`` under ``parent`` (a create that lost its answer)."""
        ...

    def create(self, category: Category, parent: str, url_key: str) -> str: ...

    def update(self, id: str, category: Category, parent: str) -> None:
        """Rename and move (``parent`` changed) store category ``id``."""
        ...


class ProductTarget(Protocol):
    def find(self, sku: str) -> dict[str, Any] | None:
        """The store's product ``sku`` as a neutral summary (``id``, ``type``, ...), or None."""
        ...

    def save(self, draft: ProductDraft, *, exists: bool) -> dict[str, Any]:
        """Create (``exists`` False) or overwrite product ``draft.sku`` with everything the draft
        holds (fields set to None are left as the store has them); ``{"id", ...}`` after the write."""
        ...


class PriceSource(ChangeSource, Protocol):
    def get(self, sku: str) -> PriceSet: ...


class PriceTarget(Protocol):
    def missing(self, skus: list[str]) -> set[str]:
        """The SKUs the store has no product for (yet): their prices wait for the products flow."""
        ...

    def write(self, prices: list[PriceSet]) -> dict[str, str]:
        """Write every price of each SKU (group codes already the store's); SKU -> why it failed."""
        ...


class StockSource(ChangeSource, Protocol):
    def get(self, sku: str) -> StockLevel: ...


class StockTarget(Protocol):
    def missing(self, skus: list[str]) -> set[str]:
        """The SKUs the store has no product for (yet): their stock waits for the products flow."""
        ...

    def write(self, levels: list[StockLevel]) -> dict[str, str]:
        """Write each SKU's quantities (keys already the store's sources); SKU -> why it failed."""
        ...


class System(Protocol):
    """A connected system: hands out the port of an entity in a direction ("source" or "target")."""

    kind: str
    connection: str

    def port(self, entity: str, direction: str) -> Any: ...
