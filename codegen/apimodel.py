"""A flat, comparable view of a normalised OpenAPI 3 document (operations, parameters, body/response fields)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from codegen.walk import iter_operations

__all__ = ["Field", "Operation", "Param", "api_view", "schema_type"]

_MAX_DEPTH = 6


@dataclass(frozen=True)
class Param:
    """One parameter of an operation."""

    name: str
    location: str
    required: bool
    type: str


@dataclass(frozen=True)
class Field:
    """One field of a request or response body (``a.b[].c``)."""

    path: str
    type: str
    required: bool


@dataclass
class Operation:
    """One operation, keyed by ``METHOD /path`` with template variables blanked (``/items/{}``)."""

    method: str
    path: str
    operation_id: str | None
    params: dict[str, Param] = field(default_factory=dict)
    body_required: bool = False
    body_media: tuple[str, ...] = ()
    body_fields: dict[str, Field] = field(default_factory=dict)
    responses: dict[str, dict[str, Field]] = field(default_factory=dict)
    """status code -> fields of the (first JSON-ish) response body."""

    @property
    def label(self) -> str:
        """``GET /items/{id}``."""
        return f"{self.method.upper()} {self.path}"


def _resolve(doc: dict[str, Any], node: Any) -> Any:
    seen = 0
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and seen < 20:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            return {}
        target: Any = doc
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            target = target.get(part) if isinstance(target, dict) else None
        if target is None:
            return {}
        node = target
        seen += 1
    return node


def _merged(doc: dict[str, Any], schema: Any) -> dict[str, Any]:
    """Resolve refs and fold ``allOf`` into one schema (properties and required united)."""
    schema = _resolve(doc, schema)
    if not isinstance(schema, dict):
        return {}
    parts = schema.get("allOf")
    if not isinstance(parts, list):
        return schema
    merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
    props: dict[str, Any] = dict(merged.get("properties") or {})
    required: list[str] = list(merged.get("required") or [])
    for part in parts:
        sub = _merged(doc, part)
        props.update(sub.get("properties") or {})
        required += [r for r in sub.get("required") or [] if r not in required]
        for key in ("type", "format", "items", "nullable"):
            if key in sub and key not in merged:
                merged[key] = sub[key]
    if props:
        merged["properties"] = props
    if required:
        merged["required"] = required
    return merged


def schema_type(doc: dict[str, Any], schema: Any, depth: int = 0) -> str:
    """A short type signature: ``string``, ``integer/int64``, ``array<string>``, ``object``, ``string|null``."""
    s = _merged(doc, schema)
    if not s:
        return "any"
    for key in ("anyOf", "oneOf"):
        if isinstance(s.get(key), list) and depth < _MAX_DEPTH:
            sigs = sorted({schema_type(doc, part, depth + 1) for part in s[key]})
            return "|".join(sigs)
    kind = s.get("type")
    kinds = sorted(str(k) for k in kind) if isinstance(kind, list) else [str(kind)] if kind else []
    if not kinds:
        kinds = ["object"] if "properties" in s or "additionalProperties" in s else ["any"]
    out = []
    for k in kinds:
        if k == "array" and depth < _MAX_DEPTH:
            out.append(f"array<{schema_type(doc, s.get('items'), depth + 1)}>")
        elif k != "null" and s.get("format"):
            out.append(f"{k}/{s['format']}")
        else:
            out.append(k)
    if s.get("nullable") is True and "null" not in kinds:
        out.append("null")
    return "|".join(out)


def _fields(
    doc: dict[str, Any], schema: Any, prefix: str, out: dict[str, Field], stack: tuple[int, ...]
) -> None:
    s = _merged(doc, schema)
    if not s or id(s) in stack or len(stack) >= _MAX_DEPTH:
        return
    stack = (*stack, id(s))
    props = s.get("properties")
    if isinstance(props, dict):
        required = set(s.get("required") or [])
        for name, sub in props.items():
            path = f"{prefix}.{name}" if prefix else name
            out[path] = Field(path, schema_type(doc, sub), name in required)
            _fields(doc, sub, path, out, stack)
    if s.get("type") == "array" or "items" in s:
        _fields(doc, s.get("items"), f"{prefix}[]", out, stack)


def _body_schema(content: Any) -> tuple[tuple[str, ...], Any]:
    if not isinstance(content, dict) or not content:
        return (), None
    media = tuple(sorted(content))
    for name in sorted(content, key=lambda n: ("json" not in n, n)):
        item = content[name]
        if isinstance(item, dict) and "schema" in item:
            return media, item["schema"]
    return media, None


def _params(doc: dict[str, Any], op: dict[str, Any], item: dict[str, Any]) -> dict[str, Param]:
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for source in (item.get("parameters"), op.get("parameters")):
        for raw in source or []:
            p = _resolve(doc, raw)
            if isinstance(p, dict) and "name" in p:
                merged[(str(p.get("in")), str(p["name"]))] = p
    names = [name for _loc, name in merged]
    out: dict[str, Param] = {}
    for (loc, name), p in merged.items():
        key = name if names.count(name) == 1 else f"{loc}:{name}"
        schema = p.get("schema")
        if schema is None and isinstance(p.get("content"), dict):
            schema = _body_schema(p["content"])[1]
        out[key] = Param(
            name, loc, bool(p.get("required")) or loc == "path", schema_type(doc, schema)
        )
    return out


def api_view(doc: dict[str, Any]) -> dict[str, Operation]:
    """``{"GET /items/{}": Operation}`` for every operation of a normalised OpenAPI 3 document."""
    ops: dict[str, Operation] = {}
    for path, method, op, item in iter_operations(doc):
        key = f"{method.upper()} {re.sub(r'{[^}]*}', '{}', path)}"
        view = Operation(method, path, op.get("operationId"), params=_params(doc, op, item))
        body = _resolve(doc, op.get("requestBody"))
        if isinstance(body, dict) and body:
            view.body_required = bool(body.get("required"))
            view.body_media, schema = _body_schema(body.get("content"))
            if schema is not None:
                view.body_fields[""] = Field("(body)", schema_type(doc, schema), view.body_required)
                _fields(doc, schema, "", view.body_fields, ())
        for code, response in (op.get("responses") or {}).items():
            resolved = _resolve(doc, response)
            fields: dict[str, Field] = {}
            _media, schema = _body_schema(
                resolved.get("content") if isinstance(resolved, dict) else None
            )
            if schema is not None:
                fields[""] = Field("(body)", schema_type(doc, schema), True)
                _fields(doc, schema, "", fields, ())
            view.responses[str(code)] = fields
        ops[key] = view
    return ops
