"""QuickBooks Online JSON checked against Intuit's official XSDs (tests/fixtures/quickbooks/xsd,
from intuit/QuickBooks-V3-Java-SDK; see tests/fixtures/quickbooks/SOURCES.md).

The API's JSON is the XSD's XML written as JSON: attributes (``sparse``, ``domain``, ``status``)
are plain keys, a simple-content element with attributes (``ReferenceType``: ``<CustomerRef
name="Amy">1</CustomerRef>``) is ``{"value": "1", "name": "Amy"}``, repeated elements are lists,
and keys come in any order. ``validate_entity`` builds the XML in the schema's order and validates
it with xmlschema; a key the type does not declare is a problem too. Problems name the JSON path
(``SalesReceipt.Line[0].SalesItemLineDetail.Qty``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element

import xmlschema

XSD = Path(__file__).resolve().parents[1] / "fixtures" / "quickbooks" / "xsd" / "IntuitRestServiceDef.xsd"
NS = "http://schema.intuit.com/finance/v3"


class SchemaProblem(AssertionError):
    pass


@lru_cache(maxsize=1)
def schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(XSD))


def _children(xsd_type: Any) -> dict[str, Any]:
    """Child element name -> its declaration, in the schema's order (the members of a
    substitution group, e.g. every entity for ``IntuitObject``, in its place)."""
    content = getattr(xsd_type, "content", None)
    if content is None or not hasattr(content, "iter_elements"):
        return {}
    groups = schema().maps.substitution_groups
    out: dict[str, Any] = {}
    for decl in content.iter_elements():
        if not decl.abstract:
            out.setdefault(decl.local_name, decl)
        for member in groups.get(decl.name, ()):
            out.setdefault(member.local_name, member)
    return out


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _build(decl: Any, name: str, value: Any, path: str) -> Element:
    el = Element(f"{{{NS}}}{name}")
    xsd_type = decl.type
    attributes = {a.split("}")[-1] for a in getattr(xsd_type, "attributes", {}) or {}}
    if not isinstance(value, dict):
        el.text = _text(value)
        return el
    if xsd_type.has_simple_content():
        for key, item in value.items():
            if key == "value":
                el.text = _text(item)
            elif key in attributes:
                el.set(key, _text(item))
            else:
                raise SchemaProblem(f"{path}.{key}: {xsd_type.local_name or name} has no attribute {key!r}")
        return el
    children = _children(xsd_type)
    for key, item in value.items():
        if key in attributes and key not in children:
            el.set(key, _text(item))
        elif key not in children:
            raise SchemaProblem(f"{path}.{key}: not declared in {xsd_type.local_name or name}")
    for child, child_decl in children.items():
        if child not in value:
            continue
        items = value[child] if isinstance(value[child], list) else [value[child]]
        for i, item in enumerate(items):
            where = f"{path}.{child}[{i}]" if isinstance(value[child], list) else f"{path}.{child}"
            el.append(_build(child_decl, child, item, where))
    return el


def validate_entity(name: str, data: dict[str, Any]) -> None:
    """Raise ``SchemaProblem`` naming the JSON path of the first problem of entity ``name``."""
    decl = schema().elements.get(name)
    if decl is None:
        raise SchemaProblem(f"{name}: no such element in the XSD")
    element = _build(decl, name, data, name)
    for error in decl.iter_errors(element):
        where = (error.path or "").replace(f"{{{NS}}}", "").strip("/").replace("/", ".")
        raise SchemaProblem(f"{name}: {where or name}: {error.reason}")


def validate_response(body: dict[str, Any]) -> None:
    """A whole answer (one entity, a query, a CDC, a batch or a Fault) as the XSD's
    ``IntuitResponse``: every entity inside is checked against its own type."""
    if not isinstance(body, dict):
        raise SchemaProblem("answer: not an object")
    validate_entity("IntuitResponse", body)
