"""core/lease.renewal_due: when a holder pushes a claim renewal, and why renewing only then is safe."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentmesh.core.lease import ClaimPush, Clock, observe, observed_seconds, renewal_due

RENEW = 300
PUSHED = ClaimPush("a" * 40, wall=1000.0, mono=50.0, boot_id="boot-1")


def at(seconds: float, *, wall_skew: float = 0.0, boot: str = "boot-1") -> Clock:
    return Clock(PUSHED.wall + seconds + wall_skew, PUSHED.mono + seconds, boot)


@pytest.mark.parametrize("case, last, sha, now, due", [
    ("just pushed", PUSHED, PUSHED.sha, at(1), False),
    ("just under the renew interval", PUSHED, PUSHED.sha, at(RENEW - 1), False),
    ("the renew interval", PUSHED, PUSHED.sha, at(RENEW), True),
    ("no record: never pushed from here, or the state dir was wiped", None, PUSHED.sha, at(1), True),
    ("the claim is at another sha: the pinned renewal decides whose it is", PUSHED, "b" * 40, at(1), True),
    ("rebooted", PUSHED, PUSHED.sha, at(1, boot="boot-2"), True),
    ("wall clock went back", PUSHED, PUSHED.sha, at(10, wall_skew=-20), True),
    ("wall clock jumped ahead: one clock past the interval is enough", PUSHED, PUSHED.sha,
     at(10, wall_skew=RENEW), True),
    ("an offset that stays the same is no doubt", PUSHED, PUSHED.sha,
     Clock(PUSHED.wall + 10, PUSHED.mono + 10, "boot-1"), False),
])
def test_renewal_due(case, last, sha, now, due):
    assert renewal_due(last, sha, now, RENEW) is due, case


def test_the_record_round_trips():
    assert ClaimPush.from_json(PUSHED.to_json()) == PUSHED


def longest_observed(gaps: list[float], renew: float, observer_offset: float) -> float:
    """The longest time an observer that looks at every instant a holder tick runs (and right before
    it) sees one sha unchanged, when the holder ticks after each of `gaps` and renews when due."""
    holder = Clock(1_000.0, 10.0, "h")
    last = ClaimPush("0" * 40, holder.wall, holder.mono, "h")
    sha, pushes = last.sha, 0
    obs, longest, t = None, 0.0, 0.0

    def look(at: float) -> float:
        nonlocal obs
        now = Clock(at + observer_offset, at + 5.0, "o")
        obs = observe(obs, sha, now)
        return observed_seconds(obs, now)

    look(0.0)
    for gap in gaps:
        longest = max(longest, look(t + gap - 1e-6))  # the instant before the tick
        t += gap
        now = Clock(holder.wall + t, holder.mono + t, "h")
        if renewal_due(last, sha, now, renew):
            pushes += 1
            sha = f"{pushes:040x}"
            last = ClaimPush(sha, now.wall, now.mono, "h")
        longest = max(longest, look(t))
    return longest


@given(st.lists(st.floats(1.0, 40.0), min_size=1, max_size=60), st.floats(-1e6, 1e6))
def test_renew_interval_plus_the_longest_gap_bounds_what_any_observer_counts(gaps, offset):
    """With ticks at most 40 s apart and a 20 s renew interval, no observer, whatever its clock's
    offset, sees a sha unchanged for more than 60 s: a lease of 60 + grace is never reached."""
    assert longest_observed(gaps, 20.0, offset) <= 20.0 + 40.0


def test_a_gap_longer_than_lease_minus_renew_lets_an_observer_count_past_the_lease():
    """The constraint is needed: one tick 45 s after a due renewal, with renew 20 and lease 60."""
    assert longest_observed([20.0, 19.0, 45.0], 20.0, 0.0) > 60.0
