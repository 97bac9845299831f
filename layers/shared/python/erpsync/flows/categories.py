"""Categories, ERP -> store: the ERP's item sales categories become store categories, parents
first, renames and moves followed.

A category's parent is synced before it (its dependency); a top-level ERP category goes under the
store's root category. The url key is the name's slug with the ERP id (``shoes-12``), so two
categories of one name never collide. A category whose parent does not exist in the ERP fails
with a reason naming both.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from erpsync.errors import NotFoundError, PermanentError
from erpsync.flows.base import SyncResult
from erpsync.flows.batched import digest
from erpsync.flows.sync import RecordSync
from erpsync.model import ChangeNotice
from erpsync.model.catalog import Category
from erpsync.state.bindings import Binding

MAX_DEPTH = 20


class ParentMissing(PermanentError):
    error_type = "parent_missing"


def slug(text: str) -> str:
    """``text`` as a url key part: ASCII, lower case, words joined by ``-``."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def url_key(name: str, source_id: str) -> str:
    return "-".join(x for x in (slug(name), slug(source_id)) if x) or "category"


class CategoryRules(RecordSync):
    def must_skip(self, record: Category) -> SyncResult | None:
        if not record.name:
            raise PermanentError(
                f"{self.source} category {record.source_id} has no description (the store needs a name)",
                error_type="validation",
                system=self.source,
            )
        return None

    def content_hash(self, record: Category) -> str:
        return digest({"name": record.name, "parent": record.parent_id, "position": record.position})

    def dependencies(self, record: Category) -> str:
        """The store id of the category's parent (synced first when it is not yet)."""
        if record.parent_id is None:
            return str(self.ctx.target_port.root())
        return self.store_id(record.parent_id, depth=0, child=record.source_id)

    def store_id(self, category_id: str, *, depth: int, child: str) -> str:
        """The store id of ERP category ``category_id``, syncing it first when unbound."""
        found = self.bindings.find(self.entity, self.source, category_id, self.target)
        if found:
            return found
        if depth >= MAX_DEPTH:
            raise ParentMissing(f"{self.source} category {child}: its parents nest deeper than {MAX_DEPTH} (a loop?)")
        try:
            parent = self.ctx.source_port.get(category_id)
        except NotFoundError:
            raise ParentMissing(
                f"{self.source} category {child} has parent {category_id}, which {self.source} does not have",
                system=self.source,
            ) from None
        grand = (
            str(self.ctx.target_port.root())
            if parent.parent_id is None
            else self.store_id(parent.parent_id, depth=depth + 1, child=category_id)
        )
        self.write(parent, self.bindings.get(self.entity, self.source, category_id, self.target), grand)
        found = self.bindings.find(self.entity, self.source, category_id, self.target)
        if not found:
            raise ParentMissing(f"{self.source} category {category_id} could not be made in {self.target}")
        return found

    def write(self, record: Category, binding: Binding | None, deps: Any = None) -> SyncResult:
        target = self.ctx.target_port
        parent = str(deps)
        key = url_key(record.name, record.source_id)
        if binding is not None and binding.other_id and binding.status == "synced":
            current = target.get(binding.other_id)
            if current is not None:
                target.update(binding.other_id, record, parent)
                self.bind_one_way(record, binding.other_id, {"parent": parent})
                moved = " and moved" if current[1] != parent else ""
                return SyncResult(
                    "synced", binding.other_id, f"updated{moved} {self.target} category {binding.other_id}"
                )
        made, _ = self.create_once(
            (self.entity, self.source, record.source_id, self.target),
            binding,
            lambda: target.find(key, parent),
            lambda: target.create(record, parent, key),
            look_first=True,
        )
        self.bind_one_way(record, str(made), {"parent": parent})
        return SyncResult("synced", str(made), f"created {self.target} category {made} under {parent}")

    def sync_parent(self, category_id: str) -> None:
        """Sync one category by id (a product's dependency)."""
        self.sync(ChangeNotice(source=self.source, entity=self.entity, id=category_id, target=self.target))
