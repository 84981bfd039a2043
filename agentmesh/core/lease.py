"""Claim decisions, pure: claim commit messages, lease arithmetic, observations, reaping, and when
a holder renews (claims and presence).

Time is judged only by the observer's own clocks (docs/design/protocol.md,
"Reaping by the observer's own clock"). Nothing here reads a timestamp
written by another host.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from agentmesh.core.pattern import LazyPattern
from agentmesh.core.record import Record, replace
from agentmesh.core.slug import is_agent_name, is_work_branch

TRAILER_PREFIX = "Agentmesh-"
_NONCE = LazyPattern(r"[0-9a-f]{8,64}")
_HOST = LazyPattern(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_TRAILER = LazyPattern(r"(?P<key>Agentmesh-[A-Za-z-]+):[ \t]*(?P<value>.*)")


class Claim(Record):
    """What a claim commit says. `sha` is the fencing token."""

    issue: int
    agent: str
    host: str
    nonce: str
    lease_seconds: int
    renewal: int = 0
    attempt: int = 1
    work_branch: str | None = None
    sha: str | None = None

    def renewed(self, nonce: str) -> Claim:
        return replace(self, nonce=nonce, renewal=self.renewal + 1, sha=None)


def claim_message(claim: Claim) -> str:
    lines = [
        f"claim: #{claim.issue} by {claim.agent} [skip ci]",
        "",
        f"Agentmesh-Issue: {claim.issue}",
        f"Agentmesh-Agent: {claim.agent}",
        f"Agentmesh-Host: {claim.host}",
        f"Agentmesh-Nonce: {claim.nonce}",
        f"Agentmesh-Lease-Seconds: {claim.lease_seconds}",
        f"Agentmesh-Renewal: {claim.renewal}",
        f"Agentmesh-Attempt: {claim.attempt}",
    ]
    if claim.work_branch:
        lines.append(f"Agentmesh-Work-Branch: {claim.work_branch}")
    return "\n".join(lines) + "\n"


def parse_trailers(message: str) -> dict[str, str]:
    """`Agentmesh-*` trailers of a commit message; the first occurrence of a key wins."""
    found: dict[str, str] = {}
    for line in message.splitlines():
        match = _TRAILER.fullmatch(line.strip())
        if match:
            found.setdefault(match["key"][len(TRAILER_PREFIX):].lower(), match["value"].strip())
    return found


def _small_int(text: str | None, default: int | None = None) -> int | None:
    if text is None:
        return default
    if not re.fullmatch(r"[0-9]{1,9}", text):
        return None
    return int(text)


def parse_claim(message: str, sha: str | None = None) -> Claim | None:
    """The claim a commit message describes, or None if it is not a valid claim.

    Claim refs can be written by anyone with push access, so every field is
    validated: a malformed claim is reported as foreign, never trusted.
    """
    t = parse_trailers(message)
    issue = _small_int(t.get("issue"))
    lease = _small_int(t.get("lease-seconds"))
    renewal = _small_int(t.get("renewal"), 0)
    attempt = _small_int(t.get("attempt"), 1)
    agent, host, nonce = t.get("agent", ""), t.get("host", ""), t.get("nonce", "")
    branch = t.get("work-branch") or None
    if issue is None or lease is None or renewal is None or attempt is None or not issue:
        return None
    if not (is_agent_name(agent) and _HOST.fullmatch(host) and _NONCE.fullmatch(nonce)):
        return None
    if branch is not None and not is_work_branch(branch):
        branch = None
    return Claim(issue, agent, host, nonce, lease, renewal, attempt, branch, sha)


def effective_lease(claim_lease: int | None, policy_lease: int, max_lease: int) -> int:
    """The lease this observer grants: the holder may ask for more than policy, up to max."""
    if claim_lease is None:
        return policy_lease
    return min(max(claim_lease, policy_lease), max_lease)


def issue_of_ref(ref: str, prefix: str) -> int | None:
    """42 for `<prefix>42`; None for anything else under the prefix."""
    if not ref.startswith(prefix):
        return None
    rest = ref[len(prefix):]
    if not re.fullmatch(r"[1-9][0-9]{0,9}", rest):
        return None
    return int(rest)


# --- observations -----------------------------------------------------------


class Clock(Record):
    """The observer's clocks at one instant.

    wall: seconds since the epoch. mono: a clock that only moves forward
    within one boot (CLOCK_BOOTTIME). boot_id: changes on every reboot.
    """

    wall: float
    mono: float
    boot_id: str


class Observation(Record):
    """When this host first saw a ref at a given sha, by its own clocks."""

    sha: str
    first_wall: float
    first_mono: float
    boot_id: str
    last_wall: float

    def to_json(self) -> dict:
        return {
            "sha": self.sha,
            "first_wall": self.first_wall,
            "first_mono": self.first_mono,
            "boot_id": self.boot_id,
            "last_wall": self.last_wall,
        }

    @classmethod
    def from_json(cls, data: Mapping) -> Observation:
        return cls(
            str(data["sha"]),
            float(data["first_wall"]),
            float(data["first_mono"]),
            str(data["boot_id"]),
            float(data["last_wall"]),
        )


def observe(previous: Observation | None, sha: str, now: Clock) -> Observation:
    """Record seeing `sha` now. The count restarts when the sha changes, the host
    rebooted, or the wall clock went backwards since the last observation."""
    if (
        previous is None
        or previous.sha != sha
        or previous.boot_id != now.boot_id
        or now.wall < previous.last_wall
        or now.mono < previous.first_mono
    ):
        return Observation(sha, now.wall, now.mono, now.boot_id, now.wall)
    return replace(previous, last_wall=now.wall)


# How stale the stored last wall time may grow while nothing else changes. Refreshing it on every
# listing rewrote the observations file ~70 times per issue; a backwards jump smaller than this goes
# unseen, and the elapsed time, the smaller of the wall and boot-clock differences, still never runs ahead.
LAST_WALL_SLACK_SECONDS = 60.0


def worth_saving(stored: Mapping[str, Observation], updated: Mapping[str, Observation],
                 slack: float = LAST_WALL_SLACK_SECONDS) -> bool:
    """Whether `updated` says more than the `stored` file: a ref seen or forgotten, a count restarted, or
    a last wall time moved back or more than `slack` seconds on (only `last_wall` moves between listings)."""
    if stored.keys() != updated.keys():
        return True
    for ref, new in updated.items():
        old = stored[ref]
        if replace(old, last_wall=new.last_wall) != new:
            return True
        if not 0 <= new.last_wall - old.last_wall <= slack:
            return True
    return False


def observed_seconds(obs: Observation, now: Clock) -> float:
    """How long this sha has been seen, by the slower of both clocks.

    Taking the minimum means a wall clock that jumps forward cannot expire a
    lease early; the monotonic clock vouches for the elapsed time too.
    """
    if obs.boot_id != now.boot_id or now.wall < obs.last_wall:
        return 0.0
    return max(0.0, min(now.wall - obs.first_wall, now.mono - obs.first_mono))


def is_expired(obs: Observation, now: Clock, lease_seconds: int, grace_seconds: int) -> bool:
    return observed_seconds(obs, now) > lease_seconds + grace_seconds


def update_observations(
    previous: Mapping[str, Observation], current: Mapping[str, str], now: Clock, prefix: str = ""
) -> dict[str, Observation]:
    """Observations after a complete listing `current` (ref -> sha) of the refs under `prefix`.

    Refs under `prefix` absent from the listing are forgotten, so only call
    this with a listing that succeeded; refs outside `prefix` are kept as they were.
    """
    kept = {ref: obs for ref, obs in previous.items() if not ref.startswith(prefix)}
    return kept | {ref: observe(previous.get(ref), sha, now) for ref, sha in current.items()}


class ReapDecision(Record):
    ref: str
    issue: int
    sha: str
    holder: str | None
    observed_seconds: float
    lease_seconds: int


def reap_decisions(
    claims: Iterable[tuple[str, str, Claim | None]],
    observations: Mapping[str, Observation],
    now: Clock,
    *,
    me: str,
    prefix: str,
    policy_lease: int,
    max_lease: int,
    grace: int,
) -> list[ReapDecision]:
    """Which claims this observer may reap: others' claims whose sha it has seen
    unchanged for longer than lease + grace. Own claims are recovered, not reaped."""
    decisions = []
    for ref, sha, claim in claims:
        issue = issue_of_ref(ref, prefix)
        obs = observations.get(ref)
        if issue is None or obs is None or obs.sha != sha:
            continue
        if claim is not None and claim.agent == me:
            continue
        lease = effective_lease(claim.lease_seconds if claim else None, policy_lease, max_lease)
        if is_expired(obs, now, lease, grace):
            decisions.append(
                ReapDecision(ref, issue, sha, claim.agent if claim else None, observed_seconds(obs, now), lease)
            )
    return decisions


# --- presence ---------------------------------------------------------------------


class PresencePush(Record):
    """What this host last pushed to its presence ref, and when by its own clocks."""

    sha: str
    content: str  # the presence message without its nonce, and the signing key: what observers read
    wall: float
    mono: float
    boot_id: str

    def to_json(self) -> dict:
        return {"sha": self.sha, "content": self.content, "wall": self.wall, "mono": self.mono,
                "boot_id": self.boot_id}

    @classmethod
    def from_json(cls, data: Mapping) -> PresencePush:
        return cls(str(data["sha"]), str(data["content"]), float(data["wall"]), float(data["mono"]),
                   str(data["boot_id"]))


def presence_due(last: PresencePush | None, remote_sha: str | None, content: str, now: Clock,
                 lease_seconds: int) -> bool:
    """Whether a run must push a new presence commit: when the ref is not the one this host last
    pushed (absent, or moved by someone else), when what it says changed, or when half the lease has
    passed since the push by either clock (observers call an agent alive while its presence sha changes
    within lease + grace by their own clocks: a push every half lease keeps that true with room for a
    late run). Any doubt about the clocks (a reboot, a clock that went back) pushes."""
    if last is None or remote_sha != last.sha or content != last.content:
        return True
    return seconds_since(last.wall, last.mono, last.boot_id, now) >= lease_seconds / 2


def seconds_since(wall: float, mono: float, boot_id: str, now: Clock) -> float:
    """How long ago this host's clocks read (wall, mono, boot_id), by the faster of both clocks: the
    holder's side of a lease errs towards pushing early. Infinite on any doubt (a reboot, a clock that
    went back), so the caller pushes."""
    if boot_id != now.boot_id or now.wall < wall or now.mono < mono:
        return float("inf")
    return max(now.wall - wall, now.mono - mono)


# --- claim renewal ----------------------------------------------------------------


class ClaimPush(Record):
    """The claim commit this host last pushed to one claim ref, and when, by its own clocks (read just
    before the push: the record errs early)."""

    sha: str
    wall: float
    mono: float
    boot_id: str

    def to_json(self) -> dict:
        return {"sha": self.sha, "wall": self.wall, "mono": self.mono, "boot_id": self.boot_id}

    @classmethod
    def from_json(cls, data: Mapping) -> ClaimPush:
        return cls(str(data["sha"]), float(data["wall"]), float(data["mono"]), str(data["boot_id"]))


def renewal_due(last: ClaimPush | None, sha: str, now: Clock, renew_seconds: float) -> bool:
    """Whether a held claim at `sha` (as the remote or the last renewal showed it) must be renewed now.

    The holder's half of the lease, in the shape of client-go's leaderelection: the holder renews on its
    own clock, every other host judges expiry only by how long *it* has seen the sha unchanged (its
    observations, like leaderelection's observedTime), never by a time the holder wrote. Renewing only
    when due is therefore safe as long as each sha is replaced before any observer can count lease +
    grace on it. An observer first sees a sha no earlier than it was pushed, so it counts at most the
    time until the next push: renew_seconds after the recorded push, plus the wait for the next run
    that looks (the longest gap between claim-task ticks, or a heartbeat's poll), plus that push's
    duration. Hence the constraint renew_seconds + the longest gap between ticks < lease seconds
    (config refuses seconds < 3 x renew_seconds; the daemon refuses an interval plus jitter above
    seconds - renew_seconds; cron users keep their period under it, docs/claims.md), and grace absorbs
    clock *rates* that differ and a slow push. Clock *offsets* between hosts never matter: no host
    reads another's time.

    Due: when there is no record (never pushed from this host, or the state dir was wiped: the safe
    default is to renew), when the claim is not at the sha this host last pushed (a crash before the
    record was written, or someone else moved it: the caller's renewal is pinned to `sha` and reads the
    claim first, so a claim that is not ours fails there and is never renewed blindly), when either
    clock says renew_seconds passed, or on any doubt about the clocks (a reboot, a clock that went back).
    """
    if last is None or sha != last.sha:
        return True
    return seconds_since(last.wall, last.mono, last.boot_id, now) >= renew_seconds
