"""DServer.graph / AsyncDServer.graph against the real dserver with the dependency-graph plugin.

The plugin links datasets by string UUIDs, so the family below is registered the way dserver's indexer does
(``DServerInstance.index_dataset``); a dataset registered with ``PUT /uris`` is not found from its UUID.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from scibind import errors
from scibind.config import ClientConfig, RetryPolicy
from scibind.dserver import DEFAULT_DEPENDENCY_KEYS, AsyncDServer, DServer

pytestmark = pytest.mark.integration

NO_RETRY = ClientConfig(retry=RetryPolicy(max_attempts=1))


@pytest.fixture(scope="module")
def family(dserver_server: Any) -> dict[str, dict[str, Any]]:
    """root <- child (readme) <- grandchild (annotation); child <- sibling (readme); a loner; an orphan whose
    parent is not registered."""
    s = dserver_server
    root = s.index_dataset(name="root")
    child = s.index_dataset(name="child", readme={"derived_from": [{"uuid": root["uuid"]}]})
    grandchild = s.index_dataset(
        name="grandchild", annotations={"source_dataset_uuid": child["uuid"]}
    )
    sibling = s.index_dataset(
        name="sibling",
        readme={"description": "two parents", "derived_from": [{"uuid": root["uuid"]}]},
    )
    loner = s.index_dataset(name="loner")
    ghost_parent = str(uuid.uuid4())
    orphan = s.index_dataset(name="orphan", readme={"derived_from": [{"uuid": ghost_parent}]})
    put = s.register_dataset(name="put", readme={"derived_from": [{"uuid": root["uuid"]}]})
    return {
        "root": root,
        "child": child,
        "grandchild": grandchild,
        "sibling": sibling,
        "loner": loner,
        "orphan": orphan,
        "ghost_parent": {"uuid": ghost_parent},
        "put": put,
    }


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def ds(kind: str, dserver_server: Any) -> AsyncIterator[Any]:
    cls = DServer if kind == "sync" else AsyncDServer
    client = cls(dserver_server.url, token=dserver_server.token(), config=NO_RETRY)
    yield client
    if kind == "sync":
        client.close()
    else:
        await client.aclose()


async def call(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def _uuids(nodes: list[Any]) -> set[str]:
    return {n.uuid for n in nodes}


async def test_graph_follows_both_directions_and_both_default_keys(
    ds: Any, family: dict[str, Any]
) -> None:
    f = family
    expected = {f[k]["uuid"] for k in ("root", "child", "grandchild", "sibling")}
    for start in ("root", "grandchild", "sibling"):
        nodes = await call(ds.graph(f[start]["uuid"]))
        assert _uuids(nodes) == expected, start
    nodes = await call(ds.graph(uuid.UUID(f["child"]["uuid"])))  # a UUID object works too
    assert [n.uuid for n in nodes] == sorted(expected)  # sorted by UUID
    by_name = {n.name: n for n in nodes}
    assert by_name["child"].derived_from == [f["root"]["uuid"]]
    assert by_name["grandchild"].derived_from == [f["child"]["uuid"]]
    assert by_name["root"].derived_from == []
    assert by_name["root"].uri == f["root"]["uri"] and by_name["root"].type_ == "dataset"
    assert isinstance(by_name["root"].created_at, float)


async def test_graph_with_dependency_keys(ds: Any, family: dict[str, Any]) -> None:
    f = family
    readme_only = await call(ds.graph(f["root"]["uuid"], ["readme.derived_from.uuid"]))
    assert _uuids(readme_only) == {f[k]["uuid"] for k in ("root", "child", "sibling")}
    annotations_only = await call(
        ds.graph(f["grandchild"]["uuid"], dependency_keys="annotations.source_dataset_uuid")
    )
    assert _uuids(annotations_only) == {f["child"]["uuid"], f["grandchild"]["uuid"]}
    both = await call(ds.graph(f["root"]["uuid"], list(reversed(DEFAULT_DEPENDENCY_KEYS))))
    assert len(both) == 4


async def test_graph_of_a_loner_an_orphan_and_an_unknown_uuid(
    ds: Any, family: dict[str, Any]
) -> None:
    f = family
    assert _uuids(await call(ds.graph(f["loner"]["uuid"]))) == {f["loner"]["uuid"]}
    orphan = await call(ds.graph(f["orphan"]["uuid"]))
    assert _uuids(orphan) == {f["orphan"]["uuid"]}
    assert orphan[0].derived_from == [
        f["ghost_parent"]["uuid"]
    ]  # names a dataset that is not there
    # the plugin answers [{"uuid": null, "derived_from": []}] for nothing found: an empty graph
    assert await call(ds.graph(uuid.uuid4())) == []
    assert await call(ds.graph(f["ghost_parent"]["uuid"])) == []


async def test_put_registered_datasets_are_not_linked(ds: Any, family: dict[str, Any]) -> None:
    """PUT /uris stores the UUID as a UUID; the plugin looks it up (and links it) as a string."""
    f = family
    assert await call(ds.graph(f["put"]["uuid"])) == []
    assert f["put"]["uuid"] not in _uuids(await call(ds.graph(f["root"]["uuid"])))


async def test_bad_graph_input_is_caught_before_sending(ds: Any) -> None:
    with pytest.raises(errors.ConfigurationError, match="UUID"):
        await call(ds.graph("not-a-uuid"))
    start = str(uuid.uuid4())
    for keys in ([], ["readme.$where"], [""]):
        with pytest.raises(errors.ConfigurationError, match="dependency_keys"):
            await call(ds.graph(start, keys))


async def test_graph_needs_a_registered_user(kind: str, dserver_server: Any) -> None:
    cls = DServer if kind == "sync" else AsyncDServer
    client = cls(dserver_server.url, token=dserver_server.token("nobody"), config=NO_RETRY)
    with pytest.raises(errors.AuthenticationError):
        await call(client.graph(uuid.uuid4()))
    await call(client.aclose() if kind == "async" else client.close())


async def test_a_graph_larger_than_a_page(ds: Any, kind: str, dserver_server: Any) -> None:
    """105 children of one root: two pages of 100, fetched and joined."""
    s = dserver_server
    root = s.index_dataset(name=f"hub-{kind}")
    children = [
        s.dataset_body(readme={"derived_from": [{"uuid": root["uuid"]}]}) for _ in range(105)
    ]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(s.index_dataset, children))
    nodes = await call(ds.graph(root["uuid"]))
    assert len(nodes) == 106
    assert _uuids(nodes) == {root["uuid"], *(c["uuid"] for c in children)}
    assert [n.uuid for n in nodes] == sorted(_uuids(nodes))
