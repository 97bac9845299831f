"""Customers, both ways (store <-> ERP): email is the identity on both sides.

- An existing customer with the same email is linked, never duplicated; two target customers
  with one email are a conflict, failed with both ids for review.
- What is compared and hashed is the neutral projection of the synced fields: names, company,
  phone, default billing and shipping addresses, and the group (store customer group; the ERP's
  price class is mapped to it through ``settings.customers.price_classes``).
- The hash each side's record had right after our write is kept on its binding item, so the
  change that comes back from our own write is skipped without a write (no ping-pong).
- When both sides changed since the last sync, each field group is judged on its own against the
  last synced state; a group changed on both sides goes to its owner
  (``settings.customers.owner``) and the losing change is logged in the sync log.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from erpsync.errors import PermanentError
from erpsync.flows.base import SyncResult
from erpsync.flows.catalog import ERP, STORE
from erpsync.flows.sync import RecordSync
from erpsync.model import Address, Customer
from erpsync.state.bindings import Binding

GROUPS: dict[str, tuple[str, ...]] = {
    "contact": ("email", "first_name", "last_name", "company", "phone"),
    "addresses": ("billing", "shipping"),
    "group": ("group",),
}


class DuplicateCustomers(PermanentError):
    error_type = "conflict"


def _address(a: Address | None) -> dict[str, Any] | None:
    if a is None:
        return None
    lines = [x.strip() for x in a.street if x.strip()]
    street = lines[:1] + ([", ".join(lines[1:])] if len(lines) > 1 else [])
    return {
        "street": street,
        "city": a.city.strip(),
        "region": (a.region_code or a.region).strip(),
        "postcode": a.postcode.strip(),
        "country": a.country.strip().upper(),
    }


def projection(c: Customer) -> dict[str, Any]:
    """What the customers flows sync of a customer, normalised (the thing that is hashed)."""
    billing = _address(c.address)
    return {
        "email": c.email.strip().lower(),
        "first_name": c.first_name.strip(),
        "last_name": c.last_name.strip(),
        "company": c.company.strip(),
        "phone": c.phone.strip(),
        "billing": billing,
        "shipping": _address(c.shipping) or billing,
        "group": c.group,
    }


def _digest(value: Any) -> str:
    raw = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def group_hashes(c: Customer) -> dict[str, str]:
    p = projection(c)
    return {g: _digest({f: p[f] for f in fields}) for g, fields in GROUPS.items()}


def customer_hash(c: Customer) -> str:
    return _digest(projection(c))


def take(into: Customer, other: Customer, group: str) -> Customer:
    """``into`` with field group ``group`` taken from ``other``."""
    if group == "addresses":
        return into.model_copy(update={"address": other.address, "shipping": other.shipping})
    return into.model_copy(update={f: getattr(other, f) for f in GROUPS[group]})


class CustomerRules(RecordSync):
    """One customer from ``source`` to ``target`` (either role), created, linked or updated."""

    # -- neutral form: the ERP's price class <-> the store's group --------------------------------

    def neutral(self, c: Customer, role: str) -> Customer:
        """``c`` in neutral terms: the group is the store's group id, or None when groups are not
        synced (no ``price_classes`` mapping) or the ERP's price class maps to none."""
        classes = self.settings.customers.price_classes
        if not classes:
            return c.model_copy(update={"group": None})
        if role == ERP:
            inverse = {v: k for k, v in classes.items()}
            return c.model_copy(update={"group": inverse.get(c.price_class or "")})
        return c

    def for_role(self, c: Customer, role: str, current: Customer | None) -> Customer:
        """The neutral customer as the system of ``role`` takes it."""
        if role == ERP:
            cs = self.settings.customers
            group = c.group if c.group is not None else None
            return c.model_copy(
                update={
                    "price_class": cs.price_classes.get(group or "") or (current.price_class if current else None),
                    "customer_class": cs.customer_classes.get(group or ""),
                    "group": None,
                }
            )
        if c.group is None and current is not None:
            return c.model_copy(update={"group": current.group})
        return c

    @property
    def source_role(self) -> str:
        return self.ctx.spec.source

    @property
    def target_role(self) -> str:
        return self.ctx.spec.target

    # -- the steps ---------------------------------------------------------------------------------

    def before_fetch(self, notice: Any, binding: Binding | None) -> SyncResult | None:
        """An ERP customer the orders flow made for a guest checkout gets no store account (until
        the guest registers with that email and the two are linked)."""
        if self.source_role != ERP:
            return None
        if binding is not None:
            return None
        if self.bindings.find(self.entity, "guest", notice.id, self.source):
            return SyncResult("filtered", "", f"{self.source} customer {notice.id} was made for a guest checkout")
        return None

    def made_for_an_order(self, record: Customer) -> bool:
        """Whether this ERP customer is one the orders flow made (its id derived from its email):
        such customers (guests among them, also those made before guests were marked) link to a
        store account with their email but never create one."""
        id_for = getattr(self.ctx.source_port, "id_for", None)
        return self.source_role == ERP and callable(id_for) and id_for(record.email) == record.source_id

    def fetch(self, notice: Any) -> Customer:
        return self.neutral(self.ctx.source_port.get(notice.id), self.source_role)

    def must_skip(self, record: Customer) -> SyncResult | None:
        if record.is_guest:
            return SyncResult("filtered", "", f"{record.email} is a guest: guests get no account")
        if not getattr(self.ctx.target_port, "keeps_customers", True):
            return SyncResult(
                "filtered", "", f"{self.target} keeps no customers of its own: every order goes to one generic customer"
            )
        return None

    def content_hash(self, record: Customer) -> str:
        return customer_hash(record)

    def pair_key(self, record: Customer, binding: Binding | None) -> str:
        if binding is not None and binding.other_id:
            return super().pair_key(record, binding)
        return f"email:{record.email.lower()}"

    def write(self, record: Customer, binding: Binding | None, deps: Any = None) -> SyncResult:
        target = self.ctx.target_port
        if binding is not None and binding.other_id:
            current = self.neutral(target.get(binding.other_id), self.target_role)
            reverse = self.bindings.get(self.entity, self.target, binding.other_id, self.source)
            return self._reconcile(record, current, binding, reverse, linked="")
        found = [self.neutral(c, self.target_role) for c in target.find(record.email)]
        if len(found) > 1:
            ids = ", ".join(str(c.source_id) for c in found)
            raise DuplicateCustomers(
                f"{len(found)} {self.target} customers have the email {record.email} ({ids}): "
                "held for review (merge them in the ERP, then resync)",
                system=self.target,
            )
        if found:
            return self._reconcile(record, found[0], None, None, linked=f"linked existing {found[0].source_id}; ")
        if self.made_for_an_order(record):
            return SyncResult(
                "filtered",
                "",
                f"{self.source} customer {record.source_id} was made by erpsync for a store order "
                f"and {record.email} has no {self.target} account: none is created",
            )
        made, _ = self.create_once(
            (self.entity, self.source, str(record.source_id), self.target),
            binding,
            lambda: None,  # looked for by email just above
            lambda: target.create(self.for_role(record, self.target_role, None)),
        )
        created = self.neutral(made, self.target_role)
        if customer_hash(created) != customer_hash(record):
            # not what we sent: a customer with this id was there already (the orders flow made it
            # meanwhile, or our own earlier create): linked and brought in step, never bound as ours
            return self._reconcile(record, created, None, None, linked=f"linked existing {created.source_id}; ")
        self._bind(record, created, record, wrote_source=None, binding=None)
        return SyncResult("synced", str(created.source_id), f"created {self.target} customer {created.source_id}")

    def _reconcile(
        self, record: Customer, current: Customer, binding: Binding | None, reverse: Binding | None, linked: str
    ) -> SyncResult:
        """Bring a paired (or just found) target customer in step with ``record``."""
        last = (binding.data.get("groups") if binding else None) or {}
        target_changed = reverse is None or customer_hash(current) not in (reverse.seen_hash, reverse.written_hash)
        merged, lost = record, []
        if target_changed:
            mine, theirs = group_hashes(record), group_hashes(current)
            for group in GROUPS:
                if mine[group] == theirs[group]:
                    continue
                source_moved = mine[group] != last.get(group)
                target_moved = theirs[group] != last.get(group)
                if target_moved and not source_moved:
                    merged = take(merged, current, group)
                elif target_moved and source_moved:
                    owner = self.settings.customers.owner.get(group, STORE)
                    if owner == self.target_role:
                        merged = take(merged, current, group)
                        lost.append(f"{group} changed in {self.source} lost to {self.target}")
                    else:
                        lost.append(f"{group} changed in {self.target} lost to {self.source}")
        wrote_target = current
        if customer_hash(merged) != customer_hash(current):
            sent = self.for_role(merged, self.target_role, current)
            wrote_target = self.neutral(
                self.ctx.target_port.update(str(current.source_id), sent, current), self.target_role
            )
        wrote_source = None
        if customer_hash(merged) != customer_hash(record):
            sent = self.for_role(merged, self.source_role, record)
            wrote_source = self.neutral(
                self.ctx.source_port.update(str(record.source_id), sent, record), self.source_role
            )
        self._bind(
            record,
            wrote_target,
            merged,
            wrote_source=wrote_source,
            binding=binding,
            target_written=wrote_target is not current,
        )
        tid = str(current.source_id)
        conflict = ("; conflict: " + "; ".join(lost)) if lost else ""
        if wrote_target is current and wrote_source is None:
            return SyncResult("skipped", tid, f"{linked}already in step with {self.target} {tid}{conflict}")
        both = " and back to " + self.source if wrote_source is not None else ""
        return SyncResult("synced", tid, f"{linked}updated {self.target} customer {tid}{both}{conflict}")

    def _bind(
        self,
        record: Customer,
        target: Customer,
        agreed: Customer,
        *,
        wrote_source: Customer | None,
        binding: Binding | None,
        target_written: bool = True,
    ) -> None:
        """Bind both items with their hashes in one transaction, and the email index for orders."""
        source_state = wrote_source or record
        groups = group_hashes(agreed)
        fwd = Binding(
            self.entity,
            self.source,
            str(record.source_id),
            self.target,
            str(target.source_id),
            version=source_state.version,
            seen_hash=customer_hash(source_state),
            written_hash=customer_hash(wrote_source) if wrote_source is not None else None,
            data={"email": record.email, "groups": groups},
        )
        rev = Binding(
            self.entity,
            self.target,
            str(target.source_id),
            self.source,
            str(record.source_id),
            version=target.version,
            seen_hash=customer_hash(target),
            written_hash=customer_hash(target) if target_written else None,
            data={"email": target.email, "groups": groups},
        )
        if wrote_source is None and binding is not None:
            fwd.written_hash = binding.written_hash  # still what our last write left there
        erp_id = str(target.source_id) if self.target_role == ERP else str(record.source_id)
        erp_conn = self.target if self.target_role == ERP else self.source
        index = Binding(self.entity, "email", record.email.lower(), erp_conn, erp_id)
        self.bindings.bind_pair(fwd, rev, also=[index])
