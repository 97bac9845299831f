"""SAP S/4HANA through its OData v2 A2X services: client (Basic auth, CSRF per service, etags,
errors), OData v2 values, mapping to the canonical model, and its ports (orders, the generic
sold-to, outbound deliveries as shipments, billing documents as invoices).

The client and adapter (httpx and the mappings) are imported when first named, not with the
package, as the other systems do: a cold start pays for what it imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from erpsync.systems.sap_s4.adapter import (
        S4BillingDocuments,
        S4Customers,
        S4Deliveries,
        S4Orders,
        S4System,
    )
    from erpsync.systems.sap_s4.client import Missing, Refused, S4Client, Unauthorised

_WHERE = {
    "Missing": "client",
    "Refused": "client",
    "S4Client": "client",
    "Unauthorised": "client",
    "S4BillingDocuments": "adapter",
    "S4Customers": "adapter",
    "S4Deliveries": "adapter",
    "S4Orders": "adapter",
    "S4System": "adapter",
}
__all__ = [
    "Missing",
    "Refused",
    "S4BillingDocuments",
    "S4Client",
    "S4Customers",
    "S4Deliveries",
    "S4Orders",
    "S4System",
    "Unauthorised",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
