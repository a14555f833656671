"""Turn HTTP outcomes into :mod:`scibind.errors`: error statuses, bad bodies, transport failures."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from .. import errors
from .retry import BodyTooLarge, BudgetExceeded, RetryAfterTooLong, parse_retry_after
from .secrets import REDACTED, credentials_in, redact_url

__all__ = [
    "ErrorClass",
    "ErrorMessage",
    "check_response",
    "default_error_message",
    "error_for_status",
    "json_body",
    "redirect_error",
    "translate_exception",
]

# Extracts (message, code) from an error response; services override it for their body shapes.
ErrorMessage = Callable[[httpx.Response], tuple[str, str | int | None]]
# Picks the error class for a response when the status alone says too little (None: go by the status).
ErrorClass = Callable[[httpx.Response], "type[errors.APIError] | None"]

_STATUS_ERRORS: dict[int, type[errors.APIError]] = {
    400: errors.BadRequestError,
    401: errors.AuthenticationError,
    403: errors.PermissionDeniedError,
    404: errors.NotFoundError,
    405: errors.MethodNotAllowedError,
    409: errors.ConflictError,
    422: errors.ValidationError,
    429: errors.RateLimitedError,
}
_MESSAGE_KEYS = (
    "detail",
    "message",
    "msg",
    "error_message",
    "error_description",
    "error",
    "errors",
    "status",
)
_EXCERPT = 300


def _flatten(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "; ".join(_flatten(v) for v in value[:5])
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_flatten(v)}" for k, v in list(value.items())[:5])
    return json.dumps(value)


def default_error_message(response: httpx.Response) -> tuple[str, str | int | None]:
    """The server's message from common JSON error shapes (DRF ``detail``, Flask ``msg``/``message``, ...)."""
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        text = response.text.strip() if response.content else ""
        return (text[:_EXCERPT] or response.reason_phrase or "error"), None
    if isinstance(body, dict):
        code = body.get("code")
        code = code if isinstance(code, str | int) and not isinstance(code, bool) else None
        for key in _MESSAGE_KEYS:
            if body.get(key):
                return _flatten(body[key])[:_EXCERPT], code
        return _flatten(body)[:_EXCERPT], code
    return _flatten(body)[:_EXCERPT], None


def error_for_status(
    response: httpx.Response,
    message: ErrorMessage = default_error_message,
    classify: ErrorClass | None = None,
) -> errors.APIError:
    """The typed error for an error response (``classify`` may pick the class from the body)."""
    status = response.status_code
    cls = (classify(response) if classify else None) or _STATUS_ERRORS.get(status)
    cls = cls or (errors.ServerError if status >= 500 else errors.APIError)
    text, code = message(_without_credentials(response))
    common: dict[str, Any] = {
        "status": status,
        "method": response.request.method,
        "url": redact_url(response.request.url),
        "body": text,
        "code": code,
    }
    if issubclass(cls, errors.RateLimitedError | errors.ServerError):
        hint = parse_retry_after(response.headers.get("Retry-After"))
        return cls(text, retry_after=hint, **common)
    return cls(text, **common)


def _without_credentials(response: httpx.Response) -> httpx.Response:
    """``response`` with the credentials its request carried removed from the body (servers that echo the
    Authorization header or a signed URL in an error message), before any message is cut from it."""
    request = response.request
    form = None
    if "x-www-form-urlencoded" in request.headers.get("Content-Type", ""):
        try:
            form = request.content.decode()
        except (httpx.RequestNotRead, UnicodeDecodeError):
            form = None
    secrets = credentials_in(request.headers.multi_items(), request.url, form=form)
    content = response.content
    if not secrets or not any(s.encode() in content for s in secrets):
        return response
    for secret in secrets:
        content = content.replace(secret.encode(), REDACTED.encode())
    headers = [
        (k, v)
        for k, v in response.headers.multi_items()
        if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")
    ]
    return httpx.Response(response.status_code, headers=headers, content=content, request=request)


def check_response(
    response: httpx.Response,
    *,
    ok: tuple[int, ...] = (),
    message: ErrorMessage = default_error_message,
    classify: ErrorClass | None = None,
) -> None:
    """Raise the typed error unless the status is 2xx/3xx or listed in ``ok``. The body must be read."""
    if response.status_code < 400 or response.status_code in ok:
        return
    raise error_for_status(response, message, classify)


def redirect_error(response: httpx.Response) -> errors.APIError:
    """The error for a redirect the API does not document (it is not followed: credentials stay put)."""
    location = response.headers.get("Location")
    try:
        target = redact_url(response.request.url.join(location)) if location else "nowhere"
    except httpx.InvalidURL:
        target = "an invalid URL"
    return errors.APIError(
        f"unexpected redirect to {target} (not followed)",
        status=response.status_code,
        method=response.request.method,
        url=redact_url(response.request.url),
    )


def json_body(response: httpx.Response) -> Any:
    """The JSON body, or :class:`~scibind.errors.ResponseFormatError` naming what was wrong."""
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise errors.ResponseFormatError(
            f"expected a JSON body, got {response.headers.get('Content-Type', 'no content type')}: {exc}",
            status=response.status_code,
            method=response.request.method,
            url=redact_url(response.request.url),
        ) from None


def format_error(
    request: httpx.Request, what: str, exc: BaseException | None = None
) -> errors.ResponseFormatError:
    """A ResponseFormatError for a body that does not fit the API's schema."""
    detail = f"{what}: {type(exc).__name__}: {exc}" if exc is not None else what
    return errors.ResponseFormatError(
        detail[:500], method=request.method, url=redact_url(request.url)
    )


def translate_exception(exc: Exception, request: httpx.Request | None) -> Exception:
    """Map an httpx/transport-layer exception to the scibind hierarchy (others are returned unchanged)."""
    method = request.method if request is not None else None
    url = redact_url(request.url) if request is not None else None
    if isinstance(exc, errors.ScibindError):
        return exc
    if isinstance(exc, RetryAfterTooLong):
        status = exc.response.status_code
        message = (
            f"server asked to retry after {exc.retry_after:.0f}s, longer than the policy allows"
        )
        if status == 429 or status >= 500:  # a 503 stays a ServerError, with the hint
            hinted = errors.RateLimitedError if status == 429 else errors.ServerError
            return hinted(
                message, retry_after=exc.retry_after, status=status, method=method, url=url
            )
        return errors.APIError(message, status=status, method=method, url=url)
    if isinstance(exc, BodyTooLarge):
        return errors.ResponseTooLargeError(str(exc), method=method, url=url)
    if isinstance(exc, BudgetExceeded):
        return errors.TimeoutError(str(exc), method=method, url=url)
    if isinstance(exc, httpx.TimeoutException):
        return errors.TimeoutError(f"timed out ({type(exc).__name__})", method=method, url=url)
    if isinstance(exc, httpx.TransportError | httpx.StreamError):
        kind = (
            errors.ConnectionError
            if isinstance(exc, httpx.NetworkError | httpx.ProtocolError)
            else errors.TransportError
        )
        return kind(f"{type(exc).__name__}: {_short(exc)}", method=method, url=url)
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return errors.ConfigurationError(f"invalid URL: {exc}")
    return exc


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:200]
