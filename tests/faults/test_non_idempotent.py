"""Non-idempotent calls are never repeated blindly: when the server acted and then the answer was lost (a 500
or a reset after the upstream handled the request), there is no duplicate and the error is typed."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from scibind import errors
from scibind.testing.faults import ActThenFail, Rule

from .harness import Harness, close, services_with


@pytest.mark.parametrize("service", services_with("create"), indirect=True)
@pytest.mark.parametrize(
    ("failure", "error"),
    [
        pytest.param(ActThenFail(status=500), errors.ServerError, id="500"),
        pytest.param(ActThenFail(reset=True), errors.ConnectionError, id="reset"),
    ],
)
async def test_create_that_failed_after_acting_leaves_one_record(
    service: Harness, mode: str, failure: ActThenFail, error: type[Exception], check: Any
) -> None:
    op = service.create_op
    (rule,) = service.api.plan(Rule(failure, method=op.method, path=op.path, nth=1))
    label = f"faults-{uuid.uuid4().hex[:10]}"
    client = service.client(mode)
    try:
        if (
            service.create_is_idempotent
        ):  # a PUT: repeating it is safe, so it is repeated and succeeds
            await service.create(client, label)
        else:
            with pytest.raises(Exception) as info:
                await service.create(client, label)
            check(info.value)
            assert isinstance(info.value, error), repr(info.value)
    finally:
        await close(client)
    assert rule.fired == 1
    assert service.created(label) == 1  # the server acted once: no duplicate
    sent = service.api.requests_to(op.path, op.method)
    assert len(sent) == (2 if service.create_is_idempotent else 1)
