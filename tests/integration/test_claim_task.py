"""claim-task in-process against real bare remotes on the local forge, with the demo executor."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from agentmesh.agent.claim_task import claim_task
from agentmesh.agent.halt import HALT_BRANCH, HALT_FILE, HALT_SUBJECT, RESUME_SUBJECT, Resumed, halt, resume
from agentmesh.core.errors import ConfigError, UserError
from agentmesh.core.vocab import Label
from agentmesh.git.signing import ensure_key
from agentmesh.host.config import HALT_REF
from agentmesh.host.lock import host_lock
from agentmesh.host.roster import ROSTER_PATH
from agentmesh.refs.heartbeat import Heartbeat
from tests.support import (
    FakeClock,
    agent_forge,
    agent_mesh,
    branch_files,
    demo_body,
    git,
    human_commit,
    local_forge_remote,
    remote_refs,
    roster_yaml,
)

TOKEN = "ghp_" + "Z8x" * 12  # a token-shaped value the host holds
MEMORY = "agentmesh/journals/alice"  # alice's own journal branch


@pytest.fixture
def remote(tmp_path):
    return local_forge_remote(tmp_path / "remote.git")


def events(report) -> list[tuple[str, int | None]]:
    return [(e.event, e.issue) for e in report.events]


def tick(remote, tmp_path, agent="alice", **kwargs):
    mesh = agent_mesh(remote, tmp_path / "hosts", agent, **kwargs)
    return claim_task(mesh, agent_forge(mesh), env=kwargs.get("env") or {"PATH": "/usr/bin:/bin"})


def new_issue(remote, tmp_path, title, body, labels=("task",)):
    mesh = agent_mesh(remote, tmp_path / "hosts", "human")
    return agent_forge(mesh).create_issue(title, body, list(labels)).number


def forge_of(remote, tmp_path, agent="observer"):
    return agent_forge(agent_mesh(remote, tmp_path / "hosts", agent))


def test_one_tick_claims_works_and_opens_a_fenced_pr(remote, tmp_path):
    n = new_issue(remote, tmp_path, "Add the hello doc", demo_body("docs/hello.md", "hello\n"))
    report = tick(remote, tmp_path)
    assert events(report) == [("claimed", n), ("executed", n), ("pushed", n), ("pr-opened", n)], report.events
    # the outcomes are in the agent's journal on its own branch, one commit for the run (no budgets: the
    # claim need not be seen at once); main is untouched
    journal = git("log", "--format=%s", MEMORY, cwd=remote).splitlines()
    assert journal == ["agentmesh: journal of alice (3 entries) [skip ci]"]
    assert git("log", "--format=%s", "main", cwd=remote) == "Initial commit"
    lines = [json.loads(line) for line in git("cat-file", "blob", f"{MEMORY}:" + git(
        "ls-tree", "-r", "--name-only", MEMORY, "--", "ai-memory/agents/alice/journal/", cwd=remote), cwd=remote)
        .splitlines()]
    assert [(e["event"], e["outcome"], e["issue"]) for e in lines] == [
        ("claimed", "claimed", n), ("executed", "ok", n), ("pr-opened", "opened", n)]
    # the executor's measured time, as the journal rounds it (the demo executor may end within 0.05 s: 0.0)
    executed = next(e for e in report.events if e.event == "executed")
    assert executed.duration_s > 0 and lines[1]["duration_s"] == round(executed.duration_s, 1)
    assert lines[2]["paths"] == ["docs/hello.md"]
    assert lines[2]["summary"] == "Add the hello doc (1 file(s) changed)" and lines[2]["pr"] is not None
    forge = forge_of(remote, tmp_path)
    [pull] = forge.list_pulls()
    assert pull.head == f"alice/{n}-add-the-hello-doc" and pull.base == "main"
    assert f"Closes #{n}" in pull.body and "<!-- agentmesh:pr/alice/" in pull.body
    assert "agentmesh" in pull.labels
    assert branch_files(remote, pull.head_sha)["docs/hello.md"] == "hello"
    message = git("log", "-1", "--format=%an%n%B", pull.head_sha, cwd=remote)
    assert message.startswith("alice\nAdd the hello doc (#1)")
    assert f"Agentmesh-Issue: {n}" in message and "Agentmesh-Claim: " in message
    issue = forge.get_issue(n)
    assert Label.REVIEW in issue.labels and not {Label.CLAIMED, Label.WORKING, Label.FAILED} & set(issue.labels)
    # The claim stays while the PR is open; the next tick starts nothing new, and pushes no renewal so
    # soon after the fenced push (one is due only renew_seconds after it: test_claim_renewal.py).
    before = remote_refs(remote, f"refs/heads/claim/{n}")
    again = tick(remote, tmp_path)
    assert events(again) == [("in-review", n), ("idle", None)]
    assert remote_refs(remote, f"refs/heads/claim/{n}") == before
    assert len(forge.list_pulls()) == 1


def test_dry_run_changes_nothing(remote, tmp_path):
    new_issue(remote, tmp_path, "A", demo_body("a.txt", "a\n"))
    new_issue(remote, tmp_path, "B", "Depends on #1\n" + demo_body("b.txt", "b\n"))
    before = remote_refs(remote)
    mesh = agent_mesh(remote, tmp_path / "hosts", "alice")
    report = claim_task(mesh, agent_forge(mesh), dry_run=True)
    assert report.status == "dry-run"
    assert [c["issue"] for c in report.candidates] == [1]
    assert report.excluded == [{"issue": 2, "reasons": ["depends_on_open:#1"]}]
    assert events(report) == [("would-claim", 1)]
    assert [(a["act"], a["issue"], a["attempt"]) for a in report.to_json()["plan"]] == [("claim", 1, 1)]
    assert remote_refs(remote) == before


def test_a_second_run_exits_at_once_while_the_first_holds_the_lock(remote, tmp_path):
    new_issue(remote, tmp_path, "A", demo_body("a.txt", "a\n"))
    mesh = agent_mesh(remote, tmp_path / "hosts", "alice")
    with host_lock(mesh.state, "claim-task") as held:
        assert held
        report = claim_task(mesh, agent_forge(mesh))
    assert (report.status, report.events) == ("busy", [])
    assert not remote_refs(remote, "refs/heads/claim/")


def test_dependencies_capabilities_and_priority_decide_the_order(remote, tmp_path):
    base = new_issue(remote, tmp_path, "Base", demo_body("base.txt", "base\n"))
    dependent = new_issue(remote, tmp_path, "Dependent", f"Blocked by #{base}\n" + demo_body("dep.txt", "d\n"))
    gpu = new_issue(remote, tmp_path, "Train", demo_body("gpu.txt", "g\n"), labels=("task", "needs:gpu",
                                                                                        "priority:critical"))
    urgent = new_issue(remote, tmp_path, "Urgent", demo_body("urgent.txt", "u\n"), labels=("bug", "priority:critical"))
    new_issue(remote, tmp_path, "Not for agents", demo_body("x.txt", "x\n"), labels=("question",))
    first = tick(remote, tmp_path)
    assert ("claimed", urgent) == events(first)[0]
    second = tick(remote, tmp_path)
    assert ("claimed", base) in events(second)
    third = tick(remote, tmp_path)  # the base's PR is open but the issue is not closed: still waiting
    assert [e for e in events(third) if e[0] == "claimed"] == []
    forge = forge_of(remote, tmp_path)
    forge.close_issue(base)
    fourth = tick(remote, tmp_path)
    assert ("claimed", dependent) in events(fourth)
    assert all(e != ("claimed", gpu) for r in (first, second, third, fourth) for e in events(r))
    gpu_agent = tick(remote, tmp_path, agent="bob", capabilities=("gpu",))
    assert ("claimed", gpu) in events(gpu_agent)


def test_halt_stops_new_claims_and_resume_restores_them(remote, tmp_path):
    n = new_issue(remote, tmp_path, "A", demo_body("a.txt", "a\n"))
    main = git("rev-parse", "main", cwd=remote)
    admin = agent_mesh(remote, tmp_path / "hosts", "admin")
    assert halt(admin, "release freeze", local=False) == f"branch {HALT_BRANCH}"
    assert git("log", "-1", "--format=%B", HALT_REF, cwd=remote).splitlines()[2] == "release freeze"
    report = tick(remote, tmp_path)
    assert report.status == "halted" and "release freeze" in report.reason and report.events == []
    assert not remote_refs(remote, "refs/heads/claim/")
    halt(agent_mesh(remote, tmp_path / "hosts", "admin"), "freeze extended", local=False)  # a new reason
    assert "freeze extended" in tick(remote, tmp_path).reason
    resumed = resume(agent_mesh(remote, tmp_path / "hosts", "admin"), local=False)
    assert resumed == Resumed("freeze extended", None)
    # the branch only grows: two halts and a resume, each on top of the last, none deleted
    assert git("log", "--format=%s", HALT_REF, cwd=remote).splitlines() == [RESUME_SUBJECT, HALT_SUBJECT, HALT_SUBJECT]
    assert git("rev-list", "--max-parents=0", HALT_REF, cwd=remote) == git("rev-list", "--reverse", HALT_REF,
                                                                           cwd=remote).split()[0]
    assert git("rev-parse", "main", cwd=remote) == main  # the kill switch never touched main
    assert ("claimed", n) in events(tick(remote, tmp_path))
    assert resume(agent_mesh(remote, tmp_path / "hosts", "admin"), local=False) == Resumed(None, None)


def test_resume_clears_only_the_halt_it_read(remote, tmp_path):
    """A halt set again between resume's read and its push stays: the resume is pinned to the halt it read."""
    admin = agent_mesh(remote, tmp_path / "hosts", "admin")
    halt(admin, "first", local=False)
    first = remote_refs(remote, HALT_REF)[HALT_REF]
    # the pre-receive hook re-halts the moment resume's push arrives, so its lease no longer holds (outside
    # the push's object quarantine, where git refuses ref updates)
    again = git("commit-tree", git("hash-object", "-t", "tree", "-w", "--stdin", cwd=remote, input=""),
                "-m", "agentmesh: halt [skip ci]\n\nsecond", cwd=remote)
    hook = remote / "hooks" / "pre-receive"
    hook.write_text(f"#!/bin/sh\ncat >/dev/null\nunset GIT_QUARANTINE_PATH\n"
                    f"git update-ref {HALT_REF} {again} {first}\n")
    hook.chmod(0o755)
    with pytest.raises(UserError, match=r"set again while resuming \(second\); run resume again"):
        resume(agent_mesh(remote, tmp_path / "hosts", "admin"), local=False)
    hook.unlink()
    assert remote_refs(remote, HALT_REF) == {HALT_REF: again}
    assert "second" in tick(remote, tmp_path).reason


def test_a_halt_of_the_previous_format_still_halts_and_resume_goes_on_top_of_it(remote, tmp_path):
    """Earlier versions wrote one parentless commit on the empty tree, and resume deleted it."""
    new_issue(remote, tmp_path, "A", demo_body("a.txt", "a\n"))
    empty = git("hash-object", "-t", "tree", "-w", "--stdin", cwd=remote, input="")
    old = git("commit-tree", empty, "-m", f"{HALT_SUBJECT}\n\nleft by an earlier version", cwd=remote)
    git("update-ref", HALT_REF, old, cwd=remote)
    assert "left by an earlier version" in tick(remote, tmp_path).reason
    assert resume(agent_mesh(remote, tmp_path / "hosts", "admin"), local=False).cleared == "left by an earlier version"
    assert git("log", "--format=%s%x00%P", HALT_REF, cwd=remote).splitlines() == [
        f"{RESUME_SUBJECT}\x00{old}", f"{HALT_SUBJECT}\x00"]
    assert tick(remote, tmp_path).status == "worked"


def test_with_a_roster_a_maintainers_signed_resume_counts_and_an_unknown_keys_does_not(remote, tmp_path):
    alice = agent_mesh(remote, tmp_path / "hosts", "alice")
    grace = ensure_key(tmp_path / "grace" / "id_ed25519", "grace")
    human_commit(remote, {ROSTER_PATH: roster_yaml([alice], [{"login": "grace", "key": grace.line}])})
    new_issue(remote, tmp_path, "A", demo_body("a.txt", "a\n"))
    halt(alice, "freeze", local=False)
    empty = git("hash-object", "-t", "tree", "-w", "--stdin", cwd=remote, input="")

    def resume_signed_by(key) -> None:
        signing = ["-c", "gpg.format=ssh", "-c", f"user.signingKey={key}"]
        head = remote_refs(remote, HALT_REF)[HALT_REF]
        commit = git(*signing, "commit-tree", "-S", empty, "-p", head, cwd=remote, input=f"{RESUME_SUBJECT}\n")
        git("update-ref", HALT_REF, commit, head, cwd=remote)

    ensure_key(tmp_path / "mallory" / "id_ed25519", "mallory")
    resume_signed_by(tmp_path / "mallory" / "id_ed25519")
    halted = tick(remote, tmp_path)
    assert halted.status == "halted" and halted.reason.startswith("mesh halted (branch agentmesh/halt): freeze (")
    resume_signed_by(tmp_path / "grace" / "id_ed25519")
    assert tick(remote, tmp_path).status == "worked"


def test_an_old_halt_file_on_main_is_still_honoured_and_resume_leaves_it_to_a_human(remote, tmp_path):
    main = human_commit(remote, {HALT_FILE: "set by an earlier version\n"}, message="halt")
    assert "set by an earlier version" in tick(remote, tmp_path).reason
    resumed = resume(agent_mesh(remote, tmp_path / "hosts", "admin"), local=False)
    assert resumed.cleared is None and resumed.still and "remove it through a PR" in resumed.still
    assert git("rev-parse", "main", cwd=remote) == main
    assert tick(remote, tmp_path).status == "halted"


def test_local_halt_and_halt_issue(remote, tmp_path):
    new_issue(remote, tmp_path, "A", demo_body("a.txt", "a\n"))
    alice = agent_mesh(remote, tmp_path / "hosts", "alice")
    halt(alice, "disk full", local=True)
    assert tick(remote, tmp_path).status == "halted"
    assert tick(remote, tmp_path, agent="bob").status == "worked"  # only alice's host is halted
    resume(alice, local=True)
    stop = new_issue(remote, tmp_path, "Stop everything", "", labels=(Label.HALT,))
    report = tick(remote, tmp_path)
    assert report.status == "halted" and f"#{stop}" in report.reason


def test_a_failing_executor_counts_attempts_and_dead_letters(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git", "max_attempts: 2\n")
    n = new_issue(remote, tmp_path, "Impossible", "There is no demo block here.")
    first = tick(remote, tmp_path)
    assert ("failed", n) in events(first)
    forge = forge_of(remote, tmp_path)
    assert Label.FAILED in forge.get_issue(n).labels
    assert not remote_refs(remote, "refs/heads/claim/")  # released: back in the queue
    second = tick(remote, tmp_path, agent="bob")
    assert ("dead-letter", n) in events(second)
    issue = forge.get_issue(n)
    assert Label.DEAD_LETTER in issue.labels
    comments = [c.body for c in forge.list_comments(n)]
    assert len(comments) == 2 and "attempt 2 of 2" in comments[1] and "nothing to do" in comments[1]
    assert events(tick(remote, tmp_path, agent="carol"))[0][0] == "idle"  # dead letters are not claimed
    assert not [r for r in remote_refs(remote) if r.startswith(("refs/heads/alice/", "refs/heads/bob/"))]


def test_a_planted_secret_never_reaches_the_remote(remote, tmp_path):
    """The executor writes (and prints) a GitHub token: nothing of it lands on the remote."""
    n = new_issue(remote, tmp_path, "Config", "write the config")
    script = ("import sys; pat = 'github_pat_' + 'A1b2C3d4E5' * 8; print(pat); "
              "open(sys.argv[1] + '/config.env', 'w').write('TOKEN=' + pat + '\\n')")
    executor = {"kind": "command", "command": [sys.executable, "-c", script, "{worktree}"]}
    report = tick(remote, tmp_path, executor=executor)
    assert ("failed", n) in events(report), report.events
    assert not [r for r in remote_refs(remote) if r.startswith("refs/heads/alice/")]
    assert not remote_refs(remote, "refs/heads/claim/")
    everything = subprocess.run(["git", "cat-file", "--batch-all-objects", "--batch"], cwd=remote,
                                capture_output=True, check=True).stdout
    assert b"github_pat_A1b2" not in everything
    [comment] = forge_of(remote, tmp_path).list_comments(n)
    assert "github" in comment.body and "config.env" in comment.body and "line 1" in comment.body


def test_the_hosts_own_token_is_never_published_or_handed_to_the_executor(remote, tmp_path):
    """An executor that dumps its environment: the token is neither in its env nor in any log."""
    n = new_issue(remote, tmp_path, "Env", "dump the environment")
    script = "import os, sys; open(sys.argv[1] + '/env.txt', 'w').write(repr(sorted(os.environ.items())))"
    executor = {"kind": "command", "command": [sys.executable, "-c", script, "{worktree}"],
                "env_passthrough": ["COPY_OF_TOKEN", "HARMLESS"], "sandbox": "off"}
    env = {"PATH": "/usr/bin:/bin", "AGENTMESH_TOKEN": TOKEN, "COPY_OF_TOKEN": TOKEN, "HARMLESS": "yes"}
    report = tick(remote, tmp_path, executor=executor, env=env)
    assert ("pr-opened", n) in events(report), report.events
    [pull] = forge_of(remote, tmp_path).list_pulls()
    dumped = branch_files(remote, pull.head_sha)["env.txt"]
    assert "HARMLESS" in dumped and "AGENTMESH_ISSUE" in dumped
    assert TOKEN not in dumped and "AGENTMESH_TOKEN" not in dumped and "COPY_OF_TOKEN" not in dumped
    for path in (tmp_path / "hosts" / "alice").rglob("*"):
        if path.is_file() and "cache-" not in str(path):
            assert TOKEN.encode() not in path.read_bytes(), path


def test_a_token_pasted_into_the_issue_reaches_no_branch_name_task_file_or_executor(remote, tmp_path):
    n = new_issue(remote, tmp_path, f"Rotate {TOKEN} now", f"the token {TOKEN} leaked")
    forge_of(remote, tmp_path, "human").comment(n, f"also here: {TOKEN}")
    script = "import sys, shutil; shutil.copy(sys.argv[1], sys.argv[2] + '/seen.md')"
    executor = {"kind": "command", "command": [sys.executable, "-c", script, "{task_file}", "{worktree}"],
                "sandbox": "off"}
    report = tick(remote, tmp_path, executor=executor, env={"PATH": "/usr/bin:/bin", "AGENTMESH_TOKEN": TOKEN})
    assert ("pr-opened", n) in events(report), report.events
    [pull] = forge_of(remote, tmp_path).list_pulls()
    assert TOKEN.lower()[:12] not in pull.head and pull.head.startswith(f"alice/{n}-rotate")
    seen = branch_files(remote, pull.head_sha)["seen.md"]
    assert TOKEN not in seen and seen.count("[REDACTED]") == 3  # title, body, comment
    assert TOKEN not in pull.title and TOKEN not in git("log", "-1", "--format=%B", pull.head_sha, cwd=remote)
    for path in (tmp_path / "hosts" / "alice").rglob("*"):
        if path.is_file() and "cache-" not in str(path):
            assert TOKEN.encode() not in path.read_bytes(), path
    [log] = (tmp_path / "hosts" / "alice").rglob("issue-*.log")
    assert log.stat().st_mode & 0o077 == 0


def test_a_lost_claim_kills_the_executor_and_publishes_nothing(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git", "lease: {seconds: 60, renew_seconds: 10}\n")
    n = new_issue(remote, tmp_path, "Slow", "slow work")
    marker = tmp_path / "executor-finished"
    script = f"import time, pathlib; time.sleep(40); pathlib.Path({str(marker)!r}).write_text('x')"
    executor = {"kind": "command", "command": [sys.executable, "-c", script], "sandbox": "off"}
    ref = f"refs/heads/claim/{n}"

    pidfile = tmp_path / "hosts" / "alice" / "running" / f"issue-{n}.json"

    def reap_it():  # another agent deletes the claim once the executor runs, as a reaper would
        deadline = time.monotonic() + 30
        while not pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ref in remote_refs(remote, ref)
        git("update-ref", "-d", ref, cwd=remote)

    thief = threading.Thread(target=reap_it)
    thief.start()
    started = time.monotonic()
    report = tick(remote, tmp_path, executor=executor)
    thief.join()
    assert ("claim-lost", n) in events(report), report.events
    assert time.monotonic() - started < 30  # stopped at the first failed renewal, not after 40 s
    assert not marker.exists()
    assert not [r for r in remote_refs(remote) if r.startswith("refs/heads/alice/")]
    assert forge_of(remote, tmp_path).list_pulls() == []


def test_heartbeat_renews_when_due_and_reports_a_lost_claim(remote, tmp_path):
    clock = FakeClock()
    mesh = agent_mesh(remote, tmp_path / "hosts", "alice", clock=clock)
    store = mesh.claims()
    won = store.acquire(5)
    now = [0.0]
    beat = Heartbeat(store, 5, won.sha, renew_seconds=10, lease_seconds=60, now=lambda: now[0])
    assert beat.beat() is None and beat.renewals == 0
    now[0] = 5.0
    clock.advance(5)  # polled, not due yet: nothing is pushed
    assert beat.beat() is None and beat.renewals == 0 and beat.sha == won.sha
    now[0] = 10.0
    clock.advance(5)
    assert beat.beat() is None and beat.renewals == 1
    assert remote_refs(remote, "refs/heads/claim/5")["refs/heads/claim/5"] == beat.sha != won.sha
    git("update-ref", "-d", "refs/heads/claim/5", cwd=remote)
    now[0] = 20.0
    clock.advance(10)
    assert "claim lost" in beat.beat()
    assert "claim lost" in beat.beat()  # stays lost


def test_seats_run_several_tasks_in_one_tick(remote, tmp_path):
    numbers = [new_issue(remote, tmp_path, f"File {i}", demo_body(f"f{i}.txt", f"{i}\n")) for i in range(3)]
    report = tick(remote, tmp_path, seats=3)
    assert sorted(i for e, i in events(report) if e == "pr-opened") == numbers
    assert len(forge_of(remote, tmp_path).list_pulls()) == 3


def test_a_fallback_chain_skips_an_executor_that_cannot_start(remote, tmp_path):
    n = new_issue(remote, tmp_path, "Note", demo_body("note.md", "hi\n"))
    report = tick(remote, tmp_path, executor={"kind": "fallback", "chain": ["codex", "demo"]})
    assert ("pr-opened", n) in events(report), report.events


def test_no_executor_at_all_is_refused_before_anything_is_claimed(remote, tmp_path):
    n = new_issue(remote, tmp_path, "Note", demo_body("note.md", "hi\n"))
    before = remote_refs(remote)
    with pytest.raises(ConfigError, match="executor codex cannot start: 'codex' is not on the PATH executors get"):
        tick(remote, tmp_path, executor={"kind": "codex"})
    assert remote_refs(remote) == before  # no claim, no presence, no journal
    assert forge_of(remote, tmp_path).list_comments(n) == []


def test_files_git_refuses_to_track_fail_the_attempt_instead_of_the_agent(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git", "max_attempts: 1\n")
    n = new_issue(remote, tmp_path, "Sneaky", "make a file git refuses")
    script = "import os, sys; os.makedirs(sys.argv[1] + '/.GIT'); open(sys.argv[1] + '/.GIT/config', 'w').write('x')"
    report = tick(remote, tmp_path, executor={"kind": "command", "command": [sys.executable, "-c", script,
                                                                            "{worktree}"], "sandbox": "off"})
    assert report.exit_code == 0 and ("dead-letter", n) in events(report), report.events
    assert not remote_refs(remote, "refs/heads/claim/")
