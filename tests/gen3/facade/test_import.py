"""``import scibind.gen3`` stays cheap: no generated module (and for the bare package, not even httpx) is imported
until a call needs it."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("statement", "httpx_allowed"),
    [
        ("import scibind.gen3", False),
        ("from scibind.gen3 import Gen3Client, AsyncGen3Client", True),
        ("from scibind.gen3 import gen3_credentials, GraphQLError, SubmissionResult", True),
    ],
)
def test_import_is_lazy(statement: str, httpx_allowed: bool) -> None:
    probe = (
        f"{statement}\n"
        "import sys\n"
        "print(sorted(m for m in sys.modules if m.startswith('scibind_generated')))\n"
        "print('httpx' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[0] == "[]"
    assert httpx_allowed or out[1] == "False"
