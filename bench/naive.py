"""The straightforward connector for orders, in plain httpx: the baseline the benchmarks compare with.

Per order it does what a first version usually does: fetch an admin token and the order from
Magento, sign in to Acumatica, search the customer by email (create it when missing), look up
every item, create the sales order, create the payment, sign out. ``book`` is the Acumatica part
alone, for an order read from any store.
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import quote

import httpx

ENDPOINT = "entity/Default/24.200.001"


def _v(value: Any) -> dict[str, Any]:
    return {"value": value}


class NaiveConnector:
    def __init__(self, magento: dict[str, str], acumatica: dict[str, str]) -> None:
        self.magento, self.acumatica = magento, acumatica

    def sync_order(self, order_id: int) -> str:
        order = self._read_order(order_id)
        address = order.get("billing_address") or {}
        lines = [
            (
                item["sku"],
                float(item["qty_ordered"]),
                float(item.get("price") or (item.get("parent_item") or {}).get("price", 0)),
            )
            for item in order["items"]
            if item.get("product_type") != "configurable"
        ]
        name = f"{address.get('firstname', '')} {address.get('lastname', '')}".strip()
        return self.book(order["increment_id"], order["customer_email"], name, lines, float(order["grand_total"]))

    def book(self, number: str, email: str, name: str, lines: list[tuple[str, float, float]], total: float) -> str:
        """The Acumatica side for one store order (whatever the store): sign in, the customer, each
        line's item, the sales order, the payment, sign out."""
        with httpx.Client(base_url=self.acumatica["base_url"].rstrip("/"), timeout=30) as erp:
            erp.post(
                "/entity/auth/login",
                json={
                    "name": self.acumatica["username"],
                    "password": self.acumatica["password"],
                    "company": self.acumatica.get("company", ""),
                },
            ).raise_for_status()
            try:
                customer_id = self._customer(erp, email, name)
                details = []
                for sku, qty, price in lines:
                    erp.get(f"/{ENDPOINT}/StockItem/{quote(sku, safe='')}")
                    details.append({"InventoryID": _v(sku), "OrderQty": _v(qty), "UnitPrice": _v(price)})
                saved = erp.put(
                    f"/{ENDPOINT}/SalesOrder",
                    json={
                        "OrderType": _v("SO"),
                        "CustomerID": _v(customer_id),
                        "CustomerOrder": _v(number),
                        "Details": details,
                    },
                )
                erp.put(
                    f"/{ENDPOINT}/Payment",
                    json={
                        "Type": _v("Payment"),
                        "CustomerID": _v(customer_id),
                        "PaymentAmount": _v(total),
                        "Description": _v(f"store order {number}"),
                    },
                )
                return str(saved.json().get("OrderNbr", {}).get("value", "")) if saved.status_code < 300 else ""
            finally:
                erp.post("/entity/auth/logout", headers={"Content-Length": "0"})

    def _read_order(self, order_id: int) -> dict[str, Any]:
        base = self.magento["base_url"].rstrip("/") + "/V1"
        with httpx.Client(base_url=base, timeout=30) as http:
            token = http.post(
                "/integration/admin/token",
                json={"username": self.magento["username"], "password": self.magento["password"]},
            ).json()
            r = http.get(f"/orders/{order_id}", headers={"Authorization": f"Bearer {token}"})
            r.raise_for_status()
            return dict(r.json())

    def _customer(self, erp: httpx.Client, email: str, name: str) -> str:
        flt = quote(f"MainContact/Email eq '{email}'")
        rows = erp.get(f"/{ENDPOINT}/Customer?$filter={flt}&$top=1").json()
        if rows:
            return str(rows[0]["CustomerID"]["value"])
        customer_id = "N" + hashlib.sha256(email.encode()).hexdigest()[:9].upper()
        erp.put(
            f"/{ENDPOINT}/Customer",
            json={
                "CustomerID": _v(customer_id),
                "CustomerName": _v(name or email),
                "MainContact": {"Email": _v(email)},
            },
        )
        return customer_id
