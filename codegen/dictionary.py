"""``python -m codegen dictionary``: typed node models from a Gen3 commons' data dictionary.

Reads the dictionary a commons serves at ``/api/v0/submission/_dictionary/_all`` (or a saved copy of it;
a private dictionary with Gen3 credentials: ``--credentials`` or ``GEN3_API_KEY``, as :mod:`scibind.gen3`
finds them; the token is only ever sent to the commons that issued it and never printed or stored),
resolves its ``$ref``s (``_definitions.yaml#/...``, ``_terms.yaml#/...``, ``#/...``) into self-contained
node schemas, turns them into one JSON Schema document and runs datamodel-code-generator to write one
Python module of :class:`typing.TypedDict` classes, one per node type, plus ``LinkReference`` (how an
entity points at its parents), the ``Gen3Node`` union and ``NODE_TYPES`` (node type name -> class).

The module needs nothing at run time beyond the standard library and is deterministic: sorted
definitions, no timestamp, a header naming the source and the dictionary's sha256.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import keyword
import os
import re
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scibind.gen3 import resolve_dictionary

__all__ = [
    "DICTIONARY_PATH",
    "class_name",
    "dictionary_sha256",
    "fetch",
    "json_schema",
    "load_file",
    "main",
    "render",
]

DICTIONARY_PATH = "/api/v0/submission/_dictionary/_all"
ROOT_ALIAS = "Gen3Node"
LINK_MODEL = "LinkReference"
# JSON Schema keywords that carry meaning for a TypedDict; everything else (term, pattern, format,
# minimum, systemAlias, ...) is dropped before generation.
_KEPT = {
    "type",
    "enum",
    "const",
    "items",
    "anyOf",
    "oneOf",
    "allOf",
    "properties",
    "required",
    "description",
}


# -- input ---------------------------------------------------------------------------------------------


def fetch(url: str, timeout: float = 60.0, *, credentials: str | None = None) -> dict[str, Any]:
    """The dictionary of the commons at ``url`` (a base URL, or the ``_dictionary/_all`` URL itself).

    With ``credentials`` (a ``credentials.json`` path or name, as ``scibind.gen3`` takes them), or with
    ``GEN3_API_KEY`` set, the request is authenticated through :class:`scibind.gen3.Gen3Client`; otherwise it
    is anonymous (public dictionaries).
    """
    base = url.rstrip("/")
    if base.endswith(DICTIONARY_PATH):
        base = base[: -len(DICTIONARY_PATH)]
    if credentials or os.environ.get("GEN3_API_KEY"):
        from scibind.config import ClientConfig, Timeout
        from scibind.gen3 import Gen3Client

        config = ClientConfig(timeout=Timeout(read=timeout))
        with Gen3Client(base, credentials=credentials, config=config) as g3:
            return g3.dictionary()
    import httpx

    target = base + DICTIONARY_PATH
    response = httpx.get(target, timeout=timeout, follow_redirects=True)
    response.raise_for_status()
    data = response.json()
    if not isinstance(data, dict):
        raise ValueError(f"{target} did not return a JSON object")
    return data


def load_file(path: str | Path) -> dict[str, Any]:
    """A dictionary saved as JSON (or YAML) in the ``_dictionary/_all`` shape."""
    text = Path(path).read_text(encoding="utf-8")
    if str(path).endswith((".yaml", ".yml")):
        import yaml

        data = yaml.safe_load(text)
    else:
        data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return data


def dictionary_sha256(sources: Mapping[str, Any]) -> str:
    """sha256 of the dictionary's canonical JSON (sorted keys, no whitespace)."""
    canonical = json.dumps(sources, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


# -- schema ----------------------------------------------------------------------------------------------


def class_name(node: str) -> str:
    """``submitted_unaligned_reads`` -> ``SubmittedUnalignedReads``."""
    words = [w for w in re.split(r"[^0-9A-Za-z]+", node) if w]
    name = "".join(w[:1].upper() + w[1:] for w in words) or "Node"
    if name[0].isdigit() or keyword.iskeyword(name):
        name = f"Node{name}"
    return name


def _clean(schema: Any) -> Any:
    if not isinstance(schema, Mapping):
        return {}
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key not in _KEPT:
            continue
        if key in ("anyOf", "oneOf", "allOf"):
            out[key] = [_clean(s) for s in value]
        elif key == "items":
            out[key] = _clean(value) if isinstance(value, Mapping) else {}
        elif key == "properties":
            out[key] = {k: _clean(v) for k, v in value.items()}
        elif key == "enum" and None in value:
            continue
        else:
            out[key] = value
    if isinstance(schema.get("enum"), list) and None in schema["enum"]:
        values = [v for v in schema["enum"] if v is not None]
        choice = {"enum": values} if values else {"type": "null"}
        out = {k: v for k, v in out.items() if k != "enum"}
        out["anyOf"] = [choice, {"type": "null"}]
    if isinstance(schema.get("description"), str):
        out["description"] = " ".join(schema["description"].split())
    return out


def _link_names(links: Any) -> list[str]:
    names: list[str] = []
    for link in links or []:
        if isinstance(link, Mapping) and "subgroup" in link:
            names += _link_names(link["subgroup"])
        elif isinstance(link, Mapping) and "name" in link:
            names.append(str(link["name"]))
    return names


def _node_schema(node: str, schema: Mapping[str, Any], title: str) -> dict[str, Any]:
    links = set(_link_names(schema.get("links")))
    properties: dict[str, Any] = {}
    for name, prop in (schema.get("properties") or {}).items():
        if name in links:
            ref = {"$ref": f"#/$defs/{LINK_MODEL}"}
            properties[name] = {"anyOf": [ref, {"type": "array", "items": ref}]}
        elif name == "type":
            properties[name] = {"enum": [node]}
        else:
            properties[name] = _clean(prop)
    properties.setdefault("type", {"enum": [node]})
    required = sorted({*(str(r) for r in schema.get("required") or [] if r in properties), "type"})
    out: dict[str, Any] = {
        "type": "object",
        "title": title,
        "properties": properties,
        "required": required,
    }
    description = schema.get("description")
    if isinstance(description, str) and description.strip():
        out["description"] = " ".join(description.split())
    return out


def json_schema(sources: Mapping[str, Any]) -> dict[str, Any]:
    """One JSON Schema whose ``$defs`` hold a model per node type (plus ``LinkReference``)."""
    nodes = resolve_dictionary(sources)
    names: dict[str, str] = {}
    taken = {LINK_MODEL, ROOT_ALIAS}
    for node in sorted(nodes):
        name = class_name(node)
        base, n = name, 2
        while name in taken:
            name, n = f"{base}{n}", n + 1
        taken.add(name)
        names[node] = name
    defs: dict[str, Any] = {
        LINK_MODEL: {
            "type": "object",
            "title": LINK_MODEL,
            "description": "A link to a parent entity, by id or by its unique keys.",
            "properties": {
                "id": {"type": "string"},
                "submitter_id": {"type": "string"},
                "code": {"type": "string"},
                "name": {"type": "string"},
            },
        }
    }
    for node, name in names.items():
        defs[name] = _node_schema(node, nodes[node], name)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": ROOT_ALIAS,
        "$defs": {key: defs[key] for key in sorted(defs)},
        "anyOf": [{"$ref": f"#/$defs/{names[node]}"} for node in sorted(names)],
        "x-node-types": names,
    }


# -- output ----------------------------------------------------------------------------------------------


def _header(source: str, digest: str) -> str:
    return (
        f'"""TypedDict models of the Gen3 data dictionary from {source}.\n\n'
        "Generated by `python -m codegen dictionary` (datamodel-code-generator); do not edit.\n"
        f"Dictionary sha256: {digest}\n"
        '"""'
    )


def render(sources: Mapping[str, Any], source: str) -> str:
    """The generated module's source for the dictionary ``sources`` (``source`` names its origin)."""
    import datamodel_code_generator as dcg

    schema = json_schema(sources)
    names: dict[str, str] = schema.pop("x-node-types")
    code = dcg.generate(
        json.dumps(schema, sort_keys=True),
        input_file_type=dcg.InputFileType.JsonSchema,
        output_model_type=dcg.DataModelType.TypingTypedDict,
        target_python_version=dcg.PythonVersion.PY_311,
        enum_field_as_literal=dcg.LiteralType.All,
        use_field_description=True,
        use_schema_description=True,
        disable_timestamp=True,
        disable_future_imports=True,  # keeps NotRequired visible to TypedDict at run time
        custom_file_header=_header(source, dictionary_sha256(sources)),
        formatters=[],
    )
    if not isinstance(code, str):  # pragma: no cover - one schema gives one module
        raise RuntimeError("datamodel-code-generator returned several modules")
    exported = sorted({*names.values(), LINK_MODEL, ROOT_ALIAS, "NODE_TYPES"})
    mapping = "".join(f'    "{node}": {names[node]},\n' for node in sorted(names))
    tail = (
        "\n\n#: Node type name (the entity's ``type``) -> its TypedDict.\n"
        f"NODE_TYPES: dict[str, type] = {{\n{mapping}}}\n\n"
        "__all__ = [\n" + "".join(f'    "{name}",\n' for name in exported) + "]\n"
    )
    return _format(code.rstrip("\n") + "\n" + tail)


def _format(text: str) -> str:
    """Format with the pinned ruff and fixed settings, so the output does not depend on the cwd."""
    import subprocess

    command = [sys.executable, "-m", "ruff", "format", "--isolated", "--line-length=100",
               "--target-version=py311", "--stdin-filename=nodes.py", "-"]  # fmt: skip
    try:
        done = subprocess.run(command, input=text, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):  # pragma: no cover - ruff is a dev dependency
        return text
    return done.stdout


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(args: argparse.Namespace) -> int:
    """Entry point of ``python -m codegen dictionary --url URL | --file FILE --output PATH``."""
    url, file = getattr(args, "url", None), getattr(args, "file", None)
    if bool(url) == bool(file):
        print("codegen dictionary: give exactly one of --url and --file", file=sys.stderr)
        return 2
    try:
        credentials = getattr(args, "credentials", None)
        sources = fetch(url, credentials=credentials) if url else load_file(file)
        source = url.rstrip("/") if url else Path(file).name
        text = render(sources, source)
    except Exception as exc:
        print(f"codegen dictionary: {exc}", file=sys.stderr)
        return 1
    output = Path(args.output)
    _write_atomically(output, text)
    print(f"wrote {output}: {len(resolve_dictionary(sources))} node types from {source}")
    return 0
