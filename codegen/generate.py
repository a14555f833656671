"""Generate ``scibind_generated.<pkg>`` from ``specs/<service>/`` with openapi-python-client.

Per service: normalise (codegen.normalize) -> parse with openapi-python-client -> render with the shared
config (``codegen/opc.yaml``) and custom templates (``codegen/templates/``) -> header on every file -> ruff
(pinned, isolated) -> replace ``<output_root>/<pkg>``. Skipped endpoints fail the run unless the service's
overrides allow them. ``generated/codegen.lock`` records inputs and tool versions.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codegen import lock, services, toolchain
from codegen.normalize import Normalized, normalize
from codegen.specio import SpecError, dump_json, file_sha256, sha256_bytes
from codegen.walk import iter_operations

__all__ = [
    "GenerationError",
    "GenerationReport",
    "generate_all",
    "generate_service",
    "lock_entry",
    "main",
]

_SKIP_HEADER = re.compile(
    r"WARNING parsing (?P<method>\w+) (?P<path>\S+) within .*Endpoint will not be generated"
)
_WARN_HEADER = re.compile(r"WARNING parsing (?P<method>\w+) (?P<path>\S+) within")


class GenerationError(Exception):
    """A service could not be generated at all."""


@dataclass
class GenerationReport:
    """What generating one service produced."""

    package: str
    operations: int
    models: int
    skipped: list[str]
    warnings: list[str]
    output: Path
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    """What normalisation changed (generic fixes, conversion, overrides)."""
    allowed_skipped: dict[str, str] = field(default_factory=dict)
    """Skipped endpoints the overrides allow (``"METHOD /path"`` -> reason)."""
    spec_sha256: str = ""
    normalized_sha256: str = ""
    overrides_sha256: str | None = None

    @property
    def unexpected_skips(self) -> list[str]:
        """Skipped endpoints the overrides do not allow."""
        return [s for s in self.skipped if s.split(":", 1)[0] not in self.allowed_skipped]

    @property
    def ok(self) -> bool:
        """True when no endpoint was skipped without permission."""
        return not self.unexpected_skips


def _opc_config(package: str, output: Path) -> Any:
    from openapi_python_client.config import Config, ConfigFile, MetaType

    file_config = ConfigFile.load_from_path(toolchain.OPC_CONFIG)
    file_config = file_config.model_copy(
        update={
            "post_hooks": [],
            "project_name_override": package,
            "package_name_override": package,
        }
    )
    return Config.from_sources(
        file_config, MetaType.NONE, Path("openapi.json"), "utf-8", True, output
    )


def _text(value: Any) -> str:
    if value is None:
        return ""
    getter = getattr(value, "get_untrusted_value", None)
    return str(getter() if getter else value)


def _describe(error: Any) -> tuple[str, str]:
    header = _text(getattr(error, "header", ""))
    detail = re.sub(
        r"<[^<>]*UntrustedString object at 0x[0-9a-f]+>", "", _text(getattr(error, "detail", ""))
    )
    return header, " ".join(detail.split())


def _collect_problems(data: Any) -> tuple[list[str], list[str], set[tuple[str, str]]]:
    skipped: list[str] = []
    warnings: list[str] = []
    skipped_ops: set[tuple[str, str]] = set()
    seen: set[int] = set()
    for collection in data.endpoint_collections_by_tag.values():
        for error in collection.parse_errors:
            if id(error) in seen:
                continue
            seen.add(id(error))
            header, detail = _describe(error)
            skip = _SKIP_HEADER.search(header)
            if skip:
                key = (skip["method"].upper(), skip["path"])
                if key not in skipped_ops:
                    skipped_ops.add(key)
                    skipped.append(f"{key[0]} {key[1]}: {detail}")
                continue
            warn = _WARN_HEADER.search(header)
            where = f"{warn['method'].upper()} {warn['path']}: " if warn else ""
            warnings.append(f"{where}{detail or header}")
    for error in data.errors:
        header, detail = _describe(error)
        warnings.append(f"{header}: {detail}" if detail else header)
    return skipped, warnings, skipped_ops


def _module_collisions(data: Any, field_prefix: str) -> list[str]:
    """Endpoints whose module files would overwrite each other (same tag, same Python name)."""
    from openapi_python_client.strings import PythonIdentifier

    problems = []
    for tag, collection in data.endpoint_collections_by_tag.items():
        owners: dict[str, Any] = {}
        for endpoint in collection.endpoints:
            module = str(PythonIdentifier(endpoint.name, field_prefix))
            first = owners.setdefault(module, endpoint)
            if first is not endpoint:
                problems.append(
                    f"{endpoint.method.upper()} {_text(endpoint.path)}: module api/{tag}/{module}.py is also "
                    f"{first.method.upper()} {_text(first.path)} (give one a distinct operationId in overrides)"
                )
    return problems


def _header(spec_label: str) -> str:
    return (
        f"# Generated by scibind codegen (`python -m codegen generate`) from {spec_label}\n"
        "# with openapi-python-client and codegen/templates. DO NOT EDIT: change the spec's overrides or the templates.\n"
    )


def _add_headers(package_dir: Path, header: str) -> None:
    for path in sorted(package_dir.rglob("*.py")):
        path.write_text(header + path.read_text(encoding="utf-8"), encoding="utf-8")


def _replace_dir(built: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.new"
    retired = target.parent / f".{target.name}.old"
    for leftover in (staging, retired):
        if leftover.exists():
            shutil.rmtree(leftover)
    shutil.copytree(built, staging)
    if target.exists():
        target.rename(retired)
    staging.rename(target)
    if retired.exists():
        shutil.rmtree(retired)


def _render(data: Any, config: Any, package_dir: Path, header: str) -> None:
    from openapi_python_client import Project

    project = Project(openapi=data, config=config, custom_template_path=toolchain.TEMPLATES_DIR)
    with contextlib.redirect_stdout(io.StringIO()):
        errors = project.build()
    hard = [e for e in errors if "Directory already exists" in _text(getattr(e, "detail", ""))]
    if hard:
        raise GenerationError(_describe(hard[0])[1])
    _add_headers(package_dir, header)
    from openapi_python_client.config import ConfigFile

    for hook in ConfigFile.load_from_path(toolchain.OPC_CONFIG).post_hooks or []:
        toolchain.run_ruff_hook(hook, package_dir)


def generate_service(
    spec: Path, *, package: str, output_root: Path, overrides: Path | None = None
) -> GenerationReport:
    """Generate ``<output_root>/<package>`` from ``spec`` (+ ``overrides``); replaces that directory.

    Raises :class:`GenerationError` (or :class:`codegen.specio.SpecError`) when nothing can be generated;
    skipped endpoints are reported, not raised (see :attr:`GenerationReport.ok`).
    """
    from openapi_python_client.parser import GeneratorData
    from openapi_python_client.parser.errors import GeneratorError

    if not package.isidentifier():
        raise GenerationError(f"package name {package!r} is not a Python identifier")
    started = time.monotonic()
    normalized: Normalized = normalize(spec, overrides)
    document = normalized.document
    with tempfile.TemporaryDirectory(prefix="scibind-codegen-") as tmp:
        package_dir = Path(tmp) / package
        config = _opc_config(package, package_dir)
        data = GeneratorData.from_dict(document, config=config)
        if isinstance(data, GeneratorError):
            header, detail = _describe(data)
            raise GenerationError(f"{spec}: {header}: {detail}")
        skipped, warnings, skipped_ops = _collect_problems(data)
        skipped += _module_collisions(data, config.field_prefix)
        generated = sum(len(c.endpoints) for c in data.endpoint_collections_by_tag.values())
        expected = sum(1 for _ in iter_operations(document))
        unaccounted = expected - generated - len(skipped_ops)
        if unaccounted > 0:
            skipped.append(
                f"? ?: {unaccounted} operations in the spec were neither generated nor reported"
            )
        _render(data, config, package_dir, _header(services.repo_relative(spec)))
        operations = len(list((package_dir / "api").rglob("*.py"))) - len(
            list((package_dir / "api").rglob("__init__.py"))
        )
        _replace_dir(package_dir, output_root / package)
    return GenerationReport(
        package=package,
        operations=operations,
        models=len(data.models) + len(data.enums),
        skipped=skipped,
        warnings=warnings,
        output=output_root / package,
        seconds=time.monotonic() - started,
        notes=normalized.notes,
        allowed_skipped=dict(normalized.overrides.allow_skipped),
        spec_sha256=file_sha256(spec),
        normalized_sha256=sha256_bytes(dump_json(document).encode()),
        overrides_sha256=file_sha256(overrides) if overrides else None,
    )


def lock_entry(service: services.Service, report: GenerationReport) -> dict[str, Any]:
    """The lock record for one generated service."""
    return {
        "spec": services.repo_relative(service.spec),
        "spec_sha256": report.spec_sha256,
        "normalized_sha256": report.normalized_sha256,
        "overrides": services.repo_relative(service.overrides) if service.overrides else None,
        "overrides_sha256": report.overrides_sha256,
        "openapi_python_client": toolchain.opc_version(),
        "ruff": toolchain.ruff_version(),
        "swagger2openapi": toolchain.swagger2openapi_version()
        if "converted from Swagger 2.0" in " ".join(report.notes)
        else None,
        "templates_sha256": toolchain.templates_sha256(),
        "operations": report.operations,
        "models": report.models,
    }


def generate_all(
    selected: list[services.Service],
    output_root: Path,
    *,
    write_lock: bool = True,
    specs_dir: Path = services.SPECS_DIR,
) -> tuple[list[GenerationReport], list[str]]:
    """Generate each service; returns the reports and per-service failures (messages).

    The lock next to ``output_root`` keeps entries of other services that still have a spec in ``specs_dir``.
    """
    reports: list[GenerationReport] = []
    failures: list[str] = []
    lock_file = lock.lock_path(output_root)
    entries = lock.read_lock(lock_file) if write_lock else {}
    known = {s.package for s in services.discover(specs_dir)}
    entries = {name: entry for name, entry in entries.items() if name in known}
    for service in selected:
        try:
            report = generate_service(
                service.spec,
                package=service.package,
                output_root=output_root,
                overrides=service.overrides,
            )
        except (SpecError, GenerationError, toolchain.ToolError) as exc:
            failures.append(f"{service.name}: {exc}")
            continue
        reports.append(report)
        entries[service.package] = lock_entry(service, report)
        if not report.ok:
            failures.append(f"{service.name}: {len(report.unexpected_skips)} endpoints skipped")
    if write_lock:
        lock.write_lock(lock_file, entries)
    return reports, failures


def format_summary(reports: list[GenerationReport]) -> str:
    """A per-service table: operations, models, skipped, warnings, seconds."""
    rows = [("package", "operations", "models", "skipped", "warnings", "seconds")]
    for r in reports:
        rows.append(
            (
                r.package,
                str(r.operations),
                str(r.models),
                str(len(r.skipped)),
                str(len(r.warnings)),
                f"{r.seconds:.1f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [
            cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _print_problems(report: GenerationReport, *, verbose: bool) -> None:
    for item in report.skipped:
        allowed = report.allowed_skipped.get(item.split(":", 1)[0])
        tag = f"skipped (allowed: {allowed})" if allowed else "SKIPPED"
        print(f"{report.package}: {tag}: {item}")
    if verbose:
        for item in report.warnings:
            print(f"{report.package}: warning: {item}")
        for note in report.notes:
            print(f"{report.package}: normalised: {note}")
    elif report.warnings:
        print(f"{report.package}: {len(report.warnings)} generator warnings (--verbose shows them)")


def main(args: argparse.Namespace) -> int:
    """``python -m codegen generate [SERVICE ...] [--output DIR] [--summary] [--strict] [--verbose]``."""
    output_root = Path(args.output) if getattr(args, "output", None) else services.DEFAULT_OUTPUT
    try:
        selected = services.find(list(args.services))
    except LookupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not selected:
        print(
            f"no services under {services.SPECS_DIR} (a service is specs/<name>/openapi.(yaml|json))"
        )
        return 0
    reports, failures = generate_all(selected, output_root)
    verbose = bool(getattr(args, "verbose", False))
    for report in reports:
        _print_problems(report, verbose=verbose)
    if getattr(args, "summary", False):
        print(format_summary(reports))
    if getattr(args, "strict", False):
        failures += [
            f"{r.package}: {len(r.warnings)} generator warnings (--strict)"
            for r in reports
            if r.warnings
        ]
    sys.stdout.flush()
    for failure in failures:
        print(f"error: {failure}", file=sys.stderr)
    return 1 if failures else 0
