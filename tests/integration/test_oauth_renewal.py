"""Expired access tokens are renewed with the rotating refresh token by one worker at a time, and
the new tokens are stored before they are used (QuickBooks Online and Shopify, on their sims
served over real HTTP, through each plugin's ``connect`` as the runtime wires it)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from erpsync.errors import AuthError
from erpsync.systems.plugin import Wiring
from erpsync.systems.quickbooks.plugin import PLUGIN as QBO
from erpsync.systems.quickbooks.settings import QuickBooksSecret, QuickBooksSettings
from erpsync.systems.shopify.plugin import PLUGIN as SHOPIFY
from erpsync.systems.shopify.settings import ShopifySecret, ShopifySettings
from sandbox.local.stack import ServerThread
from sandbox.sims import quickbooks as qbo_sim
from sandbox.sims import shopify as shop_sim


class Vault:
    """A secret store and a lease table, as Secrets Manager and DynamoDB give them to workers."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = dict(document)
        self.saves = 0
        self.lock = threading.Lock()
        self.held: set[str] = set()

    def save(self, document: dict[str, Any]) -> None:
        with self.lock:
            self.document = dict(document)
            self.saves += 1

    @contextmanager
    def lease(self, name: str) -> Iterator[bool]:
        with self.lock:
            got = name not in self.held
            self.held.add(name)
        try:
            yield got
        finally:
            if got:
                with self.lock:
                    self.held.discard(name)


@pytest.fixture
def qbo() -> Iterator[ServerThread]:
    server = ServerThread(qbo_sim.create_app(), "qbo-sim")
    server.start()
    yield server
    server.stop()


def _qbo_system(vault: Vault) -> Any:
    def reload() -> QuickBooksSecret:
        return QuickBooksSecret.model_validate(vault.document)

    wiring = Wiring(
        "quickbooks", reload(), QuickBooksSettings, reload_secret=reload, save_secret=vault.save, lease=vault.lease
    )
    return QBO.connect(wiring)


def test_an_expired_token_is_renewed_once_by_concurrent_workers_and_stored_first(qbo: ServerThread) -> None:
    refresh = httpx.post(f"{qbo.url}/_sim/seed", json={"token": {}}).json()["token"]["refresh_token"]
    vault = Vault(
        {
            "base_url": qbo.url,
            "realm_id": qbo_sim.REALM,
            "access_token": "qbo_expired",
            "refresh_token": refresh,
            "client_id": qbo_sim.CLIENT_ID,
            "client_secret": qbo_sim.CLIENT_SECRET,
            "token_url": f"{qbo.url}/oauth2/v1/tokens/bearer",
        }
    )
    workers = [_qbo_system(vault) for _ in range(4)]
    httpx.delete(f"{qbo.url}/_sim/requests")
    errors: list[BaseException] = []

    def work(system: Any) -> None:
        try:
            system.port("customer", "target").find("nobody@example.com")
        except BaseException as exc:  # collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    requests = httpx.get(f"{qbo.url}/_sim/requests").json()["requests"]
    assert [r["path"] for r in requests].count("/oauth2/v1/tokens/bearer") == 1  # one refresher
    assert vault.saves == 1
    assert vault.document["refresh_token"] != refresh and vault.document["access_token"] != "qbo_expired"


def test_a_dead_refresh_token_says_the_app_must_be_reconnected(qbo: ServerThread) -> None:
    vault = Vault(
        {
            "base_url": qbo.url,
            "realm_id": qbo_sim.REALM,
            "access_token": "qbo_expired",
            "refresh_token": "qbo_rt_revoked",
            "client_id": qbo_sim.CLIENT_ID,
            "client_secret": qbo_sim.CLIENT_SECRET,
            "token_url": f"{qbo.url}/oauth2/v1/tokens/bearer",
        }
    )
    with pytest.raises(AuthError, match=r"invalid_grant.*reconnect the app"):
        _qbo_system(vault).port("customer", "target").find("nobody@example.com")
    assert vault.saves == 0


def test_shopify_expiring_offline_tokens_are_renewed_the_same_way() -> None:
    server = ServerThread(shop_sim.create_app(), "shopify-sim")
    server.start()
    try:
        token = httpx.post(f"{server.url}/_sim/seed", json={"token": {"expires_in": 3600}}).json()["token"]
        vault = Vault(
            {
                "shop": server.url,
                "access_token": "shpat_expired",
                "refresh_token": token["refresh_token"],
                "client_id": shop_sim.CLIENT_ID,
                "client_secret": shop_sim.CLIENT_SECRET,
            }
        )

        def reload() -> ShopifySecret:
            return ShopifySecret.model_validate(vault.document)

        system = SHOPIFY.connect(
            Wiring(
                "shopify", reload(), ShopifySettings, reload_secret=reload, save_secret=vault.save, lease=vault.lease
            )
        )
        assert system.port("customer", "target").find("nobody@example.com") == []
        assert vault.saves == 1 and vault.document["refresh_token"] != token["refresh_token"]
    finally:
        server.stop()
