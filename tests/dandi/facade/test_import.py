"""``import scibind.dandi`` stays cheap: no generated code, no transfer machinery, no asyncio until used."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ...test_import_time import ratio_to_httpx

LOADED = (
    "import sys, json; {statement}; "
    "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('scibind', 'asyncio')))))"
)


def loaded_after(statement: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", LOADED.format(statement=statement)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(json.loads(out))


def test_package_import_loads_nothing_else() -> None:
    assert loaded_after("import scibind.dandi") == {
        "scibind",
        "scibind._core",
        "scibind._core.httpx_cli",  # the import hook that keeps httpx's CLI from loading
        "scibind._lazy",
        "scibind.dandi",
    }


def test_client_import_defers_generated_code_and_transfers() -> None:
    loaded = loaded_after("from scibind.dandi import DandiClient, AsyncDandiClient")
    assert "scibind.dandi._client" in loaded
    deferred = {
        "asyncio",
        "scibind_generated.dandi",
        "scibind_generated.dandi_metadata",
        "scibind.pagination",
        "scibind.auth",
        "scibind.transfers.download",
        "scibind.transfers.upload",
        "scibind.transfers.journal",
        "scibind.dandi._upload",
        "scibind.dandi._download",
        "scibind.dandi._tasks",
        "scibind.dandi._zarrsum",
    }
    assert not loaded & deferred
    assert not any(m.startswith("scibind_generated") for m in loaded)


def test_import_time_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Measured as installed code runs: from bytecode caches (warmed first, in a private prefix)."""
    statement = "from scibind.dandi import DandiClient, AsyncDandiClient"
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    monkeypatch.setenv("PYTHONPYCACHEPREFIX", str(tmp_path / "pycache"))
    subprocess.run([sys.executable, "-c", f"import httpx; {statement}"], check=True)
    ratio, cost, httpx_cost = ratio_to_httpx(statement)
    print(f"{statement}: {cost} us = {ratio:.2f} x import httpx ({httpx_cost} us)")
    assert ratio <= 1.5
