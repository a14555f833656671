"""The drivers of Midas modules: multi-factor auth, solr, thumbnail creator, batchmake, dicomextractor, tracker."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .. import errors
from .._core import effects as fx
from .._core.facade import operation
from .._core.secrets import Secret
from ._base import Id, _data, _ep, _flag, _MidasBase

if TYPE_CHECKING:
    from scibind_generated.midas.models import (
        CondorDag,
        CondorJob,
        Item,
        ItemRevision,
        ItemThumbnail,
        Scalar,
        SmallThumbnailResult,
        Submission,
    )


__all__: list[str] = []


class _ModuleOps(_MidasBase):
    """pydas's module drivers."""

    # =====================================================================================================
    # multi-factor authentication driver
    # =====================================================================================================
    @operation
    def mfa_otp_login(self, mfa_token_id: str, otp: str) -> fx.Op[Secret]:
        """Finish a login that asked for a one-time password; returns the API token."""
        data = yield from self._call(
            "mfa.mfa_otp_login", "MfaOtpLoginParams", {"mfaTokenId": mfa_token_id, "otp": otp}
        )
        return Secret(str(data.token))

    # =====================================================================================================
    # solr driver
    # =====================================================================================================
    @operation
    def solr_search(self, query: str, *, limit: int | None = None) -> fx.Op[list[Item]]:
        """Items whose metadata match a Lucene query."""
        return (  # type: ignore[no-any-return]
            yield from self._call(
                "solr.solr_search_advanced",
                "SolrSearchAdvancedParams",
                {"query": query, "limit": limit},
                idempotent=True,
            )
        )

    # =====================================================================================================
    # thumbnail creator driver
    # =====================================================================================================
    @operation
    def create_big_thumbnail(
        self, bitstream_id: Id, item_id: Id, *, width: int = 575
    ) -> fx.Op[ItemThumbnail]:
        """Make an item's big thumbnail from one of its bitstreams."""
        return (  # type: ignore[no-any-return]
            yield from self._call(
                "thumbnails.create_big_thumbnail",
                "CreateBigThumbnailParams",
                {"bitstreamId": int(bitstream_id), "itemId": int(item_id), "width": width},
            )
        )

    @operation
    def create_small_thumbnail(self, item_id: Id) -> fx.Op[SmallThumbnailResult]:
        """Make an item's 100x100 thumbnail."""
        return (  # type: ignore[no-any-return]
            yield from self._call(
                "thumbnails.create_small_thumbnail",
                "CreateSmallThumbnailParams",
                {"itemId": int(item_id)},
            )
        )

    # =====================================================================================================
    # batchmake driver
    # =====================================================================================================
    @operation
    def add_condor_dag(
        self, batchmake_task_id: Id, dag_filename: str, out_filename: str
    ) -> fx.Op[CondorDag]:
        """Add a Condor DAG to a BatchMake task."""
        return (  # type: ignore[no-any-return]
            yield from self._call(
                "batchmake.add_condor_dag",
                "AddCondorDagParams",
                {
                    "batchmaketaskid": int(batchmake_task_id),
                    "dagfilename": dag_filename,
                    "outfilename": out_filename,
                },
            )
        )

    @operation
    def add_condor_job(
        self,
        batchmake_task_id: Id,
        job_definition_filename: str,
        output_filename: str,
        error_filename: str,
        log_filename: str,
        post_filename: str,
    ) -> fx.Op[CondorJob]:
        """Add a job to a BatchMake task's Condor DAG."""
        return (  # type: ignore[no-any-return]
            yield from self._call(
                "batchmake.add_condor_job",
                "AddCondorJobParams",
                {
                    "batchmaketaskid": int(batchmake_task_id),
                    "jobdefinitionfilename": job_definition_filename,
                    "outputfilename": output_filename,
                    "errorfilename": error_filename,
                    "logfilename": log_filename,
                    "postfilename": post_filename,
                },
            )
        )

    # =====================================================================================================
    # dicomextractor driver
    # =====================================================================================================
    @operation
    def extract_dicom_metadata(self, item_id: Id) -> fx.Op[ItemRevision]:
        """Extract DICOM metadata into the item's last revision."""
        return (  # type: ignore[no-any-return]
            yield from self._call(
                "dicom.extract_dicom_metadata",
                "ExtractDicomMetadataParams",
                {"item": int(item_id)},
            )
        )

    # =====================================================================================================
    # tracker driver
    # =====================================================================================================
    @operation
    def add_scalar(
        self,
        community_id: Id,
        producer_display_name: str,
        metric_name: str,
        value: float,
        *,
        producer_revision: str | None = None,
        submit_time: str | None = None,
        submission_id: Id | None = None,
        submission_uuid: str | None = None,
        config_item_id: Id | None = None,
        test_dataset_id: Id | None = None,
        truth_dataset_id: Id | None = None,
        unit: str | None = None,
        branch: str | None = None,
        build_results_url: str | None = None,
        params: Mapping[str, Any] | None = None,
        extra_urls: Sequence[Mapping[str, str]] | None = None,
        unofficial: bool = False,
        silent: bool = False,
    ) -> fx.Op[Scalar]:
        """Add a value to a trend (producer and trend are created on first use).

        The value belongs to the submission ``submission_id`` (an existing one, by id) or ``submission_uuid``
        (created if new); ``params`` and ``extra_urls`` (``[{"label", "text", "href"}]``) are shown with it;
        ``silent`` schedules no threshold e-mails; ``unofficial`` makes it visible to you only.
        """
        return (  # type: ignore[no-any-return]
            yield from self._call(
                "tracker.add_tracker_scalar",
                "AddTrackerScalarParams",
                {
                    "communityId": int(community_id),
                    "producerDisplayName": producer_display_name,
                    "metricName": metric_name,
                    "value": value,
                    "producerRevision": producer_revision,
                    "submitTime": submit_time,
                    "submissionId": _opt_id(submission_id),
                    "submissionUuid": submission_uuid,
                    "configItemId": _opt_id(config_item_id),
                    "testDatasetId": _opt_id(test_dataset_id),
                    "truthDatasetId": _opt_id(truth_dataset_id),
                    "unit": unit,
                    "branch": branch,
                    "buildResultsUrl": build_results_url,
                    "params": _json_text(params),
                    "extraUrls": _json_text(extra_urls),
                    "unofficial": _flag(unofficial),
                    "silent": _flag(silent),
                },
            )
        )

    @operation
    def create_submission(
        self,
        community_id: Id,
        producer_display_name: str,
        producer_revision: str,
        *,
        uuid: str | None = None,
        name: str | None = None,
        submit_time: str | None = None,
    ) -> fx.Op[Submission]:
        """Create a tracker submission (scalars can then name it by ``submission_uuid``)."""
        return (  # type: ignore[no-any-return]
            yield from self._call(
                "tracker.add_tracker_submission",
                "AddTrackerSubmissionParams",
                {
                    "communityId": int(community_id),
                    "producerDisplayName": producer_display_name,
                    "producerRevision": producer_revision,
                    "uuid": uuid,
                    "name": name,
                    "submitTime": submit_time,
                },
            )
        )

    @operation
    def associate_item_with_scalars(
        self,
        item_id: Id,
        label: str,
        *,
        scalar_ids: Iterable[Id] = (),
        submission_uuid: str | None = None,
    ) -> fx.Op[None]:
        """Attach a result item to scalar values (or to every scalar of a submission)."""
        ids = ",".join(str(int(s)) for s in scalar_ids)
        yield from self._call(
            "tracker.associate_tracker_item",
            "AssociateTrackerItemParams",
            {
                "itemId": int(item_id),
                "label": label,
                "scalarIds": ids or None,
                "submissionUuid": submission_uuid,
            },
        )

    @operation
    def upload_json_results(
        self,
        results: Mapping[str, Any] | str | os.PathLike[str],
        community_id: Id,
        producer_display_name: str,
        producer_revision: str,
        *,
        submit_time: str | None = None,
        parent_keys: Sequence[str] | None = None,
        config_item_id: Id | None = None,
        test_dataset_id: Id | None = None,
        truth_dataset_id: Id | None = None,
        branch: str | None = None,
        build_results_url: str | None = None,
        params: Mapping[str, Any] | None = None,
        extra_urls: Sequence[Mapping[str, str]] | None = None,
        unofficial: bool = False,
        silent: bool = False,
    ) -> fx.Op[list[Scalar]]:
        """Add every number of a JSON document (a mapping, or the path of a JSON file) as a scalar.

        ``parent_keys`` limits it to the numbers under those keys (``"a.b"`` for nesting); the other options
        are those of :meth:`add_scalar`, applied to every scalar.
        """
        from scibind_generated.midas.models import TrackerResultsDocument

        if isinstance(results, Mapping):
            document = dict(results)
        else:
            document = yield fx.Blocking(_read_json, (Path(results),))
        query = {
            "community_id": int(community_id),
            "producer_display_name": producer_display_name,
            "producer_revision": producer_revision,
            "submit_time": submit_time,
            "parent_keys": ";".join(parent_keys) if parent_keys else None,
            "config_item_id": _opt_id(config_item_id),
            "test_dataset_id": _opt_id(test_dataset_id),
            "truth_dataset_id": _opt_id(truth_dataset_id),
            "branch": branch,
            "build_results_url": build_results_url,
            "extra_urls": _json_text(extra_urls),
            "unofficial": _flag(unofficial),
            "silent": _flag(silent),
        }
        endpoint = _ep("tracker.upload_tracker_results")
        extra = {"params": _json_text(params)} if params is not None else {}
        resp = yield fx.Call(
            _WithQuery(endpoint, extra) if extra else endpoint,  # type: ignore[arg-type]
            {
                "body": TrackerResultsDocument.from_dict(document),
                "token": "",  # filled in by the auth flow
                **{k: v for k, v in query.items() if v is not None},
            },
        )
        return list(_data(resp.parsed.data) or [])


class _WithQuery:
    """A generated endpoint module that also sends ``extra`` query parameters.

    For a query parameter the spec cannot declare: openapi-python-client 0.29.1 keeps the query of a request
    in a local variable named ``params``, so an API parameter called ``params`` (the tracker's results upload)
    would overwrite it. Parsing stays the endpoint's own.
    """

    def __init__(self, endpoint: ModuleType, extra: Mapping[str, str]) -> None:
        self._endpoint = endpoint
        self._extra = dict(extra)
        self.__name__ = endpoint.__name__
        self._build_response = endpoint._build_response
        self._parse_response = endpoint._parse_response

    def _get_kwargs(self, **kwargs: Any) -> dict[str, Any]:
        request: dict[str, Any] = self._endpoint._get_kwargs(**kwargs)
        request["params"] = {**request.get("params", {}), **self._extra}
        return request


def _opt_id(value: Id | None) -> int | None:
    return int(value) if value is not None else None


def _json_text(value: Mapping[str, Any] | Sequence[Mapping[str, str]] | None) -> str | None:
    """``params`` / ``extra_urls`` as the tracker takes them: JSON text."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return json.dumps(dict(value))
    return json.dumps([dict(u) for u in value])


def _read_json(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise errors.ConfigurationError(f"{path} does not hold a JSON object")
    return data
