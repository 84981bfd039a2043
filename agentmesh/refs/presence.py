"""Presence refs: how agents learn which siblings are alive (docs/design/protocol.md, "Presence and liveness").

Each agent keeps `refs/heads/agentmesh/agents/<agent>` (prefix from the mesh
policy) pointing at a parentless commit on the empty tree whose trailers
carry its host, version, executor and capabilities. A run refreshes it
at most once, with a CAS push, and only when it is due (core/lease.presence_due:
what it says changed, or half the lease has passed since this host's last
push). An agent is alive for an observer while the ref's sha keeps changing
within lease + grace by the observer's own clock: the same observations that
decide claim expiry, under their own prefix.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agentmesh import __version__
from agentmesh.core.lease import Clock, PresencePush, is_expired, observed_seconds, parse_trailers, presence_due
from agentmesh.core.slug import is_agent_name
from agentmesh.git.cache import CacheClone, mirror_ref
from agentmesh.git.remote import RefUpdate, RemoteRefs, ls_refs, push
from agentmesh.host.config import HostConfig, MeshPolicy
from agentmesh.host.files import write_atomic
from agentmesh.host.state import StateDir
from agentmesh.refs.claims import RefMemo, observe_prefix
from agentmesh.refs.identity import Identity, enforced_signers


@dataclass(frozen=True)
class PresenceView:
    agent: str
    sha: str
    host: str
    version: str
    executor: str
    capabilities: tuple[str, ...]
    observed_seconds: float
    alive: bool
    verified: bool = True  # signed by the roster key of the agent it names (True while the mesh has no roster)
    # since the presence commit's own date, by the agent's clock: for display only, never for liveness decisions
    committed_seconds: float | None = None
    committed_at: float | None = None  # the presence commit's own date (seconds since the epoch, the agent's clock)

    def to_json(self) -> dict:
        return {"agent": self.agent, "host": self.host, "version": self.version, "executor": self.executor,
                "capabilities": list(self.capabilities), "sha": self.sha,
                "observed_seconds": round(self.observed_seconds, 1), "alive": self.alive,
                "verified": self.verified, "committed_seconds": self.committed_seconds}


def presence_message(host: HostConfig, nonce: str) -> str:
    caps = ",".join(sorted(host.capabilities))
    return (f"presence: {host.agent} [skip ci]\n\n"
            f"Agentmesh-Agent: {host.agent}\nAgentmesh-Host: {host.host}\nAgentmesh-Version: {__version__}\n"
            f"Agentmesh-Executor: {host.executor.kind}\nAgentmesh-Capabilities: {caps}\nAgentmesh-Nonce: {nonce}\n")


class Presence:
    def __init__(self, cache: CacheClone, state: StateDir, policy: MeshPolicy, host: HostConfig,
                 clock: Callable[[], Clock], identity: Identity | None = None):
        self.cache = cache
        self.identity = identity
        self.state = state
        self.policy = policy
        self.host = host
        self.clock = clock
        self.prefix = policy.presence.ref_prefix
        self.pushed: str | None = None  # the commit `refresh` pushed, if it did

    @property
    def _record(self) -> Path:
        return self.state.root / f"presence-{self.state.remote_key}.json"

    def _content(self) -> str:
        """What observers read of a presence commit: its message without the nonce, and who signs it."""
        key = self.cache.git.signing_key
        public = key.with_name(key.name + ".pub") if key is not None else None
        try:
            signer = public.read_text().strip() if public is not None else "unsigned"
        except OSError:
            signer = f"key {key}"
        return presence_message(self.host, "") + signer

    def _last_push(self) -> PresencePush | None:
        try:
            return PresencePush.from_json(json.loads(self._record.read_text()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None  # no record, or a damaged one: push again

    @property
    def ref(self) -> str:
        return self.prefix + self.host.agent

    def refresh(self, *, listing: RemoteRefs | None = None) -> bool:
        """Move this agent's presence ref to a fresh commit when it is due (core/lease.presence_due):
        a run between two due pushes only reads the ref, from `listing` when the caller made one of a prefix
        that holds it (a run's listing of the branches), else in a listing of its own. False if another run
        moved it meanwhile (that run refreshed it: good enough); `pushed` is the commit this one pushed."""
        ref = self.ref
        current = (listing if listing is not None else ls_refs(self.cache.git, self.cache.url, [ref])).get(ref)
        content, now = self._content(), self.clock()
        if not presence_due(self._last_push(), current, content, now, self.policy.lease.seconds):
            return True
        commit = self.cache.commit_tree(self.cache.empty_tree(), [], presence_message(self.host, secrets.token_hex(8)))
        with self.cache.mirroring() as mirror:  # the next run's set-up finds the mirror there: nothing to fetch
            if not push(self.cache.git, self.cache.path, self.cache.url, [RefUpdate(ref, commit, current)],
                        mirror=mirror).ok:
                return False
        self.pushed = commit
        try:
            write_atomic(self._record, json.dumps(PresencePush(commit, content, now.wall, now.mono, now.boot_id)
                                                  .to_json()))
        except OSError:
            pass  # without the record the next run pushes again: only a cost
        return True

    def list(self, *, listing: RemoteRefs | None = None, memo: RefMemo | None = None) -> list[PresenceView]:
        """Every agent's presence, as this host observes it (a complete listing, or an error). `listing`: a
        fresh listing of a prefix holding the presence prefix, when the caller made one; `memo`: what a
        repeated reader kept of its last read (then an unchanged presence costs no git process); without one, a
        memo of this read alone, so that the commits' dates come with the mirror's one read."""
        memo = memo if memo is not None else RefMemo()
        refs, observations, now = observe_prefix(self.cache, self.state, self.prefix, self.clock,
                                                 keep=lambda ref: is_agent_name(ref[len(self.prefix):]),
                                                 listing=listing, memo=memo)
        found = {ref: (ref[len(self.prefix):], sha, parse_trailers(message)) for ref, (sha, message) in refs.items()}
        lease = self.policy.lease
        signers = enforced_signers(self.identity, [sha for _, sha, _ in found.values()])
        times = self._commit_times({ref: sha for ref, (_, sha, _) in found.items()}, memo)
        views = []
        for ref, (agent, sha, trailers) in sorted(found.items()):
            obs = observations[ref]
            caps = tuple(c for c in trailers.get("capabilities", "").split(",") if c)
            verified = signers is None or signers.get(sha) == agent
            # a presence ref anyone can push says "alive" only when its agent's roster key signed it
            views.append(PresenceView(
                agent, sha, trailers.get("host", ""), trailers.get("version", ""),
                trailers.get("executor", ""), caps, observed_seconds(obs, now),
                verified and not is_expired(obs, now, lease.seconds, lease.grace_seconds), verified,
                round(max(0.0, now.wall - times[ref]), 1) if ref in times else None, times.get(ref)))
        return views

    def _commit_times(self, shas: dict[str, str], memo: RefMemo | None) -> dict[str, float]:
        """ref -> its commit's date (the agent's clock), from the mirror; from the memo when it has every sha."""
        if memo is not None and all(sha in memo.times for sha in shas.values()):
            return {ref: memo.times[sha] for ref, sha in shas.items()}
        mirror_prefix = mirror_ref(self.prefix)
        times: dict[str, float] = {self.prefix + ref[len(mirror_prefix):]: t
                                   for ref, t in self.cache.commit_times(mirror_prefix).items()}
        if memo is not None:  # the current shas only: a long watch keeps no history
            memo.times = {sha: times[ref] for ref, sha in shas.items() if ref in times}
        return times
