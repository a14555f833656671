"""Sheepdog administration through the Gen3 facade: programs and projects, deletion of graph entities (one by
one, by node type, with their dependents), the file manifest and the project's dictionary. Written once; see
:class:`scibind.gen3.Gen3Client`.

Deletion follows sheepdog's rule: an entity that others link to can only be deleted together with (or after)
those dependents. A batch refused for that reason names the dependents; ``with_dependents=True`` adds them to
the same transaction (a cascade, opt-in), otherwise the blocked entities are reported as failed and the rest
of the batch is sent again without them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from .._core import effects as fx
from .._core.facade import operation
from ..errors import ConfigurationError, ResponseFormatError, ScibindError
from ._common import _json, _options, _parsed, _split_project

if TYPE_CHECKING:
    from scibind_generated.gen3_sheepdog.models import ProgramCreated

    from ._models import DeletionResult, EntityOutcome

__all__ = ["DELETE_BATCH", "NodeOrder", "_SheepdogAdminOps"]

DELETE_BATCH = 100
"""Entities per deletion request (the SDK's ``batch_size``)."""

NodeOrder = Literal["dependents-first", "given"]


def _entity_id(entity: Mapping[str, Any]) -> str | None:
    if entity.get("id"):
        return str(entity["id"])
    for error in entity.get("errors") or []:
        if isinstance(error, Mapping) and error.get("id"):
            return str(error["id"])
    return None


def _is_missing(entity: Mapping[str, Any]) -> bool:
    return any(
        isinstance(e, Mapping) and e.get("type") == "NOT_FOUND" for e in entity.get("errors") or []
    )


def _dependents(entity: Mapping[str, Any]) -> list[str]:
    found = []
    for error in entity.get("errors") or []:
        for dependent in (error.get("dependents") or []) if isinstance(error, Mapping) else []:
            if isinstance(dependent, Mapping) and dependent.get("id"):
                found.append(str(dependent["id"]))
    return found


def _messages(entity: Mapping[str, Any]) -> tuple[str, ...]:
    out = []
    for error in entity.get("errors") or []:
        text = str(error.get("message") or error) if isinstance(error, Mapping) else str(error)
        out.append(text)
    return tuple(out)


def _parents(schema: Mapping[str, Any]) -> set[str]:
    """The node types a node links to (its parents), from its ``links`` (subgroups included)."""
    found: set[str] = set()
    stack: list[Any] = list(schema.get("links") or [])
    while stack:
        link = stack.pop()
        if not isinstance(link, Mapping):
            continue
        if isinstance(link.get("subgroup"), list):
            stack.extend(link["subgroup"])
        elif isinstance(link.get("target_type"), str):
            found.add(link["target_type"])
    return found


def children_first(nodes: Sequence[str], dictionary: Mapping[str, Any]) -> list[str]:
    """``nodes`` ordered so that every node comes before the node types it links to (its parents), directly
    or through other node types of the dictionary; otherwise in the given order."""
    parents = {n: _parents(s) for n, s in dictionary.items() if isinstance(s, Mapping)}

    def ancestors(node: str) -> set[str]:
        seen: set[str] = set()
        stack = list(parents.get(node, ()))
        while stack:
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                stack.extend(parents.get(current, ()))
        return seen

    above = {n: ancestors(n) for n in nodes}
    ordered: list[str] = []
    remaining = list(dict.fromkeys(nodes))
    while remaining:
        # the first node that no remaining node lists among its ancestors (nothing left depends on it)
        pick = next(
            (n for n in remaining if not any(n in above[m] for m in remaining if m != n)),
            remaining[0],  # a cycle: keep the given order
        )
        ordered.append(pick)
        remaining.remove(pick)
    return ordered


class _SheepdogAdminOps:
    """Programs, projects, deletion, manifests (sheepdog) for the Gen3 facade."""

    if TYPE_CHECKING:  # provided by the facade

        def _graphql(
            self,
            query: str,
            variables: Mapping[str, Any] | None = None,
            operation_name: str | None = None,
        ) -> fx.Op[dict[str, Any]]: ...

    # -- programs and projects ------------------------------------------------------------------------------
    @operation
    def create_program(
        self,
        name: str,
        *,
        dbgap_accession_number: str,
        properties: Mapping[str, Any] | None = None,
    ) -> fx.Op[ProgramCreated]:
        """Register a program, or update it when it exists (administrators only); returns its node id
        and sheepdog's message. ``properties``: other fields of the dictionary's program node."""
        from scibind_generated.gen3_sheepdog.api.program import create_program
        from scibind_generated.gen3_sheepdog.models import ProgramCreate, ProgramCreated

        body = ProgramCreate.from_dict(
            {
                **(properties or {}),
                "type": "program",
                "name": name,
                "dbgap_accession_number": dbgap_accession_number,
            }
        )
        # registering is an upsert by name: a repeat changes nothing
        resp = yield fx.Call(create_program, {"body": body}, idempotent=True)
        return _parsed(resp, ProgramCreated, "program registration")  # type: ignore[no-any-return]

    @operation
    def create_project(
        self,
        program: str,
        code: str,
        *,
        dbgap_accession_number: str,
        name: str | None = None,
        properties: Mapping[str, Any] | None = None,
    ) -> fx.Op[EntityOutcome]:
        """Register a project in ``program``, or update it (administrators only; ``PUT``, as the SDK).
        Returns the project's outcome (``id``, ``action`` ``create`` or ``update``). ``properties``: other
        fields of the dictionary's project node (``availability_type``, ``investigator_name``, ...)."""
        from scibind_generated.gen3_sheepdog.api.project import put_project
        from scibind_generated.gen3_sheepdog.models import ProjectCreate

        from ._models import EntityOutcome

        body = ProjectCreate.from_dict(
            {
                **(properties or {}),
                "type": "project",
                "code": code,
                "dbgap_accession_number": dbgap_accession_number,
                **_options(name=name),
            }
        )
        resp = yield fx.Call(put_project, {"program": program, "body": body}, validate=False)
        doc = _json(resp.content, "the project registration")
        entities = doc.get("entities") if isinstance(doc, Mapping) else None
        if not isinstance(entities, list) or not entities or not isinstance(entities[0], Mapping):
            raise ResponseFormatError("sheepdog's answer to a project registration has no entity")
        entity = entities[0]
        return EntityOutcome(
            0,
            None,
            "project",
            id=entity.get("id"),
            action=entity.get("action"),
            warnings=_messages({"errors": entity.get("warnings") or []}),
        )

    @operation
    def delete_project(self, project_id: str) -> fx.Op[None]:
        """Delete an empty project (administrators only)."""
        from scibind_generated.gen3_sheepdog.api.project import delete_project

        program, project = _split_project(project_id)
        yield fx.Call(delete_project, {"program": program, "project": project}, validate=False)

    @operation
    def delete_program(self, program: str) -> fx.Op[None]:
        """Delete an empty program (administrators only)."""
        from scibind_generated.gen3_sheepdog.api.program import delete_program

        yield fx.Call(delete_program, {"program": program}, validate=False)

    @operation
    def project_dictionary(self, project_id: str) -> fx.Op[list[str]]:
        """The dictionary entries (node types) as a project sees them (the SDK's ``get_project_dictionary``);
        read one with :meth:`dictionary_node`."""
        from scibind_generated.gen3_sheepdog.api.dictionary import list_project_dictionary_entries
        from scibind_generated.gen3_sheepdog.models import Links

        program, project = _split_project(project_id)
        resp = yield fx.Call(
            list_project_dictionary_entries, {"program": program, "project": project}
        )
        links = _parsed(resp, Links, "project dictionary").links
        names = [str(link).rstrip("/").rsplit("/", 1)[-1] for link in links]
        return [n for n in names if n and n != "_all"]

    @operation
    def project_manifest(
        self, project_id: str, ids: str | Sequence[str]
    ) -> fx.Op[list[dict[str, Any]]]:
        """Sheepdog's manifest of data files (``ids``: data-file entities), one dict per file: its export
        plus ``local_file_path`` (the SDK's ``get_project_manifest``, which forgets the required ids)."""
        import yaml
        from scibind_generated.gen3_sheepdog.api.export import get_manifest

        program, project = _split_project(project_id)
        joined = ids if isinstance(ids, str) else ",".join(ids)
        if not joined:
            raise ConfigurationError("no ids for the manifest")
        resp = yield fx.Call(
            get_manifest, {"program": program, "project": project, "ids": joined}, validate=False
        )
        try:
            doc = yaml.safe_load(resp.content)
        except yaml.YAMLError as exc:
            raise ResponseFormatError(f"the manifest is not YAML: {exc}") from None
        files = doc.get("files") if isinstance(doc, Mapping) else None
        if not isinstance(files, list) or not all(isinstance(f, Mapping) for f in files):
            raise ResponseFormatError("the manifest has no list of files")
        return [dict(f) for f in files]

    # -- deletion ------------------------------------------------------------------------------------------
    @operation
    def delete_records(
        self,
        project_id: str,
        ids: str | Iterable[str],
        *,
        batch_size: int = DELETE_BATCH,
        with_dependents: bool = False,
    ) -> fx.Op[DeletionResult]:
        """Delete graph entities by id, ``batch_size`` per request (the SDK's ``delete_records``).

        An entity others link to is refused unless they go in the same transaction: with
        ``with_dependents=True`` the dependents sheepdog names are added and the batch is sent again
        (a cascade), else the blocked entities are reported in ``failed`` and the rest is deleted.
        """
        wanted = [ids] if isinstance(ids, str) else list(dict.fromkeys(ids))
        return (yield from self._delete(project_id, wanted, batch_size, with_dependents))

    def _delete(
        self, project_id: str, ids: list[str], batch_size: int, with_dependents: bool
    ) -> fx.Op[DeletionResult]:
        from scibind_generated.gen3_sheepdog.api.entity import delete_entities

        from .._core.responses import error_for_status
        from ._errors import gen3_error_message
        from ._models import DeletionResult, EntityOutcome

        if batch_size < 1:
            raise ConfigurationError("batch_size must be at least 1")
        program, project = _split_project(project_id)
        position = {i: n for n, i in enumerate(ids)}
        queue = deque(ids[i : i + batch_size] for i in range(0, len(ids), batch_size))
        deleted: list[str] = []
        missing: list[str] = []
        failed: list[EntityOutcome] = []
        requests = 0
        while queue:
            batch = queue.popleft()
            requests += 1
            request = delete_entities._get_kwargs(program, project, ",".join(batch))
            try:
                # DELETE: a repeat after a lost answer finds the entities gone ("missing", not failed)
                resp = yield fx.Request("DELETE", request["url"], ok=(400,))
            except ScibindError as exc:  # the request as a whole failed: report and stop
                left = [*batch, *(i for b in queue for i in b)]
                failed.extend(
                    EntityOutcome(position.get(i, -1), None, None, id=i, messages=(str(exc),))
                    for i in left
                )
                return DeletionResult(
                    tuple(deleted), tuple(missing), tuple(failed), requests, error=exc
                )
            try:
                body = resp.json()
            except ValueError:
                body = None
            entities = body.get("entities") if isinstance(body, Mapping) else None
            if not isinstance(entities, list):
                if resp.status_code >= 400:
                    raise error_for_status(resp, gen3_error_message)
                raise ResponseFormatError("sheepdog's answer is not a deletion report")
            entities = [e for e in entities if isinstance(e, Mapping)]
            if resp.status_code < 300 and body.get("success", True):
                deleted.extend(_entity_id(e) or "" for e in entities)
                continue
            gone = [i for e in entities if _is_missing(e) and (i := _entity_id(e))]
            blocking = {d for e in entities for d in _dependents(e)} - set(batch)
            if with_dependents and blocking:
                queue.appendleft([*batch, *sorted(blocking)])  # dependents join the transaction
                continue
            refused = [e for e in entities if not e.get("valid", False) and not _is_missing(e)]
            missing.extend(gone)
            failed.extend(
                EntityOutcome(position.get(i, -1), None, e.get("type"), id=i, messages=_messages(e))
                for e in refused
                if (i := _entity_id(e))
            )
            settled = set(gone) | {_entity_id(e) for e in refused}
            rest = [i for i in batch if i not in settled]
            if rest and len(rest) < len(batch):
                queue.appendleft(rest)  # the transaction failed as a whole: the others again
            elif rest:  # nothing identifiable went wrong: do not loop
                failed.extend(
                    EntityOutcome(position.get(i, -1), None, None, id=i, messages=(
                        str(body.get("message") or "deletion failed"),))
                    for i in rest
                )  # fmt: skip
        return DeletionResult(tuple(deleted), tuple(missing), tuple(failed), requests)

    @operation
    def delete_node(
        self,
        project_id: str,
        node: str,
        *,
        batch_size: int = DELETE_BATCH,
        with_dependents: bool = False,
    ) -> fx.Op[DeletionResult]:
        """Delete every entity of one node type in a project (the SDK's ``delete_node``)."""
        return (
            yield from self._delete_nodes(project_id, [node], batch_size, "given", with_dependents)
        )

    @operation
    def delete_nodes(
        self,
        project_id: str,
        nodes: Sequence[str],
        *,
        batch_size: int = DELETE_BATCH,
        order: NodeOrder = "dependents-first",
        with_dependents: bool = False,
    ) -> fx.Op[DeletionResult]:
        """Delete every entity of several node types in a project (the SDK's ``delete_nodes``).

        ``order="dependents-first"`` (default) reads the dictionary and deletes node types that link to
        others before those (the SDK expects you to list them in that order: ``order="given"``). Stops at
        the first node type whose entities could not all be deleted.
        """
        return (
            yield from self._delete_nodes(project_id, nodes, batch_size, order, with_dependents)
        )

    def _delete_nodes(
        self,
        project_id: str,
        nodes: Sequence[str],
        batch_size: int,
        order: NodeOrder,
        with_dependents: bool,
    ) -> fx.Op[DeletionResult]:
        from ._graphql import node_query
        from ._models import DeletionResult

        if isinstance(nodes, str):
            raise ConfigurationError("nodes must be a list of node types")
        if order not in ("dependents-first", "given"):
            raise ConfigurationError(f"order must be 'dependents-first' or 'given', not {order!r}")
        _split_project(project_id)
        sequence = list(dict.fromkeys(nodes))
        for node in sequence:  # bad names fail before anything is deleted
            node_query(node, ["id"], first=1, offset=0, project_id=project_id)
        if order == "dependents-first" and len(sequence) > 1:
            dictionary = yield from self._dictionary_document()
            sequence = children_first(sequence, dictionary)
        total = DeletionResult(())
        for node in sequence:
            previous: list[str] | None = None
            while True:
                text = node_query(node, ["id"], first=batch_size, offset=0, project_id=project_id)
                data = yield from self._graphql(text)
                ids = [str(row["id"]) for row in data.get("rows") or [] if row.get("id")]
                if not ids:
                    break
                if ids == previous:  # nothing was deleted last round: do not loop forever
                    break
                previous = ids
                part = yield from self._delete(project_id, ids, batch_size, with_dependents)
                total = total + part
                if not part.ok:
                    return total
        return total

    def _dictionary_document(self) -> fx.Op[dict[str, Any]]:
        from scibind_generated.gen3_sheepdog.api.dictionary import get_dictionary

        resp = yield fx.Call(get_dictionary, validate=False)
        doc = _json(resp.content, "the dictionary")
        if not isinstance(doc, dict):
            raise ResponseFormatError("the dictionary is not an object")
        return doc
