"""The ways users meet the facade: the pytest fixture (respx), the generated sheepdog client behind ``raw``,
shared credentials between a sync and an async client."""

from __future__ import annotations

from typing import Any

from scibind.gen3 import AsyncGen3Client, Gen3Client, gen3_credentials
from scibind.testing.gen3 import FakeGen3Commons

from .conftest import PROJECT_ID, seed


def test_with_the_fake_gen3_fixture(fake_gen3: FakeGen3Commons) -> None:
    fake_gen3.create_program("DEV")
    fake_gen3.create_project("DEV", "test")
    seed(fake_gen3, subjects=2, samples_per_subject=1)
    with Gen3Client(
        api_key=fake_gen3.new_api_key()["api_key"]
    ) as g3:  # no transport: respx routes it
        assert g3.count("sample", project_id=PROJECT_ID) == 2
        assert g3.submit(PROJECT_ID, [{"type": "subject", "submitter_id": "new",
                                       "projects": {"code": "test"}}]).ok  # fmt: skip


def test_raw_generated_sheepdog_client_shares_the_stack(fake: FakeGen3Commons) -> None:
    from scibind_generated.gen3_sheepdog.api.program import list_programs

    with Gen3Client(api_key=fake.new_api_key()["api_key"], transport=fake.transport()) as g3:
        links: Any = list_programs.sync(client=g3.raw)
        assert links.links == ["/v0/submission/DEV"]
    assert fake.tokens_minted == 1


async def test_raw_generated_client_async(fake: FakeGen3Commons) -> None:
    from scibind_generated.gen3_sheepdog.api.program import list_programs

    async with AsyncGen3Client(
        api_key=fake.new_api_key()["api_key"], transport=fake.transport()
    ) as g3:
        links: Any = await list_programs.asyncio(client=g3.raw)
        assert links.links == [
            "/v0/submission/DEV"
        ]  # the raw call was authenticated by the facade's token flow


async def test_one_token_cache_for_a_sync_and_an_async_client(fake: FakeGen3Commons) -> None:
    creds = gen3_credentials(api_key=fake.new_api_key()["api_key"])
    with Gen3Client(credentials=creds, transport=fake.transport()) as sync_client:
        sync_client.user_info()
        async with AsyncGen3Client(credentials=creds, transport=fake.transport()) as async_client:
            await async_client.user_info()
    assert fake.tokens_minted == 1


async def test_with_the_fake_gen3_fixture_async(fake_gen3: FakeGen3Commons) -> None:
    fake_gen3.create_program("DEV")
    fake_gen3.create_project("DEV", "test")
    seed(fake_gen3, subjects=2, samples_per_subject=1)
    async with AsyncGen3Client(api_key=fake_gen3.new_api_key()["api_key"]) as g3:
        assert await g3.count("sample", project_id=PROJECT_ID) == 2
        assert [
            r["submitter_id"] async for r in g3.records("subject", order_by="submitter_id")
        ] == [
            "subject-0",
            "subject-1",
        ]
