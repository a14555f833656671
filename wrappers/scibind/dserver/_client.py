"""The dserver (dtool lookup server) client: :class:`DServer` and :class:`AsyncDServer` from one code base."""

from __future__ import annotations

import uuid as _uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from .._core import effects as fx
from .._core.drivers import Runtime
from .._core.facade import AsyncFacade, SyncFacade, operation
from .._core.secrets import Secret
from ..config import ClientConfig
from ..errors import ConfigurationError, ResponseFormatError
from ..pagination import Page, Paginator, x_pagination_page
from ._auth import dserver_auth, dserver_url
from ._errors import ReadmeFormatError, dserver_error_class, dserver_error_message

if TYPE_CHECKING:
    from scibind_generated.dserver.models import (
        BaseURI,
        BaseURIWithPermissions,
        Dataset,
        GraphDataset,
        Manifest,
        MongoDataset,
        Summary,
        UserWithPermissions,
    )

    from .._core.token_cache import TokenCache

__all__ = [
    "DEFAULT_DEPENDENCY_KEYS",
    "SORTABLE_FIELDS",
    "AsyncDServer",
    "DServer",
    "DatasetPage",
]

SORTABLE_FIELDS = frozenset(
    {"base_uri", "created_at", "creator_username", "frozen_at", "name", "uri", "uuid"}
)
"""Fields datasets can be sorted by (``datasets``, ``search``, ``lookup``)."""
USER_SORT_FIELDS = frozenset({"username", "is_admin"})
BASE_URI_SORT_FIELDS = frozenset({"base_uri"})
DEFAULT_DEPENDENCY_KEYS = ("readme.derived_from.uuid", "annotations.source_dataset_uuid")
"""The dependency-graph plugin's default keys (a server may configure others: DSERVER_DEPENDENCY_KEYS)."""
MAX_PAGE_SIZE = 100  # flask-smorest's limit on dserver


def _sort(
    sort: str | Sequence[str], allowed: frozenset[str] = SORTABLE_FIELDS, default: str = "+uri"
) -> str:
    """``"+name,-frozen_at"`` from a string or a list like ``["name", "-frozen_at"]``."""
    fields = [f.strip() for f in (sort.split(",") if isinstance(sort, str) else sort) if f.strip()]
    out = []
    for field in fields:
        sign = field[0] if field[0] in "+-" else "+"
        name = field.lstrip("+-")
        if name not in allowed:
            raise ConfigurationError(f"cannot sort by {name!r}; choose from {sorted(allowed)}")
        out.append(sign + name)
    return ",".join(out) or default


def _dependency_keys(keys: Sequence[str] | None) -> list[str] | None:
    """Checked dependency keys: the server answers 500 for an empty or repeated list, or a key with ``$``."""
    if keys is None:
        return None
    if isinstance(keys, str):
        keys = [keys]
    out = sorted({str(k) for k in keys})
    if not out or any(not k or "$" in k for k in out):
        raise ConfigurationError(
            "dependency_keys must be non-empty dot-separated keys without '$', "
            f"e.g. {list(DEFAULT_DEPENDENCY_KEYS)}"
        )
    return out


def _uuids(values: Iterable[str | _uuid.UUID] | None) -> list[_uuid.UUID] | None:
    if values is None:
        return None
    try:
        return [v if isinstance(v, _uuid.UUID) else _uuid.UUID(str(v)) for v in values]
    except ValueError as exc:
        raise ConfigurationError(f"not a UUID: {exc}") from None


def _page_size(page_size: int) -> int:
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ConfigurationError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
    return page_size


def _filters(
    free_text: str | None,
    creators: Sequence[str] | None,
    base_uris: Sequence[str] | None,
    uuids: Iterable[str | _uuid.UUID] | None,
    tags: Sequence[str] | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if free_text:
        body["free_text"] = free_text
    if creators is not None:
        body["creator_usernames"] = list(creators)
    if base_uris is not None:
        body["base_uris"] = list(base_uris)
    if uuids is not None:
        body["uuids"] = [str(u) for u in _uuids(uuids) or []]
    if tags is not None:
        body["tags"] = list(tags)
    return body


@attrs.frozen
class DatasetPage:
    """One page of a listing with flask-smorest's pagination metadata."""

    items: list[Dataset]
    page: int
    total: int | None
    total_pages: int | None


def _listing(resp: Any) -> Page[Any]:
    return x_pagination_page(resp.parsed, resp.headers)


class _DServerOps:
    """All dserver calls, written once; see :class:`DServer` and :class:`AsyncDServer`."""

    service: ClassVar[str] = "dserver"
    generated_package: ClassVar[str | None] = "scibind_generated.dserver"
    runtime: ClassVar[Runtime] = Runtime(
        message=dserver_error_message, classify=dserver_error_class
    )
    _driver: Any

    def __init__(
        self,
        base_url: str | None = None,
        *,
        token: str | Secret | None = None,
        username: str | None = None,
        password: str | Secret | None = None,
        token_generator_url: str | None = None,
        interactive: bool | None = None,
        token_cache: bool | TokenCache | None = None,
        config: ClientConfig | None = None,
        transport: Any = None,
    ) -> None:
        """Connect to the dserver at ``base_url`` (default: ``DSERVER_URL``).

        Credentials, first found wins: ``token``; ``DSERVER_TOKEN``; dtool's config file; a token minted at
        ``token_generator_url`` (``DSERVER_TOKEN_GENERATOR_URL``) from ``username``/``password``
        (``DSERVER_USERNAME``/``DSERVER_PASSWORD``, config file, keyring, or a prompt when interactive).
        ``token_cache=True`` keeps minted tokens on disk for the next process (default:
        ``SCIBIND_TOKEN_CACHE``; a :class:`~scibind._core.token_cache.TokenCache` picks the directory).
        """
        config = config or ClientConfig()
        url = dserver_url(base_url)
        auth = dserver_auth(
            token=token,
            username=username,
            password=password,
            token_generator_url=token_generator_url,
            interactive=interactive,
            allow_insecure_http=config.allow_insecure_http,
            token_cache=token_cache,
        )
        self._connect(url, auth=auth, config=config, transport=transport)  # type: ignore[attr-defined]

    # -- datasets ---------------------------------------------------------------------------------------------
    def datasets(
        self,
        *,
        free_text: str | None = None,
        creators: Sequence[str] | None = None,
        base_uris: Sequence[str] | None = None,
        uuids: Iterable[str | _uuid.UUID] | None = None,
        tags: Sequence[str] | None = None,
        sort: str | Sequence[str] = "+uri",
        page_size: int = MAX_PAGE_SIZE,
        max_items: int | None = None,
    ) -> Paginator[Dataset]:
        """Every dataset visible to you, optionally filtered; pages are fetched concurrently.

        ``free_text`` is a full-text search; ``tags`` must all match; the other filters match any of their values.
        """
        body = _filters(free_text, creators, base_uris, uuids, tags)
        order, size = _sort(sort), _page_size(page_size)

        def fetch(page: int) -> fx.Op[Page[Dataset]]:
            return (yield from self._search_page(body, page, size, order))[1]

        return Paginator(self._driver, fetch, max_items=max_items)

    def search(
        self,
        free_text: str,
        *,
        creators: Sequence[str] | None = None,
        base_uris: Sequence[str] | None = None,
        uuids: Iterable[str | _uuid.UUID] | None = None,
        tags: Sequence[str] | None = None,
        sort: str | Sequence[str] = "+uri",
        page_size: int = MAX_PAGE_SIZE,
        max_items: int | None = None,
    ) -> Paginator[Dataset]:
        """Datasets matching ``free_text`` (whole words, any of them; ``"a phrase"`` must all appear;
        ``-word`` excludes), narrowed by the filters of :meth:`datasets` (``creators`` is the search body's
        ``creator_usernames``)."""
        return self.datasets(
            free_text=free_text,
            creators=creators,
            base_uris=base_uris,
            uuids=uuids,
            tags=tags,
            sort=sort,
            page_size=page_size,
            max_items=max_items,
        )

    def _search_page(
        self, body: Mapping[str, Any], page: int, page_size: int, sort: str
    ) -> fx.Op[tuple[Any, Page[Dataset]]]:
        from scibind_generated.dserver.api.uris import post_uris
        from scibind_generated.dserver.models import SearchDataset

        resp = yield fx.Call(
            post_uris,
            {
                "body": SearchDataset.from_dict(dict(body)),
                "page": page,
                "page_size": page_size,
                "sort": sort,
            },
            idempotent=True,  # a search: safe to repeat
        )
        return resp, _listing(resp)

    @operation
    def datasets_page(
        self,
        page: int = 1,
        *,
        page_size: int = 10,
        sort: str | Sequence[str] = "+uri",
        free_text: str | None = None,
        creators: Sequence[str] | None = None,
        base_uris: Sequence[str] | None = None,
        uuids: Iterable[str | _uuid.UUID] | None = None,
        tags: Sequence[str] | None = None,
    ) -> fx.Op[DatasetPage]:
        """One page of :meth:`datasets`, with the server's pagination metadata."""
        body = _filters(free_text, creators, base_uris, uuids, tags)
        _, listing = yield from self._search_page(body, page, _page_size(page_size), _sort(sort))
        return DatasetPage(list(listing.items), page, listing.total_items, listing.total_pages)

    def lookup(
        self,
        uuid: str | _uuid.UUID,
        *,
        sort: str | Sequence[str] = "+uri",
        page_size: int = MAX_PAGE_SIZE,
        max_items: int | None = None,
    ) -> Paginator[Dataset]:
        """Every copy of the dataset with this UUID, across the base URIs you may search."""
        from scibind_generated.dserver.api.uuids import get_uuids_uuid

        key = str((_uuids([uuid]) or [])[0])
        order, size = _sort(sort), _page_size(page_size)

        def fetch(page: int) -> fx.Op[Page[Dataset]]:
            resp = yield fx.Call(
                get_uuids_uuid, {"uuid": key, "page": page, "page_size": size, "sort": order}
            )
            return _listing(resp)

        return Paginator(self._driver, fetch, max_items=max_items)

    @operation
    def get_dataset(self, uri: str) -> fx.Op[Dataset]:
        """The summary of one dataset (404 if unknown, 403 without search permission)."""
        from scibind_generated.dserver.api.uris import get_uris_uri

        resp = yield fx.Call(get_uris_uri, {"uri": uri})
        return resp.parsed  # type: ignore[no-any-return]

    @operation
    def get_manifest(self, uri: str) -> fx.Op[Manifest]:
        """The dataset's manifest: items (hash, relpath, size, timestamp), hash function, dtoolcore version."""
        from scibind_generated.dserver.api.manifests import get_manifests_uri

        resp = yield fx.Call(get_manifests_uri, {"uri": uri})
        return resp.parsed  # type: ignore[no-any-return]

    @operation
    def get_readme(self, uri: str) -> fx.Op[str]:
        """The dataset's README, as the YAML text stored."""
        from scibind_generated.dserver.api.readmes import get_readmes_uri

        resp = yield fx.Call(get_readmes_uri, {"uri": uri})
        readme = resp.parsed.readme
        return readme if isinstance(readme, str) else ""

    @operation
    def get_readme_parsed(self, uri: str) -> fx.Op[Any]:
        """The dataset's README parsed as YAML (``None`` for an empty README).

        A README that is not valid YAML raises :class:`~scibind.dserver.ReadmeFormatError` (a
        :class:`~scibind.errors.ResponseFormatError`) naming the dataset, with the text in ``.text``.
        """
        from scibind_generated.dserver.api.readmes import get_readmes_uri

        resp = yield fx.Call(get_readmes_uri, {"uri": uri})
        text = resp.parsed.readme if isinstance(resp.parsed.readme, str) else ""
        return (yield fx.Blocking(_parse_yaml, (uri, text)))

    @operation
    def get_annotations(self, uri: str) -> fx.Op[dict[str, Any]]:
        """The dataset's annotations."""
        from scibind_generated.dserver.api.annotations import get_annotations_uri

        resp = yield fx.Call(get_annotations_uri, {"uri": uri})
        annotations = resp.parsed.annotations
        return annotations.to_dict() if hasattr(annotations, "to_dict") else {}

    @operation
    def get_tags(self, uri: str) -> fx.Op[list[str]]:
        """The dataset's tags."""
        from scibind_generated.dserver.api.tags import get_tags_uri

        resp = yield fx.Call(get_tags_uri, {"uri": uri})
        tags = resp.parsed.tags
        return list(tags) if isinstance(tags, list) else []

    @operation
    def register_dataset(self, dataset: Mapping[str, Any]) -> fx.Op[bool]:
        """Register (or update) a dataset; returns True if it was created, False if it was updated.

        ``dataset`` is the body dtool sends: ``uuid, base_uri, uri, name, type, readme, manifest,
        creator_username, frozen_at, annotations, tags`` (+ optional ``created_at, number_of_items,
        size_in_bytes``). Needs register permission on the base URI.
        """
        from scibind_generated.dserver.api.uris import put_uris_uri
        from scibind_generated.dserver.models import RegisterDataset

        body = dict(dataset)
        for key in ("frozen_at", "created_at"):
            if isinstance(body.get(key), int | float):
                body[key] = str(body[key])
        try:
            model = RegisterDataset.from_dict(body)
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(
                f"invalid dataset registration body: {type(exc).__name__}: {exc}"
            ) from None
        resp = yield fx.Call(put_uris_uri, {"uri": str(body["uri"]), "body": model})
        return int(resp.status_code) == 201

    @operation
    def delete_dataset(self, uri: str) -> fx.Op[None]:
        """Remove a dataset from the index (needs register permission on its base URI)."""
        from scibind_generated.dserver.api.uris import delete_uris_uri

        yield fx.Call(delete_uris_uri, {"uri": uri})

    # -- direct Mongo ---------------------------------------------------------------------------------------------
    def query(
        self,
        query: Mapping[str, Any],
        *,
        creators: Sequence[str] | None = None,
        base_uris: Sequence[str] | None = None,
        uuids: Iterable[str | _uuid.UUID] | None = None,
        tags: Sequence[str] | None = None,
        page_size: int = MAX_PAGE_SIZE,
        max_items: int | None = None,
    ) -> Paginator[MongoDataset]:
        """Datasets matching a raw MongoDB filter (AND-ed with your permissions); needs the direct-mongo plugin."""
        from scibind_generated.dserver.api.mongo import post_mongo_query

        body = {"query": dict(query), **_filters(None, creators, base_uris, uuids, tags)}
        size = _page_size(page_size)

        def fetch(page: int) -> fx.Op[Page[MongoDataset]]:
            from scibind_generated.dserver.models import QueryDataset

            resp = yield fx.Call(
                post_mongo_query,
                {"body": QueryDataset.from_dict(body), "page": page, "page_size": size},
                idempotent=True,
            )
            return _listing(resp)

        return Paginator(self._driver, fetch, max_items=max_items)

    def aggregate(
        self,
        pipeline: Sequence[Mapping[str, Any]],
        *,
        page_size: int = MAX_PAGE_SIZE,
        max_items: int | None = None,
    ) -> Paginator[dict[str, Any]]:
        """Results of a MongoDB aggregation pipeline (off on the server unless enabled; 404 then)."""
        from scibind_generated.dserver.api.mongo import post_mongo_aggregate

        body = {"aggregation": [dict(stage) for stage in pipeline]}
        size = _page_size(page_size)

        def fetch(page: int) -> fx.Op[Page[dict[str, Any]]]:
            from scibind_generated.dserver.models import QueryDataset

            resp = yield fx.Call(
                post_mongo_aggregate,
                {"body": QueryDataset.from_dict(body), "page": page, "page_size": size},
                idempotent=True,
            )
            listing = _listing(resp)
            return attrs.evolve(listing, items=[item.to_dict() for item in listing.items])

        return Paginator(self._driver, fetch, max_items=max_items)

    # -- dependency graph ----------------------------------------------------------------------------------------
    @operation
    def graph(
        self, uuid: str | _uuid.UUID, dependency_keys: Sequence[str] | None = None
    ) -> fx.Op[list[GraphDataset]]:
        """The datasets in the same dependency graph as the dataset ``uuid`` (needs the dependency-graph plugin).

        Edges are the UUIDs named under ``dependency_keys`` (default: the server's, normally
        :data:`DEFAULT_DEPENDENCY_KEYS`), followed in both directions; each node's ``derived_from`` lists its
        parents. Datasets you may not search are left out. Sorted by UUID; empty when ``uuid`` is unknown.
        """
        key = str((_uuids([uuid]) or [])[0])
        keys = _dependency_keys(dependency_keys)
        first = yield from self._graph_page(key, keys, 1)
        nodes = list(first.items)
        if first.total_pages and first.total_pages > 1:
            rest = [self._graph_page(key, keys, p) for p in range(2, first.total_pages + 1)]
            for page in (yield fx.Parallel(rest)):
                nodes.extend(page.items)
        return nodes

    def _graph_page(
        self, uuid: str, keys: list[str] | None, page: int
    ) -> fx.Op[Page[GraphDataset]]:
        from scibind_generated.dserver.api.graph import get_graph_uuids_uuid, post_graph_uuids_uuid
        from scibind_generated.dserver.models import DependencyKeys

        kwargs: dict[str, Any] = {"uuid": uuid, "page": page, "page_size": MAX_PAGE_SIZE}
        if keys is None:
            resp = yield fx.Call(get_graph_uuids_uuid, kwargs)
        else:
            kwargs["body"] = DependencyKeys(dependency_keys=keys)
            resp = yield fx.Call(post_graph_uuids_uuid, kwargs, idempotent=True)  # a search
        return x_pagination_page(_graph_nodes(resp), resp.headers)

    # -- you, users, base URIs -------------------------------------------------------------------------------------
    @operation
    def me(self) -> fx.Op[UserWithPermissions]:
        """Who you are: username, admin flag, and the base URIs you may search and register on."""
        from scibind_generated.dserver.api.me import get_me

        return (yield fx.Call(get_me)).parsed  # type: ignore[no-any-return]

    @operation
    def summary(self, username: str | None = None) -> fx.Op[Summary]:
        """Counts and sizes per creator, base URI and tag: yours, or ``username``'s (admin only)."""
        if username is None:
            from scibind_generated.dserver.api.me import get_me_summary

            return (yield fx.Call(get_me_summary)).parsed  # type: ignore[no-any-return]
        from scibind_generated.dserver.api.users import get_users_username_summary

        return (yield fx.Call(get_users_username_summary, {"username": username})).parsed  # type: ignore[no-any-return]

    def users(
        self,
        *,
        sort: str | Sequence[str] = "+username",
        page_size: int = MAX_PAGE_SIZE,
        max_items: int | None = None,
    ) -> Paginator[UserWithPermissions]:
        """Every user (admin only); ``sort`` by ``username`` and/or ``is_admin`` (``-`` for descending)."""
        from scibind_generated.dserver.api.users import get_users

        order = _sort(sort, USER_SORT_FIELDS, "+username")
        size = _page_size(page_size)

        def fetch(page: int) -> fx.Op[Page[UserWithPermissions]]:
            kwargs = {"page": page, "page_size": size, "sort": order}
            return _listing((yield fx.Call(get_users, kwargs)))

        return Paginator(self._driver, fetch, max_items=max_items)

    @operation
    def get_user(self, username: str) -> fx.Op[UserWithPermissions]:
        """One user with their permissions (admin only, or yourself)."""
        from scibind_generated.dserver.api.users import get_users_username

        return (yield fx.Call(get_users_username, {"username": username})).parsed  # type: ignore[no-any-return]

    @operation
    def register_user(self, username: str, *, is_admin: bool = False) -> fx.Op[None]:
        """Create or update a user (admin only)."""
        from scibind_generated.dserver.api.users import put_users_username
        from scibind_generated.dserver.models import User

        yield fx.Call(
            put_users_username,
            {"username": username, "body": User(username=username, is_admin=is_admin)},
        )

    @operation
    def delete_user(self, username: str) -> fx.Op[None]:
        """Delete a user (admin only)."""
        from scibind_generated.dserver.api.users import delete_users_username

        yield fx.Call(delete_users_username, {"username": username})

    def base_uris(
        self,
        *,
        sort: str | Sequence[str] = "+base_uri",
        page_size: int = MAX_PAGE_SIZE,
        max_items: int | None = None,
    ) -> Paginator[BaseURI]:
        """Every registered base URI (admin only); ``sort="-base_uri"`` for descending."""
        from scibind_generated.dserver.api.base_uris import get_base_uris

        order = _sort(sort, BASE_URI_SORT_FIELDS, "+base_uri")
        size = _page_size(page_size)

        def fetch(page: int) -> fx.Op[Page[BaseURI]]:
            kwargs = {"page": page, "page_size": size, "sort": order}
            return _listing((yield fx.Call(get_base_uris, kwargs)))

        return Paginator(self._driver, fetch, max_items=max_items)

    @operation
    def get_base_uri(self, base_uri: str) -> fx.Op[BaseURIWithPermissions]:
        """A base URI with the users who may search and register on it (admin only)."""
        from scibind_generated.dserver.api.base_uris import get_base_uris_base_uri

        return (yield fx.Call(get_base_uris_base_uri, {"base_uri": base_uri})).parsed  # type: ignore[no-any-return]

    @operation
    def register_base_uri(
        self, base_uri: str, *, search_users: Sequence[str] = (), register_users: Sequence[str] = ()
    ) -> fx.Op[None]:
        """Create or update a base URI and its permissions (admin only)."""
        from scibind_generated.dserver.api.base_uris import put_base_uris_base_uri
        from scibind_generated.dserver.models import BaseURIWithPermissions

        body = BaseURIWithPermissions(
            base_uri=base_uri,
            users_with_search_permissions=list(search_users),
            users_with_register_permissions=list(register_users),
        )
        yield fx.Call(put_base_uris_base_uri, {"base_uri": base_uri, "body": body})

    @operation
    def delete_base_uri(self, base_uri: str) -> fx.Op[None]:
        """Delete a base URI (admin only)."""
        from scibind_generated.dserver.api.base_uris import delete_base_uris_base_uri

        yield fx.Call(delete_base_uris_base_uri, {"base_uri": base_uri})

    # -- server -------------------------------------------------------------------------------------------------
    @operation
    def config_info(self) -> fx.Op[dict[str, Any]]:
        """The server's configuration (secrets shown as ``***``)."""
        from scibind_generated.dserver.api.config import get_config_info

        parsed = (yield fx.Call(get_config_info)).parsed
        config = parsed.config
        return config.to_dict() if hasattr(config, "to_dict") else {}

    @operation
    def versions(self) -> fx.Op[dict[str, str]]:
        """Versions of dservercore and its plugins (no authentication needed)."""
        from scibind_generated.dserver.api.config import get_config_versions

        parsed = (yield fx.Call(get_config_versions)).parsed
        versions = parsed.versions
        return {
            str(k): str(v)
            for k, v in (versions.to_dict() if hasattr(versions, "to_dict") else {}).items()
        }


def _graph_nodes(resp: Any) -> list[GraphDataset]:
    """The datasets of a graph page: the plugin's no-match placeholder (``uuid`` null) dropped."""
    from scibind_generated.dserver.models import GraphDataset

    nodes = []
    for item in resp.parsed:
        if isinstance(item, GraphDataset):
            nodes.append(item)
        elif item.uuid is not None:  # a dataset record that did not parse as GraphDataset
            raise ResponseFormatError(
                f"dependency graph record {item.uuid} does not match the API schema "
                f"(keys: {sorted(item.to_dict())})",
                status=int(resp.status_code),
            )
    return nodes


def _parse_yaml(uri: str, text: str) -> Any:
    import yaml

    if not text.strip():
        return None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        problem = " ".join(str(exc).split())[:300]
        raise ReadmeFormatError(uri, text, problem) from None


class DServer(_DServerOps, SyncFacade):
    """Blocking dserver client.

    >>> with DServer("https://dserver.example.org", token="...") as ds:   # doctest: +SKIP
    ...     for dataset in ds.search("microscopy", tags=["raw"]):
    ...         print(dataset.uri, ds.get_readme_parsed(dataset.uri))
    """


class AsyncDServer(_DServerOps, AsyncFacade):
    """asyncio dserver client (the same calls as :class:`DServer`, awaited; listings with ``async for``)."""
