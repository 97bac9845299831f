"""Chapter 7 of the demo: a Magento order is refunded in part (one item of a discounted line, and its
shipping) and the credit memo lands in Acumatica with the refunded amount to the cent, released and
paid out by a refund; nobody runs a command, and the next polls write nothing more."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import quote

from rich.console import Console
from rich.table import Table

from sandbox.story import Story, v, wait_for


def refund_chapter(story: Story, console: Console) -> list[str]:
    """Tell the story; the problems found (empty: it all adds up)."""
    problems: list[str] = []
    acu, mag = story.acumatica, story.magento
    order, line = _part_to_refund(story)
    if order is None or line is None:
        return ["no invoiced order with two items or more to refund in part"]
    memo_id = mag.call(
        "POST",
        f"/order/{order['entity_id']}/refund",
        json={
            "items": [{"order_item_id": line["item_id"], "qty": 1}],
            "notify": True,
            "comment": {"comment": "One item came back damaged", "is_visible_on_front": 1},
        },
    )
    memo = mag.call("GET", f"/creditmemo/{memo_id}")
    refunded = Decimal(str(memo["base_grand_total"]))
    console.print(
        f"Magento: credit memo {memo['increment_id']} on order {order['increment_id']}: one {line['sku']} and the "
        f"shipping, {refunded:.2f} of {Decimal(str(order['grand_total'])):.2f}; nobody runs a command"
    )
    flt = quote(f"Type eq 'Credit Memo' and ExternalRef eq '{memo['increment_id']}'")

    def credit_memos() -> list[dict[str, Any]]:
        return list(acu.get("SalesInvoice", f"$filter={flt}&$expand=Details"))

    def paid_out() -> bool:
        found = credit_memos()
        return bool(found) and v(found[0]["Status"]) == "Closed"

    wait_for(f"credit memo {memo['increment_id']} in Acumatica", paid_out, timeout_s=90)
    [cm] = credit_memos()
    rflt = quote(f"Type eq 'Refund' and ExternalRef eq '{memo['increment_id']}'")
    refunds = list(acu.get("Payment", f"$filter={rflt}"))
    t = Table(title="A refund made in Magento, in both systems")
    for col in ("Magento credit memo", "refunded", "Acumatica credit memo", "amount", "status", "refund", "paid out"):
        t.add_column(col)
    t.add_row(
        str(memo["increment_id"]),
        f"{refunded:.2f}",
        str(v(cm["ReferenceNbr"])),
        f"{Decimal(str(v(cm['Amount']))):.2f}",
        str(v(cm["Status"])),
        ", ".join(str(v(r["ReferenceNbr"])) for r in refunds) or "-",
        ", ".join(f"{Decimal(str(v(r['PaymentAmount']))):.2f}" for r in refunds) or "-",
    )
    console.print(t)
    if Decimal(str(v(cm["Amount"]))) != refunded:
        problems.append(f"credit memo {memo['increment_id']}: Acumatica {v(cm['Amount'])} is not Magento's {refunded}")
    if len(refunds) != 1 or Decimal(str(v(refunds[0]["PaymentAmount"]))) != refunded:
        problems.append(f"credit memo {memo['increment_id']}: {len(refunds)} refund(s) in Acumatica")
    return problems


def _part_to_refund(story: Story) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """An invoiced story order with two items or more (one of them is refunded), and that item's
    line: a discounted one when there is one."""
    for placed in sorted(story.orders, key=lambda o: o.kind != "coupon"):
        if placed.increment_id not in story.invoiced:
            continue
        order = story.magento.call("GET", f"/orders/{placed.entity_id}")
        lines = [
            it
            for it in order["items"]
            if it.get("parent_item_id") is None and Decimal(str(it.get("qty_invoiced") or 0)) > 0
        ]
        if sum(Decimal(str(it["qty_invoiced"])) for it in lines) >= 2:
            lines.sort(key=lambda it: -Decimal(str(it.get("discount_amount") or 0)))
            return order, lines[0]
    return None, None
