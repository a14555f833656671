"""Gen3-specific errors and how Gen3 services word theirs (Fence HTML pages, S3 XML, JSON ``message``/``error``)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import httpx

from .._core.responses import default_error_message
from ..errors import APIError, ScibindError
from ._auth import fence_message

if TYPE_CHECKING:
    from ._models import DeletionResult, SubmissionResult

__all__ = [
    "DeletionError",
    "GraphQLError",
    "IndexPendingError",
    "IndexRecordConflictError",
    "SubmissionError",
    "gen3_error_message",
]

_XML_CODE = re.compile(r"<Code>(.*?)</Code>", re.S)
_XML_MESSAGE = re.compile(r"<Message>(.*?)</Message>", re.S)


def gen3_error_message(response: httpx.Response) -> tuple[str, str | int | None]:
    """(message, code) from a Gen3 error response: Fence's HTML pages, S3's XML errors, JSON bodies."""
    ctype = response.headers.get("Content-Type", "").lower()
    if "html" in ctype:
        return fence_message(response), None
    if "xml" in ctype:
        text = response.text
        message, code = _XML_MESSAGE.search(text), _XML_CODE.search(text)
        if message:
            return message.group(1).strip()[:300], code.group(1).strip() if code else None
    return default_error_message(response)


class GraphQLError(APIError):
    """Peregrine answered a GraphQL query with ``errors`` (with status 200 or 400).

    ``errors`` holds the server's messages; ``data`` whatever partial result came with them.
    """

    def __init__(
        self,
        errors: Sequence[Any],
        *,
        data: Any = None,
        status: int | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        self.errors = [e.get("message", str(e)) if isinstance(e, dict) else str(e) for e in errors]
        self.data = data
        message = "GraphQL query failed: " + "; ".join(self.errors[:5])
        super().__init__(message[:500], status=status, method=method, url=url, body=message[:300])


class SubmissionError(ScibindError):
    """Some records were not submitted; ``result`` lists what succeeded and what failed (with the messages)."""

    def __init__(self, result: SubmissionResult) -> None:
        self.result = result
        first = result.failed[0] if result.failed else None
        detail = f"; first: {first.describe()}" if first is not None else ""
        aborted = f"; stopped by: {result.error}" if result.error is not None else ""
        super().__init__(
            f"{len(result.failed)} of {len(result.failed) + len(result.succeeded)} records "
            f"failed{detail}{aborted}"
        )


class IndexPendingError(ScibindError):
    """An upload whose bytes are stored but whose index record is still blank, and the client may not fill it.

    Filling a blank record needs indexd ``update`` (or ``file_upload``) rights, which many users do not have;
    Gen3's indexing job fills the record from the stored object instead, usually within minutes. ``guid`` is
    the file's GUID (``index_record(guid)`` shows the record once indexed); ``reason`` is the refusal.
    """

    def __init__(self, name: str, guid: str, reason: ScibindError) -> None:
        self.guid = guid
        self.reason = reason
        status = getattr(reason, "status", None)
        super().__init__(
            f"{name} was uploaded as {guid} and its bytes are stored, but its index record is still "
            f"blank and this client may not fill it (HTTP {status}); Gen3's indexing job fills it: "
            f"check index_record({guid!r}) later, do not upload again"
        )


class IndexRecordConflictError(ScibindError):
    """The index record of an upload was filled by someone else with values that do not describe the upload.

    ``field`` is ``size``, ``md5`` or ``urls``; ``expected`` what the upload has, ``actual`` what the record says.
    """

    def __init__(self, name: str, guid: str, field: str, expected: str, actual: str) -> None:
        self.guid = guid
        self.field = field
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"{name}: the index record {guid} was filled with another {field} "
            f"(expected {expected}, found {actual})"
        )


class DeletionError(ScibindError):
    """Some entities were not deleted; ``result`` tells which (with sheepdog's messages, e.g. the dependents
    that block a deletion)."""

    def __init__(self, result: DeletionResult) -> None:
        self.result = result
        first = result.failed[0] if result.failed else None
        detail = f"; first: {first.describe()}" if first is not None else ""
        aborted = f"; stopped by: {result.error}" if result.error is not None else ""
        super().__init__(
            f"{len(result.failed)} entities not deleted ({len(result.deleted)} deleted)"
            f"{detail}{aborted}"
        )
