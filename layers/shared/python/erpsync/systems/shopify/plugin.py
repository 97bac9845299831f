"""Shopify as a store: what it serves, its settings, its secret, its webhooks."""

from __future__ import annotations

from typing import Any

from erpsync.model import ChangeNotice
from erpsync.systems.plugin import SOURCE, TARGET, Plugin, Wiring
from erpsync.systems.ports import System
from erpsync.systems.shopify import webhooks
from erpsync.systems.shopify.settings import ShopifySecret, ShopifySettings


def connect(wiring: Wiring) -> System:
    from erpsync.systems.oauth import TokenKeeper, refresh_grant
    from erpsync.systems.shopify.adapter import ShopifySystem
    from erpsync.systems.shopify.client import ShopifyClient

    secret = wiring.secret
    assert isinstance(secret, ShopifySecret)

    def refresh(stored: dict[str, Any]) -> dict[str, str]:
        """Shopify's expiring offline tokens: the refresh grant at the shop's token endpoint."""
        shop = str(stored.get("shop") or secret.shop).rstrip("/")
        if not shop.startswith(("http://", "https://")):
            shop = f"https://{shop}"
        form = {
            "client_id": str(stored.get("client_id")),
            "client_secret": str(stored.get("client_secret")),
            "grant_type": "refresh_token",
            "refresh_token": str(stored["refresh_token"]),
        }
        return refresh_grant(f"{shop}/admin/oauth/access_token", form, system=wiring.connection)

    keeper = TokenKeeper.wired(wiring, refresh)

    def settings() -> ShopifySettings:
        found = wiring.settings()
        assert isinstance(found, ShopifySettings)
        return found

    client = ShopifyClient(
        secret.shop,
        keeper.token,
        api_version=settings().api_version,
        gate=wiring.gate,
        deadline=wiring.deadline,
        name=wiring.connection,
        renew=keeper.renew,
        points=wiring.points,
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
        "creditmemo": frozenset({SOURCE}),
        "cancellation": frozenset({SOURCE, TARGET}),
        "shipment": frozenset({TARGET}),
        "invoice": frozenset({TARGET}),
        "product": frozenset({TARGET}),
        "price": frozenset({TARGET}),
        "stock": frozenset({TARGET}),
    },
    settings_model=ShopifySettings,
    secret_model=ShopifySecret,
    connect=connect,
    webhooks=parse_webhook,
)
