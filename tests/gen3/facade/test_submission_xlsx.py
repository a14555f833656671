"""``submit_file`` with an Excel workbook (the SDK reads the first worksheet): cells become sheepdog's TSV."""

from __future__ import annotations

import datetime
import sys
from pathlib import Path
from typing import Any

import pytest
from scibind import errors
from scibind.gen3._submission import read_records
from scibind.testing.gen3 import FakeGen3Commons

from .conftest import PROJECT, PROJECT_ID, call

openpyxl = pytest.importorskip("openpyxl")


def workbook(path: Path, rows: list[list[Any]], *, extra_sheet: bool = True) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    if extra_sheet:  # only the first worksheet is read
        book.create_sheet("notes").append(["type", "submitter_id"])
    book.save(path)
    return path


async def test_submit_an_excel_workbook(g3: Any, fake: FakeGen3Commons, tmp_path: Path) -> None:
    path = workbook(
        tmp_path / "subjects.xlsx",
        [
            ["*type", "*submitter_id", "projects.code", "sex", "age_at_enrollment"],
            ["subject", "x0", PROJECT, "Male", 40],
            [None, None, None, None, None],  # an empty row is skipped
            ["subject", "x1", PROJECT, "Female", 41.0],  # a whole float is written without ".0"
            ["subject", "x2", PROJECT, "Alien", 42],  # invalid: reported, the rest goes on
            ["subject", "x3", PROJECT, None, 43],  # an empty cell stays empty
        ],
    )
    result = await call(g3.submit_file(PROJECT_ID, path, chunk_size=2, row_offset=1))
    assert [o.submitter_id for o in result.succeeded] == ["x1", "x3"]
    assert [(o.index, o.submitter_id) for o in result.failed] == [(2, "x2")]
    sent = [r for r in fake.requests if r.url.path == f"/api/v0/submission/DEV/{PROJECT}"]
    assert sent[0].headers["content-type"] == "text/tab-separated-values"
    lines = sent[0].content.decode().splitlines()
    assert lines[0] == "type\tsubmitter_id\tprojects.code\tsex\tage_at_enrollment"
    assert lines[1] == f"subject\tx1\t{PROJECT}\tFemale\t41"
    ages = {n.props["submitter_id"]: n.props.get("age_at_enrollment") for n in fake.graph.nodes_of("subject")}  # fmt: skip
    assert ages == {"x1": 41, "x3": 43}


def test_cell_values_become_text(tmp_path: Path) -> None:
    path = workbook(
        tmp_path / "cells.xlsx",
        [
            ["type", "submitter_id", "when", "flag", "ratio", "", None],
            ["subject", "c1", datetime.datetime(2024, 5, 6), True, 0.25, None, None],
            ["subject", "c2", datetime.datetime(2024, 5, 6, 7, 8, 9), False, 3.0],
        ],
        extra_sheet=False,
    )
    records = read_records(path)
    assert records.tsv_header == "type\tsubmitter_id\twhen\tflag\tratio"
    assert [i.payload for i in records.items] == [
        "subject\tc1\t2024-05-06\ttrue\t0.25",
        "subject\tc2\t2024-05-06T07:08:09\tfalse\t3",
    ]


def test_excel_problems_are_clear(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "broken.xlsx").write_bytes(b"PK not really a workbook")
    with pytest.raises(errors.ConfigurationError, match=r"cannot read broken\.xlsx"):
        read_records(tmp_path / "broken.xlsx")
    with pytest.raises(errors.ConfigurationError, match="empty"):
        read_records(workbook(tmp_path / "empty.xlsx", [], extra_sheet=False))
    with pytest.raises(errors.ConfigurationError, match="no 'type' column"):
        read_records(workbook(tmp_path / "notype.xlsx", [["submitter_id"], ["a"]]))
    good = workbook(tmp_path / "good.xlsx", [["type", "submitter_id"], ["subject", "a"]])
    monkeypatch.setitem(sys.modules, "openpyxl", None)  # the extra is not installed
    with pytest.raises(errors.ConfigurationError, match=r"scibind\[xlsx\]"):
        read_records(good)
