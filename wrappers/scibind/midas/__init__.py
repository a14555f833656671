"""Client for Midas Server (the JSON web API, ``/api/json?method=midas....``), with pydas's calls.

>>> from scibind.midas import MidasClient
>>> md = MidasClient("https://midas.example.org", email="me@example.org", api_key="...")  # or MIDAS_* env
>>> folder = md.create_folder("results", parent_id=-1)
>>> up = md.upload_file("scan.nrrd", folder_id=folder.folder_id)   # MD5 dedupe, streamed, resumable
>>> md.download_item(up.item.item_id, "out/")                       # MD5-verified, atomic, resumable
>>> md.folder_children(folder.folder_id).items;  md.search_items("scan.nrrd");  md.version()

:class:`AsyncMidasClient` offers the same calls, awaited. The token is obtained on first use and renewed when
the server says it expired (-101). ``stat: fail`` answers raise :mod:`scibind.errors` classes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from ._auth import MidasTokenAuth
    from ._client import AsyncMidasClient, MidasClient, MidasLogin, UploadResult
    from ._wire import MidasTransferError

__all__ = [
    "AsyncMidasClient",
    "MidasClient",
    "MidasLogin",
    "MidasTokenAuth",
    "MidasTransferError",
    "UploadResult",
]

_EXPORTS = {
    "AsyncMidasClient": "._client",
    "MidasClient": "._client",
    "MidasLogin": "._client",
    "UploadResult": "._client",
    "MidasTokenAuth": "._auth",
    "MidasTransferError": "._wire",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)
