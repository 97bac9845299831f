"""Acumatica contract-based REST: client, mapping to the canonical model, ports, push webhooks.

The client and adapter (httpx and the mappings) are imported when first named, not with the
package: the webhook ingress needs only ``webhooks`` and ``plugin``, and a cold start pays for
what it imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from erpsync.systems.acumatica.adapter import AcumaticaCustomers, AcumaticaErp, AcumaticaSystem
    from erpsync.systems.acumatica.client import AcumaticaClient, AlreadyExists, PreconditionFailed, unwrap, wrap

_WHERE = {
    "AcumaticaClient": "client",
    "AlreadyExists": "client",
    "PreconditionFailed": "client",
    "unwrap": "client",
    "wrap": "client",
    "AcumaticaCustomers": "adapter",
    "AcumaticaErp": "adapter",
    "AcumaticaSystem": "adapter",
}
__all__ = [
    "AcumaticaClient",
    "AcumaticaCustomers",
    "AcumaticaErp",
    "AcumaticaSystem",
    "AlreadyExists",
    "PreconditionFailed",
    "unwrap",
    "wrap",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
