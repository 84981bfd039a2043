"""What every agent command run holds: the mesh, its forge, its report, and the trust cache."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Generic, TypeVar

from agentmesh.claims import ClaimStore
from agentmesh.forge.base import Forbidden, Forge, NotFound
from agentmesh.mesh import Mesh

R = TypeVar("R")


class AgentRun(Generic[R]):
    def __init__(self, mesh: Mesh, forge: Forge, report: R, *, dry_run: bool, env: Mapping[str, str]):
        self.mesh = mesh
        self.forge = forge
        self.report = report
        self.dry_run = dry_run
        self.env = env
        self.policy = mesh.policy
        self.agent = mesh.host.agent
        self.store: ClaimStore = mesh.claims()
        self.known_secrets = [mesh.token] if mesh.token else []
        self._permissions: dict[str, bool] = {}

    def trusted(self, user: str) -> bool:
        """Whether `user` has write access (cached per run): only their words steer agents."""
        if user not in self._permissions:
            try:
                self._permissions[user] = self.forge.permission(user) in ("admin", "write")
            except (NotFound, Forbidden):  # unknown or unreadable permission: not trusted
                self._permissions[user] = False
        return self._permissions[user]
