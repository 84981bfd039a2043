"""The chaos nemesis's plan is a pure function of the seed and the options, and keeps its promises:
every fault that fits appears, all heal before the nemesis ends, one fault at a time per target,
at most one pause, at least one agent up. Also the executors' seeded delays and the clock hook."""

from __future__ import annotations

import argparse
from itertools import combinations

import pytest

from agentmesh.core.errors import ConfigError
from agentmesh.host.state import CLOCK_SKEW_ENV, clock_from_env, system_clock
from agentmesh.ops.chaos.executor import SHORT_AFTER_DEADLINE, delay_for
from agentmesh.ops.chaos.schedule import REMOTE, Fault, Shape, executor_delay, plan

AGENTS = ("ada", "bob", "cy")
SHAPE = Shape(AGENTS, seconds=90, lease_seconds=60, grace_seconds=10)
SEEDS = range(60)


def test_a_seed_replays_the_same_plan_and_another_seed_does_not():
    assert plan(42, SHAPE) == plan(42, SHAPE)
    assert plan(42, SHAPE) != plan(43, SHAPE)
    assert plan(42, SHAPE).to_json() == plan(42, Shape(AGENTS, 90, 60, 10, tuple(reversed(Fault)))).to_json()


@pytest.mark.parametrize("seed", SEEDS)
def test_every_fault_appears_and_heals_before_the_end(seed):
    events = plan(seed, SHAPE).events
    assert {e.fault for e in events} == set(Fault)
    assert all(e.at >= 2.0 and e.ends <= SHAPE.seconds - 1 for e in events)
    assert list(events) == sorted(events, key=lambda e: (e.at, e.fault, e.target))
    for event in events:
        assert (event.target == REMOTE) == event.fault.on_remote
        assert event.target in (*AGENTS, REMOTE)
        assert (event.seconds == 0) == (event.fault is Fault.KILL_EXECUTOR)
        if event.fault is Fault.SKEW_CLOCK:
            assert abs(event.skew) == 3600
        if event.fault is Fault.PAUSE_AGENT:
            assert event.seconds > SHAPE.lease_seconds + SHAPE.grace_seconds + 5


@pytest.mark.parametrize("seed", SEEDS)
def test_faults_never_pile_up(seed):
    lasting = [e for e in plan(seed, SHAPE).events if e.seconds]
    for a, b in combinations(lasting, 2):
        overlap = a.at <= b.ends and b.at <= a.ends
        assert not (overlap and a.target == b.target), (a, b)
        assert not (overlap and a.fault is b.fault is Fault.PAUSE_AGENT), (a, b)
    for moment in [e.at for e in lasting] + [e.ends for e in lasting]:
        down = {e.target for e in lasting if e.fault.takes_agent_down and e.at <= moment <= e.ends}
        assert len(down) < len(AGENTS), (moment, down)
    assert sum(e.fault is Fault.PAUSE_AGENT for e in lasting) == 1


def test_a_pause_that_cannot_fit_is_left_out_with_a_reason():
    short = Shape(AGENTS, seconds=40, lease_seconds=60, grace_seconds=10)
    result = plan(1, short)
    assert Fault.PAUSE_AGENT not in {e.fault for e in result.events}
    assert result.left_out and result.left_out[0].startswith("pause-agent: needs")
    assert {e.fault for e in result.events} == set(Fault) - {Fault.PAUSE_AGENT}


def test_only_the_faults_asked_for():
    only = Shape(AGENTS, 90, 60, 10, (Fault.REMOTE_HANG, Fault.KILL_EXECUTOR))
    assert {e.fault for e in plan(5, only).events} == {Fault.REMOTE_HANG, Fault.KILL_EXECUTOR}
    assert plan(5, Shape(AGENTS, 90, 60, 10, ())).events == ()
    assert plan(5, Shape(AGENTS, 0, 60, 10)).events == ()


def test_executor_delays_are_seeded_and_some_outlast_the_lease():
    delays = [executor_delay(3, n, lease_seconds=60, grace_seconds=10) for n in range(1, 201)]
    assert delays == [executor_delay(3, n, lease_seconds=60, grace_seconds=10) for n in range(1, 201)]
    long = [d for d in delays if d > 70]
    assert 25 <= len(long) <= 75 and all(75 <= d <= 85 for d in long)
    assert all(1 <= d <= 6 for d in delays if d <= 70)
    assert delays != [executor_delay(4, n, lease_seconds=60, grace_seconds=10) for n in range(1, 201)]


def test_a_long_run_becomes_short_once_it_would_outlast_the_nemesis():
    issue = next(n for n in range(1, 100) if executor_delay(0, n, lease_seconds=60, grace_seconds=10) > 70)
    args = argparse.Namespace(seed=0, issue=issue, lease=60.0, grace=10.0, long_share=0.25, long_until=1000.0)
    assert delay_for(args, now=0.0) > 70
    assert delay_for(args, now=990.0) == SHORT_AFTER_DEADLINE


def test_the_clock_skew_hook_moves_only_the_wall_clock(tmp_path):
    assert clock_from_env({}) is system_clock
    ahead = clock_from_env({CLOCK_SKEW_ENV: "3600"})()
    now = system_clock()
    assert abs(ahead.wall - now.wall - 3600) < 5 and abs(ahead.mono - now.mono) < 5 and ahead.boot_id == now.boot_id
    skew = tmp_path / "skew"
    clock = clock_from_env({CLOCK_SKEW_ENV: f"@{skew}"})
    assert abs(clock().wall - system_clock().wall) < 5  # no file: no skew
    skew.write_text("-3600\n")
    assert abs(clock().wall - system_clock().wall + 3600) < 5  # read at every reading
    skew.write_text("garbage")
    assert abs(clock().wall - system_clock().wall) < 5
    with pytest.raises(ConfigError, match=CLOCK_SKEW_ENV):
        clock_from_env({CLOCK_SKEW_ENV: "an hour"})
