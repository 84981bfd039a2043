"""The built-in syntax gate as the reviewer runs it: a real process in bwrap on a real worktree.

It parses the changed Python, YAML, JSON and TOML files and runs none of the repository: a
worktree whose `yaml.py`, `sitecustomize.py` or `agentmesh/` would act when imported is only read,
and a symlink is not followed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agentmesh.agent.executor import bwrap_available
from agentmesh.agent.gates import run_gate
from agentmesh.core.public import COMMAND_ECHO
from agentmesh.host.config import SYNTAX_GATE, Gate
from tests.support import git, path_only_env

needs_bwrap = pytest.mark.skipif(bwrap_available() is not None, reason=f"bubblewrap unavailable: {bwrap_available()}")
# imported or run, each of these leaves `pwned` in the working directory (the worktree)
HOSTILE = "import pathlib; pathlib.Path('pwned').write_text(__name__)\n"


def worktree(tmp_path: Path, files: dict[str, str]) -> Path:
    path = tmp_path / "worktree"
    git("init", "--quiet", str(path))
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    return path


def gate(tmp_path: Path, tree: Path, changed: list[str], *, sandbox: str = "required", g: Gate = SYNTAX_GATE):
    result = run_gate(g, worktree=tree, log_dir=tmp_path / "logs", sandbox=sandbox, base_env=path_only_env(),
                      forbidden_env=[], public=lambda text: text, pull=7, changed=changed)
    log = (tmp_path / "logs" / "pr-7-gate-syntax.log")
    return result, log.read_text() if log.exists() else ""


@needs_bwrap
def test_broken_files_fail_the_gate_with_where(tmp_path):
    files = {"pkg/mod.py": "def broken(:\n", "ci.yaml": "key: [unclosed\n", "ok.json": "{}", "bad.toml": "a = \n",
             "README.md": "((("}
    tree = worktree(tmp_path, files)
    result, log = gate(tmp_path, tree, list(files))
    assert not result.passed and result.name == "syntax" and result.summary == "exit 1"
    assert "pkg/mod.py: Python: line 1, column 12: invalid syntax" in result.output
    assert "ci.yaml: YAML: line 2, column 1: expected ',' or ']'" in result.output
    assert "bad.toml: TOML: Invalid value" in result.output
    assert "ok.json" not in result.output and "README.md" not in result.output
    assert "4 file(s) checked, 3 do not parse" in result.output
    assert log.startswith(COMMAND_ECHO) and "bwrap" in log.splitlines()[0]  # in the sandbox


@needs_bwrap
def test_only_changed_files_are_checked(tmp_path):
    tree = worktree(tmp_path, {"old.py": "def broken(:\n", "new.py": "X = 1\n"})
    result, _ = gate(tmp_path, tree, ["new.py"])
    assert result.passed and result.summary.endswith(", 1 changed file(s)"), result
    result, _ = gate(tmp_path, tree, ["old.py"])
    assert not result.passed


@needs_bwrap
def test_nothing_of_the_repository_runs(tmp_path):
    """Modules the checker itself would import (yaml, json, tomllib, agentmesh) and the ones Python
    imports at start-up, planted in the worktree, are never imported: the checker runs with -I."""
    planted = dict.fromkeys(("yaml.py", "json.py", "tomllib.py", "sitecustomize.py", "usercustomize.py",
                             "agentmesh/__init__.py", "agentmesh/agent/syntax_gate.py", "encodings.py"), HOSTILE)
    files = {**planted, "conf.yaml": "a: !!python/object/apply:os.system ['touch pwned']\n",
             "setup.py": "import pathlib\npathlib.Path('pwned').write_text('setup')\n"}
    tree = worktree(tmp_path, files)
    result, _ = gate(tmp_path, tree, list(files))
    assert result.passed, result.output
    assert not (tree / "pwned").exists()


@pytest.mark.parametrize("sandbox", [pytest.param("required", marks=needs_bwrap), "off"])
def test_a_symlink_is_not_followed(tmp_path, sandbox):
    """Not even unsandboxed, where the link's target is in reach."""
    outside = tmp_path / "outside.json"
    outside.write_text('{"secret": ')  # would fail, and its error would be public, if it were read
    tree = worktree(tmp_path, {"a.py": "A = 1\n"})
    (tree / "leak.json").symlink_to(outside)
    (tree / "linked").symlink_to(tmp_path)
    result, _ = gate(tmp_path, tree, ["leak.json", "linked/outside.json", "a.py", "gone.py"], sandbox=sandbox)
    assert result.passed and result.summary.endswith(", 4 changed file(s)"), result.output
    assert "1 file(s) parse" in (tmp_path / "logs" / "pr-7-gate-syntax.log").read_text()


def test_no_file_to_check_passes_without_running_anything(tmp_path):
    result, log = gate(tmp_path, tmp_path / "nowhere", ["README.md", "docs/x.txt", "tsconfig.json"])
    assert result.passed and result.summary == "no Python, YAML, JSON or TOML file changed" and log == ""


def test_with_the_sandbox_off_on_purpose_it_runs_unsandboxed(tmp_path):
    tree = worktree(tmp_path, {"pkg/mod.py": "def broken(:\n"})
    result, log = gate(tmp_path, tree, ["pkg/mod.py"], sandbox="off")
    assert not result.passed and "pkg/mod.py: Python: line 1" in result.output
    assert "bwrap" not in log.splitlines()[0]
