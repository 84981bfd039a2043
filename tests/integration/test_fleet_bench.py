"""benchmarks/fleet.py at its smallest (2 agents x 2 issues, no sleep, local forge over file://), so the
benchmark keeps working between the runs that record its figures (docs/benchmarks.md)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from agentmesh.ops.chaos.remote import read_remote
from tests.support import load_benchmark

fleet = load_benchmark("fleet")
traffic = load_benchmark("fleet_traffic")

FIELDS = ("drain_seconds", "ideal_seconds", "efficiency", "cycle_overhead_seconds", "cpu_per_issue",
          "cpu_per_issue_less_shim", "git_calls_per_tick", "git_calls_per_working_tick", "git_processes_per_tick",
          "lost_races_per_claim", "claims", "give_ups", "ticks", "working_ticks")


def test_a_small_fleet_drains_and_the_report_has_every_figure(tmp_path):
    options = fleet.Options(agents=2, issues=2, sleep=0, backend="file", timeout=240, calibrate=False,
                            acquire_rounds=0)
    run = fleet.run_fleet(tmp_path, options)
    result = fleet.summary(run, overhead=fleet.cycle_overhead(run), overhead_source="this run", shim_seconds=0.001,
                           acquire=None)

    issues = read_remote(tmp_path / "served" / fleet.REPO).issues  # the remote's word, not the agents'
    assert [i.state for i in issues] == ["closed", "closed"]
    assert result["drained"] and result["closed"] == 2
    missing = [f for f in FIELDS if result[f] is None]
    assert not missing, f"figures missing from {result}"
    assert result["claims"] >= 2 and result["working_ticks"] >= 2
    assert 0 < result["git_calls_per_working_tick"] < result["git_processes_per_working_tick"]  # pushes: receive-packs
    assert result["forge_requests"] is None  # the local forge makes no HTTP requests
    assert result["git_commands"]["receive-pack"] > 0
    assert fleet.table(result).startswith("| 2 agents x 2 issues, sleep 0 s, file, cron | |")
    # benchmarks/fleet_traffic.py over the same trace: each issue's claim, PR and merge pushes, by kind
    pushes, fetches = traffic.traffic(sorted(tmp_path.glob("hosts/*/tick-*.trace2")))
    assert pushes["CLAIM ITEM"] >= 2 and pushes["CLAIM ITEM PULLHEAD WORK journals"] >= 2, pushes
    assert pushes["CLAIM ITEM WORK journals main"] >= 2 and pushes["ITEM STATUS journals"] >= 2, pushes
    assert sum(fetches.values()) > 0


def test_agents_run_the_real_python3_first_on_their_path(tmp_path):
    first = fleet.direct_python_path("/usr/bin:/bin").split(":")[0]
    assert (Path(first) / "python3").exists() and "shims" not in first  # not a version manager's shim


def test_a_drained_daemon_fleet_measures_its_idle_runs_apart(tmp_path):
    options = fleet.Options(agents=1, issues=1, sleep=0, backend="file", timeout=240, calibrate=False,
                            acquire_rounds=0, mode="daemon", every=0.5, idle=3)
    run = fleet.run_fleet(tmp_path, options)
    result = fleet.summary(run, overhead=fleet.cycle_overhead(run), overhead_source="this run", shim_seconds=0.001,
                           acquire=None)
    assert result["drained"] and run.idle is not None and run.idle.steps >= 2, run.idle
    assert result["idle_steps"] == run.idle.steps and result["idle_step_cpu_ms"] > 0
    assert 0 < result["idle_step_git_processes"] < 20  # one listing and little else
    whole = sum(t.cpu for t in run.ticks)
    assert result["cpu_seconds"] == round(whole - run.idle.cpu, 1)  # the idle runs are not the drain's


def test_forge_requests_go_to_the_tick_of_their_agent_that_was_running():
    ticks = [fleet.Tick("ada", started=0.0, wall=2.0, cpu=0.1, exit_code=0, events=fleet.Counter()),
             fleet.Tick("ada", started=2.5, wall=1.0, cpu=0.1, exit_code=0, events=fleet.Counter()),
             fleet.Tick("bob", started=0.0, wall=5.0, cpu=0.1, exit_code=0, events=fleet.Counter())]
    fleet.attribute_requests(ticks, [(0.5, "ada"), (1.0, "bob"), (3.0, "ada"), (3.1, "ada"), (9.0, "bob"),
                                     (1.0, "fleet-bot")])
    assert [t.requests for t in ticks] == [1, 2, 1]


def daemons_under(root: Path) -> list[int]:
    """The pids of the `agentmesh daemon` processes whose command line names a folder under `root` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0") if entry.name.isdigit() else []
        except OSError:
            continue  # gone meanwhile
        if b"daemon" in argv and any(str(root).encode() in arg for arg in argv):
            found.append(int(entry.name))
    return found


def test_a_fleet_stopped_by_sigterm_stops_its_daemons_and_removes_its_folder(tmp_path):
    """The daemons run in sessions of their own: without the harness's SIGTERM handler they polled on."""
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, str(Path(fleet.__file__)), "--agents", "1", "--issues", "3", "--sleep",
                             "5", "--mode", "daemon", "--no-calibrate", "--acquire-rounds", "0", "--no-count-git"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not daemons_under(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert daemons_under(tmp_path), "no daemon started"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 128 + signal.SIGTERM
        assert daemons_under(tmp_path) == []
        assert list(tmp_path.glob("agentmesh-fleet-*")) == []
    finally:
        proc.kill()
        proc.wait()
        for pid in daemons_under(tmp_path):  # this test's own, started through the harness: never left polling
            os.kill(pid, signal.SIGKILL)
