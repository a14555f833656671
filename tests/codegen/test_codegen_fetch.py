"""`fetch`: the document is stored unchanged with provenance; the token goes nowhere but the request."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest

from codegen import __main__ as cli
from codegen import services
from codegen.fetch import FETCH_MARK, FetchError, fetch_document, redact_url, write_spec

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


def test_yaml_replaces_the_json_document_an_earlier_fetch_wrote(tmp_path: Path) -> None:
    first = {"https://h.example/doc": httpx.Response(200, content=DOC)}
    write_spec(
        "svc", fetch_document("https://h.example/doc", transport=_transport([], first)), tmp_path
    )
    assert (tmp_path / "svc" / "openapi.json").read_bytes() == DOC
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


# -- fetch never replaces or deletes what it did not write --------------------------------------------------
HAND_WRITTEN = b"openapi: 3.0.3\ninfo: {title: ours, version: '1'}\npaths: {}\n"


def _hand_written(root: Path, *, provenance: bool = True) -> dict[Path, bytes]:
    folder = root / "svc"
    folder.mkdir(parents=True)
    (folder / "openapi.yaml").write_bytes(HAND_WRITTEN)
    if provenance:
        (folder / "PROVENANCE.md").write_text("# svc\nWritten by hand.\n")
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _fetched_json() -> object:
    routes = {"https://h.example/doc": httpx.Response(200, content=DOC)}
    return fetch_document("https://h.example/doc", transport=_transport([], routes))


@pytest.mark.parametrize("provenance", [True, False])
def test_a_document_fetch_did_not_write_is_never_replaced(tmp_path: Path, provenance: bool) -> None:
    before = _hand_written(tmp_path, provenance=provenance)
    with pytest.raises(FetchError, match=r"holds openapi.yaml not written by fetch.*--as live"):
        write_spec("svc", _fetched_json(), tmp_path)  # type: ignore[arg-type]
    after = {p: p.read_bytes() for p in (tmp_path / "svc").rglob("*") if p.is_file()}
    assert after == before


def test_a_provenance_fetch_did_not_write_is_never_replaced(tmp_path: Path) -> None:
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "PROVENANCE.md").write_text("notes by hand\n")
    with pytest.raises(FetchError, match=r"holds PROVENANCE\.md not written by fetch"):
        write_spec("svc", _fetched_json(), tmp_path)  # type: ignore[arg-type]
    assert (tmp_path / "svc" / "PROVENANCE.md").read_text() == "notes by hand\n"


def test_as_variant_writes_a_subfolder_and_leaves_the_document(tmp_path: Path) -> None:
    before = _hand_written(tmp_path)
    path = write_spec("svc", _fetched_json(), tmp_path, variant="live")  # type: ignore[arg-type]
    assert path == tmp_path / "svc" / "live" / "openapi.json"
    assert path.read_bytes() == DOC
    provenance = (tmp_path / "svc" / "live" / "PROVENANCE.md").read_text()
    assert FETCH_MARK in provenance and "--from live" in provenance
    assert {p: p.read_bytes() for p in before} == before
    # fetched again: the variant's own files are replaced, nothing else
    write_spec("svc", _fetched_json(), tmp_path, variant="live")  # type: ignore[arg-type]
    assert sorted(p.name for p in (tmp_path / "svc" / "live").iterdir()) == [
        "PROVENANCE.md",
        "openapi.json",
    ]


@pytest.mark.parametrize("name", ["Live", "../x", "-x", ""])
def test_variant_names_are_checked(tmp_path: Path, name: str) -> None:
    with pytest.raises(FetchError, match="invalid name"):
        write_spec("svc", _fetched_json(), tmp_path, variant=name or "a/b")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url", ["http://api.example.org/openapi.json", "http://10.0.0.5:8000/doc", "ftp://x.org/d"]
)
def test_token_is_refused_over_plain_http_off_loopback(url: str) -> None:
    seen: list[httpx.Request] = []
    with pytest.raises(FetchError, match="refusing to send --token") as info:
        fetch_document(url, token=TOKEN, transport=_transport(seen, {}))
    assert seen == [] and TOKEN not in str(info.value)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
def test_token_over_plain_http_to_loopback(host: str) -> None:
    seen: list[httpx.Request] = []
    url = f"http://{host}:8000/doc"
    fetch_document(
        url, token=TOKEN, transport=_transport(seen, {url: httpx.Response(200, content=DOC)})
    )
    assert seen[0].headers["authorization"] == f"Bearer {TOKEN}"


def test_cli_refuses_before_any_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _hand_written(tmp_path)
    monkeypatch.setattr(services, "SPECS_DIR", tmp_path)
    # an unroutable URL: the refusal comes before the request would fail
    code = cli.main(["fetch", "svc", "--url", "http://192.0.2.1:9/doc", "--timeout", "0.01"])
    assert code == 2
    assert "not written by fetch" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in before} == before
