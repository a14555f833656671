"""``python -m codegen diff OLD NEW``: readable API diff between two spec versions, breaking changes marked.

Both documents are normalised first (so Swagger 2.0 vs OpenAPI 3 and YAML quirks do not show up as changes).
Breaking: a removed operation, a removed or newly required parameter, a parameter type or location change,
a new required request field (or a body that becomes required), a removed media type, a removed 2xx response,
a removed response field, a response field that may now be absent, and any type change. A changed operationId
is reported (generated code names its module after it) but is not breaking on the wire.

``--ignore-error-responses`` leaves 4xx/5xx responses out (documents differ in which error statuses they bother
to list). A document in a variant folder ``specs/<service>/<variant>/`` (``python -m codegen fetch --as``) gets
``specs/<service>/<variant>-overrides.yaml`` applied unless ``--old-overrides``/``--new-overrides`` say otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from codegen import services
from codegen.apimodel import Field, Operation, Param, api_view
from codegen.normalize import load_normalized
from codegen.specio import SpecError

__all__ = ["Change", "diff_documents", "diff_specs", "format_changes", "main"]


@dataclass(frozen=True)
class Change:
    """One difference between two API versions."""

    operation: str
    area: str
    """``operation``, ``parameter``, ``request`` or ``response``."""
    change: str
    """``added``, ``removed`` or ``changed``."""
    subject: str
    detail: str
    breaking: bool

    def line(self) -> str:
        """``parameter removed: limit (query integer)``."""
        subject = f" {self.subject}" if self.subject else ""
        detail = f" ({self.detail})" if self.detail else ""
        return f"{self.area} {self.change}:{subject}{detail}"


def _param_desc(p: Param) -> str:
    return f"{p.location}, {p.type}, {'required' if p.required else 'optional'}"


def _diff_params(label: str, old: dict[str, Param], new: dict[str, Param]) -> list[Change]:
    out = []
    for key in sorted(old.keys() - new.keys()):
        out.append(
            Change(label, "parameter", "removed", old[key].name, _param_desc(old[key]), True)
        )
    for key in sorted(new.keys() - old.keys()):
        p = new[key]
        out.append(Change(label, "parameter", "added", p.name, _param_desc(p), p.required))
    for key in sorted(old.keys() & new.keys()):
        a, b = old[key], new[key]
        if a.location != b.location:
            out.append(
                Change(
                    label,
                    "parameter",
                    "changed",
                    a.name,
                    f"location {a.location} -> {b.location}",
                    True,
                )
            )
        if a.type != b.type:
            out.append(
                Change(label, "parameter", "changed", a.name, f"type {a.type} -> {b.type}", True)
            )
        if a.required != b.required:
            detail = "now required" if b.required else "now optional"
            out.append(Change(label, "parameter", "changed", a.name, detail, b.required))
    return out


def _diff_fields(
    label: str, area: str, old: dict[str, Field], new: dict[str, Field], *, request: bool
) -> list[Change]:
    out = []
    for key in sorted(old.keys() - new.keys()):
        f = old[key]
        out.append(Change(label, area, "removed", f"field {f.path}", f.type, not request))
    for key in sorted(new.keys() - old.keys()):
        f = new[key]
        required = "required" if f.required else "optional"
        out.append(
            Change(
                label,
                area,
                "added",
                f"field {f.path}",
                f"{f.type}, {required}",
                request and f.required,
            )
        )
    for key in sorted(old.keys() & new.keys()):
        a, b = old[key], new[key]
        name = "body" if key == "" else f"field {a.path}"
        if a.type != b.type:
            out.append(Change(label, area, "changed", name, f"type {a.type} -> {b.type}", True))
        if key and a.required != b.required:
            if request:
                out.append(
                    Change(
                        label,
                        area,
                        "changed",
                        name,
                        "now required" if b.required else "now optional",
                        b.required,
                    )
                )
            else:
                detail = "now always present" if b.required else "may now be absent"
                out.append(Change(label, area, "changed", name, detail, not b.required))
    return out


def _diff_operation(label: str, a: Operation, b: Operation) -> list[Change]:
    out = _diff_params(label, a.params, b.params)
    if a.operation_id != b.operation_id:
        detail = f"{a.operation_id} -> {b.operation_id} (generated module renamed)"
        out.append(Change(label, "operation", "changed", "operationId", detail, False))
    if a.body_required != b.body_required:
        out.append(
            Change(
                label,
                "request",
                "changed",
                "body",
                "now required" if b.body_required else "now optional",
                b.body_required,
            )
        )
    for media in sorted(set(a.body_media) - set(b.body_media)):
        out.append(Change(label, "request", "removed", f"media type {media}", "", True))
    for media in sorted(set(b.body_media) - set(a.body_media)):
        out.append(Change(label, "request", "added", f"media type {media}", "", False))
    out += _diff_fields(label, "request", a.body_fields, b.body_fields, request=True)
    for code in sorted(a.responses.keys() - b.responses.keys()):
        out.append(Change(label, "response", "removed", f"status {code}", "", code.startswith("2")))
    for code in sorted(b.responses.keys() - a.responses.keys()):
        out.append(Change(label, "response", "added", f"status {code}", "", False))
    for code in sorted(a.responses.keys() & b.responses.keys()):
        changes = _diff_fields(
            label, "response", a.responses[code], b.responses[code], request=False
        )
        out += [
            Change(c.operation, c.area, c.change, f"{code} {c.subject}", c.detail, c.breaking)
            for c in changes
        ]
    return out


def _without_errors(view: dict[str, Operation]) -> dict[str, Operation]:
    for op in view.values():
        op.responses = {c: f for c, f in op.responses.items() if c[:1] not in ("4", "5")}
    return view


def diff_documents(
    old: dict[str, Any], new: dict[str, Any], *, error_responses: bool = True
) -> list[Change]:
    """Changes between two normalised OpenAPI 3 documents (4xx/5xx responses left out unless
    ``error_responses``)."""
    a, b = api_view(old), api_view(new)
    if not error_responses:
        a, b = _without_errors(a), _without_errors(b)
    changes: list[Change] = []
    for key in sorted(a.keys() - b.keys()):
        changes.append(
            Change(a[key].label, "operation", "removed", a[key].operation_id or "", "", True)
        )
    for key in sorted(b.keys() - a.keys()):
        changes.append(
            Change(b[key].label, "operation", "added", b[key].operation_id or "", "", False)
        )
    for key in sorted(a.keys() & b.keys()):
        changes += _diff_operation(b[key].label, a[key], b[key])
    return changes


def diff_specs(
    old: Path,
    new: Path,
    *,
    old_overrides: Path | None = None,
    new_overrides: Path | None = None,
    error_responses: bool = True,
) -> list[Change]:
    """Normalise two spec files and diff them."""
    return diff_documents(
        load_normalized(old, old_overrides),
        load_normalized(new, new_overrides),
        error_responses=error_responses,
    )


def _grouped(changes: list[Change]) -> dict[str, list[Change]]:
    groups: dict[str, list[Change]] = {}
    for c in changes:
        groups.setdefault(c.operation, []).append(c)
    return groups


def format_changes(
    changes: list[Change], fmt: str = "text", *, old: str = "OLD", new: str = "NEW"
) -> str:
    """Render changes as ``text``, ``markdown`` or ``json``."""
    breaking = sum(c.breaking for c in changes)
    if fmt == "json":
        body = {
            "old": old,
            "new": new,
            "summary": {"changes": len(changes), "breaking": breaking},
            "changes": [asdict(c) for c in changes],
        }
        return json.dumps(body, indent=2)
    if fmt == "markdown":
        lines = [
            f"## API diff: `{old}` → `{new}`",
            "",
            f"{len(changes)} changes, **{breaking} breaking**.",
        ]
        for op, items in _grouped(changes).items():
            lines += ["", f"### `{op}`", ""]
            lines += [f"- {'**BREAKING** ' if c.breaking else ''}{c.line()}" for c in items]
        return "\n".join(lines)
    lines = [f"API diff {old} -> {new}: {len(changes)} changes, {breaking} breaking"]
    for op, items in _grouped(changes).items():
        lines.append(op)
        lines += [f"  {'BREAKING' if c.breaking else '        '}  {c.line()}" for c in items]
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    """``python -m codegen diff OLD NEW [--format text|markdown|json] [--fail-on-breaking]``."""
    overrides: dict[str, Path | None] = {}
    for key, spec in (("old_overrides", args.old), ("new_overrides", args.new)):
        given = getattr(args, key, None)
        overrides[key] = Path(given) if given else services.variant_overrides(Path(spec))
        if not given and overrides[key] is not None:
            print(f"note: {spec}: applying {overrides[key]}", file=sys.stderr)
    try:
        changes = diff_specs(
            Path(args.old),
            Path(args.new),
            **overrides,
            error_responses=not getattr(args, "ignore_error_responses", False),
        )
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_changes(changes, args.format, old=args.old, new=args.new))
    if getattr(args, "fail_on_breaking", False) and any(c.breaking for c in changes):
        return 1
    return 0
