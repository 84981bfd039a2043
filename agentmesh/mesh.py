"""One agent's view of its mesh: host config, git runner, state, cache clone and policy.

Built once per command from explicit inputs; nothing here is global.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from functools import cached_property
from pathlib import Path

from agentmesh.claims import ClaimStore
from agentmesh.config import MESH_POLICY_PATH, HostConfig, MeshPolicy, parse_mesh_policy
from agentmesh.core.claims import Clock
from agentmesh.git.cache import MIRROR_HEAD, CacheClone
from agentmesh.git.remote import local_path, normalize_url
from agentmesh.git.run import Git, ensure_askpass, ensure_global_config
from agentmesh.state import StateDir, system_clock


class Mesh:
    def __init__(self, host: HostConfig, *, env: Mapping[str, str] | None = None,
                 clock: Callable[[], Clock] = system_clock):
        env = os.environ if env is None else env
        self.host = host
        self.clock = clock
        self.remote = normalize_url(host.remote, Path.cwd())
        self.state = StateDir(host.resolved_state_dir(), self.remote).ensure()
        self.token = env.get(host.forge.token_env) or None
        self.git = Git(
            askpass=ensure_askpass(self.state.bin_dir),
            global_config=ensure_global_config(self.state.bin_dir, [p for p in [local_path(self.remote)] if p]),
            token=self.token,
            author_name=host.agent,
            author_email=f"{host.agent}@{host.host}.agentmesh.invalid",
            timeout=host.git_timeout_seconds,
        )
        self.cache = CacheClone(self.git, self.state.cache_path, self.remote).ensure()

    @cached_property
    def policy(self) -> MeshPolicy:
        """The mesh policy on the remote's default branch (defaults where it has none)."""
        if self.cache.fetch_default_branch() is None:
            return MeshPolicy()
        text = self.cache.read_file(MIRROR_HEAD, MESH_POLICY_PATH)
        return parse_mesh_policy(text, f"{MESH_POLICY_PATH} on the default branch")

    def claims(self) -> ClaimStore:
        return ClaimStore(self.cache, self.state, self.policy, agent=self.host.agent,
                          host=self.host.host, clock=self.clock)
