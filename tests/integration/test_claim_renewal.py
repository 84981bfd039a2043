"""Claims are renewed only when due (core/lease.renewal_due), against real bare remotes.

Every push that lands on a claim ref is counted on the remote's side, by a reference-transaction
hook; time is the fake clocks of each host; every verdict on the remote is read with git plumbing.
"""

from __future__ import annotations

import json
import shutil

import pytest

from agentmesh.agent.claim_task import claim_task
from agentmesh.core.errors import NotHolder
from agentmesh.core.lease import ClaimPush, parse_claim
from agentmesh.refs.heartbeat import Heartbeat, Keeper
from tests.support import (
    FakeClock,
    agent_forge,
    agent_mesh,
    demo_body,
    git,
    local_forge_remote,
    make_remote,
    make_store,
    short_lease_policy,
)

LEASE, RENEW, GRACE = 60, 20, 15  # short_lease_policy renews every 20 s
POLICY = f"lease: {{seconds: {LEASE}, renew_seconds: {RENEW}, grace_seconds: {GRACE}}}\n"
ZERO = "0" * 40

# Appends `<old> <new> <ref>` for every claim ref update the remote commits, whoever made it.
CLAIM_LOG_HOOK = """#!/bin/sh
[ "$1" = committed ] || { cat >/dev/null; exit 0; }
while read -r old new ref; do
  case "$ref" in refs/heads/claim/*) echo "$old $new $ref" >> "$(dirname "$0")/../claim-updates.log";; esac
done
"""


class ClaimLog:
    """The claim ref updates the remote committed, read and cleared by the test."""

    def __init__(self, remote):
        self.remote = remote
        hook = remote / "hooks" / "reference-transaction"
        hook.write_text(CLAIM_LOG_HOOK)
        hook.chmod(0o755)
        self.path = remote / "claim-updates.log"

    def take(self) -> list[tuple[str, str, str]]:
        lines = self.path.read_text().splitlines() if self.path.exists() else []
        self.path.unlink(missing_ok=True)
        return [tuple(line.split()) for line in lines]


def claim_at(remote, issue: int) -> str | None:
    found = git("for-each-ref", "--format=%(objectname)", f"refs/heads/claim/{issue}", cwd=remote)
    return found or None


def renewal_of(remote, sha: str) -> int:
    return parse_claim(git("cat-file", "commit", sha, cwd=remote).split("\n\n", 1)[1]).renewal


def test_a_claim_in_review_is_renewed_by_claim_task_only_when_due(tmp_path):
    """(a) a tick soon after the last push of the claim pushes nothing for it; (b) the first tick after
    renew_seconds renews it, once; (e) a host that lost its state dir renews at its next tick, and so
    does one whose record names another sha."""
    remote = local_forge_remote(tmp_path / "remote.git", POLICY)
    log = ClaimLog(remote)
    clock = FakeClock()
    human = agent_forge(agent_mesh(remote, tmp_path / "hosts", "human"))
    n = human.create_issue("Add the hello doc", demo_body("docs/hello.md", "hello\n"), ["task"]).number

    def tick() -> list[str]:
        mesh = agent_mesh(remote, tmp_path / "hosts", "alice", clock=clock)
        return [str(e.event) for e in claim_task(mesh, agent_forge(mesh), env={"PATH": "/usr/bin:/bin"}).events]

    assert "pr-opened" in tick()
    ref = f"refs/heads/claim/{n}"
    pushed = claim_at(remote, n)
    [(_, acquired, _), fenced] = log.take()  # the claim, then the fenced push with the work branch
    assert fenced == (acquired, pushed, ref)

    clock.advance(RENEW - 1)  # (a) not due: the claim is not touched
    assert tick() == ["in-review", "idle"]
    assert log.take() == [] and claim_at(remote, n) == pushed

    clock.advance(1)  # (b) due: one renewal, pinned to the claim it replaces
    assert tick() == ["in-review", "idle"]
    [(old, new, where)] = log.take()
    assert (old, where) == (pushed, ref) and claim_at(remote, n) == new
    assert renewal_of(remote, new) == renewal_of(remote, pushed) + 1
    assert git("rev-parse", f"{new}^", cwd=remote) == git("rev-parse", "main", cwd=remote)
    clock.advance(RENEW / 2)
    assert tick() == ["in-review", "idle"] and log.take() == []

    shutil.rmtree(tmp_path / "hosts" / "alice")  # (e) the record is lost with the state dir: renew
    assert "in-review" in tick()
    [(old, renewed, _)] = log.take()
    assert old == new and claim_at(remote, n) == renewed
    assert tick() == ["in-review", "idle"] and log.take() == []  # and recorded again

    # a run killed between a renewal's push and its record: the fresh record names the sha before
    record = agent_mesh(remote, tmp_path / "hosts", "alice").state.claim_pushes / f"{n}.json"
    now = clock()
    record.write_text(json.dumps(ClaimPush(new, now.wall, now.mono, now.boot_id).to_json()))
    assert tick() == ["in-review", "idle"]
    [(old, latest, _)] = log.take()
    assert old == renewed and claim_at(remote, n) == latest


def test_the_keeper_and_the_heartbeat_renew_by_the_record_not_by_their_own_start(tmp_path):
    """A keeper whose claim was just renewed elsewhere pushes nothing at its own interval; a heartbeat
    for a claim last pushed long ago renews at its first poll, not a renew interval later."""
    remote = make_remote(tmp_path / "remote.git")
    log = ClaimLog(remote)
    clock = FakeClock()
    store = make_store(str(remote), tmp_path, "a", clock=clock, policy=short_lease_policy(LEASE))
    review, work = store.acquire(1).sha, store.acquire(2).sha
    log.take()
    now = [0.0]
    keeper = Keeper(store, renew_seconds=RENEW, now=lambda: now[0])
    keeper.keep(1, review)
    clock.advance(RENEW - 1)
    beat = Heartbeat(store, 2, work, renew_seconds=RENEW, lease_seconds=LEASE, now=lambda: now[0], keeper=keeper)
    review = store.renew_if_due(1, review, renew_seconds=0)  # a claim-task tick renews claim 1 now
    keeper.keep(1, review)
    log.take()
    now[0] = 5.0
    clock.advance(5)  # claim 2: pushed RENEW + 4 s ago, due; claim 1: 5 s ago
    assert beat.beat() is None and beat.renewals == 1
    assert [ref for _, _, ref in log.take()] == ["refs/heads/claim/2"]
    now[0] = float(RENEW)  # the keeper's own interval since it started: claim 1 is still not due
    clock.advance(RENEW - 5 - 1)
    assert beat.beat() is None and log.take() == [] and claim_at(remote, 1) == review
    now[0] += 5
    clock.advance(1)
    assert beat.beat() is None
    assert [ref for _, _, ref in log.take()] == ["refs/heads/claim/1"] and keeper.claims[1] == claim_at(remote, 1)


def test_an_agent_stopped_past_lease_and_grace_is_reaped_and_cannot_write_when_resumed(tmp_path):
    """(c) SIGSTOP, by the clocks: the holder makes no call while every clock moves past lease + grace.
    A sibling reaps, the holder resumes: its first heartbeat finds the claim lost, it does not bring
    the claim back, and its fenced push is refused once a third agent holds the claim."""
    remote = make_remote(tmp_path / "remote.git")
    log = ClaimLog(remote)
    policy = short_lease_policy(LEASE, GRACE)
    clocks = {name: FakeClock(wall=1_800_000_000.0 + skew) for name, skew in (("a", 0), ("b", 400), ("c", -900))}
    a, b, c = (make_store(str(remote), tmp_path, name, clock=clocks[name], policy=policy) for name in "abc")
    held = a.acquire(7).sha
    now = [0.0]
    beat = Heartbeat(a, 7, held, renew_seconds=RENEW, lease_seconds=LEASE, now=lambda: now[0])
    assert c.reap() == []  # c first sees the claim
    for clock in clocks.values():  # stopped: no beat for lease + grace + 1 s
        clock.advance(LEASE + GRACE + 1)
    [reaped] = c.reap()
    assert reaped.reaped and claim_at(remote, 7) is None
    log.take()

    now[0] = float(LEASE + GRACE + 1)  # resumed
    lost = beat.beat()
    assert lost is not None and "not held by anyone" in lost
    with pytest.raises(NotHolder):
        a.renew_if_due(7, held, renew_seconds=RENEW)
    assert claim_at(remote, 7) is None and log.take() == []  # not resurrected

    taken = b.acquire(7).sha
    work = a.cache.commit_tree(a.cache.empty_tree(), [], "late work")
    with pytest.raises(NotHolder):
        a.fenced_push(7, held, "refs/heads/a/7-late", work, None)
    assert [(old, new) for old, new, _ in log.take()] == [(ZERO, taken)]  # b's claim, nothing of a's
    assert claim_at(remote, 7) == taken
    assert git("for-each-ref", "refs/heads/a/", cwd=remote) == ""


def test_clock_skew_never_makes_a_claim_that_is_not_due_look_expired(tmp_path):
    """(d) The holder renews by its clock, hours off the observer's, and its wall clock steps back an hour;
    the observer's wall clock steps forward ten leases. The observer judges only how long it has seen the
    sha unchanged: through three leases of ticks every half renew interval the claim never looks
    expired, and the holder pushes only every other tick (and at once after its clock stepped back)."""
    remote = make_remote(tmp_path / "remote.git")
    log = ClaimLog(remote)
    policy = short_lease_policy(LEASE, 0)
    holder_clock, observer_clock = FakeClock(wall=1_800_007_200.0), FakeClock(wall=1_799_996_400.0, mono=50.0)
    holder = make_store(str(remote), tmp_path, "holder", clock=holder_clock, policy=policy)
    observer = make_store(str(remote), tmp_path, "observer", clock=observer_clock, policy=policy)
    sha = holder.acquire(3).sha
    log.take()
    renewed_at = []
    for step in range(1, 3 * LEASE * 2 // RENEW + 1):  # a tick every half renew interval, for three leases
        holder_clock.advance(RENEW / 2)
        observer_clock.advance(RENEW / 2)
        if step == 7:
            holder_clock.wall -= 3600
        if step == 9:
            observer_clock.wall += 10 * LEASE
        before, sha = sha, holder.renew_if_due(3, sha, renew_seconds=RENEW)
        if sha != before:
            renewed_at.append(step)
        [view] = observer.list()
        assert view.sha == sha and not view.expired, (step, view.observed_seconds)
        assert view.observed_seconds <= RENEW and observer.reap_due() == []
    assert renewed_at == [2, 4, 6, 7, 9, 11, 13, 15, 17]  # due every other tick; at once when the clock went back
    pushes = log.take()
    assert len(pushes) == len(renewed_at) and pushes[-1][1] == claim_at(remote, 3) == sha
