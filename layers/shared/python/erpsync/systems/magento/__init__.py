"""Magento 2 (Open Source / Adobe Commerce) REST: client, mapping to the canonical model, Store adapter."""

from __future__ import annotations

from erpsync.systems.magento.adapter import MagentoStore
from erpsync.systems.magento.client import Filter, MagentoClient, search_params

__all__ = ["Filter", "MagentoClient", "MagentoStore", "search_params"]
