"""Hypothesis drives acquire/renew/release/reap sequences of three agents against one real bare repo.

The model is docs/design/protocol.md itself: at most one holder per issue, only the
holder can renew or release, and an observer reaps another agent's claim only
after seeing the same sha for longer than lease + grace on its own clock.
"""

import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from agentmesh.core.errors import NotHolder
from tests.support import FakeClock, make_remote, make_store, remote_refs, short_lease_policy

AGENTS = ("a", "b", "c")
ISSUES = (1, 2)
LEASE, GRACE = 60, 10
agents = st.sampled_from(AGENTS)
issues = st.sampled_from(ISSUES)


class ClaimMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="claims-sm-"))
        self.remote = make_remote(self.tmp / "remote.git")
        self.clock = FakeClock()
        policy = short_lease_policy(LEASE, GRACE)
        self.stores = {a: make_store(str(self.remote), self.tmp, a, policy=policy, clock=self.clock) for a in AGENTS}
        self.holders: dict[int, tuple[str, str]] = {}  # issue -> (agent, sha)
        self.seen: dict[str, dict[int, tuple[str, float]]] = {a: {} for a in AGENTS}  # observer -> first sightings

    def teardown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    @rule(agent=agents, issue=issues)
    def acquire(self, agent, issue):
        result = self.stores[agent].acquire(issue)
        if issue not in self.holders:
            assert result.won and not result.recovered
            self.holders[issue] = (agent, result.sha)
        elif self.holders[issue][0] == agent:
            assert result.won and result.recovered and result.sha == self.holders[issue][1]
        else:
            assert not result.won and result.holder.agent == self.holders[issue][0]

    def _holder_only(self, agent, issue, operation):
        """Run renew/release: the holder succeeds; anyone else gets NotHolder and changes nothing."""
        if self.holders.get(issue, ("",))[0] == agent:
            return operation(issue)
        try:
            operation(issue)
        except NotHolder:
            return None
        raise AssertionError(f"{agent} changed a claim it does not hold")

    @rule(agent=agents, issue=issues)
    def renew(self, agent, issue):
        claim = self._holder_only(agent, issue, self.stores[agent].renew)
        if claim is not None:
            self.holders[issue] = (agent, claim.sha)

    @rule(agent=agents, issue=issues)
    def release(self, agent, issue):
        if self._holder_only(agent, issue, self.stores[agent].release) is not None:
            del self.holders[issue]

    @rule(agent=agents)
    def reap(self, agent):
        now = self.clock.wall
        sightings = self.seen[agent]
        expected = set()
        for issue, (holder, sha) in self.holders.items():
            if sightings.get(issue, ("",))[0] != sha:
                sightings[issue] = (sha, now)
            elif holder != agent and now - sightings[issue][1] > LEASE + GRACE:
                expected.add(issue)
        for gone in set(sightings) - set(self.holders):
            del sightings[gone]
        reaped = {r.issue for r in self.stores[agent].reap() if r.reaped}
        assert reaped == expected
        for issue in reaped:
            del self.holders[issue]
            del sightings[issue]

    @rule(seconds=st.sampled_from([1, 5, 30, 62, 71, 200]))
    def wait(self, seconds):
        self.clock.advance(seconds)

    @invariant()
    def remote_matches_model(self):
        on_remote = remote_refs(self.remote, "refs/heads/claim/")
        assert on_remote == {f"refs/heads/claim/{i}": sha for i, (_, sha) in self.holders.items()}


ClaimMachine.TestCase.settings = settings(
    max_examples=25, stateful_step_count=20, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TestClaimProtocol = ClaimMachine.TestCase
