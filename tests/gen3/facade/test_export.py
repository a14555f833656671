"""Sheepdog export through the facade: a node or records, JSON or TSV, in memory or streamed to a file."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from scibind import errors
from scibind.gen3 import Export
from scibind.testing.gen3 import FakeGen3Commons

from .conftest import PROJECT_ID, call, close, faulty, make_client, seed


def ids_of(fake: FakeGen3Commons, label: str) -> dict[str, str]:
    return {str(n.props["submitter_id"]): n.id for n in fake.graph.nodes_of(label)}


async def test_export_node_json_and_tsv_in_memory(g3: Any, fake: FakeGen3Commons) -> None:
    seed(fake, subjects=2, samples_per_subject=2)
    as_json: Export = await call(g3.export_node(PROJECT_ID, "sample"))
    assert as_json.format == "json" and as_json.filename == "sample.json"
    rows = as_json.records()
    assert sorted(r["submitter_id"] for r in rows) == [
        "sample-0-0",
        "sample-0-1",
        "sample-1-0",
        "sample-1-1",
    ]
    assert "data" in as_json.json()
    as_tsv = await call(g3.export_node(PROJECT_ID, "sample", format="tsv", without_id=True))
    tsv_rows = as_tsv.records()
    assert sorted(r["submitter_id"] for r in tsv_rows) == sorted(r["submitter_id"] for r in rows)
    assert "id" not in tsv_rows[0] and tsv_rows[0]["type"] == "sample"
    with pytest.raises(ValueError):
        as_tsv.json()


async def test_export_records_by_id(g3: Any, fake: FakeGen3Commons) -> None:
    seed(fake, subjects=2, samples_per_subject=1)
    subjects = ids_of(fake, "subject")
    one = await call(g3.export_records(PROJECT_ID, subjects["subject-0"]))
    assert [r["submitter_id"] for r in one.records()] == ["subject-0"]
    family = await call(g3.export_records(PROJECT_ID, [subjects["subject-1"]], with_children=True))
    assert sorted(r["submitter_id"] for r in family.records()) == ["sample-1-0", "subject-1"]
    mixed = await call(
        g3.export_records(
            PROJECT_ID,
            list(subjects.values()) + list(ids_of(fake, "sample").values()),
            format="tsv",
        )
    )
    assert mixed.filename and mixed.filename.endswith(".tar.gz")
    with tarfile.open(fileobj=io.BytesIO(mixed.content)) as tar:
        assert sorted(tar.getnames()) == ["sample.tsv", "subject.tsv"]


async def test_export_to_files_streams_and_writes_atomically(
    g3: Any, fake: FakeGen3Commons, tmp_path: Path
) -> None:
    seed(fake, subjects=3, samples_per_subject=1)
    tmp_path = tmp_path / "exports"
    dest = tmp_path / "out" / "subject.tsv"
    written = await call(g3.export_node_to(PROJECT_ID, "subject", dest))
    assert written == dest
    lines = dest.read_text().splitlines()
    assert lines[0].startswith("type\t") and len(lines) == 4
    ids = list(ids_of(fake, "subject").values())
    rec = await call(g3.export_records_to(PROJECT_ID, ids[:2], tmp_path / "two.json"))
    assert len(Export(rec.read_bytes(), "json").records()) == 2
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["out", "subject.tsv", "two.json"]


async def test_failed_export_leaves_no_file(
    fake: FakeGen3Commons, kind: str, tmp_path: Path
) -> None:
    seed(fake, subjects=2, samples_per_subject=0)

    class Broken(httpx.SyncByteStream, httpx.AsyncByteStream):
        def __iter__(self):  # type: ignore[no-untyped-def]
            yield b"type\tid\n"
            raise httpx.ReadError("connection reset")

        async def __aiter__(self):  # type: ignore[no-untyped-def]
            yield b"type\tid\n"
            raise httpx.ReadError("connection reset")

    def rule(request: httpx.Request) -> httpx.Response | None:
        if request.url.path.endswith("/export/"):
            return httpx.Response(200, stream=Broken())
        return None

    tmp_path = tmp_path / "exports"
    tmp_path.mkdir()
    dest = tmp_path / "subject.tsv"
    dest.write_text("old content")
    client = make_client(kind, api_key=fake.new_api_key()["api_key"], transport=faulty(fake, rule))
    try:
        with pytest.raises(errors.ConnectionError):
            await call(client.export_node_to(PROJECT_ID, "subject", dest))
    finally:
        await close(client)
    assert dest.read_text() == "old content"
    assert [p.name for p in tmp_path.iterdir()] == ["subject.tsv"]


async def test_export_errors(g3: Any, fake: FakeGen3Commons, tmp_path: Path) -> None:
    with pytest.raises(errors.BadRequestError, match="does not have node"):
        await call(g3.export_node(PROJECT_ID, "nothing"))
    with pytest.raises(errors.NotFoundError):
        await call(g3.export_records(PROJECT_ID, ["00000000-0000-0000-0000-000000000000"]))
    with pytest.raises(errors.BadRequestError):
        await call(g3.export_node_to(PROJECT_ID, "nothing", tmp_path / "x.tsv"))
    assert not (tmp_path / "x.tsv").exists()
    with pytest.raises(errors.ConfigurationError):
        await call(g3.export_node("DEVtest", "sample"))
    with pytest.raises(errors.ConfigurationError):
        await call(g3.export_node(PROJECT_ID, "sample", format="xml"))
