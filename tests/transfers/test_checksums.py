from __future__ import annotations

import hashlib
import os

import pytest
from scibind.transfers.checksums import MultipartETag, file_digest, hash_parts, multipart_plan

MiB = 1 << 20


@pytest.mark.parametrize(
    "size", [0, 1, 5 * MiB, 64 * MiB, 64 * MiB + 1, 1000 * 64 * MiB, 700 * 1024 * MiB]
)
def test_plan_matches_dandischema(size: int) -> None:
    dandietag = pytest.importorskip("dandischema.digests.dandietag")
    ours = [(p.number, p.offset, p.size) for p in multipart_plan(size)]
    theirs = [(p.number, p.offset, p.size) for p in dandietag.PartGenerator.for_file_size(size)]
    assert ours == theirs


def test_etag_matches_dandischema(tmp_path) -> None:
    dandietag = pytest.importorskip("dandischema.digests.dandietag")
    path = tmp_path / "f.bin"
    path.write_bytes(os.urandom(70 * MiB))
    ours = MultipartETag.of(hash_parts(path, multipart_plan(path.stat().st_size))).value
    assert ours == dandietag.DandiETag.from_file(path).as_str()
    assert ours.endswith("-2")
    assert file_digest(path, "dandi-etag") == ours
    assert file_digest(path, "md5") == hashlib.md5(path.read_bytes()).hexdigest()
