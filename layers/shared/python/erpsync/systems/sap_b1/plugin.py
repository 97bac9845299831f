"""SAP Business One (Service Layer) as an ERP: what it serves, its settings and its secret.

The Service Layer sends no webhooks (SYSTEMS-NOTES §3.5): every change is polled. SAP publishes no
request ceiling for it (UNVERIFIED): limit a connection with ``rate_limits``.
"""

from __future__ import annotations

from erpsync.systems.plugin import SOURCE, TARGET, Plugin, Wiring
from erpsync.systems.ports import System
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
)
