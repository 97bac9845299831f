"""Magento 2 (Open Source / Adobe Commerce) REST: client, mapping to the canonical model, ports, webhooks."""

from __future__ import annotations

from erpsync.systems.magento.adapter import MagentoCustomers, MagentoStore, MagentoSystem
from erpsync.systems.magento.client import Filter, MagentoClient, search_params

__all__ = ["Filter", "MagentoClient", "MagentoCustomers", "MagentoStore", "MagentoSystem", "search_params"]
