"""Generic normalisation: quirks openapi-python-client cannot parse, fixed the one sensible way."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from codegen.normalize import load_normalized, normalize_document
from codegen.specio import SpecError


def _doc(
    paths: dict[str, Any] | None = None, schemas: dict[str, Any] | None = None
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {"title": "t", "version": "1"},
        "paths": paths or {},
    }
    if schemas is not None:
        doc["components"] = {"schemas": schemas}
    return doc


def _ok(schema: dict[str, Any]) -> dict[str, Any]:
    return {"200": {"description": "ok", "content": {"*/*": {"schema": schema}}}}


def test_property_level_required_moves_to_parent() -> None:
    schemas = {
        "Thing": {
            "type": "object",
            "required": ["a"],
            "properties": {
                "a": {"type": "string"},
                "b": {"type": "string", "required": True},
                "c": {"type": "string", "required": False},
                "nested": {
                    "type": "object",
                    "properties": {"d": {"type": "integer", "required": True}},
                },
            },
        },
        "Top": {"type": "object", "required": True, "properties": {"x": {"type": "string"}}},
    }
    out = normalize_document(_doc(schemas=schemas)).document["components"]["schemas"]
    assert out["Thing"]["required"] == ["a", "b"]
    assert "required" not in out["Thing"]["properties"]["b"]
    assert "required" not in out["Thing"]["properties"]["c"]
    assert out["Thing"]["properties"]["nested"]["required"] == ["d"]
    assert "required" not in out["Top"]


def test_parameter_and_request_body_required_flags_are_kept() -> None:
    paths = {
        "/a": {
            "post": {
                "parameters": [
                    {"name": "q", "in": "query", "required": True, "schema": {"type": "string"}}
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "responses": {"204": {"description": "done"}},
            }
        }
    }
    op = normalize_document(_doc(paths)).document["paths"]["/a"]["post"]
    assert op["parameters"][0]["required"] is True
    assert op["requestBody"]["required"] is True


def test_non_string_descriptions_and_versions() -> None:
    doc = _doc({"/a": {"get": {"responses": {"200": {"description": 2}}}}})
    doc["info"]["version"] = 1.0
    doc["components"] = {
        "schemas": {"S": {"type": "object", "properties": {"description": {"type": "string"}}}}
    }
    out = normalize_document(doc).document
    assert out["paths"]["/a"]["get"]["responses"]["200"]["description"] == "2"
    assert out["info"]["version"] == "1.0"
    assert out["components"]["schemas"]["S"]["properties"]["description"] == {"type": "string"}


def test_flask_routes_become_templates_and_undeclared_variables_are_declared() -> None:
    paths = {"/p/<program>/t/<int:tid>": {"get": {"responses": {"200": {"description": "ok"}}}}}
    out = normalize_document(_doc(paths)).document["paths"]
    assert list(out) == ["/p/{program}/t/{tid}"]
    params = out["/p/{program}/t/{tid}"]["get"]["parameters"]
    assert [(p["name"], p["in"], p["required"]) for p in params] == [
        ("program", "path", True),
        ("tid", "path", True),
    ]


def test_misnamed_path_parameter_is_left_for_an_override() -> None:
    param = {"name": "uuid", "in": "path", "required": True, "schema": {"type": "string"}}
    paths = {
        "/f/{file_uuid}": {
            "get": {"parameters": [param], "responses": {"200": {"description": "ok"}}}
        }
    }
    out = normalize_document(_doc(paths)).document["paths"]["/f/{file_uuid}"]["get"]["parameters"]
    assert [p["name"] for p in out] == ["uuid"]


def test_wildcard_media_types_follow_the_schema() -> None:
    paths = {
        "/j": {"get": {"responses": _ok({"$ref": "#/components/schemas/S"})}},
        "/b": {"get": {"responses": _ok({"type": "string", "format": "binary"})}},
        "/t": {"get": {"responses": _ok({"type": "string"})}},
    }
    out = normalize_document(_doc(paths, {"S": {"type": "object"}})).document["paths"]
    assert list(out["/j"]["get"]["responses"]["200"]["content"]) == ["application/json"]
    assert list(out["/b"]["get"]["responses"]["200"]["content"]) == ["application/octet-stream"]
    assert list(out["/t"]["get"]["responses"]["200"]["content"]) == ["text/plain"]


def test_openapi_31_boolean_schemas_and_const() -> None:
    schemas = {
        "S": {
            "type": "object",
            "properties": {
                "any": True,
                "never": False,
                "fixed": {"const": {"a": 1}},
                "k": {"const": "x"},
            },
        }
    }
    doc = _doc(schemas=schemas)
    doc["openapi"] = "3.1.0"
    props = normalize_document(doc).document["components"]["schemas"]["S"]["properties"]
    assert props["any"] == {} and "never" not in props
    assert props["fixed"] == {"enum": [{"a": 1}]} and props["k"] == {"const": "x"}


def test_parameter_without_schema_gets_string() -> None:
    paths = {
        "/a": {
            "get": {
                "parameters": [{"name": "q", "in": "query"}],
                "responses": {"200": {"description": "ok"}},
            }
        }
    }
    out = normalize_document(_doc(paths)).document["paths"]["/a"]["get"]["parameters"][0]
    assert out["schema"] == {"type": "string"}


def test_status_ranges_upper_cased_and_paths_added() -> None:
    doc = {"openapi": "3.1.0", "info": {"title": "t", "version": "1"}}
    assert normalize_document(doc).document["paths"] == {}
    doc = _doc({"/a": {"get": {"responses": {"2xx": {"description": "ok"}}}}})
    assert list(normalize_document(doc).document["paths"]["/a"]["get"]["responses"]) == ["2XX"]


def test_input_is_not_modified() -> None:
    doc = _doc(
        schemas={"S": {"type": "object", "properties": {"a": {"type": "string", "required": True}}}}
    )
    normalize_document(doc)
    assert doc["components"]["schemas"]["S"]["properties"]["a"]["required"] is True


def test_not_an_openapi_document() -> None:
    with pytest.raises(SpecError, match="not an OpenAPI"):
        normalize_document({"info": {}})


@pytest.mark.usefixtures("needs_converter")
def test_swagger2_is_converted(write_spec: Callable[..., Path]) -> None:
    spec = write_spec(
        """\
        swagger: '2.0'
        info: {title: t, version: 1.0}
        basePath: /api
        paths:
          /items/<int:item_id>:
            get:
              parameters:
                - {name: item_id, in: path, type: integer, required: true}
              responses:
                200:
                  description: ok
                  schema: {$ref: '#/definitions/Item'}
        definitions:
          Item:
            type: object
            properties:
              name: {type: string, required: true}
        """
    )
    doc = load_normalized(spec, None)
    assert doc["openapi"].startswith("3.0")
    assert doc["info"]["version"] == "1.0"
    assert doc["servers"] == [{"url": "/api"}]
    response = doc["paths"]["/items/{item_id}"]["get"]["responses"]["200"]
    assert list(response["content"]) == ["application/json"]
    assert doc["components"]["schemas"]["Item"]["required"] == ["name"]


def test_missing_converter_gives_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import codegen.convert as convert

    monkeypatch.setattr(convert, "_PACKAGE", tmp_path / "nowhere")
    with pytest.raises(convert.ConverterMissingError, match="npm ci --prefix codegen"):
        normalize_document({"swagger": "2.0", "info": {"title": "t", "version": "1"}, "paths": {}})


def test_nullable_refs_and_enums_become_anyof_null() -> None:
    schemas = {
        "A": {"type": "object"},
        "S": {
            "type": "object",
            "properties": {
                "ref": {"$ref": "#/components/schemas/A", "nullable": True, "description": "d"},
                "e30": {"type": "string", "nullable": True, "enum": ["a", "b"]},
                "e31": {"type": ["string", "null"], "enum": ["a", None]},
                "plain": {"type": "string", "enum": ["a"]},
            },
        },
    }
    props = normalize_document(_doc(schemas=schemas)).document["components"]["schemas"]["S"][
        "properties"
    ]
    assert props["ref"] == {
        "description": "d",
        "anyOf": [{"$ref": "#/components/schemas/A"}, {"type": "null"}],
    }
    assert props["e30"] == {"anyOf": [{"enum": ["a", "b"], "type": "string"}, {"type": "null"}]}
    assert props["e31"] == {"anyOf": [{"enum": ["a"], "type": "string"}, {"type": "null"}]}
    assert props["plain"] == {"type": "string", "enum": ["a"]}


def test_mixed_enums_dropped_and_nested_defs_hoisted() -> None:
    schemas = {
        "A": {
            "type": "object",
            "properties": {"b": {"$ref": "#/components/schemas/A/$defs/B"}},
            "$defs": {"B": {"type": "string"}},
        },
        "M": {"enum": ["a", 1]},
    }
    out = normalize_document(_doc(schemas=schemas)).document["components"]["schemas"]
    assert out["A"]["properties"]["b"] == {"$ref": "#/components/schemas/B"}
    assert out["B"] == {"type": "string"} and "$defs" not in out["A"]
    assert out["M"] == {}
