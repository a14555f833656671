"""The services the project builds: one directory per service under ``specs/``.

A service directory may also hold *variants*: other documents of the same API in subfolders, e.g. ``specs/dandi/live/``
(written by ``python -m codegen fetch dandi --url URL --as live``), with their overrides next to the folder
(``specs/dandi/live-overrides.yaml``). Variants are never built into ``generated/``; ``generate --from live
--output DIR`` and ``diff`` use them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_OUTPUT",
    "REPO_ROOT",
    "SPECS_DIR",
    "SPEC_NAMES",
    "Service",
    "discover",
    "find",
    "repo_relative",
    "variant",
    "variant_overrides",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
SPECS_DIR = REPO_ROOT / "specs"
DEFAULT_OUTPUT = REPO_ROOT / "generated" / "scibind_generated"
SPEC_NAMES = ("openapi.yaml", "openapi.yml", "openapi.json")


@dataclass(frozen=True)
class Service:
    """A spec directory: ``specs/gen3-fence`` -> package ``gen3_fence``."""

    name: str
    spec: Path
    overrides: Path | None

    @property
    def package(self) -> str:
        """The subpackage of ``scibind_generated``."""
        return package_name(self.name)


def package_name(directory_name: str) -> str:
    """``gen3-fence`` -> ``gen3_fence``."""
    return directory_name.replace("-", "_")


def _service_in(directory: Path) -> Service | None:
    for name in SPEC_NAMES:
        spec = directory / name
        if spec.is_file():
            overrides = directory / "overrides.yaml"
            return Service(directory.name, spec, overrides if overrides.is_file() else None)
    return None


def discover(specs_dir: Path | None = None) -> list[Service]:
    """Every service directory holding an OpenAPI document (``_name`` and ``.name`` directories are skipped)."""
    specs_dir = specs_dir or SPECS_DIR
    if not specs_dir.is_dir():
        return []
    found = []
    for directory in sorted(specs_dir.iterdir()):
        if not directory.is_dir() or directory.name.startswith(("_", ".")):
            continue
        service = _service_in(directory)
        if service is not None:
            found.append(service)
    return found


def find(names: list[str], specs_dir: Path | None = None) -> list[Service]:
    """The named services (directory or package names); all of them when ``names`` is empty."""
    specs_dir = specs_dir or SPECS_DIR
    services = discover(specs_dir)
    if not names:
        return services
    by_name = {s.name: s for s in services} | {s.package: s for s in services}
    missing = [n for n in names if n not in by_name]
    if missing:
        known = ", ".join(s.name for s in services) or "none"
        raise LookupError(f"no spec for {', '.join(missing)} under {specs_dir} (known: {known})")
    return [by_name[n] for n in names]


def repo_relative(path: Path) -> str:
    """``path`` relative to the repository root (POSIX form); ``<dir>/<name>`` when outside it."""
    resolved = path.resolve()
    try:
        return resolved.relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return f"{resolved.parent.name}/{resolved.name}"


def variant(service: Service, name: str) -> Service:
    """The document in ``specs/<service>/<name>/`` with ``specs/<service>/<name>-overrides.yaml`` (if any),
    under the service's name (so it builds the same package). LookupError when there is none."""
    directory = service.spec.parent / name
    found = _service_in(directory) if directory.is_dir() else None
    if found is None:
        raise LookupError(
            f"no {name!r} document for {service.name} in {directory} "
            f"(python -m codegen fetch {service.name} --url URL --as {name})"
        )
    overrides = service.spec.parent / f"{name}-overrides.yaml"
    return Service(service.name, found.spec, overrides if overrides.is_file() else None)


def variant_overrides(spec: Path) -> Path | None:
    """The overrides of a variant document (``specs/<svc>/<variant>/openapi.*`` ->
    ``specs/<svc>/<variant>-overrides.yaml``), or None for anything else."""
    if spec.name not in SPEC_NAMES:
        return None
    candidate = spec.parent.parent / f"{spec.parent.name}-overrides.yaml"
    is_variant = any((spec.parent.parent / name).is_file() for name in SPEC_NAMES)
    return candidate if is_variant and candidate.is_file() else None
