"""Parallel part upload: rewound retries, per-part ETag checks, journal resume, progress streams."""

from __future__ import annotations

import hashlib
import os

import httpx
import pytest
from scibind import errors
from scibind.config import ClientConfig, RetryPolicy
from scibind.transfers.checksums import Part
from scibind.transfers.journal import Journal
from scibind.transfers.progress import EventStream, ProgressTracker
from scibind.transfers.upload import PartTarget, hash_parts_op, upload_parts_op

from ..core.toy import AsyncToy, Toy
from .storage import Storage

FAST = ClientConfig(retry=RetryPolicy(backoff_base=0.001, backoff_max=0.002))


def plan_for(size: int, part: int) -> list[Part]:
    return [Part(n + 1, n * part, min(part, size - n * part)) for n in range(-(-size // part))]


def targets(store: Storage, plan: list[Part]) -> list[PartTarget]:
    return [
        PartTarget(
            p.number,
            p.offset,
            p.size,
            store.url(f"/up/{p.number}") + f"?partNumber={p.number}&X-Amz-Signature=s",
        )
        for p in plan
    ]


def upload(store: Storage, path, plan, journal=None, tracker=None):
    def op():
        etag = yield from hash_parts_op(path, plan, tracker)
        return (
            yield from upload_parts_op(
                path, targets(store, plan), etag=etag, journal=journal, tracker=tracker
            )
        )

    with Toy(transport=store.transport(), config=FAST) as toy:
        return toy._driver.run(op())


def test_parts_uploaded_in_parallel_and_verified(tmp_path) -> None:
    store = Storage()
    data = os.urandom(50_000)
    path = tmp_path / "f"
    path.write_bytes(data)
    plan = plan_for(len(data), 8192)
    etags = upload(store, path, plan)
    assert sorted(etags) == [p.number for p in plan]
    for p in plan:
        assert store.objects[f"up/{p.number}"] == data[p.offset : p.end]
        assert etags[p.number] == hashlib.md5(data[p.offset : p.end]).hexdigest()


def test_wrong_part_etag_is_detected(tmp_path) -> None:
    store = Storage()
    path = tmp_path / "f"
    path.write_bytes(os.urandom(20_000))
    store.bad_etag_for = {2}
    with pytest.raises(errors.ChecksumMismatchError, match="part 2"):
        upload(store, path, plan_for(20_000, 8192))


def test_journal_resume_sends_only_missing_parts(tmp_path) -> None:
    store = Storage()
    data = os.urandom(40_000)
    path = tmp_path / "f"
    path.write_bytes(data)
    plan = plan_for(len(data), 8192)
    journal = Journal(tmp_path / "j.json")
    store.bad_etag_for = {4}  # the first run dies on part 4
    with pytest.raises(errors.ChecksumMismatchError):
        upload(store, path, plan, journal=journal)
    first = set(store.puts)
    store.bad_etag_for = set()
    store.puts.clear()
    upload(
        store, path, plan, journal=Journal(tmp_path / "j.json")
    )  # a new process would reload it like this
    assert 4 in store.puts
    assert not (set(store.puts) & (first - {4}))  # parts finished before were not sent again


def test_transient_part_failures_are_retried_with_full_body(tmp_path) -> None:
    store = Storage()
    data = os.urandom(30_000)
    path = tmp_path / "f"
    path.write_bytes(data)
    failures = {"n": 0}

    def flaky(request: httpx.Request) -> httpx.Response:
        if request.method == "PUT" and failures["n"] < 3:
            failures["n"] += 1
            request.read()
            return httpx.Response(503, text="SlowDown")
        return store.handle(request)

    plan = plan_for(len(data), 8192)

    def op():
        etag = yield from hash_parts_op(path, plan)
        return (yield from upload_parts_op(path, targets(store, plan), etag=etag))

    with Toy(transport=httpx.MockTransport(flaky), config=FAST) as toy:
        toy._driver.run(op())
    assert b"".join(store.objects[f"up/{p.number}"] for p in plan) == data


def test_progress_event_stream_sync_and_totals(tmp_path) -> None:
    store = Storage()
    data = os.urandom(60_000)
    path = tmp_path / "f"
    path.write_bytes(data)
    plan = plan_for(len(data), 8192)
    toy = Toy(transport=store.transport(), config=FAST)

    def start(callback):
        tracker = ProgressTracker("f", len(data), callback, "uploading", step=1)

        def op():
            etag = yield from hash_parts_op(path, plan)
            result = yield from upload_parts_op(
                path, targets(store, plan), etag=etag, tracker=tracker
            )
            tracker.emit("done")
            return result

        return toy._driver.run(op())

    stream: EventStream[dict[int, str]] = EventStream(start, is_async=False)
    events = list(stream)
    assert len(stream.result) == len(plan)
    assert events[-1].phase == "done" and events[-1].done == len(data)
    toy.close()


async def test_progress_event_stream_async(tmp_path) -> None:
    store = Storage()
    data = os.urandom(30_000)
    path = tmp_path / "f"
    path.write_bytes(data)
    plan = plan_for(len(data), 8192)
    async with AsyncToy(transport=store.transport(), config=FAST) as toy:

        async def start(callback):
            tracker = ProgressTracker("f", len(data), callback, "uploading", step=1)
            result = await toy._driver.run(
                upload_parts_op(path, targets(store, plan), tracker=tracker)
            )
            tracker.emit("done")
            return result

        stream: EventStream[dict[int, str]] = EventStream(start, is_async=True)
        events = [e async for e in stream]
    assert events[-1].done == len(data) and len(stream.result) == len(plan)


def test_one_tracker_through_hashing_and_uploading_counts_each_phase_once(tmp_path) -> None:
    from scibind.transfers.progress import ProgressEvent

    store = Storage()
    data = os.urandom(40_000)
    path = tmp_path / "f"
    path.write_bytes(data)
    plan = plan_for(len(data), 8192)
    events: list[ProgressEvent] = []
    tracker = ProgressTracker("f", len(data), events.append, "hashing", step=1)
    upload(store, path, plan, tracker=tracker)
    for phase in ("hashing", "uploading"):
        assert sum(e.advance for e in events if e.phase == phase) == len(data)
    assert max(e.done for e in events) == len(data)
