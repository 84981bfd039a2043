"""agent/executor._within answers what PurePath.is_relative_to answers, without its cost (the sandbox's binds
ask it hundreds of times per executor start)."""

from __future__ import annotations

from pathlib import PurePosixPath

from agentmesh.agent.executor import Private, _within

PATHS = ["/", "//", "/a", "/a/b", "/a/bc", "/ab", "/a/b/c", "a", "a/b", "b", ".", "", "//a", "/a/../b", "/usr",
         "/usr/local/bin", "/usr2", "/etc/resolv.conf"]


def test_within_is_is_relative_to_for_every_pair():
    for one in PATHS:
        for other in PATHS:
            path, base = PurePosixPath(one), PurePosixPath(other)
            assert _within(path, base) == path.is_relative_to(base), (one, other)


def test_a_private_lists_its_paths_then_the_home_secrets_every_time(tmp_path):
    private = Private(home=tmp_path / "home", paths=(tmp_path / "state",))
    first = private.hidden()
    assert first[0] == tmp_path / "state" and tmp_path / "home" / ".ssh" in first
    first.append(tmp_path / "changed by a caller")
    assert private.hidden() == first[:-1]  # a list of its own each time
