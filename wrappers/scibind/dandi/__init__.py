"""Client for the DANDI Archive (https://dandiarchive.org): typed, with fast, verified, resumable transfers.

>>> from scibind.dandi import DandiClient
>>> client = DandiClient("dandi")               # or "dandi-sandbox", or an API URL; key from DANDI_API_KEY/keyring
>>> ds = client.get_dandiset("000027")          # most recent published version, else the draft
>>> [a.path for a in client.assets(ds, path="sub-RAT123/")]
>>> client.get_metadata(ds)["name"];  client.get_version(ds).status;  client.versions(ds).list()
>>> client.download(client.get_asset_by_path(ds, "sub-RAT123/x.nwb"), "data/")
>>> client.download_directory(ds, "data/", path="sub-RAT123")
>>> client.upload("000123", "x.nwb", "sub-01/x.nwb");  client.upload_directory("000123", "local/")
>>> client.publish("000123")                    # waits until valid, publishes, waits until published
>>> with client.as_readable(asset) as f: f.seek(1024); header = f.read(64)

:class:`AsyncDandiClient` offers the same calls, awaited (``async for`` over listings). See docs/dandi.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from ._client import AsyncDandiClient, DandiClient, DandiOps
    from ._errors import DandisetValidationError, SchemaVersionError
    from ._instances import KNOWN_INSTANCES, DandiInstance
    from ._models import Asset, Dandiset, ZarrEntry
    from ._readable import AsyncRemoteFile, RemoteFile
    from ._tasks import DownloadTask, UploadTask, close_worker_clients
    from ._transfers import Replace
    from ._zarrsum import zarr_checksum

__all__ = [
    "KNOWN_INSTANCES",
    "Asset",
    "AsyncDandiClient",
    "AsyncRemoteFile",
    "DandiClient",
    "DandiInstance",
    "DandiOps",
    "Dandiset",
    "DandisetValidationError",
    "DownloadTask",
    "RemoteFile",
    "Replace",
    "SchemaVersionError",
    "UploadTask",
    "ZarrEntry",
    "close_worker_clients",
    "zarr_checksum",
]

_EXPORTS = {
    "AsyncDandiClient": "._client",
    "DandiClient": "._client",
    "DandiOps": "._client",
    "DandisetValidationError": "._errors",
    "SchemaVersionError": "._errors",
    "KNOWN_INSTANCES": "._instances",
    "DandiInstance": "._instances",
    "Asset": "._models",
    "Dandiset": "._models",
    "ZarrEntry": "._models",
    "AsyncRemoteFile": "._readable",
    "RemoteFile": "._readable",
    "DownloadTask": "._tasks",
    "UploadTask": "._tasks",
    "close_worker_clients": "._tasks",
    "Replace": "._transfers",
    "zarr_checksum": "._zarrsum",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)
