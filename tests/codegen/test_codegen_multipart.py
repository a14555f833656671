"""Multipart endpoints: generated code never fixes the boundary, so httpx picks a random one per request."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from codegen import services
from codegen.generate import GenerationError, drop_fixed_multipart_boundaries, generate_service

_HARD_CODED = re.compile(r'"multipart/[^"\n]*boundary=')

_UPLOAD_SCHEMA = {
    "type": "object",
    "required": ["meta"],
    "properties": {"meta": {"type": "string"}, "file": {"type": "string", "format": "binary"}},
}


def _upload_paths() -> dict[str, Any]:
    created = {"201": {"description": "created"}}
    return {
        "/files": {
            "post": {
                "operationId": "uploadFile",
                "tags": ["files"],
                "requestBody": {
                    "required": True,
                    "content": {"multipart/form-data": {"schema": _UPLOAD_SCHEMA}},
                },
                "responses": created,
            }
        },
        "/files/either": {
            "post": {  # several body types: the template sets a Content-Type per type
                "operationId": "uploadEither",
                "tags": ["files"],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/NewPet"}},
                        "multipart/form-data": {"schema": _UPLOAD_SCHEMA},
                    },
                },
                "responses": created,
            }
        },
    }


def test_committed_output_hard_codes_no_boundary() -> None:
    offenders = [
        path.relative_to(services.DEFAULT_OUTPUT).as_posix()
        for path in sorted(services.DEFAULT_OUTPUT.rglob("*.py"))
        if _HARD_CODED.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
    # the one multipart endpoint of the project is still there and still builds a multipart body
    upload = services.DEFAULT_OUTPUT / "mytardis/api/datafiles/create_datafile.py"
    assert '_kwargs["files"] = body.to_multipart()' in upload.read_text(encoding="utf-8")


def test_generated_multipart_endpoints_let_httpx_choose_the_boundary(
    write_spec: Callable[..., Path],
    pets_spec: Callable[..., dict[str, Any]],
    tmp_path: Path,
    run_python: Callable[..., Any],
) -> None:
    spec = write_spec(pets_spec(**_upload_paths()), service="uploads")
    out = tmp_path / "out"
    report = generate_service(spec, package="uploads", output_root=out)
    assert report.ok
    for module in ("upload_file", "upload_either"):
        text = (out / "uploads/api/files" / f"{module}.py").read_text(encoding="utf-8")
        assert "boundary" not in text, module
    # built requests: a random boundary, set by httpx, that delimits the parts
    proc = run_python(
        """
import builtins
import httpx
from io import BytesIO
from uploads.types import Unset
builtins.Unset = Unset  # openapi-python-client 0.29.1 forgets this import in several-body endpoints
from uploads.api.files import upload_either, upload_file
from uploads.models import NewPet, UploadEitherFilesBody, UploadFileBody
from uploads.types import File

data = b"a\\r\\n--+++\\r\\nb"
seen = set()
for module, body_cls in ((upload_file, UploadFileBody), (upload_either, UploadEitherFilesBody)):
    for _ in range(2):
        body = body_cls(meta="m", file=File(payload=BytesIO(data), file_name="f.bin"))
        request = httpx.Client().build_request(**module._get_kwargs(body=body))
        ctype = request.headers["Content-Type"]
        boundary = ctype.split("boundary=", 1)[1]
        assert boundary != "+++" and boundary not in seen, ctype
        seen.add(boundary)
        content = request.read()
        assert content.count(b"--" + boundary.encode()) == 3, content
        assert data in content
request = httpx.Client().build_request(**upload_either._get_kwargs(body=NewPet(name="x")))
assert request.headers["Content-Type"] == "application/json"
print("ok")
""",
        path=out,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("ok")


def test_fixup_refuses_a_boundary_it_does_not_know(tmp_path: Path) -> None:
    api = tmp_path / "pkg" / "api" / "files"
    api.mkdir(parents=True)
    known = api / "known.py"
    known.write_text(
        'def f(headers):\n    x = 1\n    headers["Content-Type"] = "multipart/form-data; boundary=+++"\n\n'
        "    return x\n"
    )
    assert drop_fixed_multipart_boundaries(tmp_path / "pkg") == 1
    assert known.read_text() == "def f(headers):\n    x = 1\n\n    return x\n"
    (api / "other.py").write_text('H = {"Content-Type": "multipart/form-data; boundary=xyz"}\n')
    with pytest.raises(GenerationError, match="still hard-coded"):
        drop_fixed_multipart_boundaries(tmp_path / "pkg")
