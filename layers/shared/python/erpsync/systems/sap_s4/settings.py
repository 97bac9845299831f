"""An SAP S/4HANA connection's own settings and the shape of its secret.

Condition types, partner functions and posting-status codes are each company's configuration:
the defaults are SAP's usual ones and UNVERIFIED for any given system (SYSTEMS-NOTES §4.2).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from msgspec import Meta, field

from erpsync.model.base import Model, invalid

TRACKING_FIELDS = ("BillOfLading", "HandlingUnitExternalId", "HandlingUnitSecondExternalId")


class S4Settings(Model):
    sales_organization: Annotated[str, Meta(min_length=1, max_length=4)]
    distribution_channel: Annotated[str, Meta(min_length=1, max_length=2)]
    organization_division: Annotated[str, Meta(min_length=1, max_length=2)]
    sales_order_type: Annotated[str, Meta(min_length=1, max_length=4)] = "OR"
    sold_to: Literal["generic", "customer"] = "generic"
    """``generic``: every store order is booked on ``generic_sold_to`` (SYSTEMS-NOTES §4.5: many
    shops post web orders to one generic sold-to) and no business partner is written. ``customer``:
    each store customer is a business partner with a customer role in the orders' sales area
    (``API_BUSINESS_PARTNER``, found by e-mail, made by the customers flow or an order's first
    sync), and its orders are booked on it."""
    generic_sold_to: Annotated[str, Meta(min_length=1, max_length=10)] | None = None
    """The sold-to of every order with ``sold_to`` ``generic`` (required then)."""
    partner_grouping: Annotated[str, Meta(max_length=4)] | None = None
    """``BusinessPartnerGrouping`` of the partners erpsync makes (None: the system's default)."""
    customer_roles: list[str] = field(default_factory=lambda: ["FLCU00", "FLCU01"])
    """The roles of a partner erpsync makes (FI customer, sales customer)."""
    customer_currency: Annotated[str, Meta(max_length=5)] | None = None
    """The sales area's currency of a partner erpsync makes (None: the first order's currency)."""
    customer_payment_terms: Annotated[str, Meta(max_length=4)] | None = None
    """The sales area's payment terms of a partner erpsync makes (None: left to SAP)."""
    business_partner_service: str = "API_BUSINESS_PARTNER"
    server_timezone: str = "UTC"
    """The system's time zone (IANA): a business partner's ``LastChangeDate``/``LastChangeTime`` and
    ``CreationDate``/``CreationTime`` are its local time (S/4HANA Cloud runs on UTC; an on-premise
    system on its own zone: UNVERIFIED which one a given system stamps in)."""
    rejection_reason: Annotated[str, Meta(min_length=1, max_length=2)] | None = None
    """``SalesDocumentRjcnReason`` put on every item of an order the store cancelled (each
    company's own codes: UNVERIFIED which one; None: store cancellations are refused naming this)."""
    credit_memo_request_type: Annotated[str, Meta(min_length=1, max_length=4)] = "CR"
    """``CreditMemoRequestType`` of a store refund's credit memo request (SAP's standard ``CR``)."""
    credit_memo_reason: Annotated[str, Meta(min_length=1, max_length=3)] | None = None
    """``SDDocumentReason`` (order reason) of a store refund's credit memo request (each company's
    own codes; None: none sent, and a system that requires one refuses the request, naming it)."""
    customer_return_type: Annotated[str, Meta(min_length=1, max_length=4)] = "CBAR"
    """``CustomerReturnType`` of a store return's customer return (``CBAR``: advanced returns
    management's standard type in S/4HANA; ``RE`` classic: UNVERIFIED for a given system)."""
    return_reason: Annotated[str, Meta(min_length=1, max_length=3)] | None = None
    """``ReturnReason`` of each item of a store return (each company's own codes; None: none sent)."""
    return_follow_up: Annotated[str, Meta(min_length=1, max_length=4)] | None = None
    """``CustRetItmFollowUpActivity`` of each item (e.g. a credit memo: each company's own codes;
    None: none sent)."""
    generic_ship_to: Annotated[str, Meta(max_length=10)] | None = None
    """A ship-to partner sent with every order (None: SAP derives it from the sold-to)."""
    ship_to_partner_function: Annotated[str, Meta(min_length=1, max_length=2)] = "WE"
    """Partner function of the ship-to (internal ``WE``, external ``SH``: UNVERIFIED which one the
    API takes)."""
    quantity_unit: Annotated[str, Meta(min_length=1, max_length=3)] = "PC"
    price_condition_type: Annotated[str, Meta(min_length=1, max_length=4)] = "PR00"
    """The item price condition (``PR00``; ``PPR0`` in S/4HANA Cloud), also the list price the
    catalog's products and prices read (the condition records of the sales area and material)."""
    discount_condition_type: Annotated[str, Meta(max_length=4)] | None = None
    """Item condition for a line's discount, as a negative amount (UNVERIFIED sign); needed only
    when an order has discounts."""
    freight_condition_type: Annotated[str, Meta(max_length=4)] | None = None
    """Condition for the store's shipping, put on the first item; needed only when an order has freight."""
    fail_on_total_difference: bool = False
    """False: SAP's net total differing from the store's is logged. True: the order is held
    for review after it is created, and a retry finds and binds it."""
    total_tolerance: Decimal = Decimal("0.00")
    """The net-total difference that is not a difference."""
    tracking_source: str = "BillOfLading"
    """Where a delivery's tracking number lives: ``BillOfLading``, ``HandlingUnitExternalId``,
    ``HandlingUnitSecondExternalId`` (one per handling unit), or ``text:<TextElement>`` (a header text)."""
    released_posting_statuses: list[str] = field(default_factory=lambda: ["C"])
    """``AccountingPostingStatus`` values of a billing document posted to accounting (``C``:
    UNVERIFIED), the ones the store is told about."""
    page_size: Annotated[int, Meta(ge=1, le=5000)] = 100
    delivery_look_back_days: Annotated[int, Meta(ge=0, le=31)] = 1
    """Days re-read before the cursor's day: deliveries have only a day-granular ``LastChangeDate``."""
    product_language: Annotated[str, Meta(min_length=2, max_length=2)] = "EN"
    """The language of a product's name (``A_ProductDescription``; the first one when it has none in it)."""
    virtual_product_types: list[str] = field(default_factory=lambda: ["SERV", "DIEN"])
    """``ProductType`` values of products nobody stocks (services: a virtual product in the store;
    ``SERV`` in S/4HANA Cloud, ``DIEN`` on premise: UNVERIFIED for a given system)."""
    price_changes: Literal["stamped", "sweep"] = "stamped"
    """How the prices source finds changes: ``stamped`` reads the condition records of
    ``price_condition_type`` by ``LastChangeDateTime`` (newer releases only; older ones lack the
    field); ``sweep`` reads every list price of the sales area on each poll and lets only those
    that differ from the last reading through."""
    price_currency: Annotated[str, Meta(min_length=3, max_length=5)] | None = None
    """The store's currency: a list price in another currency fails naming it (None: not checked)."""
    stock_plants: list[str] = []
    """Plants whose unrestricted stock the store sells (none named: every plant)."""
    stock_by: Literal["plant", "storage_location"] = "plant"
    """The ERP warehouse of a stock level: each plant, or each storage location (``<plant>/<location>``)."""
    sales_order_service: str = "API_SALES_ORDER_SRV"
    outbound_delivery_service: str = "API_OUTBOUND_DELIVERY_SRV;v=0002"
    billing_document_service: str = "API_BILLING_DOCUMENT_SRV"
    credit_memo_request_service: str = "API_CREDIT_MEMO_REQUEST_SRV"
    customer_return_service: str = "API_CUSTOMER_RETURN_SRV"
    product_service: str = "API_PRODUCT_SRV"
    pricing_service: str = "API_SLSPRICINGCONDITIONRECORD_SRV"
    stock_service: str = "API_MATERIAL_STOCK_SRV"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.sold_to == "generic" and not self.generic_sold_to:
            raise invalid(
                "generic_sold_to", "generic_sold_to is required when sold_to is generic (every order is booked on it)"
            )
        if self.total_tolerance < 0:
            raise invalid("total_tolerance", f"must not be negative (got {self.total_tolerance})")
        try:
            ZoneInfo(self.server_timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise invalid("server_timezone", f"unknown time zone {self.server_timezone!r}") from None
        if not (
            self.tracking_source in TRACKING_FIELDS or re.fullmatch(r"text:[A-Za-z0-9_]{1,4}", self.tracking_source)
        ):
            raise invalid(
                "tracking_source",
                f"tracking_source must be one of {', '.join(TRACKING_FIELDS)} or text:<TextElement>",
            )


class S4Secret(Model, forbid_unknown_fields=False):
    """Secrets Manager JSON: ``{"base_url": "https://<host>/sap/opu/odata/sap", "username",
    "password", "sap_client"?}`` (Basic authentication, as the recorded requests use)."""

    base_url: Annotated[str, Meta(min_length=1)]
    """Where the services are: ``<host>/sap/opu/odata/sap``."""
    username: Annotated[str, Meta(min_length=1)]
    password: Annotated[str, Meta(min_length=1)]
    sap_client: str | None = None
    """``sap-client`` sent on every request (None: the system's default client; UNVERIFIED need)."""
