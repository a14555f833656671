"""RefreshingTokenAuth beyond the basics: one refresh across a sync and an async client sharing it, locks of
finished event loops not kept, the refresh-on-403 policy, a token store (the on-disk cache) consulted and fed,
and tokens handed out without a request."""

from __future__ import annotations

import asyncio
import gc
import threading
import time

import httpx
import pytest
from scibind._core.http import build_async_client, build_sync_client
from scibind._core.secrets import Secret
from scibind.auth import RefreshingTokenAuth
from scibind.config import ClientConfig

from .test_auth import Minter, Service, fake_jwt


class Gate:
    """A token endpoint that holds every mint until released (to make refreshes overlap)."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "tokens.test":
            self.entered.set()
            assert self.release.wait(10), "the test never released the mint"
        return self.service(request)


def test_a_sync_and_an_async_client_sharing_credentials_refresh_once() -> None:
    svc = Service()
    gate = Gate(svc)
    auth = RefreshingTokenAuth(Minter())
    sync_client = build_sync_client(
        ClientConfig(), "https://api.test", auth=auth, transport=httpx.MockTransport(gate)
    )
    results: list[int] = []
    thread = threading.Thread(target=lambda: results.append(sync_client.get("/x").status_code))
    thread.start()
    assert gate.entered.wait(10)  # the sync client is minting, holding the refresh

    async def main() -> int:
        async with build_async_client(
            ClientConfig(), "https://api.test", auth=auth, transport=httpx.MockTransport(gate)
        ) as aclient:
            task = asyncio.create_task(aclient.get("/x"))
            for _ in range(10_000):  # let the task run until it waits for the refresh in flight
                if auth._async_lock().locked():
                    break
                await asyncio.sleep(0)
            assert auth._async_lock().locked(), "the async request never reached the refresh"
            gate.release.set()
            return (await task).status_code

    try:
        assert asyncio.run(main()) == 200
    finally:
        gate.release.set()
        thread.join(10)
        sync_client.close()
    assert results == [200]
    assert svc.minted == 1  # the async request used the token the sync client minted


def test_locks_of_finished_event_loops_are_not_kept() -> None:
    svc = Service()
    auth = RefreshingTokenAuth(Minter(), skew=0)

    async def one_request() -> None:
        async with build_async_client(
            ClientConfig(), "https://api.test", auth=auth, transport=httpx.MockTransport(svc)
        ) as c:
            auth.token = None  # force a refresh, which takes this loop's lock
            assert (await c.get("/x")).status_code == 200

    for _ in range(3):
        asyncio.run(one_request())
    gc.collect()
    assert len(auth._async_locks) == 0 and not auth._pinned_locks
    assert svc.minted == 3


async def test_a_task_cancelled_while_waiting_for_the_refresh_does_not_leak_the_lock() -> None:
    auth = RefreshingTokenAuth(Minter())
    auth._thread_lock.acquire()  # a sync client is refreshing

    async def wait() -> None:
        async with auth._refreshing():
            pass

    task = asyncio.create_task(wait())
    for _ in range(1000):
        if auth._async_lock().locked():
            break
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    auth._thread_lock.release()  # the sync refresh ends; the cancelled waiter must give the lock back
    for _ in range(1000):
        if auth._thread_lock.acquire(blocking=False):
            break
        await asyncio.sleep(0.001)
    else:
        pytest.fail("the thread lock was never given back")
    auth._thread_lock.release()


class Forbidding(Service):
    """Refuses revoked tokens with 403, as sheepdog does for an expired token (arborist says no)."""

    def __init__(self) -> None:
        super().__init__()
        self.forbidden: set[str] = set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if request.url.host == "api.test" and token in self.forbidden:
            return httpx.Response(403, json={"message": "user is unauthorized"})
        return super().__call__(request)


def test_403_refreshes_once_only_when_the_token_is_not_brand_new() -> None:
    svc = Forbidding()
    now = [time.time()]
    auth = RefreshingTokenAuth(Minter(), clock=lambda: now[0], refresh_on=(401, 403), fresh_for=60)
    with build_sync_client(
        ClientConfig(), "https://api.test", auth=auth, transport=httpx.MockTransport(svc)
    ) as c:
        assert c.get("/x").status_code == 200
        svc.forbidden.add(auth.token.reveal())
        assert c.get("/x").status_code == 403  # just minted: a real refusal, not repeated
        assert svc.minted == 1
        now[0] += 120  # the token is two minutes old: it may have expired on the server's clock
        assert c.get("/x").status_code == 200  # refreshed once and repeated
        assert svc.minted == 2
        svc.forbidden.add(auth.token.reveal())
        assert c.get("/x").status_code == 403  # the new token is brand new again: no loop
        assert svc.minted == 2


def test_403_is_not_a_refresh_signal_by_default() -> None:
    svc = Forbidding()
    now = [time.time()]
    auth = RefreshingTokenAuth(Minter(), clock=lambda: now[0])
    with build_sync_client(
        ClientConfig(), "https://api.test", auth=auth, transport=httpx.MockTransport(svc)
    ) as c:
        c.get("/x")
        svc.forbidden.add(auth.token.reveal())
        now[0] += 120  # not brand new, not expiring either
        assert c.get("/x").status_code == 403
    assert svc.minted == 1


class DictStore:
    def __init__(self) -> None:
        self.kept: tuple[Secret, float] | None = None
        self.saves = 0

    def load(self) -> tuple[Secret, float] | None:
        return self.kept

    def save(self, token: Secret, expires_at: float) -> None:
        self.kept = (token, expires_at)
        self.saves += 1


def test_a_store_is_used_before_minting_and_fed_after() -> None:
    svc = Service(ttl=1200)
    store = DictStore()
    kept = fake_jwt(time.time() + 1000, sub="kept")
    store.kept = (Secret(kept), time.time() + 1000)
    auth = RefreshingTokenAuth(Minter(), skew=300, store=store)
    with build_sync_client(
        ClientConfig(), "https://api.test", auth=auth, transport=httpx.MockTransport(svc)
    ) as c:
        assert c.get("/x").status_code == 200
        assert svc.minted == 0 and svc.seen_auth["api.test"] == [f"Bearer {kept}"]
        svc.revoked.add(kept)  # the kept token is refused: mint, and keep the new one
        assert c.get("/x").status_code == 200
        assert svc.minted == 1 and store.saves == 1
        assert store.kept is not None and store.kept[0] == auth.token


def test_a_stored_token_within_the_refresh_margin_is_not_used() -> None:
    svc = Service(ttl=1200)
    store = DictStore()
    store.kept = (Secret(fake_jwt(time.time() + 200)), time.time() + 200)  # < 300 s left
    auth = RefreshingTokenAuth(Minter(), skew=300, store=store)
    with build_sync_client(
        ClientConfig(), "https://api.test", auth=auth, transport=httpx.MockTransport(svc)
    ) as c:
        c.get("/x")
    assert svc.minted == 1 and store.saves == 1


def test_a_broken_store_never_breaks_authentication() -> None:
    class Broken:
        def load(self) -> tuple[Secret, float] | None:
            raise OSError("disk gone")

        def save(self, token: Secret, expires_at: float) -> None:
            raise OSError("disk gone")

    svc = Service()
    auth = RefreshingTokenAuth(Minter(), store=Broken())
    with build_sync_client(
        ClientConfig(), "https://api.test", auth=auth, transport=httpx.MockTransport(svc)
    ) as c:
        assert c.get("/x").status_code == 200


async def test_tokens_without_a_request_use_the_same_refresh() -> None:
    svc = Service()
    now = [time.time()]
    auth = RefreshingTokenAuth(Minter(), skew=60, clock=lambda: now[0])
    with build_sync_client(
        ClientConfig(), "https://api.test", transport=httpx.MockTransport(svc)
    ) as c:
        first = auth.sync_token(lambda r: c.send(r))
        assert auth.sync_token(lambda r: c.send(r)) == first and svc.minted == 1
    async with build_async_client(
        ClientConfig(), "https://api.test", transport=httpx.MockTransport(svc)
    ) as ac:
        now[0] += 900  # expired: the next call mints
        second = await auth.async_token(lambda r: ac.send(r))
    assert second != first and svc.minted == 2
    assert svc.seen_auth["tokens.test"] == [None, None]
