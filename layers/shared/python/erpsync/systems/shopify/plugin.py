"""Shopify as a store: what it serves, its settings, its secret, its webhooks."""

from __future__ import annotations

from typing import Any

from erpsync.model import ChangeNotice
from erpsync.systems.plugin import SOURCE, TARGET, Plugin, Wiring
from erpsync.systems.ports import System
from erpsync.systems.shopify import webhooks
from erpsync.systems.shopify.settings import ShopifySecret, ShopifySettings


def connect(wiring: Wiring) -> System:
    from erpsync.errors import AuthError
    from erpsync.systems.shopify.adapter import ShopifySystem
    from erpsync.systems.shopify.client import ShopifyClient

    secret = wiring.secret
    assert isinstance(secret, ShopifySecret)
    current = {"token": secret.access_token}

    def token() -> str:
        return current["token"]

    def renew(refused: str) -> str:
        """A token other than the one refused: the secret read again (rotated by an operator)."""
        fresh = wiring.reload_secret() if wiring.reload_secret else secret
        assert isinstance(fresh, ShopifySecret)
        if fresh.access_token and fresh.access_token != refused:
            current["token"] = fresh.access_token
            return fresh.access_token
        raise AuthError(f"{wiring.connection} refused the access token in its secret", system=wiring.connection)

    def settings() -> ShopifySettings:
        found = wiring.settings()
        assert isinstance(found, ShopifySettings)
        return found

    client = ShopifyClient(
        secret.shop,
        token,
        api_version=settings().api_version,
        gate=wiring.gate,
        deadline=wiring.deadline,
        name=wiring.connection,
        renew=renew,
    )
    return ShopifySystem(client, wiring.connection, settings)


def parse_webhook(secret: Any, body: bytes, headers: dict[str, str]) -> list[ChangeNotice]:
    return [ChangeNotice(**fields) for fields in webhooks.receive(secret, body, headers)]


PLUGIN = Plugin(
    kind="shopify",
    role="store",
    serves={
        "customer": frozenset({SOURCE, TARGET}),
        "order": frozenset({SOURCE}),
        "payment": frozenset({SOURCE}),
        "cancellation": frozenset({SOURCE, TARGET}),
        "shipment": frozenset({TARGET}),
    },
    settings_model=ShopifySettings,
    secret_model=ShopifySecret,
    connect=connect,
    webhooks=parse_webhook,
)
