"""Per-file transfer tasks for large collections: picklable, self-contained, runnable anywhere.

:meth:`DandiClient.plan_download` / :meth:`DandiClient.plan_upload` return lists of these; each one carries only
plain data (instance URL, dandiset, version, paths, expected digests) -- never a client or a credential -- so
they can be shipped to dask.distributed (or multiprocessing) workers::

    tasks = client.plan_download("000027", "/shared/data")
    results = dask_client.gather(dask_client.map(DownloadTask.run, tasks))

On a worker, :meth:`run` builds (and caches per process) a client for the task's instance, with the API key
from that worker's environment or keyring (or ``api_key=``); the same verification as a local transfer applies.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import attrs

from ._base import DANDI_PART_SIZE

if TYPE_CHECKING:
    from .._core import effects as fx
    from .._core.secrets import Secret
    from ..transfers.download import Existing
    from ..transfers.progress import ProgressCallback
    from ._client import AsyncDandiClient, DandiClient
    from ._models import Asset
    from ._transfers import TransferOps

__all__ = ["DownloadTask", "UploadTask", "close_worker_clients"]

_CLIENTS: dict[tuple[str, int], DandiClient] = {}
_CLIENTS_LOCK = threading.Lock()


def _worker_client(api_url: str, part_size: int) -> DandiClient:
    """One client per (instance, part size) per process, credentials from the environment or keyring."""
    from ._client import DandiClient

    key = (api_url, part_size)
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            if not _CLIENTS:
                import atexit

                atexit.register(close_worker_clients)
            client = _CLIENTS[key] = DandiClient(api_url, part_size=part_size)
        return client


def close_worker_clients() -> None:
    """Close the clients tasks created for themselves in this process (also done at exit)."""
    with _CLIENTS_LOCK:
        clients = list(_CLIENTS.values())
        _CLIENTS.clear()
    for client in clients:
        client.close()


def _frozen_dict(value: Any) -> dict[str, Any]:
    return dict(value or {})


@attrs.frozen
class DownloadTask:
    """Download one file (an asset, or one entry of a Zarr asset) to ``dest`` and verify it."""

    api_url: str
    dandiset_id: str | None
    version_id: str | None
    path: str
    """The asset's path in the dandiset (for a Zarr entry: the Zarr asset's path + ``/`` + the entry path)."""
    dest: str
    size: int
    digests: dict[str, str] = attrs.field(factory=dict, converter=_frozen_dict)
    asset_id: str | None = None
    zarr_id: str | None = None
    entry: str | None = None
    """The path inside the Zarr archive, for Zarr entries."""
    part_size: int = DANDI_PART_SIZE

    def op(
        self,
        client: TransferOps,
        *,
        progress: ProgressCallback | None = None,
        parallel: int = 4,
        existing: Existing = "verify",
    ) -> fx.Op[Path]:
        """The transfer as an operation of ``client`` (see :meth:`run` / :meth:`arun`)."""
        from ..transfers.download import Expected, download_op
        from . import _download

        if self.zarr_id is not None and self.entry is not None:
            zarr_id, entry = self.zarr_id, self.entry

            def resolve() -> fx.Op[str]:
                return (yield from client._zarr_redirect(zarr_id, entry))

        elif self.asset_id is not None:
            asset_id, ds, version = self.asset_id, self.dandiset_id, self.version_id

            def resolve() -> fx.Op[str]:
                return (yield from _download.blob_redirect(client, asset_id, ds, version))

        else:
            raise ValueError("a DownloadTask needs an asset_id, or a zarr_id and an entry")
        return download_op(
            resolve,
            self.dest,
            Expected(self.size, self.digests),
            name=self.path,
            progress=progress,
            parallel=parallel,
            part_size=client.part_size,
            min_parallel_size=2 * client.part_size,
            existing=existing,
        )

    def run(
        self,
        client: DandiClient | None = None,
        *,
        api_key: str | Secret | None = None,
        progress: ProgressCallback | None = None,
        parallel: int = 4,
        existing: Existing = "verify",
    ) -> Path:
        """Download (sync); without ``client``, a per-process client for the task's instance is used."""
        if client is None and api_key is not None:
            from ._client import DandiClient

            with DandiClient(self.api_url, api_key=api_key, part_size=self.part_size) as own:
                return self.run(own, progress=progress, parallel=parallel, existing=existing)
        client = client or _worker_client(self.api_url, self.part_size)
        return cast(
            Path,
            client._driver.run(
                self.op(client, progress=progress, parallel=parallel, existing=existing)
            ),
        )

    __call__ = run

    async def arun(
        self,
        client: AsyncDandiClient,
        *,
        progress: ProgressCallback | None = None,
        parallel: int = 4,
        existing: Existing = "verify",
    ) -> Path:
        """Download with an async client."""
        return cast(
            Path,
            await client._driver.run(
                self.op(client, progress=progress, parallel=parallel, existing=existing)
            ),
        )


@attrs.frozen
class UploadTask:
    """Upload one local file (or one local Zarr directory) to ``asset_path`` in a dandiset's draft."""

    api_url: str
    dandiset_id: str
    local_path: str
    asset_path: str
    size: int
    zarr: bool = False
    replace: str = "if-different"
    metadata: dict[str, Any] | None = None
    part_size: int = DANDI_PART_SIZE

    def op(
        self,
        client: TransferOps,
        *,
        progress: ProgressCallback | None = None,
        parallel: int = 4,
    ) -> fx.Op[Asset]:
        """The transfer as an operation of ``client`` (see :meth:`run` / :meth:`arun`)."""
        from . import _upload

        replace = client._replace_mode(self.replace)
        if self.zarr:
            return _upload.upload_zarr(
                client,
                self.dandiset_id,
                Path(self.local_path),
                self.asset_path,
                metadata=self.metadata,
                replace=replace,
                parallel=parallel,
                progress=progress,
            )
        return _upload.upload_file(
            client,
            self.dandiset_id,
            Path(self.local_path),
            self.asset_path,
            metadata=self.metadata,
            replace=replace,
            parallel=parallel,
            progress=progress,
        )

    def run(
        self,
        client: DandiClient | None = None,
        *,
        api_key: str | Secret | None = None,
        progress: ProgressCallback | None = None,
        parallel: int = 4,
    ) -> Asset:
        """Upload (sync); without ``client``, a per-process client for the task's instance is used."""
        if client is None and api_key is not None:
            from ._client import DandiClient

            with DandiClient(self.api_url, api_key=api_key, part_size=self.part_size) as own:
                return self.run(own, progress=progress, parallel=parallel)
        client = client or _worker_client(self.api_url, self.part_size)
        return cast(
            "Asset", client._driver.run(self.op(client, progress=progress, parallel=parallel))
        )

    __call__ = run

    async def arun(
        self,
        client: AsyncDandiClient,
        *,
        progress: ProgressCallback | None = None,
        parallel: int = 4,
    ) -> Asset:
        """Upload with an async client."""
        result = await client._driver.run(self.op(client, progress=progress, parallel=parallel))
        return cast("Asset", result)
