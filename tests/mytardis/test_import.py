"""`import scibind.mytardis` is cheap: no facade module, no generated code until a call needs it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ..test_import_time import ratio_to_httpx


def _modules_after(statement: str) -> list[str]:
    code = f"{statement}; import sys; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_package_import_loads_no_facade_and_no_generated_code() -> None:
    loaded = _modules_after("import scibind.mytardis")
    assert "scibind.mytardis._client" not in loaded
    assert not [m for m in loaded if m.startswith("scibind_generated")]


def test_client_classes_load_no_generated_code() -> None:
    loaded = _modules_after("from scibind.mytardis import MyTardisClient, AsyncMyTardisClient")
    assert "scibind.mytardis._client" in loaded
    assert not [m for m in loaded if m.startswith("scibind_generated")]


@pytest.mark.parametrize(
    "statement", ["import scibind.mytardis", "from scibind.mytardis import MyTardisClient"]
)
def test_import_within_budget(statement: str) -> None:
    ratio, _cost, _httpx_cost = ratio_to_httpx(statement)
    assert ratio <= 1.5, f"{statement}: {ratio:.2f} x import httpx"
