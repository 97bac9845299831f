"""A recorded QuickBooks Online XML answer as the JSON Intuit sends for it (both are written from the
same XSD), so a recording made in XML can be replayed to a JSON client.

The rules are those ``tests/support/qbo_schema.py`` checks JSON with, the other way round: an XML
attribute is a plain key; a simple-content type with attributes (``ReferenceType``) is always
``{"value": ..., "name": ...}``; repeatable elements are lists (the entities of a ``QueryResponse``
always); an empty element (``SubTotalLineDetail``, a ``QueryResponse`` with no changes) is ``{}``;
numbers and booleans are JSON's; ``xs:any`` content (``LineEx``) is JAXB's
``{"any": [{"name": "{ns}NameValue", "value": {...}, ...}]}``.
"""

from __future__ import annotations

from typing import Any

from tests.support.qbo_schema import NS, schema

PAGING = ("startPosition", "maxResults", "totalCount")


def _jaxb(name: str, value: Any) -> dict[str, Any]:
    return {
        "name": f"{{{NS}}}{name}",
        "declaredType": f"com.intuit.schema.finance.v3.{name}",
        "scope": "javax.xml.bind.JAXBElement$GlobalScope",
        "value": value,
        "nil": False,
        "globalScope": True,
        "typeSubstituted": False,
    }


def _plain(value: Any) -> Any:
    """An element of ``xs:any`` content decoded without its type: its text."""
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, dict) and set(value) == {"value"}:
        return value["value"]
    return value


def _fix(node: Any, key: str = "") -> Any:
    if isinstance(node, list):
        return [_fix(item, key) for item in node]
    if not isinstance(node, dict):
        return node
    if key == "LineEx" or key == "TxnEx":
        return {
            "any": [
                _jaxb(name, {k: _plain(v) for k, v in item.items()})
                for name, items in node.items()
                for item in (items if isinstance(items, list) else [items])
            ]
        }
    out = {k: {} if v is None else _fix(v, k) for k, v in node.items()}  # an empty element: {}
    if key == "QueryResponse":
        out = {k: v if k in PAGING or isinstance(v, list) else [v] for k, v in out.items()}
    return out


def intuit_json(xml: str) -> dict[str, Any]:
    """The JSON answer of the XML answer ``xml`` (decoded leniently: a recording may break the XSD,
    which ``validate_response`` then reports)."""
    answer: Any = schema().decode(
        xml,
        validation="lax",
        decimal_type=float,
        attr_prefix="",
        text_key="value",
        strip_namespaces=True,
        force_dict=True,
    )
    body = _fix(answer[0])  # lax: (decoded, errors)
    for block in body.get("CDCResponse") or []:
        block["QueryResponse"] = [r if r is not None else {} for r in block.get("QueryResponse") or []]
    return dict(body)
