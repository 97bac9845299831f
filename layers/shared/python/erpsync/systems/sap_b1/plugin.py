"""SAP Business One (Service Layer) as an ERP: what it serves, its settings, its secret, its push.

The Service Layer sends no webhooks (SYSTEMS-NOTES §3.4): every change is polled, and a push whose
body erpsync defines (``webhooks``, sent by a B1if scenario or a small sender from the
``SBO_SP_PostTransactionNotice`` procedure) brings a change sooner. SAP publishes no request
ceiling for the Service Layer (UNVERIFIED): limit a connection with ``rate_limits``.
"""

from __future__ import annotations

from typing import Any

from erpsync.model import ChangeNotice
from erpsync.systems.plugin import SOURCE, TARGET, Plugin, Wiring
from erpsync.systems.ports import System
from erpsync.systems.sap_b1 import webhooks
from erpsync.systems.sap_b1.settings import SapB1Secret, SapB1Settings


def connect(wiring: Wiring) -> System:
    from erpsync.systems.sap_b1.adapter import SapB1System
    from erpsync.systems.sap_b1.client import SapB1Client

    secret = wiring.secret
    assert isinstance(secret, SapB1Secret)

    def credentials() -> tuple[str, str]:
        fresh = wiring.reload_secret() if wiring.reload_secret else secret
        assert isinstance(fresh, SapB1Secret)
        return fresh.username, fresh.password

    def settings() -> SapB1Settings:
        current = wiring.settings()
        assert isinstance(current, SapB1Settings)
        return current

    client = SapB1Client(
        secret.base_url,
        secret.company_db,
        secret.username,
        secret.password,
        version=secret.version,
        gate=wiring.gate,
        deadline=wiring.deadline,
        name=wiring.connection,
        credentials=credentials,
    )
    return SapB1System(client, wiring.connection, settings)


def parse_webhook(secret: Any, body: bytes, headers: dict[str, str]) -> list[ChangeNotice]:
    return [ChangeNotice(**fields) for fields in webhooks.receive(secret, body, headers)]


PLUGIN = Plugin(
    kind="sap_b1",
    role="erp",
    serves={
        "customer": frozenset({SOURCE, TARGET}),
        "order": frozenset({TARGET}),
        "payment": frozenset({TARGET}),
        "cancellation": frozenset({SOURCE, TARGET}),
        "creditmemo": frozenset({SOURCE, TARGET}),
        "return": frozenset({SOURCE, TARGET}),
        "shipment": frozenset({SOURCE}),
        "invoice": frozenset({SOURCE}),
        "product": frozenset({SOURCE}),
        "price": frozenset({SOURCE}),
        "stock": frozenset({SOURCE}),
    },
    settings_model=SapB1Settings,
    secret_model=SapB1Secret,
    connect=connect,
    webhooks=parse_webhook,
)
