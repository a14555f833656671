"""Killed transfers: a process killed (SIGKILL) in the middle of an upload or a download leaves no partial or
corrupt file at the destination; the next call resumes, sending or fetching only what is missing, and
verifies the result.

The transfer runs in a subprocess (the same client code, sync or async); the fault server lets the first
parts through and then holds the rest (stalled or trickling), so the kill always lands mid-way.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from scibind.testing.faults import FaultServer, Forward, Reset, Rule, Stall, Trickle, wait_for
from scibind.transfers.download import partial_paths

from .conftest import assert_clean
from .harness import (
    CHILD_LOG_ENV,
    CHILD_SECRET_ENV,
    PART,
    Harness,
    close,
    script,
    services_with,
)
from .test_retries import payload


def start(service: Harness, source: str, tmp_path: Path) -> subprocess.Popen[bytes]:
    """Run ``source`` in a child process: the credential in its environment (not in its argv, which any
    user of the machine can read), its DEBUG log in ``child-debug.log``."""
    assert service.child_secret not in source
    env = os.environ.copy()
    env[CHILD_SECRET_ENV] = service.child_secret
    env[CHILD_LOG_ENV] = str(tmp_path / "child-debug.log")
    with open(tmp_path / "child.log", "wb") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-c", source], stdout=log, stderr=subprocess.STDOUT, env=env
        )


def child_logs_are_clean(service: Harness, tmp_path: Path) -> None:
    """The killed child's DEBUG log (scibind, httpx, httpcore) and its output show no secret, including
    the credentials and presigned signatures of the resumed run (checked after it)."""
    debug = (tmp_path / "child-debug.log").read_text()
    assert "HTTP Request:" in debug, "the child logged nothing"
    assert_clean(debug, service.all_secrets(), "the killed child's DEBUG log")
    assert_clean((tmp_path / "child.log").read_text(), service.all_secrets(), "the child's output")


def kill(process: subprocess.Popen[bytes], tmp_path: Path) -> None:
    process.kill()  # SIGKILL: no cleanup of any kind
    process.wait(timeout=10)
    assert process.returncode == -9, (tmp_path / "child.log").read_text()


def alive(process: subprocess.Popen[bytes], tmp_path: Path) -> None:
    assert process.poll() is None, (
        "the transfer ended before the kill:\n" + (tmp_path / "child.log").read_text()
    )


def hold_after(server: FaultServer, method: str, path: str, passed: int, hold: Any) -> None:
    """Let ``passed`` matching requests through, then answer the rest with ``hold``."""
    rules = [Rule(Forward(), method=method, path=path, first=passed)] if passed else []
    server.plan(*rules, Rule(hold, method=method, path=path))


def ranges_requested(server: FaultServer, path: str) -> list[int]:
    numbers = []
    for r in server.requests_to(path, "GET"):
        m = re.match(r"bytes=(\d+)-", r.headers.get("range", ""))
        numbers.append(int(m.group(1)) // PART + 1 if m else 0)
    return sorted(numbers)


def journal_parts(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()).get("parts") or {})
    except (OSError, ValueError):
        return {}


@pytest.mark.parametrize("service", services_with("resume_ranged_download"), indirect=True)
async def test_killed_ranged_download_resumes_and_verifies(
    service: Harness, mode: str, tmp_path: Path
) -> None:
    size = 6 * PART + 123
    data = payload(size, 11)
    handle = service.seed_download(data)
    dest = tmp_path / "out" / "copy.bin"
    partial, journal = partial_paths(dest)
    server, op = service.download_server, service.download_op
    hold_after(server, "GET", op.path, 3, Trickle(chunk=512, interval=0.05))
    child = start(
        service,
        script(mode, service.client_source(mode), service.download_source(handle, dest, mode)),
        tmp_path,
    )
    try:
        assert wait_for(
            lambda: len(journal_parts(journal)) >= 3 and len(server.requests_to(op.path)) >= 5,
            timeout=30,
        )
        alive(child, tmp_path)
    finally:
        kill(child, tmp_path)
    done = journal_parts(journal)
    assert not dest.exists()  # killed: nothing at the destination
    assert partial.exists() and partial.stat().st_size == size  # pre-sized partial file beside it
    # damage a finished range on disk: the resume must notice and fetch it again
    first_done = min(int(n) for n in done)
    with open(partial, "r+b") as f:
        f.seek((first_done - 1) * PART + 10)
        f.write(b"\0\0\0")
    server.plan()
    server.reset_records()
    client = service.client(mode)
    try:
        assert await service.download(client, handle, dest) == dest
    finally:
        await close(client)
    assert dest.read_bytes() == data
    assert not partial.exists() and not journal.exists()
    missing = {n for n in range(1, 8) if str(n) not in done}
    assert set(ranges_requested(server, op.path)) == missing | {first_done}
    child_logs_are_clean(service, tmp_path)


@pytest.mark.parametrize("service", services_with("resume_download"), indirect=True)
async def test_killed_single_stream_download_resumes_and_verifies(
    service: Harness, mode: str, tmp_path: Path
) -> None:
    size = PART + 5000  # below the parallel threshold: one stream
    data = payload(size, 13)
    handle = service.seed_download(data)
    dest = tmp_path / "out" / "copy.bin"
    partial, journal = partial_paths(dest)
    server, op = service.download_server, service.download_op
    hold_after(server, "GET", op.path, 0, Trickle(chunk=1024, interval=0.02))
    child = start(
        service,
        script(mode, service.client_source(mode), service.download_source(handle, dest, mode)),
        tmp_path,
    )
    try:
        assert wait_for(lambda: partial.exists() and partial.stat().st_size >= 8 * 1024, timeout=30)
        alive(child, tmp_path)
    finally:
        kill(child, tmp_path)
    assert not dest.exists()
    have = partial.stat().st_size
    assert 0 < have < size
    server.plan()
    server.reset_records()
    client = service.client(mode)
    try:
        assert await service.download(client, handle, dest) == dest
    finally:
        await close(client)
    assert dest.read_bytes() == data
    assert not partial.exists() and not journal.exists()
    gets = server.requests_to(op.path, "GET")
    if service.resume_kind == "range":  # resumed from the partial file's length
        assert [r.headers.get("range") for r in gets] == [f"bytes={have}-"]
    elif service.resume_kind == "offset":
        assert len(gets) == 1 and f"offset={have}&" in gets[0].target
    else:  # the server ignores Range: asked once, then fetched whole
        assert len(gets) <= 2
    child_logs_are_clean(service, tmp_path)


@pytest.mark.parametrize("service", services_with("resume_upload"), indirect=True)
async def test_killed_multipart_upload_resumes_without_resending_parts(
    service: Harness, mode: str, tmp_path: Path
) -> None:
    size = 6 * PART + 321
    data = payload(size, 17)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    server, op = service.upload_server, service.upload_op
    hold_after(server, op.method, op.path, 3, Stall(120))
    cache = Path(os.environ["SCIBIND_CACHE_DIR"])

    def recorded() -> dict[str, Any]:
        found: dict[str, Any] = {}
        for path in cache.rglob("*.json"):
            found.update(journal_parts(path))
        return found

    child = start(
        service,
        script(mode, service.client_source(mode), service.upload_source(source)),
        tmp_path,
    )
    try:
        assert wait_for(
            lambda: len(recorded()) >= 3 and len(server.requests_to(op.path)) >= 5, timeout=30
        ), (
            f"parts journaled: {sorted(recorded())}, requests: {len(server.requests_to(op.path))}\n"
            + (tmp_path / "child.log").read_text()
        )
        alive(child, tmp_path)
    finally:
        kill(child, tmp_path)
    done = recorded()
    assert len(done) == 3
    server.plan()
    server.reset_records()
    service.api.reset_records()
    client = service.client(mode)
    try:
        handle = await service.upload(client, source)
    finally:
        await close(client)
    assert service.uploaded(handle) == data
    resent = server.requests_to(op.path, op.method)
    assert len(resent) == 7 - len(done)  # only the parts the journal did not have
    assert not any(
        f"partNumber={n}&" in r.target or r.target.endswith(f"partNumber={n}")
        for r in resent
        for n in map(int, done)
    )
    assert (
        service.api.requests_to(service.upload_init_path) == []
    )  # the same multipart upload, continued
    assert recorded() == {}  # journal removed once complete
    child_logs_are_clean(service, tmp_path)


@pytest.mark.parametrize("service", services_with("offset_upload"), indirect=True)
async def test_upload_cut_mid_body_continues_from_the_servers_offset(
    service: Harness, mode: str, tmp_path: Path
) -> None:
    size = 3 * PART + 77
    data = payload(size, 19)
    source = tmp_path / "up.bin"
    source.write_bytes(data)
    server, op = service.upload_server, service.upload_op
    kept = PART + 1000  # the server keeps what arrived before the connection broke
    server.plan(
        Rule(Reset(request_bytes=kept, forward_partial=True), method=op.method, path=op.path, nth=1)
    )
    client = service.client(mode)
    try:
        handle = await service.upload(client, source)
    finally:
        await close(client)
    assert service.uploaded(handle) == data
    first, second = server.requests_to(op.path, op.method)
    assert first.body_size == kept
    assert second.body_size == size - kept  # only the rest was sent again
    assert len(server.requests_to(r"midas\.upload\.getoffset")) == 1


@pytest.mark.parametrize("service", services_with("offset_upload"), indirect=True)
async def test_killed_offset_upload_continues_with_its_token(
    service: Harness, mode: str, tmp_path: Path
) -> None:
    size = 3 * PART + 55
    data = payload(size, 23)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    server, op = service.upload_server, service.upload_op
    kept = PART + 500
    server.plan(
        # the connection breaks after `kept` bytes, which the server keeps ...
        Rule(
            Reset(request_bytes=kept, forward_partial=True), method=op.method, path=op.path, nth=1
        ),
        # ... and the process is killed while it asks how much arrived
        Rule(Stall(120), path=service.offset_path),
    )
    cache = Path(os.environ["SCIBIND_CACHE_DIR"])
    child = start(
        service,
        script(mode, service.client_source(mode), service.upload_source(source)),
        tmp_path,
    )
    try:
        assert wait_for(lambda: len(server.requests_to(service.offset_path)) >= 1, timeout=30)
        alive(child, tmp_path)
    finally:
        kill(child, tmp_path)
    assert list(cache.rglob("*.json")), "no upload journal was kept"
    items_before = service.items()
    server.plan()
    server.reset_records()
    client = service.client(mode)
    try:
        handle = await service.upload(client, source)
    finally:
        await close(client)
    assert service.uploaded(handle) == data
    assert service.items() == items_before  # the same item, continued: no duplicate
    assert server.requests_to(service.start_upload_path) == []  # the same upload token
    (put,) = server.requests_to(op.path, op.method)
    assert put.body_size == size - kept  # only what the server did not have
    assert not list(cache.rglob("*.json"))
    child_logs_are_clean(service, tmp_path)
