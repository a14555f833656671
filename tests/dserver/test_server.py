"""The real dserver launcher (scibind.testing.dserver_server): lifecycle, tokens, search, direct Mongo, and the
official client dtool-lookup-api against it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from scibind.testing.dserver_server import (
    DServerInstance,
    DServerStartError,
    require_for_tests,
    run_dserver,
    start_dserver,
)

require_for_tests()

import jwt  # noqa: E402

pytestmark = pytest.mark.integration


def _unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def _search(server: DServerInstance, **query: Any) -> list[dict[str, Any]]:
    with server.client() as http:
        resp = http.post("/uris", json=query, params={"page_size": 100})
    assert resp.status_code == 200, resp.text
    result: list[dict[str, Any]] = resp.json()
    return result


def _claims(token: str, public_key: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(token, public_key, algorithms=["RS256"])
    return decoded


# -- lifecycle ------------------------------------------------------------------------------------------
def test_session_server_is_up(dserver_server: DServerInstance) -> None:
    assert dserver_server.is_running()
    assert httpx.URL(dserver_server.url).host == "127.0.0.1"
    assert httpx.URL(dserver_server.token_generator_url).host == "127.0.0.1"
    resp = httpx.get(dserver_server.url + "/config/versions")
    assert resp.status_code == 200
    versions = resp.json()["versions"]
    assert versions["dservercore"] == "0.22.0"
    assert {
        "dserver_search_plugin_mongo",
        "dserver_retrieve_plugin_mongo",
        "dserver_direct_mongo_plugin",
    } <= set(versions)
    assert "admin-password" not in repr(dserver_server)


def test_starts_and_stops_cleanly(tmp_path: Path) -> None:
    with run_dserver(base_uris=["s3://bucket-a", "s3://bucket-b/"]) as server:
        assert server.base_uris == ("s3://bucket-a", "s3://bucket-b")
        workdir, url = server.workdir, server.url
        with server.client() as http:
            assert http.get("/me").json()["search_permissions_on_base_uris"] == [
                "s3://bucket-a",
                "s3://bucket-b",
            ]
        assert (workdir / "dserver.sqlite").is_file()
    assert not server.is_running()
    assert server.process.returncode == 0  # the child shut down by itself on stdin EOF
    assert not workdir.exists()
    with pytest.raises(httpx.TransportError):
        httpx.get(url + "/config/versions", timeout=2)


def test_kept_workdir_and_log(tmp_path: Path) -> None:
    with run_dserver(workdir=tmp_path / "wd") as server:
        httpx.get(server.url + "/config/versions")
    assert (tmp_path / "wd").is_dir()  # caller-owned: kept
    log = (tmp_path / "wd" / "dserver.log").read_text()
    assert "GET /config/versions" in log
    assert "token generator on port" in log


def test_environment_is_not_inherited(monkeypatch: pytest.MonkeyPatch) -> None:
    """dserver settings in the caller's environment do not leak in; ``env`` sets them explicitly."""
    monkeypatch.setenv("OPENAPI_URL_PREFIX", "/elsewhere")
    monkeypatch.setenv("DISABLE_JWT_AUTHORISATION", "1")
    with run_dserver(env={"OPENAPI_URL_PREFIX": "/api-doc"}) as server:
        assert httpx.get(server.url + "/api-doc/openapi.json").status_code == 200
        assert httpx.get(server.url + "/elsewhere/openapi.json").status_code == 404
        assert httpx.get(server.url + "/me").status_code == 401


def test_start_failure_raises_with_log(tmp_path: Path) -> None:
    with pytest.raises(DServerStartError, match="did not start") as info:
        start_dserver(workdir=tmp_path, env={"SQLALCHEMY_DATABASE_URI": "nosuchdialect://x"})
    assert "nosuchdialect" in str(info.value)
    assert (tmp_path / "failed.json").is_file()


def test_killed_parent_takes_server_down(tmp_path: Path) -> None:
    """The child exits when its parent goes away (stdin EOF), so no server outlives a crashed test run."""
    script = (
        "import sys, json\n"
        "from scibind.testing.dserver_server import start_dserver\n"
        f"s = start_dserver(workdir={str(tmp_path)!r})\n"
        "print(json.dumps({'pid': s.pid, 'url': s.url}), flush=True)\n"
        "sys.stdin.read()\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    ) as parent:
        assert parent.stdout is not None
        info = json.loads(parent.stdout.readline())
        assert httpx.get(info["url"] + "/config/versions").status_code == 200
        parent.kill()
    assert _eventually(lambda: not _answers(info["url"])), "the dserver outlived its parent"


def _answers(url: str) -> bool:
    try:
        httpx.get(url + "/config/versions", timeout=1)
    except httpx.TransportError:
        return False
    return True


def _eventually(predicate: Any, timeout: float = 10.0) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` passes (a polling interval, not a fixed wait)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


# -- tokens ---------------------------------------------------------------------------------------------
def test_token_generator_issues_tokens_the_server_accepts(dserver_server: DServerInstance) -> None:
    s = dserver_server
    resp = httpx.post(
        s.token_generator_url, json={"username": s.user_username, "password": s.user_password}
    )
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == "success"
    claims = _claims(body["token"], s.public_key)
    assert claims["sub"] == s.user_username
    assert claims["type"] == "access"
    assert claims["exp"] - claims["iat"] == 900
    me = httpx.get(s.url + "/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200
    assert me.json()["username"] == s.user_username
    assert me.json()["is_admin"] is False


def test_token_generator_rejects_wrong_credentials_like_upstream(
    dserver_server: DServerInstance,
) -> None:
    s = dserver_server
    wrong = httpx.post(s.token_generator_url, json={"username": s.admin_username, "password": "x"})
    assert (wrong.status_code, wrong.json()) == (200, {"status": "fail"})
    unknown = httpx.post(s.token_generator_url, json={"username": "nobody", "password": "x"})
    assert unknown.json() == {"status": "fail"}
    missing = httpx.post(s.token_generator_url, json={"username": s.admin_username})
    assert missing.status_code == 400
    assert httpx.get(s.public_key_url).text == s.public_key


def test_minted_tokens(dserver_server: DServerInstance) -> None:
    s = dserver_server
    assert _claims(s.token(), s.public_key)["sub"] == s.admin_username
    forever = _claims(s.token(s.user_username, expires_in=None), s.public_key)
    assert "exp" not in forever
    with s.client(s.user_username) as http:
        assert http.get("/me").json()["username"] == s.user_username
    expired = httpx.get(
        s.url + "/me", headers={"Authorization": f"Bearer {s.token(expires_in=-5)}"}
    )
    assert expired.status_code == 401
    assert expired.json() == {"msg": "Token has expired"}
    unregistered = httpx.get(s.url + "/me", headers=s.headers("nobody"))
    assert unregistered.status_code == 401


@pytest.fixture(scope="module")
def configured_server() -> Iterator[DServerInstance]:
    """Short-lived generator tokens, 401 for wrong credentials, aggregation off, extra users."""
    with run_dserver(
        token_expires_in=2,
        token_generator_fail_status=401,
        allow_direct_aggregation=False,
        extra_users={"carol": "carol-pw"},
        admin_username="boss",
        admin_password="boss-pw",
    ) as server:
        yield server


def test_short_expiry(configured_server: DServerInstance) -> None:
    s = configured_server
    token = httpx.post(
        s.token_generator_url, json={"username": "carol", "password": "carol-pw"}
    ).json()["token"]
    claims = _claims(token, s.public_key)
    assert claims["exp"] - claims["iat"] == 2
    assert httpx.get(s.url + "/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_already_expired_generator_tokens() -> None:
    with run_dserver(token_expires_in=-60) as s:
        token = httpx.post(
            s.token_generator_url, json={"username": s.admin_username, "password": s.admin_password}
        ).json()["token"]
        resp = httpx.get(s.url + "/me", headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 401
        assert resp.json() == {"msg": "Token has expired"}


def test_configured_users_and_failure_status(configured_server: DServerInstance) -> None:
    s = configured_server
    assert s.admin_username == "boss"
    wrong = httpx.post(s.token_generator_url, json={"username": "carol", "password": "nope"})
    assert (wrong.status_code, wrong.json()) == (401, {"status": "fail"})
    with s.client() as http:
        users = {u["username"]: u["is_admin"] for u in http.get("/users").json()}
    assert users == {"boss": True, "user": False, "carol": False}


def test_aggregation_can_be_disabled(configured_server: DServerInstance) -> None:
    with configured_server.client() as http:
        assert http.post("/mongo/aggregate", json={"aggregation": []}).status_code == 404
        assert http.post("/mongo/query", json={"query": {}}).status_code == 200


# -- datasets and search ---------------------------------------------------------------------------------
def test_seeded_datasets_are_listed_and_retrievable(dserver_server: DServerInstance) -> None:
    s = dserver_server
    creator = _unique("seed")
    bodies = s.seed_datasets(12, creator_username=creator)
    assert len({b["uuid"] for b in bodies}) == 12
    found = _search(s, creator_usernames=[creator])
    assert sorted(d["uri"] for d in found) == sorted(b["uri"] for b in bodies)
    body = bodies[0]
    with s.client() as http:
        summary = http.get(f"/uris/{body['uri']}").json()
        assert summary["size_in_bytes"] == body["size_in_bytes"]
        assert summary["number_of_items"] == len(body["manifest"]["items"])
        assert summary["frozen_at"] == pytest.approx(float(body["frozen_at"]), abs=1e-3)
        assert http.get(f"/readmes/{body['uri']}").json() == {"readme": body["readme"]}
        assert http.get(f"/manifests/{body['uri']}").json() == body["manifest"]
        assert http.get(f"/annotations/{body['uri']}").json() == {
            "annotations": body["annotations"]
        }
        assert http.get(f"/tags/{body['uri']}").json() == {"tags": body["tags"]}
        page = http.get("/uris", params={"page": 2, "page_size": 5})
        assert json.loads(page.headers["X-Pagination"])["page"] == 2


def test_seeding_is_deterministic_per_seed(dserver_server: DServerInstance) -> None:
    a = dserver_server.seed_datasets(2, seed=1234)
    b = dserver_server.seed_datasets(2, seed=1234)  # registered again: updated, not duplicated
    assert a == b
    assert len(_search(dserver_server, uuids=[a[0]["uuid"]])) == 1
    other = dserver_server.seed_datasets(2, seed=1234, creator_username="someone")
    assert {d["uuid"] for d in other}.isdisjoint(d["uuid"] for d in a)


def test_free_text_search(dserver_server: DServerInstance) -> None:
    s = dserver_server
    w1, w2, w3 = _unique("alpha"), _unique("beta"), _unique("gamma")
    tag = _unique("tag")
    one = s.register_dataset(readme={"description": f"{w1} and {w3} together"}, tags=[])
    two = s.register_dataset(
        readme={"description": f"only {w2} here, Phrase Match {w3}"}, tags=[tag]
    )

    def uris(text: str) -> set[str]:
        return {d["uri"] for d in _search(s, free_text=text)}

    assert uris(w1) == {one["uri"]}
    assert uris(w1.upper()) == {one["uri"]}  # case-insensitive
    assert uris(w1[:-2]) == set()  # whole words only
    assert uris(f"{w1} {w2}") == {one["uri"], two["uri"]}  # terms are OR-ed
    assert uris(f"{w3} -{w2}") == {one["uri"]}  # exclusion
    assert uris(f'"phrase match {w3}"') == {two["uri"]}  # phrase
    assert uris(f'"{w3} together" "and {w3}"') == {one["uri"]}  # all phrases must match
    # free text combined with another filter (an $and around $text)
    assert {d["uri"] for d in _search(s, free_text=w3, tags=[tag])} == {two["uri"]}


def test_tag_and_uuid_and_base_uri_filters(dserver_server: DServerInstance) -> None:
    s = dserver_server
    t1, t2 = _unique("tag"), _unique("tag")
    both = s.register_dataset(tags=[t1, t2])
    only1 = s.register_dataset(tags=[t1])
    assert {d["uri"] for d in _search(s, tags=[t1])} == {both["uri"], only1["uri"]}
    assert {d["uri"] for d in _search(s, tags=[t1, t2])} == {both["uri"]}  # tags are AND-ed
    assert [d["uri"] for d in _search(s, uuids=[both["uuid"]])] == [both["uri"]]
    assert _search(s, uuids=[str(uuid.uuid4())]) == []
    assert _search(s, base_uris=["s3://not-registered"], tags=[t1]) == []
    with s.client() as http:
        listed = http.get("/uris", params=[("tags", t1), ("tags", t2)]).json()
        assert [d["uri"] for d in listed] == [both["uri"]]
        by_uuid = http.get(f"/uuids/{only1['uuid']}").json()
        assert [d["uri"] for d in by_uuid] == [only1["uri"]]


def test_non_admin_user_permissions(dserver_server: DServerInstance) -> None:
    s = dserver_server
    body = s.dataset_body()
    with s.client(s.user_username) as http:
        assert http.put(f"/uris/{body['uri']}", json=body).status_code == 403
        assert http.get("/users").status_code == 403
    registered = s.register_dataset(body)
    with s.client(s.user_username) as http:
        assert http.get(f"/uris/{registered['uri']}").status_code == 200


# -- direct Mongo ----------------------------------------------------------------------------------------
def test_direct_mongo_query(dserver_server: DServerInstance) -> None:
    s = dserver_server
    project = _unique("proj")
    body = s.register_dataset(readme={"project": project, "description": "x"}, tags=["q"])
    with s.client() as http:
        resp = http.post("/mongo/query", json={"query": {"readme.project": project}})
    assert resp.status_code == 200
    (doc,) = resp.json()
    assert doc["uri"] == body["uri"]
    assert doc["type"] == "dataset"
    assert doc["tags"] == ["q"]
    assert isinstance(doc["frozen_at"], float)
    assert "readme" not in doc and "_id" not in doc


def test_direct_mongo_aggregation(dserver_server: DServerInstance) -> None:
    s = dserver_server
    creator = _unique("agg")
    bodies = s.seed_datasets(3, creator_username=creator)
    pipeline = [
        {"$match": {"creator_username": creator}},
        {"$group": {"_id": "$creator_username", "total": {"$sum": "$size_in_bytes"}}},
        {"$project": {"creator": "$_id", "total": 1}},
    ]
    with s.client() as http:
        resp = http.post("/mongo/aggregate", json={"aggregation": pipeline})
        assert resp.status_code == 200
        assert resp.json() == [
            {"creator": creator, "total": sum(b["size_in_bytes"] for b in bodies)}
        ]
        names = http.post(
            "/mongo/aggregate",
            json={"creator_usernames": [creator], "aggregation": [{"$project": {"name": 1}}]},
        ).json()
    assert sorted(n["name"] for n in names) == sorted(b["name"] for b in bodies)


# -- the official client ---------------------------------------------------------------------------------
_LOOKUP_SCRIPT = r"""
import json, sys
import dtool_lookup_api as api

uuid, uri, creator = sys.argv[1:4]
pagination = {}
out = {
    "versions": api.get_versions(),
    "by_creator": [d["uri"] for d in api.get_datasets(creator_usernames=[creator], pagination=pagination)],
    "pagination": pagination,
    "by_uuid": [d["uri"] for d in api.get_datasets_by_uuid(uuid)],
    "dataset": api.get_dataset(uri),
    "readme": api.get_readme(uri),
    "tags": api.get_tags(uri),
    "me": api.get_user(),
    "query": [d["uri"] for d in api.get_datasets_by_mongo_query({"creator_username": creator})],
}
print(json.dumps(out))
"""


def test_official_client_dtool_lookup_api(dserver_server: DServerInstance, tmp_path: Path) -> None:
    """dtool-lookup-api 0.10.3 against the launcher; it authenticates with the token generator."""
    require_for_tests(["dtool_lookup_api"], extra="scibind[dev]")
    s = dserver_server
    creator = _unique("lookup")
    bodies = s.seed_datasets(3, creator_username=creator)
    config = tmp_path / ".config" / "dtool" / "dtool.json"
    config.parent.mkdir(parents=True)
    config.write_text(
        json.dumps(
            {
                "DSERVER_URL": s.url,
                "DSERVER_TOKEN_GENERATOR_URL": s.token_generator_url,
                "DSERVER_USERNAME": s.admin_username,
                "DSERVER_PASSWORD": s.admin_password,
            }
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSERVER_")}
    env["HOME"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", _LOOKUP_SCRIPT, bodies[0]["uuid"], bodies[0]["uri"], creator],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["versions"]["dservercore"] == "0.22.0"
    assert sorted(out["by_creator"]) == sorted(b["uri"] for b in bodies)
    assert out["pagination"]["total"] == 3
    assert out["by_uuid"] == [bodies[0]["uri"]]
    assert out["dataset"]["uuid"] == bodies[0]["uuid"]
    assert out["readme"] == bodies[0]["readme"]
    assert out["tags"] == bodies[0]["tags"]
    assert out["me"]["username"] == s.admin_username
    assert sorted(out["query"]) == sorted(b["uri"] for b in bodies)
    cached = json.loads(config.read_text())
    assert _claims(cached["DSERVER_TOKEN"], s.public_key)["sub"] == s.admin_username
