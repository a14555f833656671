"""Keep httpx's command-line client out of library imports.

``import httpx`` runs ``from ._main import main``, which imports the dependencies of httpx's command-line client
(click, pygments, rich) whenever they happen to be installed: ~70 ms, a third of the import time of a scibind
client, for a tool a library never runs. :func:`defer_httpx_cli`, called by ``import scibind`` before anything
imports httpx, installs a one-shot import hook: when httpx imports ``httpx._main``, it gets a stand-in whose
``main`` (and any other attribute) loads the real module on first use, so ``httpx.main()`` and
``from httpx._main import ...`` work as before. Nothing is imported until httpx is; when httpx was imported
already, nothing changes.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import sys
import types
from collections.abc import Sequence
from typing import Any

__all__ = ["defer_httpx_cli"]

_NAME = "httpx._main"
_MISSING = (
    "The httpx command line client could not run because the required dependencies were not "
    "installed.\nMake sure you've installed everything with: pip install 'httpx[cli]'"
)


class _DeferredCLI(types.ModuleType):
    """Stands in for ``httpx._main`` until one of its attributes is used."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(_load(), name)


def _load() -> types.ModuleType:
    """The real ``httpx._main`` (imported now if it was not)."""
    if isinstance(sys.modules.get(_NAME), _DeferredCLI):
        del sys.modules[_NAME]
    return importlib.import_module(_NAME)


def _main(*args: Any, **kwargs: Any) -> Any:
    """httpx's command-line entry point, loaded when called."""
    try:
        real = _load()
    except ImportError:  # what httpx itself does without its CLI extras
        print(_MISSING)
        sys.exit(1)
    return real.main(*args, **kwargs)


class _Loader:
    """Makes the stand-in module (an importlib loader)."""

    @staticmethod
    def create_module(spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return _DeferredCLI(spec.name, "httpx's command-line client, imported on first use")

    @staticmethod
    def exec_module(module: types.ModuleType) -> None:
        module.main = _main  # type: ignore[attr-defined]


class _Hook:
    """A one-shot meta path finder: answers the first import of ``httpx._main`` with the stand-in."""

    @classmethod
    def find_spec(
        cls, fullname: str, path: Sequence[str] | None = None, target: Any = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != _NAME:
            return None
        if cls in sys.meta_path:
            sys.meta_path.remove(cls)
        return importlib.machinery.ModuleSpec(_NAME, _Loader())  # type: ignore[arg-type]


def defer_httpx_cli() -> None:
    """Install the hook, unless httpx (or its CLI module) is imported already, or ``SCIBIND_EAGER_HTTPX_CLI``
    is set (an opt-out for environments that want httpx left exactly as it is)."""
    if os.environ.get("SCIBIND_EAGER_HTTPX_CLI"):
        return
    if "httpx" in sys.modules or _NAME in sys.modules or _Hook in sys.meta_path:
        return
    sys.meta_path.insert(0, _Hook)
