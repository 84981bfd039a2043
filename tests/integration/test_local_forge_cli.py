"""`agentmesh forge init`, `issue ...` and `pr ...` as real processes on a real bare remote."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from agentmesh.forge.local.bootstrap import DEFAULT_LABELS
from agentmesh.host.config import parse_mesh_policy
from tests.support import git, remote_refs
from tests.support.cli import ok_json, run_cli

ISSUE_FIELDS = {"number", "title", "body", "state", "labels", "author"}
PULL_FIELDS = {"number", "title", "body", "state", "head", "base", "head_sha", "author", "reviews"}


def run(tmp_path: Path, *args: str, agent: str = "alice", remote: str | None = None,
        stdin: str | None = None) -> subprocess.CompletedProcess:
    prefix = ["--remote", remote, "--agent", agent] if remote else []
    return run_cli(*prefix, *args, cwd=tmp_path, env={"HOME": str(tmp_path / "home")}, input=stdin, timeout=60)


@pytest.fixture
def mesh(tmp_path):
    """A remote created by `agentmesh forge init`; returns (path, url)."""
    created = ok_json(run(tmp_path, "forge", "init", str(tmp_path / "mesh.git"), "--json"))
    return Path(created["path"]), created["url"]


def test_forge_init(tmp_path, mesh):
    path, url = mesh
    assert url == path.as_uri()
    refs = remote_refs(path)
    assert set(refs) == {"refs/heads/main", "refs/agentmesh/labels"}
    assert git("symbolic-ref", "HEAD", cwd=path) == "refs/heads/main"
    assert git("ls-tree", "-r", "--name-only", "main", cwd=path).split() == [".agentmesh/mesh.yaml", "README.md"]
    policy_text = git("show", "main:.agentmesh/mesh.yaml", cwd=path)
    assert parse_mesh_policy(policy_text).labels.eligible  # the starter policy is valid
    assert "# how long a claim lives" in policy_text
    labels = json.loads(git("show", "refs/agentmesh/labels:labels.json", cwd=path))["labels"]
    assert set(labels) == set(DEFAULT_LABELS)

    again = run(tmp_path, "forge", "init", str(path))
    assert again.returncode == 1
    assert again.stderr.startswith("agentmesh: error:") and "not empty" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1

    human = run(tmp_path, "forge", "init", str(tmp_path / "second.git"))
    assert human.returncode == 0 and "second.git" in human.stdout


def test_issue_commands(tmp_path, mesh):
    _, url = mesh
    created = ok_json(run(tmp_path, "issue", "create", "Fix the login", "--body", "It fails",
                          "--label", "task", "--label", "bug", "--json", remote=url))
    assert set(created) >= ISSUE_FIELDS
    assert (created["title"], created["labels"], created["author"]) == ("Fix the login", ["task", "bug"], "alice")
    number = created["number"]
    other = ok_json(run(tmp_path, "issue", "create", "From stdin", "--body-file", "-", "--json",
                        remote=url, stdin="body from a file\n"))
    assert other["body"] == "body from a file\n"

    listed = ok_json(run(tmp_path, "issue", "list", "--label", "task", "--json", remote=url))
    assert [i["number"] for i in listed] == [number]
    assert set(listed[0]) >= ISSUE_FIELDS
    human = run(tmp_path, "issue", "list", remote=url)
    assert human.returncode == 0 and "Fix the login" in human.stdout and "From stdin" in human.stdout

    assert run(tmp_path, "issue", "comment", str(number), "On it", agent="bob", remote=url).returncode == 0
    labelled = ok_json(run(tmp_path, "issue", "label", str(number), "--add", "agentmesh:claimed",
                           "--remove", "bug", "--json", remote=url))
    assert labelled["labels"] == ["task", "agentmesh:claimed"]

    shown = ok_json(run(tmp_path, "issue", "show", str(number), "--json", remote=url))
    assert set(shown) >= ISSUE_FIELDS
    assert [(c["author"], c["body"]) for c in shown["comments"]] == [("bob", "On it")]
    text = run(tmp_path, "issue", "show", str(number), remote=url).stdout
    assert "Fix the login" in text and "On it" in text

    assert run(tmp_path, "issue", "close", str(number), remote=url).returncode == 0
    assert run(tmp_path, "issue", "close", str(number), remote=url).returncode == 0
    closed = ok_json(run(tmp_path, "issue", "list", "--state", "closed", "--json", remote=url))
    assert [i["number"] for i in closed] == [number]


def test_issue_errors_are_one_line(tmp_path, mesh):
    _, url = mesh
    missing = run(tmp_path, "issue", "show", "404", remote=url)
    assert missing.returncode == 1
    assert missing.stderr.strip() == "agentmesh: error: #404 not found"
    both = run(tmp_path, "issue", "create", "x", "--body", "a", "--body-file", "-", remote=url, stdin="b")
    assert both.returncode == 1 and len(both.stderr.strip().splitlines()) == 1
    nothing = run(tmp_path, "issue", "label", "1", remote=url)
    assert nothing.returncode == 1


def test_hostile_text_does_not_reach_the_terminal(tmp_path, mesh):
    _, url = mesh
    number = ok_json(run(tmp_path, "issue", "create", "evil\x1b]0;owned\x07 title", "--body", "\x1b[2J",
                         "--json", remote=url))["number"]
    for args in (["issue", "list"], ["issue", "show", str(number)]):
        out = run(tmp_path, *args, remote=url).stdout
        assert "\x1b" not in out and "\x07" not in out


def test_pr_commands(tmp_path, mesh):
    path, url = mesh
    issue = ok_json(run(tmp_path, "issue", "create", "Add a greeting", "--json", remote=url))["number"]
    work = tmp_path / "work"
    git("clone", "--quiet", url, str(work))
    git("checkout", "--quiet", "-b", "alice/1-greeting", cwd=work)
    (work / "hello.txt").write_text("hello\n")
    git("add", "hello.txt", cwd=work)
    git("commit", "--quiet", "-m", "Add hello", cwd=work)
    git("push", "--quiet", "origin", "alice/1-greeting", cwd=work)
    head = git("rev-parse", "HEAD", cwd=work)

    created = ok_json(run(tmp_path, "pr", "create", "--head", "alice/1-greeting", "--title", "Add a greeting",
                          "--body", f"Closes #{issue}", "--json", remote=url))
    assert set(created) >= PULL_FIELDS
    assert (created["head"], created["base"], created["head_sha"], created["state"]) == (
        "alice/1-greeting", "main", head, "open")
    number = created["number"]
    adopted = ok_json(run(tmp_path, "pr", "create", "--head", "alice/1-greeting", "--title", "again", "--json",
                          remote=url))
    assert adopted["number"] == number

    listed = ok_json(run(tmp_path, "pr", "list", "--json", remote=url))
    assert [p["number"] for p in listed] == [number]
    assert "alice/1-greeting" in run(tmp_path, "pr", "list", remote=url).stdout

    no_verdict = run(tmp_path, "pr", "review", str(number), remote=url, agent="bob")
    assert no_verdict.returncode == 1
    reviewed = run(tmp_path, "pr", "review", str(number), "--approve", "--body", "LGTM", remote=url, agent="bob")
    assert reviewed.returncode == 0, reviewed.stderr
    shown = ok_json(run(tmp_path, "pr", "show", str(number), "--json", remote=url))
    assert [{k: r[k] for k in ("author", "state", "commit_id")} for r in shown["reviews"]] == [
        {"author": "bob", "state": "APPROVED", "commit_id": head}]
    assert "APPROVED by bob" in run(tmp_path, "pr", "show", str(number), remote=url).stdout

    merged = run(tmp_path, "pr", "merge", str(number), remote=url)
    assert merged.returncode == 0, merged.stderr
    assert "merged PR" in merged.stdout
    assert git("show", "main:hello.txt", cwd=path) == "hello"
    merged_list = ok_json(run(tmp_path, "pr", "list", "--state", "merged", "--json", remote=url))
    assert [(p["number"], p["state"]) for p in merged_list] == [(number, "merged")]
    assert ok_json(run(tmp_path, "issue", "show", str(issue), "--json", remote=url))["state"] == "closed"


def test_pr_close_and_squash(tmp_path, mesh):
    _, url = mesh
    work = tmp_path / "work"
    git("clone", "--quiet", url, str(work))
    for branch in ("feature/a", "feature/b"):
        git("checkout", "--quiet", "-B", branch, "origin/main", cwd=work)
        (work / f"{branch[-1]}.txt").write_text("x\n")
        git("add", "-A", cwd=work)
        git("commit", "--quiet", "-m", branch, cwd=work)
        git("push", "--quiet", "origin", branch, cwd=work)
    a = ok_json(run(tmp_path, "pr", "create", "--head", "feature/a", "--base", "main", "--title", "A", "--json",
                    remote=url))["number"]
    b = ok_json(run(tmp_path, "pr", "create", "--head", "feature/b", "--title", "B", "--json", remote=url))["number"]
    closed = ok_json(run(tmp_path, "pr", "close", str(a), "--json", remote=url))
    assert closed["state"] == "closed"
    squashed = ok_json(run(tmp_path, "pr", "merge", str(b), "--squash", "--json", remote=url))
    assert squashed["state"] == "merged"
    assert ok_json(run(tmp_path, "pr", "list", "--state", "closed", "--json", remote=url))[0]["number"] == a
    bad = run(tmp_path, "pr", "merge", str(a), remote=url)
    assert bad.returncode == 1 and "closed" in bad.stderr
    evil = run(tmp_path, "pr", "create", "--head", "--upload-pack=x", "--title", "t", remote=url)
    assert evil.returncode == 1 and "invalid branch name" in evil.stderr
