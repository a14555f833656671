"""The drivers of Midas modules: multi-factor auth, solr, thumbnail creator, batchmake, dicomextractor, tracker."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
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
        """Add a value to a trend (producer and trend are created on first use)."""

        def opt_id(x: Id | None) -> int | None:
            return int(x) if x is not None else None

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
                    "submissionUuid": submission_uuid,
                    "configItemId": opt_id(config_item_id),
                    "testDatasetId": opt_id(test_dataset_id),
                    "truthDatasetId": opt_id(truth_dataset_id),
                    "unit": unit,
                    "branch": branch,
                    "buildResultsUrl": build_results_url,
                    "params": json.dumps(dict(params)) if params is not None else None,
                    "extraUrls": json.dumps([dict(u) for u in extra_urls])
                    if extra_urls is not None
                    else None,
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
        unofficial: bool = False,
    ) -> fx.Op[list[Scalar]]:
        """Add every number of a JSON document (a mapping, or the path of a JSON file) as a scalar."""
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
            "unofficial": _flag(unofficial),
        }
        resp = yield fx.Call(
            _ep("tracker.upload_tracker_results"),
            {
                "body": TrackerResultsDocument.from_dict(document),
                "token": "",  # filled in by the auth flow
                **{k: v for k, v in query.items() if v is not None},
            },
        )
        return list(_data(resp.parsed.data) or [])


def _read_json(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise errors.ConfigurationError(f"{path} does not hold a JSON object")
    return data
