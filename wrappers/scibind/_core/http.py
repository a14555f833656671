"""Build the httpx clients every facade uses: transport chain, timeouts, TLS, auth scoping, logging."""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections.abc import Iterable
from typing import Any

import httpx

from .._version import __version__
from ..config import ClientConfig
from ..errors import InsecureTLSWarning
from .retry import AsyncRetryTransport, RetryTransport
from .secrets import redact_free_text, redact_url

__all__ = ["build_async_client", "build_sync_client", "user_agent"]

log = logging.getLogger("scibind.http")


class _RedactingFilter(logging.Filter):
    """Redacts what httpx and httpcore log: URLs given as arguments (``HTTP Request: GET <url>`` at INFO)
    and httpcore's DEBUG traces, which repeat response headers verbatim (a redirect's ``Location`` with a
    signed URL or a token, ``Set-Cookie``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(
                redact_url(a)
                if isinstance(a, httpx.URL) or (isinstance(a, str) and "://" in a)
                else redact_free_text(a)
                if isinstance(a, str)
                else a
                for a in record.args
            )
        if isinstance(record.msg, str):
            record.msg = redact_free_text(record.msg)
        return True


_FILTER = _RedactingFilter()
# Filters apply where a record is made, not to records of child loggers: list every logger they use.
_LOGGERS = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
)


def install_log_redaction() -> None:
    """Make sure the loggers of httpx and httpcore never print secrets (idempotent)."""
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def user_agent(config: ClientConfig, service: str) -> str:
    """``scibind/<version> (<service>)``, or the configured agent."""
    return config.user_agent or f"scibind/{__version__} ({service})"


def _common(
    config: ClientConfig,
    base_url: str,
    auth: httpx.Auth | None,
    service: str,
    origins: Iterable[str],
) -> dict[str, Any]:
    from ..auth import ScopedAuth

    install_log_redaction()
    if config.verify is False:
        warnings.warn(
            f"TLS certificate verification is off for {redact_url(base_url)}",
            InsecureTLSWarning,
            stacklevel=4,
        )
    scoped = (
        ScopedAuth(auth, [base_url, *origins], allow_insecure_http=config.allow_insecure_http)
        if auth is not None
        else None
    )
    return {
        "base_url": base_url,
        "auth": scoped,
        "timeout": config.timeout.to_httpx(),
        "headers": {"User-Agent": user_agent(config, service), **config.headers},
        "follow_redirects": False,
        "trust_env": config.trust_env,
    }


_TLS_CONTEXTS: dict[tuple[Any, ...], Any] = {}
_TLS_LOCK = threading.Lock()


def tls_verify(config: ClientConfig) -> Any:
    """What to pass as the transport's ``verify``: one TLS context per process for each set of settings.

    Building a context loads the CA bundle (~20 ms, most of what making a client costs); contexts are safe to
    share between clients and threads. The key includes the environment variables httpx reads for it
    (``SSL_CERT_FILE``, ``SSL_CERT_DIR``) so a changed setting gets a new context.
    """
    if config.verify is False:
        return False
    env = (
        (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
        if config.trust_env
        else ()
    )
    key = (config.verify, config.trust_env, config.http2, *env)
    context = _TLS_CONTEXTS.get(key)
    if context is None:
        with _TLS_LOCK:
            context = _TLS_CONTEXTS.get(key)
            if context is None:
                if isinstance(config.verify, str):  # a CA bundle file or directory
                    import ssl

                    where = config.verify
                    context = (
                        ssl.create_default_context(capath=where)
                        if os.path.isdir(where)
                        else ssl.create_default_context(cafile=where)
                    )
                else:
                    context = httpx.create_ssl_context(verify=True, trust_env=config.trust_env)
                _TLS_CONTEXTS[key] = context
    return context


def _log_request(request: httpx.Request) -> None:
    log.debug("-> %s %s", request.method, redact_url(request.url))


def _log_response(response: httpx.Response) -> None:
    log.debug(
        "<- %s %s %s",
        response.status_code,
        response.request.method,
        redact_url(response.request.url),
    )


async def _alog_request(request: httpx.Request) -> None:
    _log_request(request)


async def _alog_response(response: httpx.Response) -> None:
    _log_response(response)


def build_sync_client(
    config: ClientConfig,
    base_url: str,
    *,
    auth: httpx.Auth | None = None,
    service: str = "http",
    transport: httpx.BaseTransport | None = None,
    origins: Iterable[str] = (),
) -> httpx.Client:
    """An :class:`httpx.Client` with scibind's transport chain; ``transport`` replaces the network layer."""
    inner = transport
    if inner is None:
        inner = httpx.HTTPTransport(
            verify=tls_verify(config),
            http2=config.http2,
            limits=config.httpx_limits(),
            proxy=config.proxy,
            trust_env=config.trust_env,
        )
        # imported here: it imports httpcore, which httpx itself imports only when a transport is made
        from .netio import enlarge_reads

        enlarge_reads(inner)  # 1 MiB socket reads: large downloads cost half the CPU
    chain = RetryTransport(
        inner,
        config.retry,
        max_concurrency=config.max_concurrency,
        max_response_bytes=config.max_response_bytes,
    )
    return httpx.Client(
        transport=chain,
        event_hooks={"request": [_log_request], "response": [_log_response]},
        **_common(config, base_url, auth, service, origins),
    )


def build_async_client(
    config: ClientConfig,
    base_url: str,
    *,
    auth: httpx.Auth | None = None,
    service: str = "http",
    transport: httpx.AsyncBaseTransport | None = None,
    origins: Iterable[str] = (),
) -> httpx.AsyncClient:
    """An :class:`httpx.AsyncClient` twin of :func:`build_sync_client`."""
    inner = transport
    if inner is None:
        inner = httpx.AsyncHTTPTransport(
            verify=tls_verify(config),
            http2=config.http2,
            limits=config.httpx_limits(),
            proxy=config.proxy,
            trust_env=config.trust_env,
        )
        from .netio import enlarge_reads

        enlarge_reads(inner)
    chain = AsyncRetryTransport(
        inner,
        config.retry,
        max_concurrency=config.max_concurrency,
        max_response_bytes=config.max_response_bytes,
    )
    return httpx.AsyncClient(
        transport=chain,
        event_hooks={"request": [_alog_request], "response": [_alog_response]},
        **_common(config, base_url, auth, service, origins),
    )
