"""Bad responses give a typed error with a useful message: never a hang, never a raw exception from deep
inside, never a silent wrong value."""

from __future__ import annotations

import time
from typing import Any

import attrs
import pytest
from scibind import errors
from scibind.config import Timeout
from scibind.testing.faults import (
    Action,
    DropKeys,
    HugeBody,
    InvalidJSON,
    LoopbackOrigin,
    Redirect,
    Respond,
    Rule,
    Stall,
    Trickle,
    Truncate,
    WrongTypes,
)

from .harness import FAST_RETRY, Harness, close, fast_config, services_with

READ = services_with("read")


async def read_with(service: Harness, mode: str, action: Action, **config: Any) -> BaseException:
    """Run the service's single read with ``action`` answering every such request; return the error."""
    handle = service.seed_read()
    op = service.read_op
    service.api.plan(Rule(action, method=op.method, path=op.path))
    client = service.client(mode, fast_config(**config))
    try:
        with pytest.raises(Exception) as info:
            value = await service.read(client, handle)
            pytest.fail(f"no error; returned {value!r}")
    finally:
        await close(client)
    return info.value


@pytest.mark.parametrize("service", READ, indirect=True)
async def test_stalled_headers_hit_the_read_timeout(
    service: Harness, mode: str, check: Any
) -> None:
    started = time.monotonic()
    exc = await read_with(
        service,
        mode,
        Stall(30),
        timeout=Timeout(connect=2, read=0.3, write=2, pool=2),
        retry=attrs.evolve(FAST_RETRY, max_attempts=2),
    )
    check(exc)
    assert isinstance(exc, errors.TimeoutError)
    assert "timed out" in str(exc) and service.api.url.split("//")[1] in str(exc)
    assert time.monotonic() - started < 2.5
    assert len(service.api.requests_to(service.read_op.path)) == 2


@pytest.mark.parametrize("service", READ, indirect=True)
async def test_trickling_body_hits_the_time_budget(service: Harness, mode: str, check: Any) -> None:
    budget = 0.8
    started = time.monotonic()
    exc = await read_with(
        service,
        mode,
        Trickle(
            chunk=16, interval=0.02, pad_to=20_000
        ),  # ~25 s in all, each chunk well within the read timeout
        retry=attrs.evolve(FAST_RETRY, budget=budget),
    )
    check(exc)
    assert isinstance(exc, errors.TimeoutError)
    assert "budget" in str(exc)
    assert time.monotonic() - started < budget + 1.0


@pytest.mark.parametrize("service", READ, indirect=True)
async def test_truncated_body_is_a_connection_error(
    service: Harness, mode: str, check: Any
) -> None:
    exc = await read_with(
        service, mode, Truncate(keep=12), retry=attrs.evolve(FAST_RETRY, max_attempts=2)
    )
    check(exc)
    assert isinstance(exc, errors.ConnectionError)
    assert len(service.api.requests_to(service.read_op.path)) == 2  # retried once, then reported


@pytest.mark.parametrize("service", READ, indirect=True)
@pytest.mark.parametrize(
    "action",
    [
        pytest.param(InvalidJSON(), id="invalid-json"),
        pytest.param(
            Respond(
                200, b"<html><body>Please sign in</body></html>", {"Content-Type": "text/html"}
            ),
            id="html",
        ),
        pytest.param(Respond(200, b"", {"Content-Type": "application/json"}), id="empty"),
        pytest.param(
            Respond(200, b"[1, 2, 3]", {"Content-Type": "application/json"}), id="json-list"
        ),
        pytest.param(Respond(200, b"null", {"Content-Type": "application/json"}), id="json-null"),
        pytest.param(WrongTypes(), id="all-wrong-types"),
    ],
)
async def test_malformed_body_is_a_response_format_error(
    service: Harness, mode: str, action: Action, check: Any
) -> None:
    exc = await read_with(service, mode, action)
    check(exc)
    assert isinstance(exc, errors.ResponseFormatError), repr(exc)


@pytest.mark.parametrize("service", READ, indirect=True)
async def test_missing_field_is_a_response_format_error(
    service: Harness, mode: str, check: Any
) -> None:
    exc = await read_with(service, mode, DropKeys(service.missing_field))
    check(exc)
    assert isinstance(exc, errors.ResponseFormatError), repr(exc)
    assert service.missing_field in str(exc)


@pytest.mark.parametrize("service", READ, indirect=True)
async def test_wrong_type_is_a_response_format_error(
    service: Harness, mode: str, check: Any
) -> None:
    exc = await read_with(service, mode, WrongTypes(service.typed_field))
    check(exc)
    assert isinstance(exc, errors.ResponseFormatError), repr(exc)
    assert service.typed_field in str(exc)


@pytest.mark.parametrize("service", READ, indirect=True)
async def test_huge_body_is_refused_early(service: Harness, mode: str, check: Any) -> None:
    started = time.monotonic()
    exc = await read_with(
        service, mode, HugeBody(size=512 * 1024 * 1024), max_response_bytes=1 << 20
    )
    check(exc)
    assert isinstance(exc, errors.ResponseTooLargeError)
    assert time.monotonic() - started < 5  # stopped reading long before 512 MiB


@pytest.mark.parametrize("service", READ, indirect=True)
async def test_redirect_to_another_host_is_not_followed_with_credentials(
    service: Harness, mode: str, check: Any
) -> None:
    with LoopbackOrigin() as other:
        exc = await read_with(service, mode, Redirect(other, status=302))
    check(exc)
    assert isinstance(exc, errors.APIError), repr(exc)
    assert other.authorizations == []


@pytest.mark.parametrize("service", services_with("listing"), indirect=True)
@pytest.mark.parametrize(
    "action",
    [pytest.param(InvalidJSON(), id="invalid-json"), pytest.param(WrongTypes(), id="wrong-types")],
)
async def test_malformed_listing_page_is_a_response_format_error(
    service: Harness, mode: str, action: Action, check: Any
) -> None:
    service.seed_listing()
    op = service.listing_op
    page = 2 if service.page_count > 1 else 1  # a page after the first, where there is one
    service.api.plan(Rule(action, method=op.method, path=op.path, nth=page))
    client = service.client(mode)
    try:
        with pytest.raises(Exception) as info:
            await service.list_all(client)
    finally:
        await close(client)
    check(info.value)
    assert isinstance(info.value, errors.ResponseFormatError), repr(info.value)
