"""``python -m codegen capture dserver``: run the real dserver here and capture the OpenAPI document it serves.

The server is started with :func:`scibind.testing.dserver_server.run_dserver` (dservercore, the three Mongo
plugins and the dependency-graph plugin; direct queries and aggregations on). ``GET /doc/openapi.json`` is written to
``specs/dserver/openapi.json`` **byte for byte as served** (flask-smorest already pretty-prints it with a
2-space indent), so the recorded sha256 is that of the HTTP body and of the file alike. ``PROVENANCE.md``
records how, when, the sha256, the package versions and the enabled plugins. When neither the document nor the
versions changed, nothing is rewritten (the capture date stays that of the document's first capture).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import platform
import sys
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

__all__ = ["Capture", "capture_dserver", "main", "render_provenance", "write_capture"]

REPO_ROOT = Path(__file__).resolve().parent.parent
DSERVER_DIR = REPO_ROOT / "specs" / "dserver"
DOC_PATH = "/doc/openapi.json"
PACKAGES = (
    "dservercore",
    "dserver-search-plugin-mongo",
    "dserver-retrieve-plugin-mongo",
    "dserver-direct-mongo-plugin",
    "dserver-dependency-graph-plugin",
    "flask-smorest",
    "apispec",
    "marshmallow",
    "webargs",
    "flask",
    "werkzeug",
    "flask-jwt-extended",
    "mongomock",
    "pymongo",
)
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


@dataclass(frozen=True)
class Capture:
    """What one capture produced."""

    content: bytes
    served_versions: dict[str, str]
    plugin_config: dict[str, Any]
    packages: dict[str, str]

    @property
    def sha256(self) -> str:
        """sha256 of the served document."""
        return hashlib.sha256(self.content).hexdigest()

    @property
    def document(self) -> dict[str, Any]:
        """The parsed document."""
        data: dict[str, Any] = json.loads(self.content)
        return data

    def operations(self) -> list[str]:
        """``METHOD /path`` for every operation in the document."""
        return [
            f"{m.upper()} {p}"
            for p, item in self.document.get("paths", {}).items()
            for m in item
            if m in _METHODS
        ]


def _package_versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def capture_dserver() -> Capture:
    """Start the launcher's dserver, fetch its document, versions and plugin settings, stop it."""
    import httpx
    from scibind.testing.dserver_server import run_dserver

    with (
        run_dserver(allow_direct_query=True, allow_direct_aggregation=True) as server,
        httpx.Client(base_url=server.url, timeout=30.0) as http,
    ):
        doc = http.get(DOC_PATH)
        doc.raise_for_status()
        versions = http.get("/config/versions").raise_for_status().json()["versions"]
        info = http.get("/config/info", headers=server.headers()).raise_for_status().json()
    config = info["config"]
    plugin_config = {
        key: config.get(key) for key in ("allow_direct_query", "allow_direct_aggregation")
    }
    capture = Capture(doc.content, dict(versions), plugin_config, _package_versions())
    if not str(capture.document.get("openapi", "")).startswith("3."):
        raise RuntimeError(f"{DOC_PATH} is not an OpenAPI 3 document")
    return capture


def render_provenance(capture: Capture, captured_on: str) -> str:
    """The text of ``specs/dserver/PROVENANCE.md``."""
    ops = capture.operations()
    plugins = ", ".join(f"`{k}` {v}" for k, v in sorted(capture.served_versions.items()))
    packages = "\n".join(f"| {k} | {v} |" for k, v in capture.packages.items())
    flags = ", ".join(f"`{k}` = {v}" for k, v in capture.plugin_config.items())
    doc_info = capture.document.get("info", {})
    info_line = f'{capture.document.get("openapi")}, "{doc_info.get("title")}" version {doc_info.get("version")}'
    return f"""# specs/dserver — provenance

`openapi.json` is the OpenAPI document that a real dserver, run here, serves at `GET {DOC_PATH}`.
It is written byte for byte as served (flask-smorest pretty-prints it; nothing is re-serialised), so the
sha256 below is that of the HTTP response body and of the file. Fixes for its defects are declarative, in
`overrides.yaml`, applied by `python -m codegen generate dserver`; this file is never edited by hand.

- Captured with: `python -m codegen capture dserver` (codegen/capture.py)
- Captured on: {captured_on}
- sha256: `{capture.sha256}`
- Document: OpenAPI {info_line}; {len(ops)} operations on {len(capture.document.get("paths", {}))} paths
- Python: {platform.python_version()}

## How
`scibind.testing.dserver_server.run_dserver()` starts dservercore in a subprocess: the search, retrieve and
direct-mongo plugins on mongomock (one collection per plugin) and the dependency-graph plugin (on the direct-mongo
collection), SQLite, a fresh RSA key pair, loopback only. dserver code is unmodified; only mongomock is patched
(`$text`, UUID encoding, `$unset`, read-only views).

## Plugins enabled
As reported by `GET /config/versions`: {plugins}.

Direct-mongo plugin settings (from `GET /config/info`): {flags}. The document is the same with either
setting off: the `/mongo/*` routes are always registered and answer 404 when disabled.

## Package versions
| package | version |
| --- | --- |
{packages}
"""


def _without_date(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.startswith("- Captured on:"))


def write_capture(capture: Capture, out_dir: Path = DSERVER_DIR) -> bool:
    """Write ``openapi.json`` and ``PROVENANCE.md``; return False when both were already up to date."""
    out_dir.mkdir(parents=True, exist_ok=True)
    spec, provenance = out_dir / "openapi.json", out_dir / "PROVENANCE.md"
    today = _dt.datetime.now(_dt.UTC).date().isoformat()
    text = render_provenance(capture, today)
    old_spec = spec.read_bytes() if spec.is_file() else None
    old_text = provenance.read_text(encoding="utf-8") if provenance.is_file() else None
    if (
        old_spec == capture.content
        and old_text is not None
        and _without_date(old_text) == _without_date(text)
    ):
        return False
    for path, data in ((spec, capture.content), (provenance, text.encode("utf-8"))):
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return True


def main(args: argparse.Namespace) -> int:
    """Entry point of ``python -m codegen capture SERVICE``."""
    if args.service != "dserver":
        print(f"error: no capture for {args.service!r}", file=sys.stderr)
        return 2
    capture = capture_dserver()
    changed = write_capture(capture)
    state = "written" if changed else "unchanged"
    print(
        f"specs/dserver/openapi.json {state}: sha256 {capture.sha256}, "
        f"{len(capture.operations())} operations"
    )
    return 0
