"""The warehouse clerk and the accountant of an SAP Business One company, through its Service Layer
(the API their tools use), for tests and the demo: a delivery posted against a sales order with the
carrier's tracking number, an invoice posted against a delivery or an order (drawing the order's
paid down payments), an order cancelled, a credit note posted against an invoice, a return request received back.

``SapB1Clerk(http)`` takes an ``httpx.Client`` whose ``base_url`` is the Service Layer's host (the
sim's URL, or a ``TestClient`` of the sim) and signs in with the sim's credentials unless given
others; a session that timed out is signed in again once.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx

from sandbox.sims.sap_b1 import COMPANY_DB, PASSWORD, RETURN_REQUEST, USERNAME

JSON = dict[str, Any]
ORDER, DELIVERY, INVOICE = 17, 15, 13
"""``BaseType`` of a line based on a sales order, on a delivery, on an invoice."""


class SapB1Clerk:
    def __init__(
        self,
        http: httpx.Client,
        company_db: str = COMPANY_DB,
        username: str = USERNAME,
        password: str = PASSWORD,
        version: str = "v1",
    ) -> None:
        self.http, self.root = http, f"/b1s/{version}"
        self.login = {"CompanyDB": company_db, "UserName": username, "Password": password}
        self.sign_in()

    def sign_in(self) -> None:
        r = self.http.post(f"{self.root}/Login", json=self.login)
        if r.status_code >= 300:
            raise RuntimeError(f"SAP Business One sign-in failed: {r.status_code} {r.text[:200]}")

    def request(self, method: str, path: str, **kw: Any) -> Any:
        """One call (signed in again once on 401); its JSON answer; RuntimeError with SAP's error."""
        r = self.http.request(method, f"{self.root}/{path}", **kw)
        if r.status_code == 401:
            self.sign_in()
            r = self.http.request(method, f"{self.root}/{path}", **kw)
        if r.status_code >= 400:
            raise RuntimeError(f"SAP Business One {method} {path}: {r.status_code} {r.text[:300]}")
        return r.json() if r.content else None

    def order(self, doc_entry: int) -> JSON:
        return dict(self.request("GET", f"Orders({doc_entry})"))

    def deliver(
        self,
        order_docentry: int,
        tracking: str,
        lines: dict[int, Decimal | int] | None = None,
        transportation_code: int | None = None,
    ) -> JSON:
        """Post a delivery of sales order ``order_docentry`` carrying ``tracking``: ``lines`` maps
        the order's ``LineNum`` to the quantity delivered (None: every open line, all that is open).
        The delivery as posted."""
        order = self.order(order_docentry)
        if lines is None:
            lines = {
                ln["LineNum"]: Decimal(str(ln["RemainingOpenQuantity"]))
                for ln in order["DocumentLines"]
                if ln.get("LineStatus") == "bost_Open"
            }
        body: JSON = {
            "CardCode": order["CardCode"],
            "TrackingNumber": tracking,
            "DocumentLines": [
                {"BaseType": ORDER, "BaseEntry": order_docentry, "BaseLine": n, "Quantity": str(q)}
                for n, q in lines.items()
            ],
        }
        if transportation_code is not None:
            body["TransportationCode"] = transportation_code
        return dict(self.request("POST", "DeliveryNotes", json=body))

    def invoice(
        self,
        delivery_docentry: int | None = None,
        *,
        order_docentry: int | None = None,
        draw_down_payments: bool = True,
    ) -> JSON:
        """Post an A/R invoice of everything still open on a delivery (lines ``BaseType`` 15), or,
        without one, on sales order ``order_docentry`` directly (17). With ``draw_down_payments``, the
        invoice draws what the order's paid down payment invoices still hold (``DownPaymentsToDraw``),
        as a B1 user does for a prepaid order. The invoice as posted."""
        if (delivery_docentry is None) == (order_docentry is None):
            raise ValueError("invoice a delivery or an order, one of them")
        base_type, entry, path = (
            (DELIVERY, delivery_docentry, "DeliveryNotes")
            if delivery_docentry is not None
            else (ORDER, order_docentry, "Orders")
        )
        base = dict(self.request("GET", f"{path}({entry})"))
        lines = [
            {"BaseType": base_type, "BaseEntry": entry, "BaseLine": ln["LineNum"]}
            for ln in base["DocumentLines"]
            if ln.get("LineStatus") == "bost_Open"
        ]
        if not lines:
            raise RuntimeError(f"{path} {entry} has nothing open to invoice")
        body: JSON = {"CardCode": base["CardCode"], "DocumentLines": lines}
        if draw_down_payments:
            orders = (
                {int(entry or 0)}
                if base_type == ORDER
                else {int(ln["BaseEntry"]) for ln in base["DocumentLines"] if ln.get("BaseType") == ORDER}
            )
            held = self.down_payments_held(base["CardCode"], orders)
            if held:
                body["DownPaymentsToDraw"] = [{"DocEntry": dp} for dp in held]  # all each holds, up to the total
        return dict(self.request("POST", "Invoices", json=body))

    def rows(self, entity_set: str, filter: str, select: str) -> list[JSON]:
        """Every row of a query, page after page."""
        out: list[JSON] = []
        path: str | None = entity_set
        params: dict[str, str] | None = {"$filter": filter, "$select": select}
        while path is not None:
            answer = self.request("GET", path, params=params)
            out += answer["value"]
            link = answer.get("odata.nextLink") or answer.get("@odata.nextLink")
            path, params = (str(link), None) if link else (None, None)
        return out

    def down_payments_held(self, card_code: str, orders: set[int]) -> dict[int, Decimal]:
        """The partner's down payment invoices based on ``orders`` that still hold money to draw:
        DocEntry -> what payments applied to it less what invoices drew of it."""
        quoted = card_code.replace("'", "''")
        held: dict[int, Decimal] = {}
        for dp in self.rows("DownPayments", f"CardCode eq '{quoted}'", "DocEntry,Cancelled,DocumentLines"):
            based = {ln.get("BaseEntry") for ln in dp["DocumentLines"] if ln.get("BaseType") == ORDER}
            if dp.get("Cancelled") != "tYES" and based & orders:
                held[int(dp["DocEntry"])] = Decimal(0)
        for pay in self.rows("IncomingPayments", f"CardCode eq '{quoted}'", "DocEntry,Cancelled,PaymentInvoices"):
            for row in pay.get("PaymentInvoices") or []:
                paid = pay.get("Cancelled") != "tYES" and row.get("InvoiceType") == "it_DownPayment"
                if paid and row["DocEntry"] in held:
                    held[row["DocEntry"]] += Decimal(str(row["SumApplied"]))
        for inv in self.rows("Invoices", f"CardCode eq '{quoted}'", "DocEntry,Cancelled,DownPaymentsToDraw"):
            for row in inv.get("DownPaymentsToDraw") or []:
                if inv.get("Cancelled") != "tYES" and row["DocEntry"] in held:
                    held[row["DocEntry"]] -= Decimal(str(row["AmountToDraw"]))
        return {dp: amount for dp, amount in held.items() if amount > 0}

    def cancel(self, order_docentry: int) -> JSON:
        """Cancel sales order ``order_docentry`` (``POST Orders(<DocEntry>)/Cancel``); the order after."""
        self.request("POST", f"Orders({order_docentry})/Cancel")
        return self.order(order_docentry)

    def credit(self, invoice_docentry: int, lines: dict[int, Decimal | int] | None = None, **header: Any) -> JSON:
        """Post an A/R credit note against invoice ``invoice_docentry``: ``lines`` maps the invoice's
        ``LineNum`` to the quantity given back (None: everything open on it); ``header`` adds fields
        (``NumAtCard``, ``Comments``). The credit note as posted."""
        invoice = dict(self.request("GET", f"Invoices({invoice_docentry})"))
        if lines is None:
            lines = {
                ln["LineNum"]: Decimal(str(ln["RemainingOpenQuantity"]))
                for ln in invoice["DocumentLines"]
                if ln.get("LineStatus") == "bost_Open"
            }
        body: JSON = {
            "CardCode": invoice["CardCode"],
            **header,
            "DocumentLines": [
                {"BaseType": INVOICE, "BaseEntry": invoice_docentry, "BaseLine": n, "Quantity": str(q)}
                for n, q in lines.items()
            ],
        }
        return dict(self.request("POST", "CreditNotes", json=body))

    def receive(self, request_docentry: int, lines: dict[int, Decimal | int] | None = None) -> JSON:
        """The warehouse takes back what return request ``request_docentry`` agreed to: a return
        (``Returns``) of its lines (``BaseType`` 234000031; ``lines``: the request's ``LineNum`` ->
        quantity, None: everything open). The return as posted."""
        request = dict(self.request("GET", f"ReturnRequest({request_docentry})"))
        if lines is None:
            lines = {
                ln["LineNum"]: Decimal(str(ln["RemainingOpenQuantity"]))
                for ln in request["DocumentLines"]
                if ln.get("LineStatus") == "bost_Open"
            }
        body: JSON = {
            "CardCode": request["CardCode"],
            "DocumentLines": [
                {"BaseType": RETURN_REQUEST, "BaseEntry": request_docentry, "BaseLine": n, "Quantity": str(q)}
                for n, q in lines.items()
            ],
        }
        return dict(self.request("POST", "Returns", json=body))
