"""Parsed generated models are checked against their annotations; undocumented redirects are errors.

Found by tests/faults: a field of the wrong JSON type (``"frozen_at": "not-a-number"``) reached the user
inside the generated model, and a 302 answer to a generated call returned ``None``.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from scibind import errors
from scibind._core.validate import SchemaMismatch, check_parsed
from scibind.dserver import DServer

DATASET = {
    "base_uri": "smb://share",
    "created_at": 1.5,
    "creator_username": "alice",
    "frozen_at": 2,  # an integer where the schema says number: fine
    "name": "n",
    "uri": "smb://share/u",
    "uuid": "0b2c4d2e-0000-4000-8000-000000000000",
    "number_of_items": None,
}


def dataset(**changes: Any) -> Any:
    from scibind_generated.dserver.models import Dataset

    return Dataset.from_dict({**DATASET, **changes})


def test_good_models_pass() -> None:
    check_parsed(dataset())
    check_parsed([dataset(), dataset(size_in_bytes=3)])
    check_parsed(None)
    check_parsed({"a": [1, "x"]})  # plain JSON is not a model: nothing to check


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"frozen_at": "not-a-number"}, "frozen_at: expected float, got str"),
        ({"frozen_at": True}, "frozen_at: expected float, got bool"),
        ({"name": 12345}, "name: expected str, got int"),
        ({"number_of_items": "4"}, "number_of_items: expected int | null | Unset, got str"),
        ({"number_of_items": 4.5}, "expected int"),
    ],
)
def test_wrong_types_are_found(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(SchemaMismatch, match=message.replace("|", r"\|")) as info:
        check_parsed([dataset(), dataset(**changes)])
    assert info.value.path.startswith("[1].")
    assert "not-a-number" not in str(info.value)  # types only, never values


def test_nested_models_and_lists() -> None:
    from scibind_generated.mytardis.models import Experiment

    body = {"id": 1, "title": "t", "resource_uri": "/api/v1/experiment/1/", "owner_ids": [1, 2]}
    check_parsed(Experiment.from_dict(body))
    with pytest.raises(SchemaMismatch, match=r"owner_ids\[1\]: expected int, got str"):
        check_parsed(Experiment.from_dict({**body, "owner_ids": [1, "2"]}))
    with pytest.raises(SchemaMismatch, match=r"authors\[0\].name: expected str"):
        check_parsed(Experiment.from_dict({**body, "authors": [{"name": 7}]}))


def serve(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body, headers=headers)

    return httpx.MockTransport(handle)


def test_facade_call_with_a_wrong_type_raises_response_format_error() -> None:
    transport = serve(dict(DATASET, uuid=7))
    with (
        DServer("http://127.0.0.1:9", token="t0k3n-value", transport=transport) as ds,
        pytest.raises(errors.ResponseFormatError, match="uuid: expected str, got int"),
    ):
        ds.get_dataset("smb://share/u")


def test_undocumented_redirect_is_an_error_not_none() -> None:
    transport = serve(None, 302, {"Location": "http://elsewhere.test/x?token=s3cret"})
    with (
        DServer("http://127.0.0.1:9", token="t0k3n-value", transport=transport) as ds,
        pytest.raises(
            errors.APIError, match=r"unexpected redirect to http://elsewhere\.test/x"
        ) as info,
    ):
        ds.get_dataset("smb://share/u")
    assert info.value.status == 302
    assert "s3cret" not in str(info.value)
