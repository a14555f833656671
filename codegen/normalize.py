"""Spec normalisation: read -> generic fixes -> Swagger 2.0 conversion -> generic fixes -> overrides.

The result is an OpenAPI 3.0/3.1 document openapi-python-client can parse. ``python -m codegen normalize SPEC``
prints it (JSON) for inspection.
"""

from __future__ import annotations

import argparse
import copy
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codegen.convert import convert_swagger2, is_swagger2
from codegen.fixups import POST_CONVERSION, PRE_CONVERSION
from codegen.overrides import OverrideSet, apply_overrides, load_overrides
from codegen.specio import SpecError, dump_json, load_document

__all__ = ["Normalized", "load_normalized", "main", "normalize", "normalize_document"]


@dataclass
class Normalized:
    """A normalised document and what was done to it."""

    document: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    converted: bool = False
    overrides: OverrideSet = field(default_factory=OverrideSet)


def normalize_document(document: dict[str, Any]) -> Normalized:
    """Generic normalisation of a parsed document (a copy is changed; the input is left alone)."""
    doc = copy.deepcopy(document)
    notes: list[str] = []
    for fixup in PRE_CONVERSION:
        notes += fixup(doc)
    converted = is_swagger2(doc)
    if converted:
        doc = convert_swagger2(doc)
        notes.append("converted from Swagger 2.0 with swagger2openapi")
    elif not str(doc.get("openapi", "")).startswith("3."):
        raise SpecError(
            "not an OpenAPI 3.x or Swagger 2.0 document (no `openapi: 3.x` / `swagger: 2.0`)"
        )
    for fixup in POST_CONVERSION:
        notes += fixup(doc)
    return Normalized(document=doc, notes=notes, converted=converted)


def normalize(spec: Path, overrides: Path | None = None) -> Normalized:
    """Load ``spec``, normalise it and apply ``overrides`` (if given)."""
    result = normalize_document(load_document(spec))
    override_set = load_overrides(overrides)
    if override_set.overrides:
        result.document = apply_overrides(result.document, override_set, name=str(overrides))
        result.notes.append(f"{len(override_set.overrides)} overrides applied")
    result.overrides = override_set
    return result


def load_normalized(spec: Path, overrides: Path | None = None) -> dict[str, Any]:
    """The normalised OpenAPI 3 document for ``spec`` with ``overrides`` applied."""
    return normalize(spec, overrides).document


def main(args: argparse.Namespace) -> int:
    """``python -m codegen normalize SPEC [--overrides FILE]``: print the normalised document."""
    spec = Path(args.spec)
    overrides = Path(args.overrides) if args.overrides else None
    if overrides is None and (spec.parent / "overrides.yaml").is_file():
        overrides = spec.parent / "overrides.yaml"
    try:
        result = normalize(spec, overrides)
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    sys.stdout.write(dump_json(result.document))
    return 0
