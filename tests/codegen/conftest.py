"""Fixtures for the codegen tests: small inline specs, a converter check, subprocess imports."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from codegen.convert import CODEGEN_DIR

NODE_MODULES = CODEGEN_DIR / "node_modules" / "swagger2openapi"


@pytest.fixture
def needs_converter() -> None:
    """Skip when the pinned swagger2openapi is not installed (`npm ci --prefix codegen`)."""
    if not (NODE_MODULES / "package.json").is_file():
        pytest.skip(
            "codegen/node_modules is missing: run `npm ci --prefix codegen` to test Swagger 2.0 conversion"
        )


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[..., Path]:
    """Write a spec (dict -> JSON, str -> YAML as given) to ``tmp_path/<service>/openapi.<ext>``."""

    def write(spec: dict[str, Any] | str, service: str = "svc", root: Path | None = None) -> Path:
        directory = (root or tmp_path / "specs") / service
        directory.mkdir(parents=True, exist_ok=True)
        if isinstance(spec, str):
            path = directory / "openapi.yaml"
            path.write_text(textwrap.dedent(spec), encoding="utf-8")
        else:
            path = directory / "openapi.json"
            path.write_text(json.dumps(spec, indent=2), encoding="utf-8")
        return path

    return write


def _run_python(code: str, *, path: Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter with ``path`` first on sys.path (warnings are errors)."""
    return subprocess.run(
        [
            sys.executable,
            "-W",
            "error",
            "-c",
            f"import sys; sys.path.insert(0, {str(path)!r})\n{code}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


IMPORT_ALL = """
import importlib, os
root = sys.path[0]
package = {package!r}
count = 0
for dirpath, _dirs, files in os.walk(os.path.join(root, package)):
    for name in sorted(files):
        if name.endswith(".py"):
            rel = os.path.relpath(os.path.join(dirpath, name), root)[:-3].replace(os.sep, ".")
            importlib.import_module(rel[: -len(".__init__")] if rel.endswith(".__init__") else rel)
            count += 1
models = importlib.import_module(package + ".models")
for name in models.__all__:
    getattr(models, name)
importlib.import_module(package).Client
print(count)
"""


def _import_all(output_root: Path, package: str) -> int:
    """Import every module of a generated package (and every lazy model) in a subprocess; returns the count."""
    proc = _run_python(IMPORT_ALL.format(package=package), path=output_root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return int(proc.stdout.strip().splitlines()[-1])


def _pets_spec(**extra_paths: Any) -> dict[str, Any]:
    """A small OpenAPI 3.0 document: three tags, several models."""
    spec: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {"title": "Pets", "version": "1.0"},
        "paths": {
            "/pets": {
                "get": {
                    "operationId": "listPets",
                    "tags": ["pets"],
                    "parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer"}}],
                    "responses": {
                        "200": {
                            "description": "ok",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/Pet"},
                                    }
                                }
                            },
                        }
                    },
                },
                "post": {
                    "operationId": "createPet",
                    "tags": ["pets"],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/NewPet"}}
                        },
                    },
                    "responses": {"201": {"description": "created"}},
                },
            },
            "/owners/{owner_id}": {
                "get": {
                    "operationId": "getOwner",
                    "tags": ["owners"],
                    "parameters": [
                        {
                            "name": "owner_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "ok",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Owner"}
                                }
                            },
                        }
                    },
                }
            },
            "/stores": {
                "get": {
                    "operationId": "listStores",
                    "tags": ["stores"],
                    "responses": {
                        "200": {
                            "description": "ok",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Store"}
                                }
                            },
                        }
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "Pet": {
                    "type": "object",
                    "required": ["id", "name"],
                    "properties": {
                        "id": {"type": "integer"},
                        "name": {"type": "string"},
                        "kind": {"type": "string", "enum": ["cat", "dog"]},
                    },
                },
                "NewPet": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": {"type": "string"}},
                },
                "Owner": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "address": {"$ref": "#/components/schemas/Address"},
                    },
                },
                "Address": {"type": "object", "properties": {"city": {"type": "string"}}},
                "Store": {"type": "object", "properties": {"name": {"type": "string"}}},
            }
        },
    }
    spec["paths"].update(extra_paths)
    return spec


@pytest.fixture
def run_python() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run code in a fresh interpreter with a directory first on sys.path: ``run_python(code, path=dir)``."""
    return _run_python


@pytest.fixture
def import_all() -> Callable[[Path, str], int]:
    """Import every module of a generated package in a subprocess: ``import_all(output_root, package)``."""
    return _import_all


@pytest.fixture
def pets_spec() -> Callable[..., dict[str, Any]]:
    """A small OpenAPI 3.0 document (three tags, several models); keyword args add paths."""
    return _pets_spec


@pytest.fixture
def converter_installed() -> bool:
    """Whether the pinned swagger2openapi is installed."""
    return (NODE_MODULES / "package.json").is_file()
