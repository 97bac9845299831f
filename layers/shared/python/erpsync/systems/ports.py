"""The two Protocols every adapter implements: ``Store`` (Magento, Shopify) and ``Erp``
(Acumatica, SAP, QuickBooks). Flows only ever see these.

Adapters raise the typed errors of ``erpsync.runtime.errors``: ``RetryableError`` (and its
``RateLimitedError``/``OutageError``) for what may pass, ``PermanentError`` subclasses for what
will not, ``NotFoundError`` when a record asked for does not exist.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from erpsync.model import (
    ChangeNotice,
    Customer,
    ErpOrderRef,
    Invoice,
    Order,
    SalesOrderDraft,
    Shipment,
)


class Store(Protocol):
    """The online store: where orders come from and fulfilment goes back to."""

    name: str

    def changed_orders(self, since: datetime) -> list[ChangeNotice]:
        """Notices for every order updated after ``since`` (all pages, oldest first)."""
        ...

    def get_order(self, order_id: str, snapshot: dict[str, Any] | None = None) -> Order:
        """The order as it is now. ``order_id`` is the store's id (Magento entity_id). A fresh
        ``snapshot`` from the notice (what ``changed_orders`` read) stands in for the read."""
        ...

    def find_order_id(self, number: str) -> str | None:
        """The store's id of the order with visible reference ``number``, if any."""
        ...

    def find_shipment(self, order_id: str, ref: str) -> str | None:
        """The id of a shipment of ``order_id`` we created for ERP shipment ``ref``, if any."""
        ...

    def create_shipment(self, order_id: str, shipment: Shipment, ref: str, carrier_code: str) -> str:
        """Ship the shipment's lines (``store_line_id`` set) with its tracks; the new id.

        ``ref`` is written on the shipment (comment) so ``find_shipment`` recognises it;
        ``carrier_code`` is the store's carrier code for the tracks.
        """
        ...

    def find_invoice(self, order_id: str, ref: str) -> str | None:
        """The id of an invoice of ``order_id`` we created for ERP invoice ``ref``, if any."""
        ...

    def create_invoice(self, order_id: str, invoice: Invoice, ref: str) -> str:
        """Invoice the invoice's lines (``store_line_id`` set); the new id."""
        ...


class Erp(Protocol):
    """The ERP: where orders go and shipments and invoices come from."""

    name: str

    def find_customer(self, email: str) -> str | None:
        """The ERP customer id of the customer with this email, if any."""
        ...

    def create_customer(self, customer: Customer, customer_id: str) -> str:
        """Create the customer under ``customer_id`` (insert only; an existing one is kept)."""
        ...

    def find_order(self, number: str) -> ErpOrderRef | None:
        """The ERP order that carries the store reference ``number``, if any."""
        ...

    def create_order(self, draft: SalesOrderDraft) -> ErpOrderRef:
        """Create the sales order; the ref carries the ERP line numbers of each line."""
        ...

    def changed_shipments(self, since: datetime) -> list[ChangeNotice]:
        """Notices for every confirmed shipment changed after ``since``."""
        ...

    def get_shipment(self, shipment_id: str) -> Shipment: ...

    def changed_invoices(self, since: datetime) -> list[ChangeNotice]:
        """Notices for every released invoice changed after ``since``."""
        ...

    def get_invoice(self, invoice_id: str) -> Invoice: ...
