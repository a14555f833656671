"""Plumbing shared by the Midas operation mixins: connection, calling a JSON API method, download redirects."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

import attrs
import httpx

from .. import errors
from .._core import effects as fx
from .._core.drivers import Runtime
from .._core.facade import AsyncFacade
from .._core.secrets import Secret
from ..config import ClientConfig
from ._auth import midas_auth, midas_url
from ._wire import AsyncMidasTransport, MidasTransport, detect

if TYPE_CHECKING:
    from scibind_generated.midas.models import Item


__all__ = ["Id"]

Id = int | str
"""A Midas id: the API sends them as decimal text and takes numbers."""


def _ep(name: str) -> ModuleType:
    """A generated endpoint module, imported on first use (``"items.get_item"``)."""
    return importlib.import_module(f"scibind_generated.midas.api.{name}")


def _models() -> ModuleType:
    return importlib.import_module("scibind_generated.midas.models")


def _data(value: Any) -> Any:
    """The envelope's ``data`` (``None`` when unset, e.g. for deletions)."""
    from scibind_generated.midas.types import Unset

    return None if isinstance(value, Unset) else value


def _target(dest: str | os.PathLike[str], name: str) -> Path:
    path = Path(dest)
    return path / name if path.is_dir() else path


def _flag(value: bool) -> str | None:
    """Midas flags are "present or absent"."""
    return "true" if value else None


def _int(value: Any) -> int | None:
    value = _data(value)
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


class _MidasBase:
    """Connection and plumbing; the calls live in the mixins of :mod:`._client`."""

    service: ClassVar[str] = "midas"
    generated_package: ClassVar[str | None] = "scibind_generated.midas"
    runtime: ClassVar[Runtime] = Runtime(detect=detect)
    _driver: Any
    base_url: str
    config: ClientConfig

    def __init__(
        self,
        base_url: str | None = None,
        *,
        email: str | None = None,
        api_key: str | Secret | None = None,
        appname: str | None = None,
        token: str | Secret | None = None,
        otp: Callable[[], str] | None = None,
        anonymous: bool = False,
        config: ClientConfig | None = None,
        transport: Any = None,
    ) -> None:
        """Connect to the Midas Server at ``base_url`` (default: ``MIDAS_URL``).

        Signs in with ``email`` + ``api_key`` (``MIDAS_EMAIL`` / ``MIDAS_API_KEY``, application ``appname``,
        default ``Default``) on first use and again whenever the token expires; ``otp`` supplies one-time
        passwords for accounts with multi-factor authentication. A ready ``token`` (``MIDAS_TOKEN``) is used
        as is. ``anonymous=True`` allows no credentials (public data only).
        """
        config = config or ClientConfig()
        url = midas_url(base_url)
        auth = midas_auth(
            url,
            email=email,
            api_key=api_key,
            appname=appname,
            token=token,
            otp=otp,
            anonymous=anonymous,
        )
        if isinstance(self, AsyncFacade):
            inner = transport or httpx.AsyncHTTPTransport(
                verify=config.verify,
                http2=config.http2,
                limits=config.httpx_limits(),
                proxy=config.proxy,
                trust_env=config.trust_env,
            )
            wire: Any = AsyncMidasTransport(inner)
        else:
            inner = transport or httpx.HTTPTransport(
                verify=config.verify,
                http2=config.http2,
                limits=config.httpx_limits(),
                proxy=config.proxy,
                trust_env=config.trust_env,
            )
            wire = MidasTransport(inner)
        self.auth = auth
        """The token flow (``None`` when anonymous); ``auth.login_count`` tells how often it logged in."""
        self._connect(url, auth=auth, config=config, transport=wire)  # type: ignore[attr-defined]

    # -- plumbing -------------------------------------------------------------------------------------------
    def _call(
        self,
        endpoint: str,
        params_model: str | None = None,
        fields: Mapping[str, Any] | None = None,
        *,
        idempotent: bool = False,
    ) -> fx.Op[Any]:
        """Run a JSON API method; returns the envelope's ``data`` (typed by the generated models)."""
        kwargs: dict[str, Any] = {}
        if params_model is not None:
            model = getattr(_models(), params_model)
            body = {k: v for k, v in (fields or {}).items() if v is not None}
            if "token" in attrs.fields_dict(model):
                body.setdefault("token", "")  # filled in by the auth flow (dropped when anonymous)
            kwargs["body"] = model.from_dict(body)
        resp = yield fx.Call(_ep(endpoint), kwargs, idempotent=True if idempotent else None)
        return _data(resp.parsed.data)

    def _redirect(self, endpoint: str, **params: Any) -> fx.Op[str]:
        """The download URL a download method redirects to (it carries its own ``authToken``)."""
        kwargs = _ep(endpoint)._get_kwargs(**{k: v for k, v in params.items() if v is not None})
        resp = yield fx.Request("GET", kwargs["url"], params=kwargs["params"], idempotent=True)
        location = resp.headers.get("Location")
        if resp.status_code not in (301, 302, 303, 307, 308) or not location:
            raise errors.ResponseFormatError(
                f"expected a redirect to the download, got HTTP {resp.status_code}",
                status=resp.status_code,
            )
        return str(resp.request.url.join(location))

    def _create_item(
        self,
        name: str,
        parent_id: Id,
        description: str | None = None,
        uuid: str | None = None,
        privacy: str | None = None,
    ) -> fx.Op[Item]:
        return (  # type: ignore[no-any-return]
            yield from self._call(
                "items.create_item",
                "CreateItemParams",
                {
                    "name": name,
                    "parentid": int(parent_id),
                    "description": description,
                    "uuid": uuid,
                    "privacy": privacy,
                },
            )
        )

    def _search_items(self, name: str, folder_id: Id | None) -> fx.Op[list[Item]]:
        if folder_id is None:
            data = yield from self._call(
                "items.search_items_by_name",
                "SearchItemsByNameParams",
                {"name": name},
                idempotent=True,
            )
        else:
            data = yield from self._call(
                "items.search_items_by_name_in_folder",
                "SearchItemsByNameInFolderParams",
                {"name": name, "folderId": int(folder_id)},
                idempotent=True,
            )
        return list(data.items)
