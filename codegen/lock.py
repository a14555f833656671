"""``generated/codegen.lock``: what each generated package was built from (JSON, deterministic)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["LOCK_NAME", "lock_path", "read_lock", "render_lock", "write_lock"]

LOCK_NAME = "codegen.lock"
_FORMAT = 1


def lock_path(output_root: Path) -> Path:
    """The lock sits next to the ``scibind_generated`` directory: ``generated/codegen.lock``."""
    return output_root.parent / LOCK_NAME


def read_lock(path: Path) -> dict[str, Any]:
    """The services recorded in a lock file (empty when there is none)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from exc
    services = data.get("services", {})
    return services if isinstance(services, dict) else {}


def render_lock(services: dict[str, dict[str, Any]]) -> str:
    """Lock file text for ``{package: entry}`` (sorted keys, stable layout)."""
    body = {
        "comment": "Written by `python -m codegen generate`; checked by `python -m codegen check`. Do not edit.",
        "format": _FORMAT,
        "services": {name: services[name] for name in sorted(services)},
    }
    return json.dumps(body, indent=2, sort_keys=True) + "\n"


def write_lock(path: Path, services: dict[str, dict[str, Any]]) -> None:
    """Write the lock file atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".lock.tmp")
    tmp.write_text(render_lock(services), encoding="utf-8")
    tmp.replace(path)
