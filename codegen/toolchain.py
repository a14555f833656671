"""The pinned tools behind generation: openapi-python-client, ruff, templates, swagger2openapi."""

from __future__ import annotations

import functools
import hashlib
import shlex
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from codegen.convert import CODEGEN_DIR, converter_version

__all__ = [
    "OPC_CONFIG",
    "TEMPLATES_DIR",
    "ToolError",
    "opc_version",
    "ruff_executable",
    "ruff_version",
    "run_ruff_hook",
    "swagger2openapi_version",
    "templates_sha256",
]

TEMPLATES_DIR = CODEGEN_DIR / "templates"
OPC_CONFIG = CODEGEN_DIR / "opc.yaml"
HEADER_VERSION = "1"
"""Bump when the generated-file header written by generate.py changes (part of the template hash)."""


class ToolError(RuntimeError):
    """A pinned tool is missing or failed."""


@functools.cache
def opc_version() -> str:
    """The installed openapi-python-client version."""
    return version("openapi-python-client")


@functools.cache
def ruff_executable() -> str:
    """ruff from the running environment (next to this interpreter) first, then PATH."""
    here = shutil.which("ruff", path=str(Path(sys.executable).parent))
    found = here or shutil.which("ruff")
    if found is None:
        raise ToolError("ruff is not installed (pip install the project's dev extra)")
    return found


@functools.cache
def ruff_version() -> str:
    """``ruff --version`` of :func:`ruff_executable`, e.g. ``0.17.6``."""
    out = subprocess.run(
        [ruff_executable(), "--version"], capture_output=True, text=True, check=True
    ).stdout
    return out.strip().split()[-1]


def swagger2openapi_version() -> str | None:
    """The swagger2openapi version in codegen/node_modules (None when not installed)."""
    return converter_version()


def templates_sha256() -> str:
    """Hash of everything that shapes the output besides the spec: templates, opc.yaml, header version."""
    digest = hashlib.sha256(f"header:{HEADER_VERSION}\n".encode())
    for path in sorted([OPC_CONFIG, *TEMPLATES_DIR.rglob("*.jinja")]):
        digest.update(path.relative_to(CODEGEN_DIR).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def run_ruff_hook(command: str, cwd: Path) -> None:
    """Run one ``ruff ...`` post-hook from opc.yaml in ``cwd`` with the pinned ruff."""
    argv = shlex.split(command)
    if not argv or argv[0] != "ruff":
        raise ToolError(f"post_hooks may only run ruff, got {command!r}")
    proc = subprocess.run(
        [ruff_executable(), *argv[1:]], cwd=cwd, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise ToolError(f"{command!r} failed:\n{proc.stderr or proc.stdout}")
