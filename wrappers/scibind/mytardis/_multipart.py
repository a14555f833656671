"""A streaming multipart/form-data body: one file part read from disk, then text fields computed from it.

MyTardis' upload takes ``attached_file`` and ``json_data`` (which carries the file's md5). Django parses the
whole body before the view runs, so the file can come first: its md5 is computed while the bytes go out and
``json_data`` is rendered from it at the end. The file is read once per send, never whole into memory.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from .. import errors

__all__ = ["FileFirstMultipart"]

CHUNK = 256 * 1024
_DIGEST_HEX = 32  # an md5 in hex: every rendering of the trailing fields has the same length

_FORM_ESCAPES = {
    '"': "%22",
    "\\": "\\\\",
    **{chr(c): f"%{c:02X}" for c in range(0x20) if c != 0x1B},
}
_FORM_ESCAPE_RE = re.compile("|".join(re.escape(c) for c in _FORM_ESCAPES))


def _param(name: str, value: str) -> bytes:
    """``name="value"`` for a Content-Disposition header, escaped the way browsers (and httpx) do."""
    escaped = _FORM_ESCAPE_RE.sub(lambda m: _FORM_ESCAPES[m.group(0)], value)
    return f'{name}="{escaped}"'.encode()


TrailingFields = Callable[[str], list[tuple[str, str]]]
"""Given the hex md5 of the file as sent, the text fields that follow it (``[(name, value), ...]``)."""


class _Pass:
    """One send of the body: hashes and counts the file bytes as they go out."""

    def __init__(self, body: FileFirstMultipart) -> None:
        self.body = body
        self.md5 = hashlib.md5()
        self.left = body.size

    def want(self) -> int:
        """How many bytes to read next (0 when the whole file has been sent)."""
        return min(self.body.chunk_size, self.left)

    def take(self, chunk: bytes) -> bytes:
        if not chunk:
            raise errors.TransferError(
                f"{self.body.path} shrank while it was being uploaded "
                f"({self.body.size - self.left} of {self.body.size} bytes sent)"
            )
        self.left -= len(chunk)
        self.md5.update(chunk)
        if self.body.on_chunk is not None:
            self.body.on_chunk(chunk)
        return chunk

    def tail(self) -> bytes:
        digest = self.md5.hexdigest()
        tail = self.body._tail(digest)
        if len(tail) != self.body._tail_length:  # Content-Length came from another rendering
            raise errors.TransferError("the multipart fields after the file changed length")
        self.body.sent_md5 = digest
        return tail


class FileFirstMultipart(httpx.SyncByteStream, httpx.AsyncByteStream):
    """``multipart/form-data``: the file part (streamed), then text fields rendered from its md5.

    Exactly ``size`` bytes of the file (its size when the body was made) are sent: a file that grows meanwhile
    is sent as it was up to ``size`` and the md5 is that of the bytes sent; a file that shrinks fails with
    :class:`~scibind.errors.TransferError` (the declared Content-Length cannot be met). Every iteration
    re-opens the file and starts over (``rewindable``), so a retry sends a complete body; ``on_start`` runs
    at the start of each pass. The async iteration reads the file in a worker thread.
    """

    rewindable = True

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        field: str,
        filename: str,
        content_type: str,
        trailing: TrailingFields,
        size: int | None = None,
        chunk_size: int = CHUNK,
        on_chunk: Callable[[bytes], None] | None = None,
        on_start: Callable[[], None] | None = None,
        boundary: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.size = self.path.stat().st_size if size is None else size
        self.chunk_size = chunk_size
        self.on_chunk = on_chunk
        self.on_start = on_start
        self.boundary = boundary or os.urandom(16).hex()
        self.sent_md5: str | None = None
        """The md5 of the file bytes of the last complete pass (what ``json_data`` carried)."""
        self._trailing = trailing
        self._head = (
            f"--{self.boundary}\r\n".encode()
            + b"Content-Disposition: form-data; "
            + _param("name", field)
            + b"; "
            + _param("filename", filename)
            + b"\r\nContent-Type: "
            + content_type.encode("latin-1")
            + b"\r\n\r\n"
        )
        self._tail_length = len(self._tail("0" * _DIGEST_HEX))
        self._length = len(self._head) + self.size + self._tail_length

    def _tail(self, digest: str) -> bytes:
        parts = [b"\r\n"]
        for name, value in self._trailing(digest):
            parts += [
                f"--{self.boundary}\r\n".encode(),
                b"Content-Disposition: form-data; " + _param("name", name) + b"\r\n\r\n",
                value.encode(),
                b"\r\n",
            ]
        parts.append(f"--{self.boundary}--\r\n".encode())
        return b"".join(parts)

    @property
    def content_type(self) -> str:
        """The ``Content-Type`` header value, with this body's boundary."""
        return f"multipart/form-data; boundary={self.boundary}"

    def headers(self) -> dict[str, str]:
        """``Content-Type`` and ``Content-Length`` of this body."""
        return {"Content-Type": self.content_type, "Content-Length": str(self._length)}

    def __len__(self) -> int:
        return self._length

    def _begin(self) -> _Pass:
        if self.on_start is not None:
            self.on_start()
        return _Pass(self)

    def __iter__(self) -> Iterator[bytes]:
        state = self._begin()
        yield self._head
        with open(self.path, "rb", buffering=0) as f:
            while n := state.want():
                yield state.take(f.read(n))
        yield state.tail()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        import asyncio

        from ..transfers.streams import open_off_loop

        state = self._begin()
        yield self._head
        f: Any = await open_off_loop(lambda: open(self.path, "rb", buffering=0))  # noqa: SIM115
        try:
            while n := state.want():
                yield state.take(await asyncio.to_thread(f.read, n))
        finally:
            f.close()  # no I/O wait for a file only read from
        yield state.tail()
