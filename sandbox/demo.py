"""`make demo`: the order-to-cash story on the local stack, printed side by side.

Starts the local stack (moto, both sims, the webhook API, pollers, fast schedules), seeds a
catalog and customers, places 24 orders in Magento (a guest, configurables, coupons, several
quantities; half announced by webhook, half left to the schedule), waits for them in Acumatica,
ships most of them there (one partially) and releases invoices, waits for shipments and
invoices to come back to Magento, runs every flow once more to show it changes nothing, and
prints both systems side by side with a summary of the sync log. Then the catalog: Acumatica's
demo company catalog (a matrix item, a kit, price classes, tier and promotional prices, two
warehouses) reaches Magento, and so do a price change and a stock receipt released in Acumatica
(``sandbox/catalog_demo.py``); an order entered in Acumatica (``erp_order_demo``), a refund made in
Magento (``refund_demo``) and a return in Adobe Commerce (``return_demo``). Exits 1 if anything does
not reconcile.
"""

from __future__ import annotations

import logging
import os
import sys
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table

from sandbox.catalog_demo import catalog_chapter
from sandbox.erp_order_demo import erp_order_chapter
from sandbox.reconcile import Row, reconcile
from sandbox.refund_demo import refund_chapter
from sandbox.return_demo import return_chapter
from sandbox.story import AcumaticaUser, MagentoAdmin, Story, wait_for

console = Console(width=200)
ORDERS = 24


def main() -> int:
    from sandbox.local.stack import LocalStack

    state_file = Path(".erpsync/demo.json")
    with LocalStack(schedule_seconds=2.0, state_file=state_file) as stack:
        quiet()
        info = stack.info
        story = Story(
            magento=MagentoAdmin(**info["magento"]),
            acumatica=AcumaticaUser(**info["acumatica"]),
            api_url=info["api_url"],
            webhook_secret=info["webhook_secrets"]["magento"],
        )
        configure(state_file)
        console.rule("[bold]1. A shop and a warehouse")
        story.seed_catalog()
        customers = story.seed_customers()
        console.print(
            f"{len(story.catalog)} products in Magento (stock items in Acumatica), {len(customers)} customers"
        )

        console.rule("[bold]2. Customers buy")
        story.place_orders(customers, ORDERS)
        console.print(f"{ORDERS} orders placed; {ORDERS // 2} announced by webhook, the rest found by the schedule")
        wait_for(
            "every order in Acumatica",
            lambda: all(story.acumatica.orders_for(o.increment_id) for o in story.orders),
            timeout_s=90,
        )
        console.print("every order is in Acumatica")

        console.rule("[bold]3. The warehouse ships and bills in Acumatica")
        story.ship_and_invoice()
        console.print(
            f"{len(story.shipped)} shipments confirmed ({len(story.partially)} partial), "
            f"{len(story.invoiced)} invoices released"
        )
        wait_for("shipments and invoices in Magento", lambda: not any(r.problems for r in reconcile(story)), 90)

        console.rule("[bold]4. Every flow once more: nothing changes")
        before = fingerprint(story)
        problems = rerun_all(story)
        after = fingerprint(story)
        rows = reconcile(story)
        show(rows)
        summary()
        problems += [f"{r.number}: {p}" for r in rows for p in r.problems]
        if before != after:
            problems.append("running the flows again changed something")

        console.rule("[bold]5. The catalog comes from Acumatica")
        problems += catalog_chapter(story, console)

        console.rule("[bold]6. An order entered in Acumatica")
        problems += erp_order_chapter(story, console)

        console.rule("[bold]7. A refund in Magento")
        problems += refund_chapter(story, console)

        console.rule("[bold]8. A return in Adobe Commerce")
        problems += return_chapter(story, console)
        story.magento.close()
        story.acumatica.close()
    if problems:
        console.print("[red bold]Does not reconcile:[/]")
        for p in problems:
            console.print(f"  - {p}")
        return 1
    console.print(
        f"[green bold]All {ORDERS} orders reconcile; a second run changed nothing; the catalog, a price and a "
        "stock change reached Magento; an order entered in Acumatica was paid, shipped and invoiced there and "
        "completed in Magento; a refund made in Magento landed in Acumatica to the cent, paid out once; a return "
        "authorized in Magento was received in Acumatica and credited back to the cent.[/]"
    )
    return 0


def quiet() -> None:
    """The story is told by the tables; keep the per-request logs out of the way."""
    for name in ("httpx", "erpsync", "sandbox", "uvicorn", "werkzeug"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # a record that waits for another (stock for a product not made yet) is retried, and a pool of
    # ten HTTP connections shared by more threads drops the spare ones: neither is news here
    logging.getLogger("erpsync.worker").setLevel(logging.ERROR)
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)


def configure(state_file: Path) -> None:
    """Point this process at the stack and set the merchant's settings."""
    from cli.target import use_local

    use_local(state_file)
    from erpsync.state.settings import SettingsStore

    SettingsStore(os.environ["BINDINGS_TABLE"]).update({"tax_id": "STORETAX"}, actor="demo")


def rerun_all(story: Story) -> list[str]:
    """Poll and drain every flow, and resync every order by hand: each must be a no-op."""
    from erpsync.flows.catalog import NAMES
    from erpsync.runtime.lambda_app import build

    for flow in NAMES:
        rt = build(flow)
        rt.poll()
        rt.drain()
    orders = build("orders")
    outcomes = {o.increment_id: orders.sync_now(str(o.entity_id)).outcome for o in story.orders}
    return [f"{n}: a resync was {outcome}, not skipped" for n, outcome in outcomes.items() if outcome != "skipped"]


def fingerprint(story: Story) -> tuple[int, int, int]:
    """How many Acumatica orders, Magento shipments and Magento invoices exist."""
    sos = story.acumatica.get("SalesOrder", "$select=OrderNbr")
    shipments = story.magento.search("/shipments", "entity_id", 0, "gt")
    invoices = story.magento.search("/invoices", "entity_id", 0, "gt")
    return len(sos), len(shipments), len(invoices)


def show(rows: list[Row]) -> None:
    t = Table(title="Each order in both systems", show_lines=False)
    for col in ("Magento #", "kind", "total", "status", "shipped", "tracking", "invoiced"):
        t.add_column(col, style="cyan" if col == "Magento #" else None)
    for col in ("Acumatica SO", "total", "status", "ok"):
        t.add_column(col, style="magenta" if col == "Acumatica SO" else None)
    for r in rows:
        t.add_row(
            r.number,
            r.kind,
            f"{r.m_total:.2f}",
            r.m_status,
            r.m_shipped,
            r.m_tracks or "-",
            f"{r.m_invoiced:.2f}" if r.m_invoiced else "-",
            r.a_orders,
            f"{r.a_total:.2f}" if r.a_total is not None else "-",
            r.a_status,
            "[green]yes[/]" if not r.problems else "[red]" + "; ".join(r.problems) + "[/]",
        )
    console.print(t)


def summary() -> None:
    from erpsync.state.synclog import SyncLog

    rows = SyncLog(os.environ["SYNC_LOG_TABLE"]).recent(limit=100_000)
    counts = Counter((r.get("flow", ""), r.get("outcome", "")) for r in rows)
    t = Table(title="Sync log")
    outcomes = ["synced", "skipped", "filtered", "retrying", "failed"]
    t.add_column("flow")
    for o in outcomes:
        t.add_column(o, justify="right")
    for flow in sorted({f for f, _ in counts}):
        t.add_row(flow, *[str(counts.get((flow, o), 0)) for o in outcomes])
    console.print(t)


def choose(argv: list[str] | None = None) -> int:
    """``make demo [STORE=shopify] [ERP=quickbooks]``: the whole story for Magento and Acumatica,
    order to cash (``sandbox.pair_demo``) for any other pair."""
    from sandbox import pair_demo

    def runner(store: str, erp: str) -> int:
        return main() if (store, erp) == ("magento", "acumatica") else pair_demo.run(store, erp)

    return pair_demo.main(argv, runner)


if __name__ == "__main__":
    sys.exit(choose())
