"""Secrets that never show themselves, and redaction of URLs and headers for logs and errors."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = [
    "REDACTED",
    "Secret",
    "credentials_in",
    "is_loopback_host",
    "redact_free_text",
    "redact_headers",
    "redact_text",
    "redact_url",
]

REDACTED: Final = "****"

# Query parameter names (lower case) whose values are secrets: presigned-URL signatures and credentials,
# tokens and API keys passed in the query string.
SENSITIVE_QUERY_KEYS: Final = frozenset(
    {
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
        "signature",
        "sig",
        "x-goog-signature",
        "x-goog-credential",
        "awsaccesskeyid",
        "token",
        "uploadtoken",
        "authtoken",  # Midas download redirects carry the API token as authToken
        "access_token",
        "refresh_token",
        "id_token",
        "api_key",
        "apikey",
        "key",
        "password",
        "client_secret",
        "code",
        "se",  # Azure SAS expiry is harmless, but sig/se/sp travel together
        "sp",
    }
)
SENSITIVE_HEADERS: Final = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "x-amz-security-token",
    }
)


class Secret:
    """A string that hides itself in ``repr``/``str``/f-strings; call :meth:`reveal` to use it.

    >>> Secret("hunter2")
    Secret('****')
    """

    __slots__ = ("_value",)

    def __init__(self, value: str | Secret) -> None:
        self._value = value.reveal() if isinstance(value, Secret) else str(value)

    def reveal(self) -> str:
        """The secret value, for the one place that must send it."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{REDACTED}')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> tuple[type[Secret], tuple[str]]:
        return (Secret, (self._value,))


def redact_url(url: object) -> str:
    """``url`` without user info and with secret query values replaced by ``****``."""
    text = str(url)
    try:
        parts = urlsplit(text)
    except ValueError:
        return "<unparseable url>"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, REDACTED if k.lower() in SENSITIVE_QUERY_KEYS else v) for k, v in pairs],
            safe="*/:",
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


_QUERY_SECRET = re.compile(
    r"(?<=[?&;])("
    + "|".join(re.escape(k) for k in sorted(SENSITIVE_QUERY_KEYS))
    + r")=[^&\s'\"#<>]+",
    re.IGNORECASE,
)
_HEADER_SECRET = re.compile(
    r"(\(b?['\"](?:" + "|".join(re.escape(h) for h in sorted(SENSITIVE_HEADERS)) + r")['\"],\s*b?)"
    r"(['\"])(?:(?!\2).)*\2",
    re.IGNORECASE,
)


def redact_free_text(text: str) -> str:
    """``text`` (a log line, a repr) with secret query values in any URL and the values of credential
    headers written as ``(b'name', b'value')`` pairs (httpcore's traces) replaced by ``****``."""
    if "=" in text:
        text = _QUERY_SECRET.sub(lambda m: f"{m.group(1)}={REDACTED}", text)
    if "(" in text:
        text = _HEADER_SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}{m.group(2)}", text)
    return text


def redact_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    """A copy of ``headers`` with credential-bearing values replaced by ``****``."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {k: (REDACTED if k.lower() in SENSITIVE_HEADERS else v) for k, v in items}


def redact_text(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of the given secret values replaced (for server messages that echo them)."""
    for value in secrets:
        if value and len(value) >= 6:
            text = text.replace(value, REDACTED)
    return text


def credentials_in(
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    url: object = None,
    *,
    form: str | None = None,
) -> list[str]:
    """The secret values a request carries: credential headers (whole, without their scheme, and the
    parts of ``user:secret`` pairs, Basic ones decoded), secret query parameters of ``url`` and secret
    fields of a urlencoded ``form`` body (Midas sends its token that way)."""
    import base64
    import binascii

    items = headers.items() if isinstance(headers, Mapping) else headers
    found: list[str] = []
    for name, value in items:
        if name.lower() not in SENSITIVE_HEADERS or not value:
            continue
        found.append(value)
        scheme, _, credential = value.partition(" ")
        credential = credential.strip() if credential else scheme
        found.append(credential)
        if scheme.lower() == "basic":
            try:
                credential = base64.b64decode(credential, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                pass
            else:
                found.append(credential)
        if ":" in credential:
            found.append(credential.split(":", 1)[1])
    if url is not None:
        try:
            pairs = parse_qsl(urlsplit(str(url)).query, keep_blank_values=True)
        except ValueError:
            pairs = []
        found += [v for k, v in pairs if k.lower() in SENSITIVE_QUERY_KEYS and v]
    if form:
        fields = parse_qsl(form, keep_blank_values=True)
        found += [v for k, v in fields if k.lower() in SENSITIVE_QUERY_KEYS and v]
    # longest first, so a whole header is replaced before the parts it contains
    return sorted({v for v in found if len(v) >= 6}, key=len, reverse=True)


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback IP addresses (IPv4 127/8, IPv6 ::1)."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
