"""Executors as real processes: process groups, timeouts, scrubbed environments, the sandbox."""

import os
import socket
import subprocess
import time
import uuid

import pytest

from agentmesh.agent import demo
from agentmesh.agent.executor import ExecutorSpec, bwrap_available, fill, resolve, run
from agentmesh.core.errors import ConfigError
from tests.support import git, make_remote

HAVE_BWRAP = bwrap_available() is None


@pytest.fixture
def worktree(tmp_path):
    path = tmp_path / "wt"
    git("init", "--quiet", str(path))
    return path


@pytest.fixture
def task_file(tmp_path):
    path = tmp_path / "task.md"
    path.write_text("# task\n")
    return path


def spec(argv, timeout=30.0, sandbox="off", **kwargs):
    return ExecutorSpec("test", tuple(argv), timeout, sandbox, **kwargs)


def survivors(marker: str) -> list[str]:
    out = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()
    return [pid for pid in out if pid != str(os.getpid())]


def wait_gone(marker: str, seconds: float = 10) -> list[str]:
    deadline = time.monotonic() + seconds
    while survivors(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    return survivors(marker)


@pytest.mark.parametrize("sandbox", ["off", pytest.param("required", marks=pytest.mark.skipif(
    not HAVE_BWRAP, reason=f"bubblewrap unavailable: {bwrap_available()}"))])
def test_timeout_kills_the_whole_process_group(worktree, task_file, tmp_path, sandbox):
    marker = f"{300 + int(uuid.uuid4().int % 1000)}.{uuid.uuid4().int % 10**6}"
    argv = ["sh", "-c", f"sleep {marker} & sh -c 'sleep {marker}' & sleep {marker}"]
    result = run(spec(argv, timeout=1.0, sandbox=sandbox), worktree=worktree, task_file=task_file, issue=1,
                 log_path=tmp_path / "run.log")
    assert result.outcome == "timeout" and not result.ok
    assert result.sandboxed is (sandbox == "required")
    assert wait_gone(marker) == []
    assert "executor timeout" in (tmp_path / "run.log").read_text()


def test_children_left_behind_are_killed_after_a_normal_exit(worktree, task_file, tmp_path):
    marker = f"{400 + int(uuid.uuid4().int % 1000)}.{uuid.uuid4().int % 10**6}"
    result = run(spec(["sh", "-c", f"sleep {marker} & echo done"]), worktree=worktree, task_file=task_file,
                 issue=1, log_path=tmp_path / "run.log")
    assert result.ok and result.returncode == 0
    assert wait_gone(marker) == []
    assert "done" in (tmp_path / "run.log").read_text()


def test_should_stop_stops_the_executor(worktree, task_file, tmp_path):
    started = time.monotonic()
    calls = []

    def stop():
        calls.append(1)
        return "claim lost" if len(calls) > 3 else None

    result = run(spec(["sleep", "300"]), worktree=worktree, task_file=task_file, issue=1,
                 log_path=tmp_path / "run.log", should_stop=stop, poll_seconds=0.05)
    assert result.outcome == "stopped" and time.monotonic() - started < 20


def test_environment_is_scrubbed_of_tokens(worktree, task_file, tmp_path):
    base = {"PATH": os.environ["PATH"], "AGENTMESH_TOKEN": "tok-agentmesh-secret", "GITEA_TOKEN": "tok-gitea-secret",
            "ANTHROPIC_API_KEY": "sk-executor-key", "HOME": str(tmp_path)}
    result = run(spec(["env"], env_passthrough=("ANTHROPIC_API_KEY", "GITEA_TOKEN")), worktree=worktree,
                 task_file=task_file, issue=7, log_path=tmp_path / "run.log", base_env=base,
                 forbidden_env=("GITEA_TOKEN", "AGENTMESH_TOKEN"))
    log = (tmp_path / "run.log").read_text()
    assert result.ok
    assert "tok-agentmesh-secret" not in log and "tok-gitea-secret" not in log  # even when passed through
    assert "ANTHROPIC_API_KEY=sk-executor-key" in log
    assert "AGENTMESH_ISSUE=7" in log and f"AGENTMESH_TASK_FILE={task_file}" in log
    assert f"AGENTMESH_WORKTREE={worktree}" in log


@pytest.mark.skipif(not HAVE_BWRAP, reason=f"bubblewrap unavailable: {bwrap_available()}")
def test_sandbox_allows_only_the_worktree(worktree, task_file, tmp_path):
    outside = tmp_path / "outside.txt"
    script = (f"echo work > inside.txt; echo x > .git/evil 2>/dev/null; echo x > {outside} 2>/dev/null; "
              f"echo x > {task_file} 2>/dev/null; true")
    result = run(spec(["sh", "-c", script], sandbox="required"), worktree=worktree, task_file=task_file,
                 issue=1, log_path=tmp_path / "run.log")
    assert result.ok and result.sandboxed
    assert (worktree / "inside.txt").read_text() == "work\n"
    assert not (worktree / ".git" / "evil").exists() and not outside.exists()
    assert task_file.read_text() == "# task\n"


@pytest.mark.skipif(not HAVE_BWRAP, reason=f"bubblewrap unavailable: {bwrap_available()}")
def test_sandbox_has_no_network_unless_allowed(worktree, task_file, tmp_path):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    port = server.getsockname()[1]
    probe = ["python3", "-c", f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=3)"]
    try:
        cut = run(spec(probe, sandbox="required"), worktree=worktree, task_file=task_file, issue=1,
                  log_path=tmp_path / "a.log")
        allowed = run(spec(probe, sandbox="required", allow_network=True), worktree=worktree,
                      task_file=task_file, issue=1, log_path=tmp_path / "b.log")
    finally:
        server.close()
    assert cut.outcome == "failed" and allowed.ok


def test_required_sandbox_refuses_clearly_when_bwrap_is_missing(worktree, task_file, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(ConfigError, match="sandbox is required but bwrap is not installed"):
        run(spec(["true"], sandbox="required"), worktree=worktree, task_file=task_file, issue=1,
            log_path=tmp_path / "run.log")
    auto = run(spec(["/bin/true"], sandbox="auto"), worktree=worktree, task_file=task_file, issue=1,
               log_path=tmp_path / "run.log")
    assert auto.ok and not auto.sandboxed


def test_missing_program_is_unavailable(worktree, task_file, tmp_path):
    result = run(spec(["no-such-executor-xyz"]), worktree=worktree, task_file=task_file, issue=1,
                 log_path=tmp_path / "run.log")
    assert result.outcome == "unavailable"


def test_cost_is_read_from_claude_json_output(worktree, task_file, tmp_path):
    line = '{"type": "result", "total_cost_usd": 0.0421, "result": "done"}'
    result = run(spec(["echo", line]), worktree=worktree, task_file=task_file, issue=1, log_path=tmp_path / "r.log")
    assert result.cost_usd == pytest.approx(0.0421)


def test_a_claude_result_with_is_error_fails_even_with_exit_0(worktree, task_file, tmp_path):
    line = '{"type": "result", "subtype": "success", "is_error": true, "result": "Credit balance is too low"}'
    result = run(spec(["echo", line]), worktree=worktree, task_file=task_file, issue=1, log_path=tmp_path / "r.log")
    assert result.returncode == 0 and result.outcome == "failed" and not result.ok
    assert result.message == "Credit balance is too low"


def test_the_message_is_this_runs_own(worktree, task_file, tmp_path):
    """A fallback chain's executors share a log: an earlier one's error is not the next one's."""
    log = tmp_path / "r.log"
    first = run(spec(["sh", "-c", 'echo \'{"type": "result", "is_error": true, "result": "no"}\'; exit 1']),
                worktree=worktree, task_file=task_file, issue=1, log_path=log)
    second = run(spec(["echo", "done"]), worktree=worktree, task_file=task_file, issue=1, log_path=log)
    assert (first.outcome, first.message) == ("failed", "no")
    assert second.ok and second.message is None


def test_fill_and_resolve():
    assert fill(["{task_file}", "x{issue}y", "{other}"], {"task_file": "/t/{issue}.md", "issue": "4"}) == [
        "/t/{issue}.md", "x4y", "{other}"]
    assert [s.name for s in resolve("fallback", chain=["claude-code", "codex"])] == ["claude-code", "codex"]
    assert resolve("command", command=["my-tool", "{task_file}"])[0].argv == ("my-tool", "{task_file}")
    for kind, kwargs, message in [("command", {}, "executor.command"), ("fallback", {"chain": ["nope"]}, "chain"),
                                  ("script", {}, "executor_script"), ("magic", {}, "unknown executor")]:
        with pytest.raises(ConfigError, match=message):
            resolve(kind, **kwargs)


# --- the demo executor ---


def test_demo_executor_writes_the_requested_file(worktree, task_file, tmp_path):
    task_file.write_text("Please add it.\n```agentmesh-demo path=docs/hello.md\n# Hello\n```\n")
    result = run(resolve("demo", sandbox="off")[0], worktree=worktree, task_file=task_file, issue=3,
                 log_path=tmp_path / "run.log")
    assert result.ok, (tmp_path / "run.log").read_text()
    assert (worktree / "docs" / "hello.md").read_text() == "# Hello\n"


@pytest.mark.parametrize("path", ["../../etc/passwd", "/etc/passwd", ".git/config", "a/../../x", "a\\b"])
def test_demo_executor_refuses_paths_outside_the_worktree(worktree, path):
    with pytest.raises(ValueError, match="refusing"):
        demo.apply(f"```agentmesh-demo path={path}\nowned\n```\n", worktree)


def test_demo_executor_refuses_symlinks_out(worktree, tmp_path):
    (worktree / "link").symlink_to(tmp_path)
    with pytest.raises(ValueError, match="refusing"):
        demo.apply("```agentmesh-demo path=link/escape.txt\nowned\n```\n", worktree)
    assert not (tmp_path / "escape.txt").exists()


def test_demo_executor_without_a_block_fails_cleanly(worktree, task_file, tmp_path):
    result = run(resolve("demo", sandbox="off")[0], worktree=worktree, task_file=task_file, issue=3,
                 log_path=tmp_path / "run.log")
    assert result.outcome == "failed" and "nothing to do" in (tmp_path / "run.log").read_text()


@pytest.mark.skipif(not HAVE_BWRAP, reason=f"bubblewrap unavailable: {bwrap_available()}")
def test_the_sandbox_keeps_programs_and_the_repository_that_live_under_tmp(tmp_path):
    """The sandbox's private /tmp must not hide a program installed under /tmp (a venv in a CI
    checkout) nor the repository a worktree under /tmp belongs to."""
    assert str(tmp_path).startswith("/tmp/")
    repo = make_remote(tmp_path / "repo.git")
    git("--git-dir", str(repo), "worktree", "add", "--quiet", str(tmp_path / "wt"), "main")
    program = tmp_path / "venv" / "bin" / "tool"
    program.parent.mkdir(parents=True)
    program.write_text("#!/bin/sh\ngit rev-parse --git-common-dir > seen.txt\n")
    program.chmod(0o755)
    task = tmp_path / "task.md"
    task.write_text("task\n")
    result = run(spec([str(program)], sandbox="required"), worktree=tmp_path / "wt", task_file=task, issue=1,
                 log_path=tmp_path / "run.log")
    assert result.ok and result.sandboxed, (tmp_path / "run.log").read_text()
    assert (tmp_path / "wt" / "seen.txt").read_text().strip() == str(repo)


@pytest.mark.parametrize(("overrides", "expected"), [
    (None, [("claude-code", 3600), ("codex", 3600)]),
    ("none", [("claude-code", 3600), ("codex", 3600)]),
    ("codex-5m", [("codex", 300)]),
    ("timeout-only", [("claude-code", 5400), ("codex", 5400)]),
])
def test_an_issues_overrides_pick_the_executor_and_its_timeout(tmp_path, overrides, expected):
    """issue 15, item 13: the host's chain, narrowed and re-timed by an issue's trusted labels."""
    from agentmesh.agent.run import host_executors
    from agentmesh.core.overrides import Overrides
    from tests.support import agent_mesh

    mesh = agent_mesh(make_remote(tmp_path / "remote.git"), tmp_path / "hosts", "ada",
                      executor={"kind": "fallback", "chain": ["claude-code", "codex"]})
    chosen = {None: None, "none": Overrides(), "codex-5m": Overrides(300, "codex"),
              "timeout-only": Overrides(5400, None)}[overrides]
    assert [(s.name, s.timeout_seconds) for s in host_executors(mesh, chosen)] == expected
