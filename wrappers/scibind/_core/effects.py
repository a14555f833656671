"""Effects: what an operation asks its driver to do.

Facade logic is written once, as generator functions ("operations") that ``yield`` these effect objects and
receive their results. :mod:`scibind._core.drivers` executes them, synchronously or with asyncio. Effects hold
no I/O; they are plain values, easy to inspect in tests.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Mapping
from types import ModuleType
from typing import Any, TypeAlias, TypeVar

import attrs

__all__ = [
    "Blocking",
    "Call",
    "Effect",
    "GetConfig",
    "Op",
    "Parallel",
    "Request",
    "Sleep",
    "Stream",
]

T = TypeVar("T")


@attrs.frozen
class Call:
    """Run a generated endpoint module (``_get_kwargs`` + ``_build_response``) through the shared client.

    Returns the generated ``Response[T]``; an error status raises the matching :mod:`scibind.errors` class,
    unless it is listed in ``ok``. ``idempotent=True`` lets the retry layer repeat a non-idempotent method.
    The parsed model is checked against its annotations (a wrong JSON type raises ResponseFormatError);
    ``validate=False`` skips that check for an operation that reads ``content`` itself because the spec's
    model is narrower than what the server legitimately sends.
    """

    endpoint: ModuleType
    kwargs: Mapping[str, Any] = attrs.field(factory=dict)
    idempotent: bool | None = None
    ok: tuple[int, ...] = ()
    validate: bool = True


@attrs.frozen
class Request:
    """A raw HTTP request; returns the :class:`httpx.Response` with its body read.

    ``url`` may be relative to the service base URL or absolute (presigned storage URLs). Credentials are only
    attached for the service's own origin, and only when ``auth`` is true.
    """

    method: str
    url: str
    params: Mapping[str, Any] | None = None
    json: Any = None
    content: Any = None
    data: Mapping[str, Any] | None = None
    files: Any = None
    headers: Mapping[str, str] | None = None
    idempotent: bool | None = None
    ok: tuple[int, ...] = ()
    auth: bool = True
    follow_redirects: bool = False


@attrs.frozen
class Stream:
    """A streaming GET (or other method): ``sink`` receives each chunk; returns the response (body consumed).

    The status is checked before the first chunk; ``ok`` lists extra statuses treated as success.
    """

    method: str
    url: str
    sink: Callable[[bytes], None]
    headers: Mapping[str, str] | None = None
    params: Mapping[str, Any] | None = None
    ok: tuple[int, ...] = ()
    auth: bool = True
    follow_redirects: bool = False
    chunk_size: int | None = None
    """None passes chunks on as they arrive, so an interrupted body loses no received bytes."""
    on_response: Callable[[Any], None] | None = None
    """Called with the response (headers only) before the first chunk; raise to refuse the body."""


@attrs.frozen
class Parallel:
    """Run sub-operations concurrently (at most ``limit`` at once); returns their results in order."""

    ops: Iterable[Generator[Any, Any, Any]]
    limit: int | None = None


@attrs.frozen
class Blocking:
    """CPU- or disk-bound work: inline for sync drivers, in a worker thread for async drivers."""

    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()


@attrs.frozen
class Sleep:
    """Wait; ``time.sleep`` or ``asyncio.sleep``."""

    seconds: float


@attrs.frozen
class GetConfig:
    """Ask for the client's :class:`~scibind.config.ClientConfig` (e.g. the ``RetryPolicy`` that governs how a
    transfer continues after a failure); returns it, no I/O."""


Effect: TypeAlias = Call | Request | Stream | Parallel | Blocking | Sleep | GetConfig


# An operation: yields effects, receives their results, returns T.
Op: TypeAlias = Generator[Any, Any, T]
