"""The facade's own small, immutable, picklable objects: dandisets, assets and Zarr entries.

They hold data only (no client): every call that talks to the archive is a method of the client, which
accepts these objects or plain identifiers. A :class:`Dandiset` may be *lazy* (identifier and version only,
nothing fetched); :meth:`DandiClient.refresh <scibind.dandi.DandiClient.refresh>` loads it.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import posixpath
import re
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from scibind_generated.dandi.models import (
        Asset as GeneratedAsset,
    )
    from scibind_generated.dandi.models import (
        AssetDetail,
        DandisetDetail,
        DandisetListItem,
        Version,
        VersionSummary,
        ZarrFile,
    )

__all__ = [
    "Asset",
    "Dandiset",
    "ZarrEntry",
    "check_version_id",
    "normalize_dandiset_id",
    "normalize_path",
]

DRAFT = "draft"
_VERSION = re.compile(r"^(0\.\d{6}\.\d{4}|draft)$")
_DIGEST_KEYS = {
    "dandi:dandi-etag": "dandi-etag",
    "dandi:sha2-256": "sha256",
    "dandi:md5": "md5",
    "dandi:sha1": "sha1",
    "dandi:sha2-512": "sha512",
}


def normalize_dandiset_id(value: str | int | Dandiset) -> str:
    """``"000027"`` from ``"000027"``, ``27``, ``"DANDI:000027"`` or a :class:`Dandiset`."""
    if isinstance(value, Dandiset):
        return value.identifier
    text = str(value).strip()
    text = text.removeprefix("DANDI:").removeprefix("dandi:")
    if text.isdigit() and 0 < len(text) <= 6 and not isinstance(value, bool):
        return text.zfill(6)
    raise ConfigurationError(f"not a dandiset identifier: {value!r}")


def check_version_id(value: str) -> str:
    """``value`` if it is ``draft`` or a published version ``0.YYMMDD.HHMM``."""
    if not _VERSION.match(value):
        raise ConfigurationError(f"not a dandiset version: {value!r} (draft or 0.YYMMDD.HHMM)")
    return value


def normalize_path(path: str, *, folder: bool = False) -> str:
    """An asset path relative to the dandiset root (``./a//b`` -> ``a/b``); refuses paths leaving it."""
    text = path.replace("\\", "/").strip()
    if text in ("", ".", "./", "/"):
        return ""
    if text.startswith("/"):
        raise ConfigurationError(f"asset paths are relative: {path!r}")
    trailing = text.endswith("/")
    norm = posixpath.normpath(text)
    if norm == ".." or norm.startswith("../"):
        raise ConfigurationError(f"path leaves the dandiset: {path!r}")
    if norm == ".":
        return ""
    return norm + "/" if (folder or trailing) else norm


@attrs.frozen
class Dandiset:
    """A dandiset at one version. Lazy until loaded: only ``identifier`` and ``version_id`` are known.

    ``version_id`` is ``None`` for "the most recent published version, else the draft" until it is resolved.
    """

    identifier: str
    version_id: str | None = None
    data: DandisetDetail | DandisetListItem | None = attrs.field(default=None, eq=False, repr=False)

    @classmethod
    def from_data(
        cls, data: DandisetDetail | DandisetListItem, version_id: str | None = None
    ) -> Dandiset:
        """A loaded dandiset; ``version_id`` defaults to the most recent published version, else the draft."""
        if version_id is None:
            published = data.most_recent_published_version
            version_id = published.version if published is not None else DRAFT
        return cls(data.identifier, version_id, data)

    @property
    def loaded(self) -> bool:
        """Whether the dandiset's record was fetched (else only identifier and version are known)."""
        return self.data is not None

    def _data(self) -> DandisetDetail | DandisetListItem:
        if self.data is None:
            raise ConfigurationError(
                f"dandiset {self.identifier} was not fetched (lazy); load it with client.refresh(dandiset)"
            )
        return self.data

    @property
    def draft_version(self) -> Version | VersionSummary | None:
        return self._data().draft_version

    @property
    def most_recent_published_version(self) -> Version | VersionSummary | None:
        return self._data().most_recent_published_version

    @property
    def version(self) -> Version | VersionSummary | None:
        """The record of :attr:`version_id` when it is the draft or the most recent published version."""
        data = self._data()
        for candidate in (data.most_recent_published_version, data.draft_version):
            if candidate is not None and candidate.version == self.version_id:
                return candidate
        return None

    @property
    def created(self) -> dt.datetime:
        return self._data().created

    @property
    def modified(self) -> dt.datetime:
        return self._data().modified

    @property
    def contact_person(self) -> str:
        return self._data().contact_person

    @property
    def embargo_status(self) -> str:
        return self._data().embargo_status

    @property
    def api_path(self) -> str:
        """Path of the dandiset below the API URL."""
        return f"/dandisets/{self.identifier}/"

    @property
    def version_api_path(self) -> str:
        """Path of this version below the API URL (needs a resolved ``version_id``)."""
        if self.version_id is None:
            raise ConfigurationError(f"dandiset {self.identifier} has no resolved version")
        return f"/dandisets/{self.identifier}/versions/{self.version_id}/"

    def for_version(self, version_id: str) -> Dandiset:
        """The same dandiset at another version (no request is made; the version is not checked)."""
        return attrs.evolve(self, version_id=check_version_id(version_id))

    def __str__(self) -> str:
        return f"DANDI:{self.identifier}/{self.version_id or '?'}"


def _str(record: dict[str, Any], key: str, *, nullable: bool = False) -> Any:
    value = record.get(key)
    if isinstance(value, str) or (nullable and value is None):
        return value
    raise TypeError(f"asset.{key}: expected str, got {type(value).__name__}")


def _datetime(record: dict[str, Any], key: str) -> dt.datetime:
    value = record.get(key)
    if not isinstance(value, str):
        raise TypeError(f"asset.{key}: expected a date-time string, got {type(value).__name__}")
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"asset.{key}: not an ISO 8601 date-time") from None


@attrs.frozen
class Asset:
    """An asset (a file, or a Zarr archive) of a dandiset version.

    ``metadata`` is the asset's metadata document when the call that produced the asset included it.
    ``dandiset_id``/``version_id`` are ``None`` for an asset looked up by id alone.
    """

    asset_id: str
    path: str
    size: int
    blob: str | None
    zarr: str | None
    created: dt.datetime
    modified: dt.datetime
    dandiset_id: str | None = None
    version_id: str | None = None
    metadata: dict[str, Any] | None = attrs.field(default=None, eq=False, repr=False)

    @classmethod
    def from_generated(
        cls,
        model: GeneratedAsset | AssetDetail,
        dandiset_id: str | None = None,
        version_id: str | None = None,
    ) -> Asset:
        extra = getattr(getattr(model, "metadata", None), "additional_properties", None)
        metadata = extra if isinstance(extra, dict) else None
        return cls(
            str(model.asset_id),
            model.path,
            model.size,
            str(model.blob) if model.blob is not None else None,
            str(model.zarr) if model.zarr is not None else None,
            model.created,
            model.modified,
            dandiset_id,
            version_id,
            metadata,
        )

    @classmethod
    def from_record(
        cls, record: Any, dandiset_id: str | None = None, version_id: str | None = None
    ) -> Asset:
        """An asset from one JSON record of the asset list, type-checked field by field.

        The listing's fast path: ~20x cheaper than the generated model's ``from_dict`` plus its annotation
        check (20,000 assets: ~0.1 s instead of ~0.8 s of CPU). ``TypeError``/``ValueError`` (naming the
        field, never the value) for a record that does not fit the schema.
        """
        if not isinstance(record, dict):
            raise TypeError(f"asset: expected an object, got {type(record).__name__}")
        size = record.get("size")
        if not isinstance(size, int) or isinstance(size, bool):
            raise TypeError(f"asset.size: expected int, got {type(size).__name__}")
        metadata = record.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise TypeError(f"asset.metadata: expected object, got {type(metadata).__name__}")
        return cls(
            _str(record, "asset_id"),
            _str(record, "path"),
            size,
            _str(record, "blob", nullable=True),
            _str(record, "zarr", nullable=True),
            _datetime(record, "created"),
            _datetime(record, "modified"),
            dandiset_id,
            version_id,
            metadata,
        )

    @property
    def is_zarr(self) -> bool:
        return self.zarr is not None

    @property
    def name(self) -> str:
        """The last component of the path."""
        return self.path.rsplit("/", 1)[-1]

    @property
    def digests(self) -> dict[str, str]:
        """Known digests by algorithm (``dandi:dandi-etag``, ``dandi:sha2-256``, ...); empty without metadata."""
        digest = (self.metadata or {}).get("digest")
        return {str(k): str(v) for k, v in digest.items()} if isinstance(digest, dict) else {}

    def transfer_digests(self) -> dict[str, str]:
        """Digests under the names :mod:`scibind.transfers` verifies (``dandi-etag``, ``sha256``, ...)."""
        return {_DIGEST_KEYS[k]: v for k, v in self.digests.items() if k in _DIGEST_KEYS and v}

    @property
    def api_path(self) -> str:
        """Path of the asset below the API URL."""
        if self.dandiset_id is None or self.version_id is None:
            return f"/assets/{self.asset_id}/"
        return f"/dandisets/{self.dandiset_id}/versions/{self.version_id}/assets/{self.asset_id}/"

    def __str__(self) -> str:
        where = f"DANDI:{self.dandiset_id}/{self.version_id}/" if self.dandiset_id else ""
        return f"{where}{self.path}"


@attrs.frozen
class ZarrEntry:
    """One file of a Zarr archive: its path inside the archive, size, md5 and modification time."""

    zarr_id: str
    path: str
    size: int
    md5: str
    modified: dt.datetime

    @classmethod
    def from_generated(cls, zarr_id: str, model: ZarrFile) -> ZarrEntry:
        return cls(zarr_id, model.key, model.size, model.e_tag.strip('"'), model.last_modified)

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.path.split("/"))

    @property
    def name(self) -> str:
        return self.parts[-1]

    @property
    def suffix(self) -> str:
        """The final extension of the name (``.json``), or ``""``."""
        i = self.name.rfind(".")
        return self.name[i:] if 0 < i < len(self.name) - 1 else ""

    @property
    def suffixes(self) -> list[str]:
        if self.name.endswith("."):
            return []
        return ["." + s for s in self.name.lstrip(".").split(".")[1:]]

    @property
    def stem(self) -> str:
        i = self.name.rfind(".")
        return self.name[:i] if 0 < i < len(self.name) - 1 else self.name

    def match(self, pattern: str) -> bool:
        """Whether the path matches a relative glob pattern, compared from the right (like ``PurePath.match``)."""
        if pattern.startswith("/"):
            raise ConfigurationError(f"absolute patterns are not allowed: {pattern!r}")
        pattern_parts = [p for p in pattern.split("/") if p]
        if not pattern_parts:
            raise ConfigurationError("empty pattern")
        if len(pattern_parts) > len(self.parts):
            return False
        return all(
            fnmatch.fnmatchcase(part, pat)
            for part, pat in zip(reversed(self.parts), reversed(pattern_parts), strict=False)
        )

    def __str__(self) -> str:
        return self.path
