"""``python -m codegen check``: regenerate into a temporary directory and compare with ``generated/``.

Fails (exit 1) with a readable list when a generated file differs, is missing or is extra, or when
``generated/codegen.lock`` does not match what generation records now (stale lock).
"""

from __future__ import annotations

import argparse
import difflib
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codegen import lock, services
from codegen.generate import generate_all

__all__ = ["CheckResult", "check", "compare_trees", "main"]

_IGNORED_PARTS = {"__pycache__", ".ruff_cache", ".mypy_cache", ".pytest_cache"}


@dataclass
class CheckResult:
    """Differences between the committed output and a fresh generation."""

    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    """Files generation makes that are not in the committed output."""
    extra: list[str] = field(default_factory=list)
    """Committed files generation no longer makes."""
    lock: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    diffs: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when nothing differs and generation succeeded."""
        return not (self.changed or self.missing or self.extra or self.lock or self.failures)


def _files(root: Path) -> dict[str, Path]:
    if not root.is_dir():
        return {}
    return {
        p.relative_to(root).as_posix(): p
        for p in root.rglob("*")
        if p.is_file()
        and not _IGNORED_PARTS.intersection(p.relative_to(root).parts)
        and p.suffix != ".pyc"
    }


def compare_trees(committed: Path, fresh: Path, prefix: str, result: CheckResult) -> None:
    """Record files that differ between two package directories (paths shown with ``prefix``)."""
    old, new = _files(committed), _files(fresh)
    for rel in sorted(old.keys() | new.keys()):
        name = f"{prefix}/{rel}"
        if rel not in old:
            result.missing.append(name)
        elif rel not in new:
            result.extra.append(name)
        elif old[rel].read_bytes() != new[rel].read_bytes():
            result.changed.append(name)
            result.diffs[name] = _short_diff(old[rel], new[rel], name)


def _short_diff(committed: Path, fresh: Path, name: str, limit: int = 20) -> str:
    try:
        a = committed.read_text(encoding="utf-8").splitlines()
        b = fresh.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        return "(binary files differ)"
    lines = list(
        difflib.unified_diff(a, b, f"committed/{name}", f"regenerated/{name}", lineterm="", n=1)
    )
    more = len(lines) - limit
    return "\n".join(lines[:limit] + ([f"... {more} more diff lines"] if more > 0 else []))


def _compare_lock(
    committed: dict[str, Any], fresh: dict[str, Any], packages: list[str], known: set[str]
) -> list[str]:
    problems = []
    for package in packages:
        if package not in committed:
            problems.append(f"{package}: missing from the lock")
            continue
        for key in sorted(fresh.get(package, {}).keys() | committed[package].keys()):
            was, now = committed[package].get(key), fresh.get(package, {}).get(key)
            if was != now:
                problems.append(
                    f"{package}: {key} is {was!r} in the lock, generation gives {now!r}"
                )
    problems += [
        f"{name}: in the lock but has no spec under specs/"
        for name in sorted(committed.keys() - known)
    ]
    return problems


def check(
    names: list[str] | None = None,
    output_root: Path = services.DEFAULT_OUTPUT,
    specs_dir: Path = services.SPECS_DIR,
) -> CheckResult:
    """Regenerate the named services (all when empty) in a temporary directory and compare."""
    selected = services.find(list(names or []), specs_dir)
    result = CheckResult()
    with tempfile.TemporaryDirectory(prefix="scibind-check-") as tmp:
        fresh_root = Path(tmp) / output_root.name
        reports, failures = generate_all(selected, fresh_root, specs_dir=specs_dir)
        result.failures += failures
        generated = {r.package for r in reports}
        for service in selected:
            if service.package in generated:
                compare_trees(
                    output_root / service.package,
                    fresh_root / service.package,
                    f"{output_root.name}/{service.package}",
                    result,
                )
        result.lock = _compare_lock(
            lock.read_lock(lock.lock_path(output_root)),
            lock.read_lock(lock.lock_path(fresh_root)),
            sorted(generated),
            {s.package for s in services.discover(specs_dir)},
        )
    return result


def report_text(result: CheckResult, *, show_diffs: bool = True) -> str:
    """Human-readable summary of a check."""
    lines: list[str] = []
    for title, items in (
        ("generation failed", result.failures),
        ("changed (regenerate with `python -m codegen generate`)", result.changed),
        ("missing from generated/ (not committed?)", result.missing),
        ("in generated/ but no longer generated", result.extra),
        ("codegen.lock is stale", result.lock),
    ):
        if items:
            lines.append(f"{title}:")
            lines += [f"  {item}" for item in items]
    if show_diffs:
        for name in result.changed[:10]:
            lines += ["", result.diffs.get(name, "")]
    return "\n".join(lines) if lines else "generated/ is up to date"


METADATA_NAMES = ("dandi_metadata", "dandi-metadata")
"""``check dandi_metadata`` checks only the DANDI metadata models (also checked with ``dandi`` and with all)."""


def _check_metadata_models(result: CheckResult) -> str | None:
    """Add the DANDI metadata package's differences (``codegen metadata-models``) to ``result``."""
    try:
        import dandischema  # noqa: F401
    except ImportError:
        return "dandi_metadata not checked: dandischema is not installed (dev extra)"
    from codegen.metadata_models import check_package

    found = check_package()
    for name in ("changed", "missing", "extra"):
        getattr(result, name).extend(getattr(found, name))
    result.diffs.update(found.diffs)
    return None


def main(args: argparse.Namespace) -> int:
    """``python -m codegen check [SERVICE ...]`` (``dandi`` and ``dandi_metadata`` cover the metadata models)."""
    names = [n for n in args.services if n not in METADATA_NAMES]
    try:
        result = check(names) if names or not args.services else CheckResult()
    except LookupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    note = None
    if not args.services or set(args.services) & {"dandi", *METADATA_NAMES}:
        note = _check_metadata_models(result)
    print(report_text(result))
    if note:
        print(note)
    return 0 if result.ok else 1
