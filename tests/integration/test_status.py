"""`agentmesh status`: a fleet built with real claim-task and monitor-prs runs, then read back exactly."""

from __future__ import annotations

import io
import json
import os
import time

import pytest
import yaml
from rich.console import Console

from agentmesh.agent.claim_task import claim_task
from agentmesh.agent.monitor import monitor_prs
from agentmesh.cli.status import render_plain, render_rich
from agentmesh.ops.status import gather
from tests.support import (
    FakeClock,
    agent_forge,
    agent_mesh,
    closed_port,
    collaborator_pull,
    demo_body,
    local_forge_remote,
    remote_refs,
)
from tests.support.cli import run_cli

# The module-scoped `fleet` (three agents working, reviewing and merging) is built by each worker
# that runs one of these tests: the README's `-n auto --dist loadscope` keeps a module on one worker.
ENV = {"PATH": "/usr/bin:/bin"}
POLICY = {"review": {"ring": ["a", "b", "c"]}, "merge": {"auto": True}, "max_attempts": 1,
          "budgets": {"agent": {"tasks_per_day": 5}, "fleet": {"executor_minutes_per_day": 60}}}
TITLES = ["mesh ", "State:", "Agents", "Claims", "Open PRs", "Performance (last 7 days)", "Budget ("]


class Fleet:
    """Three agents of one local-forge remote, each with its own host state, run in-process."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.remote = local_forge_remote(tmp_path / "remote.git", yaml.safe_dump(POLICY))
        self.human = agent_forge(agent_mesh(self.remote, tmp_path / "humans", "human"))

    def mesh(self, agent):
        return agent_mesh(self.remote, self.tmp / "hosts", agent)

    def monitor(self, agent):
        mesh = self.mesh(agent)
        return [(e.event, e.pr) for e in monitor_prs(mesh, agent_forge(mesh), env={"PATH": os.environ["PATH"]}).events]

    def work(self, agent, title, body):
        number = self.human.create_issue(title, body, ["task"]).number
        mesh = self.mesh(agent)
        events = [(e.event, e.issue) for e in claim_task(mesh, agent_forge(mesh), env=ENV).events]
        pull = next((p for p in self.human.list_pulls(state="all") if p.body.startswith(f"Closes #{number}\n")), None)
        return number, pull, events


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """a's PR approved by b and merged; b's approved by c and open; c's change touches a protected path
    (not pushed, the issue goes to a human), and a collaborator opens that PR as c anyway (needs-human);
    a then fails an issue with nothing to do (dead-lettered, max_attempts 1)."""
    f = Fleet(tmp_path_factory.mktemp("status"))
    for agent in "abc":
        f.monitor(agent)
    f.i1, f.p1, _ = f.work("a", "Hello one", demo_body("one.txt", "1\n"))
    f.i2, f.p2, _ = f.work("b", "Add [red]two[/red]", demo_body("two.txt", "2\n"))  # rich markup in forge text
    f.i3, none, events = f.work("c", "Change CI", demo_body(".github/workflows/ci.yml", "on: push\n"))
    assert none is None and ("needs-human", f.i3) in events
    assert ("approved", f.p1.number) in f.monitor("b")
    assert ("approved", f.p2.number) in f.monitor("c")
    f.p3 = collaborator_pull(f.remote, f.tmp / "collaborator", f.human.cache, agent="c", issue=f.i3,
                             path=".github/workflows/ci.yml", content="on: push\n")
    done = f.monitor("a")
    assert ("needs-human", f.p3.number) in done and ("merged", f.p1.number) in done
    f.i4, none, events = f.work("a", "Impossible", "There is no demo block here.")
    assert none is None and ("dead-letter", f.i4) in events
    return f


def who(fleet, agent="obs"):
    return ["--remote", str(fleet.remote), "--agent", agent]


def status_json(fleet, tmp_path):
    result = run_cli(*who(fleet), "status", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_status_json_shows_the_fleet_exactly(fleet, tmp_path):
    before = remote_refs(fleet.remote)
    data = status_json(fleet, tmp_path)
    assert remote_refs(fleet.remote) == before  # status only reads
    assert list(data) == ["agent", "remote", "agents", "claims", "pulls", "pulls_open", "pulls_limit",
                          "pulls_capped", "performance", "performance_days", "halted", "budget", "legacy_locks"]
    assert (data["agent"], data["remote"], data["halted"]) == ("obs", str(fleet.remote), None)
    assert data["legacy_locks"] == []  # the collaborator's branch has a PR with agentmesh's marker: no old lock

    assert [(a["agent"], a["alive"], a["executor"], a["host"]) for a in data["agents"]] == [
        ("a", True, "demo", "host-a"), ("b", True, "demo", "host-b"), ("c", True, "demo", "host-c")]

    assert [(c["issue"], c["holder"], c["stage"], c["expired"]) for c in data["claims"]] == [
        (fleet.i2, "b", "review", False)]  # c's was released: its issue waits for a human
    for claim in data["claims"]:
        assert claim["work_branch"].startswith(f"{claim['holder']}/{claim['issue']}-")
        assert abs(claim["lease_left_seconds"] + claim["age_seconds"] - 1800) < 0.2

    pulls = {p["number"]: p for p in data["pulls"]}
    assert list(pulls) == [fleet.p3.number, fleet.p2.number]  # newest first; p1 is merged
    two, three = pulls[fleet.p2.number], pulls[fleet.p3.number]
    assert (two["author"], two["issue"], two["approved_by"], two["changes_requested_by"], two["ci"], two["labels"]) \
        == ("b", fleet.i2, ["c"], [], "success", [])
    assert two["title"] == f"Add [red]two[/red] (#{fleet.i2})" and two["head"] == fleet.p2.head
    assert (three["author"], three["approved_by"], three["changes_requested_by"], three["ci"], three["labels"]) \
        == ("c", [], [], "none", ["agentmesh:needs-human"])
    assert all(0 <= p["age_seconds"] < 600 for p in data["pulls"])
    assert (data["pulls_open"], data["pulls_limit"], data["pulls_capped"]) == (2, 50, False)

    perf = data["performance"]
    assert list(perf) == ["a", "b", "c"]
    figures = {a: (p["completed"], p["failed"], p["active"], p["executor_runs"], p["success_pct"])
               for a, p in perf.items()}
    assert figures == {"a": (1, 1, 0, 2, 50.0), "b": (0, 0, 1, 1, None), "c": (0, 0, 0, 1, None)}  # c: to a human
    assert all(p["avg_executor_seconds"] is not None and p["avg_executor_seconds"] >= 0 for p in perf.values())
    assert data["performance_days"] == 7

    budget = data["budget"]
    assert {a: r["usage"]["tasks"] for a, r in budget["agents"].items()} == {"a": 2, "b": 1, "c": 1, "obs": 0}
    assert budget["agents"]["a"]["caps"]["tasks_per_day"] == 5 and budget["agents"]["a"]["exhausted"] == []
    assert budget["fleet"]["usage"]["tasks"] == 4 and budget["fleet"]["caps"]["executor_minutes_per_day"] == 60
    assert budget == json.loads(run_cli(*who(fleet), "budget", "--json", cwd=tmp_path).stdout)


def test_status_as_text_has_every_section(fleet, tmp_path):
    result = run_cli(*who(fleet), "status", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for title in TITLES:
        assert title in result.stdout
    assert "running (not halted)" in result.stdout and "needs-human" in result.stdout
    assert "\x1b" not in result.stdout  # not a terminal: a plain table


def test_rich_rendering_on_a_terminal_keeps_forge_text_literal(fleet):
    status = gather(fleet.mesh("obs2"), fleet.human, time.time())
    screen = io.StringIO()
    render_rich(status, Console(file=screen, force_terminal=True, width=250, highlight=False))
    shown = screen.getvalue()
    for title in TITLES:
        assert title in shown
    assert "[red]two[/red]" in shown  # printed as written, not as markup
    assert "[red]two[/red]" in render_plain(status)


def test_dead_agents_expired_claims_and_the_pull_cap(fleet):
    clock = FakeClock(wall=time.time())  # near the commits' dates, which status shows as each agent's clock
    mesh = agent_mesh(fleet.remote, fleet.tmp / "watch", "watcher", clock=clock)
    first = gather(mesh, fleet.human, time.time())
    assert all(a.alive for a in first.agents) and not any(c.expired for c in first.claims)
    clock.advance(1800 + 300 + 1)  # b's and c's refs stay unchanged past lease + grace by this host's clock
    # a live agent pushes its presence again once half the lease has passed by its own clock
    assert agent_mesh(fleet.remote, fleet.tmp / "hosts", "a", clock=clock).presence().refresh()
    later = gather(mesh, fleet.human, time.time(), pull_limit=1)
    assert [(a.agent, a.alive) for a in later.agents] == [("a", True), ("b", False), ("c", False)]
    assert [(c.issue, c.expired, c.lease_left_seconds) for c in later.claims] == [(fleet.i2, True, 0.0)]
    assert [p.number for p in later.pulls] == [fleet.p3.number] and later.pulls_capped
    text = render_plain(later)
    assert "DEAD" in text and "EXPIRED" in text and "showing the 1 newest of 2 open PRs" in text


def test_halted_after_agentmesh_halt(fleet, tmp_path):
    assert run_cli(*who(fleet), "halt", "--reason", "release freeze", cwd=tmp_path).returncode == 0
    try:
        data = status_json(fleet, tmp_path)
        assert data["halted"].startswith("mesh halted (branch agentmesh/halt)")
        assert "release freeze" in data["halted"]
        assert "HALTED" in run_cli(*who(fleet), "status", cwd=tmp_path).stdout
    finally:
        assert run_cli(*who(fleet), "resume", cwd=tmp_path).returncode == 0


def test_an_unreachable_remote_is_an_error_not_an_empty_fleet(tmp_path):
    with closed_port() as port:
        result = run_cli("--remote", f"git://127.0.0.1:{port}/mesh.git", "--agent", "obs", "status", cwd=tmp_path)
    assert result.returncode == 75
    assert result.stdout == "" and result.stderr.count("\n") == 1 and "unreachable" in result.stderr
    missing = run_cli("--remote", str(tmp_path / "nothing.git"), "--agent", "obs", "status", "--json", cwd=tmp_path)
    # a remote that is not there (moved, removed, a server down) is an outage, retried later
    assert missing.returncode == 75 and missing.stderr.count("\n") == 1
    assert json.loads(missing.stdout) == {"error": missing.stderr.strip().removeprefix("agentmesh: "), "exit_code": 75}


def test_a_flood_of_writer_names_gives_bounded_status_and_budget_rows(tmp_path):
    # one journal branch (no roster: any line counts) naming MAX_AGENTS + 40 made-up agents and some that are no
    # names at all: status and budget show at most MAX_AGENTS named rows plus "(other)", and still add up
    from agentmesh.core.writers import MAX_AGENTS, OTHER
    from tests.support import git

    remote = local_forge_remote(tmp_path / "remote.git", yaml.safe_dump(POLICY))
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    names = [f"w{i:04d}" for i in range(MAX_AGENTS + 40)] + ["Evil\x1b[2J", "maintainer.Al ice"]
    lines = [json.dumps({"id": f"m-{i}-{event}", "ts": stamp, "agent": name, "host": "h", "event": event, "issue": i,
                         "duration_s": 60.0, "cost_usd": 1.0})
             for i, name in enumerate(names) for event in ("failed", "claimed")]
    lines += [json.dumps({"id": f"zed-{i}", "ts": stamp, "agent": "zed", "host": "h", "event": "failed", "issue": i})
              for i in range(3)]  # the writer of the most lines: named whatever its name's rank
    work = tmp_path / "mallory"
    path = work / "ai-memory" / "agents" / "mallory" / "journal" / f"{stamp[:7]}.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("\n".join(lines) + "\n")
    git("init", "--quiet", str(work))
    git("add", "-A", cwd=work)
    git("-c", "user.name=m", "-c", "user.email=m@x", "commit", "--quiet", "-m", "journal", cwd=work)
    git("push", "--quiet", str(remote), "HEAD:refs/heads/agentmesh/journals/mallory", cwd=work)

    env = {"AGENTMESH_STATE_DIR": str(tmp_path / "state")}
    status = json.loads(run_cli("--remote", str(remote), "--agent", "obs", "status", "--json", cwd=tmp_path,
                                env=env).stdout)
    budget = json.loads(run_cli("--remote", str(remote), "--agent", "obs", "budget", "--json", cwd=tmp_path,
                                env=env).stdout)
    assert status["budget"] == budget
    performance, spend = status["performance"], budget["agents"]
    assert len(performance) == MAX_AGENTS + 1 and OTHER in performance and "zed" in performance
    assert len(spend) == MAX_AGENTS + 1 and {OTHER, "obs", "zed"} <= set(spend)  # this host's own row first
    assert sum(p["failed"] for p in performance.values()) == len(names) + 3
    assert performance[OTHER]["failed"] == len(names) - (MAX_AGENTS - 1)  # the nameless two and the last writers
    assert sum(r["usage"]["tasks"] for r in spend.values()) == budget["fleet"]["usage"]["tasks"] == len(names)
    assert spend[OTHER]["caps"] == {"tasks_per_day": None, "executor_minutes_per_day": None,
                                    "cost_usd_per_day": None} and not spend[OTHER]["exhausted"]
    assert spend["w0000"]["exhausted"] == []  # 1 of its 5 tasks
    text = run_cli("--remote", str(remote), "--agent", "obs", "status", cwd=tmp_path, env=env).stdout
    assert "agent (other)" in text and "\x1b" not in text and text.count("\n") < 2 * (MAX_AGENTS + 30)
