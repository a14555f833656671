"""Small result types of the Gen3 facade (where the generated shapes are awkward)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Literal

import attrs

from ..errors import ResponseFormatError, ScibindError

__all__ = [
    "DeletionResult",
    "EntityOutcome",
    "Export",
    "ExportFormat",
    "IndexUrlMatch",
    "Project",
    "SubmissionResult",
]

ExportFormat = Literal["json", "tsv", "csv"]


@attrs.frozen
class Project:
    """A project of the commons (``project_id`` is ``<program>-<code>``)."""

    project_id: str
    program: str
    code: str
    name: str | None = None


@attrs.frozen
class EntityOutcome:
    """What happened to one submitted record.

    ``index`` is the record's position in the input (0-based; for files, the data row number), ``id`` the graph
    node id sheepdog assigned or matched, ``action`` ``create``/``update``, ``messages`` the server's errors.
    """

    index: int
    submitter_id: str | None
    type: str | None
    id: str | None = None
    action: str | None = None
    messages: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def describe(self) -> str:
        """``#3 sample 'sample-1': 'x' is not one of [...]`` (for messages)."""
        what = " ".join(
            p for p in (self.type, repr(self.submitter_id) if self.submitter_id else None) if p
        )
        text = "; ".join(self.messages) or "failed"
        return f"#{self.index} {what}: {text}".replace("  ", " ")


@attrs.frozen
class SubmissionResult:
    """The outcome of a submission: every record is in ``succeeded`` or in ``failed``, in input order.

    ``error`` is set when a whole request failed (permissions, a missing project, the server gave up): the
    records not yet accepted then fail with that message. ``requests`` counts the batches sent.
    """

    succeeded: tuple[EntityOutcome, ...]
    failed: tuple[EntityOutcome, ...]
    requests: int = 0
    dry_run: bool = False
    error: ScibindError | None = attrs.field(default=None, eq=False)

    @property
    def ok(self) -> bool:
        """Every record was accepted."""
        return not self.failed and self.error is None

    def raise_for_failures(self) -> None:
        """Raise :class:`~scibind.gen3.SubmissionError` (holding this result) unless every record was accepted."""
        if not self.ok:
            from ._errors import SubmissionError

            raise SubmissionError(self)


@attrs.frozen
class Export:
    """Exported entities as sheepdog sent them: ``content`` in ``format`` (``json``, ``tsv`` or ``csv``)."""

    content: bytes
    format: ExportFormat
    filename: str | None = None

    @property
    def text(self) -> str:
        return self.content.decode("utf-8-sig")

    def json(self) -> Any:
        """The parsed JSON document (``format="json"`` only)."""
        if self.format != "json":
            raise ValueError(f"this export is {self.format}, not json")
        try:
            return json.loads(self.content)
        except ValueError as exc:
            raise ResponseFormatError(f"the JSON export is not valid JSON: {exc}") from None

    def records(self) -> list[dict[str, Any]]:
        """The entities as dicts: JSON (node exports unwrap ``{"data": [...]}``) or TSV/CSV rows by header."""
        if self.format == "json":
            doc = self.json()
            if isinstance(doc, dict) and isinstance(doc.get("data"), list):
                doc = doc["data"]
            if not isinstance(doc, list):
                raise ResponseFormatError("the JSON export is neither a list nor {'data': [...]}")
            return [dict(d) for d in doc]
        delimiter = "\t" if self.format == "tsv" else ","
        return [dict(row) for row in csv.DictReader(io.StringIO(self.text), delimiter=delimiter)]


@attrs.frozen
class DeletionResult:
    """The outcome of deleting graph entities: ``deleted`` ids, ``missing`` ids (not found: already deleted,
    or never there), ``failed`` entities with sheepdog's messages (``index`` is the position among the ids
    asked for, -1 for a dependent added by ``with_dependents``). ``error`` is set when a whole request failed
    (no permission, unknown project); ``requests`` counts the deletion requests sent.
    """

    deleted: tuple[str, ...]
    missing: tuple[str, ...] = ()
    failed: tuple[EntityOutcome, ...] = ()
    requests: int = 0
    error: ScibindError | None = attrs.field(default=None, eq=False)

    @property
    def ok(self) -> bool:
        """Nothing failed (missing ids are not failures)."""
        return not self.failed and self.error is None

    def raise_for_failures(self) -> None:
        """Raise :class:`~scibind.gen3.DeletionError` (holding this result) unless nothing failed."""
        if not self.ok:
            from ._errors import DeletionError

            raise DeletionError(self)

    def __add__(self, other: DeletionResult) -> DeletionResult:
        return DeletionResult(
            self.deleted + other.deleted,
            self.missing + other.missing,
            self.failed + other.failed,
            self.requests + other.requests,
            self.error or other.error,
        )


@attrs.frozen
class IndexUrlMatch:
    """A record found by a URL query: its GUID and storage URLs."""

    did: str
    urls: tuple[str, ...]
