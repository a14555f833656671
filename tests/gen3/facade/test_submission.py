"""Sheepdog submission through the facade: batches, per-record verdicts, partial failures, files, retry stance."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from scibind import errors
from scibind.gen3 import SubmissionError, SubmissionResult
from scibind.testing.gen3 import FakeGen3Commons

from .conftest import PROJECT, PROJECT_ID, call, close, faulty, make_client

SUBMISSION = "/api/v0/submission/DEV/test"


def subject(i: int | str, sex: str = "Female") -> dict[str, Any]:
    return {"type": "subject", "submitter_id": f"s{i}", "projects": {"code": PROJECT}, "sex": sex}


def subjects_in_graph(fake: FakeGen3Commons) -> list[str]:
    return sorted(str(n.props["submitter_id"]) for n in fake.graph.nodes_of("subject"))


def submission_requests(fake: FakeGen3Commons) -> list[httpx.Request]:
    return [r for r in fake.requests if r.url.path.startswith(SUBMISSION)]


async def test_batches_of_chunk_size_all_succeed(g3: Any, fake: FakeGen3Commons) -> None:
    result: SubmissionResult = await call(
        g3.submit(PROJECT_ID, [subject(i) for i in range(7)], chunk_size=3)
    )
    assert result.ok and not result.failed
    assert [o.submitter_id for o in result.succeeded] == [f"s{i}" for i in range(7)]
    assert all(o.action == "create" and o.id for o in result.succeeded)
    assert result.requests == 3
    assert [len(json.loads(r.content)) for r in submission_requests(fake)] == [3, 3, 1]
    assert {r.method for r in submission_requests(fake)} == {"PUT"}
    assert subjects_in_graph(fake) == [f"s{i}" for i in range(7)]
    again = await call(g3.submit(PROJECT_ID, [subject(0, "Male")]))
    assert again.succeeded[0].action == "update"


async def test_partial_failure_keeps_the_rest_of_the_batch(g3: Any, fake: FakeGen3Commons) -> None:
    docs = [subject(i) for i in range(6)]
    docs[1] = subject("bad", "Nope")
    docs[4] = {"type": "subject", "submitter_id": "s4"}  # no link to the project
    result = await call(g3.submit(PROJECT_ID, docs, chunk_size=3))
    assert not result.ok
    assert [o.submitter_id for o in result.succeeded] == ["s0", "s2", "s3", "s5"]
    assert [(o.index, o.submitter_id) for o in result.failed] == [(1, "sbad"), (4, "s4")]
    assert "'Nope' is not one of" in result.failed[0].messages[0]
    assert "[sex]" in result.failed[0].messages[0]
    assert result.failed[1].messages  # the server's own words about the missing link
    assert subjects_in_graph(fake) == ["s0", "s2", "s3", "s5"]
    # two batches refused, each resent without its invalid record
    assert result.requests == 4
    with pytest.raises(SubmissionError, match="2 of 6 records failed") as info:
        result.raise_for_failures()
    assert info.value.result is result


async def test_transactional_failure_is_retried_record_by_record(
    fake: FakeGen3Commons, kind: str
) -> None:
    def rule(request: httpx.Request) -> httpx.Response | None:
        if request.url.path != SUBMISSION:
            return None
        docs = json.loads(request.content)
        if len(docs) > 1:  # a whole-batch refusal with no verdict on any record
            entities = [{"valid": True, "action": "create", "type": "subject", "id": None,
                         "errors": [], "warnings": [], "unique_keys": []} for _ in docs]  # fmt: skip
            body = {"code": 400, "success": False, "message": "Transaction aborted",
                    "entities": entities, "transactional_errors": ["database is busy"]}  # fmt: skip
            return httpx.Response(400, json=body)
        if docs[0]["submitter_id"] == "s2":
            body = {"code": 400, "success": False, "message": "Transaction aborted",
                    "entities": [], "transactional_errors": [{"message": "locked row"}]}  # fmt: skip
            return httpx.Response(400, json=body)
        return None

    client = make_client(kind, api_key=fake.new_api_key()["api_key"], transport=faulty(fake, rule))
    try:
        result = await call(client.submit(PROJECT_ID, [subject(i) for i in range(4)]))
    finally:
        await close(client)
    assert [o.submitter_id for o in result.succeeded] == ["s0", "s1", "s3"]
    assert [(o.submitter_id, o.messages) for o in result.failed] == [("s2", ("locked row",))]
    assert result.requests == 5


async def test_duplicate_keys_in_one_batch_are_refused_before_sending(g3: Any) -> None:
    with pytest.raises(errors.ConfigurationError, match="duplicate submitter_id"):
        await call(g3.submit(PROJECT_ID, [subject(1), subject(1)]))


async def test_create_mode_and_dry_run(g3: Any, fake: FakeGen3Commons) -> None:
    dry = await call(g3.submit(PROJECT_ID, [subject(1)], mode="create", dry_run=True))
    assert dry.ok and dry.dry_run and subjects_in_graph(fake) == []
    created = await call(g3.submit(PROJECT_ID, [subject(1)], mode="create"))
    assert created.ok and subjects_in_graph(fake) == ["s1"]
    methods = [(r.method, r.url.path) for r in submission_requests(fake)]
    assert methods == [("POST", SUBMISSION + "/_dry_run"), ("POST", SUBMISSION)]
    with pytest.raises(errors.ConfigurationError):
        await call(g3.submit(PROJECT_ID, [subject(2)], mode="replace"))


async def test_whole_request_errors_stop_and_report_the_rest(
    g3: Any, fake: FakeGen3Commons
) -> None:
    result = await call(g3.submit("DEV-nothere", [subject(i) for i in range(4)], chunk_size=2))
    assert isinstance(result.error, errors.NotFoundError)
    assert result.requests == 1 and not result.succeeded
    assert [o.index for o in result.failed] == [0, 1, 2, 3]
    assert "DEV-nothere not found" in result.failed[3].messages[0]
    with pytest.raises(SubmissionError, match="stopped by"):
        result.raise_for_failures()


async def test_submit_tsv_file_with_row_offset(
    g3: Any, fake: FakeGen3Commons, tmp_path: Path
) -> None:
    path = tmp_path / "subjects.tsv"
    rows = ["*type\t*submitter_id\tprojects.code\tsex"]
    rows += [f"subject\tt{i}\t{PROJECT}\t{'Male' if i != 3 else 'Alien'}" for i in range(5)]
    path.write_text("\n".join(rows) + "\n\n")
    result = await call(g3.submit_file(PROJECT_ID, path, chunk_size=2, row_offset=1))
    assert [o.submitter_id for o in result.succeeded] == ["t1", "t2", "t4"]
    assert [(o.index, o.submitter_id) for o in result.failed] == [(3, "t3")]
    sent = [r for r in submission_requests(fake)]
    assert all(r.headers["content-type"] == "text/tab-separated-values" for r in sent)
    assert sent[0].content.decode().splitlines()[0] == "type\tsubmitter_id\tprojects.code\tsex"
    assert subjects_in_graph(fake) == ["t1", "t2", "t4"]


async def test_submit_json_and_csv_files(g3: Any, fake: FakeGen3Commons, tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"data": [subject(1), subject(2)]}))
    (tmp_path / "b.csv").write_text(
        f"type,submitter_id,projects.code,sex\nsubject,c1,{PROJECT},Male\n"
    )
    assert (await call(g3.submit_file(PROJECT_ID, tmp_path / "a.json"))).ok
    assert (await call(g3.submit_file(PROJECT_ID, tmp_path / "b.csv"))).ok
    assert subjects_in_graph(fake) == ["c1", "s1", "s2"]
    (tmp_path / "c.ods").write_bytes(b"PK")
    with pytest.raises(errors.ConfigurationError, match=r"\.json, \.tsv"):
        await call(g3.submit_file(PROJECT_ID, tmp_path / "c.ods"))


async def test_upsert_is_retried_create_is_not(fake: FakeGen3Commons, kind: str) -> None:
    """PUT upserts (a repeat writes the same values): retried on 503. POST creates: never repeated blindly."""
    seen: list[str] = []

    def rule(request: httpx.Request) -> httpx.Response | None:
        if request.url.path == SUBMISSION:
            seen.append(request.method)
            if seen.count(request.method) == 1:
                return httpx.Response(503, json={"message": "try again"})
        return None

    client = make_client(kind, api_key=fake.new_api_key()["api_key"], transport=faulty(fake, rule))
    try:
        upsert = await call(client.submit(PROJECT_ID, [subject(1)]))
        assert upsert.ok and seen == ["PUT", "PUT"]
        create = await call(client.submit(PROJECT_ID, [subject(2)], mode="create"))
        assert seen == ["PUT", "PUT", "POST"]
        assert isinstance(create.error, errors.ServerError) and not create.succeeded
    finally:
        await close(client)
    assert subjects_in_graph(fake) == ["s1"]


async def test_too_large_batches_are_split(fake: FakeGen3Commons, kind: str) -> None:
    def rule(request: httpx.Request) -> httpx.Response | None:
        if request.url.path == SUBMISSION and len(json.loads(request.content)) > 2:
            return httpx.Response(413, text="413 Request Entity Too Large")
        return None

    client = make_client(kind, api_key=fake.new_api_key()["api_key"], transport=faulty(fake, rule))
    try:
        result = await call(client.submit(PROJECT_ID, [subject(i) for i in range(5)], chunk_size=5))
    finally:
        await close(client)
    assert result.ok and result.requests == 5  # 5 -> 2 + 3 -> 2 + (1 + 2)
    assert subjects_in_graph(fake) == [f"s{i}" for i in range(5)]
