"""Access tokens that expire and refresh tokens that rotate (QuickBooks Online, Shopify's expiring
offline tokens), renewed by one worker at a time.

A refresh token is good for one use: the answer carries the next one, and the one used dies (at
once, or once the new one is used). Two workers refreshing with the same token would leave one of
them with a dead token, and a refresh whose new token is not stored disconnects the merchant. So:

1. a refused access token is first compared with the secret as stored now: another worker may
   have renewed it already;
2. otherwise the worker takes the connection's token lease; the holder reads the secret again
   (the last holder may have just finished), refreshes, and stores the new tokens before using them;
3. a worker that does not get the lease waits for the holder's new token to appear in the secret.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from erpsync.errors import AuthError
from erpsync.systems import http as transport

if TYPE_CHECKING:
    from erpsync.systems.plugin import Wiring

log = logging.getLogger("erpsync.oauth")

Refresh = Callable[[dict[str, Any]], dict[str, str]]
"""The secret as stored -> the fields to store after a refresh (``access_token``, ``refresh_token``)."""


@dataclass
class TokenKeeper:
    connection: str
    current: dict[str, Any]
    """The secret in hand (its ``access_token`` is the one in use)."""
    reload: Callable[[], dict[str, Any]]
    save: Callable[[dict[str, Any]], None] | None
    lease: Callable[[str], AbstractContextManager[bool]] | None
    refresh: Refresh
    wait_s: float = 15.0

    @classmethod
    def wired(cls, wiring: Wiring, refresh: Refresh) -> TokenKeeper:
        """A keeper of the connection's secret as the runtime hands it (``Wiring``): read again from
        its store, saved back, renewed under its lease."""
        secret = wiring.secret

        def reload() -> dict[str, Any]:
            return (wiring.reload_secret() if wiring.reload_secret else secret).model_dump()

        return cls(wiring.connection, secret.model_dump(), reload, wiring.save_secret, wiring.lease, refresh)

    def token(self) -> str:
        return str(self.current.get("access_token") or "")

    def renew(self, refused: str) -> str:
        """An access token other than ``refused``; ``AuthError`` when none can be had."""
        stored = self.reload()
        if stored.get("access_token") and stored["access_token"] != refused:
            self.current = stored
            return str(stored["access_token"])
        if not stored.get("refresh_token") or self.save is None or self.lease is None:
            raise AuthError(f"{self.connection} refused the access token in its secret, and it holds no refresh token")
        deadline = time.monotonic() + self.wait_s
        while True:
            with self.lease(f"token#{self.connection}") as held:
                if held:
                    stored = self.reload()  # the last holder may have just renewed it
                    if stored.get("access_token") and stored["access_token"] != refused:
                        self.current = stored
                        return str(stored["access_token"])
                    fields = self.refresh(stored)
                    renewed = {**stored, **fields}
                    try:
                        self.save(renewed)
                    except Exception as exc:
                        log.critical(
                            "renewed the access token of %s but could not store the new refresh token: "
                            "reconnect the app if the next refresh fails",
                            self.connection,
                            extra={"connection": self.connection},
                        )
                        raise AuthError(f"{self.connection}: could not store the renewed tokens: {exc}") from exc
                    log.info("renewed the access token", extra={"connection": self.connection})
                    self.current = renewed
                    return str(renewed["access_token"])
            if time.monotonic() > deadline:
                raise AuthError(f"{self.connection}: another worker is renewing the access token; try again")
            time.sleep(0.5)
            stored = self.reload()
            if stored.get("access_token") and stored["access_token"] != refused:
                self.current = stored
                return str(stored["access_token"])


def refresh_grant(
    url: str, form: dict[str, str], *, basic: tuple[str, str] | None = None, system: str, timeout: float = 15.0
) -> dict[str, str]:
    """POST an OAuth ``refresh_token`` grant; the new ``access_token`` and ``refresh_token``.
    A refused grant (``invalid_grant``: the refresh token was revoked or rotated away) is an
    ``AuthError`` saying the merchant must reconnect the app."""
    with transport.new_client(timeout) as http:
        try:
            headers = {"Accept": "application/json", "x-include-refresh-token-hard-expires-in": "true"}
            if basic is not None:
                response = http.post(url, data=form, auth=basic, headers=headers)
            else:
                response = http.post(url, data=form, headers=headers)
        except httpx.HTTPError as exc:
            raise AuthError(f"{system}: the token endpoint did not answer: {exc}") from exc
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or not body.get("access_token"):
        reason = body.get("error_description") or body.get("error") or response.text[:200]
        raise AuthError(
            f"{system} refused to renew the access token ({response.status_code} {reason}): "
            "the merchant must reconnect the app"
        )
    out = {"access_token": str(body["access_token"])}
    if body.get("refresh_token"):
        out["refresh_token"] = str(body["refresh_token"])
    return out
