"""The launcher's mongomock patches, in this process, installed only for each test (``monkeypatch``).

Views are what the dependency-graph plugin needs (``db.command("create", name, viewOn=..., pipeline=...)``,
read by ``$graphLookup``); the ``$unwind`` replacement must give exactly mongomock's results.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator
from typing import Any

import pytest
from scibind.testing.dserver_server import require_for_tests

require_for_tests(["mongomock", "pymongo"])

import mongomock  # noqa: E402
from scibind.testing._dserver import mongomock_patches as mp  # noqa: E402

_ORIGINAL_UNWIND = mongomock.aggregate._PIPELINE_HANDLERS["$unwind"]


@pytest.fixture
def db(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for target, attribute, value in mp.mongomock_patches():
        monkeypatch.setattr(target, attribute, value)
    for stage, handler in mp.PIPELINE_STAGES.items():
        monkeypatch.setitem(mongomock.aggregate._PIPELINE_HANDLERS, stage, handler)
    client = mongomock.MongoClient()
    yield client["patches"]
    client.close()


ADJACENCY = [{"$project": {"_id": "$uuid", "uuid": 1, "parents": 1}}]


def _seed(db: Any) -> None:
    db["datasets"].insert_many(
        [
            {"uuid": "a", "parents": []},
            {"uuid": "b", "parents": ["a"]},
            {"uuid": "c", "parents": ["b"]},
            {"uuid": "x", "parents": []},
        ]
    )


def test_a_view_runs_its_pipeline_when_read(db: Any) -> None:
    _seed(db)
    assert db.command("create", "adjacency", viewOn="datasets", pipeline=ADJACENCY) == {"ok": 1.0}
    assert "adjacency" in db.list_collection_names()
    assert db["adjacency"].find_one({"uuid": "b"}) == {"_id": "b", "uuid": "b", "parents": ["a"]}
    db["datasets"].insert_one(
        {"uuid": "d", "parents": ["c"]}
    )  # not materialised: sees new documents
    assert [d["uuid"] for d in db["adjacency"].find({"parents": "c"})] == ["d"]
    assert db["adjacency"].count_documents({}) == 5


def test_graph_lookup_through_a_view(db: Any) -> None:
    _seed(db)
    db.command({"create": "adjacency", "viewOn": "datasets", "pipeline": ADJACENCY})
    pipeline = [
        {"$match": {"uuid": "c"}},
        {
            "$graphLookup": {
                "from": "adjacency",
                "startWith": "$uuid",
                "connectFromField": "parents",
                "connectToField": "uuid",
                "as": "ancestry",
            }
        },
    ]
    [doc] = list(db["datasets"].aggregate(pipeline))
    assert sorted(a["uuid"] for a in doc["ancestry"]) == ["a", "b", "c"]


def test_a_view_is_read_only_and_forgotten_when_dropped(db: Any) -> None:
    _seed(db)
    db.command("create", "adjacency", viewOn="datasets", pipeline=ADJACENCY)
    with pytest.raises(mongomock.OperationFailure, match="is a view"):
        db["adjacency"].insert_one({"uuid": "z"})
    with pytest.raises(mongomock.OperationFailure, match="is a view"):
        db["adjacency"].delete_many({})
    with pytest.raises(mongomock.CollectionInvalid):
        db.command("create", "adjacency", viewOn="datasets", pipeline=ADJACENCY)
    db["adjacency"].drop()
    assert "adjacency" not in db.list_collection_names()
    db["adjacency"].insert_one({"uuid": "plain"})  # the name is an ordinary collection again
    assert [d["uuid"] for d in db["adjacency"].find()] == ["plain"]


def test_other_commands_are_still_mongomock_s(db: Any) -> None:
    assert db.command("ping") == {"ok": 1.0}
    with pytest.raises(NotImplementedError):
        db.command("dbStats")


def _random_doc(rng: random.Random, i: int) -> dict[str, Any]:
    shapes: list[Any] = [
        None,
        [],
        [rng.randint(0, 9) for _ in range(rng.randint(1, 4))],
        [{"uuid": str(rng.random()), "n": [1, 2]} for _ in range(rng.randint(1, 3))],
        {"uuid": "scalar-sub-document"},
        "scalar",
    ]
    doc: dict[str, Any] = {"_id": i, "name": f"d{i}", "meta": {"deep": {"list": [1, {"x": 2}]}}}
    choice = rng.choice([*shapes, "missing"])
    if choice != "missing":
        doc["readme"] = {"derived_from": copy.deepcopy(choice), "other": [i]}
    doc["top"] = copy.deepcopy(rng.choice(shapes))
    return doc


@pytest.mark.parametrize(
    "options",
    [
        "$top",
        "$readme.derived_from",
        {"path": "$readme.derived_from", "preserveNullAndEmptyArrays": True},
        {"path": "$top", "preserveNullAndEmptyArrays": True},
        {"path": "$readme.derived_from", "includeArrayIndex": "i"},
        "$meta.deep.list",
    ],
)
def test_unwind_gives_mongomock_s_results(options: Any) -> None:
    rng = random.Random(7)
    docs = [_random_doc(rng, i) for i in range(200)]
    expected = _ORIGINAL_UNWIND(copy.deepcopy(docs), None, options)
    got = mp._handle_unwind_stage(copy.deepcopy(docs), None, options)
    assert got == expected
    assert [list(d) for d in got] == [list(d) for d in expected]  # key order too
    if got:  # outputs share nothing with each other
        got[0].setdefault("meta", {}).setdefault("deep", {})["mutated"] = True
        assert all("mutated" not in d.get("meta", {}).get("deep", {}) for d in got[1:])
