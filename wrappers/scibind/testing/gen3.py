"""A stateful fake Gen3 data commons: Fence, indexd, sheepdog, peregrine and the object storage.

The commons answers on one origin (``https://commons.fake.test``) with each service under its real
path prefix: Fence under ``/user``, indexd under ``/index``, sheepdog under ``/api``, peregrine's GraphQL
at ``/api/v0/submission/graphql``. Presigned URLs point at a second origin
(``https://storage.fake.test``), an S3-like store that refuses any ``Authorization`` header, so tests
can prove that tokens never leave the commons.

Tokens are real RS256 JWTs with Fence's claims. Time is the fake's own clock
(:meth:`FakeGen3Commons.advance_time`), so expiry can be tested without sleeping.

Example::

    fake = FakeGen3Commons()
    creds = fake.new_api_key()                      # {"api_key": ..., "key_id": ...}
    fake.create_program("DEV")
    fake.create_project("DEV", "test")
    with fake.mock():
        token = httpx.post(fake.url("/user/credentials/cdis/access_token"), json=creds).json()
"""

from __future__ import annotations

import base64
import copy
import csv
import hashlib
import html
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs

import httpx

from scibind.testing._base import FakeService, json_response, route
from scibind.testing._gen3_graph import ApiError, Graph
from scibind.testing._gen3_graphql import execute
from scibind.testing._gen3_index import Authorizer, IndexdError, IndexStore
from scibind.testing._gen3_s3 import FakeStorage, StorageError, StoredObject
from scibind.testing._gen3_tokens import FakeUser, TokenError, TokenService
from scibind.testing.gen3_dictionary import BUILTIN_DICTIONARY

__all__ = ["FakeClient", "FakeGen3Commons", "FakeUser"]

_USER_SCOPES = ("openid", "user", "data", "fence", "google_credentials", "google_service_account",
                "google_link", "ga4gh_passport_v1", "credentials", "admin")  # fmt: skip
_API_KEY_SCOPES = ("openid", "user", "data", "fence")


@dataclass
class FakeClient:
    """An OAuth2 client registered with Fence."""

    client_id: str
    secret: str
    scopes: tuple[str, ...] = ("openid", "user", "data")
    grant_types: tuple[str, ...] = ("client_credentials", "refresh_token")


@dataclass
class _ApiKey:
    jti: str
    user: FakeUser
    exp: int
    scopes: list[str] = field(default_factory=list)


class _Unauthorized(Exception):
    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _text(
    body: str, status: int = 200, content_type: str = "text/plain; charset=utf-8"
) -> httpx.Response:
    return httpx.Response(status, content=body.encode(), headers={"Content-Type": content_type})


def _fence_error(status: int, message: str) -> httpx.Response:
    """Fence renders its errors as an HTML page."""
    from http import HTTPStatus

    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown error code."
    body = (
        "<!DOCTYPE html><html><head><title>Gen3 Data Commons - Error</title></head><body>"
        f"<h2>{status} {html.escape(phrase)}</h2><p>{html.escape(message)}</p>"
        "<p>Please try again later or contact support.</p></body></html>"
    )
    return _text(body, status, "text/html; charset=utf-8")


def _params(request: httpx.Request) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in request.url.params.multi_items():
        out.setdefault(key, []).append(value)
    return out


def _json_body(request: httpx.Request) -> Any:
    if not request.content:
        return None
    return json.loads(request.content)


class FakeGen3Commons(FakeService):
    """A Gen3 data commons in one object. Public state: ``index`` (indexd records), ``graph``
    (metadata graph), ``storage`` (buckets), ``users``, ``clients``.

    Settings (plain attributes): ``access_token_ttl`` (seconds, default 1200), ``api_key_ttl``
    (default 30 days), ``max_presigned_url_ttl`` (3600), ``upload_bucket``, ``index_on_upload``
    (fill the index record as soon as an upload lands; when False, call :meth:`run_indexing`),
    ``private_dictionary`` (the dictionary endpoints answer only with a valid token),
    ``wts_idps`` (the workspace token service's identity providers: ``default`` is this commons, whose
    ``user`` the workspace belongs to; add other fake commons under other names),
    ``graphql_error_status`` (400, as peregrine), ``indexd_credentials`` (HTTP Basic user and password
    accepted for indexd writes).
    """

    default_origins: ClassVar[dict[str, str]] = {
        "api": "https://commons.fake.test",
        "storage": "https://storage.fake.test",
        "wts": "http://workspace-token-service.default.svc.cluster.local",
    }

    def __init__(
        self,
        origins: dict[str, str] | None = None,
        *,
        dictionary: Mapping[str, Any] | None = None,
        guid_prefix: str = "dg.FAKE/",
        private_key: Any | None = None,
    ) -> None:
        super().__init__(origins)
        self._time_offset = 0.0
        self.access_token_ttl = 1200
        self.api_key_ttl = 30 * 24 * 3600
        self.refresh_token_ttl = 30 * 24 * 3600
        self.max_presigned_url_ttl = 3600
        self.upload_bucket = "fake-data-upload-bucket"
        self.index_on_upload = True
        self.graphql_error_status = 400
        self.indexd_credentials: tuple[str, str] = ("indexd_client", "fake-indexd-password")
        self.tokens = TokenService(self.now, private_key)
        self.index = IndexStore(guid_prefix)
        self.storage = FakeStorage(self.now)
        self.storage.on_stored = self._object_stored
        self.graph = Graph(dictionary if dictionary is not None else BUILTIN_DICTIONARY, self.index)
        self.users: dict[str, FakeUser] = {}
        self.clients: dict[str, FakeClient] = {}
        self.api_keys: dict[str, _ApiKey] = {}
        self._issued_access: set[str] = set()
        self._expired_access: set[str] = set()
        self._uploads: dict[tuple[str, str], str] = {}
        self.pending_indexing: list[tuple[str, str, str]] = []
        self.user = self.add_user("test-user@example.org", email="test-user@example.org")
        self.wts_idps: dict[str, FakeGen3Commons] = {"default": self}
        self.private_dictionary = False

    # -- clock ---------------------------------------------------------------------------------------
    def now(self) -> float:
        """The fake's clock (wall time plus :meth:`advance_time` offsets)."""
        return time.time() + self._time_offset

    def advance_time(self, seconds: float) -> None:
        """Move the fake's clock forward (tokens and presigned URLs expire on it)."""
        self._time_offset += seconds

    # -- users, clients, credentials -----------------------------------------------------------------
    def add_user(
        self,
        username: str,
        *,
        is_admin: bool = False,
        authz: dict[str, list[dict[str, str]]] | None = None,
        email: str | None = None,
    ) -> FakeUser:
        """Register a user. Without ``authz`` the user may do everything on every resource."""
        user = FakeUser(username=username, id=len(self.users) + 1, email=email, is_admin=is_admin)
        if authz is not None:
            user.authz = authz
        self.users[username] = user
        return user

    def _user_by_id(self, sub: Any) -> FakeUser | None:
        return next((u for u in self.users.values() if str(u.id) == str(sub)), None)

    @property
    def fence_url(self) -> str:
        """Fence's base URL (the ``iss`` of its tokens)."""
        return self.url("user")

    def new_api_key(
        self,
        user: FakeUser | str | None = None,
        *,
        scopes: Iterable[str] = _API_KEY_SCOPES,
        ttl: float | None = None,
    ) -> dict[str, str]:
        """A new API key, in the shape of the ``credentials.json`` users download."""
        owner = self._resolve_user(user)
        token, claims = self.tokens.api_key(
            owner, self.fence_url, scopes, self.api_key_ttl if ttl is None else ttl
        )
        self.api_keys[claims["jti"]] = _ApiKey(claims["jti"], owner, claims["exp"], list(scopes))
        return {"api_key": token, "key_id": claims["jti"]}

    def write_credentials(
        self, path: str | Path, user: FakeUser | str | None = None, **kwargs: Any
    ) -> dict[str, str]:
        """Write a new API key to ``path`` as ``credentials.json``; returns it."""
        credentials = self.new_api_key(user, **kwargs)
        Path(path).write_text(json.dumps(credentials))
        return credentials

    def mint_access_token(
        self,
        user: FakeUser | str | None = None,
        *,
        scopes: Iterable[str] = (*_API_KEY_SCOPES, "credentials"),
        ttl: float | None = None,
    ) -> str:
        """An access token for ``user`` directly (as if obtained by logging in)."""
        return self._access_token(self._resolve_user(user), list(scopes), ttl)

    def _access_token(
        self, user: FakeUser | None, scopes: list[str], ttl: float | None, client_id: str = ""
    ) -> str:
        lifetime = self.access_token_ttl if ttl is None else min(ttl, self.access_token_ttl)
        token = self.tokens.access_token(user, self.fence_url, scopes, lifetime, client_id)
        self._issued_access.add(self._jti(token))
        return token

    @staticmethod
    def _jti(token: str) -> str:
        payload = token.split(".")[1]
        return str(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["jti"])

    @property
    def tokens_minted(self) -> int:
        """How many access tokens Fence has issued."""
        return self.tokens.minted.get("access", 0)

    def expire_access_tokens(self) -> None:
        """Make every access token issued so far expired (as if their lifetime had passed)."""
        self._expired_access |= self._issued_access

    def register_client(
        self,
        client_id: str = "fake-client",
        secret: str = "fake-client-secret",
        *,
        scopes: Iterable[str] = ("openid", "user", "data"),
        grant_types: Iterable[str] = ("client_credentials", "refresh_token"),
    ) -> FakeClient:
        """Register an OAuth2 client (for the ``client_credentials`` and ``refresh_token`` grants)."""
        client = FakeClient(client_id, secret, tuple(scopes), tuple(grant_types))
        self.clients[client_id] = client
        return client

    def new_refresh_token(
        self,
        user: FakeUser | str | None = None,
        client_id: str = "fake-client",
        scopes: Iterable[str] = ("openid", "user", "data"),
    ) -> str:
        """A refresh token issued to ``client_id`` for ``user``."""
        return self.tokens.refresh_token(
            self._resolve_user(user), self.fence_url, scopes, self.refresh_token_ttl, client_id
        )

    def _resolve_user(self, user: FakeUser | str | None) -> FakeUser:
        if user is None:
            return self.user
        if isinstance(user, FakeUser):
            return user
        return self.users[user] if user in self.users else self.add_user(user)

    # -- seeding helpers -------------------------------------------------------------------------------
    def create_program(self, name: str, dbgap_accession_number: str | None = None) -> str:
        """Register a program; returns its node id."""
        doc = {
            "type": "program",
            "name": name,
            "dbgap_accession_number": dbgap_accession_number or f"phs-{name}",
        }
        return str(self.graph.create_program(doc)["id"])

    def create_project(self, program: str, code: str, **props: Any) -> str:
        """Register a project in ``program``; returns its node id."""
        doc = {"type": "project", "code": code, "name": props.pop("name", code),
               "dbgap_accession_number": props.pop("dbgap_accession_number", f"phs-{program}-{code}"), **props}  # fmt: skip
        return str(self.graph.create_project(program, doc)["entities"][0]["id"])

    def add_file(
        self,
        data: bytes,
        file_name: str = "file.bin",
        *,
        guid: str | None = None,
        authz: Iterable[str] = (),
        acl: Iterable[str] = (),
        uploader: str | None = None,
        bucket: str | None = None,
    ) -> str:
        """Store ``data`` in a bucket and index it; returns the GUID."""
        did = guid or self.index.mint_guid()
        bucket = bucket or self.upload_bucket
        key = f"{did}/{file_name}"
        self.storage.objects[(bucket, key)] = StoredObject(
            data, f'"{hashlib.md5(data).hexdigest()}"'
        )
        self.index.create({
            "did": did, "form": "object", "size": len(data), "file_name": file_name,
            "hashes": {"md5": hashlib.md5(data).hexdigest()}, "urls": [f"s3://{bucket}/{key}"],
            "authz": list(authz), "acl": list(acl), "uploader": uploader,
        })  # fmt: skip
        return did

    def object_for(self, guid: str) -> StoredObject | None:
        """The stored object behind a GUID's first ``s3://`` URL, if any."""
        record = self.index.records.get(guid)
        for url in record["urls"] if record else []:
            location = self._s3_location(url)
            if location and location in self.storage.objects:
                return self.storage.objects[location]
        return None

    # -- indexing after uploads ------------------------------------------------------------------------
    def _object_stored(self, bucket: str, key: str, obj: StoredObject) -> None:
        guid = self._uploads.pop((bucket, key), None)
        if guid is None:
            return
        self.pending_indexing.append((guid, bucket, key))
        if self.index_on_upload:
            self.run_indexing()

    def run_indexing(self) -> int:
        """Fill hashes, size and URL of uploaded records (what Gen3's indexing job does)."""
        done = 0
        while self.pending_indexing:
            guid, bucket, key = self.pending_indexing.pop(0)
            obj = self.storage.objects.get((bucket, key))
            if obj is None or guid not in self.index.records:
                continue
            self.index.fill(
                guid,
                hashes={"md5": hashlib.md5(obj.data).hexdigest()},
                size=len(obj.data),
                urls=[f"s3://{bucket}/{key}"],
            )
            done += 1
        return done

    @staticmethod
    def _s3_location(url: str) -> tuple[str, str] | None:
        if not url.startswith("s3://"):
            return None
        bucket, _, key = url[5:].partition("/")
        return (bucket, key) if bucket and key else None

    # -- authentication ----------------------------------------------------------------------------------
    @staticmethod
    def _bearer(request: httpx.Request) -> str | None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None

    def _claims(self, request: httpx.Request, *, required: bool = True) -> dict[str, Any] | None:
        token = self._bearer(request)
        if token is None:
            if required:
                raise _Unauthorized("Authentication Error: no bearer token in Authorization header")
            return None
        try:
            claims = self.tokens.decode(token, "access")
        except TokenError as exc:
            raise _Unauthorized(f"Authentication Error: {exc}") from None
        if claims.get("jti") in self._expired_access:
            raise _Unauthorized("Authentication Error: Signature has expired")
        return claims

    def _user(
        self, request: httpx.Request, scope: str | None = None
    ) -> tuple[FakeUser, dict[str, Any]]:
        claims = self._claims(request)
        assert claims is not None
        if scope is not None and scope not in claims.get("scope", []):
            raise _Unauthorized(f"Authentication Error: token is missing the {scope!r} scope")
        user = self._user_by_id(claims.get("sub"))
        if user is None:
            raise _Unauthorized("Authentication Error: no user associated with this token")
        return user, claims

    # -- dispatch -----------------------------------------------------------------------------------------
    @route("GET", r"/user/(?P<path>.*)")
    @route("POST", r"/user/(?P<path>.*)")
    @route("PUT", r"/user/(?P<path>.*)")
    @route("DELETE", r"/user/(?P<path>.*)")
    def _fence(self, request: httpx.Request, path: str) -> httpx.Response:
        with self.lock:
            try:
                return self._fence_route(request, path)
            except _Unauthorized as exc:
                return _fence_error(exc.status, exc.message)
            except IndexdError as exc:
                return _fence_error(exc.status, exc.message)

    @route("GET", r"/index/(?P<path>.*)")
    @route("POST", r"/index/(?P<path>.*)")
    @route("PUT", r"/index/(?P<path>.*)")
    @route("DELETE", r"/index/(?P<path>.*)")
    def _indexd(self, request: httpx.Request, path: str) -> httpx.Response:
        with self.lock:
            try:
                return self._indexd_route(request, path)
            except IndexdError as exc:
                return json_response({"error": exc.message}, exc.status)
            except _Unauthorized as exc:
                return json_response({"error": exc.message}, exc.status)
            except ValueError as exc:
                return json_response({"error": f"invalid JSON body: {exc}"}, 400)

    @route("GET", r"/api/(?P<path>.*)")
    @route("POST", r"/api/(?P<path>.*)")
    @route("PUT", r"/api/(?P<path>.*)")
    @route("PATCH", r"/api/(?P<path>.*)")
    @route("DELETE", r"/api/(?P<path>.*)")
    def _api(self, request: httpx.Request, path: str) -> httpx.Response:
        with self.lock:
            try:
                return self._api_route(request, path)
            except ApiError as exc:
                return json_response({"message": exc.message}, exc.status)
            except _Unauthorized as exc:
                return json_response({"message": exc.message}, exc.status)

    @route("GET", r"/token/?", origin="wts")
    def _wts_token(self, request: httpx.Request) -> httpx.Response:
        """The workspace token service: a token of the workspace user at the commons of ``idp``."""
        idp = request.url.params.get("idp", "default")
        raw = request.url.params.get("expires")
        if raw is not None and not raw.lstrip("-").isdigit():
            return json_response({"error": "expires has to be an integer"}, 400)
        commons = self.wts_idps.get(idp)
        if commons is None:
            return json_response({"error": f'Requested IDP "{idp}" is not configured'}, 400)
        with commons.lock:
            token = commons._access_token(
                commons.user, list(_API_KEY_SCOPES), float(raw) if raw is not None else None
            )
        return json_response({"token": token})

    @route("GET", r"/peregrine/(?P<path>_status|_version)")
    def _peregrine_system(self, request: httpx.Request, path: str) -> httpx.Response:
        if path == "_status":
            return _text("Healthy")
        return json_response(
            {"version": "fake", "commit": "0" * 40, "dictionary": {"version": "fake", "commit": ""}}
        )

    @route("GET", r"/(?P<bucket>[^/]+)/(?P<key>.+)", origin="storage")
    @route("HEAD", r"/(?P<bucket>[^/]+)/(?P<key>.+)", origin="storage")
    @route("PUT", r"/(?P<bucket>[^/]+)/(?P<key>.+)", origin="storage")
    @route("POST", r"/(?P<bucket>[^/]+)/(?P<key>.+)", origin="storage")
    @route("DELETE", r"/(?P<bucket>[^/]+)/(?P<key>.+)", origin="storage")
    def _storage(self, request: httpx.Request, bucket: str, key: str) -> httpx.Response:
        with self.lock:
            return self.storage.handle(request, bucket, key)

    def not_found(self, request: httpx.Request) -> httpx.Response:
        """Unknown paths: nginx's 404 page on the commons, S3's error on the storage."""
        matched = self._match_origin(request)
        if matched is not None and matched[0] == "storage":
            return StorageError(
                404, "NoSuchBucket", "The specified bucket does not exist"
            ).response(request.url.path)
        return _text("<html><head><title>404 Not Found</title></head><body><center><h1>404 Not Found"
                     "</h1></center><hr><center>nginx</center></body></html>", 404, "text/html")  # fmt: skip

    # -- fence ------------------------------------------------------------------------------------------------
    def _fence_route(self, request: httpx.Request, path: str) -> httpx.Response:
        method = request.method
        path = path.rstrip("/")
        if method == "POST" and path in (
            "credentials/cdis/access_token",
            "credentials/api/access_token",
        ):
            return self._fence_exchange_api_key(request)
        if path in ("credentials/api", "credentials/cdis"):
            if method == "GET":
                return self._fence_list_keys(request)
            if method == "POST":
                return self._fence_create_key(request)
        if method == "DELETE" and path.startswith(("credentials/api/", "credentials/cdis/")):
            return self._fence_delete_key(request, path.rsplit("/", 1)[1])
        if method == "POST" and path == "oauth2/token":
            return self._fence_token(request)
        if method == "GET" and path == "user":
            return self._fence_user_info(request)
        if method == "GET" and path.startswith("data/download/"):
            return self._fence_download(request, path[len("data/download/") :])
        if method == "POST" and path == "data/upload":
            return self._fence_upload(request)
        if method == "GET" and path.startswith("data/upload/"):
            return self._fence_upload_url(request, path[len("data/upload/") :])
        if method == "POST" and path == "data/multipart/init":
            return self._fence_multipart_init(request)
        if method == "POST" and path == "data/multipart/upload":
            return self._fence_multipart_part(request)
        if method == "POST" and path == "data/multipart/complete":
            return self._fence_multipart_complete(request)
        if method == "DELETE" and path.startswith("data/"):
            return self._fence_delete_file(request, path[len("data/") :])
        if method == "GET" and path == ".well-known/openid-configuration":
            return self._fence_openid_configuration()
        if method == "GET" and path == ".well-known/jwks":
            return json_response({"keys": [self.tokens.jwk()]})
        if method == "GET" and path == "jwt/keys":
            return json_response({"keys": [[self.tokens.kid, self.tokens.public_pem()]]})
        if method == "GET" and path == "_status":
            return _text("Healthy")
        if method == "GET" and path == "_version":
            return json_response({"version": "fake", "commit": "0" * 40})
        return _fence_error(404, "The requested URL was not found on the server.")

    def _fence_exchange_api_key(self, request: httpx.Request) -> httpx.Response:
        content_type = request.headers.get("content-type", "")
        api_key = None
        if content_type.startswith("application/x-www-form-urlencoded"):
            api_key = parse_qs(request.content.decode()).get("api_key", [None])[0]
        else:
            try:
                body = _json_body(request)
                api_key = body.get("api_key") if isinstance(body, Mapping) else None
            except ValueError:
                api_key = None
        if not api_key:
            return _fence_error(400, "Please provide an api_key in payload")
        raw_ttl = request.url.params.get("expires_in")
        try:
            ttl = int(raw_ttl) if raw_ttl is not None else None
        except ValueError:
            return _fence_error(400, f"Invalid 'expires_in' value '{raw_ttl}'")
        try:
            claims = self.tokens.decode(str(api_key), "api_key")
        except TokenError as exc:
            raise _Unauthorized(f"Invalid API key: {exc}") from None
        key = self.api_keys.get(claims["jti"])
        user = self._user_by_id(claims.get("sub"))
        if key is None or user is None:
            raise _Unauthorized("Invalid API key: unknown key or user")
        scopes = [s for s in claims.get("scope", []) if s != "credentials"]
        return json_response({"access_token": self._access_token(user, scopes, ttl)})

    def _fence_list_keys(self, request: httpx.Request) -> httpx.Response:
        user, _ = self._user(request)
        keys = sorted(
            (
                k
                for k in self.api_keys.values()
                if k.user is user and k.jti not in self.tokens.revoked
            ),
            key=lambda k: k.exp,
            reverse=True,
        )
        return json_response({"jtis": [{"jti": k.jti, "exp": k.exp} for k in keys]})

    def _fence_create_key(self, request: httpx.Request) -> httpx.Response:
        user, claims = self._user(request)
        if "credentials" not in claims.get("scope", []):
            raise _Unauthorized(
                "Authentication Error: token is missing the 'credentials' scope", 403
            )
        scope: Any = []
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            scope = parse_qs(request.content.decode()).get("scope", [])
        else:
            try:
                body = _json_body(request)
                scope = (
                    (body or {}).get("scope") or []
                    if isinstance(body, Mapping | type(None))
                    else []
                )
            except ValueError:
                scope = []
        if isinstance(scope, str):
            scope = scope.split(",")
        for s in scope:
            if s not in _USER_SCOPES:
                return _fence_error(400, f"Scope {s} is not supported")
        scopes = sorted(
            {*scope, "fence", "openid", *(s for s in claims.get("scope", []) if s in _USER_SCOPES)}
            - {"credentials"}
        )
        raw_ttl = request.url.params.get("expires_in")
        ttl = (
            min(int(raw_ttl), self.api_key_ttl)
            if raw_ttl and raw_ttl.isdigit()
            else self.api_key_ttl
        )
        return json_response(self.new_api_key(user, scopes=scopes, ttl=ttl))

    def _fence_delete_key(self, request: httpx.Request, key_id: str) -> httpx.Response:
        user, _ = self._user(request)
        key = self.api_keys.get(key_id)
        if key is None or key.user is not user or key_id in self.tokens.revoked:
            return _fence_error(404, f"token not found with JTI {key_id} for current user")
        self.tokens.revoked.add(key_id)
        return httpx.Response(204)

    def _fence_token(self, request: httpx.Request) -> httpx.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode(errors="replace")).items()}
        values = {**dict(request.url.params.items()), **form}

        def oauth_error(status: int, error: str, description: str = "") -> httpx.Response:
            body = {"error": error, **({"error_description": description} if description else {})}
            return json_response(body, status, {"Cache-Control": "no-store", "Pragma": "no-cache"})

        client_id, secret = values.get("client_id"), values.get("client_secret")
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            try:
                client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                return oauth_error(401, "invalid_client")
        client = self.clients.get(client_id or "")
        if client is None or client.secret != secret:
            return oauth_error(401, "invalid_client")
        grant = values.get("grant_type")
        if not grant:
            return oauth_error(400, "invalid_request", 'Missing "grant_type" in request.')
        if grant not in ("client_credentials", "refresh_token", "authorization_code"):
            return oauth_error(400, "unsupported_grant_type")
        if grant not in client.grant_types:
            return oauth_error(400, "unauthorized_client")
        requested = values.get("scope", "").split() or list(client.scopes)
        if any(s not in client.scopes for s in requested):
            return oauth_error(400, "invalid_scope")
        headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
        if grant == "client_credentials":
            token = self._access_token(None, requested, None, client.client_id)
            body = {"access_token": token, "token_type": "Bearer", "expires_in": self.access_token_ttl,
                    "scope": " ".join(requested)}  # fmt: skip
            return json_response(body, 200, headers)
        if grant == "authorization_code":
            return oauth_error(
                400, "invalid_grant", "The fake commons issues no authorization codes."
            )
        try:
            claims = self.tokens.decode(values.get("refresh_token", ""), "refresh")
        except TokenError as exc:
            return oauth_error(400, "invalid_grant", str(exc))
        user = self._user_by_id(claims.get("sub"))
        if user is None or claims.get("azp") != client.client_id:
            return oauth_error(400, "invalid_grant", "refresh token was not issued to this client")
        scopes = values.get("scope", "").split() or list(claims.get("scope", []))
        body = {
            "access_token": self._access_token(user, scopes, None, client.client_id),
            "id_token": self.tokens.id_token(
                user, self.fence_url, self.access_token_ttl, client.client_id
            ),
            "token_type": "Bearer",
            "expires_in": self.access_token_ttl,
            "scope": " ".join(scopes),
        }
        return json_response(body, 200, headers)

    def _fence_user_info(self, request: httpx.Request) -> httpx.Response:
        user, claims = self._user(request, "user")
        return json_response({
            "user_id": user.id, "sub": str(user.id), "username": user.username, "name": user.username,
            "display_name": None, "preferred_username": None, "phone_number": None, "email": user.email,
            "idp": user.idp, "is_admin": user.is_admin, "active": True,
            "role": "admin" if user.is_admin else "user", "project_access": {},
            "certificates_uploaded": [], "resources_granted": [], "groups": [], "message": "",
            "primary_google_service_account": None, "azp": claims.get("azp") or None,
            "authz": copy.deepcopy(user.authz), "resources": sorted(user.authz),
            "ga4gh_passport_v1": [], "tags": {},
        })  # fmt: skip

    def _may_read(self, user: FakeUser | None, record: Mapping[str, Any]) -> bool:
        if "*" in record["acl"] or "/open" in record["authz"]:
            return True
        if user is None:
            return False
        if user.is_admin or (record["uploader"] and record["uploader"] == user.username):
            return True
        return any(user.can(r, "read-storage", "fence") for r in record["authz"])

    def _expires(self, raw: Any) -> int:
        try:
            value = int(raw) if raw is not None else self.max_presigned_url_ttl
        except (TypeError, ValueError):
            raise _Unauthorized(f"expires_in must be an integer, got {raw!r}", 400) from None
        if value <= 0:
            raise _Unauthorized("expires_in must be a positive integer", 400)
        return min(value, self.max_presigned_url_ttl)

    def _fence_download(self, request: httpx.Request, guid: str) -> httpx.Response:
        record = self.index.records.get(guid)
        if record is None:
            return _fence_error(404, f"No indexed file found with id {guid}")
        claims = self._claims(request, required=False)
        user = self._user_by_id(claims.get("sub")) if claims else None
        if not self._may_read(user, record):
            if claims is None:
                raise _Unauthorized("Authentication Error: no bearer token in Authorization header")
            return _fence_error(403, f"You don't have access permission on this file: {guid}")
        if not record["urls"]:
            return _fence_error(404, "Can't find any file locations.")
        protocol = request.url.params.get("protocol")
        url = record["urls"][0]
        if protocol:
            wanted = "s3" if protocol in ("s3", "http") else protocol
            candidates = [u for u in record["urls"] if u.startswith(f"{wanted}://")]
            if not candidates:
                return _fence_error(
                    400, f"File {guid} does not have a location with specified protocol {protocol}."
                )
            url = candidates[0]
        location = self._s3_location(url)
        if location is None:
            return json_response({"url": url})
        extra = {"user_id": str(user.id), "username": user.username} if user else {}
        signed = self.storage.presign(
            "GET",
            self.origins["storage"],
            *location,
            self._expires(request.url.params.get("expires_in")),
            extra,
        )
        if "redirect" in request.url.params:
            return httpx.Response(302, headers={"Location": signed})
        return json_response({"url": signed})

    def _upload_body(self, request: httpx.Request) -> dict[str, Any]:
        try:
            body = _json_body(request)
        except ValueError:
            body = None
        if not isinstance(body, dict) or not body:
            raise _Unauthorized("wrong Content-Type; expected application/json", 400)
        return body

    def _start_upload(
        self, request: httpx.Request
    ) -> tuple[FakeUser, str, str, str, dict[str, Any]]:
        user, _ = self._user(request, "data")
        body = self._upload_body(request)
        if "file_name" not in body:
            raise _Unauthorized("missing required argument `file_name`", 400)
        authz = body.get("authz")
        if authz:
            if not all(
                user.can(r, "create", "fence") and user.can(r, "write-storage", "fence")
                for r in authz
            ):
                raise _Unauthorized(
                    "You don't have access to upload with these authz resources", 403
                )
        elif not user.can("/data_file", "file_upload", "fence"):
            raise _Unauthorized("You don't have access to upload data", 403)
        guid = body.get("guid")
        if guid:
            if guid not in self.index.records:
                raise _Unauthorized(f"Record with guid {guid} not found", 404)
        else:
            guid = self.index.create_blank({
                "uploader": None if authz else user.username, "file_name": body["file_name"],
                **({"authz": list(authz)} if authz else {}),
            })["did"]  # fmt: skip
        bucket = body.get("bucket") or self.upload_bucket
        key = f"{guid}/{body['file_name']}"
        self._uploads[(bucket, key)] = guid
        return user, guid, bucket, key, body

    def _fence_upload(self, request: httpx.Request) -> httpx.Response:
        protocol = (self._upload_body(request).get("protocol") or "s3").lower()
        if protocol != "s3":  # the fake's storage is S3-like only
            raise _Unauthorized(f"protocol {protocol} is not supported for upload", 400)
        user, guid, bucket, key, body = self._start_upload(request)
        extra = {"user_id": str(user.id), "username": user.username}
        url = self.storage.presign(
            "PUT",
            self.origins["storage"],
            bucket,
            key,
            self._expires(body.get("expires_in")),
            extra,
        )
        return json_response({"guid": guid, "url": url}, 201)

    def _fence_upload_url(self, request: httpx.Request, guid: str) -> httpx.Response:
        user, _ = self._user(request)
        record = self.index.records.get(guid)
        if record is None:
            return _fence_error(404, f"No indexed file found with id {guid}")
        may_write = (
            user.is_admin
            or record["uploader"] == user.username
            or any(user.can(r, "write-storage", "fence") for r in record["authz"])
        )
        if not may_write:
            return _fence_error(403, f"You don't have access permission on this file: {guid}")
        bucket = request.url.params.get("bucket") or self.upload_bucket
        key = f"{guid}/{request.url.params.get('file_name') or guid}"
        self._uploads[(bucket, key)] = guid
        url = self.storage.presign(
            "PUT",
            self.origins["storage"],
            bucket,
            key,
            self._expires(request.url.params.get("expires_in")),
        )
        return json_response({"url": url})

    def _fence_multipart_init(self, request: httpx.Request) -> httpx.Response:
        _, guid, bucket, key, _ = self._start_upload(request)
        return json_response(
            {"guid": guid, "uploadId": self.storage.create_multipart(bucket, key)}, 201
        )

    def _fence_multipart_part(self, request: httpx.Request) -> httpx.Response:
        self._user(request, "data")
        body = self._upload_body(request)
        missing = sorted({"key", "uploadId", "partNumber"} - set(body))
        if missing:
            return _fence_error(400, f"missing required arguments: {missing}")
        bucket = body.get("bucket") or self.upload_bucket
        url = self.storage.presign(
            "PUT", self.origins["storage"], bucket, str(body["key"]), self._expires(body.get("expires_in")),
            {"partNumber": str(body["partNumber"]), "uploadId": str(body["uploadId"])},
        )  # fmt: skip
        return json_response({"presigned_url": url})

    def _fence_multipart_complete(self, request: httpx.Request) -> httpx.Response:
        self._user(request, "data")
        body = self._upload_body(request)
        missing = sorted({"key", "uploadId", "parts"} - set(body))
        if missing:
            return _fence_error(400, f"missing required arguments: {missing}")
        bucket = body.get("bucket") or self.upload_bucket
        key = str(body["key"])
        parts = body["parts"] if isinstance(body["parts"], list) else []
        try:
            self.storage.complete_multipart(bucket, key, str(body["uploadId"]), parts)
        except StorageError as exc:
            detail = (
                f"An error occurred ({exc.code}) when calling the CompleteMultipartUpload operation: "
                f"{exc.message}"
            )
            return json_response(
                {"message": f"Can not complete multipart upload for {key}. Detail {detail}"}, 500
            )
        return json_response({"message": "OK"})

    def _fence_delete_file(self, request: httpx.Request, guid: str) -> httpx.Response:
        user, _ = self._user(request, "data")
        record = self.index.records.get(guid)
        if record is None:
            return _fence_error(404, f"No indexed file found with id {guid}")
        if not record["uploader"]:
            return _fence_error(403, "deleting submitted records is not supported")
        if record["uploader"] != user.username:
            return _fence_error(403, f"user is not uploader for file {guid}")
        for url in record["urls"]:
            location = self._s3_location(url)
            if location:
                self.storage.objects.pop(location, None)
        self.index.remove(guid)
        return httpx.Response(204)

    def _fence_openid_configuration(self) -> httpx.Response:
        base = self.fence_url
        return json_response({
            "issuer": base, "authorization_endpoint": f"{base}/oauth2/authorize",
            "token_endpoint": f"{base}/oauth2/token", "userinfo_endpoint": f"{base}/user",
            "registration_endpoint": None, "jwks_uri": f"{base}/.well-known/jwks",
            "scopes_supported": list(_USER_SCOPES), "response_types_supported": ["openid", "code", "token"],
            "response_modes_supported": [], "grant_types_supported": ["authorization_code", "implicit"],
            "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "claims_supported": ["aud", "sub", "iss", "exp", "jti", "auth_time", "azp", "scope", "nonce", "context"],
        })  # fmt: skip

    # -- indexd --------------------------------------------------------------------------------------------
    def _indexd_writer(self, request: httpx.Request) -> Authorizer:
        """Who writes: indexd's own HTTP Basic client (may do anything), or a Fence token's user, whose
        permissions are asked of arborist (here: the user's ``authz``) for service ``indexd``."""
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            try:
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                raise _Unauthorized("invalid basic authorization header") from None
            if (user, password) != self.indexd_credentials:
                raise _Unauthorized("username / password mismatch")
            return lambda method, resources: True
        if self._bearer(request) is None:
            raise _Unauthorized("Please provide a username and password, or a bearer token")
        writer, _ = self._user(request)

        def can(method: str, resources: Sequence[str]) -> bool:
            if resources and all(writer.can(r, method, "indexd") for r in resources):
                return True
            if writer.can("/services/indexd/admin", method, "indexd"):
                return True
            return not resources and writer.can("/programs", method, "indexd")

        return can

    def _indexd_route(self, request: httpx.Request, path: str) -> httpx.Response:
        method = request.method
        rev = request.url.params.get("rev")
        if method == "GET" and path == "_status":
            return _text("Healthy")
        if method == "GET" and path == "_version":
            return json_response({"version": "fake", "commit": "0" * 40})
        if method == "GET" and path == "_stats":
            return json_response(self.index.stats())
        if method == "GET" and path == "_query/urls/q":
            return json_response(self.index.query_urls(dict(request.url.params.items())))
        if method == "POST" and path.rstrip("/") == "bulk/documents":
            return json_response(self.index.bulk(_json_body(request)))
        if path in ("index", "index/"):
            if method == "GET":
                return json_response(self.index.list(_params(request)))
            if method == "POST":
                can = self._indexd_writer(request)
                return json_response(self.index.create(_json_body(request), can=can))
        if path.startswith("index/blank"):
            guid = path[len("index/blank") :].strip("/")
            can = self._indexd_writer(request)
            if method == "POST" and not guid:
                body = _json_body(request) or {}
                return json_response(self.index.create_blank(body, can=can), 201)
            if method == "PUT" and guid:
                return json_response(
                    self.index.update_blank(guid, rev, _json_body(request), can=can)
                )
            if method == "POST" and guid:
                record = self.index.get(guid)
                body = _json_body(request) or {}
                self.index._authorize(can, "update", record["authz"])
                new = self.index.create_blank(
                    {k: v for k, v in body.items() if k != "did"}, did=body.get("did"), can=can
                )
                new_record = self.index.get(new["did"])
                new_record["baseid"] = record["baseid"]
                new_record["authz"] = body.get("authz") or list(record["authz"])
                new_record["acl"] = list(record["acl"])
                return json_response(self.index.ref(new["did"]), 201)
        if path.startswith("index/"):
            rest = path[len("index/") :]
            if method == "GET" and rest.endswith("/versions"):
                versions = self.index.versions(rest[: -len("/versions")])
                return json_response({str(i): v for i, v in enumerate(versions)})
            if method == "GET" and rest.endswith("/latest"):
                versions = self.index.versions(rest[: -len("/latest")])
                if request.url.params.get("has_version", "").lower() == "true":
                    versions = [v for v in versions if v.get("version")]
                if not versions:
                    raise IndexdError(404, "no record found")
                return json_response(versions[-1])
            if method == "GET":
                return json_response(self.index.document(rest))
            can = self._indexd_writer(request)
            if method == "PUT":
                return json_response(self.index.update(rest, rev, _json_body(request), can=can))
            if method == "DELETE":
                self.index.delete(rest, rev, can=can)
                return _text("", 200, "text/html; charset=utf-8")
            if method == "POST":
                return json_response(self.index.add_version(rest, _json_body(request), can=can))
        if method == "GET" and path and not path.startswith(("index", "_")):
            return json_response(self.index.resolve(path))
        raise IndexdError(
            404 if method == "GET" else 405,
            "Not Found" if method == "GET" else "Method Not Allowed",
        )

    # -- sheepdog and peregrine -----------------------------------------------------------------------------
    def _project_user(
        self, request: httpx.Request, program: str, project: str, method: str
    ) -> FakeUser:
        """Sheepdog's per-project check: it hands the token to arborist, which refuses an expired or
        otherwise invalid token like a missing permission (403); only a missing token is a 401."""
        if self._bearer(request) is None:
            self._user(request)  # 401: no token at all
        try:
            user, _ = self._user(request)
        except _Unauthorized:
            raise ApiError(403, "user is unauthorized") from None
        if not user.can(f"/programs/{program}/projects/{project}", method, "sheepdog"):
            raise ApiError(
                403, f"You don't have access to this data: {method} on {program}-{project}"
            )
        return user

    def _admin(self, request: httpx.Request) -> FakeUser:
        user, _ = self._user(request)
        if not (
            user.is_admin or user.can("/services/sheepdog/submission/program", "*", "sheepdog")
        ):
            raise ApiError(403, "You don't have access to this data: You are not an admin")
        return user

    def _api_route(self, request: httpx.Request, path: str) -> httpx.Response:
        method = request.method
        if path in ("_status", "_version") and method == "GET":
            if path == "_status":
                return _text("Healthy")
            return json_response(
                {
                    "version": "fake",
                    "commit": "0" * 40,
                    "dictionary": {"version": "fake", "commit": ""},
                }
            )
        prefix = "v0/submission"
        if not (path == prefix or path.startswith(prefix + "/")):
            raise ApiError(404, "The requested URL was not found on the server.")
        rest = path[len(prefix) :].strip("/")
        parts = [p for p in rest.split("/") if p] if rest else []
        if not parts:
            if method == "GET":
                self._user(request)
                names = [n.props.get("name") for n in self.graph.nodes_of("program")]
                return json_response({"links": [f"/v0/submission/{n}" for n in names]})
            if method in ("POST", "PUT", "PATCH"):
                self._admin(request)
                return json_response(self.graph.create_program(self._sheepdog_json(request)))
        if parts[0] == "_dictionary" and method == "GET":
            if self.private_dictionary:
                self._user(request)
            return self._sheepdog_dictionary(parts[1:])
        if parts == ["graphql"] and method == "POST":
            return self._graphql(request)
        if parts == ["getschema"] and method == "GET":
            return json_response({"data": self._introspection()})
        program = parts[0]
        if len(parts) == 1:
            if method == "GET":
                self._user(request)
                if self.graph.program(program) is None:
                    raise ApiError(404, f"program {program} is not registered")
                projects = [
                    n.props.get("code")
                    for n in self.graph.nodes_of("project")
                    if self.graph.project_id_of(n) == f"{program}-{n.props.get('code')}"
                ]
                return json_response({"links": [f"/v0/submission/{program}/{c}" for c in projects]})
            if method in ("POST", "PUT", "PATCH"):
                self._admin(request)
                return json_response(
                    self.graph.create_project(program, self._sheepdog_json(request))
                )
            if method == "DELETE":
                self._admin(request)
                self.graph.delete_program(program)
                return httpx.Response(204)
        project = parts[1]
        tail = parts[2:]
        if not tail:
            if method in ("POST", "PUT"):
                return self._submit(request, program, project, dry_run=False)
            if method == "DELETE":
                self._admin(request)
                self.graph.delete_project(program, project)
                return httpx.Response(204)
        if tail == ["_dry_run"] and method in ("POST", "PUT"):
            return self._submit(request, program, project, dry_run=True)
        if tail[0] == "entities" and len(tail) == 2:
            ids = tail[1].split(",")
            if method == "GET":
                self._project_user(request, program, project, "read")
                return self._get_entities(program, project, ids)
            if method == "DELETE":
                self._project_user(request, program, project, "delete")
                flag = request.url.params.get("to_delete")
                to_delete = None if flag is None else flag.lower() == "true"
                if flag is not None and flag.lower() not in ("true", "false"):
                    raise ApiError(400, "to_delete value not true or false")
                status, body = self.graph.delete(program, project, ids, to_delete=to_delete)
                return json_response(body, status)
        if tail == ["export"] and method in ("GET", "POST"):
            return self._export(request, program, project)
        if tail == ["manifest"] and method == "GET":
            return self._manifest(request, program, project)
        if tail[0] == "_dictionary" and method == "GET" and len(tail) <= 2:
            self._project_user(request, program, project, "read")
            if len(tail) == 1:
                entries = [*(n for n in self.graph.infos), "_all"]
                base = f"/v0/submission/{program}/{project}/_dictionary"
                return json_response({"links": [f"{base}/{e}" for e in entries]})
            return self._sheepdog_dictionary(tail[1:])
        raise ApiError(404, "The requested URL was not found on the server.")

    @staticmethod
    def _sheepdog_json(request: httpx.Request) -> Any:
        try:
            return _json_body(request)
        except ValueError as exc:
            raise ApiError(400, f"Unable to parse json: {exc}") from None

    def _sheepdog_dictionary(self, parts: list[str]) -> httpx.Response:
        sources = self.graph.sources
        if not parts:
            entries = [*(n for n in sources if not n.startswith("_")), "_all"]
            return json_response({"links": [f"/v0/submission/_dictionary/{e}" for e in entries]})
        entry = parts[0]
        if entry == "_all" and len(parts) == 1:
            return json_response({k.removesuffix(".yaml"): v for k, v in sources.items()})
        for key in (entry, f"{entry}.yaml"):
            if key in sources and len(parts) == 1:
                return json_response(sources[key])
        raise ApiError(404, f"Entry {entry} not in dictionary")

    def _submit(
        self, request: httpx.Request, program: str, project: str, *, dry_run: bool
    ) -> httpx.Response:
        role = "create" if request.method == "POST" else "update"
        self.graph.require_project(program, project)
        self._project_user(request, program, project, role)
        content_type = (
            request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
        )
        if content_type in ("text/tab-separated-values", "text/tsv", "text/csv"):
            text = request.content.decode("utf-8-sig")
            if content_type == "text/csv":
                text = "\n".join("\t".join(row) for row in csv.reader(text.splitlines()))
            docs: Any = self.graph.parse_tsv(text)
        else:
            docs = self._sheepdog_json(request)
        status, body = self.graph.submit(program, project, docs, role=role, dry_run=dry_run)
        return json_response(body, status)

    def _get_entities(self, program: str, project: str, ids: list[str]) -> httpx.Response:
        project_id = f"{program}-{project}"
        nodes = [self.graph.nodes[i] for i in ids if i in self.graph.nodes]
        missing = [i for i in ids if i not in {n.id for n in nodes}]
        if missing:
            raise ApiError(404, f"Not found: {', '.join(missing)}")
        entities = []
        for node in nodes:
            properties = dict(node.props)
            for link, targets in node.links.items():
                properties[link] = [{"id": t} for t in targets]
            properties["type"] = node.label
            properties["id"] = node.id
            entities.append(
                {
                    "id": node.id,
                    "type": node.label,
                    "project_id": project_id,
                    "properties": properties,
                }
            )
        return json_response({"entities": entities})

    def _export(self, request: httpx.Request, program: str, project: str) -> httpx.Response:
        self._project_user(request, program, project, "read")
        if request.method == "GET":
            args = dict(request.url.params.items())
        else:
            args = self._sheepdog_json(request) or {}
        ids_raw = args.get("ids")
        ids = (
            ids_raw.split(",")
            if isinstance(ids_raw, str) and ids_raw
            else ids_raw
            if isinstance(ids_raw, list)
            else None
        )
        body, mimetype, filename = self.graph.export(
            program, project,
            ids=ids, node_label=args.get("node_label"), file_format=str(args.get("format") or "tsv"),
            with_children=str(args.get("with_children", "false")).lower() == "true",
            category=args.get("category"),
            without_id=str(args.get("without_id", "false")).lower() == "true",
        )  # fmt: skip
        return httpx.Response(
            200, content=body,
            headers={"Content-Type": mimetype, "Content-Disposition": f"attachment; filename={filename}"},
        )  # fmt: skip

    def _manifest(self, request: httpx.Request, program: str, project: str) -> httpx.Response:
        """Sheepdog's file manifest: YAML ``files:`` of the data files' JSON exports."""
        import yaml

        self._project_user(request, program, project, "read")
        raw = request.url.params.get("ids", "").strip()
        if not raw:
            raise ApiError(400, "No ids specified. Use query parameter 'ids', e.g. 'ids=id1,id2'.")
        ids = raw.split(",")
        wrong = [
            f"{self.graph.nodes[i].label} {i} is not a data file."
            for i in ids
            if i in self.graph.nodes
            and self.graph.infos[self.graph.nodes[i].label].category != "data_file"
        ]
        if wrong:
            raise ApiError(400, " ".join(wrong))
        body, _, _ = self.graph.export(
            program, project, ids=ids, node_label=None, file_format="json"
        )
        docs = [dict(local_file_path=d.get("file_name"), **d) for d in json.loads(body)]
        return httpx.Response(
            200,
            content=yaml.safe_dump({"files": docs}, default_flow_style=False).encode(),
            headers={
                "Content-Type": "text/html; charset=utf-8",
                "Content-Disposition": "attachment; filename=submission_manifest.yaml",
            },
        )

    def _graphql(self, request: httpx.Request) -> httpx.Response:
        user, _ = self._user(request)
        try:
            payload = _json_body(request)
        except ValueError:
            return json_response(
                {"data": None, "errors": ["Unable to parse request body as JSON."]}, 400
            )
        if not isinstance(payload, Mapping):
            return json_response(
                {"data": None, "errors": ["The request body must be a JSON object."]}, 400
            )
        variables = payload.get("variables")
        if isinstance(variables, str):
            try:
                variables = json.loads(variables) if variables.strip() else None
            except ValueError:
                return json_response({"data": None, "errors": ["Unable to parse variables"]}, 400)

        def readable(project_id: str | None) -> bool:
            if project_id is None:
                return True
            program, _, code = project_id.partition("-")
            return user.can(f"/programs/{program}/projects/{code}", "read", "peregrine")

        data, errors = execute(
            self.graph,
            payload.get("query"),
            variables,
            payload.get("operationName"),
            readable=readable,
        )
        if errors:
            return json_response({"data": data, "errors": errors}, self.graphql_error_status)
        return json_response({"data": data})

    def _introspection(self) -> dict[str, Any]:
        """A compact ``__schema`` (the shape of the standard introspection result)."""

        def named(kind: str, name: str) -> dict[str, Any]:
            return {"kind": kind, "name": name, "ofType": None}

        def list_of(name: str) -> dict[str, Any]:
            return {"kind": "LIST", "name": None, "ofType": named("OBJECT", name)}

        types = []
        root_fields = []
        for label, info in self.graph.infos.items():
            fields = [{"name": "id", "type": named("SCALAR", "String"), "args": []}]
            for name in info.properties:
                if name in info.link_names:
                    fields.append(
                        {"name": name, "type": list_of(info.link(name).target_type), "args": []}
                    )
                elif name != "id":
                    fields.append({"name": name, "type": named("SCALAR", "String"), "args": []})
            types.append({"kind": "OBJECT", "name": label, "fields": fields})
            root_fields.append({"name": label, "type": list_of(label), "args": []})
            root_fields.append(
                {"name": f"_{label}_count", "type": named("SCALAR", "Int"), "args": []}
            )
        types.insert(0, {"kind": "OBJECT", "name": "Root", "fields": root_fields})
        return {"__schema": {"queryType": {"name": "Root"}, "mutationType": None, "types": types}}
