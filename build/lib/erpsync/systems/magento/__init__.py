"""Magento 2 (Open Source / Adobe Commerce) REST: client, mapping to the canonical model, ports, webhooks.

The client and adapter (httpx and the mappings) are imported when first named, not with the
package: the webhook ingress needs only ``webhooks`` and ``plugin``, and a cold start pays for
what it imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from erpsync.systems.magento.adapter import MagentoCustomers, MagentoStore, MagentoSystem
    from erpsync.systems.magento.client import Filter, MagentoClient, search_params

_WHERE = {
    "Filter": "client",
    "MagentoClient": "client",
    "search_params": "client",
    "MagentoCustomers": "adapter",
    "MagentoStore": "adapter",
    "MagentoSystem": "adapter",
}
__all__ = ["Filter", "MagentoClient", "MagentoCustomers", "MagentoStore", "MagentoSystem", "search_params"]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
