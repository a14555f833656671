"""Drivers execute operations (generators of :mod:`~scibind._core.effects`), sync or async.

Everything that decides *what* to send and how to interpret the answer is shared and pure; the two driver
classes differ only in how they wait (``client.send`` vs ``await client.send``, threads vs tasks).
"""

from __future__ import annotations

import collections
import itertools
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from types import SimpleNamespace
from typing import Any, TypeVar

import attrs
import httpx

from ..config import ClientConfig
from .effects import Blocking, Call, GetConfig, Op, Parallel, Request, Sleep, Stream
from .responses import (
    ErrorClass,
    ErrorMessage,
    check_response,
    default_error_message,
    format_error,
    redirect_error,
    translate_exception,
)
from .retry import IDEMPOTENT_EXT, STREAM_EXT

__all__ = ["AsyncDriver", "Runtime", "SyncDriver"]

T = TypeVar("T")

AHEAD = 4
"""How many windows of results :meth:`SyncDriver.imap` / :meth:`AsyncDriver.imap` may hold for the consumer."""


class _Abandoned(Exception):
    """An operation not started because another one of the same batch had failed (never reaches users: the
    consumer raises the batch's first real failure in its place)."""


# What generated ``_build_response`` reads from its client argument; avoids importing the generated Client.
_PARSE_CLIENT = SimpleNamespace(raise_on_unexpected_status=False)


@attrs.frozen
class Runtime:
    """Service-specific, I/O-free knowledge the drivers need."""

    message: ErrorMessage = default_error_message
    """Extracts (message, code) from an error response."""
    detect: Callable[[httpx.Response], None] | None = None
    """Raises for error payloads that arrive with a success status (Midas ``stat: fail``, GraphQL ``errors``)."""
    classify: ErrorClass | None = None
    """Picks the error class when the status alone says too little (dserver's JWT layer answers 422)."""


def _extensions(idempotent: bool | None, stream: bool = False) -> dict[str, Any]:
    ext: dict[str, Any] = {}
    if idempotent is not None:
        ext[IDEMPOTENT_EXT] = idempotent
    if stream:
        ext[STREAM_EXT] = True
    return ext


def build_request(
    client: httpx.Client | httpx.AsyncClient, effect: Call | Request | Stream
) -> httpx.Request:
    """The :class:`httpx.Request` an effect stands for (pure: no I/O)."""
    if isinstance(effect, Call):
        kwargs = effect.endpoint._get_kwargs(**effect.kwargs)
        return client.build_request(**kwargs, extensions=_extensions(effect.idempotent))
    if isinstance(effect, Request):
        body = effect.content
        replayable = isinstance(body, httpx.SyncByteStream | httpx.AsyncByteStream)
        request = client.build_request(
            effect.method,
            effect.url,
            params=effect.params,
            json=effect.json,
            content=None if replayable else body,
            data=effect.data,
            files=effect.files,
            headers=effect.headers,
            extensions=_extensions(effect.idempotent),
        )
        if replayable:  # e.g. FileSliceStream: keep the stream object so retries can rewind it
            from ..transfers.streams import with_stream

            return with_stream(request, body)
        return request
    return client.build_request(
        effect.method,
        effect.url,
        params=effect.params,
        headers=effect.headers,
        extensions=_extensions(None, True),
    )


def finish(runtime: Runtime, effect: Call | Request, response: httpx.Response) -> Any:
    """Check a buffered response and produce the effect's result (pure)."""
    check_response(response, ok=effect.ok, message=runtime.message, classify=runtime.classify)
    if runtime.detect is not None and response.status_code < 300:
        runtime.detect(response)
    if isinstance(effect, Request):
        return response
    status = response.status_code
    if (
        300 <= status < 400
        and status not in effect.ok
        and status not in _documented(effect.endpoint)
    ):
        raise redirect_error(response)
    from .validate import check_parsed  # on first use: keeps `import scibind.<svc>` cheap

    try:
        result = effect.endpoint._build_response(client=_PARSE_CLIENT, response=response)
        if effect.validate:
            check_parsed(getattr(result, "parsed", None))
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise format_error(
            response.request, "response does not match the API schema", exc
        ) from None
    return result


_DOCUMENTED: dict[str, frozenset[int]] = {}


def _documented(endpoint: Any) -> frozenset[int]:
    """The statuses a generated endpoint's ``_parse_response`` knows (the integers it compares with)."""
    key = getattr(endpoint, "__name__", repr(endpoint))
    known = _DOCUMENTED.get(key)
    if known is None:
        code = getattr(getattr(endpoint, "_parse_response", None), "__code__", None)
        consts = code.co_consts if code is not None else ()
        known = frozenset(
            c for c in consts if isinstance(c, int) and not isinstance(c, bool) and 100 <= c < 600
        )
        _DOCUMENTED[key] = known
    return known


def _auth_arg(use_auth: bool) -> Any:
    return httpx.USE_CLIENT_DEFAULT if use_auth else None


class SyncDriver:
    """Runs operations with an :class:`httpx.Client`; parallel effects use threads."""

    is_async = False

    def __init__(self, client: httpx.Client, runtime: Runtime, config: ClientConfig) -> None:
        self.client = client
        self.runtime = runtime
        self.config = config
        """The facade's configuration (what :class:`~scibind._core.effects.GetConfig` returns)."""
        self.max_concurrency = config.max_concurrency

    def run(self, op: Op[T]) -> T:
        """Drive ``op`` to completion; errors from effects are thrown into it so it can handle them."""
        value: Any = None
        error: Exception | None = None
        try:
            while True:
                try:
                    effect = op.send(value) if error is None else op.throw(error)
                except StopIteration as stop:
                    return stop.value  # type: ignore[no-any-return]
                try:
                    value, error = self._handle(effect), None
                except Exception as exc:
                    value, error = None, exc
        finally:
            op.close()

    def _send(
        self,
        request: httpx.Request,
        *,
        stream: bool = False,
        auth: bool = True,
        follow: bool = False,
    ) -> httpx.Response:
        try:
            return self.client.send(
                request, stream=stream, auth=_auth_arg(auth), follow_redirects=follow
            )
        except Exception as exc:
            error = translate_exception(exc, request)
        raise error  # outside the handler: the httpx error (its request URL) is not kept as context

    def _handle(self, effect: Any) -> Any:
        if isinstance(effect, Call | Request):
            request = build_request(self.client, effect)
            auth = effect.auth if isinstance(effect, Request) else True
            follow = effect.follow_redirects if isinstance(effect, Request) else False
            return finish(self.runtime, effect, self._send(request, auth=auth, follow=follow))
        if isinstance(effect, Stream):
            return self._stream(effect)
        if isinstance(effect, Parallel):
            return list(self.imap(effect.ops, effect.limit))
        if isinstance(effect, Blocking):
            return effect.fn(*effect.args)
        if isinstance(effect, Sleep):
            time.sleep(effect.seconds)
            return None
        if isinstance(effect, GetConfig):
            return self.config
        raise TypeError(f"operation yielded {effect!r}, which is not an effect")

    def _stream(self, effect: Stream) -> httpx.Response:
        request = build_request(self.client, effect)
        response = self._send(
            request, stream=True, auth=effect.auth, follow=effect.follow_redirects
        )
        try:
            if response.status_code >= 400 and response.status_code not in effect.ok:
                response.read()
                check_response(
                    response,
                    ok=effect.ok,
                    message=self.runtime.message,
                    classify=self.runtime.classify,
                )
            if effect.on_response is not None:
                effect.on_response(response)
            for chunk in response.iter_bytes(effect.chunk_size):
                effect.sink(chunk)
        except httpx.HTTPError as exc:
            error: Exception | None = translate_exception(exc, request)
        else:
            error = None
        finally:
            response.close()
        if error is not None:
            raise error  # not as context of the httpx error, which holds the request URL
        return response

    def imap(
        self, ops: Iterable[Op[T]], window: int | None = None, *, ahead: int = AHEAD
    ) -> Iterator[T]:
        """Run ``ops`` with at most ``window`` in flight; yield results in order, lazily.

        A slow operation does not hold up the others: up to ``ahead`` x ``window`` operations are started
        ahead of the consumer (``window`` of them running at once), their results waiting in order.
        """
        import threading
        from concurrent.futures import ThreadPoolExecutor

        window = window or self.max_concurrency
        failed = threading.Event()  # once one fails, queued operations do not start
        first: list[BaseException] = []

        def guarded(op: Op[T]) -> T:
            if failed.is_set():
                op.close()
                raise _Abandoned
            try:
                return self.run(op)
            except BaseException as exc:
                if not failed.is_set():
                    first.append(exc)
                failed.set()
                raise

        source = iter(ops)
        with ThreadPoolExecutor(max_workers=window, thread_name_prefix="scibind") as pool:
            pending = collections.deque(
                pool.submit(guarded, op) for op in itertools.islice(source, window * ahead)
            )
            try:
                while pending:
                    try:
                        result = pending.popleft().result()
                    except _Abandoned:
                        raise first[0] from None
                    nxt = next(source, None)
                    if nxt is not None:
                        pending.append(pool.submit(guarded, nxt))
                    yield result
            finally:
                for future in pending:
                    future.cancel()


class AsyncDriver:
    """Runs operations with an :class:`httpx.AsyncClient`; parallel effects use tasks."""

    is_async = True

    def __init__(self, client: httpx.AsyncClient, runtime: Runtime, config: ClientConfig) -> None:
        self.client = client
        self.runtime = runtime
        self.config = config
        """The facade's configuration (what :class:`~scibind._core.effects.GetConfig` returns)."""
        self.max_concurrency = config.max_concurrency

    async def run(self, op: Op[T]) -> T:
        """Drive ``op`` to completion; errors from effects are thrown into it so it can handle them."""
        value: Any = None
        error: Exception | None = None
        try:
            while True:
                try:
                    effect = op.send(value) if error is None else op.throw(error)
                except StopIteration as stop:
                    return stop.value  # type: ignore[no-any-return]
                try:
                    value, error = await self._handle(effect), None
                except Exception as exc:
                    value, error = None, exc
        finally:
            op.close()

    async def _send(
        self,
        request: httpx.Request,
        *,
        stream: bool = False,
        auth: bool = True,
        follow: bool = False,
    ) -> httpx.Response:
        try:
            return await self.client.send(
                request, stream=stream, auth=_auth_arg(auth), follow_redirects=follow
            )
        except Exception as exc:
            error = translate_exception(exc, request)
        raise error  # outside the handler: the httpx error (its request URL) is not kept as context

    async def _handle(self, effect: Any) -> Any:
        if isinstance(effect, Call | Request):
            request = build_request(self.client, effect)
            auth = effect.auth if isinstance(effect, Request) else True
            follow = effect.follow_redirects if isinstance(effect, Request) else False
            return finish(self.runtime, effect, await self._send(request, auth=auth, follow=follow))
        if isinstance(effect, Stream):
            return await self._stream(effect)
        if isinstance(effect, Parallel):
            return [item async for item in self.imap(effect.ops, effect.limit)]
        if isinstance(effect, Blocking):
            import asyncio

            return await asyncio.to_thread(effect.fn, *effect.args)
        if isinstance(effect, Sleep):
            import asyncio

            await asyncio.sleep(effect.seconds)
            return None
        if isinstance(effect, GetConfig):
            return self.config
        raise TypeError(f"operation yielded {effect!r}, which is not an effect")

    async def _stream(self, effect: Stream) -> httpx.Response:
        request = build_request(self.client, effect)
        response = await self._send(
            request, stream=True, auth=effect.auth, follow=effect.follow_redirects
        )
        try:
            if response.status_code >= 400 and response.status_code not in effect.ok:
                await response.aread()
                check_response(
                    response,
                    ok=effect.ok,
                    message=self.runtime.message,
                    classify=self.runtime.classify,
                )
            if effect.on_response is not None:
                effect.on_response(response)
            async for chunk in response.aiter_bytes(effect.chunk_size):
                effect.sink(chunk)
        except httpx.HTTPError as exc:
            error: Exception | None = translate_exception(exc, request)
        else:
            error = None
        finally:
            await response.aclose()
        if error is not None:
            raise error  # not as context of the httpx error, which holds the request URL
        return response

    async def imap(
        self, ops: Iterable[Op[T]], window: int | None = None, *, ahead: int = AHEAD
    ) -> AsyncIterator[T]:
        """Run ``ops`` with at most ``window`` in flight; yield results in order, lazily.

        A slow operation does not hold up the others: up to ``ahead`` x ``window`` operations are started
        ahead of the consumer (``window`` of them running at once), their results waiting in order.
        """
        import asyncio

        window = window or self.max_concurrency
        slots = asyncio.Semaphore(window)
        first: list[BaseException] = []  # once one fails, queued operations do not start

        async def limited(op: Op[T]) -> T:
            async with slots:
                if first:
                    op.close()
                    raise _Abandoned
                try:
                    return await self.run(op)
                except BaseException as exc:
                    if not first:
                        first.append(exc)
                    raise

        source = iter(ops)
        pending = collections.deque(
            asyncio.ensure_future(limited(op)) for op in itertools.islice(source, window * ahead)
        )
        try:
            while pending:
                try:
                    result = await pending.popleft()
                except _Abandoned:
                    raise first[0] from None
                nxt = next(source, None)
                if nxt is not None:
                    pending.append(asyncio.ensure_future(limited(nxt)))
                yield result
        finally:
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
