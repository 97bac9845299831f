"""Stock, ERP -> store: each SKU's quantity per ERP warehouse becomes the store's source quantities.

The quantity kind and the warehouses come from ``settings.catalog.stock``: one store source per
warehouse (``sources``), or the chosen warehouses summed into one source (``default_source``).
The default kind, *available for shipping*, is on hand less what is allocated to orders or
shipped, so the store's own open orders (which the store already holds back as reservations) are
not deducted twice (see docs/CATALOG.md, "Which quantity").
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from erpsync.flows.batched import BatchedSync
from erpsync.model.catalog import StockLevel

KINDS = {"available_for_shipping": "for_shipping", "available": "available", "on_hand": "on_hand"}


class StockRules(BatchedSync):
    noun = "stock"

    def for_store(self, value: StockLevel) -> tuple[StockLevel | None, str]:
        cfg = self.settings.catalog.stock
        kind = KINDS[cfg.quantity]
        chosen = {w: getattr(q, kind) for w, q in value.warehouses.items() if not cfg.warehouses or w in cfg.warehouses}
        quantities: dict[str, Decimal] = {}
        if cfg.sources:
            for warehouse, source in cfg.sources.items():
                if not cfg.warehouses or warehouse in cfg.warehouses:
                    quantities[source] = quantities.get(source, Decimal(0)) + chosen.get(warehouse, Decimal(0))
        else:
            quantities[cfg.default_source] = sum(chosen.values(), Decimal(0))
        if not cfg.backorders:  # a store without backorders sells nothing below zero
            quantities = {s: max(q, Decimal(0)) for s, q in quantities.items()}
        in_stock = {s: q > 0 or cfg.backorders for s, q in quantities.items()}
        return StockLevel(sku=value.sku, quantities=quantities, in_stock=in_stock, version=value.version), ""

    def projection(self, value: StockLevel) -> Any:
        return {s: [str(q.normalize()), value.in_stock.get(s)] for s, q in sorted(value.quantities.items())}

    def write(self, values: list[StockLevel]) -> dict[str, str]:
        return dict(self.ctx.target_port.write(values))

    def describe(self, ready: StockLevel) -> str:
        parts = ", ".join(f"{source} {q.normalize()}" for source, q in sorted(ready.quantities.items()))
        return f"stock {parts} written to {self.target}"
