"""Submission planning for sheepdog, without I/O: records from files or objects, batches, and what a batch's
answer means for each record.

Sheepdog runs each request as one transaction: if any entity is invalid, nothing is written and the answer
(400) marks each entity ``valid`` or not. The facade then reports the invalid records as failed (with the
server's messages) and sends the valid ones again, without them (what the Gen3 SDK's ``submit_file`` does).
A batch refused as a whole with only transactional errors (for example two records with the same key) is
retried one record at a time, so each record gets its own verdict; a single record refused that way fails
with the transactional messages. A batch answered 413 (too large) is split in halves.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from ..errors import ConfigurationError
from ._models import EntityOutcome

__all__ = ["BatchVerdict", "Item", "Records", "judge", "read_records", "records_from_objects"]


@attrs.frozen
class Item:
    """One record to submit: its input position, a JSON document or a TSV row, and its key for reports."""

    index: int
    payload: Mapping[str, Any] | str
    submitter_id: str | None
    type: str | None


@attrs.frozen
class Records:
    """Records of one submission; ``tsv_header`` is set when the payloads are TSV rows."""

    items: tuple[Item, ...]
    tsv_header: str | None = None

    def body(self, batch: Sequence[Item]) -> tuple[str, Any]:
        """(``"json"``, list of documents) or (``"tsv"``, TSV text) for a batch."""
        if self.tsv_header is None:
            return "json", [dict(i.payload) for i in batch]  # type: ignore[arg-type]
        return "tsv", self.tsv_header + "\n" + "\n".join(str(i.payload) for i in batch) + "\n"


def _check_unique(items: Sequence[Item]) -> None:
    seen: dict[tuple[str | None, str], int] = {}
    duplicates = []
    for item in items:
        if not item.submitter_id:
            continue
        key = (item.type, item.submitter_id)
        if key in seen:
            duplicates.append(f"{item.type} {item.submitter_id!r} (#{seen[key]} and #{item.index})")
        else:
            seen[key] = item.index
    if duplicates:
        raise ConfigurationError(
            "duplicate submitter_id within a node type: " + ", ".join(duplicates[:5])
        )


def records_from_objects(docs: Iterable[Mapping[str, Any]], *, offset: int = 0) -> Records:
    """Records from JSON-like documents (each needs a ``type``)."""
    items = []
    for index, doc in enumerate(docs, offset):
        if not isinstance(doc, Mapping):
            raise ConfigurationError(f"record #{index} is a {type(doc).__name__}, not a mapping")
        sid, kind = doc.get("submitter_id"), doc.get("type")
        items.append(
            Item(index, doc, str(sid) if sid is not None else None, str(kind) if kind else None)
        )
    _check_unique(items)
    return Records(tuple(items))


def _tsv_records(header: list[str], rows: Iterable[list[str]], offset: int) -> Records:
    columns = [c.strip().lstrip("*") for c in header]
    if "type" not in columns:
        raise ConfigurationError("the file has no 'type' column")
    sid_at = columns.index("submitter_id") if "submitter_id" in columns else None
    type_at = columns.index("type")
    items = []
    for index, row in enumerate(rows):
        if index < offset:
            continue
        for cell in row:
            if "\t" in cell or "\n" in cell or "\r" in cell:
                raise ConfigurationError(f"row #{index} has a value with a tab or line break")
        sid = row[sid_at] if sid_at is not None and sid_at < len(row) else None
        kind = row[type_at] if type_at < len(row) else None
        items.append(Item(index, "\t".join(row), sid or None, kind or None))
    _check_unique(items)
    return Records(tuple(items), "\t".join(columns))


def _cell_text(value: Any) -> str:
    """A spreadsheet cell as sheepdog's TSV expects it: whole numbers without ``.0``, dates in ISO 8601."""
    import datetime

    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime.datetime):
        return value.date().isoformat() if value.time() == datetime.time() else value.isoformat()
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return str(value).strip()


def _xlsx_rows(path: Path) -> list[list[str]]:
    """The first worksheet's rows as text (as the SDK reads workbooks); empty rows dropped."""
    try:
        import openpyxl
    except ImportError:
        raise ConfigurationError(
            f"reading {path.name} needs openpyxl: pip install 'scibind[xlsx]' (or save it as TSV)"
        ) from None
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # zip, XML and format errors of a damaged workbook
        raise ConfigurationError(f"cannot read {path.name}: {type(exc).__name__}: {exc}") from None
    try:
        sheet = book.worksheets[0] if book.worksheets else None
        if sheet is None:
            return []
        rows = [[_cell_text(v) for v in row] for row in sheet.iter_rows(values_only=True)]
    finally:
        book.close()
    rows = [r for r in rows if any(c for c in r)]
    if rows:  # trailing columns without a header are formatting, not data
        width = max((i + 1 for i, c in enumerate(rows[0]) if c), default=0)
        rows = [r[:width] + [""] * (width - len(r)) for r in rows]
    return rows


def read_records(path: str | os.PathLike[str], *, row_offset: int = 0) -> Records:
    """Records from a JSON (list, one object, or an export's ``{"data": [...]}``), TSV/TXT, CSV or XLSX
    (first worksheet; needs the ``xlsx`` extra) file."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        if not p.is_file():
            raise ConfigurationError(f"cannot read {p}: no such file")
        rows = _xlsx_rows(p)
        if not rows:
            raise ConfigurationError(f"{p} is empty")
        return _tsv_records(rows[0], rows[1:], row_offset)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigurationError(f"cannot read {p}: {exc}") from None
    if suffix == ".json":
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise ConfigurationError(f"{p} is not valid JSON: {exc}") from None
        if isinstance(doc, Mapping) and isinstance(doc.get("data"), list):
            doc = doc["data"]
        docs = doc if isinstance(doc, list) else [doc]
        return records_from_objects(docs[row_offset:], offset=row_offset)
    if suffix in (".tsv", ".txt"):
        lines = [line.rstrip("\r") for line in text.split("\n")]
        lines = [line for line in lines if line.strip()]
        if not lines:
            raise ConfigurationError(f"{p} is empty")
        return _tsv_records(lines[0].split("\t"), (ln.split("\t") for ln in lines[1:]), row_offset)
    if suffix == ".csv":
        rows = [r for r in csv.reader(io.StringIO(text)) if any(c.strip() for c in r)]
        if not rows:
            raise ConfigurationError(f"{p} is empty")
        return _tsv_records(rows[0], rows[1:], row_offset)
    raise ConfigurationError(f"cannot submit {p.name}: use a .json, .tsv, .txt, .csv or .xlsx file")


# -- judging one batch's answer ---------------------------------------------------------------------------------
@attrs.frozen
class BatchVerdict:
    """What one answer means: records accepted, records failed, and batches to send again."""

    succeeded: list[EntityOutcome]
    failed: list[EntityOutcome]
    again: list[list[Item]]


def _messages(entries: Any) -> tuple[str, ...]:
    out = []
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, Mapping):
            text = str(entry.get("message") or entry)
            keys = entry.get("keys")
            if isinstance(keys, list) and keys:
                text += f" [{', '.join(map(str, keys))}]"
            out.append(text)
        else:
            out.append(str(entry))
    return tuple(out)


def _outcome(
    item: Item, entity: Mapping[str, Any] | None, extra: Sequence[str] = ()
) -> EntityOutcome:
    entity = entity or {}
    sid = item.submitter_id
    keys = entity.get("unique_keys")
    if sid is None and isinstance(keys, list) and keys and isinstance(keys[0], Mapping):
        sid = keys[0].get("submitter_id")
    return EntityOutcome(
        index=item.index,
        submitter_id=sid,
        type=entity.get("type") or item.type,
        id=entity.get("id"),
        action=entity.get("action"),
        messages=(*_messages(entity.get("errors")), *extra),
        warnings=_messages(entity.get("warnings")),
    )


def _transactional(body: Mapping[str, Any]) -> tuple[str, ...]:
    found = _messages(body.get("transactional_errors"))
    return found or ((str(body["message"]),) if body.get("message") else ("transaction failed",))


def is_submission_body(body: Any) -> bool:
    """Whether an answer is sheepdog's per-entity transaction report."""
    return isinstance(body, Mapping) and isinstance(body.get("entities"), list)


def judge(batch: Sequence[Item], status: int, body: Mapping[str, Any]) -> BatchVerdict:
    """The verdict on ``batch`` from sheepdog's transaction report (``body``) with HTTP ``status``."""
    entities = [e if isinstance(e, Mapping) else {} for e in body.get("entities") or []]
    aligned = len(entities) == len(batch)
    if status < 300 and body.get("success", True):
        return BatchVerdict(
            [_outcome(item, entities[i] if aligned else None) for i, item in enumerate(batch)],
            [],
            [],
        )
    if aligned:
        invalid = [(item, e) for item, e in zip(batch, entities, strict=True) if not e.get("valid")]
        valid = [item for item, e in zip(batch, entities, strict=True) if e.get("valid")]
        if invalid:
            failed = [_outcome(item, e) for item, e in invalid]
            return BatchVerdict([], failed, [valid] if valid else [])
    if len(batch) > 1:
        return BatchVerdict([], [], [[item] for item in batch])
    entity = entities[0] if aligned else None
    return BatchVerdict([], [_outcome(batch[0], entity, _transactional(body))], [])
