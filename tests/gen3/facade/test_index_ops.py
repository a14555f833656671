"""indexd through the facade beyond reading: create, update, versions, delete, bulk lookup, lookup by fields,
URL queries, statistics; revisions and permissions as indexd enforces them."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from scibind import errors
from scibind.testing.gen3 import FakeGen3Commons

from .conftest import call, close, collect, make_client

MD5 = hashlib.md5(b"data").hexdigest()


async def new_record(g3: Any, **fields: Any) -> Any:
    fields.setdefault("hashes", {"md5": MD5})
    fields.setdefault("size", 4)
    return await call(g3.create_index_record(**fields))


async def test_create_read_update_delete(g3: Any, fake: FakeGen3Commons) -> None:
    record = await new_record(
        g3,
        urls=["s3://bucket/a.txt"],
        file_name="a.txt",
        authz=["/programs/DEV"],
        metadata={"kind": "text"},
    )
    assert record.did in fake.index.records and record.hashes.md5 == MD5 and record.size == 4
    assert record.file_name == "a.txt" and record.authz == ["/programs/DEV"]
    assert record.metadata.additional_properties == {"kind": "text"}
    updated = await call(
        g3.update_index_record(record.did, file_name="b.txt", urls=["s3://bucket/b.txt"])
    )
    assert updated.file_name == "b.txt" and updated.urls == ["s3://bucket/b.txt"]
    assert updated.rev != record.rev and updated.hashes.md5 == MD5
    (put,) = [
        r for r in fake.requests if r.method == "PUT" and r.url.path.startswith("/index/index/")
    ]
    assert put.url.params["rev"] == record.rev  # read first, then the change based on it
    await call(g3.delete_index_record(record.did))
    with pytest.raises(errors.NotFoundError):
        await call(g3.index_record(record.did))


async def test_a_chosen_guid_and_a_conflict(g3: Any) -> None:
    record = await new_record(g3, did="dg.FAKE/mine-1")
    assert record.did == "dg.FAKE/mine-1"
    with pytest.raises(errors.ConflictError):
        await new_record(g3, did="dg.FAKE/mine-1")


async def test_stale_revisions_are_refused_not_overwritten(g3: Any) -> None:
    record = await new_record(g3)
    await call(g3.update_index_record(record.did, version="2"))
    with pytest.raises(errors.ConflictError):
        await call(g3.update_index_record(record.did, rev=record.rev, version="3"))
    with pytest.raises(errors.ConflictError):
        await call(g3.delete_index_record(record.did, rev=record.rev))
    assert (await call(g3.index_record(record.did))).version == "2"


async def test_bad_input_is_refused_before_any_request(g3: Any, fake: FakeGen3Commons) -> None:
    before = len(fake.requests)
    with pytest.raises(errors.ConfigurationError, match="hash"):
        await call(g3.create_index_record(hashes={}, size=1))
    with pytest.raises(errors.ConfigurationError, match="size"):
        await call(g3.create_index_record(hashes={"md5": MD5}, size=-1))
    with pytest.raises(errors.ConfigurationError, match="nothing to change"):
        await call(g3.update_index_record("dg.FAKE/x"))
    with pytest.raises(errors.ConfigurationError):
        await call(g3.find_index_record())
    assert len(fake.requests) == before
    with pytest.raises(errors.BadRequestError, match="not a valid md5"):
        await new_record(g3, hashes={"md5": "nope"})


async def test_versions(g3: Any) -> None:
    first = await new_record(g3, version="1", file_name="v.txt")
    second = await call(
        g3.create_index_version(
            first.did, hashes={"md5": hashlib.md5(b"data2").hexdigest()}, size=5, version="2"
        )
    )
    unversioned = await call(g3.create_index_version(first.did, hashes={"md5": MD5}, size=4))
    assert second.did != first.did and second.baseid == first.baseid
    versions = await call(g3.index_versions(first.did))
    assert [v.did for v in versions] == [first.did, second.did, unversioned.did]
    assert [v.did for v in await call(g3.index_versions(first.baseid))] == [v.did for v in versions]
    assert (await call(g3.latest_index_version(first.did))).did == unversioned.did
    assert (await call(g3.latest_index_version(first.did, has_version=True))).did == second.did
    with pytest.raises(errors.NotFoundError):
        await call(g3.index_versions("dg.FAKE/none"))


async def test_bulk_lookup_keeps_order_and_skips_unknown(
    g3: Any, fake: FakeGen3Commons, monkeypatch: pytest.MonkeyPatch
) -> None:
    import scibind.gen3._index_ops as index_ops

    monkeypatch.setattr(index_ops, "BULK_SIZE", 2)
    dids = [(await new_record(g3, file_name=f"f{i}")).did for i in range(3)]
    asked = [dids[2], "dg.FAKE/unknown", dids[0], dids[1], dids[0]]
    found = await call(g3.index_records_by_guid(asked))
    assert [r.did for r in found] == [dids[2], dids[0], dids[1]]
    bulk = [r for r in fake.requests if r.url.path == "/index/bulk/documents"]
    assert len(bulk) == 2  # 4 distinct GUIDs, 2 per request
    with pytest.raises(errors.ConfigurationError):
        await call(g3.index_records_by_guid("dg.FAKE/just-a-string"))


async def test_find_by_fields(g3: Any) -> None:
    wanted = await new_record(g3, hashes={"md5": hashlib.md5(b"x").hexdigest()}, size=1,
                              urls=["s3://b/x"], metadata={"state": "ok"})  # fmt: skip
    await new_record(g3)
    found = await call(g3.find_index_record(hashes={"md5": hashlib.md5(b"x").hexdigest()}, size=1))
    assert found is not None and found.did == wanted.did
    assert (await call(g3.find_index_record(metadata={"state": "ok"}))).did == wanted.did
    assert await call(g3.find_index_record(urls=["s3://b/none"])) is None


async def test_url_queries(g3: Any) -> None:
    a = await new_record(g3, urls=["s3://bucket-a/one", "gs://mirror/one"])
    b = await new_record(g3, urls=["s3://bucket-a/two"], version="1")
    c = await new_record(g3, urls=["s3://bucket-b/three"])
    await new_record(g3)  # no URLs: never matches
    matches = await collect(g3.query_index_urls("bucket-a", page_size=1))
    assert sorted(m.did for m in matches) == sorted([a.did, b.did])
    (one,) = [m for m in matches if m.did == a.did]
    assert one.urls == ("s3://bucket-a/one", "gs://mirror/one")
    assert [m.did for m in await collect(g3.query_index_urls("bucket-a", exclude="gs://"))] == [
        b.did
    ]
    assert [m.did for m in await collect(g3.query_index_urls("s3://", versioned=True))] == [b.did]
    assert c.did in {m.did for m in await collect(g3.query_index_urls(exclude="bucket-a"))}
    with pytest.raises(errors.ConfigurationError):
        g3.query_index_urls()


async def test_stats_and_health(g3: Any, fake: FakeGen3Commons) -> None:
    await new_record(g3)
    await new_record(g3, hashes={"md5": hashlib.md5(b"12345678").hexdigest()}, size=8)
    stats = await call(g3.index_stats())
    assert (stats.file_count, stats.total_file_size) == (2, 12)
    assert await call(g3.index_healthy()) is True


@pytest.mark.parametrize("denied", [401, 403])
async def test_writes_need_indexd_permissions(
    fake: FakeGen3Commons, kind: str, denied: int
) -> None:
    fake.index.denied_status = denied
    reader = fake.add_user("reader@example.org", authz={"/programs/DEV": [{"method": "read", "service": "*"}]})  # fmt: skip
    client = make_client(
        kind, api_key=fake.new_api_key(reader)["api_key"], transport=fake.transport()
    )
    expected = errors.AuthenticationError if denied == 401 else errors.PermissionDeniedError
    try:
        with pytest.raises(expected):
            await call(
                client.create_index_record(hashes={"md5": MD5}, size=4, authz=["/programs/DEV"])
            )
    finally:
        await close(client)
    assert not fake.index.records
