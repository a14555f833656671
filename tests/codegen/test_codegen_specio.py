"""Reading specs: YAML quirks become what OpenAPI means."""

from __future__ import annotations

from pathlib import Path

import pytest

from codegen.specio import SpecError, dump_json, load_document, parse_document


def test_yaml_integer_response_codes_become_strings() -> None:
    doc = parse_document(
        "openapi: 3.0.0\npaths:\n  /a:\n    get:\n      responses:\n        200: {description: ok}\n"
    )
    assert list(doc["paths"]["/a"]["get"]["responses"]) == ["200"]


def test_yaml_dates_and_yes_no_stay_strings() -> None:
    doc = parse_document(
        "info: {version: 2024-01-31}\nenum: [yes, no, on, off]\nflag: true\nnum: 1.5\nnull_: null\n"
    )
    assert doc["info"]["version"] == "2024-01-31"
    assert doc["enum"] == ["yes", "no", "on", "off"]
    assert doc["flag"] is True and doc["num"] == 1.5 and doc["null_"] is None


def test_keys_are_the_text_written() -> None:
    doc = parse_document("a:\n  1.0: x\n  true: y\n  2024-01-01: z\n")
    assert list(doc["a"]) == ["1.0", "true", "2024-01-01"]


def test_json_and_yaml_files(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('{"openapi": "3.1.0", "paths": {}}')
    (tmp_path / "b.yaml").write_text("openapi: 3.1.0\npaths: {}\n")
    assert load_document(tmp_path / "a.json") == load_document(tmp_path / "b.yaml")


@pytest.mark.parametrize("text", ["- a\n- b\n", "a: [\n", ""])
def test_bad_documents_raise_spec_error(text: str) -> None:
    with pytest.raises(SpecError):
        parse_document(text)


def test_dump_json_is_stable() -> None:
    doc = {"b": 1, "a": ["é"]}
    assert dump_json(doc) == dump_json(parse_document(dump_json(doc)))
    assert dump_json(doc).endswith("\n") and "é" in dump_json(doc)
