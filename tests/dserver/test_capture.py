"""``python -m codegen capture dserver``: the committed spec is exactly what the pinned server serves."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from scibind.testing.dserver_server import require_for_tests

from codegen.capture import Capture, capture_dserver, render_provenance, write_capture

REPO = Path(__file__).resolve().parents[2]
SPEC_DIR = REPO / "specs" / "dserver"


def _fake_capture(content: bytes) -> Capture:
    return Capture(
        content=content,
        served_versions={"dservercore": "0.22.0", "dserver_direct_mongo_plugin": "0.4.2"},
        plugin_config={"allow_direct_query": True, "allow_direct_aggregation": True},
        packages={"dservercore": "0.22.0", "flask-smorest": "0.42.3", "apispec": "6.10.1"},
    )


def test_provenance_records_the_committed_document() -> None:
    content = (SPEC_DIR / "openapi.json").read_bytes()
    provenance = (SPEC_DIR / "PROVENANCE.md").read_text()
    recorded = re.search(r"sha256: `([0-9a-f]{64})`", provenance)
    assert recorded is not None
    assert recorded.group(1) == hashlib.sha256(content).hexdigest()
    for fact in (
        "dservercore | 0.22.0",
        "flask-smorest | 0.42.3",
        "apispec |",
        "allow_direct_aggregation` = True",
    ):
        assert fact in provenance
    assert "dserver-dependency-graph-plugin | 0.4.2" in provenance
    assert "27 operations on 19 paths" in provenance


def test_write_capture_is_idempotent(tmp_path: Path) -> None:
    content = (SPEC_DIR / "openapi.json").read_bytes()
    capture = _fake_capture(content)
    assert write_capture(capture, tmp_path) is True
    assert (tmp_path / "openapi.json").read_bytes() == content  # byte for byte, not re-serialised
    first = (tmp_path / "PROVENANCE.md").read_text()
    assert capture.sha256 in first
    assert write_capture(capture, tmp_path) is False  # nothing changed: nothing rewritten
    assert write_capture(_fake_capture(content.replace(b'"v1"', b'"v2"')), tmp_path) is True
    assert len(capture.operations()) == 27
    assert {"GET /graph/uuids/{uuid}", "POST /graph/uuids/{uuid}"} <= set(capture.operations())
    assert render_provenance(capture, "2000-01-01").count("2000-01-01") == 1


@pytest.mark.integration
def test_capture_reproduces_the_committed_spec(tmp_path: Path) -> None:
    """A fresh capture from the pinned server gives the committed bytes (fails when the pins drift)."""
    require_for_tests()
    capture = capture_dserver()
    assert capture.plugin_config == {"allow_direct_query": True, "allow_direct_aggregation": True}
    assert set(capture.served_versions) == {
        "dservercore",
        "dserver_search_plugin_mongo",
        "dserver_retrieve_plugin_mongo",
        "dserver_direct_mongo_plugin",
        "dserver_dependency_graph_plugin",
    }
    write_capture(capture, tmp_path)
    assert (tmp_path / "openapi.json").read_bytes() == (SPEC_DIR / "openapi.json").read_bytes()
