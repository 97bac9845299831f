"""The straightforward connector for orders, in plain httpx: the baseline the benchmarks compare with.

Per order it does what a first version usually does: fetch an admin token and the order from
Magento, sign in to Acumatica, search the customer by email (create it when missing), look up
every item, create the sales order, create the payment, sign out.
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
                customer_id = self._customer(erp, order)
                lines = []
                for item in order["items"]:
                    if item.get("product_type") == "configurable":
                        continue
                    erp.get(f"/{ENDPOINT}/StockItem/{quote(item['sku'], safe='')}")
                    price = item.get("price") or (item.get("parent_item") or {}).get("price", 0)
                    lines.append(
                        {
                            "InventoryID": _v(item["sku"]),
                            "OrderQty": _v(float(item["qty_ordered"])),
                            "UnitPrice": _v(float(price)),
                        }
                    )
                saved = erp.put(
                    f"/{ENDPOINT}/SalesOrder",
                    json={
                        "OrderType": _v("SO"),
                        "CustomerID": _v(customer_id),
                        "CustomerOrder": _v(order["increment_id"]),
                        "Details": lines,
                    },
                )
                erp.put(
                    f"/{ENDPOINT}/Payment",
                    json={
                        "Type": _v("Payment"),
                        "CustomerID": _v(customer_id),
                        "PaymentAmount": _v(float(order["grand_total"])),
                        "Description": _v(f"Magento order {order['increment_id']}"),
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

    def _customer(self, erp: httpx.Client, order: dict[str, Any]) -> str:
        email = order["customer_email"]
        flt = quote(f"MainContact/Email eq '{email}'")
        rows = erp.get(f"/{ENDPOINT}/Customer?$filter={flt}&$top=1").json()
        if rows:
            return str(rows[0]["CustomerID"]["value"])
        customer_id = "N" + hashlib.sha256(email.encode()).hexdigest()[:9].upper()
        address = order.get("billing_address") or {}
        erp.put(
            f"/{ENDPOINT}/Customer",
            json={
                "CustomerID": _v(customer_id),
                "CustomerName": _v(f"{address.get('firstname', '')} {address.get('lastname', '')}".strip() or email),
                "MainContact": {"Email": _v(email)},
            },
        )
        return customer_id
