"""The order-to-cash story, told through the systems' own APIs (no erpsync code on this side).

A shop assistant and a warehouse clerk in code: seed a catalog and customers, place orders in
Magento, ship and invoice them in Acumatica, and read both systems back for reconciliation.
Used by ``make demo``, the end-to-end tests and the benchmarks.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx

from erpsync.systems.magento.webhooks import sign
from sandbox.sims import magento_orders as mo

JSON = dict[str, Any]
ENDPOINT = "entity/Default/24.200.001"


def v(x: Any) -> Any:
    """The value of an Acumatica ``{"value": ...}`` field (or the field itself)."""
    return x.get("value") if isinstance(x, dict) else x


class MagentoAdmin:
    """The Magento REST API as an admin user (token auth)."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.http = httpx.Client(base_url=base_url.rstrip("/") + "/V1", timeout=30)
        token = self.http.post("/integration/admin/token", json={"username": username, "password": password})
        token.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {token.json()}"

    def call(self, method: str, path: str, **kw: Any) -> Any:
        r = self.http.request(method, path, **kw)
        if r.status_code >= 400:
            raise RuntimeError(f"Magento {method} {path}: {r.status_code} {r.text[:300]}")
        return r.json() if r.content else None

    def search(self, path: str, field: str, value: Any, condition: str = "eq") -> list[JSON]:
        params = {
            "searchCriteria[filter_groups][0][filters][0][field]": field,
            "searchCriteria[filter_groups][0][filters][0][value]": str(value),
            "searchCriteria[filter_groups][0][filters][0][condition_type]": condition,
            "searchCriteria[pageSize]": "500",
        }
        return list(self.call("GET", path, params=params)["items"])

    def close(self) -> None:
        self.http.close()


class AcumaticaUser:
    """The Acumatica contract-based API as a signed-in user (cookie session)."""

    def __init__(self, base_url: str, username: str, password: str, company: str = "", **_: Any) -> None:
        self.base = base_url.rstrip("/")
        self.http = httpx.Client(base_url=self.base, timeout=30)
        self.login = {"name": username, "password": password, "company": company}
        self.sign_in()

    def sign_in(self) -> None:
        r = self.http.post("/entity/auth/login", json=self.login)
        if r.status_code >= 300:
            raise RuntimeError(f"Acumatica sign-in failed: {r.status_code} {r.text[:200]}")

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """One call; a session that expired while idle (401) is signed in again once."""
        r = self.http.request(method, path, **kw)
        if r.status_code == 401:
            self.sign_in()
            r = self.http.request(method, path, **kw)
        return r

    def get(self, entity: str, query: str = "") -> Any:
        r = self.request("GET", f"/{ENDPOINT}/{entity}{'?' + query if query else ''}")
        if r.status_code >= 400:
            raise RuntimeError(f"Acumatica GET {entity}: {r.status_code} {r.text[:300]}")
        return r.json()

    def put(self, entity: str, record: JSON, query: str = "") -> JSON:
        r = self.request("PUT", f"/{ENDPOINT}/{entity}{'?' + query if query else ''}", json=record)
        if r.status_code >= 400:
            raise RuntimeError(f"Acumatica PUT {entity}: {r.status_code} {r.text[:300]}")
        return dict(r.json())

    def action(self, entity: str, action: str, keys: JSON, parameters: JSON | None = None) -> None:
        body = {"entity": keys, "parameters": parameters or {}}
        r = self.request("POST", f"/{ENDPOINT}/{entity}/{action}", json=body)
        if r.status_code == 202:
            location = r.headers["Location"]
            for _ in range(100):
                s = self.request("GET", location)
                if s.status_code == 204:
                    return
                time.sleep(0.05)
            raise RuntimeError(f"Acumatica {entity}/{action} did not finish")
        if r.status_code >= 300:
            raise RuntimeError(f"Acumatica {entity}/{action}: {r.status_code} {r.text[:300]}")

    def orders_for(self, number: str) -> list[JSON]:
        flt = quote(f"CustomerOrder eq '{number}'")
        return list(self.get("SalesOrder", f"$filter={flt}&$expand=Details,Shipments"))

    def close(self) -> None:
        self.http.post("/entity/auth/logout", headers={"Content-Length": "0"})
        self.http.close()


@dataclass
class PlacedOrder:
    entity_id: int
    increment_id: str
    grand_total: Decimal
    kind: str


CARTS: list[tuple[str, list[mo.CartLine], mo.Coupon | None]] = [
    ("simple", [mo.CartLine("24-MB01", 1)], None),
    ("configurable", [mo.CartLine("WS12", 2, "WS12-M-Orange")], None),
    ("coupon", [mo.CartLine("24-MB04", 1), mo.CartLine("24-WG084", 3)], mo.Coupon("SAVE10", "percent", 10)),
    ("quantities", [mo.CartLine("24-WG088", 4), mo.CartLine("MH01", 1, "MH01-S-Gray")], None),
    ("cart discount", [mo.CartLine("24-MB01", 2), mo.CartLine("24-WG084", 1)], mo.Coupon("5OFF", "fixed_cart", 5)),
    ("virtual", [mo.CartLine("240-LV08", 1), mo.CartLine("24-MB04", 1)], None),
]
"""The carts the story's orders cycle through (kind, lines, coupon)."""


@dataclass
class Story:
    """The state of the story, shared by its chapters."""

    magento: MagentoAdmin
    acumatica: AcumaticaUser
    api_url: str = ""
    webhook_secret: str = ""
    catalog: list[JSON] = field(default_factory=mo.sample_catalog)
    orders: list[PlacedOrder] = field(default_factory=list)
    shipped: dict[str, list[str]] = field(default_factory=dict)
    """increment_id -> tracking numbers sent from Acumatica."""
    partially: set[str] = field(default_factory=set)
    invoiced: set[str] = field(default_factory=set)
    customers_made: int = 0

    # -- chapter 1: a shop and a warehouse ------------------------------------------------------
    def seed_catalog(self) -> None:
        for product in self.catalog:
            # a url key of its own: children named as their parent would collide (Magento derives it from the name)
            attrs = [a for a in product.get("custom_attributes") or [] if a.get("attribute_code") != "url_key"]
            key = f"{product['name']} {product['sku']}".lower()
            url_key = "-".join("".join(c if c.isalnum() else " " for c in key).split())
            product = {**product, "custom_attributes": [*attrs, {"attribute_code": "url_key", "value": url_key}]}
            self.magento.call("POST", "/products", json={"product": product})
            if product.get("type_id") == "configurable":
                continue
            self.acumatica.put(
                "StockItem",
                {
                    "InventoryID": {"value": product["sku"]},
                    "Description": {"value": product["name"]},
                    "ItemClass": {"value": "STOCKITEM"},
                    "DefaultPrice": {"value": product.get("price", 0)},
                },
            )

    def seed_customers(self, count: int = 4) -> list[JSON]:
        people = []
        start = self.customers_made
        self.customers_made += count
        for i in range(start, start + count):
            c = mo.sample_customer(email=f"customer{i + 1}@example.com")
            c["firstname"], c["lastname"] = ["Veronica", "Sam", "Alex", "Jordan", "Kim"][i % 5], f"Shopper{i + 1}"
            people.append(self.magento.call("POST", "/customers", json={"customer": c, "password": "Passw0rd!x"}))
        return people

    # -- chapter 2: customers buy ---------------------------------------------------------------
    def order_body(
        self,
        i: int,
        customers: list[JSON],
        cart: list[mo.CartLine],
        coupon: mo.Coupon | None,
        increment_id: str | None = None,
    ) -> JSON:
        """The ``i``-th order of a run: every fifth a guest, shipping, tax and payment varied by ``i``.
        With ``increment_id`` the order carries its number (a save retried after a lost answer is
        then refused as a duplicate instead of placing the order twice)."""
        guest = i % 5 == 4
        return mo.build_order(
            self.catalog,
            cart,
            customer=None if guest else customers[i % len(customers)],
            guest_email=f"guest{i}@example.net" if guest else None,
            address=mo.sample_customer()["addresses"][0] if guest else None,
            coupon=coupon,
            shipping_method="tablerate_bestway" if i % 2 else "flatrate_flatrate",
            shipping_amount=5 * (1 + i % 3),
            tax_rate="8.25" if i % 3 == 0 else 0,
            payment_method="checkmo" if i % 2 else "banktransfer",
            increment_id=increment_id,
        )

    def place_orders(self, customers: list[JSON], count: int = 24) -> list[PlacedOrder]:
        for i in range(count):
            kind, cart, coupon = CARTS[i % len(CARTS)]
            guest = i % 5 == 4
            order = self.order_body(i, customers, cart, coupon)
            saved = self.magento.call("POST", "/orders", json={"entity": order})
            placed = PlacedOrder(
                int(saved["entity_id"]),
                str(saved["increment_id"]),
                Decimal(str(saved["grand_total"])),
                "guest " + kind if guest else kind,
            )
            self.orders.append(placed)
            if i % 2 == 0 and self.api_url:
                self.ring_doorbell(saved)
        return self.orders

    def ring_doorbell(self, order: JSON) -> int:
        """Send Magento's order-saved webhook (signed) to erpsync's API."""
        body = json.dumps(
            {
                "eventName": "observer.sales_order_save_after",
                "data": {"order": {"entity_id": order["entity_id"], "increment_id": order["increment_id"]}},
            }
        ).encode()
        headers = {"Content-Type": "application/json", **sign(self.webhook_secret, body)}
        r = httpx.post(f"{self.api_url}/webhooks/magento", content=body, headers=headers, timeout=10)
        return r.status_code

    # -- chapter 3: the warehouse ships and bills -----------------------------------------------
    def ship_and_invoice(self) -> None:
        """Ship about two thirds of the orders (one partially) and invoice what was shipped."""
        for n, placed in enumerate(self.orders):
            if n % 3 == 2:
                continue
            tracking = f"1Z{placed.increment_id[-6:]}{n:03d}"
            self.ship(placed.increment_id, tracking, invoice=n % 3 == 0 or n == 1, partial=n == 1)

    def ship(self, number: str, tracking: str, *, invoice: bool = False, partial: bool = False) -> str:
        """Ship store order ``number`` in Acumatica (all of it, or one unit of its first line),
        confirm the shipment, and with ``invoice`` prepare and release its invoice. The shipment number."""
        [so] = self.acumatica.orders_for(number)
        return self.ship_order(so, number, tracking, invoice=invoice, partial=partial)

    def ship_order(self, so: JSON, number: str, tracking: str, *, invoice: bool = False, partial: bool = False) -> str:
        """``ship`` for a sales order already read (one entered in Acumatica has no store number in
        ``CustomerOrder``); ``number`` names it in the story's records."""
        if partial:
            shipment_nbr = self._ship_part(so, tracking)
            self.partially.add(number)
        else:
            shipment_nbr = self._ship_all(so, tracking)
        self.shipped[number] = [tracking]
        self.acumatica.action("Shipment", "ConfirmShipment", {"ShipmentNbr": {"value": shipment_nbr}})
        if invoice:
            self.acumatica.action("Shipment", "PrepareInvoice", {"ShipmentNbr": {"value": shipment_nbr}})
            shipment = self.acumatica.get(f"Shipment/{shipment_nbr}", "$expand=Orders")
            for o in shipment.get("Orders", []):
                if v(o.get("InvoiceNbr")):
                    keys = {
                        "Type": {"value": v(o.get("InvoiceType")) or "Invoice"},
                        "ReferenceNbr": o["InvoiceNbr"],
                    }
                    self.acumatica.action("SalesInvoice", "ReleaseSalesInvoice", keys)
                    self.invoiced.add(number)
        return shipment_nbr

    def _ship_all(self, so: JSON, tracking: str) -> str:
        self.acumatica.action(
            "SalesOrder",
            "SalesOrderCreateShipment",
            {"id": so["id"]},
            {"ShipmentDate": {"value": datetime.now(UTC).isoformat()}, "WarehouseID": {"value": "WHOLESALE"}},
        )
        fresh = self.acumatica.get(f"SalesOrder/{v(so['OrderType'])}/{v(so['OrderNbr'])}", "$expand=Shipments")
        nbr = str(v(fresh["Shipments"][-1]["ShipmentNbr"]))
        self.acumatica.put(
            "Shipment", {"ShipmentNbr": {"value": nbr}, "Packages": [{"TrackingNbr": {"value": tracking}}]}
        )
        return nbr

    def _ship_part(self, so: JSON, tracking: str) -> str:
        """Ship one unit of the first line only: a partial shipment."""
        first = so["Details"][0]
        record = {
            "Type": {"value": "Shipment"},
            "CustomerID": so["CustomerID"],
            "WarehouseID": {"value": "WHOLESALE"},
            "ShipmentDate": {"value": datetime.now(UTC).isoformat()},
            "Details": [
                {
                    "OrderType": so["OrderType"],
                    "OrderNbr": so["OrderNbr"],
                    "OrderLineNbr": first["LineNbr"],
                    "ShippedQty": {"value": 1},
                }
            ],
            "Packages": [{"TrackingNbr": {"value": tracking}, "Weight": {"value": 1.0}}],
        }
        return str(v(self.acumatica.put("Shipment", record)["ShipmentNbr"]))


def wait_for(what: str, check: Callable[[], bool], timeout_s: float = 60, every_s: float = 0.5) -> None:
    """Wait until ``check()`` is true; raise naming ``what`` when it never is."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every_s)
    raise TimeoutError(f"timed out after {timeout_s:.0f}s waiting for {what}")
