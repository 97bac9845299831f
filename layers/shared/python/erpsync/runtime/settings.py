"""Admin settings: how records map and which sync, stored in the bindings table.

The document lives at ``pk=settings, sk=current`` as JSON; anything absent takes the default
below. Read once per process and refreshed every ``CACHE_SECONDS``.
"""

from __future__ import annotations

import json
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from erpsync.state import dynamo

CACHE_SECONDS = 60.0
KEY = {"pk": "settings", "sk": "current"}


class OrderSyncPreferences(BaseModel):
    """Which store orders go to the ERP. An order left out is logged as filtered."""

    model_config = ConfigDict(extra="forbid")

    statuses: list[str] = Field(default_factory=lambda: ["pending", "processing", "complete"])
    """Store statuses that sync; empty means every status."""
    require_payment_captured: bool = False
    """Only orders paid in full (e.g. captured card payments) sync."""


class RateLimit(BaseModel):
    """A ceiling on one external system, held across every worker (e.g. the ERP licence)."""

    model_config = ConfigDict(extra="forbid")

    per_minute: int = Field(ge=1)
    concurrent: int | None = Field(None, ge=1)


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_sync: OrderSyncPreferences = Field(default_factory=OrderSyncPreferences)
    shipping_methods: dict[str, str] = Field(
        default_factory=lambda: {
            "flatrate_flatrate": "FLATRATE",
            "tablerate_bestway": "BESTWAY",
            "freeshipping_freeshipping": "FREESHIP",
        }
    )
    """Store shipping method code -> ERP ShipVia."""
    default_ship_via: str | None = None
    payment_methods: dict[str, str] = Field(
        default_factory=lambda: {
            "checkmo": "CHECK",
            "banktransfer": "WIRE",
            "cashondelivery": "CASH",
            "purchaseorder": "PO",
            "free": "FREE",
            "braintree": "CREDITCARD",
            "authorizenet_acceptjs": "CREDITCARD",
            "paypal_express": "PAYPAL",
        }
    )
    """Store payment method code -> ERP PaymentMethod."""
    default_payment_method: str | None = None
    carriers: dict[str, str] = Field(
        default_factory=lambda: {"UPSGROUND": "ups", "UPS": "ups", "FEDEX": "fedex", "USPS": "usps", "DHL": "dhl"}
    )
    """ERP ShipVia -> store carrier code for tracking numbers (default_carrier otherwise)."""
    default_carrier: str = "custom"
    tax_id: str | None = None
    """ERP tax id that carries the store's tax as charged (required when an order has tax)."""
    customer_class: str = "DEFAULT"
    customer_id_prefix: str = "W"
    order_type: str = "SO"
    warehouse_id: str | None = None
    lookback_seconds: int = 120
    """Each poll re-reads this far behind its cursor, for clock skew between systems."""
    first_poll_days: int = 7
    """With no cursor yet, the first poll reads this far back."""
    snapshot_max_age_s: float = Field(120.0, ge=0)
    """A polled order read less than this long ago is used as read (no second GET); 0 always reads."""
    lookup_before_create: bool = False
    """Look the ERP order up by store reference before every create, not only on a retry."""
    max_attempts: int = Field(5, ge=1)
    """Attempts for failures attributable to the record (not outages, 5xx, 429: those wait)."""
    give_up_after_hours: float = Field(96.0, gt=0)
    """A record still failing transiently after this long is parked in the failed queue."""
    retry_delay_cap_s: int = Field(900, ge=0, le=900)
    """Longest wait before a notice is tried again (SQS allows at most 900 s)."""
    breaker_threshold: int = Field(5, ge=1)
    """Consecutive outage-like failures of a system before every worker stops calling it."""
    breaker_open_s: float = Field(15.0, gt=0)
    """First cool-down of an open breaker; it doubles while the system stays down (to 300 s)."""
    rate_limits: dict[str, RateLimit] = Field(default_factory=dict)
    """Per system name (e.g. "acumatica"): requests per minute and concurrent requests."""
    log_retention_days: int = 30


class SettingsStore:
    def __init__(self, table: str) -> None:
        self.table = table
        self._cached: Settings | None = None
        self._read_at = 0.0

    def load(self) -> Settings:
        if self._cached is None or time.monotonic() - self._read_at > CACHE_SECONDS:
            res = dynamo.client().get_item(TableName=self.table, Key=dynamo.to_item(KEY))
            doc = json.loads(dynamo.from_item(res["Item"])["doc"]) if "Item" in res else {}
            self._cached = Settings.model_validate(doc)
            self._read_at = time.monotonic()
        return self._cached

    def save(self, settings: Settings, *, actor: str = "cli") -> None:
        doc = settings.model_dump_json(exclude_defaults=True)
        dynamo.client().put_item(
            TableName=self.table,
            Item=dynamo.to_item({**KEY, "doc": doc, "updated_at": time.time(), "updated_by": actor}),
        )
        self._cached, self._read_at = settings, time.monotonic()

    def update(self, changes: dict[str, Any], *, actor: str = "cli") -> Settings:
        """Apply a partial document (validated) and save it."""
        current = self.load().model_dump()
        current.update(changes)
        settings = Settings.model_validate(current)
        self.save(settings, actor=actor)
        return settings
