"""A Shopify connection's own settings and the shape of its secret."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from erpsync.model.base import Model


class ShopifySettings(Model):
    api_version: Annotated[str, Meta(pattern=r"^\d{4}-\d{2}$")] = "2025-01"
    """The Admin API version in the URL. erpsync's queries are checked against the official
    2025-01 schema; Shopify serves a version no longer supported as the oldest supported one."""
    page_size: Annotated[int, Meta(ge=1, le=250)] = 25
    """Orders and customers per page of a poll (light rows: an order is read whole by its worker)."""
    overlap_s: Annotated[int, Meta(ge=0, le=3600)] = 120
    """A poll reads this many seconds before its cursor again: Shopify's search index lags behind
    writes, so a change made just before the last poll may have been invisible to it. What is read
    twice is dropped by the seen-versions filter."""
    amounts: Annotated[str, Meta(pattern="^(shop|presentment)$")] = "shop"
    """Which money of an order goes to the ERP: ``shop``, the shop's currency (the default), or
    ``presentment``, the currency the customer paid in."""
    location_id: str | None = None
    """The location (``gid://shopify/Location/...``) ERP shipments are fulfilled from when an
    order's fulfillment orders sit at several; None: wherever each line's fulfillment order is."""
    notify_customer: bool = True
    """Shopify emails the customer the tracking of a fulfillment made from an ERP shipment."""
    locations: dict[str, str] = {}
    """ERP warehouse (the store source the stock flow names it by: ``catalog.stock.sources``, or
    ``default_source`` when the warehouses are summed) -> Shopify location: its GID, numeric id or
    name. A source not listed goes to the location of its own name."""


class ShopifySecret(Model, forbid_unknown_fields=False):
    """Secrets Manager JSON: ``{"shop": "https://my-shop.myshopify.com", "access_token": "shpat_..."}``
    and, for an app with expiring offline tokens, ``client_id``, ``client_secret``,
    ``refresh_token`` (the client renews the access token and writes the rotated refresh token back).
    ``client_secret`` also verifies webhooks (``X-Shopify-Hmac-Sha256``)."""

    shop: Annotated[str, Meta(min_length=1)]
    access_token: str = ""
    client_id: str = ""
    client_secret: str = ""
    refresh_token: str = ""
    webhook_secret: str = ""
    """The secret webhooks are signed with, when not the app's client secret."""
