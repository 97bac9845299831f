"""Check QuickBooks Online Accounting API v3 JSON against Intuit's official XSDs.

Sources: ``tests/fixtures/quickbooks/xsd/`` (IntuitRestServiceDef.xsd and what it includes, from
intuit/QuickBooks-V3-Java-SDK, Apache-2.0; see tests/fixtures/quickbooks/SOURCES.md).

Intuit writes its JSON from the same XSD (JAXB + Jackson), so the JSON is turned back into the XML
it stands for and that XML is validated with xmlschema:

- an XML attribute is a plain key (``sparse``, ``domain``, ``status``; ``time`` on the envelope);
- a simple-content type with attributes (``ReferenceType``) is ``{"value": "1", "name": "Amy"}``;
- a repeatable element is a JSON list, a single one is not;
- keys come in any order: children are written in the schema's order;
- an abstract type (``CustomFieldDefinition`` in ``SalesFormsPrefs.CustomField``) carries no
  ``xsi:type`` in JSON: the first concrete extension (by name) that declares every key stands in;
- ``xs:any`` content (``IntuitAnyType``: ``LineEx``, ``TxnEx`` ...) is JAXB's
  ``{"any": [{"name": "{ns}NameValue", "value": {...}, "declaredType": ..., ...}]}``;
- JSON types must match the XSD's: booleans are ``true``/``false``, numeric types are JSON
  numbers, everything else (dates, ids, enumerations) is a string; ``null`` is refused.

A key the XSD does not declare is a problem (typos, invented fields), unless it is in
:data:`UNDECLARED_ALLOWED`. An entity with ``"status": "Deleted"`` (a CDC answer) carries only
``Id`` and ``MetaData``: its missing required elements are not problems, everything else is checked.

Problems raise :class:`QboSchemaError` naming the entity, the JSON path of the first problem
(``SalesReceipt.Line[0].SalesItemLineDetail.Qty``) and what is wrong.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache, lru_cache
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element

import xmlschema
from xmlschema.validators import (
    XsdAnyElement,
    XsdAtomic,
    XsdAttribute,
    XsdComplexType,
    XsdElement,
    XsdGroup,
    XsdType,
)
from xmlschema.validators.exceptions import XMLSchemaChildrenValidationError, XMLSchemaValidationError

XSD = Path(__file__).resolve().parents[1] / "fixtures" / "quickbooks" / "xsd" / "IntuitRestServiceDef.xsd"
NS = "http://schema.intuit.com/finance/v3"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
_PREFIX = "qbo"

UNDECLARED_ALLOWED: dict[tuple[str, str], str] = {}
"""(XSD type name, JSON key) pairs the real API sends although the XSD lacks them, each with the
payload that shows it. Empty: every key in the recorded payloads (tests/fixtures/quickbooks) is
declared by the XSD."""

JAXB_ANY_KEYS = frozenset({"name", "value", "declaredType", "scope", "nil", "globalScope", "typeSubstituted"})
"""Keys of one JAXBElement in an ``xs:any`` list as Jackson writes it."""

_NUMERIC = frozenset({"decimal", "float", "double"})


class QboSchemaError(AssertionError):
    """A QuickBooks JSON body that does not match the XSD."""


@lru_cache(maxsize=1)
def schema() -> xmlschema.XMLSchema10:
    """The XSDs, built once per process (about 2 s)."""
    return xmlschema.XMLSchema10(str(XSD))


@dataclass(frozen=True)
class _Child:
    decl: XsdElement
    repeatable: bool


def _walk(group: XsdGroup, repeated: bool) -> Iterator[tuple[XsdElement | XsdAnyElement, bool]]:
    """Element particles of a content model in the schema's order, with whether each may repeat."""
    for item in group:
        if isinstance(item, XsdGroup):
            yield from _walk(item, repeated or item.max_occurs != 1)
        else:
            yield item, repeated or item.max_occurs != 1


@cache
def _children(xsd_type: XsdComplexType) -> tuple[dict[str, _Child], bool]:
    """JSON key -> child declaration in the schema's order (the members of a substitution group,
    e.g. every entity for ``IntuitObject``, in the head's place), and whether ``xs:any`` is allowed."""
    content = xsd_type.content
    if not isinstance(content, XsdGroup):
        return {}, False
    groups = schema().maps.substitution_groups
    out: dict[str, _Child] = {}
    wildcard = False
    for decl, repeatable in _walk(content, content.max_occurs != 1):
        if isinstance(decl, XsdAnyElement):
            wildcard = True
            continue
        if not decl.abstract:
            out.setdefault(decl.local_name, _Child(decl, repeatable))
        for member in groups.get(decl.name, ()):
            if not member.abstract:
                out.setdefault(member.local_name, _Child(member, repeatable))
    return out, wildcard


def _attributes(xsd_type: XsdType) -> frozenset[str]:
    names = getattr(xsd_type, "attributes", None) or {}
    return frozenset(str(name).split("}")[-1] for name in names if name)


def _keys(xsd_type: XsdComplexType) -> frozenset[str]:
    children, wildcard = _children(xsd_type)
    return frozenset(children) | _attributes(xsd_type) | ({"any"} if wildcard else set())


@cache
def _concrete(xsd_type: XsdComplexType) -> tuple[XsdComplexType, ...]:
    """Concrete complex types derived from an abstract one, by name."""
    found = [
        t
        for t in schema().maps.types.values()
        if isinstance(t, XsdComplexType) and not t.abstract and t is not xsd_type and t.is_derived(xsd_type)
    ]
    return tuple(sorted(found, key=lambda t: t.local_name or ""))


def _primitive(xsd_type: XsdType) -> str | None:
    """The XSD primitive behind a simple type or simple content (``decimal``, ``boolean`` ...)."""
    simple = xsd_type.content if isinstance(xsd_type, XsdComplexType) else xsd_type
    primitive = getattr(simple, "primitive_type", None)
    if isinstance(primitive, XsdAtomic) and primitive.local_name:
        return primitive.local_name
    return None


def _type_name(xsd_type: XsdType) -> str | None:
    """``ReferenceType`` for Intuit's types, ``xs:decimal`` for XML Schema's, ``None`` if anonymous."""
    if not xsd_type.local_name:
        return None
    return xsd_type.local_name if xsd_type.target_namespace == NS else f"xs:{xsd_type.local_name}"


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    return "list" if isinstance(value, list) else "object"


def _text(value: Any) -> str:
    """The XML text of a JSON scalar: ``true``/``false``, numbers without exponents (``1e+16`` is no xs:decimal)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and math.isfinite(value):
        return format(Decimal(repr(value)), "f")
    return str(value)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


@dataclass
class _Built:
    """The XML built from a JSON body: each element's JSON path and entity, and the deleted entities."""

    paths: dict[int, str] = field(default_factory=dict)
    entities: dict[int, str] = field(default_factory=dict)
    simple_content: set[int] = field(default_factory=set)
    deleted: set[int] = field(default_factory=set)


class _Builder:
    def __init__(self) -> None:
        self.built = _Built()
        self.entities = {id(m) for m in schema().maps.substitution_groups.get(f"{{{NS}}}IntuitObject", ())}

    def fail(self, entity: str, path: str, what: str) -> QboSchemaError:
        return QboSchemaError(f"{entity}: {path}: {what}")

    def element(
        self, tag: str, xsd_type: XsdType, value: Any, path: str, entity: str, *, is_entity: bool = False
    ) -> Element:
        el = Element(tag)
        self.built.paths[id(el)] = path
        self.built.entities[id(el)] = entity
        if value is None:
            raise self.fail(entity, path, "null is not allowed (leave the key out)")
        if is_entity and isinstance(value, dict) and value.get("status") == "Deleted":
            self.built.deleted.add(id(el))
        if isinstance(xsd_type, XsdComplexType) and xsd_type.abstract:
            xsd_type = self._stand_in(xsd_type, value, path, entity)
            el.set(XSI_TYPE, f"{_PREFIX}:{xsd_type.local_name}")
        if not isinstance(xsd_type, XsdComplexType):
            self._scalar(el, xsd_type, value, path, entity)
        elif xsd_type.has_simple_content():
            self._simple_content(el, xsd_type, value, path, entity)
        else:
            self._complex(el, xsd_type, value, path, entity)
        return el

    def _stand_in(self, xsd_type: XsdComplexType, value: Any, path: str, entity: str) -> XsdComplexType:
        keys = set(value) if isinstance(value, dict) else set()
        for candidate in _concrete(xsd_type):
            if keys <= _keys(candidate):
                return candidate
        raise self.fail(
            entity, path, f"no concrete type derived from abstract {xsd_type.local_name} declares {sorted(keys)}"
        )

    def _scalar(self, el: Element, xsd_type: XsdType, value: Any, path: str, entity: str) -> None:
        self._check_kind(xsd_type, value, path, entity)
        el.text = _text(value)

    def _check_kind(self, xsd_type: XsdType, value: Any, path: str, entity: str) -> None:
        primitive = _primitive(xsd_type)
        kind = _kind(value)
        if primitive == "boolean":
            expected = "boolean"
        elif primitive in _NUMERIC or (primitive is None and kind == "number"):
            expected = "number"
        else:
            expected = "string"
        if kind != expected:
            name = _type_name(xsd_type) or (f"xs:{primitive}" if primitive else "a simple type")
            raise self.fail(entity, path, f"expected a JSON {expected} for {name}, got {kind} {value!r}")

    def _simple_content(self, el: Element, xsd_type: XsdComplexType, value: Any, path: str, entity: str) -> None:
        self.built.simple_content.add(id(el))
        if not isinstance(value, dict):
            raise self.fail(
                entity, path, f"expected an object {{'value': ...}} for {xsd_type.local_name}, got {value!r}"
            )
        attributes = _attributes(xsd_type)
        for key, item in value.items():
            if key == "value":
                self._check_kind(xsd_type, item, _join(path, "value"), entity)
                el.text = _text(item)
            elif key in attributes:
                self._attribute(el, xsd_type, key, item, _join(path, key), entity)
            elif (xsd_type.local_name or "", key) not in UNDECLARED_ALLOWED:
                raise self.fail(entity, _join(path, key), f"not declared in {xsd_type.local_name}")

    def _attribute(self, el: Element, xsd_type: XsdComplexType, key: str, value: Any, path: str, entity: str) -> None:
        attribute = xsd_type.attributes.get(key)
        if isinstance(attribute, XsdAttribute):
            self._check_kind(attribute.type, value, path, entity)
        el.set(key, _text(value))

    def _complex(self, el: Element, xsd_type: XsdComplexType, value: Any, path: str, entity: str) -> None:
        if not isinstance(value, dict):
            raise self.fail(entity, path, f"expected an object for {xsd_type.local_name}, got {_kind(value)} {value!r}")
        children, wildcard = _children(xsd_type)
        attributes = _attributes(xsd_type)
        for key, item in value.items():
            if key in children:
                continue
            if key in attributes:
                self._attribute(el, xsd_type, key, item, _join(path, key), entity)
            elif key == "any" and wildcard:
                self._any(el, item, _join(path, "any"), entity)
            elif (xsd_type.local_name or "", key) not in UNDECLARED_ALLOWED:
                raise self.fail(entity, _join(path, key), f"not declared in {xsd_type.local_name}")
        for key, child in children.items():
            if key not in value:
                continue
            item = value[key]
            is_entity = id(child.decl) in self.entities
            owner = key if is_entity else entity
            if child.repeatable:
                if not isinstance(item, list):
                    raise self.fail(entity, _join(path, key), f"expected a list ({key} may repeat), got {_kind(item)}")
                for i, one in enumerate(item):
                    where = f"{_join(path, key)}[{i}]"
                    el.append(self.element(child.decl.name, child.decl.type, one, where, owner, is_entity=is_entity))
            else:
                if isinstance(item, list):
                    raise self.fail(entity, _join(path, key), f"expected one {key}, got a list")
                el.append(
                    self.element(child.decl.name, child.decl.type, item, _join(path, key), owner, is_entity=is_entity)
                )

    def _any(self, el: Element, items: Any, path: str, entity: str) -> None:
        """JAXB's ``xs:any`` list: each item names its element (``{ns}NameValue``) and holds its value."""
        if not isinstance(items, list):
            raise self.fail(entity, path, f"expected a list of JAXB elements, got {_kind(items)}")
        for i, item in enumerate(items):
            where = f"{path}[{i}]"
            if not isinstance(item, dict) or not isinstance(item.get("name"), str) or "value" not in item:
                raise self.fail(entity, where, "expected {'name': '{namespace}Element', 'value': ...}")
            extra = sorted(set(item) - JAXB_ANY_KEYS)
            if extra:
                raise self.fail(entity, f"{where}.{extra[0]}", "not a key of a JAXB element")
            tag = item["name"]
            local = tag.split("}")[-1]
            decl = schema().elements.get(local)
            xsd_type = decl.type if decl is not None else schema().types.get(local)
            if not tag.startswith(f"{{{NS}}}") or xsd_type is None:
                raise self.fail(entity, f"{where}.name", f"{tag!r} is no element or type of the XSD")
            child = self.element(tag, xsd_type, item["value"], f"{where}.value", entity)
            if decl is None:
                child.set(XSI_TYPE, f"{_PREFIX}:{local}")
            el.append(child)


_ATTRIBUTE_REASON = re.compile(r"^attribute (?P<name>[\w:{}/.-]+)=.*?: ")
_POSITION = re.compile(r" at position \d+")


def _problem(error: XMLSchemaValidationError, built: _Built, fallback: tuple[str, str]) -> tuple[str, str, str]:
    """The entity, JSON path and reason of an xmlschema error (XML positions and namespaces left out)."""
    reason = (error.reason or str(error)).replace(f"{{{NS}}}", "").replace(f"{_PREFIX}:", "")
    elem = error.elem
    if elem is None or id(elem) not in built.paths:
        return fallback[0], fallback[1], reason
    if isinstance(error, XMLSchemaChildrenValidationError) and error.invalid_tag is not None:
        elem = elem[error.index]  # an unexpected child: point at it, not at its parent
        reason = _POSITION.sub("", reason)
    path = built.paths[id(elem)]
    attribute = _ATTRIBUTE_REASON.match(reason)
    if attribute:
        path = _join(path, attribute["name"])
        reason = reason[attribute.end() :]
    elif id(elem) in built.simple_content and not isinstance(error, XMLSchemaChildrenValidationError):
        path = _join(path, "value")
    if len(reason) > 400:
        reason = reason[:400] + " ..."
    return built.entities[id(elem)], path or fallback[1], reason


def _validate(tag: str, xsd_type: XsdType, data: Any, entity: str, root_path: str, *, is_entity: bool) -> None:
    builder = _Builder()
    root = builder.element(tag, xsd_type, data, root_path, entity, is_entity=is_entity)
    for error in schema().iter_errors(root, namespaces={_PREFIX: NS}):
        if (
            isinstance(error, XMLSchemaChildrenValidationError)
            and error.invalid_tag is None
            and error.elem is not None
            and id(error.elem) in builder.built.deleted
        ):
            continue  # a deleted entity in a CDC answer: only Id and MetaData are left
        where_entity, path, reason = _problem(error, builder.built, (entity, root_path or entity))
        raise QboSchemaError(f"{where_entity}: {path}: {reason}")


def validate_entity(name: str, data: dict[str, Any]) -> None:
    """Check one entity (``SalesReceipt``, ``Invoice``, ``Item`` ...) as its XSD element.

    Raises :class:`QboSchemaError` naming the JSON path of the first problem."""
    decl = schema().elements.get(name)
    if decl is None or decl.abstract:
        raise QboSchemaError(f"{name}: no such element in the QuickBooks XSD")
    members = schema().maps.substitution_groups.get(f"{{{NS}}}IntuitObject", ())
    _validate(decl.name, decl.type, data, name, name, is_entity=any(m is decl for m in members))


def validate_response(body: dict[str, Any]) -> None:
    """Check a whole REST answer as the XSD's ``IntuitResponse``.

    Its keys are the XSD's: the attributes ``time``, ``requestId``, ``status``; optional
    ``Warnings``; and one of an entity (``SalesReceipt``, ...), ``QueryResponse`` (entity lists plus
    ``startPosition``, ``maxResults``, ``totalCount``), ``CDCResponse`` (a list of ``{"QueryResponse":
    [...]}``), ``BatchItemResponse``, ``Fault`` (``Error`` list with ``Message``, ``Detail``, ``code``,
    ``element``; ``type``), ``Report``, ``AttachableResponse``, ``SyncErrorResponse``, ``OLBTransaction``,
    ``OLBStatus`` (exactly one: the XSD's choice would also take none). Every entity inside is
    checked against its own element."""
    if not isinstance(body, dict):
        raise QboSchemaError(f"response: expected a JSON object, got {_kind(body)}")
    decl = schema().elements["IntuitResponse"]
    children, _ = _children(decl.type)
    payload = [key for key in body if key in children and key != "Warnings"]
    if len(payload) != 1:
        raise QboSchemaError(
            f"response: expected exactly one of an entity, QueryResponse, CDCResponse, BatchItemResponse, Fault ..., "
            f"got {payload or 'none'} among {sorted(body)}"
        )
    _validate(decl.name, decl.type, body, "response", "", is_entity=False)
