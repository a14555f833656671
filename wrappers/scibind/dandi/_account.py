"""The caller's account (API key, sign-in), users, the server's schema version, and any list endpoint."""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

import httpx

from .. import errors
from .._core import effects as fx
from .._core.facade import operation
from .._core.secrets import Secret
from ._base import DandiBase
from ._errors import SchemaVersionError

if TYPE_CHECKING:
    from scibind_generated.dandi.models import UserDetail

    from ..pagination import Page, Paginator

__all__ = ["AccountOps", "compare_schema_versions"]

log = logging.getLogger("scibind.dandi")


def _version(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.strip().split("."))
    except ValueError:
        raise errors.ResponseFormatError(f"not a schema version: {text!r}") from None


def compare_schema_versions(
    server: str,
    ours: str,
    *,
    server_accepts: list[str] | tuple[str, ...],
    can_target: list[str] | tuple[str, ...],
) -> str | None:
    """dandi-cli's rule (``DandiAPIClient.check_schema_version``), without I/O.

    Raises :class:`SchemaVersionError` when metadata of schema ``ours`` cannot be used with a server on
    ``server``: the server is newer and does not list ``ours`` among the versions it accepts, or it is older,
    metadata cannot be downgraded to its version, and the two differ in MAJOR.MINOR (0.x) or MAJOR (1.x+).
    Returns a warning message when the server is older but compatible, else None.
    """
    s, o = _version(server), _version(ours)
    if s > o:
        if ours not in server_accepts:
            raise SchemaVersionError(
                f"the server uses metadata schema {server}; scibind's models are {ours}, which the server "
                f"does not accept ({', '.join(server_accepts)}): upgrade scibind (or regenerate the "
                "metadata models from a newer dandischema)",
                server=server,
                client=ours,
            )
        return None
    if s < o:
        downgradable = server in can_target
        if not downgradable and (s[:1] != o[:1] or (s[0] == 0 and s[:2] != o[:2])):
            raise SchemaVersionError(
                f"the server uses an older, incompatible metadata schema {server}; "
                f"scibind's models are {ours}",
                server=server,
                client=ours,
            )
        how = "can be downgraded to it" if downgradable else "cannot be downgraded to it"
        return (
            f"the server uses metadata schema {server}, older than scibind's models ({ours}); metadata "
            f"{how}: the server may fail to validate newer fields until it is upgraded"
        )
    return None


class AccountOps(DandiBase):
    """The caller's account and API key, users, the server's schema version, generic listings."""

    # -- the API key ----------------------------------------------------------------------------------------
    @operation
    def get_api_key(self) -> fx.Op[Secret]:
        """The API key of the user this client is signed in as (approved users; AuthenticationError otherwise)."""
        from scibind_generated.dandi.api.auth import get_api_key as ep

        resp = yield fx.Call(ep)
        if not isinstance(resp.parsed, str) or not resp.parsed:
            raise errors.ResponseFormatError("the archive did not answer an API key", status=200)
        return Secret(resp.parsed)

    @operation
    def authenticate(
        self,
        api_key: str | Secret | None = None,
        *,
        save: bool = True,
        interactive: bool | None = None,
    ) -> fx.Op[UserDetail]:
        """Check an API key with the archive, use it from now on, and store it in the keyring (like dandi-cli).

        Without ``api_key`` the key is asked for, only when stdin is a terminal (never with
        ``interactive=False``); elsewhere CredentialsError. The key is checked with ``GET /auth/token/``
        (AuthenticationError when the archive refuses it; nothing changes then) and used from then on. With
        ``save`` it is stored as dandi-cli stores it (keyring ``dandi-api-<instance>``, username ``key``), where
        this client and dandi-cli look next time (CredentialsError when no keyring takes it). Returns the user.
        """
        from ..auth import HeaderAuth, ScopedAuth, check_credential_url, keyring_store

        key = api_key.reveal() if isinstance(api_key, Secret) else api_key
        if not key:
            key = yield fx.Blocking(_ask_key, (self.instance.name, interactive))
        if not key:
            raise errors.CredentialsError(
                f"no DANDI API key for {self.instance.name}: pass api_key=, or run on a terminal "
                "to be asked for it"
            )
        key = key.strip()
        check_credential_url(self.base_url, allow_insecure_http=self.config.allow_insecure_http)
        yield fx.Request(
            "GET", "/auth/token/", headers={"Authorization": f"token {key}"}, auth=False
        )
        self._http.auth = ScopedAuth(
            HeaderAuth(Secret(key), scheme="token"),
            [self.base_url],
            allow_insecure_http=self.config.allow_insecure_http,
        )
        self.authenticated = True
        if save:
            where = yield fx.Blocking(
                keyring_store, (f"dandi-api-{self.instance.name}", "key", Secret(key))
            )
            log.info("DANDI API key for %s stored in %s", self.instance.name, where)
        return (yield from AccountOps.me.fn(self))

    # -- users -------------------------------------------------------------------------------------------
    @operation
    def me(self) -> fx.Op[UserDetail]:
        """The user the API key belongs to (AuthenticationError when anonymous or the key is wrong)."""
        from scibind_generated.dandi.api.users import get_current_user as ep

        resp = yield fx.Call(ep)
        return resp.parsed  # type: ignore[no-any-return]

    get_user = me
    """The signed-in user (``GET /users/me/``); the same as :meth:`me`."""

    @operation
    def search_users(self, text: str) -> fx.Op[list[UserDetail]]:
        """Up to ten approved users whose username or name contains ``text``."""
        from scibind_generated.dandi.api.users import search_users as ep

        resp = yield fx.Call(ep, {"username": text})
        return list(resp.parsed)

    @operation
    def users(self, *, approved_only: bool = False) -> fx.Op[list[UserDetail]]:
        """Every registered user (admins only: PermissionDeniedError otherwise)."""
        from scibind_generated.dandi.api.users import list_users as ep

        resp = yield fx.Call(ep, {"approved_only": approved_only})
        return list(resp.parsed)

    # -- the metadata schema ---------------------------------------------------------------------------------
    @operation
    def check_schema_version(self, schema_version: str | None = None) -> fx.Op[str]:
        """Whether metadata of ``schema_version`` (default: scibind's models) can be used with this server.

        dandi-cli's rule, against the server's ``/info/``: a newer server must list the version among those it
        accepts (else :class:`~scibind.dandi.SchemaVersionError`); an older server gets a logged warning when
        compatible (same 0.MINOR / MAJOR, or metadata can be downgraded to it) and SchemaVersionError
        otherwise. Returns the server's schema version.
        """
        from scibind_generated.dandi.api.info import get_server_info as ep
        from scibind_generated.dandi.types import Unset

        from ._schemas import schema_versions

        ours, accepts, targets = schema_versions()
        resp = yield fx.Call(ep)
        info = resp.parsed
        server = str(info.schema_version or "")
        if not server:
            raise errors.ResponseFormatError(
                "the server did not report its schema_version in /info/"
            )
        allowed = info.allowed_schema_versions
        server_accepts = accepts if isinstance(allowed, Unset) or allowed is None else allowed
        warning = compare_schema_versions(
            server, schema_version or ours, server_accepts=server_accepts, can_target=targets
        )
        if warning:
            log.warning(warning)
        return server

    # -- any list endpoint -------------------------------------------------------------------------------------
    def paginate(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        page_size: int | None = None,
        max_items: int | None = None,
    ) -> Paginator[dict[str, Any]]:
        """Every item of a list endpoint the client does not wrap, as dicts (``client.paginate("/zarr/")``).

        ``path`` is relative to the API URL. Page-number listings (``{count, next, previous, results}`` with
        ``page=`` links) have their remaining pages fetched concurrently; cursor listings (``next`` links, such
        as a Zarr's files) are followed; a bare JSON list is one page. ``next`` links must stay on the API.
        """
        from ._dandisets import page_size_ok, paginator

        if "://" in path or not path.startswith("/"):
            raise errors.ConfigurationError(
                f"paginate takes a path below the API URL ('/zarr/'), not {path!r}"
            )
        query = dict(params or {})
        if page_size is not None:
            query["page_size"] = page_size_ok(page_size)

        def fetch(key: int | str) -> fx.Op[Page[dict[str, Any]]]:
            if isinstance(key, str):
                resp = yield fx.Request("GET", self._on_api(key))
            else:
                resp = yield fx.Request(
                    "GET", path, params={**query, **({"page": key} if key > 1 else {})}
                )
            return _generic_page(resp, key)

        return paginator(self._driver, fetch, max_items=max_items)

    def _on_api(self, url: str) -> str:
        """``url`` if it is below the API URL (a ``next`` link), else ResponseFormatError."""
        api, link = httpx.URL(self.base_url), httpx.URL(url)
        same = (link.scheme, link.host, link.port) == (api.scheme, api.host, api.port)
        if not same or not link.path.startswith(api.path.rstrip("/") + "/"):
            raise errors.ResponseFormatError(f"a next link leaves the API: {url}")
        return url


def _generic_page(resp: httpx.Response, key: int | str) -> Page[dict[str, Any]]:
    from .._core.responses import format_error
    from ..pagination import Page

    try:
        body = resp.json()
        if isinstance(body, list):
            return Page([_item(x) for x in body])
        if not isinstance(body, dict) or not isinstance(body.get("results"), list):
            raise TypeError("expected a list, or a page object with a results list")
        items = [_item(x) for x in body["results"]]
        count, nxt = body.get("count"), body.get("next")
        if nxt is not None and not isinstance(nxt, str):
            raise TypeError("next must be a link or null")
    except (TypeError, ValueError) as exc:
        raise format_error(resp.request, "response is not a listing", exc) from None
    if nxt and "page" not in httpx.URL(nxt).params:
        return Page(items, next=nxt)  # a cursor: follow the links
    if key == 1 and nxt and isinstance(count, int) and not isinstance(count, bool) and items:
        return Page(items, total_pages=math.ceil(count / len(items)), total_items=count, next=2)
    if isinstance(key, int):
        return Page(items, next=key + 1 if nxt else None)
    return Page(items, next=nxt or None)


def _item(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected objects in the listing, got {type(value).__name__}")
    return value


def _ask_key(instance: str, interactive: bool | None) -> str | None:
    from ..auth import prompt_source

    if interactive is False:
        return None
    return prompt_source(f"DANDI API key for {instance}: ").fetch()
