"""One agent's view of its mesh: host config, git runner, state, cache clone and policy.

Built once per command from explicit inputs; nothing here is global.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING

from agentmesh.agent.executor import Private
from agentmesh.core.errors import UserError
from agentmesh.core.lease import Clock
from agentmesh.git.cache import MIRROR_HEAD, CacheClone
from agentmesh.git.remote import RemoteRefs, local_path, ls_refs, normalize_url
from agentmesh.git.run import Git, ensure_askpass, ensure_global_config
from agentmesh.git.signing import ensure_key
from agentmesh.host.config import HALT_REF, MESH_POLICY_PATH, PAUSE_REF, HostConfig, MeshPolicy, parse_mesh_policy
from agentmesh.host.roster import ROSTER_PATH, Roster, parse_roster
from agentmesh.host.state import StateDir, system_clock
from agentmesh.memory.journal import Journal
from agentmesh.refs.claims import ClaimStore
from agentmesh.refs.identity import Identity
from agentmesh.refs.presence import Presence

if TYPE_CHECKING:
    from agentmesh.forge.base import Forge

# The baseline of benchmarks/bench_signing.py, never a setting: set to 1, an agent makes no key and signs
# nothing, as agents did before they signed (docs/benchmarks.md). It weakens no sibling's checks: with a
# roster on the base branch, such an agent's own claims, presence and reviews are foreign to the others.
UNSIGNED_BENCHMARK_ENV = "AGENTMESH_BENCHMARK_UNSIGNED"


def signing_from_env(env: Mapping[str, str]) -> bool:
    """Whether agents sign: always, except under the unsigned benchmark baseline."""
    return env.get(UNSIGNED_BENCHMARK_ENV) != "1"


class Mesh:
    def __init__(self, host: HostConfig, *, env: Mapping[str, str] | None = None,
                 clock: Callable[[], Clock] = system_clock, signing: bool = True):
        env = os.environ if env is None else env
        self.host = host
        self.clock = clock
        self.remote = normalize_url(host.remote, Path.cwd())
        self.state = StateDir(host.resolved_state_dir(), self.remote).ensure()
        self.token = env.get(host.forge.token_env) or None
        self.signing_key = host.resolved_signing_key()
        self.public_key = ensure_key(self.signing_key, host.agent) if signing else None
        # what this host must never publish: its token, and the executors' own keys it hands on
        # (and the notify webhook's URL, whose path is its secret)
        reviewer = host.review.executor
        passed_on = [*host.executor.env_passthrough, *(reviewer.env_passthrough if reviewer else [])]
        self.known_secrets = [v for v in (self.token, *(env.get(n) for n in passed_on), *host.notify.secrets(env)) if v]
        self.git = Git(
            askpass=ensure_askpass(self.state.bin_dir),
            global_config=ensure_global_config(self.state.bin_dir, [p for p in [local_path(self.remote)] if p]),
            token=self.token,
            author_name=host.agent,
            author_email=f"{host.agent}@{host.host}.agentmesh.invalid",
            timeout=host.git_timeout_seconds,
            signing_key=self.signing_key if signing else None,
        )
        self.cache = CacheClone(self.git, self.state.cache_path, self.remote).ensure()

    @cached_property
    def remote_refs(self) -> RemoteRefs:
        """HEAD, the kill switch's and the budget pause's refs, listed once per command: one round trip."""
        return ls_refs(self.git, self.remote, ["HEAD", HALT_REF, PAUSE_REF])

    @cached_property
    def remote_head(self) -> str | None:
        """The remote default branch's head, fetched once per command; None while unborn."""
        return self.cache.fetch_default_branch(listing=self.remote_refs)

    @cached_property
    def policy(self) -> MeshPolicy:
        """The mesh policy on the remote's default branch (defaults where it has none)."""
        if self.remote_head is None:
            return MeshPolicy()
        text = self.cache.read_file(MIRROR_HEAD, MESH_POLICY_PATH)
        return parse_mesh_policy(text, f"{MESH_POLICY_PATH} on the default branch")

    @cached_property
    def base_branch(self) -> str:
        """The branch work starts from and PRs target: the policy's `default_branch` or the remote's HEAD."""
        if self.policy.default_branch:
            return self.policy.default_branch
        ref = self.cache.default_branch_ref() if self.remote_head else None
        if ref is None:
            raise UserError(f"the remote {self.remote} has no default branch yet; push a first commit")
        return ref[len("refs/heads/"):]

    @cached_property
    def base_head(self) -> str:
        """The head of `base_branch`, fetched once per command."""
        head = self.remote_head
        if self.policy.default_branch:
            head = self.cache.fetch_default_branch(self.policy.default_branch)
        if head is None:
            raise UserError(f"branch {self.base_branch} does not exist on {self.remote}")
        return head

    @cached_property
    def roster(self) -> Roster | None:
        """The roster as of the base branch (never a PR head's); None while the mesh has none."""
        text = self.read_base_file(ROSTER_PATH)
        return None if text is None else parse_roster(text, f"{ROSTER_PATH} on {self.base_branch}")

    @cached_property
    def identity(self) -> Identity:
        return Identity(self.cache, self.state.root / "identity", self.roster)

    def read_base_file(self, path: str) -> str | None:
        """A file's text on the base branch as fetched by this command."""
        return self.cache.read_file(self.base_head, path)

    def open_forge(self) -> Forge:
        """This agent's forge client, built from explicit parts (forge/ knows nothing of Mesh). Imported
        here: `claims` commands run from cron never need a forge."""
        from agentmesh.forge import open_forge

        return open_forge(self.host.forge, agent=self.host.agent, cache=self.cache, token=self.token,
                          state_root=self.state.root)

    def presence(self) -> Presence:
        return Presence(self.cache, self.state, self.policy, self.host, self.clock, identity=self.identity)

    def journal(self) -> Journal:
        """This agent's journal; with a roster, its readers count only the lines each agent signed."""
        memory = self.policy.memory
        identity = self.identity
        return Journal(self.cache, self.state.root, branch=memory.branch, legacy_branch=self.base_branch,
                       agent=self.host.agent, host=self.host.host, max_entry_bytes=memory.max_entry_bytes,
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

    def claims(self) -> ClaimStore:
        return ClaimStore(self.cache, self.state, self.policy, agent=self.host.agent,
                          host=self.host.host, clock=self.clock, identity=self.identity)
