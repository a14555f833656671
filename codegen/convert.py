"""Swagger 2.0 -> OpenAPI 3.0, offline, with the pinned npm package ``swagger2openapi``.

openapi-python-client refuses Swagger 2.0. The converter runs under node from ``codegen/node_modules``
(install it with ``npm ci --prefix codegen``); the version used is recorded in the lock.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from codegen.specio import SpecError

__all__ = [
    "CODEGEN_DIR",
    "ConverterMissingError",
    "convert_swagger2",
    "converter_version",
    "is_swagger2",
]

CODEGEN_DIR = Path(__file__).resolve().parent
_SCRIPT = CODEGEN_DIR / "convert_swagger2.js"
_PACKAGE = CODEGEN_DIR / "node_modules" / "swagger2openapi"
_TIMEOUT_S = 120


class ConverterMissingError(SpecError):
    """node or the pinned swagger2openapi is not installed."""


def is_swagger2(document: dict[str, Any]) -> bool:
    """True for a Swagger 2.0 document (``swagger: "2.0"``)."""
    return str(document.get("swagger", "")).startswith("2")


def _require_converter() -> str:
    node = shutil.which("node")
    if node is None:
        raise ConverterMissingError(
            "node is not on PATH; Swagger 2.0 conversion needs Node.js (>= 18)"
        )
    if not (_PACKAGE / "package.json").is_file():
        raise ConverterMissingError(
            f"swagger2openapi is not installed in {CODEGEN_DIR / 'node_modules'}; "
            "run `npm ci --prefix codegen` from the repository root"
        )
    return node


def converter_version() -> str | None:
    """The installed swagger2openapi version, or None when it is not installed."""
    try:
        meta = json.loads((_PACKAGE / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    version = meta.get("version")
    return str(version) if version else None


def convert_swagger2(document: dict[str, Any]) -> dict[str, Any]:
    """Convert a Swagger 2.0 document to OpenAPI 3.0 (swagger2openapi with ``patch``, no network)."""
    node = _require_converter()
    proc = subprocess.run(
        [node, str(_SCRIPT)],
        input=json.dumps(document),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=_TIMEOUT_S,
        cwd=CODEGEN_DIR,
        check=False,
    )
    if proc.returncode != 0:
        raise SpecError(f"swagger2openapi failed: {proc.stderr.strip() or proc.stdout.strip()}")
    try:
        result = json.loads(proc.stdout)
    except ValueError as exc:
        raise SpecError(f"swagger2openapi printed something that is not JSON: {exc}") from exc
    converted = result.get("openapi")
    if not isinstance(converted, dict):
        raise SpecError("swagger2openapi returned no document")
    return converted
