"""Check that a parsed generated model holds the types its annotations promise.

openapi-python-client's ``from_dict`` turns missing required fields into ``KeyError`` and bad dates into
``ValueError``, but copies strings, numbers, booleans and lists as they come: a server answering
``"size": "12"`` for an integer would reach the user as a wrong value. :func:`check_parsed` walks a parsed
result (models, lists of models, nested models) and raises :class:`SchemaMismatch` at the first field whose
value does not fit its annotation. Messages name the field path and the types, never the value (it may be a
secret).
"""

from __future__ import annotations

import datetime
import enum
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


_HINTS: dict[type, list[tuple[str, Any]]] = {}


def _hints(cls: type) -> list[tuple[str, Any]]:
    """``(name, annotation)`` of an attrs model's fields (unresolvable annotations are left out)."""
    cached = _HINTS.get(cls)
    if cached is not None:
        return cached
    module = sys.modules.get(cls.__module__)
    namespace = dict(vars(module)) if module is not None else {}
    package = cls.__module__.rsplit(".", 1)[0]
    out: list[tuple[str, Any]] = []
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
            out.append((field.name, annotation))
    _HINTS[cls] = out
    return out


def _describe(annotation: Any) -> str:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return " | ".join(_describe(a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return "null"
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation)


def _problem(value: Any, annotation: Any, path: str, depth: int) -> SchemaMismatch | None:
    """None when ``value`` fits ``annotation``; else the mismatch (deepest path first)."""
    if depth > _MAX_DEPTH or annotation is Any or annotation is object:
        return None
    origin = typing.get_origin(annotation)
    if isinstance(annotation, types.UnionType) or origin is typing.Union:
        members = typing.get_args(annotation)
        shallow = [m for m in members if _shallow(value, m)]
        if not shallow:
            return SchemaMismatch(path, _describe(annotation), _json_type(value))
        first: SchemaMismatch | None = None
        for member in shallow:
            problem = _problem(value, member, path, depth + 1)
            if problem is None:
                return None
            first = first or problem
        return first
    if not _shallow(value, annotation):
        return SchemaMismatch(path, _describe(annotation), _json_type(value))
    if origin is list:
        (item,) = typing.get_args(annotation) or (Any,)
        for i, element in enumerate(value):
            problem = _problem(element, item, f"{path}[{i}]", depth + 1)
            if problem is not None:
                return problem
    elif origin is dict:
        args = typing.get_args(annotation)
        item = args[1] if len(args) == 2 else Any
        for key, element in value.items():
            problem = _problem(element, item, f"{path}.{key}", depth + 1)
            if problem is not None:
                return problem
    elif isinstance(annotation, type) and attrs.has(annotation):
        return _model_problem(value, path, depth + 1)
    return None


def _shallow(value: Any, annotation: Any) -> bool:
    """The outer type fits (lists and dicts are not looked into)."""
    if annotation is Any or annotation is object:
        return True
    if annotation is None or annotation is type(None):
        return value is None
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return value in typing.get_args(annotation)
    if origin is not None:
        if isinstance(annotation, types.UnionType) or origin is typing.Union:
            return any(_shallow(value, m) for m in typing.get_args(annotation))
        return isinstance(origin, type) and isinstance(value, origin)
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is datetime.date:
        return isinstance(value, datetime.date)
    if isinstance(annotation, type):
        if issubclass(annotation, enum.Enum):
            return isinstance(value, annotation)
        return isinstance(value, annotation)
    return True  # TypeVars, forward references we could not resolve: not checked


def _model_problem(model: Any, path: str, depth: int) -> SchemaMismatch | None:
    for name, annotation in _hints(type(model)):
        problem = _problem(getattr(model, name, None), annotation, _join(path, name), depth)
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
