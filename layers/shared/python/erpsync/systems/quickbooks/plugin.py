"""QuickBooks Online as an ERP: what it serves, its settings, its secret, its webhooks."""

from __future__ import annotations

from typing import Any

from erpsync.model import ChangeNotice
from erpsync.systems.plugin import SOURCE, TARGET, Plugin, Wiring
from erpsync.systems.ports import System
from erpsync.systems.quickbooks import webhooks
from erpsync.systems.quickbooks.settings import QuickBooksSecret, QuickBooksSettings


def connect(wiring: Wiring) -> System:
    from erpsync.errors import AuthError
    from erpsync.systems.quickbooks.adapter import QuickBooksSystem
    from erpsync.systems.quickbooks.client import QuickBooksClient

    secret = wiring.secret
    assert isinstance(secret, QuickBooksSecret)
    current = {"token": secret.access_token}

    def renew(refused: str) -> str:
        """The access token in the secret read again (renewed meanwhile), if it is another one."""
        fresh = wiring.reload_secret() if wiring.reload_secret else secret
        assert isinstance(fresh, QuickBooksSecret)
        if fresh.access_token and fresh.access_token != refused:
            current["token"] = fresh.access_token
            return fresh.access_token
        raise AuthError(f"{wiring.connection} refused the access token in its secret", system=wiring.connection)

    def settings() -> QuickBooksSettings:
        found = wiring.settings()
        assert isinstance(found, QuickBooksSettings)
        return found

    client = QuickBooksClient(
        secret.base_url,
        secret.realm_id,
        lambda: current["token"],
        minor_version=settings().minor_version,
        gate=wiring.gate,
        deadline=wiring.deadline,
        name=wiring.connection,
        renew=renew,
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
    },
    settings_model=QuickBooksSettings,
    secret_model=QuickBooksSecret,
    connect=connect,
    webhooks=parse_webhook,
)
