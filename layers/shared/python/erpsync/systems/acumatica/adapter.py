"""``AcumaticaErp``: the ``Erp`` port over Acumatica's contract-based REST API.

Orders are found by ``CustomerOrder`` (the store's order number) and created with one PUT;
the line map rides in each line's ``LineDescription`` (see ``mapping``). Confirmed shipments
and released invoices are polled by ``LastModifiedDateTime``, page by page until a short page.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from erpsync.model import ChangeNotice, Customer, ErpOrderRef, Invoice, SalesOrderDraft, Shipment
from erpsync.systems.acumatica import mapping
from erpsync.systems.acumatica.client import AcumaticaClient, AlreadyExists

PAGE_SIZE = 100


def odata_string(text: str) -> str:
    """``text`` as an OData string literal (quotes doubled)."""
    return "'" + text.replace("'", "''") + "'"


def odata_time(moment: datetime) -> str:
    """``moment`` as a ``datetimeoffset'...'`` literal (naive taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return f"datetimeoffset'{moment.isoformat()}'"


class AcumaticaErp:
    """Acumatica as the ERP of a flow."""

    name = "acumatica"

    def __init__(
        self,
        client: AcumaticaClient,
        *,
        order_type: str = "SO",
        customer_class: str = "DEFAULT",
        warehouse_id: str | None = None,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self.client = client
        self.order_type, self.customer_class, self.warehouse_id = order_type, customer_class, warehouse_id
        self.page_size = page_size

    # -- customers ---------------------------------------------------------------------------

    def find_customer(self, email: str) -> str | None:
        rows = self.client.get_list(
            "Customer", filter=f"MainContact/Email eq {odata_string(email)}", select="CustomerID", top=1
        )
        return str(mapping.value(rows[0], "CustomerID")) if rows and mapping.value(rows[0], "CustomerID") else None

    def create_customer(self, customer: Customer, customer_id: str) -> str:
        record = mapping.customer_record(customer, customer_id, customer_class=self.customer_class)
        try:
            saved = self.client.put("Customer", record, select="CustomerID", if_none_match=True)
        except AlreadyExists:
            return customer_id
        return str(mapping.value(saved, "CustomerID", customer_id))

    # -- orders --------------------------------------------------------------------------------

    def find_order(self, number: str) -> ErpOrderRef | None:
        rows = self.client.get_list(
            "SalesOrder",
            filter=f"OrderType eq {odata_string(self.order_type)} and CustomerOrder eq {odata_string(number)}",
            expand="Details",
            top=1,
        )
        return self._ref(rows[0]) if rows else None

    def create_order(self, draft: SalesOrderDraft) -> ErpOrderRef:
        record = mapping.sales_order_record(draft, order_type=self.order_type, warehouse_id=self.warehouse_id)
        saved = self.client.put("SalesOrder", record, expand="Details")
        ref = self._ref(saved)
        if len(ref.line_map) != len(draft.lines):
            # the ERP renumbered or dropped the marker: fall back on the line order we sent
            numbers = sorted(int(mapping.value(d, "LineNbr", 0)) for d in saved.get("Details") or [])
            ref.line_map = {str(n): line.line_id for n, line in zip(numbers, draft.lines, strict=False)}
        return ref

    def _ref(self, record: dict[str, Any]) -> ErpOrderRef:
        return ErpOrderRef(
            id=str(record.get("id", "")),
            number=str(mapping.value(record, "OrderNbr", "")),
            order_type=str(mapping.value(record, "OrderType", self.order_type)),
            status=str(mapping.value(record, "Status", "")),
            line_map=mapping.line_map(record.get("Details")),
        )

    # -- documents -----------------------------------------------------------------------------

    def _changed(self, entity: str, key: str, condition: str, since: datetime, kind: str) -> list[ChangeNotice]:
        filter_ = f"LastModifiedDateTime gt {odata_time(since)} and {condition}"
        notices: list[ChangeNotice] = []
        skip = 0
        while True:
            rows = self.client.get_list(
                entity, filter=filter_, select=f"{key},LastModifiedDateTime", top=self.page_size, skip=skip
            )
            for row in rows:
                version = mapping.value(row, "LastModifiedDateTime")
                notices.append(
                    ChangeNotice(
                        source=self.name,
                        entity=kind,
                        id=str(mapping.value(row, key, "")),
                        version=str(version) if version else None,
                        occurred_at=mapping.when(version),
                    )
                )
            if len(rows) < self.page_size:
                break
            skip += len(rows)
        notices.sort(key=lambda n: n.occurred_at or datetime.min.replace(tzinfo=UTC))
        return notices

    def changed_shipments(self, since: datetime) -> list[ChangeNotice]:
        statuses = " or ".join(f"Status eq {odata_string(s)}" for s in mapping.CONFIRMED_SHIPMENT)
        return self._changed("Shipment", "ShipmentNbr", f"({statuses})", since, "shipment")

    def get_shipment(self, shipment_id: str) -> Shipment:
        return mapping.shipment(self.client.get_record("Shipment", shipment_id, expand="Details,Packages"))

    def changed_invoices(self, since: datetime) -> list[ChangeNotice]:
        statuses = " or ".join(f"Status eq {odata_string(s)}" for s in mapping.RELEASED_INVOICE)
        return self._changed("SalesInvoice", "ReferenceNbr", f"Type eq 'Invoice' and ({statuses})", since, "invoice")

    def get_invoice(self, invoice_id: str) -> Invoice:
        return mapping.invoice(self.client.get_record("SalesInvoice", ["Invoice", invoice_id], expand="Details"))
