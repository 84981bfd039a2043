#!/usr/bin/env python3
"""Trim the official Gitea and GitHub API descriptions to the operations agentmesh calls.

The contract tests validate every request our forge clients send against the official
descriptions. Those are large (GitHub's is 13 MB) and live outside the repository, in
../shared/specs; this script keeps only the operations in OPERATIONS (and every component they
reach through `$ref`) and writes the result to tests/contract/specs/, so a plain clone runs the
contract tests too. Each trimmed copy records its source file, `info.version` and sha256.

    python3 scripts/trim_specs.py [--specs DIR] [--out DIR]

Standard library only: it runs before any dependency is installed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OUT_DIR = REPO / "tests" / "contract" / "specs"
SOURCE_NOTE = "SOURCE.md"

# Every operation that agentmesh/forge/http.py, gitea.py and github.py send: the inventory of what
# the REST backends may call. A call outside it fails the contract tests, even if the forge has it.
OPERATIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "gitea": {
        "/user": ("get",),
        "/repos/{owner}/{repo}/issues": ("get", "post"),
        "/repos/{owner}/{repo}/issues/{index}": ("get", "patch"),
        "/repos/{owner}/{repo}/issues/{index}/comments": ("get", "post"),
        "/repos/{owner}/{repo}/issues/{index}/labels": ("post", "put", "delete"),
        "/repos/{owner}/{repo}/issues/{index}/labels/{id}": ("delete",),
        "/repos/{owner}/{repo}/issues/{index}/timeline": ("get",),
        "/repos/{owner}/{repo}/labels": ("get", "post"),
        "/repos/{owner}/{repo}/pulls": ("get", "post"),
        "/repos/{owner}/{repo}/pulls/{index}": ("get", "patch"),
        "/repos/{owner}/{repo}/pulls/{base}/{head}": ("get",),
        "/repos/{owner}/{repo}/pulls/{index}/merge": ("post",),
        "/repos/{owner}/{repo}/pulls/{index}/reviews": ("get", "post"),
        "/repos/{owner}/{repo}/pulls/{index}/requested_reviewers": ("post",),
        "/repos/{owner}/{repo}/commits/{ref}/status": ("get",),
        "/repos/{owner}/{repo}/statuses/{sha}": ("post",),
        "/repos/{owner}/{repo}/contents/{filepath}": ("get",),
        "/repos/{owner}/{repo}/branches/{branch}": ("delete",),
        "/repos/{owner}/{repo}/collaborators/{collaborator}/permission": ("get",),
    },
    "github": {
        "/user": ("get",),
        "/repos/{owner}/{repo}/issues": ("get", "post"),
        "/repos/{owner}/{repo}/issues/{issue_number}": ("get", "patch"),
        "/repos/{owner}/{repo}/issues/{issue_number}/comments": ("get", "post"),
        "/repos/{owner}/{repo}/issues/{issue_number}/labels": ("post", "put", "delete"),
        "/repos/{owner}/{repo}/issues/{issue_number}/labels/{name}": ("delete",),
        "/repos/{owner}/{repo}/issues/{issue_number}/events": ("get",),
        "/repos/{owner}/{repo}/labels": ("get", "post"),
        "/repos/{owner}/{repo}/pulls": ("get", "post"),
        "/repos/{owner}/{repo}/pulls/{pull_number}": ("get", "patch"),
        "/repos/{owner}/{repo}/pulls/{pull_number}/merge": ("put",),
        "/repos/{owner}/{repo}/pulls/{pull_number}/reviews": ("get", "post"),
        "/repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers": ("post",),
        "/repos/{owner}/{repo}/commits/{ref}/status": ("get",),
        "/repos/{owner}/{repo}/commits/{ref}/check-runs": ("get",),
        "/repos/{owner}/{repo}/statuses/{sha}": ("post",),
        "/repos/{owner}/{repo}/contents/{path}": ("get",),
        "/repos/{owner}/{repo}/git/refs/{ref}": ("delete",),
        "/repos/{owner}/{repo}/collaborators/{username}/permission": ("get",),
    },
}

# The official file each forge's copy is trimmed from (openapi-core reads OpenAPI 3 only, hence
# Gitea's OAS3 rendering rather than its Swagger 2 one).
SOURCES = {"gitea": "gitea-openapi3.json", "github": "github-openapi.json"}
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
# Top-level fields kept besides paths and components; the rest (tags, docs links, webhooks) is prose.
KEPT_FIELDS = ("openapi", "info", "servers", "security")
METADATA = "x-agentmesh-trimmed-from"


def default_specs_dir() -> Path:
    override = os.environ.get("AGENTMESH_SPECS_DIR")
    return Path(override) if override else REPO.parent / "shared" / "specs"


def trimmed_name(kind: str) -> str:
    return f"{kind}.trimmed.json"


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            yield ref
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def resolve_ref(spec: dict, ref: str) -> Any:
    node: Any = spec
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _reachable_components(spec: dict, roots: Iterable[str]) -> dict[str, dict]:
    """The components `roots` reach through `$ref`, transitively, in the source's order."""
    seen: set[tuple[str, str]] = set()
    todo = list(roots)
    while todo:
        ref = todo.pop()
        if not ref.startswith("#/components/"):
            raise ValueError(f"unsupported $ref {ref!r}")  # only local component refs are followed
        section, name = ref.removeprefix("#/components/").split("/", 1)
        key = (section, name.replace("~1", "/").replace("~0", "~"))
        if key not in seen:
            seen.add(key)
            todo.extend(_refs(resolve_ref(spec, ref)))
    components = spec.get("components", {})
    return {section: {name: value for name, value in entries.items() if (section, name) in seen}
            for section, entries in components.items() if any(s == section for s, _ in seen)}


def trim(spec: dict, operations: dict[str, tuple[str, ...]]) -> dict:
    """Only `operations` ({path: methods}) of `spec`, the components they use, and the security schemes."""
    paths = {}
    for path, methods in operations.items():
        item = spec["paths"][path]
        missing = sorted(set(methods) - set(item))
        if missing:
            raise KeyError(f"{path} has no {', '.join(m.upper() for m in missing)} in this description")
        paths[path] = {k: v for k, v in item.items() if k not in HTTP_METHODS or k in methods}
    components = _reachable_components(spec, _refs(paths))
    schemes = spec.get("components", {}).get("securitySchemes")
    if schemes:
        components["securitySchemes"] = schemes
    kept = {k: spec[k] for k in KEPT_FIELDS if k in spec}
    return {**kept, "paths": paths, "components": components}


def trim_source(kind: str, raw: bytes) -> dict:
    """The trimmed description of `kind` from the bytes of its official file, with its provenance."""
    spec = json.loads(raw)
    trimmed = trim(spec, OPERATIONS[kind])
    trimmed[METADATA] = {"file": SOURCES[kind], "version": spec["info"]["version"],
                         "sha256": hashlib.sha256(raw).hexdigest(), "by": "scripts/trim_specs.py"}
    return trimmed


def render(trimmed: dict) -> str:
    """Compact, stable JSON with one line per path and per component, so diffs stay readable."""
    def dump(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    def block(mapping: dict, indent: str, nested: bool) -> str:
        entries = [f"{indent}{dump(k)}:{block(v, indent + ' ', False) if nested else dump(v)}"
                   for k, v in mapping.items()]
        return "{\n" + ",\n".join(entries) + "\n" + indent[:-1] + "}"

    top = {key: block(value, "  ", key == "components") if key in ("paths", "components") else dump(value)
           for key, value in trimmed.items()}
    return "{\n" + ",\n".join(f" {dump(key)}:{text}" for key, text in top.items()) + "\n}\n"


def source_note(trimmed: dict[str, dict]) -> str:
    rows = "\n".join(
        f"| {trimmed_name(kind)} | {meta['file']} | {meta['version']} | {meta['sha256']} | "
        f"{sum(len(m) for m in OPERATIONS[kind].values())} |"
        for kind, meta in ((kind, spec[METADATA]) for kind, spec in trimmed.items()))
    return (
        "# Trimmed API descriptions\n\n"
        "Generated by `python3 scripts/trim_specs.py` from the official descriptions in `../shared/specs`\n"
        "(see SOURCES.md there for where those come from); do not edit by hand. Each copy keeps only the\n"
        "operations agentmesh's REST forge clients call and the components they reference. The contract\n"
        "tests use the full descriptions when present, these copies otherwise, and check that these\n"
        "copies match what the script makes from the full ones.\n\n"
        "Upstream, both under the MIT license: go-gitea/gitea (Copyright (c) 2016 The Gitea Authors) and\n"
        "github/rest-api-description (Copyright (c) GitHub).\n\n"
        "| trimmed copy | source file | info.version | source sha256 | operations |\n"
        "|---|---|---|---|---|\n"
        f"{rows}\n"
    )


def generate(specs_dir: Path) -> dict[str, str]:
    """file name -> text of every file this script writes, made from the descriptions in `specs_dir`."""
    trimmed = {kind: trim_source(kind, (specs_dir / source).read_bytes()) for kind, source in SOURCES.items()}
    files = {trimmed_name(kind): render(spec) for kind, spec in trimmed.items()}
    files[SOURCE_NOTE] = source_note(trimmed)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--specs", type=Path, default=default_specs_dir(), help="the official descriptions")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="where the trimmed copies go")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in generate(args.specs).items():
        (args.out / name).write_text(text, encoding="utf-8")
        print(f"{args.out / name}: {len(text.encode()):,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
