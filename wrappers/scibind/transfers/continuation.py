"""Continuing a transfer after a failure, under the client's :class:`~scibind.config.RetryPolicy`.

The retry transport repeats a *request*; a transfer that streams many bytes needs one more rule: after a
connection breaks in the middle of a body, carry on from where the data stopped (``Range: bytes=N-``, Midas
``offset=N``, or the server's upload offset) instead of starting over. Every transfer loop (ranged and
single-stream downloads, Midas downloads and offset uploads) asks one :class:`Continuation` whether, and after
how long, it may continue:

* a failure the transport already retried (an error status such as a persistent 503 or 429, or a failure to
  get an answer to an idempotent request) ends the transfer, unless bytes were made since the last failure;
* a failure in the middle of a body (reset, timeout while streaming, a non-idempotent upload cut short) is
  continued from where the data stopped; consecutive failures without progress are bounded by
  ``max_attempts``, and progress resets the count;
* waits use the policy's exponential backoff with jitter, or the ``Retry-After`` the error carries
  (:class:`~scibind.errors.RateLimitedError`, :class:`~scibind.errors.ServerError`); a hint longer than
  ``retry_after_max`` ends the transfer, as it ends the transport's retries;
* ``budget`` bounds the time spent without progress: a long transfer that keeps making progress is never cut
  off by it, a stalled one stops within it.

Progress is measured as a high-water mark of the bytes the transfer holds, so a server that makes the client
start over (no ``Range`` support) does not count as progress by sending the same first bytes again.

A :class:`Continuation` is pure bookkeeping (like :class:`~scibind._core.retry.RetryState`); operations get one
with :func:`continuation`, which asks the driver for the client's configuration (an effect), so the same code
runs sync and async.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

import attrs

from .. import errors
from .._core import effects as fx
from .._core.retry import backoff_delay
from ..config import ClientConfig, RetryPolicy

__all__ = ["Continuation", "continuation"]

log = logging.getLogger("scibind.transfers")


@attrs.define
class Continuation:
    """Whether and when one transfer continues after a failure. Thread-safe: parallel ranges share one.

    ``position`` arguments are the bytes the transfer holds (file length, bytes written, the server's upload
    offset). ``limit`` is an optional hard cap on continuations (the ``retries=`` argument some calls keep for
    compatibility); without it only the policy decides.
    """

    policy: RetryPolicy
    best: int = 0
    """The most bytes the transfer has held (progress is a new high-water mark)."""
    limit: int | None = None
    label: str = "transfer"
    clock: Callable[[], float] = time.monotonic
    rand: Callable[[], float] = random.random
    failures: int = attrs.field(default=0, init=False)
    """Consecutive failures without progress."""
    continued: int = attrs.field(default=0, init=False)
    since: float = attrs.field(default=0.0, init=False)
    """When the transfer started or last made progress (the budget counts from here)."""
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self.since = self.clock()

    def capped(self) -> bool:
        """Whether the explicit ``limit`` on continuations is used up (check before costly look-ups)."""
        return self.limit is not None and self.continued >= self.limit

    def after_failure(self, exc: Exception, position: int, *, retried: bool = False) -> float:
        """Seconds to wait before continuing from ``position``; raises ``exc`` when the transfer must stop.

        ``retried``: the failure came out of the retry transport, which already spent its attempts on it (an
        error status, or no answer to a request the transport may repeat).
        """
        with self._lock:
            now = self.clock()
            progressed = position > self.best
            if progressed:
                self.best = position
                self.failures = 0
                self.since = now
            else:
                self.failures += 1
            if self.capped() or (retried and not progressed):
                raise exc
            if self.failures >= self.policy.max_attempts:
                raise exc
            hint = (
                exc.retry_after
                if isinstance(exc, errors.RateLimitedError | errors.ServerError)
                else None
            )
            if hint is not None and hint > self.policy.retry_after_max:
                raise exc
            delay = (
                hint
                if hint is not None
                else backoff_delay(self.policy, max(self.failures, 1), self.rand)
            )
            if now + delay - self.since >= self.policy.budget:
                raise exc
            self.continued += 1
            log.info(
                "continuing %s from byte %d after %s (%d without progress, waiting %.2fs)",
                self.label,
                position,
                type(exc).__name__,
                self.failures,
                delay,
            )
            return delay

    def wait(self, exc: Exception, position: int, *, retried: bool = False) -> fx.Op[None]:
        """:meth:`after_failure`, then the wait (an effect); raises ``exc`` when the transfer must stop."""
        delay = self.after_failure(exc, position, retried=retried)
        if delay > 0:
            yield fx.Sleep(delay)


def continuation(
    position: int = 0, *, limit: int | None = None, label: str = "transfer"
) -> fx.Op[Continuation]:
    """A :class:`Continuation` under the client's retry policy, for a transfer that holds ``position`` bytes."""
    config: ClientConfig = yield fx.GetConfig()
    return Continuation(config.retry, best=position, limit=limit, label=label)
