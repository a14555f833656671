"""`diff`: operations, parameters, bodies and responses compared; breaking changes marked."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from codegen.__main__ import main
from codegen.diff import Change, diff_documents, format_changes


def _base() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {"title": "t", "version": "1"},
        "paths": {
            "/items/{id}": {
                "get": {
                    "operationId": "getItem",
                    "parameters": [
                        {
                            "name": "id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                        {"name": "verbose", "in": "query", "schema": {"type": "boolean"}},
                    ],
                    "responses": {
                        "200": {
                            "description": "ok",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Item"}
                                }
                            },
                        },
                        "404": {"description": "missing"},
                    },
                },
                "put": {
                    "operationId": "putItem",
                    "parameters": [
                        {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                    "requestBody": {
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/NewItem"}}
                        }
                    },
                    "responses": {"204": {"description": "done"}},
                },
            },
            "/old": {
                "delete": {"operationId": "dropOld", "responses": {"204": {"description": "done"}}}
            },
        },
        "components": {
            "schemas": {
                "Item": {
                    "type": "object",
                    "required": ["id", "size"],
                    "properties": {
                        "id": {"type": "string"},
                        "size": {"type": "integer"},
                        "tags": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "NewItem": {"type": "object", "properties": {"name": {"type": "string"}}},
            }
        },
    }


def _by(changes: list[Change]) -> dict[tuple[str, str, str, str], Change]:
    return {(c.operation, c.area, c.change, c.subject): c for c in changes}


def test_identical_documents_have_no_changes() -> None:
    assert diff_documents(_base(), _base()) == []


def test_operations_added_and_removed() -> None:
    new = _base()
    del new["paths"]["/old"]
    new["paths"]["/new"] = {
        "get": {"operationId": "fresh", "responses": {"200": {"description": "ok"}}}
    }
    changes = _by(diff_documents(_base(), new))
    assert changes[("DELETE /old", "operation", "removed", "dropOld")].breaking
    assert not changes[("GET /new", "operation", "added", "fresh")].breaking


def test_renamed_path_variable_is_the_same_operation() -> None:
    new = json.loads(
        json.dumps(_base())
        .replace("{id}", "{item_id}")
        .replace('"name": "id"', '"name": "item_id"')
    )
    changes = diff_documents(_base(), new)
    assert {c.area for c in changes} == {"parameter"}  # id -> item_id, not a removed operation


def test_parameter_changes() -> None:
    new = _base()
    params = new["paths"]["/items/{id}"]["get"]["parameters"]
    params[1]["required"] = True
    params.append({"name": "page", "in": "query", "schema": {"type": "integer"}})
    params.append(
        {"name": "X-Trace", "in": "header", "required": True, "schema": {"type": "string"}}
    )
    new["paths"]["/items/{id}"]["put"]["parameters"][0]["schema"] = {"type": "integer"}
    changes = _by(diff_documents(_base(), new))
    assert changes[
        ("GET /items/{id}", "parameter", "changed", "verbose")
    ].breaking  # newly required
    assert not changes[("GET /items/{id}", "parameter", "added", "page")].breaking
    assert changes[("GET /items/{id}", "parameter", "added", "X-Trace")].breaking
    assert (
        changes[("PUT /items/{id}", "parameter", "changed", "id")].detail
        == "type string -> integer"
    )

    removed = _by(diff_documents(new, _base()))
    assert removed[("GET /items/{id}", "parameter", "removed", "page")].breaking
    assert not removed[
        ("GET /items/{id}", "parameter", "changed", "verbose")
    ].breaking  # now optional


def test_parameter_location_change_is_breaking() -> None:
    new = _base()
    new["paths"]["/items/{id}"]["get"]["parameters"][1]["in"] = "header"
    change = _by(diff_documents(_base(), new))[
        ("GET /items/{id}", "parameter", "changed", "verbose")
    ]
    assert change.breaking and change.detail == "location query -> header"


def test_request_and_response_fields() -> None:
    new = copy.deepcopy(_base())
    item = new["components"]["schemas"]["Item"]
    del item["properties"]["tags"]
    item["properties"]["size"] = {"type": "string"}
    item["properties"]["colour"] = {"type": "string"}
    item["required"] = ["id"]
    new_item = new["components"]["schemas"]["NewItem"]
    new_item["properties"]["owner"] = {"type": "string"}
    new_item["properties"]["note"] = {"type": "string"}
    new_item["required"] = ["owner"]
    del new["paths"]["/items/{id}"]["get"]["responses"]["404"]
    changes = _by(diff_documents(_base(), new))
    get, put = "GET /items/{id}", "PUT /items/{id}"
    assert changes[(get, "response", "removed", "200 field tags")].breaking
    all_changes = diff_documents(_base(), new)
    size = {c.detail: c.breaking for c in all_changes if c.subject == "200 field size"}
    assert size == {"type integer -> string": True, "may now be absent": True}
    assert not changes[(get, "response", "added", "200 field colour")].breaking
    assert not changes[(get, "response", "removed", "status 404")].breaking
    assert changes[(put, "request", "added", "field owner")].breaking  # new required request field
    assert not changes[(put, "request", "added", "field note")].breaking
    assert [c.subject for c in all_changes if c.detail == "may now be absent"] == ["200 field size"]


def test_formats() -> None:
    new = _base()
    del new["paths"]["/old"]
    changes = diff_documents(_base(), new)
    text = format_changes(changes, "text", old="a", new="b")
    assert "1 changes, 1 breaking" in text and "BREAKING  operation removed: dropOld" in text
    md = format_changes(changes, "markdown")
    assert "### `DELETE /old`" in md and "**BREAKING**" in md
    data = json.loads(format_changes(changes, "json"))
    assert data["summary"] == {"changes": 1, "breaking": 1}
    assert data["changes"][0]["operation"] == "DELETE /old"


@pytest.mark.parametrize(("fail", "code"), [(False, 0), (True, 1)])
def test_cli_exit_codes(
    tmp_path: Path, fail: bool, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = tmp_path / "old.json", tmp_path / "new.yaml"
    old.write_text(json.dumps(_base()))
    changed = _base()
    del changed["paths"]["/old"]
    new.write_text(json.dumps(changed))  # JSON is YAML
    argv = ["diff", str(old), str(new), "--format", "markdown"] + (
        ["--fail-on-breaking"] if fail else []
    )
    assert main(argv) == code
    assert "DELETE /old" in capsys.readouterr().out
    assert main(["diff", str(old), str(old), "--fail-on-breaking"]) == 0
