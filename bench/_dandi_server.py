"""The fake DANDI Archive for benchmarks, served over real loopback HTTP from a separate interpreter.

The server runs in its own process so that its work (JSON rendering, S3 part hashing) never holds the GIL of
the client under test; both clients talk to the same server, with the same per-request latency. The parent
drives it through a pipe: seed data, look at what was stored (to check an upload), drop big objects.

    with DandiServer(latency=0.02) as server:
        server.url, server.api_key
        dandiset_id = server.call("seed_listing", 20_000)
"""

from __future__ import annotations

import hashlib
import random
import secrets
import subprocess
import sys
from multiprocessing.connection import Client, Connection, Listener
from typing import Any

__all__ = ["DandiServer"]

MiB = 1024 * 1024


def _content(size: int, seed: int) -> bytes:
    """Deterministic pseudo-random bytes (not compressible, no long runs)."""
    rng = random.Random(seed)
    chunk = 4 * MiB
    return b"".join(rng.randbytes(min(chunk, size - at)) for at in range(0, size, chunk))


class _Commands:
    """What the parent may ask the server process to do (runs beside the HTTP server threads)."""

    def __init__(self, fake: Any) -> None:
        self.fake = fake

    def create_dandiset(self, name: str) -> str:
        return str(self.fake.create_dandiset(name))

    def seed_listing(self, count: int) -> str:
        """A new dandiset whose draft holds ``count`` small assets (one shared blob); returns its id.

        Inserted in bulk (the public ``add_asset`` checks every path against every other, O(n^2)).
        """
        fake = self.fake
        ident = str(fake.create_dandiset(f"{count} assets"))
        blob = fake._blob_for(b"benchmark asset\n")
        with fake.lock:
            ds = fake._dandiset(ident)
            for i in range(count):
                path = f"sub-{i // 100:04d}/sub-{i // 100:04d}_ses-{i % 100:02d}_ecephys.nwb"
                meta = {"encodingFormat": "application/x-nwb", "path": path}
                asset = fake._new_asset(path, meta, blob=blob)
                ds.draft.assets[asset.asset_id] = asset
            fake._mark_pending(ds.draft)
        return ident

    def seed_blob(self, ident: str, path: str, size: int, seed: int) -> dict[str, Any]:
        """Add a ``size``-byte asset at ``path``; returns its id and the digests the archive knows."""
        content = _content(size, seed)
        asset_id = self.fake.add_asset(ident, path, content)
        blob = self.fake._assets[asset_id].blob
        return {
            "asset_id": asset_id,
            "size": size,
            "etag": blob.etag,
            "sha256": blob.sha256,
            "md5": hashlib.md5(content).hexdigest(),
        }

    def stored_asset(self, ident: str, path: str) -> dict[str, Any] | None:
        """What the archive stores at ``path`` of the draft: size, blob ETag, and the ETag recomputed from
        the stored bytes (so a client cannot pass by agreeing with itself)."""
        fake = self.fake
        with fake.lock:
            draft = fake._dandiset(ident).draft
            found = next((a for a in draft.assets.values() if a.path == path), None)
            if found is None or found.blob is None:
                return None
            data = fake.objects[found.blob.key].data
        return {
            "asset_id": found.asset_id,
            "size": len(data),
            "blob_etag": found.blob.etag,
            "object_etag": fake.objects[found.blob.key].etag,
            "recomputed_etag": fake.dandi_etag(data),
        }

    def drop_asset(self, ident: str, path: str) -> bool:
        """Remove the asset at ``path`` and its bytes (keeps the server's memory flat across repeats)."""
        fake = self.fake
        with fake.lock:
            draft = fake._dandiset(ident).draft
            found = next((a for a in draft.assets.values() if a.path == path), None)
            if found is None:
                return False
            del draft.assets[found.asset_id]
            fake._assets.pop(found.asset_id, None)
            if found.blob is not None:
                fake.objects.pop(found.blob.key, None)
                fake._blobs.pop(found.blob.blob_id, None)
            return True

    def forget_requests(self) -> int:
        """Drop the fake's record of requests (it keeps every request, uploaded bodies included)."""
        with self.fake.lock:
            n = len(self.fake.requests)
            self.fake.requests.clear()
            return n


def _serve(conn: Connection, latency: float) -> None:
    from scibind.testing.dandi import FakeDandiArchive

    fake = FakeDandiArchive()
    commands = _Commands(fake)
    with fake.serve(latency=latency) as url:
        conn.send({"url": url, "api_key": fake.api_key})
        while True:
            try:
                name, args = conn.recv()
            except EOFError:
                return
            if name == "stop":
                conn.send(None)
                return
            try:
                conn.send(("ok", getattr(commands, name)(*args)))
            except Exception as exc:  # report, keep serving
                conn.send(("error", repr(exc)))


class DandiServer:
    """Start the fake archive in a child interpreter; ``call`` runs a :class:`_Commands` method there."""

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.url = ""
        self.api_key = ""

    def __enter__(self) -> DandiServer:
        authkey = secrets.token_bytes(16)
        listener = Listener(("127.0.0.1", 0), authkey=authkey)
        _host, port = listener.address
        self._process = subprocess.Popen(
            [sys.executable, __file__, str(port), str(self.latency)],
            stdin=subprocess.PIPE,
        )
        assert self._process.stdin is not None
        self._process.stdin.write(authkey.hex().encode() + b"\n")
        self._process.stdin.close()
        self._conn = listener.accept()
        listener.close()
        hello = self._conn.recv()
        self.url, self.api_key = hello["url"], hello["api_key"]
        return self

    def call(self, name: str, *args: Any) -> Any:
        self._conn.send((name, args))
        status, value = self._conn.recv()
        if status != "ok":
            raise RuntimeError(f"server command {name} failed: {value}")
        return value

    def __exit__(self, *exc: object) -> None:
        try:
            self._conn.send(("stop", ()))
            self._conn.recv()
            self._conn.close()
        except (OSError, EOFError):
            pass
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.terminate()
            self._process.wait()


if __name__ == "__main__":
    _port, _latency = int(sys.argv[1]), float(sys.argv[2])
    _key = bytes.fromhex(sys.stdin.readline().strip())
    _serve(Client(("127.0.0.1", _port), authkey=_key), _latency)
