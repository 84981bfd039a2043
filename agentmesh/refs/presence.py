"""Presence refs: how agents learn which siblings are alive (docs/design/protocol.md, "Presence and liveness").

Each agent keeps `refs/heads/agentmesh/agents/<agent>` (prefix from the mesh
policy) pointing at a parentless commit on the empty tree whose trailers
carry its host, version, executor and capabilities. Every run refreshes it
at most once, with a CAS push. An agent is alive for an observer while the
ref's sha keeps changing within lease + grace by the observer's own clock:
the same observations that decide claim expiry, under their own prefix.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from agentmesh import __version__
from agentmesh.core.lease import Clock, is_expired, observed_seconds, parse_trailers
from agentmesh.core.slug import is_agent_name
from agentmesh.git.cache import CacheClone, mirror_ref
from agentmesh.git.remote import RefUpdate, ls_refs, push
from agentmesh.host.config import HostConfig, MeshPolicy
from agentmesh.host.state import StateDir
from agentmesh.refs.claims import observe_prefix
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

    def refresh(self) -> bool:
        """Move this agent's presence ref to a fresh commit. False if another run moved it meanwhile
        (that run refreshed it: good enough)."""
        ref = self.prefix + self.host.agent
        current = ls_refs(self.cache.git, self.cache.url, [ref]).get(ref)
        commit = self.cache.commit_tree(self.cache.empty_tree(), [], presence_message(self.host, secrets.token_hex(8)))
        return push(self.cache.git, self.cache.path, self.cache.url, [RefUpdate(ref, commit, current)]).ok

    def list(self) -> list[PresenceView]:
        """Every agent's presence, as this host observes it (a complete listing, or an error)."""
        refs, observations, now = observe_prefix(self.cache, self.state, self.prefix, self.clock,
                                                 keep=lambda ref: is_agent_name(ref[len(self.prefix):]))
        found = {ref: (ref[len(self.prefix):], sha, parse_trailers(message)) for ref, (sha, message) in refs.items()}
        lease = self.policy.lease
        signers = enforced_signers(self.identity, [sha for _, sha, _ in found.values()])
        mirror_prefix = mirror_ref(self.prefix)
        times = {self.prefix + ref[len(mirror_prefix):]: t for ref, t in self.cache.commit_times(mirror_prefix).items()}
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
                round(max(0.0, now.wall - times[ref]), 1) if ref in times else None))
        return views
