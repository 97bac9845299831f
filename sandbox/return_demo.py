"""Chapter 8 of the demo: a return in Adobe Commerce. The Magento sim turns into Adobe Commerce (Open
Source has no returns); the merchant authorizes the return of one item of a delivered order; it
becomes an Acumatica RM order; the warehouse receives it there; the Magento return says received;
the credit memo of the receipt lands on the Magento order to the cent. Nobody runs a command."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx
from rich.console import Console
from rich.table import Table

from sandbox.story import Story, v, wait_for


def return_chapter(story: Story, console: Console) -> list[str]:
    """Tell the story; the problems found (empty: it all adds up)."""
    acu, mag = story.acumatica, story.magento
    base = mag.http.base_url
    httpx.post(f"{base.scheme}://{base.netloc.decode()}/_sim/seed", json={"edition": "commerce"}).raise_for_status()
    order, item = _returnable(story)
    if order is None or item is None:
        return ["no delivered order with an item left to return"]
    body = {
        "rmaDataObject": {
            "order_id": order["entity_id"],
            "items": [
                {
                    "order_item_id": item["item_id"],
                    "qty_requested": 1,
                    "qty_authorized": 1,
                    "reason": "wrong size",
                    "condition": "unopened",
                    "resolution": "refund",
                    "status": "authorized",
                }
            ],
        }
    }
    rma = mag.call("POST", "/returns", json=body)
    console.print(
        f"Magento (Adobe Commerce): return {rma['increment_id']} of one {item['sku']} from order "
        f"{order['increment_id']}, authorized; nobody runs a command"
    )
    flt = quote(f"OrderType eq 'RM' and ExternalRef eq '{rma['increment_id']}'")

    def return_orders() -> list[dict[str, Any]]:
        return list(acu.get("SalesOrder", f"$filter={flt}&$expand=Details"))

    wait_for(f"return {rma['increment_id']} in Acumatica", lambda: bool(return_orders()), timeout_s=90)
    [rm] = return_orders()
    key = f"{v(rm['OrderType'])}/{v(rm['OrderNbr'])}"
    console.print(f"Acumatica: return order {key}; the warehouse receives it (a receipt, confirmed)")
    acu.action(
        "SalesOrder",
        "SalesOrderCreateReceipt",
        {"OrderType": rm["OrderType"], "OrderNbr": rm["OrderNbr"]},
        {"WarehouseID": {"value": "WHOLESALE"}},
    )
    [fresh] = acu.get("SalesOrder", f"$filter={flt}&$expand=Shipments")
    receipt = str(v(fresh["Shipments"][-1]["ShipmentNbr"]))
    acu.action("Shipment", "ConfirmShipment", {"ShipmentNbr": {"value": receipt}})

    def received() -> bool:
        return bool(mag.call("GET", f"/returns/{rma['entity_id']}")["status"] == "received")

    wait_for(f"return {rma['increment_id']} received in Magento", received, timeout_s=90)
    acu.action("Shipment", "PrepareInvoice", {"ShipmentNbr": {"value": receipt}})
    by_nbr = quote(f"ShipmentNbr eq '{receipt}'")
    shipments = acu.get("Shipment", f"$filter={by_nbr}&$expand=Orders")
    [row] = [r for s in shipments for r in s.get("Orders") or []]
    memo_nbr = str(v(row["InvoiceNbr"]))
    acu.action(
        "SalesInvoice", "ReleaseSalesInvoice", {"Type": {"value": "Credit Memo"}, "ReferenceNbr": {"value": memo_nbr}}
    )
    console.print(f"Acumatica: the receipt's credit memo {memo_nbr}, released")
    marker = f"[erpsync ref: {memo_nbr}]"

    def store_memos() -> list[dict[str, Any]]:
        memos = mag.search("/creditmemos", "order_id", order["entity_id"])
        return [m for m in memos if any(marker in str(c.get("comment")) for c in m.get("comments") or [])]

    wait_for(
        f"credit memo {memo_nbr} on Magento order {order['increment_id']}", lambda: bool(store_memos()), timeout_s=90
    )
    [memo] = store_memos()
    memo_flt = quote(f"Type eq 'Credit Memo' and ReferenceNbr eq '{memo_nbr}'")
    [cm] = acu.get("SalesInvoice", f"$filter={memo_flt}")
    after = mag.call("GET", f"/returns/{rma['entity_id']}")
    t = Table(title="A return in Adobe Commerce, in both systems")
    for col in (
        "Magento return",
        "status",
        "returned",
        "Acumatica",
        "receipt",
        "credit memo",
        "amount",
        "Magento credit memo",
    ):
        t.add_column(col)
    t.add_row(
        str(rma["increment_id"]),
        str(after["status"]),
        ", ".join(f"{i['qty_returned']} x {item['sku']}" for i in after["items"]),
        key,
        receipt,
        memo_nbr,
        f"{Decimal(str(v(cm['Amount']))):.2f}",
        f"{memo['increment_id']}: {Decimal(str(memo['base_grand_total'])):.2f}",
    )
    console.print(t)
    problems = []
    if Decimal(str(memo["base_grand_total"])) != Decimal(str(v(cm["Amount"]))):
        problems.append(
            f"return {rma['increment_id']}: Magento credited {memo['base_grand_total']}, Acumatica {v(cm['Amount'])}"
        )
    if [i["qty_returned"] for i in after["items"]] != [1]:
        problems.append(f"return {rma['increment_id']}: Magento shows {after['items']} returned")
    return problems


def _returnable(story: Story) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """A shipped and invoiced story order and an item of it shipped and not refunded."""
    for placed in story.orders:
        if placed.increment_id not in story.invoiced:
            continue
        order = story.magento.call("GET", f"/orders/{placed.entity_id}")
        for it in order["items"]:
            shipped = Decimal(str(it.get("qty_shipped") or 0))
            refunded = Decimal(str(it.get("qty_refunded") or 0))
            if it.get("parent_item_id") is None and it.get("product_type") == "simple" and shipped - refunded >= 1:
                return order, it
    return None, None
