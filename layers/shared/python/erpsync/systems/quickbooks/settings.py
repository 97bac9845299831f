"""A QuickBooks Online connection's own settings and the shape of its secret."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from erpsync.model.base import Model


class QuickBooksSettings(Model):
    minor_version: Annotated[int, Meta(ge=75)] = 75
    """``minorversion`` on every request (1 to 74 are retired)."""
    documents: Annotated[str, Meta(pattern="^(auto|sales_receipt|invoice|estimate)$")] = "auto"
    """What a store order becomes (QuickBooks Online has no sales order): ``auto`` a sales receipt
    when the store captured the whole order at checkout, else an invoice (its payments follow as
    payments applied to it); or always one of them; or ``estimate`` ("sync twice"): an estimate
    while the store order is not fulfilled, and once it is, the invoice that closes the estimate."""
    shipping_item: str = "Shipping"
    """The item (name) freight is booked on: a service item, or the ``SHIPPING_ITEM_ID`` of a
    company with shipping turned on in its sales form settings."""
    deposit_account: str | None = None
    """Account id sales receipts and payments are deposited to, and refund receipts paid back from
    (None: the company's Undeposited Funds)."""
    taxable_code: str = "TAX"
    """The tax code of the lines of an order with tax (US automated sales tax: ``TAX``/``NON``);
    the order's tax goes as ``TxnTaxDetail.TotalTax``, which automated sales tax honours."""
    page_size: Annotated[int, Meta(ge=1, le=1000)] = 200


class QuickBooksSecret(Model, forbid_unknown_fields=False):
    """Secrets Manager JSON: ``{"base_url": "https://quickbooks.api.intuit.com", "realm_id",
    "access_token"}`` and, to renew it, ``client_id``, ``client_secret``, ``refresh_token``;
    ``webhook_verifier`` checks ``intuit-signature``."""

    base_url: Annotated[str, Meta(min_length=1)]
    realm_id: Annotated[str, Meta(min_length=1)]
    access_token: str = ""
    client_id: str = ""
    client_secret: str = ""
    refresh_token: str = ""
    token_url: str = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"
    """Intuit's token endpoint: an expired access token is renewed there with the refresh token,
    by one worker at a time, and both are stored back in this secret (``systems.oauth``)."""
    webhook_verifier: str = ""
