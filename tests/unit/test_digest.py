"""core/digest.py: the same digests as hashlib, and the only way agentmesh hashes (issue 16: hashlib's OpenSSL
start-up is ~11 M instructions of a claim from cron)."""

import ast
import hashlib
from pathlib import Path

import pytest

import agentmesh
from agentmesh.core.digest import sha1, sha256

PACKAGE = Path(agentmesh.__file__).parent


@pytest.mark.parametrize("data", [b"", b"abc", b"blob 3\0abc", bytes(range(256)) * 300])
def test_the_digests_are_hashlibs(data):
    assert sha1(data).hexdigest() == hashlib.sha1(data).hexdigest()
    assert sha256(data).digest() == hashlib.sha256(data).digest()
    grown = sha256()
    grown.update(data[:7])
    grown.update(data[7:])
    assert grown.hexdigest() == hashlib.sha256(data).hexdigest()


def test_this_interpreter_needs_no_hashlib_for_them():
    """The fallback is only for a CPython built without its own SHA modules; here they must be found, or every
    claim pays OpenSSL's start-up again without a test saying so."""
    assert sha1.__module__ != "_hashlib" and sha256.__module__ != "_hashlib"
    assert not type(sha256()).__module__.startswith("_hashlib")


def hashlib_importers(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        if path == root / "core" / "digest.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [f"{path.relative_to(root)}: {name}" for name in names if name.split(".")[0] == "hashlib"]
    return found


def test_no_module_but_core_digest_imports_hashlib(tmp_path):
    assert hashlib_importers(PACKAGE) == []
    (tmp_path / "bad.py").write_text("import os\n\ndef f():\n    from hashlib import sha1\n")
    assert hashlib_importers(tmp_path) == ["bad.py: hashlib"]  # the check sees an import inside a function too
