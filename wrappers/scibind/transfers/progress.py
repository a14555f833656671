"""Progress events for transfers, usable by tqdm or rich, from sync and async code.

Operations take ``progress=callback`` and call it with :class:`ProgressEvent` values. For callers who prefer
to iterate, :class:`EventStream` runs a transfer in the background and yields its events::

    stream = client.upload_events(...)
    for event in stream:            # or: async for event in stream (async clients)
        bar.update(event.advance)
    result = stream.result
"""

from __future__ import annotations

import queue
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, Generic, Literal, TypeVar

import attrs

__all__ = ["EventStream", "ProgressCallback", "ProgressEvent", "ProgressTracker"]

T = TypeVar("T")

Phase = Literal["hashing", "uploading", "downloading", "verifying", "done", "skipped", "failed"]


@attrs.frozen
class ProgressEvent:
    """What happened to one file: ``done`` of ``total`` bytes in ``phase``; ``advance`` bytes since the last event."""

    name: str
    phase: Phase
    done: int = 0
    total: int | None = None
    advance: int = 0
    message: str | None = None


ProgressCallback = Callable[[ProgressEvent], None]

_COUNTING = frozenset({"hashing", "uploading", "downloading"})


class ProgressTracker:
    """Thread-safe byte counter for one file that reports to a callback, at most every ``step`` bytes."""

    def __init__(
        self,
        name: str,
        total: int | None,
        callback: ProgressCallback | None,
        phase: Phase,
        step: int = 1 << 20,
    ) -> None:
        self.name = name
        self.total = total
        self.callback = callback
        self.phase: Phase = phase
        self.step = step
        self.done = 0
        self._reported = 0
        self._lock = threading.Lock()

    def emit(self, phase: Phase, message: str | None = None) -> None:
        """Report a phase change (also flushes unreported bytes).

        Entering a different byte-counting phase (hashing -> uploading) starts its count at zero, so one tracker
        can follow a file through several passes without counting it twice.
        """
        if self.callback is None:
            return
        with self._lock:
            if phase != self.phase and phase in _COUNTING:
                self.done = self._reported = 0
            advance = self.done - self._reported
            self._reported = self.done
            self.phase = phase
        self.callback(ProgressEvent(self.name, phase, self.done, self.total, advance, message))

    def add(self, nbytes: int) -> None:
        """Count ``nbytes`` more (negative to take back bytes of a retried part)."""
        if self.callback is None:
            return
        with self._lock:
            self.done += nbytes
            if abs(self.done - self._reported) < self.step:
                return
            advance = self.done - self._reported
            self._reported = self.done
            phase = self.phase
        self.callback(ProgressEvent(self.name, phase, self.done, self.total, advance))


_END = object()


class EventStream(Generic[T]):
    """Iterate the progress events of a transfer running in the background; ``result`` holds its return value.

    Built from ``start(callback)``, which must run the transfer with ``progress=callback``: a plain call for
    sync clients (run in a thread) or a coroutine function for async clients.
    """

    def __init__(self, start: Callable[[ProgressCallback], Any], *, is_async: bool) -> None:
        self._start = start
        self._is_async = is_async
        self._result: Any = None
        self._error: BaseException | None = None
        self._finished = False

    @property
    def result(self) -> T:
        """The transfer's return value (after iteration finished); re-raises its error."""
        if not self._finished:
            raise RuntimeError("iterate the events first")
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[ProgressEvent]:
        if self._is_async:
            raise TypeError("this event stream belongs to an async client: use `async for`")
        events: queue.Queue[Any] = queue.Queue()

        def work() -> None:
            try:
                self._result = self._start(events.put)
            except BaseException as exc:
                self._error = exc
            finally:
                events.put(_END)

        thread = threading.Thread(target=work, name="scibind-transfer", daemon=True)
        thread.start()
        while (item := events.get()) is not _END:
            yield item
        thread.join()
        self._finished = True
        if self._error is not None:
            raise self._error

    async def __aiter__(self) -> AsyncIterator[ProgressEvent]:
        if not self._is_async:
            raise TypeError("this event stream belongs to a sync client: use `for`")
        import asyncio

        events: asyncio.Queue[Any] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def put(event: ProgressEvent) -> None:  # may be called from worker threads
            loop.call_soon_threadsafe(events.put_nowait, event)

        async def work() -> None:
            try:
                coro: Awaitable[Any] = self._start(put)
                self._result = await coro
            except BaseException as exc:
                self._error = exc
            finally:
                loop.call_soon_threadsafe(events.put_nowait, _END)

        task = asyncio.ensure_future(work())
        try:
            while (item := await events.get()) is not _END:
                yield item
        finally:
            if not task.done():
                task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._finished = True
        if self._error is not None:
            raise self._error
