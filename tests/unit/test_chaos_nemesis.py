"""The nemesis applies a plan in time order, heals every lasting fault at its end (or all at once at
the nemesis's end), and a kill-executor that finds no executor waits a while for one."""

from __future__ import annotations

from pathlib import Path

from agentmesh.ops.chaos.nemesis import ARMED_SECONDS, Cluster, Nemesis
from agentmesh.ops.chaos.schedule import REMOTE, Fault, FaultEvent, Plan


class FakeAgent:
    def __init__(self, log: list[str], name: str):
        self.log, self.name, self.executors = log, name, 0
        self.state_dir = Path("/nonexistent") / name

    def kill(self, now, seconds):
        self.log.append(f"kill {self.name} {seconds}")
        return "killed"

    def kill_executors(self):
        killed, self.executors = self.executors, 0
        self.log.append(f"kill-executors {self.name} -> {killed}")
        return killed

    def pause(self):
        self.log.append(f"pause {self.name}")
        return "stopped"

    def resume(self):
        self.log.append(f"resume {self.name}")
        return "continued"

    def set_skew(self, seconds):
        self.log.append(f"skew {self.name} {seconds:+.0f}")
        return "skewed"


class FakeDaemon:
    port = 9418

    def __init__(self, log: list[str]):
        self.log = log

    def stop(self):
        self.log.append("daemon stop")

    def start(self):
        self.log.append("daemon start")

    def pause(self):
        self.log.append("daemon pause")

    def resume(self):
        self.log.append("daemon resume")


def nemesis(events, log):
    agents = {n: FakeAgent(log, n) for n in ("ada", "bob")}
    cluster = Cluster(agents, FakeDaemon(log), Path("/nonexistent/mesh.git"))  # type: ignore[arg-type]
    return Nemesis(Plan(tuple(events)), cluster), agents


def test_faults_start_and_heal_in_time_order():
    log: list[str] = []
    events = [FaultEvent(2.0, Fault.PAUSE_AGENT, "ada", 10.0), FaultEvent(3.0, Fault.REMOTE_HANG, REMOTE, 2.0),
              FaultEvent(4.0, Fault.SKEW_CLOCK, "bob", 3.0, skew=-3600),
              FaultEvent(9.0, Fault.REMOTE_OUTAGE, REMOTE, 1.0)]
    n, _ = nemesis(events, log)
    n.tick(100.0)  # the first tick starts the clock
    n.tick(112.5)  # everything due by 12.5 s at once, still in order
    assert log == ["pause ada", "daemon pause", "skew bob -3600", "daemon resume", "skew bob +0", "daemon stop",
                   "daemon start", "resume ada"]
    assert [(a.heal, a.event.fault) for a in n.timeline][:2] == [(False, Fault.PAUSE_AGENT), (False, Fault.REMOTE_HANG)]
    assert n.open == [] and n.pending == []


def test_heal_all_mends_what_is_still_open_and_drops_what_never_started():
    log: list[str] = []
    events = [FaultEvent(2.0, Fault.PAUSE_AGENT, "ada", 80.0), FaultEvent(50.0, Fault.REMOTE_HANG, REMOTE, 5.0)]
    n, _ = nemesis(events, log)
    n.tick(0.0)
    n.tick(5.0)
    n.heal_all(6.0)
    assert log == ["pause ada", "resume ada"]
    assert [a.heal for a in n.timeline] == [False, True] and n.timeline[-1].at == 6.0
    n.tick(60.0)
    assert log == ["pause ada", "resume ada"]  # nothing after the end


def test_a_kill_executor_waits_for_an_executor_then_gives_up():
    log: list[str] = []
    n, agents = nemesis([FaultEvent(2.0, Fault.KILL_EXECUTOR, "bob"), FaultEvent(3.0, Fault.KILL_EXECUTOR, "ada")], log)
    n.tick(0.0)
    n.tick(3.0)
    assert n.timeline == [] and len(n.armed) == 2
    agents["bob"].executors = 1
    n.tick(6.5)
    assert [a.note for a in n.timeline] == ["killed 1 executor(s) (4.5s late)"]
    n.tick(3.0 + ARMED_SECONDS + 0.5)
    assert n.timeline[-1].note == f"no executor ran within {ARMED_SECONDS:.0f}s" and n.armed == []
