"""`agentmesh budget pause|resume` with real agent processes on a local-forge remote with a roster:
a pause stops every agent's claims, a forged resume does not lift it, a real one does, a forged pause
pauses. Every state is read back from the bare remote or from the agents' own output."""

from __future__ import annotations

import json

from agentmesh.git.signing import ensure_key
from agentmesh.host.config import PAUSE_REF
from agentmesh.host.roster import ROSTER_PATH
from tests.support import (
    agent_forge,
    agent_mesh,
    demo_body,
    git,
    human_commit,
    local_forge_remote,
    push_on_switch,
    remote_refs,
    roster_yaml,
)
from tests.support.cli import run_cli, write_host_config

CLAIMS = "refs/heads/claim/"


def test_a_pause_stops_new_claims_until_a_real_resume_and_forgeries_never_lift_it(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    configs = {a: write_host_config(tmp_path, remote, a) for a in ("ada", "bob")}
    human_commit(remote, {ROSTER_PATH: roster_yaml([agent_mesh(remote, tmp_path / "hosts", a) for a in configs])},
                 message="roster: ada and bob")
    human = agent_forge(agent_mesh(remote, tmp_path / "humans", "human"))
    for n in (1, 2):
        human.create_issue(f"Add module {n}", demo_body(f"pkg/m{n}.py", f"VALUE = {n}\n"), ["task"])

    def run(agent: str, *args: str, code: int = 0):
        done = run_cli("--config", str(configs[agent]), *args, cwd=tmp_path)
        assert done.returncode == code, (args, done.stdout, done.stderr)
        return done

    def events(done) -> dict[str, str]:
        return {e["event"]: e["detail"] for e in json.loads(done.stdout)["events"]}

    paused = events(run("ada", "budget", "pause", "--reason", "over budget this week", "--json"))
    assert paused == {"budget-paused": "over budget this week"}
    head = remote_refs(remote, PAUSE_REF)[PAUSE_REF]
    again = json.loads(run("ada", "budget", "pause", "--reason", "over budget this week", "--json").stdout)
    assert [e["event"] for e in again["events"]] == ["skipped"] and "over budget" in again["paused"]
    assert remote_refs(remote, PAUSE_REF)[PAUSE_REF] == head  # idempotent: nothing pushed

    tick = run("bob", "claim-task")  # exit 0: a paused mesh is not an error
    assert "spending-paused: spending paused (branch agentmesh/pause): over budget this week: no new claims" \
        in tick.stdout and "idle: spending paused" in tick.stdout, tick.stdout
    assert remote_refs(remote, CLAIMS) == {}
    shown = json.loads(run("bob", "budget", "--json").stdout)
    assert "over budget this week" in shown["paused"] and shown["window"]["kind"] == "day"
    assert "over budget" in json.loads(run("bob", "status", "--json").stdout)["budget"]["paused"]

    # a writer without a roster key: a resume signed by another key, then an unsigned one
    outsider = tmp_path / "outsider" / "id_ed25519"
    ensure_key(outsider, "mallory")
    work = tmp_path / "outsider-work"
    push_on_switch(remote, work, PAUSE_REF, "agentmesh: budget resume [skip ci]\n\nresumed\n", sign_with=outsider)
    forged = push_on_switch(remote, work, PAUSE_REF, "agentmesh: budget resume [skip ci]\n\nresumed\n")
    still = events(run("bob", "claim-task", "--json"))
    assert "over budget this week (the resume on top is not signed by a roster agent or maintainer)" \
        in still["spending-paused"] and still["idle"] == "spending paused", still
    assert remote_refs(remote, CLAIMS) == {}

    resumed = events(run("ada", "budget", "resume", "--json"))
    assert "over budget this week" in resumed["budget-resumed"]
    assert git("log", "-1", "--format=%P", PAUSE_REF, cwd=remote) == forged  # on top: never rewound
    assert events(run("ada", "budget", "resume", "--json")) == {"skipped": "was not paused"}
    assert "claimed" in events(run("bob", "claim-task", "--json"))
    assert list(remote_refs(remote, CLAIMS)) == [f"{CLAIMS}1"]
    log = json.loads(run("ada", "memory", "log", "--json").stdout)
    assert [(e["event"], e["outcome"]) for e in log["entries"] if e["event"].startswith("budget-")] == [
        ("budget-paused", "paused"), ("budget-resumed", "resumed")]

    # stopping is the safe direction: the writer's unsigned pause pauses
    push_on_switch(remote, work, PAUSE_REF, "agentmesh: budget pause [skip ci]\n\nstop spending\n")
    assert "stop spending" in events(run("ada", "claim-task", "--json"))["spending-paused"]
    assert list(remote_refs(remote, CLAIMS)) == [f"{CLAIMS}1"]
