"""`fetch`: the document is stored unchanged with provenance; the token goes nowhere but the request."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest

from codegen.fetch import FetchError, fetch_document, redact_url, write_spec

TOKEN = "s3cr3t-token-value"
DOC = json.dumps(
    {"openapi": "3.0.3", "info": {"title": "T", "version": "2.5.1"}, "paths": {}}
).encode()
YAML_DOC = b"swagger: '2.0'\ninfo: {title: Y, version: 7}\npaths: {}\n"


def _transport(seen: list[httpx.Request], routes: dict[str, httpx.Response]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return routes.get(str(request.url), httpx.Response(404))

    return httpx.MockTransport(handle)


def test_json_document_is_stored_unchanged_with_provenance(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []
    routes = {
        "https://api.example.org/openapi.json": httpx.Response(
            200,
            content=DOC,
            headers={"content-type": "application/json", "x-api-version": "2.5.1-build7"},
        )
    }
    fetched = fetch_document(
        "https://api.example.org/openapi.json", token=TOKEN, transport=_transport(seen, routes)
    )
    assert seen[0].headers["authorization"] == f"Bearer {TOKEN}"
    path = write_spec("svc", fetched, specs_dir=tmp_path)
    assert path == tmp_path / "svc" / "openapi.json"
    assert path.read_bytes() == DOC
    provenance = (tmp_path / "svc" / "PROVENANCE.md").read_text()
    assert hashlib.sha256(DOC).hexdigest() in provenance
    assert "https://api.example.org/openapi.json" in provenance
    assert "2.5.1" in provenance and "x-api-version: 2.5.1-build7" in provenance
    for stored in (tmp_path / "svc").iterdir():
        assert TOKEN not in stored.read_text()


def test_yaml_replaces_an_older_json_document(tmp_path: Path) -> None:
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "openapi.json").write_text("{}")
    routes = {"https://h.example/doc?token=abc&page=2": httpx.Response(200, content=YAML_DOC)}
    fetched = fetch_document(
        "https://h.example/doc?token=abc&page=2", transport=_transport([], routes)
    )
    path = write_spec("svc", fetched, specs_dir=tmp_path)
    assert path.name == "openapi.yaml" and path.read_bytes() == YAML_DOC
    assert not (tmp_path / "svc" / "openapi.json").exists()
    provenance = (tmp_path / "svc" / "PROVENANCE.md").read_text()
    assert (
        "abc" not in provenance and "token=REDACTED" in provenance and "Swagger 2.0" in provenance
    )


def test_token_is_not_sent_to_another_origin_after_a_redirect() -> None:
    seen: list[httpx.Request] = []
    routes = {
        "https://a.example/doc": httpx.Response(302, headers={"location": "https://b.example/doc"}),
        "https://b.example/doc": httpx.Response(200, content=DOC),
    }
    fetch_document("https://a.example/doc", token=TOKEN, transport=_transport(seen, routes))
    assert [r.url.host for r in seen] == ["a.example", "b.example"]
    assert "authorization" in seen[0].headers and "authorization" not in seen[1].headers


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (httpx.Response(200, content=iter([b"x" * 500] * 4)), "exceeds"),
        (httpx.Response(200, content=b"x" * 10, headers={"content-length": "5000"}), "limit"),
        (httpx.Response(401, content=b"no"), "HTTP 401"),
        (httpx.Response(200, content=b'{"hello": "world"}'), "not an OpenAPI"),
        (httpx.Response(200, content=b"<html>"), "expected a mapping"),
        (httpx.Response(200, content=b"a: [\n"), "not valid"),
    ],
)
def test_bad_responses(response: httpx.Response, message: str) -> None:
    routes = {"https://h.example/doc": response}
    with pytest.raises(FetchError, match=message) as info:
        fetch_document(
            "https://h.example/doc", token=TOKEN, max_bytes=1000, transport=_transport([], routes)
        )
    assert TOKEN not in str(info.value)


def test_redact_url() -> None:
    assert (
        redact_url("https://u:p@h.example:8443/x?api_key=1&q=2#f")
        == "https://h.example:8443/x?api_key=REDACTED&q=2"
    )
