"""Make mongomock stand in for MongoDB under dservercore and its three Mongo plugins.

Nothing in dserver is changed; five gaps in mongomock are filled:

1. ``pymongo.MongoClient`` returns a mongomock client; every client shares one in-memory store.
2. ``$text`` queries: a case-insensitive whole-word match over every string value in the document.
   Terms are OR-ed, ``"quoted phrases"`` must all be present (then terms do not filter, as in MongoDB),
   ``-term`` / ``-"phrase"`` exclude. No stemming, no stop words, no score ranking.
3. UUIDs are BSON-encoded with the STANDARD representation (what ``uuidRepresentation='standard'`` asks for).
4. The ``$unset`` aggregation stage.
5. Read-only views (``db.command("create", name, viewOn=source, pipeline=[...])``), which the dependency-graph
   plugin builds its undirected adjacency lists with: reading a view runs its pipeline over the source collection
   (``find``, ``$lookup`` and ``$graphLookup`` from it); dropping it forgets the definition. Writes to a view are
   refused as MongoDB refuses them.

Plus speed-ups that do not change results: equality look-ups by ``uri``/``uuid`` pre-select candidates
cheaply before mongomock's general matcher runs (registration would otherwise be O(n) slow Python per call); a
view is computed once per aggregation; ``$unwind`` copies each document without the array it unwinds (mongomock
deep-copies the whole array for every element, quadratic in the array's length, which dependency graphs hit).

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
_database: Any = importlib.import_module("mongomock.database")
_filtering: Any = importlib.import_module("mongomock.filtering")
_store_module: Any = importlib.import_module("mongomock.store")

__all__ = [
    "PIPELINE_STAGES",
    "TextQuery",
    "apply",
    "create_view",
    "mongomock_patches",
    "shared_store",
    "text_matches",
]

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
    view = _view_definition(self._store)
    if view is not None:
        return _iter_view(self, view, filter)
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


# -- 5. views ----------------------------------------------------------------------------------------
# set on a mongomock CollectionStore of a view: (source collection name, pipeline)
_VIEW_ATTR = "_scibind_view"


def _view_definition(store: Any) -> tuple[str, list[Any]] | None:
    view: tuple[str, list[Any]] | None = getattr(store, _VIEW_ATTR, None)
    return view if view is not None and store.is_created else None


_pipeline_state = threading.local()  # .views: {id(view store): documents} while an aggregation runs


def _iter_view(collection: Any, view: tuple[str, list[Any]], filter: Any) -> Any:
    """A view's documents: its pipeline run over the source collection now (views are not materialised).

    Within one aggregation (``$graphLookup`` reads the view once per node) the view is computed once: nothing
    writes to the database in the middle of a pipeline, so that changes no result."""
    cache: dict[int, list[Any]] | None = getattr(_pipeline_state, "views", None)
    results = cache.get(id(collection._store)) if cache is not None else None
    if results is None:
        source, pipeline = view
        documents = list(collection.database.get_collection(source).find())
        results = list(
            _aggregate.process_pipeline(
                documents, collection.database, copy.deepcopy(pipeline), None
            )
        )
        if cache is not None:
            cache[id(collection._store)] = results
    return (d for d in results if _filtering.filter_applies(filter, d))


_original_unwind: Any = _aggregate._handle_unwind_stage


def _copy_without(doc: dict[str, Any], parts: list[str]) -> dict[str, Any]:
    """A deep copy of ``doc`` with the value at the dotted path ``parts`` left out (set to None)."""
    out = type(doc)()
    for key, value in doc.items():
        if key != parts[0]:
            out[key] = copy.deepcopy(value)
        elif len(parts) > 1:
            out[key] = _copy_without(value, parts[1:])
        else:
            out[key] = None
    return out


def _handle_unwind_stage(in_collection: list[Any], database: Any, options: Any) -> list[Any]:
    """mongomock's ``$unwind``, except that a document whose array sits under plain sub-documents is copied once
    without the array and then once per element (mongomock deep-copies the whole array per element)."""
    spec = options if isinstance(options, dict) else {"path": options}
    path = spec.get("path")
    if not isinstance(path, str) or not path.startswith("$") or spec.get("includeArrayIndex"):
        return list(_original_unwind(in_collection, database, options))
    parts = path[1:].split(".")
    out: list[Any] = []
    for doc in in_collection:
        parent: Any = doc
        for part in parts[:-1]:
            parent = parent.get(part) if isinstance(parent, dict) else None
        array = parent.get(parts[-1]) if isinstance(parent, dict) else None
        if not isinstance(array, list) or not array:
            out.extend(_original_unwind([doc], database, options))  # missing, null, [] or a scalar
            continue
        skeleton = _copy_without(doc, parts)
        for element in array:
            new = copy.deepcopy(skeleton)
            target = new
            for part in parts[:-1]:
                target = target[part]
            target[parts[-1]] = copy.deepcopy(element)
            out.append(new)
    return out


_original_process_pipeline: Any = _aggregate.process_pipeline


def _process_pipeline(collection: Any, database: Any, pipeline: Any, session: Any) -> Any:
    """mongomock's pipeline runner, with views computed at most once per (outermost) aggregation."""
    outermost = getattr(_pipeline_state, "views", None) is None
    if outermost:
        _pipeline_state.views = {}
    try:
        return _original_process_pipeline(collection, database, pipeline, session)
    finally:
        if outermost:
            _pipeline_state.views = None


def create_view(database: Any, name: str, source: str, pipeline: list[Any]) -> None:
    """Create the read-only view ``name`` of ``source`` through ``pipeline`` (MongoDB's ``create`` command)."""
    database._ensure_valid_collection_name(name)
    if name in database.list_collection_names():
        raise mongomock.CollectionInvalid(f"collection {name} already exists")
    if not isinstance(source, str) or not isinstance(pipeline, list):
        raise mongomock.OperationFailure("viewOn must be a string and pipeline an array")
    store = database._store.create_collection(name)
    setattr(store, _VIEW_ATTR, (source, copy.deepcopy(pipeline)))


_original_command: Any = _database.Database.command


def _command(self: Any, command: Any, value: Any = 1, **kwargs: Any) -> Any:
    """``Database.command`` with ``create`` + ``viewOn``/``pipeline`` (as pymongo passes them) supported."""
    if isinstance(command, str):
        spec: dict[str, Any] = {command: value, **kwargs}
    else:
        spec = {**dict(command), **kwargs}
    if "create" in spec and "viewOn" in spec:
        create_view(self, spec["create"], spec["viewOn"], spec.get("pipeline", []))
        return {"ok": 1.0}
    return _original_command(self, command, **kwargs)


_original_store_drop: Any = _store_module.CollectionStore.drop


def _store_drop(self: Any) -> None:
    _original_store_drop(self)
    if hasattr(self, _VIEW_ATTR):
        delattr(self, _VIEW_ATTR)


def _refuse_view_writes(method: Any) -> Any:
    def write(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _view_definition(self._store) is not None:
            raise mongomock.OperationFailure(
                f"Namespace {self.full_name} is a view, not a collection"
            )
        return method(self, *args, **kwargs)

    write.__wrapped__ = method  # type: ignore[attr-defined]
    return write


def mongomock_patches() -> list[tuple[Any, str, Any]]:
    """``(object, attribute, new value)`` for every patch inside mongomock (not ``pymongo.MongoClient``);
    :func:`apply` sets them, tests may set them temporarily (``monkeypatch.setattr``)."""
    patches: list[tuple[Any, str, Any]] = [
        (_filtering._Filterer, "apply", _apply_with_text),
        (_collection.Collection, "_iter_documents", _iter_documents),
        (_collection, "BSON", _StandardUuidBSON),
        (_database.Database, "command", _command),
        (_aggregate, "process_pipeline", _process_pipeline),
        (_store_module.CollectionStore, "drop", _store_drop),
    ]
    for name in ("_insert", "_update", "_delete"):
        original = getattr(_collection.Collection, name)
        original = getattr(original, "__wrapped__", original)
        patches.append((_collection.Collection, name, _refuse_view_writes(original)))
    return patches


PIPELINE_STAGES: dict[str, Any] = {"$unset": _handle_unset_stage, "$unwind": _handle_unwind_stage}
"""Aggregation stages added to (or replacing those in) ``mongomock.aggregate._PIPELINE_HANDLERS``."""


def apply() -> None:
    """Install every patch (idempotent). Call before the dserver plugins are imported."""
    global _applied
    with _lock:
        if _applied:
            return
        pymongo.MongoClient = _mongo_client  # type: ignore[misc,assignment]
        for name in (
            "dserver_search_plugin_mongo.utils_search",
            "dserver_retrieve_plugin_mongo.utils_retrieve",
            "dserver_direct_mongo_plugin",
            "dserver_dependency_graph_plugin",
        ):
            module = sys.modules.get(name)
            if module is not None:
                module.MongoClient = _mongo_client  # type: ignore[attr-defined]
        for target, attribute, value in mongomock_patches():
            setattr(target, attribute, value)
        _aggregate._PIPELINE_HANDLERS.update(PIPELINE_STAGES)
        _applied = True
