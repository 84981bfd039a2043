"""Agents write to the default branch only by merging a PR: the demo's flow (claim, PR, review,
merge, journals, halt, resume) run by real agent processes against a local-forge remote whose
pre-receive hook refuses every other update of main, as a protected branch on a forge would."""

from __future__ import annotations

import json
from pathlib import Path

from agentmesh.forge.local import LocalForge
from agentmesh.ops.demo import create_remote, demo_roster, issue_body, mesh_policy, seed_issues, watcher, write_host
from tests.support import git, human_commit, journal_entries, remote_refs
from tests.support.cli import run_cli

AGENTS = ["ada", "bob"]
HALT = "refs/heads/agentmesh/halt"
ZERO = "0" * 40
# main takes a fast-forward to a two-parent commit whose first parent is the old head and whose
# subject is the local forge's merge message (forge/local/api.py `_merge_commit`); nothing else.
PROTECT_MAIN = f"""#!/bin/sh
status=0
while read old new ref; do
  [ "$ref" = refs/heads/main ] || continue
  set -- $(git rev-list --parents -n 1 "$new" 2>/dev/null)
  subject=$(git log -1 --format=%s "$new" 2>/dev/null)
  case "$subject" in "Merge pull request #"*) merge=yes;; *) merge=no;; esac
  if [ "$new" = {ZERO} ] || [ $# -ne 3 ] || [ "$2" != "$old" ] || [ $merge = no ]; then
    echo "main is protected: only merges of pull requests ($subject)" >&2
    echo "$ref $subject" >> "$GIT_DIR/refused.log"
    status=1
  fi
done
exit $status
"""


def protected_mesh(root: Path, **policy: object) -> Path:
    """The demo's mesh (a ring of two with its roster, auto-merge, the `python3 check.py` gate) with
    main protected."""
    remote = root / "remote.git"
    create_remote(remote, mesh_policy(AGENTS, **policy), demo_roster(root, AGENTS))
    hook = remote / "hooks" / "pre-receive"
    hook.write_text(PROTECT_MAIN)
    hook.chmod(0o755)
    for name in AGENTS:
        write_host(root, name, str(remote))
    return remote


def agentmesh(root: Path, agent: str, *args: str):
    """`agentmesh --config <agent's> ARGS` as a real process: its JSON output, or its stdout."""
    result = run_cli("--config", str(root / "hosts" / agent / "agentmesh.yaml"), *args, cwd=root, timeout=300)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return json.loads(result.stdout) if "--json" in args else result.stdout


def tick(root: Path, agent: str) -> list[dict]:
    report = agentmesh(root, agent, "tick", "--json")
    return report["monitor-prs"]["events"] + report["claim-task"]["events"]


def work_until_closed(root: Path, remote: Path, number: int, rounds: int = 6) -> list[dict]:
    forge = LocalForge(watcher(root, remote).cache, user="watch")
    seen: list[dict] = []
    for _ in range(rounds):
        for agent in AGENTS:
            seen += tick(root, agent)
        if forge.get_issue(number).state == "closed" and not remote_refs(remote, "refs/heads/claim/"):
            return seen
    raise AssertionError(f"#{number} not closed after {rounds} rounds: {[e['event'] for e in seen]}")


def refused(remote: Path) -> list[str]:
    log = remote / "refused.log"
    return log.read_text().splitlines() if log.exists() else []


def journal_events(remote: Path) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for entry in journal_entries(remote):
        found.setdefault(entry.agent, set()).add(entry.event)
    return found


def test_the_whole_flow_needs_no_push_to_main_but_the_merge(tmp_path):
    root = tmp_path / "mesh"
    remote = protected_mesh(root)
    seed = git("rev-parse", "main", cwd=remote)
    [first] = seed_issues(root, remote, 1)

    events = work_until_closed(root, remote, first)
    assert {"claimed", "pr-opened", "approved", "merged", "cleaned-up"} <= {e["event"] for e in events}
    assert not [e for e in events if e["event"] == "warning"], events  # every journal flush landed

    # main gained exactly one commit: the PR's merge, on top of the seed
    assert git("rev-list", "--first-parent", f"{seed}..main", cwd=remote).split() == [git("rev-parse", "main",
                                                                                           cwd=remote)]
    assert git("log", "-1", "--format=%P", "main", cwd=remote).split()[0] == seed
    assert git("log", "-1", "--format=%s", "main", cwd=remote).startswith("Merge pull request #")
    assert "ai-memory" not in git("ls-tree", "--name-only", "main", cwd=remote).split()
    # the journals are on their own branch, read back by `memory log`
    journals = journal_events(remote)
    assert {"claimed", "pr-opened", "merged", "cleaned-up"} <= journals["ada"]
    assert "reviewed" in journals["bob"]
    logged = agentmesh(root, "bob", "memory", "log", "--json")
    assert {(e["agent"], e["event"]) for e in logged["entries"]} >= {("ada", "merged"), ("bob", "reviewed")}
    assert logged["ignored_journal_lines"] == 0  # the roster vouches for every line the agents wrote

    # the kill switch: a branch, not a commit on main; a second halt updates the reason
    main = git("rev-parse", "main", cwd=remote)
    agentmesh(root, "ada", "halt", "--reason", "release freeze")
    agentmesh(root, "ada", "halt", "--reason", "freeze extended")
    assert git("log", "-1", "--format=%b", HALT, cwd=remote).splitlines()[0] == "freeze extended"
    second = LocalForge(watcher(root, remote).cache, user="demo-user").create_issue(
        "Add greeting helper 2", issue_body(2), ["task"]).number
    halted = agentmesh(root, "bob", "claim-task", "--json")
    assert halted["status"] == "halted" and "freeze extended" in halted["reason"] and halted["events"] == []
    assert agentmesh(root, "bob", "resume").strip() == "resumed (was: freeze extended)"
    # resume pushed a resume commit on top of the two halts: the branch only grows
    assert git("log", "--format=%s", HALT, cwd=remote).splitlines() == [
        "agentmesh: resume [skip ci]", "agentmesh: halt [skip ci]", "agentmesh: halt [skip ci]"]
    assert git("rev-parse", "main", cwd=remote) == main
    work_until_closed(root, remote, second)

    assert refused(remote) == []  # no agent ever tried to write main but by a merge
    commits = git("rev-list", "--first-parent", f"{seed}..main", cwd=remote).split()
    assert len(commits) == 2 and all(len(git("log", "-1", "--format=%P", c, cwd=remote).split()) == 2 for c in commits)


def test_control_the_hook_refuses_a_direct_commit_and_journals_no_longer_go_to_main(tmp_path):
    """The same hook refuses a direct commit on main (so the test above could fail), and journals
    configured onto main (where every earlier version wrote them) now go to the agent's own journal
    branch: `memory.branch` is only read."""
    root = tmp_path / "mesh"
    remote = protected_mesh(root, memory={"branch": "main"})
    main = git("rev-parse", "main", cwd=remote)
    try:
        human_commit(remote, {"direct.txt": "no PR\n"}, message="a direct commit")
        raise AssertionError("the direct commit landed")
    except AssertionError as exc:
        assert "main is protected" in str(exc), exc
    assert refused(remote) == ["refs/heads/main a direct commit"]
    seed_issues(root, remote, 1)
    events = tick(root, "ada")
    assert "claimed" in {e["event"] for e in events}
    assert not [e for e in events if e["event"] == "warning"], events
    assert git("rev-parse", "main", cwd=remote) == main and len(refused(remote)) == 1
    assert "claimed" in journal_events(remote)["ada"]
    assert not list((root / "hosts" / "ada" / "state").glob("**/outbox/*.json"))
