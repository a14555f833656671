from __future__ import annotations

import pickle

from scibind._core.secrets import Secret, is_loopback_host, redact_headers, redact_url


def test_secret_hides_itself() -> None:
    s = Secret("tok-123456")
    assert (
        "tok" not in repr(s)
        and "tok" not in str(s)
        and "tok" not in f"{s}"
        and "tok" not in f"{s!r}"
    )
    assert s.reveal() == "tok-123456"
    assert pickle.loads(pickle.dumps(s)) == s


def test_redact_url() -> None:
    url = "https://u:p@s3.test/b/k?X-Amz-Signature=abc&X-Amz-Credential=AK%2Fx&partNumber=3&token=t"
    out = redact_url(url)
    assert "abc" not in out and "AK" not in out and "u:p" not in out and "=t" not in out
    assert "partNumber=3" in out


def test_redact_url_hides_midas_download_auth_token() -> None:
    out = redact_url("https://midas.test/download/?items=3&authToken=Zk2Qx9secret")
    assert "Zk2Qx9secret" not in out and "items=3" in out


def test_redact_headers_and_loopback() -> None:
    assert redact_headers({"Authorization": "Bearer x", "Accept": "a"}) == {
        "Authorization": "****",
        "Accept": "a",
    }
    assert (
        is_loopback_host("127.0.0.1") and is_loopback_host("::1") and is_loopback_host("localhost")
    )
    assert not is_loopback_host("10.0.0.1") and not is_loopback_host("example.org")


def test_midas_upload_token_is_redacted() -> None:
    out = redact_url(
        "https://midas.test/api/json?method=midas.upload.perform&uploadtoken=abc123secret&length=5"
    )
    assert "abc123secret" not in out and "length=5" in out
