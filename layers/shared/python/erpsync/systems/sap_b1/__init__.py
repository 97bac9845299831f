"""SAP Business One through its Service Layer: client (sessions, paging, errors), mapping to the
canonical model, and its ports (customers, orders, payments, cancellations, credit memos,
returns, deliveries as shipments, invoices, and the catalog's products, prices and stock).

The client and adapter (httpx and the mappings) are imported when first named, not with the
package, as the other systems do: a cold start pays for what it imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from erpsync.systems.sap_b1.adapter import (
        SapB1Cancellations,
        SapB1CreditMemos,
        SapB1Customers,
        SapB1Deliveries,
        SapB1Invoices,
        SapB1Orders,
        SapB1Returns,
        SapB1System,
    )
    from erpsync.systems.sap_b1.catalog import SapB1Prices, SapB1Products, SapB1Stock
    from erpsync.systems.sap_b1.client import AlreadyExists, Missing, Refused, SapB1Client, Unauthorised

_WHERE = {
    "AlreadyExists": "client",
    "Missing": "client",
    "Refused": "client",
    "SapB1Client": "client",
    "Unauthorised": "client",
    "SapB1Cancellations": "adapter",
    "SapB1CreditMemos": "adapter",
    "SapB1Customers": "adapter",
    "SapB1Deliveries": "adapter",
    "SapB1Invoices": "adapter",
    "SapB1Orders": "adapter",
    "SapB1Returns": "adapter",
    "SapB1System": "adapter",
    "SapB1Prices": "catalog",
    "SapB1Products": "catalog",
    "SapB1Stock": "catalog",
}
__all__ = [
    "AlreadyExists",
    "Missing",
    "Refused",
    "SapB1Cancellations",
    "SapB1Client",
    "SapB1CreditMemos",
    "SapB1Customers",
    "SapB1Deliveries",
    "SapB1Invoices",
    "SapB1Orders",
    "SapB1Prices",
    "SapB1Products",
    "SapB1Returns",
    "SapB1Stock",
    "SapB1System",
    "Unauthorised",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
