"""Acumatica contract-based REST: client, mapping to the canonical model, Erp adapter, push webhooks."""

from __future__ import annotations

from erpsync.systems.acumatica.adapter import AcumaticaErp
from erpsync.systems.acumatica.client import AcumaticaClient, AlreadyExists, PreconditionFailed, unwrap, wrap

__all__ = ["AcumaticaClient", "AcumaticaErp", "AlreadyExists", "PreconditionFailed", "unwrap", "wrap"]
