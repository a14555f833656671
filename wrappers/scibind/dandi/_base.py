"""Connection, credentials and helpers shared by every group of DANDI operations; server and user calls."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from .. import errors
from .._core import effects as fx
from .._core.drivers import Runtime
from .._core.facade import operation
from .._core.secrets import Secret
from ..config import ClientConfig
from ._errors import dandi_error_message
from ._instances import DandiInstance, resolve_api_key, resolve_instance
from ._models import Dandiset, check_version_id, normalize_dandiset_id

if TYPE_CHECKING:
    from scibind_generated.dandi.models import (
        ApiInfo,
        DandisetDetail,
        SchemaModelName,
        Stats,
    )

__all__ = ["DANDI_PART_SIZE", "DandiBase"]

DANDI_PART_SIZE = 64 * 1024 * 1024
"""The dandi-etag part size of every DANDI deployment (dandischema's rule; same as scibind.transfers')."""

T = TypeVar("T")
DandisetRef = str | int | Dandiset


class DandiBase:
    """State and helpers of a DANDI client (see :class:`~scibind.dandi.DandiClient`)."""

    service: ClassVar[str] = "dandi"
    generated_package: ClassVar[str | None] = "scibind_generated.dandi"
    runtime: ClassVar[Runtime] = Runtime(message=dandi_error_message)
    _driver: Any
    _http: Any
    base_url: str
    config: ClientConfig

    def __init__(
        self,
        instance: str | None = None,
        *,
        api_key: str | Secret | None = None,
        config: ClientConfig | None = None,
        transport: Any = None,
        part_size: int = DANDI_PART_SIZE,
    ) -> None:
        """Connect to a DANDI instance: ``"dandi"``, ``"dandi-sandbox"``, another known name, or an API URL.

        ``None`` means ``$DANDI_INSTANCE`` (default ``dandi``). The API key is optional (public data can be
        read anonymously); first found wins: ``api_key``; ``$<INSTANCE>_API_KEY`` (``DANDI_API_KEY``,
        ``DANDI_SANDBOX_API_KEY``, ...; an unknown URL also tries ``$DANDI_API_KEY``); the keyring entry
        ``dandi-api-<instance>``/``key`` (as dandi-cli stores it, including its keyrings.alt file fallback). It is sent as ``Authorization: token KEY`` to the API host only.

        ``part_size`` is the dandi-etag part size of the server (64 MiB on every DANDI deployment); change it
        only to talk to a test server configured otherwise.
        """
        from ..auth import HeaderAuth

        if part_size < 1:
            raise errors.ConfigurationError("part_size must be positive")
        self.instance: DandiInstance = resolve_instance(instance)
        self.part_size = part_size
        key = resolve_api_key(self.instance, api_key)
        auth = HeaderAuth(key, scheme="token") if key else None
        self.authenticated = auth is not None
        self._connect(  # type: ignore[attr-defined]
            self.instance.api_url, auth=auth, config=config, transport=transport
        )

    @property
    def api_url(self) -> str:
        """The instance's API URL (``https://api.dandiarchive.org/api``)."""
        return self.base_url

    # -- helpers shared by the operations ---------------------------------------------------------------
    def _detail(self, dandiset_id: str) -> fx.Op[DandisetDetail]:
        from scibind_generated.dandi.api.dandisets import get_dandiset as ep

        resp = yield fx.Call(ep, {"dandiset_id": dandiset_id})
        return resp.parsed  # type: ignore[no-any-return]

    def _resolve(
        self, dandiset: DandisetRef, version_id: str | None = None
    ) -> fx.Op[tuple[str, str]]:
        """``(dandiset_id, version_id)``; an unknown version is the most recent published, else the draft."""
        ident = normalize_dandiset_id(dandiset)
        version = version_id or (dandiset.version_id if isinstance(dandiset, Dandiset) else None)
        if version is None:
            if isinstance(dandiset, Dandiset) and dandiset.data is not None:
                version = Dandiset.from_data(dandiset.data).version_id
            else:
                version = Dandiset.from_data((yield from self._detail(ident))).version_id
        return ident, check_version_id(str(version))

    @staticmethod
    def _draft(dandiset: DandisetRef) -> str:
        """The identifier of a dandiset whose draft a write goes to."""
        return normalize_dandiset_id(dandiset)

    def _wait(
        self,
        probe: Callable[[], fx.Op[tuple[bool, T]]],
        *,
        timeout: float,
        poll_interval: float,
        what: str,
    ) -> fx.Op[T]:
        """Call ``probe`` until it reports done; TimeoutError after ``timeout`` seconds.

        Waits between calls start short (0.25 s) and grow to ``poll_interval``, so quick server-side work is
        seen quickly and long work is not polled hard.
        """
        deadline = time.monotonic() + timeout
        longest = max(0.0, poll_interval)
        delay = min(0.25, longest)
        while True:
            done, value = yield from probe()
            if done:
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise errors.TimeoutError(f"{what} did not finish within {timeout:g} s")
            yield fx.Sleep(min(delay, remaining))
            delay = min(delay * 1.5, longest)

    # -- server ------------------------------------------------------------------------------------------
    @operation
    def info(self) -> fx.Op[ApiInfo]:
        """Server information: versions, schema version, services, client requirements."""
        from scibind_generated.dandi.api.info import get_server_info as ep

        resp = yield fx.Call(ep)
        return resp.parsed  # type: ignore[no-any-return]

    @operation
    def stats(self) -> fx.Op[Stats]:
        """Archive-wide counts and total size."""
        from scibind_generated.dandi.api.stats import get_stats as ep

        resp = yield fx.Call(ep)
        return resp.parsed  # type: ignore[no-any-return]

    @operation
    def get_schema(self, model: SchemaModelName = "Dandiset") -> fx.Op[dict[str, Any]]:
        """The JSON Schema of a metadata model (``Dandiset``, ``Asset``, ``PublishedDandiset``, ...)."""
        from scibind_generated.dandi.api.schemas import get_schema as ep

        resp = yield fx.Call(ep, {"model": model})
        return dict(resp.parsed.additional_properties)
