"""Benchmark: scibind's DANDI client against dandi-cli, same server, same latency, same data, in one run.

The server is scibind's fake DANDI Archive (``FakeDandiArchive.serve``: a real loopback HTTP server for the API
and one for the object store) in a separate process (bench/_dandi_server.py), with ``--latency-ms`` added to
every request. Each benchmark runs both clients ``--repeat`` times, alternating, with fresh files and
directories each run, checks the result each time, and reports the median:

* ``list``: every asset of a draft with 20,000 assets (no metadata). scibind ``DandiClient.assets``;
  dandi-cli ``DandiAPIClient.get_dandiset(...).get_assets()``. Count checked.
* ``upload``: a fresh file of random bytes (256 MiB), dandi-etag hashing included. scibind
  ``DandiClient.upload``; dandi-cli ``dandi.files.dandi_file(path).upload(remote_dandiset, metadata)`` (what
  ``RemoteDandiset.upload_raw_asset`` and ``dandi upload`` call). The stored object's ETag, recomputed by the
  server from the stored bytes, must equal the dandi-etag of the local file.
* ``download``: one 256 MiB asset, verified against its digest. scibind ``DandiClient.get_asset`` +
  ``download`` (checks size and the dandi-etag, hashed as ranges arrive); dandi-cli
  ``dandi.download.download(asset URL, dir)`` (checks the dandi-etag, hashed as the stream arrives). The downloaded bytes' md5 is checked by the benchmark.
* ``import``: ``from scibind.dandi import DandiClient`` vs ``import dandi.dandiapi``, each in fresh
  interpreters, alternating; the minimum of ``--import-runs`` runs.

Both clients are constructed (and authenticated) before the timer starts; the listing is warmed up once per
client (imports, first-use code). dandi-cli runs with its defaults (5 page workers, the server's page size,
5 upload threads, one download stream, its pyout progress table). ``DANDI_NO_ET=1`` keeps dandi-cli from
checking for a newer version online; HOME and caches point at a temporary directory. Dirty pages are synced
before every timed run. The machine's other load hits both clients alike (runs alternate), but repeat.

    python bench/dandi_bench.py --repeat 5           # the run in the README (~8 minutes)
    python bench/dandi_bench.py --quick              # small sizes, one repeat
    python bench/dandi_bench.py --only list upload --repeat 5 --json out.json
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _dandi_server import DandiServer

MiB = 1024 * 1024
PART = 64 * MiB

TARGETS = {"list": 0.4, "upload": 0.7, "download": 0.7, "import": 0.3}


# ---------------------------------------------------------------------------------------------- helpers
def dandi_etag(path: Path) -> str:
    """The dandi-etag of a file, computed plainly (the reference both clients must agree with)."""
    size = path.stat().st_size
    digests = []
    with open(path, "rb") as f:
        while chunk := f.read(min(PART, size)):
            digests.append(hashlib.md5(chunk).digest())
    return f"{hashlib.md5(b''.join(digests)).hexdigest()}-{len(digests)}"


def md5_of(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(8 * MiB):
            h.update(chunk)
    return h.hexdigest()


def write_random(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 16 * MiB)
            f.write(os.urandom(n))
            left -= n


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Runner:
    """Alternates the two clients' runs of one benchmark, collects times."""

    def __init__(self, server: DandiServer, name: str, repeat: int) -> None:
        self.server = server
        self.name = name
        self.repeat = repeat
        self.times: dict[str, list[float]] = {"scibind": [], "dandi-cli": []}

    def run(
        self,
        fns: dict[str, tuple[Callable[[], Any], Callable[[], float]]],
        *,
        warmup: bool = False,
    ) -> dict[str, float]:
        """``fns[client] = (prepare, timed)``; ``timed`` returns its own elapsed seconds after checking.

        ``warmup`` runs each client once, untimed, first (imports, first-use code paths)."""
        for prepare, timed in fns.values() if warmup else ():
            prepare()
            timed()
        for i in range(self.repeat):
            order = list(fns) if i % 2 == 0 else list(reversed(fns))
            for client in order:
                prepare, timed = fns[client]
                prepare()
                self.server.call("forget_requests")  # the fake records requests, bodies included
                os.sync()  # no writeback of earlier files during the timed run
                elapsed = timed()
                self.times[client].append(elapsed)
                log(f"  {self.name:9s} {client:9s} run {i + 1}: {elapsed * 1000:8.1f} ms")
        return {c: statistics.median(t) for c, t in self.times.items()}


# ---------------------------------------------------------------------------------------------- list
def bench_list(server: DandiServer, args: argparse.Namespace) -> dict[str, Any]:
    from dandi.dandiapi import DandiAPIClient
    from scibind.dandi import DandiClient

    ident = server.call("seed_listing", args.assets)
    log(f"seeded {args.assets} assets in dandiset {ident}")
    clients: dict[str, Any] = {}

    def prep_scibind() -> None:
        clients["scibind"] = DandiClient(server.url, api_key=server.api_key)

    def run_scibind() -> float:
        client = clients.pop("scibind")
        with client:
            start = time.perf_counter()
            n = sum(1 for _ in client.assets(ident, "draft"))
            elapsed = time.perf_counter() - start
        check(n == args.assets, f"scibind listed {n} assets, expected {args.assets}")
        return elapsed

    def prep_dandi() -> None:
        client = DandiAPIClient(api_url=server.url, token=server.api_key)
        clients["dandi-cli"] = client

    def run_dandi() -> float:
        client = clients.pop("dandi-cli")
        with client:
            start = time.perf_counter()
            n = sum(1 for _ in client.get_dandiset(ident, "draft").get_assets())
            elapsed = time.perf_counter() - start
        check(n == args.assets, f"dandi-cli listed {n} assets, expected {args.assets}")
        return elapsed

    runner = Runner(server, "list", args.repeat)
    medians = runner.run(
        {"scibind": (prep_scibind, run_scibind), "dandi-cli": (prep_dandi, run_dandi)},
        warmup=True,
    )
    return {
        "label": f"list {args.assets:,} assets, {args.latency_ms:g} ms per request",
        "medians": medians,
        "runs": runner.times,
    }


# ---------------------------------------------------------------------------------------------- upload
def bench_upload(server: DandiServer, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from dandi.dandiapi import DandiAPIClient
    from dandi.files import dandi_file
    from scibind.dandi import DandiClient

    size = args.size_mib * MiB
    ident = server.call("create_dandiset", "upload benchmark")
    state: dict[str, Any] = {}
    counter = iter(range(10**6))

    def fresh_file() -> None:
        n = next(counter)
        folder = work / f"upload-{n}"
        folder.mkdir()
        path = folder / f"data-{n}.bin"
        write_random(path, size)
        state.update(path=path, asset_path=f"bench/data-{n}.bin", etag=dandi_etag(path))

    def verify(client: str) -> None:
        stored = server.call("stored_asset", ident, state["asset_path"])
        check(stored is not None, f"{client}: no asset at {state['asset_path']}")
        check(stored["size"] == size, f"{client}: stored {stored['size']} bytes, expected {size}")
        for key in ("blob_etag", "object_etag", "recomputed_etag"):
            check(
                stored[key] == state["etag"],
                f"{client}: {key} {stored[key]} != local dandi-etag {state['etag']}",
            )
        server.call("drop_asset", ident, state["asset_path"])
        shutil.rmtree(state["path"].parent)

    def prep_scibind() -> None:
        fresh_file()
        state["client"] = DandiClient(server.url, api_key=server.api_key)

    def run_scibind() -> float:
        with state.pop("client") as client:
            start = time.perf_counter()
            asset = client.upload(ident, state["path"], state["asset_path"])
            elapsed = time.perf_counter() - start
        check(asset.path == state["asset_path"], f"scibind uploaded to {asset.path}")
        verify("scibind")
        return elapsed

    def prep_dandi() -> None:
        fresh_file()
        client = DandiAPIClient(api_url=server.url, token=server.api_key)
        state["client"] = client

    def run_dandi() -> float:
        with state.pop("client") as client:
            start = time.perf_counter()
            remote = client.get_dandiset(ident, "draft")
            asset = dandi_file(state["path"]).upload(remote, metadata={"path": state["asset_path"]})
            elapsed = time.perf_counter() - start
        check(asset.path == state["asset_path"], f"dandi-cli uploaded to {asset.path}")
        verify("dandi-cli")
        return elapsed

    runner = Runner(server, "upload", args.repeat)
    medians = runner.run(
        {"scibind": (prep_scibind, run_scibind), "dandi-cli": (prep_dandi, run_dandi)}
    )
    return {
        "label": f"upload a fresh {args.size_mib} MiB file (hashing included), {args.latency_ms:g} ms",
        "medians": medians,
        "runs": runner.times,
    }


# ---------------------------------------------------------------------------------------------- download
def bench_download(server: DandiServer, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from dandi.dandiapi import DandiAPIClient
    from dandi.download import DownloadFormat, download
    from scibind.dandi import DandiClient

    size = args.size_mib * MiB
    ident = server.call("create_dandiset", "download benchmark")
    seeded = server.call("seed_blob", ident, "sub-01/big.bin", size, 1)
    log(f"seeded a {args.size_mib} MiB asset ({seeded['etag']})")
    url = f"{server.url}/dandisets/{ident}/versions/draft/assets/{seeded['asset_id']}/download/"
    state: dict[str, Any] = {}
    counter = iter(range(10**6))

    def fresh_dir() -> None:
        state["dir"] = work / f"download-{next(counter)}"
        state["dir"].mkdir()

    def verify(client: str, path: Path) -> None:
        check(path.stat().st_size == size, f"{client}: downloaded {path.stat().st_size} bytes")
        check(md5_of(path) == seeded["md5"], f"{client}: downloaded bytes differ")
        leftovers = sorted(p.name for p in state["dir"].rglob("*") if p != path and p.is_file())
        check(not leftovers, f"{client}: left files behind: {leftovers}")
        shutil.rmtree(state["dir"])

    def prep_scibind() -> None:
        fresh_dir()
        state["client"] = DandiClient(server.url, api_key=server.api_key)

    def run_scibind() -> float:
        with state.pop("client") as client:
            start = time.perf_counter()
            asset = client.get_asset(seeded["asset_id"], dandiset=ident, version_id="draft")
            path = client.download(asset, state["dir"])
            elapsed = time.perf_counter() - start
        verify("scibind", path)
        return elapsed

    def prep_dandi() -> None:
        fresh_dir()
        # dandi.download builds its own client from the URL; build one here so the server-info lookup
        # it makes (cached per process) is not timed, like the other client's construction.
        DandiAPIClient(api_url=server.url).session.close()

    def run_dandi() -> float:
        with contextlib.redirect_stdout(sys.stderr):  # its progress table; stdout is for our table
            start = time.perf_counter()
            download(url, state["dir"], format=DownloadFormat(args.dandi_format))
            elapsed = time.perf_counter() - start
        verify("dandi-cli", state["dir"] / "big.bin")
        return elapsed

    runner = Runner(server, "download", args.repeat)
    medians = runner.run(
        {"scibind": (prep_scibind, run_scibind), "dandi-cli": (prep_dandi, run_dandi)}
    )
    server.call("drop_asset", ident, "sub-01/big.bin")
    return {
        "label": f"download a {args.size_mib} MiB asset, checksum verified, {args.latency_ms:g} ms",
        "medians": medians,
        "runs": runner.times,
    }


# ---------------------------------------------------------------------------------------------- import
IMPORTS = {
    "scibind": "from scibind.dandi import DandiClient",
    "dandi-cli": "import dandi.dandiapi",
}


def bench_import(args: argparse.Namespace) -> dict[str, Any]:
    times: dict[str, list[float]] = {c: [] for c in IMPORTS}
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    for i in range(args.import_runs):
        for client, statement in IMPORTS.items() if i % 2 == 0 else reversed(IMPORTS.items()):
            code = (
                f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
            )
            out = subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
            )
            times[client].append(float(out.stdout.strip()))
    best = {c: min(t) for c, t in times.items()}
    for client, t in times.items():
        log(f"  import    {client:9s} min {best[client] * 1000:.1f} ms of {len(t)}")
    return {
        "label": "import the client (`from scibind.dandi import DandiClient` / `import dandi.dandiapi`)",
        "medians": best,
        "runs": times,
        "statistic": "min",
    }


# ---------------------------------------------------------------------------------------------- main
class CheckFailed(SystemExit):
    pass


def check(ok: bool, message: str) -> None:
    if not ok:
        raise CheckFailed(f"check failed: {message}")


def table(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [
        "| benchmark | scibind | dandi-cli 0.81.0 | ratio (scibind / dandi-cli) | target |",
        "|---|---|---|---|---|",
    ]
    for name, result in results.items():
        ours, theirs = result["medians"]["scibind"], result["medians"]["dandi-cli"]
        ratio = ours / theirs
        target = TARGETS[name]
        mark = "met" if ratio <= target else "**missed**"
        lines.append(
            f"| {result['label']} | {_fmt(ours)} | {_fmt(theirs)} | {ratio:.2f} | <= {target} ({mark}) |"
        )
    return "\n".join(lines)


def _fmt(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 2 else f"{seconds:.2f} s"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--assets", type=int, default=20_000, help="assets to list (default 20000)")
    parser.add_argument(
        "--size-mib", type=int, default=256, help="upload/download size (default 256)"
    )
    parser.add_argument(
        "--latency-ms", type=float, default=20.0, help="added to every request (default 20)"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per client; the median is reported"
    )
    parser.add_argument(
        "--import-runs", type=int, default=10, help="fresh interpreters per client (min)"
    )
    parser.add_argument(
        "--only", nargs="+", choices=list(TARGETS), default=list(TARGETS), help="benchmarks to run"
    )
    parser.add_argument(
        "--quick", action="store_true", help="2,000 assets, 32 MiB, 1 repeat, 5 imports"
    )
    parser.add_argument(
        "--dandi-format",
        choices=["pyout", "debug"],
        default="pyout",
        help="dandi.download's output format (its default, pyout, is what `dandi download` shows)",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.quick:
        args.assets, args.size_mib, args.repeat, args.import_runs = 2000, 32, 1, 5

    home = Path(tempfile.mkdtemp(prefix="dandi-bench-"))
    os.environ.update(
        HOME=str(home),
        XDG_CACHE_HOME=str(home / ".cache"),
        SCIBIND_CACHE_DIR=str(home / ".cache" / "scibind"),
        DANDI_NO_ET="1",
    )
    work = home / "work"
    work.mkdir()
    results: dict[str, dict[str, Any]] = {}
    try:
        with DandiServer(latency=args.latency_ms / 1000) as server:
            log(f"fake DANDI Archive at {server.url} ({args.latency_ms:g} ms per request)")
            if "list" in args.only:
                results["list"] = bench_list(server, args)
            if "upload" in args.only:
                results["upload"] = bench_upload(server, args, work)
            if "download" in args.only:
                results["download"] = bench_download(server, args, work)
        if "import" in args.only:
            results["import"] = bench_import(args)
    finally:
        shutil.rmtree(home, ignore_errors=True)

    command = "python bench/dandi_bench.py " + " ".join(sys.argv[1:])
    print(f"\n`{command.strip()}` (median of {args.repeat}; import: min of {args.import_runs})\n")
    print(table({k: results[k] for k in TARGETS if k in results}, args))
    if args.json:
        payload = {
            "command": command.strip(),
            "repeat": args.repeat,
            "latency_ms": args.latency_ms,
            "results": {
                k: {
                    **v,
                    "ratio": v["medians"]["scibind"] / v["medians"]["dandi-cli"],
                    "target": TARGETS[k],
                }
                for k, v in results.items()
            },
        }
        args.json.write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
