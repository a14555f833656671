"""A missing dserver install fails loudly (the shipped ``dserver_server`` fixture, module-level checks, the
launcher); it skips only when ``SCIBIND_ALLOW_SKIP_DSERVER=1``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from scibind.testing import dserver_server
from scibind.testing.dserver_server import (
    ALLOW_SKIP_ENV,
    DServerStartError,
    missing_server_packages,
    require_for_tests,
    start_dserver,
)

ABSENT = "scibind_no_such_module_for_tests"


@pytest.fixture(autouse=True)
def no_skip_permission(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ALLOW_SKIP_ENV, raising=False)


def test_missing_packages_are_found_without_importing_them() -> None:
    assert missing_server_packages(["json", ABSENT, "no_such.sub.module"]) == [
        ABSENT,
        "no_such.sub.module",
    ]
    assert missing_server_packages() == []  # this suite runs with scibind[dserver-server]


def test_a_missing_package_fails_with_an_installation_hint() -> None:
    with pytest.raises(pytest.fail.Exception) as info:
        require_for_tests([ABSENT])
    message = str(info.value)
    assert ABSENT in message
    assert "pip install 'scibind[dserver-server]'" in message
    assert ALLOW_SKIP_ENV in message
    require_for_tests(["json"])  # present: nothing happens


def test_skipping_must_be_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ALLOW_SKIP_ENV, "1")
    with pytest.raises(pytest.skip.Exception, match="scibind\\[dev\\]"):
        require_for_tests([ABSENT], extra="scibind[dev]")


def test_the_launcher_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dserver_server, "SERVER_MODULES", (ABSENT,))
    with pytest.raises(DServerStartError, match=r"pip install 'scibind\[dserver-server\]'"):
        start_dserver()


def _run_pytest(tmp_path: Path, allow_skip: bool) -> subprocess.CompletedProcess[str]:
    """A user's test suite using the shipped ``dserver_server`` fixture, with dservercore 'missing'."""
    (tmp_path / "conftest.py").write_text(
        "from scibind.testing import dserver_server\n"
        f"dserver_server.SERVER_MODULES = ({ABSENT!r},)\n"
    )
    (tmp_path / "test_user.py").write_text(
        "def test_uses_the_server(dserver_server):\n    assert dserver_server.url\n"
    )
    env = {k: v for k, v in os.environ.items() if k != ALLOW_SKIP_ENV}
    if allow_skip:
        env[ALLOW_SKIP_ENV] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_shipped_fixture_errors_instead_of_skipping(tmp_path: Path) -> None:
    run = _run_pytest(tmp_path, allow_skip=False)
    assert run.returncode != 0, run.stdout
    assert "1 error" in run.stdout
    assert "pip install 'scibind[dserver-server]'" in run.stdout
    skipped = _run_pytest(tmp_path, allow_skip=True)
    assert skipped.returncode == 0, skipped.stdout
    assert "1 skipped" in skipped.stdout and "scibind[dserver-server]" in skipped.stdout


def test_a_module_level_check_is_a_collection_error(tmp_path: Path) -> None:
    (tmp_path / "test_module_level.py").write_text(
        "from scibind.testing.dserver_server import require_for_tests\n"
        f"require_for_tests([{ABSENT!r}])\n"
        "def test_never_runs():\n    pass\n"
    )
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != ALLOW_SKIP_ENV},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0, run.stdout
    assert "1 error" in run.stdout and ABSENT in run.stdout
