"""Instances, credentials, error messages and server calls, sync and async."""

from __future__ import annotations

import httpx
import pytest
from scibind import errors
from scibind.dandi import AsyncDandiClient, DandiClient
from scibind.dandi._errors import dandi_error_message
from scibind.dandi._instances import api_key_env_var, resolve_instance
from scibind.dandi._schemas import metadata_schema
from scibind.testing.dandi import FakeDandiArchive

from .conftest import Client, api, call, close, make_client


# -- instances --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("given", "name", "url"),
    [
        ("dandi", "dandi", "https://api.dandiarchive.org/api"),
        ("dandi-sandbox", "dandi-sandbox", "https://api.sandbox.dandiarchive.org/api"),
        ("https://api.dandiarchive.org/api/", "dandi", "https://api.dandiarchive.org/api"),
        (
            "https://sandbox.dandiarchive.org",
            "dandi-sandbox",
            "https://api.sandbox.dandiarchive.org/api",
        ),
        ("http://127.0.0.1:8000/api", "127.0.0.1:8000", "http://127.0.0.1:8000/api"),
        ("https://dandi.example.org/api", "dandi.example.org", "https://dandi.example.org/api"),
    ],
)
def test_instances(given: str, name: str, url: str) -> None:
    instance = resolve_instance(given)
    assert (instance.name, instance.api_url) == (name, url)


def test_instance_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_instance().name == "dandi"
    monkeypatch.setenv("DANDI_INSTANCE", "dandi-sandbox")
    assert resolve_instance().api_url == "https://api.sandbox.dandiarchive.org/api"
    with DandiClient() as client:
        assert client.api_url == "https://api.sandbox.dandiarchive.org/api"
        assert not client.authenticated


@pytest.mark.parametrize("bad", ["nope", "ftp://x.org/api", "https://"])
def test_bad_instances(bad: str) -> None:
    with pytest.raises(errors.ConfigurationError):
        resolve_instance(bad)


def test_api_key_env_var_names() -> None:
    assert api_key_env_var(resolve_instance("dandi")) == "DANDI_API_KEY"
    assert api_key_env_var(resolve_instance("dandi-sandbox")) == "DANDI_SANDBOX_API_KEY"


# -- credentials --------------------------------------------------------------------------------------------
def auth_headers(fake: FakeDandiArchive) -> list[str | None]:
    return [r.headers.get("Authorization") for r in api(fake, "/users/me/")]


async def test_key_from_argument_sent_as_token(kind: str, fake: FakeDandiArchive) -> None:
    client = make_client(kind, fake)
    try:
        me = await call(client.me())
        assert me.username == "testuser"
        assert auth_headers(fake) == [f"token {fake.api_key}"]
        assert fake.api_key not in repr(client)
    finally:
        await close(client)


async def test_key_lookup_order(
    kind: str, fake: FakeDandiArchive, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = fake.add_user("other", email="other@example.edu")
    host_var = api_key_env_var(resolve_instance(fake.base_url))
    monkeypatch.setenv("DANDI_API_KEY", other.api_key)
    client = make_client(kind, fake, api_key=None)
    assert (await call(client.me())).username == "other"
    await close(client)
    monkeypatch.setenv(host_var, fake.api_key)  # the per-instance variable wins
    client = make_client(kind, fake, api_key=None)
    assert (await call(client.me())).username == "testuser"
    await close(client)
    client = make_client(kind, fake, api_key=other.api_key)  # the argument wins over both
    assert (await call(client.me())).username == "other"
    await close(client)


async def test_anonymous_reads_public_data(
    kind: str, fake: FakeDandiArchive, dandiset: str
) -> None:
    client = make_client(kind, fake, api_key=None)
    try:
        assert not client.authenticated
        assert (await call(client.get_dandiset(dandiset))).identifier == dandiset
        assert all(r.headers.get("Authorization") is None for r in fake.requests)
        with pytest.raises(errors.AuthenticationError, match="credentials were not provided"):
            await call(client.me())
    finally:
        await close(client)


async def test_bad_key_is_401(kind: str, fake: FakeDandiArchive) -> None:
    client = make_client(kind, fake, api_key="0" * 40)
    try:
        with pytest.raises(errors.AuthenticationError) as info:
            await call(client.get_dandiset("000001"))
        assert info.value.status == 401
        assert info.value.message == "Invalid token."
        assert "0" * 40 not in str(info.value)
    finally:
        await close(client)


async def test_key_refused_over_plain_http_off_loopback(kind: str) -> None:
    cls = DandiClient if kind == "sync" else AsyncDandiClient
    client = cls("http://dandi.example.org/api", api_key="k" * 40)
    try:
        with pytest.raises(errors.InsecureTransportError):
            await call(client.me())
    finally:
        await close(client)


# -- error bodies -------------------------------------------------------------------------------------------
async def test_not_found(dc: Client) -> None:
    with pytest.raises(errors.NotFoundError) as info:
        await call(dc.get_dandiset("999999"))
    assert info.value.message == "Not found."
    assert "/dandisets/999999/" in str(info.value)


async def test_forbidden_for_non_owner(kind: str, fake: FakeDandiArchive, dandiset: str) -> None:
    stranger = fake.add_user("stranger", email="s@example.edu")
    client = make_client(kind, fake, api_key=stranger.api_key)
    try:
        with pytest.raises(errors.PermissionDeniedError, match="permission"):
            await call(client.set_raw_metadata(dandiset, {"name": "Mine now"}))
    finally:
        await close(client)


async def test_field_errors_message(dc: Client) -> None:
    with pytest.raises(errors.BadRequestError) as info:
        await call(dc.create_dandiset("x" * 301))
    assert info.value.message == "name: Ensure this field has no more than 300 characters."


async def test_list_of_messages(dc: Client, dandiset: str) -> None:
    with pytest.raises(errors.BadRequestError) as info:
        await call(dc.set_owners(dandiset, []))
    assert info.value.message == "Cannot remove all draft owners"


async def test_bare_string_message(dc: Client, dandiset: str) -> None:
    with pytest.raises(errors.ConflictError) as info:
        await call(dc.start_publish(dandiset))  # validation still pending
    assert info.value.message.startswith("Metadata validation is pending")


@pytest.mark.parametrize(
    ("response", "message", "code"),
    [
        (httpx.Response(404, json={"detail": "Not found."}), "Not found.", None),
        (httpx.Response(400, json={"a": ["x"], "b": {"c": ["y"]}}), "a: x; b: c: y", None),
        (httpx.Response(400, json=["one", "two"]), "one; two", None),
        (httpx.Response(409, json="Blob already exists."), "Blob already exists.", None),
        (
            httpx.Response(
                403,
                content=b"<?xml version='1.0'?><Error><Code>AccessDenied</Code>"
                b"<Message>Request has expired</Message></Error>",
                headers={"Content-Type": "application/xml"},
            ),
            "AccessDenied: Request has expired",
            "AccessDenied",
        ),
        (
            httpx.Response(
                404, text="<!doctype html><h1>Not Found</h1>", headers={"Content-Type": "text/html"}
            ),
            "Not Found",
            None,
        ),
        (httpx.Response(502, text="bad gateway"), "bad gateway", None),
    ],
)
def test_error_message_shapes(response: httpx.Response, message: str, code: str | None) -> None:
    assert dandi_error_message(response) == (message, code)


async def test_django_html_404_is_typed(dc: Client) -> None:
    with pytest.raises(errors.NotFoundError) as info:
        await call(dc.get_asset("not-a-uuid"))
    assert info.value.message == "Not Found"


# -- server and users ------------------------------------------------------------------------------------------
async def test_server_calls(dc: Client, fake: FakeDandiArchive, dandiset: str) -> None:
    info = await call(dc.info())
    assert info.schema_version == fake.schema_version
    stats = await call(dc.stats())
    assert stats.dandiset_count == 1
    schema = await call(dc.get_schema("Asset"))
    assert schema == metadata_schema("Asset")  # what codegen exported from the pinned dandischema
    assert {"path", "digest", "contentSize"} <= set(schema["required"])
    fake.add_user("alice", name="Alice Smith", email="alice@example.edu")
    found = await call(dc.search_users("alice"))
    assert [u.username for u in found] == ["alice"]


def test_clients_are_context_managers_and_repr(fake: FakeDandiArchive) -> None:
    with make_client("sync", fake) as client:
        assert isinstance(client, DandiClient)
        assert repr(client) == f"DandiClient('{fake.base_url}')"
    assert AsyncDandiClient.__doc__


def test_with_the_pytest_fixture(fake_dandi: FakeDandiArchive) -> None:
    ident = fake_dandi.create_dandiset("Via respx")
    fake_dandi.add_asset(ident, "a.txt", b"abc")
    with DandiClient(fake_dandi.base_url, api_key=fake_dandi.api_key) as client:
        asset = client.get_asset_by_path(ident, "a.txt")
        with client.as_readable(asset) as f:
            assert f.read() == b"abc"
