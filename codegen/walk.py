"""Walking an OpenAPI 3 document: every place that holds a schema, every operation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["HTTP_METHODS", "SchemaSlot", "iter_operations", "iter_schema_slots", "iter_schemas"]

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

SchemaSlot = tuple[Any, Any]
"""``(container, key)`` with ``container[key]`` a schema (a dict, or a bool in JSON Schema 2020-12)."""

# Keywords whose value is a schema, a list of schemas or a mapping name -> schema.
_ONE = (
    "items",
    "additionalProperties",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
    "contentSchema",
)
_MANY = ("allOf", "anyOf", "oneOf", "prefixItems")
_MAP = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
# Places in the document (outside schemas) whose values are never walked: free-form data.
_DATA_KEYS = ("example", "examples", "default", "enum", "const", "x-examples")


def _schema_children(schema: dict[str, Any]) -> Iterator[SchemaSlot]:
    for key in _ONE:
        if isinstance(schema.get(key), dict | bool):
            yield schema, key
    for key in _MANY:
        value = schema.get(key)
        if isinstance(value, list):
            yield from ((value, i) for i, item in enumerate(value) if isinstance(item, dict | bool))
    if isinstance(schema.get("items"), list):  # draft-4 tuple form
        items = schema["items"]
        yield from ((items, i) for i, item in enumerate(items) if isinstance(item, dict | bool))
    for key in _MAP:
        value = schema.get(key)
        if isinstance(value, dict):
            yield from (
                (value, name) for name, item in value.items() if isinstance(item, dict | bool)
            )


def _walk_schema(container: Any, key: Any, seen: set[int]) -> Iterator[SchemaSlot]:
    schema = container[key]
    if isinstance(schema, dict):
        if id(schema) in seen:
            return
        seen.add(id(schema))
    yield container, key
    if isinstance(schema, dict):
        for child_container, child_key in list(_schema_children(schema)):
            yield from _walk_schema(child_container, child_key, seen)


def _walk_document(node: Any, seen: set[int]) -> Iterator[SchemaSlot]:
    if isinstance(node, dict):
        for key, value in list(node.items()):
            if not isinstance(key, str) or key in _DATA_KEYS or key.startswith("x-"):
                continue
            if key == "schema" and isinstance(value, dict | bool):
                yield from _walk_schema(node, key, seen)
            elif key in ("schemas", "definitions") and isinstance(value, dict):  # 3.x / 2.0
                for name, schema in list(value.items()):
                    if isinstance(schema, dict | bool):
                        yield from _walk_schema(value, name, seen)
            else:
                yield from _walk_document(value, seen)
    elif isinstance(node, list):
        for item in node:
            yield from _walk_document(item, seen)


def iter_schema_slots(document: dict[str, Any]) -> Iterator[SchemaSlot]:
    """Every schema in the document, outermost first, as ``(container, key)`` slots (each schema once).

    Slots are produced lazily from the current state, so a caller may replace ``container[key]`` as it goes.
    """
    yield from _walk_document(document, set())


def iter_schemas(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every schema object (dict) in the document, each once."""
    for container, key in iter_schema_slots(document):
        value = container[key]
        if isinstance(value, dict):
            yield value


def iter_operations(
    document: dict[str, Any],
) -> Iterator[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """``(path, method, operation, path_item)`` for every operation under ``paths``."""
    paths = document.get("paths")
    if not isinstance(paths, dict):
        return
    for path, item in paths.items():
        if not isinstance(item, dict):
            continue
        for method in HTTP_METHODS:
            op = item.get(method)
            if isinstance(op, dict):
                yield path, method, op, item
