"""The claim protocol against real bare remotes (docs/design/protocol.md, "Operations")."""

import json
import signal
import time

import pytest

from agentmesh.core.errors import NotHolder, UserError
from agentmesh.core.lease import Claim, claim_message, parse_claim
from agentmesh.git.remote import RefUpdate
from tests.support import FakeClock, git, git_daemon, git_http, make_remote, make_store, remote_refs, short_lease_policy
from tests.support.cli import start_cli

REF = "refs/heads/claim/42"


@pytest.fixture
def remote(tmp_path):
    return make_remote(tmp_path / "remote.git")


def claims_on(remote):
    return remote_refs(remote, "refs/heads/claim/")


def test_acquire_wins_then_others_see_the_holder(remote, tmp_path):
    a = make_store(str(remote), tmp_path, "host1-a")
    b = make_store(str(remote), tmp_path, "host2-b")
    won = a.acquire(42, work_branch="host1-a/42-fix-login")
    assert won.won and not won.recovered
    assert claims_on(remote) == {REF: won.sha}
    lost = b.acquire(42)
    assert not lost.won and lost.sha == won.sha
    assert lost.holder.agent == "host1-a" and lost.holder.work_branch == "host1-a/42-fix-login"
    assert claims_on(remote) == {REF: won.sha}


def test_claim_commit_shape(remote, tmp_path):
    a = make_store(str(remote), tmp_path, "host1-a")
    sha = a.acquire(42).sha
    main = git("rev-parse", "main", cwd=remote)
    assert git("rev-parse", f"{sha}^", cwd=remote) == main
    assert git("rev-parse", f"{sha}^{{tree}}", cwd=remote) == git("rev-parse", "main^{tree}", cwd=remote)
    message = git("log", "-1", "--format=%B", sha, cwd=remote)
    assert message.splitlines()[0] == "claim: #42 by host1-a [skip ci]"
    claim = parse_claim(message)
    assert (claim.issue, claim.agent, claim.host, claim.renewal, claim.attempt) == (42, "host1-a", "host-host1-a", 0, 1)
    renewed = a.renew(42)
    assert git("rev-parse", f"{renewed.sha}^", cwd=remote) == main  # never chained to the old claim


def test_claim_commits_are_unique(remote, tmp_path):
    """Identical pushes both 'succeed', so two attempts must never build the same commit."""
    a = make_store(str(remote), tmp_path, "host1-a")
    shas = {a._commit(Claim(42, "host1-a", "h", a.nonce(), 1800)) for _ in range(50)}
    assert len(shas) == 50


def test_acquire_again_by_the_holder_recovers(remote, tmp_path):
    a = make_store(str(remote), tmp_path, "host1-a")
    first = a.acquire(42)
    again = make_store(str(remote), tmp_path / "rerun", "host1-a").acquire(42)
    assert again.won and again.recovered and again.sha == first.sha


def test_acquire_on_empty_remote(tmp_path):
    remote = tmp_path / "empty.git"
    git("init", "--bare", "--quiet", str(remote))
    result = make_store(str(remote), tmp_path, "a").acquire(1)
    assert result.won and claims_on(remote) == {"refs/heads/claim/1": result.sha}


def test_renew_and_release_by_holder(remote, tmp_path):
    a = make_store(str(remote), tmp_path, "host1-a")
    first = a.acquire(42)
    renewed = a.renew(42, first.sha)
    assert renewed.renewal == 1 and renewed.sha != first.sha
    assert claims_on(remote) == {REF: renewed.sha}
    second = a.renew(42)
    assert second.renewal == 2
    assert a.release(42) == second.sha
    assert claims_on(remote) == {}


def test_non_holder_changes_nothing(remote, tmp_path):
    a = make_store(str(remote), tmp_path, "host1-a")
    b = make_store(str(remote), tmp_path, "host2-b")
    sha = a.acquire(42).sha
    with pytest.raises(NotHolder, match="held by host1-a"):
        b.renew(42)
    with pytest.raises(NotHolder, match="held by host1-a"):
        b.release(42)
    with pytest.raises(NotHolder, match="moved"):
        a.release(42, expected="f" * 40)
    with pytest.raises(NotHolder, match="not held by anyone"):
        b.release(43)
    assert claims_on(remote) == {REF: sha}


def test_fenced_push_publishes_work_with_the_claim(remote, tmp_path):
    a = make_store(str(remote), tmp_path, "host1-a")
    held = a.acquire(42)
    work = a.cache.commit_tree(a.cache.empty_tree(), [], "work")
    claim = a.fenced_push(42, held.sha, "refs/heads/host1-a/42-x", work, None)
    refs = remote_refs(remote, "refs/heads/")
    assert refs[REF] == claim.sha != held.sha and refs["refs/heads/host1-a/42-x"] == work
    more = a.cache.commit_tree(a.cache.empty_tree(), [work], "more work")
    with pytest.raises(UserError, match="changed on the remote"):  # work ref is not where we left it
        a.fenced_push(42, claim.sha, "refs/heads/host1-a/42-x", more, "e" * 40)
    assert remote_refs(remote, "refs/heads/") == {**refs, REF: claim.sha}
    assert a.fenced_push(42, claim.sha, "refs/heads/host1-a/42-x", more, work).renewal == 2


def test_a_claim_carries_updates_atomically_or_lands_alone(remote, tmp_path):
    """What a claim carries (the local forge's `working` stage) lands with it; a stale one never costs
    the claim, and never lands without it."""
    a, b = make_store(str(remote), tmp_path, "host1-a"), make_store(str(remote), tmp_path, "host2-b")
    note = a.cache.commit_tree(a.cache.empty_tree(), [], "carried")
    won = a.acquire(42, carry=[RefUpdate("refs/heads/note", note, None)])
    assert won.won and won.carried and remote_refs(remote, "refs/heads/")["refs/heads/note"] == note
    later = a.cache.commit_tree(a.cache.empty_tree(), [note], "stale")
    alone = a.acquire(43, carry=[RefUpdate("refs/heads/note", later, "e" * 40)])  # pinned to a value it lacks
    assert alone.won and not alone.carried
    assert remote_refs(remote, "refs/heads/")["refs/heads/note"] == note and f"{REF[:-2]}43" in claims_on(remote)
    lost = b.acquire(42, carry=[RefUpdate("refs/heads/other", note, None)])
    assert not lost.won and not lost.carried and "refs/heads/other" not in remote_refs(remote, "refs/heads/")


def test_release_publishing_moves_both_refs_or_neither(remote, tmp_path):
    """A preempted job's checkpoint and the release of its claim land in one atomic push."""
    a = make_store(str(remote), tmp_path, "host1-a")
    held = a.acquire(42)
    work = a.cache.commit_tree(a.cache.empty_tree(), [], "checkpoint")
    before = remote_refs(remote, "refs/heads/")
    with pytest.raises(UserError, match="changed on the remote"):  # the work branch moved: the claim stays
        a.release_publishing(42, held.sha, "refs/heads/host1-a/42-x", work, "e" * 40)
    assert remote_refs(remote, "refs/heads/") == before
    with pytest.raises(NotHolder):  # not at this claim: nothing lands
        a.release_publishing(42, "d" * 40, "refs/heads/host1-a/42-x", work, None)
    assert remote_refs(remote, "refs/heads/") == before
    a.release_publishing(42, held.sha, "refs/heads/host1-a/42-x", work, None)
    refs = remote_refs(remote, "refs/heads/")
    assert REF not in refs and refs["refs/heads/host1-a/42-x"] == work


def _reap_setup(remote, tmp_path, grace=30):
    clock = FakeClock()
    policy = short_lease_policy(60, grace)
    holder = make_store(str(remote), tmp_path, "holder", policy=policy)
    reaper = make_store(str(remote), tmp_path, "reaper", policy=policy, clock=clock)
    return clock, holder, reaper


def test_reaped_holder_can_neither_renew_nor_publish(remote, tmp_path):
    clock, holder, reaper = _reap_setup(remote, tmp_path)
    held = holder.acquire(42)
    assert reaper.reap() == []  # first sighting
    clock.advance(91)
    reaped = reaper.reap()
    assert [(r.issue, r.holder, r.reaped) for r in reaped] == [(42, "holder", True)]
    assert claims_on(remote) == {}
    with pytest.raises(NotHolder):
        holder.renew(42, held.sha)
    work = holder.cache.commit_tree(holder.cache.empty_tree(), [], "late work")
    with pytest.raises(NotHolder):
        holder.fenced_push(42, held.sha, "refs/heads/holder/42-x", work, None)
    # a taker claims it meanwhile; the paused ex-holder's raw fenced push still fails atomically
    taken = reaper.acquire(42)
    from agentmesh.git.remote import RefUpdate, push
    result = push(holder.git, holder.cache.path, holder.url,
                  [RefUpdate(REF, work, held.sha), RefUpdate("refs/heads/holder/42-x", work, None)], atomic=True)
    assert not result.ok
    assert remote_refs(remote, "refs/heads/") == {"refs/heads/main": git("rev-parse", "main", cwd=remote),
                                                 REF: taken.sha}


@pytest.mark.parametrize("skew_days", [-1, 1])
def test_reap_only_after_lease_plus_grace_by_observer_clock(remote, tmp_path, skew_days):
    """The holder's commit timestamps (a day off) play no part; only observed time does."""
    clock, _, reaper = _reap_setup(remote, tmp_path, grace=30)
    message = claim_message(Claim(42, "holder", "h1", "0123456789abcdef", 60))
    date = f"@{int(time.time()) + skew_days * 86400} +0000"
    sha = git("commit-tree", "main^{tree}", "-p", "main", cwd=remote, input=message,
              env={"GIT_COMMITTER_DATE": date, "GIT_AUTHOR_DATE": date})
    git("update-ref", REF, sha, cwd=remote)
    assert reaper.reap(dry_run=True) == []
    clock.advance(90)
    assert reaper.reap() == [] and claims_on(remote) == {REF: sha}
    clock.advance(1)
    assert [r.note for r in reaper.reap(dry_run=True)] == ["would reap"]
    assert claims_on(remote) == {REF: sha}
    assert [r.reaped for r in reaper.reap()] == [True] and claims_on(remote) == {}


def test_renewal_resets_the_reapers_observation(remote, tmp_path):
    clock, holder, reaper = _reap_setup(remote, tmp_path)
    holder.acquire(42)
    reaper.list()
    clock.advance(80)
    holder.renew(42)
    assert reaper.reap() == []
    clock.advance(80)
    assert reaper.reap() == []  # only 80 s at the renewed sha
    clock.advance(11)
    assert len(reaper.reap()) == 1


def test_reaper_never_reaps_its_own_claims(remote, tmp_path):
    clock = FakeClock()
    me = make_store(str(remote), tmp_path, "me", policy=short_lease_policy(), clock=clock)
    me.acquire(42)
    me.list()
    clock.advance(10_000)
    assert me.reap() == [] and REF in claims_on(remote)
    assert [v.issue for v in me.mine()] == [42] and me.mine()[0].expired


def test_list_reports_observed_age(remote, tmp_path):
    clock = FakeClock()
    a = make_store(str(remote), tmp_path, "a", clock=clock)
    a.acquire(7, work_branch="a/7-x")
    make_store(str(remote), tmp_path, "b").acquire(8)
    git("update-ref", "refs/heads/claim/9", git("rev-parse", "main", cwd=remote), cwd=remote)  # not a claim commit
    first = {v.issue: v for v in a.list()}
    clock.advance(100)
    views = {v.issue: v.to_json() for v in a.list()}
    assert set(views) == {7, 8, 9}
    assert views[7]["agent"] == "a" and views[7]["work_branch"] == "a/7-x" and views[7]["observed_seconds"] == 100
    assert views[9]["agent"] is None and first[9].claim is None
    assert set(views[8]) == {"issue", "agent", "host", "sha", "renewal", "lease_seconds", "work_branch",
                             "observed_seconds", "expired", "foreign"}


def test_an_unchanged_listing_does_not_rewrite_the_observations(remote, tmp_path):
    """A listing that only moves the last wall time leaves the file as it is (it was rewritten on every
    listing: ~70 files created per issue); past the slack, or on any change, it is written."""
    clock = FakeClock()
    a = make_store(str(remote), tmp_path, "a", clock=clock)
    b = make_store(str(remote), tmp_path, "b", clock=clock)
    b.acquire(8)
    a.list()
    path = a.state.observations_path
    written = path.stat().st_ino
    clock.advance(30)
    assert a.list()[0].observed_seconds == 30
    assert path.stat().st_ino == written
    clock.advance(31)
    a.list()
    assert path.stat().st_ino != written
    written = path.stat().st_ino
    b.acquire(9)
    a.list()
    assert path.stat().st_ino != written and "refs/heads/claim/9" in a.state.load_observations()


def test_custom_claim_prefix(remote, tmp_path):
    from agentmesh.host.config import parse_mesh_policy

    policy = parse_mesh_policy("claims: {ref_prefix: refs/agentmesh/claims/}")
    a = make_store(str(remote), tmp_path, "a", policy=policy)
    assert a.acquire(5).won and not make_store(str(remote), tmp_path, "b", policy=policy).acquire(5).won
    assert "refs/agentmesh/claims/5" in remote_refs(remote) and [v.issue for v in a.list()] == [5]


@pytest.mark.parametrize("transport", ["git", "http"])
def test_protocol_over_network_transports(tmp_path, transport):
    remote = make_remote(tmp_path / "srv" / "remote.git")
    server = git_daemon(tmp_path / "srv") if transport == "git" else git_http(tmp_path / "srv")
    with server as served:
        base = served if transport == "git" else served[0]
        url = f"{base}/remote.git"
        a, b = make_store(url, tmp_path, "a"), make_store(url, tmp_path, "b")
        held = a.acquire(42)
        assert held.won and not b.acquire(42).won
        renewed = a.renew(42)
        assert [v.sha for v in b.list()] == [renewed.sha]
        a.release(42)
    assert claims_on(remote) == {}


def test_push_killed_mid_flight_is_found_by_the_rerun(remote, tmp_path):
    """A killed client's push can still land; the rerun must find its own claim first."""
    hook = remote / "hooks" / "post-receive"
    hook.write_text("#!/bin/sh\nsleep 3\n")
    hook.chmod(0o755)
    a1_claims, home = ["--remote", str(remote), "--agent", "a1", "claims"], {"HOME": str(tmp_path)}
    proc = start_cli(*a1_claims, "acquire", "42", "--json", cwd=tmp_path, env=home)
    deadline = time.monotonic() + 30
    while REF not in claims_on(remote):
        assert time.monotonic() < deadline and proc.poll() is None, "claim never landed"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)  # the client dies before it reads the outcome
    proc.communicate()
    hook.unlink()
    landed = claims_on(remote)[REF]
    mine = start_cli(*a1_claims, "list", "--mine", "--json", cwd=tmp_path, env=home)
    out, err = mine.communicate(timeout=60)
    assert mine.returncode == 0, err
    assert [(c["issue"], c["agent"], c["sha"]) for c in json.loads(out)] == [(42, "a1", landed)]
    rerun = start_cli(*a1_claims, "acquire", "42", "--json", cwd=tmp_path, env=home)
    out, err = rerun.communicate(timeout=60)
    assert rerun.returncode == 0, err
    assert json.loads(out) == {"issue": 42, "won": True, "holder": "a1", "sha": landed, "work_branch": None,
                               "recovered": True}
