"""Downloads: verified, atomic, ranged in parallel, resumed after resets and after interruption."""

from __future__ import annotations

import hashlib
import os

import httpx
import pytest
from scibind import errors
from scibind._core import effects as fx
from scibind.config import ClientConfig, RetryPolicy
from scibind.transfers.checksums import MultipartETag, multipart_plan
from scibind.transfers.download import Expected, download_op, partial_paths
from scibind.transfers.progress import ProgressEvent

from ..core.toy import AsyncToy, Toy
from .storage import Storage

FAST = ClientConfig(retry=RetryPolicy(backoff_base=0.001, backoff_max=0.002))


@pytest.fixture
def store() -> Storage:
    return Storage()


def put(store: Storage, key: str, data: bytes) -> str:
    store.objects[key] = data
    return store.signed(key)


def resolver(url: str, calls: list[int] | None = None):
    def resolve() -> fx.Op[str]:
        if calls is not None:
            calls.append(1)
        yield fx.Sleep(0)
        return url

    return resolve


def run(store: Storage, op):
    with Toy(transport=store.transport(), config=FAST) as toy:
        return toy._driver.run(op)


def test_small_download_verified_and_atomic(tmp_path, store: Storage) -> None:
    data = os.urandom(5000)
    url = put(store, "a", data)
    dest = tmp_path / "out" / "a.bin"
    expected = Expected(
        len(data),
        {"sha256": hashlib.sha256(data).hexdigest(), "md5": hashlib.md5(data).hexdigest()},
    )
    assert run(store, download_op(resolver(url), dest, expected)) == dest
    assert dest.read_bytes() == data
    assert not any(p.exists() for p in partial_paths(dest))


def test_checksum_mismatch_leaves_nothing(tmp_path, store: Storage) -> None:
    data = os.urandom(5000)
    url = put(store, "a", data)
    store.corrupt = True
    dest = tmp_path / "a.bin"
    with pytest.raises(errors.ChecksumMismatchError):
        run(
            store,
            download_op(
                resolver(url), dest, Expected(len(data), {"md5": hashlib.md5(data).hexdigest()})
            ),
        )
    assert not dest.exists()
    assert not any(p.exists() for p in partial_paths(dest))


def test_ranged_parallel_with_resets(tmp_path, store: Storage) -> None:
    data = os.urandom(100_000)
    url = put(store, "big", data)
    store.cut_next = [1000, 0, 5000]  # three responses break mid-body
    events: list[ProgressEvent] = []
    dest = tmp_path / "big.bin"
    expected = Expected(len(data), {"sha256": hashlib.sha256(data).hexdigest()})
    run(
        store,
        download_op(
            resolver(url),
            dest,
            expected,
            part_size=8192,
            min_parallel_size=1,
            progress=events.append,
        ),
    )
    assert dest.read_bytes() == data
    assert store.served == len(data) + 0  # resumed ranges: no byte fetched twice
    assert events[-1].phase == "done"
    assert sum(e.advance for e in events) == len(data)


def test_etag_aligned_parts_verify_without_extra_pass(tmp_path, store: Storage) -> None:
    data = os.urandom(70 * (1 << 20))
    url = put(store, "etag", data)
    plan = multipart_plan(len(data))
    etag = MultipartETag.of([hashlib.md5(data[p.offset : p.end]).digest() for p in plan]).value
    dest = tmp_path / "e.bin"
    run(store, download_op(resolver(url), dest, Expected(len(data), {"dandi-etag": etag})))
    assert hashlib.md5(dest.read_bytes()).digest() == hashlib.md5(data).digest()
    assert store.gets == 2  # one ranged GET per ETag part


def test_interrupted_download_resumes_from_partial(tmp_path, store: Storage) -> None:
    data = os.urandom(64_000)
    url = put(store, "r", data)
    dest = tmp_path / "r.bin"
    expected = Expected(len(data), {"md5": hashlib.md5(data).hexdigest()})
    store.fail_gets_after = 3  # the storage goes away after three ranges
    fast_fail = ClientConfig(retry=RetryPolicy(max_attempts=1))
    with (
        Toy(transport=store.transport(), config=fast_fail) as toy,
        pytest.raises(errors.ServerError),
    ):
        toy._driver.run(
            download_op(
                resolver(url),
                dest,
                expected,
                part_size=8000,
                min_parallel_size=1,
                parallel=1,
                retries=0,
            )
        )
    partial, journal = partial_paths(dest)
    assert not dest.exists() and partial.exists() and journal.exists()
    store.fail_gets_after = None
    store.served = 0
    run(
        store,
        download_op(resolver(url), dest, expected, part_size=8000, min_parallel_size=1, parallel=2),
    )
    assert dest.read_bytes() == data
    assert store.served == len(data) - 3 * 8000  # the three finished ranges were not fetched again


def test_single_stream_resume_and_server_without_range(tmp_path, store: Storage) -> None:
    data = os.urandom(30_000)
    url = put(store, "s", data)
    dest = tmp_path / "s.bin"
    partial, _ = partial_paths(dest)
    expected = Expected(len(data), {"sha256": hashlib.sha256(data).hexdigest()})
    # a previous run left the first 10,000 bytes
    run(store, download_op(resolver(url), dest, expected))
    dest.unlink()
    partial.write_bytes(data[:10_000])
    from scibind.transfers.journal import Journal

    Journal(partial_paths(dest)[1]).update(expected=expected.identity(), parts={})
    store.served = 0
    run(store, download_op(resolver(url), dest, expected))
    assert dest.read_bytes() == data and store.served == 20_000
    # a server that ignores Range: start over, still correct
    dest.unlink()
    partial.write_bytes(data[:10_000])
    Journal(partial_paths(dest)[1]).update(expected=expected.identity(), parts={})
    store.ignore_range = True
    run(store, download_op(resolver(url), dest, expected))
    assert dest.read_bytes() == data


def test_expired_url_is_resolved_again(tmp_path, store: Storage) -> None:
    data = os.urandom(1000)
    url = put(store, "x", data)
    store.expire_once = True
    calls: list[int] = []
    run(
        store,
        download_op(
            resolver(url, calls),
            tmp_path / "x",
            Expected(len(data), {"md5": hashlib.md5(data).hexdigest()}),
        ),
    )
    assert len(calls) == 2


def test_existing_identical_file_is_skipped(tmp_path, store: Storage) -> None:
    data = os.urandom(1000)
    url = put(store, "x", data)
    dest = tmp_path / "x"
    dest.write_bytes(data)
    events: list[ProgressEvent] = []
    run(
        store,
        download_op(
            resolver(url),
            dest,
            Expected(len(data), {"md5": hashlib.md5(data).hexdigest()}),
            progress=events.append,
        ),
    )
    assert store.gets == 0 and events[-1].phase == "skipped"
    dest.write_bytes(b"stale")
    run(
        store,
        download_op(
            resolver(url), dest, Expected(len(data), {"md5": hashlib.md5(data).hexdigest()})
        ),
    )
    assert dest.read_bytes() == data


async def test_async_ranged_download(tmp_path, store: Storage) -> None:
    data = os.urandom(50_000)
    url = put(store, "as", data)
    store.cut_next = [100]
    dest = tmp_path / "as.bin"
    async with AsyncToy(transport=store.transport(), config=FAST) as toy:
        await toy._driver.run(
            download_op(
                resolver(url),
                dest,
                Expected(len(data), {"md5": hashlib.md5(data).hexdigest()}),
                part_size=7000,
                min_parallel_size=1,
            )
        )
    assert dest.read_bytes() == data


def test_tokens_never_reach_storage(tmp_path, store: Storage) -> None:
    """Downloads through a client with credentials send none to the storage host."""
    from scibind.auth import HeaderAuth

    data = os.urandom(3000)
    url = put(store, "t", data)
    api = httpx.MockTransport(lambda r: store.handle(r))
    with Toy(
        "https://storage.test", transport=api, auth=HeaderAuth("sekrit-token"), config=FAST
    ) as toy:
        # even when the storage is the same origin as the API, the download asks for no auth
        toy._driver.run(
            download_op(
                resolver(url),
                tmp_path / "t",
                Expected(len(data), {"md5": hashlib.md5(data).hexdigest()}),
            )
        )
    assert all("authorization" not in r.headers for r in store.requests)


def test_ranged_download_falls_back_when_server_ignores_range(tmp_path, store: Storage) -> None:
    data = os.urandom(40_000)
    url = put(store, "nr", data)
    store.ignore_range = True
    dest = tmp_path / "nr.bin"
    expected = Expected(len(data), {"md5": hashlib.md5(data).hexdigest()})
    run(
        store,
        download_op(resolver(url), dest, expected, part_size=8000, min_parallel_size=1, parallel=2),
    )
    assert dest.read_bytes() == data
