"""An Acumatica connection's own settings and the shape of its secret."""

from __future__ import annotations

from typing import Annotated, Any

from msgspec import Meta, field

from erpsync.model.base import Model


class AcumaticaSettings(Model):
    order_type: str = "SO"
    """Sales order type of store orders."""
    erp_order_types: list[str] = field(default_factory=lambda: ["SO"])
    """Order types whose orders entered in Acumatica go to the store (the erp-orders flow)."""
    return_order_type: str = "RM"
    """Order type of the return orders made from store returns (RM, an RMA order with receipt lines;
    CR is a cash return, not this; a tenant may configure its own)."""
    return_warehouse_id: str | None = None
    """Warehouse store returns are received into (None: the order type's default)."""
    keep_store_number: bool = False
    """Store orders keep the store's number (Magento's increment id) as their Acumatica ``OrderNbr``.
    The order type must number manually (a dedicated web order type, as the merchant FAQ says); a
    number already taken by another order fails the order as ``number_taken``, naming both."""
    customer_class: str = "DEFAULT"
    """Customer class of customers erpsync creates (store groups may map to others)."""
    customer_id_prefix: str = "W"
    """Customers erpsync creates get ``<prefix><10 hex of sha256(email)>``, so a retried create finds its twin."""
    warehouse_id: str | None = None
    page_size: Annotated[int, Meta(ge=1, le=1000)] = 100
    """Rows per request of a poll (its time windows are sized to fit one page)."""
    price_currency: str | None = None
    """Only sales prices in this currency reach the store (None: every currency, i.e. a tenant
    with one)."""

    @classmethod
    def _prepare(cls, data: Any) -> Any:
        """``window_minutes`` (never used: the windows size themselves) is dropped, so settings
        that still name it load."""
        if isinstance(data, dict) and "window_minutes" in data:
            data = {k: v for k, v in data.items() if k != "window_minutes"}
        return data


class AcumaticaSecret(Model, forbid_unknown_fields=False):
    """Secrets Manager JSON: ``{"base_url", "username", "password", "company", "branch", "endpoint"}``."""

    base_url: Annotated[str, Meta(min_length=1)]
    username: Annotated[str, Meta(min_length=1)]
    password: Annotated[str, Meta(min_length=1)]
    company: str = ""
    branch: str = ""
    endpoint: str = "Default/24.200.001"
    webhook_secret: str = ""
    """Token Acumatica's push notifications carry in ``X-Erpsync-Token``."""
