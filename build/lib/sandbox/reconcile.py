"""Reconciliation: read every story order back from both systems and say what does not match."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sandbox.story import PlacedOrder, Story, v


@dataclass
class Row:
    """One order, side by side."""

    number: str
    kind: str
    m_total: Decimal
    m_status: str
    m_shipped: str
    m_tracks: str
    m_invoiced: Decimal
    a_orders: str
    a_total: Decimal | None
    a_status: str
    problems: list[str] = field(default_factory=list)


def _sum(values: Any) -> Decimal:
    return sum((Decimal(str(x or 0)) for x in values), Decimal("0"))


def reconcile(story: Story) -> list[Row]:
    return [_row(story, placed) for placed in story.orders]


def _row(story: Story, placed: PlacedOrder) -> Row:
    m = story.magento.call("GET", f"/orders/{placed.entity_id}")
    lines = [i for i in m["items"] if not i.get("parent_item_id")]
    physical = [i for i in lines if not i.get("is_virtual")]
    ordered = _sum(i["qty_ordered"] for i in lines)
    to_ship = _sum(i["qty_ordered"] for i in physical)
    shipped = _sum(i.get("qty_shipped") for i in physical)
    shipments = story.magento.search("/shipments", "order_id", placed.entity_id)
    invoices = story.magento.search("/invoices", "order_id", placed.entity_id)
    tracks = sorted(t["track_number"] for s in shipments for t in s.get("tracks", []))
    invoiced = _sum(i.get("grand_total") for i in invoices)
    sos = story.acumatica.orders_for(placed.increment_id)
    so = sos[0] if len(sos) == 1 else None
    row = Row(
        number=placed.increment_id,
        kind=placed.kind,
        m_total=Decimal(str(m["grand_total"])),
        m_status=str(m.get("status")),
        m_shipped=f"{shipped:g}/{to_ship:g}",
        m_tracks=",".join(tracks),
        m_invoiced=invoiced,
        a_orders=",".join(str(v(s["OrderNbr"])) for s in sos) or "-",
        a_total=Decimal(str(v(so["OrderTotal"]))) if so else None,
        a_status=str(v(so["Status"])) if so else "-",
    )
    p = row.problems
    if len(sos) != 1:
        p.append(f"{len(sos)} Acumatica orders (expected exactly 1)")
    if so is not None:
        if row.a_total != row.m_total:
            p.append(f"total {row.a_total} in Acumatica vs {row.m_total} in Magento")
        a_qty = _sum(v(d.get("OrderQty")) for d in so.get("Details", []))
        if a_qty != ordered:
            p.append(f"{a_qty:g} units in Acumatica vs {ordered:g} in Magento")
    expected_tracks = sorted(story.shipped.get(placed.increment_id, []))
    if tracks != expected_tracks:
        p.append(f"tracking {tracks} in Magento, expected {expected_tracks}")
    if placed.increment_id in story.partially:
        if not (0 < shipped < to_ship) or row.m_status != "processing":
            p.append(f"partial shipment shows {row.m_shipped}, status {row.m_status}")
    elif placed.increment_id in story.shipped and shipped != to_ship:
        p.append(f"shipped {row.m_shipped} in Magento, expected all")
    if placed.increment_id in story.invoiced and not invoices:
        p.append("invoice released in Acumatica but none in Magento")
    if placed.increment_id not in story.invoiced and invoices:
        p.append("Magento has an invoice Acumatica never released")
    fully = placed.increment_id in story.shipped and placed.increment_id not in story.partially
    if fully and placed.increment_id in story.invoiced:
        if row.m_status != "complete":
            p.append(f"shipped and invoiced but Magento status is {row.m_status}")
        if invoiced != row.m_total:
            p.append(f"invoiced {invoiced} in Magento vs order total {row.m_total}")
    return row
