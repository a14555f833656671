"""Fixtures for the fault scenarios: the service harness (started behind fault servers), the client mode, and a
watch on every log record and error for secrets."""

from __future__ import annotations

import base64
import logging
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scibind import errors

from .harness import HARNESSES, Harness


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No credentials or caches from the developer's environment; upload journals in the test's directory."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("SCIBIND_CACHE_DIR", str(tmp_path / "cache"))
    for var in (
        "DSERVER_URL",
        "DSERVER_TOKEN",
        "DSERVER_TOKEN_GENERATOR_URL",
        "DSERVER_USERNAME",
        "DSERVER_PASSWORD",
        "DTOOL_CONFIG_PATH",
        "GEN3_API_KEY",
        "MYTARDIS_URL",
        "MYTARDIS_USERNAME",
        "MYTARDIS_API_KEY",
        "MYTARDIS_PASSWORD",
        "DANDI_API_KEY",
        "MIDAS_URL",
        "MIDAS_API_KEY",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(var, raising=False)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += "\n" + "".join(traceback.format_exception(record.exc_info[1]))
        self.lines.append(f"{record.name}: {text}")


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    """Every log line of scibind, httpx and httpcore at DEBUG during the test."""
    handler = _Collect()
    loggers = [logging.getLogger(n) for n in ("scibind", "httpx", "httpcore")]
    saved = [(lg.level, lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    try:
        yield handler.lines
    finally:
        for lg, (level, _) in zip(loggers, saved, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)


def secret_forms(secrets: list[str]) -> list[str]:
    """Each secret, and the forms it travels in (Basic credentials in base64)."""
    forms: list[str] = []
    for value in secrets:
        if not value:
            continue
        forms.append(value)
        forms.append(base64.b64encode(value.encode()).decode())
    return forms


def assert_clean(text: str, secrets: list[str], where: str) -> None:
    for value in secret_forms(secrets):
        assert value not in text, (
            f"a secret appears in {where}: ...{text[max(0, text.find(value) - 60) :][:160]}"
        )


def check_error(exc: BaseException, secrets: list[str]) -> None:
    """The error is a ScibindError and neither it nor its causes show a secret."""
    assert isinstance(exc, errors.ScibindError), f"not a ScibindError: {type(exc).__name__}: {exc}"
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = f"{current}\n{current!r}\n{current.args!r}\n{vars(current)!r}"
        assert_clean(text, secrets, f"{type(current).__name__}")
        current = current.__cause__ or current.__context__
    assert_clean("".join(traceback.format_exception(exc)), secrets, "the traceback")


@pytest.fixture
def service(
    request: pytest.FixtureRequest, tmp_path: Path, log_lines: list[str]
) -> Iterator[Harness]:
    """The service named by the test's parameter, running behind fault servers; afterwards, no secret may
    appear in any log line."""
    harness = HARNESSES[request.param](tmp_path, request)
    with harness.running():
        yield harness
        secrets = harness.all_secrets()
    assert_clean("\n".join(log_lines), secrets, "the logs")
    if any(s.requests for s in (harness.api, harness.storage) if s is not None):
        assert log_lines, "logging was not captured"


@pytest.fixture
def check(service: Harness) -> Any:
    """``check(exc)``: the error is typed and shows no secret of the service."""

    def run(exc: BaseException) -> BaseException:
        check_error(exc, service.all_secrets())
        return exc

    return run
