"""Client configuration shared by every service: timeouts, retries, TLS, limits.

Defaults are safe: timeouts on, TLS verification on, retries only for idempotent requests within a time
budget, and a bound on concurrent requests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    import httpx

__all__ = ["DEFAULT_TIMEOUT", "ClientConfig", "RetryPolicy", "Timeout"]


@attrs.frozen
class Timeout:
    """Per-phase timeouts in seconds (as :class:`httpx.Timeout`); ``None`` means no limit for that phase."""

    connect: float | None = 10.0
    read: float | None = 60.0
    write: float | None = 60.0
    pool: float | None = 30.0

    def to_httpx(self) -> httpx.Timeout:
        import httpx

        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write, pool=self.pool)


DEFAULT_TIMEOUT = Timeout()


@attrs.frozen
class RetryPolicy:
    """When and how long to retry.

    * Only idempotent methods (``idempotent_methods``) are retried, unless a call is marked idempotent.
    * Statuses in ``retry_statuses`` and transport errors are retried.
    * Waits grow exponentially (``backoff_base * 2**n``, capped at ``backoff_max``) with jitter; a server's
      ``Retry-After`` (seconds or HTTP-date) replaces the backoff when present, up to ``retry_after_max``.
      A longer Retry-After stops retrying and surfaces :class:`~scibind.errors.RateLimitedError`.
    * ``budget`` bounds the whole call, all attempts and waits included (and reading a buffered body).
    """

    max_attempts: int = attrs.field(default=5, validator=attrs.validators.ge(1))
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    jitter: float = attrs.field(
        default=0.5, validator=[attrs.validators.ge(0), attrs.validators.le(1)]
    )
    retry_after_max: float = 60.0
    budget: float = 120.0
    retry_statuses: frozenset[int] = frozenset({408, 429, 500, 502, 503, 504})
    idempotent_methods: frozenset[str] = frozenset(
        {"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"}
    )

    @classmethod
    def none(cls) -> RetryPolicy:
        """A policy that never retries."""
        return cls(max_attempts=1)


@attrs.frozen
class ClientConfig:
    """Everything about how a client talks HTTP. Immutable; use :func:`attrs.evolve` to derive variants."""

    timeout: Timeout = DEFAULT_TIMEOUT
    retry: RetryPolicy = attrs.field(factory=RetryPolicy)
    verify: bool | str = True
    """TLS verification: True, False (warns :class:`~scibind.errors.InsecureTLSWarning`) or a CA bundle path."""
    user_agent: str | None = None
    proxy: str | None = None
    max_concurrency: int = attrs.field(default=8, validator=attrs.validators.ge(1))
    """Most requests in flight at once through one client (also bounds parallel pages and parts)."""
    max_connections: int = 100
    max_keepalive_connections: int = 20
    max_response_bytes: int = 256 * 1024 * 1024
    """Largest body read into memory for a non-streaming call."""
    allow_insecure_http: bool = False
    """Allow credentials over plain http to non-loopback hosts (warns). Leave off."""
    http2: bool = False
    trust_env: bool = True
    headers: dict[str, str] = attrs.field(factory=dict)

    def httpx_limits(self) -> Any:
        import httpx

        return httpx.Limits(
            max_connections=max(self.max_connections, self.max_concurrency),
            max_keepalive_connections=max(self.max_keepalive_connections, self.max_concurrency),
        )
