"""Magento 2 as a store: what it serves, its settings, its secret, its webhooks."""

from __future__ import annotations

from typing import Any

from erpsync.model import ChangeNotice
from erpsync.systems.magento import webhooks
from erpsync.systems.magento.settings import MagentoSecret, MagentoSettings
from erpsync.systems.plugin import SOURCE, TARGET, Plugin, Wiring
from erpsync.systems.ports import System


def connect(wiring: Wiring) -> System:
    from erpsync.systems.magento.adapter import MagentoSystem
    from erpsync.systems.magento.client import MagentoClient

    secret = wiring.secret
    assert isinstance(secret, MagentoSecret)

    def credentials() -> tuple[str, str]:
        fresh = wiring.reload_secret() if wiring.reload_secret else secret
        assert isinstance(fresh, MagentoSecret)
        return fresh.username, fresh.password

    def settings() -> MagentoSettings:
        current = wiring.settings()
        assert isinstance(current, MagentoSettings)
        return current

    client = MagentoClient(
        secret.base_url,
        secret.username,
        secret.password,
        gate=wiring.gate,
        deadline=wiring.deadline,
        name=wiring.connection,
        credentials=credentials,
    )
    return MagentoSystem(client, wiring.connection, settings)


def parse_webhook(secret: Any, body: bytes, headers: dict[str, str]) -> list[ChangeNotice]:
    """Verify (when a secret is configured) and parse a signed Magento webhook."""
    return [ChangeNotice(**fields) for fields in webhooks.receive(secret, body, headers)]


PLUGIN = Plugin(
    kind="magento",
    role="store",
    serves={
        "customer": frozenset({SOURCE, TARGET}),
        "order": frozenset({SOURCE, TARGET}),
        "payment": frozenset({SOURCE}),
        "creditmemo": frozenset({SOURCE, TARGET}),
        "return": frozenset({SOURCE, TARGET}),
        "cancellation": frozenset({SOURCE, TARGET}),
        "shipment": frozenset({TARGET}),
        "invoice": frozenset({TARGET}),
        "attribute": frozenset({TARGET}),
        "category": frozenset({TARGET}),
        "product": frozenset({TARGET}),
        "price": frozenset({TARGET}),
        "stock": frozenset({TARGET}),
    },
    settings_model=MagentoSettings,
    secret_model=MagentoSecret,
    connect=connect,
    webhooks=parse_webhook,
)
