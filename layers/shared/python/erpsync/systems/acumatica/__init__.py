"""Acumatica contract-based REST: client, mapping to the canonical model, ports, push webhooks."""

from __future__ import annotations

from erpsync.systems.acumatica.adapter import AcumaticaCustomers, AcumaticaErp, AcumaticaSystem
from erpsync.systems.acumatica.client import AcumaticaClient, AlreadyExists, PreconditionFailed, unwrap, wrap

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
