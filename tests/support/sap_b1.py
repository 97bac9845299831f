"""Check SAP Business One Service Layer JSON against SAP's v1 metadata (tests/fixtures/sap_b1,
trimmed from SAP's own ``$metadata``; see its SOURCES.md) with the loader the simulator uses
(``sandbox.sims.edmx``), and against the v1 envelope and error shapes SAP documents.

- ``assert_answer(entity_set, body)``: one entity, or a list ``{"odata.metadata", "value": [...],
  "odata.nextLink"?, "odata.count"?}``; every entity checked against the set's type;
- ``assert_error_v1(body)``: exactly ``{"error": {"code": <int>, "message": {"lang", "value"},
  "innererror"?: {...}}}`` (SAP's user manual; the SDK types ``code`` as an Integer);
- ``assert_error_v2(body)``: ``{"error": {"code": "<text>", "message": "<text>", "details"?: [...]}}``
  (UNVERIFIED: the OData 4 shape public clients show; nothing in the reference material).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from sandbox.sims.edmx import Metadata

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sap_b1"
METADATA_FILE = FIXTURES / "service-layer-metadata-v1-trimmed.xml"
LIST_KEYS = frozenset({"odata.metadata", "value", "odata.nextLink", "odata.count"})


class B1ShapeError(AssertionError):
    """A Service Layer body that does not match the metadata or the documented shape."""


@cache
def metadata() -> Metadata:
    return Metadata.load(METADATA_FILE)


def assert_answer(entity_set: str, body: Any) -> None:
    """``body`` is a v1 answer of ``entity_set``: one entity or a page of them."""
    type_name = metadata().entity_type(entity_set).name
    if isinstance(body, dict) and "value" in body:
        extra = set(body) - LIST_KEYS
        problems = [f"list answer: unexpected key {k!r}" for k in sorted(extra)]
        if not isinstance(body["value"], list):
            problems.append("list answer: 'value' is not a list")
        else:
            for i, row in enumerate(body["value"]):
                problems += [
                    p.replace(type_name, f"{type_name}[{i}]", 1) for p in metadata().check_answer(type_name, row)
                ]
        if "odata.nextLink" in body and not isinstance(body["odata.nextLink"], str):
            problems.append("list answer: 'odata.nextLink' is not a string")
        if "odata.count" in body and not isinstance(body["odata.count"], int):
            problems.append("list answer: 'odata.count' is not an integer")
    else:
        problems = metadata().check_answer(type_name, body)
    if problems:
        raise B1ShapeError(f"{entity_set} answer does not match the metadata:\n  " + "\n  ".join(problems))


def assert_error_v1(body: Any) -> None:
    """``body`` is exactly a v1 error envelope."""
    problems = []
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(body, dict) or set(body) != {"error"} or not isinstance(error, dict):
        raise B1ShapeError(f"not a v1 error envelope: {body!r}")
    if set(error) - {"code", "message", "innererror"} or not {"code", "message"} <= set(error):
        problems.append(f"error keys {sorted(error)}")
    if not isinstance(error.get("code"), int) or isinstance(error.get("code"), bool):
        problems.append(f"code {error.get('code')!r} is not an integer")
    message = error.get("message")
    if not isinstance(message, dict) or set(message) != {"lang", "value"}:
        problems.append(f"message {message!r} is not {{lang, value}}")
    elif not all(isinstance(message[k], str) for k in ("lang", "value")):
        problems.append("message lang/value are not strings")
    if "innererror" in error and not isinstance(error["innererror"], dict):
        problems.append("innererror is not an object")
    if problems:
        raise B1ShapeError(f"not a v1 error envelope ({'; '.join(problems)}): {body!r}")


def assert_error_v2(body: Any) -> None:
    """``body`` is a v2 (OData 4) error envelope: code and message as text."""
    error = body.get("error") if isinstance(body, dict) else None
    if (
        not isinstance(body, dict)
        or set(body) != {"error"}
        or not isinstance(error, dict)
        or not {"code", "message"} <= set(error) <= {"code", "message", "details"}
        or not isinstance(error["code"], str)
        or not isinstance(error["message"], str)
    ):
        raise B1ShapeError(f"not a v2 error envelope: {body!r}")
