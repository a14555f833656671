"""Programs, projects, deletion of graph entities (dependents first, or together), the file manifest and the
project's dictionary, through the facade."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from scibind import errors
from scibind.gen3 import DeletionError
from scibind.gen3._sheepdog_ops import children_first
from scibind.testing.gen3 import FakeGen3Commons
from scibind.testing.gen3_dictionary import BUILTIN_DICTIONARY

from .conftest import PROJECT_ID, call, close, make_client, seed


def ids_of(fake: FakeGen3Commons, label: str) -> list[str]:
    return sorted(n.id for n in fake.graph.nodes_of(label))


def deletions(fake: FakeGen3Commons) -> list[Any]:
    return [r for r in fake.requests if r.method == "DELETE" and "/entities/" in r.url.path]


# -- programs and projects -------------------------------------------------------------------------------------
async def test_programs_and_projects_are_created_updated_and_deleted(
    g3: Any, fake: FakeGen3Commons
) -> None:
    created = await call(g3.create_program("NEW", dbgap_accession_number="phs-new"))
    assert created.name == "NEW" and created.message == "Program registered."
    again = await call(g3.create_program("NEW", dbgap_accession_number="phs-new2"))
    assert again.id == created.id and again.message == "Program is updated!"
    outcome = await call(
        g3.create_project(
            "NEW", "p1", dbgap_accession_number="phs-new-p1", name="First",
            properties={"availability_type": "Open"},
        )
    )  # fmt: skip
    assert outcome.type == "project" and outcome.action == "create" and outcome.id
    assert (await call(g3.create_project("NEW", "p1", dbgap_accession_number="x"))).action == (
        "update"
    )
    assert "NEW" in await call(g3.programs())
    (project,) = await call(g3.projects("NEW"))
    assert (project.project_id, project.name) == ("NEW-p1", "First")
    with pytest.raises(errors.BadRequestError, match="not empty"):
        await call(g3.delete_program("NEW"))
    await call(g3.delete_project("NEW-p1"))
    await call(g3.delete_program("NEW"))
    assert "NEW" not in await call(g3.programs())
    with pytest.raises(errors.NotFoundError):
        await call(g3.create_project("NOPE", "p", dbgap_accession_number="x"))


async def test_only_administrators_register_programs(fake: FakeGen3Commons, kind: str) -> None:
    user = fake.add_user("plain@example.org", authz={"/programs/DEV": [{"method": "*", "service": "*"}]})  # fmt: skip
    client = make_client(
        kind, api_key=fake.new_api_key(user)["api_key"], transport=fake.transport()
    )
    try:
        with pytest.raises(errors.PermissionDeniedError):
            await call(client.create_program("X", dbgap_accession_number="phs-x"))
    finally:
        await close(client)


# -- deletion ---------------------------------------------------------------------------------------------------
async def test_delete_records_refuses_an_entity_with_dependents_and_deletes_the_rest(
    g3: Any, fake: FakeGen3Commons
) -> None:
    seed(fake, subjects=2, samples_per_subject=2)
    subjects, samples = ids_of(fake, "subject"), ids_of(fake, "sample")
    lone = samples[0]
    result = await call(g3.delete_records(PROJECT_ID, [subjects[0], lone, "not-an-id"]))
    assert not result.ok and result.deleted == (lone,) and result.missing == ("not-an-id",)
    (failure,) = result.failed
    assert failure.id == subjects[0] and failure.index == 0 and failure.type == "subject"
    assert "depend on it" in failure.messages[0]
    assert subjects[0] in ids_of(fake, "subject") and lone not in ids_of(fake, "sample")
    with pytest.raises(DeletionError, match="1 entities not deleted"):
        result.raise_for_failures()


async def test_with_dependents_deletes_them_in_the_same_transaction(
    g3: Any, fake: FakeGen3Commons
) -> None:
    seed(fake, subjects=2, samples_per_subject=3)
    subject = ids_of(fake, "subject")[0]
    children = {n.id for n in fake.graph.children(fake.graph.nodes[subject])}
    result = await call(g3.delete_records(PROJECT_ID, subject, with_dependents=True))
    assert result.ok and set(result.deleted) == {subject, *children}
    assert len(ids_of(fake, "sample")) == 3 and len(ids_of(fake, "subject")) == 1
    assert len(deletions(fake)) == 2  # refused once (naming the dependents), then all together


async def test_delete_node_in_batches(g3: Any, fake: FakeGen3Commons) -> None:
    seed(fake, subjects=2, samples_per_subject=3)
    result = await call(g3.delete_node(PROJECT_ID, "sample", batch_size=4))
    assert result.ok and len(result.deleted) == 6 and ids_of(fake, "sample") == []
    assert len(deletions(fake)) == 2


@pytest.mark.parametrize("order", ["dependents-first", "given"])
async def test_delete_nodes_orders_dependents_first(
    g3: Any, fake: FakeGen3Commons, order: str
) -> None:
    seed(fake, subjects=2, samples_per_subject=2)
    result = await call(g3.delete_nodes(PROJECT_ID, ["subject", "sample"], order=order))
    if order == "dependents-first":
        assert result.ok and len(result.deleted) == 6
        assert ids_of(fake, "subject") == ids_of(fake, "sample") == []
    else:  # as the SDK: the caller's order, and subjects cannot go before their samples
        assert not result.ok and len(result.failed) == 2 and result.deleted == ()
        assert len(ids_of(fake, "sample")) == 4  # it stopped at the first node type


def test_children_first_from_the_dictionary() -> None:
    order = children_first(["subject", "project", "submitted_unaligned_reads", "sample"],
                           BUILTIN_DICTIONARY)  # fmt: skip
    assert order == ["submitted_unaligned_reads", "sample", "subject", "project"]
    assert children_first(["sample", "subject"], BUILTIN_DICTIONARY) == ["sample", "subject"]


async def test_deletion_without_permission_is_reported_not_raised(
    fake: FakeGen3Commons, kind: str
) -> None:
    seed(fake, subjects=1, samples_per_subject=1)
    reader = fake.add_user("reader@example.org", authz={"/programs/DEV": [{"method": "read", "service": "*"}]})  # fmt: skip
    client = make_client(
        kind, api_key=fake.new_api_key(reader)["api_key"], transport=fake.transport()
    )
    try:
        result = await call(client.delete_records(PROJECT_ID, ids_of(fake, "sample")))
    finally:
        await close(client)
    assert isinstance(result.error, errors.PermissionDeniedError)
    assert len(result.failed) == 1 and ids_of(fake, "sample")


async def test_bad_arguments(g3: Any) -> None:
    with pytest.raises(errors.ConfigurationError):
        await call(g3.delete_records("nodash", ["x"]))
    with pytest.raises(errors.ConfigurationError):
        await call(g3.delete_records(PROJECT_ID, ["x"], batch_size=0))
    with pytest.raises(errors.ConfigurationError):
        await call(g3.delete_nodes(PROJECT_ID, "sample"))
    with pytest.raises(errors.ConfigurationError):
        await call(g3.delete_nodes(PROJECT_ID, ["bad name!"]))


# -- manifest and project dictionary ---------------------------------------------------------------------------
async def test_project_manifest_of_data_files(g3: Any, fake: FakeGen3Commons) -> None:
    seed(fake, subjects=1, samples_per_subject=1)
    reads = {
        "type": "submitted_unaligned_reads", "submitter_id": "reads-1",
        "samples": {"submitter_id": "sample-0-0"}, "file_name": "r.fastq", "file_size": 5,
        "md5sum": hashlib.md5(b"hello").hexdigest(), "data_category": "Sequencing Reads",
        "data_format": "FASTQ", "data_type": "Unaligned Reads",
    }  # fmt: skip
    assert (await call(g3.submit(PROJECT_ID, [reads]))).ok
    (node,) = fake.graph.nodes_of("submitted_unaligned_reads")
    (entry,) = await call(g3.project_manifest(PROJECT_ID, [node.id]))
    assert entry["id"] == node.id and entry["local_file_path"] == "r.fastq"
    assert entry["md5sum"] == reads["md5sum"] and entry["file_size"] == 5
    with pytest.raises(errors.BadRequestError, match="not a data file"):
        await call(g3.project_manifest(PROJECT_ID, ids_of(fake, "sample")))
    with pytest.raises(errors.ConfigurationError):
        await call(g3.project_manifest(PROJECT_ID, []))


async def test_project_dictionary(g3: Any) -> None:
    entries = await call(g3.project_dictionary(PROJECT_ID))
    assert {"program", "project", "subject", "sample", "submitted_unaligned_reads"} <= set(entries)
    assert "_all" not in entries
    assert (await call(g3.dictionary_node(entries[0])))["id"] == entries[0]
