"""The contract between :mod:`scibind.testing.dserver_server` (parent) and :mod:`.app` (subprocess).

Stdlib only: the parent imports this without Flask, mongomock or dservercore.

The parent writes ``config.json`` into a fresh private directory and starts
``python -m scibind.testing._dserver.app <dir>``. The child generates the RSA key pair there, creates
the SQLite database, binds two loopback ports and then atomically writes ``ready.json``
(``{"pid", "url", "token_generator_url", "control_url", "control_key"}``); on a start-up error it writes
``failed.json`` instead. ``control_url`` is the test kit's own route on the token generator's port (registering
datasets the way dserver's indexer does); ``control_key`` must accompany every call to it.
"""

from __future__ import annotations

from typing import Any, TypedDict

__all__ = [
    "CONFIG_FILE",
    "DB_FILE",
    "FAILED_FILE",
    "LOG_FILE",
    "PRIVATE_KEY_FILE",
    "PUBLIC_KEY_FILE",
    "READY_FILE",
    "ServerConfig",
    "default_config",
]

CONFIG_FILE = "config.json"
READY_FILE = "ready.json"
FAILED_FILE = "failed.json"
LOG_FILE = "dserver.log"
DB_FILE = "dserver.sqlite"
PRIVATE_KEY_FILE = "jwt_key"
PUBLIC_KEY_FILE = "jwt_key.pub"


class ServerConfig(TypedDict):
    """What the subprocess needs to know (JSON in ``config.json``)."""

    host: str
    base_uris: list[str]
    admin_username: str
    user_username: str
    passwords: dict[str, str]
    allow_direct_query: bool
    allow_direct_aggregation: bool
    disable_jwt_authorisation: bool
    token_expires_in: float | None
    token_generator_fail_status: int
    extra_env: dict[str, str]


def default_config(**overrides: Any) -> ServerConfig:
    """A complete config with the launcher's defaults, updated with ``overrides``."""
    cfg: dict[str, Any] = {
        "host": "127.0.0.1",
        "base_uris": ["smb://test-share"],
        "admin_username": "admin",
        "user_username": "user",
        "passwords": {"admin": "admin-password", "user": "user-password"},
        "allow_direct_query": True,
        "allow_direct_aggregation": True,
        "disable_jwt_authorisation": False,
        "token_expires_in": 900.0,
        "token_generator_fail_status": 200,
        "extra_env": {},
    }
    cfg.update(overrides)
    return cfg  # type: ignore[return-value]
