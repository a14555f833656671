"""Every DServer / AsyncDServer call against the real dserver (started by the ``dserver_server`` fixture)."""

from __future__ import annotations

import inspect
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from scibind import errors
from scibind.config import ClientConfig, RetryPolicy
from scibind.dserver import AsyncDServer, DServer, ReadmeFormatError

pytestmark = pytest.mark.integration

NO_RETRY = ClientConfig(retry=RetryPolicy(max_attempts=1))


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """No credentials leak in from the developer's environment or dtool config."""
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in (
        "DSERVER_URL",
        "DSERVER_TOKEN",
        "DSERVER_TOKEN_GENERATOR_URL",
        "DSERVER_USERNAME",
        "DSERVER_PASSWORD",
        "DTOOL_CONFIG_PATH",
    ):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="module")
def corpus(dserver_server: Any) -> dict[str, Any]:
    """Twelve datasets with a tag unique to this module, two creators, and one known README."""
    tag = f"scibind-{uuid.uuid4().hex[:8]}"
    bodies = dserver_server.seed_datasets(
        10, seed=7, tags=[tag, "common"], creator_username="alice"
    )
    bodies += dserver_server.seed_datasets(2, seed=8, tags=[tag], creator_username="bob")
    special = bodies[0]
    return {"tag": tag, "bodies": bodies, "special": special}


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def ds(kind: str, dserver_server: Any) -> AsyncIterator[Any]:
    cls = DServer if kind == "sync" else AsyncDServer
    client = cls(dserver_server.url, token=dserver_server.token(), config=NO_RETRY)
    yield client
    if kind == "sync":
        client.close()
    else:
        await client.aclose()


async def call(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def collect(paginator: Any, kind: str) -> list[Any]:
    if kind == "sync":
        return list(paginator)
    return [x async for x in paginator]


async def test_versions_and_config(ds: Any) -> None:
    versions = await call(ds.versions())
    assert "dservercore" in versions
    info = await call(ds.config_info())
    assert info  # secrets are masked by the server
    assert "JWT_PRIVATE_KEY" not in json.dumps(info) or "***" in json.dumps(info)


async def test_me_and_summary(ds: Any, dserver_server: Any, corpus: dict[str, Any]) -> None:
    me = await call(ds.me())
    assert me.username == dserver_server.admin_username and me.is_admin
    assert dserver_server.base_uri in me.search_permissions_on_base_uris
    summary = await call(ds.summary())
    assert summary.number_of_datasets >= 12
    assert "alice" in summary.creator_usernames
    other = await call(ds.summary(dserver_server.admin_username))
    assert other.number_of_datasets == summary.number_of_datasets


async def test_listing_all_tagged_concurrently(ds: Any, kind: str, corpus: dict[str, Any]) -> None:
    tag = corpus["tag"]
    pages = ds.datasets(tags=[tag], page_size=5, sort="-name")
    items = await collect(pages, kind)
    assert pages.total == 12
    assert len(items) == 12
    names = [d.name for d in items]
    assert names == sorted(names, reverse=True)
    assert {d.uri for d in items} == {b["uri"] for b in corpus["bodies"]}


async def test_filters(ds: Any, kind: str, corpus: dict[str, Any], dserver_server: Any) -> None:
    tag = corpus["tag"]
    bob = await collect(ds.datasets(tags=[tag], creators=["bob"]), kind)
    assert len(bob) == 2 and {d.creator_username for d in bob} == {"bob"}
    special = corpus["special"]
    by_uuid = await collect(ds.datasets(uuids=[special["uuid"]]), kind)
    assert [d.uri for d in by_uuid] == [special["uri"]]
    by_base = await collect(
        ds.datasets(tags=[tag], base_uris=[dserver_server.base_uri], max_items=3), kind
    )
    assert len(by_base) == 3
    word = special["name"]
    found = await collect(ds.search(word, tags=[tag]), kind)
    assert special["uri"] in {d.uri for d in found}


async def test_one_page_with_metadata(ds: Any, corpus: dict[str, Any]) -> None:
    page = await call(ds.datasets_page(2, page_size=5, tags=[corpus["tag"]]))
    assert page.page == 2 and page.total == 12 and page.total_pages == 3 and len(page.items) == 5


async def test_bad_input_is_caught_before_sending(ds: Any) -> None:
    with pytest.raises(errors.ConfigurationError, match="sort"):
        ds.datasets(sort="size")
    with pytest.raises(errors.ConfigurationError, match="UUID"):
        ds.datasets(uuids=["not-a-uuid"])
    with pytest.raises(errors.ConfigurationError, match="page_size"):
        ds.datasets(page_size=1000)


async def test_lookup_by_uuid(ds: Any, kind: str, corpus: dict[str, Any]) -> None:
    special = corpus["special"]
    copies = await collect(ds.lookup(special["uuid"]), kind)
    assert [c.uri for c in copies] == [special["uri"]]


async def test_dataset_content(ds: Any, corpus: dict[str, Any]) -> None:
    body = corpus["special"]
    uri = body["uri"]
    dataset = await call(ds.get_dataset(uri))
    assert dataset.uuid == body["uuid"] and dataset.name == body["name"]
    manifest = await call(ds.get_manifest(uri))
    assert set(manifest.items.to_dict()) == set(body["manifest"]["items"])
    assert await call(ds.get_readme(uri)) == body["readme"]
    parsed = await call(ds.get_readme_parsed(uri))
    import yaml

    assert parsed == yaml.safe_load(body["readme"])
    assert await call(ds.get_annotations(uri)) == body["annotations"]
    assert sorted(await call(ds.get_tags(uri))) == sorted(body["tags"])


async def test_readme_that_is_not_yaml(ds: Any, dserver_server: Any) -> None:
    text = "description: [unclosed\nproject: x: y\n"
    body = dserver_server.register_dataset(readme=text)
    with pytest.raises(ReadmeFormatError) as info:
        await call(ds.get_readme_parsed(body["uri"]))
    assert isinstance(info.value, errors.ResponseFormatError)
    assert body["uri"] in str(info.value) and info.value.uri == body["uri"]
    assert info.value.text == text
    assert await call(ds.get_readme(body["uri"])) == text  # the raw text is still there
    empty = dserver_server.register_dataset(readme="")
    assert await call(ds.get_readme_parsed(empty["uri"])) is None


async def test_unknown_dataset_is_not_found(ds: Any, dserver_server: Any) -> None:
    with pytest.raises(errors.NotFoundError) as info:
        await call(ds.get_dataset(f"{dserver_server.base_uri}/{uuid.uuid4()}"))
    assert info.value.status == 404


async def test_register_update_delete(ds: Any, dserver_server: Any) -> None:
    body = dserver_server.dataset_body(tags=["scibind-crud"])
    assert await call(ds.register_dataset(body)) is True
    body["name"] = body["name"] + "-renamed"
    assert await call(ds.register_dataset(body)) is False
    assert (await call(ds.get_dataset(body["uri"]))).name.endswith("-renamed")
    await call(ds.delete_dataset(body["uri"]))
    with pytest.raises(errors.NotFoundError):
        await call(ds.get_dataset(body["uri"]))


async def test_register_rejects_bad_bodies(ds: Any, dserver_server: Any) -> None:
    with pytest.raises(errors.ConfigurationError):
        await call(ds.register_dataset({"uri": "smb://test-share/x"}))
    body = dserver_server.dataset_body(base_uri="smb://not-registered")
    with pytest.raises(errors.APIError) as info:
        await call(ds.register_dataset(body))
    assert info.value.status in (400, 403, 404)


async def test_direct_mongo_query_and_aggregation(
    ds: Any, kind: str, corpus: dict[str, Any]
) -> None:
    tag = corpus["tag"]
    hits = await collect(ds.query({"creator_username": "bob"}, tags=[tag]), kind)
    assert len(hits) == 2 and all(tag in h.tags for h in hits)
    # the server always drops ``_id`` from aggregation results, so name the group key explicitly
    pipeline = [
        {"$match": {"tags": tag}},
        {"$group": {"_id": "$creator_username", "n": {"$sum": 1}}},
        {"$project": {"creator": "$_id", "n": 1}},
    ]
    groups = await collect(ds.aggregate(pipeline), kind)
    assert {g["creator"]: g["n"] for g in groups} == {"alice": 10, "bob": 2}


async def test_users_and_base_uris(ds: Any, kind: str, dserver_server: Any) -> None:
    name = f"u{uuid.uuid4().hex[:8]}"
    await call(ds.register_user(name))
    user = await call(ds.get_user(name))
    assert user.username == name and user.is_admin is False
    assert name in {u.username for u in await collect(ds.users(), kind)}
    base = f"s3://scibind-{name}"
    await call(ds.register_base_uri(base, search_users=[name], register_users=[]))
    info = await call(ds.get_base_uri(base))
    assert info.users_with_search_permissions == [name]
    assert base in {b.base_uri for b in await collect(ds.base_uris(), kind)}
    await call(ds.delete_base_uri(base))
    await call(ds.delete_user(name))
    with pytest.raises(errors.NotFoundError):
        await call(ds.get_user(name))


async def test_users_and_base_uris_sorted_and_limited(
    ds: Any, kind: str, dserver_server: Any
) -> None:
    names = [f"zz-sort-{kind}-{i}" for i in range(3)]
    bases = [f"s3://zz-sort-{kind}-{i}" for i in range(3)]
    for name, base in zip(names, bases, strict=True):
        await call(ds.register_user(name))
        await call(ds.register_base_uri(base))
    users = [u.username for u in await collect(ds.users(sort="-username", page_size=2), kind)]
    assert users == sorted(users, reverse=True) and set(names) <= set(users)
    first = [u.username for u in await collect(ds.users(sort="-username", max_items=2), kind)]
    assert first == users[:2]
    admins_first = await collect(ds.users(sort=["-is_admin", "username"]), kind)
    assert admins_first[0].is_admin and not admins_first[-1].is_admin
    all_bases = [b.base_uri for b in await collect(ds.base_uris(sort="-base_uri"), kind)]
    assert all_bases == sorted(all_bases, reverse=True) and set(bases) <= set(all_bases)
    assert len(await collect(ds.base_uris(max_items=1), kind)) == 1
    with pytest.raises(errors.ConfigurationError, match="sort"):
        ds.users(sort="name")
    with pytest.raises(errors.ConfigurationError, match="sort"):
        ds.base_uris(sort="-uri")
    for name, base in zip(names, bases, strict=True):
        await call(ds.delete_base_uri(base))
        await call(ds.delete_user(name))


async def test_max_items_on_every_listing(ds: Any, kind: str, corpus: dict[str, Any]) -> None:
    tag = corpus["tag"]
    assert len(await collect(ds.search("", tags=[tag], max_items=4), kind)) == 4
    assert len(await collect(ds.datasets(tags=[tag], page_size=3, max_items=4), kind)) == 4
    special = corpus["special"]
    assert len(await collect(ds.lookup(special["uuid"], max_items=0), kind)) == 0
    assert len(await collect(ds.query({}, tags=[tag], page_size=5, max_items=7), kind)) == 7
    pipeline = [{"$match": {"tags": tag}}, {"$project": {"name": 1}}]
    assert len(await collect(ds.aggregate(pipeline, page_size=5, max_items=6), kind)) == 6


def test_search_filters_are_typed_keywords() -> None:
    params = inspect.signature(DServer.search).parameters
    assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    assert {"creators", "base_uris", "uuids", "tags", "sort", "page_size", "max_items"} <= set(
        params
    )
    with pytest.raises(TypeError):
        DServer.search(None, "x", creator="alice")  # type: ignore[arg-type,call-arg]


async def test_non_admin_is_refused_admin_calls(kind: str, dserver_server: Any) -> None:
    cls = DServer if kind == "sync" else AsyncDServer
    client = cls(
        dserver_server.url,
        token=dserver_server.token(dserver_server.user_username),
        config=NO_RETRY,
    )
    with pytest.raises(errors.PermissionDeniedError):
        await call(client.get_user(dserver_server.admin_username))
    assert (await call(client.me())).is_admin is False
    await call(client.aclose() if kind == "async" else client.close())


async def test_expired_static_token_is_an_auth_error(kind: str, dserver_server: Any) -> None:
    cls = DServer if kind == "sync" else AsyncDServer
    client = cls(dserver_server.url, token=dserver_server.token(expires_in=-60), config=NO_RETRY)
    with pytest.raises(errors.AuthenticationError) as info:
        await call(client.me())
    assert "expired" in str(info.value).lower()
    assert dserver_server.token(expires_in=-60)[:20] not in str(info.value)
    await call(client.aclose() if kind == "async" else client.close())


async def test_token_minted_from_generator_and_refreshed(
    kind: str, dserver_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DSERVER_TOKEN_GENERATOR_URL", dserver_server.token_generator_url)
    monkeypatch.setenv("DSERVER_USERNAME", dserver_server.admin_username)
    monkeypatch.setenv("DSERVER_PASSWORD", dserver_server.admin_password)
    cls = DServer if kind == "sync" else AsyncDServer
    # start with an expired static token: the client mints a fresh one before sending
    client = cls(dserver_server.url, token=dserver_server.token(expires_in=-60), config=NO_RETRY)
    auth = client.http.auth.inner
    assert (await call(client.me())).username == dserver_server.admin_username
    assert auth.mint_count == 1
    await call(client.me())
    assert auth.mint_count == 1  # cached
    await call(client.aclose() if kind == "async" else client.close())


def test_wrong_password_is_a_credentials_error(dserver_server: Any) -> None:
    with (
        DServer(
            dserver_server.url,
            username=dserver_server.admin_username,
            password="wrong",
            token_generator_url=dserver_server.token_generator_url,
            config=NO_RETRY,
        ) as client,
        pytest.raises(errors.CredentialsError, match="refused"),
    ):
        client.me()


def test_no_credentials_and_no_terminal(dserver_server: Any) -> None:
    with pytest.raises(errors.CredentialsError, match="DSERVER_TOKEN"):
        DServer(dserver_server.url, interactive=False)


def test_url_and_token_from_dtool_config(dserver_server: Any, tmp_path: Any) -> None:
    config = tmp_path / ".config" / "dtool" / "dtool.json"
    config.parent.mkdir(parents=True)
    config.write_text(
        json.dumps({"DSERVER_URL": dserver_server.url, "DSERVER_TOKEN": dserver_server.token()})
    )
    with DServer() as client:
        assert client.me().username == dserver_server.admin_username


def test_raw_generated_client_shares_auth(dserver_server: Any) -> None:
    from scibind_generated.dserver.api.me import get_me

    with DServer(dserver_server.url, token=dserver_server.token()) as client:
        me = get_me.sync(client=client.raw)
    assert me.username == dserver_server.admin_username
