"""SAP S/4HANA (OData v2 A2X services) as an ERP: what it serves, its settings and its secret.

Store orders in, deliveries and billing documents out, cancellations, credit memos and returns
both ways; customers as the generic sold-to or as business partners both ways (the connection's
``sold_to``); products, list prices and stock out (the catalog, where a route names it). No
webhooks (Event Mesh notifications are a later slice), so every change is polled. SAP publishes no
request ceiling for these APIs (UNVERIFIED): limit a connection with ``rate_limits``.
"""

from __future__ import annotations

from erpsync.systems.plugin import SOURCE, TARGET, Plugin, Wiring
from erpsync.systems.ports import System
from erpsync.systems.sap_s4.settings import S4Secret, S4Settings


def connect(wiring: Wiring) -> System:
    from erpsync.systems.sap_s4.adapter import S4System
    from erpsync.systems.sap_s4.client import S4Client

    secret = wiring.secret
    assert isinstance(secret, S4Secret)

    def credentials() -> tuple[str, str]:
        fresh = wiring.reload_secret() if wiring.reload_secret else secret
        assert isinstance(fresh, S4Secret)
        return fresh.username, fresh.password

    def settings() -> S4Settings:
        current = wiring.settings()
        assert isinstance(current, S4Settings)
        return current

    client = S4Client(
        secret.base_url,
        secret.username,
        secret.password,
        sap_client=secret.sap_client,
        gate=wiring.gate,
        deadline=wiring.deadline,
        name=wiring.connection,
        credentials=credentials,
    )
    return S4System(client, wiring.connection, settings)


PLUGIN = Plugin(
    kind="sap_s4",
    role="erp",
    serves={
        "customer": frozenset({SOURCE, TARGET}),
        "order": frozenset({TARGET}),
        "cancellation": frozenset({SOURCE, TARGET}),
        "creditmemo": frozenset({SOURCE, TARGET}),
        "return": frozenset({SOURCE, TARGET}),
        "shipment": frozenset({SOURCE}),
        "invoice": frozenset({SOURCE}),
        "product": frozenset({SOURCE}),
        "price": frozenset({SOURCE}),
        "stock": frozenset({SOURCE}),
    },
    settings_model=S4Settings,
    secret_model=S4Secret,
    connect=connect,
)
