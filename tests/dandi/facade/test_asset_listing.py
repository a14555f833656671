"""The asset listing parses records straight into Assets (no generated models): same results, same checks."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from scibind import errors
from scibind.dandi import Asset
from scibind.testing.dandi import FakeDandiArchive

from .conftest import Client, Faults, call, close, collect, make_client


@pytest.fixture
def filled(fake: FakeDandiArchive, dandiset: str) -> list[str]:
    paths = [f"sub-{i:02d}/file-{i}.bin" for i in range(25)]
    for i, path in enumerate(paths):
        fake.add_asset(dandiset, path, b"x" * (i + 1))
    fake.add_zarr(dandiset, "z.zarr", {"a/0": b"zero"}, path="z.zarr")
    return [*paths, "z.zarr"]


@pytest.mark.parametrize("metadata", [False, True])
async def test_listing_matches_the_generated_models(
    dc: Client, dandiset: str, filled: list[str], metadata: bool
) -> None:
    listed = await collect(dc.assets(dandiset, "draft", metadata=metadata, page_size=7))
    assert [a.path for a in listed] == filled
    for asset in listed:
        reference = await call(dc.get_asset(asset.asset_id, dandiset=dandiset, version_id="draft"))
        assert asset == reference  # ids, path, size, blob/zarr, dates, dandiset and version
        assert asset.created.tzinfo is not None and asset.created == reference.created
        if metadata:
            assert asset.metadata == reference.metadata and asset.digests == reference.digests
        else:
            assert asset.metadata is None
    assert listed[-1].is_zarr and listed[0].blob is not None and listed[0].size == 1


def _rewrite_first(change: Any) -> Any:
    def after(request: httpx.Request, response: httpx.Response) -> httpx.Response | None:
        if not request.url.path.endswith("/assets/") or request.method != "GET":
            return None
        body = json.loads(response.content)
        change(body)
        return httpx.Response(200, json=body)

    return after


@pytest.mark.parametrize(
    "change",
    [
        lambda b: b["results"][0].update(size="12"),
        lambda b: b["results"][0].update(size=True),
        lambda b: b["results"][0].pop("created"),
        lambda b: b["results"][0].update(modified="yesterday"),
        lambda b: b["results"][0].update(asset_id=7),
        lambda b: b["results"][0].update(blob=["x"]),
        lambda b: b["results"][0].update(metadata="x"),
        lambda b: b.update(results={"a": 1}),
        lambda b: b.update(count="3"),
        lambda b: b.update(next=5),
        lambda b: b["results"].append("not an object"),
    ],
)
async def test_records_that_do_not_fit_give_response_format_error(
    kind: str, fake: FakeDandiArchive, dandiset: str, filled: list[str], change: Any
) -> None:
    faults = Faults(fake)
    faults.after.append(_rewrite_first(change))
    dc = make_client(kind, fake, transport=faults.transport())
    try:
        with pytest.raises(errors.ResponseFormatError, match="does not match the API schema"):
            await collect(dc.assets(dandiset, "draft"))
    finally:
        await close(dc)


async def test_not_json_gives_response_format_error(
    kind: str, fake: FakeDandiArchive, dandiset: str, filled: list[str]
) -> None:
    faults = Faults(fake)
    faults.after.append(
        lambda req, resp: (
            httpx.Response(200, text="<html>") if req.url.path.endswith("/assets/") else None
        )
    )
    dc = make_client(kind, fake, transport=faults.transport())
    try:
        with pytest.raises(errors.ResponseFormatError):
            await collect(dc.assets(dandiset, "draft"))
    finally:
        await close(dc)


def test_from_record_names_the_field_not_the_value() -> None:
    with pytest.raises(TypeError, match=r"asset\.path: expected str, got int"):
        Asset.from_record(
            {
                "asset_id": "a",
                "path": 5,
                "size": 1,
                "created": "2024-01-01T00:00:00Z",
                "modified": "2024-01-01T00:00:00Z",
            }
        )
    with pytest.raises(ValueError, match=r"asset\.created") as info:
        Asset.from_record(
            {
                "asset_id": "a",
                "path": "p",
                "size": 1,
                "created": "secret-ish",
                "modified": "2024-01-01T00:00:00Z",
            }
        )
    assert "secret-ish" not in str(info.value)
