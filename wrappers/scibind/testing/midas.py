"""A stateful fake of the Midas Server JSON web API (``/api/json?method=midas....``).

It keeps users (email, password, API keys per application, optional one-time-password device), tokens
with an expiry, communities, folders, items with revisions, bitstreams and metadata, access policies,
upload sessions and the state of the driver modules (tracker producers/trends/scalars, thumbnails,
BatchMake DAGs). It answers the way Midas 3.4 does:

* every answer is HTTP 200 JSON: ``{"stat": "ok", "code": "0", "message": "", "data": ...}`` or
  ``{"stat": "fail", "message": ..., "code": -101}`` (the codes are Midas' own: -100 internal, -101 invalid
  token or unknown method, -105 upload failed, -141 invalid upload token, -150 invalid parameter,
  -151 invalid policy; modules use -1, 403 and 404); ids and counts are decimal strings;
* parameters are read from the query string and from a form body alike; both ``/api/json?method=NAME``
  and the path form ``/api/json/NAME?method=NAME`` (what the generated client sends) are accepted;
* uploads: ``midas.upload.generatetoken`` returns an empty token when a bitstream with the given MD5 is
  already stored (the bitstream is added without an upload); ``midas.upload.perform`` appends the request
  body to the session and fails with -105 while fewer than ``length`` bytes have arrived, so a client can
  ask ``midas.upload.getoffset`` and send the rest;
* downloads redirect (302) to ``/download/?items=...`` / ``?folders=`` / ``?bitstream=...&offset=`` which
  return the bytes (a zip for several files); an item made by ``midas.link.create`` holds one bitstream whose
  path is the URL (no bytes), and downloading it redirects there.
"""

from __future__ import annotations

import hashlib
import io
import json
import secrets
import string
import time
import uuid as uuidlib
import zipfile
from collections.abc import Callable
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode

import httpx

from scibind.testing._base import FakeService, json_response, route

__all__ = [
    "MIDAS_INTERNAL_ERROR",
    "MIDAS_INVALID_PARAMETER",
    "MIDAS_INVALID_POLICY",
    "MIDAS_INVALID_TOKEN",
    "MIDAS_INVALID_UPLOAD_TOKEN",
    "MIDAS_UPLOAD_FAILED",
    "FakeMidas",
]

MIDAS_INTERNAL_ERROR = -100
MIDAS_INVALID_TOKEN = -101
MIDAS_UPLOAD_FAILED = -105
MIDAS_INVALID_UPLOAD_TOKEN = -141
MIDAS_INVALID_PARAMETER = -150
MIDAS_INVALID_POLICY = -151

_READ, _WRITE, _ADMIN = 0, 1, 2
_MODULES = ["api", "batchmake", "dicomextractor", "mfa", "solr", "thumbnailcreator", "tracker"]
_PUBLIC, _PRIVATE = 0, 2  # privacy_status of folders and items

Params = dict[str, str]


class _MidasError(Exception):
    """A ``stat: fail`` answer."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _is_link(bitstream: dict[str, Any]) -> bool:
    """A bitstream made by ``midas.link.create``: its path is an http(s) URL, it holds no bytes."""
    return str(bitstream.get("path", "")).startswith(("http://", "https://"))


def _strs(d: dict[str, Any]) -> dict[str, Any]:
    """A DAO array as Midas sends it: numbers as decimal text, None kept."""
    return {
        k: (str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v)
        for k, v in d.items()
    }


class FakeMidas(FakeService):
    """Stateful fake of a Midas Server (see the module docstring)."""

    default_origins: ClassVar[dict[str, str]] = {"api": "https://midas.fake.test"}
    VERSION = "3.4.2"

    def __init__(
        self, origins: dict[str, str] | None = None, *, token_lifetime_minutes: int = 100
    ) -> None:
        super().__init__(origins)
        self.token_lifetime_minutes = token_lifetime_minutes
        #: seconds added to the wall clock (see :meth:`advance_time`)
        self.time_offset = 0.0
        self._ids: dict[str, int] = {}
        self.users: dict[int, dict[str, Any]] = {}
        self.tokens: dict[str, dict[str, Any]] = {}
        self.mfa_tokens: dict[int, dict[str, Any]] = {}
        self.communities: dict[int, dict[str, Any]] = {}
        self.folders: dict[int, dict[str, Any]] = {}
        self.items: dict[int, dict[str, Any]] = {}
        self.revisions: dict[int, dict[str, Any]] = {}
        self.bitstreams: dict[int, dict[str, Any]] = {}
        self.metadata: dict[int, dict[str, Any]] = {}
        #: stored bytes by MD5
        self.blobs: dict[str, bytes] = {}
        self.uploads: dict[str, dict[str, Any]] = {}
        self.producers: dict[int, dict[str, Any]] = {}
        self.trends: dict[int, dict[str, Any]] = {}
        self.scalars: dict[int, dict[str, Any]] = {}
        self.submissions: dict[int, dict[str, Any]] = {}
        self.item_thumbnails: dict[int, dict[str, Any]] = {}
        self.condor_dags: dict[int, dict[str, Any]] = {}
        self.condor_jobs: dict[int, dict[str, Any]] = {}
        #: scalars whose threshold notifications were scheduled (those added without ``silent``)
        self.notified_scalars: list[int] = []

    # ------------------------------------------------------------------------------------------------
    # Seeding helpers and clock
    # ------------------------------------------------------------------------------------------------
    def _next(self, kind: str) -> int:
        self._ids[kind] = self._ids.get(kind, 0) + 1
        return self._ids[kind]

    def _now(self) -> float:
        return time.time() + self.time_offset

    def _stamp(self) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(self._now()))

    def advance_time(self, seconds: float) -> None:
        """Move the fake's clock forward (tokens expire by it)."""
        self.time_offset += seconds

    def add_user(
        self,
        email: str,
        api_key: str | None = None,
        *,
        password: str = "password",
        firstname: str = "First",
        lastname: str = "Last",
        admin: bool = False,
        appname: str = "Default",
        otp: str | None = None,
    ) -> int:
        """Create a user with a default API key (for ``appname``) and a root folder; returns the user id.

        ``otp`` gives the user a one-time-password device whose (fixed) password is ``otp``.
        """
        with self.lock:
            uid = self._next("user")
            user = {
                "user_id": uid,
                "email": email,
                "firstname": firstname,
                "lastname": lastname,
                "password": password,
                "admin": 1 if admin else 0,
                "privacy": 0,
                "view": 0,
                "company": "",
                "thumbnail": None,
                "creation": self._stamp(),
                "uuid": uuidlib.uuid4().hex,
                "city": "",
                "country": "",
                "website": "",
                "biography": "",
                "apikeys": {},
                "otp": otp,
            }
            user["apikeys"] = {appname: api_key or secrets.token_hex(20)}
            self.users[uid] = user
            root = self._new_folder(f"user_{uid}", None, uid, public=False, top=True)
            user["folder_id"] = root
            self._new_folder("Public", root, uid, public=True)
            self._new_folder("Private", root, uid, public=False)
            return uid

    def add_community(
        self, name: str, owner: str, *, public: bool = True, description: str = ""
    ) -> int:
        """Create a community (with Public and Private folders) administered by ``owner``; returns its id."""
        with self.lock:
            return self._new_community(
                name, self._user_by_email(owner)["user_id"], public, description
            )

    def folder_id(self, path: str) -> int:
        """Id of a folder by path: ``"<community name>/Public/sub"`` or ``"<email>/Private"``."""
        with self.lock:
            head, *rest = path.strip("/").split("/")
            comm = next((c for c in self.communities.values() if c["name"] == head), None)
            fid = comm["folder_id"] if comm else self._user_by_email(head)["folder_id"]
            for part in rest:
                fid = next(
                    f["folder_id"]
                    for f in self.folders.values()
                    if f["parent_id"] == fid and f["name"] == part
                )
            return int(fid)

    def add_folder(
        self, name: str, parent_id: int, owner: str, *, public: bool | None = None
    ) -> int:
        """Create a folder under ``parent_id``; returns its id."""
        with self.lock:
            return self._new_folder(
                name, parent_id, self._user_by_email(owner)["user_id"], public=public
            )

    def add_item(
        self,
        name: str,
        folder_id: int,
        owner: str,
        content: bytes | None = None,
        *,
        filename: str | None = None,
        public: bool | None = None,
    ) -> int:
        """Create an item in a folder, with one revision holding ``content`` if given; returns its id."""
        with self.lock:
            uid = self._user_by_email(owner)["user_id"]
            iid = self._new_item(name, folder_id, uid, public=public)
            if content is not None:
                rev = self._new_revision(iid, uid, "Initial revision")
                self._add_bitstream(rev, filename or name, content)
            return iid

    def item_bytes(self, item_id: int) -> dict[str, bytes]:
        """The bitstreams of an item's last revision, by name."""
        with self.lock:
            rev = self._last_revision(item_id)
            return (
                {}
                if rev is None
                else {
                    b["name"]: self.blobs[b["checksum"]]
                    for b in self.bitstreams.values()
                    if b["itemrevision_id"] == rev["itemrevision_id"] and not _is_link(b)
                }
            )

    # ------------------------------------------------------------------------------------------------
    # HTTP routes
    # ------------------------------------------------------------------------------------------------
    @route("GET", r"/api/json")
    @route("POST", r"/api/json")
    @route("PUT", r"/api/json")
    def _json_api(self, request: httpx.Request) -> httpx.Response:
        return self._call(request)

    @route("GET", r"/api/json/(?P<segment>[^/]+)")
    @route("POST", r"/api/json/(?P<segment>[^/]+)")
    @route("PUT", r"/api/json/(?P<segment>[^/]+)")
    def _json_api_path_form(self, request: httpx.Request, segment: str) -> httpx.Response:
        return self._call(request)

    @route("GET", r"/download/?")
    def _download_route(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            return self._download(dict(request.url.params))

    def _params(self, request: httpx.Request) -> Params:
        params: Params = dict(request.url.params)
        ctype = request.headers.get("Content-Type", "")
        if request.method == "POST" and ctype.startswith("application/x-www-form-urlencoded"):
            params.update(dict(parse_qsl(request.content.decode(), keep_blank_values=True)))
        return params

    def _call(self, request: httpx.Request) -> httpx.Response:
        params = self._params(request)
        name = params.get("method")
        if not name:
            return httpx.Response(
                200,
                text="Inconsistent request: please set a method parameter",
                headers={"Content-Type": "text/html; charset=UTF-8"},
            )
        handler = self._methods().get(name)
        with self.lock:
            try:
                if handler is None:
                    raise _MidasError(
                        MIDAS_INVALID_TOKEN,
                        f"Server error. Requested method {name} does not exist.",
                    )
                result = handler(request, params)
            except _MidasError as err:
                return json_response({"stat": "fail", "message": err.message, "code": err.code})
        if isinstance(result, httpx.Response):
            return result
        return json_response({"stat": "ok", "code": "0", "message": "", "data": result})

    def _methods(self) -> dict[str, Callable[[httpx.Request, Params], Any]]:
        table: dict[str, Callable[[httpx.Request, Params], Any]] = {}
        for attr in dir(type(self)):
            if attr.startswith("m_"):
                table["midas." + attr[2:].replace("__", ".")] = getattr(self, attr)
        return table

    # ------------------------------------------------------------------------------------------------
    # Helpers: auth, parameters, policies, serialisation
    # ------------------------------------------------------------------------------------------------
    @staticmethod
    def _need(params: Params, *names: str) -> None:
        for name in names:
            if name not in params:
                raise _MidasError(MIDAS_INVALID_PARAMETER, f"Parameter {name} is not defined")

    def _user(self, params: Params) -> dict[str, Any] | None:
        """The caller: None when anonymous; -101 for an unknown or expired token."""
        token = params.get("token")
        if token is None:
            return None
        entry = self.tokens.get(token)
        if entry is None or entry["expires"] <= self._now():
            raise _MidasError(MIDAS_INVALID_TOKEN, "Invalid token")
        return self.users.get(entry["user_id"])

    def _user_by_email(self, email: str) -> dict[str, Any]:
        user = next((u for u in self.users.values() if u["email"] == email), None)
        if user is None:
            raise KeyError(f"no user {email!r}")
        return user

    @staticmethod
    def _int(params: Params, name: str) -> int:
        try:
            return int(params[name])
        except (KeyError, ValueError):
            raise _MidasError(MIDAS_INVALID_PARAMETER, f"Parameter {name} is not defined") from None

    @staticmethod
    def _level(user: dict[str, Any] | None, res: dict[str, Any]) -> int:
        """The caller's policy level on a folder, item or community (-1: none)."""
        if user is not None and user["admin"]:
            return _ADMIN
        level = res["policies"].get(user["user_id"], -1) if user is not None else -1
        if res.get("public") and level < _READ:
            level = _READ
        return int(level)

    def _check(self, user: dict[str, Any] | None, res: dict[str, Any] | None, level: int) -> bool:
        return res is not None and self._level(user, res) >= level

    def _folder_out(self, f: dict[str, Any]) -> dict[str, Any]:
        keys = (
            "folder_id",
            "left_index",
            "right_index",
            "parent_id",
            "name",
            "description",
            "view",
            "date_update",
            "teaser",
            "uuid",
            "date_creation",
        )
        out = {k: f[k] for k in keys}
        out["privacy_status"] = _PUBLIC if f["public"] else _PRIVATE
        out["parent_id"] = f["parent_id"] if f["parent_id"] is not None else -1
        return _strs(out)

    def _item_out(self, i: dict[str, Any]) -> dict[str, Any]:
        keys = (
            "item_id",
            "name",
            "date_update",
            "description",
            "type",
            "view",
            "download",
            "sizebytes",
            "uuid",
            "date_creation",
            "thumbnail_id",
        )
        out = {k: i[k] for k in keys}
        out["privacy_status"] = _PUBLIC if i["public"] else _PRIVATE
        rev = self._last_revision(i["item_id"])
        out["sizebytes"] = sum(
            b["sizebytes"]
            for b in self.bitstreams.values()
            if rev and b["itemrevision_id"] == rev["itemrevision_id"]
        )
        return _strs(out)

    def _community_out(self, c: dict[str, Any]) -> dict[str, Any]:
        keys = (
            "community_id",
            "name",
            "description",
            "creation",
            "folder_id",
            "admingroup_id",
            "moderatorgroup_id",
            "membergroup_id",
            "view",
            "can_join",
            "uuid",
        )
        out = {k: c[k] for k in keys}
        out["privacy"] = 0 if c["public"] else 1
        return _strs(out)

    def _user_out(self, u: dict[str, Any]) -> dict[str, Any]:
        keys = (
            "user_id",
            "firstname",
            "lastname",
            "email",
            "company",
            "thumbnail",
            "privacy",
            "admin",
            "view",
            "folder_id",
            "creation",
            "uuid",
            "city",
            "country",
            "website",
            "biography",
        )
        return _strs({k: u[k] for k in keys})

    def _revision_out(self, r: dict[str, Any], with_bitstreams: bool = True) -> dict[str, Any]:
        out = _strs({k: v for k, v in r.items()})
        if with_bitstreams:
            out["bitstreams"] = [
                _strs(dict(b))
                for b in self.bitstreams.values()
                if b["itemrevision_id"] == r["itemrevision_id"]
            ]
        return out

    # ------------------------------------------------------------------------------------------------
    # Model operations
    # ------------------------------------------------------------------------------------------------
    def _new_folder(
        self,
        name: str,
        parent_id: int | None,
        owner: int,
        *,
        public: bool | None = None,
        top: bool = False,
        description: str = "",
        uid: str = "",
    ) -> int:
        fid = self._next("folder")
        parent = self.folders.get(parent_id) if parent_id is not None else None
        policies = dict(parent["policies"]) if parent else {}
        policies[owner] = _ADMIN
        now = self._stamp()
        self.folders[fid] = {
            "folder_id": fid,
            "parent_id": parent_id,
            "name": name,
            "description": description,
            "left_index": 0,
            "right_index": 0,
            "view": 0,
            "date_update": now,
            "date_creation": now,
            "teaser": "",
            "uuid": uid or uuidlib.uuid4().hex,
            "policies": policies,
            "public": (parent["public"] if parent else False) if public is None else public,
        }
        return fid

    def _new_community(
        self, name: str, owner: int, public: bool, description: str, uid: str = ""
    ) -> int:
        cid = self._next("community")
        root = self._new_folder(f"community_{cid}", None, owner, public=public, top=True)
        self._new_folder("Public", root, owner, public=True)
        self._new_folder("Private", root, owner, public=False)
        self.communities[cid] = {
            "community_id": cid,
            "name": name,
            "description": description,
            "creation": self._stamp(),
            "folder_id": root,
            "admingroup_id": self._next("group"),
            "moderatorgroup_id": self._next("group"),
            "membergroup_id": self._next("group"),
            "view": 0,
            "can_join": 0,
            "uuid": uid or uuidlib.uuid4().hex,
            "public": public,
            "policies": {owner: _ADMIN},
        }
        return cid

    def _new_item(
        self,
        name: str,
        folder_id: int,
        owner: int,
        *,
        public: bool | None = None,
        description: str = "",
        uid: str = "",
    ) -> int:
        folder = self.folders[folder_id]
        iid = self._next("item")
        now = self._stamp()
        policies = dict(folder["policies"])
        policies[owner] = _ADMIN
        self.items[iid] = {
            "item_id": iid,
            "name": name,
            "description": description,
            "type": 0,
            "view": 0,
            "download": 0,
            "sizebytes": 0,
            "date_creation": now,
            "date_update": now,
            "thumbnail_id": None,
            "uuid": uid or uuidlib.uuid4().hex,
            "folders": [folder_id],
            "policies": policies,
            "public": folder["public"] if public is None else public,
        }
        return iid

    def _last_revision(self, item_id: int) -> dict[str, Any] | None:
        revs = [r for r in self.revisions.values() if r["item_id"] == item_id]
        return max(revs, key=lambda r: r["revision"]) if revs else None

    def _new_revision(self, item_id: int, user_id: int, changes: str) -> dict[str, Any]:
        last = self._last_revision(item_id)
        rid = self._next("revision")
        self.revisions[rid] = {
            "itemrevision_id": rid,
            "item_id": item_id,
            "revision": (last["revision"] + 1) if last else 1,
            "date": self._stamp(),
            "changes": changes,
            "user_id": user_id,
            "license_id": None,
            "uuid": uuidlib.uuid4().hex,
        }
        return self.revisions[rid]

    def _add_bitstream(self, rev: dict[str, Any], name: str, content: bytes) -> int:
        checksum = hashlib.md5(content).hexdigest()
        self.blobs[checksum] = content
        return self._add_bitstream_record(rev, name, checksum, len(content))

    def _add_bitstream_record(
        self, rev: dict[str, Any], name: str, checksum: str, size: int
    ) -> int:
        bid = self._next("bitstream")
        self.bitstreams[bid] = {
            "bitstream_id": bid,
            "itemrevision_id": rev["itemrevision_id"],
            "name": name,
            "mimetype": "application/octet-stream",
            "sizebytes": size,
            "checksum": checksum,
            "path": f"{checksum[:2]}/{checksum[2:4]}/{checksum}",
            "assetstore_id": 1,
            "date": self._stamp(),
        }
        self.items[rev["item_id"]]["date_update"] = self._stamp()
        return bid

    def _subtree(self, folder_id: int) -> list[int]:
        out = [folder_id]
        for f in list(self.folders.values()):
            if f["parent_id"] == folder_id:
                out += self._subtree(f["folder_id"])
        return out

    def _delete_item(self, item_id: int) -> None:
        for rev in [r for r in self.revisions.values() if r["item_id"] == item_id]:
            for bid in [
                b
                for b, bs in self.bitstreams.items()
                if bs["itemrevision_id"] == rev["itemrevision_id"]
            ]:
                del self.bitstreams[bid]
            for mid in [
                m
                for m, md in self.metadata.items()
                if md["itemrevision_id"] == rev["itemrevision_id"]
            ]:
                del self.metadata[mid]
            del self.revisions[rev["itemrevision_id"]]
        self.items.pop(item_id, None)

    def _delete_folder(self, folder_id: int) -> None:
        doomed = set(self._subtree(folder_id))
        for item in list(self.items.values()):
            item["folders"] = [f for f in item["folders"] if f not in doomed]
            if not item["folders"]:
                self._delete_item(item["item_id"])
        for fid in doomed:
            self.folders.pop(fid, None)

    # ------------------------------------------------------------------------------------------------
    # System methods
    # ------------------------------------------------------------------------------------------------
    def m_login(self, request: httpx.Request, p: Params) -> Any:
        self._need(p, "email", "appname", "apikey")
        user = next((u for u in self.users.values() if u["email"] == p["email"]), None)
        if user is None or user["apikeys"].get(p["appname"]) != p["apikey"]:
            raise _MidasError(
                MIDAS_INVALID_PARAMETER, "Unable to authenticate. Please check credentials."
            )
        now = self._now()
        token = next(
            (
                t
                for t, e in self.tokens.items()
                if e["user_id"] == user["user_id"]
                and e["appname"] == p["appname"]
                and e["expires"] > now
            ),
            None,
        )
        if token is None:
            alphabet = string.ascii_letters + string.digits
            token = "".join(secrets.choice(alphabet) for _ in range(40))
            self.tokens[token] = {
                "user_id": user["user_id"],
                "appname": p["appname"],
                "expires": now + 60 * self.token_lifetime_minutes,
            }
        if user["otp"]:
            mid = self._next("mfa")
            self.mfa_tokens[mid] = {"user_id": user["user_id"], "token": token}
            return {"mfa_token_id": str(mid)}
        return {"token": token}

    def m_version(self, request: httpx.Request, p: Params) -> Any:
        return {"version": self.VERSION}

    def m_info(self, request: httpx.Request, p: Params) -> Any:
        return {
            "version": self.VERSION,
            "name": "Midas Server",
            "description": "Fake Midas Server",
            "keywords": "",
            "modules": _MODULES,
            "resources": {},
        }

    def m_modules__list(self, request: httpx.Request, p: Params) -> Any:
        return {"modules": _MODULES}

    def m_user__apikey__default(self, request: httpx.Request, p: Params) -> Any:
        self._need(p, "email", "password")
        if request.method != "POST":
            raise _MidasError(-153, "POST method required")
        user = next((u for u in self.users.values() if u["email"] == p["email"]), None)
        if user is None or user["password"] != p["password"]:
            raise _MidasError(MIDAS_INVALID_PARAMETER, "Login failed")
        return {"apikey": user["apikeys"].get("Default", "")}

    def m_resource__search(self, request: httpx.Request, p: Params) -> Any:
        self._need(p, "search")
        user = self._user(p)
        words = p["search"].lower()
        items = [
            dict(self._item_out(i), resultType="item")
            for i in self.items.values()
            if words in i["name"].lower() and self._check(user, i, _READ)
        ]
        folders = [
            dict(self._folder_out(f), resultType="folder")
            for f in self.folders.values()
            if f["parent_id"] is not None
            and words in f["name"].lower()
            and self._check(user, f, _READ)
        ]
        comms = [
            dict(self._community_out(c), resultType="community")
            for c in self.communities.values()
            if words in c["name"].lower() and self._check(user, c, _READ)
        ]
        users = [
            dict(self._user_out(u), resultType="user")
            for u in self.users.values()
            if words in f"{u['firstname']} {u['lastname']}".lower()
        ]
        for u in users:
            u.pop("email", None)
        return {
            "nitems": len(items),
            "nfolders": len(folders),
            "ncommunities": len(comms),
            "nusers": len(users),
            "results": folders + items + comms + users,
        }

    def m_mfa__otp__login(self, request: httpx.Request, p: Params) -> Any:
        for name in ("otp", "mfaTokenId"):
            if name not in p:
                raise _MidasError(-1, f"Parameter {name} must be set.")
        temp = self.mfa_tokens.pop(int(p["mfaTokenId"]) if p["mfaTokenId"].isdigit() else -1, None)
        if temp is None:
            raise _MidasError(-1, "Invalid MFA token id")
        if self.users[temp["user_id"]]["otp"] != p["otp"]:
            raise _MidasError(-1, "Incorrect OTP")
        return {"token": temp["token"]}

    # ------------------------------------------------------------------------------------------------
    # Communities
    # ------------------------------------------------------------------------------------------------
    def m_community__list(self, request: httpx.Request, p: Params) -> Any:
        user = self._user(p)
        found = [c for c in self.communities.values() if self._check(user, c, _READ)]
        return [self._community_out(c) for c in sorted(found, key=lambda c: c["name"])]

    def m_community__get(self, request: httpx.Request, p: Params) -> Any:
        user = self._user(p)
        if "id" in p:
            comm = self.communities.get(self._int(p, "id"))
        elif "name" in p:
            comm = next((c for c in self.communities.values() if c["name"] == p["name"]), None)
        else:
            raise _MidasError(MIDAS_INVALID_PARAMETER, "Parameter id or name is not defined")
        if not self._check(user, comm, _READ):
            raise _MidasError(
                MIDAS_INVALID_POLICY,
                "This community doesn't exist or you don't have the permissions.",
            )
        return self._community_out(comm or {})

    def m_community__create(self, request: httpx.Request, p: Params) -> Any:
        self._need(p, "name")
        user = self._user(p)
        if not user:
            raise _MidasError(MIDAS_INVALID_POLICY, "Unable to find user")
        existing = next(
            (c for c in self.communities.values() if p.get("uuid") and c["uuid"] == p["uuid"]), None
        )
        public = p.get("privacy", "Public")
        if public not in ("Public", "Private"):
            raise _MidasError(MIDAS_INVALID_PARAMETER, "privacy should be one of [Public|Private]")
        if existing is not None:
            if not self._check(user, existing, _WRITE):
                raise _MidasError(MIDAS_INVALID_POLICY, "Invalid policy")
            existing["name"] = p["name"]
            existing["description"] = p.get("description", existing["description"])
            return self._community_out(existing)
        if not user["admin"]:
            raise _MidasError(MIDAS_INVALID_POLICY, "Only admins can create communities")
        cid = self._new_community(
            p["name"],
            user["user_id"],
            public == "Public",
            p.get("description", ""),
            p.get("uuid", ""),
        )
        return self._community_out(self.communities[cid])

    def m_community__children(self, request: httpx.Request, p: Params) -> Any:
        self._need(p, "id")
        user = self._user(p)
        comm = self.communities.get(self._int(p, "id"))
        if comm is None:
            raise _MidasError(MIDAS_INVALID_PARAMETER, "Invalid community id")
        return {
            "folders": [
                self._folder_out(f)
                for f in self.folders.values()
                if f["parent_id"] == comm["folder_id"] and self._check(user, f, _READ)
            ]
        }

    def m_community__delete(self, request: httpx.Request, p: Params) -> Any:
        self._need(p, "id")
        user = self._user(p)
        if not user:
            raise _MidasError(MIDAS_INVALID_TOKEN, "Unable to find user")
        comm = self.communities.get(self._int(p, "id"))
        if not self._check(user, comm, _ADMIN) or comm is None:
            raise _MidasError(
                MIDAS_INVALID_POLICY,
                "This community doesn't exist  or you don't have the permissions.",
            )
        self._delete_folder(comm["folder_id"])
        del self.communities[comm["community_id"]]
        return None

    # ------------------------------------------------------------------------------------------------
    # Folders
    # ------------------------------------------------------------------------------------------------
    def m_folder__get(self, request: httpx.Request, p: Params) -> Any:
        self._need(p, "id")
        user = self._user(p)
        folder = self.folders.get(self._int(p, "id"))
        if not self._check(user, folder, _READ) or folder is None:
            raise _MidasError(
                MIDAS_INVALID_POLICY, "This folder doesn't exist or you don't have the permissions."
            )
        out = self._folder_out(folder)
        parent = self.folders.get(folder["parent_id"]) if folder["parent_id"] is not None else None
        out["parent"] = self._folder_out(parent) if parent else False
        return out

    def m_folder__create(self, request: httpx.Request, p: Params) -> Any:
        self._need(p, "name")
        user = self._user(p)
        if not user:
            raise _MidasError(MIDAS_INVALID_POLICY, "Cannot create folder anonymously")
        self._need(p, "parentid")
        privacy = p.get("privacy")
        if privacy is not None and privacy not in ("Public", "Private"):
            raise _MidasError(MIDAS_INVALID_PARAMETER, "privacy should be one of [Public|Private]")
        public = None if privacy is None else privacy == "Public"
        parent_id = self._int(p, "parentid")
        if parent_id == -1:
            parent_id = user["folder_id"]
        else:
            parent = self.folders.get(parent_id)
            if parent is None:
                raise _MidasError(MIDAS_INVALID_PARAMETER, "Parent doesn't exist")
            if not self._check(user, parent, _WRITE):
                raise _MidasError(MIDAS_INVALID_POLICY, "Invalid policy")
            existing = next(
                (
                    f
                    for f in self.folders.values()
                    if f["parent_id"] == parent_id and f["name"] == p["name"]
                ),
                None,
            )
            if existing is not None:
                if "reuseExisting" in p:
                    return self._folder_out(existing)
                raise _MidasError(
                    MIDAS_INVALID_PARAMETER,
                    "A folder already exists in that parent with that name. Pass reuseExisting to "
                    "reuse it.",
                )
        fid = self._new_folder(
            p["name"],
            parent_id,
            user["user_id"],
            public=public,
            description=p.get("description", ""),
            uid=p.get("uuid", ""),
        )
        return self._folder_out(self.folders[fid])

    def m_folder__children(self, request: httpx.Request, p: Params) -> Any:
        self._need(p, "id")
        user = self._user(p)
        folder = self.folders.get(self._int(p, "id"))
        if folder is None:
            raise _MidasError(MIDAS_INTERNAL_ERROR, "Invalid folder")
        folders = [
            self._folder_out(f)
            for f in self.folders.values()
            if f["parent_id"] == folder["folder_id"] and self._check(user, f, _READ)
        ]
        items = [
            dict(self._item_out(i), extraFields=[])
            for i in self.items.values()
            if folder["folder_id"] in i["folders"] and self._check(user, i, _READ)
        ]
        return {"folders": folders, "items": items}

    def m_folder__move(self, request: httpx.Request, p: Params) -> Any:
        self._need(p, "id", "dstfolderid")
        user = self._user(p)
        folder = self.folders.get(self._int(p, "id"))
        dst = self.folders.get(self._int(p, "dstfolderid"))
        if (
            folder is None
            or not self._check(user, folder, _ADMIN)
            or not self._check(user, dst, _WRITE)
        ):
            raise _MidasError(
                MIDAS_INVALID_POLICY, "This folder doesn't exist or you don't have the permissions."
            )
        if dst is None or dst["folder_id"] in self._subtree(folder["folder_id"]):
            raise _MidasError(MIDAS_INVALID_POLICY, "Unable to load destination folder.")
        folder["parent_id"] = dst["folder_id"]
        return self._folder_out(folder)

    def m_folder__delete(self, request: httpx.Request, p: Params) -> Any:
        self._need(p, "id")
        user = self._user(p)
        if not user:
            raise _MidasError(MIDAS_INVALID_TOKEN, "Unable to find user")
        folder = self.folders.get(self._int(p, "id"))
        if folder is None or not self._check(user, folder, _ADMIN):
            raise _MidasError(
                MIDAS_INVALID_POLICY,
                "This folder doesn't exist  or you don't have the permissions.",
            )
        self._delete_folder(folder["folder_id"])
        return None

    def m_folder__download(self, request: httpx.Request, p: Params) -> Any:
        self._need(p, "id")
        user = self._user(p)
        folder = self.folders.get(self._int(p, "id"))
        if folder is None or not self._check(user, folder, _READ):
            raise _MidasError(
                MIDAS_INVALID_POLICY, "This folder doesn't exist or you don't have the permissions."
            )
        return self._redirect({"folders": str(folder["folder_id"])}, user, p)

    # ------------------------------------------------------------------------------------------------
    # Items
    # ------------------------------------------------------------------------------------------------
    def _readable_item(
        self, user: dict[str, Any] | None, p: Params, key: str = "id", level: int = _READ
    ) -> dict[str, Any]:
        self._need(p, key)
        item = self.items.get(self._int(p, key))
        if item is None or not self._check(user, item, level):
            what = "the permissions" if level == _READ else "write permission"
            raise _MidasError(
                MIDAS_INVALID_POLICY, f"This item doesn't exist or you don't have {what}."
            )
        return item

    def m_item__get(self, request: httpx.Request, p: Params) -> Any:
        user = self._user(p)
        item = self._readable_item(user, p)
        out = self._item_out(item)
        out["folder_id"] = str(item["folders"][0])
        revs = sorted(
            (r for r in self.revisions.values() if r["item_id"] == item["item_id"]),
            key=lambda r: r["revision"],
        )
        if "head" in p:
            revs = revs[-1:]
        out["revisions"] = [self._revision_out(r) for r in revs]
        out["extraFields"] = []
        return out

    def m_item__create(self, request: httpx.Request, p: Params) -> Any:
        self._need(p, "name")
        user = self._user(p)
        if not user:
            raise _MidasError(MIDAS_INVALID_POLICY, "Cannot create item anonymously")
        privacy = p.get("privacy")
        if privacy is not None and privacy not in ("Public", "Private"):
            raise _MidasError(MIDAS_INVALID_PARAMETER, "privacy should be one of [Public|Private]")
        existing = next(
            (i for i in self.items.values() if p.get("uuid") and i["uuid"] == p["uuid"]), None
        )
        if existing is not None:
            if not self._check(user, existing, _WRITE):
                raise _MidasError(MIDAS_INVALID_POLICY, "Invalid policy")
            existing["name"] = p["name"]
            existing["description"] = p.get("description", existing["description"])
            return self._item_out(existing)
        if "parentid" not in p:
            raise _MidasError(MIDAS_INVALID_PARAMETER, "Parameter parentid is not defined")
        folder = self.folders.get(self._int(p, "parentid"))
        if folder is None:
            raise _MidasError(MIDAS_INVALID_PARAMETER, "Parent folder doesn't exist")
        if not self._check(user, folder, _WRITE):
            raise _MidasError(MIDAS_INVALID_POLICY, "Invalid permissions on parent folder")
        iid = self._new_item(
            p["name"],
            folder["folder_id"],
            user["user_id"],
            public=None if privacy is None else privacy == "Public",
            description=p.get("description", ""),
            uid=p.get("uuid", ""),
        )
        return self._item_out(self.items[iid])

    def m_item__delete(self, request: httpx.Request, p: Params) -> Any:
        self._need(p, "id")
        user = self._user(p)
        if not user:
            raise _MidasError(MIDAS_INVALID_TOKEN, "Unable to find user")
        item = self._readable_item(user, p, level=_ADMIN)
        self._delete_item(item["item_id"])
        return None

    def m_item__move(self, request: httpx.Request, p: Params) -> Any:
        self._need(p, "id", "srcfolderid", "dstfolderid")
        user = self._user(p)
        if not user:
            raise _MidasError(MIDAS_INVALID_POLICY, "Cannot move item anonymously")
        item = self.items.get(self._int(p, "id"))
        src = self.folders.get(self._int(p, "srcfolderid"))
        dst = self.folders.get(self._int(p, "dstfolderid"))
        if (
            item is None
            or not self._check(user, item, _ADMIN)
            or not self._check(user, dst, _WRITE)
        ):
            raise _MidasError(
                MIDAS_INVALID_POLICY, "This item doesn't exist or you don't have the permissions."
            )
        if src is None or dst is None:
            raise _MidasError(MIDAS_INVALID_POLICY, "Unable to load source or destination folder.")
        if src["folder_id"] != dst["folder_id"]:
            item["folders"] = [f for f in item["folders"] if f != src["folder_id"]] + [
                dst["folder_id"]
            ]
            item["policies"].update(dst["policies"])
        return dict(
            self._item_out(item),
            owningfolders=[self._folder_out(self.folders[f]) for f in item["folders"]],
        )

    def m_item__share(self, request: httpx.Request, p: Params) -> Any:
        self._need(p, "id", "dstfolderid")
        user = self._user(p)
        if not user:
            raise _MidasError(MIDAS_INVALID_POLICY, "Cannot share item anonymously")
        item = self.items.get(self._int(p, "id"))
        dst = self.folders.get(self._int(p, "dstfolderid"))
        if (
            item is None
            or dst is None
            or not self._check(user, item, _READ)
            or not self._check(user, dst, _WRITE)
        ):
            raise _MidasError(
                MIDAS_INVALID_POLICY, "This item doesn't exist or you don't have the permissions."
            )
        if dst["folder_id"] not in item["folders"]:
            item["folders"].append(dst["folder_id"])
            for uid in dst["policies"]:
                item["policies"].setdefault(uid, _READ)
        return dict(
            self._item_out(item),
            owningfolders=[self._folder_out(self.folders[f]) for f in item["folders"]],
        )

    def m_link__create(self, request: httpx.Request, p: Params) -> Any:
        if request.method != "POST":
            raise _MidasError(-153, "POST method required")
        self._need(p, "folderid", "url")
        user = self._user(p)
        if not user:
            raise _MidasError(MIDAS_INVALID_POLICY, "Anonymous users may not create a link")
        folder = self.folders.get(self._int(p, "folderid"))
        if folder is None:
            raise _MidasError(
                MIDAS_INVALID_PARAMETER, "Folder corresponding to folderid does not exist"
            )
        if not self._check(user, folder, _WRITE):
            raise _MidasError(MIDAS_INVALID_POLICY, "Invalid policy or folderid")
        try:
            url = httpx.URL(p["url"])
        except httpx.InvalidURL:
            url = None
        if url is None or "://" not in p["url"] or not url.scheme or not url.host:
            raise _MidasError(MIDAS_INVALID_PARAMETER, "Invalid URL")
        length = p.get("length", "0")
        if not length.isdigit():
            raise _MidasError(MIDAS_INVALID_PARAMETER, "Invalid length")
        iid = self._new_item(p.get("itemname", p["url"]), folder["folder_id"], user["user_id"])
        rev = self._new_revision(iid, user["user_id"], "Initial revision")
        bid = self._add_bitstream_record(rev, p["url"], p.get("checksum", " "), int(length))
        self.bitstreams[bid].update(mimetype="url", path=p["url"])
        return self._item_out(self.items[iid])

    def _search(
        self,
        user: dict[str, Any] | None,
        name: str,
        folder_id: int | None,
        *,
        in_folders: set[int] | None = None,
    ) -> Any:
        found = []
        for item in self.items.values():
            if item["name"] != name or not self._check(user, item, _READ):
                continue
            if folder_id is not None and folder_id not in item["folders"]:
                continue
            if in_folders is not None and not in_folders.intersection(item["folders"]):
                continue
            out = self._item_out(item)
            fid = next(
                (f for f in item["folders"] if self._check(user, self.folders.get(f), _READ)), None
            )
            if fid is not None:
                out["folder_id"] = str(fid)
            found.append(out)
        return {"items": found}

    def m_item__searchbyname(self, request: httpx.Request, p: Params) -> Any:
        self._need(p, "name")
        return self._search(self._user(p), p["name"], None)

    def m_item__searchbynameandfolder(self, request: httpx.Request, p: Params) -> Any:
        self._need(p, "name")
        return self._search(self._user(p), p["name"], self._int(p, "folderId"))

    def m_item__searchbynameandfoldername(self, request: httpx.Request, p: Params) -> Any:
        self._need(p, "name")
        if "folderName" not in p:  # like the server: without a folder name, a search by name
            return self._search(self._user(p), p["name"], None)
        named = {f["folder_id"] for f in self.folders.values() if f["name"] == p["folderName"]}
        return self._search(self._user(p), p["name"], None, in_folders=named)

    def m_item__download(self, request: httpx.Request, p: Params) -> Any:
        user = self._user(p)
        item = self._readable_item(user, p)
        spec = str(item["item_id"]) + (f",{p['revision']}" if "revision" in p else "")
        return self._redirect({"items": spec}, user, p)

    def _revision_for(self, item: dict[str, Any], p: Params) -> dict[str, Any]:
        if "revision" in p:
            try:
                number = int(p["revision"])
            except ValueError:
                number = 0
            if number < 1:
                raise _MidasError(
                    MIDAS_INVALID_PARAMETER,
                    f"Revision Numbers must be integers greater than 0.{number}",
                )
            rev = next(
                (
                    r
                    for r in self.revisions.values()
                    if r["item_id"] == item["item_id"] and r["revision"] == number
                ),
                None,
            )
            if rev is None:
                raise _MidasError(
                    MIDAS_INVALID_PARAMETER, "This revision number is invalid for this item."
                )
            return rev
        last = self._last_revision(item["item_id"])
        if last is None:
            raise _MidasError(
                MIDAS_INVALID_POLICY, "The item must have at least one revision to have metadata."
            )
        return last

    def m_item__getmetadata(self, request: httpx.Request, p: Params) -> Any:
        user = self._user(p)
        rev = self._revision_for(self._readable_item(user, p), p)
        return [
            _strs(dict(m))
            for m in self.metadata.values()
            if m["itemrevision_id"] == rev["itemrevision_id"]
        ]

    def _set_metadata(
        self, rev: dict[str, Any], element: str, value: str, qualifier: str, mtype: int
    ) -> None:
        mid = self._next("metadatavalue")
        self.metadata[mid] = {
            "metadata_id": mid,
            "metadatatype": mtype,
            "element": element,
            "qualifier": qualifier,
            "value": value,
            "itemrevision_id": rev["itemrevision_id"],
        }

    def m_item__setmetadata(self, request: httpx.Request, p: Params) -> Any:
        self._need(p, "itemId", "element", "value")
        user = self._user(p)
        item = self._readable_item(user, p, "itemId", _WRITE)
        rev = self._revision_for(item, p)
        self._set_metadata(
            rev, p["element"], p["value"], p.get("qualifier", ""), int(p.get("type", 0))
        )
        return True

    def m_item__setmultiplemetadata(self, request: httpx.Request, p: Params) -> Any:
        self._need(p, "itemid", "count")
        count = self._int(p, "count")
        if count < 1:
            raise _MidasError(MIDAS_INVALID_PARAMETER, "Count must be an integer greater than 0.")
        tuples = []
        for i in range(1, count + 1):
            for key in (f"element_{i}", f"value_{i}"):
                if key not in p:
                    raise _MidasError(
                        MIDAS_INVALID_PARAMETER, f"Count was {i - 1} but param {key} is missing."
                    )
            tuples.append(
                (
                    p[f"element_{i}"],
                    p[f"value_{i}"],
                    p.get(f"qualifier_{i}", ""),
                    int(p.get(f"type_{i}", 0)),
                )
            )
        user = self._user(p)
        item = self._readable_item(user, p, "itemid", _WRITE)
        rev = self._revision_for(item, p)
        for element, value, qualifier, mtype in tuples:
            self._set_metadata(rev, element, value, qualifier, mtype)
        return True

    def m_item__deletemetadata(self, request: httpx.Request, p: Params) -> Any:
        self._need(p, "itemid", "element")
        user = self._user(p)
        item = self._readable_item(user, p, "itemid", _WRITE)
        rev = self._revision_for(item, p)
        doomed = [
            m
            for m, md in self.metadata.items()
            if md["itemrevision_id"] == rev["itemrevision_id"]
            and md["element"] == p["element"]
            and md["qualifier"] == p.get("qualifier", "")
            and md["metadatatype"] == int(p.get("type", 0))
        ]
        for mid in doomed:
            del self.metadata[mid]
        return bool(doomed)

    # ------------------------------------------------------------------------------------------------
    # Uploads
    # ------------------------------------------------------------------------------------------------
    def m_upload__generatetoken(self, request: httpx.Request, p: Params) -> Any:
        self._need(p, "filename")
        if ("itemid" in p) == ("folderid" in p):
            both = " but not both" if "itemid" in p else ""
            raise _MidasError(
                MIDAS_INVALID_PARAMETER, f"Parameter itemid or folderid must be defined{both}"
            )
        user = self._user(p)
        if not user:
            raise _MidasError(MIDAS_INVALID_POLICY, "Anonymous users may not upload")
        if "itemid" in p:
            item = self.items.get(self._int(p, "itemid"))
            if item is None or not self._check(user, item, _WRITE):
                raise _MidasError(MIDAS_INVALID_POLICY, "Invalid policy or itemid")
        else:
            folder = self.folders.get(self._int(p, "folderid"))
            if folder is None:
                raise _MidasError(
                    MIDAS_INVALID_PARAMETER, "Parent folder corresponding to folderid doesn't exist"
                )
            if not self._check(user, folder, _WRITE):
                raise _MidasError(MIDAS_INVALID_POLICY, "Invalid policy or folderid")
            iid = self._new_item(
                p.get("itemname", p["filename"]),
                folder["folder_id"],
                user["user_id"],
                description=p.get("itemdescription", ""),
            )
            item = self.items[iid]
        checksum = p.get("checksum")
        if checksum:
            existing = next(
                (
                    b
                    for b in self.bitstreams.values()
                    if b["checksum"] == checksum
                    and self._check(
                        user, self.items[self.revisions[b["itemrevision_id"]]["item_id"]], _READ
                    )
                ),
                None,
            )
            if existing is not None:
                rev = self._last_revision(item["item_id"]) or self._new_revision(
                    item["item_id"], user["user_id"], "Initial revision"
                )
                names = {
                    b["name"]
                    for b in self.bitstreams.values()
                    if b["itemrevision_id"] == rev["itemrevision_id"]
                }
                if p["filename"] not in names:
                    self._add_bitstream_record(rev, p["filename"], checksum, existing["sizebytes"])
                return {"token": ""}
        token = f"{user['user_id']}/{item['item_id']}/midas{secrets.token_hex(3)}"
        self.uploads[token] = {
            "user_id": user["user_id"],
            "item_id": item["item_id"],
            "data": bytearray(),
        }
        return {"token": token}

    def m_upload__getoffset(self, request: httpx.Request, p: Params) -> Any:
        self._need(p, "uploadtoken")
        session = self.uploads.get(p["uploadtoken"])
        return {"offset": len(session["data"]) if session else 0}

    def m_upload__perform(self, request: httpx.Request, p: Params) -> Any:
        self._need(p, "uploadtoken", "filename", "length")
        if request.method not in ("POST", "PUT"):
            raise _MidasError(-153, "POST or PUT method required")
        token = p["uploadtoken"]
        parts = token.split("/")
        user = self.users.get(int(parts[0])) if parts[0].isdigit() else None
        if user is None:
            raise _MidasError(MIDAS_INVALID_PARAMETER, "Invalid user id from upload token")
        item = self.items.get(int(parts[1])) if len(parts) > 1 and parts[1].isdigit() else None
        if item is None:
            raise _MidasError(MIDAS_INVALID_PARAMETER, "Unable to find item")
        if not self._check(user, item, _WRITE):
            raise _MidasError(MIDAS_INVALID_POLICY, "Permission error")
        revision: dict[str, Any] | None = None
        if "revision" in p:
            if p["revision"].lower() == "head":
                revision = self._last_revision(item["item_id"])
            else:
                revision = next(
                    (
                        r
                        for r in self.revisions.values()
                        if r["item_id"] == item["item_id"] and str(r["revision"]) == p["revision"]
                    ),
                    None,
                )
                if revision is None:
                    raise _MidasError(MIDAS_INVALID_PARAMETER, "Unable to find revision")
        session = self.uploads.get(token)
        if session is None:
            raise _MidasError(MIDAS_INVALID_UPLOAD_TOKEN, f"Invalid upload token /tmp/{token}")
        length = int(float(p["length"]))
        need = length - len(session["data"])
        session["data"] += request.content[: max(need, 0)]
        if len(session["data"]) < length:
            raise _MidasError(
                MIDAS_UPLOAD_FAILED,
                f"Failed to upload file - {len(session['data'])}/{length} bytes transferred",
            )
        content = bytes(session["data"])
        del self.uploads[token]
        if revision is None:
            revision = self._new_revision(item["item_id"], user["user_id"], p.get("changes", ""))
        self._add_bitstream(revision, p["filename"], content)
        return self._item_out(item)

    # ------------------------------------------------------------------------------------------------
    # Bitstreams, users
    # ------------------------------------------------------------------------------------------------
    def _bitstream_item(self, user: dict[str, Any] | None, p: Params, level: int) -> dict[str, Any]:
        self._need(p, "id")
        bs = self.bitstreams.get(self._int(p, "id"))
        if bs is None:
            raise _MidasError(MIDAS_INVALID_PARAMETER, "Invalid bitstream id")
        item = self.items[self.revisions[bs["itemrevision_id"]]["item_id"]]
        if not self._check(user, item, level):
            message = (
                "This item doesn't exist or you don't have the permissions."
                if level == _READ
                else "Admin privileges required on the containing item"
            )
            raise _MidasError(MIDAS_INVALID_POLICY, message)
        return bs

    def m_bitstream__get(self, request: httpx.Request, p: Params) -> Any:
        bs = self._bitstream_item(self._user(p), p, _READ)
        return _strs(
            {
                "id": bs["bitstream_id"],
                "name": bs["name"],
                "size": bs["sizebytes"],
                "mimetype": bs["mimetype"],
                "checksum": bs["checksum"],
                "itemrevision_id": bs["itemrevision_id"],
                "item_id": self.revisions[bs["itemrevision_id"]]["item_id"],
                "date": bs["date"],
            }
        )

    def m_bitstream__delete(self, request: httpx.Request, p: Params) -> Any:
        bs = self._bitstream_item(self._user(p), p, _ADMIN)
        del self.bitstreams[bs["bitstream_id"]]
        return None

    def m_bitstream__count(self, request: httpx.Request, p: Params) -> Any:
        self._need(p, "uuid")
        user = self._user(p)
        uid = p["uuid"]
        folder_ids: list[int] = []
        item_ids: list[int] = []
        comm = next((c for c in self.communities.values() if c["uuid"] == uid), None)
        folder = next((f for f in self.folders.values() if f["uuid"] == uid), None)
        item = next((i for i in self.items.values() if i["uuid"] == uid), None)
        res = comm or folder or item
        if res is None:
            raise _MidasError(MIDAS_INVALID_PARAMETER, "No resource for the given UUID.")
        if not self._check(user, res, _READ):
            raise _MidasError(MIDAS_INVALID_POLICY, "Invalid policy")
        if item is not None:
            item_ids = [item["item_id"]]
        else:
            folder_ids = self._subtree(comm["folder_id"] if comm else folder["folder_id"])  # type: ignore[index]
            item_ids = [
                i["item_id"]
                for i in self.items.values()
                if set(i["folders"]) & set(folder_ids) and self._check(user, i, _READ)
            ]
        size = count = 0
        for iid in item_ids:
            rev = self._last_revision(iid)
            for b in self.bitstreams.values():
                if rev and b["itemrevision_id"] == rev["itemrevision_id"]:
                    size += b["sizebytes"]
                    count += 1
        return {"size": str(size), "count": str(count)}

    def m_bitstream__download(self, request: httpx.Request, p: Params) -> Any:
        if "id" not in p and "checksum" not in p:
            raise _MidasError(
                MIDAS_INVALID_PARAMETER, "Either an id or checksum parameter is required"
            )
        user = self._user(p)
        if "id" in p:
            bs = self.bitstreams.get(self._int(p, "id"))
        else:
            bs = next(
                (
                    b
                    for b in self.bitstreams.values()
                    if b["checksum"] == p["checksum"]
                    and self._check(
                        user, self.items[self.revisions[b["itemrevision_id"]]["item_id"]], _READ
                    )
                ),
                None,
            )
        if bs is None:
            raise _MidasError(
                MIDAS_INVALID_PARAMETER,
                "The bitstream does not exist or you do not have the permissions",
            )
        query = {
            "bitstream": str(bs["bitstream_id"]),
            "offset": p.get("offset", "0"),
            "name": p.get("name", bs["name"]),
        }
        return self._redirect(query, user, p)

    def m_user__get(self, request: httpx.Request, p: Params) -> Any:
        if "user_id" in p or "id" in p:
            uid = self._int(p, "user_id" if "user_id" in p else "id")
            user = self.users.get(uid)
        elif "email" in p:
            user = next((u for u in self.users.values() if u["email"] == p["email"]), None)
        elif "firstname" in p and "lastname" in p:
            user = next(
                (
                    u
                    for u in self.users.values()
                    if u["firstname"] == p["firstname"] and u["lastname"] == p["lastname"]
                ),
                None,
            )
        else:
            raise _MidasError(
                MIDAS_INVALID_PARAMETER, "Please provide a user email or both first and last name"
            )
        return self._user_out(user) if user else False

    def m_user__list(self, request: httpx.Request, p: Params) -> Any:
        self._need(p, "limit")
        public = [self._user_out(u) for u in self.users.values() if u["privacy"] == 0]
        return public[: self._int(p, "limit")]

    def m_user__folders(self, request: httpx.Request, p: Params) -> Any:
        user = self._user(p)
        if not user:
            return []
        return [
            self._folder_out(f)
            for f in self.folders.values()
            if f["parent_id"] == user["folder_id"]
        ]

    # ------------------------------------------------------------------------------------------------
    # Driver modules
    # ------------------------------------------------------------------------------------------------
    def m_solr__search__advanced(self, request: httpx.Request, p: Params) -> Any:
        self._need(p, "query")
        user = self._user(p)
        query = p["query"].split(":", 1)[-1].strip().strip('"*').lower()
        limit = int(p.get("limit", 25))
        found = [
            self._item_out(i)
            for i in self.items.values()
            if query in i["name"].lower() and self._check(user, i, _READ)
        ]
        return found[:limit]

    def m_thumbnailcreator__create__big__thumbnail(self, request: httpx.Request, p: Params) -> Any:
        self._need(p, "bitstreamId", "itemId")
        user = self._user(p)
        item = self._readable_item(user, p, "itemId", _WRITE)
        if self._int(p, "bitstreamId") not in self.bitstreams:
            raise _MidasError(MIDAS_INVALID_PARAMETER, "Invalid bitstream id")
        tid = self._next("itemthumbnail")
        thumb = self._next("thumbnail")
        self.item_thumbnails[tid] = {
            "itemthumbnail_id": tid,
            "item_id": item["item_id"],
            "thumbnail_id": thumb,
        }
        return _strs(self.item_thumbnails[tid])

    def m_thumbnailcreator__create__small__thumbnail(
        self, request: httpx.Request, p: Params
    ) -> Any:
        self._need(p, "itemId")
        user = self._user(p)
        item = self._readable_item(user, p, "itemId", _WRITE)
        thumb = self._next("thumbnail")
        item["thumbnail_id"] = thumb
        return {"item": self._item_out(item), "thumbnail": f"data/thumbnail/{thumb}.jpg"}

    def m_batchmake__add__condor__dag(self, request: httpx.Request, p: Params) -> Any:
        self._need(p, "batchmaketaskid", "dagfilename", "outfilename")
        if not self._user(p):
            raise _MidasError(MIDAS_INVALID_POLICY, "Anonymous users may not add a Condor DAG")
        did = self._next("condordag")
        self.condor_dags[did] = {
            "condor_dag_id": did,
            "batchmake_task_id": self._int(p, "batchmaketaskid"),
            "dag_filename": p["dagfilename"],
            "out_filename": p["outfilename"],
        }
        return _strs(self.condor_dags[did])

    def m_batchmake__add__condor__job(self, request: httpx.Request, p: Params) -> Any:
        self._need(
            p,
            "batchmaketaskid",
            "jobdefinitionfilename",
            "outputfilename",
            "errorfilename",
            "logfilename",
            "postfilename",
        )
        if not self._user(p):
            raise _MidasError(MIDAS_INVALID_POLICY, "Anonymous users may not add a Condor job")
        task = self._int(p, "batchmaketaskid")
        dag = next((d for d in self.condor_dags.values() if d["batchmake_task_id"] == task), None)
        if dag is None:
            raise _MidasError(MIDAS_INVALID_PARAMETER, "No Condor DAG for this BatchMake task")
        jid = self._next("condorjob")
        self.condor_jobs[jid] = {
            "condor_job_id": jid,
            "condor_dag_id": dag["condor_dag_id"],
            "jobdefinition_filename": p["jobdefinitionfilename"],
            "output_filename": p["outputfilename"],
            "error_filename": p["errorfilename"],
            "log_filename": p["logfilename"],
            "post_filename": p["postfilename"],
        }
        return _strs(self.condor_jobs[jid])

    def m_dicomextractor__extract(self, request: httpx.Request, p: Params) -> Any:
        self._need(p, "item")
        user = self._user(p)
        item = self._readable_item(user, p, "item", _WRITE)
        rev = self._last_revision(item["item_id"])
        if rev is None:
            raise _MidasError(MIDAS_INVALID_PARAMETER, "The item has no revision")
        return self._revision_out(rev, with_bitstreams=False)

    def _tracker_community(self, user: dict[str, Any] | None, p: Params) -> dict[str, Any]:
        comm = self.communities.get(self._int(p, "communityId"))
        if comm is None or not self._check(user, comm, _WRITE):
            raise _MidasError(403, "Write permission required on community")
        return comm

    def _producer(self, comm: dict[str, Any], name: str) -> dict[str, Any]:
        name = name.strip()
        if not name:
            raise _MidasError(-1, "Producer display name must not be empty")
        for prod in self.producers.values():
            if prod["community_id"] == comm["community_id"] and prod["display_name"] == name:
                return prod
        pid = self._next("producer")
        self.producers[pid] = {
            "producer_id": pid,
            "community_id": comm["community_id"],
            "display_name": name,
        }
        return self.producers[pid]

    def _submission(
        self, producer: dict[str, Any], uid: str | None, name: str = ""
    ) -> dict[str, Any]:
        for sub in self.submissions.values():
            if uid and sub["uuid"] == uid:
                return sub
        sid = self._next("submission")
        self.submissions[sid] = {
            "submission_id": sid,
            "producer_id": producer["producer_id"],
            "name": name,
            "uuid": uid or uuidlib.uuid4().hex,
            "submit_time": self._stamp(),
        }
        return self.submissions[sid]

    def _add_scalar(
        self,
        user: dict[str, Any],
        producer: dict[str, Any],
        metric: str,
        value: float,
        p: Params,
        submission: dict[str, Any] | None,
    ) -> dict[str, Any]:
        metric = metric.strip()
        if not metric:
            raise _MidasError(-1, "Metric name must not be empty")
        for name, what in (
            ("configItemId", "config item"),
            ("testDatasetId", "test dataset item"),
            ("truthDatasetId", "truth dataset item"),
        ):
            if name in p:
                item = self.items.get(self._int(p, name))
                if not self._check(user or None, item, _READ):
                    raise _MidasError(403, f"Read permission required on {what}")
        for name in ("params", "extraUrls"):
            if name in p:
                try:
                    json.loads(p[name])
                except ValueError:
                    raise _MidasError(-1, f"Parameter {name} is not valid JSON") from None
        key = (
            producer["producer_id"],
            metric,
            p.get("configItemId"),
            p.get("testDatasetId"),
            p.get("truthDatasetId"),
            p.get("unit"),
        )
        trend = next((t for t in self.trends.values() if t["key"] == key), None)
        if trend is None:
            tid = self._next("trend")
            trend = self.trends[tid] = {
                "trend_id": tid,
                "producer_id": producer["producer_id"],
                "metric_name": metric,
                "unit": p.get("unit"),
                "key": key,
            }
        sid = self._next("scalar")
        self.scalars[sid] = {
            "scalar_id": sid,
            "trend_id": trend["trend_id"],
            "submission_id": (
                int(p["submissionId"])
                if "submissionId" in p
                else submission["submission_id"]
                if submission
                else -1
            ),
            "value": value,
            "producer_revision": p.get("producerRevision", ""),
            "submit_time": p.get("submitTime", self._stamp()),
            "user_id": user["user_id"],
            "official": 0 if "unofficial" in p else 1,
            "branch": p.get("branch", ""),
            "build_results_url": p.get("buildResultsUrl", ""),
            "params": p.get("params"),
            "extra_urls": p.get("extraUrls"),
        }
        if "silent" not in p:
            self.notified_scalars.append(sid)
        return self.scalars[sid]

    def m_tracker__scalar__add(self, request: httpx.Request, p: Params) -> Any:
        for name in ("communityId", "producerDisplayName", "metricName", "value"):
            if name not in p:
                raise _MidasError(-1, f"Parameter {name} must be set.")
        user = self._user(p)
        comm = self._tracker_community(user, p)
        producer = self._producer(comm, p["producerDisplayName"])
        submission = (  # an id is used as given; a uuid names (or creates) a submission
            self._submission(producer, p.get("submissionUuid"))
            if "submissionUuid" in p and "submissionId" not in p
            else None
        )
        try:
            value = float(p["value"])
        except ValueError:
            value = 0.0
        return _strs(self._add_scalar(user or {}, producer, p["metricName"], value, p, submission))

    def m_tracker__submission__add(self, request: httpx.Request, p: Params) -> Any:
        for name in ("communityId", "producerDisplayName", "producerRevision"):
            if name not in p:
                raise _MidasError(-1, f"Parameter {name} must be set.")
        user = self._user(p)
        producer = self._producer(self._tracker_community(user, p), p["producerDisplayName"])
        return _strs(self._submission(producer, p.get("uuid"), p.get("name", "")))

    def m_tracker__results__upload__json(self, request: httpx.Request, p: Params) -> Any:
        for name in ("communityId", "producerDisplayName", "producerRevision"):
            if name not in p:
                raise _MidasError(-1, f"Parameter {name} must be set.")
        user = self._user(p)
        producer = self._producer(self._tracker_community(user, p), p["producerDisplayName"])
        try:
            document = json.loads(request.content or b"{}")
        except ValueError:
            raise _MidasError(-1, "Invalid JSON upload contents") from None
        roots: list[tuple[str, Any]] = [("", document)]
        if p.get("parentKeys"):
            roots = []
            for path in p["parentKeys"].split(";"):
                node = document
                for part in path.split("."):
                    node = node.get(part, {}) if isinstance(node, dict) else {}
                roots.append((path, node))
        out = []

        def walk(prefix: str, node: Any) -> None:
            if isinstance(node, dict):
                for key, value in node.items():
                    walk(f"{prefix}.{key}" if prefix else key, value)
            elif isinstance(node, int | float) and not isinstance(node, bool):
                out.append(
                    _strs(self._add_scalar(user or {}, producer, prefix, float(node), p, None))
                )

        for _path, node in roots:
            walk("", node)
        return out

    def m_tracker__item__associate(self, request: httpx.Request, p: Params) -> Any:
        for name in ("itemId", "label"):
            if name not in p:
                raise _MidasError(-1, f"Parameter {name} must be set.")
        user = self._user(p)
        item = self.items.get(self._int(p, "itemId"))
        if item is None:
            raise _MidasError(404, "Invalid itemId")
        if not self._check(user, item, _READ):
            raise _MidasError(403, "Read permission on the item required")
        for sid in filter(None, p.get("scalarIds", "").split(",")):
            scalar = self.scalars.get(int(sid))
            if scalar is None:
                raise _MidasError(404, f"Invalid scalarId: {sid}")
            scalar.setdefault("items", []).append({"item_id": item["item_id"], "label": p["label"]})
        return None

    # ------------------------------------------------------------------------------------------------
    # Downloads
    # ------------------------------------------------------------------------------------------------
    def _redirect(
        self, query: dict[str, str], user: dict[str, Any] | None, p: Params
    ) -> httpx.Response:
        if user is not None and "token" in p:
            query["authToken"] = p["token"]
        location = self.url("/download/") + "?" + urlencode(query)
        return httpx.Response(302, headers={"Location": location})

    def _download(self, q: dict[str, str]) -> httpx.Response:
        token = q.get("authToken")
        entry = self.tokens.get(token) if token else None
        user = (
            self.users.get(entry["user_id"]) if entry and entry["expires"] > self._now() else None
        )
        files: list[tuple[str, bytes]] = []
        if "bitstream" in q:
            bs = self.bitstreams.get(int(q["bitstream"])) if q["bitstream"].isdigit() else None
            if bs is None:
                return httpx.Response(404, text="Invalid bitstream")
            if not self._check(
                user, self.items[self.revisions[bs["itemrevision_id"]]["item_id"]], _READ
            ):
                return httpx.Response(403, text="Permission denied")
            data = self.blobs[bs["checksum"]][int(q.get("offset", "0") or 0) :]
            return self._file_response(q.get("name", bs["name"]), data)
        if "items" in q:
            item_id, _, rev_no = q["items"].partition(",")
            item = self.items.get(int(item_id)) if item_id.isdigit() else None
            if item is None:
                return httpx.Response(404, text="Invalid item")
            if not self._check(user, item, _READ):
                return httpx.Response(403, text="Permission denied")
            revs = [
                r
                for r in self.revisions.values()
                if r["item_id"] == item["item_id"] and (not rev_no or str(r["revision"]) == rev_no)
            ]
            rev = max(revs, key=lambda r: r["revision"]) if revs else None
            streams = [
                b
                for b in self.bitstreams.values()
                if rev and b["itemrevision_id"] == rev["itemrevision_id"]
            ]
            if len(streams) == 1 and _is_link(streams[0]):  # a link item: to where it points
                return httpx.Response(302, headers={"Location": streams[0]["path"]})
            files = [(b["name"], self.blobs[b["checksum"]]) for b in streams if not _is_link(b)]
            if len(files) == 1:
                return self._file_response(*files[0])
            return self._zip_response(item["name"], files)
        if "folders" in q:
            folder = self.folders.get(int(q["folders"])) if q["folders"].isdigit() else None
            if folder is None:
                return httpx.Response(404, text="Invalid folder")
            if not self._check(user, folder, _READ):
                return httpx.Response(403, text="Permission denied")
            for fid in self._subtree(folder["folder_id"]):
                for item in self.items.values():
                    if fid in item["folders"] and self._check(user, item, _READ):
                        for name, data in self.item_bytes(item["item_id"]).items():
                            files.append((f"{item['name']}/{name}", data))
            return self._zip_response(folder["name"], files)
        return httpx.Response(400, text="Nothing to download")

    @staticmethod
    def _file_response(name: str, data: bytes) -> httpx.Response:
        return httpx.Response(
            200,
            content=data,
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Length": str(len(data)),
                "Content-Disposition": f'attachment; filename="{name}"',
            },
        )

    def _zip_response(self, name: str, files: list[tuple[str, bytes]]) -> httpx.Response:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for fname, data in files:
                zf.writestr(fname, data)
        return httpx.Response(
            200,
            content=buf.getvalue(),
            headers={
                "Content-Type": "application/zip",
                "Content-Disposition": f'attachment; filename="{name}.zip"',
            },
        )
