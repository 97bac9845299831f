"""An SAP Business One (Service Layer) connection's own settings and the shape of its secret."""

from __future__ import annotations

from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from msgspec import Meta

from erpsync.model.base import Model, invalid


class SapB1Settings(Model):
    page_size: Annotated[int, Meta(ge=1, le=1000)] = 100
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
    currency_codes: dict[str, str] = {}
    """Store currency (ISO 4217) -> the B1 currency code, where they differ (``{"USD": "$"}``)."""
    transfer_account: str | None = None
    """G/L account (``TransferAccount``) of store payments booked as bank transfers (every payment
    method not in ``cash_methods``); a payment rule's or ``payments.cash_account`` comes first."""
    cash_account: str | None = None
    """G/L account (``CashAccount``) of store payments whose ERP payment method is in ``cash_methods``."""
    cash_methods: list[str] = []
    """ERP payment methods (as ``payment_methods`` maps them) booked as cash (``CashSum``), not transfers."""
    price_list: Annotated[int, Meta(ge=1)] = 1
    """The price list (``PriceListNo``) whose prices the store sells at (``ItemPrices.PriceList``)."""
    stock_warehouses: list[str] = []
    """Warehouses (``WarehouseCode``) whose quantities the stock source reports (none: every one);
    the lane's ``catalog.stock`` sums them into one store source or maps each to its own."""

    def __post_init__(self) -> None:
        super().__post_init__()
        try:
            ZoneInfo(self.server_timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise invalid("server_timezone", f"unknown time zone {self.server_timezone!r}") from None


class SapB1Secret(Model, forbid_unknown_fields=False):
    """Secrets Manager JSON: ``{"base_url": "https://<host>:50000", "company_db", "username",
    "password", "version": "v1"|"v2"}``."""

    base_url: Annotated[str, Meta(min_length=1)]
    company_db: Annotated[str, Meta(min_length=1)]
    username: Annotated[str, Meta(min_length=1)]
    password: Annotated[str, Meta(min_length=1)]
    version: Literal["v1", "v2"] = "v1"
