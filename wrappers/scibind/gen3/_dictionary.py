"""Gen3 data dictionaries: ``$ref`` resolution.

A commons serves its dictionary at ``/api/v0/submission/_dictionary/_all`` (:meth:`Gen3Client.dictionary`) as
one JSON object keyed by node type (``program``, ``case``, ...) and by shared documents (``_definitions``,
``_terms``, ``_settings``). Node schemas keep their ``$ref``s: ``_definitions.yaml#/UUID`` points into a shared
document, ``#/foreign_key`` into the document the reference appears in. :func:`resolve_dictionary` inlines
every reference the way the Gen3 dictionary loader does (the referenced content is merged into the object
holding the ``$ref``), so each node schema becomes self-contained.

Used by the codegen step (``python -m codegen dictionary``) and by the test kit's fake commons.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

__all__ = ["DictionaryError", "is_node_schema", "resolve_dictionary"]


class DictionaryError(ValueError):
    """A dictionary that cannot be resolved (dangling or circular ``$ref``)."""


# -- resolution ------------------------------------------------------------------------------------


def _document_key(sources: Mapping[str, Any], name: str) -> str:
    for candidate in (name, name.removesuffix(".yaml"), name + ".yaml"):
        if candidate in sources:
            return candidate
    raise DictionaryError(f"$ref to unknown document {name!r}")


def _pointer(document: Any, pointer: str, ref: str) -> Any:
    node = document
    for raw in pointer.lstrip("/").split("/") if pointer.strip("/") else []:
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            raise DictionaryError(f"dangling $ref {ref!r}")
    return node


class _Resolver:
    def __init__(self, sources: Mapping[str, Any]) -> None:
        self.sources = sources
        self.stack: list[tuple[str, str]] = []

    def target(self, ref: str, current: str) -> tuple[Any, str]:
        base, _, pointer = ref.partition("#")
        doc = _document_key(self.sources, base) if base else current
        key = (doc, pointer)
        if key in self.stack:
            raise DictionaryError(f"circular $ref {ref!r}")
        self.stack.append(key)
        try:
            return self.resolve(_pointer(self.sources[doc], pointer, ref), doc), doc
        finally:
            self.stack.pop()

    def resolve(self, obj: Any, doc: str) -> Any:
        if isinstance(obj, Mapping):
            out: dict[str, Any] = {}
            refs = [k for k in obj if k.startswith("$ref")]
            rest = {k: v for k, v in obj.items() if not k.startswith("$ref")}
            for key, value in rest.items():
                out[key] = self.resolve(value, doc)
            for key in refs:
                target, _ = self.target(str(obj[key]), doc)
                if not isinstance(target, Mapping):
                    raise DictionaryError(f"$ref {obj[key]!r} does not point to an object")
                out.update(copy.deepcopy(target))  # the referenced content wins, as in Gen3
            return out
        if isinstance(obj, list):
            return [self.resolve(item, doc) for item in obj]
        return obj


def is_node_schema(name: str, schema: Any) -> bool:
    """True for a node type's schema (not a shared document such as ``_definitions``)."""
    return (
        not name.startswith("_")
        and name not in {"metaschema", "metaschema.yaml"}
        and isinstance(schema, Mapping)
        and "properties" in schema
        and isinstance(schema.get("id", name.removesuffix(".yaml")), str)
    )


def resolve_dictionary(sources: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Resolve every ``$ref`` and return ``{node type: self-contained schema}``, sorted by node type."""
    resolver = _Resolver(sources)
    nodes: dict[str, dict[str, Any]] = {}
    for name in sorted(sources):
        schema = sources[name]
        if is_node_schema(name, schema):
            resolved = resolver.resolve(schema, name)
            nodes[str(resolved.get("id", name.removesuffix(".yaml")))] = resolved
    return dict(sorted(nodes.items()))
