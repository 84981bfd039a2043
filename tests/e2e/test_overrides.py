"""Issue 15, item 13: an `executor:<name>` label picks the executor for one issue, only when a maintainer
or a roster agent set it. A real claim-task process on a real local-forge remote with a roster; on
this forge who set a label is the signer of the item commit that added it.

ada's chain is `demo`, then `codex`: left alone, the demo executor does the issue and a PR opens. With
`executor:codex` set by the maintainer, only codex runs (it cannot do the task here: absent, or without
credentials), so no PR opens; set by eve, an outsider, the label is ignored, the demo does the work,
and the journal says why.
"""

from __future__ import annotations

import json

from agentmesh.host.roster import ROSTER_PATH
from tests.support import (
    agent_forge,
    agent_mesh,
    demo_body,
    human_commit,
    journal_entries,
    local_forge_remote,
    roster_yaml,
)
from tests.support.cli import run_cli, write_host_config

CHAIN = {"kind": "fallback", "chain": ["demo", "codex"], "sandbox": "off"}


def journal(remote) -> list[dict]:
    return [e.to_json() for e in journal_entries(remote)]


def test_an_executor_label_counts_from_a_maintainer_and_not_from_an_outsider(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    human = agent_mesh(remote, tmp_path / "humans", "human")
    ada = write_host_config(tmp_path, remote, "ada", CHAIN)
    roster = roster_yaml([agent_mesh(remote, tmp_path / "hosts", "ada")],
                         [{"login": "human", "key": human.public_key.line}])
    human_commit(remote, {ROSTER_PATH: roster}, message="roster: ada, maintained by human")
    filer, eve = agent_forge(human), agent_forge(agent_mesh(remote, tmp_path / "hosts", "eve"))

    def claim_task(*, codes=(0,)) -> dict:
        done = run_cli("--config", str(ada), "claim-task", "--json", cwd=tmp_path)
        assert done.returncode in codes, done.stderr
        return {e["event"]: e["detail"] for e in json.loads(done.stdout)["events"]}

    chosen = filer.create_issue("Add a module", demo_body("pkg/a.py", "A = 1\n"), ["task"]).number
    filer.add_labels(chosen, ["executor:codex"])  # the maintainer's label
    ran = claim_task(codes=(0, 1))  # 1: codex is not installed here, so no executor could start
    assert ran["override"] == "applied executor:codex", ran
    assert ran["executed"].endswith("(codex)") and "pr-opened" not in ran, ran
    filer.close_issue(chosen)

    ignored = filer.create_issue("Add another", demo_body("pkg/b.py", "B = 1\n"), ["task"]).number
    eve.add_labels(ignored, ["executor:codex"])  # an outsider's label: signed by a key the roster lacks
    ran = claim_task()
    assert ran["override"] == "ignored executor:codex: set by `unverified:eve`, not a maintainer or roster agent", ran
    assert ran["executed"] == "ok (demo)" and "pr-opened" in ran, ran
    entries = [(e["issue"], e["outcome"]) for e in journal(remote) if e["event"] == "override"]
    assert entries == [(chosen, "applied"), (ignored, "ignored")]
