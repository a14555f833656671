"""The official Gen3 SDK (requests-based) works against FakeGen3Commons served on loopback.

This is evidence that the fake is faithful: a client written against the real services, which we do not
control, authenticates, submits, queries, exports and indexes through it unchanged.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from scibind.testing.gen3 import FakeGen3Commons

pytest.importorskip("gen3", reason="the Gen3 SDK is a dev dependency")


@pytest.fixture
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The SDK caches tokens under ~/.cache/gen3 and reads ~/.gen3: keep both inside tmp_path."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("GEN3_API_KEY", raising=False)
    return home


def test_gen3_sdk_submission_query_and_index(isolated_home: Path) -> None:
    from gen3.auth import Gen3Auth
    from gen3.index import Gen3Index
    from gen3.submission import Gen3Submission

    fake = FakeGen3Commons()
    fake.create_program("DEV")
    fake.create_project("DEV", "test")
    with fake.serve() as base:
        credentials = isolated_home / "credentials.json"
        fake.write_credentials(credentials)  # minted inside serve(): `iss` is the loopback URL
        auth = Gen3Auth(refresh_file=str(credentials))
        assert auth.endpoint == base

        submission = Gen3Submission(auth)
        assert submission.get_programs() == {"links": ["/v0/submission/DEV"]}
        result = submission.submit_record(
            "DEV", "test", [{"type": "subject", "submitter_id": "s1", "projects": {"code": "test"}}]
        )
        assert result["success"] is True and result["entities"][0]["action"] == "create"
        queried = submission.query('{ subject(project_id: "DEV-test") { submitter_id } }')
        assert queried == {"data": {"subject": [{"submitter_id": "s1"}]}}
        exported = submission.export_node("DEV", "test", "subject", "json")
        assert [e["submitter_id"] for e in exported["data"]] == ["s1"]

        index = Gen3Index(auth)
        created = index.create_record(
            hashes={"md5": "0" * 32}, size=3, urls=["s3://bucket/key"], file_name="x.txt"
        )
        assert created["did"].startswith("dg.FAKE/")
        assert index.get_record(created["did"])["file_name"] == "x.txt"
        assert [r["did"] for r in index.get_all_records(limit=1, paginate=True)] == [created["did"]]

    assert fake.tokens_minted == 1  # the SDK cached its access token across all calls
