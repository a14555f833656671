"""pytest fixtures for users of scibind (registered through the ``pytest11`` entry point).

Each fixture yields a fresh stateful fake with respx routing active for its origins, so code under test that
uses scibind (or plain httpx) talks to the fake. Fakes are imported only when a fixture is used.

* ``fake_dandi``    -- :class:`scibind.testing.dandi.FakeDandiArchive`
* ``fake_gen3``     -- :class:`scibind.testing.gen3.FakeGen3Commons`
* ``fake_mytardis`` -- :class:`scibind.testing.mytardis.FakeMyTardis`
* ``fake_midas``    -- :class:`scibind.testing.midas.FakeMidas`
* ``dserver_server`` (session scope) -- a real dserver on loopback
  (:func:`scibind.testing.dserver_server.run_dserver`); needs ``scibind[dserver-server]``: without it the
  tests using it fail with an installation hint (they skip instead when ``SCIBIND_ALLOW_SKIP_DSERVER=1``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

__all__ = ["dserver_server", "fake_dandi", "fake_gen3", "fake_midas", "fake_mytardis"]


@pytest.fixture
def fake_dandi() -> Iterator[Any]:
    from scibind.testing.dandi import FakeDandiArchive

    fake = FakeDandiArchive()
    with fake.mock():
        yield fake


@pytest.fixture
def fake_gen3() -> Iterator[Any]:
    from scibind.testing.gen3 import FakeGen3Commons

    fake = FakeGen3Commons()
    with fake.mock():
        yield fake


@pytest.fixture
def fake_mytardis() -> Iterator[Any]:
    from scibind.testing.mytardis import FakeMyTardis

    fake = FakeMyTardis()
    with fake.mock():
        yield fake


@pytest.fixture
def fake_midas() -> Iterator[Any]:
    from scibind.testing.midas import FakeMidas

    fake = FakeMidas()
    with fake.mock():
        yield fake


@pytest.fixture(scope="session")
def dserver_server() -> Iterator[Any]:
    from scibind.testing.dserver_server import require_for_tests, run_dserver

    require_for_tests()

    with run_dserver() as server:
        yield server
