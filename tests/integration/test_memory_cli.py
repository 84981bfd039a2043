"""`agentmesh memory log|lessons|add-lesson|context` and `agentmesh budget` as a user runs them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import yaml

from tests.support import agent_forge, agent_mesh, demo_body, git, local_forge_remote
from tests.support.cli import run_cli

LESSON = """Migrations must be reversible.

Every file under `db/migrations/` needs a `down()` step; the gate `migrations` checks it.
"""


def who(remote, agent="alice"):
    return ["--remote", str(remote), "--agent", agent]


def test_log_shows_every_agents_outcomes_and_filters_them(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    human = agent_forge(agent_mesh(remote, tmp_path / "hosts", "human"))
    number = human.create_issue("Note", demo_body("note.md", "hi\n"), ["task"]).number
    assert run_cli(*who(remote), "claim-task", cwd=tmp_path).returncode == 0
    result = run_cli(*who(remote, "bob"), "memory", "log", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    logged = json.loads(result.stdout)
    assert [(e["agent"], e["event"], e["issue"]) for e in logged["entries"]] == [
        ("alice", "claimed", number), ("alice", "executed", number), ("alice", "pr-opened", number)]
    assert (logged["ignored_journal_lines"], logged["warning"]) == (0, None)  # no roster: every line counts
    bobs = run_cli(*who(remote), "memory", "log", "--agent", "bob", "--json", cwd=tmp_path).stdout
    assert json.loads(bobs)["entries"] == []
    future = run_cli(*who(remote), "memory", "log", "--since", "2999-01-01", "--json", cwd=tmp_path)
    assert json.loads(future.stdout)["entries"] == []
    text = run_cli(*who(remote), "memory", "log", cwd=tmp_path)
    assert "pr-opened" in text.stdout and "alice" in text.stdout
    bad = run_cli(*who(remote), "memory", "log", "--since", "yesterday", cwd=tmp_path)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "--since" in bad.stderr


def test_a_lesson_added_by_hand_is_a_memory_pr_and_once_merged_gives_context(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git", yaml.safe_dump({"memory": {"context_bytes": 2048}}))
    body = tmp_path / "lesson.md"
    body.write_text(LESSON)
    added = run_cli(*who(remote), "memory", "add-lesson", "--title", "Reversible migrations", "--tag", "db",
                    "--path", "db/migrations/**", "--body-file", str(body), "--expires-in", "90", "--json",
                    cwd=tmp_path)
    assert added.returncode == 0, added.stderr
    opened = json.loads(added.stdout)
    assert opened["path"] == "ai-memory/lessons/reversible-migrations.md"
    assert opened["branch"] == "alice/lessons/reversible-migrations"
    human = agent_forge(agent_mesh(remote, tmp_path / "hosts", "human"))
    pull = human.get_pull(opened["pr"])
    assert "agentmesh:memory" in pull.labels and "agentmesh:pr/" not in pull.body  # a human's PR: no agent approves
    again = run_cli(*who(remote), "memory", "add-lesson", "--title", "Reversible migrations",
                    "--body-file", str(body), cwd=tmp_path)
    assert again.returncode == 0  # the same branch: the open PR is adopted, not duplicated
    assert len([p for p in human.list_pulls(state="all") if "agentmesh:memory" in p.labels]) == 1
    assert json.loads(run_cli(*who(remote), "memory", "lessons", "--json", cwd=tmp_path).stdout) == []  # not merged yet
    human.merge_pull(pull.number, sha=pull.head_sha)

    lessons = json.loads(run_cli(*who(remote), "memory", "lessons", "--json", cwd=tmp_path).stdout)
    assert [(x["title"], x["tags"], x["paths"], x["agent"], x["expired"]) for x in lessons] == [
        ("Reversible migrations", ["db"], ["db/migrations/**"], "alice", False)]
    assert json.loads(run_cli(*who(remote), "memory", "lessons", "--tag", "ui", "--json", cwd=tmp_path).stdout) == []
    duplicate = run_cli(*who(remote), "memory", "add-lesson", "--title", "Reversible migrations",
                        "--body-file", str(body), cwd=tmp_path)
    assert duplicate.returncode == 1 and "already exists" in duplicate.stderr

    by_path = human.create_issue("Add a users table", "Write db/migrations/0002_users.py", ["task"]).number
    unrelated = human.create_issue("Fix the logo", "The logo in web/logo.svg is blurry", ["task"]).number
    shown = json.loads(run_cli(*who(remote), "memory", "context", str(by_path), "--json", cwd=tmp_path).stdout)
    assert shown["paths"] == ["db/migrations/0002_users.py"]
    assert [(x["path"], x["matched"]) for x in shown["lessons"]] == [
        ("ai-memory/lessons/reversible-migrations.md", ["paths"])]
    assert "needs a `down()` step" in shown["text"] and shown["bytes"] <= 2048
    assert json.loads(run_cli(*who(remote), "memory", "context", str(unrelated), "--json", cwd=tmp_path).stdout)[
        "lessons"] == []
    text = run_cli(*who(remote), "memory", "context", str(by_path), cwd=tmp_path)
    assert text.returncode == 0 and "### Lesson: Reversible migrations" in text.stdout


def test_an_expired_lesson_is_listed_as_expired_and_never_given_as_context(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    human = agent_forge(agent_mesh(remote, tmp_path / "hosts", "human"))
    lesson = "---\nid: old\ntitle: Old advice\ntags: [db]\ncreated: 2020-01-01\nexpires: 2020-06-01\n---\n\nStale.\n"
    work = tmp_path / "work"
    git("clone", "--quiet", str(remote), str(work))
    (work / "ai-memory" / "lessons").mkdir(parents=True)
    (work / "ai-memory" / "lessons" / "old.md").write_text(lesson)
    git("add", "-A", cwd=work)
    git("commit", "--quiet", "-m", "old lesson", cwd=work)
    git("push", "--quiet", "origin", "main", cwd=work)
    [listed] = json.loads(run_cli(*who(remote), "memory", "lessons", "--json", cwd=tmp_path).stdout)
    assert listed["expired"] is True
    number = human.create_issue("Schema change", "tables", ["db"]).number
    context = run_cli(*who(remote), "memory", "context", str(number), "--json", cwd=tmp_path)
    assert json.loads(context.stdout)["lessons"] == []


def test_budget_shows_the_window_its_usage_against_the_caps_and_the_pause(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git", yaml.safe_dump(
        {"budgets": {"window": "week", "agent": {"tasks": 1}, "fleet": {"executor_minutes": 60}}}))
    agent_forge(agent_mesh(remote, tmp_path / "hosts", "human")).create_issue(
        "Note", demo_body("note.md", "hi\n"), ["task"])
    assert run_cli(*who(remote), "claim-task", cwd=tmp_path).returncode == 0
    data = json.loads(run_cli(*who(remote, "bob"), "budget", "--json", cwd=tmp_path).stdout)
    today = datetime.now(UTC).date()
    monday = (today - timedelta(days=today.weekday())).isoformat()
    assert data["window"] == {"kind": "week", "label": f"week of {monday}", "start": f"{monday}T00:00:00Z",
                              "end": f"{today - timedelta(days=today.weekday() - 7)}T00:00:00Z"}
    assert data["paused"] is None
    assert data["agents"]["alice"]["usage"]["tasks"] == 1
    assert data["agents"]["alice"]["exhausted"] == [
        {"scope": "agent alice", "cap": "tasks_per_week", "used": 1, "limit": 1}]
    assert data["agents"]["bob"]["usage"] == {"tasks": 0, "minutes": 0.0, "cost_usd": 0.0}
    assert data["fleet"]["caps"]["executor_minutes_per_week"] == 60 and data["fleet"]["exhausted"] == []
    table = run_cli(*who(remote), "budget", cwd=tmp_path).stdout
    assert f"budget for week of {monday} (UTC, week)" in table and "spending not paused" in table
    [alice] = [line.split() for line in table.splitlines() if line.startswith("agent alice")]
    assert alice[2] == "1/1" and alice[3].endswith("/-") and alice[-1] == "EXHAUSTED"  # used/cap: tasks, minutes


def test_decisions_and_architecture_notes_of_the_base_branch_are_context_by_relevance(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    human = agent_forge(agent_mesh(remote, tmp_path / "hosts", "human"))
    work = tmp_path / "work"
    git("clone", "--quiet", str(remote), str(work))
    (work / "ai-memory" / "decisions").mkdir(parents=True)
    (work / "ai-memory" / "architecture").mkdir(parents=True)
    (work / "ai-memory" / "decisions" / "0001-money-in-cents.md").write_text(
        "# 0001: money in cents\n\nAmounts in billing/invoice.py are integers of cents, never floats.\n")
    (work / "ai-memory" / "architecture" / "overview.md").write_text("# Code map\n\nThe web frontend lives in web/.\n")
    git("add", "-A", cwd=work)
    git("commit", "--quiet", "-m", "notes", cwd=work)
    git("push", "--quiet", "origin", "main", cwd=work)
    # a PR head's notes are never context: only the base branch's, which entered by review
    git("checkout", "--quiet", "-b", "mallory/notes", cwd=work)
    (work / "ai-memory" / "decisions" / "0002-invoice-rounding.md").write_text("# Invoice rounding\n\nInvoice.\n")
    git("add", "-A", cwd=work)
    git("commit", "--quiet", "-m", "pr notes", cwd=work)
    git("push", "--quiet", "origin", "mallory/notes", cwd=work)
    human.create_pull(head="mallory/notes", base="main", title="notes")

    number = human.create_issue("Invoice totals round wrong", "See billing/invoice.py", ["task"]).number
    shown = json.loads(run_cli(*who(remote), "memory", "context", str(number), "--json", cwd=tmp_path).stdout)
    assert [(d["path"], d["matched"]) for d in shown["docs"]] == [
        ("ai-memory/decisions/0001-money-in-cents.md", ["path billing/invoice.py"])]
    assert "### Decision: 0001: money in cents" in shown["text"] and "never floats" in shown["text"]
    unrelated = human.create_issue("Faster startup", "Profile the CLI", ["task"]).number
    assert json.loads(run_cli(*who(remote), "memory", "context", str(unrelated), "--json", cwd=tmp_path).stdout)[
        "docs"] == []
