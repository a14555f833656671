"""The dserver subprocess: real dservercore + Mongo plugins on mongomock, SQLite, RSA keys, token generator.

Run as ``python -m scibind.testing._dserver.app DIR`` where ``DIR/config.json`` was written by the parent
(see :mod:`._protocol`). For the Flask CLI on the same SQLite file, point the ``SQLALCHEMY_*``/``JWT_*`` and
``*_MONGO_COLLECTION`` environment variables at DIR and use ``FLASK_APP=scibind.testing._dserver.app:create_app``.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import secrets
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._protocol import (
    CONFIG_FILE,
    DB_FILE,
    FAILED_FILE,
    PRIVATE_KEY_FILE,
    PUBLIC_KEY_FILE,
    READY_FILE,
    ServerConfig,
)

if TYPE_CHECKING:
    from flask import Flask

__all__ = [
    "configure_environment",
    "create_app",
    "create_token_generator",
    "generate_key_pair",
    "main",
]

log = logging.getLogger("scibind.testing.dserver")
_STARTED = time.monotonic()

# Separate collections: the direct-mongo plugin stores the readme as parsed YAML; sharing its collection
# with the retrieve plugin would make GET /readmes return a dict repr.
_COLLECTIONS = {
    "SEARCH_MONGO_COLLECTION": "search_datasets",
    "RETRIEVE_MONGO_COLLECTION": "retrieve_datasets",
    "DSERVER_MONGO_COLLECTION": "direct_datasets",
}


def generate_key_pair(workdir: Path) -> tuple[Path, Path]:
    """Write a fresh 2048-bit RSA key pair (PEM) into ``workdir``; return (private, public) paths."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = workdir / PRIVATE_KEY_FILE
    public = workdir / PUBLIC_KEY_FILE
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def configure_environment(workdir: Path, config: ServerConfig) -> None:
    """Set the environment variables dservercore and the plugins read when they are imported."""
    env = {
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{workdir / DB_FILE}",
        "JWT_PRIVATE_KEY_FILE": str(workdir / PRIVATE_KEY_FILE),
        "JWT_PUBLIC_KEY_FILE": str(workdir / PUBLIC_KEY_FILE),
        "SECRET_KEY": os.urandom(16).hex(),
        "SEARCH_MONGO_URI": "mongodb://localhost:27017/",
        "RETRIEVE_MONGO_URI": "mongodb://localhost:27017/",
        "DSERVER_MONGO_URI": "mongodb://localhost:27017/",
        "SEARCH_MONGO_DB": "dserver",
        "RETRIEVE_MONGO_DB": "dserver",
        "DSERVER_MONGO_DB": "dserver",
        **_COLLECTIONS,
        "DSERVER_ALLOW_DIRECT_QUERY": str(bool(config["allow_direct_query"])),
        "DSERVER_ALLOW_DIRECT_AGGREGATION": str(bool(config["allow_direct_aggregation"])),
    }
    os.environ.pop("JWT_PUBLIC_KEY", None)  # it would win over the key files
    if config["disable_jwt_authorisation"]:
        env["DISABLE_JWT_AUTHORISATION"] = "true"
        env["DEFAULT_USER"] = config["admin_username"]
    else:
        os.environ.pop("DISABLE_JWT_AUTHORISATION", None)
    env.update(config.get("extra_env", {}))
    os.environ.update(env)


def create_app() -> Any:
    """dservercore's app factory on patched mongomock (the environment must already be configured)."""
    from . import mongomock_patches

    mongomock_patches.apply()
    _fast_sqlite()
    from dservercore import create_app as dserver_create_app

    return dserver_create_app()


def _fast_sqlite() -> None:
    """``PRAGMA synchronous=OFF`` on every SQLite connection: the database is a throw-away file, and an
    fsync per commit would dominate dataset registration. Results are unchanged."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        if type(dbapi_connection).__module__.startswith("sqlite3"):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA synchronous=OFF")
            cursor.close()

    if not event.contains(Engine, "connect", _on_connect):
        event.listen(Engine, "connect", _on_connect)


def _provision(app: Any, config: ServerConfig) -> None:
    """Create the SQL tables, the users, the base URIs and their permissions."""
    from dservercore import sql_db
    from dservercore.utils import register_base_uri, register_permissions, register_user

    admin, user = config["admin_username"], config["user_username"]
    with app.app_context():
        sql_db.create_all()
        register_user(admin, {"is_admin": True})
        for name in [user, *config["passwords"]]:
            if name != admin:
                register_user(name, {"is_admin": False})
        for base_uri in config["base_uris"]:
            register_base_uri(base_uri)
            register_permissions(
                base_uri,
                {
                    "users_with_search_permissions": [admin, user],
                    "users_with_register_permissions": [admin],
                },
            )


def create_token_generator(
    workdir: Path, config: ServerConfig, dserver_app: Any = None, control_key: str | None = None
) -> Any:
    """A Flask app with the contract of jic-dtool/token-generator-ldap (LDAP replaced by fixed passwords).

    ``POST /token`` ``{"username", "password"}`` -> 200 ``{"status": "success", "token": JWT}``; wrong
    credentials -> ``{"status": "fail"}`` (status code ``token_generator_fail_status``, upstream: 200);
    a body without both keys -> 400. ``GET /public_key`` -> the PEM text. ``GET /`` -> a one-line banner.

    With ``dserver_app`` and ``control_key``, the test kit's control route is added too: ``POST
    /_scibind/index`` (header ``X-Scibind-Control: <key>``, JSON dataset info) registers a dataset the way
    dserver's indexer does (``flask base_uri index`` / ``flask dataset register`` call
    ``dservercore.utils.register_dataset`` with dtoolcore's info, where ``uuid`` is a string), not through
    ``PUT /uris`` (whose schema turns ``uuid`` into a UUID). 201 on success, 400 with ``{"msg"}`` if invalid.
    """
    from flask import Flask, abort, jsonify, request
    from flask_jwt_extended import JWTManager, create_access_token

    app = Flask("scibind_token_generator")
    expires = config["token_expires_in"]
    app.config.update(
        JWT_ALGORITHM="RS256",
        JWT_PRIVATE_KEY=(workdir / PRIVATE_KEY_FILE).read_text(),
        JWT_PUBLIC_KEY=(workdir / PUBLIC_KEY_FILE).read_text(),
        JWT_ACCESS_TOKEN_EXPIRES=False if expires is None else _dt.timedelta(seconds=expires),
    )
    JWTManager(app)
    passwords = dict(config["passwords"])
    fail_status = int(config["token_generator_fail_status"])

    @app.route("/")
    def index() -> str:
        return "JWT token generation service (scibind test kit; fixed passwords instead of LDAP)"

    @app.route("/public_key")
    def public_key() -> str:
        return str(app.config["JWT_PUBLIC_KEY"])

    @app.route("/token", methods=["POST"])
    def token() -> Any:
        data = request.get_json(silent=True)
        if not isinstance(data, dict) or not all(k in data for k in ("username", "password")):
            abort(400)
        username, password = data["username"], data["password"]
        if isinstance(username, str) and passwords.get(username) == password:
            return jsonify({"status": "success", "token": create_access_token(identity=username)})
        return jsonify({"status": "fail"}), fail_status

    if dserver_app is not None and control_key:
        _add_control_routes(app, dserver_app, control_key)
    return app


def _add_control_routes(app: Flask, dserver_app: Any, control_key: str) -> None:
    """The test kit's ``POST /_scibind/index`` (see :func:`create_token_generator`)."""
    import hmac

    from flask import abort, jsonify, request

    @app.route("/_scibind/index", methods=["POST"])
    def index_dataset() -> Any:
        given = request.headers.get("X-Scibind-Control", "")
        if not hmac.compare_digest(given.encode(), control_key.encode()):
            abort(403)
        info = request.get_json(silent=True)
        if not isinstance(info, dict):
            return jsonify({"msg": "expected a JSON object"}), 400
        from dservercore import ValidationError
        from dservercore.utils import register_dataset

        with dserver_app.app_context():
            try:
                register_dataset(info)
            except (ValidationError, KeyError, TypeError, ValueError) as exc:
                return jsonify({"msg": f"{type(exc).__name__}: {exc}"}), 400
        return jsonify({"uri": info.get("uri")}), 201


def _write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def _watch_parent(shutdown: threading.Event) -> None:
    """Stop when stdin reaches EOF: the parent closed it (stop) or died."""
    try:
        sys.stdin.buffer.read()
    except (OSError, ValueError):
        pass
    shutdown.set()


def _preload() -> None:
    """Import the heavy third-party modules dservercore needs (but not dservercore itself)."""
    import importlib

    for name in (
        "flask_migrate",
        "flask_smorest",
        "flask_sqlalchemy",
        "flask_marshmallow",
        "flask_jwt_extended",
        "flask_cors",
        "mongomock",
        "pymongo",
        "yaml",
        "dtoolcore",
        "werkzeug.serving",
    ):
        importlib.import_module(name)


def serve(workdir: Path) -> int:
    """Start everything, announce readiness in ``ready.json``, serve until told to stop."""
    from werkzeug.serving import make_server

    config: ServerConfig = json.loads((workdir / CONFIG_FILE).read_text())
    # dservercore reads the key files when it is imported: generate them while the rest is imported.
    keygen_error: list[BaseException] = []

    def _keygen() -> None:
        try:
            generate_key_pair(workdir)
        except BaseException as exc:
            keygen_error.append(exc)

    keygen = threading.Thread(target=_keygen, name="keygen")
    keygen.start()
    _preload()
    keygen.join()
    if keygen_error:
        raise keygen_error[0]
    configure_environment(workdir, config)
    app = create_app()
    _provision(app, config)
    control_key = secrets.token_urlsafe(24)
    tokens = create_token_generator(workdir, config, app, control_key)

    host = config["host"]
    server = make_server(host, 0, app, threaded=True)
    token_server = make_server(host, 0, tokens, threaded=True)
    shutdown = threading.Event()
    threads = [
        threading.Thread(target=server.serve_forever, args=(0.05,), name="dserver", daemon=True),
        threading.Thread(
            target=token_server.serve_forever, args=(0.05,), name="token-generator", daemon=True
        ),
        threading.Thread(target=_watch_parent, args=(shutdown,), name="parent-watch", daemon=True),
    ]
    for t in threads:
        t.start()
    signal.signal(signal.SIGTERM, lambda *_: shutdown.set())
    if hasattr(signal, "SIGINT"):
        signal.signal(signal.SIGINT, lambda *_: shutdown.set())

    _write_json_atomically(
        workdir / READY_FILE,
        {
            "pid": os.getpid(),
            "url": f"http://{host}:{server.server_port}",
            "token_generator_url": f"http://{host}:{token_server.server_port}/token",
            "control_url": f"http://{host}:{token_server.server_port}/_scibind",
            "control_key": control_key,
        },
    )
    log.info(
        "dserver on http://%s:%s, token generator on port %s (%.2f s after start)",
        host,
        server.server_port,
        token_server.server_port,
        time.monotonic() - _STARTED,
    )
    shutdown.wait()
    log.info("shutting down")
    server.shutdown()
    token_server.shutdown()
    server.server_close()
    token_server.server_close()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m scibind.testing._dserver.app DIR``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m scibind.testing._dserver.app DIR", file=sys.stderr)
        return 2
    workdir = Path(args[0])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        code = serve(workdir)
    except BaseException as exc:
        if not (workdir / READY_FILE).exists():
            _write_json_atomically(
                workdir / FAILED_FILE,
                {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()},
            )
        raise
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # skip interpreter teardown (hundreds of modules); nothing is left to flush


if __name__ == "__main__":
    sys.exit(main())
