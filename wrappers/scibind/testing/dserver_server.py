"""Run the real dserver (dservercore + the three Mongo plugins on mongomock) on loopback, for tests.

The server runs in a **subprocess** (``python -m scibind.testing._dserver.app``), so mongomock's patches and
Flask never load into the caller's process; this module needs only the standard library and httpx
(PyJWT for :meth:`DServerInstance.token`). The subprocess needs ``scibind[dserver-server]``.

>>> with run_dserver() as server:                      # doctest: +SKIP
...     server.seed_datasets(10)
...     token = server.token()                          # admin, RS256, 15 min
...     httpx.get(server.url + "/uris", headers={"Authorization": f"Bearer {token}"})

What the subprocess sets up: a fresh SQLite file and an RSA key pair in a private temporary directory;
separate Mongo collections per plugin; an admin user (search + register on every base URI) and a
non-admin user (search only); the base URIs (default ``smb://test-share``); dserver and a token generator
(the contract of jic-dtool/token-generator-ldap) each on a free ``127.0.0.1`` port. Mongo data lives in the
subprocess's memory: a restart starts empty.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid as _uuid
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from ._dserver import _protocol as proto
from ._dserver.datasets import make_dataset

__all__ = [
    "ALLOW_SKIP_ENV",
    "SERVER_EXTRA",
    "DServerInstance",
    "DServerStartError",
    "missing_server_packages",
    "require_for_tests",
    "run_dserver",
    "start_dserver",
]

SERVER_EXTRA = "scibind[dserver-server]"
ALLOW_SKIP_ENV = "SCIBIND_ALLOW_SKIP_DSERVER"
"""Set to ``1`` to let tests that need the real dserver skip when it is not installed (default: they fail)."""
SERVER_MODULES = (
    "dservercore",
    "dserver_search_plugin_mongo",
    "dserver_retrieve_plugin_mongo",
    "dserver_direct_mongo_plugin",
    "mongomock",
    "flask",
    "jwt",
    "cryptography",
)
"""What the dserver subprocess (and :meth:`DServerInstance.token`) import; the dependency-graph plugin is
optional (without it, ``/graph`` is not served)."""

_DEFAULT_EXPIRES_IN = 900.0
# Configuration dservercore, its plugins and Flask read from the environment: never inherited from the
# caller, so the server (and the captured OpenAPI document) only depends on the launcher's options.
_DSERVER_ENV_PREFIXES = (
    "SQLALCHEMY_",
    "JWT_",
    "SECRET_KEY",
    "SEARCH_MONGO_",
    "RETRIEVE_MONGO_",
    "DSERVER_",
    "OPENAPI_",
    "API_SPEC_OPTIONS",
    "DISABLE_JWT_AUTHORISATION",
    "DEFAULT_USER",
    "FLASK_",
)


class DServerStartError(RuntimeError):
    """The dserver subprocess did not become ready; the message ends with the tail of its log."""


def missing_server_packages(modules: Sequence[str] | None = None) -> list[str]:
    """The modules the real dserver needs that are not installed (found without importing them)."""
    return [m for m in (SERVER_MODULES if modules is None else modules) if not _findable(m)]


def _findable(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _unavailable(missing: Sequence[str], extra: str = SERVER_EXTRA) -> str:
    return (
        f"the real dserver is not installed (missing: {', '.join(missing)}): "
        f"pip install '{extra}' (set {ALLOW_SKIP_ENV}=1 to skip the tests that need it instead)"
    )


def require_for_tests(modules: Sequence[str] | None = None, *, extra: str = SERVER_EXTRA) -> None:
    """In a pytest run (test, fixture or module level): fail with an installation hint when ``modules``
    (default: what the real dserver needs) are missing, so a broken install is never a silent skip; skip instead
    when ``SCIBIND_ALLOW_SKIP_DSERVER=1``."""
    import pytest

    missing = missing_server_packages(modules)
    if not missing:
        return
    reason = _unavailable(missing, extra)
    if os.environ.get(ALLOW_SKIP_ENV, "").strip().lower() in ("1", "true", "yes", "on"):
        pytest.skip(reason, allow_module_level=True)
    pytest.fail(reason, pytrace=False)


def _uri_path(uri: str) -> str:
    """``smb://share/uuid`` -> ``smb%3A%2F%2Fshare%2Fuuid``, the form ``dtool_lookup_api`` sends."""
    return quote(uri, safe="")


class DServerInstance:
    """A running dserver subprocess and what a test needs to talk to it.

    Attributes: ``url`` (no trailing slash), ``token_generator_url`` (the ``POST /token`` URL, as
    ``DSERVER_TOKEN_GENERATOR_URL`` expects), ``public_key_url``, ``admin_username``, ``admin_password``,
    ``user_username``, ``user_password``, ``base_uri`` (the first of ``base_uris``), ``workdir``,
    ``log_path``, ``pid``, ``allow_direct_aggregation``. Passwords and tokens are not in the repr.
    """

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        workdir: Path,
        log_path: Path,
        config: proto.ServerConfig,
        ready: Mapping[str, Any],
        *,
        owns_workdir: bool,
    ) -> None:
        self.process = process
        self.workdir = workdir
        self.log_path = log_path
        self.url: str = str(ready["url"])
        self.token_generator_url: str = str(ready["token_generator_url"])
        self.public_key_url: str = self.token_generator_url.rsplit("/", 1)[0] + "/public_key"
        self._control_url: str | None = ready.get("control_url")
        self._control_key: str | None = ready.get("control_key")
        self.pid: int = int(ready["pid"])
        self.base_uris: tuple[str, ...] = tuple(config["base_uris"])
        self.base_uri: str = self.base_uris[0]
        self.admin_username: str = config["admin_username"]
        self.user_username: str = config["user_username"]
        self.admin_password: str = config["passwords"][self.admin_username]
        self.user_password: str = config["passwords"][self.user_username]
        self.allow_direct_aggregation: bool = config["allow_direct_aggregation"]
        self._owns_workdir = owns_workdir
        self._private_key: str | None = None
        self._public_key = (workdir / proto.PUBLIC_KEY_FILE).read_text()
        self._http: httpx.Client | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        state = "running" if self.is_running() else "stopped"
        return f"<DServerInstance {self.url} pid={self.pid} {state}>"

    # -- keys and tokens --------------------------------------------------------------------------
    @property
    def public_key(self) -> str:
        """The RS256 public key (PEM) the server verifies tokens with."""
        return self._public_key

    def token(
        self,
        username: str | None = None,
        *,
        expires_in: float | None = _DEFAULT_EXPIRES_IN,
        **claims: Any,
    ) -> str:
        """Mint an RS256 access token for ``username`` (default: the admin) with the server's private key.

        Claims are those Flask-JWT-Extended issues (``sub type fresh jti iat nbf exp``). ``expires_in=None``
        leaves ``exp`` out (like ``flask user token --last-forever``); a negative value gives an expired
        token. Extra ``claims`` are added or override.
        """
        import jwt  # PyJWT, from scibind[dserver-server]

        if self._private_key is None:
            self._private_key = (self.workdir / proto.PRIVATE_KEY_FILE).read_text()
        now = int(time.time())
        payload: dict[str, Any] = {
            "fresh": False,
            "iat": now,
            "jti": str(_uuid.uuid4()),
            "type": "access",
            "sub": username or self.admin_username,
            "nbf": now,
        }
        if expires_in is not None:
            payload["exp"] = now + int(expires_in)
            if expires_in < 0:
                payload["iat"] = payload["nbf"] = payload["exp"] - 60
        payload.update(claims)
        return jwt.encode(payload, self._private_key, algorithm="RS256")

    def headers(self, username: str | None = None) -> dict[str, str]:
        """``{"Authorization": "Bearer <token>"}`` for ``username`` (default: the admin)."""
        return {"Authorization": f"Bearer {self.token(username)}"}

    def client(self, username: str | None = None, *, timeout: float = 30.0) -> httpx.Client:
        """A new ``httpx.Client`` on :attr:`url` authenticated as ``username``; the caller closes it."""
        return httpx.Client(base_url=self.url, headers=self.headers(username), timeout=timeout)

    # -- datasets ---------------------------------------------------------------------------------
    def dataset_body(self, **fields: Any) -> dict[str, Any]:
        """A realistic registration body (see :func:`scibind.testing._dserver.datasets.make_dataset`);
        ``base_uri`` defaults to :attr:`base_uri`."""
        base_uri = fields.pop("base_uri", None) or self.base_uri
        return make_dataset(base_uri, **fields)

    def register_dataset(
        self, body: Mapping[str, Any] | None = None, *, token: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        """Register one dataset over HTTP (``PUT /uris/<uri>``) and return the body that was sent.

        Pass a complete ``body`` or the fields for :meth:`dataset_body`. Raises ``httpx.HTTPStatusError``
        unless the server answers 200 or 201.
        """
        data = dict(body) if body is not None else self.dataset_body(**fields)
        http = self._admin_http()
        headers = {"Authorization": f"Bearer {token}"} if token else None
        resp = http.put(f"/uris/{_uri_path(data['uri'])}", json=data, headers=headers)
        if resp.status_code not in (200, 201):
            raise httpx.HTTPStatusError(
                f"PUT {data['uri']} -> {resp.status_code}: {resp.text[:500]}",
                request=resp.request,
                response=resp,
            )
        return data

    def index_dataset(self, body: Mapping[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
        """Register one dataset the way dserver's indexer does, and return the body that was registered.

        ``flask base_uri index`` and ``flask dataset register`` read a dtool dataset and hand dtoolcore's
        info (``uuid`` a string) to ``dservercore.utils.register_dataset``; ``PUT /uris/...`` runs the same
        function after its schema turned ``uuid`` into a UUID, so the Mongo documents differ in that field's
        type. The dependency-graph plugin only links string UUIDs (see docs/dserver.md), so datasets for
        :meth:`~scibind.dserver.DServer.graph` tests are registered this way. Raises
        ``httpx.HTTPStatusError`` if the server refuses the dataset.
        """
        data = dict(body) if body is not None else self.dataset_body(**fields)
        if self._control_url is None or self._control_key is None:
            raise RuntimeError("this dserver subprocess offers no control route")
        resp = httpx.post(
            self._control_url + "/index",
            json=data,
            headers={"X-Scibind-Control": self._control_key},
            timeout=60.0,
        )
        if resp.status_code != 201:
            raise httpx.HTTPStatusError(
                f"indexing {data.get('uri')} -> {resp.status_code}: {resp.text[:500]}",
                request=resp.request,
                response=resp,
            )
        return data

    def seed_datasets(
        self,
        n: int,
        *,
        seed: int | None = None,
        base_uri: str | None = None,
        concurrency: int = 8,
        **fields: Any,
    ) -> list[dict[str, Any]]:
        """Register ``n`` new made-up datasets over HTTP, in parallel (the same ones again for the same
        ``seed`` and fields).

        ``fields`` are fixed for every dataset (for example ``creator_username="alice"``). Returns the bodies.
        """
        # the fixed fields are part of the seed: the same seed with other fields gives other datasets
        rng = random.Random(
            None if seed is None else f"{seed}|{base_uri}|{sorted(fields.items())!r}"
        )
        bodies = [self.dataset_body(base_uri=base_uri, rng=rng, **fields) for _ in range(n)]
        self._admin_http()
        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            list(pool.map(self.register_dataset, bodies))
        return bodies

    def _admin_http(self) -> httpx.Client:
        with self._lock:
            if self._http is None:
                self._http = httpx.Client(
                    base_url=self.url,
                    headers={"Authorization": f"Bearer {self.token(expires_in=None)}"},
                    timeout=60.0,
                    limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
                )
            return self._http

    # -- lifecycle --------------------------------------------------------------------------------
    def is_running(self) -> bool:
        """Whether the subprocess is alive."""
        return self.process.poll() is None

    def read_log(self) -> str:
        """The subprocess's combined stdout/stderr so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the subprocess (EOF on stdin, then SIGTERM, then kill) and remove the temporary directory."""
        with self._lock:
            if self._http is not None:
                self._http.close()
                self._http = None
        _stop_process(self.process, timeout)
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> DServerInstance:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _stop_process(process: subprocess.Popen[bytes], timeout: float) -> None:
    if process.stdin is not None and not process.stdin.closed:
        with contextlib.suppress(OSError):
            process.stdin.close()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=timeout / 2)
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout / 2)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _wait_until_ready(
    process: subprocess.Popen[bytes], workdir: Path, log_path: Path, deadline: float
) -> dict[str, Any]:
    """Poll for ``ready.json`` (the child binds its ports first), then for an HTTP answer."""
    ready_file, failed_file = workdir / proto.READY_FILE, workdir / proto.FAILED_FILE
    interval = 0.005
    while not ready_file.exists():
        if failed_file.exists() or process.poll() is not None or time.monotonic() > deadline:
            reason = (
                json.loads(failed_file.read_text())["error"]
                if failed_file.exists()
                else f"exited with {process.returncode}"
                if process.poll() is not None
                else "timed out"
            )
            raise DServerStartError(
                f"dserver did not start ({reason}); log {log_path}:\n{_log_tail(log_path)}"
            )
        time.sleep(interval)  # polling interval, not a fixed wait
        interval = min(interval * 1.5, 0.05)
    ready: dict[str, Any] = json.loads(ready_file.read_text())
    with httpx.Client(timeout=2.0) as http:
        while True:
            try:
                if http.get(ready["url"] + "/config/versions").status_code == 200:
                    return ready
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise DServerStartError(
                    f"dserver is not answering; log {log_path}:\n{_log_tail(log_path)}"
                )
            time.sleep(0.01)


def start_dserver(
    *,
    base_uris: Sequence[str] = ("smb://test-share",),
    admin_username: str = "admin",
    admin_password: str = "admin-password",
    user_username: str = "user",
    user_password: str = "user-password",
    extra_users: Mapping[str, str] | None = None,
    allow_direct_query: bool = True,
    allow_direct_aggregation: bool = True,
    disable_jwt_authorisation: bool = False,
    token_expires_in: float | None = 900.0,
    token_generator_fail_status: int = 200,
    env: Mapping[str, str] | None = None,
    workdir: str | os.PathLike[str] | None = None,
    log_path: str | os.PathLike[str] | None = None,
    startup_timeout: float = 60.0,
    python: str | None = None,
) -> DServerInstance:
    """Start a dserver subprocess and wait until it answers; the caller must :meth:`~DServerInstance.stop` it.

    ``extra_users`` (username -> password) become non-admin users with search rights and can get tokens
    from the token generator. ``token_expires_in`` is the generator's token lifetime (``None``: no ``exp``).
    ``token_generator_fail_status`` is the status for wrong credentials (upstream answers 200
    ``{"status": "fail"}``). ``env`` adds environment variables for dserver (for example
    ``{"OPENAPI_URL_PREFIX": "/api-doc"}``). ``workdir`` (kept afterwards) defaults to a new temporary
    directory that :meth:`~DServerInstance.stop` removes (kept if start-up fails); ``log_path`` defaults to
    ``<workdir>/dserver.log``.
    """
    if python is None and (missing := missing_server_packages()):
        raise DServerStartError(_unavailable(missing))
    passwords = {
        admin_username: admin_password,
        user_username: user_password,
        **(extra_users or {}),
    }
    config = proto.default_config(
        base_uris=[b.rstrip("/") for b in base_uris],
        admin_username=admin_username,
        user_username=user_username,
        passwords=passwords,
        allow_direct_query=allow_direct_query,
        allow_direct_aggregation=allow_direct_aggregation,
        disable_jwt_authorisation=disable_jwt_authorisation,
        token_expires_in=token_expires_in,
        token_generator_fail_status=token_generator_fail_status,
        extra_env=dict(env or {}),
    )
    if not config["base_uris"]:
        raise ValueError("at least one base URI is needed")
    owns_workdir = workdir is None
    wd = Path(tempfile.mkdtemp(prefix="scibind-dserver-")) if workdir is None else Path(workdir)
    wd.mkdir(parents=True, exist_ok=True)
    for stale in (proto.READY_FILE, proto.FAILED_FILE, proto.DB_FILE):
        (wd / stale).unlink(missing_ok=True)
    (wd / proto.CONFIG_FILE).write_text(json.dumps(config))
    log = Path(log_path) if log_path is not None else wd / proto.LOG_FILE

    child_env = {k: v for k, v in os.environ.items() if not k.startswith(_DSERVER_ENV_PREFIXES)}
    child_env["PYTHONUNBUFFERED"] = "1"
    with open(log, "ab") as log_file:
        process = subprocess.Popen(
            [python or sys.executable, "-m", "scibind.testing._dserver.app", str(wd)],
            stdin=subprocess.PIPE,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=child_env,
            cwd=wd,
        )
    try:
        ready = _wait_until_ready(process, wd, log, time.monotonic() + startup_timeout)
    except BaseException:
        _stop_process(process, 5.0)  # the work directory (with the log) is kept for debugging
        raise
    return DServerInstance(process, wd, log, config, ready, owns_workdir=owns_workdir)


@contextlib.contextmanager
def run_dserver(**options: Any) -> Iterator[DServerInstance]:
    """Context manager around :func:`start_dserver` (same keyword options); stops the server on exit."""
    server = start_dserver(**options)
    try:
        yield server
    finally:
        server.stop()
