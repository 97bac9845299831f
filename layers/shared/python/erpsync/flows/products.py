"""Products, ERP -> store: stock and non-stock items become simple (or virtual) products, templates
with their matrix items become configurable products with their children, kits become bundles
(where ``settings.catalog.bundles`` says so).

Dependencies first: the attributes the item uses (their option table) and its categories are
synced before it, and a configurable's children before the configurable, which is then written
with its options and links in one payload (the store drops links an update leaves out).

The ERP owns the catalog. What the store last held is not read back: each write sends everything
the ERP owns of the product (category links and configurable links included, never left out), so
a change made in the store is overwritten at the product's next ERP change; the sync result says
so. Fields handed to the store (``settings.catalog.store_owns``) are sent on create only. An
inactive item is disabled, never deleted; one never synced is left out. A matrix child changes
through its template; each child's hash is kept on the template's binding, so a change of one
child writes that child alone.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from erpsync.errors import PermanentError
from erpsync.flows.attributes import AttributeRules, option_labels
from erpsync.flows.base import SyncResult
from erpsync.flows.batched import digest
from erpsync.flows.categories import CategoryRules
from erpsync.flows.sync import FlowContext, RecordSync
from erpsync.model import ChangeNotice
from erpsync.model.catalog import Attribute, Product, ProductDraft
from erpsync.state.bindings import Binding
from erpsync.systems.plugin import SOURCE, TARGET

BULK_MIN = 20
"""A load's page with at least this many product writes sends them in one bulk request."""
OVERWRITTEN = " (the ERP owns the catalog: what the store changed of it is overwritten)"


def draft_hash(draft: ProductDraft) -> str:
    """The hash of what a write sends (``variants`` only where the store takes them inline, so a
    store that does not keeps the hashes it had)."""
    return digest(draft.model_dump(mode="json", exclude={"variants"} if not draft.variants else None))


class BadItem(PermanentError):
    error_type = "validation"


class OptionMissing(PermanentError):
    error_type = "option_missing"


@dataclass
class Resolved:
    """What a product needs of the store, in the store's ids."""

    values: dict[str, dict[str, str]] = field(default_factory=dict)
    """ERP item id -> store attribute code -> option id or text."""
    attribute_ids: dict[str, str] = field(default_factory=dict)
    """ERP attribute id -> store attribute id (configurable options)."""
    codes: dict[str, str] = field(default_factory=dict)
    """ERP attribute id -> store attribute code."""
    categories: list[str] = field(default_factory=list)


class ProductRules(RecordSync):
    def __init__(self, ctx: FlowContext) -> None:
        super().__init__(ctx)
        self._attributes: AttributeRules | None = None
        self._categories: CategoryRules | None = None
        self._local = threading.local()
        """``memo``: the attribute bindings and category ids a ``load_many`` page looked up."""

    # -- neighbours: the attribute and category rules of this lane -------------------------------

    def _neighbour(self, entity: str, rules: type[Any]) -> Any:
        spec = self.ctx.spec.__class__(self.ctx.spec.name, entity, self.ctx.spec.source, self.ctx.spec.target, "")
        ctx = FlowContext(
            spec=spec,
            source=self.source,
            target=self.target,
            source_port=self.ctx.extra[(entity, SOURCE)],
            target_port=self.ctx.extra[(entity, TARGET)],
            bindings=self.bindings,
            settings=self.ctx.settings,
            leases=self.ctx.leases,
        )
        return rules(ctx)

    @property
    def attributes(self) -> AttributeRules:
        if self._attributes is None:
            self._attributes = self._neighbour("attribute", AttributeRules)
        return self._attributes

    @property
    def categories(self) -> CategoryRules:
        if self._categories is None:
            self._categories = self._neighbour("category", CategoryRules)
        return self._categories

    # -- the steps ---------------------------------------------------------------------------------

    def fetch(self, notice: ChangeNotice) -> Product:
        port = self.ctx.source_port
        snapshot = notice.fresh_snapshot(self.settings.snapshot_max_age_s)
        if snapshot is not None and callable(getattr(port, "from_snapshot", None)):
            return port.from_snapshot(snapshot)  # an initial load's page read it whole
        product: Product = port.get(notice.id)
        if product.parent:  # a matrix child: its template is what syncs
            return self.ctx.source_port.get(product.parent)
        return product

    def must_skip(self, record: Product) -> SyncResult | None:
        if not record.name:
            raise BadItem(f"{self.source} item {record.source_id} has no Description (the product name)")
        if record.kind == "configurable" and not record.children:
            raise BadItem(f"{self.source} template item {record.source_id} has no matrix items")
        if not record.active and not self.bindings.find(self.entity, self.source, record.source_id, self.target):
            return SyncResult("filtered", "", f"{record.source_id} is not active in {self.source} and not in the store")
        return None

    def children_of(self, record: Product) -> list[Product]:
        if record.kind != "configurable":
            return []
        return list(self.ctx.source_port.children(record.source_id))

    def content_hash(self, record: Product) -> str:
        return digest(record.model_dump(mode="json", exclude={"version"}))

    def up_to_date(self, record: Product, binding: Binding | None) -> SyncResult | None:
        """A template is never settled by its own hash: its matrix items change apart from it (the
        write compares each child's and the template's draft with what was written, and writes
        only what differs)."""
        if record.kind == "configurable":
            return None
        return super().up_to_date(record, binding)

    def dependencies(self, record: Product) -> tuple[list[Product], Resolved]:
        children = self.children_of(record)
        if self.kind_of(record) == "bundle":  # its components are in the store first
            for component in record.components:
                if not self.bindings.find(self.entity, self.source, component.sku, self.target):
                    notice = ChangeNotice(source=self.source, entity=self.entity, id=component.sku, target=self.target)
                    self.sync(notice)
        resolved = Resolved()
        for item in [record, *children]:
            resolved.values[item.source_id] = self._values(item, resolved)
        if (("category", TARGET)) in self.ctx.extra:  # a store without categories (Shopify) has none to link
            for cid in record.categories:
                resolved.categories.append(self._category(cid, record.source_id))
        return children, resolved

    def _attribute(self, attribute_id: str) -> Binding:
        memo: dict[tuple[str, str], Any] | None = getattr(self._local, "memo", None)
        if memo is not None and ("attribute", attribute_id) in memo:
            found: Binding = memo[("attribute", attribute_id)]
            return found
        binding = self._attribute_binding(attribute_id)
        if memo is not None:
            memo[("attribute", attribute_id)] = binding
        return binding

    def _category(self, category_id: str, item: str) -> str:
        memo: dict[tuple[str, str], Any] | None = getattr(self._local, "memo", None)
        if memo is not None and ("category", category_id) in memo:
            return str(memo[("category", category_id)])
        found = self.categories.store_id(category_id, depth=0, child=f"of item {item}")
        if memo is not None:
            memo[("category", category_id)] = found
        return found

    def _attribute_binding(self, attribute_id: str) -> Binding:
        binding = self.bindings.get("attribute", self.source, attribute_id, self.target)
        if binding is None or binding.status != "synced":
            self.attributes.sync(
                ChangeNotice(source=self.source, entity="attribute", id=attribute_id, target=self.target)
            )
            binding = self.bindings.get("attribute", self.source, attribute_id, self.target)
        if binding is None or not binding.other_id:
            raise OptionMissing(f"{self.source} attribute {attribute_id} could not be made in {self.target}")
        return binding

    def _values(self, item: Product, resolved: Resolved) -> dict[str, str]:
        if ("attribute", TARGET) not in self.ctx.extra:
            return self._labels(item, resolved)
        out: dict[str, str] = {}
        for attribute_id, raw in sorted(item.attributes.items()):
            binding = self._attribute(attribute_id)
            code = str(binding.other_id)
            resolved.codes[attribute_id] = code
            resolved.attribute_ids[attribute_id] = str(binding.data.get("id") or "")
            kind = binding.data.get("input", "select")
            if kind not in ("select", "multiselect"):
                out[code] = raw
                continue
            wanted = [v.strip() for v in raw.split(",") if v.strip()] if kind == "multiselect" else [raw]
            options: dict[str, str] = binding.data.get("options") or {}
            if any(v not in options for v in wanted):
                # the attribute may have gained the value since: sync it again, once
                self.attributes.sync(
                    ChangeNotice(source=self.source, entity="attribute", id=attribute_id, target=self.target)
                )
                again = self.bindings.get("attribute", self.source, attribute_id, self.target) or binding
                options = again.data.get("options") or {}
            missing = [v for v in wanted if v not in options]
            if missing:
                raise OptionMissing(
                    f"{self.source} item {item.source_id}: attribute {attribute_id} value "
                    f"{', '.join(repr(v) for v in missing)} is not one of the attribute's values "
                    f"(no {self.target} option for it)"
                )
            out[code] = ",".join(str(options[v]) for v in wanted)
        return out

    def _labels(self, item: Product, resolved: Resolved) -> dict[str, str]:
        """An item's values for a store without shop-wide attributes (Shopify names options on the
        product): the ERP attribute's label -> the value's label, read from the ERP's definition."""
        out: dict[str, str] = {}
        for attribute_id, raw in sorted(item.attributes.items()):
            definition = self._definition(attribute_id)
            name = definition.label.strip() or attribute_id
            resolved.codes[attribute_id] = resolved.attribute_ids[attribute_id] = name
            if definition.input not in ("select", "multiselect"):
                out[name] = raw
                continue
            labels = option_labels(definition)
            wanted = [v.strip() for v in raw.split(",") if v.strip()] if definition.input == "multiselect" else [raw]
            missing = [v for v in wanted if v not in labels]
            if missing:
                raise OptionMissing(
                    f"{self.source} item {item.source_id}: attribute {attribute_id} value "
                    f"{', '.join(repr(v) for v in missing)} is not one of the attribute's values"
                )
            out[name] = ", ".join(labels[v] for v in wanted)
        return out

    def _definition(self, attribute_id: str) -> Attribute:
        memo: dict[tuple[str, str], Any] | None = getattr(self._local, "memo", None)
        if memo is not None and ("definition", attribute_id) in memo:
            found: Attribute = memo[("definition", attribute_id)]
            return found
        definition: Attribute = self.ctx.extra[("attribute", SOURCE)].get(attribute_id)
        if memo is not None:
            memo[("definition", attribute_id)] = definition
        return definition

    # -- drafts ------------------------------------------------------------------------------------

    def draft(
        self, item: Product, resolved: Resolved, *, kind: str, visible: bool, children: list[str] | None = None
    ) -> ProductDraft:
        cfg = self.settings.catalog
        if kind in ("simple", "virtual") and (item.price is None or item.price <= 0):
            raise BadItem(
                f"{self.source} item {item.source_id} has no DefaultPrice ({item.price}): "
                "a store product without a price would sell for nothing"
            )
        return ProductDraft(
            sku=item.source_id,
            kind=kind,
            name=item.name,
            description=item.description or None,
            price=item.price if kind != "configurable" else None,
            weight=item.weight,
            active=item.active,
            visible=visible and item.visible,
            attribute_set_id=cfg.attribute_sets.get(item.item_class or "", cfg.default_attribute_set),
            tax_class_id=cfg.tax_classes.get(item.tax_category or "", cfg.default_tax_class),
            website_ids=list(cfg.website_ids),
            values=resolved.values.get(item.source_id, {}),
            category_ids=sorted(resolved.categories) if visible else [],
            children=children or [],
            stock_managed=item.kind != "virtual" or bool(item.components),
        )

    def _owned(self, draft: ProductDraft, creating: bool) -> ProductDraft:
        """``draft`` less the fields the store owns, unless the product is being created."""
        owns = set(self.settings.catalog.store_owns)
        if creating or not owns:
            return draft
        update: dict[str, Any] = {}
        if "description" in owns:
            update["description"] = None
        if "categories" in owns:
            update["category_ids"] = None
        if "name" in owns:
            update["name"] = ""
        return draft.model_copy(update=update)

    def kind_of(self, item: Product) -> str:
        if item.components and self.settings.catalog.bundles:  # a kit, stock or non-stock
            return "bundle"
        if item.kind == "virtual":
            return self.settings.catalog.non_stock_as
        return item.kind if item.kind in ("simple", "configurable") else "simple"

    # -- an initial load's page -------------------------------------------------------------------

    def load_many(self, notices: list[ChangeNotice]) -> list[SyncResult | Exception]:
        """A page of an initial load: each notice's ``SyncResult`` or the error its sync raised.

        The plain items whose notices carry them (``load_pages``) are checked, mapped and compared
        as ``sync`` does, and the new and changed ones go to the store in one bulk request
        (``save_many``) when there are at least ``BULK_MIN`` of them; the bindings are written 25 a
        request. Templates, kits, fewer changes and any product the bulk did not save are synced
        one by one (the bulk's refusal is then the store's answer to that product alone)."""
        out: dict[int, SyncResult | Exception] = {}
        plain: list[tuple[int, Product]] = []
        port = self.ctx.source_port
        for i, notice in enumerate(notices):
            snapshot = notice.fresh_snapshot(self.settings.snapshot_max_age_s)
            if snapshot is None or not callable(getattr(port, "from_snapshot", None)):
                continue
            try:
                item = port.from_snapshot(snapshot)
            except Exception as exc:
                out[i] = exc
                continue
            if item.kind != "configurable" and not item.components and not item.parent:
                plain.append((i, item))
        self._local.memo = {}
        try:
            writes = self._bulk_ready(plain, out)
            if len(writes) >= BULK_MIN and callable(getattr(self.ctx.target_port, "save_many", None)):
                self._bulk_write(writes, out)
            for i, notice in enumerate(notices):
                if i not in out:
                    out[i] = self._one(notice)
        finally:
            self._local.memo = None
        return [out[i] for i in range(len(notices))]

    def _one(self, notice: ChangeNotice) -> SyncResult | Exception:
        try:
            return self.sync(notice)
        except Exception as exc:
            return exc

    def _bulk_ready(
        self, plain: list[tuple[int, Product]], out: dict[int, SyncResult | Exception]
    ) -> list[tuple[int, Product, ProductDraft, Binding | None]]:
        """The items of ``plain`` to write, each with its draft and binding; the others settled in ``out``."""
        bindings = self.bindings.get_many(self.entity, self.source, [p.source_id for _, p in plain], self.target)
        writes: list[tuple[int, Product, ProductDraft, Binding | None]] = []
        for i, item in plain:
            binding = bindings.get(item.source_id)
            try:
                early = self.must_skip(item) or self.up_to_date(item, binding)
                if early is not None:
                    out[i] = early
                    continue
                _, resolved = self.dependencies(item)
                draft = self.draft(item, resolved, kind=self.kind_of(item), visible=True)
            except Exception as exc:
                out[i] = exc
                continue
            writes.append((i, item, draft, binding))
        return writes

    def _bulk_write(
        self,
        writes: list[tuple[int, Product, ProductDraft, Binding | None]],
        out: dict[int, SyncResult | Exception],
    ) -> None:
        """Write the changed drafts of ``writes`` in one bulk and bind them; settled ones go to ``out``
        (a product the bulk did not save is left out, to be synced alone)."""
        bound: dict[str, bool] = {}
        send: list[ProductDraft] = []
        hashes: dict[str, str] = {}
        binds: list[Binding] = []
        for i, item, draft, binding in writes:
            is_bound = binding is not None and bool(binding.other_id) and binding.status == "synced"
            h = draft_hash(draft)
            if is_bound and binding is not None and (binding.data or {}).get("draft") == h:
                binds.append(self._bound(item, str(binding.other_id), h, draft.kind))
                why = f"{self.target} product {item.source_id} already as the ERP has it"
                out[i] = SyncResult("skipped", str(binding.other_id), why)
                continue
            bound[item.source_id], hashes[item.source_id] = is_bound, h
            send.append(self._owned(draft, creating=not is_bound))
        saved = self.ctx.target_port.save_many(send, {d.sku for d in send if not bound[d.sku]}) if send else {}
        for i, item, draft, _ in writes:
            store_id = saved.get(item.source_id)
            if i in out or not isinstance(store_id, str):
                continue  # settled above, or the bulk did not save it: synced alone
            binds.append(self._bound(item, store_id, hashes[item.source_id], draft.kind))
            verb = "updated" if bound[item.source_id] else "created"
            over = OVERWRITTEN if bound[item.source_id] else ""
            out[i] = SyncResult("synced", store_id, f"{verb} {draft.kind} product {item.source_id} in bulk{over}")
        self.bindings.put_many(binds)

    def _bound(self, item: Product, store_id: str, h: str, kind: str) -> Binding:
        """The binding ``write`` leaves (``bind_one_way``) for a plain product."""
        return Binding(
            self.entity,
            self.source,
            item.source_id,
            self.target,
            store_id,
            version=item.version,
            seen_hash=self.content_hash(item),
            data={"draft": h, "children": {}, "kind": kind},
        )

    # -- write ---------------------------------------------------------------------------------------

    def write(self, record: Product, binding: Binding | None, deps: Any = None) -> SyncResult:
        children, resolved = deps
        data = dict(binding.data) if binding is not None else {}
        written: dict[str, str] = dict(data.get("children") or {})
        notes: list[str] = []
        child_ids: list[str] = []
        inline = bool(getattr(self.ctx.target_port, "variants_inline", False))
        for child in [] if inline else children:
            d = self.draft(child, resolved, kind=self.kind_of(child), visible=False)
            h = draft_hash(d)
            if written.get(child.source_id, "").startswith(h + ":"):
                child_ids.append(written[child.source_id].split(":", 1)[1])
                continue
            saved = self._save(d, exists=child.source_id in written)
            written[child.source_id] = f"{h}:{saved['id']}"
            child_ids.append(str(saved["id"]))
            notes.append(f"child {child.source_id}")
        kind = self.kind_of(record)
        draft = self.draft(record, resolved, kind=kind, visible=True, children=child_ids)
        if kind == "configurable":
            draft = draft.model_copy(update=self._options(record, children, resolved))
            if inline:  # the store's variants live in the product: written with it, in one request
                variants = [self.draft(c, resolved, kind=self.kind_of(c), visible=False) for c in children]
                draft = draft.model_copy(update={"variants": variants})
                written = {}
        if kind == "bundle":
            draft = draft.model_copy(update={"components": record.components})
        bound = binding is not None and bool(binding.other_id) and binding.status == "synced"
        h = draft_hash(draft)
        if bound and data.get("draft") == h and binding is not None:
            store_id = str(binding.other_id)
        else:
            saved = self._save(draft, exists=bound)
            store_id = str(saved["id"])
            notes.insert(0, "updated" if bound else "created")
        self.bind_one_way(record, store_id, {"draft": h, "children": written, "kind": kind})
        if not notes:
            return SyncResult(
                "skipped", store_id, f"{self.target} product {record.source_id} already as the ERP has it"
            )
        over = OVERWRITTEN if bound else ""
        return SyncResult("synced", store_id, f"{', '.join(notes)} {kind} product {record.source_id}{over}")

    def _options(self, record: Product, children: list[Product], resolved: Resolved) -> dict[str, Any]:
        options: dict[str, list[str]] = {}
        labels: dict[str, str] = {}
        for attribute_id in record.variant_attributes:
            store_attr = resolved.attribute_ids.get(attribute_id)
            code = resolved.codes.get(attribute_id)
            if not store_attr or not code:
                raise BadItem(
                    f"{self.source} template {record.source_id}: variant attribute {attribute_id} is not in the store"
                )
            values = []
            for child in children:
                value = resolved.values.get(child.source_id, {}).get(code)
                if value is None:
                    raise BadItem(
                        f"{self.source} template {record.source_id}: matrix item {child.source_id} has no value "
                        f"for variant attribute {attribute_id}"
                    )
                values.append(value)
            options[store_attr] = sorted(set(values), key=values.index)
            labels[store_attr] = attribute_id
        if not options:
            raise BadItem(f"{self.source} template {record.source_id}: its matrix items differ in no attribute")
        return {"options": options, "option_labels": labels}

    def _save(self, draft: ProductDraft, *, exists: bool) -> dict[str, Any]:
        """Write ``draft``: an update when the store has it, else a create made exactly once (a
        product the store already has with this SKU is taken over and brought in step)."""
        target = self.ctx.target_port
        if exists:
            return dict(target.save(self._owned(draft, creating=False), exists=True))
        key = (self.entity, self.source, draft.sku, self.target)
        made, created = self.create_once(
            key,
            self.bindings.get(*key),
            lambda: target.find(draft.sku),
            lambda: target.save(draft, exists=False),
            look_first=True,
        )
        if not created:
            made = target.save(self._owned(draft, creating=False), exists=True)
        self.bindings.put(Binding(*key, other_id=str(made["id"]), data={"kind": draft.kind}))
        return dict(made)
