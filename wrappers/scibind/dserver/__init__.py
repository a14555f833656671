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

from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
