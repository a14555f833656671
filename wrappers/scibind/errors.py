"""The one error hierarchy shared by every scibind client.

Every error that reaches a user is a :class:`ScibindError`. Errors about an HTTP exchange carry the method,
a URL with secrets removed, the status and the server's message; none of them ever holds a token.
"""

from __future__ import annotations

__all__ = [
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "ChecksumMismatchError",
    "ConfigurationError",
    "ConflictError",
    "ConnectionError",
    "CredentialsError",
    "InsecureTLSWarning",
    "InsecureTransportError",
    "MethodNotAllowedError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitedError",
    "ResponseFormatError",
    "ResponseTooLargeError",
    "ScibindError",
    "ServerError",
    "TimeoutError",
    "TransferError",
    "TransportError",
    "ValidationError",
]


class ScibindError(Exception):
    """Base class of every error raised by scibind."""


class ConfigurationError(ScibindError, ValueError):
    """Bad arguments or configuration given to a client (caught before any request)."""


class CredentialsError(ScibindError):
    """No usable credentials were found, or they could not be exchanged for a token."""


class InsecureTransportError(ScibindError):
    """Refused to send credentials over plain http to a host that is not loopback."""


class InsecureTLSWarning(UserWarning):
    """TLS certificate verification was switched off."""


class _HTTPContext(ScibindError):
    """An error tied to one HTTP exchange."""

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        self.message = message
        self.method = method
        self.url = url  # always redacted by the code that raises
        super().__init__(self._render())

    def _render(self) -> str:
        where = f"{self.method} {self.url}" if self.method and self.url else (self.url or "")
        return f"{self.message} ({where})" if where else self.message


class APIError(_HTTPContext):
    """The server answered with an error status (or an error payload)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str | None = None,
        url: str | None = None,
        body: str | None = None,
        code: str | int | None = None,
    ) -> None:
        self.status = status
        self.body = body  # at most a short excerpt of the response body
        self.code = code  # service-specific error code, when the server sends one
        super().__init__(message, method=method, url=url)

    def _render(self) -> str:
        prefix = f"HTTP {self.status}: " if self.status is not None else ""
        return prefix + super()._render()


class BadRequestError(APIError):
    """400: the server rejected the request."""


class ValidationError(BadRequestError):
    """400/422: the request body or parameters failed the server's validation."""


class AuthenticationError(APIError):
    """401: missing, invalid or expired credentials."""


class PermissionDeniedError(APIError):
    """403: authenticated, but not allowed."""


class NotFoundError(APIError):
    """404: no such resource (or not visible to this user)."""


class MethodNotAllowedError(APIError):
    """405: the resource does not allow this method (for example publishing a non-draft version)."""


class ConflictError(APIError):
    """409: the resource already exists or is in a conflicting state."""


class RateLimitedError(APIError):
    """429 after retries ran out; ``retry_after`` is the server's last hint in seconds, if any."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)  # type: ignore[arg-type]


class ServerError(APIError):
    """5xx after retries ran out; ``retry_after`` is the server's last ``Retry-After`` hint in seconds, if any
    (a 503 may carry one)."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)  # type: ignore[arg-type]


class ResponseFormatError(APIError):
    """The server answered, but the body is not what the API promises (bad JSON, wrong types, missing fields)."""


class ResponseTooLargeError(ResponseFormatError):
    """A buffered response exceeded ``ClientConfig.max_response_bytes``."""


class TransportError(_HTTPContext):
    """The exchange failed below HTTP (connection refused or reset, TLS, protocol error)."""


class ConnectionError(TransportError):
    """Could not connect, or the connection broke."""


class TimeoutError(TransportError):
    """A timeout or the retry time budget ran out."""


class TransferError(ScibindError):
    """An upload or download could not be completed."""


class ChecksumMismatchError(TransferError):
    """Bytes on disk or on the server do not match the expected digest."""

    def __init__(
        self, message: str, *, expected: str | None = None, actual: str | None = None
    ) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(f"{message} (expected {expected}, got {actual})")
