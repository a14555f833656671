"""Blocking calls run off the event loop without leaking what they acquire when the waiting task is cancelled."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import asyncio

__all__ = ["run_off_loop"]

T = TypeVar("T")


async def run_off_loop(acquire: Callable[[], T], release: Callable[[T], None]) -> T:
    """``acquire()`` run in a worker thread (opening a file, taking a thread lock), so the loop never waits.

    If the awaiting task is cancelled meanwhile, the thread still finishes; ``release`` is then called with
    what it acquired (closing the file, releasing the lock) instead of leaving it behind.
    """
    import asyncio

    pending = asyncio.get_running_loop().run_in_executor(None, acquire)
    try:
        return await asyncio.shield(pending)
    except BaseException:
        pending.add_done_callback(lambda done: _release(done, release))
        raise


def _release(done: asyncio.Future[Any], release: Callable[[Any], None]) -> None:
    if not done.cancelled() and done.exception() is None:
        release(done.result())
