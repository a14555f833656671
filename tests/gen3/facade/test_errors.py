"""How Gen3 services word their errors, reduced to the message: Fence HTML pages, S3 XML, indexd/sheepdog JSON."""

from __future__ import annotations

import httpx
import pytest
from scibind.gen3._errors import gen3_error_message

REQUEST = httpx.Request("GET", "https://commons.fake.test/x")


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        (
            "text/html; charset=utf-8",
            "<html><body><h2>403 Forbidden</h2><p>You don&#x27;t have access</p><p>later</p></body></html>",
            ("You don't have access", None),
        ),
        (
            "application/xml",
            "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
            ("Request has expired", "AccessDenied"),
        ),
        ("application/json", '{"error": "no record found"}', ("no record found", None)),
        (
            "application/json",
            '{"message": "program DEV is not registered", "code": 404}',
            ("program DEV is not registered", 404),
        ),
        (
            "application/json",
            '{"error": "invalid_client", "error_description": "bad"}',
            ("bad", None),
        ),
    ],
)
def test_messages(content_type: str, body: str, expected: tuple[str, object]) -> None:
    response = httpx.Response(
        400, text=body, headers={"Content-Type": content_type}, request=REQUEST
    )
    assert gen3_error_message(response) == expected
