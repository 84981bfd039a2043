"""The committed trimmed API descriptions: exactly the listed operations, and in step with the official ones."""

from __future__ import annotations

import json

import pytest

from tests.contract.spec import TRIMMED_DIR, full_description, specs_dir, trimmer

KINDS = ("gitea", "github")


@pytest.mark.parametrize("kind", KINDS)
def test_a_trimmed_copy_holds_exactly_the_listed_operations_and_its_source(kind):
    copy = json.loads((TRIMMED_DIR / trimmer().trimmed_name(kind)).read_text(encoding="utf-8"))
    methods = trimmer().HTTP_METHODS
    held = {path: {k for k in item if k in methods} for path, item in copy["paths"].items()}
    listed = {path: set(verbs) for path, verbs in trimmer().OPERATIONS[kind].items()}
    assert held == listed, "run python3 scripts/trim_specs.py"
    source = copy[trimmer().METADATA]
    assert source["file"] == trimmer().SOURCES[kind] and source["version"] and len(source["sha256"]) == 64


def test_the_trimmed_copies_are_what_the_script_makes_from_the_official_descriptions():
    if not all(full_description(kind).is_file() for kind in KINDS):
        pytest.skip(f"the official descriptions are not in {specs_dir()}: nothing to compare with")
    for name, text in trimmer().generate(specs_dir()).items():
        committed = (TRIMMED_DIR / name).read_text(encoding="utf-8")
        assert committed == text, f"{name} is out of date: run python3 scripts/trim_specs.py"
