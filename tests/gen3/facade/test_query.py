"""Peregrine through the facade: programs, projects, counts, paginated node records, raw GraphQL, errors."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from scibind import errors
from scibind.gen3 import GraphQLError, Project
from scibind.testing.gen3 import FakeGen3Commons

from .conftest import PROJECT_ID, call, close, collect, faulty, make_client, seed

GRAPHQL = "/api/v0/submission/graphql"


def graphql_bodies(fake: FakeGen3Commons) -> list[dict[str, Any]]:
    return [json.loads(r.content) for r in fake.requests if r.url.path == GRAPHQL]


async def test_programs_and_projects(g3: Any, fake: FakeGen3Commons) -> None:
    fake.create_program("P2")
    fake.create_project("P2", "x-y")
    assert await call(g3.programs()) == ["DEV", "P2"]
    projects = await call(g3.projects())
    assert projects == [
        Project("DEV-test", "DEV", "test", "test"),
        Project("P2-x-y", "P2", "x-y", "x-y"),
    ]
    assert [p.project_id for p in await call(g3.projects("P2"))] == ["P2-x-y"]


async def test_count_with_filters(g3: Any, fake: FakeGen3Commons) -> None:
    seed(fake, subjects=3, samples_per_subject=2)
    assert await call(g3.count("sample", project_id=PROJECT_ID)) == 6
    assert await call(g3.count("sample", filters={"sample_type": "Blood"})) == 3
    assert await call(g3.count("subject", project_id="DEV-none")) == 0


async def test_records_pages_fetched_concurrently_after_the_count(
    g3: Any, fake: FakeGen3Commons
) -> None:
    seed(fake, subjects=7, samples_per_subject=3)  # 21 samples
    rows = await collect(
        g3.records("sample", project_id=PROJECT_ID, fields=["submitter_id", "sample_type"],
                   order_by="submitter_id", page_size=4)
    )  # fmt: skip
    expected = sorted(f"sample-{s}-{n}" for s in range(7) for n in range(3))
    assert [r["submitter_id"] for r in rows] == expected
    assert {r["sample_type"] for r in rows} == {"Blood", "Tissue"}
    bodies = graphql_bodies(fake)
    assert len(bodies) == 6  # ceil(21 / 4) pages, the count only on the first
    assert "_sample_count" in bodies[0]["query"]
    assert all("_sample_count" not in b["query"] for b in bodies[1:])
    offsets = sorted(int(b["query"].split("offset: ")[1].split(",")[0]) for b in bodies)
    assert offsets == [0, 4, 8, 12, 16, 20]


async def test_records_filters_order_and_max_items(g3: Any, fake: FakeGen3Commons) -> None:
    seed(fake, subjects=4, samples_per_subject=2)
    rows = await collect(
        g3.records("sample", filters={"sample_type": "Tissue"}, order_by="-submitter_id",
                   fields=["submitter_id"], page_size=2, max_items=3)
    )  # fmt: skip
    assert [r["submitter_id"] for r in rows] == ["sample-3-1", "sample-2-1", "sample-1-1"]


async def test_records_of_an_empty_node(g3: Any) -> None:
    assert await collect(g3.records("sample", project_id=PROJECT_ID)) == []


async def test_raw_query_with_variables(g3: Any, fake: FakeGen3Commons) -> None:
    seed(fake, subjects=2, samples_per_subject=1)
    data = await call(
        g3.query(
            "query Q($sid: [String]) { subject(submitter_id: $sid) { submitter_id sex } }",
            {"sid": ["subject-1"]},
            operation_name="Q",
        )
    )
    assert data == {"subject": [{"submitter_id": "subject-1", "sex": "Female"}]}
    body = graphql_bodies(fake)[-1]
    assert body["variables"] == {"sid": ["subject-1"]} and body["operationName"] == "Q"


@pytest.mark.parametrize("status", [400, 200])
async def test_graphql_errors_raise_a_typed_error(
    g3: Any, fake: FakeGen3Commons, status: int
) -> None:
    fake.graphql_error_status = (
        status  # peregrine says 400; some deployments answer 200 with errors
    )
    with pytest.raises(GraphQLError) as info:
        await call(g3.query("{ sample { nope } }"))
    error = info.value
    assert isinstance(error, errors.APIError)
    assert error.status == status
    assert error.errors and "nope" in error.errors[0]
    assert "nope" in str(error) and "/api/v0/submission/graphql" in str(error)


async def test_graphql_error_objects_and_partial_data(fake: FakeGen3Commons, kind: str) -> None:
    def rule(request: httpx.Request) -> httpx.Response | None:
        if request.url.path == GRAPHQL:
            body = {"data": {"a": 1}, "errors": [{"message": "boom", "path": ["b"]}]}
            return httpx.Response(200, json=body)
        return None

    client = make_client(kind, api_key=fake.new_api_key()["api_key"], transport=faulty(fake, rule))
    try:
        with pytest.raises(GraphQLError) as info:
            await call(client.query("{ a b }"))
        assert info.value.errors == ["boom"] and info.value.data == {"a": 1}
    finally:
        await close(client)


async def test_bad_names_are_refused_before_any_request(g3: Any, fake: FakeGen3Commons) -> None:
    with pytest.raises(errors.ConfigurationError, match="node type"):
        g3.records("sample) { id } x: program(", fields=["id"])
    with pytest.raises(errors.ConfigurationError, match="field"):
        g3.records("sample", fields=["id } program { name"])
    with pytest.raises(errors.ConfigurationError, match="filter"):
        await call(g3.count("sample", filters={"a b": 1}))
    assert not graphql_bodies(fake)


async def test_filter_values_are_literals_not_code(g3: Any, fake: FakeGen3Commons) -> None:
    seed(fake, subjects=1, samples_per_subject=1)
    sneaky = 'x"}) { id } program(first: 0) { name } q: sample(submitter_id: "'
    assert await call(g3.count("sample", filters={"submitter_id": sneaky})) == 0


async def test_schema_and_dictionary(g3: Any) -> None:
    schema = await call(g3.graphql_schema())
    assert schema["__schema"]["queryType"]["name"] == "Root"
    dictionary = await call(g3.dictionary())
    assert {"program", "project", "subject", "sample"} <= dictionary.keys()
    sample = await call(g3.dictionary_node("sample"))
    assert sample["id"] == "sample"
    with pytest.raises(errors.NotFoundError):
        await call(g3.dictionary_node("nothing"))


async def test_query_retried_on_server_errors(fake: FakeGen3Commons, kind: str) -> None:
    failures = iter([httpx.Response(503), httpx.Response(502)])

    def rule(request: httpx.Request) -> httpx.Response | None:
        return next(failures, None) if request.url.path == GRAPHQL else None

    client = make_client(kind, api_key=fake.new_api_key()["api_key"], transport=faulty(fake, rule))
    try:
        assert await call(client.programs()) == ["DEV"]  # a read-only POST: safe to repeat
    finally:
        await close(client)
