"""``bench/dandi_bench.py --quick`` runs end to end (about 7 s): both clients list, upload and download
against the fake served from another process, and every result is checked by the benchmark itself.

A smoke test only: timings depend on the machine, so no ratio is asserted here (the README's numbers come
from ``--repeat 3``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_dandi_benchmark_quick_run(tmp_path: Path) -> None:
    pytest.importorskip("dandi.dandiapi")
    out = tmp_path / "bench.json"
    run = subprocess.run(
        [sys.executable, str(REPO / "bench" / "dandi_bench.py"), "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    results = json.loads(out.read_text())["results"]
    assert set(results) == {"list", "upload", "download", "import"}
    for name, result in results.items():
        assert set(result["medians"]) == {"scibind", "dandi-cli"}, name
        assert all(t > 0 for t in result["medians"].values()), name
    assert "| list 2,000 assets" in run.stdout
