"""The object storage behind the fake Gen3 commons: an S3-like bucket store with presigned URLs.

Presigned URLs carry their signature in the query (``X-Amz-Signature``), like SigV4 query signing: the
signature covers the method, the path and every other query parameter, and the URL expires
``X-Amz-Expires`` seconds after ``X-Amz-Date``. As on S3, a request that also carries an
``Authorization`` header is refused with 400 ``InvalidArgument``; a bad signature or an expired URL is
403. Objects support ranged GETs (206). Multipart uploads follow S3's rules: parts answer with
``ETag: "<md5 of the part>"``, completion needs the parts in ascending order with matching ETags and
every part but the last at least ``min_part_size`` bytes, and the object's ETag is
``md5(concatenated part digests)-<number of parts>``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import quote, urlencode
from xml.sax.saxutils import escape

import httpx

__all__ = ["FakeStorage", "StorageError", "StoredObject"]

_AMZ_DATE = "%Y%m%dT%H%M%SZ"
MIB = 1024 * 1024


class StorageError(Exception):
    """An S3 error: status, code and message (rendered as S3's XML error body)."""

    def __init__(self, status: int, code: str, message: str, **extra: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def response(self, resource: str = "") -> httpx.Response:
        """The XML error response S3 sends."""
        extra = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in self.extra.items())
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{self.code}</Code><Message>{escape(self.message)}</Message>{extra}"
            f"<Resource>{escape(resource)}</Resource><RequestId>{uuid.uuid4().hex[:16].upper()}"
            "</RequestId></Error>"
        )
        return httpx.Response(
            self.status, content=body.encode(), headers={"Content-Type": "application/xml"}
        )


@dataclass
class StoredObject:
    """One object in a bucket."""

    data: bytes
    etag: str
    content_type: str = "binary/octet-stream"
    last_modified: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class _Upload:
    bucket: str
    key: str
    parts: dict[int, tuple[bytes, str]] = field(default_factory=dict)


class FakeStorage:
    """Buckets of objects, presigned URL signing and checking, multipart uploads.

    ``on_stored(bucket, key, obj)`` is called whenever an object is written (single PUT or completed
    multipart upload).
    """

    def __init__(self, clock: Callable[[], float], *, region: str = "us-east-1") -> None:
        self.clock = clock
        self.region = region
        self.secret = secrets.token_bytes(32)
        self.access_key = "FAKEACCESSKEY" + secrets.token_hex(4).upper()
        self.objects: dict[tuple[str, str], StoredObject] = {}
        self.uploads: dict[str, _Upload] = {}
        self.min_part_size = 5 * MIB
        self.on_stored: Callable[[str, str, StoredObject], None] | None = None

    # -- signing -----------------------------------------------------------------------------------
    def _signature(self, method: str, path: str, params: Mapping[str, str]) -> str:
        canonical = "&".join(
            f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in sorted(params.items())
        )
        message = f"{method.upper()}\n{path}\n{canonical}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()

    def presign(
        self,
        method: str,
        base_url: str,
        bucket: str,
        key: str,
        expires_in: int,
        extra: Mapping[str, str] | None = None,
    ) -> str:
        """A presigned URL for ``method`` on ``bucket/key`` under the storage origin ``base_url``."""
        base = httpx.URL(base_url)
        path = f"{base.path.rstrip('/')}/{bucket}/{key}"
        now = datetime.fromtimestamp(self.clock(), UTC)
        params = {
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Credential": f"{self.access_key}/{now:%Y%m%d}/{self.region}/s3/aws4_request",
            "X-Amz-Date": now.strftime(_AMZ_DATE),
            "X-Amz-Expires": str(int(expires_in)),
            "X-Amz-SignedHeaders": "host",
            **(extra or {}),
        }
        params["X-Amz-Signature"] = self._signature(method, path, params)
        return str(base.copy_with(raw_path=(quote(path) + "?" + urlencode(params)).encode()))

    def check(self, request: httpx.Request) -> None:
        """Refuse the request as S3 would, unless it carries a valid, unexpired presigned query."""
        params = dict(request.url.params.multi_items())
        if "X-Amz-Signature" not in params:
            raise StorageError(403, "AccessDenied", "Access Denied")
        if "authorization" in request.headers:
            raise StorageError(
                400,
                "InvalidArgument",
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
                "Signature query string parameter or the Authorization header should be specified",
                ArgumentName="Authorization",
                ArgumentValue=request.headers["authorization"][:12] + "...",
            )
        signature = params.pop("X-Amz-Signature")
        expected = self._signature(request.method, request.url.path, params)
        if not hmac.compare_digest(signature, expected):
            raise StorageError(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. "
                "Check your key and signing method.",
            )
        try:
            signed_at = datetime.strptime(params["X-Amz-Date"], _AMZ_DATE).replace(tzinfo=UTC)
            expires = int(params["X-Amz-Expires"])
        except (KeyError, ValueError):
            raise StorageError(
                400, "AuthorizationQueryParametersError", "Bad presigned query"
            ) from None
        if self.clock() > signed_at.timestamp() + expires:
            raise StorageError(403, "AccessDenied", "Request has expired")

    # -- requests ----------------------------------------------------------------------------------
    def handle(self, request: httpx.Request, bucket: str, key: str) -> httpx.Response:
        """Serve a presigned request for ``bucket/key``."""
        resource = f"/{bucket}/{key}"
        try:
            self.check(request)
            params = request.url.params
            if request.method == "PUT" and "partNumber" in params and "uploadId" in params:
                return self._put_part(
                    request, bucket, key, params["uploadId"], params["partNumber"]
                )
            if request.method == "PUT":
                return self._put(request, bucket, key)
            if request.method in ("GET", "HEAD"):
                return self._get(request, bucket, key)
            if request.method == "DELETE":
                self.objects.pop((bucket, key), None)
                return httpx.Response(204)
            raise StorageError(405, "MethodNotAllowed", "The specified method is not allowed")
        except StorageError as error:
            return error.response(resource)

    @staticmethod
    def _check_content_md5(request: httpx.Request, data: bytes) -> None:
        given = request.headers.get("content-md5")
        if given is None:
            return
        try:
            digest = base64.b64decode(given, validate=True)
        except ValueError:
            raise StorageError(
                400, "InvalidDigest", "The Content-MD5 you specified was invalid."
            ) from None
        if digest != hashlib.md5(data).digest():
            raise StorageError(
                400, "BadDigest", "The Content-MD5 you specified did not match what we received."
            )

    def _put(self, request: httpx.Request, bucket: str, key: str) -> httpx.Response:
        data = request.content
        self._check_content_md5(request, data)
        obj = StoredObject(
            data=data,
            etag=f'"{hashlib.md5(data).hexdigest()}"',
            content_type=request.headers.get("content-type", "binary/octet-stream"),
        )
        self.store(bucket, key, obj)
        return httpx.Response(200, headers={"ETag": obj.etag})

    def store(self, bucket: str, key: str, obj: StoredObject) -> None:
        """Write an object and notify ``on_stored``."""
        self.objects[(bucket, key)] = obj
        if self.on_stored is not None:
            self.on_stored(bucket, key, obj)

    def _get(self, request: httpx.Request, bucket: str, key: str) -> httpx.Response:
        obj = self.objects.get((bucket, key))
        if obj is None:
            raise StorageError(404, "NoSuchKey", "The specified key does not exist.", Key=key)
        headers = {
            "ETag": obj.etag,
            "Accept-Ranges": "bytes",
            "Last-Modified": format_datetime(obj.last_modified, usegmt=True),
            "Content-Type": obj.content_type,
        }
        data, status = obj.data, 200
        size = len(data)
        spec = request.headers.get("range")
        if spec and spec.startswith("bytes=") and "," not in spec:
            first, _, last = spec[6:].partition("-")
            try:
                if first == "":
                    length = int(last)
                    start, end = max(size - length, 0), size - 1
                else:
                    start = int(first)
                    end = min(int(last), size - 1) if last else size - 1
            except ValueError:
                start, end = 0, size - 1  # an unparsable range is ignored, as S3 does
            else:
                if start >= size or start > end:
                    raise StorageError(
                        416, "InvalidRange", "The requested range is not satisfiable",
                        RangeRequested=spec, ActualObjectSize=str(size),
                    )  # fmt: skip
                data, status = data[start : end + 1], 206
                headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(data))
            return httpx.Response(status, headers=headers)
        return httpx.Response(status, content=data, headers=headers)

    # -- multipart ---------------------------------------------------------------------------------
    def create_multipart(self, bucket: str, key: str) -> str:
        """Start a multipart upload; returns its upload id."""
        upload_id = base64.urlsafe_b64encode(secrets.token_bytes(48)).decode().rstrip("=")
        self.uploads[upload_id] = _Upload(bucket, key)
        return upload_id

    def _put_part(
        self, request: httpx.Request, bucket: str, key: str, upload_id: str, part: str
    ) -> httpx.Response:
        upload = self.uploads.get(upload_id)
        if upload is None or (upload.bucket, upload.key) != (bucket, key):
            raise StorageError(
                404, "NoSuchUpload",
                "The specified upload does not exist. The upload ID may be invalid, or the upload "
                "may have been aborted or completed.",
                UploadId=upload_id,
            )  # fmt: skip
        try:
            number = int(part)
        except ValueError:
            number = 0
        if not 1 <= number <= 10000:
            raise StorageError(
                400,
                "InvalidArgument",
                "Part number must be an integer between 1 and 10000, inclusive",
            )
        data = request.content
        self._check_content_md5(request, data)
        etag = f'"{hashlib.md5(data).hexdigest()}"'
        upload.parts[number] = (data, etag)
        return httpx.Response(200, headers={"ETag": etag})

    def complete_multipart(
        self, bucket: str, key: str, upload_id: str, parts: list[Mapping[str, Any]]
    ) -> StoredObject:
        """Assemble the listed parts (S3's CompleteMultipartUpload); raises :class:`StorageError`."""
        upload = self.uploads.get(upload_id)
        if upload is None or (upload.bucket, upload.key) != (bucket, key):
            raise StorageError(404, "NoSuchUpload", "The specified upload does not exist.")
        if not parts:
            raise StorageError(
                400, "MalformedXML",
                "The XML you provided was not well-formed or did not validate against our published schema",
            )  # fmt: skip
        numbers: list[int] = []
        chunks: list[bytes] = []
        digests: list[bytes] = []
        for index, part in enumerate(parts):
            number, etag = part.get("PartNumber"), part.get("ETag")
            if not isinstance(number, int) or not isinstance(etag, str):
                raise StorageError(
                    400, "MalformedXML", "Each part needs an integer PartNumber and an ETag string"
                )
            if numbers and number <= numbers[-1]:
                raise StorageError(
                    400, "InvalidPartOrder",
                    "The list of parts was not in ascending order. Parts must be ordered by part number.",
                )  # fmt: skip
            stored = upload.parts.get(number)
            if stored is None or stored[1].strip('"') != etag.strip('"'):
                raise StorageError(
                    400, "InvalidPart",
                    "One or more of the specified parts could not be found. The part may not have been "
                    "uploaded, or the specified entity tag may not match the part's entity tag.",
                    PartNumber=str(number), ETag=etag,
                )  # fmt: skip
            last = index == len(parts) - 1
            if not last and len(stored[0]) < self.min_part_size:
                raise StorageError(
                    400, "EntityTooSmall",
                    "Your proposed upload is smaller than the minimum allowed object size.",
                    ProposedSize=str(len(stored[0])), MinSizeAllowed=str(self.min_part_size),
                    PartNumber=str(number),
                )  # fmt: skip
            numbers.append(number)
            chunks.append(stored[0])
            digests.append(bytes.fromhex(stored[1].strip('"')))
        etag = f'"{hashlib.md5(b"".join(digests)).hexdigest()}-{len(digests)}"'
        obj = StoredObject(data=b"".join(chunks), etag=etag)
        del self.uploads[upload_id]
        self.store(bucket, key, obj)
        return obj
