"""download_op(auth=True) sends the client's (scoped) credentials, for downloads on the service's origin."""

from __future__ import annotations

import hashlib

import httpx
import pytest
from scibind import errors
from scibind._core import effects as fx
from scibind.auth import HeaderAuth
from scibind.transfers.download import Expected, download_op

from ..core.toy import AsyncToy, Toy

DATA = b"private bytes" * 100


def server(request: httpx.Request) -> httpx.Response:
    if request.headers.get("Authorization") != "Bearer s3cret":
        return httpx.Response(401, json={"detail": "Authentication credentials were not provided."})
    return httpx.Response(200, content=DATA)


def resolve() -> fx.Op[str]:
    yield fx.Sleep(0)
    return "https://toy.test/api/files/1/download"


EXPECTED = Expected(len(DATA), {"md5": hashlib.md5(DATA).hexdigest()})


def test_auth_true_sends_credentials_and_default_sends_none(tmp_path) -> None:
    with Toy(transport=httpx.MockTransport(server), auth=HeaderAuth("s3cret")) as toy:
        out = toy._driver.run(download_op(resolve, tmp_path / "a", EXPECTED, auth=True))
        assert out.read_bytes() == DATA
        with pytest.raises(errors.AuthenticationError):
            toy._driver.run(download_op(resolve, tmp_path / "b", EXPECTED))


async def test_async_auth_true(tmp_path) -> None:
    async with AsyncToy(transport=httpx.MockTransport(server), auth=HeaderAuth("s3cret")) as toy:
        out = await toy._driver.run(download_op(resolve, tmp_path / "a", EXPECTED, auth=True))
    assert out.read_bytes() == DATA
