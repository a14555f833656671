"""dserver-specific errors, and how dserver's token layer words its refusals.

dserver checks tokens with Flask-JWT-Extended, which refuses a request in two ways: 401 ``{"msg"}`` (no
``Authorization`` header, not ``Bearer``, an expired token) and **422** ``{"msg"}`` for a token it cannot use
("Not enough segments", "Signature verification failed", "The specified alg value is not allowed", "Subject must be
a string", "Only non-refresh tokens are allowed", "The token is not yet valid (nbf)", a bad ``Authorization``
header). Both are authentication failures, so both become :class:`~scibind.errors.AuthenticationError` (and make a
minted token be minted again, see :mod:`._auth`). flask-smorest's own 422s (request validation) have the body
``{"code", "status", "errors"}`` and stay :class:`~scibind.errors.ValidationError`.
"""

from __future__ import annotations

from typing import Any

import httpx

from .._core.responses import default_error_message
from ..errors import APIError, AuthenticationError, ResponseFormatError

__all__ = [
    "ReadmeFormatError",
    "dserver_error_class",
    "dserver_error_message",
    "is_token_rejection",
]


def _jwt_message(response: httpx.Response) -> str | None:
    """The ``msg`` of a Flask-JWT-Extended error body (exactly ``{"msg": str}``), else None."""
    try:
        body: Any = response.json()
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(body, dict) and set(body) == {"msg"} and isinstance(body["msg"], str):
        return str(body["msg"])
    return None


def is_token_rejection(response: httpx.Response) -> bool:
    """Whether dserver refused the request's credentials: any 401, or a 422 from the JWT layer."""
    if response.status_code == 401:
        return True
    return response.status_code == 422 and _jwt_message(response) is not None


def dserver_error_class(response: httpx.Response) -> type[APIError] | None:
    """The dserver runtime's error classifier: a 422 from the JWT layer is an :class:`AuthenticationError`
    (wherever it happens: calls, raw requests, streams); everything else goes by its status."""
    if response.status_code == 422 and _jwt_message(response) is not None:
        return AuthenticationError
    return None


def dserver_error_message(response: httpx.Response) -> tuple[str, str | int | None]:
    """(message, code) of a dserver error response; the JWT layer's refusals read "dserver refused the token"."""
    message = _jwt_message(response) if response.status_code in (401, 422) else None
    if message is not None:
        return f"dserver refused the token: {message}", None
    return default_error_message(response)


class ReadmeFormatError(ResponseFormatError):
    """A dataset's README is not valid YAML. ``uri`` names the dataset; ``text`` is the README as stored (also
    what :meth:`~scibind.dserver.DServer.get_readme` returns)."""

    def __init__(self, uri: str, text: str, problem: str) -> None:
        self.uri = uri
        self.text = text
        super().__init__(f"the README of {uri} is not valid YAML: {problem}")
