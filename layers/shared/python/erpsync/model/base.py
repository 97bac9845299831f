"""The base of every record and settings model: a ``msgspec.Struct`` that checks what it is given.

msgspec, not pydantic, for the workers' cold start (issue 9): importing it and defining every
model costs a few milliseconds where pydantic's import and model building cost more than the
rest of erpsync together (docs/PERFORMANCE.md, section 4). What the models promised stays:

- a model made in code (``Order(qty="2", ...)``) converts what it can (a numeric string or a
  float to ``Decimal``, an ISO string to ``datetime``, a dict to a nested model) and refuses what
  it cannot with a ``ValidationError`` naming the model and field;
- ``model_validate`` reads a document (JSON types) the same way, with the path of a wrong value;
- an unknown field is refused (``Model``), or ignored where a model says so (a secret's extra keys:
  ``class X(Model, forbid_unknown_fields=False)``);
- constraints are ``Annotated[int, Meta(ge=1)]``; a model's own rules go in ``__post_init__``
  after ``super().__post_init__()``, raising ``invalid(field, reason)``.

The methods keep pydantic's names (``model_validate``, ``model_dump``, ``model_copy``,
``model_dump_json``), so code reads the same whichever library stands behind them.
"""

from __future__ import annotations

import copy
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, Self, Union, dataclass_transform

import msgspec

__all__ = ["Model", "ValidationError", "invalid"]

_PASS_THROUGH = (Decimal, datetime, date, time)
"""Kept as they are by ``model_dump()`` (Python mode), as pydantic does."""
_AT = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_FIELD = re.compile(r"^Object (?P<what>missing required|contains unknown) field `(?P<name>[^`]+)`$")
_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+|\.\.\.)\]")


class ValidationError(ValueError):
    """A model refused a value: ``loc`` is where (field names and list indexes), ``msg`` why."""

    _NO_INPUT: Any = object()

    def __init__(self, msg: str, loc: tuple[str | int, ...] = (), model: str = "", got: Any = _NO_INPUT) -> None:
        self.msg, self.loc, self.model, self.got = msg, loc, model, got
        where = ".".join(str(p) for p in loc)
        head = f"{model}.{where}" if model and where else (model or where)
        super().__init__(f"{head}: {msg}" if head else msg)

    def errors(self) -> list[dict[str, Any]]:
        """As pydantic's ``ValidationError.errors()``: one dict with ``loc`` and ``msg``."""
        error: dict[str, Any] = {"loc": self.loc, "msg": self.msg}
        if self.got is not ValidationError._NO_INPUT:
            error["input"] = self.got
        return [error]

    def reading(self, data: Any) -> ValidationError:
        """This error with the value it refused, looked up in ``data`` by ``loc`` (when it is there)."""
        value = data
        for step in self.loc:
            in_map = isinstance(value, dict) and isinstance(step, str) and step in value
            in_list = isinstance(value, list) and isinstance(step, int) and 0 <= step < len(value)
            if not (in_map or in_list):
                return self
            value = value[step]
        return ValidationError(self.msg, self.loc, self.model, value)

    @classmethod
    def of(cls, exc: msgspec.ValidationError, model: str = "", prefix: tuple[str | int, ...] = ()) -> ValidationError:
        """msgspec's error (``Expected `int` >= 1 - at `$.rate_limits[...].per_minute```) as one of these."""
        found = _AT.match(str(exc))
        msg, path = (found.group("msg"), found.group("path") or "") if found else (str(exc), "")
        loc: list[str | int] = list(prefix)
        for name, index in _STEP.findall(path):
            loc.append(name if name else (int(index) if index.isdigit() else "*"))
        cause = exc.__cause__
        if isinstance(cause, ValidationError):  # a model's own rule, raised inside msgspec's conversion
            return cls(cause.msg, (*loc, *cause.loc), model)
        field = _FIELD.match(msg)
        if field:
            loc.append(field.group("name"))
            msg = "field required" if field.group("what") == "missing required" else "unknown field"
        return cls(msg, tuple(loc), model)


def invalid(field: str, reason: str) -> ValidationError:
    """The error a model's own rule raises: ``raise invalid("email", "not an email address")``."""
    return ValidationError(reason, (field,))


Check = Callable[[Any], bool]


def _always(_: Any) -> bool:
    return False


def _fits(tp: Any) -> Check | None:
    """A test of whether a value already is of type ``tp`` (None: anything is); a value that is not
    goes through ``msgspec.convert``, which converts it or says why it cannot."""
    if tp is Any or tp is object:
        return None
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _always  # constraints (Meta): let msgspec check them every time
    if origin is Union or origin is types.UnionType:
        parts = [_fits(a) for a in typing.get_args(tp)]
        if any(p is None for p in parts):
            return None
        checks = [p for p in parts if p is not None]
        return lambda v: any(c(v) for c in checks)
    if origin is typing.Literal:
        allowed = typing.get_args(tp)
        return lambda v: any(v == a and type(v) is type(a) for a in allowed)
    if origin in (list, set, frozenset):
        (item,) = typing.get_args(tp) or (Any,)
        each = _fits(item)
        kind = origin
        return (
            (lambda v: isinstance(v, kind)) if each is None else (lambda v: isinstance(v, kind) and all(map(each, v)))
        )
    if origin is dict:
        key_t, value_t = typing.get_args(tp) or (Any, Any)
        keys, values = _fits(key_t), _fits(value_t)

        def _dict(v: Any) -> bool:
            if not isinstance(v, dict):
                return False
            return (keys is None or all(map(keys, v))) and (values is None or all(map(values, v.values())))

        return _dict
    if tp is type(None):
        return lambda v: v is None
    if tp is float:
        return lambda v: type(v) is float
    if tp is int:
        return lambda v: type(v) is int
    if isinstance(tp, type):
        return lambda v: isinstance(v, tp)
    return _always


_Plan = tuple[tuple[str, Check, Any], ...]
_PLANS: dict[type, _Plan] = {}


def _plan(cls: type[Model]) -> _Plan:
    """What ``__post_init__`` checks of ``cls``: each field with a type to hold its value to."""
    steps = []
    for f in msgspec.structs.fields(cls):
        check = _fits(f.type)
        if check is not None:
            steps.append((f.name, check, f.type))
    return tuple(steps)


class _ModelMeta(msgspec.StructMeta):
    """Every model's fields are keyword-only, in every subclass too (msgspec's ``kw_only`` is per class):
    a required field may follow one with a default, as the models are written."""

    def __new__(mcls, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **config: Any) -> Any:
        config.setdefault("kw_only", True)
        return super().__new__(mcls, name, bases, namespace, **config)


@dataclass_transform(field_specifiers=(msgspec.field,), kw_only_default=True)
class Model(msgspec.Struct, metaclass=_ModelMeta, kw_only=True, forbid_unknown_fields=True):
    """Base of the canonical records and the settings: checked on creation, strict about unknown
    fields (a typo in a mapping fails loudly)."""

    def __post_init__(self) -> None:
        cls = type(self)
        plan = _PLANS.get(cls)
        if plan is None:
            plan = _PLANS[cls] = _plan(cls)
        for name, fits, tp in plan:
            value = getattr(self, name)
            if not fits(value):
                try:
                    setattr(self, name, msgspec.convert(value, tp, strict=False))
                except msgspec.ValidationError as exc:
                    raise ValidationError.of(exc, cls.__name__, (name,)) from None

    @classmethod
    def _prepare(cls, data: Any) -> Any:
        """A document as read, before it is checked (a model drops retired keys here)."""
        return data

    @classmethod
    def model_validate(cls, data: Any) -> Self:
        """A model from a document (dicts, lists, JSON scalars; a model of this class as it is)."""
        if isinstance(data, cls):
            return data
        data = cls._prepare(data)
        try:
            return msgspec.convert(data, cls, strict=False)
        except msgspec.ValidationError as exc:
            raise ValidationError.of(exc, cls.__name__).reading(data) from None

    @classmethod
    def model_validate_json(cls, data: str | bytes) -> Self:
        try:
            return cls.model_validate(msgspec.json.decode(data))
        except msgspec.DecodeError as exc:
            raise ValidationError(f"not JSON: {exc}", (), cls.__name__) from None

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return cls.__struct_fields__

    def model_dump(
        self,
        *,
        mode: str = "python",
        exclude_none: bool = False,
        exclude_defaults: bool = False,
        include: Iterable[str] | None = None,
        exclude: Iterable[str] | None = None,
    ) -> dict[str, Any]:
        """The model as a dict: Python values (``mode="python"``) or JSON ones (``mode="json"``:
        ``Decimal`` as its string, ``datetime`` in ISO 8601 with ``Z`` for UTC)."""
        passed = () if mode == "json" else _PASS_THROUGH
        tree = _without_none(self) if exclude_none else self
        out: dict[str, Any] = msgspec.to_builtins(tree, builtin_types=passed)
        if exclude_defaults:
            for f in msgspec.structs.fields(self):
                default = f.default_factory() if f.default_factory is not msgspec.NODEFAULT else f.default
                if default is not msgspec.NODEFAULT and getattr(self, f.name) == default:
                    out.pop(f.name, None)
        if include is not None:
            keep = set(include)
            out = {k: v for k, v in out.items() if k in keep}
        if exclude is not None:
            for k in exclude:
                out.pop(k, None)
        return out

    def model_dump_json(self, *, exclude_none: bool = False, exclude_defaults: bool = False, indent: int = 0) -> str:
        """``model_dump(mode="json")`` as compact JSON (or indented by ``indent``)."""
        raw = msgspec.json.encode(
            self.model_dump(mode="json", exclude_none=exclude_none, exclude_defaults=exclude_defaults)
        )
        return (msgspec.json.format(raw, indent=indent) if indent else raw).decode()

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy, with ``update``'s fields replaced (and checked)."""
        base = copy.deepcopy(self) if deep else self
        return msgspec.structs.replace(base, **(update or {}))


def _without_none(value: Any) -> Any:
    """``value`` with every model's None fields left out, in models held at any depth (as pydantic's
    ``exclude_none``: a None inside a plain dict or list, e.g. a snapshot's, stays)."""
    if isinstance(value, msgspec.Struct):
        return {name: _without_none(v) for name in value.__struct_fields__ if (v := getattr(value, name)) is not None}
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_without_none(v) for v in value]
    return value
