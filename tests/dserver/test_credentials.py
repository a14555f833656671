"""dserver credential resolution messages and error classification (no server needed)."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from scibind import errors
from scibind._core.responses import error_for_status
from scibind.auth import CredentialSource, env_source, prompt_source, resolve_credential
from scibind.dserver import DServer
from scibind.dserver._errors import (
    dserver_error_class,
    dserver_error_message,
    is_token_rejection,
)

URL = "http://127.0.0.1:9"  # never contacted: credentials are resolved when the client is built
GENERATOR = "http://127.0.0.1:9/token"


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in (
        "DSERVER_URL",
        "DSERVER_TOKEN",
        "DSERVER_TOKEN_GENERATOR_URL",
        "DSERVER_USERNAME",
        "DSERVER_PASSWORD",
        "DTOOL_CONFIG_PATH",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # not a terminal
    return tmp_path


def test_missing_username_names_every_place_tried_and_why_there_was_no_prompt() -> None:
    with pytest.raises(errors.CredentialsError) as info:
        DServer(URL, token_generator_url=GENERATOR)
    message = str(info.value)
    assert message.startswith("no dserver username found (tried: ")
    for place in (
        "argument",
        "environment DSERVER_USERNAME",
        "config file [DSERVER_USERNAME]",
        "interactive prompt (not used: stdin is not a terminal)",
    ):
        assert place in message, message


def test_prompt_switched_off_says_so() -> None:
    with pytest.raises(errors.CredentialsError) as info:
        DServer(URL, token_generator_url=GENERATOR, interactive=False)
    assert "interactive prompt (off: interactive=False)" in str(info.value)


def test_missing_password_names_every_place_tried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSERVER_USERNAME", "alice")
    with pytest.raises(errors.CredentialsError) as info:
        DServer(URL, token_generator_url=GENERATOR)
    message = str(info.value)
    assert message.startswith("no dserver password found (tried: ")
    for place in (
        "environment DSERVER_PASSWORD",
        "config file [DSERVER_PASSWORD]",
        "keyring scibind-dserver/alice",
        "interactive prompt (not used: stdin is not a terminal)",
    ):
        assert place in message, message


def test_username_from_the_dtool_config_file(isolated_home: Path) -> None:
    config = isolated_home / ".config" / "dtool" / "dtool.json"
    config.parent.mkdir(parents=True)
    config.write_text(json.dumps({"DSERVER_USERNAME": "carol", "DSERVER_PASSWORD": "pw"}))
    with DServer(URL, token_generator_url=GENERATOR) as client:
        assert client.http.auth.inner.minter.username == "carol"


def test_resolve_credential_reports_skipped_sources() -> None:
    with pytest.raises(errors.CredentialsError) as info:
        resolve_credential(
            "token",
            [
                env_source("SCIBIND_TEST_NOT_SET"),
                CredentialSource("vault", lambda: None, lambda: "not configured"),
                prompt_source("token: "),
            ],
        )
    assert str(info.value) == (
        "no token found (tried: environment SCIBIND_TEST_NOT_SET, vault (not configured), "
        "interactive prompt (not used: stdin is not a terminal))"
    )
    with pytest.raises(errors.CredentialsError, match=r"\(tried: nothing\)"):
        resolve_credential("token", [])


def _response(status: int, body: Any) -> httpx.Response:
    return httpx.Response(status, json=body, request=httpx.Request("GET", "https://d.example/me"))


@pytest.mark.parametrize(
    ("status", "body", "refused"),
    [
        (401, {"msg": "Missing Authorization Header"}, True),
        (401, {"code": 401, "status": "Unauthorized"}, True),  # user not registered
        (422, {"msg": "Not enough segments"}, True),
        (422, {"msg": "Signature verification failed"}, True),
        (422, {"code": 422, "status": "Unprocessable Entity", "errors": {"json": {}}}, False),
        (422, {"msg": "x", "errors": {}}, False),
        (403, {"msg": "no"}, False),
    ],
)
def test_token_rejections_are_told_apart_from_validation_errors(
    status: int, body: Any, refused: bool
) -> None:
    response = _response(status, body)
    assert is_token_rejection(response) is refused
    error = error_for_status(response, dserver_error_message, dserver_error_class)
    if refused:
        assert type(error) is errors.AuthenticationError
        assert error.status == status
        if "msg" in body:
            assert body["msg"] in str(error)
    else:
        assert type(error) is not errors.AuthenticationError
        assert str(error)
