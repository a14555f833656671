"""Client for dserver, the dtool lookup server.

>>> from scibind.dserver import DServer
>>> ds = DServer("https://dserver.example.org")          # token from DSERVER_TOKEN / dtool config / generator
>>> [d.uri for d in ds.search("microscopy", tags=["raw"], max_items=5)]
>>> ds.get_manifest(uri).items;  ds.get_readme_parsed(uri);  ds.get_annotations(uri);  ds.get_tags(uri)
>>> list(ds.query({"readme.project": "X"}));  ds.me();  ds.summary();  ds.versions()
>>> [(d.name, d.derived_from) for d in ds.graph(uuid)]     # dependency graph (plugin)

:class:`AsyncDServer` offers the same calls, awaited (``async for`` over listings). Results are the typed models
generated from the server's own OpenAPI document (``scibind_generated.dserver.models``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from ._auth import DServerTokenAuth, TokenGeneratorMinter, dserver_auth
    from ._client import DEFAULT_DEPENDENCY_KEYS, AsyncDServer, DatasetPage, DServer
    from ._errors import ReadmeFormatError

__all__ = [
    "DEFAULT_DEPENDENCY_KEYS",
    "AsyncDServer",
    "DServer",
    "DServerTokenAuth",
    "DatasetPage",
    "ReadmeFormatError",
    "TokenGeneratorMinter",
    "dserver_auth",
]

_EXPORTS = {
    "DEFAULT_DEPENDENCY_KEYS": "._client",
    "AsyncDServer": "._client",
    "DServer": "._client",
    "DServerTokenAuth": "._auth",
    "DatasetPage": "._client",
    "ReadmeFormatError": "._errors",
    "TokenGeneratorMinter": "._auth",
    "dserver_auth": "._auth",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)
