"""`agentmesh report`: the document of a mesh built by real claim-task and monitor-prs runs, checked against
what the remote holds, read with git plumbing (journal files, presence and claim refs, the halt branch)."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from datetime import UTC, datetime

import pytest
import yaml

from agentmesh.agent.claim_task import claim_task
from agentmesh.agent.halt import halt, resume
from agentmesh.agent.monitor import monitor_prs
from agentmesh.ops.report import gather_report
from tests.support import agent_forge, agent_mesh, demo_body, git, journal_entries, local_forge_remote, remote_refs
from tests.support.cli import run_cli

ENV = {"PATH": "/usr/bin:/bin"}
POLICY = {"review": {"ring": ["a", "b"]}, "merge": {"auto": True}, "max_attempts": 1,
          "budgets": {"agent": {"tasks_per_day": 5}, "fleet": {"executor_minutes_per_day": 60}}}
TITLE = "Hostile <script>alert(1)</script> \u202e\x1b[31m title"
DAYS = 3
HOSTILE = "evil\x1b[31m\u202e\n"
UNREADABLE = ["not json", '{"id": "m-2"}', json.dumps({"id": "m-3", "ts": "0000-01-01T00:00:00Z", "agent": "m",
                                                        "host": "h", "event": "failed"})]


@pytest.fixture(scope="module")
def mesh_remote(tmp_path_factory):
    """a's PR approved by b and merged; b's PR open, approved; a dead-letters an issue with nothing to do; the
    mesh was halted and resumed; an eligible issue with a hostile title waits."""
    tmp = tmp_path_factory.mktemp("report")
    remote = local_forge_remote(tmp / "remote.git", yaml.safe_dump(POLICY))
    human = agent_forge(agent_mesh(remote, tmp / "humans", "human"))

    def mesh(agent):
        return agent_mesh(remote, tmp / "hosts", agent)

    def monitor(agent):
        return [(e.event, e.pr) for e in monitor_prs(mesh(agent), agent_forge(mesh(agent)),
                                                     env={"PATH": os.environ["PATH"]}).events]

    def work(agent, title, body):
        number = human.create_issue(title, body, ["task"]).number
        return number, [(e.event, e.issue) for e in claim_task(mesh(agent), agent_forge(mesh(agent)), env=ENV).events]

    work("a", "One", demo_body("one.txt", "1\n"))
    work("b", "Two", demo_body("two.txt", "2\n"))
    assert any(event == "approved" for event, _ in monitor("b"))
    events = {event for event, _ in monitor("a")}
    assert {"approved", "merged"} <= events
    dead, events = work("a", "Impossible", "There is no demo block here.")
    assert ("dead-letter", dead) in events
    halt(mesh("a"), "bad deploy", local=False)
    resume(mesh("a"), local=False)
    waiting = human.create_issue(TITLE, "later", ["task"]).number
    # a journal line anyone could push to a mesh without a roster, naming no agent
    work = tmp / "mallory"
    line = json.dumps({"id": "m-1", "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "agent": HOSTILE,
                       "host": "h", "event": "failed", "issue": 99, "duration_s": 60.0, "cost_usd": 1.0})
    path = work / "ai-memory" / "agents" / "mallory" / "journal" / f"{time.strftime('%Y-%m', time.gmtime())}.jsonl"
    path.parent.mkdir(parents=True)
    # and lines that are no entry: left out of every figure, and counted
    path.write_text("\n".join([line, *UNREADABLE, ""]) + "\n")
    git("init", "--quiet", str(work))
    git("add", "-A", cwd=work)
    git("-c", "user.name=m", "-c", "user.email=m@x", "commit", "--quiet", "-m", "journal", cwd=work)
    git("push", "--quiet", str(remote), "HEAD:refs/heads/agentmesh/journals/mallory", cwd=work)
    return remote, human, {"dead": dead, "waiting": waiting}


def test_the_report_holds_what_the_remote_holds(mesh_remote, tmp_path):
    remote, human, numbers = mesh_remote
    now = time.time()
    doc = gather_report(agent_mesh(remote, tmp_path, "obs"), human, now, DAYS)
    assert json.loads(json.dumps(doc)) == doc  # JSON as it is
    assert (doc["schema"], doc["observer"], doc["remote"], doc["days"]) == ("agentmesh-report/1", "obs", str(remote), 3)
    assert doc["forge"] == {"kind": "local", "web_url": None}
    assert (doc["halted"], doc["paused"]) == (None, None)

    # agents: presence refs, each heartbeat at its commit's own date
    presence = remote_refs(remote, "refs/heads/agentmesh/agents/")
    assert [a["agent"] for a in doc["agents"]] == [ref.rsplit("/", 1)[1] for ref in sorted(presence)] == ["a", "b"]
    for row in doc["agents"]:
        stamp = int(git("log", "-1", "--format=%ct", f"refs/heads/agentmesh/agents/{row['agent']}", cwd=remote))
        assert row["heartbeat_at"] == datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert row["alive"] and row["verified"] and row["executor"] == "demo"
    claims = sorted(int(ref.rsplit("/", 1)[1]) for ref in remote_refs(remote, "refs/heads/claim/"))
    assert [c["issue"] for a in doc["agents"] for c in a["claims"]] == claims  # b's, in review
    assert all(0 < c["lease_left_seconds"] <= 1800 and not c["expired"] for a in doc["agents"] for c in a["claims"])

    # the board and the PRs
    columns = {name: [card["issue"] for card in cards] for name, cards in doc["board"].items()}
    assert columns == {"eligible": [numbers["waiting"]], "claimed": [], "working": [], "review": claims,
                       "needs_human": [], "failed": [], "dead_letter": [numbers["dead"]]}
    assert doc["board"]["eligible"][0]["title"] == TITLE  # raw text: escaping is the renderer's
    (review,) = doc["board"]["review"]
    (pull,) = doc["pulls"]
    assert (review["agent"], review["pr"], pull["issue"], pull["author"]) == ("b", pull["number"], claims[0], "b")
    assert pull["approved_by"] == ["a"] and pull["approved_head"] == pull["head_sha"] == human.get_pull(
        pull["number"]).head_sha

    # throughput and spend: the journals on the writers' branches, counted here by hand
    entries = journal_entries(remote)
    today = datetime.fromtimestamp(now, UTC).date().isoformat()
    assert doc["throughput"]["dates"][-1] == today and len(doc["throughput"]["dates"]) == DAYS
    merged = Counter(e.agent for e in entries if e.event == "merged")
    failed = Counter(e.agent for e in entries if e.event == "failed")
    claimed = Counter(e.agent for e in entries if e.event == "claimed")
    assert (merged, failed, claimed) == (Counter(a=1), Counter({"a": 1, HOSTILE: 1}), Counter(a=2, b=1))
    # a writer's name that is no agent's never becomes a key: its figures are under "(other)"
    assert set(doc["throughput"]["agents"]) == set(doc["budget"]["agents"]) == {"a", "b", "(other)"}
    assert doc["throughput"]["agents"]["(other)"]["failed"][-1] == 1
    assert doc["budget"]["agents"]["(other)"]["cost_usd"][-1] == 1.0
    assert doc["budget"]["fleet"]["tasks"][-1] == sum(claimed.values())
    # status's figures are keyed the same way: the hostile writer's failure is under "(other)" there too
    assert set(doc["performance"]) == {"a", "b", "(other)"} and doc["performance"]["(other)"]["failed"] == 1
    assert set(doc["budget"]["current"]["agents"]) == {"a", "b", "obs", "(other)"}
    assert doc["budget"]["current"]["agents"]["(other)"]["usage"]["cost_usd"] == 1.0
    assert all(k.isprintable() for k in _keys(doc))
    for agent in ("a", "b"):
        series = doc["throughput"]["agents"][agent]
        assert (series["completed"], series["failed"]) == ([0, 0, merged[agent]], [0, 0, failed[agent]])
        assert doc["budget"]["agents"][agent]["tasks"] == [0, 0, claimed[agent]]
        minutes = sum(e.duration_s for e in entries if e.agent == agent) / 60
        assert doc["budget"]["agents"][agent]["minutes"][-1] == pytest.approx(minutes, abs=0.01)
    assert doc["budget"]["caps"] == {"agent": {"tasks": 5, "minutes": None, "cost_usd": None},
                                     "fleet": {"tasks": None, "minutes": 60.0, "cost_usd": None}}
    assert doc["budget"]["current"]["fleet"]["usage"]["tasks"] == sum(claimed.values())
    opened = next(e for e in entries if e.event == "pr-opened" and e.agent == "a")
    done = next(e for e in entries if e.event == "merged")
    assert doc["latency"]["pr_to_merge"] == {"count": 1, "median_seconds": _seconds(done.ts, opened.ts),
                                             "p90_seconds": _seconds(done.ts, opened.ts)}
    assert doc["latency"]["claim_to_pr"]["count"] == 2

    # incidents: the dead letter from a's journal, the halt from the switch branch (the resume is none)
    halts = git("log", "--format=%ct %s", "refs/heads/agentmesh/halt", cwd=remote).splitlines()
    assert [line.split(" ", 1)[1] for line in halts] == ["agentmesh: resume [skip ci]", "agentmesh: halt [skip ci]"]
    halted_at = datetime.fromtimestamp(int(halts[1].split()[0]), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    dead = next(e for e in entries if e.outcome == "dead-letter")
    assert sorted((i["kind"], i["issue"], i["agent"], i["at"]) for i in doc["incidents"]) == [
        ("dead-letter", numbers["dead"], "a", dead.ts), ("halt", None, None, halted_at)]
    assert next(i["reason"] for i in doc["incidents"] if i["kind"] == "halt") == "bad deploy"

    # the lines left out, and why (no roster: every line that is an entry counts)
    assert doc["ignored_journal_lines"] == len(UNREADABLE)
    assert doc["ignored_journal_reasons"] == {"unreadable": len(UNREADABLE), "unsigned": 0}


def _keys(data):
    if isinstance(data, dict):
        for key, value in data.items():
            yield key
            yield from _keys(value)
    elif isinstance(data, list):
        for value in data:
            yield from _keys(value)


def _seconds(later: str, earlier: str) -> float:
    def parse(ts):
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()

    return round(parse(later) - parse(earlier), 1)


def test_report_json_on_the_command_line_and_a_failed_listing(mesh_remote, tmp_path):
    remote = mesh_remote[0]
    result = run_cli("--remote", str(remote), "--agent", "obs", "report", "--json", "--days", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["days"] == 2 and len(doc["budget"]["fleet"]["tasks"]) == 2
    text = run_cli("--remote", str(remote), "--agent", "obs", "report", cwd=tmp_path)
    assert text.returncode == 0 and "completed 1, failed 2" in text.stdout and "\x1b" not in text.stdout
    assert "\n3 journal lines ignored: 3 unreadable\n" in text.stdout
    missing = run_cli("--remote", str(tmp_path / "nothing.git"), "--agent", "obs", "report", "--json", cwd=tmp_path)
    assert missing.returncode == 75 and json.loads(missing.stdout)["exit_code"] == 75  # never an empty fleet


def test_report_html_writes_one_page_atomically(mesh_remote, tmp_path):
    page = tmp_path / "site" / "report.html"
    page.parent.mkdir()
    page.write_text("the old page")
    result = run_cli("--remote", str(mesh_remote[0]), "--agent", "obs", "report", "--html", str(page), "--json",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["schema"] == "agentmesh-report/1"
    html = page.read_text()
    assert html != "the old page" and "<html" in html.lower() and TITLE not in html  # escaped, not raw
    assert "3 journal lines ignored: 3 unreadable: their figures are in no chart or table" in html
    assert oct(page.stat().st_mode & 0o777) == "0o644" and os.listdir(page.parent) == ["report.html"]
