"""Client for MyTardis (the Tastypie REST API under ``/api/v1/``).

>>> from scibind.mytardis import MyTardisClient
>>> mt = MyTardisClient("https://mytardis.example.org", username="alice", api_key="...")  # or MYTARDIS_* env
>>> exp = mt.create_experiment("Beamtime 42", parameter_sets={"http://ex.org/beam": {"energy": 12.4}})
>>> ds = mt.create_dataset("run 1", [exp.id])
>>> df = mt.upload_datafile(ds.id, "scan.h5")              # one streamed pass, md5 in json_data
>>> [d.filename for d in mt.dataset_files(ds.id)]          # Tastypie pages, fetched concurrently
>>> mt.download_datafile(df.id, "out/")                    # md5-verified, atomic, resumable

:class:`AsyncMyTardisClient` offers the same calls, awaited (``async for`` over listings). Results are the typed
models generated from scibind's MyTardis spec (``scibind_generated.mytardis.models``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from ._auth import mytardis_auth
    from ._client import AsyncMyTardisClient, MyTardisClient, ParameterSets, StagedDatafile

__all__ = [
    "AsyncMyTardisClient",
    "MyTardisClient",
    "ParameterSets",
    "StagedDatafile",
    "mytardis_auth",
]

_EXPORTS = {
    "AsyncMyTardisClient": "._client",
    "MyTardisClient": "._client",
    "ParameterSets": "._client",
    "StagedDatafile": "._client",
    "mytardis_auth": "._auth",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)
