"""The archive's own Swagger 2.0 document + specs/dandi/live-overrides.yaml generate a complete client.

This is the path for regenerating from a live server (``python -m codegen fetch dandi --url
https://api.dandiarchive.org/api/docs/swagger/?format=openapi``): zero skipped endpoints, all 51 operations,
every module importable, and the corrected response shapes parse what the archive (here: the fake) answers.
Needs ../shared/reference (skipped when absent).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from scibind.testing.dandi import FakeDandiArchive

from codegen.convert import CODEGEN_DIR
from codegen.generate import generate_service
from codegen.specio import load_document
from codegen.walk import iter_operations

REPO = Path(__file__).resolve().parents[2]
OVERRIDES = REPO / "specs" / "dandi" / "live-overrides.yaml"
PACKAGE = "dandi_live_spec"


@pytest.fixture(scope="module")
def generated(
    tmp_path_factory: pytest.TempPathFactory, reference_dir: Path
) -> Iterator[tuple[Path, int]]:
    """The live document generated with the overrides into a temporary directory, importable."""
    if not (CODEGEN_DIR / "node_modules" / "swagger2openapi" / "package.json").is_file():
        pytest.skip("codegen/node_modules is missing: run `npm ci --prefix codegen`")
    spec = reference_dir / "specs" / "dandi-archive" / "dandi-archive.swagger.json"
    out = tmp_path_factory.mktemp("live")
    report = generate_service(spec, package=PACKAGE, output_root=out, overrides=OVERRIDES)
    assert report.skipped == []
    assert report.warnings == []
    assert report.converted
    expected = sum(1 for _ in iter_operations(load_document(spec)))
    sys.path.insert(0, str(out))
    try:
        yield out, expected
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.{name}")


@pytest.mark.reference
def test_live_document_generates_every_operation(generated: tuple[Path, int]) -> None:
    out, expected = generated
    assert expected == 51
    endpoints = [p for p in (out / PACKAGE / "api").rglob("*.py") if p.name != "__init__.py"]
    assert len(endpoints) == 51
    package = importlib.import_module(PACKAGE)
    imported = [
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(package.__path__, f"{PACKAGE}.")
    ]
    assert len(imported) >= 51 + 2  # endpoints, their packages, models, client, types


@pytest.mark.reference
def test_overrides_describe_what_the_archive_answers(generated: tuple[Path, int]) -> None:
    fake = FakeDandiArchive(validation_polls=0, publish_polls=0)
    dandiset_id = fake.create_dandiset("Live")
    for i in range(3):
        fake.add_asset(dandiset_id, f"sub-{i}/f.nwb", b"x" * (i + 1))
    client_module = _module("client")
    client = client_module.AuthenticatedClient(
        base_url=fake.base_url,
        token=fake.api_key,
        prefix="token",
        httpx_args={"transport": fake.transport()},
    )
    listing = _module("api.dandisets.dandisets_list").sync_detailed(client=client)
    assert listing.status_code == 200
    assert listing.parsed.count == 1
    assert listing.parsed.results[0].identifier == dandiset_id
    assert listing.parsed.results[0].star_count == 0

    assets = _module("api.dandisets.dandisets_versions_assets_list")
    page1 = assets.sync_detailed(dandiset_id, "draft", client=client, page_size=2)
    assert page1.parsed.count == 3
    assert [a.size for a in page1.parsed.results] == [1, 2]
    page2 = assets.sync_detailed(dandiset_id, "draft", client=client, page_size=2, page=2)
    assert page2.parsed.count is None

    asset_id = page1.parsed.results[0].asset_id
    download = _module("api.assets.assets_download").sync_detailed(str(asset_id), client=client)
    assert download.status_code == 302
    assert download.headers["Location"].startswith(fake.origins["storage"])

    publish = _module("api.dandisets.dandisets_versions_publish")
    fake.publish_ready(dandiset_id)
    accepted = publish.sync_detailed(dandiset_id, "draft", client=client)
    assert (accepted.status_code, accepted.content) == (202, b"")
