"""An Acumatica connection's own settings and the shape of its secret."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AcumaticaSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_type: str = "SO"
    """Sales order type of store orders."""
    customer_class: str = "DEFAULT"
    """Customer class of customers erpsync creates (store groups may map to others)."""
    customer_id_prefix: str = "W"
    """Customers erpsync creates get ``<prefix><10 hex of sha256(email)>``, so a retried create finds its twin."""
    warehouse_id: str | None = None
    page_size: int = Field(100, ge=1, le=1000)
    window_minutes: int = Field(60, ge=1)
    """Acumatica has no ``$orderby``: polls read changes in time windows this long, paged inside,
    and checkpoint after each window."""


class AcumaticaSecret(BaseModel):
    """Secrets Manager JSON: ``{"base_url", "username", "password", "company", "branch", "endpoint"}``."""

    model_config = ConfigDict(extra="ignore")

    base_url: str = Field(min_length=1)
    username: str = Field(min_length=1)
    password: str = Field(min_length=1)
    company: str = ""
    branch: str = ""
    endpoint: str = "Default/24.200.001"
    webhook_secret: str = ""
    """Token Acumatica's push notifications carry in ``X-Erpsync-Token``."""
