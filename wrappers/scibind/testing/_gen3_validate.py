"""A small JSON Schema (draft 4) validator for Gen3 dictionary node schemas.

It covers what dictionaries use (``type``, ``enum``, ``pattern``, ``minimum``/``maximum``, ``required``,
``properties``, ``additionalProperties``, ``items``, ``minItems``/``maxItems``, ``anyOf``/``oneOf``/
``allOf``) and words its messages like the ``jsonschema`` package, which sheepdog relays to clients.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["SchemaViolation", "iter_violations"]


@dataclass(frozen=True)
class SchemaViolation:
    """One failed check: message, path of the offending value, and the keyword that failed."""

    message: str
    path: tuple[str | int, ...]
    keyword: str


def _is_type(value: Any, name: str) -> bool:
    if name == "null":
        return value is None
    if name == "boolean":
        return isinstance(value, bool)
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if name == "string":
        return isinstance(value, str)
    if name == "array":
        return isinstance(value, list)
    if name == "object":
        return isinstance(value, Mapping)
    return True


def _valid(value: Any, schema: Mapping[str, Any]) -> bool:
    return next(iter_violations(value, schema), None) is None


def iter_violations(
    value: Any, schema: Mapping[str, Any], path: tuple[str | int, ...] = ()
) -> Iterator[SchemaViolation]:
    """Every violation of ``schema`` by ``value``."""
    types = schema.get("type")
    if types is not None:
        names = types if isinstance(types, list) else [types]
        if not any(_is_type(value, n) for n in names):
            shown = ", ".join(repr(n) for n in names)
            yield SchemaViolation(f"{value!r} is not of type {shown}", path, "type")
            return
    if "enum" in schema and value not in schema["enum"]:
        yield SchemaViolation(f"{value!r} is not one of {schema['enum']!r}", path, "enum")
    if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"], value):
        yield SchemaViolation(f"{value!r} does not match {schema['pattern']!r}", path, "pattern")
    if _is_type(value, "number"):
        if "minimum" in schema and value < schema["minimum"]:
            yield SchemaViolation(
                f"{value!r} is less than the minimum of {schema['minimum']!r}", path, "minimum"
            )
        if "maximum" in schema and value > schema["maximum"]:
            yield SchemaViolation(
                f"{value!r} is greater than the maximum of {schema['maximum']!r}", path, "maximum"
            )
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            yield SchemaViolation(f"{value!r} is too short", path, "minItems")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            yield SchemaViolation(f"{value!r} is too long", path, "maxItems")
        items = schema.get("items")
        if isinstance(items, Mapping):
            for i, item in enumerate(value):
                yield from iter_violations(item, items, (*path, i))
    if isinstance(value, Mapping):
        for name in schema.get("required", []):
            if name not in value:
                yield SchemaViolation(f"{name!r} is a required property", path, "required")
        properties = schema.get("properties", {})
        for name, item in value.items():
            if name in properties and isinstance(properties[name], Mapping):
                yield from iter_violations(item, properties[name], (*path, name))
        if schema.get("additionalProperties") is False:
            extra = [k for k in value if k not in properties]
            if extra:
                listed = ", ".join(repr(k) for k in extra)
                verb = "was" if len(extra) == 1 else "were"
                yield SchemaViolation(
                    f"Additional properties are not allowed ({listed} {verb} unexpected)",
                    path,
                    "additionalProperties",
                )
    for sub in schema.get("allOf", []):
        yield from iter_violations(value, sub, path)
    if "anyOf" in schema and not any(_valid(value, s) for s in schema["anyOf"]):
        yield SchemaViolation(
            f"{value!r} is not valid under any of the given schemas", path, "anyOf"
        )
    if "oneOf" in schema:
        matched = sum(1 for s in schema["oneOf"] if _valid(value, s))
        if matched == 0:
            yield SchemaViolation(
                f"{value!r} is not valid under any of the given schemas", path, "oneOf"
            )
        elif matched > 1:
            yield SchemaViolation(
                f"{value!r} is valid under each of the given schemas", path, "oneOf"
            )
