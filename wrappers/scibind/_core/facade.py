"""Facade base classes: one operations mixin per service, exposed as a sync and an async client.

::

    class _Ops:                               # logic, once
        @operation
        def get_thing(self, id: str) -> Op[Thing]:
            resp = yield Call(ep, {"id": id})
            return Thing.from_generated(resp.parsed)

    class Client(_Ops, SyncFacade): ...       # client.get_thing("x") -> Thing
    class AsyncClient(_Ops, AsyncFacade): ... # await aclient.get_thing("x") -> Thing

The operations mixin's ``__init__`` resolves credentials and calls :meth:`FacadeBase._connect`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine, Iterable
from types import TracebackType
from typing import (
    Any,
    ClassVar,
    Concatenate,
    Generic,
    ParamSpec,
    Self,
    TypeVar,
    overload,
)

import httpx

from ..config import ClientConfig
from .drivers import AsyncDriver, Runtime, SyncDriver
from .effects import Op
from .http import build_async_client, build_sync_client
from .secrets import redact_url

__all__ = ["AsyncFacade", "FacadeBase", "SyncFacade", "operation"]

P = ParamSpec("P")
T = TypeVar("T")


class FacadeBase:
    """State shared by sync and async facades. Subclasses set the class variables."""

    service: ClassVar[str] = "http"
    """Short service name (user agent, messages)."""
    generated_package: ClassVar[str | None] = None
    """Import path of the generated low-level client, e.g. ``scibind_generated.dserver``."""
    runtime: ClassVar[Runtime] = Runtime()

    base_url: str
    config: ClientConfig

    _http: Any
    _driver: Any
    _build_client: ClassVar[Callable[..., Any]]
    _driver_class: ClassVar[type[Any]]

    def _connect(
        self,
        base_url: str,
        *,
        auth: httpx.Auth | None = None,
        config: ClientConfig | None = None,
        transport: Any = None,
        origins: Iterable[str] = (),
    ) -> None:
        """Build the httpx client (sync or async, per subclass) and the driver that runs operations."""
        self.base_url = base_url
        self.config = config or ClientConfig()
        self._http = type(self)._build_client(
            self.config,
            base_url,
            auth=auth,
            service=self.service,
            transport=transport,
            origins=origins,
        )
        self._driver = self._driver_class(self._http, self.runtime, self.config)

    @property
    def raw(self) -> Any:
        """The generated low-level client, sharing this client's auth, retries and timeouts
        (on an async client use its ``asyncio``/``asyncio_detailed`` functions)."""
        return self._raw_client(self._http)

    def _raw_client(self, http: Any) -> Any:
        if self.generated_package is None:
            raise AttributeError(f"{type(self).__name__} has no generated client")
        import importlib

        module = importlib.import_module(f"{self.generated_package}.client")
        raw = module.Client(base_url=self.base_url)
        setter = (
            raw.set_async_httpx_client
            if isinstance(http, httpx.AsyncClient)
            else raw.set_httpx_client
        )
        setter(http)
        return raw

    def __repr__(self) -> str:
        return f"{type(self).__name__}({redact_url(self.base_url)!r})"


class SyncFacade(FacadeBase):
    """A blocking client. Use as a context manager or call :meth:`close`."""

    _http: httpx.Client
    _driver: SyncDriver

    _build_client = staticmethod(build_sync_client)
    _driver_class = SyncDriver

    def _run(self, op: Op[T]) -> T:
        return self._driver.run(op)

    @property
    def http(self) -> httpx.Client:
        """The underlying :class:`httpx.Client` (auth scoped to the service origin)."""
        return self._http

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncFacade(FacadeBase):
    """An asyncio client. Use as an async context manager or await :meth:`aclose`."""

    _http: httpx.AsyncClient
    _driver: AsyncDriver

    _build_client = staticmethod(build_async_client)
    _driver_class = AsyncDriver

    async def _run(self, op: Op[T]) -> T:
        return await self._driver.run(op)

    @property
    def http(self) -> httpx.AsyncClient:
        """The underlying :class:`httpx.AsyncClient` (auth scoped to the service origin)."""
        return self._http

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class operation(Generic[P, T]):
    """Turn an operation (a generator of effects) into a method of both the sync and the async facade.

    On a :class:`SyncFacade` the method returns ``T``; on an :class:`AsyncFacade` it returns an awaitable of ``T``.
    """

    def __init__(self, fn: Callable[Concatenate[Any, P], Op[T]]) -> None:
        self.fn = fn
        functools.update_wrapper(self, fn)

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Self: ...
    @overload
    def __get__(self, obj: SyncFacade, owner: type | None = None) -> Callable[P, T]: ...
    @overload
    def __get__(
        self, obj: AsyncFacade, owner: type | None = None
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...
    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        fn = self.fn
        if isinstance(obj, AsyncFacade):

            async def run_async(*args: Any, **kwargs: Any) -> Any:
                return await obj._run(fn(obj, *args, **kwargs))

            return functools.update_wrapper(run_async, fn)
        if isinstance(obj, SyncFacade):

            def run_sync(*args: Any, **kwargs: Any) -> Any:
                return obj._run(fn(obj, *args, **kwargs))

            return functools.update_wrapper(run_sync, fn)
        raise TypeError(f"{type(obj).__name__} is neither a SyncFacade nor an AsyncFacade")

    def __call__(self, obj: Any, /, *args: P.args, **kwargs: P.kwargs) -> Any:
        """Called through the class (``DServer.get_manifest(client, uri)``), like a plain method; this also
        lets ``help()`` and ``inspect.signature`` show the operation's signature on the class."""
        return self.__get__(obj, type(obj))(*args, **kwargs)
