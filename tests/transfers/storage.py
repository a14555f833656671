"""A presigned-URL object store for transfer tests: Range GETs, PUT with md5 ETags, and fault knobs."""

from __future__ import annotations

import hashlib
import re
import threading

import httpx
from scibind.testing._base import FakeService, route


class _Cut(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body that stops with a connection reset after ``keep`` bytes."""

    def __init__(self, data: bytes, keep: int) -> None:
        self.data, self.keep = data, keep

    def __iter__(self):
        yield self.data[: self.keep]
        raise httpx.ReadError("connection reset by peer")

    async def __aiter__(self):
        yield self.data[: self.keep]
        raise httpx.ReadError("connection reset by peer")


class Storage(FakeService):
    default_origins = {"api": "https://storage.test"}

    def __init__(self) -> None:
        super().__init__()
        self.objects: dict[str, bytes] = {}
        self.served = 0  # body bytes sent
        self.gets = 0
        self.puts: list[int] = []  # part numbers received
        self.cut_next: list[int] = []  # cut the next GET bodies after these many bytes
        self.fail_gets_after: int | None = None  # refuse every GET once this many were served
        self.slow_down_retry_after: str | None = (
            None  # Retry-After of those refusals (503 SlowDown)
        )
        self.cut_every: int | None = None  # cut every GET body after these many bytes
        self.expire_once = False
        self.ignore_range = False
        self.bad_etag_for: set[int] = set()
        self.corrupt = False
        self.count_lock = threading.Lock()

    def signed(self, key: str) -> str:
        return self.url(f"/{key}") + "?X-Amz-Signature=deadbeef&X-Amz-Expires=600"

    @route("GET", r"/(?P<key>[^?]+)")
    def get(self, request: httpx.Request, key: str) -> httpx.Response:
        if "authorization" in request.headers:
            return httpx.Response(400, text="<Error><Code>InvalidArgument</Code></Error>")
        with self.count_lock:
            self.gets += 1
            if self.fail_gets_after is not None and self.gets > self.fail_gets_after:
                hint = self.slow_down_retry_after
                return httpx.Response(
                    503, text="SlowDown", headers={"Retry-After": hint} if hint else {}
                )
            if self.expire_once:
                self.expire_once = False
                return httpx.Response(
                    403,
                    text="<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
                )
            cut = self.cut_next.pop(0) if self.cut_next else self.cut_every
        data = self.objects.get(key)
        if data is None:
            return httpx.Response(404)
        if self.corrupt:
            data = data[:-1] + bytes([data[-1] ^ 1])
        status, headers = (
            200,
            {"ETag": f'"{hashlib.md5(data).hexdigest()}"', "Accept-Ranges": "bytes"},
        )
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", request.headers.get("Range", ""))
        body = data
        if m and not self.ignore_range:
            start = int(m.group(1))
            end = int(m.group(2)) if m.group(2) else len(data) - 1
            body = data[start : end + 1]
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        with self.count_lock:
            self.served += len(body) if cut is None else min(cut, len(body))
        if cut is not None:
            return httpx.Response(status, headers=headers, stream=_Cut(body, cut))
        return httpx.Response(status, headers=headers, content=body)

    @route("PUT", r"/(?P<key>[^?]+)")
    def put(self, request: httpx.Request, key: str) -> httpx.Response:
        if "authorization" in request.headers:
            return httpx.Response(400, text="<Error><Code>InvalidArgument</Code></Error>")
        data = request.read()
        number = int(request.url.params.get("partNumber", "0"))
        with self.count_lock:
            self.puts.append(number)
        self.objects[key] = data
        etag = hashlib.md5(data).hexdigest()
        if number in self.bad_etag_for:
            etag = "0" * 32
        return httpx.Response(200, headers={"ETag": f'"{etag}"'})
