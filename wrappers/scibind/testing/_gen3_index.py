"""The indexd part of the fake Gen3 commons: records, revisions, versions, keyset listing, URL queries.

Writes are authorized the way indexd does with Fence tokens (an ``Authorizer`` answers arborist's question
"may the caller do <method> on these resources"); a refusal answers ``denied_status`` with indexd's
``Permission denied.`` (401 in current indexd, which reports arborist refusals as an authorization error;
older releases answered 403).
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["Authorizer", "IndexStore", "IndexdError"]

Authorizer = Callable[[str, Sequence[str]], bool]
"""``can(method, resources)``: may the caller do ``method`` on every one of ``resources`` (service indexd)."""

_HASH_PATTERNS = {
    "md5": re.compile(r"^[0-9a-f]{32}$"),
    "sha1": re.compile(r"^[0-9a-f]{40}$"),
    "sha256": re.compile(r"^[0-9a-f]{64}$"),
    "sha512": re.compile(r"^[0-9a-f]{128}$"),
    "crc": re.compile(r"^[0-9a-f]{8}$"),
    "etag": re.compile(r"^[0-9a-f]{32}(-\d+)?$"),
}
_CREATE_FIELDS = {
    "did", "baseid", "form", "size", "file_name", "version", "uploader", "description", "hashes",
    "urls", "urls_metadata", "acl", "authz", "metadata", "content_created_date",
    "content_updated_date",
}  # fmt: skip
_UPDATE_FIELDS = {
    "file_name", "version", "description", "urls", "urls_metadata", "acl", "authz", "metadata",
    "content_created_date", "content_updated_date",
}  # fmt: skip
_LIST_ECHO = ("file_name", "version", "size", "urls", "acl", "authz", "hashes", "metadata")


@dataclass
class IndexdError(Exception):
    """An indexd error: HTTP status and the ``error`` message of the JSON body."""

    status: int
    message: str

    def __str__(self) -> str:
        return self.message


def _now() -> str:
    return datetime.now(UTC).replace(tzinfo=None).isoformat()


def _rev() -> str:
    return uuid.uuid4().hex[:8]


def _validate_hashes(hashes: Any) -> dict[str, str]:
    if not isinstance(hashes, Mapping):
        raise IndexdError(400, f"{hashes!r} is not of type 'object'")
    for name, value in hashes.items():
        pattern = _HASH_PATTERNS.get(name)
        if not isinstance(value, str) or (pattern is not None and not pattern.match(value)):
            raise IndexdError(400, f"{value!r} is not a valid {name} hash")
    return dict(hashes)


def _string_list(body: Mapping[str, Any], name: str) -> list[str]:
    value = body.get(name, [])
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise IndexdError(400, f"{value!r} is not of type 'array' of strings ({name})")
    return list(value)


def _unexpected(body: Mapping[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(body) - allowed)
    if extra:
        listed = ", ".join(repr(k) for k in extra)
        verb = "was" if len(extra) == 1 else "were"
        raise IndexdError(
            400, f"Additional properties are not allowed ({listed} {verb} unexpected)"
        )


class IndexStore:
    """indexd records, as the real service stores and returns them.

    ``on_change`` is called with the GUID after every create, update or delete (the fake uses it to keep
    graph data file nodes and storage in step).
    """

    def __init__(self, guid_prefix: str = "") -> None:
        self.guid_prefix = guid_prefix
        self.records: dict[str, dict[str, Any]] = {}
        self.aliases: dict[str, str] = {}
        self.on_change: Callable[[str], None] | None = None
        self.denied_status = 401

    def _authorize(self, can: Authorizer | None, method: str, resources: Sequence[str]) -> None:
        if can is not None and not can(method, list(resources)):
            raise IndexdError(self.denied_status, "Permission denied.")

    # -- helpers ---------------------------------------------------------------------------------
    def mint_guid(self) -> str:
        """A new GUID with the configured prefix."""
        return f"{self.guid_prefix}{uuid.uuid4()}"

    def get(self, guid: str) -> dict[str, Any]:
        """The stored record (not a copy); raises a 404 error when unknown."""
        record = self.records.get(guid)
        if record is None:
            raise IndexdError(404, "no record found")
        return record

    def document(self, guid: str) -> dict[str, Any]:
        """A copy of the record as the API returns it."""
        return copy.deepcopy(self.get(guid))

    def _changed(self, guid: str) -> None:
        if self.on_change is not None:
            self.on_change(guid)

    def _new_record(self, did: str, baseid: str, **fields: Any) -> dict[str, Any]:
        now = _now()
        record: dict[str, Any] = {
            "did": did,
            "baseid": baseid,
            "rev": _rev(),
            "form": None,
            "size": None,
            "file_name": None,
            "version": None,
            "uploader": None,
            "description": None,
            "hashes": {},
            "urls": [],
            "urls_metadata": {},
            "acl": [],
            "authz": [],
            "metadata": {},
            "created_date": now,
            "updated_date": now,
            "content_created_date": None,
            "content_updated_date": None,
        }
        record.update(fields)
        return record

    # -- writes ----------------------------------------------------------------------------------
    def create(
        self, body: Any, *, baseid: str | None = None, can: Authorizer | None = None
    ) -> dict[str, Any]:
        """``POST /index/`` (or a new version when ``baseid`` is given): ``create`` on the record's authz."""
        if not isinstance(body, Mapping):
            raise IndexdError(400, "body is not a JSON object")
        _unexpected(body, _CREATE_FIELDS)
        for name in ("form", "size", "hashes", "urls"):
            if name not in body:
                raise IndexdError(400, f"'{name}' is a required property")
        if body["form"] not in ("object", "container", "multipart"):
            raise IndexdError(
                400, f"{body['form']!r} is not one of ['object', 'container', 'multipart']"
            )
        size = body["size"]
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise IndexdError(400, f"{size!r} is not a valid size")
        hashes = _validate_hashes(body["hashes"])
        if not hashes:
            raise IndexdError(400, "at least one hash is required")
        if baseid is None:
            self._authorize(can, "create", _string_list(body, "authz"))
        did = body.get("did") or self.mint_guid()
        if did in self.records:
            raise IndexdError(409, f"did {did} already exists")
        base = baseid or body.get("baseid") or str(uuid.uuid4())
        fields = {k: copy.deepcopy(v) for k, v in body.items() if k not in {"did", "baseid"}}
        fields["hashes"] = hashes
        fields["urls"] = _string_list(body, "urls")
        fields["acl"] = _string_list(body, "acl")
        fields["authz"] = _string_list(body, "authz")
        record = self._new_record(did, base, **fields)
        self.records[did] = record
        self._changed(did)
        return self.ref(did)

    def create_blank(
        self, body: Any, *, did: str | None = None, can: Authorizer | None = None
    ) -> dict[str, Any]:
        """``POST /index/blank/``: a record with only uploader, file name and authz (``create`` on the
        authz, or ``file_upload`` on ``/data_file`` without one)."""
        if not isinstance(body, Mapping):
            raise IndexdError(400, "body is not a JSON object")
        _unexpected(body, {"uploader", "file_name", "authz", "did"})
        authz = _string_list(body, "authz")
        if authz:
            self._authorize(can, "create", authz)
        else:
            self._authorize(can, "file_upload", ["/data_file"])
        did = did or body.get("did") or self.mint_guid()
        if did in self.records:
            raise IndexdError(409, f"did {did} already exists")
        record = self._new_record(
            did,
            str(uuid.uuid4()),
            uploader=body.get("uploader"),
            file_name=body.get("file_name"),
            authz=_string_list(body, "authz"),
        )
        self.records[did] = record
        self._changed(did)
        return self.ref(did)

    def add_version(self, guid: str, body: Any, *, can: Authorizer | None = None) -> dict[str, Any]:
        """``POST /index/<guid>``: a new record sharing ``guid``'s base id (``update`` on old and new authz)."""
        record = self.get(guid)
        new_authz = _string_list(body, "authz") if isinstance(body, Mapping) else []
        self._authorize(can, "update", [*record["authz"], *new_authz])
        return self.create(body, baseid=record["baseid"])

    def update(
        self, guid: str, rev: str | None, body: Any, *, can: Authorizer | None = None
    ) -> dict[str, Any]:
        """``PUT /index/<guid>?rev=``: change the mutable fields (``update`` on the old and new authz)."""
        record = self.get(guid)
        if not isinstance(body, Mapping):
            raise IndexdError(400, "body is not a JSON object")
        _unexpected(body, _UPDATE_FIELDS)
        if rev != record["rev"]:
            raise IndexdError(409, "revision mismatch")
        self._authorize(can, "update", [*record["authz"], *_string_list(body, "authz")])
        for name in ("urls", "acl", "authz"):
            if name in body:
                record[name] = _string_list(body, name)
        for name in body.keys() - {"urls", "acl", "authz"}:
            record[name] = copy.deepcopy(body[name])
        self._touch(record)
        self._changed(guid)
        return self.ref(guid)

    def update_blank(
        self, guid: str, rev: str | None, body: Any, *, can: Authorizer | None = None
    ) -> dict[str, Any]:
        """``PUT /index/blank/<guid>?rev=``: fill hashes, size, URLs (and authz) of a blank record.

        In indexd's order: an unknown GUID is 404; a record that already has a size or hashes is refused
        with 400 before the revision is looked at; then a stale ``rev`` is 409; then the caller needs
        ``update`` on the old and new authz (when the body sets authz), else ``file_upload`` on
        ``/data_file``.
        """
        record = self.get(guid)
        if record["size"] or record["hashes"]:
            raise IndexdError(400, "update api is not supported for non-empty record!")
        if rev != record["rev"]:
            raise IndexdError(409, "revision mismatch")
        if not isinstance(body, Mapping):
            raise IndexdError(400, "body is not a JSON object")
        _unexpected(body, {"size", "hashes", "urls", "authz"})
        for name in ("size", "hashes"):
            if name not in body:
                raise IndexdError(400, f"'{name}' is a required property")
        new_authz = _string_list(body, "authz")
        if can is not None:
            allowed = bool(new_authz) and can("update", [*record["authz"], *new_authz])
            if not allowed:
                self._authorize(can, "file_upload", ["/data_file"])
        self.fill(guid, hashes=_validate_hashes(body["hashes"]), size=body["size"],
                  urls=_string_list(body, "urls") or None,
                  authz=new_authz if "authz" in body else None)  # fmt: skip
        return self.ref(guid)

    def fill(
        self,
        guid: str,
        *,
        hashes: Mapping[str, str],
        size: int,
        urls: list[str] | None = None,
        authz: list[str] | None = None,
    ) -> None:
        """Complete a blank record (what indexing after an upload does)."""
        record = self.get(guid)
        record["hashes"] = dict(hashes)
        record["size"] = size
        record["form"] = record.get("form") or "object"
        if urls is not None:
            record["urls"] = list(urls)
        if authz is not None:
            record["authz"] = list(authz)
        self._touch(record)
        self._changed(guid)

    def delete(self, guid: str, rev: str | None, *, can: Authorizer | None = None) -> None:
        """``DELETE /index/<guid>?rev=`` (``delete`` on the record's authz)."""
        if rev is None:
            raise IndexdError(400, "no revision specified")
        record = self.get(guid)
        if rev != record["rev"]:
            raise IndexdError(409, "revision mismatch")
        self._authorize(can, "delete", record["authz"])
        self.remove(guid)

    def remove(self, guid: str) -> None:
        """Delete without a revision check (Fence and the fake's own helpers)."""
        self.records.pop(guid, None)
        for alias in [a for a, did in self.aliases.items() if did == guid]:
            del self.aliases[alias]
        self._changed(guid)

    def _touch(self, record: dict[str, Any]) -> None:
        record["rev"] = _rev()
        record["updated_date"] = _now()

    def ref(self, guid: str) -> dict[str, Any]:
        """``{did, rev, baseid}`` as the write endpoints answer."""
        record = self.get(guid)
        return {"did": record["did"], "rev": record["rev"], "baseid": record["baseid"]}

    # -- reads -----------------------------------------------------------------------------------
    def versions(self, guid: str) -> list[dict[str, Any]]:
        """All records sharing ``guid``'s base id (``guid`` may be the base id), oldest first."""
        record = self.records.get(guid)
        baseid = record["baseid"] if record else guid
        found = [r for r in self.records.values() if r["baseid"] == baseid]
        if not found:
            raise IndexdError(404, "no record found")
        return [
            copy.deepcopy(r) for r in sorted(found, key=lambda r: (r["created_date"], r["did"]))
        ]

    def resolve(self, name: str) -> dict[str, Any]:
        """Global lookup: a GUID or an alias."""
        if name in self.records:
            return self.document(name)
        if name in self.aliases:
            return self.document(self.aliases[name])
        raise IndexdError(404, "no record found")

    def bulk(self, ids: Any) -> list[dict[str, Any]]:
        """``POST /bulk/documents``."""
        if not ids:
            raise IndexdError(400, "No ids provided")
        if not isinstance(ids, list):
            raise IndexdError(400, "ids is not a list")
        return [self.document(i) for i in ids if isinstance(i, str) and i in self.records]

    def query_urls(self, args: Mapping[str, str]) -> list[dict[str, Any]]:
        """``GET /_query/urls/q``: records (``did``, ``urls``) whose comma-joined URLs contain ``include``
        and not ``exclude``, optionally only (un)versioned ones, ordered by GUID, ``offset``/``limit``."""
        known = {"include", "exclude", "versioned", "offset", "limit", "fields"}
        extra = sorted(set(args) - known)
        if extra:
            raise IndexdError(400, f"Unexpected query parameter(s) {extra}")
        try:
            offset, limit = int(args.get("offset", 0)), int(args.get("limit", 1000))
        except ValueError:
            raise IndexdError(400, "offset and limit must be integers") from None
        raw = args.get("versioned")
        versioned = raw.lower() in ("true", "t", "yes", "y") if raw else None
        include, exclude = args.get("include"), args.get("exclude")
        fields = set(args.get("fields", "did,urls").split(","))
        found = []
        for did in sorted(self.records):
            record = self.records[did]
            if not record["urls"]:
                continue
            joined = ",".join(record["urls"])
            if versioned is not None and (record["version"] is not None) != versioned:
                continue
            if include and include not in joined:
                continue
            if exclude and exclude in joined:
                continue
            found.append(record)
        out = []
        for record in found[offset : offset + limit]:
            row: dict[str, Any] = {}
            if "did" in fields:
                row["did"] = record["did"]
            if "urls" in fields:
                row["urls"] = list(record["urls"])
            out.append(row)
        return out

    def list(self, args: Mapping[str, list[str]]) -> dict[str, Any]:
        """``GET /index/`` with indexd's query parameters (``args`` maps names to all their values)."""

        def one(name: str) -> str | None:
            values = args.get(name)
            return values[0] if values else None

        try:
            limit = int(one("limit") or 100)
        except ValueError:
            raise IndexdError(400, "limit must be an integer") from None
        if limit < 0 or limit > 1024:
            raise IndexdError(400, "limit must be between 0 and 1024")
        page_raw = one("page")
        try:
            page = int(page_raw) if page_raw is not None else None
        except ValueError:
            raise IndexdError(400, "page must be an integer") from None
        if page is not None and page < 0:
            raise IndexdError(400, "page must be a positive integer")
        size_raw = one("size")
        try:
            size = int(size_raw) if size_raw is not None else None
        except ValueError:
            raise IndexdError(400, "size must be an integer") from None
        hashes: dict[str, str] = {}
        for item in args.get("hash", []):
            name, sep, value = item.partition(":")
            if not sep:
                raise IndexdError(400, f"hash {item!r} is not of the form type:value")
            hashes[name] = value
        metadata: dict[str, str] = {}
        for item in args.get("metadata", []):
            name, sep, value = item.partition(":")
            if not sep:
                raise IndexdError(400, f"metadata {item!r} is not of the form key:value")
            metadata[name] = value
        urls = list(args.get("url", []))
        acl_raw, authz_raw = one("acl"), one("authz")
        acl = None if acl_raw is None else ([] if acl_raw == "null" else acl_raw.split(","))
        authz = None if authz_raw is None else ([] if authz_raw == "null" else authz_raw.split(","))
        file_name, version, uploader = one("file_name"), one("version"), one("uploader")
        start, ids_raw, form = one("start"), one("ids"), one("form")
        ids = ids_raw.split(",") if ids_raw else None

        def matches(r: Mapping[str, Any]) -> bool:
            if ids is not None and r["did"] not in ids:
                return False
            if size is not None and r["size"] != size:
                return False
            if any(r["hashes"].get(k) != v for k, v in hashes.items()):
                return False
            if any(u not in r["urls"] for u in urls):
                return False
            if acl is not None and (any(a not in r["acl"] for a in acl) or (not acl and r["acl"])):
                return False
            if authz is not None and (
                any(a not in r["authz"] for a in authz) or (not authz and r["authz"])
            ):
                return False
            if file_name is not None and r["file_name"] != file_name:
                return False
            if version is not None and r["version"] != version:
                return False
            if uploader is not None and r["uploader"] != uploader:
                return False
            if form not in (None, "all") and (r["form"] or "object") != form:
                return False
            return not any(str(r["metadata"].get(k)) != v for k, v in metadata.items())

        found = sorted((r for r in self.records.values() if matches(r)), key=lambda r: r["did"])
        if ids is None:
            if start is not None:
                found = [r for r in found if r["did"] > start]
            if page is not None:
                found = found[page * limit :]
            found = found[:limit]
        body: dict[str, Any] = {
            "ids": ids,
            "records": [copy.deepcopy(r) for r in found],
            "limit": limit,
            "start": start,
            "page": page,
        }
        echo = {"file_name": file_name, "version": version, "size": size, "urls": urls,
                "acl": acl, "authz": authz, "hashes": hashes, "metadata": metadata}  # fmt: skip
        body.update({k: echo[k] for k in _LIST_ECHO})
        return body

    def stats(self) -> dict[str, int]:
        """``GET /_stats``."""
        return {
            "fileCount": len(self.records),
            "totalFileSize": sum(r["size"] or 0 for r in self.records.values()),
        }
