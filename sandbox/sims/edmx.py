"""OData v3 metadata (EDMX 1.0, as SAP Business One's Service Layer serves at ``/b1s/v1/$metadata``):
loaded with the standard library, and JSON bodies checked against it.

The B1 simulator validates the requests it gets with it, and the tests check every answer the
simulator gives with it (``tests/support/sap_b1.py``): one reading of the metadata for both.

What a body must be (the Service Layer's v1 JSON):

- every key is a declared property of the type (a navigation property too, in answers); an
  entity in an answer may also carry the annotations ``odata.metadata``, ``odata.id``,
  ``odata.etag`` and ``odata.type``;
- ``Edm.String`` a string; ``Edm.Int16/32/64`` an integer; ``Edm.Double``/``Decimal``/``Single`` a
  number; ``Edm.Boolean`` a boolean; ``Edm.DateTime`` ``YYYY-MM-DD`` with an optional
  ``THH:MM[:SS[.fff]][Z]``; ``Edm.Time`` ``HH:MM[:SS]``; an enum a member name; a complex type an
  object; ``Collection(...)`` a list of them; ``null`` unless the property is ``Nullable="false"``;
- requests only: integers and numbers may come as numeric strings and an enum as its database
  value, as SAP's own request examples send them (``"Quantity": "100"``, ``"CardType": "C"``); a
  property with ``Writable="false"`` or a navigation property is refused.

The wire format of ``Edm.DateTime``/``Edm.Time`` values in answers is UNVERIFIED (requests use
``"2014-04-04"`` in SAP's examples); the metadata declares no ``MaxLength``, so lengths are not
checked.

The ``odata_v2`` dialect (``check_answer``/``check_request`` with ``dialect="odata_v2"``, and
``check_v2_document`` for a whole answer) reads SAP Gateway's OData v2 JSON, as S/4HANA's A2X APIs
send it (plan ISSUE-13-SAP §4.1):

- an answer document is ``{"d": <entity>}``, ``{"d": {"results": [...], "__count"?: "<digits>",
  "__next"?: "<url>"}}`` or, for a function import returning one complex value, ``{"d": {"<Name>":
  {...}}}`` (UNVERIFIED for SAP);
- an entity carries ``__metadata {"id", "uri", "type": "<Namespace>.<Type>", "etag"}``, ``etag``
  present exactly when its type has a ``ConcurrencyMode="Fixed"`` property; a complex value at most
  ``__metadata {"type"}``; a navigation property is ``{"__deferred": {"uri"}}``, ``{"results":
  [...]}`` (to many) or an entity/null (to one), the entities checked against the target type;
- ``Edm.String`` a string no longer than ``MaxLength``; ``Edm.Decimal`` and ``Edm.Int64`` a
  **string** of digits within ``Precision``/``Scale``; ``Edm.Int16/32``/``Byte`` an integer;
  ``Edm.Double``/``Single`` a number or a numeric string (UNVERIFIED which SAP sends);
  ``Edm.Boolean`` a boolean; ``Edm.DateTime`` ``/Date(<ms>)/``; ``Edm.DateTimeOffset``
  ``/Date(<ms>+0000)/`` (any ``±hhmm``); ``Edm.Time`` ``PT<h>H<m>M<s>S``; ``null`` unless
  ``Nullable="false"``;
- requests: a property with ``sap:creatable="false"`` in a create or ``sap:updatable="false"`` in an
  update is refused, as are navigation properties in an update; a create may deep-insert through a
  navigation property (``{"results": [...]}``, or a bare list: UNVERIFIED that Gateway takes it),
  each entity checked as a create of the target type; ``__metadata`` is allowed and not judged;
  ``Edm.DateTime``/``DateTimeOffset`` may also come as ISO text (``2025-03-01T00:00:00``,
  UNVERIFIED that Gateway takes it).
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import date, time
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

Op = Literal["create", "update"]
Dialect = Literal["b1v1", "odata_v2"]
SAP_NS = "{http://www.sap.com/Protocols/SAPData}"
ANSWER_ANNOTATIONS = frozenset({"odata.metadata", "odata.id", "odata.etag", "odata.type"})
INTEGERS = frozenset({"Edm.Int16", "Edm.Int32", "Edm.Int64", "Edm.Byte", "Edm.SByte"})
NUMBERS = frozenset({"Edm.Double", "Edm.Decimal", "Edm.Single"})
TEXTS = frozenset({"Edm.String", "Edm.Guid", "Edm.Binary"})
_INT_TEXT = re.compile(r"-?\d+")
_NUMBER_TEXT = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_DATETIME = re.compile(r"(\d{4}-\d{2}-\d{2})(?:T(\d{2}:\d{2}(?::\d{2}(?:\.\d{1,7})?)?)Z?)?")
_TIME = re.compile(r"\d{2}:\d{2}(?::\d{2})?")
V2_DATETIME = re.compile(r"/Date\((-?\d+)\)/")
V2_DATETIMEOFFSET = re.compile(r"/Date\((-?\d+)([+-]\d{4})\)/")
V2_TIME = re.compile(r"PT(\d{1,2})H(\d{1,2})M(\d{1,2})(?:\.\d{1,7})?S")
_V2_DECIMAL = re.compile(r"-?(\d+)(?:\.(\d+))?")
_ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,7})?)?(?:Z|[+-]\d{2}:\d{2})?")
V2_ENVELOPE_KEYS = frozenset({"results", "__count", "__next"})


class MetadataError(ValueError):
    """The metadata document cannot be read (not EDMX, or a type it names is not declared)."""


@dataclass(frozen=True)
class Prop:
    """One declared property: ``type`` is qualified (``Edm.Double``, ``SAPB1.DocumentLine``)."""

    name: str
    type: str
    collection: bool
    nullable: bool
    writable: bool
    user_field: bool
    default: str | None = None
    """``DefaultValue``: for an enum its database value (``O``), else the value as text."""
    max_length: int | None = None
    precision: int | None = None
    scale: int | None = None
    creatable: bool = True
    """``sap:creatable`` (S/4 Gateway metadata; absent: true)."""
    updatable: bool = True
    """``sap:updatable``."""
    concurrency: bool = False
    """``ConcurrencyMode="Fixed"``: the property is the entity's ETag."""


@dataclass(frozen=True)
class StructuredType:
    """An entity type (``keys`` set) or a complex type."""

    name: str
    entity: bool
    keys: tuple[str, ...]
    props: dict[str, Prop]
    navigations: frozenset[str]
    nav_targets: dict[str, tuple[str, bool]] = field(default_factory=dict)
    """Navigation property -> (the target type's unqualified name, to many?), where the metadata's
    associations say (EDMX 1.0 ``Association``/``End``); empty for a file without them."""

    @property
    def etag_props(self) -> tuple[Prop, ...]:
        return tuple(p for p in self.props.values() if p.concurrency)


@dataclass(frozen=True)
class EnumType:
    name: str
    members: dict[str, str]
    """Member name -> its database value (``bost_Open`` -> ``O``)."""


@dataclass(frozen=True)
class Function:
    """A function import (``Login``): parameter name -> type."""

    name: str
    params: dict[str, str]
    return_type: str | None
    http_method: str


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(el: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in el if _local(c.tag) == name]


class Metadata:
    """The types, entity sets and function imports of one EDMX document."""

    def __init__(self, xml: bytes) -> None:
        try:
            root = ET.fromstring(xml)  # noqa: S314 (the sim's own metadata file, not input from a caller)
        except ET.ParseError as exc:
            raise MetadataError(f"not XML: {exc}") from exc
        schemas = [el for el in root.iter() if _local(el.tag) == "Schema"]
        if _local(root.tag) != "Edmx" or len(schemas) != 1:
            raise MetadataError("not an EDMX document with one Schema")
        schema = schemas[0]
        self.raw = xml
        self.namespace = schema.get("Namespace", "")
        self.types: dict[str, StructuredType] = {}
        self.enums: dict[str, EnumType] = {}
        self.entity_sets: dict[str, str] = {}
        self.set_flags: dict[str, tuple[bool, bool]] = {}
        """Entity set -> (``sap:creatable``, ``sap:updatable``), both true unless declared false."""
        self.functions: dict[str, Function] = {}
        self._ends: dict[tuple[str, str], tuple[str, bool]] = {}
        for el in schema:
            if _local(el.tag) == "Association":
                for end in _children(el, "End"):
                    self._ends[(el.get("Name", ""), end.get("Role", ""))] = (
                        self._unqualified(end.get("Type", "")),
                        end.get("Multiplicity") == "*",
                    )
        for el in schema:
            kind, name = _local(el.tag), el.get("Name", "")
            if kind in ("EntityType", "ComplexType"):
                self.types[name] = self._structured(el, kind == "EntityType")
            elif kind == "EnumType":
                self.enums[name] = EnumType(
                    name, {m.get("Name", ""): m.get("Value", "") for m in _children(el, "Member")}
                )
            elif kind == "EntityContainer":
                for item in el:
                    if _local(item.tag) == "EntitySet":
                        self.entity_sets[item.get("Name", "")] = self._unqualified(item.get("EntityType", ""))
                        self.set_flags[item.get("Name", "")] = (
                            item.get(f"{SAP_NS}creatable") != "false",
                            item.get(f"{SAP_NS}updatable") != "false",
                        )
                    elif _local(item.tag) == "FunctionImport":
                        self.functions[item.get("Name", "")] = Function(
                            item.get("Name", ""),
                            {p.get("Name", ""): p.get("Type", "") for p in _children(item, "Parameter")},
                            item.get("ReturnType"),
                            next((v for k, v in item.attrib.items() if _local(k) == "HttpMethod"), "POST"),
                        )
        self._check_references()

    @classmethod
    def load(cls, path: str | Path) -> Metadata:
        return cls(Path(path).read_bytes())

    # -- reading -------------------------------------------------------------------------------

    def _structured(self, el: ET.Element, entity: bool) -> StructuredType:
        keys: tuple[str, ...] = ()
        for key in _children(el, "Key"):
            keys = tuple(ref.get("Name", "") for ref in _children(key, "PropertyRef"))
        props: dict[str, Prop] = {}
        for p in _children(el, "Property"):
            declared = p.get("Type", "")
            inner = declared.removeprefix("Collection(").removesuffix(")")
            props[p.get("Name", "")] = Prop(
                name=p.get("Name", ""),
                type=inner,
                collection=declared.startswith("Collection("),
                nullable=p.get("Nullable", "true") != "false",
                writable=p.get("Writable", "true") != "false",
                user_field=p.get("UserField") == "true",
                default=p.get("DefaultValue"),
                max_length=_int_attr(p, "MaxLength"),
                precision=_int_attr(p, "Precision"),
                scale=_int_attr(p, "Scale"),
                creatable=p.get(f"{SAP_NS}creatable") != "false",
                updatable=p.get(f"{SAP_NS}updatable") != "false",
                concurrency=p.get("ConcurrencyMode") == "Fixed",
            )
        nav_els = _children(el, "NavigationProperty")
        navs = frozenset(n.get("Name", "") for n in nav_els)
        targets = {
            n.get("Name", ""): self._ends[end]
            for n in nav_els
            if (end := (self._unqualified(n.get("Relationship", "")), n.get("ToRole", ""))) in self._ends
        }
        return StructuredType(el.get("Name", ""), entity, keys, props, navs, targets)

    def _unqualified(self, name: str) -> str:
        return name.removeprefix(f"{self.namespace}.")

    def qualified(self, type_name: str) -> str:
        """``API_SALES_ORDER_SRV.A_SalesOrderType`` for ``A_SalesOrderType``."""
        return f"{self.namespace}.{type_name}"

    def _check_references(self) -> None:
        for t in self.types.values():
            for p in t.props.values():
                if not p.type.startswith("Edm.") and self._unqualified(p.type) not in {*self.types, *self.enums}:
                    raise MetadataError(f"{t.name}.{p.name} names the undeclared type {p.type}")
        for set_name, type_name in self.entity_sets.items():
            if type_name not in self.types:
                raise MetadataError(f"entity set {set_name} names the undeclared type {type_name}")

    def entity_type(self, entity_set: str) -> StructuredType:
        """The type of an entity set; ``KeyError`` naming the set when it is not declared."""
        try:
            return self.types[self.entity_sets[entity_set]]
        except KeyError:
            raise KeyError(f"no entity set {entity_set!r} in the metadata") from None

    def enum(self, prop: Prop) -> EnumType | None:
        return self.enums.get(self._unqualified(prop.type))

    def structured(self, prop: Prop) -> StructuredType | None:
        return self.types.get(self._unqualified(prop.type))

    # -- checking ------------------------------------------------------------------------------

    def check_answer(self, type_name: str, body: Any, dialect: Dialect = "b1v1") -> list[str]:
        """What is wrong with ``body`` as an answer's ``type_name`` (empty: nothing)."""
        if dialect == "odata_v2":
            return self._v2_object(self.types[type_name], body, type_name, None)
        return self._object(self.types[type_name], body, type_name, None)

    def check_request(self, type_name: str, body: Any, op: Op = "create", dialect: Dialect = "b1v1") -> list[str]:
        """What is wrong with ``body`` as the body of a create or update of ``type_name``."""
        if dialect == "odata_v2":
            return self._v2_object(self.types[type_name], body, type_name, op)
        return self._object(self.types[type_name], body, type_name, op)

    def check_v2_document(self, type_name: str, body: Any, function: str | None = None) -> list[str]:
        """What is wrong with a whole OData v2 answer (``{"d": ...}``) whose entities (or complex
        values) are ``type_name``: one, or a collection with ``results``; ``function`` names the
        function import for a single complex value wrapped in its name."""
        if not isinstance(body, dict) or set(body) != {"d"} or not isinstance(body["d"], dict):
            return [f"not an OData v2 answer {{'d': {{...}}}}: {_shown(body)}"]
        d = body["d"]
        if "results" not in d:
            if function is not None and not self.types[type_name].entity:
                if set(d) != {function}:
                    return [f"d: a function's single value is wrapped in {function!r}, got keys {sorted(d)}"]
                return self.check_answer(type_name, d[function], "odata_v2")
            return self.check_answer(type_name, d, "odata_v2")
        problems = [f"d: unexpected key {k!r} beside results" for k in sorted(set(d) - V2_ENVELOPE_KEYS)]
        if not isinstance(d["results"], list):
            return [*problems, "d.results: not a list"]
        for i, row in enumerate(d["results"]):
            problems += [
                f"{type_name}[{i}]{p.removeprefix(type_name)}" for p in self.check_answer(type_name, row, "odata_v2")
            ]
        if "__count" in d and not (isinstance(d["__count"], str) and d["__count"].isdigit()):
            problems.append(f"d.__count: a count is a string of digits, got {_shown(d['__count'])}")
        if "__next" in d and not isinstance(d["__next"], str):
            problems.append(f"d.__next: not a string: {_shown(d['__next'])}")
        return problems

    def check_parameters(self, function: str, body: Any) -> list[str]:
        """What is wrong with ``body`` as the parameters of function import ``function``."""
        declared = self.functions[function].params
        if not isinstance(body, dict):
            return [f"{function}: the parameters must be an object, not {type(body).__name__}"]
        problems = []
        for key, value in body.items():
            if key not in declared:
                problems.append(f"{function}.{key}: not a parameter of {function}")
            elif value is not None and (why := _primitive(declared[key], value, request=True)):
                problems.append(f"{function}.{key}: {why}")
        return problems

    def _object(self, t: StructuredType, body: Any, path: str, op: Op | None) -> list[str]:
        if not isinstance(body, dict):
            return [f"{path}: expected an object ({t.name}), got {_shown(body)}"]
        problems: list[str] = []
        for key, value in body.items():
            where = f"{path}.{key}"
            prop = t.props.get(key)
            if prop is None:
                if op is None and t.entity and key in ANSWER_ANNOTATIONS:
                    continue
                if key in t.navigations:
                    if op is not None:
                        problems.append(f"{where}: a navigation property cannot be written")
                    elif value is not None and not isinstance(value, dict | list):
                        problems.append(f"{where}: a navigation property is an object or a list, got {_shown(value)}")
                    continue
                problems.append(f"{where}: not a property of {t.name}")
                continue
            if op is not None and not prop.writable:
                problems.append(f"{where}: read-only (Writable=false)")
                continue
            problems += self._value(prop, value, where, op)
        return problems

    def _value(self, prop: Prop, value: Any, where: str, op: Op | None) -> list[str]:
        if value is None:
            return [] if prop.nullable else [f"{where}: null, but {prop.name} is not nullable"]
        if prop.collection:
            if not isinstance(value, list):
                return [f"{where}: expected a list (Collection({prop.type})), got {_shown(value)}"]
            out: list[str] = []
            for i, item in enumerate(value):
                out += self._single(prop, item, f"{where}[{i}]", op)
            return out
        return self._single(prop, value, where, op)

    def _single(self, prop: Prop, value: Any, where: str, op: Op | None) -> list[str]:
        structured = self.structured(prop)
        if structured is not None:
            return self._object(structured, value, where, op)
        enum = self.enum(prop)
        if enum is not None:
            if isinstance(value, str) and (
                value in enum.members or (op is not None and value in enum.members.values())
            ):
                return []
            allowed = ", ".join(enum.members)
            return [f"{where}: {_shown(value)} is not a member of {enum.name} ({allowed})"]
        why = _primitive(prop.type, value, request=op is not None)
        return [f"{where}: {why}"] if why else []

    # -- OData v2 (SAP Gateway) -----------------------------------------------------------------

    def _v2_object(self, t: StructuredType, body: Any, path: str, op: Op | None) -> list[str]:
        if not isinstance(body, dict):
            return [f"{path}: expected an object ({t.name}), got {_shown(body)}"]
        problems: list[str] = []
        if op is None:
            problems += self._v2_metadata(t, body.get("__metadata"), path)
        for key, value in body.items():
            where = f"{path}.{key}"
            if key == "__metadata":
                continue
            prop = t.props.get(key)
            if prop is None:
                if key in t.navigations:
                    problems += self._v2_navigation(t, key, value, where, op)
                else:
                    problems.append(f"{where}: not a property of {t.name}")
                continue
            if op == "create" and not prop.creatable:
                problems.append(f"{where}: not creatable (sap:creatable=false)")
                continue
            if op == "update" and not prop.updatable:
                problems.append(f"{where}: not updatable (sap:updatable=false)")
                continue
            if value is None:
                if not prop.nullable:
                    problems.append(f"{where}: null, but {prop.name} is not nullable")
                continue
            structured = self.structured(prop)
            if structured is not None:
                problems += self._v2_object(structured, value, where, op)
            elif why := _v2_primitive(prop, value, request=op is not None):
                problems.append(f"{where}: {why}")
        return problems

    def _v2_metadata(self, t: StructuredType, meta: Any, path: str) -> list[str]:
        where = f"{path}.__metadata"
        if meta is None:
            return [f"{where}: missing"] if t.entity else []
        if not isinstance(meta, dict):
            return [f"{where}: not an object"]
        problems = []
        if meta.get("type") != self.qualified(t.name):
            problems.append(f"{where}.type: {_shown(meta.get('type'))} is not {self.qualified(t.name)!r}")
        if not t.entity:
            return problems + [f"{where}: unexpected key {k!r}" for k in sorted(set(meta) - {"type"})]
        allowed = {"id", "uri", "type", "etag"}
        problems += [f"{where}: unexpected key {k!r}" for k in sorted(set(meta) - allowed)]
        problems += [f"{where}.{k}: missing or not a string" for k in ("id", "uri") if not isinstance(meta.get(k), str)]
        if t.etag_props and not isinstance(meta.get("etag"), str):
            problems.append(f"{where}.etag: {t.name} has a ConcurrencyMode property, so an etag is due")
        if not t.etag_props and "etag" in meta:
            problems.append(f"{where}.etag: {t.name} has no ConcurrencyMode property, so no etag")
        return problems

    def _v2_navigation(self, t: StructuredType, name: str, value: Any, where: str, op: Op | None) -> list[str]:
        if op == "update":
            return [f"{where}: a navigation property cannot be written in an update"]
        target_name, many = t.nav_targets.get(name, ("", True))
        target = self.types.get(target_name)
        if op is None and isinstance(value, dict) and set(value) == {"__deferred"}:
            deferred = value["__deferred"]
            ok = isinstance(deferred, dict) and isinstance(deferred.get("uri"), str)
            return [] if ok else [f"{where}: __deferred without a uri"]
        if value is None:
            return [] if not many and op is None else [f"{where}: null"]
        rows: Any
        if many:
            if isinstance(value, dict) and set(value) == {"results"}:
                rows = value["results"]
            elif op == "create" and isinstance(value, list):
                rows = value  # the bare array public samples send (UNVERIFIED that Gateway takes it)
            else:
                return [f"{where}: expected {{'results': [...]}}, got {_shown(value)}"]
            if not isinstance(rows, list):
                return [f"{where}.results: not a list"]
        else:
            rows = [value]
        if target is None:
            return []
        problems: list[str] = []
        for i, row in enumerate(rows):
            problems += self._v2_object(target, row, f"{where}[{i}]" if many else where, op)
        return problems


def _int_attr(el: ET.Element, name: str) -> int | None:
    raw = el.get(name)
    return int(raw) if raw is not None and raw.isdigit() else None


def _v2_primitive(prop: Prop, value: Any, *, request: bool) -> str | None:
    """Why ``value`` is not ``prop``'s value in SAP Gateway's OData v2 JSON (None: it is)."""
    edm = prop.type
    if edm in TEXTS:
        if not isinstance(value, str):
            return f"expected a string ({edm}), got {_shown(value)}"
        if prop.max_length is not None and len(value) > prop.max_length:
            return f"{len(value)} characters, more than MaxLength {prop.max_length}"
        return None
    if edm in ("Edm.Decimal", "Edm.Int64"):
        m = _V2_DECIMAL.fullmatch(value) if isinstance(value, str) else None
        if m is None:
            return f"expected a number as a string ({edm}), got {_shown(value)}"
        whole, fraction = m.group(1).lstrip("0"), m.group(2) or ""
        if edm == "Edm.Int64" and fraction:
            return f"expected an integer as a string ({edm}), got {_shown(value)}"
        scale = prop.scale or 0
        if prop.precision is not None and (len(fraction) > scale or len(whole) > prop.precision - scale):
            return f"{value!r} does not fit Precision {prop.precision}, Scale {scale}"
        return None
    if edm in INTEGERS:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else f"expected an integer ({edm}), got {_shown(value)}"
    if edm in NUMBERS:
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return None
        if isinstance(value, str) and _NUMBER_TEXT.fullmatch(value):
            return None
        return f"expected a number ({edm}), got {_shown(value)}"
    if edm == "Edm.Boolean":
        return None if isinstance(value, bool) else f"expected true or false ({edm}), got {_shown(value)}"
    if edm in ("Edm.DateTime", "Edm.DateTimeOffset"):
        pattern = V2_DATETIME if edm == "Edm.DateTime" else V2_DATETIMEOFFSET
        if isinstance(value, str) and (pattern.fullmatch(value) or (request and _ISO_DATETIME.fullmatch(value))):
            return None
        shape = "/Date(<ms>)/" if edm == "Edm.DateTime" else "/Date(<ms>+0000)/"
        return f"not a date ({edm}, {shape}): {_shown(value)}"
    if edm == "Edm.Time":
        m = V2_TIME.fullmatch(value) if isinstance(value, str) else None
        if m is None or int(m.group(1)) > 23 or int(m.group(2)) > 59 or int(m.group(3)) > 59:
            return f"not a time ({edm}, PT<h>H<m>M<s>S): {_shown(value)}"
        return None
    return None


def _primitive(edm: str, value: Any, *, request: bool) -> str | None:
    """Why ``value`` is not a value of the primitive type ``edm`` (None: it is)."""
    if edm in TEXTS:
        return None if isinstance(value, str) else f"expected a string ({edm}), got {_shown(value)}"
    if edm in INTEGERS:
        if isinstance(value, int) and not isinstance(value, bool):
            return None
        if request and isinstance(value, str) and _INT_TEXT.fullmatch(value):
            return None
        return f"expected an integer ({edm}), got {_shown(value)}"
    if edm in NUMBERS:
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool) and math.isfinite(value):
            return None  # a JSON number (decoded as a Decimal by a client that keeps money exact)
        if request and isinstance(value, str) and _NUMBER_TEXT.fullmatch(value):
            return None
        return f"expected a number ({edm}), got {_shown(value)}"
    if edm == "Edm.Boolean":
        return None if isinstance(value, bool) else f"expected true or false ({edm}), got {_shown(value)}"
    if edm in ("Edm.DateTime", "Edm.DateTimeOffset"):
        return (
            None if isinstance(value, str) and parse_date(value) is not None else f"not a date ({edm}): {_shown(value)}"
        )
    if edm == "Edm.Time":
        return (
            None if isinstance(value, str) and parse_time(value) is not None else f"not a time ({edm}): {_shown(value)}"
        )
    return None  # a primitive type the Service Layer metadata does not use: not judged


def parse_date(text: str) -> date | None:
    """The date of an ``Edm.DateTime`` text (``2014-04-04``, ``2014-04-04T00:00:00Z``), or None."""
    m = _DATETIME.fullmatch(text)
    if m is None:
        return None
    try:
        day = date.fromisoformat(m.group(1))
        if m.group(2):
            time.fromisoformat(m.group(2)[:8])
    except ValueError:
        return None
    return day


def parse_time(text: str) -> time | None:
    """The time of an ``Edm.Time`` text (``14:05:00`` or ``14:05``), or None."""
    if not _TIME.fullmatch(text):
        return None
    try:
        return time.fromisoformat(text)
    except ValueError:
        return None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
