"""The MyTardis client: :class:`MyTardisClient` and :class:`AsyncMyTardisClient` from one code base."""

from __future__ import annotations

import datetime as _dt
import importlib
import inspect
import json
import mimetypes
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias

import attrs
import httpx

from .. import errors
from .._core import effects as fx
from .._core.drivers import Runtime
from .._core.facade import AsyncFacade, SyncFacade, operation
from .._core.secrets import Secret
from ..config import ClientConfig
from ..pagination import Page, Paginator, tastypie_page
from ._auth import mytardis_auth, mytardis_url

if TYPE_CHECKING:
    from scibind_generated.mytardis.models import (
        DataFile,
        DatafileParameterSet,
        Dataset,
        DatasetParameterSet,
        Experiment,
        ExperimentParameterSet,
        Facility,
        Group,
        Instrument,
        ObjectACL,
        Parameter,
        ParameterName,
        Replica,
        Schema,
        StorageBox,
        StorageBoxAttribute,
        StorageBoxOption,
        User,
    )

    from ..transfers.download import Existing
    from ..transfers.progress import ProgressCallback

__all__ = [
    "MAX_PAGE_SIZE",
    "AsyncMyTardisClient",
    "MyTardisClient",
    "ParameterSets",
    "StagedDatafile",
]

MAX_PAGE_SIZE = 1000  # Tastypie's default max_limit on MyTardis

ParameterSets: TypeAlias = (
    Mapping[str, Mapping[str, object]] | Iterable[tuple[str, Mapping[str, object]]]
)
"""Parameter sets by schema namespace (or schema URI): ``{namespace: {parameter name: value}}``, or a list of
``(namespace, {name: value})`` pairs when one schema is used twice."""

Ref: TypeAlias = int | str
"""An object by id (``12``) or resource URI (``"/api/v1/dataset/12/"``)."""


@attrs.frozen
class StagedDatafile:
    """A datafile registered without bytes: copy the file to ``staging_path``, then call ``verify_datafile``."""

    id: int
    uri: str
    staging_path: str


def _ep(name: str) -> ModuleType:
    """A generated endpoint module, imported on first use (``"experiments.get_experiment"``)."""
    return importlib.import_module(f"scibind_generated.mytardis.api.{name}")


def _models() -> ModuleType:
    return importlib.import_module("scibind_generated.mytardis.models")


def _value_text(value: object) -> str:
    if isinstance(value, _dt.datetime | _dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping | list):
        return json.dumps(value)
    return str(value)


def _parameter_inputs(parameters: Mapping[str, object]) -> list[dict[str, str]]:
    return [{"name": name, "value": _value_text(value)} for name, value in parameters.items()]


def _parameter_sets(sets: ParameterSets | None) -> list[dict[str, Any]] | None:
    """Inline parameter sets as the API takes them: ``[{schema, parameters: [{name, value}]}]``."""
    if sets is None:
        return None
    pairs = sets.items() if isinstance(sets, Mapping) else sets
    return [{"schema": schema, "parameters": _parameter_inputs(params)} for schema, params in pairs]


def _id_from_location(response: Any) -> int:
    """The id at the end of the ``Location`` of a 201 (``.../api/v1/experiment/12/`` -> 12)."""
    location = response.headers.get("Location", "")
    tail = location.rstrip("/").rsplit("/", 1)[-1]
    if not tail.isdigit():
        raise errors.ResponseFormatError(
            f"the server created the object but sent no usable Location header ({location!r})",
            status=int(response.status_code),
        )
    return int(tail)


def _write_body(model: str, fields: Mapping[str, Any]) -> Any:
    """A generated write model from ``fields``; unknown field names are a ConfigurationError."""
    cls = getattr(_models(), model)
    known = {a.name for a in attrs.fields(cls)} - {"additional_properties"}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise errors.ConfigurationError(
            f"unknown field(s) {unknown} for {model}; known: {sorted(known)}"
        )
    clean = {
        k: (v.isoformat() if isinstance(v, _dt.datetime) else v)
        for k, v in fields.items()
        if v is not None
    }
    return cls.from_dict(clean)


def _py_name(name: str) -> str:
    """The generated client's argument name for a Tastypie query name (``dataset__id`` -> ``dataset_id``)."""
    snake = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()
    return re.sub(r"_+", "_", snake)


def _filters(
    endpoint: ModuleType, filters: Mapping[str, Any], taken: Iterable[str]
) -> dict[str, Any]:
    """``filters`` by the generated endpoint's argument names; Tastypie names (``experiments__id``) accepted."""
    allowed = set(inspect.signature(endpoint._get_kwargs).parameters) - {"limit", "offset", *taken}
    out: dict[str, Any] = {}
    unknown = []
    for key, value in filters.items():
        name = key if key in allowed else _py_name(key)
        if name not in allowed:
            unknown.append(key)
        out[name] = value
    if unknown:
        raise errors.ConfigurationError(
            f"cannot filter by {sorted(unknown)}; this listing takes {sorted(allowed)}"
        )
    return out


def _page_size(page_size: int) -> int:
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise errors.ConfigurationError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
    return page_size


def _identity(obj: Any) -> Any:
    return obj


class _MyTardisOps:
    """All MyTardis calls, written once; see :class:`MyTardisClient` and :class:`AsyncMyTardisClient`."""

    service: ClassVar[str] = "mytardis"
    generated_package: ClassVar[str | None] = "scibind_generated.mytardis"
    runtime: ClassVar[Runtime] = Runtime()
    _driver: Any
    base_url: str

    def __init__(
        self,
        base_url: str | None = None,
        *,
        username: str | None = None,
        api_key: str | Secret | None = None,
        password: str | Secret | None = None,
        anonymous: bool = False,
        config: ClientConfig | None = None,
        transport: Any = None,
    ) -> None:
        """Connect to the MyTardis site at ``base_url`` (default: ``MYTARDIS_URL``).

        Credentials: ``api_key`` (sent as ``ApiKey user:key``) or ``password`` (HTTP Basic, sent pre-emptively)
        with ``username``, else ``MYTARDIS_USERNAME`` with ``MYTARDIS_API_KEY`` / ``MYTARDIS_PASSWORD`` (or
        ``MYTARDISCLIENT_*``). ``anonymous=True`` allows no credentials (public data only).
        """
        url = mytardis_url(base_url)
        auth = mytardis_auth(
            username=username, api_key=api_key, password=password, anonymous=anonymous
        )
        self._connect(url, auth=auth, config=config, transport=transport)  # type: ignore[attr-defined]

    # -- helpers ---------------------------------------------------------------------------------------------
    @property
    def _prefix(self) -> str:
        return httpx.URL(self.base_url).path.rstrip("/")

    def uri(self, resource: str, ref: Ref) -> str:
        """The resource URI of an object (``uri("dataset", 12)`` -> ``/api/v1/dataset/12/``); URIs pass through."""
        if isinstance(ref, str) and not ref.isdigit():
            return ref
        return f"{self._prefix}/api/v1/{resource}/{int(ref)}/"

    @staticmethod
    def id_of(ref: Ref) -> int:
        """The id in a resource URI (or the id itself)."""
        if isinstance(ref, int):
            return ref
        tail = ref.rstrip("/").rsplit("/", 1)[-1]
        if not tail.isdigit():
            raise errors.ConfigurationError(f"not an id or resource URI: {ref!r}")
        return int(tail)

    def _list(
        self,
        endpoint: str,
        filters: Mapping[str, Any],
        page_size: int,
        max_items: int | None,
        path: Mapping[str, Any] | None = None,
    ) -> Paginator[Any]:
        ep = _ep(endpoint)
        query = _filters(ep, filters, path or {})
        size = _page_size(page_size)
        if max_items is not None:
            size = max(1, min(size, max_items))
        limit = [size]  # the server may cap it; pages after the first use what it reports

        def fetch(page: int) -> fx.Op[Page[Any]]:
            resp = yield fx.Call(
                ep, {**query, **(path or {}), "limit": limit[0], "offset": (page - 1) * limit[0]}
            )
            body = resp.parsed
            if page == 1 and body.meta.limit:
                limit[0] = int(body.meta.limit)
            return tastypie_page({"meta": body.meta.to_dict(), "objects": body.objects}, _identity)

        return Paginator(self._driver, fetch, max_items=max_items)

    def _get(self, endpoint: str, ref: Ref) -> fx.Op[Any]:
        resp = yield fx.Call(_ep(endpoint), {"id": self.id_of(ref)})
        return resp.parsed

    # -- listings (Tastypie filters as keyword arguments; pages fetched concurrently) ---------------------------
    def experiments(
        self, *, page_size: int = 100, max_items: int | None = None, **filters: Any
    ) -> Paginator[Experiment]:
        """Experiments you may see; filters ``title``, ``id``, ``order_by`` (``-title``...)."""
        return self._list("experiments.list_experiments", filters, page_size, max_items)

    def datasets(
        self, *, page_size: int = 100, max_items: int | None = None, **filters: Any
    ) -> Paginator[Dataset]:
        """Datasets; filters ``description``, ``directory``, ``experiments__id``, ``instrument__id``..."""
        return self._list("datasets.list_datasets", filters, page_size, max_items)

    def datafiles(
        self, *, page_size: int = 100, max_items: int | None = None, **filters: Any
    ) -> Paginator[DataFile]:
        """Datafiles; filters ``filename``, ``directory``, ``directory__startswith``, ``dataset__id``..."""
        return self._list("datafiles.list_datafiles", filters, page_size, max_items)

    def dataset_files(
        self,
        dataset: Ref,
        *,
        page_size: int = 100,
        max_items: int | None = None,
        **filters: Any,
    ) -> Paginator[DataFile]:
        """The datafiles of one dataset (``order_by`` allowed)."""
        return self._list(
            "datasets.list_dataset_files",
            filters,
            page_size,
            max_items,
            path={"id": self.id_of(dataset)},
        )

    def experiment_parameter_sets(
        self, *, page_size: int = 100, max_items: int | None = None, **filters: Any
    ) -> Paginator[ExperimentParameterSet]:
        """Experiment parameter sets; filters ``experiment__id``, ``schema__namespace``."""
        return self._list(
            "experiment_metadata.list_experiment_parameter_sets", filters, page_size, max_items
        )

    def experiment_parameters(
        self, *, page_size: int = 100, max_items: int | None = None, **filters: Any
    ) -> Paginator[Parameter]:
        """Experiment parameters; filters ``parameterset__id``, ``name__name``."""
        return self._list(
            "experiment_metadata.list_experiment_parameters", filters, page_size, max_items
        )

    def dataset_parameter_sets(
        self, *, page_size: int = 100, max_items: int | None = None, **filters: Any
    ) -> Paginator[DatasetParameterSet]:
        """Dataset parameter sets; filters ``dataset__id``, ``schema__namespace``."""
        return self._list(
            "dataset_metadata.list_dataset_parameter_sets", filters, page_size, max_items
        )

    def dataset_parameters(
        self, *, page_size: int = 100, max_items: int | None = None, **filters: Any
    ) -> Paginator[Parameter]:
        """Dataset parameters; filters ``parameterset__id``, ``name__name``."""
        return self._list("dataset_metadata.list_dataset_parameters", filters, page_size, max_items)

    def datafile_parameter_sets(
        self, *, page_size: int = 100, max_items: int | None = None, **filters: Any
    ) -> Paginator[DatafileParameterSet]:
        """Datafile parameter sets; filters ``datafile__id``, ``schema__namespace``."""
        return self._list(
            "datafile_metadata.list_datafile_parameter_sets", filters, page_size, max_items
        )

    def datafile_parameters(
        self, *, page_size: int = 100, max_items: int | None = None, **filters: Any
    ) -> Paginator[Parameter]:
        """Datafile parameters; filters ``parameterset__id``, ``name__name``."""
        return self._list(
            "datafile_metadata.list_datafile_parameters", filters, page_size, max_items
        )

    def schemas(
        self, *, page_size: int = 100, max_items: int | None = None, **filters: Any
    ) -> Paginator[Schema]:
        """Metadata schemas; filters ``namespace``, ``type``..."""
        return self._list("schemas.list_schemas", filters, page_size, max_items)

    def parameter_names(
        self, *, page_size: int = 100, max_items: int | None = None, **filters: Any
    ) -> Paginator[ParameterName]:
        """Parameter names; filters ``schema__id``, ``schema__namespace``, ``name``."""
        return self._list("schemas.list_parameter_names", filters, page_size, max_items)

    def replicas(
        self, *, page_size: int = 100, max_items: int | None = None, **filters: Any
    ) -> Paginator[Replica]:
        """Stored copies of datafiles; filters ``datafile__id``, ``verified``, ``url``..."""
        return self._list("storage.list_replicas", filters, page_size, max_items)

    def storage_boxes(
        self, *, page_size: int = 100, max_items: int | None = None, **filters: Any
    ) -> Paginator[StorageBox]:
        """Storage boxes (signed-in users only)."""
        return self._list("storage.list_storage_boxes", filters, page_size, max_items)

    def storage_box_options(
        self, *, page_size: int = 100, max_items: int | None = None, **filters: Any
    ) -> Paginator[StorageBoxOption]:
        """Storage box options (only ``location`` is shown)."""
        return self._list("storage.list_storage_box_options", filters, page_size, max_items)

    def storage_box_attributes(
        self, *, page_size: int = 100, max_items: int | None = None, **filters: Any
    ) -> Paginator[StorageBoxAttribute]:
        """Storage box attributes (e.g. ``type=receiving``)."""
        return self._list("storage.list_storage_box_attributes", filters, page_size, max_items)

    def users(
        self, *, page_size: int = 100, max_items: int | None = None, **filters: Any
    ) -> Paginator[User]:
        """Users you may see; filters ``username``, ``email``..."""
        return self._list("accounts.list_users", filters, page_size, max_items)

    def groups(
        self, *, page_size: int = 100, max_items: int | None = None, **filters: Any
    ) -> Paginator[Group]:
        """Groups you are in (all groups for facility managers)."""
        return self._list("accounts.list_groups", filters, page_size, max_items)

    def facilities(
        self, *, page_size: int = 100, max_items: int | None = None, **filters: Any
    ) -> Paginator[Facility]:
        """Facilities you manage."""
        return self._list("facilities.list_facilities", filters, page_size, max_items)

    def instruments(
        self, *, page_size: int = 100, max_items: int | None = None, **filters: Any
    ) -> Paginator[Instrument]:
        """Instruments; filters ``name``, ``facility__id``."""
        return self._list("facilities.list_instruments", filters, page_size, max_items)

    def object_acls(
        self, *, page_size: int = 100, max_items: int | None = None, **filters: Any
    ) -> Paginator[ObjectACL]:
        """Access rules of experiments you may see; filters ``object_id``, ``pluginId``, ``entityId``."""
        return self._list("access.list_object_acls", filters, page_size, max_items)

    # -- one object by id ------------------------------------------------------------------------------------
    @operation
    def get_experiment(self, experiment: Ref) -> fx.Op[Experiment]:
        """One experiment, with its parameter sets."""
        return (yield from self._get("experiments.get_experiment", experiment))  # type: ignore[no-any-return]

    @operation
    def get_dataset(self, dataset: Ref) -> fx.Op[Dataset]:
        """One dataset."""
        return (yield from self._get("datasets.get_dataset", dataset))  # type: ignore[no-any-return]

    @operation
    def get_datafile(self, datafile: Ref) -> fx.Op[DataFile]:
        """One datafile, with its replicas and checksums."""
        return (yield from self._get("datafiles.get_datafile", datafile))  # type: ignore[no-any-return]

    @operation
    def get_experiment_parameter_set(self, ref: Ref) -> fx.Op[ExperimentParameterSet]:
        """One experiment parameter set."""
        return (  # type: ignore[no-any-return]
            yield from self._get("experiment_metadata.get_experiment_parameter_set", ref)
        )

    @operation
    def get_experiment_parameter(self, ref: Ref) -> fx.Op[Parameter]:
        """One experiment parameter."""
        return (  # type: ignore[no-any-return]
            yield from self._get("experiment_metadata.get_experiment_parameter", ref)
        )

    @operation
    def get_dataset_parameter_set(self, ref: Ref) -> fx.Op[DatasetParameterSet]:
        """One dataset parameter set."""
        return (  # type: ignore[no-any-return]
            yield from self._get("dataset_metadata.get_dataset_parameter_set", ref)
        )

    @operation
    def get_dataset_parameter(self, ref: Ref) -> fx.Op[Parameter]:
        """One dataset parameter."""
        return (  # type: ignore[no-any-return]
            yield from self._get("dataset_metadata.get_dataset_parameter", ref)
        )

    @operation
    def get_datafile_parameter_set(self, ref: Ref) -> fx.Op[DatafileParameterSet]:
        """One datafile parameter set."""
        return (  # type: ignore[no-any-return]
            yield from self._get("datafile_metadata.get_datafile_parameter_set", ref)
        )

    @operation
    def get_datafile_parameter(self, ref: Ref) -> fx.Op[Parameter]:
        """One datafile parameter."""
        return (  # type: ignore[no-any-return]
            yield from self._get("datafile_metadata.get_datafile_parameter", ref)
        )

    @operation
    def get_schema(self, ref: Ref) -> fx.Op[Schema]:
        """One schema."""
        return (yield from self._get("schemas.get_schema", ref))  # type: ignore[no-any-return]

    @operation
    def get_parameter_name(self, ref: Ref) -> fx.Op[ParameterName]:
        """One parameter name."""
        return (yield from self._get("schemas.get_parameter_name", ref))  # type: ignore[no-any-return]

    @operation
    def get_replica(self, ref: Ref) -> fx.Op[Replica]:
        """One replica."""
        return (yield from self._get("storage.get_replica", ref))  # type: ignore[no-any-return]

    @operation
    def get_storage_box(self, ref: Ref) -> fx.Op[StorageBox]:
        """One storage box."""
        return (yield from self._get("storage.get_storage_box", ref))  # type: ignore[no-any-return]

    @operation
    def get_storage_box_option(self, ref: Ref) -> fx.Op[StorageBoxOption]:
        """One storage box option."""
        return (  # type: ignore[no-any-return]
            yield from self._get("storage.get_storage_box_option", ref)
        )

    @operation
    def get_storage_box_attribute(self, ref: Ref) -> fx.Op[StorageBoxAttribute]:
        """One storage box attribute."""
        return (  # type: ignore[no-any-return]
            yield from self._get("storage.get_storage_box_attribute", ref)
        )

    @operation
    def get_user(self, ref: Ref) -> fx.Op[User]:
        """One user."""
        return (yield from self._get("accounts.get_user", ref))  # type: ignore[no-any-return]

    @operation
    def get_group(self, ref: Ref) -> fx.Op[Group]:
        """One group."""
        return (yield from self._get("accounts.get_group", ref))  # type: ignore[no-any-return]

    @operation
    def get_facility(self, ref: Ref) -> fx.Op[Facility]:
        """One facility."""
        return (yield from self._get("facilities.get_facility", ref))  # type: ignore[no-any-return]

    @operation
    def get_instrument(self, ref: Ref) -> fx.Op[Instrument]:
        """One instrument."""
        return (yield from self._get("facilities.get_instrument", ref))  # type: ignore[no-any-return]

    @operation
    def get_object_acl(self, ref: Ref) -> fx.Op[ObjectACL]:
        """One access rule."""
        return (yield from self._get("access.get_object_acl", ref))  # type: ignore[no-any-return]

    # -- experiments and datasets -------------------------------------------------------------------------------
    @operation
    def create_experiment(
        self,
        /,
        title: str,
        *,
        description: str | None = None,
        institution_name: str | None = None,
        parameter_sets: ParameterSets | None = None,
        **fields: Any,
    ) -> fx.Op[Experiment]:
        """Create an experiment you own; ``parameter_sets`` by schema namespace and parameter names.

        Other ``fields``: ``url``, ``start_time``, ``end_time``, ``handle``, ``public_access``.
        """
        body = _write_body(
            "ExperimentWrite",
            {
                "title": title,
                "description": description,
                "institution_name": institution_name,
                "parameter_sets": _parameter_sets(parameter_sets),
                **fields,
            },
        )
        resp = yield fx.Call(_ep("experiments.create_experiment"), {"body": body})
        return resp.parsed  # type: ignore[no-any-return]

    @operation
    def update_experiment(
        self, /, experiment: Ref, *, parameter_sets: ParameterSets | None = None, **fields: Any
    ) -> fx.Op[Experiment]:
        """Change some fields of an experiment (PATCH); ``parameter_sets`` are added."""
        body = _write_body(
            "ExperimentWrite", {**fields, "parameter_sets": _parameter_sets(parameter_sets)}
        )
        resp = yield fx.Call(
            _ep("experiments.update_experiment"), {"id": self.id_of(experiment), "body": body}
        )
        return resp.parsed  # type: ignore[no-any-return]

    @operation
    def delete_experiment(self, experiment: Ref) -> fx.Op[None]:
        """Delete an experiment (owners with delete permission)."""
        yield fx.Call(_ep("experiments.delete_experiment"), {"id": self.id_of(experiment)})

    @operation
    def create_dataset(
        self,
        description: str,
        experiments: Iterable[Ref],
        *,
        directory: str | None = None,
        instrument: Ref | None = None,
        immutable: bool | None = None,
        parameter_sets: ParameterSets | None = None,
    ) -> fx.Op[Dataset]:
        """Create a dataset in the given experiments (you need write access to each)."""
        body = _write_body(
            "DatasetWrite",
            {
                "description": description,
                "experiments": [self.uri("experiment", e) for e in experiments],
                "directory": directory,
                "instrument": self.uri("instrument", instrument)
                if instrument is not None
                else None,
                "immutable": immutable,
                "parameter_sets": _parameter_sets(parameter_sets),
            },
        )
        resp = yield fx.Call(_ep("datasets.create_dataset"), {"body": body})
        return resp.parsed  # type: ignore[no-any-return]

    @operation
    def update_dataset(
        self, /, dataset: Ref, *, parameter_sets: ParameterSets | None = None, **fields: Any
    ) -> fx.Op[Dataset]:
        """Change some fields of a dataset (PATCH); ``parameter_sets`` are added."""
        if "experiments" in fields:
            fields["experiments"] = [self.uri("experiment", e) for e in fields["experiments"]]
        body = _write_body(
            "DatasetWrite", {**fields, "parameter_sets": _parameter_sets(parameter_sets)}
        )
        resp = yield fx.Call(
            _ep("datasets.update_dataset"), {"id": self.id_of(dataset), "body": body}
        )
        return resp.parsed  # type: ignore[no-any-return]

    # -- parameter sets and parameters of existing objects --------------------------------------------------
    def _add_set(
        self,
        kind: str,
        parent_resource: str,
        parent: Ref,
        schema: str,
        params: Mapping[str, object],
    ) -> fx.Op[int]:
        model = getattr(_models(), f"{kind.title()}ParameterSetCreate")
        body = model.from_dict(
            {
                kind: self.uri(parent_resource, parent),
                "schema": schema,
                "parameters": _parameter_inputs(params),
            }
        )
        resp = yield fx.Call(_ep(f"{kind}_metadata.create_{kind}_parameter_set"), {"body": body})
        return _id_from_location(resp)

    def _add_parameter(self, kind: str, parameter_set: Ref, name: str, value: object) -> fx.Op[int]:
        model = getattr(_models(), f"{kind.title()}ParameterCreate")
        body = model(
            parameterset=self.uri(f"{kind}parameterset", parameter_set),
            name=name,
            value=_value_text(value),
        )
        resp = yield fx.Call(_ep(f"{kind}_metadata.create_{kind}_parameter"), {"body": body})
        return _id_from_location(resp)

    @operation
    def add_experiment_parameter_set(
        self, experiment: Ref, schema: str, parameters: Mapping[str, object]
    ) -> fx.Op[int]:
        """Add a parameter set (schema namespace or URI; parameters by name) to an experiment; returns its id."""
        return (
            yield from self._add_set("experiment", "experiment", experiment, schema, parameters)
        )

    @operation
    def add_dataset_parameter_set(
        self, dataset: Ref, schema: str, parameters: Mapping[str, object]
    ) -> fx.Op[int]:
        """Add a parameter set to a dataset; returns its id."""
        return (yield from self._add_set("dataset", "dataset", dataset, schema, parameters))

    @operation
    def add_datafile_parameter_set(
        self, datafile: Ref, schema: str, parameters: Mapping[str, object]
    ) -> fx.Op[int]:
        """Add a parameter set to a datafile; returns its id."""
        return (yield from self._add_set("datafile", "dataset_file", datafile, schema, parameters))

    @operation
    def add_experiment_parameter(self, parameter_set: Ref, name: str, value: object) -> fx.Op[int]:
        """Add one parameter to an experiment parameter set; returns its id."""
        return (yield from self._add_parameter("experiment", parameter_set, name, value))

    @operation
    def add_dataset_parameter(self, parameter_set: Ref, name: str, value: object) -> fx.Op[int]:
        """Add one parameter to a dataset parameter set; returns its id."""
        return (yield from self._add_parameter("dataset", parameter_set, name, value))

    @operation
    def add_datafile_parameter(self, parameter_set: Ref, name: str, value: object) -> fx.Op[int]:
        """Add one parameter to a datafile parameter set; returns its id."""
        return (yield from self._add_parameter("datafile", parameter_set, name, value))

    # -- facilities and access -----------------------------------------------------------------------------------
    @operation
    def create_instrument(self, name: str, facility: Ref) -> fx.Op[Instrument]:
        """Create an instrument of a facility you manage."""
        body = _write_body(
            "InstrumentWrite", {"name": name, "facility": self.uri("facility", facility)}
        )
        resp = yield fx.Call(_ep("facilities.create_instrument"), {"body": body})
        return resp.parsed  # type: ignore[no-any-return]

    @operation
    def update_instrument(
        self, instrument: Ref, *, name: str | None = None, facility: Ref | None = None
    ) -> fx.Op[Instrument]:
        """Rename an instrument or move it to another facility."""
        body = _write_body(
            "InstrumentWrite",
            {
                "name": name,
                "facility": self.uri("facility", facility) if facility is not None else None,
            },
        )
        resp = yield fx.Call(
            _ep("facilities.update_instrument"), {"id": self.id_of(instrument), "body": body}
        )
        return resp.parsed  # type: ignore[no-any-return]

    @operation
    def share_experiment(
        self,
        experiment: Ref,
        *,
        user: int | None = None,
        group: int | None = None,
        read: bool = True,
        write: bool = False,
        download: bool = False,
        delete: bool = False,
        owner: bool = False,
        sensitive: bool = False,
    ) -> fx.Op[int]:
        """Grant a user or a group (by id) access to an experiment; returns the access rule's id."""
        if (user is None) == (group is None):
            raise errors.ConfigurationError("share_experiment needs exactly one of user= or group=")
        body = _models().ObjectACLWrite(
            content_object=self.uri("experiment", experiment),
            plugin_id="django_user" if user is not None else "django_group",
            entity_id=str(user if user is not None else group),
            can_read=read,
            can_write=write,
            can_download=download,
            can_delete=delete,
            is_owner=owner,
            can_sensitive=sensitive,
        )
        resp = yield fx.Call(_ep("access.create_object_acl"), {"body": body})
        return _id_from_location(resp)

    # -- datafiles ------------------------------------------------------------------------------------------------
    def _datafile_fields(
        self,
        dataset: Ref,
        filename: str,
        *,
        size: int | None,
        md5sum: str | None,
        directory: str | None,
        mimetype: str | None,
        parameter_sets: ParameterSets | None,
        replicas: list[dict[str, str]] | None = None,
    ) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "dataset": self.uri("dataset", dataset),
            "filename": filename,
            "size": size,
            "md5sum": md5sum,
            "mimetype": mimetype or mimetypes.guess_type(filename)[0] or "application/octet-stream",
        }
        if directory:
            fields["directory"] = directory
        if replicas is not None:
            fields["replicas"] = replicas
        sets = _parameter_sets(parameter_sets)
        if sets:
            fields["parameter_sets"] = sets
        body: dict[str, Any] = _write_body("DataFileWrite", fields).to_dict()
        return body

    def _register(self, fields: Mapping[str, Any]) -> fx.Op[tuple[int, str]]:
        from scibind_generated.mytardis.models import DataFileUpload

        resp = yield fx.Call(
            _ep("datafiles.create_datafile"), {"body": DataFileUpload(json_data=json.dumps(fields))}
        )
        return _id_from_location(resp), resp.content.decode(errors="replace").strip()

    @operation
    def upload_datafile(
        self,
        dataset: Ref,
        path: str | os.PathLike[str],
        *,
        filename: str | None = None,
        directory: str | None = None,
        mimetype: str | None = None,
        parameter_sets: ParameterSets | None = None,
        progress: ProgressCallback | None = None,
    ) -> fx.Op[DataFile]:
        """Upload a local file into a dataset (multipart ``attached_file`` + ``json_data``).

        One pass over the file: its bytes are streamed from disk in chunks (never read whole into memory)
        and hashed as they go out; ``json_data`` follows the file in the body and carries that md5 and the
        size, so the server checks exactly the bytes it received. Exactly the file's size at the start is
        sent (a file that grows meanwhile is sent as it was; one that shrinks is a
        :class:`~scibind.errors.TransferError`). A connection that fails before anything was sent is retried
        with the file read again from the start. Raises :class:`~scibind.errors.ConflictError` if the
        dataset already has this directory/filename. Returns the new datafile.
        """
        from ..transfers.progress import ProgressTracker
        from ._multipart import FileFirstMultipart

        source = Path(path)
        name = filename or source.name
        size = source.stat().st_size
        fields = self._datafile_fields(
            dataset,
            name,
            size=size,
            md5sum="0" * 32,  # replaced by the md5 of the bytes sent
            directory=directory,
            mimetype=mimetype,
            parameter_sets=parameter_sets,
        )
        tracker = ProgressTracker(name, size, progress, "uploading")
        sent = [0]

        def restart() -> None:  # a retried send starts over: take back the bytes counted so far
            if sent[0]:
                tracker.add(-sent[0])
                sent[0] = 0

        def counted(chunk: bytes) -> None:
            sent[0] += len(chunk)
            tracker.add(len(chunk))

        body = FileFirstMultipart(
            source,
            field="attached_file",
            filename=name,
            content_type=fields["mimetype"],
            size=size,
            trailing=lambda md5: [("json_data", json.dumps(dict(fields, md5sum=md5)))],
            on_chunk=counted,
            on_start=restart,
        )
        tracker.emit("uploading")
        resp = yield fx.Request(
            "POST",
            "/api/v1/dataset_file/",
            content=body,
            headers={"Content-Type": body.content_type},
        )
        datafile_id = _id_from_location(resp)
        tracker.emit("done")
        return (yield from self._get("datafiles.get_datafile", datafile_id))  # type: ignore[no-any-return]

    @operation
    def register_staged_datafile(
        self,
        dataset: Ref,
        filename: str,
        *,
        size: int | None = None,
        md5sum: str | None = None,
        path: str | os.PathLike[str] | None = None,
        directory: str | None = None,
        mimetype: str | None = None,
        parameter_sets: ParameterSets | None = None,
    ) -> fx.Op[StagedDatafile]:
        """Register a datafile whose bytes you will copy to a staging location.

        Give ``size`` and ``md5sum``, or ``path`` of the local file to compute them. Copy the file to the
        returned ``staging_path`` (scp, rsync...), then call :meth:`verify_datafile`.
        """
        from ..transfers.checksums import file_digest

        if path is not None:
            size = Path(path).stat().st_size if size is None else size
            md5sum = md5sum or (yield fx.Blocking(file_digest, (Path(path), "md5")))
        if size is None or not md5sum:
            raise errors.ConfigurationError("give size and md5sum, or the local path")
        fields = self._datafile_fields(
            dataset,
            filename,
            size=size,
            md5sum=md5sum,
            directory=directory,
            mimetype=mimetype,
            parameter_sets=parameter_sets,
        )
        datafile_id, staging = yield from self._register(fields)
        if not staging:
            raise errors.ResponseFormatError(
                "the server registered the datafile but sent no staging path"
            )
        return StagedDatafile(datafile_id, self.uri("dataset_file", datafile_id), staging)

    @operation
    def register_shared_datafile(
        self,
        dataset: Ref,
        filename: str,
        replicas: Mapping[str, str] | Iterable[tuple[str, str]],
        *,
        size: int | None = None,
        md5sum: str | None = None,
        path: str | os.PathLike[str] | None = None,
        directory: str | None = None,
        mimetype: str | None = None,
        parameter_sets: ParameterSets | None = None,
    ) -> fx.Op[DataFile]:
        """Register a file already on shared storage; ``replicas`` maps storage box name -> path in the box.

        Give ``size`` and ``md5sum`` (or the local ``path`` to compute them) so the server can verify the
        copies. Returns the datafile (``replicas[i].verified`` tells whether each copy checked out).
        """
        from ..transfers.checksums import file_digest

        if path is not None:
            size = Path(path).stat().st_size if size is None else size
            md5sum = md5sum or (yield fx.Blocking(file_digest, (Path(path), "md5")))
        pairs = replicas.items() if isinstance(replicas, Mapping) else replicas
        entries = [{"location": box, "url": url, "protocol": "file"} for box, url in pairs]
        if not entries:
            raise errors.ConfigurationError("register_shared_datafile needs at least one replica")
        fields = self._datafile_fields(
            dataset,
            filename,
            size=size,
            md5sum=md5sum,
            directory=directory,
            mimetype=mimetype,
            parameter_sets=parameter_sets,
            replicas=entries,
        )
        datafile_id, _ = yield from self._register(fields)
        return (yield from self._get("datafiles.get_datafile", datafile_id))  # type: ignore[no-any-return]

    @operation
    def verify_datafile(self, datafile: Ref) -> fx.Op[None]:
        """Ask the server to (re)verify a datafile's replicas, e.g. after copying a staged file."""
        yield fx.Call(_ep("datafiles.verify_datafile"), {"id": self.id_of(datafile)})

    @operation
    def update_datafile(self, /, datafile: Ref, **fields: Any) -> fx.Op[None]:
        """Change some fields of a datafile (``filename``, ``directory``, ``mimetype``...)."""
        body = _write_body("DataFileWrite", fields)
        yield fx.Call(_ep("datafiles.update_datafile"), {"id": self.id_of(datafile), "body": body})

    @operation
    def create_replica(self, datafile: Ref, url: str, location: str) -> fx.Op[int]:
        """Register another stored copy of a datafile (``location`` = storage box name); returns its id."""
        body = _models().ReplicaCreate(
            datafile=self.uri("dataset_file", datafile), url=url, location=location
        )
        resp = yield fx.Call(_ep("storage.create_replica"), {"body": body})
        return _id_from_location(resp)

    @operation
    def download_datafile(
        self,
        datafile: Ref,
        dest: str | os.PathLike[str],
        *,
        progress: ProgressCallback | None = None,
        existing: Existing = "verify",
    ) -> fx.Op[Path]:
        """Download a datafile to ``dest`` (a file path, or a directory to put it in by its filename).

        The bytes are checked against the datafile's size and md5 (and sha512 when recorded) before the file
        is moved into place; an interrupted download resumes from the partial file when called again.
        """
        from ..transfers.download import Expected, download_op

        record = yield from self._get("datafiles.get_datafile", datafile)
        target = Path(dest)
        if target.is_dir():
            target = target / record.filename
        digests = {}
        for key, attr in (("md5", "md5sum"), ("sha512", "sha512sum")):
            value = getattr(record, attr, None)
            if isinstance(value, str) and value:
                digests[key] = value
        size = record.size if isinstance(record.size, int) else None
        url = f"{self.base_url}/api/v1/dataset_file/{record.id}/download/"

        def resolve() -> fx.Op[str]:
            yield fx.Sleep(0)
            return url

        return (
            yield from download_op(
                resolve,
                target,
                Expected(size, digests),
                name=record.filename,
                progress=progress,
                parallel=1,
                min_parallel_size=1 << 62,  # MyTardis serves whole files (no Range)
                existing=existing,
                auth=True,
            )
        )


class MyTardisClient(_MyTardisOps, SyncFacade):
    """Blocking MyTardis client. Listings are :class:`~scibind.pagination.Paginator` objects (``for``)."""


class AsyncMyTardisClient(_MyTardisOps, AsyncFacade):
    """Asyncio MyTardis client: the same calls, awaited; listings with ``async for``."""
