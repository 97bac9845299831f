"""Attributes, ERP -> store: each ERP attribute definition becomes a store product attribute, its
values the attribute's options, created when missing.

The store ignores the option ids a client sends and answers its own, so options are matched by
label and the binding keeps the table ERP value id -> store option id (``data.options``), which
the products flow reads. Options are only ever added: one dropped in the ERP stays in the store
(products may still use it). The attribute code is derived from the ERP's id (which may hold
spaces) and kept on the binding, so a renamed label never changes it.
"""

from __future__ import annotations

import re
from typing import Any

from erpsync.errors import PermanentError
from erpsync.flows.base import SyncResult
from erpsync.flows.batched import digest
from erpsync.flows.sync import RecordSync
from erpsync.model.catalog import Attribute
from erpsync.state.bindings import Binding


class OptionMissing(PermanentError):
    error_type = "option_missing"


def store_code(attribute_id: str) -> str:
    """An ERP attribute id as a store attribute code (``^[a-z][a-z0-9_]{0,59}$``): lower case,
    every run of other characters as one ``_``."""
    code = re.sub(r"[^a-z0-9]+", "_", attribute_id.strip().lower()).strip("_")
    if not code or not code[0].isalpha():
        code = f"a_{code}"
    return code[:60]


def option_labels(attribute: Attribute) -> dict[str, str]:
    """ERP value id -> the store option label: its description, made unique with the value id when
    two values share one."""
    live = [o for o in attribute.options if not o.disabled]
    seen: dict[str, int] = {}
    for o in live:
        seen[o.label.strip().lower()] = seen.get(o.label.strip().lower(), 0) + 1
    return {
        o.value_id: o.label.strip() if seen[o.label.strip().lower()] == 1 else f"{o.label.strip()} ({o.value_id})"
        for o in live
    }


class AttributeRules(RecordSync):
    def content_hash(self, record: Attribute) -> str:
        return digest({"label": record.label, "input": record.input, "options": option_labels(record)})

    def write(self, record: Attribute, binding: Binding | None, deps: Any = None) -> SyncResult:
        target = self.ctx.target_port
        code = binding.other_id if binding is not None and binding.other_id else store_code(record.source_id)
        store = target.find(code) if binding is not None and binding.other_id else None
        created = False
        if store is None:
            store, created = self.create_once(
                (self.entity, self.source, record.source_id, self.target),
                binding,
                lambda: target.find(code),
                lambda: target.create(code, self.labelled(record)),
                look_first=True,
            )
        if store is None:
            raise OptionMissing(f"{self.target} has no attribute {code} after creating it", system=self.target)
        labels = option_labels(record)
        known = {k.lower(): v for k, v in store.options.items()}
        missing = [label for label in labels.values() if label.lower() not in known]
        if missing:
            store = target.add_options(code, missing)
            known = {k.lower(): v for k, v in store.options.items()}
        lost = [f"{vid} ({label})" for vid, label in labels.items() if label.lower() not in known]
        if lost:
            raise OptionMissing(
                f"{self.target} attribute {code} has no option for {self.source} value(s) {', '.join(lost)} "
                "after adding them",
                system=self.target,
            )
        options = {vid: known[label.lower()] for vid, label in labels.items()}
        self.bind_one_way(record, store.code, {"options": options, "id": store.id, "input": record.input})
        what = "created" if created else ("added options to" if missing else "already had")
        return SyncResult(
            "skipped" if what == "already had" and binding is not None else "synced",
            code,
            f"{what} {self.target} attribute {code} ({len(options)} option(s))",
        )

    @staticmethod
    def labelled(record: Attribute) -> Attribute:
        """``record`` with its live options only, each under its store label."""
        labels = option_labels(record)
        live = [o.model_copy(update={"label": labels[o.value_id]}) for o in record.options if o.value_id in labels]
        return record.model_copy(update={"options": live})
