"""Check that a parsed generated model holds the types its annotations promise.

openapi-python-client's ``from_dict`` turns missing required fields into ``KeyError`` and bad dates into
``ValueError``, but copies strings, numbers, booleans and lists as they come: a server answering
``"size": "12"`` for an integer would reach the user as a wrong value. :func:`check_parsed` walks a parsed
result (models, lists of models, nested models) and raises :class:`SchemaMismatch` at the first field whose
value does not fit its annotation. Messages name the field path and the types, never the value (it may be a
secret).
"""

from __future__ import annotations

import importlib
import sys
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

import attrs

__all__ = ["SchemaMismatch", "check_parsed"]

_MAX_DEPTH = 32


class SchemaMismatch(ValueError):
    """A parsed value does not have the type the API schema gives it."""

    def __init__(self, path: str, expected: str, got: str) -> None:
        self.path = path
        super().__init__(f"{path or 'body'}: expected {expected}, got {got}")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float | str | list | dict):
        return type(value).__name__
    return type(value).__name__


def _evaluate(annotation: str, namespace: dict[str, Any], package: str) -> Any:
    """Evaluate an annotation string; names the model module imports only under TYPE_CHECKING are looked up
    in its (lazy) models package and remembered."""
    for _ in range(16):
        try:
            return eval(annotation, namespace)
        except NameError as exc:
            name = exc.name
            if not name:
                raise
            try:
                namespace[name] = getattr(importlib.import_module(package), name)
            except (ImportError, AttributeError, TypeError):
                raise exc from None
    raise NameError(annotation)


Shallow = Callable[[Any], bool]
Deep = Callable[[Any, str, int], "SchemaMismatch | None"]


@attrs.frozen
class _Check:
    """A compiled annotation: ``shallow`` tests the outer type; ``deep`` (if any) looks inside."""

    shallow: Shallow
    deep: Deep | None
    expected: str


_ANY = _Check(lambda value: True, None, "any")
_FIELDS: dict[type, list[tuple[str, _Check]]] = {}
_COMPILED: dict[Any, _Check] = {}


def _fields(cls: type) -> list[tuple[str, _Check]]:
    """The compiled checks of an attrs model's fields (annotations that do not evaluate are left out)."""
    cached = _FIELDS.get(cls)
    if cached is not None:
        return cached
    _FIELDS[cls] = []  # recursive models: an empty list while this one compiles
    module = sys.modules.get(cls.__module__)
    namespace = dict(vars(module)) if module is not None else {}
    package = cls.__module__.rsplit(".", 1)[0]
    out: list[tuple[str, _Check]] = []
    for field in attrs.fields(cls):
        if field.name == "additional_properties" or not field.init:
            continue
        annotation = field.type
        if isinstance(annotation, str):
            try:
                annotation = _evaluate(annotation, namespace, package)
            except Exception:  # an annotation we cannot evaluate is not checked
                continue
        if annotation is not None:
            check = _compile(annotation)
            if check is not _ANY:
                out.append((field.name, check))
    _FIELDS[cls] = out
    return out


def _compile(annotation: Any) -> _Check:
    try:
        cached = _COMPILED.get(annotation)
    except TypeError:  # unhashable annotation
        return _build(annotation)
    if cached is None:
        cached = _COMPILED[annotation] = _build(annotation)
    return cached


def _instance_of(kind: type | tuple[type, ...]) -> Shallow:
    return lambda value: isinstance(value, kind)


def _build(annotation: Any) -> _Check:
    if annotation is Any or annotation is object:
        return _ANY
    if annotation is None or annotation is type(None):
        return _Check(lambda value: value is None, None, "null")
    origin = typing.get_origin(annotation)
    if isinstance(annotation, types.UnionType) or origin is typing.Union:
        return _union([_compile(a) for a in typing.get_args(annotation)])
    if origin is typing.Literal:
        allowed = typing.get_args(annotation)
        return _Check(lambda value: value in allowed, None, " | ".join(map(repr, allowed)))
    if origin is list:
        args = typing.get_args(annotation)
        item = _compile(args[0]) if args else _ANY
        return _Check(
            _instance_of(list), _items(item) if item is not _ANY else None, _name(annotation)
        )
    if origin is dict:
        args = typing.get_args(annotation)
        value_check = _compile(args[1]) if len(args) == 2 else _ANY
        deep = _values(value_check) if value_check is not _ANY else None
        return _Check(_instance_of(dict), deep, _name(annotation))
    if origin is not None:
        return (
            _Check(_instance_of(origin), None, _name(annotation))
            if isinstance(origin, type)
            else _ANY
        )
    if annotation is float:
        return _Check(
            lambda v: isinstance(v, int | float) and not isinstance(v, bool), None, "float"
        )
    if annotation is int:
        return _Check(lambda v: isinstance(v, int) and not isinstance(v, bool), None, "int")
    if isinstance(annotation, type):
        if attrs.has(annotation):
            return _Check(_instance_of(annotation), _model_problem, annotation.__name__)
        return _Check(_instance_of(annotation), None, annotation.__name__)
    return _ANY  # TypeVars, forward references we could not resolve: not checked


def _name(annotation: Any) -> str:
    return annotation.__name__ if isinstance(annotation, type) else str(annotation)


def _union(members: list[_Check]) -> _Check:
    if any(m is _ANY for m in members):
        return _ANY
    expected = " | ".join(m.expected for m in members)
    shallows = tuple(m.shallow for m in members)

    def shallow(value: Any) -> bool:
        return any(test(value) for test in shallows)

    if all(m.deep is None for m in members):
        return _Check(shallow, None, expected)

    def deep(value: Any, path: str, depth: int) -> SchemaMismatch | None:
        first: SchemaMismatch | None = None
        for member in members:
            if not member.shallow(value):
                continue
            if member.deep is None:
                return None
            problem = member.deep(value, path, depth + 1)
            if problem is None:
                return None
            first = first or problem
        return first

    return _Check(shallow, deep, expected)


def _check(check: _Check, value: Any, path: str, depth: int) -> SchemaMismatch | None:
    if not check.shallow(value):
        return SchemaMismatch(path, check.expected, _json_type(value))
    if check.deep is not None and depth <= _MAX_DEPTH:
        return check.deep(value, path, depth)
    return None


def _items(item: _Check) -> Deep:
    def deep(value: Any, path: str, depth: int) -> SchemaMismatch | None:
        for i, element in enumerate(value):
            problem = _check(item, element, f"{path}[{i}]", depth + 1)
            if problem is not None:
                return problem
        return None

    return deep


def _values(item: _Check) -> Deep:
    def deep(value: Any, path: str, depth: int) -> SchemaMismatch | None:
        for key, element in value.items():
            problem = _check(item, element, _join(path, str(key)), depth + 1)
            if problem is not None:
                return problem
        return None

    return deep


def _model_problem(model: Any, path: str, depth: int) -> SchemaMismatch | None:
    for name, check in _fields(type(model)):
        problem = _check(check, getattr(model, name, None), _join(path, name), depth + 1)
        if problem is not None:
            return problem
    return None


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def check_parsed(value: Any, *, is_model: Callable[[Any], bool] = attrs.has) -> None:
    """Raise :class:`SchemaMismatch` if a parsed result (a generated model, a list or mapping of them, or a
    plain value) holds a value of the wrong type anywhere."""
    problem = _walk(value, "", 0, is_model)
    if problem is not None:
        raise problem


def _walk(
    value: Any, path: str, depth: int, is_model: Callable[[Any], bool]
) -> SchemaMismatch | None:
    if depth > _MAX_DEPTH:
        return None
    if is_model(type(value)):
        return _model_problem(value, path, depth)
    if isinstance(value, list):
        for i, element in enumerate(value):
            problem = _walk(element, f"{path}[{i}]", depth + 1, is_model)
            if problem is not None:
                return problem
    elif isinstance(value, Mapping):
        for key, element in value.items():
            problem = _walk(element, _join(path, str(key)), depth + 1, is_model)
            if problem is not None:
                return problem
    return None
