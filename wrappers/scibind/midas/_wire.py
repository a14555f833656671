"""How scibind talks to Midas' single JSON endpoint (see ``specs/midas/README.md``).

* :class:`MidasTransport` / :class:`AsyncMidasTransport` wrap the network transport and turn the generated
  client's ``<base>/api/json/<name>?method=<name>`` into ``<base>/api/json?method=<name>``, and drop an empty
  ``token`` parameter (the facade's placeholder when no one is signed in);
* :func:`detect` raises the typed error for a ``{"stat": "fail", "code": ...}`` answer, whatever its HTTP status.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx

from .. import errors
from .._core.secrets import redact_url

__all__ = [
    "AsyncMidasTransport",
    "MidasTransferError",
    "MidasTransport",
    "detect",
    "midas_error",
    "rewrite",
]

INVALID_TOKEN = -101
UPLOAD_FAILED = -105

_CODES: dict[int, type[errors.APIError]] = {
    -1: errors.BadRequestError,
    -100: errors.ServerError,
    -101: errors.AuthenticationError,
    -150: errors.BadRequestError,
    -151: errors.PermissionDeniedError,
    -153: errors.MethodNotAllowedError,
    403: errors.PermissionDeniedError,
    404: errors.NotFoundError,
}
_TRANSFER_CODES = frozenset({-105, -140, -141})


class MidasTransferError(errors.TransferError):
    """An upload failed on the server (-105 short upload, -140 token generation, -141 invalid upload token)."""

    def __init__(self, message: str, *, code: int) -> None:
        self.code = code
        super().__init__(message)


def _is_form(request: httpx.Request) -> bool:
    ctype: str = request.headers.get("Content-Type", "")
    return ctype.startswith("application/x-www-form-urlencoded")


def rewrite(request: httpx.Request) -> httpx.Request:
    """The request Midas understands: the method name out of the path, no empty ``token`` (pure)."""
    url = request.url
    head, _, last = url.path.rpartition("/")
    if head.endswith("/api/json") and last and last == url.params.get("method"):
        url = url.copy_with(path=head)
    if url.params.get("token") == "":
        url = url.copy_remove_param("token")
    if _is_form(request) and isinstance(request.stream, httpx.ByteStream):
        pairs = parse_qsl(request.content.decode(), keep_blank_values=True)
        kept = [(k, v) for k, v in pairs if not (k == "token" and v == "")]
        if len(kept) != len(pairs):
            body = urlencode(kept).encode()
            headers = request.headers.copy()
            headers["Content-Length"] = str(len(body))
            return httpx.Request(
                request.method, url, headers=headers, content=body, extensions=request.extensions
            )
    if url is request.url:
        return request
    return httpx.Request(
        request.method,
        url,
        headers=request.headers,
        stream=request.stream,
        extensions=request.extensions,
    )


class MidasTransport(httpx.BaseTransport):
    """Sync transport wrapper applying :func:`rewrite` before the network transport."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.inner.handle_request(rewrite(request))

    def close(self) -> None:
        self.inner.close()


class AsyncMidasTransport(httpx.AsyncBaseTransport):
    """Async twin of :class:`MidasTransport`."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.inner.handle_async_request(rewrite(request))

    async def aclose(self) -> None:
        await self.inner.aclose()


def envelope(content: bytes) -> dict[str, Any] | None:
    """The JSON envelope of a Midas answer, or ``None`` if the body is not one."""
    if content.lstrip()[:1] != b"{":
        return None
    try:
        body = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) and "stat" in body else None


def fail_code(body: dict[str, Any]) -> int | None:
    """The integer code of a ``stat: fail`` envelope (``None`` for success)."""
    if body.get("stat") != "fail":
        return None
    try:
        return int(body.get("code"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return -100


def midas_error(response: httpx.Response, body: dict[str, Any]) -> Exception:
    """The scibind error for a ``stat: fail`` envelope."""
    code = fail_code(body)
    assert code is not None
    request = response.request
    name = request.url.params.get("method") or "midas"
    text = f"{name}: {body.get('message') or 'failed'} (Midas code {code})"
    if code in _TRANSFER_CODES:
        return MidasTransferError(text, code=code)
    cls = _CODES.get(code, errors.APIError)
    return cls(
        text,
        status=response.status_code,
        method=request.method,
        url=redact_url(request.url),
        body=str(body.get("message", ""))[:300],
        code=code,
    )


def detect(response: httpx.Response) -> None:
    """Raise for a ``stat: fail`` answer (Midas reports errors with HTTP 200)."""
    body = envelope(response.content)
    if body is not None and body.get("stat") == "fail":
        raise midas_error(response, body)
