"""Issue 15, item 8: `agentmesh pr ship N` merges an open agent PR now, without the ring's approval,
pinned to the head that was checked. Real agent processes on a real local-forge remote; every verdict
is read from the bare remote with git plumbing.

With the pre-receive hook (the guarded mesh of tests/e2e/test_pre_receive_hook.py: ada and bob in the
roster, `human` a maintainer with a key, eve an outsider), only the maintainer ships, and the hook
takes the merge because the maintainer's signed approval of the head goes in first. Without a roster
anyone with write access ships, the kill switch still stops it, and the ship is journaled.
"""

from __future__ import annotations

import json

import yaml

from tests.e2e.test_cancel import Review
from tests.e2e.test_pre_receive_hook import Guarded
from tests.support import git, human_commit, remote_refs


def events(stdout: str) -> list[str]:
    return [e["event"] for e in json.loads(stdout)["events"]]


def test_a_maintainer_ships_an_unapproved_pr_through_the_hook_pinned_to_the_head(tmp_path):
    mesh = Guarded(tmp_path)
    human = mesh.configs["human"] = tmp_path / "configs" / "human.yaml"
    human.write_text(yaml.safe_dump({"agent": "human", "host": "host-human", "remote": str(mesh.remote),
                                     "state_dir": str(tmp_path / "humans" / "human")}))  # the maintainer's key
    mesh.issue()
    mesh.run("ada", "claim-task")  # ada's PR, which no one has reviewed (no monitor-prs ran)
    pull = mesh.pull()
    number, main = str(pull["number"]), git("rev-parse", "main", cwd=mesh.remote)
    head_ref = f"refs/heads/{pull['head']}"
    looked_at = mesh.ref(head_ref)

    refused = mesh.attempt("ada", "pr", "ship", number)  # a roster agent is no maintainer (nor is an outsider)
    assert refused.returncode == 1 and "only a maintainer" in refused.stderr, refused.stderr
    moved = human_commit(mesh.remote, {"pkg/extra.py": "EXTRA = 2\n"}, branch=pull["head"])
    stale = mesh.attempt("human", "pr", "ship", number, "--sha", looked_at)
    assert stale.returncode == 1 and "moved" in stale.stderr, stale.stderr
    assert git("rev-parse", "main", cwd=mesh.remote) == main and mesh.item(int(number))["state"] == "open"

    shipped = mesh.attempt("human", "pr", "ship", number, "--sha", moved, "--json")
    assert shipped.returncode == 0, shipped.stderr
    assert "shipped" in events(shipped.stdout)
    merged = mesh.item(int(number))
    assert merged["state"] == "merged" and merged["head_sha"] == moved
    assert git("rev-parse", "main^1", cwd=mesh.remote) == main and git("rev-parse", "main^2", cwd=mesh.remote) == moved
    assert mesh.on_main("pkg/mod.py") and mesh.on_main("pkg/extra.py")
    issue = int(pull["body"].split("#", 1)[1].split()[0])
    assert mesh.item(issue)["state"] == "closed"

    again = mesh.attempt("human", "pr", "ship", number)  # idempotent
    assert again.returncode == 0 and "already merged" in again.stdout, again.stderr
    mesh.run("ada", "monitor-prs")  # the PR's agent cleans up after a shipped PR like after any merge
    assert head_ref not in remote_refs(mesh.remote, "refs/heads/")
    assert remote_refs(mesh.remote, "refs/heads/claim/") == {}


def test_ship_without_a_roster_stops_at_the_kill_switch_and_is_journaled(tmp_path):
    m = Review(tmp_path)  # bob's open PR; `ops` may write (no roster)
    number = str(m.pr["number"])
    m.cli("halt", "--reason", "release freeze")
    halted = m.cli("pr", "ship", number)
    assert halted.returncode == 1 and "kill switch" in halted.stderr, halted.stderr
    assert m.pull_state() == "open" and git("rev-parse", "refs/heads/main", cwd=m.remote) == m.main
    m.cli("resume")
    shipped = m.cli("pr", "ship", number)
    assert shipped.returncode == 0, shipped.stderr
    assert m.pull_state() == "merged" and git("rev-parse", "refs/heads/main^1", cwd=m.remote) == m.main
    assert m.issue_state() == "closed"
    assert m.journaled("merged")  # the `ops` entry: event merged, outcome shipped
