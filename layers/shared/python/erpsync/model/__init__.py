"""Canonical models: what flows speak, whatever the systems on either side.

Money is ``Decimal`` in the document's currency (``Order.currency``); quantities are
``Decimal`` too. Ids are strings on every side.
"""

from __future__ import annotations

from erpsync.model.money import allocate_proportionally, cents
from erpsync.model.records import (
    Address,
    Books,
    ChangeNotice,
    CreditLine,
    CreditMemo,
    CreditMemoDraft,
    CreditNote,
    Customer,
    DocumentLine,
    DraftLine,
    ErpCreditMemo,
    ErpOrderRef,
    ErpPayment,
    Invoice,
    Order,
    OrderLine,
    OrderStatus,
    PaymentDraft,
    RefundLine,
    SalesOrderDraft,
    Shipment,
    StoreOrderRef,
    StoreRefundDraft,
    StoreRefundRef,
    Track,
    erp_order_key,
)

__all__ = [
    "Address",
    "Books",
    "ChangeNotice",
    "CreditLine",
    "CreditMemo",
    "CreditMemoDraft",
    "CreditNote",
    "Customer",
    "DocumentLine",
    "DraftLine",
    "ErpCreditMemo",
    "ErpOrderRef",
    "ErpPayment",
    "Invoice",
    "Order",
    "OrderLine",
    "OrderStatus",
    "PaymentDraft",
    "RefundLine",
    "SalesOrderDraft",
    "Shipment",
    "StoreOrderRef",
    "StoreRefundDraft",
    "StoreRefundRef",
    "Track",
    "allocate_proportionally",
    "cents",
    "erp_order_key",
]
