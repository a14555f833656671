"""The client generated from specs/dserver (captured document + overrides.yaml) against the real server.

The package is generated into a temporary directory (so this checks the spec and overrides, not whatever is in
generated/), then every operation is called on the launcher's dserver: each answer's status must be declared by
the spec for that operation (not only covered by ``default``) and must parse into the declared model.
"""

from __future__ import annotations

import importlib
import re
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from scibind.testing.dserver_server import DServerInstance, require_for_tests

require_for_tests()
require_for_tests(["openapi_python_client"], extra="scibind[dev]")

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / "specs" / "dserver" / "openapi.json"
OVERRIDES = REPO / "specs" / "dserver" / "overrides.yaml"
PKG = "scibind_dserver_conformance"
_METHODS = ("get", "put", "post", "delete", "patch")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    from codegen.normalize import load_normalized

    return load_normalized(SPEC, OVERRIDES)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    from codegen.generate import generate_service

    root = tmp_path_factory.mktemp("generated")
    report = generate_service(SPEC, package=PKG, output_root=root, overrides=OVERRIDES)
    assert report.ok, report.unexpected_skips
    assert report.skipped == []
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(PKG)
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m == PKG or m.startswith(PKG + ".")]:
            del sys.modules[name]


def _module_name(method: str, path: str) -> str:
    return f"{method}_{re.sub(r'[^a-z0-9]+', '_', path.lower()).strip('_')}"


class Harness:
    """Calls generated endpoints and checks status (declared for that operation) and parsed type."""

    def __init__(self, pkg: ModuleType, document: dict[str, Any], server: DServerInstance) -> None:
        self.pkg, self.doc, self.server = pkg, document, server
        self.declared: dict[str, tuple[str, str, set[str]]] = {}
        for path, item in document["paths"].items():
            for method, op in item.items():
                if method in _METHODS:
                    tag = op["tags"][0].replace("-", "_")
                    self.declared[f"{tag}.{_module_name(method, path)}"] = (
                        method,
                        path,
                        set(op["responses"]),
                    )
        self.called: set[str] = set()

    def model(self, name: str) -> Any:
        return getattr(importlib.import_module(f"{PKG}.models"), name)

    def client(self, who: str | None = "admin", *, base_url: str | None = None) -> Any:
        url = base_url or self.server.url
        if who is None:
            return self.pkg.Client(base_url=url, raise_on_unexpected_status=True)
        token = {
            "admin": self.server.token(),
            "user": self.server.token(self.server.user_username),
            "ghost": self.server.token("ghost-user"),
            "malformed": "abc.def.ghi",
        }.get(who, who)
        return self.pkg.AuthenticatedClient(
            base_url=url, token=token, raise_on_unexpected_status=True
        )

    def call(
        self,
        endpoint: str,
        expect: int,
        parsed: Any,
        *,
        who: str | None = "admin",
        base_url: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """Call ``tag.module`` and check the status (declared explicitly) and the parsed type."""
        _method, _path, responses = self.declared[endpoint]
        module = importlib.import_module(f"{PKG}.api.{endpoint}")
        with self.client(who, base_url=base_url) as client:
            resp = module.sync_detailed(client=client, **kwargs)
        assert resp.status_code == expect, resp.content[:300]
        assert str(expect) in responses, (
            f"{endpoint}: {expect} is not declared ({sorted(responses)})"
        )
        if parsed is list:
            assert isinstance(resp.parsed, list)
        elif isinstance(parsed, tuple) and parsed and parsed[0] is list:
            assert isinstance(resp.parsed, list) and resp.parsed
            assert all(isinstance(x, parsed[1]) for x in resp.parsed)
        elif parsed is None:
            assert resp.parsed is None
        else:
            assert isinstance(resp.parsed, parsed), (type(resp.parsed), resp.content[:300])
        self.called.add(endpoint)
        return resp


@pytest.fixture(scope="module")
def h(generated: ModuleType, document: dict[str, Any], dserver_server: DServerInstance) -> Harness:
    return Harness(generated, document, dserver_server)


@pytest.fixture(scope="module")
def dataset(dserver_server: DServerInstance) -> dict[str, Any]:
    return dserver_server.register_dataset(tags=["conformance"], creator_username="conform")


def test_every_operation_is_generated(h: Harness) -> None:
    ops = {e.rsplit(".", 1)[1] for e in h.declared}
    assert (
        len(ops) == 29
    )  # 27 dserver operations (2 from the dependency-graph plugin) + the token generator's two
    for endpoint in h.declared:
        importlib.import_module(f"{PKG}.api.{endpoint}")


def _field_types(h: Harness, model: str) -> dict[str, Any]:
    import attrs

    return {f.name: f.type for f in attrs.fields(h.model(model))}


def test_models_are_typed(h: Harness) -> None:
    """What the server always sends is required and typed (untyped fields would pass any value through)."""
    assert _field_types(h, "Dataset") == {
        "base_uri": "str",
        "created_at": "float",
        "creator_username": "str",
        "frozen_at": "float",
        "name": "str",
        "uri": "str",
        "uuid": "str",
        "number_of_items": "int | None | Unset",
        "size_in_bytes": "int | None | Unset",
    }
    mongo = _field_types(h, "MongoDataset")
    assert (mongo["created_at"], mongo["tags"], mongo["type_"]) == ("float", "list[str]", "str")
    register = _field_types(h, "RegisterDataset")
    assert (register["frozen_at"], register["readme"], register["tags"]) == (
        "str",
        "str",
        "list[str]",
    )
    assert register["created_at"] == "str | Unset"
    assert _field_types(h, "TokenResponse")["token"] == "str | Unset"
    assert _field_types(h, "JWTError")["msg"] == "str"
    graph = _field_types(h, "GraphDataset")
    assert (graph["uuid"], graph["derived_from"], graph["created_at"]) == (
        "str",
        "list[str]",
        "float",
    )


def test_config(h: Harness) -> None:
    v = h.call("config.get_config_versions", 200, h.model("Version"), who=None)
    assert v.parsed.versions["dservercore"] == "0.22.0"
    info = h.call("config.get_config_info", 200, h.model("Config"))
    assert info.parsed.config["allow_direct_aggregation"] is True
    missing = h.call("config.get_config_info", 401, h.model("JWTError"), who=None)
    assert missing.parsed.msg == "Missing Authorization Header"
    h.call("config.get_config_info", 401, h.model("Error"), who="ghost")
    bad = h.call("config.get_config_info", 422, h.model("JWTError"), who="malformed")
    assert bad.parsed.msg


def test_dataset_listing_and_search(h: Harness, dataset: dict[str, Any]) -> None:
    Dataset = h.model("Dataset")
    listed = h.call("uris.get_uris", 200, (list, Dataset), page_size=100)
    ds = listed.parsed[0]
    assert isinstance(ds.base_uri, str)
    assert isinstance(ds.created_at, float) and isinstance(ds.frozen_at, float)
    assert httpx.Response(200, headers=listed.headers).headers["X-Pagination"].startswith("{")
    h.server.seed_datasets(3, creator_username="conform-sort")
    ordered = h.call(
        "uris.get_uris",
        200,
        (list, Dataset),
        creator_usernames=["conform-sort"],
        sort="-frozen_at,+name",
    )
    assert ordered.headers["X-Sort"] == '{"sort": {"frozen_at": -1, "name": 1}}'
    frozen = [d.frozen_at for d in ordered.parsed]
    assert frozen == sorted(frozen, reverse=True)
    found = h.call(
        "uris.post_uris",
        200,
        (list, Dataset),
        body=h.model("SearchDataset")(tags=["conformance"], creator_usernames=["conform"]),
    )
    assert [d.uri for d in found.parsed] == [dataset["uri"]]
    h.call("uris.get_uris", 404, h.model("Error"), page=10_000)
    h.call("uris.post_uris", 404, h.model("Error"), body=h.model("SearchDataset")(), page=10_000)
    bad_sort = h.call("uris.get_uris", 422, h.model("Error"), sort="size_in_bytes")
    assert bad_sort.parsed.code == 422
    h.call("uris.get_uris", 401, h.model("JWTError"), who=None)
    h.call("uris.post_uris", 401, h.model("Error"), who="ghost", body=h.model("SearchDataset")())
    by_uuid = h.call("uuids.get_uuids_uuid", 200, (list, Dataset), uuid=dataset["uuid"])
    assert by_uuid.parsed[0].uri == dataset["uri"]
    h.call("uuids.get_uuids_uuid", 404, h.model("Error"), uuid=dataset["uuid"], page=5)
    h.call("uuids.get_uuids_uuid", 401, h.model("Error"), who="ghost", uuid=dataset["uuid"])


def test_dataset_crud(h: Harness) -> None:
    Error = h.model("Error")
    body = h.server.dataset_body(creator_username="conform-crud")
    register = h.model("RegisterDataset").from_dict(body)
    assert register.to_dict()["frozen_at"] == body["frozen_at"]
    h.call("uris.put_uris_uri", 201, None, uri=body["uri"], body=register)
    h.call("uris.put_uris_uri", 200, None, uri=body["uri"], body=register)
    h.call("uris.put_uris_uri", 403, Error, who="user", uri=body["uri"], body=register)
    h.call("uris.put_uris_uri", 400, Error, uri=body["uri"] + "x", body=register)
    h.call("uris.put_uris_uri", 401, h.model("JWTError"), who=None, uri=body["uri"], body=register)
    got = h.call("uris.get_uris_uri", 200, h.model("Dataset"), uri=body["uri"])
    assert got.parsed.size_in_bytes == body["size_in_bytes"]
    h.call("uris.get_uris_uri", 404, Error, uri=h.server.base_uri + "/" + str(uuid.uuid4()))
    h.call("uris.get_uris_uri", 403, Error, uri="s3://not-registered/x")
    h.call("uris.get_uris_uri", 422, h.model("JWTError"), who="malformed", uri=body["uri"])
    h.call("uris.delete_uris_uri", 403, Error, who="user", uri=body["uri"])
    h.call("uris.delete_uris_uri", 200, None, uri=body["uri"])
    h.call("uris.get_uris_uri", 404, Error, uri=body["uri"])


def test_dataset_content(h: Harness, dataset: dict[str, Any]) -> None:
    Error, uri = h.model("Error"), dataset["uri"]
    unknown = h.server.base_uri + "/" + str(uuid.uuid4())
    manifest = h.call("manifests.get_manifests_uri", 200, h.model("Manifest"), uri=uri)
    item = next(iter(manifest.parsed.items.additional_properties.values()))
    assert isinstance(item, h.model("Item")) and isinstance(item.size_in_bytes, int)
    h.call("manifests.get_manifests_uri", 404, Error, uri=unknown)
    h.call("manifests.get_manifests_uri", 401, Error, who="ghost", uri=uri)
    h.call("manifests.get_manifests_uri", 403, Error, uri="s3://not-registered/x")
    readme = h.call("readmes.get_readmes_uri", 200, h.model("Readme"), uri=uri)
    assert readme.parsed.readme == dataset["readme"]
    h.call("readmes.get_readmes_uri", 404, Error, uri=unknown)
    ann = h.call("annotations.get_annotations_uri", 200, h.model("Annotation"), uri=uri)
    assert ann.parsed.annotations.additional_properties == dataset["annotations"]
    h.call("annotations.get_annotations_uri", 404, Error, uri=unknown)
    tags = h.call("tags.get_tags_uri", 200, h.model("Tag"), uri=uri)
    assert tags.parsed.tags == ["conformance"]
    h.call("tags.get_tags_uri", 404, Error, uri=unknown)
    h.call("tags.get_tags_uri", 401, h.model("JWTError"), who=None, uri=uri)


def test_me_and_users(h: Harness) -> None:
    Error, UserWP = h.model("Error"), h.model("UserWithPermissions")
    me = h.call("me.get_me", 200, UserWP)
    assert me.parsed.username == h.server.admin_username and me.parsed.is_admin is True
    h.call("me.get_me", 401, h.model("Error"), who="ghost")
    h.call("me.get_me", 422, h.model("JWTError"), who="malformed")
    summary = h.call("me.get_me_summary", 200, h.model("Summary"))
    assert summary.parsed.number_of_datasets >= 1
    users = h.call("users.get_users", 200, (list, UserWP), sort="-is_admin,+username")
    assert users.parsed[0].is_admin is True
    h.call("users.get_users", 403, Error, who="user")
    h.call("users.get_users", 404, Error, page=1000)
    name = f"conform-{uuid.uuid4().hex[:8]}"
    User = h.model("User")
    h.call("users.put_users_username", 201, None, username=name, body=User(is_admin=False))
    h.call("users.put_users_username", 200, None, username=name, body=User(is_admin=True))
    h.call("users.put_users_username", 403, Error, who="user", username=name, body=User())
    got = h.call("users.get_users_username", 200, UserWP, username=name)
    assert got.parsed.is_admin is True and got.parsed.search_permissions_on_base_uris == []
    h.call("users.get_users_username", 403, Error, who="user", username=name)
    h.call("users.get_users_username", 404, Error, username=name + "-none")
    h.call("users.get_users_username_summary", 200, h.model("Summary"), username=name)
    h.call("users.get_users_username_summary", 404, Error, username=name + "-none")
    h.call("users.delete_users_username", 403, Error, who="user", username=name)
    h.call("users.delete_users_username", 200, None, username=name)


def test_base_uris(h: Harness) -> None:
    Error = h.model("Error")
    listed = h.call("base_uris.get_base_uris", 200, (list, h.model("BaseURI")), sort="-base_uri")
    assert h.server.base_uri in [b.base_uri for b in listed.parsed]
    h.call("base_uris.get_base_uris", 403, Error, who="user")
    h.call("base_uris.get_base_uris", 404, Error, page=1000)
    got = h.call(
        "base_uris.get_base_uris_base_uri",
        200,
        h.model("BaseURIWithPermissions"),
        base_uri=h.server.base_uri,
    )
    assert h.server.admin_username in got.parsed.users_with_register_permissions
    h.call("base_uris.get_base_uris_base_uri", 404, Error, base_uri="s3://none")
    new = f"s3://conform-{uuid.uuid4().hex[:8]}"
    perms = h.model("BaseURIWithPermissions")(users_with_search_permissions=["user"])
    h.call("base_uris.put_base_uris_base_uri", 201, None, base_uri=new, body=perms)
    h.call("base_uris.put_base_uris_base_uri", 200, None, base_uri=new, body=perms)
    h.call("base_uris.put_base_uris_base_uri", 403, Error, who="user", base_uri=new, body=perms)
    h.call("base_uris.delete_base_uris_base_uri", 403, Error, who="user", base_uri=new)
    h.call("base_uris.delete_base_uris_base_uri", 200, None, base_uri=new)


def test_direct_mongo(h: Harness, dataset: dict[str, Any]) -> None:
    Query = h.model("QueryDataset")
    query = Query.from_dict({"query": {"creator_username": "conform"}})
    found = h.call("mongo.post_mongo_query", 200, (list, h.model("MongoDataset")), body=query)
    doc = found.parsed[0]
    assert doc.uri == dataset["uri"] and doc.type_ == "dataset" and doc.tags == ["conformance"]
    assert isinstance(doc.frozen_at, float)
    h.call("mongo.post_mongo_query", 401, h.model("Error"), who="ghost", body=query)
    bad = Query.from_dict({"creator_usernames": "not-a-list"})
    h.call("mongo.post_mongo_query", 422, h.model("Error"), body=bad)
    pipeline = Query.from_dict(
        {
            "creator_usernames": ["conform"],
            "aggregation": [{"$group": {"_id": "$creator_username", "n": {"$sum": 1}}}],
        }
    )
    agg = h.call(
        "mongo.post_mongo_aggregate",
        200,
        (list, h.model("PostMongoAggregateResponse200Item")),
        body=pipeline,
    )
    assert agg.parsed[0].additional_properties == {"n": 1}
    h.call("mongo.post_mongo_aggregate", 401, h.model("JWTError"), who=None, body=pipeline)


def test_dependency_graph(h: Harness) -> None:
    """Datasets registered the way the indexer does (string UUIDs) are linked by readme and annotations."""
    s = h.server
    parent = s.index_dataset(creator_username="conform-graph")
    child = s.index_dataset(readme={"derived_from": [{"uuid": parent["uuid"]}]})
    grandchild = s.index_dataset(annotations={"source_dataset_uuid": child["uuid"]})
    GraphDataset = h.model("GraphDataset")
    full = h.call("graph.get_graph_uuids_uuid", 200, (list, GraphDataset), uuid=parent["uuid"])
    assert {d.uuid for d in full.parsed} == {parent["uuid"], child["uuid"], grandchild["uuid"]}
    by_uuid = {d.uuid: d for d in full.parsed}
    assert by_uuid[child["uuid"]].derived_from == [parent["uuid"]]
    assert by_uuid[parent["uuid"]].type_ == "dataset"
    readme_only = h.model("DependencyKeys")(dependency_keys=["readme.derived_from.uuid"])
    part = h.call(
        "graph.post_graph_uuids_uuid",
        200,
        (list, GraphDataset),
        uuid=parent["uuid"],
        body=readme_only,
    )
    assert {d.uuid for d in part.parsed} == {parent["uuid"], child["uuid"]}
    nothing = h.call(
        "graph.get_graph_uuids_uuid", 200, (list, h.model("GraphNoMatch")), uuid=str(uuid.uuid4())
    )
    assert nothing.parsed[0].uuid is None and nothing.parsed[0].derived_from == []
    h.call("graph.get_graph_uuids_uuid", 401, h.model("Error"), who="ghost", uuid=parent["uuid"])
    h.call("graph.get_graph_uuids_uuid", 401, h.model("JWTError"), who=None, uuid=parent["uuid"])
    bad = h.call(
        "graph.post_graph_uuids_uuid",
        422,
        h.model("JWTError"),
        who="malformed",
        uuid=parent["uuid"],
        body=readme_only,
    )
    assert bad.parsed.msg


def test_token_generator(h: Harness) -> None:
    origin = h.server.token_generator_url.rsplit("/", 1)[0]
    s = h.server
    ok = h.call(
        "token_generator.post_token",
        200,
        h.model("TokenResponse"),
        who=None,
        base_url=origin,
        body=h.model("TokenRequest")(username=s.admin_username, password=s.admin_password),
    )
    assert ok.parsed.status == "success" and ok.parsed.token
    with h.client(ok.parsed.token) as client:
        me = importlib.import_module(f"{PKG}.api.me.get_me").sync(client=client)
    assert me.username == s.admin_username
    fail = h.call(
        "token_generator.post_token",
        200,
        h.model("TokenResponse"),
        who=None,
        base_url=origin,
        body=h.model("TokenRequest")(username=s.admin_username, password="wrong"),
    )
    assert fail.parsed.status == "fail" and not fail.parsed.token
    key = h.call("token_generator.get_public_key", 200, str, who=None, base_url=origin)
    assert key.parsed == s.public_key


def test_every_operation_was_called(h: Harness) -> None:
    """Runs last (file order): the tests above exercise all 29 operations."""
    if len(h.called) < 5:
        pytest.skip("run with the whole module")
    assert set(h.declared) - h.called == set()
