"""Chapter 6 of the demo: an order entered in Acumatica (a phone order) reaches Magento for the right
customer, as Acumatica charged it; it is paid in Acumatica, shipped and invoiced there, and the
Magento order completes; nothing comes back as a second order or a second payment."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import quote

from rich.console import Console
from rich.table import Table

from sandbox.story import Story, v, wait_for

EMAIL = "phone.buyer@example.com"


def erp_order_chapter(story: Story, console: Console) -> list[str]:
    """Tell the story; the problems found (empty: it all adds up)."""
    problems: list[str] = []
    acu, mag = story.acumatica, story.magento
    acu.put(
        "Customer",
        {
            "CustomerID": {"value": "PHONE01"},
            "CustomerName": {"value": "Phone Buyer Ltd"},
            "MainContact": {
                "Email": {"value": EMAIL},
                "FirstName": {"value": "Pat"},
                "LastName": {"value": "Phone"},
                "Address": {
                    "AddressLine1": {"value": "1 Dial Street"},
                    "City": {"value": "Austin"},
                    "State": {"value": "TX"},
                    "PostalCode": {"value": "78701"},
                    "Country": {"value": "US"},
                },
            },
        },
    )
    skus = [p["sku"] for p in story.catalog if p.get("type_id") == "simple"][:2]
    so = acu.put(
        "SalesOrder",
        {
            "OrderType": {"value": "SO"},
            "CustomerID": {"value": "PHONE01"},
            "Description": {"value": "Phone order"},
            "ShipVia": {"value": "BESTWAY"},
            "Details": [
                {"InventoryID": {"value": skus[0]}, "OrderQty": {"value": 2}, "UnitPrice": {"value": 30}},
                {
                    "InventoryID": {"value": skus[1]},
                    "OrderQty": {"value": 1},
                    "UnitPrice": {"value": 45},
                    "DiscountAmount": {"value": 4.5},
                    "ManualDiscount": {"value": True},
                },
            ],
            "Totals": {"PremiumFreight": {"value": 7.5}},
        },
        "$expand=Details,Totals",
    )
    key = f"{v(so['OrderType'])}/{v(so['OrderNbr'])}"
    total = Decimal(str(v(so["OrderTotal"])))
    console.print(f"Acumatica: a phone order {key} for {EMAIL}, {total:.2f} with freight; nobody runs a command")

    def in_magento() -> list[dict[str, Any]]:
        return mag.search("/orders", "ext_order_id", key)

    wait_for(f"Acumatica order {key} in Magento", lambda: bool(in_magento()), timeout_s=60)
    [order] = in_magento()
    back = acu.get(f"SalesOrder/SO/{v(so['OrderNbr'])}")
    console.print(
        f"Magento: order {order['increment_id']} for {order['customer_email']}, {order['grand_total']:.2f}; "
        f"Acumatica {key} now carries it in ExternalRef ({v(back.get('ExternalRef'))})"
    )
    if Decimal(str(order["grand_total"])) != total:
        problems.append(f"{key}: Magento total {order['grand_total']} is not Acumatica's {total}")
    if v(back.get("ExternalRef")) != order["increment_id"]:
        problems.append(f"{key}: ExternalRef {v(back.get('ExternalRef'))!r} is not the Magento number")

    payment = acu.put(
        "Payment",
        {
            "Type": {"value": "Payment"},
            "CustomerID": {"value": "PHONE01"},
            "PaymentMethod": {"value": "CHECK"},
            "PaymentRef": {"value": "CHK 1042"},
            "PaymentAmount": {"value": float(total)},
            "OrdersToApply": [{"OrderType": so["OrderType"], "OrderNbr": so["OrderNbr"]}],
        },
    )
    acu.action("Payment", "ReleasePayment", {"Type": payment["Type"], "ReferenceNbr": payment["ReferenceNbr"]})
    fresh = acu.get(f"SalesOrder/SO/{v(so['OrderNbr'])}", "$expand=Details,Shipments,Totals")
    console.print(
        f"Acumatica: paid by check {v(payment['ReferenceNbr'])}, unpaid balance "
        f"{Decimal(str(v(fresh['Totals']['UnpaidBalance']))):.2f}; shipped and invoiced there"
    )
    story.ship_order(fresh, order["increment_id"], "1ZPHONE0001", invoice=True)

    def complete() -> bool:
        return str(mag.call("GET", f"/orders/{order['entity_id']}").get("state")) == "complete"

    wait_for(f"Magento order {order['increment_id']} complete", complete, timeout_s=90)
    done = mag.call("GET", f"/orders/{order['entity_id']}")
    shipments = mag.search("/shipments", "order_id", order["entity_id"])
    invoices = mag.search("/invoices", "order_id", order["entity_id"])
    flt = quote("CustomerID eq 'PHONE01'")
    payments = acu.get("Payment", f"$filter={flt}")
    t = Table(title="An order entered in Acumatica, in both systems")
    for col in ("Acumatica", "total", "payments", "Magento", "total", "state", "shipments", "tracking", "invoices"):
        t.add_column(col)
    tracks = [tr.get("track_number", "") for s in shipments for tr in s.get("tracks") or []]
    t.add_row(
        key,
        f"{total:.2f}",
        str(len(payments)),
        str(done["increment_id"]),
        f"{done['grand_total']:.2f}",
        str(done["state"]),
        str(len(shipments)),
        ", ".join(tracks) or "-",
        str(len(invoices)),
    )
    console.print(t)
    if len(in_magento()) != 1:
        problems.append(f"{key}: {len(in_magento())} Magento orders")
    if len(payments) != 1:
        problems.append(f"{key}: {len(payments)} Acumatica payments (the check only: erpsync pays no ERP order)")
    if not shipments or not invoices:
        problems.append(f"{key}: Magento order has {len(shipments)} shipment(s), {len(invoices)} invoice(s)")
    return problems
