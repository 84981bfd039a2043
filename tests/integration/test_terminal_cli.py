"""What the CLI prints of text others wrote (issue and PR titles and bodies, journal lines) cannot drive
the terminal: escape sequences (CSI, OSC with hyperlinks and window titles), C1 controls, Unicode tag
characters and bidi overrides are gone, and rich never reads the text as markup.

Real `agentmesh` processes on a local-forge remote. A collaborator opens an issue and a PR with a
hostile title and pushes a forged journal line; `issue list`, `issue show`, `pr list`, `pr show`,
`status` (plain and rich), `memory log` and `budget` must show the visible text and nothing else.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from agentmesh.core.memory import journal_file, journal_ref
from tests.support import agent_forge, agent_mesh, git, local_forge_remote
from tests.support.cli import run_cli

EVIL = ("ti\x1b[2J\x1b[Htle \x1b]8;;https://evil.example/\x07link\x1b]8;;\x07 \x1b]0;owned\x07tag\U000e0041\U000e0042 "
        "\u202ebidi\u202c [red]markup[/red] \x9b31mend")
VISIBLE = ("title", "link", "tag", "bidi", "[red]markup[/red]", "end")
# Independent of agentmesh: ESC and the other C0 controls but tab and LF, DEL, C1, zero-width, bidi, tags.
HIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff"
                    "\U000e0000-\U000e007f]")
SGR = re.compile(r"\x1b\[[0-9;]*m")  # rich's own colours and bold: the only escapes it may write


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("terminal")
    remote = local_forge_remote(tmp / "remote.git")
    human = agent_forge(agent_mesh(remote, tmp / "humans", "human"))
    issue = human.create_issue(EVIL, f"body {EVIL}", ["task"]).number
    work = tmp / "work"
    git("clone", "--quiet", str(remote), str(work))
    git("checkout", "--quiet", "-b", "feature/x", cwd=work)
    (work / "x.txt").write_text("x\n")
    git("add", "-A", cwd=work)
    git("commit", "--quiet", "-m", "x", cwd=work)
    git("push", "--quiet", "origin", "feature/x", cwd=work)
    pull = human.create_pull(head="feature/x", base="main", title=EVIL, body=f"Closes #{issue}\n\n{EVIL}").number
    forge_journal_line(remote, work, journal_ref("mallory").removeprefix("refs/heads/"))
    return remote, tmp, issue, pull


def forge_journal_line(remote, work, branch: str) -> None:
    """A journal line nobody's agent wrote, pushed by someone with push access to a journal branch (no
    roster here: every writer's branch counts, so its hostile text reaches the terminal commands)."""
    now = datetime.now(UTC)
    line = {"id": "forged-1", "ts": now.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "agent": f"mal{EVIL}", "host": EVIL,
            "event": "claimed", "issue": 1, "pr": None, "outcome": f"claimed {EVIL}", "duration_s": 0,
            "cost_usd": 0, "summary": EVIL, "paths": [EVIL]}
    git("fetch", "--quiet", "origin", cwd=work)
    if git("ls-remote", "origin", f"refs/heads/{branch}", cwd=work):
        git("checkout", "--quiet", "-B", "journal", f"origin/{branch}", cwd=work)
    else:  # nobody has journaled yet: the forger starts the branch
        git("checkout", "--quiet", "--orphan", "journal", cwd=work)
        git("rm", "-rq", "--cached", ".", cwd=work)
        git("clean", "-fdxq", cwd=work)
    path = work / journal_file("mallory", now.strftime("%Y-%m"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(line, ensure_ascii=False) + "\n")
    git("add", "-A", cwd=work)
    git("commit", "--quiet", "-m", "forged journal", cwd=work)
    git("push", "--quiet", "origin", f"journal:{branch}", cwd=work)


def shown(mesh, *args: str, env: dict | None = None) -> str:
    remote, tmp, _, _ = mesh
    result = run_cli("--remote", str(remote), "--agent", "reader", *args, cwd=tmp,
                     env={"TTY_COMPATIBLE": "0", "COLUMNS": "400", **(env or {})})
    assert result.returncode == 0, result.stderr
    assert not HIDDEN.search(result.stderr)
    return result.stdout


def assert_clean(out: str, visible=VISIBLE) -> None:
    assert not HIDDEN.search(out), repr(out)
    for text in visible:
        assert text in out, (text, out)


def test_issue_and_pr_commands(mesh):
    _, _, issue, pull = mesh
    assert_clean(shown(mesh, "issue", "list"), VISIBLE[:4])  # the title column is cut at 50 characters
    assert_clean(shown(mesh, "issue", "show", str(issue)))
    assert_clean(shown(mesh, "pr", "list"), VISIBLE[:4])
    assert_clean(shown(mesh, "pr", "show", str(pull)))


def test_json_output_keeps_the_data_but_writes_it_as_escapes(mesh):
    _, _, issue, _ = mesh
    out = shown(mesh, "issue", "show", str(issue), "--json")
    assert not HIDDEN.search(out) and json.loads(out)["title"] == EVIL


def test_journal_commands(mesh):
    log = shown(mesh, "memory", "log")
    assert_clean(log, ("mal", "title", "claimed"))
    budget = shown(mesh, "budget")
    # a writer that is no agent of the mesh has no row of its own (core/writers.py): its name never shows
    assert_clean(budget, ("agent (other)",))
    assert "mal" not in budget


def test_status_plain_and_rich(mesh):
    assert_clean(shown(mesh, "status"), ("title", "link", "[red]markup[/red]"))
    rich = shown(mesh, "status", env={"TTY_COMPATIBLE": "1"})
    assert SGR.search(rich)  # it did render with rich
    assert_clean(SGR.sub("", rich), ("title", "link", "[red]markup[/red]"))
