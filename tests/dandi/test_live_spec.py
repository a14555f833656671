"""Regenerating from a live archive: ``fetch --as live``, ``diff`` and ``generate --from live``.

The archive's own Swagger 2.0 document (../shared/reference, served here by a loopback HTTP server, as an
archive serves it at ``/api/docs/swagger/?format=openapi``) is fetched into ``specs/dandi/live/`` of a copy of
the specs tree, leaving scibind's document alone. With ``specs/dandi/live-overrides.yaml`` it then
* diffs against ``specs/dandi/openapi.yaml`` to a short, known list of deliberate differences, so on an
  upgraded archive the diff shows what the server changed;
* generates a complete client (51 operations, nothing skipped) whose modules and arguments are the ones the
  facade uses, and whose corrected response shapes parse what the archive (here: the fake) answers.
Skipped when ../shared/reference is absent.
"""

from __future__ import annotations

import copy
import importlib
import json
import pkgutil
import shutil
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from scibind.testing.dandi import FakeDandiArchive

from codegen import __main__ as cli
from codegen import services
from codegen.convert import CODEGEN_DIR

REPO = Path(__file__).resolve().parents[2]
OURS = REPO / "specs" / "dandi"
ROOT_PACKAGE = "dandi_live_root"
PACKAGE = f"{ROOT_PACKAGE}.dandi"

# What the corrected live document still says differently from scibind's (4xx/5xx responses left out):
# scibind's document is stricter where the archive's serializers are lenient, and leaves out what its facade
# does not send. Documented in specs/dandi/PROVENANCE.md.
DELIBERATE = {
    ("GET /dandisets/{dandiset_id}/versions/", "parameter", "added", "created"),
    ("GET /info/", "response", "changed", "200 field allowed_schema_versions"),
    ("GET /info/", "response", "changed", "200 field cli-requires-python"),
    ("GET /info/", "response", "changed", "200 field instance_config"),
    ("POST /dandisets/", "request", "changed", "field metadata"),
    ("PUT /dandisets/{dandiset_id}/versions/{version_id}/", "request", "changed", "field metadata"),
    (
        "POST /dandisets/{dandiset_id}/versions/{version_id}/publish/",
        "request",
        "added",
        "media type application/json",
    ),
    (
        "POST /dandisets/{dandiset_id}/versions/{version_id}/publish/",
        "request",
        "added",
        "field (body)",
    ),
    (
        "POST /dandisets/{dandiset_id}/versions/{version_id}/publish/",
        "request",
        "added",
        "field release_notes",
    ),
}


class Archive:
    """A loopback HTTP server answering the archive's Swagger document (which a test may change)."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.paths: list[str] = []
        archive = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                archive.paths.append(self.path)
                if not self.path.startswith("/api/docs/swagger/"):
                    self.send_error(404)
                    return
                body = json.dumps(archive.document, indent=2).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)  # bound: ready
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = (
            f"http://127.0.0.1:{self.server.server_address[1]}/api/docs/swagger/?format=openapi"
        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture(scope="module")
def swagger(reference_dir: Path) -> dict[str, Any]:
    if not (CODEGEN_DIR / "node_modules" / "swagger2openapi" / "package.json").is_file():
        pytest.skip("codegen/node_modules is missing: run `npm ci --prefix codegen`")
    document = json.loads(
        (reference_dir / "specs" / "dandi-archive" / "dandi-archive.swagger.json").read_text()
    )
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def archive(swagger: dict[str, Any]) -> Iterator[Archive]:
    served = Archive(swagger)
    yield served
    served.close()


@pytest.fixture(scope="module")
def specs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy of specs/dandi/ (scibind's document, provenance, live overrides) as the specs tree."""
    root = tmp_path_factory.mktemp("specs")
    shutil.copytree(OURS, root / "dandi", ignore=shutil.ignore_patterns("live"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(services, "SPECS_DIR", root)
        yield root


@pytest.fixture(scope="module")
def fetched(specs: Path, archive: Archive, swagger: dict[str, Any]) -> Path:
    """``python -m codegen fetch dandi --url URL --as live`` into the copy."""
    before = {p: p.read_bytes() for p in (specs / "dandi").iterdir() if p.is_file()}
    assert cli.main(["fetch", "dandi", "--url", archive.url, "--as", "live"]) == 0
    live = specs / "dandi" / "live"
    assert json.loads((live / "openapi.json").read_bytes()) == swagger
    assert "127.0.0.1" in (live / "PROVENANCE.md").read_text()
    assert {p: p.read_bytes() for p in before} == before  # scibind's files untouched
    return live / "openapi.json"


@pytest.fixture(scope="module")
def generated(
    fetched: Path, specs: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """``python -m codegen generate dandi --from live --output DIR``, importable as ``dandi_live_root.dandi``."""
    out = tmp_path_factory.mktemp("live")
    root = out / ROOT_PACKAGE
    assert cli.main(["generate", "dandi", "--from", "live", "--output", str(root)]) == 0
    (root / "__init__.py").write_text("")
    assert not (out / "codegen.lock").exists()
    sys.path.insert(0, str(out))
    try:
        yield root / "dandi"
    finally:
        sys.path.remove(str(out))
        for name in [
            m for m in sys.modules if m == ROOT_PACKAGE or m.startswith(ROOT_PACKAGE + ".")
        ]:
            del sys.modules[name]


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.{name}")


def _diff(old: Path, new: Path, *extra: str, capsys: pytest.CaptureFixture[str]) -> Any:
    code = cli.main(["diff", str(old), str(new), "--format", "json", *extra])
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out), out.err


# -- fetch ------------------------------------------------------------------------------------------------------
@pytest.mark.reference
def test_fetch_without_as_refuses_scibinds_document(
    fetched: Path, specs: Path, archive: Archive, capsys: pytest.CaptureFixture[str]
) -> None:
    requests = len(archive.paths)
    before = (specs / "dandi" / "openapi.yaml").read_bytes()
    assert cli.main(["fetch", "dandi", "--url", archive.url]) == 2
    assert "holds openapi.yaml not written by fetch" in capsys.readouterr().err
    assert (specs / "dandi" / "openapi.yaml").read_bytes() == before
    assert len(archive.paths) == requests  # refused before any request


# -- diff -------------------------------------------------------------------------------------------------------
@pytest.mark.reference
def test_diff_against_the_corrected_live_document_is_the_known_remainder(
    fetched: Path, specs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body, err = _diff(
        specs / "dandi" / "openapi.yaml", fetched, "--ignore-error-responses", capsys=capsys
    )
    assert "live-overrides.yaml" in err  # applied automatically to the live document
    found = {(c["operation"], c["area"], c["change"], c["subject"]) for c in body["changes"]}
    assert found == DELIBERATE
    assert body["summary"]["breaking"] == 0


@pytest.mark.reference
def test_diff_without_overrides_is_unreadable(
    fetched: Path, specs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = specs / "no-overrides.yaml"
    empty.write_text("[]\n")
    body, _ = _diff(
        specs / "dandi" / "openapi.yaml", fetched, "--new-overrides", str(empty), capsys=capsys
    )
    renamed = [c for c in body["changes"] if c["subject"] == "operationId"]
    assert len(renamed) == 51  # every generated module would be renamed
    assert body["summary"]["breaking"] > 100


def _refetch(
    archive: Archive, document: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    archive.document = document
    assert cli.main(["fetch", "dandi", "--url", archive.url, "--as", "live"]) == 0
    capsys.readouterr()


@pytest.mark.reference
def test_diff_shows_what_an_upgraded_archive_changed(
    fetched: Path,
    specs: Path,
    archive: Archive,
    swagger: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    upgraded = copy.deepcopy(swagger)
    listing = "/dandisets/{versions__dandiset__pk}/versions/{versions__version}/assets/"
    upgraded["paths"][listing]["get"]["parameters"].append(
        {"name": "sha256", "in": "query", "type": "string"}
    )
    upgraded["paths"]["/dandisets/{dandiset__pk}/versions/{version}/assets/atpath/"] = {
        "get": {
            "operationId": "dandisets_versions_assets_atpath",
            "parameters": [{"name": "path", "in": "query", "type": "string", "required": True}],
            "responses": {"200": {"description": ""}},
            "tags": ["dandisets"],
        }
    }
    upgraded["definitions"]["AssetBlob"]["properties"]["md5"] = {"type": "string"}
    try:
        _refetch(archive, upgraded, capsys)
        body, _ = _diff(
            specs / "dandi" / "openapi.yaml", fetched, "--ignore-error-responses", capsys=capsys
        )
    finally:
        _refetch(archive, swagger, capsys)
        capsys.readouterr()
    found = {(c["operation"], c["area"], c["change"], c["subject"]) for c in body["changes"]}
    assert found - DELIBERATE == {
        (
            "GET /dandisets/{dandiset_id}/versions/{version_id}/assets/",
            "parameter",
            "added",
            "sha256",
        ),
        (
            "GET /dandisets/{dandiset__pk}/versions/{version}/assets/atpath/",
            "operation",
            "added",
            "dandisets_versions_assets_atpath",
        ),
        ("POST /blobs/digest/", "response", "added", "200 field md5"),
        (
            "POST /uploads/{upload_id}/validate/",
            "response",
            "added",
            "200 field md5",
        ),  # AssetBlob too
    }


@pytest.mark.reference
def test_an_operation_the_archive_dropped_is_named_by_the_override_that_no_longer_applies(
    fetched: Path,
    specs: Path,
    archive: Archive,
    swagger: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    upgraded = copy.deepcopy(swagger)
    del upgraded["paths"]["/blobs/digest/"]
    try:
        _refetch(archive, upgraded, capsys)
        code = cli.main(["diff", str(specs / "dandi" / "openapi.yaml"), str(fetched)])
        err = capsys.readouterr().err
    finally:
        _refetch(archive, swagger, capsys)
    assert code == 2
    assert "/paths/~1blobs~1digest~1 does not exist" in err
    assert "blobs_digest_create" in err


# -- generate ---------------------------------------------------------------------------------------------------
@pytest.mark.reference
def test_live_document_generates_every_operation_under_scibinds_names(generated: Path) -> None:
    ours = REPO / "generated" / "scibind_generated" / "dandi" / "api"
    modules = {
        p.relative_to(generated / "api").as_posix() for p in (generated / "api").rglob("*.py")
    }
    assert modules == {p.relative_to(ours).as_posix() for p in ours.rglob("*.py")}
    assert len([m for m in modules if not m.endswith("__init__.py")]) == 51
    package = importlib.import_module(PACKAGE)
    imported = [
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(package.__path__, f"{PACKAGE}.")
    ]
    assert len(imported) >= 51 + 2  # endpoints, their packages, models, client, types


@pytest.mark.reference
def test_generate_from_a_variant_needs_an_output_directory(
    fetched: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["generate", "dandi", "--from", "live"]) == 2
    assert "--from needs --output" in capsys.readouterr().out


@pytest.mark.reference
def test_overrides_describe_what_the_archive_answers(generated: Path) -> None:
    fake = FakeDandiArchive(validation_polls=0, publish_polls=0)
    dandiset_id = fake.create_dandiset("Live")
    for i in range(3):
        fake.add_asset(dandiset_id, f"sub-{i}/f.nwb", b"x" * (i + 1))
    client = _module("client").AuthenticatedClient(
        base_url=fake.base_url,
        token=fake.api_key,
        prefix="token",
        httpx_args={"transport": fake.transport()},
    )
    listing = _module("api.dandisets.list_dandisets").sync_detailed(client=client)
    assert listing.status_code == 200
    assert listing.parsed.count == 1
    assert listing.parsed.results[0].identifier == dandiset_id
    assert listing.parsed.results[0].star_count == 0

    assets = _module("api.assets.list_assets")
    page1 = assets.sync_detailed(
        dandiset_id=dandiset_id, version_id="draft", client=client, page_size=2
    )
    assert page1.parsed.count == 3
    assert [a.size for a in page1.parsed.results] == [1, 2]
    page2 = assets.sync_detailed(
        dandiset_id=dandiset_id, version_id="draft", client=client, page_size=2, page=2
    )
    assert page2.parsed.count is None

    asset_id = page1.parsed.results[0].asset_id
    download = _module("api.assets.download_asset").sync_detailed(str(asset_id), client=client)
    assert download.status_code == 302
    assert download.headers["Location"].startswith(fake.origins["storage"])

    zarr = _module("api.zarr.create_zarr")
    request = _module("models").ZarrCreateRequest(name="x.zarr", dandiset=dandiset_id)
    created = zarr.sync_detailed(client=client, body=request)
    assert created.status_code == 200 and created.parsed.status == "Pending"
    got = _module("api.zarr.get_zarr").sync_detailed(str(created.parsed.zarr_id), client=client)
    assert got.parsed.name == "x.zarr"

    publish = _module("api.versions.publish_version")
    fake.publish_ready(dandiset_id)
    accepted = publish.sync_detailed(dandiset_id=dandiset_id, version_id="draft", client=client)
    assert (accepted.status_code, accepted.content) == (202, b"")
