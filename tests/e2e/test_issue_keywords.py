"""An issue titled "Closes #1 Fixes #2" must not close #1 and #2 when its work lands on `main`.

GitHub and Gitea close (Gitea also reopens) the issues that closing keywords name in commit
messages reaching the default branch, and Gitea in PR titles. Real agent processes on a
local-forge remote work, review and merge the issue; then nothing on `main` that came with the
merge, nor the PR's title, names #1 or #2 the way a forge acts on, and the PR body closes only
its own issue.
"""

from __future__ import annotations

import re

import yaml

from tests.support import agent_forge, agent_mesh, demo_body, git, local_forge_remote
from tests.support.cli import run_json, write_host_config

# The forges' closing syntax, independent of agentmesh.core.markers: keyword, optional colon, reference.
FORGE_KEYWORD = re.compile(r"(?i)\b(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?|reopen(?:s|ed)?)\b:?\s*"
                           r"(?:[\w.-]+/[\w.-]+)?#(\d+)")


def test_closing_keywords_in_a_title_close_nothing_else(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git", yaml.safe_dump({"review": {"ring": ["ada", "bob"]},
                                                                         "merge": {"auto": True}}))
    human = agent_forge(agent_mesh(remote, tmp_path / "humans", "human"))
    one = human.create_issue("First", "not for agents", []).number
    two = human.create_issue("Second", "not for agents", []).number
    title = f"Closes #{one} Fixes: #{two}, resolves owner/repo#{one} reopen #{two} Add the note"
    number = human.create_issue(title, demo_body("note.txt", "a note\n"), ["task"]).number
    configs = {agent: write_host_config(tmp_path, remote, agent) for agent in ("ada", "bob")}
    before = git("rev-parse", "main", cwd=remote)

    worked = run_json(configs["ada"], "claim-task")
    assert "pr-opened" in [e["event"] for e in worked["events"]], worked
    [pull] = human.list_pulls(state="all")
    assert FORGE_KEYWORD.findall(pull.title) == [] and "Add the note" in pull.title
    assert FORGE_KEYWORD.findall(pull.body) == [str(number)]  # the PR closes its own issue, once
    subject = git("log", "-1", "--format=%s", pull.head_sha, cwd=remote)
    assert subject == f"Add the note (#{number})"

    run_json(configs["ada"], "monitor-prs")
    assert "approved" in [e["event"] for e in run_json(configs["bob"], "monitor-prs")["events"]]
    assert "merged" in [e["event"] for e in run_json(configs["ada"], "monitor-prs")["events"]]
    after = git("rev-parse", "main", cwd=remote)
    messages = git("log", "--format=%B%x00", f"{before}..{after}", cwd=remote).split("\0")
    assert any(f"(#{number})" in m for m in messages)  # the work commit is on main
    named = {int(n) for m in messages for n in FORGE_KEYWORD.findall(m)}
    assert one not in named and two not in named, messages
    assert human.get_issue(number).state == "closed"
    assert (human.get_issue(one).state, human.get_issue(two).state) == ("open", "open")
