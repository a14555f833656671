"""GraphQL documents for peregrine, built without string-pasting user input: names are checked, values are
rendered as GraphQL literals."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import ConfigurationError

__all__ = ["count_query", "literal", "name", "node_query"]

_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]*\Z")


def name(value: str, what: str = "name") -> str:
    """``value`` if it is a GraphQL name, else :class:`ConfigurationError`."""
    if not isinstance(value, str) or not _NAME.match(value):
        raise ConfigurationError(f"not a valid GraphQL {what}: {value!r}")
    return value


def literal(value: Any) -> str:
    """A Python value as a GraphQL input literal (strings, numbers, booleans, null, lists)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid GraphQL string escapes
    if isinstance(value, list | tuple | set | frozenset):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    raise ConfigurationError(f"cannot use a {type(value).__name__} as a GraphQL argument")


def _arguments(args: Mapping[str, Any]) -> str:
    parts = [f"{name(k, 'argument')}: {literal(v)}" for k, v in args.items() if v is not None]
    return "(" + ", ".join(parts) + ")" if parts else ""


def _filters(
    project_id: str | None, filters: Mapping[str, Any] | None, order_by: str | None
) -> dict[str, Any]:
    args: dict[str, Any] = {}
    if project_id is not None:
        args["project_id"] = project_id
    for key, value in (filters or {}).items():
        args[name(key, "filter")] = value
    if order_by:
        if order_by.startswith("-"):
            args["order_by_desc"] = name(order_by[1:], "field")
        else:
            args["order_by_asc"] = name(order_by.lstrip("+"), "field")
    return args


def node_query(
    node: str,
    fields: Iterable[str],
    *,
    first: int,
    offset: int,
    project_id: str | None = None,
    filters: Mapping[str, Any] | None = None,
    order_by: str | None = None,
    with_count: bool = False,
) -> str:
    """``{ rows: <node>(first, offset, filters...) { fields } [count: _<node>_count(filters...)] }``."""
    node = name(node, "node type")
    selection = " ".join(name(f, "field") for f in fields) or "id"
    base = _filters(project_id, filters, order_by)
    rows_args = {"first": first, "offset": offset, **base}
    text = f"rows: {node}{_arguments(rows_args)} {{ {selection} }}"
    if with_count:
        count_args = {k: v for k, v in base.items() if not k.startswith("order_by")}
        text += f" count: _{node}_count{_arguments(count_args)}"
    return "{ " + text + " }"


def count_query(
    node: str, *, project_id: str | None = None, filters: Mapping[str, Any] | None = None
) -> str:
    """``{ count: _<node>_count(filters...) }``."""
    node = name(node, "node type")
    return "{ count: _" + node + "_count" + _arguments(_filters(project_id, filters, None)) + " }"
