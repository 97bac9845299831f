"""Prices, ERP -> store: base price, a temporary markdown as a special price with its dates, and
quantity breaks per customer price class as tier prices.

ERP price classes become store customer groups through ``settings.catalog.price_groups``; a tier of
a price class not mapped there is left out (logged in the sync result). The store is written
through its price APIs, many SKUs per request; the whole price set of a SKU is written each time
it changed (tiers replaced, so a tier deleted in the ERP goes from the store too). A special price
or the last tiers removed in the ERP are deleted from the store: the binding remembers whether
each was written, and the store's own rows are read and deleted.
"""

from __future__ import annotations

from erpsync.flows.batched import BatchedSync
from erpsync.model.catalog import PriceSet, TierPrice
from erpsync.state.bindings import Binding

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

    def projection(self, value: PriceSet) -> object:
        return value.model_dump(mode="json", exclude={"version", "clear_special", "clear_tiers"})

    def prepare(self, ready: PriceSet, old: Binding | None) -> PriceSet:
        """A special price or tiers written before that the ERP no longer has are cleared in the
        store (a price write only adds or replaces: it never says "none")."""
        had = old.data if old is not None else {}
        return ready.model_copy(
            update={
                "clear_special": ready.special is None and bool(had.get("special")),
                "clear_tiers": not ready.tiers and bool(had.get("tiers")),
            }
        )

    def remember(self, ready: PriceSet) -> dict[str, object]:
        return {"special": ready.special is not None, "tiers": bool(ready.tiers)}

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
        if ready.clear_special:
            parts.append("special price removed")
        if ready.clear_tiers:
            parts.append("tiers removed")
        return f"prices ({', '.join(parts)}) written to {self.target}"
