"""SIGKILL around the pushes of a working claim-task tick on the local forge (issue 16's new pushes).

A real claim-task process works one issue on a real local-forge remote and is killed by the remote's
own hook as one of its pushes arrives: a post-receive hook kills it once the push has landed (the
claim with the issue's `working` stage, or the PR with its label and the issue's `review` stage), a
pre-receive hook kills it and refuses the push (the fenced push of the work and the claim's renewal).
Since session 12 the work, the claim's renewal, the PR and the journal are one push: `before-work` and
`after-pr` are the two sides of it.
The next run must end where an uninterrupted tick ends, judged from the remote with git plumbing
alone: one open PR of the agent's work branch, labelled, the issue in review only, the claim the
agent's, and each of `claimed` and `pr-opened` journaled once.

Two races of the same tick: a resumed claim whose issue this agent's own monitor-prs merged and cleaned
up meanwhile (chaos seed 32), and a stale mirror ref of the agent's own claim.

The crash after the work push is tests/e2e/test_claim_task_e2e.py's, the crash during the PR push
tests/integration/test_adopted_labels.py's; the REST forges' separate calls are
tests/contract/test_pr_settled.py's.
"""

from __future__ import annotations

import json
import re
import sys

import pytest

from agentmesh.agent.claim_task import claim_task
from agentmesh.core.vocab import Label, Stage
from tests.support import (
    FakeClock,
    agent_forge,
    agent_mesh,
    demo_body,
    git,
    journal_entries,
    local_forge_remote,
    path_only_env,
    remote_items,
    remote_refs,
    wait_for,
)
from tests.support.cli import ok_json, run_cli, start_cli, write_host_config
from tests.support.crash import claim_task_killed_at_push

ZERO = "0" * 40
STAGES = {s.value for s in Stage}
WINDOWS = {  # window -> (hook, ref pattern, created only)
    "after-claim": ("post-receive", r"^refs/heads/claim/\d+$", True),
    "before-work": ("pre-receive", r"^refs/heads/ada/", False),
    "after-pr": ("post-receive", r"^refs/agentmesh/pull-heads/", True),
}


def holder(remote, ref: str) -> str | None:
    sha = remote_refs(remote, ref).get(ref)
    if sha is None:
        return None
    found = re.search(r"^Agentmesh-Agent: (\S+)$", git("log", "-1", "--format=%B", sha, cwd=remote), re.M)
    return found[1] if found else None


@pytest.mark.parametrize("window", sorted(WINDOWS))
def test_the_next_run_ends_as_an_uninterrupted_tick(tmp_path, window):
    remote = local_forge_remote(tmp_path / "remote.git")
    human = agent_forge(agent_mesh(remote, tmp_path / "humans", "human"))
    issue = human.create_issue("Add notes", demo_body("notes.txt", "notes\n"), ["task"]).number
    hook, pattern, created = WINDOWS[window]
    config = claim_task_killed_at_push(tmp_path, remote, hook, f"re.search({pattern!r}, ref) and "
                                                               f"(old == {ZERO!r} or not {created!r})")
    (remote / "hooks" / hook).unlink()
    claim = f"refs/heads/claim/{issue}"
    pulls = [m for m in remote_items(remote).values() if m["kind"] == "pull"]
    assert holder(remote, claim) == "ada"  # the claim landed in every window
    assert len(pulls) == (window == "after-pr")
    assert not remote_refs(remote, "refs/heads/ada/") or window == "after-pr"

    ok_json(run_cli("--config", str(config), "claim-task", "--json", cwd=tmp_path))
    metas = remote_items(remote)
    [pull] = [m for m in metas.values() if m["kind"] == "pull"]  # one PR ...
    assert pull["state"] == "open" and pull["head"].startswith(f"ada/{issue}-")
    assert remote_refs(remote, f"refs/heads/{pull['head']}")  # ... of the pushed work branch
    assert Label.PR in pull["labels"] and not set(pull["labels"]) & STAGES
    assert set(metas[issue]["labels"]) & STAGES == {Stage.REVIEW}
    assert holder(remote, claim) == "ada"
    entries = journal_entries(remote)
    assert len({e.id for e in entries}) == len(entries)
    assert [e.event for e in entries if e.event in ("claimed", "pr-opened")] == ["claimed", "pr-opened"]


# holds the push that puts `agentmesh:working` on an item until the test writes `go` (`blocked` says it waits)
HOLD = """#!{python}
import json, pathlib, subprocess, sys, time
folder = pathlib.Path({folder!r})
for line in sys.stdin:
    old, new, ref = line.split()
    if not ref.startswith("refs/agentmesh/items/") or set(new) == {{"0"}} or not (folder / "hold").exists():
        continue
    meta = json.loads(subprocess.run(["git", "show", new + ":meta.json"], capture_output=True, text=True).stdout)
    if "agentmesh:working" in meta.get("labels", []):
        (folder / "hold").unlink()
        (folder / "blocked").touch()
        deadline = time.monotonic() + 60
        while not (folder / "go").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
"""


def test_a_resumed_claim_whose_issue_was_closed_meanwhile_puts_no_stage_on_it(tmp_path):
    """Chaos seed 32: claim-task listed its claim and the open issue, then its own monitor-prs merged the PR,
    closed the issue, cleared the stage and deleted the branch and the claim; the open PRs and the branch,
    listed after, showed nothing, so claim-task resumed the claim and labelled the closed issue `working`
    (its compare-and-swap lost to the close, re-read the item and added the label anyway). Its heartbeat then
    found the claim gone: nothing published, and the stage stayed on the closed issue for good."""
    remote = local_forge_remote(tmp_path / "remote.git")
    human = agent_forge(agent_mesh(remote, tmp_path / "humans", "human"))
    issue = human.create_issue("Add notes", demo_body("notes.txt", "notes\n"), ["task"]).number
    earlier = agent_mesh(remote, tmp_path / "earlier", "ada")  # a run of ada that died holding the claim
    claim = earlier.claims().acquire(issue).sha
    hook = remote / "hooks" / "pre-receive"
    hook.write_text(HOLD.format(python=sys.executable, folder=str(tmp_path)))
    hook.chmod(0o755)
    (tmp_path / "hold").touch()
    slow = {"kind": "command", "sandbox": "off", "command": [  # outlives the heartbeat's first beat (5 s)
        sys.executable, "-c", "import pathlib, time; time.sleep(7); pathlib.Path('notes.txt').write_text('notes')"]}
    config = write_host_config(tmp_path, remote, "ada", slow)

    resumed = start_cli("--config", str(config), "claim-task", "--json", cwd=tmp_path)
    wait_for((tmp_path / "blocked").exists, "the resumed job's stage push")
    human.close_issue(issue)  # as a merge's cleanup leaves it: closed, no stage, no claim
    earlier.claims().release(issue, claim)
    (tmp_path / "go").touch()
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert "resumed" in [e["event"] for e in json.loads(out)["events"]]  # the stale view, as in the chaos run
    meta = remote_items(remote)[issue]
    assert meta["state"] == "closed" and not set(meta["labels"]) & STAGES
    assert not remote_refs(remote, "refs/heads/ada/") and not remote_refs(remote, f"refs/heads/claim/{issue}")


def test_a_stale_mirror_of_its_own_claim_never_makes_it_the_agents(tmp_path):
    """Our own claim pushes move the cache clone's mirror refs instead of fetching them again. Here ada's
    mirror still says she holds the claim, while bob reaped it (ada was away) and holds it now: her next
    tick must read bob's claim, and leave it, the issue and every branch alone."""
    remote = local_forge_remote(tmp_path / "remote.git")
    human = agent_forge(agent_mesh(remote, tmp_path / "humans", "human"))
    issue = human.create_issue("Add notes", demo_body("notes.txt", "notes\n"), ["task"]).number
    ada = agent_mesh(remote, tmp_path / "hosts", "ada")
    assert ada.claims(mirror=True).acquire(issue).won
    clock = FakeClock()
    bob = agent_mesh(remote, tmp_path / "hosts", "bob", clock=clock).claims()
    assert bob.reap() == []  # bob's first sighting
    clock.advance(1800 + 300 + 1)  # the default lease and grace, by bob's clock
    assert [r.reaped for r in bob.reap()] == [True]
    assert bob.acquire(issue).won
    before = work_refs(remote)

    report = claim_task(ada, agent_forge(ada), env=path_only_env())
    assert [e.event for e in report.events if e.issue == issue] == []
    assert work_refs(remote) == before and holder(remote, f"refs/heads/claim/{issue}") == "bob"


def work_refs(remote) -> dict[str, str]:
    """Every ref but the agents' own branches (presence, journals)."""
    return {ref: sha for ref, sha in remote_refs(remote).items() if not ref.startswith("refs/heads/agentmesh/")}
