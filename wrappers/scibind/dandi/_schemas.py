"""The JSON Schemas of DANDI metadata, as shipped with the generated models (no dandischema at run time).

``python -m codegen metadata-models`` writes each top-level model's JSON Schema, generated the way the archive's
``/schemas/?model=`` endpoint does, to ``scibind_generated/dandi_metadata/schemas/<Model>.json``, and the schema
version of the pinned dandischema to ``scibind_generated.dandi_metadata._source``.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Mapping
from typing import Any

from .. import errors

__all__ = [
    "METADATA_MODELS",
    "check_required_keys",
    "metadata_schema",
    "required_keys",
    "schema_versions",
]

METADATA_MODELS = ("Dandiset", "Asset", "PublishedDandiset", "PublishedAsset")


@functools.cache
def _load(model: str) -> dict[str, Any]:
    from importlib.resources import files

    if model not in METADATA_MODELS:
        raise errors.ConfigurationError(f"no metadata model {model!r} (one of {METADATA_MODELS})")
    text = (files("scibind_generated.dandi_metadata") / "schemas" / f"{model}.json").read_text(
        encoding="utf-8"
    )
    schema = json.loads(text)
    if not isinstance(schema, dict):  # pragma: no cover - written by codegen
        raise errors.ConfigurationError(f"schemas/{model}.json is not a JSON object")
    return schema


def metadata_schema(model: str) -> dict[str, Any]:
    """The JSON Schema of ``model`` (``Dandiset``, ``Asset``, ``PublishedDandiset``, ``PublishedAsset``)."""
    return copy.deepcopy(_load(model))


def required_keys(model: str) -> frozenset[str]:
    """The top-level keys ``model`` requires."""
    return frozenset(str(k) for k in _load(model).get("required", ()))


def check_required_keys(document: Mapping[str, Any], model: str, *, what: str) -> None:
    """:class:`~scibind.errors.ResponseFormatError` if ``document`` lacks a key ``model`` requires.

    A light check (keys only, not a validation) that a server's metadata is the document the type says.
    """
    missing = sorted(required_keys(model) - document.keys())
    if missing:
        raise errors.ResponseFormatError(
            f"{what} is not a {model} metadata document: missing {', '.join(missing)}"
        )


def schema_versions() -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """``(schema version of the models, versions they accept as input, versions they can target)``."""
    from scibind_generated.dandi_metadata import _source

    return (
        str(_source.SCHEMA_VERSION),
        tuple(_source.ALLOWED_INPUT_SCHEMAS),
        tuple(_source.ALLOWED_TARGET_SCHEMAS),
    )
