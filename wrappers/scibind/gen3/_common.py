"""Helpers shared by the Gen3 facade's operation mixins: generated endpoints re-rooted at the commons, project
ids, parsed answers."""

from __future__ import annotations

import json
import types
from collections.abc import Sequence
from typing import Any

from ..errors import ConfigurationError, ResponseFormatError

__all__ = [
    "_fence",
    "_indexd",
    "_json",
    "_list_filter",
    "_options",
    "_parsed",
    "_split_project",
    "_under",
]

_UNDER: dict[tuple[str, str], types.ModuleType] = {}


def _under(prefix: str, module: types.ModuleType) -> types.ModuleType:
    """A stand-in for a generated endpoint module whose paths are served under ``prefix`` on the commons."""
    key = (module.__name__, prefix)
    found = _UNDER.get(key)
    if found is not None:
        return found
    shim = types.ModuleType(f"{module.__name__}@{prefix}", module.__doc__)
    original = module._get_kwargs

    def _get_kwargs(*args: Any, **kwargs: Any) -> dict[str, Any]:
        out: dict[str, Any] = original(*args, **kwargs)
        out["url"] = prefix + out["url"]
        return out

    shim._get_kwargs = _get_kwargs  # type: ignore[attr-defined]
    shim._build_response = module._build_response  # type: ignore[attr-defined]
    _UNDER[key] = shim
    return shim


def _fence(module: types.ModuleType) -> types.ModuleType:
    return _under("/user", module)


def _indexd(module: types.ModuleType) -> types.ModuleType:
    return _under("/index", module)


def _split_project(project_id: str) -> tuple[str, str]:
    program, sep, project = project_id.partition("-")
    if not (program and sep and project):
        raise ConfigurationError(f"project_id must be '<program>-<project>', not {project_id!r}")
    return program, project


def _parsed(resp: Any, cls: type[Any], what: str) -> Any:
    if not isinstance(resp.parsed, cls):
        raise ResponseFormatError(f"{what}: unexpected answer ({type(resp.parsed).__name__})")
    return resp.parsed


def _json(content: bytes, what: str) -> Any:
    try:
        return json.loads(content)
    except ValueError as exc:
        raise ResponseFormatError(f"{what} is not JSON: {exc}") from None


def _list_filter(values: Sequence[str] | None) -> str | None:
    """indexd's list filters: comma-separated values; ``null`` asks for records with none."""
    if values is None:
        return None
    return ",".join(values) if values else "null"


def _options(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}
