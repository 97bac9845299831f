"""The warehouse clerk and the accountant of an SAP Business One company, through its Service Layer
(the API their tools use), for tests and the demo: a delivery posted against a sales order with the
carrier's tracking number, an invoice posted against a delivery or an order.

``SapB1Clerk(http)`` takes an ``httpx.Client`` whose ``base_url`` is the Service Layer's host (the
sim's URL, or a ``TestClient`` of the sim) and signs in with the sim's credentials unless given
others; a session that timed out is signed in again once.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx

from sandbox.sims.sap_b1 import COMPANY_DB, PASSWORD, USERNAME

JSON = dict[str, Any]
ORDER, DELIVERY = 17, 15
"""``BaseType`` of a line based on a sales order, on a delivery."""


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

    def invoice(self, delivery_docentry: int | None = None, *, order_docentry: int | None = None) -> JSON:
        """Post an A/R invoice of everything still open on a delivery (lines ``BaseType`` 15), or,
        without one, on sales order ``order_docentry`` directly (17). The invoice as posted."""
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
        return dict(self.request("POST", "Invoices", json={"CardCode": base["CardCode"], "DocumentLines": lines}))
