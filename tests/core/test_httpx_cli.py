"""``import scibind`` keeps httpx's command-line client (click, rich, pygments) from loading, without breaking it."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

HAS_CLI = all(importlib.util.find_spec(m) for m in ("click", "pygments", "rich"))


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)


def test_clients_import_without_the_cli() -> None:
    out = run(
        "import sys\n"
        "from scibind.dandi import DandiClient\n"
        "from scibind.dserver import DServer\n"
        "import httpx\n"
        "assert type(sys.modules['httpx._main']).__name__ == '_DeferredCLI'\n"
        "print(sorted(m for m in ('click', 'pygments', 'rich') if m in sys.modules))\n"
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.skipif(not HAS_CLI, reason="httpx's CLI extras are not installed")
def test_cli_still_works_after_import_scibind() -> None:
    out = run(
        "import sys, scibind, httpx\n"
        "from httpx._main import print_help\n"  # any name loads the real module
        "assert print_help.__module__ == 'httpx._main'\n"
        "assert type(sys.modules['httpx._main']).__name__ == 'module'\n"
        "sys.argv = ['httpx', '--help']\n"
        "httpx.main()\n"
    )
    assert "A next generation HTTP client" in out.stdout


@pytest.mark.skipif(not HAS_CLI, reason="httpx's CLI extras are not installed")
def test_main_alone_loads_the_cli() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, scibind, httpx; sys.argv = ['httpx', '--help']; httpx.main()",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0 and "A next generation HTTP client" in proc.stdout


def test_nothing_changes_when_httpx_came_first() -> None:
    run(
        "import sys, httpx, scibind\n"
        "from scibind.dandi import DandiClient\n"
        "assert type(sys.modules['httpx._main']).__name__ != '_DeferredCLI'\n"
    )
