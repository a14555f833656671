"""The on-disk token cache: private directory and files, atomic writes, hashed names, and everything doubtful
ignored rather than trusted."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from pathlib import Path

import pytest
from scibind._core.secrets import Secret
from scibind._core.token_cache import TokenCache, default_directory

TOKEN = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1In0.sig"
POSIX = pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_default_directory_follows_the_cache_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCIBIND_CACHE_DIR", str(tmp_path / "c"))
    assert default_directory() == tmp_path / "c" / "tokens"
    monkeypatch.delenv("SCIBIND_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert default_directory() == tmp_path / "x" / "scibind" / "tokens"


@POSIX
def test_round_trip_private_modes_and_hashed_names(tmp_path: Path) -> None:
    cache = TokenCache(tmp_path / "tokens")
    entry = cache.entry("gen3-api-key", "https://commons.example/user", "key-id-1234")
    assert entry.load() is None
    expires = time.time() + 600
    entry.save(Secret(TOKEN), expires)
    assert entry.load() == (Secret(TOKEN), expires)
    assert mode(cache.directory) == 0o700 and mode(entry.path) == 0o600
    assert "key-id-1234" not in entry.path.name and "commons" not in entry.path.name
    # no temporary files left
    assert [p.name for p in cache.directory.iterdir()] == [entry.path.name]
    assert TOKEN not in repr(entry) and TOKEN not in repr(cache)
    other = cache.entry("gen3-api-key", "https://commons.example/user", "key-id-5678")
    assert other.path != entry.path and other.load() is None


def test_corrupt_entries_are_ignored_and_removed(tmp_path: Path) -> None:
    cache = TokenCache(tmp_path / "tokens")
    entry = cache.entry("x")
    entry.save(Secret(TOKEN), time.time() + 60)
    for garbage in (b"{not json", b'{"format": 1, "token": ""}', b'{"format": 99, "token": "t"}',
                    b'{"format": 1, "token": "t", "expires_at": "soon"}'):  # fmt: skip
        entry.path.write_bytes(garbage)
        entry.path.chmod(0o600)
        assert entry.load() is None
        assert not entry.path.exists()


@POSIX
def test_a_file_others_can_read_is_not_trusted(tmp_path: Path) -> None:
    entry = TokenCache(tmp_path / "tokens").entry("x")
    entry.save(Secret(TOKEN), time.time() + 60)
    entry.path.chmod(0o644)
    assert entry.load() is None


@POSIX
def test_a_directory_others_can_enter_is_not_used(tmp_path: Path) -> None:
    directory = tmp_path / "tokens"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    entry = TokenCache(directory).entry("x")
    entry.save(Secret(TOKEN), time.time() + 60)
    assert not entry.path.exists()  # nothing written into a shared directory
    directory.chmod(0o700)
    entry.save(Secret(TOKEN), time.time() + 60)
    directory.chmod(0o755)
    assert entry.load() is None  # and nothing read from one


@POSIX
def test_a_symlink_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.json"
    target.write_text(json.dumps({"format": 1, "token": TOKEN, "expires_at": time.time() + 60}))
    target.chmod(0o600)
    cache = TokenCache(tmp_path / "tokens")
    entry = cache.entry("x")
    entry.save(Secret("placeholder"), time.time() + 60)
    entry.path.unlink()
    entry.path.symlink_to(target)
    assert entry.load() is None


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to chown")
def test_a_file_of_another_user_is_not_trusted(tmp_path: Path) -> None:
    entry = TokenCache(tmp_path / "tokens").entry("x")
    entry.save(Secret(TOKEN), time.time() + 60)
    os.chown(entry.path, 4321, 4321)
    assert entry.load() is None


def test_concurrent_writers_leave_one_whole_entry(tmp_path: Path) -> None:
    entry = TokenCache(tmp_path / "tokens").entry("x")
    tokens = [f"{TOKEN}{i}" for i in range(16)]
    threads = [
        threading.Thread(target=entry.save, args=(Secret(t), time.time() + 60)) for t in tokens
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    loaded = entry.load()
    assert loaded is not None and loaded[0].reveal() in tokens
    assert len(list(entry.cache.directory.iterdir())) == 1
