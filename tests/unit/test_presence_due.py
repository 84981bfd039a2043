"""core/lease.presence_due: when a run pushes a new presence commit, and when it only lists the ref."""

from __future__ import annotations

import pytest

from agentmesh.core.lease import Clock, PresencePush, presence_due

LEASE = 600
PUSHED = PresencePush("a" * 40, "presence: ada\nkey", wall=1000.0, mono=50.0, boot_id="boot-1")


def at(seconds: float, *, wall_skew: float = 0.0, boot: str = "boot-1") -> Clock:
    return Clock(PUSHED.wall + seconds + wall_skew, PUSHED.mono + seconds, boot)


@pytest.mark.parametrize("case, last, remote, content, now, due", [
    ("fresh, unchanged", PUSHED, PUSHED.sha, PUSHED.content, at(10), False),
    ("just under half the lease", PUSHED, PUSHED.sha, PUSHED.content, at(LEASE / 2 - 1), False),
    ("half the lease", PUSHED, PUSHED.sha, PUSHED.content, at(LEASE / 2), True),
    ("never pushed from this host", None, PUSHED.sha, PUSHED.content, at(10), True),
    ("ref absent", PUSHED, None, PUSHED.content, at(10), True),
    ("ref moved by someone else", PUSHED, "b" * 40, PUSHED.content, at(10), True),
    ("what it says changed (capabilities, version, key)", PUSHED, PUSHED.sha, "presence: ada\nother", at(10), True),
    ("rebooted", PUSHED, PUSHED.sha, PUSHED.content, at(10, boot="boot-2"), True),
    ("wall clock went back", PUSHED, PUSHED.sha, PUSHED.content, at(10, wall_skew=-20), True),
    ("wall clock jumped ahead: one clock past half is enough", PUSHED, PUSHED.sha, PUSHED.content,
     at(10, wall_skew=LEASE), True),
])
def test_presence_due(case, last, remote, content, now, due):
    assert presence_due(last, remote, content, now, LEASE) is due, case


def test_the_record_round_trips():
    assert PresencePush.from_json(PUSHED.to_json()) == PUSHED
