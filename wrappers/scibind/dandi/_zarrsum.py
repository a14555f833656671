"""The DANDI Zarr checksum, computed locally (same algorithm as the archive; no dependency at run time).

Every directory's digest is the md5 of a compact JSON manifest ``{"directories": [...], "files": [...]}`` of its
entries ``{"digest", "name", "size"}`` sorted by name; a directory entry's digest is ``<md5>-<files>--<size>``
of its subtree; a file's digest is its md5. The archive's checksum is the root's ``<md5>-<files>--<size>``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

__all__ = [
    "EMPTY_ZARR_CHECKSUM",
    "base64_md5",
    "file_md5",
    "local_zarr_digests",
    "local_zarr_files",
    "zarr_checksum",
]

_CHUNK = 1 << 20


def zarr_checksum(files: Mapping[str, tuple[str, int]] | Iterable[tuple[str, str, int]]) -> str:
    """``<md5>-<file count>--<total size>`` of ``{path: (md5 hex, size)}`` (or ``(path, md5, size)`` rows)."""
    rows = ((p, d, s) for p, (d, s) in files.items()) if isinstance(files, Mapping) else iter(files)
    tree: dict[str, Any] = {}
    for path, digest, size in rows:
        *dirs, name = path.strip("/").split("/")
        node = tree
        for part in dirs:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"{path}: a file is also used as a directory")
        node[name] = (digest, int(size))
    md5, count, total = _directory(tree)
    return f"{md5}-{count}--{total}"


def _directory(node: dict[str, Any]) -> tuple[str, int, int]:
    files: list[dict[str, Any]] = []
    dirs: list[dict[str, Any]] = []
    count = total = 0
    for name, child in node.items():
        if isinstance(child, dict):
            md5, n, size = _directory(child)
            dirs.append({"digest": f"{md5}-{n}--{size}", "name": name, "size": size})
            count += n
            total += size
        else:
            files.append({"digest": child[0], "name": name, "size": child[1]})
            count += 1
            total += child[1]
    manifest = {
        "directories": sorted(dirs, key=lambda e: e["name"]),
        "files": sorted(files, key=lambda e: e["name"]),
    }
    text = json.dumps(manifest, separators=(",", ":"))
    return hashlib.md5(text.encode()).hexdigest(), count, total


EMPTY_ZARR_CHECKSUM = zarr_checksum({})


def local_zarr_files(root: str | os.PathLike[str]) -> Iterator[tuple[str, Path]]:
    """``(path inside the zarr, file)`` for every file under ``root``, in sorted order."""
    base = Path(root)
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames.sort()
        for name in sorted(filenames):
            full = Path(dirpath, name)
            yield full.relative_to(base).as_posix(), full


def file_md5(path: str | os.PathLike[str]) -> str:
    """Hex md5 of a file, read in chunks."""
    h = hashlib.md5()
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def local_zarr_digests(
    root: str | os.PathLike[str], *, workers: int = 8
) -> dict[str, tuple[Path, str, int]]:
    """``{path: (file, md5 hex, size)}`` for a local Zarr directory, hashed in parallel threads."""
    entries = list(local_zarr_files(root))

    def one(item: tuple[str, Path]) -> tuple[str, tuple[Path, str, int]]:
        rel, full = item
        return rel, (full, file_md5(full), full.stat().st_size)

    if len(entries) <= 1:
        return dict(map(one, entries))
    with ThreadPoolExecutor(min(workers, len(entries)), thread_name_prefix="scibind-md5") as pool:
        return dict(pool.map(one, entries))


def base64_md5(hex_md5: str) -> str:
    """Base64 of a binary md5 (what ``Content-MD5`` carries) from its hex form."""
    return base64.b64encode(bytes.fromhex(hex_md5)).decode()
