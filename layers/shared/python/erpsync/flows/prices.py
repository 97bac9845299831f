"""Prices, ERP -> store: base price, a temporary markdown as a special price with its dates, and
quantity breaks per customer price class as tier prices.

ERP price classes become store customer groups through ``settings.catalog.price_groups``; a tier of
a price class not mapped there is left out (logged in the sync result). The store is written
through its price APIs, many SKUs per request; the whole price set of a SKU is written each time
it changed (tiers replaced, so a tier deleted in the ERP goes from the store too).
"""

from __future__ import annotations

from erpsync.flows.batched import BatchedSync
from erpsync.model.catalog import PriceSet, TierPrice

ALL = "ALL"


class PriceRules(BatchedSync):
    noun = "prices"

    def for_store(self, value: PriceSet) -> tuple[PriceSet | None, str]:
        groups = self.settings.catalog.price_groups
        tiers = []
        for t in value.tiers:
            if t.group == ALL:
                tiers.append(t)
            elif t.group in groups:
                tiers.append(TierPrice(group=groups[t.group], qty=t.qty, price=t.price))
        tiers.sort(key=lambda t: (t.group, t.qty))
        if value.base is None and value.special is None and not tiers:
            return None, f"{value.sku} has no price in {self.source}"
        return value.model_copy(update={"tiers": tiers}), ""

    def write(self, values: list[PriceSet]) -> dict[str, str]:
        return dict(self.ctx.target_port.write(values))

    def describe(self, ready: PriceSet) -> str:
        parts = []
        if ready.base is not None:
            parts.append(f"base {ready.base}")
        if ready.special is not None:
            parts.append(f"special {ready.special.price}")
        if ready.tiers:
            parts.append(f"{len(ready.tiers)} tier(s)")
        return f"prices ({', '.join(parts)}) written to {self.target}"
