"""The API key from the keyring, found where dandi-cli stores it (desktop keyring or keyrings.alt's files).

Every test runs with the suite's null keyring (tests/conftest.py) unless it installs its own backend, so none
of them reads the developer's keyring.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scibind import errors
from scibind.auth import keyring_source, keyring_store
from scibind.dandi import DandiClient
from scibind.dandi._instances import api_key_env_var, credential_sources, resolve_instance
from scibind.testing.dandi import FakeDandiArchive

from .conftest import call, close, make_client

keyring = pytest.importorskip("keyring")
from keyring.backend import KeyringBackend  # noqa: E402
from keyring.backends import fail  # noqa: E402


class MemoryKeyring(KeyringBackend):
    """An in-memory keyring backend (what a desktop keyring does, without the desktop)."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}
        self.reads: list[tuple[str, str]] = []

    def get_password(self, service: str, username: str) -> str | None:
        self.reads.append((service, username))
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.entries.pop((service, username), None)


class BrokenKeyring(MemoryKeyring):
    """A keyring that fails every lookup (a locked desktop keyring, no D-Bus session...)."""

    def get_password(self, service: str, username: str) -> str | None:
        raise keyring.errors.KeyringError("locked")


@pytest.fixture
def memory(monkeypatch: pytest.MonkeyPatch) -> Iterator[MemoryKeyring]:
    """An in-memory default keyring, as if no backend had been chosen explicitly."""
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND")
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh HOME: keyrings.alt's files and keyringrc.cfg go below it."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "PYTHON_KEYRING_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "home"


@pytest.fixture
def no_prompt(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fail the test if anything asks for a password; returns the prompts seen (none)."""
    prompts: list[str] = []

    def refuse(prompt: str = "", stream: Any = None) -> str:
        prompts.append(prompt)
        raise AssertionError(f"prompted for a password: {prompt!r}")

    monkeypatch.setattr(getpass, "getpass", refuse)
    return prompts


def service_for(fake: FakeDandiArchive) -> str:
    return f"dandi-api-{resolve_instance(fake.base_url).name}"


# -- the default backend ---------------------------------------------------------------------------------------
def test_the_suite_isolates_the_keyring() -> None:
    from keyring.backends import null

    assert isinstance(keyring.get_keyring(), null.Keyring)
    assert keyring_source("dandi-api-dandi", "key").fetch() is None


async def test_client_takes_the_key_dandi_cli_stored(
    kind: str, fake: FakeDandiArchive, memory: MemoryKeyring
) -> None:
    memory.set_password(service_for(fake), "key", fake.api_key)
    client = make_client(kind, fake, api_key=None)
    try:
        assert client.authenticated
        assert (await call(client.me())).username == "testuser"
    finally:
        await close(client)
    assert memory.reads == [(service_for(fake), "key")]


async def test_environment_wins_over_the_keyring(
    kind: str, fake: FakeDandiArchive, memory: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = fake.add_user("other", email="other@example.edu")
    memory.set_password(service_for(fake), "key", other.api_key)
    monkeypatch.setenv(api_key_env_var(resolve_instance(fake.base_url)), fake.api_key)
    client = make_client(kind, fake, api_key=None)
    try:
        assert (await call(client.me())).username == "testuser"
    finally:
        await close(client)
    assert memory.reads == []


def test_key_of_another_instance_is_not_used(memory: MemoryKeyring) -> None:
    memory.set_password("dandi-api-dandi", "key", "production-key")
    with DandiClient("dandi-sandbox") as client:
        assert not client.authenticated
    assert memory.reads == [("dandi-api-dandi-sandbox", "key")]


def test_production_env_key_is_not_sent_to_other_known_instances(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DANDI_API_KEY", "production-key")
    for name in ("dandi-sandbox", "linc", "ember-dandi"):
        sources = credential_sources(resolve_instance(name))
        assert "DANDI_API_KEY" not in sources[1].describe.split()[-1].split("/")
        assert sources[1].fetch() is None
    assert credential_sources(resolve_instance("dandi"))[1].fetch() == "production-key"
    custom = credential_sources(resolve_instance("https://dandi.example.org/api"))
    assert custom[1].fetch() == "production-key"  # a private server named by URL


def test_dandi_cli_keyring_save_is_found(memory: MemoryKeyring, home: Path) -> None:
    keyring_utils = pytest.importorskip("dandi.keyring_utils")
    keyring_utils.keyring_save("dandi-api-dandi-sandbox", "key", "sandbox-key")
    source = credential_sources(resolve_instance("dandi-sandbox"))[-1]
    assert source.fetch() == "sandbox-key"


def test_a_failing_backend_is_not_fatal(
    monkeypatch: pytest.MonkeyPatch, home: Path, no_prompt: list[str]
) -> None:
    keyring.set_keyring(BrokenKeyring())
    assert keyring_source("dandi-api-dandi", "key").fetch() is None


def test_keyring_store_writes_where_the_lookup_reads(memory: MemoryKeyring) -> None:
    where = keyring_store("dandi-api-dandi", "key", "k-123")
    assert where.endswith("MemoryKeyring")
    assert memory.entries == {("dandi-api-dandi", "key"): "k-123"}
    assert keyring_source("dandi-api-dandi", "key").fetch() == "k-123"


def test_keyring_store_without_a_usable_keyring(home: Path) -> None:
    keyring.set_keyring(fail.Keyring())
    with pytest.raises(errors.CredentialsError, match="no usable keyring"):
        keyring_store("dandi-api-dandi", "key", "k-123")


# -- keyrings.alt's files (machines without a desktop keyring) ----------------------------------------------
def test_plaintext_file_keyring_is_found_without_a_desktop_keyring(
    home: Path, no_prompt: list[str]
) -> None:
    alt = pytest.importorskip("keyrings.alt.file")
    alt.PlaintextKeyring().set_password("dandi-api-dandi", "key", "from-file")
    assert Path(alt.PlaintextKeyring().file_path).is_relative_to(home)
    keyring.set_keyring(fail.Keyring())  # what keyring picks when nothing is usable
    assert keyring_source("dandi-api-dandi", "key").fetch() == "from-file"
    keyring.set_keyring(BrokenKeyring())  # a desktop keyring that errors: dandi-cli falls back too
    assert keyring_source("dandi-api-dandi", "key").fetch() == "from-file"


def test_explicitly_chosen_backend_disables_the_file_fallback(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alt = pytest.importorskip("keyrings.alt.file")
    alt.PlaintextKeyring().set_password("dandi-api-dandi", "key", "from-file")
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    keyring.set_keyring(fail.Keyring())
    assert keyring_source("dandi-api-dandi", "key").fetch() is None


@pytest.fixture
def encrypted(home: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """keyrings.alt's EncryptedKeyring file in HOME holding dandi-cli's entry (password ``pw``)."""
    alt = pytest.importorskip("keyrings.alt.file")
    try:
        alt.EncryptedKeyring._get_crypto_impl()
    except ImportError:
        pytest.skip("EncryptedKeyring needs pycryptodome(x)")
    monkeypatch.setattr(getpass, "getpass", lambda prompt="", stream=None: "pw")
    alt.EncryptedKeyring().set_password("dandi-api-dandi", "key", "from-encrypted-file")
    monkeypatch.undo()  # back to no prompts, and the HOME of `home`
    monkeypatch.setenv("HOME", str(home))
    for name in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "PYTHON_KEYRING_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    return alt


def test_encrypted_file_is_not_prompted_for_without_a_terminal(
    encrypted: Any, no_prompt: list[str]
) -> None:
    keyring.set_keyring(fail.Keyring())
    assert keyring_source("dandi-api-dandi", "key", interactive=False).fetch() is None
    keyring.set_keyring(
        encrypted.EncryptedKeyring()
    )  # dandi-cli's keyringrc.cfg makes it the default
    assert keyring_source("dandi-api-dandi", "key", interactive=False).fetch() is None
    assert no_prompt == []


def test_encrypted_file_is_read_on_a_terminal(
    encrypted: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompts: list[str] = []

    def answer(prompt: str = "", stream: Any = None) -> str:
        prompts.append(prompt)
        return "pw"

    monkeypatch.setattr(getpass, "getpass", answer)
    keyring.set_keyring(fail.Keyring())
    found = keyring_source("dandi-api-dandi", "key", interactive=True).fetch()
    assert found == "from-encrypted-file"
    assert prompts == ["Please enter password for encrypted keyring: "]


def test_encrypted_file_with_a_wrong_password_is_not_fatal(
    encrypted: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(getpass, "getpass", lambda prompt="", stream=None: "wrong")
    keyring.set_keyring(fail.Keyring())
    assert keyring_source("dandi-api-dandi", "key", interactive=True).fetch() is None
