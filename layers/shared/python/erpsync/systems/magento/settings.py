"""A Magento connection's own settings and the shape of its secret."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class MagentoSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    website_id: int = Field(1, ge=0)
    """The website whose customers this connection syncs (email is unique per website)."""
    store_id: int = Field(1, ge=0)
    """The store view new customers are created in."""
    page_size: int = Field(100, ge=1, le=1000)
    amounts: str = Field("base", pattern="^(base|order)$")
    """Which of an order's amounts go to the ERP: ``base``, the website's base currency (Magento's
    ``base_*`` fields; the merchant FAQ's rule and the default), or ``order``, the currency the
    customer paid in, with its rate."""
    returns_look_back_days: int = Field(90, ge=1)
    """A poll of store returns (Adobe Commerce RMAs) lists those requested this many days back: a
    return has no modification time to read changes by, so each poll reads the open window and
    queues a return again only when its status or quantities moved."""
    msi: bool = True
    """Multi-source inventory is on: stock goes to source items (off: legacy stock items)."""
    notify_invoice: bool = False
    """Invoices made from the ERP's e-mail the customer (Magento's ``notify``)."""


class MagentoSecret(BaseModel):
    """Secrets Manager JSON: ``{"base_url": "https://shop/rest/default", "username", "password"}``."""

    model_config = ConfigDict(extra="ignore")

    base_url: str = Field(min_length=1)
    username: str = Field(min_length=1)
    password: str = Field(min_length=1)
    webhook_secret: str = ""
    """Shared secret of the signed webhooks (also accepted from the webhooks secret)."""
