"""Reading and writing OpenAPI documents (JSON or YAML) without YAML's surprises.

YAML 1.1 (PyYAML) turns ``200:`` into an int key, ``2024-01-01`` into a date and ``yes`` into ``True``.
OpenAPI means strings in all those places, so :func:`load_document` reads every mapping key as the text
written, keeps dates as strings and only treats ``true``/``false`` as booleans (as YAML 1.2 does).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "SpecError",
    "dump_json",
    "file_sha256",
    "load_document",
    "parse_document",
    "parse_yaml",
    "sha256_bytes",
]


class SpecError(Exception):
    """A spec document that cannot be read or used."""


class _SpecLoader(yaml.SafeLoader):
    """Safe loader with YAML 1.2-like scalars and string keys."""


_SpecLoader.yaml_implicit_resolvers = {
    first: [
        (tag, rx)
        for tag, rx in resolvers
        if tag not in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:bool")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _construct_mapping(loader: _SpecLoader, node: yaml.MappingNode) -> dict[str, Any]:
    loader.flatten_mapping(node)
    out: dict[str, Any] = {}
    for key_node, value_node in node.value:
        if isinstance(key_node, yaml.ScalarNode):
            key: Any = key_node.value  # the text as written: "200", "2024-01-01", "on"
        else:
            raise SpecError(
                f"unsupported non-scalar mapping key at line {key_node.start_mark.line + 1}"
            )
        out[key] = loader.construct_object(value_node, deep=True)
    return out


_SpecLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_yaml(text: str, *, name: str = "<yaml>") -> Any:
    """Parse YAML (or JSON) text with the spec loader's rules; any top-level type."""
    try:
        return yaml.load(text, Loader=_SpecLoader)
    except yaml.YAMLError as exc:
        raise SpecError(f"{name}: not valid YAML: {exc}") from exc


def parse_document(text: str | bytes, *, name: str = "<document>") -> dict[str, Any]:
    """Parse JSON or YAML text into a dict (JSON is tried first when the text looks like JSON)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8-sig")
    stripped = text.lstrip()
    try:
        data = json.loads(text) if stripped.startswith("{") else yaml.load(text, Loader=_SpecLoader)
    except (ValueError, yaml.YAMLError) as exc:
        raise SpecError(f"{name}: not valid JSON or YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise SpecError(f"{name}: top level is {type(data).__name__}, expected a mapping")
    return data


def load_document(path: Path) -> dict[str, Any]:
    """Read a JSON or YAML file into a dict."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SpecError(f"cannot read {path}: {exc}") from exc
    return parse_document(raw, name=str(path))


def dump_json(document: Any) -> str:
    """Deterministic JSON text (key order kept, 2-space indent, trailing newline)."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    return sha256_bytes(path.read_bytes())
