"""Gen3 data dictionaries for the test kit: node metadata and a small built-in dictionary.

``$ref`` resolution (:func:`resolve_dictionary`, :class:`DictionaryError`, :func:`is_node_schema`) lives in
:mod:`scibind.gen3._dictionary` and is re-exported here.

:data:`BUILTIN_DICTIONARY` is the dictionary :class:`scibind.testing.gen3.FakeGen3Commons` serves and
validates submissions against: ``program``, ``project``, ``subject``, ``sample`` and a data file node,
``submitted_unaligned_reads``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scibind.gen3._dictionary import DictionaryError, is_node_schema, resolve_dictionary

__all__ = [
    "BUILTIN_DICTIONARY",
    "DATA_FILE_CATEGORIES",
    "DictionaryError",
    "LinkInfo",
    "NodeInfo",
    "is_node_schema",
    "node_infos",
    "resolve_dictionary",
]

#: Dictionary categories whose nodes describe data files (they carry md5sum, file_size, object_id).
DATA_FILE_CATEGORIES = frozenset(
    {"data_file", "metadata_file", "index_file", "analysis_file", "clinical_data_file"}
)


# -- resolution (lives in scibind.gen3: the codegen step uses it too) ----------------------------------

# -- node metadata -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkInfo:
    """One link from a node to a parent node type."""

    name: str
    backref: str
    target_type: str
    multiplicity: str
    required: bool
    label: str = ""

    @property
    def to_one(self) -> bool:
        """At most one target (``many_to_one`` / ``one_to_one``)."""
        return self.multiplicity in {"many_to_one", "one_to_one"}


@dataclass(frozen=True)
class NodeInfo:
    """What the fake needs to know about a node type, taken from its resolved schema."""

    name: str
    schema: dict[str, Any]
    category: str
    links: tuple[LinkInfo, ...]
    required: tuple[str, ...]
    unique_keys: tuple[tuple[str, ...], ...]
    system_properties: frozenset[str]
    properties: dict[str, Any] = field(default_factory=dict)

    @property
    def link_names(self) -> frozenset[str]:
        """Names of the outgoing links."""
        return frozenset(link.name for link in self.links)

    @property
    def is_data_file(self) -> bool:
        """True for data file nodes (their records live in indexd too)."""
        return self.category in DATA_FILE_CATEGORIES

    @property
    def secondary_keys(self) -> tuple[tuple[str, ...], ...]:
        """Unique key sets other than ``[id]``."""
        return tuple(keys for keys in self.unique_keys if tuple(keys) != ("id",))

    def link(self, name: str) -> LinkInfo:
        """The outgoing link called ``name``."""
        for link in self.links:
            if link.name == name:
                return link
        raise KeyError(name)


def _flatten_links(links: list[Any]) -> list[tuple[dict[str, Any], bool | None]]:
    out: list[tuple[dict[str, Any], bool | None]] = []
    for link in links:
        if "subgroup" in link:
            group_required = bool(link.get("required", False))
            for sub in _flatten_links(link["subgroup"]):
                out.append((sub[0], group_required and bool(sub[0].get("required", False))))
        else:
            out.append((link, None))
    return out


def node_infos(resolved: Mapping[str, dict[str, Any]]) -> dict[str, NodeInfo]:
    """:class:`NodeInfo` for every node of a resolved dictionary."""
    infos: dict[str, NodeInfo] = {}
    for name, schema in resolved.items():
        links = tuple(
            LinkInfo(
                name=link["name"],
                backref=link.get("backref", f"{name}s"),
                target_type=link["target_type"],
                multiplicity=link.get("multiplicity", "many_to_many"),
                required=bool(link.get("required", False)) if forced is None else forced,
                label=link.get("label", ""),
            )
            for link, forced in _flatten_links(schema.get("links", []))
        )
        infos[name] = NodeInfo(
            name=name,
            schema=schema,
            category=str(schema.get("category", "")),
            links=links,
            required=tuple(schema.get("required", [])),
            unique_keys=tuple(tuple(keys) for keys in schema.get("uniqueKeys", [["id"]])),
            system_properties=frozenset(schema.get("systemProperties", [])),
            properties=dict(schema.get("properties", {})),
        )
    return infos


# -- the built-in dictionary -------------------------------------------------------------------------

_UUID_PATTERN = "^[a-fA-F0-9]{8}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{12}$"

_DEFINITIONS: dict[str, Any] = {
    "id": "_definitions",
    "UUID": {
        "term": {"$ref": "_terms.yaml#/UUID"},
        "type": "string",
        "pattern": _UUID_PATTERN,
    },
    "datetime": {
        "oneOf": [{"type": "string", "format": "date-time"}, {"type": "null"}],
        "term": {"$ref": "_terms.yaml#/datetime"},
    },
    "foreign_key_project": {
        "type": "object",
        "additionalProperties": True,
        "properties": {"id": {"$ref": "#/UUID"}, "code": {"type": "string"}},
    },
    "to_one_project": {
        "anyOf": [
            {
                "type": "array",
                "items": {"$ref": "#/foreign_key_project"},
                "minItems": 1,
                "maxItems": 1,
            },
            {"$ref": "#/foreign_key_project"},
        ]
    },
    "foreign_key": {
        "type": "object",
        "additionalProperties": True,
        "properties": {"id": {"$ref": "#/UUID"}, "submitter_id": {"type": "string"}},
    },
    "to_one": {
        "anyOf": [
            {"type": "array", "items": {"$ref": "#/foreign_key"}, "maxItems": 1},
            {"$ref": "#/foreign_key"},
        ]
    },
    "to_many": {
        "anyOf": [
            {"type": "array", "items": {"$ref": "#/foreign_key"}, "minItems": 1},
            {"$ref": "#/foreign_key"},
        ]
    },
    "state": {
        "term": {"$ref": "_terms.yaml#/state"},
        "default": "validated",
        "enum": [
            "uploading",
            "uploaded",
            "md5summing",
            "md5summed",
            "validating",
            "error",
            "invalid",
            "suppressed",
            "redacted",
            "live",
            "validated",
            "submitted",
            "released",
        ],
    },
    "file_state": {
        "term": {"$ref": "_terms.yaml#/file_state"},
        "default": "registered",
        "enum": [
            "registered",
            "uploading",
            "uploaded",
            "validating",
            "validated",
            "submitted",
            "processing",
            "processed",
            "released",
            "error",
        ],
    },
    "project_id": {"term": {"$ref": "_terms.yaml#/project_id"}, "type": "string"},
    "ubiquitous_properties": {
        "type": {"type": "string"},
        "id": {"$ref": "#/UUID", "systemAlias": "node_id"},
        "submitter_id": {
            "type": ["string", "null"],
            "description": "A project-specific identifier for this entity.",
        },
        "state": {"$ref": "#/state"},
        "project_id": {"$ref": "#/project_id"},
        "created_datetime": {"$ref": "#/datetime"},
        "updated_datetime": {"$ref": "#/datetime"},
    },
    "data_file_properties": {
        "$ref": "#/ubiquitous_properties",
        "file_name": {"term": {"$ref": "_terms.yaml#/file_name"}, "type": "string"},
        "file_size": {"term": {"$ref": "_terms.yaml#/file_size"}, "type": "integer", "minimum": 0},
        "md5sum": {
            "term": {"$ref": "_terms.yaml#/md5sum"},
            "type": "string",
            "pattern": "^[a-f0-9]{32}$",
        },
        "object_id": {"term": {"$ref": "_terms.yaml#/object_id"}, "type": "string"},
        "file_state": {"$ref": "#/file_state"},
        "error_type": {
            "term": {"$ref": "_terms.yaml#/error_type"},
            "enum": ["file_size", "file_format", "md5sum"],
        },
    },
}

_TERMS: dict[str, Any] = {
    "id": "_terms",
    "UUID": {"description": "A 128-bit identifier, in canonical 8-4-4-4-12 hexadecimal form."},
    "datetime": {"description": "A date and time in ISO 8601 form."},
    "state": {"description": "The current state of the object."},
    "file_state": {"description": "The current state of the data file object."},
    "project_id": {"description": "The program name and project code joined by a hyphen."},
    "file_name": {"description": "The name (or part of a name) of a file (of any type)."},
    "file_size": {"description": "The size of the data file (object) in bytes."},
    "md5sum": {"description": "The 128-bit hash value expressed as a 32 digit hexadecimal number."},
    "object_id": {"description": "The GUID of the object in the index service."},
    "error_type": {"description": "Type of error for the data file object."},
    "data_category": {"description": "Broad categorization of the contents of the data file."},
    "data_format": {"description": "Format of the data files."},
    "data_type": {"description": "Specific content type of the data file."},
    "sample_type": {"description": "The type of material the sample was taken from."},
    "sex": {"description": "The biological sex of the subject."},
}

_SETTINGS: dict[str, Any] = {"id": "_settings", "enable_case_cache": False}

_SYSTEM = ["id", "project_id", "state", "created_datetime", "updated_datetime"]
_KEYS = [["id"], ["project_id", "submitter_id"]]


def _node(
    name: str,
    title: str,
    category: str,
    links: list[dict[str, Any]],
    required: list[str],
    properties: dict[str, Any],
    *,
    system: list[str] | None = None,
    unique_keys: list[list[str]] | None = None,
    base: str | None = "_definitions.yaml#/ubiquitous_properties",
) -> dict[str, Any]:
    props: dict[str, Any] = {"$ref": base} if base else {}
    props.update(properties)
    return {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "id": name,
        "title": title,
        "type": "object",
        "namespace": "https://scibind.invalid/fake-commons",
        "category": category,
        "program": "*",
        "project": "*",
        "description": f"{title} (scibind fake commons dictionary).",
        "additionalProperties": False,
        "submittable": True,
        "validators": None,
        "systemProperties": system if system is not None else list(_SYSTEM),
        "links": links,
        "required": required,
        "uniqueKeys": unique_keys if unique_keys is not None else [list(k) for k in _KEYS],
        "properties": props,
    }


_PROGRAM = _node(
    "program",
    "Program",
    "administrative",
    [],
    ["name", "dbgap_accession_number"],
    {
        "type": {"type": "string"},
        "id": {"$ref": "_definitions.yaml#/UUID", "systemAlias": "node_id"},
        "name": {"type": "string", "description": "Full name of the program."},
        "dbgap_accession_number": {
            "type": "string",
            "description": "The dbGaP accession number of the program.",
        },
    },
    system=["id"],
    unique_keys=[["id"], ["name"]],
    base=None,
)

_PROJECT = _node(
    "project",
    "Project",
    "administrative",
    [
        {
            "name": "programs",
            "backref": "projects",
            "label": "member_of",
            "target_type": "program",
            "multiplicity": "many_to_one",
            "required": True,
        }
    ],
    ["code", "name", "dbgap_accession_number", "programs"],
    {
        "type": {"type": "string"},
        "id": {"$ref": "_definitions.yaml#/UUID", "systemAlias": "node_id"},
        "name": {"type": "string"},
        "code": {"type": "string"},
        "dbgap_accession_number": {"type": "string"},
        "investigator_name": {"type": "string"},
        "availability_type": {"enum": ["Open", "Restricted"]},
        "state": {
            "default": "open",
            "enum": ["open", "review", "submitted", "processing", "closed", "legacy"],
        },
        "released": {"type": "boolean", "default": False},
        "programs": {"$ref": "_definitions.yaml#/to_one"},
    },
    system=["id", "state", "released"],
    unique_keys=[["id"], ["code"]],
    base=None,
)

_SUBJECT = _node(
    "subject",
    "Subject",
    "clinical",
    [
        {
            "name": "projects",
            "backref": "subjects",
            "label": "member_of",
            "target_type": "project",
            "multiplicity": "many_to_one",
            "required": True,
        }
    ],
    ["submitter_id", "type", "projects"],
    {
        "sex": {"term": {"$ref": "_terms.yaml#/sex"}, "enum": ["Female", "Male", "Unknown"]},
        "age_at_enrollment": {"type": "integer", "minimum": 0, "maximum": 130},
        "species": {"type": "string", "default": "Homo sapiens"},
        "projects": {"$ref": "_definitions.yaml#/to_one_project"},
    },
)

_SAMPLE = _node(
    "sample",
    "Sample",
    "biospecimen",
    [
        {
            "name": "subjects",
            "backref": "samples",
            "label": "derived_from",
            "target_type": "subject",
            "multiplicity": "many_to_one",
            "required": True,
        }
    ],
    ["submitter_id", "type", "subjects"],
    {
        "sample_type": {
            "term": {"$ref": "_terms.yaml#/sample_type"},
            "enum": ["Blood", "Saliva", "Tissue", "Cell Line", "Other"],
        },
        "tissue": {"type": "string"},
        "collection_days": {"type": "number"},
        "subjects": {"$ref": "_definitions.yaml#/to_one"},
    },
)

_READS = _node(
    "submitted_unaligned_reads",
    "Submitted Unaligned Reads",
    "data_file",
    [
        {
            "name": "samples",
            "backref": "submitted_unaligned_reads_files",
            "label": "data_from",
            "target_type": "sample",
            "multiplicity": "many_to_many",
            "required": True,
        }
    ],
    [
        "submitter_id",
        "type",
        "file_name",
        "file_size",
        "md5sum",
        "data_category",
        "data_format",
        "data_type",
        "samples",
    ],
    {
        "data_category": {
            "term": {"$ref": "_terms.yaml#/data_category"},
            "enum": ["Sequencing Reads"],
        },
        "data_format": {
            "term": {"$ref": "_terms.yaml#/data_format"},
            "enum": ["BAM", "FASTQ", "CRAM"],
        },
        "data_type": {"term": {"$ref": "_terms.yaml#/data_type"}, "enum": ["Unaligned Reads"]},
        "experimental_strategy": {"enum": ["WGS", "WXS", "RNA-Seq", "Other"]},
        "samples": {"$ref": "_definitions.yaml#/to_many"},
    },
    system=[*_SYSTEM, "file_state", "error_type"],
    base="_definitions.yaml#/data_file_properties",
)

#: The fake commons' dictionary in the form ``/_dictionary/_all`` serves it (``$ref``s intact).
BUILTIN_DICTIONARY: dict[str, Any] = {
    "_definitions": _DEFINITIONS,
    "_terms": _TERMS,
    "_settings": _SETTINGS,
    "program": _PROGRAM,
    "project": _PROJECT,
    "subject": _SUBJECT,
    "sample": _SAMPLE,
    "submitted_unaligned_reads": _READS,
}
