"""The generated DANDI metadata TypedDicts: import cost, provenance and structural fit to real metadata."""

from __future__ import annotations

import json
import subprocess
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal, NotRequired, Required, Union, get_args, get_origin

import pytest
import scibind_generated.dandi_metadata as dm
from scibind_generated.dandi_metadata import _source


def _check(value: Any, tp: Any, where: str = "$") -> list[str]:
    """Structural check of JSON ``value`` against a (TypedDict-based) annotation; returns problems."""
    if tp is Any:
        return []
    origin = get_origin(tp)
    if origin in (NotRequired, Required):
        return _check(value, get_args(tp)[0], where)
    if origin in (Union, types.UnionType):
        branches = [_check(value, arm, where) for arm in get_args(tp)]
        return [] if any(not b for b in branches) else min(branches, key=len)
    if origin is Literal:
        return [] if value in get_args(tp) else [f"{where}: {value!r} not in {get_args(tp)}"]
    if origin is list:
        if not isinstance(value, list):
            return [f"{where}: expected a list"]
        return [
            p
            for i, item in enumerate(value)
            for p in _check(item, get_args(tp)[0], f"{where}[{i}]")
        ]
    if origin is dict or tp is dict:
        return [] if isinstance(value, dict) else [f"{where}: expected an object"]
    if typing.is_typeddict(tp):
        if not isinstance(value, dict):
            return [f"{where}: expected {tp.__name__}"]
        # Requiredness from the resolved hints: the generated module uses postponed annotations,
        # so ``__required_keys__`` cannot see ``NotRequired`` at class creation on Python 3.11.
        hints = typing.get_type_hints(tp, include_extras=True)
        required = [key for key, hint in hints.items() if get_origin(hint) is not NotRequired]
        problems = [
            f"{where}.{key}: not a field of {tp.__name__}" for key in value if key not in hints
        ]
        problems += [f"{where}.{key}: required" for key in required if key not in value]
        for key, item in value.items():
            if key in hints:
                problems += _check(item, hints[key], f"{where}.{key}")
        return problems
    if tp is type(None):
        return [] if value is None else [f"{where}: expected null"]
    if tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return [] if ok else [f"{where}: expected a number"]
    if tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return [] if ok else [f"{where}: expected an integer"]
    if isinstance(tp, type):
        return [] if isinstance(value, tp) else [f"{where}: expected {tp.__name__}"]
    return []


def _example(name: str) -> dict[str, Any]:
    """A dandischema test-data document, validated and normalised by dandischema itself."""
    pytest.importorskip("dandischema")
    import dandischema
    from dandischema import models

    path = Path(dandischema.__file__).parent / "tests" / "data" / "metadata" / name
    if not path.exists():
        pytest.skip(f"dandischema does not ship {name}")
    raw = json.loads(path.read_text())
    model = models.Asset if name.startswith("asset") else models.Dandiset
    return model.model_validate(raw).model_dump(mode="json", by_alias=True, exclude_none=True)


def test_import_needs_neither_dandischema_nor_pydantic() -> None:
    code = (
        "import sys, scibind_generated.dandi_metadata as m;"
        "assert m.Dandiset and m.Asset and m.PublishedDandiset and m.PublishedAsset;"
        "print(sorted(n for n in ('dandischema', 'pydantic', 'pydantic_core') if n in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_top_level_models_are_typeddicts() -> None:
    assert set(dm.__all__) == {
        "Dandiset",
        "Asset",
        "PublishedDandiset",
        "PublishedAsset",
        "DandiMetadata",
    }
    for name in ("Dandiset", "Asset", "PublishedDandiset", "PublishedAsset"):
        assert typing.is_typeddict(getattr(dm, name)), name
    assert {"identifier", "name", "contributor", "license"} <= set(dm.Dandiset.__annotations__)
    assert {"path", "digest", "contentSize", "encodingFormat"} <= set(dm.Asset.__annotations__)


def test_source_records_pinned_dandischema() -> None:
    from importlib.metadata import version

    assert version("dandischema") == _source.DANDISCHEMA_VERSION
    assert len(_source.SCHEMA_SHA256) == 64


def test_generated_output_is_current() -> None:
    """The committed models match what the pinned dandischema produces now."""
    pytest.importorskip("dandischema")
    from codegen.metadata_models import combined_schema, schema_sha256

    assert schema_sha256(combined_schema()) == _source.SCHEMA_SHA256


@pytest.mark.parametrize(
    ("name", "model"),
    [("DANDI/meta_000004.json", "Dandiset"), ("asset_001.json", "Asset")],
)
def test_real_metadata_fits_the_typeddicts(name: str, model: str) -> None:
    document = _example(name)
    assert _check(document, getattr(dm, model)) == []


def test_structural_check_can_fail() -> None:
    document = _example("asset_001.json")
    document["notAField"] = 1
    del document["path"]
    problems = _check(document, dm.Asset)
    assert "$.notAField: not a field of Asset" in problems
    assert "$.path: required" in problems


# -- the JSON Schemas shipped as package data ---------------------------------------------------------------
SCHEMAS = Path(dm.__file__).parent / "schemas"


@pytest.mark.parametrize("name", ["Dandiset", "Asset", "PublishedDandiset", "PublishedAsset"])
def test_schemas_are_package_data(name: str) -> None:
    schema = json.loads((SCHEMAS / f"{name}.json").read_text())
    assert schema["type"] == "object" and schema["required"]
    assert schema["properties"]["schemaVersion"]["default"] == _source.SCHEMA_VERSION
    assert set(schema["required"]) <= set(typing.get_type_hints(getattr(dm, name)))


def test_schemas_are_what_dandischema_exports() -> None:
    pytest.importorskip("dandischema")
    from codegen.metadata_models import model_schemas, schema_json

    for name, schema in model_schemas().items():
        assert (SCHEMAS / f"{name}.json").read_text() == schema_json(schema), name


def test_check_covers_the_schemas(tmp_path: Path) -> None:
    pytest.importorskip("dandischema")
    import shutil

    from codegen.metadata_models import check_package

    copy = tmp_path / "dandi_metadata"
    shutil.copytree(SCHEMAS.parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert check_package(copy).ok
    edited = json.loads((copy / "schemas" / "Asset.json").read_text())
    edited["required"].remove("path")
    (copy / "schemas" / "Asset.json").write_text(json.dumps(edited))
    (copy / "schemas" / "Old.json").write_text("{}")
    (copy / "schemas" / "Dandiset.json").unlink()
    result = check_package(copy)
    prefix = f"{tmp_path.name}/dandi_metadata/schemas"
    assert result.changed == [f"{prefix}/Asset.json"]
    assert result.missing == [f"{prefix}/Dandiset.json"]
    assert result.extra == [f"{prefix}/Old.json"]


def test_fake_archive_serves_the_schemas_without_dandischema() -> None:
    code = (
        "import sys, json, httpx; sys.modules['dandischema'] = None\n"
        "from scibind.testing.dandi import FakeDandiArchive\n"
        "fake = FakeDandiArchive()\n"
        "r = fake.handle(httpx.Request('GET', fake.url('/schemas/?model=PublishedDandiset')))\n"
        "print(r.status_code, json.loads(r.content)['title'], 'pydantic' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["200", "Dandiset", "False"]
