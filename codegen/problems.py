"""Reading openapi-python-client's parse results: skipped endpoints, warnings, module collisions."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["collect_problems", "describe", "module_collisions"]

_SKIP_HEADER = re.compile(
    r"WARNING parsing (?P<method>\w+) (?P<path>\S+) within .*Endpoint will not be generated"
)
_WARN_HEADER = re.compile(r"WARNING parsing (?P<method>\w+) (?P<path>\S+) within")


def _text(value: Any) -> str:
    if value is None:
        return ""
    getter = getattr(value, "get_untrusted_value", None)
    return str(getter() if getter else value)


def describe(error: Any) -> tuple[str, str]:
    """``(header, detail)`` of a generator error, as plain one-line text."""
    header = _text(getattr(error, "header", ""))
    detail = re.sub(
        r"<[^<>]*UntrustedString object at 0x[0-9a-f]+>", "", _text(getattr(error, "detail", ""))
    )
    return header, " ".join(detail.split())


def collect_problems(data: Any) -> tuple[list[str], list[str], set[tuple[str, str]]]:
    """``(skipped, warnings, skipped (METHOD, path) pairs)`` from parsed ``GeneratorData``."""
    skipped: list[str] = []
    warnings: list[str] = []
    skipped_ops: set[tuple[str, str]] = set()
    seen: set[int] = set()
    for collection in data.endpoint_collections_by_tag.values():
        for error in collection.parse_errors:
            if id(error) in seen:
                continue
            seen.add(id(error))
            header, detail = describe(error)
            skip = _SKIP_HEADER.search(header)
            if skip:
                key = (skip["method"].upper(), skip["path"])
                if key not in skipped_ops:
                    skipped_ops.add(key)
                    skipped.append(f"{key[0]} {key[1]}: {detail}")
                continue
            warn = _WARN_HEADER.search(header)
            where = f"{warn['method'].upper()} {warn['path']}: " if warn else ""
            warnings.append(f"{where}{detail or header}")
    for error in data.errors:
        header, detail = describe(error)
        warnings.append(f"{header}: {detail}" if detail else header)
    return skipped, warnings, skipped_ops


def module_collisions(data: Any, field_prefix: str) -> list[str]:
    """Endpoints whose module files would overwrite each other (same tag, same Python name)."""
    from openapi_python_client.strings import PythonIdentifier

    problems = []
    for tag, collection in data.endpoint_collections_by_tag.items():
        owners: dict[str, Any] = {}
        for endpoint in collection.endpoints:
            module = str(PythonIdentifier(endpoint.name, field_prefix))
            first = owners.setdefault(module, endpoint)
            if first is not endpoint:
                problems.append(
                    f"{endpoint.method.upper()} {_text(endpoint.path)}: module api/{tag}/{module}.py is also "
                    f"{first.method.upper()} {_text(first.path)} (give one a distinct operationId in overrides)"
                )
    return problems
