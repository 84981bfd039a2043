"""One agent's view of its mesh: host config, git runner, state, cache clone and policy.

Built once per command from explicit inputs; nothing here is global.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING

from agentmesh.agent.executor import Private, remembered_bwrap_problem
from agentmesh.agent.plumbing import UNSIGNED_BENCHMARK_ENV, Plumbing, signing_from_env
from agentmesh.core.identity import MAINTAINER_PREFIX
from agentmesh.core.lease import Clock
from agentmesh.core.memory import journal_writer
from agentmesh.host.config import MESH_POLICY_PATH, HostConfig, MeshPolicy
from agentmesh.host.config_cache import parse_mesh_policy
from agentmesh.host.state import system_clock
from agentmesh.memory.journal import Journal
from agentmesh.refs.presence import Presence

if TYPE_CHECKING:
    from agentmesh.forge.base import Forge

__all__ = ["UNSIGNED_BENCHMARK_ENV", "Mesh", "signing_from_env"]


SANDBOX_PROBE = "sandbox-probe.json"  # in the state dir: the last good bwrap probe (remembered_bwrap_problem)


class Mesh(Plumbing):
    """Plumbing (state dir, git, cache clone, the default branch) with the whole host config and mesh policy."""

    def __init__(self, host: HostConfig, *, env: Mapping[str, str] | None = None,
                 clock: Callable[[], Clock] = system_clock, signing: bool = True):
        env = os.environ if env is None else env
        super().__init__(host.basics(), env=env, clock=clock, signing=signing)
        self.host = host
        # what this host must never publish: its token, and the executors' own keys it hands on
        # (and the notify webhook's URL, whose path is its secret)
        reviewer = host.review.executor
        passed_on = [*host.executor.env_passthrough, *(reviewer.env_passthrough if reviewer else [])]
        self.known_secrets = [v for v in (self.token, *(env.get(n) for n in passed_on), *host.notify.secrets(env)) if v]

    @cached_property
    def policy(self) -> MeshPolicy:
        """The mesh policy on the remote's default branch (defaults where it has none), parsed from the text
        read when the branch last moved (Plumbing.snapshot)."""
        snapshot = self.snapshot
        return parse_mesh_policy(None if snapshot is None else snapshot.text,
                                 f"{MESH_POLICY_PATH} on the default branch", self.cache.path)

    @cached_property
    def bwrap_problem(self) -> str | None:
        """Why bubblewrap cannot run on this host, probed once per run, or remembered from a recent good probe
        (the reports' warning and the executors' start check ask; an executor or gate run probes again just
        before it starts)."""
        return remembered_bwrap_problem(self.state.root / SANDBOX_PROBE, time.time())

    def sandbox_problem(self, mode: str) -> str | None:
        """agent/executor.sandbox_problem, from this run's probe."""
        return None if mode == "off" else self.bwrap_problem

    def open_forge(self) -> Forge:
        """This agent's forge client, built from explicit parts (forge/ knows nothing of Mesh). Imported
        here: `claims` commands run from cron never need a forge."""
        from agentmesh.forge import open_forge

        return open_forge(self.host.forge, agent=self.host.agent, cache=self.cache, token=self.token,
                          state_root=self.state.root)

    def presence(self) -> Presence:
        return Presence(self.cache, self.state, self.policy, self.host, self.clock, identity=self.identity)

    @cached_property
    def key_principal(self) -> str | None:
        """The roster principal whose key this host signs with (an agent's name, `maintainer:<login>`), or None."""
        key = self.public_key.line if self.public_key else None
        return next((principal for principal, public in self.roster.signers() if public.line == key), None) \
            if self.roster is not None and key is not None else None

    def journal(self) -> Journal:
        """This host's journal; with a roster, its readers count only the lines each writer signed. A
        maintainer's host writes the maintainer's journal (`maintainer.<login>`), an agent's its own."""
        memory = self.policy.memory
        identity = self.identity
        principal = self.key_principal
        writer = journal_writer(principal) if principal and principal.startswith(MAINTAINER_PREFIX) else None
        return Journal(self.cache, self.state.root, branch=memory.branch, legacy_branch=self.base_branch,
                       agent=writer or self.host.agent, host=self.host.host, max_entry_bytes=memory.max_entry_bytes,
                       max_journal_bytes=memory.max_journal_bytes, known_secrets=self.known_secrets,
                       verify=partial(identity.signers, journal=True) if identity.enforced else None)

    @cached_property
    def private(self) -> Private:
        """What executors and gates must never see: the state dir, the signing key (wherever the host
        config puts it), the host config and the env files next to it (where the token may sit, as in
        docs/operations.md)."""
        config = self.host.source
        hidden = [self.state.root, self.signing_key]
        if config is not None:
            hidden += [config, *(p for p in config.parent.glob("*env") if p.name in ("env", ".env")
                                 or p.name.endswith(".env"))]
        return Private(paths=tuple(hidden))

    @cached_property
    def places(self) -> list[tuple[str, str]]:
        """This host's paths and what public text says instead (core/public.py)."""
        named = [(f"{self.state.worktrees}/*", "<worktree>"), (f"{self.state.review_worktrees}/*", "<worktree>"),
                 (str(self.state.root), "<state>"), (str(Path.home()), "<home>")]
        return named + [(os.path.realpath(p.removesuffix("/*")) + p[len(p.removesuffix("/*")):], name)
                        for p, name in named]
