"""``python -m codegen fetch SERVICE --url URL [--token T] [--as NAME]``: download a live OpenAPI document.

Writes ``specs/<service>/openapi.json`` or ``openapi.yaml`` byte for byte as served, plus ``PROVENANCE.md``
(URL, UTC date, sha256, the document's own version fields and the server's version header if any).
``--as live`` writes them to ``specs/<service>/live/`` instead: a variant that ``generate --from live`` and
``diff`` use with ``specs/<service>/live-overrides.yaml``, leaving the project's document alone.

Safe by construction: fetch only replaces what an earlier fetch wrote (its ``PROVENANCE.md`` says so and names
the file); a folder holding a document written any other way (e.g. by hand) is refused, and nothing is deleted
but the previous fetched document. The token is sent as a bearer token to the URL's origin only, never over
plain http to a host that is not loopback, and is never written, logged or echoed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from codegen import services
from codegen.specio import SpecError, parse_document, sha256_bytes

__all__ = [
    "FETCH_MARK",
    "FetchError",
    "Fetched",
    "check_target",
    "fetch_document",
    "main",
    "redact_url",
    "target_dir",
    "write_spec",
]

FETCH_MARK = "Fetched with `python -m codegen fetch`"
"""The line that marks a PROVENANCE.md (and its document) as written by fetch."""
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")

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


def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def fetch_document(
    url: str,
    *,
    token: str | None = None,
    timeout: float = 30.0,
    max_bytes: int = 20_000_000,
    transport: httpx.BaseTransport | None = None,
) -> Fetched:
    """GET ``url`` (following redirects on the same origin), with a timeout and a size cap.

    A ``token`` goes to the URL's origin only, and never over plain http to a host that is not loopback.
    """
    headers = {"Accept": _ACCEPT, "User-Agent": "scibind-codegen"}
    origin = urlsplit(url)[:2]
    safe = redact_url(url)
    if token and (origin[0] != "https" and not _is_loopback(urlsplit(url).hostname or "")):
        raise FetchError(
            f"refusing to send --token over {origin[0] or 'no scheme'} to {safe}: use https "
            "(plain http is allowed to loopback hosts only)"
        )
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


def _provenance(
    service: str, fetched: Fetched, filename: str, when: dt.datetime, variant: str | None = None
) -> str:
    doc = fetched.document
    info = doc.get("info") if isinstance(doc.get("info"), dict) else {}
    assert isinstance(info, dict)
    title = f"{service} ({variant})" if variant else service
    lines = [
        f"# {title}: spec provenance",
        "",
        f"{FETCH_MARK}; the document is stored exactly as served.",
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
    if variant:
        rel = f"specs/{service}"
        lines += [
            "",
            f"A variant of `{rel}/`: the project's own document there is not changed. With",
            f"`{rel}/{variant}-overrides.yaml` (applied automatically):",
            "",
            f"    python -m codegen diff {rel}/openapi.yaml {rel}/{variant}/{filename} --ignore-error-responses",
            f"    python -m codegen generate {service} --from {variant} --output DIR",
        ]
    return "\n".join(lines) + "\n"


def target_dir(service: str, variant: str | None = None, specs_dir: Path | None = None) -> Path:
    """``specs/<service>/`` or ``specs/<service>/<variant>/``."""
    for name in (service, variant):
        if name is not None and not _NAME.match(name):
            raise FetchError(f"invalid name {name!r} (lower-case letters, digits, - and _)")
    base = (specs_dir or services.SPECS_DIR) / service
    return base / variant if variant else base


def _fetched_file(target: Path) -> tuple[bool, str | None]:
    """``(PROVENANCE.md absent or written by fetch, the document file it names)``."""
    provenance = target / "PROVENANCE.md"
    if not provenance.is_file():
        return True, None
    text = provenance.read_text(encoding="utf-8", errors="replace")
    if FETCH_MARK not in text:
        return False, None
    named = re.search(r"^- File: (\S+)$", text, re.MULTILINE)
    return True, named.group(1) if named else None


def check_target(
    service: str, variant: str | None = None, specs_dir: Path | None = None
) -> tuple[Path, str | None]:
    """``(folder, document the previous fetch wrote there)``; FetchError if fetch may not write there."""
    target = target_dir(service, variant, specs_dir)
    ours, previous = _fetched_file(target)
    foreign = [n for n in services.SPEC_NAMES if (target / n).exists() and n != previous]
    if not ours or foreign:
        what = ", ".join(foreign) if foreign else "PROVENANCE.md"
        hint = "" if variant else " (fetch into a variant folder instead: --as live)"
        raise FetchError(
            f"{services.repo_relative(target)} holds {what} not written by fetch; "
            f"not replacing it{hint}"
        )
    return target, previous


def write_spec(
    service: str,
    fetched: Fetched,
    specs_dir: Path | None = None,
    *,
    variant: str | None = None,
) -> Path:
    """Write the document and PROVENANCE.md into ``specs/<service>/`` (or its ``variant`` folder).

    Refuses (FetchError) a folder holding a document or a PROVENANCE.md that fetch did not write; replaces
    only the previously fetched document. Returns the document's path.
    """
    target, previous = check_target(service, variant, specs_dir)
    target.mkdir(parents=True, exist_ok=True)
    filename = "openapi.json" if fetched.is_json else "openapi.yaml"
    path = target / filename
    _write_atomically(path, fetched.content)
    when = dt.datetime.now(dt.UTC)
    _write_atomically(
        target / "PROVENANCE.md",
        _provenance(service, fetched, filename, when, variant).encode("utf-8"),
    )
    if previous and previous != filename and (target / previous).is_file():
        (target / previous).unlink()  # the document the previous fetch wrote, in the other format
    return path


def _write_atomically(path: Path, content: bytes) -> None:
    staging = path.with_name(f".{path.name}.fetching")
    staging.write_bytes(content)
    os.replace(staging, path)


def main(args: argparse.Namespace) -> int:
    """Fetch and store; never prints the token."""
    variant = getattr(args, "variant", None)
    try:
        check_target(args.service, variant)  # before any request
    except FetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
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
    try:
        path = write_spec(args.service, fetched, variant=variant)
    except FetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {services.repo_relative(path)} ({len(fetched.content)} bytes) and PROVENANCE.md")
    return 0
