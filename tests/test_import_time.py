"""Import-time budgets, as ratios to ``import httpx`` measured on the same machine in the same run.

A ratio, not an absolute time: each statement runs in a fresh interpreter with ``-X importtime`` several times and
the fastest run counts, so a loaded machine slows both sides alike.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

RUNS = 7
# The baseline is plain ``import httpx`` as installed (the definition). Where click/rich/pygments are
# installed, httpx imports its command-line client with it, which scibind defers (scibind._core.httpx_cli); the
# README reports the cost scibind adds over httpx-without-its-CLI as well.


def one_run(statement: str, first_module: str) -> int:
    """Microseconds one fresh interpreter spends on the imports the statement triggers (top-level cumulative)."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    total, started = 0, False
    for line in out.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|", 2)
        if name.startswith("  "):  # nested import, counted in its parent
            continue
        started = started or name.strip().split(".")[0] == first_module
        if started:
            total += int(cumulative)
    assert total, f"nothing imported by {statement!r}"
    return total


def ratio_to_httpx(statement: str) -> tuple[float, int, int]:
    """Best-of-RUNS cost of ``statement`` over best-of-RUNS ``import httpx``, the runs interleaved."""
    ours, reference = [], []
    for _ in range(RUNS):
        reference.append(one_run("import httpx", "httpx"))
        ours.append(one_run(statement, "scibind"))
    return min(ours) / min(reference), min(ours), min(reference)


@pytest.mark.parametrize(
    "statement",
    [
        "import scibind.dserver",
        "from scibind.dserver import DServer",
        "from scibind.dserver import AsyncDServer",
    ],
)
def test_dserver_import_within_budget(statement: str) -> None:
    ratio, cost, httpx_cost = ratio_to_httpx(statement)
    print(f"{statement}: {cost} us = {ratio:.2f} x import httpx ({httpx_cost} us)")
    assert ratio <= 1.5


def test_import_scibind_loads_no_service_and_no_httpx() -> None:
    code = (
        "import sys, scibind\n"
        "bad = [m for m in sys.modules if m.startswith(('httpx', 'scibind_generated', 'scibind.dserver', "
        "'scibind.dandi', 'scibind.gen3', 'scibind.mytardis', 'scibind.midas'))]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_one_service_does_not_load_another_or_all_models() -> None:
    code = (
        "import sys\n"
        "from scibind.dserver import DServer\n"
        "others = [m for m in sys.modules if m.startswith(('scibind.dandi', 'scibind.gen3', 'scibind.mytardis', "
        "'scibind.midas', 'scibind_generated.dandi', 'scibind_generated.gen3'))]\n"
        "assert not others, others\n"
        "models = [m for m in sys.modules if m.startswith('scibind_generated.dserver.models.')]\n"
        "assert not models, models\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
