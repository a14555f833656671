"""Plans of per-file tasks: picklable without credentials, runnable alone, mapped over a dask cluster."""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest
from scibind.dandi import (
    DandiClient,
    DownloadTask,
    UploadTask,
    close_worker_clients,
)
from scibind.testing.dandi import FakeDandiArchive

from .conftest import FAST, PART, Client, SmallParts, call, collect

SIZE = 200_000


@pytest.fixture
def filled(fake: FakeDandiArchive, dandiset: str) -> dict[str, bytes]:
    files = {f"sub-{i}/f{i}.bin": os.urandom(SIZE if i == 0 else 1000 + i) for i in range(4)}
    for path, content in files.items():
        fake.add_asset(dandiset, path, content)
    fake.add_zarr(dandiset, "z.zarr", {"a/0": b"zero", ".zattrs": b"{}"}, path="sub-0/z.zarr")
    files["sub-0/z.zarr/.zattrs"] = b"{}"
    files["sub-0/z.zarr/a/0"] = b"zero"
    return files


@pytest.fixture(autouse=True)
def _close_task_clients() -> Iterator[None]:
    yield
    close_worker_clients()


async def test_plans_are_picklable_and_hold_no_credentials(
    dc: Client, fake: FakeDandiArchive, dandiset: str, filled: dict[str, bytes], tmp_path: Path
) -> None:
    tasks = await call(dc.plan_download(dandiset, tmp_path / "out", version_id="draft"))
    assert sorted(t.path for t in tasks) == sorted(filled)
    blob = pickle.dumps(tasks)
    assert fake.api_key.encode() not in blob and b"Secret" not in blob
    assert pickle.loads(blob) == tasks
    by_path = {t.path: t for t in tasks}
    big = by_path["sub-0/f0.bin"]
    assert big.size == SIZE and "sha256" in big.digests and big.part_size == PART
    entry = by_path["sub-0/z.zarr/a/0"]
    assert entry.digests == {"md5": hashlib.md5(b"zero").hexdigest()} and entry.entry == "a/0"
    assert entry.dest == str(tmp_path / "out" / "sub-0" / "z.zarr" / "a" / "0")
    (tmp_path / "up" / "z.zarr").mkdir(parents=True)
    (tmp_path / "up" / "z.zarr" / ".zattrs").write_bytes(b"{}")
    (tmp_path / "up" / "a.txt").write_bytes(b"a")
    uploads = await call(dc.plan_upload(dandiset, tmp_path / "up", prefix="copy"))
    assert [(u.asset_path, u.zarr) for u in uploads] == [
        ("copy/z.zarr", True),
        ("copy/a.txt", False),
    ]
    blob = pickle.dumps(uploads)
    assert fake.api_key.encode() not in blob and pickle.loads(blob) == uploads


async def test_tasks_run_alone(
    kind: str,
    dc: Client,
    fake: FakeDandiArchive,
    dandiset: str,
    filled: dict[str, bytes],
    tmp_path: Path,
) -> None:
    tasks = await call(dc.plan_download(dandiset, tmp_path / "out", path="sub-0"))
    for task in tasks:
        if kind == "sync":
            assert isinstance(dc, DandiClient)
            task.run(dc)
        else:
            await task.arun(dc)  # type: ignore[arg-type]
    got = {
        p.relative_to(tmp_path / "out").as_posix(): p.read_bytes()
        for p in (tmp_path / "out").rglob("*")
        if p.is_file()
    }
    assert got == {k[len("sub-0/") :]: v for k, v in filled.items() if k.startswith("sub-0/")}
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "n.bin").write_bytes(b"fresh")
    (plan,) = await call(dc.plan_upload(dandiset, tmp_path / "new", prefix="added"))
    assert isinstance(plan, UploadTask) and plan.asset_path == "added/n.bin" and plan.size == 5
    asset = plan.run(dc) if kind == "sync" else await plan.arun(dc)  # type: ignore[arg-type]
    assert asset.path == "added/n.bin"
    assert "added/n.bin" in [a.path for a in await collect(dc.assets(dandiset, "draft"))]


def test_task_uses_environment_credentials(
    fake: FakeDandiArchive,
    dandiset: str,
    filled: dict[str, bytes],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with (
        fake.serve() as url,
        DandiClient(url, api_key=fake.api_key, part_size=PART, config=FAST) as client,
    ):
        (task,) = client.plan_download(dandiset, tmp_path, path="sub-1")
        assert task.api_url == url
        monkeypatch.setenv("DANDI_API_KEY", fake.api_key)
        assert task().read_bytes() == filled["sub-1/f1.bin"]
        assert task.run(api_key=fake.api_key) == tmp_path / "f1.bin"
    keyed = [r for r in fake.requests if r.headers.get("Authorization") == f"token {fake.api_key}"]
    assert keyed and all(r.url.port != httpx_port(fake, "storage") for r in keyed)


def httpx_port(fake: FakeDandiArchive, origin: str) -> int | None:
    import httpx

    return httpx.URL(fake.origins[origin]).port


@pytest.mark.parametrize("processes", [False, True])
def test_dask_cluster_runs_the_plans(
    processes: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    distributed = pytest.importorskip("distributed")
    fake = SmallParts()
    ident = fake.create_dandiset("Cluster")
    files = {f"d{i}/f{i}.bin": os.urandom(SIZE if i < 2 else 3000) for i in range(6)}
    for path, content in files.items():
        fake.add_asset(ident, path, content)
    source = tmp_path / "src"
    for i in range(4):
        (source / f"u{i}").mkdir(parents=True)
        (source / f"u{i}" / "data.bin").write_bytes(os.urandom(SIZE if i == 0 else 5000 + i))
    monkeypatch.setenv("DANDI_API_KEY", fake.api_key)  # what the workers' environment provides
    with fake.serve() as url, DandiClient(url, part_size=PART, config=FAST) as client:
        downloads = client.plan_download(ident, tmp_path / "out")
        uploads = client.plan_upload(ident, source, prefix="uploaded")
        with (
            distributed.LocalCluster(
                n_workers=2,
                threads_per_worker=2,
                processes=processes,
                dashboard_address=None,
                worker_dashboard_address=None,
            ) as cluster,
            distributed.Client(cluster) as dask,
        ):
            paths = dask.gather(dask.map(DownloadTask.run, downloads))
            assets = dask.gather(dask.map(UploadTask.run, uploads))
        listed = {a.path for a in client.assets(ident, "draft")}
    assert sorted(Path(p).relative_to(tmp_path / "out").as_posix() for p in paths) == sorted(files)
    for path, content in files.items():
        assert (tmp_path / "out" / path).read_bytes() == content
    assert sorted(a.path for a in assets) == [f"uploaded/u{i}/data.bin" for i in range(4)]
    assert {a.path for a in assets} <= listed
    for i, asset in enumerate(sorted(assets, key=lambda a: a.path)):
        assert fake.blob_content(asset.asset_id) == (source / f"u{i}" / "data.bin").read_bytes()
