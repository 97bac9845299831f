"""Acumatica as an ERP: what it serves, its settings, its secret, its push notifications."""

from __future__ import annotations

from typing import Any

from erpsync.model import ChangeNotice
from erpsync.systems.acumatica import webhooks
from erpsync.systems.acumatica.settings import AcumaticaSecret, AcumaticaSettings
from erpsync.systems.plugin import SOURCE, TARGET, Plugin, Wiring
from erpsync.systems.ports import System


def connect(wiring: Wiring) -> System:
    from erpsync.systems.acumatica.adapter import AcumaticaSystem
    from erpsync.systems.acumatica.client import AcumaticaClient

    secret = wiring.secret
    assert isinstance(secret, AcumaticaSecret)

    def credentials() -> tuple[str, str]:
        fresh = wiring.reload_secret() if wiring.reload_secret else secret
        assert isinstance(fresh, AcumaticaSecret)
        return fresh.username, fresh.password

    def settings() -> AcumaticaSettings:
        current = wiring.settings()
        assert isinstance(current, AcumaticaSettings)
        return current

    client = AcumaticaClient(
        secret.base_url,
        secret.username,
        secret.password,
        secret.company,
        secret.branch,
        endpoint=secret.endpoint,
        gate=wiring.gate,
        deadline=wiring.deadline,
        name=wiring.connection,
        credentials=credentials,
    )
    return AcumaticaSystem(client, wiring.connection, settings)


def parse_webhook(secret: Any, body: bytes, headers: dict[str, str]) -> list[ChangeNotice]:
    """Verify (when a token is configured) and parse an Acumatica push notification."""
    return [ChangeNotice(**fields) for fields in webhooks.receive(secret, body, headers)]


PLUGIN = Plugin(
    kind="acumatica",
    role="erp",
    serves={
        "customer": frozenset({SOURCE, TARGET}),
        "order": frozenset({SOURCE, TARGET}),
        "payment": frozenset({TARGET}),
        "creditmemo": frozenset({SOURCE, TARGET}),
        "return": frozenset({SOURCE, TARGET}),
        "cancellation": frozenset({SOURCE, TARGET}),
        "shipment": frozenset({SOURCE}),
        "invoice": frozenset({SOURCE}),
        "attribute": frozenset({SOURCE}),
        "category": frozenset({SOURCE}),
        "product": frozenset({SOURCE}),
        "price": frozenset({SOURCE}),
        "stock": frozenset({SOURCE}),
    },
    settings_model=AcumaticaSettings,
    secret_model=AcumaticaSecret,
    connect=connect,
    webhooks=parse_webhook,
)
