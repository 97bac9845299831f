"""QuickBooks Online as an ERP: what it serves, its settings, its secret, its webhooks."""

from __future__ import annotations

from typing import Any

from erpsync.model import ChangeNotice
from erpsync.systems.plugin import SOURCE, TARGET, Plugin, Wiring
from erpsync.systems.ports import System
from erpsync.systems.quickbooks import webhooks
from erpsync.systems.quickbooks.settings import QuickBooksSecret, QuickBooksSettings


def connect(wiring: Wiring) -> System:
    from erpsync.systems.oauth import TokenKeeper, refresh_grant
    from erpsync.systems.quickbooks.adapter import QuickBooksSystem
    from erpsync.systems.quickbooks.client import QuickBooksClient

    secret = wiring.secret
    assert isinstance(secret, QuickBooksSecret)

    def refresh(stored: dict[str, Any]) -> dict[str, str]:
        return refresh_grant(
            str(stored.get("token_url") or secret.token_url),
            {"grant_type": "refresh_token", "refresh_token": str(stored["refresh_token"])},
            basic=(str(stored.get("client_id")), str(stored.get("client_secret"))),
            system=wiring.connection,
        )

    keeper = TokenKeeper.wired(wiring, refresh)

    def settings() -> QuickBooksSettings:
        found = wiring.settings()
        assert isinstance(found, QuickBooksSettings)
        return found

    client = QuickBooksClient(
        secret.base_url,
        secret.realm_id,
        keeper.token,
        minor_version=settings().minor_version,
        gate=wiring.gate,
        deadline=wiring.deadline,
        name=wiring.connection,
        renew=keeper.renew,
    )
    return QuickBooksSystem(client, wiring.connection, settings)


def parse_webhook(secret: Any, body: bytes, headers: dict[str, str]) -> list[ChangeNotice]:
    return [ChangeNotice(**fields) for fields in webhooks.receive(secret, body, headers)]


PLUGIN = Plugin(
    kind="quickbooks",
    role="erp",
    serves={
        "customer": frozenset({SOURCE, TARGET}),
        "order": frozenset({TARGET}),
        "payment": frozenset({TARGET}),
        "cancellation": frozenset({TARGET}),
        "creditmemo": frozenset({TARGET}),
        "invoice": frozenset({SOURCE}),
        "category": frozenset({SOURCE}),
        "product": frozenset({SOURCE}),
        "price": frozenset({SOURCE}),
        "stock": frozenset({SOURCE}),
    },
    settings_model=QuickBooksSettings,
    secret_model=QuickBooksSecret,
    connect=connect,
    webhooks=parse_webhook,
    ceiling=(500, 10, 10),
)
