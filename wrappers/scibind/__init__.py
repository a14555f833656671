"""scibind: typed, safe and fast clients for research-data services.

``import scibind`` is cheap: it imports no service and not httpx. Use the service packages::

    from scibind.dserver import DServer
    from scibind.dandi import DandiClient
    from scibind.gen3 import Gen3Client
    from scibind.mytardis import MyTardisClient
    from scibind.midas import MidasClient
"""

from __future__ import annotations

import importlib
from typing import Any

from ._core.httpx_cli import defer_httpx_cli

defer_httpx_cli()  # httpx's CLI (click, rich, pygments) loads only if it is used

__all__ = ["__version__", "config", "errors"]

_LAZY_SUBMODULES = {
    "config",
    "errors",
    "auth",
    "pagination",
    "dserver",
    "dandi",
    "gen3",
    "mytardis",
    "midas",
    "testing",
    "transfers",
}


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from ._version import __version__

        return __version__
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*__all__, *_LAZY_SUBMODULES])
