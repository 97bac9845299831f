"""SAP Business One's ports: customers (business partners, both ways) and the orders target.

Changes are polled on the two stamp fields the Service Layer has, done right (SYSTEMS-NOTES §3.5):
``UpdateDate gt D or (UpdateDate eq D and UpdateTime ge T)``, never ``UpdateDate ge D and
UpdateTime ge T`` (which misses a later day's change made at an earlier hour). The pages are a
keyset (ordered by date, time and key; each request asks for the rows after the last one read), so
a record changed while the poll runs moves to the end instead of shifting another out of a page.
A business partner SAP created without setting ``UpdateDate`` is found by a second poll on
``CreateDate``/``CreateTime``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from erpsync.errors import NotFoundError, PermanentError
from erpsync.model import ChangeNotice, Customer, ErpOrderRef, SalesOrderDraft
from erpsync.systems.ports import Page
from erpsync.systems.sap_b1 import mapping
from erpsync.systems.sap_b1.client import AlreadyExists, SapB1Client, literal
from erpsync.systems.sap_b1.settings import SapB1Settings

log = logging.getLogger(__name__)
STAMPS = (("UpdateDate", "UpdateTime"), ("CreateDate", "CreateTime"))
PARTNER_CHANGE_FIELDS = ["CardCode", "UpdateDate", "UpdateTime", "CreateDate", "CreateTime"]
ORDER_FIELDS = ["DocEntry", "DocNum", "NumAtCard", "CardCode", "Cancelled", "DocumentStatus", "DocumentLines"]


class DuplicateNumAtCard(PermanentError):
    """Two live B1 orders carry one store number: which one is the store's is for a person to say."""

    error_type = "duplicate_number"


def changed_filter(day_field: str, time_field: str, day: str, clock: str) -> str:
    """Records stamped at or after ``day`` ``clock`` (server-local date and time)."""
    d, t = literal(day), literal(clock)
    return f"({day_field} gt {d} or ({day_field} eq {d} and {time_field} ge {t}))"


def after_filter(day_field: str, time_field: str, key_field: str, last: tuple[str, str, Any]) -> str:
    """Records that come after ``last`` (date, time, key) in ``day, time, key`` order."""
    d, t, k = (literal(v) for v in last)
    return (
        f"({day_field} gt {d} or ({day_field} eq {d} and ({time_field} gt {t} or "
        f"({time_field} eq {t} and {key_field} gt {k}))))"
    )


def stamped_pages(
    client: SapB1Client,
    entity_set: str,
    key_field: str,
    since: datetime,
    cfg: SapB1Settings,
    *,
    where: str = "",
    select: list[str],
    notice: Callable[[dict[str, Any]], ChangeNotice],
) -> Iterator[Page]:
    """Pages of notices of the records changed (then created) at or after ``since``; the last page
    proves the newest stamp read (a page before it proves nothing: the create poll is still to come)."""
    zone = ZoneInfo(cfg.server_timezone)
    day, clock = mapping.local_cursor(since, zone)
    newest: datetime | None = None
    for n, (day_field, time_field) in enumerate(STAMPS):
        last: tuple[str, str, Any] | None = None
        while True:
            condition = changed_filter(day_field, time_field, day, clock)
            if last is not None:
                condition += " and " + after_filter(day_field, time_field, key_field, last)
            rows = next(
                client.pages(
                    entity_set,
                    filter=f"{where} and {condition}" if where else condition,
                    select=select,
                    orderby=f"{day_field},{time_field},{key_field}",
                    top=cfg.page_size,
                    page_size=cfg.page_size,
                )
            )
            for row in rows:
                stamp = mapping.changed_at(row)
                if stamp is not None:
                    at = mapping.to_utc(*stamp, zone)
                    newest = at if newest is None or at > newest else newest
            done = len(rows) < cfg.page_size
            final = done and n == len(STAMPS) - 1
            yield Page([notice(r) for r in rows], newest if final else None)
            if done:
                break
            tail = rows[-1]
            last = (str(tail[day_field])[:10], str(tail[time_field]), tail[key_field])


class SapB1Customers:
    """Business partners of type customer, both ways; the email is the identity (B1 does not keep
    it unique: ``find`` returns every match)."""

    def __init__(self, client: SapB1Client, connection: str, settings: Callable[[], SapB1Settings]) -> None:
        self.client, self.connection, self.settings = client, connection, settings

    def changes(self, since: datetime) -> Iterator[Page]:
        def notice(row: dict[str, Any]) -> ChangeNotice:
            return ChangeNotice(
                source=self.connection, entity="customer", id=str(row["CardCode"]), version=mapping.version(row)
            )

        yield from stamped_pages(
            self.client,
            "BusinessPartners",
            "CardCode",
            since,
            self.settings(),
            where="CardType eq 'cCustomer'",
            select=PARTNER_CHANGE_FIELDS,
            notice=notice,
        )

    def _read(self, id: str) -> dict[str, Any]:
        return self.client.get("BusinessPartners", id)

    def get(self, id: str) -> Customer:
        return mapping.customer_from_b1(self._read(id))

    def find(self, email: str) -> list[Customer]:
        wanted = email.strip().lower()
        rows = self.client.rows(
            "BusinessPartners",
            filter=f"CardType eq 'cCustomer' and EmailAddress eq {literal(wanted)}",
            case_insensitive=True,
            page_size=self.settings().page_size,
        )
        return [mapping.customer_from_b1(r) for r in rows if str(r.get("EmailAddress") or "").strip().lower() == wanted]

    def id_for(self, email: str) -> str:
        """The ``CardCode`` of the partner made for ``email``, derived from it: a create retried
        after a lost answer meets its twin (code -10) instead of making a second partner."""
        digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:10].upper()
        return f"{self.settings().card_code_prefix}{digest}"

    def create(self, customer: Customer) -> Customer:
        cfg = self.settings()
        code = self.id_for(customer.email)
        body = {"CardCode": code, "CardType": "cCustomer", **mapping.partner_body(customer)}
        if cfg.bp_group_code is not None:
            body["GroupCode"] = cfg.bp_group_code
        try:
            return mapping.customer_from_b1(self.client.create("BusinessPartners", body))
        except AlreadyExists:
            return self.get(code)  # our own earlier create (its answer lost): that partner, as it is

    def update(self, id: str, customer: Customer, current: Customer | None = None) -> Customer:
        self.client.update("BusinessPartners", id, mapping.partner_body(customer, current=self._read(id)))
        return self.get(id)


class SapB1Orders:
    """Store orders as B1 sales orders (``Orders``), looked up by the store's number in ``NumAtCard``."""

    def __init__(self, client: SapB1Client, connection: str, settings: Callable[[], SapB1Settings]) -> None:
        self.client, self.connection, self.settings = client, connection, settings

    def find(self, number: str) -> ErpOrderRef | None:
        """The live order (not cancelled) carrying ``number``; ``DuplicateNumAtCard`` when two do
        (B1 does not keep ``NumAtCard`` unique)."""
        rows = list(self.client.rows("Orders", filter=f"NumAtCard eq {literal(number)}", select=ORDER_FIELDS))
        live = [r for r in rows if r.get("Cancelled") != "tYES" and r.get("NumAtCard") == number]
        if len(live) > 1:
            entries = ", ".join(str(r["DocEntry"]) for r in live)
            raise DuplicateNumAtCard(
                f"{self.connection}: orders {entries} all carry store number {number} in NumAtCard; "
                "cancel the extra ones in B1",
                system=self.connection,
            )
        return mapping.order_ref(live[0]) if live else None

    def create(self, draft: SalesOrderDraft) -> ErpOrderRef:
        record = self.client.create("Orders", mapping.order_body(draft, self.settings()))
        if mapping.totals_differ(record, draft):
            log.warning(
                "order %s (DocEntry %s) total %s is not the store's %s",
                draft.number,
                record.get("DocEntry"),
                record.get("DocTotal"),
                draft.total,
                extra={"connection": self.connection},
            )
        return mapping.order_ref(record, draft)


class SapB1System:
    """An SAP Business One connection: its ports by entity and direction."""

    kind = "sap_b1"

    def __init__(self, client: SapB1Client, connection: str, settings: Callable[[], SapB1Settings]) -> None:
        self.connection, self.client, self.settings = connection, client, settings
        customers = SapB1Customers(client, connection, settings)
        self._ports: dict[tuple[str, str], object] = {
            ("customer", "source"): customers,
            ("customer", "target"): customers,
            ("order", "target"): SapB1Orders(client, connection, settings),
        }

    def port(self, entity: str, direction: str) -> Any:
        try:
            return self._ports[(entity, direction)]
        except KeyError:
            raise NotFoundError(f"sap_b1 serves no {entity} {direction}", system=self.connection) from None
