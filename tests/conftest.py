"""Shared fixtures for scibind's own test suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
REFERENCE = REPO.parent / "shared" / "reference"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """``../shared/reference`` when it exists; tests that need it skip otherwise."""
    if not REFERENCE.is_dir():
        pytest.skip("../shared/reference is not present")
    return REFERENCE


@pytest.fixture(autouse=True)
def _isolated_keyring(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test reads or writes the developer's keyring.

    The null backend is installed in this process and chosen explicitly through ``PYTHON_KEYRING_BACKEND``
    (which child processes inherit, and which turns off the fallback to keyrings.alt's files). Tests of the
    keyring lookup install their own backend with ``keyring.set_keyring``.
    """
    try:
        import keyring
        from keyring.backends import null
    except ImportError:
        yield
        return
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    previous = keyring.get_keyring()
    keyring.set_keyring(null.Keyring())
    try:
        yield
    finally:
        keyring.set_keyring(previous)
