"""`executor.sandbox: auto` on a host without bwrap (PATH without it), as real agent processes: every
report says so, doctor fails its sandbox check, and review gates refuse to run PR code, unless the host
config turned the sandbox off on purpose."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import yaml

from tests.support import agent_forge, agent_mesh, demo_body, local_forge_remote
from tests.support.cli import run_cli, write_host_config

NO_SANDBOX = "no sandbox: bwrap is not installed"


def path_without_bwrap(tmp_path: Path) -> str:
    """A PATH with every program of this one but bwrap."""
    folder = tmp_path / "no-bwrap-bin"
    folder.mkdir(exist_ok=True)
    for directory in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for name in os.listdir(directory):
            target = Path(directory) / name
            if name != "bwrap" and not (folder / name).exists() and os.access(target, os.X_OK) and target.is_file():
                (folder / name).symlink_to(target)
    assert shutil.which("bwrap", path=str(folder)) is None and shutil.which("git", path=str(folder))
    return str(folder)


def cli(config: Path, *args: str, path: str) -> tuple[int, str]:
    result = run_cli("--config", str(config), *args, cwd=config.parent.parent, env={"PATH": path})
    return result.returncode, result.stdout + result.stderr


def mesh_with_a_pr(tmp_path: Path, marker: Path) -> tuple[Path, int]:
    """A remote with a gate that leaves `marker` when it runs, and alice's open PR for bob to review."""
    gate = ["python3", "-c", f"import pathlib; pathlib.Path({str(marker)!r}).write_text('ran')"]
    remote = local_forge_remote(tmp_path / "remote.git", yaml.safe_dump(
        {"review": {"ring": ["alice", "bob"]}, "gates": [{"name": "tests", "run": gate, "timeout_seconds": 60}]}))
    forge = agent_forge(agent_mesh(remote, tmp_path / "humans", "human"))
    write_host_config(tmp_path, remote, "alice", {"kind": "demo", "sandbox": "off"})
    number = forge.create_issue("Module", demo_body("pkg/m.py", "X = 1\n"), ["task"]).number
    return remote, number


def test_sandbox_auto_without_bwrap_warns_in_every_report_and_gates_refuse(tmp_path):
    marker = tmp_path / "gate-ran"
    remote, number = mesh_with_a_pr(tmp_path, marker)
    path = path_without_bwrap(tmp_path)
    alice = tmp_path / "configs" / "alice.yaml"
    bob = write_host_config(tmp_path, remote, "bob")  # executor.sandbox: auto, the default
    code, out = cli(bob, "monitor-prs", "--json", path=path)  # present before the PR opens
    assert code == 0 and NO_SANDBOX in out
    code, out = cli(alice, "claim-task", "--json", path=path)
    assert code == 0 and NO_SANDBOX not in out and "pr-opened" in out  # sandbox off: said on purpose
    code, out = cli(bob, "monitor-prs", "--json", path=path)
    report = json.loads(out)
    warnings = [e["detail"] for e in report["events"] if e["event"] == "warning"]
    assert len(warnings) == 1 and warnings[0].startswith(NO_SANDBOX), report
    assert "review gates refuse to run" in warnings[0] and "executor.sandbox: off" in warnings[0]
    assert [e["event"] for e in report["events"] if e["pr"]] == ["changes-requested"], report
    assert not marker.exists()  # no process started
    forge = agent_forge(agent_mesh(remote, tmp_path / "humans", "human"))
    [pull] = forge.list_pulls()
    [review] = forge.list_reviews(pull.number)
    assert review.state == "CHANGES_REQUESTED" and "✗ **tests**: not run: bwrap is not installed" in review.body
    code, text = cli(bob, "claim-task", path=path)  # the plain report too
    assert code == 0 and f"bob: warning: {NO_SANDBOX}" in text, text
    code, text = cli(bob, "doctor", path=path)
    assert code == 1 and "✗ sandbox: bwrap is not installed" in text and "review gates refuse to run" in text
    assert pull.body.startswith(f"Closes #{number}\n")


def test_with_the_sandbox_off_on_purpose_gates_run_and_nothing_warns(tmp_path):
    marker = tmp_path / "gate-ran"
    remote, _ = mesh_with_a_pr(tmp_path, marker)
    path = path_without_bwrap(tmp_path)
    alice = tmp_path / "configs" / "alice.yaml"
    bob = write_host_config(tmp_path, remote, "bob", {"kind": "demo", "sandbox": "off"})
    cli(bob, "monitor-prs", "--json", path=path)
    assert "pr-opened" in cli(alice, "claim-task", "--json", path=path)[1]
    code, out = cli(bob, "monitor-prs", "--json", path=path)
    report = json.loads(out)
    assert code == 0 and "approved" in [e["event"] for e in report["events"]], report
    assert "warning" not in [e["event"] for e in report["events"]]
    assert marker.read_text() == "ran"


def test_a_bwrap_probe_ended_by_a_signal_is_no_verdict_nothing_runs_unsandboxed(tmp_path):
    """Chaos seed 35: a probe SIGTERMed on a loaded host read as "bwrap cannot start", so a good PR got
    a failing review, and with `sandbox: auto` an executor would have run unsandboxed. Now every run that
    needs the verdict exits 75 having done nothing, and doctor names the signal."""
    marker = tmp_path / "gate-ran"
    remote, number = mesh_with_a_pr(tmp_path, marker)
    path = path_without_bwrap(tmp_path)
    dying = Path(path) / "bwrap"
    dying.write_text("#!/bin/sh\nkill -TERM $$\n")
    dying.chmod(0o755)
    alice = tmp_path / "configs" / "alice.yaml"
    bob = write_host_config(tmp_path, remote, "bob")  # executor.sandbox: auto, the default
    code, out = cli(bob, "claim-task", "--json", path=path)
    assert code == 75 and "the bwrap probe was ended by signal 15" in out, out
    code, out = cli(alice, "claim-task", "--json", path=path)  # sandbox off: no probe, the PR opens
    assert code == 0 and "pr-opened" in out, out
    code, out = cli(bob, "monitor-prs", "--json", path=path)
    assert code == 75, out
    forge = agent_forge(agent_mesh(remote, tmp_path / "humans", "human"))
    [pull] = forge.list_pulls()
    assert forge.list_reviews(pull.number) == [] and not marker.exists()
    assert [i.number for i in forge.list_issues() if i.number == number]  # still open, still alice's
    code, text = cli(bob, "doctor", path=path)
    assert code == 1 and "✗ sandbox: the bwrap probe was ended by signal 15" in text, text
