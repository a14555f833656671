"""A stateful fake of the MyTardis REST API (Tastypie, ``/api/v1/``).

It keeps users, groups, facilities, instruments, experiments (with access rules), datasets, datafiles and
their stored copies (replicas in storage boxes), schemas, parameter names, and the parameter sets of
experiments, datasets and datafiles, and answers the way MyTardis 4 does:

* lists are paged with ``limit``/``offset`` (default 20, ``0`` or too large means the maximum, 1000),
  filtered with Tastypie filters (``title``, ``experiments__id``, ``dataset__id``, ``directory__startswith``,
  ``schema__namespace``...) and sorted with ``order_by``; the answer is ``{"meta": {...}, "objects": [...]}``
  and ``meta.next`` / ``meta.previous`` are ``/api/v1/<resource>/?...`` links or ``null``;
* no ``Authorization`` header means anonymous: public data only, never a 401 challenge; ``Basic`` and
  ``ApiKey user:key`` credentials are checked and wrong ones give 401 with an empty body;
* ``POST`` answers 201 with the new object's URI in ``Location`` (and the object for resources with
  ``always_return_data``); parameter sets can be given inline as
  ``{"schema": "<namespace or URI>", "parameters": [{"name": ..., "value": ...}]}``;
* datafiles are registered three ways: a multipart upload (``json_data`` + ``attached_file`` in either
  order, since Django parses the whole body first; parts are delimited by CRLF + ``--boundary``; the bytes
  are stored and checked against ``md5sum`` and ``size``, and a mismatch leaves the replica unverified), staging (no replicas: the body of the 201 is the path to copy the
  file to; ``GET .../verify/`` checks it afterwards), or shared storage (``replicas`` naming files already
  in a storage box; checked at once);
* errors are Tastypie's: 400 ``{"error": ...}`` for bad paging, filters or missing fields,
  ``{"error_message": ...}`` (plus ``traceback`` when ``debug=True``) for failures such as an unknown
  schema, and empty 401/403/404 bodies where Tastypie sends those.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import traceback
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode

import httpx

from scibind.testing._base import FakeService, json_response, route

__all__ = [
    "DEFAULT_PERMISSIONS",
    "PUBLIC_ACCESS_EMBARGO",
    "PUBLIC_ACCESS_FULL",
    "PUBLIC_ACCESS_METADATA",
    "PUBLIC_ACCESS_NONE",
    "FakeMyTardis",
]

PUBLIC_ACCESS_NONE = 1
PUBLIC_ACCESS_EMBARGO = 25
PUBLIC_ACCESS_METADATA = 50
PUBLIC_ACCESS_FULL = 100

#: Django permissions a new fake user has unless told otherwise (codenames of ``tardis_portal``).
DEFAULT_PERMISSIONS = frozenset(
    {
        "add_experiment",
        "change_experiment",
        "change_dataset",
        "add_datafile",
        "change_datafile",
        "change_datafileparameterset",
        "add_objectacl",
    }
)

_CANNED = "Sorry, this request could not be processed. Please try again later."
_MAX_LIMIT = 1000
_DEFAULT_LIMIT = 20
_RESERVED = {"limit", "offset", "order_by", "format", "username", "api_key"}

# parameter name data types
_NUMERIC, _STRING, _URL, _LINK, _FILENAME, _DATETIME, _LONGSTRING, _JSON = range(1, 9)
_SCHEMA_TYPES = {"experiment": 1, "dataset": 2, "datafile": 3}


class _Fail(Exception):
    """An HTTP error answer, raised from deep inside a handler."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def _now() -> str:
    return datetime.now(UTC).replace(tzinfo=None).isoformat()


def _empty(
    status: int, headers: dict[str, str] | None = None, content: bytes = b""
) -> httpx.Response:
    return httpx.Response(
        status,
        content=content,
        headers={"Content-Type": "text/html; charset=utf-8", **(headers or {})},
    )


def _bool_param(text: str) -> bool:
    return text.lower() in ("true", "1", "yes", "on")


def _sort_key(name: str) -> Callable[[dict[str, Any]], tuple[bool, Any]]:
    """Sort key on one field, with missing values last."""
    return lambda o: (o.get(name) is None, o.get(name))


def _multipart_parts(content: bytes, content_type: str) -> list[tuple[str, bytes]]:
    """(field name, bytes) of each part of a multipart/form-data body, in body order.

    Parts are delimited by CRLF, ``--`` and the boundary (RFC 7578), so a part may hold ``--<boundary>``
    as long as no CRLF precedes it. Like Django, the whole body is read before anything is looked up, so
    the order of the parts does not matter to the caller.
    """
    m = re.search(r'boundary="?([^";]+)"?', content_type)
    if not m:
        return []
    delimiter = b"\r\n--" + m.group(1).encode()
    out: list[tuple[str, bytes]] = []
    for chunk in (b"\r\n" + content).split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break  # the closing delimiter
        head, sep, body = chunk.partition(b"\r\n\r\n")
        name = re.search(rb'\bname="([^"]*)"', head)
        if sep and name:
            out.append((name.group(1).decode(), body))
    return out


class FakeMyTardis(FakeService):
    """Stateful fake of a MyTardis server's ``/api/v1/`` API (see the module docstring)."""

    default_origins: ClassVar[dict[str, str]] = {"api": "https://mytardis.fake.test"}

    #: The storage box that receives uploads and shared-storage registrations by default.
    DEFAULT_BOX = "default"
    #: The receiving box whose paths are handed out for staged copies.
    STAGING_BOX = "staging"

    def __init__(self, origins: dict[str, str] | None = None, *, debug: bool = False) -> None:
        super().__init__(origins)
        self.debug = debug
        self._ids: dict[str, int] = {}
        self.users: dict[int, dict[str, Any]] = {}
        self.groups: dict[int, dict[str, Any]] = {}
        self.facilities: dict[int, dict[str, Any]] = {}
        self.instruments: dict[int, dict[str, Any]] = {}
        self.experiments: dict[int, dict[str, Any]] = {}
        self.acls: dict[int, dict[str, Any]] = {}
        self.datasets: dict[int, dict[str, Any]] = {}
        self.datafiles: dict[int, dict[str, Any]] = {}
        self.replicas: dict[int, dict[str, Any]] = {}
        self.storage_boxes: dict[int, dict[str, Any]] = {}
        self.box_options: dict[int, dict[str, Any]] = {}
        self.box_attributes: dict[int, dict[str, Any]] = {}
        self.schemas: dict[int, dict[str, Any]] = {}
        self.parameter_names: dict[int, dict[str, Any]] = {}
        # parameter sets and parameters, per kind ("experiment", "dataset", "datafile")
        self.parameter_sets: dict[str, dict[int, dict[str, Any]]] = {k: {} for k in _SCHEMA_TYPES}
        self.parameters: dict[str, dict[int, dict[str, Any]]] = {k: {} for k in _SCHEMA_TYPES}
        #: bytes kept in storage, by (storage box name, path within the box)
        self.stored: dict[tuple[str, str], bytes] = {}
        self.add_storage_box(self.DEFAULT_BOX, "/srv/mytardis/store")
        self.add_storage_box(
            self.STAGING_BOX, "/srv/mytardis/staging", attributes={"type": "receiving"}
        )

    # ------------------------------------------------------------------------------------------------
    # Seeding helpers (the fake's public test-kit API)
    # ------------------------------------------------------------------------------------------------
    def _next(self, kind: str) -> int:
        self._ids[kind] = self._ids.get(kind, 0) + 1
        return self._ids[kind]

    def add_user(
        self,
        username: str,
        password: str | None = None,
        api_key: str | None = None,
        *,
        first_name: str = "",
        last_name: str = "",
        email: str = "",
        superuser: bool = False,
        permissions: Iterable[str] | None = None,
        groups: Iterable[str] = (),
    ) -> int:
        """Create a user who can sign in with ``password`` (Basic) and/or ``api_key`` (ApiKey); returns its id."""
        with self.lock:
            uid = self._next("user")
            self.users[uid] = {
                "id": uid,
                "username": username,
                "password": password,
                "api_key": api_key,
                "first_name": first_name,
                "last_name": last_name,
                "email": email or f"{username}@example.org",
                "is_superuser": superuser,
                "permissions": set(DEFAULT_PERMISSIONS if permissions is None else permissions),
                "groups": set(),
            }
            for name in groups:
                self.users[uid]["groups"].add(self.add_group(name))
            return uid

    def add_group(self, name: str, members: Iterable[str] = ()) -> int:
        """Create (or find) a group by name and add the named users to it; returns its id."""
        with self.lock:
            gid = next((g["id"] for g in self.groups.values() if g["name"] == name), None)
            if gid is None:
                gid = self._next("group")
                self.groups[gid] = {"id": gid, "name": name}
            for username in members:
                self._user_by_name(username)["groups"].add(gid)
            return gid

    def add_facility(self, name: str, manager_group: str) -> int:
        """Create a facility managed by the named group (created if needed); returns its id."""
        with self.lock:
            gid = self.add_group(manager_group)
            fid = self._next("facility")
            now = _now()
            self.facilities[fid] = {
                "id": fid,
                "name": name,
                "manager_group": gid,
                "created_time": now,
                "modified_time": now,
            }
            return fid

    def add_instrument(self, name: str, facility_id: int) -> int:
        """Create an instrument of a facility; returns its id."""
        with self.lock:
            iid = self._next("instrument")
            now = _now()
            self.instruments[iid] = {
                "id": iid,
                "name": name,
                "facility": facility_id,
                "created_time": now,
                "modified_time": now,
            }
            return iid

    def add_storage_box(
        self,
        name: str,
        location: str,
        *,
        attributes: dict[str, str] | None = None,
        description: str = "",
    ) -> int:
        """Create a storage box whose ``location`` option is ``location``; returns its id."""
        with self.lock:
            bid = self._next("storagebox")
            self.storage_boxes[bid] = {
                "id": bid,
                "name": name,
                "description": description or name,
                "django_storage_class": "django.core.files.storage.FileSystemStorage",
                "max_size": 1 << 40,
                "status": "online",
            }
            oid = self._next("storageboxoption")
            self.box_options[oid] = {
                "id": oid,
                "storage_box": bid,
                "key": "location",
                "value": location,
                "value_type": "string",
            }
            for key, value in (attributes or {}).items():
                aid = self._next("storageboxattribute")
                self.box_attributes[aid] = {
                    "id": aid,
                    "storage_box": bid,
                    "key": key,
                    "value": value,
                }
            return bid

    def add_schema(
        self,
        namespace: str,
        kind: str = "experiment",
        *,
        name: str = "",
        parameters: Iterable[tuple[str, int] | str] = (),
    ) -> int:
        """Create a schema for ``kind`` (experiment, dataset or datafile) with parameter names.

        ``parameters`` holds names (string type) or ``(name, data_type)`` pairs (1 numeric, 2 string,
        6 datetime...). Returns the schema id.
        """
        with self.lock:
            sid = self._next("schema")
            self.schemas[sid] = {
                "id": sid,
                "namespace": namespace,
                "name": name or namespace,
                "type": _SCHEMA_TYPES.get(kind, 4),
                "subtype": None,
                "immutable": False,
                "hidden": False,
            }
            for p in parameters:
                pname, dtype = (p, _STRING) if isinstance(p, str) else p
                self._add_parameter_name(sid, pname, dtype)
            return sid

    def add_experiment(
        self,
        title: str,
        owner: str | None = None,
        *,
        public_access: int = PUBLIC_ACCESS_NONE,
        description: str = "",
        institution_name: str = "",
    ) -> int:
        """Create an experiment owned by ``owner`` (a username); returns its id."""
        with self.lock:
            creator = self._user_by_name(owner)["id"] if owner else None
            eid = self._new_experiment(
                {
                    "title": title,
                    "description": description,
                    "institution_name": institution_name,
                    "public_access": public_access,
                },
                creator,
            )
            return eid

    def add_dataset(
        self,
        description: str,
        experiments: Iterable[int],
        *,
        directory: str | None = None,
        instrument_id: int | None = None,
    ) -> int:
        """Create a dataset in the given experiments; returns its id."""
        with self.lock:
            did = self._next("dataset")
            now = _now()
            self.datasets[did] = {
                "id": did,
                "description": description,
                "directory": directory,
                "created_time": now,
                "modified_time": now,
                "immutable": False,
                "instrument": instrument_id,
                "experiments": list(experiments),
            }
            return did

    def add_datafile(
        self,
        dataset_id: int,
        filename: str,
        content: bytes,
        *,
        directory: str = "",
        verified: bool = True,
        mimetype: str = "application/octet-stream",
    ) -> int:
        """Create a datafile with one replica in the default box holding ``content``; returns its id."""
        with self.lock:
            fid = self._new_datafile(
                {
                    "dataset": dataset_id,
                    "filename": filename,
                    "directory": directory,
                    "size": len(content),
                    "md5sum": hashlib.md5(content).hexdigest(),
                    "mimetype": mimetype,
                }
            )
            box = self._box_by_name(self.DEFAULT_BOX)
            path = self._file_path(self.datafiles[fid])
            self.stored[(box["name"], path)] = content
            rid = self._new_replica(fid, box["id"], path)
            self.replicas[rid]["verified"] = verified
            return fid

    def grant(
        self,
        experiment_id: int,
        *,
        user: str | None = None,
        group: str | None = None,
        read: bool = True,
        write: bool = False,
        download: bool = False,
        delete: bool = False,
        owner: bool = False,
        sensitive: bool = False,
    ) -> int:
        """Add an access rule on an experiment for a user or a group; returns the rule id."""
        with self.lock:
            if user is not None:
                plugin, entity = "django_user", str(self._user_by_name(user)["id"])
            elif group is not None:
                plugin, entity = "django_group", str(self.add_group(group))
            else:
                raise ValueError("grant() needs user= or group=")
            return self._new_acl(
                experiment_id,
                plugin,
                entity,
                read=read,
                write=write,
                download=download,
                delete=delete,
                owner=owner,
                sensitive=sensitive,
            )

    def put_shared_file(self, location: str, path: str, content: bytes) -> None:
        """Place bytes on shared storage: in the storage box named ``location`` at ``path``."""
        with self.lock:
            self._box_by_name(location)
            self.stored[(location, path.lstrip("/"))] = content

    def write_staged_file(self, full_path: str, content: bytes) -> None:
        """Copy bytes to a staging path handed out by a 201 (as a client's scp/rsync would)."""
        with self.lock:
            for box in self.storage_boxes.values():
                loc = self._box_location(box).rstrip("/") + "/"
                if full_path.startswith(loc):
                    self.stored[(box["name"], full_path[len(loc) :])] = content
                    return
            raise KeyError(f"{full_path} is in no storage box")

    def file_bytes(self, datafile_id: int) -> bytes | None:
        """The stored bytes of a datafile's first verified replica (``None`` if there is none)."""
        with self.lock:
            for rep in self._replicas_of(datafile_id):
                if rep["verified"]:
                    return self.stored.get(
                        (self.storage_boxes[rep["storage_box"]]["name"], rep["uri"])
                    )
            return None

    # ------------------------------------------------------------------------------------------------
    # Routes
    # ------------------------------------------------------------------------------------------------
    _LIST = r"/api/v1/(?P<res>[a-z_]+)/"
    _DETAIL = r"/api/v1/(?P<res>[a-z_]+)/(?P<pk>[0-9]+)/"

    @route("GET", _LIST)
    @route("POST", _LIST)
    @route("PUT", _LIST)
    @route("PATCH", _LIST)
    @route("DELETE", _LIST)
    def _list_endpoint(self, request: httpx.Request, res: str) -> httpx.Response:
        return self._guarded(request, lambda user: self._dispatch_list(request, user, res))

    @route("GET", _DETAIL)
    @route("POST", _DETAIL)
    @route("PUT", _DETAIL)
    @route("PATCH", _DETAIL)
    @route("DELETE", _DETAIL)
    def _detail_endpoint(self, request: httpx.Request, res: str, pk: str) -> httpx.Response:
        return self._guarded(
            request, lambda user: self._dispatch_detail(request, user, res, int(pk))
        )

    @route("GET", r"/api/v1/dataset_file/(?P<pk>[0-9]+)/download/")
    def _download(self, request: httpx.Request, pk: str) -> httpx.Response:
        return self._guarded(request, lambda user: self._download_file(user, int(pk)))

    @route("GET", r"/api/v1/dataset_file/(?P<pk>[0-9]+)/verify/")
    def _verify(self, request: httpx.Request, pk: str) -> httpx.Response:
        return self._guarded(request, lambda user: self._verify_file(user, int(pk)))

    @route("GET", r"/api/v1/dataset/(?P<pk>[0-9]+)/files/(?P<path>.*)")
    def _dataset_files(self, request: httpx.Request, pk: str, path: str) -> httpx.Response:
        def run(user: dict[str, Any] | None) -> httpx.Response:
            ds = self.datasets.get(int(pk))
            if ds is None or not self._can_read_dataset(user, ds):
                return _empty(403)
            extra = {"dataset__id": pk}
            if path:
                extra["directory__startswith"] = path
            return self._list(request, user, "dataset_file", extra)

        return self._guarded(request, run)

    def method_not_allowed(self, request: httpx.Request) -> httpx.Response:
        """Tastypie's 405 for the download and verify views (GET only)."""
        return self._method_not_allowed(["GET"])

    def not_found(self, request: httpx.Request) -> httpx.Response:
        """Django's plain 404 page for URLs outside the API."""
        return _empty(
            404,
            content=b"<h1>Not Found</h1><p>The requested resource was not found on this server.</p>",
        )

    # ------------------------------------------------------------------------------------------------
    # Request plumbing: authentication, errors
    # ------------------------------------------------------------------------------------------------
    def _guarded(
        self, request: httpx.Request, run: Callable[[dict[str, Any] | None], httpx.Response]
    ) -> httpx.Response:
        with self.lock:
            try:
                user = self._authenticate(request)
                return run(user)
            except _Fail as fail:
                return fail.response

    def _authenticate(self, request: httpx.Request) -> dict[str, Any] | None:
        header = request.headers.get("Authorization")
        if header is None:
            return None
        scheme, _, data = header.partition(" ")
        user: dict[str, Any] | None = None
        if scheme == "Basic":
            try:
                username, _, password = base64.b64decode(data.strip()).decode().partition(":")
            except ValueError:
                username, password = "", ""
            user = self._find_user(username)
            if user is not None and (user["password"] is None or user["password"] != password):
                user = None
        elif scheme.lower() == "apikey":
            username, _, key = data.strip().partition(":")
            user = self._find_user(username)
            if user is not None and (user["api_key"] is None or user["api_key"] != key):
                user = None
        if user is None:
            raise _Fail(_empty(401))
        return user

    def _error(self, status: int, message: str, exc_type: str = "Exception") -> _Fail:
        if self.debug:
            trace = "Traceback (most recent call last):\n" + "".join(
                traceback.format_stack(limit=3)
            )
            body = {"error_message": message, "traceback": f"{trace}{exc_type}: {message}\n"}
        else:
            body = {"error_message": _CANNED}
        return _Fail(json_response(body, status))

    @staticmethod
    def _bad(message: str) -> _Fail:
        return _Fail(json_response({"error": message}, 400))

    @staticmethod
    def _unauthorized() -> _Fail:
        return _Fail(_empty(401))

    # ------------------------------------------------------------------------------------------------
    # URIs
    # ------------------------------------------------------------------------------------------------
    @property
    def _prefix(self) -> str:
        return httpx.URL(self.base_url).path.rstrip("/")

    def uri(self, resource: str, pk: int) -> str:
        """The resource URI of an object, e.g. ``/api/v1/experiment/3/``."""
        return f"{self._prefix}/api/v1/{resource}/{pk}/"

    def _parse_uri(self, value: Any, resource: str) -> int:
        text = str(value)
        path = httpx.URL(text).path if "://" in text else text
        if self._prefix and path.startswith(self._prefix + "/"):
            path = path[len(self._prefix) :]
        m = re.fullmatch(rf"/api/v1/{resource}/([0-9]+)/?", path)
        if not m:
            raise self._error(
                404, f"The URL provided '{text}' was not a link to a valid resource.", "NotFound"
            )
        return int(m.group(1))

    # ------------------------------------------------------------------------------------------------
    # Lookups and permissions
    # ------------------------------------------------------------------------------------------------
    def _find_user(self, username: str) -> dict[str, Any] | None:
        return next((u for u in self.users.values() if u["username"] == username), None)

    def _user_by_name(self, username: str | None) -> dict[str, Any]:
        user = self._find_user(username or "")
        if user is None:
            raise KeyError(f"no user {username!r}")
        return user

    def _box_by_name(self, name: str) -> dict[str, Any]:
        box = next((b for b in self.storage_boxes.values() if b["name"] == name), None)
        if box is None:
            raise KeyError(f"no storage box {name!r}")
        return box

    def _box_location(self, box: dict[str, Any]) -> str:
        return str(
            next(
                o["value"]
                for o in self.box_options.values()
                if o["storage_box"] == box["id"] and o["key"] == "location"
            )
        )

    @staticmethod
    def _has_perm(user: dict[str, Any] | None, codename: str) -> bool:
        return user is not None and (user["is_superuser"] or codename in user["permissions"])

    def _acl_flags(self, user: dict[str, Any] | None, exp_id: int) -> dict[str, bool]:
        flags = {"read": False, "write": False, "download": False, "delete": False, "owner": False}
        if user is None:
            return flags
        for acl in self.acls.values():
            if acl["object_id"] != exp_id:
                continue
            mine = acl["pluginId"] == "django_user" and acl["entityId"] == str(user["id"])
            ours = acl["pluginId"] == "django_group" and acl["entityId"] in {
                str(g) for g in user["groups"]
            }
            if not (mine or ours):
                continue
            owner = acl["isOwner"]
            flags["read"] |= acl["canRead"] or owner
            flags["write"] |= acl["canWrite"] or owner
            flags["download"] |= acl["canDownload"] or owner
            flags["delete"] |= acl["canDelete"] or owner
            flags["owner"] |= owner
        return flags

    def _can_read_exp(self, user: dict[str, Any] | None, exp: dict[str, Any]) -> bool:
        if user is not None and user["is_superuser"]:
            return True
        if exp["public_access"] not in (PUBLIC_ACCESS_NONE, PUBLIC_ACCESS_EMBARGO):
            return True
        return self._acl_flags(user, exp["id"])["read"]

    def _can_write_exp(self, user: dict[str, Any] | None, exp_id: int) -> bool:
        if user is not None and user["is_superuser"]:
            return True
        return self._acl_flags(user, exp_id)["write"]

    def _can_download_exp(self, user: dict[str, Any] | None, exp: dict[str, Any]) -> bool:
        if user is not None and user["is_superuser"]:
            return True
        return (
            exp["public_access"] == PUBLIC_ACCESS_FULL
            or self._acl_flags(user, exp["id"])["download"]
        )

    def _can_read_dataset(self, user: dict[str, Any] | None, ds: dict[str, Any]) -> bool:
        return any(
            self._can_read_exp(user, self.experiments[e])
            for e in ds["experiments"]
            if e in self.experiments
        )

    def _can_write_dataset(self, user: dict[str, Any] | None, ds: dict[str, Any]) -> bool:
        return any(self._can_write_exp(user, e) for e in ds["experiments"] if e in self.experiments)

    def _can_read_datafile(self, user: dict[str, Any] | None, df: dict[str, Any]) -> bool:
        ds = self.datasets.get(df["dataset"])
        return ds is not None and self._can_read_dataset(user, ds)

    def _can_download_datafile(self, user: dict[str, Any] | None, df: dict[str, Any]) -> bool:
        ds = self.datasets.get(df["dataset"])
        return ds is not None and any(
            self._can_download_exp(user, self.experiments[e])
            for e in ds["experiments"]
            if e in self.experiments
        )

    def _managed_facilities(self, user: dict[str, Any] | None) -> list[int]:
        if user is None:
            return []
        return [
            f["id"]
            for f in self.facilities.values()
            if user["is_superuser"] or f["manager_group"] in user["groups"]
        ]

    def _user_is_public(self, uid: int) -> bool:
        return any(
            e["created_by"] == uid and e["public_access"] > PUBLIC_ACCESS_NONE
            for e in self.experiments.values()
        )

    def _parent_readable(self, user: dict[str, Any] | None, kind: str, parent_id: int) -> bool:
        if kind == "experiment":
            exp = self.experiments.get(parent_id)
            return exp is not None and self._can_read_exp(user, exp)
        if kind == "dataset":
            ds = self.datasets.get(parent_id)
            return ds is not None and self._can_read_dataset(user, ds)
        df = self.datafiles.get(parent_id)
        return df is not None and self._can_read_datafile(user, df)

    def _parent_writable(self, user: dict[str, Any] | None, kind: str, parent_id: int) -> bool:
        if kind == "experiment":
            return self._has_perm(user, "change_experiment") and self._can_write_exp(
                user, parent_id
            )
        if kind == "dataset":
            ds = self.datasets.get(parent_id)
            return (
                self._has_perm(user, "change_dataset")
                and ds is not None
                and self._can_write_dataset(user, ds)
            )
        df = self.datafiles.get(parent_id)
        ds = self.datasets.get(df["dataset"]) if df else None
        return (
            self._has_perm(user, "change_datafile")
            and ds is not None
            and self._can_write_dataset(user, ds)
        )

    # ------------------------------------------------------------------------------------------------
    # Resource table: serialisers, visibility, filters, ordering
    # ------------------------------------------------------------------------------------------------
    def _table(self, res: str) -> dict[int, dict[str, Any]]:
        tables: dict[str, dict[int, dict[str, Any]]] = {
            "experiment": self.experiments,
            "dataset": self.datasets,
            "dataset_file": self.datafiles,
            "schema": self.schemas,
            "parametername": self.parameter_names,
            "replica": self.replicas,
            "storagebox": self.storage_boxes,
            "storageboxoption": self.box_options,
            "storageboxattribute": self.box_attributes,
            "user": self.users,
            "group": self.groups,
            "facility": self.facilities,
            "instrument": self.instruments,
            "objectacl": self.acls,
        }
        for kind in _SCHEMA_TYPES:
            tables[f"{kind}parameterset"] = self.parameter_sets[kind]
            tables[f"{kind}parameter"] = self.parameters[kind]
        if res not in tables:
            raise _Fail(self.not_found(httpx.Request("GET", "/")))
        return tables[res]

    _ALWAYS_RETURN = {"experiment", "dataset", "facility", "instrument"}
    _ORDERING: ClassVar[dict[str, list[str]]] = {
        "experiment": ["id", "title", "created_time", "update_time"],
        "dataset": ["id", "description"],
        "dataset_file": ["id", "filename", "modification_time"],
        "schema": ["id"],
        "replica": ["id"],
        "storagebox": ["id"],
        "storageboxoption": ["id"],
        "storageboxattribute": ["id"],
        "facility": ["id", "name"],
        "instrument": ["id", "name"],
    }
    _GET_ONLY = {
        "user",
        "group",
        "facility",
        "schema",
        "parametername",
        "storagebox",
        "storageboxoption",
        "storageboxattribute",
    }

    def _visible(self, user: dict[str, Any] | None, res: str, obj: dict[str, Any]) -> bool:
        if user is not None and user["is_superuser"]:
            return True
        if res == "experiment":
            return self._can_read_exp(user, obj)
        if res == "dataset":
            return self._can_read_dataset(user, obj)
        if res == "dataset_file":
            return self._can_read_datafile(user, obj)
        if res == "replica":
            return self._can_read_datafile(user, self.datafiles[obj["datafile"]])
        if res in ("schema", "parametername"):
            return True
        if res in ("storagebox", "storageboxattribute"):
            return user is not None
        if res == "storageboxoption":
            return user is not None and obj["key"] == "location"
        if res == "user":
            return user is not None and (
                obj["id"] == user["id"]
                or bool(self._managed_facilities(user))
                or self._user_is_public(obj["id"])
            )
        if res == "group":
            return user is not None and (
                obj["id"] in user["groups"] or bool(self._managed_facilities(user))
            )
        if res == "facility":
            return obj["id"] in self._managed_facilities(user)
        if res == "instrument":
            return user is not None
        if res == "objectacl":
            exp = self.experiments.get(obj["object_id"])
            return exp is not None and self._can_read_exp(user, exp)
        for kind in _SCHEMA_TYPES:
            if res == f"{kind}parameterset":
                return self._parent_readable(user, kind, obj[kind])
            if res == f"{kind}parameter":
                pset = self.parameter_sets[kind][obj["parameterset"]]
                return self._parent_readable(user, kind, pset[kind])
        return False

    def _detail_visible(self, user: dict[str, Any] | None, res: str, obj: dict[str, Any]) -> bool:
        if user is not None and user["is_superuser"]:
            return True
        if res == "user":
            return user is not None or self._user_is_public(obj["id"])
        if res == "group":
            return user is not None and obj["id"] in user["groups"]
        if res == "instrument":
            return obj["facility"] in self._managed_facilities(user)
        return self._visible(user, res, obj)

    def _dehydrate(
        self, user: dict[str, Any] | None, res: str, o: dict[str, Any]
    ) -> dict[str, Any]:
        u = self.uri
        if res == "experiment":
            out = {
                k: o[k]
                for k in (
                    "id",
                    "title",
                    "description",
                    "institution_name",
                    "url",
                    "start_time",
                    "end_time",
                    "created_time",
                    "update_time",
                    "handle",
                    "locked",
                    "public_access",
                )
            }
            out["created_by"] = u("user", o["created_by"]) if o["created_by"] else None
            out["parameter_sets"] = self._sets_of(user, "experiment", o["id"])
            out["authors"] = list(o["authors"])
            out["license"] = None
            out["owner_ids"] = sorted(
                int(a["entityId"])
                for a in self.acls.values()
                if a["object_id"] == o["id"] and a["isOwner"] and a["pluginId"] == "django_user"
            )
        elif res == "dataset":
            out = {
                k: o[k]
                for k in (
                    "id",
                    "description",
                    "directory",
                    "created_time",
                    "modified_time",
                    "immutable",
                )
            }
            inst = self.instruments.get(o["instrument"]) if o["instrument"] else None
            out["instrument"] = self._dehydrate(user, "instrument", inst) if inst else None
            out["experiments"] = [u("experiment", e) for e in o["experiments"]]
            out["parameter_sets"] = self._sets_of(user, "dataset", o["id"])
        elif res == "dataset_file":
            out = {
                k: o[k]
                for k in (
                    "id",
                    "filename",
                    "directory",
                    "size",
                    "mimetype",
                    "md5sum",
                    "sha512sum",
                    "created_time",
                    "modification_time",
                    "deleted",
                    "deleted_time",
                    "version",
                )
            }
            out["dataset"] = u("dataset", o["dataset"])
            out["parameter_sets"] = self._sets_of(user, "datafile", o["id"])
            out["replicas"] = [
                self._dehydrate(user, "replica", r) for r in self._replicas_of(o["id"])
            ]
            out["datafile"] = None
        elif res == "replica":
            out = {k: o[k] for k in ("id", "uri", "verified", "last_verified_time", "created_time")}
            out["datafile"] = u("dataset_file", o["datafile"])
            out["location"] = self.storage_boxes[o["storage_box"]]["name"]
        elif res == "schema":
            out = dict(o)
        elif res == "parametername":
            out = dict(o)
            out["schema"] = u("schema", o["schema"])
        elif res == "storagebox":
            out = dict(o)
            out["options"] = [
                self._dehydrate(user, "storageboxoption", x)
                for x in self.box_options.values()
                if x["storage_box"] == o["id"] and x["key"] == "location"
            ]
            out["attributes"] = [
                self._dehydrate(user, "storageboxattribute", x)
                for x in self.box_attributes.values()
                if x["storage_box"] == o["id"]
            ]
        elif res in ("storageboxoption", "storageboxattribute"):
            out = dict(o)
            out["storage_box"] = u("storagebox", o["storage_box"])
        elif res == "user":
            out = {
                "id": o["id"],
                "first_name": o["first_name"],
                "last_name": o["last_name"],
                "groups": [
                    self._dehydrate(user, "group", self.groups[g]) for g in sorted(o["groups"])
                ],
            }
            if user is not None and (user["id"] == o["id"] or self._managed_facilities(user)):
                out["username"] = o["username"]
                out["email"] = o["email"]
            if self._user_is_public(o["id"]):
                out["email"] = o["email"]
        elif res == "group":
            out = dict(o)
        elif res == "facility":
            out = {k: o[k] for k in ("id", "name", "created_time", "modified_time")}
            out["manager_group"] = self._dehydrate(user, "group", self.groups[o["manager_group"]])
        elif res == "instrument":
            out = {k: o[k] for k in ("id", "name", "created_time", "modified_time")}
            fac = self.facilities.get(o["facility"])
            out["facility"] = self._dehydrate(user, "facility", fac) if fac else None
        elif res == "objectacl":
            out = {k: v for k, v in o.items()}
            out["content_object"] = u("experiment", o["object_id"])
        else:
            kind, what = self._param_kind(res)
            if what == "set":
                out = {
                    "id": o["id"],
                    kind: u(kind if kind != "datafile" else "dataset_file", o[kind]),
                    "schema": self._dehydrate(user, "schema", self.schemas[o["schema"]]),
                    "parameters": [
                        self._dehydrate(user, f"{kind}parameter", p)
                        for p in self.parameters[kind].values()
                        if p["parameterset"] == o["id"]
                    ],
                }
            else:
                out = {
                    k: o[k]
                    for k in ("id", "string_value", "numerical_value", "datetime_value", "link_id")
                }
                out["name"] = u("parametername", o["name"])
                out["parameterset"] = u(f"{kind}parameterset", o["parameterset"])
                out["value"] = None
        out["resource_uri"] = u(res, o["id"])
        return out

    @staticmethod
    def _param_kind(res: str) -> tuple[str, str]:
        for kind in _SCHEMA_TYPES:
            if res == f"{kind}parameterset":
                return kind, "set"
            if res == f"{kind}parameter":
                return kind, "parameter"
        raise KeyError(res)

    def _sets_of(
        self, user: dict[str, Any] | None, kind: str, parent_id: int
    ) -> list[dict[str, Any]]:
        return [
            self._dehydrate(user, f"{kind}parameterset", s)
            for s in self.parameter_sets[kind].values()
            if s[kind] == parent_id
        ]

    def _replicas_of(self, datafile_id: int) -> list[dict[str, Any]]:
        return [r for r in self.replicas.values() if r["datafile"] == datafile_id]

    def _filter_values(self, res: str, o: dict[str, Any], key: str) -> list[Any] | None:
        """Values of filter ``key`` (without lookup suffix) on object ``o``; ``None`` = not filterable."""
        direct = {
            "experiment": {"id", "title"},
            "dataset": {"id", "description", "directory"},
            "dataset_file": {"filename", "directory"},
            "schema": {"id", "namespace"},
            "parametername": {"name"},
            "replica": {"verified"},
            "storagebox": {"name"},
            "user": {"id", "username", "email"},
            "group": {"id", "name"},
            "facility": {"id", "name"},
            "instrument": {"id", "name"},
            "objectacl": {"object_id", "pluginId", "entityId"},
        }.get(res, set())
        if key in direct:
            return [o.get(key)]
        if res == "replica" and key == "url":
            return [o["uri"]]
        if res == "replica" and key == "datafile__id":
            return [o["datafile"]]
        if res == "dataset" and key.startswith("experiments__"):
            field = key.split("__", 1)[1]
            return [
                self.experiments[e].get(field) for e in o["experiments"] if e in self.experiments
            ]
        if res == "dataset" and key == "instrument__id":
            return [o["instrument"]]
        if res == "dataset_file" and key.startswith("dataset__"):
            ds = self.datasets[o["dataset"]]
            rest = key.split("__", 1)[1]
            if rest.startswith("experiments__"):
                return self._filter_values("dataset", ds, rest)
            return [ds.get(rest)]
        if res == "parametername" and key.startswith("schema__"):
            return [self.schemas[o["schema"]].get(key.split("__", 1)[1])]
        if res in ("storageboxoption", "storageboxattribute") and key == "storage_box__id":
            return [o["storage_box"]]
        if res == "facility" and key == "manager_group__id":
            return [o["manager_group"]]
        if res == "instrument" and key == "facility__id":
            return [o["facility"]]
        if res.endswith("parameterset"):
            kind, _ = self._param_kind(res)
            if key == f"{kind}__id":
                return [o[kind]]
            if key == "schema__namespace":
                return [self.schemas[o["schema"]]["namespace"]]
        if res.endswith("parameter") and not res.endswith("parameterset"):
            if key == "parameterset__id":
                return [o["parameterset"]]
            if key == "name__name":
                return [self.parameter_names[o["name"]]["name"]]
        return None

    _FIELDS: ClassVar[dict[str, set[str]]] = {
        "experiment": {
            "id",
            "title",
            "description",
            "institution_name",
            "url",
            "start_time",
            "end_time",
            "created_time",
            "update_time",
            "handle",
            "locked",
            "public_access",
            "created_by",
            "parameter_sets",
        },
        "dataset": {
            "id",
            "description",
            "directory",
            "created_time",
            "modified_time",
            "immutable",
            "instrument",
            "experiments",
            "parameter_sets",
        },
        "dataset_file": {
            "id",
            "filename",
            "directory",
            "size",
            "mimetype",
            "md5sum",
            "sha512sum",
            "created_time",
            "modification_time",
            "deleted",
            "version",
            "dataset",
            "replicas",
            "parameter_sets",
        },
    }

    def _matches(self, res: str, o: dict[str, Any], key: str, raw: str) -> bool:
        lookup = "exact"
        base = key
        for suffix in ("startswith", "iexact", "exact"):
            if key.endswith("__" + suffix):
                base, lookup = key[: -len(suffix) - 2], suffix
                break
        values = self._filter_values(res, o, base)
        if values is None:
            field = base.split("__", 1)[0]
            if field in self._FIELDS.get(res, set()):
                raise self._bad(f"The '{field}' field does not allow filtering.")
            return True  # Tastypie ignores unknown query parameters
        for v in values:
            if isinstance(v, bool):
                if v == _bool_param(raw):
                    return True
            elif lookup == "startswith":
                if v is not None and str(v).startswith(raw):
                    return True
            elif lookup == "iexact":
                if v is not None and str(v).lower() == raw.lower():
                    return True
            elif v is not None and str(v) == raw:
                return True
        return False

    # ------------------------------------------------------------------------------------------------
    # List and detail
    # ------------------------------------------------------------------------------------------------
    def _dispatch_list(
        self, request: httpx.Request, user: dict[str, Any] | None, res: str
    ) -> httpx.Response:
        self._table(res)
        allowed = ["GET"] if res in self._GET_ONLY else ["GET", "POST", "PUT", "PATCH", "DELETE"]
        if request.method not in allowed:
            return self._method_not_allowed(allowed)
        if request.method == "GET":
            return self._list(request, user, res, {})
        if request.method == "POST":
            return self._create(request, user, res)
        raise self._unauthorized()

    def _dispatch_detail(
        self, request: httpx.Request, user: dict[str, Any] | None, res: str, pk: int
    ) -> httpx.Response:
        table = self._table(res)
        allowed = ["GET"] if res in self._GET_ONLY else ["GET", "PUT", "PATCH", "DELETE"]
        if request.method not in allowed:
            return self._method_not_allowed(allowed)
        obj = table.get(pk)
        if obj is None:
            return _empty(404)
        if request.method == "GET":
            if not self._detail_visible(user, res, obj):
                raise self._unauthorized()
            return json_response(self._dehydrate(user, res, obj))
        if request.method == "DELETE":
            return self._delete(user, res, obj)
        return self._update(request, user, res, obj)

    @staticmethod
    def _method_not_allowed(allowed: list[str]) -> httpx.Response:
        allows = ",".join(allowed)
        return _empty(405, {"Allow": allows}, allows.encode())

    def _list(
        self, request: httpx.Request, user: dict[str, Any] | None, res: str, extra: dict[str, str]
    ) -> httpx.Response:
        query = dict(parse_qsl(request.url.query.decode(), keep_blank_values=True))
        limit_raw = query.get("limit", str(_DEFAULT_LIMIT))
        offset_raw = query.get("offset", "0")
        try:
            limit = int(limit_raw)
        except ValueError:
            raise self._bad(
                f"Invalid limit '{limit_raw}' provided. Please provide a positive integer."
            ) from None
        if limit < 0:
            raise self._bad(
                f"Invalid limit '{limit_raw}' provided. Please provide a positive integer >= 0."
            )
        if limit == 0 or limit > _MAX_LIMIT:
            limit = _MAX_LIMIT
        try:
            offset = int(offset_raw)
        except ValueError:
            raise self._bad(
                f"Invalid offset '{offset_raw}' provided. Please provide an integer."
            ) from None
        if offset < 0:
            raise self._bad(
                f"Invalid offset '{offset_raw}' provided. Please provide a positive integer >= 0."
            )

        objects = [o for o in self._table(res).values() if self._visible(user, res, o)]
        filters = {k: v for k, v in query.items() if k not in _RESERVED}
        filters.update(extra)
        for key, raw in filters.items():
            objects = [o for o in objects if self._matches(res, o, key, raw)]
        objects.sort(key=lambda o: o["id"])
        for field in reversed(request.url.params.get_list("order_by")):
            name = field.lstrip("-")
            if name not in self._ORDERING.get(res, []):
                if name in self._FIELDS.get(res, set()) or name in ("name", "id"):
                    raise self._bad(f"The '{name}' field does not allow ordering.")
                raise self._bad(f"No matching '{name}' field for ordering on.")
            objects.sort(key=_sort_key(name), reverse=field.startswith("-"))

        total = len(objects)
        page = objects[offset : offset + limit]
        # Tastypie links to the resource's own list URI (so /dataset/N/files/ pages link to /dataset_file/)
        list_path = f"{self._prefix}/api/v1/{res}/"

        def link(new_offset: int) -> str:
            params = dict(query)
            params.update({"limit": str(limit), "offset": str(new_offset)})
            return f"{list_path}?{urlencode(params)}"

        meta = {
            "limit": limit,
            "next": link(offset + limit) if offset + limit < total else None,
            "offset": offset,
            "previous": link(max(offset - limit, 0)) if offset > 0 else None,
            "total_count": total,
        }
        return json_response(
            {"meta": meta, "objects": [self._dehydrate(user, res, o) for o in page]}
        )

    # ------------------------------------------------------------------------------------------------
    # Bodies
    # ------------------------------------------------------------------------------------------------
    def _body(self, request: httpx.Request) -> tuple[dict[str, Any], bytes | None]:
        ctype = request.headers.get("Content-Type", "application/json")
        if ctype.startswith("multipart/"):
            fields: dict[str, str] = {}
            upload: bytes | None = None
            for name, payload in _multipart_parts(request.content, ctype):
                if name == "attached_file":
                    upload = payload
                else:
                    fields[name] = payload.decode()
            if "json_data" not in fields:
                raise self._error(500, "'json_data'", "MultiValueDictKeyError")
            data = self._json(fields["json_data"].encode())
            return data, upload
        if ctype.startswith("application/x-www-form-urlencoded"):
            return dict(parse_qsl(request.content.decode())), None
        return self._json(request.content), None

    def _json(self, raw: bytes) -> dict[str, Any]:
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            raise self._error(
                400, "Expecting value: line 1 column 1 (char 0)", "JSONDecodeError"
            ) from None
        if not isinstance(data, dict):
            raise self._bad(
                "The format indicated 'application/json' had no available deserialization method."
            )
        return data

    @staticmethod
    def _require(data: dict[str, Any], *names: str) -> None:
        for name in names:
            if data.get(name) is None:
                raise FakeMyTardis._bad(
                    f"The '{name}' field has no data and doesn't allow a default or null value."
                )

    def _created(self, res: str, user: dict[str, Any] | None, pk: int) -> httpx.Response:
        location = self.uri(res, pk)
        if res in self._ALWAYS_RETURN:
            return json_response(
                self._dehydrate(user, res, self._table(res)[pk]), 201, {"Location": location}
            )
        return _empty(201, {"Location": location})

    # ------------------------------------------------------------------------------------------------
    # Create
    # ------------------------------------------------------------------------------------------------
    def _create(
        self, request: httpx.Request, user: dict[str, Any] | None, res: str
    ) -> httpx.Response:
        data, upload = self._body(request)
        if user is None:
            raise self._unauthorized()
        if res == "experiment":
            if not self._has_perm(user, "add_experiment"):
                raise self._unauthorized()
            self._require(data, "title")
            eid = self._new_experiment(data, user["id"])
            self._inline_sets("experiment", eid, data)
            return self._created(res, user, eid)
        if res == "dataset":
            try:
                exps = [self._parse_uri(x, "experiment") for x in data.get("experiments") or []]
            except _Fail:
                raise self._unauthorized() from None
            if not self._has_perm(user, "change_dataset") or not exps:
                raise self._unauthorized()
            for e in exps:  # an unknown experiment also fails the write check, as on the server
                if e not in self.experiments or not self._can_write_exp(user, e):
                    raise self._unauthorized()
            self._require(data, "description")
            inst = (
                self._parse_uri(data["instrument"], "instrument")
                if data.get("instrument")
                else None
            )
            did = self.add_dataset(
                data["description"], exps, directory=data.get("directory"), instrument_id=inst
            )
            self.datasets[did]["immutable"] = bool(data.get("immutable", False))
            self._inline_sets("dataset", did, data)
            return self._created(res, user, did)
        if res == "dataset_file":
            return self._create_datafile(user, data, upload)
        if res.endswith("parameterset"):
            kind, _ = self._param_kind(res)
            self._require(data, kind, "schema")
            parent = self._parse_uri(data[kind], "dataset_file" if kind == "datafile" else kind)
            if not self._parent_exists(kind, parent):
                raise self._error(
                    404, f"{kind.title()} matching query does not exist.", "DoesNotExist"
                )
            if not self._parent_writable(user, kind, parent):
                raise self._unauthorized()
            sid = self._new_set(kind, parent, data["schema"], data.get("parameters") or [])
            return self._created(res, user, sid)
        if res.endswith("parameter"):
            kind, _ = self._param_kind(res)
            self._require(data, "parameterset", "name")
            set_id = self._parse_uri(data["parameterset"], f"{kind}parameterset")
            pset = self.parameter_sets[kind].get(set_id)
            if pset is None:
                raise self._error(
                    404, "ParameterSet matching query does not exist.", "DoesNotExist"
                )
            if not self._parent_writable(user, kind, pset[kind]):
                raise self._unauthorized()
            pid = self._new_parameter(kind, set_id, data["name"], data.get("value"))
            return self._created(res, user, pid)
        if res == "replica":
            self._require(data, "datafile", "url")
            fid = self._parse_uri(data["datafile"], "dataset_file")
            df = self.datafiles.get(fid)
            if df is None:
                raise self._error(404, "DataFile matching query does not exist.", "DoesNotExist")
            if not (
                self._has_perm(user, "change_datafile")
                and self._has_perm(user, "add_datafile")
                and self._can_write_dataset(user, self.datasets[df["dataset"]])
            ):
                raise self._unauthorized()
            rid = self._register_replica(fid, data)
            return self._created(res, user, rid)
        if res == "instrument":
            self._require(data, "name", "facility")
            fac = self._parse_uri(data["facility"], "facility")
            if fac not in self._managed_facilities(user) or not (
                user["is_superuser"] or "add_instrument" in user["permissions"]
            ):
                raise self._unauthorized()
            iid = self.add_instrument(data["name"], fac)
            return self._created(res, user, iid)
        if res == "objectacl":
            self._require(data, "content_object", "pluginId", "entityId")
            if not self._has_perm(user, "add_objectacl"):
                raise self._unauthorized()
            eid = self._parse_uri(data["content_object"], "experiment")
            if eid not in self.experiments:
                raise self._error(404, "Experiment matching query does not exist.", "DoesNotExist")
            aid = self._new_acl(
                eid,
                str(data["pluginId"]),
                str(data["entityId"]),
                read=bool(data.get("canRead", True)),
                write=bool(data.get("canWrite", False)),
                download=bool(data.get("canDownload", False)),
                delete=bool(data.get("canDelete", False)),
                owner=bool(data.get("isOwner", False)),
                sensitive=bool(data.get("canSensitive", False)),
            )
            self.acls[aid]["aclOwnershipType"] = int(data.get("aclOwnershipType", 1))
            return self._created(res, user, aid)
        # user, group, facility, schema, parametername, storage boxes: read only
        return self._method_not_allowed(["GET"])

    def _parent_exists(self, kind: str, parent: int) -> bool:
        return (
            parent
            in {
                "experiment": self.experiments,
                "dataset": self.datasets,
                "datafile": self.datafiles,
            }[kind]
        )

    def _new_experiment(self, data: dict[str, Any], creator: int | None) -> int:
        eid = self._next("experiment")
        now = _now()
        self.experiments[eid] = {
            "id": eid,
            "title": data.get("title", ""),
            "description": data.get("description", ""),
            "institution_name": data.get("institution_name", ""),
            "url": data.get("url"),
            "start_time": data.get("start_time"),
            "end_time": data.get("end_time"),
            "created_time": now,
            "update_time": now,
            "handle": data.get("handle"),
            "locked": False,
            "public_access": int(data.get("public_access", PUBLIC_ACCESS_NONE)),
            "created_by": creator,
            "authors": [],
        }
        if creator is not None:
            self._new_acl(
                eid,
                "django_user",
                str(creator),
                read=True,
                write=True,
                download=True,
                delete=True,
                owner=True,
                sensitive=True,
            )
        return eid

    def _new_acl(
        self,
        exp_id: int,
        plugin: str,
        entity: str,
        *,
        read: bool,
        write: bool,
        download: bool,
        delete: bool,
        owner: bool,
        sensitive: bool,
    ) -> int:
        aid = self._next("objectacl")
        self.acls[aid] = {
            "id": aid,
            "object_id": exp_id,
            "pluginId": plugin,
            "entityId": entity,
            "canRead": read,
            "canWrite": write,
            "canDelete": delete,
            "canDownload": download,
            "canSensitive": sensitive,
            "isOwner": owner,
            "effectiveDate": None,
            "expiryDate": None,
            "aclOwnershipType": 1,
        }
        return aid

    def _add_parameter_name(self, schema_id: int, name: str, data_type: int) -> int:
        pid = self._next("parametername")
        self.parameter_names[pid] = {
            "id": pid,
            "schema": schema_id,
            "name": name,
            "full_name": name,
            "units": "",
            "data_type": data_type,
            "immutable": False,
            "comparison_type": 1,
            "is_searchable": False,
            "choices": "",
            "order": 9999,
            "sensitive": False,
        }
        return pid

    def _resolve_schema(self, value: Any) -> int:
        text = str(value)
        if "/api/v1/schema/" in text:
            sid = self._parse_uri(text, "schema")
            if sid in self.schemas:
                return sid
        for schema in self.schemas.values():
            if schema["namespace"] == text:
                return int(schema["id"])
        raise self._error(404, "Schema matching query does not exist.", "DoesNotExist")

    def _inline_sets(self, kind: str, parent: int, data: dict[str, Any]) -> None:
        for entry in data.get("parameter_sets") or []:
            if not isinstance(entry, dict) or "schema" not in entry:
                raise self._bad(
                    "The 'schema' field has no data and doesn't allow a default or null value."
                )
            self._new_set(kind, parent, entry["schema"], entry.get("parameters") or [])

    def _new_set(self, kind: str, parent: int, schema: Any, parameters: list[Any]) -> int:
        schema_id = self._resolve_schema(schema)
        sid = self._next(f"{kind}parameterset")
        self.parameter_sets[kind][sid] = {"id": sid, kind: parent, "schema": schema_id}
        for p in parameters:
            if not isinstance(p, dict) or "name" not in p:
                raise self._bad(
                    "The 'name' field has no data and doesn't allow a default or null value."
                )
            self._new_parameter(kind, sid, p["name"], p.get("value"))
        return sid

    def _new_parameter(self, kind: str, set_id: int, name: Any, value: Any) -> int:
        schema_id = self.parameter_sets[kind][set_id]["schema"]
        text = str(name)
        pn_id: int | None = None
        if "/api/v1/parametername/" in text:
            pn_id = self._parse_uri(text, "parametername")
            if pn_id not in self.parameter_names:
                pn_id = None
        if pn_id is None:
            pn_id = next(
                (
                    p["id"]
                    for p in self.parameter_names.values()
                    if p["schema"] == schema_id and p["name"] == text
                ),
                None,
            )
        if pn_id is None:  # MyTardis creates unknown names in the set's schema
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            pn_id = self._add_parameter_name(schema_id, text, _NUMERIC if numeric else _STRING)
        pid = self._next(f"{kind}parameter")
        param: dict[str, Any] = {
            "id": pid,
            "name": pn_id,
            "parameterset": set_id,
            "string_value": None,
            "numerical_value": None,
            "datetime_value": None,
            "link_id": None,
        }
        dtype = self.parameter_names[pn_id]["data_type"]
        if value is not None:
            if dtype == _NUMERIC:
                try:
                    param["numerical_value"] = float(value)
                except (TypeError, ValueError):
                    raise self._error(
                        500, f"could not convert string to float: '{value}'", "ValueError"
                    ) from None
            elif dtype == _DATETIME:
                param["datetime_value"] = str(value)
            elif dtype == _LINK:
                param["string_value"] = str(value)
            else:
                param["string_value"] = str(value)
        self.parameters[kind][pid] = param
        return pid

    # ------------------------------------------------------------------------------------------------
    # Datafiles and replicas
    # ------------------------------------------------------------------------------------------------
    def _file_path(self, df: dict[str, Any]) -> str:
        ds = self.datasets[df["dataset"]]
        slug = re.sub(r"[^A-Za-z0-9]+", "_", ds["description"]).strip("_") or "dataset"
        directory = (df.get("directory") or "").strip("/")
        return f"{slug}-{ds['id']}/" + (f"{directory}/" if directory else "") + str(df["filename"])

    def _new_datafile(self, data: dict[str, Any]) -> int:
        fid = self._next("dataset_file")
        now = _now()
        self.datafiles[fid] = {
            "id": fid,
            "dataset": data["dataset"],
            "filename": data["filename"],
            "directory": data.get("directory") or "",
            "size": data.get("size"),
            "mimetype": data.get("mimetype") or "application/octet-stream",
            "md5sum": data.get("md5sum") or "",
            "sha512sum": data.get("sha512sum") or "",
            "created_time": data.get("created_time") or now,
            "modification_time": data.get("modification_time") or now,
            "deleted": False,
            "deleted_time": None,
            "version": 1,
        }
        return fid

    def _new_replica(self, datafile_id: int, box_id: int, path: str) -> int:
        rid = self._next("replica")
        self.replicas[rid] = {
            "id": rid,
            "datafile": datafile_id,
            "storage_box": box_id,
            "uri": path,
            "verified": False,
            "last_verified_time": None,
            "created_time": _now(),
        }
        return rid

    def _verify_replica(self, rid: int) -> None:
        rep = self.replicas[rid]
        df = self.datafiles[rep["datafile"]]
        content = self.stored.get((self.storage_boxes[rep["storage_box"]]["name"], rep["uri"]))
        ok = content is not None
        if ok and df["md5sum"]:
            ok = hashlib.md5(content or b"").hexdigest() == df["md5sum"]
        if ok and df["size"] is not None:
            ok = len(content or b"") == int(df["size"])
        rep["verified"] = ok
        rep["last_verified_time"] = _now()

    def _register_replica(self, fid: int, entry: dict[str, Any]) -> int:
        location = entry.get("location")
        box = next((b for b in self.storage_boxes.values() if b["name"] == location), None)
        if box is None:
            box = self._box_by_name(self.DEFAULT_BOX)
        path = str(entry.get("url") or entry.get("uri") or "").lstrip("/")
        rid = self._new_replica(fid, box["id"], path)
        self._verify_replica(rid)
        return rid

    def _create_datafile(
        self, user: dict[str, Any], data: dict[str, Any], upload: bytes | None
    ) -> httpx.Response:
        if data.get("dataset") is None:
            raise self._error(500, "'dataset'", "KeyError")
        did = self._parse_uri(data["dataset"], "dataset")
        ds = self.datasets.get(did)
        if ds is None:
            raise self._error(
                404,
                f"The URL provided '{data['dataset']}' was not a link to a valid resource.",
                "NotFound",
            )
        if not (
            self._has_perm(user, "change_dataset")
            and self._has_perm(user, "add_datafile")
            and self._can_write_dataset(user, ds)
        ):
            raise self._unauthorized()
        self._require(data, "filename")
        directory = data.get("directory") or ""
        for other in self.datafiles.values():
            if (other["dataset"], other["directory"], other["filename"]) == (
                did,
                directory,
                data["filename"],
            ):
                return _empty(409)
        fields = dict(data, dataset=did)
        if upload is not None:
            if not fields.get("md5sum"):
                fields["md5sum"] = hashlib.md5(upload).hexdigest()
            if fields.get("size") is None:
                fields["size"] = len(upload)
        fid = self._new_datafile(fields)
        df = self.datafiles[fid]
        location = self.uri("dataset_file", fid)
        if upload is not None:
            box = self._box_by_name(self.DEFAULT_BOX)
            path = self._file_path(df)
            self.stored[(box["name"], path)] = upload
            self._verify_replica(self._new_replica(fid, box["id"], path))
            return _empty(201, {"Location": location})
        replicas = data.get("replicas") or []
        if replicas:
            for entry in replicas:
                self._register_replica(fid, entry)
            return _empty(201, {"Location": location})
        staging = next(
            (
                b
                for b in self.storage_boxes.values()
                if any(
                    a["storage_box"] == b["id"] and a["key"] == "type" and a["value"] == "receiving"
                    for a in self.box_attributes.values()
                )
            ),
            None,
        )
        if staging is None:
            raise self._error(500, "", "NotImplementedError")
        path = self._file_path(df)
        self._new_replica(fid, staging["id"], path)
        temp_url = self._box_location(staging).rstrip("/") + "/" + path
        return _empty(201, {"Location": location}, temp_url.encode())

    def _download_file(self, user: dict[str, Any] | None, pk: int) -> httpx.Response:
        df = self.datafiles.get(pk)
        if df is None:
            raise self._error(404, "DataFile matching query does not exist.", "DoesNotExist")
        if not self._can_download_datafile(user, df):
            return _empty(403)
        content = self.file_bytes(pk)
        if content is None:
            return _empty(404)
        return httpx.Response(
            200,
            content=content,
            headers={
                "Content-Type": df["mimetype"],
                "Content-Length": str(len(content)),
                "Content-Disposition": f'attachment; filename="{df["filename"]}"',
            },
        )

    def _verify_file(self, user: dict[str, Any] | None, pk: int) -> httpx.Response:
        df = self.datafiles.get(pk)
        if df is None:
            raise self._error(404, "DataFile matching query does not exist.", "DoesNotExist")
        if not self._can_download_datafile(user, df):
            return _empty(403)
        for rep in self._replicas_of(pk):
            self._verify_replica(rep["id"])
        return _empty(200)

    # ------------------------------------------------------------------------------------------------
    # Update and delete
    # ------------------------------------------------------------------------------------------------
    _WRITABLE: ClassVar[dict[str, set[str]]] = {
        "experiment": {
            "title",
            "description",
            "institution_name",
            "url",
            "start_time",
            "end_time",
            "handle",
            "public_access",
        },
        "dataset": {"description", "directory", "immutable"},
        "dataset_file": {"filename", "directory", "size", "mimetype", "md5sum", "sha512sum"},
        "instrument": {"name"},
    }

    def _update(
        self, request: httpx.Request, user: dict[str, Any] | None, res: str, obj: dict[str, Any]
    ) -> httpx.Response:
        data, _ = self._body(request)
        if user is None:
            raise self._unauthorized()
        if res == "experiment":
            allowed = self._has_perm(user, "change_experiment") and self._can_write_exp(
                user, obj["id"]
            )
        elif res == "dataset":
            allowed = self._has_perm(user, "change_dataset") and self._can_write_dataset(user, obj)
        elif res == "dataset_file":
            allowed = self._has_perm(user, "change_datafile") and self._can_write_dataset(
                user, self.datasets[obj["dataset"]]
            )
        elif res == "instrument":
            allowed = obj["facility"] in self._managed_facilities(user)
        else:
            allowed = False
        if not allowed:
            raise self._unauthorized()
        if request.method == "PUT" and res == "experiment":
            self._require(data, "title")
        for key in self._WRITABLE.get(res, set()) & set(data):
            obj[key] = int(data[key]) if key == "public_access" else data[key]
        if res == "dataset" and "experiments" in data:
            obj["experiments"] = [self._parse_uri(x, "experiment") for x in data["experiments"]]
        if res == "instrument" and data.get("facility"):
            obj["facility"] = self._parse_uri(data["facility"], "facility")
        for stamp in ("update_time", "modified_time", "modification_time"):
            if stamp in obj:
                obj[stamp] = _now()
        if res in ("experiment", "dataset"):
            self._inline_sets(res, obj["id"], data)
        if res in self._ALWAYS_RETURN:
            return json_response(self._dehydrate(user, res, obj), 202)
        return _empty(202 if request.method == "PATCH" else 204)

    def _delete(self, user: dict[str, Any] | None, res: str, obj: dict[str, Any]) -> httpx.Response:
        if res != "experiment" or user is None:
            raise self._unauthorized()
        flags = self._acl_flags(user, obj["id"])
        if not (
            self._has_perm(user, "change_experiment") and (user["is_superuser"] or flags["delete"])
        ):
            raise self._unauthorized()
        del self.experiments[obj["id"]]
        for aid in [a for a, acl in self.acls.items() if acl["object_id"] == obj["id"]]:
            del self.acls[aid]
        for sid in [
            s
            for s, ps in self.parameter_sets["experiment"].items()
            if ps["experiment"] == obj["id"]
        ]:
            del self.parameter_sets["experiment"][sid]
        return _empty(204)
