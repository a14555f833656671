"""FileSliceStream: the same bytes on every pass, sync and async; async passes never read the disk on the
event loop."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest
from scibind.transfers.streams import FileSliceStream


async def collect(stream: FileSliceStream) -> bytes:
    return b"".join([chunk async for chunk in stream])


async def test_sync_and_async_passes_send_the_same_slice(tmp_path: Path) -> None:
    data = os.urandom(10_000)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    starts: list[int] = []
    chunks: list[int] = []
    stream = FileSliceStream(
        path,
        offset=1234,
        length=5000,
        chunk_size=1024,
        on_chunk=lambda c: chunks.append(len(c)),
        on_start=lambda: starts.append(1),
    )
    assert b"".join(stream) == data[1234:6234]
    assert await collect(stream) == data[1234:6234]  # a second pass (a retry) starts over
    assert b"".join(stream) == data[1234:6234]
    assert len(starts) == 3
    assert chunks == [1024, 1024, 1024, 1024, 904] * 3
    assert stream.headers() == {"Content-Length": "5000"}


async def test_a_file_that_shrank_is_an_error_in_both_modes(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 100)
    stream = FileSliceStream(path, offset=0, length=200)
    with pytest.raises(OSError, match="shrank"):
        b"".join(stream)
    with pytest.raises(OSError, match="shrank"):
        await collect(stream)


async def test_async_reads_leave_the_event_loop_free(tmp_path: Path) -> None:
    """The file is a FIFO: opening and reading it blocks until a writer comes. The writer comes only once the
    event loop has run another task while the stream waits for its bytes; a stream that read on the loop
    would block it, the writer would give up waiting (recorded) and write anyway, so the test cannot hang."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    data = os.urandom(50_000)
    loop_ran = threading.Event()
    saw_loop: list[bool] = []

    def writer() -> None:
        saw_loop.append(loop_ran.wait(timeout=5))
        with open(fifo, "wb") as f:
            f.write(data)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        task = asyncio.ensure_future(
            collect(FileSliceStream(fifo, length=len(data), chunk_size=8192))
        )
        await asyncio.sleep(0)  # the stream starts and waits for the disk ...
        loop_ran.set()  # ... while the loop runs this task
        assert await asyncio.wait_for(task, timeout=10) == data
    finally:
        loop_ran.set()
        thread.join(timeout=10)
    assert saw_loop == [True], "the stream blocked the event loop while it read the file"


def _fds_open_on(path: Path) -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == str(path):
                count += 1
        except OSError:
            continue
    return count


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
async def test_a_pass_cancelled_while_the_file_opens_closes_it(tmp_path: Path) -> None:
    """A part upload cancelled (a sibling failed) while its worker thread is still opening the file: the file
    the thread opens afterwards is closed, not left to the garbage collector (ResourceWarning)."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    task = asyncio.ensure_future(collect(FileSliceStream(fifo, length=10, chunk_size=10)))
    await asyncio.sleep(0)  # the pass starts: its thread blocks opening the FIFO (no writer yet)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with open(fifo, "wb") as f:  # now the thread's open returns, after the pass was cancelled
        f.write(b"x")
    deadline = asyncio.get_running_loop().time() + 5
    while _fds_open_on(fifo) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)  # poll: the close runs on the loop once the thread is done
    assert _fds_open_on(fifo) == 0
