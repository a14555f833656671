"""Client for dserver, the dtool lookup server.

>>> from scibind.dserver import DServer
>>> ds = DServer("https://dserver.example.org")          # token from DSERVER_TOKEN / dtool config / generator
>>> [d.uri for d in ds.search("microscopy", tags=["raw"], max_items=5)]
>>> ds.get_manifest(uri).items;  ds.get_readme_parsed(uri);  ds.get_annotations(uri);  ds.get_tags(uri)
>>> list(ds.query({"readme.project": "X"}));  ds.me();  ds.summary();  ds.versions()

:class:`AsyncDServer` offers the same calls, awaited (``async for`` over listings). Results are the typed models
generated from the server's own OpenAPI document (``scibind_generated.dserver.models``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from ._auth import TokenGeneratorMinter, dserver_auth
    from ._client import AsyncDServer, DatasetPage, DServer

__all__ = ["AsyncDServer", "DServer", "DatasetPage", "TokenGeneratorMinter", "dserver_auth"]

_EXPORTS = {
    "AsyncDServer": "._client",
    "DServer": "._client",
    "DatasetPage": "._client",
    "TokenGeneratorMinter": "._auth",
    "dserver_auth": "._auth",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)
