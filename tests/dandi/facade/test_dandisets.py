"""Dandisets and versions: listing, lazy lookup, lifecycle, metadata, validation and publication."""

from __future__ import annotations

import pytest
from scibind import errors
from scibind.dandi import Dandiset, DandisetValidationError
from scibind.testing.dandi import FakeDandiArchive

from .conftest import Client, api, call, close, collect, make_client


async def test_listing_filters_and_pages(kind: str, fake: FakeDandiArchive) -> None:
    ids = [fake.create_dandiset(f"Set {i}") for i in range(7)]
    fake.add_asset(ids[0], "a.txt", b"a")
    fake.add_asset(ids[1], "b.txt", b"bb")
    published = ids[1]
    fake.publish(published)
    other = fake.add_user("other", email="o@example.edu")
    theirs = fake.create_dandiset("Theirs", owner=other)
    hidden = fake.create_dandiset("Hidden", embargoed=True)
    client = make_client(kind, fake)
    try:
        everything = await call(client.dandisets(page_size=2))
        got = await collect(everything)
        assert [d.identifier for d in got] == [*ids, theirs]  # embargoed ones need embargoed=True
        assert everything.total == 8
        assert len(api(fake, "/dandisets/", "GET")) == 4  # 8 items, 2 per page
        assert all(isinstance(d, Dandiset) and d.loaded for d in got)
        by_id = {d.identifier: d for d in got}
        assert by_id[published].version_id != "draft"
        assert by_id[published].most_recent_published_version is not None
        assert by_id[ids[0]].version_id == "draft"

        async def ids_of(**filters: object) -> list[str]:
            return [d.identifier for d in await collect(client.dandisets(**filters))]

        assert await ids_of(draft=False) == [published]
        assert await ids_of(empty=False) == [ids[0], published]
        assert hidden in await ids_of(embargoed=True)
        assert theirs not in await ids_of(mine=True)
        await call(client.star(ids[2]))
        assert await ids_of(starred=True) == [ids[2]]
        assert await ids_of(search="theirs") == [theirs]
        assert (await ids_of(order="-id"))[0] == theirs
        assert len(await collect(client.dandisets(max_items=3))) == 3
    finally:
        await close(client)


async def test_listing_bad_arguments(dc: Client) -> None:
    with pytest.raises(errors.ConfigurationError):
        dc.dandisets(order="popularity")
    with pytest.raises(errors.ConfigurationError):
        dc.dandisets(page_size=5000)
    with pytest.raises(errors.BadRequestError, match="Unknown search operator"):
        await collect(dc.dandisets(search="colour:blue"))


async def test_lazy_dandiset_makes_no_request(
    dc: Client, fake: FakeDandiArchive, dandiset: str
) -> None:
    before = len(fake.requests)
    lazy = await call(dc.get_dandiset(int(dandiset), lazy=True))
    assert len(fake.requests) == before
    assert lazy == Dandiset(dandiset, None) and not lazy.loaded
    with pytest.raises(errors.ConfigurationError, match="refresh"):
        _ = lazy.draft_version
    loaded = await call(dc.refresh(lazy))
    assert loaded.loaded and loaded.version_id == "draft"
    assert loaded.draft_version is not None and loaded.draft_version.name == "Test Dandiset"
    metadata = await call(dc.get_raw_metadata(lazy))  # resolves the version by itself
    assert metadata["name"] == "Test Dandiset"


async def test_get_dandiset_versions(dc: Client, fake: FakeDandiArchive, dandiset: str) -> None:
    fake.add_asset(dandiset, "x.bin", b"123")
    version = fake.publish(dandiset)
    ds = await call(dc.get_dandiset(f"DANDI:{dandiset}"))
    assert ds.version_id == version
    assert ds.version is not None and ds.version.version == version
    draft = await call(dc.get_dandiset(dandiset, "draft"))
    assert draft.version_id == "draft" and str(draft) == f"DANDI:{dandiset}/draft"
    assert ds.for_version("draft").version_id == "draft"
    assert (await call(dc.get_dandiset(ds.for_version("draft")))).version_id == "draft"
    with pytest.raises(errors.NotFoundError):
        await call(dc.get_dandiset(dandiset, "0.200101.0000"))
    with pytest.raises(errors.ConfigurationError):
        await call(dc.get_dandiset(dandiset, "latest"))
    with pytest.raises(errors.ConfigurationError):
        await call(dc.get_dandiset("12345678"))
    versions = await collect(dc.versions(ds, order="-created"))
    assert [v.version for v in versions] == [version, "draft"]
    assert [v.version for v in await collect(dc.versions(ds))] == ["draft", version]
    newest = await call(dc.most_recent_published_version(dandiset))
    assert newest is not None and newest.version == version
    info = await call(dc.get_version(dandiset, version))
    assert info.status == "Valid" and info.asset_count == 1
    assert (await call(dc.get_version(ds))).version == version


async def test_create_star_owners_delete(dc: Client, fake: FakeDandiArchive) -> None:
    ds = await call(dc.create_dandiset("Brand new", {"description": "d"}))
    assert ds.version_id == "draft" and ds.loaded
    assert ds.contact_person == "Test User"
    assert ds.embargo_status == "OPEN"
    assert await call(dc.star(ds)) == 1
    assert await call(dc.unstar(ds)) == 0
    fake.add_user("bob", email="bob@example.edu")
    owners = await call(dc.set_owners(ds, ["testuser", "bob"]))
    assert [o.username for o in owners] == ["testuser", "bob"]
    assert [o.username for o in await call(dc.get_owners(ds))] == ["testuser", "bob"]
    await call(dc.delete_dandiset(ds))
    with pytest.raises(errors.NotFoundError):
        await call(dc.refresh(ds))


async def test_embargo(dc: Client) -> None:
    ds = await call(dc.create_dandiset("Secret", embargo=True))
    assert ds.embargo_status == "EMBARGOED"
    await call(dc.unembargo(ds))
    assert (await call(dc.refresh(ds))).embargo_status == "OPEN"


async def test_metadata_raw_and_typed(dc: Client, dandiset: str) -> None:
    raw = await call(dc.get_raw_metadata(dandiset, "draft"))
    typed = await call(dc.get_metadata(dandiset, "draft"))
    assert typed == raw and typed["identifier"] == f"DANDI:{dandiset}"
    raw["description"] = "changed"
    detail = await call(dc.set_raw_metadata(dandiset, raw))
    assert detail.status == "Pending"
    assert (await call(dc.get_raw_metadata(dandiset, "draft")))["description"] == "changed"
    typed["description"] = "typed change"
    await call(dc.set_metadata(dandiset, typed, name="Renamed"))
    again = await call(dc.get_metadata(dandiset, "draft"))
    assert again["description"] == "typed change" and again["name"] == "Renamed"
    with pytest.raises(errors.ConfigurationError):
        await call(dc.set_raw_metadata(dandiset, {"description": "no name"}))


async def test_publish_waits_and_returns_the_new_version(kind: str, dandiset: str) -> None:
    fake = FakeDandiArchive(validation_polls=2, publish_polls=2)
    ident = fake.create_dandiset("To publish")
    fake.add_asset(ident, "data.bin", b"payload")
    client = make_client(kind, fake)
    try:
        published = await call(client.publish(ident, poll_interval=0))
        assert published.version_id != "draft" and published.loaded
        assert published.most_recent_published_version is not None
        assert fake.version_status(ident) == "Published"
        assert len(api(fake, "/publish/", "POST")) == 1
        with pytest.raises(errors.BadRequestError, match="no changes"):
            await call(client.start_publish(ident))
    finally:
        await close(client)


async def test_invalid_draft_is_reported(kind: str) -> None:
    fake = FakeDandiArchive(validation_polls=1)
    ident = fake.create_dandiset("Broken")
    fake.add_asset(ident, "bad.bin", b"x")
    fake.set_validation_errors(
        ident,
        [{"field": "license", "message": "required"}],
        {"bad.bin": [{"field": "contentSize", "message": "wrong"}]},
    )
    client = make_client(kind, fake)
    try:
        with pytest.raises(DandisetValidationError) as info:
            await call(client.publish(ident, poll_interval=0))
        assert info.value.version_errors == [{"field": "license", "message": "required"}]
        assert info.value.asset_errors[0]["path"] == "bad.bin"
        assert "license: required" in str(info.value)
        assert not api(fake, "/publish/", "POST")
    finally:
        await close(client)


async def test_waits_time_out(kind: str) -> None:
    fake = FakeDandiArchive(validation_polls=10_000)
    ident = fake.create_dandiset("Slow")
    client = make_client(kind, fake)
    try:
        with pytest.raises(errors.TimeoutError, match="validation of"):
            await call(client.wait_until_valid(ident, timeout=0.05, poll_interval=0.01))
    finally:
        await close(client)


async def test_wait_until_valid_polls_with_sleeps(kind: str) -> None:
    fake = FakeDandiArchive(validation_polls=3)
    ident = fake.create_dandiset("Soon valid")
    client = make_client(kind, fake)
    try:
        info = await call(client.wait_until_valid(ident, poll_interval=0.001))
        assert info.status == "Valid"
        assert len(api(fake, "/versions/draft/info/", "GET")) == 4
    finally:
        await close(client)


async def test_delete_version_needs_admin(
    dc: Client, fake: FakeDandiArchive, dandiset: str
) -> None:
    version = fake.publish(dandiset)
    with pytest.raises(errors.PermissionDeniedError, match="Cannot delete published versions"):
        await call(dc.delete_version(dandiset, version))
