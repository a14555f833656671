"""Generic normalisations: spec quirks that openapi-python-client cannot parse, fixed the one sensible way.

Each fixup takes the document, changes it in place and returns notes (one line per change kind) so the
caller can show what was done. Service-specific fixes do not belong here: they are overrides.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from codegen.walk import iter_operations, iter_schema_slots, iter_schemas

__all__ = ["POST_CONVERSION", "PRE_CONVERSION", "Fixup"]

Fixup = Callable[[dict[str, Any]], list[str]]

_TEXT_KEYS = ("description", "summary", "title")
_DATA_KEYS = ("example", "examples", "default", "enum", "const")


def _note(count: int, text: str) -> list[str]:
    return [f"{text} ({count}x)"] if count else []


def stringify_versions(doc: dict[str, Any]) -> list[str]:
    """``openapi: 3.0``, ``swagger: 2.0`` and ``info.version: 1.0`` read as numbers: make them strings."""
    count = 0
    for key in ("openapi", "swagger"):
        if key in doc and not isinstance(doc[key], str):
            doc[key] = str(doc[key])
            count += 1
    info = doc.get("info")
    if isinstance(info, dict) and "version" in info and not isinstance(info["version"], str):
        info["version"] = "" if info["version"] is None else str(info["version"])
        count += 1
    return _note(count, "version numbers made strings")


def stringify_text(doc: dict[str, Any]) -> list[str]:
    """``description``/``summary``/``title`` given as a number or boolean (e.g. ``description: 2``)."""
    count = 0

    def visit(node: Any) -> None:
        nonlocal count
        if isinstance(node, dict):
            for key, value in node.items():
                if key in _TEXT_KEYS and isinstance(value, int | float | bool):
                    node[key] = str(value).lower() if isinstance(value, bool) else str(value)
                    count += 1
                elif key not in _DATA_KEYS and not str(key).startswith("x-"):
                    visit(value)
        elif isinstance(node, list):
            for item in node:
                visit(item)

    visit(doc)
    return _note(count, "non-string description/summary/title made strings")


def status_code_keys(doc: dict[str, Any]) -> list[str]:
    """Response codes as written in YAML (``200``) are strings already; ``2xx`` ranges become ``2XX``."""
    count = 0
    for _path, _method, op, _item in iter_operations(doc):
        responses = op.get("responses")
        if not isinstance(responses, dict):
            continue
        fixed: dict[str, Any] = {}
        for code, response in responses.items():
            key = str(code)
            if re.fullmatch(r"[1-5][xX]{2}", key) and key != key.upper():
                key = key.upper()
                count += 1
            fixed[key] = response
        op["responses"] = fixed
    return _note(count, "response code ranges upper-cased")


_FLASK_VAR = re.compile(r"<(?:[A-Za-z_][A-Za-z0-9_]*(?:\([^)]*\))?:)?([A-Za-z_][A-Za-z0-9_]*)>")


def flask_path_templates(doc: dict[str, Any]) -> list[str]:
    """Flask/werkzeug route syntax in paths (``/x/<int:id>``) becomes OpenAPI templating (``/x/{id}``)."""
    paths = doc.get("paths")
    if not isinstance(paths, dict):
        return []
    count = 0
    renamed: dict[str, Any] = {}
    for path, item in paths.items():
        new = _FLASK_VAR.sub(r"{\1}", path)
        if new != path:
            count += 1
            if new in paths or new in renamed:
                raise ValueError(f"path {path!r} becomes {new!r}, which already exists")
        renamed[new] = item
    doc["paths"] = renamed
    return _note(count, "Flask-style <var> path templates made {var}")


def missing_paths(doc: dict[str, Any]) -> list[str]:
    """OpenAPI 3.1 allows a document without ``paths``; the generator needs the key."""
    if isinstance(doc.get("paths"), dict):
        return []
    doc["paths"] = {}
    return ["empty paths object added"]


def _hoist(schema: dict[str, Any]) -> int:
    props = schema.get("properties")
    if not isinstance(props, dict):
        return 0
    count = 0
    required = schema.get("required")
    names: list[str] = list(required) if isinstance(required, list) else []
    for name, prop in props.items():
        if isinstance(prop, dict) and isinstance(prop.get("required"), bool):
            if prop.pop("required") and name not in names:
                names.append(name)
            count += 1
    if count:
        schema["required"] = names
        if not names:
            del schema["required"]
    return count


def property_required_flags(doc: dict[str, Any]) -> list[str]:
    """``required: true`` on a property moves into the parent's ``required`` list (``false`` is dropped).

    A boolean ``required`` on a schema with no parent object (e.g. a component) is dropped too.
    """
    hoisted = 0
    for schema in iter_schemas(doc):
        hoisted += _hoist(schema)
    dropped = 0
    for schema in iter_schemas(doc):
        if isinstance(schema.get("required"), bool):
            del schema["required"]
            dropped += 1
    return _note(
        hoisted, "property-level required flags moved to the parent's required list"
    ) + _note(dropped, "boolean required on a schema without a parent object dropped")


def boolean_schemas(doc: dict[str, Any]) -> list[str]:
    """JSON Schema boolean schemas: ``true`` becomes ``{}``; a ``false`` property or item is removed."""
    count = 0
    for container, key in list(iter_schema_slots(doc)):
        value = container[key]
        if not isinstance(value, bool) or key == "additionalProperties":
            continue
        count += 1
        if value:
            container[key] = {}
        elif isinstance(container, dict):
            del container[key]
        else:
            container[key] = {"not": {}}
    return _note(count, "boolean schemas replaced")


def non_scalar_const(doc: dict[str, Any]) -> list[str]:
    """``const`` with an object/array/null value (unsupported by the generator) becomes an ``enum``."""
    count = 0
    for schema in iter_schemas(doc):
        if "const" in schema and (
            schema["const"] is None or isinstance(schema["const"], dict | list)
        ):
            value = schema.pop("const")
            if value is not None:
                schema.setdefault("enum", [value])
            count += 1
    return _note(count, "non-scalar const removed")


_OUTER_KEYS = (
    "description",
    "title",
    "default",
    "example",
    "examples",
    "readOnly",
    "writeOnly",
    "deprecated",
)


def nullable_refs_and_enums(doc: dict[str, Any]) -> list[str]:
    """``{$ref, nullable: true}`` and nullable enums become ``anyOf: [..., {type: "null"}]``.

    The generator ignores ``nullable`` next to a ``$ref`` and next to an ``enum`` (a ``null`` from the server
    would then fail to parse); the ``anyOf`` form is the one it turns into ``X | None``.
    """
    count = 0
    for schema in list(iter_schemas(doc)):
        kind = schema.get("type")
        if "$ref" in schema and schema.get("nullable") is True:
            inner: dict[str, Any] = {"$ref": schema["$ref"]}
        elif isinstance(schema.get("enum"), list) and (
            schema.get("nullable") is True
            or None in schema["enum"]
            or (isinstance(kind, list) and "null" in kind)
        ):
            values = [v for v in schema["enum"] if v is not None]
            if not values:
                continue
            inner = {
                k: v
                for k, v in schema.items()
                if k not in (*_OUTER_KEYS, "nullable", "enum", "type")
            }
            inner["enum"] = values
            if isinstance(kind, list):
                kinds = [k for k in kind if k != "null"]
                if kinds:
                    inner["type"] = kinds[0] if len(kinds) == 1 else kinds
            elif kind is not None:
                inner["type"] = kind
        else:
            continue
        outer = {k: v for k, v in schema.items() if k in _OUTER_KEYS}
        schema.clear()
        schema.update(outer)
        schema["anyOf"] = [inner, {"type": "null"}]
        count += 1
    return _note(count, "nullable $ref/enum schemas rewritten as anyOf [..., null]")


def mixed_type_enums(doc: dict[str, Any]) -> list[str]:
    """An ``enum`` mixing value types (e.g. ``["a", 1]``) cannot be generated: it is dropped."""
    count = 0
    for schema in iter_schemas(doc):
        values = schema.get("enum")
        if isinstance(values, list):
            kinds = {type(v).__name__ for v in values if v is not None}
            if len(kinds) > 1:
                del schema["enum"]
                count += 1
    return _note(count, "enums with mixed value types dropped")


def nested_defs(doc: dict[str, Any]) -> list[str]:
    """``$defs``/``definitions`` inside a component schema move to ``components/schemas`` (refs rewritten)."""
    schemas = (doc.get("components") or {}).get("schemas")
    if not isinstance(schemas, dict):
        return []
    moved: dict[str, str] = {}
    for parent in list(schemas):
        schema = schemas[parent]
        for key in ("$defs", "definitions"):
            defs = schema.pop(key, None) if isinstance(schema, dict) else None
            for name, sub in (defs or {}).items():
                target = name if name not in schemas or schemas[name] == sub else f"{parent}_{name}"
                schemas[target] = sub
                moved[f"#/components/schemas/{parent}/{key}/{name}"] = (
                    f"#/components/schemas/{target}"
                )
    if not moved:
        return []

    def rewrite(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref in moved:
                node["$ref"] = moved[ref]
            for value in node.values():
                rewrite(value)
        elif isinstance(node, list):
            for item in node:
                rewrite(item)

    rewrite(doc)
    return _note(len(moved), "nested $defs moved to components/schemas")


def _guess_media_type(schema: Any) -> str:
    if not isinstance(schema, dict) or "$ref" in schema:
        return "application/json"
    kind = schema.get("type")
    if kind == "string" and schema.get("format") in ("binary", "byte"):
        return "application/octet-stream"
    if kind == "string":
        return "text/plain"
    return "application/json"


def wildcard_media_types(doc: dict[str, Any]) -> list[str]:
    """Media type ``*/*`` (what swagger2openapi writes when no ``produces`` is given) becomes a real one.

    The choice follows the schema: binary strings -> ``application/octet-stream``, other strings ->
    ``text/plain``, everything else (objects, arrays, refs, numbers) -> ``application/json``.
    """
    count = 0

    def fix(content: Any) -> None:
        nonlocal count
        if not isinstance(content, dict) or "*/*" not in content:
            return
        media = content["*/*"]
        target = _guess_media_type(media.get("schema") if isinstance(media, dict) else None)
        rebuilt = {}
        for name, value in content.items():
            if name == "*/*":
                if target in content:
                    continue
                name = target
            rebuilt[name] = value
        content.clear()
        content.update(rebuilt)
        count += 1

    for _path, _method, op, _item in iter_operations(doc):
        body = op.get("requestBody")
        if isinstance(body, dict):
            fix(body.get("content"))
        for response in (op.get("responses") or {}).values():
            if isinstance(response, dict):
                fix(response.get("content"))
    components = doc.get("components") or {}
    for section in ("responses", "requestBodies"):
        for item in (components.get(section) or {}).values():
            if isinstance(item, dict):
                fix(item.get("content"))
    return _note(count, "*/* media types made concrete")


def path_parameters(doc: dict[str, Any]) -> list[str]:
    """Path parameters are always required; a template variable nobody declared becomes a string parameter.

    A variable whose name is declared in another location (e.g. as a query parameter), or an operation that
    declares a path parameter missing from the template (misnamed?), is left for an override: which is right
    is a fact about the service, not something to guess.
    """
    made_required = 0
    added = 0
    for param in ((doc.get("components") or {}).get("parameters") or {}).values():
        if (
            isinstance(param, dict)
            and param.get("in") == "path"
            and param.get("required") is not True
        ):
            param["required"] = True
            made_required += 1
    for path, _method, op, item in iter_operations(doc):
        declared: dict[str, str] = {}
        for params in (item.get("parameters"), op.get("parameters")):
            for param in params or []:
                resolved = _resolve_param(doc, param)
                if resolved is None:
                    continue
                declared.setdefault(str(resolved.get("name")), str(resolved.get("in")))
                if (
                    param is resolved
                    and param.get("in") == "path"
                    and param.get("required") is not True
                ):
                    param["required"] = True
                    made_required += 1
        template = re.findall(r"{([^}/]+)}", path)
        if any(kind == "path" and name not in template for name, kind in declared.items()):
            continue  # a declared path parameter is not in the template: a misnamed one, for an override
        for name in template:
            if name not in declared:
                op.setdefault("parameters", []).append(
                    {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                )
                declared[name] = "path"
                added += 1
    return _note(made_required, "path parameters marked required") + _note(
        added, "undeclared path template variables declared as string parameters"
    )


def parameter_schemas(doc: dict[str, Any]) -> list[str]:
    """A parameter with neither ``schema`` nor ``content`` (the generator would drop it) gets a string schema."""
    count = 0
    params: list[Any] = list(((doc.get("components") or {}).get("parameters") or {}).values())
    for _path, _method, op, item in iter_operations(doc):
        params += list(item.get("parameters") or []) + list(op.get("parameters") or [])
    for param in params:
        if (
            isinstance(param, dict)
            and "$ref" not in param
            and "schema" not in param
            and "content" not in param
        ):
            param["schema"] = {"type": "string"}
            count += 1
    return _note(count, "parameters without a schema given a string schema")


def _resolve_param(doc: dict[str, Any], param: Any) -> dict[str, Any] | None:
    if not isinstance(param, dict):
        return None
    ref = param.get("$ref")
    if ref is None:
        return param
    prefix = "#/components/parameters/"
    if isinstance(ref, str) and ref.startswith(prefix):
        target = ((doc.get("components") or {}).get("parameters") or {}).get(ref[len(prefix) :])
        if isinstance(target, dict):
            return target
    return None


PRE_CONVERSION: tuple[Fixup, ...] = (
    stringify_versions,
    stringify_text,
    status_code_keys,
    property_required_flags,  # swagger2openapi would silently drop them
)
"""Run on the document as read, before Swagger 2.0 conversion."""

POST_CONVERSION: tuple[Fixup, ...] = (
    missing_paths,
    flask_path_templates,
    status_code_keys,
    property_required_flags,
    boolean_schemas,
    nested_defs,
    non_scalar_const,
    mixed_type_enums,
    nullable_refs_and_enums,
    wildcard_media_types,
    parameter_schemas,
    path_parameters,
)
"""Run on the OpenAPI 3 document (converted or not)."""
