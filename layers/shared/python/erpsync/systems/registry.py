"""Which adapter serves which system name; imports a system's package only when asked for.

Credentials come from Secrets Manager (cached by Powertools Parameters for five minutes),
as a JSON document per system (see docs/DEPLOY.md for the shapes).
"""

from __future__ import annotations

from typing import Any

from erpsync.runtime.gate import Gate
from erpsync.runtime.settings import Settings
from erpsync.systems.ports import Erp, Store

SECRET_MAX_AGE_S = 300


def secret(name: str) -> dict[str, Any]:
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_secret(name, transform="json", max_age=SECRET_MAX_AGE_S)
    if not isinstance(value, dict):
        raise ValueError(f"secret {name} is not a JSON object")
    return value


def store(system: str, secret_name: str, gate: Gate | None = None) -> Store:
    cfg = secret(secret_name)
    if system == "magento":
        from erpsync.systems.magento.adapter import MagentoStore
        from erpsync.systems.magento.client import MagentoClient

        return MagentoStore(MagentoClient(cfg["base_url"], cfg["username"], cfg["password"], gate=gate))
    raise ValueError(f"unknown store system {system!r} (known: magento)")


def erp(system: str, secret_name: str, settings: Settings, gate: Gate | None = None) -> Erp:
    cfg = secret(secret_name)
    if system == "acumatica":
        from erpsync.systems.acumatica.adapter import AcumaticaErp
        from erpsync.systems.acumatica.client import AcumaticaClient

        client = AcumaticaClient(
            cfg["base_url"],
            cfg["username"],
            cfg["password"],
            cfg.get("company", ""),
            cfg.get("branch", ""),
            endpoint=cfg.get("endpoint", "Default/24.200.001"),
            gate=gate,
        )
        return AcumaticaErp(
            client,
            order_type=settings.order_type,
            customer_class=settings.customer_class,
            warehouse_id=settings.warehouse_id,
        )
    raise ValueError(f"unknown ERP system {system!r} (known: acumatica)")
