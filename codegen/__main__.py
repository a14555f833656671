"""Command line: ``python -m codegen {capture,fetch,normalize,generate,check,diff,dictionary,metadata-models}``.

Each subcommand lives in its own module with a ``main(args) -> int`` function, imported only when used.
"""

from __future__ import annotations

import argparse
import importlib
import sys


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m codegen", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser(
        "capture", help="start a real server here and capture its served OpenAPI document"
    )
    c.add_argument("service", choices=["dserver"])
    c.set_defaults(module="codegen.capture")

    f = sub.add_parser("fetch", help="fetch a live server's OpenAPI document into specs/SERVICE/")
    f.add_argument("service")
    f.add_argument("--url", required=True, help="URL of the server's OpenAPI/Swagger document")
    f.add_argument(
        "--token",
        help="bearer token, if the document needs one (never stored; https or loopback only)",
    )
    f.add_argument(
        "--as",
        dest="variant",
        metavar="NAME",
        help="write specs/SERVICE/NAME/ (e.g. `live`) instead of specs/SERVICE/; the project's document "
        "stays untouched",
    )
    f.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")
    f.add_argument(
        "--max-bytes", type=int, default=20_000_000, help="refuse larger documents (default 20 MB)"
    )
    f.set_defaults(module="codegen.fetch")

    g = sub.add_parser(
        "generate", help="normalise specs and regenerate generated/ (all services by default)"
    )
    g.add_argument("services", nargs="*")
    g.add_argument(
        "--output", help="write into this directory instead of generated/scibind_generated"
    )
    g.add_argument(
        "--from",
        dest="variant",
        metavar="NAME",
        help="build from specs/SERVICE/NAME/ (e.g. a `fetch --as live` document) with "
        "specs/SERVICE/NAME-overrides.yaml; needs --output, never touches generated/ or the lock",
    )
    g.add_argument("--summary", action="store_true", help="print a per-service summary table")
    g.add_argument(
        "--strict",
        action="store_true",
        help="also fail on generator warnings (e.g. dropped responses)",
    )
    g.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="print generator warnings and normalisation notes",
    )
    g.set_defaults(module="codegen.generate")

    n = sub.add_parser(
        "normalize", help="print a spec's normalised OpenAPI 3 document (what generate builds from)"
    )
    n.add_argument(
        "spec",
        help="a spec file (overrides.yaml next to it is applied unless --overrides is given)",
    )
    n.add_argument("--overrides", help="an overrides file to apply")
    n.set_defaults(module="codegen.normalize")

    k = sub.add_parser(
        "check", help="regenerate into a temporary directory; fail if generated/ differs"
    )
    k.add_argument("services", nargs="*")
    k.set_defaults(module="codegen.check")

    d = sub.add_parser(
        "diff", help="readable API diff between two spec versions (breaking changes marked)"
    )
    d.add_argument("old")
    d.add_argument("new")
    d.add_argument("--format", choices=["text", "markdown", "json"], default="text")
    d.add_argument(
        "--fail-on-breaking", action="store_true", help="exit 1 when a breaking change is found"
    )
    d.add_argument("--old-overrides", help="overrides to apply to OLD before comparing")
    d.add_argument("--new-overrides", help="overrides to apply to NEW before comparing")
    d.add_argument(
        "--ignore-error-responses",
        action="store_true",
        help="leave 4xx/5xx responses out (documents differ in which errors they list)",
    )
    d.set_defaults(module="codegen.diff")

    dd = sub.add_parser("dictionary", help="typed node models from a Gen3 commons' data dictionary")
    dd.add_argument("--url", help="commons base URL (fetches /api/v0/submission/_dictionary/_all)")
    dd.add_argument("--file", help="a dictionary JSON file instead of a URL")
    dd.add_argument(
        "--credentials",
        help="Gen3 credentials.json (path or name in ~/.gen3) for a private dictionary; default GEN3_API_KEY",
    )
    dd.add_argument("--output", required=True, help="output Python module path")
    dd.set_defaults(module="codegen.dictionary")

    m = sub.add_parser(
        "metadata-models", help="typed DANDI metadata from the pinned dandischema's JSON Schema"
    )
    m.set_defaults(module="codegen.metadata_models")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module = importlib.import_module(args.module)
    return int(module.main(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
