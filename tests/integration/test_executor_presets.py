"""The presets against the real CLIs (issue 15, item 5): Claude Code and Codex from npm, aider from PyPI.

Every flag of a preset must be one the installed CLI's `--help` lists, with the value it takes. Each
CLI then runs without credentials through our executor runner, in the sandbox as the agent runs it
(empty HOME, no token): the run must end as an executor failure carrying the CLI's own message,
never as a success and never as a crash. This machine reaches no model API, so where a CLI needs an
answer to fail on (Codex, aider), it talks to a local endpoint that answers as the OpenAI API does to
a request without a valid key (401, the API's error object).

`.ci/run` installs the CLIs: npm's under `.ci/node` (`npm install --prefix`), aider in its own venv
`.ci/aider` (it pins many packages). AGENTMESH_TEST_CLI_PATH (directories, `:`-separated) points
elsewhere. Without a CLI its tests are skipped, saying how to install it.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentmesh.agent.claim_task import claim_task
from agentmesh.agent.executor import PRESETS, REVIEW_PRESETS, ExecutorSpec, Private, bwrap_available, resolve, run
from agentmesh.agent.llm_review import run_llm_review
from agentmesh.core.vocab import ReviewVerdict
from tests.support import REPO, agent_forge, agent_mesh, git, local_forge_remote, make_remote, remote_refs

INSTALL = {  # preset -> (program, how .ci/run installs it)
    "claude-code": ("claude", "npm install --prefix .ci/node @anthropic-ai/claude-code"),
    "codex": ("codex", "npm install --prefix .ci/node @openai/codex"),
    "aider": ("aider", "uv pip install aider-chat into the venv .ci/aider"),
}
HELP = {"claude-code": ["--help"], "codex": ["exec", "--help"], "aider": ["--help"]}
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
HAVE_BWRAP = bwrap_available() is None
SANDBOX = "required" if HAVE_BWRAP else "off"  # as the agent runs them; tests/integration/test_sandbox.py proves it


def cli_dirs() -> list[str]:
    listed = os.environ.get("AGENTMESH_TEST_CLI_PATH")
    if listed:
        return [d for d in listed.split(os.pathsep) if d]
    return [str(REPO / ".ci" / "node" / "node_modules" / ".bin"), str(REPO / ".ci" / "aider" / "bin")]


def cli_path() -> str:
    """The PATH the agent gives its executors here: the CLIs' directories, then the system's."""
    return os.pathsep.join([*cli_dirs(), SYSTEM_PATH])


def installed(preset: str) -> str | None:
    return shutil.which(INSTALL[preset][0], path=os.pathsep.join(cli_dirs()))


def needs(preset: str):
    """Skipped where the CLI is missing, but not in CI: .ci/run installs them, so there it is a failure."""
    program, how = INSTALL[preset]
    return pytest.mark.skipif(installed(preset) is None and os.environ.get("CI") != "true",
                              reason=f"{program} is not installed ({how}; .ci/run does it)")


def help_text(preset: str) -> str:
    program = installed(preset)
    assert program is not None, f"{INSTALL[preset][0]} is not installed: {INSTALL[preset][1]}"
    done = subprocess.run([program, *HELP[preset]], capture_output=True, text=True, timeout=120,
                          env={"PATH": cli_path(), "HOME": "/nonexistent", "NO_COLOR": "1"})
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def help_flags(text: str) -> set[str]:
    """Every option the help text names (`-p, --print`, `--sandbox <MODE>`, `[--yes-always]`)."""
    return set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", text))


def preset_options(argv: list[str]) -> list[tuple[str, str | None]]:
    """(flag, the value the preset gives it or None) for each option of a preset's argv. A value is the
    word after a flag unless it is a flag itself or agentmesh fills it in (`{task_file}`, the prompt)."""
    options = []
    for i, word in enumerate(argv):
        if word.startswith("-"):
            following = argv[i + 1] if i + 1 < len(argv) else None
            value = following if following and not following.startswith("-") and "{" not in following else None
            options.append((word, value))
    return options


def test_the_option_parser_sees_what_a_preset_gives():
    assert preset_options(["codex", "exec", "--sandbox", "workspace-write", "Read {task_file}"]) == [
        ("--sandbox", "workspace-write")]
    assert preset_options(["claude", "-p", "Read {task_file}", "--output-format", "json"]) == [
        ("-p", None), ("--output-format", "json")]
    assert help_flags("  -p, --print   Print\n  [--yes-always] [--no-gitignore]\n  --sandbox <MODE>\n  a-b --c") == {
        "-p", "--print", "--yes-always", "--no-gitignore", "--sandbox", "--c"}


@pytest.mark.parametrize("preset", [pytest.param(p, marks=needs(p)) for p in INSTALL])
def test_every_flag_of_a_preset_is_in_the_real_clis_help(preset):
    text = help_text(preset)
    flags = help_flags(text)
    for argv in (PRESETS[preset], REVIEW_PRESETS[preset]):  # as an executor, and as an LLM reviewer
        for flag, value in preset_options(argv):
            assert flag in flags, f"{preset}: {flag} is not an option of {' '.join(argv[:2])} any more"
            if value is not None:  # a choice the help lists: acceptEdits, json, workspace-write, read-only
                assert re.search(rf"(?<![\w-]){re.escape(value)}(?![\w-])", text), f"{preset}: {flag} {value}?"
    if preset == "codex":
        assert "Run Codex non-interactively" in text  # `exec` is the subcommand the preset means


# --- runs without credentials ---------------------------------------------------------------------


@pytest.fixture
def worktree(tmp_path) -> Path:
    """A linked worktree of a bare repository, as the agent makes one."""
    repo = make_remote(tmp_path / "repo.git")
    git("--git-dir", str(repo), "worktree", "add", "--quiet", str(tmp_path / "wt"), "main")
    return tmp_path / "wt"


@pytest.fixture
def task_file(tmp_path) -> Path:
    path = tmp_path / "task.md"
    path.write_text("# Add hello.txt\n\nCreate a file hello.txt that says hello.\n")
    return path


class _NoKey(http.server.BaseHTTPRequestHandler):
    """What the OpenAI API answers a request without a valid key."""

    def answer(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        body = json.dumps({"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error",
                                     "param": None, "code": "invalid_api_key"}}).encode()
        self.send_response(401)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def openai_without_key() -> Iterator[str]:
    """A local endpoint answering every request as the OpenAI API answers one without a valid key."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NoKey)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def run_preset(spec: ExecutorSpec, worktree: Path, task_file: Path, tmp_path: Path, env: dict | None = None):
    result = run(spec, worktree=worktree, task_file=task_file, issue=7, log_path=tmp_path / "run.log",
                 base_env={"PATH": cli_path(), **(env or {})})
    return result, (tmp_path / "run.log").read_text()


@needs("claude-code")
def test_claude_without_a_login_is_a_failure_with_its_message(worktree, task_file, tmp_path):
    """The issue's example: `claude -p … --output-format json` without a login exits 1 with
    `"is_error": true`. Run as the agent runs it by default: sandbox, no network, empty HOME."""
    spec = resolve("claude-code", sandbox=SANDBOX, timeout_seconds=120)[0]
    result, log = run_preset(spec, worktree, task_file, tmp_path)
    assert result.outcome == "failed" and not result.ok, log
    assert result.returncode == 1 and result.sandboxed is HAVE_BWRAP
    assert '"is_error":true' in log.replace(" ", "")
    assert result.message is not None and "Not logged in" in result.message, log


@needs("codex")
def test_codex_without_a_key_is_a_failure_with_its_message(worktree, task_file, tmp_path, openai_without_key):
    """The preset's argv with the API's address moved to the local endpoint (`-c openai_base_url`),
    with the network a hosted executor gets (`allow_network: true`)."""
    argv = [*PRESETS["codex"][:2], "-c", f'openai_base_url="{openai_without_key}"', *PRESETS["codex"][2:]]
    spec = resolve("command", command=argv, sandbox=SANDBOX, allow_network=True, timeout_seconds=120)[0]
    result, log = run_preset(spec, worktree, task_file, tmp_path)
    assert result.outcome == "failed" and result.returncode == 1, log
    assert result.message == (f"ERROR: unexpected status 401 Unauthorized: Incorrect API key provided., "
                              f"url: {openai_without_key}/responses"), log


@needs("codex")
def test_codex_without_a_network_waits_until_the_timeout(worktree, task_file, tmp_path):
    """In the sandbox without a network, codex waits for one instead of failing: only the timeout ends
    it, which is why `doctor` and claim-task refuse a hosted CLI without `allow_network`."""
    if not HAVE_BWRAP:
        pytest.skip("without bwrap the run would reach the host's network")
    spec = resolve("codex", sandbox=SANDBOX, timeout_seconds=10)[0]
    result, log = run_preset(spec, worktree, task_file, tmp_path)
    assert result.outcome == "timeout" and not result.ok, log
    assert "OpenAI Codex" in log and "ERROR" in log, log


@needs("aider")
def test_aider_with_a_rejected_key_fails_the_attempt_with_its_message(tmp_path, openai_without_key):
    """aider reports the API's refusal but exits 0, and leaves its chat history in the worktree: the
    agent commits nothing of it, and the attempt fails with aider's message. Through claim-task on a
    real remote, with the preset as configured (its key and API base passed through)."""
    remote, issue = remote_with_one_issue(tmp_path)
    passed = {"OPENAI_API_KEY": "sk-" + "0" * 48, "OPENAI_API_BASE": openai_without_key}
    executor = {"kind": "aider", "sandbox": SANDBOX, "allow_network": True, "env_passthrough": sorted(passed),
                "timeout_seconds": 300}
    mesh = agent_mesh(remote, tmp_path / "hosts", "alice", executor=executor)
    report = claim_task(mesh, agent_forge(mesh), env={"PATH": cli_path(), **passed})
    assert report.exit_code == 0
    failed = [e for e in report.events if e.event == "failed" and e.issue == issue]
    assert failed and "the executor made no change: `litellm.AuthenticationError: " in failed[0].detail, failed
    assert "Incorrect API key provided." in failed[0].detail
    comments = agent_forge(mesh).list_comments(issue)
    assert any("the executor made no change: `litellm." in c.body for c in comments)
    assert not remote_refs(remote, "refs/heads/alice/") and agent_forge(mesh).list_pulls() == []


@needs("claude-code")
def test_claude_without_a_login_fails_the_attempt_through_claim_task(tmp_path):
    """The whole agent: the attempt is recorded as failed with Claude Code's own words, nothing is pushed."""
    remote, issue = remote_with_one_issue(tmp_path)
    quiet = {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}  # no telemetry from a test
    executor = {"kind": "claude-code", "sandbox": SANDBOX, "allow_network": True, "env_passthrough": sorted(quiet),
                "timeout_seconds": 120}
    mesh = agent_mesh(remote, tmp_path / "hosts", "alice", executor=executor)
    report = claim_task(mesh, agent_forge(mesh), env={"PATH": cli_path(), **quiet})
    assert report.exit_code == 0
    failed = [e for e in report.events if e.event == "failed" and e.issue == issue]
    assert failed, report.events
    assert failed[0].detail.endswith("executor claude-code failed (exit 1): `Not logged in · Please run /login`")
    assert any("`Not logged in · Please run /login`" in c.body for c in agent_forge(mesh).list_comments(issue))
    assert not remote_refs(remote, "refs/heads/alice/")


@needs("claude-code")
def test_claude_without_a_login_as_an_llm_reviewer_is_no_verdict(worktree, task_file, tmp_path):
    """The review preset, run as a reviewer runs it (sandbox, no network, empty HOME): the failed run is
    no verdict, with Claude Code's own words, which escalates; never an approval."""
    spec = resolve("claude-code", sandbox=SANDBOX, timeout_seconds=120, presets=REVIEW_PRESETS)[0]
    found = run_llm_review([spec], worktree=worktree, task=task_file.read_text(), log_dir=tmp_path / "logs", pull=7,
                           base_env={"PATH": cli_path()}, forbidden_env=[], private=Private()).verdict
    assert found is not None and found.verdict is ReviewVerdict.ESCALATE
    assert found.problem == ("the review executor claude-code ended failed (exit 1): Not logged in · Please run "
                             "/login"), found


def remote_with_one_issue(tmp_path):
    """A local-forge remote with one small task filed by a human: (remote, issue number)."""
    remote = local_forge_remote(tmp_path / "remote.git")
    issue = agent_forge(agent_mesh(remote, tmp_path / "hosts", "human")).create_issue(
        "Add hello.txt", "Create a file hello.txt that says hello.", ["task"]).number
    return remote, issue
