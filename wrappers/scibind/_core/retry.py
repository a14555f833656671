"""Retry decisions (pure) and the httpx transports that apply them, sync and async.

The transport also:

* bounds requests in flight (the client's concurrency limit);
* buffers non-streaming response bodies inside the retry loop, so a connection reset in the middle of a body
  is retried like any other transport failure, a body that trickles past the time budget fails with
  :class:`~scibind.errors.TimeoutError`, and a body above ``max_response_bytes`` fails cleanly;
* rewinds request bodies before each retry, and refuses to retry a body it cannot rewind.

Request extensions understood: ``scibind.idempotent`` (bool: the caller marks a call safe to repeat) and
``scibind.stream`` (bool: do not buffer the body; the caller streams it).
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

import attrs
import httpx

if TYPE_CHECKING:
    import asyncio

from ..config import RetryPolicy
from .secrets import redact_url

__all__ = [
    "AsyncRetryTransport",
    "RetryState",
    "RetryTransport",
    "backoff_delay",
    "is_rewindable",
    "parse_retry_after",
]

log = logging.getLogger("scibind.http")

IDEMPOTENT_EXT = "scibind.idempotent"
STREAM_EXT = "scibind.stream"
_CHUNK = 64 * 1024


class BudgetExceeded(httpx.TimeoutException):
    """The retry time budget ran out (surfaced as :class:`scibind.errors.TimeoutError`)."""


class BodyTooLarge(httpx.TransportError):
    """A buffered response body exceeded the configured limit."""


class RetryAfterTooLong(Exception):
    """The server asked to wait longer than the policy allows; carries the response."""

    def __init__(self, response: httpx.Response, retry_after: float) -> None:
        self.response = response
        self.retry_after = retry_after
        super().__init__(f"Retry-After {retry_after:.0f}s exceeds the limit")


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date); ``None`` if absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        import email.utils

        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if parsed is None:
            return None
        seconds = parsed.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def backoff_delay(
    policy: RetryPolicy, attempt: int, rand: Callable[[], float] = random.random
) -> float:
    """The wait after failed attempt number ``attempt`` (1-based): ``backoff_base * 2**(attempt-1)`` capped at
    ``backoff_max``, of which the ``jitter`` fraction is random. Shared by the transport and transfer loops."""
    ceiling = min(policy.backoff_max, policy.backoff_base * (2 ** max(attempt - 1, 0)))
    return float(ceiling * (1 - policy.jitter) + ceiling * policy.jitter * rand())


def is_rewindable(request: httpx.Request) -> bool:
    """Whether the request body can be sent again from the start."""
    stream = request.stream
    if isinstance(stream, httpx.ByteStream):
        return True
    if getattr(stream, "rewindable", False):
        return True
    if type(stream).__name__ == "MultipartStream":
        # httpx seeks file fields back to 0 on re-iteration; only seekable files qualify.
        fields = getattr(stream, "fields", [])
        return all(
            not hasattr(getattr(f, "file", None), "read")
            or hasattr(getattr(f, "file", None), "seek")
            for f in fields
        )
    return False


@attrs.define
class RetryState:
    """The retry bookkeeping for one logical request. Pure: the caller sleeps and sends."""

    policy: RetryPolicy
    started: float
    clock: Callable[[], float] = time.monotonic
    rand: Callable[[], float] = random.random
    attempt: int = 0  # attempts made so far
    rewindable: bool = True  # decided once, before the body is first sent

    @property
    def deadline(self) -> float:
        return self.started + self.policy.budget

    def remaining(self) -> float:
        return self.deadline - self.clock()

    def _may_repeat(self, request: httpx.Request, *, sent: bool) -> bool:
        if self.attempt >= self.policy.max_attempts:
            return False
        if not self.rewindable:
            return False
        if not sent:  # connection never established: nothing reached the server
            return True
        marked = request.extensions.get(IDEMPOTENT_EXT)
        if marked is not None:
            return bool(marked)
        return request.method.upper() in self.policy.idempotent_methods

    def backoff(self) -> float:
        """Exponential backoff with jitter for the attempt just made."""
        return backoff_delay(self.policy, self.attempt, self.rand)

    def _fits(self, delay: float) -> bool:
        return delay < self.remaining()

    def after_response(self, request: httpx.Request, response: httpx.Response) -> float | None:
        """Seconds to wait before retrying this response, or ``None`` to return it."""
        if response.status_code not in self.policy.retry_statuses:
            return None
        if not self._may_repeat(request, sent=True):
            return None
        hinted = parse_retry_after(response.headers.get("Retry-After"))
        if hinted is not None and hinted > self.policy.retry_after_max:
            raise RetryAfterTooLong(response, hinted)
        delay = hinted if hinted is not None else self.backoff()
        return delay if self._fits(delay) else None

    def after_error(self, request: httpx.Request, exc: Exception) -> float | None:
        """Seconds to wait before retrying after a transport error, or ``None`` to raise it."""
        if isinstance(exc, (BudgetExceeded, BodyTooLarge)):
            return None
        if not isinstance(exc, httpx.TransportError):
            return None
        sent = not isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))
        if not self._may_repeat(request, sent=sent):
            return None
        delay = self.backoff()
        return delay if self._fits(delay) else None


def _log_retry(request: httpx.Request, what: str, attempt: int, delay: float) -> None:
    log.info(
        "retrying %s %s after %s (attempt %d, waiting %.2fs)",
        request.method,
        redact_url(request.url),
        what,
        attempt,
        delay,
    )


def _buffered(response: httpx.Response, content: bytes, request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        response.status_code,
        headers=response.headers,
        stream=httpx.ByteStream(content),
        extensions=response.extensions,
        request=request,
    )


class RetryTransport(httpx.BaseTransport):
    """Sync transport: concurrency limit, retries, body buffering with budget and size limits."""

    def __init__(
        self,
        inner: httpx.BaseTransport,
        policy: RetryPolicy,
        *,
        max_concurrency: int = 8,
        max_response_bytes: int = 256 * 1024 * 1024,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner = inner
        self.policy = policy
        self.max_response_bytes = max_response_bytes
        self.slots = threading.BoundedSemaphore(max_concurrency)
        self.sleep = sleep
        self.clock = clock

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        state = RetryState(self.policy, self.clock(), self.clock, rewindable=is_rewindable(request))
        streaming = bool(request.extensions.get(STREAM_EXT))
        while True:
            state.attempt += 1
            self.slots.acquire()
            if state.attempt == 1:  # the budget covers the call, not the wait for a local slot
                state.started = self.clock()
            released = False
            try:
                response = self.inner.handle_request(request)
                if streaming and not response.is_closed:
                    response.stream = _ReleasingStream(response.stream, self.slots.release)
                    released = True
                elif streaming:
                    pass  # already read (in-memory transports): nothing to hold the slot for
                else:
                    response = _buffered(response, self._read_all(response, state), request)
            except httpx.TransportError as exc:
                delay = state.after_error(request, exc)
                if delay is None:
                    raise
                _log_retry(request, type(exc).__name__, state.attempt, delay)
            else:
                try:
                    delay = state.after_response(request, response)
                except RetryAfterTooLong as too_long:
                    too_long.response.close()
                    raise
                if delay is None:
                    return response
                response.close()
                _log_retry(request, f"HTTP {response.status_code}", state.attempt, delay)
            finally:
                if not released:
                    self.slots.release()
            self.sleep(delay)

    def _read_all(self, response: httpx.Response, state: RetryState) -> bytes:
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.stream:  # type: ignore[union-attr]
                size += len(chunk)
                if size > self.max_response_bytes:
                    raise BodyTooLarge(f"response body exceeds {self.max_response_bytes} bytes")
                if state.clock() > state.deadline:
                    raise BudgetExceeded("time budget exceeded while reading the response body")
                chunks.append(chunk)
        finally:
            response.close()
        return b"".join(chunks)

    def close(self) -> None:
        self.inner.close()


class AsyncRetryTransport(httpx.AsyncBaseTransport):
    """Async twin of :class:`RetryTransport`; the decisions are the same :class:`RetryState`."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        policy: RetryPolicy,
        *,
        max_concurrency: int = 8,
        max_response_bytes: int = 256 * 1024 * 1024,
        sleep: Callable[[float], Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        import asyncio

        self.inner = inner
        self.policy = policy
        self.max_response_bytes = max_response_bytes
        self.max_concurrency = max_concurrency
        self._slots: asyncio.Semaphore | None = None
        self.sleep = sleep or asyncio.sleep
        self.clock = clock

    @property
    def slots(self) -> asyncio.Semaphore:
        if self._slots is None:
            import asyncio

            self._slots = asyncio.Semaphore(self.max_concurrency)
        return self._slots

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        state = RetryState(self.policy, self.clock(), self.clock, rewindable=is_rewindable(request))
        streaming = bool(request.extensions.get(STREAM_EXT))
        slots = self.slots
        while True:
            state.attempt += 1
            await slots.acquire()
            if state.attempt == 1:  # the budget covers the call, not the wait for a local slot
                state.started = self.clock()
            released = False
            try:
                response = await self.inner.handle_async_request(request)
                if streaming and not response.is_closed:
                    response.stream = _AsyncReleasingStream(response.stream, slots.release)
                    released = True
                elif streaming:
                    pass  # already read (in-memory transports): nothing to hold the slot for
                else:
                    response = _buffered(response, await self._read_all(response, state), request)
            except httpx.TransportError as exc:
                delay = state.after_error(request, exc)
                if delay is None:
                    raise
                _log_retry(request, type(exc).__name__, state.attempt, delay)
            else:
                try:
                    delay = state.after_response(request, response)
                except RetryAfterTooLong as too_long:
                    await too_long.response.aclose()
                    raise
                if delay is None:
                    return response
                await response.aclose()
                _log_retry(request, f"HTTP {response.status_code}", state.attempt, delay)
            finally:
                if not released:
                    slots.release()
            await self.sleep(delay)

    async def _read_all(self, response: httpx.Response, state: RetryState) -> bytes:
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in response.stream:  # type: ignore[union-attr]
                size += len(chunk)
                if size > self.max_response_bytes:
                    raise BodyTooLarge(f"response body exceeds {self.max_response_bytes} bytes")
                if state.clock() > state.deadline:
                    raise BudgetExceeded("time budget exceeded while reading the response body")
                chunks.append(chunk)
        finally:
            await response.aclose()
        return b"".join(chunks)

    async def aclose(self) -> None:
        await self.inner.aclose()


class _ReleasingStream(httpx.SyncByteStream):
    """Gives the concurrency slot back when a streamed response is closed."""

    def __init__(self, inner: Any, release: Callable[[], None]) -> None:
        self.inner = inner
        self._release: Callable[[], None] | None = release

    def __iter__(self) -> Iterator[bytes]:
        yield from self.inner

    def close(self) -> None:
        try:
            with contextlib.suppress(Exception):
                self.inner.close()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()


class _AsyncReleasingStream(httpx.AsyncByteStream):
    def __init__(self, inner: Any, release: Callable[[], None]) -> None:
        self.inner = inner
        self._release: Callable[[], None] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.inner:
            yield chunk

    async def aclose(self) -> None:
        try:
            with contextlib.suppress(Exception):
                await self.inner.aclose()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()
