"""A Magento connection's own settings and the shape of its secret."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from erpsync.model.base import Model


class MagentoSettings(Model):
    website_id: Annotated[int, Meta(ge=0)] = 1
    """The website whose customers this connection syncs (email is unique per website)."""
    store_id: Annotated[int, Meta(ge=0)] = 1
    """The store view new customers are created in."""
    page_size: Annotated[int, Meta(ge=1, le=1000)] = 100
    amounts: Annotated[str, Meta(pattern="^(base|order)$")] = "base"
    """Which of an order's amounts go to the ERP: ``base``, the website's base currency (Magento's
    ``base_*`` fields; the merchant FAQ's rule and the default), or ``order``, the currency the
    customer paid in, with its rate."""
    returns_look_back_days: Annotated[int, Meta(ge=1)] = 90
    """A poll of store returns (Adobe Commerce RMAs) lists those requested this many days back: a
    return has no modification time to read changes by, so each poll reads the open window and
    queues a return again only when its status or quantities moved."""
    msi: bool = True
    """Multi-source inventory is on: stock goes to source items (off: legacy stock items)."""
    notify_invoice: bool = False
    """Invoices made from the ERP's e-mail the customer (Magento's ``notify``)."""


class MagentoSecret(Model, forbid_unknown_fields=False):
    """Secrets Manager JSON: ``{"base_url": "https://shop/rest/default", "username", "password"}``."""

    base_url: Annotated[str, Meta(min_length=1)]
    username: Annotated[str, Meta(min_length=1)]
    password: Annotated[str, Meta(min_length=1)]
    webhook_secret: str = ""
    """Shared secret of the signed webhooks (also accepted from the webhooks secret)."""
