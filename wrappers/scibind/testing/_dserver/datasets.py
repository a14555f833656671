"""Realistic dtool dataset registration bodies (what ``dtool`` / ``dtool_lookup_api`` PUT to ``/uris/...``).

Stdlib + PyYAML only, so the parent process can build bodies without dservercore.
"""

from __future__ import annotations

import hashlib
import random
import uuid as _uuid
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

__all__ = ["CREATORS", "TAGS", "WORDS", "make_dataset"]

DTOOLCORE_VERSION = "3.19.0"
CREATORS = ("alice", "bob", "carol", "dave")
TAGS = ("raw", "processed", "simulation", "experiment", "calibration", "published", "draft")
WORDS = (
    "graphene",
    "polymer",
    "friction",
    "crystal",
    "membrane",
    "protein",
    "neuron",
    "catalyst",
    "turbulence",
    "spectroscopy",
    "microscopy",
    "diffraction",
    "adhesion",
    "lubricant",
    "interface",
    "nanoparticle",
    "electrode",
    "battery",
    "hydrogel",
    "silicon",
)
PROJECTS = ("tribology", "biophysics", "energy-storage", "soft-matter", "imaging")
_EPOCH_2020 = 1577836800.0
_FOUR_YEARS = 4 * 365 * 86400.0


def _readme(rng: random.Random, name: str, creator: str) -> str:
    keywords = rng.sample(WORDS, 3)
    doc = {
        "description": f"{name.replace('-', ' ')}: {' '.join(keywords)} measurements",
        "project": rng.choice(PROJECTS),
        "owners": [
            {"name": creator.capitalize(), "email": f"{creator}@example.org", "username": creator}
        ],
        "creation_date": f"202{rng.randint(0, 3)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
        "keywords": keywords,
        "funders": [
            {"organization": "Example Research Council", "code": f"ERC-{rng.randint(1000, 9999)}"}
        ],
    }
    return str(yaml.safe_dump(doc, sort_keys=False))


def _manifest(
    rng: random.Random, items: Mapping[str, int] | None, frozen_at: float
) -> dict[str, Any]:
    if items is None:
        items = {
            f"data/sample_{i:03d}.csv": rng.randint(1_000, 5_000_000)
            for i in range(rng.randint(1, 6))
        }
    entries = {}
    for relpath, size in items.items():
        identifier = hashlib.sha1(relpath.encode()).hexdigest()
        entries[identifier] = {
            "hash": hashlib.md5(f"{relpath}:{size}:{rng.random()}".encode()).hexdigest(),
            "relpath": relpath,
            "size_in_bytes": int(size),
            "utc_timestamp": round(frozen_at - rng.uniform(60, 86400), 6),
        }
    return {
        "dtoolcore_version": DTOOLCORE_VERSION,
        "hash_function": "md5sum_hexdigest",
        "items": entries,
    }


def make_dataset(
    base_uri: str,
    *,
    name: str | None = None,
    uuid: str | None = None,
    creator_username: str | None = None,
    readme: str | Mapping[str, Any] | None = None,
    items: Mapping[str, int] | None = None,
    annotations: Mapping[str, str] | None = None,
    tags: Sequence[str] | None = None,
    frozen_at: float | None = None,
    created_at: float | None = None,
    rng: random.Random | None = None,
) -> dict[str, Any]:
    """A complete registration body; anything not given is made up (deterministically for a seeded ``rng``).

    ``items`` maps relpath -> size in bytes. ``readme`` may be YAML text or a mapping (dumped as YAML).
    The URI is ``<base_uri>/<uuid>``, as dtool's object-store brokers name datasets.
    """
    rng = rng or random.Random()
    base_uri = base_uri.rstrip("/")
    uuid = uuid or str(_uuid.UUID(int=rng.getrandbits(128), version=4))
    name = name or f"{rng.choice(WORDS)}-{rng.choice(WORDS)}-{rng.randint(0, 9999):04d}"
    creator_username = creator_username or rng.choice(CREATORS)
    if created_at is None:
        created_at = round(_EPOCH_2020 + rng.uniform(0, _FOUR_YEARS), 6)
    if frozen_at is None:
        frozen_at = round(created_at + rng.uniform(60, 30 * 86400), 6)
    if readme is None:
        readme = _readme(rng, name, creator_username)
    elif not isinstance(readme, str):
        readme = str(yaml.safe_dump(dict(readme), sort_keys=False))
    manifest = _manifest(rng, items, frozen_at)
    if annotations is None:
        annotations = {
            "project": rng.choice(PROJECTS),
            "instrument": rng.choice(("afm", "sem", "xrd")),
        }
    if tags is None:
        tags = sorted(rng.sample(TAGS, rng.randint(0, 3)))
    return {
        "uuid": uuid,
        "base_uri": base_uri,
        "uri": f"{base_uri}/{uuid}",
        "name": name,
        "type": "dataset",
        "readme": readme,
        "manifest": manifest,
        "creator_username": creator_username,
        # dserver's RegisterDatasetSchema declares both as strings (a JSON number gets 422)
        "frozen_at": str(frozen_at),
        "created_at": str(created_at),
        "annotations": dict(annotations),
        "tags": list(tags),
        "number_of_items": len(manifest["items"]),
        "size_in_bytes": sum(i["size_in_bytes"] for i in manifest["items"].values()),
    }
