"""A tiny stand-in for a generated service, to test the core without any real spec."""

from __future__ import annotations

import types
from http import HTTPStatus
from typing import Any

import httpx
from scibind._core import effects as fx
from scibind._core.facade import AsyncFacade, SyncFacade, operation
from scibind.pagination import Page, Paginator, x_pagination_page


def endpoint(method: str, path: str, parse: Any = None) -> types.ModuleType:
    """A module shaped like openapi-python-client's endpoint modules (``_get_kwargs``/``_build_response``)."""
    mod = types.ModuleType(f"toy_{method}_{path}")

    def _get_kwargs(**kw: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"method": method, "url": path.format(**kw.get("path", {}))}
        if "params" in kw:
            out["params"] = kw["params"]
        if "json" in kw:
            out["json"] = kw["json"]
        return out

    def _build_response(*, client: Any, response: httpx.Response) -> Any:
        parsed = parse(response.json()) if parse else None
        return types.SimpleNamespace(
            status_code=HTTPStatus(response.status_code),
            headers=response.headers,
            content=response.content,
            parsed=parsed,
        )

    mod._get_kwargs = _get_kwargs  # type: ignore[attr-defined]
    mod._build_response = _build_response  # type: ignore[attr-defined]
    return mod


GET_THING = endpoint("GET", "/things/{id}", parse=lambda d: {"id": d["id"], "size": int(d["size"])})
LIST_THINGS = endpoint("GET", "/things", parse=lambda d: [x["id"] for x in d])
MAKE_THING = endpoint("POST", "/things", parse=lambda d: d)


class _ToyOps:
    service = "toy"

    def __init__(
        self,
        base_url: str = "https://toy.test/api",
        *,
        transport: Any = None,
        auth: Any = None,
        config: Any = None,
    ) -> None:
        self._connect(base_url, transport=transport, auth=auth, config=config)  # type: ignore[attr-defined]

    @operation
    def get_thing(self, id: str) -> fx.Op[dict[str, Any]]:
        """One thing."""
        resp = yield fx.Call(GET_THING, {"path": {"id": id}})
        return resp.parsed  # type: ignore[no-any-return]

    @operation
    def get_or_none(self, id: str) -> fx.Op[dict[str, Any] | None]:
        from scibind.errors import NotFoundError

        try:
            resp = yield fx.Call(GET_THING, {"path": {"id": id}})
        except NotFoundError:
            return None
        return resp.parsed  # type: ignore[no-any-return]

    @operation
    def get_many(self, ids: list[str]) -> fx.Op[list[dict[str, Any]]]:
        results = yield fx.Parallel([self._one(i) for i in ids], limit=4)
        return results  # type: ignore[no-any-return]

    def _one(self, id: str) -> fx.Op[dict[str, Any]]:
        resp = yield fx.Call(GET_THING, {"path": {"id": id}})
        return resp.parsed  # type: ignore[no-any-return]

    @operation
    def make_thing(self, body: dict[str, Any], *, idempotent: bool | None = None) -> fx.Op[Any]:
        resp = yield fx.Call(MAKE_THING, {"json": body}, idempotent=idempotent)
        return resp.parsed

    def things(self, page_size: int = 10, **kw: Any) -> Paginator[str]:
        def fetch(page: int) -> fx.Op[Page[str]]:
            resp = yield fx.Call(LIST_THINGS, {"params": {"page": page, "page_size": page_size}})
            return x_pagination_page(resp.parsed, resp.headers)

        return Paginator(self._driver, fetch, **kw)  # type: ignore[attr-defined]


class Toy(_ToyOps, SyncFacade):
    pass


class AsyncToy(_ToyOps, AsyncFacade):
    pass
