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
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import date, time
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

Op = Literal["create", "update"]
ANSWER_ANNOTATIONS = frozenset({"odata.metadata", "odata.id", "odata.etag", "odata.type"})
INTEGERS = frozenset({"Edm.Int16", "Edm.Int32", "Edm.Int64", "Edm.Byte", "Edm.SByte"})
NUMBERS = frozenset({"Edm.Double", "Edm.Decimal", "Edm.Single"})
TEXTS = frozenset({"Edm.String", "Edm.Guid", "Edm.Binary"})
_INT_TEXT = re.compile(r"-?\d+")
_NUMBER_TEXT = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_DATETIME = re.compile(r"(\d{4}-\d{2}-\d{2})(?:T(\d{2}:\d{2}(?::\d{2}(?:\.\d{1,7})?)?)Z?)?")
_TIME = re.compile(r"\d{2}:\d{2}(?::\d{2})?")


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


@dataclass(frozen=True)
class StructuredType:
    """An entity type (``keys`` set) or a complex type."""

    name: str
    entity: bool
    keys: tuple[str, ...]
    props: dict[str, Prop]
    navigations: frozenset[str]


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
        self.functions: dict[str, Function] = {}
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
            )
        navs = frozenset(n.get("Name", "") for n in _children(el, "NavigationProperty"))
        return StructuredType(el.get("Name", ""), entity, keys, props, navs)

    def _unqualified(self, name: str) -> str:
        return name.removeprefix(f"{self.namespace}.")

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

    def check_answer(self, type_name: str, body: Any) -> list[str]:
        """What is wrong with ``body`` as an answer's ``type_name`` (empty: nothing)."""
        return self._object(self.types[type_name], body, type_name, None)

    def check_request(self, type_name: str, body: Any, op: Op = "create") -> list[str]:
        """What is wrong with ``body`` as the body of a create or update of ``type_name``."""
        return self._object(self.types[type_name], body, type_name, op)

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
