"""`agentmesh demo` at small size, with the remote checked independently of what the demo reports."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from agentmesh.host.roster import ROSTER_PATH
from tests.support import agent_forge, agent_mesh, git, journal_entries, load_benchmark, remote_refs
from tests.support.cli import cli_env, run_cli


def _run_hints(stderr: str, cwd: Path, env: dict[str, str]) -> list[str]:
    """Run every agentmesh command of the demo's "look around" hints as a shell would; returns them."""
    hints = stderr.split("look around:\n", 1)[1].splitlines()
    commands = [h.strip() for h in hints if "--remote" in h]
    assert len(commands) == 3, hints
    for command in commands:
        done = subprocess.run(shlex.split(command), capture_output=True, text=True, env=env, cwd=cwd, timeout=120)
        assert done.returncode == 0, (command, done.stderr)
    return commands


def test_the_demo_closes_every_issue_through_reviewed_merged_prs(tmp_path):
    out = run_cli("demo", "--agents", "2", "--issues", "3", "--dir", str(tmp_path / "demo"), "--json",
                  cwd=tmp_path, timeout=240)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    remote = Path(result["remote"])
    assert result == {"remote": str(remote), "agents": 2, "issues": 3, "closed": 3, "prs_merged": 3,
                      "reviews": result["reviews"], "seconds": result["seconds"]}
    assert "look around" in out.stderr and "#1 done" in out.stderr
    assert _run_hints(out.stderr, tmp_path, cli_env(tmp_path))[0].startswith(f"{sys.executable} -m agentmesh ")

    forge = agent_forge(agent_mesh(remote, tmp_path / "inspector", "inspector"))
    issues = forge.list_issues(state="all")
    assert sorted(i.number for i in issues) == [1, 2, 3] and all(i.state == "closed" for i in issues)
    pulls = forge.list_pulls(state="all")
    ring = {"ada": "bob", "bob": "ada"}
    for issue in issues:
        [pull] = [p for p in pulls if p.body.startswith(f"Closes #{issue.number}\n")]
        assert pull.state == "merged" and pull.author in ring
        reviewers = {r.author for r in forge.list_reviews(pull.number) if r.state == "APPROVED"}
        assert reviewers == {ring[pull.author]}  # the sibling in the ring, never the author
        assert git("cat-file", "-e", f"main:demo/greet_{issue.number}.py", cwd=remote) == ""
    assert not remote_refs(remote, "refs/heads/claim/")
    assert sorted(remote_refs(remote, "refs/heads/")) == [
        "refs/heads/agentmesh/agents/ada", "refs/heads/agentmesh/agents/bob", "refs/heads/agentmesh/journals/ada",
        "refs/heads/agentmesh/journals/bob", "refs/heads/main"]
    entries = journal_entries(remote)
    for agent in ("ada", "bob"):
        events = {e.event for e in entries if e.agent == agent}
        assert {"claimed", "pr-opened", "reviewed", "merged"} <= events, (agent, events)
    # main holds the seed commit and one merge per PR, nothing else
    assert git("rev-list", "--count", "--first-parent", "main", cwd=remote) == "4"
    assert len(git("rev-list", "--merges", "--first-parent", "main", cwd=remote).split()) == 3
    for agent in ("ada", "bob"):
        assert (tmp_path / "demo" / "hosts" / agent / "agentmesh.yaml").is_file()


def test_the_demo_refuses_a_folder_that_is_not_empty(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    out = run_cli("demo", "--dir", str(tmp_path), cwd=tmp_path, timeout=60)
    assert out.returncode == 1 and out.stderr.count("\n") == 1 and "must be empty" in out.stderr
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_the_unsigned_benchmark_baseline_makes_no_key_roster_or_signature(tmp_path):
    """benchmarks/bench_signing.py's baseline (AGENTMESH_BENCHMARK_UNSIGNED=1), run by the benchmark's own
    code: the same demo, with none of the signing work it is compared against."""
    bench = load_benchmark("bench_signing")
    run = bench.demo_run(False, tmp_path / "demo", agents=2, issues=1, timeout=240)
    assert run.closed and run.commits > 0 and run.signed_commits == 0
    remote = tmp_path / "demo" / "remote.git"
    assert ROSTER_PATH not in git("ls-tree", "-r", "--name-only", "main", cwd=remote).splitlines()
    assert not list((tmp_path / "demo").rglob("id_ed25519*"))


def test_the_readme_demo_hints_run_where_agentmesh_is_not_on_path(tmp_path):
    """The README runs `.venv/bin/agentmesh demo` without activating the venv: the hints name that program."""
    program = Path(sys.executable).parent / "agentmesh"
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if not (Path(p) / "agentmesh").exists())
    env = cli_env(tmp_path, {"PATH": path})
    out = subprocess.run([str(program), "demo", "--agents", "2", "--issues", "1", "--dir", str(tmp_path / "demo")],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=240)
    assert out.returncode == 0, out.stderr
    assert _run_hints(out.stdout, tmp_path, env)[0].startswith(f"{program} --remote ")
