"""Declarative overrides: they apply exactly, need a reason, and fail loudly when they do not apply."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from codegen.normalize import load_normalized
from codegen.overrides import OverrideError, apply_overrides, load_overrides, parse_overrides


def _doc() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {"title": "t", "version": "1"},
        "paths": {
            "/a": {
                "get": {
                    "operationId": "getA",
                    "parameters": [{"name": "x", "in": "query"}],
                    "responses": {},
                }
            },
            "/b/{id}": {"get": {"responses": {}}},
            "/c": {"get": {"responses": {}}},
        },
        "components": {
            "schemas": {"S": {"type": "object", "properties": {"a": {"type": "string"}}}}
        },
    }


def _apply(*entries: dict[str, Any]) -> dict[str, Any]:
    return apply_overrides(_doc(), parse_overrides(list(entries)))


def test_add_replace_remove_merge() -> None:
    out = _apply(
        {
            "op": "add",
            "path": "/components/schemas/T",
            "value": {"type": "string"},
            "reason": "missing upstream",
        },
        {
            "op": "replace",
            "path": "/paths/~1a/get/operationId",
            "value": "listA",
            "reason": "clash",
        },
        {"op": "remove", "path": "/paths/~1a/get/parameters/0", "reason": "not a real parameter"},
        {
            "op": "merge",
            "path": "/components/schemas/S",
            "value": {"required": ["a"]},
            "reason": "always sent",
        },
        {
            "op": "add",
            "path": "/paths/~1a/get/parameters/-",
            "value": {"name": "y", "in": "query"},
            "reason": "r",
        },
    )
    assert out["components"]["schemas"]["T"] == {"type": "string"}
    assert out["paths"]["/a"]["get"]["operationId"] == "listA"
    assert out["paths"]["/a"]["get"]["parameters"] == [{"name": "y", "in": "query"}]
    assert out["components"]["schemas"]["S"]["required"] == ["a"]
    assert out["components"]["schemas"]["S"]["properties"] == {"a": {"type": "string"}}


def test_move_renames_a_key_in_place() -> None:
    out = _apply(
        {
            "op": "move",
            "from": "/paths/~1b~1{id}",
            "path": "/paths/~1b~1{item_id}",
            "reason": "route var",
        }
    )
    assert list(out["paths"]) == ["/a", "/b/{item_id}", "/c"]


def test_input_document_is_not_changed() -> None:
    doc = _doc()
    apply_overrides(doc, parse_overrides([{"op": "remove", "path": "/paths/~1c", "reason": "r"}]))
    assert "/c" in doc["paths"]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"op": "replace", "path": "/paths/~1nope/get/operationId", "value": "x", "reason": "r"},
            "does not exist",
        ),
        ({"op": "remove", "path": "/components/schemas/Gone", "reason": "r"}, "does not exist"),
        (
            {"op": "add", "path": "/components/schemas/S", "value": {}, "reason": "r"},
            "already exists",
        ),
        (
            {"op": "replace", "path": "/paths/~1a/get/operationId", "value": "getA", "reason": "r"},
            "already has",
        ),
        (
            {
                "op": "merge",
                "path": "/components/schemas/S",
                "value": {"type": "object"},
                "reason": "r",
            },
            "changes nothing",
        ),
        (
            {"op": "move", "from": "/paths/~1x", "path": "/paths/~1y", "reason": "r"},
            "does not exist",
        ),
    ],
)
def test_overrides_that_do_not_apply_fail_loudly(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(OverrideError, match=message) as info:
        _apply(entry)
    assert "override #1" in str(info.value) and "Reason given: r" in str(info.value)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"op": "remove", "path": "/a"}, "reason"),
        ({"op": "remove", "path": "/a", "reason": "  "}, "reason"),
        ({"op": "remove", "path": "/a", "reason": "two\nlines"}, "one line"),
        ({"op": "copy", "path": "/a", "reason": "r"}, "must be one of"),
        ({"op": "remove", "path": "a", "reason": "r"}, "JSON Pointer"),
        ({"op": "add", "path": "/a", "reason": "r"}, "needs a `value`"),
        ({"op": "merge", "path": "/a", "value": 1, "reason": "r"}, "mapping"),
        ({"op": "remove", "path": "/a", "reason": "r", "why": "x"}, "unknown keys"),
        ({"op": "move", "path": "/a", "reason": "r"}, "needs a `from`"),
    ],
)
def test_malformed_overrides_are_rejected(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(OverrideError, match=message):
        parse_overrides([entry])


def test_allow_skipped_form() -> None:
    parsed = parse_overrides(
        {
            "overrides": [{"op": "remove", "path": "/paths/~1c", "reason": "r"}],
            "allow_skipped": [{"endpoint": "GET /x", "reason": "multipart arrays unsupported"}],
        }
    )
    assert len(parsed.overrides) == 1
    assert parsed.allow_skipped == {"GET /x": "multipart arrays unsupported"}
    with pytest.raises(OverrideError, match="reason"):
        parse_overrides({"allow_skipped": [{"endpoint": "GET /x"}]})


def test_overrides_file_applies_after_normalisation(
    write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    spec = write_spec(
        """\
        openapi: 3.0.3
        info: {title: t, version: '1'}
        paths:
          /policy:
            get:
              parameters:
                - {name: expand, in: path, schema: {type: boolean}}
              responses:
                200: {description: ok}
        """
    )
    overrides = tmp_path / "overrides.yaml"
    overrides.write_text(
        "# comment\n- op: merge\n  path: /paths/~1policy/get/parameters/0\n"
        "  value: {in: query, required: false}\n  reason: expand is a query parameter\n"
    )
    param = load_normalized(spec, overrides)["paths"]["/policy"]["get"]["parameters"][0]
    assert param == {
        "name": "expand",
        "in": "query",
        "required": False,
        "schema": {"type": "boolean"},
    }
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing yet\n")
    assert load_overrides(empty).overrides == ()
