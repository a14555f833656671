"""The Midas Server client: :class:`MidasClient` and :class:`AsyncMidasClient` from one code base.

Like pydas's ``Communicator``, one client offers the calls of every driver (core, batchmake, dicomextractor,
multi-factor auth, solr, thumbnail creator, tracker) as methods: the core driver here, transfers in
:mod:`._transfers`, the module drivers in :mod:`._modules`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from .. import errors
from .._core import effects as fx
from .._core.facade import AsyncFacade, SyncFacade, operation
from .._core.secrets import Secret, redact_url
from ._base import Id, _data, _ep, _flag, _MidasBase
from ._modules import _ModuleOps
from ._transfers import UploadResult, _TransferOps

if TYPE_CHECKING:
    from scibind_generated.midas.models import (
        BitstreamCount,
        BitstreamInfo,
        Community,
        Folder,
        FolderChildren,
        FolderWithParent,
        InfoResult,
        Item,
        ItemDetail,
        ItemWithOwners,
        Metadatum,
        SearchResult,
        User,
    )


__all__ = ["AsyncMidasClient", "MidasClient", "MidasLogin", "UploadResult"]


@attrs.frozen
class MidasLogin:
    """Result of :meth:`login_with_api_key`: a token, or the id to finish a one-time-password login with."""

    token: Secret | None
    mfa_token_id: str | None


class _CoreOps(_MidasBase):
    """pydas's core driver: server, users, communities, folders, items, bitstreams."""

    # =====================================================================================================
    # core driver: server, users
    # =====================================================================================================
    @operation
    def version(self) -> fx.Op[str]:
        """The server's version (``major.minor.patch``)."""
        data = yield from self._call("system.version", idempotent=True)
        return str(data.version)

    @operation
    def info(self) -> fx.Op[InfoResult]:
        """Server name, version, enabled modules and REST resources."""
        return (yield from self._call("system.info", idempotent=True))  # type: ignore[no-any-return]

    @operation
    def list_modules(self) -> fx.Op[list[str]]:
        """Enabled modules."""
        data = yield from self._call("system.list_modules", idempotent=True)
        return list(data.modules)

    @operation
    def login_with_api_key(
        self, email: str, api_key: str | Secret, appname: str = "Default"
    ) -> fx.Op[MidasLogin]:
        """Exchange an API key for a token yourself (the client does this on its own when needed)."""
        key = api_key.reveal() if isinstance(api_key, Secret) else api_key
        data = yield from self._call(
            "system.login",
            "LoginParams",
            {"email": email, "apikey": key, "appname": appname},
        )
        token = _data(data.token)
        return MidasLogin(Secret(token) if token else None, _data(data.mfa_token_id))

    @operation
    def get_default_api_key(self, email: str, password: str | Secret) -> fx.Op[Secret]:
        """The default API key of an account, from its password."""
        pw = password.reveal() if isinstance(password, Secret) else password
        data = yield from self._call(
            "system.get_default_apikey",
            "GetDefaultApikeyParams",
            {"email": email, "password": pw},
        )
        return Secret(str(data.apikey))

    @operation
    def search(self, text: str, *, order: str | None = None) -> fx.Op[SearchResult]:
        """Items, folders, communities and users matching ``text`` (order: view, name, date, relevance)."""
        return (  # type: ignore[no-any-return]
            yield from self._call(
                "system.search_resources",
                "SearchResourcesParams",
                {"search": text, "order": order},
                idempotent=True,
            )
        )

    @operation
    def list_users(self, limit: int = 20) -> fx.Op[list[User]]:
        """Public users, at most ``limit``."""
        return (  # type: ignore[no-any-return]
            yield from self._call(
                "users.list_users", "ListUsersParams", {"limit": limit}, idempotent=True
            )
        )

    @operation
    def get_user(
        self,
        user_id: Id | None = None,
        *,
        email: str | None = None,
        firstname: str | None = None,
        lastname: str | None = None,
    ) -> fx.Op[User]:
        """A user by id, email, or first and last name; :class:`~scibind.errors.NotFoundError` if none."""
        from scibind_generated.midas.models import GetUserParams, GetUserResponse

        fields = {
            "user_id": int(user_id) if user_id is not None else None,
            "email": email,
            "firstname": firstname,
            "lastname": lastname,
        }
        body = GetUserParams.from_dict({k: v for k, v in fields.items() if v is not None})
        kwargs = _ep("users.get_user")._get_kwargs(body=body)
        resp = yield fx.Request(
            "POST",
            kwargs["url"],
            params=kwargs["params"],
            data=kwargs["data"],
            headers=kwargs["headers"],
            idempotent=True,
        )
        payload = resp.json()
        if payload.get("data") is False:  # Midas answers false for "no such user"
            raise errors.NotFoundError(
                "midas.user.get: no such user",
                status=resp.status_code,
                method="POST",
                url=redact_url(resp.request.url),
            )
        return _data(GetUserResponse.from_dict(payload).data)  # type: ignore[no-any-return]

    @operation
    def list_user_folders(self) -> fx.Op[list[Folder]]:
        """Your top folders (Public, Private...)."""
        return (  # type: ignore[no-any-return]
            yield from self._call(
                "users.list_user_folders", "ListUserFoldersParams", {}, idempotent=True
            )
        )

    # =====================================================================================================
    # core driver: communities
    # =====================================================================================================
    @operation
    def list_communities(self) -> fx.Op[list[Community]]:
        """Communities you may see."""
        return (  # type: ignore[no-any-return]
            yield from self._call(
                "communities.list_communities", "ListCommunitiesParams", {}, idempotent=True
            )
        )

    @operation
    def get_community(
        self, community_id: Id | None = None, *, name: str | None = None
    ) -> fx.Op[Community]:
        """A community by id or by name."""
        if (community_id is None) == (name is None):
            raise errors.ConfigurationError("get_community needs an id or a name")
        return (  # type: ignore[no-any-return]
            yield from self._call(
                "communities.get_community",
                "GetCommunityParams",
                {"id": int(community_id) if community_id is not None else None, "name": name},
                idempotent=True,
            )
        )

    @operation
    def create_community(
        self,
        name: str,
        *,
        description: str | None = None,
        uuid: str | None = None,
        privacy: str | None = None,
        can_join: str | None = None,
    ) -> fx.Op[Community]:
        """Create a community (administrators; ``privacy`` Public/Private, ``can_join`` Everyone/Invitation)."""
        return (  # type: ignore[no-any-return]
            yield from self._call(
                "communities.create_community",
                "CreateCommunityParams",
                {
                    "name": name,
                    "description": description,
                    "uuid": uuid,
                    "privacy": privacy,
                    "canjoin": can_join,
                },
            )
        )

    @operation
    def get_community_children(self, community_id: Id) -> fx.Op[list[Folder]]:
        """The top folders of a community."""
        data = yield from self._call(
            "communities.get_community_children",
            "GetCommunityChildrenParams",
            {"id": int(community_id)},
            idempotent=True,
        )
        return list(data.folders)

    @operation
    def delete_community(self, community_id: Id) -> fx.Op[None]:
        """Delete a community and everything in it."""
        yield from self._call(
            "communities.delete_community", "DeleteCommunityParams", {"id": int(community_id)}
        )

    # =====================================================================================================
    # core driver: folders
    # =====================================================================================================
    @operation
    def get_folder(self, folder_id: Id) -> fx.Op[FolderWithParent]:
        """A folder, with its parent."""
        return (  # type: ignore[no-any-return]
            yield from self._call(
                "folders.get_folder", "GetFolderParams", {"id": int(folder_id)}, idempotent=True
            )
        )

    @operation
    def create_folder(
        self,
        name: str,
        parent_id: Id,
        *,
        description: str | None = None,
        uuid: str | None = None,
        privacy: str | None = None,
        reuse_existing: bool = False,
    ) -> fx.Op[Folder]:
        """Create a folder in ``parent_id`` (-1: your top level); ``reuse_existing`` returns a same-named one."""
        return (  # type: ignore[no-any-return]
            yield from self._call(
                "folders.create_folder",
                "CreateFolderParams",
                {
                    "name": name,
                    "parentid": int(parent_id),
                    "description": description,
                    "uuid": uuid,
                    "privacy": privacy,
                    "reuseExisting": _flag(reuse_existing),
                },
            )
        )

    @operation
    def folder_children(self, folder_id: Id) -> fx.Op[FolderChildren]:
        """The folders and items directly in a folder."""
        return (  # type: ignore[no-any-return]
            yield from self._call(
                "folders.get_folder_children",
                "GetFolderChildrenParams",
                {"id": int(folder_id)},
                idempotent=True,
            )
        )

    @operation
    def move_folder(self, folder_id: Id, dest_folder_id: Id) -> fx.Op[Folder]:
        """Move a folder into another one."""
        return (  # type: ignore[no-any-return]
            yield from self._call(
                "folders.move_folder",
                "MoveFolderParams",
                {"id": int(folder_id), "dstfolderid": int(dest_folder_id)},
            )
        )

    @operation
    def delete_folder(self, folder_id: Id) -> fx.Op[None]:
        """Delete a folder and its contents."""
        yield from self._call("folders.delete_folder", "DeleteFolderParams", {"id": int(folder_id)})

    # =====================================================================================================
    # core driver: items
    # =====================================================================================================
    @operation
    def get_item(self, item_id: Id, *, head: bool = False) -> fx.Op[ItemDetail]:
        """An item with its revisions and bitstreams (``head``: only the last revision)."""
        return (  # type: ignore[no-any-return]
            yield from self._call(
                "items.get_item",
                "GetItemParams",
                {"id": int(item_id), "head": _flag(head)},
                idempotent=True,
            )
        )

    @operation
    def create_item(
        self,
        name: str,
        parent_id: Id,
        *,
        description: str | None = None,
        uuid: str | None = None,
        privacy: str | None = None,
    ) -> fx.Op[Item]:
        """Create an item in a folder."""
        return (yield from self._create_item(name, parent_id, description, uuid, privacy))

    @operation
    def delete_item(self, item_id: Id) -> fx.Op[None]:
        """Delete an item."""
        yield from self._call("items.delete_item", "DeleteItemParams", {"id": int(item_id)})

    @operation
    def move_item(
        self, item_id: Id, src_folder_id: Id, dest_folder_id: Id
    ) -> fx.Op[ItemWithOwners]:
        """Move an item from one folder to another."""
        return (  # type: ignore[no-any-return]
            yield from self._call(
                "items.move_item",
                "MoveItemParams",
                {
                    "id": int(item_id),
                    "srcfolderid": int(src_folder_id),
                    "dstfolderid": int(dest_folder_id),
                },
            )
        )

    @operation
    def share_item(self, item_id: Id, dest_folder_id: Id) -> fx.Op[ItemWithOwners]:
        """Put an item in one more folder."""
        return (  # type: ignore[no-any-return]
            yield from self._call(
                "items.share_item",
                "ShareItemParams",
                {"id": int(item_id), "dstfolderid": int(dest_folder_id)},
            )
        )

    @operation
    def search_items(
        self, name: str, folder_id: Id | None = None, *, folder_name: str | None = None
    ) -> fx.Op[list[Item]]:
        """Items you may read with exactly this name: anywhere, in the folder ``folder_id``, or in any folder
        named ``folder_name`` (each item's ``folder_id`` names one of its folders you may read)."""
        if folder_name is not None:
            if folder_id is not None:
                raise errors.ConfigurationError(
                    "search_items takes folder_id or folder_name, not both"
                )
            data = yield from self._call(
                "items.search_items_by_name_in_folder_named",
                "SearchItemsByNameInFolderNamedParams",
                {"name": name, "folderName": folder_name},
                idempotent=True,
            )
            return list(data.items)
        return (yield from self._search_items(name, folder_id))

    @operation
    def create_link(
        self,
        folder_id: Id,
        url: str,
        *,
        item_name: str | None = None,
        length: int | None = None,
        checksum: str | None = None,
    ) -> fx.Op[Item]:
        """Create an item in a folder holding a link to ``url`` instead of bytes (named after the URL unless
        ``item_name`` is given; ``length`` and ``checksum`` describe what the link points at)."""
        if length is not None and length < 0:
            raise errors.ConfigurationError("length must not be negative")
        return (  # type: ignore[no-any-return]
            yield from self._call(
                "items.create_link",
                "CreateLinkParams",
                {
                    "folderid": int(folder_id),
                    "url": url,
                    "itemname": item_name,
                    "length": length,
                    "checksum": checksum,
                },
            )
        )

    @operation
    def get_item_metadata(
        self, item_id: Id, *, revision: int | None = None
    ) -> fx.Op[list[Metadatum]]:
        """Metadata of an item revision (default: the last)."""
        return (  # type: ignore[no-any-return]
            yield from self._call(
                "items.get_item_metadata",
                "GetItemMetadataParams",
                {"id": int(item_id), "revision": revision},
                idempotent=True,
            )
        )

    @operation
    def set_item_metadata(
        self,
        item_id: Id,
        element: str,
        value: str,
        *,
        qualifier: str | None = None,
        type: int | None = None,
        revision: int | None = None,
    ) -> fx.Op[bool]:
        """Set one metadata value on an item revision (default: the last)."""
        data = yield from self._call(
            "items.set_item_metadata",
            "SetItemMetadataParams",
            {
                "itemId": int(item_id),
                "element": element,
                "value": value,
                "qualifier": qualifier,
                "type": type,
                "revision": revision,
            },
        )
        return bool(data)

    @operation
    def set_item_metadata_many(
        self,
        item_id: Id,
        values: Mapping[str, str] | Iterable[tuple[str, str] | tuple[str, str, str]],
        *,
        revision: int | None = None,
    ) -> fx.Op[bool]:
        """Set several values at once: ``{element: value}`` or ``(element, value[, qualifier])`` tuples."""
        entries = list(values.items()) if isinstance(values, Mapping) else list(values)
        if not entries:
            raise errors.ConfigurationError("set_item_metadata_many needs at least one value")
        fields: dict[str, Any] = {
            "itemid": int(item_id),
            "count": len(entries),
            "revision": revision,
        }
        for i, entry in enumerate(entries, 1):
            fields[f"element_{i}"], fields[f"value_{i}"] = entry[0], entry[1]
            if len(entry) > 2:
                fields[f"qualifier_{i}"] = entry[2]
        data = yield from self._call(
            "items.set_item_metadata_many", "SetItemMetadataManyParams", fields
        )
        return bool(data)

    @operation
    def delete_item_metadata(
        self,
        item_id: Id,
        element: str,
        *,
        qualifier: str | None = None,
        type: int | None = None,
        revision: int | None = None,
    ) -> fx.Op[bool]:
        """Delete a metadata value; False when there was none."""
        data = yield from self._call(
            "items.delete_item_metadata",
            "DeleteItemMetadataParams",
            {
                "itemid": int(item_id),
                "element": element,
                "qualifier": qualifier,
                "type": type,
                "revision": revision,
            },
        )
        return bool(data)

    # =====================================================================================================
    # core driver: bitstreams
    # =====================================================================================================
    @operation
    def get_bitstream(self, bitstream_id: Id) -> fx.Op[BitstreamInfo]:
        """A bitstream's name, size and MD5."""
        return (  # type: ignore[no-any-return]
            yield from self._call(
                "bitstreams.get_bitstream",
                "GetBitstreamParams",
                {"id": int(bitstream_id)},
                idempotent=True,
            )
        )

    @operation
    def delete_bitstream(self, bitstream_id: Id) -> fx.Op[None]:
        """Delete a bitstream."""
        yield from self._call(
            "bitstreams.delete_bitstream", "DeleteBitstreamParams", {"id": int(bitstream_id)}
        )

    @operation
    def count_bitstreams(self, uuid: str) -> fx.Op[BitstreamCount]:
        """Number and total size of the bitstreams under a community, folder or item (by UUID)."""
        return (  # type: ignore[no-any-return]
            yield from self._call(
                "bitstreams.count_bitstreams",
                "CountBitstreamsParams",
                {"uuid": uuid},
                idempotent=True,
            )
        )


class _MidasOps(_CoreOps, _TransferOps, _ModuleOps):
    """All Midas calls, written once; see :class:`MidasClient` and :class:`AsyncMidasClient`."""


class MidasClient(_MidasOps, SyncFacade):
    """Blocking Midas Server client (pydas's Communicator, every driver's calls as methods)."""


class AsyncMidasClient(_MidasOps, AsyncFacade):
    """Asyncio Midas Server client: the same calls, awaited."""
