"""The pure claim core: messages, trailers, leases, observations and reap decisions."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentmesh.core.lease import (
    Claim,
    Clock,
    claim_message,
    effective_lease,
    is_expired,
    issue_of_ref,
    observe,
    observed_seconds,
    parse_claim,
    reap_decisions,
    update_observations,
    worth_saving,
)

SHA_A, SHA_B = "a" * 40, "b" * 40
CLAIM = Claim(42, "host1-a", "host1", "9b0f3c1e2d4a5b6c", 1800, 0, 1, "host1-a/42-fix-login-timeout")


def test_message_matches_protocol():
    assert claim_message(CLAIM) == (
        "claim: #42 by host1-a [skip ci]\n\n"
        "Agentmesh-Issue: 42\nAgentmesh-Agent: host1-a\nAgentmesh-Host: host1\n"
        "Agentmesh-Nonce: 9b0f3c1e2d4a5b6c\nAgentmesh-Lease-Seconds: 1800\nAgentmesh-Renewal: 0\n"
        "Agentmesh-Attempt: 1\nAgentmesh-Work-Branch: host1-a/42-fix-login-timeout\n"
    )


def test_message_round_trips():
    assert parse_claim(claim_message(CLAIM), SHA_A) == Claim(**{**CLAIM.__dict__, "sha": SHA_A})


def test_renewed_claim_is_a_new_unique_claim():
    renewed = CLAIM.renewed("ffffffffffffffff")
    assert renewed.renewal == 1 and renewed.nonce != CLAIM.nonce and renewed.issue == 42
    assert claim_message(renewed) != claim_message(CLAIM)


@pytest.mark.parametrize("edit", [
    lambda m: m.replace("Agentmesh-Agent: host1-a", "Agentmesh-Agent: $(evil)"),
    lambda m: m.replace("Agentmesh-Issue: 42", "Agentmesh-Issue: -1"),
    lambda m: m.replace("Agentmesh-Issue: 42", "Agentmesh-Issue: 99999999999999"),
    lambda m: m.replace("Agentmesh-Nonce: 9b0f3c1e2d4a5b6c", "Agentmesh-Nonce: zz"),
    lambda m: m.replace("Agentmesh-Lease-Seconds: 1800", "Agentmesh-Lease-Seconds: 1e9"),
    lambda m: m.replace("Agentmesh-Host: host1", "Agentmesh-Host: ../x"),
    lambda m: "just some commit\n",
])
def test_invalid_claims_are_rejected(edit):
    assert parse_claim(edit(claim_message(CLAIM))) is None


def test_hostile_work_branch_is_dropped_not_trusted():
    message = claim_message(CLAIM).replace("host1-a/42-fix-login-timeout", "main; rm -rf /")
    assert parse_claim(message).work_branch is None


def test_first_trailer_wins():
    message = claim_message(CLAIM) + "Agentmesh-Agent: someone-else\n"
    assert parse_claim(message).agent == "host1-a"


@given(st.text(max_size=2000))
def test_parse_never_crashes(text):
    parse_claim(text)


def test_effective_lease():
    assert effective_lease(None, 1800, 86400) == 1800
    assert effective_lease(60, 1800, 86400) == 1800  # may not ask for less than policy
    assert effective_lease(7200, 1800, 86400) == 7200
    assert effective_lease(10**9, 1800, 86400) == 86400  # nor hold forever


def test_issue_of_ref():
    assert issue_of_ref("refs/heads/claim/42", "refs/heads/claim/") == 42
    for ref in ("refs/heads/claim/042", "refs/heads/claim/x", "refs/heads/claim/4/2", "refs/heads/main"):
        assert issue_of_ref(ref, "refs/heads/claim/") is None


# --- observations ---


def clock(wall, mono=None, boot="boot-1"):
    return Clock(wall, wall - 1000 if mono is None else mono, boot)


def test_observation_counts_while_sha_is_unchanged():
    obs = observe(None, SHA_A, clock(5000))
    obs = observe(obs, SHA_A, clock(5100))
    assert observed_seconds(obs, clock(5200)) == 200


def test_observation_resets_when_sha_changes():
    obs = observe(observe(None, SHA_A, clock(5000)), SHA_B, clock(9000))
    assert obs.sha == SHA_B and observed_seconds(obs, clock(9000)) == 0


def test_observation_resets_on_reboot():
    obs = observe(None, SHA_A, clock(5000))
    after_reboot = clock(9000, mono=5, boot="boot-2")
    assert observed_seconds(obs, after_reboot) == 0
    assert observe(obs, SHA_A, after_reboot).boot_id == "boot-2"
    assert observed_seconds(observe(obs, SHA_A, after_reboot), after_reboot) == 0


def test_observation_resets_when_wall_clock_goes_backwards():
    obs = observe(observe(None, SHA_A, clock(5000)), SHA_A, clock(6000))
    back = clock(5500, mono=5100)
    assert observed_seconds(obs, back) == 0
    assert observe(obs, SHA_A, back).first_wall == 5500


def test_wall_clock_jump_forward_cannot_expire_early():
    obs = observe(None, SHA_A, Clock(5000, 100, "b"))
    jumped = Clock(5000 + 86400, 160, "b")  # the wall clock leapt a day; only 60 s really passed
    assert observed_seconds(obs, jumped) == 60
    assert not is_expired(obs, jumped, 1800, 300)


def test_expiry_needs_more_than_lease_plus_grace():
    obs = observe(None, SHA_A, clock(0))
    assert not is_expired(obs, clock(2100), 1800, 300)
    assert is_expired(obs, clock(2100.5), 1800, 300)


def test_update_observations_forgets_released_refs():
    prev = update_observations({}, {"refs/heads/claim/1": SHA_A, "refs/heads/claim/2": SHA_B}, clock(0))
    now = update_observations(prev, {"refs/heads/claim/2": SHA_B}, clock(10))
    assert list(now) == ["refs/heads/claim/2"] and now["refs/heads/claim/2"].first_wall == 0


def test_observations_are_saved_when_they_say_more_than_the_file():
    prefix = "refs/heads/claim/"
    stored = update_observations({}, {f"{prefix}1": SHA_A}, clock(0), prefix)
    assert not worth_saving(stored, update_observations(stored, {f"{prefix}1": SHA_A}, clock(30), prefix))
    assert worth_saving(stored, update_observations(stored, {f"{prefix}1": SHA_A}, clock(61), prefix))  # slack
    assert worth_saving(stored, update_observations(stored, {f"{prefix}1": SHA_B}, clock(1), prefix))  # restart
    assert worth_saving(stored, update_observations(stored, {f"{prefix}1": SHA_A, f"{prefix}2": SHA_A}, clock(1),
                                                    prefix))  # a new ref
    assert worth_saving(stored, update_observations(stored, {}, clock(1), prefix))  # a released one
    later = update_observations(stored, {f"{prefix}1": SHA_A}, clock(50), prefix)
    assert worth_saving(later, update_observations(later, {f"{prefix}1": SHA_A}, clock(40), prefix))  # went back


@given(st.lists(st.floats(-120, 120), min_size=1, max_size=30))
def test_a_skipped_save_never_counts_past_the_boot_clock(steps):
    """Listings with the wall clock stepping by each step, forward or back, and a boot clock that only runs
    forward; the file is written only when worth_saving says so. However stale its last wall time, the
    count read from it never exceeds the boot clock's time since the sha was first seen: never early."""
    ref = "refs/heads/claim/1"
    wall, mono = 10_000.0, 500.0
    stored = {ref: observe(None, SHA_A, Clock(wall, mono, "b"))}
    for step in steps:
        wall, mono = wall + step, mono + abs(step)
        now = Clock(wall, mono, "b")
        updated = update_observations(stored, {ref: SHA_A}, now)
        assert observed_seconds(updated[ref], now) <= mono - 500.0
        if worth_saving(stored, updated):
            stored = updated


def test_reap_decisions():
    prefix = "refs/heads/claim/"
    other = Claim(1, "other", "h", "0123456789abcdef", 60)
    mine = Claim(2, "me", "h", "0123456789abcdef", 60)
    long_lease = Claim(3, "other", "h", "0123456789abcdef", 7200)
    claims = [(f"{prefix}1", SHA_A, other), (f"{prefix}2", SHA_A, mine), (f"{prefix}3", SHA_A, long_lease),
              (f"{prefix}4", SHA_A, None), (f"{prefix}5", SHA_B, other)]
    observations = update_observations({}, {ref: sha for ref, sha, _ in claims}, clock(0))
    observations[f"{prefix}5"] = observe(None, SHA_A, clock(0))  # observed at another sha
    decide = lambda t: reap_decisions(claims, observations, clock(t), me="me", prefix=prefix,  # noqa: E731
                                      policy_lease=1800, max_lease=86400, grace=300)
    assert decide(2000) == []
    reaped = decide(2101)
    assert [(d.issue, d.holder) for d in reaped] == [(1, "other"), (4, None)]
    assert [d.issue for d in decide(7501)] == [1, 3, 4]
