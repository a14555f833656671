"""Fault injection over real HTTP: a loopback server in front of a fake or a real service.

:class:`FaultServer` is a small HTTP/1.1 server (raw sockets, one thread per connection, ``127.0.0.1`` only)
that forwards every request to an *upstream*, either a handler ``httpx.Request -> httpx.Response`` (a
fake's :meth:`~scibind.testing._base.FakeService.handle`, so the fake's state is used) or the URL of a real
server to reverse-proxy to. A *plan* of :class:`Rule` objects decides which requests get a fault instead::

    from scibind.testing.faults import FaultServer, Rule, Respond, Reset, ActThenFail

    with FaultServer(upstream=fake.handle) as server:
        server.plan(
            Rule(Respond.throttle(retry_after=0.1), method="GET", first=2),   # two 429s, then normal
            Rule(Reset(after_bytes=100), path=r"/download", nth=1),           # cut the first download
            Rule(ActThenFail(status=500), method="POST", nth=1),             # the server acts, then 500
        )
        ...  # point a client at server.url
        assert server.plan_rules[0].fired == 2
        assert len(server.requests) == ...

Faults (actions): :class:`Respond` (429/503 with ``Retry-After`` in seconds or as an HTTP-date), :class:`Reset`
(RST before the response or after N body bytes), :class:`Stall` (slow headers), :class:`Trickle` (slow body),
:class:`Truncate` (short body, then close), :class:`InvalidJSON`, :class:`MutateJSON` / :class:`DropKeys` /
:class:`WrongTypes` (change the upstream's JSON), :class:`HugeBody`, :class:`Redirect` (to another loopback
origin, e.g. a :class:`LoopbackOrigin` that records the Authorization header it receives) and
:class:`ActThenFail` (the upstream acts, then the client sees a 500 or a reset) and :class:`Echo` (an error
body that repeats the request's headers, Authorization included).

The server records every request with all its headers (tests need to see where Authorization went), counts
connections, requests in flight (and their peak) and how often each rule fired. It is bounded: after
``max_requests`` requests or ``max_lifetime`` seconds it stops by itself.

:func:`serve_with_faults` puts one fault server in front of each origin of a fake (its API and its storage),
re-pointing the fake's origins at them for the duration.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import attrs
import httpx

if TYPE_CHECKING:
    from ._base import FakeService

__all__ = [
    "ActThenFail",
    "Action",
    "Delay",
    "DropKeys",
    "Echo",
    "FaultServer",
    "Forward",
    "HugeBody",
    "InvalidJSON",
    "LoopbackOrigin",
    "MutateJSON",
    "RecordedRequest",
    "Redirect",
    "Reset",
    "Respond",
    "Rule",
    "Stall",
    "Trickle",
    "Truncate",
    "WrongTypes",
    "http_date_in",
    "serve_with_faults",
    "wait_for",
    "wrong_type",
]

Upstream = Callable[[httpx.Request], httpx.Response] | str
_MAX_HEAD = 64 * 1024
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "content-length",
        "content-encoding",
    }
)


# ===================================================================================== what was seen
@attrs.frozen
class RecordedRequest:
    """One request as the server received it: every header is kept (Authorization included)."""

    method: str
    target: str
    """Path and query, as sent on the request line."""
    headers: httpx.Headers
    body_size: int
    connection: int
    """Sequence number of the TCP connection it arrived on (1-based)."""
    fault: str | None
    """Name of the action that answered it (``None``: forwarded untouched)."""
    body: bytes = attrs.field(default=b"", repr=False)
    """The request body as received (the part that arrived, for a request reset mid-body)."""

    @property
    def path(self) -> str:
        """The path without the query."""
        return self.target.split("?", 1)[0]

    @property
    def authorization(self) -> str | None:
        """The Authorization header, if any."""
        value = self.headers.get("authorization")
        return None if value is None else str(value)


@attrs.frozen
class _Incoming:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)


@attrs.define
class _Answer:
    status: int
    headers: list[tuple[str, str]] = attrs.field(factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)

    def set_header(self, name: str, value: str) -> None:
        self.headers = [(k, v) for k, v in self.headers if k.lower() != name.lower()]
        self.headers.append((name, value))


class _Exchange:
    """What an action may do with one request: ask the upstream, write to the client, reset, wait."""

    def __init__(self, server: FaultServer, conn: socket.socket, request: _Incoming) -> None:
        self.server = server
        self.conn = conn
        self.request = request
        self.keep_alive = (request.header("connection") or "").lower() != "close"
        self.in_flight = True  # counted in the server's in-flight total until answered

    def upstream(self) -> _Answer:
        return self.server._forward(self.request)

    def send(self, answer: _Answer, *, declared_length: int | None = None) -> None:
        """Status line, headers and the whole body in one write (``declared_length`` overrides
        Content-Length)."""
        body = answer.body if self.request.method != "HEAD" else b""
        self.send_head(answer, declared_length, body=body)

    def send_head(
        self, answer: _Answer, declared_length: int | None = None, *, body: bytes = b""
    ) -> None:
        """Status line and headers (and ``body``, if given, in the same write)."""
        reason = _reason(answer.status)
        lines = [f"HTTP/1.1 {answer.status} {reason}"]
        lines += [f"{k}: {v}" for k, v in answer.headers if k.lower() not in _HOP_BY_HOP]
        if answer.status >= 200 and answer.status not in (204, 304):
            if self.request.method == "HEAD":
                length = answer.header("content-length")
                lines.append(f"Content-Length: {length if length is not None else 0}")
            else:
                size = len(answer.body) if declared_length is None else declared_length
                lines.append(f"Content-Length: {size}")
        if not self.keep_alive:
            lines.append("Connection: close")
        self.server._answered(self)
        self.conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def reset(self) -> None:
        """Abort the connection with a TCP RST (SO_LINGER 0)."""
        self.keep_alive = False
        with contextlib.suppress(OSError):
            self.conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            self.conn.close()

    def close(self) -> None:
        """End the connection gracefully (FIN) after what was sent."""
        self.keep_alive = False
        with contextlib.suppress(OSError):
            self.conn.shutdown(socket.SHUT_RDWR)

    def wait(self, seconds: float) -> bool:
        """Sleep, unless the server stops; True if it is still running."""
        return not self.server._stopping.wait(seconds)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


# ===================================================================================== actions
class Action:
    """What the server does with a request a rule matched. Subclasses implement :meth:`run`."""

    def run(self, exchange: _Exchange) -> None:
        raise NotImplementedError

    @property
    def name(self) -> str:
        return type(self).__name__


class Forward(Action):
    """Pass the request to the upstream and its answer back (what happens when no rule matches)."""

    def run(self, exchange: _Exchange) -> None:
        exchange.send(exchange.upstream())


@attrs.frozen
class Delay(Action):
    """Wait ``seconds``, then forward normally (a slow but healthy server)."""

    seconds: float

    def run(self, exchange: _Exchange) -> None:
        if exchange.wait(self.seconds):
            exchange.send(exchange.upstream())


@attrs.frozen
class Respond(Action):
    """Answer by itself (the upstream never sees the request): e.g. 429 or 503 with ``Retry-After``.

    ``retry_after`` is seconds (sent as delta-seconds) or a :class:`datetime` (sent as an HTTP-date).
    """

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = attrs.field(factory=dict)
    retry_after: float | datetime | None = None

    @classmethod
    def throttle(cls, retry_after: float | datetime | None = None) -> Respond:
        """429 Too Many Requests."""
        return cls(429, b'{"detail": "Request was throttled."}', _JSON, retry_after)

    @classmethod
    def unavailable(cls, retry_after: float | datetime | None = None) -> Respond:
        """503 Service Unavailable."""
        return cls(503, b"<html><body>503 Service Unavailable</body></html>", _HTML, retry_after)

    def run(self, exchange: _Exchange) -> None:
        headers = list(self.headers.items())
        if isinstance(self.retry_after, datetime):
            headers.append(("Retry-After", email.utils.format_datetime(self.retry_after, True)))
        elif self.retry_after is not None:
            value = self.retry_after
            headers.append(("Retry-After", str(int(value)) if value == int(value) else str(value)))
        exchange.send(_Answer(self.status, headers, self.body))


def http_date_in(seconds: float) -> datetime:
    """A UTC datetime ``seconds`` from now (for ``Respond(..., retry_after=http_date_in(1))``)."""
    return datetime.now(UTC) + timedelta(seconds=seconds)


_JSON = {"Content-Type": "application/json"}
_HTML = {"Content-Type": "text/html"}


@attrs.frozen
class Echo(Action):
    """Answer ``status`` with a JSON error body that repeats the request (target, headers and the start of its
    body), as careless servers do (``{"detail": "invalid credentials: Bearer ..."}``): errors built from it
    must not show the credentials."""

    status: int = 401

    def run(self, exchange: _Exchange) -> None:
        request = exchange.request
        detail = "; ".join(f"{k}: {v}" for k, v in request.headers)
        sent = request.body[:2000].decode("utf-8", "replace")
        body = json.dumps(
            {"detail": f"rejected {request.method} {request.target} ({detail}) {sent}".rstrip()}
        )
        exchange.send(_Answer(self.status, list(_JSON.items()), body.encode()))


@attrs.frozen
class Reset(Action):
    """Reset the connection (RST, SO_LINGER 0).

    * ``Reset()``: before any response; the upstream never sees the request.
    * ``Reset(after_bytes=N)``: in the middle of the upstream's body, after N bytes (the upstream did act).
    * ``Reset(request_bytes=N)``: while the request body is still arriving, after N of its bytes (an upload
      cut short; the upstream never sees it, unless ``forward_partial``: then it receives the request with
      the N bytes that arrived, as a server that keeps partial uploads would).
    """

    after_bytes: int | None = None
    request_bytes: int | None = None
    forward_partial: bool = False

    def run(self, exchange: _Exchange) -> None:
        if self.request_bytes is not None and self.forward_partial:
            exchange.upstream()
            exchange.reset()
            return
        if self.after_bytes is None:
            exchange.reset()
            return
        answer = exchange.upstream()
        exchange.send_head(answer)
        exchange.conn.sendall(answer.body[: self.after_bytes])
        exchange.reset()


@attrs.frozen
class Stall(Action):
    """Slow headers: wait ``seconds`` before the status line, then forward (if the client still listens)."""

    seconds: float

    def run(self, exchange: _Exchange) -> None:
        if exchange.wait(self.seconds):
            exchange.send(exchange.upstream())


@attrs.frozen
class Trickle(Action):
    """Slow body: headers at once, then ``chunk`` bytes every ``interval`` seconds."""

    chunk: int = 1
    interval: float = 0.05
    pad_to: int = 0
    """Pad a JSON body with trailing spaces to at least this many bytes (so the trickle lasts long enough)."""

    def run(self, exchange: _Exchange) -> None:
        answer = exchange.upstream()
        body = answer.body
        if len(body) < self.pad_to:
            body += b" " * (self.pad_to - len(body))
        exchange.send_head(answer, declared_length=len(body))
        for start in range(0, len(body), self.chunk):
            if not exchange.wait(self.interval):
                return
            exchange.conn.sendall(body[start : start + self.chunk])


@attrs.frozen
class Truncate(Action):
    """A body shorter than its Content-Length: send ``keep`` bytes of the upstream's body, then close."""

    keep: int = 0

    def run(self, exchange: _Exchange) -> None:
        answer = exchange.upstream()
        exchange.send_head(answer, declared_length=max(len(answer.body), self.keep + 1))
        exchange.conn.sendall(answer.body[: self.keep])
        exchange.close()


@attrs.frozen
class InvalidJSON(Action):
    """Forward, then replace the body with text that is not JSON (status and JSON content type kept)."""

    text: bytes = b'{"results": [{"id": 1, "name": "trunc'

    def run(self, exchange: _Exchange) -> None:
        answer = exchange.upstream()
        answer.body = self.text
        answer.set_header("Content-Type", "application/json")
        exchange.send(answer)


@attrs.frozen
class MutateJSON(Action):
    """Forward, then change the upstream's JSON body with ``fn(body) -> body`` (non-JSON passes through)."""

    fn: Callable[[Any], Any]

    def run(self, exchange: _Exchange) -> None:
        answer = exchange.upstream()
        try:
            body = json.loads(answer.body)
        except (ValueError, UnicodeDecodeError):
            exchange.send(answer)
            return
        answer.body = json.dumps(self.fn(body)).encode()
        exchange.send(answer)


def _walk(value: Any, visit: Callable[[dict[str, Any]], None]) -> Any:
    if isinstance(value, dict):
        visit(value)
        for v in list(value.values()):
            _walk(v, visit)
    elif isinstance(value, list):
        for v in value:
            _walk(v, visit)
    return value


class DropKeys(MutateJSON):
    """Forward, then delete these keys wherever they occur in the JSON body (missing fields)."""

    def __init__(self, *keys: str) -> None:
        wanted = frozenset(keys)

        def drop(obj: dict[str, Any]) -> None:
            for key in wanted & obj.keys():
                del obj[key]

        super().__init__(lambda body: _walk(body, drop))
        object.__setattr__(self, "keys", wanted)


def wrong_type(value: Any) -> Any:
    """A value of another JSON type than ``value`` (str <-> number, bool -> str, list <-> object, null -> 7)."""
    if isinstance(value, bool):
        return "yes"
    if isinstance(value, int | float):
        return "not-a-number"
    if isinstance(value, str):
        return 12345
    if isinstance(value, list):
        return {"unexpected": "object"}
    if isinstance(value, dict):
        return ["unexpected", "list"]
    return 7


def _retyped(item: Any, retype: Callable[[dict[str, Any]], None]) -> Any:
    if isinstance(item, dict):
        retype(item)
        return item
    return wrong_type(item)


class WrongTypes(MutateJSON):
    """Forward, then give these keys (every key when none are named) a value of the wrong JSON type."""

    def __init__(self, *keys: str) -> None:
        wanted = frozenset(keys)

        def retype(obj: dict[str, Any]) -> None:
            for key in list(obj):
                if not wanted or key in wanted:
                    obj[key] = wrong_type(obj[key])

        def apply(body: Any) -> Any:
            if wanted:
                return _walk(body, retype)
            if isinstance(body, dict):  # no keys named: every top-level value
                retype(body)
                return body
            if isinstance(body, list):  # ... or every key of every item of a top-level list
                return [_retyped(x, retype) for x in body]
            return wrong_type(body)

        super().__init__(apply)
        object.__setattr__(self, "keys", wanted)


@attrs.frozen
class HugeBody(Action):
    """Answer 200 with a JSON-looking body of ``size`` bytes, streamed (the upstream is not asked)."""

    size: int = 64 * 1024 * 1024
    chunk: int = 256 * 1024

    def run(self, exchange: _Exchange) -> None:
        head, tail = b'{"padding": "', b'"}'
        exchange.send_head(_Answer(200, list(_JSON.items())), declared_length=self.size)
        if exchange.request.method == "HEAD":
            return
        exchange.conn.sendall(head)
        left = self.size - len(head) - len(tail)
        block = b"x" * self.chunk
        while left > 0:
            n = min(left, self.chunk)
            exchange.conn.sendall(block[:n])
            left -= n
        exchange.conn.sendall(tail)


@attrs.frozen
class Redirect(Action):
    """Answer a redirect to the same path (and query) on another origin (the upstream is not asked)."""

    to: str | FaultServer
    status: int = 302
    keep_query: bool = True
    """Keep the query string (``False``: only the path, so what arrives there was added by the client)."""

    def run(self, exchange: _Exchange) -> None:
        base = self.to.url if isinstance(self.to, FaultServer) else self.to
        target = (
            exchange.request.target if self.keep_query else exchange.request.target.split("?")[0]
        )
        location = base.rstrip("/") + target
        exchange.send(_Answer(self.status, [("Location", location)]))


@attrs.frozen
class ActThenFail(Action):
    """Forward (so the server acts: creates, appends, commits) and then answer ``status`` or reset."""

    status: int | None = 500
    reset: bool = False

    def run(self, exchange: _Exchange) -> None:
        exchange.upstream()
        if self.reset or self.status is None:
            exchange.reset()
            return
        body = b'{"detail": "Internal server error (injected after the upstream acted)."}'
        exchange.send(_Answer(self.status, list(_JSON.items()), body))


# ===================================================================================== rules
@attrs.define(eq=False)
class Rule:
    """When to apply ``action``: requests matching ``method`` and ``path`` (a regex searched in the path and
    query), on the ``nth`` match only, the ``first`` k matches, or ``every`` n-th match (default: all).

    Rules are tried in order; the first that fires answers the request. ``seen`` counts matching requests
    (those an earlier rule answered are not counted), ``fired`` counts the requests this rule answered.
    """

    action: Action
    method: str | None = None
    path: str | None = None
    nth: int | None = None
    first: int | None = None
    every: int | None = None
    seen: int = attrs.field(default=0, init=False)
    fired: int = attrs.field(default=0, init=False)
    _pattern: re.Pattern[str] | None = attrs.field(default=None, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if sum(x is not None for x in (self.nth, self.first, self.every)) > 1:
            raise ValueError("give at most one of nth, first, every")
        for name in ("nth", "first", "every"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1")
        self._pattern = re.compile(self.path) if self.path is not None else None

    def _matches(self, request: _Incoming) -> bool:
        if self.method is not None and request.method != self.method.upper():
            return False
        return self._pattern is None or self._pattern.search(request.target) is not None

    def _fires(self) -> bool:
        n = self.seen
        if self.nth is not None:
            return n == self.nth
        if self.first is not None:
            return n <= self.first
        if self.every is not None:
            return n % self.every == 0
        return True


# ===================================================================================== the server
class FaultServer:
    """A bounded HTTP/1.1 server on 127.0.0.1 that forwards to ``upstream`` and injects planned faults.

    Args:
        upstream: a handler ``httpx.Request -> httpx.Response`` (requests carry the URL
            ``http://<Host header><target>``, so a fake whose origin points here sees its own URLs), or a base
            URL to reverse-proxy to (the target is appended to it).
        max_requests: stop by itself after this many requests (the one beyond is reset).
        max_lifetime: stop by itself after this many seconds.
        latency: seconds added before every forwarded answer (to make concurrency measurable).
        idle_timeout: close a keep-alive connection idle this long.
    """

    def __init__(
        self,
        upstream: Upstream,
        *,
        max_requests: int = 20_000,
        max_lifetime: float = 300.0,
        latency: float = 0.0,
        idle_timeout: float = 30.0,
    ) -> None:
        self.upstream = upstream
        self.max_requests = max_requests
        self.max_lifetime = max_lifetime
        self.latency = latency
        self.idle_timeout = idle_timeout
        self.requests: list[RecordedRequest] = []
        self.plan_rules: list[Rule] = []
        self.connections = 0
        """TCP connections accepted so far."""
        self.in_flight = 0
        self.peak_in_flight = 0
        """Most requests received and not yet answered at one time."""
        self.upstream_errors: list[str] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._open: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._listener: socket.socket | None = None
        self._proxy: httpx.Client | None = None
        self._timer: threading.Timer | None = None
        self.url = ""

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> Self:
        """Bind a free port on 127.0.0.1 and start serving (ready when this returns)."""
        if self._listener is not None:
            return self
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1024)
        listener.settimeout(0.05)
        self._listener = listener
        self.url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        if isinstance(self.upstream, str):
            self._proxy = httpx.Client(
                base_url=self.upstream.rstrip("/"),
                timeout=60.0,
                trust_env=False,
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
            )
        accept = threading.Thread(target=self._accept_loop, name="fault-accept", daemon=True)
        accept.start()
        self._threads.append(accept)
        self._timer = threading.Timer(self.max_lifetime, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        """Stop accepting, abort open connections (and stalls), and release the port. Idempotent."""
        self._stopping.set()
        if self._timer is not None and self._timer is not threading.current_thread():
            self._timer.cancel()
        with self._lock:
            listener = self._listener
            open_now = list(self._open)
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.close()
        with self._lock:
            self._listener = None  # not "running" before the port is closed
        for conn in open_now:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        current = threading.current_thread()
        for thread in list(self._threads):
            if thread is not current:
                thread.join(timeout=5)
        if self._proxy is not None:
            self._proxy.close()

    @property
    def running(self) -> bool:
        """Whether the server still accepts requests."""
        return self._listener is not None

    @property
    def open_connections(self) -> int:
        """TCP connections currently open (the client's pool, seen from the server)."""
        with self._lock:
            return len(self._open)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        target = self.upstream if isinstance(self.upstream, str) else "handler"
        return f"<FaultServer {self.url or 'not started'} -> {target}>"

    # -- the plan -------------------------------------------------------------------------------
    def plan(self, *rules: Rule) -> list[Rule]:
        """Replace the fault plan (counters start at zero); returns the rules."""
        with self._lock:
            self.plan_rules = list(rules)
        return self.plan_rules

    def fired(self) -> list[int]:
        """How many requests each rule of the plan answered."""
        with self._lock:
            return [rule.fired for rule in self.plan_rules]

    def reset_records(self) -> None:
        """Forget the recorded requests and counters (the plan stays)."""
        with self._lock:
            self.requests.clear()
            self.connections = 0
            self.peak_in_flight = self.in_flight

    def requests_to(self, pattern: str, method: str | None = None) -> list[RecordedRequest]:
        """Recorded requests whose target matches the regex ``pattern`` (and ``method``)."""
        rx = re.compile(pattern)
        with self._lock:
            return [
                r
                for r in self.requests
                if rx.search(r.target) and (method is None or r.method == method.upper())
            ]

    # -- internals ------------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            listener = self._listener
            if listener is None:
                return
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._stopping.is_set():  # accepted while stopping: refuse
                conn.close()
                return
            conn.settimeout(self.idle_timeout)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self.connections += 1
                number = self.connections
                self._open.add(conn)
            thread = threading.Thread(
                target=self._serve_connection, args=(conn, number), name="fault-conn", daemon=True
            )
            with self._lock:
                self._threads = [t for t in self._threads if t.is_alive()]
                self._threads.append(thread)
            thread.start()

    def _serve_connection(self, conn: socket.socket, number: int) -> None:
        reader = conn.makefile("rb")
        try:
            while not self._stopping.is_set():
                try:
                    head = _read_head(reader)
                    if head is None:
                        return
                    rule = self._choose(head)
                    cut = (
                        rule.action.request_bytes
                        if rule and isinstance(rule.action, Reset)
                        else None
                    )
                    request = _read_body(reader, head, limit=cut)
                except (OSError, ValueError):
                    return
                admitted = self._record(request, number, rule)
                exchange = _Exchange(self, conn, request)
                if not admitted:  # over max_requests: refuse and stop
                    exchange.reset()
                    threading.Thread(target=self.stop, daemon=True).start()
                    return
                try:
                    action = rule.action if rule is not None else Forward()
                    if self.latency and rule is None:
                        exchange.wait(self.latency)
                    action.run(exchange)
                except OSError:
                    exchange.keep_alive = False
                finally:
                    self._done(exchange)
                if not exchange.keep_alive:
                    return
        finally:
            with self._lock:
                self._open.discard(conn)
            with contextlib.suppress(OSError):
                reader.close()
            with contextlib.suppress(OSError):
                conn.close()

    def _choose(self, request: _Incoming) -> Rule | None:
        """The rule that answers this request (counted), or None to forward it."""
        with self._lock:
            for rule in self.plan_rules:
                if rule._matches(request):
                    rule.seen += 1
                    if rule._fires():
                        rule.fired += 1
                        return rule
        return None

    def _record(self, request: _Incoming, connection: int, rule: Rule | None) -> bool:
        """Record the request and count it in flight; False when the request budget is spent."""
        with self._lock:
            self.requests.append(
                RecordedRequest(
                    request.method,
                    request.target,
                    httpx.Headers(request.headers),
                    len(request.body),
                    connection,
                    rule.action.name if rule is not None else None,
                    request.body,
                )
            )
            if len(self.requests) > self.max_requests:
                return False
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        return True

    def _answered(self, exchange: _Exchange) -> None:
        """A request stops counting as in flight when its status line goes out (or it ends otherwise):
        a client cannot start its next request on a freed slot before that, so the peak is never inflated."""
        with self._lock:
            if exchange.in_flight:
                exchange.in_flight = False
                self.in_flight -= 1

    def _done(self, exchange: _Exchange) -> None:
        self._answered(exchange)

    def _forward(self, request: _Incoming) -> _Answer:
        """Ask the upstream; its failures become a 502 (and are listed in ``upstream_errors``)."""
        try:
            if isinstance(self.upstream, str):
                return self._proxy_to(request)
            host = request.header("host") or self.url.split("//", 1)[1]
            outgoing = httpx.Request(
                request.method,
                f"http://{host}{request.target}",
                headers=[
                    (k, v)
                    for k, v in request.headers
                    if k.lower() not in ("host", "content-length", "transfer-encoding")
                ],
                content=request.body,
            )
            response = self.upstream(outgoing)
            body = response.read()
            return _Answer(response.status_code, list(response.headers.multi_items()), body)
        except Exception as exc:  # the upstream's bug must still answer
            self.upstream_errors.append(f"{type(exc).__name__}: {exc}")
            return _Answer(502, list(_JSON.items()), b'{"detail": "fault server: upstream failed"}')

    def _proxy_to(self, request: _Incoming) -> _Answer:
        assert self._proxy is not None
        headers = [(k, v) for k, v in request.headers if k.lower() not in _HOP_BY_HOP | {"host"}]
        outgoing = self._proxy.build_request(
            request.method, request.target, headers=headers, content=request.body
        )
        response = self._proxy.send(outgoing)
        return _Answer(response.status_code, list(response.headers.multi_items()), response.content)


def _read_head(reader: Any) -> _Incoming | None:
    """The request line and headers; None at a clean end of the connection."""
    line = reader.readline(_MAX_HEAD)
    while line in (b"\r\n", b"\n"):  # tolerate stray blank lines between requests
        line = reader.readline(_MAX_HEAD)
    if not line:
        return None
    parts = line.decode("latin-1").rstrip("\r\n").split(" ")
    if len(parts) != 3:
        raise ValueError("bad request line")
    method, target, _version = parts
    headers: list[tuple[str, str]] = []
    size = len(line)
    while True:
        raw = reader.readline(_MAX_HEAD)
        size += len(raw)
        if not raw or size > _MAX_HEAD:
            raise ValueError("headers too long or connection closed")
        if raw in (b"\r\n", b"\n"):
            break
        name, _, value = raw.decode("latin-1").partition(":")
        headers.append((name.strip(), value.strip()))
    return _Incoming(method.upper(), target, headers, b"")


def _read_body(reader: Any, head: _Incoming, *, limit: int | None = None) -> _Incoming:
    """``head`` with its body (Content-Length or chunked); only the first ``limit`` bytes when given."""
    if (head.header("transfer-encoding") or "").lower() == "chunked":
        chunks: list[bytes] = []
        got = 0
        while limit is None or got < limit:
            size_line = reader.readline(_MAX_HEAD)
            n = int(size_line.split(b";")[0].strip() or b"0", 16)
            if n == 0:
                while reader.readline(_MAX_HEAD) not in (b"\r\n", b"\n", b""):
                    pass
                break
            chunks.append(_read_exact(reader, n))
            got += n
            reader.readline(_MAX_HEAD)
        body = b"".join(chunks)
    else:
        length = int(head.header("content-length") or 0)
        if limit is not None:
            length = min(length, limit)
        body = _read_exact(reader, length) if length else b""
    return attrs.evolve(head, body=body)


def _read_exact(reader: Any, n: int) -> bytes:
    data: bytes = reader.read(n)
    if len(data) != n:
        raise ValueError("body ended early")
    return data


# ===================================================================================== other hosts
class LoopbackOrigin(FaultServer):
    """A stand-in for "another host" for redirects and presigned URLs: records every request (with its Authorization
    header) and answers ``status`` with ``body`` (or forwards to ``upstream`` when one is given)."""

    def __init__(
        self,
        status: int = 200,
        body: bytes = b'{"ok": true}',
        *,
        upstream: Upstream | None = None,
        **options: Any,
    ) -> None:
        def answer(request: httpx.Request) -> httpx.Response:
            return httpx.Response(status, content=body, headers=_JSON)

        super().__init__(upstream if upstream is not None else answer, **options)

    @property
    def authorizations(self) -> list[str]:
        """Every Authorization header value this origin received."""
        with self._lock:
            return [r.authorization for r in self.requests if r.authorization is not None]


@contextlib.contextmanager
def serve_with_faults(fake: FakeService, **options: Any) -> Iterator[dict[str, FaultServer]]:
    """One :class:`FaultServer` per origin of ``fake`` (``{"api": ..., "storage": ...}``), the fake's origins
    re-pointed at them (base paths kept) until the block ends. ``options`` go to every server."""
    servers: dict[str, FaultServer] = {}
    try:
        for name in fake.origins:
            servers[name] = FaultServer(fake.handle, **options).start()
        origins = {
            name: servers[name].url + httpx.URL(base).path.rstrip("/")
            for name, base in fake.origins.items()
        }
        with fake.rebind(origins):
            yield servers
    finally:
        for server in servers.values():
            server.stop()


def wait_for(
    condition: Callable[[], bool], *, timeout: float = 5.0, interval: float = 0.005
) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` passes (no fixed sleeps); returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
