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
    from ._models import SubmissionResult

__all__ = ["GraphQLError", "SubmissionError", "gen3_error_message"]

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
