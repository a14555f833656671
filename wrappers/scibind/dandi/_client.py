"""The DANDI Archive client: :class:`DandiClient` and :class:`AsyncDandiClient` from one code base.

The operations are written once, in groups (``_base``: connection and server calls; ``_account``: API key,
sign-in, users, schema version, generic listings; ``_dandisets``;
``_assets``; ``_zarr``; ``_transfers``), each group extending the previous one; :class:`DandiOps` is the whole
set, and the two clients only add how operations run (blocking, or awaited).
"""

from __future__ import annotations

import io
from typing import Generic, TypeVar, cast

from .._core.facade import AsyncFacade, SyncFacade
from ._models import Asset, ZarrEntry
from ._readable import AsyncRemoteFile, RemoteFile
from ._transfers import TransferOps

__all__ = ["AsyncDandiClient", "DandiClient", "DandiOps"]

ReaderT = TypeVar("ReaderT", io.BufferedReader, AsyncRemoteFile)


class DandiOps(TransferOps, Generic[ReaderT]):
    """Every DANDI operation (see :class:`DandiClient`); ``ReaderT`` is what :meth:`as_readable` returns."""

    def as_readable(self, item: Asset | ZarrEntry, *, buffer_size: int = 1 << 20) -> ReaderT:
        """A seekable read-only file over an asset's (or Zarr entry's) content, read with ranged GETs.

        No request is made until the first read; the storage URL is presigned (no credentials sent there).
        Sync clients get an :class:`io.BufferedReader`; async clients an
        :class:`~scibind.dandi.AsyncRemoteFile` (``await f.read(n)``, ``f.seek(pos)``).
        """
        source = self._range_source(item)
        reader: io.BufferedReader | AsyncRemoteFile
        if self._driver.is_async:
            reader = AsyncRemoteFile(self._driver.run, source, buffer_size)
        else:
            reader = io.BufferedReader(RemoteFile(self._driver.run, source), buffer_size)
        return cast(ReaderT, reader)


class DandiClient(DandiOps[io.BufferedReader], SyncFacade):
    """Blocking client for a DANDI Archive instance.

    >>> with DandiClient("dandi") as client:
    ...     ds = client.get_dandiset("000027")
    ...     for asset in client.assets(ds):
    ...         print(asset.path, asset.size)
    """


class AsyncDandiClient(DandiOps[AsyncRemoteFile], AsyncFacade):
    """asyncio client for a DANDI Archive instance: the same calls as :class:`DandiClient`, awaited
    (``async for`` over listings)."""
