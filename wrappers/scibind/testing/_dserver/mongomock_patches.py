"""Make mongomock stand in for MongoDB under dservercore and its three Mongo plugins.

Nothing in dserver is changed; four gaps in mongomock are filled:

1. ``pymongo.MongoClient`` returns a mongomock client; every client shares one in-memory store.
2. ``$text`` queries: a case-insensitive whole-word match over every string value in the document.
   Terms are OR-ed, ``"quoted phrases"`` must all be present (then terms do not filter, as in MongoDB),
   ``-term`` / ``-"phrase"`` exclude. No stemming, no stop words, no score ranking.
3. UUIDs are BSON-encoded with the STANDARD representation (what ``uuidRepresentation='standard'`` asks for).
4. The ``$unset`` aggregation stage.

Plus one speed-up that does not change results: equality look-ups by ``uri``/``uuid`` pre-select candidates
cheaply before mongomock's general matcher runs (registration would otherwise be O(n) slow Python per call).

Runs only in the dserver subprocess: importing this module imports mongomock and pymongo.
"""

from __future__ import annotations

import copy
import importlib
import re
import sys
import threading
import uuid as _uuid
from collections.abc import Iterator
from typing import Any

import bson
import pymongo
from bson.binary import UuidRepresentation
from bson.codec_options import CodecOptions

# mongomock is untyped: reach it through Any-typed module objects.
mongomock: Any = importlib.import_module("mongomock")
_aggregate: Any = importlib.import_module("mongomock.aggregate")
_collection: Any = importlib.import_module("mongomock.collection")
_filtering: Any = importlib.import_module("mongomock.filtering")
_store_module: Any = importlib.import_module("mongomock.store")

__all__ = ["TextQuery", "apply", "shared_store", "text_matches"]

_lock = threading.Lock()
_applied = False
_STORE: Any = _store_module.ServerStore()
_WORD = re.compile(r"\w+", re.UNICODE)
_SEARCH_CHUNK = re.compile(r'(-?)"([^"]*)"|(\S+)')


def shared_store() -> Any:
    """The one in-memory store behind every patched ``MongoClient``."""
    return _STORE


# -- 1. MongoClient ----------------------------------------------------------------------------------
def _mongo_client(host: Any = None, port: Any = None, *args: Any, **kwargs: Any) -> Any:
    """Stand-in for ``pymongo.MongoClient``: a mongomock client on the shared store."""
    kwargs.pop("_store", None)
    kwargs.pop("uuidRepresentation", None)
    return mongomock.MongoClient(host, port, *args, _store=_STORE, **kwargs)


# -- 2. $text ----------------------------------------------------------------------------------------
class TextQuery:
    """A parsed ``$search`` string: terms (OR), phrases (AND) and exclusions."""

    def __init__(self, search: str, *, case_sensitive: bool = False) -> None:
        self.case_sensitive = case_sensitive
        self.terms: set[str] = set()
        self.phrases: list[str] = []
        self.excluded_terms: set[str] = set()
        self.excluded_phrases: list[str] = []
        for m in _SEARCH_CHUNK.finditer(search):
            negated, phrase, chunk = m.group(1), m.group(2), m.group(3)
            if phrase is not None:
                phrase = self._norm(phrase.strip())
                if phrase:
                    (self.excluded_phrases if negated else self.phrases).append(phrase)
                continue
            negated = chunk.startswith("-")
            words = {self._norm(w) for w in _WORD.findall(chunk)}
            (self.excluded_terms if negated else self.terms).update(words)

    def _norm(self, text: str) -> str:
        return text if self.case_sensitive else text.casefold()

    def matches(self, document: Any) -> bool:
        """Whether ``document`` (any nesting of dicts and lists) matches the query."""
        texts = [self._norm(s) for s in _strings(document)]
        words: set[str] = set()
        for t in texts:
            words.update(_WORD.findall(t))
        if words & self.excluded_terms:
            return False
        if any(p in t for p in self.excluded_phrases for t in texts):
            return False
        if self.phrases:
            return all(any(p in t for t in texts) for p in self.phrases)
        return bool(words & self.terms)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            if k != "_id":
                yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)


def text_matches(spec: Any, document: Any) -> bool:
    """Evaluate a ``{"$search": ..., "$caseSensitive": ...}`` spec against a document."""
    if not isinstance(spec, dict) or not isinstance(spec.get("$search"), str):
        raise mongomock.OperationFailure("$text requires a $search string")
    query = TextQuery(spec["$search"], case_sensitive=bool(spec.get("$caseSensitive", False)))
    return query.matches(document)


_original_apply: Any = _filtering._Filterer.apply


def _apply_with_text(self: Any, search_filter: Any, document: Any) -> bool:
    if isinstance(search_filter, dict) and "$text" in search_filter:
        if not text_matches(search_filter["$text"], document):
            return False
        rest = {k: v for k, v in search_filter.items() if k != "$text"}
        return bool(_original_apply(self, rest, document)) if rest else True
    return bool(_original_apply(self, search_filter, document))


_original_iter_documents: Any = _collection.Collection._iter_documents


def _prefilter_key(filter: dict[str, Any]) -> tuple[str, Any] | None:
    """A top-level ``field: value`` pair of the filter to pre-select by; strings first (cheapest ``==``)."""
    best: tuple[str, Any] | None = None
    for key, wanted in filter.items():
        if key.startswith("$") or "." in key:
            continue
        if type(wanted) is str:
            return key, wanted
        if best is None and type(wanted) is _uuid.UUID:
            best = key, wanted
    return best


def _iter_documents(self: Any, filter: Any) -> Any:
    """Speed only: for a filter with a top-level ``{"field": str-or-UUID}`` (how the plugins find a dataset
    by ``uri``/``uuid`` on every registration) pre-select candidates with a cheap comparison, then apply
    mongomock's full matcher to them. Array fields stay candidates, so the result is unchanged."""
    pair = _prefilter_key(filter) if isinstance(filter, dict) else None
    if pair is None or self._store.is_empty:
        return _original_iter_documents(self, filter)
    key, wanted = pair
    store = self._store
    with store._rwlock.reader():
        # dict.values() on the OrderedDict: same (insertion) order, without hashing every ObjectId key
        documents = list(dict.values(store._documents))
    candidates = [d for d in documents if (v := d.get(key)) == wanted or type(v) is list]
    return (d for d in candidates if _filtering.filter_applies(filter, d))


# -- 3. UUID encoding --------------------------------------------------------------------------------
_STANDARD: CodecOptions[Any] = CodecOptions(uuid_representation=UuidRepresentation.STANDARD)


class _StandardUuidBSON:
    """The slice of ``bson.BSON`` mongomock uses for validation, encoding UUIDs as STANDARD."""

    @staticmethod
    def encode(document: Any, check_keys: bool = False, codec_options: Any = None) -> bytes:
        return bson.BSON.encode(document, check_keys=check_keys, codec_options=_STANDARD)


# -- 4. $unset stage ---------------------------------------------------------------------------------
def _unset_path(doc: Any, parts: list[str]) -> None:
    if isinstance(doc, list):
        for item in doc:
            _unset_path(item, parts)
        return
    if not isinstance(doc, dict):
        return
    if len(parts) == 1:
        doc.pop(parts[0], None)
    elif parts[0] in doc:
        _unset_path(doc[parts[0]], parts[1:])


def _handle_unset_stage(in_collection: list[Any], unused_database: Any, options: Any) -> list[Any]:
    fields = [options] if isinstance(options, str) else options
    if (
        not isinstance(fields, list)
        or not fields
        or not all(isinstance(f, str) and f for f in fields)
    ):
        raise mongomock.OperationFailure(
            "$unset specification must be a string or array of strings"
        )
    out = []
    for doc in in_collection:
        new = copy.deepcopy(doc)
        for f in fields:
            _unset_path(new, f.split("."))
        out.append(new)
    return out


def apply() -> None:
    """Install the four patches (idempotent). Call before the dserver plugins are imported."""
    global _applied
    with _lock:
        if _applied:
            return
        pymongo.MongoClient = _mongo_client  # type: ignore[misc,assignment]
        for name in (
            "dserver_search_plugin_mongo.utils_search",
            "dserver_retrieve_plugin_mongo.utils_retrieve",
            "dserver_direct_mongo_plugin",
        ):
            module = sys.modules.get(name)
            if module is not None:
                module.MongoClient = _mongo_client  # type: ignore[attr-defined]
        _filtering._Filterer.apply = _apply_with_text
        _collection.Collection._iter_documents = _iter_documents
        _collection.BSON = _StandardUuidBSON
        _aggregate._PIPELINE_HANDLERS["$unset"] = _handle_unset_stage
        _applied = True
