"""``python -m codegen fetch SERVICE --url URL [--token T]``: download a live OpenAPI document.

Writes ``specs/<service>/openapi.json`` or ``openapi.yaml`` byte for byte as served, plus ``PROVENANCE.md``
(URL, UTC date, sha256, the document's own version fields and the server's version header if any).
The token is sent as a bearer token to that URL only; it is never written, logged or echoed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from codegen import services
from codegen.specio import SpecError, parse_document, sha256_bytes

__all__ = ["FetchError", "Fetched", "fetch_document", "main", "redact_url", "write_spec"]

_SECRET_WORDS = ("token", "key", "secret", "password", "signature", "credential", "auth", "sig")
_VERSION_HEADERS = ("x-api-version", "api-version", "x-version", "x-app-version", "server")
_ACCEPT = (
    "application/json, application/yaml;q=0.9, application/x-yaml;q=0.9, text/yaml;q=0.8, */*;q=0.5"
)


class FetchError(Exception):
    """The document could not be downloaded or is not an OpenAPI/Swagger document."""


@dataclass(frozen=True)
class Fetched:
    """A downloaded document."""

    url: str
    content: bytes
    is_json: bool
    headers: dict[str, str]
    document: dict[str, object]


def redact_url(url: str) -> str:
    """The URL without userinfo and with secret-looking query values replaced by ``REDACTED``."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    query = [
        (k, "REDACTED" if any(w in k.lower() for w in _SECRET_WORDS) else v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query), ""))


def fetch_document(
    url: str,
    *,
    token: str | None = None,
    timeout: float = 30.0,
    max_bytes: int = 20_000_000,
    transport: httpx.BaseTransport | None = None,
) -> Fetched:
    """GET ``url`` (following redirects on the same origin), with a timeout and a size cap."""
    headers = {"Accept": _ACCEPT, "User-Agent": "scibind-codegen"}
    origin = urlsplit(url)[:2]
    safe = redact_url(url)
    with httpx.Client(timeout=timeout, transport=transport, follow_redirects=False) as client:
        current = url
        for _hop in range(5):
            send = dict(headers)
            if token and urlsplit(current)[:2] == origin:
                send["Authorization"] = f"Bearer {token}"
            try:
                with client.stream("GET", current, headers=send) as response:
                    if response.is_redirect and "location" in response.headers:
                        current = str(response.url.join(response.headers["location"]))
                        continue
                    if response.status_code != 200:
                        raise FetchError(f"GET {safe} answered HTTP {response.status_code}")
                    declared = response.headers.get("content-length")
                    if declared and declared.isdigit() and int(declared) > max_bytes:
                        raise FetchError(
                            f"GET {safe}: document is {declared} bytes (limit {max_bytes})"
                        )
                    body = bytearray()
                    for chunk in response.iter_bytes():
                        body += chunk
                        if len(body) > max_bytes:
                            raise FetchError(f"GET {safe}: document exceeds {max_bytes} bytes")
                    content_type = response.headers.get("content-type", "")
                    kept = {
                        k.lower(): v
                        for k, v in response.headers.items()
                        if k.lower() in _VERSION_HEADERS
                    }
                    break
            except httpx.HTTPError as exc:
                raise FetchError(f"GET {safe} failed: {type(exc).__name__}") from None
        else:
            raise FetchError(f"GET {safe}: too many redirects")
    content = bytes(body)
    try:
        document = parse_document(content, name=safe)
    except SpecError as exc:
        raise FetchError(str(exc)) from None
    if "openapi" not in document and "swagger" not in document:
        raise FetchError(
            f"GET {safe}: not an OpenAPI or Swagger document (no `openapi`/`swagger` key)"
        )
    is_json = "json" in content_type or content.lstrip().startswith(b"{")
    return Fetched(url=safe, content=content, is_json=is_json, headers=kept, document=document)


def _provenance(service: str, fetched: Fetched, filename: str, when: dt.datetime) -> str:
    doc = fetched.document
    info = doc.get("info") if isinstance(doc.get("info"), dict) else {}
    assert isinstance(info, dict)
    lines = [
        f"# {service}: spec provenance",
        "",
        "Fetched with `python -m codegen fetch`; the document is stored exactly as served.",
        "",
        f"- URL: {fetched.url}",
        f"- Fetched (UTC): {when.strftime('%Y-%m-%dT%H:%M:%SZ')}",
        f"- File: {filename}",
        f"- sha256: {sha256_bytes(fetched.content)}",
        f"- Size: {len(fetched.content)} bytes",
        f"- Format: {'OpenAPI ' + str(doc['openapi']) if 'openapi' in doc else 'Swagger ' + str(doc.get('swagger'))}",
        f"- API title: {info.get('title', '(none)')}",
        f"- API version (info.version): {info.get('version', '(none)')}",
    ]
    lines += [f"- Server header {name}: {value}" for name, value in sorted(fetched.headers.items())]
    return "\n".join(lines) + "\n"


def write_spec(service: str, fetched: Fetched, specs_dir: Path = services.SPECS_DIR) -> Path:
    """Write the document and PROVENANCE.md into ``specs_dir/service``; returns the document's path."""
    target = specs_dir / service
    target.mkdir(parents=True, exist_ok=True)
    filename = "openapi.json" if fetched.is_json else "openapi.yaml"
    for stale in services.SPEC_NAMES:
        if stale != filename and (target / stale).exists():
            (target / stale).unlink()
    path = target / filename
    path.write_bytes(fetched.content)
    when = dt.datetime.now(dt.UTC)
    (target / "PROVENANCE.md").write_text(
        _provenance(service, fetched, filename, when), encoding="utf-8"
    )
    return path


def main(args: argparse.Namespace) -> int:
    """Fetch and store; never prints the token."""
    if not args.service.replace("-", "").replace("_", "").isalnum() or args.service.startswith("_"):
        print(f"error: invalid service name {args.service!r}", file=sys.stderr)
        return 2
    try:
        fetched = fetch_document(
            args.url,
            token=args.token,
            timeout=getattr(args, "timeout", 30.0),
            max_bytes=getattr(args, "max_bytes", 20_000_000),
        )
    except FetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    path = write_spec(args.service, fetched)
    print(f"wrote {services.repo_relative(path)} ({len(fetched.content)} bytes) and PROVENANCE.md")
    return 0
