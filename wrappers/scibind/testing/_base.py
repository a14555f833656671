"""Base for the stateful fake services shipped in :mod:`scibind.testing`.

A fake is a plain object whose :meth:`FakeService.handle` turns an :class:`httpx.Request` into an
:class:`httpx.Response`. That one handler is exposed three ways:

* :meth:`FakeService.mock` -- a respx router for users' tests (``with fake.mock(): ...``);
* :meth:`FakeService.transport` -- an :class:`httpx.MockTransport`;
* :meth:`FakeService.serve` -- a real HTTP/1.1 server on 127.0.0.1 (one port per origin), for benchmarks,
  fault injection and peer clients that do not use httpx.

Routes are registered with :func:`route` on methods of a subclass. A fake may own several *origins*
(for example ``"api"`` and ``"storage"``) so that presigned storage URLs live on another host.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import httpx

__all__ = ["FakeService", "json_response", "route"]

Handler = Callable[..., httpx.Response]


def route(method: str, pattern: str, *, origin: str = "api") -> Callable[[Handler], Handler]:
    """Register a handler for ``method`` and a path regex (relative to the origin's base path).

    Named groups in ``pattern`` are passed to the handler as keyword arguments, after the request.
    """

    def decorate(fn: Handler) -> Handler:
        routes: list[tuple[str, str, str]] = fn.__dict__.setdefault("_fake_routes", [])
        routes.append((origin, method.upper(), pattern))
        return fn

    return decorate


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> httpx.Response:
    """A JSON response with the usual content type."""
    return httpx.Response(
        status,
        content=json.dumps(data).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )


class FakeService:
    """Stateful fake of an HTTP API. Subclasses define routes and state.

    ``origins`` maps an origin name to its base URL (scheme, host, port and base path). In :meth:`serve` mode
    each origin is re-bound to its own loopback server, so URLs that handlers build with :meth:`url` stay valid.
    """

    default_origins: ClassVar[dict[str, str]] = {"api": "https://api.fake.test"}

    def __init__(self, origins: dict[str, str] | None = None) -> None:
        self.origins: dict[str, str] = dict(self.default_origins)
        if origins:
            self.origins.update(origins)
        self.lock = threading.RLock()
        self.requests: list[httpx.Request] = []
        self._routes: list[tuple[str, str, re.Pattern[str], Handler]] = []
        for name in dir(type(self)):
            fn = getattr(type(self), name, None)
            for origin, method, pattern in getattr(fn, "_fake_routes", ()):
                self._routes.append(
                    (origin, method, re.compile(pattern + r"\Z"), getattr(self, name))
                )

    # -- URLs -------------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """Base URL of the ``api`` origin."""
        return self.origins["api"]

    def url(self, path: str, origin: str = "api") -> str:
        """Absolute URL for ``path`` (relative to the origin's base path)."""
        return self.origins[origin].rstrip("/") + "/" + path.lstrip("/")

    def _match_origin(self, request: httpx.Request) -> tuple[str, str] | None:
        best: tuple[str, str] | None = None
        for name, base in self.origins.items():
            b = httpx.URL(base)
            if (request.url.scheme, request.url.host, request.url.port) != (
                b.scheme,
                b.host,
                b.port,
            ):
                continue
            prefix = b.path.rstrip("/")
            path = request.url.path
            if path == prefix or path.startswith(prefix + "/") or not prefix:
                rel = path[len(prefix) :] or "/"
                if best is None or len(prefix) > len(best[1]):
                    best = (name, rel)
        return best

    # -- dispatch ---------------------------------------------------------------------------------
    def handle(self, request: httpx.Request) -> httpx.Response:
        """Dispatch one request to its route handler."""
        request.read()
        with self.lock:
            self.requests.append(request)
        matched = self._match_origin(request)
        if matched is None:
            return self.not_found(request)
        origin, rel = matched
        method_mismatch = False
        for r_origin, method, pattern, handler in self._routes:
            if r_origin != origin:
                continue
            m = pattern.match(rel)
            if not m:
                continue
            if method != request.method:
                method_mismatch = True
                continue
            return handler(request, **m.groupdict())
        if method_mismatch:
            return self.method_not_allowed(request)
        return self.not_found(request)

    def not_found(self, request: httpx.Request) -> httpx.Response:
        """Response for an unknown path (override to match the real server's body)."""
        return json_response({"detail": "Not found."}, 404)

    def method_not_allowed(self, request: httpx.Request) -> httpx.Response:
        """Response for a known path with the wrong method."""
        return json_response({"detail": f'Method "{request.method}" not allowed.'}, 405)

    # -- the three ways to use a fake ----------------------------------------------------------------
    def transport(self) -> httpx.MockTransport:
        """An httpx transport answering from this fake."""
        return httpx.MockTransport(self.handle)

    @contextlib.contextmanager
    def mock(self) -> Iterator[Any]:
        """Route every httpx request for this fake's origins to it, with respx.

        Yields the ``respx.MockRouter`` so tests can add routes of their own.
        """
        import respx

        with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
            for base in self.origins.values():
                b = httpx.URL(base)
                # respx's port=None matches nothing, so leave the port out for a default port
                where: dict[str, Any] = {"port": b.port} if b.port is not None else {}
                router.route(scheme=b.scheme, host=b.host, **where).mock(side_effect=self.handle)
            yield router

    @contextlib.contextmanager
    def rebind(self, origins: Mapping[str, str]) -> Iterator[dict[str, str]]:
        """Point the named origins at other base URLs until the block ends (then restore all origins).

        Use it to put the fake behind a server of your own (a proxy, a fault injector): requests the fake
        receives then carry the new URLs, and the URLs its handlers build (presigned links, ``next`` pages)
        point back at that server. Yields the origins in effect.
        """
        unknown = set(origins) - set(self.origins)
        if unknown:
            raise KeyError(
                f"unknown origins {sorted(unknown)}; this fake has {sorted(self.origins)}"
            )
        saved = dict(self.origins)
        self.origins.update(origins)
        try:
            yield dict(self.origins)
        finally:
            self.origins = saved

    @contextlib.contextmanager
    def serve(self, latency: float = 0.0) -> Iterator[str]:
        """Serve this fake over real HTTP on 127.0.0.1, one port per origin; yields the api base URL.

        ``latency`` (seconds) is added to every request, to emulate a remote server.
        """
        servers: list[_LoopbackServer] = []
        try:
            bound: dict[str, str] = {}
            for name, base in self.origins.items():
                server = _LoopbackServer(self, latency)
                servers.append(server)
                path = httpx.URL(base).path.rstrip("/")
                bound[name] = f"http://127.0.0.1:{server.server_address[1]}{path}"
            for server in servers:
                threading.Thread(target=server.serve_forever, daemon=True).start()
            with self.rebind(bound):
                yield self.base_url
        finally:
            for server in servers:
                server.shutdown()
                server.server_close()


class _LoopbackServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, fake: FakeService, latency: float) -> None:
        self.fake = fake
        self.latency = latency
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-answer (a cancelled download, a test's fault) is not an error of the
        fake; anything else is still printed, as socketserver does."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body go out in separate writes: without TCP_NODELAY the body waits for the client's
    # delayed ACK (~40 ms per request on Linux)
    disable_nagle_algorithm = True
    server: _LoopbackServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        body = self._read_body()
        if self.server.latency:
            time.sleep(self.server.latency)
        host = self.headers.get("Host", f"127.0.0.1:{self.server.server_address[1]}")
        request = httpx.Request(
            self.command,
            f"http://{host}{self.path}",
            headers=[(k, v) for k, v in self.headers.items() if k.lower() != "host"],
            content=body,
        )
        try:
            response = self.server.fake.handle(request)
        except Exception as exc:  # a bug in the fake must still answer
            response = httpx.Response(500, text=f"fake server error: {exc!r}")
        self.send_response(response.status_code)
        skip = {"content-length", "transfer-encoding", "connection", "content-encoding"}
        for key, value in response.headers.multi_items():
            if key.lower() not in skip:
                self.send_header(key, value)
        if self.command == "HEAD":
            content = b""
            self.send_header("Content-Length", response.headers.get("Content-Length", "0"))
            self.end_headers()
            return
        if isinstance(response.stream, httpx.ByteStream) or hasattr(response, "_content"):
            content = response.read()
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for chunk in response.iter_raw():
            if chunk:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.wfile.write(b"0\r\n\r\n")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _dispatch
