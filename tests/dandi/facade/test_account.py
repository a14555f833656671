"""The caller's API key and sign-in, users, the schema version check, published metadata, generic listings."""

from __future__ import annotations

import getpass
import logging
import sys
from typing import Any

import httpx
import pytest
from scibind import errors
from scibind._core.secrets import Secret
from scibind.dandi import AsyncDandiClient, DandiClient, SchemaVersionError
from scibind.dandi._account import compare_schema_versions
from scibind.dandi._instances import resolve_instance
from scibind.testing.dandi import FakeDandiArchive

from .conftest import Client, Faults, api, call, close, collect, make_client

keyring = pytest.importorskip("keyring")
from .test_keyring import MemoryKeyring  # noqa: E402

FULL_METADATA = {
    "description": "Recordings",
    "license": ["spdx:CC-BY-4.0"],
    "contributor": [
        {
            "schemaKey": "Person",
            "name": "Tester, Test",
            "roleName": ["dcite:ContactPerson"],
            "includeInCitation": True,
        }
    ],
}


# -- the API key -----------------------------------------------------------------------------------------------
async def test_get_api_key(dc: Client, fake: FakeDandiArchive, kind: str) -> None:
    key = await call(dc.get_api_key())
    assert isinstance(key, Secret) and key.reveal() == fake.api_key
    assert fake.api_key not in repr(key)
    anonymous = make_client(kind, fake, api_key=None)
    try:
        with pytest.raises(errors.AuthenticationError):
            await call(anonymous.get_api_key())
    finally:
        await close(anonymous)


@pytest.fixture
def memory(monkeypatch: pytest.MonkeyPatch) -> MemoryKeyring:
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND")
    monkeypatch.setenv("XDG_DATA_HOME", "/nonexistent/scibind-test")
    monkeypatch.setenv("XDG_CONFIG_HOME", "/nonexistent/scibind-test")
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    return backend


def service_for(fake: FakeDandiArchive) -> str:
    return f"dandi-api-{resolve_instance(fake.base_url).name}"


async def test_authenticate_checks_uses_and_stores_the_key(
    kind: str, fake: FakeDandiArchive, memory: MemoryKeyring
) -> None:
    client = make_client(kind, fake, api_key=None)
    try:
        assert not client.authenticated
        user = await call(client.authenticate(fake.api_key))
        assert user.username == "testuser" and client.authenticated
        assert (await call(client.me())).username == "testuser"
        checks = api(fake, "/auth/token/", "GET")
        assert [r.headers["Authorization"] for r in checks] == [f"token {fake.api_key}"]
    finally:
        await close(client)
    assert memory.entries == {(service_for(fake), "key"): fake.api_key}
    again = make_client(kind, fake, api_key=None)  # the next client finds it, as dandi-cli would
    try:
        assert again.authenticated
    finally:
        await close(again)


async def test_authenticate_refuses_a_wrong_key(
    kind: str, fake: FakeDandiArchive, memory: MemoryKeyring
) -> None:
    client = make_client(kind, fake, api_key=None)
    try:
        with pytest.raises(errors.AuthenticationError):
            await call(client.authenticate("not-a-key"))
        assert not client.authenticated and memory.entries == {}
        with pytest.raises(errors.AuthenticationError):
            await call(client.me())
    finally:
        await close(client)


async def test_authenticate_without_a_terminal_does_not_prompt(
    kind: str, fake: FakeDandiArchive, memory: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any) -> str:
        raise AssertionError("prompted")

    monkeypatch.setattr(getpass, "getpass", refuse)
    monkeypatch.setattr(sys, "stdin", _Stdin(tty=False))
    client = make_client(kind, fake, api_key=None)
    try:
        with pytest.raises(errors.CredentialsError, match="run on a terminal"):
            await call(client.authenticate())
        assert fake.requests == []
    finally:
        await close(client)


async def test_authenticate_asks_on_a_terminal(
    kind: str, fake: FakeDandiArchive, memory: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompts: list[str] = []

    def answer(prompt: str = "", stream: Any = None) -> str:
        prompts.append(prompt)
        return fake.api_key

    monkeypatch.setattr(getpass, "getpass", answer)
    monkeypatch.setattr(sys, "stdin", _Stdin(tty=True))
    client = make_client(kind, fake, api_key=None)
    try:
        assert (await call(client.authenticate(save=False))).username == "testuser"
    finally:
        await close(client)
    assert prompts == [f"DANDI API key for {resolve_instance(fake.base_url).name}: "]
    assert memory.entries == {}  # save=False


def test_authenticate_never_sends_a_key_over_plain_http_off_loopback(
    fake: FakeDandiArchive,
) -> None:
    with (
        DandiClient("http://dandi.example.org/api", transport=fake.transport()) as client,
        pytest.raises(errors.InsecureTransportError),
    ):
        client.authenticate("some-key", save=False)
    assert fake.requests == []


class _Stdin:
    def __init__(self, *, tty: bool) -> None:
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


# -- users ------------------------------------------------------------------------------------------------------
async def test_users(dc: Client, fake: FakeDandiArchive, kind: str) -> None:
    assert (await call(dc.get_user())).username == "testuser"
    with pytest.raises(errors.PermissionDeniedError):
        await call(dc.users())
    admin = fake.add_user("root", admin=True)
    fake.add_user("waiting", status="PENDING")
    client = make_client(kind, fake, api_key=admin.api_key)
    try:
        everyone = await call(client.users())
        approved = await call(client.users(approved_only=True))
    finally:
        await close(client)
    assert {u.username for u in everyone} == {"testuser", "root", "waiting"}
    assert {u.username for u in approved} == {"testuser", "root"}
    assert [u.username for u in await call(dc.search_users("root"))] == ["root"]


# -- the schema version ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("server", "accepts", "outcome"),
    [
        ("0.8.0", ["0.8.0"], None),
        ("0.9.0", ["0.8.0", "0.9.0"], None),  # newer server that accepts our version
        ("0.9.0", ["0.9.0"], "raise"),  # newer server that does not
        ("1.0.0", ["1.0.0"], "raise"),
        ("0.8.0", [], None),
        ("0.7.0", [], "warn"),  # older, and metadata can be downgraded to it
        ("0.6.10", [], "warn"),
        ("0.6.4", [], "raise"),  # older, other MINOR, no downgrade path
        ("0.8.0", ["0.8.0"], None),
    ],
)
def test_compare_schema_versions(server: str, accepts: list[str], outcome: str | None) -> None:
    targets = ["0.6.10", "0.7.0", "0.8.0"]
    if outcome == "raise":
        with pytest.raises(SchemaVersionError) as info:
            compare_schema_versions(server, "0.8.0", server_accepts=accepts, can_target=targets)
        assert (info.value.server, info.value.client) == (server, "0.8.0")
        return
    warning = compare_schema_versions(server, "0.8.0", server_accepts=accepts, can_target=targets)
    assert (warning is not None) == (outcome == "warn")


def test_older_compatible_server_within_minor_only_warns() -> None:
    warning = compare_schema_versions("0.8.0", "0.8.3", server_accepts=[], can_target=[])
    assert warning is not None and "cannot be downgraded" in warning


async def test_check_schema_version_against_the_server(
    dc: Client, fake: FakeDandiArchive, caplog: pytest.LogCaptureFixture
) -> None:
    from scibind_generated.dandi_metadata import _source

    assert await call(dc.check_schema_version()) == _source.SCHEMA_VERSION == fake.schema_version
    fake.schema_version = "0.9.0"  # type: ignore[misc]
    with pytest.raises(SchemaVersionError, match="does not accept"):
        await call(dc.check_schema_version())
    fake.allowed_schema_versions = ("0.8.0", "0.9.0")  # type: ignore[misc]
    assert await call(dc.check_schema_version()) == "0.9.0"
    fake.schema_version = "0.7.0"  # type: ignore[misc]
    with caplog.at_level(logging.WARNING, logger="scibind.dandi"):
        assert await call(dc.check_schema_version()) == "0.7.0"
    assert "older than scibind's models" in caplog.text
    fake.schema_version = "0.5.2"  # type: ignore[misc]
    with pytest.raises(SchemaVersionError, match="incompatible"):
        await call(dc.check_schema_version())
    assert await call(dc.check_schema_version("0.5.2")) == "0.5.2"


# -- published metadata -----------------------------------------------------------------------------------------
async def test_get_published_metadata(dc: Client, fake: FakeDandiArchive) -> None:
    ident = fake.create_dandiset("Published", metadata=FULL_METADATA)
    with pytest.raises(errors.NotFoundError, match="no published version"):
        await call(dc.get_published_metadata(ident))
    with pytest.raises(errors.ConfigurationError, match="draft"):
        await call(dc.get_published_metadata(ident, "draft"))
    version = fake.publish(ident)
    meta = await call(dc.get_published_metadata(ident))
    assert meta["version"] == version and meta["doi"] and meta["datePublished"]
    assert (await call(dc.get_published_metadata(ident, version)))["id"] == meta["id"]


async def test_published_metadata_lacking_a_required_key_is_refused(
    kind: str, fake: FakeDandiArchive
) -> None:
    ident = fake.create_dandiset("Published", metadata=FULL_METADATA)
    version = fake.publish(ident)
    faults = Faults(fake)

    def drop_citation(request: httpx.Request, response: httpx.Response) -> httpx.Response | None:
        if request.url.path.endswith(f"/versions/{version}/"):
            body = response.json()
            body.pop("citation")
            return httpx.Response(200, json=body, request=request)
        return None

    faults.after.append(drop_citation)
    client = make_client(kind, fake, transport=faults.transport())
    try:
        with pytest.raises(errors.ResponseFormatError, match="missing citation"):
            await call(client.get_published_metadata(ident, version))
        assert "citation" not in await call(
            client.get_metadata(ident, version)
        )  # untyped: no check
    finally:
        await close(client)


# -- any list endpoint ------------------------------------------------------------------------------------------
async def test_paginate_page_numbers_concurrently(dc: Client, fake: FakeDandiArchive) -> None:
    made = [fake.create_dandiset(f"D{i}") for i in range(7)]
    items = await collect(dc.paginate("/dandisets/", {"ordering": "id"}, page_size=2))
    assert [d["identifier"] for d in items] == made
    assert [d["draft_version"]["name"] for d in items] == [f"D{i}" for i in range(7)]
    pages = sorted(r.url.params.get("page", "1") for r in api(fake, "/dandisets/"))
    assert pages == ["1", "2", "3", "4"]


async def test_paginate_follows_cursors_and_reads_plain_lists(
    dc: Client, fake: FakeDandiArchive, dandiset: str
) -> None:
    files = {f"0/{i}": bytes([i]) * (i + 1) for i in range(5)}
    zarr_id = fake.add_zarr(dandiset, "c.zarr", files)
    entries = await collect(dc.paginate(f"/zarr/{zarr_id}/files/", {"limit": 2}))
    assert [e["Key"] for e in entries] == sorted(files)
    assert [r.url.params.get("after") for r in api(fake, "/files/")] == [None, "0/1", "0/3"]
    fake.add_user("alice", email="alice@example.edu")
    found = await collect(dc.paginate("/users/search/", {"username": "ali"}))
    assert [u["username"] for u in found] == ["alice"]
    first = await collect(dc.paginate("/dandisets/", page_size=1, max_items=1))
    assert [d["identifier"] for d in first] == [dandiset]


async def test_paginate_refuses_links_off_the_api_and_bad_paths(
    kind: str, fake: FakeDandiArchive, dandiset: str
) -> None:
    zarr_id = fake.add_zarr(dandiset, "c.zarr", {"a": b"1", "b": b"2"})
    faults = Faults(fake)

    def elsewhere(request: httpx.Request, response: httpx.Response) -> httpx.Response | None:
        if request.url.path.endswith("/files/") and response.json().get("next"):
            body = {**response.json(), "next": "https://evil.example/api/zarr/x/files/?after=a"}
            return httpx.Response(200, json=body, request=request)
        return None

    faults.after.append(elsewhere)
    client = make_client(kind, fake, transport=faults.transport())
    try:
        with pytest.raises(errors.ResponseFormatError, match="leaves the API"):
            await collect(client.paginate(f"/zarr/{zarr_id}/files/", {"limit": 1}))
        for bad in ("https://evil.example/api/zarr/", "zarr/"):
            with pytest.raises(errors.ConfigurationError):
                client.paginate(bad)
    finally:
        await close(client)
    assert all(r.url.host != "evil.example" for r in fake.requests)


def test_async_client_has_every_new_call() -> None:
    for name in (
        "get_api_key",
        "authenticate",
        "get_user",
        "users",
        "check_schema_version",
        "paginate",
        "get_published_metadata",
        "download_zarr",
    ):
        assert hasattr(AsyncDandiClient, name) and hasattr(DandiClient, name), name
