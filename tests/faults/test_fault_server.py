"""The fault-injection server itself: every action, rule matching, recording and its bounds (plain httpx)."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from typing import Any

import httpx
import pytest
from scibind.testing._base import FakeService, json_response, route
from scibind.testing.faults import (
    ActThenFail,
    Delay,
    DropKeys,
    FaultServer,
    HugeBody,
    InvalidJSON,
    LoopbackOrigin,
    Redirect,
    Reset,
    Respond,
    Rule,
    Stall,
    Trickle,
    Truncate,
    WrongTypes,
    http_date_in,
    serve_with_faults,
    wait_for,
)


class Notes(FakeService):
    """A tiny stateful service with two origins (API and storage)."""

    default_origins = {"api": "https://notes.test/api", "storage": "https://blobs.test"}

    def __init__(self) -> None:
        super().__init__()
        self.notes: list[dict[str, Any]] = []

    @route("GET", r"/notes")
    def list_notes(self, request: httpx.Request) -> httpx.Response:
        return json_response({"count": len(self.notes), "results": self.notes})

    @route("POST", r"/notes")
    def add(self, request: httpx.Request) -> httpx.Response:
        note = {"id": len(self.notes) + 1, **json.loads(request.content)}
        self.notes.append(note)
        return json_response(note, 201)

    @route("GET", r"/link")
    def link(self, request: httpx.Request) -> httpx.Response:
        return json_response({"url": self.url("/b/object", "storage")})

    @route("GET", r"/b/(?P<key>.+)", origin="storage")
    def blob(self, request: httpx.Request, key: str) -> httpx.Response:
        return httpx.Response(200, content=b"0123456789" * 10)


@pytest.fixture
def fake() -> Notes:
    return Notes()


@pytest.fixture
def server(fake: Notes) -> Any:
    """A fault server in front of the fake's API (the fake's origins point at it)."""
    with serve_with_faults(fake) as servers:
        yield servers["api"]


def test_forwards_to_a_handler_with_the_fakes_urls(fake: Notes) -> None:
    with serve_with_faults(fake) as servers, httpx.Client() as http:
        api = servers["api"].url + "/api"
        assert fake.base_url == api
        assert http.post(api + "/notes", json={"text": "a"}).status_code == 201
        body = http.get(api + "/notes").json()
        assert body["results"] == [{"id": 1, "text": "a"}]
        link = http.get(api + "/link").json()["url"]
        assert link.startswith(servers["storage"].url)
        assert http.get(link).content == b"0123456789" * 10
    assert fake.origins == Notes.default_origins  # restored
    assert [r.method for r in servers["api"].requests] == ["POST", "GET", "GET"]
    assert servers["storage"].requests[0].path == "/b/object"


def test_rebind_restores_and_rejects_unknown_origins(fake: Notes) -> None:
    with fake.rebind({"api": "http://127.0.0.1:1/x"}) as now:
        assert now["api"] == fake.base_url == "http://127.0.0.1:1/x"
        assert fake.origins["storage"] == "https://blobs.test"
    assert fake.origins == Notes.default_origins
    with pytest.raises(KeyError, match="unknown origins"), fake.rebind({"nope": "http://x"}):
        pass


def test_rules_nth_first_every_and_counts(fake: Notes, server: FaultServer) -> None:
    with httpx.Client(base_url=server.url) as http:
        rules = server.plan(
            Rule(Respond(418), method="GET", path=r"/notes$", nth=2),
            Rule(Respond(503), method="GET", path=r"/notes$", first=2),
            Rule(Respond(429), method="POST", every=2),
        )
        # requests answered by the first rule are not counted by the second
        got = [http.get("/api/notes").status_code for _ in range(5)]
        assert got == [503, 418, 503, 200, 200]
        posts = [http.post("/api/notes", json={}).status_code for _ in range(4)]
        assert posts == [201, 429, 201, 429]
        assert server.fired() == [1, 2, 2]
        assert [r.seen for r in rules] == [5, 4, 4]
        assert len(fake.notes) == 2
        assert [r.fault for r in server.requests[:3]] == ["Respond", "Respond", "Respond"]
    with pytest.raises(ValueError, match="at most one"):
        Rule(Respond(500), nth=1, first=2)


def test_retry_after_in_seconds_and_as_a_date(fake: Notes, server: FaultServer) -> None:
    with httpx.Client(base_url=server.url) as http:
        server.plan(
            Rule(Respond.throttle(retry_after=1.5), nth=1),
            Rule(Respond.unavailable(retry_after=http_date_in(30)), nth=1),
        )
        first = http.get("/api/notes")
        assert (first.status_code, first.headers["Retry-After"]) == (429, "1.5")
        second = http.get("/api/notes")
        assert second.status_code == 503
        assert second.headers["Retry-After"].endswith("GMT")


def test_reset_before_the_response_and_mid_body(fake: Notes, server: FaultServer) -> None:
    with httpx.Client(base_url=server.url) as http:
        server.plan(Rule(Reset(), nth=1), Rule(Reset(after_bytes=20), nth=1))
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            http.post("/api/notes", json={"text": "lost"})
        assert fake.notes == []  # a reset before the response: the upstream never saw it
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            http.post("/api/notes", json={"text": "kept"})
        assert [n["text"] for n in fake.notes] == ["kept"]  # mid-body: the upstream acted
        assert http.get("/api/notes").status_code == 200


def test_stall_hits_the_read_timeout_and_the_server_still_stops(server: FaultServer) -> None:
    server.plan(Rule(Stall(30)))
    started = time.monotonic()
    timeout = httpx.Timeout(5, read=0.3)
    with (
        httpx.Client(base_url=server.url, timeout=timeout) as http,
        pytest.raises(httpx.ReadTimeout),
    ):
        http.get("/api/notes")
    server.stop()  # interrupts the stalled handler at once
    assert time.monotonic() - started < 3


def test_trickle_truncate_invalid_json_and_mutations(fake: Notes, server: FaultServer) -> None:
    fake.notes.append({"id": 1, "text": "x", "tags": ["a"]})
    with httpx.Client(base_url=server.url) as http:
        server.plan(  # each rule answers one request, in turn
            Rule(Trickle(chunk=8, interval=0.01), nth=1),
            Rule(Truncate(keep=5), nth=1),
            Rule(InvalidJSON(), nth=1),
            Rule(DropKeys("id", "count"), nth=1),
            Rule(WrongTypes("tags", "text"), nth=1),
            Rule(WrongTypes(), nth=1),
        )
        with http.stream("GET", "/api/notes") as trickled:
            sizes = [len(c) for c in trickled.iter_raw()]
        assert len(sizes) > 3 and max(sizes) <= 8
        with pytest.raises(httpx.RemoteProtocolError):
            http.get("/api/notes")
        with pytest.raises(json.JSONDecodeError):
            http.get("/api/notes").json()
        assert http.get("/api/notes").json() == {"results": [{"text": "x", "tags": ["a"]}]}
        retyped = http.get("/api/notes").json()["results"][0]
        assert (retyped["text"], retyped["tags"], retyped["id"]) == (
            12345,
            {"unexpected": "object"},
            1,
        )
        assert http.get("/api/notes").json() == {
            "count": "not-a-number",
            "results": {"unexpected": "object"},
        }


def test_huge_body_is_streamed(fake: Notes, server: FaultServer) -> None:
    with httpx.Client(base_url=server.url) as http:
        server.plan(Rule(HugeBody(size=3_000_000)))
        with http.stream("GET", "/api/notes") as response:
            assert int(response.headers["Content-Length"]) == 3_000_000
            start = b""
            for chunk in response.iter_raw():
                start += chunk
                if len(start) >= 20:
                    break
            assert start.startswith(b'{"padding": "xxxxxxx')
        assert len(http.get("/api/notes").content) == 3_000_000


def test_redirect_to_another_origin_that_records_authorization(server: FaultServer) -> None:
    with LoopbackOrigin() as other:
        server.plan(Rule(Redirect(other, status=307), path="/link"))
        headers = {"Authorization": "Bearer s3cr3t-token"}
        with httpx.Client(base_url=server.url, headers=headers) as http:
            assert http.get("/api/link").status_code == 307
            followed = http.get("/api/link", follow_redirects=True)
        assert followed.json() == {"ok": True}
        assert other.requests[0].target == "/api/link"
        assert other.authorizations == []  # httpx drops it across origins
        assert server.requests[0].authorization == "Bearer s3cr3t-token"  # recorded in full
        with httpx.Client(headers=headers) as leaky:  # what a leak would look like
            leaky.get(other.url + "/x")
        assert other.authorizations == ["Bearer s3cr3t-token"]


def test_act_then_fail_status_or_reset(fake: Notes, server: FaultServer) -> None:
    with httpx.Client(base_url=server.url) as http:
        server.plan(
            Rule(ActThenFail(500), method="POST", nth=1), Rule(ActThenFail(reset=True), nth=1)
        )
        assert http.post("/api/notes", json={"text": "a"}).status_code == 500
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            http.post("/api/notes", json={"text": "b"})
        assert [n["text"] for n in fake.notes] == ["a", "b"]


def test_reverse_proxy_to_a_url(fake: Notes) -> None:
    with fake.serve() as base, FaultServer(base) as proxy, httpx.Client() as http:
        proxy.plan(Rule(Respond(503), nth=1))
        assert http.get(proxy.url + "/notes").status_code == 503
        assert http.post(proxy.url + "/notes", json={"text": "via proxy"}).status_code == 201
        assert http.get(proxy.url + "/notes").json()["count"] == 1


def test_chunked_request_bodies_are_read(fake: Notes, server: FaultServer) -> None:
    def parts() -> Any:
        yield b'{"text": '
        yield b'"chunked"}'

    with httpx.Client(base_url=server.url) as http:
        assert http.post("/api/notes", content=parts()).status_code == 201
        assert server.requests[0].headers["transfer-encoding"] == "chunked"
        assert server.requests[0].body_size == len(b'{"text": "chunked"}')
    assert fake.notes[0]["text"] == "chunked"


def test_connections_in_flight_and_peak(fake: Notes) -> None:
    with serve_with_faults(fake, latency=0.05) as servers:
        server = servers["api"]
        limits = httpx.Limits(max_connections=4)
        with httpx.Client(base_url=server.url, limits=limits) as http:
            threads = [threading.Thread(target=http.get, args=("/api/notes",)) for _ in range(12)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert server.peak_in_flight == 4
            assert server.connections == 4
            assert server.open_connections == 4
        assert wait_for(lambda: server.open_connections == 0)
        assert server.in_flight == 0


def test_bounded_by_requests_and_lifetime(fake: Notes) -> None:
    with (
        serve_with_faults(fake, max_requests=3) as servers,
        httpx.Client(base_url=servers["api"].url) as http,
    ):
        server = servers["api"]
        for _ in range(3):
            assert http.get("/api/notes").status_code == 200
        with pytest.raises(httpx.TransportError):
            http.get("/api/notes")
        assert wait_for(lambda: not server.running)
    short = FaultServer(fake.handle, max_lifetime=0.2).start()
    assert wait_for(lambda: not short.running, timeout=3)
    with (
        pytest.raises(OSError),
        socket.create_connection(("127.0.0.1", int(short.url.rsplit(":", 1)[1])), 1),
    ):
        pass
    short.stop()


def test_delay_forwards_after_waiting(fake: Notes, server: FaultServer) -> None:
    with httpx.Client(base_url=server.url) as http:
        server.plan(Rule(Delay(0.1)))
        started = time.monotonic()
        assert http.get("/api/notes").status_code == 200
        assert time.monotonic() - started >= 0.1


def test_upstream_failure_answers_502() -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("boom")

    with FaultServer(broken) as server, httpx.Client(base_url=server.url) as http:
        assert http.get("/x").status_code == 502
        assert server.upstream_errors == ["RuntimeError: boom"]


@pytest.mark.parametrize("how", ["serve", "fault-server"])
def test_no_delayed_ack_stall_between_head_and_body(fake: Notes, how: str) -> None:
    """Sequential keep-alive requests answer in well under the ~40 ms a Nagle/delayed-ACK stall costs."""
    fake.notes.append({"id": 1, "text": "x" * 2000})
    with contextlib.ExitStack() as stack:
        if how == "serve":
            base = stack.enter_context(fake.serve())
        else:
            base = stack.enter_context(serve_with_faults(fake))["api"].url + "/api"
        http = stack.enter_context(httpx.Client(base_url=base))
        http.get("/notes")
        started = time.monotonic()
        for _ in range(20):
            assert http.get("/notes").status_code == 200
        assert time.monotonic() - started < 0.4  # 20 stalls would take 0.8 s
