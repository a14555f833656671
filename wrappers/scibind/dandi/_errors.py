"""How the DANDI Archive and its object store say what went wrong, and the facade's own errors."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import httpx

from .._core.responses import default_error_message
from ..errors import ScibindError, ValidationError

__all__ = ["DandisetValidationError", "SchemaVersionError", "dandi_error_message"]

_EXCERPT = 300


def _flatten(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "; ".join(_flatten(v) for v in value[:5])
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_flatten(v)}" for k, v in list(value.items())[:5])
    return json.dumps(value)


def _s3_error(content: bytes) -> tuple[str, str | None] | None:
    """``(message, code)`` from an S3 ``<Error>`` document, or None if the body is not one."""
    from xml.etree import ElementTree

    try:
        root = ElementTree.fromstring(content)
    except ElementTree.ParseError:
        return None
    if root.tag.rsplit("}", 1)[-1] != "Error":
        return None

    def text(tag: str) -> str | None:
        for node in root:
            if node.tag.rsplit("}", 1)[-1] == tag:
                return (node.text or "").strip() or None
        return None

    code, message = text("Code"), text("Message")
    return (f"{code}: {message}" if code and message else (message or code or "error")), code


def dandi_error_message(response: httpx.Response) -> tuple[str, str | int | None]:
    """The message of a DANDI error response.

    The API answers with DRF shapes (``{"detail": ...}``, ``{"field": ["msg", ...]}``, ``["msg", ...]``) or a
    bare JSON string; Django's own 404 is an HTML page; the object store answers S3 ``<Error>`` XML.
    """
    content = response.content
    ctype = response.headers.get("Content-Type", "").lower()
    stripped = content.lstrip()
    if "xml" in ctype or stripped.startswith((b"<?xml", b"<Error")):
        parsed = _s3_error(stripped)
        if parsed is not None:
            message, code = parsed
            return message[:_EXCERPT], code
    if "html" in ctype or stripped.startswith((b"<!doctype", b"<!DOCTYPE", b"<html")):
        return response.reason_phrase or "error", None
    try:
        body = json.loads(content) if content else None
    except (ValueError, UnicodeDecodeError):
        return default_error_message(response)
    if isinstance(body, dict):
        detail = body.get("detail")
        if isinstance(detail, str) and detail:
            code = body.get("code")
            return detail[:_EXCERPT], code if isinstance(code, str) else None
        if body:
            return _flatten(body)[:_EXCERPT], None
    if isinstance(body, list) and body:
        return _flatten(body)[:_EXCERPT], None
    if isinstance(body, str) and body:
        return body[:_EXCERPT], None
    return response.reason_phrase or "error", None


class SchemaVersionError(ScibindError):
    """The server's metadata schema version and scibind's models cannot be used together (see
    :meth:`~scibind.dandi.DandiClient.check_schema_version`)."""

    def __init__(self, message: str, *, server: str, client: str) -> None:
        self.server = server
        self.client = client
        super().__init__(message)


class DandisetValidationError(ValidationError):
    """A draft's metadata or assets failed the archive's validation (so it cannot be published)."""

    def __init__(
        self,
        message: str,
        *,
        version_errors: Sequence[Any] = (),
        asset_errors: Sequence[Any] = (),
    ) -> None:
        self.version_errors = list(version_errors)
        self.asset_errors = list(asset_errors)
        super().__init__(message)
