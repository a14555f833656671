"""Declarative per-service overrides (``specs/<service>/overrides.yaml``), applied after normalisation.

The file is a YAML list of operations (or a mapping with ``overrides:`` and ``allow_skipped:``)::

    - op: replace                        # add | replace | remove | merge | move
      path: /paths/~1items~1{id}/get/parameters/0/name   # JSON Pointer (RFC 6901) into the normalised document
      value: id
      reason: the route variable is {id}; the upstream spec names the parameter item_id

``add`` creates a member that must not exist yet (``-`` appends to a list); ``replace``, ``remove`` and ``merge``
(deep merge of a mapping) need an existing target; ``move`` takes ``from`` and keeps a renamed key's position.
Every operation needs a one-line ``reason``. An operation that does not apply (missing target, existing key,
or a change that is already in the document) fails loudly, so stale overrides are noticed when upstream changes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codegen.specio import SpecError, parse_yaml

__all__ = [
    "OPS",
    "Override",
    "OverrideError",
    "OverrideSet",
    "apply_overrides",
    "load_overrides",
    "parse_overrides",
]

OPS = ("add", "replace", "remove", "merge", "move")
_KEYS = {"op", "path", "value", "from", "reason"}
_MISSING = object()


class OverrideError(SpecError):
    """An override file that is malformed, or an override that does not apply."""


@dataclass(frozen=True)
class Override:
    """One operation of an overrides file."""

    op: str
    path: str
    reason: str
    value: Any = None
    from_: str | None = None

    def describe(self) -> str:
        """``op path`` (and ``from``) for messages."""
        source = f" from {self.from_}" if self.from_ else ""
        return f"{self.op} {self.path}{source}"


@dataclass(frozen=True)
class OverrideSet:
    """The contents of one overrides file."""

    overrides: tuple[Override, ...] = ()
    allow_skipped: dict[str, str] = field(default_factory=dict)
    """``"METHOD /path"`` -> reason, for endpoints the generator may skip (avoid needing it)."""


def _reason(entry: dict[str, Any], where: str) -> str:
    reason = entry.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise OverrideError(f"{where}: every override needs a one-line `reason`")
    if "\n" in reason.strip():
        raise OverrideError(f"{where}: `reason` must be one line")
    return reason.strip()


def _parse_entry(entry: Any, where: str) -> Override:
    if not isinstance(entry, dict):
        raise OverrideError(f"{where}: expected a mapping, got {type(entry).__name__}")
    unknown = set(entry) - _KEYS
    if unknown:
        raise OverrideError(f"{where}: unknown keys {sorted(unknown)} (allowed: {sorted(_KEYS)})")
    op = entry.get("op")
    if op not in OPS:
        raise OverrideError(f"{where}: `op` must be one of {', '.join(OPS)}, got {op!r}")
    path = entry.get("path")
    if not isinstance(path, str) or not (path == "" or path.startswith("/")):
        raise OverrideError(f"{where}: `path` must be a JSON Pointer starting with '/'")
    reason = _reason(entry, where)
    if op in ("add", "replace", "merge") and "value" not in entry:
        raise OverrideError(f"{where}: `{op}` needs a `value`")
    if op == "merge" and not isinstance(entry["value"], dict):
        raise OverrideError(f"{where}: `merge` needs a mapping `value`")
    if op in ("remove", "move") and "value" in entry:
        raise OverrideError(f"{where}: `{op}` takes no `value`")
    source = entry.get("from")
    if op == "move":
        if not isinstance(source, str) or not source.startswith("/"):
            raise OverrideError(f"{where}: `move` needs a `from` JSON Pointer")
    elif source is not None:
        raise OverrideError(f"{where}: only `move` takes `from`")
    return Override(op=op, path=path, reason=reason, value=entry.get("value"), from_=source)


def parse_overrides(data: Any, *, name: str = "overrides") -> OverrideSet:
    """Validate parsed YAML (a list, or a mapping with ``overrides``/``allow_skipped``)."""
    allow: dict[str, str] = {}
    if data is None:
        return OverrideSet()
    if isinstance(data, dict):
        unknown = set(data) - {"overrides", "allow_skipped"}
        if unknown:
            raise OverrideError(f"{name}: unknown top-level keys {sorted(unknown)}")
        for i, item in enumerate(data.get("allow_skipped") or []):
            where = f"{name}: allow_skipped[{i}]"
            if not isinstance(item, dict) or not isinstance(item.get("endpoint"), str):
                raise OverrideError(f"{where}: expected {{endpoint: 'METHOD /path', reason: ...}}")
            allow[item["endpoint"]] = _reason(item, where)
        entries = data.get("overrides") or []
    else:
        entries = data
    if not isinstance(entries, list):
        raise OverrideError(f"{name}: expected a list of overrides")
    ops = tuple(
        _parse_entry(entry, f"{name}: override #{i + 1}") for i, entry in enumerate(entries)
    )
    return OverrideSet(overrides=ops, allow_skipped=allow)


def load_overrides(path: Path | None) -> OverrideSet:
    """Read an overrides file; ``None`` or an empty file gives an empty set."""
    if path is None:
        return OverrideSet()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise OverrideError(f"cannot read overrides {path}: {exc}") from exc
    return parse_overrides(parse_yaml(text, name=str(path)), name=str(path))


def _tokens(pointer: str) -> list[str]:
    if pointer == "":
        return []
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer[1:].split("/")]


def _child(node: Any, token: str) -> Any:
    if isinstance(node, dict):
        return node.get(token, _MISSING)
    if isinstance(node, list) and token.isdigit() and int(token) < len(node):
        return node[int(token)]
    return _MISSING


def _resolve_parent(doc: Any, pointer: str) -> tuple[Any, str]:
    tokens = _tokens(pointer)
    if not tokens:
        raise KeyError("the document root cannot be the target")
    node = doc
    for depth, token in enumerate(tokens[:-1]):
        node = _child(node, token)
        if node is _MISSING:
            missing = "/" + "/".join(
                t.replace("~", "~0").replace("/", "~1") for t in tokens[: depth + 1]
            )
            raise KeyError(f"{missing} does not exist")
    return node, tokens[-1]


def _get(doc: Any, pointer: str) -> Any:
    parent, last = _resolve_parent(doc, pointer)
    value = _child(parent, last)
    if value is _MISSING:
        raise KeyError(f"{pointer} does not exist")
    return value


def _deep_merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _deep_merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def _apply_one(doc: dict[str, Any], ov: Override) -> None:
    if ov.op == "move":
        _move(doc, ov)
        return
    parent, last = _resolve_parent(doc, ov.path)
    current = _child(parent, last)
    if ov.op == "add":
        if isinstance(parent, list):
            if last == "-":
                parent.append(copy.deepcopy(ov.value))
                return
            if not last.isdigit() or int(last) > len(parent):
                raise KeyError(f"list index {last} is out of range")
            parent.insert(int(last), copy.deepcopy(ov.value))
            return
        if not isinstance(parent, dict):
            raise KeyError("the parent is not a mapping or list")
        if current is not _MISSING:
            raise KeyError(f"{ov.path} already exists (use replace or merge)")
        parent[last] = copy.deepcopy(ov.value)
        return
    if current is _MISSING:
        raise KeyError(f"{ov.path} does not exist")
    if ov.op == "remove":
        if isinstance(parent, list):
            del parent[int(last)]
        else:
            del parent[last]
    elif ov.op == "replace":
        if current == ov.value:
            raise KeyError(
                f"{ov.path} already has this value (fixed upstream? remove the override)"
            )
        parent[int(last) if isinstance(parent, list) else last] = copy.deepcopy(ov.value)
    elif ov.op == "merge":
        if not isinstance(current, dict):
            raise KeyError(f"{ov.path} is not a mapping")
        merged = copy.deepcopy(current)
        _deep_merge(merged, ov.value)
        if merged == current:
            raise KeyError(
                f"merging into {ov.path} changes nothing (fixed upstream? remove the override)"
            )
        current.clear()
        current.update(merged)


def _move(doc: dict[str, Any], ov: Override) -> None:
    assert ov.from_ is not None
    value = _get(doc, ov.from_)
    src_parent, src_last = _resolve_parent(doc, ov.from_)
    dst_parent, dst_last = _resolve_parent(doc, ov.path)
    if _child(dst_parent, dst_last) is not _MISSING:
        raise KeyError(f"{ov.path} already exists")
    if src_parent is dst_parent and isinstance(
        src_parent, dict
    ):  # a rename: keep the key's position
        items = [(dst_last if k == src_last else k, v) for k, v in src_parent.items()]
        src_parent.clear()
        src_parent.update(items)
        return
    if isinstance(src_parent, list):
        del src_parent[int(src_last)]
    else:
        del src_parent[src_last]
    if isinstance(dst_parent, list):
        dst_parent.append(value) if dst_last == "-" else dst_parent.insert(int(dst_last), value)
    elif isinstance(dst_parent, dict):
        dst_parent[dst_last] = value
    else:
        raise KeyError("the destination's parent is not a mapping or list")


def apply_overrides(
    document: dict[str, Any], overrides: OverrideSet, *, name: str = "overrides"
) -> dict[str, Any]:
    """Apply every override in order to a copy of ``document``; the first one that does not apply raises."""
    doc = copy.deepcopy(document)
    for i, ov in enumerate(overrides.overrides):
        try:
            _apply_one(doc, ov)
        except (KeyError, IndexError, ValueError) as exc:
            detail = exc.args[0] if exc.args else str(exc)
            raise OverrideError(
                f"{name}: override #{i + 1} ({ov.describe()}) does not apply: {detail}. Reason given: {ov.reason}"
            ) from exc
    return doc
