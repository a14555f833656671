"""Client for Gen3 data commons: Fence (auth, signed URLs), indexd, sheepdog (submission, export), peregrine.

>>> from scibind.gen3 import Gen3Client
>>> g3 = Gen3Client()                         # ~/.gen3/credentials.json or GEN3_API_KEY; endpoint from the key
>>> g3.programs();  g3.projects("DEV");  g3.query("{ sample(first: 5) { submitter_id } }")
>>> for row in g3.records("sample", project_id="DEV-test", fields=["submitter_id", "sample_type"]): ...
>>> g3.export_node("DEV-test", "sample").records();  g3.export_node_to("DEV-test", "sample", "sample.tsv")
>>> result = g3.submit_file("DEV-test", "samples.tsv");  result.failed;  result.raise_for_failures()
>>> record = g3.upload("reads.bam");  g3.download(record.did, "out/");  g3.index_records(uploader="me").list()
>>> g3.create_index_record(hashes={"md5": ...}, size=1, urls=["s3://b/k"]);  g3.index_versions(guid)
>>> g3.delete_nodes("DEV-test", ["subject", "sample"]);  g3.create_project("DEV", "test", dbgap_accession_number=...)
>>> Gen3Client(idp="local");  Gen3Client(token_cache=True);  g3.access_token().reveal()

:class:`AsyncGen3Client` offers the same calls, awaited (``async for`` over listings). See docs/gen3.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from ._auth import Gen3Credentials, InsecureCredentialsWarning, gen3_credentials
    from ._client import AsyncGen3Client, Gen3Client
    from ._dictionary import DictionaryError, resolve_dictionary
    from ._errors import (
        DeletionError,
        GraphQLError,
        IndexPendingError,
        IndexRecordConflictError,
        SubmissionError,
    )
    from ._models import (
        DeletionResult,
        EntityOutcome,
        Export,
        IndexUrlMatch,
        Project,
        SubmissionResult,
    )

__all__ = [
    "AsyncGen3Client",
    "DeletionError",
    "DeletionResult",
    "DictionaryError",
    "EntityOutcome",
    "Export",
    "Gen3Client",
    "Gen3Credentials",
    "GraphQLError",
    "IndexPendingError",
    "IndexRecordConflictError",
    "IndexUrlMatch",
    "InsecureCredentialsWarning",
    "Project",
    "SubmissionError",
    "SubmissionResult",
    "gen3_credentials",
    "resolve_dictionary",
]

_EXPORTS = {
    "AsyncGen3Client": "._client",
    "Gen3Client": "._client",
    "DictionaryError": "._dictionary",
    "resolve_dictionary": "._dictionary",
    "Gen3Credentials": "._auth",
    "InsecureCredentialsWarning": "._auth",
    "gen3_credentials": "._auth",
    "DeletionError": "._errors",
    "GraphQLError": "._errors",
    "IndexPendingError": "._errors",
    "IndexRecordConflictError": "._errors",
    "SubmissionError": "._errors",
    "DeletionResult": "._models",
    "EntityOutcome": "._models",
    "IndexUrlMatch": "._models",
    "Export": "._models",
    "Project": "._models",
    "SubmissionResult": "._models",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)
