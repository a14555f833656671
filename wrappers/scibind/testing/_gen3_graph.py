"""The metadata graph of the fake Gen3 commons, with sheepdog's transaction semantics.

A submission is one transaction: every entity is parsed, validated against its node schema, matched to
an existing node (by ``id`` or by its unique keys) and linked to its parents (existing nodes or other
entities of the same transaction). Only when nothing failed is anything written. The answer reports
each entity (``valid``, ``action``, ``errors``, ``warnings``, ``unique_keys``) in sheepdog's words.
Data file entities are registered in the index service, as sheepdog does.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import io
import json
import re
import tarfile
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from scibind.testing._gen3_index import IndexStore
from scibind.testing._gen3_validate import iter_violations
from scibind.testing.gen3_dictionary import NodeInfo, node_infos, resolve_dictionary

__all__ = ["ApiError", "Graph", "GraphNode"]

UUID_RE = re.compile(
    r"^[a-fA-F0-9]{8}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{12}$"
)
_PROGRAM_SEED = uuid.UUID("85b08c6a-56a6-4474-9c30-b65abfd214a8")
_PROJECT_SEED = uuid.UUID("249b4405-2c69-45d9-96bc-7410333d5d80")
_HIDDEN_FROM_TEMPLATES = {"id", "project_id"}


class ApiError(Exception):
    """A sheepdog error answered as ``{"message": ...}`` with a status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class GraphNode:
    """One node of the graph."""

    id: str
    label: str
    props: dict[str, Any]
    links: dict[str, list[str]] = field(default_factory=dict)
    sysan: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Entity:
    doc: Any
    entity_type: str | None = None
    entity_id: str | None = None
    action: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    node: GraphNode | None = None
    existing: GraphNode | None = None
    urls: list[str] | None = None

    @property
    def valid(self) -> bool:
        return not self.errors

    def error(
        self, message: str, keys: Iterable[str] = (), type: str = "ERROR", **extra: Any
    ) -> None:
        self.errors.append({"message": message, "keys": list(keys), "type": type, **extra})

    def warn(self, message: str, keys: Iterable[str] = (), **extra: Any) -> None:
        self.warnings.append({"message": message, "keys": list(keys), **extra})


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _allow_nulls(schema: dict[str, Any], info: NodeInfo) -> dict[str, Any]:
    """Optional properties also accept null (how Gen3 lets clients clear a value)."""
    out = copy.deepcopy(schema)
    required = set(info.required) | {link.name for link in info.links if link.required}
    for name, prop in out.get("properties", {}).items():
        if name in required or not isinstance(prop, dict):
            continue
        if "type" in prop:
            types = prop["type"] if isinstance(prop["type"], list) else [prop["type"]]
            if "null" not in types:
                prop["type"] = [*types, "null"]
        elif "enum" in prop and None not in prop["enum"]:
            prop["enum"] = [*prop["enum"], None]
        elif "anyOf" in prop and {"type": "null"} not in prop["anyOf"]:
            prop["anyOf"] = [*prop["anyOf"], {"type": "null"}]
        elif "oneOf" in prop and {"type": "null"} not in prop["oneOf"]:
            prop["oneOf"] = [*prop["oneOf"], {"type": "null"}]
    return out


class Graph:
    """Nodes of every dictionary type, and the sheepdog operations on them."""

    def __init__(
        self,
        sources: Mapping[str, Any],
        index: IndexStore,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.sources: dict[str, Any] = copy.deepcopy(dict(sources))
        self.resolved = resolve_dictionary(self.sources)
        self.infos = node_infos(self.resolved)
        self.validation = {n: _allow_nulls(s, self.infos[n]) for n, s in self.resolved.items()}
        self.index = index
        self.nodes: dict[str, GraphNode] = {}
        self._transactions = 0
        self.clock = clock

    # -- lookups -----------------------------------------------------------------------------------
    def nodes_of(self, label: str) -> list[GraphNode]:
        """Every node of one type, in insertion order."""
        return [n for n in self.nodes.values() if n.label == label]

    def program(self, name: str) -> GraphNode | None:
        """The program called ``name``."""
        return next((n for n in self.nodes_of("program") if n.props.get("name") == name), None)

    def project(self, program: str, code: str) -> GraphNode | None:
        """The project ``code`` of ``program``."""
        prog = self.program(program)
        if prog is None:
            return None
        return next(
            (
                n
                for n in self.nodes_of("project")
                if n.props.get("code") == code and prog.id in n.links.get("programs", [])
            ),
            None,
        )

    def project_id_of(self, node: GraphNode) -> str | None:
        """``<program>-<project>`` of a node (computed for project nodes)."""
        if node.label == "project":
            programs = [self.nodes[i] for i in node.links.get("programs", []) if i in self.nodes]
            return f"{programs[0].props.get('name')}-{node.props.get('code')}" if programs else None
        value = node.props.get("project_id")
        return str(value) if value is not None else None

    def links_out(self, node: GraphNode, name: str) -> list[GraphNode]:
        """Targets of ``node``'s link ``name``."""
        return [self.nodes[i] for i in node.links.get(name, []) if i in self.nodes]

    def backref_sources(self, label: str, backref: str) -> list[tuple[str, str]]:
        """``(source type, link name)`` pairs whose link into ``label`` has backref ``backref``."""
        return [
            (info.name, link.name)
            for info in self.infos.values()
            for link in info.links
            if link.target_type == label and link.backref == backref
        ]

    def backrefs_of(self, label: str) -> dict[str, list[tuple[str, str]]]:
        """Backref name -> its sources, for nodes of type ``label``."""
        out: dict[str, list[tuple[str, str]]] = {}
        for info in self.infos.values():
            for link in info.links:
                if link.target_type == label:
                    out.setdefault(link.backref, []).append((info.name, link.name))
        return out

    def links_in(self, node: GraphNode, backref: str) -> list[GraphNode]:
        """Nodes linking to ``node`` through links whose backref is ``backref``."""
        found: list[GraphNode] = []
        for source_type, link_name in self.backref_sources(node.label, backref):
            found.extend(
                n for n in self.nodes_of(source_type) if node.id in n.links.get(link_name, [])
            )
        return found

    def children(self, node: GraphNode) -> list[GraphNode]:
        """Every node that links to ``node``."""
        return [n for n in self.nodes.values() if any(node.id in ids for ids in n.links.values())]

    def unique_keys_of(self, label: str, props: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The secondary key dicts of a node (``[{"project_id": ..., "submitter_id": ...}]``)."""
        info = self.infos.get(label)
        if info is None:
            return []
        return [{k: props.get(k) for k in keys} for keys in info.secondary_keys]

    def _find(self, label: str, props: Mapping[str, Any]) -> GraphNode | None:
        info = self.infos[label]
        for keys in info.secondary_keys:
            if not all(props.get(k) is not None for k in keys):
                continue
            for node in self.nodes_of(label):
                values = dict(node.props)
                if label == "project":
                    values["project_id"] = self.project_id_of(node)
                if all(values.get(k) == props.get(k) for k in keys):
                    return node
        return None

    # -- programs and projects -----------------------------------------------------------------------
    def create_program(self, doc: Any) -> dict[str, Any]:
        """``POST /v0/submission/``: register or update a program."""
        if not isinstance(doc, Mapping):
            raise ApiError(400, "Root endpoint only supports single documents")
        if doc.get("type") != "program":
            raise ApiError(400, f"Invalid type in key type='{doc.get('type')}'")
        name = doc.get("name")
        if not name:
            raise ApiError(400, "No program specified in key 'name'")
        phsid = doc.get("dbgap_accession_number")
        node = self.program(name)
        if node is not None:
            node.props["dbgap_accession_number"] = phsid
            return {"id": node.id, "name": name, "message": "Program is updated!"}
        node_id = str(uuid.uuid5(_PROGRAM_SEED, name))
        self.nodes[node_id] = GraphNode(
            node_id, "program", {"name": name, "dbgap_accession_number": phsid}
        )
        return {"id": node_id, "name": name, "message": "Program registered."}

    def create_project(self, program: str, doc: Any) -> dict[str, Any]:
        """``PUT|POST /v0/submission/<program>``: register or update a project."""
        prog = self.program(program)
        if prog is None:
            raise ApiError(404, f"Program {program} is not registered")
        if not isinstance(doc, Mapping):
            raise ApiError(400, "Program endpoint only supports single documents")
        if doc.get("type") and doc.get("type") != "project":
            raise ApiError(400, f"Invalid post to program endpoint with type='{doc.get('type')}'")
        code = doc.get("code")
        if not code:
            raise ApiError(400, "No project specified in key 'code'")
        if not doc.get("dbgap_accession_number"):
            raise ApiError(400, "No dbGaP accesion number specified.")
        props = {k: v for k, v in doc.items() if k not in {"type", "state", "released", "programs"}}
        node = self.project(program, code)
        if node is None:
            node_id = str(uuid.uuid5(_PROJECT_SEED, code))
            if node_id in self.nodes:
                raise ApiError(400, f"ERROR: Project {code} already exists in DB")
            node = GraphNode(
                node_id, "project", {"state": "open", "released": False}, {"programs": [prog.id]}
            )
            self.nodes[node_id] = node
            action = "create"
        else:
            action = "update"
        node.props.update(props)
        entity = {
            "valid": True,
            "action": action,
            "type": "project",
            "id": node.id,
            "errors": [],
            "warnings": [],
            "unique_keys": [{"code": code}],
        }
        self._transactions += 1
        return {
            "transaction_id": self._transactions,
            "success": True,
            "entity_error_count": 0,
            "transactional_error_count": 0,
            "entities": [entity],
            "code": 200,
            "message": "Transaction successful.",
            "transactional_errors": [],
            "created_entity_count": 1 if action == "create" else 0,
            "updated_entity_count": 1 if action == "update" else 0,
        }

    def delete_program(self, program: str) -> None:
        """Delete an empty program."""
        prog = self.program(program)
        if prog is None:
            raise ApiError(404, f"program {program} is not registered")
        if self.children(prog):
            raise ApiError(
                400, f"ERROR: Can not delete the program. Program {program} is not empty"
            )
        del self.nodes[prog.id]

    def delete_project(self, program: str, code: str) -> None:
        """Delete an empty project."""
        node = self.project(program, code)
        if node is None:
            raise ApiError(404, f"Project {program}-{code} not found")
        if self.children(node):
            raise ApiError(
                400, f"ERROR: Can not delete the project. Project {program}-{code} is not empty"
            )
        del self.nodes[node.id]

    def require_project(self, program: str, code: str) -> GraphNode:
        """The project, or sheepdog's 404."""
        if self.program(program) is None:
            raise ApiError(404, f"program {program} is not registered")
        node = self.project(program, code)
        if node is None:
            raise ApiError(404, f"Project {program}-{code} not found")
        return node

    # -- submission ----------------------------------------------------------------------------------
    def submit(
        self, program: str, code: str, docs: Any, *, role: str, dry_run: bool = False
    ) -> tuple[int, dict[str, Any]]:
        """One upload transaction (``role`` is ``create`` for POST, ``update`` for PUT)."""
        project = self.require_project(program, code)
        project_id = f"{program}-{code}"
        if project.props.get("state", "open") != "open":
            raise ApiError(
                400,
                f"Project is in state '{project.props.get('state')}', which prevents "
                f"/v0/submission/{program}/{code}. In order to perform this action, the project "
                "must be in state <open>.",
            )
        self._transactions += 1
        transaction_id = self._transactions
        transactional: list[Any] = []
        if isinstance(docs, Mapping):
            docs = [docs]
        if not isinstance(docs, list):
            docs = []
        entities = [self._parse(doc, role) for doc in docs]
        self._validate_schema(entities)
        for entity in entities:
            if entity.valid:
                self._instantiate(entity, role, project_id)
        seen: set[tuple[Any, ...]] = set()
        for entity in entities:
            if entity.valid and entity.node is not None:
                keys = tuple(
                    tuple(entity.node.props.get(k) for k in keys)
                    for keys in self.infos[entity.node.label].secondary_keys
                )
                if keys and keys in seen:
                    transactional.append(
                        {"message": f"Entity is not unique, {keys}", "type": "NOT_UNIQUE"}
                    )
                seen.add(keys)
        planned = {e.node.id: e for e in entities if e.valid and e.node is not None}
        for entity in entities:
            if entity.valid and entity.node is not None:
                self._link(entity, program, code, project_id, planned)
        for entity in entities:
            if (
                entity.valid
                and entity.node is not None
                and self.infos[entity.node.label].is_data_file
            ):
                self._check_data_file(entity)
        if not entities:
            transactional.append("Nothing to submit")
        success = all(e.valid for e in entities) and not transactional
        if success and not dry_run:
            for entity in entities:
                self._commit(entity, program, code)
        entity_errors = sum(1 for e in entities if not e.valid)
        if dry_run or (success and role != "create"):
            status = 200
        elif success:
            status = 201
        else:
            status = 400
        if not success:
            parts = []
            if entity_errors:
                parts.append(
                    f"{entity_errors} invalid {'entities' if entity_errors > 1 else 'entity'}"
                )
            if transactional:
                parts.append(f"{len(transactional)} transactional error(s)")
            message = "Transaction aborted due to " + " and ".join(parts) + "."
        elif dry_run:
            message = (
                "Transaction would have been successful. User selected dry run option, "
                "transaction aborted, no data written to database."
            )
        else:
            message = "Transaction successful."
        body = {
            "transaction_id": transaction_id,
            "success": success,
            "entity_error_count": entity_errors,
            "transactional_error_count": len(transactional),
            "entities": [self._entity_json(e, project_id) for e in entities],
            "code": status,
            "message": message,
            "transactional_errors": transactional,
            "created_entity_count": sum(1 for e in entities if e.action == "create")
            if success
            else 0,
            "updated_entity_count": sum(1 for e in entities if e.action == "update")
            if success
            else 0,
        }
        return status, body

    def _entity_json(self, entity: _Entity, project_id: str) -> dict[str, Any]:
        unique: list[dict[str, Any]] = []
        if entity.entity_type in self.infos and isinstance(entity.doc, Mapping):
            props = (
                dict(entity.node.props) if entity.node else {**entity.doc, "project_id": project_id}
            )
            unique = self.unique_keys_of(entity.entity_type, props)
        return {
            "valid": entity.valid,
            "action": entity.action,
            "type": entity.entity_type,
            "id": entity.entity_id,
            "errors": entity.errors,
            "warnings": entity.warnings,
            "unique_keys": unique,
        }

    def _parse(self, doc: Any, role: str) -> _Entity:
        entity = _Entity(doc=doc)
        if not isinstance(doc, Mapping):
            entity.error(
                f"Entity document must be an object, not a {type(doc).__name__}",
                type="INVALID_VALUE",
            )
            return entity
        entity.doc = doc = dict(doc)
        entity.entity_type = doc.get("type")
        if entity.entity_type is None:
            entity.error("missing 'type'", ["type"], "INVALID_TYPE")
            return entity
        info = self.infos.get(str(entity.entity_type))
        if info is None:
            entity.error(f"Invalid entity type: {entity.entity_type}.", ["type"], "INVALID_TYPE")
            return entity
        if "project_id" not in info.properties:
            entity.error(
                f"{entity.entity_type} is not an entity that can be upload via the project endpoint.",
                ["id"],
                "INVALID_TYPE",
            )
            return entity
        entity.entity_id = doc.get("id")
        if role == "create" and entity.entity_id and not UUID_RE.match(str(entity.entity_id)):
            entity.error(
                "Cannot create entity with custom id that is not a UUID.", ["id"], "INVALID_VALUE"
            )
        if info.is_data_file and "urls" in doc:
            urls = doc.pop("urls")
            entity.urls = (
                [u.strip() for u in urls.split(",") if u.strip()]
                if isinstance(urls, str)
                else list(urls or [])
            )
        return entity

    def _validate_schema(self, entities: list[_Entity]) -> None:
        for entity in entities:
            if not entity.valid or entity.entity_type not in self.infos:
                continue
            info = self.infos[entity.entity_type]
            known = set(info.properties) | info.link_names
            for key in entity.doc:
                if key not in known:
                    entity.error(
                        f"Key '{key}' is not a valid property for type '{entity.entity_type}'.",
                        [key],
                        "INVALID_PROPERTY",
                    )
            doc = {k: v for k, v in entity.doc.items() if k in known}
            for violation in iter_violations(doc, self.validation[entity.entity_type]):
                if violation.keyword == "additionalProperties":
                    continue
                if violation.keyword == "required":
                    key = violation.message.split("'")[1]
                    kind = "MISSING_PROPERTY"
                else:
                    key = str(violation.path[0]) if violation.path else ""
                    kind = "INVALID_LINK" if key in info.link_names else "INVALID_VALUE"
                entity.error(violation.message, [key] if key else [], kind)

    def _instantiate(self, entity: _Entity, role: str, project_id: str) -> None:
        label = str(entity.entity_type)
        info = self.infos[label]
        props = {
            k: v for k, v in entity.doc.items() if k in info.properties and k not in {"type", "id"}
        }
        lookup = {**props, "project_id": project_id}
        existing = self.nodes.get(str(entity.entity_id)) if entity.entity_id else None
        if existing is None:
            existing = self._find(label, lookup)
        if existing is not None and entity.entity_id and existing.id != entity.entity_id:
            entity.error(
                f"Existing {existing.label} entity found with id different from {entity.entity_id}",
                type="NOT_UNIQUE",
            )
            return
        if existing is not None and existing.label != label:
            entity.error(
                f"Existing {existing.label} entity found with type different from {label}",
                type="NOT_UNIQUE",
            )
            return
        if existing is not None and role == "create":
            entity.error(
                "Cannot create entity that already exists. Try updating entity (PUT instead of POST)",
                ["id"],
                "NOT_UNIQUE",
            )
            return
        if existing is not None and existing.props.get("project_id") != project_id:
            entity.error(
                f"Entity is owned by project {existing.props.get('project_id')}, not {project_id}",
                type="INVALID_PERMISSIONS",
            )
            return
        for key in info.system_properties - {
            "id",
            "type",
            "project_id",
            "created_datetime",
            "updated_datetime",
        }:
            if key in props:
                current = existing.props.get(key) if existing else None
                if props[key] != current:
                    entity.warn(
                        f"Property '{key}' ({props[key]}) is a system property and will be ignored.",
                        [key],
                        type="INVALID_PROPERTY",
                    )
                props.pop(key)
        for key in ("created_datetime", "updated_datetime"):
            props.pop(key, None)
        if existing is None:
            entity.action = "create"
            entity.entity_id = entity.entity_id or str(uuid.uuid4())
            base: dict[str, Any] = {}
            for key in info.system_properties:
                default = (
                    info.properties.get(key, {}).get("default")
                    if isinstance(info.properties.get(key), dict)
                    else None
                )
                if default is not None:
                    base[key] = default
            node = GraphNode(
                str(entity.entity_id), label, {**base, **props, "project_id": project_id}
            )
        else:
            entity.action = "update"
            entity.existing = existing
            entity.entity_id = existing.id
            node = GraphNode(
                existing.id,
                label,
                {**existing.props, **props},
                copy.deepcopy(existing.links),
                dict(existing.sysan),
            )
        for key, value in list(node.props.items()):
            if value is None and key not in info.system_properties:
                node.props.pop(key)
        entity.node = node

    def _link(
        self,
        entity: _Entity,
        program: str,
        code: str,
        project_id: str,
        planned: Mapping[str, _Entity],
    ) -> None:
        assert entity.node is not None
        info = self.infos[entity.node.label]
        for link in info.links:
            if link.name not in entity.doc:
                continue
            value = entity.doc[link.name]
            items = [value] if isinstance(value, Mapping) else list(value or [])
            targets: list[str] = []
            for item in items:
                if not isinstance(item, Mapping):
                    continue
                found = self._resolve_link(link.target_type, item, program, project_id, planned)
                other_project = (
                    link.target_type == "project"
                    and found is not None
                    and self.nodes[found].props.get("code") != code
                )
                if other_project:
                    assert found is not None
                    entity.error(
                        f"Cannot link entity to project {self.nodes[found].props.get('code')} "
                        f"under {code} endpoint",
                        type="INVALID_PERMISSIONS",
                    )
                    continue
                if found is None:
                    message = f"No link destination found for {link.name}"
                    if item.get("id"):
                        message += f", id='{item['id']}'"
                    keys = self.unique_keys_of(link.target_type, {**item, "project_id": project_id})
                    message += f", unique_keys='{keys}'"
                    entity.error(message, [link.name], "INVALID_LINK")
                    continue
                if found not in targets:
                    targets.append(found)
            entity.node.links[link.name] = targets

    def _resolve_link(
        self,
        target_type: str,
        item: Mapping[str, Any],
        program: str,
        project_id: str,
        planned: Mapping[str, _Entity],
    ) -> str | None:
        target_id = item.get("id")
        if target_id:
            if target_id in planned and planned[target_id].entity_type == target_type:
                return str(target_id)
            node = self.nodes.get(str(target_id))
            return node.id if node is not None and node.label == target_type else None
        if target_type == "project":
            node = self.project(program, str(item.get("code", "")))
            return node.id if node is not None else None
        if target_type == "program":
            node = self.program(str(item.get("name", "")))
            return node.id if node is not None else None
        props = {**item, "project_id": project_id}
        for candidate in planned.values():
            if candidate.entity_type == target_type and candidate.node is not None:
                keys = self.infos[target_type].secondary_keys
                if any(
                    all(candidate.node.props.get(k) == props.get(k) for k in ks)
                    for ks in keys
                    if all(props.get(k) is not None for k in ks)
                ):
                    return candidate.node.id
        node = self._find(target_type, props)
        return node.id if node is not None else None

    def _check_data_file(self, entity: _Entity) -> None:
        assert entity.node is not None
        props = entity.node.props
        object_id = props.get("object_id")
        if object_id:
            record = self.index.records.get(str(object_id))
            if record is None:
                entity.error(
                    f"Unable to find object_id {object_id} in the index service.",
                    ["object_id"],
                    "NOT_FOUND",
                )
                return
            md5 = record["hashes"].get("md5")
            if (md5 and md5 != props.get("md5sum")) or (
                record["size"] is not None and record["size"] != props.get("file_size")
            ):
                entity.error(
                    f"Provided object_id {object_id} does not match the md5sum and file_size of the "
                    "record in the index service.",
                    ["object_id", "md5sum", "file_size"],
                    "INVALID_VALUE",
                )

    def _commit(self, entity: _Entity, program: str, code: str) -> None:
        node = entity.node
        assert node is not None
        now = _now()
        if entity.action == "create":
            node.props.setdefault("created_datetime", now)
        node.props["updated_datetime"] = now
        if self.infos[node.label].is_data_file:
            self._register_file(node, entity.urls, program, code)
        self.nodes[node.id] = node

    def _register_file(
        self, node: GraphNode, urls: list[str] | None, program: str, code: str
    ) -> None:
        props = node.props
        object_id = props.get("object_id")
        authz = [f"/programs/{program}/projects/{code}"]
        if object_id and object_id in self.index.records:
            record = self.index.records[object_id]
            if not record["hashes"]:
                self.index.fill(
                    str(object_id), hashes={"md5": props["md5sum"]}, size=props["file_size"],
                    urls=urls if urls else None,
                )  # fmt: skip
            return
        for record in self.index.records.values():
            if record["hashes"].get("md5") == props.get("md5sum") and record["size"] == props.get(
                "file_size"
            ):
                props["object_id"] = record["did"]
                return
        body = {
            "did": node.id,
            "form": "object",
            "size": props.get("file_size"),
            "hashes": {"md5": props.get("md5sum")},
            "urls": urls or [],
            "file_name": props.get("file_name"),
            "acl": [],
            "authz": authz,
        }
        self.index.create(body)
        props["object_id"] = node.id

    # -- deletion ------------------------------------------------------------------------------------
    def delete(
        self, program: str, code: str, ids: list[str], *, to_delete: bool | None = None
    ) -> tuple[int, dict[str, Any]]:
        """``DELETE .../entities/<ids>``: delete (no cascade)."""
        self.require_project(program, code)
        project_id = f"{program}-{code}"
        self._transactions += 1
        entities: list[_Entity] = []
        doomed = {
            i
            for i in ids
            if i in self.nodes and self.nodes[i].props.get("project_id") == project_id
        }
        for node_id in ids:
            node = self.nodes.get(node_id)
            if node is None or node.props.get("project_id") != project_id:
                missing = _Entity(doc={}, action="delete")
                missing.error("Entity not found.", ["id"], "NOT_FOUND", id=node_id)
                entities.append(missing)
                continue
            entity = _Entity(
                doc={}, entity_type=node.label, entity_id=node.id, action="delete", node=node
            )
            dependents = self._dependents(node, doomed)
            if dependents:
                entity.error(
                    f"Unable to delete entity because {len(dependents)} others directly or indirectly "
                    "depend on it. You can only delete this entity by deleting its dependents prior "
                    "to, or during the same transaction as this one.",
                    [],
                    "INVALID_LINK",
                    dependents=[{"id": d.id, "type": d.label} for d in dependents],
                )
            entities.append(entity)
        success = all(e.valid for e in entities) and bool(entities)
        if success:
            for node_id in doomed:
                if to_delete is None:
                    del self.nodes[node_id]
                else:
                    self.nodes[node_id].sysan["to_delete"] = to_delete
        dependent_ids = ",".join(
            d["id"] for e in entities for err in e.errors for d in err.get("dependents", [])
        )
        status = 200 if success else 400
        body: dict[str, Any] = {
            "transaction_id": self._transactions,
            "success": success,
            "entity_error_count": sum(1 for e in entities if not e.valid),
            "transactional_error_count": 0,
            "entities": [
                {
                    "valid": e.valid,
                    "action": "delete",
                    "type": e.entity_type,
                    "id": e.entity_id,
                    "errors": e.errors,
                    "warnings": [],
                    "unique_keys": self.unique_keys_of(e.node.label, e.node.props)
                    if e.node
                    else [],
                }
                for e in entities
            ],
            "code": status,
            "message": f"Successfully deleted {len(entities)} entities"
            if success
            else "Deletion transaction failed.",
            "transactional_errors": [],
            "deleted_entity_count": len(entities) if success else 0,
            "dependent_ids": dependent_ids,
        }
        return status, body

    def _dependents(self, node: GraphNode, doomed: set[str]) -> list[GraphNode]:
        found: dict[str, GraphNode] = {}
        stack = [node]
        while stack:
            current = stack.pop()
            for child in self.children(current):
                if child.id not in doomed and child.id not in found:
                    found[child.id] = child
                    stack.append(child)
        return list(found.values())

    # -- TSV -----------------------------------------------------------------------------------------
    def parse_tsv(self, text: str) -> list[dict[str, Any]]:
        """Turn a TSV submission into entity documents, as sheepdog's converter does."""
        rows = list(csv.reader(io.StringIO(text), delimiter="\t"))
        if not rows:
            return []
        header = [h.strip().lstrip("*") for h in rows[0]]
        docs: list[dict[str, Any]] = []
        for row in rows[1:]:
            if not any(cell.strip() for cell in row):
                continue
            values = dict(zip(header, row, strict=False))
            label = values.get("type", "").strip()
            info = self.infos.get(label)
            doc: dict[str, Any] = {}
            for column, raw in values.items():
                value = raw.strip()
                if not column or value == "":
                    continue
                if "." in column:
                    link, _, key = column.partition(".")
                    key = key.split("#", 1)[0]
                    parts = [p.strip() for p in value.split(",") if p.strip()]
                    existing = doc.setdefault(link, [])
                    for i, part in enumerate(parts):
                        if i < len(existing):
                            existing[i][key] = part
                        else:
                            existing.append({key: part})
                    continue
                doc[column] = self._convert(info, column, value)
            docs.append(doc)
        return docs

    @staticmethod
    def _convert(info: NodeInfo | None, column: str, value: str) -> Any:
        prop = info.properties.get(column) if info else None
        if not isinstance(prop, dict):
            return value
        types = prop.get("type", [])
        types = types if isinstance(types, list) else [types]
        if "array" in types:
            return [v.strip() for v in value.split(",")]
        try:
            if "integer" in types:
                return int(value)
            if "number" in types:
                return float(value)
        except ValueError:
            return value
        if "boolean" in types and value.lower() in ("true", "false"):
            return value.lower() == "true"
        return value

    # -- export --------------------------------------------------------------------------------------
    def _template(self, label: str, exclude_id: bool) -> tuple[list[str], list[str]]:
        """(non-link columns, link columns) of a node type's TSV template."""
        info = self.infos[label]
        ordered = ["type", "id"]
        ordered += sorted({k for keys in info.unique_keys for k in keys if k not in ordered})
        remaining = set(info.properties) - set(ordered)
        links = sorted(k for k in remaining if k in info.link_names)
        required = sorted(k for k in remaining if k not in info.link_names and k in info.required)
        optional = sorted(
            k for k in remaining if k not in info.link_names and k not in info.required
        )
        non_link: list[str] = []
        link_cols: list[str] = []
        for key in [*ordered, *links, *required, *optional]:
            hidden = (key in info.system_properties and key not in _HIDDEN_FROM_TEMPLATES) or (
                exclude_id and key == "id"
            )
            if hidden:
                continue
            if key in info.link_names:
                target = self.infos[info.link(key).target_type]
                aliases = [] if exclude_id else ["id"]
                for keys in target.secondary_keys:
                    aliases += [k for k in keys if k != "project_id"]
                    break
                link_cols += [f"{key}.{a}" for a in aliases]
            else:
                non_link.append(key)
        return non_link, link_cols

    def _value(self, node: GraphNode, key: str) -> Any:
        if key == "type":
            return node.label
        if key == "id":
            return node.id
        if key == "project_id" and node.label == "project":
            return self.project_id_of(node)
        return node.props.get(key)

    def _link_values(
        self, node: GraphNode, link_cols: list[str]
    ) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for column in link_cols:
            link, _, alias = column.partition(".")
            key = "node_id" if alias == "id" else alias
            targets = self.links_out(node, link)
            entries = out.setdefault(link, [{} for _ in targets])
            for entry, target in zip(entries, targets, strict=True):
                entry[key] = target.id if alias == "id" else target.props.get(alias)
        return out

    @staticmethod
    def _cell(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, list):
            return ",".join(str(v) for v in value)
        return str(value)

    def _tsv(self, label: str, nodes: list[GraphNode], exclude_id: bool, sep: str = "\t") -> str:
        non_link, link_cols = self._template(label, exclude_id)
        out = io.StringIO()
        out.write(sep.join(non_link + link_cols) + "\n")
        for node in nodes:
            links = self._link_values(node, link_cols)
            cells = [self._cell(self._value(node, k)) for k in non_link]
            for column in link_cols:
                link, _, alias = column.partition(".")
                key = "node_id" if alias == "id" else alias
                cells.append(
                    ",".join(
                        str(e.get(key)) for e in links.get(link, []) if e.get(key) not in (None, "")
                    )
                )
            out.write(sep.join(cells) + "\n")
        return out.getvalue()

    def export(
        self,
        program: str,
        code: str,
        *,
        ids: list[str] | None,
        node_label: str | None,
        file_format: str,
        with_children: bool = False,
        category: str | None = None,
        without_id: bool = False,
    ) -> tuple[bytes, str, str]:
        """Sheepdog's export: ``(body, content type, file name)``."""
        project_id = f"{program}-{code}"
        file_format = (file_format or "tsv").lower()
        if file_format not in ("json", "tsv", "csv"):
            raise ApiError(
                400, f"Format {file_format} is not supported; supported formats are: json,tsv,csv."
            )
        mimetype = "application/json" if file_format == "json" else "application/octet-stream"
        sep = "," if file_format == "csv" else "\t"
        if not ids:
            if not node_label:
                raise ApiError(400, "expected either `ids` or `node_label` parameter")
            if node_label not in self.infos:
                raise ApiError(400, f"dictionary does not have node with type {node_label}")
            if self.infos[node_label].category == "internal":
                raise ApiError(400, "cannot export node with category `internal`")
            nodes = [n for n in self.nodes_of(node_label) if self.project_id_of(n) == project_id]
            filename = f"{node_label}.{file_format}"
            if file_format == "json":
                non_link, link_cols = self._template(node_label, without_id)
                data = []
                for node in nodes:
                    obj = {k: self._value(node, k) for k in non_link}
                    obj = {k: v for k, v in obj.items() if v is not None}
                    obj.update({k: v for k, v in self._link_values(node, link_cols).items() if v})
                    data.append(obj)
                body = '{ "data": [' + ",".join(json.dumps(o) for o in data) + "]}"
                return body.encode(), mimetype, filename
            return self._tsv(node_label, nodes, without_id, sep).encode(), mimetype, filename
        nodes = [
            self.nodes[i]
            for i in ids
            if i in self.nodes and self.project_id_of(self.nodes[i]) == project_id
        ]
        if not nodes:
            raise ApiError(404, f"Unable to find {', '.join(ids)}")
        if with_children:
            stack = list(nodes)
            while stack:
                for child in self.children(stack.pop()):
                    if child not in nodes and self.project_id_of(child) == project_id:
                        if not category or self.infos[child.label].category == category:
                            nodes.append(child)
                        stack.append(child)
        by_label: dict[str, list[GraphNode]] = {}
        for node in nodes:
            by_label.setdefault(node.label, []).append(node)
        sha = hashlib.sha512(",".join(n.id for n in nodes).encode()).hexdigest()
        if file_format == "json":
            entities = []
            for label, group in by_label.items():
                non_link, link_cols = self._template(label, without_id)
                for node in group:
                    entity: dict[str, Any] = {"id": node.id}
                    entity.update(self._link_values(node, link_cols))
                    entity.update({k: self._value(node, k) for k in non_link})
                    entities.append(entity)
            filename = (
                f"{next(iter(by_label))}.json" if len(by_label) == 1 else f"gdc_export_{sha}.json"
            )
            return (
                json.dumps(entities, indent=2, separators=(", ", ": ")).encode(),
                mimetype,
                filename,
            )
        if len(by_label) == 1:
            label, group = next(iter(by_label.items()))
            return (
                self._tsv(label, group, without_id, sep).encode(),
                mimetype,
                f"{label}.{file_format}",
            )
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for label, group in by_label.items():
                content = self._tsv(label, group, without_id, sep).encode()
                info = tarfile.TarInfo(name=f"{label}.{file_format}")
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
        return buffer.getvalue(), mimetype, f"gdc_export_{sha}.tar.gz"
