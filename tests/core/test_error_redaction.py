"""Error messages never repeat the credentials a request carried, even when the server echoes them.

Found by tests/faults (``Echo``): a 401 body repeating ``Authorization: ApiKey alice:<key>`` reached the
exception message; with a long JWT the 300-character excerpt kept a prefix of the token.
"""

from __future__ import annotations

import base64
import gzip
import json

import httpx
import pytest
from scibind import errors
from scibind._core.responses import error_for_status
from scibind._core.secrets import credentials_in

JWT = "eyJhbGciOiJSUzI1NiJ9." + "a" * 400 + ".sig-" + "b" * 40


def answer(
    request: httpx.Request, body: bytes, status: int = 401, **headers: str
) -> httpx.Response:
    return httpx.Response(status, content=body, headers=headers, request=request)


@pytest.mark.parametrize(
    ("header", "leaked"),
    [
        (f"Bearer {JWT}", JWT),
        ("ApiKey alice:mt-0123456789abcdef", "mt-0123456789abcdef"),
        ("token 0123456789abcdef0123", "0123456789abcdef0123"),
        ("Basic " + base64.b64encode(b"alice:hunter2-password").decode(), "hunter2-password"),
    ],
)
def test_echoed_credentials_are_removed_before_the_excerpt(header: str, leaked: str) -> None:
    request = httpx.Request("GET", "https://api.test/x", headers={"Authorization": header})
    echo = f"invalid credentials {header}; user alice:{leaked}; again {leaked}"
    exc = error_for_status(answer(request, json.dumps({"detail": echo}).encode()))
    assert isinstance(exc, errors.AuthenticationError)
    for text in (str(exc), repr(exc), exc.body or ""):
        assert leaked not in text
        assert leaked[:40] not in text  # not even a prefix cut by the excerpt
    assert "invalid credentials" in str(exc)


def test_signed_query_values_and_compressed_bodies() -> None:
    url = "https://storage.test/o?X-Amz-Signature=abcdef0123456789&X-Amz-Expires=60"
    request = httpx.Request("GET", url)
    body = gzip.compress(b"<Error><Message>bad signature abcdef0123456789</Message></Error>")
    exc = error_for_status(answer(request, body, 403, **{"Content-Encoding": "gzip"}))
    assert "abcdef0123456789" not in str(exc)
    assert "bad signature ****" in str(exc)


def test_credentials_in() -> None:
    found = credentials_in({"Authorization": "ApiKey bob:k3y-value-1", "Accept": "x"}.items())
    assert found == ["ApiKey bob:k3y-value-1", "bob:k3y-value-1", "k3y-value-1"]
    assert credentials_in([], "https://x.test/?token=abcdefgh&page=2") == ["abcdefgh"]


def test_secret_form_fields_are_removed() -> None:
    """Midas sends its token in a urlencoded body; a server echoing the body must not leak it."""
    request = httpx.Request(
        "POST", "https://midas.test/api/json", data={"id": "1", "token": "tok3n-0123456789"}
    )
    exc = error_for_status(answer(request, b'{"detail": "bad id=1&token=tok3n-0123456789"}'))
    assert "tok3n-0123456789" not in str(exc) and "bad id=1&token=****" in str(exc)
