"""`import scibind.mytardis` is cheap: no facade module, no generated code until a call needs it."""

from __future__ import annotations

import subprocess
import sys

import pytest

RUNS = 7


def _cost(statement: str, first_module: str) -> int:
    """Microseconds a fresh interpreter spends on the top-level imports the statement triggers."""
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    total, started = 0, False
    for line in err.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|", 2)
        if name.startswith("  "):
            continue
        started = started or name.strip().split(".")[0] == first_module
        total += int(cumulative) if started else 0
    return total


def _ratio_to_httpx(statement: str) -> float:
    """Best of RUNS interleaved runs of ``statement`` over best of ``import httpx``."""
    ours, reference = [], []
    for _ in range(RUNS):
        reference.append(_cost("import httpx", "httpx"))
        ours.append(_cost(statement, "scibind"))
    return min(ours) / min(reference)


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
    ratio = _ratio_to_httpx(statement)
    assert ratio <= 1.5, f"{statement}: {ratio:.2f} x import httpx"
