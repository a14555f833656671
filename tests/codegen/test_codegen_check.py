"""`check`: a hand edit, a missing or extra file, or a stale lock is reported."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from codegen import services
from codegen.check import check, report_text
from codegen.generate import generate_all
from codegen.lock import lock_path


@pytest.fixture
def generated(
    write_spec: Callable[..., Path], pets_spec: Callable[..., dict[str, Any]], tmp_path: Path
) -> tuple[Path, Path]:
    specs = tmp_path / "specs"
    write_spec(pets_spec(), service="pets", root=specs)
    out = tmp_path / "generated" / "scibind_generated"
    reports, failures = generate_all(services.discover(specs), out, specs_dir=specs)
    assert not failures and reports
    return specs, out


def test_fresh_output_passes(generated: tuple[Path, Path]) -> None:
    specs, out = generated
    result = check(output_root=out, specs_dir=specs)
    assert result.ok, report_text(result)
    assert report_text(result) == "generated/ is up to date"


def test_hand_edit_is_detected(generated: tuple[Path, Path]) -> None:
    specs, out = generated
    edited = out / "pets" / "api" / "pets" / "list_pets.py"
    edited.write_text(edited.read_text() + "# tweak\n")
    (out / "pets" / "models" / "store.py").unlink()
    (out / "pets" / "api" / "extra.py").write_text("x = 1\n")
    result = check(output_root=out, specs_dir=specs)
    assert not result.ok
    assert result.changed == ["scibind_generated/pets/api/pets/list_pets.py"]
    assert result.missing == ["scibind_generated/pets/models/store.py"]
    assert result.extra == ["scibind_generated/pets/api/extra.py"]
    text = report_text(result)
    assert "list_pets.py" in text and "-# tweak" in text


def test_stale_lock_and_spec_change_are_detected(generated: tuple[Path, Path]) -> None:
    specs, out = generated
    lock = json.loads(lock_path(out).read_text())
    lock["services"]["pets"]["spec_sha256"] = "0" * 64
    lock["services"]["gone"] = {}
    lock_path(out).write_text(json.dumps(lock))
    result = check(output_root=out, specs_dir=specs)
    assert any("pets: spec_sha256" in line for line in result.lock)
    assert any(line.startswith("gone:") for line in result.lock)
    assert result.changed == []


def test_spec_change_without_regeneration_is_detected(generated: tuple[Path, Path]) -> None:
    specs, out = generated
    spec = specs / "pets" / "openapi.json"
    doc = json.loads(spec.read_text())
    doc["paths"]["/pets"]["get"]["summary"] = "List all pets"
    spec.write_text(json.dumps(doc))
    result = check(output_root=out, specs_dir=specs)
    assert "scibind_generated/pets/api/pets/list_pets.py" in result.changed
    assert any("spec_sha256" in line for line in result.lock)
