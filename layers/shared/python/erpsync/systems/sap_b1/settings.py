"""An SAP Business One (Service Layer) connection's own settings and the shape of its secret."""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator


class SapB1Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    page_size: int = Field(100, ge=1, le=1000)
    """Rows per page of a read (``Prefer: odata.maxpagesize``; SAP's default is 20, its ceiling is
    a Service Layer setting: UNVERIFIED)."""
    server_timezone: str = "UTC"
    """The B1 database server's time zone (IANA): ``UpdateDate``/``UpdateTime`` are its local time."""
    card_code_prefix: str = "W"
    """Business partners erpsync creates get ``<prefix><10 hex of sha256(email)>``, so a retried
    create finds its twin."""
    bp_group_code: int | None = None
    """``GroupCode`` of the business partners erpsync creates (None: the company's default)."""
    series: int | None = None
    """Numbering series of store orders (None: the default series)."""
    warehouse_code: str | None = None
    """Warehouse of store order lines (None: each item's default)."""
    tax_code: str | None = None
    """``TaxCode`` of store order lines (B1 reckons the tax from it; with ``tax_expense_code`` an
    exempt code)."""
    freight_expense_code: int | None = None
    """Additional expense (freight) code the store's shipping is booked on."""
    tax_expense_code: int | None = None
    """Additional expense code the store's tax is booked on as charged (the order then adds up to
    the store's total); None: B1 reckons the tax from ``tax_code``."""
    currency_codes: dict[str, str] = Field(default_factory=dict)
    """Store currency (ISO 4217) -> the B1 currency code, where they differ (``{"USD": "$"}``)."""
    transfer_account: str | None = None
    """G/L account (``TransferAccount``) of store payments booked as bank transfers (every payment
    method not in ``cash_methods``); a payment rule's or ``payments.cash_account`` comes first."""
    cash_account: str | None = None
    """G/L account (``CashAccount``) of store payments whose ERP payment method is in ``cash_methods``."""
    cash_methods: list[str] = Field(default_factory=list)
    """ERP payment methods (as ``payment_methods`` maps them) booked as cash (``CashSum``), not transfers."""
    price_list: int = Field(1, ge=1)
    """The price list (``PriceListNo``) whose prices the store sells at (``ItemPrices.PriceList``)."""
    stock_warehouses: list[str] = Field(default_factory=list)
    """Warehouses (``WarehouseCode``) whose quantities the stock source reports (none: every one);
    the lane's ``catalog.stock`` sums them into one store source or maps each to its own."""

    @field_validator("server_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


class SapB1Secret(BaseModel):
    """Secrets Manager JSON: ``{"base_url": "https://<host>:50000", "company_db", "username",
    "password", "version": "v1"|"v2"}``."""

    model_config = ConfigDict(extra="ignore")

    base_url: str = Field(min_length=1)
    company_db: str = Field(min_length=1)
    username: str = Field(min_length=1)
    password: str = Field(min_length=1)
    version: Literal["v1", "v2"] = "v1"
