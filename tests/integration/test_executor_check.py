"""An executor that cannot start is found before anything is claimed (issue 15, item 4): by
`doctor`, and by `claim-task`, which then exits 1 and writes nothing to the remote."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from agentmesh.agent.executor import PRESETS, ExecutorSpec, Private, bwrap_available, start_problem
from tests.support import agent_forge, agent_mesh, branch_files, demo_body, local_forge_remote, remote_refs
from tests.support import human_commit as commit
from tests.support.cli import run_cli

HAVE_BWRAP = bwrap_available() is None
needs_bwrap = pytest.mark.skipif(not HAVE_BWRAP, reason=f"bubblewrap unavailable: {bwrap_available()}")


def program(folder: Path, name: str, text: str = "#!/bin/sh\nexit 0\n") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    path.chmod(0o755)
    return path


def preset(name: str, sandbox: str = "off", **kwargs) -> ExecutorSpec:
    return ExecutorSpec(name, tuple(PRESETS[name]), 60, sandbox, **kwargs)


def problem(spec: ExecutorSpec, path: Path | str, *, home: Path | None = None, bwrap: str | None = None,
            repo: dict[str, str] | None = None):
    private = Private(home=home) if home else Private()
    return start_problem(spec, path_env=str(path), private=private, bwrap_problem=bwrap,
                         repo_mode=lambda p: (repo or {}).get(p))


def test_a_cli_missing_from_the_path_it_gets_says_how_to_install_it(tmp_path):
    found = problem(preset("codex"), tmp_path / "bin")
    assert found is not None and found.name == "codex"
    assert found.reason == f"'codex' is not on the PATH executors get ({tmp_path / 'bin'})"
    assert found.fix.startswith("npm install -g @openai/codex")
    assert str(found).startswith("executor codex cannot start: 'codex' is not on the PATH")
    program(tmp_path / "bin", "codex")
    assert problem(preset("codex"), tmp_path / "bin") is None


def test_a_missing_interpreter_is_found(tmp_path):
    """npm's CLIs are `#!/usr/bin/env node` scripts: without node on PATH they cannot start."""
    program(tmp_path / "bin", "claude", "#!/usr/bin/env no-such-node-xyz\n")
    found = problem(preset("claude-code"), tmp_path / "bin")
    assert found is not None and "runs with 'no-such-node-xyz', which is not on the PATH" in found.reason
    program(tmp_path / "bin", "no-such-node-xyz")
    assert problem(preset("claude-code"), tmp_path / "bin") is None


def test_an_absolute_program_must_exist_and_be_executable(tmp_path):
    spec = ExecutorSpec("command", (str(tmp_path / "tool"), "{task_file}"), 60, "off")
    assert "does not exist or is not executable" in problem(spec, "/usr/bin").reason
    (tmp_path / "tool").write_text("#!/bin/sh\n")
    assert "does not exist or is not executable" in problem(spec, "/usr/bin").reason
    (tmp_path / "tool").chmod(0o755)
    assert problem(spec, "/usr/bin") is None


@pytest.mark.parametrize("argv0", ["./agent.sh", "{worktree}/agent.sh", "tools/../agent.sh"])
def test_a_script_in_the_repository_must_be_there_and_executable(argv0):
    spec = ExecutorSpec("script", (argv0, "{task_file}"), 60, "off")
    assert problem(spec, "/usr/bin", repo={}).reason == f"{argv0} is not a file in the repository"
    assert problem(spec, "/usr/bin", repo={"agent.sh": "100644"}).fix == \
        "git update-index --chmod=+x agent.sh, through a PR"
    assert problem(spec, "/usr/bin", repo={"agent.sh": "100755"}) is None
    outside = ExecutorSpec("script", ("../agent.sh",), 60, "off")
    assert problem(outside, "/usr/bin", repo={"../agent.sh": "100755"}).reason.endswith("not a file in the repository")


def test_a_required_sandbox_without_bwrap_cannot_start(tmp_path):
    program(tmp_path / "bin", "codex")
    found = problem(preset("codex", "required"), tmp_path / "bin", bwrap="bwrap is not installed")
    assert found.reason == "executor.sandbox is required but bwrap is not installed"
    assert problem(preset("codex", "auto"), tmp_path / "bin", bwrap="bwrap is not installed") is None  # runs, warned


@needs_bwrap
def test_a_hosted_cli_in_the_sandbox_needs_the_network(tmp_path):
    program(tmp_path / "opt" / "bin", "claude")
    found = problem(preset("claude-code", "auto"), tmp_path / "opt" / "bin")
    assert found.reason == "it calls its model's API, but the sandbox has no network"
    assert found.fix.startswith("set executor.allow_network: true")
    assert problem(preset("claude-code", "auto", allow_network=True), tmp_path / "opt" / "bin") is None
    assert problem(preset("claude-code", "off"), tmp_path / "opt" / "bin") is None  # no sandbox: the host's network


@needs_bwrap
def test_a_program_the_sandbox_does_not_show_cannot_start(tmp_path):
    """Installed in HOME itself (~/bin), the sandbox never shows it: inside it would just be exit 1."""
    home = tmp_path / "home"
    program(home / "bin", "codex")
    found = problem(preset("codex", "auto", allow_network=True), home / "bin", home=home)
    assert found.reason == f"{home / 'bin' / 'codex'} is in a private place the sandbox does not show"
    assert problem(preset("codex", "off"), home / "bin", home=home) is None


# --- the commands, on a real remote ------------------------------------------------------------


def write_config(tmp_path: Path, remote: Path, executor: dict) -> Path:
    path = tmp_path / "agentmesh.yaml"
    path.write_text(yaml.safe_dump({"agent": "alice", "host": "host1", "remote": str(remote),
                                    "state_dir": str(tmp_path / "state"), "executor": executor}))
    return path


def test_claim_task_with_a_script_executor_and_no_script_claims_nothing(tmp_path):
    """The issue's case: `kind: script` without `executor_script` used to claim, label the issue
    working and exit 1 on every run with the claim held. Now doctor fails, and claim-task exits 1 with
    one line before it writes anything (refs compared with git's own for-each-ref)."""
    remote = local_forge_remote(tmp_path / "remote.git")
    issue = agent_forge(agent_mesh(remote, tmp_path / "hosts", "human")).create_issue(
        "Note", demo_body("note.md", "hi\n"), ["task"]).number
    config = write_config(tmp_path, remote, {"kind": "script", "sandbox": "off"})
    before = remote_refs(remote)

    for args in (["claim-task"], ["claim-task", "--dry-run"]):
        result = run_cli("--config", str(config), *args, cwd=tmp_path)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert result.stderr == ("agentmesh: error: executor kind script needs `executor_script` in "
                                 ".agentmesh/mesh.yaml\n"), args
        assert remote_refs(remote) == before, args  # no claim, label, presence or journal
    tick = run_cli("--config", str(config), "tick", cwd=tmp_path)  # monitor-prs runs, then the refusal
    assert tick.returncode == 1 and "needs `executor_script`" in tick.stderr
    assert not remote_refs(remote, "refs/heads/claim/")
    before = remote_refs(remote)

    doctor = run_cli("--config", str(config), "doctor", "--json", cwd=tmp_path)
    assert doctor.returncode == 1
    check = next(c for c in json.loads(doctor.stdout)["checks"] if c["name"] == "executor")
    assert not check["ok"] and "executor_script" in check["detail"] and "mesh.yaml" in check["hint"]
    assert remote_refs(remote) == before  # doctor's scratch ref is deleted again

    # the script committed but not executable: still nothing claimed, and doctor says how to fix it
    commit(remote, {".agentmesh/mesh.yaml": "executor_script: [./agent.sh, '{task_file}']\n",
                    "agent.sh": "#!/bin/sh\necho from the script > note.md\n"})
    before = remote_refs(remote)
    result = run_cli("--config", str(config), "claim-task", cwd=tmp_path)
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "./agent.sh is not executable in the repository" in result.stderr
    assert remote_refs(remote) == before
    doctor = run_cli("--config", str(config), "doctor", cwd=tmp_path)
    assert "fix: git update-index --chmod=+x agent.sh, through a PR" in doctor.stdout

    commit(remote, {"agent.sh": "#!/bin/sh\necho from the script > note.md\n"}, executable=("agent.sh",))
    doctor = run_cli("--config", str(config), "doctor", cwd=tmp_path)
    assert "✓ executor: script: script can start" in doctor.stdout, doctor.stdout
    result = run_cli("--config", str(config), "claim-task", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    events = [(e["event"], e["issue"]) for e in json.loads(result.stdout)["events"]]
    assert ("pr-opened", issue) in events, events
    pushed = list(remote_refs(remote, "refs/heads/alice/"))
    assert len(pushed) == 1 and branch_files(remote, pushed[0])["note.md"] == "from the script"


def test_claim_task_without_the_cli_on_path_claims_nothing(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    for tool in ("git", "ssh-keygen"):  # what the agent itself needs; no claude
        (tmp_path / "bin").mkdir(exist_ok=True)
        (tmp_path / "bin" / tool).symlink_to(shutil.which(tool))
    agent_forge(agent_mesh(remote, tmp_path / "hosts", "human")).create_issue("Note", "do it", ["task"])
    config = write_config(tmp_path, remote, {"kind": "claude-code", "sandbox": "off"})
    before = remote_refs(remote)
    result = run_cli("--config", str(config), "claim-task", cwd=tmp_path, env={"PATH": str(tmp_path / "bin")})
    assert result.returncode == 1
    assert result.stderr == (f"agentmesh: error: executor claude-code cannot start: 'claude' is not on the PATH "
                             f"executors get ({tmp_path / 'bin'}); fix: npm install -g @anthropic-ai/claude-code, and "
                             "put its directory on the PATH cron or systemd gives\n")
    assert remote_refs(remote) == before


def test_doctor_checks_a_review_executor_of_its_own_when_the_llm_review_is_on(tmp_path):
    """`review.executor` that cannot start would send every PR this host reviews to a human."""
    from agentmesh.host.config import HostConfig
    from agentmesh.ops.doctor import run_checks

    remote = local_forge_remote(tmp_path / "remote.git", yaml.safe_dump({"review": {"llm": "on"}}))
    host = HostConfig.model_validate({"agent": "alice", "remote": str(remote), "state_dir": str(tmp_path / "state"),
                                      "executor": {"kind": "demo", "sandbox": "off"},
                                      "review": {"executor": {"kind": "codex", "sandbox": "off"}}})

    def executor_check():
        checks = run_checks(lambda: host, env={"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin"},
                            which=lambda _: "/usr/bin/crontab")
        return next(c for c in checks if c.name == "executor")

    missing = executor_check()
    assert not missing.ok and missing.detail.startswith("review.executor: codex: 'codex' is not on the PATH"), missing
    program(tmp_path / "bin", "codex")
    found = executor_check()
    assert found.ok and found.detail.endswith("; reviews: codex can start"), found


def test_a_good_bwrap_probe_is_remembered_for_a_while_a_bad_one_never(tmp_path, monkeypatch):
    """What every run's report and pre-claim check ask (Mesh.bwrap_problem): a daemon's runs start no sandbox
    each to say it works. Not remembered: a failed probe, another bwrap file, a later or an earlier wall time."""
    from agentmesh.agent.executor import PROBE_KEPT_SECONDS, remembered_bwrap_problem

    calls = tmp_path / "calls"
    fake = program(tmp_path / "bin", "bwrap", f"#!/bin/sh\necho x >> {calls}\nexit 0\n")
    monkeypatch.setenv("PATH", f"{fake.parent}:/usr/bin:/bin")
    kept = tmp_path / "state" / "sandbox-probe.json"
    kept.parent.mkdir()

    def probes() -> int:
        return len(calls.read_text().splitlines()) if calls.exists() else 0

    assert remembered_bwrap_problem(kept, 1000.0) is None and probes() == 1
    assert remembered_bwrap_problem(kept, 1000.0 + PROBE_KEPT_SECONDS - 1) is None and probes() == 1
    assert remembered_bwrap_problem(kept, 1000.0 + PROBE_KEPT_SECONDS) is None and probes() == 2  # too old
    now = 1000.0 + PROBE_KEPT_SECONDS
    assert remembered_bwrap_problem(kept, now - 5) is None and probes() == 3  # the clock went back: probed
    program(tmp_path / "bin", "bwrap", f"#!/bin/sh\necho x >> {calls}\necho 'no userns' >&2\nexit 1\n")
    assert remembered_bwrap_problem(kept, now) == "bwrap cannot start: no userns" and probes() == 4  # a new file
    assert remembered_bwrap_problem(kept, now) == "bwrap cannot start: no userns" and probes() == 5  # not kept
    kept.write_text("{damaged")
    program(tmp_path / "bin", "bwrap", f"#!/bin/sh\necho x >> {calls}\nexit 0\n")
    assert remembered_bwrap_problem(kept, now) is None and probes() == 6
    monkeypatch.setenv("PATH", "/nowhere")
    assert "not installed" in remembered_bwrap_problem(kept, now)  # gone: never the remembered verdict
