"""The shipping clerk and the billing clerk of an SAP S/4HANA system, for tests and the demo.

The shipping clerk works through the OData APIs their tools use: ``deliver(order, tracking)``
creates an outbound delivery of everything still open on sales order ``order``
(``POST A_OutbDeliveryHeader`` with items referencing the order's), sets the carrier's tracking
number as its ``BillOfLading`` (``PATCH`` with ``If-Match``: it cannot be given on create) and
posts the goods issue (``PostGoodsIssue``).

The billing clerk has no API to use: ``API_BILLING_DOCUMENT_SRV`` cannot create billing documents
(SAP runs VF01/VF04 in the GUI), so ``bill(delivery)`` goes through the simulator's own door
``POST /_sim/billing`` (sandbox/sims/sap_s4.py), which stands in for VF01. ``clear(billing)`` marks
the customer's payment (``POST /_sim/billing/<n>/clear``), equally a sim door.

``SapS4Clerk(http)`` takes an ``httpx.Client`` whose ``base_url`` is the system's host (the sim's
URL, or a ``TestClient`` of the sim); it keeps one CSRF token per service and fetches it again
once after a 403 ``x-csrf-token: Required``.
"""

from __future__ import annotations

from typing import Any

import httpx

from sandbox.sims.sap_s4 import DELIVERY, PASSWORD, PRICING, PRODUCTS, ROOT, SALES, USERNAME

__all__ = ["PRICING", "PRODUCTS", "SapS4Clerk"]

JSON = dict[str, Any]


class SapS4Clerk:
    def __init__(self, http: httpx.Client, username: str = USERNAME, password: str = PASSWORD) -> None:
        self.http, self.auth = http, httpx.BasicAuth(username, password)
        self.tokens: dict[str, str] = {}

    def _token(self, service: str, fresh: bool = False) -> str:
        if fresh or service not in self.tokens:
            r = self.http.head(f"{ROOT}{service}/", auth=self.auth, headers={"X-CSRF-Token": "Fetch"})
            token = r.headers.get("x-csrf-token")
            if r.status_code >= 400 or not token:
                raise RuntimeError(f"S/4HANA CSRF fetch of {service}: {r.status_code} {r.text[:200]}")
            self.tokens[service] = token
        return self.tokens[service]

    def request(self, method: str, service: str, path: str, *, headers: dict[str, str] | None = None, **kw: Any) -> Any:
        """One call (a write with the service's CSRF token, fetched again once on 403 Required);
        its ``d`` (None for 204); RuntimeError with SAP's error otherwise."""
        sent = {"Accept": "application/json", **(headers or {})}
        url = f"{ROOT}{service}/{path}"
        write = method not in ("GET", "HEAD")
        r = self.http.request(
            method, url, auth=self.auth, headers={**sent, "X-CSRF-Token": self._token(service)} if write else sent, **kw
        )
        if write and r.status_code == 403 and r.headers.get("x-csrf-token", "").lower() == "required":
            token = self._token(service, fresh=True)
            r = self.http.request(method, url, auth=self.auth, headers={**sent, "X-CSRF-Token": token}, **kw)
        if r.status_code >= 400:
            raise RuntimeError(f"S/4HANA {method} {service}/{path}: {r.status_code} {r.text[:400]}")
        return r.json()["d"] if r.content else None

    def order(self, number: str) -> JSON:
        return dict(self.request("GET", SALES, f"A_SalesOrder('{number}')", params={"$expand": "to_Item"}))

    def delivery(self, number: str) -> JSON:
        return dict(
            self.request(
                "GET", DELIVERY, f"A_OutbDeliveryHeader('{number}')", params={"$expand": "to_DeliveryDocumentItem"}
            )
        )

    def deliver(self, order: str, tracking: str) -> JSON:
        """Deliver everything open on sales order ``order`` with ``tracking`` as the bill of lading and
        post the goods issue. The delivery as it stands after the goods issue."""
        items = [
            {"ReferenceSDDocument": order, "ReferenceSDDocumentItem": i["SalesOrderItem"]}
            for i in self.order(order)["to_Item"]["results"]
            if not i.get("SalesDocumentRjcnReason") and i.get("DeliveryStatus") != "C"
        ]
        if not items:
            raise RuntimeError(f"sales order {order} has nothing open to deliver")
        created = self.request(
            "POST", DELIVERY, "A_OutbDeliveryHeader", json={"to_DeliveryDocumentItem": {"results": items}}
        )
        number, etag = created["DeliveryDocument"], created["__metadata"]["etag"]
        path = f"A_OutbDeliveryHeader('{number}')"
        self.request("PATCH", DELIVERY, path, json={"BillOfLading": tracking}, headers={"If-Match": etag})
        etag = self.delivery(number)["__metadata"]["etag"]  # a PATCH answers 204 without the new etag
        self.request(
            "POST", DELIVERY, "PostGoodsIssue", params={"DeliveryDocument": f"'{number}'"}, headers={"If-Match": etag}
        )
        return self.delivery(number)

    def bill(self, delivery: str | list[str]) -> JSON:
        """A billing document for ``delivery`` (or several of one sold-to) through the sim's VF01 door."""
        deliveries = [delivery] if isinstance(delivery, str) else delivery
        r = self.http.post("/_sim/billing", json={"deliveries": deliveries})
        if r.status_code >= 400:
            raise RuntimeError(f"S/4HANA sim billing of {deliveries}: {r.status_code} {r.text[:400]}")
        return dict(r.json()["d"])

    def clear(self, billing: str) -> JSON:
        """The customer paid ``billing`` (``InvoiceClearingStatus`` C), through the sim's door."""
        r = self.http.post(f"/_sim/billing/{billing}/clear")
        if r.status_code >= 400:
            raise RuntimeError(f"S/4HANA sim clearing of {billing}: {r.status_code} {r.text[:400]}")
        return dict(r.json()["d"])
