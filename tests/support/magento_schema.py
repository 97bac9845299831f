"""Check Magento request bodies and answers against Magento's official 2.4.8 admin schema (Swagger 2.0).

- :func:`validate_request` checks what a connector sends: ``validate_request("POST", "/V1/products",
  {"product": {...}})``; the path may be concrete (``/V1/products/ABC%2F1``) or the schema's template
  (``/V1/products/{sku}``), with or without ``/rest/<store>``. Strict by default: ``null`` is refused
  where the schema names a type (pass ``allow_null=True`` to accept it).
- :func:`validate_answer` checks an answer the same way (``null`` allowed: Magento prints unset values
  as ``null`` and Swagger 2.0 has no ``nullable``).
- :func:`validate_definition` checks one instance against a named definition.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "fixtures" / "magento" / "admin-schema-2.4.8.yaml"
_PREFIX = re.compile(r"^/rest(?:/[^/]+)?(?=/V1/)")


@cache
def schema() -> dict[str, Any]:
    """The parsed admin schema (cached: parsing the 1 MB YAML takes a few seconds)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with SCHEMA_PATH.open() as fh:
        loaded: dict[str, Any] = yaml.load(fh, Loader=loader)
    return loaded


def nullable(node: Any) -> Any:
    """The schema with ``null`` allowed wherever a type is named."""
    if isinstance(node, dict):
        out = {k: nullable(v) for k, v in node.items()}
        if isinstance(node.get("type"), str):
            out["type"] = [node["type"], "null"]
        return out
    if isinstance(node, list):
        return [nullable(v) for v in node]
    return node


@cache
def _definitions(allow_null: bool) -> dict[str, Any]:
    defs = schema()["definitions"]
    return nullable(defs) if allow_null else defs


@cache
def _templates() -> list[tuple[re.Pattern[str], str]]:
    """Every schema path as a regex, literal paths before templated ones."""
    paths = sorted(schema()["paths"], key=lambda p: (p.count("{"), -len(p)))
    return [(re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(p)) + "$"), p) for p in paths]


def operation(method: str, path: str) -> tuple[str, dict[str, Any]]:
    """The schema path and operation for ``method`` on ``path`` (concrete or templated)."""
    path = _PREFIX.sub("", path.split("?", 1)[0])
    paths = schema()["paths"]
    verb = method.lower()
    if path in paths and verb in paths[path]:
        return path, paths[path][verb]
    for pattern, template in _templates():
        if pattern.match(path) and verb in paths[template]:
            return template, paths[template][verb]
    raise KeyError(f"no {method.upper()} {path} in the 2.4.8 admin schema")


def _validate(node: dict[str, Any], instance: Any, allow_null: bool) -> None:
    root = {**(nullable(node) if allow_null else node), "definitions": _definitions(allow_null)}
    jsonschema.Draft4Validator(root).validate(instance)


def request_body_schema(method: str, path: str) -> dict[str, Any]:
    """The schema of the operation's body parameter."""
    template, op = operation(method, path)
    for param in op.get("parameters", []):
        if param.get("in") == "body":
            body: dict[str, Any] = param["schema"]
            return body
    raise KeyError(f"{method.upper()} {template} takes no body")


def validate_request(method: str, path: str, body: Any, *, allow_null: bool = False) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``body`` fits the operation's body parameter."""
    _validate(request_body_schema(method, path), body, allow_null)


def validate_answer(method: str, path: str, answer: Any, status: str = "200") -> None:
    """Raise ``jsonschema.ValidationError`` unless ``answer`` fits the operation's response schema."""
    template, op = operation(method, path)
    response = op["responses"].get(status, {}).get("schema")
    if response is None:
        raise KeyError(f"{method.upper()} {template} documents no {status} body")
    _validate(response, answer, True)


def validate_definition(name: str, instance: Any, *, allow_null: bool = True) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``instance`` fits ``#/definitions/<name>``."""
    _validate({"$ref": f"#/definitions/{name}"}, instance, allow_null)
